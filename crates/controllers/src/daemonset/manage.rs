//! Daemon pods per node (upstream `manage`, `podsShouldBeOnNode`, `syncNodes`): a pod where
//! one should run and none does, none where none may run, failed pods replaced (with a
//! back-off, since a kubelet rejecting pods would otherwise be fought in a hot loop), and
//! at most one running pod per node (two while surging).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::time::Instant;

use super::{BURST, COMPONENT, Controller, Error, min_ready, nodes, rolling};
use crate::podutil;
use crate::replicaset::{api_message, pod_from_template, slow_start};

/// Upstream's failed-pod back-off: 1 s doubling to 15 min, per DaemonSet and node.
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// Per-key exponential back-off (client-go `flowcontrol.Backoff`).
#[derive(Default)]
pub(super) struct Backoff {
    /// key → (current delay, when it was last stepped).
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl Backoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Duration, Instant)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expired(now: Instant, last: Instant) -> bool {
        now.duration_since(last) > 2 * BACKOFF_MAX
    }

    /// Still waiting since the last step?
    pub fn in_backoff(&self, key: &str, now: Instant) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|(d, last)| !Self::expired(now, *last) && now.duration_since(*last) < *d)
    }

    pub fn delay(&self, key: &str) -> Duration {
        self.lock().get(key).map_or(Duration::ZERO, |(d, _)| *d)
    }

    /// Steps the back-off: the first step (or one after a long quiet) waits the initial
    /// delay, each further one twice the last.
    pub fn step(&self, key: &str, now: Instant) {
        let mut m = self.lock();
        let next = match m.get(key) {
            Some((d, last)) if !Self::expired(now, *last) => (*d * 2).min(BACKOFF_MAX),
            _ => BACKOFF_INITIAL,
        };
        m.insert(key.to_string(), (next, now));
    }
}

/// Daemon pods by the node they run on or are pinned to. Finished pods already being
/// deleted are left out unless `include_deleted_terminal`.
pub(super) fn by_node(
    pods: &[Arc<Pod>],
    include_deleted_terminal: bool,
) -> HashMap<String, Vec<Arc<Pod>>> {
    let mut out: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in pods {
        let terminal = matches!(podutil::phase(p), "Succeeded" | "Failed");
        if !include_deleted_terminal && terminal && p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = nodes::target_node(p) {
            out.entry(node).or_default().push(p.clone());
        }
    }
    out
}

