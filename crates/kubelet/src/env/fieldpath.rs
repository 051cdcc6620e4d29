//! Downward API values: what a `fieldRef` or `resourceFieldRef` reads from the pod, as
//! upstream's `pkg/fieldpath`, `pods.ConvertDownwardAPIFieldLabel` and
//! `pkg/api/v1/resource` helpers compute them. Shared by container environments and the
//! downwardAPI / projected volumes.

use std::collections::BTreeMap;

use apimachinery::quantity::{milli_value, value};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Why a downward API value could not be computed; each message is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    #[error("unsupported pod version: {0}")]
    UnsupportedVersion(String),
    #[error("field label does not support subscript: {0}")]
    LabelNoSubscript(String),
    #[error("field label not supported: {0}")]
    UnsupportedLabel(String),
    #[error("unsupported fieldPath: {0}")]
    UnsupportedPath(String),
    #[error("invalid key subscript in {path}: {reasons}")]
    InvalidSubscript { path: String, reasons: String },
    #[error("fieldPath \"{0}\" does not support subscript")]
    PathNoSubscript(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['k']` → (`metadata.labels`, `k`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let inner = path.strip_suffix("']")?;
    let (head, key) = inner.split_once("['")?;
    (!head.is_empty()).then_some((head, key))
}

/// `pods.ConvertDownwardAPIFieldLabel`: checks the version and that the field may be
/// selected at all; returns the internal field path.
pub(crate) fn convert_field_label(
    api_version: &str,
    label: &str,
) -> Result<String, FieldPathError> {
    // The API server defaults an empty apiVersion to v1; accept what it would store.
    if !(api_version.is_empty() || api_version == "v1") {
        return Err(FieldPathError::UnsupportedVersion(api_version.to_string()));
    }
    if let Some((head, _)) = split_subscript(label) {
        return match head {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_string()),
            _ => Err(FieldPathError::LabelNoSubscript(label.to_string())),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label.to_string()),
        // Old v1 clients' name for spec.nodeName.
        "spec.host" => Ok("spec.nodeName".to_string()),
        _ => Err(FieldPathError::UnsupportedLabel(label.to_string())),
    }
}

/// `fieldpath.ExtractFieldPathAsString` on a pod: the metadata fields a downwardAPI volume
/// can show (an env var's runtime fields are resolved before this is reached).
pub(crate) fn extract_field_path(pod: &Pod, path: &str) -> Result<String, FieldPathError> {
    let meta = &pod.metadata;
    if let Some((head, key)) = split_subscript(path) {
        let (map, checked) = match head {
            "metadata.annotations" => (&meta.annotations, key.to_lowercase()),
            "metadata.labels" => (&meta.labels, key.to_string()),
            _ => return Err(FieldPathError::PathNoSubscript(path.to_string())),
        };
        let errs = apimachinery::validation::name::is_qualified_name(&checked);
        if !errs.is_empty() {
            return Err(FieldPathError::InvalidSubscript {
                path: path.to_string(),
                reasons: errs.join(";"),
            });
        }
        return Ok(map
            .as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default());
    }
    match path {
        "metadata.annotations" => Ok(format_map(meta.annotations.as_ref())),
        "metadata.labels" => Ok(format_map(meta.labels.as_ref())),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(FieldPathError::UnsupportedPath(path.to_string())),
    }
}

/// `fieldpath.FormatMap`: one `key="value"` line per entry, keys sorted, values quoted the
/// way Go's `%q` quotes them, no trailing newline.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote` (what `%q` prints): printable characters as they are, the usual
/// backslash escapes, and `\x`/`\u`/`\U` for the rest.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers, punctuation,
/// symbols and the ASCII space; not controls, other spaces or format characters.
fn go_printable(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'))
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// The value of `fs` for `container` (or, when `fs.containerName` is set, for that container
/// of the pod), as upstream's `ExtractContainerResourceValue` after
/// `MergeContainerResourceLimits`: a missing or zero cpu / memory / ephemeral-storage limit
/// reads as the node's allocatable amount. The result is `ceil(quantity / divisor)`.
pub(crate) fn container_resource_value(
    fs: &ResourceFieldSelector,
    pod: &Pod,
    container: Option<&Container>,
    allocatable: Option<&BTreeMap<String, Quantity>>,
) -> Result<String, FieldPathError> {
    let container = match fs.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => find_container(pod, name)
            .ok_or_else(|| FieldPathError::ContainerNotFound(name.to_string()))?,
        None => container.ok_or_else(|| FieldPathError::ContainerNotFound(String::new()))?,
    };
    let resources = container.resources.as_ref();
    let (kind, name) = fs
        .resource
        .split_once('.')
        .ok_or_else(|| FieldPathError::UnsupportedResource(fs.resource.clone()))?;
    let supported =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    let quantity = match kind {
        "limits" if supported => {
            let own = resources
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get(name))
                .filter(|q| milli_value(&q.0) != 0);
            // Hugepages are never overcommitted, so upstream does not default them.
            let from_node = || {
                (!name.starts_with("hugepages-"))
                    .then(|| allocatable.and_then(|a| a.get(name)))
                    .flatten()
            };
            own.or_else(from_node)
        }
        "requests" if supported => resources
            .and_then(|r| r.requests.as_ref())
            .and_then(|l| l.get(name)),
        _ => return Err(FieldPathError::UnsupportedResource(fs.resource.clone())),
    };
    let divisor = fs
        .divisor
        .as_ref()
        .map(|d| d.0.as_str())
        .filter(|d| milli_value(d) != 0)
        .unwrap_or("1");
    let text = quantity.map(|q| q.0.as_str()).unwrap_or("0");
    // CPU in millis (its divisors are 1 and 1m); everything else in whole units.
    let (n, d) = if name == "cpu" {
        (milli_value(text), milli_value(divisor))
    } else {
        (value(text), value(divisor))
    };
    if n <= 0 || d <= 0 {
        return Ok("0".to_string());
    }
    let (n, d) = (i128::from(n), i128::from(d));
    Ok(((n + d - 1) / d).to_string())
}
