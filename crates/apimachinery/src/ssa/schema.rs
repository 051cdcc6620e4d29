//! What server-side apply needs to know about the type at each position: whether a map is
//! atomic, which keys are declared fields, and whether a list is atomic, a set or a map
//! keyed by some fields. This is upstream's structured-merge-diff schema, derived the way
//! kube-openapi's `schemaconv` derives it:
//!
//! - built-in kinds: the k8s-openapi schema (walked with `smp::schema`) plus the patch
//!   metadata table. A list is what `x-kubernetes-list-type` says; without it, a list with
//!   the `merge` patch strategy is a map keyed by its merge key (a set when it has none) and
//!   every other list is atomic. Structs and maps are granular unless marked atomic.
//! - custom resources: the CRD's `openAPIV3Schema` (`x-kubernetes-list-type`,
//!   `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, `x-kubernetes-preserve-unknown-
//!   fields`); lists without a type are atomic. `metadata` is always `ObjectMeta`.
//! - anything without a schema is "deduced": maps granular, lists atomic.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde_json::Value;

use crate::registry::{ResourceType, TypedHooks};
use crate::smp::schema::{Node, TypeIndex};
use crate::smp::{ListType, MapType, PatchMeta, definition_map_type};

/// Upstream treats `RawExtension` as one opaque value.
const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";

/// Hooks for `ObjectMeta`, so custom resources' `metadata` is typed like built-ins'.
static OBJECT_META: TypedHooks = TypedHooks {
    normalize: Ok,
    schema: ObjectMeta::json_schema,
    schema_name: ObjectMeta::schema_name,
};

/// Keep-alive for the indexes a walk borrows from.
pub(super) struct Schema<'a> {
    typed: Option<Arc<TypeIndex>>,
    object_meta: Arc<TypeIndex>,
    custom: Option<&'a Value>,
}

impl<'a> Schema<'a> {
    pub(super) fn of(rt: &'a ResourceType) -> Schema<'a> {
        Schema {
            typed: rt.typed.map(TypeIndex::of),
            object_meta: TypeIndex::of(&OBJECT_META),
            custom: rt.custom_schema.as_ref(),
        }
    }

    /// The type of the whole object.
    pub(super) fn root(&self) -> Ty<'_> {
        let meta = self.object_meta.root();
        match (&self.typed, self.custom) {
            (Some(index), _) => Ty::Builtin {
                node: index.root(),
                meta: PatchMeta::default(),
            },
            (None, Some(schema)) => Ty::Crd {
                schema,
                preserve: false,
                resource: true,
                meta,
            },
            (None, None) => Ty::Deduced { meta: Some(meta) },
        }
    }
}

/// How a list's items are identified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ListKind<'a> {
    /// The list is one value.
    Atomic,
    /// Items are scalars identified by value.
    Set,
    /// Items are objects identified by these fields.
    Map(Vec<&'a str>),
}

/// The type at one position.
#[derive(Clone, Copy)]
pub(super) enum Ty<'a> {
    /// A built-in type, with the metadata its parent declares for the field holding it.
    Builtin { node: Node<'a>, meta: PatchMeta },
    /// A position in a CRD schema. `resource` marks the object root and embedded resources,
    /// which implicitly have `apiVersion`, `kind` and `ObjectMeta` `metadata`.
    Crd {
        schema: &'a Value,
        preserve: bool,
        resource: bool,
        meta: Node<'a>,
    },
    /// No schema: granular maps of deduced values, atomic lists. `meta` types a root
    /// `metadata` when this is a whole object.
    Deduced { meta: Option<Node<'a>> },
    /// Everything below is one value.
    Atomic,
}

/// A key of a map position.
pub(super) struct FieldTy<'a> {
    pub ty: Ty<'a>,
    /// A declared field of a struct (not a data key like a label's).
    pub declared: bool,
    /// Whether the schema allows the key at all.
    pub allowed: bool,
}

