//! Job controller (upstream `pkg/controller/job`, batch/v1): runs a Job's pods until
//! enough succeed (`completions`, or the first success without it), `parallelism` at a
//! time, replacing failed ones after a back-off until `backoffLimit`,
//! `activeDeadlineSeconds`, a `podFailurePolicy` rule or the per-index limits fail it.
//! Suspending deletes the active pods; resuming starts over the deadline.
//!
//! Every pod carries the `batch.kubernetes.io/job-tracking` finalizer until its end is
//! counted in the Job's status, so a pod deleted right after finishing is never missed or
//! counted twice (see `tracking.rs`). As in 1.33 (JobManagedBy, JobPodReplacementPolicy),
//! a Job first gets `SuccessCriteriaMet` or `FailureTarget`, and `Complete` / `Failed` only
//! once none of its pods is left running or uncounted.
//!
//! # Layout
//! - `mod.rs`: informer wiring, pod event handling, adoption, orphaned pods' finalizers.
//! - `sync.rs`: one sync: what the pods say, the outcome the Job has earned.
//! - `manage.rs`: creating and deleting pods.
//! - `tracking.rs`: counting finished pods through `status.uncountedTerminatedPods`,
//!   terminal conditions, status writes.
//! - `indexed.rs`: Indexed Jobs' pending indexes and `backoffLimitPerIndex`.
//! - `indexes.rs`: index sets ("1,3-5") and the index annotations of pods.
//! - `policy.rs`: `podFailurePolicy` and `successPolicy` matching.
//! - `backoff.rs`: the delay before failed pods are replaced.
//! - `pods.rs`: the pods a Job creates and the order it deletes them in.

mod backoff;
mod indexed;
mod indexes;
mod manage;
mod pods;
mod policy;
mod sync;
mod tracking;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::selector::label::LabelSelector;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller_ref::{self, Expectations, Owner};
use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, key_of, podutil, split_key};

