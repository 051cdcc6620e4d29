//! PersistentVolumes: upstream's `ValidatePersistentVolume`, `ValidatePersistentVolumeSpec`
//! (not inline) and `ValidatePersistentVolumeUpdate` from `pkg/apis/core/validation`.
//!
//! The reclaim policy defaults to `Retain` and the volume mode to `Filesystem`. Of the volume
//! sources, `hostPath`, `nfs`, `local` and `csi` get their own checks; the others are only
//! counted (exactly one source is allowed). `ValidatePersistentVolumeUpdate` does not check
//! metadata immutability itself; the registry's common-field checks do, before it.

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::json::{get, list, opt_str, sorted, str_of};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_dns1123_subdomain, name_is_dns_subdomain};
use super::path::{
    FIELD_IMMUTABLE, Path, forbidden, invalid, invalid_str, not_supported, required, too_long,
};
use super::quantity::{Quantity, go_value};
use super::scheduling::validate_node_selector_term;
use super::volume::{validate_host_path, validate_nfs};

/// `ReadWriteOncePod` sorts last, as `sets.List` returns them.
pub(crate) const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// Volume sources in upstream's order: the JSON field and the child name its "more than 1
/// volume type" error uses (`cephfs` is reported as `cephFS`; `flexVolume` never is).
const SOURCES: [(&str, &str); 22] = [
    ("hostPath", "hostPath"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("nfs", "nfs"),
    ("rbd", "rbd"),
    ("quobyte", "quobyte"),
    ("cephfs", "cephFS"),
    ("iscsi", "iscsi"),
    ("cinder", "cinder"),
    ("fc", "fc"),
    ("flexVolume", ""),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("scaleIO", "scaleIO"),
    ("local", "local"),
    ("storageos", "storageos"),
    ("csi", "csi"),
];

/// `%#v` of a `core.ResourceList` (keys sorted, as `fmt` prints maps).
fn resource_list(v: &Value) -> String {
    match v.as_object() {
        None => "core.ResourceList(nil)".to_string(),
        Some(m) => {
            let parts: Vec<String> = sorted(m)
                .into_iter()
                .map(|(k, q)| format!("{}:{}", go_quote(k), go_value(&quantity_text(q))))
                .collect();
            format!("core.ResourceList{{{}}}", parts.join(", "))
        }
    }
}

fn quantity_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// `ValidatePersistentVolume`.
pub(crate) fn validate_persistent_volume(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, false, name_is_dns_subdomain);
    errs.extend(validate_spec(get(obj, "spec")));
    errs
}

