//! The periodic compactor: without it every backend keeps every revision forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{Error, Revision, Store};

/// How often kine's compactor (and the Kubernetes apiserver's etcd compactor) runs.
pub const DEFAULT_COMPACT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// How many recent revisions kine keeps when it compacts.
pub const DEFAULT_KEEP_REVISIONS: Revision = 1000;

/// Every `interval`, compacts `store` to `current_revision - keep_revisions` (when that is
/// positive). Watches and reads older than that fail with [`Error::Compacted`] afterwards,
/// which clients answer by relisting.
///
/// The task holds only a weak reference and stops once the store is dropped; abort the
/// handle to stop it earlier. Failures are logged and retried at the next tick. Must be
/// called inside a Tokio runtime.
pub fn spawn_compactor(
    store: &Arc<dyn Store>,
    interval: Duration,
    keep_revisions: Revision,
) -> JoinHandle<()> {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            let target = match store.current_revision().await {
                Ok(current) => current - keep_revisions,
                Err(e) => {
                    tracing::warn!(error = %e, "compactor could not read the current revision");
                    continue;
                }
            };
            if target <= 0 {
                continue;
            }
            match store.compact(target).await {
                Ok(()) => tracing::debug!(rev = target, "compacted store"),
                // Someone else compacted further already (another apiserver on the same etcd).
                Err(Error::Compacted { .. }) => {}
                Err(e) => tracing::warn!(error = %e, rev = target, "compaction failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::{ListRequest, Store};

    #[tokio::test(start_paused = true)]
    async fn compactor_keeps_the_newest_revisions() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        for i in 0..20 {
            store
                .create(&format!("/k/{i}"), "v".into())
                .await
                .expect("create");
        }
        let handle = spawn_compactor(&store, Duration::from_secs(60), 5);
        let at = |revision| ListRequest {
            prefix: "/k/",
            revision,
            ..Default::default()
        };
        // Before the first tick nothing is compacted.
        store.list(at(1)).await.expect("list before the first tick");

        // Virtual time: this sleep only moves the paused clock past the first tick.
        tokio::time::sleep(Duration::from_secs(61)).await;
        let mut compacted = false;
        for _ in 0..1000 {
            if matches!(store.list(at(14)).await, Err(Error::Compacted { .. })) {
                compacted = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(compacted, "revision 14 should be compacted after one tick");
        store.list(at(15)).await.expect("revision 15 is kept");

        drop(store);
        tokio::time::sleep(Duration::from_secs(61)).await;
        handle
            .await
            .expect("compactor stops once the store is gone");
    }
}
