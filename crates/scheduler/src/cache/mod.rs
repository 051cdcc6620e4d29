//! The scheduler's view of the cluster: nodes with per-node aggregates, assigned and assumed
//! pods, image spread and namespace labels.
//!
//! One thread owns it: the scheduling loop applies informer events between cycles, so a cycle
//! reads a consistent state without copying it. That is the snapshot upstream builds per cycle
//! (`Cache.UpdateSnapshot`), minus the copy. Preemption clones only the nodes it simulates.
//!
//! Pods are *assumed* the moment a node is chosen, before the binding call returns, so the
//! next cycle already sees the resources taken; a failed binding *forgets* the pod again and the
//! informer's update *confirms* it.

pub mod node_info;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

pub use node_info::NodeInfo;

use crate::framework::events::{Action, node_update_action};
use crate::framework::types::{NamespaceLabels, PodInfo};

/// A PodDisruptionBudget as preemption reads it.
#[derive(Clone, Debug)]
pub struct PdbInfo {
    pub namespace: String,
    pub selector: apimachinery::selector::label::LabelSelector,
    pub disruptions_allowed: i32,
    /// Pods the API already counted as disrupted (not charged again).
    pub disrupted_pods: Vec<String>,
}

#[derive(Debug)]
struct CachedPod {
    info: Arc<PodInfo>,
    node: usize,
    assumed: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Cache {
    /// Slots; an index stays valid while the node exists or still has pods.
    slots: Vec<NodeInfo>,
    by_name: HashMap<String, usize>,
    free: Vec<usize>,
    /// Nodes that exist, interleaved across zones (upstream's node tree order).
    order: Vec<usize>,
    order_dirty: bool,
    pods: HashMap<String, CachedPod>,
    /// Image name → number of nodes that have it.
    image_nodes: HashMap<String, u32>,
    affinity_nodes: BTreeSet<usize>,
    anti_affinity_nodes: BTreeSet<usize>,
    pub namespaces: NamespaceLabels,
    /// PodDisruptionBudgets by `namespace/name`.
    pub pdbs: HashMap<String, PdbInfo>,
}

fn zone_key(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |a: &str, b: &str| {
        labels
            .and_then(|l| l.get(a).or_else(|| l.get(b)))
            .cloned()
            .unwrap_or_default()
    };
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    fn slot_for(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = NodeInfo::new(name);
                i
            }
            None => {
                self.slots.push(NodeInfo::new(name));
                self.slots.len() - 1
            }
        };
        self.by_name.insert(name.to_string(), i);
        i
    }

    fn release_if_empty(&mut self, i: usize) {
        let n = &self.slots[i];
        if n.node().is_none() && n.pods.is_empty() {
            self.by_name.remove(&n.name);
            self.slots[i] = NodeInfo::default();
            self.free.push(i);
        }
    }

    fn count_images(&mut self, i: usize, delta: i32) {
        for name in self.slots[i].images.keys() {
            let c = self.image_nodes.entry(name.clone()).or_insert(0);
            *c = c.saturating_add_signed(delta);
        }
        self.image_nodes.retain(|_, c| *c > 0);
    }

    /// Adds or replaces a node; returns the event it amounts to (`ADD`, or the update bits;
    /// `None` when nothing relevant to scheduling changed).
    pub fn upsert_node(&mut self, node: Arc<Node>) -> Option<Action> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let i = self.slot_for(&name);
        let action = match self.slots[i].node() {
            None => Some(Action::ADD),
            Some(old) => {
                let a = node_update_action(old, &node);
                (a.0 != 0).then_some(a)
            }
        };
        let zone_changed = self.slots[i]
            .node()
            .is_none_or(|old| zone_key(old) != zone_key(&node));
        self.count_images(i, -1);
        self.slots[i].set_node(node);
        self.count_images(i, 1);
        if zone_changed {
            self.order_dirty = true;
        }
        action
    }

    /// Removes a node; its pods stay accounted until they go (upstream keeps such a
    /// NodeInfo without its Node). Returns whether the node was known.
    pub fn delete_node(&mut self, name: &str) -> bool {
        let Some(&i) = self.by_name.get(name) else {
            return false;
        };
        if self.slots[i].node().is_none() {
            return false;
        }
        self.count_images(i, -1);
        self.slots[i].clear_node();
        self.order_dirty = true;
        self.release_if_empty(i);
        true
    }

    /// Names of the nodes that exist, for a relist to find what disappeared.
    pub fn node_names(&self) -> Vec<String> {
        self.order_source()
            .map(|i| self.slots[i].name.clone())
            .collect()
    }

    fn order_source(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, n)| n.node().is_some())
            .map(|(i, _)| i)
    }

    /// Rebuilds the zone-interleaved node order if nodes came, went or moved zones. Called
    /// at the start of each cycle.
    pub fn refresh(&mut self) {
        if !self.order_dirty {
            return;
        }
        self.order_dirty = false;
        let mut zones: Vec<(String, Vec<usize>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for i in self.order_source() {
            let key = self.slots[i].node().map(zone_key).unwrap_or_default();
            let z = *index.entry(key.clone()).or_insert_with(|| {
                zones.push((key, Vec::new()));
                zones.len() - 1
            });
            zones[z].1.push(i);
        }
        self.order.clear();
        let longest = zones.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        for round in 0..longest {
            for (_, nodes) in &zones {
                if let Some(&i) = nodes.get(round) {
                    self.order.push(i);
                }
            }
        }
    }

    /// Node slots in scheduling order (call [`Cache::refresh`] first).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    pub fn num_nodes(&self) -> usize {
        self.order.len()
    }

    pub fn node(&self, i: usize) -> &NodeInfo {
        &self.slots[i]
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name)
            .copied()
            .filter(|&i| self.slots[i].node().is_some())
    }

    pub fn node_by_name(&self, name: &str) -> Option<&NodeInfo> {
        self.node_index(name).map(|i| &self.slots[i])
    }

    /// How many nodes have `image` (normalized name).
    pub fn image_num_nodes(&self, image: &str) -> u32 {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    /// Nodes hosting a pod with any affinity term.
    pub fn nodes_with_affinity(&self) -> impl Iterator<Item = &NodeInfo> + '_ {
        self.affinity_nodes
            .iter()
            .map(|&i| &self.slots[i])
            .filter(|n| n.node().is_some())
    }

    /// Nodes hosting a pod with a required anti-affinity term.
    pub fn nodes_with_required_anti_affinity(&self) -> impl Iterator<Item = &NodeInfo> + '_ {
        self.anti_affinity_nodes
            .iter()
            .map(|&i| &self.slots[i])
            .filter(|n| n.node().is_some())
    }

    fn track_affinity(&mut self, i: usize) {
        let n = &self.slots[i];
        if n.pods_with_affinity.is_empty() {
            self.affinity_nodes.remove(&i);
        } else {
            self.affinity_nodes.insert(i);
        }
        if n.pods_with_required_anti_affinity.is_empty() {
            self.anti_affinity_nodes.remove(&i);
        } else {
            self.anti_affinity_nodes.insert(i);
        }
    }

    fn place(&mut self, info: Arc<PodInfo>, node: &str, assumed: bool) {
        let i = self.slot_for(node);
        let affinity = info.has_affinity();
        self.slots[i].add_pod(info.clone());
        if affinity {
            self.track_affinity(i);
        }
        self.pods.insert(
            info.uid.clone(),
            CachedPod {
                info,
                node: i,
                assumed,
            },
        );
    }

    fn unplace(&mut self, uid: &str) -> Option<CachedPod> {
        let cp = self.pods.remove(uid)?;
        self.slots[cp.node].remove_pod(uid);
        if cp.info.has_affinity() {
            self.track_affinity(cp.node);
        }
        self.release_if_empty(cp.node);
        Some(cp)
    }

    /// An assigned pod from the informer: adds it, confirms an assumed copy, or replaces
    /// an older version (also when it moved node). Returns the previous version, if any.
    pub fn upsert_pod(&mut self, info: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        let node = info.node_name().to_string();
        let old = match self.pods.get(&info.uid) {
            // Same node and nothing the aggregates read changed: swap the object only.
            Some(cp)
                if self.slots[cp.node].name == node
                    && !cp.assumed
                    && same_footprint(&cp.info, &info) =>
            {
                let i = cp.node;
                let old = cp.info.clone();
                if let Some(p) = self.slots[i].pods.iter_mut().find(|p| p.uid == info.uid) {
                    *p = info.clone();
                }
                let slot = &mut self.slots[i];
                for list in [
                    &mut slot.pods_with_affinity,
                    &mut slot.pods_with_required_anti_affinity,
                ] {
                    if let Some(p) = list.iter_mut().find(|p| p.uid == info.uid) {
                        *p = info.clone();
                    }
                }
                if let Some(cp) = self.pods.get_mut(&info.uid) {
                    cp.info = info;
                }
                return Some(old);
            }
            Some(_) => self.unplace(&info.uid).map(|cp| cp.info),
            None => None,
        };
        self.place(info, &node, false);
        old
    }

    /// Removes an assigned pod (deleted, finished, or its binding failed).
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        self.unplace(uid).map(|cp| cp.info)
    }

    /// Places a pod on `node` before its binding is confirmed.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        self.unplace(&info.uid);
        self.place(info, node, true);
    }

    /// Undoes [`Cache::assume`] if the pod is still only assumed.
    pub fn forget(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        if self.pods.get(uid).is_some_and(|cp| cp.assumed) {
            self.remove_pod(uid)
        } else {
            None
        }
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|cp| cp.assumed)
    }

    pub fn contains_pod(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// The pod with `uid` and its node name.
    pub fn pod(&self, uid: &str) -> Option<(&Arc<PodInfo>, &str)> {
        self.pods
            .get(uid)
            .map(|cp| (&cp.info, self.slots[cp.node].name.as_str()))
    }

    /// UIDs of confirmed (not assumed) pods, for a relist to find what disappeared.
    pub fn confirmed_pod_uids(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|(_, cp)| !cp.assumed)
            .map(|(uid, _)| uid.clone())
            .collect()
    }

    pub fn num_pods(&self) -> usize {
        self.pods.len()
    }
}

