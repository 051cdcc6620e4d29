//! Conversions between names and addresses: dashed endpoint and pod labels, reverse
//! names, label lists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;
use tracing::warn;

const DEFAULT_DOMAIN: &str = "cluster.local.";

/// An endpoint's name when it has no hostname: its address with dashes (CoreDNS's
/// `endpointHostname`), e.g. `10-42-0-5`.
pub(super) fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string().replace('.', "-"),
        IpAddr::V6(ip) => {
            let s = ip.to_string().replace(':', "-");
            if s.ends_with('-') { s + "0" } else { s }
        }
    }
}

/// The address of a pod name `1-2-3-4` (or a dashed IPv6 address).
pub(super) fn pod_ip(label: &str) -> Option<IpAddr> {
    let text = if label.matches('-').count() == 3 && !label.contains("--") {
        label.replace('-', ".")
    } else {
        label.replace('-', ":")
    };
    text.parse().ok()
}

/// The address named by a full reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles of
/// `ip6.arpa`).
pub(super) fn reverse_ip(labels: &[String]) -> Option<IpAddr> {
    match labels {
        [d, c, b, a, in_addr, arpa] if in_addr == "in-addr" && arpa == "arpa" => {
            let octet = |s: &String| {
                (s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 3)
                    .then(|| s.parse::<u8>().ok())
                    .flatten()
            };
            Some(IpAddr::V4(Ipv4Addr::new(
                octet(a)?,
                octet(b)?,
                octet(c)?,
                octet(d)?,
            )))
        }
        [nibbles @ .., ip6, arpa] if nibbles.len() == 32 && ip6 == "ip6" && arpa == "arpa" => {
            let mut value: u128 = 0;
            for nibble in nibbles.iter().rev() {
                let [digit] = nibble.as_bytes() else {
                    return None;
                };
                let digit = char::from(*digit).to_digit(16)?;
                value = (value << 4) | u128::from(digit);
            }
            Some(IpAddr::V6(Ipv6Addr::from(value)))
        }
        _ => None,
    }
}

pub(super) fn external_target(name: &str) -> Option<Name> {
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    let mut target = Name::from_ascii(name).ok()?;
    target.set_fqdn(true);
    Some(target)
}

pub(super) fn parse_domain(domain: &str) -> Name {
    let text = format!("{}.", domain.trim_end_matches('.'));
    match Name::from_ascii(&text) {
        Ok(name) if !name.is_root() => name.to_lowercase(),
        _ => {
            warn!(domain, "invalid cluster domain, using {DEFAULT_DOMAIN}");
            Name::from_ascii(DEFAULT_DOMAIN).unwrap_or_else(|_| Name::root())
        }
    }
}

/// `labels.` followed by `domain`, or None when a label is not a valid DNS label.
pub(super) fn fqdn(labels: &[&str], domain: &Name) -> Option<Name> {
    Name::from_labels(labels.iter().map(|l| l.as_bytes()))
        .ok()?
        .append_domain(domain)
        .ok()
}

pub(super) fn lower_labels(name: &Name) -> Vec<String> {
    name.iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect()
}

pub(super) fn strip_underscore(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}