impl<'a> Ty<'a> {
    fn builtin(node: Node<'a>, meta: PatchMeta) -> Ty<'a> {
        Ty::Builtin { node, meta }
    }

    /// Whether an object here is one value (`+mapType=atomic`, `+structType=atomic`).
    pub(super) fn map_atomic(&self) -> bool {
        match self {
            Ty::Builtin { node, meta } => match meta.map_type {
                Some(t) => t == MapType::Atomic,
                None => node.definition().is_some_and(|d| {
                    d == RAW_EXTENSION || definition_map_type(d) == Some(MapType::Atomic)
                }),
            },
            Ty::Crd { schema, .. } => ext_str(schema, "x-kubernetes-map-type") == Some("atomic"),
            Ty::Deduced { .. } => false,
            Ty::Atomic => true,
        }
    }

    /// The type of `key` in an object here.
    pub(super) fn field(&self, key: &str) -> FieldTy<'a> {
        let deduced = |allowed| FieldTy {
            ty: Ty::Deduced { meta: None },
            declared: false,
            allowed,
        };
        match *self {
            Ty::Builtin { node, .. } => {
                if node.is_map() {
                    let (child, meta) = node.field(key);
                    return FieldTy {
                        ty: Ty::builtin(child, meta),
                        declared: false,
                        allowed: true,
                    };
                }
                match node.declares(key) {
                    Some(true) => {
                        let (child, meta) = node.field(key);
                        FieldTy {
                            ty: Ty::builtin(child, meta),
                            declared: true,
                            allowed: true,
                        }
                    }
                    Some(false) => deduced(false),
                    None => deduced(true),
                }
            }
            Ty::Crd {
                schema,
                preserve,
                resource,
                meta,
            } => {
                let preserve = preserve || ext_bool(schema, "x-kubernetes-preserve-unknown-fields");
                if resource {
                    match key {
                        "metadata" => {
                            return FieldTy {
                                ty: Ty::builtin(meta, PatchMeta::default()),
                                declared: true,
                                allowed: true,
                            };
                        }
                        "apiVersion" | "kind" => {
                            return FieldTy {
                                ty: Ty::Deduced { meta: None },
                                declared: true,
                                allowed: true,
                            };
                        }
                        _ => {}
                    }
                }
                let props = schema.get("properties").and_then(Value::as_object);
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    return FieldTy {
                        ty: Ty::crd(prop, preserve, meta),
                        declared: true,
                        allowed: true,
                    };
                }
                match schema.get("additionalProperties") {
                    Some(ap @ Value::Object(_)) => FieldTy {
                        ty: Ty::crd(ap, preserve, meta),
                        declared: false,
                        allowed: true,
                    },
                    Some(Value::Bool(true)) => deduced(true),
                    Some(Value::Bool(false)) => deduced(false),
                    _ => deduced(preserve || props.is_none_or(|p| p.is_empty())),
                }
            }
            Ty::Deduced { meta: Some(meta) } if key == "metadata" => FieldTy {
                ty: Ty::builtin(meta, PatchMeta::default()),
                declared: true,
                allowed: true,
            },
            Ty::Deduced { .. } => deduced(true),
            Ty::Atomic => FieldTy {
                ty: Ty::Atomic,
                declared: false,
                allowed: true,
            },
        }
    }

    fn crd(schema: &'a Value, preserve: bool, meta: Node<'a>) -> Ty<'a> {
        Ty::Crd {
            schema,
            preserve,
            resource: ext_bool(schema, "x-kubernetes-embedded-resource"),
            meta,
        }
    }

    /// How a list here identifies its items.
    pub(super) fn list_kind(&self) -> ListKind<'a> {
        match self {
            Ty::Builtin { meta, .. } => match meta.list_type {
                Some(ListType::Atomic) => ListKind::Atomic,
                Some(ListType::Set) => ListKind::Set,
                Some(ListType::Map) => ListKind::Map(meta.list_map_keys.to_vec()),
                None => match meta.strategy {
                    Some(s) if s.merges() => meta
                        .merge_key
                        .map_or(ListKind::Set, |key| ListKind::Map(vec![key])),
                    _ => ListKind::Atomic,
                },
            },
            Ty::Crd { schema, .. } => match ext_str(schema, "x-kubernetes-list-type") {
                Some("set") => ListKind::Set,
                Some("map") => ListKind::Map(
                    schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default(),
                ),
                _ => ListKind::Atomic,
            },
            Ty::Deduced { .. } | Ty::Atomic => ListKind::Atomic,
        }
    }

    /// The type of a list's items.
    pub(super) fn items(&self) -> Ty<'a> {
        match *self {
            Ty::Builtin { node, .. } => Ty::builtin(node.items(), PatchMeta::default()),
            Ty::Crd {
                schema,
                preserve,
                meta,
                ..
            } => match schema.get("items") {
                Some(items @ Value::Object(_)) => Ty::crd(items, preserve, meta),
                _ => Ty::Deduced { meta: None },
            },
            // Upstream's deduced lists hold untyped atomic values.
            Ty::Deduced { .. } | Ty::Atomic => Ty::Atomic,
        }
    }

    /// The schema default of key field `name` of this list's items: upstream fills a missing
    /// key from it (`ports` items without `protocol` are keyed as `protocol: TCP`).
    pub(super) fn key_default(&self, name: &str) -> Option<Value> {
        match self {
            Ty::Builtin { node, .. } => {
                let item = node.items().definition()?;
                // The only list-map keys upstream's built-in types give a `+default`.
                let defaulted = matches!(
                    item,
                    "io.k8s.api.core.v1.ContainerPort" | "io.k8s.api.core.v1.ServicePort"
                );
                (defaulted && name == "protocol").then(|| Value::from("TCP"))
            }
            Ty::Crd { schema, .. } => schema
                .get("items")?
                .get("properties")?
                .get(name)?
                .get("default")
                .cloned(),
            _ => None,
        }
    }
}

fn ext_str<'v>(schema: &'v Value, key: &str) -> Option<&'v str> {
    schema.get(key).and_then(Value::as_str)
}

fn ext_bool(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}
