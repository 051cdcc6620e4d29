//! Garbage collector: Background, Foreground and Orphan propagation, and dependents whose
//! owner never existed.

use super::common::jsonpath;
use super::{DEADLINE, cluster, names, rollout_status, wait_count, wait_for, wait_gone};

fn deployment(s: &super::common::Server, name: &str) {
    s.ok(&[
        "create",
        "deployment",
        name,
        "--image=busybox",
        "--replicas=2",
    ]);
    rollout_status(s, &format!("deploy/{name}"));
    assert_eq!(names(s, &["rs", "-l", &format!("app={name}")]).len(), 1);
}

#[test]
fn deleting_a_deployment_removes_its_replicasets_and_pods() {
    let (s, _sim) = cluster();
    deployment(&s, "bg");
    s.ok(&["delete", "deploy", "bg"]);
    wait_count(&s, &["rs", "-l", "app=bg"], 0);
    wait_count(&s, &["pods", "-l", "app=bg"], 0);
}

#[test]
fn foreground_deletion_removes_dependents_before_the_owner() {
    let (s, _sim) = cluster();
    deployment(&s, "fg");
    s.ok(&["delete", "deploy", "fg", "--cascade=foreground"]);
    wait_gone(&s, &["get", "deploy", "fg"]);
    // The owner went last: nothing it owned is left.
    assert!(names(&s, &["rs", "-l", "app=fg"]).is_empty());
    assert!(names(&s, &["pods", "-l", "app=fg"]).is_empty());
}

#[test]
fn orphan_deletion_leaves_dependents_without_the_owner_reference() {
    let (s, _sim) = cluster();
    deployment(&s, "or");
    s.ok(&["delete", "deploy", "or", "--cascade=orphan"]);
    wait_gone(&s, &["get", "deploy", "or"]);
    let rs = names(&s, &["rs", "-l", "app=or"]);
    assert_eq!(rs.len(), 1);
    let refs = jsonpath(&s, &["get", "rs", &rs[0]], "{.metadata.ownerReferences}");
    assert!(refs.is_empty(), "still owned: {refs}");
    // The ReplicaSet keeps its pods.
    assert_eq!(names(&s, &["pods", "-l", "app=or"]).len(), 2);
}

#[test]
fn an_object_whose_owner_does_not_exist_is_collected() {
    let (s, _sim) = cluster();
    let cm = r#"{"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dangling", "ownerReferences": [{"apiVersion": "v1",
            "kind": "ConfigMap", "name": "never-was", "uid": "00000000-0000-0000-0000-000000000001"}]}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], Some(cm));
    assert!(out.status.success(), "{out:?}");
    wait_for(DEADLINE, "the dangling ConfigMap collected", || {
        names(&s, &["configmap"])
            .iter()
            .all(|n| n != "dangling")
            .then_some(())
    });
}
