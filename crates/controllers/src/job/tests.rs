//! The Job controller's decisions on hand-built Jobs and pods (the API round trips are
//! covered end to end in `crates/rkube/tests/controllers/job.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodSpec, PodStatus,
    PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::indexes::{COMPLETION_INDEX, INDEX_FAILURE_COUNT, Intervals};
use super::sync::{SyncCtx, deadline_left, past_backoff_limit_on_failure};
use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("timestamp")
}

fn job(spec: JobSpec) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some("j".into()),
            namespace: Some("ns".into()),
            uid: Some("job-uid".into()),
            ..Default::default()
        },
        spec: Some(spec),
        status: Some(JobStatus::default()),
    }
}

fn spec(restart: &str) -> JobSpec {
    JobSpec {
        backoff_limit: Some(2),
        template: PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                restart_policy: Some(restart.into()),
                ..Default::default()
            }),
        },
        ..Default::default()
    }
}

/// A pod of the Job with the tracking finalizer.
fn pod(uid: &str, phase: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("p-{uid}")),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            finalizers: Some(vec![TRACKING_FINALIZER.into()]),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        }),
    }
}

fn with_index(mut p: Pod, ix: i32, failures: Option<i32>) -> Pod {
    let a = p.metadata.annotations.get_or_insert_with(Default::default);
    a.insert(COMPLETION_INDEX.into(), ix.to_string());
    if let Some(f) = failures {
        a.insert(INDEX_FAILURE_COUNT.into(), f.to_string());
    }
    p
}

fn finished_at(mut p: Pod, secs: i64) -> Pod {
    if let Some(s) = p.status.as_mut() {
        s.container_statuses = Some(vec![ContainerStatus {
            name: "c".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 1,
                    finished_at: Some(Time(t(secs))),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    }
    p
}

fn cx(job: Job, pods: Vec<Pod>, now: Timestamp) -> SyncCtx {
    let pods: Vec<Arc<Pod>> = pods.into_iter().map(Arc::new).collect();
    let active = pods
        .iter()
        .filter(|p| podutil::is_active(p))
        .cloned()
        .collect();
    SyncCtx {
        key: "ns/j".into(),
        job,
        server_status: serde_json::json!({}),
        pods,
        active,
        finished: None,
        succeeded: 0,
        failed: 0,
        prev_succeeded_indexes: Intervals::default(),
        succeeded_indexes: Intervals::default(),
        failed_indexes: None,
        backoff: backoff::Record::default(),
        expected_rm: HashSet::new(),
        uncounted_succeeded: HashSet::new(),
        uncounted_failed: HashSet::new(),
        delayed_deletion: HashMap::new(),
        terminating: 0,
        ready: 0,
        requeue: None,
        now,
    }
}

#[test]
fn conditions_change_only_when_they_read_differently() {
    let mut list = Vec::new();
    assert!(!ensure_condition(
        &mut list,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        t(0)
    ));
    assert!(list.is_empty(), "a False condition is never added");
    assert!(ensure_condition(
        &mut list,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        t(0)
    ));
    assert!(!ensure_condition(
        &mut list,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        t(5)
    ));
    assert_eq!(list[0].last_transition_time, Some(Time(t(0))));
    assert!(ensure_condition(
        &mut list,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        t(9)
    ));
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            list[0].status.as_str(),
            list[0].last_transition_time.clone()
        ),
        ("False", Some(Time(t(9))))
    );
}

#[test]
fn a_deleted_unfinished_pod_counts_as_failed_unless_only_failed_pods_are_replaced() {
    let mut deleting = pod("a", "Running");
    deleting.metadata.deletion_timestamp = Some(Time(t(0)));
    let plain = job(spec("Never"));
    assert!(is_pod_failed(&deleting, &plain));
    assert!(is_terminating(&deleting));
    let mut failed_only = spec("Never");
    failed_only.pod_replacement_policy = Some("Failed".into());
    assert!(!is_pod_failed(&deleting, &job(failed_only)));
    assert!(is_pod_failed(&pod("b", "Failed"), &plain));
    assert!(!is_pod_failed(&pod("c", "Succeeded"), &plain));
}

#[test]
fn on_failure_restarts_count_against_the_backoff_limit() {
    let restarted = |n: i32, phase: &str| {
        let mut p = pod("r", phase);
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = Some(vec![ContainerStatus {
                name: "c".into(),
                restart_count: n,
                ..Default::default()
            }]);
        }
        Arc::new(p)
    };
    let on_failure = job(spec("OnFailure"));
    assert!(!past_backoff_limit_on_failure(
        &on_failure,
        &[restarted(1, "Running")]
    ));
    assert!(past_backoff_limit_on_failure(
        &on_failure,
        &[restarted(1, "Running"), restarted(1, "Pending")]
    ));
    // Finished pods and Never pods do not count restarts.
    assert!(!past_backoff_limit_on_failure(
        &on_failure,
        &[restarted(5, "Failed")]
    ));
    assert!(!past_backoff_limit_on_failure(
        &job(spec("Never")),
        &[restarted(5, "Running")]
    ));
    let mut zero = spec("OnFailure");
    zero.backoff_limit = Some(0);
    assert!(past_backoff_limit_on_failure(
        &job(zero),
        &[restarted(1, "Running")]
    ));
}

