//! A throwaway single-member etcd for tests: loopback ports, a temporary data directory,
//! killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use crate::etcd::EtcdStore;

/// The etcd binary: `$RKUBE_TEST_ETCD` or `etcd` on `PATH` (Debian package `etcd-server`).
const ETCD_ENV: &str = "RKUBE_TEST_ETCD";
const READY_DEADLINE: Duration = Duration::from_secs(30);
const ATTEMPTS: usize = 3;

/// A running etcd. The process is killed (by its PID) and its data removed on drop.
pub struct TestEtcd {
    child: Child,
    /// Client URL, e.g. `http://127.0.0.1:41234`.
    pub endpoint: String,
    /// etcd's own log, for diagnosing a failed test.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestEtcd {
    /// Starts etcd and returns once it answers a real request.
    ///
    /// # Panics
    /// When etcd is not installed (the tests must fail rather than skip: CI installs it), or
    /// does not become ready within 30 s.
    pub async fn start() -> Self {
        let mut last_error = String::new();
        // Ports are picked free but released before etcd binds them, so another process can
        // take one in between; then etcd exits and we try fresh ports.
        for _ in 0..ATTEMPTS {
            match Self::try_start().await {
                Ok(etcd) => return etcd,
                Err(e) => last_error = e,
            }
        }
        panic!("etcd did not start after {ATTEMPTS} attempts: {last_error}");
    }

    async fn try_start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let [client, peer, metrics] = free_ports()?;
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.path().join("etcd.log");
        let binary = std::env::var_os(ETCD_ENV).unwrap_or_else(|| "etcd".into());
        let child = Command::new(&binary)
            .arg("--name=t")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=t={peer_url}"))
            .arg(format!("--listen-metrics-urls=http://127.0.0.1:{metrics}"))
            .arg("--logger=zap")
            .arg(format!("--log-outputs={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary:?} ({e}); the etcd conformance tests need etcd: \
                     `apt-get install etcd-server`, or set {ETCD_ENV} to the binary"
                )
            });
        let mut etcd = Self {
            child,
            endpoint,
            log,
            _dir: dir,
        };
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    /// Polls with a real request until it succeeds, etcd exits, or the deadline passes.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        let endpoints = [self.endpoint.clone()];
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "etcd exited with {status}; log:\n{}",
                    self.log_tail()
                ));
            }
            let attempt =
                tokio::time::timeout(Duration::from_secs(2), EtcdStore::connect(&endpoints)).await;
            if let Ok(Ok(_)) = attempt {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "etcd at {} not ready after {READY_DEADLINE:?}; log:\n{}",
                    self.endpoint,
                    self.log_tail()
                ));
            }
            // Polling interval of the readiness check, not a synchronization sleep.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        // Child::kill signals exactly this process id; wait reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_ports() -> Result<[u16; 3], String> {
    // Hold all three listeners at once so the three ports differ.
    let listeners = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("binding a free port: {e}"))?;
    let mut ports = [0; 3];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(|e| format!("free port: {e}"))?
            .port();
    }
    Ok(ports)
}
