use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::runtime::{ContainerStatus, SandboxStatus};

fn probe(v: serde_json::Value) -> Probe {
    serde_json::from_value(v).expect("probe")
}

fn container(v: serde_json::Value) -> Container {
    serde_json::from_value(v).expect("container")
}

#[test]
fn a_verdict_needs_threshold_results_in_a_row() {
    let mut run = Run::default();
    // failureThreshold 3: two failures say nothing yet, a success starts over.
    assert_eq!(run.observe(false, 1, 3), None);
    assert_eq!(run.observe(false, 1, 3), None);
    assert_eq!(run.observe(true, 1, 3), Some(true));
    assert_eq!(run.observe(false, 1, 3), None);
    assert_eq!(run.observe(false, 1, 3), None);
    assert_eq!(run.observe(false, 1, 3), Some(false));
    // Once reached, the verdict repeats with each further result of its kind.
    assert_eq!(run.observe(false, 1, 3), Some(false));

    let mut run = Run::default();
    // successThreshold 2.
    assert_eq!(run.observe(true, 2, 1), None);
    assert_eq!(run.observe(true, 2, 1), Some(true));
    assert_eq!(run.observe(false, 2, 1), Some(false));
    assert_eq!(run.observe(true, 2, 1), None);
}

#[test]
fn timings_take_upstream_defaults_and_minimums() {
    assert_eq!(
        Timing::of(&probe(json!({}))),
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success: 1,
            failure: 3,
        }
    );
    let set = probe(json!({
        "initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3,
        "successThreshold": 2, "failureThreshold": 1
    }));
    assert_eq!(
        Timing::of(&set),
        Timing {
            initial_delay: Duration::from_secs(5),
            period: Duration::from_secs(2),
            timeout: Duration::from_secs(3),
            success: 2,
            failure: 1,
        }
    );
    let zero = probe(json!({"periodSeconds": 0, "timeoutSeconds": -1, "failureThreshold": 0}));
    let t = Timing::of(&zero);
    assert_eq!(
        (t.period, t.timeout, t.failure),
        (Duration::from_secs(1), Duration::from_secs(1), 1)
    );
}

#[test]
fn actions_resolve_against_the_pod_and_container() {
    let c = container(json!({
        "name": "app",
        "ports": [{"name": "web", "containerPort": 8080}],
        "env": [{"name": "FILE", "value": "/tmp/healthy"},
                {"name": "FROM", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    }));
    let exec = probe(json!({"exec": {"command": ["cat", "$(FILE)", "$(FROM)"]}}));
    assert_eq!(
        Action::new(&exec, &c, "10.42.0.9"),
        Action::Exec(vec!["cat".into(), "/tmp/healthy".into(), "$(FROM)".into()])
    );
    let tcp = probe(json!({"tcpSocket": {"port": "web"}}));
    assert_eq!(
        Action::new(&tcp, &c, "10.42.0.9"),
        Action::Tcp {
            host: "10.42.0.9".into(),
            port: 8080
        }
    );
    let grpc = probe(json!({"grpc": {"port": 9090, "service": "db"}}));
    assert_eq!(
        Action::new(&grpc, &c, "10.42.0.9"),
        Action::Grpc {
            host: "10.42.0.9".into(),
            port: 9090,
            service: "db".into()
        }
    );
    let http = probe(json!({"httpGet": {"port": "web", "path": "/healthz"}}));
    let Action::Http(get) = Action::new(&http, &c, "10.42.0.9") else {
        panic!("an httpGet probe makes an HTTP action");
    };
    assert_eq!((get.host.as_str(), get.port), ("10.42.0.9", 8080));
    let unknown = probe(json!({"tcpSocket": {"port": "nope"}}));
    assert!(matches!(
        Action::new(&unknown, &c, "10.42.0.9"),
        Action::Invalid(_)
    ));
}

#[test]
fn readiness_waits_for_start_and_for_the_readiness_probe() {
    // No probes, or no worker verdicts yet.
    assert_eq!(reported(false, false, None), (true, true));
    assert_eq!(reported(false, true, None), (true, false));
    assert_eq!(reported(true, false, None), (false, false));
    let v = |started, ready| {
        Some(Verdicts {
            started,
            ready,
            failed: None,
        })
    };
    assert_eq!(reported(true, false, v(true, false)), (true, true));
    assert_eq!(reported(true, true, v(true, false)), (true, false));
    assert_eq!(reported(true, true, v(true, true)), (true, true));
    // A readiness success before start does not make a container ready.
    assert_eq!(reported(true, true, v(false, true)), (false, false));
}

fn prober() -> (Prober, broadcast::Receiver<RuntimeEvent>) {
    let cri = Cri::connect(std::path::Path::new("/nonexistent/cri.sock"), "test".into())
        .expect("lazy connection");
    let config = kube::Config::new(http::Uri::from_static("http://127.0.0.1:9"));
    let client = kube::Client::try_from(config).expect("client");
    let (tx, rx) = broadcast::channel(64);
    (Prober::new(cri, events::Recorder::start(client), tx), rx)
}

fn pod_with(c: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [c]}
    }))
    .expect("pod")
}

