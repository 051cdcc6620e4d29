use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::*;

/// What the registry's `normalize` hook does: decode into the typed struct and encode back.
fn round_trip<T: DeserializeOwned + Serialize>(body: &str) -> Value {
    let raw: Value = serde_json::from_str(body).expect("valid JSON");
    let typed: T = serde_json::from_value(raw).expect("decodes");
    serde_json::to_value(&typed).expect("encodes")
}

fn unknown(p: &str) -> Problem {
    Problem::UnknownField(p.to_string())
}

fn duplicate(p: &str) -> Problem {
    Problem::DuplicateField(p.to_string())
}

const DEPLOYMENT: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "labels": {"any.thing/at-all": "x"}},
  "spec": {
    "foo": 1,
    "replicas": null,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {"containers": [
        {"name": "a", "image": "nginx"},
        {"name": "b", "image": "nginx", "bar": {"nested": {"deeper": 1}}, "ports": [{"containerPort": 80, "baz": "x"}]}
      ]}
    },
    "paused": null,
    "qux": null
  },
  "status": {}
}"#;

#[test]
fn finds_unknown_fields_in_document_order() {
    let normalized = round_trip::<Deployment>(DEPLOYMENT);
    assert_eq!(
        find_problems(DEPLOYMENT.as_bytes(), &normalized),
        vec![
            unknown("spec.foo"),
            unknown("spec.template.spec.containers[1].bar"),
            unknown("spec.template.spec.containers[1].ports[0].baz"),
        ]
    );
}

#[test]
fn table_of_bodies() {
    let cases: Vec<(&str, &str, Vec<Problem>)> = vec![
        (
            "map keys are never unknown",
            r#"{"kind":"ConfigMap","data":{"a":"1","b.c/d":"2"}}"#,
            vec![],
        ),
        (
            "duplicate top-level key",
            r#"{"kind":"ConfigMap","kind":"ConfigMap"}"#,
            vec![duplicate("kind")],
        ),
        (
            "duplicate struct field",
            r#"{"kind":"ConfigMap","metadata":{"name":"a","name":"b"}}"#,
            vec![duplicate("metadata.name")],
        ),
        (
            "duplicate map key",
            r#"{"kind":"ConfigMap","data":{"k":"1","k":"2"}}"#,
            vec![duplicate("data.k")],
        ),
        (
            "interleaved in document order",
            r#"{"metadata":{"name":"a","foo":1,"name":"b"},"bar":2,"data":{"x":"1"},"data":{"y":"2"}}"#,
            vec![
                unknown("metadata.foo"),
                duplicate("metadata.name"),
                unknown("bar"),
                duplicate("data"),
            ],
        ),
        (
            "repeated unknown key reported once",
            r#"{"foo":1,"foo":2}"#,
            vec![unknown("foo")],
        ),
        (
            "nothing inside an unknown field",
            r#"{"foo":{"a":1,"a":2}}"#,
            vec![unknown("foo")],
        ),
        (
            "unknown null is not detectable",
            r#"{"foo":null,"metadata":{"name":null}}"#,
            vec![],
        ),
        (
            "known field duplicated with null last",
            r#"{"immutable":true,"immutable":null}"#,
            vec![duplicate("immutable")],
        ),
        (
            "earlier occurrence of a duplicate only checked for duplicates",
            r#"{"metadata":{"name":"a","name":"b","labels":{"x":"1"}},"metadata":{"name":"c","zzz":1}}"#,
            vec![
                duplicate("metadata.name"),
                duplicate("metadata"),
                unknown("metadata.zzz"),
            ],
        ),
        (
            "keys with escapes",
            r#"{"data":{"a\"b":"1","a\u0022b":"2"}}"#,
            vec![duplicate("data.a\"b")],
        ),
    ];
    for (name, body, want) in cases {
        let normalized = round_trip::<ConfigMap>(body);
        assert_eq!(find_problems(body.as_bytes(), &normalized), want, "{name}");
    }
}

#[test]
fn duplicates_inside_lists() {
    let body =
        r#"{"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y","name":"c"}]}}"#;
    let normalized = round_trip::<Pod>(body);
    assert_eq!(
        find_problems(body.as_bytes(), &normalized),
        vec![duplicate("spec.containers[1].name")]
    );
}

