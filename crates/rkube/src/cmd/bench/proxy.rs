//! `rkube bench proxy`: Service routing on this machine, in two parts.
//!
//! 1. Rule sync. The proxy's own code path — Services and EndpointSlices to rules
//!    (`services::port_rules` + `services::rules`), then `iptables::Runner::sync` — applied to
//!    the tables of a private network namespace for N Services × M endpoints: the first full
//!    sync, then single changes (an endpoint replaced, a Service added, a Service deleted),
//!    each timed from the changed state to `iptables-restore` done. The baseline, in the same
//!    run and for the same changes, is the same runner made to forget what it applied, so it
//!    reads the tables back and rewrites every chain (what a proxy without diffing does).
//! 2. Requests through a Service. A `rkube server` child with its node agent and proxy on
//!    containerd runs an HTTP server pod behind a ClusterIP Service and a client pod. From
//!    inside the client pod's network namespace, short HTTP/1.0 requests (one TCP connection
//!    each, the case where the nat rules are walked) go to the pod IP and to the ClusterIP in
//!    alternating rounds; then again with N more Services (M endpoints each) installed, this
//!    Service's rule placed after all of theirs.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args as ClapArgs;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kubelet::runtime::cri::client::Cri;
use proxy::NodeInfo;
use proxy::iptables::{Desired, Runner, SyncStats};
use proxy::services;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::percentiles;
use super::procs::ServerProc;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Services in the rule set.
    #[arg(long, default_value_t = 1000)]
    pub services: usize,
    /// Ready endpoints per Service.
    #[arg(long, default_value_t = 10)]
    pub endpoints: usize,
    /// Timed changes of each kind (endpoint replaced, Service added, Service deleted).
    #[arg(long, default_value_t = 10)]
    pub changes: usize,
    /// Concurrent connections of the HTTP client.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds per HTTP round; each target gets `rounds` rounds, alternating.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// The image of the server and client pods (present on the node; needs busybox httpd).
    #[arg(long, default_value = "localhost/busybox:latest")]
    pub image: String,
    /// containerd's socket (for the HTTP part's pods).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// Only the rule-sync part (no cluster, no containerd).
    #[arg(long)]
    pub sync_only: bool,
}

const DEADLINE: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------
// Part 1: rule sync in a private network namespace.

/// A network namespace made for this run, deleted on drop.
struct Netns(String);

impl Netns {
    fn create() -> anyhow::Result<Netns> {
        let name = format!("rkube-bench-{}", std::process::id());
        let status = Command::new("ip").args(["netns", "add", &name]).status()?;
        anyhow::ensure!(status.success(), "ip netns add {name} failed (root needed)");
        Ok(Netns(name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The synthetic Services and their EndpointSlices, by index.
struct Synthetic {
    services: Vec<Arc<Service>>,
    slices: Vec<Arc<EndpointSlice>>,
    /// Endpoint addresses handed out so far (each one new).
    next_ip: u32,
}

/// The `n`th address of 10.42.0.0/16 from .0.1 on (pod-like addresses).
fn pod_ip(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 42, 0, 1)) + n)
}

/// The `n`th cluster IP, 10.96.0.1 on (out of the way of a live cluster's 10.43/16).
fn cluster_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 1)) + n as u32)
}

fn service(namespace: &str, i: usize, ip: Option<Ipv4Addr>) -> anyhow::Result<Service> {
    let mut spec = json!({
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    });
    if let Some(ip) = ip {
        spec["clusterIP"] = json!(ip.to_string());
        spec["clusterIPs"] = json!([ip.to_string()]);
    }
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": namespace},
        "spec": spec,
    }))?)
}

fn slice(namespace: &str, i: usize, ips: &[Ipv4Addr]) -> anyhow::Result<EndpointSlice> {
    let endpoints: Vec<_> = ips
        .iter()
        .enumerate()
        .map(|(j, ip)| {
            json!({"addresses": [ip.to_string()], "conditions": {"ready": true},
                   "nodeName": format!("node-{}", j % 3)})
        })
        .collect();
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}-bench"), "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }))?)
}

