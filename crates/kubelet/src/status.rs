//! From what the runtime runs to the API's `PodStatus`, the way a kubelet reports it
//! (upstream's `generateAPIPodStatus`, `getPhase` and the condition generators).

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, EphemeralContainer, HostIP, Pod,
    PodCondition, PodIP, PodStatus, ResourceRequirements, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use crate::runtime::{ContainerState, ContainerStatus, PodRuntimeStatus};

/// The condition types a kubelet owns; all others it leaves alone.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The status a kubelet would post for `pod` given what the runtime runs for it. Fields a
/// kubelet does not own (`qosClass`, `nominatedNodeName`, foreign conditions) are left
/// out: the write is a patch. A condition's `lastTransitionTime` is kept from the pod's
/// current status while its status holds, as upstream's status manager does.
pub fn generate(pod: &Pod, rs: &PodRuntimeStatus, host_ip: &str, now: Timestamp) -> PodStatus {
    let empty = Vec::new();
    let spec = pod.spec.as_ref();
    let init_specs = spec
        .and_then(|s| s.init_containers.as_ref())
        .unwrap_or(&empty);
    let specs = spec.map(|s| &s.containers).unwrap_or(&empty);
    let old = pod.status.as_ref();

    let init_statuses: Vec<_> = init_specs
        .iter()
        .map(|c| container_status(c, find(&rs.init_containers, &c.name), true))
        .collect();
    let statuses: Vec<_> = specs
        .iter()
        .map(|c| container_status(c, find(&rs.containers, &c.name), false))
        .collect();
    let ephemeral_statuses: Vec<_> = spec
        .and_then(|s| s.ephemeral_containers.as_ref())
        .into_iter()
        .flatten()
        .map(|e| {
            let rt = find(&rs.ephemeral_containers, &e.name);
            ephemeral_status(e, rt, !init_specs.is_empty())
        })
        .collect();
    let terminal = !rs.sandbox.ready;
    let mut phase = phase(pod, &init_statuses, &statuses, terminal);
    // Pods never leave a terminal phase.
    if let Some(p @ ("Succeeded" | "Failed")) = old.and_then(|s| s.phase.as_deref()) {
        phase = p;
    }

    let current = old.and_then(|s| s.conditions.as_ref());
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            rs.sandbox.ready && !rs.sandbox.ips.is_empty(),
            None,
        ),
        initialized(init_specs, &init_statuses, &statuses, phase),
    ];
    let containers_ready = containers_ready(init_specs, &init_statuses, &statuses, phase);
    conditions.push(ready(pod, current, &containers_ready));
    conditions.push(containers_ready);
    conditions.push(condition("PodScheduled", true, None));
    for c in &mut conditions {
        let kept = current
            .into_iter()
            .flatten()
            .find(|o| o.type_ == c.type_ && o.status == c.status)
            .and_then(|o| o.last_transition_time.clone());
        c.last_transition_time = Some(kept.unwrap_or(Time(now)));
    }

    let pod_ips: Vec<PodIP> = rs
        .sandbox
        .ips
        .iter()
        .map(|ip| PodIP { ip: ip.to_string() })
        .collect();
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ip: rs.sandbox.ips.first().map(IpAddr::to_string),
        pod_ips: (!pod_ips.is_empty()).then_some(pod_ips),
        start_time: Some(
            old.and_then(|s| s.start_time.clone())
                .unwrap_or(Time(rs.sandbox.created_at)),
        ),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ephemeral_container_statuses: (!ephemeral_statuses.is_empty())
            .then_some(ephemeral_statuses),
        ..Default::default()
    }
}

/// Whether posting `new` would change nothing in `current`: every field `new` sets is
/// already there, and every condition it sets is already there as it is.
pub fn unchanged(current: Option<&PodStatus>, new: &PodStatus) -> bool {
    let (Ok(Value::Object(cur)), Ok(Value::Object(new))) = (
        serde_json::to_value(current.cloned().unwrap_or_default()),
        serde_json::to_value(new),
    ) else {
        return false;
    };
    new.iter().all(|(k, v)| match (k.as_str(), v) {
        ("conditions", Value::Array(conds)) => conds.iter().all(|c| {
            cur.get("conditions")
                .and_then(Value::as_array)
                .is_some_and(|have| have.iter().any(|h| h == c))
        }),
        _ => cur.get(k) == Some(v),
    })
}

fn find<'a>(list: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    list.iter().find(|c| c.name == name)
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn time(t: Timestamp) -> Option<Time> {
    Some(Time(t))
}

