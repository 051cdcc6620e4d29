//! Service routing as iptables rules, in the style of kube-proxy's iptables mode (our own
//! chain names, `RKUBE-…`):
//!
//! - nat `RKUBE-SERVICES` (jumped to first from PREROUTING and OUTPUT): one rule per
//!   Service port's cluster IP, external IP and load-balancer IP, then `RKUBE-NODEPORTS` for
//!   packets to the node's own addresses (127.0.0.1 included).
//! - `RKUBE-SVC-…` per Service port: masquerade traffic from outside the pod network, then
//!   pick an endpoint at random (`statistic` probabilities 1/n, 1/(n-1), …), or the one this
//!   client used last (`recent`, for `sessionAffinity: ClientIP`).
//! - `RKUBE-SEP-…` per endpoint: masquerade hairpin traffic (a pod reaching itself), DNAT.
//! - `RKUBE-EXT-…` for NodePort / external / load-balancer traffic: masquerade unless
//!   `externalTrafficPolicy: Local`, which keeps the client address and goes only to this
//!   node's endpoints (`RKUBE-SVL-…`).
//! - filter `RKUBE-SERVICES` / `RKUBE-EXTERNAL-SERVICES`: Service ports with no endpoints
//!   are refused at once (REJECT) rather than left to time out.
//!
//! Headless and ExternalName Services get no rules (DNS answers for them).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::NodeInfo;
use crate::iptables::{Chains, Desired, Hook, TableName, chain_name};

pub const SERVICES: &str = "RKUBE-SERVICES";
pub const NODEPORTS: &str = "RKUBE-NODEPORTS";
pub const POSTROUTING: &str = "RKUBE-POSTROUTING";
pub const MARK_MASQ: &str = "RKUBE-MARK-MASQ";
pub const EXTERNAL_SERVICES: &str = "RKUBE-EXTERNAL-SERVICES";
pub const FIREWALL: &str = "RKUBE-FIREWALL";
/// The packet mark that asks POSTROUTING to masquerade (kube-proxy's value).
pub const MASQ_MARK: &str = "0x4000";
/// The cluster DNS Service, whose endpoint is this node's own DNS server when one runs.
pub const DNS_SERVICE: (&str, &str) = ("kube-system", "kube-dns");
/// `sessionAffinityConfig.clientIP.timeoutSeconds` when unset (3 hours).
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// One endpoint of one Service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: SocketAddrV4,
    /// On this node (for `externalTrafficPolicy` / `internalTrafficPolicy: Local`).
    pub local: bool,
}

/// What the rules need of one Service port.
#[derive(Clone, Debug, PartialEq)]
pub struct PortRule {
    pub namespace: String,
    pub name: String,
    pub port_name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub port: u16,
    pub cluster_ips: Vec<Ipv4Addr>,
    pub node_port: Option<u16>,
    /// External IPs and load-balancer ingress IPs.
    pub external_ips: Vec<Ipv4Addr>,
    pub endpoints: Vec<Endpoint>,
    pub affinity_seconds: Option<i32>,
    pub external_local: bool,
    pub internal_local: bool,
}

impl PortRule {
    fn key(&self) -> String {
        format!(
            "{}/{}:{}/{}",
            self.namespace, self.name, self.port_name, self.protocol
        )
    }
}

fn protocol(p: &ServicePort) -> String {
    p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase()
}

fn ipv4s<'a>(list: impl IntoIterator<Item = &'a String>) -> Vec<Ipv4Addr> {
    list.into_iter().filter_map(|s| s.parse().ok()).collect()
}

/// Endpoints per Service port name, from the Service's IPv4 EndpointSlices; an endpoint
/// counts while its `ready` condition is not false (the endpointslice controller already
/// marks every endpoint ready for `publishNotReadyAddresses`).
fn endpoints_by_port(
    node: &str,
    slices: &[&EndpointSlice],
) -> BTreeMap<(String, String), BTreeSet<Endpoint>> {
    let mut by_port: BTreeMap<(String, String), BTreeSet<Endpoint>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        for port in slice.ports.iter().flatten() {
            let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let key = (
                port.name.clone().unwrap_or_default(),
                port.protocol
                    .as_deref()
                    .unwrap_or("TCP")
                    .to_ascii_lowercase(),
            );
            let set = by_port.entry(key).or_default();
            for ep in &slice.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready) != Some(false);
                if !ready {
                    continue;
                }
                for ip in ipv4s(&ep.addresses) {
                    set.insert(Endpoint {
                        addr: SocketAddrV4::new(ip, number),
                        local: ep.node_name.as_deref() == Some(node),
                    });
                }
            }
        }
    }
    by_port
}

