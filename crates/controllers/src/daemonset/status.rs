//! DaemonSet status (upstream `updateDaemonSetStatus`): per node that should run a daemon
//! pod, whether it has one, and whether the oldest is ready, available and updated; pods on
//! nodes that should not run one are misscheduled.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::manage::{by_node, oldest_first};
use super::{Controller, Error, min_ready, nodes};
use crate::podutil;

/// The counters as upstream computes them (`observedGeneration` aside).
pub(super) fn compute(
    ds: &DaemonSet,
    node_list: &[Arc<Node>],
    pods: &[Arc<k8s_openapi::api::core::v1::Pod>],
    hash: &str,
    now: jiff::Timestamp,
) -> DaemonSetStatus {
    let mut on_node = by_node(pods, false);
    let generation = nodes::template_generation(ds);
    let mut s = DaemonSetStatus::default();
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for node in node_list {
        let (should_run, _) = nodes::should_run(node, ds);
        let daemon_pods = on_node.get_mut(&node.name_any()).filter(|p| !p.is_empty());
        if !should_run {
            if daemon_pods.is_some() {
                s.number_misscheduled += 1;
            }
            continue;
        }
        s.desired_number_scheduled += 1;
        let Some(daemon_pods) = daemon_pods else {
            continue;
        };
        s.current_number_scheduled += 1;
        oldest_first(daemon_pods);
        let pod = &daemon_pods[0];
        if podutil::is_ready(pod) {
            ready += 1;
            if podutil::is_available(pod, min_ready(ds), now) {
                available += 1;
            }
        }
        if nodes::is_updated(pod, hash, generation) {
            updated += 1;
        }
    }
    s.number_ready = ready;
    s.number_available = Some(available);
    s.updated_number_scheduled = Some(updated);
    s.number_unavailable = Some(s.desired_number_scheduled - available);
    s
}

impl Controller {
    /// Writes the status when a counter changed or the generation is newly observed; asks
    /// for a look again after `minReadySeconds` while ready pods are not yet available.
    pub(super) async fn update_status(
        &self,
        ds: &DaemonSet,
        node_list: &[Arc<Node>],
        hash: &str,
        observe_generation: bool,
    ) -> Result<Option<Duration>, Error> {
        let s = compute(
            ds,
            node_list,
            &self.owned_pods(ds),
            hash,
            jiff::Timestamp::now(),
        );
        let old = ds.status.clone().unwrap_or_default();
        let n = |v: Option<i32>| v.unwrap_or(0);
        let generation_seen =
            old.observed_generation.unwrap_or(0) >= ds.metadata.generation.unwrap_or(0);
        let same = old.desired_number_scheduled == s.desired_number_scheduled
            && old.current_number_scheduled == s.current_number_scheduled
            && old.number_misscheduled == s.number_misscheduled
            && old.number_ready == s.number_ready
            && n(old.updated_number_scheduled) == n(s.updated_number_scheduled)
            && n(old.number_available) == n(s.number_available)
            && n(old.number_unavailable) == n(s.number_unavailable);
        if !(same && generation_seen) {
            let mut status = json!({
                "desiredNumberScheduled": s.desired_number_scheduled,
                "currentNumberScheduled": s.current_number_scheduled,
                "numberMisscheduled": s.number_misscheduled,
                "numberReady": s.number_ready,
                "updatedNumberScheduled": n(s.updated_number_scheduled),
                "numberAvailable": n(s.number_available),
                "numberUnavailable": n(s.number_unavailable),
            });
            if observe_generation {
                status["observedGeneration"] = json!(ds.metadata.generation);
            }
            let api: Api<DaemonSet> =
                Api::namespaced(self.ctx.client.clone(), &ds.namespace().unwrap_or_default());
            match api
                .patch_status(
                    &ds.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if crate::is_not_found(&e) => return Ok(None),
                Err(e) => return Err(Error::UpdateStatus(e)),
            }
        }
        let secs = min_ready(ds);
        if secs > 0 && s.number_ready != n(s.number_available) {
            return Ok(Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0))));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn node(name: &str, taints: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints}}))
                .expect("node"),
        )
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"controller-revision-hash": hash}},
                "spec": {"nodeName": node, "containers": []},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn counts_follow_nodes_that_should_run_a_pod() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": []}}}
        }))
        .expect("ds");
        let nodes = vec![
            node("a", json!([])),
            node("b", json!([])),
            node("c", json!([])),
            node("gone", json!([{"key": "k", "effect": "NoExecute"}])),
        ];
        let pods = vec![
            pod("p-a", "a", "new", true),
            pod("p-b", "b", "old", false),
            pod("p-gone", "gone", "new", true),
        ];
        let s = compute(&ds, &nodes, &pods, "new", jiff::Timestamp::now());
        assert_eq!(s.desired_number_scheduled, 3);
        assert_eq!(s.current_number_scheduled, 2);
        assert_eq!(s.number_misscheduled, 1);
        assert_eq!(s.number_ready, 1);
        assert_eq!(s.number_available, Some(1));
        assert_eq!(s.updated_number_scheduled, Some(1));
        assert_eq!(s.number_unavailable, Some(2));
    }
}
