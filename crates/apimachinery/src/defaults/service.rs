//! Service defaults: `SetDefaults_Service` from `pkg/apis/core/v1/defaults.go`, and the IP
//! family fields the Service REST storage fills in before allocating
//! (`Allocators.initIPFamilyFields` in `pkg/registry/core/service/storage/alloc.go`).
//!
//! IP and node-port allocation are not done here. The IP family rules assume rkube's
//! single-stack IPv4 service range: upstream's dual-stack upgrade of `PreferDualStack`
//! services never applies, and `RequireDualStack` (outside the headless, selectorless case)
//! is for the allocator to refuse. On update upstream adopts the old object's
//! `ipFamilyPolicy` when the new one has none; without the old object this falls back to the
//! create-time choice, which only differs for a `PreferDualStack` service updated without
//! its policy.

use serde_json::{Value, json};

use super::fields::{Map, child, default_ptr, default_str, has_items, is_unset, items, str_of};

/// `v1.DefaultClientIPServiceAffinitySeconds`: three hours.
const CLIENT_IP_AFFINITY_SECONDS: i64 = 10_800;

pub(super) fn service(obj: &mut Map) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    session_affinity(spec);
    default_str(spec, "type", "ClusterIP");
    let kind = str_of(spec, "type").to_string();
    for port in items(spec, "ports") {
        default_str(port, "protocol", "TCP");
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if target_unset && let Some(number) = port.get("port").filter(|p| p.is_number()).cloned() {
            port.insert("targetPort".into(), number);
        }
    }
    // `service.ExternallyAccessible`.
    let external = matches!(kind.as_str(), "LoadBalancer" | "NodePort")
        || (kind == "ClusterIP" && has_items(spec, "externalIPs"));
    if external {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(kind.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_ptr(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    ip_families(spec);
    if kind == "LoadBalancer"
        && let Some(lb) = child(obj, "status").and_then(|s| child(s, "loadBalancer"))
    {
        for ingress in items(lb, "ingress") {
            if !str_of(ingress, "ip").is_empty() {
                default_ptr(ingress, "ipMode", json!("VIP"));
            }
        }
    }
}

/// `None` drops any affinity config; `ClientIP` gets a three-hour timeout unless one is set.
fn session_affinity(spec: &mut Map) {
    default_str(spec, "sessionAffinity", "None");
    match str_of(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}),
                );
            }
        }
        _ => {}
    }
}

/// `ipFamilyPolicy` (SingleStack, or RequireDualStack for a headless service without a
/// selector) and `ipFamilies` (from the requested cluster IPs, else the cluster's IPv4;
/// a headless selectorless service that is not SingleStack lists both families).
fn ip_families(spec: &mut Map) {
    if str_of(spec, "type") == "ExternalName" {
        return;
    }
    let cluster_ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .map(|ips| {
            ips.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let headless =
        str_of(spec, "clusterIP") == "None" || cluster_ips.first().is_some_and(|ip| ip == "None");
    let selectorless = !has_items(spec, "selector");
    if is_unset(spec, "ipFamilyPolicy") {
        let policy = if headless && selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec.insert("ipFamilyPolicy".into(), json!(policy));
    }
    let single_stack = str_of(spec, "ipFamilyPolicy") == "SingleStack";
    let Some(families) = families_of(spec) else {
        return;
    };
    for (i, ip) in cluster_ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            families.push(json!(family_of(ip)));
        }
    }
    if families.is_empty() {
        families.push(json!("IPv4"));
    }
    if headless && selectorless && families.len() < 2 && !single_stack {
        let other = if families.first().and_then(Value::as_str) == Some("IPv6") {
            "IPv4"
        } else {
            "IPv6"
        };
        families.push(json!(other));
    }
}

/// The `ipFamilies` list, created empty when unset; `None` when it is not a list.
fn families_of(spec: &mut Map) -> Option<&mut Vec<Value>> {
    if is_unset(spec, "ipFamilies") {
        spec.insert("ipFamilies".into(), json!([]));
    }
    spec.get_mut("ipFamilies").and_then(Value::as_array_mut)
}

fn family_of(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}
