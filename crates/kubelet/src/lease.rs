//! Node Leases in `kube-node-lease`: the heartbeat the node lifecycle controller reads
//! (upstream's `component-helpers/apimachinery/lease` controller as the kubelet uses it).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::api;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating the node lease")]
    Create(#[source] kube::Error),
    #[error("renewing the node lease")]
    Renew(#[source] kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where node leases live.
pub const NAMESPACE: &str = "kube-node-lease";

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// The Lease of node `name`: held by the node, owned by its Node object so that it goes
/// when the Node does.
pub fn build(name: &str, node_uid: &str, duration: Duration, now: Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NAMESPACE.to_string()),
            owner_references: Some(vec![owner(name, node_uid)]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_string()),
            lease_duration_seconds: Some(seconds(duration)),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

fn owner(name: &str, node_uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: name.to_string(),
        uid: node_uid.to_string(),
        ..Default::default()
    }
}

/// Creates the lease of a newly registered node, or takes over an existing one (a
/// restarted node, or a Node recreated under the same name: the owner is replaced).
pub async fn ensure(
    client: &kube::Client,
    name: &str,
    node_uid: &str,
    duration: Duration,
) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let lease = build(name, node_uid, duration, Timestamp::now());
    let post = PostParams::default();
    match api::retry(|| leases.create(&post, &lease)).await {
        Ok(_) => Ok(()),
        Err(e) if api::is_already_exists(&e) => {
            let patch = json!({
                "metadata": {"ownerReferences": [owner(name, node_uid)]},
                "spec": lease.spec,
            });
            let (pp, patch) = (PatchParams::default(), Patch::Merge(&patch));
            api::retry(|| leases.patch(name, &pp, &patch))
                .await
                .map(drop)
                .map_err(Error::Create)
        }
        Err(e) => Err(Error::Create(e)),
    }
}

/// Moves `renewTime` to now. A merge patch, not upstream's read-modify-write update: the
/// node is the only writer, so there is nothing to guard and one request instead of two
/// on a conflict. A lease someone deleted is created again, as upstream does.
pub async fn renew(
    client: &kube::Client,
    name: &str,
    node_uid: &str,
    duration: Duration,
) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = json!({"spec": {
        "holderIdentity": name,
        "leaseDurationSeconds": seconds(duration),
        "renewTime": MicroTime(Timestamp::now()),
    }});
    match leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if api::is_not_found(&e) => ensure(client, name, node_uid, duration).await,
        Err(e) => Err(Error::Renew(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_held_and_owned_by_its_node() {
        let l = build("n1", "uid-1", Duration::from_secs(40), Timestamp::now());
        let spec = l.spec.as_ref().expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        let owner = &l.metadata.owner_references.as_ref().expect("owners")[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Node", "uid-1"));
        assert_eq!(l.metadata.namespace.as_deref(), Some("kube-node-lease"));
    }
}
