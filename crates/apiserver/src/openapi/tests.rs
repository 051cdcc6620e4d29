//! Checks that the documents carry what kubectl reads, by replaying kubectl's own lookups.

use apimachinery::registry::{ALL_VERBS, Registry, ResourceType, Subresource};
use serde_json::{Value, json};

use super::*;

fn crontab(schema: Value) -> ResourceType {
    ResourceType {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        list_kind: "CronTabList".into(),
        plural: "crontabs".into(),
        singular: "crontab".into(),
        namespaced: true,
        short_names: vec!["ct".into()],
        categories: vec![],
        verbs: ALL_VERBS.iter().map(|v| v.to_string()).collect(),
        subresources: vec![Subresource {
            name: "status".into(),
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            verbs: vec!["get".into(), "patch".into(), "update".into()],
        }],
        tracks_generation: true,
        typed: None,
        custom_schema: Some(schema),
        printer_columns: None,
    }
}

fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "description": "The desired schedule.",
                "properties": {"cronSpec": {"type": "string", "description": "Cron format."}},
            },
        },
    })
}

fn with_crd() -> Registry {
    Registry::builtin().with_custom(vec![crontab(crontab_schema())])
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

/// cli-runtime `supportsQueryParamV3`: the first PATCH operation tagged with the GVK decides,
/// by an inline query parameter named `fieldValidation`. Since Go's map order is random, we
/// require every such operation to say yes.
fn supports_field_validation(doc: &Value, gvk: &Value) -> bool {
    let mut found = false;
    for item in doc["paths"].as_object().expect("paths").values() {
        let op = &item["patch"];
        if op.is_null() || op["x-kubernetes-group-version-kind"] != *gvk {
            continue;
        }
        found = true;
        let inline = op["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
        });
        if !inline {
            return false;
        }
    }
    found
}

/// kubectl explain's `resolveRef`: a fragment-only JSON pointer into the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => doc.pointer(pointer).unwrap_or(&Value::Null),
        None => schema,
    }
}

/// kubectl explain's plaintext template: GVK from the resource's operations, schema by GVK,
/// then each field through properties, items, additionalProperties or allOf.
fn explain<'a>(
    doc: &'a Value,
    prefix: &str,
    version: &str,
    plural: &str,
    fields: &[&str],
) -> Option<&'a Value> {
    let candidates = [
        format!("{prefix}/{version}/{plural}"),
        format!("{prefix}/{version}/{plural}/{{name}}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}"),
    ];
    let gvk = candidates.iter().find_map(|p| {
        ["get", "post", "put", "patch", "delete"]
            .iter()
            .find_map(|m| doc["paths"][p.as_str()][*m].get("x-kubernetes-group-version-kind"))
    })?;
    let mut schema = doc["components"]["schemas"]
        .as_object()?
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|a| a.contains(gvk))
        })?;
    for field in fields {
        schema = descend(doc, schema, field)?;
    }
    Some(schema)
}

fn descend<'a>(doc: &'a Value, schema: &'a Value, field: &str) -> Option<&'a Value> {
    let resolved = resolve(doc, schema);
    if let Some(sub) = resolved["properties"].get(field) {
        return Some(sub);
    }
    if resolved.get("items").is_some() {
        return descend(doc, &resolved["items"], field);
    }
    if resolved["additionalProperties"].is_object() {
        return descend(doc, &resolved["additionalProperties"], field);
    }
    resolved["allOf"]
        .as_array()?
        .iter()
        .find_map(|s| descend(doc, s, field))
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

fn all_documents(registry: &Registry) -> Vec<(String, Value)> {
    let v3 = OpenApi::new(registry);
    v3.paths()
        .map(|p| {
            let doc = v3.group_version(p).expect("listed path is served");
            (
                p.to_string(),
                serde_json::from_slice(&doc.body()).expect("valid json"),
            )
        })
        .collect()
}

#[test]
fn deployment_schema_has_gvk_and_optional_metadata() {
    let doc = group_version_document(&Registry::builtin(), "apps", "v1");
    let schemas = &doc["components"]["schemas"];
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"],
        json!([gvk("apps", "v1", "Deployment")])
    );
    assert!(
        d.get("required").is_none(),
        "metadata must not be required: {}",
        d["required"]
    );
    assert_eq!(
        d["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    let list = &schemas["io.k8s.api.apps.v1.DeploymentList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        json!([gvk("apps", "v1", "DeploymentList")])
    );
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    );
    assert_eq!(doc["openapi"], "3.0.0");
}

