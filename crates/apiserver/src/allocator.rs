//! Service cluster IPs and node ports, allocated without duplicates across restarts and
//! API servers.
//!
//! A cluster IP is taken by creating its `networking.k8s.io/v1` IPAddress object (named
//! after the IP, pointing at the Service), as upstream 1.33's IP allocator does: the store's
//! create-if-absent makes two Services racing for one IP impossible, and the object survives
//! restarts. A node port is taken the same way with a key of its own under
//! `/registry/rkube.io/nodeports/` (upstream keeps a bitmap; per-port keys need no lock).

use std::net::Ipv4Addr;

use apimachinery::field::{BadValue, FieldError};
use apimachinery::status::ApiError;
use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};
use store::Store;

use crate::objects;

/// The service CIDR (k3s's default, 10.43.0.0/16).
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 43, 0, 0), 16);
/// The `kubernetes` Service's address: the first address of the range.
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 1);
/// Upstream's default node port range.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

fn ip_key(ip: &str) -> String {
    format!("/registry/networking.k8s.io/ipaddresses/{ip}")
}

fn node_port_key(port: i64) -> String {
    format!("/registry/rkube.io/nodeports/{port}")
}

fn service_ref(svc: &Value) -> Value {
    json!({
        "group": "",
        "resource": "services",
        "namespace": objects::namespace(svc).unwrap_or(""),
        "name": objects::name(svc).unwrap_or(""),
    })
}

