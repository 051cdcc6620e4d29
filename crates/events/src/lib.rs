//! Core `v1` Events about the objects components act on (`SuccessfulCreate`,
//! `ScalingReplicaSet`, `Pulled`, …), written off the caller's path through a bounded
//! buffer that drops when full (as upstream's broadcaster does rather than slow its
//! callers). Repeats of one event for one object become one Event with a growing `count`.
//! Shared by the controllers and the node agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

const BUFFER: usize = 4096;
/// Upstream's cap on an event message (longer ones end in `...`).
pub const MAX_MESSAGE: usize = 1024;
const AGGREGATE_LIMIT: usize = 20_000;

struct Req {
    object: ObjectReference,
    warning: bool,
    reason: &'static str,
    message: String,
    component: &'static str,
}

/// Records events; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Req>,
}

/// Where events come from: `source.host` and the reporting instance. Controllers leave the
/// host out (the instance is `<component>-<hostname>`); a node agent reports its node.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub host: Option<String>,
}

/// A reference to `obj` for an Event's `involvedObject`.
pub fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        ..Default::default()
    }
}

impl Recorder {
    /// Starts the writer task on the current runtime.
    pub fn start(client: kube::Client) -> Self {
        Self::start_as(client, Origin::default())
    }

    /// Starts the writer task for events from `origin`.
    pub fn start_as(client: kube::Client, origin: Origin) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(dispatch(client, rx, origin));
        Self { tx }
    }

    /// Records an event about the object `object` refers to (which may name a field, as
    /// `spec.containers{app}`).
    pub fn record(
        &self,
        component: &'static str,
        object: ObjectReference,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        self.send(component, object, warning, reason, message);
    }

    pub fn normal<K: Resource<DynamicType = ()>>(
        &self,
        component: &'static str,
        obj: &K,
        reason: &'static str,
        message: String,
    ) {
        self.send(component, reference(obj), false, reason, message);
    }

    pub fn warning<K: Resource<DynamicType = ()>>(
        &self,
        component: &'static str,
        obj: &K,
        reason: &'static str,
        message: String,
    ) {
        self.send(component, reference(obj), true, reason, message);
    }

    fn send(
        &self,
        component: &'static str,
        object: ObjectReference,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        let _ = self.tx.try_send(Req {
            object,
            warning,
            reason,
            message,
            component,
        });
    }
}

type Key = (String, &'static str, String);
/// Key → (namespace, event name, count) of the Event last written for it.
type Seen = Mutex<HashMap<Key, (String, String, i32)>>;

async fn dispatch(client: kube::Client, mut rx: mpsc::Receiver<Req>, origin: Origin) {
    let seen: Arc<Seen> = Arc::default();
    let instance_host = origin.host.clone().unwrap_or_else(hostname);
    while let Some(req) = rx.recv().await {
        write(&client, req, &seen, &origin, &instance_host).await;
    }
}

/// This machine's name, for reporting instances.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rkube".to_string())
}

/// `msg` cut to [`MAX_MESSAGE`] bytes on a character boundary, ending in `...` when cut.
pub fn truncate(msg: &str) -> String {
    if msg.len() <= MAX_MESSAGE {
        return msg.to_string();
    }
    let mut end = MAX_MESSAGE - 3;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &msg[..end])
}

async fn write(client: &kube::Client, req: Req, seen: &Seen, origin: &Origin, host: &str) {
    let message = truncate(&req.message);
    let key: Key = (
        format!(
            "{}/{}",
            req.object.uid.as_deref().unwrap_or_default(),
            req.object.field_path.as_deref().unwrap_or_default()
        ),
        req.reason,
        message.clone(),
    );
    let now = Time(jiff::Timestamp::now());
    let lock = || seen.lock().unwrap_or_else(|p| p.into_inner());
    let repeat = {
        let mut m = lock();
        if m.len() > AGGREGATE_LIMIT {
            m.clear();
        }
        m.get_mut(&key).map(|a| {
            a.2 += 1;
            a.clone()
        })
    };
    if let Some((ns, name, count)) = repeat {
        let api: Api<Event> = Api::namespaced(client.clone(), &ns);
        let patch = json!({"count": count, "lastTimestamp": now});
        if api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .is_ok()
        {
            return;
        }
        lock().remove(&key);
    }
    // Events about cluster-scoped objects live in `default`, as upstream.
    let ns = req
        .object
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let name = format!(
        "{}.{:x}",
        req.object.name.as_deref().unwrap_or("object"),
        jiff::Timestamp::now().as_nanosecond()
    );
    let ev = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: req.object,
        reason: Some(req.reason.to_string()),
        message: Some(message),
        type_: Some(if req.warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(req.component.to_string()),
            host: origin.host.clone(),
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some(req.component.to_string()),
        reporting_instance: Some(match &origin.host {
            Some(h) => h.clone(),
            None => format!("{}-{host}", req.component),
        }),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    match api.create(&PostParams::default(), &ev).await {
        Ok(created) => {
            lock().insert(key, (ns, created.name_any(), 1));
        }
        Err(e) => tracing::debug!(error = %e, reason = req.reason, "recording event failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(600);
        let t = truncate(&long);
        assert!(t.len() <= MAX_MESSAGE);
        assert!(t.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
