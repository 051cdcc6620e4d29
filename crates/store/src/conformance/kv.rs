//! Single-key operations, revisions and concurrent writers.

use std::collections::HashSet;
use std::sync::Arc;

use super::{bytes, create, current};
use crate::{Error, Store};

pub async fn get_missing_key_is_none(store: &Arc<dyn Store>, p: &str) {
    let got = store.get(&format!("{p}/missing")).await.expect("get");
    assert_eq!(got, None);
}

pub async fn create_then_get_returns_the_value(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let kv = create(store, &key, "one").await;
    assert_eq!(kv.key, key);
    assert_eq!(kv.value, bytes("one"));
    assert_eq!(
        kv.create_revision, kv.mod_revision,
        "a create stamps both revisions"
    );
    assert_eq!(current(store).await, kv.mod_revision);
    assert_eq!(store.get(&key).await.expect("get"), Some(kv));
}

pub async fn create_existing_key_is_already_exists(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let first = create(store, &key, "one").await;
    let err = store
        .create(&key, bytes("two"))
        .await
        .expect_err("second create");
    assert!(
        matches!(&err, Error::AlreadyExists { key: k } if *k == key),
        "got {err:?}"
    );
    assert_eq!(store.get(&key).await.expect("get"), Some(first));
}

pub async fn update_with_current_revision_replaces_value(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let created = create(store, &key, "one").await;
    let updated = store
        .update(&key, bytes("two"), created.mod_revision)
        .await
        .expect("update");
    assert_eq!(updated.value, bytes("two"));
    assert_eq!(updated.create_revision, created.create_revision);
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(store.get(&key).await.expect("get"), Some(updated));
}

pub async fn update_with_stale_revision_is_conflict_with_current(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let created = create(store, &key, "one").await;
    let updated = store
        .update(&key, bytes("two"), created.mod_revision)
        .await
        .expect("update");
    let err = store
        .update(&key, bytes("three"), created.mod_revision)
        .await
        .expect_err("stale update");
    match err {
        Error::Conflict {
            key: k,
            expected,
            current,
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, created.mod_revision);
            assert_eq!(current, Some(updated.clone()));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.expect("get"), Some(updated));
}

pub async fn update_missing_key_is_not_found(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/missing");
    let err = store.update(&key, bytes("x"), 0).await.expect_err("update");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
    let err = store.update(&key, bytes("x"), 5).await.expect_err("update");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
    assert_eq!(
        store.get(&key).await.expect("get"),
        None,
        "nothing was created"
    );
}

pub async fn delete_without_precondition_returns_last_value(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let created = create(store, &key, "one").await;
    let deleted = store.delete(&key, None).await.expect("delete");
    assert_eq!(deleted.key, key);
    assert_eq!(deleted.value, bytes("one"));
    assert_eq!(deleted.create_revision, created.create_revision);
    assert!(deleted.mod_revision > created.mod_revision);
    assert_eq!(
        deleted.mod_revision,
        current(store).await,
        "the delete's revision"
    );
    assert_eq!(store.get(&key).await.expect("get"), None);
}

pub async fn delete_with_matching_precondition(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let created = create(store, &key, "one").await;
    let deleted = store
        .delete(&key, Some(created.mod_revision))
        .await
        .expect("delete");
    assert_eq!(deleted.value, bytes("one"));
    assert_eq!(store.get(&key).await.expect("get"), None);
}

pub async fn delete_with_stale_precondition_is_conflict(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let created = create(store, &key, "one").await;
    let updated = store
        .update(&key, bytes("two"), created.mod_revision)
        .await
        .expect("update");
    let err = store
        .delete(&key, Some(created.mod_revision))
        .await
        .expect_err("stale delete");
    match err {
        Error::Conflict { current, .. } => assert_eq!(current, Some(updated.clone())),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).await.expect("get"), Some(updated));
}

pub async fn delete_missing_key_is_not_found(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/missing");
    let err = store.delete(&key, None).await.expect_err("delete");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
    let err = store.delete(&key, Some(3)).await.expect_err("delete");
    assert!(matches!(err, Error::NotFound { .. }), "got {err:?}");
}

pub async fn revisions_strictly_grow_and_failed_writes_take_none(store: &Arc<dyn Store>, p: &str) {
    let start = current(store).await;
    let a = create(store, &format!("{p}/a"), "1").await;
    assert!(a.mod_revision > start);
    let b = create(store, &format!("{p}/b"), "1").await;
    assert!(b.mod_revision > a.mod_revision);
    let a2 = store
        .update(&a.key, bytes("2"), a.mod_revision)
        .await
        .expect("update");
    assert!(a2.mod_revision > b.mod_revision);
    let before_failures = current(store).await;
    assert_eq!(before_failures, a2.mod_revision);
    store.create(&a.key, bytes("x")).await.expect_err("exists");
    store
        .update(&a.key, bytes("x"), a.mod_revision)
        .await
        .expect_err("stale");
    store
        .delete(&format!("{p}/missing"), None)
        .await
        .expect_err("missing");
    assert_eq!(
        current(store).await,
        before_failures,
        "failed writes take no revision"
    );
    let d = store.delete(&b.key, None).await.expect("delete");
    assert!(d.mod_revision > a2.mod_revision);
}

pub async fn recreate_after_delete_gets_new_create_revision(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/a");
    let first = create(store, &key, "one").await;
    store.delete(&key, None).await.expect("delete");
    let second = create(store, &key, "two").await;
    assert!(second.create_revision > first.create_revision);
    assert_eq!(second.create_revision, second.mod_revision);
    let updated = store
        .update(&key, bytes("three"), second.mod_revision)
        .await
        .expect("update");
    assert_eq!(updated.create_revision, second.create_revision);
}

pub async fn concurrent_creates_of_one_key_have_one_winner(store: &Arc<dyn Store>, p: &str) {
    let key = format!("{p}/contended");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { (i, store.create(&key, bytes(&format!("v{i}"))).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, result) = task.await.expect("task");
        match result {
            Ok(kv) => winners.push((i, kv)),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins");
    let (i, kv) = &winners[0];
    assert_eq!(kv.value, bytes(&format!("v{i}")));
    assert_eq!(store.get(&key).await.expect("get"), Some(kv.clone()));
}

pub async fn concurrent_writers_get_distinct_revisions(store: &Arc<dyn Store>, p: &str) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let start = current(store).await;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let p = p.to_owned();
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                for i in 0..EACH {
                    let kv = store
                        .create(&format!("{p}/w{w}/{i}"), bytes("x"))
                        .await
                        .expect("create");
                    revisions.push(kv.mod_revision);
                }
                revisions
            })
        })
        .collect();
    let mut all = HashSet::new();
    for task in tasks {
        let revisions = task.await.expect("task");
        assert!(
            revisions.windows(2).all(|w| w[0] < w[1]),
            "one writer's revisions grow: {revisions:?}"
        );
        all.extend(revisions);
    }
    assert_eq!(
        all.len(),
        WRITERS * EACH,
        "every write has its own revision"
    );
    assert!(all.iter().all(|&r| r > start));
    let newest = all.iter().copied().max().unwrap_or(start);
    assert!(current(store).await >= newest);
}
