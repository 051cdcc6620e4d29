//! The scheduler against a real API server with hand-made nodes: where pods land, what an
//! unschedulable pod shows, and preemption.

mod common;

use std::collections::BTreeMap;

use common::{Cluster, wait};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, Patch, PatchParams, PostParams};
use scheduler::SchedulerConfig;
use serde_json::json;

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_pod_waits_for_a_labelled_node() {
    let c = Cluster::start().await;
    for n in ["node-1", "node-2", "node-3"] {
        c.plain_node(n, json!({})).await;
    }
    c.scheduler(SchedulerConfig::default()).await;
    c.pod(json!({"metadata": {"name": "ssd-pod"}, "spec": {"nodeSelector": {"disktype": "ssd"}}}))
        .await;
    let want = format!(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}."
    );
    assert_eq!(c.unschedulable("ssd-pod").await, want);
    let ev = c.event("ssd-pod", "FailedScheduling").await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.message.as_deref(), Some(want.as_str()));
    assert_eq!(ev.reporting_component.as_deref(), Some("default-scheduler"));
    assert_eq!(
        ev.source.and_then(|s| s.component).as_deref(),
        Some("default-scheduler")
    );
    assert!(
        c.get_pod("ssd-pod")
            .await
            .spec
            .and_then(|s| s.node_name)
            .is_none()
    );

    c.nodes()
        .patch(
            "node-2",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"disktype": "ssd"}}})),
        )
        .await
        .expect("label node");
    assert_eq!(c.bound("ssd-pod").await, "node-2");
    let ev = c.event("ssd-pod", "Scheduled").await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(
        ev.message.as_deref(),
        Some("Successfully assigned default/ssd-pod to node-2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_keep_pods_off_unless_tolerated() {
    let c = Cluster::start().await;
    c.node(
        "gpu-node",
        json!({}),
        json!({"cpu": "8", "memory": "16Gi", "pods": "110"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    )
    .await;
    for n in ["small-1", "small-2"] {
        c.node(
            n,
            json!({}),
            json!({"cpu": "1", "memory": "2Gi", "pods": "110"}),
            json!([]),
        )
        .await;
    }
    c.scheduler(SchedulerConfig::default()).await;
    let big = json!([{"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]);
    c.pod(json!({"metadata": {"name": "plain"}, "spec": {"containers": big}}))
        .await;
    assert_eq!(
        c.unschedulable("plain").await,
        format!(
            "0/3 nodes are available: 1 node(s) had untolerated taint {{dedicated: gpu}}, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: 1 {NOT_HELPFUL}, \
             2 No preemption victims found for incoming pod."
        )
    );
    c.pod(json!({"metadata": {"name": "tolerant"}, "spec": {"containers": big,
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}))
        .await;
    assert_eq!(c.bound("tolerant").await, "gpu-node");
    // A small pod without the toleration goes to an untainted node.
    c.pod(json!({"metadata": {"name": "small"}})).await;
    assert!(c.bound("small").await.starts_with("small-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_anti_affinity_places_one_per_host() {
    let c = Cluster::start().await;
    for n in ["host-a", "host-b", "host-c"] {
        c.plain_node(n, json!({})).await;
    }
    c.scheduler(SchedulerConfig::default()).await;
    for i in 0..4 {
        c.pod(json!({"metadata": {"name": format!("db-{i}"), "labels": {"app": "db"}}, "spec": {
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}}}))
            .await;
    }
    // Three of the four land, each on its own host; the fourth cannot.
    let mut hosts = Vec::new();
    let mut pending = Vec::new();
    wait("three db pods bound", || async {
        let mut bound = 0;
        for i in 0..4 {
            if c.get_pod(&format!("db-{i}"))
                .await
                .spec
                .and_then(|s| s.node_name)
                .is_some()
            {
                bound += 1;
            }
        }
        (bound == 3).then_some(())
    })
    .await;
    for i in 0..4 {
        let name = format!("db-{i}");
        match c.get_pod(&name).await.spec.and_then(|s| s.node_name) {
            Some(n) => hosts.push(n),
            None => pending.push(name),
        }
    }
    hosts.sort();
    assert_eq!(hosts, ["host-a", "host-b", "host-c"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(
        c.unschedulable(&pending[0]).await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_spread_puts_two_replicas_in_each_zone() {
    let c = Cluster::start().await;
    for zone in ["zone-a", "zone-b", "zone-c"] {
        for i in 1..=2 {
            c.plain_node(
                &format!("{zone}-{i}"),
                json!({"topology.kubernetes.io/zone": zone}),
            )
            .await;
        }
    }
    c.scheduler(SchedulerConfig::default()).await;
    // The seed `web-app` Deployment's pod template: spread by host and by zone.
    for i in 0..6 {
        c.pod(json!({"metadata": {"name": format!("web-app-{i}"), "labels": {"app": "web-app"}}, "spec": {
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "web-app"}}},
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                 "labelSelector": {"matchLabels": {"app": "web-app"}}}]}}))
            .await;
    }
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        let node = c.bound(&format!("web-app-{i}")).await;
        *per_zone.entry(node[..6].to_string()).or_default() += 1;
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        per_zone.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_zone:?}"
    );
    assert!(per_node.values().all(|n| *n == 1), "{per_node:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_request_lands_on_the_node_that_advertises_gpus() {
    let c = Cluster::start().await;
    c.plain_node("cpu-1", json!({})).await;
    c.node(
        "gpu-1",
        json!({}),
        json!({"cpu": "4", "memory": "8Gi", "pods": "110", "nvidia.com/gpu": "1"}),
        json!([]),
    )
    .await;
    c.plain_node("cpu-2", json!({})).await;
    c.scheduler(SchedulerConfig::default()).await;
    let gpu = |n: u32| {
        json!([{"name": "cuda", "image": "cuda", "resources": {
            "requests": {"nvidia.com/gpu": n.to_string()}, "limits": {"nvidia.com/gpu": n.to_string()}}}])
    };
    c.pod(json!({"metadata": {"name": "trainer"}, "spec": {"containers": gpu(1)}}))
        .await;
    assert_eq!(c.bound("trainer").await, "gpu-1");
    c.pod(json!({"metadata": {"name": "second"}, "spec": {"containers": gpu(1)}}))
        .await;
    assert_eq!(
        c.unschedulable("second").await,
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: \
         3 No preemption victims found for incoming pod."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pod_preempts_a_low_priority_one() {
    let c = Cluster::start().await;
    c.node(
        "only",
        json!({}),
        json!({"cpu": "2", "memory": "4Gi", "pods": "110"}),
        json!([]),
    )
    .await;
    let pcs: Api<PriorityClass> = Api::all(c.client.clone());
    for (name, value) in [("low", 100), ("high", 1000)] {
        let pc: PriorityClass = serde_json::from_value(json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value}))
        .expect("pc");
        pcs.create(&PostParams::default(), &pc)
            .await
            .expect("create priorityclass");
    }
    c.scheduler(SchedulerConfig::default()).await;
    let two_cpus =
        json!([{"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]);
    c.pod(json!({"metadata": {"name": "batch"}, "spec": {"priorityClassName": "low", "containers": two_cpus}}))
        .await;
    assert_eq!(c.bound("batch").await, "only");

    c.pod(json!({"metadata": {"name": "urgent"}, "spec": {"priorityClassName": "high", "containers": two_cpus}}))
        .await;
    // The victim is being deleted (graceful, as the API server does for a scheduled pod)
    // and the preemptor is nominated to its node.
    wait("victim terminating", || async {
        c.get_pod("batch")
            .await
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    let nominated = wait("urgent nominated", || async {
        c.get_pod("urgent")
            .await
            .status
            .and_then(|s| s.nominated_node_name)
            .filter(|n| !n.is_empty())
    })
    .await;
    assert_eq!(nominated, "only");
    let preempted = c.event("batch", "Preempted").await;
    let urgent_uid = c.get_pod("urgent").await.metadata.uid.unwrap_or_default();
    assert_eq!(
        preempted.message.as_deref(),
        Some(format!("Preempted by pod {urgent_uid} on node only").as_str())
    );
    let batch = c.get_pod("batch").await;
    assert!(
        batch
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "DisruptionTarget"
                && c.reason.as_deref() == Some("PreemptionByScheduler")),
        "victim marked DisruptionTarget"
    );
    // Play the kubelet: the victim's containers stop and it goes away; the preemptor binds.
    c.finalize_terminating_pods();
    assert_eq!(c.bound("urgent").await, "only");
    wait("victim gone", || async {
        c.pods()
            .get_opt("batch")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_pick_their_pods_and_bin_pack_with_most_allocated() {
    let c = Cluster::start().await;
    for n in ["n1", "n2", "n3"] {
        c.plain_node(n, json!({})).await;
    }
    let cfg = scheduler::parse_config(
        r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - {name: cpu, weight: 1}
        - {name: memory, weight: 1}
"#,
    )
    .expect("config");
    c.scheduler(cfg).await;
    c.pod(json!({"metadata": {"name": "stranger"}, "spec": {"schedulerName": "someone-else"}}))
        .await;
    let small = json!([{"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]);
    let mut nodes = Vec::new();
    for i in 0..4 {
        let name = format!("packed-{i}");
        c.pod(json!({"metadata": {"name": name}, "spec": {"schedulerName": "bin-packing", "containers": small}}))
            .await;
        // One at a time, so each sees the previous one placed.
        nodes.push(c.bound(&name).await);
    }
    assert!(
        nodes.iter().all(|n| *n == nodes[0]),
        "MostAllocated packs: {nodes:?}"
    );
    // The scheduler saw `stranger` before the later pods and left it alone.
    assert!(
        c.get_pod("stranger")
            .await
            .spec
            .and_then(|s| s.node_name)
            .is_none()
    );
    assert!(c.events("stranger").await.is_empty());
}
