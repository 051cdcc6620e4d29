//! Pods: `READY` counts, the `STATUS` reason upstream derives from phase, conditions and
//! container states (`ContainerCreating`, `CrashLoopBackOff`, `Init:0/1`, `Completed`,
//! `Terminating`…), and `RESTARTS` with the `(5m ago)` suffix.

use serde_json::{Value, json};

use super::Kind;
use super::cells::{AGE, Col, Ctx, NAME, arr_at, int_at, name, opt_bool, opt_str, str_at};

pub const KIND: Kind = Kind {
    columns: COLUMNS,
    row: pod,
    conditions: Some(conditions),
};

const COLUMNS: &[Col] = &[
    NAME,
    Col::new(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    Col::new(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    Col::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Col::new(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    )
    .wide(),
    Col::new(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled.",
    )
    .wide(),
    Col::new(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
    )
    .wide(),
    Col::new(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    )
    .wide(),
];

/// Row conditions of finished pods (`podSuccessConditions` / `podFailedConditions`).
fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

/// The latest `lastState.terminated.finishedAt` seen so far, as text plus parsed time.
#[derive(Default)]
struct LastRestart<'a> {
    at: Option<(&'a str, jiff::Timestamp)>,
}

impl<'a> LastRestart<'a> {
    fn observe(&mut self, status: &'a Value) {
        let Some(finished) = opt_str(status, "/lastState/terminated/finishedAt") else {
            return;
        };
        if let Some(t) = super::cells::parse_time(finished)
            && self.at.is_none_or(|(_, seen)| t > seen)
        {
            self.at = Some((finished, t));
        }
    }
}

fn pod(pod: &Value, ctx: &Ctx) -> Vec<Value> {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
    };
    // Sidecars (restartable init containers) count as containers.
    let total = arr_at(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| str_at(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart = LastRestart::default();
    let mut last_sidecar_restart = LastRestart::default();

    let phase = str_at(pod, "/status/phase");
    let mut reason = match str_at(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let conditions = arr_at(pod, "/status/conditions");
    if conditions
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    for (i, status) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += int_at(status, "/restartCount");
        last_restart.observe(status);
        let is_sidecar = restartable(str_at(status, "/name"));
        if is_sidecar {
            sidecar_restarts += int_at(status, "/restartCount");
            last_sidecar_restart.observe(status);
        }
        let terminated = status
            .pointer("/state/terminated")
            .filter(|t| t.is_object());
        let waiting_reason = str_at(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && opt_bool(status, "/started") == Some(true) {
            if opt_bool(status, "/ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_at(t, "/reason") {
                "" if int_at(t, "/signal") != 0 => format!("Init:Signal:{}", int_at(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| str_at(c, "/type") == "Initialized")
        .is_some_and(|c| str_at(c, "/status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(status, "/restartCount");
            last_restart.observe(status);
            let waiting = str_at(status, "/state/waiting/reason");
            let terminated = status
                .pointer("/state/terminated")
                .filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, "/reason") {
                    "" if int_at(t, "/signal") != 0 => format!("Signal:{}", int_at(t, "/signal")),
                    "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if opt_bool(status, "/ready") == Some(true)
                && status
                    .pointer("/state/running")
                    .is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        // Back to Running if at least one container still runs.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if deleting && str_at(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart.at {
        Some((finished, _)) if restarts != 0 => {
            format!("{restarts} ({} ago)", ctx.since(Some(finished)))
        }
        _ => restarts.to_string(),
    };
    let none_if_empty = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let gates = arr_at(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let passing = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| str_at(c, "/type") == ty)
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{passing}/{}", gates.len())
    };
    vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_cell.into(),
        ctx.age(pod).into(),
        none_if_empty(str_at(pod, "/status/podIPs/0/ip")).into(),
        none_if_empty(str_at(pod, "/spec/nodeName")).into(),
        none_if_empty(str_at(pod, "/status/nominatedNodeName")).into(),
        readiness_gates.into(),
    ]
}
