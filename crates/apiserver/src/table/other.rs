//! The smaller groups: RBAC bindings, storage, policy, scheduling, coordination,
//! certificates, admission registration and node. Roles, cluster roles and
//! CustomResourceDefinitions have no upstream printer and get the default table.

use serde_json::Value;

use super::Kind;
use super::cells::{
    AGE, Col, Ctx, NAME, arr_at, human_duration, int_or_string, len_at, map_at, name, opt_bool,
    opt_int, opt_str, str_at,
};

/// The printer of a kind in one of the groups above.
pub fn printer(group: &str, kind: &str) -> Option<Kind> {
    let (columns, row): (&'static [Col], super::RowFn) = match (group, kind) {
        ("rbac.authorization.k8s.io", "RoleBinding") => (ROLE_BINDING, role_binding),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => (CLUSTER_ROLE_BINDING, role_binding),
        ("storage.k8s.io", "StorageClass") => (STORAGE_CLASS, storage_class),
        ("storage.k8s.io", "CSIDriver") => (CSI_DRIVER, csi_driver),
        ("storage.k8s.io", "CSINode") => (CSI_NODE, csi_node),
        ("storage.k8s.io", "CSIStorageCapacity") => (CSI_STORAGE_CAPACITY, csi_storage_capacity),
        ("storage.k8s.io", "VolumeAttachment") => (VOLUME_ATTACHMENT, volume_attachment),
        ("policy", "PodDisruptionBudget") => (POD_DISRUPTION_BUDGET, pod_disruption_budget),
        ("scheduling.k8s.io", "PriorityClass") => (PRIORITY_CLASS, priority_class),
        ("coordination.k8s.io", "Lease") => (LEASE, lease),
        ("certificates.k8s.io", "CertificateSigningRequest") => (CSR, csr),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration",
        ) => (WEBHOOK_CONFIGURATION, webhook_configuration),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            (VALIDATING_ADMISSION_POLICY, validating_admission_policy)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            (POLICY_BINDING, policy_binding)
        }
        ("node.k8s.io", "RuntimeClass") => (RUNTIME_CLASS, runtime_class),
        _ => return None,
    };
    Some(Kind::new(columns, row))
}

const ROLE_BINDING: &[Col] = &[
    NAME,
    Col::new(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.",
    ),
    AGE,
    Col::new("Users", "string", "Users in the roleBinding").wide(),
    Col::new("Groups", "string", "Groups in the roleBinding").wide(),
    Col::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    )
    .wide(),
];

const CLUSTER_ROLE_BINDING: &[Col] = &[
    NAME,
    Col::new(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace.",
    ),
    AGE,
    Col::new("Users", "string", "Users in the clusterRoleBinding").wide(),
    Col::new("Groups", "string", "Groups in the clusterRoleBinding").wide(),
    Col::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    )
    .wide(),
];

/// `printRoleBinding` / `printClusterRoleBinding` with `rbac.SubjectsStrings`.
fn role_binding(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, "/roleRef/kind"),
        str_at(obj, "/roleRef/name")
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr_at(obj, "/subjects") {
        let subject = str_at(s, "/name");
        match str_at(s, "/kind") {
            "ServiceAccount" => sas.push(format!("{}/{subject}", str_at(s, "/namespace"))),
            "User" => users.push(subject.to_string()),
            "Group" => groups.push(subject.to_string()),
            _ => {}
        }
    }
    vec![
        name(obj).into(),
        role.into(),
        ctx.age(obj).into(),
        users.join(", ").into(),
        groups.join(", ").into(),
        sas.join(", ").into(),
    ]
}

const STORAGE_CLASS: &[Col] = &[
    NAME,
    Col::new(
        "Provisioner",
        "string",
        "provisioner indicates the type of the provisioner.",
    ),
    Col::new(
        "ReclaimPolicy",
        "string",
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.",
    ),
    Col::new(
        "VolumeBindingMode",
        "string",
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.",
    ),
    Col::new(
        "AllowVolumeExpansion",
        "string",
        "allowVolumeExpansion shows whether the storage class allow volume expand.",
    ),
    AGE,
];

