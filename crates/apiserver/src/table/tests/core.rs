use serde_json::{Value, json};

use super::{ago, check_rows};

fn svc(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "web", "creationTimestamp": ago(180)}, "spec": spec, "status": status})
}

#[test]
fn service_rows() {
    check_rows(
        "",
        "v1",
        "services",
        &[
            (
                "cluster ip",
                svc(
                    json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    "selector": {"k8s-app": "kube-dns"}}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ClusterIP",
                    "10.43.0.10",
                    "<none>",
                    "53/UDP,53/TCP",
                    "3m",
                    "k8s-app=kube-dns"
                ]),
            ),
            (
                "node port",
                svc(
                    json!({"type": "NodePort", "clusterIPs": ["10.43.1.2"],
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
                    "selector": {"app": "web", "tier": "fe"}}),
                    json!({}),
                ),
                json!([
                    "web",
                    "NodePort",
                    "10.43.1.2",
                    "<none>",
                    "80:30080/TCP",
                    "3m",
                    "app=web,tier=fe"
                ]),
            ),
            (
                "load balancer pending",
                svc(
                    json!({"type": "LoadBalancer", "clusterIPs": ["10.43.1.3"],
                    "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
                    json!({"loadBalancer": {}}),
                ),
                json!([
                    "web",
                    "LoadBalancer",
                    "10.43.1.3",
                    "<pending>",
                    "443:31443/TCP",
                    "3m",
                    "<none>"
                ]),
            ),
            (
                "load balancer with ingress and external ips",
                svc(
                    json!({"type": "LoadBalancer", "clusterIPs": ["10.43.1.3"], "externalIPs": ["1.2.3.4"],
                    "ports": [{"port": 80, "protocol": "TCP"}]}),
                    json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.20"}, {"hostname": "lb.example.com"}]}}),
                ),
                json!([
                    "web",
                    "LoadBalancer",
                    "10.43.1.3",
                    "192.168.1.20,lb.example.com,1.2.3.4",
                    "80/TCP",
                    "3m",
                    "<none>"
                ]),
            ),
            (
                "external name",
                svc(
                    json!({"type": "ExternalName", "externalName": "db.example.com"}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ExternalName",
                    "<none>",
                    "db.example.com",
                    "<none>",
                    "3m",
                    "<none>"
                ]),
            ),
            (
                "headless",
                svc(
                    json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
                    json!({}),
                ),
                json!([
                    "web",
                    "ClusterIP",
                    "None",
                    "<none>",
                    "<none>",
                    "3m",
                    "<none>"
                ]),
            ),
        ],
    );
}

