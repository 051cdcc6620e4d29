//! Reads: a small pool of connections (WAL lets them read while the writer commits), used
//! from `spawn_blocking`, and the queries behind `get`, `list` and watch replay.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension};

use super::SqliteError;
use crate::watch::History;
use crate::{Error, Event, EventKind, KeyValue, ListRequest, ListResult, Result, Revision};

pub(super) struct Reader {
    path: PathBuf,
    /// Idle connections; a read takes one (or opens one when none is idle) and puts it back.
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Reader {
    pub(super) fn new(path: PathBuf, max_idle: usize) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// Runs `read` on a pooled connection off the async threads.
    pub(super) async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = this.checkout()?;
            let result = read(&mut conn);
            this.checkin(conn);
            result
        })
        .await
        .map_err(SqliteError::ReadTask)?
    }

    fn checkout(&self) -> Result<Connection> {
        if let Some(conn) = self.idle().pop() {
            return Ok(conn);
        }
        let open_err = |source| SqliteError::Open {
            path: self.path.clone(),
            source,
        };
        let conn = Connection::open(&self.path).map_err(open_err)?;
        super::writer::configure(&conn).map_err(open_err)?;
        // Reads must never write, even by mistake.
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(open_err)?;
        Ok(conn)
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.idle();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // The pool is a plain Vec, consistent even if a holder panicked.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Watch replay from the log.
pub(super) struct LogHistory(pub(super) Arc<Reader>);

#[async_trait::async_trait]
impl History for LogHistory {
    async fn events_after(
        &self,
        prefix: &str,
        after: Revision,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let prefix = prefix.to_owned();
        self.0
            .run(move |conn| events_after(conn, &prefix, after, limit))
            .await
    }
}

/// A [`ListRequest`] that can move to a blocking thread.
pub(super) struct OwnedList {
    prefix: String,
    start: Option<String>,
    limit: usize,
    revision: Revision,
}

impl From<ListRequest<'_>> for OwnedList {
    fn from(req: ListRequest<'_>) -> Self {
        Self {
            prefix: req.prefix.to_owned(),
            start: req.start.map(str::to_owned),
            limit: req.limit,
            revision: req.revision,
        }
    }
}

pub(super) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>> {
    let row: Option<(Revision, Revision, bool, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT rev, create_rev, deleted, value FROM log WHERE key = ?1 \
             ORDER BY rev DESC LIMIT 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([key.as_bytes()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(SqliteError::Read)?;
    Ok(
        row.and_then(|(mod_revision, create_revision, deleted, value)| {
            (!deleted).then(|| KeyValue {
                key: key.to_owned(),
                value: Bytes::from(value),
                create_revision,
                mod_revision,
            })
        }),
    )
}

/// The revision and compaction point, read inside the caller's transaction so they match
/// the snapshot the rows come from.
fn marks(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM meta")?;
    let mut rows = stmt.query([])?;
    let (mut revision, mut compacted) = (0, 0);
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        match name.as_str() {
            "revision" => revision = row.get(1)?,
            "compacted" => compacted = row.get(1)?,
            _ => {}
        }
    }
    Ok((revision, compacted))
}

pub(super) fn list(conn: &mut Connection, req: &OwnedList) -> Result<ListResult> {
    let tx = conn.transaction().map_err(SqliteError::Read)?;
    let (current, compacted) = marks(&tx).map_err(SqliteError::Read)?;
    let revision = match req.revision {
        0 => current,
        r if r > current => {
            return Err(Error::FutureRevision {
                requested: r,
                current,
            });
        }
        r if r < compacted => {
            return Err(Error::Compacted {
                requested: r,
                compacted,
            });
        }
        r => r,
    };
    let start = crate::range_start(&req.prefix, req.start.as_deref());
    let end = crate::prefix_end(&req.prefix);
    // Per key, the newest row at or below the revision: SQLite fills the bare columns from
    // the row that holds MAX(rev). Tombstones are skipped below, not in SQL, so the limit
    // counts live keys only.
    let mut stmt = tx
        .prepare_cached(
            "SELECT key, MAX(rev), create_rev, deleted, value FROM log \
             WHERE key >= ?1 AND key < ?2 AND rev <= ?3 GROUP BY key ORDER BY key",
        )
        .map_err(SqliteError::Read)?;
    let mut rows = stmt
        .query(rusqlite::params![start.as_bytes(), end, revision])
        .map_err(SqliteError::Read)?;
    let mut kvs = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next().map_err(SqliteError::Read)? {
        let deleted: bool = row.get(3).map_err(SqliteError::Read)?;
        if deleted {
            continue;
        }
        if req.limit != 0 && kvs.len() == req.limit {
            more = true;
            break;
        }
        kvs.push(row_kv(row, 0, 1, 2, 4)?);
    }
    Ok(ListResult {
        kvs,
        revision,
        more,
    })
}

pub(super) fn events_after(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<Vec<Event>> {
    let tx = conn.transaction().map_err(SqliteError::Read)?;
    let (_, compacted) = marks(&tx).map_err(SqliteError::Read)?;
    // etcd lets a watch start at the compaction point itself (`after = compacted - 1`).
    if after + 1 < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.key, l.rev, l.create_rev, l.deleted, l.value, \
                    p.key, p.rev, p.create_rev, p.value \
             FROM log AS l LEFT JOIN log AS p ON p.rev = l.prev_rev AND l.prev_rev != 0 \
             WHERE l.rev > ?1 AND l.key >= ?2 AND l.key < ?3 ORDER BY l.rev LIMIT ?4",
        )
        .map_err(SqliteError::Read)?;
    let end = crate::prefix_end(prefix);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(rusqlite::params![after, prefix.as_bytes(), end, limit])
        .map_err(SqliteError::Read)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(SqliteError::Read)? {
        let deleted: bool = row.get(3).map_err(SqliteError::Read)?;
        let has_prev = row
            .get::<_, Option<Revision>>(6)
            .map_err(SqliteError::Read)?
            .is_some();
        let prev = if has_prev {
            Some(row_kv(row, 5, 6, 7, 8)?)
        } else {
            None
        };
        let mut kv = row_kv(row, 0, 1, 2, 4)?;
        let kind = if deleted {
            // A tombstone stores no value: the event carries the last one (etcd's delete
            // event with prev_kv has it too), stamped with the deletion's revision.
            if let Some(prev) = &prev {
                kv.value = prev.value.clone();
            }
            EventKind::Delete
        } else {
            EventKind::Put
        };
        events.push(Event { kind, kv, prev });
    }
    Ok(events)
}

/// A key-value from the given columns (key, rev, create_rev, value) of a row.
fn row_kv(
    row: &rusqlite::Row<'_>,
    key: usize,
    rev: usize,
    create_rev: usize,
    value: usize,
) -> Result<KeyValue> {
    let read = |e| Error::from(SqliteError::Read(e));
    let key: Vec<u8> = row.get(key).map_err(read)?;
    Ok(KeyValue {
        key: String::from_utf8(key).map_err(SqliteError::InvalidKey)?,
        value: Bytes::from(row.get::<_, Vec<u8>>(value).map_err(read)?),
        create_revision: row.get(create_rev).map_err(read)?,
        mod_revision: row.get(rev).map_err(read)?,
    })
}
