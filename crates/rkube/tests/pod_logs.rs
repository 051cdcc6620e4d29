//! `kubectl logs` end to end: the API server's `pods/log` proxies to the node agent's
//! HTTPS server, here a real `kubelet::server` in this process serving log files written
//! by the test in the CRI format.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Server, kubectl_path, wait_for};
use kubelet::logs::{LogError, LogSource};
use kubelet::server::ServerConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Log files by `pod/container` in `default`; containers run while `running` is set.
struct Logs {
    files: HashMap<String, PathBuf>,
    running: AtomicBool,
}

#[async_trait::async_trait]
impl LogSource for Logs {
    async fn log_file(
        &self,
        _namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<PathBuf, LogError> {
        if previous {
            return Err(LogError::BadRequest(format!(
                "previous terminated container {container:?} in pod {pod:?} not found"
            )));
        }
        self.files
            .get(&format!("{pod}/{container}"))
            .cloned()
            .ok_or_else(|| {
                LogError::NotFound(format!("container {container:?} not found in pod {pod:?}"))
            })
    }

    async fn still_running(&self, _: &str, _: &str, _: &str, _: &Path) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

fn write_log(path: &Path, lines: &[&str]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file");
    for l in lines {
        writeln!(f, "{l}").expect("write");
    }
}

fn post(s: &Server, path: &str, obj: &Value) {
    let r = s.curl("POST", path, Some(&obj.to_string()), "application/json");
    assert_eq!(r.status, 201, "{}", r.body);
}

fn node(name: &str, port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
    "status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }})
}

fn pod(name: &str, node: Option<&str>, containers: &[&str], init: &[&str]) -> Value {
    let c = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"name": n, "image": "busybox"}))
            .collect()
    };
    let mut spec = json!({"containers": c(containers)});
    if !init.is_empty() {
        spec["initContainers"] = json!(c(init));
    }
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

struct Agent {
    _rt: tokio::runtime::Runtime,
    stop: CancellationToken,
    logs: Arc<Logs>,
    port: u16,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn start_agent(token: String, files: HashMap<String, PathBuf>) -> Agent {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let logs = Arc::new(Logs {
        files,
        running: AtomicBool::new(true),
    });
    let stop = CancellationToken::new();
    let cfg = ServerConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        token,
        node_name: "node-a".into(),
        sans: vec!["127.0.0.1".into(), "node-a".into()],
    };
    let (addr, _task) = rt
        .block_on(kubelet::server::start(
            cfg,
            kubelet::server::Sources {
                logs: logs.clone(),
                streams: None,
                stats: None,
            },
            stop.clone(),
        ))
        .expect("agent server");
    Agent {
        _rt: rt,
        stop,
        logs,
        port: addr.port(),
    }
}

