//! Listing: prefixes, paging, reads at old revisions, compaction.

use std::sync::Arc;

use super::{bytes, create, current};
use crate::{Error, ListRequest, ListResult, Revision, Store};

async fn list(store: &Arc<dyn Store>, prefix: &str, revision: Revision) -> ListResult {
    store
        .list(ListRequest {
            prefix,
            revision,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("list {prefix} at {revision}: {e}"))
}

/// The (key, value) pairs of a list result.
fn pairs(result: &ListResult) -> Vec<(String, String)> {
    result
        .kvs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                String::from_utf8_lossy(&kv.value).into_owned(),
            )
        })
        .collect()
}

fn pair(key: String, value: &str) -> (String, String) {
    (key, value.to_owned())
}

pub async fn list_prefix_excludes_sibling_prefixes(store: &Arc<dyn Store>, p: &str) {
    let pods = format!("{p}/registry/pods/");
    create(store, &format!("{pods}ns/b"), "b").await;
    create(store, &format!("{pods}ns/a"), "a").await;
    create(store, &format!("{pods}other/c"), "c").await;
    create(store, &format!("{p}/registry/pods2/ns/x"), "x").await;
    create(store, &format!("{p}/registry/pods"), "bare").await;
    create(store, &format!("{p}/registry/pod"), "short").await;
    let gone = create(store, &format!("{pods}ns/gone"), "gone").await;
    store.delete(&gone.key, None).await.expect("delete");

    let result = list(store, &pods, 0).await;
    assert_eq!(
        pairs(&result),
        vec![
            pair(format!("{pods}ns/a"), "a"),
            pair(format!("{pods}ns/b"), "b"),
            pair(format!("{pods}other/c"), "c"),
        ],
        "live keys under the prefix, in key order"
    );
    assert!(!result.more);
    assert_eq!(result.revision, current(store).await);

    let ns = list(store, &format!("{pods}ns/"), 0).await;
    assert_eq!(ns.kvs.len(), 2);
}

pub async fn list_and_watch_with_empty_prefix_see_every_key(store: &Arc<dyn Store>, p: &str) {
    let from = current(store).await;
    let mut watch = store.watch("", from).await.expect("watch every key");
    let a = create(store, &format!("{p}/a"), "a").await;
    let b = create(store, &format!("{p}/b"), "b").await;
    let all = list(store, "", 0).await;
    assert!(
        all.kvs.contains(&a) && all.kvs.contains(&b),
        "got {:?}",
        all.kvs
    );
    // Other writers may share the store: skip their events.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = super::next_event(&mut watch).await;
        if event.kv.key.starts_with(p) {
            seen.push(event.kv);
        }
    }
    assert_eq!(seen, vec![a, b]);
}

pub async fn list_pages_with_start_limit_and_more(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}/items/");
    for i in 0..5 {
        create(store, &format!("{prefix}k{i}"), &format!("v{i}")).await;
    }
    let revision = current(store).await;
    // Written after the first page: a paged list at a fixed revision must not see it.
    let page = |start: Option<String>, limit| {
        let prefix = prefix.clone();
        async move {
            store
                .list(ListRequest {
                    prefix: &prefix,
                    start: start.as_deref(),
                    limit,
                    revision,
                })
                .await
                .expect("list page")
        }
    };
    let first = page(None, 2).await;
    assert_eq!(first.revision, revision);
    assert!(first.more);
    assert_eq!(
        pairs(&first),
        vec![
            pair(format!("{prefix}k0"), "v0"),
            pair(format!("{prefix}k1"), "v1")
        ]
    );
    create(store, &format!("{prefix}k25"), "late").await;

    // Continue right after the last key returned, as the API server's continue token does.
    let second = page(Some(format!("{prefix}k1\0")), 2).await;
    assert!(second.more);
    assert_eq!(
        pairs(&second),
        vec![
            pair(format!("{prefix}k2"), "v2"),
            pair(format!("{prefix}k3"), "v3")
        ]
    );
    let third = page(Some(format!("{prefix}k3\0")), 2).await;
    assert!(!third.more, "nothing left after the last page");
    assert_eq!(pairs(&third), vec![pair(format!("{prefix}k4"), "v4")]);

    let exact = page(Some(format!("{prefix}k3")), 2).await;
    assert!(!exact.more, "a limit equal to what is left is not `more`");
    assert_eq!(exact.kvs.len(), 2);

    let all = page(None, 0).await;
    assert!(!all.more);
    assert_eq!(all.kvs.len(), 5, "limit 0 means no limit");

    let before_prefix = page(Some(format!("{p}/")), 1).await;
    assert_eq!(
        before_prefix.kvs[0].key,
        format!("{prefix}k0"),
        "start below the prefix"
    );
}

