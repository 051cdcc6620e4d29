//! The one writer thread: group commit, compare-and-swap checks and compaction.
//!
//! SQLite admits one writer at a time and a durable commit costs an `fsync`, so instead of
//! many connections queueing on the database lock, one thread takes every pending request,
//! applies them in one transaction, commits once, publishes the events and then answers.
//! Compaction runs on the same thread in bounded chunks between write batches, so it never
//! stalls writers for long.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::SqliteError;
use crate::watch::Batch;
use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// Revisions whose superseded rows one compaction transaction removes.
const COMPACT_CHUNK: Revision = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,  -- the global revision of this write
    key        BLOB    NOT NULL,     -- UTF-8 bytes; BLOB so prefix ranges compare bytewise
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,     -- the row this one supersedes; 0 for a create
    deleted    INTEGER NOT NULL,     -- 1 for a tombstone (its value is empty)
    value      BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
-- 'revision': newest revision ever assigned, kept so compaction deleting the newest rows
-- never lets a revision be reused; 'compacted': reads below it fail; 'compact_cursor':
-- compaction has removed everything superseded at or below it.
INSERT OR IGNORE INTO meta (name, value)
    VALUES ('revision', 0), ('compacted', 0), ('compact_cursor', 0);
";

const LATEST: &str = "SELECT rev, create_rev, deleted, value FROM log WHERE key = ?1 \
                      ORDER BY rev DESC LIMIT 1";
const INSERT: &str = "INSERT INTO log (rev, key, create_rev, prev_rev, deleted, value) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub(super) enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Create { key, .. } | Op::Update { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

pub(super) enum Request {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<()>>,
    },
}

type Write = (Op, oneshot::Sender<Result<KeyValue>>);

/// What one applied (not yet answered) batch produced.
struct Applied {
    /// The newest revision after the batch.
    revision: Revision,
    /// One result per op, in order.
    results: Vec<Result<KeyValue>>,
    /// The events of the ops that succeeded, in revision order.
    events: Vec<Event>,
}

pub(super) struct Writer {
    conn: Connection,
    events: broadcast::Sender<Batch>,
    max_batch: usize,
    /// Newest committed revision.
    revision: Revision,
    /// Requested compaction point; reads below it fail once `stored_compacted` reaches it.
    compacted: Revision,
    /// Compaction point recorded in the database.
    stored_compacted: Revision,
    /// Rows superseded at or below this revision are already deleted.
    cursor: Revision,
    /// Compactions to answer once `cursor` reaches `revision - 1`.
    waiters: Vec<(Revision, oneshot::Sender<Result<()>>)>,
    /// Set when a compaction chunk failed, so a persistent error does not spin the thread;
    /// the next compaction request tries again.
    compaction_paused: bool,
    /// The WAL checkpoint thread, stopped when the writer exits.
    checkpointer: Option<super::checkpoint::Checkpointer>,
}

