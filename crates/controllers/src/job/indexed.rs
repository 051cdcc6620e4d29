//! Decisions only Indexed Jobs make: which indexes still need a pod, and
//! `backoffLimitPerIndex` (upstream `indexed_job_utils.go`): an index fails once a pod of it
//! fails with `backoffLimitPerIndex` failures before it (or a FailIndex rule matches), and
//! each index backs off on its own. The failure count travels from a failed pod to its
//! replacement in annotations, so the failed pod is kept until the replacement exists.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

use super::indexes::{self, Intervals};
use super::policy::{self, Action};
use super::sync::SyncCtx;
use super::{
    backoff, completions, has_finalizer, is_pod_failed, is_terminating, only_replace_failed,
};

fn failure_policy(job: &Job) -> Option<&k8s_openapi::api::batch::v1::PodFailurePolicy> {
    job.spec.as_ref()?.pod_failure_policy.as_ref()
}

/// Upstream `isIndexFailed`.
fn is_index_failed(job: &Job, pod: &Pod, limit: i32) -> bool {
    if !is_pod_failed(pod, job) {
        return false;
    }
    let v = policy::judge(failure_policy(job), pod);
    v.action == Some(Action::FailIndex) || (v.counts && indexes::failure_count(pod) >= limit)
}

/// Upstream `calculateFailedIndexes`: `status.failedIndexes` plus the indexes whose
/// uncounted pods failed them.
pub fn failed_indexes(job: &Job, pods: &[Arc<Pod>]) -> Intervals {
    let completions = completions(job).unwrap_or(0);
    let limit = job
        .spec
        .as_ref()
        .and_then(|s| s.backoff_limit_per_index)
        .unwrap_or(0);
    let prev = Intervals::parse(
        job.status
            .as_ref()
            .and_then(|s| s.failed_indexes.as_deref())
            .unwrap_or(""),
        completions,
    );
    let new = indexes::set_of(pods.iter().filter(|p| {
        indexes::valid(p, completions).is_some()
            && has_finalizer(p)
            && is_index_failed(job, p, limit)
    }));
    prev.with_indexes(&new)
}

/// Upstream `getPodsWithDelayedDeletionPerIndex`: per index that is neither done, failed
/// nor running, its latest failed pod (the most failures, then the latest finish).
pub fn delayed_deletion(cx: &SyncCtx) -> HashMap<i32, Arc<Pod>> {
    let completions = completions(&cx.job).unwrap_or(0);
    let active: HashSet<i32> = indexes::set_of(cx.active.iter()).into_iter().collect();
    let mut out: HashMap<i32, Arc<Pod>> = HashMap::new();
    for p in cx.uncounted_pods(&HashSet::new(), |p| is_pod_failed(p, &cx.job)) {
        let Some(ix) = indexes::valid(&p, completions) else {
            continue;
        };
        if cx.succeeded_indexes.has(ix)
            || cx.failed_indexes.as_ref().is_some_and(|f| f.has(ix))
            || active.contains(&ix)
        {
            continue;
        }
        let newer = out.get(&ix).is_none_or(|last| {
            indexes::absolute_failure_count(last) <= indexes::absolute_failure_count(&p)
                && backoff::finished_at(&p) >= backoff::finished_at(last)
        });
        if newer {
            out.insert(ix, p);
        }
    }
    out
}

/// Upstream `firstPendingIndexes`: the first `count` indexes not succeeded, running, failed
/// or (when only failed pods are replaced) still terminating.
pub fn first_pending_indexes(cx: &SyncCtx, count: usize) -> Vec<i32> {
    if count == 0 {
        return Vec::new();
    }
    let completions = completions(&cx.job).unwrap_or(0);
    let mut busy = cx
        .succeeded_indexes
        .with_indexes(&indexes::set_of(cx.active.iter()));
    if only_replace_failed(&cx.job) {
        busy = busy.with_indexes(&indexes::set_of(
            cx.pods.iter().filter(|p| is_terminating(p)),
        ));
    }
    if let Some(failed) = &cx.failed_indexes {
        busy = busy.merge(failed);
    }
    busy.first_missing(count, completions)
}

/// Upstream `getPodCreationInfoForIndependentIndexes`: the indexes whose own back-off is
/// over; if none, how long until the first is.
pub fn ready_to_create(cx: &SyncCtx, wanted: &[i32]) -> (Vec<i32>, Option<Duration>) {
    let mut now_ok = Vec::new();
    let mut wait: Option<Duration> = None;
    for &ix in wanted {
        let left = cx.delayed_deletion.get(&ix).map_or(Duration::ZERO, |p| {
            backoff::remaining(
                indexes::absolute_failure_count(p).saturating_add(1),
                Some(backoff::finished_at(p)),
                cx.now,
            )
        });
        if left.is_zero() {
            now_ok.push(ix);
        } else {
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
    }
    if now_ok.is_empty() {
        (now_ok, wait)
    } else {
        (now_ok, None)
    }
}

/// Upstream `getNewIndexFailureCounts`: the (failure, ignored failure) counts of the pod
/// replacing `replaced` in its index.
pub fn inherited_failure_counts(job: &Job, replaced: Option<&Arc<Pod>>) -> (i32, i32) {
    let Some(p) = replaced else {
        return (0, 0);
    };
    let (failed, ignored) = (indexes::failure_count(p), indexes::ignored_failure_count(p));
    if policy::judge(failure_policy(job), p).counts {
        (failed.saturating_add(1), ignored)
    } else {
        (failed, ignored.saturating_add(1))
    }
}
