//! The node agent on this machine's containerd (scripts/node-setup.sh starts it and imports
//! localhost/busybox:latest and localhost/pause:3.9): pods run as real containers, seen
//! through the real kubectl 1.33.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    MINUTE, Node, Server, apply, containers_of, jsonpath, manifests_dir, pod_field, ready_nodes,
    wait_agent_clean, wait_for, wait_running,
};

fn wait_logs(s: &Server, args: &[&str], want: &str) -> String {
    wait_for(MINUTE, &format!("logs {args:?} to show {want:?}"), || {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        let out = s.kubectl(&all);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains(want).then_some(text)
    })
}

fn pod_cgroups(uid: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for h in hierarchies.flatten() {
        for qos in ["", "burstable/", "besteffort/"] {
            let p = h.path().join(format!("kubepods/{qos}pod{uid}"));
            if p.exists() {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_pod_runs_logs_and_leaves_nothing_behind_when_deleted() {
    let s = Node::start(&[]);
    let info = jsonpath(
        &s,
        &["get", "nodes"],
        "{.items[0].status.nodeInfo.containerRuntimeVersion} {.items[0].status.capacity.pods}",
    );
    assert!(
        info.starts_with("containerd://") && info.ends_with(" 110"),
        "{info}"
    );

    s.ok(&[
        "run",
        "hello",
        "--image=localhost/busybox:latest",
        "--",
        "sh",
        "-c",
        "echo hi; sleep 3600",
    ]);
    wait_running(&s, "hello");
    assert_eq!(wait_logs(&s, &["hello"], "hi"), "hi\n");
    let ip = pod_field(&s, "hello", "{.status.podIP}");
    assert!(ip.starts_with("10.42.0."), "pod IP {ip}");
    let id = pod_field(&s, "hello", "{.status.containerStatuses[0].containerID}");
    assert!(id.starts_with("containerd://"), "{id}");
    let ready = pod_field(
        &s,
        "hello",
        r#"{.status.conditions[?(@.type=="Ready")].status}"#,
    );
    assert_eq!(ready, "True");
    let table = s.ok(&["get", "pod", "hello"]);
    assert!(
        table.contains("1/1") && table.contains("Running"),
        "{table}"
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=hello",
    ]);
    for reason in ["Scheduled", "Created", "Started"] {
        assert!(events.contains(reason), "no {reason} event: {events}");
    }

    let uid = pod_field(&s, "hello", "{.metadata.uid}");
    assert!(!containers_of(&uid).is_empty());
    let logs = s.data_dir.join("pod-logs");
    let log_dir = logs.join(format!("default_hello_{uid}"));
    assert!(log_dir.join("hello/0.log").is_file());
    assert!(!pod_cgroups(&uid).is_empty(), "no pod cgroup");

    s.ok(&["delete", "pod", "hello", "--grace-period=1"]);
    wait_for(
        MINUTE,
        "the pod's containers, logs and cgroups gone",
        || {
            (containers_of(&uid).is_empty() && !log_dir.exists() && pod_cgroups(&uid).is_empty())
                .then_some(())
        },
    );
}

#[test]
fn the_seed_configmap_pod_prints_its_values() {
    let s = Node::start(&[]);
    let seed = manifests_dir().join("seeds/087_004_ConfigMap-Pod.yaml");
    s.ok(&["apply", "-f", seed.to_str().expect("path")]);
    wait_running(&s, "config-pod");
    let out = wait_logs(&s, &["config-pod"], "LOG_LEVEL");
    assert_eq!(
        out,
        "API_ENDPOINT: https://api.example.com/v1\nLOG_LEVEL: info\n"
    );
    s.ok(&["delete", "pod", "config-pod", "--grace-period=0", "--force"]);
}

#[test]
fn a_deployment_of_httpd_pods_answers_on_each_pod_ip() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: localhost/busybox:latest
        command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
        ports: [{containerPort: 8080}]
"#,
    );
    let ips = wait_for(MINUTE, "2 running web pods with IPs", || {
        let out = jsonpath(
            &s,
            &["get", "pods", "-l", "app=web"],
            r#"{range .items[?(@.status.phase=="Running")]}{.status.podIP}{" "}{end}"#,
        );
        let ips: Vec<String> = out.split_whitespace().map(String::from).collect();
        (ips.len() == 2).then_some(ips)
    });
    for ip in ips {
        let body = wait_for(MINUTE, &format!("httpd on {ip}"), || {
            let out = Command::new("curl")
                .args(["-s", "-m", "2", &format!("http://{ip}:8080/")])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).to_string())
        });
        assert_eq!(body, "hello from busybox pod\n");
    }
    s.ok(&["delete", "deployment", "web"]);
}

