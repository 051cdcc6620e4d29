use serde_json::{Value, json};

use super::{Case, check_create, check_update};

const ADMISSION: &str = "admissionregistration.k8s.io";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn named(name: &str, rest: Value) -> Value {
    let mut obj = json!({"metadata": {"name": name}});
    if let (Some(o), Some(r)) = (obj.as_object_mut(), rest.as_object()) {
        o.extend(r.clone());
    }
    obj
}

fn namespaced(rest: Value) -> Value {
    let mut obj = named("x", rest);
    obj["metadata"]["namespace"] = json!("default");
    obj
}

#[test]
fn webhook_configurations() {
    let cases: Vec<Case> = vec![
        (
            ADMISSION,
            "ValidatingWebhookConfiguration",
            named(
                "vwc",
                json!({"webhooks": [{"name": "hook", "clientConfig": {},
                "rules": [{"operations": ["CREATE", "*"], "apiGroups": [], "apiVersions": ["v1"], "resources": ["*", "pods"]}]}]}),
            ),
            vec![
                "webhooks[0].name: Invalid value: \"hook\": should be a domain with at least three segments separated by dots",
                "webhooks[0].rules[0].operations: Invalid value: []admissionregistration.OperationType{\"CREATE\", \"*\"}: if '*' is present, must not specify other operations",
                "webhooks[0].rules[0].apiGroups: Required value",
                "webhooks[0].rules[0].resources: Invalid value: []string{\"*\", \"pods\"}: if '*' is present, must not specify other resources without subresources",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            ],
        ),
        (
            ADMISSION,
            "MutatingWebhookConfiguration",
            named(
                "mwc",
                json!({"webhooks": [
                {"name": "hook.example.com", "sideEffects": "Some", "timeoutSeconds": 60,
                 "reinvocationPolicy": "Always", "admissionReviewVersions": ["v2"],
                 "clientConfig": {"service": {"namespace": "webhooks"}}},
                {"name": "hook.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                 "clientConfig": {"url": "https://hooks.example.com/mutate"}}]}),
            ),
            vec![
                "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
                "webhooks[0].timeoutSeconds: Invalid value: 60: the timeout value must be between 1 and 30 seconds",
                "webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\"",
                // Upstream swaps name and namespace when calling ValidateWebhookService.
                "webhooks[0].clientConfig.service.namespace: Required value",
                "webhooks[0].admissionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
                "webhooks[1].name: Duplicate value: \"hook.example.com\"",
            ],
        ),
    ];
    check_create(cases);
}

#[test]
fn priority_runtime_classes_and_leases() {
    let label = format!("handler: Invalid value: \"Run_C\": {LABEL}");
    let cases: Vec<Case<String>> = vec![
        (
            "scheduling.k8s.io",
            "PriorityClass",
            named("system-custom", json!({"value": 100})),
            vec!["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-custom is not a known system priority class".into()],
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            named("system-node-critical", json!({"value": 5})),
            vec!["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000".into()],
        ),
        (
            "scheduling.k8s.io",
            "PriorityClass",
            named("high", json!({"value": 2000000000, "preemptionPolicy": "Sometimes"})),
            vec![
                "value: Forbidden: maximum allowed value of a user defined priority is 1000000000".into(),
                "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"".into(),
            ],
        ),
        ("node.k8s.io", "RuntimeClass", named("rc", json!({"handler": "Run_C"})), vec![label]),
        (
            "coordination.k8s.io",
            "Lease",
            namespaced(json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}})),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0".into(),
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0".into(),
            ],
        ),
    ];
    check_create(cases);
    check_update(
        "scheduling.k8s.io",
        "PriorityClass",
        named("high", json!({"value": 10})),
        named("high", json!({"value": 20})),
        &["value: Forbidden: may not be changed in an update."],
    );
}

