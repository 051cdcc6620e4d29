//! Services, the other core kinds, the other groups, and odd input.

use serde_json::json;

use super::{defaulted, meta};

/// seeds/030_001_Service.yaml and seeds/058_001_Service.yaml
#[test]
fn seed_services() {
    let cluster_ip = defaulted(
        "",
        "Service",
        json!({"metadata": meta("my-service"), "spec": {
            "selector": {"app": "myapp"}, "ports": [{"port": 80, "targetPort": 8080}]
        }}),
    );
    assert_eq!(
        cluster_ip["spec"],
        json!({
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "myapp"},
            "sessionAffinity": "None",
            "type": "ClusterIP"
        })
    );
    let lb = defaulted(
        "",
        "Service",
        json!({"metadata": meta("nginx-service"), "spec": {
            "selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 80}], "type": "LoadBalancer"
        }}),
    );
    assert_eq!(
        lb["spec"],
        json!({
            "allocateLoadBalancerNodePorts": true,
            "externalTrafficPolicy": "Cluster",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "selector": {"app": "nginx"},
            "sessionAffinity": "None",
            "type": "LoadBalancer"
        })
    );
}

#[test]
fn service_target_port_affinity_and_families() {
    let svc = defaulted(
        "",
        "Service",
        json!({"metadata": meta("s"), "spec": {
            "clusterIP": "None",
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 80, "targetPort": ""}],
            "sessionAffinity": "ClientIP"
        }}),
    );
    let spec = &svc["spec"];
    assert_eq!(
        spec["ports"][0],
        json!({"port": 53, "protocol": "UDP", "targetPort": 53})
    );
    assert_eq!(spec["ports"][1]["targetPort"], json!(80));
    assert_eq!(
        spec["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    // Headless without a selector: both families.
    assert_eq!(spec["ipFamilyPolicy"], json!("RequireDualStack"));
    assert_eq!(spec["ipFamilies"], json!(["IPv4", "IPv6"]));

    let external_name = defaulted(
        "",
        "Service",
        json!({"metadata": meta("e"), "spec": {"type": "ExternalName", "externalName": "example.com",
            "sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
    );
    assert_eq!(
        external_name["spec"],
        json!({"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"})
    );

    let v6 = defaulted(
        "",
        "Service",
        json!({"metadata": meta("v6"), "spec": {"selector": {"a": "b"}, "clusterIPs": ["fd00::10"],
            "externalIPs": ["192.0.2.1"], "ports": [{"port": 1}]}}),
    );
    assert_eq!(v6["spec"]["ipFamilies"], json!(["IPv6"]));
    assert_eq!(v6["spec"]["externalTrafficPolicy"], json!("Cluster"));
}

/// seeds/053_001_Namespace.yaml, 067_002_PersistentVolumeClaim.yaml and friends.
#[test]
fn core_kinds() {
    let ns = defaulted(
        "",
        "Namespace",
        json!({"metadata": {"name": "production", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    );
    assert_eq!(
        ns["metadata"]["labels"],
        json!({"kubernetes.io/metadata.name": "production", "pod-security.kubernetes.io/enforce": "restricted"})
    );
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    let secret = defaulted("", "Secret", json!({"metadata": meta("s"), "data": {}}));
    assert_eq!(secret["type"], json!("Opaque"));
    let pvc = defaulted(
        "",
        "PersistentVolumeClaim",
        json!({"metadata": meta("database-pvc"), "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "100Gi"}}, "storageClassName": "fast-ssd"}}),
    );
    assert_eq!(pvc["spec"]["volumeMode"], json!("Filesystem"));
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));
    let pv = defaulted(
        "",
        "PersistentVolume",
        json!({"metadata": {"name": "pv"}, "spec": {"hostPath": {"path": "/d"}, "capacity": {"storage": "1Gi"}}}),
    );
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], json!("Retain"));
    assert_eq!(pv["spec"]["volumeMode"], json!("Filesystem"));
    assert_eq!(pv["spec"]["hostPath"]["type"], json!(""));
    assert_eq!(pv["status"], json!({"phase": "Pending"}));
    let ep = defaulted(
        "",
        "Endpoints",
        json!({"subsets": [{"ports": [{"port": 80}]}]}),
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], json!("TCP"));
    let lr = defaulted(
        "",
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}}),
    );
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "64Mi"})
    );
}

