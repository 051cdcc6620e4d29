use serde_json::{Value, json};

use super::{Case, check_create, check_update};

fn pdb(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

#[test]
fn pod_disruption_budgets() {
    let cases: Vec<Case> = vec![
        (
            "policy",
            "PodDisruptionBudget",
            pdb(
                "p",
                json!({"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "x"}}}),
            ),
            // Go prints the pointers' addresses here; a placeholder stands in for them.
            vec![
                "spec: Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(0xc000000000), Selector:(*v1.LabelSelector)(0xc000000000), MaxUnavailable:(*intstr.IntOrString)(0xc000000000), UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}: minAvailable and maxUnavailable cannot be both set",
            ],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            pdb("p", json!({"minAvailable": "150%"})),
            vec![
                "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
            ],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            pdb(
                "p",
                json!({"maxUnavailable": -1, "unhealthyPodEvictionPolicy": "Never"}),
            ),
            vec![
                "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
            ],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            pdb("p", json!({"minAvailable": "half"})),
            vec![
                "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"half\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            ],
        ),
        // 1.33 only checks a PDB's name as a path segment, and only once its spec is valid.
        (
            "policy",
            "PodDisruptionBudget",
            pdb("Not_A_DNS_Name", json!({"minAvailable": 1})),
            vec![],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            pdb("a/b", json!({"minAvailable": 1})),
            vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"],
        ),
        (
            "policy",
            "PodDisruptionBudget",
            pdb("a/b", json!({"minAvailable": -2})),
            vec!["spec.minAvailable: Invalid value: -2: must be greater than or equal to 0"],
        ),
    ];
    check_create(cases);
}

fn hpa(spec: Value) -> Value {
    json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h", "namespace": "default"}, "spec": spec})
}

fn target_ref() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
}

fn with_metrics(metrics: Value) -> Value {
    hpa(json!({"scaleTargetRef": target_ref(), "maxReplicas": 5, "metrics": metrics}))
}

#[test]
fn horizontal_pod_autoscalers() {
    const HPA: (&str, &str) = ("autoscaling", "HorizontalPodAutoscaler");
    let case = |obj: Value, want: Vec<&'static str>| (HPA.0, HPA.1, obj, want);
    let cases: Vec<Case> = vec![
        case(
            hpa(json!({"scaleTargetRef": {}, "minReplicas": 2, "maxReplicas": 0})),
            vec![
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Required value",
            ],
        ),
        case(
            hpa(json!({"scaleTargetRef": target_ref(), "minReplicas": 0, "maxReplicas": 3})),
            vec![
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
            ],
        ),
        case(
            with_metrics(json!([{"type": "Resource"}])),
            vec![
                "spec.metrics[0].resource: Required value: must populate information for the given metric source",
            ],
        ),
        case(
            with_metrics(json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 0}}}])),
            vec![
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ],
        ),
        case(
            with_metrics(json!([{"type": "CPU", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}])),
            vec![
                "spec.metrics[0].type: Unsupported value: \"CPU\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
                "spec.metrics[0].type: Unsupported value: \"CPU\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
            ],
        ),
        case(
            with_metrics(json!([{"type": "Pods", "pods": {"metric": {"name": "qps"},
                "target": {"type": "AverageValue", "averageValue": "-1"}}}])),
            vec![
                "spec.metrics[0].pods.target.averageValue: Invalid value: resource.Quantity{i:resource.int64Amount{value:-1, scale:0}, d:resource.infDecAmount{Dec:(*inf.Dec)(nil)}, s:\"-1\", Format:\"DecimalSI\"}: must be positive",
            ],
        ),
        case(
            with_metrics(
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Percent"}}}]),
            ),
            vec![
                "spec.metrics[0].resource.target.type: Invalid value: \"Percent\": must be either Utilization, Value, or AverageValue",
                "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization",
            ],
        ),
        case(
            hpa(
                json!({"scaleTargetRef": target_ref(), "maxReplicas": 5, "behavior": {
                "scaleDown": {"policies": [], "selectPolicy": "Avg", "stabilizationWindowSeconds": 7200},
                "scaleUp": {"policies": [{"type": "Nodes", "value": 0, "periodSeconds": 3600}]}}}),
            ),
            vec![
                "spec.behavior.scaleUp.policies[0].type: Unsupported value: \"Nodes\": supported values: \"Percent\", \"Pods\"",
                "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
                "spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 3600: must be less than or equal to 1800",
                "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 7200: must be less than or equal to 3600",
                "spec.behavior.scaleDown.selectPolicy: Unsupported value: \"Avg\": supported values: \"Disabled\", \"Max\", \"Min\"",
                "spec.behavior.scaleDown.policies: Required value: must specify at least one Policy",
            ],
        ),
        // autoscaling/v1's CPU target is validated as the internal metric it converts to.
        case(
            json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "h", "namespace": "default"},
                "spec": {"scaleTargetRef": target_ref(), "maxReplicas": 5, "targetCPUUtilizationPercentage": 0}}),
            vec![
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ],
        ),
    ];
    check_create(cases);
}

#[test]
fn hpa_scale_to_zero_needs_object_metrics() {
    let zero = |metrics: Value| {
        hpa(
            json!({"scaleTargetRef": target_ref(), "minReplicas": 0, "maxReplicas": 3, "metrics": metrics}),
        )
    };
    let object = json!([{"type": "Object", "object": {"describedObject": target_ref(),
        "metric": {"name": "queue"}, "target": {"type": "Value", "value": "10"}}}]);
    check_update(
        "autoscaling",
        "HorizontalPodAutoscaler",
        zero(object.clone()),
        zero(object),
        &[],
    );
    check_update(
        "autoscaling",
        "HorizontalPodAutoscaler",
        zero(json!([])),
        zero(json!([])),
        &[
            "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
        ],
    );
}