fn container_status(
    spec: &Container,
    rt: Option<&ContainerStatus>,
    init: bool,
) -> ApiContainerStatus {
    let mounts = spec.volume_mounts.as_ref().map(|ms| {
        ms.iter()
            .map(|m| VolumeMountStatus {
                name: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only.filter(|r| *r),
                recursive_read_only: m.read_only.filter(|r| *r).map(|_| "Disabled".into()),
            })
            .collect()
    });
    let Some(rt) = rt else {
        return ApiContainerStatus {
            name: spec.name.clone(),
            image: spec.image.clone().unwrap_or_default(),
            state: Some(ApiState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(
                        if init {
                            "PodInitializing"
                        } else {
                            "ContainerCreating"
                        }
                        .into(),
                    ),
                    message: None,
                }),
                ..Default::default()
            }),
            volume_mounts: mounts,
            ..Default::default()
        };
    };
    let (state, ready, started) = match &rt.state {
        ContainerState::Created => (
            ApiState {
                waiting: Some(ContainerStateWaiting::default()),
                ..Default::default()
            },
            false,
            Some(false),
        ),
        ContainerState::Waiting { reason, message } => (
            ApiState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: (!message.is_empty()).then(|| message.clone()),
                }),
                ..Default::default()
            },
            false,
            Some(false),
        ),
        // Started and ready as the runtime's probes say, except a regular init
        // container, which is ready only once it completed.
        ContainerState::Running { started_at } => (
            ApiState {
                running: Some(ContainerStateRunning {
                    started_at: time(*started_at),
                }),
                ..Default::default()
            },
            (!init || is_sidecar(spec)) && rt.ready,
            Some(rt.started),
        ),
        ContainerState::Exited { exit_code, .. } => (
            terminated(&rt.id, &rt.state),
            // A regular init container that completed counts as ready.
            init && !is_sidecar(spec) && *exit_code == 0,
            Some(false),
        ),
    };
    let last_state = match &rt.last_state {
        Some((id, st)) => terminated(id, st),
        None => ApiState::default(),
    };
    ApiContainerStatus {
        name: spec.name.clone(),
        container_id: (!rt.id.is_empty()).then(|| rt.id.clone()),
        image: rt.image.clone(),
        image_id: rt.image_ref.clone(),
        ready,
        started,
        restart_count: rt.restart_count,
        state: Some(state),
        last_state: Some(last_state),
        // What the runtime enacted; the simulator enacts the spec (cpu and memory only,
        // as upstream reports).
        resources: rt.is_running().then(|| enacted(spec)).flatten(),
        volume_mounts: mounts,
        ..Default::default()
    }
}

/// An ephemeral container's status. Upstream reports it like a regular container's, but
/// it is never ready and carries no `started` (no probes run for it) nor resources (it
/// has none); before it exists it waits as the pod's containers do.
fn ephemeral_status(
    spec: &EphemeralContainer,
    rt: Option<&ContainerStatus>,
    pod_has_init: bool,
) -> ApiContainerStatus {
    let spec = Container {
        name: spec.name.clone(),
        image: spec.image.clone(),
        volume_mounts: spec.volume_mounts.clone(),
        ..Default::default()
    };
    let mut status = container_status(&spec, rt, pod_has_init);
    status.ready = false;
    status.started = None;
    status.resources = None;
    status
}

