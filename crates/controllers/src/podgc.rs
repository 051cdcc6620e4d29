//! Pod garbage collector (upstream `pkg/controller/podgc`), every 20 s:
//!
//! - pods bound to a node that no longer exists (checked against the API after a 40 s
//!   quarantine, so a node still being registered is not mistaken for a gone one) are
//!   marked Failed with a `DisruptionTarget` condition (`DeletionByPodGC`) and deleted at
//!   once: nobody is left to finish their graceful deletion;
//! - unscheduled pods being deleted are deleted at once, for the same reason;
//! - finished pods beyond `terminated_pod_gc_threshold` (12,500), oldest first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Ctx, Runner, podutil};

pub const NAME: &str = "podgc";
const PERIOD: Duration = Duration::from_secs(20);
const QUARANTINE: Duration = Duration::from_secs(40);
const TERMINATED_THRESHOLD: usize = 12_500;

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let nodes = ctx.informers.get::<Node>();
    let pods = ctx.informers.get::<Pod>();
    let ctx = ctx.clone();
    Box::pin(async move {
        nodes.wait_synced().await;
        pods.wait_synced().await;
        // node name → when it was first found missing.
        let mut missing: HashMap<String, Instant> = HashMap::new();
        loop {
            let all = pods.list_all();
            let nodes_now = |n: &str| nodes.get("", n).is_some();
            gc_terminated(&ctx, &all).await;
            gc_orphaned(&ctx, &all, &nodes_now, &mut missing).await;
            for p in all.iter().filter(|p| {
                p.metadata.deletion_timestamp.is_some() && podutil::node_name(p).is_empty()
            }) {
                force_delete(&ctx, p).await;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PERIOD) => {}
            }
        }
    })
}

fn api(ctx: &Ctx, pod: &Pod) -> Api<Pod> {
    Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default())
}

async fn force_delete(ctx: &Ctx, pod: &Pod) {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(e) = api(ctx, pod).delete(&pod.name_any(), &dp).await
        && !crate::is_not_found(&e)
    {
        tracing::info!(pod = %crate::key_of(pod), error = %e, "pod gc: delete failed");
    }
}

async fn gc_terminated(ctx: &Ctx, pods: &[Arc<Pod>]) {
    let mut done: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| matches!(podutil::phase(p), "Succeeded" | "Failed"))
        .collect();
    if done.len() <= TERMINATED_THRESHOLD {
        return;
    }
    done.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let excess = done.len() - TERMINATED_THRESHOLD;
    for p in done.into_iter().take(excess) {
        force_delete(ctx, p).await;
    }
}

async fn gc_orphaned(
    ctx: &Ctx,
    pods: &[Arc<Pod>],
    node_exists: &(dyn Fn(&str) -> bool + Sync),
    missing: &mut HashMap<String, Instant>,
) {
    let mut absent: Vec<&str> = pods
        .iter()
        .map(|p| podutil::node_name(p))
        .filter(|n| !n.is_empty() && !node_exists(n))
        .collect();
    absent.sort_unstable();
    absent.dedup();
    missing.retain(|n, _| absent.contains(&n.as_str()));
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    for name in absent {
        let since = *missing.entry(name.to_string()).or_insert_with(Instant::now);
        if since.elapsed() < QUARANTINE {
            continue;
        }
        // The cache says gone; make sure the API agrees.
        match nodes.get_opt(name).await {
            Ok(None) => {}
            _ => continue,
        }
        for pod in pods.iter().filter(|p| podutil::node_name(p) == name) {
            mark_failed(ctx, pod).await;
            force_delete(ctx, pod).await;
        }
    }
}

/// Upstream sets phase Failed and a DisruptionTarget condition before deleting.
async fn mark_failed(ctx: &Ctx, pod: &Pod) {
    if matches!(podutil::phase(pod), "Succeeded" | "Failed") {
        return;
    }
    let mut conditions: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByPodGC".into()),
        message: Some("PodGC: node no longer exists".into()),
        last_transition_time: Some(Time(jiff::Timestamp::now())),
        ..Default::default()
    });
    let patch = json!({"status": {"phase": "Failed", "conditions": conditions}});
    let _ = api(ctx, pod)
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await;
}
