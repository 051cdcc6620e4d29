//! Patches real clients send, with the results upstream's API server gives.

use serde_json::json;

use super::{Case, deployment, pod, run};

#[test]
fn kubectl_metadata_patches() {
    let labelled = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"app": "web"}, "annotations": {"a": "1"}},
        "data": {"k": "v", "gone": "x"}});
    run(vec![
        Case {
            name: "kubectl label adds a label, keeping the others",
            resource: "v1/configmaps",
            original: labelled.clone(),
            patch: json!({"metadata": {"labels": {"tier": "db"}}}),
            want: json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": {"app": "web", "tier": "db"}, "annotations": {"a": "1"}},
                "data": {"k": "v", "gone": "x"}}),
        },
        Case {
            name: "kubectl label app- sends null, which deletes the key",
            resource: "v1/configmaps",
            original: labelled.clone(),
            patch: json!({"metadata": {"labels": {"app": null}}}),
            want: json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": {}, "annotations": {"a": "1"}},
                "data": {"k": "v", "gone": "x"}}),
        },
        Case {
            name: "kubectl annotate --overwrite replaces one value; data merges key by key",
            resource: "v1/configmaps",
            original: labelled.clone(),
            patch: json!({"metadata": {"annotations": {"a": "2"}}, "data": {"gone": null, "new": "n"}}),
            want: json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": {"app": "web"}, "annotations": {"a": "2"}},
                "data": {"k": "v", "new": "n"}}),
        },
        Case {
            name: "labels on an object without any are created",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c"}}),
            patch: json!({"metadata": {"labels": {"a": "b", "dropped": null}}}),
            want: json!({"metadata": {"name": "c", "labels": {"a": "b"}}}),
        },
        Case {
            name: "finalizers are a set: new ones go first, existing ones stay once",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c", "finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["c", "a"]}}),
            want: json!({"metadata": {"name": "c", "finalizers": ["c", "a", "b"]}}),
        },
        Case {
            name: "$deleteFromPrimitiveList/finalizers removes a finalizer (controllers do this)",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c", "finalizers": ["a", "b", "a"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zzz"]}}),
            want: json!({"metadata": {"name": "c", "finalizers": ["b"]}}),
        },
        Case {
            name: "kubectl apply drops one finalizer and adds another, ordered",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c", "finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {
                "$setElementOrder/finalizers": ["a", "c"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "finalizers": ["c"]}}),
            want: json!({"metadata": {"name": "c", "finalizers": ["a", "c"]}}),
        },
        Case {
            name: "ownerReferences merge by uid",
            resource: "v1/configmaps",
            original: json!({"metadata": {"name": "c", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}]}}),
            patch: json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "controller": true},
                {"apiVersion": "v1", "kind": "Pod", "name": "q", "uid": "u2"}]}}),
            want: json!({"metadata": {"name": "c", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1", "controller": true},
                {"apiVersion": "v1", "kind": "Pod", "name": "q", "uid": "u2"}]}}),
        },
    ]);
}

