//! Small cluster-level kinds: PriorityClasses (upstream's `ValidatePriorityClass` and
//! `ValidatePriorityClassUpdate`, `pkg/apis/scheduling/validation`), RuntimeClasses
//! (`ValidateRuntimeClass`, `ValidateRuntimeClassUpdate`, `pkg/apis/node/validation`) and
//! Leases (`ValidateLease`, `ValidateLeaseUpdate`, `pkg/apis/coordination/validation`).
//!
//! RuntimeClasses and Leases use apimachinery's ObjectMeta rules (no standard-finalizer
//! check). A PriorityClass's `preemptionPolicy` defaults to `PreemptLowerPriority`.

use serde_json::Value;

use crate::field::FieldError;

use super::json::{bool_of, get, int_of, list, opt_str, str_of};
use super::labels::validate_labels;
use super::meta::{
    prepare_update, validate_object_meta, validate_object_meta_generic,
    validate_object_meta_update, validate_object_meta_update_generic,
};
use super::name::{name_is_dns_label, name_is_dns_subdomain};
use super::path::{
    FIELD_IMMUTABLE, Path, forbidden, invalid_int, invalid_str, not_supported_str, required,
};
use super::scheduling::validate_tolerations;

const SYSTEM_PREFIX: &str = "system-";
const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
const SYSTEM_CRITICAL_PRIORITY: i64 = 2 * HIGHEST_USER_PRIORITY;

/// `IsKnownSystemPriorityClass`: `Err` carries upstream's reason.
fn known_system_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    let expected = match name {
        "system-node-critical" => SYSTEM_CRITICAL_PRIORITY + 1000,
        "system-cluster-critical" => SYSTEM_CRITICAL_PRIORITY,
        _ => return Err(format!("{name} is not a known system priority class")),
    };
    if value != expected {
        return Err(format!("value of {name} PriorityClass must be {expected}"));
    }
    if global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be false"
        ));
    }
    Ok(())
}

fn preemption_policy(obj: &Value) -> &str {
    opt_str(obj, "preemptionPolicy").unwrap_or("PreemptLowerPriority")
}

/// `ValidatePriorityClass`.
pub(crate) fn validate_priority_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_subdomain);
    let name = str_of(get(obj, "metadata"), "name");
    let value = int_of(obj, "value").unwrap_or(0);
    if name.starts_with(SYSTEM_PREFIX) {
        if let Err(reason) =
            known_system_class(name, value, bool_of(obj, "globalDefault") == Some(true))
        {
            errs.push(forbidden(
                &Path::new("metadata").child("name"),
                &format!("priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {reason}"),
            ));
        }
    } else if value > HIGHEST_USER_PRIORITY {
        errs.push(forbidden(
            &Path::new("value"),
            &format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    match preemption_policy(obj) {
        "PreemptLowerPriority" | "Never" => {}
        "" => errs.push(required(&Path::new("preemptionPolicy"), "")),
        other => errs.push(not_supported_str(
            &Path::new("preemptionPolicy"),
            other,
            &["PreemptLowerPriority", "Never"],
        )),
    }
    errs
}

/// `ValidatePriorityClassUpdate`: value and preemption policy are immutable.
pub(crate) fn validate_priority_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    if int_of(&new, "value") != int_of(old, "value") {
        errs.push(forbidden(
            &Path::new("value"),
            "may not be changed in an update.",
        ));
    }
    let policy = preemption_policy(&new);
    if policy != preemption_policy(old) {
        errs.push(invalid_str(
            &Path::new("preemptionPolicy"),
            policy,
            FIELD_IMMUTABLE,
        ));
    }
    errs
}

/// `ValidateRuntimeClass`: the handler is a DNS label.
pub(crate) fn validate_runtime_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_generic(obj, Some(false), name_is_dns_subdomain);
    let handler = str_of(obj, "handler");
    errs.extend(
        name_is_dns_label(handler, false)
            .iter()
            .map(|m| invalid_str(&Path::new("handler"), handler, m)),
    );
    let scheduling = get(obj, "scheduling");
    if !scheduling.is_null() {
        let p = Path::new("scheduling");
        errs.extend(validate_labels(
            get(scheduling, "nodeSelector"),
            &p.child("nodeSelector"),
        ));
        errs.extend(validate_tolerations(
            list(scheduling, "tolerations"),
            &p.child("tolerations"),
        ));
    }
    errs
}

/// The registry's RuntimeClass update: the class, its metadata update, an immutable handler.
pub(crate) fn validate_runtime_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_runtime_class(&new);
    errs.extend(validate_object_meta_update_generic(&new, old));
    let handler = str_of(&new, "handler");
    if handler != str_of(old, "handler") {
        errs.push(invalid_str(&Path::new("handler"), handler, FIELD_IMMUTABLE));
    }
    errs
}

/// `ValidateLeaseSpec` (durations and transitions).
fn validate_lease_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = Vec::new();
    if let Some(d) = int_of(spec, "leaseDurationSeconds")
        && d <= 0
    {
        errs.push(invalid_int(
            &p.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = int_of(spec, "leaseTransitions")
        && t < 0
    {
        errs.push(invalid_int(
            &p.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// `ValidateLease`.
pub(crate) fn validate_lease(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta_generic(obj, Some(true), name_is_dns_subdomain);
    errs.extend(validate_lease_spec(get(obj, "spec")));
    errs
}

/// `ValidateLeaseUpdate`.
pub(crate) fn validate_lease_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update_generic(&new, old);
    errs.extend(validate_lease_spec(get(&new, "spec")));
    errs
}
