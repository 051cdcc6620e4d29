//! One sync of a Job (upstream `syncJob`): read what its pods say, decide whether it has
//! succeeded or failed, create or delete pods (`manage.rs`), then count and record
//! (`tracking.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use apimachinery::selector::label::LabelSelector;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::indexes::{self, Intervals};
use super::{
    COMPONENT, Controller, Error, backoff, completions, count, ensure_condition, find_condition,
    has_finalizer, indexed, is_finished, is_indexed, is_pod_failed, is_suspended, is_terminating,
    len_i32, managed_elsewhere, new_condition, per_index_limit, policy, tracking,
};
use crate::podutil;
use crate::queue::Next;
use crate::split_key;

/// One sync's view of a Job: the working copy of the Job and what its pods say.
pub(super) struct SyncCtx {
    pub(super) key: String,
    pub(super) job: Job,
    /// The status the server holds (as last read or written), to diff writes against.
    pub(super) server_status: serde_json::Value,
    pub(super) pods: Vec<Arc<Pod>>,
    pub(super) active: Vec<Arc<Pod>>,
    /// The outcome decided so far (`SuccessCriteriaMet`, `FailureTarget`, or the terminal
    /// condition they lead to).
    pub(super) finished: Option<JobCondition>,
    pub(super) succeeded: i32,
    pub(super) failed: i32,
    pub(super) prev_succeeded_indexes: Intervals,
    pub(super) succeeded_indexes: Intervals,
    pub(super) failed_indexes: Option<Intervals>,
    pub(super) backoff: backoff::Record,
    /// Pods whose finalizer removal is in flight: already counted.
    pub(super) expected_rm: HashSet<String>,
    pub(super) uncounted_succeeded: HashSet<String>,
    pub(super) uncounted_failed: HashSet<String>,
    /// backoffLimitPerIndex: per index, the failed pod kept until its replacement exists
    /// (it carries the failure counts the replacement inherits).
    pub(super) delayed_deletion: HashMap<i32, Arc<Pod>>,
    pub(super) terminating: i32,
    pub(super) ready: i32,
    /// Sync again after this long (deadline, back-off).
    pub(super) requeue: Option<Duration>,
    pub(super) now: Timestamp,
}

impl SyncCtx {
    pub(super) fn status(&mut self) -> &mut JobStatus {
        self.job.status.get_or_insert_with(Default::default)
    }

