//! Per-node aggregates (upstream `framework.NodeInfo`): what the node offers and what its pods
//! already take, kept up to date pod by pod so that no cycle sums anything.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::framework::types::{HostPort, PodInfo};
use crate::resource::Resource;

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// One node and the pods assigned to it (confirmed or assumed).
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    node: Option<Arc<Node>>,
    pub name: String,
    pub allocatable: Resource,
    pub unschedulable: bool,
    /// Sum of the pods' requests (upstream `Requested`).
    pub requested: Resource,
    /// Sum with 100m / 200Mi for containers without requests (upstream `NonZeroRequested`).
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub pods: Vec<Arc<PodInfo>>,
    /// Pods with any (anti-)affinity term, required or preferred.
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    pub used_ports: Vec<HostPort>,
    /// Normalized image name → size in bytes (from `status.images`).
    pub images: HashMap<String, i64>,
    /// Bumped on every change; lets callers notice a node changed.
    pub generation: u64,
}

/// Upstream `normalizedImageName`: an image without a tag or digest means `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    if name.contains('@') || name.rfind(':') > name.rfind('/') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

impl NodeInfo {
    pub fn new(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Sets or replaces the Node object and what derives from it.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        self.unschedulable = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        self.images.clear();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in img.names.iter().flatten() {
                self.images
                    .insert(normalized_image_name(name), img.size_bytes.unwrap_or(0));
            }
        }
        self.node = Some(node);
        self.generation += 1;
    }

    pub fn clear_node(&mut self) {
        self.node = None;
        self.images.clear();
        self.generation += 1;
    }

    pub fn node(&self) -> Option<&Node> {
        self.node.as_deref()
    }

    pub fn node_arc(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&EMPTY_LABELS)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().get(key).map(String::as_str)
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    /// Adds a pod's requests, ports and affinity bookkeeping.
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_cpu += p.non_zero_cpu;
        self.non_zero_memory += p.non_zero_memory;
        self.used_ports.extend(p.host_ports.iter().cloned());
        if p.has_affinity() {
            self.pods_with_affinity.push(p.clone());
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity.push(p.clone());
        }
        self.pods.push(p);
        self.generation += 1;
    }

    /// Removes the pod with `uid`, undoing [`NodeInfo::add_pod`]; `None` if absent.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.uid == uid)?;
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_cpu -= p.non_zero_cpu;
        self.non_zero_memory -= p.non_zero_memory;
        for hp in &p.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        self.pods_with_affinity.retain(|q| q.uid != uid);
        self.pods_with_required_anti_affinity
            .retain(|q| q.uid != uid);
        self.generation += 1;
        Some(p)
    }
}
