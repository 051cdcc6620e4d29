use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::ingress::{PortRef, Routes, Target};

const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-02T00:00:00Z";

/// The Service name a request is routed to, or None for a 404.
fn routed(routes: &Routes, host: &str, path: &str) -> Option<String> {
    routes.route(host, path).map(|u| match u.target() {
        Target::Service { name, .. } => name.clone(),
        Target::Resource { kind, name, .. } => format!("{kind}/{name}"),
    })
}

fn build(ingresses: &[Arc<Ingress>]) -> Routes {
    Routes::build(&[our_class(true)], ingresses, &[], &[], &[])
}

/// The seed manifest (no class, served because `rkube` is the default class), with its
/// nginx rewrite annotation, which must not change the paths.
fn seed() -> Arc<Ingress> {
    from_json(json!({
        "metadata": {
            "namespace": "default",
            "name": "app-ingress",
            "annotations": { "nginx.ingress.kubernetes.io/rewrite-target": "/" },
        },
        "spec": { "rules": [{
            "host": "app.example.com",
            "http": { "paths": [
                { "path": "/api", "pathType": "Prefix", "backend": backend("api-service", 80) },
                { "path": "/", "pathType": "Prefix", "backend": backend("frontend-service", 80) },
            ]},
        }]},
    }))
}

#[test]
fn seed_ingress_routes_api_and_root() {
    let services = [
        service("default", "api-service", &[(None, 80)]),
        service("default", "frontend-service", &[(None, 80)]),
    ];
    let slices = [
        slice(
            "default",
            "api-service",
            &[("10.42.0.7", true)],
            &[(None, 8080)],
        ),
        slice(
            "default",
            "frontend-service",
            &[("10.42.0.8", true)],
            &[(None, 3000)],
        ),
    ];
    let routes = Routes::build(&[our_class(true)], &[seed()], &services, &slices, &[]);

    let api = routes
        .route("app.example.com", "/api/x")
        .expect("api route");
    assert_eq!(
        api.endpoints(),
        &["10.42.0.7:8080".parse::<SocketAddr>().expect("addr")]
    );
    assert_eq!(
        routed(&routes, "app.example.com", "/api").as_deref(),
        Some("api-service")
    );
    assert_eq!(
        routed(&routes, "app.example.com", "/api/").as_deref(),
        Some("api-service")
    );
    assert_eq!(
        routed(&routes, "app.example.com", "/apix").as_deref(),
        Some("frontend-service")
    );
    let root = routes.route("app.example.com", "/").expect("root route");
    assert_eq!(
        root.endpoints(),
        &["10.42.0.8:3000".parse::<SocketAddr>().expect("addr")]
    );
    // Host compared without port, case-insensitively.
    assert_eq!(
        routed(&routes, "APP.Example.com:8080", "/api/v1").as_deref(),
        Some("api-service")
    );
    assert_eq!(routed(&routes, "other.example.com", "/"), None);
    assert_eq!(
        routes.served(),
        vec![("default".to_string(), "app-ingress".to_string())]
    );
}

#[test]
fn wildcard_host_matches_exactly_one_label_and_exact_host_wins() {
    let routes = build(&[ingress(
        "ns",
        "web",
        T0,
        json!({ "rules": [
            { "host": "*.example.com", "http": { "paths": [
                { "path": "/", "pathType": "Prefix", "backend": backend("wild", 80) }]}},
            { "host": "www.example.com", "http": { "paths": [
                { "path": "/", "pathType": "Prefix", "backend": backend("www", 80) }]}},
        ]}),
    )]);
    assert_eq!(
        routed(&routes, "foo.example.com", "/").as_deref(),
        Some("wild")
    );
    assert_eq!(
        routed(&routes, "www.example.com", "/").as_deref(),
        Some("www")
    );
    assert_eq!(routed(&routes, "a.b.example.com", "/"), None);
    assert_eq!(routed(&routes, "example.com", "/"), None);
}

