//! exec, attach, port-forward and cp through the API server to the node agent and
//! containerd, with the real kubectl (1.33: WebSocket v5 and SPDY over WebSocket; 1.27:
//! SPDY) and the Python client (WebSocket v4/v5 channels).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{MINUTE, Node, Server, apply, kubectl_version, wait_for, wait_running};

/// A busybox pod serving `hello-from-<name>` over HTTP on 8080, with stdin open for
/// attach, and a Service `web` (port 80 → 8080) in front of it.
fn web_pod(s: &Server, name: &str) {
    apply(
        s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: localhost/busybox:latest
    command: [sh, -c, 'mkdir -p /www && echo hello-from-{name} > /www/index.html && httpd -p 8080 -h /www && while read l; do echo got:$l; done; sleep 3600']
    stdin: true
    ports: [{{name: http, containerPort: 8080}}]
"#
        ),
    );
    wait_running(s, name);
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs kubectl `args` with a terminal (`script` gives it one) and types `input` once the
/// session is up; returns what the terminal showed and kubectl's exit code.
fn in_terminal(s: &Server, args: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let cmdline = format!("{} {args}", common::kubectl_path().display());
    let mut child = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let mut stdin = child.stdin.take().expect("stdin");
    // No prompt to wait for through `script`: give the session time to start, and the
    // commands time to run before the terminal goes.
    std::thread::sleep(Duration::from_secs(4));
    stdin.write_all(input.as_bytes()).expect("type");
    std::thread::sleep(Duration::from_secs(3));
    drop(stdin);
    child.wait_with_output().expect("script output")
}

#[test]
fn exec_runs_commands_with_streams_and_exit_codes() {
    let s = Node::start(&[]);
    web_pod(&s, "web");
    let out = s.kubectl(&["exec", "web", "--", "sh", "-c", "echo out; echo err >&2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");

    let out = s.kubectl(&["exec", "web", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = s.kubectl(&["exec", "web", "--", "false"]);
    assert_eq!(out.status.code(), Some(1));

    // stdin piped in; its end ends `cat` (v5's close signal).
    let input = "line one\nline two\n".repeat(2000);
    let out = s.kubectl_stdin(&["exec", "-i", "web", "--", "cat"], Some(&input));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), input);

    // A terminal: the shell echoes and returns its code.
    let out = in_terminal(
        &s,
        "exec -it web -- sh",
        "echo answer=$((6*7)); tty; exit 5\n",
    );
    let text = stdout(&out);
    assert!(text.contains("answer=42"), "{text}");
    assert!(text.contains("/dev/pts/"), "not a terminal: {text}");
    assert_eq!(out.status.code(), Some(5), "{text}");

    // Errors come back as upstream words them.
    let err = s.fails(&["exec", "web", "-c", "nope", "--", "true"]);
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );
    let err = s.fails(&["exec", "missing", "--", "true"]);
    assert!(err.contains("pods \"missing\" not found"), "{err}");
}

