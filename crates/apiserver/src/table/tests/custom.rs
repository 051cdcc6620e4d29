use apimachinery::registry::ResourceType;
use serde_json::{Value, json};

use super::{ago, options};
use crate::table::custom::go_print;
use crate::table::jsonpath::JsonPath;
use crate::table::{Options, render};

fn widget_rt() -> ResourceType {
    ResourceType {
        group: "example.com".into(),
        version: "v1".into(),
        kind: "Widget".into(),
        list_kind: "WidgetList".into(),
        plural: "widgets".into(),
        singular: "widget".into(),
        namespaced: true,
        short_names: vec![],
        categories: vec![],
        verbs: vec![],
        subresources: vec![],
        tracks_generation: true,
        typed: None,
        custom_schema: None,
        printer_columns: None,
    }
}

fn widget() -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": "w1", "namespace": "default", "creationTimestamp": ago(90)},
           "spec": {"replicas": 3, "size": 2.5, "enabled": true, "tags": ["a", "b"],
                    "config": {"b": 1, "a": "x"}, "owner": null},
           "status": {"conditions": [{"type": "Synced", "status": "False"},
                                     {"type": "Ready", "status": "True", "lastTransitionTime": ago(300)}]}})
}

#[test]
fn default_columns_are_name_and_age() {
    let table = render(&widget_rt(), &[&widget()], &options("3"));
    assert_eq!(
        table["columnDefinitions"].as_array().map(|c| c
            .iter()
            .map(|d| (d["name"].clone(), d["type"].clone()))
            .collect::<Vec<_>>()),
        Some(vec![
            (json!("Name"), json!("string")),
            (json!("Age"), json!("date"))
        ])
    );
    assert_eq!(table["rows"][0]["cells"], json!(["w1", "90s"]));
    let empty = json!([]);
    let opts = Options {
        printer_columns: Some(&empty),
        ..options("3")
    };
    assert_eq!(
        render(&widget_rt(), &[&widget()], &opts)["rows"][0]["cells"],
        json!(["w1", "90s"])
    );
}

#[test]
fn printer_columns_typed_cells() {
    let columns = json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Size", "type": "number", "jsonPath": ".spec.size", "priority": 1, "description": "how big"},
        {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
        {"name": "Since", "type": "date", "jsonPath": ".status.conditions[?(@.type=='Ready')].lastTransitionTime"},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags"},
        {"name": "Config", "type": "string", "jsonPath": ".spec.config"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "Mistyped", "type": "integer", "jsonPath": ".spec.tags"},
        {"name": "Replicas As Text", "type": "string", "format": "int32", "jsonPath": ".spec.replicas"},
    ]);
    let opts = Options {
        printer_columns: Some(&columns),
        ..options("3")
    };
    let table = render(&widget_rt(), &[&widget()], &opts);
    assert_eq!(
        table["rows"][0]["cells"],
        json!([
            "w1",
            3,
            2.5,
            true,
            "True",
            "5m",
            "[\"a\",\"b\"]",
            "{\"a\":\"x\",\"b\":1}",
            null,
            null,
            "3"
        ])
    );
    let defs = &table["columnDefinitions"];
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(
        defs[1],
        json!({"name": "Replicas", "type": "integer", "format": "",
               "description": "Custom resource definition column (in JSONPath format): .spec.replicas",
               "priority": 0})
    );
    assert_eq!(defs[2]["priority"], 1);
    assert_eq!(defs[2]["description"], "how big");
    assert_eq!(defs[10]["format"], "int32");
}

#[test]
fn a_bad_path_drops_the_rest() {
    let columns = json!([
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Bad", "type": "string", "jsonPath": ".spec[unclosed"},
        {"name": "After", "type": "string", "jsonPath": ".spec.size"},
    ]);
    let opts = Options {
        printer_columns: Some(&columns),
        ..options("3")
    };
    let table = render(&widget_rt(), &[&widget()], &opts);
    assert_eq!(table["columnDefinitions"].as_array().map(Vec::len), Some(2));
    assert_eq!(table["rows"][0]["cells"], json!(["w1", 3]));
}

#[test]
fn jsonpath_forms() {
    let obj = json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"},
                                  "annotations": {"example.com/x": "y"}},
                     "items": [{"n": 1}, {"n": 2}, {"n": 3}],
                     "a": {"b": {"c": "deep"}}});
    let first = |p: &str| {
        JsonPath::parse(p)
            .ok()
            .and_then(|path| path.find(&obj).first().map(|v| (*v).clone()))
    };
    assert_eq!(
        first(".metadata.labels['app.kubernetes.io/name']"),
        Some(json!("web"))
    );
    assert_eq!(
        first(".metadata.annotations.example\\.com/x"),
        Some(json!("y"))
    );
    assert_eq!(first(".items[1].n"), Some(json!(2)));
    assert_eq!(first(".items[-1].n"), Some(json!(3)));
    assert_eq!(first(".items[*].n"), Some(json!(1)));
    assert_eq!(first(".items[?(@.n > 1)].n"), Some(json!(2)));
    assert_eq!(first("..c"), Some(json!("deep")));
    assert_eq!(first("{.a.b.c}"), Some(json!("deep")));
    assert_eq!(first(".missing.field"), None);
    assert!(JsonPath::parse("spec").is_err());
    assert!(JsonPath::parse(".items[").is_err());
}

#[test]
fn go_print_matches_fmt() {
    let cases = [
        (json!("s"), "s"),
        (json!(true), "true"),
        (json!(42), "42"),
        (json!(2.5), "2.5"),
        (json!(1.0), "1"),
        (json!(123456.0), "123456"),
        (json!(1000000.0), "1e+06"),
        (json!(1234567.5), "1.2345675e+06"),
        (json!(0.00001), "1e-05"),
        (json!(0.0001), "0.0001"),
        (Value::Null, "<no value>"),
        (json!({"b": [1, 2], "a": null}), "{\"a\":null,\"b\":[1,2]}"),
    ];
    for (v, want) in cases {
        assert_eq!(go_print(&v), want, "{v}");
    }
}
