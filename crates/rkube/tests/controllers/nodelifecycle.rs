//! Node lifecycle: a node whose agent stops goes Unknown, is tainted unreachable, and its
//! pods are evicted after their tolerationSeconds and replaced on live nodes.

use super::common::{Server, Sim, apply, jsonpath, ready_nodes};
use super::{DEADLINE, running, wait_for};

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway,
         labelSelector: {matchLabels: {app: spread}}}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
      containers: [{name: c, image: busybox}]
"#;

fn sim(s: &Server, prefix: &str, nodes: &str) -> Sim {
    Sim::start(
        s,
        &[
            "--nodes",
            nodes,
            "--name-prefix",
            prefix,
            "--lease-duration-seconds",
            "2",
            "--lease-renew-seconds",
            "0.5",
        ],
    )
}

#[test]
fn pods_of_a_silent_node_are_evicted_and_replaced_elsewhere() {
    let s = Server::start(&[
        "--node-monitor-grace-period",
        "3s",
        "--node-monitor-period",
        "500ms",
    ]);
    let _a = sim(&s, "a-", "2");
    let mut b = sim(&s, "b-", "1");
    ready_nodes(&s, 3);
    apply(&s, APP);
    let on_b = wait_for(DEADLINE, "a pod on b-0", || {
        let pods = running(&s, "app=spread");
        (pods.len() == 3).then_some(())?;
        let on_b = jsonpath(
            &s,
            &["get", "pods", "-l", "app=spread"],
            r#"{range .items[?(@.spec.nodeName=="b-0")]}{.metadata.name}{end}"#,
        );
        (!on_b.is_empty()).then_some(on_b)
    });

    // The node's agent dies.
    let _ = b.0.kill();
    let _ = b.0.wait();
    wait_for(DEADLINE, "b-0 Unknown and tainted", || {
        let ready = jsonpath(
            &s,
            &["get", "node", "b-0"],
            r#"{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}"#,
        );
        let taints = jsonpath(
            &s,
            &["get", "node", "b-0"],
            "{.spec.taints[*].key}/{.spec.taints[*].effect}",
        );
        (ready == "Unknown/NodeStatusUnknown"
            && taints.contains("node.kubernetes.io/unreachable")
            && taints.contains("NoExecute"))
        .then_some(())
    });
    let nodes = s.ok(&["get", "nodes"]);
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("b-0") && l.contains("NotReady")),
        "{nodes}"
    );
    // Evicted after its 2 s toleration, replaced on a live node.
    wait_for(DEADLINE, "the pod on b-0 evicted", || {
        let ts = jsonpath(&s, &["get", "pod", &on_b], "{.metadata.deletionTimestamp}");
        (!ts.is_empty()).then_some(())
    });
    wait_for(DEADLINE, "3 running pods on the a- nodes", || {
        let placed = jsonpath(
            &s,
            &["get", "pods", "-l", "app=spread"],
            r#"{range .items[?(@.status.phase=="Running")]}{.metadata.deletionTimestamp}{"|"}{.spec.nodeName}{" "}{end}"#,
        );
        let live: Vec<&str> = placed
            .split_whitespace()
            .filter_map(|e| e.strip_prefix('|'))
            .collect();
        (live.len() == 3 && live.iter().all(|n| n.starts_with("a-"))).then_some(())
    });
}

/// A pod bound to a node that was deleted cannot finish terminating; pod GC removes it
/// (after upstream's 40 s quarantine, so this test takes about a minute).
#[test]
fn pods_of_a_deleted_node_are_garbage_collected() {
    let s = Server::start(&[]);
    let mut b = sim(&s, "gone-", "1");
    ready_nodes(&s, 1);
    s.ok(&["run", "stranded", "--image=busybox"]);
    wait_for(DEADLINE, "stranded running", || {
        running(&s, "run=stranded")
            .contains(&"stranded".to_string())
            .then_some(())
    });
    let _ = b.0.kill();
    let _ = b.0.wait();
    s.ok(&["delete", "node", "gone-0"]);
    let out = s.ok(&["get", "pod", "stranded", "-o", "name"]);
    assert!(out.contains("stranded"), "{out}");
    wait_for(
        std::time::Duration::from_secs(120),
        "the stranded pod collected",
        || {
            let out = s.kubectl(&["get", "pod", "stranded"]);
            (!out.status.success()).then_some(())
        },
    );
}
