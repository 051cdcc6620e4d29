//! DaemonSet controller: one pod per eligible node, new nodes, taints, rolling updates,
//! history and undo, as kubectl sees them.

use std::collections::{BTreeSet, HashSet};

use super::common::{self, Server, Sim, apply, jsonpath, ready_nodes};
use super::statefulset::{PodLog, Seen, history, is_ready, replay};
use super::{DEADLINE, cluster, names, rollout_status, wait_count, wait_for};

fn daemon(name: &str, image: &str, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 1}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: "{image}"}}]
{extra_spec}
"#
    )
}

/// The nodes running a Running pod with `selector`.
fn nodes_running(s: &Server, selector: &str) -> BTreeSet<String> {
    jsonpath(
        s,
        &["get", "pods", "-l", selector],
        r#"{range .items[?(@.status.phase=="Running")]}{.spec.nodeName}{" "}{end}"#,
    )
    .split_whitespace()
    .map(String::from)
    .collect()
}

fn wait_nodes(s: &Server, selector: &str, want: &[&str]) {
    let want: BTreeSet<String> = want.iter().map(|n| n.to_string()).collect();
    wait_for(DEADLINE, &format!("{selector} pods on {want:?}"), || {
        let pods = names(s, &["pods", "-l", selector]);
        (nodes_running(s, selector) == want && pods.len() == want.len()).then_some(())
    });
}

fn desired(s: &Server, name: &str) -> String {
    jsonpath(
        s,
        &["get", "ds", name],
        "{.status.desiredNumberScheduled}/{.status.numberReady}",
    )
}

#[test]
fn one_pod_per_node_and_a_new_node_gets_one() {
    let (s, _sim) = cluster();
    apply(&s, &daemon("agent", "busybox", ""));
    let out = rollout_status(&s, "ds/agent");
    assert!(out.contains("successfully rolled out"), "{out}");
    wait_nodes(&s, "app=agent", &["sim-node-0", "sim-node-1", "sim-node-2"]);
    assert_eq!(desired(&s, "agent"), "3/3");
    // Each pod is pinned to its node through required node affinity, as upstream does.
    let pinned = jsonpath(
        &s,
        &["get", "pods", "-l", "app=agent"],
        r#"{range .items[*]}{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]}={.spec.nodeName} {end}"#,
    );
    for pair in pinned.split_whitespace() {
        let (want, got) = pair.split_once('=').expect("pair");
        assert_eq!(want, got, "{pinned}");
    }

    let _extra = Sim::start(&s, &["--nodes", "1", "--name-prefix", "extra-"]);
    ready_nodes(&s, 4);
    wait_nodes(
        &s,
        "app=agent",
        &["extra-0", "sim-node-0", "sim-node-1", "sim-node-2"],
    );
    rollout_status(&s, "ds/agent");
    assert_eq!(desired(&s, "agent"), "4/4");
}

#[test]
fn taints_keep_daemon_pods_off_nodes_that_do_not_tolerate_them() {
    let (s, _sim) = cluster();
    s.ok(&["taint", "node", "sim-node-2", "dedicated=db:NoSchedule"]);
    apply(&s, &daemon("logs", "busybox", ""));
    let tolerant = "      tolerations: [{key: dedicated, operator: Exists}]";
    apply(&s, &daemon("tolerant", "busybox", tolerant));
    rollout_status(&s, "ds/logs");
    wait_nodes(&s, "app=logs", &["sim-node-0", "sim-node-1"]);
    assert_eq!(desired(&s, "logs"), "2/2");
    wait_nodes(
        &s,
        "app=tolerant",
        &["sim-node-0", "sim-node-1", "sim-node-2"],
    );

    // An untolerated NoExecute taint takes the pod away.
    s.ok(&["taint", "node", "sim-node-1", "evict=now:NoExecute"]);
    wait_nodes(&s, "app=logs", &["sim-node-0"]);
    wait_for(DEADLINE, "desired 1", || {
        (desired(&s, "logs") == "1/1").then_some(())
    });

    // Without the NoSchedule taint the node gets its pod.
    s.ok(&["taint", "node", "sim-node-2", "dedicated-"]);
    wait_nodes(&s, "app=logs", &["sim-node-0", "sim-node-2"]);
    rollout_status(&s, "ds/logs");
}

