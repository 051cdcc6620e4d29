//! Controller references (upstream's `ControllerRefManager`): which objects a controller
//! owns, adopting orphans its selector matches and releasing owned objects it no longer
//! selects; plus the expectations that keep a stale cache from double-creating.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

/// The controller reference of `meta`, if any.
pub fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (with `blockOwnerDeletion`, as controllers set it).
pub fn reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Is `obj` controlled by an object of kind `Owner`? Gives the owner's name.
pub fn owner_name<Owner: Resource<DynamicType = ()>>(obj: &impl Resource) -> Option<&str> {
    controller_of(obj)
        .filter(|r| r.kind == Owner::kind(&()) && r.api_version == Owner::api_version(&()))
        .map(|r| r.name.as_str())
}

/// What a claim needs to know about the owner.
pub struct Owner<'a> {
    pub reference: OwnerReference,
    pub selector: &'a LabelSelector,
    pub deleting: bool,
}

/// Upstream `ClaimObjects`: the objects among `candidates` that the owner controls after
/// adopting matching orphans and releasing owned objects that no longer match. Failed
/// patches are logged and the object left out; the next sync tries again.
pub async fn claim<K>(
    api: &Api<K>,
    owner: &Owner<'_>,
    candidates: Vec<Arc<K>>,
) -> Result<Vec<Arc<K>>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut claimed = Vec::new();
    for obj in candidates {
        let labels: BTreeMap<String, String> = obj.labels().clone();
        let matches = owner.selector.matches(&labels);
        match controller_of(obj.as_ref()) {
            Some(r) if r.uid == owner.reference.uid => {
                if matches || owner.deleting {
                    claimed.push(obj);
                } else {
                    release(api, obj.as_ref(), &owner.reference.uid).await;
                }
            }
            Some(_) => {}
            None => {
                if !matches || owner.deleting || obj.meta().deletion_timestamp.is_some() {
                    continue;
                }
                if let Some(adopted) = adopt(api, obj.as_ref(), &owner.reference).await? {
                    claimed.push(Arc::new(adopted));
                }
            }
        }
    }
    Ok(claimed)
}

/// Adds the controller reference; conditional on the object's resourceVersion so an
/// object changed meanwhile is looked at again on the next sync.
async fn adopt<K>(api: &Api<K>, obj: &K, r: &OwnerReference) -> Result<Option<K>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
    refs.push(r.clone());
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version(),
    }});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

async fn release<K>(api: &Api<K>, obj: &K, owner_uid: &str)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let refs: Vec<_> = obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let patch = json!({"metadata": {
        "ownerReferences": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) },
        "resourceVersion": obj.resource_version(),
    }});
    if let Err(e) = api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        tracing::debug!(name = %obj.name_any(), error = %e, "releasing an object failed");
    }
}

/// Upstream's expectations timeout: after this long a controller stops waiting to see its
/// own writes and trusts its cache again.
const EXPECTATION_TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    adds: i64,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

/// Writes a controller issued but has not yet seen come back through its informer, per
/// owner key. Creations are counted (their names are unknown until the reply, which may
/// arrive after the watch event); deletions are tracked by name.
#[derive(Default)]
pub struct Expectations {
    by_owner: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.by_owner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when nothing is outstanding (or it has been outstanding too long).
    pub fn satisfied(&self, owner: &str) -> bool {
        let m = self.lock();
        match m.get(owner) {
            None => true,
            Some(p) => {
                (p.adds <= 0 && p.deletes.is_empty())
                    || p.since.is_some_and(|s| s.elapsed() > EXPECTATION_TTL)
            }
        }
    }

    /// Call before issuing `n` creations.
    pub fn expect_creations(&self, owner: &str, n: usize) {
        let mut m = self.lock();
        let p = m.entry(owner.to_string()).or_default();
        p.adds = i64::try_from(n).unwrap_or(i64::MAX);
        p.since = Some(Instant::now());
    }

    /// Call before issuing deletions of `names`.
    pub fn expect_deletions(&self, owner: &str, names: impl IntoIterator<Item = String>) {
        let mut m = self.lock();
        let p = m.entry(owner.to_string()).or_default();
        p.deletes = names.into_iter().collect();
        p.since = Some(Instant::now());
    }

    /// A creation was seen in the cache (or failed, so will never be).
    pub fn creation_observed(&self, owner: &str) {
        if let Some(p) = self.lock().get_mut(owner) {
            p.adds -= 1;
        }
    }

    /// A deletion was seen (or failed).
    pub fn deletion_observed(&self, owner: &str, name: &str) {
        if let Some(p) = self.lock().get_mut(owner) {
            p.deletes.remove(name);
        }
    }

    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_wait_for_every_creation_and_named_deletion() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.expect_deletions("ns/rs", ["a".to_string()]);
        e.deletion_observed("ns/rs", "b");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "a");
        assert!(e.satisfied("ns/rs"));
    }
}
