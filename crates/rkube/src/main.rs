//! `rkube`: one binary for the whole cluster.
//!
//! # Layout
//! - `main.rs`: the CLI (clap) and logging set-up.
//! - `cmd/server.rs`: `rkube server`, the control plane.
//! - `cmd/agent.rs`: `rkube agent`, a node agent alone (and the node flags of `server`).
//! - `cmd/sim.rs`: `rkube sim`, simulated nodes.
//! - `cmd/bench/`: `rkube bench`, the benchmarks quoted in the README.

mod cmd;

/// mimalloc instead of glibc's allocator: the API server allocates small objects from many
/// threads at once, where glibc's arenas showed up as ~12% of a create benchmark's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rkube",
    version,
    about = "A Kubernetes-compatible container orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server, scheduler, controllers) and a node agent.
    Server(cmd::server::Args),
    /// Run a node agent alone, joining a running server.
    Agent(cmd::agent::Args),
    /// Simulated nodes (like kwok) against a running API server.
    Sim(cmd::sim::Args),
    /// Run a benchmark and print its report.
    #[command(subcommand)]
    Bench(cmd::bench::Bench),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => cmd::server::run(args).await,
            Command::Agent(args) => cmd::agent::run(args).await,
            Command::Sim(args) => cmd::sim::run(args).await,
            Command::Bench(b) => cmd::bench::run(b).await,
        }
    })
}
