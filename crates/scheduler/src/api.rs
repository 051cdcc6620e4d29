//! Everything the scheduler writes, off the scheduling thread: bindings (bounded concurrency,
//! results reported back to the loop), pod status patches, preemption deletions and events.
//!
//! Events go through a bounded buffer and are dropped when it is full (counted in
//! `events_dropped`), as upstream's event broadcaster drops rather than slow scheduling.
//! Repeats of the same event for the same pod are aggregated into one Event with a growing
//! `count`, like `kubectl describe`'s `(x3 over 2m)`.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api as KubeApi, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::framework::{Plugin, PodInfo, Status};
use crate::metrics::Metrics;
use crate::scheduler::Msg;

const EVENT_BUFFER: usize = 4096;
const EVENT_CONCURRENCY: usize = 16;
const AGGREGATE_LIMIT: usize = 20_000;

/// An event to record about a pod.
pub(crate) struct EventReq {
    pub pod: Arc<PodInfo>,
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
    /// The profile's scheduler name (`source.component`, `reportingComponent`).
    pub controller: String,
}

/// Handle to the async side, owned by the scheduling loop.
pub(crate) struct Api {
    client: kube::Client,
    rt: tokio::runtime::Handle,
    bind_permits: Arc<Semaphore>,
    events: Option<mpsc::Sender<EventReq>>,
    tx: std::sync::mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
}

impl Api {
    pub fn new(
        client: kube::Client,
        rt: tokio::runtime::Handle,
        bind_concurrency: usize,
        record_events: bool,
        tx: std::sync::mpsc::Sender<Msg>,
        metrics: Arc<Metrics>,
    ) -> Api {
        let events = record_events.then(|| {
            let (etx, erx) = mpsc::channel(EVENT_BUFFER);
            rt.spawn(event_dispatcher(client.clone(), erx));
            etx
        });
        Api {
            client,
            rt,
            bind_permits: Arc::new(Semaphore::new(bind_concurrency.max(1))),
            events,
            tx,
            metrics,
        }
    }

    fn pods(&self, ns: &str) -> KubeApi<Pod> {
        KubeApi::namespaced(self.client.clone(), ns)
    }

    /// Binds with the first bind plugin that does not skip; reports `Msg::Bound`. Blocks the
    /// caller while `bind_concurrency` bindings are already in flight (backpressure).
    pub fn bind(&self, binders: Vec<Arc<dyn Plugin>>, pod: Arc<PodInfo>, node: String) {
        let permit = match self.bind_permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match self.rt.block_on(self.bind_permits.clone().acquire_owned()) {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let client = self.client.clone();
        let tx = self.tx.clone();
        self.rt.spawn(async move {
            let _permit = permit;
            let start = Instant::now();
            let mut status = Status::error("no bind plugin bound the pod");
            for b in binders {
                let s = b.bind(client.clone(), pod.clone(), node.clone()).await;
                if !s.is_skip() {
                    status = s.with_plugin(b.name());
                    break;
                }
            }
            let _ = tx.send(Msg::Bound {
                uid: pod.uid.clone(),
                node,
                status,
                took: start.elapsed(),
            });
        });
    }

    /// Sets `PodScheduled=False` with `reason` and `message`, and the nominated node
    /// (`Some("")` clears it), unless the pod already shows exactly that.
    pub fn update_failed_condition(
        &self,
        pod: &PodInfo,
        reason: &str,
        message: &str,
        nominated: Option<&str>,
    ) {
        let status = pod.pod.status.as_ref();
        let current = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let same_condition = current.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        });
        let current_nominated = pod.nominated_node_name();
        let nominated_changes = nominated.is_some_and(|n| n != current_nominated);
        if same_condition && !nominated_changes {
            return;
        }
        // Keep the transition time while the condition stays False.
        let transition = match current {
            Some(c) if c.status == "False" => c
                .last_transition_time
                .as_ref()
                .map(|t| json!(t))
                .unwrap_or_else(|| json!(Time(jiff::Timestamp::now()))),
            _ => json!(Time(jiff::Timestamp::now())),
        };
        let mut st = json!({"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": transition,
        }]});
        if let Some(n) = nominated.filter(|_| nominated_changes) {
            st["nominatedNodeName"] = if n.is_empty() { Value::Null } else { json!(n) };
        }
        self.patch_status(pod, json!({"status": st}));
    }

    /// Clears a pod's nominated node.
    pub fn clear_nominated(&self, pod: &PodInfo) {
        self.patch_status(pod, json!({"status": {"nominatedNodeName": null}}));
    }

    fn patch_status(&self, pod: &PodInfo, patch: Value) {
        let api = self.pods(pod.namespace());
        let name = pod.name().to_string();
        self.rt.spawn(async move {
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => tracing::warn!(pod = %name, error = %e, "updating pod status failed"),
            }
        });
    }

    /// Preempts `victim` for `preemptor` on `node`: marks it `DisruptionTarget`, deletes it
    /// (with its grace period) and records `Preempted`.
    pub fn preempt(&self, victim: Arc<PodInfo>, preemptor: &PodInfo, node: &str, controller: &str) {
        let api = self.pods(victim.namespace());
        let name = victim.name().to_string();
        let uid = victim.uid.clone();
        let message = format!("{controller}: preempting to accommodate a higher priority pod");
        let now = Time(jiff::Timestamp::now());
        self.rt.spawn(async move {
            let patch = json!({"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True",
                "reason": "PreemptionByScheduler", "message": message,
                "lastTransitionTime": now}]}});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "marking preemption victim failed");
            }
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "deleting preemption victim failed")
                }
            }
        });
        self.event(EventReq {
            pod: victim.clone(),
            warning: false,
            reason: "Preempted",
            action: "Preempting",
            message: format!("Preempted by pod {} on node {node}", preemptor.uid),
            controller: controller.to_string(),
        });
    }

    /// Queues an event; drops it if the buffer is full.
    pub fn event(&self, e: EventReq) {
        let Some(tx) = &self.events else {
            return;
        };
        if tx.try_send(e).is_err() {
            self.metrics.events_dropped.fetch_add(1, Relaxed);
        }
    }
}

