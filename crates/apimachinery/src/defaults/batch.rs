//! `batch/v1` defaults: `SetDefaults_Job`, `SetDefaults_CronJob` and
//! `SetDefaults_PodFailurePolicyOnPodConditionsPattern` from `pkg/apis/batch/v1/defaults.go`,
//! the pod-template defaults, and the Job selector generation of
//! `pkg/registry/batch/job/strategy.go` (`generateSelectorIfNeeded`).
//!
//! Upstream generates the selector in `PrepareForCreate`, after decode-time defaulting, and
//! defaults again whenever it reads the Job back from etcd. That second pass is why a Job
//! created without labels shows its template's labels — generated ones included — in
//! `metadata.labels`: here the selector is generated first and the labels copied after.

use serde_json::{Value, json};

use super::fields::{
    Map, child, child_or_empty, default_ptr, default_str, is_unset, items, meta_str,
};
use super::pod;

/// The labels the Job controller selects its pods by (`batch.ControllerUidLabel`,
/// `batch.JobNameLabel`) and their unprefixed legacy twins, which 1.33 still sets.
const CONTROLLER_UID_LABELS: [&str; 2] = ["batch.kubernetes.io/controller-uid", "controller-uid"];
const JOB_NAME_LABELS: [&str; 2] = ["batch.kubernetes.io/job-name", "job-name"];

pub(super) fn apply(kind: &str, obj: &mut Map) {
    match kind {
        "Job" => job(obj),
        "CronJob" => cron_job(obj),
        _ => {}
    }
}

fn job(obj: &mut Map) {
    let name = meta_str(obj, "name").to_string();
    let uid = meta_str(obj, "uid").to_string();
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    job_spec(spec);
    // Without a name or uid (not yet assigned by the server) there is nothing to select on;
    // validation then reports the missing selector.
    if spec.get("manualSelector") != Some(&Value::Bool(true)) && !name.is_empty() && !uid.is_empty()
    {
        generate_selector(spec, &name, &uid);
    }
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .filter(|labels| !labels.is_empty())
        .cloned();
    if let Some(template) = child(spec, "template") {
        pod::template(template);
    }
    if let Some(labels) = template_labels
        && let Some(meta) = child(obj, "metadata")
    {
        let empty = match meta.get("labels") {
            None | Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(_) => false,
        };
        if empty {
            meta.insert("labels".into(), Value::Object(labels));
        }
    }
}

/// `SetDefaults_Job`'s spec fields (1.33, with JobPodReplacementPolicy on).
fn job_spec(spec: &mut Map) {
    // A non-parallel job may leave both unset; then both are 1.
    if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default_ptr(spec, "parallelism", json!(1));
    if is_unset(spec, "backoffLimit") {
        let limit = if is_unset(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec.insert("backoffLimit".into(), json!(limit));
    }
    default_ptr(spec, "completionMode", json!("NonIndexed"));
    default_ptr(spec, "suspend", json!(false));
    pod_failure_policy(spec);
    let replacement = if is_unset(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    default_ptr(spec, "podReplacementPolicy", json!(replacement));
    default_ptr(spec, "manualSelector", json!(false));
}

/// `SetDefaults_PodFailurePolicyOnPodConditionsPattern`: a condition pattern without a
/// status matches `True`.
fn pod_failure_policy(spec: &mut Map) {
    if let Some(policy) = child(spec, "podFailurePolicy") {
        for rule in items(policy, "rules") {
            for pattern in items(rule, "onPodConditions") {
                default_str(pattern, "status", "True");
            }
        }
    }
}

/// `generateSelector`: labels that tie the template to this Job (kept if the user set them,
/// so validation can report a conflict) and a selector on the controller uid.
fn generate_selector(spec: &mut Map, name: &str, uid: &str) {
    if let Some(labels) = child_or_empty(spec, "template")
        .and_then(|t| child_or_empty(t, "metadata"))
        .and_then(|m| child_or_empty(m, "labels"))
    {
        for key in JOB_NAME_LABELS {
            labels.entry(key).or_insert_with(|| json!(name));
        }
        for key in CONTROLLER_UID_LABELS {
            labels.entry(key).or_insert_with(|| json!(uid));
        }
    }
    if let Some(match_labels) =
        child_or_empty(spec, "selector").and_then(|s| child_or_empty(s, "matchLabels"))
    {
        match_labels
            .entry(CONTROLLER_UID_LABELS[0])
            .or_insert_with(|| json!(uid));
    }
}

/// `SetDefaults_CronJob`, and the defaults reached inside `jobTemplate.spec` (its pod
/// template and pod-failure patterns; `SetDefaults_Job` itself is not among them).
fn cron_job(obj: &mut Map) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_ptr(spec, "suspend", json!(false));
    default_ptr(spec, "successfulJobsHistoryLimit", json!(3));
    default_ptr(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = child(spec, "jobTemplate").and_then(|t| child(t, "spec")) {
        pod_failure_policy(job_spec);
        if let Some(template) = child(job_spec, "template") {
            pod::template(template);
        }
    }
}
