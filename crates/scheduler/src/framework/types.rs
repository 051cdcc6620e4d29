//! A pod as the scheduler keeps it: the API object plus everything derived from it once
//! (requests, host ports, parsed affinity terms), so no scheduling cycle parses it again.

use std::collections::{BTreeMap, HashMap};

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

use crate::cache::node_info::normalized_image_name;
use crate::resource::{self, Resource};

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// Namespace name → labels, for affinity terms with a `namespaceSelector`.
pub type NamespaceLabels = HashMap<String, BTreeMap<String, String>>;

/// One `(hostIP, protocol, hostPort)` a container claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

const BIND_ALL: &str = "0.0.0.0";

impl HostPort {
    /// Upstream `HostPortInfo.CheckConflict`: the same protocol and port conflict when either
    /// side binds every address or both bind the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == BIND_ALL || other.ip == BIND_ALL || self.ip == other.ip)
    }
}

/// A parsed pod (anti-)affinity term (upstream `framework.AffinityTerm`).
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    /// Explicit namespaces; the pod's own namespace when the term names none and has no
    /// namespace selector.
    pub namespaces: Vec<String>,
    /// `None` matches no namespace (a null selector); an empty one matches all.
    pub namespace_selector: Option<LabelSelector>,
    pub selector: LabelSelector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn parse(owner: &Pod, term: &PodAffinityTerm) -> Result<AffinityTerm, String> {
        let ns = owner.metadata.namespace.as_deref().unwrap_or("default");
        let owner_labels = owner.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS);
        // matchLabelKeys / mismatchLabelKeys: merged into the selector with the owner's
        // values, as the API server does on create (KEP-3633); merging twice is harmless.
        let selector = match &term.label_selector {
            None => LabelSelector::nothing(),
            Some(sel) => {
                let mut sel = sel.clone();
                let extra = |keys: &Option<Vec<String>>, op: &str| {
                    keys.iter()
                        .flatten()
                        .filter_map(|k| {
                            owner_labels
                                .get(k)
                                .map(|v| metav1::LabelSelectorRequirement {
                                    key: k.clone(),
                                    operator: op.to_string(),
                                    values: Some(vec![v.clone()]),
                                })
                        })
                        .collect::<Vec<_>>()
                };
                let mut more = extra(&term.match_label_keys, "In");
                more.extend(extra(&term.mismatch_label_keys, "NotIn"));
                if !more.is_empty() {
                    sel.match_expressions
                        .get_or_insert_with(Vec::new)
                        .extend(more);
                }
                LabelSelector::from_api(Some(&sel)).map_err(|e| e.to_string())?
            }
        };
        let namespace_selector = match &term.namespace_selector {
            None => None,
            Some(s) => Some(LabelSelector::from_api(Some(s)).map_err(|e| e.to_string())?),
        };
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(ns.to_string());
        }
        Ok(AffinityTerm {
            namespaces,
            namespace_selector,
            selector,
            topology_key: term.topology_key.clone(),
        })
    }

    /// Upstream `AffinityTerm.Matches`: the pod is in one of the term's namespaces (listed or
    /// selected by labels) and its labels match the selector.
    pub fn matches(&self, pod: &PodInfo, namespaces: &NamespaceLabels) -> bool {
        let ns = pod.namespace();
        let in_ns = self.namespaces.iter().any(|n| n == ns)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|sel| sel.matches(namespaces.get(ns).unwrap_or(&EMPTY_LABELS)));
        in_ns && self.selector.matches(pod.labels())
    }
}

#[derive(Clone, Debug)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

/// A pod and what the scheduler derives from it.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Pod,
    pub uid: String,
    /// `spec.priority`, or the PriorityClass's value when admission left it unset.
    pub priority: i32,
    /// Upstream `PodRequests` without defaults (what Filter compares with allocatable).
    pub requests: Resource,
    /// CPU (millis) and memory with 100m / 200Mi for containers that request none (scoring).
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub host_ports: Vec<HostPort>,
    /// Container images (init containers first), normalized as node status lists them.
    pub images: Vec<String>,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    /// Why a term could not be parsed; such a pod fails PreFilter of InterPodAffinity.
    pub parse_error: Option<String>,
}

