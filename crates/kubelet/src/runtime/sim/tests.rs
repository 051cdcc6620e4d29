use super::*;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use kube::api::ObjectMeta;

fn pod(uid: &str, node: &str, restart: &str, init: &[(&str, Option<&str>)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("p-{uid}")),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            restart_policy: Some(restart.into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("busybox".into()),
                ..Default::default()
            }],
            init_containers: Some(
                init.iter()
                    .map(|(name, policy)| Container {
                        name: name.to_string(),
                        image: Some("busybox".into()),
                        restart_policy: policy.map(String::from),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

const HOST: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 9);

// Each test uses its own block: pools are process-wide.
fn block(third: u8) -> Ipv4Cidr {
    Ipv4Cidr::new(Ipv4Addr::new(10, 250, third, 0), 24)
}

#[tokio::test]
async fn starts_pods_with_ips_from_the_node_block_and_completes_inits() {
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(1), HOST);
    let p = pod(
        "u1",
        "n1",
        "Always",
        &[("init", None), ("side", Some("Always"))],
    );
    let s = rt.sync_pod(&p).await.expect("sync");
    assert_eq!(
        s.sandbox.ips,
        vec![IpAddr::V4(Ipv4Addr::new(10, 250, 1, 2))]
    );
    assert!(s.init_containers[0].succeeded());
    assert!(s.init_containers[1].is_running());
    assert!(s.containers[0].is_running());
    assert_eq!(s.containers[0].id, "sim://u1-app");
    // Idempotent: a second sync changes nothing.
    assert_eq!(rt.sync_pod(&p).await.expect("sync"), s);
    let unknown = pod("u2", "elsewhere", "Always", &[]);
    assert!(matches!(
        rt.sync_pod(&unknown).await,
        Err(Error::UnknownNode { .. })
    ));
}

#[tokio::test]
async fn run_to_completion_pods_exit_zero_and_announce_it() {
    let rt = SimRuntime::new(Duration::from_millis(10));
    rt.add_node("n1", block(2), HOST);
    let mut events = rt.events();
    let p = pod("u3", "n1", "Never", &[("side", Some("Always"))]);
    rt.sync_pod(&p).await.expect("sync");
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event in time");
    assert_eq!(ev, Some(RuntimeEvent::PodChanged { uid: "u3".into() }));
    let s = rt.pod_status("u3").await.expect("status").expect("known");
    assert!(s.containers[0].succeeded());
    assert!(s.init_containers[0].succeeded(), "sidecar stopped too");
    assert!(s.sandbox.ready, "the sandbox lives until the pod is killed");
}

#[tokio::test]
async fn kill_releases_the_ip_and_exits_containers() {
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(3), HOST);
    let a = pod("u4", "n1", "Always", &[]);
    let first = rt.sync_pod(&a).await.expect("sync").sandbox.ips[0];
    let killed = rt
        .kill_pod(&a, Duration::ZERO)
        .await
        .expect("kill")
        .expect("known");
    assert!(!killed.sandbox.ready);
    assert!(killed.containers[0].succeeded());
    assert_eq!(killed.sandbox.ips[0], first, "a finished pod keeps its IP");
    rt.remove_pod("u4").await.expect("remove");
    assert_eq!(rt.pod_count(), 0);
    // The freed address comes back only after the rest of the block was used.
    let b = pod("u5", "n1", "Always", &[]);
    assert_ne!(rt.sync_pod(&b).await.expect("sync").sandbox.ips[0], first);
}

#[tokio::test]
async fn host_network_pods_share_the_node_ip() {
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(5), HOST);
    let mut p = pod("u7", "n1", "Always", &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.host_network = Some(true);
    }
    let s = rt.sync_pod(&p).await.expect("sync");
    assert_eq!(s.sandbox.ips, vec![IpAddr::V4(HOST)]);
    let other = rt
        .sync_pod(&pod("u8", "n1", "Always", &[]))
        .await
        .expect("sync");
    assert_eq!(
        other.sandbox.ips,
        vec![IpAddr::V4(Ipv4Addr::new(10, 250, 5, 2))],
        "the host-network pod took nothing from the pool"
    );
}

#[tokio::test]
async fn restores_a_running_pod_from_its_api_status() {
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(4), HOST);
    let mut p = pod("u6", "n1", "Always", &[]);
    let started = rt.sync_pod(&p).await.expect("sync");
    // A new runtime (a restarted simulator) sees the status an earlier one reported.
    let status = crate::status::generate(&p, &started, "172.16.0.9", Timestamp::now());
    drop(rt);
    p.status = Some(status);
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(4), HOST);
    let again = rt.sync_pod(&p).await.expect("sync");
    assert_eq!(again.sandbox.ips, started.sandbox.ips);
    assert!(again.containers[0].is_running());
}

fn annotated(mut p: Pod, exit_code: &str, run_seconds: &str) -> Pod {
    p.metadata.annotations = Some(
        [
            (EXIT_CODE_ANNOTATION.to_string(), exit_code.to_string()),
            (RUN_SECONDS_ANNOTATION.to_string(), run_seconds.to_string()),
        ]
        .into(),
    );
    p
}

#[tokio::test]
async fn annotations_set_the_exit_code_and_run_time_of_a_pod() {
    // The runtime's own run time is an hour: only the annotation can end the pod in time.
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(6), HOST);
    let mut events = rt.events();
    let p = annotated(
        pod("u9", "n1", "Never", &[("side", Some("Always"))]),
        "3",
        "0.01",
    );
    rt.sync_pod(&p).await.expect("sync");
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event in time");
    assert_eq!(ev, Some(RuntimeEvent::PodChanged { uid: "u9".into() }));
    let s = rt.pod_status("u9").await.expect("status").expect("known");
    assert!(
        matches!(&s.containers[0].state, ContainerState::Exited { exit_code: 3, reason, .. } if reason == "Error"),
        "{:?}",
        s.containers[0].state
    );
    assert!(!s.init_containers[0].is_running(), "a Never pod is done");
    // Never: the failed container stays exited.
    let again = rt.sync_pod(&p).await.expect("sync");
    assert_eq!(again.containers[0].restart_count, 0);
    assert!(!again.containers[0].is_running());
}

#[tokio::test]
async fn on_failure_pods_restart_their_failed_containers() {
    let rt = SimRuntime::new(Duration::from_secs(3600));
    rt.add_node("n1", block(7), HOST);
    let mut events = rt.events();
    let p = annotated(
        pod("u10", "n1", "OnFailure", &[("side", Some("Always"))]),
        "1",
        "0.01",
    );
    rt.sync_pod(&p).await.expect("sync");
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event in time");
    let s = rt.pod_status("u10").await.expect("status").expect("known");
    assert!(!s.containers[0].is_running());
    assert!(
        s.init_containers[0].is_running(),
        "the sidecar runs on while the pod is not done"
    );
    // The worker's next sync restarts it.
    let restarted = rt.sync_pod(&p).await.expect("sync");
    assert!(restarted.containers[0].is_running());
    assert_eq!(restarted.containers[0].restart_count, 1);
    // And it fails again after its run.
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event in time");
    let s = rt.pod_status("u10").await.expect("status").expect("known");
    assert!(!s.containers[0].succeeded() && !s.containers[0].is_running());
}

#[test]
fn unparsable_annotations_fall_back_to_the_defaults() {
    let p = annotated(pod("u11", "n1", "Never", &[]), "x", "-1");
    let s = Script::of(&p, Duration::from_secs(5));
    assert_eq!(s.exit_code, 0);
    assert_eq!(s.run, Duration::from_secs(5));
    assert!(s.ends_pod());
}
