//! [`Records`]: the cluster zone as an immutable snapshot of Services and EndpointSlices
//! (the ready endpoints of each Service, reverse names, the DNS Service's address). The
//! answers to queries about it are in `answer.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::names::{dashed, external_target, fqdn, lower_labels, parse_domain};
use crate::services::DNS_SERVICE;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The cluster zone at one moment: built from the cached objects on every change, shared
/// read-only (as `Arc<Records>`) with the server.
#[derive(Debug)]
pub struct Records {
    /// `<domain>.`, lower case.
    pub(super) domain: Name,
    pub(super) domain_labels: Vec<String>,
    /// SOA serial: the build time in Unix seconds, like CoreDNS's "last modified".
    pub(super) serial: u32,
    /// By lower-case (namespace, name).
    pub(super) services: HashMap<(String, String), ServiceEntry>,
    /// Namespaces that exist: the listed ones after [`Records::with_namespaces`], else the
    /// ones holding a Service or EndpointSlice.
    pub(super) namespaces: BTreeSet<String>,
    pub(super) namespaces_listed: bool,
    /// PTR targets by address: a Service's name for its ClusterIP, else the endpoint names.
    pub(super) reverse: HashMap<IpAddr, Vec<Name>>,
    /// ClusterIPs of the cluster DNS Service, the address of `ns.dns.<domain>`.
    pub(super) dns_ips: Vec<IpAddr>,
}

#[derive(Debug)]
pub(super) struct ServiceEntry {
    pub(super) kind: Kind,
    pub(super) ports: Vec<PortEntry>,
    /// Ready endpoints, in slice order.
    pub(super) endpoints: Vec<EndpointEntry>,
}

#[derive(Debug)]
pub(super) enum Kind {
    /// Has a virtual IP (possibly none allocated yet).
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: answered with the endpoints' addresses.
    Headless,
    /// `type: ExternalName`: a CNAME.
    ExternalName(Name),
}

#[derive(Clone, Debug)]
pub(super) struct PortEntry {
    /// Lower case; empty for an unnamed port.
    pub(super) name: String,
    /// Lower case (`tcp`, `udp`, `sctp`).
    pub(super) protocol: String,
    /// -1 when the slice declares no ports (CoreDNS's sentinel: A records, no SRV).
    pub(super) port: i32,
}

#[derive(Debug)]
pub(super) struct EndpointEntry {
    pub(super) ip: IpAddr,
    /// The endpoint's own label: its hostname, else its address with dashes.
    pub(super) label: String,
    /// `<label>.<svc>.<ns>.svc.<domain>.`
    pub(super) fqdn: Name,
    pub(super) ports: Arc<[PortEntry]>,
}

impl Records {
    /// Builds the zone `domain` (e.g. `cluster.local`) from Services and the EndpointSlices
    /// labelled `kubernetes.io/service-name`. Objects missing a name, namespace or spec, and
    /// addresses that do not parse, are skipped.
    pub fn build(
        domain: &str,
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
    ) -> Records {
        let domain = parse_domain(domain);
        let domain_labels = lower_labels(&domain);
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);

        let mut namespaces = BTreeSet::new();
        let mut slices_of: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for slice in slices {
            let labels = slice.metadata.labels.as_ref();
            if let (Some(ns), Some(svc)) = (
                slice.metadata.namespace.as_ref(),
                labels.and_then(|l| l.get(SERVICE_NAME_LABEL)),
            ) {
                namespaces.insert(ns.to_ascii_lowercase());
                slices_of
                    .entry((ns.to_ascii_lowercase(), svc.to_ascii_lowercase()))
                    .or_default()
                    .push(slice);
            }
        }
        for list in slices_of.values_mut() {
            list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        }

