//! NodeName: a pod that names its node fits only that node (upstream `nodename`).

use std::sync::Arc;

use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, Plugin, PodInfo, Points, Slot, Status,
};

pub const NAME: &str = "NodeName";

/// Upstream `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeName))
}

struct NodeName;

impl Plugin for NodeName {
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
        let wanted = pod.node_name();
        if wanted.is_empty() || wanted == node.name {
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
        let n = node_info(simple_node("n1", json!({}), "1", "1Gi"));
        let c = cache_with(vec![], vec![]);
        let cases = [
            ("", Code::Success),
            ("n1", Code::Success),
            ("n2", Code::UnschedulableAndUnresolvable),
        ];
        for (want_node, code) in cases {
            let p = pod(json!({"metadata": {"name": "p"}, "spec": {"nodeName": want_node}}));
            let s = with_cycle(&c, |cx| NodeName.filter(cx, &p, &Slot::default(), &n));
            assert_eq!(s.code(), code, "{want_node}");
        }
    }
}
