//! Answers from [`Records`] built from hand-made objects, one behaviour per test.

mod serve;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, SRV};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;

pub(super) fn svc(v: serde_json::Value) -> Arc<Service> {
    Arc::new(serde_json::from_value(v).expect("service"))
}

/// An EndpointSlice of `svc`: (address, ready, hostname) per endpoint, one port.
pub(super) fn slice(
    ns: &str,
    svc: &str,
    eps: &[(&str, bool, Option<&str>)],
    port: (&str, i32),
) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = eps
        .iter()
        .map(|(ip, ready, host)| {
            let mut ep = json!({"addresses": [ip], "conditions": {"ready": ready}});
            if let Some(host) = host {
                ep["hostname"] = json!(host);
            }
            ep
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-abc"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": port.0, "port": port.1, "protocol": "TCP"}],
        }))
        .expect("slice"),
    )
}

pub(super) fn services() -> Vec<Arc<Service>> {
    vec![
        svc(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"], "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "protocol": "TCP"}]},
        })),
        // The StatefulSet's governing Service.
        svc(json!({
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]},
        })),
        // Headless, endpoints without hostnames.
        svc(json!({
            "metadata": {"name": "db", "namespace": "data"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]},
        })),
        svc(json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"},
        })),
        svc(json!({
            "metadata": {"name": "alias", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"},
        })),
        svc(json!({
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
        })),
    ]
}

pub(super) fn slices() -> Vec<Arc<EndpointSlice>> {
    vec![
        slice(
            "default",
            "web",
            &[("10.42.0.5", true, None), ("10.42.0.6", false, None)],
            ("http", 8080),
        ),
        slice(
            "default",
            "nginx",
            &[
                ("10.42.0.7", true, Some("web-0")),
                ("10.42.0.8", true, Some("web-1")),
                ("10.42.0.9", false, Some("web-2")),
            ],
            ("web", 80),
        ),
        slice("data", "db", &[("10.42.0.11", true, None)], ("pg", 5432)),
    ]
}

fn records() -> Records {
    Records::build("cluster.local", &services(), &slices())
}

pub(super) fn query(id: u16, name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    msg
}

fn ask(records: &Records, name: &str, qtype: RecordType) -> Message {
    let request = query(7, name, qtype);
    let reply = records
        .answer(&request)
        .expect("a name of the cluster zone");
    assert_eq!(reply.metadata.id, 7);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    assert_eq!(reply.queries, request.queries, "question echoed");
    reply
}

pub(super) fn ips(reply: &Message) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = (reply.answers.iter())
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn v4(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

fn srvs(reply: &Message) -> Vec<(u16, u16, String)> {
    let mut out: Vec<_> = (reply.answers.iter())
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn additional_ips(reply: &Message) -> Vec<(String, IpAddr)> {
    let mut out: Vec<_> = (reply.additionals.iter())
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((r.name.to_ascii(), IpAddr::V4(a.0))),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn ptrs(reply: &Message) -> Vec<String> {
    let mut out: Vec<_> = (reply.answers.iter())
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The reply is NXDOMAIN or NODATA (per `code`): no answers and the zone's SOA.
fn assert_negative(reply: &Message, code: ResponseCode) {
    assert_eq!(reply.metadata.response_code, code);
    assert!(reply.metadata.authoritative);
    assert!(reply.answers.is_empty(), "{:?}", reply.answers);
    let [soa] = reply.authorities.as_slice() else {
        panic!("one SOA in authority: {:?}", reply.authorities);
    };
    assert_eq!(soa.name, name("cluster.local."));
    let RData::SOA(data) = &soa.data else {
        panic!("not an SOA: {soa:?}");
    };
    assert_eq!(&data.mname, &name("ns.dns.cluster.local."));
    assert_eq!(&data.rname, &name("hostmaster.cluster.local."));
    assert_eq!((soa.ttl, data.minimum), (5, 5));
}

#[test]
fn cluster_ip_service_resolves_to_its_cluster_ip() {
    let reply = ask(&records(), "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(reply.metadata.recursion_desired);
    assert_eq!(ips(&reply), [v4("10.43.0.20")]);
    assert_eq!(reply.answers[0].ttl, TTL);
    assert_eq!(TTL, 5);
}

#[test]
fn names_are_matched_case_insensitively_and_echoed_as_asked() {
    let reply = ask(&records(), "Web.DEFAULT.svc.Cluster.Local.", RecordType::A);
    assert_eq!(ips(&reply), [v4("10.43.0.20")]);
    assert_eq!(
        reply.answers[0].name.to_ascii(),
        "Web.DEFAULT.svc.Cluster.Local."
    );
}

#[test]
fn aaaa_of_an_ipv4_service_is_nodata_with_soa() {
    let reply = ask(
        &records(),
        "web.default.svc.cluster.local.",
        RecordType::AAAA,
    );
    assert_negative(&reply, ResponseCode::NoError);
}

#[test]
fn headless_service_resolves_to_its_ready_endpoints() {
    let reply = ask(
        &records(),
        "nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.0.7"), v4("10.42.0.8")]);
}

#[test]
fn statefulset_pods_resolve_by_hostname() {
    let records = records();
    let reply = ask(
        &records,
        "web-0.nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.0.7")]);
    let reply = ask(
        &records,
        "web-1.nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.0.8")]);
    // Not ready: not published.
    let reply = ask(
        &records,
        "web-2.nginx.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_negative(&reply, ResponseCode::NXDomain);
}

