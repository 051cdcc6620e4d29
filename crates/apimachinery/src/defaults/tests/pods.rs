//! Pods: spec, container, probe and volume defaults, Pod-only defaults, admission.

use serde_json::json;

use super::{container, default_tolerations, defaulted, meta, template_spec};

/// seeds/087_004_ConfigMap-Pod.yaml: a bare Pod running `busybox` (no tag).
#[test]
fn seed_bare_busybox_pod_gets_pod_and_admission_defaults() {
    let c = json!({
        "name": "my-app-container", "image": "busybox",
        "command": ["sh", "-c", "echo API_ENDPOINT: $API_ENDPOINT; echo LOG_LEVEL: $LOG_LEVEL && sleep 3600"],
        "envFrom": [{"configMapRef": {"name": "my-app-config"}}]
    });
    let input = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("config-pod"),
        "spec": {"containers": [c.clone()]}});
    let mut spec = template_spec(json!({"containers": [container(c, "Always")]}));
    spec["enableServiceLinks"] = json!(true);
    spec["preemptionPolicy"] = json!("PreemptLowerPriority");
    spec["priority"] = json!(0);
    spec["serviceAccount"] = json!("default");
    spec["serviceAccountName"] = json!("default");
    spec["tolerations"] = default_tolerations();
    let want =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("config-pod"), "spec": spec});
    assert_eq!(defaulted("", "Pod", input), want);
}

/// Requests default to limits in Pods (seeds/011 sets both, so nothing changes there), never
/// in templates (seeds/004_001_DaemonSet.yaml limits memory only).
#[test]
fn requests_default_to_limits_in_pods_only() {
    let resources = json!({"limits": {"memory": "512Mi", "cpu": "1"}, "requests": {"cpu": "500m"}});
    let pod = defaulted(
        "",
        "Pod",
        json!({"metadata": meta("p"), "spec": {
            "containers": [{"name": "a", "image": "myapp:latest", "resources": resources}],
            "initContainers": [{"name": "i", "image": "x:1", "resources": {"limits": {"memory": "1Gi"}}}]
        }}),
    );
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "500m", "memory": "512Mi"})
    );
    assert_eq!(
        pod["spec"]["initContainers"][0]["resources"]["requests"],
        json!({"memory": "1Gi"})
    );
    let ds = defaulted(
        "apps",
        "DaemonSet",
        json!({"metadata": meta("fluentd"), "spec": {
            "selector": {"matchLabels": {"app": "fluentd"}},
            "template": {"metadata": {"labels": {"app": "fluentd"}}, "spec": {"containers": [
                {"name": "fluentd", "image": "fluentd:v1.14", "resources": {"limits": {"memory": "200Mi"}}}
            ]}}
        }}),
    );
    let spec = &ds["spec"];
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"memory": "200Mi"}})
    );
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    );
    assert_eq!(spec["revisionHistoryLimit"], json!(10));
    assert!(spec["template"]["spec"].get("enableServiceLinks").is_none());
    assert!(spec["template"]["spec"].get("tolerations").is_none());
    assert!(spec["template"]["spec"].get("serviceAccountName").is_none());
}

#[test]
fn pod_admission_respects_what_is_there() {
    let pod = defaulted(
        "",
        "Pod",
        json!({"metadata": {"name": "static-web", "annotations": {"kubernetes.io/config.mirror": "abc"}},
        "spec": {
            "containers": [{"name": "a", "image": "nginx"}],
            "priorityClassName": "system-node-critical",
            "tolerations": [{"operator": "Exists"}],
            "serviceAccount": "legacy"
        }}),
    );
    let spec = &pod["spec"];
    assert_eq!(spec["priority"], json!(2_000_001_000));
    assert_eq!(spec["tolerations"], json!([{"operator": "Exists"}]));
    // A mirror pod keeps the account it names; the deprecated field is read as the new one.
    assert_eq!(spec["serviceAccountName"], json!("legacy"));

    let pod = defaulted(
        "",
        "Pod",
        json!({"metadata": meta("p"), "spec": {
            "containers": [{"name": "a", "image": "nginx"}],
            "priorityClassName": "high",
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]
        }}),
    );
    let spec = &pod["spec"];
    assert!(
        spec.get("priority").is_none(),
        "a custom class needs a lookup"
    );
    assert_eq!(spec["tolerations"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        spec["tolerations"][1]["key"],
        json!("node.kubernetes.io/not-ready")
    );
}

#[test]
fn container_probe_env_and_volume_defaults() {
    let pod = defaulted(
        "",
        "Pod",
        json!({"metadata": meta("p"), "spec": {
            "hostNetwork": true,
            "containers": [{
                "name": "a", "image": "app@sha256:".to_string() + &"0".repeat(64),
                "ports": [{"containerPort": 8080}],
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "livenessProbe": {"httpGet": {"port": 8080}},
                "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
                "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}}
            }],
            "volumes": [
                {"name": "scratch"},
                {"name": "cfg", "configMap": {"name": "c"}},
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "host", "hostPath": {"path": "/var/log"}},
                {"name": "info", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
                {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}
            ]
        }}),
    );
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], json!("IfNotPresent"));
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
        json!("v1")
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
            "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], json!(5));
    assert_eq!(
        c["readinessProbe"]["grpc"],
        json!({"port": 9000, "service": ""})
    );
    assert_eq!(
        c["lifecycle"]["preStop"]["httpGet"],
        json!({"port": 80, "path": "/stop", "scheme": "HTTP"})
    );
    let v = &pod["spec"]["volumes"];
    assert_eq!(v[0], json!({"name": "scratch", "emptyDir": {}}));
    assert_eq!(v[1]["configMap"]["defaultMode"], json!(420));
    assert_eq!(v[2]["secret"]["defaultMode"], json!(256));
    assert_eq!(v[3]["hostPath"], json!({"path": "/var/log", "type": ""}));
    assert_eq!(v[4]["downwardAPI"]["defaultMode"], json!(420));
    assert_eq!(
        v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
        json!("v1")
    );
    assert_eq!(
        v[5]["projected"],
        json!({"defaultMode": 420, "sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}}]})
    );
    assert_eq!(
        v[6]["ephemeral"]["volumeClaimTemplate"]["spec"],
        json!({"accessModes": ["ReadWriteOnce"], "resources": {}, "volumeMode": "Filesystem"})
    );
}

#[test]
fn status_and_node_addresses_agree() {
    let pod = defaulted(
        "",
        "Pod",
        json!({"metadata": meta("p"), "status": {"podIP": "10.42.0.5", "hostIPs": [{"ip": "192.0.2.1"}, {"ip": "fd00::1"}]}}),
    );
    assert_eq!(pod["status"]["podIPs"], json!([{"ip": "10.42.0.5"}]));
    assert_eq!(pod["status"]["hostIP"], json!("192.0.2.1"));
    assert_eq!(pod["status"]["hostIPs"].as_array().map(Vec::len), Some(2));
    let node = defaulted(
        "",
        "Node",
        json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.42.1.0/24"]},
            "status": {"capacity": {"cpu": "4", "pods": "110"}}}),
    );
    assert_eq!(node["spec"]["podCIDR"], json!("10.42.1.0/24"));
    assert_eq!(
        node["status"]["allocatable"],
        json!({"cpu": "4", "pods": "110"})
    );
}
