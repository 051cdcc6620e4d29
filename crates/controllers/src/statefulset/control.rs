//! One StatefulSet sync's pass over its pods (upstream `updateStatefulSet` and
//! `StatefulPodControl`): replicas are created, replaced and kept consistent in ordinal
//! order, pods beyond `replicas` are removed highest ordinal first, and a rolling update
//! replaces the highest ordinal not yet at the update revision, down to the partition.
//!
//! With `OrderedReady` every step waits for the pods before it to be Running, Ready and
//! available, and one pod is created or deleted per pass; `Parallel` acts on all at once.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::identity::{self, revision};
use super::{COMPONENT, Controller, Error};
use crate::podutil;
use crate::replicaset::api_message;

/// Upstream `MaxBatchSize`: pods acted on at once in Parallel mode.
const MAX_BATCH: usize = 500;

/// A replica slot: the pod there, or the one to create.
pub(super) enum Slot {
    Live(Arc<Pod>),
    Missing(Box<Pod>),
}

impl Slot {
    fn pod(&self) -> &Pod {
        match self {
            Slot::Live(p) => p,
            Slot::Missing(p) => p,
        }
    }
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn running_and_ready(pod: &Pod) -> bool {
    podutil::phase(pod) == "Running" && podutil::is_ready(pod)
}

pub(super) struct Pass<'a> {
    c: &'a Controller,
    set: &'a StatefulSet,
    /// The set with the current revision's template, and with the update revision's.
    current_set: StatefulSet,
    update_set: StatefulSet,
    current: &'a ControllerRevision,
    update: &'a ControllerRevision,
    monotonic: bool,
    min_ready: i32,
    now: jiff::Timestamp,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
}

/// Upstream `ApplyRevision`: `set` with the template `revision` recorded.
fn apply_revision(set: &StatefulSet, revision: &ControllerRevision) -> Result<StatefulSet, Error> {
    let template = crate::history::template_of(revision)
        .ok_or_else(|| Error::BadRevision(revision.name_any()))?;
    let mut out = set.clone();
    if let Some(spec) = out.spec.as_mut() {
        spec.template = template;
    }
    Ok(out)
}

