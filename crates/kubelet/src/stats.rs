//! Resource usage of the node and its pods: what upstream's Summary API
//! (`GET /stats/summary`, `stats/v1alpha1`) serves, and what the API server builds
//! `metrics.k8s.io` from. The same samples feed the agent's `/metrics` gauges.
//!
//! A [`Collector`] samples every [`SAMPLE_PERIOD`] while the agent runs:
//! - pods from containerd's `ListPodSandboxStats` (containerd 1.6 reads each ready sandbox's
//!   pod cgroup and lists its running containers' stats), or, when that call fails, from
//!   `ListContainerStats` grouped by sandbox;
//! - the node from the host's root cgroup, as upstream reads cAdvisor's `/` container:
//!   cgroup v1 `cpuacct.usage` and `memory.usage_in_bytes` minus `total_inactive_file`;
//!   cgroup v2 `cpu.stat` and, the root having no `memory.current`, `/proc/meminfo`'s
//!   MemTotal − MemFree minus `inactive_file` (runc's emulation); `/proc/stat` when no
//!   cgroup answers.
//!
//! CPU rates (`usageNanoCores`) come from two consecutive samples of the cumulative usage,
//! as upstream's CRI stats provider computes them: containerd's own rate is relative to
//! whoever asked it last. So a container has no rate before its second sample, and a
//! request reads the last sample instead of calling containerd.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use jiff::Timestamp;
use k8s_cri::v1::{
    Container, ContainerState, ContainerStats, ContainerStatsFilter, CpuUsage,
    LinuxPodSandboxStats, ListContainerStatsRequest, ListPodSandboxStatsRequest, MemoryUsage,
    PodSandbox, PodSandboxAttributes, PodSandboxState, PodSandboxStats, PodSandboxStatsFilter,
};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::metrics::AgentMetrics;
use crate::runtime::cri::INIT_LABEL;
use crate::runtime::cri::client::{AGENT_LABEL, CONTAINER_NAME_LABEL, Cri, describe};

/// How often usage is sampled (upstream's cAdvisor housekeeping is 10–15 s).
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(10);

/// The key of the node's own CPU sample among the containers' and sandboxes' ids.
const NODE_KEY: &str = "/";

/// What the agent's server asks of the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `GET /stats/summary`.
    Summary,
    /// `GET /metrics`.
    Metrics,
}

/// The answer to `page`: the last Summary (503 before the first sample, as upstream's
/// kubelet fails a summary it cannot build yet), or the metrics; 404 without a collector.
pub fn respond(collector: Option<&Collector>, page: Page) -> http::Response<crate::server::Body> {
    let (status, content_type, body) = match (collector, page) {
        (None, _) => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"404 page not found\n"),
        ),
        (Some(c), Page::Summary) => match c.summary() {
            Some(json) => (StatusCode::OK, "application/json", json),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                Bytes::from_static(b"Internal Error: no stats collected yet"),
            ),
        },
        (Some(c), Page::Metrics) => (
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            Bytes::from(c.metrics().encode()),
        ),
    };
    let mut resp = http::Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the container runtime: {0}")]
    Connect(String),
}

/// Samples usage and keeps the last Summary. Cheap to share.
pub struct Collector {
    cri: Cri,
    node_name: String,
    host: HostPaths,
    /// When the collector started: pods created earlier (adopted after a restart) never
    /// count toward the pod start duration.
    started: Timestamp,
    metrics: Arc<AgentMetrics>,
    /// Only the sampling task writes it; requests clone the summary out.
    state: Mutex<State>,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// The previous cumulative CPU usage by container or sandbox id ([`NODE_KEY`]: the node).
    cpu: HashMap<String, CpuPoint>,
    /// Sandboxes whose start was observed (or predates the collector).
    seen_started: HashSet<String>,
    /// The last Summary, serialized.
    summary: Option<Bytes>,
}

/// Cumulative CPU time at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CpuPoint {
    /// Nanoseconds since the epoch.
    at: i64,
    /// Core-nanoseconds used so far.
    usage: u64,
}

