//! Upstream's defaulting for built-in kinds, applied to objects held as JSON before validation.
//!
//! What a Kubernetes 1.33 apiserver fills in between decoding a write and storing it, so that
//! `kubectl get -o yaml` right after a create shows the same fields a real cluster shows:
//! - the scheme defaulters: each group's `SetObjectDefaults_<Kind>`
//!   (`pkg/apis/<group>/<version>/zz_generated.defaults.go`), which call the hand-written
//!   `SetDefaults_*` functions of `defaults.go` and the `+default=` tags of `k8s.io/api`;
//! - the v1 conversion quirks visible on output (`serviceAccount` mirroring
//!   `serviceAccountName`, `podIP`/`podIPs`, `podCIDR`/`podCIDRs`, a StatefulSet's claim
//!   templates carrying `apiVersion`/`kind`);
//! - the mutating admission plugins that change Pods without lookups (ServiceAccount,
//!   Priority, DefaultTolerationSeconds), see `admission.rs`;
//! - registry rules that behave like defaults: a Job's generated selector and a Service's IP
//!   family fields.
//!
//! Contract of [`apply`]: it only fills in what is unset — Go's zero values, i.e. an absent
//! key or `null`, and `""`, `0`, `[]` for fields Go holds by value — except where upstream
//! overwrites (a Namespace's name label, a Service's affinity config under `None`, the
//! mirrored `serviceAccount`). It is idempotent, never panics, and leaves values of the wrong
//! JSON type for validation to report. It expects the server-set metadata (`uid`, the name
//! generated from `generateName`) to be in place: a Job's selector and a Namespace's label
//! are built from them.
//!
//! # Layout
//! - `fields.rs`: JSON access with Go's notion of unset.
//! - `pod.rs`: Pod, PodSpec, container, probe and volume defaults; `image.rs`: the image
//!   reference parsing behind `imagePullPolicy`; `admission.rs`: the pod admission plugins.
//! - `apps.rs`: Deployment, ReplicaSet, StatefulSet, DaemonSet.
//! - `batch.rs`: Job (with selector generation) and CronJob.
//! - `core.rs`: PodTemplate, ReplicationController, Namespace, Secret, PersistentVolume(Claim),
//!   Endpoints, LimitRange, Node; `service.rs`: Service.
//! - `other.rs`: storage, networking, autoscaling, scheduling, admissionregistration,
//!   discovery, rbac, flowcontrol and apiextensions kinds.
//! - `tests/`: seed manifests and their defaulted form (workloads, pods, other kinds),
//!   idempotency, odd input.

mod admission;
mod apps;
mod batch;
mod core;
mod fields;
mod image;
mod other;
mod pod;
mod service;
#[cfg(test)]
mod tests;

use serde_json::Value;

/// Fills in the defaults upstream applies to a new or updated object of this kind.
///
/// `group` is the API group (`""` for core), `kind` the object's kind; custom resources and
/// kinds without upstream defaults are left untouched. Called on every create and update,
/// after server-set metadata and before validation. Idempotent: applying it twice changes
/// nothing the second time.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match group {
        "" => core::apply(kind, obj),
        "apps" => apps::apply(kind, obj),
        "batch" => batch::apply(kind, obj),
        _ => other::apply(group, kind, obj),
    }
}
