//! hostPath volumes (with upstream's `type` checks) and persistentVolumeClaim / ephemeral
//! volumes whose bound PersistentVolume is a hostPath or local volume: both are a path on
//! this machine that the container gets bind-mounted.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Api;

use super::SetUpError;

/// Upstream's `checkTypeInternal`: `DirectoryOrCreate` / `FileOrCreate` create what is
/// missing (0755 directory with parents, 0644 empty file), the other types must already
/// be there; `""` checks nothing.
pub(crate) fn check_type(path: &Path, kind: &str) -> Result<(), SetUpError> {
    let meta = fs::metadata(path).ok();
    let not_a = |what: &'static str| SetUpError::HostPathType {
        path: path.to_path_buf(),
        what,
    };
    let is = |f: &dyn Fn(&fs::Metadata) -> bool| meta.as_ref().is_some_and(f);
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|error| SetUpError::Io {
                op: "mkdir",
                path: path.to_path_buf(),
                error,
            }),
        "DirectoryOrCreate" | "Directory" => {
            is(&|m| m.is_dir()).then_some(()).ok_or(not_a("directory"))
        }
        "FileOrCreate" if meta.is_none() => fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(|error| SetUpError::Io {
                op: "open",
                path: path.to_path_buf(),
                error,
            }),
        "FileOrCreate" | "File" => is(&|m| m.is_file()).then_some(()).ok_or(not_a("file")),
        "Socket" => is(&|m| m.file_type().is_socket())
            .then_some(())
            .ok_or(not_a("socket file")),
        "CharDevice" => is(&|m| m.file_type().is_char_device())
            .then_some(())
            .ok_or(not_a("character device")),
        "BlockDevice" => is(&|m| m.file_type().is_block_device())
            .then_some(())
            .ok_or(not_a("block device")),
        other => Err(SetUpError::HostPathInvalidType(other.to_string())),
    }
}

/// The host path behind a claim: the claim must be Bound and its PersistentVolume a
/// hostPath or local volume. `owner`: for an ephemeral volume, the pod that must own the
/// claim. Errors read like upstream's desired-state populator's.
pub(crate) async fn claim_path(
    client: &kube::Client,
    pod: &Pod,
    claim: &str,
    ephemeral: bool,
) -> Result<PathBuf, SetUpError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let pvc_err = |reason: String| SetUpError::Claim {
        namespace: namespace.to_string(),
        claim: claim.to_string(),
        reason,
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvc = match crate::api::retry(|| claims.get_opt(claim)).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err(pvc_err(format!(
                "failed to fetch PVC from API server: persistentvolumeclaims \"{claim}\" not found"
            )));
        }
        Err(e) => {
            return Err(pvc_err(format!(
                "failed to fetch PVC from API server: {}",
                crate::env::api_text(&e)
            )));
        }
    };
    if ephemeral {
        let pod_uid = pod.metadata.uid.as_deref().unwrap_or("");
        let owned = pvc
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == pod_uid);
        if !owned {
            return Err(pvc_err(format!(
                "PVC {namespace}/{claim} was not created for pod {namespace}/{} (pod is not owner)",
                pod.metadata.name.as_deref().unwrap_or("")
            )));
        }
    }
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(pvc_err("PVC is being deleted".into()));
    }
    let phase = pvc.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Bound") {
        return Err(pvc_err("PVC is not bound".into()));
    }
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| pvc_err("PVC has empty pvc.Spec.VolumeName".into()))?;

    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = match crate::api::retry(|| volumes.get_opt(&pv_name)).await {
        Ok(Some(pv)) => pv,
        Ok(None) => {
            return Err(SetUpError::Volume(format!(
                "failed to fetch PV {pv_name} from API server: persistentvolumes \"{pv_name}\" not found"
            )));
        }
        Err(e) => {
            return Err(SetUpError::Volume(format!(
                "failed to fetch PV {pv_name} from API server: {}",
                crate::env::api_text(&e)
            )));
        }
    };
    let spec = pv.spec.unwrap_or_default();
    let Some(claim_ref) = spec.claim_ref.as_ref() else {
        return Err(SetUpError::Volume(format!(
            "found PV object {pv_name} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
        )));
    };
    let claim_uid = pvc.metadata.uid.as_deref().unwrap_or("");
    if claim_ref.uid.as_deref().unwrap_or("") != claim_uid {
        return Err(SetUpError::Volume(format!(
            "found PV object {pv_name} but its pv.Spec.ClaimRef.UID {} does not point to claim.UID {claim_uid}",
            claim_ref.uid.as_deref().unwrap_or("")
        )));
    }
    if let Some(hp) = &spec.host_path {
        let path = PathBuf::from(&hp.path);
        check_type(&path, hp.type_.as_deref().unwrap_or(""))?;
        return Ok(path);
    }
    if let Some(local) = &spec.local {
        let path = PathBuf::from(&local.path);
        return match fs::metadata(&path) {
            Ok(_) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(SetUpError::Volume(format!(
                "path \"{}\" does not exist",
                local.path
            ))),
            Err(error) => Err(SetUpError::Io {
                op: "stat",
                path,
                error,
            }),
        };
    }
    Err(SetUpError::Volume(format!(
        "failed to get Plugin from volumeSpec for volume \"{pv_name}\" err=no volume plugin matched (this node mounts only hostPath and local PersistentVolumes)"
    )))
}