/// CPU usage rate between two points in nanocores; `None` without a previous point, when
/// no time passed, or when the counter went back (a restarted container under one id).
fn rate(prev: Option<CpuPoint>, now: CpuPoint) -> Option<u64> {
    let prev = prev?;
    let elapsed = now.at.checked_sub(prev.at).filter(|d| *d > 0)?;
    let used = now.usage.checked_sub(prev.usage)?;
    let nanocores = u128::from(used) * 1_000_000_000 / elapsed.unsigned_abs() as u128;
    u64::try_from(nanocores).ok()
}

/// Where the host's usage is read (a temporary tree in tests).
#[derive(Clone, Debug)]
struct HostPaths {
    cgroup: PathBuf,
    proc: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            cgroup: PathBuf::from("/sys/fs/cgroup"),
            proc: PathBuf::from("/proc"),
        }
    }
}

/// The host's CPU and memory at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct HostUsage {
    cpu: Option<u64>,
    memory: Option<Memory>,
    boot: Option<Timestamp>,
}

/// Memory figures in bytes, as `stats/v1alpha1` `MemoryStats` names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Memory {
    available: Option<u64>,
    usage: Option<u64>,
    working_set: Option<u64>,
    rss: Option<u64>,
    page_faults: Option<u64>,
    major_page_faults: Option<u64>,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `/proc/vmstat`).
fn flat_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?, parts.next()?.parse().ok()?))
        })
        .collect()
}

/// `/proc/meminfo` in bytes.
fn meminfo(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let mut parts = v.split_whitespace();
            let n: u64 = parts.next()?.parse().ok()?;
            let scale = if parts.next() == Some("kB") { 1024 } else { 1 };
            Some((k.trim(), n.saturating_mul(scale)))
        })
        .collect()
}

/// Busy CPU time from `/proc/stat`'s `cpu` line (user, nice, system, irq, softirq, steal),
/// in nanoseconds (USER_HZ is 100 on every Linux that matters).
fn proc_stat_cpu(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum();
    Some(busy.saturating_mul(10_000_000))
}

fn boot_time(stat: &str) -> Option<Timestamp> {
    let secs: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Timestamp::from_second(secs).ok()
}

impl HostPaths {
    fn usage(&self) -> HostUsage {
        let stat = read(&self.proc.join("stat")).unwrap_or_default();
        let meminfo_text = read(&self.proc.join("meminfo")).unwrap_or_default();
        let mem = meminfo(&meminfo_text);
        let total = mem.get("MemTotal").copied();
        let (cpu, mut memory) = if self.cgroup.join("cgroup.controllers").exists() {
            self.usage_v2(&mem)
        } else {
            self.usage_v1()
        };
        let memory = memory.as_mut().map(|m| {
            m.available = total.zip(m.working_set).map(|(t, ws)| t.saturating_sub(ws));
            m.clone()
        });
        HostUsage {
            cpu: cpu.or_else(|| proc_stat_cpu(&stat)),
            memory,
            boot: boot_time(&stat),
        }
    }

    fn usage_v1(&self) -> (Option<u64>, Option<Memory>) {
        let cpu = ["cpuacct", "cpu,cpuacct", "cpu"]
            .iter()
            .find_map(|d| read(&self.cgroup.join(d).join("cpuacct.usage")))
            .and_then(|t| t.trim().parse().ok());
        let dir = self.cgroup.join("memory");
        let usage: Option<u64> =
            read(&dir.join("memory.usage_in_bytes")).and_then(|t| t.trim().parse().ok());
        let memory = usage.map(|usage| {
            let text = read(&dir.join("memory.stat")).unwrap_or_default();
            let stat = flat_keyed(&text);
            let inactive = stat.get("total_inactive_file").copied().unwrap_or(0);
            Memory {
                usage: Some(usage),
                working_set: Some(usage.saturating_sub(inactive)),
                rss: stat.get("total_rss").copied(),
                page_faults: stat.get("total_pgfault").copied(),
                major_page_faults: stat.get("total_pgmajfault").copied(),
                available: None,
            }
        });
        (cpu, memory)
    }

