//! The watch cache: the current state and recent history of every resource, fed by one
//! store watch over `/registry/`, so that LIST, GET and WATCH never touch the store and
//! thousands of watchers cost one store watch (like the Kubernetes cacher).
//!
//! Each object is parsed and serialized once when its event arrives; watchers and lists
//! share those bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use store::{EventKind, KeyValue, ListRequest, Store};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::objects;

/// One object as stored at one revision, with `metadata.resourceVersion` filled in.
#[derive(Debug)]
pub struct Obj {
    pub key: String,
    pub rev: i64,
    pub value: Value,
    /// `value` serialized once, shared by every response that carries it.
    pub bytes: Bytes,
}

impl Obj {
    pub fn from_kv(kv: &KeyValue) -> Option<Obj> {
        let mut value: Value = serde_json::from_slice(&kv.value).ok()?;
        objects::set_resource_version(&mut value, kv.mod_revision);
        let bytes = Bytes::from(serde_json::to_vec(&value).ok()?);
        Some(Obj {
            key: kv.key.clone(),
            rev: kv.mod_revision,
            value,
            bytes,
        })
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object. For `Deleted`, `obj` is the last state with the deletion's
/// revision as its resourceVersion (as upstream sends it).
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
    pub rev: i64,
}

struct Inner {
    objects: BTreeMap<String, Arc<Obj>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// A watch may start from any revision `>= oldest`; older ones are expired.
    oldest: i64,
}

/// The cache of one resource (one storage prefix).
pub struct ResourceCache {
    prefix: String,
    inner: RwLock<Inner>,
    tx: broadcast::Sender<Arc<CacheEvent>>,
    capacity: usize,
}

/// What a new watch starts with.
pub struct WatchStart {
    /// Events the watcher must see first (synthetic ADDED for the current state, or
    /// history replayed after the requested revision).
    pub initial: Vec<Arc<CacheEvent>>,
    /// Live events; those with `rev <= start_rev` are duplicates to skip.
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    pub start_rev: i64,
}

/// Live events a watcher may fall behind before its watch ends (it then resumes from its
/// last revision out of `history`). tokio's broadcast allocates every slot up front, so
/// this stays far below the history length: a client watching every resource (the
/// garbage collector does) would otherwise cost ~1 MiB per resource.
const LIVE_CAPACITY: usize = 1024;

/// The requested revision is older than the cache's history.
#[derive(Debug)]
pub struct TooOld {
    pub requested: i64,
    pub oldest: i64,
}

impl ResourceCache {
    fn new(prefix: String, capacity: usize, rev: i64) -> Self {
        ResourceCache {
            prefix,
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                oldest: rev,
            }),
            tx: broadcast::channel(capacity.clamp(16, LIVE_CAPACITY)).0,
            capacity,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<Obj>> {
        self.read().objects.get(key).cloned()
    }

