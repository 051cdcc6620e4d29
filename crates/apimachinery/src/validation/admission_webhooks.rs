//! Validating and mutating webhook configurations: upstream's
//! `ValidateValidatingWebhookConfiguration`, `ValidateMutatingWebhookConfiguration`, their
//! `*Update` variants, `validateValidatingWebhook`/`validateMutatingWebhook`,
//! `validateRuleWithOperations`, `validateResources` and `validateAdmissionReviewVersions` from
//! `pkg/apis/admissionregistration/validation`, and `ValidateWebhookURL`/`ValidateWebhookService`
//! from `k8s.io/apiserver/pkg/util/webhook` (also used by CRD conversion webhooks).
//!
//! Upstream calls `ValidateWebhookService(path, name, namespace, …)` against a signature that
//! takes `(namespace, name)`, so a missing service *name* is reported at `…service.namespace`
//! and vice versa; this is reproduced. Defaults (`failurePolicy: Fail`,
//! `matchPolicy: Equivalent`, `timeoutSeconds: 10`, `reinvocationPolicy: Never`, rule scope
//! `*`, service port 443) apply to absent fields. CEL match conditions are not checked.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::gofmt::string_slice;
use super::json::{get, int_of, list, opt_str, str_of};
use super::labels::validate_label_selector;
use super::meta::{
    prepare_update, validate_object_meta_generic, validate_object_meta_update_generic,
};
use super::name::{
    is_dns1035_label, is_dns1123_subdomain, is_valid_port_num, name_is_dns_subdomain,
};
use super::netnames::is_fully_qualified_name;
use super::path::{
    Path, duplicate, invalid, invalid_int, invalid_raw, invalid_str, not_supported_str, required,
};

const URL_FORM: &str = "; desired format: https://host[/path]";
const OPERATIONS: [&str; 5] = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const NO_SIDE_EFFECTS: [&str; 2] = ["None", "NoneOnDryRun"];
const ALL_SIDE_EFFECTS: [&str; 4] = ["None", "NoneOnDryRun", "Some", "Unknown"];

/// What an update may keep from the stored configuration (upstream's `validationOptions`).
struct Options {
    require_no_side_effects: bool,
    require_recognized_review_version: bool,
    require_unique_names: bool,
    allow_invalid_label_values: bool,
}

const CREATE: Options = Options {
    require_no_side_effects: true,
    require_recognized_review_version: true,
    require_unique_names: true,
    allow_invalid_label_values: false,
};

fn is_accepted_review_version(v: &str) -> bool {
    matches!(v, "v1" | "v1beta1")
}

/// Validating (`mutating == false`) or mutating configuration, create or update options.
fn validate_configuration(obj: &Value, mutating: bool, opts: &Options) -> Vec<FieldError> {
    let mut errs = validate_object_meta_generic(obj, Some(false), name_is_dns_subdomain);
    let mut names = BTreeSet::new();
    for (i, hook) in list(obj, "webhooks").iter().enumerate() {
        let p = Path::new("webhooks").index(i);
        errs.extend(validate_webhook(hook, mutating, opts, &p));
        errs.extend(review_versions(
            get(hook, "admissionReviewVersions"),
            opts.require_recognized_review_version,
            &p.child("admissionReviewVersions"),
        ));
        let name = str_of(hook, "name");
        if opts.require_unique_names && !name.is_empty() && !names.insert(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
        }
    }
    errs
}

pub(crate) fn validate_webhook_configuration(obj: &Value, mutating: bool) -> Vec<FieldError> {
    validate_configuration(obj, mutating, &CREATE)
}

