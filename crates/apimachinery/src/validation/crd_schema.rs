//! The OpenAPI schema of a CustomResourceDefinition version: the parts of upstream's
//! `validateCustomResourceDefinitionValidation` users most often trip over.
//!
//! - `structuralschema.ValidateStructural` (`pkg/apiserver/schema/validation.go`): types are
//!   required at the root, for array items and for object fields; arrays need `items`; the
//!   root is an object without `additionalProperties`; root `metadata` may only restrict
//!   `name` and `generateName`. Like upstream, these errors are sorted by their text.
//! - `ValidateCustomResourceDefinitionOpenAPISchema`: known types only, no `type: null`, no
//!   `uniqueItems`, `properties` and `additionalProperties` are exclusive. Properties are
//!   visited in key order (upstream ranges over a map).
//! - A nullable root is forbidden.
//!
//! Not reproduced: value-validation nesting rules, CEL rules and their cost, defaults,
//! list/map-type extensions, and the status-subresource root restrictions (whose message
//! embeds a Go dump of the whole schema).

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::json::{bool_of, get, sorted, str_of};
use super::path::{Path, forbidden, invalid, invalid_str, not_supported_str, required};

const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Validates `openAPIV3Schema` found at `p` (already `….openAPIV3Schema`).
pub(crate) fn validate_schema(schema: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if bool_of(schema, "nullable") == Some(true) {
        errs.push(forbidden(
            &p.child("nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut structural = Vec::new();
    structural_invariants(schema, Level::Root, p, &mut structural);
    structural.sort_by_key(ToString::to_string);
    errs.extend(structural);
    openapi_schema(schema, p, &mut errs);
    errs
}

fn is_true(s: &Value, key: &str) -> bool {
    bool_of(s, key) == Some(true)
}

/// `validateStructuralInvariants`.
fn structural_invariants(s: &Value, level: Level, p: &Path, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let ty = str_of(s, "type");
    let items = get(s, "items");
    if ty == "array" && items.is_null() {
        errs.push(required(&p.child("items"), "must be specified"));
    }
    if items.is_object() {
        structural_invariants(items, Level::Item, &p.child("items"), errs);
    }
    let props = get(s, "properties");
    for (k, v) in props.as_object().map(sorted).unwrap_or_default() {
        structural_invariants(v, Level::Field, &p.child("properties").key(k), errs);
    }
    let additional = get(s, "additionalProperties");
    if !additional.is_null() {
        if level == Level::Root {
            errs.push(forbidden(
                &p.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if additional.is_object() {
            structural_invariants(
                additional,
                Level::Field,
                &p.child("additionalProperties"),
                errs,
            );
        }
    }
    let int_or_string = is_true(s, "x-kubernetes-int-or-string");
    let preserve = is_true(s, "x-kubernetes-preserve-unknown-fields");
    if int_or_string && preserve {
        errs.push(invalid(
            &p.child("x-kubernetes-preserve-unknown-fields"),
            BadValue::Raw("true".into()),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let embedded = is_true(s, "x-kubernetes-embedded-resource");
    if embedded && ty != "object" {
        if ty.is_empty() {
            errs.push(required(
                &p.child("type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(invalid_str(
                &p.child("type"),
                ty,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(required(&p.child("type"), detail));
    }
    if level == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(invalid_str(
            &p.child("type"),
            ty,
            "must be object at the root",
        ));
    }
    let check_metadata = level == Level::Root || embedded;
    for meta_field in ["kind", "apiVersion"] {
        let f = get(props, meta_field);
        if check_metadata && f.is_object() && str_of(f, "type") != "string" {
            errs.push(invalid_str(
                &p.child("properties").key(meta_field).child("type"),
                str_of(f, "type"),
                "must be string",
            ));
        }
    }
    let metadata = get(props, "metadata");
    if metadata.is_object() {
        metadata_invariants(
            metadata,
            check_metadata,
            level,
            &p.child("properties").key("metadata"),
            errs,
        );
    }
}

/// `validateStructuralMetadataInvariants`.
fn metadata_invariants(
    s: &Value,
    check_metadata: bool,
    level: Level,
    p: &Path,
    errs: &mut Vec<FieldError>,
) {
    let ty = str_of(s, "type");
    if check_metadata && ty != "object" {
        errs.push(invalid_str(&p.child("type"), ty, "must be object"));
    }
    if level != Level::Root {
        return;
    }
    let props = get(s, "properties").as_object();
    let only_names = props.is_none_or(|m| m.keys().all(|k| k == "name" || k == "generateName"));
    let other = s.as_object().into_iter().flatten().any(|(k, v)| {
        let zero = match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        !zero && !matches!(k.as_str(), "type" | "default" | "properties")
    });
    if !only_names || other {
        errs.push(forbidden(
            p,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

/// The checks of `ValidateCustomResourceDefinitionOpenAPISchema` and `specStandardValidatorV3`
/// kept here, recursing like upstream.
fn openapi_schema(s: &Value, p: &Path, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let ty = str_of(s, "type");
    if !ty.is_empty() && !OPENAPI_TYPES.contains(&ty) {
        errs.push(not_supported_str(&p.child("type"), ty, &OPENAPI_TYPES));
    }
    if ty == "null" {
        errs.push(forbidden(
            &p.child("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if get(s, "items").is_array() {
        errs.push(forbidden(
            &p.child("items"),
            "items must be a schema object and not an array",
        ));
    }
    if is_true(s, "uniqueItems") {
        errs.push(forbidden(
            &p.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let props = get(s, "properties").as_object();
    let additional = get(s, "additionalProperties");
    if !additional.is_null() {
        let allows_all = additional == &Value::Bool(true);
        if props.is_some_and(|m| !m.is_empty()) && !allows_all {
            errs.push(forbidden(
                &p.child("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        openapi_schema(additional, &p.child("additionalProperties"), errs);
    }
    for (k, v) in props.map(sorted).unwrap_or_default() {
        openapi_schema(v, &p.child("properties").key(k), errs);
    }
    openapi_schema(get(s, "items"), &p.child("items"), errs);
}

/// Whether any schema in the tree sets `default` (`schemaHasDefaults`).
pub(crate) fn has_defaults(s: &Value) -> bool {
    match s {
        Value::Object(m) => {
            m.contains_key("default")
                || ["properties", "patternProperties", "definitions"]
                    .iter()
                    .any(|k| {
                        m.get(*k)
                            .and_then(Value::as_object)
                            .is_some_and(|p| p.values().any(has_defaults))
                    })
                || ["items", "additionalProperties", "not", "additionalItems"]
                    .iter()
                    .any(|k| m.get(*k).is_some_and(has_defaults))
                || ["allOf", "anyOf", "oneOf"].iter().any(|k| {
                    m.get(*k)
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(has_defaults))
                })
        }
        Value::Array(a) => a.iter().any(has_defaults),
        _ => false,
    }
}
