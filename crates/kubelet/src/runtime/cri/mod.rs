//! The CRI runtime: pods as real containers through containerd (`runtime.v1`).
//!
//! Stateless over CRI, as upstream's kuberuntime manager: every sync lists the pod's
//! sandboxes and containers by their labels and decides from what it finds, so an agent
//! that restarts adopts the pods it left running without touching them. What CRI cannot
//! hold lives here: back-off timers (crash loops, image pulls) and why a container waits.
//!
//! - `client.rs`: the connection and the CRI calls used;
//! - `spec.rs`: pod spec → sandbox and container configs;
//! - `backoff.rs`: upstream's exponential back-off;
//! - `probe.rs`: liveness, readiness and startup probes; `hooks.rs`: postStart and preStop
//!   hooks and stopping one container; `handlers.rs`: the exec, HTTP, TCP and gRPC actions
//!   both run;
//! - here: [`CriRuntime`] (the [`Runtime`] implementation), the relist loop that turns
//!   container state changes into [`RuntimeEvent`]s (upstream's generic PLEG; containerd
//!   1.6 has no container event stream), and the clean-up of cgroups and log dirs.

mod backoff;
pub mod client;
mod handlers;
mod hooks;
mod probe;
pub mod spec;
mod streaming;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use jiff::Timestamp;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState as CriState, ImageSpec, KeyValue,
    LinuxContainerConfig, PodSandboxState,
};
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::backoff::{Backoff, go_duration};
use self::client::{CONTAINER_NAME_LABEL, Cri, POD_NAME_LABEL, POD_NAMESPACE_LABEL, describe};
pub use self::spec::NodeContext;
use super::{
    ContainerState, ContainerStatus, Error, PodRuntimeStatus, Result, RuntimeEvent, RuntimeVersion,
    SandboxStatus,
};
use crate::env::{self, EnvContext};
use crate::logs::{LogError, LogSource};
use crate::volumes::{PodVolumes, VolumeManager};

/// Marks init containers (regular and sidecar) among a pod's containers.
pub(crate) const INIT_LABEL: &str = "rkube.io/init-container";
/// Marks ephemeral containers (`kubectl debug`).
const EPHEMERAL_LABEL: &str = "rkube.io/ephemeral-container";
/// The image as the pod spec names it.
const IMAGE_ANNOTATION: &str = "rkube.io/image";
const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
const TERMINATION_PATH_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePath";
const TERMINATION_POLICY_ANNOTATION: &str = "io.kubernetes.container.terminationMessagePolicy";
/// Upstream's limits: the message file is read up to 4 KiB; the log fallback takes the
/// last 80 lines, up to 2 KiB.
const MAX_MESSAGE: usize = 4096;
const FALLBACK_LINES: i64 = 80;
const FALLBACK_BYTES: usize = 2048;
/// How often containers are listed for state changes.
const RELIST_PERIOD: Duration = Duration::from_secs(1);
/// When a container cannot be configured (a missing ConfigMap…), retry this often.
const CONFIG_RETRY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct CriConfig {
    /// containerd's socket.
    pub socket: PathBuf,
    /// Told apart from other agents on the same containerd by this label value.
    pub agent_id: String,
    pub node: NodeContext,
    /// `<agent dir>/pods`: per-pod volume directories.
    pub pods_root: PathBuf,
    /// The node's allocatable resources: what `resourceFieldRef` reads for a limit a
    /// container does not set.
    pub allocatable: BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
}

pub struct CriRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    cri: Cri,
    cfg: CriConfig,
    client: kube::Client,
    volumes: VolumeManager,
    recorder: events::Recorder,
    state: Mutex<State>,
    events: broadcast::Sender<RuntimeEvent>,
    probes: probe::Prober,
}

#[derive(Default)]
struct State {
    /// `<uid>/<container>` → crash-loop back-off.
    crash: Backoff,
    /// `<uid>/<image>` → image pull back-off.
    pulls: Backoff,
    /// Pod uid → container → why it waits (reason, message, spec image).
    waiting: HashMap<String, HashMap<String, Waiting>>,
    /// Details of containers that can no longer change (exited), by id.
    exited: HashMap<String, k8s_cri::v1::ContainerStatus>,
    /// Start times of running containers, by id.
    started: HashMap<String, i64>,
    /// Sandbox id → its IPs.
    ips: HashMap<String, Vec<IpAddr>>,
}

#[derive(Clone, Debug)]
struct Waiting {
    reason: String,
    message: String,
    image: String,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cri_err(what: &str, s: &tonic::Status) -> Error {
    Error::Cri(format!("{what}: {}", describe(s)))
}

fn ts(nanos: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// One container instance as listed, with its details when known.
#[derive(Clone, Debug)]
struct Instance {
    id: String,
    name: String,
    attempt: u32,
    init: bool,
    ephemeral: bool,
    state: i32,
    image: String,
    image_ref: String,
}

impl Instance {
    fn from_cri(c: &k8s_cri::v1::Container) -> Instance {
        let meta = c.metadata.clone().unwrap_or_default();
        Instance {
            id: c.id.clone(),
            name: c
                .labels
                .get(CONTAINER_NAME_LABEL)
                .cloned()
                .unwrap_or(meta.name),
            attempt: meta.attempt,
            init: c.labels.contains_key(INIT_LABEL),
            ephemeral: c.labels.contains_key(EPHEMERAL_LABEL),
            state: c.state,
            // The image as the pod names it (the listing has the image id we created it
            // with).
            image: c
                .annotations
                .get(IMAGE_ANNOTATION)
                .cloned()
                .unwrap_or_else(|| {
                    c.image
                        .as_ref()
                        .map(|i| i.image.clone())
                        .unwrap_or_default()
                }),
            image_ref: c.image_ref.clone(),
        }
    }

    fn exited(&self) -> bool {
        self.state == CriState::ContainerExited as i32
            || self.state == CriState::ContainerUnknown as i32
    }
}

/// A pod's container instances by name, oldest attempt first.
fn by_name(list: &[k8s_cri::v1::Container]) -> HashMap<String, Vec<Instance>> {
    let mut m: HashMap<String, Vec<Instance>> = HashMap::new();
    for c in list {
        let i = Instance::from_cri(c);
        m.entry(i.name.clone()).or_default().push(i);
    }
    for v in m.values_mut() {
        v.sort_by_key(|i| i.attempt);
    }
    m
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Upstream's default pull policy: Always for `:latest` or an untagged image, else
/// IfNotPresent (the API server usually set it already).
fn pull_policy(c: &Container) -> &str {
    if let Some(p) = c.image_pull_policy.as_deref() {
        return p;
    }
    let image = c.image.as_deref().unwrap_or_default();
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn field_path(pod: &Pod, container: &str) -> String {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.name == container));
    if init {
        format!("spec.initContainers{{{container}}}")
    } else if spec::ephemeral(pod, container).is_some() {
        format!("spec.ephemeralContainers{{{container}}}")
    } else {
        format!("spec.containers{{{container}}}")
    }
}

fn pod_reference(pod: &Pod, container: Option<&str>) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        field_path: container.map(|c| field_path(pod, c)),
        ..Default::default()
    }
}

