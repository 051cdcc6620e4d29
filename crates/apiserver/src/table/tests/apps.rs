use serde_json::{Value, json};

use super::{ago, check_rows, columns};

fn template(containers: Value) -> Value {
    json!({"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": containers}})
}

#[test]
fn deployment_columns_and_rows() {
    let names: Vec<(String, u64)> = columns("apps", "v1", "deployments");
    assert_eq!(
        names,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
        .map(|(n, p)| (n.to_string(), p))
        .to_vec()
    );
    // The seed nginx-deployment right after creation: no status yet.
    let seed = json!({"metadata": {"name": "nginx-deployment", "namespace": "default", "creationTimestamp": ago(12)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
                 "template": template(json!([{"name": "nginx", "image": "nginx:1.14.2"}]))},
        "status": {}});
    let rolled = json!({"metadata": {"name": "web", "creationTimestamp": ago(4000)},
        "spec": {"replicas": 2,
                 "selector": {"matchLabels": {"app": "web"},
                              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
                 "template": template(json!([{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]))},
        "status": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
    let defaulted = json!({"metadata": {"name": "d"}, "spec": {"template": template(json!([]))}});
    check_rows(
        "apps",
        "v1",
        "deployments",
        &[
            (
                "seed without status",
                seed,
                json!([
                    "nginx-deployment",
                    "0/3",
                    0,
                    0,
                    "12s",
                    "nginx",
                    "nginx:1.14.2",
                    "app=nginx"
                ]),
            ),
            (
                "rolled out",
                rolled,
                json!([
                    "web",
                    "2/2",
                    2,
                    2,
                    "66m",
                    "a,b",
                    "ia,ib",
                    "app=web,tier in (be,fe)"
                ]),
            ),
            (
                "no selector, default replicas",
                defaulted,
                json!(["d", "0/1", 0, 0, "<unknown>", "", "", ""]),
            ),
        ],
    );
}

#[test]
fn replica_set_stateful_set_daemon_set() {
    let rs = json!({"metadata": {"name": "web-7d9", "creationTimestamp": ago(100)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d9"}},
                 "template": template(json!([{"name": "nginx", "image": "nginx"}]))},
        "status": {"replicas": 3, "readyReplicas": 2}});
    check_rows(
        "apps",
        "v1",
        "replicasets",
        &[
            (
                "scaling",
                rs,
                json!([
                    "web-7d9",
                    3,
                    3,
                    2,
                    "100s",
                    "nginx",
                    "nginx",
                    "app=web,pod-template-hash=7d9"
                ]),
            ),
            (
                "empty selector",
                json!({"metadata": {"name": "r"}, "spec": {"replicas": 0, "selector": {}}}),
                json!(["r", 0, 0, 0, "<unknown>", "", "", "<none>"]),
            ),
        ],
    );
    let sts = json!({"metadata": {"name": "db", "creationTimestamp": ago(100)},
        "spec": {"replicas": 3, "template": template(json!([{"name": "pg", "image": "postgres:16"}]))},
        "status": {"readyReplicas": 1}});
    check_rows(
        "apps",
        "v1",
        "statefulsets",
        &[(
            "partly ready",
            sts,
            json!(["db", "1/3", "100s", "pg", "postgres:16"]),
        )],
    );
    let ds = json!({"metadata": {"name": "proxy", "creationTimestamp": ago(100)},
        "spec": {"selector": {"matchLabels": {"k8s-app": "proxy"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                       "containers": [{"name": "p", "image": "proxy:1"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 3, "numberAvailable": 2}});
    check_rows(
        "apps",
        "v1",
        "daemonsets",
        &[
            (
                "rolling",
                ds,
                json!([
                    "proxy",
                    3,
                    3,
                    2,
                    3,
                    2,
                    "kubernetes.io/os=linux",
                    "100s",
                    "p",
                    "proxy:1",
                    "k8s-app=proxy"
                ]),
            ),
            (
                "no node selector",
                json!({"metadata": {"name": "x"}}),
                json!(["x", 0, 0, 0, 0, 0, "<none>", "<unknown>", "", "", "<none>"]),
            ),
        ],
    );
}

#[test]
fn controller_revision_rows() {
    let owned = json!({"metadata": {"name": "proxy-5c8", "creationTimestamp": ago(100),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "controller": true}]},
        "revision": 2});
    check_rows(
        "apps",
        "v1",
        "controllerrevisions",
        &[
            (
                "owned",
                owned,
                json!(["proxy-5c8", "daemonset.apps/proxy", 2, "100s"]),
            ),
            (
                "orphan",
                json!({"metadata": {"name": "o"}, "revision": 1}),
                json!(["o", "<none>", 1, "<unknown>"]),
            ),
        ],
    );
}

#[test]
fn job_rows() {
    let running = json!({"metadata": {"name": "pi", "creationTimestamp": ago(200)},
        "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                 "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"startTime": ago(190), "active": 1}});
    let complete = json!({"metadata": {"name": "done", "creationTimestamp": ago(4000)},
        "spec": {"completions": 3, "template": {"spec": {"containers": []}}},
        "status": {"startTime": ago(3900), "completionTime": ago(3700), "succeeded": 3,
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
    let parallel = json!({"metadata": {"name": "work", "creationTimestamp": ago(10)},
        "spec": {"parallelism": 4, "suspend": true},
        "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
    let failed = json!({"metadata": {"name": "f", "creationTimestamp": ago(10)},
        "spec": {"completions": 1},
        "status": {"failed": 6, "conditions": [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}]}});
    check_rows(
        "batch",
        "v1",
        "jobs",
        &[
            (
                "running",
                running,
                json!([
                    "pi",
                    "Running",
                    "0/1",
                    "3m10s",
                    "3m20s",
                    "pi",
                    "perl",
                    "batch.kubernetes.io/controller-uid=u1"
                ]),
            ),
            (
                "complete",
                complete,
                json!(["done", "Complete", "3/3", "3m20s", "66m", "", "", "<none>"]),
            ),
            (
                "suspended parallel",
                parallel,
                json!(["work", "Suspended", "0/1 of 4", "", "10s", "", "", "<none>"]),
            ),
            (
                "failed",
                failed,
                json!(["f", "Failed", "0/1", "", "10s", "", "", "<none>"]),
            ),
        ],
    );
}

#[test]
fn cron_job_rows() {
    let cj = json!({"metadata": {"name": "hello", "creationTimestamp": ago(600)},
        "spec": {"schedule": "*/1 * * * *", "suspend": false,
                 "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(45)}});
    let tz =
        json!({"metadata": {"name": "tz"}, "spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}});
    check_rows(
        "batch",
        "v1",
        "cronjobs",
        &[
            (
                "active",
                cj,
                json!([
                    "hello",
                    "*/1 * * * *",
                    "<none>",
                    "False",
                    1,
                    "45s",
                    "10m",
                    "hello",
                    "busybox",
                    "<none>"
                ]),
            ),
            (
                "never scheduled",
                tz,
                json!([
                    "tz",
                    "@daily",
                    "Etc/UTC",
                    "<unset>",
                    0,
                    "<none>",
                    "<unknown>",
                    "",
                    "",
                    "<none>"
                ]),
            ),
        ],
    );
}
