//! One profile's plugins, arranged per extension point, and the calls that run them
//! (upstream `frameworkImpl`).

use std::sync::Arc;

use super::diagnosis::Diagnosis;
use super::status::{Code, Status};
use super::types::PodInfo;
use super::{Cycle, Plugin, PostFilterResult, Slot};
use crate::cache::NodeInfo;

/// Per-cycle state: one slot per plugin plus which plugins skip Filter/Score this cycle.
#[derive(Clone, Default)]
pub struct CycleState {
    pub slots: Vec<Slot>,
    skip_filter: Vec<bool>,
    skip_score: Vec<bool>,
}

/// A scoring plugin and its weight.
#[derive(Clone, Copy, Debug)]
pub struct Scored {
    pub plugin: usize,
    pub weight: i64,
}

/// A profile: its name and the plugins enabled at each extension point, in order.
pub struct Framework {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub(crate) plugins: Vec<Arc<dyn Plugin>>,
    pub(crate) pre_filter: Vec<usize>,
    pub(crate) filter: Vec<usize>,
    pub(crate) post_filter: Vec<usize>,
    pub(crate) pre_score: Vec<usize>,
    pub(crate) score: Vec<Scored>,
    pub(crate) reserve: Vec<usize>,
    pub(crate) bind: Vec<usize>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names =
            |v: &[usize]| -> Vec<&str> { v.iter().map(|&i| self.plugins[i].name()).collect() };
        f.debug_struct("Framework")
            .field("scheduler_name", &self.scheduler_name)
            .field("pre_filter", &names(&self.pre_filter))
            .field("filter", &names(&self.filter))
            .field("post_filter", &names(&self.post_filter))
            .field("pre_score", &names(&self.pre_score))
            .field(
                "score",
                &self
                    .score
                    .iter()
                    .map(|s| (self.plugins[s.plugin].name(), s.weight))
                    .collect::<Vec<_>>(),
            )
            .field("reserve", &names(&self.reserve))
            .field("bind", &names(&self.bind))
            .finish()
    }
}