#[test]
fn a_failing_container_goes_into_crash_loop_back_off() {
    let s = Node::start(&[]);
    s.ok(&[
        "run",
        "crash",
        "--image=localhost/busybox:latest",
        "--",
        "sh",
        "-c",
        "echo crashing; exit 1",
    ]);
    wait_for(
        Duration::from_secs(90),
        "CrashLoopBackOff after a restart",
        || {
            let out = pod_field(
                &s,
                "crash",
                "{.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.exitCode}",
            );
            let f: Vec<&str> = out.split_whitespace().collect();
            (f.len() == 3 && f[0] == "CrashLoopBackOff" && f[1] != "0" && f[2] == "1").then_some(())
        },
    );
    let msg = pod_field(
        &s,
        "crash",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert!(
        msg.starts_with("back-off 10s restarting failed container=crash pod=crash_default(")
            || msg.starts_with("back-off 20s restarting failed container=crash pod=crash_default("),
        "{msg}"
    );
    let table = s.ok(&["get", "pod", "crash"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");
    let previous = s.ok(&["logs", "crash", "--previous"]);
    assert_eq!(previous, "crashing\n");
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crash,reason=BackOff",
    ]);
    assert!(
        events.contains("Back-off restarting failed container crash"),
        "{events}"
    );
    s.ok(&["delete", "pod", "crash", "--grace-period=0", "--force"]);
}

#[test]
fn a_pod_over_its_memory_limit_is_oom_killed() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: localhost/busybox:latest
    command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1"]
    resources: {limits: {memory: 32Mi}}
"#,
    );
    let out = wait_for(MINUTE, "the hog terminated", || {
        let out = pod_field(
            &s,
            "hog",
            "{.status.phase} {.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}",
        );
        (out.split_whitespace().count() == 3).then_some(out)
    });
    assert_eq!(out, "Failed OOMKilled 137");
    let table = s.ok(&["get", "pod", "hog"]);
    assert!(table.contains("OOMKilled"), "{table}");
}

#[test]
fn an_unpullable_image_shows_err_image_pull_and_back_off() {
    let s = Node::start(&[]);
    s.ok(&["run", "old", "--image=nginx:1.21"]);
    let reason = wait_for(MINUTE, "a pull error", || {
        let r = pod_field(
            &s,
            "old",
            "{.status.containerStatuses[0].state.waiting.reason}",
        );
        matches!(r.as_str(), "ErrImagePull" | "ImagePullBackOff").then_some(r)
    });
    assert!(!reason.is_empty());
    wait_for(MINUTE, "ImagePullBackOff", || {
        (pod_field(
            &s,
            "old",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "ImagePullBackOff")
            .then_some(())
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=old",
    ]);
    assert!(
        events.contains("Failed to pull image \"nginx:1.21\""),
        "{events}"
    );
    assert!(
        events.contains("Back-off pulling image \"nginx:1.21\""),
        "{events}"
    );
    assert_eq!(pod_field(&s, "old", "{.status.phase}"), "Pending");
}

#[test]
fn a_restarted_agent_adopts_its_running_pods() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut s = Node::start_in(dir, &[]);
    s.ok(&[
        "run",
        "keep",
        "--image=localhost/busybox:latest",
        "--",
        "sleep",
        "3600",
    ]);
    wait_running(&s, "keep");
    let before = pod_field(&s, "keep", "{.status.containerStatuses[0].containerID}");
    s.kill();
    let s = Node::start_in(dir, &[]);
    // Give the agent a few syncs to (wrongly) restart anything.
    std::thread::sleep(Duration::from_secs(3));
    let after = pod_field(
        &s,
        "keep",
        "{.status.phase} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}",
    );
    assert_eq!(after, format!("Running {before} 0"));
    s.ok(&["delete", "pod", "keep", "--grace-period=0", "--force"]);
    let uid_gone = wait_for(MINUTE, "the pod gone", || {
        s.kubectl(&["get", "pod", "keep"])
            .status
            .code()
            .filter(|c| *c != 0)
    });
    assert_eq!(uid_gone, 1);
}

