//! The mutating admission plugins that fill in a Pod without looking anything up.
//!
//! Mirrors three of kube-apiserver's default plugins, for Pods only (never templates):
//! - `plugin/pkg/admission/serviceaccount` (`Plugin.Admit`): `serviceAccountName: default`
//!   unless the pod is a mirror pod. Not done here: checking the ServiceAccount exists,
//!   copying its `imagePullSecrets`, and mounting the projected `kube-api-access-*` token
//!   volume — those need the ServiceAccount and a token issuer.
//! - `plugin/pkg/admission/priority` (`admitPod`, create path): with no `priorityClassName`
//!   and no global-default PriorityClass, `priority: 0` and
//!   `preemptionPolicy: PreemptLowerPriority`. The two built-in system classes resolve to
//!   their fixed values; any other class name needs a PriorityClass lookup and is left alone.
//! - `plugin/pkg/admission/defaulttolerationseconds`: `NoExecute` tolerations of 300s for
//!   `node.kubernetes.io/not-ready` and `node.kubernetes.io/unreachable`, each added only
//!   when no existing toleration already covers that taint.
//!
//! Upstream runs the first two on create only; here they fill only unset fields, so running
//! them again on update changes nothing a create did not already set.

use serde_json::{Value, json};

use super::fields::{Map, child, default_ptr, default_str, str_of};

/// `kubernetes.io/config.mirror`: pods the kubelet mirrors from static manifests, whose spec
/// must not be changed.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The priority classes every cluster has (`scheduling.SystemPriorityClasses`).
const SYSTEM_PRIORITY_CLASSES: [(&str, i64); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Runs the three plugins on a Pod object.
pub(super) fn pod(obj: &mut Map) {
    let mirror = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
        .is_some();
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    if !mirror {
        default_str(spec, "serviceAccountName", "default");
    }
    priority(spec);
    default_tolerations(spec);
}

fn priority(spec: &mut Map) {
    let class = str_of(spec, "priorityClassName");
    let value = if class.is_empty() {
        Some(0)
    } else {
        SYSTEM_PRIORITY_CLASSES
            .iter()
            .find(|(name, _)| *name == class)
            .map(|(_, value)| *value)
    };
    if let Some(value) = value {
        default_ptr(spec, "priority", json!(value));
        default_ptr(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
}

fn default_tolerations(spec: &mut Map) {
    let mut not_ready = false;
    let mut unreachable = false;
    match spec.get("tolerations") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for t in list {
                let key = t.get("key").and_then(Value::as_str).unwrap_or("");
                let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                // An empty key or effect matches every taint key or effect.
                if effect.is_empty() || effect == "NoExecute" {
                    not_ready |= key.is_empty() || key == TAINT_NOT_READY;
                    unreachable |= key.is_empty() || key == TAINT_UNREACHABLE;
                }
            }
        }
        Some(_) => return,
    }
    let missing: Vec<&str> = [
        (not_ready, TAINT_NOT_READY),
        (unreachable, TAINT_UNREACHABLE),
    ]
    .into_iter()
    .filter(|(tolerated, _)| !tolerated)
    .map(|(_, key)| key)
    .collect();
    if missing.is_empty() {
        return;
    }
    let slot = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    if let Some(list) = slot.as_array_mut() {
        for key in missing {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
}
