//! ObjectMeta validation on create and update.
//!
//! Mirrors `k8s.io/apimachinery/pkg/api/validation/objectmeta.go` (`ValidateObjectMetaAccessor`,
//! `ValidateObjectMetaAccessorUpdate`) plus the wrappers in `pkg/apis/core/validation` that
//! built-in kinds use, which additionally require finalizer names without a `/` to be one of
//! the standard ones. Error order is upstream's: generateName, name, namespace, generation,
//! labels, annotations, ownerReferences, finalizers.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::gofmt;
use super::json::{get, int_of, list, sorted, str_of};
use super::labels::validate_labels;
use super::name::{NameValidator, is_dns1123_label, is_qualified_name};
use super::path::{
    FIELD_IMMUTABLE, Path, forbidden, invalid, invalid_int, invalid_raw, invalid_str, nonnegative,
    required, too_long,
};

/// Upstream's `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Finalizers a built-in object may carry without a domain prefix.
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

fn meta(obj: &Value) -> &Value {
    get(obj, "metadata")
}

/// `ValidateObjectMeta` as built-in kinds call it (core's wrapper): `namespaced` is the kind's
/// scope and `name_fn` its name rule. Expects the apiserver to have generated the name already;
/// if it has not, a `generateName` alone is accepted (upstream always generates one before
/// validating, so "name or generateName is required" cannot fire for it).
pub fn validate_object_meta(
    obj: &Value,
    namespaced: bool,
    name_fn: NameValidator,
) -> Vec<FieldError> {
    let mut errs = validate_object_meta_generic(obj, Some(namespaced), name_fn);
    errs.extend(validate_kube_finalizers(obj));
    errs
}

/// `ValidateObjectMetaAccessor` (apimachinery's, without the built-in finalizer rule), used for
/// custom resources. `namespaced: None` skips the scope check (scope unknown).
pub fn validate_object_meta_generic(
    obj: &Value,
    namespaced: Option<bool>,
    name_fn: NameValidator,
) -> Vec<FieldError> {
    validate_object_meta_with(obj, namespaced, &name_fn)
}

