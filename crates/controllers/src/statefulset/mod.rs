//! StatefulSet controller (upstream `pkg/controller/statefulset`): pods with stable names
//! `<set>-<ordinal>`, stable claims `<template>-<set>-<ordinal>` from the volume claim
//! templates, created in order (OrderedReady) or all at once (Parallel), and rolled to new
//! templates highest ordinal first down to the partition. Templates are recorded as
//! ControllerRevisions (`crate::history`), which pods name in `controller-revision-hash`.
//!
//! - `mod.rs`: informer wiring, claiming pods and revisions, finding the current and update
//!   revisions, the status write and history trimming.
//! - `control.rs`: one pass over the pods (create, replace, scale down, roll).
//! - `identity.rs`: names, ordinals, identity labels, claims and the claim retention policy.

mod control;
pub mod identity;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller_ref::{self, Owner};
use crate::history::{self, History};
use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, key_of, podutil, split_key};

pub const NAME: &str = "statefulset";
const COMPONENT: &str = "statefulset-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming pods")]
    ClaimPods(#[source] kube::Error),
    #[error("claiming controller revisions")]
    ClaimRevisions(#[source] kube::Error),
    #[error("recording the revision")]
    RecordRevision(#[source] history::Error),
    #[error("controller revision {0} holds no pod template")]
    BadRevision(String),
    #[error("failed to create PVC {name}")]
    CreateClaim {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("pvc {0} is being deleted")]
    ClaimDeleting(String),
    #[error("could not update claim {name} for delete policy ownerRefs")]
    UpdateClaim {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating pod {name}")]
    CreatePod {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating pod {name}")]
    UpdatePod {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting pod {name}")]
    DeletePod {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
    #[error("trimming revision history")]
    TruncateHistory(#[source] history::Error),
}

pub(crate) struct Controller {
    ctx: Arc<Ctx>,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    revisions: Arc<Informer<ControllerRevision>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let sets = ctx.informers.get::<StatefulSet>();
    let pods = ctx.informers.get::<Pod>();
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let revisions = ctx.informers.get::<ControllerRevision>();
    let queue: Queue<String> = Queue::new();
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        claims: claims.clone(),
        revisions: revisions.clone(),
    });
    sets.on_change({
        let q = queue.clone();
        move |ch| q.add(key_of(ch.object().as_ref()))
    });
    pods.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.pod_changed(&q, ch)
    });
    Box::pin(async move {
        sets.wait_synced().await;
        pods.wait_synced().await;
        claims.wait_synced().await;
        revisions.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

fn min_ready(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

impl Controller {
    /// Upstream `resolveControllerRef`: the set a pod's controller reference names, if it
    /// is still that set (same UID).
    fn owner(&self, pod: &Pod) -> Option<Arc<StatefulSet>> {
        let r = controller_ref::controller_of(pod)?;
        if r.kind != "StatefulSet" || r.api_version != "apps/v1" {
            return None;
        }
        let set = self
            .sets
            .get(&pod.namespace().unwrap_or_default(), &r.name)?;
        (set.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(set)
    }

    /// Upstream's add/update/deletePod: the owner, or every set that could adopt an orphan.
    fn pod_changed(&self, q: &Queue<String>, ch: &Change<'_, Pod>) {
        match ch {
            Change::Added(pod) | Change::Deleted(pod) => match self.owner(pod) {
                Some(set) => q.add(key_of(set.as_ref())),
                None if matches!(ch, Change::Added(_)) => self.queue_adopters(q, pod),
                None => {}
            },
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let (old_owner, new_owner) = (self.owner(old), self.owner(new));
                if let Some(o) = &old_owner
                    && new_owner.as_ref().map(|n| n.uid()) != Some(o.uid())
                {
                    q.add(key_of(o.as_ref()));
                }
                match new_owner {
                    Some(set) => {
                        let key = key_of(set.as_ref());
                        let secs = min_ready(&set);
                        if secs > 0 && !podutil::is_ready(old) && podutil::is_ready(new) {
                            // A second more, against rounding in the availability check.
                            let d = Duration::from_secs(u64::try_from(secs).unwrap_or(0) + 1);
                            q.add_after(key.clone(), d);
                        }
                        q.add(key);
                    }
                    None => {
                        if old.labels() != new.labels() || old_owner.is_some() {
                            self.queue_adopters(q, new);
                        }
                    }
                }
            }
        }
    }

    fn queue_adopters(&self, q: &Queue<String>, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        for set in self.sets.list(&pod.namespace().unwrap_or_default()) {
            let sel = set.spec.as_ref().map(|s| &s.selector);
            if LabelSelector::from_api(sel).is_ok_and(|s| !s.is_empty() && s.matches(pod.labels()))
            {
                q.add(key_of(set.as_ref()));
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.get(ns, name) else {
            return Ok(Next::Done);
        };
        let set = (*set).clone();
        let selector = match LabelSelector::from_api(set.spec.as_ref().map(|s| &s.selector)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(ns, name, error = %e, "invalid selector");
                return Ok(Next::Done);
            }
        };
        let owner = Owner {
            reference: controller_ref::reference(&set),
            selector: &selector,
            deleting: set.metadata.deletion_timestamp.is_some(),
        };
        // Upstream `adoptOrphanRevisions`: revisions the selector matches, ours or orphans.
        let candidates: Vec<_> = self
            .revisions
            .list(ns)
            .into_iter()
            .filter(|r| selector.matches(r.labels()))
            .collect();
        let hist = History::new(self.ctx.client.clone(), ns);
        let revisions = controller_ref::claim(hist.api(), &owner, candidates)
            .await
            .map_err(Error::ClaimRevisions)?;
        let pods_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let members: Vec<_> = self
            .pods
            .list(ns)
            .into_iter()
            .filter(|p| identity::is_member(&set, p))
            .collect();
        let pods = controller_ref::claim(&pods_api, &owner, members)
            .await
            .map_err(Error::ClaimPods)?;

        let mut revisions: Vec<ControllerRevision> =
            revisions.iter().map(|r| (**r).clone()).collect();
        history::sort(&mut revisions);
        let (current, update, collisions) = self.revisions_for(&set, &revisions, &hist).await?;
        let status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            current_revision: Some(current.name_any()),
            update_revision: Some(update.name_any()),
            collision_count: Some(collisions),
            ..Default::default()
        };
        let pass = control::Pass::new(self, &set, &current, &update)?;
        let (mut status, result) = pass.run(&pods, status).await;
        complete_rolling_update(&set, &mut status);
        let written = self.write_status(&set, &status).await;
        let trimmed = self
            .truncate_history(&set, &pods, &revisions, &[&current, &update], &hist)
            .await;
        result?;
        written?;
        trimmed?;
        let secs = min_ready(&set);
        if secs > 0 && status.available_replicas != Some(identity::replicas(&set)) {
            return Ok(Next::After(Duration::from_secs(
                u64::try_from(secs).unwrap_or(0),
            )));
        }
        Ok(Next::Done)
    }

    /// Upstream `getStatefulSetRevisions`: the update revision is the set's template — the
    /// latest revision when it already records it, an older one renumbered when the set
    /// went back to it, or a new one; the current revision is the one the status names (or
    /// the update revision, at first).
    async fn revisions_for(
        &self,
        set: &StatefulSet,
        revisions: &[ControllerRevision],
        hist: &History,
    ) -> Result<(ControllerRevision, ControllerRevision, i32), Error> {
        let mut collisions = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let spec = set.spec.clone().unwrap_or_default();
        let mut candidate = history::new_revision(
            set,
            spec.template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref()),
            history::template_patch(&spec.template),
            history::next_revision(revisions),
            Some(collisions),
        );
        // Upstream copies the set's annotations (so `kubernetes.io/change-cause` shows in
        // `kubectl rollout history`).
        candidate.metadata.annotations = set.metadata.annotations.clone();
        let equal: Vec<&ControllerRevision> = revisions
            .iter()
            .filter(|r| history::equal(r, &candidate))
            .collect();
        let update = match (equal.last(), revisions.last()) {
            (Some(eq), Some(latest)) if history::equal(latest, eq) => latest.clone(),
            (Some(eq), _) => hist
                .set_revision(eq, candidate.revision)
                .await
                .map_err(Error::RecordRevision)?,
            (None, _) => hist
                .create(&set.name_any(), &candidate, &mut collisions)
                .await
                .map_err(Error::RecordRevision)?,
        };
        let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone());
        let current = revisions
            .iter()
            .find(|r| current_name.as_deref() == Some(r.name_any().as_str()))
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collisions))
    }

    /// Writes the status when it differs from the stored one (upstream
    /// `inconsistentStatus`, plus the collision count so a bump is never lost).
    async fn write_status(
        &self,
        set: &StatefulSet,
        status: &StatefulSetStatus,
    ) -> Result<(), Error> {
        let old = set.status.clone().unwrap_or_default();
        let n = |v: Option<i32>| v.unwrap_or(0);
        let changed = status.observed_generation.unwrap_or(0)
            > old.observed_generation.unwrap_or(0)
            || status.replicas != old.replicas
            || n(status.current_replicas) != n(old.current_replicas)
            || n(status.ready_replicas) != n(old.ready_replicas)
            || n(status.updated_replicas) != n(old.updated_replicas)
            || n(status.available_replicas) != n(old.available_replicas)
            || n(status.collision_count) != n(old.collision_count)
            || status.current_revision != old.current_revision
            || status.update_revision != old.update_revision;
        if !changed {
            return Ok(());
        }
        let api: Api<StatefulSet> = Api::namespaced(
            self.ctx.client.clone(),
            &set.namespace().unwrap_or_default(),
        );
        let patch = json!({"status": {
            "observedGeneration": status.observed_generation,
            "replicas": status.replicas,
            "readyReplicas": n(status.ready_replicas),
            "currentReplicas": n(status.current_replicas),
            "updatedReplicas": n(status.updated_replicas),
            "availableReplicas": n(status.available_replicas),
            "currentRevision": status.current_revision,
            "updateRevision": status.update_revision,
            "collisionCount": status.collision_count,
        }});
        match api
            .patch_status(
                &set.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::UpdateStatus(e)),
        }
    }

    /// Upstream `truncateHistory`: revisions no pod, nor the current or update revision,
    /// uses are deleted oldest first until `revisionHistoryLimit` are left.
    async fn truncate_history(
        &self,
        set: &StatefulSet,
        pods: &[Arc<Pod>],
        sorted: &[ControllerRevision],
        live: &[&ControllerRevision],
        hist: &History,
    ) -> Result<(), Error> {
        let limit = set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        let Ok(limit) = usize::try_from(limit) else {
            return Ok(());
        };
        let live: HashSet<String> = live
            .iter()
            .map(|r| r.name_any())
            .chain(pods.iter().map(|p| identity::revision(p).to_string()))
            .collect();
        for r in to_trim(sorted, &live, limit) {
            hist.delete(&r.name_any())
                .await
                .map_err(Error::TruncateHistory)?;
        }
        Ok(())
    }
}

/// The oldest revisions not named in `live`, beyond the `limit` newest of them.
fn to_trim<'a>(
    sorted: &'a [ControllerRevision],
    live: &HashSet<String>,
    limit: usize,
) -> Vec<&'a ControllerRevision> {
    let old: Vec<&ControllerRevision> = sorted
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .collect();
    let n = old.len().saturating_sub(limit);
    old.into_iter().take(n).collect()
}