#[test]
fn kubectl_deployment_patches() {
    let two = deployment(json!([
        {"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]}
    ]));
    let with_containers = |containers| deployment(containers);
    let mut recreate = two.clone();
    recreate["spec"]["strategy"] = json!({"type": "Recreate"});
    let mut rolling = two.clone();
    rolling["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    let mut scaled_down = two.clone();
    scaled_down["spec"]
        .as_object_mut()
        .map(|s| s.remove("replicas"));
    let mut restarted = two.clone();
    restarted["spec"]["template"]["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"});

    run(vec![
        Case {
            name: "kubectl set image changes one container of two",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.22"}]}}}}),
            want: with_containers(json!([
                {"name": "nginx", "image": "nginx:1.22", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]}
            ])),
        },
        Case {
            name: "kubectl set env adds a variable and deletes one by name",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {"containers": [
                {"name": "sidecar", "env": [{"name": "B", "value": "2"}, {"name": "A", "$patch": "delete"}]}
            ]}}}}),
            want: with_containers(json!([
                {"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "busybox", "env": [{"name": "B", "value": "2"}]}
            ])),
        },
        Case {
            name: "kubectl apply removes a container with a delete directive and an order",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"$patch": "delete", "name": "sidecar"}]}}}}),
            want: with_containers(json!([
                {"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]}
            ])),
        },
        Case {
            name: "kubectl apply adds an env var and orders it after the existing one",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                    "env": [{"name": "B", "value": "2"}],
                    "name": "sidecar"}]}}}}),
            want: with_containers(json!([
                {"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "busybox",
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
            ])),
        },
        Case {
            name: "kubectl apply adds a container before the existing ones",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "init"}, {"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{"name": "init", "image": "alpine"}]}}}}),
            want: with_containers(json!([
                {"name": "init", "image": "alpine"},
                {"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]}
            ])),
        },
        Case {
            name: "container ports merge by containerPort",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}}}}),
            want: with_containers(json!([
                {"name": "nginx", "image": "nginx:1.21",
                 "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]},
                {"name": "sidecar", "image": "busybox", "env": [{"name": "A", "value": "1"}]}
            ])),
        },
        Case {
            name: "kubectl apply switches RollingUpdate to Recreate with $retainKeys",
            resource: "apps/v1/deployments",
            original: rolling.clone(),
            patch: json!({"spec": {"strategy": {
                "$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}}),
            want: recreate.clone(),
        },
        Case {
            name: "null deletes a field (spec.replicas)",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"replicas": null}}),
            want: scaled_down,
        },
        Case {
            name: "kubectl rollout restart annotates the template",
            resource: "apps/v1/deployments",
            original: two.clone(),
            patch: json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}),
            want: restarted,
        },
    ]);
}

#[test]
fn client_and_kubelet_patches() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]}});
    let node =
        |conditions| json!({"metadata": {"name": "n"}, "status": {"conditions": conditions}});
    run(vec![
        Case {
            name: "Service ports merge by port: a new port is added (the Python client's check)",
            resource: "v1/services",
            original: svc.clone(),
            patch: json!({"spec": {"ports": [{"name": "new", "port": 8080, "protocol": "TCP", "targetPort": 8080}]}}),
            want: json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"selector": {"app": "web"}, "ports": [
                    {"name": "new", "port": 8080, "protocol": "TCP", "targetPort": 8080},
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}]}}),
        },
        Case {
            name: "Service port matched by port is updated in place",
            resource: "v1/services",
            original: svc.clone(),
            patch: json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
            want: json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"selector": {"app": "web"}, "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}}),
        },
        Case {
            name: "kubelet node status: conditions merge by type in $setElementOrder order",
            resource: "v1/nodes",
            original: node(json!([
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": "t1"},
                {"type": "Ready", "status": "False", "lastHeartbeatTime": "t1"}])),
            patch: json!({"status": {
                "$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
                "conditions": [
                    {"type": "MemoryPressure", "lastHeartbeatTime": "t2"},
                    {"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}]}}),
            want: node(json!([
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": "t2"},
                {"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}])),
        },
        Case {
            name: "kubectl taint replaces taints (no patch strategy)",
            resource: "v1/nodes",
            original: json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}),
            patch: json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
            want: json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
        },
        Case {
            name: "tolerations have no patch strategy, so the list is replaced",
            resource: "v1/pods",
            original: pod(json!({"tolerations": [{"key": "a", "operator": "Exists"}]})),
            patch: json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
            want: pod(json!({"tolerations": [{"key": "b", "operator": "Exists"}]})),
        },
        Case {
            name: "kubectl apply switches a volume's source with $retainKeys in the item",
            resource: "v1/pods",
            original: pod(
                json!({"volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]}),
            ),
            patch: json!({"spec": {
                "$setElementOrder/volumes": [{"name": "data"}, {"name": "tmp"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}]}}),
            want: pod(
                json!({"volumes": [{"name": "data", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}]}),
            ),
        },
        Case {
            name: "imagePullSecrets by name, hostAliases by ip, volumeMounts by mountPath",
            resource: "v1/pods",
            original: pod(json!({
                "imagePullSecrets": [{"name": "a"}],
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
                "containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/a"}]}]})),
            patch: json!({"spec": {
                "imagePullSecrets": [{"name": "b"}],
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
                "containers": [{"name": "c", "volumeMounts": [{"name": "w", "mountPath": "/a", "readOnly": true}]}]}}),
            want: pod(json!({
                "imagePullSecrets": [{"name": "b"}, {"name": "a"}],
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
                "containers": [{"name": "c", "volumeMounts": [{"name": "w", "mountPath": "/a", "readOnly": true}]}]})),
        },
    ]);
}
