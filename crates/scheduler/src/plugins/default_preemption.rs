//! DefaultPreemption: when a pod fits nowhere, find a node where deleting lower-priority pods
//! makes it fit, preferring victims whose PodDisruptionBudgets allow the disruption, and
//! nominate that node (upstream `defaultpreemption` and `preemption.Evaluator`).
//!
//! The plugin decides; the scheduler carries out the API calls after the cycle (mark the
//! victims `DisruptionTarget`, delete them, clear lower-priority nominations, set the
//! preemptor's `status.nominatedNodeName`). The preemptor is retried once the victims are
//! gone and fits its nominated node, which lower-priority pods now treat as taken.

use std::cmp::Ordering;
use std::sync::Arc;

use rand::Rng;
use serde::Deserialize;

use crate::cache::{Cache, NodeInfo, PdbInfo};
use crate::framework::diagnosis::{Diagnosis, FitError};
use crate::framework::{
    Code, Cycle, CycleState, Handle, Plugin, PodInfo, Points, PostFilterResult, Status,
};

pub const NAME: &str = "DefaultPreemption";

pub const MSG_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const MSG_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const MSG_POLICY_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const MSG_TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default = "default_pct")]
    min_candidate_nodes_percentage: i64,
    #[serde(default = "default_abs")]
    min_candidate_nodes_absolute: i64,
}

fn default_pct() -> i64 {
    10
}

fn default_abs() -> i64 {
    100
}

pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = serde_json::from_value(args.cloned().unwrap_or(serde_json::json!({})))
        .map_err(|e| format!("DefaultPreemptionArgs: {e}"))?;
    if !(0..=100).contains(&args.min_candidate_nodes_percentage) {
        return Err(format!(
            "minCandidateNodesPercentage: Invalid value: {}: not in valid range [0, 100]",
            args.min_candidate_nodes_percentage
        ));
    }
    if args.min_candidate_nodes_absolute < 0 {
        return Err(format!(
            "minCandidateNodesAbsolute: Invalid value: {}: not in valid range [0, inf)",
            args.min_candidate_nodes_absolute
        ));
    }
    Ok(Arc::new(DefaultPreemption {
        min_pct: args.min_candidate_nodes_percentage,
        min_abs: args.min_candidate_nodes_absolute,
    }))
}

struct DefaultPreemption {
    min_pct: i64,
    min_abs: i64,
}

struct Candidate {
    node: usize,
    /// Most important first.
    victims: Vec<Arc<PodInfo>>,
    pdb_violations: usize,
}

/// Upstream `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (a.start_time(), b.start_time()) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

/// Splits pods by whether deleting them (in order) would exceed a matching budget
/// (upstream `filterPodsWithPDBViolation`).
fn split_by_pdb(pods: Vec<Arc<PodInfo>>, cache: &Cache) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let pdbs: Vec<&PdbInfo> = cache.pdbs.values().collect();
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut ok) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if !p.labels().is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.namespace != p.namespace()
                    || pdb.selector.is_empty()
                    || !pdb.selector.matches(p.labels())
                    || pdb.disrupted_pods.iter().any(|n| n == p.name())
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p);
        } else {
            ok.push(p);
        }
    }
    (violating, ok)
}

/// Whether a pod is being deleted because the scheduler preempted it.
fn terminating_by_preemption(p: &PodInfo) -> bool {
    p.is_terminating()
        && p.pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "DisruptionTarget"
                        && c.reason.as_deref() == Some("PreemptionByScheduler")
                })
            })
}

impl DefaultPreemption {
    fn num_candidates(&self, potential: usize) -> usize {
        let n = potential as i64 * self.min_pct / 100;
        (n.max(self.min_abs) as usize).min(potential)
    }

