//! The ownership graph (upstream's `GraphBuilder`): a node per object seen by any monitor,
//! edges from owners to dependents. Owners only known from a dependent's
//! `ownerReferences` are *virtual* until observed (or found absent).
//!
//! Applying an event returns the work it makes: dependents whose owner went, owners that
//! started deleting in the foreground or orphaning.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub id: Identity,
    pub owners: Vec<OwnerReference>,
    pub dependents: HashSet<String>,
    pub deleting: bool,
    /// Deleting with the `foregroundDeletion` finalizer: waits for blocking dependents.
    pub deleting_dependents: bool,
    pub orphaning: bool,
    pub virtual_: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Check whether this object should go (its owners are gone or deleting), or, for an
    /// owner deleting in the foreground, whether its finalizer can be removed.
    AttemptToDelete(String),
    /// Release this owner's dependents and remove its `orphan` finalizer.
    AttemptToOrphan(String),
}

/// What a monitor saw.
pub enum Event {
    Upsert(Identity, Box<ObjectMeta>),
    Delete(Identity),
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Dependents of `uid` whose reference to it blocks its deletion.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<Node> {
        let Some(n) = self.nodes.get(uid) else {
            return Vec::new();
        };
        n.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d))
            .filter(|d| {
                d.owners
                    .iter()
                    .any(|o| o.uid == uid && o.block_owner_deletion == Some(true))
            })
            .cloned()
            .collect()
    }

    pub fn apply(&mut self, ev: Event) -> Vec<Work> {
        match ev {
            Event::Upsert(id, meta) => self.upsert(id, &meta),
            Event::Delete(id) => self.delete(&id.uid),
        }
    }

    fn link(&mut self, dependent: &Identity, owner: &OwnerReference, work: &mut Vec<Work>) {
        let node = self.nodes.entry(owner.uid.clone()).or_insert_with(|| {
            // Unknown owner: verify it exists before trusting or deleting anything.
            work.push(Work::AttemptToDelete(owner.uid.clone()));
            Node {
                id: Identity {
                    api_version: owner.api_version.clone(),
                    kind: owner.kind.clone(),
                    namespace: dependent.namespace.clone(),
                    name: owner.name.clone(),
                    uid: owner.uid.clone(),
                },
                owners: Vec::new(),
                dependents: HashSet::new(),
                deleting: false,
                deleting_dependents: false,
                orphaning: false,
                virtual_: true,
            }
        });
        node.dependents.insert(dependent.uid.clone());
    }

    fn unlink(&mut self, dependent: &str, owner: &str, work: &mut Vec<Work>) {
        if let Some(o) = self.nodes.get_mut(owner) {
            o.dependents.remove(dependent);
            if o.deleting_dependents {
                work.push(Work::AttemptToDelete(owner.to_string()));
            }
        }
    }

    fn upsert(&mut self, id: Identity, meta: &ObjectMeta) -> Vec<Work> {
        let mut work = Vec::new();
        let uid = id.uid.clone();
        let owners: Vec<OwnerReference> = meta.owner_references.clone().unwrap_or_default();
        let deleting = meta.deletion_timestamp.is_some();
        let (old_owners, was_fg, was_orphaning) = match self.nodes.get_mut(&uid) {
            Some(n) => {
                let prior = (
                    if n.virtual_ {
                        Vec::new()
                    } else {
                        n.owners.clone()
                    },
                    n.deleting_dependents,
                    n.orphaning,
                );
                n.id = id.clone();
                n.virtual_ = false;
                prior
            }
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        id: id.clone(),
                        owners: Vec::new(),
                        dependents: HashSet::new(),
                        deleting: false,
                        deleting_dependents: false,
                        orphaning: false,
                        virtual_: false,
                    },
                );
                (Vec::new(), false, false)
            }
        };
        for o in &owners {
            match old_owners.iter().find(|x| x.uid == o.uid) {
                None => self.link(&id, o, &mut work),
                // No longer blocking a foreground delete: the owner may be done.
                Some(prev)
                    if prev.block_owner_deletion == Some(true)
                        && o.block_owner_deletion != Some(true) =>
                {
                    self.unlink_check(&o.uid, &mut work)
                }
                Some(_) => {}
            }
        }
        for o in &old_owners {
            if !owners.iter().any(|x| x.uid == o.uid) {
                self.unlink(&uid, &o.uid, &mut work);
            }
        }
        let fg = deleting && has(meta, FOREGROUND);
        let orphaning = deleting && has(meta, ORPHAN);
        if let Some(n) = self.nodes.get_mut(&uid) {
            n.owners = owners;
            n.deleting = deleting;
            n.deleting_dependents = fg;
            n.orphaning = orphaning;
            if orphaning && !was_orphaning {
                work.push(Work::AttemptToOrphan(uid.clone()));
            }
            if fg && !was_fg {
                for d in &n.dependents {
                    work.push(Work::AttemptToDelete(d.clone()));
                }
                work.push(Work::AttemptToDelete(uid.clone()));
            }
        }
        work
    }

    fn unlink_check(&mut self, owner: &str, work: &mut Vec<Work>) {
        if self.nodes.get(owner).is_some_and(|o| o.deleting_dependents) {
            work.push(Work::AttemptToDelete(owner.to_string()));
        }
    }

    fn delete(&mut self, uid: &str) -> Vec<Work> {
        let mut work = Vec::new();
        let Some(node) = self.nodes.remove(uid) else {
            return work;
        };
        for o in &node.owners {
            self.unlink(uid, &o.uid, &mut work);
            // A virtual owner nobody depends on any more is forgotten.
            if self
                .nodes
                .get(&o.uid)
                .is_some_and(|n| n.virtual_ && n.dependents.is_empty())
            {
                self.nodes.remove(&o.uid);
            }
        }
        for d in node.dependents {
            if self.nodes.contains_key(&d) {
                work.push(Work::AttemptToDelete(d));
            }
        }
        work
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn id(kind: &str, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            namespace: "default".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn up(i: Identity, m: ObjectMeta) -> Event {
        Event::Upsert(i, Box::new(m))
    }

    fn owned_by(uid: &str, block: bool) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "d".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(block),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn an_unknown_owner_is_virtual_and_checked() {
        let mut g = Graph::default();
        let work = g.apply(up(id("ReplicaSet", "rs", "r1"), owned_by("d1", true)));
        assert_eq!(work, [Work::AttemptToDelete("d1".into())]);
        assert!(g.get("d1").is_some_and(|n| n.virtual_));
        // Observed later: no longer virtual, nothing to do.
        let work = g.apply(up(id("Deployment", "d", "d1"), ObjectMeta::default()));
        assert!(work.is_empty());
        assert!(
            g.get("d1")
                .is_some_and(|n| !n.virtual_ && n.dependents.contains("r1"))
        );
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut g = Graph::default();
        g.apply(up(id("Deployment", "d", "d1"), ObjectMeta::default()));
        g.apply(up(id("ReplicaSet", "rs", "r1"), owned_by("d1", true)));
        let work = g.apply(Event::Delete(id("Deployment", "d", "d1")));
        assert_eq!(work, [Work::AttemptToDelete("r1".into())]);
    }

    #[test]
    fn foreground_deletion_queues_dependents_and_waits_for_blocking_ones() {
        let mut g = Graph::default();
        g.apply(up(id("Deployment", "d", "d1"), ObjectMeta::default()));
        g.apply(up(id("ReplicaSet", "rs", "r1"), owned_by("d1", true)));
        let deleting = ObjectMeta {
            deletion_timestamp: Some(Time(jiff::Timestamp::now())),
            finalizers: Some(vec![FOREGROUND.into()]),
            ..Default::default()
        };
        let work = g.apply(up(id("Deployment", "d", "d1"), deleting));
        assert_eq!(
            work,
            [
                Work::AttemptToDelete("r1".into()),
                Work::AttemptToDelete("d1".into())
            ]
        );
        assert_eq!(g.blocking_dependents("d1").len(), 1);
        // The dependent goes: the owner is looked at again.
        let work = g.apply(Event::Delete(id("ReplicaSet", "rs", "r1")));
        assert_eq!(work, [Work::AttemptToDelete("d1".into())]);
        assert!(g.blocking_dependents("d1").is_empty());
    }

    #[test]
    fn the_orphan_finalizer_queues_orphaning_once() {
        let mut g = Graph::default();
        let orphaning = ObjectMeta {
            deletion_timestamp: Some(Time(jiff::Timestamp::now())),
            finalizers: Some(vec![ORPHAN.into()]),
            ..Default::default()
        };
        let work = g.apply(up(id("Deployment", "d", "d1"), orphaning.clone()));
        assert_eq!(work, [Work::AttemptToOrphan("d1".into())]);
        assert!(
            g.apply(up(id("Deployment", "d", "d1"), orphaning))
                .is_empty()
        );
    }
}
