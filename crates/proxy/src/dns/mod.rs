//! The cluster DNS server: authoritative for `<domain>` (`cluster.local`) and for the
//! reverse names of Service and endpoint addresses, with the records and shapes of
//! CoreDNS's `kubernetes` plugin as k3s configures it (`pods insecure`, TTL 5, reverse
//! fallthrough); every other name is relayed to the node's resolvers.
//!
//! # Layout
//! - `mod.rs`: [`upstreams_from_resolv_conf`].
//! - `records.rs`: [`Records`], the zone snapshot built from Services and EndpointSlices.
//! - `answer.rs`: [`Records::answer`], the response to one query (A/AAAA, SRV, CNAME, PTR,
//!   pod names, NXDOMAIN/NODATA with SOA).
//! - `names.rs`: dashed endpoint/pod labels, reverse names.
//! - `server.rs`: [`serve`], the UDP/TCP listeners, forwarding, truncation.
//!
//! Built on `hickory-proto` for the wire format only; the serving loop is ours.

mod answer;
mod names;
mod records;
mod server;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use answer::{SCHEMA_VERSION, TTL};
pub use records::Records;
pub use server::serve;

/// The cluster DNS Service's address (`kube-system/kube-dns`), never used as an upstream.
pub const CLUSTER_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);

/// Name servers from resolv.conf text (port 53), skipping ones that are the DNS service IP itself.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    upstreams_excluding(text, &[IpAddr::V4(CLUSTER_DNS_IP)])
}

/// The `nameserver` lines of resolv.conf text as port-53 addresses, in order, without
/// duplicates and without `exclude` (our own address: forwarding there would loop).
/// Unparsable lines are skipped, as the libc resolver does.
pub fn upstreams_excluding(text: &str, exclude: &[IpAddr]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // IPv6 link-local servers carry a zone (`fe80::1%eth0`), which SocketAddr cannot.
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        let addr = SocketAddr::new(ip, 53);
        if !exclude.contains(&ip) && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}