#[test]
fn duplicates_only_without_a_schema() {
    let body = br#"{"a":{"b":1,"b":2},"c":[{"d":1,"d":1}],"e":1}"#;
    assert_eq!(
        find_duplicates(body),
        vec![duplicate("a.b"), duplicate("c[0].d")]
    );
}

#[test]
fn malformed_or_hostile_input_yields_nothing() {
    let empty = Value::Object(Default::default());
    let deep = "[".repeat(100_000);
    let bodies: &[&[u8]] = &[
        b"",
        b"{",
        b"{\"a\":1}}",
        b"{\"a\":1} x",
        b"\xff\xfe",
        b"nul",
        deep.as_bytes(),
    ];
    for body in bodies {
        assert_eq!(
            find_problems(body, &empty),
            vec![],
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Scalars and arrays at the top are valid JSON, just nothing to report.
    assert_eq!(find_problems(b"[1,{\"a\":1}]", &empty), vec![]);
}

#[test]
fn keeps_at_most_one_hundred_problems() {
    let fields: Vec<String> = (0..150).map(|i| format!("\"f{i}\":1")).collect();
    let body = format!("{{{}}}", fields.join(","));
    let problems = find_problems(body.as_bytes(), &Value::Object(Default::default()));
    assert_eq!(problems.len(), 100);
    assert_eq!(problems[99], unknown("f99"));
}

#[test]
fn strict_error_matches_upstream() {
    let problems = [
        unknown("spec.foo"),
        unknown("spec.bar"),
        duplicate("metadata.name"),
    ];
    let err = strict_error("Deployment", "v1", "Deployment", &problems, b"{}");
    assert_eq!((err.code(), err.reason()), (400, "BadRequest"));
    assert_eq!(
        err.message(),
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: \
         unknown field \"spec.foo\", unknown field \"spec.bar\", duplicate field \"metadata.name\""
    );
}

#[test]
fn decode_error_without_kind_summarizes_body() {
    let cases: &[(&[u8], &str)] = &[
        (b"{\"foo\":1}", "({\"foo\":1})"),
        (
            b"{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
            "({\"aaaaaaaaaaaaaaaaaaaaaaaaaaaa ...)",
        ),
        (b"[1]", "(5b315d)"),
        (b"", "(<empty>)"),
    ];
    for (body, summary) in cases {
        let err = decode_error(
            "",
            "",
            "Pod",
            "strict decoding error: unknown field \"foo\"",
            body,
        );
        assert_eq!(
            err.message(),
            format!(
                "the object provided is unrecognized (must be of type Pod): strict decoding error: unknown field \"foo\" {summary}"
            )
        );
    }
}

#[test]
fn warnings_and_headers() {
    let problems = [unknown("spec.foo"), duplicate("data.a\"b")];
    let texts = warnings(&problems);
    assert_eq!(
        texts,
        vec![
            "unknown field \"spec.foo\"",
            "duplicate field \"data.a\\\"b\""
        ]
    );
    assert_eq!(
        warning_header(&texts[0]),
        r#"299 - "unknown field \"spec.foo\"""#
    );
    assert_eq!(
        warning_header(&texts[1]),
        r#"299 - "duplicate field \"data.a\\\"b\"""#
    );
}

#[test]
fn directive_parsing() {
    let ok = [
        (None, Directive::Warn),
        (Some(""), Directive::Warn),
        (Some("Warn"), Directive::Warn),
    ];
    for (value, want) in ok {
        assert_eq!(Directive::parse(value).expect("valid"), want);
    }
    assert_eq!(
        Directive::parse(Some("Strict")).expect("valid"),
        Directive::Strict
    );
    assert_eq!(
        Directive::parse(Some("Ignore")).expect("valid"),
        Directive::Ignore
    );
    let unsupported = Directive::parse(Some("strict")).expect_err("case-sensitive");
    assert_eq!(
        unsupported.to_string(),
        "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
    let err = unsupported.to_api_error("PatchOptions");
    assert_eq!((err.code(), err.reason()), (422, "Invalid"));
    assert_eq!(
        err.message(),
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"strict\": \
         supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
}
