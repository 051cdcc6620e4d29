//! `apps/v1` defaults: `SetDefaults_Deployment`, `SetDefaults_ReplicaSet`,
//! `SetDefaults_StatefulSet` and `SetDefaults_DaemonSet` from `pkg/apis/apps/v1/defaults.go`,
//! the pod-template defaults `SetObjectDefaults_*` apply to each `spec.template`, and for
//! StatefulSets the PersistentVolumeClaim defaults of every `volumeClaimTemplates` entry plus
//! the `apiVersion: v1` / `kind: PersistentVolumeClaim` that
//! `Convert_apps_StatefulSetSpec_To_v1_StatefulSetSpec` writes into them.

use serde_json::json;

use super::fields::{
    Map, child, child_or_empty, default_ptr, default_str, is_blank, items, str_of,
};
use super::pod;

pub(super) fn apply(kind: &str, obj: &mut Map) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    match kind {
        "Deployment" => deployment(spec),
        "ReplicaSet" => default_ptr(spec, "replicas", json!(1)),
        "StatefulSet" => stateful_set(spec),
        "DaemonSet" => daemon_set(spec),
        _ => return,
    }
    if let Some(template) = child(spec, "template") {
        pod::template(template);
    }
}

fn deployment(spec: &mut Map) {
    default_ptr(spec, "replicas", json!(1));
    if let Some(strategy) = child_or_empty(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(rolling) = child_or_empty(strategy, "rollingUpdate")
        {
            default_ptr(rolling, "maxUnavailable", json!("25%"));
            default_ptr(rolling, "maxSurge", json!("25%"));
        }
    }
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    default_ptr(spec, "progressDeadlineSeconds", json!(600));
}

fn stateful_set(spec: &mut Map) {
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = child_or_empty(spec, "updateStrategy") {
        // Only a defaulted type gets a `rollingUpdate` block; an explicit RollingUpdate
        // without one keeps none (and so no partition).
        if is_blank(strategy, "type") {
            strategy.insert("type".into(), json!("RollingUpdate"));
            default_ptr(strategy, "rollingUpdate", json!({}));
        }
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(rolling) = child(strategy, "rollingUpdate")
        {
            default_ptr(rolling, "partition", json!(0));
        }
    }
    // StatefulSetAutoDeletePVC is GA (on) in 1.33.
    if let Some(policy) = child_or_empty(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(policy, "whenDeleted", "Retain");
        default_str(policy, "whenScaled", "Retain");
    }
    default_ptr(spec, "replicas", json!(1));
    default_ptr(spec, "revisionHistoryLimit", json!(10));
    for claim in items(spec, "volumeClaimTemplates") {
        claim.insert("apiVersion".into(), json!("v1"));
        claim.insert("kind".into(), json!("PersistentVolumeClaim"));
        pod::pvc(claim);
    }
}

fn daemon_set(spec: &mut Map) {
    if let Some(strategy) = child_or_empty(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == "RollingUpdate"
            && let Some(rolling) = child_or_empty(strategy, "rollingUpdate")
        {
            default_ptr(rolling, "maxUnavailable", json!(1));
            default_ptr(rolling, "maxSurge", json!(0));
        }
    }
    default_ptr(spec, "revisionHistoryLimit", json!(10));
}
