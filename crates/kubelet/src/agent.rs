//! The node agent on a real machine: registers this machine as a Node (capacity, addresses
//! and nodeInfo read from it), keeps its Lease, runs its pods as containers through
//! containerd and serves the kubelet API (logs, stats, metrics) to the API server.
//!
//! It shares the heartbeat and pod workers with the simulator (one node, the CRI runtime)
//! and, when no containerd answers, starts one itself (`containerd.rs`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeSpec,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Ipv4Cidr, SimConfig};
use crate::containerd;
use crate::node::{self, SimNode};
use crate::runtime::Runtime;
use crate::runtime::cri::{CriConfig, CriRuntime, NodeContext};
use crate::sim::Shared;
use crate::{heartbeat, lease, pods};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Containerd(#[from] containerd::Error),
    #[error("the container runtime: {0}")]
    Runtime(#[from] crate::runtime::Error),
    #[error("the stats collector: {0}")]
    Stats(#[from] crate::stats::Error),
    #[error("registering node {node}")]
    Register {
        node: String,
        #[source]
        source: node::Error,
    },
    #[error("creating the lease of node {node}")]
    Lease {
        node: String,
        #[source]
        source: lease::Error,
    },
    #[error("starting the kubelet API on {addr}")]
    Server {
        addr: SocketAddr,
        #[source]
        source: crate::server::ServerError,
    },
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no address for this node: {0} (pass --node-ip)")]
    NoAddress(String),
    #[error("stopped before the agent was up")]
    Stopped,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a node agent runs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The Node's name; default: this machine's hostname.
    pub node_name: Option<String>,
    /// The InternalIP; default: the address of the interface the default route leaves by.
    pub node_ip: Option<Ipv4Addr>,
    /// The agent's own state: pod volume directories, containerd's when it runs one.
    pub dir: PathBuf,
    /// containerd's CRI socket.
    pub containerd_socket: PathBuf,
    /// OCI archives imported into a containerd the agent starts itself.
    pub images_dir: Option<PathBuf>,
    /// Where pod logs go (`/var/log/pods`).
    pub log_root: PathBuf,
    /// The kubelet API's port (0: any free port, reported in the Node's daemonEndpoints).
    pub kubelet_port: u16,
    /// The bearer token the API server presents to the kubelet API.
    pub token: String,
    /// Cluster DNS servers for pods (empty: pods use the node's resolv.conf).
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// The node's pod CIDR (`spec.podCIDR`), which the pod network hands addresses from.
    pub pod_cidr: Ipv4Cidr,
    pub lease_duration: Duration,
    pub lease_renew_interval: Duration,
    /// Image garbage collection starts at this disk usage (percent; 100 turns it off)…
    pub image_gc_high_threshold: u8,
    /// …and frees space down to this one.
    pub image_gc_low_threshold: u8,
}

impl AgentConfig {
    pub fn new(dir: PathBuf, token: String) -> Self {
        AgentConfig {
            node_name: None,
            node_ip: None,
            dir,
            containerd_socket: PathBuf::from(containerd::DEFAULT_SOCKET),
            images_dir: None,
            log_root: PathBuf::from("/var/log/pods"),
            kubelet_port: 10250,
            token,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            pod_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 24),
            lease_duration: crate::config::DEFAULT_LEASE_DURATION,
            lease_renew_interval: crate::config::DEFAULT_LEASE_RENEW_INTERVAL,
            image_gc_high_threshold: 85,
            image_gc_low_threshold: 80,
        }
    }
}

/// A running node agent; stops when its token fires or it is dropped.
pub struct Agent {
    pub node_name: String,
    /// Where the kubelet API listens.
    pub kubelet_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    stop: CancellationToken,
    _containerd: Option<containerd::Supervised>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// This machine's hostname, lowercased (a Node name must be).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .to_lowercase()
}

/// The address packets to the world leave from (no packet is sent).
fn default_ip() -> Result<Ipv4Addr> {
    let sock =
        std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| Error::NoAddress(e.to_string()))?;
    sock.connect("192.0.2.1:9")
        .map_err(|e| Error::NoAddress(format!("no default route ({e})")))?;
    match sock
        .local_addr()
        .map_err(|e| Error::NoAddress(e.to_string()))?
        .ip()
    {
        IpAddr::V4(ip) if !ip.is_unspecified() => Ok(ip),
        other => Err(Error::NoAddress(format!("unusable address {other}"))),
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `MemTotal` in KiB.
fn memory_kib() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn os_image() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    rustix::fs::statvfs(dir)
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
        .unwrap_or(0)
}

/// What the machine offers, as Node capacity.
fn capacity(dir: &std::path::Path) -> BTreeMap<String, Quantity> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        (
            "memory".to_string(),
            Quantity(format!("{}Ki", memory_kib())),
        ),
        (
            "ephemeral-storage".to_string(),
            Quantity(format!("{}Ki", disk_bytes(dir) / 1024)),
        ),
        ("pods".to_string(), Quantity("110".into())),
        ("hugepages-1Gi".to_string(), Quantity("0".into())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ])
}