#[derive(Clone)]
struct Aggregate {
    name: String,
    namespace: String,
    count: i32,
}

type AggKey = (String, &'static str, String);

async fn event_dispatcher(client: kube::Client, mut rx: mpsc::Receiver<EventReq>) {
    let permits = Arc::new(Semaphore::new(EVENT_CONCURRENCY));
    let seen: Arc<Mutex<HashMap<AggKey, Aggregate>>> = Arc::default();
    let instance = events::hostname();
    while let Some(e) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        let seen = seen.clone();
        let instance = format!("{}-{instance}", e.controller);
        tokio::spawn(async move {
            let _permit = permit;
            write_event(client, e, &seen, &instance).await;
        });
    }
}

fn lock(
    m: &Mutex<HashMap<AggKey, Aggregate>>,
) -> std::sync::MutexGuard<'_, HashMap<AggKey, Aggregate>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn write_event(
    client: kube::Client,
    e: EventReq,
    seen: &Mutex<HashMap<AggKey, Aggregate>>,
    instance: &str,
) {
    let message = events::truncate(&e.message);
    let key: AggKey = (e.pod.uid.clone(), e.reason, message.clone());
    let now = Time(jiff::Timestamp::now());
    let repeat = {
        let mut m = lock(seen);
        if m.len() > AGGREGATE_LIMIT {
            m.clear();
        }
        m.get_mut(&key).map(|a| {
            a.count += 1;
            a.clone()
        })
    };
    if let Some(a) = repeat {
        let api: KubeApi<Event> = KubeApi::namespaced(client.clone(), &a.namespace);
        let patch = json!({"count": a.count, "lastTimestamp": now});
        if api
            .patch(&a.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .is_ok()
        {
            return;
        }
        // Gone (expired or deleted): write a new one below.
        lock(seen).remove(&key);
    }
    let ns = e.pod.namespace().to_string();
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let name = format!("{}.{:x}", e.pod.name(), nanos);
    let ev = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(e.pod.name().to_string()),
            namespace: Some(ns.clone()),
            uid: Some(e.pod.uid.clone()),
            resource_version: e.pod.pod.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(e.reason.to_string()),
        message: Some(message),
        type_: Some(if e.warning { "Warning" } else { "Normal" }.to_string()),
        source: Some(EventSource {
            component: Some(e.controller.clone()),
            host: None,
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        action: Some(e.action.to_string()),
        reporting_component: Some(e.controller.clone()),
        reporting_instance: Some(instance.to_string()),
        ..Default::default()
    };
    let api: KubeApi<Event> = KubeApi::namespaced(client, &ns);
    match api.create(&PostParams::default(), &ev).await {
        Ok(_) => {
            lock(seen).insert(
                key,
                Aggregate {
                    name,
                    namespace: ns,
                    count: 1,
                },
            );
        }
        Err(err) => tracing::debug!(error = %err, reason = e.reason, "recording event failed"),
    }
}

/// How long a binding took, for logs.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
