//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds, with
//! upstream's semantics (k8s.io/apimachinery `pkg/util/strategicpatch`, server side):
//!
//! - objects merge recursively and `null` deletes a key;
//! - lists whose field has the `merge` patch strategy merge: lists of objects by the field's
//!   merge key (`containers` by `name`, Service `ports` by `port`), lists of primitives as a
//!   set (`finalizers`); every other list is replaced;
//! - directives: `$patch: replace | delete` in an object, `$patch: delete | replace` as a list
//!   item, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//!
//! Where upstream leaves the order of a merged list unspecified by the patch, the result is
//! upstream's: items named by the patch take the patch's order, items only on the server keep
//! theirs, and a server item is placed before a patch item only when it came before it on the
//! server — so new items come first (`finalizers [a b]` + `[c]` = `[c a b]`).
//!
//! The type at each path comes from the kind's k8s-openapi schema; patch strategies and merge
//! keys come from a table of upstream's struct tags ([`patch_meta`]), which the OpenAPI
//! document also uses for `x-kubernetes-patch-*` and list-type extensions.
//!
//! Where we knowingly differ from upstream, it is where upstream leaves work to the typed
//! decode or fails for no client-visible reason:
//! - values stored without merging (the content of `$patch: replace`, replaced lists, new
//!   list items) lose their nulls and directive keys, which upstream leaves for decoding to
//!   drop;
//! - fields the schema does not describe, and values of maps of objects, merge as plain
//!   objects where upstream answers "unable to find api field";
//! - patch keys are visited in a fixed order (see `merge.rs`) instead of Go's random one.
//!
//! # Layout
//! - `mod.rs`: [`apply`] and [`SmpError`].
//! - `merge.rs`: merging objects and lists, directives.
//! - `order.rs`: list ordering and `$setElementOrder`.
//! - `schema.rs`: the definition at each path, from schemars schemas (also used by `ssa/`).
//! - `meta.rs`: [`PatchMeta`] and lookups over `table.rs`, the data extracted from upstream.

mod merge;
mod meta;
mod order;
pub(crate) mod schema;
mod table;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use meta::{
    ListType, MapType, PatchMeta, Strategy, all_patch_meta, definition_map_type, patch_meta,
};

use crate::registry::ResourceType;

/// Why a strategic merge patch could not be applied. Messages are upstream's, since clients
/// see them verbatim in the `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmpError {
    /// `$patch` with a value other than `replace`/`delete` in an object (upstream refuses
    /// `merge` there too), or other than `replace`/`delete`/`merge` in a list item.
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownPatchType { directive: String, map: String },
    /// `$patch: merge` as a list item, which upstream never implemented.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// An item of a list merged by key lacks the key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    /// A value has the wrong JSON type (Go type names, as upstream prints them).
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    /// A `$deleteFromPrimitiveList` key without `/<field>`.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` is not a list, or the patch sets a key the list does not retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A `$setElementOrder` key without `/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// The patch list names items in an order `$setElementOrder` contradicts, or items it
    /// does not list.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("list element types are not identical: {lists}")]
    MixedElementTypes { lists: String },
    /// `$setElementOrder` for a list that is empty on both sides.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// Objects patched into a merged list that declares no merge key (a primitive list).
    #[error("cannot merge lists without merge key for {ty}")]
    NoMergeKeyDeclared { ty: String },
    #[error("value for key {index} is not a map")]
    NotAMap { index: usize },
}

impl SmpError {
    /// The HTTP status upstream answers with (`interpretStrategicMergePatchError`): 400 for
    /// malformed directives, 422 for lists of lists, and 500 (reason empty) for the rest,
    /// which upstream passes through unconverted.
    pub fn http_status(&self) -> u16 {
        match self {
            SmpError::BadPrimitiveListFormat
            | SmpError::BadRetainKeysFormat
            | SmpError::BadSetElementOrderFormat => 400,
            SmpError::ListOfLists => 422,
            _ => 500,
        }
    }
}

/// Applies a strategic merge `patch` to `doc`, an object of the kind `rt` serves.
///
/// Built-in kinds (`rt.typed`) merge by upstream's patch metadata; for anything else every
/// list is replaced and objects merge, as for fields the schema does not describe (map
/// fields such as `labels` merge key by key either way). On error the content of `doc` is
/// unspecified (it is consumed while merging): callers patch a copy and discard it. Never
/// panics on any input.
pub fn apply(doc: &mut Value, patch: &Value, rt: &ResourceType) -> Result<(), SmpError> {
    let Value::Object(patch) = patch else {
        return Err(bad_arg("map[string]interface {}", patch));
    };
    let original = match doc {
        Value::Object(map) => std::mem::take(map),
        Value::Null => Map::new(),
        other => return Err(bad_arg("map[string]interface {}", other)),
    };
    let index = rt.typed.map(schema::TypeIndex::of);
    let node = index
        .as_deref()
        .map_or(schema::Node::UNKNOWN, schema::TypeIndex::root);
    *doc = Value::Object(merge::merge_map(original, patch, node)?);
    Ok(())
}

fn bad_arg(expected: &'static str, actual: &Value) -> SmpError {
    SmpError::BadArgType {
        expected,
        actual: go_type(actual),
    }
}

/// The Go type upstream's JSON decoding gives a value (integers stay `int64`); upstream
/// compares these to decide whether two values have "the same type".
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A value the way Go's `%v` prints it (`map[a:1 b:[x y]]`), for upstream-shaped messages.
fn go_fmt(v: &Value) -> String {
    let mut out = String::new();
    write_go(v, &mut out);
    out
}

fn write_go(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::String(s) => out.push_str(s),
        Value::Bool(_) | Value::Number(_) => out.push_str(&v.to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                if let Some(value) = map.get(key) {
                    write_go(value, out);
                }
            }
            out.push(']');
        }
    }
}

fn go_fmt_map(map: &Map<String, Value>) -> String {
    go_fmt(&Value::Object(map.clone()))
}
