//! Endpoints and EndpointSlices: upstream's `ValidateEndpoints`, `ValidateEndpointsUpdate`,
//! `validateEndpointSubsets`/`validateEndpointAddress`/`validateEndpointPort`
//! (`pkg/apis/core/validation`), and `ValidateEndpointSliceCreate`/`ValidateEndpointSliceUpdate`
//! (`pkg/apis/discovery/validation`), as of 1.33.
//!
//! Addresses parse leniently (the "legacy field" rules with strict validation off) and must
//! not be special (unspecified, loopback, link-local). Port protocols default to TCP.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::cluster_ip::non_special_ip;
use super::json::{int_of, list, opt_str, str_of};
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_dns1123_label, is_qualified_name, is_valid_port_num, name_is_dns_subdomain};
use super::netnames::{is_fully_qualified_domain_name, legacy_ip, parse_ip_sloppy};
use super::path::{
    FIELD_IMMUTABLE, Path, duplicate, invalid_int, invalid_str, not_supported_str, required,
    too_many,
};

fn dns_label_errors(value: &str, p: &Path) -> Vec<FieldError> {
    is_dns1123_label(value)
        .iter()
        .map(|m| invalid_str(p, value, m))
        .collect()
}

fn qualified_errors(value: &str, p: &Path) -> Vec<FieldError> {
    is_qualified_name(value)
        .iter()
        .map(|m| invalid_str(p, value, m))
        .collect()
}

/// `ValidateEndpoints`.
pub(crate) fn validate_endpoints(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    for (i, subset) in list(obj, "subsets").iter().enumerate() {
        let sp = Path::new("subsets").index(i);
        let (ready, not_ready) = (list(subset, "addresses"), list(subset, "notReadyAddresses"));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(required(
                &sp,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (field, addrs) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
            for (j, a) in addrs.iter().enumerate() {
                errs.extend(validate_address(a, &sp.child(field).index(j)));
            }
        }
        let ports = list(subset, "ports");
        for (j, port) in ports.iter().enumerate() {
            errs.extend(validate_endpoint_port(
                port,
                ports.len() > 1,
                &sp.child("ports").index(j),
            ));
        }
    }
    errs
}

/// `validateEndpointAddress`.
fn validate_address(a: &Value, p: &Path) -> Vec<FieldError> {
    let ip = str_of(a, "ip");
    let ipp = p.child("ip");
    let mut errs: Vec<FieldError> = legacy_ip(&ipp, ip).into_iter().collect();
    let hostname = str_of(a, "hostname");
    if !hostname.is_empty() {
        errs.extend(dns_label_errors(hostname, &p.child("hostname")));
    }
    if let Some(node) = opt_str(a, "nodeName") {
        errs.extend(
            name_is_dns_subdomain(node, false)
                .iter()
                .map(|m| invalid_str(&p.child("nodeName"), node, m)),
        );
    }
    if parse_ip_sloppy(ip).is_none() {
        errs.push(invalid_str(&ipp, ip, "must be a valid IP address"));
    } else {
        errs.extend(non_special_ip(ip, &ipp));
    }
    errs
}

/// `validateEndpointPort`.
fn validate_endpoint_port(port: &Value, require_name: bool, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(required(&p.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(dns_label_errors(name, &p.child("name")));
    }
    let number = int_of(port, "port").unwrap_or(0);
    errs.extend(
        is_valid_port_num(number)
            .iter()
            .map(|m| invalid_int(&p.child("port"), number, m)),
    );
    let protocol = opt_str(port, "protocol").unwrap_or("TCP");
    if protocol.is_empty() {
        errs.push(required(&p.child("protocol"), ""));
    } else if !matches!(protocol, "SCTP" | "TCP" | "UDP") {
        errs.push(not_supported_str(
            &p.child("protocol"),
            protocol,
            &["SCTP", "TCP", "UDP"],
        ));
    }
    if let Some(app) = opt_str(port, "appProtocol") {
        errs.extend(qualified_errors(app, &p.child("appProtocol")));
    }
    errs
}

/// `ValidateEndpointsUpdate`.
pub(crate) fn validate_endpoints_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_endpoints(&new));
    errs
}

