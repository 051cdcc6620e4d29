//! The delay before failed pods are replaced (upstream `backoff_utils.go`): 10 s after the
//! first failure since the last success, doubling per further failure up to 10 minutes
//! (upstream's `DefaultJobPodFailureBackOff` / `MaxJobPodFailureBackOff`). The record lives
//! in memory per Job, as upstream's does; a restarted controller starts from none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

pub const BASE: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(600);

/// Failures since the Job's last success and when the latest happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub failures_after_last_success: i32,
    pub last_failure: Option<Timestamp>,
}

impl Record {
    /// How long pod creation still waits at `now`.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        remaining(self.failures_after_last_success, self.last_failure, now)
    }
}

/// The per-Job records.
#[derive(Default)]
pub struct Store {
    records: Mutex<HashMap<String, Record>>,
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Upstream `newBackoffRecord`: the stored record advanced by pods that finished since
    /// the Job's status last counted. A success resets it; failures after the latest
    /// success count on. Not stored until [`Store::update`] (once the status that counts
    /// these pods is written).
    pub fn next(&self, key: &str, succeeded: &[Arc<Pod>], failed: &[Arc<Pod>]) -> Record {
        let mut rec = self.lock().get(key).cloned().unwrap_or_default();
        let mut failed_at: Vec<Timestamp> = failed.iter().map(|p| finished_at(p)).collect();
        failed_at.sort();
        let last_success = succeeded.iter().map(|p| finished_at(p)).max();
        match last_success {
            None => {
                if let Some(last) = failed_at.last() {
                    rec.failures_after_last_success = rec
                        .failures_after_last_success
                        .saturating_add(i32::try_from(failed_at.len()).unwrap_or(i32::MAX));
                    rec.last_failure = Some(*last);
                }
            }
            Some(success) => {
                let after: Vec<&Timestamp> = failed_at.iter().filter(|t| **t > success).collect();
                rec.failures_after_last_success = i32::try_from(after.len()).unwrap_or(i32::MAX);
                rec.last_failure = after.last().map(|t| **t);
            }
        }
        rec
    }

    pub fn update(&self, key: &str, rec: Record) {
        self.lock().insert(key.to_string(), rec);
    }

    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }
}

/// Upstream `getFinishedTime`: the last container finish, else when Ready turned False,
/// else the deletion time less its grace period, else creation.
pub fn finished_at(pod: &Pod) -> Timestamp {
    let status = pod.status.as_ref();
    let from_containers = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| {
            let mut latest: Option<Timestamp> = None;
            for c in cs {
                let t = c
                    .state
                    .as_ref()?
                    .terminated
                    .as_ref()?
                    .finished_at
                    .as_ref()?
                    .0;
                latest = Some(latest.map_or(t, |l| l.max(t)));
            }
            latest
        });
    let from_ready = || {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    };
    let from_deletion = || {
        pod.metadata.deletion_timestamp.as_ref().map(|t| {
            let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
            t.0 - jiff::SignedDuration::from_secs(grace)
        })
    };
    from_containers
        .or_else(from_ready)
        .or_else(from_deletion)
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Upstream `getRemainingTimeForFailuresCount`.
pub fn remaining(failures: i32, last_failure: Option<Timestamp>, now: Timestamp) -> Duration {
    let Some(last) = last_failure.filter(|_| failures > 0) else {
        return Duration::ZERO;
    };
    let mut delay = BASE;
    for _ in 1..failures {
        delay = delay.saturating_mul(2);
        if delay >= MAX {
            delay = MAX;
            break;
        }
    }
    let elapsed = now.duration_since(last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    delay.saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("timestamp")
    }

    fn finished(at: i64) -> Arc<Pod> {
        Arc::new(Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            finished_at: Some(Time(t(at))),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn delay_doubles_from_ten_seconds_to_the_cap() {
        assert_eq!(remaining(0, Some(t(0)), t(0)), Duration::ZERO);
        assert_eq!(remaining(1, Some(t(0)), t(0)), Duration::from_secs(10));
        assert_eq!(remaining(3, Some(t(0)), t(5)), Duration::from_secs(35));
        assert_eq!(remaining(20, Some(t(0)), t(0)), MAX);
        assert_eq!(remaining(1, Some(t(0)), t(11)), Duration::ZERO);
    }

    #[test]
    fn failures_accumulate_until_a_later_success() {
        let store = Store::default();
        let r = store.next("ns/j", &[], &[finished(10), finished(5)]);
        assert_eq!(r.failures_after_last_success, 2);
        assert_eq!(r.last_failure, Some(t(10)));
        store.update("ns/j", r);
        let r = store.next("ns/j", &[], &[finished(20)]);
        assert_eq!(r.failures_after_last_success, 3);
        // A success resets; only failures after it count.
        let r = store.next("ns/j", &[finished(30)], &[finished(25), finished(40)]);
        assert_eq!(r.failures_after_last_success, 1);
        assert_eq!(r.last_failure, Some(t(40)));
        let r = store.next("ns/j", &[finished(30)], &[]);
        assert_eq!(r, Record::default());
    }
}
