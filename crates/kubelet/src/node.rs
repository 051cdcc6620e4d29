//! Node objects: what a simulated node registers as, registering it, and posting its
//! status (upstream's `kubelet_node_status.go`: `initialNode`, `registerWithAPIServer`,
//! the condition setters).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use crate::api;
use crate::config::{Ipv4Cidr, SimConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating the Node")]
    Create(#[source] kube::Error),
    #[error("updating the existing Node")]
    UpdateExisting(#[source] kube::Error),
    #[error("the API server returned a Node without a uid")]
    NoUid,
    #[error("posting the node status")]
    ReportStatus(#[source] kube::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.33.0";

/// Marks a node as simulated (kwok marks its nodes the same way).
pub const SIMULATED_ANNOTATION: &str = "rkube.io/simulated-node";

/// One simulated node as the process tracks it.
pub struct SimNode {
    pub name: String,
    /// Position in its simulator (picks the zone).
    pub index: usize,
    pub ip: Ipv4Addr,
    /// Where its pod IPs come from.
    pub pod_block: Ipv4Cidr,
    /// Set once registered; the Lease's owner reference needs it.
    pub uid: std::sync::OnceLock<String>,
    /// A failed node neither heartbeats nor touches its pods.
    pub failed: AtomicBool,
    /// A heartbeat (lease renewal, maybe a status report) is in flight; the next slot
    /// skips the node rather than stacking requests on a slow server.
    pub heartbeat_busy: AtomicBool,
    /// When the status was last posted; guarded for the heartbeat that posts it.
    pub last_status_report: Mutex<Instant>,
    /// The status must be posted at the next heartbeat (it changed, or the node is back).
    pub status_dirty: AtomicBool,
    /// When the conditions last changed (their `lastTransitionTime`).
    pub conditions_since: Timestamp,
}

impl SimNode {
    pub fn new(name: String, index: usize, ip: Ipv4Addr, pod_block: Ipv4Cidr) -> SimNode {
        SimNode {
            name,
            index,
            ip,
            pod_block,
            uid: std::sync::OnceLock::new(),
            failed: AtomicBool::new(false),
            heartbeat_busy: AtomicBool::new(false),
            last_status_report: Mutex::new(Instant::now()),
            status_dirty: AtomicBool::new(false),
            conditions_since: Timestamp::now(),
        }
    }
}

/// The labels a kubelet sets on its node, plus the configured ones.
pub fn labels(cfg: &SimConfig, node: &SimNode) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), node.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), cfg.arch.clone()),
        // Still set by kubelets next to the stable ones.
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), cfg.arch.clone()),
        (
            "node.kubernetes.io/instance-type".to_string(),
            "sim".to_string(),
        ),
    ]);
    if let Some(zone) = cfg.zone(node.index) {
        l.insert("topology.kubernetes.io/zone".into(), zone.to_string());
    }
    if let Some(region) = &cfg.region {
        l.insert("topology.kubernetes.io/region".into(), region.clone());
    }
    l.extend(cfg.labels.clone());
    l
}

/// Capacity and allocatable (the same: nothing is reserved).
pub fn resources(cfg: &SimConfig) -> BTreeMap<String, Quantity> {
    let mut r = BTreeMap::from([
        ("cpu".to_string(), Quantity(cfg.cpu.clone())),
        ("memory".to_string(), Quantity(cfg.memory.clone())),
        (
            "ephemeral-storage".to_string(),
            Quantity(cfg.ephemeral_storage.clone()),
        ),
        ("pods".to_string(), Quantity(cfg.pods.to_string())),
        // Linux kubelets always report huge pages, zero when none are set up.
        ("hugepages-1Gi".to_string(), Quantity("0".into())),
        ("hugepages-2Mi".to_string(), Quantity("0".into())),
    ]);
    for (k, v) in &cfg.extended_resources {
        r.insert(k.clone(), Quantity(v.clone()));
    }
    r
}

/// A healthy kubelet's conditions, in upstream's order, heartbeating `now`.
pub fn conditions(now: Timestamp, since: Timestamp) -> Vec<NodeCondition> {
    [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    .into_iter()
    .map(|(type_, status, reason, message)| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(since)),
    })
    .collect()
}

