//! The simulated runtime: no containers, only their states and times (like kwok).
//!
//! A pod gets a sandbox with an IP from its node's block of the cluster CIDR; init
//! containers complete at once, sidecars and app containers run. Containers of a pod with
//! `restartPolicy` Never or OnFailure exit 0 after the configured run time; otherwise they
//! run until the pod is killed. Killing stops everything at once (the containers "handle"
//! SIGTERM and exit 0) and returns the IP to the pool.
//!
//! Two pod annotations let tests script a run-to-completion pod (controllers' failure
//! paths: a Job's `backoffLimit`, its `podFailurePolicy`):
//! - [`EXIT_CODE_ANNOTATION`] (`sim.rkube.io/exit-code: "1"`): the app containers exit with
//!   this code instead of 0. Under OnFailure a failed container is restarted (its
//!   `restartCount` grows) at the pod's next sync, without the kubelet's crash-loop delay;
//!   the sidecars keep running meanwhile.
//! - [`RUN_SECONDS_ANNOTATION`] (`sim.rkube.io/run-seconds: "0.5"`): how long they run,
//!   instead of the runtime's configured time.
//!
//! Pod IPs come from `ipam.rs`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus as ApiContainerStatus, Pod};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use super::ipam::{Owner, RUNTIME_IDS, allocate_ip, release_ip, reserve_ip};
use super::{
    ContainerState, ContainerStatus, Error, PodRuntimeStatus, Result, Runtime, RuntimeEvent,
    RuntimeVersion, SandboxStatus,
};
use crate::config::Ipv4Cidr;

/// The runtime name in `containerRuntimeVersion` and in container IDs.
pub const RUNTIME_NAME: &str = "sim";

/// Pod annotation: the exit code of its run-to-completion app containers (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "sim.rkube.io/exit-code";
/// Pod annotation: seconds (a decimal) its run-to-completion containers run for.
pub const RUN_SECONDS_ANNOTATION: &str = "sim.rkube.io/run-seconds";

/// Events buffered per subscriber before it is told it lagged.
const EVENT_BUFFER: usize = 16 * 1024;

/// A runtime that pretends to run containers.
pub struct SimRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    run_duration: Duration,
    /// Node name → its addresses. Written when nodes are added.
    nodes: Mutex<HashMap<String, NodeNet>>,
    /// Pod UID → what runs for it. Guards every container state change.
    pods: Mutex<HashMap<String, SimPod>>,
    events: broadcast::Sender<RuntimeEvent>,
    /// Tells this instance's IP holds from other instances'.
    id: u64,
}

impl Inner {
    fn owner(&self, uid: &str) -> Owner {
        Owner {
            runtime: self.id,
            uid: uid.to_string(),
        }
    }
}

#[derive(Clone, Copy)]
struct NodeNet {
    /// Where its pods' IPs come from.
    block: Ipv4Cidr,
    /// Its own address, which host-network pods share.
    host_ip: Ipv4Addr,
}

struct SimPod {
    status: PodRuntimeStatus,
    /// The pod IP and its pool while the sandbox holds it; `None` once returned, and
    /// for host-network pods.
    held: Option<(Ipv4Cidr, Ipv4Addr)>,
    /// The timer that makes the containers exit.
    exit_timer: Option<AbortHandle>,
    /// How its run-to-completion containers end.
    script: Script,
}

/// What a pod's annotations say about its run-to-completion containers.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Script {
    run: Duration,
    exit_code: i32,
    /// restartPolicy OnFailure: a failed container is started again.
    restart_on_failure: bool,
}

impl Script {
    /// Unparsable annotations are ignored (the defaults apply), as a typo in a test
    /// manifest should not wedge the simulator.
    fn of(pod: &Pod, default_run: Duration) -> Script {
        let annotation = |k: &str| {
            pod.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(k))
                .map(|v| v.trim())
        };
        let run = annotation(RUN_SECONDS_ANNOTATION)
            .and_then(|v| v.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(default_run);
        let exit_code = annotation(EXIT_CODE_ANNOTATION)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let restart_on_failure =
            pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
        Script {
            run,
            exit_code,
            restart_on_failure,
        }
    }

    /// Whether the pod is done once its app containers exit: sidecars stop then.
    fn ends_pod(self) -> bool {
        self.exit_code == 0 || !self.restart_on_failure
    }
}

