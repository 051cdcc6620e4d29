//! Counting a Job's finished pods exactly once (upstream
//! `trackJobStatusAndRemoveFinalizers`). A finished pod still holding the tracking
//! finalizer is first written into `status.uncountedTerminatedPods`; then its finalizer
//! comes off; then, in a later write, it moves from the uncounted list into
//! `succeeded`/`failed` (an Indexed Job's successes go to `completedIndexes` at once, the
//! index being the identity). A crash between any two steps repeats no count and loses
//! none. The terminal condition is added only once nothing is uncounted and no pod is
//! terminating.
//!
//! Status writes are merge patches pinned to the resourceVersion the sync started from,
//! as upstream's `UpdateStatus`: a sync that read a stale Job fails with a conflict and
//! runs again.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

use super::sync::SyncCtx;
use super::{
    COMPONENT, Controller, Error, completions, condition_is_true, ensure_condition, has_finalizer,
    indexes, is_indexed, is_pod_failed, len_i32, new_condition, per_index_limit, policy,
    remove_finalizer,
};
use crate::podutil;

/// Upstream `MaxUncountedPods`: keeps `uncountedTerminatedPods` around 20 KB and a big Job
/// from holding a worker for long; the rest is counted in the next sync.
const MAX_UNCOUNTED_PODS: usize = 500;
/// Finalizer removals in flight at once for one Job.
const REMOVALS_IN_FLIGHT: usize = 64;

