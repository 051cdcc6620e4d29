//! A kine-style revision log in SQLite: one row per revision (`log`), the newest row of a key
//! is its current state, a deletion is a tombstone row. Reads at an older revision take, per
//! key, the newest row at or below it.
//!
//! Writes go through one writer thread that drains every pending request into one
//! transaction and commits it once (group commit), so many concurrent writers share one
//! `fsync` (`synchronous=FULL`: a write is acknowledged only once durable). Reads use a small
//! pool of separate connections, which WAL mode lets run alongside the writer, and WAL
//! checkpoints run on a thread of their own (`checkpoint.rs`), off the commit path.

mod checkpoint;
mod reader;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::watch::{self, History};
use crate::{Error, KeyValue, ListRequest, ListResult, Result, Revision, Store, WatchStream};
use reader::{LogHistory, Reader};
use writer::{Op, Request};

/// Why a SQLite operation failed; reaches callers as [`Error::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("creating the database directory {path:?}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the database {path:?}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("preparing the schema")]
    Schema(#[source] rusqlite::Error),
    #[error("starting a database thread")]
    SpawnThread(#[source] std::io::Error),
    /// The group commit this write was part of failed; none of its writes happened.
    #[error("committing a batch of writes")]
    Commit(#[source] Arc<rusqlite::Error>),
    #[error("compacting the revision log")]
    Compact(#[source] Arc<rusqlite::Error>),
    #[error("reading the revision log")]
    Read(#[source] rusqlite::Error),
    #[error("the read task failed")]
    ReadTask(#[source] tokio::task::JoinError),
    #[error("stored key is not UTF-8")]
    InvalidKey(#[source] std::string::FromUtf8Error),
    /// The writer thread is gone (the store is shutting down, or it panicked).
    #[error("the writer thread has stopped")]
    WriterStopped,
}

impl From<SqliteError> for Error {
    fn from(e: SqliteError) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// Tuning knobs; [`Options::default`] suits a server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Most writes committed in one transaction. Bounds the latency a large backlog adds to
    /// the first write in it.
    pub max_batch: usize,
    /// How many commits a watcher may fall behind before it re-reads the log instead.
    pub watch_buffer: usize,
    /// Read connections kept open between reads (more are opened under load, then closed).
    pub read_connections: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_batch: 2048,
            watch_buffer: 1024,
            read_connections: 4,
        }
    }
}

/// The SQLite backend. Dropping it finishes the writes already queued and closes the
/// database; watch streams then end.
pub struct SqliteStore {
    /// Queue to the writer thread; `None` only while dropping.
    requests: Option<mpsc::Sender<Request>>,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: Arc<Reader>,
    history: Arc<dyn History>,
    /// Subscribed to by new watches; the writer thread publishes on its own clone.
    events: broadcast::Sender<watch::Batch>,
    /// The newest committed revision, set by the writer after each commit and before it
    /// answers the writes in it.
    revision: Arc<AtomicI64>,
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path`. Blocking: call it from
    /// `spawn_blocking` in async code, or use [`crate::open`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Options::default())
    }

    /// [`SqliteStore::open`] with explicit [`Options`].
    pub fn open_with(path: &Path, options: Options) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let (writer, revision) = writer::Writer::open(path, events.clone(), options.max_batch)?;
        let revision = Arc::new(AtomicI64::new(revision));
        // Bounded so a flood of writers waits for the disk instead of queueing without limit.
        let (requests, rx) = mpsc::channel(options.max_batch.max(1) * 4);
        let published = revision.clone();
        let thread = std::thread::Builder::new()
            .name("store-sqlite-writer".into())
            .spawn(move || writer.run(rx, &published))
            .map_err(SqliteError::SpawnThread)?;
        let reader = Arc::new(Reader::new(path.to_owned(), options.read_connections));
        Ok(Self {
            requests: Some(requests),
            writer: Some(thread),
            history: Arc::new(LogHistory(reader.clone())),
            reader,
            events,
            revision,
        })
    }

    async fn write(&self, op: Op) -> Result<KeyValue> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Write { op, reply }).await?;
        rx.await.map_err(|_| SqliteError::WriterStopped)?
    }

    async fn send(&self, request: Request) -> Result<()> {
        let requests = self.requests.as_ref().ok_or(SqliteError::WriterStopped)?;
        requests
            .send(request)
            .await
            .map_err(|_| SqliteError::WriterStopped.into())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer commit what is queued and exit; joining it means
        // the database is closed when drop returns, so the same file can be reopened at once.
        self.requests = None;
        if let Some(thread) = self.writer.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite writer thread panicked");
        }
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.reader.run(move |conn| reader::get(conn, &key)).await
    }

    async fn list(&self, req: ListRequest<'_>) -> Result<ListResult> {
        let req = reader::OwnedList::from(req);
        self.reader.run(move |conn| reader::list(conn, &req)).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(Op::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.write(Op::Update {
            key: key.to_owned(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.write(Op::Delete {
            key: key.to_owned(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let rx = self.events.subscribe();
        watch::start(&self.history, rx, prefix.to_owned(), after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Compact { revision, reply }).await?;
        rx.await.map_err(|_| SqliteError::WriterStopped)?
    }
}

#[cfg(test)]
mod tests;
