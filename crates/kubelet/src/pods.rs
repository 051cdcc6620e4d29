//! Pod workers: one watch over every pod bound to this process's nodes, and a sync per
//! pod that makes the runtime match the pod and posts the resulting status.
//!
//! The manager task owns the per-pod state and never waits on the network. Each sync runs
//! in its own task; a pod has at most one sync in flight, and changes that arrive
//! meanwhile coalesce into one more sync afterwards (upstream's pod workers and status
//! manager: latest state wins, never two syncs of one pod at once). API writes go through
//! a semaphore so a burst of thousands of pods keeps a bounded number of requests open.
//!
//! A sync, level-triggered from the latest pod object and the runtime's state:
//! - being deleted: kill it, post the final status, confirm the deletion with
//!   `gracePeriodSeconds=0` (and the pod's uid as precondition), as a kubelet does;
//! - already Succeeded/Failed in the API: make sure nothing runs;
//! - otherwise: `Runtime::sync_pod`, stop the sandbox once its containers are done for
//!   good, and post the generated status if it differs from the API's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::runtime::{PodRuntimeStatus, RuntimeEvent};
use crate::sim::Shared;
use crate::{api, status};

/// Retry delays after a failed sync: from this, doubling, up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Requests from the simulator's control surface.
#[derive(Debug)]
pub(crate) enum Control {
    /// Node `i` is back: sync all its pods.
    NodeRecovered(usize),
}

struct Entry {
    /// The newest object seen, from the watch or a write's response.
    pod: Arc<Pod>,
    node: usize,
    in_flight: bool,
    /// Something changed while a sync was in flight: sync again when it ends.
    dirty: bool,
    /// The API object is gone while a sync was in flight: forget the pod when it ends.
    removed: bool,
    /// The deletion was confirmed; nothing is left to do but wait for it to vanish.
    delete_sent: bool,
    backoff: Duration,
}

enum Outcome {
    /// Nothing (more) to write.
    Idle,
    /// The status was written; the API's answer.
    Written(Box<Pod>),
    DeleteSent,
    Failed(String),
}

struct Done {
    uid: String,
    outcome: Outcome,
}

struct Manager {
    shared: Arc<Shared>,
    pods: HashMap<String, Entry>,
    done: mpsc::UnboundedSender<Done>,
    retries: BinaryHeap<Reverse<(Instant, String)>>,
    /// UIDs seen since the watch (re)started listing; `None` outside a list.
    listing: Option<HashSet<String>>,
}

