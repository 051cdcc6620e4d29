//! RollingUpdate (upstream `rolling.go`): grow the new ReplicaSet within `maxSurge`, shrink
//! old ones while at least `replicas - maxUnavailable` pods stay available.

use super::Error;
use super::rollout::Rollout;
use super::util;
use crate::queue::Next;

impl Rollout<'_> {
    pub async fn rollout_rolling(&mut self) -> Result<Next, Error> {
        self.sync_revision(true).await?;
        if self.reconcile_new().await? {
            return self.sync_rollout_status().await;
        }
        if self.reconcile_old().await? {
            return self.sync_rollout_status().await;
        }
        if util::is_complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    async fn reconcile_new(&mut self) -> Result<bool, Error> {
        let Some(n) = self.new else {
            return Ok(false);
        };
        let want = util::replicas(&self.d);
        let current = util::rs_replicas(&self.sets[n]);
        if current == want {
            return Ok(false);
        }
        if current > want {
            return self.scale_rs(n, want).await;
        }
        let all: Vec<_> = self.sets.iter().collect();
        let size = self.new_rs_replicas(&all, Some(&self.sets[n]));
        self.scale_rs(n, size).await
    }

    fn active_old(&self) -> Vec<usize> {
        self.old()
            .filter(|i| util::rs_replicas(&self.sets[*i]) > 0)
            .collect()
    }

    async fn reconcile_old(&mut self) -> Result<bool, Error> {
        let old = self.active_old();
        let old_pods: i32 = old.iter().map(|i| util::rs_replicas(&self.sets[*i])).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods: i32 = self.sets.iter().map(util::rs_replicas).sum();
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let new_unavailable = self
            .new_rs()
            .map_or(0, |rs| util::rs_replicas(rs) - util::rs_status(rs).2);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let cleaned = self.cleanup_unhealthy(&old, max_scaled_down).await?;
        let scaled = self.scale_down_old(&self.active_old()).await?;
        Ok(cleaned + scaled > 0)
    }

    /// Upstream `cleanupUnhealthyReplicas`: unavailable old pods go first, they cost no
    /// availability.
    async fn cleanup_unhealthy(&mut self, old: &[usize], max_cleanup: i32) -> Result<i32, Error> {
        let mut total = 0;
        for &i in old {
            if total >= max_cleanup {
                break;
            }
            let replicas = util::rs_replicas(&self.sets[i]);
            let available = util::rs_status(&self.sets[i]).2;
            if replicas == 0 || replicas == available {
                continue;
            }
            let down = (max_cleanup - total).min(replicas - available);
            self.scale_rs(i, replicas - down).await?;
            total += down;
        }
        Ok(total)
    }

    /// Upstream `scaleDownOldReplicaSetsForRollingUpdate`: oldest first, never below the
    /// minimum available.
    async fn scale_down_old(&mut self, old: &[usize]) -> Result<i32, Error> {
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let available: i32 = self.sets.iter().map(|rs| util::rs_status(rs).2).sum();
        if available <= min_available {
            return Ok(0);
        }
        let total = available - min_available;
        let mut done = 0;
        for &i in old {
            if done >= total {
                break;
            }
            let replicas = util::rs_replicas(&self.sets[i]);
            if replicas == 0 {
                continue;
            }
            let down = replicas.min(total - done);
            self.scale_rs(i, replicas - down).await?;
            done += down;
        }
        Ok(done)
    }
}