fn storage_class(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let annotations = map_at(obj, "/metadata/annotations");
    let is_default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| annotations.and_then(|a| a.get(*k)).and_then(Value::as_str) == Some("true"));
    let mut display = name(obj).to_string();
    if is_default {
        display.push_str(" (default)");
    }
    vec![
        display.into(),
        str_at(obj, "/provisioner").into(),
        opt_str(obj, "/reclaimPolicy").unwrap_or("Delete").into(),
        opt_str(obj, "/volumeBindingMode")
            .unwrap_or("Immediate")
            .into(),
        opt_bool(obj, "/allowVolumeExpansion")
            .unwrap_or(false)
            .into(),
        ctx.age(obj).into(),
    ]
}

const CSI_DRIVER: &[Col] = &[
    NAME,
    Col::new(
        "AttachRequired",
        "boolean",
        "attachRequired indicates this CSI volume driver requires an attach operation.",
    ),
    Col::new(
        "PodInfoOnMount",
        "boolean",
        "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations.",
    ),
    Col::new(
        "StorageCapacity",
        "boolean",
        "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report.",
    ),
    Col::new(
        "TokenRequests",
        "string",
        "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
    ),
    Col::new(
        "RequiresRepublish",
        "boolean",
        "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.",
    ),
    Col::new(
        "Modes",
        "string",
        "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.",
    ),
    AGE,
];

fn csi_driver(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let modes: Vec<&str> = arr_at(obj, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    let token_requests = match obj.pointer("/spec/tokenRequests") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| str_at(t, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<unset>".to_string(),
    };
    vec![
        name(obj).into(),
        opt_bool(obj, "/spec/attachRequired").unwrap_or(true).into(),
        opt_bool(obj, "/spec/podInfoOnMount")
            .unwrap_or(false)
            .into(),
        opt_bool(obj, "/spec/storageCapacity")
            .unwrap_or(false)
            .into(),
        token_requests.into(),
        opt_bool(obj, "/spec/requiresRepublish")
            .unwrap_or(false)
            .into(),
        modes.into(),
        ctx.age(obj).into(),
    ]
}

const CSI_NODE: &[Col] = &[
    NAME,
    Col::new(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

fn csi_node(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, "/spec/drivers").into(),
        ctx.age(obj).into(),
    ]
}

const CSI_STORAGE_CAPACITY: &[Col] = &[
    NAME,
    Col::new(
        "StorageClassName",
        "string",
        "storageClassName represents the name of the StorageClass that the reported capacity applies to.",
    ),
    Col::new(
        "Capacity",
        "string",
        "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.",
    ),
];

fn csi_storage_capacity(obj: &Value, _ctx: &Ctx) -> Vec<Value> {
    let capacity = match obj.get("capacity") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<unset>".to_string(),
    };
    vec![
        name(obj).into(),
        str_at(obj, "/storageClassName").into(),
        capacity.into(),
    ]
}

const VOLUME_ATTACHMENT: &[Col] = &[
    NAME,
    Col::new(
        "Attacher",
        "string",
        "attacher indicates the name of the volume driver that MUST handle this request.",
    )
    .named(),
    Col::new(
        "PV",
        "string",
        "persistentVolumeName represents the name of the persistent volume to attach.",
    ),
    Col::new(
        "Node",
        "string",
        "nodeName represents the node that the volume should be attached to.",
    ),
    Col::new(
        "Attached",
        "boolean",
        "attached indicates the volume is successfully attached.",
    ),
    AGE,
];

fn volume_attachment(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/spec/attacher").into(),
        str_at(obj, "/spec/source/persistentVolumeName").into(),
        str_at(obj, "/spec/nodeName").into(),
        opt_bool(obj, "/status/attached").unwrap_or(false).into(),
        ctx.age(obj).into(),
    ]
}

