//! Simulated nodes against a real in-process API server: registration, leases, pods
//! bound to them running, finishing and going away, and a node failing.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use common::{Cluster, cluster, condition, create_and_bind, phase, pod, sim_config, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Container, Node, Pod, Taint};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::watcher::{self, Event};
use kubelet::Sim;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(30);

async fn start(c: &Cluster, cfg: kubelet::SimConfig) -> (Sim, CancellationToken) {
    let stop = CancellationToken::new();
    let sim = Sim::start(c.client.clone(), cfg, stop.clone())
        .await
        .expect("simulator starts");
    (sim, stop)
}

async fn renew_time(leases: &Api<Lease>, name: &str) -> Option<jiff::Timestamp> {
    let l = leases.get(name).await.ok()?;
    l.spec?.renew_time.map(|t| t.0)
}

/// Waits until the lease of `name` has been renewed `times` more times.
async fn renewed(leases: &Api<Lease>, name: &str, times: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = renew_time(leases, name).await;
    let mut seen = 0;
    while seen < times {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {times} renewals of {name}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = renew_time(leases, name).await;
        if now.is_some() && now != last {
            last = now;
            seen += 1;
        }
    }
}

async fn pod_where(pods: &Api<Pod>, name: &str, what: &str, pred: impl Fn(&Pod) -> bool) -> Pod {
    wait_for(&format!("pod {name} {what}"), DEADLINE, || async {
        pods.get(name).await.ok().filter(|p| pred(p))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_ready_with_kubelet_labels_capacity_and_renewed_leases() {
    let c = cluster().await;
    let mut cfg = sim_config(3, "reg-");
    cfg.labels = BTreeMap::from([("disktype".to_string(), "ssd".to_string())]);
    cfg.extended_resources = BTreeMap::from([("nvidia.com/gpu".to_string(), "2".to_string())]);
    cfg.taints = vec![Taint {
        key: "dedicated".into(),
        value: Some("sim".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    }];
    let (sim, stop) = start(&c, cfg).await;
    assert_eq!(
        sim.node_names().collect::<Vec<_>>(),
        ["reg-0", "reg-1", "reg-2"]
    );

    let nodes: Api<Node> = Api::all(c.client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .expect("list nodes");
    assert_eq!(list.items.len(), 3);
    let mut ips = Vec::new();
    for (i, n) in list.items.iter().enumerate() {
        let name = n.metadata.name.as_deref().expect("name");
        assert_eq!(name, format!("reg-{i}"));
        let labels = n.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert!(labels.contains_key("kubernetes.io/arch"));
        assert_eq!(labels["node.kubernetes.io/instance-type"], "sim");
        assert_eq!(labels["disktype"], "ssd");
        assert_eq!(
            labels["topology.kubernetes.io/zone"],
            ["zone-a", "zone-b", "zone-c"][i],
            "zones are assigned round-robin"
        );
        let taints = n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .expect("taints");
        assert_eq!(taints[0].key, "dedicated");

        let status = n.status.as_ref().expect("status");
        let cap = status.capacity.as_ref().expect("capacity");
        assert_eq!(cap["cpu"].0, "32");
        assert_eq!(cap["memory"].0, "256Gi");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap["nvidia.com/gpu"].0, "2");
        assert!(cap.contains_key("ephemeral-storage"));
        assert_eq!(status.allocatable.as_ref(), Some(cap));
        let conds = status.conditions.as_ref().expect("conditions");
        let get = |t: &str| conds.iter().find(|c| c.type_ == t).expect(t);
        let ready = get("Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert!(ready.last_heartbeat_time.is_some());
        for t in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(get(t).status, "False", "{t}");
        }
        let info = status.node_info.as_ref().expect("nodeInfo");
        assert_eq!(info.kubelet_version, "v1.33.0");
        assert!(info.container_runtime_version.starts_with("sim://"));
        let ip = status
            .addresses
            .iter()
            .flatten()
            .find(|a| a.type_ == "InternalIP")
            .expect("InternalIP");
        ips.push(ip.address.clone());
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "each node has its own InternalIP");

    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    for n in &list.items {
        let name = n.metadata.name.as_deref().expect("name");
        let lease = leases.get(name).await.expect("lease exists");
        let spec = lease.spec.as_ref().expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some(name));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        let owner = &lease.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(owner.kind, "Node");
        assert_eq!(Some(&owner.uid), n.metadata.uid.as_ref());
    }
    for n in sim.node_names() {
        renewed(&leases, n, 2).await;
    }
    stop.cancel();
    sim.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_pod_becomes_running_with_an_ip_and_ready_conditions() {
    let c = cluster().await;
    let (sim, stop) = start(&c, sim_config(2, "run-")).await;
    let mut web = pod("web", "Always");
    if let Some(spec) = web.spec.as_mut() {
        spec.init_containers = Some(vec![Container {
            name: "setup".into(),
            image: Some("busybox:1.36".into()),
            ..Default::default()
        }]);
    }
    create_and_bind(&c.client, &web, "run-1").await;

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let p = pod_where(&pods, "web", "Running and Ready", |p| {
        phase(p) == Some("Running") && condition(p, "Ready") == Some("True")
    })
    .await;
    let status = p.status.as_ref().expect("status");
    let ip: Ipv4Addr = status
        .pod_ip
        .as_deref()
        .expect("podIP")
        .parse()
        .expect("an IPv4 podIP");
    assert!(
        kubelet::Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 16).contains(ip),
        "{ip} is in the cluster CIDR"
    );
    assert_eq!(
        status.pod_ips.as_ref().map(|v| v[0].ip.as_str()),
        status.pod_ip.as_deref()
    );
    let node = Api::<Node>::all(c.client.clone())
        .get("run-1")
        .await
        .expect("node");
    let node_ip = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.clone());
    assert_eq!(status.host_ip, node_ip);
    assert_eq!(status.host_ips.as_ref().map(|v| v[0].ip.clone()), node_ip);
    assert!(status.start_time.is_some());
    assert_eq!(
        status.qos_class.as_deref(),
        Some("BestEffort"),
        "qosClass survives"
    );
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ] {
        assert_eq!(condition(&p, t), Some("True"), "{t}");
    }
    let app = &status
        .container_statuses
        .as_ref()
        .expect("containerStatuses")[0];
    let uid = p.metadata.uid.as_deref().expect("uid");
    assert!(app.ready);
    assert_eq!(app.started, Some(true));
    assert_eq!(app.restart_count, 0);
    assert_eq!(app.image, "busybox:1.36");
    assert!(!app.image_id.is_empty());
    assert_eq!(
        app.container_id.as_deref(),
        Some(format!("sim://{uid}-app").as_str())
    );
    assert!(
        app.state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .is_some()
    );
    let setup = &status
        .init_container_statuses
        .as_ref()
        .expect("initContainerStatuses")[0];
    let done = setup
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(
        (done.exit_code, done.reason.as_deref()),
        (0, Some("Completed"))
    );
    stop.cancel();
    sim.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_restarting_pod_succeeds_after_its_run_time() {
    let c = cluster().await;
    let (sim, stop) = start(&c, sim_config(1, "job-")).await;
    create_and_bind(&c.client, &pod("once", "Never"), "job-0").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let p = pod_where(&pods, "once", "Succeeded", |p| {
        phase(p) == Some("Succeeded")
    })
    .await;
    let status = p.status.as_ref().expect("status");
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    assert_eq!(condition(&p, "PodReadyToStartContainers"), Some("False"));
    let app = &status
        .container_statuses
        .as_ref()
        .expect("containerStatuses")[0];
    let t = app
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert!(!app.ready);
    assert!(status.pod_ip.is_some(), "a finished pod keeps its IP");
    stop.cancel();
    sim.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_pod_makes_it_disappear() {
    let c = cluster().await;
    let (sim, stop) = start(&c, sim_config(1, "del-")).await;
    create_and_bind(&c.client, &pod("doomed", "Always"), "del-0").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pod_where(&pods, "doomed", "Running", |p| phase(p) == Some("Running")).await;
    // A scheduled pod is deleted gracefully: the API server only marks it; the node
    // finishes it and confirms.
    let marked = pods
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        marked.is_left(),
        "graceful deletion leaves the pod for the node"
    );
    wait_for("the pod to disappear", DEADLINE, || async {
        match pods.get("doomed").await {
            Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
            _ => None,
        }
    })
    .await;
    stop.cancel();
    sim.join().await;
}

/// What a watcher (a Job or ReplicaSet controller) sees of a pod deleted while running:
/// upstream shows the final status (Modified, phase Succeeded) before the Deleted event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_shows_its_final_status_before_it_goes() {
    let c = cluster().await;
    let (sim, stop) = start(&c, sim_config(1, "fin-")).await;
    create_and_bind(&c.client, &pod("last", "Always"), "fin-0").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pod_where(&pods, "last", "Running", |p| phase(p) == Some("Running")).await;
    let watched = pods.clone();
    let history = tokio::spawn(async move {
        let cfg = watcher::Config::default().fields("metadata.name=last");
        let mut events = watcher::watcher(watched, cfg).boxed();
        let mut seen = Vec::new();
        while let Ok(Some(ev)) = events.try_next().await {
            match ev {
                Event::Apply(p) => seen.push(phase(&p).unwrap_or_default().to_string()),
                Event::Delete(p) => {
                    seen.push(format!("deleted {}", phase(&p).unwrap_or_default()));
                    return seen;
                }
                _ => {}
            }
        }
        seen
    });
    pods.delete("last", &DeleteParams::default())
        .await
        .expect("delete");
    let seen = tokio::time::timeout(DEADLINE, history)
        .await
        .expect("the watch saw the deletion")
        .expect("watch task");
    assert!(
        seen.ends_with(&["Succeeded".to_string(), "deleted Succeeded".to_string()]),
        "the node posts the final status, then confirms the deletion: {seen:?}"
    );
    stop.cancel();
    sim.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_node_stops_renewing_its_lease_and_touching_its_pods() {
    let c = cluster().await;
    let (sim, stop) = start(&c, sim_config(2, "fail-")).await;
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    assert!(sim.fail_node("fail-0"));
    assert!(!sim.fail_node("nope"));
    assert_eq!(sim.is_failed("fail-0"), Some(true));
    // Once the healthy node has renewed twice, a renewal of the failed one that was in
    // flight when it failed has landed too.
    renewed(&leases, "fail-1", 2).await;
    let frozen = renew_time(&leases, "fail-0").await.expect("lease");

    create_and_bind(&c.client, &pod("stuck", "Always"), "fail-0").await;
    create_and_bind(&c.client, &pod("fine", "Always"), "fail-1").await;
    pod_where(&pods, "fine", "Running", |p| phase(p) == Some("Running")).await;
    renewed(&leases, "fail-1", 3).await;
    assert_eq!(
        renew_time(&leases, "fail-0").await,
        Some(frozen),
        "no renewals while failed"
    );
    let stuck = pods.get("stuck").await.expect("stuck pod");
    assert_eq!(
        phase(&stuck),
        Some("Pending"),
        "a failed node leaves its pods alone"
    );
    assert!(
        stuck
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_none()
    );

    assert!(sim.recover_node("fail-0"));
    renewed(&leases, "fail-0", 1).await;
    pod_where(&pods, "stuck", "Running after recovery", |p| {
        phase(p) == Some("Running")
    })
    .await;
    stop.cancel();
    sim.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_status_is_reported_again_with_a_fresh_heartbeat() {
    let c = cluster().await;
    let mut cfg = sim_config(1, "beat-");
    cfg.node_status_report_interval = Duration::from_millis(500);
    let (sim, stop) = start(&c, cfg).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready").cloned())
            .expect("Ready")
    };
    let first = ready(&nodes.get("beat-0").await.expect("node"));
    // Heartbeat times have whole seconds: wait for the next second to be posted.
    let later = wait_for("a newer node heartbeat", DEADLINE, || async {
        let n = nodes.get("beat-0").await.ok()?;
        let r = ready(&n);
        (r.last_heartbeat_time > first.last_heartbeat_time).then_some(n)
    })
    .await;
    let conds = later
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .expect("conditions");
    assert_eq!(conds.len(), 4, "conditions merge by type: {conds:?}");
    assert_eq!(
        ready(&later).last_transition_time,
        first.last_transition_time
    );
    assert_eq!(ready(&later).status, "True");
    stop.cancel();
    sim.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_simulator_takes_back_its_nodes_and_running_pods() {
    let c = cluster().await;
    let (sim, stop) = start(&c, sim_config(1, "again-")).await;
    create_and_bind(&c.client, &pod("keeper", "Always"), "again-0").await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let before = pod_where(&pods, "keeper", "Running", |p| phase(p) == Some("Running")).await;
    stop.cancel();
    sim.join().await;

    let (sim, stop) = start(&c, sim_config(1, "again-")).await;
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    renewed(&leases, "again-0", 1).await;
    let node = Api::<Node>::all(c.client.clone())
        .get("again-0")
        .await
        .expect("node");
    let lease = leases.get("again-0").await.expect("lease");
    assert_eq!(
        lease
            .metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].uid.clone()),
        node.metadata.uid,
        "the same Node, the lease still owned by it"
    );
    // The pod keeps its IP and start time; only the host IP follows the node.
    create_and_bind(&c.client, &pod("marker", "Always"), "again-0").await;
    pod_where(&pods, "marker", "Running", |p| phase(p) == Some("Running")).await;
    let after = pods.get("keeper").await.expect("keeper");
    let (b, a) = (
        before.status.expect("status"),
        after.status.expect("status"),
    );
    assert_eq!(phase_of(&a), Some("Running"));
    assert_eq!(a.pod_ip, b.pod_ip);
    assert_eq!(a.start_time, b.start_time);
    let started = |s: &k8s_openapi::api::core::v1::PodStatus| {
        s.container_statuses
            .as_ref()
            .and_then(|c| c[0].state.clone())
    };
    assert_eq!(started(&a), started(&b));
    stop.cancel();
    sim.join().await;
}

fn phase_of(s: &k8s_openapi::api::core::v1::PodStatus) -> Option<&str> {
    s.phase.as_deref()
}