impl Controller {
    /// Counts finished pods, removes their finalizers, records the outcome; writes the
    /// status when anything changed (or `needs_flush`).
    pub(super) async fn track(&self, cx: &mut SyncCtx, mut needs_flush: bool) -> Result<(), Error> {
        let indexed = is_indexed(&cx.job);
        let completions = completions(&cx.job).unwrap_or(0);
        if indexed {
            // Completed indexes are then added in order.
            cx.pods.sort_by_key(|p| indexes::of(p).unwrap_or(-1));
        }
        let mut with_finalizer: HashSet<String> = cx
            .pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter_map(|p| p.uid())
            .filter(|u| !cx.expected_rm.contains(u))
            .collect();
        if clean_uncounted(cx.status(), &with_finalizer) {
            needs_flush = true;
        }
        let failure_policy = cx
            .job
            .spec
            .as_ref()
            .and_then(|s| s.pod_failure_policy.clone());
        // When the Job has failed, every pod not succeeded counts as failed.
        let failing = cx
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ != "SuccessCriteriaMet");
        let mut to_rm: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes: Vec<i32> = Vec::new();
        let mut reached_max = false;
        let pods = cx.pods.clone();
        for pod in &pods {
            let uid = pod.uid().unwrap_or_default();
            if !has_finalizer(pod) || cx.expected_rm.contains(&uid) {
                // Counted in an earlier sync.
                continue;
            }
            let failed = is_pod_failed(pod, &cx.job);
            if !can_remove_finalizer(cx, pod, failed) {
                continue;
            }
            to_rm.push(pod.clone());
            let valid_index = indexes::valid(pod, completions);
            if podutil::phase(pod) == "Succeeded" && !cx.uncounted_failed.contains(&uid) {
                if indexed {
                    if let Some(ix) = valid_index.filter(|ix| !cx.prev_succeeded_indexes.has(*ix)) {
                        new_indexes.push(ix);
                        needs_flush = true;
                    }
                } else if !cx.uncounted_succeeded.contains(&uid) {
                    needs_flush = true;
                    uncounted(cx.status()).0.push(uid.clone());
                }
            } else if (failed || failing)
                && !cx.uncounted_failed.contains(&uid)
                && (!indexed || valid_index.is_some())
                && policy::judge(failure_policy.as_ref(), pod).counts
            {
                needs_flush = true;
                uncounted(cx.status()).1.push(uid.clone());
            }
            let (s, f) = uncounted(cx.status());
            if new_indexes.len() + s.len() + f.len() >= MAX_UNCOUNTED_PODS {
                reached_max = true;
                break;
            }
        }
        tidy_uncounted(cx.status());
        if indexed {
            cx.succeeded_indexes = cx.succeeded_indexes.with_indexes(&new_indexes);
            let done = cx.succeeded_indexes.to_string();
            let total = cx.succeeded_indexes.total();
            let failed = cx.failed_indexes.as_ref().map(ToString::to_string);
            let st = cx.status();
            if st.completed_indexes.as_deref().unwrap_or("") != done {
                needs_flush = true;
            }
            st.succeeded = Some(total);
            st.completed_indexes = Some(done);
            if st.failed_indexes != failed {
                st.failed_indexes = failed;
                needs_flush = true;
            }
        }
        // The interim condition is written before finalizers come off, so the outcome
        // survives a crash; the terminal one follows once everything is counted.
        if let Some(f) = cx.finished.clone() {
            let reason = f.reason.clone().unwrap_or_default();
            let message = f.message.clone().unwrap_or_default();
            let terminal = match f.type_.as_str() {
                "FailureTarget" => {
                    cx.status().conditions.get_or_insert_with(Vec::new).push(f);
                    needs_flush = true;
                    Some("Failed")
                }
                "SuccessCriteriaMet" => {
                    if !condition_is_true(&cx.job, "SuccessCriteriaMet") {
                        cx.status().conditions.get_or_insert_with(Vec::new).push(f);
                        needs_flush = true;
                    }
                    Some("Complete")
                }
                _ => None,
            };
            if let Some(t) = terminal {
                cx.finished = Some(new_condition(t, &reason, &message, cx.now));
            }
        }
        needs_flush = self
            .flush(cx, &to_rm, &mut with_finalizer, needs_flush)
            .await?;
        let finished = !reached_max && enact_finished(cx);
        if finished || needs_flush {
            self.write_status(cx).await?;
            if finished {
                self.record_finished(cx);
            }
        }
        Ok(())
    }

    /// Upstream `flushUncountedAndRemoveFinalizers`: write the status (new uncounted pods,
    /// interim conditions), remove the finalizers, then move the pods whose finalizer is gone
    /// from the uncounted lists to the counters. Returns whether that move still needs
    /// writing.
    async fn flush(
        &self,
        cx: &mut SyncCtx,
        to_rm: &[Arc<Pod>],
        with_finalizer: &mut HashSet<String>,
        mut needs_flush: bool,
    ) -> Result<bool, Error> {
        if needs_flush {
            self.write_status(cx).await?;
            self.backoff.update(&cx.key, cx.backoff.clone());
            needs_flush = false;
        }
        let mut rm_err = None;
        if !to_rm.is_empty() {
            let (removed, err) = self.remove_finalizers(&cx.key, &cx.job, to_rm).await;
            for uid in removed {
                with_finalizer.remove(&uid);
            }
            rm_err = err;
        }
        if clean_uncounted(cx.status(), with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = rm_err {
            // Keep what did work.
            if needs_flush {
                self.write_status(cx).await?;
            }
            return Err(e);
        }
        Ok(needs_flush)
    }

    /// Removes the tracking finalizer from `pods`. Returns the UIDs it is gone from (a pod
    /// gone altogether counts) and the first error.
    async fn remove_finalizers(
        &self,
        key: &str,
        job: &Job,
        pods: &[Arc<Pod>],
    ) -> (Vec<String>, Option<Error>) {
        self.finalizers
            .expect(key, pods.iter().filter_map(|p| p.uid()));
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &job.namespace().unwrap_or_default(),
        );
        let results: Vec<(String, Result<(), kube::Error>)> =
            futures::stream::iter(pods.iter().cloned())
                .map(|p| {
                    let api = api.clone();
                    async move {
                        (
                            p.uid().unwrap_or_default(),
                            remove_finalizer(&api, &p).await,
                        )
                    }
                })
                .buffer_unordered(REMOVALS_IN_FLIGHT)
                .collect()
                .await;
        let mut removed = Vec::new();
        let mut first_err = None;
        for (uid, r) in results {
            match r {
                Ok(()) => removed.push(uid),
                Err(e) => {
                    // No update will show this removal.
                    self.finalizers.observed(key, &uid);
                    first_err.get_or_insert(Error::RemoveFinalizers(e));
                }
            }
        }
        (removed, first_err)
    }

    /// Writes the working status as a merge patch of what changed, pinned to the Job's
    /// resourceVersion.
    async fn write_status(&self, cx: &mut SyncCtx) -> Result<(), Error> {
        let new = normalized(cx.job.status.as_ref());
        let diff = merge_diff(&cx.server_status, &new);
        if diff.as_object().is_some_and(Map::is_empty) {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"resourceVersion": cx.job.metadata.resource_version},
            "status": diff,
        });
        let api: Api<Job> = Api::namespaced(
            self.ctx.client.clone(),
            &cx.job.namespace().unwrap_or_default(),
        );
        let written = api
            .patch_status(
                &cx.job.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
            .map_err(Error::UpdateStatus)?;
        if let Some(rv) = written
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.lock_written().insert(cx.key.clone(), rv);
        }
        cx.server_status = normalized(written.status.as_ref());
        cx.job.metadata = written.metadata;
        Ok(())
    }

    /// Upstream `recordJobFinished`: the events of a Job that just finished.
    fn record_finished(&self, cx: &SyncCtx) {
        let Some(f) = &cx.finished else {
            return;
        };
        let job = &cx.job;
        if f.type_ == "Complete" {
            let succeeded = job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
            if completions(job).is_some_and(|c| succeeded > c) {
                self.ctx.events.warning(
                    COMPONENT,
                    job,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached".into(),
                );
            }
            self.ctx
                .events
                .normal(COMPONENT, job, "Completed", "Job completed".into());
        } else {
            let reason = failure_reason(f.reason.as_deref().unwrap_or(""));
            let message = f.message.clone().unwrap_or_default();
            self.ctx.events.warning(COMPONENT, job, reason, message);
        }
    }
}