/// The Service ports to route, from the cached Services and EndpointSlices. `dns` is this
/// node's own DNS server, the endpoint of `kube-system/kube-dns` when that Service has no
/// selector.
pub fn port_rules(
    node: &NodeInfo,
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    dns: Option<SocketAddrV4>,
) -> Vec<PortRule> {
    let mut slices_of: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let labels = slice.metadata.labels.as_ref();
        if let (Some(ns), Some(svc)) = (
            slice.metadata.namespace.as_ref(),
            labels.and_then(|l| l.get("kubernetes.io/service-name")),
        ) {
            slices_of
                .entry((ns.clone(), svc.clone()))
                .or_default()
                .push(slice);
        }
    }
    let mut rules = Vec::new();
    for svc in services {
        let (Some(ns), Some(name), Some(spec)) = (
            svc.metadata.namespace.as_ref(),
            svc.metadata.name.as_ref(),
            svc.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let mut cluster_ips = ipv4s(spec.cluster_ips.iter().flatten());
        if cluster_ips.is_empty() {
            cluster_ips = ipv4s(spec.cluster_ip.iter());
        }
        if cluster_ips.is_empty() {
            // Headless: DNS only.
            continue;
        }
        let mut external_ips = ipv4s(spec.external_ips.iter().flatten());
        let lb_ips = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        external_ips.extend(
            lb_ips
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()?.parse::<Ipv4Addr>().ok()),
        );
        external_ips.sort();
        external_ips.dedup();
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let key = (ns.clone(), name.clone());
        let by_port = endpoints_by_port(
            &node.name,
            slices_of.get(&key).map(Vec::as_slice).unwrap_or_default(),
        );
        let own_dns = (ns.as_str(), name.as_str()) == DNS_SERVICE && spec.selector.is_none();
        for port in spec.ports.iter().flatten() {
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let protocol = protocol(port);
            let port_name = port.name.clone().unwrap_or_default();
            let endpoints: Vec<Endpoint> = match (own_dns, dns) {
                (true, Some(addr)) => vec![Endpoint { addr, local: true }],
                _ => by_port
                    .get(&(port_name.clone(), protocol.clone()))
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
            };
            let node_port = port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|_| matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")));
            rules.push(PortRule {
                namespace: ns.clone(),
                name: name.clone(),
                port_name,
                protocol,
                port: number,
                cluster_ips: cluster_ips.clone(),
                node_port,
                external_ips: external_ips.clone(),
                endpoints,
                affinity_seconds,
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            });
        }
    }
    rules.sort_by_key(PortRule::key);
    rules
}

fn hook(table: TableName, chain: &'static str, rule: &[&str]) -> Hook {
    Hook {
        table,
        chain,
        rule: rule.iter().map(|s| s.to_string()).collect(),
    }
}

/// The jumps from the built-in chains into the service chains.
pub fn hooks() -> Vec<Hook> {
    let portals = [
        "-m",
        "comment",
        "--comment",
        "rkube service portals",
        "-j",
        SERVICES,
    ];
    let new_portals = [
        "-m",
        "conntrack",
        "--ctstate",
        "NEW",
        "-m",
        "comment",
        "--comment",
        "rkube service portals",
        "-j",
        SERVICES,
    ];
    vec![
        hook(TableName::Nat, "PREROUTING", &portals),
        hook(TableName::Nat, "OUTPUT", &portals),
        hook(
            TableName::Nat,
            "POSTROUTING",
            &[
                "-m",
                "comment",
                "--comment",
                "rkube postrouting rules",
                "-j",
                POSTROUTING,
            ],
        ),
        hook(TableName::Filter, "FORWARD", &new_portals),
        hook(TableName::Filter, "OUTPUT", &new_portals),
        hook(
            TableName::Filter,
            "INPUT",
            &[
                "-m",
                "conntrack",
                "--ctstate",
                "NEW",
                "-m",
                "comment",
                "--comment",
                "rkube external services",
                "-j",
                EXTERNAL_SERVICES,
            ],
        ),
        hook(TableName::Filter, "INPUT", &["-j", FIREWALL]),
        hook(TableName::Filter, "OUTPUT", &["-j", FIREWALL]),
    ]
}

