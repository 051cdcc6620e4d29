use serde_json::{Value, json};

use super::{Server, message, nginx};
use crate::ssa::SsaError;

/// What `kubectl apply --server-side` records for the docs' nginx Deployment: the config's
/// fields only (no defaults), the port keyed with its defaulted protocol.
fn nginx_fields() -> Value {
    json!({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                    ".": {},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {},
                        "f:containerPort": {}
                    }}
                }}}
            }
        }
    })
}

#[test]
fn first_apply_creates_with_an_apply_entry() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("applies");
    assert_eq!(
        s.obj()["metadata"]["managedFields"],
        json!([{
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": nginx_fields(),
            "manager": "kubectl",
            "operation": "Apply",
            "time": "2024-05-01T10:00:01Z"
        }])
    );
    assert_eq!(s.obj()["spec"]["replicas"], 3);
    assert_eq!(
        s.obj()["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
}

#[test]
fn reapplying_the_same_config_changes_nothing() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("applies");
    let before = s.obj().clone();
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("re-applies");
    // Same object, same entry, same time: the apply was a no-op.
    assert_eq!(s.obj(), &before);
}

#[test]
fn fields_dropped_from_the_config_are_removed() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    let mut v1 = nginx(3, "nginx:1.25");
    v1["metadata"]["labels"]["tier"] = json!("web");
    v1["metadata"]["annotations"] = json!({"team": "a"});
    v1["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}));
    s.apply(v1, "kubectl", false).expect("applies");
    assert_eq!(
        s.obj()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let mut v2 = nginx(3, "nginx:1.25");
    v2["spec"].as_object_mut().expect("spec").remove("replicas");
    s.apply(v2, "kubectl", false).expect("applies");
    let obj = s.obj();
    assert_eq!(obj["metadata"]["labels"], json!({"app": "nginx"}));
    assert!(obj["metadata"].get("annotations").is_none(), "{obj}");
    let containers = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");
    // Removed from the config, replicas falls back to its default.
    assert_eq!(obj["spec"]["replicas"], 1);
    let mut want = nginx_fields();
    want["f:spec"]
        .as_object_mut()
        .expect("f:spec")
        .remove("f:replicas");
    assert_eq!(s.fields("kubectl", "Apply"), want);
    assert_eq!(s.managers().len(), 1);
}

#[test]
fn conflicting_applies_need_force_which_moves_ownership() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("applies");
    let scaler = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"replicas": 5}
    });
    let err = s
        .apply(scaler.clone(), "autoscaler", false)
        .expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"
    );
    let status = err.to_api_error().to_json();
    assert_eq!(status["code"], 409);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\"", "field": ".spec.replicas"}])
    );

    // The same value is no conflict: both managers own it.
    let mut same = scaler.clone();
    same["spec"]["replicas"] = json!(3);
    s.apply(same, "autoscaler", false)
        .expect("shared ownership");
    assert_eq!(
        s.fields("autoscaler", "Apply"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(
        s.fields("kubectl", "Apply")["f:spec"]
            .get("f:replicas")
            .is_some()
    );

    s.apply(scaler, "autoscaler", true).expect("forced");
    assert_eq!(s.obj()["spec"]["replicas"], 5);
    assert!(
        s.fields("kubectl", "Apply")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    // Now kubectl is the one that conflicts, with the new owner.
    let err = s
        .apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"autoscaler\": .spec.replicas"
    );
}

#[test]
fn an_update_owns_what_it_changed_and_conflicts_with_later_applies() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("applies");
    // `kubectl scale` writes through the scale subresource; `kubectl edit` through the
    // resource itself.
    let mut scaled = s.obj().clone();
    scaled["spec"]["replicas"] = json!(5);
    s.write_through("scale", scaled, "kubectl-scale");
    assert_eq!(
        s.entry("kubectl-scale", "Update"),
        json!({
            "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
            "manager": "kubectl-scale", "operation": "Update",
            "subresource": "scale", "time": "2024-05-01T10:00:02Z"
        })
    );
    let err = s
        .apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" with subresource \"scale\" using apps/v1: .spec.replicas"
    );

    let mut edited = s.obj().clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    s.write(edited, "kubectl-edit");
    let err = s
        .apply(nginx(5, "nginx:1.25"), "kubectl", false)
        .expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.template.spec.containers[name=\"nginx\"].image"
    );
    // Applying what is there already is fine: values, not writes, conflict.
    s.apply(nginx(5, "nginx:1.26"), "kubectl", false)
        .expect("no conflict");
}

