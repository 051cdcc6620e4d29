//! Core kinds other than pods and services: Namespace, ConfigMap, Secret, ServiceAccount,
//! PersistentVolumeClaim and ReplicationController (upstream's `ValidateNamespace`,
//! `ValidateConfigMap`, `ValidateSecret`, `ValidatePersistentVolumeClaimSpec`,
//! `ValidateReplicationControllerSpec` and their `*Update` variants).

use serde_json::Value;

use crate::field::FieldError;

use super::gofmt::string_map;
use super::json::{
    bool_of, entries, get, int_of, len_of, list, opt_str, semantic_eq, str_of, str_or,
};
use super::labels::{Selector, as_selector, validate_label_selector};
use super::meta::{
    prepare_update, validate_finalizer_name, validate_object_meta, validate_object_meta_update,
};
use super::name::{is_config_map_key, name_is_dns_label, name_is_dns_subdomain};
use super::path::{
    FIELD_IMMUTABLE, Path, forbidden, invalid_raw, invalid_str, nonnegative, not_supported_str,
    required, too_long,
};
use super::pod::{restart_policy, validate_pod_template_spec};
use super::quantity::Quantity;

/// Upstream's `MaxSecretSize`, which also bounds ConfigMaps.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// `ValidateNamespace`.
pub(crate) fn validate_namespace(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_label);
    let path = Path::new("spec").child("finalizers");
    for f in list(get(obj, "spec"), "finalizers") {
        errs.extend(validate_finalizer_name(f.as_str().unwrap_or(""), &path));
    }
    errs
}

/// `ValidateNamespaceUpdate`: metadata only (spec and status have their own subresources).
pub(crate) fn validate_namespace_update(new: &Value, old: &Value) -> Vec<FieldError> {
    validate_object_meta_update(&prepare_update(new, old), old)
}

/// Decoded length of a base64 string (ConfigMap `binaryData` and Secret `data` travel
/// base64-encoded in JSON; limits apply to the bytes).
fn decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|b| *b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

/// `ValidateConfigMap`.
pub(crate) fn validate_config_map(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    let binary = get(obj, "binaryData");
    let mut total = 0usize;
    for (key, value) in entries(obj, "data") {
        let p = Path::new("data").key(key);
        errs.extend(
            is_config_map_key(key)
                .iter()
                .map(|m| invalid_str(&p, key, m)),
        );
        if !get(binary, key).is_null() {
            errs.push(invalid_str(
                &p,
                key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.as_str().map_or(0, str::len);
    }
    for (key, value) in entries(obj, "binaryData") {
        let p = Path::new("binaryData").key(key);
        errs.extend(
            is_config_map_key(key)
                .iter()
                .map(|m| invalid_str(&p, key, m)),
        );
        total += decoded_len(value.as_str().unwrap_or(""));
    }
    if total > MAX_SECRET_SIZE {
        // Upstream reports this at the empty path: the whole object.
        errs.push(too_long(&Path::new(""), MAX_SECRET_SIZE));
    }
    errs
}

/// The `immutable` rules shared by ConfigMaps and Secrets.
fn validate_immutable_data(new: &Value, old: &Value, fields: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if bool_of(old, "immutable") == Some(true) {
        let msg = "field is immutable when `immutable` is set";
        if bool_of(new, "immutable") != Some(true) {
            errs.push(forbidden(&Path::new("immutable"), msg));
        }
        for f in fields {
            if !semantic_eq(get(new, f), get(old, f)) {
                errs.push(forbidden(&Path::new(f), msg));
            }
        }
    }
    errs
}

/// `ValidateConfigMapUpdate`.
pub(crate) fn validate_config_map_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_immutable_data(&new, old, &["data", "binaryData"]));
    errs.extend(validate_config_map(&new));
    errs
}

/// Secret data after conversion: `stringData` entries override `data` (upstream converts them
/// before validating). Values are byte lengths.
fn secret_data(obj: &Value) -> Vec<(String, usize)> {
    let mut data: std::collections::BTreeMap<String, usize> = entries(obj, "data")
        .into_iter()
        .map(|(k, v)| (k.to_string(), decoded_len(v.as_str().unwrap_or(""))))
        .collect();
    for (k, v) in entries(obj, "stringData") {
        data.insert(k.to_string(), v.as_str().map_or(0, str::len));
    }
    data.into_iter().collect()
}

/// Decodes standard base64 (the JSON form of `[]byte`).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let n = chunk.len().saturating_sub(1);
        out.extend(acc.to_be_bytes()[1..1 + n].iter());
    }
    Some(out)
}

/// The bytes of a secret key, whether given in `data` or `stringData`.
fn secret_value(obj: &Value, key: &str) -> Option<Vec<u8>> {
    if let Some(s) = opt_str(get(obj, "stringData"), key) {
        return Some(s.as_bytes().to_vec());
    }
    opt_str(get(obj, "data"), key).map(|s| decode_base64(s).unwrap_or_default())
}

/// What Go's `json.Unmarshal` into a map says about bad docker config content.
fn json_object_error(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start();
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => return None,
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(_) if trimmed.is_empty() => Some("unexpected end of JSON input".to_string()),
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".to_string()),
        Err(_) => {
            let c = trimmed.chars().next().unwrap_or(' ');
            Some(format!(
                "invalid character '{c}' looking for beginning of value"
            ))
        }
    }
}

