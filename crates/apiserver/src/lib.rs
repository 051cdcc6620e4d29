//! The rkube API server: Kubernetes' REST API over a revisioned store.
//!
//! # Layout
//! - `lib.rs`: [`Config`] and [`start`], which wires the pieces and serves.
//! - `server.rs`: TLS accept loop, authentication, routing.
//! - `request.rs`: path → `RequestInfo` (verb, group, version, namespace, resource, name).
//! - `rest/`: the REST verbs, one file each, and the shared write path.
//! - `cache.rs`: the watch cache that serves GET, LIST and WATCH.
//! - `strategy.rs`: per-kind create/update rules (server-set metadata, status split).
//! - `table/`: server-side printing (`Table` for kubectl `get`) and its `Accept` negotiation.
//! - `admission.rs`: defaulting, validation and namespace checks on writes; CRD wiring.
//! - `patching.rs`: JSON, merge and strategic merge patches.
//! - `discovery.rs`, `openapi.rs`, `docs.rs`: discovery and OpenAPI documents and their
//!   caching and serving.
//! - `codec.rs`: bodies, media types, `Status` responses.
//! - `protobuf/`: Kubernetes protobuf request bodies → JSON.
//! - `tls.rs`: the cluster CA, serving certificate and admin kubeconfig.
//! - `allocator.rs`: Service cluster IPs and node ports.
//! - `bootstrap.rs`: the system namespaces and the `kubernetes` Service.
//! - `kubelet_client.rs`: where a node's agent listens, and HTTPS requests to it.
//! - `metrics.rs`: Prometheus `/metrics` (request counts and latencies, stored objects).
//! - `resource_metrics/`: the `metrics.k8s.io` API (`kubectl top`) from the agents' stats.

pub mod admission;
pub mod allocator;
pub mod bootstrap;
pub mod cache;
pub mod codec;
pub mod discovery;
pub mod docs;
pub mod kubelet_client;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod patching;
pub mod protobuf;
pub mod request;
pub mod resource_metrics;
pub mod rest;
pub mod server;
pub mod state;
pub mod strategy;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use apimachinery::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use state::{ApiState, Settings};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening the datastore")]
    OpenStore(#[source] store::Error),
    #[error("loading objects into the watch cache")]
    StartCache(#[source] store::Error),
    #[error("creating the system namespaces")]
    Bootstrap(#[source] store::Error),
    #[error("setting up TLS")]
    Tls(#[from] tls::Error),
    #[error("listening on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading custom resource definitions")]
    LoadCrds(#[source] store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to run an API server.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub datastore: store::Backend,
    pub settings: Settings,
    /// Extra subject alternative names for the serving certificate.
    pub extra_sans: Vec<String>,
}

/// A started API server.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub state: Arc<ApiState>,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// The URL clients use for an address (a wildcard bind is reached on loopback).
pub fn server_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("https://{host}:{}", addr.port())
}

/// Opens the store, loads the watch cache, writes credentials and starts serving.
/// Returns once the API answers requests.
pub async fn start(config: Config) -> Result<Running> {
    let stop = CancellationToken::new();
    let store = store::open(&config.datastore)
        .await
        .map_err(Error::OpenStore)?;
    let mut registry = Registry::builtin();
    bootstrap::ensure_namespaces(&registry, store.as_ref())
        .await
        .map_err(Error::Bootstrap)?;
    let custom = admission::load_custom_resources(&registry, store.as_ref())
        .await
        .map_err(Error::LoadCrds)?;
    if !custom.is_empty() {
        registry = registry.with_custom(custom);
    }
    // Like kine: drop history older than the last 1000 revisions every 5 minutes.
    store::spawn_compactor(
        &store,
        store::DEFAULT_COMPACT_INTERVAL,
        store::DEFAULT_KEEP_REVISIONS,
    );
    let cache = cache::WatchCache::start(
        store.clone(),
        config.settings.watch_cache_capacity,
        stop.clone(),
    )
    .await
    .map_err(Error::StartCache)?;
    let pki = tls::load_or_create(&config.data_dir.join("tls"), &config.extra_sans)?;
    let token_path = config.data_dir.join("token");
    let token = match std::fs::read_to_string(&token_path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = tls::random_token();
            tls::write_private(&token_path, &t)?;
            t
        }
    };
    // What `rkube agent --token` takes: the CA's hash (a joining node checks `/cacerts`
    // against it) and the secret, in k3s's `K10<sha256>::<secret>` form.
    tls::write_private(
        &config.data_dir.join("node-token"),
        &tls::join_token(&pki.ca_cert, &token),
    )?;
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| Error::Listen {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.bind,
        source,
    })?;
    bootstrap::ensure_kubernetes_service(&registry, store.as_ref(), addr)
        .await
        .map_err(Error::Bootstrap)?;
    let kubeconfig = config.data_dir.join("admin.kubeconfig");
    tls::write_private(
        &kubeconfig,
        &tls::kubeconfig(&server_url(addr), &pki.ca_cert, &token),
    )?;
    let advertise = server_url(addr).trim_start_matches("https://").to_string();
    let state = Arc::new(
        ApiState::new(
            registry,
            store,
            cache,
            token,
            config.settings.clone(),
            advertise,
        )
        .with_ca(pki.ca_cert.clone()),
    );
    let tls_config = tls::server_config(&pki)?;
    let task = tokio::spawn(server::serve(
        listener,
        tls_config,
        state.clone(),
        stop.clone(),
    ));
    Ok(Running {
        addr,
        kubeconfig,
        state,
        stop,
        task,
    })
}