#[test]
fn init_containers_run_in_order_before_the_app_with_env_from_the_api() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: ordered, labels: {tier: demo}}
spec:
  initContainers:
  - name: first
    image: localhost/busybox:latest
    command: ["sh", "-c", "echo first >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: localhost/busybox:latest
    command: ["sh", "-c", "echo second >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sh", "-c", "cat /work/order; echo $POD_NAME $POD_IP $PASSWORD $(GREETING); sleep 3600"]
    env:
    - {name: GREETING, value: hello}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - {name: work, emptyDir: {}}
"#,
    );
    wait_running(&s, "ordered");
    let ip = pod_field(&s, "ordered", "{.status.podIP}");
    let out = wait_logs(&s, &["ordered", "-c", "app"], "s3cret");
    assert_eq!(out, format!("first\nsecond\nordered {ip} s3cret hello\n"));
    let init = pod_field(
        &s,
        "ordered",
        "{.status.initContainerStatuses[*].state.terminated.reason}",
    );
    assert_eq!(init, "Completed Completed");
    s.ok(&["delete", "pod", "ordered", "--grace-period=0", "--force"]);
}

#[test]
fn the_agent_starts_containerd_itself_when_none_answers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("containerd.sock");
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/node-images");
    let mut s = Node::start_in(
        tmp.path(),
        &[
            "--containerd-socket",
            socket.to_str().expect("path"),
            "--agent-images",
            images.to_str().expect("path"),
        ],
    );
    s.ok(&[
        "run",
        "own",
        "--image=localhost/busybox:latest",
        "--",
        "sh",
        "-c",
        "echo from my own containerd; sleep 3600",
    ]);
    wait_running(&s, "own");
    wait_logs(&s, &["own"], "from my own containerd");
    s.ok(&["delete", "pod", "own", "--grace-period=1"]);
    wait_agent_clean(&tmp.path().join("agent"));
    s.stop();
}

