//! Which nodes a DaemonSet runs on (upstream `NodeShouldRunDaemonPod` and
//! `daemon/util`): the template's `nodeName`, `nodeSelector` and required node affinity, and
//! the node's NoSchedule/NoExecute taints against the template's tolerations plus the ones
//! every daemon pod gets. Also how a daemon pod is pinned to its node (required node
//! affinity on `metadata.name`, which the scheduler honours).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};
use kube::ResourceExt;

use crate::history::REVISION_LABEL;

/// The DaemonSet annotation older API servers kept the template generation in, and the pod
/// label it was copied to (still honoured when present, as upstream).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

fn toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    }
}

/// Upstream `Toleration.MatchToleration`: same key, operator, value and effect.
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    a.key == b.key && a.operator == b.operator && a.value == b.value && a.effect == b.effect
}

/// Upstream `AddOrUpdateTolerationInPodSpec`.
fn add_or_update(spec: &mut PodSpec, t: Toleration) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|x| same_toleration(x, &t)) {
        Some(existing) => *existing = t,
        None => list.push(t),
    }
}

/// Upstream `AddOrUpdateDaemonPodTolerations`: daemon pods survive node problems (not-ready,
/// unreachable) and run despite the pressure and unschedulable taints; host-network pods
/// also despite an unavailable network.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        add_or_update(spec, toleration(key, effect));
    }
    if spec.host_network == Some(true) {
        add_or_update(
            spec,
            toleration("node.kubernetes.io/network-unavailable", "NoSchedule"),
        );
    }
}

/// Upstream `Toleration.ToleratesTaint`.
fn tolerates(t: &Toleration, taint: &Taint) -> bool {
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

/// Upstream `FindMatchingUntoleratedTaint`: is there a taint `filter` accepts that no
/// toleration tolerates?
fn has_untolerated(
    taints: &[Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> bool {
    taints
        .iter()
        .filter(|t| filter(t))
        .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        // Malformed requirements (values where none belong, or none where some must be)
        // match nothing, as upstream's selector parser rejects them.
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

/// A node selector term: every label expression and field (`metadata.name`) holds; an empty
/// term matches nothing.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.labels();
    let name = node.name_any();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&name)))
}

/// Upstream `GetRequiredNodeAffinity(pod).Match(node)`: `nodeSelector` and the required
/// node affinity terms (ORed).
pub fn affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| node.labels().get(k) == Some(v))
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
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node)),
        None => true,
    }
}

/// Upstream `NodeShouldRunDaemonPod`: (should a daemon pod be created there, may one that
/// is there keep running). A node with an untolerated NoSchedule taint keeps its pod; one
/// with an untolerated NoExecute taint loses it.
pub fn should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let mut spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node.name_any())
    {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    if !affinity_matches(&spec, node) {
        return (false, false);
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    if has_untolerated(taints, tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    }) {
        let evicted = has_untolerated(taints, tolerations, |t| t.effect == "NoExecute");
        return (false, !evicted);
    }
    (true, true)
}

/// Upstream `GetTargetNodeName`: where a daemon pod is, or is pinned to go.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.into());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == "metadata.name" && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([one]) => Some(one.clone()),
            _ => None,
        })
}

/// Upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes
/// "this node" (other affinity kinds and preferred terms stay).
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.into()]),
        }]),
        match_expressions: None,
    };
    let mut affinity = affinity.unwrap_or_default();
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
    affinity
}

/// The template's generation, from the annotation, if an API server set it.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.annotations()
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .and_then(|v| v.parse().ok())
}

/// Upstream `CreatePodTemplate`: the template with the daemon tolerations, the revision hash
/// label and (when known) the template generation label.
pub fn pod_template(ds: &DaemonSet, hash: &str) -> PodTemplateSpec {
    let mut t = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    add_daemon_tolerations(t.spec.get_or_insert_with(PodSpec::default));
    let labels = t
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    if let Some(g) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_LABEL.into(), hash.into());
    }
    t
}

