//! Node lifecycle (upstream `pkg/controller/nodelifecycle` with its taint-based eviction):
//!
//! - A node whose kubelet stops renewing its Lease in `kube-node-lease` (and stops posting
//!   status) for `node_monitor_grace_period` gets every condition set to `Unknown`
//!   (`NodeStatusUnknown`, "Kubelet stopped posting node status."), and its pods are marked
//!   not Ready so Services stop sending them traffic.
//! - The Ready condition drives the taints: `node.kubernetes.io/unreachable` (Unknown) or
//!   `node.kubernetes.io/not-ready` (False), each as NoSchedule (so nothing new lands there)
//!   and NoExecute (with `timeAdded`).
//! - Pods on a node with NoExecute taints they do not tolerate are deleted at once; those
//!   tolerating them for `tolerationSeconds` (300 s by default, added at admission) are
//!   deleted when that time has passed since the taint was added.
//!
//! Liveness is judged on this controller's clock (when a renewal was *seen*), never by
//! comparing the kubelet's timestamps with ours, as upstream does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Runner, podutil};

pub const NAME: &str = "nodelifecycle";
const COMPONENT: &str = "node-controller";
const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("updating node {0} status")]
    NodeStatus(String, #[source] kube::Error),
    #[error("updating node {0} taints")]
    Taints(String, #[source] kube::Error),
    #[error("marking pod {0} not ready")]
    PodStatus(String, #[source] kube::Error),
    #[error("evicting pod {0}")]
    Evict(String, #[source] kube::Error),
}

/// The last sign of life seen from a node, and when we saw it.
struct Health {
    lease_renew: Option<String>,
    heartbeat: Option<String>,
    seen: Instant,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    let ctx = ctx.clone();
    Box::pin(async move {
        nodes.wait_synced().await;
        leases.wait_synced().await;
        pods.wait_synced().await;
        let health: Mutex<HashMap<String, Health>> = Mutex::default();
        let period = ctx.config.node_monitor_period;
        loop {
            for node in nodes.list("") {
                let lease = leases.get(LEASE_NAMESPACE, &node.name_any());
                if let Err(e) = monitor(&ctx, &health, &node, lease.as_deref(), &pods).await {
                    tracing::info!(node = %node.name_any(), error = %crate::queue::chain(&e), "node lifecycle");
                }
            }
            // Forget nodes that are gone.
            {
                let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
                h.retain(|name, _| nodes.get("", name).is_some());
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
    })
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Records what the node showed now; true if it has been silent past the grace period.
fn silent(
    health: &Mutex<HashMap<String, Health>>,
    node: &Node,
    lease: Option<&Lease>,
    grace: Duration,
) -> bool {
    let renew = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string());
    let heartbeat = ready_condition(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.to_string());
    let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
    let entry = h.entry(node.name_any()).or_insert_with(|| Health {
        lease_renew: renew.clone(),
        heartbeat: heartbeat.clone(),
        seen: Instant::now(),
    });
    if entry.lease_renew != renew || entry.heartbeat != heartbeat {
        entry.lease_renew = renew;
        entry.heartbeat = heartbeat;
        entry.seen = Instant::now();
    }
    entry.seen.elapsed() > grace
}

async fn monitor(
    ctx: &Ctx,
    health: &Mutex<HashMap<String, Health>>,
    node: &Node,
    lease: Option<&Lease>,
    pods: &crate::informer::Informer<Pod>,
) -> Result<(), Error> {
    let name = node.name_any();
    let api: Api<Node> = Api::all(ctx.client.clone());
    let mut ready = ready_condition(node).map(|c| c.status.clone());
    let on_node: Vec<Arc<Pod>> = pods
        .list_all()
        .into_iter()
        .filter(|p| podutil::node_name(p) == name)
        .collect();
    if silent(health, node, lease, ctx.config.node_monitor_grace_period)
        && ready.as_deref() != Some("Unknown")
    {
        let now = Time(jiff::Timestamp::now());
        let mut conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if !conditions.iter().any(|c| c.type_ == "Ready") {
            conditions.push(NodeCondition {
                type_: "Ready".into(),
                ..Default::default()
            });
        }
        for c in &mut conditions {
            c.status = "Unknown".into();
            c.reason = Some("NodeStatusUnknown".into());
            c.message = Some("Kubelet stopped posting node status.".into());
            c.last_transition_time = Some(now.clone());
        }
        let patch = json!({"status": {"conditions": conditions}});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| Error::NodeStatus(name.clone(), e))?;
        ctx.events.normal(
            COMPONENT,
            node,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        ready = Some("Unknown".into());
        for p in &on_node {
            mark_not_ready(ctx, p).await?;
        }
    }
    let taints = sync_taints(ctx, node, ready.as_deref()).await?;
    evict(ctx, &taints, &on_node).await
}

/// Upstream `MarkPodsNotReady`.
async fn mark_not_ready(ctx: &Ctx, pod: &Pod) -> Result<(), Error> {
    if !podutil::is_ready(pod) || pod.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let now = Time(jiff::Timestamp::now());
    let mut conditions: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in &mut conditions {
        if c.type_ == "Ready" {
            c.status = "False".into();
            c.last_transition_time = Some(now.clone());
        }
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
    let patch = json!({"status": {"conditions": conditions}});
    match api
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::PodStatus(pod.name_any(), e)),
    }
}

/// The taints the Ready condition calls for, as (key, effect).
fn wanted(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    match ready {
        Some("False") => vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")],
        Some("Unknown") => vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")],
        _ => Vec::new(),
    }
}

/// Brings the node's not-ready/unreachable taints in line with its Ready condition;
/// returns the node's taints afterwards.
async fn sync_taints(ctx: &Ctx, node: &Node, ready: Option<&str>) -> Result<Vec<Taint>, Error> {
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let want = wanted(ready);
    let ours = |t: &Taint| t.key == NOT_READY || t.key == UNREACHABLE;
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !ours(t) || want.contains(&(t.key.as_str(), t.effect.as_str())))
        .cloned()
        .collect();
    for (key, effect) in &want {
        if !next.iter().any(|t| t.key == *key && t.effect == *effect) {
            next.push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                time_added: (*effect == "NoExecute").then(|| Time(jiff::Timestamp::now())),
                value: None,
            });
        }
    }
    if next == current {
        return Ok(current);
    }
    let api: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"metadata": {"resourceVersion": node.resource_version()},
                       "spec": {"taints": if next.is_empty() { serde_json::Value::Null } else { json!(next) }}});
    api.patch(
        &node.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(|e| Error::Taints(node.name_any(), e))?;
    Ok(next)
}

