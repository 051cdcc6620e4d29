//! Pod, PodSpec, container and volume defaults.
//!
//! Mirrors `pkg/apis/core/v1`: `SetDefaults_Pod` (Pods only: requests from limits,
//! `enableServiceLinks`, host-network ports), `SetDefaults_PodSpec` (every pod spec, templates
//! included), `SetDefaults_Container`/`SetDefaults_EphemeralContainer`, `SetDefaults_Probe`,
//! `SetDefaults_HTTPGetAction`, `SetDefaults_ObjectFieldSelector`, `SetDefaults_Volume` and the
//! volume-source defaulters (`SetDefaults_{Secret,ConfigMap,DownwardAPI,Projected,HostPath}…`,
//! `SetDefaults_ServiceAccountTokenProjection`, `SetDefaults_PersistentVolumeClaimSpec`) plus
//! the `+default=` tags of `k8s.io/api/core/v1` (port protocols, `grpc.service`, the RBD,
//! iSCSI, AzureDisk and ScaleIO fields), walked the way `SetObjectDefaults_Pod` walks them.
//!
//! Also the v1 conversion quirks a client sees: `spec.serviceAccount` mirrors
//! `spec.serviceAccountName`, and `status.podIP`/`hostIP` agree with `podIPs`/`hostIPs`.

use serde_json::{Value, json};

use super::admission;
use super::fields::{
    Map, child, child_or_empty, default_int, default_ptr, default_str, fill_missing, is_blank,
    items, str_of,
};
use super::image;

/// `SecretVolumeSourceDefaultMode` and friends: 0644.
const DEFAULT_MODE: i64 = 0o644;

/// A Pod: the template defaults plus the Pod-only ones and the pod admission plugins.
pub(super) fn pod(obj: &mut Map) {
    if let Some(spec) = child(obj, "spec") {
        pod_only(spec);
        spec_defaults(spec);
    }
    admission::pod(obj);
    // Admission may have just named the service account; the v1 output mirrors it.
    if let Some(spec) = child(obj, "spec") {
        mirror_service_account(spec);
    }
    if let Some(status) = child(obj, "status") {
        sync_ips(status, "podIP", "podIPs");
        sync_ips(status, "hostIP", "hostIPs");
    }
}

/// A PodTemplateSpec (in a PodTemplate or a workload): its pod spec's defaults.
pub(super) fn template(template: &mut Map) {
    if let Some(spec) = child(template, "spec") {
        spec_defaults(spec);
    }
}

