use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;

fn node() -> NodeInfo {
    NodeInfo {
        name: "n1".into(),
        ips: vec![Ipv4Addr::new(192, 168, 1, 5)],
        cluster_cidr: (Ipv4Addr::new(10, 42, 0, 0), 16),
    }
}

fn svc(v: serde_json::Value) -> Arc<Service> {
    Arc::new(serde_json::from_value(v).expect("service"))
}

fn slice(ns: &str, svc: &str, eps: &[(&str, bool, &str)], port: i32) -> Arc<EndpointSlice> {
    let endpoints: Vec<_> = eps
        .iter()
        .map(|(ip, ready, node)| {
            json!({"addresses": [ip], "conditions": {"ready": ready}, "nodeName": node})
        })
        .collect();
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-abc"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        }))
        .expect("slice"),
    )
}

fn web(extra: serde_json::Value) -> Arc<Service> {
    let mut v = json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"], "type": "ClusterIP",
                 "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    svc(v)
}

#[test]
fn cluster_ip_balances_across_ready_endpoints() {
    let services = [web(json!({}))];
    let slices = [slice(
        "default",
        "web",
        &[
            ("10.42.0.5", true, "n1"),
            ("10.42.0.6", true, "n1"),
            ("10.42.0.7", true, "n2"),
            ("10.42.0.8", false, "n1"),
        ],
        8080,
    )];
    let ports = port_rules(&node(), &services, &slices, None);
    assert_eq!(ports.len(), 1);
    let eps: Vec<String> = ports[0]
        .endpoints
        .iter()
        .map(|e| e.addr.to_string())
        .collect();
    assert_eq!(eps, ["10.42.0.5:8080", "10.42.0.6:8080", "10.42.0.7:8080"]);
    let d = rules(&node(), &ports);
    let nat = &d.tables[&TableName::Nat];
    let svc = chain_name("SVC", "default/web:http/tcp");
    assert!(nat[SERVICES][0].starts_with(&format!(
        "-d 10.43.0.20/32 -p tcp -m tcp --dport 80 -m comment --comment \"default/web:http cluster IP\" -j {svc}"
    )));
    let rules = &nat[&svc];
    assert_eq!(
        rules[0],
        format!("! -s 10.42.0.0/16 -d 10.43.0.20/32 -p tcp -m tcp --dport 80 -j {MARK_MASQ}")
    );
    assert!(rules[1].contains("--probability 0.3333333333"));
    assert!(rules[2].contains("--probability 0.5000000000"));
    assert!(!rules[3].contains("probability"));
    let sep = chain_name("SEP", "default/web:http/tcp/10.42.0.5:8080");
    assert_eq!(
        nat[&sep],
        [
            format!("-s 10.42.0.5/32 -j {MARK_MASQ}"),
            "-p tcp -m tcp -j DNAT --to-destination 10.42.0.5:8080".to_string(),
        ]
    );
    // Nothing refused: it has endpoints.
    assert!(d.tables[&TableName::Filter][SERVICES].is_empty());
}