/// The outcome of trying to get a container going.
enum Step {
    /// Started (or left running).
    Started,
    /// Cannot start yet; recorded as a waiting reason.
    Waiting,
}

impl CriRuntime {
    /// Connects (lazily) and starts the relist loop, which runs until `stop`.
    pub fn new(client: kube::Client, cfg: CriConfig, stop: CancellationToken) -> Result<Self> {
        let cri = Cri::connect(&cfg.socket, cfg.agent_id.clone()).map_err(Error::Cri)?;
        let (events, _) = broadcast::channel(4096);
        let recorder = events::Recorder::start_as(
            client.clone(),
            events::Origin {
                host: Some(cfg.node.node_name.clone()),
            },
        );
        let volumes = VolumeManager::new(client.clone(), cfg.pods_root.clone());
        volumes.set_node_allocatable(cfg.allocatable.clone());
        let probes = probe::Prober::new(cri.clone(), recorder.clone(), events.clone());
        let inner = Arc::new(Inner {
            probes,
            cri,
            volumes,
            cfg,
            client,
            recorder,
            state: Mutex::new(State::default()),
            events,
        });
        tokio::spawn(relist(Arc::downgrade(&inner), stop));
        Ok(CriRuntime { inner })
    }

    /// Upstream's image garbage collection: when the image filesystem is at least `high`
    /// percent full, removes images no container uses (any agent's; `keep` never), largest
    /// first, until it is below `low` percent. Returns the images removed.
    pub async fn collect_images(&self, high: u8, low: u8, keep: &[&str]) -> Result<Vec<String>> {
        let cri = &self.inner.cri;
        let fs = cri
            .img
            .clone()
            .image_fs_info(k8s_cri::v1::ImageFsInfoRequest {})
            .await
            .map_err(|s| cri_err("reading the image filesystem", &s))?
            .into_inner();
        let Some(mount) = fs
            .image_filesystems
            .first()
            .and_then(|f| f.fs_id.as_ref())
            .map(|id| id.mountpoint.clone())
        else {
            return Ok(Vec::new());
        };
        let Ok(st) = rustix::fs::statvfs(mount.as_str()) else {
            return Ok(Vec::new());
        };
        let capacity = st.f_blocks.saturating_mul(st.f_frsize);
        let used = capacity.saturating_sub(st.f_bavail.saturating_mul(st.f_frsize));
        if capacity == 0 || used * 100 < capacity * u64::from(high) {
            return Ok(Vec::new());
        }
        let mut to_free = used.saturating_sub(capacity * u64::from(low) / 100);
        let containers = cri
            .rt
            .clone()
            .list_containers(k8s_cri::v1::ListContainersRequest { filter: None })
            .await
            .map_err(|s| cri_err("listing containers", &s))?
            .into_inner()
            .containers;
        let in_use: HashSet<String> = containers
            .iter()
            .flat_map(|c| {
                [
                    c.image_ref.clone(),
                    c.image
                        .as_ref()
                        .map(|i| i.image.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        let mut images = cri
            .img
            .clone()
            .list_images(k8s_cri::v1::ListImagesRequest { filter: None })
            .await
            .map_err(|s| cri_err("listing images", &s))?
            .into_inner()
            .images;
        images.retain(|i| {
            !in_use.contains(&i.id)
                && !i
                    .repo_tags
                    .iter()
                    .any(|t| in_use.contains(t) || keep.contains(&t.as_str()))
                && !i.pinned
        });
        images.sort_by_key(|i| std::cmp::Reverse(i.size));
        let mut removed = Vec::new();
        for i in images {
            if to_free == 0 {
                break;
            }
            let req = k8s_cri::v1::RemoveImageRequest {
                image: Some(ImageSpec {
                    image: i.id.clone(),
                    ..Default::default()
                }),
            };
            match cri.img.clone().remove_image(req).await {
                Ok(_) => {
                    to_free = to_free.saturating_sub(i.size);
                    removed.push(i.repo_tags.first().cloned().unwrap_or(i.id));
                }
                Err(s) => {
                    tracing::warn!(image = %i.id, error = %describe(&s), "removing an unused image failed")
                }
            }
        }
        Ok(removed)
    }

    /// The images containerd holds (`status.images` of the Node): names and size.
    pub async fn images(&self) -> Result<Vec<(Vec<String>, u64)>> {
        let list = self
            .inner
            .cri
            .img
            .clone()
            .list_images(k8s_cri::v1::ListImagesRequest { filter: None })
            .await
            .map_err(|s| cri_err("listing images", &s))?
            .into_inner()
            .images;
        Ok(list
            .into_iter()
            .map(|i| {
                let mut names = i.repo_digests;
                names.extend(i.repo_tags);
                (names, i.size)
            })
            .collect())
    }
}

impl Inner {
    fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        self.recorder.record(
            "kubelet",
            pod_reference(pod, container),
            warning,
            reason,
            message,
        );
    }

    fn notify(&self, uid: &str) {
        let _ = self.events.send(RuntimeEvent::PodChanged {
            uid: uid.to_string(),
        });
    }

    /// Syncs the pod again after `after` (a back-off ends, a retry is due).
    fn wake_after(self: &Arc<Self>, uid: &str, after: Duration) {
        let me = Arc::downgrade(self);
        let uid = uid.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(after + Duration::from_millis(50)).await;
            if let Some(me) = me.upgrade() {
                me.notify(&uid);
            }
        });
    }

    fn set_waiting(&self, uid: &str, c: &Container, reason: &str, message: String) {
        lock(&self.state)
            .waiting
            .entry(uid.to_string())
            .or_default()
            .insert(
                c.name.clone(),
                Waiting {
                    reason: reason.to_string(),
                    message,
                    image: c.image.clone().unwrap_or_default(),
                },
            );
    }

    fn clear_waiting(&self, uid: &str, name: &str) {
        if let Some(m) = lock(&self.state).waiting.get_mut(uid) {
            m.remove(name);
        }
    }

    /// The ready sandbox of the pod, created if there is none. Returns its id and IPs.
    async fn ensure_sandbox(self: &Arc<Self>, pod: &Pod) -> Result<(String, Vec<IpAddr>)> {
        let uid = spec::uid(pod);
        let sandboxes = self
            .cri
            .sandboxes(Some(uid))
            .await
            .map_err(|s| cri_err("listing sandboxes", &s))?;
        if let Some(sb) = sandboxes
            .iter()
            .filter(|s| s.state == PodSandboxState::SandboxReady as i32)
            .max_by_key(|s| s.created_at)
        {
            let ips = self.sandbox_ips(&sb.id).await?;
            return Ok((sb.id.clone(), ips));
        }
        let attempt = sandboxes
            .iter()
            .filter_map(|s| s.metadata.as_ref().map(|m| m.attempt + 1))
            .max()
            .unwrap_or(0);
        if attempt > 0 {
            // The old sandbox died: upstream kills what ran in it and starts over.
            self.event(
                pod,
                None,
                false,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.".into(),
            );
            for c in self
                .cri
                .containers(Some(uid))
                .await
                .map_err(|s| cri_err("listing containers", &s))?
            {
                if c.state == CriState::ContainerRunning as i32 {
                    let _ = self.cri.stop_container(&c.id, 0).await;
                }
            }
        }
        std::fs::create_dir_all(spec::log_dir(&self.cfg.node.log_root, pod))
            .map_err(|e| Error::Cri(format!("creating the pod's log directory: {e}")))?;
        let config = spec::sandbox_config(pod, attempt, &self.cfg.node, &self.cfg.agent_id);
        let req = k8s_cri::v1::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        };
        let id = match self.cri.rt.clone().run_pod_sandbox(req).await {
            Ok(r) => r.into_inner().pod_sandbox_id,
            Err(s) => {
                let msg = format!("Failed to create pod sandbox: {}", describe(&s));
                self.event(pod, None, true, "FailedCreatePodSandBox", msg.clone());
                return Err(Error::Cri(msg));
            }
        };
        let ips = self.sandbox_ips(&id).await?;
        Ok((id, ips))
    }