/// `ValidateSecret`.
pub(crate) fn validate_secret(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    let data_path = Path::new("data");
    let data = secret_data(obj);
    for (key, _) in &data {
        errs.extend(
            is_config_map_key(key)
                .iter()
                .map(|m| invalid_str(&data_path.key(key), key, m)),
        );
    }
    if data.iter().map(|(_, n)| n).sum::<usize>() > MAX_SECRET_SIZE {
        errs.push(too_long(&data_path, MAX_SECRET_SIZE));
    }
    let has = |k: &str| data.iter().any(|(key, _)| key == k);
    match str_of(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let annotations = get(get(obj, "metadata"), "annotations");
            if str_of(annotations, "kubernetes.io/service-account.name").is_empty() {
                let p = Path::new("metadata")
                    .child("annotations")
                    .key("kubernetes.io/service-account.name");
                errs.push(required(&p, ""));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match secret_value(obj, key) {
                None => errs.push(required(&data_path.key(key), "")),
                Some(bytes) => {
                    if let Some(msg) = json_object_error(&bytes) {
                        errs.push(invalid_str(
                            &data_path.key(key),
                            "<secret contents redacted>",
                            &msg,
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required(&data_path.key("username"), ""));
            errs.push(required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth"
            if secret_value(obj, "ssh-privatekey").is_none_or(|v| v.is_empty()) =>
        {
            errs.push(required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(required(&data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateSecretUpdate` (the type defaults to Opaque).
pub(crate) fn validate_secret_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    let (nt, ot) = (
        str_or(&new, "type", "Opaque"),
        str_or(old, "type", "Opaque"),
    );
    if nt != ot {
        errs.push(invalid_str(&Path::new("type"), nt, FIELD_IMMUTABLE));
    }
    errs.extend(validate_immutable_data(&new, old, &["data"]));
    errs.extend(validate_secret(&new));
    errs
}

/// `ValidateServiceAccount`.
pub(crate) fn validate_service_account(obj: &Value) -> Vec<FieldError> {
    validate_object_meta(obj, true, name_is_dns_subdomain)
}

pub(crate) fn validate_service_account_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_service_account(&new));
    errs
}

/// `ValidatePersistentVolumeClaim`: access modes, selector, storage request, class and mode.
pub(crate) fn validate_persistent_volume_claim(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    let spec = get(obj, "spec");
    let p = Path::new("spec");
    let modes = list(spec, "accessModes");
    if modes.is_empty() {
        errs.push(required(
            &p.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if !get(spec, "selector").is_null() {
        errs.extend(validate_label_selector(
            get(spec, "selector"),
            false,
            &p.child("selector"),
        ));
    }
    let supported = [
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    let (mut once_pod, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !supported.contains(&m) {
            errs.push(not_supported_str(&p.child("accessModes"), m, &supported));
        } else if m == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            other = true;
        }
    }
    if once_pod && other {
        errs.push(forbidden(
            &p.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let sp = p.child("resources").key("storage");
    match opt_str(get(get(spec, "resources"), "requests"), "storage").and_then(Quantity::parse) {
        None => errs.push(required(&sp, "")),
        Some(q) if !q.is_positive() => {
            errs.push(invalid_str(
                &sp,
                &q.canonical(),
                "must be greater than zero",
            ));
        }
        Some(_) => {}
    }
    if let Some(class) = opt_str(spec, "storageClassName").filter(|c| !c.is_empty()) {
        let cp = p.child("storageClassName");
        errs.extend(
            name_is_dns_subdomain(class, false)
                .iter()
                .map(|m| invalid_str(&cp, class, m)),
        );
    }
    if let Some(mode) = opt_str(spec, "volumeMode")
        && !matches!(mode, "Block" | "Filesystem")
    {
        errs.push(not_supported_str(
            &p.child("volumeMode"),
            mode,
            &["Block", "Filesystem"],
        ));
    }
    errs
}

/// `ValidateReplicationController`, with the selector defaulted from the template labels as
/// `SetDefaults_ReplicationController` does.
pub(crate) fn validate_replication_controller(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_replication_controller_spec(get(obj, "spec")));
    errs
}

fn validate_replication_controller_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let template = get(spec, "template");
    let template_labels = get(get(template, "metadata"), "labels");
    let selector = match get(spec, "selector") {
        s if len_of(s) == 0 && !template_labels.is_null() => template_labels,
        s => s,
    };
    let mut errs: Vec<FieldError> = nonnegative(
        int_of(spec, "minReadySeconds").unwrap_or(0),
        &p.child("minReadySeconds"),
    )
    .into_iter()
    .collect();
    if len_of(selector) == 0 {
        errs.push(required(&p.child("selector"), ""));
    }
    errs.extend(nonnegative(
        int_of(spec, "replicas").unwrap_or(1),
        &p.child("replicas"),
    ));
    let tp = p.child("template");
    if template.is_null() {
        errs.push(required(&tp, ""));
        return errs;
    }
    let parsed = as_selector(&serde_json::json!({ "matchLabels": selector }));
    if let Some(sel @ Selector::Requirements(_)) = parsed.as_ref()
        && !sel.matches(template_labels)
    {
        errs.push(invalid_raw(
            &tp.child("metadata").child("labels"),
            string_map(template_labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &tp));
    let tspec = get(template, "spec");
    let restart = restart_policy(tspec);
    if restart != "Always" {
        errs.push(not_supported_str(
            &tp.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if !get(tspec, "activeDeadlineSeconds").is_null() {
        errs.push(forbidden(
            &tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

pub(crate) fn validate_replication_controller_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_replication_controller_spec(get(&new, "spec")));
    errs
}
