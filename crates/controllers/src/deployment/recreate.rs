//! Recreate (upstream `recreate.go`): every old pod gone before the new ReplicaSet grows.

use kube::ResourceExt;

use super::Error;
use super::rollout::Rollout;
use super::util;
use crate::controller_ref;
use crate::podutil;
use crate::queue::Next;

impl Rollout<'_> {
    pub async fn rollout_recreate(&mut self) -> Result<Next, Error> {
        self.sync_revision(false).await?;
        let mut scaled = false;
        for i in self.old().collect::<Vec<_>>() {
            if util::rs_replicas(&self.sets[i]) > 0 {
                scaled |= self.scale_rs(i, 0).await?;
            }
        }
        if scaled || self.old_pods_running() {
            return self.sync_rollout_status().await;
        }
        if self.new.is_none() {
            self.sync_revision(true).await?;
        }
        if let Some(n) = self.new {
            let want = util::replicas(&self.d);
            self.scale_rs(n, want).await?;
        }
        if util::is_complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// Upstream `oldPodsRunning`: old ReplicaSets still report pods, or pods of theirs
    /// have not finished.
    fn old_pods_running(&self) -> bool {
        if self.old().any(|i| util::rs_status(&self.sets[i]).0 > 0) {
            return true;
        }
        let old_uids: Vec<String> = self.old().filter_map(|i| self.sets[i].uid()).collect();
        let ns = self.d.namespace().unwrap_or_default();
        self.c.pods.list(&ns).iter().any(|p| {
            controller_ref::controller_of(p.as_ref()).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(podutil::phase(p), "Failed" | "Succeeded")
        })
    }
}
