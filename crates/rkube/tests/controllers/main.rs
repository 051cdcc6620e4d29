//! The controllers on `rkube server` with `rkube sim` nodes, driven by the real kubectl:
//! one module per controller.

#[path = "../common/mod.rs"]
mod common;

mod cronjob;
mod daemonset;
mod deployment;
mod disruption;
mod endpoints;
mod garbagecollector;
mod job;
mod leader;
mod namespace;
mod nodelifecycle;
mod replicaset;
mod seeds;
mod serviceaccount;
mod servicelb;
mod statefulset;
mod ttlafterfinished;

use std::time::Duration;

use common::{Server, Sim, jsonpath, ready_nodes, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

/// A server with three simulated nodes, ready.
fn cluster() -> (Server, Sim) {
    let s = Server::start(&[]);
    let sim = Sim::start(&s, &["--nodes", "3"]);
    ready_nodes(&s, 3);
    (s, sim)
}

/// Names of the objects `kubectl get <args>` lists.
fn names(s: &Server, args: &[&str]) -> Vec<String> {
    let mut all = vec!["get"];
    all.extend(args);
    all.extend(["-o", "name"]);
    let out = s.kubectl(&all);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.rsplit('/').next().unwrap_or(l).to_string())
        .collect()
}

/// Waits until `kubectl get <args>` lists exactly `n` objects.
fn wait_count(s: &Server, args: &[&str], n: usize) -> Vec<String> {
    wait_for(DEADLINE, &format!("{n} of {args:?}"), || {
        let found = names(s, args);
        (found.len() == n).then_some(found)
    })
}

/// Waits until `kubectl get <args>` fails with NotFound.
fn wait_gone(s: &Server, args: &[&str]) {
    wait_for(DEADLINE, &format!("{args:?} gone"), || {
        let out = s.kubectl(args);
        (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"))
            .then_some(())
    });
}

fn rollout_status(s: &Server, what: &str) -> String {
    s.ok(&["rollout", "status", what, "--timeout=60s"])
}

/// The values `kubectl get <args> -o jsonpath=<path>` prints, sorted.
fn sorted_values(s: &Server, args: &[&str], path: &str) -> Vec<String> {
    let mut v: Vec<String> = jsonpath(s, args, path)
        .split_whitespace()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Running pods with `selector`, by name.
fn running(s: &Server, selector: &str) -> Vec<String> {
    let out = jsonpath(
        s,
        &["get", "pods", "-l", selector],
        r#"{range .items[?(@.status.phase=="Running")]}{.metadata.name}{" "}{end}"#,
    );
    out.split_whitespace().map(String::from).collect()
}
