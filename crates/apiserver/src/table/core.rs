//! Core (`v1`) kinds: services, nodes, namespaces, config maps, secrets, endpoints,
//! service accounts, replication controllers, resource quotas and pod templates here; pods,
//! events and persistent volumes (claims) in their own files. `LimitRange` has no upstream
//! printer and gets the default table.

use serde_json::Value;

use super::Kind;
use super::cells::{
    AGE, CONTAINERS, Col, Ctx, IMAGES, NAME, arr_at, containers, format_labels, int_at,
    join_host_port, len_at, load_balancer_ingress, map_at, name, opt_int, opt_str, quantity,
    str_at,
};

/// The printer of a core kind, if upstream has one.
pub fn printer(kind: &str) -> Option<Kind> {
    let (columns, row): (&'static [Col], super::RowFn) = match kind {
        "Pod" => return Some(super::pod::KIND),
        "Service" => (SERVICE, service),
        "Node" => (NODE, node),
        "Namespace" => (NAMESPACE, namespace),
        "ConfigMap" => (CONFIG_MAP, config_map),
        "Secret" => (SECRET, secret),
        "Endpoints" => (ENDPOINTS, endpoints),
        "Event" => return Some(super::event::KIND),
        "PersistentVolume" => return Some(super::volume::PERSISTENT_VOLUME_KIND),
        "PersistentVolumeClaim" => return Some(super::volume::PERSISTENT_VOLUME_CLAIM_KIND),
        "ServiceAccount" => (SERVICE_ACCOUNT, service_account),
        "ReplicationController" => (REPLICATION_CONTROLLER, replication_controller),
        "ResourceQuota" => (RESOURCE_QUOTA, resource_quota),
        "PodTemplate" => (POD_TEMPLATE, pod_template),
        _ => return None,
    };
    Some(Kind::new(columns, row))
}

const SERVICE: &[Col] = &[
    NAME,
    Col::new(
        "Type",
        "string",
        "type determines how the Service is exposed.",
    ),
    Col::new(
        "Cluster-IP",
        "string",
        "clusterIP is the IP address of the service.",
    ),
    Col::new(
        "External-IP",
        "string",
        "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
    ),
    Col::new(
        "Port(s)",
        "string",
        "The list of ports that are exposed by this service.",
    ),
    AGE,
    Col::new(
        "Selector",
        "string",
        "Route service traffic to pods with label keys and values matching this selector.",
    )
    .wide(),
];

