//! CertificateSigningRequests: upstream's `ValidateCertificateSigningRequestCreate`,
//! `ValidateCertificateSigningRequestUpdate` (`pkg/apis/certificates/validation`) and
//! `ValidateSignerName` (`pkg/apis/core/validation`).
//!
//! The request must hold a PEM `CERTIFICATE REQUEST` block; the PKCS#10 content and its
//! signature are not checked here (that needs an X.509 parser). Names are free-form.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::core::decode_base64;
use super::json::{get, int_of, list, str_of};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{
    DNS1123_SUBDOMAIN_MAX_LENGTH, LABEL_VALUE_MAX_LENGTH, is_dns1123_label, is_dns1123_subdomain,
    name_any,
};
use super::path::{
    Path, duplicate, invalid, invalid_int, invalid_str, not_supported_str, required, too_long,
};

const LEGACY_SIGNER: &str = "kubernetes.io/legacy-unknown";

/// `allValidUsages`, sorted as `sets.String.List` returns them.
const USAGES: [&str; 23] = [
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// The type of the first PEM block in `data` (`pem.Decode`), if any.
fn first_pem_type(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    let end = rest.find("-----")?;
    let ty = &rest[..end];
    rest.contains(&format!("-----END {ty}-----"))
        .then(|| ty.to_string())
}

/// `%#v` of a `[]byte`.
fn go_bytes(v: &Value, bytes: &[u8]) -> String {
    if v.is_null() {
        return "[]byte(nil)".to_string();
    }
    let parts: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", parts.join(", "))
}

/// `ValidateSignerName`.
fn validate_signer_name(p: &Path, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![required(p, "")];
    }
    let Some((domain, path)) = name.split_once('/').filter(|(_, rest)| !rest.contains('/')) else {
        return vec![invalid_str(
            p,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errs = Vec::new();
    if domain.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(too_long(p, DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(invalid_str(
                    p,
                    domain,
                    &format!("validating label \"{label}\": {m}"),
                ));
            }
            break;
        }
    }
    if labels.len() < 2 {
        errs.push(invalid_str(
            p,
            domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for label in path.split('.') {
        let msgs = is_dns1123_subdomain(label);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(invalid_str(
                    p,
                    path,
                    &format!("validating label \"{label}\": {m}"),
                ));
            }
            break;
        }
    }
    let max_path = DNS1123_SUBDOMAIN_MAX_LENGTH + LABEL_VALUE_MAX_LENGTH + 1;
    if path.len() > max_path {
        errs.push(too_long(p, max_path));
    }
    errs
}

/// `validateCertificateSigningRequest` with the create options.
fn validate_csr_with(obj: &Value, allow_legacy_signer: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_any);
    let spec = get(obj, "spec");
    let p = Path::new("spec");
    let raw = get(spec, "request");
    let bytes = decode_base64(raw.as_str().unwrap_or("")).unwrap_or_default();
    if first_pem_type(&bytes).as_deref() != Some("CERTIFICATE REQUEST") {
        errs.push(invalid(
            &p.child("request"),
            BadValue::Raw(go_bytes(raw, &bytes)),
            "PEM block type must be CERTIFICATE REQUEST",
        ));
    }
    let usages = list(spec, "usages");
    if usages.is_empty() {
        errs.push(required(&p.child("usages"), ""));
    }
    for (i, u) in usages.iter().enumerate() {
        let u = u.as_str().unwrap_or("");
        if !USAGES.contains(&u) {
            errs.push(not_supported_str(&p.child("usages").index(i), u, &USAGES));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, u) in usages.iter().enumerate() {
        let u = u.as_str().unwrap_or("");
        if !seen.insert(u) {
            errs.push(duplicate(
                &p.child("usages").index(i),
                BadValue::Str(u.to_string()),
            ));
        }
    }
    let signer = str_of(spec, "signerName");
    if !allow_legacy_signer && signer == LEGACY_SIGNER {
        errs.push(invalid_str(
            &p.child("signerName"),
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name(&p.child("signerName"), signer));
    }
    if let Some(seconds) = int_of(spec, "expirationSeconds")
        && seconds < 600
    {
        errs.push(invalid_int(
            &p.child("expirationSeconds"),
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs
}

pub(crate) fn validate_csr(obj: &Value) -> Vec<FieldError> {
    validate_csr_with(obj, false)
}

/// `ValidateCertificateSigningRequestUpdate`: the request, then its metadata update.
pub(crate) fn validate_csr_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let legacy = str_of(get(old, "spec"), "signerName") == LEGACY_SIGNER;
    let mut errs = validate_csr_with(&new, legacy);
    errs.extend(validate_object_meta_update(&new, old));
    errs
}
