//! Acceptance tests: the project's seed manifests (as JSON literals, with the namespace the
//! apiserver fills in from the request) and the messages upstream 1.33 returns for them.

use serde_json::{Value, json};

use super::{validate_create, validate_update};
use crate::status::ApiError;

fn messages(errs: &[crate::field::FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

/// seeds-invalid/082_003_Deployment.yaml
fn deployment_without_selector() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}
        }
    })
}

/// seeds-invalid/041_001_Deployment.yaml
fn deployment_without_selector_or_containers() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web-app", "namespace": "default"},
        "spec": {
            "replicas": 6,
            "template": {"spec": {"topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "web-app"}}},
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "web-app"}}}
            ]}}
        }
    })
}

#[test]
fn invalid_seed_082_deployment_without_selector() {
    let errs = validate_create("apps", "Deployment", &deployment_without_selector());
    assert_eq!(
        messages(&errs),
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
        ]
    );
    let status = ApiError::invalid("apps", "Deployment", "nginx", &errs);
    assert_eq!(
        status.message(),
        "Deployment.apps \"nginx\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`]"
    );
    let causes = status.to_json()["details"]["causes"].clone();
    assert_eq!(causes[0]["reason"], "FieldValueRequired");
    assert_eq!(causes[1]["reason"], "FieldValueInvalid");
    assert_eq!(
        causes[1]["message"],
        "Invalid value: map[string]string(nil): `selector` does not match template `labels`"
    );
}

#[test]
fn invalid_seed_041_deployment_without_selector_or_containers() {
    let errs = validate_create(
        "apps",
        "Deployment",
        &deployment_without_selector_or_containers(),
    );
    assert_eq!(
        messages(&errs),
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
            "spec.template.spec.containers: Required value",
        ]
    );
}

