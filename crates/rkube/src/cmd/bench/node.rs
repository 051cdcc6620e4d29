//! `rkube bench node`: pod startup latency on this machine's containerd, against containerd
//! itself in the same run.
//!
//! One `rkube server --disable-agent` and one `rkube agent` as child processes, so the
//! agent's own RSS can be read beside containerd's. Each pod is timed from its create
//! request to the watch event that shows it Running (image present locally, as the issue's
//! SLO asks): first one pod at a time, then a burst of pods created at once. The baseline
//! does the same work straight over CRI — RunPodSandbox, CreateContainer, StartContainer —
//! with no API server, scheduler or agent in the way.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args as ClapArgs;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubelet::runtime::cri::client::Cri;
use kubelet::runtime::cri::spec;
use serde_json::json;

use super::percentiles;
use super::procs::{ServerProc, rss_of};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Pods started one after the other.
    #[arg(long, default_value_t = 10)]
    pub sequential: usize,
    /// Pods created at once in a burst.
    #[arg(long, default_value_t = 30)]
    pub burst: usize,
    /// Bursts.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// containerd's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: std::path::PathBuf,
    /// The image the pods run (present on the node).
    #[arg(long, default_value = "localhost/busybox:latest")]
    pub image: String,
}

struct AgentProc(Child);

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

const DEADLINE: Duration = Duration::from_secs(300);

fn pod(name: &str, image: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": "node"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"]}]
        }
    }))?)
}

/// When each pod was first seen Running.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

async fn wait_running(seen: &Seen, names: &[String]) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let done = {
            let s = seen.lock().unwrap_or_else(|p| p.into_inner());
            names.iter().all(|n| s.contains_key(n))
        };
        if done {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < DEADLINE, "pods did not start in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `api` lists no pod.
pub(super) async fn wait_gone(api: &Api<Pod>) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let left = api.list(&Default::default()).await?.items.len();
        if left == 0 {
            return Ok(());
        }
        anyhow::ensure!(start.elapsed() < DEADLINE, "{left} pods were not deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates `names` at once and returns each one's create → Running time.
async fn start_pods(
    api: &Api<Pod>,
    seen: &Seen,
    names: &[String],
    image: &str,
) -> anyhow::Result<Vec<Duration>> {
    let created: Vec<(String, Instant)> = futures::future::try_join_all(names.iter().map(|n| {
        let api = api.clone();
        let n = n.clone();
        let image = image.to_string();
        async move {
            let t = Instant::now();
            api.create(&PostParams::default(), &pod(&n, &image)?)
                .await?;
            anyhow::Ok((n, t))
        }
    }))
    .await?;
    wait_running(seen, names).await?;
    let s = seen.lock().unwrap_or_else(|p| p.into_inner());
    Ok(created
        .iter()
        .filter_map(|(n, t)| s.get(n).map(|r| r.saturating_duration_since(*t)))
        .collect())
}

fn containerd_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "containerd").then_some(pid)
    })
}