/// Upstream `runForAll`: in order, stopping at the first step that asks to (monotonic), or
/// all at once in slow-start batches, stopping at a batch with an error.
async fn run_for_all<F, Fut>(monotonic: bool, n: usize, f: F) -> Result<bool, Error>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    if monotonic {
        for i in 0..n {
            if f(i).await? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    let (mut start, mut batch) = (0, 1);
    while start < n {
        let size = batch.min(n - start);
        let out = futures::future::join_all((start..start + size).map(&f)).await;
        for r in out {
            r?;
        }
        start += size;
        batch = (batch * 2).min(MAX_BATCH);
    }
    Ok(false)
}

impl<'a> Pass<'a> {
    pub fn new(
        c: &'a Controller,
        set: &'a StatefulSet,
        current: &'a ControllerRevision,
        update: &'a ControllerRevision,
    ) -> Result<Self, Error> {
        let ns = set.namespace().unwrap_or_default();
        let spec = set.spec.as_ref();
        Ok(Self {
            c,
            set,
            current_set: apply_revision(set, current)?,
            update_set: apply_revision(set, update)?,
            current,
            update,
            monotonic: spec.and_then(|s| s.pod_management_policy.as_deref()) != Some("Parallel"),
            min_ready: spec.and_then(|s| s.min_ready_seconds).unwrap_or(0),
            now: jiff::Timestamp::now(),
            pods: Api::namespaced(c.ctx.client.clone(), &ns),
            claims: Api::namespaced(c.ctx.client.clone(), &ns),
        })
    }

    fn available(&self, pod: &Pod) -> bool {
        podutil::is_available(pod, self.min_ready, self.now)
    }

    /// Upstream `isUnavailable`: not Running, Ready and available, or going away.
    fn unavailable(&self, pod: &Pod) -> bool {
        !running_and_ready(pod) || terminating(pod) || !self.available(pod)
    }

    /// Runs the pass; the status is what the pods are after it (even when a step failed).
    pub async fn run(
        &self,
        pods: &[Arc<Pod>],
        mut status: StatefulSetStatus,
    ) -> (StatefulSetStatus, Result<(), Error>) {
        let start = identity::start_ordinal(self.set);
        let count = identity::replicas(self.set);
        let mut slots: Vec<Option<Slot>> = (0..count).map(|_| None).collect();
        let mut condemned: Vec<Arc<Pod>> = Vec::new();
        for p in pods {
            match identity::ordinal(p) {
                Some(o) if identity::in_range(p, self.set) => {
                    if let Some(s) = usize::try_from(o - start)
                        .ok()
                        .and_then(|i| slots.get_mut(i))
                    {
                        *s = Some(Slot::Live(p.clone()));
                    }
                }
                Some(o) if o >= 0 => condemned.push(p.clone()),
                _ => {}
            }
        }
        let replicas: Vec<Slot> = slots
            .into_iter()
            .zip(start..)
            .map(|(s, ord)| {
                s.unwrap_or_else(|| Slot::Missing(Box::new(self.new_versioned_pod(ord))))
            })
            .collect();
        condemned.sort_by_key(|p| std::cmp::Reverse(identity::ordinal(p)));
        let first_unavailable = replicas
            .iter()
            .map(Slot::pod)
            .chain(condemned.iter().rev().map(|p| p.as_ref()))
            .find(|p| self.unavailable(p))
            .map(|p| p.name_any());
        let result = self
            .act(
                &replicas,
                &condemned,
                first_unavailable.as_deref(),
                &mut status,
            )
            .await;
        // A full pass tallied before its rolling update; an early stop tallies here.
        if !matches!(result, Ok(false)) {
            self.tally(&mut status, &replicas, &condemned);
        }
        (status, result.map(|_| ()))
    }

    /// Everything the pass does; Ok(true) when it stopped early (status not yet tallied).
    async fn act(
        &self,
        replicas: &[Slot],
        condemned: &[Arc<Pod>],
        first_unavailable: Option<&str>,
        status: &mut StatefulSetStatus,
    ) -> Result<bool, Error> {
        if self.set.metadata.deletion_timestamp.is_some() {
            return Ok(true);
        }
        let m = self.monotonic;
        if run_for_all(m, replicas.len(), |i| self.process_replica(&replicas[i])).await? {
            return Ok(true);
        }
        if run_for_all(m, condemned.len(), |i| self.fix_claims(&condemned[i])).await? {
            return Ok(true);
        }
        let process = |i: usize| self.process_condemned(&condemned[i], first_unavailable);
        if run_for_all(m, condemned.len(), process).await? {
            return Ok(true);
        }
        self.tally(status, replicas, condemned);
        self.rolling_update(replicas, status).await?;
        Ok(false)
    }

    /// Upstream `newVersionedStatefulSetPod`: below the partition (or, without a
    /// `rollingUpdate` block, below the current replica count) pods are made at the current
    /// revision, the rest at the update revision.
    fn new_versioned_pod(&self, ordinal: i32) -> Pod {
        let strategy = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref());
        let rolling = strategy
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let ru = strategy.and_then(|s| s.rolling_update.as_ref());
        let start = identity::start_ordinal(self.set);
        let current_replicas = self
            .set
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0);
        let use_current = (rolling && ru.is_none() && ordinal < start + current_replicas)
            || ru.is_some_and(|r| ordinal < start + r.partition.unwrap_or(0));
        if use_current {
            identity::new_pod(&self.current_set, ordinal, &self.current.name_any())
        } else {
            identity::new_pod(&self.update_set, ordinal, &self.update.name_any())
        }
    }

    /// Upstream `processReplica`; Ok(true) stops a monotonic pass.
    async fn process_replica(&self, slot: &Slot) -> Result<bool, Error> {
        let pod = match slot {
            Slot::Missing(pod) => {
                if self.claim_is_stale(pod) {
                    return Ok(true);
                }
                self.create_pod(pod).await?;
                return Ok(self.monotonic);
            }
            Slot::Live(pod) => pod,
        };
        // Finished pods are replaced whatever their exit: a new one comes once this is gone.
        if matches!(podutil::phase(pod), "Failed" | "Succeeded") {
            if !terminating(pod) {
                self.delete_pod(pod).await?;
            }
            return Ok(true);
        }
        if podutil::phase(pod) == "Pending" {
            self.create_missing_claims(pod).await?;
        }
        if self.monotonic && (terminating(pod) || !running_and_ready(pod) || !self.available(pod)) {
            return Ok(true);
        }
        if identity::identity_matches(self.set, pod)
            && identity::storage_matches(self.set, pod)
            && self.claims_match_retention(pod)
        {
            return Ok(false);
        }
        self.update_pod(pod).await?;
        Ok(false)
    }

    /// Upstream `processCondemned`: monotonic passes delete one pod, and only once every
    /// other pod is healthy (the first unhealthy one may go).
    async fn process_condemned(
        &self,
        pod: &Pod,
        first_unavailable: Option<&str>,
    ) -> Result<bool, Error> {
        if terminating(pod) {
            return Ok(self.monotonic);
        }
        let first = first_unavailable == Some(pod.name_any().as_str());
        if self.monotonic && !first && (!running_and_ready(pod) || !self.available(pod)) {
            return Ok(true);
        }
        self.delete_pod(pod).await?;
        Ok(true)
    }

    /// Condemned pods' claims get the owners the policy wants before the pods go, so a
    /// delete-on-scale-down claim is collected with its pod.
    async fn fix_claims(&self, pod: &Pod) -> Result<bool, Error> {
        if !self.claims_match_retention(pod) {
            self.update_claims_for_retention(pod).await?;
        }
        Ok(false)
    }

    /// The rolling update: the highest ordinal at or above the partition that is not at the
    /// update revision is deleted (and comes back at it), one at a time, each waiting for
    /// the ones above to be available.
    async fn rolling_update(
        &self,
        replicas: &[Slot],
        status: &mut StatefulSetStatus,
    ) -> Result<(), Error> {
        let strategy = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref());
        if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
            return Ok(());
        }
        let partition = strategy
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        let update_min = usize::try_from(partition).unwrap_or(0);
        let update_name = self.update.name_any();
        for slot in replicas.iter().skip(update_min).rev() {
            let pod = slot.pod();
            if revision(pod) != update_name && !terminating(pod) {
                if let Slot::Live(p) = slot {
                    self.delete_pod(p).await?;
                }
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
                return Ok(());
            }
            if self.unavailable(pod) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Upstream `updateStatus` over the replicas and the condemned.
    fn tally(&self, status: &mut StatefulSetStatus, replicas: &[Slot], condemned: &[Arc<Pod>]) {
        let (current, update) = (self.current.name_any(), self.update.name_any());
        let (mut n, mut ready, mut available, mut cur, mut upd) = (0, 0, 0, 0, 0);
        let live = replicas
            .iter()
            .filter_map(|s| match s {
                Slot::Live(p) => Some(p.as_ref()),
                Slot::Missing(_) => None,
            })
            .chain(condemned.iter().map(|p| p.as_ref()));
        for p in live {
            n += 1;
            if running_and_ready(p) {
                ready += 1;
                if self.available(p) {
                    available += 1;
                }
            }
            if !terminating(p) {
                if revision(p) == current {
                    cur += 1;
                }
                if revision(p) == update {
                    upd += 1;
                }
            }
        }
        status.replicas = n;
        status.ready_replicas = Some(ready);
        status.available_replicas = Some(available);
        status.current_replicas = Some(cur);
        status.updated_replicas = Some(upd);
    }

    fn event_ok(&self, reason: &'static str, message: String) {
        self.c
            .ctx
            .events
            .normal(COMPONENT, self.set, reason, message);
    }

    fn event_failed(&self, reason: &'static str, message: String) {
        self.c
            .ctx
            .events
            .warning(COMPONENT, self.set, reason, message);
    }

    /// Upstream `recordPodEvent`.
    fn pod_event(&self, verb: &str, pod: &Pod, err: Option<&str>) {
        let (set, pod) = (self.set.name_any(), pod.name_any());
        match (verb, err) {
            ("create", None) => self.event_ok(
                "SuccessfulCreate",
                format!("create Pod {pod} in StatefulSet {set} successful"),
            ),
            ("update", None) => self.event_ok(
                "SuccessfulUpdate",
                format!("update Pod {pod} in StatefulSet {set} successful"),
            ),
            (_, None) => self.event_ok(
                "SuccessfulDelete",
                format!("delete Pod {pod} in StatefulSet {set} successful"),
            ),
            ("create", Some(e)) => self.event_failed(
                "FailedCreate",
                format!("create Pod {pod} in StatefulSet {set} failed error: {e}"),
            ),
            ("update", Some(e)) => self.event_failed(
                "FailedUpdate",
                format!("update Pod {pod} in StatefulSet {set} failed error: {e}"),
            ),
            (_, Some(e)) => self.event_failed(
                "FailedDelete",
                format!("delete Pod {pod} in StatefulSet {set} failed error: {e}"),
            ),
        }
    }

    /// Upstream `CreateStatefulPod`: the claims first, then the pod, then the claims'
    /// owners as the retention policy wants them.
    async fn create_pod(&self, pod: &Pod) -> Result<(), Error> {
        if let Err(e) = self.create_claims(pod).await {
            self.pod_event("create", pod, Some(&crate::queue::chain(&e)));
            return Err(e);
        }
        let name = pod.name_any();
        let created = match self.pods.create(&PostParams::default(), pod).await {
            Ok(p) => p,
            // Our cache is behind: the next sync sees it.
            Err(source) if crate::is_conflict(&source) => {
                return Err(Error::CreatePod { name, source });
            }
            Err(source) => {
                self.pod_event("create", pod, Some(&api_message(&source)));
                return Err(Error::CreatePod { name, source });
            }
        };
        if let Err(e) = self.update_claims_for_retention(&created).await {
            self.pod_event("update", pod, Some(&crate::queue::chain(&e)));
            return Err(e);
        }
        self.pod_event("create", pod, None);
        Ok(())
    }

    /// Deletes a pod; one already gone is fine.
    async fn delete_pod(&self, pod: &Pod) -> Result<(), Error> {
        let name = pod.name_any();
        match self.pods.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.pod_event("delete", pod, None);
                Ok(())
            }
            Err(e) if crate::is_not_found(&e) => Ok(()),
            Err(source) => {
                self.pod_event("delete", pod, Some(&api_message(&source)));
                Err(Error::DeletePod { name, source })
            }
        }
    }

    /// Upstream `UpdateStatefulPod`: restores the identity labels, creates missing claims and
    /// fixes claim owners. (A live pod's volumes cannot change, so storage is only repaired
    /// by creating the claims it names.)
    async fn update_pod(&self, pod: &Pod) -> Result<(), Error> {
        let mut dirty = false;
        if !identity::storage_matches(self.set, pod)
            && let Err(e) = self.create_claims(pod).await
        {
            self.pod_event("update", pod, Some(&crate::queue::chain(&e)));
            return Err(e);
        }
        if !self.claims_match_retention(pod) {
            if let Err(e) = self.update_claims_for_retention(pod).await {
                self.pod_event("update", pod, Some(&crate::queue::chain(&e)));
                return Err(e);
            }
            dirty = true;
        }
        if !identity::identity_matches(self.set, pod)
            && let Some(ord) = identity::ordinal(pod)
        {
            let name = pod.name_any();
            let patch = json!({"metadata": {"labels": identity::identity_labels(self.set, ord)}});
            if let Err(source) = self
                .pods
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                self.pod_event("update", pod, Some(&api_message(&source)));
                return Err(Error::UpdatePod { name, source });
            }
            dirty = true;
        }
        if dirty {
            self.pod_event("update", pod, None);
        }
        Ok(())
    }

    fn cached_claim(&self, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.c
            .claims
            .get(&self.set.namespace().unwrap_or_default(), name)
    }

    /// Upstream `createPersistentVolumeClaims`: creates the pod's claims that do not exist;
    /// a claim being deleted is an error (the pod must wait for its replacement).
    async fn create_claims(&self, pod: &Pod) -> Result<(), Error> {
        let Some(ord) = identity::ordinal(pod) else {
            return Ok(());
        };
        let (set, pod_name) = (self.set.name_any(), pod.name_any());
        let mut first_err = None;
        for (_, claim) in identity::claims(self.set, ord) {
            let name = claim.name_any();
            match self.cached_claim(&name) {
                Some(existing) => {
                    if existing.metadata.deletion_timestamp.is_some() {
                        first_err.get_or_insert(Error::ClaimDeleting(name));
                    }
                }
                None => match self.claims.create(&PostParams::default(), &claim).await {
                    Ok(_) => self.event_ok(
                        "SuccessfulCreate",
                        format!("create Claim {name} Pod {pod_name} in StatefulSet {set} success"),
                    ),
                    Err(source) => {
                        if !crate::is_conflict(&source) {
                            self.event_failed(
                                "FailedCreate",
                                format!(
                                    "create Claim {name} for Pod {pod_name} in StatefulSet {set} failed error: {}",
                                    api_message(&source)
                                ),
                            );
                        }
                        first_err.get_or_insert(Error::CreateClaim { name, source });
                    }
                },
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Upstream `createMissingPersistentVolumeClaims` (for a pod stuck Pending).
    async fn create_missing_claims(&self, pod: &Pod) -> Result<(), Error> {
        self.create_claims(pod).await?;
        if let Err(e) = self.update_claims_for_retention(pod).await {
            self.pod_event("update", pod, Some(&crate::queue::chain(&e)));
            return Err(e);
        }
        Ok(())
    }

    /// Upstream `PodClaimIsStale`: with delete-on-scale-down, a claim still owned by an
    /// earlier pod of this name is about to be collected; the pod waits for it.
    fn claim_is_stale(&self, pod: &Pod) -> bool {
        if !identity::retention(self.set).0 {
            return false;
        }
        let Some(ord) = identity::ordinal(pod) else {
            return false;
        };
        identity::claims(self.set, ord)
            .iter()
            .filter_map(|(_, c)| self.cached_claim(&c.name_any()))
            .any(|c| identity::claim_is_stale(&c, pod))
    }

    /// Upstream `ClaimsMatchRetentionPolicy` (claims not yet seen count as matching).
    fn claims_match_retention(&self, pod: &Pod) -> bool {
        let Some(ord) = identity::ordinal(pod) else {
            return true;
        };
        identity::claims(&self.update_set, ord)
            .iter()
            .filter_map(|(_, c)| self.cached_claim(&c.name_any()))
            .all(|c| identity::claim_owner_up_to_date(&c, &self.update_set, pod))
    }

    /// Upstream `UpdatePodClaimForRetentionPolicy`.
    async fn update_claims_for_retention(&self, pod: &Pod) -> Result<(), Error> {
        let Some(ord) = identity::ordinal(pod) else {
            return Ok(());
        };
        for (_, c) in identity::claims(&self.update_set, ord) {
            let name = c.name_any();
            let Some(claim) = self.cached_claim(&name) else {
                continue;
            };
            if identity::has_unexpected_controller(&claim, &self.update_set, pod) {
                self.event_failed(
                    "ConflictingController",
                    format!(
                        "PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
                    ),
                );
            }
            if identity::claim_owner_up_to_date(&claim, &self.update_set, pod) {
                continue;
            }
            let refs = identity::claim_owner_refs(&claim, &self.update_set, pod);
            let patch = json!({"metadata": {
                "ownerReferences": refs,
                "resourceVersion": claim.resource_version(),
            }});
            self.claims
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|source| Error::UpdateClaim { name, source })?;
        }
        Ok(())
    }
}
