//! Matching shared by several plugins: node selector terms (upstream
//! `component-helpers/scheduling/corev1/nodeaffinity`) and taints against tolerations
//! (`FindMatchingUntoleratedTaint`), plus score normalization.

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

use crate::cache::NodeInfo;
use crate::framework::MAX_NODE_SCORE;

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => !values.is_empty() && value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !values.is_empty() && !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => values.is_empty() && value.is_some(),
        "DoesNotExist" => values.is_empty() && value.is_none(),
        op @ ("Gt" | "Lt") => {
            let ([want], Some(have)) = (values, value) else {
                return false;
            };
            match (have.parse::<i64>(), want.parse::<i64>()) {
                (Ok(h), Ok(w)) if op == "Gt" => h > w,
                (Ok(h), Ok(w)) => h < w,
                _ => false,
            }
        }
        _ => false,
    }
}

/// One term: all expressions on labels and all fields (`metadata.name` only) hold. A term
/// with neither matches nothing, as upstream.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.label(&r.key)))
        && fields.iter().all(|r| {
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && requirement_matches(r, Some(&node.name))
        })
}

/// Terms are ORed.
pub fn terms_match(terms: &[NodeSelectorTerm], node: &NodeInfo) -> bool {
    terms.iter().any(|t| term_matches(t, node))
}

/// Upstream `GetRequiredNodeAffinity(pod).Match(node)`: `spec.nodeSelector` and the required
/// node affinity terms.
pub fn required_node_affinity_matches(pod: &Pod, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| node.label(k) == Some(v.as_str()))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(sel) => terms_match(&sel.node_selector_terms, node),
        None => true,
    }
}

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// Taints that keep new pods off a node.
pub fn is_do_not_schedule(taint: &Taint) -> bool {
    taint.effect == "NoSchedule" || taint.effect == "NoExecute"
}

/// The first taint accepted by `filter` that no toleration tolerates.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// Upstream `helper.DefaultNormalizeScore`: scales to 0..=max by the highest score, optionally
/// reversed (then all-zero scores become max).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for plugin tests.
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Node;
    use serde_json::{Value, json};

    use crate::cache::{Cache, NodeInfo};
    use crate::framework::types::PodInfo;
    use crate::framework::{Cycle, Framework, Nominator};

    pub fn node(v: Value) -> Arc<Node> {
        Arc::new(serde_json::from_value(v).expect("node json"))
    }

    /// A node with `name`, labels and allocatable cpu/memory/pods.
    pub fn simple_node(name: &str, labels: Value, cpu: &str, memory: &str) -> Arc<Node> {
        node(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}
        }))
    }

    pub fn node_info(n: Arc<Node>) -> NodeInfo {
        let mut ni = NodeInfo::new(n.metadata.name.as_deref().unwrap_or(""));
        ni.set_node(n);
        ni
    }

    pub fn pod(v: Value) -> PodInfo {
        let mut v = v;
        if v["metadata"]["namespace"].is_null() {
            v["metadata"]["namespace"] = json!("default");
        }
        if v["metadata"]["uid"].is_null() {
            let name = v["metadata"]["name"].as_str().unwrap_or("p").to_string();
            v["metadata"]["uid"] = json!(format!("uid-{name}"));
        }
        if v["spec"]["containers"].is_null() {
            v["spec"]["containers"] = json!([{"name": "c", "image": "busybox"}]);
        }
        PodInfo::new(serde_json::from_value(v).expect("pod json"), |_| None)
    }

    /// A pod with one container requesting `cpu` and `memory` (empty = none).
    pub fn pod_req(name: &str, cpu: &str, memory: &str) -> PodInfo {
        let mut req = serde_json::Map::new();
        if !cpu.is_empty() {
            req.insert("cpu".into(), json!(cpu));
        }
        if !memory.is_empty() {
            req.insert("memory".into(), json!(memory));
        }
        pod(json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": req}}]}}))
    }

    pub fn empty_framework() -> Framework {
        Framework {
            scheduler_name: "default-scheduler".into(),
            percentage_of_nodes_to_score: None,
            plugins: Vec::new(),
            pre_filter: Vec::new(),
            filter: Vec::new(),
            post_filter: Vec::new(),
            pre_score: Vec::new(),
            score: Vec::new(),
            reserve: Vec::new(),
            bind: Vec::new(),
        }
    }

    /// Runs `f` with a cycle over `cache`.
    pub fn with_cycle<R>(cache: &Cache, f: impl FnOnce(&Cycle) -> R) -> R {
        let fw = empty_framework();
        let nominator = Nominator::default();
        let cx = Cycle {
            cache,
            nominator: &nominator,
            framework: &fw,
        };
        f(&cx)
    }

    /// A cache holding `nodes` and `pods` (each pod placed on its `spec.nodeName`).
    pub fn cache_with(nodes: Vec<Arc<Node>>, pods: Vec<PodInfo>) -> Cache {
        let mut c = Cache::new();
        for n in nodes {
            c.upsert_node(n);
        }
        for p in pods {
            c.upsert_pod(Arc::new(p));
        }
        c.refresh();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    fn term(v: serde_json::Value) -> NodeSelectorTerm {
        serde_json::from_value(v).expect("term")
    }

    #[test]
    fn node_selector_terms() {
        let n = node_info(simple_node(
            "n1",
            json!({"disktype": "ssd", "gen": "5"}),
            "1",
            "1Gi",
        ));
        let cases = [
            (
                json!({"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "disktype", "operator": "NotIn", "values": ["ssd"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["4"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}),
                true,
            ),
            (
                json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}),
                false,
            ),
            (json!({}), false),
        ];
        for (t, want) in cases {
            assert_eq!(term_matches(&term(t.clone()), &n), want, "{t}");
        }
    }

    #[test]
    fn toleration_matching() {
        let taint: Taint = serde_json::from_value(
            json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}),
        )
        .expect("taint");
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).expect("tol") };
        assert!(tolerates(
            &tol(json!({"key": "dedicated", "operator": "Equal", "value": "gpu"})),
            &taint
        ));
        assert!(tolerates(
            &tol(json!({"key": "dedicated", "operator": "Exists"})),
            &taint
        ));
        assert!(tolerates(&tol(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(
            &tol(json!({"key": "dedicated", "value": "cpu"})),
            &taint
        ));
        assert!(!tolerates(
            &tol(json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }

    #[test]
    fn normalize() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }
}
