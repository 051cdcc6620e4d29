//! The patch metadata table: every field of the Kubernetes 1.33 API types (k8s.io/api,
//! apimachinery's meta/v1, apiextensions-apiserver and kube-aggregator) that carries a
//! `patchStrategy`/`patchMergeKey` struct tag or a `+listType`/`+listMapKey`/`+mapType`/
//! `+structType` marker, i.e. what upstream's OpenAPI emits as `x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`
//! and `x-kubernetes-map-type`.
//!
//! Extracted from the Go sources at tag v0.33.13 (fields of `json:",inline"` embedded structs
//! are listed under the embedding type, as OpenAPI flattens them). Only definitions that
//! k8s-openapi's `v1_33` feature knows are listed. Values are upstream's spelling; `""` means
//! absent. Rows are sorted by (type, field) so lookups can binary-search (a test checks it).

/// `(type, json field, patchStrategy, patchMergeKey, listType, listMapKeys, mapType)`.
pub(super) type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

/// Every package with metadata, sorted by OpenAPI package prefix.
pub(super) const PACKAGES: &[(&str, &[Row])] = &[
    (
        "io.k8s.api.admissionregistration.v1",
        ADMISSIONREGISTRATION_V1,
    ),
    (
        "io.k8s.api.admissionregistration.v1alpha1",
        ADMISSIONREGISTRATION_V1ALPHA1,
    ),
    (
        "io.k8s.api.admissionregistration.v1beta1",
        ADMISSIONREGISTRATION_V1BETA1,
    ),
    (
        "io.k8s.api.apiserverinternal.v1alpha1",
        APISERVERINTERNAL_V1ALPHA1,
    ),
    ("io.k8s.api.apps.v1", APPS_V1),
    ("io.k8s.api.authentication.v1", AUTHENTICATION_V1),
    ("io.k8s.api.authorization.v1", AUTHORIZATION_V1),
    ("io.k8s.api.autoscaling.v2", AUTOSCALING_V2),
    ("io.k8s.api.batch.v1", BATCH_V1),
    ("io.k8s.api.certificates.v1", CERTIFICATES_V1),
    ("io.k8s.api.core.v1", CORE_V1),
    ("io.k8s.api.discovery.v1", DISCOVERY_V1),
    ("io.k8s.api.flowcontrol.v1", FLOWCONTROL_V1),
    ("io.k8s.api.networking.v1", NETWORKING_V1),
    ("io.k8s.api.networking.v1beta1", NETWORKING_V1BETA1),
    ("io.k8s.api.node.v1", NODE_V1),
    ("io.k8s.api.policy.v1", POLICY_V1),
    ("io.k8s.api.rbac.v1", RBAC_V1),
    ("io.k8s.api.resource.v1alpha3", RESOURCE_V1ALPHA3),
    ("io.k8s.api.resource.v1beta1", RESOURCE_V1BETA1),
    ("io.k8s.api.resource.v1beta2", RESOURCE_V1BETA2),
    ("io.k8s.api.storage.v1", STORAGE_V1),
    (
        "io.k8s.api.storagemigration.v1alpha1",
        STORAGEMIGRATION_V1ALPHA1,
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
        APIEXTENSIONS_V1,
    ),
    ("io.k8s.apimachinery.pkg.apis.meta.v1", META_V1),
    (
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1",
        APIREGISTRATION_V1,
    ),
];

/// Definitions marked `+structType=atomic` (OpenAPI `x-kubernetes-map-type: atomic` on the
/// definition itself): replaced as a whole by server-side apply. Sorted.
pub(super) const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.Variable",
    "io.k8s.api.admissionregistration.v1alpha1.MatchResources",
    "io.k8s.api.admissionregistration.v1alpha1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1alpha1.ParamKind",
    "io.k8s.api.admissionregistration.v1alpha1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.MatchResources",
    "io.k8s.api.admissionregistration.v1beta1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1beta1.ParamKind",
    "io.k8s.api.admissionregistration.v1beta1.ParamRef",
    "io.k8s.api.admissionregistration.v1beta1.Variable",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];

