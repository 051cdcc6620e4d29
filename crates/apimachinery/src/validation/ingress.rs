//! Ingresses and IngressClasses: upstream's `ValidateIngressCreate`, `ValidateIngressUpdate`,
//! `ValidateIngressSpec` (rules, HTTP paths, backends, TLS), `ValidateIngressClass` and
//! `ValidateIngressClassUpdate` from `pkg/apis/networking/validation`, as of 1.33 (backend
//! service names are DNS-1035 labels; the relaxed rule came later).

use serde_json::Value;

use crate::field::FieldError;

use super::json::{get, int_of, list, opt_str, str_of};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{
    is_dns1123_subdomain, is_valid_path_segment_name, is_valid_port_name, is_valid_port_num,
    name_is_dns_label, name_is_dns_subdomain, name_is_dns1035_label,
};
use super::netnames::{is_domain_prefixed_path, is_wildcard_dns1123_subdomain, parse_ip_sloppy};
use super::path::{
    FIELD_IMMUTABLE, Path, forbidden, invalid_int, invalid_raw, invalid_str, not_supported_str,
    required, too_long,
};

const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
const MAX_CONTROLLER_LEN: usize = 250;
const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];

/// Options upstream derives from the stored object so that old, now-invalid data can still
/// be updated (`IngressValidationOptions`).
#[derive(Clone, Copy, Default)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

fn msgs_at(path: &Path, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.iter().map(|m| invalid_str(path, value, m)).collect()
}

/// `ValidateIngressCreate`.
pub(crate) fn validate_ingress(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_ingress_with(obj, Options::default());
    let annotations = get(get(obj, "metadata"), "annotations");
    if let (Some(annotation), Some(class)) = (
        opt_str(annotations, INGRESS_CLASS_ANNOTATION),
        opt_str(get(obj, "spec"), "ingressClassName"),
    ) && annotation != class
    {
        // Upstream builds this path with `Child`, hence the dot.
        errs.push(invalid_str(
            &Path::new("annotations").child(INGRESS_CLASS_ANNOTATION),
            annotation,
            "must match `ingressClassName` when both are specified",
        ));
    }
    errs
}

/// `ValidateIngressUpdate`.
pub(crate) fn validate_ingress_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let old_spec = get(old, "spec");
    let opts = Options {
        allow_invalid_secret_name: list(old_spec, "tls")
            .iter()
            .any(|t| !tls_secret_name_errors(str_of(t, "secretName")).is_empty()),
        allow_invalid_wildcard_host_rule: list(old_spec, "rules").iter().any(|r| {
            str_of(r, "host").contains('*') && !validate_rule_value(r, &Path::new("")).is_empty()
        }),
    };
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_ingress_with(&new, opts));
    errs
}

