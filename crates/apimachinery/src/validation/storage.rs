//! StorageClasses and CSIDrivers: upstream's `ValidateStorageClass`,
//! `ValidateStorageClassUpdate` (the registry runs both on update), `ValidateCSIDriver` and
//! `ValidateCSIDriverUpdate` from `pkg/apis/storage/validation`, as of 1.33.
//!
//! `reclaimPolicy` defaults to `Delete`, `volumeBindingMode` to `Immediate`, and a CSIDriver's
//! boolean switches to their defaults (`SetDefaults_StorageClass`, `SetDefaults_CSIDriver`), so
//! absent fields read as those values.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::json::{bool_of, get, int_of, len_of, list, opt_str, str_of};
use super::labels::validate_label_name;
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_qualified_name, name_is_dns_subdomain};
use super::path::{
    FIELD_IMMUTABLE, Path, duplicate, forbidden, invalid, invalid_int, invalid_raw, invalid_str,
    not_supported_str, required, too_long,
};

const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_SIZE: usize = 256 * 1024;

fn reclaim_policy(obj: &Value) -> &str {
    opt_str(obj, "reclaimPolicy").unwrap_or("Delete")
}

fn binding_mode(obj: &Value) -> &str {
    opt_str(obj, "volumeBindingMode").unwrap_or("Immediate")
}

/// `ValidateStorageClass`.
pub(crate) fn validate_storage_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_subdomain);
    errs.extend(validate_provisioner(
        str_of(obj, "provisioner"),
        &Path::new("provisioner"),
    ));
    errs.extend(validate_parameters(get(obj, "parameters")));
    let policy = reclaim_policy(obj);
    if !policy.is_empty() && !matches!(policy, "Delete" | "Retain") {
        errs.push(not_supported_str(
            &Path::new("reclaimPolicy"),
            policy,
            &["Delete", "Retain"],
        ));
    }
    let mode = binding_mode(obj);
    if !matches!(mode, "Immediate" | "WaitForFirstConsumer") {
        errs.push(not_supported_str(
            &Path::new("volumeBindingMode"),
            mode,
            &["Immediate", "WaitForFirstConsumer"],
        ));
    }
    errs.extend(validate_allowed_topologies(list(obj, "allowedTopologies")));
    errs
}

/// `validateProvisioner`: a qualified name, checked lower-cased.
fn validate_provisioner(provisioner: &str, p: &Path) -> Vec<FieldError> {
    if provisioner.is_empty() {
        return vec![required(p, "")];
    }
    let lower = provisioner.to_lowercase();
    is_qualified_name(&lower)
        .iter()
        .map(|m| invalid_str(p, &lower, m))
        .collect()
}

/// `validateParameters` (empty maps allowed).
fn validate_parameters(params: &Value) -> Vec<FieldError> {
    let p = Path::new("parameters");
    if len_of(params) > MAX_PARAMETERS {
        return vec![too_long(&p, MAX_PARAMETERS)];
    }
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in params.as_object().into_iter().flatten() {
        if k.is_empty() {
            errs.push(invalid_str(&p, k, "field can not be empty."));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > MAX_PARAMETERS_SIZE {
        errs.push(too_long(&p, MAX_PARAMETERS_SIZE));
    }
    errs
}

/// `validateAllowedTopologies` with `ValidateTopologySelectorTerm`.
fn validate_allowed_topologies(terms: &[Value]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<Vec<(String, BTreeSet<String>)>> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let ep = Path::new("allowedTopologies")
            .index(i)
            .child("matchLabelExpressions");
        let mut exprs: Vec<(String, BTreeSet<String>)> = Vec::new();
        for (j, req) in list(term, "matchLabelExpressions").iter().enumerate() {
            let rp = ep.index(j);
            let values = list(req, "values");
            if values.is_empty() {
                errs.push(required(&rp.child("values"), ""));
            }
            let mut set = BTreeSet::new();
            for (k, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("").to_string();
                if !set.insert(v.clone()) {
                    errs.push(duplicate(&rp.child("values").index(k), BadValue::Str(v)));
                }
            }
            let key = str_of(req, "key");
            errs.extend(validate_label_name(key, &rp.child("key")));
            if exprs.iter().any(|(k, _)| k == key) {
                errs.push(duplicate(&rp.child("key"), BadValue::Str(key.to_string())));
            }
            exprs.retain(|(k, _)| k != key);
            exprs.push((key.to_string(), set));
        }
        exprs.sort();
        if seen.contains(&exprs) {
            errs.push(duplicate(&ep, BadValue::Str(String::new())));
        }
        seen.push(exprs);
    }
    errs
}

/// The registry's StorageClass update: `ValidateStorageClass` then `ValidateStorageClassUpdate`.
pub(crate) fn validate_storage_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_storage_class(&new);
    errs.extend(validate_object_meta_update(&new, old));
    if get(&new, "parameters") != get(old, "parameters") {
        errs.push(forbidden(
            &Path::new("parameters"),
            "updates to parameters are forbidden.",
        ));
    }
    if str_of(&new, "provisioner") != str_of(old, "provisioner") {
        errs.push(forbidden(
            &Path::new("provisioner"),
            "updates to provisioner are forbidden.",
        ));
    }
    if reclaim_policy(&new) != reclaim_policy(old) {
        errs.push(forbidden(
            &Path::new("reclaimPolicy"),
            "updates to reclaimPolicy are forbidden.",
        ));
    }
    let mode = binding_mode(&new);
    if mode != binding_mode(old) {
        errs.push(invalid_str(
            &Path::new("volumeBindingMode"),
            mode,
            FIELD_IMMUTABLE,
        ));
    }
    errs
}