#[rustfmt::skip]
const ADMISSIONREGISTRATION_V1: &[Row] = &[
    ("MatchResources", "excludeResourceRules", "", "", "atomic", &[], ""),
    ("MatchResources", "resourceRules", "", "", "atomic", &[], ""),
    ("MutatingWebhook", "admissionReviewVersions", "", "", "atomic", &[], ""),
    ("MutatingWebhook", "matchConditions", "merge", "name", "map", &["name"], ""),
    ("MutatingWebhook", "rules", "", "", "atomic", &[], ""),
    ("MutatingWebhookConfiguration", "webhooks", "merge", "name", "map", &["name"], ""),
    ("NamedRuleWithOperations", "apiGroups", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "apiVersions", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "operations", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "resourceNames", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "resources", "", "", "atomic", &[], ""),
    ("RuleWithOperations", "apiGroups", "", "", "atomic", &[], ""),
    ("RuleWithOperations", "apiVersions", "", "", "atomic", &[], ""),
    ("RuleWithOperations", "operations", "", "", "atomic", &[], ""),
    ("RuleWithOperations", "resources", "", "", "atomic", &[], ""),
    ("TypeChecking", "expressionWarnings", "", "", "atomic", &[], ""),
    ("ValidatingAdmissionPolicyBindingSpec", "validationActions", "", "", "set", &[], ""),
    ("ValidatingAdmissionPolicySpec", "auditAnnotations", "", "", "atomic", &[], ""),
    ("ValidatingAdmissionPolicySpec", "matchConditions", "merge", "name", "map", &["name"], ""),
    ("ValidatingAdmissionPolicySpec", "validations", "", "", "atomic", &[], ""),
    ("ValidatingAdmissionPolicySpec", "variables", "merge", "name", "map", &["name"], ""),
    ("ValidatingAdmissionPolicyStatus", "conditions", "", "", "map", &["type"], ""),
    ("ValidatingWebhook", "admissionReviewVersions", "", "", "atomic", &[], ""),
    ("ValidatingWebhook", "matchConditions", "merge", "name", "map", &["name"], ""),
    ("ValidatingWebhook", "rules", "", "", "atomic", &[], ""),
    ("ValidatingWebhookConfiguration", "webhooks", "merge", "name", "map", &["name"], ""),
];

