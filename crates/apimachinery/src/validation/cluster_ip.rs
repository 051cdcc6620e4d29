//! Service cluster IPs: upstream's `ValidateServiceClusterIPsRelatedFields`,
//! `ValidateNonSpecialIP`, and the normalization (`NormalizeClusterIPs`,
//! `patchAllocatedValues`) that decides which IPs an update carries.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::gofmt::string_slice;
use super::json::{get, list, opt_str, str_of, str_or};
use super::path::{Path, duplicate, invalid_raw, invalid_str, not_supported_str, required};
use super::pod::valid_ip;

fn spec_path() -> Path {
    Path::new("spec")
}

/// The service's `spec.clusterIPs` as validation sees it: upstream fills the plural field from
/// the singular one on create.
pub(crate) fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = list(spec, "clusterIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    match str_of(spec, "clusterIP") {
        "" => ips,
        ip if ips.is_empty() => vec![ip.to_string()],
        _ => ips,
    }
}

pub(crate) fn is_headless(ips: &[String]) -> bool {
    ips.len() == 1 && ips[0] == "None"
}

pub(crate) fn ips_value(ips: &[String]) -> String {
    string_slice(&Value::from(ips.to_vec()))
}

/// `ValidateServiceClusterIPsRelatedFields`.
pub(crate) fn validate_cluster_ips(spec: &Value, ips: &[String]) -> Vec<FieldError> {
    let p = spec_path().child("clusterIPs");
    let mut errs = Vec::new();
    let cluster_ip = str_of(spec, "clusterIP");
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(required(&p, ""));
        } else if ips[0] != cluster_ip {
            errs.push(invalid_raw(
                &p,
                ips_value(ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(invalid_raw(
            &p,
            ips_value(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut families = BTreeSet::new();
    for (i, fam) in list(spec, "ipFamilies").iter().enumerate() {
        let fam = fam.as_str().unwrap_or("");
        let fp = spec_path().child("ipFamilies").index(i);
        if !matches!(fam, "IPv4" | "IPv6") {
            errs.push(not_supported_str(&fp, fam, &["IPv4", "IPv6"]));
        }
        if !families.insert(fam) {
            errs.push(duplicate(&fp, BadValue::Str(fam.to_string())));
        }
    }
    if let Some(policy) = opt_str(spec, "ipFamilyPolicy")
        && !matches!(
            policy,
            "SingleStack" | "PreferDualStack" | "RequireDualStack"
        )
    {
        errs.push(not_supported_str(
            &spec_path().child("ipFamilyPolicy"),
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }
    let mut has_invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                has_invalid = true;
                errs.push(invalid_raw(
                    &p,
                    ips_value(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if let Some(e) = valid_ip(ip, &p.index(i)) {
            has_invalid = true;
            errs.push(e);
        }
    }
    if ips.len() > 2 {
        errs.push(invalid_raw(
            &p,
            ips_value(ips),
            "may only hold up to 2 values",
        ));
    }
    if has_invalid {
        return errs;
    }
    if ips.len() > 1 {
        let v6: Vec<bool> = ips
            .iter()
            .map(|ip| ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6()))
            .collect();
        if ips.len() > 2 || v6.iter().all(|x| *x) || v6.iter().all(|x| !*x) {
            errs.push(invalid_raw(
                &p,
                ips_value(ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(ips) {
        for (i, (ip, fam)) in ips.iter().zip(list(spec, "ipFamilies")).enumerate() {
            let is_v6 = ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6());
            match fam.as_str() {
                Some("IPv4") if is_v6 => errs.push(invalid_str(
                    &p.index(i),
                    ip,
                    &format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                )),
                Some("IPv6") if !is_v6 => errs.push(invalid_str(
                    &p.index(i),
                    ip,
                    &format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                )),
                _ => {}
            }
        }
    }
    errs
}

/// `ValidateNonSpecialIP`.
pub(crate) fn non_special_ip(ip: &str, p: &Path) -> Vec<FieldError> {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let (unspecified, loopback, link_local, ll_multicast) = match addr {
        IpAddr::V4(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            a.is_link_local(),
            a.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            (a.segments()[0] & 0xffc0) == 0xfe80,
            (a.segments()[0] & 0xff0f) == 0xff02,
        ),
    };
    if unspecified {
        errs.push(invalid_str(
            p,
            ip,
            &format!("may not be unspecified ({ip})"),
        ));
    }
    if loopback {
        errs.push(invalid_str(
            p,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(invalid_str(
            p,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ll_multicast {
        errs.push(invalid_str(
            p,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

pub(crate) fn is_valid_cidr(cidr: &str) -> bool {
    let Some((ip, bits)) = cidr.split_once('/') else {
        return false;
    };
    match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

/// The new service's cluster IPs on update, after upstream's `NormalizeClusterIPs` and
/// `patchAllocatedValues`: omitted IPs keep the allocated ones, a changed singular field
/// rewrites the plural one.
pub(crate) fn update_cluster_ips(new: &Value, old: &Value) -> Vec<String> {
    let (ns, os) = (get(new, "spec"), get(old, "spec"));
    let old_ips = cluster_ips(os);
    let raw: Vec<String> = list(ns, "clusterIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    let (new_ip, old_ip) = (str_of(ns, "clusterIP"), str_of(os, "clusterIP"));
    let needs_ip = |s: &Value| str_or(s, "type", "ClusterIP") != "ExternalName";
    if !(needs_ip(ns) && needs_ip(os)) {
        return cluster_ips(ns);
    }
    if new_ip.is_empty() || new_ip == old_ip {
        return if raw.is_empty() { old_ips } else { raw };
    }
    if raw.is_empty() || raw == old_ips {
        vec![new_ip.to_string()]
    } else {
        raw
    }
}
