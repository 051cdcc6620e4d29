//! CronJob controller (upstream `pkg/controller/cronjob`, the v2 controller): creates a Job
//! for each start time of `spec.schedule`, honouring `suspend`, `concurrencyPolicy`
//! (Allow / Forbid / Replace) and `startingDeadlineSeconds`; tracks the Jobs it started in
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime`; and deletes the oldest
//! finished Jobs beyond the history limits.
//!
//! Nothing polls: every sync requeues its CronJob for the next start time, and Job changes
//! queue the CronJob that controls them. Job names are deterministic per start time, which
//! is what keeps a restart or a stale cache from starting one time twice.
//!
//! # Layout
//! - `mod.rs`: informer handlers and the sync.
//! - `schedule.rs`: schedule parsing and the missed-start-time arithmetic (pure).
//! - `jobs.rs`: Jobs built from the template, finished states, history ordering (pure).

mod jobs;
pub mod schedule;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::jobs::Finished;
use self::schedule::{Missed, Schedule, Times};
use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::replicaset::api_message;
use crate::{Ctx, Runner, controller_ref, key_of, split_key};

pub const NAME: &str = "cronjob";
const COMPONENT: &str = "cronjob-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the cron job")]
    GetCronJob(#[source] kube::Error),
    #[error("reading job {0}")]
    GetJob(String, #[source] kube::Error),
    #[error("creating job {0}")]
    CreateJob(String, #[source] kube::Error),
    #[error("could not replace job {0}")]
    ReplaceJob(String, #[source] kube::Error),
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    cron_jobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    /// Where schedules without `spec.timeZone` are read: the controller's own zone, as
    /// kube-controller-manager's `time.Local`.
    local: jiff::tz::TimeZone,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let cron_jobs = ctx.informers.get::<CronJob>();
    let jobs = ctx.informers.get::<Job>();
    let queue: Queue<String> = Queue::new();
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        cron_jobs: cron_jobs.clone(),
        jobs: jobs.clone(),
        local: jiff::tz::TimeZone::system(),
    });
    cron_jobs.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.cron_job_changed(&q, ch)
    });
    jobs.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.job_changed(&q, ch)
    });
    Box::pin(async move {
        cron_jobs.wait_synced().await;
        jobs.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

/// What one sync decided, besides the status it rewrote.
enum Outcome {
    /// Look again at the next start time, this long from now.
    Requeue(Option<Duration>),
    /// Nothing to do until the CronJob changes (suspended, deleting, bad schedule).
    Idle,
}

impl Controller {
    /// The key of the CronJob controlling `job`, if it is in the cache with that UID.
    fn owner_key(&self, job: &Job) -> Option<String> {
        let r = controller_ref::controller_of(job).filter(|r| r.kind == "CronJob")?;
        let ns = job.namespace().unwrap_or_default();
        let cj = self.cron_jobs.get(&ns, &r.name)?;
        (cj.uid().as_deref() == Some(r.uid.as_str())).then(|| key_of(cj.as_ref()))
    }

    /// Upstream's `updateCronJob`: a new schedule (or time zone) is first looked at when
    /// its next start time comes, so editing a schedule never starts a Job at once for a
    /// start time that went by unnoticed; any other change is looked at now.
    fn cron_job_changed(&self, q: &Queue<String>, ch: &Change<'_, CronJob>) {
        let key = key_of(ch.object().as_ref());
        let Change::Updated { old, new } = ch else {
            return q.add(key);
        };
        let spec = |cj: &CronJob| {
            cj.spec
                .as_ref()
                .map(|s| (s.schedule.clone(), s.time_zone.clone()))
        };
        if spec(old) == spec(new) {
            return q.add(key);
        }
        let (schedule, time_zone) = spec(new).unwrap_or_default();
        let zone = time_zone
            .and_then(|tz| jiff::tz::db().get(&tz).ok())
            .unwrap_or_else(|| self.local.clone());
        match Schedule::parse(&schedule, zone) {
            Err(_) => self.ctx.events.warning(
                COMPONENT,
                new.as_ref(),
                "UnParseableCronJobSchedule",
                format!("unparseable schedule for cronjob: {schedule}"),
            ),
            Ok(sched) => {
                let now = jiff::Timestamp::now();
                let times = times_of(new, new.status.as_ref(), now);
                match schedule::until_next(&sched, &times, now) {
                    Some(d) => q.add_after(key, d),
                    None => q.add(key),
                }
            }
        }
    }

    fn job_changed(&self, q: &Queue<String>, ch: &Change<'_, Job>) {
        match ch {
            Change::Added(j) | Change::Deleted(j) => {
                if let Some(k) = self.owner_key(j) {
                    q.add(k);
                }
            }
            Change::Updated { old, new } => {
                // A relist repeats unchanged objects.
                if old.resource_version() == new.resource_version() {
                    return;
                }
                let (ok, nk) = (self.owner_key(old), self.owner_key(new));
                if ok != nk
                    && let Some(k) = ok
                {
                    q.add(k);
                }
                if let Some(k) = nk {
                    q.add(k);
                }
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(cj) = self.cron_jobs.get(ns, name) else {
            return Ok(Next::Done);
        };
        // Every Job naming this CronJob as controller, as upstream (by name): Jobs whose
        // labels no longer match the template still count.
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .list(ns)
            .into_iter()
            .filter(|j| controller_ref::owner_name::<CronJob>(j.as_ref()) == Some(name))
            .collect();
        let original = normalised(cj.status.clone().unwrap_or_default());
        let mut status = original.clone();

        // A running Job missing from `active` is either one we created whose status write
        // our cache has not seen yet, or a stranger (`kubectl create job --from`). Upstream
        // re-reads the CronJob to tell; a newer copy means the watch is behind, and acting
        // on the stale status could start a Forbid CronJob twice, so wait for the watch
        // (its event queues this key again).
        let strangers: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|j| jobs::finished(j).is_none() && !in_active(&status, j))
            .collect();
        if !strangers.is_empty() {
            let api: Api<CronJob> = Api::namespaced(self.ctx.client.clone(), ns);
            match api.get_opt(name).await.map_err(Error::GetCronJob)? {
                None => return Ok(Next::Done),
                Some(fresh) if fresh.resource_version() != cj.resource_version() => {
                    return Ok(Next::Done);
                }
                Some(_) => {}
            }
            for j in &strangers {
                self.ctx.events.warning(
                    COMPONENT,
                    cj.as_ref(),
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        j.name_any()
                    ),
                );
            }
        }

        self.cleanup_finished(&cj, &jobs, &mut status).await;
        let now = jiff::Timestamp::now();
        let outcome = self.sync_cron_job(&cj, &jobs, &mut status, now).await;
        let status = normalised(status);
        if status != original {
            let api: Api<CronJob> = Api::namespaced(self.ctx.client.clone(), ns);
            // Pinned to the version read: a status computed from a stale copy must not
            // overwrite a newer one.
            let patch = json!({
                "metadata": {"resourceVersion": cj.resource_version()},
                "status": {
                    "active": status.active,
                    "lastScheduleTime": status.last_schedule_time,
                    "lastSuccessfulTime": status.last_successful_time,
                },
            });
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if crate::is_not_found(&e) => return Ok(Next::Done),
                Err(e) => return Err(Error::UpdateStatus(e)),
            }
        }
        match outcome? {
            Outcome::Requeue(Some(d)) => Ok(Next::After(d)),
            Outcome::Requeue(None) | Outcome::Idle => Ok(Next::Done),
        }
    }

    /// Upstream's `syncCronJob`: folds finished and vanished Jobs into `status`, then
    /// starts the Job of the start time due now, if any.
    async fn sync_cron_job(
        &self,
        cj: &CronJob,
        jobs: &[Arc<Job>],
        status: &mut CronJobStatus,
        now: jiff::Timestamp,
    ) -> Result<Outcome, Error> {
        let ns = cj.namespace().unwrap_or_default();
        let jobs_api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &ns);
        for j in jobs {
            let Some(finished) = jobs::finished(j) else {
                continue;
            };
            if in_active(status, j) {
                remove_active(status, &j.uid().unwrap_or_default());
                self.ctx.events.normal(
                    COMPONENT,
                    cj,
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, condition: {}",
                        j.name_any(),
                        finished.condition()
                    ),
                );
            }
            if finished == Finished::Complete
                && let Some(done) = j.status.as_ref().and_then(|s| s.completion_time.as_ref())
                && status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|l| done.0 > l.0)
            {
                status.last_successful_time = Some(done.clone());
            }
        }

        // Active entries whose Job is gone (asked of the API: the cache may lag).
        let children: HashSet<String> = jobs.iter().filter_map(|j| j.uid()).collect();
        for r in status.active.clone().unwrap_or_default() {
            let uid = r.uid.clone().unwrap_or_default();
            if children.contains(&uid) {
                continue;
            }
            let job_name = r.name.clone().unwrap_or_default();
            let found = jobs_api
                .get_opt(&job_name)
                .await
                .map_err(|e| Error::GetJob(job_name.clone(), e))?;
            if found.is_none() {
                self.ctx.events.normal(
                    COMPONENT,
                    cj,
                    "MissingJob",
                    format!("Active job went missing: {job_name}"),
                );
                remove_active(status, &uid);
            }
        }

        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(Outcome::Idle);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let zone = match spec.time_zone.as_deref() {
            None => None,
            Some(tz) => match jiff::tz::db().get(tz) {
                Ok(z) => Some(z),
                Err(e) => {
                    self.ctx.events.warning(
                        COMPONENT,
                        cj,
                        "UnknownTimeZone",
                        format!("invalid timeZone: {tz:?}: {e}"),
                    );
                    return Ok(Outcome::Idle);
                }
            },
        };
        if spec.suspend == Some(true) {
            return Ok(Outcome::Idle);
        }
        if spec.schedule.contains("TZ") {
            // Rejected by validation on create; an older object may still carry it, and its
            // zone then wins over `timeZone`, as upstream.
            self.ctx.events.warning(
                COMPONENT,
                cj,
                "UnsupportedSchedule",
                format!(
                    "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                    spec.schedule
                ),
            );
        }
        let sched = match Schedule::parse(
            &spec.schedule,
            zone.clone().unwrap_or_else(|| self.local.clone()),
        ) {
            Ok(s) => s,
            Err(e) => {
                self.ctx.events.warning(
                    COMPONENT,
                    cj,
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                return Ok(Outcome::Idle);
            }
        };
        let times = |status: &CronJobStatus| times_of(cj, Some(status), now);
        let requeue = |status: &CronJobStatus| {
            Outcome::Requeue(schedule::until_next(&sched, &times(status), now))
        };
        let due = match schedule::unmet(&sched, &times(status), now) {
            Ok(Some(due)) => due,
            Ok(None) => return Ok(requeue(status)),
            Err(e) => {
                self.ctx.events.warning(
                    COMPONENT,
                    cj,
                    "InvalidSchedule",
                    format!("invalid schedule: {} : {e}", spec.schedule),
                );
                return Ok(Outcome::Idle);
            }
        };
        let Some(scheduled) = due.most_recent else {
            return Ok(requeue(status));
        };
        if due.missed == Missed::Many {
            self.ctx.events.warning(
                COMPONENT,
                cj,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
            );
        }
        if let Some(secs) = spec.starting_deadline_seconds
            && scheduled
                .checked_add(jiff::SignedDuration::from_secs(secs))
                .is_ok_and(|limit| limit < now)
        {
            self.ctx.events.warning(
                COMPONENT,
                cj,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    schedule::rfc1123z(scheduled)
                ),
            );
            return Ok(requeue(status));
        }
        let job_name = schedule::job_name(&cj.name_any(), scheduled);
        let already = status
            .active
            .iter()
            .flatten()
            .any(|r| r.name.as_deref() == Some(&job_name))
            || status.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled);
        if already {
            return Ok(requeue(status));
        }
        let has_active = status.active.as_ref().is_some_and(|a| !a.is_empty());
        match spec.concurrency_policy.as_deref() {
            Some("Forbid") if has_active => {
                self.ctx.events.normal(
                    COMPONENT,
                    cj,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                );
                return Ok(requeue(status));
            }
            Some("Replace") => self.replace_active(cj, &jobs_api, status).await?,
            _ => {}
        }

        let annotation_zone = zone.unwrap_or(jiff::tz::TimeZone::UTC);
        let job = jobs::from_template(cj, &job_name, scheduled, &annotation_zone);
        let created = match jobs_api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.ctx.events.normal(
                    COMPONENT,
                    cj,
                    "SuccessfulCreate",
                    format!("Created job {job_name}"),
                );
                j
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                // Created by an earlier sync whose status write was lost, or by someone
                // else, in which case it is theirs to track.
                let j = jobs_api
                    .get(&job_name)
                    .await
                    .map_err(|e| Error::GetJob(job_name.clone(), e))?;
                let ours = controller_ref::controller_of(&j)
                    .is_some_and(|r| Some(r.uid.as_str()) == cj.uid().as_deref());
                if !ours || in_active(status, &j) {
                    return Ok(requeue(status));
                }
                j
            }
            Err(e) if namespace_terminating(&e) => {
                return Err(Error::CreateJob(job_name, e));
            }
            Err(e) => {
                self.ctx.events.warning(
                    COMPONENT,
                    cj,
                    "FailedCreate",
                    format!("Error creating job: {}", api_message(&e)),
                );
                return Err(Error::CreateJob(job_name, e));
            }
        };
        status
            .active
            .get_or_insert_with(Vec::new)
            .push(crate::events::reference(&created));
        status.last_schedule_time = Some(Time(scheduled));
        Ok(requeue(status))
    }

    /// `concurrencyPolicy: Replace`: deletes every active Job before the next starts.
    async fn replace_active(
        &self,
        cj: &CronJob,
        api: &Api<Job>,
        status: &mut CronJobStatus,
    ) -> Result<(), Error> {
        for r in status.active.clone().unwrap_or_default() {
            let name = r.name.clone().unwrap_or_default();
            let uid = r.uid.clone().unwrap_or_default();
            let job = match api.get_opt(&name).await {
                Ok(Some(j)) => j,
                // Already gone: nothing left to replace.
                Ok(None) => {
                    remove_active(status, &uid);
                    continue;
                }
                Err(e) => {
                    self.ctx.events.warning(
                        COMPONENT,
                        cj,
                        "FailedGet",
                        format!("Get job: {}", api_message(&e)),
                    );
                    return Err(Error::GetJob(name, e));
                }
            };
            if let Err(e) = self.delete_job(cj, &job, api, status).await {
                return Err(Error::ReplaceJob(name, e));
            }
        }
        Ok(())
    }

    /// Upstream's `deleteJob`: deletes the Job (its pods follow through the garbage
    /// collector) and drops it from `active`.
    async fn delete_job(
        &self,
        cj: &CronJob,
        job: &Job,
        api: &Api<Job>,
        status: &mut CronJobStatus,
    ) -> Result<(), kube::Error> {
        let name = job.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if crate::is_not_found(&e) => {}
            Err(e) => {
                self.ctx.events.warning(
                    COMPONENT,
                    cj,
                    "FailedDelete",
                    format!("Deleted job: {}", api_message(&e)),
                );
                return Err(e);
            }
        }
        remove_active(status, &job.uid().unwrap_or_default());
        self.ctx.events.normal(
            COMPONENT,
            cj,
            "SuccessfulDelete",
            format!("Deleted job {name}"),
        );
        Ok(())
    }

    /// Upstream's `cleanupFinishedJobs`: keeps the newest `successfulJobsHistoryLimit`
    /// complete and `failedJobsHistoryLimit` failed Jobs. Failures are reported as events
    /// and tried again on the next sync.
    async fn cleanup_finished(&self, cj: &CronJob, jobs: &[Arc<Job>], status: &mut CronJobStatus) {
        let Some(spec) = cj.spec.as_ref() else {
            return;
        };
        let ns = cj.namespace().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &ns);
        for (kind, limit) in [
            (Finished::Complete, spec.successful_jobs_history_limit),
            (Finished::Failed, spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else {
                continue;
            };
            // Jobs already on their way out no longer count.
            let finished: Vec<&Job> = jobs
                .iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .filter(|j| jobs::finished(j) == Some(kind))
                .map(AsRef::as_ref)
                .collect();
            for job in jobs::oldest_beyond(finished, limit) {
                let _ = self.delete_job(cj, job, &api, status).await;
            }
        }
    }
}

/// What the schedule arithmetic needs of `cj`, with `status` as it stands in this sync.
fn times_of(cj: &CronJob, status: Option<&CronJobStatus>, now: jiff::Timestamp) -> Times {
    Times {
        created: cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0),
        last_scheduled: status
            .and_then(|s| s.last_schedule_time.as_ref())
            .map(|t| t.0),
        deadline_secs: cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds),
    }
}

fn in_active(status: &CronJobStatus, job: &Job) -> bool {
    let uid = job.uid();
    status
        .active
        .iter()
        .flatten()
        .any(|r| r.uid.is_some() && r.uid == uid)
}

fn remove_active(status: &mut CronJobStatus, uid: &str) {
    if let Some(active) = status.active.as_mut() {
        active.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

/// An empty `active` list is the same as none.
fn normalised(mut status: CronJobStatus) -> CronJobStatus {
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
    status
}

/// Creating in a namespace being deleted fails for good; upstream records no event for it.
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}
