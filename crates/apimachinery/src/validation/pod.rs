//! Pods, pod specs and pod templates: upstream's `ValidatePodSpec`, `ValidatePodTemplateSpec`,
//! `ValidatePodCreate`, `ValidatePodUpdate` and `ValidateVolumes`.
//!
//! Defaulted fields (`restartPolicy`, `dnsPolicy`, `terminationGracePeriodSeconds`) read as
//! their defaults when absent, because upstream defaults before it validates.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::container::{PodContext, validate_containers, validate_init_containers};
use super::json::{bool_of, get, int_of, list, opt_str, semantic_eq, str_of, str_or, subset_eq};
use super::labels::validate_labels;
use super::meta::{
    prepare_update, validate_annotations, validate_object_meta, validate_object_meta_update,
};
use super::name::{
    NameValidator, inclusive_range_error, is_dns1123_label, is_qualified_name,
    name_is_dns_subdomain,
};
use super::path::{
    Path, duplicate, forbidden, invalid_int, invalid_str, not_supported_str, required,
};
use super::scheduling::{validate_affinity, validate_tolerations, validate_topology_spread};

/// The pod's `restartPolicy` after defaulting.
pub(crate) fn restart_policy(spec: &Value) -> &str {
    str_or(spec, "restartPolicy", "Always")
}