/// A stable made-up identifier: 32 hex digits from `seed`.
fn fake_id(seed: &str) -> String {
    let mut out = String::with_capacity(32);
    for salt in 0..2u8 {
        let mut h = DefaultHasher::new();
        (salt, seed).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn as_uuid(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The full status a node registers with and re-posts when adopting an existing Node.
pub fn status(
    cfg: &SimConfig,
    node: &SimNode,
    runtime_version: &str,
    now: Timestamp,
) -> NodeStatus {
    let machine = fake_id(&node.name);
    NodeStatus {
        capacity: Some(resources(cfg)),
        allocatable: Some(resources(cfg)),
        conditions: Some(conditions(now, node.conditions_since)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: node.ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: node.name.clone(),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: cfg.arch.clone(),
            boot_id: as_uuid(&fake_id(&format!(
                "{}/{}",
                node.name,
                node.conditions_since.as_nanosecond()
            ))),
            container_runtime_version: runtime_version.into(),
            kernel_version: "sim".into(),
            // Deprecated; kubelets since 1.31 leave it empty.
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: machine.clone(),
            operating_system: "linux".into(),
            os_image: "rkube simulated node".into(),
            system_uuid: as_uuid(&machine),
            swap: None,
        }),
        ..Default::default()
    }
}

/// The Node a simulated node registers as.
pub fn build(cfg: &SimConfig, node: &SimNode, runtime_version: &str, now: Timestamp) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(node.name.clone()),
            labels: Some(labels(cfg, node)),
            annotations: Some(BTreeMap::from([
                (
                    "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                    "true".to_string(),
                ),
                (SIMULATED_ANNOTATION.to_string(), "true".to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!cfg.taints.is_empty()).then(|| cfg.taints.clone()),
            ..Default::default()
        }),
        status: Some(status(cfg, node, runtime_version, now)),
    }
}

/// Registers `node` and returns its uid. An existing Node of that name is taken over as a
/// restarted kubelet does: our labels are set on it and our status posted; its taints
/// and other labels stay.
pub async fn register(
    client: &kube::Client,
    cfg: &SimConfig,
    node: &SimNode,
    runtime_version: &str,
) -> Result<String> {
    let obj = build(cfg, node, runtime_version, Timestamp::now());
    register_object(client, node, &obj).await
}

/// Registers the Node `obj` for `node` (see [`register`]) and returns its uid.
pub async fn register_object(client: &kube::Client, node: &SimNode, obj: &Node) -> Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let post = PostParams::default();
    let created = api::retry(|| nodes.create(&post, obj)).await;
    let node_obj = match created {
        Ok(n) => n,
        Err(e) if api::is_already_exists(&e) => {
            tracing::info!(node = %node.name, "node exists; taking it over");
            let meta = json!({"metadata": {
                "labels": obj.metadata.labels,
                "annotations": obj.metadata.annotations,
            }});
            let pp = PatchParams::default();
            let meta = Patch::Strategic(&meta);
            api::retry(|| nodes.patch(&node.name, &pp, &meta))
                .await
                .map_err(Error::UpdateExisting)?;
            let status = json!({"status": obj.status});
            let status = Patch::Strategic(&status);
            api::retry(|| nodes.patch_status(&node.name, &pp, &status))
                .await
                .map_err(Error::UpdateExisting)?
        }
        Err(e) => return Err(Error::Create(e)),
    };
    node_obj.metadata.uid.ok_or(Error::NoUid)
}

/// Posts the conditions again with a fresh heartbeat (a strategic merge by condition
/// type, so conditions others own stay).
pub async fn report_status(client: &kube::Client, node: &SimNode) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = json!({"status": {
        "conditions": conditions(Timestamp::now(), node.conditions_since),
    }});
    nodes
        .patch_status(
            &node.name,
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .map(drop)
        .map_err(Error::ReportStatus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(index: usize) -> SimNode {
        SimNode::new(
            format!("sim-node-{index}"),
            index,
            Ipv4Addr::new(172, 16, 0, 1),
            Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 24),
        )
    }

    #[test]
    fn a_node_carries_kubelet_labels_capacity_and_ready_conditions() {
        let cfg = SimConfig {
            labels: BTreeMap::from([("disktype".into(), "ssd".into())]),
            extended_resources: BTreeMap::from([("nvidia.com/gpu".into(), "4".into())]),
            ..SimConfig::default()
        };
        let n = build(&cfg, &node(1), "sim://0.1.0", Timestamp::now());
        let labels = n.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "sim-node-1");
        assert_eq!(labels["topology.kubernetes.io/zone"], "zone-b");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "sim");
        assert_eq!(labels["disktype"], "ssd");
        let status = n.status.as_ref().expect("status");
        let cap = status.capacity.as_ref().expect("capacity");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap["nvidia.com/gpu"].0, "4");
        assert_eq!(status.allocatable, status.capacity);
        let conds = status.conditions.as_ref().expect("conditions");
        let ready = conds.iter().find(|c| c.type_ == "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert_eq!(conds.iter().filter(|c| c.status == "False").count(), 3);
        let info = status.node_info.as_ref().expect("nodeInfo");
        assert_eq!(info.kubelet_version, "v1.33.0");
        assert_eq!(info.system_uuid.len(), 36);
        assert_eq!(info.machine_id.len(), 32);
    }

    #[test]
    fn identifiers_are_stable_per_node_and_differ_between_nodes() {
        assert_eq!(fake_id("a"), fake_id("a"));
        assert_ne!(fake_id("a"), fake_id("b"));
    }
}
