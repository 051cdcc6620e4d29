//! The answer to one query from a [`Records`] snapshot, after CoreDNS's `kubernetes`
//! plugin (`pods insecure`, reverse zones with fallthrough, the way k3s configures it):
//! name parsing, Service/endpoint/pod lookups, CNAME following, SRV, PTR, NXDOMAIN/NODATA.

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, Metadata, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::names::{fqdn, lower_labels, pod_ip, reverse_ip, strip_underscore};
use super::records::{Kind, PortEntry, Records};

/// TTL of every record in the cluster zone (the `kubernetes` plugin's default).
pub const TTL: u32 = 5;
/// The Kubernetes DNS schema version answered at `dns-version.<domain>` TXT.
pub const SCHEMA_VERSION: &str = "1.1.0";
/// CoreDNS gives the schema-version TXT record a long TTL: it never changes.
const VERSION_TTL: u32 = 28800;
/// CNAME chains inside the zone are followed at most this deep (CoreDNS's limit).
const MAX_CNAME_CHAIN: usize = 10;
/// The UDP payload size we advertise and send at most (the DNS flag day 2020 value, which
/// avoids IP fragmentation).
pub(super) const EDNS_PAYLOAD: u16 = 1232;

/// What one name resolves to before the query type is looked at.
struct Item {
    host: Host,
    port: i32,
    /// The name an SRV record points at for this address.
    target: Option<Name>,
}

enum Host {
    Ip(IpAddr),
    Name(Name),
}

enum Outcome {
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    NoData,
    NxDomain,
    Refused,
}

