//! rkube's scheduler: assigns pending pods to nodes the way kube-scheduler does, as an
//! ordinary API client that binds through `pods/binding`.
//!
//! Embed it with [`run`] (or [`Scheduler`] for a readiness signal and metrics); configure it
//! with a `KubeSchedulerConfiguration` file through [`load_config`].
//!
//! # Layout
//! - `config.rs`: `KubeSchedulerConfiguration` v1 parsing, upstream's default profile and
//!   plugin merging, building one [`framework::Framework`] per profile.
//! - `framework/`: the plugin interface ([`framework::Plugin`]), [`framework::Status`],
//!   cycle state, the per-profile runner, cluster events and failure diagnosis.
//! - `plugins/`: one file per plugin, listed in `plugins/registry.rs`.
//! - `cache/`: nodes with per-node aggregates, assumed pods, image spread.
//! - `queue.rs`: active / backoff / unschedulable / gated queues.
//! - `scheduler/`: the loop on its own thread (`mod.rs`: informer updates, bindings
//!   coming back; `cycle.rs`: one scheduling attempt).
//! - `informers.rs`: watches feeding the loop; `api.rs`: bindings, status, events, deletions.
//! - `resource.rs`: quantities and pod requests; `metrics.rs`: counters and histograms.
//!
//! # Threading
//! Watches and API writes run on the caller's tokio runtime. Scheduling itself runs on one
//! dedicated thread that owns the cache and the queue: it applies watch updates between
//! cycles, so each cycle sees a consistent cluster without copying it.

pub mod api;
pub mod cache;
pub mod config;
pub mod framework;
pub mod informers;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod resource;
pub mod scheduler;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::{ProfileConfig, SchedulerConfig, load_config, parse_config};
pub use metrics::Metrics;

use crate::framework::ClusterEvent;
use crate::queue::Queue;
use crate::scheduler::{Loop, Msg};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("starting the scheduling thread")]
    SpawnThread(#[source] std::io::Error),
    #[error("the scheduling thread panicked")]
    LoopPanicked,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Becomes ready once the scheduler has listed nodes and pods and is scheduling.
#[derive(Clone, Debug)]
pub struct Readiness(tokio::sync::watch::Receiver<bool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when ready (at once if already), or never if the scheduler stops first.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A configured scheduler, not yet running.
pub struct Scheduler {
    client: kube::Client,
    config: SchedulerConfig,
    profiles: Vec<framework::Framework>,
    metrics: Arc<Metrics>,
    ready_tx: tokio::sync::watch::Sender<bool>,
    ready_rx: tokio::sync::watch::Receiver<bool>,
}

/// Sends `Stop` to the loop when `run` returns or its future is dropped.
struct StopGuard(std::sync::mpsc::Sender<Msg>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::Stop);
    }
}

impl Scheduler {
    /// Builds the profiles (fails on a bad configuration); starts nothing.
    pub fn new(client: kube::Client, config: SchedulerConfig) -> Result<Scheduler> {
        let profiles = config.build()?;
        let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
        Ok(Scheduler {
            client,
            config,
            profiles,
            metrics: Arc::new(Metrics::default()),
            ready_tx,
            ready_rx,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness(self.ready_rx.clone())
    }

    /// Counters and latency histograms (render them with [`Metrics::render`]).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Schedules until `stop` is cancelled. Watch errors are retried with backoff, never
    /// returned; an error means the scheduler could not run at all.
    pub async fn run(self, stop: CancellationToken) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        let _guard = StopGuard(tx.clone());
        let mut watches = JoinSet::new();
        informers::spawn_all(self.client.clone(), tx.clone(), &mut watches);

        let mut plugin_events: HashMap<&'static str, Vec<ClusterEvent>> = HashMap::new();
        for fw in &self.profiles {
            for p in fw.plugins() {
                plugin_events.entry(p.name()).or_insert_with(|| p.events());
            }
        }
        let queue = Queue::new(
            self.config.pod_initial_backoff,
            self.config.pod_max_backoff,
            plugin_events,
        );
        let api = api::Api::new(
            self.client.clone(),
            tokio::runtime::Handle::current(),
            self.config.bind_concurrency,
            self.config.record_events,
            tx.clone(),
            self.metrics.clone(),
        );
        let names: Vec<String> = self
            .profiles
            .iter()
            .map(|f| f.scheduler_name.clone())
            .collect();
        let lp = Loop::new(
            self.profiles,
            self.config.percentage_of_nodes_to_score,
            queue,
            rx,
            api,
            self.metrics.clone(),
            self.ready_tx,
        );
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<bool>();
        std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || {
                let ok =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run())).is_ok();
                let _ = done_tx.send(ok);
            })
            .map_err(Error::SpawnThread)?;
        tracing::info!(profiles = ?names, "scheduler started");
        let mut done_rx = done_rx;
        let ok = tokio::select! {
            _ = stop.cancelled() => {
                let _ = tx.send(Msg::Stop);
                (&mut done_rx).await.unwrap_or(false)
            }
            r = &mut done_rx => r.unwrap_or(false),
        };
        watches.abort_all();
        tracing::info!("scheduler stopped");
        if ok { Ok(()) } else { Err(Error::LoopPanicked) }
    }
}

/// Runs a scheduler with `config` until `stop` is cancelled (see [`Scheduler::run`]).
pub async fn run(
    client: kube::Client,
    config: SchedulerConfig,
    stop: CancellationToken,
) -> Result<()> {
    Scheduler::new(client, config)?.run(stop).await
}