#[test]
fn kubectl_logs_reads_through_the_node_agent() {
    let s = Server::start(&["--disable-controllers", "--disable-scheduler"]);
    let dir = tempfile::tempdir().expect("dir");
    let single = dir.path().join("single-app.log");
    let app = dir.path().join("multi-app.log");
    let sidecar = dir.path().join("multi-sidecar.log");
    write_log(
        &single,
        &[
            "2024-05-01T10:00:01.5Z stdout F hello",
            "2024-05-01T10:00:02Z stderr P wor",
            "2024-05-01T10:00:02Z stderr F ld",
        ],
    );
    write_log(&app, &["2024-05-01T10:00:01Z stdout F from app"]);
    write_log(&sidecar, &["2024-05-01T10:00:01Z stdout F from sidecar"]);
    let files = HashMap::from([
        ("single/app".to_string(), single.clone()),
        ("multi/app".to_string(), app),
        ("multi/sidecar".to_string(), sidecar.clone()),
        ("annotated/sidecar".to_string(), sidecar),
    ]);
    let agent = start_agent(s.token(), files);
    post(&s, "/api/v1/nodes", &node("node-a", agent.port));
    let pods = "/api/v1/namespaces/default/pods";
    post(&s, pods, &pod("single", Some("node-a"), &["app"], &[]));
    post(
        &s,
        pods,
        &pod("multi", Some("node-a"), &["app", "sidecar"], &["setup"]),
    );

    assert_eq!(s.ok(&["logs", "single"]), "hello\nworld\n");
    assert_eq!(s.ok(&["logs", "single", "--tail=1"]), "world\n");
    assert_eq!(
        s.ok(&["logs", "pod/single", "--timestamps"]),
        "2024-05-01T10:00:01.500000000Z hello\n2024-05-01T10:00:02.000000000Z world\n"
    );
    assert_eq!(s.ok(&["logs", "single", "--limit-bytes=3"]), "hel");
    assert_eq!(s.ok(&["logs", "multi", "-c", "sidecar"]), "from sidecar\n");

    // kubectl picks the first container itself and says so (upstream's kubectl).
    let out = s.kubectl(&["logs", "multi"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from app\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Defaulted container \"app\" out of: app, sidecar, setup (init)\n"
    );
    // kubectl honours the default-container annotation (the API server does not look).
    let mut annotated = pod("annotated", Some("node-a"), &["app", "sidecar"], &[]);
    annotated["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/default-container": "sidecar"});
    post(&s, pods, &annotated);
    assert_eq!(s.ok(&["logs", "annotated"]), "from sidecar\n");
    // The agent's own refusal comes back as a BadRequest.
    let err = s.fails(&["logs", "multi", "-c", "sidecar", "--previous"]);
    assert_eq!(
        err.trim(),
        "Error from server (BadRequest): previous terminated container \"sidecar\" in pod \"multi\" not found"
    );
    // Known to the API but not to the agent: the agent's 404 as upstream reports it.
    let err = s.fails(&["logs", "multi", "-c", "setup"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): the server could not find the requested resource ( pods/log multi)"
    );

    // Without kubectl's defaulting, the API server's own checks answer.
    let log = |q: &str| s.curl("GET", &format!("{pods}/multi/log{q}"), None, "");
    let r = log("");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "a container name must be specified for pod multi, choose one of: [setup app sidecar]"
    );
    let r = log("?container=db");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "container db is not valid for pod multi"
    );
    let r = log("?container=app&tailLines=-1");
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        "PodLogOptions \"multi\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
    let r = log("?container=app&sinceSeconds=5&sinceTime=2024-05-01T10:00:00Z");
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        "PodLogOptions \"multi\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
    );
    let r = log("?container=app");
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{}",
        r.headers
    );
    assert_eq!(r.body, "from app\n");
    assert_eq!(
        s.curl("GET", &format!("{pods}/nope/log"), None, "").json()["message"],
        "pods \"nope\" not found"
    );

    // Discovery lists the subresource as upstream does.
    let resources = s.curl("GET", "/api/v1", None, "").json();
    let entry = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods/log")
        .cloned()
        .expect("pods/log in discovery");
    assert_eq!(entry["verbs"], json!(["get"]));
    assert_eq!(entry["kind"], "Pod");
}

#[test]
fn kubectl_logs_follow_streams_until_the_container_stops() {
    let s = Server::start(&["--disable-controllers", "--disable-scheduler"]);
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("app.log");
    write_log(&file, &["2024-05-01T10:00:01Z stdout F first"]);
    let agent = start_agent(
        s.token(),
        HashMap::from([("web/app".to_string(), file.clone())]),
    );
    post(&s, "/api/v1/nodes", &node("node-a", agent.port));
    post(
        &s,
        "/api/v1/namespaces/default/pods",
        &pod("web", Some("node-a"), &["app"], &[]),
    );

    let mut child = Command::new(kubectl_path())
        .args(["logs", "-f", "web"])
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("kubectl logs -f printed no {what}"))
    };
    assert_eq!(next("first line"), "first");
    // Lines logged later arrive while the request is open.
    write_log(&file, &["2024-05-01T10:00:05Z stdout F second"]);
    assert_eq!(next("appended line"), "second");
    write_log(&file, &["2024-05-01T10:00:06Z stdout F third"]);
    assert_eq!(next("second appended line"), "third");
    // The container stops: kubectl gets the end of the stream and exits.
    agent.logs.running.store(false, Ordering::SeqCst);
    let status = wait_for(Duration::from_secs(20), "kubectl logs -f to exit", || {
        child.try_wait().expect("wait")
    });
    assert!(status.success());
}

#[test]
fn pods_without_a_reachable_agent() {
    let s = Server::start(&["--disable-controllers", "--disable-scheduler"]);
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    post(&s, "/api/v1/nodes", &node("gone", port));
    let pods = "/api/v1/namespaces/default/pods";
    post(&s, pods, &pod("lost", Some("gone"), &["app"], &[]));
    let err = s.fails(&["logs", "lost"]);
    assert_eq!(
        err.trim(),
        format!(
            "Error from server: Get \"https://127.0.0.1:{port}/containerLogs/default/lost/app\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
    // A node with no address at all.
    post(
        &s,
        "/api/v1/nodes",
        &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bare"}}),
    );
    post(&s, pods, &pod("stranded", Some("bare"), &["app"], &[]));
    let err = s.fails(&["logs", "stranded"]);
    assert_eq!(
        err.trim(),
        "Error from server: no preferred addresses found; known addresses: []"
    );
    // Not scheduled yet: upstream streams nothing.
    post(&s, pods, &pod("pending", None, &["app"], &[]));
    assert_eq!(s.ok(&["logs", "pending"]), "");
}