#[test]
fn rules_without_host_match_any_host_not_covered_by_a_host_rule() {
    let routes = build(&[ingress(
        "ns",
        "web",
        T0,
        json!({ "rules": [
            { "http": { "paths": [
                { "path": "/", "pathType": "Prefix", "backend": backend("anyhost", 80) }]}},
            { "host": "app.example.com", "http": { "paths": [
                { "path": "/api", "pathType": "Prefix", "backend": backend("api", 80) }]}},
        ]}),
    )]);
    assert_eq!(
        routed(&routes, "whatever.test", "/x").as_deref(),
        Some("anyhost")
    );
    assert_eq!(
        routed(&routes, "10.0.0.1:80", "/").as_deref(),
        Some("anyhost")
    );
    assert_eq!(routed(&routes, "", "/").as_deref(), Some("anyhost"));
    // A host with rules is its own server (ingress-nginx): no fall-through to host-less rules.
    assert_eq!(
        routed(&routes, "app.example.com", "/api/x").as_deref(),
        Some("api")
    );
    assert_eq!(routed(&routes, "app.example.com", "/other"), None);
}

#[test]
fn exact_beats_prefix_of_same_length_and_longest_path_wins() {
    let routes = build(&[ingress(
        "ns",
        "web",
        T0,
        json!({ "rules": [
            { "host": "h.test", "http": { "paths": [
                { "path": "/", "pathType": "Prefix", "backend": backend("root", 80) },
                { "path": "/foo/", "pathType": "Prefix", "backend": backend("foo-prefix", 80) },
                { "path": "/foo", "pathType": "Exact", "backend": backend("foo-exact", 80) },
                { "path": "/foo/bar", "pathType": "ImplementationSpecific", "backend": backend("foobar", 80) },
            ]}},
        ]}),
    )]);
    assert_eq!(
        routed(&routes, "h.test", "/foo").as_deref(),
        Some("foo-exact")
    );
    // Exact does not match a trailing slash; the Prefix `/foo/` (as `/foo`) does.
    assert_eq!(
        routed(&routes, "h.test", "/foo/").as_deref(),
        Some("foo-prefix")
    );
    assert_eq!(
        routed(&routes, "h.test", "/foo/baz").as_deref(),
        Some("foo-prefix")
    );
    // ImplementationSpecific behaves as Prefix, and the longer path wins.
    assert_eq!(
        routed(&routes, "h.test", "/foo/bar/1").as_deref(),
        Some("foobar")
    );
    assert_eq!(
        routed(&routes, "h.test", "/foo/barn").as_deref(),
        Some("foo-prefix")
    );
    assert_eq!(routed(&routes, "h.test", "/food").as_deref(), Some("root"));
}

#[test]
fn rules_for_one_host_merge_across_ingresses_and_the_oldest_wins_a_conflict() {
    let routes = build(&[
        ingress(
            "ns",
            "newer",
            T1,
            json!({ "rules": [
            { "host": "h.test", "http": { "paths": [
                { "path": "/a", "pathType": "Prefix", "backend": backend("a-new", 80) },
                { "path": "/b", "pathType": "Prefix", "backend": backend("b", 80) }]}}]}),
        ),
        ingress(
            "ns",
            "older",
            T0,
            json!({ "rules": [
            { "host": "h.test", "http": { "paths": [
                { "path": "/a", "pathType": "Prefix", "backend": backend("a-old", 80) }]}}]}),
        ),
    ]);
    assert_eq!(routed(&routes, "h.test", "/a").as_deref(), Some("a-old"));
    assert_eq!(routed(&routes, "h.test", "/b").as_deref(), Some("b"));
}

