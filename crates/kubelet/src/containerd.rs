//! containerd for the agent: the one already answering on the socket, or (k3s style) one
//! the agent starts and supervises as its child with its own config, state and pod network,
//! importing the OCI archives it is given.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::agent::AgentConfig;

pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";
/// The pause image sandboxes run (containerd's `sandbox_image`, imported locally).
pub const SANDBOX_IMAGE: &str = "localhost/pause:3.9";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no container runtime answers on unix://{socket} and containerd is not installed; install it with `apt-get install containerd runc containernetworking-plugins iptables` (scripts/node-setup.sh does that and starts it), or run `rkube server --disable-agent`"
    )]
    NotInstalled { socket: PathBuf },
    #[error("starting containerd: {0}")]
    Spawn(std::io::Error),
    #[error("containerd exited before it answered on unix://{socket}; its log: {log}")]
    Died { socket: PathBuf, log: PathBuf },
    #[error("containerd did not answer on unix://{socket} within {secs} s; its log: {log}")]
    Timeout {
        socket: PathBuf,
        secs: u64,
        log: PathBuf,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("importing {archive}: {why}")]
    Import { archive: PathBuf, why: String },
}

/// A containerd this agent started; killed when dropped.
pub struct Supervised {
    child: Child,
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn answers(socket: &Path) -> bool {
    tokio::net::UnixStream::connect(socket).await.is_ok()
}

fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// The node set-up's own files (`scripts/node-setup.sh` installs them for a containerd it
/// starts); a supervised containerd gets the same, with its paths moved.
const NODE_CONFIG: &str = include_str!("../../../scripts/node/containerd.toml");
const NODE_CONFLIST: &str = include_str!("../../../scripts/node/10-rkube.conflist");

/// containerd's config for a supervised instance: `scripts/node/containerd.toml` with
/// state under `dir`, its socket at `socket` and its CNI config in `cni_conf`.
fn config(dir: &Path, socket: &Path, cni_conf: &Path) -> String {
    let set = |text: String, key: &str, from: &str, to: &Path| {
        text.replace(
            &format!("{key} = \"{from}\""),
            &format!("{key} = \"{}\"", to.display()),
        )
    };
    let text = set(
        NODE_CONFIG.to_string(),
        "root",
        "/var/lib/containerd",
        &dir.join("root"),
    );
    let text = set(text, "state", "/run/containerd", &dir.join("state"));
    let text = set(text, "address", DEFAULT_SOCKET, socket);
    set(text, "conf_dir", "/etc/cni/net.d", cni_conf)
}

/// The pod network of `scripts/node/10-rkube.conflist` (a bridge with host-local
/// addresses) on the node's pod CIDR.
fn conflist(cfg: &AgentConfig) -> Result<String, Error> {
    let bad = |why: String| Error::Write {
        path: PathBuf::from("10-rkube.conflist"),
        source: std::io::Error::other(why),
    };
    let mut list: serde_json::Value =
        serde_json::from_str(NODE_CONFLIST).map_err(|e| bad(e.to_string()))?;
    let range = list
        .pointer_mut("/plugins/0/ipam/ranges/0/0")
        .ok_or_else(|| bad("no ipam range".into()))?;
    let gateway = cfg.pod_cidr.nth(1).unwrap_or(cfg.pod_cidr.addr);
    range["subnet"] = serde_json::json!(cfg.pod_cidr.to_string());
    range["gateway"] = serde_json::json!(gateway.to_string());
    serde_json::to_string_pretty(&list).map_err(|e| bad(e.to_string()))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Uses the containerd on `cfg.containerd_socket`, or starts one. `None` when one was
/// already there.
pub async fn ensure(
    cfg: &AgentConfig,
    stop: &CancellationToken,
) -> Result<Option<Supervised>, Error> {
    let socket = &cfg.containerd_socket;
    if answers(socket).await {
        return Ok(None);
    }
    let Some(bin) = which("containerd") else {
        return Err(Error::NotInstalled {
            socket: socket.clone(),
        });
    };
    let dir = cfg.dir.join("containerd");
    let cni = dir.join("cni");
    write(&cni.join("10-rkube.conflist"), &conflist(cfg)?)?;
    let config_path = dir.join("config.toml");
    write(&config_path, &config(&dir, socket, &cni))?;
    let log = dir.join("containerd.log");
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|source| Error::Write {
            path: log.clone(),
            source,
        })?;
    let err_file = log_file.try_clone().map_err(Error::Spawn)?;
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::Spawn)?;
    tracing::info!(pid = child.id(), socket = %socket.display(), "started containerd");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if answers(socket).await {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return Err(Error::Died {
                socket: socket.clone(),
                log,
            });
        }
        if tokio::time::Instant::now() > deadline || stop.is_cancelled() {
            let _ = child.start_kill();
            return Err(Error::Timeout {
                socket: socket.clone(),
                secs: 20,
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(images) = &cfg.images_dir {
        import_images(socket, images).await?;
    }
    Ok(Some(Supervised { child }))
}

/// Imports every `*.tar` OCI archive of `dir` into containerd's `k8s.io` namespace.
async fn import_images(socket: &Path, dir: &Path) -> Result<(), Error> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let archive = e.path();
        if archive.extension().and_then(|x| x.to_str()) != Some("tar") {
            continue;
        }
        let out = Command::new("ctr")
            .arg("--address")
            .arg(socket)
            .args([
                "-n",
                "k8s.io",
                "images",
                "import",
                "--platform",
                "linux/amd64",
            ])
            .arg(&archive)
            .output()
            .await
            .map_err(|e| Error::Import {
                archive: archive.clone(),
                why: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Import {
                archive,
                why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supervised_containerd_gets_the_node_config_with_its_own_paths() {
        let text = config(
            Path::new("/d/containerd"),
            Path::new("/d/c.sock"),
            Path::new("/d/containerd/cni"),
        );
        for want in [
            "root = \"/d/containerd/root\"",
            "state = \"/d/containerd/state\"",
            "address = \"/d/c.sock\"",
            "conf_dir = \"/d/containerd/cni\"",
            &format!("sandbox_image = \"{SANDBOX_IMAGE}\""),
            "restrict_oom_score_adj = true",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        assert!(!text.contains("/var/lib/containerd") && !text.contains("/etc/cni/net.d"));
    }

    #[test]
    fn the_pod_network_takes_the_node_pod_cidr() {
        let mut cfg = AgentConfig::new(PathBuf::from("/d"), String::new());
        cfg.pod_cidr = "10.42.7.0/24".parse().expect("cidr");
        let list: serde_json::Value =
            serde_json::from_str(&conflist(&cfg).expect("conflist")).expect("json");
        let range = &list["plugins"][0]["ipam"]["ranges"][0][0];
        assert_eq!(range["subnet"], "10.42.7.0/24");
        assert_eq!(range["gateway"], "10.42.7.1");
        assert_eq!(list["plugins"][0]["bridge"], "cni0");
    }
}
