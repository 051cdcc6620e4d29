//! Objects every cluster has from its first start: the four system namespaces.

use apimachinery::registry::Registry;
use serde_json::json;
use store::Store;

use crate::{objects, rest::write, strategy};

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
        let _ = objects::name(&ns);
        match store.create(&key, write::encode(&ns)).await {
            Ok(_) | Err(store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