fn images(list: Vec<(Vec<String>, u64)>) -> Vec<ContainerImage> {
    list.into_iter()
        .filter(|(names, _)| !names.is_empty())
        .map(|(names, size)| ContainerImage {
            names: Some(names),
            size_bytes: i64::try_from(size).ok(),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn node_object(
    cfg: &AgentConfig,
    sim: &SimConfig,
    node: &SimNode,
    runtime_version: &str,
    kubelet_port: u16,
    images: Vec<ContainerImage>,
    cap: BTreeMap<String, Quantity>,
) -> Node {
    let machine_id = read("/etc/machine-id");
    let system_uuid = Some(read("/sys/class/dmi/id/product_uuid"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| machine_id.clone());
    let mut labels = node::labels(sim, node);
    labels.remove("node.kubernetes.io/instance-type");
    labels.insert(
        "node-role.kubernetes.io/control-plane".into(),
        "true".into(),
    );
    let uname = rustix::system::uname();
    let now = Timestamp::now();
    let mut status = node::status(sim, node, runtime_version, now);
    status.capacity = Some(cap.clone());
    status.allocatable = Some(cap);
    status.addresses = Some(vec![
        NodeAddress {
            type_: "InternalIP".into(),
            address: node.ip.to_string(),
        },
        NodeAddress {
            type_: "Hostname".into(),
            address: node.name.clone(),
        },
    ]);
    status.daemon_endpoints = Some(NodeDaemonEndpoints {
        kubelet_endpoint: Some(DaemonEndpoint {
            port: i32::from(kubelet_port),
        }),
    });
    status.images = Some(images);
    status.node_info = Some(NodeSystemInfo {
        architecture: sim.arch.clone(),
        boot_id: read("/proc/sys/kernel/random/boot_id"),
        container_runtime_version: runtime_version.into(),
        kernel_version: uname.release().to_string_lossy().into_owned(),
        kube_proxy_version: String::new(),
        kubelet_version: node::KUBELET_VERSION.into(),
        machine_id,
        operating_system: "linux".into(),
        os_image: os_image(),
        system_uuid,
        swap: None,
    });
    Node {
        metadata: ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cfg.pod_cidr.to_string()),
            pod_cidrs: Some(vec![cfg.pod_cidr.to_string()]),
            ..Default::default()
        }),
        status: Some(status),
    }
}

/// How often unused images are looked at (upstream's `ImageGCPeriod`); the first look
/// comes shortly after start.
const IMAGE_GC_PERIOD: Duration = Duration::from_secs(300);
const IMAGE_GC_FIRST: Duration = Duration::from_secs(10);

async fn collect_images(cri: Arc<CriRuntime>, high: u8, low: u8, stop: CancellationToken) {
    if high >= 100 {
        return;
    }
    let mut next = IMAGE_GC_FIRST;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
        }
        next = IMAGE_GC_PERIOD;
        match cri
            .collect_images(high, low, &[containerd::SANDBOX_IMAGE])
            .await
        {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(?removed, "removed unused images (disk above {high}%)");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "image garbage collection failed"),
        }
    }
}

/// A stable id for this agent's containers: from its directory, so a restarted agent
/// finds (adopts) what it ran, and two agents on one containerd never mix pods.
fn agent_id(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("agent-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return Ok(id);
        }
    }
    let id: String = (0..16)
        .map(|_| format!("{:x}", rand::random::<u8>() & 0xf))
        .collect();
    std::fs::write(&path, &id).map_err(|source| Error::Io { path, source })?;
    Ok(id)
}

