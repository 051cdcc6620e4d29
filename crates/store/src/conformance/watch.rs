//! Watching: replay from the past, live events, previous values, prefix filtering.

use std::collections::HashSet;
use std::sync::Arc;

use super::{bytes, create, current, next_event};
use crate::{EventKind, Store};

pub async fn watch_replays_from_past_revision_then_streams_live(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}/w/");
    create(store, &format!("{p}/first"), "x").await;
    let a = create(store, &format!("{prefix}a"), "a1").await;
    let a2 = store
        .update(&a.key, bytes("a2"), a.mod_revision)
        .await
        .expect("update");
    let b = create(store, &format!("{prefix}b"), "b1").await;

    let mut watch = store.watch(&prefix, a.mod_revision).await.expect("watch");
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, &e.kv, &e.prev),
        (EventKind::Put, &a2, &Some(a.clone()))
    );
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv, &e.prev), (EventKind::Put, &b, &None));

    let c = create(store, &format!("{prefix}c"), "c1").await;
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, &e.kv),
        (EventKind::Put, &c),
        "live after the replay"
    );

    // From just before the first write, the create itself is replayed.
    let mut watch = store
        .watch(&prefix, a.mod_revision - 1)
        .await
        .expect("watch");
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv, &e.prev), (EventKind::Put, &a, &None));
}

pub async fn watch_put_events_carry_previous_value(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let mut watch = store.watch(p, current(store).await).await.expect("watch");
    let created = create(store, &key, "one").await;
    let updated = store
        .update(&key, bytes("two"), created.mod_revision)
        .await
        .expect("update");
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv, &e.prev), (EventKind::Put, &created, &None));
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, &e.kv, &e.prev),
        (EventKind::Put, &updated, &Some(created))
    );
}

pub async fn watch_delete_events_carry_last_value_and_prev(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let created = create(store, &key, "one").await;
    let updated = store
        .update(&key, bytes("two"), created.mod_revision)
        .await
        .expect("update");
    let mut watch = store.watch(p, updated.mod_revision).await.expect("watch");
    let deleted = store.delete(&key, None).await.expect("delete");
    let e = next_event(&mut watch).await;
    assert_eq!(e.kind, EventKind::Delete);
    assert_eq!(e.kv, deleted, "the event carries what delete returned");
    assert_eq!(e.kv.value, bytes("two"), "the last value");
    assert_eq!(e.kv.create_revision, created.create_revision);
    assert_eq!(e.prev, Some(updated), "prev is the value as it was");

    // The same from history.
    let mut replay = store
        .watch(p, deleted.mod_revision - 1)
        .await
        .expect("watch");
    let again = next_event(&mut replay).await;
    assert_eq!(again, e);
}

pub async fn watch_filters_by_prefix(store: &Arc<dyn Store>, p: &str) {
    let pods = format!("{p}/registry/pods/");
    let from = current(store).await;
    let mut live = store.watch(&pods, from).await.expect("watch");
    create(store, &format!("{p}/registry/pods2/ns/x"), "sibling").await;
    create(store, &format!("{p}/registry/pods"), "bare").await;
    create(store, &format!("{p}/registry/services/ns/s"), "other").await;
    let pod = create(store, &format!("{pods}ns/a"), "pod").await;

    // The pod is the first event: the three writes before it were filtered out.
    let e = next_event(&mut live).await;
    assert_eq!(e.kv, pod);
    let mut replay = store.watch(&pods, from).await.expect("watch");
    let e = next_event(&mut replay).await;
    assert_eq!(e.kv, pod, "history is filtered the same way");
}

pub async fn watch_from_compaction_point_still_works(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}/k/");
    let a = create(store, &format!("{prefix}a"), "a").await;
    store
        .update(&a.key, bytes("a2"), a.mod_revision)
        .await
        .expect("update");
    let b = create(store, &format!("{prefix}b"), "b").await;
    let c = create(store, &format!("{prefix}c"), "c").await;
    store.compact(b.mod_revision).await.expect("compact");

    // etcd allows start_revision == compaction point, i.e. `after = point - 1`.
    let mut watch = store
        .watch(&prefix, b.mod_revision - 1)
        .await
        .expect("watch at the compaction point");
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Put, &b));
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Put, &c));
}

pub async fn watch_sees_concurrent_writes_in_order_without_gaps(store: &Arc<dyn Store>, p: &str) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let prefix = format!("{p}/c/");
    let mut watch = store
        .watch(&prefix, current(store).await)
        .await
        .expect("watch");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                for i in 0..EACH {
                    let key = format!("{prefix}w{w}/{i}");
                    let kv = store.create(&key, bytes("x")).await.expect("create");
                    revisions.push(kv.mod_revision);
                    if i % 5 == 0 {
                        let kv = store.delete(&key, None).await.expect("delete");
                        revisions.push(kv.mod_revision);
                    }
                }
                revisions
            })
        })
        .collect();
    let mut written = HashSet::new();
    for task in tasks {
        written.extend(task.await.expect("task"));
    }
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        seen.push(next_event(&mut watch).await.kv.mod_revision);
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "events arrive in revision order"
    );
    assert_eq!(
        seen.into_iter().collect::<HashSet<_>>(),
        written,
        "every write is seen once"
    );
}
