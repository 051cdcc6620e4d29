//! Persistent volumes and claims.

use serde_json::Value;

use super::Kind;
use super::cells::{AGE, Col, Ctx, NAME, access_modes, map_at, name, opt_str, quantity, str_at};

pub const PERSISTENT_VOLUME_KIND: Kind = Kind::new(PERSISTENT_VOLUME, persistent_volume);
pub const PERSISTENT_VOLUME_CLAIM_KIND: Kind =
    Kind::new(PERSISTENT_VOLUME_CLAIM, persistent_volume_claim);

const PERSISTENT_VOLUME: &[Col] = &[
    NAME,
    Col::new(
        "Capacity",
        "string",
        "capacity is the description of the persistent volume's resources and capacity.",
    ),
    Col::new(
        "Access Modes",
        "string",
        "accessModes contains all ways the volume can be mounted.",
    ),
    Col::new(
        "Reclaim Policy",
        "string",
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
    ),
    Col::new(
        "Status",
        "string",
        "phase indicates if a volume is available, bound to a claim, or released by a claim.",
    ),
    Col::new(
        "Claim",
        "string",
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
    ),
    Col::new("StorageClass", "string", "StorageClass of the pv"),
    Col::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    Col::new(
        "Reason",
        "string",
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE,
    Col::new(
        "VolumeMode",
        "string",
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
    )
    .wide(),
];

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn persistent_volume(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let claim = match obj.pointer("/spec/claimRef") {
        Some(r) if r.is_object() => {
            format!("{}/{}", str_at(r, "/namespace"), str_at(r, "/name"))
        }
        _ => String::new(),
    };
    let phase = terminating_or(obj, str_at(obj, "/status/phase"));
    let class = storage_class(obj, "/spec/storageClassName");
    vec![
        name(obj).into(),
        quantity(obj, "/spec/capacity/storage").into(),
        access_modes(obj, "/spec/accessModes").into(),
        str_at(obj, "/spec/persistentVolumeReclaimPolicy").into(),
        phase.into(),
        claim.into(),
        class.into(),
        opt_str(obj, "/spec/volumeAttributesClassName")
            .unwrap_or("<unset>")
            .into(),
        str_at(obj, "/status/reason").into(),
        ctx.age(obj).into(),
        opt_str(obj, "/spec/volumeMode").unwrap_or("<unset>").into(),
    ]
}

const PERSISTENT_VOLUME_CLAIM: &[Col] = &[
    NAME,
    Col::new(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    Col::new(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    Col::new(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    Col::new(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    Col::new("StorageClass", "string", "StorageClass of the pvc"),
    Col::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    Col::new(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    )
    .wide(),
];

fn persistent_volume_claim(obj: &Value, ctx: &Ctx) -> Vec<Value> {
    let phase = terminating_or(obj, str_at(obj, "/status/phase"));
    let volume = str_at(obj, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(obj, "/status/capacity/storage"),
            access_modes(obj, "/status/accessModes"),
        )
    };
    vec![
        name(obj).into(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(obj, "/spec/storageClassName").into(),
        opt_str(obj, "/spec/volumeAttributesClassName")
            .unwrap_or("<unset>")
            .into(),
        ctx.age(obj).into(),
        opt_str(obj, "/spec/volumeMode").unwrap_or("<unset>").into(),
    ]
}

/// `Terminating` once deletion started, otherwise the phase.
fn terminating_or<'a>(obj: &Value, phase: &'a str) -> &'a str {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        "Terminating"
    } else {
        phase
    }
}

/// `GetPersistentVolume(Claim)Class`: the beta annotation wins over the field.
fn storage_class<'a>(obj: &'a Value, field: &str) -> &'a str {
    map_at(obj, "/metadata/annotations")
        .and_then(|a| a.get(BETA_STORAGE_CLASS))
        .and_then(Value::as_str)
        .unwrap_or_else(|| str_at(obj, field))
}
