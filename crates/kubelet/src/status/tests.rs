use std::net::{IpAddr, Ipv4Addr};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, Pod, PodCondition, PodReadinessGate, PodSpec, PodStatus, VolumeMount,
};
use kube::api::ObjectMeta;

use super::*;
use crate::runtime::{ContainerState, ContainerStatus, PodRuntimeStatus, SandboxStatus};

fn ts(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).expect("timestamp")
}

fn pod(restart: &str, init: &[(&str, bool)]) -> Pod {
    let c = |name: &str, sidecar: bool| Container {
        name: name.into(),
        image: Some("busybox:1.36".into()),
        restart_policy: sidecar.then(|| "Always".into()),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("default".into()),
            uid: Some("u".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n".into()),
            restart_policy: Some(restart.into()),
            containers: vec![Container {
                volume_mounts: Some(vec![VolumeMount {
                    name: "cfg".into(),
                    mount_path: "/etc/cfg".into(),
                    read_only: Some(true),
                    ..Default::default()
                }]),
                ..c("app", false)
            }],
            init_containers: Some(init.iter().map(|(n, s)| c(n, *s)).collect()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: Some("BestEffort".into()),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "True".into(),
                last_transition_time: Some(Time(ts(-5))),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn rt_container(name: &str, state: ContainerState) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        id: format!("sim://u-{name}"),
        image: "busybox:1.36".into(),
        image_ref: "sim://busybox:1.36".into(),
        state,
        last_state: None,
        restart_count: 0,
        started: true,
        ready: true,
    }
}

fn exited(code: i32) -> ContainerState {
    ContainerState::Exited {
        started_at: ts(0),
        finished_at: ts(1),
        exit_code: code,
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
        message: None,
    }
}

fn runtime(init: Vec<ContainerStatus>, app: ContainerState, ready: bool) -> PodRuntimeStatus {
    PodRuntimeStatus {
        uid: "u".into(),
        sandbox: SandboxStatus {
            id: "sim-u".into(),
            ips: vec![IpAddr::V4(Ipv4Addr::new(10, 42, 0, 2))],
            created_at: ts(0),
            ready,
        },
        init_containers: init,
        containers: vec![rt_container("app", app)],
        ephemeral_containers: Vec::new(),
    }
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("condition {t}"))
}

#[test]
fn a_running_pod_reports_ips_conditions_and_container_states() {
    let p = pod("Always", &[("init", false), ("side", true)]);
    let rs = runtime(
        vec![
            rt_container("init", exited(0)),
            rt_container("side", ContainerState::Running { started_at: ts(0) }),
        ],
        ContainerState::Running { started_at: ts(0) },
        true,
    );
    let s = generate(&p, &rs, "172.16.0.1", ts(10));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.2"));
    assert_eq!(
        s.host_ips.as_ref().map(|h| h[0].ip.as_str()),
        Some("172.16.0.1")
    );
    let types: Vec<_> = s
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(types, KUBELET_CONDITIONS);
    assert!(s.conditions.iter().flatten().all(|c| c.status == "True"));
    // PodScheduled keeps the time the binding set; the others start now.
    assert_eq!(
        cond(&s, "PodScheduled").last_transition_time,
        Some(Time(ts(-5)))
    );
    assert_eq!(cond(&s, "Ready").last_transition_time, Some(Time(ts(10))));
    let app = &s.container_statuses.as_ref().expect("statuses")[0];
    assert!(app.ready);
    assert_eq!(app.started, Some(true));
    assert_eq!(app.container_id.as_deref(), Some("sim://u-app"));
    assert_eq!(
        app.volume_mounts
            .as_ref()
            .and_then(|m| m[0].recursive_read_only.as_deref()),
        Some("Disabled")
    );
    let init = s.init_container_statuses.as_ref().expect("init statuses");
    assert!(init[0].ready, "a completed init container is ready");
    assert_eq!(init[0].started, Some(false));
    let term = init[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(term.reason.as_deref(), Some("Completed"));
    assert_eq!(init[1].started, Some(true));
    assert_eq!(s.start_time, Some(Time(ts(0))));
    assert_eq!(
        s.qos_class, None,
        "qosClass is the API server's, not ours to patch"
    );
}

#[test]
fn a_finished_pod_is_succeeded_with_pod_completed_conditions() {
    let p = pod("Never", &[]);
    let s = generate(&p, &runtime(vec![], exited(0), false), "172.16.0.1", ts(10));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let r = cond(&s, "Ready");
    assert_eq!(
        (r.status.as_str(), r.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    let i = cond(&s, "Initialized");
    assert_eq!(
        (i.status.as_str(), i.reason.as_deref()),
        ("True", Some("PodCompleted"))
    );
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
    let app = &s.container_statuses.as_ref().expect("statuses")[0];
    assert!(!app.ready);
    assert_eq!(
        s.pod_ip.as_deref(),
        Some("10.42.0.2"),
        "a finished pod keeps its IP"
    );
}

#[test]
fn phase_follows_upstream_rules() {
    let never = pod("Never", &[]);
    let failed = generate(&never, &runtime(vec![], exited(1), true), "h", ts(0));
    assert_eq!(failed.phase.as_deref(), Some("Failed"));
    assert_eq!(cond(&failed, "Ready").reason.as_deref(), Some("PodFailed"));
    let always = pod("Always", &[]);
    let restarting = generate(&always, &runtime(vec![], exited(0), true), "h", ts(0));
    assert_eq!(restarting.phase.as_deref(), Some("Running"));
    let deleted = generate(&always, &runtime(vec![], exited(0), false), "h", ts(0));
    assert_eq!(deleted.phase.as_deref(), Some("Succeeded"));
    let with_init = pod("Always", &[("init", false)]);
    let pending = generate(
        &with_init,
        &runtime(
            vec![rt_container(
                "init",
                ContainerState::Running { started_at: ts(0) },
            )],
            ContainerState::Created,
            true,
        ),
        "h",
        ts(0),
    );
    assert_eq!(pending.phase.as_deref(), Some("Pending"));
    let i = cond(&pending, "Initialized");
    assert_eq!(i.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(
        i.message.as_deref(),
        Some("containers with incomplete status: [init]")
    );
}

#[test]
fn a_terminal_phase_is_never_left() {
    let mut p = pod("Never", &[]);
    if let Some(s) = p.status.as_mut() {
        s.phase = Some("Succeeded".into());
    }
    let s = generate(
        &p,
        &runtime(vec![], ContainerState::Running { started_at: ts(0) }, true),
        "h",
        ts(0),
    );
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
}

#[test]
fn readiness_gates_hold_ready_back() {
    let mut p = pod("Always", &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.readiness_gates = Some(vec![PodReadinessGate {
            condition_type: "example.com/lb".into(),
        }]);
    }
    let rs = runtime(vec![], ContainerState::Running { started_at: ts(0) }, true);
    let s = generate(&p, &rs, "h", ts(0));
    let r = cond(&s, "Ready");
    assert_eq!(r.reason.as_deref(), Some("ReadinessGatesNotReady"));
    assert_eq!(
        r.message.as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
    );
    assert_eq!(cond(&s, "ContainersReady").status, "True");
    if let Some(st) = p.status.as_mut() {
        st.conditions
            .get_or_insert_with(Vec::new)
            .push(PodCondition {
                type_: "example.com/lb".into(),
                status: "True".into(),
                ..Default::default()
            });
    }
    assert_eq!(cond(&generate(&p, &rs, "h", ts(0)), "Ready").status, "True");
}

#[test]
fn unchanged_ignores_fields_and_conditions_owned_by_others() {
    let mut p = pod("Always", &[]);
    let rs = runtime(vec![], ContainerState::Running { started_at: ts(0) }, true);
    let first = generate(&p, &rs, "h", ts(1));
    assert!(!unchanged(p.status.as_ref(), &first));
    // The API now holds what we posted, plus a condition and fields of others.
    let mut posted = first.clone();
    posted.qos_class = Some("BestEffort".into());
    posted.conditions.get_or_insert_with(Vec::new).insert(
        0,
        PodCondition {
            type_: "DisruptionTarget".into(),
            status: "False".into(),
            ..Default::default()
        },
    );
    p.status = Some(posted);
    let again = generate(&p, &rs, "h", ts(99));
    assert!(unchanged(p.status.as_ref(), &again), "{again:?}");
}

#[test]
fn ephemeral_containers_are_reported_apart_and_never_count_for_readiness_or_phase() {
    let mut p = pod("Never", &[]);
    if let Some(spec) = p.spec.as_mut() {
        spec.ephemeral_containers = Some(vec![
            k8s_openapi::api::core::v1::EphemeralContainer {
                name: "debugger".into(),
                image: Some("busybox:1.36".into()),
                target_container_name: Some("app".into()),
                ..Default::default()
            },
            k8s_openapi::api::core::v1::EphemeralContainer {
                name: "pending".into(),
                image: Some("busybox:1.36".into()),
                ..Default::default()
            },
        ]);
    }
    let running = ContainerState::Running { started_at: ts(0) };
    let mut rs = runtime(Vec::new(), running.clone(), true);
    rs.ephemeral_containers = vec![rt_container("debugger", exited(1))];
    let s = generate(&p, &rs, "10.0.0.1", ts(10));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&s, "Ready").status, "True");
    let eph = s.ephemeral_container_statuses.expect("ephemeral statuses");
    assert_eq!(eph.len(), 2);
    assert_eq!(eph[0].name, "debugger");
    assert!(!eph[0].ready && eph[0].started.is_none());
    let terminated = eph[0].state.as_ref().and_then(|st| st.terminated.as_ref());
    assert_eq!(terminated.map(|t| t.exit_code), Some(1));
    let waiting = eph[1].state.as_ref().and_then(|st| st.waiting.as_ref());
    assert_eq!(
        waiting.and_then(|w| w.reason.as_deref()),
        Some("ContainerCreating")
    );
    // A running debugger does not keep a finished pod from finishing either.
    rs.containers = vec![rt_container("app", exited(0))];
    rs.ephemeral_containers = vec![rt_container("debugger", running)];
    let s = generate(&p, &rs, "10.0.0.1", ts(10));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
}

#[test]
fn probe_verdicts_drive_started_ready_and_the_ready_conditions() {
    let p = pod("Always", &[("side", true)]);
    let running = ContainerState::Running { started_at: ts(0) };
    let mut rs = runtime(
        vec![rt_container("side", running.clone())],
        running.clone(),
        true,
    );
    // The app's readiness probe has not succeeded yet.
    rs.containers[0].ready = false;
    let s = generate(&p, &rs, "172.16.0.1", ts(10));
    let app = &s.container_statuses.as_ref().expect("statuses")[0];
    assert!(!app.ready);
    assert_eq!(app.started, Some(true));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    for t in ["ContainersReady", "Ready"] {
        let c = cond(&s, t);
        assert_eq!(c.status, "False", "{t}");
        assert_eq!(c.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            c.message.as_deref(),
            Some("containers with unready status: [app]")
        );
    }

    // A sidecar whose startup probe has not succeeded is neither started nor ready.
    rs.containers[0].ready = true;
    rs.init_containers[0].started = false;
    rs.init_containers[0].ready = false;
    let s = generate(&p, &rs, "172.16.0.1", ts(10));
    let side = &s.init_container_statuses.as_ref().expect("init statuses")[0];
    assert_eq!((side.started, side.ready), (Some(false), false));
    assert_eq!(
        cond(&s, "Ready").message.as_deref(),
        Some("containers with unready status: [side]")
    );

    rs.init_containers[0].started = true;
    rs.init_containers[0].ready = true;
    let s = generate(&p, &rs, "172.16.0.1", ts(10));
    assert_eq!(cond(&s, "Ready").status, "True");
}
