use serde_json::{Value, json};

use super::*;

fn pod_labels() -> FieldLabels {
    FieldLabels::for_kind("", "Pod")
}

fn crontab(namespaced: bool) -> FieldLabels {
    FieldLabels::custom(
        "stable.example.com",
        "v1",
        "CronTab",
        namespaced,
        &[".spec.size".to_string()],
    )
}

#[test]
fn parses_and_renders_canonically() {
    let cases = [
        ("", ""),
        ("metadata.name=x", "metadata.name=x"),
        ("metadata.name==x", "metadata.name=x"),
        ("spec.nodeName!=", "spec.nodeName!="),
        (
            "status.phase=Running,spec.nodeName=n1",
            "spec.nodeName=n1,status.phase=Running",
        ),
        ("spec.host=n1", "spec.nodeName=n1"),
        (
            "metadata.name=a,,metadata.namespace=b",
            "metadata.name=a,metadata.namespace=b",
        ),
        (r"metadata.name=a\,b\=c\\d", r"metadata.name=a\,b\=c\\d"),
        ("metadata.name= x", "metadata.name= x"),
    ];
    for (input, want) in cases {
        let sel =
            FieldSelector::parse(pod_labels(), input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
    }
    let sel = parse("", "Pod", r"metadata.name=a\,b\=c\\d").expect("valid");
    assert_eq!(sel.requirements()[0].value, r"a,b=c\d");
    assert!(parse("", "Pod", "").expect("valid").is_empty());
}

#[test]
fn errors_use_upstream_text() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "",
            "Pod",
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        (
            "",
            "Pod",
            "x=1,y",
            "invalid selector: 'x=1,y'; can't understand 'y'",
        ),
        (
            "",
            "Pod",
            "foo=bar,zzz",
            "invalid selector: 'foo=bar,zzz'; can't understand 'zzz'",
        ),
        (
            "",
            "Pod",
            "metadata.name=a=b",
            "invalid field selector: unescaped character in value: 61",
        ),
        (
            "",
            "Pod",
            r"metadata.name=a\b",
            r"invalid field selector: invalid escape sequence: \b",
        ),
        (
            "",
            "Pod",
            r"metadata.name=a\",
            r"invalid field selector: invalid escape sequence: \",
        ),
        ("", "Pod", "foo=bar", "field label not supported: foo"),
        ("", "Pod", "zzz=1,foo=bar", "field label not supported: foo"),
        (
            "",
            "Pod",
            "metadata.name = x",
            "field label not supported: metadata.name ",
        ),
        (
            "",
            "Node",
            "metadata.namespace=x",
            "field label not supported: metadata.namespace",
        ),
        (
            "",
            "Namespace",
            "metadata.namespace=x",
            "field label not supported: metadata.namespace",
        ),
        ("", "Secret", "data=x", "field label not supported: data"),
        (
            "",
            "Event",
            "regarding.name=x",
            "field label not supported: regarding.name",
        ),
        (
            "events.k8s.io",
            "Event",
            "involvedObject.name=x",
            "field label not supported: involvedObject.name",
        ),
        (
            "batch",
            "Job",
            "status.active=1",
            "field label \"status.active\" not supported for batchv1.Job",
        ),
        (
            "apps",
            "ReplicaSet",
            "status.replicas=1",
            "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ),
        (
            "apps",
            "StatefulSet",
            "status.successful=1",
            "\"status.successful\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ),
    ];
    for (group, kind, input, want) in cases {
        let err = parse(group, kind, input).expect_err(input);
        assert_eq!(err.to_string(), *want, "{kind} {input:?}");
        let api: ApiError = err.into();
        assert_eq!(
            (api.code(), api.reason(), api.message()),
            (400, "BadRequest", *want)
        );
    }
}

#[test]
fn custom_resources_accept_their_selectable_fields() {
    let namespaced = crontab(true);
    for input in [
        "metadata.name=a",
        "metadata.namespace=b",
        "spec.size=3",
        ".spec.size=3",
    ] {
        FieldSelector::parse(namespaced.clone(), input)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"));
    }
    let cases = [
        (
            true,
            "spec.color=red",
            "field label not supported for stable.example.com/v1, Kind=CronTab: spec.color",
        ),
        (
            false,
            "metadata.namespace=b",
            "field label not supported for stable.example.com/v1, Kind=CronTab: metadata.namespace",
        ),
    ];
    for (ns, input, want) in cases {
        let err = FieldSelector::parse(crontab(ns), input).expect_err(input);
        assert_eq!(err.to_string(), want);
    }
}

fn pod(node: Option<&str>) -> Value {
    let mut spec = json!({"restartPolicy": "Always", "schedulerName": "default-scheduler"});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}
    })
}

/// Group, kind, selector, object, and whether the selector matches the object.
type MatchCase<'a> = (&'a str, &'a str, &'a str, &'a Value, bool);

