//! `rkube agent --server URL --token T`: a node agent on its own, and the node flags
//! `rkube server` shares for the agent it runs itself.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use tokio_util::sync::CancellationToken;

/// How the node agent runs (shared by `rkube server` and `rkube agent`).
#[derive(ClapArgs, Debug, Clone)]
pub struct NodeArgs {
    /// The Node's name (default: this machine's hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The Node's InternalIP (default: the address of the default route's interface).
    #[arg(long)]
    pub node_ip: Option<Ipv4Addr>,
    /// The kubelet API's port (0: any free port).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// containerd's socket; when nothing answers there, the agent starts containerd itself.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// OCI image archives (`*.tar`) to import into a containerd the agent starts.
    #[arg(long)]
    pub agent_images: Option<PathBuf>,
    /// Where container logs are written.
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_log_dir: PathBuf,
    /// The node's pod CIDR (the pod network hands addresses from it).
    #[arg(long, default_value = "10.42.0.0/24")]
    pub pod_cidr: kubelet::Ipv4Cidr,
    /// Cluster DNS servers for pods with `dnsPolicy: ClusterFirst` (default: the cluster
    /// DNS Service, 10.43.0.10, unless `--disable dns`, when pods use the node's
    /// resolv.conf).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The cluster's pod network (every node's pod CIDR lies inside it).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: kubelet::Ipv4Cidr,
    /// Node networking parts not to run (comma-separated): `proxy` (Service routing),
    /// `network-policy`, `dns` (cluster DNS), `ingress` (the Ingress controller).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub disable: Vec<Part>,
    /// The port the node's cluster DNS server listens on (pods reach it as
    /// 10.43.0.10:53).
    #[arg(long, default_value_t = 10053)]
    pub cluster_dns_port: u16,
    /// The Ingress controller's HTTP port.
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// The Ingress controller's HTTPS port.
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
    /// Disk usage (percent of the image filesystem) at which unused images are removed;
    /// 100 never removes any.
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_high_threshold: u8,
    /// Disk usage that image garbage collection frees down to.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,
}

/// A node networking part that `--disable` turns off.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Proxy,
    NetworkPolicy,
    Dns,
    Ingress,
}

/// The cluster DNS Service's address (k3s's).
pub const CLUSTER_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);

impl NodeArgs {
    fn enabled(&self, part: Part) -> bool {
        !self.disable.contains(&part)
    }

