//! One scheduling attempt (upstream `scheduleOne`): filter with early exit, score a
//! sample, assume and hand off the binding; on failure, PostFilter and the recorded reason.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use rand::Rng;

use super::{Binding, Buffers, Failure, Loop, num_feasible_nodes_to_find};
use crate::api::EventReq;
use crate::cache::Cache;
use crate::framework::{
    Code, Cycle, CycleState, Diagnosis, FitError, Framework, Nominator, PodInfo, Status,
};
use crate::queue::QueuedPod;

impl Loop {
    pub(super) fn schedule_one(&mut self, qp: QueuedPod) {
        let pod = qp.info.clone();
        let Some(&pi) = self.by_name.get(pod.scheduler_name()) else {
            return;
        };
        if pod.is_terminating() || self.cache.contains_pod(&pod.uid) {
            return;
        }
        let start = Instant::now();
        self.cache.refresh();
        let profiles = self.profiles.clone();
        let fw = &profiles[pi];
        let mut state = fw.new_cycle_state();
        let pct = fw
            .percentage_of_nodes_to_score
            .or((self.pct_global > 0).then_some(self.pct_global));
        let result = find_node(
            &self.cache,
            &self.nominator,
            fw,
            &pod,
            &mut state,
            &mut self.bufs,
            &mut self.next_start,
            pct,
        );
        match result {
            Ok(slot) => {
                let node = self.cache.node(slot).name.clone();
                self.cache.assume(pod.clone(), &node);
                let reserve = {
                    let cx = Cycle {
                        cache: &self.cache,
                        nominator: &self.nominator,
                        framework: fw,
                    };
                    fw.run_reserve(&cx, &pod, &mut state, &node)
                };
                if !reserve.is_success() {
                    self.cache.forget(&pod.uid);
                    let msg = format!(
                        "running Reserve plugin {:?}: {}",
                        reserve.plugin(),
                        reserve.message()
                    );
                    let code = if reserve.is_rejected() {
                        Code::Unschedulable
                    } else {
                        Code::Error
                    };
                    self.record_failure(
                        qp,
                        fw.scheduler_name.clone(),
                        code,
                        msg,
                        vec![reserve.plugin()],
                        None,
                    );
                    return;
                }
                self.nominator.remove(&pod.uid);
                self.metrics.scheduled.fetch_add(1, Relaxed);
                self.metrics.attempt_duration.observe(start.elapsed());
                tracing::trace!(ns = pod.namespace(), name = pod.name(), %node, "assumed");
                self.binding.insert(
                    pod.uid.clone(),
                    Binding {
                        qp,
                        profile: pi,
                        state,
                        node: node.clone(),
                    },
                );
                self.api.bind(fw.binders(), pod, node);
            }
            Err(Failure::NoNodes) => {
                self.metrics.attempt_duration.observe(start.elapsed());
                self.record_failure(
                    qp,
                    fw.scheduler_name.clone(),
                    Code::Unschedulable,
                    "no nodes available to schedule pods".into(),
                    Vec::new(),
                    None,
                );
            }
            Err(Failure::Error(s)) => {
                self.metrics.attempt_duration.observe(start.elapsed());
                let msg = s.message();
                self.record_failure(
                    qp,
                    fw.scheduler_name.clone(),
                    Code::Error,
                    msg,
                    Vec::new(),
                    None,
                );
            }
            Err(Failure::Fit(mut fe)) => {
                let (result, status) = {
                    let cx = Cycle {
                        cache: &self.cache,
                        nominator: &self.nominator,
                        framework: fw,
                    };
                    if fw.post_filter.is_empty() {
                        (None, Status::code_only(Code::Unschedulable))
                    } else {
                        self.metrics.preemption_attempts.fetch_add(1, Relaxed);
                        fw.run_post_filter(&cx, &pod, &state, &fe.diagnosis)
                    }
                };
                fe.diagnosis.post_filter_msg = if status.is_success() {
                    String::new()
                } else {
                    status.message().trim_end_matches('.').to_string()
                };
                let mut nominated = None;
                if let Some(r) = result {
                    match r.nominated_node.as_deref() {
                        Some("") => {
                            if self.nominator.node_of(&pod.uid).is_some()
                                || !pod.nominated_node_name().is_empty()
                            {
                                nominated = Some(String::new());
                            }
                            self.nominator.remove(&pod.uid);
                        }
                        Some(n) => {
                            self.nominator.set(&pod, n);
                            nominated = Some(n.to_string());
                            self.metrics
                                .preemption_victims
                                .fetch_add(r.victims.len() as u64, Relaxed);
                            for v in r.victims {
                                tracing::info!(preemptor = %pod.key(), victim = %v.key(), node = n, "preempting");
                                self.api.preempt(v, &pod, n, &fw.scheduler_name);
                            }
                            for other in r.clear_nominated {
                                self.nominator.remove(&other.uid);
                                self.api.clear_nominated(&other);
                            }
                        }
                        None => {}
                    }
                }
                self.metrics.attempt_duration.observe(start.elapsed());
                let plugins = fe.diagnosis.unschedulable_plugins.clone();
                let msg = fe.message();
                self.record_failure(
                    qp,
                    fw.scheduler_name.clone(),
                    Code::Unschedulable,
                    msg,
                    plugins,
                    nominated,
                );
            }
        }
    }

