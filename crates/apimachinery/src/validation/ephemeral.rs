//! Ephemeral containers: upstream's `validateEphemeralContainers` (part of every pod spec's
//! validation) and `ValidatePodEphemeralContainersUpdate` (what the `pods/ephemeralcontainers`
//! subresource checks).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::container::{PodContext, validate_container_common};
use super::json::{get, list, map_of, semantic_eq, str_of};
use super::meta::{prepare_update, validate_object_meta_update};
use super::path::{Path, duplicate, forbidden, invalid_str, not_found_str};
use super::pod::validate_pod_metadata_and_spec;

/// The fields of upstream's `EphemeralContainerCommon` in declaration order (the order its
/// allow-list check reports them), and whether an ephemeral container may set them. Probes,
/// lifecycle hooks, ports and resources are refused: an ephemeral container must not be
/// something the pod's service relies on.
const FIELDS: [(&str, bool); 24] = [
    ("name", true),
    ("image", true),
    ("command", true),
    ("args", true),
    ("workingDir", true),
    ("ports", false),
    ("envFrom", true),
    ("env", true),
    ("resources", false),
    ("resizePolicy", false),
    ("restartPolicy", false),
    ("volumeMounts", true),
    ("volumeDevices", true),
    ("livenessProbe", false),
    ("readinessProbe", false),
    ("startupProbe", false),
    ("lifecycle", false),
    ("terminationMessagePath", true),
    ("terminationMessagePolicy", true),
    ("imagePullPolicy", true),
    ("securityContext", true),
    ("stdin", true),
    ("stdinOnce", true),
    ("tty", true),
];

const NOT_FOR_EPHEMERAL: &str = "cannot be set for an Ephemeral Container";

/// Whether a field holds its Go zero value (absent, `null`, `""`, `[]`, `{}`, `false`, `0`).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        other => semantic_eq(other, &Value::Null),
    }
}

