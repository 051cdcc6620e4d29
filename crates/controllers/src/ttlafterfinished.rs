//! TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`): deletes a
//! Job `spec.ttlSecondsAfterFinished` seconds after it finished (the `lastTransitionTime`
//! of its `Complete` or `Failed` condition), with its pods.
//!
//! The cache may hold a stale TTL (the user just raised it), so before deleting, the Job
//! is read again from the API server and judged anew; the delete is conditional on that
//! Job's uid, so a Job recreated meanwhile under the same name is never taken for it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, key_of, split_key};

pub const NAME: &str = "ttl-after-finished";

/// Upstream deletes in the foreground: the Job stays (with a deletionTimestamp) until the
/// garbage collector removed its pods.
const PROPAGATION: PropagationPolicy = PropagationPolicy::Foreground;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("job {0} is finished but its condition has no lastTransitionTime")]
    NoFinishTime(String),
    #[error("reading the job")]
    GetJob(#[source] kube::Error),
    #[error("deleting the job")]
    DeleteJob(#[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    jobs: Arc<Informer<Job>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let jobs = ctx.informers.get::<Job>();
    let queue: Queue<String> = Queue::new();
    jobs.on_change({
        let q = queue.clone();
        move |ch| match ch {
            Change::Added(job) | Change::Updated { new: job, .. } => {
                if job.metadata.deletion_timestamp.is_none() && needs_cleanup(job) {
                    q.add(key_of(job.as_ref()));
                }
            }
            Change::Deleted(_) => {}
        }
    });
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        jobs: jobs.clone(),
    });
    Box::pin(async move {
        jobs.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

/// Has a TTL and has finished.
fn needs_cleanup(job: &Job) -> bool {
    job.spec
        .as_ref()
        .is_some_and(|s| s.ttl_seconds_after_finished.is_some())
        && crate::job::is_finished(job)
}

/// Where a Job stands with its TTL.
#[derive(Debug, PartialEq, Eq)]
enum Ttl {
    /// No TTL, not finished, or already being deleted.
    NotApplicable,
    Expires(Duration),
    Expired,
}

/// Upstream `processTTL` / `timeLeft` at `now`.
fn ttl(job: &Job, now: Timestamp) -> Result<Ttl, Error> {
    if job.metadata.deletion_timestamp.is_some() || !needs_cleanup(job) {
        return Ok(Ttl::NotApplicable);
    }
    let secs = job
        .spec
        .as_ref()
        .and_then(|s| s.ttl_seconds_after_finished)
        .unwrap_or(0);
    let finished_at = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .ok_or_else(|| Error::NoFinishTime(key_of(job)))?;
    if finished_at > now {
        tracing::warn!(
            ns = ?job.metadata.namespace,
            name = %job.name_any(),
            "job finished in the future (clock skew?); its cleanup waits"
        );
    }
    let expires = finished_at + jiff::SignedDuration::from_secs(i64::from(secs));
    match Duration::try_from(now.duration_until(expires)) {
        Ok(left) if !left.is_zero() => Ok(Ttl::Expires(left)),
        _ => Ok(Ttl::Expired),
    }
}

impl Controller {
    /// Upstream `processJob`.
    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.get(ns, name) else {
            return Ok(Next::Done);
        };
        match ttl(&job, Timestamp::now())? {
            Ttl::NotApplicable => return Ok(Next::Done),
            Ttl::Expires(left) => return Ok(Next::After(left)),
            Ttl::Expired => {}
        }
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        let fresh = match api.get(name).await {
            Ok(j) => j,
            Err(e) if crate::is_not_found(&e) => return Ok(Next::Done),
            Err(e) => return Err(Error::GetJob(e)),
        };
        match ttl(&fresh, Timestamp::now())? {
            Ttl::NotApplicable => return Ok(Next::Done),
            Ttl::Expires(left) => return Ok(Next::After(left)),
            Ttl::Expired => {}
        }
        let params = DeleteParams {
            propagation_policy: Some(PROPAGATION),
            preconditions: Some(Preconditions {
                uid: fresh.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        tracing::debug!(ns, name, "deleting a finished job whose TTL expired");
        match api.delete(name, &params).await {
            Ok(_) => Ok(Next::Done),
            // Gone, or replaced by a new Job of that name (precondition failed).
            Err(e) if crate::is_not_found(&e) || crate::is_conflict(&e) => Ok(Next::Done),
            Err(e) => Err(Error::DeleteJob(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("timestamp")
    }

    fn job(ttl: Option<i32>, condition: Option<(&str, &str)>) -> Job {
        Job {
            metadata: Default::default(),
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: condition.map(|(type_, status)| {
                    vec![JobCondition {
                        type_: type_.into(),
                        status: status.into(),
                        last_transition_time: Some(Time(t(0))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_ttl_runs_from_the_finish_condition() {
        let j = job(Some(30), Some(("Complete", "True")));
        assert_eq!(
            ttl(&j, t(10)).expect("ttl"),
            Ttl::Expires(Duration::from_secs(20))
        );
        assert_eq!(ttl(&j, t(30)).expect("ttl"), Ttl::Expired);
        let failed = job(Some(0), Some(("Failed", "True")));
        assert_eq!(ttl(&failed, t(0)).expect("ttl"), Ttl::Expired);
    }

    #[test]
    fn unfinished_untimed_or_deleting_jobs_are_left_alone() {
        let running = job(Some(5), Some(("SuccessCriteriaMet", "True")));
        assert_eq!(ttl(&running, t(100)).expect("ttl"), Ttl::NotApplicable);
        let no_ttl = job(None, Some(("Complete", "True")));
        assert_eq!(ttl(&no_ttl, t(100)).expect("ttl"), Ttl::NotApplicable);
        let mut deleting = job(Some(5), Some(("Complete", "True")));
        deleting.metadata.deletion_timestamp = Some(Time(t(1)));
        assert_eq!(ttl(&deleting, t(100)).expect("ttl"), Ttl::NotApplicable);
    }

    #[test]
    fn a_finished_job_without_a_finish_time_is_an_error() {
        let mut j = job(Some(5), Some(("Complete", "True")));
        if let Some(c) = j
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_transition_time = None;
        }
        assert!(matches!(ttl(&j, t(0)), Err(Error::NoFinishTime(_))));
    }
}
