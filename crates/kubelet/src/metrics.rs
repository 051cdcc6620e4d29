//! The agent's Prometheus metrics, served at `/metrics` under upstream kubelet's names:
//! `kubelet_node_name`, `kubelet_running_pods`, `kubelet_running_containers` and
//! `kubelet_pod_start_duration_seconds`. The stats collector (`stats.rs`) moves them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`AgentMetrics::encode`]'s text (OpenMetrics, which Prometheus
/// reads like its own text format).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upstream's `kubelet_pod_start_duration_seconds` buckets.
const POD_START_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    container_state: String,
}

/// One agent's metrics.
#[derive(Debug)]
pub struct AgentMetrics {
    registry: Registry,
    /// Pods with a ready sandbox.
    pub running_pods: Gauge,
    running_containers: Family<StateLabel, Gauge>,
    /// From a pod's sandbox to its first app container, for pods this agent started.
    pub pod_start_duration: Histogram,
}

impl AgentMetrics {
    pub fn new(node_name: &str) -> AgentMetrics {
        let mut registry = Registry::default();
        let node_name_gauge = Family::<NodeLabel, Gauge>::default();
        node_name_gauge
            .get_or_create(&NodeLabel {
                node: node_name.to_string(),
            })
            .set(1);
        registry.register(
            "kubelet_node_name",
            "The node's name. The count is always 1.",
            node_name_gauge,
        );
        let running_pods = Gauge::default();
        registry.register(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            running_pods.clone(),
        );
        let running_containers = Family::<StateLabel, Gauge>::default();
        registry.register(
            "kubelet_running_containers",
            "Number of containers currently running",
            running_containers.clone(),
        );
        let pod_start_duration = Histogram::new(POD_START_BUCKETS.iter().copied());
        registry.register(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            pod_start_duration.clone(),
        );
        AgentMetrics {
            registry,
            running_pods,
            running_containers,
            pod_start_duration,
        }
    }

    /// Sets `kubelet_running_containers{container_state=…}` (`created`, `running`,
    /// `exited`, `unknown`).
    pub fn set_running_containers(&self, state: &str, n: i64) {
        self.running_containers
            .get_or_create(&StateLabel {
                container_state: state.to_string(),
            })
            .set(n);
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_carry_upstreams_names() {
        let m = AgentMetrics::new("node-a");
        m.running_pods.set(2);
        m.set_running_containers("running", 3);
        m.pod_start_duration.observe(1.5);
        let text = m.encode();
        assert!(
            text.contains("kubelet_node_name{node=\"node-a\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("kubelet_running_pods 2\n"), "{text}");
        assert!(
            text.contains("kubelet_running_containers{container_state=\"running\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"2.0\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("kubelet_pod_start_duration_seconds_count 1\n"),
            "{text}"
        );
    }
}
