//! NetworkPolicy enforcement as iptables filter rules for this node's pods.
//!
//! Pods sit on the bridge `cni0` with `bridge-nf-call-iptables=1`, so both pod-to-pod
//! traffic on the bridge and pod → ClusterIP → pod traffic (after the nat PREROUTING DNAT)
//! cross the filter FORWARD chain with the real pod addresses; that is the one place the
//! policies are checked. Traffic from the node itself (probes, the node's own clients) goes
//! through OUTPUT and is always allowed, as upstream says it must be.
//!
//! - filter FORWARD jumps first to `RKUBE-NETPOL`: packets of known connections are
//!   accepted; then `-s <pod ip>/32 -j RKUBE-NPE-…` for every local pod some Egress policy
//!   selects, then `-d <pod ip>/32 -j RKUBE-NPI-…` for every local pod some Ingress policy
//!   selects. Pods no policy selects are not isolated and get no jump.
//! - `RKUBE-NPE-…` / `RKUBE-NPI-…` (one per pod and direction) RETURN when any rule of any
//!   selecting policy allows the packet, so a packet between two isolated local pods is
//!   checked against the sender's egress and then the receiver's ingress. Anything else is
//!   refused at once: TCP with a reset, the rest with ICMP port-unreachable (upstream only
//!   says "not allowed"; refusing beats a connection that hangs until it times out).
//! - Peers are any pod of the cluster with an address (`/32` each), or `ipBlock` blocks
//!   with their `except` blocks cut out arithmetically ([`cidr`]).
//!
//! Everything is sorted (pods and policies by namespace and name), so unchanged policies
//! give byte-identical chains and the runner rewrites only what changed.
//!
//! # Layout
//! - `mod.rs`: the chains and rule text.
//! - `select.rs`: the pods and namespaces a policy's selectors pick, `policyTypes` defaults.
//! - `cidr.rs`: IPv4 blocks and `ipBlock.except`.
//! - `tests.rs`: rule text for hand-made policies.

mod cidr;
mod select;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::NodeInfo;
use crate::iptables::{Chains, Desired, Hook, TableName, chain_name};

use self::cidr::Cidr;
use self::select::{PodRef, Policy, View};

/// The filter chain FORWARD jumps to first.
pub const NETPOL: &str = "RKUBE-NETPOL";

