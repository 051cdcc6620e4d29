//! Liveness, readiness and startup probes, as upstream's prober manager and workers.
//!
//! [`Prober::track`] runs after every sync: each running container with probes gets one
//! worker task for its instance (a restarted container gets a new one, so results start
//! over), and a container that stopped running loses its worker. A worker runs the startup
//! probe first; once it succeeds, readiness and liveness run side by side, each from its
//! `initialDelaySeconds` after the container started, every `periodSeconds`, with
//! `timeoutSeconds` per attempt, and a verdict after `successThreshold` /
//! `failureThreshold` results in a row.
//!
//! Verdicts are read back by the runtime's status ([`Prober::verdicts`]: `started` and
//! `ready`) and by its sync ([`Prober::failed`]: a liveness or startup failure kills the
//! container, [`Inner::kill_unhealthy`]). Every change of verdict wakes the pod worker
//! with a [`RuntimeEvent::PodChanged`], so the status is written without waiting for a
//! relist.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Probe};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::client::Cri;
use super::handlers::{self, HttpGet, Outcome};
use super::{Inner, Instance, cri_err, restart_policy, spec};
use crate::env;
use crate::runtime::{ContainerState, PodRuntimeStatus, Result, RuntimeEvent};
use crate::volumes::PodVolumes;

/// Upstream's defaults for a probe's fields (the API server sets them on create; a pod
/// that skipped defaulting gets them here).
const PERIOD: i32 = 10;
const TIMEOUT: i32 = 1;
const FAILURE_THRESHOLD: i32 = 3;
/// Upstream runs a probe up to this many times when the prober itself errs.
const ATTEMPTS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    /// As upstream's messages name it: `Liveness probe failed: …`.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    /// As in `Container app failed liveness probe`.
    pub fn lower(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
            Kind::Startup => "startup",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }
}

/// A probe's schedule and thresholds, with upstream's defaults and minimums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success: u32,
    pub failure: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: i32| {
            Duration::from_secs(u64::try_from(v.unwrap_or(default).max(1)).unwrap_or(1))
        };
        let count =
            |v: Option<i32>, default: i32| u32::try_from(v.unwrap_or(default)).unwrap_or(1).max(1);
        Timing {
            initial_delay: Duration::from_secs(
                u64::try_from(p.initial_delay_seconds.unwrap_or(0)).unwrap_or(0),
            ),
            period: secs(p.period_seconds, PERIOD),
            timeout: secs(p.timeout_seconds, TIMEOUT),
            success: count(p.success_threshold, 1),
            failure: count(p.failure_threshold, FAILURE_THRESHOLD),
        }
    }
}

/// Consecutive results of one probe (upstream's worker `lastResult`/`resultRun`): a verdict
/// is reached once `success` successes or `failure` failures come in a row, and repeats
/// with every further result of the same kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    last: Option<bool>,
    count: u32,
}

impl Run {
    /// Records one result; the verdict it makes, if any.
    pub fn observe(&mut self, ok: bool, success: u32, failure: u32) -> Option<bool> {
        if self.last == Some(ok) {
            self.count = self.count.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.count = 1;
        }
        let needed = if ok { success } else { failure };
        (self.count >= needed).then_some(ok)
    }
}

/// What a probe does, resolved against its pod and container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Exec(Vec<String>),
    Http(HttpGet),
    Tcp {
        host: String,
        port: u16,
    },
    Grpc {
        host: String,
        port: u16,
        service: String,
    },
    /// Cannot be run (an unknown port name…): every attempt errs with this.
    Invalid(String),
}

