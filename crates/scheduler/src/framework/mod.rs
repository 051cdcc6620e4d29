//! The scheduling framework: the plugin interface, per-cycle state, and the runner that
//! calls plugins at each extension point (upstream `pkg/scheduler/framework`).
//!
//! # Layout
//! - `status.rs`: [`Status`] and its [`Code`].
//! - `types.rs`: [`PodInfo`] (a pod plus what is derived from it once).
//! - `events.rs`: cluster events plugins register to re-queue the pods they rejected.
//! - `runtime.rs`: [`Framework`], one profile's plugins per extension point.
//! - `diagnosis.rs`: why a pod fit nowhere, and upstream's `0/N nodes are available` text.
//!
//! A plugin implements [`Plugin`]: every extension point has a default that does nothing, and
//! [`Plugin::points`] says which ones the plugin really implements (for `multiPoint`).

pub mod diagnosis;
pub mod events;
pub mod runtime;
pub mod status;
pub mod types;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use diagnosis::{Diagnosis, FitError};
pub use events::{Action, ClusterEvent, Resource as EventResource};
pub use runtime::{CycleState, Framework};
pub use status::{Code, Status};
pub use types::PodInfo;

use crate::cache::{Cache, NodeInfo};

/// Upstream `framework.MaxNodeScore`: every score plugin's normalized range is 0..=100.
pub const MAX_NODE_SCORE: i64 = 100;

/// A bit set of extension points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Points(pub u16);

impl Points {
    pub const PRE_ENQUEUE: Points = Points(1);
    pub const QUEUE_SORT: Points = Points(1 << 1);
    pub const PRE_FILTER: Points = Points(1 << 2);
    pub const FILTER: Points = Points(1 << 3);
    pub const POST_FILTER: Points = Points(1 << 4);
    pub const PRE_SCORE: Points = Points(1 << 5);
    pub const SCORE: Points = Points(1 << 6);
    pub const RESERVE: Points = Points(1 << 7);
    pub const PERMIT: Points = Points(1 << 8);
    pub const PRE_BIND: Points = Points(1 << 9);
    pub const BIND: Points = Points(1 << 10);
    pub const POST_BIND: Points = Points(1 << 11);
    pub const NONE: Points = Points(0);

    pub const fn or(self, o: Points) -> Points {
        Points(self.0 | o.0)
    }

    pub fn has(self, o: Points) -> bool {
        self.0 & o.0 == o.0
    }
}

/// Data a plugin keeps for one cycle (upstream `StateData`). Cloned when preemption simulates
/// removing pods from a node.
pub trait StateData: Any + Send + Sync {
    fn clone_data(&self) -> Box<dyn StateData>;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
}

/// One plugin's state for the current cycle; a plugin only ever sees its own slot.
#[derive(Default)]
pub struct Slot(Option<Box<dyn StateData>>);

impl Clone for Slot {
    fn clone(&self) -> Self {
        Slot(self.0.as_ref().map(|b| (**b).clone_data()))
    }
}

impl Slot {
    pub fn put<T: StateData>(&mut self, v: T) {
        self.0 = Some(Box::new(v));
    }

    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0
            .as_deref()
            .and_then(|b| (b as &dyn Any).downcast_ref())
    }

    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.0
            .as_deref_mut()
            .and_then(|b| (b as &mut dyn Any).downcast_mut())
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}

/// Pods another pod preempted room for, by node (upstream's nominator). Filters treat
/// nominated pods of equal or higher priority as already placed.
#[derive(Debug, Default)]
pub struct Nominator {
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    by_pod: HashMap<String, String>,
}

impl Nominator {
    /// Records (or with `""` clears) `pod`'s nominated node.
    pub fn set(&mut self, pod: &Arc<PodInfo>, node: &str) {
        self.remove(&pod.uid);
        if node.is_empty() {
            return;
        }
        self.by_node
            .entry(node.to_string())
            .or_default()
            .push(pod.clone());
        self.by_pod.insert(pod.uid.clone(), node.to_string());
    }

