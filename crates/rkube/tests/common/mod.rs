//! Shared harness for end-to-end tests: a real `rkube server` process on a free port with
//! a temporary data dir, and the real kubectl pointed at it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub kubeconfig: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `rkube server` on a free loopback port with a fresh data dir.
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts `rkube server` on a free port over an existing data dir, without a node
    /// agent (no containers run).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--disable-agent"];
        args.extend_from_slice(extra);
        Self::launch(dir, &args)
    }

    /// Starts `rkube server` with its node agent on this machine's containerd (see
    /// scripts/node-setup.sh): the kubelet API on a free port, logs under the data dir.
    pub fn start_node(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_node_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// [`Server::start_node`] over an existing data dir (a restart keeps the node's pods).
    /// The node's networking (Service rules, DNS, NetworkPolicy, Ingress) stays off: those
    /// own host-wide iptables chains and ports, so only [`Server::start_networked`] (whose
    /// tests run one at a time) turns them on.
    pub fn start_node_in(dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec!["--disable", "proxy,network-policy,dns,ingress"];
        args.extend_from_slice(extra);
        Self::launch_node(dir, &args)
    }

    /// [`Server::start_node`] with the node's networking on: Service routing, cluster DNS,
    /// NetworkPolicy and the Ingress controller on ports 80/443.
    pub fn start_networked(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::launch_node(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    fn launch_node(dir: &Path, extra: &[&str]) -> Server {
        let logs = dir.join("pod-logs");
        let logs = logs.to_str().expect("utf-8 path");
        let mut args = vec!["--kubelet-port", "0", "--pod-log-dir", logs];
        // The machine's images cannot be pulled again: no image garbage collection on the
        // shared containerd, whatever the disk looks like.
        if !extra.iter().any(|a| a.starts_with("--image-gc")) {
            args.extend(["--image-gc-high-threshold", "100"]);
        }
        args.extend_from_slice(extra);
        Self::launch(dir, &args)
    }

    fn launch(dir: &Path, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args(["server", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn rkube server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut url = None;
        while Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("rkube API server ready at ") {
                        url = rest.split_whitespace().next().map(String::from);
                        break;
                    }
                }
                _ => break,
            }
        }
        let url = url.expect("server printed its ready line");
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            url,
            data_dir: dir.to_path_buf(),
            kubeconfig: dir.join("admin.kubeconfig"),
            _tmp: None,
        }
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs the real kubectl (1.33 when installed beside the default one) against this
    /// server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_path());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("token"))
            .expect("token")
            .trim()
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// kubectl 1.33 from beside the default kubectl (`kubectl.1.33`), else `kubectl`.
pub fn kubectl_path() -> PathBuf {
    kubectl_version("1.33")
}

pub fn kubectl_version(v: &str) -> PathBuf {
    let default = which("kubectl").unwrap_or_else(|| PathBuf::from("kubectl"));
    let real = std::fs::canonicalize(&default).unwrap_or(default.clone());
    let versioned = real.with_file_name(format!("kubectl.{v}"));
    if versioned.exists() {
        versioned
    } else {
        default
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// The shared seed manifests (`../shared/manifests` beside the repository).
pub fn manifests_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    root.join("shared/manifests")
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP response read by curl.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Server {
    /// A raw request with curl (HTTP/2, the cluster CA, the admin token).
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>, content_type: &str) -> Reply {
        self.curl_with(method, path, body, content_type, true)
    }

    pub fn curl_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        content_type: &str,
        auth: bool,
    ) -> Reply {
        let ca = self.data_dir.join("tls/ca.crt");
        let hdr = tempfile::NamedTempFile::new().expect("temp");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--http2", "-X", method, "--cacert"])
            .arg(&ca)
            .args(["-D"])
            .arg(hdr.path())
            .args([
                "-w",
                "\n%{http_code}",
                "-H",
                &format!("Content-Type: {content_type}"),
            ]);
        if auth {
            cmd.args(["-H", &format!("Authorization: Bearer {}", self.token())]);
        }
        if let Some(_b) = body {
            cmd.args(["--data-binary", "@-"]);
            cmd.stdin(Stdio::piped());
        }
        cmd.arg(format!("{}{}", self.url, path))
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("curl");
        if let Some(b) = body {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b.as_bytes())
                .expect("write");
        }
        let out = child.wait_with_output().expect("curl output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Reply {
            status: code.trim().parse().unwrap_or(0),
            body: body.to_string(),
            headers: std::fs::read_to_string(hdr.path()).unwrap_or_default(),
        }
    }

    /// Streams a watch with curl for at most `secs` seconds; returns its event lines.
    pub fn watch_lines(&self, path: &str, secs: u64) -> Vec<serde_json::Value> {
        let ca = self.data_dir.join("tls/ca.crt");
        let out = Command::new("curl")
            .args([
                "-sS",
                "-N",
                "--http2",
                "--max-time",
                &secs.to_string(),
                "--cacert",
            ])
            .arg(&ca)
            .args(["-H", &format!("Authorization: Bearer {}", self.token())])
            .arg(format!("{}{}", self.url, path))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad watch line {l:?}: {e}"))
            })
            .collect()
    }
}