/// Whether two versions of a pod weigh the same on a node (requests, ports, affinity,
/// labels, termination), so the aggregates need no update.
fn same_footprint(a: &PodInfo, b: &PodInfo) -> bool {
    a.requests == b.requests
        && a.non_zero_cpu == b.non_zero_cpu
        && a.non_zero_memory == b.non_zero_memory
        && a.host_ports == b.host_ports
        && a.has_affinity() == b.has_affinity()
        && a.required_anti_affinity.is_empty() == b.required_anti_affinity.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "images": [{"names": ["nginx:1.21"], "sizeBytes": 100}]}
            }))
            .expect("node"),
        )
    }

    fn pod(uid: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "namespace": "default", "uid": uid},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
            }))
            .expect("pod"),
            |_| None,
        ))
    }

    #[test]
    fn nodes_interleave_by_zone() {
        let mut c = Cache::new();
        for (n, z) in [
            ("a1", "a"),
            ("a2", "a"),
            ("b1", "b"),
            ("c1", "c"),
            ("b2", "b"),
        ] {
            assert_eq!(c.upsert_node(node(n, z)), Some(Action::ADD));
        }
        c.refresh();
        let names: Vec<&str> = c.order().iter().map(|&i| c.node(i).name.as_str()).collect();
        assert_eq!(names, ["a1", "b1", "c1", "a2", "b2"]);
        assert_eq!(c.image_num_nodes("nginx:1.21"), 5);
        assert!(c.delete_node("b1"));
        c.refresh();
        assert_eq!(c.num_nodes(), 4);
        assert_eq!(c.image_num_nodes("nginx:1.21"), 4);
    }

    #[test]
    fn assume_confirm_forget() {
        let mut c = Cache::new();
        c.upsert_node(node("n1", "a"));
        c.refresh();
        let i = c.node_index("n1").expect("n1");
        c.assume(pod("p1", "", "500m"), "n1");
        assert_eq!(c.node(i).requested.milli_cpu, 500);
        assert!(c.is_assumed("p1"));
        // The informer confirms it on the same node.
        c.upsert_pod(pod("p1", "n1", "500m"));
        assert!(!c.is_assumed("p1"));
        assert_eq!(c.node(i).requested.milli_cpu, 500);
        assert_eq!(c.node(i).pods.len(), 1);
        assert!(c.forget("p1").is_none(), "confirmed pods are not forgotten");
        c.assume(pod("p2", "", "1"), "n1");
        assert_eq!(c.node(i).requested.milli_cpu, 1500);
        c.forget("p2");
        assert_eq!(c.node(i).requested.milli_cpu, 500);
        c.remove_pod("p1");
        assert_eq!(c.node(i).requested.milli_cpu, 0);
        assert_eq!(c.node(i).non_zero_cpu, 0);
    }

    #[test]
    fn pods_on_unknown_nodes_are_kept_until_the_node_arrives() {
        let mut c = Cache::new();
        c.upsert_pod(pod("p1", "later", "1"));
        c.refresh();
        assert_eq!(c.num_nodes(), 0);
        c.upsert_node(node("later", "a"));
        c.refresh();
        assert_eq!(
            c.node_by_name("later").map(|n| n.requested.milli_cpu),
            Some(1000)
        );
    }
}
