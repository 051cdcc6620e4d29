//! The cluster as policies see it: the pods that have an address (any node), the
//! namespaces' labels, and which of those pods a policy's selectors pick.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

/// Upstream sets this label on every Namespace; it is assumed here too, so that a
/// `namespaceSelector` naming a namespace works even before the Namespace is cached.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// A pod that can send or receive pod-network traffic.
pub struct PodRef<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// Its IPv4 addresses (`status.podIPs`, else `status.podIP`), sorted.
    pub ips: Vec<Ipv4Addr>,
    /// Scheduled to this node: its traffic is enforced here.
    pub local: bool,
    pub pod: &'a Pod,
}

impl PodRef<'_> {
    /// `ns/name`, the key of its chains and the text of its comments.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The number of the container port called `name` for `protocol` (upstream resolves
    /// named ports against `spec.containers`, first match wins).
    pub fn named_port(&self, name: &str, protocol: &str) -> Option<u16> {
        let spec = self.pod.spec.as_ref()?;
        spec.containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name)
                    && p.protocol
                        .as_deref()
                        .unwrap_or("TCP")
                        .eq_ignore_ascii_case(protocol)
            })
            .and_then(|p| u16::try_from(p.container_port).ok())
            .filter(|&n| n != 0)
    }
}

fn ipv4s(pod: &Pod) -> Vec<Ipv4Addr> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed = status.pod_ips.iter().flatten().map(|p| p.ip.as_str());
    let mut ips: Vec<Ipv4Addr> = listed
        .chain(status.pod_ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Everything the rules are computed from, indexed once.
pub struct View<'a> {
    /// Pods with an IPv4 address that are not hostNetwork and not finished (a finished
    /// pod's address may already be another pod's), sorted by namespace and name.
    pub pods: Vec<PodRef<'a>>,
    namespaces: BTreeMap<&'a str, BTreeMap<String, String>>,
}

impl<'a> View<'a> {
    pub fn new(node: &str, pods: &'a [Arc<Pod>], namespaces: &'a [Arc<Namespace>]) -> View<'a> {
        let mut refs: Vec<PodRef<'a>> = pods
            .iter()
            .filter_map(|pod| {
                let spec = pod.spec.as_ref()?;
                if spec.host_network == Some(true) {
                    return None;
                }
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if matches!(phase, Some("Succeeded" | "Failed")) {
                    return None;
                }
                let ips = ipv4s(pod);
                if ips.is_empty() {
                    return None;
                }
                Some(PodRef {
                    namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
                    name: pod.metadata.name.as_deref().unwrap_or(""),
                    labels: pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS),
                    ips,
                    local: spec.node_name.as_deref() == Some(node),
                    pod,
                })
            })
            .collect();
        refs.sort_by(|a, b| (a.namespace, a.name).cmp(&(b.namespace, b.name)));

        let mut ns_labels: BTreeMap<&'a str, BTreeMap<String, String>> = BTreeMap::new();
        for ns in namespaces {
            let Some(name) = ns.metadata.name.as_deref() else {
                continue;
            };
            let mut labels = ns.metadata.labels.clone().unwrap_or_default();
            labels.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
            ns_labels.insert(name, labels);
        }
        for pod in &refs {
            ns_labels.entry(pod.namespace).or_insert_with(|| {
                BTreeMap::from([(NAMESPACE_NAME_LABEL.to_string(), pod.namespace.to_string())])
            });
        }
        View {
            pods: refs,
            namespaces: ns_labels,
        }
    }

    /// The pods one peer (without `ipBlock`) selects, for a policy in `policy_ns`:
    /// `podSelector` alone picks pods of the policy's namespace, `namespaceSelector` alone
    /// every pod of the matching namespaces, both together the matching pods of the
    /// matching namespaces.
    pub fn peer_pods(&self, policy_ns: &str, peer: &NetworkPolicyPeer) -> Vec<&PodRef<'a>> {
        let pod_sel = peer.pod_selector.as_ref().map(selector);
        let ns_sel = peer.namespace_selector.as_ref().map(selector);
        if pod_sel.is_none() && ns_sel.is_none() {
            // Not a valid peer (validation requires one of the three fields).
            return Vec::new();
        }
        self.pods
            .iter()
            .filter(|p| match &ns_sel {
                None => p.namespace == policy_ns,
                Some(sel) => self
                    .namespaces
                    .get(p.namespace)
                    .is_some_and(|labels| sel.matches(labels)),
            })
            .filter(|p| pod_sel.as_ref().is_none_or(|sel| sel.matches(p.labels)))
            .collect()
    }
}

/// A selector from the API; an invalid one (the API server rejects those) selects nothing.
fn selector(sel: &metav1::LabelSelector) -> LabelSelector {
    LabelSelector::from_api(Some(sel)).unwrap_or_else(|_| LabelSelector::nothing())
}

/// One NetworkPolicy with its defaults applied.
pub struct Policy<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pod_selector: LabelSelector,
    /// `Some` when the policy is of type Ingress (no rules: nothing is allowed in).
    pub ingress: Option<&'a [NetworkPolicyIngressRule]>,
    /// `Some` when the policy is of type Egress.
    pub egress: Option<&'a [NetworkPolicyEgressRule]>,
}

impl<'a> Policy<'a> {
    /// `policyTypes` as upstream defaults it: when unset, Ingress always and Egress when
    /// the policy has egress rules. A policy with no spec isolates nothing.
    pub fn new(policy: &'a NetworkPolicy) -> Option<Policy<'a>> {
        let spec = policy.spec.as_ref()?;
        let ingress = spec.ingress.as_deref().unwrap_or(&[]);
        let egress = spec.egress.as_deref().unwrap_or(&[]);
        let (is_ingress, is_egress) = match spec.policy_types.as_deref() {
            Some(types) if !types.is_empty() => (
                types.iter().any(|t| t == "Ingress"),
                types.iter().any(|t| t == "Egress"),
            ),
            _ => (true, !egress.is_empty()),
        };
        Some(Policy {
            namespace: policy.metadata.namespace.as_deref().unwrap_or("default"),
            name: policy.metadata.name.as_deref().unwrap_or(""),
            // Required upstream, where absent reads as `{}`: every pod of the namespace.
            pod_selector: spec
                .pod_selector
                .as_ref()
                .map_or_else(LabelSelector::everything, selector),
            ingress: is_ingress.then_some(ingress),
            egress: is_egress.then_some(egress),
        })
    }

    /// Whether the policy applies to `pod` (same namespace, `podSelector` matches).
    pub fn selects(&self, pod: &PodRef<'_>) -> bool {
        pod.namespace == self.namespace && self.pod_selector.matches(pod.labels)
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
