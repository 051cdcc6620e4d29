use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{Value, json};

use super::*;

const TCP_RESET: &str = "-p tcp -j REJECT --reject-with tcp-reset";
const REJECT: &str = "-j REJECT --reject-with icmp-port-unreachable";
const CONNTRACK: &str = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT";

fn node() -> NodeInfo {
    NodeInfo {
        name: "n1".into(),
        ips: vec![Ipv4Addr::new(192, 168, 1, 5)],
        cluster_cidr: (Ipv4Addr::new(10, 42, 0, 0), 16),
    }
}

fn ns(name: &str, labels: Value) -> Arc<Namespace> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
            .expect("namespace"),
    )
}

/// A running pod; `ports` are the first container's ports.
fn pod_with(ns: &str, name: &str, labels: Value, ip: &str, node: &str, ports: Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
        }))
        .expect("pod"),
    )
}

fn pod(ns: &str, name: &str, labels: Value, ip: &str, node: &str) -> Arc<Pod> {
    pod_with(ns, name, labels, ip, node, json!([]))
}

fn policy(ns: &str, name: &str, spec: Value) -> Arc<NetworkPolicy> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
            .expect("policy"),
    )
}

fn filter(d: &Desired) -> &Chains {
    d.tables.get(&TableName::Filter).expect("filter table")
}

fn chain<'d>(d: &'d Desired, name: &str) -> Vec<&'d str> {
    filter(d)
        .get(name)
        .unwrap_or_else(|| panic!("no chain {name} in {:?}", filter(d).keys()))
        .iter()
        .map(String::as_str)
        .collect()
}

fn npi(key: &str) -> String {
    chain_name("NPI", key)
}

fn npe(key: &str) -> String {
    chain_name("NPE", key)
}

/// The allow rules of a pod chain, checking that it ends with the two refusals.
fn allows<'d>(d: &'d Desired, name: &str) -> Vec<&'d str> {
    let mut rules = chain(d, name);
    assert_eq!(
        rules.split_off(rules.len() - 2),
        [TCP_RESET, REJECT],
        "{name}"
    );
    rules
}

/// The `-s`/`-d` addresses of a chain's allow rules.
fn peers(d: &Desired, name: &str) -> Vec<String> {
    allows(d, name)
        .iter()
        .map(|r| r.split_whitespace().nth(1).unwrap_or("").to_string())
        .collect()
}

/// The seed policy `manifests/seeds/008_001_NetworkPolicy.yaml`, as it is stored.
fn seed_policy() -> Arc<NetworkPolicy> {
    policy(
        "default",
        "api-netpol",
        json!({
            "podSelector": {"matchLabels": {"app": "api"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                         "ports": [{"protocol": "TCP", "port": 8080}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "database"}}}],
                        "ports": [{"protocol": "TCP", "port": 5432}]}],
        }),
    )
}

