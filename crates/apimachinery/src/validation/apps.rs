//! Workloads of the `apps` group: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//!
//! Mirrors `pkg/apis/apps/validation` (`ValidateDeploymentSpec`, `ValidateReplicaSetSpec`,
//! `ValidateStatefulSetSpec`, `ValidateDaemonSetSpec`, `ValidatePodTemplateSpecForReplicaSet`)
//! and the selector immutability the apps/v1 registry strategies add on update. Fields
//! `SetDefaults_*` fills in (replicas, strategies, policies, history limits) read as their
//! defaults when absent.

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::gofmt::{int_or_string, string_map};
use super::json::{get, int_of, len_of, semantic_eq, str_or, subset_eq};
use super::labels::{Selector, as_selector, selector_value, validate_label_selector};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_valid_percent, name_is_dns_label, name_is_dns_subdomain};
use super::path::{
    FIELD_IMMUTABLE, Path, forbidden, invalid, invalid_int, invalid_raw, invalid_str, nonnegative,
    not_supported, not_supported_str, required,
};
use super::pod::{restart_policy, validate_pod_template_spec};

fn spec_path() -> Path {
    Path::new("spec")
}

/// Replicas after defaulting (1).
fn replicas(spec: &Value) -> i64 {
    int_of(spec, "replicas").unwrap_or(1)
}