impl SimRuntime {
    /// A runtime whose run-to-completion pods finish after `run_duration`.
    pub fn new(run_duration: Duration) -> SimRuntime {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        SimRuntime {
            inner: Arc::new(Inner {
                run_duration,
                nodes: Mutex::new(HashMap::new()),
                pods: Mutex::new(HashMap::new()),
                events,
                id: RUNTIME_IDS.fetch_add(1, Ordering::Relaxed),
            }),
        }
    }

    /// Serves pods bound to `node`, giving them IPs from `block` (host-network pods get
    /// `host_ip`).
    pub fn add_node(&self, node: &str, block: Ipv4Cidr, host_ip: Ipv4Addr) {
        lock(&self.inner.nodes).insert(node.to_string(), NodeNet { block, host_ip });
    }

    /// How many pods the runtime holds (running or finished, not yet removed).
    pub fn pod_count(&self) -> usize {
        lock(&self.inner.pods).len()
    }
}

impl Drop for SimRuntime {
    fn drop(&mut self) {
        for (uid, pod) in lock(&self.inner.pods).iter_mut() {
            if let Some(t) = pod.exit_timer.take() {
                t.abort();
            }
            if let Some((block, ip)) = pod.held.take() {
                release_ip(block, ip, &self.inner.owner(uid));
            }
        }
    }
}

