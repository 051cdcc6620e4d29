//! `rkube server`: the control plane in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args as ClapArgs, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Datastore {
    Sqlite,
    Memory,
    Etcd,
}

#[derive(ClapArgs, Debug, Clone)]
pub struct Args {
    /// Where state, certificates and the admin kubeconfig live
    /// (default: /var/lib/rkube as root, else ~/.local/share/rkube).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub bind: SocketAddr,
    /// Storage backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub datastore: Datastore,
    /// etcd endpoints (comma-separated) for `--datastore etcd`.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub datastore_endpoint: Vec<String>,
    /// Extra names or IPs for the serving certificate.
    #[arg(long = "tls-san", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Events kept per resource for watches resuming from a resourceVersion.
    #[arg(long, default_value_t = 10_000)]
    pub watch_cache_size: usize,
    /// Seconds between watch bookmarks.
    #[arg(long, default_value_t = 60)]
    pub bookmark_interval: u64,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Do not run the controllers in this process.
    #[arg(long)]
    pub disable_controllers: bool,
    /// Controllers to run: `*` for all, a name to enable one, `-name` to disable one
    /// (kube-controller-manager's `--controllers`).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// How long a node may stay silent (no Lease renewal) before it is marked Unknown and
    /// tainted unreachable: `50s`, `2m`, `500ms`.
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// How often the node lifecycle controller checks nodes.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: std::time::Duration,
    /// A KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1) for the scheduler.
    #[arg(long)]
    pub scheduler_config: Option<PathBuf>,
    /// Do not run a node agent in this process (no pods run on this machine).
    #[arg(long)]
    pub disable_agent: bool,
    #[command(flatten)]
    pub node: super::agent::NodeArgs,
}

/// A Go-style duration with one unit: `50s`, `2m`, `500ms`, `1h`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{s:?} needs a unit (ms, s, m, h)"))?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| format!("{s:?} is not a duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

pub fn default_data_dir() -> PathBuf {
    if std::env::var("USER").as_deref() == Ok("root") || is_root() {
        PathBuf::from("/var/lib/rkube")
    } else {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/rkube")
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

pub fn config(args: &Args) -> apiserver::Config {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let datastore = match args.datastore {
        Datastore::Sqlite => store::Backend::Sqlite(data_dir.join("db").join("state.db")),
        Datastore::Memory => store::Backend::Memory,
        Datastore::Etcd => store::Backend::Etcd(args.datastore_endpoint.clone()),
    };
    apiserver::Config {
        data_dir,
        bind: args.bind,
        datastore,
        settings: apiserver::Settings {
            watch_cache_capacity: args.watch_cache_size,
            bookmark_interval: std::time::Duration::from_secs(args.bookmark_interval.max(1)),
            ..Default::default()
        },
        extra_sans: args.tls_san.clone(),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = config(&args);
    // A bad scheduler configuration fails the start before anything listens.
    let sched_config = match &args.scheduler_config {
        Some(path) => scheduler::load_config(path)
            .with_context(|| format!("scheduler config {}", path.display()))?,
        None => scheduler::SchedulerConfig::default(),
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let running = apiserver::start(config)
        .await
        .context("starting the API server")?;
    tracing::info!(
        addr = %running.addr,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "API server ready"
    );
    println!(
        "rkube API server ready at {} ({} ms)",
        apiserver::server_url(running.addr),
        started.elapsed().as_millis()
    );
    println!("kubeconfig: {}", running.kubeconfig.display());
    println!(
        "try: KUBECONFIG={} kubectl get namespaces",
        running.kubeconfig.display()
    );
    // The scheduler is an API client like any other, so it could run anywhere; here it
    // shares the process and stops with the server.
    let scheduler = if args.disable_scheduler {
        None
    } else {
        let client = super::kube_client(&running.kubeconfig).await?;
        let sched =
            scheduler::Scheduler::new(client, sched_config).context("scheduler profiles")?;
        // Its counters show in the API server's /metrics.
        running.state.metrics.register(Box::new(sched.metrics()));
        Some(tokio::spawn(sched.run(running.stop.clone())))
    };
    // Controllers likewise: API clients, leader-elected through a Lease in kube-system.
    // They stop before the API does, so they can hand their Lease back.
    let controllers_stop = running.stop.child_token();
    let controllers = if args.disable_controllers {
        None
    } else {
        let client = super::kube_client(&running.kubeconfig).await?;
        let config = controllers::Config {
            enabled: args.controllers.clone(),
            node_monitor_grace_period: args.node_monitor_grace_period,
            node_monitor_period: args.node_monitor_period,
            ..Default::default()
        };
        Some(tokio::spawn(controllers::run(
            client,
            config,
            controllers_stop.clone(),
        )))
    };
    // The node agent: this machine as a Node whose pods run through containerd.
    let agent_stop = running.stop.child_token();
    let agent = if args.disable_agent {
        None
    } else {
        let client = super::kube_client(&running.kubeconfig).await?;
        let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
        let cfg = args.node.config(&data_dir, running.state.token.clone());
        let agent = kubelet::Agent::start(client.clone(), cfg, agent_stop.clone())
            .await
            .context("starting the node agent (--disable-agent runs without one)")?;
        println!("node agent ready: node {}", agent.node_name);
        let networking = args
            .node
            .start_networking(client, &agent.node_name, agent_stop.clone())
            .await?;
        Some((agent, networking))
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    // Pods keep running: a restarted agent adopts them.
    agent_stop.cancel();
    if let Some((agent, networking)) = agent {
        agent.join().await;
        networking.join().await;
    }
    controllers_stop.cancel();
    if let Some(task) = controllers {
        let _ = task.await;
    }
    running.stop.cancel();
    if let Some(task) = scheduler
        && let Ok(Err(e)) = task.await
    {
        tracing::warn!(error = %e, "scheduler stopped with an error");
    }
    let _ = running.task.await;
    Ok(())
}
