//! HorizontalPodAutoscalers (autoscaling/v2 and v1): upstream's
//! `ValidateHorizontalPodAutoscaler`, `ValidateHorizontalPodAutoscalerUpdate`,
//! `validateHorizontalPodAutoscalerSpec`, `ValidateCrossVersionObjectReference`,
//! `validateMetrics`/`validateMetricSpec` and `validateBehavior` from
//! `pkg/apis/autoscaling/validation`, as of 1.33 (no `apiVersion` checks on references yet).
//!
//! Upstream validates the internal type. A v1 object's `targetCPUUtilizationPercentage` becomes
//! the internal `metrics[0].resource.target.averageUtilization`, so that is the path errors
//! name. `minReplicas` defaults to 1, and behaviour rules left out are filled in by defaulting.

use serde_json::Value;

use crate::field::FieldError;

use super::json::{get, int_of, list, opt_str, str_of};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_dns1123_label, is_valid_path_segment_name, name_is_dns_subdomain};
use super::path::{
    Path, forbidden, invalid, invalid_int, invalid_str, not_supported_str, required,
};
use super::quantity::{Quantity, go_value};
use crate::field::BadValue;

const MAX_PERIOD_SECONDS: i64 = 1800;
const MAX_STABILIZATION_WINDOW_SECONDS: i64 = 3600;
const METRIC_SOURCE_TYPES: [&str; 5] = [
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
];

/// The internal metrics of an HPA: v2's list, or v1's CPU target converted.
fn metrics(obj: &Value) -> Vec<Value> {
    let spec = get(obj, "spec");
    if str_of(obj, "apiVersion") == "autoscaling/v1" {
        return match int_of(spec, "targetCPUUtilizationPercentage") {
            Some(target) => vec![serde_json::json!({
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            })],
            None => Vec::new(),
        };
    }
    list(spec, "metrics").to_vec()
}

/// `ValidateHorizontalPodAutoscaler`.
pub(crate) fn validate_hpa(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_spec(obj, 1));
    errs
}

/// `ValidateHorizontalPodAutoscalerUpdate`: an HPA already at `minReplicas: 0` may keep it.
pub(crate) fn validate_hpa_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let lower_bound = if int_of(get(old, "spec"), "minReplicas") == Some(0) {
        0
    } else {
        1
    };
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_spec(&new, lower_bound));
    errs
}