#[test]
fn spdy_clients_exec_and_port_forward() {
    let s = Node::start(&[]);
    web_pod(&s, "web");
    // kubectl 1.27 speaks SPDY/3.1 for exec.
    let old = kubectl_version("1.27");
    let run = |args: &[&str], input: Option<&str>| {
        use std::io::Write;
        let mut child = Command::new(&old)
            .args(args)
            .env("KUBECONFIG", &s.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl 1.27");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).expect("stdin");
        }
        drop(stdin);
        child.wait_with_output().expect("output")
    };
    let out = run(
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 7",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    assert!(stderr(&out).contains("oops"));
    let out = run(&["exec", "-i", "web", "--", "wc", "-c"], Some("12345"));
    assert_eq!(stdout(&out).trim(), "5", "{}", stderr(&out));

    // kubectl 1.33 with the WebSocket tunnel turned off falls back to a SPDY upgrade.
    let pf = PortForward::start(
        &s,
        &["port-forward", "pod/web", ":8080"],
        &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")],
    );
    assert_eq!(pf.get("/"), "hello-from-web\n");
}

/// A `kubectl port-forward` running until dropped, and the local port it chose.
struct PortForward {
    child: Child,
    port: u16,
}

impl PortForward {
    fn start(s: &Server, args: &[&str], env: &[(&str, &str)]) -> PortForward {
        let mut cmd = Command::new(common::kubectl_path());
        cmd.args(args)
            .env("KUBECONFIG", &s.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kubectl port-forward");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // `Forwarding from 127.0.0.1:43567 -> 8080`
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("port-forward said {first:?}"));
        std::thread::spawn(move || for _ in lines.by_ref() {});
        PortForward { child, port }
    }

    fn get(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl: {}", stderr(&out));
        stdout(&out)
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn port_forward_to_a_pod_and_a_service_serves_the_page() {
    let s = Node::start(&[]);
    web_pod(&s, "web");
    apply(
        &s,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: http}]\n",
    );
    let pf = PortForward::start(&s, &["port-forward", "pod/web", ":8080"], &[]);
    // Several connections over one session, one after another and at once.
    for _ in 0..3 {
        assert_eq!(pf.get("/"), "hello-from-web\n");
    }
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let port = pf.port;
            std::thread::spawn(move || {
                Command::new("curl")
                    .args(["-sS", "--max-time", "20"])
                    .arg(format!("http://127.0.0.1:{port}/"))
                    .output()
                    .expect("curl")
            })
        })
        .collect();
    for h in handles {
        assert_eq!(stdout(&h.join().expect("thread")), "hello-from-web\n");
    }
    let svc = PortForward::start(&s, &["port-forward", "svc/web", ":80"], &[]);
    assert_eq!(svc.get("/"), "hello-from-web\n");
}

#[test]
fn attach_and_cp_reach_the_container() {
    let s = Node::start(&[]);
    web_pod(&s, "web");
    // The container's shell reads its stdin: attach feeds it and shows what it prints.
    let mut child = Command::new(common::kubectl_path())
        .args(["attach", "-i", "web"])
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl attach");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"ping\n").expect("write");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let line = wait_for(MINUTE, "attach to echo", || {
            let mut line = String::new();
            out.read_line(&mut line).ok()?;
            line.contains("got:ping").then_some(line)
        });
        assert_eq!(line.trim(), "got:ping");
    }
    let _ = child.kill();
    let _ = child.wait();

    // `kubectl debug -it` adds an ephemeral container in the app's process namespace and
    // attaches a terminal to it.
    let out = in_terminal(
        &s,
        "debug -it web --image=localhost/busybox:latest --target=app -c dbg -- sh",
        "echo debug-says-$((40+2)); ps; exit 0\n",
    );
    let text = stdout(&out);
    assert!(text.contains("debug-says-42"), "{text}");
    assert!(
        text.contains("httpd -p 8080"),
        "the target's processes: {text}"
    );

    // kubectl cp both ways (tar over exec).
    let dir = tempfile::tempdir().expect("tempdir");
    let local = dir.path().join("in.txt");
    let content = "copied both ways\n".repeat(1000);
    std::fs::write(&local, &content).expect("write");
    s.ok(&["cp", local.to_str().expect("path"), "web:/tmp/in.txt"]);
    let out = s.ok(&["exec", "web", "--", "wc", "-c", "/tmp/in.txt"]);
    assert!(out.starts_with(&content.len().to_string()), "{out}");
    let back = dir.path().join("back.txt");
    s.ok(&["cp", "web:/tmp/in.txt", back.to_str().expect("path")]);
    assert_eq!(std::fs::read_to_string(&back).expect("read back"), content);
}

#[test]
fn python_client_exec_and_port_forward() {
    let s = Node::start(&[]);
    web_pod(&s, "web");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_stream.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&s.kubeconfig)
        .arg("web")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("all ok"), "{}", stdout(&out));
}
