//! RBAC: upstream's `ValidateRole`, `ValidateClusterRole`, `ValidateRoleBinding`,
//! `ValidateClusterRoleBinding`, their `*Update` variants, `ValidatePolicyRule` and
//! `ValidateRoleBindingSubject` from `pkg/apis/rbac/validation`.
//!
//! Names only need to be safe URL path segments (`ValidateRBACName`, which ignores the
//! `generateName` prefix flag). Upstream defaults `roleRef.apiGroup` and the API group of User,
//! Group and ServiceAccount subjects before validating; absent values read as those defaults.
//! Roles validate their rules before the metadata update (the order upstream's `*Update`
//! functions use), and a binding's `roleRef` never changes.

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::gofmt::string_slice;
use super::json::{get, len_of, list, str_of};
use super::labels::{as_selector, validate_label_selector};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_valid_path_segment_name, name_is_dns_subdomain};
use super::path::{Path, invalid, invalid_raw, invalid_str, not_supported_str, required};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `ValidateRBACName`.
fn rbac_name(name: &str, _prefix: bool) -> Vec<String> {
    is_valid_path_segment_name(name)
}

/// Core's `ValidateObjectMeta` (with the standard-finalizer rule) under the RBAC name rule.
fn rbac_meta(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    validate_object_meta(obj, namespaced, rbac_name)
}

/// `ValidatePolicyRule`.
fn validate_policy_rule(rule: &Value, namespaced: bool, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if list(rule, "verbs").is_empty() {
        errs.push(required(
            &p.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = get(rule, "nonResourceURLs");
    if len_of(urls) > 0 {
        let up = p.child("nonResourceURLs");
        if namespaced {
            errs.push(invalid_raw(
                &up,
                string_slice(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|f| !list(rule, f).is_empty())
        {
            errs.push(invalid_raw(
                &up,
                string_slice(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if list(rule, "apiGroups").is_empty() {
        errs.push(required(
            &p.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if list(rule, "resources").is_empty() {
        errs.push(required(
            &p.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    list(obj, "rules")
        .iter()
        .enumerate()
        .flat_map(|(i, r)| validate_policy_rule(r, namespaced, &Path::new("rules").index(i)))
        .collect()
}

/// `ValidateRole`.
pub(crate) fn validate_role(obj: &Value) -> Vec<FieldError> {
    let mut errs = rbac_meta(obj, true);
    errs.extend(validate_rules(obj, true));
    errs
}

/// `ValidateRoleUpdate`: the role first, then its metadata update.
pub(crate) fn validate_role_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_role(&new);
    errs.extend(validate_object_meta_update(&new, old));
    errs
}

/// `ValidateClusterRole`. `allow_invalid_values` tolerates stored aggregation selectors with
/// invalid label values.
fn validate_cluster_role_with(obj: &Value, allow_invalid_values: bool) -> Vec<FieldError> {
    let mut errs = rbac_meta(obj, false);
    errs.extend(validate_rules(obj, false));
    let rule = get(obj, "aggregationRule");
    if !rule.is_null() {
        let p = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = list(rule, "clusterRoleSelectors");
        if selectors.is_empty() {
            errs.push(required(
                &p,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in selectors.iter().enumerate() {
            errs.extend(validate_label_selector(
                selector,
                allow_invalid_values,
                &p.index(i),
            ));
            if as_selector(selector).is_none() {
                // The failed conversion's nil selector.
                errs.push(invalid(
                    &p.index(i),
                    BadValue::Str("null".into()),
                    "invalid label selector.",
                ));
            }
        }
    }
    errs
}

pub(crate) fn validate_cluster_role(obj: &Value) -> Vec<FieldError> {
    validate_cluster_role_with(obj, false)
}

/// `ValidateClusterRoleUpdate`.
pub(crate) fn validate_cluster_role_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let allow_invalid = list(get(old, "aggregationRule"), "clusterRoleSelectors")
        .iter()
        .any(|s| !validate_label_selector(s, false, &Path::new("")).is_empty());
    let mut errs = validate_cluster_role_with(&new, allow_invalid);
    errs.extend(validate_object_meta_update(&new, old));
    errs
}

/// A role reference after `SetDefaults_RoleBinding`: `(apiGroup, kind, name)`.
fn role_ref(obj: &Value) -> (&str, &str, &str) {
    let r = get(obj, "roleRef");
    let group = match str_of(r, "apiGroup") {
        "" => RBAC_GROUP,
        g => g,
    };
    (group, str_of(r, "kind"), str_of(r, "name"))
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
fn validate_binding(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = rbac_meta(obj, namespaced);
    let rp = Path::new("roleRef");
    let (group, kind, name) = role_ref(obj);
    if group != RBAC_GROUP {
        errs.push(not_supported_str(
            &rp.child("apiGroup"),
            group,
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(not_supported_str(&rp.child("kind"), kind, kinds));
    }
    if name.is_empty() {
        errs.push(required(&rp.child("name"), ""));
    } else {
        errs.extend(
            rbac_name(name, false)
                .iter()
                .map(|m| invalid_str(&rp.child("name"), name, m)),
        );
    }
    for (i, subject) in list(obj, "subjects").iter().enumerate() {
        errs.extend(validate_subject(
            subject,
            namespaced,
            &Path::new("subjects").index(i),
        ));
    }
    errs
}

/// `ValidateRoleBindingSubject`, with the subject's API group defaulted by kind.
fn validate_subject(subject: &Value, namespaced: bool, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(subject, "name");
    if name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    }
    let kind = str_of(subject, "kind");
    let group = match (str_of(subject, "apiGroup"), kind) {
        ("", "User" | "Group") => RBAC_GROUP,
        (g, _) => g,
    };
    match kind {
        "ServiceAccount" => {
            if !name.is_empty() {
                errs.extend(
                    name_is_dns_subdomain(name, false)
                        .iter()
                        .map(|m| invalid_str(&p.child("name"), name, m)),
                );
            }
            if !group.is_empty() {
                errs.push(not_supported_str(&p.child("apiGroup"), group, &[""]));
            }
            if !namespaced && str_of(subject, "namespace").is_empty() {
                errs.push(required(&p.child("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errs.push(not_supported_str(
                    &p.child("apiGroup"),
                    group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(not_supported_str(
            &p.child("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

pub(crate) fn validate_role_binding(obj: &Value) -> Vec<FieldError> {
    validate_binding(obj, true)
}

pub(crate) fn validate_cluster_role_binding(obj: &Value) -> Vec<FieldError> {
    validate_binding(obj, false)
}

/// `ValidateRoleBindingUpdate` / `ValidateClusterRoleBindingUpdate`: the binding, its
/// metadata update, then `roleRef: Invalid value: rbac.RoleRef{…}: cannot change roleRef`.
pub(crate) fn validate_binding_update(
    new: &Value,
    old: &Value,
    namespaced: bool,
) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_binding(&new, namespaced);
    errs.extend(validate_object_meta_update(&new, old));
    let (group, kind, name) = role_ref(&new);
    if (group, kind, name) != role_ref(old) {
        errs.push(invalid_raw(
            &Path::new("roleRef"),
            format!(
                "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                go_quote(group),
                go_quote(kind),
                go_quote(name)
            ),
            "cannot change roleRef",
        ));
    }
    errs
}
