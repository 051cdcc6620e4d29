//! One file per CLI verb.

pub mod agent;
pub mod bench;
pub mod server;
pub mod sim;

use anyhow::Context;

/// A kube-rs client from a kubeconfig file: how every component other than the API server
/// reaches it, even inside the server's own process.
pub async fn kube_client(path: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}
