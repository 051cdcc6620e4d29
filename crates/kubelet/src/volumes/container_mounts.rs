//! The CRI mounts of one container: upstream's `makeMounts` for the volumes of
//! [`PodVolumes`] (subPath / subPathExpr, read-only, propagation, recursive read-only).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::Container;

use super::{HostVolume, PodVolumes, VolumeError};

impl PodVolumes {
    /// The host side of the pod's volume `name`.
    pub fn get(&self, name: &str) -> Option<&HostVolume> {
        self.volumes.get(name)
    }

    /// The CRI mounts for `container`'s volumeMounts, as upstream's `makeMounts`:
    /// `subPathExpr` expanded with the container's environment `env` (every referenced
    /// variable must have a value), `subPath` created inside the volume when missing and
    /// kept from escaping it, read-only when the mount or the volume says so, propagation
    /// mapped to the CRI's. Errors carry upstream's messages.
    pub fn mounts(
        &self,
        container: &Container,
        env: &[(String, String)],
    ) -> Result<Vec<Mount>, VolumeError> {
        let mut out = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let vol = self
                .volumes
                .get(&m.name)
                .ok_or_else(|| VolumeError::NoSuchVolume {
                    volume: m.name.clone(),
                    container: container.name.clone(),
                })?;
            let sub_path = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                Some(expr) => expand_sub_path(expr, env)?,
                None => m.sub_path.clone().unwrap_or_default(),
            };
            let host_path = if sub_path.is_empty() {
                vol.host_path.clone()
            } else {
                if sub_path.starts_with('/') {
                    return Err(VolumeError::SubPathAbsolute(sub_path));
                }
                if sub_path.split('/').any(|c| c == "..") {
                    return Err(VolumeError::SubPathBacksteps(sub_path));
                }
                prepare_sub_path(&vol.host_path, &sub_path, &m.name, &container.name)?
            };
            let container_path = if m.mount_path.starts_with('/') {
                m.mount_path.clone()
            } else {
                format!("/{}", m.mount_path)
            };
            let propagation = match m.mount_propagation.as_deref() {
                None | Some("None") => MountPropagation::PropagationPrivate,
                Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
                Some("Bidirectional") => MountPropagation::PropagationBidirectional,
                Some(other) => return Err(VolumeError::Propagation(other.to_string())),
            };
            let read_only = m.read_only == Some(true) || vol.read_only;
            out.push(Mount {
                container_path,
                host_path: host_path.to_string_lossy().into_owned(),
                readonly: read_only,
                propagation: propagation as i32,
                recursive_read_only: recursive_read_only(m)?,
                ..Default::default()
            });
        }
        Ok(out)
    }
}

/// Upstream's `ExpandContainerVolumeMounts`: every `$(VAR)` must name a variable with a
/// non-empty value.
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String, VolumeError> {
    let mut missing = std::collections::BTreeSet::new();
    let expanded = crate::env::expand_mapped(expr, |name| {
        let value = env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if value.is_empty() {
            missing.insert(name.to_string());
        }
        value
    });
    if missing.is_empty() {
        Ok(expanded)
    } else {
        Err(VolumeError::SubPathExprMissing(
            missing.into_iter().collect::<Vec<_>>().join(", "),
        ))
    }
}

/// `root/sub`, created (with the volume root's mode) when missing, and resolved to a real
/// path that must stay inside the volume: a symlink in the volume cannot make a container
/// mount a host path outside it (what upstream's safe subpath handling guarantees).
fn prepare_sub_path(
    root: &Path,
    sub: &str,
    mount: &str,
    container: &str,
) -> Result<PathBuf, VolumeError> {
    let prepare = || VolumeError::SubPathPrepare {
        mount: mount.to_string(),
        container: container.to_string(),
    };
    let root = root.canonicalize().map_err(|_| prepare())?;
    let target = root.join(sub);
    if fs::symlink_metadata(&target).is_err() {
        // Check the deepest existing ancestor before creating anything below it.
        let mut existing = target.as_path();
        while fs::symlink_metadata(existing).is_err() {
            existing = existing.parent().ok_or_else(prepare)?;
        }
        let resolved = existing.canonicalize().map_err(|_| prepare())?;
        if !resolved.starts_with(&root) {
            return Err(prepare());
        }
        let mode = fs::metadata(&root)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o755);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(&target)
            .map_err(|source| VolumeError::SubPathCreate {
                mount: mount.to_string(),
                container: container.to_string(),
                source,
            })?;
    }
    let resolved = target.canonicalize().map_err(|_| prepare())?;
    if !resolved.starts_with(&root) || resolved.components().any(|c| c == Component::ParentDir) {
        return Err(prepare());
    }
    Ok(resolved)
}

/// Upstream's `resolveRecursiveReadOnly`. `IfPossible` asks for none: whether the runtime
/// supports it is not known here; `Enabled` asks the runtime, which refuses if it cannot.
fn recursive_read_only(m: &k8s_openapi::api::core::v1::VolumeMount) -> Result<bool, VolumeError> {
    let mode = match m.recursive_read_only.as_deref() {
        None | Some("Disabled") => return Ok(false),
        Some(mode) => mode,
    };
    if m.read_only != Some(true) {
        return Err(VolumeError::RecursiveReadOnly(format!(
            "volume \"{}\" requested recursive read-only mode, but it is not read-only",
            m.name
        )));
    }
    if let Some(p) = m.mount_propagation.as_deref().filter(|p| *p != "None") {
        return Err(VolumeError::RecursiveReadOnly(format!(
            "volume \"{}\" requested recursive read-only mode, but it is not compatible with propagation \"{p}\"",
            m.name
        )));
    }
    match mode {
        "IfPossible" => Ok(false),
        "Enabled" => Ok(true),
        other => Err(VolumeError::RecursiveReadOnly(format!(
            "unknown RecursiveReadOnly mode \"{other}\""
        ))),
    }
}