    async fn sandbox_ips(&self, id: &str) -> Result<Vec<IpAddr>> {
        if let Some(ips) = lock(&self.state).ips.get(id) {
            return Ok(ips.clone());
        }
        let ips: Vec<IpAddr> = self
            .cri
            .sandbox_ips(id)
            .await
            .map_err(|s| cri_err("reading the sandbox status", &s))?
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        let ips = if ips.is_empty() {
            // Host network: the pod has the node's address.
            self.cfg.node.host_ip.parse().into_iter().collect()
        } else {
            ips
        };
        lock(&self.state).ips.insert(id.to_string(), ips.clone());
        Ok(ips)
    }

    /// Makes the container's image present per its pull policy. `Err` holds the waiting
    /// reason and message.
    async fn ensure_image(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
    ) -> std::result::Result<k8s_cri::v1::Image, (&'static str, String)> {
        let image = c.image.clone().unwrap_or_default();
        let uid = spec::uid(pod);
        if image.is_empty() {
            return Err(("InvalidImageName", "the container has no image".into()));
        }
        let policy = pull_policy(c);
        let present = self
            .cri
            .image_present(&image)
            .await
            .map_err(|s| ("ErrImagePull", describe(&s)))?;
        match (policy, &present) {
            ("Never", Some(img)) | ("IfNotPresent", Some(img)) => {
                self.event(
                    pod,
                    Some(&c.name),
                    false,
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                );
                return Ok(img.clone());
            }
            ("Never", None) => {
                let msg =
                    format!("Container image {image:?} is not present with pull policy of Never");
                self.event(pod, Some(&c.name), true, "ErrImageNeverPull", msg.clone());
                return Err(("ErrImageNeverPull", msg));
            }
            _ => {}
        }
        let key = format!("{uid}/{image}");
        let now = Timestamp::now();
        let remaining = lock(&self.state).pulls.remaining_since_update(&key, now);
        if let Some(left) = remaining {
            let msg = format!("Back-off pulling image {image:?}");
            self.event(pod, Some(&c.name), false, "BackOff", msg.clone());
            self.wake_after(uid, left);
            return Err(("ImagePullBackOff", msg));
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Pulling",
            format!("Pulling image {image:?}"),
        );
        let started = Instant::now();
        let req = k8s_cri::v1::PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        };
        let pulled = self.cri.img.clone().pull_image(req).await;
        match pulled {
            Ok(_) => {
                let img = self
                    .cri
                    .image_present(&image)
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| {
                        (
                            "ErrImagePull",
                            format!("image {image:?} is missing after its pull"),
                        )
                    })?;
                let took = started.elapsed();
                self.event(pod, Some(&c.name), false, "Pulled", format!(
                    "Successfully pulled image {image:?} in {took:.3?} ({took:.3?} including waiting). Image size: {} bytes.",
                    img.size
                ));
                Ok(img)
            }
            Err(s) => {
                let err = describe(&s);
                // An offline node keeps working with the copy it has (machines here reach
                // no registry): a failed refresh of a present image is only a warning.
                if let Some(img) = present {
                    self.event(pod, Some(&c.name), true, "Failed", format!(
                        "Failed to pull image {image:?}: {err}; using the image present on the node"
                    ));
                    return Ok(img);
                }
                let delay = lock(&self.state).pulls.next(&key, Timestamp::now());
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "Failed",
                    format!("Failed to pull image {image:?}: {err}"),
                );
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "Failed",
                    "Error: ErrImagePull".into(),
                );
                self.wake_after(uid, delay);
                Err(("ErrImagePull", err))
            }
        }
    }

    /// A container that cannot be created yet: a `Failed` event, the waiting `reason`, and
    /// another try after [`CONFIG_RETRY`].
    fn cannot_create(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        reason: &str,
        message: String,
    ) -> Step {
        let uid = spec::uid(pod);
        self.event(
            pod,
            Some(&c.name),
            true,
            "Failed",
            format!("Error: {message}"),
        );
        self.set_waiting(uid, c, reason, message);
        self.wake_after(uid, CONFIG_RETRY);
        Step::Waiting
    }

    /// Creates and starts instance `attempt` of container `c` in `sandbox`.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        init: bool,
        sandbox: &(String, Vec<IpAddr>),
        attempt: u32,
        volumes: &PodVolumes,
    ) -> Result<Step> {
        let uid = spec::uid(pod);
        let image = match self.ensure_image(pod, c).await {
            Ok(img) => img,
            Err((reason, message)) => {
                self.set_waiting(uid, c, reason, message);
                return Ok(Step::Waiting);
            }
        };
        let config = match self
            .container_config(pod, c, init, sandbox, attempt, volumes, &image)
            .await
        {
            Ok(cfg) => cfg,
            Err(message) => {
                return Ok(self.cannot_create(pod, c, "CreateContainerConfigError", message));
            }
        };
        let sandbox_config = spec::sandbox_config(pod, 0, &self.cfg.node, &self.cfg.agent_id);
        let req = k8s_cri::v1::CreateContainerRequest {
            pod_sandbox_id: sandbox.0.clone(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        let id = match self.cri.rt.clone().create_container(req).await {
            Ok(r) => r.into_inner().container_id,
            Err(s) => {
                return Ok(self.cannot_create(pod, c, "CreateContainerError", describe(&s)));
            }
        };
        self.event(
            pod,
            Some(&c.name),
            false,
            "Created",
            format!("Created container: {}", c.name),
        );
        self.clear_waiting(uid, &c.name);
        let req = k8s_cri::v1::StartContainerRequest {
            container_id: id.clone(),
        };
        if let Err(s) = self.cri.rt.clone().start_container(req).await {
            // The container is left exited (StartError); the restart policy takes it from
            // there.
            self.event(
                pod,
                Some(&c.name),
                true,
                "Failed",
                format!("Error: {}", describe(&s)),
            );
            return Ok(Step::Started);
        }
        self.event(
            pod,
            Some(&c.name),
            false,
            "Started",
            format!("Started container {}", c.name),
        );
        let ip = sandbox.1.first().map(IpAddr::to_string).unwrap_or_default();
        self.post_start(pod, c, &id, &ip).await;
        Ok(Step::Started)
    }

    #[allow(clippy::too_many_arguments)]
    async fn container_config(
        &self,
        pod: &Pod,
        c: &Container,
        init: bool,
        sandbox: &(String, Vec<IpAddr>),
        attempt: u32,
        volumes: &PodVolumes,
        image: &k8s_cri::v1::Image,
    ) -> std::result::Result<ContainerConfig, String> {
        spec::verify_non_root(pod, c, image.uid.as_ref().map(|u| u.value), &image.username)?;
        let ephemeral = spec::ephemeral(pod, &c.name);
        let mut security = spec::security_context(pod, c);
        if let Some(target) = ephemeral
            .and_then(|e| e.target_container_name.as_deref())
            .filter(|t| !t.is_empty())
        {
            spec::target_pid_namespace(&mut security, &self.target_id(pod, target).await?);
        }
        let pod_ips: Vec<String> = sandbox.1.iter().map(IpAddr::to_string).collect();
        let ctx = EnvContext {
            pod,
            pod_ips: &pod_ips,
            host_ip: &self.cfg.node.host_ip,
            node_name: &self.cfg.node.node_name,
            allocatable: Some(&self.cfg.allocatable),
        };
        let envs = env::resolve(&self.client, &ctx, c)
            .await
            .map_err(|e| e.to_string())?;
        let mut mounts = volumes.mounts(c, &envs).map_err(|e| e.to_string())?;
        if !spec::host_network(pod) && !mounts.iter().any(|m| m.container_path == "/etc/hosts") {
            mounts.push(self.hosts_file(pod, &pod_ips)?);
        }
        let message_path = c
            .termination_message_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/dev/termination-log".into());
        let message_file = self
            .cfg
            .pods_root
            .join(spec::uid(pod))
            .join("containers")
            .join(&c.name)
            .join(attempt.to_string());
        if let Some(dir) = message_file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(&message_file, b"")
            .map_err(|e| format!("writing {}: {e}", message_file.display()))?;
        mounts.push(k8s_cri::v1::Mount {
            container_path: message_path.clone(),
            host_path: message_file.to_string_lossy().into_owned(),
            ..Default::default()
        });
        let expand = |list: &Option<Vec<String>>| -> Vec<String> {
            list.iter()
                .flatten()
                .map(|s| env::expand(s, &envs))
                .collect()
        };
        let mut labels = spec::container_labels(pod, &c.name, &self.cfg.agent_id);
        if init {
            labels.insert(INIT_LABEL.to_string(), "true".into());
        }
        if ephemeral.is_some() {
            labels.insert(EPHEMERAL_LABEL.to_string(), "true".into());
        }
        let dir = spec::log_dir(&self.cfg.node.log_root, pod).join(&c.name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: c.name.clone(),
                attempt,
            }),
            image: Some(ImageSpec {
                image: image.id.clone(),
                user_specified_image: c.image.clone().unwrap_or_default(),
                ..Default::default()
            }),
            command: expand(&c.command),
            args: expand(&c.args),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            envs: envs
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            mounts,
            labels,
            annotations: HashMap::from([
                (
                    IMAGE_ANNOTATION.to_string(),
                    c.image.clone().unwrap_or_default(),
                ),
                (RESTART_COUNT_ANNOTATION.to_string(), attempt.to_string()),
                (TERMINATION_PATH_ANNOTATION.to_string(), message_path),
                (
                    TERMINATION_POLICY_ANNOTATION.to_string(),
                    c.termination_message_policy
                        .clone()
                        .unwrap_or_else(|| "File".into()),
                ),
            ]),
            log_path: format!("{}/{attempt}.log", c.name),
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
            linux: Some(LinuxContainerConfig {
                resources: Some(spec::resources(pod, c, &self.cfg.node)),
                security_context: Some(security),
            }),
            ..Default::default()
        })
    }

    /// The CRI id of the newest instance of the pod's container `name`: the target whose
    /// process namespace an ephemeral container joins (upstream's `getTargetID`).
    async fn target_id(&self, pod: &Pod, name: &str) -> std::result::Result<String, String> {
        let listed = self
            .cri
            .containers(Some(spec::uid(pod)))
            .await
            .map_err(|s| describe(&s))?;
        by_name(&listed)
            .get(name)
            .and_then(|l| l.last())
            .map(|i| i.id.clone())
            .ok_or_else(|| format!("unable to find target container {name}"))
    }

    /// The pod's `/etc/hosts` (upstream's kubelet-managed hosts file: loopback names, the
    /// pod's own name on its IP, `hostAliases`), written once per sandbox IP.
    fn hosts_file(
        &self,
        pod: &Pod,
        ips: &[String],
    ) -> std::result::Result<k8s_cri::v1::Mount, String> {
        let path = self.cfg.pods_root.join(spec::uid(pod)).join("etc-hosts");
        let mut text = String::from(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        let spec_ = pod.spec.as_ref();
        let hostname = spec_
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| spec::name(pod).to_string());
        let names = match spec_.and_then(|s| s.subdomain.as_deref()) {
            Some(sub) if !sub.is_empty() => format!(
                "{hostname}.{sub}.{}.svc.{}\t{hostname}",
                spec::namespace(pod),
                self.cfg.node.cluster_domain
            ),
            _ => hostname,
        };
        for ip in ips {
            text.push_str(&format!("{ip}\t{names}\n"));
        }
        let aliases = spec_.and_then(|s| s.host_aliases.as_ref());
        if let Some(aliases) = aliases.filter(|a| !a.is_empty()) {
            text.push_str("\n# Entries added by HostAliases.\n");
            for a in aliases {
                let names = a.hostnames.clone().unwrap_or_default().join("\t");
                text.push_str(&format!("{}\t{names}\n", a.ip));
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(k8s_cri::v1::Mount {
            container_path: "/etc/hosts".into(),
            host_path: path.to_string_lossy().into_owned(),
            ..Default::default()
        })
    }

    /// Restarts an exited container unless it is in its crash-loop back-off, which is
    /// then recorded as its waiting reason.
    #[allow(clippy::too_many_arguments)]
    async fn restart(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        init: bool,
        last: &Instance,
        sandbox: &(String, Vec<IpAddr>),
        volumes: &PodVolumes,
    ) -> Result<Step> {
        let uid = spec::uid(pod);
        let key = format!("{uid}/{}", c.name);
        let finished = self
            .details(last)
            .await
            .map(|d| ts(d.finished_at))
            .unwrap_or_else(|_| Timestamp::now());
        let now = Timestamp::now();
        let in_backoff = {
            let st = lock(&self.state);
            st.crash
                .remaining_since(&key, finished, now)
                .zip(st.crash.delay(&key, now))
        };
        if let Some((left, delay)) = in_backoff {
            let message = format!(
                "back-off {} restarting failed container={} pod={}",
                go_duration(delay),
                c.name,
                spec::pod_ref(pod)
            );
            self.event(
                pod,
                Some(&c.name),
                true,
                "BackOff",
                format!(
                    "Back-off restarting failed container {} in pod {}",
                    c.name,
                    spec::pod_ref(pod)
                ),
            );
            self.set_waiting(uid, c, "CrashLoopBackOff", message);
            self.wake_after(uid, left);
            return Ok(Step::Waiting);
        }
        lock(&self.state).crash.next(&key, now);
        let step = self
            .start(pod, c, init, sandbox, last.attempt + 1, volumes)
            .await?;
        Ok(step)
    }

    /// Full CRI status of a container instance; cached once it can no longer change.
    async fn details(&self, i: &Instance) -> Result<k8s_cri::v1::ContainerStatus> {
        if let Some(d) = lock(&self.state).exited.get(&i.id) {
            return Ok(d.clone());
        }
        let d = self
            .cri
            .container_status(&i.id)
            .await
            .map_err(|s| cri_err("reading a container's status", &s))?;
        let mut st = lock(&self.state);
        if d.state == CriState::ContainerExited as i32 {
            st.exited.insert(i.id.clone(), d.clone());
        } else if d.state == CriState::ContainerRunning as i32 {
            st.started.insert(i.id.clone(), d.started_at);
        }
        Ok(d)
    }

    async fn instance_state(&self, i: &Instance) -> Result<ContainerState> {
        if i.state == CriState::ContainerRunning as i32 {
            let cached = lock(&self.state).started.get(&i.id).copied();
            let started = match cached {
                Some(s) => s,
                None => self.details(i).await?.started_at,
            };
            return Ok(ContainerState::Running {
                started_at: ts(started),
            });
        }
        if !i.exited() {
            return Ok(ContainerState::Created);
        }
        let d = self.details(i).await?;
        let reason = if !d.reason.is_empty() {
            d.reason.clone()
        } else if d.exit_code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        };
        Ok(ContainerState::Exited {
            started_at: ts(if d.started_at > 0 {
                d.started_at
            } else {
                d.created_at
            }),
            finished_at: ts(d.finished_at),
            exit_code: d.exit_code,
            reason,
            message: termination_message(&d).await,
        })
    }

    /// What runs for pod `uid`, from CRI; `None` if it has no sandbox.
    async fn runtime_status(&self, uid: &str) -> Result<Option<PodRuntimeStatus>> {
        let sandboxes = self
            .cri
            .sandboxes(Some(uid))
            .await
            .map_err(|s| cri_err("listing sandboxes", &s))?;
        let Some(sb) = sandboxes.iter().max_by_key(|s| s.created_at) else {
            return Ok(None);
        };
        let ips = self.sandbox_ips(&sb.id).await?;
        let containers = self
            .cri
            .containers(Some(uid))
            .await
            .map_err(|s| cri_err("listing containers", &s))?;
        let waiting = lock(&self.state)
            .waiting
            .get(uid)
            .cloned()
            .unwrap_or_default();
        let groups = by_name(&containers);
        let (mut init, mut regular, mut ephemeral) = (Vec::new(), Vec::new(), Vec::new());
        for (name, list) in &groups {
            let Some(latest) = list.last() else { continue };
            let previous = list.len().checked_sub(2).map(|i| &list[i]);
            let latest_state = self.instance_state(latest).await?;
            let id = format!("containerd://{}", latest.id);
            let status = match waiting.get(name) {
                Some(w) => ContainerStatus {
                    name: name.clone(),
                    id: id.clone(),
                    image: latest.image.clone(),
                    image_ref: latest.image_ref.clone(),
                    state: ContainerState::Waiting {
                        reason: w.reason.clone(),
                        message: w.message.clone(),
                    },
                    last_state: matches!(latest_state, ContainerState::Exited { .. })
                        .then(|| (id.clone(), latest_state.clone())),
                    restart_count: i32::try_from(latest.attempt).unwrap_or(i32::MAX),
                    started: false,
                    ready: false,
                },
                None => {
                    let last_state = match previous {
                        Some(p) if p.exited() => Some((
                            format!("containerd://{}", p.id),
                            self.instance_state(p).await?,
                        )),
                        _ => None,
                    };
                    let (started, ready) = self.probes.verdicts(uid, name, &latest.id);
                    ContainerStatus {
                        name: name.clone(),
                        id,
                        image: latest.image.clone(),
                        image_ref: latest.image_ref.clone(),
                        state: latest_state,
                        last_state,
                        restart_count: i32::try_from(latest.attempt).unwrap_or(i32::MAX),
                        started,
                        ready,
                    }
                }
            };
            if latest.ephemeral {
                ephemeral.push(status);
            } else if latest.init {
                init.push(status);
            } else {
                regular.push(status);
            }
        }
        // Containers that never got created but wait (image pull, configuration).
        for (name, w) in &waiting {
            if groups.contains_key(name) {
                continue;
            }
            let status = ContainerStatus {
                name: name.clone(),
                id: String::new(),
                image: w.image.clone(),
                image_ref: String::new(),
                state: ContainerState::Waiting {
                    reason: w.reason.clone(),
                    message: w.message.clone(),
                },
                last_state: None,
                restart_count: 0,
                started: false,
                ready: false,
            };
            // Which kind of container it is is unknown here; status generation looks
            // containers up by name in each list.
            init.push(status.clone());
            ephemeral.push(status.clone());
            regular.push(status);
        }
        Ok(Some(PodRuntimeStatus {
            uid: uid.to_string(),
            sandbox: SandboxStatus {
                id: sb.id.clone(),
                ips,
                created_at: ts(sb.created_at),
                ready: sb.state == PodSandboxState::SandboxReady as i32,
            },
            init_containers: init,
            containers: regular,
            ephemeral_containers: ephemeral,
        }))
    }

    async fn sync(self: &Arc<Self>, pod: &Pod) -> Result<PodRuntimeStatus> {
        let uid = spec::uid(pod).to_string();
        let volumes = match self.volumes.setup(pod).await {
            Ok(v) => v,
            Err(e) => {
                // Already upstream's "MountVolume.SetUp failed for volume …" message.
                let msg = e.to_string();
                self.event(pod, None, true, "FailedMount", msg.clone());
                return Err(Error::Cri(msg));
            }
        };
        let sandbox = self.ensure_sandbox(pod).await?;
        let listed = self
            .cri
            .containers(Some(&uid))
            .await
            .map_err(|s| cri_err("listing containers", &s))?;
        let groups = by_name(&listed);
        let policy = restart_policy(pod).to_string();
        let empty = Vec::new();
        let spec = pod.spec.as_ref();
        let inits = spec
            .and_then(|s| s.init_containers.as_ref())
            .unwrap_or(&empty);
        // Ephemeral containers start once, whatever the init containers do (upstream starts
        // them before init containers), and are never restarted.
        let ephemerals = spec.and_then(|s| s.ephemeral_containers.as_ref());
        for e in ephemerals.into_iter().flatten() {
            if !groups.contains_key(&e.name) {
                let c = spec::ephemeral_container(e);
                self.start(pod, &c, false, &sandbox, 0, &volumes).await?;
            }
        }
        let mut init_done = true;
        for c in inits {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            let latest = groups.get(&c.name).and_then(|l| l.last());
            let blocked = match latest {
                None => {
                    let step = self.start(pod, c, true, &sandbox, 0, &volumes).await?;
                    // A sidecar that started lets the next init container go.
                    !(sidecar && matches!(step, Step::Started))
                }
                Some(i) if !i.exited() => {
                    if sidecar {
                        self.kill_unhealthy(pod, c, true, i, &sandbox, &volumes)
                            .await?;
                    }
                    !sidecar
                }
                Some(i) => {
                    let code = self.details(i).await.map(|d| d.exit_code).unwrap_or(1);
                    if !sidecar && code == 0 {
                        false
                    } else if !sidecar && policy == "Never" {
                        true
                    } else {
                        self.restart(pod, c, true, i, &sandbox, &volumes).await?;
                        !sidecar
                    }
                }
            };
            if blocked {
                init_done = false;
                break;
            }
        }
        if init_done {
            for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
                match groups.get(&c.name).and_then(|l| l.last()) {
                    None => {
                        self.start(pod, c, false, &sandbox, 0, &volumes).await?;
                    }
                    Some(i) if !i.exited() => {
                        self.kill_unhealthy(pod, c, false, i, &sandbox, &volumes)
                            .await?;
                    }
                    Some(i) => {
                        let code = self.details(i).await.map(|d| d.exit_code).unwrap_or(1);
                        let again = match policy.as_str() {
                            "Never" => false,
                            "OnFailure" => code != 0,
                            _ => true,
                        };
                        if again {
                            self.restart(pod, c, false, i, &sandbox, &volumes).await?;
                        }
                    }
                }
            }
        }
        self.collect_old_instances(&groups).await;
        let mut status = self
            .runtime_status(&uid)
            .await?
            .ok_or_else(|| Error::Cri(format!("pod {uid} lost its sandbox")))?;
        self.probes.track(pod, &mut status);
        Ok(status)
    }

    /// Removes exited instances older than the previous one of each container (upstream
    /// keeps the last dead instance for `--previous` and `lastState`).
    async fn collect_old_instances(&self, groups: &HashMap<String, Vec<Instance>>) {
        for list in groups.values() {
            if list.len() <= 2 {
                continue;
            }
            for old in &list[..list.len() - 2] {
                if old.exited() && self.cri.remove_container(&old.id).await.is_ok() {
                    let mut st = lock(&self.state);
                    st.exited.remove(&old.id);
                    st.started.remove(&old.id);
                }
            }
        }
    }

    async fn kill(
        self: &Arc<Self>,
        pod: &Pod,
        grace: Duration,
    ) -> Result<Option<PodRuntimeStatus>> {
        let uid = spec::uid(pod).to_string();
        let containers = self
            .cri
            .containers(Some(&uid))
            .await
            .map_err(|s| cri_err("listing containers", &s))?;
        let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        self.probes.forget(&uid);
        let stops = containers
            .iter()
            .filter(|c| {
                c.state == CriState::ContainerRunning as i32
                    || c.state == CriState::ContainerCreated as i32
            })
            .map(|c| {
                let name = Instance::from_cri(c).name;
                let running = c.state == CriState::ContainerRunning as i32;
                async move {
                    // Only a running container gets its preStop hook (HTTP ones default
                    // to the pod's IP).
                    let hook_ip = match running {
                        true => Some(
                            self.sandbox_ips(&c.pod_sandbox_id)
                                .await
                                .ok()
                                .and_then(|ips| ips.first().map(IpAddr::to_string))
                                .unwrap_or_default(),
                        ),
                        false => None,
                    };
                    let message = format!("Stopping container {name}");
                    self.kill_container(pod, &name, &c.id, message, grace_secs, hook_ip.as_deref())
                        .await
                }
            });
        for r in futures::future::join_all(stops).await {
            if let Err(s) = r {
                return Err(cri_err("stopping a container", &s));
            }
        }
        for sb in self
            .cri
            .sandboxes(Some(&uid))
            .await
            .map_err(|s| cri_err("listing sandboxes", &s))?
        {
            if sb.state == PodSandboxState::SandboxReady as i32 {
                self.cri
                    .stop_sandbox(&sb.id)
                    .await
                    .map_err(|s| cri_err("stopping the sandbox", &s))?;
            }
        }
        lock(&self.state).waiting.remove(&uid);
        self.runtime_status(&uid).await
    }

    async fn remove(&self, uid: &str) -> Result<()> {
        self.probes.forget(uid);
        let containers = self
            .cri
            .containers(Some(uid))
            .await
            .map_err(|s| cri_err("listing containers", &s))?;
        for c in &containers {
            if c.state == CriState::ContainerRunning as i32 {
                let _ = self.cri.stop_container(&c.id, 0).await;
            }
            self.cri
                .remove_container(&c.id)
                .await
                .map_err(|s| cri_err("removing a container", &s))?;
        }
        let sandboxes = self
            .cri
            .sandboxes(Some(uid))
            .await
            .map_err(|s| cri_err("listing sandboxes", &s))?;
        for sb in &sandboxes {
            let _ = self.cri.stop_sandbox(&sb.id).await;
            self.cri
                .remove_sandbox(&sb.id)
                .await
                .map_err(|s| cri_err("removing the sandbox", &s))?;
        }
        self.volumes
            .teardown(uid)
            .await
            .map_err(|e| Error::Cri(format!("tearing down the pod's volumes: {e}")))?;
        remove_log_dirs(&self.cfg.node.log_root, uid);
        remove_pod_cgroups(&self.cfg.node.cgroup_root, uid);
        let mut st = lock(&self.state);
        st.waiting.remove(uid);
        st.crash.forget_prefix(&format!("{uid}/"));
        st.pulls.forget_prefix(&format!("{uid}/"));
        for c in &containers {
            st.exited.remove(&c.id);
            st.started.remove(&c.id);
        }
        for sb in &sandboxes {
            st.ips.remove(&sb.id);
        }
        Ok(())
    }

    /// The newest sandbox of pod `namespace/name` on this node.
    async fn pod_sandbox(
        &self,
        namespace: &str,
        name: &str,
    ) -> std::result::Result<Option<k8s_cri::v1::PodSandbox>, tonic::Status> {
        let sandboxes = self.cri.sandboxes(None).await?;
        Ok(sandboxes
            .into_iter()
            .filter(|s| {
                s.labels.get(POD_NAMESPACE_LABEL).map(String::as_str) == Some(namespace)
                    && s.labels.get(POD_NAME_LABEL).map(String::as_str) == Some(name)
            })
            .max_by_key(|s| s.created_at))
    }

    async fn container_log(
        &self,
        namespace: &str,
        name: &str,
        container: &str,
        previous: bool,
    ) -> std::result::Result<(PathBuf, bool), LogError> {
        let unavailable = |s: tonic::Status| LogError::BadRequest(describe(&s));
        let uid = self
            .pod_sandbox(namespace, name)
            .await
            .map_err(unavailable)?
            .and_then(|sb| sb.metadata.map(|m| m.uid))
            .ok_or_else(|| {
                LogError::NotFound(format!("pod {namespace}/{name} is not known on this node"))
            })?;
        let containers = self.cri.containers(Some(&uid)).await.map_err(unavailable)?;
        let groups = by_name(&containers);
        let list = groups.get(container).map(Vec::as_slice).unwrap_or_default();
        let pick = if previous {
            list.len().checked_sub(2).map(|i| &list[i])
        } else {
            list.last()
        };
        let Some(inst) = pick else {
            return Err(LogError::BadRequest(if previous {
                format!("previous terminated container {container:?} in pod {name:?} not found")
            } else {
                let reason = lock(&self.state)
                    .waiting
                    .get(&uid)
                    .and_then(|w| w.get(container))
                    .map(|w| w.reason.clone())
                    .unwrap_or_else(|| "ContainerCreating".into());
                format!("container {container:?} in pod {name:?} is waiting to start: {reason}")
            }));
        };
        let d = self
            .cri
            .container_status(&inst.id)
            .await
            .map_err(unavailable)?;
        let running = d.state == CriState::ContainerRunning as i32;
        Ok((PathBuf::from(d.log_path), running))
    }
}

