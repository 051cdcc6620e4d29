//! Which OpenAPI definition lives at each path of a built-in kind, read from k8s-openapi's
//! schemars schemas. Upstream walks the Go struct with reflection; we walk the schema of the
//! same type, and ask the metadata table about each (definition, field) on the way.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::meta::{PatchMeta, patch_meta};
use crate::registry::TypedHooks;

/// The shape of a value as far as merging cares.
#[derive(Debug)]
enum Ty {
    /// An object of a named definition (a Go struct).
    Named(Arc<str>),
    /// A list of items of the inner type.
    List(Box<Ty>),
    /// A map with values of the inner type (`labels`, `data`, `limits`): any key is allowed.
    Map(Box<Ty>),
    /// A scalar, by the Go kind upstream would name in messages (`string`, `int64`, …).
    Scalar(&'static str),
    /// Free-form JSON and anything the schema does not describe.
    Unknown,
}

/// Every definition reachable from one kind, with each field's shape.
#[derive(Debug, Default)]
pub(crate) struct TypeIndex {
    root: Option<Arc<str>>,
    definitions: HashMap<Arc<str>, HashMap<String, Ty>>,
}

impl TypeIndex {
    /// The index of a built-in kind, built on first use from its schemars schema and cached
    /// for the life of the process (schemas never change at run time).
    pub(crate) fn of(hooks: &TypedHooks) -> Arc<TypeIndex> {
        static CACHE: OnceLock<RwLock<HashMap<String, Arc<TypeIndex>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let name = (hooks.schema_name)().into_owned();
        // A poisoned lock only means another thread panicked mid-insert of a complete value;
        // the map itself is still consistent, so keep using it.
        if let Some(index) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&name) {
            return index.clone();
        }
        let index = Arc::new(TypeIndex::build(hooks, &name));
        cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_insert(index)
            .clone()
    }

    fn build(hooks: &TypedHooks, name: &str) -> TypeIndex {
        let mut generator = SchemaSettings::draft2020_12().into_generator();
        let root = (hooks.schema)(&mut generator);
        let mut definitions: HashMap<Arc<str>, HashMap<String, Ty>> = generator
            .definitions()
            .iter()
            .map(|(name, schema)| (Arc::from(name.as_str()), fields_of(schema)))
            .collect();
        let root_name: Arc<str> = Arc::from(name);
        definitions.insert(root_name.clone(), fields_of(root.as_value()));
        TypeIndex {
            root: Some(root_name),
            definitions,
        }
    }

    /// Whether `definition` is known and, if so, whether it has `field` (for table checks).
    #[cfg(test)]
    pub(super) fn has_field(&self, definition: &str, field: &str) -> Option<bool> {
        self.definitions
            .get(definition)
            .map(|fields| fields.contains_key(field))
    }

    /// The node of the kind's top-level object.
    pub(crate) fn root(&self) -> Node<'_> {
        Node {
            index: Some(self),
            ty: None,
            name: self.root.as_deref(),
        }
    }
}

fn fields_of(schema: &Value) -> HashMap<String, Ty> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.iter().map(|(k, v)| (k.clone(), ty_of(v))).collect())
        .unwrap_or_default()
}

fn ty_of(schema: &Value) -> Ty {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        // `#/$defs/io.k8s.api.core.v1.PodSpec`: definition names never contain a slash.
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return Ty::Named(Arc::from(name));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => Ty::List(Box::new(schema.get("items").map_or(Ty::Unknown, ty_of))),
        Some("object") => match schema.get("additionalProperties") {
            Some(values) if values.is_object() => Ty::Map(Box::new(ty_of(values))),
            _ => Ty::Unknown,
        },
        Some("string") => Ty::Scalar("string"),
        Some("boolean") => Ty::Scalar("bool"),
        Some("number") => Ty::Scalar("float64"),
        Some("integer") if schema.get("format").and_then(Value::as_str) == Some("int32") => {
            Ty::Scalar("int32")
        }
        Some("integer") => Ty::Scalar("int64"),
        _ => Ty::Unknown,
    }
}

/// A position in a kind's schema while merging: the type of the value being merged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node<'a> {
    index: Option<&'a TypeIndex>,
    ty: Option<&'a Ty>,
    /// The definition of the object at this position, when it is one.
    name: Option<&'a str>,
}

impl<'a> Node<'a> {
    /// A position nothing is known about: objects merge, lists are replaced.
    pub(super) const UNKNOWN: Node<'static> = Node {
        index: None,
        ty: None,
        name: None,
    };

    fn at(index: Option<&'a TypeIndex>, ty: Option<&'a Ty>) -> Node<'a> {
        let name = match ty {
            Some(Ty::Named(name)) => Some(&**name),
            _ => None,
        };
        Node { index, ty, name }
    }

    /// The node of `key` in this object and the field's patch metadata. Keys of maps
    /// (`labels`) all share the map's value type and carry no metadata.
    pub(crate) fn field(&self, key: &str) -> (Node<'a>, PatchMeta) {
        if let Some(Ty::Map(values)) = self.ty {
            return (Node::at(self.index, Some(values)), PatchMeta::default());
        }
        let (Some(index), Some(name)) = (self.index, self.name) else {
            return (Node::UNKNOWN, PatchMeta::default());
        };
        let ty = index
            .definitions
            .get(name)
            .and_then(|fields| fields.get(key));
        (
            Node::at(Some(index), ty),
            patch_meta(name, key).unwrap_or_default(),
        )
    }

    /// The node of this list's items.
    pub(crate) fn items(&self) -> Node<'a> {
        match self.ty {
            Some(Ty::List(items)) => Node::at(self.index, Some(items)),
            _ => Node::UNKNOWN,
        }
    }

    /// The OpenAPI definition of the object at this position, when it is one.
    pub(crate) fn definition(&self) -> Option<&'a str> {
        self.name
    }

    /// Whether this position is a map whose keys are data (`labels`), not field names.
    pub(crate) fn is_map(&self) -> bool {
        matches!(self.ty, Some(Ty::Map(_)))
    }

    /// Whether the definition at this position declares the field `key`; `None` when its
    /// fields are unknown (not a definition, or one without properties, like `RawExtension`).
    pub(crate) fn declares(&self, key: &str) -> Option<bool> {
        let fields = self.index?.definitions.get(self.name?)?;
        (!fields.is_empty()).then(|| fields.contains_key(key))
    }

    /// How errors name the type at this position: upstream prints the Go type's kind.
    pub(super) fn describe(&self) -> &'static str {
        match self.ty {
            Some(Ty::Named(_)) => "struct",
            Some(Ty::List(_)) => "slice",
            Some(Ty::Map(_)) => "map",
            Some(Ty::Scalar(kind)) => kind,
            Some(Ty::Unknown) | None => "interface",
        }
    }
}
