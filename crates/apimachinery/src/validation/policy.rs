//! PodDisruptionBudgets: upstream's `ValidatePodDisruptionBudget` and
//! `ValidatePodDisruptionBudgetSpec` from `pkg/apis/policy/validation`.
//!
//! In 1.33 the PDB validator checks the spec only. Its metadata is checked by the generic
//! registry afterwards (`rest.BeforeCreate` runs `ValidateObjectMetaAccessor` with
//! `ValidatePathSegmentName` once the strategy found nothing), so a PDB name only has to be a
//! safe path segment, and metadata errors appear only when the spec is valid. On update the
//! registry's common-field checks (`validateCommonFields`) come before the spec's.

use serde_json::Value;

use crate::field::FieldError;

use super::apps::{not_more_than_100_percent, positive_int_or_percent};
use super::gofmt::go_pointer;
use super::json::{get, opt_str};
use super::labels::validate_label_selector;
use super::meta::{
    prepare_update, validate_object_meta_generic, validate_object_meta_update_generic,
};
use super::name::validate_path_segment_name;
use super::path::{Path, invalid_raw, not_supported_str};

/// `ValidatePodDisruptionBudgetSpec`.
fn validate_spec(spec: &Value, allow_invalid_values: bool) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = Vec::new();
    let (min, max) = (get(spec, "minAvailable"), get(spec, "maxUnavailable"));
    if !min.is_null() && !max.is_null() {
        // `%#v` of the whole spec; Go prints the addresses of its pointer fields.
        let value = format!(
            "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, Selector:{}, MaxUnavailable:{}, UnhealthyPodEvictionPolicy:{}}}",
            go_pointer("intstr.IntOrString", min),
            go_pointer("v1.LabelSelector", get(spec, "selector")),
            go_pointer("intstr.IntOrString", max),
            go_pointer(
                "policy.UnhealthyPodEvictionPolicyType",
                get(spec, "unhealthyPodEvictionPolicy")
            ),
        );
        errs.push(invalid_raw(
            &p,
            value,
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (field, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if !v.is_null() {
            errs.extend(positive_int_or_percent(v, &p.child(field)));
            errs.extend(not_more_than_100_percent(v, &p.child(field)));
        }
    }
    errs.extend(validate_label_selector(
        get(spec, "selector"),
        allow_invalid_values,
        &p.child("selector"),
    ));
    if let Some(policy) = opt_str(spec, "unhealthyPodEvictionPolicy")
        && !matches!(policy, "AlwaysAllow" | "IfHealthyBudget")
    {
        errs.push(not_supported_str(
            &p.child("unhealthyPodEvictionPolicy"),
            policy,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
    errs
}

/// Create: the spec, then (only if it is valid) the registry's metadata checks.
pub(crate) fn validate_pdb(obj: &Value) -> Vec<FieldError> {
    let errs = validate_spec(get(obj, "spec"), false);
    if !errs.is_empty() {
        return errs;
    }
    validate_object_meta_generic(obj, Some(true), validate_path_segment_name)
}

/// Update: the registry's common-field checks, then the spec. Stored selectors with invalid
/// label values stay acceptable.
pub(crate) fn validate_pdb_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let old_selector = get(get(old, "spec"), "selector");
    let allow_invalid = !validate_label_selector(old_selector, false, &Path::new("")).is_empty();
    let mut errs = validate_object_meta_generic(&new, Some(true), validate_path_segment_name);
    errs.extend(validate_object_meta_update_generic(&new, old));
    errs.extend(validate_spec(get(&new, "spec"), allow_invalid));
    errs
}