#[test]
fn an_agent_joins_with_the_node_token() {
    let server = Server::start(&[]);
    let token = std::fs::read_to_string(server.data_dir.join("node-token")).expect("node-token");
    let token = token.trim();
    assert!(token.starts_with("K10"), "{token}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let agent = |token: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args([
            "agent",
            "--server",
            &server.url,
            "--token",
            token,
            "--kubelet-port",
            "0",
            // Node networking owns host-wide chains and ports: only tests/networking.rs.
            "--disable",
            "proxy,network-policy,dns,ingress",
        ])
        .arg("--data-dir")
        .arg(tmp.path())
        .arg("--pod-log-dir")
        .arg(tmp.path().join("logs"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        cmd
    };
    // A token whose CA hash is not the server's CA is refused before anything is sent.
    let forged = format!(
        "K10{}::{}",
        "0".repeat(64),
        token.split_once("::").expect("secret").1
    );
    let out = agent(&forged).output().expect("rkube agent");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not match the hash in the join token"),
        "{err}"
    );
    let mut child = agent(token).spawn().expect("rkube agent");
    ready_nodes(&server, 1);
    server.ok(&[
        "run",
        "joined",
        "--image=localhost/busybox:latest",
        "--",
        "sh",
        "-c",
        "echo on a joined node; sleep 3600",
    ]);
    wait_logs(&server, &["joined"], "on a joined node");
    server.ok(&["delete", "pod", "joined", "--grace-period=1"]);
    wait_agent_clean(&tmp.path().join("agent"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn termination_messages_come_from_the_file_or_the_log() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: farewell}
spec:
  restartPolicy: Never
  containers:
  - name: file
    image: localhost/busybox:latest
    command: ["sh", "-c", "echo -n 'done: 42 rows' > /dev/termination-log"]
  - name: logs
    image: localhost/busybox:latest
    command: ["sh", "-c", "echo starting; echo 'fatal: no config'; exit 3"]
    terminationMessagePolicy: FallbackToLogsOnError
"#,
    );
    wait_for(MINUTE, "the pod finished", || {
        (pod_field(&s, "farewell", "{.status.phase}") == "Failed").then_some(())
    });
    let msg = |c: &str| {
        pod_field(
            &s,
            "farewell",
            &format!(r#"{{.status.containerStatuses[?(@.name=="{c}")].state.terminated.message}}"#),
        )
    };
    assert_eq!(msg("file"), "done: 42 rows");
    assert_eq!(msg("logs"), "starting\nfatal: no config");
}

#[test]
fn unused_images_are_collected_when_the_disk_is_past_the_threshold() {
    // On a containerd of its own, so no other test's images go.
    let tmp = tempfile::tempdir().expect("tempdir");
    let socket = tmp.path().join("containerd.sock");
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/node-images");
    let mut s = Node::start_in(
        tmp.path(),
        &[
            "--containerd-socket",
            socket.to_str().expect("path"),
            "--agent-images",
            images.to_str().expect("path"),
            // Any usage is past 0 %: everything unused goes.
            "--image-gc-high-threshold",
            "0",
            "--image-gc-low-threshold",
            "0",
        ],
    );
    let list = || {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&socket)
            .args(["-n", "k8s.io", "images", "ls", "-q"])
            .output()
            .expect("ctr");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // Imported at start (the agent fails to start otherwise), then collected.
    wait_for(MINUTE, "busybox collected", || {
        (!list().contains("localhost/busybox:latest")).then_some(())
    });
    // The sandbox image stays.
    assert!(list().contains("localhost/pause:3.9"), "{}", list());
    s.stop();
}

#[test]
fn sidecars_run_beside_the_app_and_host_network_pods_take_the_node_address() {
    let s = Node::start(&[]);
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: with-sidecar}
spec:
  initContainers:
  - name: side
    image: localhost/busybox:latest
    restartPolicy: Always
    command: ["sh", "-c", "echo side-up > /shared/ready; sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: app
    image: localhost/busybox:latest
    command: ["sh", "-c", "cat /shared/ready; sleep 3600"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - {name: shared, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: on-host}
spec:
  hostNetwork: true
  containers:
  - name: c
    image: localhost/busybox:latest
    command: ["sh", "-c", "echo host-net; sleep 3600"]
"#,
    );
    wait_running(&s, "with-sidecar");
    assert_eq!(
        wait_logs(&s, &["with-sidecar", "-c", "app"], "side-up"),
        "side-up\n"
    );
    let side = pod_field(
        &s,
        "with-sidecar",
        "{.status.initContainerStatuses[0].started} {.status.initContainerStatuses[0].ready}",
    );
    assert_eq!(side, "true true");
    let table = s.ok(&["get", "pod", "with-sidecar"]);
    assert!(table.contains("2/2"), "{table}");

    wait_running(&s, "on-host");
    wait_logs(&s, &["on-host"], "host-net");
    let ips = pod_field(&s, "on-host", "{.status.podIP} {.status.hostIP}");
    let (pod_ip, host_ip) = ips.split_once(' ').expect("two addresses");
    assert_eq!(pod_ip, host_ip);
}
