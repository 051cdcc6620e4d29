//! ResourceQuotas and LimitRanges: upstream's `ValidateResourceQuota`,
//! `ValidateResourceQuotaUpdate`, `ValidateResourceQuotaResourceName`,
//! `ValidateResourceQuantityValue`, `validateResourceQuotaScopes`, `ValidateLimitRange` and
//! the resource-name helpers they share (`pkg/apis/core/validation` and `core/helper`).
//!
//! A LimitRange's Container limits get upstream's defaults first (`SetDefaults_LimitRangeItem`:
//! `default` from `max`, `defaultRequest` from `default`, then from `min`), since comparisons
//! run on the defaulted object. Quantities in those comparisons are printed as Go dumps.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::container::{is_extended_resource, validate_container_resource_name};
use super::json::{get, list, sorted, str_of};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_qualified_name, name_is_dns_subdomain};
use super::path::{Path, duplicate, forbidden, invalid, invalid_raw, invalid_str, required};
use super::quantity::{Quantity, go_value, go_value_cached};

const STANDARD_RESOURCES: [&str; 20] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];
const QUOTA_RESOURCES: [&str; 19] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];
const INTEGER_RESOURCES: [&str; 9] = [
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];
const POD_COMPUTE: [&str; 6] = [
    "cpu",
    "memory",
    "limits.cpu",
    "limits.memory",
    "requests.cpu",
    "requests.memory",
];
const SCOPES: [&str; 6] = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

fn is_quota_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

fn quantity_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// `ValidateResourceQuantityValue`: non-negative, and whole for countable resources.
pub(crate) fn validate_quantity_value(name: &str, v: &Value, p: &Path) -> Vec<FieldError> {
    let text = quantity_text(v);
    let Some(q) = Quantity::parse(&text) else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(invalid_str(
            p,
            &q.canonical(),
            "must be greater than or equal to 0",
        ));
    }
    let integer = INTEGER_RESOURCES.contains(&name) || is_extended_resource(name);
    if integer && !q.is_integer() {
        errs.push(invalid(
            p,
            BadValue::Raw(go_value(&text)),
            "must be an integer",
        ));
    }
    errs
}

/// `validateResourceName`: `Some(errors)` stops the caller, as upstream's early return does.
fn validate_resource_name(name: &str, p: &Path) -> Vec<FieldError> {
    let msgs = is_qualified_name(name);
    if !msgs.is_empty() {
        return msgs.iter().map(|m| invalid_str(p, name, m)).collect();
    }
    if !name.contains('/') && !STANDARD_RESOURCES.contains(&name) && !is_quota_hugepages(name) {
        return vec![invalid_str(
            p,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    Vec::new()
}

/// `ValidateResourceQuotaResourceName`.
fn validate_quota_resource_name(name: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_resource_name(name, p);
    if !name.contains('/') && !QUOTA_RESOURCES.contains(&name) && !is_quota_hugepages(name) {
        errs.push(invalid_str(
            p,
            name,
            "must be a standard resource for quota",
        ));
    }
    errs
}

/// `IsResourceQuotaScopeValidForResource`.
fn scope_valid_for(scope: &str, resource: &str) -> bool {
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => resource == "pods" || POD_COMPUTE.contains(&resource),
        "BestEffort" => resource == "pods",
        _ => true,
    }
}

/// `ValidateResourceQuotaSpec` (hard limits and scopes).
fn validate_quota_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = Vec::new();
    let hard = get(spec, "hard")
        .as_object()
        .map(sorted)
        .unwrap_or_default();
    for (k, v) in &hard {
        let kp = p.child("hard").key(k);
        errs.extend(validate_quota_resource_name(k, &kp));
        errs.extend(validate_quantity_value(k, v, &kp));
    }
    let scopes = list(spec, "scopes");
    if scopes.is_empty() {
        return errs;
    }
    let sp = p.child("scopes");
    let rendered = {
        let parts: Vec<String> = scopes
            .iter()
            .map(|s| go_quote(s.as_str().unwrap_or("")))
            .collect();
        format!("[]core.ResourceQuotaScope{{{}}}", parts.join(", "))
    };
    let mut set = BTreeSet::new();
    for scope in scopes {
        let scope = scope.as_str().unwrap_or("");
        if !SCOPES.contains(&scope) {
            errs.push(invalid_raw(&sp, rendered.clone(), "unsupported scope"));
        }
        for (k, _) in &hard {
            if QUOTA_RESOURCES.contains(k) && !scope_valid_for(scope, k) {
                errs.push(invalid_raw(
                    &sp,
                    rendered.clone(),
                    "unsupported scope applied to resource",
                ));
            }
        }
        set.insert(scope);
    }
    for pair in [
        ["BestEffort", "NotBestEffort"],
        ["NotTerminating", "Terminating"],
    ] {
        if pair.iter().all(|s| set.contains(s)) {
            errs.push(invalid_raw(&sp, rendered.clone(), "conflicting scopes"));
        }
    }
    errs
}

/// `ValidateResourceQuota` (status is cleared on create).
pub(crate) fn validate_resource_quota(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_quota_spec(get(obj, "spec")));
    errs
}