/// An exited container's termination message (upstream `getTerminationMessage`): the
/// runtime's, else the file mounted at `terminationMessagePath`, else — with
/// `FallbackToLogsOnError` and a failure — the tail of its log.
async fn termination_message(d: &k8s_cri::v1::ContainerStatus) -> Option<String> {
    if !d.message.is_empty() {
        return Some(d.message.clone());
    }
    let path = d.annotations.get(TERMINATION_PATH_ANNOTATION)?;
    let host = d.mounts.iter().find(|m| &m.container_path == path)?;
    let mut text = std::fs::read(&host.host_path).unwrap_or_default();
    text.truncate(MAX_MESSAGE);
    let policy = d.annotations.get(TERMINATION_POLICY_ANNOTATION);
    if text.is_empty()
        && d.exit_code != 0
        && policy.map(String::as_str) == Some("FallbackToLogsOnError")
    {
        let opts = crate::logs::LogOptions {
            tail_lines: Some(FALLBACK_LINES),
            ..Default::default()
        };
        let done: crate::logs::RunningCheck = Box::new(|| Box::pin(async { false }));
        if let Ok(mut stream) = crate::logs::open(PathBuf::from(&d.log_path), opts, done).await {
            while let Some(Ok(chunk)) = stream.next().await {
                text.extend_from_slice(&chunk);
            }
        }
        if text.len() > FALLBACK_BYTES {
            text.drain(..text.len() - FALLBACK_BYTES);
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    (!text.is_empty()).then_some(text)
}

fn remove_log_dirs(root: &Path, uid: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let suffix = format!("_{uid}");
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(&suffix)
            && let Err(err) = std::fs::remove_dir_all(e.path())
        {
            tracing::warn!(path = %e.path().display(), error = %err, "removing pod logs failed");
        }
    }
}

/// Removes `pod<uid>` under each QoS level of `root` in every cgroup hierarchy (v1
/// controllers and v2): containerd never removes the pod-level cgroup.
pub fn remove_pod_cgroups(root: &str, uid: &str) {
    let root = root.trim_start_matches('/');
    let mut bases = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        bases.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for base in bases {
        for qos in ["", "burstable/", "besteffort/"] {
            let dir = base.join(format!("{root}/{qos}pod{uid}"));
            if dir.is_dir()
                && let Err(e) = std::fs::remove_dir(&dir)
            {
                tracing::debug!(dir = %dir.display(), error = %e, "removing a pod cgroup failed");
            }
        }
    }
}

/// Lists this agent's containers and sandboxes every [`RELIST_PERIOD`] and reports the
/// pods whose state changed.
async fn relist(inner: std::sync::Weak<Inner>, stop: CancellationToken) {
    let mut last: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(me) = inner.upgrade() else { return };
        let (containers, sandboxes) =
            match tokio::try_join!(me.cri.containers(None), me.cri.sandboxes(None)) {
                Ok(x) => x,
                Err(s) => {
                    tracing::debug!(error = %describe(&s), "relisting containers failed");
                    continue;
                }
            };
        let mut now: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        let uid_of = |labels: &HashMap<String, String>| labels.get(client::POD_UID_LABEL).cloned();
        for c in &containers {
            if let Some(uid) = uid_of(&c.labels) {
                now.entry(uid).or_default().push((c.id.clone(), c.state));
            }
        }
        for s in &sandboxes {
            if let Some(uid) = uid_of(&s.labels) {
                now.entry(uid)
                    .or_default()
                    .push((s.id.clone(), s.state + 100));
            }
        }
        for v in now.values_mut() {
            v.sort();
        }
        let changed: HashSet<&String> = now
            .iter()
            .filter(|(uid, v)| last.get(*uid) != Some(v))
            .map(|(uid, _)| uid)
            .chain(last.keys().filter(|uid| !now.contains_key(*uid)))
            .collect();
        for uid in changed {
            me.notify(uid);
        }
        last = now;
    }
}