impl Synthetic {
    fn new(services: usize, endpoints: usize) -> anyhow::Result<Synthetic> {
        let mut s = Synthetic {
            services: Vec::new(),
            slices: Vec::new(),
            next_ip: 0,
        };
        for i in 0..services {
            s.add(i, endpoints)?;
        }
        Ok(s)
    }

    fn ips(&mut self, n: usize) -> Vec<Ipv4Addr> {
        (0..n)
            .map(|_| {
                self.next_ip += 1;
                pod_ip(self.next_ip)
            })
            .collect()
    }

    fn add(&mut self, i: usize, endpoints: usize) -> anyhow::Result<()> {
        let ips = self.ips(endpoints);
        self.services
            .push(Arc::new(service("bench", i, Some(cluster_ip(i)))?));
        self.slices.push(Arc::new(slice("bench", i, &ips)?));
        Ok(())
    }

    /// Replaces the first endpoint of Service `k` with a new address (a pod rescheduled).
    fn replace_endpoint(&mut self, k: usize) {
        let k = k % self.slices.len();
        let ip = self.ips(1)[0];
        let mut s = (*self.slices[k]).clone();
        if let Some(ep) = s.endpoints.first_mut() {
            ep.addresses = vec![ip.to_string()];
        }
        self.slices[k] = Arc::new(s);
    }

    fn remove(&mut self, k: usize) {
        let k = k % self.services.len();
        self.services.remove(k);
        self.slices.remove(k);
    }

    fn desired(&self, node: &NodeInfo) -> Desired {
        let ports = services::port_rules(node, &self.services, &self.slices, None);
        services::rules(node, &ports)
    }
}

/// One sync from the current state: (compute + restore time, what it wrote).
async fn timed_sync(
    runner: &mut Runner,
    state: &Synthetic,
    node: &NodeInfo,
    full: bool,
) -> anyhow::Result<(Duration, SyncStats)> {
    if full {
        runner.reset();
    }
    let t = Instant::now();
    let desired = state.desired(node);
    let stats = runner.sync(&desired).await?;
    Ok((t.elapsed(), stats))
}

/// The single changes timed against a full rewrite.
#[derive(Clone, Copy)]
enum Change {
    EndpointReplaced,
    ServiceAdded,
    ServiceDeleted,
}

impl Change {
    fn label(self) -> &'static str {
        match self {
            Change::EndpointReplaced => "endpoint replaced",
            Change::ServiceAdded => "Service added",
            Change::ServiceDeleted => "Service deleted",
        }
    }
}

struct SyncRow {
    what: Change,
    rkube: Vec<Duration>,
    rkube_chains: usize,
    full: Vec<Duration>,
    full_chains: usize,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn rule_sync(args: &Args) -> anyhow::Result<()> {
    let ns = Netns::create()?;
    let node = NodeInfo {
        name: "node-0".into(),
        ips: vec![Ipv4Addr::new(192, 0, 2, 10)],
        cluster_cidr: (Ipv4Addr::new(10, 42, 0, 0), 16),
    };
    let mut state = Synthetic::new(args.services, args.endpoints)?;
    let compute = {
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            std::hint::black_box(state.desired(&node));
            v.push(t.elapsed());
        }
        v
    };
    let desired = state.desired(&node);
    let chains: usize = desired.tables.values().map(|c| c.len()).sum();
    let rules: usize = desired
        .tables
        .values()
        .flat_map(|c| c.values())
        .map(Vec::len)
        .sum();
    let mut runner = Runner::in_netns(&ns.0);
    let (first, _) = timed_sync(&mut runner, &state, &node, false).await?;

