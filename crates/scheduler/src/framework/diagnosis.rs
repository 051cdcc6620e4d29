//! Why a pod fit nowhere, and the message users read in `kubectl describe`
//! (upstream `FitError.Error()`):
//! `0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu.
//! preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.`

use std::collections::BTreeMap;

use super::status::Status;

/// Per-node rejections from one cycle.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    /// (node slot, status) for every node that was rejected.
    pub statuses: Vec<(usize, Status)>,
    /// The status of every node not in `statuses` (set when PreFilter rejected the pod for
    /// all nodes, and by preemption for nodes it did not try).
    pub absent: Option<Status>,
    /// Plugins that rejected the pod somewhere; the queue re-queues on their events.
    pub unschedulable_plugins: Vec<&'static str>,
    /// A PreFilter rejection's message (then the per-node reasons are not repeated).
    pub pre_filter_msg: Option<String>,
    /// What PostFilter (preemption) said.
    pub post_filter_msg: String,
}

impl Diagnosis {
    pub fn add_plugin(&mut self, plugin: &'static str) {
        if !plugin.is_empty() && !self.unschedulable_plugins.contains(&plugin) {
            self.unschedulable_plugins.push(plugin);
        }
    }

    /// The status recorded for node `slot` (or the absent status).
    pub fn status_of(&self, slot: usize) -> Option<&Status> {
        self.statuses
            .iter()
            .find(|(i, _)| *i == slot)
            .map(|(_, s)| s)
            .or(self.absent.as_ref())
    }
}

/// A pod fit none of `num_all_nodes` nodes.
#[derive(Clone, Debug)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

impl FitError {
    /// Upstream's message, without the final period when `terminated` is false (the
    /// preemption message is embedded in the outer one, which adds the period).
    fn render(&self, terminated: bool) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        let mut parts: Vec<String> = Vec::new();
        if let Some(pre) = &self.diagnosis.pre_filter_msg {
            parts.push(pre.clone());
        } else {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, s) in &self.diagnosis.statuses {
                for r in s.reasons() {
                    *counts.entry(r.as_ref()).or_default() += 1;
                }
            }
            let absent = self
                .num_all_nodes
                .saturating_sub(self.diagnosis.statuses.len());
            if absent > 0
                && let Some(s) = &self.diagnosis.absent
            {
                for r in s.reasons() {
                    *counts.entry(r.as_ref()).or_default() += absent;
                }
            }
            let mut histogram: Vec<String> =
                counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
            // Upstream sorts the rendered strings, count first.
            histogram.sort();
            if !histogram.is_empty() {
                parts.push(histogram.join(", "));
            }
        }
        if !self.diagnosis.post_filter_msg.is_empty() {
            parts.push(self.diagnosis.post_filter_msg.clone());
        }
        let n = parts.len();
        for (i, p) in parts.into_iter().enumerate() {
            msg.push(' ');
            msg.push_str(&p);
            if terminated || i + 1 < n {
                msg.push('.');
            }
        }
        msg
    }

    /// The message for the pod's condition and its `FailedScheduling` event.
    pub fn message(&self) -> String {
        self.render(true)
    }

    /// The message as nested in an outer one (`preemption: …`): no final period.
    pub fn nested_message(&self) -> String {
        self.render(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::status::Code;

    #[test]
    fn message_matches_upstream_shape() {
        let d = Diagnosis {
            statuses: vec![
                (
                    0,
                    Status::unresolvable("node(s) had untolerated taint {dedicated: gpu}"),
                ),
                (1, Status::unschedulable("Insufficient cpu")),
                (2, Status::unschedulable("Insufficient cpu")),
            ],
            ..Default::default()
        };
        let mut fe = FitError {
            num_all_nodes: 3,
            diagnosis: d,
        };
        let inner = FitError {
            num_all_nodes: 3,
            diagnosis: Diagnosis {
                absent: Some(Status::unresolvable(
                    "Preemption is not helpful for scheduling",
                )),
                ..Default::default()
            },
        };
        fe.diagnosis.post_filter_msg = format!("preemption: {}", inner.nested_message());
        assert_eq!(
            fe.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: \
             3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn multiple_reasons_per_node_and_prefilter() {
        let fe = FitError {
            num_all_nodes: 2,
            diagnosis: Diagnosis {
                statuses: vec![
                    (
                        0,
                        Status::with_reasons(
                            Code::Unschedulable,
                            vec!["Insufficient cpu".into(), "Insufficient memory".into()],
                        ),
                    ),
                    (1, Status::unschedulable("Insufficient memory")),
                ],
                ..Default::default()
            },
        };
        assert_eq!(
            fe.message(),
            "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."
        );
        let fe = FitError {
            num_all_nodes: 5,
            diagnosis: Diagnosis {
                pre_filter_msg: Some("pod has unbound immediate PersistentVolumeClaims".into()),
                ..Default::default()
            },
        };
        assert_eq!(
            fe.message(),
            "0/5 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        );
        let empty = FitError {
            num_all_nodes: 0,
            diagnosis: Diagnosis::default(),
        };
        assert_eq!(empty.message(), "0/0 nodes are available:");
    }
}