#[test]
fn every_ref_resolves_and_stands_alone_in_every_document() {
    for (path, doc) in all_documents(&with_crd()) {
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty(), "{path}");
        for r in refs {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{path}: non-local ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "{path}: dangling {r}");
        }
    }
}

#[test]
fn no_ref_has_siblings_so_explain_sees_descriptions() {
    fn check(v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                // A string `$ref` is a reference (JSONSchemaProps also has a *property* named `$ref`).
                let is_ref = m.get("$ref").is_some_and(Value::is_string);
                assert!(!is_ref || m.len() == 1, "{path}: $ref with siblings: {v}");
                m.values().for_each(|x| check(x, path));
            }
            Value::Array(a) => a.iter().for_each(|x| check(x, path)),
            _ => {}
        }
    }
    for (path, doc) in all_documents(&Registry::builtin()) {
        check(&doc["components"], &path);
    }
}

#[test]
fn kubectl_finds_field_validation_for_every_kind() {
    let registry = with_crd();
    let docs: BTreeMap<String, Value> = all_documents(&registry).into_iter().collect();
    for rt in registry.all() {
        let doc = &docs[&gv_path(&rt.group, &rt.version)];
        assert!(
            supports_field_validation(doc, &gvk(&rt.group, &rt.version, &rt.kind)),
            "{}/{} {}",
            rt.group,
            rt.version,
            rt.kind
        );
    }
}