#[async_trait::async_trait]
impl LogSource for CriRuntime {
    async fn log_file(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> std::result::Result<PathBuf, LogError> {
        let (path, _) = self
            .inner
            .container_log(namespace, pod, container, previous)
            .await?;
        Ok(path)
    }

    async fn still_running(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        path: &Path,
    ) -> bool {
        match self
            .inner
            .container_log(namespace, pod, container, false)
            .await
        {
            Ok((current, running)) => current == path && running,
            Err(_) => false,
        }
    }
}

#[async_trait::async_trait]
impl super::Runtime for CriRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let v = self
            .inner
            .cri
            .rt
            .clone()
            .version(k8s_cri::v1::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(|s| cri_err("asking containerd for its version", &s))?
            .into_inner();
        Ok(RuntimeVersion {
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
        })
    }

    async fn sync_pod(&self, pod: &Pod) -> Result<PodRuntimeStatus> {
        self.inner.sync(pod).await
    }

    async fn kill_pod(&self, pod: &Pod, grace: Duration) -> Result<Option<PodRuntimeStatus>> {
        self.inner.kill(pod, grace).await
    }

    async fn pod_status(&self, uid: &str) -> Result<Option<PodRuntimeStatus>> {
        self.inner.runtime_status(uid).await
    }

    async fn remove_pod(&self, uid: &str) -> Result<()> {
        self.inner.remove(uid).await
    }