/// Random choice among `targets`: probability 1/n, then 1/(n-1), …, the last unconditional.
fn balance(rules: &mut Vec<String>, targets: &[String]) {
    let n = targets.len();
    for (i, target) in targets.iter().enumerate() {
        if i + 1 == n {
            rules.push(format!("-j {target}"));
        } else {
            let p = 1.0 / (n - i) as f64;
            rules.push(format!(
                "-m statistic --mode random --probability {p:.10} -j {target}"
            ));
        }
    }
}

/// Chains that route to `endpoints` (already SEP chains): the affinity checks, then the
/// random choice.
fn choose(rules: &mut Vec<String>, seps: &[String], affinity: Option<i32>) {
    if let Some(seconds) = affinity {
        for sep in seps {
            rules.push(format!(
                "-m recent --name {sep} --rcheck --seconds {seconds} --reap -j {sep}"
            ));
        }
    }
    balance(rules, seps);
}

/// Filter rules (for [`FIREWALL`], jumped to from INPUT) that keep the node's cluster DNS
/// server at `dns` to the pods and the node itself: anyone else on the network is dropped,
/// so the node is no open resolver.
pub fn dns_firewall(node: &NodeInfo, dns: SocketAddrV4) -> Vec<String> {
    let cidr = node.cluster_cidr_str();
    ["udp", "tcp"]
        .iter()
        .map(|proto| {
            format!(
                "-d {}/32 -p {proto} -m {proto} --dport {} ! -s {cidr} -m addrtype ! --src-type LOCAL -m comment --comment \"rkube cluster DNS: pods and this node only\" -j DROP",
                dns.ip(),
                dns.port()
            )
        })
        .collect()
}

