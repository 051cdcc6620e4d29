use serde_json::{Value, json};

use super::{Case, check_create, check_update};

const CRD: (&str, &str) = ("apiextensions.k8s.io", "CustomResourceDefinition");
const DNS1035: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn schema() -> Value {
    json!({"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}})
}

fn version(name: &str, storage: bool) -> Value {
    json!({"name": name, "served": true, "storage": storage, "schema": schema()})
}

fn crd(name: &str, spec: Value) -> Value {
    let mut full = json!({"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [version("v1", true)]});
    if let (Some(f), Some(s)) = (full.as_object_mut(), spec.as_object()) {
        f.extend(s.clone());
    }
    json!({"metadata": {"name": name}, "spec": full})
}

fn version_dump(name: &str) -> String {
    format!(
        "apiextensions.CustomResourceDefinitionVersion{{Name:\"{name}\", Served:true, Storage:true, Deprecated:false, DeprecationWarning:(*string)(nil), Schema:(*apiextensions.CustomResourceValidation)(nil), Subresources:(*apiextensions.CustomResourceSubresources)(nil), AdditionalPrinterColumns:[]apiextensions.CustomResourceColumnDefinition(nil), SelectableFields:[]apiextensions.SelectableField(nil)}}"
    )
}

#[test]
fn crd_spec_rules() {
    let name_msgs = |field: &str, value: &str, prefix: &str| {
        format!("spec.names.{field}: Invalid value: \"{value}\": {prefix}{DNS1035}")
    };
    let cases: Vec<Case<String>> = vec![
        (
            CRD.0,
            CRD.1,
            crd("widgets.example.com", json!({"versions": [{"name": "v1", "served": true, "storage": true}]})),
            vec!["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required".into()],
        ),
        (
            CRD.0,
            CRD.1,
            json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com",
                "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"}}}),
            vec![
                "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion(nil): must have exactly one version marked as storage version".into(),
                "status.storedVersions: Invalid value: []string(nil): must have at least one stored version".into(),
            ],
        ),
        (
            CRD.0,
            CRD.1,
            crd("widgets.example.com", json!({"group": "example", "scope": "Global"})),
            vec![
                "metadata.name: Invalid value: \"widgets.example.com\": must be spec.names.plural+\".\"+spec.group".into(),
                "spec.group: Invalid value: \"example\": should be a domain with at least one dot".into(),
                "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"".into(),
            ],
        ),
        (
            CRD.0,
            CRD.1,
            crd("widgets.example.com", json!({"versions": [version("V1", true), version("v2", true)]})),
            vec![
                format!("spec.versions[0].name: Invalid value: \"V1\": {DNS1035}"),
                format!(
                    "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{{{}, {}}}: must have exactly one version marked as storage version",
                    version_dump("V1"),
                    version_dump("v2")
                ),
                format!("spec.version: Invalid value: \"V1\": {DNS1035}"),
                "status.storedVersions: Invalid value: []string{\"V1\"}: must have the storage version v2".into(),
            ],
        ),
        (
            CRD.0,
            CRD.1,
            crd("widgets.example.com", json!({"names": {"plural": "Widgets", "kind": "My_Kind"}})),
            vec![
                "metadata.name: Invalid value: \"widgets.example.com\": must be spec.names.plural+\".\"+spec.group".into(),
                name_msgs("plural", "Widgets", ""),
                name_msgs("singular", "my_kind", ""),
                name_msgs("kind", "My_Kind", "may have mixed case, but should otherwise match: "),
                name_msgs("listKind", "My_KindList", "may have mixed case, but should otherwise match: "),
            ],
        ),
        (
            CRD.0,
            CRD.1,
            crd("widgets.example.com", json!({"versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"properties": {
                    "spec": {"properties": {"size": {"type": "int"}}},
                    "tags": {"type": "array"}}}},
                "additionalPrinterColumns": [{"name": "Age", "type": "time", "jsonPath": "metadata.creationTimestamp"}]}]})),
            vec![
                "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields".into(),
                "spec.validation.openAPIV3Schema.properties[tags].items: Required value: must be specified".into(),
                "spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root".into(),
                "spec.validation.openAPIV3Schema.properties[spec].properties[size].type: Unsupported value: \"int\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"".into(),
                "spec.additionalPrinterColumns[0].type: Invalid value: \"time\": must be one of boolean,date,integer,number,string".into(),
                "spec.additionalPrinterColumns[0].JSONPath: Invalid value: \"metadata.creationTimestamp\": must be a simple json path starting with .".into(),
            ],
        ),
        (
            CRD.0,
            CRD.1,
            crd("widgets.widgets.k8s.io", json!({"group": "widgets.k8s.io"})),
            vec!["metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111".into()],
        ),
        (
            CRD.0,
            CRD.1,
            crd("widgets.example.com", json!({"conversion": {"strategy": "Webhook",
                "webhook": {"clientConfig": {"url": "http://convert.example.com/x?y=1"}}}})),
            vec![
                "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]".into(),
                "spec.conversion.webhookClientConfig.url: Invalid value: \"y=1\": query parameters are not permitted in the URL".into(),
                "spec.conversion.conversionReviewVersions: Required value".into(),
            ],
        ),
    ];
    check_create(cases);
}

#[test]
fn crd_updates() {
    let mut old = crd("widgets.example.com", json!({}));
    old["status"] = json!({"storedVersions": ["v1"], "conditions": [{"type": "Established", "status": "True"}]});
    let new = crd("widgets.example.com", json!({"scope": "Cluster"}));
    check_update(
        CRD.0,
        CRD.1,
        old.clone(),
        new,
        &["spec.scope: Invalid value: \"Cluster\": field is immutable"],
    );
    // Dropping a version that was stored needs a storage migration first.
    let v2 = crd(
        "widgets.example.com",
        json!({"versions": [version("v2", true)]}),
    );
    check_update(
        CRD.0,
        CRD.1,
        old,
        v2,
        &[
            "status.storedVersions[0]: Invalid value: \"v1\": missing from spec.versions; v1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1 and removes v1 from status.storedVersions",
        ],
    );
}