/// The same pods straight over CRI: sandbox, container, start; timed per pod.
async fn cri_baseline(args: &Args, n: usize, at_once: bool) -> anyhow::Result<Vec<Duration>> {
    let cri = Cri::connect(&args.containerd_socket, "bench-baseline".into())
        .map_err(|e| anyhow::anyhow!(e))?;
    let image = cri
        .image_present(&args.image)
        .await?
        .with_context(|| format!("image {} is not on this node", args.image))?;
    let tmp = tempfile::tempdir()?;
    let node = spec::NodeContext {
        node_name: "bench".into(),
        host_ip: "127.0.0.1".into(),
        cluster_dns: Vec::new(),
        cluster_domain: "cluster.local".into(),
        log_root: tmp.path().to_path_buf(),
        cgroup_root: "/kubepods".into(),
        memory_capacity: 1 << 30,
    };
    let one = |i: usize| {
        let cri = cri.clone();
        let node = node.clone();
        let image_id = image.id.clone();
        async move {
            let uid = format!("bench-{}-{i}", std::process::id());
            let p = pod(&format!("cri-{i}"), "")?;
            let mut p = p;
            p.metadata.uid = Some(uid.clone());
            p.metadata.namespace = Some("bench".into());
            std::fs::create_dir_all(spec::log_dir(&node.log_root, &p).join("c"))?;
            let t = Instant::now();
            let sandbox_config = spec::sandbox_config(&p, 0, &node, "bench-baseline");
            let sb = cri
                .rt
                .clone()
                .run_pod_sandbox(k8s_cri::v1::RunPodSandboxRequest {
                    config: Some(sandbox_config.clone()),
                    runtime_handler: String::new(),
                })
                .await?
                .into_inner()
                .pod_sandbox_id;
            let config = k8s_cri::v1::ContainerConfig {
                metadata: Some(k8s_cri::v1::ContainerMetadata {
                    name: "c".into(),
                    attempt: 0,
                }),
                image: Some(k8s_cri::v1::ImageSpec {
                    image: image_id,
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "3600".into()],
                labels: spec::container_labels(&p, "c", "bench-baseline"),
                log_path: "c/0.log".into(),
                ..Default::default()
            };
            let id = cri
                .rt
                .clone()
                .create_container(k8s_cri::v1::CreateContainerRequest {
                    pod_sandbox_id: sb.clone(),
                    config: Some(config),
                    sandbox_config: Some(sandbox_config),
                })
                .await?
                .into_inner()
                .container_id;
            cri.rt
                .clone()
                .start_container(k8s_cri::v1::StartContainerRequest { container_id: id })
                .await?;
            anyhow::Ok((t.elapsed(), sb))
        }
    };
    let mut took = Vec::new();
    let mut sandboxes: Vec<String> = Vec::new();
    if at_once {
        for r in futures::future::join_all((0..n).map(one)).await {
            let (d, sb) = r?;
            took.push(d);
            sandboxes.push(sb);
        }
    } else {
        for i in 0..n {
            let (d, sb) = one(i).await?;
            took.push(d);
            sandboxes.push(sb);
        }
    }
    for c in cri.containers(None).await? {
        let _ = cri.stop_container(&c.id, 0).await;
        let _ = cri.remove_container(&c.id).await;
    }
    for sb in sandboxes {
        let _ = cri.stop_sandbox(&sb).await;
        let _ = cri.remove_sandbox(&sb).await;
    }
    for i in 0..n {
        let uid = format!("bench-{}-{i}", std::process::id());
        kubelet::runtime::cri::remove_pod_cgroups("/kubepods", &uid);
    }
    Ok(took)
}

fn row(what: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p99) = percentiles(samples);
    println!("{what:<44} {n:>5} {p50:>9.0} {p99:>9.0}");
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = ServerProc::start(tmp.path(), &[])?;
    let token = std::fs::read_to_string(tmp.path().join("node-token"))?
        .trim()
        .to_string();
    let agent_dir = tmp.path().join("agent-node");
    let agent = AgentProc(
        Command::new(std::env::current_exe()?)
            .args(["agent", "--server", &server.url, "--token", &token])
            .arg("--data-dir")
            .arg(&agent_dir)
            .args(["--kubelet-port", "0", "--pod-log-dir"])
            .arg(agent_dir.join("logs"))
            .arg("--containerd-socket")
            .arg(&args.containerd_socket)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting rkube agent")?,
    );
    let client = super::super::kube_client(&tmp.path().join("admin.kubeconfig")).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    let start = Instant::now();
    while nodes.list(&Default::default()).await?.items.is_empty() {
        anyhow::ensure!(
            start.elapsed() < DEADLINE,
            "the agent never registered its node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "bench"}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let seen: Seen = Arc::default();
    let watch = {
        let seen = seen.clone();
        let stream = watcher(api.clone(), watcher::Config::default()).applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(p)) = stream.next().await {
                let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if running && let Some(name) = p.metadata.name {
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        })
    };
    // Warm-up: the first pod pays for the image's first unpack and cgroup set-up.
    start_pods(&api, &seen, &["warmup".to_string()], &args.image).await?;

    let mut one = Vec::new();
    for i in 0..args.sequential {
        let name = format!("one-{i}");
        one.extend(start_pods(&api, &seen, std::slice::from_ref(&name), &args.image).await?);
    }
    api.delete_collection(&DeleteParams::default(), &Default::default())
        .await?;
    wait_gone(&api).await?;
    let mut burst = Vec::new();
    for r in 0..args.rounds {
        let names: Vec<String> = (0..args.burst).map(|i| format!("burst-{r}-{i}")).collect();
        burst.extend(start_pods(&api, &seen, &names, &args.image).await?);
        api.delete_collection(&DeleteParams::default(), &Default::default())
            .await?;
        wait_gone(&api).await?;
    }
    let (agent_rss, agent_peak) = rss_of(agent.0.id());
    watch.abort();

    let cri_one = {
        let mut v = Vec::new();
        for _ in 0..args.sequential {
            v.extend(cri_baseline(&args, 1, false).await?);
        }
        v
    };
    let mut cri_burst = Vec::new();
    for _ in 0..args.rounds {
        cri_burst.extend(cri_baseline(&args, args.burst, true).await?);
    }
    let containerd = containerd_pid().map(rss_of);

    println!("pod startup on this node (image present), create -> Running via watch, ms");
    println!("{:<44} {:>5} {:>9} {:>9}", "", "pods", "p50", "p99");
    row("rkube: 1 pod at a time", one);
    row(&format!("rkube: {} pods at once", args.burst), burst);
    row("baseline, CRI direct: 1 pod at a time", cri_one);
    row(
        &format!("baseline, CRI direct: {} pods at once", args.burst),
        cri_burst,
    );
    println!();
    println!("agent RSS: {agent_rss:.1} MiB now, {agent_peak:.1} MiB peak");
    if let Some((rss, peak)) = containerd {
        println!("containerd RSS: {rss:.1} MiB now, {peak:.1} MiB peak (its shims not counted)");
    }
    drop(agent);
    drop(server);
    Ok(())
}
