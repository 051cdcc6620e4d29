use serde_json::{Value, json};

use super::{Case, check_create, check_update};

const RBAC: &str = "rbac.authorization.k8s.io";
const SUBDOMAIN: &str = r"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn role(name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default"}, "rules": rules})
}

#[test]
fn role_and_cluster_role_rules() {
    let cases: Vec<Case> = vec![
        (
            RBAC,
            "Role",
            role(
                "r",
                json!([{"verbs": [], "apiGroups": [], "resources": []}]),
            ),
            vec![
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
            ],
        ),
        (
            RBAC,
            "Role",
            role(
                "r",
                json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}]),
            ),
            vec![
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: rules cannot apply to both regular resources and non-resource URLs",
            ],
        ),
        (
            RBAC,
            "Role",
            role(
                "a/b",
                json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
            ),
            vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'"],
        ),
        (
            RBAC,
            "ClusterRole",
            json!({"metadata": {"name": "system:viewer"}, "rules": [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]}),
            vec![],
        ),
        (
            RBAC,
            "ClusterRole",
            json!({"metadata": {"name": "agg"}, "aggregationRule": {}}),
            vec![
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil",
            ],
        ),
    ];
    check_create(cases);
}

fn binding(kind: &str, role_ref: Value, subjects: Value) -> Value {
    let mut meta = json!({"name": "b"});
    if kind == "RoleBinding" {
        meta["namespace"] = json!("default");
    }
    json!({"metadata": meta, "roleRef": role_ref, "subjects": subjects})
}

#[test]
fn bindings_role_refs_and_subjects() {
    let sa_name = format!("subjects[1].name: Invalid value: \"Bad_Name\": {SUBDOMAIN}");
    let cases: Vec<Case<String>> = vec![
        (
            RBAC,
            "RoleBinding",
            binding(
                "RoleBinding",
                json!({"kind": "Deployment", "name": ""}),
                json!([{"kind": "Robot", "name": "x"},
                    {"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": RBAC}]),
            ),
            vec![
                "roleRef.kind: Unsupported value: \"Deployment\": supported values: \"Role\", \"ClusterRole\"".into(),
                "roleRef.name: Required value".into(),
                "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"".into(),
                sa_name,
                "subjects[1].apiGroup: Unsupported value: \"rbac.authorization.k8s.io\": supported values: \"\"".into(),
            ],
        ),
        (
            RBAC,
            "ClusterRoleBinding",
            binding(
                "ClusterRoleBinding",
                json!({"apiGroup": "example.com", "kind": "Role", "name": "view"}),
                json!([{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": ""}]),
            ),
            vec![
                "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"".into(),
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"".into(),
                "subjects[0].namespace: Required value".into(),
                "subjects[1].name: Required value".into(),
            ],
        ),
    ];
    check_create(cases);
}

#[test]
fn role_ref_never_changes() {
    let rb = |name: &str| {
        binding(
            "RoleBinding",
            json!({"apiGroup": RBAC, "kind": "ClusterRole", "name": name}),
            json!([{"kind": "User", "name": "jane"}]),
        )
    };
    check_update(
        RBAC,
        "RoleBinding",
        rb("view"),
        rb("admin"),
        &[
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"admin\"}: cannot change roleRef",
        ],
    );
    // A defaulted apiGroup is the same reference.
    let mut defaulted = rb("view");
    defaulted["roleRef"]["apiGroup"] = json!("");
    check_update(RBAC, "RoleBinding", rb("view"), defaulted, &[]);
}
