//! `rkube server` as a child process for benchmarks (etcd comes from
//! `store::conformance::TestEtcd`, the same throwaway etcd the tests use).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running `rkube server` child.
pub struct ServerProc {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    /// From spawn to the "ready" line (the API is listening and serving).
    pub start_to_ready: Duration,
}

impl ServerProc {
    /// A control plane without a node agent.
    pub fn start(data_dir: &Path, extra: &[String]) -> anyhow::Result<ServerProc> {
        let mut args = vec!["--disable-agent".to_string()];
        args.extend_from_slice(extra);
        Self::launch(data_dir, &args)
    }

    pub fn launch(data_dir: &Path, extra: &[String]) -> anyhow::Result<ServerProc> {
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe()?)
            .args(["server", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting rkube server")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line?;
            if let Some(rest) = line.strip_prefix("rkube API server ready at ") {
                url = rest.split_whitespace().next().map(String::from);
                break;
            }
        }
        let start_to_ready = started.elapsed();
        let url = url.context("the server exited before it was ready")?;
        std::thread::spawn(move || for _ in lines {});
        Ok(ServerProc {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            start_to_ready,
        })
    }

    /// Resident set size now and at its peak, in MiB (from /proc).
    pub fn rss_mib(&self) -> (f64, f64) {
        rss_of(self.child.id())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
