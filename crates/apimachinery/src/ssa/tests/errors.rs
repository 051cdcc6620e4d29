use serde_json::{Value, json};

use super::{Server, nginx};
use crate::ssa::SsaError;

fn status(err: &SsaError) -> (Value, Value, String) {
    let s = err.to_api_error().to_json();
    (
        s["code"].clone(),
        s["reason"].clone(),
        s["message"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn malformed_configs_are_refused_with_upstreams_status() {
    let with = |edit: fn(&mut Value)| {
        let mut config = nginx(1, "nginx");
        edit(&mut config);
        config
    };
    let typed = "failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): ";
    let cases: Vec<(&str, Value, u16, Value, String)> = vec![
        (
            "undeclared field",
            with(|c| c["spec"]["replica"] = json!(2)),
            500,
            Value::Null,
            format!("{typed}.spec.replica: field not declared in schema"),
        ),
        (
            "duplicate map-list items",
            with(|c| {
                let dup = c["spec"]["template"]["spec"]["containers"][0].clone();
                if let Some(list) = c["spec"]["template"]["spec"]["containers"].as_array_mut() {
                    list.push(dup);
                }
            }),
            500,
            Value::Null,
            format!(
                "{typed}.spec.template.spec.containers: duplicate entries for key [name=\"nginx\"]"
            ),
        ),
        (
            "item without its key",
            with(|c| c["spec"]["template"]["spec"]["containers"][0] = json!({"image": "nginx"})),
            500,
            Value::Null,
            format!(
                "{typed}.spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"
            ),
        ),
        (
            "set with an object item",
            with(|c| c["metadata"]["finalizers"] = json!([{"a": 1}])),
            500,
            Value::Null,
            format!(
                "{typed}.metadata.finalizers: element 0: associative list without keys has an element that's a map type"
            ),
        ),
        (
            "several errors",
            with(|c| {
                c["spec"]["bogus"] = json!(1);
                c["metadata"]["bogus"] = json!(1);
            }),
            500,
            Value::Null,
            format!(
                "{typed}errors:\n  .metadata.bogus: field not declared in schema\n  .spec.bogus: field not declared in schema"
            ),
        ),
        (
            "wrong kind",
            with(|c| c["kind"] = json!("Deploymnt")),
            400,
            json!("BadRequest"),
            "invalid object type: apps/v1, Kind=Deploymnt".into(),
        ),
        (
            "wrong version",
            with(|c| c["apiVersion"] = json!("v1")),
            400,
            json!("BadRequest"),
            "invalid object type: /v1, Kind=Deployment".into(),
        ),
        (
            "managedFields sent",
            with(|c| c["metadata"]["managedFields"] = json!([])),
            400,
            json!("BadRequest"),
            "metadata.managedFields must be nil".into(),
        ),
        (
            "not an object",
            json!(["a"]),
            400,
            json!("BadRequest"),
            "error decoding patch: the applied configuration is not an object".into(),
        ),
    ];
    for (name, config, code, reason, want) in cases {
        let mut s = Server::builtin("apps", "v1", "deployments");
        let err = s.apply(config, "kubectl", false).expect_err(name);
        assert_eq!(status(&err), (json!(code), reason, want), "{name}");
        assert!(s.obj.is_none(), "{name}: nothing stored");
    }
}

#[test]
fn unreadable_stored_managed_fields_fail_an_apply_but_not_an_update() {
    let mut s = Server::builtin("", "v1", "configmaps");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}, "data": {"k": "v"}});
    s.write(cm.clone(), "kubectl-create");
    // Stored garbage (as only a buggy writer could leave behind).
    if let Some(obj) = s.obj.as_mut() {
        obj["metadata"]["managedFields"] = json!([{"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"k:{": {}}}]);
    }
    let err = s
        .apply(cm.clone(), "kubectl", false)
        .expect_err("undecodable");
    let (code, reason, msg) = status(&err);
    assert_eq!((code, reason), (json!(500), Value::Null));
    assert!(
        msg.starts_with("failed to decode managed fields: error decoding versioned set"),
        "{msg}"
    );

    // An update reads nothing from them, so the object is left untracked.
    let mut new = s.obj().clone();
    if let Some(meta) = new["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    new["data"]["k"] = json!("w");
    s.write(new, "editor");
    assert!(s.obj()["metadata"].get("managedFields").is_none());
    assert_eq!(s.obj()["data"]["k"], "w");
}

#[test]
fn odd_input_never_panics() {
    let reg = super::registry();
    let stored = [
        json!({}),
        json!({"metadata": null}),
        json!({"metadata": {"managedFields": "x"}}),
        json!({"metadata": {"managedFields": [1, null, {"fieldsV1": []}]}}),
        json!({"metadata": {"uid": 5}, "spec": {"template": {"spec": {"containers": [null, 3, {"name": 1}, {"name": 1}]}}}}),
        json!({"spec": [], "status": "x"}),
        json!([1, 2]),
    ];
    let configs = [
        json!({}),
        json!(null),
        json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": 7, "spec": "x"}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "n", "labels": null},
               "spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [null]}]}}, "replicas": null}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"finalizers": [null, [1], "a", "a"]}}),
    ];
    for rt in [
        reg.get("apps", "v1", "deployments").expect("deployments"),
        reg.get("", "v1", "configmaps").expect("configmaps"),
    ] {
        for current in &stored {
            for config in &configs {
                for force in [false, true] {
                    let _ = crate::ssa::apply(
                        rt,
                        Some(current),
                        config,
                        "m",
                        force,
                        "2024-05-01T00:00:00Z",
                    );
                    let _ = crate::ssa::apply(rt, None, config, "kubectl", force, "");
                }
                let mut new = config.clone();
                crate::ssa::track_update(rt, Some(current), &mut new, "", "2024-05-01T00:00:00Z");
                let mut new = current.clone();
                crate::ssa::track_update(rt, Some(config), &mut new, "m", "x");
            }
        }
    }
}
