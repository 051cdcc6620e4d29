//! Table-driven tests: realistic objects in, the rows kubectl would print out.

mod apps;
mod core;
mod custom;
mod negotiate;
mod other;
mod pod;

use std::sync::Arc;

use apimachinery::registry::{Registry, ResourceType};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Include, MetaVersion, Options, render, watch_row_table};

/// The fixed "now" of every test.
fn now() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("valid timestamp")
}

/// The RFC 3339 time `secs` seconds before [`now`].
fn ago(secs: i64) -> String {
    let t = now()
        .checked_sub(SignedDuration::from_secs(secs))
        .expect("in range");
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn rt(group: &str, version: &str, plural: &str) -> Arc<ResourceType> {
    Registry::builtin()
        .get(group, version, plural)
        .cloned()
        .unwrap_or_else(|| panic!("no resource {group}/{version}/{plural}"))
}

fn options(rv: &str) -> Options<'_> {
    Options {
        now: now(),
        ..Options::new(rv)
    }
}

/// The one row's cells for `obj` read through `group/version/plural`.
fn cells(group: &str, version: &str, plural: &str, obj: &Value) -> Vec<Value> {
    let table = render(&rt(group, version, plural), &[obj], &options("1"));
    table["rows"][0]["cells"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `(name, priority)` of each column.
fn columns(group: &str, version: &str, plural: &str) -> Vec<(String, u64)> {
    let table = render(&rt(group, version, plural), &[], &options("1"));
    table["columnDefinitions"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or("").to_string(),
                        c["priority"].as_u64().unwrap_or(9),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `(name, object, expected cells)` cases against one resource.
fn check_rows(group: &str, version: &str, plural: &str, cases: &[(&str, Value, Value)]) {
    for (name, obj, want) in cases {
        assert_eq!(
            Value::Array(cells(group, version, plural, obj)),
            *want,
            "case {name}"
        );
    }
}

#[test]
fn human_duration_matches_upstream_steps() {
    let s = 1_000_000_000i128;
    let cases = [
        (-2 * s, "<invalid>"),
        (-s + 1, "0s"),
        (0, "0s"),
        (119 * s, "119s"),
        (120 * s, "2m"),
        (182 * s, "3m2s"),
        (10 * 60 * s, "10m"),
        (179 * 60 * s, "179m"),
        (3 * 3600 * s, "3h"),
        (3 * 3600 * s + 5 * 60 * s, "3h5m"),
        (47 * 3600 * s, "47h"),
        (51 * 3600 * s, "2d3h"),
        (96 * 3600 * s, "4d"),
        (400 * 24 * 3600 * s, "400d"),
        (3 * 365 * 24 * 3600 * s, "3y"),
        ((3 * 365 + 12) * 24 * 3600 * s, "3y12d"),
        (9 * 365 * 24 * 3600 * s, "9y"),
    ];
    for (nanos, want) in cases {
        assert_eq!(super::cells::human_duration(nanos), want, "{nanos}");
    }
}

#[test]
fn list_table_has_type_meta_metadata_and_row_objects() {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default", "resourceVersion": "7",
                     "labels": {"app": "web"}, "creationTimestamp": ago(30)},
        "data": {"a": "1", "b": "2"},
    });
    let opts = Options {
        continue_token: Some("tok"),
        remaining_item_count: Some(4),
        ..options("42")
    };
    let table = render(&rt("", "v1", "configmaps"), &[&cm], &opts);
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        table["metadata"],
        json!({"resourceVersion": "42", "continue": "tok", "remainingItemCount": 4})
    );
    assert_eq!(
        table["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name",
               "description": super::cells::NAME_DOC, "priority": 0})
    );
    assert_eq!(table["rows"][0]["cells"], json!(["cfg", 2, "30s"]));
    assert_eq!(
        table["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
               "metadata": cm["metadata"]})
    );
}