        let mut sorted: Vec<&Service> = services.iter().map(|s| s.as_ref()).collect();
        sorted.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });

        let mut entries = HashMap::new();
        let mut vip_names: HashMap<IpAddr, Name> = HashMap::new();
        let mut endpoint_names: HashMap<IpAddr, Vec<Name>> = HashMap::new();
        let mut dns_ips = Vec::new();
        for svc in sorted {
            let (Some(ns), Some(name), Some(spec)) = (
                svc.metadata.namespace.as_ref(),
                svc.metadata.name.as_ref(),
                svc.spec.as_ref(),
            ) else {
                continue;
            };
            let key = (ns.to_ascii_lowercase(), name.to_ascii_lowercase());
            namespaces.insert(key.0.clone());
            let Some(svc_fqdn) = fqdn(&[&key.1, &key.0, "svc"], &domain) else {
                continue;
            };
            let kind = if spec.type_.as_deref() == Some("ExternalName") {
                // An address is not a valid externalName target (CoreDNS answers nothing).
                match spec.external_name.as_deref().and_then(external_target) {
                    Some(target) => Kind::ExternalName(target),
                    None => continue,
                }
            } else if spec.cluster_ip.as_deref() == Some("None") {
                Kind::Headless
            } else {
                let mut ips: Vec<IpAddr> = spec
                    .cluster_ips
                    .iter()
                    .flatten()
                    .filter_map(|ip| ip.parse().ok())
                    .collect();
                if ips.is_empty() {
                    ips.extend(
                        spec.cluster_ip
                            .as_deref()
                            .and_then(|ip| ip.parse::<IpAddr>().ok()),
                    );
                }
                Kind::ClusterIp(ips)
            };
            if let Kind::ClusterIp(ips) = &kind {
                for ip in ips {
                    vip_names.entry(*ip).or_insert_with(|| svc_fqdn.clone());
                }
                if (ns.as_str(), name.as_str()) == DNS_SERVICE {
                    dns_ips.clone_from(ips);
                }
            }
            let ports = spec
                .ports
                .iter()
                .flatten()
                .map(|p| PortEntry {
                    name: p.name.as_deref().unwrap_or("").to_ascii_lowercase(),
                    protocol: protocol(p.protocol.as_deref()),
                    port: p.port,
                })
                .collect();
            let mut endpoints = Vec::new();
            if !matches!(kind, Kind::ExternalName(_)) {
                for slice in slices_of.get(&key).into_iter().flatten() {
                    collect_endpoints(slice, &svc_fqdn, &mut endpoints);
                }
            }
            for ep in &endpoints {
                let names = endpoint_names.entry(ep.ip).or_default();
                if !names.contains(&ep.fqdn) {
                    names.push(ep.fqdn.clone());
                }
            }
            entries.insert(
                key,
                ServiceEntry {
                    kind,
                    ports,
                    endpoints,
                },
            );
        }

        // A ClusterIP names its Service alone; other addresses name every endpoint that has
        // them (CoreDNS's reverse lookup order).
        let mut reverse = endpoint_names;
        for (ip, name) in vip_names {
            reverse.insert(ip, vec![name]);
        }
        Records {
            domain,
            domain_labels,
            serial,
            services: entries,
            namespaces,
            namespaces_listed: false,
            reverse,
            dns_ips,
        }
    }

    /// Restricts the namespaces that exist to `namespaces` (CoreDNS checks the Namespace
    /// object): `<ns>.svc.<domain>` and pod names in a missing namespace are NXDOMAIN.
    /// Without it, namespaces holding a Service or EndpointSlice exist and pod names answer
    /// in any namespace.
    pub fn with_namespaces(mut self, namespaces: &[Arc<Namespace>]) -> Records {
        self.namespaces = namespaces
            .iter()
            .filter_map(|n| n.metadata.name.as_ref())
            .map(|n| n.to_ascii_lowercase())
            .collect();
        self.namespaces_listed = true;
        self
    }

    /// The zone apex, `<domain>.` in lower case.
    pub fn domain(&self) -> &Name {
        &self.domain
    }
}

fn collect_endpoints(slice: &EndpointSlice, svc_fqdn: &Name, out: &mut Vec<EndpointEntry>) {
    if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
        return;
    }
    let mut ports: Vec<PortEntry> = (slice.ports.iter().flatten())
        .map(|p| PortEntry {
            name: p.name.as_deref().unwrap_or("").to_ascii_lowercase(),
            protocol: protocol(p.protocol.as_deref()),
            port: p.port.unwrap_or(-1),
        })
        .collect();
    if ports.is_empty() {
        ports.push(PortEntry {
            name: String::new(),
            protocol: String::new(),
            port: -1,
        });
    }
    let ports: Arc<[PortEntry]> = ports.into();
    for ep in &slice.endpoints {
        // Only ready endpoints are published; an unset condition counts as ready.
        if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
            continue;
        }
        for addr in &ep.addresses {
            let Ok(ip) = addr.parse::<IpAddr>() else {
                continue;
            };
            let label = match ep.hostname.as_deref() {
                Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
                _ => dashed(ip),
            };
            let Ok(fqdn) = Name::from_ascii(&label).and_then(|l| l.append_domain(svc_fqdn)) else {
                continue;
            };
            out.push(EndpointEntry {
                ip,
                label,
                fqdn,
                ports: ports.clone(),
            });
        }
    }
}

fn protocol(p: Option<&str>) -> String {
    p.unwrap_or("TCP").to_ascii_lowercase()
}
