//! JSON field names for the generated tables, recovered from the OpenAPI schemas.
//!
//! A `generated.proto` names each field by its JSON name (`podIP`), but prost snake-cased it
//! (`pod_ip`), and `podIP` cannot be rebuilt from `pod_ip`. The k8s-openapi schemas of the
//! same definitions (`api.core.v1.PodStatus` ↔ `io.k8s.api.core.v1.PodStatus`) list the JSON
//! names, so each proto field is matched to the property whose name is equal once case and
//! non-alphanumerics are ignored (`podIP`/`pod_ip`, `$ref`/`ref`,
//! `x-kubernetes-list-type`/`x_kubernetes_list_type`).
//!
//! The schemas also reveal Go's inlined embedded structs: `Probe` embeds `ProbeHandler` with
//! `json:",inline"`, which the proto carries as a field `handler` that JSON does not have. A
//! message field with no property of its own, whose message's fields are properties of the
//! parent, is inlined. A field whose definition is unknown (kinds newer than the schemas)
//! falls back to lowerCamelCase.
//!
//! Built once, on the first protobuf request.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use apimachinery::registry::Registry;
use k8s_openapi::api::{authentication, authorization, autoscaling, core, flowcontrol, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

use super::table::{MESSAGES, Ty};

/// How one proto field appears in JSON.
#[derive(Debug)]
pub(super) struct FieldName {
    pub json: Box<str>,
    /// The field's object is merged into its parent (Go `json:",inline"`).
    pub inline: bool,
    /// Go encodes the field even when empty (no `omitempty`: the schema requires it).
    pub required: bool,
}

/// `names()[message][field position]`, parallel to [`MESSAGES`].
pub(super) fn names() -> &'static [Box<[FieldName]>] {
    static NAMES: OnceLock<Vec<Box<[FieldName]>>> = OnceLock::new();
    NAMES.get_or_init(build)
}

/// One OpenAPI definition's properties.
struct Definition {
    /// Normalized name → JSON name.
    properties: HashMap<String, String>,
    required: HashSet<String>,
}

fn build() -> Vec<Box<[FieldName]>> {
    let definitions = definitions();
    MESSAGES
        .iter()
        .map(|m| {
            let def = definitions.get(&definition_key(m.key));
            m.fields
                .iter()
                .map(|f| {
                    let Some(def) = def else {
                        return fallback(f.name);
                    };
                    if let Some(json) = def.properties.get(&normalize(f.name)) {
                        return FieldName {
                            required: def.required.contains(json),
                            json: json.as_str().into(),
                            inline: false,
                        };
                    }
                    let inline = match f.ty {
                        Ty::Message(i) if !f.repeated => MESSAGES[i]
                            .fields
                            .iter()
                            .any(|sf| def.properties.contains_key(&normalize(sf.name))),
                        _ => false,
                    };
                    FieldName {
                        inline,
                        ..fallback(f.name)
                    }
                })
                .collect()
        })
        .collect()
}

/// Every definition reachable from the built-in kinds, plus the kinds that are only request
/// bodies of subresources and reviews (kubectl sends these as protobuf too) and built-in
/// kinds whose fields have acronyms (`nonResourceURLs`, `insecureSkipTLSVerify`) that this
/// server may not serve yet.
fn definitions() -> HashMap<String, Definition> {
    let mut generator = SchemaGenerator::default();
    let mut roots: Vec<(String, Value)> = Vec::new();
    for rt in Registry::builtin().all() {
        if let Some(hooks) = rt.typed {
            let schema = (hooks.schema)(&mut generator);
            roots.push(((hooks.schema_name)().into_owned(), schema.to_value()));
        }
    }
    fn extra<T: JsonSchema>(g: &mut SchemaGenerator, roots: &mut Vec<(String, Value)>) {
        roots.push((T::schema_name().into_owned(), T::json_schema(g).to_value()));
    }
    extra::<core::v1::Binding>(&mut generator, &mut roots);
    extra::<policy::v1::Eviction>(&mut generator, &mut roots);
    extra::<autoscaling::v1::Scale>(&mut generator, &mut roots);
    extra::<authentication::v1::TokenRequest>(&mut generator, &mut roots);
    extra::<authentication::v1::TokenReview>(&mut generator, &mut roots);
    extra::<authentication::v1::SelfSubjectReview>(&mut generator, &mut roots);
    extra::<authorization::v1::SubjectAccessReview>(&mut generator, &mut roots);
    extra::<authorization::v1::SelfSubjectAccessReview>(&mut generator, &mut roots);
    extra::<authorization::v1::LocalSubjectAccessReview>(&mut generator, &mut roots);
    extra::<authorization::v1::SelfSubjectRulesReview>(&mut generator, &mut roots);
    extra::<meta::DeleteOptions>(&mut generator, &mut roots);
    extra::<flowcontrol::v1::FlowSchema>(&mut generator, &mut roots);
    extra::<flowcontrol::v1::PriorityLevelConfiguration>(&mut generator, &mut roots);
    extra::<apiregistration::APIService>(&mut generator, &mut roots);
    let nested = generator.definitions().clone();
    roots
        .into_iter()
        .chain(nested)
        .filter_map(|(name, schema)| {
            let properties = schema.get("properties")?.as_object()?;
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let properties = properties
                .keys()
                .map(|k| (normalize(k), k.clone()))
                .collect();
            Some((
                name.to_lowercase(),
                Definition {
                    properties,
                    required,
                },
            ))
        })
        .collect()
}

