//! Deployments, Jobs, CronJobs, StatefulSets, ReplicaSets and ReplicationControllers.

use serde_json::json;

use super::{UID, container, defaulted, meta, template_spec};

/// seeds/057_001_Deployment.yaml
#[test]
fn seed_deployment_gets_rollout_and_template_defaults() {
    let input = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("nginx-deployment"),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80}]}]}
            }
        }
    });
    let want = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("nginx-deployment"),
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": 3,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": template_spec(json!({"containers": [container(json!(
                    {"name": "nginx", "image": "nginx:1.21", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
                ), "IfNotPresent")]}))
            }
        }
    });
    assert_eq!(defaulted("apps", "Deployment", input), want);
}

/// seeds/005_001_Job.yaml: no selector, so one is generated from the uid, and the Job shows
/// its template's labels.
#[test]
fn seed_job_gets_a_generated_selector() {
    let input = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("backup-job"),
        "spec": {
            "template": {"spec": {
                "containers": [{"name": "backup", "image": "backup-tool:latest", "command": ["./backup.sh"]}],
                "restartPolicy": "OnFailure"
            }},
            "backoffLimit": 3
        }
    });
    let labels = json!({
        "batch.kubernetes.io/controller-uid": UID,
        "batch.kubernetes.io/job-name": "backup-job",
        "controller-uid": UID,
        "job-name": "backup-job",
    });
    let mut job_meta = meta("backup-job");
    job_meta["labels"] = labels.clone();
    let want = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
        "spec": {
            "backoffLimit": 3,
            "completionMode": "NonIndexed",
            "completions": 1,
            "manualSelector": false,
            "parallelism": 1,
            "podReplacementPolicy": "TerminatingOrFailed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
            "suspend": false,
            "template": {
                "metadata": {"labels": labels},
                "spec": template_spec(json!({
                    "containers": [container(json!(
                        {"name": "backup", "image": "backup-tool:latest", "command": ["./backup.sh"]}
                    ), "Always")],
                    "restartPolicy": "OnFailure"
                }))
            }
        }
    });
    assert_eq!(defaulted("batch", "Job", input), want);
}

#[test]
fn job_with_manual_selector_or_failure_policy() {
    let job = defaulted(
        "batch",
        "Job",
        json!({
            "metadata": {"name": "j", "uid": UID, "labels": {"team": "a"}},
            "spec": {
                "manualSelector": true,
                "selector": {"matchLabels": {"app": "x"}},
                "parallelism": 4,
                "backoffLimitPerIndex": 1,
                "completionMode": "Indexed",
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
            }
        }),
    );
    let spec = &job["spec"];
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "x"}}));
    assert_eq!(spec["template"]["metadata"]["labels"], json!({"app": "x"}));
    assert_eq!(job["metadata"]["labels"], json!({"team": "a"}));
    assert!(
        spec.get("completions").is_none(),
        "completions stays unset when parallelism is set"
    );
    assert_eq!(spec["backoffLimit"], json!(2_147_483_647));
    assert_eq!(spec["podReplacementPolicy"], json!("Failed"));
    assert_eq!(
        spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
        json!("True")
    );
}

/// seeds/006_001_CronJob.yaml: the job template gets pod defaults, not Job defaults.
#[test]
fn seed_cronjob() {
    let input = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("daily-backup"),
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "backup", "image": "backup-tool:latest"}], "restartPolicy": "OnFailure"
        }}}}}
    });
    let want = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("daily-backup"),
        "spec": {
            "concurrencyPolicy": "Allow",
            "failedJobsHistoryLimit": 1,
            "schedule": "0 2 * * *",
            "successfulJobsHistoryLimit": 3,
            "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": template_spec(json!({
                "containers": [container(json!({"name": "backup", "image": "backup-tool:latest"}), "Always")],
                "restartPolicy": "OnFailure"
            }))}}}
        }
    });
    assert_eq!(defaulted("batch", "CronJob", input), want);
}

/// seeds/003_001_StatefulSet.yaml
#[test]
fn seed_statefulset() {
    let sts = defaulted(
        "apps",
        "StatefulSet",
        json!({"metadata": meta("postgres"), "spec": {
            "serviceName": "postgres", "replicas": 3,
            "selector": {"matchLabels": {"app": "postgres"}},
            "template": {"metadata": {"labels": {"app": "postgres"}}, "spec": {"containers": [{"name": "postgres",
                "image": "postgres:13", "volumeMounts": [{"name": "postgres-storage", "mountPath": "/var/lib/postgresql/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "postgres-storage"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}}}}]
        }}),
    );
    let spec = &sts["spec"];
    assert_eq!(spec["podManagementPolicy"], json!("OrderedReady"));
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(spec["replicas"], json!(3));
    assert_eq!(spec["revisionHistoryLimit"], json!(10));
    assert_eq!(
        spec["volumeClaimTemplates"][0],
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "postgres-storage"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}, "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}})
    );
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
        json!("IfNotPresent")
    );
    // An explicit RollingUpdate without a block gets no partition; OnDelete nothing.
    let explicit = defaulted(
        "apps",
        "StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    );
    assert_eq!(
        explicit["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
}

#[test]
fn replica_set_and_replication_controller() {
    let rs = defaulted(
        "apps",
        "ReplicaSet",
        json!({"spec": {"template": {"spec": {}}}}),
    );
    assert_eq!(rs["spec"]["replicas"], json!(1));
    assert_eq!(
        rs["spec"]["template"]["spec"]["restartPolicy"],
        json!("Always")
    );
    let rc = defaulted(
        "",
        "ReplicationController",
        json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {}}}}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
    assert_eq!(rc["spec"]["replicas"], json!(1));
}
