//! DaemonSet controller (upstream `pkg/controller/daemon`): one pod per eligible node, each
//! pinned to its node by required node affinity on `metadata.name` so the scheduler binds it
//! there; nodes that become eligible get a pod, nodes that stop being eligible (or gain an
//! untolerated NoExecute taint) lose theirs. Templates are recorded as ControllerRevisions
//! (`crate::history`), whose hash pods carry in `controller-revision-hash`.
//!
//! - `mod.rs`: informer wiring and the sync entry.
//! - `nodes.rs`: which nodes should run a daemon pod; daemon tolerations; pinning.
//! - `manage.rs`: creating and deleting pods per node, with expectations and the failed-pod
//!   back-off.
//! - `rolling.rs`: RollingUpdate, by maxUnavailable or (with maxSurge) new pod first.
//! - `revisions.rs`: the current and old revisions, and trimming history.
//! - `status.rs`: the status counters.

mod manage;
pub mod nodes;
mod revisions;
mod rolling;
mod status;

use std::sync::Arc;
use std::time::Duration;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use crate::controller_ref::{self, Expectations, Owner};
use crate::history::{self, REVISION_LABEL};
use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, key_of, podutil, split_key};

pub const NAME: &str = "daemonset";
const COMPONENT: &str = "daemonset-controller";
/// Upstream's `BurstReplicas` for DaemonSets: creations or deletions per sync.
const BURST: usize = 250;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming pods")]
    ClaimPods(#[source] kube::Error),
    #[error("claiming controller revisions")]
    ClaimRevisions(#[source] kube::Error),
    #[error("creating controller revision {name}")]
    CreateRevision {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating controller revisions")]
    UpdateRevision(#[source] history::Error),
    #[error("hash collision with controller revision {0}; retrying with a new collision count")]
    HashCollision(String),
    #[error("found a stale collision count of DaemonSet {0}; will retry until it is updated")]
    StaleCollisionCount(String),
    #[error("reading the daemon set")]
    GetDaemonSet(#[source] kube::Error),
    #[error("updating the collision count")]
    UpdateCollisionCount(#[source] kube::Error),
    #[error("relabelling pod {name}")]
    RelabelPod {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating pods")]
    CreatePods(#[source] kube::Error),
    #[error("deleting pods")]
    DeletePods(#[source] kube::Error),
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
    #[error("failed to clean up revisions of DaemonSet")]
    CleanupHistory(#[source] history::Error),
}

pub(crate) struct Controller {
    ctx: Arc<Ctx>,
    sets: Arc<Informer<DaemonSet>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    revisions: Arc<Informer<ControllerRevision>>,
    expectations: Expectations,
    failed_backoff: manage::Backoff,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let sets = ctx.informers.get::<DaemonSet>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    let queue: Queue<String> = Queue::new();
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        revisions: revisions.clone(),
        expectations: Expectations::default(),
        failed_backoff: manage::Backoff::default(),
    });
    sets.on_change({
        let q = queue.clone();
        move |ch| q.add(key_of(ch.object().as_ref()))
    });
    pods.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.pod_changed(&q, ch)
    });
    nodes.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.node_changed(&q, ch)
    });
    revisions.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.revision_changed(&q, ch)
    });
    Box::pin(async move {
        sets.wait_synced().await;
        pods.wait_synced().await;
        nodes.wait_synced().await;
        revisions.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

fn min_ready(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn selector_of(ds: &DaemonSet) -> Option<LabelSelector> {
    LabelSelector::from_api(ds.spec.as_ref().map(|s| &s.selector)).ok()
}

/// The sooner of two requeues.
fn sooner(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

impl Controller {
    /// The DaemonSet a controller reference names, if it is still that one (same UID).
    fn resolve(&self, ns: &str, obj: &impl kube::Resource) -> Option<Arc<DaemonSet>> {
        let r = controller_ref::controller_of(obj)?;
        if r.kind != "DaemonSet" || r.api_version != "apps/v1" {
            return None;
        }
        let ds = self.sets.get(ns, &r.name)?;
        (ds.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(ds)
    }

    /// Every DaemonSet in `ns` whose selector matches `labels` (who could adopt an orphan).
    fn adopters(
        &self,
        ns: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Vec<String> {
        self.sets
            .list(ns)
            .into_iter()
            .filter(|d| selector_of(d).is_some_and(|s| !s.is_empty() && s.matches(labels)))
            .map(|d| key_of(d.as_ref()))
            .collect()
    }

    /// Upstream's add/update/deletePod: expectations, the owner, or would-be adopters.
    fn pod_changed(&self, q: &Queue<String>, ch: &Change<'_, Pod>) {
        let pod = ch.object();
        let ns = pod.namespace().unwrap_or_default();
        match ch {
            Change::Added(_) | Change::Deleted(_) => match self.resolve(&ns, pod.as_ref()) {
                Some(ds) => {
                    let key = key_of(ds.as_ref());
                    if matches!(ch, Change::Added(_)) && pod.metadata.deletion_timestamp.is_none() {
                        self.expectations.creation_observed(&key);
                    } else {
                        self.expectations.deletion_observed(&key, &pod.name_any());
                    }
                    q.add(key);
                }
                None if matches!(ch, Change::Added(_))
                    && pod.metadata.deletion_timestamp.is_none() =>
                {
                    self.adopters(&ns, pod.labels())
                        .into_iter()
                        .for_each(|k| q.add(k));
                }
                None => {}
            },
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let (old_ds, new_ds) = (
                    self.resolve(&ns, old.as_ref()),
                    self.resolve(&ns, new.as_ref()),
                );
                if let Some(o) = &old_ds
                    && new_ds.as_ref().map(|n| n.uid()) != Some(o.uid())
                {
                    q.add(key_of(o.as_ref()));
                }
                match new_ds {
                    Some(ds) => {
                        let key = key_of(ds.as_ref());
                        if new.metadata.deletion_timestamp.is_some() {
                            self.expectations.deletion_observed(&key, &new.name_any());
                        }
                        let secs = min_ready(&ds);
                        if secs > 0 && !podutil::is_ready(old) && podutil::is_ready(new) {
                            let d = Duration::from_secs(u64::try_from(secs).unwrap_or(0));
                            q.add_after(key.clone(), d);
                        }
                        q.add(key);
                    }
                    None => {
                        if (old.labels() != new.labels() || old_ds.is_some())
                            && new.metadata.deletion_timestamp.is_none()
                        {
                            self.adopters(&ns, new.labels())
                                .into_iter()
                                .for_each(|k| q.add(k));
                        }
                    }
                }
            }
        }
    }

    /// Upstream's history handlers: the owner, or would-be adopters of an orphan.
    fn revision_changed(&self, q: &Queue<String>, ch: &Change<'_, ControllerRevision>) {
        let cr = ch.object();
        let ns = cr.namespace().unwrap_or_default();
        if let Change::Updated { old, .. } = ch
            && let Some(ds) = self.resolve(&ns, old.as_ref())
        {
            q.add(key_of(ds.as_ref()));
        }
        match self.resolve(&ns, cr.as_ref()) {
            Some(ds) => q.add(key_of(ds.as_ref())),
            None if !matches!(ch, Change::Deleted(_)) => {
                self.adopters(&ns, cr.labels())
                    .into_iter()
                    .for_each(|k| q.add(k));
            }
            None => {}
        }
    }

    /// Upstream addNode/updateNode: DaemonSets whose placement the change affects. A deleted
    /// node changes the desired count too (upstream waits for the pod GC to remove its pods).
    fn node_changed(&self, q: &Queue<String>, ch: &Change<'_, Node>) {
        let sets = self.sets.list_all();
        match ch {
            Change::Added(n) => {
                for ds in sets.iter().filter(|ds| nodes::should_run(n, ds).0) {
                    q.add(key_of(ds.as_ref()));
                }
            }
            Change::Updated { old, new } => {
                if placement_unchanged(old, new) {
                    return;
                }
                for ds in sets
                    .iter()
                    .filter(|ds| nodes::should_run(old, ds) != nodes::should_run(new, ds))
                {
                    q.add(key_of(ds.as_ref()));
                }
            }
            Change::Deleted(_) => sets.iter().for_each(|ds| q.add(key_of(ds.as_ref()))),
        }
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(ds) = self.sets.get(ns, name) else {
            self.expectations.forget(key);
            return Ok(Next::Done);
        };
        let ds = (*ds).clone();
        let sel = &ds
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        {
            self.ctx.events.warning(
                COMPONENT,
                &ds,
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.".into(),
            );
            return Ok(Next::Done);
        }
        let selector = match LabelSelector::from_api(Some(sel)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(ns, name, error = %e, "invalid selector");
                return Ok(Next::Done);
            }
        };
        // The garbage collector may remove revisions before pods: no history while deleting.
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(Next::Done);
        }
        let (cur, old) = self.construct_history(&ds, &selector).await?;
        let hash = cur
            .labels()
            .get(REVISION_LABEL)
            .cloned()
            .unwrap_or_default();
        // Checked before reading the pod cache: writes seen since are in what we read.
        let satisfied = self.expectations.satisfied(key);
        let nodes = self.nodes.list("");
        if !satisfied {
            let requeue = self.update_status(&ds, &nodes, &hash, false).await?;
            return Ok(requeue.map_or(Next::Done, Next::After));
        }
        let pods_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let owner = Owner {
            reference: controller_ref::reference(&ds),
            selector: &selector,
            deleting: false,
        };
        let pods = controller_ref::claim(&pods_api, &owner, self.pods.list(ns))
            .await
            .map_err(Error::ClaimPods)?;
        let mut requeue = None;
        let result = self
            .update_daemon_set(&ds, &nodes, &pods, &hash, key, &old, &mut requeue)
            .await;
        let status = self.update_status(&ds, &nodes, &hash, true).await;
        result?;
        requeue = sooner(requeue, status?);
        Ok(requeue.map_or(Next::Done, Next::After))
    }

    /// Upstream `updateDaemonSet`: pods per node, then (once our writes are seen) the
    /// rolling update, then history clean-up.
    #[allow(clippy::too_many_arguments)]
    async fn update_daemon_set(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        pods: &[Arc<Pod>],
        hash: &str,
        key: &str,
        old: &[ControllerRevision],
        requeue: &mut Option<Duration>,
    ) -> Result<(), Error> {
        self.manage(ds, nodes, pods, hash, key, requeue).await?;
        if self.expectations.satisfied(key) && rolling::is_rolling(ds) {
            self.rolling_update(ds, nodes, hash, key).await?;
        }
        self.cleanup_history(ds, old).await
    }

    /// Pods this DaemonSet controls, as the cache has them now.
    fn owned_pods(&self, ds: &DaemonSet) -> Vec<Arc<Pod>> {
        let uid = ds.uid();
        self.pods
            .list(&ds.namespace().unwrap_or_default())
            .into_iter()
            .filter(|p| {
                controller_ref::controller_of(p.as_ref())
                    .is_some_and(|r| Some(&r.uid) == uid.as_ref())
            })
            .collect()
    }
}

/// Upstream `shouldIgnoreNodeUpdate`: nothing placement depends on changed (labels, taints,
/// the spec, condition statuses — not heartbeat times).
fn placement_unchanged(old: &Node, new: &Node) -> bool {
    let conditions = |n: &Node| -> Vec<(String, String)> {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| {
                c.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    old.labels() == new.labels() && old.spec == new.spec && conditions(old) == conditions(new)
}
