//! Table tests per kind family, each case an invalid object (or update) and the messages
//! Kubernetes 1.33 prints for it, in upstream's order.
//!
//! # Layout
//! - `networking.rs`: Ingress, IngressClass, NetworkPolicy.
//! - `rbac.rs`: Role, ClusterRole, RoleBinding, ClusterRoleBinding.
//! - `workloads.rs`: PodDisruptionBudget, HorizontalPodAutoscaler.
//! - `storage.rs`: StorageClass, CSIDriver, PersistentVolume.
//! - `apiextensions.rs`: CustomResourceDefinition.
//! - `cluster.rs`: webhooks, PriorityClass, RuntimeClass, Lease, Node, Endpoints,
//!   EndpointSlice, ResourceQuota, LimitRange, CertificateSigningRequest.

mod apiextensions;
mod cluster;
mod networking;
mod rbac;
mod storage;
mod workloads;

use serde_json::{Value, json};

use super::{validate_create, validate_update};

/// One create case: `(group, kind, object, messages)`.
type Case<S = &'static str> = (&'static str, &'static str, Value, Vec<S>);

fn render(errs: &[crate::field::FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// Runs create cases, reporting every mismatch at once.
fn check_create<S: AsRef<str> + std::fmt::Debug>(cases: Vec<Case<S>>) {
    let mut failures = Vec::new();
    for (group, kind, obj, want) in cases {
        let got = render(&validate_create(group, kind, &obj));
        if got
            .iter()
            .map(String::as_str)
            .ne(want.iter().map(AsRef::as_ref))
        {
            failures.push(format!("{kind} {obj}\n  got:  {got:#?}\n  want: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Stamps the identity a stored object has (resourceVersion, uid).
fn stored(mut obj: Value) -> Value {
    obj["metadata"]["resourceVersion"] = json!("7");
    obj["metadata"]["uid"] = json!("6b1f7c1e-0000-4000-8000-000000000001");
    obj
}

/// Runs an update of `old` to `new` and compares the messages.
fn check_update(group: &str, kind: &str, old: Value, new: Value, want: &[&str]) {
    let old = stored(old);
    let mut new = new;
    new["metadata"]["resourceVersion"] = json!("7");
    let got = render(&validate_update(group, kind, &new, &old));
    assert_eq!(got, want, "{kind} update");
}
