//! `components.schemas` of a group-version document.
//!
//! Built-in kinds come from k8s-openapi's schemars implementations, generated with
//! `SchemaSettings::openapi3()`: references point at `#/components/schemas/<canonical name>`
//! and a `$ref` with sibling keywords (a field's description) becomes
//! `allOf: [{$ref}]` plus the siblings, the shape upstream publishes and `kubectl explain`
//! walks. Custom resources use their CRD `openAPIV3Schema`. On top we add what upstream's
//! generator adds: `x-kubernetes-group-version-kind`, List kinds, and `metadata` not required.

use std::collections::BTreeMap;

use apimachinery::registry::{Registry, ResourceType, Subresource, TypedHooks};
use k8s_openapi::api::{authentication, autoscaling, core, policy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIResourceList, DeleteOptions, ListMeta, ObjectMeta, Patch, Status, WatchEvent,
};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// Where a `$ref` into `components.schemas` points.
pub(super) const REF_PREFIX: &str = "#/components/schemas/";

const GVK_EXTENSION: &str = "x-kubernetes-group-version-kind";

/// Schema names of the shared meta kinds every document carries.
pub(super) struct Common {
    pub delete_options: String,
    pub status: String,
    pub watch_event: String,
    pub patch: String,
    pub api_resource_list: String,
}

/// Schema names for one resource's operations.
pub(super) struct ResourceSchemas {
    pub kind: String,
    pub list: String,
    /// Body schema per entry of `ResourceType::subresources`; `None` when we have no schema
    /// for the body kind (e.g. the options kinds of connect subresources).
    pub subresources: Vec<Option<String>>,
}

/// Accumulates the schemas of one document.
pub(super) struct Components {
    generator: SchemaGenerator,
    /// Schemas built by hand (List kinds, custom resources), already in OpenAPI 3 shape, so
    /// they skip schemars' transforms.
    extra: Vec<(String, Value)>,
    /// Schema name → the GVKs it is published as.
    gvks: BTreeMap<String, Vec<Value>>,
    pub common: Common,
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    // Exactly these three keys: `kubectl explain` compares the operation's object with the
    // schema's array elements by deep equality.
    json!({"group": group, "kind": kind, "version": version})
}

pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

impl Components {
    pub fn new() -> Self {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let common = Common {
            delete_options: register::<DeleteOptions>(&mut generator),
            status: register::<Status>(&mut generator),
            watch_event: register::<WatchEvent<()>>(&mut generator),
            patch: register::<Patch>(&mut generator),
            api_resource_list: register::<APIResourceList>(&mut generator),
        };
        Components {
            generator,
            extra: Vec::new(),
            gvks: BTreeMap::new(),
            common,
        }
    }

    fn annotate(&mut self, name: &str, group: &str, version: &str, kind: &str) {
        let list = self.gvks.entry(name.to_string()).or_default();
        let g = gvk(group, version, kind);
        if !list.contains(&g) {
            list.push(g);
        }
    }

    /// Adds the kind, its List kind and its subresources' body kinds.
    pub fn add_resource(&mut self, registry: &Registry, rt: &ResourceType) -> ResourceSchemas {
        let kind = match rt.typed {
            Some(hooks) => self.add_typed(hooks),
            None => self.add_custom(rt),
        };
        self.annotate(&kind, &rt.group, &rt.version, &rt.kind);
        // The List kind's schema name sits beside the kind's: `io.k8s.api.apps.v1.Deployment`
        // → `io.k8s.api.apps.v1.DeploymentList`.
        let list = match kind.strip_suffix(rt.kind.as_str()) {
            Some(prefix) => format!("{prefix}{}", rt.list_kind),
            None => format!("{kind}List"),
        };
        let list_schema = list_schema(rt, &kind, &register::<ListMeta>(&mut self.generator));
        self.extra.push((list.clone(), list_schema));
        self.annotate(&list, &rt.group, &rt.version, &rt.list_kind);

        let subresources = rt
            .subresources
            .iter()
            .map(|sub| {
                let same_kind =
                    sub.group == rt.group && sub.version == rt.version && sub.kind == rt.kind;
                let name = if same_kind {
                    Some(kind.clone())
                } else {
                    self.add_body_kind(registry, sub)
                };
                if let Some(name) = &name {
                    self.annotate(name, &sub.group, &sub.version, &sub.kind);
                }
                name
            })
            .collect();
        ResourceSchemas {
            kind,
            list,
            subresources,
        }
    }

    /// A built-in kind: its schema goes into the generator's definitions under its canonical
    /// name so that `take_definitions(true)` applies the OpenAPI 3 transforms to it too.
    fn add_typed(&mut self, hooks: &TypedHooks) -> String {
        let name = (hooks.schema_name)().into_owned();
        let schema = (hooks.schema)(&mut self.generator);
        self.generator
            .definitions_mut()
            .insert(name.clone(), Value::from(schema));
        name
    }

    /// Body kinds of subresources that are not resources themselves.
    fn add_body_kind(&mut self, registry: &Registry, sub: &Subresource) -> Option<String> {
        let g = &mut self.generator;
        match (sub.group.as_str(), sub.version.as_str(), sub.kind.as_str()) {
            ("autoscaling", "v1", "Scale") => Some(register::<autoscaling::v1::Scale>(g)),
            ("policy", "v1", "Eviction") => Some(register::<policy::v1::Eviction>(g)),
            ("", "v1", "Binding") => Some(register::<core::v1::Binding>(g)),
            ("authentication.k8s.io", "v1", "TokenRequest") => {
                Some(register::<authentication::v1::TokenRequest>(g))
            }
            (group, version, kind) => {
                let hooks = registry.by_kind(group, version, kind)?.typed?;
                Some(self.add_typed(hooks))
            }
        }
    }

