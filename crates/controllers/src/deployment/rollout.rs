//! One Deployment sync's working state: the Deployment and its ReplicaSets as this sync has
//! left them (each write replaces the local copy with the server's answer), so later steps
//! of the same sync see earlier ones.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use super::util::{self, HASH_LABEL};
use super::{COMPONENT, Controller, Error};
use crate::controller_ref;
use crate::queue::Next;

pub(super) struct Rollout<'a> {
    pub c: &'a Controller,
    pub d: Deployment,
    /// Claimed ReplicaSets, oldest first.
    pub sets: Vec<ReplicaSet>,
    /// Index of the ReplicaSet whose template is the Deployment's, if it exists.
    pub new: Option<usize>,
    api: Api<ReplicaSet>,
}

fn created(rs: &ReplicaSet) -> (Option<jiff::Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.name_any(),
    )
}

impl<'a> Rollout<'a> {
    pub fn new(c: &'a Controller, d: Deployment, mut sets: Vec<ReplicaSet>) -> Self {
        sets.sort_by_key(created);
        let new = sets.iter().position(|rs| util::same_template(&d, rs));
        let api = Api::namespaced(c.ctx.client.clone(), &d.namespace().unwrap_or_default());
        Self {
            c,
            d,
            sets,
            new,
            api,
        }
    }

