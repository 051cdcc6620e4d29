//! Container environment: upstream's `ValidateEnv`, `validateEnvVarValueFrom` (downward API
//! field and resource references, ConfigMap and Secret key references) and `ValidateEnvFrom`.
//! Variable names use the relaxed rule, on by default since 1.32.

use serde_json::Value;

use crate::field::FieldError;

use super::json::{get, str_of};
use super::name::{
    is_config_map_key, is_qualified_name, is_relaxed_env_var_name, name_is_dns_subdomain,
};
use super::path::{Path, invalid_str, not_supported_str, required};

/// Downward API field paths an env var may reference (sorted, as upstream lists them).
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Field labels `ConvertDownwardAPIFieldLabel` accepts for v1 pods.
const CONVERTIBLE_FIELD_LABELS: [&str; 15] = [
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
    "spec.host",
];

const ENV_RESOURCE_FIELDS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `ValidateEnv` with relaxed names (the 1.33 default).
pub(crate) fn validate_env(env: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in env.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(ev, "name");
        if name.is_empty() {
            errs.push(required(&p.child("name"), ""));
        } else {
            for msg in is_relaxed_env_var_name(name) {
                errs.push(invalid_str(&p.child("name"), name, &msg));
            }
        }
        errs.extend(validate_env_value_from(ev, &p.child("valueFrom")));
    }
    errs
}

/// `validateEnvVarValueFrom`.
fn validate_env_value_from(ev: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let from = get(ev, "valueFrom");
    if from.is_null() {
        return errs;
    }
    let mut sources = 0;
    if let Some(fr) = from.get("fieldRef").filter(|v| !v.is_null()) {
        sources += 1;
        errs.extend(validate_field_ref(fr, &path.child("fieldRef")));
    }
    if let Some(rr) = from.get("resourceFieldRef").filter(|v| !v.is_null()) {
        sources += 1;
        let p = path.child("resourceFieldRef");
        let resource = str_of(rr, "resource");
        if resource.is_empty() {
            errs.push(required(&p.child("resource"), ""));
        } else if !ENV_RESOURCE_FIELDS.contains(&resource)
            && !resource.starts_with("requests.hugepages-")
            && !resource.starts_with("limits.hugepages-")
        {
            errs.push(not_supported_str(
                &p.child("resource"),
                resource,
                &ENV_RESOURCE_FIELDS,
            ));
        }
    }
    for key in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(r) = from.get(key).filter(|v| !v.is_null()) {
            sources += 1;
            errs.extend(validate_key_selector(r, &path.child(key)));
        }
    }
    if sources == 0 {
        errs.push(invalid_str(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
    } else if !str_of(ev, "value").is_empty() {
        errs.push(invalid_str(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(invalid_str(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// `validateObjectFieldSelector` for env vars (apiVersion is defaulted to v1).
fn validate_field_ref(fr: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let field_path = str_of(fr, "fieldPath");
    if field_path.is_empty() {
        errs.push(required(&path.child("fieldPath"), ""));
        return errs;
    }
    let subscripted = field_path
        .strip_suffix("']")
        .and_then(|s| s.split_once("['"));
    match subscripted {
        Some((base, sub)) => match base {
            "metadata.annotations" => errs.extend(
                is_qualified_name(&sub.to_lowercase())
                    .iter()
                    .map(|m| invalid_str(path, &sub.to_lowercase(), m)),
            ),
            "metadata.labels" => {
                errs.extend(is_qualified_name(sub).iter().map(|m| invalid_str(path, sub, m)))
            }
            _ => errs.push(invalid_str(
                &path.child("fieldPath"),
                field_path,
                &format!("error converting fieldPath: field label does not support subscript: {field_path}"),
            )),
        },
        None if !CONVERTIBLE_FIELD_LABELS.contains(&field_path) => errs.push(invalid_str(
            &path.child("fieldPath"),
            field_path,
            &format!("error converting fieldPath: field label not supported: {field_path}"),
        )),
        None => {
            let internal = if field_path == "spec.host" { "spec.nodeName" } else { field_path };
            if !ENV_FIELD_PATHS.contains(&internal) {
                errs.push(not_supported_str(&path.child("fieldPath"), internal, &ENV_FIELD_PATHS));
            }
        }
    }
    errs
}

/// `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn validate_key_selector(r: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(r, "name");
    for msg in name_is_dns_subdomain(name, false) {
        errs.push(invalid_str(&path.child("name"), name, &msg));
    }
    let key = str_of(r, "key");
    if key.is_empty() {
        errs.push(required(&path.child("key"), ""));
    } else {
        for msg in is_config_map_key(key) {
            errs.push(invalid_str(&path.child("key"), key, &msg));
        }
    }
    errs
}

/// `ValidateEnvFrom`.
pub(crate) fn validate_env_from(env_from: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in env_from.iter().enumerate() {
        let p = path.index(i);
        let prefix = str_of(ev, "prefix");
        if !prefix.is_empty() {
            for msg in is_relaxed_env_var_name(prefix) {
                errs.push(invalid_str(&p.child("prefix"), prefix, &msg));
            }
        }
        let mut sources = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = ev.get(key).filter(|v| !v.is_null()) {
                sources += 1;
                let name = str_of(r, "name");
                let np = p.child(key).child("name");
                if name.is_empty() {
                    errs.push(required(&np, ""));
                } else {
                    for msg in name_is_dns_subdomain(name, true) {
                        errs.push(invalid_str(&np, name, &msg));
                    }
                }
            }
        }
        // Upstream reports these two at the list path, not the item.
        if sources == 0 {
            errs.push(invalid_str(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            errs.push(invalid_str(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}
