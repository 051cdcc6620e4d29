//! Defaults of the kinds outside `core`, `apps` and `batch`, one function per upstream
//! `pkg/apis/<group>/<version>/defaults.go`:
//! - storage/v1: `SetDefaults_StorageClass`, `SetDefaults_CSIDriver` (with `seLinuxMount`,
//!   on by SELinuxMountReadWriteOncePod in 1.33).
//! - networking/v1: `SetDefaults_NetworkPolicy`, `SetDefaults_NetworkPolicyPort`,
//!   `SetDefaults_IngressClass`; Ingress has none.
//! - autoscaling/v1 and v2: `SetDefaults_HorizontalPodAutoscaler` (v2 also
//!   `SetDefaults_HorizontalPodAutoscalerBehavior` with `GenerateHPAScale{Up,Down}Rules`).
//! - scheduling/v1: `SetDefaults_PriorityClass`.
//! - admissionregistration/v1: `SetDefaults_{Validating,Mutating}Webhook`, `SetDefaults_Rule`,
//!   `SetDefaults_ServiceReference`, `SetDefaults_ValidatingAdmissionPolicySpec`,
//!   `SetDefaults_MatchResources`.
//! - discovery/v1: `SetDefaults_EndpointPort`.
//! - rbac/v1: `SetDefaults_{Cluster,}RoleBinding`, `SetDefaults_Subject`.
//! - flowcontrol/v1 (and v1beta3): `SetDefaults_FlowSchemaSpec`,
//!   `SetDefaults_{Exempt,Limited}PriorityLevelConfiguration`, `SetDefaults_QueuingConfiguration`.
//! - apiextensions/v1: `SetDefaults_CustomResourceDefinition(Spec)`, `SetDefaults_ServiceReference`.
//!
//! Kinds with no upstream defaulting (Ingress, RuntimeClass, PodDisruptionBudget, Role,
//! ClusterRole, ResourceQuota, ...) are left as they are.

use serde_json::{Value, json};