impl Records {
    /// The answer for a query about the cluster's zones (`<domain>` and the reverse zones of
    /// the addresses it knows), or None when the name is not ours (forward it). None as well
    /// for a request without exactly one question or of a class other than IN.
    ///
    /// The response carries the request's ID, RD and CD bits and question, AA, and an OPT
    /// record when the request had one; NXDOMAIN and NODATA carry the zone's SOA.
    pub fn answer(&self, request: &Message) -> Option<Message> {
        let [query] = request.queries.as_slice() else {
            return None;
        };
        if query.query_class() != DNSClass::IN {
            return None;
        }
        let labels = lower_labels(query.name());
        let qtype = query.query_type();
        let outcome = if let Some(rel) = self.relative(&labels) {
            if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
                Outcome::Refused
            } else {
                self.lookup(query.name(), &rel, qtype, &mut Vec::new())
            }
        } else {
            // Reverse names of addresses we do not know fall through to the upstreams, as
            // k3s configures CoreDNS (`fallthrough in-addr.arpa ip6.arpa`).
            if qtype != RecordType::PTR {
                return None;
            }
            let names = self.reverse.get(&reverse_ip(&labels)?)?;
            let answers = names
                .iter()
                .map(|n| record(query.name(), TTL, RData::PTR(PTR(n.clone()))))
                .collect();
            Outcome::Found {
                answers,
                additionals: Vec::new(),
            }
        };
        Some(self.response(request, query, outcome))
    }

    /// When `response` (from [`Records::answer`]) ends in a CNAME to a name outside the zone
    /// without records of the asked type, the name and type to look up upstream and append
    /// (what CoreDNS does for ExternalName Services).
    pub fn external_cname(&self, response: &Message) -> Option<(Name, RecordType)> {
        let qtype = response.queries.first()?.query_type();
        if response.metadata.response_code != ResponseCode::NoError
            || matches!(qtype, RecordType::CNAME | RecordType::ANY)
            || response.answers.iter().any(|r| r.record_type() == qtype)
        {
            return None;
        }
        let RData::CNAME(CNAME(target)) = &response.answers.last()?.data else {
            return None;
        };
        if self.relative(&lower_labels(target)).is_some() {
            return None;
        }
        Some((target.clone(), qtype))
    }

    fn response(&self, request: &Message, query: &Query, outcome: Outcome) -> Message {
        let mut msg = Message::response(request.metadata.id, request.metadata.op_code);
        msg.metadata = Metadata::response_from_request(&request.metadata);
        // We resolve other names for the client, so recursion is available.
        msg.metadata.recursion_available = true;
        msg.add_query(query.clone());
        if let Some(edns) = &request.edns {
            msg.set_edns(response_edns());
            if edns.version() > 0 {
                msg.metadata.response_code = ResponseCode::BADVERS;
                return msg;
            }
        }
        let soa = match outcome {
            Outcome::Refused => {
                msg.metadata.response_code = ResponseCode::Refused;
                return msg;
            }
            Outcome::Found {
                answers,
                additionals,
            } if !answers.is_empty() => {
                msg.metadata.authoritative = true;
                msg.insert_answers(answers);
                msg.insert_additionals(additionals);
                return msg;
            }
            Outcome::Found { .. } | Outcome::NoData => ResponseCode::NoError,
            Outcome::NxDomain => ResponseCode::NXDomain,
        };
        msg.metadata.authoritative = true;
        msg.metadata.response_code = soa;
        msg.add_authority(self.soa());
        msg
    }

    /// The records for `owner` (whose labels below the zone are `rel`), by query type.
    /// `chain` holds the CNAME targets followed so far.
    fn lookup(
        &self,
        owner: &Name,
        rel: &[String],
        qtype: RecordType,
        chain: &mut Vec<Name>,
    ) -> Outcome {
        let rel: Vec<&str> = rel.iter().map(String::as_str).collect();
        match (rel.as_slice(), qtype) {
            ([], RecordType::SOA) => return found(vec![self.soa()], Vec::new()),
            ([], RecordType::NS) => {
                let ns_name = self.ns_name();
                let glue = self
                    .dns_ips
                    .iter()
                    .map(|ip| address(&ns_name, *ip))
                    .collect();
                return found(vec![record(owner, TTL, RData::NS(NS(ns_name)))], glue);
            }
            ([], _) => return Outcome::NoData,
            (["dns-version"], RecordType::TXT) => {
                let txt = TXT::new(vec![SCHEMA_VERSION.to_string()]);
                return found(
                    vec![record(owner, VERSION_TTL, RData::TXT(txt))],
                    Vec::new(),
                );
            }
            (["dns-version"], _) => return Outcome::NoData,
            (["ns", "dns"], RecordType::A | RecordType::AAAA) => {
                let answers = (self.dns_ips.iter())
                    .filter(|ip| family(**ip) == qtype)
                    .map(|ip| address(owner, *ip))
                    .collect();
                return found(answers, Vec::new());
            }
            (["ns", "dns"], _) => return Outcome::NoData,
            _ => {}
        }
        let Some(items) = self.items(&rel) else {
            return Outcome::NxDomain;
        };
        match qtype {
            RecordType::A | RecordType::AAAA | RecordType::TXT => {
                found(self.addresses(owner, &items, qtype, chain), Vec::new())
            }
            RecordType::SRV => srv(owner, &items),
            RecordType::CNAME => match items.first().map(|i| &i.host) {
                Some(Host::Name(target)) => found(
                    vec![record(owner, TTL, RData::CNAME(CNAME(target.clone())))],
                    Vec::new(),
                ),
                _ => Outcome::NoData,
            },
            _ => Outcome::NoData,
        }
    }

    /// What `rel` (labels below the zone, left to right) names, after CoreDNS's
    /// `parseRequest`/`findServices`/`findPods`: None for NXDOMAIN, empty for a name that
    /// exists without addresses (`svc`, `<ns>.svc`, …).
    fn items(&self, rel: &[&str]) -> Option<Vec<Item>> {
        let (&kind, rest) = rel.split_last()?;
        if kind != "svc" && kind != "pod" {
            return None;
        }
        let Some((&ns, rest)) = rest.split_last() else {
            return Some(Vec::new());
        };
        let Some((&name, rest)) = rest.split_last() else {
            return self.namespaces.contains(ns).then(Vec::new);
        };
        if kind == "pod" {
            if !rest.is_empty() || (self.namespaces_listed && !self.namespaces.contains(ns)) {
                return None;
            }
            let ip = pod_ip(name)?;
            return Some(vec![Item {
                host: Host::Ip(ip),
                port: -1,
                target: None,
            }]);
        }
        let (endpoint, port, proto) = match rest {
            [] => (None, None, None),
            [endpoint] => (Some(*endpoint), None, None),
            [port, proto] => (
                None,
                Some(strip_underscore(port)),
                Some(strip_underscore(proto)),
            ),
            _ => return None,
        };
        let svc = self.services.get(&(ns.to_string(), name.to_string()))?;
        let port_matches = |p: &PortEntry| {
            port.is_none_or(|n| n == p.name) && proto.is_none_or(|n| n == p.protocol)
        };
        let mut items = Vec::new();
        if let Kind::ExternalName(target) = &svc.kind {
            // No endpoints, ports or protocols below an ExternalName.
            if endpoint.is_none() && port.is_none() {
                items.push(Item {
                    host: Host::Name(target.clone()),
                    port: -1,
                    target: None,
                });
            }
        } else if matches!(svc.kind, Kind::Headless) || endpoint.is_some() {
            // A headless Service, or one endpoint of any Service by its name.
            for ep in &svc.endpoints {
                if endpoint.is_some_and(|e| e != ep.label) {
                    continue;
                }
                for p in ep.ports.iter().filter(|p| port_matches(p)) {
                    items.push(Item {
                        host: Host::Ip(ep.ip),
                        port: p.port,
                        target: Some(ep.fqdn.clone()),
                    });
                }
            }
        } else if let Kind::ClusterIp(ips) = &svc.kind {
            let target = fqdn(&[name, ns, "svc"], &self.domain);
            for p in svc.ports.iter().filter(|p| port_matches(p)) {
                for ip in ips {
                    items.push(Item {
                        host: Host::Ip(*ip),
                        port: p.port,
                        target: target.clone(),
                    });
                }
            }
        }
        // A Service with nothing to answer (a headless one without ready endpoints, a port
        // it does not have) does not exist, as in CoreDNS.
        (!items.is_empty()).then_some(items)
    }

    /// Address (or TXT) answers for `owner`: the items' addresses of the asked family, and
    /// for an ExternalName its CNAME, followed here when the target is in the zone.
    fn addresses(
        &self,
        owner: &Name,
        items: &[Item],
        qtype: RecordType,
        chain: &mut Vec<Name>,
    ) -> Vec<Record> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for item in items {
            match &item.host {
                Host::Ip(ip) => {
                    if family(*ip) == qtype && seen.insert(*ip) {
                        out.push(address(owner, *ip));
                    }
                }
                Host::Name(target) => {
                    if target == owner || chain.len() >= MAX_CNAME_CHAIN || chain.contains(target) {
                        continue;
                    }
                    let cname = record(owner, TTL, RData::CNAME(CNAME(target.clone())));
                    let Some(rel) = self.relative(&lower_labels(target)) else {
                        // The server completes it from the upstreams.
                        out.push(cname);
                        continue;
                    };
                    chain.push(target.clone());
                    if let Outcome::Found { answers, .. } = self.lookup(target, &rel, qtype, chain)
                        && !answers.is_empty()
                    {
                        out.push(cname);
                        out.extend(answers);
                    }
                }
            }
        }
        out
    }

    /// The labels of `labels` below the zone apex, or None when the name is not in the zone.
    fn relative(&self, labels: &[String]) -> Option<Vec<String>> {
        let cut = labels.len().checked_sub(self.domain_labels.len())?;
        (labels[cut..] == self.domain_labels[..]).then(|| labels[..cut].to_vec())
    }

    fn ns_name(&self) -> Name {
        fqdn(&["ns", "dns"], &self.domain).unwrap_or_else(|| self.domain.clone())
    }

    /// The zone's SOA, shaped like CoreDNS's (`ns.dns.<domain>`, `hostmaster.<domain>`).
    fn soa(&self) -> Record {
        let mbox = fqdn(&["hostmaster"], &self.domain).unwrap_or_else(|| self.domain.clone());
        let soa = SOA::new(self.ns_name(), mbox, self.serial, 7200, 1800, 86400, TTL);
        record(&self.domain, TTL, RData::SOA(soa))
    }
}