pub const NAME: &str = "job";
const COMPONENT: &str = "job-controller";
/// Held by every pod of a Job until the pod's end is counted (`batch.JobTrackingFinalizer`).
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// `spec.managedBy` of the Jobs this controller runs (unset means the same).
const MANAGED_BY: &str = "kubernetes.io/job-controller";
/// Upstream's `syncJobBatchPeriod`: pod events and status updates of a Job are folded into
/// one sync this long after the first.
const SYNC_BATCH_PERIOD: Duration = Duration::from_secs(1);
/// Upstream `MaxPodCreateDeletePerSync`.
const MAX_POD_CHANGES_PER_SYNC: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming pods")]
    Claim(#[source] kube::Error),
    #[error("creating pods")]
    CreatePods(#[source] kube::Error),
    #[error("deleting pods")]
    DeletePods(#[source] kube::Error),
    #[error("removing tracking finalizers")]
    RemoveFinalizers(#[source] kube::Error),
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
}

/// Pod UIDs whose tracking finalizer this controller removed and has not yet seen gone,
/// per Job key (upstream `uidTrackingExpectations`): until then the cache still shows the
/// finalizer, and the pod must not be counted again.
#[derive(Default)]
struct FinalizerExpectations {
    by_job: Mutex<HashMap<String, HashSet<String>>>,
}

impl FinalizerExpectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.by_job.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expected(&self, job: &str) -> HashSet<String> {
        self.lock().get(job).cloned().unwrap_or_default()
    }

    fn expect(&self, job: &str, uids: impl IntoIterator<Item = String>) {
        self.lock().entry(job.to_string()).or_default().extend(uids);
    }

    fn observed(&self, job: &str, uid: &str) {
        if let Some(set) = self.lock().get_mut(job) {
            set.remove(uid);
        }
    }

    fn forget(&self, job: &str) {
        self.lock().remove(job);
    }
}

struct Controller {
    ctx: Arc<Ctx>,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    queue: Queue<String>,
    /// Pods whose tracking finalizer must go because no unfinished Job owns them.
    orphans: Queue<String>,
    expectations: Expectations,
    finalizers: FinalizerExpectations,
    backoff: backoff::Store,
    /// Job key → resourceVersion of the last status this controller wrote. A cache older
    /// than that would count pods whose finalizers are already gone as never finished.
    written: Mutex<HashMap<String, u64>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let jobs = ctx.informers.get::<Job>();
    let pods = ctx.informers.get::<Pod>();
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        jobs: jobs.clone(),
        pods: pods.clone(),
        queue: Queue::new(),
        orphans: Queue::new(),
        expectations: Expectations::default(),
        finalizers: FinalizerExpectations::default(),
        backoff: backoff::Store::default(),
        written: Mutex::default(),
    });
    jobs.on_change({
        let c = c.clone();
        move |ch| c.job_changed(ch)
    });
    pods.on_change({
        let c = c.clone();
        move |ch| c.pod_changed(ch)
    });
    Box::pin(async move {
        jobs.wait_synced().await;
        pods.wait_synced().await;
        let workers = c.ctx.config.workers;
        let sync_jobs = crate::queue::run_workers(NAME, c.queue.clone(), workers, stop.clone(), {
            let c = c.clone();
            move |key: String| {
                let c = c.clone();
                async move { c.sync(&key).await }
            }
        });
        let sync_orphans = crate::queue::run_workers(NAME, c.orphans.clone(), 1, stop, {
            let c = c.clone();
            move |key: String| {
                let c = c.clone();
                async move { c.sync_orphan(&key).await }
            }
        });
        futures::join!(sync_jobs, sync_orphans);
    })
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn is_suspended(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

fn condition_is_true(job: &Job, type_: &str) -> bool {
    find_condition(job, type_).is_some_and(|c| c.status == "True")
}

fn find_condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Upstream `IsJobFinished`: `Complete` or `Failed` is `True`.
pub fn is_finished(job: &Job) -> bool {
    condition_is_true(job, "Complete") || condition_is_true(job, "Failed")
}

fn managed_elsewhere(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .is_some_and(|m| m != MANAGED_BY)
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.finalizers().iter().any(|f| f == TRACKING_FINALIZER)
}

/// Upstream `JobPodReplacementPolicy` (on in 1.33): with `podReplacementPolicy: Failed` (the
/// default under a `podFailurePolicy`) a terminating pod is replaced only once it failed.
fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        && !matches!(podutil::phase(pod), "Succeeded" | "Failed")
}

/// Upstream `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before
/// it succeeded — an orphan removed by pod GC never reaches a phase.
fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    match podutil::phase(pod) {
        "Failed" => true,
        "Succeeded" => false,
        _ => !only_replace_failed(job) && pod.metadata.deletion_timestamp.is_some(),
    }
}

fn per_index_limit(job: &Job) -> Option<i32> {
    job.spec.as_ref()?.backoff_limit_per_index
}

fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref()?.completions
}

/// A `True` condition stamped `now`; empty reason and message are left out, as upstream
/// serializes them.
fn new_condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream `ensureJobConditionStatus`: set the condition (stamped `now`) unless it already
/// reads so; a `False` one is never added. Returns whether the list changed.
fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let mut fresh = new_condition(type_, reason, message, now);
    fresh.status = status.into();
    if let Some(c) = list.iter_mut().find(|c| c.type_ == type_) {
        let same = c.status == status
            && c.reason.as_deref().unwrap_or("") == reason
            && c.message.as_deref().unwrap_or("") == message;
        if !same {
            *c = fresh;
        }
        return !same;
    }
    if status != "False" {
        list.push(fresh);
        return true;
    }
    false
}

impl Controller {
    fn queue_batched(&self, key: String) {
        self.queue.add_after(key, SYNC_BATCH_PERIOD);
    }