/// Upstream `completeRollingUpdate`: once every replica is updated and ready, the update
/// revision becomes the current one.
fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let rolling = set
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate";
    let want = identity::replicas(set);
    if rolling
        && status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolling_update_completes_once_every_replica_is_updated_and_ready() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {}, "template": {},
                     "updateStrategy": {"type": "RollingUpdate"}}
        }))
        .expect("set");
        let mut s = StatefulSetStatus {
            replicas: 2,
            ready_replicas: Some(2),
            updated_replicas: Some(1),
            current_replicas: Some(1),
            current_revision: Some("web-a".into()),
            update_revision: Some("web-b".into()),
            ..Default::default()
        };
        complete_rolling_update(&set, &mut s);
        assert_eq!(s.current_revision.as_deref(), Some("web-a"));
        s.updated_replicas = Some(2);
        complete_rolling_update(&set, &mut s);
        assert_eq!(s.current_revision.as_deref(), Some("web-b"));
        assert_eq!(s.current_replicas, Some(2));
    }

    #[test]
    fn history_keeps_live_revisions_and_the_newest_old_ones() {
        let rev = |n: i64| ControllerRevision {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("web-{n}")),
                ..Default::default()
            },
            data: None,
            revision: n,
        };
        let sorted: Vec<ControllerRevision> = (1..=6).map(rev).collect();
        // web-2 is still used by a pod, web-6 is current.
        let live: HashSet<String> = ["web-2".to_string(), "web-6".to_string()].into();
        let trimmed: Vec<String> = to_trim(&sorted, &live, 2)
            .iter()
            .map(|r| r.name_any())
            .collect();
        assert_eq!(trimmed, ["web-1", "web-3"]);
        assert!(to_trim(&sorted, &live, 10).is_empty());
    }
}
