//! Shared informers (client-go's SharedInformerFactory): one watch per kind for every
//! controller, a cache indexed by namespace, and change handlers that see the old object on
//! updates and the last state on deletes — so a controller learns that a pod went even when
//! it was removed at once.
//!
//! Handlers run on the watch task and must only queue keys.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

/// What a handler is told.
pub enum Change<'a, K> {
    Added(&'a Arc<K>),
    Updated { old: &'a Arc<K>, new: &'a Arc<K> },
    Deleted(&'a Arc<K>),
}

impl<K> Change<'_, K> {
    /// The object as it is now (or was last seen, for a delete).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }
}

type Handler<K> = Arc<dyn Fn(&Change<'_, K>) + Send + Sync>;
type Objects<K> = HashMap<String, BTreeMap<String, Arc<K>>>;
type Starter = Box<dyn FnOnce(kube::Client, &mut JoinSet<()>) + Send>;

/// The cached objects of one kind and who to tell about changes.
pub struct Informer<K> {
    /// namespace ("" for cluster-scoped) → name → object.
    objects: RwLock<Objects<K>>,
    handlers: Mutex<Vec<Handler<K>>>,
    synced: tokio::sync::watch::Sender<bool>,
    field_selector: Option<String>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn new(field_selector: Option<String>) -> Self {
        Self {
            objects: RwLock::default(),
            handlers: Mutex::default(),
            synced: tokio::sync::watch::channel(false).0,
            field_selector,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Objects<K>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects<K>> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a handler; call before the informers start.
    pub fn on_change(&self, f: impl Fn(&Change<'_, K>) + Send + Sync + 'static) {
        self.handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(f));
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.read().get(namespace)?.get(name).cloned()
    }

    /// Every object in `namespace` ("" for cluster-scoped kinds), by name.
    pub fn list(&self, namespace: &str) -> Vec<Arc<K>> {
        self.read()
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn list_all(&self) -> Vec<Arc<K>> {
        self.read()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Resolves once the first list is in the cache.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn notify(&self, change: Change<'_, K>) {
        let handlers = self
            .handlers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for h in handlers {
            h(&change);
        }
    }

    fn apply(&self, obj: K) {
        let new = Arc::new(obj);
        let (ns, name) = (new.namespace().unwrap_or_default(), new.name_any());
        let old = self
            .write()
            .entry(ns)
            .or_default()
            .insert(name, new.clone());
        match old {
            Some(old) => self.notify(Change::Updated {
                old: &old,
                new: &new,
            }),
            None => self.notify(Change::Added(&new)),
        }
    }

    fn delete(&self, obj: K) {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let removed = {
            let mut w = self.write();
            let removed = w.get_mut(&ns).and_then(|m| m.remove(&name));
            if w.get(&ns).is_some_and(|m| m.is_empty()) {
                w.remove(&ns);
            }
            removed
        };
        let last = removed.unwrap_or_else(|| Arc::new(obj));
        self.notify(Change::Deleted(&last));
    }

    /// Swaps in a complete relist and tells handlers what changed meanwhile.
    fn replace(&self, fresh: Objects<K>) {
        let old = std::mem::replace(&mut *self.write(), fresh);
        let now = self.read().clone();
        for (ns, objs) in &now {
            for (name, new) in objs {
                match old.get(ns).and_then(|m| m.get(name)) {
                    Some(o) => self.notify(Change::Updated { old: o, new }),
                    None => self.notify(Change::Added(new)),
                }
            }
        }
        for (ns, objs) in &old {
            for (name, o) in objs {
                if now.get(ns).and_then(|m| m.get(name)).is_none() {
                    self.notify(Change::Deleted(o));
                }
            }
        }
    }

    async fn run(self: Arc<Self>, api: Api<K>) {
        let mut cfg = watcher::Config::default();
        if let Some(f) = &self.field_selector {
            cfg = cfg.fields(f);
        }
        let stream = watcher::watcher(api, cfg).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut relist: Option<Objects<K>> = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => relist = Some(HashMap::new()),
                Ok(Event::InitApply(o)) => {
                    if let Some(r) = relist.as_mut() {
                        let ns = o.namespace().unwrap_or_default();
                        r.entry(ns).or_default().insert(o.name_any(), Arc::new(o));
                    }
                }
                Ok(Event::InitDone) => {
                    self.replace(relist.take().unwrap_or_default());
                    self.synced.send_replace(true);
                }
                Ok(Event::Apply(o)) => self.apply(o),
                Ok(Event::Delete(o)) => self.delete(o),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&Default::default()), error = %e, "watch failed; retrying")
                }
            }
        }
    }
}

/// One informer per kind, created on first request and started together.
#[derive(Default)]
pub struct Informers {
    by_type: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    starters: Mutex<Vec<Starter>>,
}

impl Informers {
    fn lock_types(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Arc<dyn Any + Send + Sync>>> {
        self.by_type.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared informer for `K` over all namespaces.
    pub fn get<K>(&self) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.get_with::<K>(None)
    }

    /// The shared informer for `K`, watching only what `field_selector` matches (the first
    /// caller decides it).
    pub fn get_with<K>(&self, field_selector: Option<&str>) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut types = self.lock_types();
        if let Some(i) = types.get(&TypeId::of::<K>())
            && let Ok(i) = i.clone().downcast::<Informer<K>>()
        {
            return i;
        }
        let inf = Arc::new(Informer::<K>::new(field_selector.map(String::from)));
        types.insert(TypeId::of::<K>(), inf.clone());
        let run = inf.clone();
        self.starters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(move |client, set| {
                set.spawn(run.run(Api::all(client)));
            }));
        inf
    }

    /// Starts every informer requested so far.
    pub fn start(&self, client: &kube::Client, set: &mut JoinSet<()>) {
        let starters =
            std::mem::take(&mut *self.starters.lock().unwrap_or_else(|p| p.into_inner()));
        for s in starters {
            s(client.clone(), set);
        }
    }
}
