//! Deployment status (upstream `sync.go` / `progress.go`): counters summed over the
//! ReplicaSets, the Available condition, and the Progressing condition that
//! `kubectl rollout status` reads — including `ProgressDeadlineExceeded` once a rollout has
//! made no progress for `progressDeadlineSeconds`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::rollout::Rollout;
use super::{Error, util};
use crate::queue::Next;

impl Rollout<'_> {
    pub fn calculate_status(&self) -> DeploymentStatus {
        let old = self.d.status.clone().unwrap_or_default();
        let sum = |f: fn(&k8s_openapi::api::apps::v1::ReplicaSet) -> i32| {
            self.sets.iter().map(f).sum::<i32>()
        };
        let available = sum(|rs| util::rs_status(rs).2);
        let total = sum(util::rs_replicas);
        let mut s = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(sum(|rs| util::rs_status(rs).0)),
            updated_replicas: Some(self.new_rs().map_or(0, |rs| util::rs_status(rs).0)),
            ready_replicas: Some(sum(|rs| util::rs_status(rs).1)),
            available_replicas: Some(available),
            unavailable_replicas: Some((total - available).max(0)),
            collision_count: old.collision_count,
            conditions: old.conditions.clone(),
            terminating_replicas: None,
        };
        let want = util::replicas(&self.d);
        let c = if available >= want - util::max_unavailable(&self.d) {
            util::new_condition(
                util::AVAILABLE,
                "True",
                util::MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
            )
        } else {
            util::new_condition(
                util::AVAILABLE,
                "False",
                util::MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
            )
        };
        util::set_condition(&mut s, c);
        s
    }

    /// Writes `status` if it differs from what the Deployment has.
    pub async fn write_status(&mut self, status: DeploymentStatus) -> Result<(), Error> {
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(
            self.c.ctx.client.clone(),
            &self.d.namespace().unwrap_or_default(),
        );
        let patch = json!({"status": status});
        match api
            .patch_status(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(d) => {
                self.d.status = d.status;
                Ok(())
            }
            Err(e) if crate::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::UpdateStatus(e)),
        }
    }

    pub async fn sync_deployment_status(&mut self) -> Result<Next, Error> {
        let s = self.calculate_status();
        self.write_status(s).await?;
        Ok(Next::Done)
    }

    pub async fn sync_status_only(&mut self) -> Result<Next, Error> {
        self.sync_revision(false).await?;
        self.sync_deployment_status().await
    }

    /// Upstream `checkPausedConditions`.
    pub async fn check_paused_conditions(&mut self) -> Result<(), Error> {
        if util::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut s = self.d.status.clone().unwrap_or_default();
        let cond = util::condition(&s, util::PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some(util::TIMED_OUT)) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(util::PAUSED));
        let c = if self.paused() && !paused_cond {
            util::new_condition(
                util::PROGRESSING,
                "Unknown",
                util::PAUSED,
                "Deployment is paused".into(),
            )
        } else if !self.paused() && paused_cond {
            util::new_condition(
                util::PROGRESSING,
                "Unknown",
                util::RESUMED,
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        util::set_condition(&mut s, c);
        self.write_status(s).await
    }

    /// Upstream `DeploymentTimedOut`.
    fn timed_out(&self, s: &DeploymentStatus) -> bool {
        let Some(deadline) = util::progress_deadline(&self.d) else {
            return false;
        };
        let Some(c) = util::condition(s, util::PROGRESSING) else {
            return false;
        };
        match c.reason.as_deref() {
            Some(util::NEW_RS_AVAILABLE) => false,
            Some(util::TIMED_OUT) => true,
            _ => c.last_update_time.as_ref().is_some_and(|t| {
                t.0 + jiff::SignedDuration::from_secs(i64::from(deadline)) < jiff::Timestamp::now()
            }),
        }
    }

    /// Upstream `syncRolloutStatus`: counters plus the Progressing condition.
    pub async fn sync_rollout_status(&mut self) -> Result<Next, Error> {
        let mut s = self.calculate_status();
        if util::progress_deadline(&self.d).is_some() {
            let cur = util::condition(&s, util::PROGRESSING).cloned();
            let reason = cur.as_ref().and_then(|c| c.reason.clone());
            let name = self.new_rs().map(|rs| rs.name_any()).unwrap_or_default();
            let complete_before = s.replicas == s.updated_replicas
                && reason.as_deref() == Some(util::NEW_RS_AVAILABLE);
            if reason.as_deref() != Some(util::TIMED_OUT) && !complete_before {
                if util::is_complete(&self.d, &s) {
                    let msg = format!("ReplicaSet \"{name}\" has successfully progressed.");
                    util::set_condition(
                        &mut s,
                        util::new_condition(util::PROGRESSING, "True", util::NEW_RS_AVAILABLE, msg),
                    );
                } else if util::is_progressing(&self.d, &s) {
                    // Progress refreshes the update time even with the same reason.
                    let msg = format!("ReplicaSet \"{name}\" is progressing.");
                    let mut c =
                        util::new_condition(util::PROGRESSING, "True", util::RS_UPDATED, msg);
                    if let Some(cur) = cur.as_ref().filter(|c| c.status == "True") {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    util::remove_condition(&mut s, util::PROGRESSING);
                    util::set_condition(&mut s, c);
                } else if self.timed_out(&s) {
                    let msg = format!("ReplicaSet \"{name}\" has timed out progressing.");
                    util::set_condition(
                        &mut s,
                        util::new_condition(util::PROGRESSING, "False", util::TIMED_OUT, msg),
                    );
                }
            }
        }
        // A ReplicaSet that cannot create pods makes the Deployment report it.
        let failure = self.sets.iter().find_map(|rs| {
            rs.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
                .cloned()
        });
        match failure {
            Some(f) => util::set_condition(
                &mut s,
                util::new_condition(
                    "ReplicaFailure",
                    "True",
                    f.reason.as_deref().unwrap_or("FailedCreate"),
                    f.message.unwrap_or_default(),
                ),
            ),
            None => util::remove_condition(&mut s, "ReplicaFailure"),
        }
        let next = self.stuck_check(&s);
        self.write_status(s).await?;
        Ok(next)
    }

    /// Upstream `requeueStuckDeployment`: without progress, look again when the deadline
    /// passes so the timeout is reported.
    fn stuck_check(&self, s: &DeploymentStatus) -> Next {
        let Some(deadline) = util::progress_deadline(&self.d) else {
            return Next::Done;
        };
        let Some(c) = util::condition(
            self.d.status.as_ref().unwrap_or(&Default::default()),
            util::PROGRESSING,
        )
        .cloned() else {
            return Next::Done;
        };
        if util::is_complete(&self.d, s) || c.reason.as_deref() == Some(util::TIMED_OUT) {
            return Next::Done;
        }
        let Some(updated) = c.last_update_time else {
            return Next::Done;
        };
        let due = updated.0 + jiff::SignedDuration::from_secs(i64::from(deadline));
        let after = due.duration_since(jiff::Timestamp::now());
        if after.is_negative() {
            return Next::After(Duration::from_secs(1));
        }
        Next::After(after.unsigned_abs() + Duration::from_secs(1))
    }
}