    pub(super) fn requeue_after(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    pub(super) fn spec_int(&self, f: impl Fn(&JobSpec) -> Option<i32>) -> Option<i32> {
        self.job.spec.as_ref().and_then(f)
    }

    /// Upstream `getValidPodsWithFilter`: pods not counted yet (finalizer still on, not in
    /// `skip`, no finalizer removal in flight) with, for an Indexed Job, a valid index.
    pub(super) fn uncounted_pods(
        &self,
        skip: &HashSet<String>,
        keep: impl Fn(&Pod) -> bool,
    ) -> Vec<Arc<Pod>> {
        let completions = completions(&self.job).unwrap_or(0);
        let indexed = is_indexed(&self.job);
        self.pods
            .iter()
            .filter(|p| {
                let uid = p.uid().unwrap_or_default();
                has_finalizer(p)
                    && !skip.contains(&uid)
                    && !self.expected_rm.contains(&uid)
                    && (!indexed || indexes::valid(p, completions).is_some())
                    && keep(p)
            })
            .cloned()
            .collect()
    }
}

impl Controller {
    /// Upstream `syncJob`.
    pub(super) async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(shared) = self.jobs.get(ns, name) else {
            self.expectations.forget(key);
            self.finalizers.forget(key);
            self.backoff.remove(key);
            self.lock_written().remove(key);
            return Ok(Next::Done);
        };
        if managed_elsewhere(&shared) {
            return Ok(Next::Done);
        }
        if is_finished(&shared) {
            self.backoff.remove(key);
            return Ok(Next::Done);
        }
        if self.cache_is_stale(key, &shared) {
            // Our own status write is on its way; its event queues the Job again.
            return Ok(Next::Done);
        }
        let mode = shared
            .spec
            .as_ref()
            .and_then(|s| s.completion_mode.as_deref());
        if !matches!(mode, None | Some("NonIndexed" | "Indexed")) {
            self.ctx.events.warning(
                COMPONENT,
                shared.as_ref(),
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown".into(),
            );
            return Ok(Next::Done);
        }
        let selector =
            match LabelSelector::from_api(shared.spec.as_ref().and_then(|s| s.selector.as_ref())) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(ns, name, error = %e, "invalid selector");
                    return Ok(Next::Done);
                }
            };
        let mut job = (*shared).clone();
        let status = job.status.get_or_insert_with(Default::default);
        status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let server_status = tracking::normalized(shared.status.as_ref());

        // Checked before reading the pods: a pod created since is then in what we read.
        let satisfied = self.expectations.satisfied(key);
        let pods = self.pods_for(&job, &selector).await?;
        let active: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| podutil::is_active(p))
            .cloned()
            .collect();
        let uncounted = job
            .status
            .as_ref()
            .and_then(|s| s.uncounted_terminated_pods.clone())
            .unwrap_or_default();
        let now = Timestamp::now();
        let mut cx = SyncCtx {
            key: key.to_string(),
            ready: count(active.iter().filter(|p| podutil::is_ready(p))),
            terminating: count(pods.iter().filter(|p| is_terminating(p))),
            active,
            pods,
            job,
            server_status,
            finished: None,
            succeeded: 0,
            failed: 0,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            failed_indexes: None,
            backoff: backoff::Record::default(),
            expected_rm: self.finalizers.expected(key),
            uncounted_succeeded: uncounted
                .succeeded
                .unwrap_or_default()
                .into_iter()
                .collect(),
            uncounted_failed: uncounted.failed.unwrap_or_default().into_iter().collect(),
            delayed_deletion: HashMap::new(),
            requeue: None,
            now,
        };
        let mut active = count(cx.active.iter());
        let new_succeeded = cx.uncounted_pods(&cx.uncounted_succeeded, |p| {
            podutil::phase(p) == "Succeeded"
        });
        let new_failed = cx.uncounted_pods(&cx.uncounted_failed, |p| is_pod_failed(p, &cx.job));
        let policy = cx
            .job
            .spec
            .as_ref()
            .and_then(|s| s.pod_failure_policy.clone());
        let counted_failures = new_failed
            .iter()
            .filter(|p| policy::judge(policy.as_ref(), p).counts)
            .count();
        let st = cx.status().clone();
        cx.succeeded = st
            .succeeded
            .unwrap_or(0)
            .saturating_add(len_i32(new_succeeded.len() + cx.uncounted_succeeded.len()));
        cx.failed = st
            .failed
            .unwrap_or(0)
            .saturating_add(len_i32(counted_failures + cx.uncounted_failed.len()));
        if st.start_time.is_none() && !is_suspended(&cx.job) {
            cx.status().start_time = Some(Time(now));
        }
        cx.backoff = self.backoff.next(key, &new_succeeded, &new_failed);

        self.decide_outcome(&mut cx);

        let mut manage_err = None;
        let mut suspend_changed = false;
        if cx.finished.is_some() {
            let (deleted_ready, deleted, err) = self.delete_active(&cx.job, &cx.active).await;
            if deleted != active || !satisfied {
                // Pods may be left (or not yet in the cache): not finished yet.
                cx.finished = None;
            }
            active -= deleted;
            cx.terminating += deleted;
            cx.ready -= deleted_ready;
            manage_err = err;
        } else {
            let mut managed = false;
            if satisfied && cx.job.metadata.deletion_timestamp.is_none() {
                let (a, err) = self.manage(&mut cx).await;
                active = a;
                manage_err = err;
                managed = true;
            }
            let complete = match completions(&cx.job) {
                // Work-queue style: the first success ends it, once nothing runs.
                None => cx.succeeded > 0 && active == 0,
                Some(c) => cx.succeeded >= c && active == 0,
            };
            if complete {
                cx.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ));
            } else if managed {
                suspend_changed = self.update_suspended(&mut cx);
            }
        }
        let (ready, terminating) = (cx.ready, cx.terminating);
        let st = cx.status();
        let needs_update = suspend_changed
            || active != st.active.unwrap_or(0)
            || st.ready != Some(ready)
            || st.terminating != Some(terminating);
        st.active = Some(active);
        st.ready = Some(ready);
        st.terminating = Some(terminating);
        self.track(&mut cx, needs_update).await?;
        if let Some(e) = manage_err {
            return Err(e);
        }
        Ok(cx.requeue.map_or(Next::Done, Next::After))
    }

    pub(super) fn lock_written(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Is the cached Job older than the last status this controller wrote for it?
    fn cache_is_stale(&self, key: &str, job: &Job) -> bool {
        let cached = job
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        let mut w = self.lock_written();
        match (w.get(key), cached) {
            (Some(written), Some(cached)) if cached < *written => true,
            _ => {
                w.remove(key);
                false
            }
        }
    }

    /// The failure or success conditions the Job has earned, in upstream's order: an
    /// earlier verdict (SuccessCriteriaMet, FailureTarget), a FailJob rule, the back-off
    /// limit, the deadline, the per-index limits, the success policy.
    fn decide_outcome(&self, cx: &mut SyncCtx) {
        let now = cx.now;
        let job = &cx.job;
        cx.finished = find_condition(job, "SuccessCriteriaMet")
            .filter(|c| c.status == "True")
            .cloned();
        if cx.finished.is_none() {
            if let Some(target) =
                find_condition(job, "FailureTarget").filter(|c| c.status == "True")
            {
                let reason = target.reason.clone().unwrap_or_default();
                let message = target.message.clone().unwrap_or_default();
                cx.finished = Some(new_condition("Failed", &reason, &message, now));
            } else if let Some(msg) = self.fail_job_message(cx) {
                cx.finished = Some(new_condition(
                    "FailureTarget",
                    "PodFailurePolicy",
                    &msg,
                    now,
                ));
            }
        }
        let backoff_limit = cx.spec_int(|s| s.backoff_limit).unwrap_or(6);
        if cx.finished.is_none() {
            if cx.failed > backoff_limit || past_backoff_limit_on_failure(&cx.job, &cx.pods) {
                cx.finished = Some(new_condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ));
            } else if let Some(left) = deadline_left(&cx.job, now) {
                if left.is_zero() {
                    cx.finished = Some(new_condition(
                        "FailureTarget",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                        now,
                    ));
                } else {
                    cx.requeue_after(left);
                }
            }
        }
        if is_indexed(&cx.job) {
            let completions = completions(&cx.job).unwrap_or(0);
            let prev = Intervals::parse(
                cx.job
                    .status
                    .as_ref()
                    .and_then(|s| s.completed_indexes.as_deref())
                    .unwrap_or(""),
                completions,
            );
            let new: Vec<i32> = indexes::set_of(cx.pods.iter().filter(|p| {
                podutil::phase(p) == "Succeeded"
                    && has_finalizer(p)
                    && indexes::valid(p, completions).is_some()
            }));
            cx.succeeded_indexes = prev.with_indexes(&new);
            cx.prev_succeeded_indexes = prev;
            cx.succeeded = cx.succeeded_indexes.total();
            if per_index_limit(&cx.job).is_some() {
                let failed = indexed::failed_indexes(&cx.job, &cx.pods);
                if cx.finished.is_none() {
                    let max = cx.spec_int(|s| s.max_failed_indexes);
                    if max.is_some_and(|m| failed.total() > m) {
                        cx.finished = Some(new_condition(
                            "FailureTarget",
                            "MaxFailedIndexesExceeded",
                            "Job has exceeded the specified maximal number of failed indexes",
                            now,
                        ));
                    } else if failed.total() > 0
                        && failed.total().saturating_add(cx.succeeded_indexes.total())
                            >= completions
                    {
                        cx.finished = Some(new_condition(
                            "FailureTarget",
                            "FailedIndexes",
                            "Job has failed indexes",
                            now,
                        ));
                    }
                }
                cx.failed_indexes = Some(failed);
                cx.delayed_deletion = indexed::delayed_deletion(cx);
            }
            if cx.finished.is_none() {
                let sp = cx.job.spec.as_ref().and_then(|s| s.success_policy.as_ref());
                if let Some(msg) = policy::success(sp, completions, &cx.succeeded_indexes) {
                    cx.finished = Some(new_condition(
                        "SuccessCriteriaMet",
                        "SuccessPolicy",
                        &msg,
                        now,
                    ));
                }
            }
        }
    }

    /// Upstream `getFailJobMessage`: the message of the first failed pod a FailJob rule
    /// matches.
    fn fail_job_message(&self, cx: &SyncCtx) -> Option<String> {
        let policy = cx.job.spec.as_ref()?.pod_failure_policy.as_ref()?;
        cx.pods
            .iter()
            .filter(|p| is_pod_failed(p, &cx.job))
            .find_map(|p| policy::judge(Some(policy), p).fail_job)
    }

    /// Suspended / resumed bookkeeping after a sync that managed pods.
    fn update_suspended(&self, cx: &mut SyncCtx) -> bool {
        let now = cx.now;
        let suspended = is_suspended(&cx.job);
        let conds = cx.status().conditions.get_or_insert_with(Vec::new);
        let changed = if suspended {
            ensure_condition(
                conds,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            )
        } else {
            ensure_condition(
                conds,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                now,
            )
        };
        if changed {
            if suspended {
                self.ctx
                    .events
                    .normal(COMPONENT, &cx.job, "Suspended", "Job suspended".into());
            } else {
                self.ctx
                    .events
                    .normal(COMPONENT, &cx.job, "Resumed", "Job resumed".into());
                // activeDeadlineSeconds counts continuous activity: it starts over.
                cx.status().start_time = Some(Time(now));
            }
        }
        changed
    }
}

/// Upstream `pastBackoffLimitOnFailure`: with restartPolicy OnFailure failures are
/// restarts, summed over the running and pending pods.
pub(super) fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let spec = job.spec.as_ref();
    let policy = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(podutil::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .fold(0, i32::saturating_add);
    match spec.and_then(|s| s.backoff_limit).unwrap_or(6) {
        0 => restarts > 0,
        limit => restarts >= limit,
    }
}

/// Time left before `activeDeadlineSeconds` runs out (zero once it has), if it applies
/// (set, started, not suspended).
pub(super) fn deadline_left(job: &Job, now: Timestamp) -> Option<Duration> {
    let secs = job.spec.as_ref()?.active_deadline_seconds?;
    let start = job.status.as_ref()?.start_time.as_ref()?.0;
    if is_suspended(job) {
        return None;
    }
    let deadline = start + jiff::SignedDuration::from_secs(secs);
    Some(Duration::try_from(now.duration_until(deadline)).unwrap_or(Duration::ZERO))
}
