//! Services: upstream's `ValidateService`, `ValidateServiceUpdate` and the cluster IP rules,
//! after the defaulting (`SetDefaults_Service`) and cluster-IP normalization
//! (`NormalizeClusterIPs`, `patchAllocatedValues`) upstream runs before validating.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};

use super::cluster_ip::{
    cluster_ips, ips_value, is_headless, is_valid_cidr, non_special_ip, update_cluster_ips,
    validate_cluster_ips,
};
use super::container::validate_protocol;
use super::json::{get, int_of, list, opt_str, str_of, str_or};
use super::labels::validate_labels;
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{
    is_dns1123_label, is_qualified_name, is_valid_port_num, name_is_dns_subdomain,
    name_is_dns1035_label,
};
use super::path::{
    Path, duplicate, forbidden, invalid, invalid_int, invalid_raw, invalid_str, not_supported_str,
    required,
};
use super::pod::valid_ip;
use super::probe::validate_port_num_or_name;

const TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
const TOPOLOGY_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

fn spec_path() -> Path {
    Path::new("spec")
}

/// `ValidateServiceCreate`.
pub(crate) fn validate_service(obj: &Value) -> Vec<FieldError> {
    let ips = cluster_ips(get(obj, "spec"));
    validate_service_normalized(obj, &ips)
}