    /// The Job a controller reference names, if it is the same object (uid).
    fn resolve(&self, ns: &str, r: &OwnerReference) -> Option<Arc<Job>> {
        if r.kind != "Job" {
            return None;
        }
        let job = self.jobs.get(ns, &r.name)?;
        (job.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(job)
    }

    fn job_changed(&self, ch: &Change<'_, Job>) {
        match ch {
            Change::Added(job) => self.queue.add(key_of(job.as_ref())),
            Change::Updated { old, new } => {
                let key = key_of(new.as_ref());
                // A spec change is acted on at once; status updates are batched with the
                // pod events they usually come with.
                if old.metadata.generation == new.metadata.generation {
                    self.queue_batched(key.clone());
                } else {
                    self.queue.add(key.clone());
                }
                // A backup for pods whose finalizer the finishing sync left behind.
                if is_finished(new) {
                    self.release_pods(new);
                }
                let ads = |j: &Job| j.spec.as_ref().and_then(|s| s.active_deadline_seconds);
                if let (Some(start), Some(secs)) = (
                    new.status.as_ref().and_then(|s| s.start_time.as_ref()),
                    ads(new),
                ) && ads(old) != Some(secs)
                {
                    let deadline = start.0 + jiff::SignedDuration::from_secs(secs);
                    let left = Timestamp::now().duration_until(deadline);
                    self.queue
                        .add_after(key, Duration::try_from(left).unwrap_or(Duration::ZERO));
                }
            }
            Change::Deleted(job) => {
                self.queue.add(key_of(job.as_ref()));
                self.release_pods(job);
            }
        }
    }

    /// Upstream `cleanupPodFinalizers`: queue the Job's pods that still hold the finalizer.
    fn release_pods(&self, job: &Job) {
        let ns = job.namespace().unwrap_or_default();
        let uid = job.uid().unwrap_or_default();
        for pod in self.pods.list(&ns) {
            if has_finalizer(&pod)
                && controller_ref::controller_of(pod.as_ref()).is_some_and(|r| r.uid == uid)
            {
                self.orphans.add(podutil::key(&pod));
            }
        }
    }

    /// Upstream's add/update/deletePod handlers.
    fn pod_changed(&self, ch: &Change<'_, Pod>) {
        match ch {
            Change::Added(pod) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    // Seen for the first time already deleting (a restarted controller):
                    // not a creation this controller waits for.
                    return self.pod_deleted(pod, false);
                }
                let ns = pod.namespace().unwrap_or_default();
                match controller_ref::controller_of(pod.as_ref()) {
                    Some(r) => {
                        if let Some(job) = self.resolve(&ns, r) {
                            let key = key_of(job.as_ref());
                            self.expectations.creation_observed(&key);
                            self.queue_batched(key);
                        }
                    }
                    None => {
                        if has_finalizer(pod) {
                            self.orphans.add(podutil::key(pod));
                        }
                        self.queue_adopters(pod);
                    }
                }
            }
            Change::Updated { old, new } => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                if new.metadata.deletion_timestamp.is_some() {
                    return self.pod_deleted(new, false);
                }
                let ns = new.namespace().unwrap_or_default();
                let uid = new.uid().unwrap_or_default();
                let finalizer_gone = !has_finalizer(new);
                let (old_ref, new_ref) = (
                    controller_ref::controller_of(old.as_ref()),
                    controller_ref::controller_of(new.as_ref()),
                );
                let ref_changed = old_ref != new_ref;
                if ref_changed
                    && let Some(r) = old_ref
                    && let Some(job) = self.resolve(&ns, r)
                {
                    let key = key_of(job.as_ref());
                    if finalizer_gone {
                        self.finalizers.observed(&key, &uid);
                    }
                    self.queue_batched(key);
                }
                if let Some(r) = new_ref {
                    if let Some(job) = self.resolve(&ns, r) {
                        let key = key_of(job.as_ref());
                        if finalizer_gone {
                            self.finalizers.observed(&key, &uid);
                        }
                        self.queue_batched(key);
                    }
                    return;
                }
                if has_finalizer(new) {
                    self.orphans.add(podutil::key(new));
                }
                if ref_changed || old.labels() != new.labels() {
                    self.queue_adopters(new);
                }
            }
            Change::Deleted(pod) => self.pod_deleted(pod, true),
        }
    }

    /// A pod is being deleted (`gone` once it left the API).
    fn pod_deleted(&self, pod: &Pod, gone: bool) {
        let finalizer = has_finalizer(pod);
        let ns = pod.namespace().unwrap_or_default();
        let Some(r) = controller_ref::controller_of(pod) else {
            if finalizer {
                self.orphans.add(podutil::key(pod));
            }
            return;
        };
        let job = self.resolve(&ns, r).filter(|j| !is_finished(j));
        let Some(job) = job else {
            // No sync of an unfinished owner will take the finalizer off.
            if finalizer {
                self.orphans.add(podutil::key(pod));
            }
            return;
        };
        let key = key_of(job.as_ref());
        self.expectations.deletion_observed(&key, &pod.name_any());
        if gone || !finalizer {
            self.finalizers
                .observed(&key, &pod.uid().unwrap_or_default());
        }
        self.queue_batched(key);
    }

    /// An orphan matching a Job's selector may be adopted.
    fn queue_adopters(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        for job in self.jobs.list(&pod.namespace().unwrap_or_default()) {
            let sel = job.spec.as_ref().and_then(|s| s.selector.as_ref());
            if LabelSelector::from_api(sel).is_ok_and(|s| !s.is_empty() && s.matches(pod.labels()))
            {
                self.queue_batched(key_of(job.as_ref()));
            }
        }
    }

    /// Upstream `syncOrphanPod`: takes the tracking finalizer off a pod no unfinished Job
    /// of ours controls.
    async fn sync_orphan(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.get(ns, name) else {
            return Ok(Next::Done);
        };
        if let Some(r) = controller_ref::controller_of(pod.as_ref()) {
            if r.kind != "Job" || r.api_version != "batch/v1" {
                return Ok(Next::Done);
            }
            if let Some(job) = self.resolve(ns, r)
                && (managed_elsewhere(&job) || !is_finished(&job))
            {
                return Ok(Next::Done);
            }
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        match remove_finalizer(&api, &pod).await {
            Ok(()) => Ok(Next::Done),
            Err(e) => Err(Error::RemoveFinalizers(e)),
        }
    }

    /// The Job's pods (all phases), after adopting matching orphans and releasing pods the
    /// selector no longer matches. An adopted pod gets the tracking finalizer too.
    async fn pods_for(&self, job: &Job, selector: &LabelSelector) -> Result<Vec<Arc<Pod>>, Error> {
        let ns = job.namespace().unwrap_or_default();
        let uid = job.uid().unwrap_or_default();
        let all = self.pods.list(&ns);
        let owned: HashSet<String> = all
            .iter()
            .filter(|p| controller_ref::controller_of(p.as_ref()).is_some_and(|r| r.uid == uid))
            .filter_map(|p| p.uid())
            .collect();
        let owner = Owner {
            reference: controller_ref::reference(job),
            selector,
            deleting: job.metadata.deletion_timestamp.is_some(),
        };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        let mut pods = controller_ref::claim(&api, &owner, all)
            .await
            .map_err(Error::Claim)?;
        for p in &mut pods {
            if owned.contains(&p.uid().unwrap_or_default()) || has_finalizer(p) {
                continue;
            }
            let patch = json!({"metadata": {"finalizers": [TRACKING_FINALIZER]}});
            match api
                .patch(
                    &p.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
            {
                Ok(adopted) => *p = Arc::new(adopted),
                Err(e) => {
                    tracing::debug!(pod = %p.name_any(), error = %e, "adding the tracking finalizer failed")
                }
            }
        }
        Ok(pods)
    }
}

/// Takes the tracking finalizer off `pod` (a strategic `$deleteFromPrimitiveList`, as
/// upstream sends it); a pod without it or gone already is fine.
async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    if !has_finalizer(pod) {
        return Ok(());
    }
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

fn count<'a>(pods: impl Iterator<Item = &'a Arc<Pod>>) -> i32 {
    len_i32(pods.count())
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
