//! `rkube server` (API server + scheduler) with `rkube sim --nodes 3`, driven by the real
//! kubectl: a pod waits with upstream's FailedScheduling message until a node is labelled,
//! then lands there and runs; a run-to-completion pod finishes.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

struct Sim(Child);

impl Sim {
    fn start(s: &Server, nodes: usize) -> Sim {
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args([
                "sim",
                "--nodes",
                &nodes.to_string(),
                "--pod-run-seconds",
                "1",
            ])
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

fn jsonpath(s: &Server, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let expr = format!("jsonpath={path}");
    all.extend(["-o", &expr]);
    let out = s.kubectl(&all);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn pods_wait_for_a_matching_node_then_run_on_simulated_nodes() {
    let s = Server::start(&[]);
    let _sim = Sim::start(&s, 3);
    wait_for(DEADLINE, "three Ready nodes", || {
        let ready = jsonpath(
            &s,
            &["get", "nodes"],
            r#"{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}"#,
        );
        (ready.split_whitespace().filter(|r| *r == "True").count() == 3).then_some(())
    });

    let ssd_pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx-ssd\nspec:\n  \
                   nodeSelector:\n    disktype: ssd\n  containers:\n  - name: nginx\n    \
                   image: nginx:1.21\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(ssd_pod));
    assert!(out.status.success(), "{out:?}");
    let want = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
                preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    let message = wait_for(DEADLINE, "a FailedScheduling event", || {
        let m = jsonpath(
            &s,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=nginx-ssd,reason=FailedScheduling",
            ],
            "{.items[0].message}",
        );
        (!m.is_empty()).then_some(m)
    });
    assert_eq!(message, want);
    assert_eq!(
        jsonpath(
            &s,
            &["get", "pod", "nginx-ssd"],
            r#"{.status.phase} {.status.conditions[?(@.type=="PodScheduled")].reason}"#
        ),
        "Pending Unschedulable"
    );
    let describe = s.ok(&["describe", "pod", "nginx-ssd"]);
    assert!(describe.contains("FailedScheduling"), "{describe}");

    s.ok(&["label", "node", "sim-node-1", "disktype=ssd"]);
    wait_for(DEADLINE, "nginx-ssd running on sim-node-1", || {
        let got = jsonpath(
            &s,
            &["get", "pod", "nginx-ssd"],
            "{.spec.nodeName} {.status.phase}",
        );
        (got == "sim-node-1 Running").then_some(())
    });
    let scheduled = jsonpath(
        &s,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=nginx-ssd,reason=Scheduled",
        ],
        "{.items[0].message}",
    );
    assert_eq!(
        scheduled,
        "Successfully assigned default/nginx-ssd to sim-node-1"
    );
    let wide = s.ok(&["get", "pod", "nginx-ssd", "-o", "wide"]);
    assert!(
        wide.contains("1/1") && wide.contains("Running") && wide.contains("sim-node-1"),
        "{wide}"
    );

    s.ok(&[
        "run",
        "once",
        "--image=busybox",
        "--restart=Never",
        "--",
        "true",
    ]);
    wait_for(DEADLINE, "the run-to-completion pod to succeed", || {
        let phase = jsonpath(&s, &["get", "pod", "once"], "{.status.phase}");
        (phase == "Succeeded").then_some(())
    });
}
