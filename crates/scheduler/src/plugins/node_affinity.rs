//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes; preferred
//! node affinity terms score them by summed weight (upstream `nodeaffinity`). The profile may
//! add an `addedAffinity` every pod must also satisfy.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{NodeAffinity as ApiNodeAffinity, PreferredSchedulingTerm};
use serde::Deserialize;

use super::helper::{default_normalize, required_node_affinity_matches, term_matches, terms_match};
use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, Plugin, PodInfo, Points, Slot, Status,
};

pub const NAME: &str = "NodeAffinity";

/// Upstream `ErrReasonPod`.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// Upstream `errReasonEnforced`.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    added_affinity: Option<ApiNodeAffinity>,
}

pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = match args {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("NodeAffinityArgs: {e}"))?
        }
        None => Args::default(),
    };
    Ok(Arc::new(NodeAffinity {
        added: args.added_affinity,
    }))
}

struct NodeAffinity {
    added: Option<ApiNodeAffinity>,
}

/// The pod's preferred terms plus the profile's.
#[derive(Clone)]
struct Preferred(Vec<PreferredSchedulingTerm>);

fn preferred_of(pod: &PodInfo) -> &[PreferredSchedulingTerm] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or(&[])
}

impl NodeAffinity {
    fn added_required_matches(&self, node: &NodeInfo) -> bool {
        match self.added.as_ref().and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }) {
            Some(sel) => terms_match(&sel.node_selector_terms, node),
            None => true,
        }
    }

    fn added_preferred(&self) -> &[PreferredSchedulingTerm] {
        self.added
            .as_ref()
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or(&[])
    }
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::PRE_FILTER
            .or(Points::FILTER)
            .or(Points::PRE_SCORE)
            .or(Points::SCORE)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::Node,
            Action::ADD
                .or(Action::UPDATE_NODE_LABEL)
                .or(Action::UPDATE_NODE_TAINT),
        )]
    }

    fn pre_filter(&self, _cx: &Cycle, pod: &PodInfo, _s: &mut Slot) -> Status {
        let spec = pod.pod.spec.as_ref();
        let has_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .is_some_and(|m| !m.is_empty());
        let has_required = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .is_some_and(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .is_some()
            });
        let has_added = self.added.as_ref().is_some_and(|a| {
            a.required_during_scheduling_ignored_during_execution
                .is_some()
        });
        if has_selector || has_required || has_added {
            Status::success()
        } else {
            Status::skip()
        }
    }

    fn filter(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Status {
        if !self.added_required_matches(node) {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        if !required_node_affinity_matches(&pod.pod, node) {
            return Status::unresolvable(ERR_REASON_POD);
        }
        Status::success()
    }

    fn pre_score(&self, _cx: &Cycle, pod: &PodInfo, state: &mut Slot, _nodes: &[usize]) -> Status {
        let own = preferred_of(pod);
        let added = self.added_preferred();
        if own.is_empty() && added.is_empty() {
            return Status::skip();
        }
        state.put(Preferred(own.iter().chain(added).cloned().collect()));
        Status::success()
    }

    fn score(
        &self,
        _cx: &Cycle,
        _pod: &PodInfo,
        state: &Slot,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let Some(Preferred(terms)) = state.get::<Preferred>() else {
            return Ok(0);
        };
        Ok(terms
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, node))
            .map(|t| i64::from(t.weight))
            .sum())
    }

    fn has_normalize(&self) -> bool {
        true
    }

    fn normalize_score(
        &self,
        _cx: &Cycle,
        _pod: &PodInfo,
        _s: &Slot,
        scores: &mut [i64],
    ) -> Status {
        default_normalize(scores, false);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn plugin(args: serde_json::Value) -> Arc<dyn Plugin> {
        new(
            Some(&args),
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin")
    }

    #[test]
    fn filter_table() {
        let ssd = simple_node("ssd", json!({"disktype": "ssd", "zone": "a"}), "1", "1Gi");
        let hdd = simple_node("hdd", json!({"disktype": "hdd", "zone": "b"}), "1", "1Gi");
        let c = cache_with(vec![ssd, hdd], vec![]);
        let p = plugin(json!({}));
        let cases = [
            (
                json!({"nodeSelector": {"disktype": "ssd"}}),
                "ssd",
                Code::Success,
            ),
            (
                json!({"nodeSelector": {"disktype": "ssd"}}),
                "hdd",
                Code::UnschedulableAndUnresolvable,
            ),
            (
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}}),
                "hdd",
                Code::Success,
            ),
            (
                json!({"nodeSelector": {"disktype": "hdd"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
                "hdd",
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (spec, node, code) in cases {
            let pd = pod(json!({"metadata": {"name": "p"}, "spec": spec}));
            let mut slot = Slot::default();
            let n = c.node_by_name(node).expect("node");
            let s = with_cycle(&c, |cx| {
                assert!(p.pre_filter(cx, &pd, &mut slot).is_success());
                p.filter(cx, &pd, &slot, n)
            });
            assert_eq!(s.code(), code, "{spec} on {node}");
            if code != Code::Success {
                assert_eq!(s.reasons(), [ERR_REASON_POD]);
            }
        }
        let plain = pod(json!({"metadata": {"name": "p"}}));
        assert!(with_cycle(&c, |cx| p.pre_filter(cx, &plain, &mut Slot::default())).is_skip());
    }

    #[test]
    fn added_affinity_is_enforced() {
        let c = cache_with(
            vec![simple_node("n", json!({"pool": "x"}), "1", "1Gi")],
            vec![],
        );
        let p = plugin(
            json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["y"]}]}]}}}),
        );
        let pd = pod(json!({"metadata": {"name": "p"}}));
        let n = c.node_by_name("n").expect("n");
        let s = with_cycle(&c, |cx| p.filter(cx, &pd, &Slot::default(), n));
        assert_eq!(s.reasons(), [ERR_REASON_ENFORCED]);
    }

    #[test]
    fn preferred_terms_score() {
        let c = cache_with(
            vec![
                simple_node("a", json!({"zone": "a", "ssd": "true"}), "1", "1Gi"),
                simple_node("b", json!({"zone": "b"}), "1", "1Gi"),
                simple_node("c", json!({"zone": "a"}), "1", "1Gi"),
            ],
            vec![],
        );
        let p = plugin(json!({}));
        let pd = pod(
            json!({"metadata": {"name": "p"}, "spec": {"affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 2, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
                {"weight": 8, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}]}}}}),
        );
        let nodes: Vec<usize> = c.order().to_vec();
        let scores = with_cycle(&c, |cx| {
            let mut slot = Slot::default();
            assert!(p.pre_score(cx, &pd, &mut slot, &nodes).is_success());
            let mut s: Vec<i64> = nodes
                .iter()
                .map(|&i| p.score(cx, &pd, &slot, c.node(i)).expect("score"))
                .collect();
            p.normalize_score(cx, &pd, &slot, &mut s);
            s
        });
        assert_eq!(scores, [100, 0, 20]);
    }
}
