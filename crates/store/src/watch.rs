//! The watch stream of the backends that own their event log (memory, sqlite).
//!
//! A backend publishes each committed batch of events on a `tokio::sync::broadcast` channel
//! and can read any event newer than its compaction point back from history. A watch
//! subscribes to the channel *first* and reads history *second*, so every event is in at least
//! one of the two; duplicates are dropped by revision (each event has a distinct revision and
//! both sources deliver in revision order). A receiver that lags behind the channel does not
//! lose events: it resubscribes and re-reads history from the last revision it delivered,
//! which fails with `Compacted` only if that history is gone.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use tokio::sync::broadcast::{self, error::RecvError};

use crate::{Event, Result, Revision, WatchStream};

/// The events of one commit, shared by every watcher.
pub(crate) type Batch = Arc<[Event]>;

/// How many events one history read returns; a long replay is read in chunks so it neither
/// holds a database snapshot nor allocates the whole history at once.
const REPLAY_CHUNK: usize = 1000;

/// Read access to the event log.
#[async_trait::async_trait]
pub(crate) trait History: Send + Sync + 'static {
    /// Events for keys starting with `prefix` with revision `> after`, oldest first, at most
    /// `limit` of them. `Compacted` when events after `after` were compacted away.
    async fn events_after(&self, prefix: &str, after: Revision, limit: usize)
    -> Result<Vec<Event>>;
}

/// Starts a watch: `rx` must have been subscribed before this call so that nothing committed
/// after the first history read is missed. The first read happens here, so a compacted `after`
/// fails the call instead of the stream.
///
/// The stream keeps only a weak reference to `history`: it ends when the store is dropped
/// (its broadcast sender closes), as the [`crate::Store::watch`] contract says.
pub(crate) async fn start(
    history: &Arc<dyn History>,
    rx: broadcast::Receiver<Batch>,
    prefix: String,
    after: Revision,
) -> Result<WatchStream> {
    let mut cursor = Cursor {
        history: Arc::downgrade(history),
        rx,
        prefix,
        last: after,
        pending: VecDeque::new(),
        replaying: true,
        done: false,
    };
    cursor.replay_chunk(history).await?;
    Ok(Box::pin(futures::stream::unfold(
        cursor,
        |mut cursor| async move { cursor.next().await.map(|item| (item, cursor)) },
    )))
}

struct Cursor {
    history: Weak<dyn History>,
    rx: broadcast::Receiver<Batch>,
    prefix: String,
    /// The newest revision already delivered (or known to have no match for `prefix`);
    /// everything at or below it is a duplicate.
    last: Revision,
    /// Events read but not yet returned.
    pending: VecDeque<Event>,
    /// True while history may still hold events newer than `last` that the receiver missed.
    replaying: bool,
    /// Set after an error item: the stream ends.
    done: bool,
}

impl Cursor {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            if self.replaying {
                let history = self.history.upgrade()?;
                if let Err(e) = self.replay_chunk(&history).await {
                    self.done = true;
                    return Some(Err(e));
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    for event in batch.iter() {
                        let rev = event.kv.mod_revision;
                        if rev <= self.last {
                            continue;
                        }
                        self.last = rev;
                        if event.kv.key.starts_with(&self.prefix) {
                            self.pending.push_back(event.clone());
                        }
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(
                        prefix = %self.prefix,
                        rev = self.last,
                        skipped,
                        "watch fell behind; replaying from history"
                    );
                    // A fresh receiver sees everything published from now on; history covers
                    // what was published before it, so the two overlap rather than leave a gap.
                    self.rx = self.rx.resubscribe();
                    self.replaying = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    async fn replay_chunk(&mut self, history: &Arc<dyn History>) -> Result<()> {
        let events = history
            .events_after(&self.prefix, self.last, REPLAY_CHUNK)
            .await?;
        if events.len() < REPLAY_CHUNK {
            self.replaying = false;
        }
        if let Some(newest) = events.last() {
            self.last = newest.kv.mod_revision;
        }
        self.pending.extend(events);
        Ok(())
    }
}