/// SRV records for the items' addresses with ports, each pointing at the item's name, with
/// the addresses as additional records. Weights split 100 evenly, as CoreDNS does.
fn srv(owner: &Name, items: &[Item]) -> Outcome {
    let with_ip: Vec<(&Item, IpAddr)> = items
        .iter()
        .filter_map(|i| match i.host {
            Host::Ip(ip) => Some((i, ip)),
            Host::Name(_) => None,
        })
        .collect();
    let weight = (100 / with_ip.len().max(1)).max(1) as u16;
    let (mut answers, mut additionals) = (Vec::new(), Vec::new());
    let (mut seen_srv, mut seen_addr) = (HashSet::new(), HashSet::new());
    for (item, ip) in with_ip {
        let (Some(target), Ok(port)) = (&item.target, u16::try_from(item.port)) else {
            continue;
        };
        if seen_srv.insert((target.clone(), port)) {
            let data = SRV::new(0, weight, port, target.clone());
            answers.push(record(owner, TTL, RData::SRV(data)));
        }
        if seen_addr.insert((target.clone(), ip)) {
            additionals.push(address(target, ip));
        }
    }
    found(answers, additionals)
}

fn found(answers: Vec<Record>, additionals: Vec<Record>) -> Outcome {
    Outcome::Found {
        answers,
        additionals,
    }
}

fn family(ip: IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

fn address(owner: &Name, ip: IpAddr) -> Record {
    let data = match ip {
        IpAddr::V4(ip) => RData::A(A(ip)),
        IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
    };
    record(owner, TTL, data)
}

fn record(owner: &Name, ttl: u32, data: RData) -> Record {
    Record::from_rdata(owner.clone(), ttl, data)
}

pub(super) fn response_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns
}
