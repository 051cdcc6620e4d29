//! PodTopologySpread: keep matching pods spread across topology domains (upstream
//! `podtopologyspread`). `DoNotSchedule` constraints filter — a node is rejected when placing
//! the pod would make its domain exceed the global minimum by more than `maxSkew`, where the
//! minimum counts as 0 while fewer than `minDomains` domains exist — and `ScheduleAnyway`
//! constraints score. `nodeAffinityPolicy` (default Honor) and `nodeTaintsPolicy` (default
//! Ignore) decide which nodes' domains count.

use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde::Deserialize;

use super::helper::{
    find_untolerated, is_do_not_schedule, pod_tolerations, required_node_affinity_matches,
};
use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, MAX_NODE_SCORE, Plugin, PodInfo, Points,
    Slot, Status,
};

pub const NAME: &str = "PodTopologySpread";

/// Upstream `ErrReasonConstraintsNotMatch`.
pub const ERR_REASON_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
/// Upstream `ErrReasonNodeLabelNotMatch`.
pub const ERR_REASON_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const HOSTNAME: &str = "kubernetes.io/hostname";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    default_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default)]
    defaulting_type: Option<String>,
}

pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = match args {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("PodTopologySpreadArgs: {e}"))?
        }
        None => Args::default(),
    };
    match args.defaulting_type.as_deref() {
        None | Some("System" | "List") => {}
        Some(other) => {
            return Err(format!(
                "defaultingType: Unsupported value: \"{other}\": supported values: \"List\", \"System\""
            ));
        }
    }
    if args.defaulting_type.as_deref() == Some("System") && !args.default_constraints.is_empty() {
        return Err("defaultConstraints: Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty".into());
    }
    Ok(Arc::new(PodTopologySpread))
}

struct PodTopologySpread;

/// A parsed constraint (upstream `topologySpreadConstraint`).
#[derive(Clone, Debug)]
struct Constraint {
    max_skew: i32,
    topology_key: String,
    selector: LabelSelector,
    min_domains: i32,
    honor_affinity: bool,
    honor_taints: bool,
}

impl Constraint {
    /// Whether `node`'s domain counts for `pod` under the inclusion policies.
    fn includes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        (!self.honor_affinity || required_node_affinity_matches(pod, node))
            && (!self.honor_taints
                || find_untolerated(node.taints(), pod_tolerations(pod), is_do_not_schedule)
                    .is_none())
    }
}

fn constraints(pod: &PodInfo, action: &str) -> Result<Vec<Constraint>, String> {
    let list = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_deref())
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for c in list.iter().filter(|c| c.when_unsatisfiable == action) {
        let mut sel = c.label_selector.clone();
        // matchLabelKeys: the pod's own values join the selector (upstream merges them).
        if let Some(s) = sel.as_mut() {
            for key in c.match_label_keys.iter().flatten() {
                if let Some(v) = pod.labels().get(key) {
                    s.match_expressions.get_or_insert_with(Vec::new).push(
                        metav1::LabelSelectorRequirement {
                            key: key.clone(),
                            operator: "In".into(),
                            values: Some(vec![v.clone()]),
                        },
                    );
                }
            }
        }
        let selector = LabelSelector::from_api(sel.as_ref()).map_err(|e| e.to_string())?;
        out.push(Constraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1),
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        });
    }
    Ok(out)
}

fn has_all_keys(node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| node.label(&c.topology_key).is_some())
}

/// Matching pods on `node`: same namespace, not terminating (upstream
/// `countPodsMatchSelector`).
fn count_matching(node: &NodeInfo, selector: &LabelSelector, ns: &str) -> i32 {
    node.pods
        .iter()
        .filter(|p| !p.is_terminating() && p.namespace() == ns && selector.matches(p.labels()))
        .count() as i32
}

/// The two smallest domains (upstream `criticalPaths`, with its approximation).
#[derive(Clone, Debug)]
struct Critical([(String, i32); 2]);

impl Critical {
    fn new() -> Critical {
        Critical([(String::new(), i32::MAX), (String::new(), i32::MAX)])
    }

    fn update(&mut self, value: &str, num: i32) {
        let p = &mut self.0;
        let i = if value == p[0].0 {
            Some(0)
        } else if value == p[1].0 {
            Some(1)
        } else {
            None
        };
        match i {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None if num < p[0].1 => {
                p[1] = p[0].clone();
                p[0] = (value.to_string(), num);
            }
            None if num < p[1].1 => p[1] = (value.to_string(), num),
            None => {}
        }
    }
}