#[test]
fn nodes_and_endpoints() {
    let cases: Vec<Case> = vec![
        (
            "",
            "Node",
            named(
                "n1",
                json!({"spec": {"taints": [
                {"key": "k", "effect": "Sometimes"}, {"key": "k", "value": "v", "effect": ""},
                {"key": "d", "effect": "NoSchedule"}, {"key": "d", "effect": "NoSchedule"}],
                "podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]}}),
            ),
            vec![
                "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                "metadata.taints[1].effect: Required value",
                "metadata.taints[3]: Duplicate value: core.Taint{Key:\"d\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair",
                "spec.podCIDRs: Invalid value: []string{\"10.0.0.0/24\", \"10.1.0.0/24\"}: may specify no more than one CIDR for each IP family",
            ],
        ),
        (
            "",
            "Endpoints",
            namespaced(json!({"subsets": [{}, {"addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"port": 0, "protocol": "ICMP"}, {"port": 80}]}]})),
            vec![
                "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
                "subsets[1].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[1].ports[0].name: Required value",
                "subsets[1].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "subsets[1].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "subsets[1].ports[1].name: Required value",
            ],
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            namespaced(json!({"addressType": "IPv4",
                "endpoints": [{"addresses": []}, {"addresses": ["fe80::1", "1.2.3"]}],
                "ports": [{"name": "http"}, {"name": "http", "protocol": "ICMP"}]})),
            vec![
                "endpoints[0].addresses: Required value: must contain at least 1 address",
                "endpoints[1].addresses[0]: Invalid value: \"fe80::1\": must be an IPv4 address",
                "endpoints[1].addresses[0]: Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "endpoints[1].addresses[1]: Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "ports[1].name: Duplicate value: \"http\"",
                "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            namespaced(json!({"addressType": "IP"})),
            vec![
                "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
            ],
        ),
    ];
    check_create(cases);
    check_update(
        "",
        "Node",
        named("n1", json!({"spec": {"providerID": "aws://a"}})),
        named("n1", json!({"spec": {"providerID": "aws://b"}})),
        &[
            "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
        ],
    );
}

#[test]
fn quotas_and_limit_ranges() {
    let quantity = |v: i64, scale: i64, s: &str| {
        format!(
            "resource.Quantity{{i:resource.int64Amount{{value:{v}, scale:{scale}}}, d:resource.infDecAmount{{Dec:(*inf.Dec)(nil)}}, s:\"{s}\", Format:\"DecimalSI\"}}"
        )
    };
    let cases: Vec<Case<String>> = vec![
        (
            "",
            "ResourceQuota",
            namespaced(json!({"spec": {"hard": {"cpus": "1", "pods": "1.5", "requests.memory": "-1Gi"}}})),
            vec![
                "spec.hard[cpus]: Invalid value: \"cpus\": must be a standard resource type or fully qualified".into(),
                "spec.hard[cpus]: Invalid value: \"cpus\": must be a standard resource for quota".into(),
                format!("spec.hard[pods]: Invalid value: {}: must be an integer", quantity(15, -1, "")),
                "spec.hard[requests.memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0".into(),
            ],
        ),
        (
            "",
            "ResourceQuota",
            namespaced(json!({"spec": {"hard": {"pods": "10", "cpu": "1"}, "scopes": ["BestEffort", "NotBestEffort"]}})),
            vec![
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: unsupported scope applied to resource".into(),
                "spec.scopes: Invalid value: []core.ResourceQuotaScope{\"BestEffort\", \"NotBestEffort\"}: conflicting scopes".into(),
            ],
        ),
        (
            "",
            "LimitRange",
            namespaced(json!({"spec": {"limits": [
                {"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}},
                {"type": "Pod", "default": {"cpu": "1"}},
                {"type": "PersistentVolumeClaim"},
                {"type": "Pod"}]}})),
            vec![
                format!("spec.limits[0].min[cpu]: Invalid value: {}: min value 2 is greater than max value 1", quantity(2, 0, "2")),
                format!("spec.limits[0].defaultRequest[cpu]: Invalid value: {}: min value 2 is greater than default request value 1", quantity(1, 0, "1")),
                format!("spec.limits[0].default[cpu]: Invalid value: {}: min value 2 is greater than default value 1", quantity(2, 0, "2")),
                "spec.limits[1].default: Forbidden: may not be specified when `type` is 'Pod'".into(),
                "spec.limits[2].limits: Required value: either minimum or maximum storage value is required, but neither was provided".into(),
                "spec.limits[3].type: Duplicate value: \"Pod\"".into(),
            ],
        ),
    ];
    check_create(cases);
}

#[test]
fn certificate_signing_requests() {
    let usages = "\"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\", \"ipsec end system\", \"ipsec tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", \"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", \"server auth\", \"signing\", \"timestamping\"";
    let cases: Vec<Case<String>> = vec![(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        named("csr", json!({"spec": {"request": "aGVsbG8=",
            "usages": ["digital signature", "flying", "digital signature"],
            "signerName": "example/signer", "expirationSeconds": 60}})),
        vec![
            "spec.request: Invalid value: []byte{0x68, 0x65, 0x6c, 0x6c, 0x6f}: PEM block type must be CERTIFICATE REQUEST".into(),
            format!("spec.usages[1]: Unsupported value: \"flying\": supported values: {usages}"),
            "spec.usages[2]: Duplicate value: \"digital signature\"".into(),
            "spec.signerName: Invalid value: \"example\": should be a domain with at least two segments separated by dots".into(),
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)".into(),
        ],
    )];
    check_create(cases);
}
