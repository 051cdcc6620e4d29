//! `apps/v1`: deployments, replica sets, stateful sets, daemon sets and controller revisions.

use serde_json::Value;

use super::Kind;
use super::cells::{
    AGE, CONTAINERS, Col, Ctx, IMAGES, NAME, arr_at, containers, format_label_selector,
    format_labels, int_at, name, opt_int, selector_string, str_at,
};

/// The printer of an `apps` kind.
pub fn printer(kind: &str) -> Option<Kind> {
    let (columns, row): (&'static [Col], super::RowFn) = match kind {
        "Deployment" => (DEPLOYMENT, deployment),
        "ReplicaSet" => (REPLICA_SET, replica_set),
        "StatefulSet" => (STATEFUL_SET, stateful_set),
        "DaemonSet" => (DAEMON_SET, daemon_set),
        "ControllerRevision" => (CONTROLLER_REVISION, controller_revision),
        _ => return None,
    };
    Some(Kind::new(columns, row))
}

/// `spec.replicas`, which upstream defaults to 1.
fn desired(obj: &Value) -> i64 {
    opt_int(obj, "/spec/replicas").unwrap_or(1)
}

const DEPLOYMENT: &[Col] = &[
    NAME,
    Col::new("Ready", "string", "Number of the pod with ready state"),
    Col::new(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    Col::new(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Col::new(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    )
    .wide(),
];

fn deployment(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(obj, "/spec/template/spec/containers");
    // printDeployment uses the selector string as is: "" when empty, "<invalid>" when bad.
    let selector = selector_string(obj, "/spec/selector").unwrap_or_else(|| "<invalid>".into());
    vec![
        name(obj).into(),
        format!("{}/{}", int_at(obj, "/status/readyReplicas"), desired(obj)).into(),
        int_at(obj, "/status/updatedReplicas").into(),
        int_at(obj, "/status/availableReplicas").into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
        selector.into(),
    ]
}

const REPLICA_SET: &[Col] = &[
    NAME,
    Col::new(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    Col::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    Col::new(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Col::new(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
    )
    .wide(),
];

fn replica_set(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        desired(obj).into(),
        int_at(obj, "/status/replicas").into(),
        int_at(obj, "/status/readyReplicas").into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
        format_label_selector(obj, "/spec/selector").into(),
    ]
}

const STATEFUL_SET: &[Col] = &[
    NAME,
    Col::new("Ready", "string", "Number of the pod with ready state"),
    AGE,
    CONTAINERS,
    IMAGES,
];

fn stateful_set(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        format!("{}/{}", int_at(obj, "/status/readyReplicas"), desired(obj)).into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
    ]
}

const DAEMON_SET: &[Col] = &[
    NAME,
    Col::new(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod.",
    ),
    Col::new(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
    ),
    Col::new(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
    ),
    Col::new(
        "Up-to-date",
        "integer",
        "The total number of nodes that are running updated daemon pod",
    ),
    Col::new(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
    ),
    Col::new(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Col::new(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set.",
    )
    .wide(),
];

fn daemon_set(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        int_at(obj, "/status/desiredNumberScheduled").into(),
        int_at(obj, "/status/currentNumberScheduled").into(),
        int_at(obj, "/status/numberReady").into(),
        int_at(obj, "/status/updatedNumberScheduled").into(),
        int_at(obj, "/status/numberAvailable").into(),
        format_labels(obj, "/spec/template/spec/nodeSelector").into(),
        ctx.age(obj).into(),
        names.into(),
        images.into(),
        format_label_selector(obj, "/spec/selector").into(),
    ]
}

const CONTROLLER_REVISION: &[Col] = &[
    NAME,
    Col::new("Controller", "string", "Controller of the object"),
    Col::new(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE,
];

/// `printControllerRevision`: the controller as `kind.group/name` (lower-cased group kind).
fn controller_revision(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let controller = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let api_version = str_at(r, "/apiVersion");
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let kind = str_at(r, "/kind");
            let group_kind = match (kind, group) {
                (k, "") => k.to_string(),
                (k, g) => format!("{k}.{g}"),
            };
            let owner = str_at(r, "/name");
            if group_kind.is_empty() {
                owner.to_string()
            } else {
                format!("{}/{owner}", group_kind.to_lowercase())
            }
        })
        .unwrap_or_else(|| "<none>".to_string());
    vec![
        name(obj).into(),
        controller.into(),
        int_at(obj, "/revision").into(),
        ctx.age(obj).into(),
    ]
}