/// Runs the pod workers until `stop`. `synced` fires once the first list of pods has been
/// taken in.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut control: mpsc::UnboundedReceiver<Control>,
    synced: oneshot::Sender<()>,
    stop: CancellationToken,
) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    // One watch for every node of this process; pods of other nodes are skipped.
    let mut pods = watcher::watcher(api, watcher::Config::default().fields("spec.nodeName!="))
        .default_backoff()
        .boxed();
    let mut runtime_events = shared.runtime.events();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut m = Manager {
        shared,
        pods: HashMap::new(),
        done: done_tx,
        retries: BinaryHeap::new(),
        listing: None,
    };
    let mut synced = Some(synced);
    let mut resync = m.shared.cfg.resync_period.map(|p| {
        let mut t = tokio::time::interval_at(Instant::now() + p, p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        let next_retry = m.retries.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            _ = stop.cancelled() => break,
            ev = pods.try_next() => match ev {
                Ok(Some(ev)) => {
                    let listed = matches!(ev, Event::InitDone);
                    m.on_watch(ev);
                    if listed && let Some(tx) = synced.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(None) => break,
                Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
            },
            Some(ev) = runtime_events.next() => match ev {
                RuntimeEvent::PodChanged { uid } => m.request_sync(&uid),
                RuntimeEvent::Lagged => m.sync_all(|_| true),
            },
            Some(done) = done_rx.recv() => m.on_done(done),
            Some(c) = control.recv() => match c {
                Control::NodeRecovered(i) => m.sync_all(|e| e.node == i),
            },
            _ = sleep_until(next_retry), if next_retry.is_some() => m.on_retry_due(),
            _ = tick(&mut resync), if resync.is_some() => m.sync_all(|_| true),
        }
    }
}

async fn tick(t: &mut Option<tokio::time::Interval>) {
    if let Some(t) = t {
        t.tick().await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

fn resource_version(p: &Pod) -> Option<u64> {
    p.metadata.resource_version.as_deref()?.parse().ok()
}

/// Whether `a` is a later version of the object than `b`. Resource versions are compared
/// as the integers every apiserver we talk to uses; an unreadable one counts as newer.
fn newer(a: &Pod, b: &Pod) -> bool {
    match (resource_version(a), resource_version(b)) {
        (Some(a), Some(b)) => a > b,
        _ => true,
    }
}

impl Manager {
    fn on_watch(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Apply(pod) => self.on_apply(pod),
            Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid {
                    self.on_delete(&uid);
                }
            }
            Event::Init => self.listing = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if let (Some(seen), Some(uid)) = (&mut self.listing, &pod.metadata.uid) {
                    seen.insert(uid.clone());
                }
                self.on_apply(pod);
            }
            Event::InitDone => {
                // Whatever the new list lacks was deleted while the watch was down.
                if let Some(seen) = self.listing.take() {
                    // The runtime may hold pods deleted while the agent was down.
                    let runtime = self.shared.runtime.clone();
                    let known = seen.clone();
                    tokio::spawn(async move {
                        if let Err(e) = runtime.retain(&known).await {
                            tracing::warn!(error = %e, "removing pods that are gone failed");
                        }
                    });
                    let gone: Vec<String> = self
                        .pods
                        .keys()
                        .filter(|uid| !seen.contains(*uid))
                        .cloned()
                        .collect();
                    for uid in gone {
                        self.on_delete(&uid);
                    }
                }
            }
        }
    }

    fn on_apply(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| self.shared.by_name.get(n))
            .copied();
        let Some(node) = node else { return };
        match self.pods.get_mut(&uid) {
            Some(e) => {
                // Our own writes come back through the watch: an object we already hold
                // (or an older one) needs no sync.
                if !newer(&pod, &e.pod) {
                    return;
                }
                e.pod = Arc::new(pod);
            }
            None => {
                tracing::debug!(ns = ?pod.metadata.namespace, name = ?pod.metadata.name, node = %self.shared.nodes[node].name, "pod bound");
                self.pods.insert(
                    uid.clone(),
                    Entry {
                        pod: Arc::new(pod),
                        node,
                        in_flight: false,
                        dirty: false,
                        removed: false,
                        delete_sent: false,
                        backoff: Duration::ZERO,
                    },
                );
            }
        }
        self.request_sync(&uid);
    }

    fn on_delete(&mut self, uid: &str) {
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        if e.in_flight {
            e.removed = true;
            return;
        }
        self.pods.remove(uid);
        self.forget(uid);
    }

    /// Releases what the runtime holds for a pod whose object is gone.
    fn forget(&self, uid: &str) {
        let runtime = self.shared.runtime.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            if let Err(e) = runtime.remove_pod(&uid).await {
                tracing::warn!(uid, error = %e, "removing pod from the runtime failed");
            }
        });
    }

    fn sync_all(&mut self, pick: impl Fn(&Entry) -> bool) {
        let uids: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in uids {
            self.request_sync(&uid);
        }
    }

    fn request_sync(&mut self, uid: &str) {
        let Some(e) = self.pods.get_mut(uid) else {
            return;
        };
        // A failed node's pods wait, stale, until the node comes back.
        if self.shared.nodes[e.node].failed.load(Ordering::Relaxed) {
            return;
        }
        if e.in_flight {
            e.dirty = true;
            return;
        }
        e.in_flight = true;
        let shared = self.shared.clone();
        let pod = e.pod.clone();
        let node = e.node;
        let delete_sent = e.delete_sent;
        let done = self.done.clone();
        let uid = uid.to_string();
        tokio::spawn(async move {
            let outcome = match sync(&shared, &pod, node, delete_sent).await {
                Ok(o) => o,
                Err(why) => Outcome::Failed(why),
            };
            // The manager is gone only when stopping.
            let _ = done.send(Done { uid, outcome });
        });
    }

    fn on_done(&mut self, done: Done) {
        let Some(e) = self.pods.get_mut(&done.uid) else {
            return;
        };
        e.in_flight = false;
        if e.removed {
            self.pods.remove(&done.uid);
            self.forget(&done.uid);
            return;
        }
        match done.outcome {
            Outcome::Idle => e.backoff = Duration::ZERO,
            Outcome::Written(pod) => {
                e.backoff = Duration::ZERO;
                if newer(&pod, &e.pod) {
                    e.pod = Arc::new(*pod);
                }
            }
            Outcome::DeleteSent => e.delete_sent = true,
            Outcome::Failed(why) => {
                e.backoff = (e.backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                tracing::warn!(
                    ns = ?e.pod.metadata.namespace,
                    name = ?e.pod.metadata.name,
                    retry_in = ?e.backoff,
                    "pod sync failed: {why}"
                );
                self.retries
                    .push(Reverse((Instant::now() + e.backoff, done.uid.clone())));
                return;
            }
        }
        if e.dirty {
            e.dirty = false;
            self.request_sync(&done.uid);
        }
    }

    fn on_retry_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _))) = self.retries.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, uid))) = self.retries.pop() {
                self.request_sync(&uid);
            }
        }
    }
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Whether the pod's containers are done for good: all regular containers exited and the
/// restart policy restarts none of them.
fn finished(pod: &Pod, rs: &PodRuntimeStatus) -> bool {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let all_exited = !rs.containers.is_empty()
        && rs
            .containers
            .iter()
            .all(|c| matches!(c.state, crate::runtime::ContainerState::Exited { .. }));
    match policy {
        "Never" => all_exited,
        "OnFailure" => all_exited && rs.containers.iter().all(|c| c.succeeded()),
        _ => false,
    }
}

