//! Watches (kube-runtime watchers with their backoff) that feed the scheduling loop: nodes,
//! non-terminal pods, namespaces, PodDisruptionBudgets, and PriorityClasses.
//!
//! Objects are decoded and pods turned into [`PodInfo`] here, on the async runtime, so the
//! scheduling thread only applies ready-made updates. A relist (watcher `Init` … `InitDone`)
//! is forwarded so the loop can drop what disappeared meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::task::JoinSet;

use crate::cache::PdbInfo;
use crate::framework::PodInfo;
use crate::scheduler::{Kind, Msg};

/// PriorityClass name → value, plus the global default, for pods admission left without
/// `spec.priority`.
#[derive(Debug, Default)]
pub(crate) struct Priorities {
    by_name: HashMap<String, (i32, bool)>,
}

impl Priorities {
    pub fn lookup(&self, name: &str) -> Option<i32> {
        if name.is_empty() {
            return self
                .by_name
                .values()
                .find(|(_, global)| *global)
                .map(|(v, _)| *v);
        }
        self.by_name.get(name).map(|(v, _)| *v)
    }
}

/// The field selector upstream's scheduler uses: terminal pods hold no resources.
pub const POD_FIELD_SELECTOR: &str = "status.phase!=Succeeded,status.phase!=Failed";

type Tx = std::sync::mpsc::Sender<Msg>;

async fn forward<K, F>(
    stream: impl futures::Stream<Item = Result<Event<K>, watcher::Error>>,
    kind: Kind,
    tx: Tx,
    mut apply: F,
    delete: impl Fn(K) -> Option<Msg>,
) where
    F: FnMut(K) -> Option<Msg>,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        let msg = match ev {
            Ok(Event::Init) => Some(Msg::RelistStart(kind)),
            Ok(Event::InitApply(o) | Event::Apply(o)) => apply(o),
            Ok(Event::InitDone) => Some(Msg::RelistDone(kind)),
            Ok(Event::Delete(o)) => delete(o),
            Err(e) => {
                tracing::warn!(?kind, error = %e, "watch failed; retrying");
                None
            }
        };
        if let Some(m) = msg
            && tx.send(m).is_err()
        {
            return;
        }
    }
}

/// Starts every watch on `set`.
pub(crate) fn spawn_all(client: kube::Client, tx: Tx, set: &mut JoinSet<()>) {
    let priorities: Arc<RwLock<Priorities>> = Arc::default();
    let (pc_synced_tx, pc_synced_rx) = tokio::sync::watch::channel(false);

    {
        let api: Api<PriorityClass> = Api::all(client.clone());
        let priorities = priorities.clone();
        set.spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                let mut p = priorities.write().unwrap_or_else(|e| e.into_inner());
                match ev {
                    Ok(Event::Init) => p.by_name.clear(),
                    Ok(Event::InitApply(pc) | Event::Apply(pc)) => {
                        let name = pc.metadata.name.clone().unwrap_or_default();
                        p.by_name
                            .insert(name, (pc.value, pc.global_default.unwrap_or(false)));
                    }
                    Ok(Event::Delete(pc)) => {
                        p.by_name.remove(pc.metadata.name.as_deref().unwrap_or(""));
                    }
                    Ok(Event::InitDone) => {
                        let _ = pc_synced_tx.send(true);
                    }
                    Err(e) => tracing::warn!(error = %e, "priorityclass watch failed; retrying"),
                }
            }
        });
    }

    {
        let api: Api<Node> = Api::all(client.clone());
        let tx = tx.clone();
        set.spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            forward(
                stream,
                Kind::Node,
                tx,
                |n: Node| Some(Msg::Node(Arc::new(n))),
                |n: Node| Some(Msg::NodeDeleted(n.metadata.name.unwrap_or_default())),
            )
            .await;
        });
    }

    {
        let api: Api<Pod> = Api::all(client.clone());
        let tx = tx.clone();
        let mut synced = pc_synced_rx;
        set.spawn(async move {
            // Pods need the priority classes to resolve their priority.
            let _ = synced.wait_for(|s| *s).await;
            let cfg = watcher::Config::default().fields(POD_FIELD_SELECTOR);
            let stream = watcher::watcher(api, cfg).default_backoff();
            let info = |p: Pod| {
                let pr = priorities.read().unwrap_or_else(|e| e.into_inner());
                Arc::new(PodInfo::new(p, |n| pr.lookup(n)))
            };
            forward(
                stream,
                Kind::Pod,
                tx,
                |p: Pod| Some(Msg::Pod(info(p))),
                |p: Pod| Some(Msg::PodDeleted(info(p))),
            )
            .await;
        });
    }

    {
        let api: Api<Namespace> = Api::all(client.clone());
        let tx = tx.clone();
        set.spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            forward(
                stream,
                Kind::Namespace,
                tx,
                |n: Namespace| {
                    Some(Msg::Namespace(
                        n.metadata.name.unwrap_or_default(),
                        n.metadata.labels.unwrap_or_default(),
                    ))
                },
                |n: Namespace| Some(Msg::NamespaceDeleted(n.metadata.name.unwrap_or_default())),
            )
            .await;
        });
    }

    {
        let api: Api<PodDisruptionBudget> = Api::all(client);
        set.spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
            let key = |p: &PodDisruptionBudget| {
                format!(
                    "{}/{}",
                    p.metadata.namespace.as_deref().unwrap_or(""),
                    p.metadata.name.as_deref().unwrap_or("")
                )
            };
            forward(
                stream,
                Kind::Pdb,
                tx,
                |p: PodDisruptionBudget| {
                    let selector = apimachinery::selector::label::LabelSelector::from_api(
                        p.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    )
                    .ok()?;
                    let status = p.status.clone().unwrap_or_default();
                    Some(Msg::Pdb(
                        key(&p),
                        PdbInfo {
                            namespace: p.metadata.namespace.clone().unwrap_or_default(),
                            selector,
                            disruptions_allowed: status.disruptions_allowed,
                            disrupted_pods: status
                                .disrupted_pods
                                .unwrap_or_default()
                                .into_keys()
                                .collect(),
                        },
                    ))
                },
                |p: PodDisruptionBudget| Some(Msg::PdbDeleted(key(&p))),
            )
            .await;
        });
    }
}