    pub fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    pub fn old(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.sets.len()).filter(move |i| Some(*i) != self.new)
    }

    pub fn new_rs(&self) -> Option<&ReplicaSet> {
        self.new.map(|i| &self.sets[i])
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    pub fn is_scaling_event(&self) -> bool {
        let want = util::replicas(&self.d).to_string();
        self.sets
            .iter()
            .filter(|rs| util::rs_replicas(rs) > 0)
            .filter_map(|rs| rs.annotations().get(util::DESIRED_REPLICAS))
            .any(|v| *v != want)
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision`: brings the new ReplicaSet's annotations
    /// and revision up to date, creating it when `create` and it does not exist.
    pub async fn sync_revision(&mut self, create: bool) -> Result<(), Error> {
        let max_old = self
            .old()
            .map(|i| util::revision(&self.sets[i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        if let Some(i) = self.new {
            let mut rs = self.sets[i].clone();
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let annotations_changed =
                util::set_new_rs_annotations(&self.d, &mut rs, new_revision, true);
            let min_ready_changed = rs.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready;
            if annotations_changed || min_ready_changed {
                let patch = json!({
                    "metadata": {"annotations": rs.metadata.annotations, "resourceVersion": rs.resource_version()},
                    "spec": {"minReadySeconds": min_ready},
                });
                self.sets[i] = self.patch_rs(&rs.name_any(), patch).await?;
                // Upstream returns here and lets the next sync do the rest.
            }
            let rev = util::revision(&self.sets[i]).to_string();
            self.set_deployment_revision(&rev).await?;
            let mut status = self.d.status.clone().unwrap_or_default();
            if util::progress_deadline(&self.d).is_some()
                && util::condition(&status, util::PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set \"{}\"", self.sets[i].name_any());
                util::set_condition(
                    &mut status,
                    util::new_condition(util::PROGRESSING, "True", util::FOUND_NEW_RS, msg),
                );
                self.write_status(status).await?;
            }
            return Ok(());
        }
        if !create {
            return Ok(());
        }
        self.create_new(new_revision).await
    }

    async fn create_new(&mut self, new_revision: i64) -> Result<(), Error> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = util::template_hash(&spec.template, collisions);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        let mut selector: LabelSelector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), hash.clone());
        let name = format!("{}-{hash}", self.d.name_any());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.d.namespace(),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![controller_ref::reference(&self.d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = self.sets.iter().collect();
        let replicas = self.new_rs_replicas(&all, None);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        util::set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        let created = match self.api.create(&PostParams::default(), &rs).await {
            Ok(c) => c,
            Err(e) if crate::is_conflict(&e) => {
                // Ours already (a stale cache), or a collision with another template.
                let existing =
                    self.api
                        .get(&name)
                        .await
                        .map_err(|source| Error::CreateReplicaSet {
                            name: name.clone(),
                            source,
                        })?;
                let ours = controller_ref::controller_of(&existing)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                if ours && util::same_template(&self.d, &existing) {
                    self.sets.push(existing);
                    self.new = Some(self.sets.len() - 1);
                    return Ok(());
                }
                let mut status = self.d.status.clone().unwrap_or_default();
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                self.write_status(status).await?;
                return Err(Error::HashCollision(name));
            }
            Err(e) => {
                let mut status = self.d.status.clone().unwrap_or_default();
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        "ReplicaFailure",
                        "True",
                        "FailedRSCreate",
                        format!(
                            "Failed to create new replica set \"{name}\": {}",
                            crate::replicaset::api_message(&e)
                        ),
                    ),
                );
                let _ = self.write_status(status).await;
                return Err(Error::CreateReplicaSet { name, source: e });
            }
        };
        if replicas > 0 {
            self.c.ctx.events.normal(
                COMPONENT,
                &self.d,
                "ScalingReplicaSet",
                format!("Scaled up replica set {name} from 0 to {replicas}"),
            );
        }
        self.sets.push(created);
        self.new = Some(self.sets.len() - 1);
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        if util::progress_deadline(&self.d).is_some() {
            let mut status = self.d.status.clone().unwrap_or_default();
            let msg = format!("Created new replica set \"{name}\"");
            util::set_condition(
                &mut status,
                util::new_condition(util::PROGRESSING, "True", util::NEW_RS_CREATED, msg),
            );
            self.write_status(status).await?;
        }
        Ok(())
    }

    /// Upstream `NewRSNewReplicas`: how big the new ReplicaSet may be now.
    pub fn new_rs_replicas(&self, all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> i32 {
        let want = util::replicas(&self.d);
        let current_new = new.map_or(0, util::rs_replicas);
        if util::is_recreate(&self.d) {
            return want;
        }
        // Upstream sums the sizes asked of the ReplicaSets; a ReplicaSet just scaled down
        // still has the pods it is deleting until its status says otherwise, and counting
        // them keeps the live pods within maxSurge too, not only the sizes.
        let current: i32 = all
            .iter()
            .map(|rs| util::rs_replicas(rs).max(util::rs_status(rs).0))
            .sum();
        let max_total = want + util::max_surge(&self.d);
        if current >= max_total {
            return current_new;
        }
        let up = (max_total - current).min(want - current_new);
        current_new + up.max(0)
    }

    /// Sets the Deployment's revision annotation.
    async fn set_deployment_revision(&mut self, rev: &str) -> Result<(), Error> {
        if self.d.annotations().get(util::REVISION).map(String::as_str) == Some(rev) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(
            self.c.ctx.client.clone(),
            &self.d.namespace().unwrap_or_default(),
        );
        let patch = json!({"metadata": {"annotations": {util::REVISION: rev}}});
        match api
            .patch(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(d) => {
                // Keep our status view: the server's copy may lag what this sync wrote.
                let status = self.d.status.take();
                self.d = d;
                self.d.status = status;
                Ok(())
            }
            Err(e) => Err(Error::UpdateDeployment(e)),
        }
    }

    async fn patch_rs(&self, name: &str, patch: serde_json::Value) -> Result<ReplicaSet, Error> {
        self.api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|source| Error::UpdateReplicaSet {
                name: name.to_string(),
                source,
            })
    }

    /// Upstream `scaleReplicaSetAndRecordEvent`: sizes ReplicaSet `i` and stamps it with the
    /// Deployment's desired and maximum replicas. True if its size changed.
    pub async fn scale_rs(&mut self, i: usize, new_scale: i32) -> Result<bool, Error> {
        let mut rs = self.sets[i].clone();
        let old_scale = util::rs_replicas(&rs);
        let want = util::replicas(&self.d);
        let ann_changed =
            util::set_replicas_annotations(&mut rs, want, want + util::max_surge(&self.d));
        let size_changed = old_scale != new_scale;
        if !size_changed && !ann_changed {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {"annotations": rs.metadata.annotations, "resourceVersion": rs.resource_version()},
            "spec": {"replicas": new_scale},
        });
        self.sets[i] = self.patch_rs(&rs.name_any(), patch).await?;
        if size_changed {
            let op = if old_scale < new_scale { "up" } else { "down" };
            self.c.ctx.events.normal(
                COMPONENT,
                &self.d,
                "ScalingReplicaSet",
                format!(
                    "Scaled {op} replica set {} from {old_scale} to {new_scale}",
                    rs.name_any()
                ),
            );
        }
        Ok(size_changed)
    }

    /// Upstream `sync`: for paused Deployments and scaling events — resize without rolling.
    pub async fn sync_scale(&mut self) -> Result<Next, Error> {
        self.sync_revision(false).await?;
        self.scale().await?;
        if self.paused() {
            self.cleanup().await?;
        }
        self.sync_deployment_status().await
    }

    /// Upstream `scale`: the replica count changed; share the change among active
    /// ReplicaSets in proportion to their size (rolling update), or give it all to the only
    /// active one.
    async fn scale(&mut self) -> Result<(), Error> {
        let want = util::replicas(&self.d);
        if let Some(i) = self.active_or_latest() {
            if util::rs_replicas(&self.sets[i]) != want {
                self.scale_rs(i, want).await?;
            }
            return Ok(());
        }
        if self.is_saturated() {
            for i in self.old().collect::<Vec<_>>() {
                if util::rs_replicas(&self.sets[i]) > 0 {
                    self.scale_rs(i, 0).await?;
                }
            }
            return Ok(());
        }
        if util::is_recreate(&self.d) {
            return Ok(());
        }
        let mut active: Vec<usize> = (0..self.sets.len())
            .filter(|i| util::rs_replicas(&self.sets[*i]) > 0)
            .collect();
        let total: i32 = active
            .iter()
            .map(|i| util::rs_replicas(&self.sets[*i]))
            .sum();
        let allowed = if want > 0 {
            want + util::max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - total;
        // Bigger first; among equals newer first when growing, older first when shrinking.
        active.sort_by(|a, b| {
            let (ra, rb) = (&self.sets[*a], &self.sets[*b]);
            let by_size = util::rs_replicas(rb).cmp(&util::rs_replicas(ra));
            let by_age = if to_add > 0 {
                created(rb).cmp(&created(ra))
            } else {
                created(ra).cmp(&created(rb))
            };
            by_size.then(by_age)
        });
        let mut sizes: Vec<(usize, i32)> = Vec::new();
        let mut added = 0;
        for i in &active {
            let p = if to_add == 0 {
                0
            } else {
                self.proportion(&self.sets[*i], to_add, added)
            };
            sizes.push((*i, util::rs_replicas(&self.sets[*i]) + p));
            added += p;
        }
        // The rest goes to (or comes from) the biggest.
        if let Some(first) = sizes.first_mut()
            && to_add != 0
        {
            first.1 = (first.1 + to_add - added).max(0);
        }
        for (i, size) in sizes {
            self.scale_rs(i, size.max(0)).await?;
        }
        Ok(())
    }

    /// Upstream `GetProportion`.
    fn proportion(&self, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
        let want = util::replicas(&self.d);
        let current = util::rs_replicas(rs);
        let fraction = if want == 0 {
            -current
        } else {
            let deployment_replicas = want + util::max_surge(&self.d);
            let annotated = rs
                .annotations()
                .get(util::MAX_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or_else(|| self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
            if annotated == 0 {
                0
            } else {
                let size = (f64::from(current) * f64::from(deployment_replicas)
                    / f64::from(annotated))
                .round();
                size as i32 - current
            }
        };
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    /// Upstream `FindActiveOrLatest`.
    fn active_or_latest(&self) -> Option<usize> {
        let active: Vec<usize> = (0..self.sets.len())
            .filter(|i| util::rs_replicas(&self.sets[*i]) > 0)
            .collect();
        match active.len() {
            0 => self.new.or_else(|| self.old().last()),
            1 => active.first().copied(),
            _ => None,
        }
    }

    /// Upstream `IsSaturated`: the new ReplicaSet is fully sized and fully available.
    fn is_saturated(&self) -> bool {
        let Some(rs) = self.new_rs() else {
            return false;
        };
        let want = util::replicas(&self.d);
        let desired = rs
            .annotations()
            .get(util::DESIRED_REPLICAS)
            .and_then(|v| v.parse::<i32>().ok());
        util::rs_replicas(rs) == want && desired == Some(want) && util::rs_status(rs).2 == want
    }

    /// Upstream `cleanupDeployment`: keeps `revisionHistoryLimit` scaled-down old sets.
    pub async fn cleanup(&mut self) -> Result<(), Error> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<usize> = self
            .old()
            .filter(|i| {
                let rs = &self.sets[*i];
                rs.metadata.deletion_timestamp.is_none()
                    && util::rs_replicas(rs) == 0
                    && util::rs_status(rs).0 == 0
                    && rs.status.as_ref().and_then(|s| s.observed_generation)
                        >= rs.metadata.generation
            })
            .collect();
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        if cleanable.len() <= limit {
            return Ok(());
        }
        cleanable.sort_by_key(|i| (util::revision(&self.sets[*i]), created(&self.sets[*i])));
        let excess = cleanable.len() - limit;
        for i in cleanable.into_iter().take(excess) {
            let rs = &self.sets[i];
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: rs.uid(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match self.api.delete(&rs.name_any(), &dp).await {
                Ok(_) => {}
                Err(e) if crate::is_not_found(&e) => {}
                Err(source) => {
                    return Err(Error::DeleteReplicaSet {
                        name: rs.name_any(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}
