//! Built-in kinds: their scope and the name rule upstream's `Validate*` function for each
//! passes to `ValidateObjectMeta` (most use DNS subdomains; Namespaces and StatefulSets DNS
//! labels, Services DNS-1035 labels, RBAC objects and PodDisruptionBudgets path segments).

use super::name::{
    NameValidator, name_any, name_is_dns_label, name_is_dns_subdomain, name_is_dns1035_label,
    validate_path_segment_name,
};

/// One built-in kind: where it lives, its scope and its name rule.
pub(crate) struct Builtin {
    pub group: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub name: NameValidator,
}

const fn b(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    name: NameValidator,
) -> Builtin {
    Builtin {
        group,
        kind,
        plural,
        namespaced,
        name,
    }
}

const SUB: NameValidator = name_is_dns_subdomain;
const PATH: NameValidator = validate_path_segment_name;

/// Built-in kinds and the name rule each one's upstream `Validate*` passes to
/// `ValidateObjectMeta`.
#[rustfmt::skip]
pub(crate) static BUILTINS: &[Builtin] = &[
    b("", "Pod", "pods", true, SUB),
    b("", "PodTemplate", "podtemplates", true, SUB),
    b("", "ReplicationController", "replicationcontrollers", true, SUB),
    b("", "Service", "services", true, name_is_dns1035_label),
    b("", "Endpoints", "endpoints", true, SUB),
    b("", "Node", "nodes", false, SUB),
    b("", "Namespace", "namespaces", false, name_is_dns_label),
    b("", "ConfigMap", "configmaps", true, SUB),
    b("", "Secret", "secrets", true, SUB),
    b("", "ServiceAccount", "serviceaccounts", true, SUB),
    b("", "PersistentVolume", "persistentvolumes", false, SUB),
    b("", "PersistentVolumeClaim", "persistentvolumeclaims", true, SUB),
    b("", "Event", "events", true, SUB),
    b("", "LimitRange", "limitranges", true, SUB),
    b("", "ResourceQuota", "resourcequotas", true, SUB),
    b("apps", "Deployment", "deployments", true, SUB),
    b("apps", "ReplicaSet", "replicasets", true, SUB),
    b("apps", "DaemonSet", "daemonsets", true, SUB),
    b("apps", "StatefulSet", "statefulsets", true, name_is_dns_label),
    b("apps", "ControllerRevision", "controllerrevisions", true, SUB),
    b("batch", "Job", "jobs", true, SUB),
    b("batch", "CronJob", "cronjobs", true, SUB),
    b("autoscaling", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, SUB),
    // 1.33's PDB validator skips ObjectMeta; only the registry's path-segment rule applies.
    b("policy", "PodDisruptionBudget", "poddisruptionbudgets", true, PATH),
    b("networking.k8s.io", "Ingress", "ingresses", true, SUB),
    b("networking.k8s.io", "IngressClass", "ingressclasses", false, SUB),
    b("networking.k8s.io", "NetworkPolicy", "networkpolicies", true, SUB),
    b("networking.k8s.io", "ServiceCIDR", "servicecidrs", false, SUB),
    b("networking.k8s.io", "IPAddress", "ipaddresses", false, name_any),
    b("discovery.k8s.io", "EndpointSlice", "endpointslices", true, SUB),
    b("rbac.authorization.k8s.io", "Role", "roles", true, PATH),
    b("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true, PATH),
    b("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false, PATH),
    b("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false, PATH),
    b("storage.k8s.io", "StorageClass", "storageclasses", false, SUB),
    b("storage.k8s.io", "CSIDriver", "csidrivers", false, SUB),
    b("storage.k8s.io", "CSINode", "csinodes", false, SUB),
    b("storage.k8s.io", "VolumeAttachment", "volumeattachments", false, SUB),
    b("storage.k8s.io", "CSIStorageCapacity", "csistoragecapacities", true, SUB),
    b("storage.k8s.io", "VolumeAttributesClass", "volumeattributesclasses", false, SUB),
    b("apiextensions.k8s.io", "CustomResourceDefinition", "customresourcedefinitions", false, SUB),
    b("apiregistration.k8s.io", "APIService", "apiservices", false, SUB),
    b("scheduling.k8s.io", "PriorityClass", "priorityclasses", false, SUB),
    b("node.k8s.io", "RuntimeClass", "runtimeclasses", false, SUB),
    b("coordination.k8s.io", "Lease", "leases", true, SUB),
    b("events.k8s.io", "Event", "events", true, SUB),
    b("certificates.k8s.io", "CertificateSigningRequest", "certificatesigningrequests", false, name_any),
    b("flowcontrol.apiserver.k8s.io", "FlowSchema", "flowschemas", false, SUB),
    b("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration", "prioritylevelconfigurations", false, SUB),
    b("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", false, SUB),
    b("admissionregistration.k8s.io", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", false, SUB),
    b("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", false, SUB),
    b("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", false, SUB),
    b("resource.k8s.io", "ResourceClaim", "resourceclaims", true, SUB),
    b("resource.k8s.io", "ResourceClaimTemplate", "resourceclaimtemplates", true, SUB),
    b("resource.k8s.io", "DeviceClass", "deviceclasses", false, SUB),
    b("resource.k8s.io", "ResourceSlice", "resourceslices", false, SUB),
];

/// The built-in entry for `(group, kind)`.
pub(crate) fn builtin_by_kind(group: &str, kind: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.group == group && b.kind == kind)
}

/// The name rule upstream applies to objects of `(group, resource)` (`resource` is the plural,
/// e.g. `("", "services")`). Unknown resources — custom resources — get the DNS subdomain
/// rule, as upstream's custom resource strategy does.
pub fn name_validator(group: &str, resource: &str) -> NameValidator {
    BUILTINS
        .iter()
        .find(|b| b.group == group && b.plural == resource)
        .map(|b| b.name)
        .unwrap_or(name_is_dns_subdomain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_name_rules() {
        assert!(name_validator("", "services")("1svc", false).len() == 1);
        assert!(name_validator("", "pods")("1pod", false).is_empty());
        assert!(name_validator("rbac.authorization.k8s.io", "roles")("system:x", false).is_empty());
        assert!(name_validator("", "namespaces")("a.b", false).len() == 1);
        assert!(name_validator("example.com", "widgets")("a.b", false).is_empty());
    }
}