#[test]
fn endpoints_without_hostname_are_named_by_dashed_address() {
    let records = records();
    let reply = ask(
        &records,
        "10-42-0-11.db.data.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.0.11")]);
    // Endpoints of a ClusterIP Service answer by name too, as in CoreDNS.
    let reply = ask(
        &records,
        "10-42-0-5.web.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.0.5")]);
}

#[test]
fn external_name_service_is_a_cname() {
    let records = records();
    let reply = ask(&records, "ext.default.svc.cluster.local.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let [cname] = reply.answers.as_slice() else {
        panic!("one CNAME: {:?}", reply.answers);
    };
    assert_eq!(cname.data, RData::CNAME(CNAME(name("example.com."))));
    // The server completes it with the target's addresses from upstream.
    assert_eq!(
        records.external_cname(&reply),
        Some((name("example.com."), RecordType::A))
    );
    let reply = ask(
        &records,
        "ext.default.svc.cluster.local.",
        RecordType::CNAME,
    );
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(records.external_cname(&reply), None);
}

#[test]
fn external_name_inside_the_zone_is_followed() {
    let records = records();
    let reply = ask(&records, "alias.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        reply.answers[0].data,
        RData::CNAME(CNAME(name("web.default.svc.cluster.local.")))
    );
    assert_eq!(ips(&reply), [v4("10.43.0.20")]);
    assert_eq!(records.external_cname(&reply), None);
}

#[test]
fn srv_for_named_port_of_cluster_ip_service() {
    let records = records();
    let reply = ask(
        &records,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        srvs(&reply),
        [(100, 80, "web.default.svc.cluster.local.".into())]
    );
    let RData::SRV(srv) = &reply.answers[0].data else {
        panic!("not SRV");
    };
    assert_eq!(
        srv,
        &SRV::new(0, 100, 80, name("web.default.svc.cluster.local."))
    );
    assert_eq!(
        additional_ips(&reply),
        [("web.default.svc.cluster.local.".into(), v4("10.43.0.20"))]
    );
    let reply = ask(
        &records,
        "_metrics._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        srvs(&reply),
        [(100, 9090, "web.default.svc.cluster.local.".into())]
    );
    // Without the port prefix: every port.
    let reply = ask(&records, "web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        srvs(&reply),
        [
            (50, 80, "web.default.svc.cluster.local.".into()),
            (50, 9090, "web.default.svc.cluster.local.".into())
        ]
    );
    // A port or protocol the Service does not have.
    for missing in ["_http._udp", "_https._tcp"] {
        let q = format!("{missing}.web.default.svc.cluster.local.");
        assert_negative(&ask(&records, &q, RecordType::SRV), ResponseCode::NXDomain);
    }
}