    fn usage_v2(&self, mem: &HashMap<&str, u64>) -> (Option<u64>, Option<Memory>) {
        let cpu = read(&self.cgroup.join("cpu.stat"))
            .and_then(|t| flat_keyed(&t).get("usage_usec").copied())
            .map(|us| us.saturating_mul(1000));
        let text = read(&self.cgroup.join("memory.stat")).unwrap_or_default();
        let stat = flat_keyed(&text);
        let usage = mem
            .get("MemTotal")
            .zip(mem.get("MemFree"))
            .map(|(t, f)| t.saturating_sub(*f));
        let inactive = stat
            .get("inactive_file")
            .or_else(|| mem.get("Inactive(file)"))
            .copied()
            .unwrap_or(0);
        let memory = usage.map(|usage| Memory {
            usage: Some(usage),
            working_set: Some(usage.saturating_sub(inactive)),
            rss: stat.get("anon").copied(),
            page_faults: stat.get("pgfault").copied(),
            major_page_faults: stat.get("pgmajfault").copied(),
            available: None,
        });
        (cpu, memory)
    }
}

/// `metav1.Time`: RFC 3339 in whole seconds.
fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Nanoseconds since the epoch, as CRI counts time.
fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

fn time_ns(nanos: i64) -> String {
    time(Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A `CPUStats` object: `usageNanoCores` only when there is a rate.
fn cpu_json(at: &str, usage: Option<u64>, nano_cores: Option<u64>) -> Value {
    let mut m = Map::new();
    m.insert("time".into(), at.into());
    if let Some(n) = nano_cores {
        m.insert("usageNanoCores".into(), n.into());
    }
    if let Some(u) = usage {
        m.insert("usageCoreNanoSeconds".into(), u.into());
    }
    Value::Object(m)
}

/// A `MemoryStats` object with the figures that are known.
fn memory_json(at: &str, m: &Memory) -> Value {
    let mut o = Map::new();
    o.insert("time".into(), at.into());
    for (k, v) in [
        ("availableBytes", m.available),
        ("usageBytes", m.usage),
        ("workingSetBytes", m.working_set),
        ("rssBytes", m.rss),
        ("pageFaults", m.page_faults),
        ("majorPageFaults", m.major_page_faults),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), v.into());
        }
    }
    Value::Object(o)
}

fn cri_memory(m: &MemoryUsage) -> Memory {
    let v = |x: &Option<k8s_cri::v1::UInt64Value>| x.as_ref().map(|v| v.value);
    Memory {
        available: v(&m.available_bytes),
        usage: v(&m.usage_bytes),
        working_set: v(&m.working_set_bytes),
        rss: v(&m.rss_bytes),
        page_faults: v(&m.page_faults),
        major_page_faults: v(&m.major_page_faults),
    }
}

/// Rates against the previous sample; remembers this sample's points for the next one.
struct Rates<'a> {
    prev: &'a HashMap<String, CpuPoint>,
    next: HashMap<String, CpuPoint>,
}

impl Rates<'_> {
    fn cpu(&mut self, id: &str, cpu: &CpuUsage) -> Value {
        let usage = cpu.usage_core_nano_seconds.as_ref().map(|u| u.value);
        let nano_cores = usage.and_then(|usage| {
            let now = CpuPoint {
                at: cpu.timestamp,
                usage,
            };
            self.next.insert(id.to_string(), now);
            rate(self.prev.get(id).copied(), now)
        });
        cpu_json(&time_ns(cpu.timestamp), usage, nano_cores)
    }
}