impl PodInfo {
    /// Derives everything from `pod`. `class_priority` resolves a `priorityClassName` when
    /// `spec.priority` is unset.
    pub fn new(pod: Pod, class_priority: impl Fn(&str) -> Option<i32>) -> PodInfo {
        let spec = pod.spec.as_ref();
        let priority = spec
            .and_then(|s| s.priority)
            .or_else(|| {
                spec.and_then(|s| s.priority_class_name.as_deref())
                    .filter(|n| !n.is_empty())
                    .and_then(&class_priority)
            })
            .or_else(|| class_priority(""))
            .unwrap_or(0);
        let requests = resource::pod_requests(&pod, false);
        let non_zero = resource::pod_requests(&pod, true);
        let mut host_ports = Vec::new();
        if let Some(spec) = spec {
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in spec.containers.iter().chain(sidecars) {
                for p in c.ports.iter().flatten() {
                    if let Some(port) = p.host_port.filter(|p| *p > 0) {
                        host_ports.push(HostPort {
                            ip: p
                                .host_ip
                                .clone()
                                .filter(|ip| !ip.is_empty())
                                .unwrap_or_else(|| BIND_ALL.to_string()),
                            protocol: p
                                .protocol
                                .clone()
                                .filter(|p| !p.is_empty())
                                .unwrap_or_else(|| "TCP".to_string()),
                            port,
                        });
                    }
                }
            }
        }
        let images = spec
            .map(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .chain(&s.containers)
                    .map(|c| normalized_image_name(c.image.as_deref().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        let mut info = PodInfo {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            images,
            priority,
            requests,
            non_zero_cpu: non_zero.milli_cpu,
            non_zero_memory: non_zero.memory,
            host_ports,
            required_affinity: Vec::new(),
            required_anti_affinity: Vec::new(),
            preferred_affinity: Vec::new(),
            preferred_anti_affinity: Vec::new(),
            parse_error: None,
            pod,
        };
        if let Err(e) = info.parse_affinity() {
            info.parse_error = Some(e);
        }
        info
    }

    fn parse_affinity(&mut self) -> Result<(), String> {
        let Some(aff) = self.pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
            return Ok(());
        };
        let pod = &self.pod;
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Result<Vec<AffinityTerm>, String> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::parse(pod, t))
                .collect()
        };
        let preferred =
            |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                terms
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        Ok(WeightedAffinityTerm {
                            term: AffinityTerm::parse(pod, &t.pod_affinity_term)?,
                            weight: t.weight,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            };
        if let Some(a) = &aff.pod_affinity {
            self.required_affinity = required(
                a.required_during_scheduling_ignored_during_execution
                    .as_ref(),
            )?;
            self.preferred_affinity = preferred(
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref(),
            )?;
        }
        if let Some(a) = &aff.pod_anti_affinity {
            self.required_anti_affinity = required(
                a.required_during_scheduling_ignored_during_execution
                    .as_ref(),
            )?;
            self.preferred_anti_affinity = preferred(
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref(),
            )?;
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }

    pub fn node_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("")
    }

    pub fn scheduler_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
    }

    pub fn nominated_node_name(&self) -> &str {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("")
    }

    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// Succeeded or Failed: such a pod holds no resources.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    }

    pub fn resource_version(&self) -> &str {
        self.pod.metadata.resource_version.as_deref().unwrap_or("")
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    pub fn has_scheduling_gates(&self) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_some_and(|g| !g.is_empty())
    }

    /// When the pod started (or was created), for preemption's tie-breaks.
    pub fn start_time(&self) -> Option<jiff::Timestamp> {
        self.pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .or(self.pod.metadata.creation_timestamp.as_ref())
            .map(|t| t.0)
    }

    /// `ns/name`, for logs and events.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn affinity_terms_default_namespace_and_merge_label_keys() {
        let p = PodInfo::new(
            pod(json!({
                "metadata": {"name": "a", "namespace": "web", "uid": "u1",
                             "labels": {"app": "x", "rev": "2"}},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname",
                         "matchLabelKeys": ["rev"]}
                    ]}}}
            })),
            |_| None,
        );
        assert!(p.parse_error.is_none());
        let t = &p.required_anti_affinity[0];
        assert_eq!(t.namespaces, ["web"]);
        assert_eq!(t.selector.to_string(), "app=x,rev in (2)");
        assert_eq!(
            p.host_ports,
            [HostPort {
                ip: "0.0.0.0".into(),
                protocol: "TCP".into(),
                port: 8080
            }]
        );
        assert!(t.matches(&p, &NamespaceLabels::new()));
    }

    #[test]
    fn priority_comes_from_class_when_unset() {
        let p = PodInfo::new(
            pod(
                json!({"metadata": {"name": "a"}, "spec": {"priorityClassName": "high", "containers": []}}),
            ),
            |n| (n == "high").then_some(1000),
        );
        assert_eq!(p.priority, 1000);
        let p = PodInfo::new(
            pod(
                json!({"metadata": {"name": "a"}, "spec": {"priority": 5, "priorityClassName": "high", "containers": []}}),
            ),
            |_| Some(1000),
        );
        assert_eq!(p.priority, 5);
    }

    #[test]
    fn host_port_conflicts() {
        let hp = |ip: &str, port| HostPort {
            ip: ip.into(),
            protocol: "TCP".into(),
            port,
        };
        assert!(hp("0.0.0.0", 80).conflicts(&hp("10.0.0.1", 80)));
        assert!(hp("10.0.0.1", 80).conflicts(&hp("10.0.0.1", 80)));
        assert!(!hp("10.0.0.1", 80).conflicts(&hp("10.0.0.2", 80)));
        assert!(!hp("0.0.0.0", 80).conflicts(&hp("0.0.0.0", 81)));
    }
}