fn service(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let svc_type = str_at(obj, "/spec/type");
    let cluster_ip = opt_str(obj, "/spec/clusterIPs/0").unwrap_or("<none>");
    let mut ports: Vec<String> = arr_at(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let (port, protocol) = (int_at(p, "/port"), str_at(p, "/protocol"));
            match int_at(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if ports.is_empty() {
        ports.push("<none>".to_string());
    }
    vec![
        name(obj).into(),
        svc_type.into(),
        cluster_ip.into(),
        service_external_ip(obj, svc_type).into(),
        ports.join(",").into(),
        ctx.age(obj).into(),
        format_labels(obj, "/spec/selector").into(),
    ]
}

/// `getServiceExternalIP`.
fn service_external_ip(obj: &Value, svc_type: &str) -> String {
    let external: Vec<&str> = arr_at(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match svc_type {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(obj, "/status/loadBalancer/ingress");
            if !external.is_empty() {
                let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => str_at(obj, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

const NODE: &[Col] = &[
    NAME,
    Col::new("Status", "string", "The status of the node"),
    Col::new("Roles", "string", "The roles of the node"),
    AGE,
    Col::new("Version", "string", "Kubelet Version reported by the node."),
    Col::new(
        "Internal-IP",
        "string",
        "List of addresses reachable to the node.",
    )
    .wide(),
    Col::new(
        "External-IP",
        "string",
        "List of addresses reachable to the node.",
    )
    .wide(),
    Col::new("OS-Image", "string", "OS Image reported by the node.").wide(),
    Col::new(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node.",
    )
    .wide(),
    Col::new(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node.",
    )
    .wide(),
];

fn node(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    // Only the Ready condition counts; the last one of that type wins, as in upstream's map.
    let ready = arr_at(obj, "/status/conditions")
        .iter()
        .rfind(|c| str_at(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = map_at(obj, "/metadata/labels")
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" => v.as_str().filter(|v| !v.is_empty()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        arr_at(obj, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == kind)
            .map(|a| str_at(a, "/address"))
            .unwrap_or("<none>")
    };
    let info = |field: &str| match str_at(obj, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>",
        v => v,
    };
    vec![
        name(obj).into(),
        status.join(",").into(),
        roles.into(),
        ctx.age(obj).into(),
        str_at(obj, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

const NAMESPACE: &[Col] = &[
    NAME,
    Col::new("Status", "string", "The status of the namespace"),
    AGE,
];

fn namespace(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/status/phase").into(),
        ctx.age(obj).into(),
    ]
}

const CONFIG_MAP: &[Col] = &[
    NAME,
    Col::new("Data", "string", "Data contains the configuration data."),
    AGE,
];

fn config_map(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let data = len_at(obj, "/data") + len_at(obj, "/binaryData");
    vec![name(obj).into(), data.into(), ctx.age(obj).into()]
}

const SECRET: &[Col] = &[
    NAME,
    Col::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    Col::new("Data", "string", "Data contains the secret data."),
    AGE,
];

fn secret(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/type").into(),
        len_at(obj, "/data").into(),
        ctx.age(obj).into(),
    ]
}

const ENDPOINTS: &[Col] = &[
    NAME,
    Col::new(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    AGE,
];

fn endpoints(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        format_endpoints(obj).into(),
        ctx.age(obj).into(),
    ]
}

/// `formatEndpoints` with all ports: up to three `ip:port` entries, then `+ N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0usize;
    let mut more = false;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        // Headless services may have no ports: list the bare addresses.
        let port_numbers: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports.iter().map(|p| Some(int_at(p, "/port"))).collect()
        };
        for port in port_numbers {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, "/ip");
                list.push(match port {
                    Some(p) => join_host_port(ip, p),
                    None => ip.to_string(),
                });
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

const SERVICE_ACCOUNT: &[Col] = &[
    NAME,
    Col::new(
        "Secrets",
        "string",
        "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
    ),
    AGE,
];

fn service_account(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, "/secrets").into(),
        ctx.age(obj).into(),
    ]
}

const REPLICATION_CONTROLLER: &[Col] = &[
    NAME,
    Col::new(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    Col::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    Col::new(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Col::new(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count.",
    )
    .wide(),
];

fn replication_controller(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        opt_int(obj, "/spec/replicas").unwrap_or(1).into(),
        int_at(obj, "/status/replicas").into(),
        int_at(obj, "/status/readyReplicas").into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
        format_labels(obj, "/spec/selector").into(),
    ]
}

const RESOURCE_QUOTA: &[Col] = &[
    NAME,
    Col::new(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    Col::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

/// `printResourceQuota`: `resource: used/hard` for every hard limit, sorted by name;
/// `limits.*` resources go to the Limit column.
fn resource_quota(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let mut resources: Vec<&String> = map_at(obj, "/status/hard")
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for r in resources {
        let key = r.replace('~', "~0").replace('/', "~1");
        let entry = format!(
            "{r}: {}/{}",
            quantity(obj, &format!("/status/used/{key}")),
            quantity(obj, &format!("/status/hard/{key}")),
        );
        let mut pieces = r.split('.');
        let is_limit = pieces.next() == Some("limits") && pieces.next().is_some();
        if is_limit {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(obj).into(),
        requests.join(", ").into(),
        limits.join(", ").into(),
        ctx.age(obj).into(),
    ]
}

const POD_TEMPLATE: &[Col] = &[
    NAME,
    Col::new(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    Col::new(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    Col::new("Pod Labels", "string", "The labels for the pod template."),
];

fn pod_template(obj: &Value, _ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(obj, "/template/spec/containers");
    vec![
        name(obj).into(),
        names.into(),
        images.into(),
        format_labels(obj, "/template/metadata/labels").into(),
    ]
}