impl Action {
    /// Upstream's `runProbe` inputs: the host defaults to the pod's IP, ports may be named,
    /// an exec command expands `$(VAR)` with the container's literal `env` values only.
    pub fn new(p: &Probe, c: &Container, pod_ip: &str) -> Action {
        if let Some(e) = &p.exec {
            let env: Vec<(String, String)> = c
                .env
                .iter()
                .flatten()
                .filter_map(|v| v.value.clone().map(|val| (v.name.clone(), val)))
                .collect();
            let cmd = e.command.iter().flatten().map(|s| env::expand(s, &env));
            return Action::Exec(cmd.collect());
        }
        if let Some(h) = &p.http_get {
            return match HttpGet::new(h, c, pod_ip) {
                Ok(get) => Action::Http(get),
                Err(e) => Action::Invalid(e),
            };
        }
        if let Some(t) = &p.tcp_socket {
            let host = t
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            return match handlers::resolve_port(&t.port, c) {
                Ok(port) => Action::Tcp { host, port },
                Err(e) => Action::Invalid(e),
            };
        }
        if let Some(g) = &p.grpc {
            return match u16::try_from(g.port).ok().filter(|p| *p > 0) {
                Some(port) => Action::Grpc {
                    host: pod_ip.to_string(),
                    port,
                    service: g.service.clone().unwrap_or_default(),
                },
                None => Action::Invalid(format!("invalid port number: {}", g.port)),
            };
        }
        Action::Invalid(format!("missing probe handler for container {}", c.name))
    }
}

/// What a container instance's probes concluded so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Verdicts {
    /// The startup probe succeeded (or there is none).
    started: bool,
    /// The readiness probe's verdict (false until its first success).
    ready: bool,
    /// A liveness or startup failure: the container must be killed.
    failed: Option<Kind>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A container of a pod that has probes.
struct Tracked {
    has_startup: bool,
    has_readiness: bool,
    /// The running instance being probed; none while the container does not run.
    worker: Option<Worker>,
}

struct Worker {
    /// The CRI id of the instance.
    id: String,
    /// Written by the worker task, read by status and sync.
    verdicts: Arc<Mutex<Verdicts>>,
    /// Dropping the worker stops its task.
    _stop: DropGuard,
}

/// The probes of every pod of the runtime.
pub struct Prober {
    cri: Cri,
    recorder: events::Recorder,
    events: broadcast::Sender<RuntimeEvent>,
    /// Pod uid → container name → its probes. Held only for map updates, never across an
    /// await.
    pods: Mutex<HashMap<String, HashMap<String, Tracked>>>,
}

/// `(started, ready)` of a running container with these probes, given what its
/// instance's worker concluded (`None`: no worker for it yet, so nothing succeeded).
fn reported(has_startup: bool, has_readiness: bool, v: Option<Verdicts>) -> (bool, bool) {
    let v = v.unwrap_or(Verdicts {
        started: !has_startup,
        ..Default::default()
    });
    (v.started, v.started && (!has_readiness || v.ready))
}

fn has_probe(c: &Container) -> bool {
    c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some()
}

/// `containerd://<id>` → `<id>`.
fn raw_id(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, raw)| raw)
}

impl Prober {
    pub fn new(
        cri: Cri,
        recorder: events::Recorder,
        events: broadcast::Sender<RuntimeEvent>,
    ) -> Prober {
        Prober {
            cri,
            recorder,
            events,
            pods: Mutex::new(HashMap::new()),
        }
    }

    /// `(started, ready)` of instance `id` (the CRI id) of container `name`, for a running
    /// container: without probes both are true; a startup probe holds `started` until it
    /// succeeds, a readiness probe holds `ready` until it does, and nothing is ready
    /// before it started.
    pub fn verdicts(&self, uid: &str, name: &str, id: &str) -> (bool, bool) {
        let pods = guard(&self.pods);
        let Some(t) = pods.get(uid).and_then(|p| p.get(name)) else {
            return (true, true);
        };
        let v = t
            .worker
            .as_ref()
            .filter(|w| w.id == id)
            .map(|w| *guard(&w.verdicts));
        reported(t.has_startup, t.has_readiness, v)
    }

    /// The probe whose failure means instance `id` of container `name` must be killed.
    pub fn failed(&self, uid: &str, name: &str, id: &str) -> Option<Kind> {
        let pods = guard(&self.pods);
        let w = pods.get(uid)?.get(name)?.worker.as_ref()?;
        (w.id == id).then(|| guard(&w.verdicts).failed).flatten()
    }