impl Server {
    /// `kubectl edit`-style commands with `KUBE_EDITOR` set to a shell command.
    pub fn kubectl_editor(&self, args: &[&str], editor: &str) -> String {
        let out = Command::new(kubectl_path())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBE_EDITOR", editor)
            .output()
            .expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `rkube sim` against a server: simulated nodes that run pods without containers.
pub struct Sim(pub Child);

impl Sim {
    pub fn start(s: &Server, args: &[&str]) -> Sim {
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("sim")
            .args(args)
            .arg("--kubeconfig")
            .arg(&s.kubeconfig)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn rkube sim");
        Sim(child)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn ready_nodes(s: &Server, n: usize) {
    wait_for(Duration::from_secs(60), &format!("{n} Ready nodes"), || {
        let ready = jsonpath(
            s,
            &["get", "nodes"],
            r#"{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}"#,
        );
        (ready.split_whitespace().filter(|r| *r == "True").count() == n).then_some(())
    });
}

pub fn apply(s: &Server, manifest: &str) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
    assert!(out.status.success(), "{out:?}");
}

/// `kubectl … -o jsonpath=…`, trimmed.
pub fn jsonpath(s: &Server, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let expr = format!("jsonpath={path}");
    all.extend(["-o", &expr]);
    let out = s.kubectl(&all);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A kube client from the server's admin kubeconfig.
pub async fn client(s: &Server) -> kube::Client {
    client_from(&s.kubeconfig).await
}

pub async fn client_from(path: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

// A server with its node agent on this machine's containerd (tests of real pods).

pub const MINUTE: Duration = Duration::from_secs(60);

/// A server with its node agent, returned once its node is Ready, that, when dropped,
/// deletes every pod and waits for the agent to remove their containers, so no test leaves
/// containers running on the machine.
pub struct Node(pub Server);

impl Node {
    pub fn start(extra: &[&str]) -> Node {
        Self::ready(Server::start_node(extra))
    }

    pub fn start_in(dir: &Path, extra: &[&str]) -> Node {
        Self::ready(Server::start_node_in(dir, extra))
    }

    /// A node with its networking on ([`Server::start_networked`]); rkube's iptables rules
    /// are removed again when it is dropped.
    pub fn networked(extra: &[&str]) -> Node {
        Self::ready(Server::start_networked(extra))
    }

    fn ready(s: Server) -> Node {
        ready_nodes(&s, 1);
        Node(s)
    }
}

impl std::ops::Deref for Node {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.0.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // Workloads first (their pods go with them, in the foreground): deleting only the
        // pods would let their controllers start new ones on the shared containerd.
        let _ = self.0.kubectl(&[
            "delete",
            "deployments,statefulsets,daemonsets,replicasets,cronjobs,jobs",
            "--all",
            "-A",
            "--cascade=foreground",
            "--timeout=60s",
        ]);
        let _ = self.0.kubectl(&[
            "delete",
            "pods",
            "--all",
            "-A",
            "--grace-period=1",
            "--timeout=60s",
        ]);
        wait_agent_clean(&self.0.data_dir.join("agent"));
    }
}

/// Waits until containerd holds no container of the agent whose state is in `agent_dir`.
pub fn wait_agent_clean(agent_dir: &Path) {
    let Ok(id) = std::fs::read_to_string(agent_dir.join("agent-id")) else {
        return;
    };
    let filter = format!("labels.\"rkube.io/agent\"=={}", id.trim());
    let deadline = std::time::Instant::now() + MINUTE;
    while std::time::Instant::now() < deadline {
        let out = Command::new("ctr")
            .args(["-n", "k8s.io", "containers", "ls", "-q", &filter])
            .output();
        if out.is_ok_and(|o| o.stdout.is_empty()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn pod_field(s: &Server, pod: &str, path: &str) -> String {
    jsonpath(s, &["get", "pod", pod], path)
}

pub fn wait_running(s: &Server, pod: &str) {
    wait_for(MINUTE, &format!("pod {pod} Running"), || {
        (pod_field(s, pod, "{.status.phase}") == "Running").then_some(())
    });
}

/// Containers containerd holds for a pod uid (any agent).
pub fn containers_of(uid: &str) -> Vec<String> {
    let out = Command::new("ctr")
        .args(["-n", "k8s.io", "containers", "ls", "-q"])
        .arg(format!("labels.\"io.kubernetes.pod.uid\"=={uid}"))
        .output()
        .expect("ctr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}
