use std::sync::Arc;

use super::EtcdStore;
use crate::conformance::{Fixture, TestEtcd};

/// Each case gets its own etcd: compaction is global to an etcd, so cases sharing one
/// would see each other's compactions. A start costs about 0.2 s.
async fn fixture(case: &str) -> Fixture {
    let etcd = TestEtcd::start().await;
    let store = EtcdStore::connect(std::slice::from_ref(&etcd.endpoint))
        .await
        .expect("connect to test etcd");
    Fixture::new(Arc::new(store), format!("/t/{case}"), etcd)
}

crate::conformance_tests!(fixture);

#[tokio::test]
async fn connect_to_nothing_fails() {
    let err = EtcdStore::connect(&["http://127.0.0.1:1".to_owned()])
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(matches!(err, crate::Error::Backend(_)), "got {err:?}");
}
