//! Containers of a pod spec: upstream's `validateContainers`, `validateInitContainers` and
//! `validateContainerCommon` with ports, volume mounts and devices, resources and the
//! security context (environment lives in `env.rs`, probes and hooks in `probe.rs`).
//!
//! Fields upstream defaults before validating (`terminationMessagePolicy`, `imagePullPolicy`,
//! port `protocol`, probe periods, …) read as their defaults when absent, so an object the
//! apiserver has not defaulted yet validates the same as a defaulted one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::json::{get, int_of, list, map_of, opt_str, sorted, str_of, str_or};
use super::name::{
    inclusive_range_error, is_dns1123_label, is_qualified_name, is_valid_port_name,
    is_valid_port_num,
};
use super::path::{
    IS_NEGATIVE, Path, duplicate, forbidden, invalid, invalid_int, invalid_str, not_found_str,
    not_supported_str, required,
};
use super::quantity::Quantity;

/// Volumes declared by the pod, by name (upstream's `vols` map).
pub(crate) type VolumeMap<'a> = BTreeMap<&'a str, &'a Value>;

/// The pod-level facts container validation needs.
pub(crate) struct PodContext<'a> {
    pub volumes: &'a VolumeMap<'a>,
    /// `terminationGracePeriodSeconds` (defaulted to 30).
    pub grace_period: i64,
}