/// Upstream `podByCreationTimestampAndPhase`: scheduled first, then oldest, then by name.
pub(super) fn oldest_first(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let unscheduled = |p: &Pod| podutil::node_name(p).is_empty();
        let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        unscheduled(a)
            .cmp(&unscheduled(b))
            .then_with(|| created(a).cmp(&created(b)))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

impl Controller {
    /// Upstream `manage`.
    pub(super) async fn manage(
        &self,
        ds: &DaemonSet,
        node_list: &[Arc<Node>],
        pods: &[Arc<Pod>],
        hash: &str,
        key: &str,
        requeue: &mut Option<Duration>,
    ) -> Result<(), Error> {
        let on_node = by_node(pods, false);
        let mut create = Vec::new();
        let mut delete = Vec::new();
        for node in node_list {
            self.pods_should_be_on_node(
                node,
                &on_node,
                ds,
                hash,
                &mut create,
                &mut delete,
                requeue,
            );
        }
        // Pods pinned to nodes that are gone will never be scheduled; nothing else removes them.
        let live: HashSet<String> = node_list.iter().map(|n| n.name_any()).collect();
        for (node, pods) in &on_node {
            if !live.contains(node) {
                delete.extend(
                    pods.iter()
                        .filter(|p| podutil::node_name(p).is_empty())
                        .map(|p| p.name_any()),
                );
            }
        }
        self.sync_nodes(ds, key, delete, create, hash).await
    }

    /// Upstream `podsShouldBeOnNode`.
    #[allow(clippy::too_many_arguments)]
    fn pods_should_be_on_node(
        &self,
        node: &Node,
        on_node: &HashMap<String, Vec<Arc<Pod>>>,
        ds: &DaemonSet,
        hash: &str,
        create: &mut Vec<String>,
        delete: &mut Vec<String>,
        requeue: &mut Option<Duration>,
    ) {
        let (should_run, keep_running) = nodes::should_run(node, ds);
        let name = node.name_any();
        let daemon_pods = on_node.get(&name);
        match daemon_pods {
            None if should_run => create.push(name),
            None => {}
            Some(pods) if keep_running => {
                let mut running = Vec::new();
                for pod in pods
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                {
                    match podutil::phase(pod) {
                        "Failed" => {
                            let backoff_key = format!("{}/{name}", ds.uid().unwrap_or_default());
                            let now = Instant::now();
                            if self.failed_backoff.in_backoff(&backoff_key, now) {
                                let d = self.failed_backoff.delay(&backoff_key);
                                *requeue = super::sooner(*requeue, Some(d));
                                continue;
                            }
                            self.failed_backoff.step(&backoff_key, now);
                            self.ctx.events.warning(
                                COMPONENT,
                                ds,
                                "FailedDaemonPod",
                                format!(
                                    "Found failed daemon pod {}/{} on node {name}, will try to kill it",
                                    pod.namespace().unwrap_or_default(),
                                    pod.name_any()
                                ),
                            );
                            delete.push(pod.name_any());
                        }
                        "Succeeded" => delete.push(pod.name_any()),
                        _ => running.push(pod.clone()),
                    }
                }
                if !rolling::allows_surge(ds) {
                    // Without surge, every pod but the oldest goes.
                    if running.len() > 1 {
                        oldest_first(&mut running);
                        delete.extend(running[1..].iter().map(|p| p.name_any()));
                    }
                    return;
                }
                if running.len() <= 1 {
                    if running.is_empty() && should_run {
                        create.push(name);
                    }
                    return;
                }
                // Surging: keep the oldest new pod, and the oldest old pod only while the new
                // one is not yet available and the old one is ready.
                oldest_first(&mut running);
                let (mut oldest_new, mut oldest_old) = (None, None);
                let generation = nodes::template_generation(ds);
                for pod in &running {
                    let slot = if nodes::is_updated(pod, hash, generation) {
                        &mut oldest_new
                    } else {
                        &mut oldest_old
                    };
                    if slot.is_none() {
                        *slot = Some(pod.clone());
                    } else {
                        delete.push(pod.name_any());
                    }
                }
                if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                    let now = jiff::Timestamp::now();
                    if !podutil::is_ready(&old) || podutil::is_available(&new, min_ready(ds), now) {
                        delete.push(old.name_any());
                    }
                }
            }
            Some(pods) => {
                delete.extend(
                    pods.iter()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .map(|p| p.name_any()),
                );
            }
        }
    }

    /// Upstream `syncNodes`: creates a pinned pod on each of `nodes` and deletes `pods`, at
    /// most [`BURST`] of each, creations in slow-start batches, with expectations set first.
    pub(super) async fn sync_nodes(
        &self,
        ds: &DaemonSet,
        key: &str,
        mut pods: Vec<String>,
        mut nodes_needing: Vec<String>,
        hash: &str,
    ) -> Result<(), Error> {
        nodes_needing.truncate(BURST);
        pods.truncate(BURST);
        self.expectations.expect_creations(key, nodes_needing.len());
        self.expectations
            .expect_deletions(key, pods.iter().cloned());
        let ns = ds.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let template = nodes::pod_template(ds, hash);
        let reference = crate::controller_ref::reference(ds);
        let created = slow_start(nodes_needing.len(), |i| {
            let mut pod = pod_from_template(&template, reference.clone(), &ds.name_any());
            if let Some(spec) = pod.spec.as_mut() {
                spec.affinity = Some(nodes::pin_to_node(spec.affinity.take(), &nodes_needing[i]));
            }
            let api = &api;
            async move { api.create(&PostParams::default(), &pod).await }
        })
        .await;
        let mut first_err = None;
        for r in created.results {
            match r {
                Ok(p) => self.ctx.events.normal(
                    COMPONENT,
                    ds,
                    "SuccessfulCreate",
                    format!("Created pod: {}", p.name_any()),
                ),
                Err(e) => {
                    self.expectations.creation_observed(key);
                    self.ctx.events.warning(
                        COMPONENT,
                        ds,
                        "FailedCreate",
                        format!("Error creating: {}", api_message(&e)),
                    );
                    first_err.get_or_insert(Error::CreatePods(e));
                }
            }
        }
        for _ in 0..created.skipped {
            self.expectations.creation_observed(key);
        }
        let deletes = pods.iter().map(|name| {
            let api = &api;
            async move { (name, api.delete(name, &DeleteParams::default()).await) }
        });
        for (name, r) in futures::future::join_all(deletes).await {
            match r {
                Ok(_) => self.ctx.events.normal(
                    COMPONENT,
                    ds,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                ),
                Err(e) => {
                    self.expectations.deletion_observed(key, name);
                    if !crate::is_not_found(&e) {
                        self.ctx.events.warning(
                            COMPONENT,
                            ds,
                            "FailedDelete",
                            format!("Error deleting: {}", api_message(&e)),
                        );
                        first_err.get_or_insert(Error::DeletePods(e));
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failed_pod_backoff_doubles_and_resets_after_a_long_quiet() {
        let b = Backoff::default();
        let now = Instant::now();
        assert!(!b.in_backoff("k", now));
        b.step("k", now);
        assert!(b.in_backoff("k", now));
        assert_eq!(b.delay("k"), Duration::from_secs(1));
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(!b.in_backoff("k", Instant::now()));
        b.step("k", Instant::now());
        assert_eq!(b.delay("k"), Duration::from_secs(2));
        tokio::time::advance(2 * BACKOFF_MAX + Duration::from_secs(1)).await;
        b.step("k", Instant::now());
        assert_eq!(b.delay("k"), Duration::from_secs(1));
    }
}
