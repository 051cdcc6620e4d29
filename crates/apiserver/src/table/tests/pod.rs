use serde_json::{Value, json};

use super::{ago, cells, check_rows, columns, options, render, rt};

fn pod(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(5)},
           "spec": spec, "status": status})
}

fn one_container() -> Value {
    json!({"containers": [{"name": "nginx", "image": "nginx"}]})
}

#[test]
fn pod_columns() {
    let want = [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ];
    let got = columns("", "v1", "pods");
    assert_eq!(got, want.map(|(n, p)| (n.to_string(), p)).to_vec());
}

#[test]
fn pod_rows() {
    let none = "<none>";
    check_rows(
        "",
        "v1",
        "pods",
        &[
            (
                "pending",
                pod(one_container(), json!({"phase": "Pending"})),
                json!(["p", "0/1", "Pending", "0", "5s", none, none, none, none]),
            ),
            (
                "container creating",
                pod(
                    json!({"nodeName": "n1", "containers": [{"name": "nginx"}]}),
                    json!({"phase": "Pending", "containerStatuses": [
                 {"name": "nginx", "ready": false, "restartCount": 0,
                  "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                ),
                json!([
                    "p",
                    "0/1",
                    "ContainerCreating",
                    "0",
                    "5s",
                    none,
                    "n1",
                    none,
                    none
                ]),
            ),
            (
                "running",
                pod(
                    json!({"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]}),
                    json!({"phase": "Running", "podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
                ),
                json!([
                    "p",
                    "2/2",
                    "Running",
                    "0",
                    "5s",
                    "10.42.0.5",
                    "n1",
                    none,
                    none
                ]),
            ),
            (
                "crash loop with restart age",
                pod(
                    one_container(),
                    json!({"phase": "Running", "containerStatuses": [
             {"name": "nginx", "ready": false, "restartCount": 4,
              "state": {"waiting": {"reason": "CrashLoopBackOff"}},
              "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(90)}}}]}),
                ),
                json!([
                    "p",
                    "0/1",
                    "CrashLoopBackOff",
                    "4 (90s ago)",
                    "5s",
                    none,
                    none,
                    none,
                    none
                ]),
            ),
            (
                "completed",
                pod(
                    one_container(),
                    json!({"phase": "Succeeded", "containerStatuses": [
             {"name": "nginx", "ready": false, "restartCount": 0,
              "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                json!(["p", "0/1", "Completed", "0", "5s", none, none, none, none]),
            ),
            (
                "exit code without reason",
                pod(
                    one_container(),
                    json!({"phase": "Failed", "containerStatuses": [
             {"name": "nginx", "state": {"terminated": {"exitCode": 137}}}]}),
                ),
                json!([
                    "p",
                    "0/1",
                    "ExitCode:137",
                    "0",
                    "5s",
                    none,
                    none,
                    none,
                    none
                ]),
            ),
            (
                "signal without reason",
                pod(
                    one_container(),
                    json!({"phase": "Failed", "containerStatuses": [
             {"name": "nginx", "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}),
                ),
                json!(["p", "0/1", "Signal:9", "0", "5s", none, none, none, none]),
            ),
            (
                "init running",
                pod(
                    json!({"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]}),
                    json!({"phase": "Pending", "initContainerStatuses": [
                 {"name": "init", "ready": false, "state": {"running": {}}}]}),
                ),
                json!(["p", "0/1", "Init:0/1", "0", "5s", none, none, none, none]),
            ),
            (
                "init crash loop",
                pod(
                    json!({"initContainers": [{"name": "init"}], "containers": [{"name": "app"}]}),
                    json!({"phase": "Pending", "initContainerStatuses": [
                 {"name": "init", "restartCount": 2,
                  "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
                ),
                json!([
                    "p",
                    "0/1",
                    "Init:CrashLoopBackOff",
                    "2",
                    "5s",
                    none,
                    none,
                    none,
                    none
                ]),
            ),
            (
                "init failed",
                pod(
                    json!({"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]}),
                    json!({"phase": "Pending", "initContainerStatuses": [
                 {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                 {"name": "b", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
                ),
                json!(["p", "0/1", "Init:Error", "0", "5s", none, none, none, none]),
            ),
            (
                "sidecar counts as a container",
                pod(
                    json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                    "containers": [{"name": "app"}]}),
                    json!({"phase": "Running",
                    "conditions": [{"type": "Initialized", "status": "True"},
                                   {"type": "Ready", "status": "True"}],
                    "initContainerStatuses": [
                        {"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                         "state": {"running": {}},
                         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(600)}}}],
                    "containerStatuses": [
                        {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
                ),
                json!([
                    "p",
                    "2/2",
                    "Running",
                    "1 (10m ago)",
                    "5s",
                    none,
                    none,
                    none,
                    none
                ]),
            ),
            (
                "completed container beside a running one",
                pod(
                    json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                    json!({"phase": "Running", "containerStatuses": [
                 {"name": "a", "ready": true, "state": {"running": {}}},
                 {"name": "b", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                json!(["p", "1/2", "NotReady", "0", "5s", none, none, none, none]),
            ),
            (
                "scheduling gated",
                pod(
                    one_container(),
                    json!({"phase": "Pending", "conditions": [
             {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                json!([
                    "p",
                    "0/1",
                    "SchedulingGated",
                    "0",
                    "5s",
                    none,
                    none,
                    none,
                    none
                ]),
            ),
            (
                "readiness gates and nominated node",
                pod(
                    json!({"containers": [{"name": "c"}],
                    "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]}),
                    json!({"phase": "Pending", "nominatedNodeName": "n2",
                    "conditions": [{"type": "example.com/a", "status": "True"},
                                   {"type": "example.com/b", "status": "False"}]}),
                ),
                json!(["p", "0/1", "Pending", "0", "5s", none, none, "n2", "1/2"]),
            ),
        ],
    );
}

#[test]
fn terminating_pods() {
    let mut running = pod(one_container(), json!({"phase": "Running"}));
    running["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cells("", "v1", "pods", &running)[2], "Terminating");
    let mut lost = running.clone();
    lost["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("", "v1", "pods", &lost)[2], "Unknown");
    let mut done = pod(one_container(), json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!(ago(1));
    assert_eq!(cells("", "v1", "pods", &done)[2], "Succeeded");
}

#[test]
fn finished_pods_carry_completed_condition() {
    let done = pod(one_container(), json!({"phase": "Succeeded"}));
    let table = render(&rt("", "v1", "pods"), &[&done], &options("1"));
    assert_eq!(
        table["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
    );
    let running = pod(one_container(), json!({"phase": "Running"}));
    let table = render(&rt("", "v1", "pods"), &[&running], &options("1"));
    assert!(table["rows"][0].get("conditions").is_none());
}