impl Framework {
    pub fn plugin(&self, i: usize) -> &Arc<dyn Plugin> {
        &self.plugins[i]
    }

    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// Names per extension point, for logs and tests.
    pub fn filter_names(&self) -> Vec<&'static str> {
        self.filter
            .iter()
            .map(|&i| self.plugins[i].name())
            .collect()
    }

    pub fn score_weights(&self) -> Vec<(&'static str, i64)> {
        self.score
            .iter()
            .map(|s| (self.plugins[s.plugin].name(), s.weight))
            .collect()
    }

    pub fn post_filter_names(&self) -> Vec<&'static str> {
        self.post_filter
            .iter()
            .map(|&i| self.plugins[i].name())
            .collect()
    }

    pub fn bind_names(&self) -> Vec<&'static str> {
        self.bind.iter().map(|&i| self.plugins[i].name()).collect()
    }

    pub fn new_cycle_state(&self) -> CycleState {
        let n = self.plugins.len();
        CycleState {
            slots: (0..n).map(|_| Slot::default()).collect(),
            skip_filter: vec![false; n],
            skip_score: vec![false; n],
        }
    }

    /// Runs PreFilter. On rejection returns the status with the plugin that gave it.
    pub fn run_pre_filter(&self, cx: &Cycle, pod: &PodInfo, state: &mut CycleState) -> Status {
        for &i in &self.pre_filter {
            let p = &self.plugins[i];
            let s = p.pre_filter(cx, pod, &mut state.slots[i]);
            match s.code() {
                Code::Success => {}
                Code::Skip => state.skip_filter[i] = true,
                _ => return s.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Runs the Filter plugins on one node, stopping at the first rejection (whose status
    /// names the plugin).
    pub fn run_filters(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        node: &NodeInfo,
    ) -> Status {
        for &i in &self.filter {
            if state.skip_filter[i] {
                continue;
            }
            let p = &self.plugins[i];
            let s = p.filter(cx, pod, &state.slots[i], node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filters as upstream's `RunFilterPluginsWithNominatedPods`: pods nominated to this node
    /// with at least this pod's priority count as placed; the node must fit with them and,
    /// then, without them (a nominated pod might never come).
    pub fn run_filters_with_nominated(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        node: &NodeInfo,
    ) -> Status {
        let nominated = cx.nominator.pods_on(&node.name);
        if nominated
            .iter()
            .any(|p| p.uid != pod.uid && p.priority >= pod.priority)
        {
            let mut state2 = state.clone();
            let mut node2 = node.clone();
            for p in nominated {
                if p.uid == pod.uid || p.priority < pod.priority {
                    continue;
                }
                node2.add_pod(p.clone());
                let s = self.run_add_pod(cx, pod, &mut state2, p, &node2);
                if !s.is_success() {
                    return s;
                }
            }
            let s = self.run_filters(cx, pod, &state2, &node2);
            if !s.is_success() {
                return s;
            }
        }
        self.run_filters(cx, pod, state, node)
    }

    pub fn run_add_pod(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut CycleState,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        self.run_pre_filter_extensions(state, |p, slot| p.add_pod(cx, pod, slot, added, node))
    }

    pub fn run_remove_pod(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut CycleState,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        self.run_pre_filter_extensions(state, |p, slot| p.remove_pod(cx, pod, slot, removed, node))
    }

    /// Calls `f` on every PreFilter plugin this cycle did not skip, stopping at the first
    /// failure (upstream `RunPreFilterExtensionAddPod`/`RemovePod`).
    fn run_pre_filter_extensions(
        &self,
        state: &mut CycleState,
        mut f: impl FnMut(&dyn Plugin, &mut Slot) -> Status,
    ) -> Status {
        for &i in &self.pre_filter {
            if state.skip_filter[i] {
                continue;
            }
            let p = &self.plugins[i];
            let s = f(p.as_ref(), &mut state.slots[i]);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs PostFilter plugins until one succeeds (upstream `RunPostFilterPlugins`): returns
    /// the first success, else the rejections' reasons joined.
    pub fn run_post_filter(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        diagnosis: &Diagnosis,
    ) -> (Option<PostFilterResult>, Status) {
        let mut reasons = Vec::new();
        let mut result = None;
        for &i in &self.post_filter {
            let p = &self.plugins[i];
            let (r, s) = p.post_filter(cx, pod, state, diagnosis);
            if s.is_success() {
                return (r, s);
            }
            if !s.is_rejected() {
                return (r, s.with_plugin(p.name()));
            }
            if r.is_some() {
                result = r;
            }
            reasons.extend(s.reasons().iter().cloned());
        }
        (result, Status::with_reasons(Code::Unschedulable, reasons))
    }

    /// Runs PreScore on the feasible nodes; returns an error status if one fails.
    pub fn run_pre_score(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut CycleState,
        nodes: &[usize],
    ) -> Status {
        for &i in &self.pre_score {
            let p = &self.plugins[i];
            let s = p.pre_score(cx, pod, &mut state.slots[i], nodes);
            match s.code() {
                Code::Success => {}
                Code::Skip => state.skip_score[i] = true,
                _ => return s.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Scores every node in `nodes` with every non-skipped Score plugin, normalizes and
    /// weights, and writes the totals into `totals` (same order as `nodes`). `scratch` is a
    /// reusable buffer.
    pub fn run_score(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        nodes: &[usize],
        totals: &mut Vec<i64>,
        scratch: &mut Vec<i64>,
    ) -> Status {
        totals.clear();
        totals.resize(nodes.len(), 0);
        for sc in &self.score {
            if state.skip_score[sc.plugin] {
                continue;
            }
            let p = &self.plugins[sc.plugin];
            let slot = &state.slots[sc.plugin];
            scratch.clear();
            for &n in nodes {
                match p.score(cx, pod, slot, cx.cache.node(n)) {
                    Ok(v) => scratch.push(v),
                    Err(s) => return s.with_plugin(p.name()),
                }
            }
            if p.has_normalize() {
                let s = p.normalize_score(cx, pod, slot, scratch);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
            for (t, v) in totals.iter_mut().zip(scratch.iter()) {
                *t += v * sc.weight;
            }
        }
        Status::success()
    }

    pub fn has_score_plugins(&self) -> bool {
        !self.score.is_empty()
    }

    pub fn run_reserve(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut CycleState,
        node: &str,
    ) -> Status {
        for (k, &i) in self.reserve.iter().enumerate() {
            let p = &self.plugins[i];
            let s = p.reserve(cx, pod, &mut state.slots[i], node);
            if !s.is_success() {
                // Unreserve the ones that reserved, in reverse.
                for &j in self.reserve[..k].iter().rev() {
                    self.plugins[j].unreserve(cx, pod, &mut state.slots[j], node);
                }
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_unreserve(&self, cx: &Cycle, pod: &PodInfo, state: &mut CycleState, node: &str) {
        for &i in self.reserve.iter().rev() {
            self.plugins[i].unreserve(cx, pod, &mut state.slots[i], node);
        }
    }

    /// The bind plugins, in order (run off-thread by the binder).
    pub fn binders(&self) -> Vec<Arc<dyn Plugin>> {
        self.bind.iter().map(|&i| self.plugins[i].clone()).collect()
    }
}