#[test]
fn default_deny_ingress_isolates_every_local_pod_of_the_namespace() {
    let policies = [policy(
        "prod",
        "default-deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    )];
    let pods = [
        pod("prod", "a", json!({"app": "a"}), "10.42.0.5", "n1"),
        pod("prod", "b", json!({}), "10.42.0.6", "n1"),
        pod("prod", "remote", json!({}), "10.42.1.5", "n2"),
        pod("default", "x", json!({}), "10.42.0.9", "n1"),
    ];
    let d = rules(&node(), &policies, &pods, &[ns("prod", json!({}))]);
    assert_eq!(
        chain(&d, NETPOL),
        [
            CONNTRACK.to_string(),
            format!(
                "-d 10.42.0.5/32 -m comment --comment \"prod/a ingress\" -j {}",
                npi("prod/a")
            ),
            format!(
                "-d 10.42.0.6/32 -m comment --comment \"prod/b ingress\" -j {}",
                npi("prod/b")
            ),
        ]
    );
    assert_eq!(chain(&d, &npi("prod/a")), [TCP_RESET, REJECT]);
    assert_eq!(chain(&d, &npi("prod/b")), [TCP_RESET, REJECT]);
    // Nothing for the other namespace's pod, the remote pod, or egress.
    assert_eq!(filter(&d).len(), 3, "{:?}", filter(&d).keys());
    assert_eq!(d.hooks, [hook()]);
    assert_eq!(d.hooks[0].chain, "FORWARD");
}

#[test]
fn seed_policy_allows_only_frontend_in_and_database_out() {
    let pods = [
        pod("default", "api", json!({"app": "api"}), "10.42.0.10", "n1"),
        // On another node: not enforced here, but a peer.
        pod(
            "default",
            "frontend",
            json!({"app": "frontend"}),
            "10.42.1.3",
            "n2",
        ),
        pod(
            "default",
            "database",
            json!({"app": "database"}),
            "10.42.0.20",
            "n1",
        ),
        // Same labels, other namespace: a bare podSelector does not reach it.
        pod(
            "other",
            "frontend",
            json!({"app": "frontend"}),
            "10.42.0.30",
            "n1",
        ),
        pod(
            "other",
            "database",
            json!({"app": "database"}),
            "10.42.0.31",
            "n1",
        ),
    ];
    let d = rules(&node(), &[seed_policy()], &pods, &[]);
    assert_eq!(
        chain(&d, NETPOL),
        [
            CONNTRACK.to_string(),
            format!(
                "-s 10.42.0.10/32 -m comment --comment \"default/api egress\" -j {}",
                npe("default/api")
            ),
            format!(
                "-d 10.42.0.10/32 -m comment --comment \"default/api ingress\" -j {}",
                npi("default/api")
            ),
        ]
    );
    assert_eq!(
        allows(&d, &npi("default/api")),
        [
            "-s 10.42.1.3/32 -p tcp -m tcp --dport 8080 -m comment --comment \"default/api-netpol\" -j RETURN"
        ]
    );
    assert_eq!(
        allows(&d, &npe("default/api")),
        [
            "-d 10.42.0.20/32 -p tcp -m tcp --dport 5432 -m comment --comment \"default/api-netpol\" -j RETURN"
        ]
    );
    // Frontend and database pods are not selected: not isolated, no chains.
    assert_eq!(filter(&d).len(), 3);
}

#[test]
fn pods_on_other_nodes_are_peers_but_not_enforced() {
    let policies = [policy(
        "default",
        "web",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
    )];
    let pods = [
        pod("default", "web-local", json!({"app": "web"}), "10.42.0.2", "n1"),
        pod("default", "web-remote", json!({"app": "web"}), "10.42.1.2", "n2"),
        pod("default", "client-remote", json!({"app": "client"}), "10.42.2.7", "n3"),
        // Not scheduled yet: no address, neither enforced nor a peer.
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "client-pending", "namespace": "default", "labels": {"app": "client"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                "status": {"phase": "Pending"},
            }))
            .expect("pod"),
        ),
    ];
    let d = rules(&node(), &policies, &pods, &[]);
    assert!(filter(&d).contains_key(&npi("default/web-local")));
    assert!(!filter(&d).contains_key(&npi("default/web-remote")));
    assert_eq!(peers(&d, &npi("default/web-local")), ["10.42.2.7/32"]);
    // No ports: every port and protocol from that peer.
    assert_eq!(
        allows(&d, &npi("default/web-local")),
        ["-s 10.42.2.7/32 -m comment --comment \"default/web\" -j RETURN"]
    );
}

