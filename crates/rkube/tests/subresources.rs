//! The scale, binding and eviction subresources, through kubectl and on the wire.

mod common;

use common::{Server, manifests_dir};
use serde_json::json;

#[test]
fn kubectl_scale_changes_replicas_through_the_scale_subresource() {
    let s = Server::start(&[]);
    let deploy = manifests_dir().join("seeds/057_001_Deployment.yaml");
    s.ok(&["create", "-f", deploy.to_str().expect("path")]);
    let out = s.ok(&["scale", "deployment", "nginx-deployment", "--replicas=5"]);
    assert!(
        out.contains("deployment.apps/nginx-deployment scaled"),
        "{out}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "nginx-deployment",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}"
        ]),
        "5 2"
    );
    let scale = s
        .curl(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/nginx-deployment/scale",
            None,
            "",
        )
        .json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
    assert_eq!(scale["status"]["selector"], "app=nginx");
    let err = s.fails(&[
        "scale",
        "deployment",
        "nginx-deployment",
        "--replicas=2",
        "--current-replicas=3",
    ]);
    assert!(err.contains("Expected replicas to be 3, was 5"), "{err}");
}

#[test]
fn binding_assigns_a_pod_once() {
    // This test is the scheduler: a running one would race it, finding no node and
    // patching `PodScheduled=False` after (or before) our binding.
    let s = Server::start(&["--disable-scheduler"]);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let pods = "/api/v1/namespaces/default/pods";
    assert_eq!(
        s.curl("POST", pods, Some(&pod.to_string()), "application/json")
            .status,
        201
    );
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}});
    let r = s.curl(
        "POST",
        &format!("{pods}/p/binding"),
        Some(&binding.to_string()),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let got = s.curl("GET", &format!("{pods}/p"), None, "").json();
    assert_eq!(got["spec"]["nodeName"], "node-1");
    assert!(
        got["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
    );
    let r = s.curl(
        "POST",
        &format!("{pods}/p/binding"),
        Some(&binding.to_string()),
        "application/json",
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"node-1\""
    );
}

#[test]
fn eviction_respects_disruption_budgets() {
    // The API side of evictions only: this test writes the budget's status itself, the
    // disruption controller's job (tested in tests/controllers/disruption.rs).
    let s = Server::start(&["--disable-controllers"]);
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "myapp"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    assert_eq!(
        s.curl("POST", pods, Some(&pod.to_string()), "application/json")
            .status,
        201
    );
    // A running pod (its status as a node agent would report it).
    let status = json!({"status": {"phase": "Running"}}).to_string();
    assert_eq!(
        s.curl(
            "PATCH",
            &format!("{pods}/web/status"),
            Some(&status),
            "application/merge-patch+json"
        )
        .status,
        200
    );
    let pdb = manifests_dir().join("seeds/049_001_PodDisruptionBudget.yaml");
    s.ok(&["create", "-f", pdb.to_str().expect("path")]);
    let eviction =
        json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web"}})
            .to_string();
    let r = s.curl(
        "POST",
        &format!("{pods}/web/eviction"),
        Some(&eviction),
        "application/json",
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(s.curl("GET", &format!("{pods}/web"), None, "").status, 200);
    // Once the budget allows a disruption, the eviction deletes the pod.
    let pdb_path = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/app-pdb/status";
    let allow = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}}).to_string();
    assert_eq!(
        s.curl(
            "PATCH",
            pdb_path,
            Some(&allow),
            "application/merge-patch+json"
        )
        .status,
        200
    );
    let r = s.curl(
        "POST",
        &format!("{pods}/web/eviction"),
        Some(&eviction),
        "application/json",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.curl("GET", &format!("{pods}/web"), None, "").status, 404);
    let pdb = s.curl("GET", pdb_path, None, "").json();
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert!(pdb["status"]["disruptedPods"]["web"].is_string(), "{pdb}");
}
