//! The revisioned key-value store under the API server.
//!
//! Every backend keeps a single, global, strictly growing revision: each successful write
//! (create, update, delete) takes the next revision and stamps it on the key as its
//! `mod_revision`. The API server uses that revision as `resourceVersion`.
//!
//! Compaction follows etcd: after `compact(C)` the state at every revision `>= C` stays
//! readable, `list` below `C` fails with [`Error::Compacted`], and a watch may start at any
//! `after >= C - 1` (etcd's `start_revision >= C`).
//!
//! # Layout
//! - `lib.rs`: the [`Store`] trait, its value types, [`Error`], [`Backend`] and [`open`].
//! - `memory.rs`: an in-process MVCC map (tests, `--datastore memory`).
//! - `sqlite/`: a kine-style revision log in SQLite (WAL), with group commit
//!   (`writer.rs`: the one writer thread; `reader.rs`: the read connection pool and queries;
//!   `checkpoint.rs`: WAL checkpoints on their own thread).
//! - `etcd.rs`: etcd v3 through `etcd-client`.
//! - `watch.rs`: the watch stream shared by memory and sqlite (live broadcast + replay from
//!   history, recovering from lag by re-reading history).
//! - `compactor.rs`: the periodic background compactor ([`spawn_compactor`]).
//! - `conformance/`: the one test suite every backend must pass (under `cfg(test)` or the
//!   `conformance` feature), plus `conformance::TestEtcd`, a throwaway etcd server. Each
//!   backend runs it from its `tests.rs` (`memory/`, `sqlite/`, `etcd/`), next to the tests
//!   only that backend needs (durability, lag recovery, ...).
//!
//! Compacting to a revision at or below the compaction point is a no-op; compacting past the
//! current revision is [`Error::FutureRevision`].

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

mod compactor;
pub mod etcd;
pub mod memory;
pub mod sqlite;
mod watch;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use compactor::{DEFAULT_COMPACT_INTERVAL, DEFAULT_KEEP_REVISIONS, spawn_compactor};

pub type Revision = i64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision at which the key was (last) created.
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change observed by [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For `Put`: the new value. For `Delete`: the key's last value, with `mod_revision`
    /// set to the revision of the deletion.
    pub kv: KeyValue,
    /// The value before this change (`None` for a create).
    pub prev: Option<KeyValue>,
}

/// What [`Store::list`] reads.
#[derive(Clone, Debug, Default)]
pub struct ListRequest<'a> {
    /// Only keys starting with this prefix.
    pub prefix: &'a str,
    /// Only keys `>=` this key (used to continue a paged list).
    pub start: Option<&'a str>,
    /// At most this many keys; `0` means no limit.
    pub limit: usize,
    /// Read the state as of this revision; `0` means the current revision.
    pub revision: Revision,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// Live keys in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: Revision,
    /// True when more keys matched than `limit` allowed.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },
    #[error("key {key:?} not found")]
    NotFound { key: String },
    /// A compare-and-swap failed: the key is not at the expected revision.
    /// `current` is the key's current value, if it still exists.
    #[error("key {key:?} has been modified (expected revision {expected})")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<KeyValue>,
    },
    #[error("revision {requested} has been compacted (compacted at {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Events after a revision, in revision order. The stream ends only when the store is
/// dropped or the watch falls irrecoverably behind (then its last item is an error).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// A revisioned key-value store. Every method is safe to call concurrently; a write returns
/// only once it is durable (for backends that persist).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The key's current value, or `None`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Live keys under a prefix, as of a revision. `Compacted` when the revision was
    /// compacted away; `FutureRevision` when it is ahead of the store.
    async fn list(&self, req: ListRequest<'_>) -> Result<ListResult>;

    /// Creates the key if it does not exist (`AlreadyExists` otherwise).
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces the key's value if its `mod_revision` equals `expected`
    /// (`Conflict` otherwise, `NotFound` if absent).
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes the key, if `expected` is `Some`, only when its `mod_revision` matches.
    /// Returns the deleted value with `mod_revision` set to the deletion's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Events for keys under `prefix` with revision `> after`. `Compacted` if `after` is
    /// older than the compaction point.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The newest revision (0 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// Drops history older than `revision`; later reads at older revisions get `Compacted`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// Which backend [`open`] connects to (`--datastore`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Nothing persists; for tests and throwaway clusters.
    Memory,
    /// The SQLite database file (created with its parent directories if missing).
    Sqlite(PathBuf),
    /// etcd v3 client endpoints, e.g. `http://127.0.0.1:2379`.
    Etcd(Vec<String>),
}

/// Opens the backend. For SQLite this creates or migrates the schema and starts the writer
/// thread; for etcd it connects and makes one real request, so a wrong endpoint fails here
/// rather than at the first write.
pub async fn open(backend: &Backend) -> Result<Arc<dyn Store>> {
    Ok(match backend {
        Backend::Memory => Arc::new(memory::MemoryStore::new()),
        Backend::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path))
                .await
                .map_err(|e| Error::Backend(Box::new(e)))??;
            Arc::new(store)
        }
        Backend::Etcd(endpoints) => Arc::new(etcd::EtcdStore::connect(endpoints).await?),
    })
}

/// The smallest byte string greater than every key starting with `prefix`: the exclusive
/// upper bound of a prefix range, like etcd's `range_end = prefix + 1`.
///
/// Keys are UTF-8, which never contains the byte `0xFF`, so `[0xFF]` bounds the empty prefix
/// (every key) and a prefix can always be incremented in its last byte.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF]
}

/// The first key a list reads: the prefix, or `start` when that lies further on.
pub(crate) fn range_start<'a>(prefix: &'a str, start: Option<&'a str>) -> &'a str {
    match start {
        Some(start) if start > prefix => start,
        _ => prefix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(""), vec![0xFF]);
    }

    #[test]
    fn range_start_never_goes_before_prefix() {
        assert_eq!(range_start("/a/", Some("/")), "/a/");
        assert_eq!(range_start("/a/", Some("/a/x")), "/a/x");
        assert_eq!(range_start("/a/", None), "/a/");
    }
}