    let mut rows = Vec::new();
    let mut next_service = args.services;
    for what in [
        Change::EndpointReplaced,
        Change::ServiceAdded,
        Change::ServiceDeleted,
    ] {
        let mut row = SyncRow {
            what,
            rkube: Vec::new(),
            rkube_chains: 0,
            full: Vec::new(),
            full_chains: 0,
        };
        for c in 0..args.changes {
            // Spread the changes over the Service list.
            let k = c * 97 + 13;
            match what {
                Change::EndpointReplaced => state.replace_endpoint(k),
                Change::ServiceAdded => {
                    state.add(next_service, args.endpoints)?;
                    next_service += 1;
                }
                Change::ServiceDeleted => state.remove(k),
            }
            let (d, stats) = timed_sync(&mut runner, &state, &node, false).await?;
            row.rkube.push(d);
            row.rkube_chains = stats.written + stats.deleted;
            // The baseline rewrites the same (now applied) state from scratch.
            let (d, stats) = timed_sync(&mut runner, &state, &node, true).await?;
            row.full.push(d);
            row.full_chains = stats.written + stats.deleted;
        }
        rows.push(row);
    }

    println!(
        "rule sync, {} Services x {} endpoints: {chains} chains, {rules} rules (nat + filter), in a private network namespace",
        args.services, args.endpoints
    );
    let (c50, c99) = percentiles(compute);
    println!("  computing the rules from the objects: p50 {c50:.1} ms, p99 {c99:.1} ms");
    println!(
        "  first sync (empty tables -> all rules): {:.0} ms",
        ms(first)
    );
    println!(
        "  {:<20} {:>7} {:>22} {:>22}",
        "change", "samples", "rkube (chains) p50/p99", "full rewrite p50/p99"
    );
    for row in rows {
        let n = row.rkube.len();
        let (r50, r99) = percentiles(row.rkube);
        let (f50, f99) = percentiles(row.full);
        println!(
            "  {:<20} {n:>7} {:>22} {:>22}",
            row.what.label(),
            format!("({}) {r50:.1} / {r99:.1} ms", row.rkube_chains),
            format!("({}) {f50:.0} / {f99:.0} ms", row.full_chains),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Part 2: HTTP requests through a ClusterIP against the pod IP.

#[derive(Default)]
struct Load {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }
}

/// One HTTP/1.0 GET on a new connection; true for a 200 answer.
async fn request(to: SocketAddr) -> std::io::Result<bool> {
    let mut s = tokio::net::TcpStream::connect(to).await?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n").await?;
    let mut answer = Vec::with_capacity(256);
    s.read_to_end(&mut answer).await?;
    Ok(answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"))
}

/// `connections` clients requesting `to` back to back for `secs`.
async fn load(to: SocketAddr, connections: usize, secs: u64) -> Load {
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let workers = (0..connections).map(|_| async move {
        let mut l = Load::default();
        while Instant::now() < until {
            let t = Instant::now();
            match tokio::time::timeout(Duration::from_secs(5), request(to)).await {
                Ok(Ok(true)) => l.latencies.push(t.elapsed()),
                _ => l.errors += 1,
            }
        }
        l
    });
    let mut total = Load::default();
    for l in futures::future::join_all(workers).await {
        total.merge(l);
    }
    total.elapsed = start.elapsed();
    total
}

/// Runs `work` on a thread inside the network namespace at `netns` (a bind-mounted netns
/// file), on its own single-threaded runtime.
fn in_netns<T, F>(netns: PathBuf, work: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || -> anyhow::Result<T> {
        let file =
            std::fs::File::open(&netns).with_context(|| format!("opening {}", netns.display()))?;
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .context("setns into the client pod's network namespace")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(rt.block_on(work()))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
}

/// Alternating rounds against each target, from inside `netns`.
fn rounds(
    args: &Args,
    netns: &std::path::Path,
    targets: &[SocketAddr],
) -> anyhow::Result<Vec<Load>> {
    let (connections, secs, n) = (args.connections, args.seconds, args.rounds);
    let targets = targets.to_vec();
    in_netns(netns.to_path_buf(), move || async move {
        let mut out: Vec<Load> = targets.iter().map(|_| Load::default()).collect();
        for _ in 0..n {
            for (i, t) in targets.iter().enumerate() {
                out[i].merge(load(*t, connections, secs).await);
            }
        }
        out
    })
}

/// The named network namespace (containerd's `/var/run/netns/cni-…`) whose interfaces hold
/// `ip`.
fn netns_of(ip: Ipv4Addr) -> anyhow::Result<PathBuf> {
    let needle = format!("inet {ip}/");
    for entry in std::fs::read_dir("/var/run/netns")?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let out = Command::new("ip")
            .args(["-n", &name, "-o", "-4", "addr", "show"])
            .output()?;
        if String::from_utf8_lossy(&out.stdout).contains(&needle) {
            return Ok(entry.path());
        }
    }
    anyhow::bail!("no network namespace holds {ip}")
}

async fn wait_for<T, F: std::future::Future<Output = anyhow::Result<Option<T>>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        anyhow::ensure!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn running_ip(api: &Api<Pod>, name: &str) -> anyhow::Result<Ipv4Addr> {
    wait_for(&format!("pod {name} Running"), || async {
        let p = api.get(name).await?;
        let status = p.status.unwrap_or_default();
        Ok((status.phase.as_deref() == Some("Running"))
            .then_some(status.pod_ip)
            .flatten()
            .and_then(|ip| ip.parse().ok()))
    })
    .await
}

/// Cluster-IP rules in the host's Service chain (one per Service port with endpoints).
fn service_rules() -> anyhow::Result<usize> {
    let out = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S", services::SERVICES])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("cluster IP"))
        .count())
}

fn pod(name: &str, image: &str, script: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script]}]
        }
    }))?)
}