impl Writer {
    /// Opens the database, creates the schema and reads where the log stands. Returns the
    /// writer and the newest revision.
    pub(super) fn open(
        path: &Path,
        events: broadcast::Sender<Batch>,
        max_batch: usize,
    ) -> Result<(Self, Revision)> {
        let open_err = |source| SqliteError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(SqliteError::Schema)?;
        let checkpointer = super::checkpoint::start(&mut conn, path)?;
        let meta = |name: &str| -> Result<Revision> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .map_err(|e| SqliteError::Schema(e).into())
        };
        let newest_row: Option<Revision> = conn
            .query_row("SELECT MAX(rev) FROM log", [], |r| r.get(0))
            .map_err(SqliteError::Schema)?;
        let revision = meta("revision")?.max(newest_row.unwrap_or(0));
        let compacted = meta("compacted")?;
        let cursor = meta("compact_cursor")?;
        let writer = Self {
            conn,
            events,
            max_batch: max_batch.max(1),
            revision,
            compacted,
            stored_compacted: compacted,
            cursor,
            waiters: Vec::new(),
            compaction_paused: false,
            checkpointer: Some(checkpointer),
        };
        Ok((writer, revision))
    }

    /// Serves requests until every sender is gone. A compaction interrupted here resumes on
    /// the next open (its progress is in `meta`).
    pub(super) fn run(mut self, mut requests: mpsc::Receiver<Request>, published: &AtomicI64) {
        let mut writes: Vec<Write> = Vec::new();
        loop {
            // Block for work only when no compaction is waiting to make progress.
            let first = if self.compaction_pending() {
                match requests.try_recv() {
                    Ok(request) => Some(request),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match requests.blocking_recv() {
                    Some(request) => Some(request),
                    None => break,
                }
            };
            if let Some(request) = first {
                self.accept(request, &mut writes);
                // Everything that queued up meanwhile joins this commit.
                while writes.len() < self.max_batch {
                    match requests.try_recv() {
                        Ok(request) => self.accept(request, &mut writes),
                        Err(_) => break,
                    }
                }
            }
            if !writes.is_empty() {
                self.commit(std::mem::take(&mut writes), published);
                if let Some(checkpointer) = &self.checkpointer {
                    checkpointer.after_commit(&self.conn);
                }
            }
            if self.compaction_pending() {
                self.compact_chunk();
            }
        }
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop(&mut self.conn);
        }
    }

    fn accept(&mut self, request: Request, writes: &mut Vec<Write>) {
        match request {
            Request::Write { op, reply } => writes.push((op, reply)),
            Request::Compact { revision, reply } => {
                if revision > self.revision {
                    let _ = reply.send(Err(Error::FutureRevision {
                        requested: revision,
                        current: self.revision,
                    }));
                } else if revision <= self.stored_compacted && revision - 1 <= self.cursor {
                    // Already compacted at or past it: compaction is idempotent.
                    let _ = reply.send(Ok(()));
                } else {
                    self.compacted = self.compacted.max(revision);
                    self.compaction_paused = false;
                    self.waiters.push((revision, reply));
                }
            }
        }
    }

    fn compaction_pending(&self) -> bool {
        !self.compaction_paused
            && (self.stored_compacted < self.compacted || self.cursor < self.compacted - 1)
    }

    /// Applies a batch in one transaction and answers every write in it.
    fn commit(&mut self, writes: Vec<Write>, published: &AtomicI64) {
        let (ops, replies): (Vec<Op>, Vec<_>) = writes.into_iter().unzip();
        match self.apply(&ops) {
            Ok(Applied {
                revision,
                results,
                events,
            }) => {
                self.revision = revision;
                published.store(revision, Ordering::Release);
                if !events.is_empty() {
                    // An error only means nobody is watching.
                    let _ = self.events.send(Arc::from(events));
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = ops.len(), "sqlite group commit failed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(SqliteError::Commit(e.clone()).into()));
                }
            }
        }
    }

    /// Checks and writes each op against the newest row of its key, as left by earlier ops
    /// of the same batch. An SQL error rolls the whole batch back (the transaction is
    /// dropped uncommitted), so no op in it happened.
    fn apply(&mut self, ops: &[Op]) -> rusqlite::Result<Applied> {
        let mut revision = self.revision;
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::new();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut latest = tx.prepare_cached(LATEST)?;
            let mut insert = tx.prepare_cached(INSERT)?;
            // The live value of each key this batch touched, `None` once deleted: later ops
            // on the same key must see earlier ones, which the database does not yet show.
            let mut batch_view: HashMap<&str, Option<KeyValue>> = HashMap::new();
            for op in ops {
                let key = op.key();
                let current = match batch_view.get(key) {
                    Some(kv) => kv.clone(),
                    None => latest
                        .query_row([key.as_bytes()], |row| {
                            let deleted: bool = row.get(2)?;
                            let kv = KeyValue {
                                key: key.to_owned(),
                                mod_revision: row.get(0)?,
                                create_revision: row.get(1)?,
                                value: Bytes::from(row.get::<_, Vec<u8>>(3)?),
                            };
                            Ok((!deleted).then_some(kv))
                        })
                        .optional()?
                        .flatten(),
                };
                let (kind, kv, prev) = match check(op, current) {
                    Ok(change) => change,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                revision += 1;
                let (kv, row) = stamp(kind, kv, prev.as_ref(), revision);
                insert.execute(params![
                    revision,
                    key.as_bytes(),
                    kv.create_revision,
                    prev.as_ref().map_or(0, |p| p.mod_revision),
                    kind == EventKind::Delete,
                    &row[..],
                ])?;
                batch_view.insert(key, (kind == EventKind::Put).then(|| kv.clone()));
                results.push(Ok(kv.clone()));
                events.push(Event { kind, kv, prev });
            }
            if revision != self.revision {
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE name = 'revision'",
                    [revision],
                )?;
            }
        }
        tx.commit()?;
        Ok(Applied {
            revision,
            results,
            events,
        })
    }

    /// Deletes the rows one chunk of revisions superseded (and tombstones in it), recording
    /// the compaction point in the same transaction so readers never see it half done.
    fn compact_chunk(&mut self) {
        let target = self.compacted;
        let hi = (self.cursor + COMPACT_CHUNK)
            .min(target - 1)
            .max(self.cursor);
        let result = (|| -> rusqlite::Result<()> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compacted'",
                [target],
            )?;
            if hi > self.cursor {
                // Rows superseded by a write below the compaction point can no longer be the
                // answer to any allowed read; etcd keeps the same window (state at C - 1 on).
                tx.execute(
                    "DELETE FROM log WHERE rev IN (SELECT prev_rev FROM log \
                     WHERE rev > ?1 AND rev <= ?2 AND prev_rev != 0)",
                    [self.cursor, hi],
                )?;
                tx.execute(
                    "DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND deleted = 1",
                    [self.cursor, hi],
                )?;
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'compact_cursor'",
                [hi],
            )?;
            tx.commit()
        })();
        match result {
            Ok(()) => {
                self.stored_compacted = target;
                self.cursor = hi;
                tracing::debug!(rev = target, cursor = hi, "compacted sqlite log chunk");
                let done = self.cursor;
                let (finished, waiting) = std::mem::take(&mut self.waiters)
                    .into_iter()
                    .partition(|(rev, _)| *rev - 1 <= done);
                self.waiters = waiting;
                for (_, reply) in finished {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, rev = target, "sqlite compaction failed");
                // Pause until the next request, which resumes from `cursor`; the callers learn
                // why. Nothing was deleted without its compaction point being recorded.
                self.compaction_paused = true;
                self.compacted = self.stored_compacted;
                let e = Arc::new(e);
                for (_, reply) in self.waiters.drain(..) {
                    let _ = reply.send(Err(SqliteError::Compact(e.clone()).into()));
                }
            }
        }
    }
}