/// Update: the registry's metadata checks, then the configuration with options relaxed for
/// problems the stored object already had.
pub(crate) fn validate_webhook_configuration_update(
    new: &Value,
    old: &Value,
    mutating: bool,
) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let hooks = list(old, "webhooks");
    let mut seen = BTreeSet::new();
    let opts = Options {
        require_no_side_effects: hooks
            .iter()
            .all(|h| opt_str(h, "sideEffects").is_some_and(|s| NO_SIDE_EFFECTS.contains(&s))),
        require_recognized_review_version: hooks.iter().all(|h| {
            let versions = list(h, "admissionReviewVersions");
            versions.is_empty()
                || versions
                    .iter()
                    .any(|v| is_accepted_review_version(v.as_str().unwrap_or("")))
        }),
        require_unique_names: hooks.iter().all(|h| seen.insert(str_of(h, "name"))),
        allow_invalid_label_values: hooks.iter().any(|h| {
            ["namespaceSelector", "objectSelector"]
                .iter()
                .any(|s| !validate_label_selector(get(h, s), false, &Path::new("")).is_empty())
        }),
    };
    let mut errs = validate_object_meta_update_generic(&new, old);
    errs.extend(validate_configuration(&new, mutating, &opts));
    errs
}

/// `validateValidatingWebhook` / `validateMutatingWebhook`.
fn validate_webhook(hook: &Value, mutating: bool, opts: &Options, p: &Path) -> Vec<FieldError> {
    let mut errs = is_fully_qualified_name(&p.child("name"), str_of(hook, "name"));
    for (i, rule) in list(hook, "rules").iter().enumerate() {
        errs.extend(validate_rule(rule, &p.child("rules").index(i)));
    }
    let enums: [(&str, &str, &[&str]); 2] = [
        ("failurePolicy", "Fail", &["Fail", "Ignore"]),
        ("matchPolicy", "Equivalent", &["Equivalent", "Exact"]),
    ];
    for (field, default, allowed) in enums {
        let value = opt_str(hook, field).unwrap_or(default);
        if !allowed.contains(&value) {
            errs.push(not_supported_str(&p.child(field), value, allowed));
        }
    }
    let allowed_side_effects: &[&str] = if opts.require_no_side_effects {
        &NO_SIDE_EFFECTS
    } else {
        &ALL_SIDE_EFFECTS
    };
    match opt_str(hook, "sideEffects") {
        None => errs.push(required(
            &p.child("sideEffects"),
            &format!("must specify one of {}", allowed_side_effects.join(", ")),
        )),
        Some(s) if !allowed_side_effects.contains(&s) => {
            errs.push(not_supported_str(
                &p.child("sideEffects"),
                s,
                allowed_side_effects,
            ));
        }
        Some(_) => {}
    }
    let timeout = int_of(hook, "timeoutSeconds").unwrap_or(10);
    if !(1..=30).contains(&timeout) {
        errs.push(invalid_int(
            &p.child("timeoutSeconds"),
            timeout,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    for selector in ["namespaceSelector", "objectSelector"] {
        errs.extend(validate_label_selector(
            get(hook, selector),
            opts.allow_invalid_label_values,
            &p.child(selector),
        ));
    }
    if mutating {
        let policy = opt_str(hook, "reinvocationPolicy").unwrap_or("Never");
        if !matches!(policy, "IfNeeded" | "Never") {
            errs.push(not_supported_str(
                &p.child("reinvocationPolicy"),
                policy,
                &["IfNeeded", "Never"],
            ));
        }
    }
    let cc = get(hook, "clientConfig");
    let cp = p.child("clientConfig");
    match (opt_str(cc, "url"), get(cc, "service")) {
        (Some(url), Value::Null) => errs.extend(validate_webhook_url(&cp.child("url"), url)),
        (None, service) if !service.is_null() => {
            errs.extend(validate_webhook_service(&cp.child("service"), service));
        }
        _ => errs.push(required(&cp, "exactly one of url or service is required")),
    }
    errs
}

fn has_wildcard(items: &[Value]) -> bool {
    items.iter().any(|v| v.as_str() == Some("*"))
}

/// `validateRuleWithOperations` and `validateRule` (subresources allowed).
fn validate_rule(rule: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ops = list(rule, "operations");
    let op = p.child("operations");
    if ops.is_empty() {
        errs.push(required(&op, ""));
    }
    if ops.len() > 1 && has_wildcard(ops) {
        let rendered: Vec<String> = ops
            .iter()
            .map(|o| go_quote(o.as_str().unwrap_or("")))
            .collect();
        errs.push(invalid_raw(
            &op,
            format!(
                "[]admissionregistration.OperationType{{{}}}",
                rendered.join(", ")
            ),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, o) in ops.iter().enumerate() {
        let o = o.as_str().unwrap_or("");
        if !OPERATIONS.contains(&o) {
            errs.push(not_supported_str(&op.index(i), o, &OPERATIONS));
        }
    }
    for (field, what) in [("apiGroups", "API groups"), ("apiVersions", "API versions")] {
        let items = list(rule, field);
        let fp = p.child(field);
        if items.is_empty() {
            errs.push(required(&fp, ""));
        }
        if items.len() > 1 && has_wildcard(items) {
            errs.push(invalid_raw(
                &fp,
                string_slice(get(rule, field)),
                &format!("if '*' is present, must not specify other {what}"),
            ));
        }
    }
    for (i, v) in list(rule, "apiVersions").iter().enumerate() {
        if v.as_str().unwrap_or("").is_empty() {
            errs.push(required(&p.child("apiVersions").index(i), ""));
        }
    }
    errs.extend(validate_resources(
        get(rule, "resources"),
        &p.child("resources"),
    ));
    let scope = opt_str(rule, "scope").unwrap_or("*");
    if !matches!(scope, "*" | "Cluster" | "Namespaced") {
        errs.push(not_supported_str(
            &p.child("scope"),
            scope,
            &["*", "Cluster", "Namespaced"],
        ));
    }
    errs
}

/// `validateResources`: `resource/subresource` wildcards may not overlap.
fn validate_resources(resources: &Value, p: &Path) -> Vec<FieldError> {
    let items = resources.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut errs = Vec::new();
    if items.is_empty() {
        errs.push(required(p, ""));
    }
    let mut with_wildcard_sub = BTreeSet::new();
    let mut sub_with_wildcard_res = BTreeSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, item) in items.iter().enumerate() {
        let r = item.as_str().unwrap_or("");
        if r.is_empty() {
            errs.push(required(&p.index(i), ""));
            continue;
        }
        double |= r == "*/*";
        single |= r == "*";
        let Some((res, sub)) = r.split_once('/') else {
            plain = r != "*";
            continue;
        };
        if with_wildcard_sub.contains(res) {
            errs.push(invalid_str(
                &p.index(i),
                r,
                &format!("if '{res}/*' is present, must not specify {r}"),
            ));
        }
        if sub_with_wildcard_res.contains(sub) {
            errs.push(invalid_str(
                &p.index(i),
                r,
                &format!("if '*/{sub}' is present, must not specify {r}"),
            ));
        }
        if sub == "*" {
            with_wildcard_sub.insert(res);
        }
        if res == "*" {
            sub_with_wildcard_res.insert(sub);
        }
    }
    if items.len() > 1 && double {
        errs.push(invalid_raw(
            p,
            string_slice(resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        errs.push(invalid_raw(
            p,
            string_slice(resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

/// `validateAdmissionReviewVersions`.
fn review_versions(versions: &Value, require_recognized: bool, p: &Path) -> Vec<FieldError> {
    let items = versions.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return vec![required(p, "must specify one of v1, v1beta1")];
    }
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    let mut accepted = false;
    for (i, v) in items.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        if !seen.insert(v) {
            errs.push(invalid_str(&p.index(i), v, "duplicate version"));
            continue;
        }
        errs.extend(
            is_dns1035_label(v)
                .iter()
                .map(|m| invalid_str(&p.index(i), v, m)),
        );
        accepted |= is_accepted_review_version(v);
    }
    if require_recognized && !accepted {
        errs.push(invalid_raw(
            p,
            string_slice(versions),
            "must include at least one of v1, v1beta1",
        ));
    }
    errs
}

/// The parts of Go's `url.Parse` the checks need: `(scheme, user, host, query, fragment)`,
/// or the parse error text.
fn parse_url(raw: &str) -> Result<(String, Option<String>, String, String, String), String> {
    if raw.chars().any(|c| c.is_control()) {
        return Err(format!(
            "parse {}: net/url: invalid control character in URL",
            go_quote(raw)
        ));
    }
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let scheme_end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)));
    let (scheme, rest) = match scheme_end {
        Some(0) if rest.starts_with(':') => {
            return Err(format!("parse {}: missing protocol scheme", go_quote(raw)));
        }
        Some(i) if rest[i..].starts_with(':') && rest.as_bytes()[0].is_ascii_alphabetic() => {
            (rest[..i].to_lowercase(), &rest[i + 1..])
        }
        _ => (String::new(), rest),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (mut user, mut host) = (None, String::new());
    if let Some(authority) = rest.strip_prefix("//") {
        let authority = authority.split('/').next().unwrap_or("");
        match authority.rsplit_once('@') {
            Some((u, h)) => {
                user = Some(u.to_string());
                host = h.to_string();
            }
            None => host = authority.to_string(),
        }
    }
    Ok((scheme, user, host, query.to_string(), fragment.to_string()))
}

/// `ValidateWebhookURL` with https required.
pub(crate) fn validate_webhook_url(p: &Path, url: &str) -> Vec<FieldError> {
    let (scheme, user, host, query, fragment) = match parse_url(url) {
        Ok(parts) => parts,
        Err(e) => {
            return vec![required(
                p,
                &format!("url must be a valid URL: {e}{URL_FORM}"),
            )];
        }
    };
    let mut errs = Vec::new();
    if scheme != "https" {
        errs.push(invalid_str(
            p,
            &scheme,
            &format!("'https' is the only allowed URL scheme{URL_FORM}"),
        ));
    }
    if host.is_empty() {
        errs.push(invalid_str(
            p,
            &host,
            &format!("host must be specified{URL_FORM}"),
        ));
    }
    if let Some(user) = user {
        errs.push(invalid_str(
            p,
            &user,
            "user information is not permitted in the URL",
        ));
    }
    if !fragment.is_empty() {
        errs.push(invalid_str(
            p,
            &fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !query.is_empty() {
        errs.push(invalid_str(
            p,
            &query,
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

/// `ValidateWebhookService` as upstream calls it: with name and namespace swapped.
pub(crate) fn validate_webhook_service(p: &Path, service: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if str_of(service, "namespace").is_empty() {
        errs.push(required(&p.child("name"), ""));
    }
    if str_of(service, "name").is_empty() {
        errs.push(required(&p.child("namespace"), ""));
    }
    let port = int_of(service, "port").unwrap_or(443);
    let msgs = is_valid_port_num(port);
    if !msgs.is_empty() {
        errs.push(invalid(
            &p.child("port"),
            BadValue::Raw(port.to_string()),
            &format!("port is not valid: {}", msgs.join(", ")),
        ));
    }
    let Some(path) = opt_str(service, "path") else {
        return errs;
    };
    let pp = p.child("path");
    if path.is_empty() || path == "/" {
        return errs;
    }
    if path == "//" {
        errs.push(invalid_str(&pp, path, "segment[0] may not be empty"));
        return errs;
    }
    if !path.starts_with('/') {
        errs.push(invalid_str(&pp, path, "must start with a '/'"));
    }
    let trimmed = path.get(1..).unwrap_or("");
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    for (i, step) in trimmed.split('/').enumerate() {
        if step.is_empty() {
            errs.push(invalid_str(
                &pp,
                path,
                &format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for m in is_dns1123_subdomain(step) {
            errs.push(invalid_str(&pp, path, &format!("segment[{i}]: {m}")));
        }
    }
    errs
}
