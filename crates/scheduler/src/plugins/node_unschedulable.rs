//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take no new pods unless the pod
//! tolerates `node.kubernetes.io/unschedulable:NoSchedule` (upstream `nodeunschedulable`).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Taint;

use super::helper::{pod_tolerations, tolerates};
use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, Plugin, PodInfo, Points, Slot, Status,
};

pub const NAME: &str = "NodeUnschedulable";

/// Upstream `ErrReasonUnschedulable`.
pub const ERR_REASON: &str = "node(s) were unschedulable";

pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeUnschedulable {
        taint: Taint {
            key: TAINT_UNSCHEDULABLE.to_string(),
            effect: "NoSchedule".to_string(),
            ..Default::default()
        },
    }))
}

struct NodeUnschedulable {
    taint: Taint,
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::FILTER
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
        if !node.unschedulable
            || pod_tolerations(&pod.pod)
                .iter()
                .any(|t| tolerates(t, &self.taint))
        {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    #[test]
    fn filter() {
        let cordoned = node_info(node(
            json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}}),
        ));
        let open = node_info(node(json!({"metadata": {"name": "n2"}})));
        let plain = pod(json!({"metadata": {"name": "p"}}));
        let tolerant = pod(json!({"metadata": {"name": "t"}, "spec": {"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}));
        let c = cache_with(vec![], vec![]);
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let cases = [
            (&plain, &cordoned, Code::UnschedulableAndUnresolvable),
            (&plain, &open, Code::Success),
            (&tolerant, &cordoned, Code::Success),
        ];
        for (pd, n, code) in cases {
            let s = with_cycle(&c, |cx| p.filter(cx, pd, &Slot::default(), n));
            assert_eq!(s.code(), code, "{} on {}", pd.name(), n.name);
            if code != Code::Success {
                assert_eq!(s.reasons(), [ERR_REASON]);
            }
        }
    }
}