#[test]
fn the_deadline_counts_from_the_start_and_pauses_while_suspended() {
    let mut s = spec("Never");
    s.active_deadline_seconds = Some(10);
    let mut j = job(s);
    assert_eq!(deadline_left(&j, t(3)), None, "not started");
    j.status = Some(JobStatus {
        start_time: Some(Time(t(0))),
        ..Default::default()
    });
    assert_eq!(deadline_left(&j, t(3)), Some(Duration::from_secs(7)));
    assert_eq!(deadline_left(&j, t(12)), Some(Duration::ZERO));
    if let Some(spec) = j.spec.as_mut() {
        spec.suspend = Some(true);
    }
    assert_eq!(deadline_left(&j, t(12)), None);
}

fn indexed_spec(completions: i32, per_index: Option<i32>) -> JobSpec {
    JobSpec {
        completion_mode: Some("Indexed".into()),
        completions: Some(completions),
        parallelism: Some(completions),
        backoff_limit_per_index: per_index,
        ..spec("Never")
    }
}

#[test]
fn pending_indexes_skip_succeeded_running_and_failed_ones() {
    let j = job(indexed_spec(6, Some(1)));
    let mut c = cx(
        j,
        vec![
            with_index(pod("a", "Running"), 1, None),
            with_index(pod("b", "Pending"), 4, None),
        ],
        t(0),
    );
    c.succeeded_indexes = Intervals::parse("0", 6);
    c.failed_indexes = Some(Intervals::parse("2", 6));
    assert_eq!(indexed::first_pending_indexes(&c, 5), vec![3, 5]);
    assert_eq!(indexed::first_pending_indexes(&c, 1), vec![3]);
}

#[test]
fn an_index_fails_once_its_pods_used_up_the_per_index_limit() {
    let j = job(indexed_spec(3, Some(1)));
    let pods: Vec<Arc<Pod>> = vec![
        // First failure of index 0: replaced; second failure of index 1: the index fails.
        Arc::new(with_index(pod("a", "Failed"), 0, Some(0))),
        Arc::new(with_index(pod("b", "Failed"), 1, Some(1))),
    ];
    assert_eq!(indexed::failed_indexes(&j, &pods).to_string(), "1");
}

#[test]
fn a_failed_index_backs_off_on_its_own_and_passes_its_count_on() {
    let j = job(indexed_spec(3, Some(3)));
    let failed = with_index(finished_at(pod("a", "Failed"), 0), 0, Some(1));
    let mut c = cx(j.clone(), vec![failed], t(5));
    c.failed_indexes = Some(Intervals::default());
    c.delayed_deletion = indexed::delayed_deletion(&c);
    let kept = c.delayed_deletion.get(&0).cloned();
    assert_eq!(
        kept.as_ref().and_then(|p| p.metadata.uid.as_deref()),
        Some("a")
    );
    // Its second failure: 20 s from the finish, 15 s left; index 1 has nothing to wait for.
    let (now_ok, wait) = indexed::ready_to_create(&c, &[0, 1]);
    assert_eq!((now_ok, wait), (vec![1], None));
    let (now_ok, wait) = indexed::ready_to_create(&c, &[0]);
    assert_eq!((now_ok, wait), (vec![], Some(Duration::from_secs(15))));
    assert_eq!(indexed::inherited_failure_counts(&j, kept.as_ref()), (2, 0));
    assert_eq!(indexed::inherited_failure_counts(&j, None), (0, 0));
}

#[test]
fn a_failed_pod_keeps_its_finalizer_until_its_index_is_replaced() {
    let j = job(indexed_spec(3, Some(3)));
    let failed = with_index(finished_at(pod("a", "Failed"), 0), 0, Some(0));
    let mut c = cx(j, vec![failed.clone()], t(5));
    c.failed_indexes = Some(Intervals::default());
    c.delayed_deletion = indexed::delayed_deletion(&c);
    assert!(!tracking::can_remove_finalizer(&c, &failed, true));
    // Once the Job has an outcome, every finalizer may go.
    c.finished = Some(new_condition(
        "FailureTarget",
        "BackoffLimitExceeded",
        "m",
        t(5),
    ));
    assert!(tracking::can_remove_finalizer(&c, &failed, true));
}