fn load_row(what: &str, l: Load) {
    let n = l.latencies.len();
    let rate = n as f64 / l.elapsed.as_secs_f64().max(f64::EPSILON);
    let (p50, p99) = percentiles(l.latencies);
    println!(
        "  {what:<56} {rate:>8.0} {p50:>8.2} {p99:>8.2} {:>7}",
        l.errors
    );
}

async fn requests(args: &Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let logs = tmp.path().join("pod-logs");
    let server = ServerProc::launch(
        tmp.path(),
        &[
            "--kubelet-port".into(),
            "0".into(),
            "--pod-log-dir".into(),
            logs.display().to_string(),
            "--disable".into(),
            "dns,ingress".into(),
            "--image-gc-high-threshold".into(),
            "100".into(),
            "--containerd-socket".into(),
            args.containerd_socket.display().to_string(),
        ],
    )?;
    let client = super::super::kube_client(&tmp.path().join("admin.kubeconfig")).await?;
    let result = requests_in(args, &client).await;
    // Leave nothing behind on the node: pods first (their containers), then the rules.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let _ = pods
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let _ = super::node::wait_gone(&pods).await;
    // Pods deleted at once leave the API first; the agent removes their sandboxes after.
    let agent_id = std::fs::read_to_string(tmp.path().join("agent").join("agent-id"))?;
    let cri = Cri::connect(&args.containerd_socket, agent_id.trim().to_string())
        .map_err(|e| anyhow::anyhow!(e))?;
    let _ = wait_for("the agent to remove the bench pods' sandboxes", || async {
        Ok(cri.sandboxes(None).await?.is_empty().then_some(()))
    })
    .await;
    drop(server);
    if let Err(e) = proxy::node::remove_rules().await {
        eprintln!("removing the proxy's rules: {e}");
    }
    result
}

