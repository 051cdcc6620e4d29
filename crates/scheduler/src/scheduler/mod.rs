//! The scheduling loop (upstream `scheduleOne`), on its own thread: apply informer updates,
//! pop the next pod, filter nodes with early exit, score a sample, assume, and hand the
//! binding to the async side; on failure run PostFilter (preemption), record why, and requeue.

mod cycle;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;

use crate::api::{Api, EventReq, millis};
use crate::cache::{Cache, PdbInfo};
use crate::framework::{
    Action, ClusterEvent, Code, Cycle, CycleState, EventResource, FitError, Framework, Nominator,
    PodInfo, Status,
};
use crate::metrics::Metrics;
use crate::queue::{Queue, QueuedPod};

/// Upstream `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;
/// Messages applied before the next attempt at most (keeps scheduling going under a flood).
const DRAIN_LIMIT: usize = 20_000;

/// What a watch is relisting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Node,
    Pod,
    Namespace,
    Pdb,
}

/// Input to the loop.
pub(crate) enum Msg {
    Node(Arc<Node>),
    NodeDeleted(String),
    Pod(Arc<PodInfo>),
    PodDeleted(Arc<PodInfo>),
    Namespace(String, BTreeMap<String, String>),
    NamespaceDeleted(String),
    Pdb(String, PdbInfo),
    PdbDeleted(String),
    RelistStart(Kind),
    RelistDone(Kind),
    Bound {
        uid: String,
        node: String,
        status: Status,
        took: Duration,
    },
    Stop,
}

