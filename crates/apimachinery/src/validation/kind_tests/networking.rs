use serde_json::{Value, json};

use super::{Case, check_create, check_update};

const NET: &str = "networking.k8s.io";
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn ingress(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn one_path(path: Value) -> Value {
    ingress(json!({"rules": [{"host": "app.example.com", "http": {"paths": [path]}}]}))
}

fn svc(name: &str, port: Value) -> Value {
    json!({"service": {"name": name, "port": port}})
}

#[test]
fn ingress_rules_paths_and_backends() {
    let dns1035 = format!(
        "spec.rules[0].http.paths[0].backend.service.name: Invalid value: \"API_svc\": {DNS1035}"
    );
    let cases: Vec<(Value, Vec<String>)> = vec![
        (
            one_path(json!({"path": "/api", "backend": svc("api", json!({"number": 80}))})),
            vec!["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified".into()],
        ),
        (
            one_path(json!({"path": "api", "pathType": "Prefix", "backend": svc("API_svc", json!({}))})),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path".into(),
                dns1035,
                "spec.rules[0].http.paths[0].backend: Required value: port name or number is required".into(),
            ],
        ),
        (
            one_path(json!({"path": "/x", "pathType": "Regex", "backend": svc("api", json!({"number": 80}))})),
            vec!["spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"".into()],
        ),
        (
            one_path(json!({"path": "/a//b/..", "pathType": "Exact", "backend": svc("api", json!({"number": 70000}))})),
            vec![
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/..\": must not contain '//'".into(),
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/..\": cannot end with '/..'".into(),
                "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
            ],
        ),
        (
            one_path(json!({"path": "/", "pathType": "Prefix", "backend": {}})),
            vec!["spec.rules[0].http.paths[0].backend: Invalid value: \"\": resource or service backend is required".into()],
        ),
        (
            ingress(json!({})),
            vec!["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified".into()],
        ),
        (
            ingress(json!({"defaultBackend": svc("web", json!({"name": "http", "number": 80}))})),
            vec!["spec.defaultBackend: Invalid value: \"\": cannot set both port name & port number".into()],
        ),
        (
            ingress(json!({"rules": [{"host": "10.0.0.1", "http": {"paths": []}}]})),
            vec![
                "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address".into(),
                "spec.rules[0].http.paths: Required value".into(),
            ],
        ),
        (
            ingress(json!({"defaultBackend": svc("web", json!({"number": 80})),
                "tls": [{"hosts": ["*.*.example.com"], "secretName": "Bad_Secret"}]})),
            vec![
                r#"spec.tls[0].hosts[0]: Invalid value: "*.*.example.com": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#.into(),
                r#"spec.tls[0].secretName: Invalid value: "Bad_Secret": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#.into(),
            ],
        ),
        (
            json!({"metadata": {"name": "web", "namespace": "default",
                "annotations": {"kubernetes.io/ingress.class": "nginx"}},
                "spec": {"ingressClassName": "traefik", "defaultBackend": svc("web", json!({"number": 80}))}}),
            vec!["annotations.kubernetes.io/ingress.class: Invalid value: \"nginx\": must match `ingressClassName` when both are specified".into()],
        ),
    ];
    let cases: Vec<Case<String>> = cases
        .into_iter()
        .map(|(obj, want)| (NET, "Ingress", obj, want))
        .collect();
    check_create(cases);
}

#[test]
fn ingress_class_controller_and_parameters() {
    let class = |spec: Value| json!({"metadata": {"name": "nginx"}, "spec": spec});
    check_create(vec![
        (
            NET,
            "IngressClass",
            class(json!({})),
            vec!["spec.controller: Required value"],
        ),
        (
            NET,
            "IngressClass",
            class(json!({"controller": "nginx"})),
            vec![
                "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")",
            ],
        ),
        (
            NET,
            "IngressClass",
            class(json!({"controller": "example.com/ingress",
                "parameters": {"kind": "Params", "name": "p", "scope": "Namespace"}})),
            vec![
                "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'",
            ],
        ),
        (
            NET,
            "IngressClass",
            class(json!({"controller": "example.com/ingress",
                "parameters": {"kind": "Params", "name": "p", "scope": "Cluster", "namespace": "x"}})),
            vec!["spec.parameters.namespace: Forbidden: `parameters.scope` is set to 'Cluster'"],
        ),
    ]);
    check_update(
        NET,
        "IngressClass",
        class(json!({"controller": "example.com/a"})),
        class(json!({"controller": "example.com/b"})),
        &["spec.controller: Invalid value: \"example.com/b\": field is immutable"],
    );
}

fn policy(spec: Value) -> Value {
    json!({"metadata": {"name": "np", "namespace": "default"}, "spec": spec})
}

#[test]
fn network_policy_ports_peers_and_types() {
    let cases: Vec<Case> = vec![
        (
            NET,
            "NetworkPolicy",
            policy(json!({"ingress": [{"ports": [{"protocol": "ICMP", "port": 0}]}]})),
            vec![
                "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "spec.ingress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            // 1.33 reports `port`'s value here.
            policy(json!({"ingress": [{"ports": [{"port": 8080, "endPort": 80}]}]})),
            vec![
                "spec.ingress[0].ports[0].endPort: Invalid value: 8080: must be greater than or equal to `port`",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            policy(
                json!({"egress": [{"ports": [{"port": "http", "endPort": 90}, {"endPort": 91}]}]}),
            ),
            vec![
                "spec.egress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                "spec.egress[0].ports[1].endPort: Invalid value: 91: may not be specified when `port` is not specified",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            policy(
                json!({"ingress": [{"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}),
            ),
            vec![
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            policy(json!({"ingress": [{"from": [
                {"ipBlock": {"cidr": "10.0.0.0/33"}},
                {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "bad", "10.0.1.0/24"]}},
                {"ipBlock": {}}]}]})),
            vec![
                "spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: \"bad\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                "spec.ingress[0].from[2].ipBlock.cidr: Required value",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            policy(json!({"policyTypes": ["Ingress", "Both"]})),
            vec![
                "spec.policyTypes[1]: Unsupported value: \"Both\": supported values: \"Ingress\", \"Egress\"",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            policy(json!({"policyTypes": ["Ingress", "Egress", "Ingress"]})),
            vec![
                "spec.policyTypes: Invalid value: []networking.PolicyType{\"Ingress\", \"Egress\", \"Ingress\"}: may not specify more than two policyTypes",
            ],
        ),
        (
            NET,
            "NetworkPolicy",
            policy(
                json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}),
            ),
            vec![
                "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ],
        ),
    ];
    check_create(cases);
}