/// The event reason for a failure: the condition's reason (events take static reasons).
fn failure_reason(reason: &str) -> &'static str {
    match reason {
        "BackoffLimitExceeded" => "BackoffLimitExceeded",
        "DeadlineExceeded" => "DeadlineExceeded",
        "PodFailurePolicy" => "PodFailurePolicy",
        "MaxFailedIndexesExceeded" => "MaxFailedIndexesExceeded",
        "FailedIndexes" => "FailedIndexes",
        _ => "Failed",
    }
}

/// Upstream `canRemoveFinalizer`: a pod is done with once the Job is deleted or decided,
/// the pod succeeded, or it failed — unless it must wait for its index's replacement.
pub(super) fn can_remove_finalizer(cx: &SyncCtx, pod: &Pod, failed: bool) -> bool {
    if cx.job.metadata.deletion_timestamp.is_some()
        || cx.finished.is_some()
        || podutil::phase(pod) == "Succeeded"
    {
        return true;
    }
    if !failed {
        return false;
    }
    if per_index_limit(&cx.job).is_some()
        && let Some(ix) = indexes::of(pod)
        && cx
            .delayed_deletion
            .get(&ix)
            .is_some_and(|kept| kept.metadata.uid == pod.metadata.uid)
    {
        return false;
    }
    true
}

/// Upstream `enactJobFinished`: the terminal condition (and `completionTime`), once no pod
/// is uncounted or terminating.
fn enact_finished(cx: &mut SyncCtx) -> bool {
    let Some(f) = cx.finished.clone() else {
        return false;
    };
    let (s, fl) = uncounted(cx.status());
    if !s.is_empty() || !fl.is_empty() {
        return false;
    }
    tidy_uncounted(cx.status());
    if cx.terminating > 0 {
        return false;
    }
    let now = cx.now;
    let st = cx.status();
    ensure_condition(
        st.conditions.get_or_insert_with(Vec::new),
        &f.type_,
        "True",
        f.reason.as_deref().unwrap_or(""),
        f.message.as_deref().unwrap_or(""),
        now,
    );
    if f.type_ == "Complete" {
        st.completion_time = f.last_transition_time.clone();
    }
    true
}

/// The uncounted (succeeded, failed) UID lists, created empty if missing.
fn uncounted(st: &mut JobStatus) -> (&mut Vec<String>, &mut Vec<String>) {
    let u = st
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    (
        u.succeeded.get_or_insert_with(Vec::new),
        u.failed.get_or_insert_with(Vec::new),
    )
}