/// Upstream `numFeasibleNodesToFind`: all nodes below 100; else a percentage (adaptive:
/// 50% − 1% per 125 nodes, at least 5%), at least 100.
pub fn num_feasible_nodes_to_find(percentage: Option<i32>, num_nodes: usize) -> usize {
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_nodes;
    }
    let pct = match percentage {
        Some(p) if p > 0 => p as usize,
        _ => 50usize
            .saturating_sub(num_nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE),
    };
    if pct >= 100 {
        return num_nodes;
    }
    (num_nodes * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Why an attempt found no node.
enum Failure {
    Fit(Box<FitError>),
    NoNodes,
    Error(Status),
}

/// Reusable buffers: the hot path allocates nothing per node.
#[derive(Default)]
struct Buffers {
    feasible: Vec<usize>,
    totals: Vec<i64>,
    scratch: Vec<i64>,
}

/// A pod whose binding is in flight.
struct Binding {
    qp: QueuedPod,
    profile: usize,
    state: CycleState,
    node: String,
}

pub(crate) struct Loop {
    profiles: Arc<Vec<Framework>>,
    by_name: HashMap<String, usize>,
    pct_global: i32,
    cache: Cache,
    queue: Queue,
    nominator: Nominator,
    rx: Receiver<Msg>,
    api: Api,
    metrics: Arc<Metrics>,
    ready: tokio::sync::watch::Sender<bool>,
    synced: HashSet<Kind>,
    relisting: HashMap<Kind, HashSet<String>>,
    binding: HashMap<String, Binding>,
    next_start: usize,
    bufs: Buffers,
    last_flush: Instant,
}

/// Synced kinds before the first attempt (upstream waits for its informers).
const NEEDED: [Kind; 2] = [Kind::Node, Kind::Pod];

impl Loop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        profiles: Vec<Framework>,
        pct_global: i32,
        queue: Queue,
        rx: Receiver<Msg>,
        api: Api,
        metrics: Arc<Metrics>,
        ready: tokio::sync::watch::Sender<bool>,
    ) -> Loop {
        let by_name = profiles
            .iter()
            .enumerate()
            .map(|(i, f)| (f.scheduler_name.clone(), i))
            .collect();
        Loop {
            profiles: Arc::new(profiles),
            by_name,
            pct_global,
            cache: Cache::new(),
            queue,
            nominator: Nominator::default(),
            rx,
            api,
            metrics,
            ready,
            synced: HashSet::new(),
            relisting: HashMap::new(),
            binding: HashMap::new(),
            next_start: 0,
            bufs: Buffers::default(),
            last_flush: Instant::now(),
        }
    }

    fn is_synced(&self) -> bool {
        NEEDED.iter().all(|k| self.synced.contains(k))
    }

    /// Runs until `Msg::Stop` or every sender is gone.
    pub fn run(mut self) {
        loop {
            // Apply what arrived, then attempt one pod; wait only when nothing is ready.
            let mut n = 0;
            loop {
                match self.rx.try_recv() {
                    Ok(Msg::Stop) => return,
                    Ok(m) => self.handle(m),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
                n += 1;
                if n >= DRAIN_LIMIT {
                    break;
                }
            }
            let now = Instant::now();
            if now.duration_since(self.last_flush) > Duration::from_secs(30) {
                self.last_flush = now;
                self.queue.flush_unschedulable(now);
            }
            let next = if self.is_synced() {
                self.queue.pop(now)
            } else {
                None
            };
            self.publish_queue_lengths();
            match next {
                Some(qp) => self.schedule_one(qp),
                None => {
                    let wait = self
                        .queue
                        .next_backoff()
                        .map(|t| t.saturating_duration_since(now))
                        .unwrap_or(Duration::from_secs(1))
                        .clamp(Duration::from_millis(1), Duration::from_secs(1));
                    match self.rx.recv_timeout(wait) {
                        Ok(Msg::Stop) => return,
                        Ok(m) => self.handle(m),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
        }
    }

    fn publish_queue_lengths(&self) {
        let l = self.queue.lengths();
        self.metrics.pending_active.store(l.active as i64, Relaxed);
        self.metrics
            .pending_backoff
            .store(l.backoff as i64, Relaxed);
        self.metrics
            .pending_unschedulable
            .store(l.unschedulable as i64, Relaxed);
        self.metrics.pending_gated.store(l.gated as i64, Relaxed);
    }

    fn event(&mut self, resource: EventResource, action: Action) {
        self.queue
            .on_event(ClusterEvent::new(resource, action), Instant::now(), None);
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Node(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                if let Some(seen) = self.relisting.get_mut(&Kind::Node) {
                    seen.insert(name);
                }
                if let Some(a) = self.cache.upsert_node(n) {
                    self.event(EventResource::Node, a);
                }
            }
            Msg::NodeDeleted(name) => {
                if self.cache.delete_node(&name) {
                    self.event(EventResource::Node, Action::DELETE);
                }
            }
            Msg::Pod(p) => {
                if let Some(seen) = self.relisting.get_mut(&Kind::Pod) {
                    seen.insert(p.uid.clone());
                }
                if p.is_terminal() {
                    self.pod_deleted(&p);
                } else {
                    self.pod_upsert(p);
                }
            }
            Msg::PodDeleted(p) => self.pod_deleted(&p),
            Msg::Namespace(name, labels) => {
                if let Some(seen) = self.relisting.get_mut(&Kind::Namespace) {
                    seen.insert(name.clone());
                }
                let changed = self.cache.namespaces.get(&name) != Some(&labels);
                let added = !self.cache.namespaces.contains_key(&name);
                self.cache.namespaces.insert(name, labels);
                if changed {
                    self.event(
                        EventResource::Namespace,
                        if added { Action::ADD } else { Action::UPDATE },
                    );
                }
            }
            Msg::NamespaceDeleted(name) => {
                self.cache.namespaces.remove(&name);
            }
            Msg::Pdb(key, info) => {
                if let Some(seen) = self.relisting.get_mut(&Kind::Pdb) {
                    seen.insert(key.clone());
                }
                self.cache.pdbs.insert(key, info);
            }
            Msg::PdbDeleted(key) => {
                self.cache.pdbs.remove(&key);
            }
            Msg::RelistStart(kind) => {
                self.relisting.insert(kind, HashSet::new());
            }
            Msg::RelistDone(kind) => self.relist_done(kind),
            Msg::Bound {
                uid,
                node,
                status,
                took,
            } => self.bound(uid, node, status, took),
            Msg::Stop => {}
        }
    }

    fn relist_done(&mut self, kind: Kind) {
        let Some(seen) = self.relisting.remove(&kind) else {
            return;
        };
        match kind {
            Kind::Node => {
                for name in self.cache.node_names() {
                    if !seen.contains(&name) && self.cache.delete_node(&name) {
                        self.event(EventResource::Node, Action::DELETE);
                    }
                }
            }
            Kind::Pod => {
                for uid in self.cache.confirmed_pod_uids() {
                    if !seen.contains(&uid) {
                        self.cache.remove_pod(&uid);
                        self.event(EventResource::AssignedPod, Action::DELETE);
                    }
                }
                let mut gone: Vec<String> = self.queue.uids();
                gone.extend(self.binding.keys().cloned());
                gone.retain(|u| !seen.contains(u));
                for uid in gone {
                    self.queue.delete(&uid);
                    self.nominator.remove(&uid);
                    if self.binding.remove(&uid).is_some() {
                        self.cache.forget(&uid);
                    }
                }
            }
            Kind::Namespace => self.cache.namespaces.retain(|n, _| seen.contains(n)),
            Kind::Pdb => self.cache.pdbs.retain(|k, _| seen.contains(k)),
        }
        if !self.synced.contains(&kind) {
            self.synced.insert(kind);
            tracing::info!(
                ?kind,
                nodes = self.cache.num_nodes(),
                pods = self.cache.num_pods(),
                queued = self.queue.len(),
                "synced"
            );
            if self.is_synced() {
                let _ = self.ready.send(true);
            }
        }
    }

    fn pod_upsert(&mut self, p: Arc<PodInfo>) {
        let now = Instant::now();
        if !p.node_name().is_empty() {
            // Assigned: by us (confirming an assumption) or by someone else.
            self.queue.delete(&p.uid);
            if self.nominator.node_of(&p.uid).is_some() {
                self.nominator.remove(&p.uid);
            }
            let old = self.cache.upsert_pod(p.clone());
            let action = match &old {
                None => Some(Action::ADD),
                Some(o) => {
                    let mut a = Action(0);
                    if o.labels() != p.labels() {
                        a = a.or(Action::UPDATE_POD_LABEL);
                    }
                    if p.requests.milli_cpu < o.requests.milli_cpu
                        || p.requests.memory < o.requests.memory
                    {
                        a = a.or(Action::UPDATE_POD_SCALE_DOWN);
                    }
                    (a.0 != 0).then_some(a)
                }
            };
            if let Some(a) = action {
                self.event(EventResource::AssignedPod, a);
            }
            return;
        }
        if self.cache.is_assumed(&p.uid) || self.binding.contains_key(&p.uid) {
            return;
        }
        if !self.by_name.contains_key(p.scheduler_name()) {
            return;
        }
        if p.is_terminating() {
            self.queue.delete(&p.uid);
            return;
        }
        let nominated = p.nominated_node_name();
        if !nominated.is_empty() && self.nominator.node_of(&p.uid) != Some(nominated) {
            self.nominator.set(&p, nominated);
        } else if self.nominator.node_of(&p.uid).is_some() {
            // Keep the nomination but point it at the newest version of the pod.
            if let Some(n) = self.nominator.node_of(&p.uid).map(str::to_string) {
                self.nominator.set(&p, &n);
            }
        }
        self.queue.add(p, now);
    }

    fn pod_deleted(&mut self, p: &PodInfo) {
        let was_nominated = self.nominator.node_of(&p.uid).is_some();
        if self.cache.contains_pod(&p.uid) {
            self.cache.remove_pod(&p.uid);
            self.event(EventResource::AssignedPod, Action::DELETE);
        }
        self.queue.delete(&p.uid);
        self.binding.remove(&p.uid);
        if was_nominated {
            self.nominator.remove(&p.uid);
            // Lower or equal priority pods treated it as placed: let them retry.
            let prio = p.priority;
            let only = move |q: &PodInfo| q.priority <= prio;
            self.queue.on_event(
                ClusterEvent::new(EventResource::AssignedPod, Action::DELETE),
                Instant::now(),
                Some(&only),
            );
        }
    }

    fn bound(&mut self, uid: String, node: String, status: Status, took: Duration) {
        let Some(b) = self.binding.remove(&uid) else {
            // Deleted while binding; the cache already forgot it.
            return;
        };
        self.metrics.binding_duration.observe(took);
        let pod = b.qp.info.clone();
        let profiles = self.profiles.clone();
        let fw = &profiles[b.profile];
        if status.is_success() {
            self.metrics.bound.fetch_add(1, Relaxed);
            if let Some(first) = b.qp.initial_attempt {
                self.metrics.e2e_duration.observe(first.elapsed());
            }
            tracing::debug!(ns = pod.namespace(), name = pod.name(), %node, ms = millis(took), "bound");
            self.api.event(EventReq {
                pod: pod.clone(),
                warning: false,
                reason: "Scheduled",
                action: "Binding",
                message: format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.namespace(),
                    pod.name()
                ),
                controller: fw.scheduler_name.clone(),
            });
            return;
        }
        // Upstream `handleBindingCycleError`: forget, unreserve, let others use the room.
        self.metrics.bind_failures.fetch_add(1, Relaxed);
        self.cache.forget(&uid);
        if self.cache.contains_pod(&uid) {
            // Someone else bound it meanwhile (the informer already confirmed it there).
            return;
        }
        let mut state = b.state;
        {
            let cx = Cycle {
                cache: &self.cache,
                nominator: &self.nominator,
                framework: fw,
            };
            fw.run_unreserve(&cx, &pod, &mut state, &b.node);
        }
        self.event(EventResource::AssignedPod, Action::DELETE);
        let msg = format!(
            "running Bind plugin {:?}: {}",
            status.plugin(),
            status.message()
        );
        tracing::info!(ns = pod.namespace(), name = pod.name(), %node, error = %msg, "binding failed");
        self.record_failure(
            b.qp,
            fw.scheduler_name.clone(),
            Code::Error,
            msg,
            Vec::new(),
            None,
        );
    }
}