/// The valid seed manifests (seeds/*.yaml), namespaced ones in `default`.
fn valid_seeds() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "",
            "ConfigMap",
            json!({"metadata": {"name": "app-config", "namespace": "default"},
            "data": {"database_url": "postgres://localhost:5432/mydb", "api_key": "public-api-key"}}),
        ),
        (
            "",
            "Secret",
            json!({"metadata": {"name": "db-secret", "namespace": "default"}, "type": "Opaque",
            "data": {"username": "YWRtaW4=", "password": "cGFzc3dvcmQ="}}),
        ),
        (
            "apps",
            "StatefulSet",
            json!({"metadata": {"name": "postgres", "namespace": "default"}, "spec": {
            "serviceName": "postgres", "replicas": 3, "selector": {"matchLabels": {"app": "postgres"}},
            "template": {"metadata": {"labels": {"app": "postgres"}}, "spec": {"containers": [{"name": "postgres",
                "image": "postgres:13", "volumeMounts": [{"name": "postgres-storage", "mountPath": "/var/lib/postgresql/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "postgres-storage"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}}}}]}}),
        ),
        (
            "apps",
            "DaemonSet",
            json!({"metadata": {"name": "fluentd", "namespace": "default"}, "spec": {
            "selector": {"matchLabels": {"app": "fluentd"}},
            "template": {"metadata": {"labels": {"app": "fluentd"}}, "spec": {"containers": [{"name": "fluentd",
                "image": "fluentd:v1.14", "resources": {"limits": {"memory": "200Mi"}}}]}}}}),
        ),
        (
            "batch",
            "Job",
            json!({"metadata": {"name": "backup-job", "namespace": "default"}, "spec": {
            "template": {"spec": {"containers": [{"name": "backup", "image": "backup-tool:latest", "command": ["./backup.sh"]}],
                "restartPolicy": "OnFailure"}}, "backoffLimit": 3}}),
        ),
        (
            "batch",
            "CronJob",
            json!({"metadata": {"name": "daily-backup", "namespace": "default"}, "spec": {
            "schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "backup", "image": "backup-tool:latest"}], "restartPolicy": "OnFailure"}}}}}}),
        ),
        (
            "networking.k8s.io",
            "Ingress",
            json!({"metadata": {"name": "app-ingress", "namespace": "default",
            "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}}, "spec": {"rules": [{"host": "app.example.com",
            "http": {"paths": [{"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "api-service", "port": {"number": 80}}}},
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend-service", "port": {"number": 80}}}}]}}]}}),
        ),
        (
            "networking.k8s.io",
            "NetworkPolicy",
            json!({"metadata": {"name": "api-netpol", "namespace": "default"},
            "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "database"}}}], "ports": [{"protocol": "TCP", "port": 5432}]}]}}),
        ),
        (
            "storage.k8s.io",
            "StorageClass",
            json!({"metadata": {"name": "high-performance-replicated"},
            "provisioner": "csi.storage.k8s.io/advanced-driver", "parameters": {"type": "nvme-ssd", "iops": "50000",
                "throughput": "1000Mi", "replicationFactor": "3", "replicationMode": "synchronous",
                "consistencyLevel": "strong", "encryption": "aes-256-gcm", "checksumAlgorithm": "crc32c",
                "deduplication": "true", "compression": "lz4", "snapshotSchedule": "0 */6 * * *",
                "qosClass": "guaranteed", "minIOPS": "10000", "maxIOPS": "50000", "burstDuration": "60s"},
            "reclaimPolicy": "Retain", "allowVolumeExpansion": true, "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
        (
            "storage.k8s.io",
            "StorageClass",
            json!({"metadata": {"name": "fast-ssd"}, "provisioner": "kubernetes.io/aws-ebs",
            "parameters": {"type": "gp3", "iops": "3000", "throughput": "125"},
            "volumeBindingMode": "WaitForFirstConsumer"}),
        ),
        (
            "",
            "Pod",
            json!({"metadata": {"name": "resource-demo", "namespace": "default"}, "spec": {"containers": [
            {"name": "app", "image": "myapp:latest", "resources": {"requests": {"memory": "256Mi", "cpu": "500m"},
             "limits": {"memory": "512Mi", "cpu": "1000m"}}}]}}),
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "app-hpa", "namespace": "default"},
            "apiVersion": "autoscaling/v2",
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app-deployment"},
            "minReplicas": 3, "maxReplicas": 10, "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "Role",
            json!({"metadata": {"namespace": "default", "name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            json!({"metadata": {"name": "read-pods", "namespace": "default"},
            "subjects": [{"kind": "User", "name": "jane", "apiGroup": "rbac.authorization.k8s.io"}],
            "roleRef": {"kind": "Role", "name": "pod-reader", "apiGroup": "rbac.authorization.k8s.io"}}),
        ),
        (
            "",
            "Service",
            json!({"metadata": {"name": "my-service", "namespace": "default"},
            "spec": {"selector": {"app": "myapp"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        ),
        (
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            json!({"metadata": {"name": "databases.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "engine": {"type": "string", "enum": ["postgres", "mysql", "mongodb"]},
                    "version": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1},
                    "backup": {"type": "object", "properties": {"enabled": {"type": "boolean"},
                        "schedule": {"type": "string"}}}}}}}}}],
            "names": {"plural": "databases", "singular": "database", "kind": "Database"}}}),
        ),
        (
            "policy",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "app-pdb", "namespace": "default"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "myapp"}}}}),
        ),
        (
            "",
            "Namespace",
            json!({"metadata": {"name": "production", "labels": {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted"}}}),
        ),
        (
            "",
            "Pod",
            json!({"metadata": {"name": "nginx-pod", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]}]}}),
        ),
        (
            "apps",
            "Deployment",
            json!({"metadata": {"name": "nginx-deployment", "namespace": "default"}, "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": "nginx"}}, "template": {"metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]}]}}}}),
        ),
        (
            "",
            "Service",
            json!({"metadata": {"name": "nginx-service", "namespace": "default"},
            "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 80}], "type": "LoadBalancer"}}),
        ),
        (
            "",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "database-pvc", "namespace": "default"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}},
            "storageClassName": "fast-ssd", "selector": {"matchLabels": {"tier": "production"}}}}),
        ),
        (
            "storage.k8s.io",
            "CSIDriver",
            json!({"metadata": {"name": "csi.example.com"}, "spec": {
            "attachRequired": true, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}}),
        ),
        (
            "",
            "ResourceQuota",
            json!({"metadata": {"name": "team-quota", "namespace": "team-a"}, "spec": {"hard": {
            "requests.cpu": "100", "requests.memory": "200Gi", "persistentvolumeclaims": "10"}}}),
        ),
        (
            "apps",
            "Deployment",
            json!({"metadata": {"name": "my-app-deployment", "namespace": "default", "labels": {"app": "my-app"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "my-app"}}, "template": {"metadata": {"labels": {"app": "my-app"}},
            "spec": {"containers": [{"name": "my-app-container", "image": "my-registry/my-app:v1.0.0", "ports": [{"containerPort": 8080}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}}]}}}}),
        ),
        (
            "",
            "Service",
            json!({"metadata": {"name": "my-app-service", "namespace": "default"}, "spec": {
            "selector": {"app": "my-app"}, "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080}], "type": "ClusterIP"}}),
        ),
        (
            "",
            "Pod",
            json!({"metadata": {"name": "config-pod", "namespace": "default"}, "spec": {"containers": [{
            "name": "my-app-container", "image": "busybox",
            "command": ["sh", "-c", "echo API_ENDPOINT: $API_ENDPOINT; echo LOG_LEVEL: $LOG_LEVEL && sleep 3600"],
            "envFrom": [{"configMapRef": {"name": "my-app-config"}}]}]}}),
        ),
    ]
}

#[test]
fn valid_seeds_have_no_errors() {
    for (group, kind, obj) in valid_seeds() {
        let errs = validate_create(group, kind, &obj);
        assert!(
            errs.is_empty(),
            "{group}/{kind} {}: {:?}",
            obj["metadata"]["name"],
            messages(&errs)
        );
    }
}

#[test]
fn valid_seeds_accept_a_no_op_update() {
    for (group, kind, mut obj) in valid_seeds() {
        obj["metadata"]["resourceVersion"] = json!("7");
        obj["metadata"]["uid"] = json!("6b1f7c1e-0000-4000-8000-000000000001");
        if kind == "Job" {
            // Stored Jobs carry the selector generated at create.
            super::generate_job_selector(&mut obj);
        }
        let errs = validate_update(group, kind, &obj, &obj);
        assert!(errs.is_empty(), "{group}/{kind}: {:?}", messages(&errs));
    }
}

/// One invalid object per common mistake, with the message upstream prints.
#[test]
fn common_mistakes() {
    let pod =
        |spec: Value| json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec});
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        (
            "",
            "Pod",
            pod(json!({"containers": [{"name": "app"}]})),
            vec!["spec.containers[0].image: Required value"],
        ),
        (
            "",
            "Pod",
            pod(json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]})),
            vec!["spec.containers[1].name: Duplicate value: \"a\""],
        ),
        (
            "",
            "Pod",
            pod(
                json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "HTTP"}]}]}),
            ),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            "",
            "Pod",
            pod(json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]})),
            vec![
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            "",
            "Pod",
            pod(
                json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "500m"}}}]}),
            ),
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
            ],
        ),
        (
            "",
            "Pod",
            pod(json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "A=B"}]}]})),
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            ],
        ),
        (
            "apps",
            "Deployment",
            json!({"metadata": {"name": "d", "namespace": "default"}, "spec": {"replicas": -1,
            "selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "y"}},
            "spec": {"containers": [{"name": "a", "image": "x"}]}}}}),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"y\"}: `selector` does not match template `labels`",
            ],
        ),
        (
            "apps",
            "Deployment",
            json!({"metadata": {"name": "d", "namespace": "default"}, "spec": {"selector": {},
            "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            ],
        ),
        (
            "batch",
            "Job",
            json!({"metadata": {"name": "j", "namespace": "default"}, "spec": {
            "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}),
            vec![
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ],
        ),
        (
            "batch",
            "CronJob",
            json!({"metadata": {"name": "c", "namespace": "default"}, "spec": {"schedule": "daily",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}}}}}}),
            vec![
                "spec.schedule: Invalid value: \"daily\": expected exactly 5 fields, found 1: [daily]",
            ],
        ),
        (
            "",
            "Service",
            json!({"metadata": {"name": "1svc", "namespace": "default"}, "spec": {"type": "Bogus", "ports": [{"port": 0}]}}),
            vec![
                "metadata.name: Invalid value: \"1svc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.type: Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ],
        ),
        (
            "",
            "Service",
            json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"selector": {"app": "x"}}}),
            vec!["spec.ports: Required value"],
        ),
        (
            "",
            "ConfigMap",
            json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"bad key": "v"}}),
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            ],
        ),
        (
            "",
            "Namespace",
            json!({"metadata": {"name": "Prod"}}),
            vec![
                "metadata.name: Invalid value: \"Prod\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ],
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole",
            json!({"metadata": {"name": "a/b"}}),
            vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"],
        ),
        (
            "example.com",
            "Widget",
            json!({"metadata": {"namespace": "default"}}),
            vec!["metadata.name: Required value: name or generateName is required"],
        ),
    ];
    for (group, kind, obj, want) in cases {
        assert_eq!(
            messages(&validate_create(group, kind, &obj)),
            want,
            "{group}/{kind} {obj}"
        );
    }
}