/// The jump from filter FORWARD into [`NETPOL`]. Not INPUT or OUTPUT: traffic to and from
/// the node itself is never subject to policy.
pub fn hook() -> Hook {
    Hook {
        table: TableName::Filter,
        chain: "FORWARD",
        rule: [
            "-m",
            "comment",
            "--comment",
            "rkube network policies",
            "-j",
            NETPOL,
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// The filter-table chains and hooks that enforce every NetworkPolicy for this node's pods.
///
/// Only pods scheduled to `node` that have an IPv4 address and are not hostNetwork are
/// enforced; peers are chosen among all such pods of the cluster. `RKUBE-NETPOL` and the
/// hook are always present (the chain is empty when no local pod is isolated), so the hook
/// never moves. Pure: the same inputs, in any order, give the same output.
pub fn rules(
    node: &NodeInfo,
    policies: &[Arc<NetworkPolicy>],
    pods: &[Arc<Pod>],
    namespaces: &[Arc<Namespace>],
) -> Desired {
    let view = View::new(&node.name, pods, namespaces);
    let mut policies: Vec<Policy<'_>> = policies.iter().filter_map(|p| Policy::new(p)).collect();
    policies.sort_by(|a, b| (a.namespace, a.name).cmp(&(b.namespace, b.name)));

    let mut chains = Chains::new();
    let mut egress_jumps = Vec::new();
    let mut ingress_jumps = Vec::new();
    for pod in view.pods.iter().filter(|p| p.local) {
        let selecting: Vec<&Policy<'_>> = policies.iter().filter(|p| p.selects(pod)).collect();
        for (dir, jumps) in [
            (Direction::Egress, &mut egress_jumps),
            (Direction::Ingress, &mut ingress_jumps),
        ] {
            let applies = selecting.iter().any(|p| dir.rules_of(p).is_some());
            if !applies {
                continue;
            }
            let chain = chain_name(dir.kind(), &pod.key());
            for ip in &pod.ips {
                jumps.push(format!(
                    "{} {ip}/32 -m comment --comment \"{} {}\" -j {chain}",
                    dir.own_flag(),
                    pod.key(),
                    dir.word()
                ));
            }
            chains.insert(chain, pod_chain(&view, pod, &selecting, dir));
        }
    }

    let mut netpol = Vec::new();
    if !egress_jumps.is_empty() || !ingress_jumps.is_empty() {
        netpol.push("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string());
    }
    netpol.extend(egress_jumps);
    netpol.extend(ingress_jumps);
    chains.insert(NETPOL.to_string(), netpol);

    let mut desired = Desired::default();
    desired.tables.insert(TableName::Filter, chains);
    desired.hooks.push(hook());
    desired
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// One rule of either direction: its peers (`from`/`to`) and ports.
struct RuleRef<'a> {
    peers: Option<&'a [NetworkPolicyPeer]>,
    ports: Option<&'a [NetworkPolicyPort]>,
}

impl Direction {
    fn kind(self) -> &'static str {
        match self {
            Direction::Ingress => "NPI",
            Direction::Egress => "NPE",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// How the enforced pod's address is matched.
    fn own_flag(self) -> &'static str {
        match self {
            Direction::Ingress => "-d",
            Direction::Egress => "-s",
        }
    }

    /// How a peer's address is matched.
    fn peer_flag(self) -> &'static str {
        match self {
            Direction::Ingress => "-s",
            Direction::Egress => "-d",
        }
    }

    /// The policy's rules in this direction; `None` when the policy is not of this type.
    fn rules_of<'a>(self, policy: &Policy<'a>) -> Option<Vec<RuleRef<'a>>> {
        match self {
            Direction::Ingress => policy.ingress.map(|rules| {
                rules
                    .iter()
                    .map(|r| RuleRef {
                        peers: r.from.as_deref(),
                        ports: r.ports.as_deref(),
                    })
                    .collect()
            }),
            Direction::Egress => policy.egress.map(|rules| {
                rules
                    .iter()
                    .map(|r| RuleRef {
                        peers: r.to.as_deref(),
                        ports: r.ports.as_deref(),
                    })
                    .collect()
            }),
        }
    }
}

/// The chain of one pod in one direction: every allow rule, then the refusal.
fn pod_chain(
    view: &View<'_>,
    pod: &PodRef<'_>,
    policies: &[&Policy<'_>],
    dir: Direction,
) -> Vec<String> {
    let mut out = Vec::new();
    for policy in policies {
        let comment = format!("-m comment --comment \"{}\"", policy.key());
        for rule in dir.rules_of(policy).unwrap_or_default() {
            allow(view, pod, policy, dir, &rule, &comment, &mut out);
        }
    }
    let mut seen = HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    out.push("-p tcp -j REJECT --reject-with tcp-reset".to_string());
    out.push("-j REJECT --reject-with icmp-port-unreachable".to_string());
    out
}

/// What one `ports` entry matches.
enum PortSpec<'a> {
    /// No `ports`: every protocol and port.
    Any,
    /// A protocol without `port`: all its ports.
    Protocol(&'static str),
    /// `port` (and `endPort`): an inclusive range, one port when both ends agree.
    Range(&'static str, u16, u16),
    /// A named container port, resolved per pod.
    Named(&'static str, &'a str),
}

/// `None` for entries the API server would have refused (unknown protocol, port 0 or out
/// of range, `endPort` below `port`): they allow nothing.
fn port_spec(p: &NetworkPolicyPort) -> Option<PortSpec<'_>> {
    let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
        "TCP" => "tcp",
        "UDP" => "udp",
        "SCTP" => "sctp",
        _ => return None,
    };
    match &p.port {
        None => Some(PortSpec::Protocol(protocol)),
        Some(IntOrString::String(name)) => Some(PortSpec::Named(protocol, name)),
        Some(IntOrString::Int(n)) => {
            let first = u16::try_from(*n).ok().filter(|&n| n != 0)?;
            let last = match p.end_port {
                None => first,
                Some(end) => u16::try_from(end).ok().filter(|&end| end >= first)?,
            };
            Some(PortSpec::Range(protocol, first, last))
        }
    }
}

/// The port match for `spec` (empty for any port); a named port is looked up on `on`, and
/// matches nothing when `on` is unknown (an `ipBlock`) or lacks it.
fn port_match(spec: &PortSpec<'_>, on: Option<&PodRef<'_>>) -> Option<String> {
    let (protocol, first, last) = match *spec {
        PortSpec::Any => return Some(String::new()),
        PortSpec::Protocol(protocol) => return Some(format!("-p {protocol}")),
        PortSpec::Range(protocol, first, last) => (protocol, first, last),
        PortSpec::Named(protocol, name) => {
            let n = on?.named_port(name, protocol)?;
            (protocol, n, n)
        }
    };
    Some(if first == last {
        format!("-p {protocol} -m {protocol} --dport {first}")
    } else {
        format!("-p {protocol} -m {protocol} --dport {first}:{last}")
    })
}

/// Where a rule's peers are.
enum Target<'v, 'a> {
    /// No `from`/`to`: anywhere.
    Any,
    Block(Cidr),
    Pod(&'v PodRef<'a>),
}

/// Appends the RETURN rules that one policy rule gives `pod` (peers × ports).
fn allow(
    view: &View<'_>,
    pod: &PodRef<'_>,
    policy: &Policy<'_>,
    dir: Direction,
    rule: &RuleRef<'_>,
    comment: &str,
    out: &mut Vec<String>,
) {
    let ports: Vec<PortSpec<'_>> = match rule.ports {
        None | Some([]) => vec![PortSpec::Any],
        // Entries that cannot match are dropped; if none is left the rule allows nothing.
        Some(list) => list.iter().filter_map(port_spec).collect(),
    };
    let mut targets = Vec::new();
    match rule.peers {
        None | Some([]) => targets.push(Target::Any),
        Some(peers) => {
            for peer in peers {
                match &peer.ip_block {
                    Some(block) => targets.extend(ip_block(block).into_iter().map(Target::Block)),
                    None => targets.extend(
                        view.peer_pods(policy.namespace, peer)
                            .into_iter()
                            .map(Target::Pod),
                    ),
                }
            }
        }
    }

    let flag = dir.peer_flag();
    let mut emit = |addr: &str, port: &str| {
        let parts = [addr, port, comment, "-j RETURN"];
        out.push(
            parts
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        );
    };
    for target in &targets {
        for spec in &ports {
            // Named ports: on the receiving pod for ingress, on the peer for egress.
            match (target, dir) {
                (Target::Any, Direction::Egress) if matches!(spec, PortSpec::Named(..)) => {
                    // Any destination that has the port: every pod that defines it.
                    for peer in &view.pods {
                        if let Some(port) = port_match(spec, Some(peer)) {
                            for ip in &peer.ips {
                                emit(&format!("{flag} {ip}/32"), &port);
                            }
                        }
                    }
                }
                (Target::Any, _) => {
                    if let Some(port) = port_match(spec, Some(pod)) {
                        emit("", &port);
                    }
                }
                (Target::Block(block), _) => {
                    let on = (dir == Direction::Ingress).then_some(pod);
                    if let Some(port) = port_match(spec, on) {
                        emit(&format!("{flag} {block}"), &port);
                    }
                }
                (Target::Pod(peer), _) => {
                    let on = match dir {
                        Direction::Ingress => pod,
                        Direction::Egress => *peer,
                    };
                    if let Some(port) = port_match(spec, Some(on)) {
                        for ip in &peer.ips {
                            emit(&format!("{flag} {ip}/32"), &port);
                        }
                    }
                }
            }
        }
    }
}

/// An `ipBlock` as disjoint blocks. A block or exception that does not parse as IPv4 (an
/// IPv6 block, which these IPv4 rules never see) gives nothing rather than a wider allow.
fn ip_block(block: &k8s_openapi::api::networking::v1::IPBlock) -> Vec<Cidr> {
    let Some(cidr) = Cidr::parse(&block.cidr) else {
        return Vec::new();
    };
    let except: Option<Vec<Cidr>> = block
        .except
        .iter()
        .flatten()
        .map(|e| Cidr::parse(e))
        .collect();
    except.map_or_else(Vec::new, |except| cidr.subtract(&except))
}