/// `ValidatePodTemplateSpec`. Note upstream's paths: template labels are reported at
/// `<path>.labels`, not `<path>.metadata.labels`.
pub(crate) fn validate_pod_template_spec(template: &Value, path: &Path) -> Vec<FieldError> {
    let meta = get(template, "metadata");
    let spec = get(template, "spec");
    let mut errs = validate_labels(get(meta, "labels"), &path.child("labels"));
    errs.extend(validate_annotations(
        get(meta, "annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_specific_annotations(
        meta,
        spec,
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_spec(spec, None, &path.child("spec"), false));
    if !list(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpecificAnnotations`.
fn validate_pod_specific_annotations(meta: &Value, spec: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let annotations = get(meta, "annotations");
    if let Some(v) = opt_str(annotations, "kubernetes.io/config.mirror")
        && str_of(spec, "nodeName").is_empty()
    {
        errs.push(invalid_str(
            &path.key("kubernetes.io/config.mirror"),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(v) = opt_str(annotations, "controller.kubernetes.io/pod-deletion-cost")
        && v.parse::<i32>().is_err()
    {
        errs.push(invalid_str(
            &path.key("controller.kubernetes.io/pod-deletion-cost"),
            v,
            "must be a 32bit integer",
        ));
    }
    errs
}

/// `ValidatePodSpec`. `pod_name` is set for real pods (generic ephemeral volume names derive
/// from it) and `is_pod` enables the pod-only rules (`opts.ResourceIsPod`).
pub(crate) fn validate_pod_spec(
    spec: &Value,
    pod_name: Option<&str>,
    path: &Path,
    is_pod: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let grace_period = int_of(spec, "terminationGracePeriodSeconds").unwrap_or(30);
    let (volumes, volume_errs) = super::volume::validate_volumes(
        list(spec, "volumes"),
        pod_name,
        is_pod,
        &path.child("volumes"),
    );
    errs.extend(volume_errs);
    errs.extend(validate_resource_claims(
        list(spec, "resourceClaims"),
        &path.child("resourceClaims"),
    ));
    let ctx = PodContext {
        volumes: &volumes,
        grace_period,
    };
    let containers = list(spec, "containers");
    errs.extend(validate_containers(
        containers,
        &ctx,
        &path.child("containers"),
    ));
    errs.extend(validate_init_containers(
        list(spec, "initContainers"),
        containers,
        &ctx,
        &path.child("initContainers"),
    ));
    errs.extend(super::ephemeral::validate_ephemeral_containers(
        list(spec, "ephemeralContainers"),
        containers,
        list(spec, "initContainers"),
        &ctx,
        &path.child("ephemeralContainers"),
    ));

    if bool_of(spec, "hostNetwork") == Some(true) {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in list(c, "ports").iter().enumerate() {
                let hp = int_of(port, "hostPort").unwrap_or(0);
                let cp = int_of(port, "containerPort").unwrap_or(0);
                // Pods get hostPort defaulted to containerPort; templates keep 0 until then.
                if hp != 0 && hp != cp {
                    let p = path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort");
                    errs.push(invalid_int(
                        &p,
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    let restart = restart_policy(spec);
    if !matches!(restart, "Always" | "OnFailure" | "Never") {
        errs.push(not_supported_str(
            &path.child("restartPolicy"),
            restart,
            &["Always", "OnFailure", "Never"],
        ));
    }
    let dns_policy = str_or(spec, "dnsPolicy", "ClusterFirst");
    if !matches!(
        dns_policy,
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None"
    ) {
        errs.push(not_supported_str(
            &path.child("dnsPolicy"),
            dns_policy,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ));
    }
    errs.extend(validate_labels(
        get(spec, "nodeSelector"),
        &path.child("nodeSelector"),
    ));
    errs.extend(validate_pod_security_context(
        get(spec, "securityContext"),
        &path.child("securityContext"),
    ));
    errs.extend(validate_affinity(
        get(spec, "affinity"),
        &path.child("affinity"),
    ));
    errs.extend(validate_dns_config(
        spec,
        dns_policy,
        &path.child("dnsConfig"),
    ));
    for (i, gate) in list(spec, "readinessGates").iter().enumerate() {
        let p = path.child("readinessGates").index(i).child("conditionType");
        errs.extend(qualified(str_of(gate, "conditionType"), &p));
    }
    let mut gates = BTreeSet::new();
    for (i, gate) in list(spec, "schedulingGates").iter().enumerate() {
        let p = path.child("schedulingGates").index(i);
        let name = str_of(gate, "name");
        errs.extend(qualified(name, &p));
        if !gates.insert(name) {
            errs.push(duplicate(&p, BadValue::Str(name.to_string())));
        }
    }
    errs.extend(validate_topology_spread(
        list(spec, "topologySpreadConstraints"),
        &path.child("topologySpreadConstraints"),
    ));
    if bool_of(spec, "hostUsers") == Some(false) {
        for (field, child) in [
            ("hostNetwork", "hostNetwork"),
            ("hostPID", "HostPID"),
            ("hostIPC", "HostIPC"),
        ] {
            if bool_of(spec, field) == Some(true) {
                errs.push(forbidden(
                    &path.child(child),
                    "when `pod.Spec.HostUsers` is false",
                ));
            }
        }
    }
    let named: [(&str, NameValidator); 2] = [
        ("serviceAccountName", name_is_dns_subdomain),
        ("nodeName", name_is_dns_subdomain),
    ];
    for (field, rule) in named {
        let v = str_of(spec, field);
        if !v.is_empty() {
            errs.extend(
                rule(v, false)
                    .iter()
                    .map(|m| invalid_str(&path.child(field), v, m)),
            );
        }
    }
    if let Some(ads) = int_of(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(invalid_int(
            &path.child("activeDeadlineSeconds"),
            ads,
            &inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for field in ["hostname", "subdomain"] {
        let v = str_of(spec, field);
        if !v.is_empty() {
            errs.extend(
                is_dns1123_label(v)
                    .iter()
                    .map(|m| invalid_str(&path.child(field), v, m)),
            );
        }
    }
    errs.extend(validate_tolerations(
        list(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    for (i, alias) in list(spec, "hostAliases").iter().enumerate() {
        let p = path.child("hostAliases").index(i);
        errs.extend(valid_ip(str_of(alias, "ip"), &p.child("ip")));
        for (j, host) in list(alias, "hostnames").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            errs.extend(
                name_is_dns_subdomain(host, false)
                    .iter()
                    .map(|m| invalid_str(&p.child("hostnames").index(j), host, m)),
            );
        }
    }
    for field in ["priorityClassName", "runtimeClassName"] {
        if let Some(v) =
            opt_str(spec, field).filter(|v| field == "runtimeClassName" || !v.is_empty())
        {
            errs.extend(
                name_is_dns_subdomain(v, false)
                    .iter()
                    .map(|m| invalid_str(&path.child(field), v, m)),
            );
        }
    }
    if let Some(pp) = opt_str(spec, "preemptionPolicy")
        && !matches!(pp, "PreemptLowerPriority" | "Never")
    {
        errs.push(not_supported_str(
            &path.child("preemptionPolicy"),
            pp,
            &["PreemptLowerPriority", "Never"],
        ));
    }
    let os = get(spec, "os");
    if !os.is_null() {
        match str_of(os, "name") {
            "" => errs.push(required(&path.child("os").child("name"), "cannot be empty")),
            "linux" | "windows" => {}
            other => errs.push(not_supported_str(
                &path.child("os"),
                other,
                &["linux", "windows"],
            )),
        }
    }
    errs
}

fn qualified(value: &str, path: &Path) -> Vec<FieldError> {
    is_qualified_name(value)
        .iter()
        .map(|m| invalid_str(path, value, m))
        .collect()
}

/// `IsValidIP` (sloppy parsing is not reproduced: leading zeros are rejected).
pub(crate) fn valid_ip(ip: &str, path: &Path) -> Option<FieldError> {
    ip.parse::<std::net::IpAddr>().is_err().then(|| {
        invalid_str(
            path,
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )
    })
}

/// `validatePodResourceClaims` (names only).
fn validate_resource_claims(claims: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, claim) in claims.iter().enumerate() {
        let p = path.index(i).child("name");
        let name = str_of(claim, "name");
        if name.is_empty() {
            errs.push(required(&p, ""));
        } else if !names.insert(name) {
            errs.push(duplicate(&p, BadValue::Str(name.to_string())));
        } else {
            errs.extend(
                is_dns1123_label(name)
                    .iter()
                    .map(|m| invalid_str(&p, name, m)),
            );
        }
    }
    errs
}

/// The numeric and enum parts of `validatePodSpecSecurityContext`.
fn validate_pod_security_context(sc: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let range = inclusive_range_error(0, 0xffff_ffff);
    for field in ["fsGroup", "runAsUser", "runAsGroup"] {
        if let Some(id) = int_of(sc, field).filter(|id| !(0..=0xffff_ffff).contains(id)) {
            errs.push(invalid_int(&path.child(field), id, &range));
        }
    }
    for (i, gid) in list(sc, "supplementalGroups").iter().enumerate() {
        if let Some(id) = gid.as_i64().filter(|id| !(0..=0xffff_ffff).contains(id)) {
            errs.push(invalid_int(
                &path.child("supplementalGroups").index(i),
                id,
                &range,
            ));
        }
    }
    if let Some(p) = opt_str(sc, "fsGroupChangePolicy")
        && !matches!(p, "Always" | "OnRootMismatch")
    {
        errs.push(not_supported_str(
            &path.child("fsGroupChangePolicy"),
            p,
            &["Always", "OnRootMismatch"],
        ));
    }
    errs
}

/// `validatePodDNSConfig` (nameserver counts and options; search domains are not checked).
fn validate_dns_config(spec: &Value, dns_policy: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let config = get(spec, "dnsConfig");
    if dns_policy == "None" {
        if config.is_null() {
            errs.push(required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
            return errs;
        }
        if list(config, "nameservers").is_empty() {
            errs.push(required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return errs;
        }
    }
    for (i, ns) in list(config, "nameservers").iter().enumerate() {
        errs.extend(valid_ip(
            ns.as_str().unwrap_or(""),
            &path.child("nameservers").index(i),
        ));
    }
    for (i, opt) in list(config, "options").iter().enumerate() {
        if str_of(opt, "name").is_empty() {
            errs.push(required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// Upstream's `validatePodMetadataAndSpec`.
pub(crate) fn validate_pod_metadata_and_spec(obj: &Value) -> Vec<FieldError> {
    let meta = get(obj, "metadata");
    let spec = get(obj, "spec");
    let spec_path = Path::new("spec");
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_pod_specific_annotations(
        meta,
        spec,
        &Path::new("metadata").child("annotations"),
    ));
    errs.extend(validate_pod_spec(
        spec,
        Some(str_of(meta, "name")),
        &spec_path,
        true,
    ));
    for kind in ["containers", "initContainers"] {
        for (i, c) in list(spec, kind).iter().enumerate() {
            let image = str_of(c, "image");
            if image.trim() != image {
                errs.push(invalid_str(
                    &spec_path.child(kind).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodCreate`.
pub(crate) fn validate_pod_create(obj: &Value) -> Vec<FieldError> {
    let spec = get(obj, "spec");
    let mut errs = validate_pod_metadata_and_spec(obj);
    if !list(spec, "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &Path::new("spec").child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !str_of(spec, "nodeName").is_empty() && !list(spec, "schedulingGates").is_empty() {
        errs.push(forbidden(
            &Path::new("spec").child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

pub(crate) const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`. The final "may not change fields" error carries no diff (upstream
/// appends a `cmp.Diff` of the internal structs, which has no stable text to reproduce).
/// Fields absent from the new spec count as unchanged, since upstream would have defaulted them.
pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let spec_path = Path::new("spec");
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_pod_metadata_and_spec(&new));
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    for kind in ["containers", "initContainers"] {
        let (nc, oc) = (list(ns, kind), list(os, kind));
        if nc.len() != oc.len() {
            errs.push(forbidden(
                &spec_path.child(kind),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in nc.iter().enumerate() {
            if str_of(c, "image").is_empty() {
                errs.push(required(&spec_path.child(kind).index(i).child("image"), ""));
            }
        }
    }
    match (
        int_of(ns, "activeDeadlineSeconds"),
        int_of(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(invalid_int(
                &spec_path.child("activeDeadlineSeconds"),
                n,
                &inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid_int(
                &spec_path.child("activeDeadlineSeconds"),
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(super::path::invalid_raw(
            &spec_path.child("activeDeadlineSeconds"),
            "\"null\"".to_string(),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for kind in ["containers", "initContainers"] {
            if let Some(items) = m.get_mut(kind).and_then(Value::as_array_mut) {
                for (item, old_item) in items.iter_mut().zip(list(os, kind)) {
                    if let Some(c) = item.as_object_mut() {
                        c.insert("image".into(), get(old_item, "image").clone());
                    }
                }
            }
        }
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            m.remove(field);
        }
    }
    let mut old_munged = os.clone();
    if let Some(m) = old_munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            m.remove(field);
        }
    }
    // Ephemeral containers change only through their subresource; a plain update that
    // leaves them out would drop them, so absent does not count as unchanged here.
    let ephemeral_kept = semantic_eq(
        get(ns, "ephemeralContainers"),
        get(os, "ephemeralContainers"),
    );
    if !subset_eq(&munged, &old_munged) || !ephemeral_kept {
        errs.push(forbidden(
            &spec_path,
            &format!("pod updates may not change fields other than {UPDATABLE_POD_FIELDS}"),
        ));
    }
    errs
}

/// `ValidatePodTemplate` (the PodTemplate kind).
pub(crate) fn validate_pod_template(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_pod_template_spec(
        get(obj, "template"),
        &Path::new("template"),
    ));
    errs
}

/// `ValidatePodTemplateUpdate`.
pub(crate) fn validate_pod_template_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_pod_template_spec(
        get(&new, "template"),
        &Path::new("template"),
    ));
    errs
}