/// [`validate_object_meta_generic`] with a name rule that may capture state (a
/// CustomResourceDefinition's name depends on its spec).
pub(crate) fn validate_object_meta_with(
    obj: &Value,
    namespaced: Option<bool>,
    name_fn: &dyn Fn(&str, bool) -> Vec<String>,
) -> Vec<FieldError> {
    let m = meta(obj);
    let path = Path::new("metadata");
    let mut errs = Vec::new();

    let generate_name = str_of(m, "generateName");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(invalid_str(
                &path.child("generateName"),
                generate_name,
                &msg,
            ));
        }
    }
    let name = str_of(m, "name");
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(required(
                &path.child("name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_fn(name, false) {
            errs.push(invalid_str(&path.child("name"), name, &msg));
        }
    }

    let namespace = str_of(m, "namespace");
    match namespaced {
        Some(true) if namespace.is_empty() => errs.push(required(&path.child("namespace"), "")),
        Some(false) if !namespace.is_empty() => errs.push(forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        )),
        _ if !namespace.is_empty() => {
            for msg in is_dns1123_label(namespace) {
                errs.push(invalid_str(&path.child("namespace"), namespace, &msg));
            }
        }
        _ => {}
    }

    errs.extend(nonnegative(
        int_of(m, "generation").unwrap_or(0),
        &path.child("generation"),
    ));
    errs.extend(validate_labels(get(m, "labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        get(m, "annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(m, &path.child("ownerReferences")));
    errs.extend(validate_finalizers(
        list(m, "finalizers"),
        &path.child("finalizers"),
    ));
    errs
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively), and keys plus values
/// may total at most 256 KiB.
pub fn validate_annotations(annotations: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(m) = annotations.as_object() else {
        return errs;
    };
    let mut total = 0usize;
    for (k, v) in sorted(m) {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(invalid_str(path, k, &msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// `ValidateOwnerReferences`. Upstream reports per-reference problems at the list path, not at
/// an index (`metadata.ownerReferences.uid`).
fn validate_owner_references(m: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller = String::new();
    for r in list(m, "ownerReferences") {
        let api_version = str_of(r, "apiVersion");
        let kind = str_of(r, "kind");
        // schema.FromAPIVersionAndKind: an unparsable apiVersion yields an empty version.
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(invalid_str(
                &path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(invalid_str(&path.child("kind"), kind, "must not be empty"));
        }
        if str_of(r, "name").is_empty() {
            errs.push(invalid_str(&path.child("name"), "", "must not be empty"));
        }
        if str_of(r, "uid").is_empty() {
            errs.push(invalid_str(&path.child("uid"), "", "must not be empty"));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(invalid_raw(
                path,
                owner_reference_go(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{}", str_of(r, "name"));
            if first_controller.is_empty() {
                first_controller = current;
            } else {
                errs.push(invalid_raw(
                    path,
                    "[]v1.OwnerReference{...}".to_string(),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {current}"),
                ));
            }
        }
    }
    errs
}

fn owner_reference_go(r: &Value) -> String {
    format!(
        "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:(*bool)(nil), BlockOwnerDeletion:(*bool)(nil)}}",
        crate::field::go_quote(str_of(r, "apiVersion")),
        crate::field::go_quote(str_of(r, "kind")),
        crate::field::go_quote(str_of(r, "name")),
        crate::field::go_quote(str_of(r, "uid")),
    )
}

/// `ValidateFinalizers`: qualified names, and not both `orphan` and `foregroundDeletion`.
fn validate_finalizers(finalizers: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let names: Vec<&str> = finalizers
        .iter()
        .map(|f| f.as_str().unwrap_or(""))
        .collect();
    for f in &names {
        for msg in is_qualified_name(f) {
            errs.push(invalid_str(path, f, &msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(invalid_raw(
            path,
            gofmt::string_slice(&Value::Array(finalizers.to_vec())),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Core's `validateKubeFinalizerName`, applied per index by built-in kinds.
fn validate_kube_finalizers(obj: &Value) -> Vec<FieldError> {
    let path = Path::new("metadata").child("finalizers");
    list(meta(obj), "finalizers")
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let f = f.as_str().unwrap_or("");
            (!f.contains('/') && !STANDARD_FINALIZERS.contains(&f)).then(|| {
                invalid_str(
                    &path.index(i),
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            })
        })
        .collect()
}

/// Validates a finalizer name listed outside metadata (a Namespace's `spec.finalizers`):
/// upstream's `validateFinalizerName`.
pub(crate) fn validate_finalizer_name(name: &str, path: &Path) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = is_qualified_name(name)
        .iter()
        .map(|msg| invalid_str(path, name, msg))
        .collect();
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        errs.push(invalid_str(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
    errs
}

/// `ValidateObjectMetaUpdate` as built-in kinds call it (core's wrapper).
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update_generic(new, old);
    errs.extend(validate_kube_finalizers(new));
    errs
}

/// `ValidateObjectMetaAccessorUpdate`: immutable identity fields, no new finalizers once
/// deleting, and the create-time rules for labels, annotations and owner references.
pub fn validate_object_meta_update_generic(new: &Value, old: &Value) -> Vec<FieldError> {
    let (n, o) = (meta(new), meta(old));
    let path = Path::new("metadata");
    let mut errs = Vec::new();

    if !get(o, "deletionTimestamp").is_null() {
        let old_set: BTreeSet<&str> = list(o, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let extra: BTreeSet<&str> = list(n, "finalizers")
            .iter()
            .filter_map(Value::as_str)
            .filter(|f| !old_set.contains(f))
            .collect();
        if !extra.is_empty() {
            let rendered = gofmt::string_slice(&Value::from(extra.into_iter().collect::<Vec<_>>()));
            errs.push(forbidden(
                &path.child("finalizers"),
                &format!("no new finalizers can be added if the object is being deleted, found new finalizers {rendered}"),
            ));
        }
    }
    if str_of(n, "resourceVersion").is_empty() {
        errs.push(invalid_str(
            &path.child("resourceVersion"),
            "",
            "must be specified for an update",
        ));
    }
    let (new_gen, old_gen) = (
        int_of(n, "generation").unwrap_or(0),
        int_of(o, "generation").unwrap_or(0),
    );
    if new_gen < old_gen {
        errs.push(invalid_int(
            &path.child("generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    for field in ["name", "namespace", "uid"] {
        if str_of(n, field) != str_of(o, field) {
            errs.push(invalid_str(
                &path.child(field),
                str_of(n, field),
                FIELD_IMMUTABLE,
            ));
        }
    }
    if str_of(n, "creationTimestamp") != str_of(o, "creationTimestamp") {
        let v = BadValue::Raw(gofmt::time(get(n, "creationTimestamp")));
        errs.push(invalid(
            &path.child("creationTimestamp"),
            v,
            FIELD_IMMUTABLE,
        ));
    }
    if get(n, "deletionTimestamp") != get(o, "deletionTimestamp") {
        let v = match get(n, "deletionTimestamp") {
            Value::Null => "\"null\"".to_string(),
            t => gofmt::time(t),
        };
        errs.push(invalid_raw(
            &path.child("deletionTimestamp"),
            v,
            FIELD_IMMUTABLE,
        ));
    }
    if get(n, "deletionGracePeriodSeconds") != get(o, "deletionGracePeriodSeconds") {
        let v = int_of(n, "deletionGracePeriodSeconds")
            .map_or("\"null\"".to_string(), |s| s.to_string());
        errs.push(invalid_raw(
            &path.child("deletionGracePeriodSeconds"),
            v,
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(validate_labels(get(n, "labels"), &path.child("labels")));
    errs.extend(validate_annotations(
        get(n, "annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(n, &path.child("ownerReferences")));
    errs
}

/// What upstream's update path does to the new object's metadata before validating it
/// (`rest.BeforeUpdate` and the generic store): an absent resourceVersion means an
/// unconditional update at the current one; generation, uid, creation and deletion timestamps
/// and the deletion grace period carry over from the stored object. Returns the adjusted copy.
pub(crate) fn prepare_update(new: &Value, old: &Value) -> Value {
    let mut out = new.clone();
    let o = meta(old);
    let Some(m) = out.get_mut("metadata").and_then(Value::as_object_mut) else {
        return out;
    };
    let mut carry = |key: &str, when: bool| {
        if when && !get(o, key).is_null() {
            m.insert(key.to_string(), get(o, key).clone());
        }
    };
    let new_meta = meta(new);
    carry(
        "resourceVersion",
        str_of(new_meta, "resourceVersion").is_empty(),
    );
    carry("generation", true);
    carry("uid", str_of(new_meta, "uid").is_empty());
    carry(
        "creationTimestamp",
        !str_of(o, "creationTimestamp").is_empty(),
    );
    carry("deletionTimestamp", true);
    carry(
        "deletionGracePeriodSeconds",
        get(new_meta, "deletionGracePeriodSeconds").is_null(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::name::{name_is_dns_label, name_is_dns_subdomain};
    use serde_json::json;

    fn render(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn create_rules() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let cases: Vec<(Value, bool, Vec<&str>)> = vec![
            (
                json!({"metadata": {"namespace": "default"}}),
                true,
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            (
                json!({"metadata": {"generateName": "web-", "namespace": "default"}}),
                true,
                vec![],
            ),
            (
                json!({"metadata": {"name": "x"}}),
                true,
                vec!["metadata.namespace: Required value"],
            ),
            (
                json!({"metadata": {"name": "x", "namespace": "a"}}),
                false,
                vec!["metadata.namespace: Forbidden: not allowed on this type"],
            ),
            (
                json!({"metadata": {"name": "x", "namespace": "d", "annotations": {"a": big}}}),
                true,
                vec!["metadata.annotations: Too long: may not be more than 262144 bytes"],
            ),
            (
                json!({"metadata": {"name": "x", "namespace": "d", "annotations": {"Example.com/A": "ok"}}}),
                true,
                vec![],
            ),
            (
                json!({"metadata": {"name": "x", "namespace": "d", "generation": -1}}),
                true,
                vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                json!({"metadata": {"name": "x", "namespace": "d", "finalizers": ["foo"]}}),
                true,
                vec![
                    "metadata.finalizers[0]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified",
                ],
            ),
            (
                json!({"metadata": {"name": "x", "namespace": "d", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r"}]}}),
                true,
                vec!["metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"],
            ),
        ];
        for (obj, namespaced, want) in cases {
            assert_eq!(
                render(validate_object_meta(
                    &obj,
                    namespaced,
                    name_is_dns_subdomain
                )),
                want,
                "{obj}"
            );
        }
        let errs = render(validate_object_meta(
            &json!({"metadata": {"name": "Bad_Name"}}),
            false,
            name_is_dns_label,
        ));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(
                "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"
            )
        );
    }

    #[test]
    fn update_rules() {
        let old = json!({"metadata": {"name": "a", "namespace": "d", "uid": "u1", "resourceVersion": "5",
            "creationTimestamp": "2024-01-02T03:04:05Z", "generation": 2}});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({"metadata": {"name": "a", "namespace": "d"}}), vec![]),
            (
                json!({"metadata": {"name": "b", "namespace": "d"}}),
                vec!["metadata.name: Invalid value: \"b\": field is immutable"],
            ),
            (
                json!({"metadata": {"name": "a", "namespace": "e"}}),
                vec!["metadata.namespace: Invalid value: \"e\": field is immutable"],
            ),
            (
                json!({"metadata": {"name": "a", "namespace": "d", "uid": "u2"}}),
                vec!["metadata.uid: Invalid value: \"u2\": field is immutable"],
            ),
        ];
        for (new, want) in cases {
            let prepared = prepare_update(&new, &old);
            assert_eq!(
                render(validate_object_meta_update(&prepared, &old)),
                want,
                "{new}"
            );
        }
        let raw = json!({"metadata": {"name": "a", "namespace": "d", "uid": "u1", "resourceVersion": "5",
            "creationTimestamp": "2025-01-01T00:00:00Z", "generation": 2}});
        assert_eq!(
            render(validate_object_meta_update(&raw, &old)),
            vec![
                "metadata.creationTimestamp: Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable"
            ]
        );
    }
}
