//! The node's networking as one running piece: watches the cluster, keeps the iptables
//! rules (Services, NetworkPolicies) in sync, answers cluster DNS, serves Ingresses, and
//! reports this node's address on Ingresses (the controllers report LoadBalancer Services'
//! addresses: every Ready node's).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Changes, Cluster, Kind};
use crate::iptables::{self, Desired, Runner};
use crate::{NodeInfo, dns, ingress, netpol, services};

/// Which parts run, and where.
#[derive(Clone, Debug)]
pub struct Config {
    pub node: NodeInfo,
    /// Service routing (iptables nat rules).
    pub services: bool,
    /// NetworkPolicy enforcement (iptables filter rules).
    pub network_policy: bool,
    /// Cluster DNS: served on the node's address at this port, reached by pods through
    /// the `kube-system/kube-dns` Service.
    pub dns: Option<DnsConfig>,
    /// The Ingress controller's HTTP and HTTPS ports on every node address.
    pub ingress: Option<(u16, u16)>,
}

#[derive(Clone, Debug)]
pub struct DnsConfig {
    pub port: u16,
    pub domain: String,
    /// The `kube-dns` Service's cluster IP (`10.43.0.10`).
    pub service_ip: Ipv4Addr,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Node {name}: {source}")]
    Node { name: String, source: kube::Error },
    #[error("Node {0} has no IPv4 InternalIP address")]
    NoAddress(String),
    #[error("binding the cluster DNS server on {addr}: {source}")]
    DnsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The running node networking; stops when its token fires.
pub struct NodeProxy {
    tasks: Vec<JoinHandle<()>>,
}

impl NodeProxy {
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The node's addresses, InternalIP first, from its Node object.
pub async fn node_ips(client: &Client, name: &str) -> Result<Vec<Ipv4Addr>, Error> {
    let node = Api::<Node>::all(client.clone())
        .get(name)
        .await
        .map_err(|source| Error::Node {
            name: name.to_string(),
            source,
        })?;
    let mut addrs: Vec<(bool, Ipv4Addr)> = node
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| Some((a.type_ != "InternalIP", a.address.parse().ok()?)))
        .collect();
    addrs.sort_by_key(|(not_internal, _)| *not_internal);
    let ips: Vec<Ipv4Addr> = addrs.into_iter().map(|(_, ip)| ip).collect();
    if ips.is_empty() {
        return Err(Error::NoAddress(name.to_string()));
    }
    Ok(ips)
}

fn write_sysctl(path: &str, value: &str) {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return;
    }
    if let Err(e) = std::fs::write(path, value) {
        tracing::warn!(path, error = %e, "cannot set sysctl");
    }
}

/// Starts everything `cfg` asks for.
pub async fn start(
    client: Client,
    cfg: Config,
    stop: CancellationToken,
) -> Result<NodeProxy, Error> {
    let cluster = Cluster::watch(&client, &stop);
    let mut tasks = Vec::new();
    let node_ip = cfg.node.ips[0];
    let dns_addr = cfg.dns.as_ref().map(|d| SocketAddrV4::new(node_ip, d.port));
    if let (Some(d), Some(addr)) = (&cfg.dns, dns_addr) {
        ensure_dns_service(&client, d.service_ip).await;
        let bind = SocketAddr::V4(addr);
        let udp = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|source| Error::DnsBind { addr: bind, source })?;
        let tcp = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| Error::DnsBind { addr: bind, source })?;
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let upstreams = dns::upstreams_excluding(
            &resolv,
            &[d.service_ip.into(), std::net::IpAddr::V4(node_ip)],
        );
        let (tx, rx) = watch::channel(Arc::new(dns::Records::build(&d.domain, &[], &[])));
        let domain = d.domain.clone();
        let c = cluster.clone();
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let kinds = [Kind::Service, Kind::EndpointSlice, Kind::Namespace];
            let Some(mut changes) = when_ready(&c, &kinds, &s).await else {
                return;
            };
            while next_change(&mut changes, &s).await {
                let records = dns::Records::build(&domain, &c.services.state(), &c.slices.state())
                    .with_namespaces(&c.namespaces.state());
                let _ = tx.send(Arc::new(records));
            }
        }));
        tasks.push(tokio::spawn(dns::serve(
            udp,
            tcp,
            rx,
            upstreams,
            stop.clone(),
        )));
        tracing::info!(%addr, "cluster DNS serving");
    }
    if cfg.services || cfg.network_policy {
        if cfg.services {
            // NodePorts on 127.0.0.1 (kube-proxy sets the same).
            write_sysctl("/proc/sys/net/ipv4/conf/all/route_localnet", "1");
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
        }
        tasks.push(tokio::spawn(sync_rules(
            cluster.clone(),
            cfg.clone(),
            dns_addr,
            stop.clone(),
        )));
    }
    if let Some((http_port, https_port)) = cfg.ingress {
        if let Err(e) = ingress::ensure_class(&client).await {
            tracing::warn!(error = %e, "creating IngressClass rkube");
        }
        let http = tokio::net::TcpListener::bind(("0.0.0.0", http_port)).await;
        let https = tokio::net::TcpListener::bind(("0.0.0.0", https_port)).await;
        match (http, https) {
            (Ok(http), https) => {
                let https = https
                    .inspect_err(|e| tracing::warn!(port = https_port, error = %e, "ingress: HTTPS port unavailable"))
                    .ok();
                let (tx, rx) =
                    watch::channel(Arc::new(ingress::Routes::build(&[], &[], &[], &[], &[])));
                tasks.push(tokio::spawn(ingress::serve(http, https, rx, stop.clone())));
                tasks.push(tokio::spawn(ingress_routes(
                    client.clone(),
                    cluster.clone(),
                    tx,
                    cfg.node.ips.clone(),
                    stop.clone(),
                )));
                tracing::info!(http_port, https_port, "ingress controller serving");
            }
            (Err(e), _) => {
                tracing::warn!(port = http_port, error = %e, "ingress: HTTP port unavailable; no ingress controller on this node")
            }
        }
    }
    Ok(NodeProxy { tasks })
}

