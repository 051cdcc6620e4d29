//! Pod volumes on this machine, after upstream's volume plugins without attach/detach:
//! each volume becomes a host directory (or file) that the CRI runtime bind-mounts into
//! the containers that ask for it.
//!
//! Directories follow upstream's layout, `<pods_root>/<pod uid>/volumes/<plugin>/<name>`
//! with plugin names such as `kubernetes.io~configmap`; hostPath and claim volumes are
//! their path on the host.
//!
//! | kind | host side |
//! | --- | --- |
//! | emptyDir | directory (0777); `medium: Memory` → a tmpfs, `sizeLimit` its size |
//! | configMap, downwardAPI | directory written by the atomic writer |
//! | secret, projected | same, on a tmpfs (secrets never touch the disk, as upstream) |
//! | hostPath | the path, after the `type` check |
//! | persistentVolumeClaim, ephemeral | the bound PV's hostPath / local path |
//!
//! # Layout
//! - `mod.rs`: [`VolumeManager`] (setup, teardown, pod directories), [`PodVolumes`], the
//!   errors.
//! - `container_mounts.rs`: [`PodVolumes::mounts`], a container's CRI mounts.
//! - `projection.rs`: configMap, secret, downwardAPI and projected payloads, tokens.
//! - `host_path.rs`: hostPath type checks, claims and their PersistentVolumes.
//! - `atomic_writer.rs`: upstream's `..data` symlink-swap layout.
//! - `mounts.rs`: tmpfs mounts, unmounting, the mount table.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use k8s_openapi::api::core::v1::{Pod, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

mod atomic_writer;
mod container_mounts;
mod host_path;
mod mounts;
mod projection;
#[cfg(test)]
mod tests;

use crate::env::api_text;
use projection::{CachedToken, DEFAULT_MODE, TokenKey, file_mode};

const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
const CONFIG_MAP: &str = "kubernetes.io~configmap";
const SECRET: &str = "kubernetes.io~secret";
const DOWNWARD_API: &str = "kubernetes.io~downward-api";
const PROJECTED: &str = "kubernetes.io~projected";

/// Why one volume could not be set up. Display is upstream's message for the cause, the part
/// after `MountVolume.SetUp failed for volume "x" : ` in a FailedMount event.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    /// Upstream's config map manager names the resource in the singular.
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    /// Reading a ConfigMap or Secret failed for another reason than its absence.
    #[error("{}", api_text(.0))]
    Api(kube::Error),
    #[error("failed to fetch token: {}", api_text(.0))]
    Token(kube::Error),
    #[error("failed to fetch token: the TokenRequest has no status")]
    TokenMissing,
    #[error(transparent)]
    FieldPath(#[from] crate::env::FieldPathError),
    #[error("hostPath type check failed: {} is not a {what}", path.display())]
    HostPathType { path: PathBuf, what: &'static str },
    #[error("{0} is an invalid volume type")]
    HostPathInvalidType(String),
    #[error("error processing PVC {namespace}/{claim}: {reason}")]
    Claim {
        namespace: String,
        claim: String,
        reason: String,
    },
    /// A PersistentVolume that cannot be used (its message is upstream's).
    #[error("{0}")]
    Volume(String),
    #[error("no volume plugin matched: {0} volumes are not supported on this node")]
    Unsupported(&'static str),
    /// A payload path the atomic writer refuses (upstream's `validatePath` message).
    #[error("{0}")]
    InvalidPath(String),
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error(
        "mount failed: {status}\nMounting command: mount\nMounting arguments: {args}\nOutput: {output}"
    )]
    Mount {
        status: String,
        args: String,
        output: String,
    },
    /// Several sources of one volume failed (upstream's error aggregate).
    #[error("[{}]", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Multiple(Vec<SetUpError>),
}

impl SetUpError {
    /// None, one error, or the aggregate of several.
    fn aggregate(mut errors: Vec<SetUpError>) -> Option<SetUpError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(SetUpError::Multiple(errors)),
        }
    }
}

