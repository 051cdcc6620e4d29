//! `networking.k8s.io` (ingresses, ingress classes, network policies, IP addresses,
//! service CIDRs) and `discovery.k8s.io` endpoint slices.

use serde_json::Value;

use super::Kind;
use super::cells::{
    AGE, Col, Ctx, NAME, arr_at, format_label_selector, list_with_more, load_balancer_ingress,
    name, opt_int, opt_str, str_at,
};

/// The printer of a `networking.k8s.io` or `discovery.k8s.io` kind.
pub fn printer(kind: &str) -> Option<Kind> {
    let (columns, row): (&'static [Col], super::RowFn) = match kind {
        "Ingress" => (INGRESS, ingress),
        "IngressClass" => (INGRESS_CLASS, ingress_class),
        "NetworkPolicy" => (NETWORK_POLICY, network_policy),
        "IPAddress" => (IP_ADDRESS, ip_address),
        "ServiceCIDR" => (SERVICE_CIDR, service_cidr),
        "EndpointSlice" => (ENDPOINT_SLICE, endpoint_slice),
        _ => return None,
    };
    Some(Kind::new(columns, row))
}

const INGRESS: &[Col] = &[
    NAME,
    Col::new(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Col::new(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    Col::new(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    Col::new("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

fn ingress(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let rules = arr_at(obj, "/spec/rules");
    // formatHosts: the first three non-empty hosts, `*` when there is none.
    const MAX: usize = 3;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if arr_at(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj).into(),
        opt_str(obj, "/spec/ingressClassName")
            .unwrap_or("<none>")
            .into(),
        hosts.into(),
        load_balancer_ingress(obj, "/status/loadBalancer/ingress").into(),
        ports.into(),
        ctx.age(obj).into(),
    ]
}

const INGRESS_CLASS: &[Col] = &[
    NAME,
    Col::new(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    Col::new(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let parameters = match obj.pointer("/spec/parameters").filter(|p| p.is_object()) {
        Some(p) => {
            let mut s = str_at(p, "/kind").to_string();
            if let Some(group) = opt_str(p, "/apiGroup") {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", str_at(p, "/name"))
        }
        None => "<none>".to_string(),
    };
    vec![
        name(obj).into(),
        str_at(obj, "/spec/controller").into(),
        parameters.into(),
        ctx.age(obj).into(),
    ]
}

const NETWORK_POLICY: &[Col] = &[
    NAME,
    Col::new(
        "Pod-Selector",
        "string",
        "Selects the pods to which this NetworkPolicy object applies.",
    ),
    AGE,
];

fn network_policy(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let selector = format_label_selector(obj, "/spec/podSelector");
    vec![name(obj).into(), selector.into(), ctx.age(obj).into()]
}

const IP_ADDRESS: &[Col] = &[
    NAME,
    Col::new(
        "ParentRef",
        "string",
        "ParentRef references the resource that an IPAddress is attached to.",
    ),
];

/// `printIPAddress` prints an Age cell beyond its two columns; kubectl ignores it.
fn ip_address(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let parent = match obj.pointer("/spec/parentRef").filter(|p| p.is_object()) {
        Some(p) => {
            let (group, resource) = (str_at(p, "/group"), str_at(p, "/resource"));
            let mut s = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            }
            .to_lowercase();
            if let Some(ns) = opt_str(p, "/namespace").filter(|ns| !ns.is_empty()) {
                s = format!("{s}/{ns}");
            }
            format!("{s}/{}", str_at(p, "/name"))
        }
        None => "<none>".to_string(),
    };
    vec![name(obj).into(), parent.into(), ctx.age(obj).into()]
}

const SERVICE_CIDR: &[Col] = &[
    NAME,
    Col::new(
        "CIDRs",
        "string",
        "CIDRs defines the IP blocks in CIDR notation from which to assign service cluster IPs.",
    ),
    AGE,
];

fn service_cidr(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(obj, "/spec/cidrs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![
        name(obj).into(),
        cidrs.join(",").into(),
        ctx.age(obj).into(),
    ]
}

const ENDPOINT_SLICE: &[Col] = &[
    NAME,
    Col::new(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    Col::new(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    Col::new(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];

fn endpoint_slice(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    // formatDiscoveryPorts: the port number, else its name, else `*`.
    let ports: Vec<String> = arr_at(obj, "/ports")
        .iter()
        .map(|p| match (opt_int(p, "/port"), opt_str(p, "/name")) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr_at(obj, "/endpoints")
        .iter()
        .flat_map(|e| arr_at(e, "/addresses"))
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    vec![
        name(obj).into(),
        str_at(obj, "/addressType").into(),
        list_with_more(&ports, 3).into(),
        list_with_more(&addresses, 3).into(),
        ctx.age(obj).into(),
    ]
}