#[test]
fn no_endpoints_rejects_and_headless_or_external_name_get_nothing() {
    let services = [
        web(
            json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        ),
        svc(json!({"metadata": {"name": "db", "namespace": "default"},
                   "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}})),
        svc(json!({"metadata": {"name": "ext", "namespace": "default"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}})),
    ];
    let ports = port_rules(&node(), &services, &[], None);
    assert_eq!(ports.len(), 1, "{ports:?}");
    let d = rules(&node(), &ports);
    let filter = &d.tables[&TableName::Filter];
    assert_eq!(
        filter[SERVICES],
        [
            "-d 10.43.0.20/32 -p tcp -m tcp --dport 80 -m comment --comment \"default/web:http has no endpoints\" -j REJECT"
        ]
    );
    assert!(filter[EXTERNAL_SERVICES][0].contains("--dport 30080"));
    let nat = &d.tables[&TableName::Nat];
    assert_eq!(
        nat[SERVICES].len(),
        1,
        "only the node-port jump: {:?}",
        nat[SERVICES]
    );
    assert!(nat[NODEPORTS].is_empty());
}

#[test]
fn node_port_cluster_policy_masquerades_and_local_policy_keeps_source() {
    let slices = [slice(
        "default",
        "web",
        &[("10.42.0.5", true, "n1"), ("10.42.1.5", true, "n2")],
        8080,
    )];
    let np = json!([{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]);
    let cluster = port_rules(
        &node(),
        &[web(json!({"type": "NodePort", "ports": np}))],
        &slices,
        None,
    );
    let d = rules(&node(), &cluster);
    let nat = &d.tables[&TableName::Nat];
    let ext = chain_name("EXT", "default/web:http/tcp");
    let svc = chain_name("SVC", "default/web:http/tcp");
    assert_eq!(
        nat[NODEPORTS],
        [format!(
            "-p tcp -m tcp --dport 30080 -m comment --comment \"default/web:http node port\" -j {ext}"
        )]
    );
    assert_eq!(nat[&ext], [format!("-j {MARK_MASQ}"), format!("-j {svc}")]);

    let local = port_rules(
        &node(),
        &[web(
            json!({"type": "NodePort", "ports": np, "externalTrafficPolicy": "Local"}),
        )],
        &slices,
        None,
    );
    let d = rules(&node(), &local);
    let nat = &d.tables[&TableName::Nat];
    let svl = chain_name("SVL", "default/web:http/tcp");
    assert_eq!(nat[&ext].last(), Some(&format!("-j {svl}")));
    let local_sep = chain_name("SEP", "default/web:http/tcp/10.42.0.5:8080");
    assert_eq!(nat[&svl], [format!("-j {local_sep}")]);
}

#[test]
fn session_affinity_checks_recent_before_random() {
    let services = [web(json!({"sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}))];
    let slices = [slice(
        "default",
        "web",
        &[("10.42.0.5", true, "n1"), ("10.42.0.6", true, "n1")],
        8080,
    )];
    let d = rules(&node(), &port_rules(&node(), &services, &slices, None));
    let nat = &d.tables[&TableName::Nat];
    let svc = &nat[&chain_name("SVC", "default/web:http/tcp")];
    let sep = chain_name("SEP", "default/web:http/tcp/10.42.0.5:8080");
    assert_eq!(
        svc[1],
        format!("-m recent --name {sep} --rcheck --seconds 60 --reap -j {sep}")
    );
    assert!(nat[&sep][1].contains(&format!("-m recent --name {sep} --set --rsource")));
}

#[test]
fn load_balancer_ips_route_like_node_ports_and_dns_goes_to_the_node() {
    let mut lb = json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.20", "type": "LoadBalancer",
                 "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}},
    });
    lb["spec"]["selector"] = json!({"app": "web"});
    let dns = svc(json!({
        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
        "spec": {"clusterIP": "10.43.0.10", "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
    }));
    let slices = [slice("default", "web", &[("10.42.0.5", true, "n1")], 8080)];
    let local_dns = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 5), 10053);
    let ports = port_rules(&node(), &[svc(lb), dns], &slices, Some(local_dns));
    let d = rules(&node(), &ports);
    let nat = &d.tables[&TableName::Nat];
    let ext = chain_name("EXT", "default/web:http/tcp");
    assert!(
        nat[SERVICES].iter().any(
            |r| r.starts_with("-d 192.168.1.5/32 -p tcp -m tcp --dport 80") && r.ends_with(&ext)
        )
    );
    let dns_sep = chain_name("SEP", "kube-system/kube-dns:dns/udp/192.168.1.5:10053");
    assert_eq!(
        nat[&dns_sep][1],
        "-p udp -m udp -j DNAT --to-destination 192.168.1.5:10053"
    );
}

#[test]
fn the_cluster_dns_answers_pods_and_the_node_only() {
    let rules = dns_firewall(
        &node(),
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 10053),
    );
    assert_eq!(
        rules,
        ["udp", "tcp"].map(|p| format!(
            "-d 192.0.2.2/32 -p {p} -m {p} --dport 10053 ! -s 10.42.0.0/16 -m addrtype ! --src-type LOCAL -m comment --comment \"rkube cluster DNS: pods and this node only\" -j DROP"
        ))
    );
}
