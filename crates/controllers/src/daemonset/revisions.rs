//! A DaemonSet's ControllerRevisions (upstream `constructHistory`, `snapshot`,
//! `dedupCurHistories`, `cleanupHistory`): the revision recording the current template
//! (found, renumbered to be the newest, or created as `<ds>-<template hash>`), the old ones,
//! and trimming old ones no pod uses beyond `revisionHistoryLimit`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::manage::by_node;
use super::{Controller, Error};
use crate::controller_ref::{self, Owner};
use crate::deployment::util::template_hash;
use crate::history::{self, History, REVISION_LABEL};

/// Upstream `Match`: does the revision record the DaemonSet's template?
fn matches(ds: &DaemonSet, cr: &ControllerRevision) -> bool {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    cr.data
        .as_ref()
        .is_some_and(|d| history::same_data(&history::template_patch(&template), &d.0))
}

impl Controller {
    /// Upstream `constructHistory`: (current revision, old revisions).
    pub(super) async fn construct_history(
        &self,
        ds: &DaemonSet,
        selector: &LabelSelector,
    ) -> Result<(ControllerRevision, Vec<ControllerRevision>), Error> {
        let ns = ds.namespace().unwrap_or_default();
        let hist = History::new(self.ctx.client.clone(), &ns);
        let owner = Owner {
            reference: controller_ref::reference(ds),
            selector,
            deleting: ds.metadata.deletion_timestamp.is_some(),
        };
        let claimed = controller_ref::claim(hist.api(), &owner, self.revisions.list(&ns))
            .await
            .map_err(Error::ClaimRevisions)?;
        let mut current = Vec::new();
        let mut old = Vec::new();
        for cr in claimed {
            let mut cr = (*cr).clone();
            // Revisions from before the hash label: their name stands in for the hash.
            if !cr.labels().contains_key(REVISION_LABEL) {
                let labels = BTreeMap::from([(REVISION_LABEL.to_string(), cr.name_any())]);
                cr = hist
                    .label(&cr, &labels)
                    .await
                    .map_err(Error::UpdateRevision)?;
            }
            if matches(ds, &cr) {
                current.push(cr);
            } else {
                old.push(cr);
            }
        }
        let next = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
        let cur = if current.is_empty() {
            self.snapshot(ds, next).await?
        } else {
            let cur = self.dedup(ds, current, &hist).await?;
            hist.set_revision(&cur, cur.revision.max(next))
                .await
                .map_err(Error::UpdateRevision)?
        };
        Ok((cur, old))
    }

