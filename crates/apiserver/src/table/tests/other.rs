use serde_json::json;

use super::{ago, check_rows, columns};

#[test]
fn ingress_rows() {
    let ing = json!({"metadata": {"name": "web", "creationTimestamp": ago(30)},
        "spec": {"ingressClassName": "traefik",
                 "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}],
                 "tls": [{"hosts": ["a.example.com"]}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.0.20"}, {"ip": "192.168.0.10"}]}}});
    let bare = json!({"metadata": {"name": "any", "creationTimestamp": ago(30)},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}});
    check_rows(
        "networking.k8s.io",
        "v1",
        "ingresses",
        &[
            (
                "hosts and tls",
                ing,
                json!([
                    "web",
                    "traefik",
                    "a.example.com,b.example.com,c.example.com + 2 more...",
                    "192.168.0.10,192.168.0.20",
                    "80, 443",
                    "30s"
                ]),
            ),
            (
                "default backend only",
                bare,
                json!(["any", "<none>", "*", "", "80", "30s"]),
            ),
        ],
    );
    check_rows(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        &[(
            "with parameters",
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
                "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
            json!([
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
                "<unknown>"
            ]),
        )],
    );
    check_rows(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        &[
            (
                "all pods",
                json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}),
                json!(["deny", "<none>", "<unknown>"]),
            ),
            (
                "some pods",
                json!({"metadata": {"name": "allow"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}}),
                json!(["allow", "role=db", "<unknown>"]),
            ),
        ],
    );
    check_rows(
        "networking.k8s.io",
        "v1",
        "ipaddresses",
        &[(
            "service ip",
            json!({"metadata": {"name": "10.43.0.1"},
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}}),
            json!(["10.43.0.1", "services/default/kubernetes", "<unknown>"]),
        )],
    );
    check_rows(
        "networking.k8s.io",
        "v1",
        "servicecidrs",
        &[(
            "dual stack",
            json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.43.0.0/16", "fd00:43::/112"]}}),
            json!(["kubernetes", "10.43.0.0/16,fd00:43::/112", "<unknown>"]),
        )],
    );
}

#[test]
fn endpoint_slice_rows() {
    let slice = json!({"metadata": {"name": "web-abc", "creationTimestamp": ago(5)}, "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80}, {"name": "named"}, {}],
        "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6", "10.42.0.7"]}, {"addresses": ["10.42.0.8"]}]});
    check_rows(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        &[
            (
                "ports and endpoints",
                slice,
                json!([
                    "web-abc",
                    "IPv4",
                    "80,named,*",
                    "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more...",
                    "5s"
                ]),
            ),
            (
                "empty",
                json!({"metadata": {"name": "e"}, "addressType": "IPv6"}),
                json!(["e", "IPv6", "<unset>", "<unset>", "<unknown>"]),
            ),
        ],
    );
}

#[test]
fn rbac_bindings() {
    let rb = json!({"metadata": {"name": "rb", "creationTimestamp": ago(5)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                     {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}, {"kind": "User", "name": "bob"}]});
    check_rows(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        &[(
            "all subject kinds",
            rb.clone(),
            json!([
                "rb",
                "ClusterRole/view",
                "5s",
                "alice, bob",
                "devs",
                "tools/ci"
            ]),
        )],
    );
    check_rows(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        &[(
            "no subjects",
            json!({"metadata": {"name": "crb"}, "roleRef": {"kind": "ClusterRole", "name": "admin"}}),
            json!(["crb", "ClusterRole/admin", "<unknown>", "", "", ""]),
        )],
    );
    assert_eq!(
        columns("rbac.authorization.k8s.io", "v1", "clusterroles").len(),
        2
    );
}

#[test]
fn storage_rows() {
    let sc = json!({"metadata": {"name": "local-path", "creationTimestamp": ago(5),
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    check_rows(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        &[
            (
                "default",
                sc,
                json!([
                    "local-path (default)",
                    "rancher.io/local-path",
                    "Delete",
                    "WaitForFirstConsumer",
                    false,
                    "5s"
                ]),
            ),
            (
                "explicit",
                json!({"metadata": {"name": "fast"}, "provisioner": "x", "reclaimPolicy": "Retain", "allowVolumeExpansion": true}),
                json!(["fast", "x", "Retain", "Immediate", true, "<unknown>"]),
            ),
        ],
    );
    check_rows(
        "storage.k8s.io",
        "v1",
        "csidrivers",
        &[
            (
                "defaults",
                json!({"metadata": {"name": "d"}, "spec": {}}),
                json!([
                    "d",
                    true,
                    false,
                    false,
                    "<unset>",
                    false,
                    "<none>",
                    "<unknown>"
                ]),
            ),
            (
                "full",
                json!({"metadata": {"name": "e"}, "spec": {"attachRequired": false, "podInfoOnMount": true,
                        "storageCapacity": true, "tokenRequests": [{"audience": "a"}, {"audience": "b"}],
                        "requiresRepublish": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
                json!([
                    "e",
                    false,
                    true,
                    true,
                    "a,b",
                    true,
                    "Persistent,Ephemeral",
                    "<unknown>"
                ]),
            ),
        ],
    );
    check_rows(
        "storage.k8s.io",
        "v1",
        "csinodes",
        &[(
            "drivers",
            json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}]}}),
            json!(["n1", 1, "<unknown>"]),
        )],
    );
    check_rows(
        "storage.k8s.io",
        "v1",
        "csistoragecapacities",
        &[
            (
                "capacity",
                json!({"metadata": {"name": "c"}, "storageClassName": "sc", "capacity": "100Gi"}),
                json!(["c", "sc", "100Gi"]),
            ),
            (
                "unset",
                json!({"metadata": {"name": "c"}, "storageClassName": "sc"}),
                json!(["c", "sc", "<unset>"]),
            ),
        ],
    );
    check_rows(
        "storage.k8s.io",
        "v1",
        "volumeattachments",
        &[(
            "attached",
            json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com",
                            "source": {"persistentVolumeName": "pv1"}, "nodeName": "n1"}, "status": {"attached": true}}),
            json!(["va", "csi.example.com", "pv1", "n1", true, "<unknown>"]),
        )],
    );
}

