//! Table-driven tests: each case patches an object of a real built-in kind (so merge keys
//! come from the real schema and table) and compares the whole result.
//!
//! - `kubectl.rs`: patches real clients send (`kubectl label/annotate/set image/apply`,
//!   client libraries, kubelet status updates).
//! - `directives.rs`: each directive, list ordering, and error messages.

mod directives;
mod kubectl;

use serde_json::{Value, json};

use super::{SmpError, apply, patch_meta, schema::TypeIndex};
use crate::registry::{Registry, ResourceType};

/// One patch applied to one object of the resource `group/version/plural`.
struct Case {
    name: &'static str,
    resource: &'static str,
    original: Value,
    patch: Value,
    want: Value,
}

fn resource(path: &str) -> std::sync::Arc<ResourceType> {
    let registry = Registry::builtin();
    let (group, rest) = match path.matches('/').count() {
        1 => ("", path),
        _ => path.split_once('/').unwrap_or(("", path)),
    };
    let (version, plural) = rest.split_once('/').unwrap_or((rest, ""));
    registry
        .get(group, version, plural)
        .unwrap_or_else(|| panic!("no resource {path}"))
        .clone()
}

fn patched(resource_path: &str, original: &Value, patch: &Value) -> Result<Value, SmpError> {
    let rt = resource(resource_path);
    let mut doc = original.clone();
    apply(&mut doc, patch, &rt).map(|()| doc)
}

fn run(cases: Vec<Case>) {
    for case in cases {
        match patched(case.resource, &case.original, &case.patch) {
            Ok(got) => assert_eq!(
                got, case.want,
                "{}:\n got: {got:#}\nwant: {:#}",
                case.name, case.want
            ),
            Err(e) => panic!("{}: unexpected error: {e}", case.name),
        }
    }
}

/// (name, resource, original, patch, expected error message).
type ErrorCase = (&'static str, &'static str, Value, Value, &'static str);

fn run_errors(cases: Vec<ErrorCase>) {
    for (name, resource, original, patch, want) in cases {
        match patched(resource, &original, &patch) {
            Ok(got) => panic!("{name}: expected error {want:?}, got {got:#}"),
            Err(e) => assert_eq!(e.to_string(), want, "{name}"),
        }
    }
}

/// A Deployment whose pod template has these containers.
fn deployment(containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers}
            }
        }
    })
}

/// A Pod with these spec fields.
fn pod(spec: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": spec
    })
}

#[test]
fn every_table_row_names_a_real_field() {
    let registry = Registry::builtin();
    let indexes: Vec<_> = registry
        .all()
        .iter()
        .filter_map(|rt| rt.typed.map(TypeIndex::of))
        .collect();
    let mut checked = 0;
    for (definition, field, _) in super::all_patch_meta() {
        let known: Vec<bool> = indexes
            .iter()
            .filter_map(|index| index.has_field(&definition, field))
            .collect();
        assert!(
            known.iter().all(|k| *k),
            "{definition} has no field {field}"
        );
        checked += usize::from(!known.is_empty());
    }
    // Most rows belong to served kinds; a broken schema walk would reach none of them.
    assert!(
        checked > 200,
        "only {checked} rows reachable from served kinds"
    );
    assert!(patch_meta("io.k8s.api.core.v1.PodSpec", "containers").is_some());
}

#[test]
fn schema_is_cached_per_kind() {
    let rt = resource("apps/v1/deployments");
    let hooks = rt.typed.unwrap_or_else(|| panic!("typed"));
    assert!(std::sync::Arc::ptr_eq(
        &TypeIndex::of(hooks),
        &TypeIndex::of(hooks)
    ));
}

#[test]
fn error_statuses_follow_upstream() {
    assert_eq!(SmpError::BadRetainKeysFormat.http_status(), 400);
    assert_eq!(SmpError::ListOfLists.http_status(), 422);
    assert_eq!(SmpError::MergeDirectiveInList.http_status(), 500);
}