#[test]
fn kubectl_explain_deployment_spec_strategy_resolves() {
    let doc = group_version_document(&Registry::builtin(), "apps", "v1");
    let strategy = explain(
        &doc,
        "/apis/apps",
        "v1",
        "deployments",
        &["spec", "strategy"],
    )
    .expect("field");
    assert!(
        strategy["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let resolved = strategy["allOf"][0]["$ref"]
        .as_str()
        .expect("strategy is a ref");
    assert_eq!(
        resolved,
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    let fields = explain(
        &doc,
        "/apis/apps",
        "v1",
        "deployments",
        &["spec", "strategy", "rollingUpdate", "maxSurge"],
    );
    assert!(fields.is_some());
    // Through an array: containers[].image.
    let image = explain(
        &doc,
        "/apis/apps",
        "v1",
        "deployments",
        &["spec", "template", "spec", "containers", "image"],
    );
    assert_eq!(image.and_then(|i| i["type"].as_str()), Some("string"));
    // Core group and cluster scope.
    let core = group_version_document(&Registry::builtin(), "", "v1");
    assert!(explain(&core, "/api", "v1", "nodes", &["spec", "podCIDR"]).is_some());
    assert!(explain(&core, "/api", "v1", "pods", &["spec", "nosuchfield"]).is_none());
}

#[test]
fn custom_resource_document_mirrors_crd_builder() {
    let doc = group_version_document(&with_crd(), "stable.example.com", "v1");
    let s = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(
        s["x-kubernetes-group-version-kind"],
        json!([gvk("stable.example.com", "v1", "CronTab")])
    );
    assert_eq!(
        s["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(s["required"], json!(["spec"]));
    assert!(s["properties"]["apiVersion"].is_object());
    let list = &doc["components"]["schemas"]["com.example.stable.v1.CronTabList"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "CronTabList"
    );
    let cron = explain(
        &doc,
        "/apis/stable.example.com",
        "v1",
        "crontabs",
        &["spec", "cronSpec"],
    );
    assert_eq!(
        cron.and_then(|c| c["description"].as_str()),
        Some("Cron format.")
    );
    let patch = &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
        ["patch"];
    assert!(
        patch["requestBody"]["content"]
            .get("application/merge-patch+json")
            .is_some()
    );
    assert!(
        patch["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_none()
    );
}

#[test]
fn shared_meta_schemas_carry_every_group_version() {
    let doc = group_version_document(&with_crd(), "stable.example.com", "v1");
    let schemas = &doc["components"]["schemas"];
    let delete = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
        .as_array()
        .expect("gvks");
    for g in [
        gvk("", "v1", "DeleteOptions"),
        gvk("apps", "v1", "DeleteOptions"),
        gvk("stable.example.com", "v1", "DeleteOptions"),
    ] {
        assert!(delete.contains(&g), "{g}");
    }
    let watch = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"]["x-kubernetes-group-version-kind"];
    assert!(
        watch
            .as_array()
            .is_some_and(|a| a.contains(&gvk("apps", "v1", "WatchEvent")))
    );
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Status"]["x-kubernetes-group-version-kind"],
        json!([gvk("", "v1", "Status")])
    );
}

#[test]
fn operations_follow_upstream_layout() {
    let doc = group_version_document(&Registry::builtin(), "apps", "v1");
    let paths = &doc["paths"];
    let item = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    assert_eq!(
        item["patch"]["operationId"],
        "patchAppsV1NamespacedDeployment"
    );
    assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
    assert_eq!(item["patch"]["tags"], json!(["apps_v1"]));
    let names: Vec<&str> = item["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["name", "namespace", "pretty"]);
    let status = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(
        status["put"]["operationId"],
        "replaceAppsV1NamespacedDeploymentStatus"
    );
    assert_eq!(
        status["get"]["x-kubernetes-group-version-kind"],
        gvk("apps", "v1", "Deployment")
    );
    assert_eq!(
        paths["/apis/apps/v1/deployments"]["get"]["operationId"],
        "listAppsV1DeploymentForAllNamespaces"
    );
    assert!(paths["/apis/apps/v1/watch/namespaces/{namespace}/deployments"]["get"].is_object());
    assert!(paths["/apis/apps/v1/"]["get"].is_object());
    let core = group_version_document(&Registry::builtin(), "", "v1");
    // Namespaces have no deletecollection upstream; nodes are cluster-scoped.
    assert!(core["paths"]["/api/v1/namespaces"]["delete"].is_null());
    assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
    let log = &core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"];
    assert_eq!(log["operationId"], "readCoreV1NamespacedPodLog");
    assert_eq!(
        log["responses"]["200"]["content"]["text/plain"]["schema"],
        json!({"type": "string"})
    );
    let rbac = group_version_document(&Registry::builtin(), "rbac.authorization.k8s.io", "v1");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["post"]["operationId"],
        "createRbacAuthorizationV1ClusterRole"
    );
}

#[test]
fn root_advertises_each_document_by_hash() {
    let v3 = OpenApi::new(&Registry::builtin());
    let root: Value = serde_json::from_slice(&v3.root().body()).expect("json");
    let apps = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps");
    let doc = v3.group_version("apis/apps/v1").expect("apps doc");
    assert_eq!(
        apps,
        format!("/openapi/v3/apis/apps/v1?hash={}", doc.hash())
    );
    assert!(root["paths"]["api/v1"].is_object());
    assert!(v3.group_version("/apis/apps/v1").is_some());
    assert!(v3.group_version("apis/apps/v9").is_none());
}

#[test]
fn rebuild_changes_only_documents_whose_inputs_changed() {
    let before = OpenApi::new(&Registry::builtin());
    let after = before.rebuild(&with_crd());
    let apps = |v: &OpenApi| {
        v.group_version("apis/apps/v1")
            .map(|d| d.hash().to_string())
    };
    assert_eq!(apps(&before), apps(&after));
    assert!(after.group_version("apis/stable.example.com/v1").is_some());
    assert_ne!(before.root().hash(), after.root().hash());

    let mut changed = crontab_schema();
    changed["properties"]["spec"]["properties"]["replicas"] = json!({"type": "integer"});
    let again = after.rebuild(&Registry::builtin().with_custom(vec![crontab(changed)]));
    let crd = |v: &OpenApi| {
        v.group_version("apis/stable.example.com/v1")
            .map(|d| d.hash().to_string())
    };
    assert_ne!(crd(&after), crd(&again));
    assert_eq!(apps(&after), apps(&again));
    // A fresh build agrees with the incremental one.
    assert_eq!(OpenApi::new(&with_crd()).root(), after.root());
}

#[test]
fn v2_stub_is_a_minimal_gnostic_document() {
    let pb = v2_protobuf();
    assert_eq!(&pb[..5], b"\x0a\x032.0");
    assert_eq!(pb[5], 0x12);
    assert_eq!(usize::from(pb[6]), pb.len() - 7);
    assert_eq!(&pb[7..9], b"\x0a\x0a");
    assert_eq!(&pb[9..19], b"Kubernetes");
    assert_eq!(v2_json()["swagger"], "2.0");
    let (ct, body) = v2_document(Some(
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    ))
    .expect("pb");
    assert_eq!(
        ct,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert_eq!(body, pb);
    assert_eq!(
        v2_document(None).map(|(ct, _)| ct),
        Some("application/json")
    );
    assert!(v2_document(Some("text/html")).is_none());
}