#[test]
fn matches_objects_like_upstream_field_sets() {
    let scheduled = pod(Some("n1"));
    let pending = pod(None);
    let event = json!({"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"kind": "Pod", "name": "web"}, "reportingComponent": "ctrl", "type": "Normal"});
    let kubelet_event = json!({"source": {"component": "kubelet"}, "reportingComponent": "ctrl"});
    let new_event = json!({"regarding": {"kind": "Pod", "name": "web"}, "reportingController": "ctrl", "reason": "Started"});
    let cases: &[MatchCase] = &[
        ("", "Pod", "spec.nodeName=n1", &scheduled, true),
        ("", "Pod", "spec.host=n1", &scheduled, true),
        ("", "Pod", "spec.nodeName!=", &scheduled, true),
        ("", "Pod", "spec.nodeName=", &scheduled, false),
        ("", "Pod", "spec.nodeName=", &pending, true),
        ("", "Pod", "spec.hostNetwork=false", &scheduled, true),
        ("", "Pod", "spec.hostNetwork=true", &scheduled, false),
        ("", "Pod", "status.podIP=10.0.0.1", &scheduled, true),
        // Accepted, but upstream's field set has no status.podIPs: it always reads as "".
        ("", "Pod", "status.podIPs=10.0.0.1", &scheduled, false),
        ("", "Pod", "status.podIPs=", &scheduled, true),
        (
            "",
            "Pod",
            "metadata.name=web,metadata.namespace=default,status.phase=Running",
            &scheduled,
            true,
        ),
        (
            "",
            "Pod",
            "metadata.name=web,status.phase!=Running",
            &scheduled,
            false,
        ),
        ("", "Pod", "spec.serviceAccountName=", &scheduled, true),
        (
            "",
            "Node",
            "spec.unschedulable=false",
            &json!({"spec": {}}),
            true,
        ),
        (
            "",
            "Node",
            "spec.unschedulable=true",
            &json!({"spec": {"unschedulable": true}}),
            true,
        ),
        (
            "",
            "ReplicationController",
            "status.replicas=0",
            &json!({"spec": {}}),
            true,
        ),
        (
            "",
            "ReplicationController",
            "status.replicas=3",
            &json!({"status": {"replicas": 3}}),
            true,
        ),
        (
            "batch",
            "Job",
            "status.successful=2",
            &json!({"status": {"succeeded": 2}}),
            true,
        ),
        (
            "",
            "Secret",
            "type=Opaque",
            &json!({"type": "Opaque"}),
            true,
        ),
        (
            "",
            "Service",
            "spec.type=ClusterIP",
            &json!({"spec": {"type": "ClusterIP"}}),
            true,
        ),
        (
            "",
            "Event",
            "involvedObject.kind=Pod,involvedObject.name=web,type=Normal",
            &event,
            true,
        ),
        ("", "Event", "source=ctrl", &event, true),
        ("", "Event", "source=kubelet", &kubelet_event, true),
        (
            "events.k8s.io",
            "Event",
            "regarding.kind=Pod,regarding.name=web,reason=Started",
            &new_event,
            true,
        ),
        (
            "events.k8s.io",
            "Event",
            "reportingController=ctrl,source=ctrl",
            &new_event,
            true,
        ),
        (
            "apps",
            "ReplicaSet",
            "metadata.namespace=default",
            &json!({"metadata": {"namespace": "default"}}),
            true,
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "metadata.namespace=",
            &json!({"metadata": {"name": "x"}}),
            true,
        ),
    ];
    for (group, kind, input, object, want) in cases {
        let sel = parse(group, kind, input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.matches(object), *want, "{kind} {input:?}");
    }
    let sized = FieldSelector::parse(crontab(true), ".spec.size=3").expect("valid");
    assert!(sized.matches(&json!({"spec": {"size": 3}})));
    assert!(!sized.matches(&json!({"spec": {}})));
}

#[test]
fn exact_match_introspection() {
    let sel = parse(
        "",
        "Pod",
        "metadata.name!=a,metadata.name=b,spec.nodeName=n",
    )
    .expect("valid");
    assert_eq!(sel.requires_exact_match("metadata.name"), Some("b"));
    assert_eq!(sel.requires_exact_match("spec.nodeName"), Some("n"));
    assert_eq!(sel.requires_exact_match("metadata.namespace"), None);
    // Aliases pin the canonical field.
    let sel = parse("", "Pod", "spec.host=n").expect("valid");
    assert_eq!(sel.requires_exact_match("spec.nodeName"), Some("n"));
}

#[test]
fn escape_round_trips() {
    for value in ["plain", r"a,b=c\d", "", "=,\\"] {
        let sel = parse("", "Pod", &format!("metadata.name={}", escape_value(value))).expect(value);
        assert_eq!(sel.requirements()[0].value, value);
    }
}
