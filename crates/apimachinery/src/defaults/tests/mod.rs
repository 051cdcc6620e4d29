//! The project's seed manifests (as the apiserver hands them over: namespace, uid and
//! creationTimestamp filled in) and the objects a 1.33 cluster returns for them, plus the
//! defaulting rules the seeds do not reach. Every case is also checked for idempotency.

use serde_json::{Value, json};

use super::apply;

mod kinds;
mod pods;
mod workloads;

pub(super) const UID: &str = "3b2f1a4e-8d0c-4c55-9a61-2f4f6d7e8a90";

/// Applies the defaults, checks a second pass changes nothing, returns the result.
pub(super) fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
    apply(group, kind, &mut obj);
    let once = obj.clone();
    apply(group, kind, &mut obj);
    assert_eq!(obj, once, "{kind}: a second pass changed the object");
    obj
}

pub(super) fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "uid": UID, "creationTimestamp": "2025-05-01T10:00:00Z"})
}

/// The fields every container gets, merged over `c`.
pub(super) fn container(mut c: Value, pull: &str) -> Value {
    c["imagePullPolicy"] = json!(pull);
    c["resources"] = c.get("resources").cloned().unwrap_or_else(|| json!({}));
    c["terminationMessagePath"] = json!("/dev/termination-log");
    c["terminationMessagePolicy"] = json!("File");
    c
}

/// The fields every pod spec gets (templates included), merged over `spec`.
pub(super) fn template_spec(mut spec: Value) -> Value {
    spec["dnsPolicy"] = json!("ClusterFirst");
    spec["restartPolicy"] = spec
        .get("restartPolicy")
        .cloned()
        .unwrap_or_else(|| json!("Always"));
    spec["schedulerName"] = json!("default-scheduler");
    spec["securityContext"] = json!({});
    spec["terminationGracePeriodSeconds"] = json!(30);
    spec
}

pub(super) fn default_tolerations() -> Value {
    json!([
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ])
}