    /// Starts the node's networking (Service routing, NetworkPolicy, DNS, Ingress) for
    /// Node `node_name`, whose agent has registered it.
    pub async fn start_networking(
        &self,
        client: kube::Client,
        node_name: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<proxy::node::NodeProxy> {
        let ips = proxy::node::node_ips(&client, node_name).await?;
        let cfg = proxy::node::Config {
            node: proxy::NodeInfo {
                name: node_name.to_string(),
                ips,
                cluster_cidr: (self.cluster_cidr.addr, self.cluster_cidr.prefix),
            },
            services: self.enabled(Part::Proxy),
            network_policy: self.enabled(Part::NetworkPolicy),
            dns: self.enabled(Part::Dns).then(|| proxy::node::DnsConfig {
                port: self.cluster_dns_port,
                domain: self.cluster_domain.clone(),
                service_ip: CLUSTER_DNS_IP,
            }),
            ingress: self
                .enabled(Part::Ingress)
                .then_some((self.ingress_http_port, self.ingress_https_port)),
        };
        if !cfg.services && !cfg.network_policy {
            // Rules an earlier run left behind would route (or block) stale traffic.
            if let Err(e) = proxy::node::remove_rules().await {
                tracing::debug!(error = %e, "removing rkube's iptables rules");
            }
        }
        proxy::node::start(client, cfg, stop)
            .await
            .context("starting the node's networking")
    }

    /// The agent's settings; its state lives in `<data_dir>/agent`.
    pub fn config(&self, data_dir: &std::path::Path, token: String) -> kubelet::AgentConfig {
        let mut cfg = kubelet::AgentConfig::new(data_dir.join("agent"), token);
        cfg.node_name = self.node_name.clone();
        cfg.node_ip = self.node_ip;
        cfg.kubelet_port = self.kubelet_port;
        cfg.containerd_socket = self.containerd_socket.clone();
        cfg.images_dir = self.agent_images.clone();
        cfg.log_root = self.pod_log_dir.clone();
        cfg.pod_cidr = self.pod_cidr;
        cfg.cluster_dns = self.cluster_dns.clone();
        if cfg.cluster_dns.is_empty() && self.enabled(Part::Dns) {
            cfg.cluster_dns = vec![CLUSTER_DNS_IP.to_string()];
        }
        cfg.cluster_domain = self.cluster_domain.clone();
        cfg.image_gc_high_threshold = self.image_gc_high_threshold;
        cfg.image_gc_low_threshold = self.image_gc_low_threshold;
        cfg
    }
}

#[derive(ClapArgs, Debug, Clone)]
pub struct Args {
    /// The API server, e.g. `https://10.0.0.1:6443`.
    #[arg(long)]
    pub server: String,
    /// The join token: the server's `DATA_DIR/node-token` (`K10<CA hash>::<secret>`; the
    /// CA is fetched and checked against the hash), or the bare secret with `--ca-file`.
    #[arg(long)]
    pub token: String,
    /// The cluster CA certificate (the server's `DATA_DIR/tls/ca.crt`), instead of fetching
    /// it.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Where the agent keeps its state (default: /var/lib/rkube as root).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The cluster CA from the server's `/cacerts`, trusted only if its hash is the one in
/// the join token.
async fn fetch_ca(url: &http::Uri, hash: &str) -> anyhow::Result<String> {
    let mut config = kube::Config::new(url.clone());
    config.accept_invalid_certs = true;
    let client = kube::Client::try_from(config).context("building the API client")?;
    let req = http::Request::get("/cacerts").body(Vec::new())?;
    let pem = client
        .request_text(req)
        .await
        .context("fetching the cluster CA from /cacerts")?;
    anyhow::ensure!(
        apiserver::tls::sha256_hex(pem.as_bytes()) == hash,
        "the server's CA certificate does not match the hash in the join token"
    );
    Ok(pem)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let url: http::Uri = args
        .server
        .parse()
        .with_context(|| format!("--server {:?} is not a URL", args.server))?;
    let (hash, secret) = apiserver::tls::parse_join_token(&args.token);
    let pem = match (&args.ca_file, hash) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the CA file {}", path.display()))?,
        (None, Some(hash)) => fetch_ca(&url, hash).await?,
        (None, None) => anyhow::bail!(
            "pass the join token from the server's DATA_DIR/node-token (it carries the CA's hash), or --ca-file"
        ),
    };
    if let Some(hash) = hash {
        anyhow::ensure!(
            apiserver::tls::sha256_hex(pem.as_bytes()) == hash,
            "the CA certificate does not match the hash in the join token"
        );
    }
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the CA holds no PEM certificate")?;
    let mut config = kube::Config::new(url);
    config.auth_info.token = Some(secret.to_string().into());
    config.root_cert = Some(certs.into_iter().map(|c| c.to_vec()).collect());
    let client = kube::Client::try_from(config).context("building the API client")?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(super::server::default_data_dir);
    let stop = CancellationToken::new();
    let agent_client = client.clone();
    let agent = kubelet::Agent::start(
        client,
        args.node.config(&data_dir, secret.to_string()),
        stop.clone(),
    )
    .await
    .context("starting the node agent")?;
    println!("rkube node agent ready: node {}", agent.node_name);
    let networking = args
        .node
        .start_networking(agent_client, &agent.node_name, stop.clone())
        .await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    stop.cancel();
    agent.join().await;
    networking.join().await;
    Ok(())
}