const POD_DISRUPTION_BUDGET: &[Col] = &[
    NAME,
    Col::new(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    Col::new(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    Col::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pod_disruption_budget(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let bound = |ptr: &str| match obj.pointer(ptr) {
        None | Some(Value::Null) => "N/A".to_string(),
        Some(v) => int_or_string(v),
    };
    vec![
        name(obj).into(),
        bound("/spec/minAvailable").into(),
        bound("/spec/maxUnavailable").into(),
        opt_int(obj, "/status/disruptionsAllowed")
            .unwrap_or(0)
            .into(),
        ctx.age(obj).into(),
    ]
}

const PRIORITY_CLASS: &[Col] = &[
    NAME,
    Col::new(
        "Value",
        "integer",
        "value represents the integer value of this priority class.",
    ),
    Col::new(
        "Global-Default",
        "boolean",
        "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.",
    ),
    AGE,
    Col::new(
        "PreemptionPolicy",
        "string",
        "preemptionPolicy is the Policy for preempting pods with lower priority.",
    ),
];

fn priority_class(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        opt_int(obj, "/value").unwrap_or(0).into(),
        opt_bool(obj, "/globalDefault").unwrap_or(false).into(),
        ctx.age(obj).into(),
        str_at(obj, "/preemptionPolicy").into(),
    ]
}

const LEASE: &[Col] = &[
    NAME,
    Col::new(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    AGE,
];

fn lease(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/spec/holderIdentity").into(),
        ctx.age(obj).into(),
    ]
}

const CSR: &[Col] = &[
    NAME,
    AGE,
    Col::new("SignerName", "string", "Requested signer for the request."),
    Col::new("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
    Col::new(
        "RequestedDuration",
        "string",
        "expirationSeconds is the requested duration of validity of the issued certificate.",
    ),
    Col::new(
        "Condition",
        "string",
        "Conditions applied to the request, such as approval or denial.",
    ),
];

/// `printCertificateSigningRequest` with `extractCSRStatus`.
fn csr(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let types: Vec<&str> = arr_at(obj, "/status/conditions")
        .iter()
        .map(|c| str_at(c, "/type"))
        .collect();
    let mut status = if types.contains(&"Denied") {
        "Denied"
    } else if types.contains(&"Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if types.contains(&"Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    let signer = match str_at(obj, "/spec/signerName") {
        "" => "<none>",
        s => s,
    };
    let duration = match opt_int(obj, "/spec/expirationSeconds") {
        Some(secs) => human_duration(i128::from(secs) * 1_000_000_000),
        None => "<none>".to_string(),
    };
    vec![
        name(obj).into(),
        ctx.age(obj).into(),
        signer.into(),
        str_at(obj, "/spec/username").into(),
        duration.into(),
        status.into(),
    ]
}

const WEBHOOK_CONFIGURATION: &[Col] = &[
    NAME,
    Col::new(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhook_configuration(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, "/webhooks").into(),
        ctx.age(obj).into(),
    ]
}

const VALIDATING_ADMISSION_POLICY: &[Col] = &[
    NAME,
    Col::new(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    Col::new(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE,
];

fn validating_admission_policy(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let param_kind = match obj.pointer("/spec/paramKind").filter(|p| p.is_object()) {
        Some(p) => format!("{}/{}", str_at(p, "/apiVersion"), str_at(p, "/kind")),
        None => "<unset>".to_string(),
    };
    vec![
        name(obj).into(),
        len_at(obj, "/spec/validations").into(),
        param_kind.into(),
        ctx.age(obj).into(),
    ]
}

const POLICY_BINDING: &[Col] = &[
    NAME,
    Col::new(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    Col::new(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

fn policy_binding(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let param = match obj.pointer("/spec/paramRef").filter(|p| p.is_object()) {
        None => "<unset>".to_string(),
        Some(p) => match (str_at(p, "/name"), str_at(p, "/namespace")) {
            ("", _) => match p.get("selector").filter(|s| s.is_object()) {
                Some(s) => go_label_selector(s),
                None => "<unset>".to_string(),
            },
            // A param without a namespace may be cluster-scoped or in any namespace.
            (n, "") => format!("*/{n}"),
            (n, ns) => format!("{ns}/{n}"),
        },
    };
    vec![
        name(obj).into(),
        str_at(obj, "/spec/policyName").into(),
        param.into(),
        ctx.age(obj).into(),
    ]
}

/// The generated Go `String()` of a `metav1.LabelSelector`, which `printValidatingAdmission
/// PolicyBinding` prints for a selector param reference.
fn go_label_selector(s: &Value) -> String {
    let mut labels: Vec<(&String, &Value)> =
        map_at(s, "/matchLabels").into_iter().flatten().collect();
    labels.sort_by(|a, b| a.0.cmp(b.0));
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("{k}: {},", v.as_str().unwrap_or("")))
        .collect();
    let exprs: String = arr_at(s, "/matchExpressions")
        .iter()
        .map(|e| {
            let values: Vec<&str> = arr_at(e, "/values")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, "/key"),
                str_at(e, "/operator"),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

const RUNTIME_CLASS: &[Col] = &[
    NAME,
    Col::new(
        "Handler",
        "string",
        "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.",
    ),
    AGE,
];

fn runtime_class(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/handler").into(),
        ctx.age(obj).into(),
    ]
}