/// Connection settings shared by the writer and readers.
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL lets readers run while the writer commits; FULL syncs the WAL on every commit, so
    // an acknowledged write survives power loss (kine and etcd promise the same).
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "sqlite refused WAL mode");
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Decides whether `op` may happen given the key's live value, returning the event kind,
/// the new value (for a delete: the last value) and the previous value.
fn check(op: &Op, current: Option<KeyValue>) -> Result<(EventKind, KeyValue, Option<KeyValue>)> {
    match (op, current) {
        (Op::Create { key, .. }, Some(_)) => Err(Error::AlreadyExists { key: key.clone() }),
        (Op::Create { key, value }, None) => Ok((
            EventKind::Put,
            KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: 0,
                mod_revision: 0,
            },
            None,
        )),
        (Op::Update { key, .. } | Op::Delete { key, .. }, None) => {
            Err(Error::NotFound { key: key.clone() })
        }
        (Op::Update { key, expected, .. }, Some(current))
        | (
            Op::Delete {
                key,
                expected: Some(expected),
            },
            Some(current),
        ) if current.mod_revision != *expected => Err(Error::Conflict {
            key: key.clone(),
            expected: *expected,
            current: Some(current),
        }),
        (Op::Update { value, .. }, Some(current)) => {
            let kv = KeyValue {
                value: value.clone(),
                ..current.clone()
            };
            Ok((EventKind::Put, kv, Some(current)))
        }
        (Op::Delete { .. }, Some(current)) => {
            Ok((EventKind::Delete, current.clone(), Some(current)))
        }
    }
}

/// Stamps the change with its revision; returns the resulting key-value and the bytes the
/// row stores (a tombstone stores none: its value is the previous row's).
fn stamp(
    kind: EventKind,
    mut kv: KeyValue,
    prev: Option<&KeyValue>,
    revision: Revision,
) -> (KeyValue, Bytes) {
    kv.mod_revision = revision;
    kv.create_revision = prev.map_or(revision, |p| p.create_revision);
    let row = match kind {
        EventKind::Put => kv.value.clone(),
        EventKind::Delete => Bytes::new(),
    };
    (kv, row)
}