    pub fn remove(&mut self, uid: &str) {
        if let Some(node) = self.by_pod.remove(uid)
            && let Some(list) = self.by_node.get_mut(&node)
        {
            list.retain(|p| p.uid != uid);
            if list.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    pub fn pods_on(&self, node: &str) -> &[Arc<PodInfo>] {
        self.by_node.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.by_pod.is_empty()
    }

    pub fn node_of(&self, uid: &str) -> Option<&str> {
        self.by_pod.get(uid).map(String::as_str)
    }
}

/// What plugins may read during a cycle.
pub struct Cycle<'a> {
    pub cache: &'a Cache,
    pub nominator: &'a Nominator,
    /// The profile running the cycle (preemption re-runs its filters).
    pub framework: &'a Framework,
}

/// What a PostFilter plugin asks the scheduler to do (upstream `PostFilterResult` plus the
/// API calls `prepareCandidate` makes, which run after the cycle).
#[derive(Debug, Default)]
pub struct PostFilterResult {
    /// `Some("")` clears the pod's nominated node; `Some(node)` nominates it.
    pub nominated_node: Option<String>,
    /// Pods to delete so the preemptor fits.
    pub victims: Vec<Arc<PodInfo>>,
    /// Lower-priority pods nominated to the same node, whose nomination is cleared.
    pub clear_nominated: Vec<Arc<PodInfo>>,
}

/// A scheduler plugin. Each method is one extension point; see [`Plugin::points`].
#[allow(unused_variables)]
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// The extension points this plugin implements.
    fn points(&self) -> Points;

    /// Cluster events that could make a pod this plugin rejected schedulable.
    fn events(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    /// Once per cycle before filtering. `Skip` drops this plugin's Filter for the cycle; a
    /// rejection makes the pod unschedulable on every node.
    fn pre_filter(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot) -> Status {
        Status::success()
    }

    /// PreFilter extension: `added` is now (hypothetically) on `node`.
    fn add_pod(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut Slot,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        Status::success()
    }

    /// PreFilter extension: `removed` is (hypothetically) gone from `node`.
    fn remove_pod(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut Slot,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        Status::success()
    }

    /// Whether `pod` may run on `node`. Called for many nodes per cycle: keep it cheap.
    fn filter(&self, cx: &Cycle, pod: &PodInfo, state: &Slot, node: &NodeInfo) -> Status {
        Status::success()
    }

    /// After no node fit (preemption).
    fn post_filter(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        diagnosis: &Diagnosis,
    ) -> (Option<PostFilterResult>, Status) {
        (None, Status::code_only(Code::Unschedulable))
    }

    /// Once per cycle before scoring, with the feasible nodes (cache slots). `Skip` drops
    /// this plugin's Score for the cycle.
    fn pre_score(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot, nodes: &[usize]) -> Status {
        Status::success()
    }

    /// A raw score for one feasible node.
    fn score(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &Slot,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        Ok(0)
    }

    /// Whether [`Plugin::normalize_score`] does anything.
    fn has_normalize(&self) -> bool {
        false
    }

    /// Maps the raw scores of all scored nodes into 0..=[`MAX_NODE_SCORE`].
    fn normalize_score(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &Slot,
        scores: &mut [i64],
    ) -> Status {
        Status::success()
    }

    fn reserve(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot, node: &str) -> Status {
        Status::success()
    }

    fn unreserve(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot, node: &str) {}

    /// Binds the pod (runs off the scheduling thread). `Skip` passes to the next binder.
    fn bind(
        &self,
        client: kube::Client,
        pod: Arc<PodInfo>,
        node: String,
    ) -> BoxFuture<'static, Status> {
        Box::pin(async { Status::skip() })
    }
}

/// What a plugin factory receives besides its args.
#[derive(Clone, Debug)]
pub struct Handle {
    /// The profile's `schedulerName`.
    pub profile: String,
}