#[test]
fn srv_of_headless_service_names_each_endpoint() {
    let records = records();
    let reply = ask(
        &records,
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        srvs(&reply),
        [
            (50, 80, "web-0.nginx.default.svc.cluster.local.".into()),
            (50, 80, "web-1.nginx.default.svc.cluster.local.".into())
        ]
    );
    assert_eq!(
        additional_ips(&reply),
        [
            (
                "web-0.nginx.default.svc.cluster.local.".into(),
                v4("10.42.0.7")
            ),
            (
                "web-1.nginx.default.svc.cluster.local.".into(),
                v4("10.42.0.8")
            )
        ]
    );
    let reply = ask(
        &records,
        "_pg._tcp.db.data.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        srvs(&reply),
        [(100, 5432, "10-42-0-11.db.data.svc.cluster.local.".into())]
    );
}

#[test]
fn ptr_names_cluster_ips_and_endpoints() {
    let records = records();
    let reply = ask(&records, "20.0.43.10.in-addr.arpa.", RecordType::PTR);
    assert!(reply.metadata.authoritative);
    assert_eq!(ptrs(&reply), ["web.default.svc.cluster.local."]);
    let reply = ask(&records, "7.0.42.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(ptrs(&reply), ["web-0.nginx.default.svc.cluster.local."]);
    let reply = ask(&records, "11.0.42.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(ptrs(&reply), ["10-42-0-11.db.data.svc.cluster.local."]);
    let reply = ask(&records, "5.0.42.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(ptrs(&reply), ["10-42-0-5.web.default.svc.cluster.local."]);
}

#[test]
fn unknown_reverse_names_are_forwarded() {
    let records = records();
    for (q, t) in [
        ("1.1.168.192.in-addr.arpa.", RecordType::PTR),
        // Not ready: not ours.
        ("9.0.42.10.in-addr.arpa.", RecordType::PTR),
        ("20.0.43.10.in-addr.arpa.", RecordType::A),
        ("0.43.10.in-addr.arpa.", RecordType::PTR),
    ] {
        assert!(records.answer(&query(1, q, t)).is_none(), "{q}");
    }
}

#[test]
fn pod_names_resolve_to_the_dashed_address() {
    let records = records();
    let reply = ask(
        &records,
        "10-42-0-99.default.pod.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.0.99")]);
    // `pods insecure` answers whether or not such a pod exists, in any namespace.
    let reply = ask(
        &records,
        "10-42-3-4.other.pod.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.3.4")]);
    let reply = ask(
        &records,
        "10-42-0-99.default.pod.cluster.local.",
        RecordType::AAAA,
    );
    assert_negative(&reply, ResponseCode::NoError);
    let reply = ask(
        &records,
        "not-an-ip.default.pod.cluster.local.",
        RecordType::A,
    );
    assert_negative(&reply, ResponseCode::NXDomain);
}

#[test]
fn missing_names_are_nxdomain_with_soa() {
    let records = records();
    for q in [
        "nope.default.svc.cluster.local.",
        // What a search list with ndots:5 produces for external names.
        "www.example.com.default.svc.cluster.local.",
        "example.com.svc.cluster.local.",
        "example.com.cluster.local.",
        "nosuchns.svc.cluster.local.",
        "a.b.c.d.web.default.svc.cluster.local.",
        "nope.nginx.default.svc.cluster.local.",
    ] {
        for t in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::TXT,
        ] {
            assert_negative(&ask(&records, q, t), ResponseCode::NXDomain);
        }
    }
}

#[test]
fn existing_names_without_records_are_nodata() {
    let records = records();
    for (q, t) in [
        ("default.svc.cluster.local.", RecordType::A),
        ("svc.cluster.local.", RecordType::A),
        ("cluster.local.", RecordType::A),
        ("web.default.svc.cluster.local.", RecordType::MX),
        ("web.default.svc.cluster.local.", RecordType::TXT),
        ("ext.default.svc.cluster.local.", RecordType::SRV),
    ] {
        assert_negative(&ask(&records, q, t), ResponseCode::NoError);
    }
}

