//! An in-process MVCC store: every key keeps its versions so reads at older revisions work,
//! and an event log feeds watches that start in the past. Nothing persists.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::watch::{self, Batch, History};
use crate::{
    Error, Event, EventKind, KeyValue, ListRequest, ListResult, Result, Revision, Store,
    WatchStream,
};

/// How many commits a watcher may fall behind before it has to replay from the event log.
const WATCH_BUFFER: usize = 4096;

/// The memory backend. Cheap to create; all state lives behind one mutex, which is never held
/// across an `.await`.
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// Guards the whole MVCC state, so a write takes its revision, records the version and
    /// publishes its event atomically (watchers therefore see revision order).
    state: Mutex<State>,
}

struct State {
    revision: Revision,
    compacted: Revision,
    /// Versions of each key, oldest first. A `None` value is a deletion (tombstone).
    keys: BTreeMap<String, Vec<Version>>,
    /// Every event with revision `>= compacted`, oldest first.
    log: VecDeque<Event>,
    /// Publishes each commit to watchers. Dropped with the store, which ends their streams
    /// (they hold only a weak reference to the state).
    events: broadcast::Sender<Batch>,
}

#[derive(Clone)]
struct Version {
    revision: Revision,
    create_revision: Revision,
    value: Option<Bytes>,
}

impl Version {
    fn to_kv(&self, key: &str) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
        })
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 0.
    pub fn new() -> Self {
        Self::with_watch_buffer(WATCH_BUFFER)
    }

    /// Like [`MemoryStore::new`] with a given number of commits a watcher may lag behind
    /// before it replays from the log (small values exercise that path in tests).
    pub fn with_watch_buffer(commits: usize) -> Self {
        let (tx, _) = broadcast::channel(commits.max(1));
        let state = State {
            revision: 0,
            compacted: 0,
            keys: BTreeMap::new(),
            log: VecDeque::new(),
            events: tx,
        };
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
            }),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way later
        // readers would misinterpret (each write mutates after all checks), so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn latest(&self, key: &str) -> Option<KeyValue> {
        self.keys
            .get(key)
            .and_then(|versions| versions.last())
            .and_then(|v| v.to_kv(key))
    }

    /// Records a new version of `key` and publishes its event.
    fn commit(&mut self, key: &str, value: Option<Bytes>, prev: Option<KeyValue>) -> KeyValue {
        self.revision += 1;
        let revision = self.revision;
        let (kind, kv) = match &value {
            Some(value) => (
                EventKind::Put,
                KeyValue {
                    key: key.to_owned(),
                    value: value.clone(),
                    create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                    mod_revision: revision,
                },
            ),
            // A deletion carries the last value, stamped with the deletion's revision.
            None => {
                let mut kv = prev.clone().unwrap_or_else(|| KeyValue {
                    key: key.to_owned(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: 0,
                });
                kv.mod_revision = revision;
                (EventKind::Delete, kv)
            }
        };
        self.keys.entry(key.to_owned()).or_default().push(Version {
            revision,
            create_revision: kv.create_revision,
            value,
        });
        let event = Event {
            kind,
            kv: kv.clone(),
            prev,
        };
        self.log.push_back(event.clone());
        // An error only means nobody is watching.
        let _ = self.events.send(Arc::from(vec![event]));
        kv
    }

    fn check_conflict(&self, key: &str, expected: Revision) -> Result<KeyValue> {
        match self.latest(key) {
            None => Err(Error::NotFound { key: key.into() }),
            Some(current) if current.mod_revision != expected => Err(Error::Conflict {
                key: key.into(),
                expected,
                current: Some(current),
            }),
            Some(current) => Ok(current),
        }
    }

    /// Drops versions and events only reads below `revision` could see (see the crate docs).
    fn compact(&mut self, revision: Revision) {
        self.compacted = revision;
        self.keys.retain(|_, versions| {
            // Keep a version while its successor is at or after the compaction point: the
            // state at `revision - 1` and every event from `revision` on stay answerable.
            let keep_from = versions
                .windows(2)
                .rposition(|pair| pair[1].revision < revision)
                .map_or(0, |i| i + 1);
            versions.drain(..keep_from);
            if let Some(first) = versions.first()
                && first.value.is_none()
                && first.revision < revision
            {
                versions.remove(0);
            }
            !versions.is_empty()
        });
        while self
            .log
            .front()
            .is_some_and(|e| e.kv.mod_revision < revision)
        {
            self.log.pop_front();
        }
    }
}

#[async_trait::async_trait]
impl History for Shared {
    async fn events_after(
        &self,
        prefix: &str,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let state = self.lock();
        if after + 1 < state.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let from = state.log.partition_point(|e| e.kv.mod_revision <= after);
        Ok(state
            .log
            .range(from..)
            .filter(|e| e.kv.key.starts_with(prefix))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.shared.lock().latest(key))
    }

    async fn list(&self, req: ListRequest<'_>) -> Result<ListResult> {
        let state = self.shared.lock();
        let revision = match req.revision {
            0 => state.revision,
            r if r > state.revision => {
                return Err(Error::FutureRevision {
                    requested: r,
                    current: state.revision,
                });
            }
            r if r < state.compacted => {
                return Err(Error::Compacted {
                    requested: r,
                    compacted: state.compacted,
                });
            }
            r => r,
        };
        let start = crate::range_start(req.prefix, req.start);
        let mut kvs = Vec::new();
        let mut more = false;
        for (key, versions) in state
            .keys
            .range::<str, _>((Bound::Included(start), Bound::Unbounded))
        {
            if !key.starts_with(req.prefix) {
                break;
            }
            let at = versions.partition_point(|v| v.revision <= revision);
            let Some(kv) = at.checked_sub(1).and_then(|i| versions[i].to_kv(key)) else {
                continue;
            };
            if req.limit != 0 && kvs.len() == req.limit {
                more = true;
                break;
            }
            kvs.push(kv);
        }
        Ok(ListResult {
            kvs,
            revision,
            more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let mut state = self.shared.lock();
        if state.latest(key).is_some() {
            return Err(Error::AlreadyExists { key: key.into() });
        }
        Ok(state.commit(key, Some(value), None))
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let mut state = self.shared.lock();
        let current = state.check_conflict(key, expected)?;
        Ok(state.commit(key, Some(value), Some(current)))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let mut state = self.shared.lock();
        let current = match expected {
            Some(expected) => state.check_conflict(key, expected)?,
            None => state
                .latest(key)
                .ok_or_else(|| Error::NotFound { key: key.into() })?,
        };
        Ok(state.commit(key, None, Some(current)))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let rx = self.shared.lock().events.subscribe();
        let history: Arc<dyn History> = self.shared.clone();
        watch::start(&history, rx, prefix.to_owned(), after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.shared.lock();
        if revision > state.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: state.revision,
            });
        }
        if revision > state.compacted {
            state.compact(revision);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