/// Every rule for `ports` (from [`port_rules`]).
pub fn rules(node: &NodeInfo, ports: &[PortRule]) -> Desired {
    let cidr = node.cluster_cidr_str();
    let mut nat = Chains::new();
    let mut filter = Chains::new();
    let mut services = Vec::new();
    let mut nodeports = Vec::new();
    let mut reject = Vec::new();
    let mut external_reject = Vec::new();
    for p in ports {
        let key = p.key();
        let proto = &p.protocol;
        let comment = format!("{}/{}:{}", p.namespace, p.name, p.port_name);
        let svc_chain = chain_name("SVC", &key);
        let ext_chain = chain_name("EXT", &key);
        let usable: Vec<&Endpoint> = p
            .endpoints
            .iter()
            .filter(|e| !p.internal_local || e.local)
            .collect();
        if usable.is_empty() {
            for ip in p.cluster_ips.iter().chain(&p.external_ips) {
                reject.push(format!(
                    "-d {ip}/32 -p {proto} -m {proto} --dport {} -m comment --comment \"{comment} has no endpoints\" -j REJECT",
                    p.port
                ));
            }
        }
        if let Some(np) = p.node_port
            && (p.endpoints.is_empty()
                || (p.external_local && !p.endpoints.iter().any(|e| e.local)))
        {
            external_reject.push(format!(
                "-m addrtype --dst-type LOCAL -p {proto} -m {proto} --dport {np} -m comment --comment \"{comment} has no endpoints\" -j REJECT"
            ));
        }
        // Endpoint chains.
        let mut all_seps = Vec::new();
        let mut seps = Vec::new();
        let mut local_seps = Vec::new();
        for ep in &p.endpoints {
            let sep = chain_name("SEP", &format!("{key}/{}", ep.addr));
            let recent = match p.affinity_seconds {
                Some(_) => format!("-m recent --name {sep} --set --rsource "),
                None => String::new(),
            };
            nat.insert(
                sep.clone(),
                vec![
                    format!("-s {}/32 -j {MARK_MASQ}", ep.addr.ip()),
                    format!(
                        "-p {proto} -m {proto} {recent}-j DNAT --to-destination {}",
                        ep.addr
                    ),
                ],
            );
            if ep.local {
                local_seps.push(sep.clone());
            }
            if !p.internal_local || ep.local {
                seps.push(sep.clone());
            }
            all_seps.push(sep);
        }
        if !usable.is_empty() {
            let mut svc = Vec::new();
            for ip in &p.cluster_ips {
                svc.push(format!(
                    "! -s {cidr} -d {ip}/32 -p {proto} -m {proto} --dport {} -j {MARK_MASQ}",
                    p.port
                ));
                services.push(format!(
                    "-d {ip}/32 -p {proto} -m {proto} --dport {} -m comment --comment \"{comment} cluster IP\" -j {svc_chain}",
                    p.port
                ));
            }
            choose(&mut svc, &seps, p.affinity_seconds);
            nat.insert(svc_chain.clone(), svc);
        }
        let has_external = p.node_port.is_some() || !p.external_ips.is_empty();
        if has_external && !p.endpoints.is_empty() {
            // The cluster-wide chain for external traffic, even when internal traffic is
            // node-local.
            let target = if p.internal_local {
                let chain = chain_name("SVX", &key);
                let mut rules = Vec::new();
                choose(&mut rules, &all_seps, p.affinity_seconds);
                nat.insert(chain.clone(), rules);
                chain
            } else {
                svc_chain.clone()
            };
            let mut ext = Vec::new();
            if p.external_local {
                let svl = chain_name("SVL", &key);
                ext.push(format!("-s {cidr} -j {target}"));
                ext.push(format!("-m addrtype --src-type LOCAL -j {MARK_MASQ}"));
                ext.push(format!("-m addrtype --src-type LOCAL -j {target}"));
                ext.push(format!("-j {svl}"));
                let mut svl_rules = Vec::new();
                if !local_seps.is_empty() {
                    choose(&mut svl_rules, &local_seps, p.affinity_seconds);
                }
                nat.insert(svl, svl_rules);
            } else {
                ext.push(format!("-j {MARK_MASQ}"));
                ext.push(format!("-j {target}"));
            }
            nat.insert(ext_chain.clone(), ext);
            for ip in &p.external_ips {
                services.push(format!(
                    "-d {ip}/32 -p {proto} -m {proto} --dport {} -m comment --comment \"{comment} external IP\" -j {ext_chain}",
                    p.port
                ));
            }
            if let Some(np) = p.node_port {
                nodeports.push(format!(
                    "-p {proto} -m {proto} --dport {np} -m comment --comment \"{comment} node port\" -j {ext_chain}"
                ));
            }
        }
    }
    services.push(format!(
        "-m addrtype --dst-type LOCAL -m comment --comment \"rkube node ports\" -j {NODEPORTS}"
    ));
    nat.insert(SERVICES.into(), services);
    nat.insert(NODEPORTS.into(), nodeports);
    nat.insert(
        MARK_MASQ.into(),
        vec![format!("-j MARK --or-mark {MASQ_MARK}")],
    );
    nat.insert(
        POSTROUTING.into(),
        vec![
            format!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
            format!("-j MARK --xor-mark {MASQ_MARK}"),
            "-m comment --comment \"rkube service traffic requiring SNAT\" -j MASQUERADE".into(),
        ],
    );
    filter.insert(SERVICES.into(), reject);
    filter.insert(EXTERNAL_SERVICES.into(), external_reject);
    // NodePorts on 127.0.0.1 need route_localnet; never let the outside send 127/8 in.
    filter.insert(
        FIREWALL.into(),
        vec![
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -m comment --comment \"block incoming localnet connections\" -j DROP".into(),
        ],
    );
    let mut desired = Desired::default();
    desired.tables.insert(TableName::Nat, nat);
    desired.tables.insert(TableName::Filter, filter);
    desired.hooks = hooks();
    desired
}

#[cfg(test)]
mod tests;