    /// Upstream `snapshot`: records the template as revision `revision`. A name taken by
    /// another template bumps the DaemonSet's collision count (unless our count was stale)
    /// and fails this sync, so the next one hashes differently.
    async fn snapshot(&self, ds: &DaemonSet, revision: i64) -> Result<ControllerRevision, Error> {
        let ns = ds.namespace().unwrap_or_default();
        let spec = ds.spec.clone().unwrap_or_default();
        let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&spec.template, collisions);
        let name = format!("{}-{hash}", ds.name_any());
        let mut labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(REVISION_LABEL.into(), hash);
        let cr = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                annotations: ds.metadata.annotations.clone(),
                owner_references: Some(vec![controller_ref::reference(ds)]),
                ..Default::default()
            },
            data: Some(RawExtension(history::template_patch(&spec.template))),
            revision,
        };
        let api: Api<ControllerRevision> = Api::namespaced(self.ctx.client.clone(), &ns);
        let source = match api.create(&PostParams::default(), &cr).await {
            Ok(created) => return Ok(created),
            Err(e) if crate::is_conflict(&e) => e,
            Err(source) => return Err(Error::CreateRevision { name, source }),
        };
        let existing = api
            .get(&name)
            .await
            .map_err(|source| Error::CreateRevision {
                name: name.clone(),
                source,
            })?;
        if matches(ds, &existing) {
            return Ok(existing);
        }
        let sets: Api<DaemonSet> = Api::namespaced(self.ctx.client.clone(), &ns);
        let fresh = sets
            .get(&ds.name_any())
            .await
            .map_err(Error::GetDaemonSet)?;
        let fresh_count = fresh.status.as_ref().and_then(|s| s.collision_count);
        if fresh_count != collisions {
            return Err(Error::StaleCollisionCount(ds.name_any()));
        }
        let patch = json!({"status": {"collisionCount": collisions.unwrap_or(0) + 1}});
        sets.patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(Error::UpdateCollisionCount)?;
        tracing::debug!(ds = %ds.name_any(), %source, "controller revision name collision");
        Err(Error::HashCollision(name))
    }

    /// Upstream `dedupCurHistories`: of several revisions recording the current template,
    /// keeps the newest; pods labelled with another one's hash are relabelled to it first.
    async fn dedup(
        &self,
        ds: &DaemonSet,
        mut current: Vec<ControllerRevision>,
        hist: &History,
    ) -> Result<ControllerRevision, Error> {
        history::sort(&mut current);
        let Some(keep) = current.pop() else {
            return Err(Error::HashCollision(ds.name_any()));
        };
        let keep_hash = keep
            .labels()
            .get(REVISION_LABEL)
            .cloned()
            .unwrap_or_default();
        let pods_api: Api<Pod> =
            Api::namespaced(self.ctx.client.clone(), &ds.namespace().unwrap_or_default());
        for dup in current {
            let dup_hash = dup.labels().get(REVISION_LABEL).cloned();
            for pod in self.owned_pods(ds) {
                if pod.labels().get(REVISION_LABEL) != dup_hash.as_ref()
                    || dup_hash.as_ref() == Some(&keep_hash)
                {
                    continue;
                }
                let patch = json!({"metadata": {"labels": {REVISION_LABEL: keep_hash}}});
                pods_api
                    .patch(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await
                    .map_err(|source| Error::RelabelPod {
                        name: pod.name_any(),
                        source,
                    })?;
            }
            hist.delete(&dup.name_any())
                .await
                .map_err(Error::UpdateRevision)?;
        }
        Ok(keep)
    }

    /// Upstream `cleanupHistory`: beyond `revisionHistoryLimit` old revisions, the oldest
    /// ones no pod is labelled with are deleted.
    pub(super) async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        old: &[ControllerRevision],
    ) -> Result<(), Error> {
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        let limit = usize::try_from(limit).unwrap_or(0);
        if old.len() <= limit {
            return Ok(());
        }
        let pods: Vec<Arc<Pod>> = by_node(&self.owned_pods(ds), true)
            .into_values()
            .flatten()
            .collect();
        let live: HashSet<&String> = pods
            .iter()
            .filter_map(|p| p.labels().get(REVISION_LABEL))
            .collect();
        let mut old = old.to_vec();
        history::sort(&mut old);
        let hist = History::new(self.ctx.client.clone(), &ds.namespace().unwrap_or_default());
        for cr in to_clean(&old, &live, limit) {
            hist.delete(&cr.name_any())
                .await
                .map_err(Error::CleanupHistory)?;
        }
        Ok(())
    }
}

/// Upstream's choice: `len - limit` of the oldest old revisions whose hash no pod carries
/// (old revisions pods still use count toward the limit but are kept).
fn to_clean<'a>(
    old_sorted: &'a [ControllerRevision],
    live: &HashSet<&String>,
    limit: usize,
) -> Vec<&'a ControllerRevision> {
    let n = old_sorted.len().saturating_sub(limit);
    old_sorted
        .iter()
        .filter(|cr| {
            !cr.labels()
                .get(REVISION_LABEL)
                .is_some_and(|h| live.contains(h))
        })
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(n: i64) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(format!("d-{n}")),
                labels: Some(BTreeMap::from([(
                    REVISION_LABEL.to_string(),
                    format!("h{n}"),
                )])),
                ..Default::default()
            },
            data: None,
            revision: n,
        }
    }

    #[test]
    fn cleanup_removes_the_oldest_revisions_no_pod_uses() {
        let old: Vec<ControllerRevision> = (1..=4).map(rev).collect();
        let h1 = "h1".to_string();
        let live: HashSet<&String> = [&h1].into();
        let names: Vec<String> = to_clean(&old, &live, 2)
            .iter()
            .map(|r| r.name_any())
            .collect();
        assert_eq!(names, ["d-2", "d-3"]);
        assert!(to_clean(&old, &live, 4).is_empty());
    }

    #[test]
    fn a_revision_matches_the_template_it_records() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}
        }))
        .expect("ds");
        let mut cr = rev(1);
        cr.data = Some(RawExtension(history::template_patch(
            &ds.spec.as_ref().expect("spec").template,
        )));
        assert!(matches(&ds, &cr));
        let mut other = ds.clone();
        if let Some(s) = other.spec.as_mut() {
            s.template = Default::default();
        }
        assert!(!matches(&other, &cr));
    }
}