/// Errors of [`VolumeManager`] and [`PodVolumes::mounts`]; Display texts are upstream's,
/// since they surface in pod events and container waiting messages.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("pod has no uid")]
    NoUid,
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {reason}")]
    SetUp { volume: String, reason: SetUpError },
    #[error("cannot find volume \"{volume}\" to mount into container \"{container}\"")]
    NoSuchVolume { volume: String, container: String },
    #[error("error SubPath `{0}` must not be an absolute path")]
    SubPathAbsolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    SubPathBacksteps(String),
    #[error("missing value for {0}")]
    SubPathExprMissing(String),
    #[error(
        "failed to create subPath directory for volumeMount \"{mount}\" of container \"{container}\""
    )]
    SubPathCreate {
        mount: String,
        container: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to prepare subPath for volumeMount \"{mount}\" of container \"{container}\"")]
    SubPathPrepare { mount: String, container: String },
    #[error("invalid MountPropagation mode: \"{0}\"")]
    Propagation(String),
    #[error("failed to resolve recursive read-only mode: {0}")]
    RecursiveReadOnly(String),
    #[error("creating {}", path.display())]
    PodDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("UnmountVolume.TearDown failed for {}: {output}", path.display())]
    Unmount { path: PathBuf, output: String },
    #[error("reading the mount table")]
    MountTable(#[source] io::Error),
    #[error("removing {}", path.display())]
    RemovePodDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Sets up and tears down pod volumes under `<agent_dir>/pods`. Shared by all pod workers:
/// calls for different pods may run at once; calls for one pod must not (the pod worker
/// runs one sync at a time per pod).
pub struct VolumeManager {
    root: PathBuf,
    client: kube::Client,
    /// The node's allocatable resources, for downwardAPI `resourceFieldRef` files of a
    /// container without the limit. Written when the node's status changes.
    allocatable: RwLock<Option<BTreeMap<String, Quantity>>>,
    /// Projected service account tokens by pod, account, audience and lifetime; guards only
    /// the map, never held across an await.
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
    /// Set once the API server answered TokenRequest with 404/405: not asked again.
    token_api_missing: AtomicBool,
}

/// A volume ready on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostVolume {
    /// What the container gets bind-mounted (a directory, or a file for hostPath).
    pub host_path: PathBuf,
    /// The plugin mounts it read-only whatever the volumeMount says (configMap, secret,
    /// downwardAPI, projected; a claim with `readOnly`).
    pub read_only: bool,
}

/// The volumes of one pod after [`VolumeManager::setup`], by volume name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodVolumes {
    volumes: BTreeMap<String, HostVolume>,
}

impl VolumeManager {
    /// `pods_root` is `<agent_dir>/pods`; it is created on first use.
    pub fn new(client: kube::Client, pods_root: PathBuf) -> Self {
        VolumeManager {
            root: pods_root,
            client,
            allocatable: RwLock::new(None),
            tokens: Mutex::new(HashMap::new()),
            token_api_missing: AtomicBool::new(false),
        }
    }

    /// Records the node's allocatable resources: a downwardAPI `resourceFieldRef` file for a
    /// limit the container does not set shows this amount (upstream's rule).
    pub fn set_node_allocatable(&self, allocatable: BTreeMap<String, Quantity>) {
        *self
            .allocatable
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(allocatable);
    }