/// `ValidateCSIDriver`.
pub(crate) fn validate_csi_driver(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_subdomain);
    errs.extend(validate_csi_driver_spec(get(obj, "spec")));
    errs
}

/// `validateCSIDriverSpec`; the defaulted booleans cannot be missing.
fn validate_csi_driver_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = Vec::new();
    if let Some(policy) = opt_str(spec, "fsGroupPolicy")
        && !matches!(policy, "File" | "None" | "ReadWriteOnceWithFSType")
    {
        errs.push(not_supported_str(
            &p.child("fsGroupPolicy"),
            policy,
            &["File", "None", "ReadWriteOnceWithFSType"],
        ));
    }
    let mut audiences = BTreeSet::new();
    for (i, request) in list(spec, "tokenRequests").iter().enumerate() {
        let rp = p.child("tokenRequests").index(i);
        let audience = str_of(request, "audience");
        if !audiences.insert(audience) {
            errs.push(duplicate(
                &rp.child("audience"),
                BadValue::Str(audience.to_string()),
            ));
            continue;
        }
        if let Some(seconds) = int_of(request, "expirationSeconds") {
            if seconds < 600 {
                errs.push(invalid_int(
                    &rp.child("expirationSeconds"),
                    seconds,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if seconds > 1 << 32 {
                errs.push(invalid_int(
                    &rp.child("expirationSeconds"),
                    seconds,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
        }
    }
    for mode in list(spec, "volumeLifecycleModes") {
        let mode = mode.as_str().unwrap_or("");
        if !matches!(mode, "Persistent" | "Ephemeral") {
            errs.push(not_supported_str(
                &p.child("volumeLifecycleModes"),
                mode,
                &["Persistent", "Ephemeral"],
            ));
        }
    }
    errs
}

/// `volumeLifecycleModes` as stored: defaulted to `["Persistent"]` when absent.
fn lifecycle_modes(spec: &Value) -> Vec<&str> {
    match get(spec, "volumeLifecycleModes").as_array() {
        Some(modes) => modes.iter().map(|m| m.as_str().unwrap_or("")).collect(),
        None => vec!["Persistent"],
    }
}

/// `ValidateCSIDriverUpdate`: metadata, the spec, then the immutable `attachRequired` (at
/// upstream's misspelt path `spec.attachedRequired`) and `volumeLifecycleModes`.
pub(crate) fn validate_csi_driver_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_csi_driver_spec(ns));
    let attach = |s: &Value| bool_of(s, "attachRequired").unwrap_or(true);
    if attach(ns) != attach(os) {
        errs.push(invalid(
            &Path::new("spec").child("attachedRequired"),
            BadValue::Raw(attach(ns).to_string()),
            FIELD_IMMUTABLE,
        ));
    }
    let modes = lifecycle_modes(ns);
    if modes != lifecycle_modes(os) {
        let rendered: Vec<String> = modes.iter().map(|m| go_quote(m)).collect();
        errs.push(invalid_raw(
            &Path::new("spec").child("volumeLifecycleModes"),
            format!("[]storage.VolumeLifecycleMode{{{}}}", rendered.join(", ")),
            FIELD_IMMUTABLE,
        ));
    }
    errs
}