/// `validateEphemeralContainers`: each ephemeral container as a container, with a name
/// unique across all of the pod's containers, a `targetContainerName` naming a regular or
/// init container, and none of the fields ephemeral containers may not have.
pub(crate) fn validate_ephemeral_containers(
    ephemeral: &[Value],
    containers: &[Value],
    init: &[Value],
    ctx: &PodContext,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if ephemeral.is_empty() {
        return errs;
    }
    let others: BTreeSet<&str> = containers
        .iter()
        .chain(init)
        .map(|c| str_of(c, "name"))
        .collect();
    let mut all = others.clone();
    for (i, ec) in ephemeral.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(ec, ctx, &p));
        // `validateContainerOnlyForPod`.
        let image = str_of(ec, "image");
        if image.trim() != image {
            errs.push(invalid_str(
                &p.child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
        let name = str_of(ec, "name");
        if !all.insert(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
        }
        let target = str_of(ec, "targetContainerName");
        if !target.is_empty() && !others.contains(target) {
            errs.push(not_found_str(&p.child("targetContainerName"), target));
        }
        for (field, allowed) in FIELDS {
            if !allowed && !is_zero(get(ec, field)) {
                errs.push(forbidden(&p.child(field), NOT_FOR_EPHEMERAL));
            }
        }
        for (j, m) in list(ec, "volumeMounts").iter().enumerate() {
            for field in ["subPath", "subPathExpr"] {
                if !str_of(m, field).is_empty() {
                    let mp = p.child("volumeMounts").index(j).child(field);
                    errs.push(forbidden(&mp, NOT_FOR_EPHEMERAL));
                }
            }
        }
    }
    errs
}

/// `ValidatePodEphemeralContainersUpdate`: `new` is `old` with only its ephemeral containers
/// replaced (the subresource's strategy made it so). Containers may be added; existing ones
/// may be neither changed nor removed. Static (mirror) pods take none.
///
/// Upstream appends a `cmp.Diff` of the Go structs to "may not be changed"; that text has no
/// stable form to reproduce, so the message ends at the container's name.
pub(crate) fn validate_pod_ephemeral_containers_update(
    new: &Value,
    old: &Value,
) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_pod_metadata_and_spec(&new));
    let mirror = map_of(get(old, "metadata"), "annotations")
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    if mirror {
        return vec![forbidden(
            &Path::new(""),
            "static pods do not support ephemeral containers",
        )];
    }
    let path = Path::new("spec").child("ephemeralContainers");
    let current = list(get(&new, "spec"), "ephemeralContainers");
    for before in list(get(old, "spec"), "ephemeralContainers") {
        let name = str_of(before, "name");
        match current.iter().find(|c| str_of(c, "name") == name) {
            None => errs.push(forbidden(
                &path,
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(after) if !semantic_eq(before, after) => errs.push(forbidden(
                &path,
                &format!("existing ephemeral containers {name:?} may not be changed"),
            )),
            Some(_) => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn pod(ephemeral: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u1",
                "resourceVersion": "5", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {
                "containers": [{"name": "app", "image": "busybox",
                    "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}],
                "ephemeralContainers": ephemeral,
            },
        })
    }

    fn debugger(extra: Value) -> Value {
        let mut c = json!({"name": "debugger", "image": "busybox",
            "terminationMessagePolicy": "File", "imagePullPolicy": "Always",
            "targetContainerName": "app"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(extra.clone());
        }
        c
    }

    #[test]
    fn adding_an_ephemeral_container_is_allowed() {
        let old = pod(json!([]));
        let new = pod(json!([debugger(json!({}))]));
        assert_eq!(
            render(&validate_pod_ephemeral_containers_update(&new, &old)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn existing_ephemeral_containers_may_not_change_or_go() {
        let old = pod(json!([debugger(json!({}))]));
        let changed = pod(json!([debugger(json!({"image": "busybox:1.36"}))]));
        assert_eq!(
            render(&validate_pod_ephemeral_containers_update(&changed, &old)),
            [
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be changed"
            ]
        );
        let removed = pod(json!([]));
        assert_eq!(
            render(&validate_pod_ephemeral_containers_update(&removed, &old)),
            [
                "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed\n"
            ]
        );
    }

    #[test]
    fn names_are_unique_across_all_containers_and_targets_must_exist() {
        let old = pod(json!([]));
        let clash = debugger(json!({"name": "app", "targetContainerName": "nope"}));
        let new = pod(json!([clash]));
        assert_eq!(
            render(&validate_pod_ephemeral_containers_update(&new, &old)),
            [
                "spec.ephemeralContainers[0].name: Duplicate value: \"app\"",
                "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
            ]
        );
    }

    #[test]
    fn workload_fields_are_forbidden_in_the_allow_list_order() {
        let old = pod(json!([]));
        let new = pod(json!([debugger(json!({
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "1"}},
            "restartPolicy": "Always",
            "readinessProbe": {"exec": {"command": ["true"]}},
            "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
            "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}],
        }))]));
        let mut new = new;
        new["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
        let mut old = old;
        old["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
        assert_eq!(
            render(&validate_pod_ephemeral_containers_update(&new, &old)),
            [
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].restartPolicy: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            ]
        );
    }

    #[test]
    fn empty_resources_are_not_set() {
        let old = pod(json!([]));
        let new = pod(json!([debugger(json!({"resources": {}, "ports": []}))]));
        assert!(validate_pod_ephemeral_containers_update(&new, &old).is_empty());
    }

    #[test]
    fn plain_pod_updates_may_neither_add_nor_drop_ephemeral_containers() {
        let forbidden = [format!(
            "spec: Forbidden: pod updates may not change fields other than {}",
            super::super::pod::UPDATABLE_POD_FIELDS
        )];
        let none = pod(json!([]));
        let one = pod(json!([debugger(json!({}))]));
        let added = super::super::pod::validate_pod_update(&one, &none);
        assert_eq!(render(&added), forbidden);
        let mut dropped = one.clone();
        if let Some(spec) = dropped["spec"].as_object_mut() {
            spec.remove("ephemeralContainers");
        }
        let dropped = super::super::pod::validate_pod_update(&dropped, &one);
        assert_eq!(render(&dropped), forbidden);
        assert!(super::super::pod::validate_pod_update(&one, &one).is_empty());
    }

    #[test]
    fn static_pods_take_no_ephemeral_containers() {
        let mut old = pod(json!([]));
        old["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "x"});
        old["spec"]["nodeName"] = json!("n");
        let mut new = pod(json!([debugger(json!({}))]));
        new["metadata"]["annotations"] = old["metadata"]["annotations"].clone();
        new["spec"]["nodeName"] = json!("n");
        assert_eq!(
            render(&validate_pod_ephemeral_containers_update(&new, &old)),
            [": Forbidden: static pods do not support ephemeral containers"]
        );
    }
}