#[test]
fn node_rows() {
    let ready = json!({
        "metadata": {"name": "n1", "creationTimestamp": ago(3 * 86400),
                     "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "true",
                                "kubernetes.io/hostname": "n1"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.0.10"}, {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 13 (trixie)",
                                "kernelVersion": "6.12.0", "containerRuntimeVersion": "containerd://1.7.24"}}});
    let bare = json!({"metadata": {"name": "n2", "labels": {"kubernetes.io/role": "worker"}},
                      "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    let fresh = json!({"metadata": {"name": "n3"}});
    check_rows(
        "",
        "v1",
        "nodes",
        &[
            (
                "ready cordoned control plane",
                ready,
                json!([
                    "n1",
                    "Ready,SchedulingDisabled",
                    "control-plane,master",
                    "3d",
                    "v1.33.0",
                    "192.168.0.10",
                    "<none>",
                    "Debian GNU/Linux 13 (trixie)",
                    "6.12.0",
                    "containerd://1.7.24"
                ]),
            ),
            (
                "not ready",
                bare,
                json!([
                    "n2",
                    "NotReady",
                    "worker",
                    "<unknown>",
                    "",
                    "<none>",
                    "<none>",
                    "<unknown>",
                    "<unknown>",
                    "<unknown>"
                ]),
            ),
            (
                "no conditions",
                fresh,
                json!([
                    "n3",
                    "Unknown",
                    "<none>",
                    "<unknown>",
                    "",
                    "<none>",
                    "<none>",
                    "<unknown>",
                    "<unknown>",
                    "<unknown>"
                ]),
            ),
        ],
    );
}

#[test]
fn small_core_kinds() {
    let meta = json!({"name": "x", "creationTimestamp": ago(7200)});
    check_rows(
        "",
        "v1",
        "namespaces",
        &[(
            "active",
            json!({"metadata": meta, "status": {"phase": "Active"}}),
            json!(["x", "Active", "120m"]),
        )],
    );
    check_rows(
        "",
        "v1",
        "configmaps",
        &[
            (
                "data and binary",
                json!({"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}),
                json!(["x", 2, "120m"]),
            ),
            ("empty", json!({"metadata": meta}), json!(["x", 0, "120m"])),
        ],
    );
    check_rows(
        "",
        "v1",
        "secrets",
        &[(
            "opaque",
            json!({"metadata": meta, "type": "Opaque", "data": {"u": "YQ==", "p": "Yg=="}}),
            json!(["x", "Opaque", 2, "120m"]),
        )],
    );
    check_rows(
        "",
        "v1",
        "serviceaccounts",
        &[(
            "default",
            json!({"metadata": meta}),
            json!(["x", 0, "120m"]),
        )],
    );
    check_rows(
        "",
        "v1",
        "replicationcontrollers",
        &[(
            "rc",
            json!({"metadata": meta, "spec": {"replicas": 3, "selector": {"app": "a"},
                      "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
                      "status": {"replicas": 3, "readyReplicas": 1}}),
            json!(["x", 3, 3, 1, "120m", "c", "busybox", "app=a"]),
        )],
    );
    check_rows(
        "",
        "v1",
        "podtemplates",
        &[(
            "template",
            json!({"metadata": meta, "template": {"metadata": {"labels": {"app": "a"}},
                            "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c2", "image": "i2"}]}}}),
            json!(["x", "c1,c2", "i1,i2", "app=a"]),
        )],
    );
}

#[test]
fn endpoints_rows() {
    let many = json!({"metadata": {"name": "web", "creationTimestamp": ago(10)},
        "subsets": [{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}],
                     "ports": [{"port": 80}, {"port": 443}]}]});
    let headless = json!({"metadata": {"name": "h", "creationTimestamp": ago(10)},
        "subsets": [{"addresses": [{"ip": "fd00::1"}]}]});
    let v6 = json!({"metadata": {"name": "v6", "creationTimestamp": ago(10)},
        "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
    check_rows(
        "",
        "v1",
        "endpoints",
        &[
            (
                "more than three",
                many,
                json!([
                    "web",
                    "10.42.0.5:80,10.42.0.6:80,10.42.0.5:443 + 1 more...",
                    "10s"
                ]),
            ),
            ("headless", headless, json!(["h", "fd00::1", "10s"])),
            ("ipv6", v6, json!(["v6", "[fd00::1]:80", "10s"])),
            (
                "none",
                json!({"metadata": {"name": "e"}}),
                json!(["e", "<none>", "<unknown>"]),
            ),
        ],
    );
}

#[test]
fn event_rows() {
    let core = json!({"metadata": {"name": "nginx.17f", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "nginx", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"}, "count": 3,
        "firstTimestamp": ago(300), "lastTimestamp": ago(60)});
    check_rows(
        "",
        "v1",
        "events",
        &[
            (
                "core event",
                core,
                json!([
                    "60s",
                    "Normal",
                    "Pulled",
                    "pod/nginx",
                    "spec.containers{nginx}",
                    "kubelet, n1",
                    "Successfully pulled image \"nginx\"",
                    "5m",
                    3,
                    "nginx.17f"
                ]),
            ),
            (
                "new-style core event",
                json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"},
                "reason": "Starting", "type": "Normal", "eventTime": "2025-06-01T11:58:59.500000Z",
                "reportingComponent": "kube-proxy", "reportingInstance": "n1",
                "firstTimestamp": null, "lastTimestamp": null}),
                json!([
                    "60s",
                    "Normal",
                    "Starting",
                    "node",
                    "",
                    "kube-proxy, n1",
                    "",
                    "60s",
                    1,
                    "e"
                ]),
            ),
        ],
    );
    let v1 = json!({"metadata": {"name": "e2"}, "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "note": "Scaled up", "type": "Normal",
        "eventTime": ago(30), "reportingController": "deployment-controller",
        "series": {"count": 5, "lastObservedTime": ago(20)}});
    check_rows(
        "events.k8s.io",
        "v1",
        "events",
        &[(
            "events.k8s.io with series",
            v1,
            json!([
                "20s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled up",
                "30s",
                5,
                "e2"
            ]),
        )],
    );
}

#[test]
fn persistent_volume_rows() {
    let pv = json!({"metadata": {"name": "pv1", "creationTimestamp": ago(60)},
        "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
                 "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}});
    check_rows(
        "",
        "v1",
        "persistentvolumes",
        &[(
            "bound",
            pv,
            json!([
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "local",
                "<unset>",
                "",
                "60s",
                "Filesystem"
            ]),
        )],
    );
    let bound = json!({"metadata": {"name": "data", "creationTimestamp": ago(60),
                                    "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
        "spec": {"volumeName": "pv1", "storageClassName": "local", "resources": {"requests": {"storage": "5Gi"}}},
        "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}});
    let pending = json!({"metadata": {"name": "new", "creationTimestamp": ago(60), "deletionTimestamp": ago(1)},
        "spec": {"storageClassName": "local", "volumeMode": "Block"}, "status": {"phase": "Pending"}});
    check_rows(
        "",
        "v1",
        "persistentvolumeclaims",
        &[
            (
                "bound",
                bound,
                json!([
                    "data", "Bound", "pv1", "10Gi", "RWO", "legacy", "<unset>", "60s", "<unset>"
                ]),
            ),
            (
                "pending and deleting",
                pending,
                json!([
                    "new",
                    "Terminating",
                    "",
                    "",
                    "",
                    "local",
                    "<unset>",
                    "60s",
                    "Block"
                ]),
            ),
        ],
    );
}

#[test]
fn resource_quota_rows() {
    let quota = json!({"metadata": {"name": "q", "creationTimestamp": ago(30)},
        "status": {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi"},
                   "used": {"pods": "2", "requests.cpu": "500m"}}});
    check_rows(
        "",
        "v1",
        "resourcequotas",
        &[(
            "mixed",
            quota,
            json!([
                "q",
                "pods: 2/10, requests.cpu: 500m/1",
                "limits.memory: 0/2Gi",
                "30s"
            ]),
        )],
    );
}
