//! The "empty object" upstream compares a created object against.
//!
//! Upstream compares a create with `Creater.New(kind)`: the Go zero value of the kind, in
//! which value-typed structs (`metadata`, `spec`, `status`, a Deployment's `template` and
//! `strategy`, …) and required lists (`containers`) are already present. Fields present
//! there are not recorded as created by the first updater, so its entry reads
//! `f:spec:{f:template:{…}}` rather than `f:spec:{".":{},…}`. Which Go fields are value
//! types is not in the OpenAPI schema, so the ones on the paths objects commonly take are
//! listed here; custom resources' zero value is empty, as upstream's unstructured one.

use serde_json::{Map, Value};

use super::schema::Ty;
use crate::smp::schema::Node;

/// Value-typed struct fields (present as `{}`) and required lists (present as `null`) of
/// the Go zero values, by OpenAPI definition.
const PRESENT: &[(&str, &[&str])] = &[
    (
        "io.k8s.api.apps.v1.DaemonSetSpec",
        &["template", "updateStrategy"],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &["strategy", "template"],
    ),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", &["template"]),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        &["template", "updateStrategy"],
    ),
    ("io.k8s.api.batch.v1.CronJobSpec", &["jobTemplate"]),
    ("io.k8s.api.batch.v1.JobSpec", &["template"]),
    ("io.k8s.api.batch.v1.JobTemplateSpec", &["metadata", "spec"]),
    (
        "io.k8s.api.core.v1.NodeDaemonEndpoints",
        &["kubeletEndpoint"],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        &["daemonEndpoints", "nodeInfo"],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        &["resources"],
    ),
    ("io.k8s.api.core.v1.PodSpec", &["containers"]),
    ("io.k8s.api.core.v1.PodTemplate", &["template"]),
    ("io.k8s.api.core.v1.PodTemplateSpec", &["metadata", "spec"]),
    ("io.k8s.api.core.v1.ServiceStatus", &["loadBalancer"]),
    ("io.k8s.api.networking.v1.IngressStatus", &["loadBalancer"]),
];

/// Every kind's top-level structs are value types.
const ROOT: &[&str] = &["metadata", "spec", "status"];

/// The zero object of the kind at `root`.
pub(super) fn empty_object(root: Ty<'_>, api_version: &str, kind: &str) -> Value {
    match root {
        Ty::Builtin { node, .. } => Value::Object(zero(node, ROOT)),
        _ => {
            // Upstream's unstructured zero object only carries its type.
            let mut map = Map::new();
            map.insert("apiVersion".into(), api_version.into());
            map.insert("kind".into(), kind.into());
            Value::Object(map)
        }
    }
}

fn zero(node: Node<'_>, extra: &[&str]) -> Map<String, Value> {
    let listed = node
        .definition()
        .and_then(|d| PRESENT.iter().find(|(def, _)| *def == d))
        .map_or(&[][..], |(_, fields)| *fields);
    let mut out = Map::new();
    for field in extra.iter().chain(listed) {
        if node.declares(field) != Some(true) {
            continue;
        }
        let (child, _) = node.field(field);
        let value = if child.definition().is_some() {
            Value::Object(zero(child, &[]))
        } else {
            Value::Null
        };
        out.insert((*field).to_string(), value);
    }
    out
}
