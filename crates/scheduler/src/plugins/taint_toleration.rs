//! TaintToleration: a `NoSchedule`/`NoExecute` taint the pod does not tolerate rules the node
//! out; untolerated `PreferNoSchedule` taints lower its score (upstream `tainttoleration`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Taint;

use super::helper::{
    default_normalize, find_untolerated, is_do_not_schedule, pod_tolerations, tolerates,
};
use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, Plugin, PodInfo, Points, Slot, Status,
};

pub const NAME: &str = "TaintToleration";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(TaintToleration))
}

/// Upstream's rejection text, naming the taint.
pub fn untolerated_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::FILTER.or(Points::PRE_SCORE).or(Points::SCORE)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(
            EventResource::Node,
            Action::ADD
                .or(Action::UPDATE_NODE_TAINT)
                .or(Action::UPDATE_NODE_LABEL),
        )]
    }

    fn filter(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Status {
        let taints = node.taints();
        if taints.is_empty() {
            return Status::success();
        }
        match find_untolerated(taints, pod_tolerations(&pod.pod), is_do_not_schedule) {
            None => Status::success(),
            Some(t) => Status::unresolvable(untolerated_reason(t)),
        }
    }

    fn score(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Result<i64, Status> {
        let tolerations = pod_tolerations(&pod.pod);
        // Only tolerations that can tolerate PreferNoSchedule count (upstream
        // `getAllTolerationPreferNoSchedule`).
        let relevant = |t: &&k8s_openapi::api::core::v1::Toleration| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
        };
        Ok(node
            .taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|t| {
                !tolerations
                    .iter()
                    .filter(relevant)
                    .any(|tol| tolerates(tol, t))
            })
            .count() as i64)
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
        default_normalize(scores, true);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn tainted(name: &str, taints: serde_json::Value) -> Arc<k8s_openapi::api::core::v1::Node> {
        node(
            json!({"metadata": {"name": name}, "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "1", "pods": "10"}}}),
        )
    }

    #[test]
    fn filter_table() {
        let c = cache_with(
            vec![
                tainted(
                    "gpu",
                    json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
                ),
                tainted("soft", json!([{"key": "k", "effect": "PreferNoSchedule"}])),
                tainted(
                    "master",
                    json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                ),
            ],
            vec![],
        );
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let plain = pod(json!({"metadata": {"name": "plain"}}));
        let tolerant = pod(json!({"metadata": {"name": "t"}, "spec": {"tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}));
        let cases = [
            (
                &plain,
                "gpu",
                Code::UnschedulableAndUnresolvable,
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (&plain, "soft", Code::Success, None),
            (
                &plain,
                "master",
                Code::UnschedulableAndUnresolvable,
                Some("node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"),
            ),
            (&tolerant, "gpu", Code::Success, None),
        ];
        for (pd, n, code, reason) in cases {
            let node = c.node_by_name(n).expect("node");
            let s = with_cycle(&c, |cx| p.filter(cx, pd, &Slot::default(), node));
            assert_eq!(s.code(), code, "{} on {n}", pd.name());
            if let Some(r) = reason {
                assert_eq!(s.reasons(), [r]);
            }
        }
    }

    #[test]
    fn prefer_no_schedule_lowers_score() {
        let c = cache_with(
            vec![
                tainted(
                    "two",
                    json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]),
                ),
                tainted("one", json!([{"key": "a", "effect": "PreferNoSchedule"}])),
                tainted("none", json!([])),
            ],
            vec![],
        );
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let pd = pod(
            json!({"metadata": {"name": "p"}, "spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
        );
        let mut scores: Vec<i64> = with_cycle(&c, |cx| {
            c.order()
                .iter()
                .map(|&i| {
                    p.score(cx, &pd, &Slot::default(), c.node(i))
                        .expect("score")
                })
                .collect()
        });
        assert_eq!(scores, [1, 1, 0]);
        with_cycle(&c, |cx| {
            p.normalize_score(cx, &pd, &Slot::default(), &mut scores)
        });
        assert_eq!(scores, [0, 0, 100]);
    }
}
