//! CustomResourceDefinitions (apiextensions.k8s.io/v1): upstream's
//! `ValidateCustomResourceDefinition`, `ValidateCustomResourceDefinitionUpdate`,
//! `validateCustomResourceDefinitionSpec`, `ValidateCustomResourceDefinitionNames`,
//! `ValidateCustomResourceDefinitionStoredVersions`, `validateAPIApproval` and
//! `validatePreserveUnknownFields`, as of 1.33. Subresources, printer columns and conversion
//! live in `crd_parts.rs`, the OpenAPI schema in `crd_schema.rs`.
//!
//! Upstream validates the internal type, which v1 converts into by hoisting per-version
//! schemas, subresources and printer columns to the spec when every version has the same one
//! (so a single-version CRD's schema errors are reported under
//! `spec.validation.openAPIV3Schema`), and by copying `versions[0].name` to `spec.version`.
//! `singular` and `listKind` are defaulted from `kind` (`SetDefaults_CustomResourceDefinitionSpec`).
//! The create strategy records the first storage version in `status.storedVersions`.

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::crd_parts::{
    enum_string, validate_column, validate_conversion, validate_subresources, versions_value,
};
use super::crd_schema::{has_defaults, validate_schema};
use super::json::{bool_of, get, list, opt_str, str_of};
use super::meta::{prepare_update, validate_object_meta_update_generic, validate_object_meta_with};
use super::name::{is_dns1035_label, is_dns1123_subdomain, name_is_dns_subdomain};
use super::path::{FIELD_IMMUTABLE, Path, invalid, invalid_raw, invalid_str, required};

/// The internal view of a v1 spec: what is hoisted out of the versions.
pub(crate) struct Internal<'a> {
    versions: &'a [Value],
    /// Per-version field → hoisted value, when every version carries the same one.
    hoisted: [(&'static str, Option<&'a Value>); 3],
}

impl<'a> Internal<'a> {
    fn new(spec: &'a Value) -> Self {
        let versions = list(spec, "versions");
        let hoist = |field: &'static str| {
            let first = versions.first().map(|v| get(v, field));
            let same = first.filter(|f| versions.iter().all(|v| get(v, field) == *f));
            (field, same)
        };
        Internal {
            versions,
            hoisted: [
                hoist("schema"),
                hoist("subresources"),
                hoist("additionalPrinterColumns"),
            ],
        }
    }

    fn is_hoisted(&self, field: &str) -> bool {
        self.hoisted.iter().any(|(f, v)| *f == field && v.is_some())
    }

    /// A per-version field as the internal version holds it (nil once hoisted).
    pub(crate) fn per_version(&self, v: &'a Value, field: &str) -> &'a Value {
        if self.is_hoisted(field) {
            &Value::Null
        } else {
            get(v, field)
        }
    }

    /// The top-level field the internal spec holds.
    fn top(&self, field: &str) -> &'a Value {
        self.hoisted
            .iter()
            .find(|(f, _)| *f == field)
            .and_then(|(_, v)| *v)
            .unwrap_or(&Value::Null)
    }
}

/// `spec.names` after defaulting: `(plural, singular, kind, listKind)`.
fn names(spec: &Value) -> (&str, String, &str, String) {
    let n = get(spec, "names");
    let kind = str_of(n, "kind");
    let singular = match str_of(n, "singular") {
        "" => kind.to_lowercase(),
        s => s.to_string(),
    };
    let list_kind = match str_of(n, "listKind") {
        "" if !kind.is_empty() => format!("{kind}List"),
        l => l.to_string(),
    };
    (str_of(n, "plural"), singular, kind, list_kind)
}

/// `ValidateCustomResourceDefinition`.
pub(crate) fn validate_crd(obj: &Value) -> Vec<FieldError> {
    let spec = get(obj, "spec");
    let stored: Vec<&str> = list(spec, "versions")
        .iter()
        .find(|v| bool_of(v, "storage") == Some(true))
        .map(|v| vec![str_of(v, "name")])
        .unwrap_or_default();
    let mut errs = validate_crd_name(obj);
    errs.extend(validate_spec(spec));
    errs.extend(stored_versions(&stored, spec));
    errs.extend(api_approval(obj, None));
    errs.extend(preserve_unknown_fields(spec, None));
    errs
}

