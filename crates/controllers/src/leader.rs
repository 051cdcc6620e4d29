//! Leader election on a `coordination.k8s.io/v1` Lease (client-go's `leaderelection` with a
//! `LeaseLock`), so several `rkube server`s can share one datastore and only one runs the
//! controllers.
//!
//! A candidate takes the lease when it is free (no holder) or when the holder has not renewed
//! it for `leaseDurationSeconds` as measured on the candidate's own clock since it last saw
//! the record change (so clock skew between servers does not matter). The leader renews
//! every `retry_period`; if it cannot renew for `renew_deadline` it stops leading. On a clean
//! stop it releases the lease, so a restarted server takes over at once.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

/// Upstream kube-controller-manager's defaults.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    pub fn new(name: &str) -> Self {
        Self {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: format!("{}_{}", events::hostname(), uuid::Uuid::new_v4()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The last lease record seen and when it was first seen in that form.
struct Observed {
    spec: Option<LeaseSpec>,
    at: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    cfg: Config,
    observed: Option<Observed>,
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl Elector {
    pub fn new(client: kube::Client, cfg: Config) -> Self {
        Self {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    fn record(&self, now: Timestamp, prior: Option<&LeaseSpec>) -> LeaseSpec {
        let held_by_us =
            prior.and_then(|p| p.holder_identity.as_deref()) == Some(self.cfg.identity.as_str());
        let transitions = prior.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(seconds(self.cfg.lease_duration)),
            acquire_time: if held_by_us {
                prior.and_then(|p| p.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if held_by_us || prior.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    /// One attempt to acquire or renew. `Ok(true)` when we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = match self.api.get_opt(&self.cfg.name).await? {
            Some(l) => l,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        namespace: Some(self.cfg.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.record(now, None)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(l) => {
                        self.observe(l.spec);
                        Ok(true)
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = current.spec.clone().unwrap_or_default();
        self.observe(current.spec.clone());
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let ours = holder == self.cfg.identity;
        if !ours && !holder.is_empty() {
            let duration = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            );
            let seen_for = self.observed.as_ref().map(|o| o.at.elapsed());
            if seen_for.is_some_and(|s| s < duration) {
                return Ok(false);
            }
        }
        let mut next = current.clone();
        next.spec = Some(self.record(now, Some(&spec)));
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &next)
            .await
        {
            Ok(l) => {
                self.observe(l.spec);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, spec: Option<LeaseSpec>) {
        if self.observed.as_ref().is_some_and(|o| o.spec == spec) {
            return;
        }
        self.observed = Some(Observed {
            spec,
            at: Instant::now(),
        });
    }

    /// Gives the lease up (holder cleared, duration 1 s) if we hold it.
    pub async fn release(&mut self) {
        let Ok(Some(mut current)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let Some(spec) = current.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        let now = MicroTime(Timestamp::now());
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        if let Err(e) = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &current)
            .await
        {
            tracing::debug!(error = %e, "releasing the leader lease failed");
        }
    }

    /// Blocks until leader (or `stop`); returns false if stopped first.
    pub async fn acquire(&mut self, stop: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(lease = %self.cfg.name, error = %e, "acquiring the leader lease")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
            }
        }
    }

    /// Renews until `stop` (returns true) or until renewal fails for `renew_deadline`
    /// (returns false: leadership is lost).
    pub async fn keep(&mut self, stop: &CancellationToken) -> bool {
        let mut last_renew = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return true,
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renew = Instant::now(),
                Ok(false) => return false,
                Err(e) => {
                    tracing::warn!(lease = %self.cfg.name, error = %e, "renewing the leader lease");
                    if last_renew.elapsed() > self.cfg.renew_deadline {
                        return false;
                    }
                }
            }
        }
    }

    pub fn identity(&self) -> &str {
        &self.cfg.identity
    }
}
