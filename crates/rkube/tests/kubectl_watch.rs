//! `kubectl get -w` shows ADDED, MODIFIED and DELETED live.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Server;

#[test]
fn kubectl_get_watch_shows_changes_live() {
    let s = Server::start(&[]);
    s.ok(&["create", "configmap", "before", "--from-literal=a=1"]);
    let mut watch = Command::new(common::kubectl_path())
        .args(["get", "configmaps", "--watch", "--output-watch-events"])
        .env("KUBECONFIG", &s.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kubectl get -w");
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let expect = |want: &str, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            // Rows are EVENT NAME DATA AGE; the age moves on, so the leading cells count.
            let row = |l: &String| l.split_whitespace().collect::<Vec<_>>().join(" ") + " ";
            if seen.iter().any(|l| row(l).starts_with(&format!("{want} "))) {
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("watch never showed {want:?}; saw {seen:?}"),
            }
        }
    };
    expect("EVENT NAME DATA AGE", &mut seen);
    expect("ADDED before 1", &mut seen);
    s.ok(&["create", "configmap", "live", "--from-literal=a=2"]);
    expect("ADDED live 1", &mut seen);
    s.ok(&[
        "patch",
        "configmap",
        "live",
        "--type",
        "merge",
        "-p",
        "{\"data\":{\"b\":\"3\"}}",
    ]);
    expect("MODIFIED live 2", &mut seen);
    s.ok(&["delete", "configmap", "live"]);
    expect("DELETED live 2", &mut seen);
    let _ = watch.kill();
    let _ = watch.wait();
}