    /// A custom resource: the CRD's `openAPIV3Schema` with `apiVersion`, `kind` and
    /// `metadata` (a reference to ObjectMeta) filled in, as upstream's CRD OpenAPI builder
    /// publishes it. CRD schemas cannot contain `$ref`, so nothing else needs resolving.
    fn add_custom(&mut self, rt: &ResourceType) -> String {
        let name = format!("{}.{}.{}", reverse_domain(&rt.group), rt.version, rt.kind);
        let object_meta = register::<ObjectMeta>(&mut self.generator);
        let mut schema = match &rt.custom_schema {
            Some(Value::Object(s)) => s.clone(),
            _ => Map::from_iter([(
                "x-kubernetes-preserve-unknown-fields".to_string(),
                Value::Bool(true),
            )]),
        };
        schema.entry("type").or_insert_with(|| "object".into());
        let props = schema.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            let (api_version, kind) = type_meta_properties();
            props.insert("apiVersion".into(), api_version);
            props.insert("kind".into(), kind);
            props.insert(
                "metadata".into(),
                json!({
                    "allOf": [schema_ref(&object_meta)],
                    "description": "Standard object metadata.",
                }),
            );
        }
        self.extra.push((name.clone(), Value::Object(schema)));
        name
    }

    /// Every schema of the document. `common_gvs` are the group versions the shared
    /// `DeleteOptions` and `WatchEvent` schemas are published for.
    pub fn finish(mut self, common_gvs: &[(String, String)]) -> Map<String, Value> {
        for (group, version) in common_gvs {
            let name = self.common.delete_options.clone();
            self.annotate(&name, group, version, "DeleteOptions");
            let name = self.common.watch_event.clone();
            self.annotate(&name, group, version, "WatchEvent");
        }
        // Upstream publishes Status as core v1 only.
        let name = self.common.status.clone();
        self.annotate(&name, "", "v1", "Status");

        let mut defs = self.generator.take_definitions(true);
        defs.extend(self.extra);
        add_patch_extensions(&mut defs);
        for (name, schema) in defs.iter_mut() {
            if let Some(obj) = schema.as_object_mut() {
                unrequire_metadata(obj);
                if let Some(gvks) = self.gvks.remove(name) {
                    obj.insert(GVK_EXTENSION.into(), Value::Array(gvks));
                }
            }
        }
        defs
    }
}

/// Upstream's `x-kubernetes-patch-strategy`/`-patch-merge-key`/`-list-type`/
/// `-list-map-keys`/`-map-type` extensions, from the strategic-merge-patch table (kubectl
/// computes strategic patches from them).
fn add_patch_extensions(defs: &mut Map<String, Value>) {
    for (definition, field, meta) in apimachinery::smp::all_patch_meta() {
        let Some(prop) = defs
            .get_mut(&definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(strategy) = meta.strategy {
            prop.insert(
                "x-kubernetes-patch-strategy".into(),
                strategy.as_str().into(),
            );
        }
        if let Some(key) = meta.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        if let Some(list_type) = meta.list_type {
            prop.insert("x-kubernetes-list-type".into(), list_type.as_str().into());
            if !meta.list_map_keys.is_empty() {
                prop.insert(
                    "x-kubernetes-list-map-keys".into(),
                    meta.list_map_keys.into(),
                );
            }
        }
        if let Some(map_type) = meta.map_type {
            prop.insert("x-kubernetes-map-type".into(), map_type.as_str().into());
        }
    }
    for (name, schema) in defs.iter_mut() {
        if let (Some(map_type), Some(obj)) = (
            apimachinery::smp::definition_map_type(name),
            schema.as_object_mut(),
        ) {
            obj.insert("x-kubernetes-map-type".into(), map_type.as_str().into());
        }
    }
}

/// Registers `T` (and everything it references) and returns its schema name.
fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// k8s-openapi marks `metadata` required because its Rust field is not optional; upstream
/// never requires it (generateName, or a name from the URL, is enough), and kubectl's
/// client-side validation and `explain` would otherwise say it is.
fn unrequire_metadata(obj: &mut Map<String, Value>) {
    let now_empty = match obj.get_mut("required").and_then(Value::as_array_mut) {
        Some(req) => {
            req.retain(|r| r != "metadata");
            req.is_empty()
        }
        None => false,
    };
    if now_empty {
        obj.remove("required");
    }
}

fn type_meta_properties() -> (Value, Value) {
    (
        json!({
            "description": "APIVersion defines the versioned schema of this representation of an object.",
            "type": "string",
        }),
        json!({
            "description": "Kind is a string value representing the REST resource this object represents.",
            "type": "string",
        }),
    )
}

/// The schema of `<Kind>List`, which k8s-openapi models generically rather than per kind.
fn list_schema(rt: &ResourceType, kind_schema: &str, list_meta: &str) -> Value {
    let (api_version, kind) = type_meta_properties();
    json!({
        "description": format!("{} is a list of {} objects.", rt.list_kind, rt.kind),
        "type": "object",
        "properties": {
            "apiVersion": api_version,
            "items": {
                "description": format!("List of {}.", rt.plural),
                "type": "array",
                "items": schema_ref(kind_schema),
            },
            "kind": kind,
            "metadata": {
                "allOf": [schema_ref(list_meta)],
                "description": "Standard list metadata.",
            },
        },
        "required": ["items"],
    })
}

/// `stable.example.com` → `com.example.stable`, the prefix upstream gives CRD schema names.
fn reverse_domain(group: &str) -> String {
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}