async fn requests_in(args: &Args, client: &kube::Client) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let create = PostParams::default();
    let web = pod(
        "web",
        &args.image,
        // Two ports: the Service leads to 8080, the direct requests go to 8081. On one port,
        // a direct connection and a translated one could share a conntrack tuple when the
        // client reuses a source port, and conntrack drops the second (a clash no real
        // client mix would hit at this rate).
        "mkdir -p /www && echo ok > /www/index.html && httpd -p 8081 -h /www && exec httpd -f -p 8080 -h /www",
    )?;
    let client_pod = pod("client", &args.image, "exec sleep 3600")?;
    pods.create(&create, &web).await?;
    pods.create(&create, &client_pod).await?;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))?;
    let svc = svcs.create(&create, &svc).await?;
    let vip: Ipv4Addr = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .and_then(|ip| ip.parse().ok())
        .context("the web Service got no cluster IP")?;
    let web_ip = running_ip(&pods, "web").await?;
    let client_ip = running_ip(&pods, "client").await?;
    let netns = netns_of(client_ip)?;
    let direct = SocketAddr::V4(SocketAddrV4::new(web_ip, 8081));
    let through = SocketAddr::V4(SocketAddrV4::new(vip, 80));
    // The proxy has the Service once a request through it succeeds.
    let probe = netns.clone();
    wait_for("the Service's rules", || {
        let probe = probe.clone();
        async move {
            let ok = in_netns(probe, move || async move {
                matches!(
                    tokio::time::timeout(Duration::from_secs(1), request(through)).await,
                    Ok(Ok(true))
                )
            })?;
            Ok(ok.then_some(()))
        }
    })
    .await?;
    let few = rounds(args, &netns, &[direct, through])?;
    let few_ports = service_rules()?;

    // N more Services with M endpoints each, created through the API like any other.
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "bench"}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&create, &ns)
        .await?;
    let bench_svcs: Api<Service> = Api::namespaced(client.clone(), "bench");
    let bench_slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "bench");
    for chunk in (0..args.services).collect::<Vec<_>>().chunks(64) {
        futures::future::try_join_all(chunk.iter().map(|&i| {
            let ips: Vec<Ipv4Addr> = (0..args.endpoints)
                .map(|j| pod_ip((1000 + i * args.endpoints + j) as u32))
                .collect();
            let (bench_svcs, bench_slices) = (bench_svcs.clone(), bench_slices.clone());
            async move {
                bench_svcs
                    .create(&PostParams::default(), &service("bench", i, None)?)
                    .await?;
                bench_slices
                    .create(&PostParams::default(), &slice("bench", i, &ips)?)
                    .await?;
                anyhow::Ok(())
            }
        }))
        .await?;
    }
    // Wait until the host's Service chain holds every one of them.
    let want = few_ports + args.services;
    let many_ports = wait_for("the proxy to install the Services", || async move {
        let n = service_rules()?;
        Ok((n >= want).then_some(n))
    })
    .await?;
    let many = rounds(args, &netns, &[direct, through])?;

    println!();
    println!(
        "HTTP/1.0 GET, one new connection per request, {} connections, from inside a pod; {} x {} s per target, alternating",
        args.connections, args.rounds, args.seconds
    );
    println!(
        "  {:<56} {:>8} {:>8} {:>8} {:>7}",
        "target", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let [few_direct, few_vip] =
        <[Load; 2]>::try_from(few).map_err(|_| anyhow::anyhow!("two targets measured"))?;
    let [many_direct, many_vip] =
        <[Load; 2]>::try_from(many).map_err(|_| anyhow::anyhow!("two targets measured"))?;
    load_row("pod IP (baseline)", few_direct);
    load_row(
        &format!("ClusterIP, {few_ports} Service ports installed"),
        few_vip,
    );
    load_row("pod IP (baseline), again", many_direct);
    load_row(
        &format!("ClusterIP, {many_ports} Service ports installed (its rule last)"),
        many_vip,
    );
    let _ = bench_svcs
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    rule_sync(&args).await?;
    if !args.sync_only {
        requests(&args).await?;
    }
    Ok(())
}