fn running(id: &str) -> PodRuntimeStatus {
    PodRuntimeStatus {
        uid: "u1".into(),
        sandbox: SandboxStatus {
            id: "sb".into(),
            ips: vec!["127.0.0.1".parse().expect("ip")],
            created_at: Timestamp::now(),
            ready: true,
        },
        init_containers: Vec::new(),
        containers: vec![ContainerStatus {
            name: "app".into(),
            id: format!("containerd://{id}"),
            image: "busybox".into(),
            image_ref: String::new(),
            state: ContainerState::Running {
                started_at: Timestamp::now(),
            },
            last_state: None,
            restart_count: 0,
            started: false,
            ready: false,
        }],
        ephemeral_containers: Vec::new(),
    }
}

/// Waits (generously) for the next wake-up of pod `u1`.
async fn woken(rx: &mut broadcast::Receiver<RuntimeEvent>) {
    let ev = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the prober wakes the pod worker")
        .expect("event");
    assert_eq!(ev, RuntimeEvent::PodChanged { uid: "u1".into() });
}

#[tokio::test]
async fn a_tcp_readiness_probe_makes_the_container_ready_and_unready() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let pod = pod_with(json!({
        "name": "app",
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1}
    }));
    let (prober, mut rx) = prober();
    let mut rs = running("c1");
    // Not tracked yet: as if without probes.
    assert_eq!(prober.verdicts("u1", "app", "c1"), (true, true));
    prober.track(&pod, &mut rs);
    assert_eq!(
        (rs.containers[0].started, rs.containers[0].ready),
        (true, false),
        "the status of the sync that starts tracking has the initial verdicts"
    );
    assert_eq!(prober.verdicts("u1", "app", "c1"), (true, false));
    woken(&mut rx).await;
    assert_eq!(prober.verdicts("u1", "app", "c1"), (true, true));
    drop(listener);
    woken(&mut rx).await;
    assert_eq!(prober.verdicts("u1", "app", "c1"), (true, false));
    assert_eq!(prober.failed("u1", "app", "c1"), None);

    // A new instance starts over; the old one's verdicts are gone.
    prober.track(&pod, &mut running("c2"));
    assert_eq!(prober.verdicts("u1", "app", "c2"), (true, false));
    prober.forget("u1");
    assert_eq!(prober.verdicts("u1", "app", "c2"), (true, true));
}

#[tokio::test]
async fn a_failing_startup_probe_holds_the_other_probes_and_asks_for_a_kill() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let pod = pod_with(json!({
        "name": "app",
        "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 2},
        "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1},
        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}
    }));
    let (prober, mut rx) = prober();
    prober.track(&pod, &mut running("c1"));
    assert_eq!(prober.verdicts("u1", "app", "c1"), (false, false));
    woken(&mut rx).await;
    assert_eq!(prober.failed("u1", "app", "c1"), Some(Kind::Startup));
    assert_eq!(prober.verdicts("u1", "app", "c1"), (false, false));
    // Another instance of the container is not the one that failed.
    assert_eq!(prober.failed("u1", "app", "other"), None);
}

#[tokio::test]
async fn a_failing_liveness_probe_asks_for_a_kill_once_started() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let pod = pod_with(json!({
        "name": "app",
        "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 2}
    }));
    let (prober, mut rx) = prober();
    prober.track(&pod, &mut running("c1"));
    woken(&mut rx).await;
    assert_eq!(prober.verdicts("u1", "app", "c1"), (true, true));
    assert_eq!(prober.failed("u1", "app", "c1"), None);
    drop(listener);
    woken(&mut rx).await;
    assert_eq!(prober.failed("u1", "app", "c1"), Some(Kind::Liveness));

    // A container that no longer runs loses its worker (and its verdicts).
    let mut exited = running("c1");
    exited.containers[0].state = ContainerState::Waiting {
        reason: "CrashLoopBackOff".into(),
        message: String::new(),
    };
    prober.track(&pod, &mut exited);
    assert_eq!(prober.failed("u1", "app", "c1"), None);
}
