//! The cluster as the node's networking sees it: one watch per kind, cached in kube-rs
//! reflector stores, with a change signal per kind so each consumer (service rules, network
//! policy, DNS, ingress) rebuilds only when something it reads changed.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The kinds the cluster view holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Service,
    EndpointSlice,
    Pod,
    Namespace,
    NetworkPolicy,
    Ingress,
    IngressClass,
    Secret,
}

const KINDS: usize = 8;

/// Cached objects of every kind, kept current by watches until `stop` fires.
#[derive(Clone)]
pub struct Cluster {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub pods: Store<Pod>,
    pub namespaces: Store<Namespace>,
    pub policies: Store<NetworkPolicy>,
    pub ingresses: Store<Ingress>,
    pub classes: Store<IngressClass>,
    pub secrets: Store<Secret>,
    signals: Arc<[Signal; KINDS]>,
}

/// One kind's watch as its consumers see it.
#[derive(Clone)]
struct Signal {
    /// Bumped on every change.
    changed: watch::Sender<u64>,
    /// True once the first list is in. (Not the store's own `wait_until_ready`: of several
    /// tasks waiting on it at once, only the last to wait is woken.)
    ready: watch::Sender<bool>,
}

/// Wakes when any of the kinds it was made for changed since the last wake.
pub struct Changes {
    receivers: Vec<watch::Receiver<u64>>,
}

impl Changes {
    /// Waits for the next change; false once the watches are gone.
    pub async fn next(&mut self) -> bool {
        if self.receivers.is_empty() {
            return false;
        }
        let waits = self.receivers.iter_mut().map(|r| Box::pin(r.changed()));
        let (result, _, _) = futures::future::select_all(waits).await;
        if result.is_err() {
            return false;
        }
        for r in &mut self.receivers {
            r.mark_unchanged();
        }
        true
    }
}

fn spawn_watch<K>(api: Api<K>, signal: Signal, stop: CancellationToken) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                event = stream.next() => event,
            };
            match event {
                None => return,
                Some(Ok(watcher::Event::InitDone)) => {
                    signal.ready.send_replace(true);
                    signal.changed.send_modify(|n| *n += 1);
                }
                Some(Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))) => {
                    signal.changed.send_modify(|n| *n += 1);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "watch error; retrying"),
            }
        }
    });
    store
}

impl Cluster {
    /// Starts the watches (all namespaces).
    pub fn watch(client: &Client, stop: &CancellationToken) -> Cluster {
        let signals: [Signal; KINDS] = std::array::from_fn(|_| Signal {
            changed: watch::Sender::new(0),
            ready: watch::Sender::new(false),
        });
        let signal = |k: Kind| signals[k as usize].clone();
        Cluster {
            services: spawn_watch(
                Api::all(client.clone()),
                signal(Kind::Service),
                stop.clone(),
            ),
            slices: spawn_watch(
                Api::all(client.clone()),
                signal(Kind::EndpointSlice),
                stop.clone(),
            ),
            pods: spawn_watch(Api::all(client.clone()), signal(Kind::Pod), stop.clone()),
            namespaces: spawn_watch(
                Api::all(client.clone()),
                signal(Kind::Namespace),
                stop.clone(),
            ),
            policies: spawn_watch(
                Api::all(client.clone()),
                signal(Kind::NetworkPolicy),
                stop.clone(),
            ),
            ingresses: spawn_watch(
                Api::all(client.clone()),
                signal(Kind::Ingress),
                stop.clone(),
            ),
            classes: spawn_watch(
                Api::all(client.clone()),
                signal(Kind::IngressClass),
                stop.clone(),
            ),
            secrets: spawn_watch(Api::all(client.clone()), signal(Kind::Secret), stop.clone()),
            signals: Arc::new(signals),
        }
    }

    /// A change signal for `kinds`; the first `next()` returns at once (build the initial
    /// state then).
    pub fn changes(&self, kinds: &[Kind]) -> Changes {
        let receivers = kinds
            .iter()
            .map(|k| {
                let mut r = self.signals[*k as usize].changed.subscribe();
                r.mark_changed();
                r
            })
            .collect();
        Changes { receivers }
    }

    /// Waits until every watch in `kinds` has its first list (any number of tasks may wait
    /// at once).
    pub async fn ready(&self, kinds: &[Kind]) {
        for kind in kinds {
            let mut rx = self.signals[*kind as usize].ready.subscribe();
            // An error means the watch ended (stop fired); the caller stops as well.
            let _ = rx.wait_for(|ready| *ready).await;
        }
    }
}
