//! The boundary between the pod workers and whatever runs containers.
//!
//! [`Runtime`] sits where upstream's `kubecontainer.Runtime` sits (the kubelet's
//! "kuberuntime manager"): it is given whole pods, decides itself which containers to
//! create, start or restart for them, and reports what it runs in runtime terms
//! ([`PodRuntimeStatus`]). The pod workers turn that into the API's `PodStatus`
//! (`crate::status`). Two implementations: [`sim`] runs nothing and pretends; a CRI one
//! (containerd over `runtime.v1`) will slot in beside it.

pub mod cri;
mod ipam;
pub mod sim;

use std::net::IpAddr;
use std::time::Duration;

use futures::stream::BoxStream;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container runtime: {0}")]
    Cri(String),
    #[error("pod {pod} has no node this runtime serves (spec.nodeName {node:?})")]
    UnknownNode { pod: String, node: String },
    #[error("no free pod IP in {block} for pod {pod}")]
    PodIpExhausted { pod: String, block: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the runtime calls itself (CRI `Version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub runtime_name: String,
    pub runtime_version: String,
}

impl RuntimeVersion {
    /// `nodeInfo.containerRuntimeVersion`: `<name>://<version>`, as kubelets report it.
    pub fn container_runtime_version(&self) -> String {
        format!("{}://{}", self.runtime_name, self.runtime_version)
    }
}

/// A pod's sandbox (its network namespace and IPs).
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxStatus {
    pub id: String,
    /// The pod's IPs. Kept after the sandbox stops: a finished pod still reports them.
    pub ips: Vec<IpAddr>,
    pub created_at: Timestamp,
    /// False once the sandbox is stopped (the pod finished or is being deleted).
    pub ready: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ContainerState {
    Created,
    /// Not running and not to be started yet: `reason` as upstream's waiting reasons
    /// (`ErrImagePull`, `ImagePullBackOff`, `CrashLoopBackOff`,
    /// `CreateContainerConfigError`, …).
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started_at: Timestamp,
    },
    Exited {
        started_at: Timestamp,
        finished_at: Timestamp,
        exit_code: i32,
        reason: String,
        /// The termination message (`terminationMessagePath`, or the log's tail with
        /// `FallbackToLogsOnError`), if any.
        message: Option<String>,
    },
}

/// One container as the runtime sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerStatus {
    /// The container's name in the pod spec.
    pub name: String,
    /// `<runtime>://<id>`, the form `containerStatuses[].containerID` takes.
    pub id: String,
    pub image: String,
    /// The resolved image (`imageID`).
    pub image_ref: String,
    pub state: ContainerState,
    /// The previous instance (its `<runtime>://<id>` and how it ended: `lastState`), once
    /// the container has restarted.
    pub last_state: Option<(String, ContainerState)>,
    pub restart_count: i32,
    /// For a running container: its startup probe succeeded (or it has none). Upstream's
    /// `containerStatuses[].started`. Ignored in any other state.
    pub started: bool,
    /// For a running container: started, and its readiness probe succeeded (or it has
    /// none). Ignored in any other state.
    pub ready: bool,
}

impl ContainerStatus {
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    /// Exited with code 0.
    pub fn succeeded(&self) -> bool {
        matches!(self.state, ContainerState::Exited { exit_code: 0, .. })
    }
}

/// Everything the runtime knows about one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRuntimeStatus {
    pub uid: String,
    pub sandbox: SandboxStatus,
    /// In spec order; only containers the runtime has created.
    pub init_containers: Vec<ContainerStatus>,
    pub containers: Vec<ContainerStatus>,
    /// Ephemeral containers (`kubectl debug`): started once, never restarted, and no part
    /// of the pod's phase or readiness.
    pub ephemeral_containers: Vec<ContainerStatus>,
}

/// Something about a pod changed inside the runtime (a container started or exited).
/// Level-triggered: the worker reads the new state with [`Runtime::pod_status`]. Like
/// upstream's evented PLEG over CRI `GetContainerEvents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeEvent {
    PodChanged {
        uid: String,
    },
    /// Events were dropped; every pod may have changed.
    Lagged,
}

/// Runs pods for the pod workers.
///
/// The workers call at most one method at a time for the same pod (upstream's pod worker
/// contract), so an implementation need not order concurrent calls for one pod.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's name and version. Called at registration.
    async fn version(&self) -> Result<RuntimeVersion>;

    /// Makes the pod run as its spec asks: creates the sandbox and containers that are
    /// missing, (re)starts containers as the restart policy says. Idempotent; returns the
    /// state afterwards. Never called for a pod being deleted.
    async fn sync_pod(&self, pod: &Pod) -> Result<PodRuntimeStatus>;

    /// Stops every container and the sandbox of a pod that is finished or being deleted.
    /// Idempotent. Returns the final state, or `None` for a pod the runtime never ran.
    async fn kill_pod(&self, pod: &Pod, grace: Duration) -> Result<Option<PodRuntimeStatus>>;

    /// The current state of a pod, `None` if the runtime does not know it.
    async fn pod_status(&self, uid: &str) -> Result<Option<PodRuntimeStatus>>;

    /// Forgets a pod whose API object is gone, releasing whatever it still holds.
    /// Idempotent.
    async fn remove_pod(&self, uid: &str) -> Result<()>;

    /// Removes the pods the runtime still holds that are not in `known` (pod uids): the
    /// ones deleted while the agent was down. Called after each full list of pods.
    async fn retain(&self, known: &std::collections::HashSet<String>) -> Result<()> {
        let _ = known;
        Ok(())
    }

    /// Lifecycle events for every pod this runtime runs. Each call opens a new stream.
    fn events(&self) -> BoxStream<'static, RuntimeEvent>;
}
