use serde_json::{Value, json};

use super::{Server, entries};
use crate::ssa::path::go_json;
use crate::ssa::{
    manager_or_user_agent, revert_time_only_changes, validate_patch_options, validate_write_options,
};

/// `kubectl create deployment nginx --image=nginx`'s body.
fn created_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "creationTimestamp": null, "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
            }
        },
        "status": {}
    })
}

#[test]
fn a_create_owns_everything_it_stored_like_upstream() {
    let mut s = Server::builtin("apps", "v1", "deployments");
    s.write(created_deployment(), "kubectl-create");
    // What a 1.33 cluster shows for the same command: defaults included, value-typed
    // structs (`spec`, `template`, `strategy`) without a `.` of their own.
    assert_eq!(
        s.entry("kubectl-create", "Update"),
        json!({
            "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "manager": "kubectl-create",
            "operation": "Update", "time": "2024-05-01T10:00:01Z",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:progressDeadlineSeconds": {},
                    "f:replicas": {},
                    "f:revisionHistoryLimit": {},
                    "f:selector": {},
                    "f:strategy": {
                        "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                        "f:type": {}
                    },
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            "f:containers": {"k:{\"name\":\"nginx\"}": {
                                ".": {},
                                "f:image": {},
                                "f:imagePullPolicy": {},
                                "f:name": {},
                                "f:resources": {},
                                "f:terminationMessagePath": {},
                                "f:terminationMessagePolicy": {}
                            }},
                            "f:dnsPolicy": {},
                            "f:restartPolicy": {},
                            "f:schedulerName": {},
                            "f:securityContext": {},
                            "f:terminationGracePeriodSeconds": {}
                        }
                    }
                }
            }
        })
    );
}

