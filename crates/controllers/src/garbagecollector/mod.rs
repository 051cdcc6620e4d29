//! Garbage collector (upstream `pkg/controller/garbagecollector`): deletes objects whose
//! owners are gone, and carries out the propagation policies the API server only marks:
//!
//! - Background: the owner is deleted at once; its dependents then have no owner left and
//!   are deleted here.
//! - Foreground: the owner waits (`foregroundDeletion` finalizer) while its dependents are
//!   deleted; once no dependent with `blockOwnerDeletion` is left the finalizer is removed.
//! - Orphan: the owner's references are removed from its dependents, then the `orphan`
//!   finalizer.
//!
//! Monitors (metadata-only watches of every deletable resource the API serves, CRDs
//! included, found again every 30 s) feed one graph task; workers act on what it queues,
//! always checking owners against the API, never trusting a possibly stale graph to delete.
//!
//! - `graph.rs`: the ownership graph and what each change makes to do.

pub mod graph;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::graph::{Event, FOREGROUND, Graph, Identity, ORPHAN, Work};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner};

pub const NAME: &str = "garbagecollector";
const RESYNC_DISCOVERY: Duration = Duration::from_secs(30);
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Upstream never collects events.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("looking up {0}")]
    Get(String, #[source] kube::Error),
    #[error("deleting {0}")]
    Delete(String, #[source] kube::Error),
    #[error("updating {0}")]
    Patch(String, #[source] kube::Error),
    #[error("{0}: the API does not serve this kind")]
    NotServed(String),
    #[error("discovering resources")]
    Discovery(#[source] kube::Error),
}

/// apiVersion + kind → how to reach it.
type Mapping = HashMap<(String, String), (ApiResource, bool)>;

struct Gc {
    client: kube::Client,
    graph: Mutex<Graph>,
    mapping: RwLock<Mapping>,
    events: mpsc::UnboundedSender<Event>,
    deletes: Queue<String>,
    orphans: Queue<String>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let (tx, rx) = mpsc::unbounded_channel();
    let gc = Arc::new(Gc {
        client: ctx.client.clone(),
        graph: Mutex::default(),
        mapping: RwLock::default(),
        events: tx,
        deletes: Queue::new(),
        orphans: Queue::new(),
    });
    let workers = ctx.config.workers;
    Box::pin(async move {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(gc.clone().process_graph(rx));
        let (synced_tx, mut synced_rx) = tokio::sync::watch::channel(false);
        tasks.spawn(gc.clone().monitor_resources(synced_tx, stop.clone()));
        // Act only once every monitor has listed: an owner not yet seen is not an absent one.
        tokio::select! {
            _ = stop.cancelled() => { tasks.abort_all(); return; }
            _ = synced_rx.wait_for(|s| *s) => {}
        }
        tracing::info!("garbage collector synced");
        let (d, o) = (gc.clone(), gc.clone());
        let deleting = crate::queue::run_workers(
            NAME,
            gc.deletes.clone(),
            workers,
            stop.clone(),
            move |uid: String| {
                let gc = d.clone();
                async move { gc.attempt_to_delete(&uid).await }
            },
        );
        let orphaning = crate::queue::run_workers(
            NAME,
            gc.orphans.clone(),
            workers,
            stop.clone(),
            move |uid: String| {
                let gc = o.clone();
                async move { gc.attempt_to_orphan(&uid).await }
            },
        );
        futures::join!(deleting, orphaning);
        tasks.abort_all();
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn has_finalizer(meta: &ObjectMeta, f: &str) -> bool {
    meta.finalizers.iter().flatten().any(|x| x == f)
}

enum OwnerState {
    Solid,
    Dangling,
    /// Exists and is deleting in the foreground.
    Waiting,
}

impl Gc {
    async fn process_graph(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Event>) {
        while let Some(ev) = rx.recv().await {
            let work = lock(&self.graph).apply(ev);
            for w in work {
                match w {
                    Work::AttemptToDelete(uid) => self.deletes.add(uid),
                    Work::AttemptToOrphan(uid) => self.orphans.add(uid),
                }
            }
        }
    }

    /// Starts a monitor per deletable resource, again for new ones every 30 s; reports
    /// synced once the first set has listed.
    async fn monitor_resources(
        self: Arc<Self>,
        synced: tokio::sync::watch::Sender<bool>,
        stop: CancellationToken,
    ) {
        let mut started: HashSet<(String, String, String)> = HashSet::new();
        let mut monitors = tokio::task::JoinSet::new();
        loop {
            match self.discover().await {
                Ok(found) => {
                    let mut waits = Vec::new();
                    for (ar, namespaced) in found {
                        let key = (ar.group.clone(), ar.version.clone(), ar.plural.clone());
                        {
                            let mut m = self.mapping.write().unwrap_or_else(|p| p.into_inner());
                            m.insert(
                                (ar.api_version.clone(), ar.kind.clone()),
                                (ar.clone(), namespaced),
                            );
                        }
                        if !started.insert(key) {
                            continue;
                        }
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        waits.push(rx);
                        monitors.spawn(monitor(self.client.clone(), ar, self.events.clone(), tx));
                    }
                    if !*synced.borrow() {
                        // A resource that never lists (a broken CRD) must not stop the
                        // collector for good: go on after a while, as upstream does.
                        let all = futures::future::join_all(waits);
                        if tokio::time::timeout(SYNC_TIMEOUT, all).await.is_err() {
                            tracing::warn!(
                                "garbage collector: some resources did not list in time; starting anyway"
                            );
                        }
                        synced.send_replace(true);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %crate::queue::chain(&e), "garbage collector discovery")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(RESYNC_DISCOVERY) => {}
            }
        }
        monitors.abort_all();
    }

    async fn discover(&self) -> Result<Vec<(ApiResource, bool)>, Error> {
        let d = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(Error::Discovery)?;
        let mut out = Vec::new();
        for group in d.groups() {
            for (ar, caps) in group.recommended_resources() {
                if IGNORED.contains(&(ar.group.as_str(), ar.plural.as_str())) {
                    continue;
                }
                if [verbs::LIST, verbs::WATCH, verbs::DELETE]
                    .iter()
                    .all(|v| caps.supports_operation(v))
                {
                    out.push((ar, caps.scope == Scope::Namespaced));
                }
            }
        }
        Ok(out)
    }

    fn api(&self, api_version: &str, kind: &str, namespace: &str) -> Option<Api<DynamicObject>> {
        let m = self.mapping.read().unwrap_or_else(|p| p.into_inner());
        let (ar, namespaced) = m.get(&(api_version.to_string(), kind.to_string()))?;
        Some(if *namespaced {
            Api::namespaced_with(self.client.clone(), namespace, ar)
        } else {
            Api::all_with(self.client.clone(), ar)
        })
    }

    /// The object's current metadata; `None` if gone or replaced by another with its name.
    async fn live(&self, id: &Identity) -> Result<Option<PartialObjectMeta<DynamicObject>>, Error> {
        let Some(api) = self.api(&id.api_version, &id.kind, &id.namespace) else {
            return Err(Error::NotServed(format!("{} {}", id.kind, id.name)));
        };
        match api.get_metadata_opt(&id.name).await {
            Ok(Some(m)) if m.metadata.uid.as_deref() == Some(id.uid.as_str()) => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) => Err(Error::Get(format!("{} {}", id.kind, id.name), e)),
        }
    }

    async fn owner_state(&self, namespace: &str, r: &OwnerReference) -> Result<OwnerState, Error> {
        let Some(api) = self.api(&r.api_version, &r.kind, namespace) else {
            // A kind the API does not serve cannot be checked; leave the dependent alone.
            return Ok(OwnerState::Solid);
        };
        match api.get_metadata_opt(&r.name).await {
            Ok(Some(o)) if o.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                if o.metadata.deletion_timestamp.is_some() && has_finalizer(&o.metadata, FOREGROUND)
                {
                    Ok(OwnerState::Waiting)
                } else {
                    Ok(OwnerState::Solid)
                }
            }
            Ok(_) => Ok(OwnerState::Dangling),
            Err(e) => Err(Error::Get(format!("{} {}", r.kind, r.name), e)),
        }
    }

    /// Upstream `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, uid: &str) -> Result<Next, Error> {
        let Some(node) = lock(&self.graph).get(uid).cloned() else {
            return Ok(Next::Done);
        };
        let label = format!("{} {}/{}", node.id.kind, node.id.namespace, node.id.name);
        if node.virtual_ {
            // An owner only known from references: if it does not exist, its dependents
            // learn so through a delete.
            if self
                .api(&node.id.api_version, &node.id.kind, &node.id.namespace)
                .is_some()
                && self.live(&node.id).await?.is_none()
            {
                let _ = self.events.send(Event::Delete(node.id.clone()));
            }
            return Ok(Next::Done);
        }
        if node.deleting_dependents {
            return self.process_deleting_dependents(&node).await;
        }
        let Some(latest) = self.live(&node.id).await? else {
            return Ok(Next::Done);
        };
        let meta = &latest.metadata;
        if meta.deletion_timestamp.is_some() && !has_finalizer(meta, FOREGROUND) {
            return Ok(Next::Done);
        }
        let owners = meta.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(Next::Done);
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for o in &owners {
            match self.owner_state(&node.id.namespace, o).await? {
                OwnerState::Solid => solid.push(o.uid.clone()),
                OwnerState::Dangling => dangling.push(o.uid.clone()),
                OwnerState::Waiting => waiting.push(o.uid.clone()),
            }
        }
        let api = self
            .api(&node.id.api_version, &node.id.kind, &node.id.namespace)
            .ok_or_else(|| Error::NotServed(label.clone()))?;
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Next::Done);
            }
            // Still owned: only drop references to owners that are gone or going.
            let keep: Vec<&OwnerReference> =
                owners.iter().filter(|o| solid.contains(&o.uid)).collect();
            let patch = json!({"metadata": {
                "ownerReferences": keep,
                "resourceVersion": meta.resource_version,
            }});
            return match api
                .patch_metadata(&node.id.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => Ok(Next::Done),
                Err(e) if crate::is_not_found(&e) => Ok(Next::Done),
                Err(e) => Err(Error::Patch(label, e)),
            };
        }
        let has_dependents = !lock(&self.graph)
            .get(uid)
            .map(|n| n.dependents.is_empty())
            .unwrap_or(true);
        let policy = if !waiting.is_empty() && has_dependents {
            // Our owner waits for us and we have dependents: stop blocking it (so the two
            // waits cannot deadlock) and go in the foreground ourselves.
            let unblocked: Vec<OwnerReference> = owners
                .iter()
                .cloned()
                .map(|mut o| {
                    if waiting.contains(&o.uid) {
                        o.block_owner_deletion = Some(false);
                    }
                    o
                })
                .collect();
            let patch = json!({"metadata": {"ownerReferences": unblocked, "resourceVersion": meta.resource_version}});
            match api
                .patch_metadata(&node.id.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if crate::is_not_found(&e) => return Ok(Next::Done),
                Err(e) => return Err(Error::Patch(label, e)),
            }
            PropagationPolicy::Foreground
        } else if has_finalizer(meta, ORPHAN) {
            PropagationPolicy::Orphan
        } else if has_finalizer(meta, FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(object = %label, ?policy, "deleting: owners gone");
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&node.id.name, &dp).await {
            Ok(_) => Ok(Next::Done),
            Err(e) if crate::is_not_found(&e) || crate::is_conflict(&e) => Ok(Next::Done),
            Err(e) => Err(Error::Delete(label, e)),
        }
    }

    /// An owner deleting in the foreground: done when no blocking dependent is left.
    async fn process_deleting_dependents(&self, node: &graph::Node) -> Result<Next, Error> {
        let blocking = lock(&self.graph).blocking_dependents(&node.id.uid);
        if blocking.is_empty() {
            return self.remove_finalizer(&node.id, FOREGROUND).await;
        }
        for d in blocking {
            if !d.deleting_dependents {
                self.deletes.add(d.id.uid.clone());
            }
        }
        Ok(Next::Done)
    }

    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<Next, Error> {
        let label = format!("{} {}/{}", id.kind, id.namespace, id.name);
        let Some(latest) = self.live(id).await? else {
            return Ok(Next::Done);
        };
        if !has_finalizer(&latest.metadata, finalizer) {
            return Ok(Next::Done);
        }
        let rest: Vec<&String> = latest
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .collect();
        let patch = json!({"metadata": {
            "finalizers": if rest.is_empty() { serde_json::Value::Null } else { json!(rest) },
            "resourceVersion": latest.metadata.resource_version,
        }});
        let Some(api) = self.api(&id.api_version, &id.kind, &id.namespace) else {
            return Ok(Next::Done);
        };
        match api
            .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(Next::Done),
            Err(e) if crate::is_not_found(&e) => Ok(Next::Done),
            Err(e) => Err(Error::Patch(label, e)),
        }
    }

    /// Upstream `attemptToOrphan`: release every dependent, then drop the `orphan`
    /// finalizer.
    async fn attempt_to_orphan(&self, uid: &str) -> Result<Next, Error> {
        let Some(node) = lock(&self.graph).get(uid).cloned() else {
            return Ok(Next::Done);
        };
        let dependents: Vec<Identity> = {
            let g = lock(&self.graph);
            node.dependents
                .iter()
                .filter_map(|d| g.get(d).filter(|n| !n.virtual_).map(|n| n.id.clone()))
                .collect()
        };
        for d in dependents {
            let label = format!("{} {}/{}", d.kind, d.namespace, d.name);
            let Some(latest) = self.live(&d).await? else {
                continue;
            };
            let refs: Vec<&OwnerReference> = latest
                .metadata
                .owner_references
                .iter()
                .flatten()
                .filter(|o| o.uid != uid)
                .collect();
            let patch = json!({"metadata": {
                "ownerReferences": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) },
                "resourceVersion": latest.metadata.resource_version,
            }});
            let Some(api) = self.api(&d.api_version, &d.kind, &d.namespace) else {
                continue;
            };
            match api
                .patch_metadata(&d.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if crate::is_not_found(&e) => {}
                Err(e) => return Err(Error::Patch(label, e)),
            }
        }
        self.remove_finalizer(&node.id, ORPHAN).await
    }
}