#[test]
fn policy_scheduling_coordination_node() {
    check_rows(
        "policy",
        "v1",
        "poddisruptionbudgets",
        &[
            (
                "min available",
                json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}}),
                json!(["pdb", "2", "N/A", 1, "<unknown>"]),
            ),
            (
                "max unavailable percent",
                json!({"metadata": {"name": "pdb"}, "spec": {"maxUnavailable": "25%"}}),
                json!(["pdb", "N/A", "25%", 0, "<unknown>"]),
            ),
        ],
    );
    check_rows(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        &[(
            "system",
            json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"}),
            json!([
                "system-node-critical",
                2000001000,
                false,
                "<unknown>",
                "PreemptLowerPriority"
            ]),
        )],
    );
    check_rows(
        "coordination.k8s.io",
        "v1",
        "leases",
        &[
            (
                "held",
                json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "host_1234"}}),
                json!(["kube-scheduler", "host_1234", "<unknown>"]),
            ),
            (
                "free",
                json!({"metadata": {"name": "l"}, "spec": {}}),
                json!(["l", "", "<unknown>"]),
            ),
        ],
    );
    check_rows(
        "node.k8s.io",
        "v1",
        "runtimeclasses",
        &[(
            "runc",
            json!({"metadata": {"name": "runc"}, "handler": "runc"}),
            json!(["runc", "runc", "<unknown>"]),
        )],
    );
}

#[test]
fn certificates_and_admission() {
    let csr = json!({"metadata": {"name": "csr-1", "creationTimestamp": ago(30)},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice", "expirationSeconds": 86400},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
    check_rows(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        &[
            (
                "issued",
                csr,
                json!([
                    "csr-1",
                    "30s",
                    "kubernetes.io/kube-apiserver-client",
                    "alice",
                    "24h",
                    "Approved,Issued"
                ]),
            ),
            (
                "pending",
                json!({"metadata": {"name": "p"}, "spec": {}}),
                json!(["p", "<unknown>", "<none>", "", "<none>", "Pending"]),
            ),
        ],
    );
    check_rows(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        &[(
            "two webhooks",
            json!({"metadata": {"name": "w"}, "webhooks": [{}, {}]}),
            json!(["w", 2, "<unknown>"]),
        )],
    );
    check_rows(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        &[(
            "param kind",
            json!({"metadata": {"name": "p"}, "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                              "validations": [{"expression": "true"}]}}),
            json!(["p", 1, "v1/ConfigMap", "<unknown>"]),
        )],
    );
    check_rows(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        &[
            (
                "named param",
                json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}}),
                json!(["b", "p", "*/cfg", "<unknown>"]),
            ),
            (
                "selector param",
                json!({"metadata": {"name": "b"}, "spec": {"policyName": "p",
                                  "paramRef": {"selector": {"matchLabels": {"env": "prod"}}}}}),
                json!([
                    "b",
                    "p",
                    "&LabelSelector{MatchLabels:map[string]string{env: prod,},MatchExpressions:[]LabelSelectorRequirement{},}",
                    "<unknown>"
                ]),
            ),
        ],
    );
}

#[test]
fn horizontal_pod_autoscalers() {
    let v2 = json!({"metadata": {"name": "web", "creationTimestamp": ago(60)},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                 "metrics": [
                     {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                     {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}}},
                     {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}]}});
    let v2_pods = json!({"metadata": {"name": "q"},
        "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "q"}, "maxReplicas": 3,
                 "metrics": [{"type": "Pods", "pods": {"target": {"averageValue": "100"}}},
                             {"type": "External", "external": {"target": {"value": "5"}}}]},
        "status": {"currentMetrics": [{"type": "Pods", "pods": {"current": {"averageValue": "20"}}}]}});
    check_rows(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        &[
            (
                "three metrics",
                v2,
                json!([
                    "web",
                    "Deployment/web",
                    "cpu: 45%/80%, memory: <unknown>/200Mi + 1 more...",
                    "1",
                    10,
                    3,
                    "60s"
                ]),
            ),
            (
                "pods and external",
                v2_pods,
                json!([
                    "q",
                    "StatefulSet/q",
                    "20/100, <unknown>/5",
                    "<unset>",
                    3,
                    0,
                    "<unknown>"
                ]),
            ),
            (
                "no metrics",
                json!({"metadata": {"name": "n"}, "spec": {"maxReplicas": 2}}),
                json!(["n", "/", "<none>", "<unset>", 2, 0, "<unknown>"]),
            ),
        ],
    );
    let v1 = json!({"metadata": {"name": "old"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"}, "minReplicas": 2, "maxReplicas": 5,
                 "targetCPUUtilizationPercentage": 70},
        "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 12}});
    check_rows(
        "autoscaling",
        "v1",
        "horizontalpodautoscalers",
        &[(
            "v1 cpu target",
            v1,
            json!([
                "old",
                "Deployment/old",
                "cpu: 12%/70%",
                "2",
                5,
                2,
                "<unknown>"
            ]),
        )],
    );
}