    /// Makes the workers match what runs: a worker for each running instance of a regular
    /// or sidecar container with probes, none for anything else. Call after every sync;
    /// `rs` gets the verdicts of its running containers (a pod seen for the first time
    /// had none before: nothing of it was tracked).
    pub fn track(&self, pod: &Pod, rs: &mut PodRuntimeStatus) {
        let pod_ip = rs
            .sandbox
            .ips
            .first()
            .map(IpAddr::to_string)
            .unwrap_or_default();
        let spec = pod.spec.as_ref();
        let regular = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default()
            .iter()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let candidates = regular
            .iter()
            .map(|c| (c, &rs.containers))
            .chain(sidecars.map(|c| (c, &rs.init_containers)))
            .filter(|(c, _)| has_probe(c));
        let mut pods = guard(&self.pods);
        let tracked = pods.entry(rs.uid.clone()).or_default();
        let mut keep = HashSet::new();
        for (c, statuses) in candidates {
            keep.insert(c.name.clone());
            let t = tracked.entry(c.name.clone()).or_insert(Tracked {
                has_startup: c.startup_probe.is_some(),
                has_readiness: c.readiness_probe.is_some(),
                worker: None,
            });
            let running = statuses
                .iter()
                .find(|s| s.name == c.name)
                .and_then(|s| match s.state {
                    ContainerState::Running { started_at } => {
                        Some((raw_id(&s.id).to_string(), started_at))
                    }
                    _ => None,
                });
            match running {
                None => t.worker = None,
                Some((id, _)) if t.worker.as_ref().is_some_and(|w| w.id == id) => {}
                Some((id, started_at)) => {
                    t.worker = Some(self.spawn(pod, c, &rs.uid, id, started_at, &pod_ip));
                }
            }
        }
        tracked.retain(|name, _| keep.contains(name));
        if tracked.is_empty() {
            pods.remove(&rs.uid);
        }
        drop(pods);
        for s in rs
            .containers
            .iter_mut()
            .chain(rs.init_containers.iter_mut())
        {
            if s.is_running() {
                (s.started, s.ready) = self.verdicts(&rs.uid, &s.name, raw_id(&s.id));
            }
        }
    }

    /// Stops every probe of a pod (it is being killed or removed).
    pub fn forget(&self, uid: &str) {
        guard(&self.pods).remove(uid);
    }

    fn spawn(
        &self,
        pod: &Pod,
        c: &Container,
        uid: &str,
        id: String,
        started_at: Timestamp,
        pod_ip: &str,
    ) -> Worker {
        let verdicts = Arc::new(Mutex::new(Verdicts {
            started: c.startup_probe.is_none(),
            ..Default::default()
        }));
        let stop = CancellationToken::new();
        let task = Task {
            cri: self.cri.clone(),
            recorder: self.recorder.clone(),
            events: self.events.clone(),
            uid: uid.to_string(),
            reference: super::pod_reference(pod, Some(&c.name)),
            container: c.clone(),
            pod_ip: pod_ip.to_string(),
            id: id.clone(),
            started_at,
            verdicts: verdicts.clone(),
        };
        let token = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = task.run() => {}
            }
        });
        Worker {
            id,
            verdicts,
            _stop: stop.drop_guard(),
        }
    }
}

/// One container instance's probing.
struct Task {
    cri: Cri,
    recorder: events::Recorder,
    events: broadcast::Sender<RuntimeEvent>,
    uid: String,
    reference: ObjectReference,
    container: Container,
    pod_ip: String,
    id: String,
    started_at: Timestamp,
    verdicts: Arc<Mutex<Verdicts>>,
}

impl Task {
    async fn run(&self) {
        if self.container.startup_probe.is_some() && !self.probe(Kind::Startup).await {
            return;
        }
        tokio::join!(self.probe(Kind::Readiness), self.probe(Kind::Liveness));
    }