#[test]
fn namespace_and_pod_selector_in_one_peer_must_both_match() {
    let spec = |from: Value| {
        json!({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
               "ingress": [{"from": from}]})
    };
    let namespaces = [
        ns("team-a", json!({"team": "a"})),
        ns("team-b", json!({"team": "b"})),
        ns("default", json!({})),
    ];
    let pods = [
        pod("default", "db", json!({"app": "db"}), "10.42.0.2", "n1"),
        pod(
            "default",
            "client",
            json!({"role": "client"}),
            "10.42.0.3",
            "n1",
        ),
        pod(
            "team-a",
            "client",
            json!({"role": "client"}),
            "10.42.0.4",
            "n2",
        ),
        pod(
            "team-a",
            "other",
            json!({"role": "other"}),
            "10.42.0.5",
            "n2",
        ),
        pod(
            "team-b",
            "client",
            json!({"role": "client"}),
            "10.42.0.6",
            "n2",
        ),
    ];
    let and = policy(
        "default",
        "and",
        spec(json!([{"namespaceSelector": {"matchLabels": {"team": "a"}},
                      "podSelector": {"matchLabels": {"role": "client"}}}])),
    );
    let d = rules(&node(), &[and], &pods, &namespaces);
    assert_eq!(peers(&d, &npi("default/db")), ["10.42.0.4/32"]);

    // Two peers are ORed: team-a's pods, or the policy namespace's clients.
    let or = policy(
        "default",
        "or",
        spec(
            json!([{"namespaceSelector": {"matchLabels": {"team": "a"}}},
                     {"podSelector": {"matchLabels": {"role": "client"}}}]),
        ),
    );
    let d = rules(&node(), &[or], &pods, &namespaces);
    assert_eq!(
        peers(&d, &npi("default/db")),
        ["10.42.0.4/32", "10.42.0.5/32", "10.42.0.3/32"]
    );

    // `namespaceSelector: {}` is every namespace; the name label works without being set.
    let all = policy(
        "default",
        "all",
        spec(json!([
            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}},
            {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                          "operator": "In", "values": ["team-a"]}]}},
        ])),
    );
    let d = rules(&node(), &[all], &pods, &namespaces);
    assert_eq!(
        peers(&d, &npi("default/db")),
        [
            "10.42.0.3/32",
            "10.42.0.4/32",
            "10.42.0.6/32",
            "10.42.0.5/32"
        ]
    );
}

#[test]
fn ip_block_except_is_cut_out_of_the_block() {
    let policies = [policy(
        "default",
        "blocks",
        json!({
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": "192.168.0.0/16", "except": ["192.168.1.0/24"]}}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.128/25"]}}],
                        "ports": [{"port": 443}]}],
        }),
    )];
    let pods = [pod("default", "a", json!({}), "10.42.0.2", "n1")];
    let d = rules(&node(), &policies, &pods, &[]);
    assert_eq!(
        allows(&d, &npe("default/a")),
        [
            "-d 10.0.0.0/25 -p tcp -m tcp --dport 443 -m comment --comment \"default/blocks\" -j RETURN"
        ]
    );
    let ingress = peers(&d, &npi("default/a"));
    assert_eq!(
        ingress,
        [
            "192.168.0.0/24",
            "192.168.2.0/23",
            "192.168.4.0/22",
            "192.168.8.0/21",
            "192.168.16.0/20",
            "192.168.32.0/19",
            "192.168.64.0/18",
            "192.168.128.0/17"
        ]
    );
}

