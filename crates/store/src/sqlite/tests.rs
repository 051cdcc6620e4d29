use std::sync::Arc;

use futures::StreamExt;

use super::{Options, SqliteStore};
use crate::conformance::Fixture;
use crate::{Error, EventKind, ListRequest, Store};

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("db").join("state.db")).expect("open")
}

async fn fixture(case: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    Fixture::new(Arc::new(store), format!("/t/{case}"), dir)
}

crate::conformance_tests!(fixture);

fn rows(dir: &tempfile::TempDir) -> i64 {
    let conn = rusqlite::Connection::open(dir.path().join("db").join("state.db")).expect("open");
    conn.query_row("SELECT COUNT(*) FROM log", [], |r| r.get(0))
        .expect("count")
}

#[tokio::test]
async fn acknowledged_writes_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let a = store.create("/a", "1".into()).await.expect("create");
    let a2 = store
        .update("/a", "2".into(), a.mod_revision)
        .await
        .expect("update");
    let b = store.create("/b", "1".into()).await.expect("create");
    let deleted = store.delete("/b", None).await.expect("delete");
    drop(store);

    let store = open(&dir);
    assert_eq!(
        store.current_revision().await.expect("rev"),
        deleted.mod_revision
    );
    assert_eq!(store.get("/a").await.expect("get"), Some(a2.clone()));
    assert_eq!(store.get("/b").await.expect("get"), None);
    let old = store
        .list(ListRequest {
            prefix: "/",
            revision: b.mod_revision,
            ..Default::default()
        })
        .await
        .expect("history survives too");
    assert_eq!(old.kvs, vec![a2, b]);
    let c = store.create("/c", "1".into()).await.expect("create");
    assert_eq!(c.mod_revision, deleted.mod_revision + 1);
}

#[tokio::test]
async fn revisions_are_never_reused_after_compaction_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut newest = 0;
    for i in 0..5 {
        let kv = store
            .create(&format!("/k{i}"), "v".into())
            .await
            .expect("create");
        newest = store
            .delete(&kv.key, None)
            .await
            .expect("delete")
            .mod_revision;
    }
    store.compact(newest).await.expect("compact");
    drop(store);

    let store = open(&dir);
    assert_eq!(store.current_revision().await.expect("rev"), newest);
    let kv = store.create("/again", "v".into()).await.expect("create");
    assert_eq!(kv.mod_revision, newest + 1);
    let err = store
        .list(ListRequest {
            prefix: "/",
            revision: newest - 1,
            ..Default::default()
        })
        .await
        .expect_err("compaction point survives reopen");
    assert!(matches!(err, Error::Compacted { .. }), "got {err:?}");
}

#[tokio::test]
async fn compaction_deletes_superseded_rows_and_old_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut kv = store.create("/a", "0".into()).await.expect("create");
    for i in 1..10 {
        kv = store
            .update("/a", i.to_string().into(), kv.mod_revision)
            .await
            .expect("update");
    }
    let gone = store.create("/gone", "x".into()).await.expect("create");
    store.delete(&gone.key, None).await.expect("delete");
    let keep = store.create("/keep", "x".into()).await.expect("create");
    assert_eq!(rows(&dir), 13);

    store.compact(keep.mod_revision).await.expect("compact");
    // Left: the newest /a and /keep. /gone's row and tombstone are both below the point.
    assert_eq!(rows(&dir), 2);
    assert_eq!(store.get("/a").await.expect("get"), Some(kv));
}

#[tokio::test]
async fn lagging_watch_replays_from_the_log_without_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options {
        watch_buffer: 2,
        ..Options::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("state.db"), options).expect("open");
    let store: Arc<dyn Store> = Arc::new(store);
    let mut watch = store.watch("/k/", 0).await.expect("watch");
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                for i in 0..100 {
                    let kv = store
                        .create(&format!("/k/{w}/{i}"), "v".into())
                        .await
                        .expect("create");
                    revisions.push(kv.mod_revision);
                }
                revisions
            })
        })
        .collect();
    let mut written = Vec::new();
    for task in tasks {
        written.extend(task.await.expect("task"));
    }
    written.sort_unstable();
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        let event = watch.next().await.expect("stream open").expect("event");
        assert_eq!(event.kind, EventKind::Put);
        seen.push(event.kv.mod_revision);
    }
    assert_eq!(seen, written);
}

#[tokio::test]
async fn writes_in_one_batch_see_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(open(&dir));
    // Queued together, these likely share a transaction; whatever the batching, exactly one
    // create wins and the delete and recreate apply in order.
    let (a, b, c) = tokio::join!(
        store.create("/x", "1".into()),
        store.create("/x", "2".into()),
        store.create("/y", "1".into()),
    );
    assert_eq!([&a, &b].iter().filter(|r| r.is_ok()).count(), 1);
    c.expect("create /y");
    let deleted = store.delete("/x", None).await.expect("delete");
    let (d, e) = tokio::join!(store.create("/x", "3".into()), store.delete("/x", None));
    let recreated = d.expect("recreate");
    assert!(recreated.create_revision > deleted.mod_revision);
    match e {
        Ok(gone) => assert_eq!(gone.value, recreated.value),
        Err(err) => assert!(matches!(err, Error::NotFound { .. }), "got {err:?}"),
    }
}

#[tokio::test]
async fn watch_ends_when_store_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let mut watch = store.watch("/", 0).await.expect("watch");
    drop(store);
    assert!(watch.next().await.is_none());
}
