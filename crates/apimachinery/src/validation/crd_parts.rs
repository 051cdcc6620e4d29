//! The smaller parts of a CustomResourceDefinition spec: subresources
//! (`ValidateCustomResourceDefinitionSubresources`), printer columns
//! (`ValidateCustomResourceColumnDefinition`), conversion (`validateCustomResourceConversion`,
//! `validateConversionReviewVersions`), `validateEnumStrings`, and the Go dump of the internal
//! `spec.versions` that some messages carry.

use serde_json::Value;

use crate::field::{FieldError, go_quote};

use super::admission_webhooks::{validate_webhook_service, validate_webhook_url};
use super::apiextensions::Internal;
use super::gofmt::go_pointer;
use super::json::{bool_of, get, int_of, list, opt_str, str_of};
use super::name::is_dns1035_label;
use super::path::{Path, forbidden, invalid_raw, invalid_str, not_supported_str, required};

const PRINTER_TYPES: &str = "boolean,date,integer,number,string";
const PRINTER_FORMATS: [&str; 8] = [
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];

/// `validateEnumStrings` (required).
pub(crate) fn enum_string(p: &Path, value: &str, accepted: &[&str]) -> Vec<FieldError> {
    if value.is_empty() {
        vec![required(p, "")]
    } else if accepted.contains(&value) {
        Vec::new()
    } else {
        vec![not_supported_str(p, value, accepted)]
    }
}