#[test]
fn named_ports_resolve_on_the_destination_pod() {
    let policies = [policy(
        "default",
        "named",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"port": "http"}, {"port": "missing"}, {"port": "http", "protocol": "UDP"}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "dns"}}}],
                        "ports": [{"port": "dns", "protocol": "UDP"}]}],
        }),
    )];
    let pods = [
        pod_with(
            "default",
            "web",
            json!({"app": "web"}),
            "10.42.0.2",
            "n1",
            json!([{"name": "http", "containerPort": 8080}]),
        ),
        pod_with(
            "default",
            "dns-1",
            json!({"app": "dns"}),
            "10.42.0.3",
            "n2",
            json!([{"name": "dns", "containerPort": 53, "protocol": "UDP"}]),
        ),
        pod_with(
            "default",
            "dns-2",
            json!({"app": "dns"}),
            "10.42.0.4",
            "n2",
            json!([{"name": "dns", "containerPort": 5353, "protocol": "UDP"}]),
        ),
        // Selected, but has no port of that name: not reachable through the rule.
        pod("default", "dns-3", json!({"app": "dns"}), "10.42.0.5", "n2"),
    ];
    let d = rules(&node(), &policies, &pods, &[]);
    // Ingress: the web pod's own `http` port; `missing` and a UDP `http` resolve to nothing.
    assert_eq!(
        allows(&d, &npi("default/web")),
        ["-p tcp -m tcp --dport 8080 -m comment --comment \"default/named\" -j RETURN"]
    );
    // Egress: each peer's own `dns` port.
    assert_eq!(
        allows(&d, &npe("default/web")),
        [
            "-d 10.42.0.3/32 -p udp -m udp --dport 53 -m comment --comment \"default/named\" -j RETURN",
            "-d 10.42.0.4/32 -p udp -m udp --dport 5353 -m comment --comment \"default/named\" -j RETURN",
        ]
    );
}

#[test]
fn egress_named_port_to_anywhere_means_every_pod_that_has_it() {
    let policies = [policy(
        "default",
        "any",
        json!({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
               "egress": [{"ports": [{"port": "metrics"}, {"port": 53, "protocol": "UDP"}]}]}),
    )];
    let pods = [
        pod("default", "web", json!({"app": "web"}), "10.42.0.2", "n1"),
        pod_with(
            "monitoring",
            "exporter",
            json!({}),
            "10.42.3.9",
            "n3",
            json!([{"name": "metrics", "containerPort": 9100}]),
        ),
    ];
    let d = rules(&node(), &policies, &pods, &[]);
    assert_eq!(
        allows(&d, &npe("default/web")),
        [
            "-d 10.42.3.9/32 -p tcp -m tcp --dport 9100 -m comment --comment \"default/any\" -j RETURN",
            "-p udp -m udp --dport 53 -m comment --comment \"default/any\" -j RETURN",
        ]
    );
    assert!(!filter(&d).contains_key(&npi("default/web")));
}

#[test]
fn end_port_becomes_a_range_and_a_bare_protocol_all_its_ports() {
    let policies = [policy(
        "default",
        "ranges",
        json!({"podSelector": {},
               "ingress": [{"ports": [{"protocol": "TCP", "port": 30000, "endPort": 30100},
                                      {"protocol": "UDP"},
                                      {"protocol": "SCTP", "port": 7},
                                      {"protocol": "TCP", "port": 10, "endPort": 5}]}]}),
    )];
    let pods = [pod("default", "a", json!({}), "10.42.0.2", "n1")];
    let d = rules(&node(), &policies, &pods, &[]);
    assert_eq!(
        allows(&d, &npi("default/a")),
        [
            "-p tcp -m tcp --dport 30000:30100 -m comment --comment \"default/ranges\" -j RETURN",
            "-p udp -m comment --comment \"default/ranges\" -j RETURN",
            "-p sctp -m sctp --dport 7 -m comment --comment \"default/ranges\" -j RETURN",
        ]
    );
}