/// seeds/008, 010, 012, 015, 035, 068 and the kinds the seeds leave alone.
#[test]
fn other_groups() {
    let netpol = json!({"spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": [{"protocol": "TCP", "port": 8080}]}]}});
    assert_eq!(
        defaulted("networking.k8s.io", "NetworkPolicy", netpol.clone()),
        netpol
    );
    let egress_only = defaulted(
        "networking.k8s.io",
        "NetworkPolicy",
        json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(
        egress_only["spec"],
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}]})
    );

    let sc = defaulted(
        "storage.k8s.io",
        "StorageClass",
        json!({"provisioner": "p"}),
    );
    assert_eq!(
        sc,
        json!({"provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
    );
    let csi = defaulted(
        "storage.k8s.io",
        "CSIDriver",
        json!({"spec": {"attachRequired": true, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
    );
    assert_eq!(
        csi["spec"],
        json!({"attachRequired": true, "fsGroupPolicy": "ReadWriteOnceWithFSType", "podInfoOnMount": true,
            "requiresRepublish": false, "seLinuxMount": false, "storageCapacity": false,
            "volumeLifecycleModes": ["Persistent", "Ephemeral"]})
    );

    let hpa = json!({"apiVersion": "autoscaling/v2", "spec": {"minReplicas": 3, "maxReplicas": 10,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}});
    assert_eq!(
        defaulted("autoscaling", "HorizontalPodAutoscaler", hpa.clone()),
        hpa
    );
    let hpa = defaulted(
        "autoscaling",
        "HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(hpa["spec"]["minReplicas"], json!(1));
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        json!(80)
    );
    assert_eq!(
        hpa["spec"]["behavior"],
        json!({
            "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
            "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
        })
    );
    let v1 = defaulted(
        "autoscaling",
        "HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 5}}),
    );
    assert_eq!(
        v1,
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 5, "minReplicas": 1}})
    );

    let rb = json!({"subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}],
        "roleRef": {"kind": "Role", "name": "pod-reader", "apiGroup": "rbac.authorization.k8s.io"}});
    assert_eq!(
        defaulted("rbac.authorization.k8s.io", "RoleBinding", rb.clone()),
        rb
    );
    let crb = defaulted(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        json!({"subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "n"}, {"kind": "Group", "name": "g"}],
            "roleRef": {"kind": "ClusterRole", "name": "view"}}),
    );
    assert_eq!(
        crb["roleRef"]["apiGroup"],
        json!("rbac.authorization.k8s.io")
    );
    assert_eq!(crb["subjects"][0]["apiGroup"], json!(""));
    assert_eq!(
        crb["subjects"][1]["apiGroup"],
        json!("rbac.authorization.k8s.io")
    );

    let crd = defaulted(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        json!({"spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "databases", "singular": "database", "kind": "Database"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}}),
    );
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(crd["spec"]["names"]["listKind"], json!("DatabaseList"));
    assert_eq!(crd["spec"]["names"]["singular"], json!("database"));

    let pc = defaulted("scheduling.k8s.io", "PriorityClass", json!({"value": 1000}));
    assert_eq!(pc["preemptionPolicy"], json!("PreemptLowerPriority"));
    let slice = defaulted(
        "discovery.k8s.io",
        "EndpointSlice",
        json!({"addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"]}], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        slice["ports"],
        json!([{"name": "", "port": 80, "protocol": "TCP"}])
    );
    assert_eq!(slice["endpoints"][0]["conditions"], json!({}));
    let ingress = json!({"spec": {"rules": [{"host": "app.example.com"}]}});
    assert_eq!(
        defaulted("networking.k8s.io", "Ingress", ingress.clone()),
        ingress
    );
}

#[test]
fn admission_webhooks() {
    let mwc = defaulted(
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        json!({"webhooks": [{"name": "w.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "n", "name": "s"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}]}),
    );
    assert_eq!(
        mwc["webhooks"][0],
        json!({"name": "w.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "n", "name": "s", "port": 443}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "*"}],
            "failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
            "reinvocationPolicy": "Never", "timeoutSeconds": 10})
    );
    let vwc = defaulted(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        json!({"webhooks": [{"name": "v.example.com", "failurePolicy": "Ignore"}]}),
    );
    assert_eq!(vwc["webhooks"][0]["failurePolicy"], json!("Ignore"));
    assert!(vwc["webhooks"][0].get("reinvocationPolicy").is_none());
}

#[test]
fn odd_input_is_left_alone() {
    let cases = [
        ("", "Pod", json!({"spec": "not an object"})),
        (
            "",
            "Pod",
            json!({"spec": {"containers": "x", "volumes": [1, null], "tolerations": {}}}),
        ),
        (
            "apps",
            "Deployment",
            json!({"spec": {"template": [], "strategy": 3}}),
        ),
        (
            "batch",
            "Job",
            json!({"metadata": "m", "spec": {"template": {"metadata": {"labels": "l"}}}}),
        ),
        (
            "",
            "Service",
            json!({"spec": {"ports": [{"port": "eighty"}], "ipFamilies": "IPv4"}}),
        ),
        (
            "",
            "Namespace",
            json!({"metadata": {"name": "n", "labels": ["x"]}, "status": 1}),
        ),
        ("", "Pod", json!([1, 2, 3])),
        ("", "Pod", json!(null)),
        ("example.com", "Widget", json!({"spec": {}})),
    ];
    for (group, kind, input) in cases {
        let out = defaulted(group, kind, input.clone());
        if !input.is_object() || group == "example.com" {
            assert_eq!(out, input);
        }
    }
    let pod = defaulted(
        "",
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": 7, "imagePullPolicy": 1}], "restartPolicy": 5}}),
    );
    assert_eq!(pod["spec"]["restartPolicy"], json!(5));
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], json!(1));
}

/// What defaulting produces from the seeds is what validation then accepts, on create and
/// as an unchanged update (defaults must not fight upstream's immutability rules).
#[test]
fn defaulted_seeds_pass_validation() {
    use crate::validation::{validate_create, validate_update};
    let template = |labels: serde_json::Value, image: &str| {
        json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image,
            "ports": [{"containerPort": 80}], "resources": {"limits": {"memory": "200Mi"}}}]}})
    };
    let mut job_meta = meta("backup-job");
    job_meta["uid"] = json!(super::UID);
    let seeds = [
        (
            "apps",
            "Deployment",
            json!({"metadata": meta("nginx-deployment"), "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}}, "template": template(json!({"app": "nginx"}), "nginx:1.21")}}),
        ),
        (
            "apps",
            "DaemonSet",
            json!({"metadata": meta("fluentd"), "spec": {
            "selector": {"matchLabels": {"app": "fluentd"}}, "template": template(json!({"app": "fluentd"}), "fluentd:v1.14")}}),
        ),
        (
            "apps",
            "StatefulSet",
            json!({"metadata": meta("postgres"), "spec": {"serviceName": "postgres",
            "selector": {"matchLabels": {"app": "postgres"}}, "template": template(json!({"app": "postgres"}), "postgres:13"),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}}}}]}}),
        ),
        (
            "batch",
            "Job",
            json!({"metadata": job_meta, "spec": {"backoffLimit": 3, "template": {"spec": {
            "containers": [{"name": "backup", "image": "backup-tool:latest", "command": ["./backup.sh"]}],
            "restartPolicy": "OnFailure"}}}}),
        ),
        (
            "batch",
            "CronJob",
            json!({"metadata": meta("daily-backup"), "spec": {"schedule": "0 2 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "backup-tool:latest"}],
                "restartPolicy": "OnFailure"}}}}}}),
        ),
        (
            "",
            "Pod",
            json!({"metadata": meta("config-pod"), "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"limits": {"cpu": "1"}}, "livenessProbe": {"httpGet": {"port": 80}}}],
            "volumes": [{"name": "v"}, {"name": "h", "hostPath": {"path": "/tmp"}}]}}),
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("my-service"), "spec": {"selector": {"app": "myapp"},
            "ports": [{"port": 80, "targetPort": 8080}]}}),
        ),
        (
            "",
            "Service",
            json!({"metadata": meta("nginx-service"), "spec": {"selector": {"app": "nginx"},
            "ports": [{"port": 80}], "type": "LoadBalancer"}}),
        ),
        (
            "",
            "Secret",
            json!({"metadata": meta("s"), "stringData": {"a": "b"}}),
        ),
        ("", "Namespace", json!({"metadata": {"name": "production"}})),
        (
            "",
            "PersistentVolumeClaim",
            json!({"metadata": meta("database-pvc"), "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "100Gi"}}}}),
        ),
    ];
    for (group, kind, seed) in seeds {
        let obj = defaulted(group, kind, seed);
        let errors: Vec<String> = validate_create(group, kind, &obj)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "{kind} create: {errors:?}\n{obj:#}");
        let mut stored = obj.clone();
        stored["metadata"]["resourceVersion"] = json!("5");
        let mut again = stored.clone();
        super::super::apply(group, kind, &mut again);
        let errors: Vec<String> = validate_update(group, kind, &again, &stored)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "{kind} update: {errors:?}");
    }
}