/// `ValidateService` over a service whose cluster IPs are `ips`.
fn validate_service_normalized(obj: &Value, ips: &[String]) -> Vec<FieldError> {
    let spec = get(obj, "spec");
    let sp = spec_path();
    let mut errs = validate_object_meta(obj, true, name_is_dns1035_label);
    let annotations = get(get(obj, "metadata"), "annotations");
    if let (Some(mode), Some(hints)) = (
        opt_str(annotations, TOPOLOGY_MODE),
        opt_str(annotations, TOPOLOGY_HINTS),
    ) && mode != hints
    {
        errs.push(invalid_str(
            &Path::new("metadata")
                .child("annotations")
                .key(TOPOLOGY_MODE),
            mode,
            &format!("must match annotations[{TOPOLOGY_HINTS}] when both are specified"),
        ));
    }
    let ty = str_or(spec, "type", "ClusterIP");
    let headless = is_headless(ips);
    let ports = list(spec, "ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(required(&sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless => errs.push(invalid_str(
            &sp.child("clusterIPs").index(0),
            "None",
            &format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            if !ips.is_empty() {
                errs.push(forbidden(
                    &sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    &sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if !get(spec, "ipFamilyPolicy").is_null() {
                errs.push(forbidden(
                    &sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = str_of(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(required(&sp.child("externalName"), ""));
            } else {
                errs.extend(
                    name_is_dns_subdomain(cname, false)
                        .iter()
                        .map(|m| invalid_str(&sp.child("externalName"), cname, m)),
                );
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut names,
            &sp.child("ports").index(i),
        ));
    }
    if !get(spec, "selector").is_null() {
        errs.extend(validate_labels(
            get(spec, "selector"),
            &sp.child("selector"),
        ));
    }
    errs.extend(validate_session_affinity(spec));
    if ty != "ExternalName" {
        errs.extend(validate_cluster_ips(spec, ips));
    }
    for (i, ip) in list(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        let p = sp.child("externalIPs").index(i);
        match valid_ip(ip, &p) {
            Some(e) => errs.push(e),
            None => errs.extend(non_special_ip(ip, &p)),
        }
    }
    if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        errs.push(not_supported_str(
            &sp.child("type"),
            ty,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int_of(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &sp.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let node_port = int_of(port, "nodePort").unwrap_or(0);
        if node_port != 0 && !node_ports.insert((str_or(port, "protocol", "TCP"), node_port)) {
            errs.push(duplicate(
                &sp.child("ports").index(i).child("nodePort"),
                BadValue::Raw(node_port.to_string()),
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = str_or(port, "protocol", "TCP");
        let number = int_of(port, "port").unwrap_or(0);
        if !seen.insert((protocol, number)) {
            let key = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{number}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                go_quote(protocol)
            );
            errs.push(duplicate(&sp.child("ports").index(i), BadValue::Raw(key)));
        }
    }
    let ranges = list(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        let p = sp.child("LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(forbidden(
                &p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, cidr) in ranges.iter().enumerate() {
            let cidr = cidr.as_str().unwrap_or("").trim();
            if !is_valid_cidr(cidr) {
                errs.push(invalid_str(
                    &p.index(i),
                    cidr,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }
    if !get(spec, "allocateLoadBalancerNodePorts").is_null() && ty != "LoadBalancer" {
        errs.push(forbidden(
            &sp.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs.extend(validate_load_balancer_class(None, spec));
    errs.extend(validate_traffic_policies(spec, ty));
    errs
}

/// `validateServicePort` with `targetPort` defaulted to `port` and `protocol` to TCP.
fn validate_service_port<'a>(
    port: &'a Value,
    require_name: bool,
    names: &mut BTreeSet<&'a str>,
    p: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(
            is_dns1123_label(name)
                .iter()
                .map(|m| invalid_str(&p.child("name"), name, m)),
        );
        if !names.insert(name) {
            errs.push(duplicate(&p.child("name"), BadValue::Str(name.to_string())));
        }
    }
    let number = int_of(port, "port").unwrap_or(0);
    for msg in is_valid_port_num(number) {
        errs.push(invalid_int(&p.child("port"), number, &msg));
    }
    errs.extend(validate_protocol(port, p));
    let target = match get(port, "targetPort") {
        Value::Null => Value::from(number),
        Value::String(s) if s.is_empty() => Value::from(number),
        Value::Number(n) if n.as_i64() == Some(0) => Value::from(number),
        other => other.clone(),
    };
    errs.extend(validate_port_num_or_name(&target, &p.child("targetPort")));
    if let Some(app) = opt_str(port, "appProtocol") {
        errs.extend(
            is_qualified_name(app)
                .iter()
                .map(|m| invalid_str(&p.child("appProtocol"), app, m)),
        );
    }
    errs
}

/// Session affinity after defaulting (None; ClientIP gets a 10800s timeout).
fn validate_session_affinity(spec: &Value) -> Vec<FieldError> {
    let sp = spec_path();
    let mut errs = Vec::new();
    let affinity = str_or(spec, "sessionAffinity", "None");
    let config = get(spec, "sessionAffinityConfig");
    match affinity {
        "ClientIP" => {
            if let Some(t) = int_of(get(config, "clientIP"), "timeoutSeconds")
                && (t <= 0 || t > 86400)
            {
                let p = sp
                    .child("sessionAffinityConfig")
                    .child("clientIP")
                    .child("timeoutSeconds");
                errs.push(invalid_int(
                    &p,
                    t,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        "None" => {
            if !config.is_null() {
                errs.push(forbidden(
                    &sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(not_supported_str(
            &sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    errs
}

/// `validateLoadBalancerClassField`.
fn validate_load_balancer_class(old: Option<&Value>, spec: &Value) -> Vec<FieldError> {
    let p = spec_path().child("loadBalancerClass");
    let mut errs = Vec::new();
    let class = opt_str(spec, "loadBalancerClass");
    let is_lb = |s: &Value| str_or(s, "type", "ClusterIP") == "LoadBalancer";
    if let Some(old) = old
        && is_lb(old)
        && is_lb(spec)
        && opt_str(old, "loadBalancerClass") != class
    {
        let v = class.map_or(BadValue::Str("null".into()), |c| {
            BadValue::Str(c.to_string())
        });
        errs.push(invalid(&p, v, "may not change once set"));
    }
    match class {
        Some(c) if is_lb(spec) => {
            errs.extend(is_qualified_name(c).iter().map(|m| invalid_str(&p, c, m)))
        }
        Some(_) => errs.push(forbidden(
            &p,
            "may only be used when `type` is 'LoadBalancer'",
        )),
        None => {}
    }
    errs
}

/// External and internal traffic policies (defaulted to Cluster), health check node port and
/// traffic distribution.
fn validate_traffic_policies(spec: &Value, ty: &str) -> Vec<FieldError> {
    let sp = spec_path();
    let mut errs = Vec::new();
    let externally_accessible = matches!(ty, "LoadBalancer" | "NodePort")
        || (ty == "ClusterIP" && !list(spec, "externalIPs").is_empty());
    let etp = str_of(spec, "externalTrafficPolicy");
    if !externally_accessible {
        if !etp.is_empty() {
            errs.push(invalid_str(
                &sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if !etp.is_empty() && !matches!(etp, "Cluster" | "Local") {
        errs.push(not_supported_str(
            &sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    let needs_health_check = ty == "LoadBalancer" && etp == "Local";
    let hc = int_of(spec, "healthCheckNodePort").unwrap_or(0);
    if !needs_health_check && hc != 0 {
        errs.push(invalid_int(
            &sp.child("healthCheckNodePort"),
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    } else if needs_health_check && hc != 0 {
        errs.extend(
            is_valid_port_num(hc)
                .iter()
                .map(|m| invalid_int(&sp.child("healthCheckNodePort"), hc, m)),
        );
    }
    if let Some(itp) = opt_str(spec, "internalTrafficPolicy")
        && !matches!(itp, "Cluster" | "Local")
    {
        errs.push(not_supported_str(
            &sp.child("internalTrafficPolicy"),
            itp,
            &["Cluster", "Local"],
        ));
    }
    if let Some(td) = opt_str(spec, "trafficDistribution")
        && td != "PreferClose"
    {
        errs.push(not_supported_str(
            &sp.child("trafficDistribution"),
            td,
            &["PreferClose"],
        ));
    }
    errs
}

/// `ValidateServiceUpdate`.
pub(crate) fn validate_service_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut new = prepare_update(new, old);
    let ips = update_cluster_ips(&new, old);
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(first) = ips.first()
        && spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        spec.insert("clusterIP".into(), Value::from(first.clone()));
    }
    let (ns, os) = (get(&new, "spec"), get(old, "spec"));
    let mut errs = validate_object_meta_update(&new, old);
    let old_ips = cluster_ips(os);
    let external = |s: &Value| str_or(s, "type", "ClusterIP") == "ExternalName";
    let both_headless = is_headless(&old_ips) && is_headless(&ips);
    if !external(ns) && !external(os) && !both_headless {
        let p = spec_path().child("clusterIPs");
        let changed_primary = !old_ips.is_empty() && ips.first() != old_ips.first();
        if old_ips.len() == ips.len() {
            for (i, (o, n)) in old_ips.iter().zip(&ips).enumerate() {
                if o != n {
                    errs.push(invalid_raw(
                        &p.index(i),
                        ips_value(&ips),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > ips.len() {
            if ips.is_empty() {
                errs.push(invalid_raw(
                    &p.index(0),
                    ips_value(&ips),
                    "primary clusterIP can not be unset",
                ));
            }
            if !ips.is_empty() && changed_primary {
                errs.push(invalid_raw(
                    &p.index(0),
                    ips_value(&ips),
                    "may not change once set",
                ));
            }
            if ips.len() == 1 && str_of(ns, "ipFamilyPolicy") != "SingleStack" {
                let v = opt_str(ns, "ipFamilyPolicy")
                    .map_or(BadValue::Str("null".into()), |s| BadValue::Str(s.into()));
                errs.push(invalid(
                    &spec_path().child("ipFamilyPolicy"),
                    v,
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if changed_primary {
            errs.push(invalid_raw(
                &p.index(0),
                ips_value(&ips),
                "may not change once set",
            ));
        }
    }
    // Upstream checks the class here and again inside ValidateService, so format errors repeat.
    errs.extend(validate_load_balancer_class(Some(os), ns));
    errs.extend(validate_service_normalized(&new, &ips));
    errs
}
