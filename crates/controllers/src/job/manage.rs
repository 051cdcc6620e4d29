//! Creating and deleting a Job's pods (upstream `manageJob`, `deleteJobPods`,
//! `deleteActivePods`).

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};

use super::sync::SyncCtx;
use super::{
    COMPONENT, Controller, Error, MAX_POD_CHANGES_PER_SYNC, SYNC_BATCH_PERIOD, completions, count,
    indexed, is_indexed, is_suspended, only_replace_failed, per_index_limit, pods,
    remove_finalizer,
};
use crate::podutil;
use crate::replicaset::{api_message, slow_start};

impl Controller {
    /// Upstream `manageJob`: delete surplus pods or create missing ones (after the
    /// back-off). Returns the active count that results.
    pub(super) async fn manage(&self, cx: &mut SyncCtx) -> (i32, Option<Error>) {
        let mut active = count(cx.active.iter());
        let key = cx.key.clone();
        if is_suspended(&cx.job) {
            let victims = pods::for_removal(&cx.job, &cx.active, cx.active.len());
            let (ready, removed, err) = self.delete_pods(&cx.job, &key, &victims).await;
            cx.terminating += removed;
            cx.ready -= ready;
            return (active - removed, err);
        }
        let parallelism = cx.spec_int(|s| s.parallelism).unwrap_or(1).max(0);
        let want = match completions(&cx.job) {
            // Without completions, once one pod succeeded the rest are left to finish.
            None if cx.succeeded > 0 => active,
            None => parallelism,
            Some(c) => (c - cx.succeeded).min(parallelism).max(0),
        };
        let rm_at_least = usize::try_from(active - want).unwrap_or(0);
        let mut victims = pods::for_removal(&cx.job, &cx.active, rm_at_least);
        victims.truncate(MAX_POD_CHANGES_PER_SYNC);
        if !victims.is_empty() {
            // Deletions and creations never share a sync; deletions go first.
            let (ready, removed, err) = self.delete_pods(&cx.job, &key, &victims).await;
            cx.terminating += removed;
            cx.ready -= ready;
            return (active - removed, err);
        }
        let terminating = if only_replace_failed(&cx.job) {
            cx.terminating
        } else {
            0
        };
        let diff = want - terminating - active;
        if diff <= 0 {
            return (active, None);
        }
        let per_index = per_index_limit(&cx.job).is_some();
        if !per_index {
            let left = cx.backoff.remaining(cx.now);
            if !left.is_zero() {
                cx.requeue_after(left.max(SYNC_BATCH_PERIOD));
                return (active, None);
            }
        }
        let mut n = usize::try_from(diff)
            .unwrap_or(0)
            .min(MAX_POD_CHANGES_PER_SYNC);
        let mut to_index: Vec<i32> = Vec::new();
        if is_indexed(&cx.job) {
            to_index = indexed::first_pending_indexes(cx, n);
            if per_index {
                let (now_ok, wait) = indexed::ready_to_create(cx, &to_index);
                if now_ok.is_empty() {
                    if let Some(w) = wait {
                        cx.requeue_after(w.max(SYNC_BATCH_PERIOD));
                    }
                    return (active, None);
                }
                to_index = now_ok;
            }
            n = to_index.len();
        }
        if n == 0 {
            return (active, None);
        }
        self.expectations.expect_creations(&key, n);
        let template = pods::base_template(&cx.job);
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &cx.job.namespace().unwrap_or_default(),
        );
        let job = &cx.job;
        let delayed = &cx.delayed_deletion;
        let created = slow_start(n, |i| {
            let index = to_index.get(i).copied();
            let counts = index
                .filter(|_| per_index)
                .map(|ix| indexed::inherited_failure_counts(job, delayed.get(&ix)));
            let pod = pods::pod_for(job, &template, index, counts);
            let api = api.clone();
            async move { api.create(&PostParams::default(), &pod).await }
        })
        .await;
        let mut first_err = None;
        for r in created.results {
            match r {
                Ok(p) => {
                    active += 1;
                    self.ctx.events.normal(
                        COMPONENT,
                        job,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    );
                }
                Err(e) => {
                    self.expectations.creation_observed(&key);
                    self.ctx.events.warning(
                        COMPONENT,
                        job,
                        "FailedCreate",
                        format!("Error creating: {}", api_message(&e)),
                    );
                    first_err.get_or_insert(e);
                }
            }
        }
        for _ in 0..created.skipped {
            self.expectations.creation_observed(&key);
        }
        (active, first_err.map(Error::CreatePods))
    }

    /// Upstream `deleteJobPods`: each pod loses its finalizer (it will not be counted) and
    /// is deleted. Returns (ready pods deleted, pods deleted, first error).
    async fn delete_pods(
        &self,
        job: &Job,
        key: &str,
        victims: &[Arc<Pod>],
    ) -> (i32, i32, Option<Error>) {
        self.expectations
            .expect_deletions(key, victims.iter().map(|p| p.name_any()));
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &job.namespace().unwrap_or_default(),
        );
        let results = futures::future::join_all(victims.iter().map(|p| {
            let api = api.clone();
            async move {
                let name = p.name_any();
                let r = match remove_finalizer(&api, p).await {
                    Ok(()) => api
                        .delete(&name, &DeleteParams::default())
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                };
                (p, name, r)
            }
        }))
        .await;
        self.tally_deletes(job, results, |name| {
            self.expectations.deletion_observed(key, name)
        })
    }

    /// Upstream `deleteActivePods`, for a Job that is done: the pods keep their finalizers
    /// so their ends are still counted.
    pub(super) async fn delete_active(
        &self,
        job: &Job,
        active: &[Arc<Pod>],
    ) -> (i32, i32, Option<Error>) {
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            &job.namespace().unwrap_or_default(),
        );
        let results = futures::future::join_all(active.iter().map(|p| {
            let api = api.clone();
            async move {
                let name = p.name_any();
                let r = api
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ());
                (p, name, r)
            }
        }))
        .await;
        self.tally_deletes(job, results, |_| {})
    }

    fn tally_deletes(
        &self,
        job: &Job,
        results: Vec<(&Arc<Pod>, String, Result<(), kube::Error>)>,
        failed: impl Fn(&str),
    ) -> (i32, i32, Option<Error>) {
        let (mut ready, mut deleted, mut first_err) = (0, 0, None);
        for (pod, name, r) in results {
            match r {
                Ok(()) => {
                    deleted += 1;
                    self.ctx.events.normal(
                        COMPONENT,
                        job,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                }
                // Gone already: as good as deleted.
                Err(e) if crate::is_not_found(&e) => {
                    failed(&name);
                    deleted += 1;
                }
                Err(e) => {
                    failed(&name);
                    self.ctx.events.warning(
                        COMPONENT,
                        job,
                        "FailedDelete",
                        format!("Error deleting: {}", api_message(&e)),
                    );
                    first_err.get_or_insert(e);
                    continue;
                }
            }
            if podutil::is_ready(pod) {
                ready += 1;
            }
        }
        (ready, deleted, first_err.map(Error::DeletePods))
    }
}
