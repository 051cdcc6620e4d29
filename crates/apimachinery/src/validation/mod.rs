//! Object validation with Kubernetes 1.33's rules, field paths, messages and error order.
//!
//! [`validate_create`] and [`validate_update`] are what the apiserver calls after decoding
//! (objects have been round-tripped through the typed k8s-openapi structs, so field types are
//! right). They return upstream's `field.ErrorList`; [`crate::status::ApiError::invalid`] turns
//! it into the 422 `Status` kubectl prints as
//! `The Deployment "nginx" is invalid: * spec.selector: Required value …`.
//!
//! Upstream validates *after* defaulting and after its registry strategy has prepared the
//! object. Validation here reads fields upstream defaults (restart policies, update strategies,
//! service types, probe periods, …) as their defaults when absent, so it gives upstream's
//! answer whether or not the caller defaulted first. What the caller must still do, as
//! upstream's `rest.BeforeCreate` does: set `metadata.namespace` from the request for
//! namespaced kinds, clear it for cluster-scoped ones, and generate the name from
//! `generateName` (a `generateName` alone is accepted here). On update, the stored object's
//! identity fields, generation and resourceVersion are carried over like `rest.BeforeUpdate`
//! and the store's unconditional-update path do.
//!
//! # Layout
//! - `name.rs`: name and identifier rules (`IsDNS1123Subdomain`, qualified names, label values,
//!   path segments, …); `kinds.rs`: each built-in kind's scope and name rule
//!   ([`name_validator`]).
//! - `meta.rs`: ObjectMeta on create and update.
//! - `labels.rs`: label maps and label selectors (validation, parsing, matching).
//! - `pod.rs`, `volume.rs`, `container.rs`, `env.rs`, `probe.rs`, `scheduling.rs`: pod specs,
//!   templates, volumes, containers, environment, probes, tolerations/affinity/spreading;
//!   `ephemeral.rs`: ephemeral containers and the `pods/ephemeralcontainers` update.
//! - `apps.rs`: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! - `batch.rs`, `cron.rs`: Job, CronJob and cron schedules.
//! - `service.rs`, `cluster_ip.rs`: Service; `core.rs`: Namespace, ConfigMap, Secret,
//!   ServiceAccount, PersistentVolumeClaim, ReplicationController.
//! - `persistent_volume.rs`: PersistentVolume; `node.rs`: Node; `endpoints.rs`: Endpoints and
//!   EndpointSlice; `quota.rs`: ResourceQuota and LimitRange.
//! - `ingress.rs`: Ingress and IngressClass; `network_policy.rs`: NetworkPolicy.
//! - `rbac.rs`: Roles, ClusterRoles and their bindings; `policy.rs`: PodDisruptionBudget;
//!   `autoscaling.rs`: HorizontalPodAutoscaler (v2 and v1).
//! - `storage.rs`: StorageClass and CSIDriver; `cluster.rs`: PriorityClass, RuntimeClass,
//!   Lease; `certificates.rs`: CertificateSigningRequest.
//! - `apiextensions.rs`, `crd_parts.rs`, `crd_schema.rs`: CustomResourceDefinition.
//! - `admission_webhooks.rs`: Validating/MutatingWebhookConfiguration and webhook client
//!   configs (also used by CRD conversion).
//! - `netnames.rs`: wildcard hosts, fully qualified names, domain-prefixed paths, lenient
//!   IP/CIDR parsing.
//! - `path.rs`: field paths and error constructors; `gofmt.rs`: Go `%#v` renderings of bad
//!   values; `json.rs`: panic-free field access; `quantity.rs`: resource quantities.
//! - `tests.rs`: the seed manifests and their upstream messages; `kind_tests/`: table tests
//!   per kind family.
//!
//! Kinds without rules of their own here (and custom resources) get ObjectMeta validation only.

mod admission_webhooks;
mod apiextensions;
mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod cluster;
mod cluster_ip;
mod container;
mod core;
mod crd_parts;
mod crd_schema;
mod cron;
mod endpoints;
mod env;
mod ephemeral;
mod gofmt;
mod ingress;
mod json;
#[cfg(test)]
mod kind_tests;
mod kinds;
pub mod labels;
pub mod meta;
pub mod name;
mod netnames;
mod network_policy;
mod node;
pub mod path;
mod persistent_volume;
mod pod;
mod policy;
mod probe;
pub(crate) mod quantity;
mod quota;
mod rbac;
mod scheduling;
mod service;
mod storage;
#[cfg(test)]
mod tests;
mod volume;