#[rustfmt::skip]
const ADMISSIONREGISTRATION_V1ALPHA1: &[Row] = &[
    ("MatchResources", "excludeResourceRules", "", "", "atomic", &[], ""),
    ("MatchResources", "resourceRules", "", "", "atomic", &[], ""),
    ("MutatingAdmissionPolicySpec", "matchConditions", "merge", "name", "map", &["name"], ""),
    ("MutatingAdmissionPolicySpec", "mutations", "", "", "atomic", &[], ""),
    ("MutatingAdmissionPolicySpec", "variables", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "apiGroups", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "apiVersions", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "operations", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "resourceNames", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "resources", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const ADMISSIONREGISTRATION_V1BETA1: &[Row] = &[
    ("MatchResources", "excludeResourceRules", "", "", "atomic", &[], ""),
    ("MatchResources", "resourceRules", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "apiGroups", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "apiVersions", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "operations", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "resourceNames", "", "", "atomic", &[], ""),
    ("NamedRuleWithOperations", "resources", "", "", "atomic", &[], ""),
    ("TypeChecking", "expressionWarnings", "", "", "atomic", &[], ""),
    ("ValidatingAdmissionPolicyBindingSpec", "validationActions", "", "", "set", &[], ""),
    ("ValidatingAdmissionPolicySpec", "auditAnnotations", "", "", "atomic", &[], ""),
    ("ValidatingAdmissionPolicySpec", "matchConditions", "merge", "name", "map", &["name"], ""),
    ("ValidatingAdmissionPolicySpec", "validations", "", "", "atomic", &[], ""),
    ("ValidatingAdmissionPolicySpec", "variables", "merge", "name", "map", &["name"], ""),
    ("ValidatingAdmissionPolicyStatus", "conditions", "", "", "map", &["type"], ""),
];

#[rustfmt::skip]
const APISERVERINTERNAL_V1ALPHA1: &[Row] = &[
    ("ServerStorageVersion", "decodableVersions", "", "", "set", &[], ""),
    ("ServerStorageVersion", "servedVersions", "", "", "set", &[], ""),
    ("StorageVersionStatus", "conditions", "", "", "map", &["type"], ""),
    ("StorageVersionStatus", "storageVersions", "", "", "map", &["apiServerID"], ""),
];

#[rustfmt::skip]
const APPS_V1: &[Row] = &[
    ("DaemonSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("DeploymentSpec", "strategy", "retainKeys", "", "", &[], ""),
    ("DeploymentStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("ReplicaSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("StatefulSetSpec", "volumeClaimTemplates", "", "", "atomic", &[], ""),
    ("StatefulSetStatus", "conditions", "merge", "type", "map", &["type"], ""),
];

#[rustfmt::skip]
const AUTHENTICATION_V1: &[Row] = &[
    ("TokenRequestSpec", "audiences", "", "", "atomic", &[], ""),
    ("TokenReviewSpec", "audiences", "", "", "atomic", &[], ""),
    ("TokenReviewStatus", "audiences", "", "", "atomic", &[], ""),
    ("UserInfo", "groups", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const AUTHORIZATION_V1: &[Row] = &[
    ("FieldSelectorAttributes", "requirements", "", "", "atomic", &[], ""),
    ("LabelSelectorAttributes", "requirements", "", "", "atomic", &[], ""),
    ("NonResourceRule", "nonResourceURLs", "", "", "atomic", &[], ""),
    ("NonResourceRule", "verbs", "", "", "atomic", &[], ""),
    ("ResourceRule", "apiGroups", "", "", "atomic", &[], ""),
    ("ResourceRule", "resourceNames", "", "", "atomic", &[], ""),
    ("ResourceRule", "resources", "", "", "atomic", &[], ""),
    ("ResourceRule", "verbs", "", "", "atomic", &[], ""),
    ("SubjectAccessReviewSpec", "groups", "", "", "atomic", &[], ""),
    ("SubjectRulesReviewStatus", "nonResourceRules", "", "", "atomic", &[], ""),
    ("SubjectRulesReviewStatus", "resourceRules", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const AUTOSCALING_V2: &[Row] = &[
    ("HPAScalingRules", "policies", "", "", "atomic", &[], ""),
    ("HorizontalPodAutoscalerSpec", "metrics", "", "", "atomic", &[], ""),
    ("HorizontalPodAutoscalerStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("HorizontalPodAutoscalerStatus", "currentMetrics", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const BATCH_V1: &[Row] = &[
    ("CronJobStatus", "active", "", "", "atomic", &[], ""),
    ("JobStatus", "conditions", "merge", "type", "atomic", &[], ""),
    ("PodFailurePolicy", "rules", "", "", "atomic", &[], ""),
    ("PodFailurePolicyOnExitCodesRequirement", "values", "", "", "set", &[], ""),
    ("PodFailurePolicyRule", "onPodConditions", "", "", "atomic", &[], ""),
    ("SuccessPolicy", "rules", "", "", "atomic", &[], ""),
    ("UncountedTerminatedPods", "failed", "", "", "set", &[], ""),
    ("UncountedTerminatedPods", "succeeded", "", "", "set", &[], ""),
];

#[rustfmt::skip]
const CERTIFICATES_V1: &[Row] = &[
    ("CertificateSigningRequestSpec", "groups", "", "", "atomic", &[], ""),
    ("CertificateSigningRequestSpec", "request", "", "", "atomic", &[], ""),
    ("CertificateSigningRequestSpec", "usages", "", "", "atomic", &[], ""),
    ("CertificateSigningRequestStatus", "certificate", "", "", "atomic", &[], ""),
    ("CertificateSigningRequestStatus", "conditions", "", "", "map", &["type"], ""),
];

#[rustfmt::skip]
const CORE_V1: &[Row] = &[
    ("Capabilities", "add", "", "", "atomic", &[], ""),
    ("Capabilities", "drop", "", "", "atomic", &[], ""),
    ("CephFSPersistentVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("CephFSVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("ComponentStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("ConfigMapProjection", "items", "", "", "atomic", &[], ""),
    ("ConfigMapVolumeSource", "items", "", "", "atomic", &[], ""),
    ("Container", "args", "", "", "atomic", &[], ""),
    ("Container", "command", "", "", "atomic", &[], ""),
    ("Container", "env", "merge", "name", "map", &["name"], ""),
    ("Container", "envFrom", "", "", "atomic", &[], ""),
    ("Container", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"], ""),
    ("Container", "resizePolicy", "", "", "atomic", &[], ""),
    ("Container", "volumeDevices", "merge", "devicePath", "map", &["devicePath"], ""),
    ("Container", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    ("ContainerImage", "names", "", "", "atomic", &[], ""),
    ("ContainerStatus", "allocatedResourcesStatus", "merge", "name", "map", &["name"], ""),
    ("ContainerStatus", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    ("DownwardAPIProjection", "items", "", "", "atomic", &[], ""),
    ("DownwardAPIVolumeSource", "items", "", "", "atomic", &[], ""),
    ("EndpointSubset", "addresses", "", "", "atomic", &[], ""),
    ("EndpointSubset", "notReadyAddresses", "", "", "atomic", &[], ""),
    ("EndpointSubset", "ports", "", "", "atomic", &[], ""),
    ("Endpoints", "subsets", "", "", "atomic", &[], ""),
    ("EphemeralContainer", "args", "", "", "atomic", &[], ""),
    ("EphemeralContainer", "command", "", "", "atomic", &[], ""),
    ("EphemeralContainer", "env", "merge", "name", "map", &["name"], ""),
    ("EphemeralContainer", "envFrom", "", "", "atomic", &[], ""),
    ("EphemeralContainer", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"], ""),
    ("EphemeralContainer", "resizePolicy", "", "", "atomic", &[], ""),
    ("EphemeralContainer", "volumeDevices", "merge", "devicePath", "map", &["devicePath"], ""),
    ("EphemeralContainer", "volumeMounts", "merge", "mountPath", "map", &["mountPath"], ""),
    ("ExecAction", "command", "", "", "atomic", &[], ""),
    ("FCVolumeSource", "targetWWNs", "", "", "atomic", &[], ""),
    ("FCVolumeSource", "wwids", "", "", "atomic", &[], ""),
    ("HTTPGetAction", "httpHeaders", "", "", "atomic", &[], ""),
    ("HostAlias", "hostnames", "", "", "atomic", &[], ""),
    ("ISCSIPersistentVolumeSource", "portals", "", "", "atomic", &[], ""),
    ("ISCSIVolumeSource", "portals", "", "", "atomic", &[], ""),
    ("LimitRangeSpec", "limits", "", "", "atomic", &[], ""),
    ("LinuxContainerUser", "supplementalGroups", "", "", "atomic", &[], ""),
    ("LoadBalancerIngress", "ports", "", "", "atomic", &[], ""),
    ("LoadBalancerStatus", "ingress", "", "", "atomic", &[], ""),
    ("NamespaceSpec", "finalizers", "", "", "atomic", &[], ""),
    ("NamespaceStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("NodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("NodeSelector", "nodeSelectorTerms", "", "", "atomic", &[], ""),
    ("NodeSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("NodeSelectorTerm", "matchExpressions", "", "", "atomic", &[], ""),
    ("NodeSelectorTerm", "matchFields", "", "", "atomic", &[], ""),
    ("NodeSpec", "podCIDRs", "merge", "", "set", &[], ""),
    ("NodeSpec", "taints", "", "", "atomic", &[], ""),
    ("NodeStatus", "addresses", "merge", "type", "map", &["type"], ""),
    ("NodeStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("NodeStatus", "images", "", "", "atomic", &[], ""),
    ("NodeStatus", "runtimeHandlers", "", "", "atomic", &[], ""),
    ("NodeStatus", "volumesAttached", "", "", "atomic", &[], ""),
    ("NodeStatus", "volumesInUse", "", "", "atomic", &[], ""),
    ("PersistentVolumeClaimSpec", "accessModes", "", "", "atomic", &[], ""),
    ("PersistentVolumeClaimStatus", "accessModes", "", "", "atomic", &[], ""),
    ("PersistentVolumeClaimStatus", "allocatedResourceStatuses", "", "", "", &[], "granular"),
    ("PersistentVolumeClaimStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("PersistentVolumeSpec", "accessModes", "", "", "atomic", &[], ""),
    ("PersistentVolumeSpec", "claimRef", "", "", "", &[], "granular"),
    ("PersistentVolumeSpec", "mountOptions", "", "", "atomic", &[], ""),
    ("PodAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("PodAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("PodAffinityTerm", "matchLabelKeys", "", "", "atomic", &[], ""),
    ("PodAffinityTerm", "mismatchLabelKeys", "", "", "atomic", &[], ""),
    ("PodAffinityTerm", "namespaces", "", "", "atomic", &[], ""),
    ("PodAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("PodAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[], ""),
    ("PodDNSConfig", "nameservers", "", "", "atomic", &[], ""),
    ("PodDNSConfig", "options", "", "", "atomic", &[], ""),
    ("PodDNSConfig", "searches", "", "", "atomic", &[], ""),
    ("PodSecurityContext", "supplementalGroups", "", "", "atomic", &[], ""),
    ("PodSecurityContext", "sysctls", "", "", "atomic", &[], ""),
    ("PodSpec", "containers", "merge", "name", "map", &["name"], ""),
    ("PodSpec", "ephemeralContainers", "merge", "name", "map", &["name"], ""),
    ("PodSpec", "hostAliases", "merge", "ip", "map", &["ip"], ""),
    ("PodSpec", "imagePullSecrets", "merge", "name", "map", &["name"], ""),
    ("PodSpec", "initContainers", "merge", "name", "map", &["name"], ""),
    ("PodSpec", "nodeSelector", "", "", "", &[], "atomic"),
    ("PodSpec", "readinessGates", "", "", "atomic", &[], ""),
    ("PodSpec", "resourceClaims", "merge,retainKeys", "name", "map", &["name"], ""),
    ("PodSpec", "schedulingGates", "merge", "name", "map", &["name"], ""),
    ("PodSpec", "tolerations", "", "", "atomic", &[], ""),
    ("PodSpec", "topologySpreadConstraints", "merge", "topologyKey", "map", &["topologyKey", "whenUnsatisfiable"], ""),
    ("PodSpec", "volumes", "merge,retainKeys", "name", "map", &["name"], ""),
    ("PodStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("PodStatus", "containerStatuses", "", "", "atomic", &[], ""),
    ("PodStatus", "ephemeralContainerStatuses", "", "", "atomic", &[], ""),
    ("PodStatus", "hostIPs", "merge", "ip", "atomic", &[], ""),
    ("PodStatus", "initContainerStatuses", "", "", "atomic", &[], ""),
    ("PodStatus", "podIPs", "merge", "ip", "map", &["ip"], ""),
    ("PodStatus", "resourceClaimStatuses", "merge,retainKeys", "name", "map", &["name"], ""),
    ("ProjectedVolumeSource", "sources", "", "", "atomic", &[], ""),
    ("RBDPersistentVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("RBDVolumeSource", "monitors", "", "", "atomic", &[], ""),
    ("ReplicationControllerSpec", "selector", "", "", "", &[], "atomic"),
    ("ReplicationControllerStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("ResourceQuotaSpec", "scopes", "", "", "atomic", &[], ""),
    ("ResourceRequirements", "claims", "", "", "map", &["name"], ""),
    ("ResourceStatus", "resources", "", "", "map", &["resourceID"], ""),
    ("ScopeSelector", "matchExpressions", "", "", "atomic", &[], ""),
    ("ScopedResourceSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("SecretProjection", "items", "", "", "atomic", &[], ""),
    ("SecretVolumeSource", "items", "", "", "atomic", &[], ""),
    ("ServiceAccount", "imagePullSecrets", "", "", "atomic", &[], ""),
    ("ServiceAccount", "secrets", "merge", "name", "map", &["name"], ""),
    ("ServiceSpec", "clusterIPs", "", "", "atomic", &[], ""),
    ("ServiceSpec", "externalIPs", "", "", "atomic", &[], ""),
    ("ServiceSpec", "ipFamilies", "", "", "atomic", &[], ""),
    ("ServiceSpec", "loadBalancerSourceRanges", "", "", "atomic", &[], ""),
    ("ServiceSpec", "ports", "merge", "port", "map", &["port", "protocol"], ""),
    ("ServiceSpec", "selector", "", "", "", &[], "atomic"),
    ("ServiceStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("TopologySelectorLabelRequirement", "values", "", "", "atomic", &[], ""),
    ("TopologySelectorTerm", "matchLabelExpressions", "", "", "atomic", &[], ""),
    ("TopologySpreadConstraint", "matchLabelKeys", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const DISCOVERY_V1: &[Row] = &[
    ("Endpoint", "addresses", "", "", "set", &[], ""),
    ("EndpointHints", "forNodes", "", "", "atomic", &[], ""),
    ("EndpointHints", "forZones", "", "", "atomic", &[], ""),
    ("EndpointSlice", "endpoints", "", "", "atomic", &[], ""),
    ("EndpointSlice", "ports", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const FLOWCONTROL_V1: &[Row] = &[
    ("FlowSchemaSpec", "rules", "", "", "atomic", &[], ""),
    ("FlowSchemaStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("NonResourcePolicyRule", "nonResourceURLs", "", "", "set", &[], ""),
    ("NonResourcePolicyRule", "verbs", "", "", "set", &[], ""),
    ("PolicyRulesWithSubjects", "nonResourceRules", "", "", "atomic", &[], ""),
    ("PolicyRulesWithSubjects", "resourceRules", "", "", "atomic", &[], ""),
    ("PolicyRulesWithSubjects", "subjects", "", "", "atomic", &[], ""),
    ("PriorityLevelConfigurationStatus", "conditions", "merge", "type", "map", &["type"], ""),
    ("ResourcePolicyRule", "apiGroups", "", "", "set", &[], ""),
    ("ResourcePolicyRule", "namespaces", "", "", "set", &[], ""),
    ("ResourcePolicyRule", "resources", "", "", "set", &[], ""),
    ("ResourcePolicyRule", "verbs", "", "", "set", &[], ""),
];

#[rustfmt::skip]
const NETWORKING_V1: &[Row] = &[
    ("HTTPIngressRuleValue", "paths", "", "", "atomic", &[], ""),
    ("IPBlock", "except", "", "", "atomic", &[], ""),
    ("IngressLoadBalancerIngress", "ports", "", "", "atomic", &[], ""),
    ("IngressLoadBalancerStatus", "ingress", "", "", "atomic", &[], ""),
    ("IngressSpec", "rules", "", "", "atomic", &[], ""),
    ("IngressSpec", "tls", "", "", "atomic", &[], ""),
    ("IngressTLS", "hosts", "", "", "atomic", &[], ""),
    ("NetworkPolicyEgressRule", "ports", "", "", "atomic", &[], ""),
    ("NetworkPolicyEgressRule", "to", "", "", "atomic", &[], ""),
    ("NetworkPolicyIngressRule", "from", "", "", "atomic", &[], ""),
    ("NetworkPolicyIngressRule", "ports", "", "", "atomic", &[], ""),
    ("NetworkPolicySpec", "egress", "", "", "atomic", &[], ""),
    ("NetworkPolicySpec", "ingress", "", "", "atomic", &[], ""),
    ("NetworkPolicySpec", "policyTypes", "", "", "atomic", &[], ""),
    ("ServiceCIDRSpec", "cidrs", "", "", "atomic", &[], ""),
    ("ServiceCIDRStatus", "conditions", "merge", "type", "map", &["type"], ""),
];

#[rustfmt::skip]
const NETWORKING_V1BETA1: &[Row] = &[
    ("ServiceCIDRSpec", "cidrs", "", "", "atomic", &[], ""),
    ("ServiceCIDRStatus", "conditions", "merge", "type", "map", &["type"], ""),
];

#[rustfmt::skip]
const NODE_V1: &[Row] = &[
    ("Scheduling", "nodeSelector", "", "", "", &[], "atomic"),
    ("Scheduling", "tolerations", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const POLICY_V1: &[Row] = &[
    ("PodDisruptionBudgetSpec", "selector", "replace", "", "", &[], ""),
    ("PodDisruptionBudgetStatus", "conditions", "merge", "type", "map", &["type"], ""),
];

#[rustfmt::skip]
const RBAC_V1: &[Row] = &[
    ("AggregationRule", "clusterRoleSelectors", "", "", "atomic", &[], ""),
    ("ClusterRole", "rules", "", "", "atomic", &[], ""),
    ("ClusterRoleBinding", "subjects", "", "", "atomic", &[], ""),
    ("PolicyRule", "apiGroups", "", "", "atomic", &[], ""),
    ("PolicyRule", "nonResourceURLs", "", "", "atomic", &[], ""),
    ("PolicyRule", "resourceNames", "", "", "atomic", &[], ""),
    ("PolicyRule", "resources", "", "", "atomic", &[], ""),
    ("PolicyRule", "verbs", "", "", "atomic", &[], ""),
    ("Role", "rules", "", "", "atomic", &[], ""),
    ("RoleBinding", "subjects", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const RESOURCE_V1ALPHA3: &[Row] = &[
    ("AllocatedDeviceStatus", "conditions", "", "", "map", &["type"], ""),
    ("BasicDevice", "consumesCounters", "", "", "atomic", &[], ""),
    ("BasicDevice", "taints", "", "", "atomic", &[], ""),
    ("DeviceAllocationConfiguration", "requests", "", "", "atomic", &[], ""),
    ("DeviceAllocationResult", "config", "", "", "atomic", &[], ""),
    ("DeviceAllocationResult", "results", "", "", "atomic", &[], ""),
    ("DeviceClaim", "config", "", "", "atomic", &[], ""),
    ("DeviceClaim", "constraints", "", "", "atomic", &[], ""),
    ("DeviceClaim", "requests", "", "", "atomic", &[], ""),
    ("DeviceClaimConfiguration", "requests", "", "", "atomic", &[], ""),
    ("DeviceClassSpec", "config", "", "", "atomic", &[], ""),
    ("DeviceClassSpec", "selectors", "", "", "atomic", &[], ""),
    ("DeviceConstraint", "requests", "", "", "atomic", &[], ""),
    ("DeviceRequest", "firstAvailable", "", "", "atomic", &[], ""),
    ("DeviceRequest", "selectors", "", "", "atomic", &[], ""),
    ("DeviceRequest", "tolerations", "", "", "atomic", &[], ""),
    ("DeviceRequestAllocationResult", "tolerations", "", "", "atomic", &[], ""),
    ("DeviceSubRequest", "selectors", "", "", "atomic", &[], ""),
    ("DeviceSubRequest", "tolerations", "", "", "atomic", &[], ""),
    ("DeviceTaintSelector", "selectors", "", "", "atomic", &[], ""),
    ("NetworkDeviceData", "ips", "", "", "atomic", &[], ""),
    ("ResourceClaimStatus", "devices", "", "", "map", &["driver", "device", "pool"], ""),
    ("ResourceClaimStatus", "reservedFor", "merge", "uid", "map", &["uid"], ""),
    ("ResourceSliceSpec", "devices", "", "", "atomic", &[], ""),
    ("ResourceSliceSpec", "sharedCounters", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const RESOURCE_V1BETA1: &[Row] = &[
    ("AllocatedDeviceStatus", "conditions", "", "", "map", &["type"], ""),
    ("BasicDevice", "consumesCounters", "", "", "atomic", &[], ""),
    ("BasicDevice", "taints", "", "", "atomic", &[], ""),
    ("DeviceAllocationConfiguration", "requests", "", "", "atomic", &[], ""),
    ("DeviceAllocationResult", "config", "", "", "atomic", &[], ""),
    ("DeviceAllocationResult", "results", "", "", "atomic", &[], ""),
    ("DeviceClaim", "config", "", "", "atomic", &[], ""),
    ("DeviceClaim", "constraints", "", "", "atomic", &[], ""),
    ("DeviceClaim", "requests", "", "", "atomic", &[], ""),
    ("DeviceClaimConfiguration", "requests", "", "", "atomic", &[], ""),
    ("DeviceClassSpec", "config", "", "", "atomic", &[], ""),
    ("DeviceClassSpec", "selectors", "", "", "atomic", &[], ""),
    ("DeviceConstraint", "requests", "", "", "atomic", &[], ""),
    ("DeviceRequest", "firstAvailable", "", "", "atomic", &[], ""),
    ("DeviceRequest", "selectors", "", "", "atomic", &[], ""),
    ("DeviceRequest", "tolerations", "", "", "atomic", &[], ""),
    ("DeviceRequestAllocationResult", "tolerations", "", "", "atomic", &[], ""),
    ("DeviceSubRequest", "selectors", "", "", "atomic", &[], ""),
    ("DeviceSubRequest", "tolerations", "", "", "atomic", &[], ""),
    ("NetworkDeviceData", "ips", "", "", "atomic", &[], ""),
    ("ResourceClaimStatus", "devices", "", "", "map", &["driver", "device", "pool"], ""),
    ("ResourceClaimStatus", "reservedFor", "merge", "uid", "map", &["uid"], ""),
    ("ResourceSliceSpec", "devices", "", "", "atomic", &[], ""),
    ("ResourceSliceSpec", "sharedCounters", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const RESOURCE_V1BETA2: &[Row] = &[
    ("AllocatedDeviceStatus", "conditions", "", "", "map", &["type"], ""),
    ("Device", "consumesCounters", "", "", "atomic", &[], ""),
    ("Device", "taints", "", "", "atomic", &[], ""),
    ("DeviceAllocationConfiguration", "requests", "", "", "atomic", &[], ""),
    ("DeviceAllocationResult", "config", "", "", "atomic", &[], ""),
    ("DeviceAllocationResult", "results", "", "", "atomic", &[], ""),
    ("DeviceClaim", "config", "", "", "atomic", &[], ""),
    ("DeviceClaim", "constraints", "", "", "atomic", &[], ""),
    ("DeviceClaim", "requests", "", "", "atomic", &[], ""),
    ("DeviceClaimConfiguration", "requests", "", "", "atomic", &[], ""),
    ("DeviceClassSpec", "config", "", "", "atomic", &[], ""),
    ("DeviceClassSpec", "selectors", "", "", "atomic", &[], ""),
    ("DeviceConstraint", "requests", "", "", "atomic", &[], ""),
    ("DeviceRequest", "firstAvailable", "", "", "atomic", &[], ""),
    ("DeviceRequestAllocationResult", "tolerations", "", "", "atomic", &[], ""),
    ("DeviceSubRequest", "selectors", "", "", "atomic", &[], ""),
    ("DeviceSubRequest", "tolerations", "", "", "atomic", &[], ""),
    ("ExactDeviceRequest", "selectors", "", "", "atomic", &[], ""),
    ("ExactDeviceRequest", "tolerations", "", "", "atomic", &[], ""),
    ("NetworkDeviceData", "ips", "", "", "atomic", &[], ""),
    ("ResourceClaimStatus", "devices", "", "", "map", &["driver", "device", "pool"], ""),
    ("ResourceClaimStatus", "reservedFor", "merge", "uid", "map", &["uid"], ""),
    ("ResourceSliceSpec", "devices", "", "", "atomic", &[], ""),
    ("ResourceSliceSpec", "sharedCounters", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const STORAGE_V1: &[Row] = &[
    ("CSIDriverSpec", "tokenRequests", "", "", "atomic", &[], ""),
    ("CSIDriverSpec", "volumeLifecycleModes", "", "", "set", &[], ""),
    ("CSINodeDriver", "topologyKeys", "", "", "atomic", &[], ""),
    ("CSINodeSpec", "drivers", "merge", "name", "map", &["name"], ""),
    ("StorageClass", "allowedTopologies", "", "", "atomic", &[], ""),
    ("StorageClass", "mountOptions", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const STORAGEMIGRATION_V1ALPHA1: &[Row] = &[
    ("StorageVersionMigrationStatus", "conditions", "merge", "type", "map", &["type"], ""),
];

#[rustfmt::skip]
const APIEXTENSIONS_V1: &[Row] = &[
    ("CustomResourceDefinitionNames", "categories", "", "", "atomic", &[], ""),
    ("CustomResourceDefinitionNames", "shortNames", "", "", "atomic", &[], ""),
    ("CustomResourceDefinitionSpec", "versions", "", "", "atomic", &[], ""),
    ("CustomResourceDefinitionStatus", "conditions", "", "", "map", &["type"], ""),
    ("CustomResourceDefinitionStatus", "storedVersions", "", "", "atomic", &[], ""),
    ("CustomResourceDefinitionVersion", "additionalPrinterColumns", "", "", "atomic", &[], ""),
    ("CustomResourceDefinitionVersion", "selectableFields", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "allOf", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "anyOf", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "enum", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "oneOf", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "required", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "x-kubernetes-list-map-keys", "", "", "atomic", &[], ""),
    ("JSONSchemaProps", "x-kubernetes-validations", "merge", "rule", "map", &["rule"], ""),
    ("WebhookConversion", "conversionReviewVersions", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const META_V1: &[Row] = &[
    ("APIGroup", "serverAddressByClientCIDRs", "", "", "atomic", &[], ""),
    ("APIGroup", "versions", "", "", "atomic", &[], ""),
    ("APIGroupList", "groups", "", "", "atomic", &[], ""),
    ("APIResource", "categories", "", "", "atomic", &[], ""),
    ("APIResource", "shortNames", "", "", "atomic", &[], ""),
    ("APIResourceList", "resources", "", "", "atomic", &[], ""),
    ("APIVersions", "serverAddressByClientCIDRs", "", "", "atomic", &[], ""),
    ("APIVersions", "versions", "", "", "atomic", &[], ""),
    ("DeleteOptions", "dryRun", "", "", "atomic", &[], ""),
    ("FieldSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("LabelSelector", "matchExpressions", "", "", "atomic", &[], ""),
    ("LabelSelectorRequirement", "values", "", "", "atomic", &[], ""),
    ("ObjectMeta", "finalizers", "merge", "", "set", &[], ""),
    ("ObjectMeta", "managedFields", "", "", "atomic", &[], ""),
    ("ObjectMeta", "ownerReferences", "merge", "uid", "map", &["uid"], ""),
    ("Status", "details", "", "", "atomic", &[], ""),
    ("StatusDetails", "causes", "", "", "atomic", &[], ""),
];

#[rustfmt::skip]
const APIREGISTRATION_V1: &[Row] = &[
    ("APIServiceSpec", "caBundle", "", "", "atomic", &[], ""),
    ("APIServiceStatus", "conditions", "merge", "type", "map", &["type"], ""),
];