pub async fn list_at_old_revision_sees_old_state(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}/x/");
    // Not the store's first write, so the revision before `a` is not 0 ("current").
    create(store, &format!("{p}/first"), "x").await;
    let a = create(store, &format!("{prefix}a"), "a1").await;
    let b = create(store, &format!("{prefix}b"), "b1").await;
    let a2 = store
        .update(&a.key, bytes("a2"), a.mod_revision)
        .await
        .expect("update");
    let b_deleted = store.delete(&b.key, None).await.expect("delete");
    let c = create(store, &format!("{prefix}c"), "c1").await;

    let at = |rev| list(store, &prefix, rev);
    let r = at(b.mod_revision).await;
    assert_eq!(r.revision, b.mod_revision);
    assert_eq!(
        pairs(&r),
        vec![pair(a.key.clone(), "a1"), pair(b.key.clone(), "b1")]
    );
    assert_eq!(r.kvs[0], a, "old versions keep their revisions");
    let r = at(a2.mod_revision).await;
    assert_eq!(
        pairs(&r),
        vec![pair(a.key.clone(), "a2"), pair(b.key.clone(), "b1")]
    );
    let r = at(b_deleted.mod_revision).await;
    assert_eq!(pairs(&r), vec![pair(a.key.clone(), "a2")]);
    let r = at(0).await;
    assert_eq!(r.revision, c.mod_revision);
    assert_eq!(
        pairs(&r),
        vec![pair(a.key.clone(), "a2"), pair(c.key.clone(), "c1")]
    );
    let r = at(a.mod_revision - 1).await;
    assert!(r.kvs.is_empty(), "before the first write nothing existed");
}

pub async fn list_at_future_revision_is_error(store: &Arc<dyn Store>, p: &str) {
    create(store, &format!("{p}/a"), "a").await;
    let now = current(store).await;
    let err = store
        .list(ListRequest {
            prefix: p,
            revision: now + 10,
            ..Default::default()
        })
        .await
        .expect_err("future revision");
    assert!(
        matches!(err, Error::FutureRevision { requested, .. } if requested == now + 10),
        "got {err:?}"
    );
}

pub async fn compaction_makes_older_revisions_unreadable(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}/c/");
    let a = create(store, &format!("{prefix}a"), "a1").await;
    let a2 = store
        .update(&a.key, bytes("a2"), a.mod_revision)
        .await
        .expect("update");
    let b = create(store, &format!("{prefix}b"), "b1").await;
    store
        .update(&b.key, bytes("b2"), b.mod_revision)
        .await
        .expect("update");
    let point = b.mod_revision;
    store.compact(point).await.expect("compact");

    let err = store
        .list(ListRequest {
            prefix: &prefix,
            revision: point - 1,
            ..Default::default()
        })
        .await
        .expect_err("list below the compaction point");
    match err {
        Error::Compacted {
            requested,
            compacted,
        } => {
            assert_eq!(requested, point - 1);
            assert_eq!(compacted, point);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let at_point = list(store, &prefix, point).await;
    assert_eq!(
        pairs(&at_point),
        vec![pair(a.key.clone(), "a2"), pair(b.key.clone(), "b1")],
        "the state at the compaction point stays readable"
    );
    assert_eq!(at_point.kvs[0], a2);

    match store.watch(&prefix, point - 2).await {
        Err(Error::Compacted { requested, .. }) => assert_eq!(requested, point - 2),
        Err(other) => panic!("expected Compacted, got {other:?}"),
        Ok(_) => panic!("a watch from before the compaction point must fail"),
    }
}

pub async fn compaction_keeps_current_state_and_is_idempotent(store: &Arc<dyn Store>, p: &str) {
    let prefix = format!("{p}/k/");
    let mut live = Vec::new();
    for i in 0..4 {
        let kv = create(store, &format!("{prefix}{i}"), "v1").await;
        let kv = store
            .update(&kv.key, bytes("v2"), kv.mod_revision)
            .await
            .expect("update");
        live.push(kv);
    }
    let doomed = live.remove(3);
    store.delete(&doomed.key, None).await.expect("delete");
    let before = list(store, &prefix, 0).await;

    let now = current(store).await;
    store.compact(now).await.expect("compact");
    assert_eq!(list(store, &prefix, 0).await, before);
    assert_eq!(list(store, &prefix, now).await, before);
    for kv in &live {
        assert_eq!(store.get(&kv.key).await.expect("get").as_ref(), Some(kv));
    }
    assert_eq!(store.get(&doomed.key).await.expect("get"), None);

    store
        .compact(now)
        .await
        .expect("compacting again is a no-op");
    store
        .compact(now - 2)
        .await
        .expect("compacting below is a no-op");
    let err = store.compact(now + 5).await.expect_err("future compaction");
    assert!(matches!(err, Error::FutureRevision { .. }), "got {err:?}");

    // Writes go on from where they were, on keys whose history is gone.
    let updated = store
        .update(&live[0].key, bytes("v3"), live[0].mod_revision)
        .await
        .expect("update after compaction");
    assert!(updated.mod_revision > now);
    let recreated = create(store, &doomed.key, "again").await;
    assert!(recreated.mod_revision > updated.mod_revision);
}