/// `ValidateEndpointSlice`; `allow_ip` admits the deprecated `IP` address type (updates only).
fn validate_endpoint_slice_with(obj: &Value, allow_ip: bool) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    let address_type = str_of(obj, "addressType");
    let ap = Path::new("addressType");
    let valid: &[&str] = if allow_ip {
        &["FQDN", "IP", "IPv4", "IPv6"]
    } else {
        &["FQDN", "IPv4", "IPv6"]
    };
    if address_type.is_empty() {
        errs.push(required(&ap, ""));
    } else if !valid.contains(&address_type) {
        errs.push(not_supported_str(&ap, address_type, valid));
    }
    let endpoints = list(obj, "endpoints");
    let ep = Path::new("endpoints");
    if endpoints.len() > 1000 {
        errs.push(too_many(&ep, endpoints.len(), 1000));
    } else {
        for (i, endpoint) in endpoints.iter().enumerate() {
            errs.extend(validate_slice_endpoint(
                endpoint,
                address_type,
                &ep.index(i),
            ));
        }
    }
    let ports = list(obj, "ports");
    let pp = Path::new("ports");
    if ports.len() > 100 {
        errs.push(too_many(&pp, ports.len(), 100));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let ip = pp.index(i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            errs.extend(dns_label_errors(name, &ip.child("name")));
        }
        if !names.insert(name) {
            errs.push(duplicate(
                &ip.child("name"),
                BadValue::Str(name.to_string()),
            ));
        }
        let protocol = opt_str(port, "protocol").unwrap_or("TCP");
        if !matches!(protocol, "SCTP" | "TCP" | "UDP") {
            errs.push(not_supported_str(
                &ip.child("protocol"),
                protocol,
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if let Some(app) = opt_str(port, "appProtocol") {
            errs.extend(qualified_errors(app, &ip.child("appProtocol")));
        }
    }
    errs
}

/// One endpoint of a slice: addresses of the slice's type, and the hostname.
fn validate_slice_endpoint(endpoint: &Value, address_type: &str, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ap = p.child("addresses");
    let addresses = list(endpoint, "addresses");
    if addresses.is_empty() {
        errs.push(required(&ap, "must contain at least 1 address"));
    } else if addresses.len() > 100 {
        errs.push(too_many(&ap, addresses.len(), 100));
    }
    for (i, a) in addresses.iter().enumerate() {
        let a = a.as_str().unwrap_or("");
        let ip = ap.index(i);
        match address_type {
            "IPv4" | "IPv6" | "IP" => {
                if let Some(e) = legacy_ip(&ip, a) {
                    errs.push(e);
                    continue;
                }
                let v4 = parse_ip_sloppy(a).is_some_and(|x| x.is_ipv4());
                if address_type == "IPv4" && !v4 {
                    errs.push(invalid_str(&ip, a, "must be an IPv4 address"));
                }
                if address_type == "IPv6" && v4 {
                    errs.push(invalid_str(&ip, a, "must be an IPv6 address"));
                }
                errs.extend(non_special_ip(a, &ip));
            }
            "FQDN" => errs.extend(is_fully_qualified_domain_name(&ip, a)),
            _ => {}
        }
    }
    if let Some(hostname) = opt_str(endpoint, "hostname") {
        errs.extend(dns_label_errors(hostname, &p.child("hostname")));
    }
    errs
}

pub(crate) fn validate_endpoint_slice(obj: &Value) -> Vec<FieldError> {
    validate_endpoint_slice_with(obj, false)
}

/// `ValidateEndpointSliceUpdate`, after the registry's metadata checks: the address type is
/// immutable.
pub(crate) fn validate_endpoint_slice_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_endpoint_slice_with(&new, true));
    let address_type = str_of(&new, "addressType");
    if address_type != str_of(old, "addressType") {
        errs.push(invalid_str(
            &Path::new("addressType"),
            address_type,
            FIELD_IMMUTABLE,
        ));
    }
    errs
}