/// Empty lists are left out, as upstream serializes them.
fn tidy_uncounted(st: &mut JobStatus) {
    let u = st
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    if u.succeeded.as_ref().is_some_and(Vec::is_empty) {
        u.succeeded = None;
    }
    if u.failed.as_ref().is_some_and(Vec::is_empty) {
        u.failed = None;
    }
}

/// Upstream `cleanUncountedPodsWithoutFinalizers`: uncounted pods whose finalizer is gone
/// move to the counters. Returns whether anything moved.
fn clean_uncounted(st: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let (s, f) = uncounted(st);
    let (s0, f0) = (s.len(), f.len());
    s.retain(|u| with_finalizer.contains(u));
    f.retain(|u| with_finalizer.contains(u));
    let (moved_s, moved_f) = (s0 - s.len(), f0 - f.len());
    tidy_uncounted(st);
    if moved_s > 0 {
        st.succeeded = Some(st.succeeded.unwrap_or(0).saturating_add(len_i32(moved_s)));
    }
    if moved_f > 0 {
        st.failed = Some(st.failed.unwrap_or(0).saturating_add(len_i32(moved_f)));
    }
    moved_s + moved_f > 0
}

/// The status as upstream serializes it: zero counters and empty strings and lists left
/// out (`omitempty`), `ready`/`terminating` kept (pointers), `uncountedTerminatedPods`
/// present once the controller synced the Job.
pub fn normalized(status: Option<&JobStatus>) -> Value {
    let mut v = status
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| json!({}));
    if let Some(m) = v.as_object_mut() {
        for k in ["active", "succeeded", "failed"] {
            if m.get(k) == Some(&json!(0)) {
                m.remove(k);
            }
        }
        if m.get("completedIndexes") == Some(&json!("")) {
            m.remove("completedIndexes");
        }
        if m.get("conditions") == Some(&json!([])) {
            m.remove("conditions");
        }
        if let Some(u) = m
            .get_mut("uncountedTerminatedPods")
            .and_then(Value::as_object_mut)
        {
            u.retain(|_, list| list != &json!([]));
        }
    }
    v
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: changed keys, nested
/// objects diffed, removed keys set to null.
fn merge_diff(old: &Value, new: &Value) -> Value {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return new.clone();
    };
    let mut out = Map::new();
    for (k, nv) in n {
        match o.get(k) {
            Some(ov) if ov == nv => {}
            Some(ov) if ov.is_object() && nv.is_object() => {
                let d = merge_diff(ov, nv);
                if !d.as_object().is_some_and(Map::is_empty) {
                    out.insert(k.clone(), d);
                }
            }
            _ => {
                out.insert(k.clone(), nv.clone());
            }
        }
    }
    for k in o.keys() {
        if !n.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::UncountedTerminatedPods;

    #[test]
    fn merge_diff_nulls_what_went_and_recurses_into_objects() {
        let old = json!({"active": 2, "uncountedTerminatedPods": {"succeeded": ["a"]}, "ready": 1});
        let new = json!({"uncountedTerminatedPods": {}, "ready": 1, "succeeded": 1});
        assert_eq!(
            merge_diff(&old, &new),
            json!({"active": null, "uncountedTerminatedPods": {"succeeded": null}, "succeeded": 1})
        );
        assert_eq!(merge_diff(&new, &new), json!({}));
    }

    #[test]
    fn counters_move_only_once_the_finalizer_is_gone() {
        let mut st = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let with: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut st, &with));
        assert_eq!((st.succeeded, st.failed), (Some(2), Some(1)));
        let u = st.uncounted_terminated_pods.clone().unwrap_or_default();
        assert_eq!(u.succeeded, Some(vec!["b".to_string()]));
        assert_eq!(u.failed, None);
        assert!(!clean_uncounted(&mut st, &with));
    }

    #[test]
    fn normalized_status_matches_upstream_serialization() {
        let st = JobStatus {
            active: Some(0),
            ready: Some(0),
            terminating: Some(0),
            succeeded: Some(3),
            completed_indexes: Some(String::new()),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec![]),
                failed: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            normalized(Some(&st)),
            json!({"ready": 0, "terminating": 0, "succeeded": 3, "uncountedTerminatedPods": {}})
        );
    }
}
