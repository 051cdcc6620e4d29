//! InterPodAffinity: required pod affinity and anti-affinity filter nodes by the pods already
//! in each topology domain — including existing pods' anti-affinity against the incoming pod —
//! and preferred terms (both the incoming pod's and existing pods') score them (upstream
//! `interpodaffinity`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::cache::NodeInfo;
use crate::framework::types::{AffinityTerm, NamespaceLabels, WeightedAffinityTerm};
use crate::framework::{
    Action, ClusterEvent, Cycle, EventResource, Handle, MAX_NODE_SCORE, Plugin, PodInfo, Points,
    Slot, Status,
};

pub const NAME: &str = "InterPodAffinity";

/// Upstream `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const ERR_EXISTING_ANTI: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// Upstream `ErrReasonAffinityRulesNotMatch`.
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Upstream `ErrReasonAntiAffinityRulesNotMatch`.
pub const ERR_ANTI: &str = "node(s) didn't match pod anti-affinity rules";

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default = "default_hard_weight")]
    hard_pod_affinity_weight: i64,
    #[serde(default)]
    ignore_preferred_terms_of_existing_pods: bool,
}

fn default_hard_weight() -> i64 {
    1
}

pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = serde_json::from_value(args.cloned().unwrap_or(serde_json::json!({})))
        .map_err(|e| format!("InterPodAffinityArgs: {e}"))?;
    if !(0..=100).contains(&args.hard_pod_affinity_weight) {
        return Err(format!(
            "hardPodAffinityWeight: Invalid value: {}: not in valid range [0-100]",
            args.hard_pod_affinity_weight
        ));
    }
    Ok(Arc::new(InterPodAffinity {
        hard_weight: args.hard_pod_affinity_weight,
        ignore_existing_preferred: args.ignore_preferred_terms_of_existing_pods,
    }))
}

struct InterPodAffinity {
    hard_weight: i64,
    ignore_existing_preferred: bool,
}

/// topology key → value → count (nested so lookups borrow `&str`).
type TopoCounts = HashMap<String, HashMap<String, i64>>;

fn bump(counts: &mut TopoCounts, key: &str, value: &str, delta: i64) {
    let values = match counts.get_mut(key) {
        Some(v) => v,
        None => counts.entry(key.to_string()).or_default(),
    };
    let n = match values.get_mut(value) {
        Some(n) => n,
        None => values.entry(value.to_string()).or_insert(0),
    };
    *n += delta;
    if *n == 0 {
        values.remove(value);
        if values.is_empty() {
            counts.remove(key);
        }
    }
}

/// Each anti-affinity term that matches `target` counts in `node`'s domain.
fn add_anti_terms(
    counts: &mut TopoCounts,
    terms: &[AffinityTerm],
    target: &PodInfo,
    ns: &NamespaceLabels,
    node: &NodeInfo,
    delta: i64,
) {
    for t in terms {
        if t.matches(target, ns)
            && let Some(v) = node.label(&t.topology_key)
        {
            bump(counts, &t.topology_key, v, delta);
        }
    }
}

/// When `target` matches all affinity terms, each term counts in `node`'s domain.
fn add_affinity_terms(
    counts: &mut TopoCounts,
    terms: &[AffinityTerm],
    target: &PodInfo,
    ns: &NamespaceLabels,
    node: &NodeInfo,
    delta: i64,
) {
    if terms.is_empty() || !terms.iter().all(|t| t.matches(target, ns)) {
        return;
    }
    for t in terms {
        if let Some(v) = node.label(&t.topology_key) {
            bump(counts, &t.topology_key, v, delta);
        }
    }
}

#[derive(Clone, Debug, Default)]
struct FilterState {
    /// Existing pods whose required anti-affinity matches the incoming pod.
    existing_anti: TopoCounts,
    /// Existing pods matching all of the incoming pod's required affinity terms.
    affinity: TopoCounts,
    /// Existing pods matching one of the incoming pod's required anti-affinity terms.
    anti: TopoCounts,
}

impl FilterState {
    fn update_with(
        &mut self,
        pod: &PodInfo,
        other: &PodInfo,
        node: &NodeInfo,
        ns: &NamespaceLabels,
        delta: i64,
    ) {
        add_anti_terms(
            &mut self.existing_anti,
            &other.required_anti_affinity,
            pod,
            ns,
            node,
            delta,
        );
        add_affinity_terms(
            &mut self.affinity,
            &pod.required_affinity,
            other,
            ns,
            node,
            delta,
        );
        add_anti_terms(
            &mut self.anti,
            &pod.required_anti_affinity,
            other,
            ns,
            node,
            delta,
        );
    }
}

