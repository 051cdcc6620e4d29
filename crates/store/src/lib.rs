//! The revisioned key-value store under the API server.
//!
//! Every backend keeps a single, global, strictly growing revision: each successful write
//! (create, update, delete) takes the next revision and stamps it on the key as its
//! `mod_revision`. The API server uses that revision as `resourceVersion`.
//!
//! # Layout
//! - `lib.rs`: the [`Store`] trait, its value types and [`Error`].
//! - `memory.rs`: an in-process MVCC map (tests, `--datastore memory`).
//! - `sqlite.rs`: a kine-style revision log in SQLite (WAL), with group commit.
//! - `etcd.rs`: etcd v3 through `etcd-client`.
//! - `conformance.rs`: the one test suite every backend must pass.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

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