#[test]
fn several_conflicts_are_grouped_by_manager() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("applies");
    let mut edited = s.obj().clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    edited["metadata"]["labels"]["app"] = json!("web");
    s.write(edited, "kubectl-edit");
    let mut other = nginx(7, "nginx:1.27");
    other["metadata"]["labels"]["app"] = json!("api");
    let err = s.apply(other, "ci", false).expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 3 conflicts: conflicts with \"kubectl\":\n\
         - .spec.replicas\n\
         conflicts with \"kubectl-edit\" using apps/v1:\n\
         - .metadata.labels.app\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let SsaError::Conflicts(conflicts) = &err else {
        panic!("not conflicts: {err}")
    };
    assert_eq!(conflicts[1].api_version, "apps/v1");
    let causes = err.to_api_error().to_json()["details"]["causes"].clone();
    assert_eq!(
        causes[2]["message"],
        "conflict with \"kubectl-edit\" using apps/v1"
    );
    assert_eq!(
        causes[2]["field"],
        ".spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn map_lists_merge_by_key_between_managers() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.apply(nginx(3, "nginx:1.25"), "kubectl", false)
        .expect("applies");
    let sidecar = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "istio-proxy", "image": "proxy:1", "env": [{"name": "A", "value": "1"}]}
        ]}}}
    });
    s.apply(sidecar.clone(), "injector", false)
        .expect("applies");
    let names: Vec<&str> = s.obj()["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["nginx", "istio-proxy"]);
    // kubectl keeps managing nginx only; re-applying does not remove the sidecar.
    s.apply(nginx(3, "nginx:1.26"), "kubectl", false)
        .expect("applies");
    let containers = &s.obj()["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.26");
    assert_eq!(containers[1]["env"], json!([{"name": "A", "value": "1"}]));
    // The injector dropping its container removes it, defaults and all.
    let mut gone = sidecar;
    gone["spec"]["template"]["spec"]["containers"] = json!([]);
    s.apply(gone, "injector", false).expect("applies");
    let containers = &s.obj()["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");
    assert_eq!(s.managers().len(), 1, "{:?}", s.managers());
}

#[test]
fn status_is_neither_applied_nor_owned_through_the_main_resource() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    let mut config = nginx(1, "nginx");
    config["status"] = json!({"replicas": 9});
    s.apply(config.clone(), "kubectl", false).expect("applies");
    assert!(s.obj().get("status").is_none(), "{}", s.obj());
    assert!(s.fields("kubectl", "Apply").get("f:status").is_none());

    let mut reported = s.obj().clone();
    reported["status"] = json!({"replicas": 1, "readyReplicas": 1});
    s.write_through("status", reported, "kube-controller-manager");
    assert_eq!(
        s.fields("kube-controller-manager", "Update"),
        json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}})
    );
    s.apply(config, "kubectl", false).expect("applies");
    assert_eq!(s.obj()["status"]["replicas"], 1);
}

#[test]
fn existing_fields_of_an_untracked_object_belong_to_before_first_apply() {
    let mut s = Server::builtin("", "v1", "configmaps");
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default"},
        "data": {"mode": "fast", "level": "3"}
    });
    s.write(cm.clone(), "kubectl-create");
    let mut cleared = s.obj().clone();
    cleared["metadata"]["managedFields"] = json!([]);
    s.write(cleared, "kubectl");
    assert!(s.obj()["metadata"].get("managedFields").is_none());

    let mut config = cm;
    config["data"] = json!({"mode": "slow"});
    let err = s
        .apply(config.clone(), "tuner", false)
        .expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using v1: .data.mode"
    );
    s.apply(config, "tuner", true).expect("forced");
    assert_eq!(s.obj()["data"], json!({"mode": "slow", "level": "3"}));
    assert_eq!(
        s.managers(),
        [
            ("tuner".to_string(), "Apply".to_string(), String::new()),
            (
                "before-first-apply".to_string(),
                "Update".to_string(),
                String::new()
            )
        ]
    );
    assert_eq!(
        s.fields("before-first-apply", "Update"),
        json!({"f:data": {".": {}, "f:level": {}}})
    );
}

#[test]
fn kubectl_takes_over_what_client_side_apply_set_without_conflicts() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    let config = nginx(3, "nginx:1.25");
    let mut created = config.clone();
    let last = crate::ssa::path::go_json(&config) + "\n";
    created["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last});
    s.write(created, "kubectl-client-side-apply");

    // Another applier conflicts with what client-side apply set ...
    let err = s
        .apply(nginx(5, "nginx:1.25"), "ci", false)
        .expect_err("conflicts");
    assert_eq!(
        message(&err),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    // ... but kubectl itself applied those values before.
    s.apply(nginx(5, "nginx:1.25"), "kubectl", false)
        .expect("no conflict");
    assert_eq!(s.obj()["spec"]["replicas"], 5);
    let annotation =
        s.obj()["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or("")
            .to_string();
    assert_eq!(
        annotation,
        crate::ssa::path::go_json(&nginx(5, "nginx:1.25")) + "\n"
    );
    assert!(
        s.fields("kubectl-client-side-apply", "Update")["f:spec"]
            .get("f:replicas")
            .is_none()
    );
}