/// One sync of one pod; see the module doc. Errors are described for the log and retried.
async fn sync(
    shared: &Shared,
    pod: &Pod,
    node: usize,
    delete_sent: bool,
) -> Result<Outcome, String> {
    let runtime = &shared.runtime;
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let host_ip = shared.nodes[node].ip.to_string();
    if pod.metadata.deletion_timestamp.is_some() {
        if delete_sent {
            return Ok(Outcome::Idle);
        }
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or_default();
        let killed = runtime
            .kill_pod(pod, grace)
            .await
            .map_err(|e| describe(&e))?;
        let terminal = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|p| p == "Succeeded" || p == "Failed");
        if let Some(rs) = killed.filter(|_| !terminal) {
            let status = status::generate(pod, &rs, &host_ip, Timestamp::now());
            if !status::unchanged(pod.status.as_ref(), &status) {
                match write_status(shared, pod, &status).await {
                    Ok(_) => {
                        tracing::debug!(ns = ?pod.metadata.namespace, name = ?pod.metadata.name, "posted the final status");
                    }
                    Err(e) if api::is_not_found(&e) => return Ok(Outcome::Idle),
                    Err(e) => return Err(describe(&e)),
                }
            }
        }
        return match confirm_deletion(shared, pod).await {
            Ok(()) => Ok(Outcome::DeleteSent),
            // Gone already, or the name now belongs to a new pod.
            Err(e) if api::is_not_found(&e) || api::is_conflict(&e) => Ok(Outcome::DeleteSent),
            Err(e) => Err(describe(&e)),
        };
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        // Finished before this process saw it, or finished by us: nothing may run.
        let running = runtime
            .pod_status(uid)
            .await
            .map_err(|e| describe(&e))?
            .is_some_and(|rs| rs.sandbox.ready);
        if running {
            runtime
                .kill_pod(pod, Duration::ZERO)
                .await
                .map_err(|e| describe(&e))?;
        }
        return Ok(Outcome::Idle);
    }
    let mut rs = runtime.sync_pod(pod).await.map_err(|e| describe(&e))?;
    if rs.sandbox.ready && finished(pod, &rs) {
        // Upstream tears the sandbox down once a pod is terminal.
        rs = runtime
            .kill_pod(pod, Duration::ZERO)
            .await
            .map_err(|e| describe(&e))?
            .unwrap_or(rs);
    }
    let status = status::generate(pod, &rs, &host_ip, Timestamp::now());
    if status::unchanged(pod.status.as_ref(), &status) {
        return Ok(Outcome::Idle);
    }
    match write_status(shared, pod, &status).await {
        Ok(p) => Ok(Outcome::Written(Box::new(p))),
        // The Delete event follows.
        Err(e) if api::is_not_found(&e) => Ok(Outcome::Idle),
        Err(e) => Err(describe(&e)),
    }
}

fn pod_api(shared: &Shared, pod: &Pod) -> Api<Pod> {
    Api::namespaced(
        shared.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    )
}

/// Patches `pods/status` with the kubelet-owned fields (strategic merge: conditions
/// merge by type, so conditions others own stay).
async fn write_status(
    shared: &Shared,
    pod: &Pod,
    status: &k8s_openapi::api::core::v1::PodStatus,
) -> Result<Pod, kube::Error> {
    let _permit = shared.pod_writes.acquire().await;
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let body = json!({
        "metadata": {"uid": pod.metadata.uid},
        "status": status,
    });
    pod_api(shared, pod)
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&body))
        .await
}

/// Deletes the pod for good, as a kubelet does once its containers are gone.
async fn confirm_deletion(shared: &Shared, pod: &Pod) -> Result<(), kube::Error> {
    let _permit = shared.pod_writes.acquire().await;
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    pod_api(shared, pod).delete(name, &dp).await.map(drop)
}