#[test]
fn update_rules() {
    let deployment = |app: &str| {
        json!({"metadata": {"name": "d", "namespace": "default", "resourceVersion": "3", "uid": "u"},
        "spec": {"selector": {"matchLabels": {"app": app}}, "template": {"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "a", "image": "x"}]}}}})
    };
    let secret = |ty: &str| json!({"metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"}, "type": ty});
    let svc = |ip: &str| {
        json!({"metadata": {"name": "s", "namespace": "default", "resourceVersion": "1"},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"port": 80}]}})
    };
    let mut renamed = deployment("x");
    renamed["metadata"]["name"] = json!("e");
    let cases: Vec<(&str, &str, Value, Value, Vec<&str>)> = vec![
        (
            "apps",
            "Deployment",
            deployment("y"),
            deployment("x"),
            vec![
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
            ],
        ),
        (
            "apps",
            "Deployment",
            renamed,
            deployment("x"),
            vec!["metadata.name: Invalid value: \"e\": field is immutable"],
        ),
        (
            "",
            "Secret",
            secret("kubernetes.io/tls"),
            secret("Opaque"),
            vec![
                "type: Invalid value: \"kubernetes.io/tls\": field is immutable",
                "data[tls.crt]: Required value",
                "data[tls.key]: Required value",
            ],
        ),
        (
            "",
            "Service",
            svc("10.43.0.20"),
            svc("10.43.0.10"),
            vec![
                "spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.20\"}: may not change once set",
            ],
        ),
    ];
    for (group, kind, new, old, want) in cases {
        assert_eq!(
            messages(&validate_update(group, kind, &new, &old)),
            want,
            "{group}/{kind}"
        );
    }
    // Omitting the allocated cluster IP on update keeps it, as upstream does.
    let mut no_ip = svc("10.43.0.10");
    no_ip["spec"].as_object_mut().map(|s| {
        s.remove("clusterIP");
        s.remove("clusterIPs")
    });
    assert!(validate_update("", "Service", &no_ip, &svc("10.43.0.10")).is_empty());
}

#[test]
fn job_selector_is_generated_like_upstream() {
    let mut job =
        json!({"metadata": {"name": "j", "uid": "abc"}, "spec": {"template": {"spec": {}}}});
    super::generate_job_selector(&mut job);
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}})
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        "j"
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
        "abc"
    );
}