/// Feeds one resource's metadata watch into the graph; reports its first full list on
/// `synced`. After a relist, objects that disappeared meanwhile are sent as deletes.
async fn monitor(
    client: kube::Client,
    ar: ApiResource,
    events: mpsc::UnboundedSender<Event>,
    synced: tokio::sync::oneshot::Sender<()>,
) {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &ar);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut synced = Some(synced);
    let mut known: HashMap<String, Identity> = HashMap::new();
    let mut relist: Option<HashMap<String, Identity>> = None;
    let ident = |m: &ObjectMeta| Identity {
        api_version: ar.api_version.clone(),
        kind: ar.kind.clone(),
        namespace: m.namespace.clone().unwrap_or_default(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
    };
    while let Some(ev) = stream.next().await {
        let sent = match ev {
            Ok(WatchEvent::Init) => {
                relist = Some(HashMap::new());
                true
            }
            Ok(WatchEvent::InitApply(o)) => {
                let id = ident(&o.metadata);
                if let Some(r) = relist.as_mut() {
                    r.insert(id.uid.clone(), id.clone());
                }
                known.insert(id.uid.clone(), id.clone());
                events.send(Event::Upsert(id, Box::new(o.metadata))).is_ok()
            }
            Ok(WatchEvent::InitDone) => {
                let fresh = relist.take().unwrap_or_default();
                let gone: Vec<Identity> = known
                    .iter()
                    .filter(|(uid, _)| !fresh.contains_key(*uid))
                    .map(|(_, id)| id.clone())
                    .collect();
                known = fresh;
                if let Some(s) = synced.take() {
                    let _ = s.send(());
                }
                gone.into_iter()
                    .all(|id| events.send(Event::Delete(id)).is_ok())
            }
            Ok(WatchEvent::Apply(o)) => {
                let id = ident(&o.metadata);
                known.insert(id.uid.clone(), id.clone());
                events.send(Event::Upsert(id, Box::new(o.metadata))).is_ok()
            }
            Ok(WatchEvent::Delete(o)) => {
                let id = ident(&o.metadata);
                known.remove(&id.uid);
                events.send(Event::Delete(id)).is_ok()
            }
            Err(e) => {
                tracing::debug!(resource = %ar.plural, error = %e, "garbage collector watch failed; retrying");
                true
            }
        };
        if !sent {
            return;
        }
    }
}
