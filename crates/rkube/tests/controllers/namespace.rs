//! Namespace controller: a deleted namespace empties and goes; a terminating one refuses
//! new content and says what it waits for.

use super::common::{apply, jsonpath};
use super::{DEADLINE, cluster, names, wait_for, wait_gone};

#[test]
fn deleting_a_namespace_removes_everything_in_it_and_then_the_namespace() {
    let (s, _sim) = cluster();
    s.ok(&["create", "namespace", "team"]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
    ]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=b",
    ]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "secret",
        "generic",
        "sec",
        "--from-literal=a=b",
    ]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:80",
    ]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "role",
        "r",
        "--verb=get",
        "--resource=pods",
    ]);
    let out = s.ok(&[
        "-n",
        "team",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=60s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    s.ok(&["delete", "namespace", "team", "--timeout=60s"]);
    wait_gone(&s, &["get", "namespace", "team"]);
    // The same name works again at once, empty but for its default ServiceAccount.
    s.ok(&["create", "namespace", "team"]);
    s.ok(&[
        "-n",
        "team",
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=b",
    ]);
    assert!(names(&s, &["-n", "team", "deploy,rs,pods,secrets,services,roles"]).is_empty());
}

#[test]
fn a_terminating_namespace_refuses_new_content_until_its_finalizers_are_done() {
    let (s, _sim) = cluster();
    s.ok(&["create", "namespace", "held"]);
    apply(
        &s,
        r#"{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "hold", "namespace": "held", "finalizers": ["example.com/hold"]}}"#,
    );
    s.ok(&["delete", "namespace", "held", "--wait=false"]);
    wait_for(DEADLINE, "NamespaceFinalizersRemaining", || {
        let c = jsonpath(
            &s,
            &["get", "namespace", "held"],
            r#"{.status.conditions[?(@.type=="NamespaceFinalizersRemaining")].message}"#,
        );
        c.contains("example.com/hold").then_some(())
    });
    assert_eq!(
        jsonpath(&s, &["get", "namespace", "held"], "{.status.phase}"),
        "Terminating"
    );
    let err = s.fails(&["-n", "held", "create", "configmap", "late"]);
    assert!(
        err.contains("forbidden: unable to create new content in namespace held because it is being terminated"),
        "{err}"
    );
    s.ok(&[
        "-n",
        "held",
        "patch",
        "configmap",
        "hold",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_gone(&s, &["get", "namespace", "held"]);
}
