//! The built-in Ingress controller: serves the Ingresses of IngressClass `rkube`
//! (networking.k8s.io/v1 semantics, ingress-nginx as the practical reference) as an HTTP
//! and HTTPS reverse proxy on the node, and reports the node's addresses in their status.
//!
//! # Layout
//! - `mod.rs`: class and controller names, [`ensure_class`], [`update_status`].
//! - `routes.rs`: [`Routes`], the immutable routing snapshot built from cached objects
//!   (class selection, host/path matching, backends resolved to ready endpoints).
//! - `tls.rs`: certificates from TLS Secrets chosen by SNI, the self-signed default.
//! - `proxy.rs`: [`serve`], the listeners and the HTTP/1.1 forwarding to pods.
//!
//! The nginx-specific annotations (`nginx.ingress.kubernetes.io/rewrite-target` and the
//! like) are ignored: paths reach the pod as the client sent them.

mod proxy;
mod routes;
mod tls;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::networking::v1::{
    Ingress, IngressClass, IngressClassSpec, IngressLoadBalancerIngress,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

pub use proxy::serve;
pub use routes::{
    DEFAULT_CLASS_ANNOTATION, LEGACY_CLASS_ANNOTATION, PortRef, Routes, Target, Upstream,
};
pub use tls::TlsError;

/// The IngressClass this controller creates and answers to.
pub const CLASS_NAME: &str = "rkube";
/// `spec.controller` of the IngressClasses served here.
pub const CONTROLLER: &str = "rkube.io/ingress";

/// Creates IngressClass `rkube` (annotation ingressclass.kubernetes.io/is-default-class: "true") if absent.
/// An existing class is left as it is (an admin may have made it non-default); losing a
/// create race to another node is success.
pub async fn ensure_class(client: &kube::Client) -> Result<(), kube::Error> {
    let api: Api<IngressClass> = Api::all(client.clone());
    if api.get_opt(CLASS_NAME).await?.is_some() {
        return Ok(());
    }
    let class = IngressClass {
        metadata: ObjectMeta {
            name: Some(CLASS_NAME.to_string()),
            annotations: Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_string(),
                "true".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(IngressClassSpec {
            controller: Some(CONTROLLER.to_string()),
            parameters: None,
        }),
    };
    match api.create(&PostParams::default(), &class).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets status.loadBalancer.ingress = [{ip}] for each address on the served Ingresses whose status differs.
/// Reads current status from the `routes` snapshot, so an up-to-date Ingress costs no
/// request; calling it again after a rebuild is idempotent. Stops at the first failure.
pub async fn update_status(
    client: &kube::Client,
    routes: &Routes,
    ips: &[Ipv4Addr],
) -> Result<(), kube::Error> {
    let want: Vec<IngressLoadBalancerIngress> = ips
        .iter()
        .map(|ip| IngressLoadBalancerIngress {
            ip: Some(ip.to_string()),
            ..IngressLoadBalancerIngress::default()
        })
        .collect();
    for (ns, name) in routes.stale_status(&want) {
        let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
        // A merge patch replaces the whole list, so stale addresses go too.
        let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": want } } });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => tracing::info!(ns, name, ?ips, "ingress status updated"),
            // Deleted since the snapshot: nothing to report on.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