/// `SetDefaults_Pod`: defaults upstream keeps out of templates so that adding one never
/// changes every workload's template (kubernetes/kubernetes#69445).
fn pod_only(spec: &mut Map) {
    for list in ["containers", "initContainers"] {
        for container in items(spec, list) {
            if let Some(resources) = child(container, "resources") {
                fill_missing(resources, "requests", "limits");
            }
        }
    }
    default_ptr(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        for list in ["containers", "initContainers"] {
            for container in items(spec, list) {
                for port in items(container, "ports") {
                    let unset = matches!(port.get("hostPort"), None | Some(Value::Null))
                        || port.get("hostPort").and_then(Value::as_i64) == Some(0);
                    if unset && let Some(cp) = port.get("containerPort").cloned() {
                        port.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }
}

/// `SetDefaults_PodSpec` and everything `SetObjectDefaults_PodTemplate` reaches from a spec.
fn spec_defaults(spec: &mut Map) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    for volume in items(spec, "volumes") {
        self::volume(volume);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in items(spec, list) {
            container(c);
        }
    }
    mirror_service_account(spec);
}

/// The v1 PodSpec conversion: `serviceAccount` (deprecated) is read when
/// `serviceAccountName` is empty, and always written back as `serviceAccountName`.
fn mirror_service_account(spec: &mut Map) {
    if !matches!(
        spec.get("serviceAccountName"),
        None | Some(Value::Null | Value::String(_))
    ) {
        return;
    }
    if str_of(spec, "serviceAccountName").is_empty() {
        let deprecated = str_of(spec, "serviceAccount").to_string();
        if !deprecated.is_empty() {
            spec.insert("serviceAccountName".into(), Value::String(deprecated));
        }
    }
    let name = str_of(spec, "serviceAccountName").to_string();
    if !name.is_empty() {
        spec.insert("serviceAccount".into(), Value::String(name));
    }
}

/// `SetDefaults_Container` and the container fields `SetObjectDefaults_Pod` walks into.
fn container(c: &mut Map) {
    if is_blank(c, "imagePullPolicy") {
        let policy = image::pull_policy(str_of(c, "image"));
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // A struct in Go, so always serialized: `resources: {}`.
    default_ptr(c, "resources", json!({}));
    for port in items(c, "ports") {
        default_str(port, "protocol", "TCP");
    }
    for env in items(c, "env") {
        if let Some(field_ref) = child(env, "valueFrom").and_then(|v| child(v, "fieldRef")) {
            default_str(field_ref, "apiVersion", "v1");
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(get) = child(lifecycle, hook).and_then(|h| child(h, "httpGet")) {
                http_get(get);
            }
        }
    }
}

/// `SetDefaults_Probe`, its `httpGet`, and `grpc.service` (`+default=""`).
fn probe(p: &mut Map) {
    default_int(p, "timeoutSeconds", 1);
    default_int(p, "periodSeconds", 10);
    default_int(p, "successThreshold", 1);
    default_int(p, "failureThreshold", 3);
    if let Some(get) = child(p, "httpGet") {
        http_get(get);
    }
    if let Some(grpc) = child(p, "grpc") {
        default_ptr(grpc, "service", json!(""));
    }
}

/// `SetDefaults_HTTPGetAction`.
fn http_get(get: &mut Map) {
    default_str(get, "path", "/");
    default_str(get, "scheme", "HTTP");
}

/// `SetDefaults_Volume` (no source at all means `emptyDir: {}`) and the source defaults.
fn volume(v: &mut Map) {
    let has_source = v.iter().any(|(k, val)| k != "name" && !val.is_null());
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    volume_source(v);
    for key in ["secret", "configMap"] {
        if let Some(src) = child(v, key) {
            default_ptr(src, "defaultMode", json!(DEFAULT_MODE));
        }
    }
    if let Some(src) = child(v, "downwardAPI") {
        default_ptr(src, "defaultMode", json!(DEFAULT_MODE));
        downward_api_items(src);
    }
    if let Some(src) = child(v, "projected") {
        default_ptr(src, "defaultMode", json!(DEFAULT_MODE));
        for source in items(src, "sources") {
            if let Some(d) = child(source, "downwardAPI") {
                downward_api_items(d);
            }
            if let Some(token) = child(source, "serviceAccountToken") {
                default_ptr(token, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(spec) = child(v, "ephemeral")
        .and_then(|e| child(e, "volumeClaimTemplate"))
        .and_then(|t| child(t, "spec"))
    {
        pvc_spec(spec);
    }
}

fn downward_api_items(src: &mut Map) {
    for item in items(src, "items") {
        if let Some(field_ref) = child(item, "fieldRef") {
            default_str(field_ref, "apiVersion", "v1");
        }
    }
}

/// Defaults of the sources a pod volume and a PersistentVolume share: `hostPath.type`, and the
/// `+default=` tags of the RBD, iSCSI, AzureDisk and ScaleIO sources.
pub(super) fn volume_source(src: &mut Map) {
    if let Some(host_path) = child(src, "hostPath") {
        default_ptr(host_path, "type", json!(""));
    }
    if let Some(iscsi) = child(src, "iscsi") {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = child(src, "rbd") {
        default_str(rbd, "pool", "rbd");
        default_str(rbd, "user", "admin");
        default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(disk) = child(src, "azureDisk") {
        default_ptr(disk, "cachingMode", json!("ReadWrite"));
        default_ptr(disk, "fsType", json!("ext4"));
        default_ptr(disk, "readOnly", json!(false));
        default_ptr(disk, "kind", json!("Shared"));
    }
    if let Some(scale_io) = child(src, "scaleIO") {
        default_str(scale_io, "storageMode", "ThinProvisioned");
        default_str(scale_io, "fsType", "xfs");
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`, plus `resources: {}` (a Go struct, always
/// serialized).
pub(super) fn pvc_spec(spec: &mut Map) {
    default_ptr(spec, "volumeMode", json!("Filesystem"));
    default_ptr(spec, "resources", json!({}));
}

/// The v1 PodStatus conversion: a singular address that disagrees with the list's first
/// entry replaces the list (older kubelets set only the singular field); an empty singular
/// field is filled from the list.
fn sync_ips(status: &mut Map, single: &str, plural: &str) {
    if !matches!(
        status.get(plural),
        None | Some(Value::Null | Value::Array(_))
    ) {
        return;
    }
    let one = str_of(status, single).to_string();
    let first = status
        .get(plural)
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .and_then(|entry| entry.get("ip"))
        .and_then(Value::as_str)
        .map(String::from);
    if !one.is_empty() {
        if first.as_deref() != Some(one.as_str()) {
            status.insert(plural.into(), json!([{ "ip": one }]));
        }
    } else if let Some(first) = first
        && is_blank(status, single)
    {
        status.insert(single.into(), Value::String(first));
    }
}

/// A PersistentVolumeClaim, standalone or in a StatefulSet's `volumeClaimTemplates`:
/// its spec defaults and `SetDefaults_PersistentVolumeClaim` (`status.phase: Pending`).
pub(super) fn pvc(obj: &mut Map) {
    if let Some(spec) = child(obj, "spec") {
        pvc_spec(spec);
    }
    if let Some(status) = child_or_empty(obj, "status") {
        default_str(status, "phase", "Pending");
    }
}