#[async_trait::async_trait]
impl Runtime for SimRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion {
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        })
    }

    async fn sync_pod(&self, pod: &Pod) -> Result<PodRuntimeStatus> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(known) = lock(&self.inner.pods).get_mut(&uid) {
            // Only OnFailure restarts anything: Always pods never exit, Never pods stay
            // exited.
            if known.script.restart_on_failure && known.status.sandbox.ready {
                restart_failed(&self.inner, &uid, known);
            }
            return Ok(known.status.clone());
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let net =
            lock(&self.inner.nodes)
                .get(&node)
                .copied()
                .ok_or_else(|| Error::UnknownNode {
                    pod: pod_key(pod),
                    node: node.clone(),
                })?;
        let now = Timestamp::now();
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let owner = self.inner.owner(&uid);
        let (status, held) = match restore(pod, &owner, net, host_network) {
            Some(restored) => restored,
            None if host_network => (start(pod, &uid, net.host_ip, now), None),
            None => {
                let ip = allocate_ip(net.block, &owner).ok_or_else(|| Error::PodIpExhausted {
                    pod: pod_key(pod),
                    block: net.block.to_string(),
                })?;
                (start(pod, &uid, ip, now), Some((net.block, ip)))
            }
        };
        let script = Script::of(pod, self.inner.run_duration);
        let exit_in = run_to_completion(pod)
            .then(|| latest_start(&status.containers))
            .flatten()
            .map(|started| remaining(script.run, started, now));
        let mut pods = lock(&self.inner.pods);
        // The worker never syncs one pod twice at once, so nobody raced us here.
        let exit_timer = exit_in.map(|after| spawn_exit(&self.inner, uid.clone(), after));
        pods.insert(
            uid,
            SimPod {
                status: status.clone(),
                held,
                exit_timer,
                script,
            },
        );
        Ok(status)
    }

    async fn kill_pod(&self, pod: &Pod, _grace: Duration) -> Result<Option<PodRuntimeStatus>> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let mut pods = lock(&self.inner.pods);
        let Some(p) = pods.get_mut(uid) else {
            return Ok(None);
        };
        if let Some(t) = p.exit_timer.take() {
            t.abort();
        }
        let now = Timestamp::now();
        for c in p
            .status
            .init_containers
            .iter_mut()
            .chain(p.status.containers.iter_mut())
        {
            exit(c, now, 0);
        }
        p.status.sandbox.ready = false;
        if let Some((block, ip)) = p.held.take() {
            release_ip(block, ip, &self.inner.owner(uid));
        }
        Ok(Some(p.status.clone()))
    }

    async fn pod_status(&self, uid: &str) -> Result<Option<PodRuntimeStatus>> {
        Ok(lock(&self.inner.pods).get(uid).map(|p| p.status.clone()))
    }

    async fn remove_pod(&self, uid: &str) -> Result<()> {
        if let Some(mut p) = lock(&self.inner.pods).remove(uid) {
            if let Some(t) = p.exit_timer.take() {
                t.abort();
            }
            if let Some((block, ip)) = p.held.take() {
                release_ip(block, ip, &self.inner.owner(uid));
            }
        }
        Ok(())
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        let rx = self.inner.events.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(ev) => Some((ev, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((RuntimeEvent::Lagged, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .boxed()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// `sim://<pod uid>-<container name>`.
pub fn container_id(uid: &str, name: &str) -> String {
    format!("{RUNTIME_NAME}://{uid}-{name}")
}

fn image_ref(image: &str) -> String {
    format!("{RUNTIME_NAME}://{image}")
}

fn run_to_completion(pod: &Pod) -> bool {
    matches!(
        pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()),
        Some("Never" | "OnFailure")
    )
}

/// A new pod: init containers done, sidecars and app containers running.
fn start(pod: &Pod, uid: &str, ip: Ipv4Addr, now: Timestamp) -> PodRuntimeStatus {
    let spec = pod.spec.as_ref();
    let new = |name: &str, image: Option<&String>, state: ContainerState| {
        let image = image.cloned().unwrap_or_default();
        ContainerStatus {
            name: name.to_string(),
            id: container_id(uid, name),
            image_ref: image_ref(&image),
            image,
            state,
            last_state: None,
            restart_count: 0,
            // Probes in the simulator always succeed.
            started: true,
            ready: true,
        }
    };
    let init_containers = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
        .map(|c| {
            let state = if c.restart_policy.as_deref() == Some("Always") {
                ContainerState::Running { started_at: now }
            } else {
                ContainerState::Exited {
                    started_at: now,
                    finished_at: now,
                    exit_code: 0,
                    reason: "Completed".into(),
                    message: None,
                }
            };
            new(&c.name, c.image.as_ref(), state)
        })
        .collect();
    let containers = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            new(
                &c.name,
                c.image.as_ref(),
                ContainerState::Running { started_at: now },
            )
        })
        .collect();
    PodRuntimeStatus {
        uid: uid.to_string(),
        sandbox: SandboxStatus {
            id: format!("{RUNTIME_NAME}-{uid}"),
            ips: vec![IpAddr::V4(ip)],
            created_at: now,
            ready: true,
        },
        init_containers,
        containers,
        ephemeral_containers: Vec::new(),
    }
}

/// Takes back a pod this simulator (or an earlier run of it) started, from what the API
/// says: same IP, same start times. Returns `None` for a pod that is not one of ours or
/// not running, which is then started afresh. The IP is kept even if it lies outside the
/// node's block now (an earlier run handed out other blocks): its own block's pool holds
/// it.
fn restore(
    pod: &Pod,
    owner: &Owner,
    net: NodeNet,
    host_network: bool,
) -> Option<(PodRuntimeStatus, Option<(Ipv4Cidr, Ipv4Addr)>)> {
    let uid = owner.uid.as_str();
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip: Ipv4Addr = status.pod_ip.as_deref()?.parse().ok()?;
    let held = if host_network {
        if ip != net.host_ip {
            return None;
        }
        None
    } else {
        let block = Ipv4Cidr::new(ip, net.block.prefix);
        if !reserve_ip(block, ip, owner) {
            return None;
        }
        Some((block, ip))
    };
    let spec = pod.spec.as_ref()?;
    let convert = |names: Vec<&String>, statuses: &Option<Vec<ApiContainerStatus>>| {
        names
            .into_iter()
            .map(|name| {
                let s = statuses.as_ref()?.iter().find(|s| &s.name == name)?;
                if s.container_id.as_deref() != Some(container_id(uid, name).as_str()) {
                    return None;
                }
                let state = s.state.as_ref()?;
                let state = if let Some(r) = &state.running {
                    ContainerState::Running {
                        started_at: r.started_at.as_ref()?.0,
                    }
                } else if let Some(t) = &state.terminated {
                    ContainerState::Exited {
                        started_at: t.started_at.as_ref()?.0,
                        finished_at: t.finished_at.as_ref()?.0,
                        exit_code: t.exit_code,
                        reason: t.reason.clone().unwrap_or_default(),
                        message: t.message.clone(),
                    }
                } else {
                    return None;
                };
                Some(ContainerStatus {
                    name: name.clone(),
                    id: container_id(uid, name),
                    image: s.image.clone(),
                    image_ref: s.image_id.clone(),
                    state,
                    last_state: None,
                    restart_count: s.restart_count,
                    started: true,
                    ready: true,
                })
            })
            .collect::<Option<Vec<_>>>()
    };
    let restored = (|| {
        let init = convert(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| &c.name)
                .collect(),
            &status.init_container_statuses,
        )?;
        let containers = convert(
            spec.containers.iter().map(|c| &c.name).collect(),
            &status.container_statuses,
        )?;
        Some(PodRuntimeStatus {
            uid: uid.to_string(),
            sandbox: SandboxStatus {
                id: format!("{RUNTIME_NAME}-{uid}"),
                ips: vec![IpAddr::V4(ip)],
                created_at: status
                    .start_time
                    .as_ref()
                    .map(|t| t.0)
                    .unwrap_or_else(Timestamp::now),
                ready: true,
            },
            init_containers: init,
            containers,
            ephemeral_containers: Vec::new(),
        })
    })();
    match restored {
        Some(s) => Some((s, held)),
        None => {
            if let Some((block, ip)) = held {
                release_ip(block, ip, owner);
            }
            None
        }
    }
}

fn latest_start(containers: &[ContainerStatus]) -> Option<Timestamp> {
    containers
        .iter()
        .filter_map(|c| match c.state {
            ContainerState::Running { started_at } => Some(started_at),
            _ => None,
        })
        .max()
}

fn remaining(run: Duration, started: Timestamp, now: Timestamp) -> Duration {
    let elapsed = now
        .duration_since(started)
        .try_into()
        .unwrap_or(Duration::ZERO);
    run.saturating_sub(elapsed)
}

/// Stops a running container with `code` (reason `Completed` or `Error`, as a CRI runtime
/// reports them).
fn exit(c: &mut ContainerStatus, now: Timestamp, code: i32) {
    c.state = match std::mem::replace(&mut c.state, ContainerState::Created) {
        ContainerState::Running { started_at } => ContainerState::Exited {
            started_at,
            finished_at: now,
            exit_code: code,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
        },
        // Never started: it exits without having run (what upstream reports for a
        // container killed before it started).
        ContainerState::Created | ContainerState::Waiting { .. } => ContainerState::Exited {
            started_at: now,
            finished_at: now,
            exit_code: 137,
            reason: "ContainerStatusUnknown".into(),
            message: None,
        },
        done @ ContainerState::Exited { .. } => done,
    };
}

/// Starts again the app containers of an OnFailure pod that exited non-zero, and arms the
/// timer that ends their next run.
fn restart_failed(inner: &Arc<Inner>, uid: &str, pod: &mut SimPod) {
    let now = Timestamp::now();
    let mut restarted = false;
    for c in &mut pod.status.containers {
        if matches!(c.state, ContainerState::Exited { exit_code, .. } if exit_code != 0) {
            c.state = ContainerState::Running { started_at: now };
            c.restart_count += 1;
            restarted = true;
        }
    }
    if restarted {
        if let Some(t) = pod.exit_timer.take() {
            t.abort();
        }
        pod.exit_timer = Some(spawn_exit(inner, uid.to_string(), pod.script.run));
    }
}

/// Makes the running containers of pod `uid` exit after `after`, with the code its script
/// says.
fn spawn_exit(inner: &Arc<Inner>, uid: String, after: Duration) -> AbortHandle {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let Some(inner) = weak.upgrade() else { return };
        {
            let mut pods = lock(&inner.pods);
            let Some(p) = pods.get_mut(&uid) else { return };
            p.exit_timer = None;
            let now = Timestamp::now();
            let script = p.script;
            for c in &mut p.status.containers {
                exit(c, now, script.exit_code);
            }
            // Then the sidecars are stopped, as upstream does once every regular container
            // has exited for good.
            if script.ends_pod() {
                for c in &mut p.status.init_containers {
                    exit(c, now, 0);
                }
            }
        }
        // Nobody listening is fine: the worker resyncs when it subscribes.
        let _ = inner.events.send(RuntimeEvent::PodChanged { uid });
    })
    .abort_handle()
}

#[cfg(test)]
mod tests;
