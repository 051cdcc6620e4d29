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
    let mut ep = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}]}],
    });
    let ep_key = ep_rt.storage_key(Some("default"), "kubernetes");
    match store.get(&ep_key).await? {
        None => {
            strategy::prepare_for_create(ep_rt, &mut ep);
            match store.create(&ep_key, write::encode(&ep)).await {
                Ok(_) | Err(store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Some(kv) => {
            let mut current: serde_json::Value =
                serde_json::from_slice(&kv.value).unwrap_or_default();
            if current["subsets"] != ep["subsets"] {
                current["subsets"] = ep["subsets"].take();
                match store
                    .update(&ep_key, write::encode(&current), kv.mod_revision)
                    .await
                {
                    Ok(_) | Err(store::Error::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}
