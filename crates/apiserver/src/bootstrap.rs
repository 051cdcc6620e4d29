//! Objects every cluster has from its first start: the four system namespaces and the
//! `kubernetes` Service.

use apimachinery::registry::Registry;
use serde_json::json;
use store::Store;

use crate::{rest::write, strategy};

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces that do not exist yet. Idempotent; safe to race with
/// another API server doing the same (one create wins, the other sees AlreadyExists).
pub async fn ensure_namespaces(registry: &Registry, store: &dyn Store) -> store::Result<()> {
    let Some(rt) = registry.get("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let key = rt.storage_key(None, name);
        if store.get(&key).await?.is_some() {
            continue;
        }
        let mut ns = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        });
        strategy::prepare_for_create(rt, &mut ns);
        match store.create(&key, write::encode(&ns)).await {
            Ok(_) | Err(store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates the `kubernetes` Service in `default` (cluster IP 10.43.0.1, port 443 → the API
/// server's port) and its Endpoints, as upstream's apiserver does at start; keeps the
/// Endpoints pointing at this server's address.
pub async fn ensure_kubernetes_service(
    registry: &Registry,
    store: &dyn Store,
    addr: std::net::SocketAddr,
) -> store::Result<()> {
    let (Some(svc_rt), Some(ep_rt)) = (
        registry.get("", "v1", "services"),
        registry.get("", "v1", "endpoints"),
    ) else {
        return Ok(());
    };
    let key = svc_rt.storage_key(Some("default"), "kubernetes");
    if store.get(&key).await?.is_none() {
        let ip = crate::allocator::KUBERNETES_SERVICE_IP.to_string();
        let mut svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": addr.port()}],
            },
        });
        strategy::prepare_for_create(svc_rt, &mut svc);
        // The IP is claimed first, so a racing server cannot hand it to another Service.
        let claimed = crate::allocator::allocate(store, &mut svc, None).await;
        if claimed.is_ok() {
            match store.create(&key, write::encode(&svc)).await {
                Ok(_) | Err(store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    };
    let ep = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}]}],
    });
    keep(store, ep_rt, ep, "subsets").await?;
    // Service proxies read EndpointSlices, so the API server keeps one too (as upstream's
    // endpoint reconciler does).
    if let Some(slice_rt) = registry.get("discovery.k8s.io", "v1", "endpointslices") {
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}],
        });
        keep(store, slice_rt, slice, "endpoints").await?;
    }
    Ok(())
}

/// Creates `obj` (in `default`) or, when it exists, sets its `field` to `obj`'s. Losing a
/// race to another server is fine: it writes the same.
async fn keep(
    store: &dyn Store,
    rt: &apimachinery::registry::ResourceType,
    mut obj: serde_json::Value,
    field: &str,
) -> store::Result<()> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let key = rt.storage_key(Some("default"), &name);
    match store.get(&key).await? {
        None => {
            strategy::prepare_for_create(rt, &mut obj);
            match store.create(&key, write::encode(&obj)).await {
                Ok(_) | Err(store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Some(kv) => {
            let mut current: serde_json::Value =
                serde_json::from_slice(&kv.value).unwrap_or_default();
            if current[field] == obj[field] {
                return Ok(());
            }
            current[field] = obj[field].take();
            match store
                .update(&key, write::encode(&current), kv.mod_revision)
                .await
            {
                Ok(_) | Err(store::Error::Conflict { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}