    /// Objects under `prefix` (a namespace's key prefix, or the whole resource) with key
    /// `>= start`, in key order.
    pub fn list(&self, sub_prefix: Option<&str>, start: Option<&str>) -> Vec<Arc<Obj>> {
        let inner = self.read();
        let prefix = sub_prefix.unwrap_or(&self.prefix);
        let from = match start {
            Some(s) if s > prefix => s,
            _ => prefix,
        };
        inner
            .objects
            .range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a watch after `after` (`None`: from the current state, with synthetic ADDED
    /// events for every object).
    pub fn watch(&self, after: Option<i64>, current_rev: i64) -> Result<WatchStart, TooOld> {
        let inner = self.read();
        // Subscribing under the lock orders the subscription after every event already
        // applied, so nothing falls between `initial` and `live`.
        let live = self.tx.subscribe();
        match after {
            None => {
                let initial = inner
                    .objects
                    .values()
                    .map(|o| {
                        Arc::new(CacheEvent {
                            kind: EventType::Added,
                            obj: o.clone(),
                            prev: None,
                            rev: o.rev,
                        })
                    })
                    .collect();
                Ok(WatchStart {
                    initial,
                    live,
                    start_rev: current_rev,
                })
            }
            Some(rev) if rev < inner.oldest => Err(TooOld {
                requested: rev,
                oldest: inner.oldest,
            }),
            Some(rev) => {
                let initial = inner
                    .history
                    .iter()
                    .filter(|e| e.rev > rev)
                    .cloned()
                    .collect();
                Ok(WatchStart {
                    initial,
                    live,
                    start_rev: current_rev.max(rev),
                })
            }
        }
    }

    fn apply(&self, kind: EventKind, kv: &KeyValue) {
        let Some(obj) = Obj::from_kv(kv).map(Arc::new) else {
            tracing::warn!(key = %kv.key, rev = kv.mod_revision, "skipping undecodable object");
            return;
        };
        let mut inner = self.write();
        let prev = match kind {
            EventKind::Put => inner.objects.insert(kv.key.clone(), obj.clone()),
            EventKind::Delete => inner.objects.remove(&kv.key),
        };
        let kind = match (kind, &prev) {
            (EventKind::Delete, _) => EventType::Deleted,
            (EventKind::Put, None) => EventType::Added,
            (EventKind::Put, Some(_)) => EventType::Modified,
        };
        let ev = Arc::new(CacheEvent {
            kind,
            obj,
            prev,
            rev: kv.mod_revision,
        });
        inner.history.push_back(ev.clone());
        while inner.history.len() > self.capacity {
            if let Some(old) = inner.history.pop_front() {
                inner.oldest = old.rev;
            }
        }
        // No receivers is fine: nobody watches this resource right now.
        let _ = self.tx.send(ev);
    }
}

/// All resource caches, fed by one store watch.
pub struct WatchCache {
    caches: RwLock<HashMap<String, Arc<ResourceCache>>>,
    rev: tokio::sync::watch::Sender<i64>,
    capacity: usize,
    /// The revision since which the cache has seen every change (the load's or the last
    /// resync's). A resource first seen later had no changes in between, so its history is
    /// complete from here, not from when it was first seen.
    since: std::sync::atomic::AtomicI64,
}

impl WatchCache {
    /// Loads every object under `/registry/` and starts following the store.
    pub async fn start(
        store: Arc<dyn Store>,
        capacity: usize,
        stop: CancellationToken,
    ) -> store::Result<Arc<WatchCache>> {
        let (cache, rev) = Self::load(store.as_ref(), capacity).await?;
        let follower = cache.clone();
        tokio::spawn(async move { follower.follow(store, rev, stop).await });
        Ok(cache)
    }

    /// The cache filled with the store's current state, not yet following it.
    async fn load(store: &dyn Store, capacity: usize) -> store::Result<(Arc<WatchCache>, i64)> {
        let listed = store
            .list(ListRequest {
                prefix: "/registry/",
                ..Default::default()
            })
            .await?;
        let rev = listed.revision;
        let cache = Arc::new(WatchCache {
            caches: RwLock::new(HashMap::new()),
            rev: tokio::sync::watch::channel(rev).0,
            capacity,
            since: std::sync::atomic::AtomicI64::new(rev),
        });
        for kv in &listed.kvs {
            if let Some(rc) = cache.cache_for_key(&kv.key) {
                rc.apply(EventKind::Put, kv);
            }
        }
        // Initial state is not history: a watch from before the load is too old.
        for rc in cache.all() {
            let mut inner = rc.write();
            inner.history.clear();
            inner.oldest = rev;
        }
        Ok((cache, rev))
    }

    fn all(&self) -> Vec<Arc<ResourceCache>> {
        self.caches
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The cache for a storage prefix, created empty if new (with history from `since`).
    pub fn ensure(&self, prefix: &str) -> Arc<ResourceCache> {
        if let Some(c) = self.get(prefix) {
            return c;
        }
        let since = self.since.load(std::sync::atomic::Ordering::Acquire);
        let mut caches = self.caches.write().unwrap_or_else(|p| p.into_inner());
        caches
            .entry(prefix.to_string())
            .or_insert_with(|| {
                Arc::new(ResourceCache::new(prefix.to_string(), self.capacity, since))
            })
            .clone()
    }

    pub fn get(&self, prefix: &str) -> Option<Arc<ResourceCache>> {
        self.caches
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(prefix)
            .cloned()
    }

    /// The cache a key belongs to, created on first sight, so that objects of resources
    /// registered later (custom resources) are never dropped.
    fn cache_for_key(&self, key: &str) -> Option<Arc<ResourceCache>> {
        let prefix = apimachinery::registry::storage_prefix_of_key(key)?;
        Some(self.ensure(prefix))
    }

    /// The newest store revision the cache has applied.
    pub fn revision(&self) -> i64 {
        *self.rev.borrow()
    }

    /// Waits until the cache has applied `rev` (read-your-writes for LIST/GET). Returns
    /// false on timeout.
    pub async fn wait_for(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.rev.subscribe();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev)).await,
            Ok(Ok(_))
        )
    }