use serde_json::Value;

use crate::field::FieldError;

pub use batch::generate_job_selector;
pub use kinds::name_validator;
pub use meta::{validate_object_meta, validate_object_meta_update};
pub use name::NameValidator;

const ADMISSION: &str = "admissionregistration.k8s.io";
const NETWORKING: &str = "networking.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";
const STORAGE: &str = "storage.k8s.io";
use name::name_is_dns_subdomain;

/// Whether a built-in kind is namespaced; `None` for kinds this module does not know (custom
/// resources), whose scope the caller knows from its registry.
pub fn is_namespaced(group: &str, kind: &str) -> Option<bool> {
    kinds::builtin_by_kind(group, kind).map(|b| b.namespaced)
}

/// Validates an object about to be created; empty when it is valid. Errors are in upstream's
/// order. Unknown kinds get ObjectMeta checks with the DNS-subdomain name rule and no scope
/// check (use [`meta::validate_object_meta_generic`] with the scope when it is known).
pub fn validate_create(group: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_create(obj),
        ("", "PodTemplate") => pod::validate_pod_template(obj),
        ("", "Service") => service::validate_service(obj),
        ("", "ConfigMap") => core::validate_config_map(obj),
        ("", "Secret") => core::validate_secret(obj),
        ("", "Namespace") => core::validate_namespace(obj),
        ("", "ServiceAccount") => core::validate_service_account(obj),
        ("", "PersistentVolumeClaim") => core::validate_persistent_volume_claim(obj),
        ("", "ReplicationController") => core::validate_replication_controller(obj),
        ("apps", "Deployment") => apps::validate_deployment(obj),
        ("apps", "ReplicaSet") => apps::validate_replica_set(obj),
        ("apps", "StatefulSet") => apps::validate_stateful_set(obj),
        ("apps", "DaemonSet") => apps::validate_daemon_set(obj),
        ("batch", "Job") => batch::validate_job(obj),
        ("batch", "CronJob") => batch::validate_cron_job(obj),
        (NETWORKING, "Ingress") => ingress::validate_ingress(obj),
        (NETWORKING, "IngressClass") => ingress::validate_ingress_class(obj),
        (NETWORKING, "NetworkPolicy") => network_policy::validate_network_policy(obj),
        (RBAC, "Role") => rbac::validate_role(obj),
        (RBAC, "ClusterRole") => rbac::validate_cluster_role(obj),
        (RBAC, "RoleBinding") => rbac::validate_role_binding(obj),
        (RBAC, "ClusterRoleBinding") => rbac::validate_cluster_role_binding(obj),
        ("policy", "PodDisruptionBudget") => policy::validate_pdb(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::validate_hpa(obj),
        ("", "PersistentVolume") => persistent_volume::validate_persistent_volume(obj),
        (STORAGE, "StorageClass") => storage::validate_storage_class(obj),
        (STORAGE, "CSIDriver") => storage::validate_csi_driver(obj),
        ("", "Node") => node::validate_node(obj),
        ("", "Endpoints") => endpoints::validate_endpoints(obj),
        ("discovery.k8s.io", "EndpointSlice") => endpoints::validate_endpoint_slice(obj),
        ("", "ResourceQuota") => quota::validate_resource_quota(obj),
        ("", "LimitRange") => quota::validate_limit_range(obj),
        ("scheduling.k8s.io", "PriorityClass") => cluster::validate_priority_class(obj),
        ("node.k8s.io", "RuntimeClass") => cluster::validate_runtime_class(obj),
        ("coordination.k8s.io", "Lease") => cluster::validate_lease(obj),
        ("certificates.k8s.io", "CertificateSigningRequest") => certificates::validate_csr(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => apiextensions::validate_crd(obj),
        (ADMISSION, "ValidatingWebhookConfiguration") => {
            admission_webhooks::validate_webhook_configuration(obj, false)
        }
        (ADMISSION, "MutatingWebhookConfiguration") => {
            admission_webhooks::validate_webhook_configuration(obj, true)
        }
        _ => match kinds::builtin_by_kind(group, kind) {
            Some(b) => meta::validate_object_meta(obj, b.namespaced, b.name),
            None => meta::validate_object_meta_generic(obj, None, name_is_dns_subdomain),
        },
    }
}

/// Validates a write through `pods/ephemeralcontainers` (upstream's
/// `ValidatePodEphemeralContainersUpdate`): `new` must be `old` with only
/// `spec.ephemeralContainers` taken from the request. Empty when it is allowed.
pub fn validate_pod_ephemeral_containers_update(new: &Value, old: &Value) -> Vec<FieldError> {
    ephemeral::validate_pod_ephemeral_containers_update(new, old)
}

/// Validates an update of `old` (the stored object) to `new`; empty when it is allowed.
/// Includes ObjectMeta immutability (`metadata.name: Invalid value: "b": field is immutable`)
/// and each kind's immutable fields (selectors of apps/v1 workloads, Job templates, Service
/// cluster IPs, Secret types, …).
pub fn validate_update(group: &str, kind: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_update(new, old),
        ("", "PodTemplate") => pod::validate_pod_template_update(new, old),
        ("", "Service") => service::validate_service_update(new, old),
        ("", "ConfigMap") => core::validate_config_map_update(new, old),
        ("", "Secret") => core::validate_secret_update(new, old),
        ("", "Namespace") => core::validate_namespace_update(new, old),
        ("", "ServiceAccount") => core::validate_service_account_update(new, old),
        ("", "ReplicationController") => core::validate_replication_controller_update(new, old),
        ("", "PersistentVolumeClaim") => {
            let prepared = meta::prepare_update(new, old);
            let mut errs = meta::validate_object_meta_update(&prepared, old);
            errs.extend(core::validate_persistent_volume_claim(&prepared));
            errs
        }
        ("apps", "Deployment") => apps::validate_deployment_update(new, old),
        ("apps", "ReplicaSet") => apps::validate_replica_set_update(new, old),
        ("apps", "StatefulSet") => apps::validate_stateful_set_update(new, old),
        ("apps", "DaemonSet") => apps::validate_daemon_set_update(new, old),
        ("batch", "Job") => batch::validate_job_update(new, old),
        ("batch", "CronJob") => batch::validate_cron_job_update(new, old),
        (NETWORKING, "Ingress") => ingress::validate_ingress_update(new, old),
        (NETWORKING, "IngressClass") => ingress::validate_ingress_class_update(new, old),
        (NETWORKING, "NetworkPolicy") => network_policy::validate_network_policy_update(new, old),
        (RBAC, "Role") => rbac::validate_role_update(new, old),
        (RBAC, "ClusterRole") => rbac::validate_cluster_role_update(new, old),
        (RBAC, "RoleBinding") => rbac::validate_binding_update(new, old, true),
        (RBAC, "ClusterRoleBinding") => rbac::validate_binding_update(new, old, false),
        ("policy", "PodDisruptionBudget") => policy::validate_pdb_update(new, old),
        ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::validate_hpa_update(new, old),
        ("", "PersistentVolume") => persistent_volume::validate_persistent_volume_update(new, old),
        (STORAGE, "StorageClass") => storage::validate_storage_class_update(new, old),
        (STORAGE, "CSIDriver") => storage::validate_csi_driver_update(new, old),
        ("", "Node") => node::validate_node_update(new, old),
        ("", "Endpoints") => endpoints::validate_endpoints_update(new, old),
        ("discovery.k8s.io", "EndpointSlice") => {
            endpoints::validate_endpoint_slice_update(new, old)
        }
        ("", "ResourceQuota") => quota::validate_resource_quota_update(new, old),
        ("", "LimitRange") => {
            let prepared = meta::prepare_update(new, old);
            let mut errs = meta::validate_object_meta_update(&prepared, old);
            errs.extend(quota::validate_limit_range(&prepared));
            errs
        }
        ("scheduling.k8s.io", "PriorityClass") => cluster::validate_priority_class_update(new, old),
        ("node.k8s.io", "RuntimeClass") => cluster::validate_runtime_class_update(new, old),
        ("coordination.k8s.io", "Lease") => cluster::validate_lease_update(new, old),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            certificates::validate_csr_update(new, old)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            apiextensions::validate_crd_update(new, old)
        }
        (ADMISSION, "ValidatingWebhookConfiguration") => {
            admission_webhooks::validate_webhook_configuration_update(new, old, false)
        }
        (ADMISSION, "MutatingWebhookConfiguration") => {
            admission_webhooks::validate_webhook_configuration_update(new, old, true)
        }
        _ => {
            let prepared = meta::prepare_update(new, old);
            if kinds::builtin_by_kind(group, kind).is_some() {
                meta::validate_object_meta_update(&prepared, old)
            } else {
                meta::validate_object_meta_update_generic(&prepared, old)
            }
        }
    }
}