#[test]
fn policy_types_default_from_the_rules_present() {
    let pods = [pod("default", "a", json!({}), "10.42.0.2", "n1")];
    let key = "default/a";
    // No policyTypes, egress rules: both directions isolated.
    let both = policy(
        "default",
        "p",
        json!({"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
    );
    let d = rules(&node(), &[both], &pods, &[]);
    assert_eq!(allows(&d, &npi(key)), Vec::<&str>::new());
    assert_eq!(allows(&d, &npe(key)).len(), 1);
    // No policyTypes, no egress: ingress only.
    let ingress = policy("default", "p", json!({"podSelector": {}, "ingress": [{}]}));
    let d = rules(&node(), &[ingress], &pods, &[]);
    assert_eq!(
        allows(&d, &npi(key)),
        ["-m comment --comment \"default/p\" -j RETURN"]
    );
    assert!(!filter(&d).contains_key(&npe(key)));
    // Egress only, listed: ingress rules are ignored and ingress is not isolated.
    let egress = policy(
        "default",
        "p",
        json!({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}),
    );
    let d = rules(&node(), &[egress], &pods, &[]);
    assert!(!filter(&d).contains_key(&npi(key)));
    assert_eq!(allows(&d, &npe(key)), Vec::<&str>::new());
}

#[test]
fn policies_selecting_one_pod_are_ored() {
    let policies = [
        policy(
            "default",
            "deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        ),
        policy(
            "default",
            "allow-80",
            json!({"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 80}]}]}),
        ),
        policy(
            "kube-system",
            "elsewhere",
            json!({"podSelector": {}, "ingress": [{}]}),
        ),
    ];
    let pods = [
        pod("default", "web", json!({"app": "web"}), "10.42.0.2", "n1"),
        pod("default", "db", json!({"app": "db"}), "10.42.0.3", "n1"),
    ];
    let d = rules(&node(), &policies, &pods, &[]);
    assert_eq!(
        allows(&d, &npi("default/web")),
        ["-p tcp -m tcp --dport 80 -m comment --comment \"default/allow-80\" -j RETURN"]
    );
    assert_eq!(allows(&d, &npi("default/db")), Vec::<&str>::new());
}

#[test]
fn host_network_and_finished_pods_are_neither_enforced_nor_peers() {
    let policies = [policy(
        "default",
        "p",
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}),
    )];
    let host: Arc<Pod> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "host", "namespace": "default"},
            "spec": {"nodeName": "n1", "hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": "192.168.1.5"},
        }))
        .expect("pod"),
    );
    let done: Arc<Pod> = Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": "done", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Succeeded", "podIP": "10.42.0.9"},
        }))
        .expect("pod"),
    );
    let pods = [
        host,
        done,
        pod("default", "a", json!({}), "10.42.0.2", "n1"),
    ];
    let d = rules(&node(), &policies, &pods, &[]);
    assert_eq!(peers(&d, &npi("default/a")), ["10.42.0.2/32"]);
    assert_eq!(filter(&d).len(), 2, "{:?}", filter(&d).keys());
}

#[test]
fn without_isolated_pods_the_chain_is_empty_but_hooked() {
    let pods = [pod("default", "a", json!({}), "10.42.0.2", "n1")];
    let d = rules(&node(), &[], &pods, &[]);
    assert_eq!(chain(&d, NETPOL), Vec::<&str>::new());
    assert_eq!(filter(&d).len(), 1);
    assert_eq!(d.hooks, [hook()]);
    assert!(
        d.hooks[0]
            .rule
            .ends_with(&["-j".to_string(), NETPOL.to_string()])
    );
}

#[test]
fn output_does_not_depend_on_input_order() {
    let namespaces = [ns("default", json!({})), ns("prod", json!({"env": "prod"}))];
    let mut policies = vec![
        seed_policy(),
        policy(
            "default",
            "from-prod",
            json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}]}),
        ),
    ];
    let mut pods = vec![
        pod("default", "api", json!({"app": "api"}), "10.42.0.10", "n1"),
        pod(
            "default",
            "frontend",
            json!({"app": "frontend"}),
            "10.42.0.11",
            "n1",
        ),
        pod(
            "default",
            "database",
            json!({"app": "database"}),
            "10.42.0.12",
            "n1",
        ),
        pod("prod", "p1", json!({}), "10.42.1.1", "n2"),
        pod("prod", "p2", json!({}), "10.42.1.2", "n2"),
    ];
    let first = rules(&node(), &policies, &pods, &namespaces);
    policies.reverse();
    pods.reverse();
    let second = rules(&node(), &policies, &pods, &namespaces);
    assert_eq!(first, second);
    assert_eq!(filter(&first).len(), 5, "{:?}", filter(&first).keys());
}
