//! A real API server for other crates' tests (feature `testing`): memory store, a free
//! loopback port, a temporary data directory, and a kube-rs client with its admin
//! credential.

use crate::{Config, Running};

/// Starts the server; it serves until `Running::stop` fires, its data directory lives as
/// long as the returned `TempDir`.
pub async fn memory_server() -> (Running, kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = crate::start(Config {
        data_dir: dir.path().to_path_buf(),
        bind: "127.0.0.1:0".parse().expect("addr"),
        datastore: store::Backend::Memory,
        settings: Default::default(),
        extra_sans: vec![],
    })
    .await
    .expect("API server starts");
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    let client = kube::Client::try_from(config).expect("client");
    (server, client, dir)
}