fn validate_spec(obj: &Value, min_lower_bound: i64) -> Vec<FieldError> {
    let spec = get(obj, "spec");
    let p = Path::new("spec");
    let mut errs = Vec::new();
    let min = int_of(spec, "minReplicas");
    let max = int_of(spec, "maxReplicas").unwrap_or(0);
    if let Some(min) = min
        && min < min_lower_bound
    {
        errs.push(invalid_int(
            &p.child("minReplicas"),
            min,
            &format!("must be greater than or equal to {min_lower_bound}"),
        ));
    }
    if max < 1 {
        errs.push(invalid_int(
            &p.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if let Some(min) = min
        && max < min
    {
        errs.push(invalid_int(
            &p.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(validate_reference(
        get(spec, "scaleTargetRef"),
        &p.child("scaleTargetRef"),
    ));
    let metrics = metrics(obj);
    let mp = p.child("metrics");
    for (i, m) in metrics.iter().enumerate() {
        errs.extend(validate_metric(m, &mp.index(i)));
    }
    let scales_to_zero = metrics
        .iter()
        .any(|m| matches!(str_of(m, "type"), "Object" | "External"));
    if min == Some(0) && !scales_to_zero {
        errs.push(forbidden(
            &mp,
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
    let behavior = get(spec, "behavior");
    for rules in ["scaleUp", "scaleDown"] {
        let r = get(behavior, rules);
        if !r.is_null() {
            errs.extend(validate_scaling_rules(r, &p.child("behavior").child(rules)));
        }
    }
    errs
}

/// `ValidateCrossVersionObjectReference`.
fn validate_reference(r: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["kind", "name"] {
        let value = str_of(r, field);
        if value.is_empty() {
            errs.push(required(&p.child(field), ""));
        } else {
            errs.extend(
                is_valid_path_segment_name(value)
                    .iter()
                    .map(|m| invalid_str(&p.child(field), value, m)),
            );
        }
    }
    errs
}

/// `validateMetricSpec`. An unknown type is reported twice, as upstream does.
fn validate_metric(m: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = str_of(m, "type");
    if ty.is_empty() {
        errs.push(required(
            &p.child("type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_SOURCE_TYPES.contains(&ty) {
        errs.push(not_supported_str(
            &p.child("type"),
            ty,
            &METRIC_SOURCE_TYPES,
        ));
    }
    let sources = [
        "object",
        "external",
        "pods",
        "resource",
        "containerResource",
    ];
    let present: Vec<&str> = sources
        .into_iter()
        .filter(|s| !get(m, s).is_null())
        .collect();
    if let Some(first) = present.first() {
        let src = get(m, first);
        let sp = p.child(first);
        errs.extend(match *first {
            "object" => validate_object_source(src, &sp),
            "external" => validate_external_source(src, &sp),
            "pods" => validate_pods_source(src, &sp),
            "resource" => validate_resource_source(src, &sp, false),
            _ => validate_resource_source(src, &sp, true),
        });
    }
    let expected = match ty {
        "Object" => "object",
        "Pods" => "pods",
        "Resource" => "resource",
        "External" => "external",
        "ContainerResource" => "containerResource",
        _ => {
            errs.push(not_supported_str(
                &p.child("type"),
                ty,
                &METRIC_SOURCE_TYPES,
            ));
            ""
        }
    };
    if !expected.is_empty() && get(m, expected).is_null() {
        errs.push(required(
            &p.child(expected),
            "must populate information for the given metric source",
        ));
    }
    if present.len() != 1 {
        let mut extra: Vec<&str> = present.into_iter().filter(|s| *s != expected).collect();
        extra.sort_unstable();
        for s in extra {
            errs.push(forbidden(
                &p.child(s),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

fn validate_object_source(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_reference(get(src, "describedObject"), &p.child("describedObject"));
    errs.extend(validate_metric_identifier(
        get(src, "metric"),
        &p.child("metric"),
    ));
    let target = get(src, "target");
    errs.extend(validate_metric_target(target, &p.child("target")));
    if get(target, "value").is_null() && get(target, "averageValue").is_null() {
        errs.push(required(
            &p.child("target").child("averageValue"),
            "must set either a target value or averageValue",
        ));
    }
    errs
}

fn validate_external_source(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_metric_identifier(get(src, "metric"), &p.child("metric"));
    let target = get(src, "target");
    errs.extend(validate_metric_target(target, &p.child("target")));
    let (value, average) = (get(target, "value"), get(target, "averageValue"));
    if value.is_null() && average.is_null() {
        errs.push(required(
            &p.child("target").child("averageValue"),
            "must set either a target value for metric or a per-pod target",
        ));
    }
    if !value.is_null() && !average.is_null() {
        errs.push(forbidden(
            &p.child("target").child("value"),
            "may not set both a target value for metric and a per-pod target",
        ));
    }
    errs
}

fn validate_pods_source(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_metric_identifier(get(src, "metric"), &p.child("metric"));
    let target = get(src, "target");
    errs.extend(validate_metric_target(target, &p.child("target")));
    if get(target, "averageValue").is_null() {
        errs.push(required(
            &p.child("target").child("averageValue"),
            "must specify a positive target averageValue",
        ));
    }
    errs
}

/// `validateResourceSource` and (with `container`) `validateContainerResourceSource`.
fn validate_resource_source(src: &Value, p: &Path, container: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if str_of(src, "name").is_empty() {
        errs.push(required(&p.child("name"), "must specify a resource name"));
    }
    if container {
        let c = str_of(src, "container");
        if c.is_empty() {
            errs.push(required(&p.child("container"), "must specify a container"));
        } else {
            errs.extend(
                is_dns1123_label(c)
                    .iter()
                    .map(|m| invalid_str(&p.child("container"), c, m)),
            );
        }
    }
    let target = get(src, "target");
    errs.extend(validate_metric_target(target, &p.child("target")));
    let (util, average) = (
        get(target, "averageUtilization"),
        get(target, "averageValue"),
    );
    if util.is_null() && average.is_null() {
        errs.push(required(
            &p.child("target").child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if !util.is_null() && !average.is_null() {
        errs.push(forbidden(
            &p.child("target").child("averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

/// `validateMetricTarget`.
fn validate_metric_target(t: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = str_of(t, "type");
    if ty.is_empty() {
        errs.push(required(
            &p.child("type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(ty, "Utilization" | "Value" | "AverageValue") {
        errs.push(invalid_str(
            &p.child("type"),
            ty,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for field in ["value", "averageValue"] {
        if let Some(text) = quantity_text(get(t, field))
            && !Quantity::parse(&text).is_some_and(|q| q.is_positive())
        {
            errs.push(invalid(
                &p.child(field),
                BadValue::Raw(go_value(&text)),
                "must be positive",
            ));
        }
    }
    if let Some(util) = int_of(t, "averageUtilization")
        && util < 1
    {
        errs.push(invalid_int(
            &p.child("averageUtilization"),
            util,
            "must be greater than 0",
        ));
    }
    errs
}

/// A quantity field's text, whether it arrived as a string or a bare number.
fn quantity_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `validateMetricIdentifier`.
fn validate_metric_identifier(id: &Value, p: &Path) -> Vec<FieldError> {
    let name = str_of(id, "name");
    if name.is_empty() {
        return vec![required(&p.child("name"), "must specify a metric name")];
    }
    is_valid_path_segment_name(name)
        .iter()
        .map(|m| invalid_str(&p.child("name"), name, m))
        .collect()
}

/// `validateScalingRules`; `policies` left out is filled in by defaulting, `[]` is not.
fn validate_scaling_rules(rules: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(window) = int_of(rules, "stabilizationWindowSeconds") {
        let wp = p.child("stabilizationWindowSeconds");
        if window < 0 {
            errs.push(invalid_int(
                &wp,
                window,
                "must be greater than or equal to zero",
            ));
        }
        if window > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(invalid_int(
                &wp,
                window,
                &format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(select) = opt_str(rules, "selectPolicy")
        && !matches!(select, "Disabled" | "Max" | "Min")
    {
        errs.push(not_supported_str(
            &p.child("selectPolicy"),
            select,
            &["Disabled", "Max", "Min"],
        ));
    }
    let pp = p.child("policies");
    if get(rules, "policies").as_array().is_some_and(Vec::is_empty) {
        errs.push(required(&pp, "must specify at least one Policy"));
    }
    for (i, policy) in list(rules, "policies").iter().enumerate() {
        let ip = pp.index(i);
        let ty = str_of(policy, "type");
        if !matches!(ty, "Pods" | "Percent") {
            errs.push(not_supported_str(
                &ip.child("type"),
                ty,
                &["Percent", "Pods"],
            ));
        }
        let value = int_of(policy, "value").unwrap_or(0);
        if value <= 0 {
            errs.push(invalid_int(
                &ip.child("value"),
                value,
                "must be greater than zero",
            ));
        }
        let period = int_of(policy, "periodSeconds").unwrap_or(0);
        if period <= 0 {
            errs.push(invalid_int(
                &ip.child("periodSeconds"),
                period,
                "must be greater than zero",
            ));
        }
        if period > MAX_PERIOD_SECONDS {
            errs.push(invalid_int(
                &ip.child("periodSeconds"),
                period,
                &format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    errs
}