fn validate_ingress_with(obj: &Value, opts: Options) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    let spec = get(obj, "spec");
    let p = Path::new("spec");
    let rules = list(spec, "rules");
    let default_backend = get(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_null() {
        let value = if get(spec, "rules").is_array() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(invalid_raw(
            &p,
            value.to_string(),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if !default_backend.is_null() {
        errs.extend(validate_backend(
            default_backend,
            &p.child("defaultBackend"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        errs.extend(validate_rule(rule, &p.child("rules").index(i), opts));
    }
    for (i, tls) in list(spec, "tls").iter().enumerate() {
        let tp = p.child("tls").index(i);
        for (j, host) in list(tls, "hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(msgs_at(&tp.child("hosts").index(j), host, msgs));
        }
        if !opts.allow_invalid_secret_name {
            let secret = str_of(tls, "secretName");
            errs.extend(msgs_at(
                &tp.child("secretName"),
                secret,
                tls_secret_name_errors(secret),
            ));
        }
    }
    if let Some(class) = opt_str(spec, "ingressClassName") {
        errs.extend(msgs_at(
            &p.child("ingressClassName"),
            class,
            name_is_dns_subdomain(class, false),
        ));
    }
    errs
}

fn tls_secret_name_errors(name: &str) -> Vec<String> {
    if name.is_empty() {
        Vec::new()
    } else {
        name_is_dns_subdomain(name, false)
    }
}

/// One entry of `validateIngressRules`.
fn validate_rule(rule: &Value, p: &Path, opts: Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let host = str_of(rule, "host");
    let mut wildcard = false;
    if !host.is_empty() {
        let hp = p.child("host");
        if parse_ip_sloppy(host).is_some() {
            errs.push(invalid_str(
                &hp,
                host,
                "must be a DNS name, not an IP address",
            ));
        }
        if host.contains('*') {
            errs.extend(msgs_at(&hp, host, is_wildcard_dns1123_subdomain(host)));
            wildcard = true;
        } else {
            errs.extend(msgs_at(&hp, host, is_dns1123_subdomain(host)));
        }
    }
    if !wildcard || !opts.allow_invalid_wildcard_host_rule {
        errs.extend(validate_rule_value(rule, p));
    }
    errs
}

/// `validateIngressRuleValue` and `validateHTTPIngressRuleValue`.
fn validate_rule_value(rule: &Value, p: &Path) -> Vec<FieldError> {
    let http = get(rule, "http");
    if http.is_null() {
        return Vec::new();
    }
    let hp = p.child("http");
    let mut errs = Vec::new();
    let paths = list(http, "paths");
    if paths.is_empty() {
        errs.push(required(&hp.child("paths"), ""));
    }
    for (i, path) in paths.iter().enumerate() {
        errs.extend(validate_http_path(path, &hp.child("paths").index(i)));
    }
    errs
}

/// `validateHTTPIngressPath`.
fn validate_http_path(path: &Value, p: &Path) -> Vec<FieldError> {
    let Some(path_type) = opt_str(path, "pathType") else {
        return vec![required(&p.child("pathType"), "pathType must be specified")];
    };
    let mut errs = Vec::new();
    let value = str_of(path, "path");
    let pp = p.child("path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(invalid_str(&pp, value, "must be an absolute path"));
            }
            if !value.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if value.contains(seq) {
                        errs.push(invalid_str(
                            &pp,
                            value,
                            &format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(invalid_str(
                            &pp,
                            value,
                            &format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(invalid_str(&pp, value, "must be an absolute path"));
            }
        }
        other => errs.push(not_supported_str(
            &p.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    errs.extend(validate_backend(get(path, "backend"), &p.child("backend")));
    errs
}

/// `validateIngressBackend`.
fn validate_backend(backend: &Value, p: &Path) -> Vec<FieldError> {
    let resource = get(backend, "resource");
    let service = get(backend, "service");
    match (resource.is_null(), service.is_null()) {
        (false, false) => vec![invalid_str(
            p,
            "",
            "cannot set both resource and service backends",
        )],
        (false, true) => validate_typed_local_object_reference(resource, &p.child("resource")),
        (true, false) => {
            let mut errs = Vec::new();
            let sp = p.child("service");
            let name = str_of(service, "name");
            if name.is_empty() {
                errs.push(required(&sp.child("name"), ""));
            } else {
                errs.extend(msgs_at(
                    &sp.child("name"),
                    name,
                    name_is_dns1035_label(name, false),
                ));
            }
            let port = get(service, "port");
            let port_name = str_of(port, "name");
            let number = int_of(port, "number").unwrap_or(0);
            match (port_name.is_empty(), number == 0) {
                (false, false) => errs.push(invalid_str(
                    p,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => errs.extend(msgs_at(
                    &sp.child("port").child("name"),
                    port_name,
                    is_valid_port_name(port_name),
                )),
                (true, false) => errs.extend(
                    is_valid_port_num(number)
                        .iter()
                        .map(|m| invalid_int(&sp.child("port").child("number"), number, m)),
                ),
                (true, true) => errs.push(required(p, "port name or number is required")),
            }
            errs
        }
        (true, true) => vec![invalid_str(
            p,
            "",
            "resource or service backend is required",
        )],
    }
}

/// `validateIngressTypedLocalObjectReference`.
fn validate_typed_local_object_reference(r: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(group) = opt_str(r, "apiGroup") {
        errs.extend(msgs_at(
            &p.child("apiGroup"),
            group,
            is_dns1123_subdomain(group),
        ));
    }
    for field in ["kind", "name"] {
        let value = str_of(r, field);
        if value.is_empty() {
            errs.push(required(&p.child(field), ""));
        } else {
            errs.extend(msgs_at(
                &p.child(field),
                value,
                is_valid_path_segment_name(value),
            ));
        }
    }
    errs
}

/// `ValidateIngressClass`.
pub(crate) fn validate_ingress_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_subdomain);
    let spec = get(obj, "spec");
    let p = Path::new("spec");
    let controller = str_of(spec, "controller");
    let cp = p.child("controller");
    if controller.is_empty() {
        errs.push(required(&cp, ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(too_long(&cp, MAX_CONTROLLER_LEN));
        }
        errs.extend(is_domain_prefixed_path(&cp, controller));
    }
    let params = get(spec, "parameters");
    if !params.is_null() {
        errs.extend(validate_parameters_reference(
            params,
            &p.child("parameters"),
        ));
    }
    errs
}

/// `validateIngressClassParametersReference`; `scope` is defaulted to `Cluster`.
fn validate_parameters_reference(params: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_typed_local_object_reference(params, p);
    let scope = opt_str(params, "scope").unwrap_or("Cluster");
    let namespace = opt_str(params, "namespace");
    match scope {
        "Namespace" => match namespace {
            None => errs.push(required(
                &p.child("namespace"),
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(ns) => errs.extend(msgs_at(
                &p.child("namespace"),
                ns,
                name_is_dns_label(ns, false),
            )),
        },
        "Cluster" => {
            if namespace.is_some() {
                errs.push(forbidden(
                    &p.child("namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        other => errs.push(not_supported_str(
            &p.child("scope"),
            other,
            &["Cluster", "Namespace"],
        )),
    }
    errs
}

/// `ValidateIngressClassUpdate`: the controller is immutable.
pub(crate) fn validate_ingress_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    let controller = str_of(get(&new, "spec"), "controller");
    if controller != str_of(get(old, "spec"), "controller") {
        errs.push(invalid_str(
            &Path::new("spec").child("controller"),
            controller,
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(validate_ingress_class(&new));
    errs
}
