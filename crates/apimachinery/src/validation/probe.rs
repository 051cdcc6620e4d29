//! Probes and lifecycle hooks: upstream's `validateProbe`, `validateLivenessProbe` and
//! friends, `validateLifecycle` and `validateHandler`, with `SetDefaults_Probe` applied to
//! zero values.

use serde_json::Value;

use crate::field::FieldError;

use super::container::PodContext;
use super::json::{get, int_of, list, str_of, str_or};
use super::name::{is_valid_port_name, is_valid_port_num};
use super::path::{
    Path, forbidden, invalid_int, invalid_str, nonnegative, not_supported_str, required,
};

pub(crate) fn validate_probe_kind(
    c: &Value,
    kind: &str,
    ctx: &PodContext,
    p: &Path,
) -> Vec<FieldError> {
    let probe = get(c, kind);
    if probe.is_null() {
        return Vec::new();
    }
    let path = p.child(kind);
    let mut errs = validate_probe(probe, ctx, &path);
    if kind != "readinessProbe" {
        let success = int_of(probe, "successThreshold")
            .filter(|s| *s != 0)
            .unwrap_or(1);
        if success != 1 {
            errs.push(invalid_int(
                &path.child("successThreshold"),
                success,
                "must be 1",
            ));
        }
    } else if let Some(tg) = int_of(probe, "terminationGracePeriodSeconds") {
        errs.push(invalid_int(
            &path.child("terminationGracePeriodSeconds"),
            tg,
            "must not be set for readinessProbes",
        ));
    }
    errs
}

/// `validateProbe` with `SetDefaults_Probe` applied to zero values.
fn validate_probe(probe: &Value, ctx: &PodContext, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_handler(probe, false, ctx, path);
    let field =
        |name: &str, default: i64| int_of(probe, name).filter(|v| *v != 0).unwrap_or(default);
    for (name, default) in [
        ("initialDelaySeconds", 0),
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        errs.extend(nonnegative(field(name, default), &path.child(name)));
    }
    if let Some(tg) = int_of(probe, "terminationGracePeriodSeconds").filter(|t| *t <= 0) {
        errs.push(invalid_int(
            &path.child("terminationGracePeriodSeconds"),
            tg,
            "must be greater than 0",
        ));
    }
    errs
}

pub(crate) fn validate_lifecycle(lc: &Value, ctx: &PodContext, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for hook in ["postStart", "preStop"] {
        let h = get(lc, hook);
        if !h.is_null() {
            errs.extend(validate_handler(h, true, ctx, &path.child(hook)));
        }
    }
    errs
}

/// `validateHandler`: exactly one of exec/httpGet/tcpSocket/grpc (probes) or
/// exec/httpGet/tcpSocket/sleep (lifecycle hooks).
fn validate_handler(h: &Value, lifecycle: bool, ctx: &PodContext, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    let mut count = 0;
    for kind in kinds {
        let v = get(h, kind);
        if v.is_null() {
            continue;
        }
        let p = path.child(kind);
        if count > 0 {
            errs.push(forbidden(&p, "may not specify more than 1 handler type"));
            continue;
        }
        count += 1;
        match *kind {
            "exec" if list(v, "command").is_empty() => errs.push(required(&p.child("command"), "")),
            "httpGet" => {
                errs.extend(validate_port_num_or_name(get(v, "port"), &p.child("port")));
                let scheme = str_or(v, "scheme", "HTTP");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(not_supported_str(
                        &p.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for header in list(v, "httpHeaders") {
                    let name = str_of(header, "name");
                    if name.is_empty()
                        || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    {
                        errs.push(invalid_str(&p.child("httpHeaders"), name, "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"));
                    }
                }
            }
            "tcpSocket" | "grpc" => {
                errs.extend(validate_port_num_or_name(get(v, "port"), &p.child("port")))
            }
            "sleep" => {
                let seconds = int_of(v, "seconds").unwrap_or(0);
                if seconds < 0 || seconds > ctx.grace_period {
                    errs.push(invalid_int(
                        &p,
                        seconds,
                        &format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({})",
                            ctx.grace_period
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName` for an `IntOrString` port.
pub(crate) fn validate_port_num_or_name(port: &Value, path: &Path) -> Vec<FieldError> {
    match port {
        Value::String(name) => is_valid_port_name(name)
            .iter()
            .map(|m| invalid_str(path, name, m))
            .collect(),
        other => {
            let n = other.as_i64().unwrap_or(0);
            is_valid_port_num(n)
                .iter()
                .map(|m| invalid_int(path, n, m))
                .collect()
        }
    }
}
