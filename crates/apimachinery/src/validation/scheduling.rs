//! The scheduling parts of a pod spec: tolerations, topology spread constraints and affinity
//! (upstream's `ValidateTolerations`, `validateTopologySpreadConstraints`, `validateAffinity`).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::json::{get, int_of, list, opt_str, str_of};
use super::labels::{validate_label_name, validate_label_selector};
use super::name::{is_dns1123_label, is_valid_label_value};
use super::path::{
    Path, duplicate, forbidden, invalid_int, invalid_str, not_supported_str, required,
};

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tolerations: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = str_of(t, "key");
        let operator = str_of(t, "operator");
        let effect = str_of(t, "effect");
        let value = str_of(t, "value");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid_str(
                &p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if !get(t, "tolerationSeconds").is_null() && effect != "NoExecute" {
            errs.push(invalid_str(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(invalid_str(&p.child("operator"), value, &msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid_str(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported_str(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(not_supported_str(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// `validateTopologySpreadConstraints`.
pub(crate) fn validate_topology_spread(constraints: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        let max_skew = int_of(c, "maxSkew").unwrap_or(0);
        if max_skew <= 0 {
            errs.push(invalid_int(
                &p.child("maxSkew"),
                max_skew,
                "must be greater than zero",
            ));
        }
        let key = str_of(c, "topologyKey");
        if key.is_empty() {
            errs.push(required(&p.child("topologyKey"), "can not be empty"));
        }
        let action = str_of(c, "whenUnsatisfiable");
        if !matches!(action, "DoNotSchedule" | "ScheduleAnyway") {
            errs.push(not_supported_str(
                &p.child("whenUnsatisfiable"),
                action,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        let repeated = constraints[i + 1..]
            .iter()
            .any(|o| str_of(o, "topologyKey") == key && str_of(o, "whenUnsatisfiable") == action);
        if repeated {
            errs.push(duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                BadValue::Str(format!("{{{key}, {action}}}")),
            ));
        }
        if let Some(min) = int_of(c, "minDomains") {
            if min <= 0 {
                errs.push(invalid_int(
                    &p.child("minDomains"),
                    min,
                    "must be greater than zero",
                ));
            }
            if action != "DoNotSchedule" {
                errs.push(invalid_int(
                    &p.child("minDomains"),
                    min,
                    &format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = opt_str(c, policy)
                && !matches!(v, "Honor" | "Ignore")
            {
                errs.push(not_supported_str(&p.child(policy), v, &["Honor", "Ignore"]));
            }
        }
        let selector = get(c, "labelSelector");
        let keys = list(c, "matchLabelKeys");
        if !keys.is_empty() {
            let kp = p.child("matchLabelKeys");
            if selector.is_null() {
                errs.push(forbidden(
                    &kp,
                    "must not be specified when labelSelector is not set",
                ));
            }
            let selector_keys = selector_keys(selector);
            for (j, k) in keys.iter().enumerate() {
                let k = k.as_str().unwrap_or("");
                errs.extend(validate_label_name(k, &kp.index(j)));
                if selector_keys.contains(k) {
                    errs.push(invalid_str(
                        &kp.index(j),
                        k,
                        "exists in both matchLabelKeys and labelSelector",
                    ));
                }
            }
        }
        errs.extend(validate_label_selector(
            selector,
            false,
            &p.child("labelSelector"),
        ));
    }
    errs
}

fn selector_keys(selector: &Value) -> BTreeSet<&str> {
    let mut keys: BTreeSet<&str> = get(selector, "matchLabels")
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.extend(
        list(selector, "matchExpressions")
            .iter()
            .map(|e| str_of(e, "key")),
    );
    keys
}

/// `validateAffinity`.
pub(crate) fn validate_affinity(affinity: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let node = get(affinity, "nodeAffinity");
    if !node.is_null() {
        let np = path.child("nodeAffinity");
        let required_sel = get(node, "requiredDuringSchedulingIgnoredDuringExecution");
        if !required_sel.is_null() {
            let tp = np
                .child("requiredDuringSchedulingIgnoredDuringExecution")
                .child("nodeSelectorTerms");
            let terms = list(required_sel, "nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(required(&tp, "must have at least one node selector term"));
            }
            for (i, term) in terms.iter().enumerate() {
                errs.extend(validate_node_selector_term(term, false, &tp.index(i)));
            }
        }
        let preferred = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in list(node, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let weight = int_of(t, "weight").unwrap_or(0);
            if !(1..=100).contains(&weight) {
                errs.push(invalid_int(
                    &preferred.index(i).child("weight"),
                    weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                get(t, "preference"),
                true,
                &preferred.index(i).child("preference"),
            ));
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let a = get(affinity, kind);
        if a.is_null() {
            continue;
        }
        let ap = path.child(kind);
        let rp = ap.child("requiredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in list(a, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            errs.extend(validate_pod_affinity_term(term, &rp.index(i)));
        }
        let pp = ap.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, t) in list(a, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let weight = int_of(t, "weight").unwrap_or(0);
            if !(1..=100).contains(&weight) {
                errs.push(invalid_int(
                    &pp.index(i).child("weight"),
                    weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_pod_affinity_term(
                get(t, "podAffinityTerm"),
                &pp.index(i).child("podAffinityTerm"),
            ));
        }
    }
    errs
}

/// `ValidateNodeSelectorTerm` (match expressions; field selectors accept only metadata.name).
pub(crate) fn validate_node_selector_term(
    term: &Value,
    allow_invalid_values: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, req) in list(term, "matchExpressions").iter().enumerate() {
        let p = path.child("matchExpressions").index(j);
        let values = list(req, "values");
        match str_of(req, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(required(
                &p.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(forbidden(
                &p.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" if values.len() != 1 => errs.push(required(
                &p.child("values"),
                "must be specified single value when `operator` is 'Lt' or 'Gt'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
            op => errs.push(invalid_str(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(str_of(req, "key"), &p.child("key")));
        if !allow_invalid_values {
            for (k, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                for msg in is_valid_label_value(v) {
                    errs.push(invalid_str(&p.child("values").index(k), v, &msg));
                }
            }
        }
    }
    for (j, req) in list(term, "matchFields").iter().enumerate() {
        let p = path.child("matchFields").index(j);
        let op = str_of(req, "operator");
        if matches!(op, "In" | "NotIn") {
            if list(req, "values").len() != 1 {
                errs.push(required(
                    &p.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        } else {
            errs.push(invalid_str(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            ));
        }
        let key = str_of(req, "key");
        if key != "metadata.name" {
            errs.push(invalid_str(
                &p.child("key"),
                key,
                "not a valid field selector key",
            ));
        }
    }
    errs
}

/// `validatePodAffinityTerm`.
fn validate_pod_affinity_term(term: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_label_selector(
        get(term, "labelSelector"),
        false,
        &path.child("labelSelector"),
    );
    errs.extend(validate_label_selector(
        get(term, "namespaceSelector"),
        false,
        &path.child("namespaceSelector"),
    ));
    for ns in list(term, "namespaces") {
        let ns = ns.as_str().unwrap_or("");
        for msg in is_dns1123_label(ns) {
            errs.push(invalid_str(&path.child("namespace"), ns, &msg));
        }
    }
    let key = str_of(term, "topologyKey");
    if key.is_empty() {
        errs.push(required(&path.child("topologyKey"), "can not be empty"));
    }
    errs.extend(validate_label_name(key, &path.child("topologyKey")));
    errs
}
