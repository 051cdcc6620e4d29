//! `rkube bench controllers`: how fast workloads converge through the controllers, against
//! the same number of bare pods in the same run as the baseline.
//!
//! One `rkube server` (API server, scheduler, controllers) and `rkube sim` as child
//! processes. Workloads, each timed from the first write to the state a user waits for:
//! - baseline: D×R bare pods created directly → all Running;
//! - Deployments: D Deployments of R replicas → every pod Running and every Deployment
//!   reporting R available (ReplicaSet + Deployment controllers, scheduler, sim);
//! - rolling update: a new image on every Deployment → all rolled out (`rollout status`'s
//!   conditions: updated = available = R, no old pods);
//! - delete: every Deployment deleted (background propagation) → no pod left (garbage
//!   collector through ReplicaSets to pods).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args as ClapArgs;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::procs::{ServerProc, rss_of};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Simulated nodes.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Deployments.
    #[arg(long, default_value_t = 100)]
    pub deployments: usize,
    /// Replicas per Deployment.
    #[arg(long, default_value_t = 50)]
    pub replicas: usize,
    /// Creates in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

struct SimProc(Child);

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const DEADLINE: Duration = Duration::from_secs(1800);

/// A cache of `K` in `ns`, kept by a watch on this runtime (abort it before the server
/// stops).
fn cache<K>(
    client: &kube::Client,
    ns: &str,
    watches: &mut Vec<tokio::task::AbortHandle>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + for<'de> k8s_openapi::serde::Deserialize<'de>
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    watches.push(tokio::spawn(stream.for_each(|_| async {})).abort_handle());
    reader
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while !done() {
        anyhow::ensure!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Runs `f(i)` for i in 0..n with `concurrency` in flight.
async fn fan_out<F, Fut>(n: usize, concurrency: usize, f: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut s = futures::stream::iter((0..n).map(f)).buffer_unordered(concurrency.max(1));
    while let Some(r) = s.next().await {
        r?;
    }
    Ok(())
}

async fn namespace(client: &kube::Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

fn deployment(i: usize, replicas: usize) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("d-{i}")},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": format!("d-{i}")}},
            "template": {
                "metadata": {"labels": {"app": format!("d-{i}")}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                    "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]},
            },
        },
    }))?)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let data_dir = tmp.path().join("rkube");
    std::fs::create_dir_all(&data_dir)?;
    let server = ServerProc::start(&data_dir, &[])?;
    let kubeconfig = data_dir.join("admin.kubeconfig");
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
    let start = Instant::now();
    loop {
        if nodes
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len()
            >= args.nodes
        {
            break;
        }
        anyhow::ensure!(start.elapsed() < DEADLINE, "nodes did not register");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = args.deployments * args.replicas;
    let mut watches = Vec::new();
    let mut rows: Vec<(String, Duration)> = Vec::new();

    // Baseline: bare pods.
    namespace(&client, "bench-pods").await?;
    let pods_cache = cache::<Pod>(&client, "bench-pods", &mut watches);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench-pods");
    let t = Instant::now();
    fan_out(total, args.concurrency, |i| {
        let pods = pods.clone();
        async move {
            let p: Pod = serde_json::from_value(json!({
                "metadata": {"name": format!("p-{i}")},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                    "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}}}]},
            }))?;
            pods.create(&PostParams::default(), &p).await?;
            Ok(())
        }
    })
    .await?;
    until("bare pods running", || {
        pods_cache.state().iter().filter(|p| running(p)).count() >= total
    })
    .await?;
    rows.push((
        format!("{total} bare pods → Running (baseline)"),
        t.elapsed(),
    ));

    // Deployments.
    namespace(&client, "bench-deploy").await?;
    let pod_cache = cache::<Pod>(&client, "bench-deploy", &mut watches);
    let dep_cache = cache::<Deployment>(&client, "bench-deploy", &mut watches);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "bench-deploy");
    let want = i32::try_from(args.replicas).unwrap_or(i32::MAX);
    let available = |d: &Deployment, image: &str| {
        let s = d.status.clone().unwrap_or_default();
        let tmpl = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        tmpl == image
            && s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(want)
            && s.available_replicas == Some(want)
            && s.replicas == Some(want)
    };
    let t = Instant::now();
    fan_out(args.deployments, args.concurrency, |i| {
        let api = deployments.clone();
        let replicas = args.replicas;
        async move {
            api.create(&PostParams::default(), &deployment(i, replicas)?)
                .await?;
            Ok(())
        }
    })
    .await?;
    let first = "registry.k8s.io/pause:3.9";
    until("deployments available", || {
        let ds = dep_cache.state();
        ds.len() >= args.deployments
            && ds.iter().all(|d| available(d, first))
            && pod_cache.state().iter().filter(|p| running(p)).count() >= total
    })
    .await?;
    rows.push((
        format!(
            "{} Deployments × {} → all available",
            args.deployments, args.replicas
        ),
        t.elapsed(),
    ));

    // Rolling update.
    let second = "registry.k8s.io/pause:3.10";
    let t = Instant::now();
    fan_out(args.deployments, args.concurrency, |i| {
        let api = deployments.clone();
        async move {
            let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": second}]}}}});
            api.patch(&format!("d-{i}"), &PatchParams::default(), &Patch::Strategic(patch))
                .await?;
            Ok(())
        }
    })
    .await?;
    until("rollouts complete", || {
        let ds = dep_cache.state();
        ds.iter().all(|d| available(d, second))
            && pod_cache
                .state()
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .count()
                <= total
    })
    .await?;
    rows.push((
        format!(
            "rolling update of {} Deployments → all rolled out",
            args.deployments
        ),
        t.elapsed(),
    ));

    // Cascading delete.
    let t = Instant::now();
    fan_out(args.deployments, args.concurrency, |i| {
        let api = deployments.clone();
        async move {
            api.delete(&format!("d-{i}"), &DeleteParams::background())
                .await?;
            Ok(())
        }
    })
    .await?;
    until("pods gone", || pod_cache.state().is_empty()).await?;
    rows.push((
        format!("delete {} Deployments → no pod left", args.deployments),
        t.elapsed(),
    ));

    for w in watches {
        w.abort();
    }
    let server_rss = server.rss_mib().1;
    let sim_rss = rss_of(sim.0.id()).1;
    println!();
    println!(
        "rkube bench controllers: {} simulated nodes, {} Deployments × {} replicas ({total} pods), {} writes in flight",
        args.nodes, args.deployments, args.replicas, args.concurrency
    );
    println!();
    println!("| workload | time | pods/s |");
    println!("|---|---|---|");
    for (name, d) in &rows {
        println!(
            "| {name} | {:.1} s | {:.0} |",
            d.as_secs_f64(),
            total as f64 / d.as_secs_f64()
        );
    }
    println!();
    println!(
        "peak RSS: server {server_rss:.0} MiB (API server, scheduler, controllers), simulator {sim_rss:.0} MiB"
    );
    Ok(())
}