/// Creates `kube-system/kube-dns` (no selector: each node's proxy sends it to its own DNS
/// server) unless it exists.
async fn ensure_dns_service(client: &Client, ip: Ipv4Addr) {
    let api: Api<Service> = Api::namespaced(client.clone(), services::DNS_SERVICE.0);
    if let Ok(Some(_)) = api.get_opt(services::DNS_SERVICE.1).await {
        return;
    }
    let svc: Service = match serde_json::from_value(json!({
        "metadata": {"name": services::DNS_SERVICE.1, "namespace": services::DNS_SERVICE.0,
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                       "kubernetes.io/name": "rkube-dns"}},
        "spec": {"clusterIP": ip.to_string(), "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]},
    })) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "kube-dns Service");
            return;
        }
    };
    match api.create(&PostParams::default(), &svc).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => tracing::warn!(error = %e, "creating the kube-dns Service"),
    }
}

/// Everything the iptables rules should be, from the cluster as cached now.
pub fn desired(cluster: &Cluster, cfg: &Config, dns: Option<SocketAddrV4>) -> Desired {
    let mut desired = Desired::default();
    if cfg.services {
        let ports = services::port_rules(
            &cfg.node,
            &cluster.services.state(),
            &cluster.slices.state(),
            dns,
        );
        desired = services::rules(&cfg.node, &ports);
        if let Some(addr) = dns {
            desired
                .chains(iptables::TableName::Filter)
                .entry(services::FIREWALL.to_string())
                .or_default()
                .extend(services::dns_firewall(&cfg.node, addr));
        }
    }
    if cfg.network_policy {
        desired.merge(netpol::rules(
            &cfg.node,
            &cluster.policies.state(),
            &cluster.pods.state(),
            &cluster.namespaces.state(),
        ));
    }
    desired
}

/// Keeps the kernel's rules in step with the cluster: a sync after every change (changes
/// that arrive during a sync are folded into the next), retried after a failure.
async fn sync_rules(
    cluster: Cluster,
    cfg: Config,
    dns: Option<SocketAddrV4>,
    stop: CancellationToken,
) {
    let mut kinds = Vec::new();
    if cfg.services {
        kinds.extend([Kind::Service, Kind::EndpointSlice]);
    }
    if cfg.network_policy {
        kinds.extend([Kind::NetworkPolicy, Kind::Pod, Kind::Namespace]);
    }
    let Some(mut changes) = when_ready(&cluster, &kinds, &stop).await else {
        return;
    };
    let mut runner = Runner::new();
    let mut failed = false;
    loop {
        let retry = tokio::time::sleep(if failed {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        });
        tokio::select! {
            more = next_change(&mut changes, &stop) => if !more { return },
            _ = retry => {}
        }
        let started = Instant::now();
        let want = desired(&cluster, &cfg, dns);
        match runner.sync(&want).await {
            Ok(stats) => {
                failed = false;
                if stats.written + stats.deleted > 0 {
                    tracing::debug!(
                        written = stats.written,
                        deleted = stats.deleted,
                        rules = stats.rules,
                        ms = started.elapsed().as_millis() as u64,
                        "iptables synced"
                    );
                }
            }
            Err(e) => {
                failed = true;
                tracing::warn!(error = %e, "iptables sync failed; retrying");
            }
        }
    }
}

async fn ingress_routes(
    client: Client,
    cluster: Cluster,
    tx: watch::Sender<Arc<ingress::Routes>>,
    ips: Vec<Ipv4Addr>,
    stop: CancellationToken,
) {
    let kinds = [
        Kind::Ingress,
        Kind::IngressClass,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Secret,
    ];
    let Some(mut changes) = when_ready(&cluster, &kinds, &stop).await else {
        return;
    };
    while next_change(&mut changes, &stop).await {
        let routes = Arc::new(ingress::Routes::build(
            &cluster.classes.state(),
            &cluster.ingresses.state(),
            &cluster.services.state(),
            &cluster.slices.state(),
            &cluster.secrets.state(),
        ));
        let _ = tx.send(routes.clone());
        if let Err(e) = ingress::update_status(&client, &routes, &ips).await {
            tracing::debug!(error = %e, "ingress status");
        }
    }
}

/// The change signal for `kinds`, once their watches have their first lists; None if
/// `stop` fires first. Its first [`next_change`] returns at once (build the first state).
async fn when_ready(
    cluster: &Cluster,
    kinds: &[Kind],
    stop: &CancellationToken,
) -> Option<Changes> {
    let changes = cluster.changes(kinds);
    tokio::select! {
        _ = stop.cancelled() => None,
        _ = cluster.ready(kinds) => Some(changes),
    }
}

/// Waits for the next change (changes during the caller's work fold into one); false once
/// `stop` fires or the watches end.
async fn next_change(changes: &mut Changes, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        more = changes.next() => more,
    }
}

/// Removes every rule rkube installed (the node runs without the proxy now).
pub async fn remove_rules() -> Result<(), iptables::Error> {
    let mut hooks = services::hooks();
    hooks.push(netpol::hook());
    iptables::cleanup(None, &hooks).await
}
