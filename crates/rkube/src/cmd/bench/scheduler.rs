//! `rkube bench scheduler`: pods/s from created to bound on N simulated nodes.
//!
//! One run starts an API server (child process), simulated nodes (a second child,
//! `rkube sim`, so its RSS is its own) and the scheduler in this process (so its cycle
//! latency histogram can be read), creates the pods with many requests in flight, and
//! watches them until every one is bound. Then the same with pods that carry topology
//! spread and required anti-affinity terms.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args as ClapArgs;
use futures::StreamExt;
use http::Method;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::percentiles;
use super::procs::{ServerProc, rss_of};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Simulated nodes.
    #[arg(long, default_value_t = 5_000)]
    pub nodes: usize,
    /// Pods created (per workload).
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Pod creates in flight at once.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
}

struct SimProc(Child);

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Outcome {
    name: &'static str,
    rate: f64,
    e2e: (f64, f64),
    cycle: (f64, f64),
    /// Scheduling attempts, and how many of them found no node.
    attempts: (u64, u64),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("rkube");
    std::fs::create_dir_all(&data_dir)?;
    // The scheduler under test runs here; controllers would only add load.
    let server = ServerProc::start(
        &data_dir,
        &[
            "--disable-scheduler".to_string(),
            "--disable-controllers".to_string(),
        ],
    )?;
    let kubeconfig = data_dir.join("admin.kubeconfig");
    let started = Instant::now();
    let sim = SimProc(
        Command::new(std::env::current_exe()?)
            .args(["sim", "--nodes", &args.nodes.to_string(), "--kubeconfig"])
            .arg(&kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting rkube sim")?,
    );
    let client = crate::cmd::kube_client(&kubeconfig).await?;
    let nodes: Api<Node> = Api::all(client.clone());
    loop {
        let ready = nodes
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len();
        if ready >= args.nodes {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "nodes did not register"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let register = started.elapsed();
    eprintln!(
        "{} simulated nodes registered in {:.1}s",
        args.nodes,
        register.as_secs_f64()
    );

    let stop = CancellationToken::new();
    let sched = scheduler::Scheduler::new(client.clone(), scheduler::SchedulerConfig::default())?;
    let metrics = sched.metrics();
    let readiness = sched.readiness();
    let sched_task = tokio::spawn(sched.run(stop.clone()));
    readiness.wait().await;

    let http = Client::connect(&server.url, &server.data_dir).await?;
    let mut outcomes = Vec::new();
    for (name, ns, spread) in [
        ("basic", "bench-basic", false),
        ("spread + anti-affinity", "bench-spread", true),
    ] {
        let before = metrics.attempt_duration.snapshot();
        let unschedulable_before = metrics.unschedulable.load(Relaxed);
        let o = run_workload(&args, &http, &client, ns, spread).await?;
        let attempts = metrics.attempt_duration.snapshot().since(&before);
        let q = |p| {
            attempts
                .quantile(p)
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(0.0)
        };
        let cycle = (q(0.5), q(0.99));
        outcomes.push(Outcome {
            name,
            rate: o.0,
            e2e: o.1,
            cycle,
            attempts: (
                attempts.count(),
                metrics.unschedulable.load(Relaxed) - unschedulable_before,
            ),
        });
    }
    let server_rss = server.rss_mib().1;
    let sim_rss = rss_of(sim.0.id()).1;
    stop.cancel();
    let _ = sched_task.await;
    println!();
    println!(
        "rkube bench scheduler: {} simulated nodes, {} pods per workload, {} creates in flight",
        args.nodes, args.pods, args.concurrency
    );
    println!();
    println!(
        "| workload | pods/s (created → bound) | e2e p50 / p99 | scheduling attempt p50 / p99 | attempts (unschedulable) |"
    );
    println!("|---|---|---|---|---|");
    for o in &outcomes {
        println!(
            "| {} | {:.0} | {:.0} ms / {:.0} ms | {:.2} ms / {:.2} ms | {} ({}) |",
            o.name, o.rate, o.e2e.0, o.e2e.1, o.cycle.0, o.cycle.1, o.attempts.0, o.attempts.1
        );
    }
    println!();
    println!(
        "nodes registered in {:.1} s; peak RSS: server {:.0} MiB, simulator {:.0} MiB (scheduler runs in the benchmark process)",
        register.as_secs_f64(),
        server_rss,
        sim_rss
    );
    println!(
        "baseline: kube-scheduler's scheduler_perf SchedulingBasic 5000 nodes / 10000 pods floor is 270 pods/s"
    );
    Ok(())
}

fn pod(ns: &str, i: usize, spread: bool) -> Value {
    let mut spec = json!({
        "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}],
    });
    if spread {
        let group = format!("g{}", i / 50);
        spec["topologySpreadConstraints"] = json!([{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"group": group}},
        }]);
        spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"group": group}},
        }]}});
        return json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("p-{i}"), "namespace": ns, "labels": {"group": group}}, "spec": spec});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p-{i}"), "namespace": ns}, "spec": spec})
}

/// Creates the pods and waits until the watch has seen each bound; (pods/s, (p50, p99) ms).
async fn run_workload(
    args: &Args,
    http: &Client,
    client: &kube::Client,
    ns: &str,
    spread: bool,
) -> anyhow::Result<(f64, (f64, f64))> {
    let body = Bytes::from(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
    );
    http.request(
        Method::POST,
        "/api/v1/namespaces",
        Some(body),
        "application/json",
    )
    .await?;
    let created: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let want = args.pods;
    let seen = created.clone();
    let watch = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(want);
        let mut bound = std::collections::HashSet::new();
        let mut stream = watcher(pods, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let objs = match ev {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => vec![p],
                _ => continue,
            };
            for p in objs {
                let name = p.metadata.name.clone().unwrap_or_default();
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                    && bound.insert(name.clone())
                    && let Some(t) = seen.lock().ok().and_then(|m| m.get(&name).copied())
                {
                    lat.push(t.elapsed());
                }
            }
            if bound.len() >= want {
                break;
            }
        }
        lat
    });
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, next, created, ns) =
            (http.clone(), next.clone(), created.clone(), ns.to_string());
        let total = args.pods;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = Bytes::from(pod(&ns, i, spread).to_string());
                created
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .insert(format!("p-{i}"), Instant::now());
                let (st, b) = http
                    .request(
                        Method::POST,
                        &format!("/api/v1/namespaces/{ns}/pods"),
                        Some(body),
                        "application/json",
                    )
                    .await?;
                anyhow::ensure!(
                    st.as_u16() == 201,
                    "create pod: {st} {}",
                    String::from_utf8_lossy(&b)
                );
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let lat = tokio::time::timeout(Duration::from_secs(900), watch)
        .await
        .context("pods were not all bound")??;
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, percentiles(lat)))
}