use super::fields::{
    Map, child, child_or_empty, default_int, default_list, default_ptr, default_str, has_items,
    is_blank, is_unset, items, str_of,
};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn apply(group: &str, kind: &str, obj: &mut Map) {
    match (group, kind) {
        ("storage.k8s.io", "StorageClass") => {
            default_ptr(obj, "reclaimPolicy", json!("Delete"));
            default_ptr(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => csi_driver(obj),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("networking.k8s.io", "IngressClass") => {
            if let Some(params) = child(obj, "spec").and_then(|s| child(s, "parameters")) {
                default_ptr(params, "scope", json!("Cluster"));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj),
        ("scheduling.k8s.io", "PriorityClass") => {
            default_ptr(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            for hook in items(obj, "webhooks") {
                webhook(hook, false);
            }
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            for hook in items(obj, "webhooks") {
                webhook(hook, true);
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            if let Some(spec) = child(obj, "spec") {
                default_ptr(spec, "failurePolicy", json!("Fail"));
                if let Some(m) = child(spec, "matchConstraints") {
                    match_resources(m);
                }
            }
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            if let Some(m) = child(obj, "spec").and_then(|s| child(s, "matchResources")) {
                match_resources(m);
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(obj),
        (RBAC_GROUP, "RoleBinding" | "ClusterRoleBinding") => role_binding(obj),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            if let Some(spec) = child(obj, "spec") {
                default_int(spec, "matchingPrecedence", 1000);
            }
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => priority_level(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        _ => {}
    }
}

fn csi_driver(obj: &mut Map) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    default_ptr(spec, "attachRequired", json!(true));
    default_ptr(spec, "podInfoOnMount", json!(false));
    default_ptr(spec, "storageCapacity", json!(false));
    default_ptr(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    default_list(spec, "volumeLifecycleModes", json!(["Persistent"]));
    default_ptr(spec, "requiresRepublish", json!(false));
    default_ptr(spec, "seLinuxMount", json!(false));
}

/// Every policy implies `Ingress`; one with egress rules also `Egress`. `podSelector` is a
/// Go struct, so it always shows (`{}` selects every pod).
fn network_policy(obj: &mut Map) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    default_ptr(spec, "podSelector", json!({}));
    let types = if has_items(spec, "egress") {
        json!(["Ingress", "Egress"])
    } else {
        json!(["Ingress"])
    };
    default_list(spec, "policyTypes", types);
    for direction in ["ingress", "egress"] {
        for rule in items(spec, direction) {
            for port in items(rule, "ports") {
                default_ptr(port, "protocol", json!("TCP"));
            }
        }
    }
}

/// The kind is served as autoscaling/v1 and v2; the object's `apiVersion` says which rules
/// apply (v1 has no `metrics` or `behavior` to default).
fn hpa(obj: &mut Map) {
    let v1 = str_of(obj, "apiVersion") == "autoscaling/v1";
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    default_ptr(spec, "minReplicas", json!(1));
    if v1 {
        return;
    }
    // `autoscaling.DefaultCPUUtilization`.
    default_list(
        spec,
        "metrics",
        json!([{
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
        }]),
    );
    // Only a `behavior` the user wrote is completed; none stays none.
    if let Some(behavior) = child(spec, "behavior") {
        let scale_up = json!({
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        });
        // No stabilization window: the controller's --horizontal-pod-autoscaler-downscale-
        // stabilization flag decides it.
        let scale_down = json!({
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        });
        for (key, defaults) in [("scaleUp", scale_up), ("scaleDown", scale_down)] {
            let (Some(rules), Value::Object(defaults)) = (child_or_empty(behavior, key), defaults)
            else {
                continue;
            };
            for (field, value) in defaults {
                if is_unset(rules, &field) {
                    rules.insert(field, value);
                }
            }
        }
    }
}

fn webhook(hook: &mut Map, mutating: bool) {
    default_ptr(hook, "failurePolicy", json!("Fail"));
    default_ptr(hook, "matchPolicy", json!("Equivalent"));
    default_ptr(hook, "namespaceSelector", json!({}));
    default_ptr(hook, "objectSelector", json!({}));
    default_ptr(hook, "timeoutSeconds", json!(10));
    if mutating {
        default_ptr(hook, "reinvocationPolicy", json!("Never"));
    }
    for rule in items(hook, "rules") {
        default_ptr(rule, "scope", json!("*"));
    }
    if let Some(service) = child(hook, "clientConfig").and_then(|c| child(c, "service")) {
        default_ptr(service, "port", json!(443));
    }
}

fn match_resources(m: &mut Map) {
    default_ptr(m, "matchPolicy", json!("Equivalent"));
    default_ptr(m, "namespaceSelector", json!({}));
    default_ptr(m, "objectSelector", json!({}));
    for list in ["resourceRules", "excludeResourceRules"] {
        for rule in items(m, list) {
            default_ptr(rule, "scope", json!("*"));
        }
    }
}

/// Ports get an empty name and TCP; each endpoint's `conditions` is a Go struct, so it
/// always shows.
fn endpoint_slice(obj: &mut Map) {
    for port in items(obj, "ports") {
        default_ptr(port, "name", json!(""));
        default_ptr(port, "protocol", json!("TCP"));
    }
    for endpoint in items(obj, "endpoints") {
        default_ptr(endpoint, "conditions", json!({}));
    }
}

/// `roleRef.apiGroup` is RBAC's; a User or Group subject is RBAC's too, a ServiceAccount
/// subject is in the core group.
fn role_binding(obj: &mut Map) {
    if let Some(role_ref) = child(obj, "roleRef") {
        default_str(role_ref, "apiGroup", RBAC_GROUP);
    }
    for subject in items(obj, "subjects") {
        if is_blank(subject, "apiGroup") {
            match str_of(subject, "kind") {
                "User" | "Group" => {
                    subject.insert("apiGroup".into(), json!(RBAC_GROUP));
                }
                "ServiceAccount" => {
                    subject.insert("apiGroup".into(), json!(""));
                }
                _ => {}
            }
        }
    }
}

/// v1beta3 holds `nominalConcurrencyShares` by value, so 0 means unset there unless the
/// object carries the annotation that preserves an explicit zero.
fn priority_level(obj: &mut Map) {
    let beta = str_of(obj, "apiVersion").ends_with("/v1beta3");
    let keep_zero = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares"))
        .is_some();
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    if let Some(exempt) = child(spec, "exempt") {
        default_ptr(exempt, "nominalConcurrencyShares", json!(0));
        default_ptr(exempt, "lendablePercent", json!(0));
    }
    if let Some(limited) = child(spec, "limited") {
        if beta && !keep_zero {
            default_int(limited, "nominalConcurrencyShares", 30);
        } else {
            default_ptr(limited, "nominalConcurrencyShares", json!(30));
        }
        default_ptr(limited, "lendablePercent", json!(0));
        if let Some(queuing) = child(limited, "limitResponse").and_then(|r| child(r, "queuing")) {
            default_int(queuing, "handSize", 8);
            default_int(queuing, "queues", 64);
            default_int(queuing, "queueLengthLimit", 50);
        }
    }
}

/// Names derived from the kind, conversion `None`, webhook service port 443, and the first
/// storage version recorded as stored.
fn crd(obj: &mut Map) {
    let mut storage_version = None;
    if let Some(spec) = child(obj, "spec") {
        if let Some(names) = child(spec, "names") {
            let kind = str_of(names, "kind").to_string();
            if !kind.is_empty() {
                default_str(names, "singular", &kind.to_lowercase());
                default_str(names, "listKind", &format!("{kind}List"));
            }
        }
        default_ptr(spec, "conversion", json!({"strategy": "None"}));
        if let Some(service) = child(spec, "conversion")
            .and_then(|c| child(c, "webhook"))
            .and_then(|w| child(w, "clientConfig"))
            .and_then(|c| child(c, "service"))
        {
            default_ptr(service, "port", json!(443));
        }
        storage_version = spec
            .get("versions")
            .and_then(Value::as_array)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("storage") == Some(&Value::Bool(true)))
            })
            .and_then(|v| v.get("name"))
            .cloned();
    }
    if let Some(version) = storage_version
        && let Some(status) = child(obj, "status")
    {
        default_list(status, "storedVersions", json!([version]));
    }
}
