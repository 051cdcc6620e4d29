use std::sync::Arc;

use futures::StreamExt;

use super::MemoryStore;
use crate::conformance::Fixture;
use crate::{EventKind, Store};

async fn fixture(case: &str) -> Fixture {
    Fixture::new(Arc::new(MemoryStore::new()), format!("/t/{case}"), ())
}

crate::conformance_tests!(fixture);

#[tokio::test]
async fn lagging_watch_replays_from_history_without_gaps() {
    // Room for two commits only: the watcher below falls far behind.
    let store = MemoryStore::with_watch_buffer(2);
    let mut watch = store.watch("/k/", 0).await.expect("watch");
    let mut written = Vec::new();
    for i in 0..100 {
        let kv = store
            .create(&format!("/k/{i:03}"), "v".into())
            .await
            .expect("create");
        written.push(kv.mod_revision);
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        let event = watch.next().await.expect("stream open").expect("event");
        assert_eq!(event.kind, EventKind::Put);
        seen.push(event.kv.mod_revision);
    }
    assert_eq!(seen, written);
}

#[tokio::test]
async fn lagging_watch_past_compaction_ends_with_compacted() {
    let store = MemoryStore::with_watch_buffer(2);
    let mut watch = store.watch("/k/", 0).await.expect("watch");
    for i in 0..10 {
        store
            .create(&format!("/k/{i}"), "v".into())
            .await
            .expect("create");
    }
    store.compact(8).await.expect("compact");
    let last = loop {
        match watch.next().await.expect("an error ends the stream") {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(last, crate::Error::Compacted { .. }),
        "got {last:?}"
    );
    assert!(watch.next().await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn watch_ends_when_store_is_dropped() {
    let store = MemoryStore::new();
    let mut watch = store.watch("/", 0).await.expect("watch");
    drop(store);
    assert!(watch.next().await.is_none());
}
