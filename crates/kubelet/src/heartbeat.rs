//! Heartbeats for every node of a simulator from one task: lease renewals every renew
//! interval and, rarely, a node status report.
//!
//! Nodes are spread over the renew interval in slots (node `i` in slot `i % slots`), so
//! 5,000 nodes renewing every 10 s cost a steady 500 writes/s instead of 5,000 at once
//! every 10 s. Status reports ride on the same slots and happen when the report interval
//! has passed since the last one or the status changed (upstream's
//! `nodeStatusReportFrequency`), so they are spread the same way.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::sim::Shared;
use crate::{lease, node};

/// At most this many slots per interval (100 ms apart at the default 10 s).
const MAX_SLOTS: usize = 100;

/// Runs until `stop`. Failed nodes are skipped.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let n = shared.nodes.len();
    if n == 0 {
        stop.cancelled().await;
        return;
    }
    let slots = n.clamp(1, MAX_SLOTS);
    let tick = shared.cfg.lease_renew_interval / slots as u32;
    let tick = tick.max(Duration::from_millis(1));
    // Leases were created at registration: the first renewal is one interval later.
    let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut beats = JoinSet::new();
    let mut k = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = beats.join_next(), if !beats.is_empty() => continue,
            _ = ticker.tick() => {}
        }
        let slot = k % slots;
        k = k.wrapping_add(1);
        for i in (slot..n).step_by(slots) {
            let node = &shared.nodes[i];
            if node.failed.load(Ordering::Relaxed)
                || node.heartbeat_busy.swap(true, Ordering::AcqRel)
            {
                continue;
            }
            beats.spawn(beat(shared.clone(), i));
        }
    }
    beats.abort_all();
}

/// Renews node `i`'s lease and posts its status if due. Clears the node's busy flag.
pub(crate) async fn beat(shared: Arc<Shared>, i: usize) {
    let node = &shared.nodes[i];
    let client = &shared.client;
    let uid = node.uid.get().map(String::as_str).unwrap_or_default();
    let permit = shared.heartbeat_writes.acquire().await;
    if let Err(e) = lease::renew(client, &node.name, uid, shared.cfg.lease_duration).await {
        tracing::warn!(node = %node.name, error = %e, cause = ?std::error::Error::source(&e), "lease renewal failed");
    }
    let due = {
        let last = node
            .last_status_report
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        last.elapsed() >= shared.cfg.node_status_report_interval
    };
    if due || node.status_dirty.swap(false, Ordering::AcqRel) {
        match node::report_status(client, node).await {
            Ok(()) => {
                *node
                    .last_status_report
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Instant::now();
            }
            Err(e) => {
                node.status_dirty.store(true, Ordering::Release);
                tracing::warn!(node = %node.name, error = %e, cause = ?std::error::Error::source(&e), "node status report failed");
            }
        }
    }
    drop(permit);
    node.heartbeat_busy.store(false, Ordering::Release);
}