    /// Replaces every cache's contents with the store's current state, emitting the
    /// differences as events (deletions first), and returns the revision read at.
    async fn resync(&self, store: &dyn Store) -> store::Result<i64> {
        let listed = store
            .list(ListRequest {
                prefix: "/registry/",
                ..Default::default()
            })
            .await?;
        let rev = listed.revision;
        let mut current: HashMap<String, &KeyValue> = HashMap::new();
        for kv in &listed.kvs {
            current.insert(kv.key.clone(), kv);
        }
        for rc in self.all() {
            let gone: Vec<Arc<Obj>> = rc
                .list(None, None)
                .into_iter()
                .filter(|o| !current.contains_key(&o.key))
                .collect();
            for obj in gone {
                let kv = KeyValue {
                    key: obj.key.clone(),
                    value: bytes::Bytes::from(serde_json::to_vec(&obj.value).unwrap_or_default()),
                    create_revision: obj.rev,
                    mod_revision: rev,
                };
                rc.apply(EventKind::Delete, &kv);
            }
        }
        for kv in &listed.kvs {
            if let Some(rc) = self.cache_for_key(&kv.key)
                && rc.get(&kv.key).is_none_or(|o| o.rev != kv.mod_revision)
            {
                rc.apply(EventKind::Put, kv);
            }
        }
        self.since.store(rev, std::sync::atomic::Ordering::Release);
        self.rev.send_replace(rev);
        Ok(rev)
    }

    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut rev: i64, stop: CancellationToken) {
        loop {
            let mut stream = match store.watch("/registry/", rev).await {
                Ok(s) => s,
                Err(store::Error::Compacted { .. }) => {
                    // The store dropped the history between our revision and now (a long
                    // outage): reload the current state and turn the difference into events.
                    match self.resync(store.as_ref()).await {
                        Ok(r) => rev = r,
                        Err(e) => {
                            tracing::error!(error = %e, "watch cache: reloading after compaction failed");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, rev, "watch cache: store watch failed");
                    if stop.is_cancelled() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = stream.next() => n,
                };
                match next {
                    Some(Ok(ev)) => {
                        if ev.kv.mod_revision <= rev {
                            continue;
                        }
                        if let Some(rc) = self.cache_for_key(&ev.kv.key) {
                            rc.apply(ev.kind, &ev.kv);
                        }
                        rev = ev.kv.mod_revision;
                        self.rev.send_replace(rev);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, rev, "watch cache: store watch broke; resuming");
                        break;
                    }
                    None => break,
                }
            }
            if stop.is_cancelled() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: &str) -> bytes::Bytes {
        bytes::Bytes::from(format!("{{\"metadata\":{{\"name\":\"{v}\"}}}}"))
    }

    #[tokio::test]
    async fn resync_after_lost_history_emits_the_differences() {
        let store: Arc<dyn Store> = Arc::new(store::memory::MemoryStore::new());
        store
            .create("/registry/configmaps/ns/a", put("a"))
            .await
            .expect("a");
        store
            .create("/registry/configmaps/ns/b", put("b"))
            .await
            .expect("b");
        let (cache, _) = WatchCache::load(store.as_ref(), 100).await.expect("load");
        let cms = cache
            .get("/registry/configmaps/")
            .expect("configmaps cache");
        let mut rx = cms
            .watch(Some(cache.revision()), cache.revision())
            .expect("watch")
            .live;
        // Changes the cache never saw as events (as if its watch was down past compaction).
        store
            .delete("/registry/configmaps/ns/a", None)
            .await
            .expect("delete a");
        let b = store
            .get("/registry/configmaps/ns/b")
            .await
            .expect("get")
            .expect("b");
        store
            .update("/registry/configmaps/ns/b", put("b2"), b.mod_revision)
            .await
            .expect("update b");
        store
            .create("/registry/configmaps/ns/c", put("c"))
            .await
            .expect("c");
        let rev = cache.resync(store.as_ref()).await.expect("resync");
        assert_eq!(rev, store.current_revision().await.expect("rev"));
        let mut seen = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            seen.push((ev.kind, ev.obj.key.clone()));
        }
        assert_eq!(
            seen,
            vec![
                (EventType::Deleted, "/registry/configmaps/ns/a".to_string()),
                (EventType::Modified, "/registry/configmaps/ns/b".to_string()),
                (EventType::Added, "/registry/configmaps/ns/c".to_string()),
            ]
        );
        let keys: Vec<String> = cms.list(None, None).iter().map(|o| o.key.clone()).collect();
        assert_eq!(
            keys,
            ["/registry/configmaps/ns/b", "/registry/configmaps/ns/c"]
        );
    }
}
