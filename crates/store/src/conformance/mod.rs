//! The one test suite every [`Store`] backend must pass, as Kubernetes runs one storage test
//! suite against every storage implementation.
//!
//! Each case is an async function taking a store and a key prefix that the case keeps all
//! its keys under. [`conformance_tests!`](crate::conformance_tests) turns the whole list
//! into `#[tokio::test]`s for one backend, given a fixture function:
//!
//! ```text
//! async fn fixture(case: &str) -> store::conformance::Fixture { /* open a store */ }
//! store::conformance_tests!(fixture);
//! ```
//!
//! Available under `cfg(test)` and, for other crates, the `conformance` feature. The cases
//! panic on failure, like any test.
//!
//! # Layout
//! - `kv.rs`: get/create/update/delete, revisions, concurrency.
//! - `list.rs`: prefixes, paging, reads at old revisions, compaction.
//! - `watch.rs`: replay, live events, prev values, prefix filtering.
//! - `etcd_server.rs`: [`TestEtcd`], a throwaway etcd process for tests.

mod etcd_server;
mod kv;
mod list;
mod watch;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

pub use etcd_server::TestEtcd;
pub use kv::*;
pub use list::*;
pub use watch::*;

use crate::{Event, KeyValue, Store, WatchStream};

/// How long a case waits for an expected event before failing.
const EVENT_DEADLINE: Duration = Duration::from_secs(20);

/// A store under test, the prefix a case keeps its keys under, and whatever must outlive
/// the case (a temporary directory, an etcd process).
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub prefix: String,
    _guard: Box<dyn Any + Send + Sync>,
}

impl Fixture {
    pub fn new(
        store: Arc<dyn Store>,
        prefix: impl Into<String>,
        guard: impl Any + Send + Sync,
    ) -> Self {
        Self {
            store,
            prefix: prefix.into(),
            _guard: Box::new(guard),
        }
    }
}

/// Expands to one `#[tokio::test]` per conformance case. The argument is an async function
/// `fn(case: &str) -> Fixture`, called once per test with the case's name.
#[macro_export]
macro_rules! conformance_tests {
    ($fixture:path) => {
        $crate::conformance_tests!(@cases $fixture;
            get_missing_key_is_none,
            create_then_get_returns_the_value,
            create_existing_key_is_already_exists,
            update_with_current_revision_replaces_value,
            update_with_stale_revision_is_conflict_with_current,
            update_missing_key_is_not_found,
            delete_without_precondition_returns_last_value,
            delete_with_matching_precondition,
            delete_with_stale_precondition_is_conflict,
            delete_missing_key_is_not_found,
            revisions_strictly_grow_and_failed_writes_take_none,
            recreate_after_delete_gets_new_create_revision,
            concurrent_creates_of_one_key_have_one_winner,
            concurrent_writers_get_distinct_revisions,
            list_prefix_excludes_sibling_prefixes,
            list_and_watch_with_empty_prefix_see_every_key,
            list_pages_with_start_limit_and_more,
            list_at_old_revision_sees_old_state,
            list_at_future_revision_is_error,
            compaction_makes_older_revisions_unreadable,
            compaction_keeps_current_state_and_is_idempotent,
            watch_replays_from_past_revision_then_streams_live,
            watch_put_events_carry_previous_value,
            watch_delete_events_carry_last_value_and_prev,
            watch_filters_by_prefix,
            watch_from_compaction_point_still_works,
            watch_sees_concurrent_writes_in_order_without_gaps,
        );
    };
    (@cases $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $fixture(stringify!($case)).await;
                $crate::conformance::$case(&fixture.store, &fixture.prefix).await;
            }
        )*
    };
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn create(store: &Arc<dyn Store>, key: &str, value: &str) -> KeyValue {
    store
        .create(key, bytes(value))
        .await
        .unwrap_or_else(|e| panic!("create {key}: {e}"))
}

async fn current(store: &Arc<dyn Store>) -> i64 {
    store.current_revision().await.expect("current_revision")
}

/// The next event, failing the test if none arrives within [`EVENT_DEADLINE`].
async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(EVENT_DEADLINE, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_DEADLINE:?}"),
    }
}