    fn node_allocatable(&self) -> Option<BTreeMap<String, Quantity>> {
        self.allocatable
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn tokens_lock(&self) -> MutexGuard<'_, HashMap<TokenKey, CachedToken>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `<pods_root>/<uid>`.
    pub fn pod_dir(&self, pod_uid: &str) -> PathBuf {
        self.root.join(pod_uid)
    }

    /// Makes every volume of the pod exist on disk. Idempotent, and meant to be called at
    /// each pod sync: configMap, secret, downwardAPI and projected contents are rewritten
    /// (atomically) when their sources changed, which is how updates reach running
    /// containers. Every volume is attempted; the first failure is returned (the others
    /// are logged).
    pub async fn setup(&self, pod: &Pod) -> Result<PodVolumes, VolumeError> {
        let uid = pod
            .metadata
            .uid
            .as_deref()
            .filter(|u| !u.is_empty())
            .ok_or(VolumeError::NoUid)?;
        let volumes_dir = self.pod_dir(uid).join("volumes");
        create_dir(&volumes_dir, 0o750).map_err(|source| VolumeError::PodDir {
            path: volumes_dir.clone(),
            source,
        })?;
        let mut out = PodVolumes::default();
        let mut first_error = None;
        for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            match self.setup_volume(pod, &volumes_dir, volume).await {
                Ok(v) => {
                    out.volumes.insert(volume.name.clone(), v);
                }
                Err(reason) => {
                    let err = VolumeError::SetUp {
                        volume: volume.name.clone(),
                        reason,
                    };
                    tracing::warn!(
                        ns = pod.metadata.namespace.as_deref().unwrap_or(""),
                        pod = pod.metadata.name.as_deref().unwrap_or(""),
                        error = %err,
                        "FailedMount"
                    );
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    async fn setup_volume(
        &self,
        pod: &Pod,
        volumes_dir: &Path,
        v: &Volume,
    ) -> Result<HostVolume, SetUpError> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let dir = |plugin: &str| volumes_dir.join(plugin).join(&v.name);
        let projected = |host_path: PathBuf| HostVolume {
            host_path,
            read_only: true,
        };
        if let Some(e) = &v.empty_dir {
            let path = dir(EMPTY_DIR);
            ensure_dir(&path, 0o777)?;
            match e.medium.as_deref().unwrap_or("") {
                "" => {}
                "Memory" => {
                    let size = e
                        .size_limit
                        .as_ref()
                        .map(|q| apimachinery::quantity::value(&q.0));
                    mounts::ensure_tmpfs(&path, size).await?;
                    set_mode(&path, 0o777)?;
                }
                _ => return Err(SetUpError::Unsupported("hugePages-backed emptyDir")),
            }
            return Ok(HostVolume {
                host_path: path,
                read_only: false,
            });
        }
        if let Some(c) = &v.config_map {
            let optional = c.optional == Some(true);
            let obj =
                projection::get_config_map(&self.client, namespace, &c.name, optional).await?;
            let mode = file_mode(c.default_mode, DEFAULT_MODE);
            let payload =
                projection::config_map_payload(obj.as_ref(), c.items.as_deref(), mode, optional)?;
            let path = dir(CONFIG_MAP);
            ensure_dir(&path, 0o755)?;
            atomic_writer::write(&path, &payload)?;
            return Ok(projected(path));
        }
        if let Some(s) = &v.secret {
            let optional = s.optional == Some(true);
            let name = s.secret_name.as_deref().unwrap_or("");
            let obj = projection::get_secret(&self.client, namespace, name, optional).await?;
            let mode = file_mode(s.default_mode, DEFAULT_MODE);
            let payload =
                projection::secret_payload(obj.as_ref(), s.items.as_deref(), mode, optional)?;
            let path = dir(SECRET);
            ensure_dir(&path, 0o755)?;
            mounts::ensure_tmpfs(&path, None).await?;
            set_mode(&path, 0o755)?;
            atomic_writer::write(&path, &payload)?;
            return Ok(projected(path));
        }
        if let Some(d) = &v.downward_api {
            let mode = file_mode(d.default_mode, DEFAULT_MODE);
            let allocatable = self.node_allocatable();
            let payload = projection::downward_payload(
                pod,
                d.items.as_deref().unwrap_or(&[]),
                mode,
                allocatable.as_ref(),
            )?;
            let path = dir(DOWNWARD_API);
            ensure_dir(&path, 0o755)?;
            atomic_writer::write(&path, &payload)?;
            return Ok(projected(path));
        }
        if let Some(p) = &v.projected {
            let mode = file_mode(p.default_mode, DEFAULT_MODE);
            let payload = self
                .projected_payload(pod, p.sources.as_deref().unwrap_or(&[]), mode)
                .await?;
            let path = dir(PROJECTED);
            ensure_dir(&path, 0o755)?;
            mounts::ensure_tmpfs(&path, None).await?;
            set_mode(&path, 0o755)?;
            atomic_writer::write(&path, &payload)?;
            return Ok(projected(path));
        }
        if let Some(h) = &v.host_path {
            let path = PathBuf::from(&h.path);
            host_path::check_type(&path, h.type_.as_deref().unwrap_or(""))?;
            return Ok(HostVolume {
                host_path: path,
                read_only: false,
            });
        }
        if let Some(c) = &v.persistent_volume_claim {
            let path = host_path::claim_path(&self.client, pod, &c.claim_name, false).await?;
            return Ok(HostVolume {
                host_path: path,
                read_only: c.read_only == Some(true),
            });
        }
        if v.ephemeral.is_some() {
            // Upstream's generic ephemeral volume: the claim `<pod>-<volume>` the ephemeral
            // volume controller created for this pod.
            let claim = format!("{}-{}", pod.metadata.name.as_deref().unwrap_or(""), v.name);
            let path = host_path::claim_path(&self.client, pod, &claim, true).await?;
            return Ok(HostVolume {
                host_path: path,
                read_only: false,
            });
        }
        Err(SetUpError::Unsupported(volume_kind(v)))
    }

    /// Unmounts every mount below the pod's directory (tmpfs volumes) and removes the
    /// directory. Idempotent: a pod without a directory is done. Refuses to remove anything
    /// while a mount remains, so a volume's host data is never deleted through it.
    pub async fn teardown(&self, pod_uid: &str) -> Result<(), VolumeError> {
        self.tokens_lock().retain(|k, _| k.0 != pod_uid);
        let dir = self.pod_dir(pod_uid);
        if pod_uid.is_empty() || fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        let canonical = dir
            .canonicalize()
            .map_err(|source| VolumeError::RemovePodDir {
                path: dir.clone(),
                source,
            })?;
        for m in mounts::mount_points_under(&canonical).map_err(VolumeError::MountTable)? {
            mounts::unmount(&m)
                .await
                .map_err(|output| VolumeError::Unmount { path: m, output })?;
        }
        if let Some(left) = mounts::mount_points_under(&canonical)
            .map_err(VolumeError::MountTable)?
            .into_iter()
            .next()
        {
            return Err(VolumeError::Unmount {
                path: left,
                output: "still mounted".into(),
            });
        }
        let path = dir.clone();
        let removed = tokio::task::spawn_blocking(move || fs::remove_dir_all(&path)).await;
        match removed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Ok(Err(source)) => Err(VolumeError::RemovePodDir { path: dir, source }),
            Err(join) => Err(VolumeError::RemovePodDir {
                path: dir,
                source: io::Error::other(join.to_string()),
            }),
        }
    }

    /// Uids of the pods that have a directory (to clean up after pods that are gone).
    pub fn pod_dirs(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }
}

fn volume_kind(v: &Volume) -> &'static str {
    let kinds: [(&'static str, bool); 22] = [
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("cinder", v.cinder.is_some()),
        ("csi", v.csi.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("flocker", v.flocker.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("image", v.image.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("nfs", v.nfs.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("rbd", v.rbd.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
    ];
    kinds
        .iter()
        .find(|(_, set)| *set)
        .map_or("unknown", |(k, _)| k)
}

/// `mkdir -p` with `mode` for the directories it creates.
fn create_dir(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
}

/// A volume directory with exactly `mode` (the umask would narrow it).
fn ensure_dir(path: &Path, mode: u32) -> Result<(), SetUpError> {
    create_dir(path, mode).map_err(|error| SetUpError::Io {
        op: "mkdir",
        path: path.to_path_buf(),
        error,
    })?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), SetUpError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|error| SetUpError::Io {
        op: "chmod",
        path: path.to_path_buf(),
        error,
    })
}