/// `%#v` of the internal `spec.versions`.
pub(crate) fn versions_value(internal: &Internal, spec: &Value) -> String {
    const TY: &str = "[]apiextensions.CustomResourceDefinitionVersion";
    let Some(versions) = get(spec, "versions").as_array() else {
        return format!("{TY}(nil)");
    };
    let items: Vec<String> = versions
        .iter()
        .map(|v| {
            let flag = |f: &str| bool_of(v, f).unwrap_or(false);
            let columns = internal.per_version(v, "additionalPrinterColumns");
            format!(
                "apiextensions.CustomResourceDefinitionVersion{{Name:{}, Served:{}, Storage:{}, Deprecated:{}, DeprecationWarning:{}, Schema:{}, Subresources:{}, AdditionalPrinterColumns:{}, SelectableFields:{}}}",
                go_quote(str_of(v, "name")),
                flag("served"),
                flag("storage"),
                flag("deprecated"),
                go_pointer("string", get(v, "deprecationWarning")),
                go_pointer("apiextensions.CustomResourceValidation", internal.per_version(v, "schema")),
                go_pointer("apiextensions.CustomResourceSubresources", internal.per_version(v, "subresources")),
                columns_value(columns),
                match get(v, "selectableFields").as_array() {
                    None => "[]apiextensions.SelectableField(nil)".to_string(),
                    Some(fields) => format!(
                        "[]apiextensions.SelectableField{{{}}}",
                        fields
                            .iter()
                            .map(|f| format!("apiextensions.SelectableField{{JSONPath:{}}}", go_quote(str_of(f, "jsonPath"))))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            )
        })
        .collect();
    format!("{TY}{{{}}}", items.join(", "))
}

fn columns_value(columns: &Value) -> String {
    match columns.as_array() {
        None => "[]apiextensions.CustomResourceColumnDefinition(nil)".to_string(),
        Some(cols) => format!(
            "[]apiextensions.CustomResourceColumnDefinition{{{}}}",
            cols.iter()
                .map(|c| format!(
                    "apiextensions.CustomResourceColumnDefinition{{Name:{}, Type:{}, Format:{}, Description:{}, Priority:{}, JSONPath:{}}}",
                    go_quote(str_of(c, "name")),
                    go_quote(str_of(c, "type")),
                    go_quote(str_of(c, "format")),
                    go_quote(str_of(c, "description")),
                    int_of(c, "priority").unwrap_or(0),
                    go_quote(str_of(c, "jsonPath")),
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `ValidateCustomResourceDefinitionSubresources` (the scale paths).
pub(crate) fn validate_subresources(sub: &Value, p: &Path) -> Vec<FieldError> {
    let scale = get(sub, "scale");
    if scale.is_null() {
        return Vec::new();
    }
    let mut errs = Vec::new();
    for (field, prefix) in [
        ("specReplicasPath", ".spec."),
        ("statusReplicasPath", ".status."),
    ] {
        let fp = p.child(&format!("scale.{field}"));
        let value = str_of(scale, field);
        if value.is_empty() {
            errs.push(required(&fp, ""));
            continue;
        }
        let path_errs = simple_json_path(value, &fp);
        if !path_errs.is_empty() {
            errs.extend(path_errs);
        } else if !value.starts_with(prefix) {
            let under = prefix.trim_end_matches('.');
            errs.push(invalid_str(
                &fp,
                value,
                &format!("should be a json path under {under}"),
            ));
        }
    }
    if let Some(selector) = opt_str(scale, "labelSelectorPath").filter(|s| !s.is_empty()) {
        let fp = p.child("scale.labelSelectorPath");
        let path_errs = simple_json_path(selector, &fp);
        if !path_errs.is_empty() {
            errs.extend(path_errs);
        } else if !selector.starts_with(".spec.") && !selector.starts_with(".status.") {
            errs.push(invalid_str(
                &fp,
                selector,
                "should be a json path under either .spec or .status",
            ));
        }
    }
    errs
}

/// `validateSimpleJSONPath`.
fn simple_json_path(s: &str, p: &Path) -> Vec<FieldError> {
    if s.is_empty() {
        vec![invalid_str(p, s, "must not be empty")]
    } else if !s.starts_with('.') {
        vec![invalid_str(
            p,
            s,
            "must be a simple json path starting with .",
        )]
    } else {
        Vec::new()
    }
}

/// `ValidateCustomResourceColumnDefinition`; the v1 `jsonPath` is reported as `JSONPath`.
pub(crate) fn validate_column(col: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if str_of(col, "name").is_empty() {
        errs.push(required(&p.child("name"), ""));
    }
    let ty = str_of(col, "type");
    let type_msg = format!("must be one of {PRINTER_TYPES}");
    if ty.is_empty() {
        errs.push(required(&p.child("type"), &type_msg));
    } else if !PRINTER_TYPES.split(',').any(|t| t == ty) {
        errs.push(invalid_str(&p.child("type"), ty, &type_msg));
    }
    let format = str_of(col, "format");
    if !format.is_empty() && !PRINTER_FORMATS.contains(&format) {
        errs.push(invalid_str(
            &p.child("format"),
            format,
            &format!("must be one of {}", PRINTER_FORMATS.join(",")),
        ));
    }
    let json_path = str_of(col, "jsonPath");
    if json_path.is_empty() {
        errs.push(required(&p.child("JSONPath"), ""));
    } else {
        errs.extend(simple_json_path(json_path, &p.child("JSONPath")));
    }
    errs
}

/// `validateCustomResourceConversion` over v1's `conversion.webhook`, at internal paths.
pub(crate) fn validate_conversion(conversion: &Value, preserve: bool, p: &Path) -> Vec<FieldError> {
    let strategy = opt_str(conversion, "strategy").unwrap_or("None");
    let mut errs = Vec::new();
    if conversion.is_null() {
        return errs;
    }
    if strategy != "None" && preserve {
        errs.push(invalid_str(
            &p.child("strategy"),
            strategy,
            "must be None if spec.preserveUnknownFields is true",
        ));
    }
    errs.extend(enum_string(
        &p.child("strategy"),
        strategy,
        &["None", "Webhook"],
    ));
    let webhook = get(conversion, "webhook");
    let client = get(webhook, "clientConfig");
    let review = get(webhook, "conversionReviewVersions");
    let cp = p.child("webhookClientConfig");
    if strategy == "Webhook" {
        if client.is_null() {
            errs.push(required(&cp, "required when strategy is set to Webhook"));
        } else {
            let (url, service) = (opt_str(client, "url"), get(client, "service"));
            match (url, service.is_null()) {
                (Some(u), true) => errs.extend(validate_webhook_url(&cp.child("url"), u)),
                (None, false) => {
                    errs.extend(validate_webhook_service(&cp.child("service"), service))
                }
                _ => errs.push(required(&cp, "exactly one of url or service is required")),
            }
        }
        errs.extend(review_versions(
            review,
            &p.child("conversionReviewVersions"),
        ));
    } else {
        if !client.is_null() {
            errs.push(forbidden(
                &cp,
                "should not be set when strategy is not set to Webhook",
            ));
        }
        if !list(webhook, "conversionReviewVersions").is_empty() {
            errs.push(forbidden(
                &p.child("conversionReviewVersions"),
                "should not be set when strategy is not set to Webhook",
            ));
        }
    }
    errs
}

/// `validateConversionReviewVersions` (a recognized version required).
fn review_versions(versions: &Value, p: &Path) -> Vec<FieldError> {
    let items = versions.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return vec![required(p, "")];
    }
    let mut errs = Vec::new();
    let mut seen = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        if seen.contains(&v) {
            errs.push(invalid_str(&p.index(i), v, "duplicate version"));
            continue;
        }
        seen.push(v);
        errs.extend(
            is_dns1035_label(v)
                .iter()
                .map(|m| invalid_str(&p.index(i), v, m)),
        );
    }
    if !seen.iter().any(|v| matches!(*v, "v1" | "v1beta1")) {
        errs.push(invalid_raw(
            p,
            super::gofmt::string_slice(versions),
            "must include at least one of v1, v1beta1",
        ));
    }
    errs
}
