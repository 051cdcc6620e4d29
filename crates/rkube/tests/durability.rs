//! Killing the server with SIGKILL while clients write loses no acknowledged write, and
//! resourceVersions keep growing after the restart.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start_in(tmp.path(), &[]);
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let kubeconfig = server.kubeconfig.clone();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            let kubeconfig = kubeconfig.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("w{w}-{i}");
                    i += 1;
                    let manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n");
                    let mut child = std::process::Command::new(common::kubectl_path())
                        .args(["create", "-f", "-", "-o", "jsonpath={.metadata.resourceVersion}"])
                        .env("KUBECONFIG", &kubeconfig)
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .expect("kubectl");
                    {
                        use std::io::Write;
                        let _ = child.stdin.take().expect("stdin").write_all(manifest.as_bytes());
                    }
                    let out = child.wait_with_output().expect("kubectl");
                    if out.status.success() {
                        let rv: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("numeric resourceVersion");
                        acked.lock().expect("lock").push((name, rv));
                    }
                }
            })
        })
        .collect();
    common::wait_for(Duration::from_secs(60), "some acknowledged writes", || {
        (acked.lock().expect("lock").len() >= 40).then_some(())
    });
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acked.lock().expect("lock").clone();
    let max_rv = acked.iter().map(|(_, rv)| *rv).max().expect("writes");

    let server = Server::start_in(tmp.path(), &[]);
    let names = server.ok(&[
        "get",
        "configmaps",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
    ]);
    let present: std::collections::HashSet<&str> = names.lines().collect();
    let lost: Vec<&String> = acked
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !present.contains(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged writes lost after SIGKILL: {lost:?}"
    );
    let out = server.kubectl_stdin(
        &[
            "create",
            "-f",
            "-",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after-restart\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rv: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric resourceVersion");
    assert!(
        rv > max_rv,
        "resourceVersion went backwards: {rv} <= {max_rv}"
    );
}