/// Upstream `IsPodUpdated`: made from the current revision (or template generation).
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.labels();
    let by_generation =
        generation.is_some_and(|g| labels.get(TEMPLATE_GENERATION_LABEL) == Some(&g.to_string()));
    let by_hash = !hash.is_empty() && labels.get(REVISION_LABEL).map(String::as_str) == Some(hash);
    by_hash || by_generation
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints}
        }))
        .expect("node")
    }

    fn ds(spec: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "d"}},
                     "template": {"metadata": {"labels": {"app": "d"}}, "spec": spec}}
        }))
        .expect("ds")
    }

    fn containers() -> serde_json::Value {
        json!([{"name": "c", "image": "busybox"}])
    }

    #[test]
    fn node_selector_and_required_affinity_pick_nodes() {
        let d = ds(
            json!({"containers": containers(), "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}}}),
        );
        assert_eq!(
            should_run(
                &node("n", json!({"disk": "ssd", "zone": "a"}), json!([])),
                &d
            ),
            (true, true)
        );
        assert_eq!(
            should_run(
                &node("n", json!({"disk": "ssd", "zone": "c"}), json!([])),
                &d
            ),
            (false, false)
        );
        assert_eq!(
            should_run(&node("n", json!({"zone": "a"}), json!([])), &d),
            (false, false)
        );
    }

    #[test]
    fn no_schedule_taints_keep_new_pods_off_and_no_execute_evicts() {
        let d = ds(json!({"containers": containers()}));
        let no_schedule = node(
            "n",
            json!({}),
            json!([{"key": "k", "value": "v", "effect": "NoSchedule"}]),
        );
        assert_eq!(should_run(&no_schedule, &d), (false, true));
        let no_execute = node("n", json!({}), json!([{"key": "k", "effect": "NoExecute"}]));
        assert_eq!(should_run(&no_execute, &d), (false, false));
        let tolerant = ds(json!({"containers": containers(),
            "tolerations": [{"key": "k", "operator": "Exists"}]}));
        assert_eq!(should_run(&no_execute, &tolerant), (true, true));
    }

    #[test]
    fn daemon_pods_tolerate_node_conditions_and_unschedulable() {
        let d = ds(json!({"containers": containers()}));
        for (key, effect) in [
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ] {
            let n = node("n", json!({}), json!([{"key": key, "effect": effect}]));
            assert_eq!(should_run(&n, &d), (true, true), "{key}");
        }
        let unavailable = node(
            "n",
            json!({}),
            json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
        );
        assert_eq!(should_run(&unavailable, &d), (false, true));
        let host = ds(json!({"containers": containers(), "hostNetwork": true}));
        assert_eq!(should_run(&unavailable, &host), (true, true));
    }

    #[test]
    fn pods_are_pinned_to_their_node_by_name() {
        let existing: Affinity = serde_json::from_value(json!({
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]
            }
        }))
        .expect("affinity");
        let a = pin_to_node(Some(existing), "sim-node-1");
        let na = a.node_affinity.as_ref().expect("node affinity");
        assert!(
            na.preferred_during_scheduling_ignored_during_execution
                .is_some()
        );
        let mut pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(a.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("sim-node-1"));
        let mut spec = PodSpec {
            affinity: Some(a),
            ..Default::default()
        };
        assert!(affinity_matches(
            &spec,
            &node("sim-node-1", json!({}), json!([]))
        ));
        assert!(!affinity_matches(
            &spec,
            &node("sim-node-2", json!({}), json!([]))
        ));
        spec.node_name = Some("bound".into());
        pod.spec = Some(spec);
        assert_eq!(target_node(&pod).as_deref(), Some("bound"));
    }

    #[test]
    fn the_pod_template_gets_tolerations_once_and_the_revision_label() {
        let d = ds(json!({"containers": containers(),
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}));
        let t = pod_template(&d, "abc");
        let tolerations = t
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        assert_eq!(tolerations.len(), 6);
        // An equal toleration with a deadline is replaced by the forever one.
        assert!(tolerations.iter().all(|t| t.toleration_seconds.is_none()));
        let labels = t
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        assert_eq!(labels[REVISION_LABEL], "abc");
    }
}
