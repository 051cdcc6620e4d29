//! ControllerRevisions (upstream `pkg/controller/history`): the recorded pod templates of a
//! StatefulSet or DaemonSet, named `<owner>-<hash>`, numbered by `revision`.
//!
//! A revision's `data` is the strategic merge patch that puts its template back,
//! `{"spec":{"template":{…,"$patch":"replace"}}}`: `kubectl rollout undo` sends exactly that
//! patch to the owner, and `kubectl rollout history --revision` applies it to show the
//! template. Revisions are compared by their data, so returning to an old template reuses
//! its revision (with a new number) instead of recording a new one.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::controller_ref;

/// Upstream `history.ControllerRevisionHashLabel`: the hash of a StatefulSet revision's data.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// Upstream `apps.ControllerRevisionHashLabelKey`: on pods, the revision they were made
/// from (a StatefulSet revision's name, a DaemonSet revision's hash); on DaemonSet
/// revisions, their hash.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// How often a name collision is retried with the next collision count before giving up
/// (upstream retries without bound; a hash that collides this often is a broken cluster).
const MAX_COLLISIONS: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating controller revision {name}")]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading controller revision {name}")]
    Get {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating controller revision {name}")]
    Update {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting controller revision {name}")]
    Delete {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("controller revision names kept colliding (last {0})")]
    TooManyCollisions(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Upstream `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 bytes so the
/// name stays within 253.
pub fn name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(223);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// The patch that restores `template` (upstream `getPatch` of both controllers).
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    } else {
        t = json!({"$patch": "replace"});
    }
    json!({"spec": {"template": t}})
}

/// The template a revision records, if its data is a template patch.
pub fn template_of(cr: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = cr.data.as_ref()?.0.pointer("/spec/template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// Upstream `rand.SafeEncodeString`: each byte mapped onto an alphabet without vowels or
/// look-alike characters, so hashes never spell words.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Upstream `HashControllerRevision`: FNV-1 (32 bit) over the data's JSON and the collision
/// count, safe-encoded.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    };
    feed(&serde_json::to_vec(data).unwrap_or_default());
    if let Some(c) = collision_count {
        feed(c.to_string().as_bytes());
    }
    safe_encode(&h.to_string())
}

/// Drops false, 0, "", null and (then) empty objects and arrays: the data as Go's
/// semantic equality sees it, whichever encoder wrote it.
fn normalize(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !*b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => {
            for x in a.iter_mut() {
                normalize(x);
            }
            a.is_empty()
        }
        Value::Object(m) => {
            m.retain(|_, x| !normalize(x));
            m.is_empty()
        }
    }
}

/// Do two revision payloads record the same state?
pub fn same_data(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (mut a, mut b) = (a.clone(), b.clone());
    normalize(&mut a);
    normalize(&mut b);
    a == b
}

fn data(cr: &ControllerRevision) -> &Value {
    static NULL: Value = Value::Null;
    cr.data.as_ref().map_or(&NULL, |d| &d.0)
}

/// Upstream `EqualRevision`, by data only: the hash label also folds in the collision count,
/// so two revisions of one template made under different counts are still equal.
pub fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    same_data(data(a), data(b))
}

/// Upstream `SortControllerRevisions`: by revision, then age, then name.
pub fn sort(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(|a, b| {
        let t = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        a.revision
            .cmp(&b.revision)
            .then_with(|| t(a).cmp(&t(b)))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// One more than the highest revision of a sorted history, or 1.
pub fn next_revision(sorted: &[ControllerRevision]) -> i64 {
    sorted.last().map_or(1, |r| r.revision + 1)
}

/// Upstream `NewControllerRevision`: owned by `parent`, labelled with the template's labels
/// (so the owner's selector finds it, as kubectl looks for it) plus the hash of its data.
pub fn new_revision<K: Resource<DynamicType = ()>>(
    parent: &K,
    template_labels: Option<&BTreeMap<String, String>>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash(&data, collision_count);
    let mut labels = template_labels.cloned().unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name(&parent.meta().name.clone().unwrap_or_default(), &hash)),
            namespace: parent.meta().namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref::reference(parent)]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// Writes revisions of one namespace.
pub struct History {
    api: Api<ControllerRevision>,
}

impl History {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
        }
    }

    /// Upstream `CreateControllerRevision`: creates `cr` under `parent_name`; when the name is
    /// taken by a revision with other data, bumps `collision_count` and tries the next
    /// name. An existing revision with the same data is returned as is.
    pub async fn create(
        &self,
        parent_name: &str,
        cr: &ControllerRevision,
        collision_count: &mut i32,
    ) -> Result<ControllerRevision> {
        let mut clone = cr.clone();
        for _ in 0..MAX_COLLISIONS {
            let hash = hash(data(cr), Some(*collision_count));
            let n = name(parent_name, &hash);
            clone.metadata.name = Some(n.clone());
            clone
                .metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(HASH_LABEL.into(), hash);
            match self.api.create(&PostParams::default(), &clone).await {
                Ok(created) => return Ok(created),
                Err(e) if crate::is_conflict(&e) => {
                    let existing = self.api.get(&n).await.map_err(|source| Error::Get {
                        name: n.clone(),
                        source,
                    })?;
                    if equal(&existing, &clone) {
                        return Ok(existing);
                    }
                    *collision_count += 1;
                }
                Err(source) => return Err(Error::Create { name: n, source }),
            }
        }
        Err(Error::TooManyCollisions(clone.name_any()))
    }

    /// Upstream `UpdateControllerRevision`: gives `cr` the number `revision` (how a rollback
    /// to an old template reuses its revision).
    pub async fn set_revision(
        &self,
        cr: &ControllerRevision,
        revision: i64,
    ) -> Result<ControllerRevision> {
        if cr.revision == revision {
            return Ok(cr.clone());
        }
        let n = cr.name_any();
        self.api
            .patch(
                &n,
                &PatchParams::default(),
                &Patch::Merge(json!({"revision": revision})),
            )
            .await
            .map_err(|source| Error::Update { name: n, source })
    }

    /// Merges `labels` into a revision's labels.
    pub async fn label(
        &self,
        cr: &ControllerRevision,
        labels: &BTreeMap<String, String>,
    ) -> Result<ControllerRevision> {
        let n = cr.name_any();
        self.api
            .patch(
                &n,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": labels}})),
            )
            .await
            .map_err(|source| Error::Update { name: n, source })
    }

    /// Deletes a revision; one already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<()> {
        match self.api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if crate::is_not_found(&e) => Ok(()),
            Err(source) => Err(Error::Delete {
                name: name.into(),
                source,
            }),
        }
    }

    pub fn api(&self) -> &Api<ControllerRevision> {
        &self.api
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
        .expect("template")
    }

    fn cr(revision: i64, image: &str) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(format!("web-{revision}")),
                ..Default::default()
            },
            data: Some(RawExtension(template_patch(&template(image)))),
            revision,
        }
    }

    #[test]
    fn the_patch_replaces_the_template_and_reads_back() {
        let p = template_patch(&template("busybox:1"));
        assert_eq!(p["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            p["spec"]["template"]["spec"]["containers"][0]["image"],
            "busybox:1"
        );
        let back = template_of(&cr(1, "busybox:1")).expect("template");
        assert_eq!(back, template("busybox:1"));
    }

    #[test]
    fn equal_revisions_compare_data_ignoring_explicit_zero_values() {
        let mut with_zeros = cr(2, "busybox:1");
        if let Some(d) = with_zeros.data.as_mut() {
            d.0["spec"]["template"]["spec"]["containers"][0]["stdin"] = json!(false);
            d.0["spec"]["template"]["spec"]["hostNetwork"] = json!(false);
        }
        assert!(equal(&cr(1, "busybox:1"), &with_zeros));
        assert!(!equal(&cr(1, "busybox:1"), &cr(1, "busybox:2")));
    }

    #[test]
    fn hashes_use_the_safe_alphabet_and_change_with_collisions() {
        let d = template_patch(&template("busybox:1"));
        let h = hash(&d, Some(0));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(h, hash(&d, Some(0)));
        assert_ne!(h, hash(&d, Some(1)));
        assert_ne!(h, hash(&template_patch(&template("busybox:2")), Some(0)));
    }

    #[test]
    fn long_owner_names_are_cut_to_keep_revision_names_valid() {
        let long = "a".repeat(300);
        assert_eq!(name(&long, "h").len(), 225);
        assert_eq!(name("web", "abc"), "web-abc");
    }

    #[test]
    fn sorting_is_by_revision_then_name() {
        let mut revs = vec![cr(3, "a"), cr(1, "b"), cr(2, "c")];
        sort(&mut revs);
        let order: Vec<i64> = revs.iter().map(|r| r.revision).collect();
        assert_eq!(order, [1, 2, 3]);
        assert_eq!(next_revision(&revs), 4);
        assert_eq!(next_revision(&[]), 1);
    }
}