/// The `pods` of a Summary: one entry per ready sandbox, with the stats of its running
/// containers, sorted by namespace and name.
fn pods_json(
    sandboxes: &[PodSandbox],
    containers: &[Container],
    stats: &[PodSandboxStats],
    rates: &mut Rates<'_>,
) -> Vec<Value> {
    let by_id: HashMap<&str, &PodSandboxStats> = stats
        .iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.as_str(), s)))
        .collect();
    let running: HashMap<&str, i64> = containers
        .iter()
        .filter(|c| c.state == ContainerState::ContainerRunning as i32)
        .map(|c| (c.id.as_str(), c.created_at))
        .collect();
    let mut ready: Vec<&PodSandbox> = sandboxes
        .iter()
        .filter(|s| s.state == PodSandboxState::SandboxReady as i32)
        .collect();
    ready.sort_by(|a, b| {
        let key = |s: &PodSandbox| {
            let m = s.metadata.clone().unwrap_or_default();
            (m.namespace, m.name, s.created_at)
        };
        key(a).cmp(&key(b))
    });
    let mut pods = Vec::new();
    for sandbox in ready {
        let meta = sandbox.metadata.clone().unwrap_or_default();
        let linux = by_id
            .get(sandbox.id.as_str())
            .and_then(|s| s.linux.as_ref());
        let mut out = Map::new();
        out.insert(
            "podRef".into(),
            json!({"name": meta.name, "namespace": meta.namespace, "uid": meta.uid}),
        );
        out.insert("startTime".into(), time_ns(sandbox.created_at).into());
        let mut entries: Vec<(String, Value)> = linux
            .map(|l| l.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| container_json(c, &running, rates))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        out.insert(
            "containers".into(),
            Value::Array(entries.into_iter().map(|(_, v)| v).collect()),
        );
        if let Some(cpu) = linux.and_then(|l| l.cpu.as_ref()) {
            out.insert("cpu".into(), rates.cpu(&sandbox.id, cpu));
        }
        if let Some(m) = linux.and_then(|l| l.memory.as_ref()) {
            out.insert(
                "memory".into(),
                memory_json(&time_ns(m.timestamp), &cri_memory(m)),
            );
        }
        if let Some(n) = linux
            .and_then(|l| l.process.as_ref())
            .and_then(|p| p.process_count.as_ref())
        {
            out.insert("process_stats".into(), json!({"process_count": n.value}));
        }
        pods.push(Value::Object(out));
    }
    pods
}

/// One `ContainerStats` entry and its name (to sort by); `None` unless the container runs
/// (containerd lists a sandbox's exited containers too, without figures).
fn container_json(
    c: &ContainerStats,
    running: &HashMap<&str, i64>,
    rates: &mut Rates<'_>,
) -> Option<(String, Value)> {
    let attrs = c.attributes.as_ref()?;
    let created = running.get(attrs.id.as_str())?;
    let name = attrs
        .labels
        .get(CONTAINER_NAME_LABEL)
        .cloned()
        .or_else(|| attrs.metadata.as_ref().map(|m| m.name.clone()))?;
    let mut out = Map::new();
    out.insert("name".into(), name.clone().into());
    out.insert("startTime".into(), time_ns(*created).into());
    if let Some(cpu) = &c.cpu {
        out.insert("cpu".into(), rates.cpu(&attrs.id, cpu));
    }
    if let Some(m) = &c.memory {
        out.insert(
            "memory".into(),
            memory_json(&time_ns(m.timestamp), &cri_memory(m)),
        );
    }
    Some((name, Value::Object(out)))
}

/// Container stats grouped under their sandboxes, for when `ListPodSandboxStats` fails:
/// pod-level CPU and memory are then unknown.
fn group_by_sandbox(stats: Vec<ContainerStats>, containers: &[Container]) -> Vec<PodSandboxStats> {
    let sandbox_of: HashMap<&str, &str> = containers
        .iter()
        .map(|c| (c.id.as_str(), c.pod_sandbox_id.as_str()))
        .collect();
    let mut grouped: HashMap<String, Vec<ContainerStats>> = HashMap::new();
    for s in stats {
        let Some(sandbox) = s
            .attributes
            .as_ref()
            .and_then(|a| sandbox_of.get(a.id.as_str()))
        else {
            continue;
        };
        grouped.entry(sandbox.to_string()).or_default().push(s);
    }
    grouped
        .into_iter()
        .map(|(id, containers)| PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id,
                ..Default::default()
            }),
            linux: Some(LinuxPodSandboxStats {
                containers,
                ..Default::default()
            }),
            windows: None,
        })
        .collect()
}

