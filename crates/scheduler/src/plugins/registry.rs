//! Every plugin by name, and upstream's default profile (`kubescheduler.config.k8s.io/v1`
//! `getDefaultPlugins`, everything enabled through `multiPoint`).

use std::sync::Arc;

use crate::framework::{Handle, Plugin};

use super::{
    balanced_allocation, default_binder, default_preemption, image_locality, inter_pod_affinity,
    node_affinity, node_name, node_ports, node_resources_fit, node_unschedulable,
    pod_topology_spread, priority_sort, scheduling_gates, taint_toleration,
};

/// Builds a plugin from its `pluginConfig` args (`None` when the profile gives none).
pub type Factory = fn(Option<&serde_json::Value>, &Handle) -> Result<Arc<dyn Plugin>, String>;

/// The plugins rkube implements.
pub const REGISTRY: &[(&str, Factory)] = &[
    (scheduling_gates::NAME, scheduling_gates::new),
    (priority_sort::NAME, priority_sort::new),
    (node_unschedulable::NAME, node_unschedulable::new),
    (node_name::NAME, node_name::new),
    (taint_toleration::NAME, taint_toleration::new),
    (node_affinity::NAME, node_affinity::new),
    (node_ports::NAME, node_ports::new),
    (node_resources_fit::NAME, node_resources_fit::new),
    (pod_topology_spread::NAME, pod_topology_spread::new),
    (inter_pod_affinity::NAME, inter_pod_affinity::new),
    (default_preemption::NAME, default_preemption::new),
    (balanced_allocation::NAME, balanced_allocation::new),
    (image_locality::NAME, image_locality::new),
    (default_binder::NAME, default_binder::new),
];

/// Upstream in-tree plugins rkube does not implement (volume topology and limits, dynamic
/// resources). Configuration naming them is accepted and they are left out, so upstream
/// configuration files load unchanged.
pub const NOT_IMPLEMENTED: &[&str] = &[
    "VolumeRestrictions",
    "NodeVolumeLimits",
    "VolumeBinding",
    "VolumeZone",
    "DynamicResources",
    "EBSLimits",
    "GCEPDLimits",
    "AzureDiskLimits",
    "CinderLimits",
];

pub fn factory(name: &str) -> Option<Factory> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Upstream's default `multiPoint` plugins and score weights, in order (volume plugins
/// omitted, see [`NOT_IMPLEMENTED`]).
pub const DEFAULT_PLUGINS: &[(&str, i32)] = &[
    (scheduling_gates::NAME, 0),
    (priority_sort::NAME, 0),
    (node_unschedulable::NAME, 0),
    (node_name::NAME, 0),
    (taint_toleration::NAME, 3),
    (node_affinity::NAME, 2),
    (node_ports::NAME, 0),
    (node_resources_fit::NAME, 1),
    (pod_topology_spread::NAME, 2),
    (inter_pod_affinity::NAME, 2),
    (default_preemption::NAME, 0),
    (balanced_allocation::NAME, 1),
    (image_locality::NAME, 1),
    (default_binder::NAME, 0),
];