#[test]
fn include_object_and_none() {
    let obj = json!({"metadata": {"name": "x", "namespace": "default"}, "data": {}});
    let rt = rt("", "v1", "configmaps");
    let full = Options {
        include: Include::Object,
        ..options("1")
    };
    let row = &render(&rt, &[&obj], &full)["rows"][0];
    assert_eq!(row["object"]["kind"], "ConfigMap");
    assert_eq!(row["object"]["apiVersion"], "v1");
    assert_eq!(row["object"]["data"], json!({}));
    let none = Options {
        include: Include::None,
        version: MetaVersion::V1Beta1,
        ..options("1")
    };
    let table = render(&rt, &[&obj], &none);
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(table["rows"][0]["object"], Value::Null);
}

#[test]
fn include_from_query() {
    assert_eq!(Include::from_query(None).ok(), Some(Include::Metadata));
    assert_eq!(Include::from_query(Some("")).ok(), Some(Include::Metadata));
    assert_eq!(
        Include::from_query(Some("Object")).ok(),
        Some(Include::Object)
    );
    assert_eq!(Include::from_query(Some("None")).ok(), Some(Include::None));
    let err = Include::from_query(Some("object")).expect_err("case-sensitive");
    assert_eq!(err.code(), 400);
    assert_eq!(
        err.message(),
        "Unable to convert to Table as requested: includeObject: Invalid value: \"object\": must be 'Metadata', 'Object', 'None', or empty"
    );
}

#[test]
fn empty_list_has_columns_and_no_rows() {
    let table = render(&rt("apps", "v1", "deployments"), &[], &options("5"));
    assert_eq!(table["rows"], json!([]));
    assert_eq!(table["columnDefinitions"].as_array().map(Vec::len), Some(8));
}

#[test]
fn watch_events_carry_headers_only_first() {
    let pod = json!({"metadata": {"name": "p", "namespace": "default", "resourceVersion": "9"},
                     "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}});
    let rt = rt("", "v1", "pods");
    let first = watch_row_table(&rt, &pod, Include::Metadata, true);
    assert_eq!(first["metadata"], json!({"resourceVersion": "9"}));
    assert_eq!(first["columnDefinitions"].as_array().map(Vec::len), Some(9));
    assert_eq!(first["rows"].as_array().map(Vec::len), Some(1));
    let later = watch_row_table(&rt, &pod, Include::Metadata, false);
    assert_eq!(later["columnDefinitions"], Value::Null);
    assert_eq!(later["rows"][0]["cells"][2], "Pending");
}

#[test]
fn kinds_without_printer_get_name_and_created_at() {
    let role = json!({"metadata": {"name": "reader", "creationTimestamp": "2024-03-04T05:06:07Z"}});
    assert_eq!(
        columns("rbac.authorization.k8s.io", "v1", "roles"),
        [("Name".to_string(), 0), ("Created At".to_string(), 0)]
    );
    let table = render(
        &rt("rbac.authorization.k8s.io", "v1", "roles"),
        &[&role],
        &options("1"),
    );
    assert_eq!(table["columnDefinitions"][1]["type"], "date");
    assert_eq!(
        table["rows"][0]["cells"],
        json!(["reader", "2024-03-04T05:06:07Z"])
    );
    let crd = json!({"metadata": {"name": "widgets.example.com"}});
    assert_eq!(
        cells(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            &crd
        ),
        [json!("widgets.example.com"), json!("0001-01-01T00:00:00Z")]
    );
    assert_eq!(columns("", "v1", "limitranges").len(), 2);
}

#[test]
fn scale_subresource_prints_as_scale() {
    let scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                       "metadata": {"name": "web", "creationTimestamp": ago(60)},
                       "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}});
    let table = render(&rt("apps", "v1", "deployments"), &[&scale], &options("1"));
    assert_eq!(table["rows"][0]["cells"], json!(["web", 3, 2, "60s"]));
    assert_eq!(table["columnDefinitions"][0]["format"], "");
}

#[test]
fn partial_object_metadata_list_shape() {
    let a = json!({"metadata": {"name": "a"}, "spec": {}});
    let list = super::partial_object_metadata_list(&[&a], MetaVersion::V1, "3", None);
    assert_eq!(
        list,
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
               "metadata": {"resourceVersion": "3"},
               "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                          "metadata": {"name": "a"}}]})
    );
}
