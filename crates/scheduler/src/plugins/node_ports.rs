//! NodePorts: a pod asking for a host port fits only nodes where no pod holds the same
//! protocol and port on an overlapping address (upstream `nodeports`).

use std::sync::Arc;

use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, Plugin, PodInfo, Points, Slot, Status,
};

pub const NAME: &str = "NodePorts";

/// Upstream `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodePorts))
}

struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::PRE_FILTER.or(Points::FILTER)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::AssignedPod, Action::DELETE),
            ClusterEvent::new(
                EventResource::Node,
                Action::ADD
                    .or(Action::UPDATE_NODE_TAINT)
                    .or(Action::UPDATE_NODE_LABEL),
            ),
        ]
    }

    fn pre_filter(&self, _cx: &Cycle, pod: &PodInfo, _s: &mut Slot) -> Status {
        if pod.host_ports.is_empty() {
            Status::skip()
        } else {
            Status::success()
        }
    }

    fn filter(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn with_port(name: &str, node: &str, port: i32, ip: &str, proto: &str) -> PodInfo {
        pod(
            json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": port, "hostIP": ip, "protocol": proto}]}]}}),
        )
    }

    #[test]
    fn filter_table() {
        let c = cache_with(
            vec![simple_node("n", json!({}), "4", "4Gi")],
            vec![with_port("used", "n", 8080, "", "TCP")],
        );
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let n = c.node_by_name("n").expect("n");
        let cases = [
            (with_port("a", "", 8080, "", "TCP"), Code::Unschedulable),
            (
                with_port("b", "", 8080, "127.0.0.1", "TCP"),
                Code::Unschedulable,
            ),
            (with_port("c", "", 8080, "", "UDP"), Code::Success),
            (with_port("d", "", 8081, "", "TCP"), Code::Success),
        ];
        for (pd, code) in cases {
            let s = with_cycle(&c, |cx| {
                let mut slot = Slot::default();
                assert!(p.pre_filter(cx, &pd, &mut slot).is_success());
                p.filter(cx, &pd, &slot, n)
            });
            assert_eq!(s.code(), code, "{}", pd.name());
        }
        let none = pod(json!({"metadata": {"name": "none"}}));
        assert!(with_cycle(&c, |cx| p.pre_filter(cx, &none, &mut Slot::default())).is_skip());
    }
}