/// Claims one cluster IP for a Service. `Ok(false)` when it is taken.
async fn claim_ip(store: &dyn Store, ip: &str, svc: &Value) -> Result<bool, ApiError> {
    let mut obj = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip,
            "labels": {
                "ipaddress.kubernetes.io/ip-family": "IPv4",
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": service_ref(svc)},
    });
    let meta = objects::meta_mut(&mut obj);
    meta.insert("uid".into(), Value::String(objects::new_uid()));
    meta.insert("creationTimestamp".into(), Value::String(objects::now()));
    let bytes = Bytes::from(serde_json::to_vec(&obj).unwrap_or_default());
    match store.create(&ip_key(ip), bytes).await {
        Ok(_) => Ok(true),
        Err(store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn claim_node_port(store: &dyn Store, port: i64, svc: &Value) -> Result<bool, ApiError> {
    let bytes = Bytes::from(service_ref(svc).to_string());
    match store.create(&node_port_key(port), bytes).await {
        Ok(_) => Ok(true),
        Err(store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

fn invalid(svc: &Value, field: &str, value: BadValue, detail: &str) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        objects::name(svc).unwrap_or(""),
        &[FieldError::invalid(field, value, detail)],
    )
}

fn wants_cluster_ip(svc: &Value) -> bool {
    let spec = &svc["spec"];
    spec["type"].as_str() != Some("ExternalName") && spec["clusterIP"].as_str() != Some("None")
}

fn wants_node_ports(svc: &Value) -> bool {
    match svc["spec"]["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => svc["spec"]["allocateLoadBalancerNodePorts"] != json!(false),
        _ => false,
    }
}

/// What an allocation took, to give back if the Service is not stored after all.
#[derive(Debug, Default)]
pub struct Claimed {
    ips: Vec<String>,
    ports: Vec<i64>,
}

impl Claimed {
    pub async fn release(self, store: &dyn Store) {
        for ip in self.ips {
            let _ = store.delete(&ip_key(&ip), None).await;
        }
        for port in self.ports {
            let _ = store.delete(&node_port_key(port), None).await;
        }
    }
}

/// Gives a new Service its cluster IP and node ports (the requested ones when set, else
/// free ones), filling `spec.clusterIP(s)` and `ports[].nodePort`.
pub async fn allocate(
    store: &dyn Store,
    svc: &mut Value,
    old: Option<&Value>,
) -> Result<Claimed, ApiError> {
    let mut claimed = Claimed::default();
    match allocate_inner(store, svc, old, &mut claimed).await {
        Ok(()) => Ok(claimed),
        Err(e) => {
            claimed.release(store).await;
            Err(e)
        }
    }
}

async fn allocate_inner(
    store: &dyn Store,
    svc: &mut Value,
    old: Option<&Value>,
    claimed: &mut Claimed,
) -> Result<(), ApiError> {
    let had_ip = old
        .and_then(|o| o["spec"]["clusterIP"].as_str())
        .filter(|ip| !ip.is_empty() && *ip != "None");
    if wants_cluster_ip(svc) && had_ip.is_none() {
        let requested = svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
        let ip = if requested.is_empty() {
            allocate_ip(store, svc).await?
        } else {
            let parsed: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(
                    svc,
                    "spec.clusterIPs[0]",
                    BadValue::Str(requested.clone()),
                    "must be a valid IP address",
                )
            })?;
            if !in_range(parsed) {
                return Err(invalid(
                    svc,
                    "spec.clusterIPs",
                    BadValue::Raw(format!("[]string{{\"{requested}\"}}")),
                    &format!(
                        "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}/{}",
                        SERVICE_CIDR.0, SERVICE_CIDR.1
                    ),
                ));
            }
            if !claim_ip(store, &requested, svc).await? {
                return Err(invalid(
                    svc,
                    "spec.clusterIPs",
                    BadValue::Raw(format!("[]string{{\"{requested}\"}}")),
                    &format!("failed to allocate IP {requested}: provided IP is already allocated"),
                ));
            }
            requested
        };
        claimed.ips.push(ip.clone());
        svc["spec"]["clusterIP"] = json!(ip);
        svc["spec"]["clusterIPs"] = json!([ip]);
    }
    if wants_node_ports(svc) {
        let old_ports: Vec<i64> = old
            .and_then(|o| o["spec"]["ports"].as_array())
            .map(|ps| ps.iter().filter_map(|p| p["nodePort"].as_i64()).collect())
            .unwrap_or_default();
        let snapshot = svc.clone();
        let Some(ports) = svc["spec"]["ports"].as_array_mut() else {
            return Ok(());
        };
        for (i, port) in ports.iter_mut().enumerate() {
            let requested = port["nodePort"].as_i64().unwrap_or(0);
            if requested != 0 && old_ports.contains(&requested) {
                continue;
            }
            let chosen = if requested == 0 {
                allocate_node_port(store, &snapshot).await?
            } else {
                if !NODE_PORTS.contains(&requested) {
                    return Err(invalid(
                        &snapshot,
                        &format!("spec.ports[{i}].nodePort"),
                        BadValue::Raw(requested.to_string()),
                        &format!(
                            "provided port is not in the valid range. The range of valid ports is {}-{}",
                            NODE_PORTS.start(),
                            NODE_PORTS.end()
                        ),
                    ));
                }
                if !claim_node_port(store, requested, &snapshot).await? {
                    return Err(invalid(
                        &snapshot,
                        &format!("spec.ports[{i}].nodePort"),
                        BadValue::Raw(requested.to_string()),
                        "provided port is already allocated",
                    ));
                }
                requested
            };
            claimed.ports.push(chosen);
            port["nodePort"] = json!(chosen);
        }
    }
    Ok(())
}

fn in_range(ip: Ipv4Addr) -> bool {
    let (base, bits) = SERVICE_CIDR;
    let mask = u32::MAX << (32 - bits);
    (u32::from(ip) & mask) == (u32::from(base) & mask)
        && u32::from(ip) != u32::from(base)
        && u32::from(ip) != (u32::from(base) | !mask)
}

async fn allocate_ip(store: &dyn Store, svc: &Value) -> Result<String, ApiError> {
    let (base, bits) = SERVICE_CIDR;
    let size = 1u32 << (32 - bits);
    // Random probing like upstream; the first addresses (.1 for kubernetes, .10 for DNS)
    // are only given out when asked for.
    let start = rand::rng().random_range(16..size - 1);
    for step in 0..size {
        let offset = 16 + (start - 16 + step) % (size - 17);
        let ip = Ipv4Addr::from(u32::from(base) + offset).to_string();
        if claim_ip(store, &ip, svc).await? {
            return Ok(ip);
        }
    }
    Err(ApiError::internal(
        "failed to allocate a serviceIP: range is full",
    ))
}

async fn allocate_node_port(store: &dyn Store, svc: &Value) -> Result<i64, ApiError> {
    let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
    let start = rand::rng().random_range(0..span);
    for step in 0..span {
        let port = NODE_PORTS.start() + (start + step) % span;
        if claim_node_port(store, port, svc).await? {
            return Ok(port);
        }
    }
    Err(ApiError::internal(
        "failed to allocate a nodePort: range is full",
    ))
}

/// Gives back what a deleted Service held.
pub async fn release(store: &dyn Store, svc: &Value) {
    let mut claimed = Claimed::default();
    if let Some(ips) = svc["spec"]["clusterIPs"].as_array() {
        claimed.ips.extend(
            ips.iter()
                .filter_map(|i| i.as_str())
                .filter(|i| *i != "None")
                .map(String::from),
        );
    }
    if let Some(ports) = svc["spec"]["ports"].as_array() {
        claimed
            .ports
            .extend(ports.iter().filter_map(|p| p["nodePort"].as_i64()));
    }
    claimed.release(store).await;
}

/// Node ports an update stopped using (type changed away from NodePort, or ports removed).
pub async fn release_dropped(store: &dyn Store, new: &Value, old: &Value) {
    let keep: Vec<i64> = new["spec"]["ports"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p["nodePort"].as_i64()).collect())
        .unwrap_or_default();
    let mut claimed = Claimed::default();
    if let Some(ports) = old["spec"]["ports"].as_array() {
        claimed.ports.extend(
            ports
                .iter()
                .filter_map(|p| p["nodePort"].as_i64())
                .filter(|p| !keep.contains(p)),
        );
    }
    claimed.release(store).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_excludes_network_and_broadcast() {
        assert!(in_range("10.43.0.1".parse().expect("ip")));
        assert!(in_range("10.43.255.254".parse().expect("ip")));
        assert!(!in_range("10.43.0.0".parse().expect("ip")));
        assert!(!in_range("10.43.255.255".parse().expect("ip")));
        assert!(!in_range("10.44.0.1".parse().expect("ip")));
    }
}
