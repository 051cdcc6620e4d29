//! Resource metrics with a real node: `kubectl top` (the metrics.k8s.io API built from the
//! agent's Summary) and the Prometheus `/metrics` of the API server and the node agent,
//! through the real kubectl 1.33 and this machine's containerd.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{MINUTE, Node, Server, jsonpath, wait_for, wait_running};

/// The agent samples every 10 s and a rate needs two samples; metrics-server shows nothing
/// for a fresh pod either. Generous, for a loaded machine.
const METRICS_DEADLINE: Duration = Duration::from_secs(120);

/// `kubectl top …` once its output has a row starting with `name`: (header, that row).
fn top_row(s: &Server, args: &[&str], name: &str) -> (String, Vec<String>) {
    let mut all = vec!["top"];
    all.extend_from_slice(args);
    wait_for(
        METRICS_DEADLINE,
        &format!("kubectl {all:?} to list {name}"),
        || {
            let out = s.kubectl(&all);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut lines = text.lines();
            let header = lines.next()?.to_string();
            let row = lines
                .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
                .find(|cells| cells.first().is_some_and(|c| c == name))?;
            Some((header, row))
        },
    )
}

/// The leading number of a kubectl quantity cell (`12Mi` → 12).
fn number(cell: &str) -> u64 {
    let digits: String = cell.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("not a quantity: {cell:?}"))
}

/// GET `path` from the node agent's HTTPS API with the cluster token (as the API server
/// calls it), by curl.
fn agent_get(s: &Server, port: &str, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sSk", "-H"])
        .arg(format!("Authorization: Bearer {}", s.token()))
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn top_lists_a_running_pod_and_the_node_and_metrics_are_served() {
    let s = Node::start(&[]);
    s.ok(&[
        "run",
        "sleeper",
        "--image=localhost/busybox:latest",
        "--",
        "awk",
        // awk holds an 8 MB string, so the working set shows in whole MiB.
        r#"BEGIN{s=sprintf("%8000000s","x"); system("sleep 3600")}"#,
    ]);
    wait_running(&s, "sleeper");

    let (header, row) = top_row(&s, &["pods"], "sleeper");
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(columns, ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    assert!(row[1].ends_with('m'), "CPU in millicores: {row:?}");
    assert!(row[2].ends_with("Mi"), "memory in MiB: {row:?}");
    assert!(
        number(&row[2]) > 0,
        "a running shell uses some memory: {row:?}"
    );

    let node = jsonpath(&s, &["get", "nodes"], "{.items[0].metadata.name}");
    let (header, row) = top_row(&s, &["nodes"], &node);
    assert!(
        header.starts_with("NAME")
            && header.contains("CPU(cores)")
            && header.contains("MEMORY(bytes)"),
        "{header}"
    );
    assert!(number(&row[3]) > 0, "the node uses memory: {row:?}");

    // As metrics-server: a pod its lister does not hold is the pods resource's NotFound.
    let err = s.fails(&["top", "pod", "nope"]);
    assert_eq!(
        err.trim(),
        r#"Error from server (NotFound): pods "nope" not found"#
    );

    let text = s.ok(&["get", "--raw", "/metrics"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("apiserver_request_total{")
                && l.contains("verb=\"LIST\"")
                && l.contains("resource=\"pods\"")),
        "no LIST of pods counted in:\n{text}"
    );
    let stored = text
        .lines()
        .find_map(|l| l.strip_prefix("apiserver_storage_objects{resource=\"pods\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        stored.is_some_and(|n| n >= 1),
        "stored pods: {stored:?}\n{text}"
    );

    let port = jsonpath(
        &s,
        &["get", "nodes"],
        "{.items[0].status.daemonEndpoints.kubeletEndpoint.Port}",
    );
    // The gauges move with the agent's samples.
    let text = wait_for(MINUTE, "the agent to count one running pod", || {
        let text = agent_get(&s, &port, "/metrics");
        text.contains("kubelet_running_pods 1\n").then_some(text)
    });
    assert!(
        text.contains(&format!("kubelet_node_name{{node=\"{node}\"}} 1\n")),
        "{text}"
    );
    assert!(
        text.contains("kubelet_running_containers{container_state=\"running\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("kubelet_pod_start_duration_seconds_count 1\n"),
        "{text}"
    );
}
