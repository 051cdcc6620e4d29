//! Names and addresses with network meaning, as `k8s.io/apimachinery/pkg/util/validation`
//! checks them: `IsWildcardDNS1123Subdomain`, `IsFullyQualifiedName`,
//! `IsFullyQualifiedDomainName`, `IsDomainPrefixedPath`, and the "legacy field" IP and CIDR
//! checks (`IsValidIPForLegacyField`, `IsValidCIDRForLegacyField` with strict validation off,
//! as the `StrictIPCIDRValidation` gate is in 1.33), which parse the way Go's
//! `netutils.ParseIPSloppy` / `ParseCIDRSloppy` do (IPv4 octets may have leading zeros).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::field::FieldError;

use super::name::{
    DNS1123_SUBDOMAIN_FMT, DNS1123_SUBDOMAIN_MAX_LENGTH, is_dns1123_label, is_dns1123_subdomain,
    matches_dns1123_subdomain, max_len_error, regex_error,
};
use super::path::{Path, invalid_str, required};

const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const HTTP_PATH_FMT: &str = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+";

/// The message of an invalid legacy CIDR field.
pub(crate) const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
/// The message of an invalid legacy IP field.
pub(crate) const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// `IsWildcardDNS1123Subdomain`.
pub(crate) fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !value
        .strip_prefix("*.")
        .is_some_and(matches_dns1123_subdomain)
    {
        let fmt = format!(r"\*\.{DNS1123_SUBDOMAIN_FMT}");
        errs.push(regex_error(WILDCARD_MSG, &fmt, &["*.example.com"]));
    }
    errs
}

/// `IsFullyQualifiedName`: a DNS subdomain with at least three segments (webhook names).
pub(crate) fn is_fully_qualified_name(path: &Path, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![required(path, "")];
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![invalid_str(path, name, &errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![invalid_str(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// `IsFullyQualifiedDomainName`: two segments suffice and a trailing dot is allowed.
pub(crate) fn is_fully_qualified_domain_name(path: &Path, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![invalid_str(path, name, &errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![invalid_str(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![invalid_str(path, label, &errs.join(","))];
        }
    }
    Vec::new()
}

/// `IsDomainPrefixedPath` (`acme.io/foo`): IngressClass controllers.
pub(crate) fn is_domain_prefixed_path(path: &Path, value: &str) -> Vec<FieldError> {
    if value.is_empty() {
        return vec![required(path, "")];
    }
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return vec![invalid_str(
            path,
            value,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut errs: Vec<FieldError> = is_dns1123_subdomain(host)
        .iter()
        .map(|m| invalid_str(path, host, m))
        .collect();
    let http_path_char = |c: char| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c);
    if !rest.chars().all(http_path_char) {
        errs.push(invalid_str(
            path,
            rest,
            &regex_error("Invalid path", HTTP_PATH_FMT, &[]),
        ));
    }
    errs
}

/// `netutils.ParseIPSloppy`: IPv4 octets may carry leading zeros (read as decimal).
pub(crate) fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts
        .next()
        .is_none()
        .then(|| IpAddr::V4(Ipv4Addr::from(octets)))
}

/// A parsed CIDR: the masked network address, its prefix length, and its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: u128,
    prefix: u32,
    v4: bool,
}

impl Cidr {
    /// `netutils.ParseCIDRSloppy`.
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let (ip, bits) = s.split_once('/')?;
        if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u32 = bits.parse().ok()?;
        let (addr, width, v4) = match parse_ip_sloppy(ip)? {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32, true),
            IpAddr::V6(a) => (u128::from(a), 128, false),
        };
        if prefix > width {
            return None;
        }
        let host_bits = width - prefix;
        let mask = if host_bits >= 128 {
            0
        } else {
            !((1u128 << host_bits) - 1)
        };
        Some(Cidr {
            network: addr & mask,
            prefix,
            v4,
        })
    }

    /// Whether this is an IPv4 CIDR.
    pub(crate) fn is_v4(&self) -> bool {
        self.v4
    }

    /// `IPNet.Contains(other.IP)` and a longer prefix: `other` is a strict subset of `self`.
    pub(crate) fn strictly_contains(&self, other: &Cidr) -> bool {
        if self.v4 != other.v4 || self.prefix >= other.prefix {
            return false;
        }
        let width = if self.v4 { 32 } else { 128 };
        let shift = width - self.prefix;
        shift >= 128 || (self.network >> shift) == (other.network >> shift)
    }
}

/// `IsValidCIDRForLegacyField` (non-strict), skipping values that were already stored.
pub(crate) fn legacy_cidr(path: &Path, value: &str, allowed: &[&str]) -> Option<FieldError> {
    (!allowed.contains(&value) && Cidr::parse(value).is_none())
        .then(|| invalid_str(path, value, CIDR_MSG))
}

/// `IsValidIPForLegacyField` (non-strict).
pub(crate) fn legacy_ip(path: &Path, value: &str) -> Option<FieldError> {
    parse_ip_sloppy(value)
        .is_none()
        .then(|| invalid_str(path, value, IP_MSG))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_domains_and_paths() {
        assert!(is_wildcard_dns1123_subdomain("*.example.com").is_empty());
        assert_eq!(
            is_wildcard_dns1123_subdomain("*example.com"),
            vec![r"a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()]
        );
        let p = Path::new("spec").child("controller");
        assert!(is_domain_prefixed_path(&p, "acme.io/foo").is_empty());
        let render = |e: Vec<FieldError>| e.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            render(is_domain_prefixed_path(&p, "nginx")),
            vec![
                "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
            ]
        );
        assert_eq!(
            render(is_domain_prefixed_path(&p, "acme.io/a b")),
            vec![
                r#"spec.controller: Invalid value: "a b": Invalid path (regex used for validation is '[A-Za-z0-9/\-._~%!$&'()*+,;=:]+')"#
            ]
        );
        let n = Path::new("webhooks").index(0).child("name");
        assert_eq!(
            render(is_fully_qualified_name(&n, "hook.example")),
            vec![
                "webhooks[0].name: Invalid value: \"hook.example\": should be a domain with at least three segments separated by dots"
            ]
        );
        assert!(is_fully_qualified_domain_name(&n, "db.example.").is_empty());
    }

    #[test]
    fn sloppy_addresses() {
        assert_eq!(
            parse_ip_sloppy("010.1.1.1"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1)))
        );
        assert!(parse_ip_sloppy("256.1.1.1").is_none());
        assert!(parse_ip_sloppy("1.1.1").is_none());
        let outer = Cidr::parse("10.0.0.0/16");
        let inner = Cidr::parse("10.0.1.0/24");
        assert!(outer.is_some_and(|o| inner.is_some_and(|i| o.strictly_contains(&i))));
        assert!(inner.is_some_and(|i| outer.is_some_and(|o| !i.strictly_contains(&o))));
        assert!(Cidr::parse("10.0.0.1/24").is_some());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("fd00::/8").is_some());
        assert!(Cidr::parse("10.0.0.0").is_none());
    }
}
