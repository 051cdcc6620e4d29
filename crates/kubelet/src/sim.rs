//! The simulator: registers the nodes, then runs the heartbeats and pod workers for all of
//! them, and lets a caller take a node away and bring it back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, SimConfig};
use crate::node::{self, SimNode};
use crate::pods::{self, Control};
use crate::runtime::sim::SimRuntime;
use crate::runtime::{self, Runtime};
use crate::{heartbeat, lease};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid simulator configuration")]
    Config(#[from] config::Error),
    #[error("asking the runtime for its version")]
    RuntimeVersion(#[source] runtime::Error),
    #[error("registering node {node}")]
    RegisterNode {
        node: String,
        #[source]
        source: node::Error,
    },
    #[error("creating the lease of node {node}")]
    CreateLease {
        node: String,
        #[source]
        source: lease::Error,
    },
    #[error("stopped before the simulator was up")]
    Stopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Node slots handed out in this process: slot `k` gets the `k+1`th address of its node IP
/// range and pod block `k mod blocks` of its cluster CIDR.
static NODE_SLOTS: AtomicU64 = AtomicU64::new(0);

/// What the heartbeats and pod workers share.
pub(crate) struct Shared {
    pub client: kube::Client,
    pub cfg: SimConfig,
    pub nodes: Vec<SimNode>,
    pub by_name: HashMap<String, usize>,
    pub runtime: Arc<dyn Runtime>,
    /// Bounds pod status writes and deletions in flight (registration is bounded by
    /// `write_concurrency` too, as a stream).
    pub pod_writes: Semaphore,
    /// Bounds heartbeat writes in flight, apart from pod writes so bursts never starve
    /// leases.
    pub heartbeat_writes: Semaphore,
}

/// Running simulated nodes.
///
/// Runs until the cancellation token given to [`Sim::start`] fires or the `Sim` is
/// dropped.
pub struct Sim {
    shared: Arc<Shared>,
    control: mpsc::UnboundedSender<Control>,
    tasks: Vec<JoinHandle<()>>,
    registration: Duration,
    /// A child of the caller's token: cancelled on drop.
    stop: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sim {
    /// Registers the nodes and their leases, starts heartbeats and pod workers, and
    /// returns once the pod workers hold the current pods. Fails if a node cannot be
    /// registered; nodes registered by then stay (and their leases expire).
    pub async fn start(
        client: kube::Client,
        cfg: SimConfig,
        stop: CancellationToken,
    ) -> Result<Sim> {
        cfg.validate()?;
        let stop = stop.child_token();
        let runtime = SimRuntime::new(cfg.pod_run_duration);
        let version = runtime
            .version()
            .await
            .map_err(Error::RuntimeVersion)?
            .container_runtime_version();
        let n = cfg.nodes;
        let first = NODE_SLOTS.fetch_add(n as u64, Ordering::Relaxed);
        let node_ips = cfg.node_ip_range.size().saturating_sub(2).max(1);
        let blocks = 1u64 << (cfg.node_cidr_mask - cfg.cluster_cidr.prefix);
        let nodes: Vec<SimNode> = (0..n)
            .map(|i| {
                let slot = first + i as u64;
                let ip = cfg
                    .node_ip_range
                    .nth(1 + slot % node_ips)
                    .unwrap_or(cfg.node_ip_range.addr);
                let block = cfg
                    .cluster_cidr
                    .subnet(cfg.node_cidr_mask, slot % blocks)
                    .unwrap_or(cfg.cluster_cidr);
                let node = SimNode::new(cfg.node_name(i), i, ip, block);
                runtime.add_node(&node.name, block, ip);
                node
            })
            .collect();
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let shared = Arc::new(Shared {
            client,
            pod_writes: Semaphore::new(cfg.write_concurrency),
            heartbeat_writes: Semaphore::new(cfg.heartbeat_concurrency),
            cfg,
            nodes,
            by_name,
            runtime: Arc::new(runtime),
        });

        let started = tokio::time::Instant::now();
        tokio::select! {
            _ = stop.cancelled() => return Err(Error::Stopped),
            r = register_all(&shared, &version) => r?,
        }
        let registration = started.elapsed();
        tracing::info!(
            nodes = n,
            elapsed_ms = registration.as_millis() as u64,
            "registered simulated nodes"
        );

        let (control, control_rx) = mpsc::unbounded_channel();
        let (synced_tx, synced_rx) = oneshot::channel();
        let tasks = vec![
            tokio::spawn(heartbeat::run(shared.clone(), stop.clone())),
            tokio::spawn(pods::run(
                shared.clone(),
                control_rx,
                synced_tx,
                stop.clone(),
            )),
        ];
        tokio::select! {
            _ = stop.cancelled() => return Err(Error::Stopped),
            _ = synced_rx => {}
        }
        Ok(Sim {
            shared,
            control,
            tasks,
            registration,
            stop,
        })
    }

    /// The names of the simulated nodes, in index order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.shared.nodes.iter().map(|n| n.name.as_str())
    }

    /// How long registering the nodes and their leases took.
    pub fn registration_time(&self) -> Duration {
        self.registration
    }

    /// Simulates node `name` going away (its kubelet dies or loses the network): its
    /// lease is no longer renewed, its status no longer posted, its pods no longer
    /// touched. Returns false for a node this simulator does not run. Idempotent.
    pub fn fail_node(&self, name: &str) -> bool {
        let Some(&i) = self.shared.by_name.get(name) else {
            return false;
        };
        if !self.shared.nodes[i].failed.swap(true, Ordering::AcqRel) {
            tracing::info!(node = name, "simulated node failed");
        }
        true
    }

    /// Brings a failed node back: it renews its lease and posts its status at once and
    /// resyncs its pods. Returns false for a node this simulator does not run. Call it
    /// within the Tokio runtime the simulator runs on.
    pub fn recover_node(&self, name: &str) -> bool {
        let Some(&i) = self.shared.by_name.get(name) else {
            return false;
        };
        let node = &self.shared.nodes[i];
        if node.failed.swap(false, Ordering::AcqRel) {
            tracing::info!(node = name, "simulated node recovered");
            node.status_dirty.store(true, Ordering::Release);
            if !node.heartbeat_busy.swap(true, Ordering::AcqRel) {
                tokio::spawn(heartbeat::beat(self.shared.clone(), i));
            }
            let _ = self.control.send(Control::NodeRecovered(i));
        }
        true
    }

    /// Whether node `name` is failed; `None` for a node this simulator does not run.
    pub fn is_failed(&self, name: &str) -> Option<bool> {
        let &i = self.shared.by_name.get(name)?;
        Some(self.shared.nodes[i].failed.load(Ordering::Acquire))
    }

    /// Waits until the simulator stops (its cancellation token fired).
    pub async fn join(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await
                && e.is_panic()
            {
                tracing::error!(error = %e, "simulator task panicked");
            }
        }
    }
}

/// Registers every node and its lease, `write_concurrency` at a time.
async fn register_all(shared: &Arc<Shared>, version: &str) -> Result<()> {
    let concurrency = shared.cfg.write_concurrency;
    futures::stream::iter(0..shared.nodes.len())
        .map(|i| register_one(shared, i, version))
        .buffer_unordered(concurrency)
        .try_collect::<()>()
        .await
}

async fn register_one(shared: &Shared, i: usize, version: &str) -> Result<()> {
    let node = &shared.nodes[i];
    let uid = node::register(&shared.client, &shared.cfg, node, version)
        .await
        .map_err(|source| Error::RegisterNode {
            node: node.name.clone(),
            source,
        })?;
    lease::ensure(&shared.client, &node.name, &uid, shared.cfg.lease_duration)
        .await
        .map_err(|source| Error::CreateLease {
            node: node.name.clone(),
            source,
        })?;
    let _ = node.uid.set(uid);
    Ok(())
}

/// Runs `cfg.nodes` simulated nodes until `stop` fires. Returns early only if the nodes
/// cannot be registered.
pub async fn run_sim(client: kube::Client, cfg: SimConfig, stop: CancellationToken) -> Result<()> {
    let sim = match Sim::start(client, cfg, stop).await {
        Ok(sim) => sim,
        Err(Error::Stopped) => return Ok(()),
        Err(e) => return Err(e),
    };
    sim.join().await;
    Ok(())
}