/// `api.core.v1.pod` → `io.k8s.api.core.v1.pod`; the module of the first segment is the Go
/// repository, whose dashes Rust spelled as underscores (`apiextensions_apiserver`).
fn definition_key(message_key: &str) -> String {
    let (repo, rest) = message_key.split_once('.').unwrap_or((message_key, ""));
    format!("io.k8s.{}.{rest}", repo.replace('_', "-"))
}

/// Lowercase ASCII letters and digits only.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// lowerCamelCase of a snake_case name: right for every field without an acronym.
fn fallback(snake: &str) -> FieldName {
    let mut json = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            json.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            json.push(c);
        }
    }
    FieldName {
        json: json.into(),
        inline: false,
        required: false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::find;
    use super::*;

    /// `(prost name, JSON name, inline)` of each field of a message.
    fn json_names(path: &str) -> Vec<(&'static str, String, bool)> {
        let i = find(&path.to_lowercase()).unwrap_or_else(|| panic!("{path}"));
        MESSAGES[i]
            .fields
            .iter()
            .zip(names()[i].iter())
            .map(|(f, n)| (f.name, n.json.to_string(), n.inline))
            .collect()
    }

    fn has(path: &str, prost: &str, json: &str) -> bool {
        json_names(path)
            .iter()
            .any(|(p, j, inline)| *p == prost && j == json && !inline)
    }

    #[test]
    fn acronyms_come_from_the_schema() {
        assert!(has("api.core.v1.PodStatus", "pod_ip", "podIP"));
        assert!(has("api.core.v1.PodSpec", "host_ipc", "hostIPC"));
        assert!(has(
            "api.core.v1.ServiceSpec",
            "external_ips",
            "externalIPs"
        ));
        assert!(has(
            "api.flowcontrol.v1.NonResourcePolicyRule",
            "non_resource_ur_ls",
            "nonResourceURLs"
        ));
        assert!(has(
            "kube_aggregator.pkg.apis.apiregistration.v1.APIServiceSpec",
            "insecure_skip_tls_verify",
            "insecureSkipTLSVerify"
        ));
        let props = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
        assert!(has(props, "ref", "$ref"));
        assert!(has(props, "schema", "$schema"));
        assert!(has(
            props,
            "x_kubernetes_preserve_unknown_fields",
            "x-kubernetes-preserve-unknown-fields"
        ));
    }

    #[test]
    fn names_without_a_schema_fall_back_to_camel_case() {
        // Newer than the 1.33 schemas.
        assert!(has(
            "api.core.v1.PodSpec",
            "hostname_override",
            "hostnameOverride"
        ));
        assert_eq!(
            &*fallback("service_account_name").json,
            "serviceAccountName"
        );
    }

    #[test]
    fn go_inlined_structs_are_found() {
        let mut inlined: Vec<String> = MESSAGES
            .iter()
            .zip(names())
            .flat_map(|(m, ns)| {
                m.fields
                    .iter()
                    .zip(ns.iter())
                    .filter(|(_, n)| n.inline)
                    .map(move |(f, _)| format!("{}.{}", m.path, f.name))
            })
            .collect();
        inlined.sort();
        let local_ref = |kind: &str| format!("api.core.v1.{kind}.local_object_reference");
        let mut expected: Vec<String> = [
            "api.admissionregistration.v1.NamedRuleWithOperations.rule_with_operations",
            "api.admissionregistration.v1.RuleWithOperations.rule",
            "api.core.v1.EphemeralContainer.ephemeral_container_common",
            "api.core.v1.PersistentVolumeSpec.persistent_volume_source",
            "api.core.v1.Probe.handler",
            "api.core.v1.Volume.volume_source",
            "api.networking.v1.IngressRule.ingress_rule_value",
        ]
        .into_iter()
        .map(String::from)
        .chain(
            [
                "ConfigMapEnvSource",
                "ConfigMapKeySelector",
                "ConfigMapProjection",
                "ConfigMapVolumeSource",
                "SecretEnvSource",
                "SecretKeySelector",
                "SecretProjection",
            ]
            .map(local_ref),
        )
        .collect();
        expected.sort();
        assert_eq!(inlined, expected);
    }
}
