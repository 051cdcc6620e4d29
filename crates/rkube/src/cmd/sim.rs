//! `rkube sim --nodes N`: simulated nodes (like kwok) against a running API server, for
//! scale tests and benchmarks: Nodes with Leases whose bound pods run without containers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;
use tokio_util::sync::CancellationToken;

#[derive(ClapArgs, Debug, Clone)]
pub struct Args {
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The API server's kubeconfig (default: the server's admin kubeconfig in the default
    /// data dir).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Node names are `<prefix><index>`.
    #[arg(long, default_value = "sim-node-")]
    pub name_prefix: String,
    /// Each node's cpu capacity.
    #[arg(long, default_value = "32")]
    pub cpu: String,
    /// Each node's memory capacity.
    #[arg(long, default_value = "256Gi")]
    pub memory: String,
    /// Pods per node.
    #[arg(long, default_value_t = 110)]
    pub pods: u32,
    /// Zones assigned round-robin (`topology.kubernetes.io/zone`).
    #[arg(long, value_delimiter = ',', default_value = "zone-a,zone-b,zone-c")]
    pub zones: Vec<String>,
    /// Extra node labels, `key=value`, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Extended resources every node advertises, `name=quantity` (e.g. `nvidia.com/gpu=4`).
    #[arg(long, value_delimiter = ',')]
    pub extended_resources: Vec<String>,
    /// Seconds a pod with restartPolicy Never/OnFailure runs before it succeeds (a pod's
    /// `sim.rkube.io/run-seconds` annotation overrides it; `sim.rkube.io/exit-code` makes it
    /// fail).
    #[arg(long, default_value_t = 5)]
    pub pod_run_seconds: u64,
    /// Seconds each node Lease lasts (the kubelet's `nodeLeaseDurationSeconds`).
    #[arg(long, default_value_t = 40)]
    pub lease_duration_seconds: u64,
    /// Seconds between a node's Lease renewals (upstream: a quarter of the lease).
    #[arg(long, default_value_t = 10.0)]
    pub lease_renew_seconds: f64,
}

fn pairs(items: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("{what} {kv:?} is not key=value"))
        })
        .collect()
}

pub fn config(args: &Args) -> anyhow::Result<kubelet::SimConfig> {
    Ok(kubelet::SimConfig {
        nodes: args.nodes,
        name_prefix: args.name_prefix.clone(),
        cpu: args.cpu.clone(),
        memory: args.memory.clone(),
        pods: args.pods,
        zones: args.zones.clone(),
        labels: pairs(&args.labels, "label")?,
        extended_resources: pairs(&args.extended_resources, "extended resource")?,
        pod_run_duration: Duration::from_secs(args.pod_run_seconds),
        lease_duration: Duration::from_secs(args.lease_duration_seconds),
        lease_renew_interval: Duration::try_from_secs_f64(args.lease_renew_seconds)
            .context("--lease-renew-seconds")?,
        ..Default::default()
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let path = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| super::server::default_data_dir().join("admin.kubeconfig"));
    let client = super::kube_client(&path).await?;
    let stop = CancellationToken::new();
    let signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        signal.cancel();
    });
    println!("simulating {} nodes against {}", args.nodes, path.display());
    kubelet::run_sim(client, config(&args)?, stop).await?;
    Ok(())
}
