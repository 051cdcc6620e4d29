//! Bodies captured from kubectl 1.33 (`testdata/*.pb`, one per generator command), decoded
//! and compared with the JSON the same command sends with `-o json`; plus hand-built
//! messages for the special JSON forms, and malformed input.

use serde_json::{Value, json};

use super::table::{MESSAGES, find};
use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("testdata/", $name, ".pb")).as_slice()
    };
}

const FIXTURES: &[&[u8]] = &[
    fixture!("cani"),
    fixture!("configmap"),
    fixture!("cronjob"),
    fixture!("deployment0"),
    fixture!("namespace"),
    fixture!("pdb"),
    fixture!("quota"),
    fixture!("role"),
    fixture!("secret"),
    fixture!("service"),
    fixture!("token"),
];

fn decoded(body: &[u8]) -> Value {
    decode(body).unwrap_or_else(|e| panic!("decoding failed: {e}"))
}

/// `metadata` as kubectl's generators send it (gogo writes the zero `generation`).
fn meta(name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({"name": name, "creationTimestamp": null, "generation": 0});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

#[test]
fn create_namespace() {
    let expected = json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": meta("foo", None),
        "spec": {}, "status": {},
    });
    assert_eq!(decoded(fixture!("namespace")), expected);
}

#[test]
fn create_configmap_and_secret_maps() {
    let cm = decoded(fixture!("configmap"));
    assert_eq!(cm["data"], json!({"a": "b", "c": "hello"}));
    assert_eq!(cm["metadata"], meta("cm1", Some("capns")));
    // map<string, bytes> → base64, as Secret `data` is in JSON.
    let secret = decoded(fixture!("secret"));
    assert_eq!(
        secret["data"],
        json!({"pw": "czNjcjN0", "user": "YWRtaW4="})
    );
    assert_eq!(secret["kind"], "Secret");
}

#[test]
fn create_deployment_keeps_explicit_zero_replicas() {
    let d = decoded(fixture!("deployment0"));
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web0"}})
    );
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "nginx");
    assert_eq!(container["image"], "nginx");
    assert_eq!(container["resources"], json!({}));
    // Empty non-pointer strings are absent, so defaulting fills them.
    assert!(container.get("imagePullPolicy").is_none());
    assert!(container.get("terminationMessagePath").is_none());
    assert!(d["spec"]["template"]["spec"].get("restartPolicy").is_none());
}

#[test]
fn create_service_int_or_string_target_port() {
    let s = decoded(fixture!("service"));
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["selector"], json!({"app": "s"}));
    let port = &s["spec"]["ports"][0];
    assert_eq!(port["name"], "80-8080");
    assert_eq!(port["port"], 80);
    assert_eq!(port["protocol"], "TCP");
    assert_eq!(port["targetPort"], 8080);
    assert_eq!(s["status"], json!({"loadBalancer": {}}));
    assert!(s["spec"].get("clusterIP").is_none());
}

#[test]
fn create_quota_and_pdb_quantities_and_percentages() {
    let q = decoded(fixture!("quota"));
    assert_eq!(
        q["spec"],
        json!({"hard": {"cpu": "1", "memory": "1Gi", "pods": "10"}})
    );
    let pdb = decoded(fixture!("pdb"));
    assert_eq!(pdb["spec"]["minAvailable"], "50%");
    assert_eq!(
        pdb["spec"]["selector"],
        json!({"matchLabels": {"app": "x"}})
    );
}

#[test]
fn create_role_repeated_strings_keep_empty_elements() {
    let r = decoded(fixture!("role"));
    assert_eq!(
        r["rules"],
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    );
}