#[test]
fn default_backend_serves_unmatched_paths_and_unknown_hosts() {
    let routes = build(&[
        ingress(
            "ns",
            "with-rules",
            T0,
            json!({
                "defaultBackend": backend("host-default", 80),
                "rules": [{ "host": "h.test", "http": { "paths": [
                    { "path": "/app", "pathType": "Prefix", "backend": backend("app", 80) }]}}],
            }),
        ),
        ingress(
            "ns",
            "catch-all",
            T1,
            json!({ "defaultBackend": backend("catch-all", 80) }),
        ),
    ]);
    assert_eq!(routed(&routes, "h.test", "/app").as_deref(), Some("app"));
    assert_eq!(
        routed(&routes, "h.test", "/else").as_deref(),
        Some("host-default")
    );
    // An Ingress with only a default backend is the catch-all, even if newer.
    assert_eq!(
        routed(&routes, "unknown.test", "/").as_deref(),
        Some("catch-all")
    );

    // Without a rule-less Ingress, the oldest default backend catches unknown hosts.
    let routes = build(&[ingress(
        "ns",
        "with-rules",
        T0,
        json!({
            "defaultBackend": backend("host-default", 80),
            "rules": [{ "host": "h.test", "http": { "paths": [
                { "path": "/app", "pathType": "Prefix", "backend": backend("app", 80) }]}}],
        }),
    )]);
    assert_eq!(
        routed(&routes, "unknown.test", "/x").as_deref(),
        Some("host-default")
    );
}

#[test]
fn class_selection_by_name_legacy_annotation_and_default_class() {
    let rule = json!([{ "http": { "paths": [
        { "path": "/", "pathType": "Prefix", "backend": backend("s", 80) }]}}]);
    let legacy = |name: &str, class: &str| -> Arc<Ingress> {
        from_json(json!({
            "metadata": { "namespace": "ns", "name": name, "creationTimestamp": T0,
                "annotations": { "kubernetes.io/ingress.class": class } },
            "spec": { "rules": rule.clone() },
        }))
    };
    let ingresses = [
        ingress(
            "ns",
            "by-name",
            T0,
            json!({ "ingressClassName": "rkube", "rules": rule }),
        ),
        ingress(
            "ns",
            "other-class",
            T0,
            json!({ "ingressClassName": "nginx", "rules": rule }),
        ),
        ingress(
            "ns",
            "missing-class",
            T0,
            json!({ "ingressClassName": "gone", "rules": rule }),
        ),
        legacy("legacy-ours", "rkube"),
        legacy("legacy-nginx", "nginx"),
        ingress("ns", "no-class", T0, json!({ "rules": rule })),
    ];
    let served = |classes: &[Arc<IngressClass>]| -> Vec<String> {
        Routes::build(classes, &ingresses, &[], &[], &[])
            .served()
            .into_iter()
            .map(|(_, name)| name)
            .collect()
    };
    let classes = [our_class(true), other_class("nginx")];
    assert_eq!(served(&classes), ["by-name", "legacy-ours", "no-class"]);
    // Our class not default: Ingresses without any class belong to nobody here.
    let classes = [our_class(false), other_class("nginx")];
    assert_eq!(served(&classes), ["by-name", "legacy-ours"]);
}