/// A `terminated` state for an exited container; empty for any other state.
fn terminated(id: &str, state: &ContainerState) -> ApiState {
    let ContainerState::Exited {
        started_at,
        finished_at,
        exit_code,
        reason,
        message,
    } = state
    else {
        return ApiState::default();
    };
    ApiState {
        terminated: Some(ContainerStateTerminated {
            container_id: (!id.is_empty()).then(|| id.to_string()),
            exit_code: *exit_code,
            reason: Some(reason.clone()),
            message: message.clone(),
            started_at: time(*started_at),
            finished_at: time(*finished_at),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn enacted(spec: &Container) -> Option<ResourceRequirements> {
    let r = spec.resources.as_ref()?;
    let keep = |m: &Option<BTreeMap<String, Quantity>>| {
        m.as_ref()
            .map(|m: &BTreeMap<String, Quantity>| {
                m.iter()
                    .filter(|(k, _)| *k == "cpu" || *k == "memory")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .filter(|m| !m.is_empty())
    };
    let out = ResourceRequirements {
        requests: keep(&r.requests),
        limits: keep(&r.limits),
        claims: None,
    };
    (out.requests.is_some() || out.limits.is_some()).then_some(out)
}

fn running(s: &ApiContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

/// The exit code of a stopped container: terminated, or waiting to restart after it
/// terminated (upstream's `getPhase` counts both as stopped).
fn exit_code(s: &ApiContainerStatus) -> Option<i32> {
    let terminated = |st: &Option<ApiState>| {
        st.as_ref()
            .and_then(|st| st.terminated.as_ref())
            .map(|t| t.exit_code)
    };
    terminated(&s.state).or_else(|| {
        s.state
            .as_ref()
            .is_some_and(|st| st.waiting.is_some())
            .then(|| terminated(&s.last_state))
            .flatten()
    })
}

/// Upstream's `getPhase` for the states a runtime reports here (no restarts yet).
fn phase(
    pod: &Pod,
    init: &[ApiContainerStatus],
    regular: &[ApiContainerStatus],
    terminal: bool,
) -> &'static str {
    let empty = Vec::new();
    let spec = pod.spec.as_ref();
    let policy = spec
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let init_specs = spec
        .and_then(|s| s.init_containers.as_ref())
        .unwrap_or(&empty);
    let (mut pending_init, mut failed_init) = (0, 0);
    let (mut running_n, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for (c, s) in init_specs.iter().zip(init) {
        match (is_sidecar(c), exit_code(s)) {
            (false, Some(0)) => {}
            (false, Some(_)) => failed_init += 1,
            (false, None) => pending_init += 1,
            (true, _) if running(s) => running_n += 1,
            // Stopped sidecars do not count toward the phase.
            (true, Some(_)) => {}
            (true, None) => {
                pending_init += 1;
                waiting += 1;
            }
        }
    }
    for s in regular {
        match exit_code(s) {
            Some(code) => {
                stopped += 1;
                if code == 0 {
                    succeeded += 1;
                }
            }
            None if running(s) => running_n += 1,
            None => waiting += 1,
        }
    }
    let any_regular_started = regular.iter().any(|s| running(s) || exit_code(s).is_some());
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if (pending_init > 0 && !any_regular_started) || waiting > 0 {
        return "Pending";
    }
    if running_n > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    match (terminal, policy, stopped == succeeded) {
        (true, _, true) => "Succeeded",
        (true, _, false) => "Failed",
        (false, "Always", _) => "Running",
        (false, _, true) => "Succeeded",
        (false, "Never", false) => "Failed",
        _ => "Running",
    }
}

fn condition(type_: &str, ok: bool, why: Option<(&str, String)>) -> PodCondition {
    let (reason, message) = match why {
        Some((r, m)) => (Some(r.to_string()), (!m.is_empty()).then_some(m)),
        None => (None, None),
    };
    PodCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.into(),
        reason,
        message,
        ..Default::default()
    }
}

/// Go's `%s` of a string slice: `[a b]`.
fn names(list: &[&str]) -> String {
    format!("[{}]", list.join(" "))
}

fn initialized(
    specs: &[Container],
    init: &[ApiContainerStatus],
    regular: &[ApiContainerStatus],
    phase: &str,
) -> PodCondition {
    if phase == "Succeeded" {
        return condition("Initialized", true, Some(("PodCompleted", String::new())));
    }
    if regular.iter().any(|s| running(s) || exit_code(s).is_some()) {
        return condition("Initialized", true, None);
    }
    let incomplete: Vec<&str> = specs
        .iter()
        .zip(init)
        .filter(|(c, s)| {
            if is_sidecar(c) {
                s.started != Some(true)
            } else {
                !s.ready
            }
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    if incomplete.is_empty() {
        condition("Initialized", true, None)
    } else {
        condition(
            "Initialized",
            false,
            Some((
                "ContainersNotInitialized",
                format!("containers with incomplete status: {}", names(&incomplete)),
            )),
        )
    }
}

fn containers_ready(
    specs: &[Container],
    init: &[ApiContainerStatus],
    regular: &[ApiContainerStatus],
    phase: &str,
) -> PodCondition {
    match phase {
        "Succeeded" => {
            return condition(
                "ContainersReady",
                false,
                Some(("PodCompleted", String::new())),
            );
        }
        "Failed" => return condition("ContainersReady", false, Some(("PodFailed", String::new()))),
        _ => {}
    }
    let unready: Vec<&str> = specs
        .iter()
        .zip(init)
        .filter(|(c, _)| is_sidecar(c))
        .map(|(_, s)| s)
        .chain(regular)
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    if unready.is_empty() {
        condition("ContainersReady", true, None)
    } else {
        condition(
            "ContainersReady",
            false,
            Some((
                "ContainersNotReady",
                format!("containers with unready status: {}", names(&unready)),
            )),
        )
    }
}

fn ready(
    pod: &Pod,
    current: Option<&Vec<PodCondition>>,
    containers: &PodCondition,
) -> PodCondition {
    if containers.status != "True" {
        let mut c = containers.clone();
        c.type_ = "Ready".into();
        return c;
    }
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .into_iter()
        .flatten();
    let unready: Vec<String> = gates
        .filter_map(|g| {
            let found = current
                .into_iter()
                .flatten()
                .find(|c| c.type_ == g.condition_type);
            match found {
                None => Some(format!(
                    "corresponding condition of pod readiness gate {:?} does not exist.",
                    g.condition_type
                )),
                Some(c) if c.status != "True" => Some(format!(
                    "the status of pod readiness gate {:?} is not \"True\", but {}",
                    g.condition_type, c.status
                )),
                Some(_) => None,
            }
        })
        .collect();
    if unready.is_empty() {
        condition("Ready", true, None)
    } else {
        condition(
            "Ready",
            false,
            Some(("ReadinessGatesNotReady", unready.join(", "))),
        )
    }
}

#[cfg(test)]
mod tests;