#[test]
fn create_cronjob_nested_templates() {
    let c = decoded(fixture!("cronjob"));
    assert_eq!(c["spec"]["schedule"], "*/1 * * * *");
    let pod = &c["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["command"], json!(["date"]));
    assert_eq!(pod["restartPolicy"], "OnFailure");
}

#[test]
fn token_request_and_access_review() {
    let t = decoded(fixture!("token"));
    assert_eq!(t["kind"], "TokenRequest");
    // int64 is a JSON number; a required string stays even when empty, as Go encodes it.
    assert_eq!(t["spec"], json!({"expirationSeconds": 600}));
    assert_eq!(
        t["status"],
        json!({"expirationTimestamp": null, "token": ""})
    );
    let r = decoded(fixture!("cani"));
    assert_eq!(
        r["spec"]["resourceAttributes"],
        json!({"namespace": "capns", "resource": "pods", "verb": "get"})
    );
}

// --- hand-built messages ---------------------------------------------------------------

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn len_field(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(tag) << 3 | 2);
    out.extend(varint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

fn int_field(tag: u32, v: u64) -> Vec<u8> {
    let mut out = varint(u64::from(tag) << 3);
    out.extend(varint(v));
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [
        len_field(1, api_version.as_bytes()),
        len_field(2, kind.as_bytes()),
    ]
    .concat();
    [MAGIC, &len_field(1, &type_meta), &len_field(2, raw)].concat()
}

/// The tag of a field of a message, from the tables.
fn tag(message: &str, field: &str) -> u32 {
    let m = &MESSAGES[find(&message.to_lowercase()).unwrap_or_else(|| panic!("{message}"))];
    m.fields
        .iter()
        .find(|f| f.name == field)
        .unwrap_or_else(|| panic!("{message}.{field}"))
        .tag
}

#[test]
fn times_int_or_string_and_raw_extensions() {
    // core/v1 Event: firstTimestamp (Time), eventTime (MicroTime), count (int32).
    let time = [int_field(1, 1_700_000_000), int_field(2, 500_000_000)].concat();
    let raw = [
        len_field(tag("api.core.v1.Event", "first_timestamp"), &time),
        len_field(tag("api.core.v1.Event", "event_time"), &time),
        len_field(tag("api.core.v1.Event", "last_timestamp"), &[]),
        int_field(tag("api.core.v1.Event", "count"), u64::MAX), // -1, sign-extended
    ]
    .concat();
    let e = decoded(&envelope("v1", "Event", &raw));
    assert_eq!(e["firstTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(e["eventTime"], "2023-11-14T22:13:20.500000Z");
    assert_eq!(e["lastTimestamp"], Value::Null);
    assert_eq!(e["count"], -1);

    // apps/v1 ControllerRevision: data is a RawExtension holding JSON.
    let data = len_field(1, br#"{"spec":{"x":[1,2]}}"#);
    let raw = [
        len_field(tag("api.apps.v1.ControllerRevision", "data"), &data),
        int_field(tag("api.apps.v1.ControllerRevision", "revision"), 3),
    ]
    .concat();
    let r = decoded(&envelope("apps/v1", "ControllerRevision", &raw));
    assert_eq!(r["data"], json!({"spec": {"x": [1, 2]}}));
    assert_eq!(r["revision"], 3);

    // IntOrString: type 0 → intVal, type 1 → strVal.
    let int = [int_field(1, 0), int_field(2, 8080)].concat();
    let string = [int_field(1, 1), len_field(3, b"http")].concat();
    let port = |target: &[u8]| {
        len_field(
            tag("api.core.v1.ServiceSpec", "ports"),
            &len_field(tag("api.core.v1.ServicePort", "target_port"), target),
        )
    };
    let spec = [port(&int), port(&string)].concat();
    let svc = decoded(&envelope("v1", "Service", &len_field(2, &spec)));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"targetPort": 8080}, {"targetPort": "http"}])
    );
}

#[test]
fn packed_and_unpacked_repeated_scalars_and_inlined_structs() {
    let groups = tag("api.core.v1.PodSecurityContext", "supplemental_groups");
    let packed = [varint(1), varint(2)].concat();
    let sc = [len_field(groups, &packed), int_field(groups, 3)].concat();
    let spec = len_field(tag("api.core.v1.PodSpec", "security_context"), &sc);
    // A Volume's source is Go-inlined: `{"name": …, "emptyDir": {}}`, no `volumeSource`.
    let source = len_field(tag("api.core.v1.VolumeSource", "empty_dir"), &[]);
    let volume = [
        len_field(1, b"scratch"),
        len_field(tag("api.core.v1.Volume", "volume_source"), &source),
    ]
    .concat();
    let spec = [
        spec,
        len_field(tag("api.core.v1.PodSpec", "volumes"), &volume),
    ]
    .concat();
    // An unknown field (a newer client) is skipped.
    let spec = [spec, len_field(9999, b"future")].concat();
    let pod = decoded(&envelope("v1", "Pod", &len_field(2, &spec)));
    assert_eq!(
        pod["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 2, 3])
    );
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "scratch", "emptyDir": {}}])
    );
}

#[test]
fn envelope_errors() {
    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(DecodeError::NotProtobuf)
    ));
    assert!(matches!(decode(MAGIC), Err(DecodeError::MissingKind)));
    assert!(matches!(
        decode(&envelope("example.com/v1", "Widget", &[])),
        Err(DecodeError::UnknownKind { .. })
    ));
    let gzip = [envelope("v1", "Pod", &[]), len_field(3, b"gzip")].concat();
    assert!(matches!(
        decode(&gzip),
        Err(DecodeError::ContentEncoding(_))
    ));
    // A string field sent as a varint.
    let bad = envelope(
        "v1",
        "ConfigMap",
        &int_field(tag("api.core.v1.ConfigMap", "data"), 1),
    );
    let err = decode(&bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("api.core.v1.ConfigMap.data"), "{err}");
}

#[test]
fn nesting_is_bounded() {
    let props = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
    let not = tag(props, "not");
    let mut schema = Vec::new();
    for _ in 0..500 {
        schema = len_field(not, &schema);
    }
    let index = find(&props.to_lowercase()).unwrap_or_default();
    assert!(matches!(
        convert::message(index, &schema, 0),
        Err(DecodeError::TooDeep)
    ));
}

#[test]
fn truncated_or_corrupted_bodies_never_panic() {
    for body in FIXTURES {
        for len in 0..body.len() {
            let _ = decode(&body[..len]);
        }
        for i in 4..body.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut b = body.to_vec();
                b[i] ^= flip;
                let _ = decode(&b);
            }
        }
    }
    // Pseudo-random garbage after the prefix (xorshift: deterministic, no dependency).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let mut b = MAGIC.to_vec();
        for _ in 0..(state % 64) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b.push(state as u8);
        }
        let _ = decode(&b);
    }
}

#[test]
fn truncated_fixtures_are_errors() {
    for body in FIXTURES {
        // Cutting inside the envelope's length-delimited `raw` can never frame.
        assert!(decode(&body[..body.len() - 3]).is_err());
    }
}