fn validate_spec(spec: &Value) -> Vec<FieldError> {
    let p = Path::new("spec");
    let mut errs = Vec::new();
    let modes = list(spec, "accessModes");
    let mp = p.child("accessModes");
    if modes.is_empty() {
        errs.push(required(&mp, ""));
    }
    let (mut once_pod, mut other) = (false, false);
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            errs.push(not_supported(
                &mp,
                BadValue::Str(m.to_string()),
                &ACCESS_MODES,
            ));
        } else if m == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            other = true;
        }
    }
    if once_pod && other {
        errs.push(forbidden(
            &mp,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs.extend(validate_capacity(
        get(spec, "capacity"),
        &p.child("capacity"),
    ));
    let policy = opt_str(spec, "persistentVolumeReclaimPolicy").unwrap_or("Retain");
    if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
        errs.push(not_supported(
            &p.child("persistentVolumeReclaimPolicy"),
            BadValue::Str(policy.to_string()),
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let affinity = get(spec, "nodeAffinity");
    if !affinity.is_null() {
        errs.extend(validate_node_affinity(affinity, &p.child("nodeAffinity")));
    }
    let mut count = 0;
    for (field, child) in SOURCES {
        let src = get(spec, field);
        if src.is_null() {
            continue;
        }
        if count > 0 && !child.is_empty() {
            errs.push(forbidden(
                &p.child(child),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        let sp = p.child(field);
        match field {
            "hostPath" => errs.extend(validate_host_path(src, &sp)),
            "nfs" => errs.extend(validate_nfs(src, &sp)),
            "local" => {
                let path = str_of(src, "path");
                if path.is_empty() {
                    errs.push(required(&sp.child("path"), ""));
                } else if path.replace('\\', "/").split('/').any(|s| s == "..") {
                    errs.push(invalid_str(
                        &sp.child("path"),
                        path,
                        "must not contain '..'",
                    ));
                }
                if affinity.is_null() {
                    errs.push(required(
                        &p.child("nodeAffinity"),
                        "Local volume requires node affinity",
                    ));
                }
            }
            "csi" => errs.extend(validate_csi_source(src, &sp)),
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(&p, "must specify a volume type"));
    }
    let host_path = str_of(get(spec, "hostPath"), "path");
    if !get(spec, "hostPath").is_null() && clean_is_root(host_path) && policy == "Recycle" {
        errs.push(forbidden(
            &p.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    let class = str_of(spec, "storageClassName");
    if !class.is_empty() {
        errs.extend(
            name_is_dns_subdomain(class, false)
                .iter()
                .map(|m| invalid_str(&p.child("storageClassName"), class, m)),
        );
    }
    if let Some(mode) = opt_str(spec, "volumeMode")
        && !matches!(mode, "Block" | "Filesystem")
    {
        errs.push(not_supported(
            &p.child("volumeMode"),
            BadValue::Str(mode.to_string()),
            &["Block", "Filesystem"],
        ));
    }
    errs
}

/// Whether `path.Clean(p)` is `/`.
fn clean_is_root(p: &str) -> bool {
    p.starts_with('/') && p.split('/').all(|s| s.is_empty() || s == "." || s == "..")
}

/// Capacity: exactly `storage`, each quantity non-negative and positive.
fn validate_capacity(capacity: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let m = map_of_value(capacity);
    if m.is_empty() {
        errs.push(required(p, ""));
    }
    if !m.iter().any(|(k, _)| *k == "storage") || m.len() > 1 {
        errs.push(not_supported(
            p,
            BadValue::Raw(resource_list(capacity)),
            &["storage"],
        ));
    }
    for (k, q) in m {
        let kp = p.key(k);
        let text = quantity_text(q);
        let Some(parsed) = Quantity::parse(&text) else {
            continue;
        };
        let whole = parsed.whole_value();
        if whole < 0 {
            errs.push(invalid(
                &kp,
                BadValue::Raw(whole.to_string()),
                "must be a valid resource quantity",
            ));
        }
        if !parsed.is_positive() {
            errs.push(invalid_str(
                &kp,
                &parsed.canonical(),
                "must be greater than zero",
            ));
        }
    }
    errs
}

fn map_of_value(v: &Value) -> Vec<(&str, &Value)> {
    v.as_object().map(sorted).unwrap_or_default()
}

/// `validateVolumeNodeAffinity` with `ValidateNodeSelector`.
fn validate_node_affinity(affinity: &Value, p: &Path) -> Vec<FieldError> {
    let req = get(affinity, "required");
    let rp = p.child("required");
    if req.is_null() {
        return vec![required(&rp, "must specify required node constraints")];
    }
    let tp = rp.child("nodeSelectorTerms");
    let terms = list(req, "nodeSelectorTerms");
    if terms.is_empty() {
        return vec![required(&tp, "must have at least one node selector term")];
    }
    terms
        .iter()
        .enumerate()
        .flat_map(|(i, t)| validate_node_selector_term(t, false, &tp.index(i)))
        .collect()
}

/// `validateCSIPersistentVolumeSource` (driver and volume handle).
fn validate_csi_source(src: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = validate_csi_driver_name(str_of(src, "driver"), &p.child("driver"));
    if str_of(src, "volumeHandle").is_empty() {
        errs.push(required(&p.child("volumeHandle"), ""));
    }
    errs
}

/// `ValidateCSIDriverName`: no early return, so an empty name gets both errors.
pub(crate) fn validate_csi_driver_name(name: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(required(p, ""));
    }
    if name.len() > 63 {
        errs.push(too_long(p, 63));
    }
    errs.extend(
        is_dns1123_subdomain(&name.to_lowercase())
            .iter()
            .map(|m| invalid_str(p, name, m)),
    );
    errs
}

/// Metadata update (the registry's common fields), then `ValidatePersistentVolumeUpdate`:
/// the volume itself, an immutable source, and the immutable volume mode (reported at the
/// top-level path `volumeMode`, as upstream does).
pub(crate) fn validate_persistent_volume_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_persistent_volume(&new));
    let source_changed = SOURCES
        .iter()
        .any(|(field, _)| get(ns, field) != get(os, field));
    if source_changed {
        // Upstream appends a `cmp.Diff` of the two sources, which is not reproduced.
        errs.push(forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            "spec.persistentvolumesource is immutable after creation\n",
        ));
    }
    let mode = |s: &Value| opt_str(s, "volumeMode").unwrap_or("Filesystem").to_string();
    if mode(ns) != mode(os) {
        errs.push(invalid_str(
            &Path::new("volumeMode"),
            &mode(ns),
            FIELD_IMMUTABLE,
        ));
    }
    errs
}