/// The name must be `<plural>.<group>`; generic (not core) ObjectMeta rules.
fn validate_crd_name(obj: &Value) -> Vec<FieldError> {
    let spec = get(obj, "spec");
    let wanted = format!(
        "{}.{}",
        str_of(get(spec, "names"), "plural"),
        str_of(spec, "group")
    );
    let rule = |name: &str, prefix: bool| {
        let mut msgs = name_is_dns_subdomain(name, prefix);
        if name != wanted {
            msgs.push("must be spec.names.plural+\".\"+spec.group".to_string());
        }
        msgs
    };
    validate_object_meta_with(obj, Some(false), &rule)
}

/// `validateCustomResourceDefinitionSpec` for create (schemas required).
fn validate_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = Vec::new();
    let group = str_of(spec, "group");
    let gp = p.child("group");
    if group.is_empty() {
        errs.push(required(&gp, ""));
    } else {
        let msgs = is_dns1123_subdomain(group);
        if !msgs.is_empty() {
            errs.push(invalid_str(&gp, group, &msgs.join(",")));
        } else if group.split('.').count() < 2 {
            errs.push(invalid_str(
                &gp,
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    errs.extend(enum_string(
        &p.child("scope"),
        str_of(spec, "scope"),
        &["Cluster", "Namespaced"],
    ));
    let internal = Internal::new(spec);
    let vp = p.child("versions");
    if internal.top("schema").is_null() || get(internal.top("schema"), "openAPIV3Schema").is_null()
    {
        for (i, v) in internal.versions.iter().enumerate() {
            let schema = internal.per_version(v, "schema");
            if get(schema, "openAPIV3Schema").is_null() {
                errs.push(required(
                    &vp.index(i).child("schema").child("openAPIV3Schema"),
                    "schemas are required",
                ));
            }
        }
    }
    let preserve = bool_of(spec, "preserveUnknownFields") == Some(true);
    if preserve
        && internal
            .versions
            .iter()
            .any(|v| has_defaults(get(v, "schema")))
    {
        errs.push(invalid(
            &p.child("preserveUnknownFields"),
            BadValue::Raw("true".into()),
            "must be false in order to use defaults in the schema",
        ));
    }
    let mut storage = 0;
    let mut seen = Vec::new();
    let mut unique = true;
    for (i, v) in internal.versions.iter().enumerate() {
        let name = str_of(v, "name");
        if bool_of(v, "storage") == Some(true) {
            storage += 1;
        }
        if seen.contains(&name) {
            unique = false;
        } else {
            seen.push(name);
        }
        let msgs = is_dns1035_label(name);
        if !msgs.is_empty() {
            errs.push(invalid_str(
                &vp.index(i).child("name"),
                name,
                &msgs.join(","),
            ));
        }
        errs.extend(validate_version(&internal, v, &vp.index(i)));
    }
    if !unique {
        errs.push(invalid_raw(
            &vp,
            versions_value(&internal, spec),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(invalid_raw(
            &vp,
            versions_value(&internal, spec),
            "must have exactly one version marked as storage version",
        ));
    }
    // The internal `spec.version` is `versions[0].name`.
    if let Some(first) = internal.versions.first().map(|v| str_of(v, "name"))
        && !first.is_empty()
    {
        let msgs = is_dns1035_label(first);
        if !msgs.is_empty() {
            errs.push(invalid_str(&p.child("version"), first, &msgs.join(",")));
        }
    }
    errs.extend(validate_names(spec, &p.child("names")));
    let top_schema = get(internal.top("schema"), "openAPIV3Schema");
    if !top_schema.is_null() {
        errs.extend(validate_schema(
            top_schema,
            &p.child("validation").child("openAPIV3Schema"),
        ));
    }
    errs.extend(validate_subresources(
        internal.top("subresources"),
        &p.child("subresources"),
    ));
    for (i, col) in internal
        .top("additionalPrinterColumns")
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        errs.extend(validate_column(
            col,
            &p.child("additionalPrinterColumns").index(i),
        ));
    }
    errs.extend(validate_conversion(
        get(spec, "conversion"),
        preserve,
        &p.child("conversion"),
    ));
    errs
}

/// `validateCustomResourceDefinitionVersion` (per-version parts that were not hoisted).
fn validate_version(internal: &Internal, v: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(warning) = opt_str(v, "deprecationWarning") {
        let wp = p.child("deprecationWarning");
        if bool_of(v, "deprecated") != Some(true) {
            errs.push(invalid_str(
                &wp,
                warning,
                "can only be set for deprecated versions",
            ));
        } else {
            if warning.len() > 256 {
                errs.push(invalid_str(&wp, warning, "must be <= 256 characters long"));
            }
            if warning.is_empty() {
                errs.push(invalid_str(&wp, warning, "must not be an empty string"));
            }
        }
    }
    let schema = get(internal.per_version(v, "schema"), "openAPIV3Schema");
    if !schema.is_null() {
        errs.extend(validate_schema(
            schema,
            &p.child("schema").child("openAPIV3Schema"),
        ));
    }
    errs.extend(validate_subresources(
        internal.per_version(v, "subresources"),
        &p.child("subresources"),
    ));
    for (i, col) in internal
        .per_version(v, "additionalPrinterColumns")
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        errs.extend(validate_column(
            col,
            &p.child("additionalPrinterColumns").index(i),
        ));
    }
    errs
}

/// The required names and `ValidateCustomResourceDefinitionNames`.
fn validate_names(spec: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (plural, singular, kind, list_kind) = names(spec);
    for (field, value) in [
        ("plural", plural),
        ("singular", singular.as_str()),
        ("kind", kind),
        ("listKind", list_kind.as_str()),
    ] {
        if value.is_empty() {
            errs.push(required(&p.child(field), ""));
        }
    }
    for (field, value) in [("plural", plural), ("singular", singular.as_str())] {
        let msgs = is_dns1035_label(value);
        if !value.is_empty() && !msgs.is_empty() {
            errs.push(invalid_str(&p.child(field), value, &msgs.join(",")));
        }
    }
    for (field, value) in [("kind", kind), ("listKind", list_kind.as_str())] {
        let msgs = is_dns1035_label(&value.to_lowercase());
        if !value.is_empty() && !msgs.is_empty() {
            errs.push(invalid_str(
                &p.child(field),
                value,
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                ),
            ));
        }
    }
    let n = get(spec, "names");
    for list_field in ["shortNames", "categories"] {
        if list_field == "categories" && !kind.is_empty() && kind == list_kind {
            errs.push(invalid_str(
                &p.child("listKind"),
                &list_kind,
                "kind and listKind may not be the same",
            ));
        }
        for (i, value) in list(n, list_field).iter().enumerate() {
            let value = value.as_str().unwrap_or("");
            let msgs = is_dns1035_label(value);
            if !msgs.is_empty() {
                errs.push(invalid_str(
                    &p.child(list_field).index(i),
                    value,
                    &msgs.join(","),
                ));
            }
        }
    }
    errs
}

/// `ValidateCustomResourceDefinitionStoredVersions`.
fn stored_versions(stored: &[&str], spec: &Value) -> Vec<FieldError> {
    let p = Path::new("status").child("storedVersions");
    let rendered = || {
        if stored.is_empty() {
            "[]string(nil)".to_string()
        } else {
            super::gofmt::string_slice(&Value::from(stored.to_vec()))
        }
    };
    if stored.is_empty() {
        return vec![invalid_raw(
            &p,
            rendered(),
            "must have at least one stored version",
        )];
    }
    let mut errs = Vec::new();
    let versions = list(spec, "versions");
    for v in versions {
        let name = str_of(v, "name");
        if bool_of(v, "storage") == Some(true) && !stored.contains(&name) {
            errs.push(invalid_raw(
                &p,
                rendered(),
                &format!("must have the storage version {name}"),
            ));
        }
    }
    for (i, s) in stored.iter().enumerate() {
        if !versions.iter().any(|v| str_of(v, "name") == *s) {
            errs.push(invalid_str(&p.index(i), s, &format!(
                "missing from spec.versions; {s} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {s} and removes {s} from status.storedVersions"
            )));
        }
    }
    errs
}

/// `validateAPIApproval`: `*.k8s.io` and `*.kubernetes.io` groups need an approval annotation.
fn api_approval(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    const KEY: &str = "api-approved.kubernetes.io";
    let group = str_of(get(obj, "spec"), "group");
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")));
    if !protected {
        return Vec::new();
    }
    let state = |o: &Value| -> u8 {
        let a = str_of(get(get(o, "metadata"), "annotations"), KEY);
        if a.is_empty() {
            3
        } else if a.starts_with("unapproved") {
            2
        } else if a
            .split_once("://")
            .is_some_and(|(s, h)| !s.is_empty() && !h.is_empty() && !h.starts_with('/'))
        {
            1
        } else {
            0
        }
    };
    if old.is_some_and(|o| state(o) == state(obj)) {
        return Vec::new();
    }
    let p = Path::new("metadata").child("annotations").key(KEY);
    let value = str_of(get(get(obj, "metadata"), "annotations"), KEY);
    match state(obj) {
        3 => vec![required(
            &p,
            &format!(
                "protected groups must have approval annotation {}, see https://github.com/kubernetes/enhancements/pull/1111",
                go_quote(KEY)
            ),
        )],
        0 => vec![invalid_str(
            &p,
            value,
            &format!(
                "protected groups must have approval annotation {} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111",
                go_quote(KEY)
            ),
        )],
        _ => Vec::new(),
    }
}

/// `validatePreserveUnknownFields`: v1 may not turn it on.
fn preserve_unknown_fields(spec: &Value, old: Option<&Value>) -> Vec<FieldError> {
    if old.is_some_and(|o| bool_of(o, "preserveUnknownFields") == Some(true)) {
        return Vec::new();
    }
    if bool_of(spec, "preserveUnknownFields") == Some(true) {
        return vec![invalid(
            &Path::new("spec").child("preserveUnknownFields"),
            BadValue::Raw("true".into()),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        )];
    }
    Vec::new()
}

/// `ValidateCustomResourceDefinitionUpdate`. Scope and kind are immutable once the CRD is
/// Established; group and plural always are. Stored versions accumulate across updates.
pub(crate) fn validate_crd_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    let mut stored: Vec<&str> = list(get(old, "status"), "storedVersions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if let Some(v) = list(ns, "versions")
        .iter()
        .find(|v| bool_of(v, "storage") == Some(true))
    {
        let name = str_of(v, "name");
        if !stored.contains(&name) {
            stored.push(name);
        }
    }
    let established = list(get(old, "status"), "conditions")
        .iter()
        .any(|c| str_of(c, "type") == "Established" && str_of(c, "status") == "True");
    let mut errs = validate_object_meta_update_generic(&new, old);
    errs.extend(validate_spec(ns));
    let p = Path::new("spec");
    if established {
        if str_of(ns, "scope") != str_of(os, "scope") {
            errs.push(invalid_str(
                &p.child("scope"),
                str_of(ns, "scope"),
                FIELD_IMMUTABLE,
            ));
        }
        let kind = names(ns).2;
        if kind != names(os).2 {
            errs.push(invalid_str(
                &p.child("names").child("kind"),
                kind,
                FIELD_IMMUTABLE,
            ));
        }
    }
    if str_of(ns, "group") != str_of(os, "group") {
        errs.push(invalid_str(
            &p.child("group"),
            str_of(ns, "group"),
            FIELD_IMMUTABLE,
        ));
    }
    let plural = names(ns).0;
    if plural != names(os).0 {
        errs.push(invalid_str(
            &p.child("names").child("plural"),
            plural,
            FIELD_IMMUTABLE,
        ));
    }
    errs.extend(stored_versions(&stored, ns));
    errs.extend(api_approval(&new, Some(old)));
    errs.extend(preserve_unknown_fields(ns, Some(os)));
    errs
}