/// The selector part shared by Deployment, ReplicaSet and StatefulSet: required, strictly
/// valid, not empty. Returns the parsed selector, or the "invalid label selector" error.
fn validate_required_selector(
    spec: &Value,
    kind: &str,
    invalid_detail: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Selector> {
    let path = spec_path().child("selector");
    let selector = get(spec, "selector");
    if selector.is_null() {
        errs.push(required(&path, ""));
    } else {
        errs.extend(validate_label_selector(selector, false, &path));
        if len_of(get(selector, "matchLabels")) + len_of(get(selector, "matchExpressions")) == 0 {
            errs.push(invalid(
                &path,
                selector_value(selector),
                &format!("empty selector is invalid for {kind}"),
            ));
        }
    }
    let parsed = as_selector(selector);
    if parsed.is_none() {
        errs.push(invalid(&path, selector_value(selector), invalid_detail));
    }
    parsed
}

/// `selector does not match template labels`, checked only for non-empty selectors.
fn template_labels_match(selector: &Selector, template: &Value, path: &Path) -> Option<FieldError> {
    let labels = get(get(template, "metadata"), "labels");
    (!selector.is_empty() && !selector.matches(labels)).then(|| {
        invalid_raw(
            &path.child("metadata").child("labels"),
            string_map(labels),
            "`selector` does not match template `labels`",
        )
    })
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn validate_template_for_replica_set(
    template: &Value,
    selector: &Selector,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = template_labels_match(selector, template, path)
        .into_iter()
        .collect();
    errs.extend(validate_pod_template_spec(template, path));
    let spec = get(template, "spec");
    let restart = restart_policy(spec);
    if restart != "Always" {
        errs.push(not_supported_str(
            &path.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if !get(spec, "activeDeadlineSeconds").is_null() {
        errs.push(forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn positive_int_or_percent(v: &Value, path: &Path) -> Vec<FieldError> {
    match v {
        Value::String(s) => is_valid_percent(s)
            .iter()
            .map(|m| invalid_raw(path, int_or_string(v), m))
            .collect(),
        other => nonnegative(other.as_i64().unwrap_or(0), path)
            .into_iter()
            .collect(),
    }
}

/// `getIntOrPercentValue`: a valid percentage's number, otherwise `IntValue()`.
fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(s) => s
            .strip_suffix('%')
            .filter(|_| is_valid_percent(s).is_empty())
            .unwrap_or(s)
            .parse()
            .unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &Value, path: &Path) -> Option<FieldError> {
    let is_percent = v.as_str().is_some_and(|s| is_valid_percent(s).is_empty());
    (is_percent && int_or_percent_value(v) > 100)
        .then(|| invalid_raw(path, int_or_string(v), "must not be greater than 100%"))
}

/// A strategy value with a possibly-set pointer field, printed like upstream's `%#v`.
fn strategy_go(type_name: &str, ty: &str, rolling_type: &str, rolling: &Value) -> String {
    let rolling = if rolling.is_null() {
        format!("(*apps.{rolling_type})(nil)")
    } else {
        format!("(*apps.{rolling_type})(0xc000000000)")
    };
    format!(
        "apps.{type_name}{{Type:{}, RollingUpdate:{rolling}}}",
        crate::field::go_quote(ty)
    )
}

/// `ValidateDeploymentStrategy` after `SetDefaults_Deployment`.
fn validate_deployment_strategy(strategy: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rolling = get(strategy, "rollingUpdate");
    match str_or(strategy, "type", "RollingUpdate") {
        "Recreate" => {
            if !rolling.is_null() {
                errs.push(forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let p = path.child("rollingUpdate");
            let pct = Value::from("25%");
            let max_unavailable = Some(get(rolling, "maxUnavailable"))
                .filter(|v| !v.is_null())
                .unwrap_or(&pct);
            let max_surge = Some(get(rolling, "maxSurge"))
                .filter(|v| !v.is_null())
                .unwrap_or(&pct);
            errs.extend(positive_int_or_percent(
                max_unavailable,
                &p.child("maxUnavailable"),
            ));
            errs.extend(positive_int_or_percent(max_surge, &p.child("maxSurge")));
            if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0 {
                errs.push(invalid_raw(
                    &p.child("maxUnavailable"),
                    int_or_string(max_unavailable),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
            errs.extend(not_more_than_100_percent(
                max_unavailable,
                &p.child("maxUnavailable"),
            ));
        }
        other => errs.push(not_supported(
            path,
            BadValue::Raw(strategy_go(
                "DeploymentStrategy",
                other,
                "RollingUpdateDeployment",
                rolling,
            )),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// `ValidateDeployment`.
pub(crate) fn validate_deployment(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_deployment_spec(get(obj, "spec")));
    errs
}

/// `ValidateDeploymentSpec`.
fn validate_deployment_spec(spec: &Value) -> Vec<FieldError> {
    let path = spec_path();
    let mut errs: Vec<FieldError> = nonnegative(replicas(spec), &path.child("replicas"))
        .into_iter()
        .collect();
    if let Some(selector) =
        validate_required_selector(spec, "deployment", "invalid label selector", &mut errs)
    {
        errs.extend(validate_template_for_replica_set(
            get(spec, "template"),
            &selector,
            &path.child("template"),
        ));
    }
    errs.extend(validate_deployment_strategy(
        get(spec, "strategy"),
        &path.child("strategy"),
    ));
    let min_ready = int_of(spec, "minReadySeconds").unwrap_or(0);
    errs.extend(nonnegative(min_ready, &path.child("minReadySeconds")));
    if let Some(limit) = int_of(spec, "revisionHistoryLimit") {
        errs.extend(nonnegative(limit, &path.child("revisionHistoryLimit")));
    }
    let deadline = int_of(spec, "progressDeadlineSeconds").unwrap_or(600);
    errs.extend(nonnegative(
        deadline,
        &path.child("progressDeadlineSeconds"),
    ));
    if deadline <= min_ready {
        errs.push(invalid_int(
            &path.child("progressDeadlineSeconds"),
            deadline,
            "must be greater than minReadySeconds",
        ));
    }
    errs
}

/// The apps/v1 strategies' `ValidateImmutableField(new.Spec.Selector, old.Spec.Selector)`.
fn immutable_selector(new: &Value, old: &Value) -> Option<FieldError> {
    let (n, o) = (
        get(get(new, "spec"), "selector"),
        get(get(old, "spec"), "selector"),
    );
    (!semantic_eq(n, o)).then(|| {
        let value = if n.is_null() {
            BadValue::Str("null".into())
        } else {
            selector_value(n)
        };
        invalid(&spec_path().child("selector"), value, FIELD_IMMUTABLE)
    })
}

/// Deployment update: metadata, the new spec, then the immutable selector.
pub(crate) fn validate_deployment_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_deployment_spec(get(&new, "spec")));
    errs.extend(immutable_selector(&new, old));
    errs
}

/// `ValidateReplicaSet`.
pub(crate) fn validate_replica_set(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_replica_set_spec(get(obj, "spec")));
    errs
}

/// `ValidateReplicaSetSpec` (whose empty-selector message says "deployment" upstream too).
fn validate_replica_set_spec(spec: &Value) -> Vec<FieldError> {
    let path = spec_path();
    let mut errs: Vec<FieldError> = nonnegative(replicas(spec), &path.child("replicas"))
        .into_iter()
        .collect();
    errs.extend(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &path.child("minReadySeconds"),
    ));
    if let Some(selector) =
        validate_required_selector(spec, "deployment", "invalid label selector", &mut errs)
    {
        errs.extend(validate_template_for_replica_set(
            get(spec, "template"),
            &selector,
            &path.child("template"),
        ));
    }
    errs
}

pub(crate) fn validate_replica_set_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_replica_set_spec(get(&new, "spec")));
    errs.extend(immutable_selector(&new, old));
    errs
}

/// `ValidateStatefulSet`.
pub(crate) fn validate_stateful_set(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_label);
    errs.extend(validate_stateful_set_spec(get(obj, "spec")));
    errs
}

/// `ValidateStatefulSetSpec`. Upstream does not validate the pod spec of a StatefulSet's
/// template (its volumes come from volumeClaimTemplates), only its labels and annotations.
fn validate_stateful_set_spec(spec: &Value) -> Vec<FieldError> {
    let path = spec_path();
    let mut errs = Vec::new();
    let policy = str_or(spec, "podManagementPolicy", "OrderedReady");
    if !matches!(policy, "OrderedReady" | "Parallel") {
        errs.push(invalid_str(
            &path.child("podManagementPolicy"),
            policy,
            "must be 'OrderedReady' or 'Parallel'",
        ));
    }
    let strategy = get(spec, "updateStrategy");
    let rolling = get(strategy, "rollingUpdate");
    let sp = path.child("updateStrategy");
    match str_or(strategy, "type", "RollingUpdate") {
        "OnDelete" => {
            if !rolling.is_null() {
                errs.push(invalid_raw(
                    &sp.child("rollingUpdate"),
                    "apps.RollingUpdateStatefulSetStrategy{...}".into(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            let rp = sp.child("rollingUpdate");
            errs.extend(nonnegative(
                int_of(rolling, "partition").unwrap_or(0),
                &rp.child("partition"),
            ));
            let max_unavailable = get(rolling, "maxUnavailable");
            if !max_unavailable.is_null() {
                let mp = rp.child("maxUnavailable");
                errs.extend(positive_int_or_percent(max_unavailable, &mp));
                if int_or_percent_value(max_unavailable) == 0 {
                    errs.push(invalid_raw(
                        &mp,
                        int_or_string(max_unavailable),
                        "cannot be 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(max_unavailable, &mp));
            }
        }
        other => errs.push(invalid_raw(
            &sp,
            strategy_go(
                "StatefulSetUpdateStrategy",
                other,
                "RollingUpdateStatefulSetStrategy",
                rolling,
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let retention = get(spec, "persistentVolumeClaimRetentionPolicy");
    for field in ["whenDeleted", "whenScaled"] {
        let v = str_or(retention, field, "Retain");
        if !matches!(v, "Retain" | "Delete") {
            let p = path
                .child("persistentVolumeClaimRetentionPolicy")
                .child(field);
            errs.push(not_supported_str(&p, v, &["Retain", "Delete"]));
        }
    }
    errs.extend(nonnegative(replicas(spec), &path.child("replicas")));
    errs.extend(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &path.child("minReadySeconds"),
    ));
    if let Some(start) = int_of(get(spec, "ordinals"), "start") {
        errs.extend(nonnegative(start, &path.child("ordinals.start")));
    }
    let template = get(spec, "template");
    let tp = path.child("template");
    if let Some(selector) = validate_required_selector(spec, "statefulset", "", &mut errs) {
        errs.extend(template_labels_match(&selector, template, &tp));
        let meta = get(template, "metadata");
        errs.extend(super::labels::validate_labels(
            get(meta, "labels"),
            &tp.child("labels"),
        ));
        errs.extend(super::meta::validate_annotations(
            get(meta, "annotations"),
            &tp.child("annotations"),
        ));
    }
    let tspec = get(template, "spec");
    let restart = restart_policy(tspec);
    if restart != "Always" {
        errs.push(not_supported_str(
            &tp.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if !get(tspec, "activeDeadlineSeconds").is_null() {
        errs.push(forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

/// StatefulSet spec fields an update may change.
const STATEFUL_SET_MUTABLE: [&str; 6] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// `ValidateStatefulSetUpdate`.
pub(crate) fn validate_stateful_set_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_stateful_set_spec(get(&new, "spec")));
    let immutable_part = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(m) = s.as_object_mut() {
            for f in STATEFUL_SET_MUTABLE {
                m.remove(f);
            }
            // Compare defaulted values: an absent field equals its default.
            if !m.contains_key("podManagementPolicy") {
                m.insert("podManagementPolicy".into(), "OrderedReady".into());
            }
            if !m.contains_key("revisionHistoryLimit") {
                m.insert("revisionHistoryLimit".into(), 10.into());
            }
        }
        s
    };
    let (n, o) = (
        immutable_part(get(&new, "spec")),
        immutable_part(get(old, "spec")),
    );
    if !subset_eq(&n, &o) {
        errs.push(forbidden(&spec_path(), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
    }
    errs
}

/// `ValidateDaemonSet`.
pub(crate) fn validate_daemon_set(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_daemon_set_spec(get(obj, "spec")));
    errs
}

/// `ValidateDaemonSetSpec`. Unlike the other workloads upstream does not require the selector
/// here; a missing one surfaces as the template labels not matching.
fn validate_daemon_set_spec(spec: &Value) -> Vec<FieldError> {
    let path = spec_path();
    let selector = get(spec, "selector");
    let template = get(spec, "template");
    let tp = path.child("template");
    let mut errs = validate_label_selector(selector, false, &path.child("selector"));
    let labels = get(get(template, "metadata"), "labels");
    if as_selector(selector).is_some_and(|s| !s.matches(labels)) {
        errs.push(invalid_raw(
            &tp.child("metadata").child("labels"),
            string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    if !selector.is_null()
        && len_of(get(selector, "matchLabels")) + len_of(get(selector, "matchExpressions")) == 0
    {
        errs.push(invalid(
            &path.child("selector"),
            selector_value(selector),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &tp));
    let tspec = get(template, "spec");
    let restart = restart_policy(tspec);
    if restart != "Always" {
        errs.push(not_supported_str(
            &tp.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if !get(tspec, "activeDeadlineSeconds").is_null() {
        errs.push(forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &path.child("minReadySeconds"),
    ));
    let strategy = get(spec, "updateStrategy");
    let rolling = get(strategy, "rollingUpdate");
    let sp = path.child("updateStrategy");
    match str_or(strategy, "type", "RollingUpdate") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let rp = sp.child("rollingUpdate");
            let (one, zero) = (Value::from(1), Value::from(0));
            let max_unavailable = Some(get(rolling, "maxUnavailable"))
                .filter(|v| !v.is_null())
                .unwrap_or(&one);
            let max_surge = Some(get(rolling, "maxSurge"))
                .filter(|v| !v.is_null())
                .unwrap_or(&zero);
            errs.extend(positive_int_or_percent(
                max_unavailable,
                &rp.child("maxUnavailable"),
            ));
            errs.extend(positive_int_or_percent(max_surge, &rp.child("maxSurge")));
            errs.extend(not_more_than_100_percent(
                max_unavailable,
                &rp.child("maxUnavailable"),
            ));
            errs.extend(not_more_than_100_percent(max_surge, &rp.child("maxSurge")));
            let has_unavailable = int_or_percent_value(max_unavailable) != 0;
            let has_surge = int_or_percent_value(max_surge) != 0;
            if has_unavailable && has_surge {
                errs.push(invalid_raw(
                    &rp.child("maxSurge"),
                    int_or_string(max_surge),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                errs.push(required(
                    &rp.child("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        other => errs.push(not_supported(
            &sp,
            BadValue::Raw(strategy_go(
                "DaemonSetUpdateStrategy",
                other,
                "RollingUpdateDaemonSet",
                rolling,
            )),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let Some(limit) = int_of(spec, "revisionHistoryLimit") {
        errs.extend(nonnegative(limit, &path.child("revisionHistoryLimit")));
    }
    errs
}

pub(crate) fn validate_daemon_set_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_daemon_set_spec(get(&new, "spec")));
    errs.extend(immutable_selector(&new, old));
    errs
}