impl Agent {
    /// Connects to (or starts) containerd, registers the Node and its Lease, starts the
    /// heartbeat, pod workers and kubelet API, and returns once the pod workers hold the
    /// current pods.
    pub async fn start(
        client: kube::Client,
        cfg: AgentConfig,
        stop: CancellationToken,
    ) -> Result<Agent> {
        let stop = stop.child_token();
        for d in [&cfg.dir, &cfg.log_root] {
            std::fs::create_dir_all(d).map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
        }
        let name = cfg.node_name.clone().unwrap_or_else(hostname);
        let ip = match cfg.node_ip {
            Some(ip) => ip,
            None => default_ip()?,
        };
        let supervised = containerd::ensure(&cfg, &stop).await?;
        let id = agent_id(&cfg.dir)?;
        let stats = Arc::new(crate::stats::Collector::new(
            &cfg.containerd_socket,
            id.clone(),
            name.clone(),
        )?);
        let cap = capacity(&cfg.dir);
        let memory = cap
            .get("memory")
            .map_or(0, |q| apimachinery::quantity::value(&q.0));
        let cri = CriRuntime::new(
            client.clone(),
            CriConfig {
                socket: cfg.containerd_socket.clone(),
                agent_id: id,
                node: NodeContext {
                    node_name: name.clone(),
                    host_ip: ip.to_string(),
                    cluster_dns: cfg.cluster_dns.clone(),
                    cluster_domain: cfg.cluster_domain.clone(),
                    log_root: cfg.log_root.clone(),
                    cgroup_root: "/kubepods".into(),
                    memory_capacity: memory,
                },
                pods_root: cfg.dir.join("pods"),
                allocatable: cap.clone(),
            },
            stop.clone(),
        )?;
        let version = cri.version().await?.container_runtime_version();
        let image_list = images(cri.images().await.unwrap_or_default());
        let cri = Arc::new(cri);
        let images_runtime = cri.clone();

        let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), cfg.kubelet_port);
        let (kubelet_addr, server_task) = crate::server::start(
            crate::server::ServerConfig {
                bind,
                token: cfg.token.clone(),
                node_name: name.clone(),
                sans: vec![ip.to_string(), name.clone(), "127.0.0.1".into()],
            },
            crate::server::Sources {
                logs: cri.clone(),
                streams: Some(cri.clone()),
                stats: Some(stats.clone()),
            },
            stop.clone(),
        )
        .await
        .map_err(|source| Error::Server { addr: bind, source })?;

        let sim = SimConfig {
            nodes: 1,
            name_prefix: name.clone(),
            zones: Vec::new(),
            lease_duration: cfg.lease_duration,
            lease_renew_interval: cfg.lease_renew_interval,
            write_concurrency: 16,
            heartbeat_concurrency: 1,
            resync_period: Some(Duration::from_secs(30)),
            ..SimConfig::default()
        };
        let node = SimNode::new(name.clone(), 0, ip, cfg.pod_cidr);
        let obj = node_object(
            &cfg,
            &sim,
            &node,
            &version,
            kubelet_addr.port(),
            image_list,
            cap,
        );
        let uid = node::register_object(&client, &node, &obj)
            .await
            .map_err(|source| Error::Register {
                node: name.clone(),
                source,
            })?;
        lease::ensure(&client, &name, &uid, cfg.lease_duration)
            .await
            .map_err(|source| Error::Lease {
                node: name.clone(),
                source,
            })?;
        let _ = node.uid.set(uid);
        let shared = Arc::new(Shared {
            client,
            pod_writes: Semaphore::new(sim.write_concurrency),
            heartbeat_writes: Semaphore::new(sim.heartbeat_concurrency),
            cfg: sim,
            nodes: vec![node],
            by_name: HashMap::from([(name.clone(), 0)]),
            runtime: cri,
        });
        let (_control, control_rx) = mpsc::unbounded_channel();
        let (synced_tx, synced_rx) = oneshot::channel();
        let tasks = vec![
            tokio::spawn(collect_images(
                images_runtime,
                cfg.image_gc_high_threshold,
                cfg.image_gc_low_threshold,
                stop.clone(),
            )),
            server_task,
            tokio::spawn(stats.run(stop.clone())),
            tokio::spawn(heartbeat::run(shared.clone(), stop.clone())),
            tokio::spawn(pods::run(shared, control_rx, synced_tx, stop.clone())),
        ];
        tokio::select! {
            _ = stop.cancelled() => return Err(Error::Stopped),
            _ = synced_rx => {}
        }
        tracing::info!(node = %name, ip = %ip, kubelet = %kubelet_addr, runtime = %version, "node agent ready");
        Ok(Agent {
            node_name: name,
            kubelet_addr,
            tasks,
            stop,
            _containerd: supervised,
        })
    }

    /// Waits until the agent stops.
    pub async fn join(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            if let Err(e) = t.await
                && e.is_panic()
            {
                tracing::error!(error = %e, "node agent task panicked");
            }
        }
    }
}