fn get(counts: &TopoCounts, key: &str, value: &str) -> i64 {
    counts
        .get(key)
        .and_then(|m| m.get(value))
        .copied()
        .unwrap_or(0)
}

#[derive(Clone, Debug, Default)]
struct ScoreState {
    /// topology key → value → score.
    topo: HashMap<String, HashMap<String, i64>>,
}

impl ScoreState {
    fn add_term(
        &mut self,
        term: &AffinityTerm,
        weight: i64,
        target: &PodInfo,
        ns: &NamespaceLabels,
        node: &NodeInfo,
    ) {
        if weight == 0 || !term.matches(target, ns) {
            return;
        }
        if let Some(v) = node.label(&term.topology_key) {
            *self
                .topo
                .entry(term.topology_key.clone())
                .or_default()
                .entry(v.to_string())
                .or_insert(0) += weight;
        }
    }

    fn add_weighted(
        &mut self,
        terms: &[WeightedAffinityTerm],
        sign: i64,
        target: &PodInfo,
        ns: &NamespaceLabels,
        node: &NodeInfo,
    ) {
        for t in terms {
            self.add_term(&t.term, i64::from(t.weight) * sign, target, ns, node);
        }
    }
}

impl InterPodAffinity {
    /// Upstream `processExistingPod`.
    fn process_existing(
        &self,
        s: &mut ScoreState,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
        ns: &NamespaceLabels,
    ) {
        if node.labels().is_empty() {
            return;
        }
        s.add_weighted(&pod.preferred_affinity, 1, existing, ns, node);
        s.add_weighted(&pod.preferred_anti_affinity, -1, existing, ns, node);
        if self.hard_weight > 0 {
            for t in &existing.required_affinity {
                s.add_term(t, self.hard_weight, pod, ns, node);
            }
        }
        if !self.ignore_existing_preferred {
            s.add_weighted(&existing.preferred_affinity, 1, pod, ns, node);
            s.add_weighted(&existing.preferred_anti_affinity, -1, pod, ns, node);
        }
    }
}