    async fn retain(&self, known: &HashSet<String>) -> Result<()> {
        let sandboxes = self
            .inner
            .cri
            .sandboxes(None)
            .await
            .map_err(|s| cri_err("listing sandboxes", &s))?;
        let mut gone: BTreeSet<String> = BTreeSet::new();
        for sb in sandboxes {
            if let Some(uid) = sb.labels.get(client::POD_UID_LABEL)
                && !known.contains(uid)
            {
                gone.insert(uid.clone());
            }
        }
        for uid in self.inner.volumes.pod_dirs() {
            if !known.contains(&uid) {
                gone.insert(uid);
            }
        }
        for uid in &gone {
            tracing::info!(uid, "removing a pod that no longer exists");
            self.inner.remove(uid).await?;
        }
        Ok(())
    }

    fn events(&self) -> BoxStream<'static, RuntimeEvent> {
        let rx = self.inner.events.subscribe();
        tokio_stream_from(rx).boxed()
    }
}

fn tokio_stream_from(
    rx: broadcast::Receiver<RuntimeEvent>,
) -> impl futures::Stream<Item = RuntimeEvent> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(ev) => Some((ev, rx)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((RuntimeEvent::Lagged, rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(v: serde_json::Value) -> Container {
        serde_json::from_value(v).expect("container")
    }

    #[test]
    fn latest_and_untagged_images_are_always_pulled() {
        let c = |image: &str| container(json!({"name": "c", "image": image}));
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("localhost/busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("localhost:5000/busybox")), "Always");
        assert_eq!(pull_policy(&c("nginx:1.21")), "IfNotPresent");
        assert_eq!(pull_policy(&c("nginx@sha256:abc")), "IfNotPresent");
        let never = container(json!({"name": "c", "image": "x", "imagePullPolicy": "Never"}));
        assert_eq!(pull_policy(&never), "Never");
    }
}
