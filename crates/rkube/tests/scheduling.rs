//! `rkube server` (API server + scheduler) with `rkube sim --nodes 3`, driven by the real
//! kubectl: a pod waits with upstream's FailedScheduling message until a node is labelled,
//! then lands there and runs; a run-to-completion pod finishes.

mod common;

use std::time::Duration;

use common::{Server, Sim, apply, jsonpath, ready_nodes, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

fn node_of(s: &Server, pod: &str) -> String {
    wait_for(DEADLINE, &format!("{pod} bound"), || {
        let n = jsonpath(s, &["get", "pod", pod], "{.spec.nodeName}");
        (!n.is_empty()).then_some(n)
    })
}

fn unschedulable_message(s: &Server, pod: &str) -> String {
    wait_for(DEADLINE, &format!("{pod} unschedulable"), || {
        let m = jsonpath(
            s,
            &["get", "pod", pod],
            r#"{.status.conditions[?(@.reason=="Unschedulable")].message}"#,
        );
        (!m.is_empty()).then_some(m)
    })
}

#[test]
fn pods_wait_for_a_matching_node_then_run_on_simulated_nodes() {
    let s = Server::start(&[]);
    let _sim = Sim::start(&s, &["--nodes", "3", "--pod-run-seconds", "1"]);
    ready_nodes(&s, 3);

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

/// Taints, topology spread across zones, required anti-affinity and an extended resource,
/// on simulated nodes with kubectl: where upstream would place each pod.
#[test]
fn pods_land_where_upstream_places_them() {
    let s = Server::start(&[]);
    let _sim = Sim::start(&s, &["--nodes", "3"]);
    ready_nodes(&s, 3);
    s.ok(&["taint", "node", "sim-node-0", "dedicated=gpu:NoSchedule"]);

    // A pod that may only go to the tainted node, without a toleration.
    apply(
        &s,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pinned\nspec:\n  nodeSelector:\n    \
         kubernetes.io/hostname: sim-node-0\n  containers:\n  - name: c\n    image: busybox\n",
    );
    assert_eq!(
        unschedulable_message(&s, "pinned"),
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) \
         didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 \
         Preemption is not helpful for scheduling."
    );

    // Six tolerating replicas spread with maxSkew 1 over three zones: two in each.
    for i in 0..6 {
        apply(
            &s,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-{i}\n  labels:\n    app: web\n\
                 spec:\n  tolerations:\n  - key: dedicated\n    operator: Equal\n    value: gpu\n    \
                 effect: NoSchedule\n  topologySpreadConstraints:\n  - maxSkew: 1\n    \
                 topologyKey: topology.kubernetes.io/zone\n    whenUnsatisfiable: DoNotSchedule\n    \
                 labelSelector:\n      matchLabels:\n        app: web\n  containers:\n  - name: c\n    \
                 image: busybox\n"
            ),
        );
        node_of(&s, &format!("web-{i}"));
    }
    let zones = jsonpath(
        &s,
        &["get", "pods", "-l", "app=web"],
        "{range .items[*]}{.spec.nodeName}{\" \"}{end}",
    );
    for n in ["sim-node-0", "sim-node-1", "sim-node-2"] {
        assert_eq!(
            zones.split_whitespace().filter(|z| *z == n).count(),
            2,
            "two per zone: {zones}"
        );
    }

    // Required anti-affinity, one per host: three land on distinct untainted-or-tolerated
    // hosts, the fourth has nowhere to go.
    for i in 0..4 {
        apply(
            &s,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: cache-{i}\n  labels:\n    app: cache\n\
                 spec:\n  tolerations:\n  - operator: Exists\n  affinity:\n    podAntiAffinity:\n      \
                 requiredDuringSchedulingIgnoredDuringExecution:\n      - topologyKey: kubernetes.io/hostname\n        \
                 labelSelector:\n          matchLabels:\n            app: cache\n  containers:\n  - name: c\n    \
                 image: busybox\n"
            ),
        );
    }
    let mut hosts: Vec<String> = (0..3).map(|i| node_of(&s, &format!("cache-{i}"))).collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 3, "one per host: {hosts:?}");
    assert_eq!(
        unschedulable_message(&s, "cache-3"),
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: \
         0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );

    // A node advertising GPUs joins; a GPU request goes there and nowhere else.
    let _gpu = Sim::start(
        &s,
        &[
            "--nodes",
            "1",
            "--name-prefix",
            "gpu-node-",
            "--extended-resources",
            "nvidia.com/gpu=2",
        ],
    );
    ready_nodes(&s, 4);
    apply(
        &s,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: trainer\nspec:\n  containers:\n  - name: c\n    \
         image: busybox\n    resources:\n      limits:\n        nvidia.com/gpu: 1\n",
    );
    assert_eq!(node_of(&s, "trainer"), "gpu-node-0");
}

/// A full node: a high-priority pod preempts the low-priority one, which the simulated
/// kubelet stops and deletes, and then takes its place.
#[test]
fn a_high_priority_pod_preempts_a_low_priority_one_on_a_full_node() {
    let s = Server::start(&[]);
    let _sim = Sim::start(&s, &["--nodes", "1", "--cpu", "1"]);
    ready_nodes(&s, 1);
    for (name, value) in [("low", 10), ("high", 1000)] {
        apply(
            &s,
            &format!(
                "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: {name}\n\
                 value: {value}\n"
            ),
        );
    }
    let pod = |name: &str, class: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  priorityClassName: {class}\n  \
             containers:\n  - name: c\n    image: busybox\n    resources:\n      requests:\n        \
             cpu: 800m\n"
        )
    };
    apply(&s, &pod("victim", "low"));
    assert_eq!(node_of(&s, "victim"), "sim-node-0");
    wait_for(DEADLINE, "victim running", || {
        (jsonpath(&s, &["get", "pod", "victim"], "{.status.phase}") == "Running").then_some(())
    });
    apply(&s, &pod("important", "high"));
    assert_eq!(node_of(&s, "important"), "sim-node-0");
    let gone = s.kubectl(&["get", "pod", "victim"]);
    assert!(
        !gone.status.success(),
        "the victim is deleted before the preemptor is bound"
    );
    let preempted = jsonpath(
        &s,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=victim,reason=Preempted",
        ],
        "{.items[0].message}",
    );
    // Upstream names the preemptor by UID.
    let uid = jsonpath(&s, &["get", "pod", "important"], "{.metadata.uid}");
    assert_eq!(
        preempted,
        format!("Preempted by pod {uid} on node sim-node-0")
    );
}
