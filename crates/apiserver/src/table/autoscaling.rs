//! `autoscaling`: horizontal pod autoscalers (v2, and v1 through upstream's conversion of
//! `targetCPUUtilizationPercentage` into a CPU utilization metric) and the `Scale`
//! subresource.

use serde_json::{Value, json};

use super::Kind;
use super::cells::{AGE, Col, Ctx, NAME, NAME_DOC, arr_at, int_at, name, opt_int, str_at};

/// The printer of an `autoscaling` kind.
pub fn printer(kind: &str) -> Option<Kind> {
    match kind {
        "HorizontalPodAutoscaler" => Some(Kind::new(HPA, hpa)),
        "Scale" => Some(Kind::new(SCALE, scale)),
        _ => None,
    }
}

const HPA: &[Col] = &[
    NAME,
    Col::new(
        "Reference",
        "string",
        "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
    ),
    Col::new(
        "Targets",
        "string",
        "metrics contains the specifications for which to use to calculate the desired replica count.",
    ),
    Col::new(
        "MinPods",
        "string",
        "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
    ),
    Col::new(
        "MaxPods",
        "string",
        "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
    ),
    Col::new(
        "Replicas",
        "string",
        "currentReplicas is current number of replicas of pods managed by this autoscaler.",
    ),
    AGE,
];

fn hpa(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, "/spec/scaleTargetRef/kind"),
        str_at(obj, "/spec/scaleTargetRef/name")
    );
    let (specs, statuses) = metrics(obj);
    let min_pods = match opt_int(obj, "/spec/minReplicas") {
        Some(n) => n.to_string(),
        None => "<unset>".to_string(),
    };
    vec![
        name(obj).into(),
        reference.into(),
        format_metrics(&specs, &statuses).into(),
        min_pods.into(),
        int_at(obj, "/spec/maxReplicas").into(),
        int_at(obj, "/status/currentReplicas").into(),
        ctx.age(obj).into(),
    ]
}

/// The v2 metric specs and statuses; an `autoscaling/v1` object's CPU target and current
/// utilization become one `Resource` metric, as upstream's conversion does.
fn metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let Some(target) = opt_int(obj, "/spec/targetCPUUtilizationPercentage") else {
        return (
            arr_at(obj, "/spec/metrics").to_vec(),
            arr_at(obj, "/status/currentMetrics").to_vec(),
        );
    };
    let spec = json!({
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
    });
    let status = opt_int(obj, "/status/currentCPUUtilizationPercentage").map(|current| {
        json!({
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": current}},
        })
    });
    (vec![spec], status.into_iter().collect())
}

/// `Quantity.String()` through a pointer: `<nil>` when unset.
fn quantity_ptr(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<nil>".to_string(),
    }
}

/// `formatHPAMetrics`: at most two metrics, `current/target` each, then `+ N more...`.
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            // The status at the same index, if it has this source's field.
            let status = |field: &str| {
                statuses
                    .get(i)
                    .and_then(|s| s.get(field))
                    .filter(|s| s.is_object())
            };
            match str_at(spec, "/type") {
                "External" => value_metric(spec, status("external"), "external"),
                "Object" => value_metric(spec, status("object"), "object"),
                "Pods" => {
                    let current = status("pods")
                        .map(|s| quantity_ptr(s, "/current/averageValue"))
                        .unwrap_or_else(|| "<unknown>".to_string());
                    let target = quantity_ptr(spec, "/pods/target/averageValue");
                    format!("{current}/{target}")
                }
                "Resource" => resource_metric(spec, status("resource"), "resource"),
                "ContainerResource" => {
                    resource_metric(spec, status("containerResource"), "containerResource")
                }
                _ => "<unknown type>".to_string(),
            }
        })
        .collect();
    const MAX: usize = 2;
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        format!("{} + {} more...", list.join(", "), count - MAX)
    } else {
        list.join(", ")
    }
}

/// External and Object metrics: an average value target, else a plain value.
fn value_metric(spec: &Value, status: Option<&Value>, field: &str) -> String {
    let target = format!("/{field}/target");
    if spec
        .pointer(&format!("{target}/averageValue"))
        .is_some_and(|v| !v.is_null())
    {
        let current = status
            .filter(|s| {
                s.pointer("/current/averageValue")
                    .is_some_and(|v| !v.is_null())
            })
            .map(|s| quantity_ptr(s, "/current/averageValue"))
            .unwrap_or_else(|| "<unknown>".to_string());
        let goal = quantity_ptr(spec, &format!("{target}/averageValue"));
        format!("{current}/{goal} (avg)")
    } else {
        let current = status
            .map(|s| quantity_ptr(s, "/current/value"))
            .unwrap_or_else(|| "<unknown>".to_string());
        format!(
            "{current}/{}",
            quantity_ptr(spec, &format!("{target}/value"))
        )
    }
}

/// Resource and ContainerResource metrics: `cpu: 50%/80%` or `memory: 100Mi/200Mi`.
fn resource_metric(spec: &Value, status: Option<&Value>, field: &str) -> String {
    let resource = str_at(spec, &format!("/{field}/name"));
    let target = format!("/{field}/target");
    if spec
        .pointer(&format!("{target}/averageValue"))
        .is_some_and(|v| !v.is_null())
    {
        let current = status
            .map(|s| quantity_ptr(s, "/current/averageValue"))
            .unwrap_or_else(|| "<unknown>".to_string());
        let goal = quantity_ptr(spec, &format!("{target}/averageValue"));
        format!("{resource}: {current}/{goal}")
    } else {
        let current = status
            .and_then(|s| opt_int(s, "/current/averageUtilization"))
            .map(|u| format!("{u}%"))
            .unwrap_or_else(|| "<unknown>".to_string());
        let goal = opt_int(spec, &format!("{target}/averageUtilization"))
            .map(|u| format!("{u}%"))
            .unwrap_or_else(|| "<auto>".to_string());
        format!("{resource}: {current}/{goal}")
    }
}

const SCALE: &[Col] = &[
    // Upstream's Scale name column has no `name` format.
    Col::new("Name", "string", NAME_DOC),
    Col::new(
        "Desired",
        "integer",
        "replicas is the desired number of instances for the scaled object.",
    ),
    Col::new(
        "Available",
        "integer",
        "replicas is the actual number of observed instances of the scaled object.",
    ),
    AGE,
];

fn scale(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        int_at(obj, "/spec/replicas").into(),
        int_at(obj, "/status/replicas").into(),
        ctx.age(obj).into(),
    ]
}