    /// Upstream `PodEligibleToPreemptOthers`.
    fn eligible(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        diagnosis: &Diagnosis,
    ) -> Result<(), &'static str> {
        let spec = pod.pod.spec.as_ref();
        if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return Err(MSG_POLICY_NEVER);
        }
        let nominated = cx
            .nominator
            .node_of(&pod.uid)
            .unwrap_or(pod.nominated_node_name());
        if nominated.is_empty() {
            return Ok(());
        }
        let Some(slot) = cx.cache.node_index(nominated) else {
            return Ok(());
        };
        if diagnosis
            .status_of(slot)
            .is_some_and(|s| s.code() == Code::UnschedulableAndUnresolvable)
        {
            return Ok(());
        }
        let node = cx.cache.node(slot);
        if node
            .pods
            .iter()
            .any(|p| p.priority < pod.priority && terminating_by_preemption(p))
        {
            return Err(MSG_TERMINATING);
        }
        Ok(())
    }

    /// Upstream `SelectVictimsOnNode`: remove every lower-priority pod; if the pod then fits,
    /// add back as many as possible, budget-violating ones first, most important first.
    fn select_victims(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        node: &NodeInfo,
    ) -> Result<(Vec<Arc<PodInfo>>, usize), Status> {
        let fw = cx.framework;
        let mut state = state.clone();
        let mut node = node.clone();
        let mut potential: Vec<Arc<PodInfo>> = Vec::new();
        for p in node.pods.clone() {
            if p.priority < pod.priority {
                node.remove_pod(&p.uid);
                let s = fw.run_remove_pod(cx, pod, &mut state, &p, &node);
                if !s.is_success() {
                    return Err(s);
                }
                potential.push(p);
            }
        }
        if potential.is_empty() {
            return Err(Status::unresolvable(MSG_NO_VICTIMS));
        }
        let s = fw.run_filters_with_nominated(cx, pod, &state, &node);
        if !s.is_success() {
            return Err(s);
        }
        potential.sort_by(|a, b| more_important(a, b));
        let (violating, ok) = split_by_pdb(potential, cx.cache);
        let mut victims = Vec::new();
        let mut violations = 0;
        let mut reprieve = |p: Arc<PodInfo>, violates: bool| -> Result<(), Status> {
            node.add_pod(p.clone());
            let s = fw.run_add_pod(cx, pod, &mut state, &p, &node);
            if !s.is_success() {
                return Err(s);
            }
            if !fw
                .run_filters_with_nominated(cx, pod, &state, &node)
                .is_success()
            {
                node.remove_pod(&p.uid);
                let s = fw.run_remove_pod(cx, pod, &mut state, &p, &node);
                if !s.is_success() {
                    return Err(s);
                }
                if violates {
                    violations += 1;
                }
                victims.push(p);
            }
            Ok(())
        };
        for p in violating {
            reprieve(p, true)?;
        }
        for p in ok {
            reprieve(p, false)?;
        }
        victims.sort_by(|a, b| more_important(a, b));
        Ok((victims, violations))
    }
}

