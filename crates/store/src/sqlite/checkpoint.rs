//! WAL checkpoints off the commit path.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past 1000 pages: the
//! writer then copies pages into the database file and syncs it while every queued write
//! waits (in measurements here that cost ~40% of throughput and the worst latencies). Instead
//! the writer's WAL hook only notes the WAL size and wakes a thread that checkpoints on its
//! own connection, which WAL mode lets run alongside the writer.
//!
//! A background checkpoint alone never lets the log restart under steady writes: SQLite
//! rewinds the WAL only when a write begins with every frame already copied, and by the time
//! the background copy ends the writer has appended more. So once the WAL passes
//! [`INLINE_PAGES`] the writer finishes the job itself between two batches; the background
//! thread has copied most frames by then, so that inline checkpoint is short.

use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use super::SqliteError;
use crate::Result;

/// WAL size (pages) that triggers a checkpoint: SQLite's own autocheckpoint default.
const CHECKPOINT_PAGES: c_int = 1000;

/// WAL size (pages, ~16 MiB at 4 KiB) at which the writer checkpoints inline so the log
/// restarts.
pub(super) const INLINE_PAGES: c_int = 4 * CHECKPOINT_PAGES;

type Hook = fn(&mut Wal, c_int) -> rusqlite::Result<()>;

/// The writer's side: the WAL size its hook last saw and the background thread.
pub(super) struct Checkpointer {
    /// WAL pages after the writer's last commit; written by the hook (which runs on the
    /// writer thread inside a commit) and read by both threads.
    pages: Arc<AtomicI32>,
    thread: Option<JoinHandle<()>>,
}

/// Installs the hook on the writer's connection and starts the checkpoint thread.
pub(super) fn start(writer: &mut Connection, path: &Path) -> Result<Checkpointer> {
    let open_err = |source| SqliteError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(open_err)?;
    super::writer::configure(&conn).map_err(open_err)?;

    // Capacity 1: wake-ups coalesce while a checkpoint runs.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let pages = Arc::new(AtomicI32::new(0));
    let seen = pages.clone();
    writer
        .wal_hook(Some(move |_: &mut Wal, wal_pages: c_int| {
            seen.store(wal_pages, Ordering::Relaxed);
            // Past INLINE_PAGES the writer checkpoints itself; a background run then would
            // only hold the checkpoint lock and make the writer's attempt come back busy.
            if (CHECKPOINT_PAGES..INLINE_PAGES).contains(&wal_pages)
                && let Err(TrySendError::Disconnected(())) = wake.try_send(())
            {
                tracing::warn!("sqlite checkpoint thread is gone; WAL keeps growing");
            }
            Ok(())
        }))
        .map_err(open_err)?;

    let thread = std::thread::Builder::new()
        .name("store-sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                passive(&conn, "background");
            }
        })
        .map_err(SqliteError::SpawnThread)?;
    Ok(Checkpointer {
        pages,
        thread: Some(thread),
    })
}

impl Checkpointer {
    /// Called by the writer between batches: restarts an overgrown WAL.
    pub(super) fn after_commit(&self, writer: &Connection) {
        // If it comes back busy (the background run had not finished), the next commit's
        // WAL size brings the writer back here.
        if self.pages.load(Ordering::Relaxed) >= INLINE_PAGES {
            passive(writer, "inline");
        }
    }

    /// Removes the hook, which drops its wake-up sender and so ends the thread; then joins it.
    pub(super) fn stop(mut self, writer: &mut Connection) {
        if let Err(e) = writer.wal_hook(None::<Hook>) {
            tracing::warn!(error = %e, "removing the sqlite WAL hook");
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("sqlite checkpoint thread panicked");
        }
    }
}

/// A PASSIVE checkpoint never waits: it copies what no reader still needs. It reports busy
/// (not an error) when the other thread's checkpoint is running.
fn passive(conn: &Connection, who: &'static str) {
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match result {
        Ok((busy, log, copied)) => tracing::trace!(who, busy, log, copied, "sqlite checkpoint"),
        Err(e) => tracing::warn!(error = %e, who, "sqlite checkpoint failed"),
    }
}