#[test]
fn updates_move_ownership_and_merge_into_one_entry_per_manager() {
    let mut s = Server::builtin("", "v1", "configmaps");
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "default", "labels": {"team": "a"}},
        "data": {"a": "1", "b": "2"}
    });
    s.write(cm, "kubectl-create");
    let cases: &[(&str, &str, Value, Value, Value)] = &[
        // (manager, change, data after, creator's fields, updater's fields)
        (
            "editor",
            "modify a",
            json!({"a": "10", "b": "2"}),
            json!({"f:data": {".": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:team": {}}}}),
            json!({"f:data": {"f:a": {}}}),
        ),
        (
            "editor",
            "add c: merged into the same entry",
            json!({"a": "10", "b": "2", "c": "3"}),
            json!({"f:data": {".": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:team": {}}}}),
            json!({"f:data": {"f:a": {}, "f:c": {}}}),
        ),
        (
            "cleaner",
            "remove b: nobody owns it any more, the remover gets no entry",
            json!({"a": "10", "c": "3"}),
            json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:team": {}}}}),
            json!({"f:data": {"f:a": {}, "f:c": {}}}),
        ),
    ];
    for (manager, change, data, creator, editor) in cases {
        let mut new = s.obj().clone();
        new["data"] = data.clone();
        s.write(new, manager);
        assert_eq!(s.fields("kubectl-create", "Update"), *creator, "{change}");
        assert_eq!(s.fields("editor", "Update"), *editor, "{change}");
        assert!(s.entry("cleaner", "Update").is_null(), "{change}");
    }
    // The editor's time is that of its last change; a write changing nothing keeps it.
    assert_eq!(s.entry("editor", "Update")["time"], "2024-05-01T10:00:03Z");
    let same = s.obj().clone();
    s.write(same, "editor");
    assert_eq!(s.entry("editor", "Update")["time"], "2024-05-01T10:00:03Z");

    // Taking every field of a manager drops its entry.
    let mut new = s.obj().clone();
    new["data"] = json!({"a": "11", "c": "4"});
    new["metadata"]["labels"] = json!({"team": "b"});
    s.write(new, "owner");
    let managers: Vec<String> = s.managers().into_iter().map(|m| m.0).collect();
    assert_eq!(managers, ["kubectl-create", "owner"]);
    // The creator still owns the maps it created, though none of their keys.
    assert_eq!(
        s.fields("kubectl-create", "Update"),
        json!({"f:data": {}, "f:metadata": {"f:labels": {}}})
    );
}

#[test]
fn clients_may_rewrite_or_clear_managed_fields() {
    let mut s = Server::builtin("", "v1", "configmaps");
    s.write(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}}),
        "kubectl-create",
    );
    let stored = entries(s.obj());

    // A write without managedFields, or with ones that do not decode, keeps the stored ones.
    for sent in [
        Value::Null,
        json!([{"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
    ] {
        let mut new = s.obj().clone();
        new["metadata"]["managedFields"] = sent.clone();
        s.write(new, "kubectl");
        assert_eq!(entries(s.obj()), stored, "sent {sent}");
    }

    // A valid list replaces them (this is how kubectl moves fields between managers).
    let mut new = s.obj().clone();
    new["metadata"]["managedFields"] = json!([{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
        "time": "2024-05-01T09:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:k": {}}}
    }]);
    s.write(new.clone(), "kubectl");
    assert_eq!(
        entries(s.obj()),
        new["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    );

    // `[{}]` and `[]` clear them, and the object stays untracked until an apply.
    for reset in [json!([{}]), json!([])] {
        let mut new = s.obj().clone();
        new["metadata"]["managedFields"] = reset.clone();
        s.write(new, "kubectl");
        assert!(
            s.obj()["metadata"].get("managedFields").is_none(),
            "reset {reset}"
        );
        let mut changed = s.obj().clone();
        changed["data"]["k"] = json!("w");
        s.write(changed, "editor");
        assert!(
            s.obj()["metadata"].get("managedFields").is_none(),
            "after {reset}"
        );
    }
}

#[test]
fn subresources_record_their_own_entries_and_ignore_sent_managed_fields() {
    let mut s = Server::builtin("", "v1", "pods");
    s.write(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        "kubectl-run",
    );
    let mut reported = s.obj().clone();
    reported["status"] =
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    reported["metadata"]["managedFields"] = json!([]);
    // Spec changes through status are reset by the strategy and never owned.
    reported["spec"]["containers"][0]["image"] = json!("nginx");
    s.write_through("status", reported, "kubelet");
    assert_eq!(s.obj()["spec"]["containers"][0]["image"], "busybox");
    assert_eq!(
        s.entry("kubelet", "Update"),
        json!({
            "apiVersion": "v1", "fieldsType": "FieldsV1", "manager": "kubelet",
            "operation": "Update", "subresource": "status", "time": "2024-05-01T10:00:02Z",
            "fieldsV1": {"f:status": {
                "f:conditions": {".": {}, "k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}},
                "f:phase": {}
            }}
        })
    );
    assert!(!s.entry("kubectl-run", "Update").is_null());
}

#[test]
fn client_side_apply_upgrades_to_server_side_apply() {
    // test/cmd/apply.sh "kubectl apply --server-side" migration, step by step.
    let mut s = Server::builtin("", "v1", "configmaps");
    let config = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa-test", "namespace": "default"}, "data": data});
    let v1 = config(json!({"key": "value1", "legacy": "value2"}));

    // 1. `kubectl apply` (client side) creates with the annotation.
    let mut created = v1.clone();
    created["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": go_json(&v1) + "\n"});
    s.write(created, "kubectl-client-side-apply");
    assert_eq!(
        s.fields("kubectl-client-side-apply", "Update"),
        json!({
            "f:data": {".": {}, "f:key": {}, "f:legacy": {}},
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}
        })
    );

    // 2. `kubectl apply --server-side` first patches managedFields (csaupgrade): the
    //    client-side entry becomes kubectl's Apply entry.
    let mut upgraded = s.obj().clone();
    let mut managed = entries(&upgraded);
    for entry in &mut managed {
        if entry["manager"] == "kubectl-client-side-apply" && entry["operation"] == "Update" {
            entry["manager"] = json!("kubectl");
            entry["operation"] = json!("Apply");
        }
    }
    upgraded["metadata"]["managedFields"] = Value::Array(managed);
    s.write(upgraded, "kubectl");
    assert_eq!(
        s.managers(),
        [("kubectl".to_string(), "Apply".to_string(), String::new())]
    );

    // ... then applies the same config: nothing changes.
    s.apply(v1, "kubectl", false).expect("applies");
    assert_eq!(
        s.obj()["data"],
        json!({"key": "value1", "legacy": "value2"})
    );

    // 3. Applying without `legacy` removes it, and the annotation kubectl no longer sends.
    s.apply(config(json!({"key": "value2"})), "kubectl", false)
        .expect("applies");
    assert_eq!(s.obj()["data"], json!({"key": "value2"}));
    assert!(
        s.obj()["metadata"].get("annotations").is_none(),
        "{}",
        s.obj()
    );
    assert_eq!(
        s.fields("kubectl", "Apply"),
        json!({"f:data": {"f:key": {}}})
    );
}

#[test]
fn custom_resources_follow_their_schema() {
    let reg = super::registry();
    let base = reg.get("", "v1", "configmaps").expect("configmaps");
    let mut rt = super::owned(base);
    rt.group = "example.com".into();
    rt.version = "v1".into();
    rt.kind = "Widget".into();
    rt.plural = "widgets".into();
    rt.typed = None;
    rt.custom_schema = Some(json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["port", "protocol"],
                          "items": {"type": "object", "properties": {
                              "port": {"type": "integer"},
                              "protocol": {"type": "string", "default": "TCP"},
                              "name": {"type": "string"}}}},
                "args": {"type": "array", "items": {"type": "string"}},
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "additionalProperties": {"type": "string"}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}}
            }}
        }
    }));
    let mut s = Server::with(rt);
    let widget = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}, "spec": spec});
    s.apply(
        widget(json!({"ports": [{"port": 80, "name": "http"}], "args": ["a"], "selector": {"app": "w"}, "tags": {"x": "1"}})),
        "owner",
        false,
    )
    .expect("applies");
    assert_eq!(
        s.fields("owner", "Apply"),
        json!({"f:spec": {
            "f:args": {},
            "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:selector": {},
            "f:tags": {"f:x": {}}
        }})
    );
    s.apply(
        widget(json!({"ports": [{"port": 81}], "tags": {"y": "2"}})),
        "other",
        false,
    )
    .expect("no overlap: map items and map keys merge");
    let spec = &s.obj()["spec"];
    assert_eq!(
        spec["ports"],
        json!([{"port": 80, "name": "http"}, {"port": 81}])
    );
    assert_eq!(spec["tags"], json!({"x": "1", "y": "2"}));
    // Atomic lists and maps are one value: any change to them is a conflict.
    let err = s
        .apply(
            widget(json!({"args": ["a", "b"], "selector": {"app": "v"}})),
            "other",
            false,
        )
        .expect_err("atomic values owned by owner");
    assert_eq!(
        super::message(&err),
        "Apply failed with 2 conflicts: conflicts with \"owner\":\n- .spec.args\n- .spec.selector"
    );
    s.apply(widget(json!({"args": ["a", "b"]})), "other", true)
        .expect("forced");
    assert_eq!(s.obj()["spec"]["args"], json!(["a", "b"]));
    assert!(s.fields("owner", "Apply")["f:spec"].get("f:args").is_none());
}