/// Upstream `pickOneNodeForPreemption`, criterion by criterion.
fn pick_one(candidates: &[Candidate]) -> usize {
    let mut best: Vec<usize> = (0..candidates.len()).collect();
    let mut narrow = |key: &dyn Fn(&Candidate) -> i128| {
        let min = best.iter().map(|&i| key(&candidates[i])).min().unwrap_or(0);
        best.retain(|&i| key(&candidates[i]) == min);
    };
    narrow(&|c| c.pdb_violations as i128);
    narrow(&|c| {
        c.victims
            .first()
            .map_or(i128::MIN, |v| i128::from(v.priority))
    });
    narrow(&|c| {
        c.victims
            .iter()
            .map(|v| i128::from(v.priority) + i128::from(i32::MAX) + 1)
            .sum()
    });
    narrow(&|c| c.victims.len() as i128);
    // The latest start among each node's highest-priority victims wins (disturb the
    // youngest work).
    narrow(&|c| {
        let top = c.victims.first().map_or(i32::MIN, |v| v.priority);
        let earliest = c
            .victims
            .iter()
            .filter(|v| v.priority == top)
            .filter_map(|v| v.start_time())
            .min();
        earliest.map_or(i128::MAX, |t| -t.as_nanosecond())
    });
    best.first().copied().unwrap_or(0)
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::POST_FILTER
    }

    fn post_filter(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &CycleState,
        diagnosis: &Diagnosis,
    ) -> (Option<PostFilterResult>, Status) {
        if let Err(msg) = self.eligible(cx, pod, diagnosis) {
            return (None, Status::unschedulable(format!("preemption: {msg}")));
        }
        let cache = cx.cache;
        let potential: Vec<usize> = cache
            .order()
            .iter()
            .copied()
            .filter(|&i| {
                diagnosis
                    .status_of(i)
                    .is_none_or(|s| s.code() != Code::UnschedulableAndUnresolvable)
            })
            .collect();
        let mut tried = Diagnosis {
            absent: Some(Status::unresolvable(MSG_NOT_HELPFUL)),
            ..Default::default()
        };
        let mut candidates: Vec<Candidate> = Vec::new();
        if !potential.is_empty() {
            let want = self.num_candidates(potential.len());
            let offset = rand::rng().random_range(0..potential.len());
            let mut non_violating = 0;
            for k in 0..potential.len() {
                let slot = potential[(offset + k) % potential.len()];
                match self.select_victims(cx, pod, state, cache.node(slot)) {
                    Ok((victims, violations)) if !victims.is_empty() => {
                        if violations == 0 {
                            non_violating += 1;
                        }
                        candidates.push(Candidate {
                            node: slot,
                            victims,
                            pdb_violations: violations,
                        });
                        if non_violating > 0 && candidates.len() >= want {
                            break;
                        }
                    }
                    Ok(_) => tried.statuses.push((
                        slot,
                        Status::error(format!(
                            "expected at least one victim pod on node {:?}",
                            cache.node(slot).name
                        )),
                    )),
                    Err(s) => tried.statuses.push((slot, s)),
                }
            }
        }
        if candidates.is_empty() {
            let fe = FitError {
                num_all_nodes: cache.num_nodes(),
                diagnosis: tried,
            };
            let result = PostFilterResult {
                nominated_node: Some(String::new()),
                ..Default::default()
            };
            return (
                Some(result),
                Status::unschedulable(format!("preemption: {}", fe.nested_message())),
            );
        }
        // Prefer candidates that violate no budget (upstream keeps both lists, non-violating
        // first); `pick_one` ranks by violations first anyway.
        let best = &candidates[pick_one(&candidates)];
        let node_name = cache.node(best.node).name.clone();
        let clear_nominated = cx
            .nominator
            .pods_on(&node_name)
            .iter()
            .filter(|p| p.uid != pod.uid && p.priority < pod.priority)
            .cloned()
            .collect();
        (
            Some(PostFilterResult {
                nominated_node: Some(node_name),
                victims: best.victims.clone(),
                clear_nominated,
            }),
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerConfig;
    use crate::framework::Nominator;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn prio_pod(name: &str, node: &str, prio: i32, cpu: &str) -> PodInfo {
        pod(json!({"metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": node, "priority": prio,
                "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
    }

    /// Runs a full filter pass and then PostFilter with the default profile.
    fn preempt(cache: &Cache, pod: &PodInfo) -> (Option<PostFilterResult>, Status) {
        let cfg = SchedulerConfig::default();
        let fw = &cfg.build().expect("profiles")[0];
        let nominator = Nominator::default();
        let cx = Cycle {
            cache,
            nominator: &nominator,
            framework: fw,
        };
        let mut state = fw.new_cycle_state();
        assert!(fw.run_pre_filter(&cx, pod, &mut state).is_success());
        let mut d = Diagnosis::default();
        for &i in cache.order() {
            let s = fw.run_filters_with_nominated(&cx, pod, &state, cache.node(i));
            assert!(
                !s.is_success(),
                "expected {} not to fit",
                cache.node(i).name
            );
            d.add_plugin(s.plugin());
            d.statuses.push((i, s));
        }
        fw.run_post_filter(&cx, pod, &state, &d)
    }

    #[test]
    fn preempts_the_lowest_priority_pods_needed() {
        let c = cache_with(
            vec![simple_node("n1", json!({}), "2", "4Gi")],
            vec![
                prio_pod("low", "n1", 0, "1"),
                prio_pod("mid", "n1", 50, "1"),
            ],
        );
        let (r, s) = preempt(&c, &prio_pod("high", "", 100, "1"));
        assert!(s.is_success(), "{s}");
        let r = r.expect("result");
        assert_eq!(r.nominated_node.as_deref(), Some("n1"));
        let names: Vec<&str> = r.victims.iter().map(|v| v.name()).collect();
        assert_eq!(names, ["low"]);
    }

    #[test]
    fn no_lower_priority_pods_means_no_victims() {
        let c = cache_with(
            vec![simple_node("n1", json!({}), "1", "4Gi")],
            vec![prio_pod("same", "n1", 100, "1")],
        );
        let (r, s) = preempt(&c, &prio_pod("p", "", 100, "1"));
        assert_eq!(
            s.message(),
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod"
        );
        assert_eq!(r.and_then(|r| r.nominated_node), Some(String::new()));
    }

    #[test]
    fn unresolvable_nodes_are_not_helpful() {
        let tainted = node(
            json!({"metadata": {"name": "t"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "8", "pods": "10"}}}),
        );
        let c = cache_with(vec![tainted], vec![prio_pod("low", "t", 0, "1")]);
        let (_, s) = preempt(&c, &prio_pod("p", "", 100, "1"));
        assert_eq!(
            s.message(),
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling"
        );
        let never = pod(
            json!({"metadata": {"name": "n"}, "spec": {"priority": 100, "preemptionPolicy": "Never",
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "8"}}}]}}),
        );
        let c = cache_with(vec![simple_node("n1", json!({}), "1", "1Gi")], vec![]);
        let (_, s) = preempt(&c, &never);
        assert_eq!(s.message(), format!("preemption: {MSG_POLICY_NEVER}"));
    }

    #[test]
    fn budgets_steer_the_choice_of_node() {
        let mut c = cache_with(
            vec![
                simple_node("a", json!({}), "1", "4Gi"),
                simple_node("b", json!({}), "1", "4Gi"),
            ],
            vec![
                prio_pod("guarded", "a", 0, "1"),
                prio_pod("free", "b", 0, "1"),
            ],
        );
        c.pdbs.insert(
            "default/pdb".into(),
            PdbInfo {
                namespace: "default".into(),
                selector: apimachinery::selector::label::LabelSelector::parse("app=guarded")
                    .expect("selector"),
                disruptions_allowed: 0,
                disrupted_pods: vec![],
            },
        );
        let (r, s) = preempt(&c, &prio_pod("p", "", 10, "1"));
        assert!(s.is_success());
        assert_eq!(r.expect("result").nominated_node.as_deref(), Some("b"));
    }

    #[test]
    fn pick_one_prefers_fewer_and_lower_victims() {
        let v = |name: &str, prio: i32| Arc::new(prio_pod(name, "n", prio, "1"));
        let cands = vec![
            Candidate {
                node: 0,
                victims: vec![v("a", 10)],
                pdb_violations: 0,
            },
            Candidate {
                node: 1,
                victims: vec![v("b", 5), v("c", 5)],
                pdb_violations: 0,
            },
            Candidate {
                node: 2,
                victims: vec![v("d", 5)],
                pdb_violations: 0,
            },
        ];
        assert_eq!(pick_one(&cands), 2);
    }
}