impl Plugin for InterPodAffinity {
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
                    .or(Action::UPDATE_NODE_LABEL)
                    .or(Action::UPDATE_NODE_TAINT),
            ),
            ClusterEvent::new(EventResource::Namespace, Action::ADD.or(Action::UPDATE)),
        ]
    }

    fn pre_filter(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot) -> Status {
        if let Some(e) = &pod.parse_error {
            return Status::unresolvable(format!("parsing pod: {e}"));
        }
        let ns = &cx.cache.namespaces;
        let mut s = FilterState::default();
        for node in cx.cache.nodes_with_required_anti_affinity() {
            for existing in &node.pods_with_required_anti_affinity {
                if existing.uid != pod.uid {
                    add_anti_terms(
                        &mut s.existing_anti,
                        &existing.required_anti_affinity,
                        pod,
                        ns,
                        node,
                        1,
                    );
                }
            }
        }
        if !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty() {
            for &i in cx.cache.order() {
                let node = cx.cache.node(i);
                for existing in &node.pods {
                    if existing.uid == pod.uid {
                        continue;
                    }
                    add_affinity_terms(
                        &mut s.affinity,
                        &pod.required_affinity,
                        existing,
                        ns,
                        node,
                        1,
                    );
                    add_anti_terms(
                        &mut s.anti,
                        &pod.required_anti_affinity,
                        existing,
                        ns,
                        node,
                        1,
                    );
                }
            }
        }
        if s.existing_anti.is_empty()
            && pod.required_affinity.is_empty()
            && pod.required_anti_affinity.is_empty()
        {
            return Status::skip();
        }
        state.put(s);
        Status::success()
    }

    fn add_pod(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut Slot,
        added: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.get_mut::<FilterState>() {
            s.update_with(pod, added, node, &cx.cache.namespaces, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        cx: &Cycle,
        pod: &PodInfo,
        state: &mut Slot,
        removed: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.get_mut::<FilterState>() {
            s.update_with(pod, removed, node, &cx.cache.namespaces, -1);
        }
        Status::success()
    }

    fn filter(&self, cx: &Cycle, pod: &PodInfo, state: &Slot, node: &NodeInfo) -> Status {
        let Some(s) = state.get::<FilterState>() else {
            return Status::error("InterPodAffinity: no PreFilter state");
        };
        // Required affinity: every term's domain must hold a matching pod, unless no pod in
        // the cluster matches and the pod matches its own terms (the first of a group).
        if !pod.required_affinity.is_empty() {
            let mut pods_exist = true;
            for t in &pod.required_affinity {
                match node.label(&t.topology_key) {
                    Some(v) => {
                        if get(&s.affinity, &t.topology_key, v) <= 0 {
                            pods_exist = false;
                        }
                    }
                    None => return Status::unresolvable(ERR_AFFINITY),
                }
            }
            // The first of a group: no pod anywhere matches, but the pod matches its own
            // terms.
            let first_of_group = s.affinity.is_empty()
                && pod
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(pod, &cx.cache.namespaces));
            if !pods_exist && !first_of_group {
                return Status::unresolvable(ERR_AFFINITY);
            }
        }
        if !s.anti.is_empty() {
            for t in &pod.required_anti_affinity {
                if let Some(v) = node.label(&t.topology_key)
                    && get(&s.anti, &t.topology_key, v) > 0
                {
                    return Status::unschedulable(ERR_ANTI);
                }
            }
        }
        if !s.existing_anti.is_empty() {
            for (k, values) in &s.existing_anti {
                if node
                    .label(k)
                    .is_some_and(|v| values.get(v).is_some_and(|n| *n > 0))
                {
                    return Status::unschedulable(ERR_EXISTING_ANTI);
                }
            }
        }
        Status::success()
    }

    fn pre_score(&self, cx: &Cycle, pod: &PodInfo, state: &mut Slot, _nodes: &[usize]) -> Status {
        let has_constraints =
            !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if self.ignore_existing_preferred && !has_constraints {
            return Status::skip();
        }
        let ns = &cx.cache.namespaces;
        let mut s = ScoreState::default();
        if has_constraints {
            for &i in cx.cache.order() {
                let node = cx.cache.node(i);
                for existing in &node.pods {
                    self.process_existing(&mut s, pod, existing, node, ns);
                }
            }
        } else {
            for node in cx.cache.nodes_with_affinity() {
                for existing in &node.pods_with_affinity {
                    self.process_existing(&mut s, pod, existing, node, ns);
                }
            }
        }
        if s.topo.is_empty() {
            return Status::skip();
        }
        state.put(s);
        Status::success()
    }

    fn score(
        &self,
        _cx: &Cycle,
        _pod: &PodInfo,
        state: &Slot,
        node: &NodeInfo,
    ) -> Result<i64, Status> {
        let Some(s) = state.get::<ScoreState>() else {
            return Ok(0);
        };
        Ok(s.topo
            .iter()
            .filter_map(|(k, values)| node.label(k).and_then(|v| values.get(v)))
            .sum())
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
        if state.get::<ScoreState>().is_none() {
            return Status::success();
        }
        let min = scores.iter().copied().min().unwrap_or(0);
        let max = scores.iter().copied().max().unwrap_or(0);
        let diff = max - min;
        for v in scores.iter_mut() {
            *v = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((*v - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::framework::Code;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn host(name: &str, zone: &str) -> Arc<k8s_openapi::api::core::v1::Node> {
        simple_node(
            name,
            json!({"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}),
            "8",
            "8Gi",
        )
    }

    fn labelled(name: &str, node: &str, labels: serde_json::Value) -> PodInfo {
        pod(json!({"metadata": {"name": name, "labels": labels}, "spec": {"nodeName": node}}))
    }

    fn with_affinity(
        kind: &str,
        key: &str,
        labels: serde_json::Value,
        own: serde_json::Value,
    ) -> PodInfo {
        pod(
            json!({"metadata": {"name": "new", "labels": own}, "spec": {"affinity": {kind: {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}}}),
        )
    }

    fn filter_all(c: &Cache, pd: &PodInfo) -> Vec<Code> {
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        with_cycle(c, |cx| {
            let mut slot = Slot::default();
            let pre = p.pre_filter(cx, pd, &mut slot);
            if pre.is_skip() {
                return c.order().iter().map(|_| Code::Success).collect();
            }
            assert!(pre.is_success(), "{pre}");
            c.order()
                .iter()
                .map(|&i| p.filter(cx, pd, &slot, c.node(i)).code())
                .collect()
        })
    }

    #[test]
    fn required_anti_affinity_one_per_host() {
        let c = cache_with(
            vec![host("n1", "a"), host("n2", "a"), host("n3", "b")],
            vec![labelled("x", "n1", json!({"app": "db"}))],
        );
        let pd = with_affinity(
            "podAntiAffinity",
            "kubernetes.io/hostname",
            json!({"app": "db"}),
            json!({"app": "db"}),
        );
        assert_eq!(
            filter_all(&c, &pd),
            [Code::Unschedulable, Code::Success, Code::Success]
        );
        // Zone-wide anti-affinity rules out the whole zone.
        let pd = with_affinity(
            "podAntiAffinity",
            "topology.kubernetes.io/zone",
            json!({"app": "db"}),
            json!({}),
        );
        let codes = filter_all(&c, &pd);
        let names: Vec<&str> = c.order().iter().map(|&i| c.node(i).name.as_str()).collect();
        for (n, code) in names.iter().zip(codes) {
            assert_eq!(code == Code::Success, *n == "n3", "{n}");
        }
    }

    #[test]
    fn existing_pods_anti_affinity_is_symmetric() {
        let existing = pod(
            json!({"metadata": {"name": "x", "labels": {"app": "db"}}, "spec": {"nodeName": "n1",
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"role": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}}}),
        );
        let c = cache_with(vec![host("n1", "a"), host("n2", "a")], vec![existing]);
        let web = pod(json!({"metadata": {"name": "w", "labels": {"role": "web"}}}));
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let got = with_cycle(&c, |cx| {
            let mut slot = Slot::default();
            assert!(p.pre_filter(cx, &web, &mut slot).is_success());
            let n1 = c.node_by_name("n1").expect("n1");
            p.filter(cx, &web, &slot, n1)
        });
        assert_eq!(got.reasons(), [ERR_EXISTING_ANTI]);
        let other = pod(json!({"metadata": {"name": "o", "labels": {"role": "batch"}}}));
        assert!(with_cycle(&c, |cx| p.pre_filter(cx, &other, &mut Slot::default())).is_skip());
    }

    #[test]
    fn required_affinity_and_first_pod_of_a_group() {
        let c = cache_with(
            vec![host("n1", "a"), host("n2", "b")],
            vec![labelled("cache", "n2", json!({"app": "cache"}))],
        );
        let pd = with_affinity(
            "podAffinity",
            "topology.kubernetes.io/zone",
            json!({"app": "cache"}),
            json!({}),
        );
        let codes = filter_all(&c, &pd);
        assert_eq!(codes, [Code::UnschedulableAndUnresolvable, Code::Success]);
        // No pod matches anywhere, but the pod matches its own term: allowed anywhere.
        let c = cache_with(vec![host("n1", "a"), host("n2", "b")], vec![]);
        let pd = with_affinity(
            "podAffinity",
            "topology.kubernetes.io/zone",
            json!({"app": "g"}),
            json!({"app": "g"}),
        );
        assert_eq!(filter_all(&c, &pd), [Code::Success, Code::Success]);
        let pd = with_affinity(
            "podAffinity",
            "topology.kubernetes.io/zone",
            json!({"app": "g"}),
            json!({}),
        );
        assert_eq!(filter_all(&c, &pd), [Code::UnschedulableAndUnresolvable; 2]);
    }

    #[test]
    fn preferred_terms_score() {
        let c = cache_with(
            vec![host("n1", "a"), host("n2", "b"), host("n3", "c")],
            vec![
                labelled("web", "n1", json!({"app": "web"})),
                labelled("noisy", "n2", json!({"app": "noisy"})),
            ],
        );
        let pd = pod(json!({"metadata": {"name": "p"}, "spec": {"affinity": {
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "topology.kubernetes.io/zone"}}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "noisy"}}, "topologyKey": "topology.kubernetes.io/zone"}}]}}}}));
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
            assert!(p.pre_score(cx, &pd, &mut slot, &nodes).is_success());
            let mut s: Vec<i64> = nodes
                .iter()
                .map(|&i| p.score(cx, &pd, &slot, c.node(i)).expect("score"))
                .collect();
            assert_eq!(s, [10, -5, 0]);
            p.normalize_score(cx, &pd, &slot, &mut s);
            s
        });
        assert_eq!(scores, [100, 0, 33]);
    }

    #[test]
    fn add_and_remove_pod_update_counts() {
        let c = cache_with(
            vec![host("n1", "a")],
            vec![labelled("x", "n1", json!({"app": "db"}))],
        );
        let pd = with_affinity(
            "podAntiAffinity",
            "kubernetes.io/hostname",
            json!({"app": "db"}),
            json!({}),
        );
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let n1 = c.node_by_name("n1").expect("n1");
        let victim = labelled("x", "n1", json!({"app": "db"}));
        with_cycle(&c, |cx| {
            let mut slot = Slot::default();
            assert!(p.pre_filter(cx, &pd, &mut slot).is_success());
            assert_eq!(p.filter(cx, &pd, &slot, n1).code(), Code::Unschedulable);
            p.remove_pod(cx, &pd, &mut slot, &victim, n1);
            assert!(p.filter(cx, &pd, &slot, n1).is_success());
            p.add_pod(cx, &pd, &mut slot, &victim, n1);
            assert_eq!(p.filter(cx, &pd, &slot, n1).code(), Code::Unschedulable);
        });
    }
}
