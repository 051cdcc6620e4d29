//! Tests of the Ingress controller: routing tables built from hand-made objects
//! (`routes.rs`) and the real listeners forwarding to in-test backends (`serve.rs`).

mod routes;
mod serve;

use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::json;

use super::{CLASS_NAME, CONTROLLER};

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).expect("test object"))
}

/// Our IngressClass, default or not.
fn our_class(default: bool) -> Arc<IngressClass> {
    let annotations = if default {
        json!({ "ingressclass.kubernetes.io/is-default-class": "true" })
    } else {
        json!({})
    };
    from_json(json!({
        "metadata": { "name": CLASS_NAME, "annotations": annotations },
        "spec": { "controller": CONTROLLER },
    }))
}

fn other_class(name: &str) -> Arc<IngressClass> {
    from_json(json!({
        "metadata": { "name": name },
        "spec": { "controller": "k8s.io/ingress-nginx" },
    }))
}

/// An Ingress in `ns` with the given spec; `created` orders conflicting Ingresses.
fn ingress(ns: &str, name: &str, created: &str, spec: serde_json::Value) -> Arc<Ingress> {
    from_json(json!({
        "metadata": { "namespace": ns, "name": name, "creationTimestamp": created },
        "spec": spec,
    }))
}

/// A backend naming a Service port by number.
fn backend(service: &str, port: i32) -> serde_json::Value {
    json!({ "service": { "name": service, "port": { "number": port } } })
}

/// A Service with ports (name, port).
fn service(ns: &str, name: &str, ports: &[(Option<&str>, i32)]) -> Arc<Service> {
    let ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| match n {
            Some(n) => json!({ "name": n, "port": p }),
            None => json!({ "port": p }),
        })
        .collect();
    from_json(json!({
        "metadata": { "namespace": ns, "name": name },
        "spec": { "ports": ports },
    }))
}

/// An EndpointSlice of `svc` with endpoints (address, ready) and ports (name, target port).
fn slice(
    ns: &str,
    svc: &str,
    endpoints: &[(&str, bool)],
    ports: &[(Option<&str>, i32)],
) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|(a, ready)| json!({ "addresses": [a], "conditions": { "ready": ready } }))
        .collect();
    let ports: Vec<_> = ports
        .iter()
        .map(|(n, p)| match n {
            Some(n) => json!({ "name": n, "port": p, "protocol": "TCP" }),
            None => json!({ "port": p, "protocol": "TCP" }),
        })
        .collect();
    from_json(json!({
        "metadata": {
            "namespace": ns,
            "name": format!("{svc}-abcde"),
            "labels": { "kubernetes.io/service-name": svc },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }))
}

/// A `kubernetes.io/tls` Secret.
fn tls_secret(ns: &str, name: &str, crt: &[u8], key: &[u8]) -> Arc<Secret> {
    let mut s: Secret = serde_json::from_value(json!({
        "metadata": { "namespace": ns, "name": name },
        "type": "kubernetes.io/tls",
    }))
    .expect("secret");
    s.data = Some(
        [
            ("tls.crt".to_string(), ByteString(crt.to_vec())),
            ("tls.key".to_string(), ByteString(key.to_vec())),
        ]
        .into(),
    );
    Arc::new(s)
}
