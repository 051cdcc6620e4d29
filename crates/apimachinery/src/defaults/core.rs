//! Core (`v1`) kinds other than Pod and Service: `SetDefaults_ReplicationController`,
//! `SetDefaults_Namespace`/`SetDefaults_NamespaceStatus`, `SetDefaults_Secret`,
//! `SetDefaults_PersistentVolume`, `SetDefaults_PersistentVolumeClaim(Spec)`,
//! `SetDefaults_Endpoints`, `SetDefaults_LimitRangeItem` and `SetDefaults_NodeStatus` from
//! `pkg/apis/core/v1/defaults.go`, with the generated walks into pod templates and volume
//! sources, and the Node `podCIDR`/`podCIDRs` conversion.

use serde_json::{Value, json};

use super::fields::{
    Map, child, child_or_empty, default_ptr, default_str, fill_missing, is_blank, is_unset, items,
    meta_str, str_of,
};
use super::{pod, service};

/// The label every namespace carries with its own name (`v1.LabelMetadataName`).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub(super) fn apply(kind: &str, obj: &mut Map) {
    match kind {
        "Pod" => pod::pod(obj),
        "PodTemplate" => {
            if let Some(template) = child(obj, "template") {
                pod::template(template);
            }
        }
        "ReplicationController" => replication_controller(obj),
        "Service" => service::service(obj),
        "Namespace" => namespace(obj),
        "Secret" => default_str(obj, "type", "Opaque"),
        "PersistentVolume" => persistent_volume(obj),
        "PersistentVolumeClaim" => pod::pvc(obj),
        "Endpoints" => {
            for subset in items(obj, "subsets") {
                for port in items(subset, "ports") {
                    default_str(port, "protocol", "TCP");
                }
            }
        }
        "LimitRange" => {
            if let Some(spec) = child(obj, "spec") {
                for item in items(spec, "limits") {
                    limit_range_item(item);
                }
            }
        }
        "Node" => node(obj),
        _ => {}
    }
}

/// Selector and labels default to the template's labels; replicas to 1 (`+default=1`).
fn replication_controller(obj: &mut Map) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned();
    default_ptr(spec, "replicas", json!(1));
    if let Some(template) = child(spec, "template") {
        pod::template(template);
    }
    let Some(labels) = labels else {
        return;
    };
    if is_unset_or_empty_map(spec, "selector") {
        spec.insert("selector".into(), Value::Object(labels.clone()));
    }
    if let Some(meta) = child(obj, "metadata")
        && is_unset_or_empty_map(meta, "labels")
    {
        meta.insert("labels".into(), Value::Object(labels));
    }
}

fn is_unset_or_empty_map(m: &Map, key: &str) -> bool {
    is_unset(m, key)
        || m.get(key)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
}

/// Every named namespace is labelled with its name (overwriting any other value); the
/// status phase starts `Active`.
fn namespace(obj: &mut Map) {
    let name = meta_str(obj, "name").to_string();
    if !name.is_empty()
        && let Some(labels) = child(obj, "metadata").and_then(|m| child_or_empty(m, "labels"))
    {
        labels.insert(NAMESPACE_NAME_LABEL.into(), Value::String(name));
    }
    if let Some(status) = child_or_empty(obj, "status") {
        default_str(status, "phase", "Active");
    }
}

fn persistent_volume(obj: &mut Map) {
    if let Some(spec) = child(obj, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_ptr(spec, "volumeMode", json!("Filesystem"));
        pod::volume_source(spec);
    }
    if let Some(status) = child_or_empty(obj, "status") {
        default_str(status, "phase", "Pending");
    }
}

/// For `type: Container`: the default limit falls back to `max`, the default request to the
/// default limit, then to `min`.
fn limit_range_item(item: &mut Map) {
    if str_of(item, "type") != "Container" {
        return;
    }
    fill_missing(item, "default", "max");
    fill_missing(item, "defaultRequest", "default");
    fill_missing(item, "defaultRequest", "min");
}

fn node(obj: &mut Map) {
    if let Some(status) = child(obj, "status")
        && is_unset(status, "allocatable")
        && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        status.insert("allocatable".into(), capacity);
    }
    // The v1 NodeSpec conversion: `podCIDR` wins when it disagrees with `podCIDRs[0]`, and
    // is always written back from the list.
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    if !matches!(
        spec.get("podCIDRs"),
        None | Some(Value::Null | Value::Array(_))
    ) {
        return;
    }
    let single = str_of(spec, "podCIDR").to_string();
    let first = spec
        .get("podCIDRs")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .and_then(Value::as_str)
        .map(String::from);
    if !single.is_empty() {
        if first.as_deref() != Some(single.as_str()) {
            spec.insert("podCIDRs".into(), json!([single]));
        }
    } else if let Some(first) = first
        && is_blank(spec, "podCIDR")
    {
        spec.insert("podCIDR".into(), Value::String(first));
    }
}