#[test]
fn request_options() {
    let cases = [
        (
            Some("kube-scheduler"),
            "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
            "kube-scheduler",
        ),
        (
            None,
            "kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
            "kubectl",
        ),
        (Some(""), "Go-http-client/1.1", "Go-http-client"),
        (None, "my\u{7}agent", "myagent"),
        (None, "", ""),
    ];
    for (field_manager, ua, want) in cases {
        assert_eq!(manager_or_user_agent(field_manager, ua), want, "{ua}");
    }
    assert_eq!(manager_or_user_agent(None, &"x".repeat(200)).len(), 128);

    assert!(validate_patch_options(true, Some("kubectl"), Some(true)).is_ok());
    assert!(validate_patch_options(false, None, None).is_ok());
    let msg = |r: Result<(), crate::status::ApiError>| {
        r.err().map(|e| e.message().to_string()).unwrap_or_default()
    };
    assert_eq!(
        msg(validate_patch_options(true, None, None)),
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(
        msg(validate_patch_options(false, Some("m"), Some(false))),
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    assert_eq!(
        msg(validate_write_options("CreateOptions", Some("a\u{0}b"))),
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"a\\x00b\": invalid character U+0000 (at position 1)"
    );
    assert_eq!(
        msg(validate_write_options(
            "UpdateOptions",
            Some(&"m".repeat(129))
        )),
        "UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
    );
}

#[test]
fn a_change_undone_before_storing_leaves_the_times_alone() {
    let mut s = Server::builtin("", "v1", "configmaps");
    s.write(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}}),
        "kubectl-create",
    );
    let old = s.obj().clone();
    // The manager is recorded for a change a later step (say, the strategy) reverts.
    let mut new = old.clone();
    new["metadata"]["managedFields"][0]["time"] = json!("2024-05-01T11:00:00Z");
    revert_time_only_changes(&old, &mut new);
    assert_eq!(new, old);
    // A real change keeps the new time.
    let mut changed = old.clone();
    changed["data"]["k"] = json!("w");
    changed["metadata"]["managedFields"][0]["time"] = json!("2024-05-01T11:00:00Z");
    let before = changed.clone();
    revert_time_only_changes(&old, &mut changed);
    assert_eq!(changed, before);
}
