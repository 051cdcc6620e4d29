//! Pod volumes: upstream's `ValidateVolumes` and `validateVolumeSource` (exactly one source
//! per volume, plus the checks of the common sources).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::container::VolumeMap;
use super::json::{get, int_of, opt_str, str_of};
use super::name::is_dns1123_label;
use super::path::{
    Path, duplicate, forbidden, invalid_int, invalid_str, not_supported_str, required,
};
use super::quantity::Quantity;

/// Volume sources in upstream's checking order, with the child name used in the "more than 1
/// volume type" error (upstream's own spellings, typos included).
const VOLUME_SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `ValidateVolumes`: returns the volumes that validated (mounts may only reference those).
pub(crate) fn validate_volumes<'a>(
    volumes: &'a [Value],
    pod_name: Option<&str>,
    is_pod: bool,
    path: &Path,
) -> (VolumeMap<'a>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut map = VolumeMap::new();
    let created_pvcs: BTreeSet<String> = match pod_name.filter(|n| !n.is_empty()) {
        Some(pod) => volumes
            .iter()
            .filter(|v| !get(v, "ephemeral").is_null())
            .map(|v| format!("{pod}-{}", str_of(v, "name")))
            .collect(),
        None => BTreeSet::new(),
    };
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(vol, "name");
        let mut el = validate_volume_source(vol, is_pod, &p);
        if name.is_empty() {
            el.push(required(&p.child("name"), ""));
        } else {
            el.extend(
                is_dns1123_label(name)
                    .iter()
                    .map(|m| invalid_str(&p.child("name"), name, m)),
            );
        }
        if map.contains_key(name) {
            el.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
        }
        if el.is_empty() {
            map.insert(name, vol);
        } else {
            errs.extend(el);
        }
        let claim = str_of(get(vol, "persistentVolumeClaim"), "claimName");
        if !get(vol, "persistentVolumeClaim").is_null() && created_pvcs.contains(claim) {
            errs.push(invalid_str(
                &p.child("persistentVolumeClaim").child("claimName"),
                claim,
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (map, errs)
}

/// `validateVolumeSource`: exactly one source, plus the checks of the common sources.
fn validate_volume_source(vol: &Value, is_pod: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    for (field, child) in VOLUME_SOURCES {
        let src = get(vol, field);
        if src.is_null() {
            continue;
        }
        if count > 0 {
            errs.push(forbidden(
                &path.child(child),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        let p = path.child(field);
        match field {
            "emptyDir" => {
                let limit = opt_str(src, "sizeLimit").and_then(Quantity::parse);
                if limit.is_some_and(|q| q.is_negative()) {
                    errs.push(forbidden(
                        &p.child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    ));
                }
            }
            "hostPath" => errs.extend(validate_host_path(src, &p)),
            "secret" | "configMap" => {
                let name_field = if field == "secret" {
                    "secretName"
                } else {
                    "name"
                };
                if str_of(src, name_field).is_empty() {
                    errs.push(required(&p.child(name_field), ""));
                }
                if let Some(mode) = int_of(src, "defaultMode").filter(|m| !(0..=0o777).contains(m))
                {
                    errs.push(invalid_int(&p.child("defaultMode"), mode, FILE_MODE_MSG));
                }
            }
            "persistentVolumeClaim" if str_of(src, "claimName").is_empty() => {
                errs.push(required(&p.child("claimName"), ""));
            }
            "nfs" => errs.extend(validate_nfs(src, &p)),
            "image" if is_pod && str_of(src, "reference").is_empty() => {
                errs.push(required(&p.child("reference"), ""));
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a volume type"));
    }
    errs
}

/// `validateHostPathVolumeSource` (pods and PersistentVolumes).
pub(crate) fn validate_host_path(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let host_path = str_of(src, "path");
    if host_path.is_empty() {
        errs.push(required(&p.child("path"), ""));
        return errs;
    }
    if host_path.replace('\\', "/").split('/').any(|s| s == "..") {
        errs.push(invalid_str(
            &p.child("path"),
            host_path,
            "must not contain '..'",
        ));
    }
    let types = [
        "",
        "BlockDevice",
        "CharDevice",
        "Directory",
        "DirectoryOrCreate",
        "File",
        "FileOrCreate",
        "Socket",
    ];
    if let Some(t) = opt_str(src, "type").filter(|t| !types.contains(t)) {
        errs.push(not_supported_str(&p.child("type"), t, &types));
    }
    errs
}

/// `validateNFSVolumeSource` (pods and PersistentVolumes).
pub(crate) fn validate_nfs(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if str_of(src, "server").is_empty() {
        errs.push(required(&p.child("server"), ""));
    }
    let nfs_path = str_of(src, "path");
    if nfs_path.is_empty() {
        errs.push(required(&p.child("path"), ""));
    } else if !nfs_path.starts_with('/') {
        errs.push(invalid_str(
            &p.child("path"),
            nfs_path,
            "must be an absolute path",
        ));
    }
    errs
}