#[test]
fn set_image_rolls_out_one_node_at_a_time_and_undo_restores() {
    let (s, _sim) = cluster();
    apply(&s, &daemon("web", "busybox:1", ""));
    rollout_status(&s, "ds/web");
    wait_nodes(&s, "app=web", &["sim-node-0", "sim-node-1", "sim-node-2"]);

    let log = PodLog::start(&s, "app=web");
    s.ok(&["set", "image", "ds/web", "c=busybox:2"]);
    let out = rollout_status(&s, "ds/web");
    assert!(out.contains("successfully rolled out"), "{out}");
    let log = log.finish();
    // maxUnavailable 1 over 3 nodes: at least 2 nodes always had a ready pod.
    let mut fewest = usize::MAX;
    replay(&log, |seen, _, pods| {
        if seen == Seen::Listed {
            return;
        }
        let nodes: HashSet<String> = pods
            .values()
            .filter(|p| is_ready(p))
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        fewest = fewest.min(nodes.len());
    });
    assert!(
        fewest >= 2,
        "only {fewest} nodes had a ready pod during the rollout"
    );
    assert!(log.iter().any(|(seen, _)| *seen == Seen::Deleted));
    let images = jsonpath(
        &s,
        &["get", "pods", "-l", "app=web"],
        "{.items[*].spec.containers[0].image}",
    );
    assert_eq!(images, "busybox:2 busybox:2 busybox:2");

    assert_eq!(history(&s, "ds/web"), ["1", "2"]);
    s.ok(&["rollout", "undo", "ds/web"]);
    rollout_status(&s, "ds/web");
    wait_for(DEADLINE, "every pod back on busybox:1", || {
        let images = jsonpath(
            &s,
            &["get", "pods", "-l", "app=web"],
            "{.items[*].spec.containers[0].image}",
        );
        (images == "busybox:1 busybox:1 busybox:1").then_some(())
    });
    // The first revision came back as revision 3.
    assert_eq!(history(&s, "ds/web"), ["2", "3"]);
    assert_eq!(
        wait_count(&s, &["controllerrevisions", "-l", "app=web"], 2).len(),
        2
    );
}

#[test]
fn max_surge_starts_the_new_pod_before_the_old_one_goes() {
    let (s, _sim) = cluster();
    let manifest = daemon("surge", "busybox:1", "").replace(
        "rollingUpdate: {maxUnavailable: 1}",
        "rollingUpdate: {maxSurge: 1, maxUnavailable: 0}",
    );
    apply(&s, &manifest);
    rollout_status(&s, "ds/surge");
    wait_nodes(&s, "app=surge", &["sim-node-0", "sim-node-1", "sim-node-2"]);

    let log = PodLog::start(&s, "app=surge");
    s.ok(&["set", "image", "ds/surge", "c=busybox:2"]);
    rollout_status(&s, "ds/surge");
    wait_nodes(&s, "app=surge", &["sim-node-0", "sim-node-1", "sim-node-2"]);
    let log = log.finish();
    let (mut fewest, mut most_on_a_node) = (usize::MAX, 0);
    replay(&log, |seen, _, pods| {
        if seen == Seen::Listed {
            return;
        }
        let mut per_node: std::collections::HashMap<String, usize> = Default::default();
        for p in pods
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *per_node.entry(n).or_default() += 1;
            }
        }
        most_on_a_node = most_on_a_node.max(per_node.values().copied().max().unwrap_or(0));
        let ready: HashSet<String> = pods
            .values()
            .filter(|p| is_ready(p))
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        fewest = fewest.min(ready.len());
    });
    assert_eq!(
        fewest, 3,
        "a node was without a ready pod during a surge rollout"
    );
    assert_eq!(
        most_on_a_node, 2,
        "no node ran old and new pods side by side"
    );
    let images = jsonpath(
        &s,
        &["get", "pods", "-l", "app=surge"],
        "{.items[*].spec.containers[0].image}",
    );
    assert_eq!(images, "busybox:2 busybox:2 busybox:2");
}

#[test]
fn the_seed_daemonset_becomes_ready() {
    let (s, _sim) = cluster();
    let seed = common::manifests_dir().join("seeds/004_001_DaemonSet.yaml");
    s.ok(&["apply", "-f", &seed.to_string_lossy()]);
    rollout_status(&s, "ds/fluentd");
    assert_eq!(desired(&s, "fluentd"), "3/3");
    wait_nodes(
        &s,
        "app=fluentd",
        &["sim-node-0", "sim-node-1", "sim-node-2"],
    );
}