    /// Upstream `handleSchedulingFailure`: requeue, record the event and the condition.
    pub(super) fn record_failure(
        &mut self,
        qp: QueuedPod,
        profile: String,
        code: Code,
        message: String,
        plugins: Vec<&'static str>,
        nominated: Option<String>,
    ) {
        let pod = qp.info.clone();
        let now = Instant::now();
        // The queue may hold a newer version of the pod by now (updates during binding).
        let reason = if code == Code::Error {
            self.metrics.errors.fetch_add(1, Relaxed);
            self.queue.add_backoff(qp, now);
            "SchedulerError"
        } else {
            self.metrics.unschedulable.fetch_add(1, Relaxed);
            self.queue.add_unschedulable(qp, plugins, now);
            "Unschedulable"
        };
        tracing::debug!(ns = pod.namespace(), name = pod.name(), reason, %message, "unable to schedule pod");
        self.api.event(EventReq {
            pod: pod.clone(),
            warning: true,
            reason: "FailedScheduling",
            action: "Scheduling",
            message: message.clone(),
            controller: profile,
        });
        self.api
            .update_failed_condition(&pod, reason, &message, nominated.as_deref());
    }
}

/// Filters the nodes (starting where the last attempt stopped, stopping once enough fit),
/// scores the feasible ones and picks the best (ties at random). Returns the node's slot.
#[allow(clippy::too_many_arguments)]
fn find_node(
    cache: &Cache,
    nominator: &Nominator,
    fw: &Framework,
    pod: &PodInfo,
    state: &mut CycleState,
    bufs: &mut Buffers,
    next_start: &mut usize,
    pct: Option<i32>,
) -> Result<usize, Failure> {
    let n = cache.num_nodes();
    if n == 0 {
        return Err(Failure::NoNodes);
    }
    let cx = Cycle {
        cache,
        nominator,
        framework: fw,
    };
    let pre = fw.run_pre_filter(&cx, pod, state);
    if !pre.is_success() {
        if !pre.is_rejected() {
            return Err(Failure::Error(pre));
        }
        let mut d = Diagnosis {
            pre_filter_msg: Some(pre.message()),
            ..Default::default()
        };
        d.add_plugin(pre.plugin());
        d.absent = Some(pre);
        return Err(Failure::Fit(Box::new(FitError {
            num_all_nodes: n,
            diagnosis: d,
        })));
    }
    let filter = |node| {
        if nominator.is_empty() {
            fw.run_filters(&cx, pod, state, node)
        } else {
            fw.run_filters_with_nominated(&cx, pod, state, node)
        }
    };
    // A pod that preempted room on a node tries that node first (upstream
    // `evaluateNominatedNode`).
    let nominated = nominator
        .node_of(&pod.uid)
        .unwrap_or(pod.nominated_node_name());
    if !nominated.is_empty()
        && let Some(i) = cache.node_index(nominated)
        && filter(cache.node(i)).is_success()
    {
        return Ok(i);
    }
    let want = num_feasible_nodes_to_find(pct, n);
    let order = cache.order();
    let start = *next_start % n;
    bufs.feasible.clear();
    let mut diagnosis = Diagnosis::default();
    let mut processed = 0;
    for k in 0..n {
        let slot = order[(start + k) % n];
        processed += 1;
        let s = filter(cache.node(slot));
        if s.is_success() {
            bufs.feasible.push(slot);
            if bufs.feasible.len() >= want {
                break;
            }
        } else if s.is_rejected() {
            diagnosis.add_plugin(s.plugin());
            diagnosis.statuses.push((slot, s));
        } else {
            return Err(Failure::Error(s));
        }
    }
    *next_start = (start + processed) % n;
    if bufs.feasible.is_empty() {
        return Err(Failure::Fit(Box::new(FitError {
            num_all_nodes: n,
            diagnosis,
        })));
    }
    if bufs.feasible.len() == 1 {
        return Ok(bufs.feasible[0]);
    }
    let s = fw.run_pre_score(&cx, pod, state, &bufs.feasible);
    if !s.is_success() {
        return Err(Failure::Error(s));
    }
    let s = fw.run_score(
        &cx,
        pod,
        state,
        &bufs.feasible,
        &mut bufs.totals,
        &mut bufs.scratch,
    );
    if !s.is_success() {
        return Err(Failure::Error(s));
    }
    Ok(select_host(&bufs.feasible, &bufs.totals))
}

/// The highest total; ties broken uniformly at random (upstream's reservoir sampling).
fn select_host(nodes: &[usize], totals: &[i64]) -> usize {
    let mut best = 0;
    let mut ties = 0u32;
    let mut rng = rand::rng();
    for i in 0..nodes.len() {
        let score = totals.get(i).copied().unwrap_or(0);
        let top = totals.get(best).copied().unwrap_or(0);
        if i == 0 || score > top {
            best = i;
            ties = 1;
        } else if score == top {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_nodes_to_find_is_adaptive() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        // 100 nodes: 50% would be 50, but at least 100 are looked at.
        assert_eq!(num_feasible_nodes_to_find(None, 100), 100);
        // 5000 nodes: 50 - 40 = 10% → 500.
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        // 10000 nodes: 50 - 80 < 5 → 5% → 500.
        assert_eq!(num_feasible_nodes_to_find(None, 10_000), 500);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
        assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
    }

    #[test]
    fn select_host_takes_the_top_score() {
        assert_eq!(select_host(&[7, 8, 9], &[10, 30, 20]), 8);
        for _ in 0..20 {
            let h = select_host(&[1, 2, 3], &[5, 5, 1]);
            assert!(h == 1 || h == 2);
        }
    }
}