/// `validateContainers`: regular containers.
pub(crate) fn validate_containers(
    containers: &[Value],
    ctx: &PodContext,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if containers.is_empty() {
        errs.push(required(path, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, ctx, &p));
        let name = str_of(c, "name");
        if !names.insert(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
        }
        if let Some(lc) = c.get("lifecycle").filter(|v| !v.is_null()) {
            errs.extend(super::probe::validate_lifecycle(
                lc,
                ctx,
                &p.child("lifecycle"),
            ));
        }
        errs.extend(super::probe::validate_probe_kind(
            c,
            "livenessProbe",
            ctx,
            &p,
        ));
        errs.extend(super::probe::validate_probe_kind(
            c,
            "readinessProbe",
            ctx,
            &p,
        ));
        errs.extend(super::probe::validate_probe_kind(
            c,
            "startupProbe",
            ctx,
            &p,
        ));
        if !get(c, "restartPolicy").is_null() {
            errs.push(forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

/// `validateInitContainers`.
pub(crate) fn validate_init_containers(
    init: &[Value],
    regular: &[Value],
    ctx: &PodContext,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| str_of(c, "name")).collect();
    for (i, c) in init.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, ctx, &p));
        let restart_always = match opt_str(c, "restartPolicy") {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(not_supported_str(
                    &p.child("restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        let name = str_of(c, "name");
        if names.contains(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
        } else if !name.is_empty() {
            names.insert(name);
        }
        // Upstream checks each init container alone (they run one by one), which also makes
        // the reported index always 0.
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart_always {
            if let Some(lc) = c.get("lifecycle").filter(|v| !v.is_null()) {
                errs.extend(super::probe::validate_lifecycle(
                    lc,
                    ctx,
                    &p.child("lifecycle"),
                ));
            }
            for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
                errs.extend(super::probe::validate_probe_kind(c, kind, ctx, &p));
            }
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if !get(c, field).is_null() {
                    errs.push(forbidden(
                        &p.child(field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
pub(crate) fn validate_container_common(
    c: &Value,
    ctx: &PodContext,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(required(&path.child("name"), ""));
    } else {
        for msg in is_dns1123_label(name) {
            errs.push(invalid_str(&path.child("name"), name, &msg));
        }
    }
    if str_of(c, "image").is_empty() {
        errs.push(required(&path.child("image"), ""));
    }
    match str_or(c, "terminationMessagePolicy", "File") {
        "File" | "FallbackToLogsOnError" => {}
        other => errs.push(not_supported_str(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_ports(list(c, "ports"), &path.child("ports")));
    errs.extend(super::env::validate_env(list(c, "env"), &path.child("env")));
    errs.extend(super::env::validate_env_from(
        list(c, "envFrom"),
        &path.child("envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        c,
        ctx.volumes,
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        c,
        ctx.volumes,
        &path.child("volumeDevices"),
    ));
    if let Some(policy) = opt_str(c, "imagePullPolicy").filter(|p| !p.is_empty())
        && !matches!(policy, "Always" | "IfNotPresent" | "Never")
    {
        errs.push(not_supported_str(
            &path.child("imagePullPolicy"),
            policy,
            &["Always", "IfNotPresent", "Never"],
        ));
    }
    errs.extend(validate_resources(
        get(c, "resources"),
        &path.child("resources"),
    ));
    errs.extend(validate_security_context(
        get(c, "securityContext"),
        &path.child("securityContext"),
    ));
    errs
}

/// `validateContainerPorts`.
fn validate_ports(ports: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(invalid_str(&p.child("name"), name, &msg));
                }
            } else if !names.insert(name) {
                errs.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
            }
        }
        match int_of(port, "containerPort").unwrap_or(0) {
            0 => errs.push(required(&p.child("containerPort"), "")),
            n => {
                for msg in is_valid_port_num(n) {
                    errs.push(invalid_int(&p.child("containerPort"), n, &msg));
                }
            }
        }
        let host_port = int_of(port, "hostPort").unwrap_or(0);
        if host_port != 0 {
            for msg in is_valid_port_num(host_port) {
                errs.push(invalid_int(&p.child("hostPort"), host_port, &msg));
            }
        }
        errs.extend(validate_protocol(port, &p));
    }
    errs
}

/// A port `protocol`, defaulted to TCP; upstream lists the supported set sorted.
pub(crate) fn validate_protocol(port: &Value, p: &Path) -> Option<FieldError> {
    let protocol = str_or(port, "protocol", "TCP");
    (!matches!(protocol, "TCP" | "UDP" | "SCTP"))
        .then(|| not_supported_str(&p.child("protocol"), protocol, &["SCTP", "TCP", "UDP"]))
}

/// `checkHostPortConflicts`: the same protocol/hostIP/hostPort may be used once.
fn host_port_conflicts(containers: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in list(c, "ports").iter().enumerate() {
            let host_port = int_of(port, "hostPort").unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{host_port}",
                str_or(port, "protocol", "TCP"),
                str_of(port, "hostIP")
            );
            if seen.contains(&key) {
                let p = path.index(ci).child("ports").index(pi).child("hostPort");
                errs.push(duplicate(&p, BadValue::Str(key)));
            } else {
                seen.insert(key);
            }
        }
    }
    errs
}

/// `validateLocalDescendingPath`.
pub(crate) fn validate_local_descending_path(target: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(invalid_str(path, target, "must be a relative path"));
    }
    if target
        .replace('\\', "/")
        .split('/')
        .any(|part| part == "..")
    {
        errs.push(invalid_str(path, target, "must not contain '..'"));
    }
    errs
}

/// `ValidateVolumeMounts`.
fn validate_volume_mounts(c: &Value, volumes: &VolumeMap, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let devices: BTreeMap<&str, &str> = list(c, "volumeDevices")
        .iter()
        .map(|d| (str_of(d, "name"), str_of(d, "devicePath")))
        .collect();
    let mut mount_points = BTreeSet::new();
    for (i, m) in list(c, "volumeMounts").iter().enumerate() {
        let p = path.index(i);
        let name = str_of(m, "name");
        let mount_path = str_of(m, "mountPath");
        if name.is_empty() {
            errs.push(required(&p.child("name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(not_found_str(&p.child("name"), name));
        }
        if mount_path.is_empty() {
            errs.push(required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(invalid_str(
                &p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(name) {
            errs.push(invalid_str(
                &p.child("name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == mount_path) {
            errs.push(invalid_str(
                &p.child("mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        // Upstream passes the list path here, not the item's.
        let sub_path = str_of(m, "subPath");
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(
                sub_path,
                &path.child("subPath"),
            ));
        }
        let sub_path_expr = str_of(m, "subPathExpr");
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(invalid_str(
                    &p.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_path_expr,
                &path.child("subPathExpr"),
            ));
        }
    }
    errs
}

/// `ValidateVolumeDevices` (block volumes must come from a PVC or an ephemeral volume).
fn validate_volume_devices(c: &Value, volumes: &VolumeMap, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for (i, d) in list(c, "volumeDevices").iter().enumerate() {
        let p = path.index(i);
        let name = str_of(d, "name");
        let device_path = str_of(d, "devicePath");
        if name.is_empty() {
            errs.push(required(&p.child("name"), ""));
        }
        if names.contains(name) {
            errs.push(invalid_str(&p.child("name"), name, "must be unique"));
        }
        match volumes.get(name) {
            None => errs.push(not_found_str(&p.child("name"), name)),
            Some(v)
                if get(v, "persistentVolumeClaim").is_null() && get(v, "ephemeral").is_null() =>
            {
                errs.push(invalid_str(&p.child("name"), name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"));
            }
            Some(_) => {}
        }
        if device_path.is_empty() {
            errs.push(required(&p.child("devicePath"), ""));
        }
        if !paths.insert(device_path) {
            errs.push(invalid_str(
                &p.child("devicePath"),
                device_path,
                "must be unique",
            ));
        }
        if !name.is_empty() {
            names.insert(name);
        }
    }
    errs
}

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

pub(crate) fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

const STANDARD_RESOURCES: [&str; 19] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// `validateContainerResourceName`.
pub(crate) fn validate_container_resource_name(name: &str, path: &Path) -> Vec<FieldError> {
    let msgs = is_qualified_name(name);
    if !msgs.is_empty() {
        return msgs.iter().map(|m| invalid_str(path, name, m)).collect();
    }
    let mut errs = Vec::new();
    if !name.contains('/') {
        let standard = STANDARD_RESOURCES.contains(&name)
            || is_hugepages(name)
            || name.starts_with("requests.hugepages-");
        if !standard {
            errs.push(invalid_str(
                path,
                name,
                "must be a standard resource type or fully qualified",
            ));
        }
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errs.push(invalid_str(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(invalid_str(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// `ValidateResourceQuantityValue`.
fn validate_quantity_value(
    name: &str,
    raw: &Value,
    path: &Path,
) -> (Option<Quantity>, Vec<FieldError>) {
    let text = raw
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| raw.to_string());
    let Some(q) = Quantity::parse(&text) else {
        return (
            None,
            vec![invalid_str(
                path,
                &text,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            )],
        );
    };
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(invalid_str(path, &q.canonical(), IS_NEGATIVE));
    }
    if is_extended_resource(name) && !q.is_integer() {
        errs.push(invalid(
            path,
            BadValue::Raw(format!("resource.Quantity{{s:{:?}}}", q.canonical())),
            "must be an integer",
        ));
    }
    (Some(q), errs)
}

/// `validateResourceRequirements` for a container.
pub(crate) fn validate_resources(res: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (lim_path, req_path) = (path.child("limits"), path.child("requests"));
    let mut limits = BTreeMap::new();
    let (mut lim_cpu_mem, mut req_cpu_mem, mut lim_huge, mut req_huge) =
        (false, false, false, false);
    for (name, raw) in map_of(res, "limits").map(sorted).unwrap_or_default() {
        let p = lim_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let (q, e) = validate_quantity_value(name, raw, &p);
        errs.extend(e);
        if let Some(q) = q {
            limits.insert(name, q);
        }
        lim_huge |= is_hugepages(name);
        lim_cpu_mem |= matches!(name, "cpu" | "memory");
    }
    for (name, raw) in map_of(res, "requests").map(sorted).unwrap_or_default() {
        let p = req_path.key(name);
        errs.extend(validate_container_resource_name(name, &p));
        let (q, e) = validate_quantity_value(name, raw, &p);
        errs.extend(e);
        let overcommit = is_native_resource(name) && !is_hugepages(name);
        match (q, limits.get(name)) {
            (Some(q), Some(limit)) => {
                if q != *limit && !overcommit {
                    errs.push(invalid_str(
                        &req_path,
                        &q.canonical(),
                        &format!("must be equal to {name} limit of {}", limit.canonical()),
                    ));
                } else if q > *limit {
                    errs.push(invalid_str(
                        &req_path,
                        &q.canonical(),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            limit.canonical()
                        ),
                    ));
                }
            }
            (_, None) if !overcommit => {
                errs.push(required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            _ => {}
        }
        req_huge |= is_hugepages(name);
        req_cpu_mem |= matches!(name, "cpu" | "memory");
    }
    if !lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge) {
        errs.push(forbidden(path, "HugePages require cpu or memory"));
    }
    errs
}

/// The numeric parts of `ValidateSecurityContext`.
fn validate_security_context(sc: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for field in ["runAsUser", "runAsGroup"] {
        if let Some(id) = int_of(sc, field)
            && !(0..=0xffff_ffff).contains(&id)
        {
            errs.push(invalid_int(
                &path.child(field),
                id,
                &inclusive_range_error(0, 0xffff_ffff),
            ));
        }
    }
    if let Some(pm) = opt_str(sc, "procMount")
        && !matches!(pm, "Default" | "Unmasked")
    {
        errs.push(not_supported_str(
            &path.child("procMount"),
            pm,
            &["Default", "Unmasked"],
        ));
    }
    errs
}