/// Upstream's toleration matching (`Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        // An empty key with Exists matches every taint.
        "Exists" => true,
        "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// When the pod must go, given the node's NoExecute taints: `None` = it may stay,
/// `Some(None)` = now, `Some(Some(t))` = at `t`.
pub fn eviction_time(pod: &Pod, taints: &[Taint]) -> Option<Option<jiff::Timestamp>> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut at: Option<jiff::Timestamp> = None;
    let mut any = false;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        any = true;
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(None);
        }
        // Tolerated forever by any toleration without a limit; else by the shortest.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let secs = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint
            .time_added
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(jiff::Timestamp::now);
        let due = added + jiff::SignedDuration::from_secs(secs);
        at = Some(at.map_or(due, |a| a.min(due)));
    }
    if !any {
        return None;
    }
    at.map(Some)
}

async fn evict(ctx: &Ctx, taints: &[Taint], pods: &[Arc<Pod>]) -> Result<(), Error> {
    if !taints.iter().any(|t| t.effect == "NoExecute") {
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let due = match eviction_time(pod, taints) {
            None => continue,
            Some(None) => true,
            Some(Some(t)) => t <= now,
        };
        if !due {
            continue;
        }
        ctx.events.normal(
            "taint-eviction-controller",
            pod.as_ref(),
            "TaintManagerEviction",
            format!("Marking for deletion Pod {}", crate::key_of(pod.as_ref())),
        );
        let api: Api<Pod> =
            Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if crate::is_not_found(&e) => {}
            Err(e) => return Err(Error::Evict(pod.name_any(), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn taint(key: &str, added: jiff::Timestamp) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(added)),
            value: None,
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn tol(key: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            ..Default::default()
        }
    }

    #[test]
    fn eviction_waits_for_the_toleration_seconds_from_when_the_taint_was_added() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let taints = [taint(UNREACHABLE, t0)];
        assert_eq!(eviction_time(&pod(vec![]), &taints), Some(None));
        let due = eviction_time(&pod(vec![tol(UNREACHABLE, Some(300))]), &taints);
        assert_eq!(due, Some(Some(t0 + jiff::SignedDuration::from_secs(300))));
        assert_eq!(
            eviction_time(&pod(vec![tol(UNREACHABLE, None)]), &taints),
            None
        );
        // An untolerated NoSchedule taint is no reason to evict.
        let no_schedule = [Taint {
            effect: "NoSchedule".into(),
            ..taint(UNREACHABLE, t0)
        }];
        assert_eq!(eviction_time(&pod(vec![]), &no_schedule), None);
    }

    #[test]
    fn the_ready_condition_picks_the_taints() {
        assert_eq!(wanted(Some("True")), []);
        assert_eq!(wanted(Some("Unknown"))[1], (UNREACHABLE, "NoExecute"));
        assert_eq!(wanted(Some("False"))[0], (NOT_READY, "NoSchedule"));
    }
}