/// `ValidateResourceQuotaUpdate`: scopes never change.
pub(crate) fn validate_resource_quota_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    errs.extend(validate_quota_spec(ns));
    let set = |s: &Value| -> BTreeSet<String> {
        list(s, "scopes")
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect()
    };
    if set(ns) != set(os) {
        let parts: Vec<String> = list(ns, "scopes")
            .iter()
            .map(|s| go_quote(s.as_str().unwrap_or("")))
            .collect();
        let rendered = if get(ns, "scopes").is_null() {
            "[]core.ResourceQuotaScope(nil)".to_string()
        } else {
            format!("[]core.ResourceQuotaScope{{{}}}", parts.join(", "))
        };
        errs.push(invalid_raw(
            &Path::new("spec").child("scopes"),
            rendered,
            super::path::FIELD_IMMUTABLE,
        ));
    }
    errs
}

type Quantities<'a> = BTreeMap<&'a str, String>;

fn quantities(v: &Value) -> Quantities<'_> {
    v.as_object()
        .map(sorted)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, q)| (k, quantity_text(q)))
        .collect()
}

/// `ValidateLimitRange`.
pub(crate) fn validate_limit_range(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    let mut types = BTreeSet::new();
    for (i, limit) in list(get(obj, "spec"), "limits").iter().enumerate() {
        let ip = Path::new("spec").child("limits").index(i);
        let ty = str_of(limit, "type");
        let tp = ip.child("type");
        let msgs = is_qualified_name(ty);
        if !msgs.is_empty() {
            errs.extend(msgs.iter().map(|m| invalid_str(&tp, ty, m)));
        } else if !ty.contains('/') && !matches!(ty, "Pod" | "Container" | "PersistentVolumeClaim")
        {
            errs.push(invalid_str(
                &tp,
                ty,
                "must be a standard limit type or fully qualified",
            ));
        }
        if !types.insert(ty) {
            errs.push(duplicate(&tp, BadValue::Str(ty.to_string())));
        }
        let name_errors = |k: &str, p: &Path| match ty {
            "Pod" | "Container" => validate_container_resource_name(k, p),
            _ => validate_resource_name(k, p),
        };
        let (max, min) = (quantities(get(limit, "max")), quantities(get(limit, "min")));
        let mut default = quantities(get(limit, "default"));
        let mut default_request = quantities(get(limit, "defaultRequest"));
        let ratio = quantities(get(limit, "maxLimitRequestRatio"));
        for (field, m) in [("max", &max), ("min", &min)] {
            for k in m.keys() {
                errs.extend(name_errors(k, &ip.child(field).key(k)));
            }
        }
        if ty == "Pod" {
            for field in ["default", "defaultRequest"] {
                if get(limit, field).as_object().is_some_and(|m| !m.is_empty()) {
                    errs.push(forbidden(
                        &ip.child(field),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
            default.clear();
            default_request.clear();
        } else {
            for (field, m) in [("default", &default), ("defaultRequest", &default_request)] {
                for k in m.keys() {
                    errs.extend(name_errors(k, &ip.child(field).key(k)));
                }
            }
        }
        if ty == "Container" {
            for (k, v) in &max {
                default.entry(k).or_insert_with(|| v.clone());
            }
            for (k, v) in default.iter().chain(&min) {
                default_request.entry(k).or_insert_with(|| v.clone());
            }
        }
        if ty == "PersistentVolumeClaim"
            && !min.contains_key("storage")
            && !max.contains_key("storage")
        {
            errs.push(required(
                &ip.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
        for k in ratio.keys() {
            errs.extend(name_errors(k, &ip.child("maxLimitRequestRatio").key(k)));
        }
        errs.extend(compare_limits(
            &ip,
            &min,
            &max,
            &default,
            &default_request,
            &ratio,
        ));
    }
    errs
}

/// The per-resource ordering checks of `ValidateLimitRange` (resources in key order).
fn compare_limits(
    ip: &Path,
    min: &Quantities,
    max: &Quantities,
    default: &Quantities,
    default_request: &Quantities,
    ratio: &Quantities,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let keys: BTreeSet<&str> = [min, max, default, default_request, ratio]
        .iter()
        .flat_map(|m| m.keys().copied())
        .collect();
    let parse = |m: &Quantities, k: &str| {
        m.get(k)
            .and_then(|t| Quantity::parse(t).map(|q| (t.clone(), q)))
    };
    let canon = |t: &str| {
        Quantity::parse(t)
            .map(|q| q.canonical())
            .unwrap_or_default()
    };
    for k in keys {
        let (mn, mx) = (parse(min, k), parse(max, k));
        let (df, dr) = (parse(default, k), parse(default_request, k));
        let mut push = |field: &str, shown: &str, detail: String| {
            errs.push(invalid(
                &ip.child(field).key(k),
                BadValue::Raw(go_value_cached(shown)),
                &detail,
            ));
        };
        if let (Some((a, qa)), Some((b, qb))) = (&mn, &mx)
            && qa > qb
        {
            push(
                "min",
                a,
                format!(
                    "min value {} is greater than max value {}",
                    canon(a),
                    canon(b)
                ),
            );
        }
        if let (Some((r, qr)), Some((a, qa))) = (&dr, &mn)
            && qa > qr
        {
            push(
                "defaultRequest",
                r,
                format!(
                    "min value {} is greater than default request value {}",
                    canon(a),
                    canon(r)
                ),
            );
        }
        if let (Some((r, qr)), Some((b, qb))) = (&dr, &mx)
            && qr > qb
        {
            push(
                "defaultRequest",
                r,
                format!(
                    "default request value {} is greater than max value {}",
                    canon(r),
                    canon(b)
                ),
            );
        }
        if let (Some((r, qr)), Some((d, qd))) = (&dr, &df)
            && qr > qd
        {
            push(
                "defaultRequest",
                r,
                format!(
                    "default request value {} is greater than default limit value {}",
                    canon(r),
                    canon(d)
                ),
            );
        }
        if let (Some((d, qd)), Some((a, qa))) = (&df, &mn)
            && qa > qd
        {
            push(
                "default",
                a,
                format!(
                    "min value {} is greater than default value {}",
                    canon(a),
                    canon(d)
                ),
            );
        }
        if let (Some((d, qd)), Some((b, qb))) = (&df, &mx)
            && qd > qb
        {
            push(
                "default",
                b,
                format!(
                    "default value {} is greater than max value {}",
                    canon(d),
                    canon(b)
                ),
            );
        }
    }
    errs
}
