//! The Jobs a CronJob starts: built from its template, finished or not, oldest first.

use std::cmp::Ordering;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::schedule;
use crate::controller_ref;

/// Upstream's `batchv1.CronJobScheduledTimestampAnnotation`.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// How a Job ended: its `Complete` or `Failed` condition is `True`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

impl Finished {
    /// The condition type, as upstream prints it in `SawCompletedJob`.
    pub fn condition(self) -> &'static str {
        match self {
            Finished::Complete => "Complete",
            Finished::Failed => "Failed",
        }
    }
}

/// Upstream's `getFinishedStatus`: the first `Complete` or `Failed` condition that is true.
pub fn finished(job: &Job) -> Option<Finished> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(Finished::Complete),
            "Failed" => Some(Finished::Failed),
            _ => None,
        })
}

/// Upstream's `getJobFromTemplate2`: the template's labels and annotations, the scheduled
/// time as an annotation (RFC 3339 in the CronJob's `timeZone`, else UTC), and the CronJob
/// as controller.
pub fn from_template(
    cj: &CronJob,
    name: &str,
    scheduled: jiff::Timestamp,
    zone: &jiff::tz::TimeZone,
) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        schedule::rfc3339(scheduled, zone),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref::reference(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Upstream's `byJobStartTime`: started before not started, earlier start first, then
/// by name.
fn by_start_time(a: &Job, b: &Job) -> Ordering {
    let start = |j: &Job| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0)
    };
    match (start(a), start(b)) {
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (x, y) => x.cmp(&y).then_with(|| a.name_any().cmp(&b.name_any())),
    }
}

/// The Jobs to delete so that at most `keep` remain: the oldest by start time.
pub fn oldest_beyond(mut jobs: Vec<&Job>, keep: i32) -> Vec<&Job> {
    let keep = usize::try_from(keep).unwrap_or(0);
    if jobs.len() <= keep {
        return Vec::new();
    }
    jobs.sort_by(|a, b| by_start_time(a, b));
    jobs.truncate(jobs.len() - keep);
    jobs
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus, JobTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn job(name: &str, started: Option<&str>, conditions: &[(&str, &str)]) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(JobStatus {
                start_time: started.map(|s| Time(s.parse().expect("time"))),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| JobCondition {
                            type_: (*t).into(),
                            status: (*s).into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn finished_reads_the_true_complete_or_failed_condition() {
        assert_eq!(finished(&job("a", None, &[])), None);
        assert_eq!(finished(&job("a", None, &[("Complete", "False")])), None);
        assert_eq!(
            finished(&job(
                "a",
                None,
                &[("SuccessCriteriaMet", "True"), ("Complete", "True")]
            )),
            Some(Finished::Complete)
        );
        assert_eq!(
            finished(&job(
                "a",
                None,
                &[("FailureTarget", "True"), ("Failed", "True")]
            )),
            Some(Finished::Failed)
        );
    }

    #[test]
    fn history_trims_the_oldest_started_first_then_by_name() {
        let a = job("a", Some("2024-03-01T10:00:00Z"), &[]);
        let b = job("b", Some("2024-03-01T09:00:00Z"), &[]);
        let c = job("c", None, &[]);
        let d = job("d", Some("2024-03-01T09:00:00Z"), &[]);
        let names = |v: Vec<&Job>| v.iter().map(|j| j.name_any()).collect::<Vec<_>>();
        assert_eq!(names(oldest_beyond(vec![&a, &b, &c, &d], 2)), ["b", "d"]);
        assert_eq!(
            names(oldest_beyond(vec![&a, &b, &c, &d], 0)),
            ["b", "d", "a", "c"]
        );
        assert!(oldest_beyond(vec![&a, &b], 3).is_empty());
    }

    #[test]
    fn a_job_from_the_template_carries_its_metadata_and_owner() {
        let cj = CronJob {
            metadata: ObjectMeta {
                name: Some("backup".into()),
                namespace: Some("ops".into()),
                uid: Some("u-1".into()),
                ..Default::default()
            },
            spec: Some(CronJobSpec {
                schedule: "5 12 * * *".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("app".into(), "backup".into())])),
                        annotations: Some(BTreeMap::from([("team".into(), "ops".into())])),
                        ..Default::default()
                    }),
                    spec: Some(Default::default()),
                },
                ..Default::default()
            }),
            status: None,
        };
        let t: jiff::Timestamp = "2024-03-01T12:05:00Z".parse().expect("time");
        let j = from_template(&cj, "backup-28488245", t, &jiff::tz::TimeZone::UTC);
        assert_eq!(j.name_any(), "backup-28488245");
        assert_eq!(j.labels().get("app").map(String::as_str), Some("backup"));
        assert_eq!(j.annotations().get("team").map(String::as_str), Some("ops"));
        assert_eq!(
            j.annotations().get(SCHEDULED_TIMESTAMP).map(String::as_str),
            Some("2024-03-01T12:05:00Z")
        );
        let owner = controller_ref::controller_of(&j).expect("owner");
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("CronJob", "u-1")
        );
        assert_eq!(owner.api_version, "batch/v1");
    }
}
