//! rkube's controllers (kube-controller-manager's job): each one watches the API through
//! shared informers and writes back through the API, like any other client, so they run in
//! `rkube server` or anywhere else. One server at a time runs them, elected through a Lease.
//!
//! # Layout
//! - `registry.rs`: every controller's `NAME` and `new` factory, in start order.
//! - one module per controller: `replicaset.rs`, `deployment/`, `garbagecollector/`,
//!   `namespace.rs`, `serviceaccount.rs`, `endpoint.rs` and `endpointslice.rs` (sharing
//!   `service_pods.rs`), `nodelifecycle.rs` (with taint-based eviction), `disruption.rs`
//!   (PodDisruptionBudget status), `podgc.rs` (pods of gone nodes), `cronjob/` (schedules in `cronjob/schedule.rs`).
//!   `job/` (Jobs run to completion), `ttlafterfinished.rs` (finished Jobs' TTL).
//!   `statefulset/` and `daemonset/` (sharing `history.rs`, their ControllerRevisions).
//!   `servicelb.rs` (LoadBalancer Services' addresses: the Ready nodes').
//! - shared machinery: `informer.rs` (one watch and cache per kind), `queue.rs` (work queue
//!   and workers), `controller_ref.rs` (adoption, expectations), `events.rs`, `podutil.rs`,
//!   `leader.rs` (Lease election).
//!
//! # Contract
//! A controller's `new` registers its informer handlers and returns the future that runs
//! its workers; it must not touch the API before the informers it uses have synced.

pub mod controller_ref;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoint;
pub mod endpointslice;
pub use events;
pub mod garbagecollector;
pub mod history;
pub mod informer;
pub mod job;
pub mod leader;
pub mod namespace;
pub mod nodelifecycle;
pub mod podgc;
pub mod podutil;
pub mod queue;
pub mod registry;
pub mod replicaset;
pub mod service_pods;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod ttlafterfinished;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::informer::Informers;

/// What the controllers share.
pub struct Ctx {
    pub client: kube::Client,
    pub informers: Informers,
    pub events: events::Recorder,
    pub config: Config,
}

/// A controller's running form: resolves when `stop` fires.
pub type Runner = BoxFuture<'static, ()>;

#[derive(Clone, Debug)]
pub struct Config {
    /// Workers per controller (upstream's `--concurrent-*-syncs` default to 5).
    pub workers: usize,
    /// Controllers to run (`*` = all, `-name` = all but name), as `--controllers`.
    pub enabled: Vec<String>,
    /// Leader election; `None` runs without it (tests, single embedded use).
    pub leader_election: Option<leader::Config>,
    /// How often namespaces are checked again while their content drains.
    pub namespace_resync: Duration,
    /// How long a node may go without renewing its Lease before it is `Unknown`
    /// (kube-controller-manager's `--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// How often nodes are checked (`--node-monitor-period`).
    pub node_monitor_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: 5,
            enabled: vec!["*".into()],
            leader_election: Some(leader::Config::new("kube-controller-manager")),
            namespace_resync: Duration::from_millis(500),
            node_monitor_grace_period: Duration::from_secs(50),
            node_monitor_period: Duration::from_secs(5),
        }
    }
}

impl Config {
    pub fn is_enabled(&self, name: &str) -> bool {
        let mut on = false;
        for e in &self.enabled {
            if e == "*" {
                on = true;
            } else if e == name {
                return true;
            } else if e.strip_prefix('-') == Some(name) {
                return false;
            }
        }
        on
    }
}

/// Runs the enabled controllers until `stop`, leading when elected (or always, without
/// leader election). Losing leadership stops them and the server campaigns again.
pub async fn run(client: kube::Client, config: Config, stop: CancellationToken) {
    let Some(lec) = config.leader_election.clone() else {
        run_once(client, config, stop).await;
        return;
    };
    let mut elector = leader::Elector::new(client.clone(), lec);
    while elector.acquire(&stop).await {
        tracing::info!(
            identity = elector.identity(),
            "leading: starting controllers"
        );
        let term = stop.child_token();
        let task = tokio::spawn(run_once(client.clone(), config.clone(), term.clone()));
        let stopped = elector.keep(&stop).await;
        term.cancel();
        let _ = task.await;
        if stopped {
            elector.release().await;
            return;
        }
        tracing::warn!("lost the leader lease: controllers stopped");
    }
}

async fn run_once(client: kube::Client, config: Config, stop: CancellationToken) {
    let ctx = Arc::new(Ctx {
        events: events::Recorder::start(client.clone()),
        client: client.clone(),
        informers: Informers::default(),
        config,
    });
    let mut runners = JoinSet::new();
    for (name, new) in registry::ALL {
        if ctx.config.is_enabled(name) {
            runners.spawn(new(&ctx, stop.clone()));
        }
    }
    let mut watches = JoinSet::new();
    ctx.informers.start(&client, &mut watches);
    stop.cancelled().await;
    watches.abort_all();
    while runners.join_next().await.is_some() {}
}

/// `namespace/name`, or `name` for cluster-scoped objects: the key controllers queue.
pub fn key_of(obj: &impl kube::Resource) -> String {
    let m = obj.meta();
    match m.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", m.name.as_deref().unwrap_or("")),
        _ => m.name.clone().unwrap_or_default(),
    }
}

/// Splits a key from [`key_of`].
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Is this API error a 404?
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Is this API error a 409 (conflict or already exists)?
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_follows_upstream_syntax() {
        let mut c = Config {
            enabled: vec!["*".into(), "-namespace".into()],
            ..Default::default()
        };
        assert!(c.is_enabled("replicaset"));
        assert!(!c.is_enabled("namespace"));
        c.enabled = vec!["replicaset".into()];
        assert!(c.is_enabled("replicaset"));
        assert!(!c.is_enabled("deployment"));
    }
}
