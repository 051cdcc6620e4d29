//! NetworkPolicies: upstream's `ValidateNetworkPolicy`, `ValidateNetworkPolicyUpdate`,
//! `ValidateNetworkPolicySpec`, `ValidateNetworkPolicyPort`, `ValidateNetworkPolicyPeer` and
//! `ValidateIPBlock` from `pkg/apis/networking/validation`, as of 1.33. Ports default to TCP
//! and `policyTypes` to the directions present (`SetDefaults_NetworkPolicy`), so absent fields
//! read as their defaults.

use serde_json::Value;

use crate::field::{FieldError, go_quote};

use super::json::{get, list, str_of};
use super::labels::validate_label_selector;
use super::meta::{prepare_update, validate_object_meta, validate_object_meta_update};
use super::name::{is_valid_port_name, is_valid_port_num, name_is_dns_subdomain};
use super::netnames::{Cidr, legacy_cidr};
use super::path::{
    Path, forbidden, invalid_int, invalid_raw, invalid_str, not_supported_str, required,
};

/// `ValidateNetworkPolicy`.
pub(crate) fn validate_network_policy(obj: &Value) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, true, name_is_dns_subdomain);
    errs.extend(validate_spec(get(obj, "spec"), false));
    errs
}

/// `ValidateNetworkPolicyUpdate`. A stored pod selector with invalid label values keeps being
/// accepted (`ValidationOptionsForNetworking`).
pub(crate) fn validate_network_policy_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let new = prepare_update(new, old);
    let old_selector = get(get(old, "spec"), "podSelector");
    let allow_invalid = !validate_label_selector(old_selector, false, &Path::new("")).is_empty();
    let mut errs = validate_object_meta_update(&new, old);
    errs.extend(validate_spec(get(&new, "spec"), allow_invalid));
    errs
}

/// `ValidateNetworkPolicySpec`.
fn validate_spec(spec: &Value, allow_invalid_values: bool) -> Vec<FieldError> {
    let p = Path::new("spec");
    // `podSelector` is a struct upstream: absent reads as the empty selector.
    let mut errs = validate_label_selector(
        get(spec, "podSelector"),
        allow_invalid_values,
        &p.child("podSelector"),
    );
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in list(spec, direction).iter().enumerate() {
            let rp = p.child(direction).index(i);
            for (j, port) in list(rule, "ports").iter().enumerate() {
                errs.extend(validate_port(port, &rp.child("ports").index(j)));
            }
            for (j, peer) in list(rule, peers).iter().enumerate() {
                errs.extend(validate_peer(
                    peer,
                    allow_invalid_values,
                    &rp.child(peers).index(j),
                ));
            }
        }
    }
    let types = list(spec, "policyTypes");
    let tp = p.child("policyTypes");
    if types.len() > 2 {
        let rendered: Vec<String> = types
            .iter()
            .map(|t| go_quote(t.as_str().unwrap_or("")))
            .collect();
        errs.push(invalid_raw(
            &tp,
            format!("[]networking.PolicyType{{{}}}", rendered.join(", ")),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if !matches!(t, "Ingress" | "Egress") {
            errs.push(not_supported_str(&tp.index(i), t, &["Ingress", "Egress"]));
        }
    }
    errs
}

/// `ValidateNetworkPolicyPort`. When `endPort` is below `port`, 1.33 reports the value of
/// `port` (a later release reports `endPort`).
fn validate_port(port: &Value, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let protocol = str_of(port, "protocol");
    if !protocol.is_empty() && !matches!(protocol, "TCP" | "UDP" | "SCTP") {
        errs.push(not_supported_str(
            &p.child("protocol"),
            protocol,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let end_port = get(port, "endPort").as_i64();
    let ep = p.child("endPort");
    match get(port, "port") {
        Value::Null => {
            if let Some(end) = end_port {
                errs.push(invalid_int(
                    &ep,
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
        Value::String(name) => {
            if let Some(end) = end_port {
                errs.push(invalid_int(
                    &ep,
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(
                is_valid_port_name(name)
                    .iter()
                    .map(|m| invalid_str(&p.child("port"), name, m)),
            );
        }
        number => {
            let number = number.as_i64().unwrap_or(0);
            errs.extend(
                is_valid_port_num(number)
                    .iter()
                    .map(|m| invalid_int(&p.child("port"), number, m)),
            );
            if let Some(end) = end_port {
                if end < number {
                    errs.push(invalid_int(
                        &ep,
                        number,
                        "must be greater than or equal to `port`",
                    ));
                }
                errs.extend(
                    is_valid_port_num(end)
                        .iter()
                        .map(|m| invalid_int(&ep, end, m)),
                );
            }
        }
    }
    errs
}

/// `ValidateNetworkPolicyPeer`.
fn validate_peer(peer: &Value, allow_invalid_values: bool, p: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut peers = 0;
    for selector in ["podSelector", "namespaceSelector"] {
        let s = get(peer, selector);
        if !s.is_null() {
            peers += 1;
            errs.extend(validate_label_selector(
                s,
                allow_invalid_values,
                &p.child(selector),
            ));
        }
    }
    let ip_block = get(peer, "ipBlock");
    if !ip_block.is_null() {
        peers += 1;
        errs.extend(validate_ip_block(ip_block, &p.child("ipBlock")));
    }
    if peers == 0 {
        errs.push(required(p, "must specify a peer"));
    } else if peers > 1 && !ip_block.is_null() {
        errs.push(forbidden(
            p,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

/// `ValidateIPBlock`.
fn validate_ip_block(block: &Value, p: &Path) -> Vec<FieldError> {
    let cidr = str_of(block, "cidr");
    let cp = p.child("cidr");
    if cidr.is_empty() {
        return vec![required(&cp, "")];
    }
    let mut errs: Vec<FieldError> = legacy_cidr(&cp, cidr, &[]).into_iter().collect();
    let Some(outer) = Cidr::parse(cidr) else {
        return errs;
    };
    for (i, except) in list(block, "except").iter().enumerate() {
        let except = except.as_str().unwrap_or("");
        let xp = p.child("except").index(i);
        errs.extend(legacy_cidr(&xp, except, &[]));
        if let Some(inner) = Cidr::parse(except)
            && !outer.strictly_contains(&inner)
        {
            errs.push(invalid_str(
                &xp,
                except,
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}