#[test]
fn named_service_port_resolves_to_the_slice_target_port_of_ready_endpoints() {
    let services = [service(
        "ns",
        "web",
        &[(Some("metrics"), 9090), (Some("http"), 80)],
    )];
    let slices = [slice(
        "ns",
        "web",
        &[
            ("10.42.0.5", true),
            ("10.42.0.6", false),
            ("10.42.0.4", true),
        ],
        &[(Some("http"), 8080), (Some("metrics"), 9100)],
    )];
    let spec = |port: serde_json::Value| {
        json!({ "rules": [{ "host": "h.test", "http": { "paths": [
            { "path": "/", "pathType": "Prefix",
              "backend": { "service": { "name": "web", "port": port } } }]}}]})
    };
    let want: Vec<SocketAddr> = ["10.42.0.4:8080", "10.42.0.5:8080"]
        .iter()
        .map(|a| a.parse().expect("addr"))
        .collect();
    for port in [json!({ "name": "http" }), json!({ "number": 80 })] {
        let routes = Routes::build(
            &[our_class(true)],
            &[ingress("ns", "web", T0, spec(port.clone()))],
            &services,
            &slices,
            &[],
        );
        let up = routes.route("h.test", "/").expect("route");
        assert_eq!(up.endpoints(), want.as_slice(), "port {port}");
        // Round-robin over the ready endpoints.
        let picks: Vec<_> = (0..4).filter_map(|_| up.pick()).collect();
        assert_eq!(picks, [want[0], want[1], want[0], want[1]]);
    }
    let up = Routes::build(
        &[our_class(true)],
        &[ingress("ns", "web", T0, spec(json!({ "name": "http" })))],
        &services,
        &slices,
        &[],
    );
    let target = up.route("h.test", "/").expect("route").target().clone();
    assert_eq!(
        target,
        Target::Service {
            namespace: "ns".into(),
            name: "web".into(),
            port: PortRef::Name("http".into())
        }
    );
}

#[test]
fn backends_without_endpoints_route_but_pick_nothing() {
    let services = [service("ns", "down", &[(None, 80)])];
    let slices = [slice("ns", "down", &[("10.42.0.9", false)], &[(None, 80)])];
    let routes = Routes::build(
        &[our_class(true)],
        &[ingress(
            "ns",
            "web",
            T0,
            json!({ "rules": [{ "host": "h.test", "http": { "paths": [
                { "path": "/down", "pathType": "Prefix", "backend": backend("down", 80) },
                { "path": "/missing", "pathType": "Prefix", "backend": backend("no-such-service", 80) },
                { "path": "/wrong-port", "pathType": "Prefix", "backend": backend("down", 81) },
                { "path": "/bucket", "pathType": "Prefix", "backend": { "resource": {
                    "apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "assets" } } },
            ]}}]}),
        )],
        &services,
        &slices,
        &[],
    );
    for path in ["/down", "/missing", "/wrong-port", "/bucket"] {
        let up = routes.route("h.test", path).expect("route");
        assert_eq!(up.pick(), None, "{path}");
    }
    assert_eq!(
        routed(&routes, "h.test", "/bucket").as_deref(),
        Some("StorageBucket/assets")
    );
}

#[test]
fn tls_secret_certificate_is_chosen_by_host_and_bad_pem_is_skipped() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["secure.example.com".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let good = tls_secret(
        "ns",
        "good",
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    );
    let garbage = tls_secret(
        "ns",
        "garbage",
        b"-----BEGIN CERTIFICATE-----\n!!!",
        b"nope",
    );
    let other_key = rcgen::KeyPair::generate().expect("key");
    let mismatched = tls_secret(
        "ns",
        "mismatched",
        cert.pem().as_bytes(),
        other_key.serialize_pem().as_bytes(),
    );
    let routes = Routes::build(
        &[our_class(true)],
        &[ingress(
            "ns",
            "web",
            T0,
            json!({
                "tls": [
                    { "hosts": ["secure.example.com"], "secretName": "good" },
                    { "hosts": ["bad.example.com"], "secretName": "garbage" },
                    { "hosts": ["mismatch.example.com"], "secretName": "mismatched" },
                    { "hosts": ["absent.example.com"], "secretName": "absent" },
                ],
                "rules": [{ "host": "secure.example.com", "http": { "paths": [
                    { "path": "/", "pathType": "Prefix", "backend": backend("s", 80) }]}}],
            }),
        )],
        &[],
        &[],
        &[good, garbage, mismatched],
    );
    let chosen = routes
        .certificate("Secure.Example.com")
        .expect("certificate");
    assert_eq!(chosen.cert.first(), Some(cert.der()));
    for host in [
        "bad.example.com",
        "mismatch.example.com",
        "absent.example.com",
        "x.test",
    ] {
        assert!(routes.certificate(host).is_none(), "{host}");
    }
}