    /// Probes with the container's `kind` probe until that probe has nothing more to say:
    /// startup until its verdict (true: started), liveness until it fails, readiness for as
    /// long as the container runs.
    async fn probe(&self, kind: Kind) -> bool {
        let Some(p) = kind.of(&self.container) else {
            return true;
        };
        let timing = Timing::of(p);
        let action = Action::new(p, &self.container, &self.pod_ip);
        let since: Duration = Timestamp::now()
            .duration_since(self.started_at)
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(timing.initial_delay.saturating_sub(since)).await;
        let mut tick = tokio::time::interval(timing.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut run = Run::default();
        loop {
            tick.tick().await;
            let Some(ok) = self.attempt(kind, &action, timing.timeout).await else {
                continue;
            };
            let Some(verdict) = run.observe(ok, timing.success, timing.failure) else {
                continue;
            };
            match (kind, verdict) {
                (Kind::Readiness, ready) => self.update(|v| v.ready = ready),
                (Kind::Startup, true) => {
                    self.update(|v| v.started = true);
                    return true;
                }
                (Kind::Startup | Kind::Liveness, false) => {
                    // Probing holds until a new instance replaces this one.
                    self.update(|v| v.failed = Some(kind));
                    return false;
                }
                (Kind::Liveness, true) => {}
            }
        }
    }

    /// One probe result (with upstream's events), `None` when the prober itself erred.
    async fn attempt(&self, kind: Kind, action: &Action, timeout: Duration) -> Option<bool> {
        let mut outcome = Outcome::Error(String::new());
        for _ in 0..ATTEMPTS {
            outcome = self.act(action, timeout).await;
            if !matches!(outcome, Outcome::Error(_)) {
                break;
            }
        }
        let title = kind.title();
        match outcome {
            Outcome::Success(_) => Some(true),
            Outcome::Warning(out) => {
                self.event("ProbeWarning", format!("{title} probe warning: {out}"));
                Some(true)
            }
            Outcome::Failure(out) => {
                tracing::debug!(uid = %self.uid, container = %self.container.name, probe = title, output = %out, "probe failed");
                self.event("Unhealthy", format!("{title} probe failed: {out}"));
                Some(false)
            }
            Outcome::Error(e) => {
                self.event("Unhealthy", format!("{title} probe errored: {e}"));
                None
            }
        }
    }

    async fn act(&self, action: &Action, timeout: Duration) -> Outcome {
        match action {
            Action::Exec(cmd) => handlers::exec_probe(&self.cri, &self.id, cmd, timeout).await,
            Action::Http(get) => handlers::http_probe(get, timeout).await,
            Action::Tcp { host, port } => handlers::tcp_probe(host, *port, timeout).await,
            Action::Grpc {
                host,
                port,
                service,
            } => handlers::grpc_probe(host, *port, service, timeout).await,
            Action::Invalid(e) => Outcome::Error(e.clone()),
        }
    }

    fn event(&self, reason: &'static str, message: String) {
        self.recorder
            .record("kubelet", self.reference.clone(), true, reason, message);
    }

    /// Changes the verdicts and wakes the pod worker if they changed.
    fn update(&self, f: impl FnOnce(&mut Verdicts)) {
        let changed = {
            let mut v = guard(&self.verdicts);
            let before = *v;
            f(&mut v);
            *v != before
        };
        if changed {
            let _ = self.events.send(RuntimeEvent::PodChanged {
                uid: self.uid.clone(),
            });
        }
    }
}

impl Inner {
    /// Kills running instance `i` of `c` if its liveness or startup probe failed, with
    /// upstream's `Killing` message, then starts it again unless the pod's restart policy
    /// is `Never` (a sidecar always restarts). Upstream's `computePodActions` for probes.
    pub(super) async fn kill_unhealthy(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        sidecar: bool,
        i: &Instance,
        sandbox: &(String, Vec<IpAddr>),
        volumes: &PodVolumes,
    ) -> Result<()> {
        let Some(kind) = self.probes.failed(spec::uid(pod), &c.name, &i.id) else {
            return Ok(());
        };
        let restart = sidecar || restart_policy(pod) != "Never";
        let mut message = format!("Container {} failed {} probe", c.name, kind.lower());
        if restart {
            message.push_str(", will be restarted");
        }
        let grace = super::hooks::grace_period(pod, kind.of(c));
        let ip = sandbox.1.first().map(IpAddr::to_string).unwrap_or_default();
        self.kill_container(pod, &c.name, &i.id, message, grace, Some(&ip))
            .await
            .map_err(|s| cri_err("stopping a container", &s))?;
        if restart {
            self.restart(pod, c, sidecar, i, sandbox, volumes).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