#[derive(Clone, Debug)]
struct FilterState {
    constraints: Arc<Vec<Constraint>>,
    counts: Vec<HashMap<String, i32>>,
    critical: Vec<Critical>,
}

impl FilterState {
    fn update_with(&mut self, pod: &PodInfo, other: &PodInfo, node: &NodeInfo, delta: i32) {
        if other.namespace() != pod.namespace() || !has_all_keys(node, &self.constraints) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if !c.selector.matches(other.labels()) || !c.includes(&pod.pod, node) {
                continue;
            }
            let v = node.label(&c.topology_key).unwrap_or("");
            let n = {
                let e = self.counts[i].entry(v.to_string()).or_insert(0);
                *e += delta;
                *e
            };
            self.critical[i].update(v, n);
        }
    }
}

#[derive(Clone, Debug)]
struct ScoreState {
    constraints: Arc<Vec<Constraint>>,
    /// Per feasible node (same order as scoring): whether it lacks a topology key.
    ignored: Vec<bool>,
    /// Per constraint, non-hostname domains of feasible nodes → matching pods cluster-wide.
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::PRE_FILTER
            .or(Points::FILTER)
            .or(Points::PRE_SCORE)
            .or(Points::SCORE)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(
                EventResource::AssignedPod,
                Action::ADD.or(Action::UPDATE_POD_LABEL).or(Action::DELETE),
            ),
            ClusterEvent::new(
                EventResource::Node,
                Action::ADD
                    .or(Action::DELETE)
                    .or(Action::UPDATE_NODE_LABEL)
                    .or(Action::UPDATE_NODE_TAINT),
            ),
        ]
    }

    fn pre_filter(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot) -> Status {
        let cs = match constraints(pod, "DoNotSchedule") {
            Ok(cs) => cs,
            Err(e) => {
                return Status::error(format!(
                    "obtaining pod's hard topology spread constraints: {e}"
                ));
            }
        };
        if cs.is_empty() {
            return Status::skip();
        }
        let mut counts: Vec<HashMap<String, i32>> = vec![HashMap::new(); cs.len()];
        let ns = pod.namespace();
        for &i in cx.cache.order() {
            let node = cx.cache.node(i);
            if !has_all_keys(node, &cs) {
                continue;
            }
            for (k, c) in cs.iter().enumerate() {
                if !c.includes(&pod.pod, node) {
                    continue;
                }
                let v = node.label(&c.topology_key).unwrap_or("");
                let n = count_matching(node, &c.selector, ns);
                match counts[k].get_mut(v) {
                    Some(x) => *x += n,
                    None => {
                        counts[k].insert(v.to_string(), n);
                    }
                }
            }
        }
        let critical = counts
            .iter()
            .map(|m| {
                let mut cp = Critical::new();
                for (v, n) in m {
                    cp.update(v, *n);
                }
                cp
            })
            .collect();
        state.put(FilterState {
            constraints: Arc::new(cs),
            counts,
            critical,
        });
        Status::success()
    }

    fn add_pod(
        &self,
        _cx: &Cycle,
        pod: &PodInfo,
        state: &mut Slot,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.get_mut::<FilterState>() {
            s.update_with(pod, added, node, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        _cx: &Cycle,
        pod: &PodInfo,
        state: &mut Slot,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.get_mut::<FilterState>() {
            s.update_with(pod, removed, node, -1);
        }
        Status::success()
    }

    fn filter(&self, _cx: &Cycle, pod: &PodInfo, state: &Slot, node: &NodeInfo) -> Status {
        let Some(s) = state.get::<FilterState>() else {
            return Status::error("PodTopologySpread: no PreFilter state");
        };
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.label(&c.topology_key) else {
                return Status::unresolvable(ERR_REASON_LABEL);
            };
            let min = if (s.counts[i].len() as i64) < i64::from(c.min_domains) {
                0
            } else {
                s.critical[i].0[0].1
            };
            let self_match = i32::from(c.selector.matches(pod.labels()));
            let matched = s.counts[i].get(v).copied().unwrap_or(0);
            if i64::from(matched) + i64::from(self_match) - i64::from(min) > i64::from(c.max_skew) {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS);
            }
        }
        Status::success()
    }

    fn pre_score(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot, nodes: &[usize]) -> Status {
        let cs = match constraints(pod, "ScheduleAnyway") {
            Ok(cs) => cs,
            Err(e) => {
                return Status::error(format!(
                    "obtaining pod's soft topology spread constraints: {e}"
                ));
            }
        };
        if cs.is_empty() || cx.cache.num_nodes() == 0 {
            return Status::skip();
        }
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); cs.len()];
        let mut ignored = Vec::with_capacity(nodes.len());
        for &i in nodes {
            let node = cx.cache.node(i);
            let skip = !has_all_keys(node, &cs);
            ignored.push(skip);
            if skip {
                continue;
            }
            for (k, c) in cs.iter().enumerate() {
                if c.topology_key == HOSTNAME {
                    continue;
                }
                let v = node.label(&c.topology_key).unwrap_or("");
                if !counts[k].contains_key(v) {
                    counts[k].insert(v.to_string(), 0);
                }
            }
        }
        let scored = ignored.iter().filter(|x| !**x).count();
        let weights = cs
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let size = if c.topology_key == HOSTNAME {
                    scored
                } else {
                    counts[k].len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        let ns = pod.namespace();
        for &i in cx.cache.order() {
            let node = cx.cache.node(i);
            if !has_all_keys(node, &cs) {
                continue;
            }
            for (k, c) in cs.iter().enumerate() {
                if c.topology_key == HOSTNAME || !c.includes(&pod.pod, node) {
                    continue;
                }
                let v = node.label(&c.topology_key).unwrap_or("");
                if let Some(total) = counts[k].get_mut(v) {
                    *total += i64::from(count_matching(node, &c.selector, ns));
                }
            }
        }
        state.put(ScoreState {
            constraints: Arc::new(cs),
            ignored,
            counts,
            weights,
        });
        Status::success()
    }

    fn score(
        &self,
        _cx: &Cycle,
        pod: &PodInfo,
        state: &Slot,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let Some(s) = state.get::<ScoreState>() else {
            return Ok(0);
        };
        if !has_all_keys(node, &s.constraints) {
            return Ok(0);
        }
        let mut score = 0f64;
        for (k, c) in s.constraints.iter().enumerate() {
            let Some(v) = node.label(&c.topology_key) else {
                continue;
            };
            let cnt = if c.topology_key == HOSTNAME {
                i64::from(count_matching(node, &c.selector, pod.namespace()))
            } else {
                s.counts[k].get(v).copied().unwrap_or(0)
            };
            score += cnt as f64 * s.weights[k] + f64::from(c.max_skew - 1);
        }
        Ok(score.round() as i64)
    }

    fn has_normalize(&self) -> bool {
        true
    }

    fn normalize_score(
        &self,
        _cx: &Cycle,
        _pod: &PodInfo,
        state: &Slot,
        scores: &mut [i64],
    ) -> Status {
        let Some(s) = state.get::<ScoreState>() else {
            return Status::success();
        };
        let live = || {
            scores
                .iter()
                .zip(&s.ignored)
                .filter(|(_, ig)| !**ig)
                .map(|(v, _)| *v)
        };
        let min = live().min().unwrap_or(0);
        let max = live().max().unwrap_or(0);
        for (v, ig) in scores.iter_mut().zip(&s.ignored) {
            *v = if *ig {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *v) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn zone_node(name: &str, zone: &str) -> Arc<k8s_openapi::api::core::v1::Node> {
        simple_node(
            name,
            json!({"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name}),
            "8",
            "8Gi",
        )
    }

    fn app_pod(name: &str, node: &str) -> PodInfo {
        pod(
            json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": {"nodeName": node}}),
        )
    }

    fn spread_pod(extra: serde_json::Value) -> PodInfo {
        let mut c = json!({"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}});
        if let (Some(m), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        pod(
            json!({"metadata": {"name": "new", "labels": {"app": "web"}},
            "spec": {"topologySpreadConstraints": [c]}}),
        )
    }

    fn run_filter(c: &crate::cache::Cache, pd: &PodInfo) -> Vec<(String, Code)> {
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        with_cycle(c, |cx| {
            let mut slot = Slot::default();
            assert!(p.pre_filter(cx, pd, &mut slot).is_success());
            c.order()
                .iter()
                .map(|&i| {
                    let n = c.node(i);
                    (n.name.clone(), p.filter(cx, pd, &slot, n).code())
                })
                .collect()
        })
    }

    #[test]
    fn max_skew_across_zones() {
        // a: 2 pods, b: 1, c: 0 → only zone c (and b at skew 2 - 0 > 1? b: 1+1-0 = 2) → only c.
        let c = cache_with(
            vec![
                zone_node("a1", "a"),
                zone_node("b1", "b"),
                zone_node("c1", "c"),
            ],
            vec![app_pod("x", "a1"), app_pod("y", "a1"), app_pod("z", "b1")],
        );
        let got = run_filter(&c, &spread_pod(json!({})));
        assert_eq!(
            got,
            [
                ("a1".into(), Code::Unschedulable),
                ("b1".into(), Code::Unschedulable),
                ("c1".into(), Code::Success)
            ]
        );
    }

    #[test]
    fn min_domains_treats_missing_domains_as_empty() {
        // Two zones with one pod each; minDomains 3 → global minimum 0 → adding a third pod
        // anywhere gives skew 2 > 1: all rejected.
        let c = cache_with(
            vec![zone_node("a1", "a"), zone_node("b1", "b")],
            vec![app_pod("x", "a1"), app_pod("y", "b1")],
        );
        let got = run_filter(&c, &spread_pod(json!({"minDomains": 3})));
        assert!(
            got.iter().all(|(_, code)| *code == Code::Unschedulable),
            "{got:?}"
        );
        let got = run_filter(&c, &spread_pod(json!({})));
        assert!(
            got.iter().all(|(_, code)| *code == Code::Success),
            "{got:?}"
        );
    }

    #[test]
    fn node_without_the_key_is_unresolvable_and_affinity_policy() {
        let bare = simple_node("bare", json!({}), "1", "1Gi");
        let c = cache_with(vec![zone_node("a1", "a"), bare], vec![app_pod("x", "a1")]);
        let got = run_filter(&c, &spread_pod(json!({})));
        assert_eq!(got[1], ("bare".into(), Code::UnschedulableAndUnresolvable));

        // With nodeAffinityPolicy Honor (default), a zone the pod cannot use does not count
        // toward the minimum.
        let c = cache_with(
            vec![zone_node("a1", "a"), zone_node("b1", "b")],
            vec![app_pod("x", "a1"), app_pod("y", "a1")],
        );
        let mut pd = spread_pod(json!({}));
        let spec = pd.pod.spec.as_mut().expect("spec");
        spec.node_selector =
            Some([("kubernetes.io/hostname".to_string(), "a1".to_string())].into());
        assert_eq!(run_filter(&c, &pd)[0].1, Code::Success);
        let mut pd = spread_pod(json!({"nodeAffinityPolicy": "Ignore"}));
        pd.pod.spec.as_mut().expect("spec").node_selector =
            Some([("kubernetes.io/hostname".to_string(), "a1".to_string())].into());
        assert_eq!(run_filter(&c, &pd)[0].1, Code::Unschedulable);
    }

    #[test]
    fn schedule_anyway_prefers_emptier_domains() {
        let c = cache_with(
            vec![
                zone_node("a1", "a"),
                zone_node("b1", "b"),
                zone_node("c1", "c"),
            ],
            vec![app_pod("x", "a1"), app_pod("y", "a1"), app_pod("z", "b1")],
        );
        let pd = spread_pod(json!({"whenUnsatisfiable": "ScheduleAnyway"}));
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let nodes = c.order().to_vec();
        let scores = with_cycle(&c, |cx| {
            let mut slot = Slot::default();
            assert!(p.pre_filter(cx, &pd, &mut Slot::default()).is_skip());
            assert!(p.pre_score(cx, &pd, &mut slot, &nodes).is_success());
            let mut s: Vec<i64> = nodes
                .iter()
                .map(|&i| p.score(cx, &pd, &slot, c.node(i)).expect("score"))
                .collect();
            p.normalize_score(cx, &pd, &slot, &mut s);
            s
        });
        assert!(scores[2] > scores[1] && scores[1] > scores[0], "{scores:?}");
        assert_eq!(scores[2], MAX_NODE_SCORE);
    }

    #[test]
    fn critical_paths_track_two_minimums() {
        let mut cp = Critical::new();
        for (v, n) in [("a", 3), ("b", 1), ("c", 2)] {
            cp.update(v, n);
        }
        assert_eq!(cp.0[0], ("b".to_string(), 1));
        cp.update("b", 4);
        assert_eq!(cp.0[0], ("c".to_string(), 2));
    }
}