/// How long a new pod took to run: from its sandbox's creation to its first app
/// container's creation (image pulls included), once it has a running app container.
/// Upstream measures from the kubelet first seeing the pod to its phase turning Running;
/// the sandbox is the first thing made for a pod here.
fn start_duration(sandbox: &PodSandbox, containers: &[Container]) -> Option<Duration> {
    let app = containers
        .iter()
        .filter(|c| c.pod_sandbox_id == sandbox.id && !c.labels.contains_key(INIT_LABEL));
    let mut running = false;
    let mut first: Option<i64> = None;
    for c in app {
        running |= c.state == ContainerState::ContainerRunning as i32;
        first = Some(first.map_or(c.created_at, |f| f.min(c.created_at)));
    }
    let nanos = first?.checked_sub(sandbox.created_at)?;
    running.then(|| Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

fn state_label(state: i32) -> &'static str {
    match ContainerState::try_from(state) {
        Ok(ContainerState::ContainerCreated) => "created",
        Ok(ContainerState::ContainerRunning) => "running",
        Ok(ContainerState::ContainerExited) => "exited",
        _ => "unknown",
    }
}

impl Collector {
    /// A collector for this agent's containers on `socket` (the connection is made on the
    /// first sample). Samples nothing until [`Collector::run`].
    pub fn new(socket: &Path, agent_id: String, node_name: String) -> Result<Collector, Error> {
        let cri = Cri::connect(socket, agent_id).map_err(Error::Connect)?;
        Ok(Collector {
            metrics: Arc::new(AgentMetrics::new(&node_name)),
            cri,
            node_name,
            host: HostPaths::default(),
            started: Timestamp::now(),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The agent's Prometheus metrics (the gauges move with each sample).
    pub fn metrics(&self) -> &AgentMetrics {
        &self.metrics
    }

    /// The last Summary (`stats/v1alpha1`) as JSON; `None` before the first sample.
    pub fn summary(&self) -> Option<Bytes> {
        self.lock().summary.clone()
    }

    /// Samples now and every [`SAMPLE_PERIOD`] until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(SAMPLE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.sample().await;
        }
    }

    /// One sample: the node, the pods, the gauges. A runtime that does not answer leaves
    /// the pods out of this sample (the node is still read).
    pub async fn sample(&self) {
        let host = self.host.usage();
        let sandboxes = self.cri.sandboxes(None).await;
        let containers = self.cri.containers(None).await;
        let (sandboxes, containers) = match (sandboxes, containers) {
            (Ok(s), Ok(c)) => (s, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(error = %describe(&e), "listing containers for stats failed");
                (Vec::new(), Vec::new())
            }
        };
        let stats = if sandboxes.is_empty() {
            Vec::new()
        } else {
            self.pod_stats(&containers).await
        };
        self.update_gauges(&sandboxes, &containers);
        let mut state = self.lock();
        let prev = std::mem::take(&mut state.cpu);
        let mut rates = Rates {
            prev: &prev,
            next: HashMap::new(),
        };
        let pods = pods_json(&sandboxes, &containers, &stats, &mut rates);
        let node = self.node_json(&host, &mut rates);
        state.cpu = rates.next;
        let summary = json!({"node": node, "pods": pods});
        state.summary = serde_json::to_vec(&summary).ok().map(Bytes::from);
        // Pods seen for the first time: how long they took to start.
        let mut seen = HashSet::new();
        for s in &sandboxes {
            let known = state.seen_started.contains(&s.id);
            let before_us = s.created_at < nanos(self.started);
            if known || before_us {
                seen.insert(s.id.clone());
                continue;
            }
            if let Some(d) = start_duration(s, &containers) {
                self.metrics.pod_start_duration.observe(d.as_secs_f64());
                seen.insert(s.id.clone());
            }
        }
        state.seen_started = seen;
    }

    /// Stats of this agent's ready sandboxes and their running containers.
    async fn pod_stats(&self, containers: &[Container]) -> Vec<PodSandboxStats> {
        let mine = HashMap::from([(AGENT_LABEL.to_string(), self.cri.agent_id.clone())]);
        let req = ListPodSandboxStatsRequest {
            filter: Some(PodSandboxStatsFilter {
                label_selector: mine.clone(),
                ..Default::default()
            }),
        };
        match self.cri.rt.clone().list_pod_sandbox_stats(req).await {
            Ok(r) => return r.into_inner().stats,
            // One sandbox going away mid-call fails the whole call in containerd 1.6.
            Err(e) => tracing::debug!(error = %describe(&e), "pod sandbox stats failed"),
        }
        let req = ListContainerStatsRequest {
            filter: Some(ContainerStatsFilter {
                label_selector: mine,
                ..Default::default()
            }),
        };
        match self.cri.rt.clone().list_container_stats(req).await {
            Ok(r) => group_by_sandbox(r.into_inner().stats, containers),
            Err(e) => {
                tracing::debug!(error = %describe(&e), "container stats failed");
                Vec::new()
            }
        }
    }

    fn update_gauges(&self, sandboxes: &[PodSandbox], containers: &[Container]) {
        let ready = sandboxes
            .iter()
            .filter(|s| s.state == PodSandboxState::SandboxReady as i32)
            .count();
        self.metrics
            .running_pods
            .set(i64::try_from(ready).unwrap_or(i64::MAX));
        let mut by_state: HashMap<&str, i64> = ["created", "running", "exited", "unknown"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        for c in containers {
            *by_state.entry(state_label(c.state)).or_default() += 1;
        }
        for (state, n) in by_state {
            self.metrics.set_running_containers(state, n);
        }
    }

    fn node_json(&self, host: &HostUsage, rates: &mut Rates<'_>) -> Value {
        let now = Timestamp::now();
        let at = time(now);
        let mut node = Map::new();
        node.insert("nodeName".into(), self.node_name.clone().into());
        if let Some(boot) = host.boot {
            node.insert("startTime".into(), time(boot).into());
        }
        if let Some(usage) = host.cpu {
            let point = CpuPoint {
                at: nanos(now),
                usage,
            };
            rates.next.insert(NODE_KEY.into(), point);
            let nano_cores = rate(rates.prev.get(NODE_KEY).copied(), point);
            node.insert("cpu".into(), cpu_json(&at, Some(usage), nano_cores));
        }
        if let Some(m) = &host.memory {
            node.insert("memory".into(), memory_json(&at, m));
        }
        Value::Object(node)
    }
}

#[cfg(test)]
mod tests {
    use k8s_cri::v1::{ContainerAttributes, PodSandboxMetadata, ProcessUsage, UInt64Value};

    use super::*;

    const SEC: i64 = 1_000_000_000;

    #[tokio::test]
    async fn without_a_runtime_the_summary_still_has_the_node() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = Collector::new(&dir.path().join("none.sock"), "a1".into(), "node-a".into())
            .expect("collector");
        let status = |page| respond(Some(&c), page).status();
        assert_eq!(respond(None, Page::Summary).status(), StatusCode::NOT_FOUND);
        assert_eq!(status(Page::Summary), StatusCode::SERVICE_UNAVAILABLE);
        c.sample().await;
        c.sample().await;
        let resp = respond(Some(&c), Page::Summary);
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let summary: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(summary["node"]["nodeName"], "node-a");
        assert_eq!(summary["pods"], json!([]));
        // This machine's CPU (from /proc/stat at least) has a rate by the second sample.
        assert!(
            summary["node"]["cpu"]["usageNanoCores"].is_u64(),
            "{summary}"
        );
        let resp = respond(Some(&c), Page::Metrics);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            crate::metrics::CONTENT_TYPE
        );
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(text.contains("kubelet_running_pods 0\n"), "{text}");
    }

    #[test]
    fn rates_need_two_samples_and_a_growing_counter() {
        let p = |at, usage| CpuPoint { at, usage };
        assert_eq!(rate(None, p(10 * SEC, 5)), None);
        // Half a core over ten seconds.
        assert_eq!(
            rate(Some(p(0, 1_000)), p(10 * SEC, 1_000 + 5 * SEC as u64)),
            Some(500_000_000)
        );
        assert_eq!(rate(Some(p(10 * SEC, 0)), p(10 * SEC, 7)), None);
        assert_eq!(rate(Some(p(0, 9_000)), p(SEC, 10)), None);
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    const MEMINFO: &str =
        "MemTotal:       1000 kB\nMemFree:         200 kB\nInactive(file):   100 kB\n";
    const STAT: &str = "cpu  100 5 50 900 3 0 10 0 0 0\ncpu0 1 2 3 4\nbtime 1714557600\n";

    #[test]
    fn node_usage_from_cgroup_v1_is_usage_less_inactive_file() {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "proc/meminfo", MEMINFO);
        write(dir.path(), "proc/stat", STAT);
        write(dir.path(), "cg/cpuacct/cpuacct.usage", "123456789\n");
        write(dir.path(), "cg/memory/memory.usage_in_bytes", "600000\n");
        write(
            dir.path(),
            "cg/memory/memory.stat",
            "inactive_file 1\ntotal_inactive_file 100000\ntotal_rss 4096\ntotal_pgfault 7\ntotal_pgmajfault 2\n",
        );
        let host = HostPaths {
            cgroup: dir.path().join("cg"),
            proc: dir.path().join("proc"),
        };
        let u = host.usage();
        assert_eq!(u.cpu, Some(123_456_789));
        let m = u.memory.expect("memory");
        assert_eq!(m.usage, Some(600_000));
        assert_eq!(m.working_set, Some(500_000));
        assert_eq!(m.available, Some(1_024_000 - 500_000));
        assert_eq!(
            (m.rss, m.page_faults, m.major_page_faults),
            (Some(4096), Some(7), Some(2))
        );
        assert_eq!(u.boot, Timestamp::from_second(1_714_557_600).ok());
    }

    #[test]
    fn node_usage_from_cgroup_v2_reads_meminfo_for_the_root() {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "proc/meminfo", MEMINFO);
        write(dir.path(), "proc/stat", STAT);
        write(dir.path(), "cg/cgroup.controllers", "cpu memory\n");
        write(
            dir.path(),
            "cg/cpu.stat",
            "usage_usec 2500\nuser_usec 2000\n",
        );
        write(
            dir.path(),
            "cg/memory.stat",
            "anon 8192\ninactive_file 51200\n",
        );
        let host = HostPaths {
            cgroup: dir.path().join("cg"),
            proc: dir.path().join("proc"),
        };
        let u = host.usage();
        assert_eq!(u.cpu, Some(2_500_000));
        let m = u.memory.expect("memory");
        // (1000 - 200) KiB in use, 50 KiB of it inactive page cache.
        assert_eq!(m.usage, Some(800 * 1024));
        assert_eq!(m.working_set, Some(750 * 1024));
        assert_eq!(m.rss, Some(8192));
    }

    #[test]
    fn without_cgroups_cpu_comes_from_proc_stat() {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "proc/stat", STAT);
        let host = HostPaths {
            cgroup: dir.path().join("none"),
            proc: dir.path().join("proc"),
        };
        // user + nice + system + softirq jiffies, at 10 ms each.
        assert_eq!(host.usage().cpu, Some(165 * 10_000_000));
        assert_eq!(host.usage().memory, None);
    }

    fn sandbox(id: &str, name: &str, created: i64) -> PodSandbox {
        PodSandbox {
            id: id.into(),
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            state: PodSandboxState::SandboxReady as i32,
            created_at: created,
            ..Default::default()
        }
    }

    fn container(
        id: &str,
        sandbox: &str,
        name: &str,
        created: i64,
        state: ContainerState,
    ) -> Container {
        Container {
            id: id.into(),
            pod_sandbox_id: sandbox.into(),
            state: state as i32,
            created_at: created,
            labels: HashMap::from([(CONTAINER_NAME_LABEL.to_string(), name.to_string())]),
            ..Default::default()
        }
    }

    fn cpu(at: i64, usage: u64) -> Option<CpuUsage> {
        Some(CpuUsage {
            timestamp: at,
            usage_core_nano_seconds: Some(UInt64Value { value: usage }),
            usage_nano_cores: Some(UInt64Value { value: 42 }),
        })
    }

    fn stats(id: &str, at: i64, usage: u64, ws: u64) -> ContainerStats {
        ContainerStats {
            attributes: Some(ContainerAttributes {
                id: id.into(),
                labels: HashMap::from([(CONTAINER_NAME_LABEL.to_string(), "app".to_string())]),
                ..Default::default()
            }),
            cpu: cpu(at, usage),
            memory: Some(MemoryUsage {
                timestamp: at,
                working_set_bytes: Some(UInt64Value { value: ws }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pods_carry_upstreams_summary_shape_and_rates_from_the_second_sample() {
        let t0 = 1_714_557_600 * SEC;
        let sandboxes = [sandbox("s1", "web", t0), {
            let mut s = sandbox("s2", "gone", t0);
            s.state = PodSandboxState::SandboxNotready as i32;
            s
        }];
        let containers = [container(
            "c1",
            "s1",
            "app",
            t0 + SEC,
            ContainerState::ContainerRunning,
        )];
        let sample = |at: i64, usage: u64| PodSandboxStats {
            attributes: Some(PodSandboxAttributes {
                id: "s1".into(),
                ..Default::default()
            }),
            linux: Some(LinuxPodSandboxStats {
                cpu: cpu(at, usage * 2),
                memory: Some(MemoryUsage {
                    timestamp: at,
                    working_set_bytes: Some(UInt64Value { value: 8192 }),
                    ..Default::default()
                }),
                process: Some(ProcessUsage {
                    timestamp: at,
                    process_count: Some(UInt64Value { value: 3 }),
                }),
                containers: vec![stats("c1", at, usage, 4096)],
                network: None,
            }),
            windows: None,
        };
        let empty = HashMap::new();
        let mut first = Rates {
            prev: &empty,
            next: HashMap::new(),
        };
        let pods = pods_json(&sandboxes, &containers, &[sample(t0, 1_000)], &mut first);
        assert_eq!(pods.len(), 1, "only ready sandboxes: {pods:?}");
        let c = &pods[0]["containers"][0];
        assert_eq!(c["name"], "app");
        assert_eq!(c["startTime"], "2024-05-01T10:00:01Z");
        assert_eq!(c["memory"]["workingSetBytes"], 4096);
        // containerd's own rate is never passed on: the first sample has none.
        assert!(c["cpu"].get("usageNanoCores").is_none(), "{c}");
        let mut second = Rates {
            prev: &first.next,
            next: HashMap::new(),
        };
        let later = t0 + 10 * SEC;
        let pods = pods_json(
            &sandboxes,
            &containers,
            &[sample(later, 1_000 + 2 * SEC as u64)],
            &mut second,
        );
        let pod = &pods[0];
        assert_eq!(
            pod["podRef"],
            json!({"name": "web", "namespace": "default", "uid": "uid-web"})
        );
        assert_eq!(pod["startTime"], "2024-05-01T10:00:00Z");
        assert_eq!(pod["containers"][0]["cpu"]["usageNanoCores"], 200_000_000);
        assert_eq!(pod["containers"][0]["cpu"]["time"], "2024-05-01T10:00:10Z");
        assert_eq!(pod["cpu"]["usageNanoCores"], 400_000_000);
        assert_eq!(pod["memory"]["workingSetBytes"], 8192);
        assert_eq!(pod["process_stats"]["process_count"], 3);
    }

    #[test]
    fn container_stats_alone_are_grouped_under_their_sandbox() {
        let containers = [
            container("c1", "s1", "app", 0, ContainerState::ContainerRunning),
            container("c2", "s1", "side", 0, ContainerState::ContainerRunning),
        ];
        let grouped = group_by_sandbox(
            vec![
                stats("c1", 0, 1, 1),
                stats("c2", 0, 1, 1),
                stats("c9", 0, 1, 1),
            ],
            &containers,
        );
        assert_eq!(grouped.len(), 1);
        let linux = grouped[0].linux.as_ref().expect("linux");
        assert_eq!(linux.containers.len(), 2);
        assert!(linux.cpu.is_none());
    }

    #[test]
    fn a_pod_has_started_once_an_app_container_runs() {
        let s = sandbox("s1", "web", 10 * SEC);
        let mut init = container(
            "i1",
            "s1",
            "setup",
            11 * SEC,
            ContainerState::ContainerExited,
        );
        init.labels.insert(INIT_LABEL.into(), "true".into());
        let app = container(
            "c1",
            "s1",
            "app",
            14 * SEC,
            ContainerState::ContainerCreated,
        );
        assert_eq!(start_duration(&s, &[init.clone(), app.clone()]), None);
        let running = Container {
            state: ContainerState::ContainerRunning as i32,
            ..app
        };
        assert_eq!(
            start_duration(&s, &[init, running]),
            Some(Duration::from_secs(4))
        );
    }
}