#[test]
fn listed_namespaces_decide_which_exist() {
    let ns: Arc<Namespace> = Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "empty"}})).expect("namespace"),
    );
    let records = records().with_namespaces(&[ns]);
    let reply = ask(&records, "empty.svc.cluster.local.", RecordType::A);
    assert_negative(&reply, ResponseCode::NoError);
    let reply = ask(
        &records,
        "10-42-3-4.other.pod.cluster.local.",
        RecordType::A,
    );
    assert_negative(&reply, ResponseCode::NXDomain);
    let reply = ask(
        &records,
        "10-42-3-4.empty.pod.cluster.local.",
        RecordType::A,
    );
    assert_eq!(ips(&reply), [v4("10.42.3.4")]);
}

#[test]
fn zone_apex_has_soa_ns_and_schema_version() {
    let records = records();
    let reply = ask(&records, "cluster.local.", RecordType::SOA);
    let [soa] = reply.answers.as_slice() else {
        panic!("one SOA");
    };
    assert!(matches!(&soa.data, RData::SOA(s) if s.mname == name("ns.dns.cluster.local.")));
    let reply = ask(&records, "cluster.local.", RecordType::NS);
    assert!(
        matches!(&reply.answers[0].data, RData::NS(ns) if ns.0 == name("ns.dns.cluster.local."))
    );
    assert_eq!(
        additional_ips(&reply),
        [("ns.dns.cluster.local.".into(), v4("10.43.0.10"))]
    );
    let reply = ask(&records, "ns.dns.cluster.local.", RecordType::A);
    assert_eq!(ips(&reply), [v4("10.43.0.10")]);
    let reply = ask(&records, "dns-version.cluster.local.", RecordType::TXT);
    let RData::TXT(txt) = &reply.answers[0].data else {
        panic!("not TXT");
    };
    assert_eq!(txt.to_string(), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, "1.1.0");
    assert_eq!(
        ask(&records, "cluster.local.", RecordType::AXFR)
            .metadata
            .response_code,
        ResponseCode::Refused
    );
}

#[test]
fn other_names_are_not_ours() {
    let records = records();
    for q in ["example.com.", "cluster.local.example.com.", "local."] {
        assert!(records.answer(&query(1, q, RecordType::A)).is_none(), "{q}");
    }
    let mut two = query(1, "web.default.svc.cluster.local.", RecordType::A);
    two.add_query(Query::query(name("example.com."), RecordType::A));
    assert!(records.answer(&two).is_none());
}

#[test]
fn edns_is_echoed_and_newer_versions_refused() {
    let records = records();
    let mut request = query(9, "web.default.svc.cluster.local.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    request.set_edns(edns.clone());
    let reply = records.answer(&request).expect("ours");
    assert!(reply.edns.is_some());
    assert_eq!(ips(&reply), [v4("10.43.0.20")]);
    // Round-trips through the wire format.
    let wire = Message::from_vec(&reply.to_vec().expect("encode")).expect("decode");
    assert_eq!(ips(&wire), [v4("10.43.0.20")]);
    edns.set_version(1);
    request.set_edns(edns);
    let reply = records.answer(&request).expect("ours");
    assert_eq!(reply.metadata.response_code, ResponseCode::BADVERS);
}

#[test]
fn other_domains_are_served_as_configured() {
    let records = Records::build("corp.internal.", &services(), &slices());
    let reply = ask(&records, "web.default.svc.corp.internal.", RecordType::A);
    assert_eq!(ips(&reply), [v4("10.43.0.20")]);
    assert!(
        records
            .answer(&query(1, "web.default.svc.cluster.local.", RecordType::A))
            .is_none()
    );
    let reply = ask(&records, "20.0.43.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(ptrs(&reply), ["web.default.svc.corp.internal."]);
}

#[test]
fn upstreams_come_from_resolv_conf_without_the_cluster_dns() {
    let text = "# generated\nsearch default.svc.cluster.local\nnameserver 10.43.0.10\n\
                nameserver 192.168.1.1\nnameserver  2001:db8::1 \nnameserver fe80::1%eth0\n\
                nameserver bogus\nnameserver 192.168.1.1\noptions ndots:5\n";
    assert_eq!(
        upstreams_from_resolv_conf(text),
        [
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)), 53),
            SocketAddr::new("2001:db8::1".parse().expect("ip"), 53),
        ]
    );
    assert!(upstreams_from_resolv_conf("").is_empty());
}
