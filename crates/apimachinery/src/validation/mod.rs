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
//!   templates, volumes, containers, environment, probes, tolerations/affinity/spreading.
//! - `apps.rs`: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! - `batch.rs`, `cron.rs`: Job, CronJob and cron schedules.
//! - `service.rs`, `cluster_ip.rs`: Service; `core.rs`: Namespace, ConfigMap, Secret,
//!   ServiceAccount, PersistentVolumeClaim, ReplicationController.
//! - `path.rs`: field paths and error constructors; `gofmt.rs`: Go `%#v` renderings of bad
//!   values; `json.rs`: panic-free field access; `quantity.rs`: resource quantities.
//! - `tests.rs`: the seed manifests and their upstream messages.
//!
//! Kinds without rules of their own here (and custom resources) get ObjectMeta validation only.

mod apps;
mod batch;
mod cluster_ip;
mod container;
mod core;
mod cron;
mod env;
mod gofmt;
mod json;
mod kinds;
pub mod labels;
pub mod meta;
pub mod name;
pub mod path;
mod pod;
mod probe;
mod quantity;
mod scheduling;
mod service;
#[cfg(test)]
mod tests;
mod volume;

use serde_json::Value;

use crate::field::FieldError;

pub use batch::generate_job_selector;
pub use kinds::name_validator;
pub use meta::{validate_object_meta, validate_object_meta_update};
pub use name::NameValidator;

use json::{get, str_of};
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
        ("apiextensions.k8s.io", "CustomResourceDefinition") => validate_crd_meta(obj),
        _ => match kinds::builtin_by_kind(group, kind) {
            Some(b) => meta::validate_object_meta(obj, b.namespaced, b.name),
            None => meta::validate_object_meta_generic(obj, None, name_is_dns_subdomain),
        },
    }
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

/// A CustomResourceDefinition's name must be `<spec.names.plural>.<spec.group>` (upstream's
/// `ValidateCustomResourceDefinition` name function); the spec itself is not validated here.
fn validate_crd_meta(obj: &Value) -> Vec<FieldError> {
    let spec = get(obj, "spec");
    let wanted = format!(
        "{}.{}",
        str_of(get(spec, "names"), "plural"),
        str_of(spec, "group")
    );
    let rule = |name: &str, prefix: bool| {
        let mut msgs = name_is_dns_subdomain(name, prefix);
        if name != wanted {
            msgs.push("must be spec.names.plural+\".\"+spec.group".to_string());
        }
        msgs
    };
    meta::validate_object_meta_with(obj, Some(false), &rule)
}
