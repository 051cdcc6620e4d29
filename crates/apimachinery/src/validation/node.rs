//! Nodes: upstream's `ValidateNode`, `ValidateNodeUpdate`, `validateNodeTaints` and
//! `ValidateNodeResources` from `pkg/apis/core/validation`.
//!
//! Upstream builds the taints' path from the metadata path, so taint errors read
//! `metadata.taints[0].effect`; capacity paths are dot-joined (`status.capacity.cpu`). The
//! node-annotation taints and avoid-pods annotations and the deprecated config source are
//! not checked.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::gofmt::go_pointer;
use super::gofmt::string_slice;
use super::json::{get, list, sorted, str_of};
use super::labels::validate_label_name;
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_valid_label_value, name_is_dns_subdomain};
use super::netnames::{CIDR_MSG, Cidr};
use super::path::{
    Path, duplicate, forbidden, invalid_raw, invalid_str, not_supported_str, required,
};
use super::quota::validate_quantity_value;

/// `validateNodeTaints`.
pub(crate) fn validate_taints(taints: &[Value], p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut unique: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let ip = p.index(i);
        let key = str_of(t, "key");
        errs.extend(validate_label_name(key, &ip.child("key")));
        let value = str_of(t, "value");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(invalid_str(&ip.child("value"), value, &msgs.join(";")));
        }
        let effect = str_of(t, "effect");
        if effect.is_empty() {
            errs.push(required(&ip.child("effect"), ""));
        } else if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(not_supported_str(
                &ip.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if !unique.insert((effect, key)) {
            let rendered = format!(
                "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{}}}",
                go_quote(key),
                go_quote(value),
                go_quote(effect),
                go_pointer("v1.Time", get(t, "timeAdded")),
            );
            let mut e = duplicate(&ip, BadValue::Raw(rendered));
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
    errs
}

/// `ValidateNodeResources`.
fn validate_resources(obj: &Value) -> Vec<FieldError> {
    let status = get(obj, "status");
    let mut errs = Vec::new();
    for field in ["capacity", "allocatable"] {
        for (k, v) in get(status, field)
            .as_object()
            .map(sorted)
            .unwrap_or_default()
        {
            let p = Path::new("status").child(field).child(k);
            errs.extend(validate_quantity_value(k, v, &p));
        }
    }
    errs
}

/// `ValidateNode`.
pub(crate) fn validate_node(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_subdomain);
    let spec = get(obj, "spec");
    errs.extend(validate_taints(
        list(spec, "taints"),
        &Path::new("metadata").child("taints"),
    ));
    errs.extend(validate_resources(obj));
    let cidrs = list(spec, "podCIDRs");
    let cp = Path::new("spec").child("podCIDRs");
    for (i, c) in cidrs.iter().enumerate() {
        let c = c.as_str().unwrap_or("");
        if Cidr::parse(c).is_none() {
            errs.push(invalid_str(&cp.index(i), c, CIDR_MSG));
        }
    }
    if cidrs.len() > 1 {
        let families: Vec<Option<bool>> = cidrs
            .iter()
            .map(|c| Cidr::parse(c.as_str().unwrap_or("")).map(|c| c.is_v4()))
            .collect();
        let dual = families.len() == 2
            && families.iter().all(Option::is_some)
            && families[0] != families[1];
        if !dual {
            errs.push(invalid_raw(
                &cp,
                string_slice(get(spec, "podCIDRs")),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            let c = c.as_str().unwrap_or("");
            if !seen.insert(c) {
                errs.push(duplicate(&cp.index(i), BadValue::Str(c.to_string())));
            }
        }
    }
    errs
}

/// `ValidateNodeUpdate`: pod CIDRs and the provider ID only go from unset to set.
pub(crate) fn validate_node_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_resources(&new));
    let old_cidrs = list(os, "podCIDRs");
    if !old_cidrs.is_empty() {
        let new_cidrs = list(ns, "podCIDRs");
        let msg = "node updates may not change podCIDR except from \"\" to valid";
        let p = Path::new("spec").child("podCIDRs");
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(forbidden(&p, msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(new_cidrs) {
                if o != n {
                    errs.push(forbidden(&p, msg));
                }
            }
        }
    }
    let old_provider = str_of(os, "providerID");
    if !old_provider.is_empty() && old_provider != str_of(ns, "providerID") {
        errs.push(forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_taints(
        list(ns, "taints"),
        &Path::new("metadata").child("taints"),
    ));
    if str_of(ns, "externalID") != str_of(os, "externalID") {
        errs.push(forbidden(
            &Path::new("spec").child("externalID"),
            "may not be updated",
        ));
    }
    errs
}
