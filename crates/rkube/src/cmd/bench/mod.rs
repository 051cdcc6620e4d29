//! `rkube bench`: benchmarks that run their baselines side by side in the same run.
//!
//! # Layout
//! - `client.rs`: a lean multiplexed HTTP/2 client.
//! - `api.rs`: `rkube bench api`, API throughput/latency per datastore, RSS, start time.
//! - `scheduler.rs`: `rkube bench scheduler`, scheduling throughput on simulated nodes.
//! - `controllers.rs`: `rkube bench controllers`, Deployments converging against bare pods.
//! - `node.rs`: `rkube bench node`, pod startup on containerd against CRI direct.
//! - `proxy.rs`: `rkube bench proxy`, Service rule sync and requests through a ClusterIP.
//! - `procs.rs`: starting servers as child processes, reading their RSS.

mod api;
mod client;
mod controllers;
mod node;
mod procs;
mod proxy;
mod scheduler;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Bench {
    /// API throughput and latency (create/get/list/watch) for the sqlite and etcd
    /// datastores side by side, with the server's RSS and start-to-ready time.
    Api(api::Args),
    /// Pods/s from created to bound on simulated nodes, with the scheduling-attempt latency
    /// and the server's and simulator's peak RSS.
    Scheduler(scheduler::Args),
    /// Time for Deployments to become available, roll out and be deleted on simulated
    /// nodes, against the same number of bare pods.
    Controllers(controllers::Args),
    /// Pod startup latency on this machine's containerd (create -> Running), against the
    /// same pods started straight over CRI, with the agent's and containerd's RSS.
    Node(node::Args),
    /// Service rule-sync latency for N Services x M endpoints (incremental against a full
    /// rewrite), then HTTP request rate through a ClusterIP against the pod IP.
    Proxy(proxy::Args),
}

pub async fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Api(args) => api::run(args).await,
        Bench::Scheduler(args) => scheduler::run(args).await,
        Bench::Controllers(args) => controllers::run(args).await,
        Bench::Node(args) => node::run(args).await,
        Bench::Proxy(args) => proxy::run(args).await,
    }
}

/// p50 and p99 of a set of latencies, in milliseconds.
pub fn percentiles(mut samples: Vec<std::time::Duration>) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i.min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}
