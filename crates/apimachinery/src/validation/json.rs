//! Read-only accessors over `serde_json::Value` that never panic.
//!
//! Upstream validates decoded Go structs, where a missing field is the zero value (`""`, `0`,
//! `nil`). These helpers give the same view of a JSON object: absent or mistyped fields read as
//! the zero value instead of failing.

use serde_json::{Map, Value};

static NULL: Value = Value::Null;

/// The field `key` of `v`, or `null` when `v` is not an object or has no such field.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&NULL)
}

/// A string field, `""` when absent (Go's zero value).
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    get(v, key).as_str().unwrap_or("")
}

/// A string field, distinguishing absent (`None`) from empty (a Go `*string`).
pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).as_str()
}

/// A string field that upstream defaulting fills in when absent or empty
/// (`if obj.X == "" { obj.X = default }`).
pub(crate) fn str_or<'a>(v: &'a Value, key: &str, default: &'a str) -> &'a str {
    match str_of(v, key) {
        "" => default,
        s => s,
    }
}

pub(crate) fn int_of(v: &Value, key: &str) -> Option<i64> {
    get(v, key).as_i64()
}

pub(crate) fn bool_of(v: &Value, key: &str) -> Option<bool> {
    get(v, key).as_bool()
}

/// An array field, empty when absent.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key).as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// An object field, `None` when absent (a Go `nil` map or pointer).
pub(crate) fn map_of<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    get(v, key).as_object()
}

/// The entries of a map in byte order of their keys: Go ranges over maps in random order, so
/// sorting gives a stable order that is one of upstream's possible orders.
pub(crate) fn sorted(m: &Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut entries: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Entries of an object field (sorted), empty when absent.
pub(crate) fn entries<'a>(v: &'a Value, key: &str) -> Vec<(&'a str, &'a Value)> {
    map_of(v, key).map(sorted).unwrap_or_default()
}

/// Number of entries of a map or array, `0` for anything else (Go's `len` of a nil map/slice).
pub(crate) fn len_of(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    }
}

/// Upstream's semantic equality treats nil and empty maps/slices as equal; JSON `null`, absent,
/// `{}` and `[]` are therefore all the same "empty" value.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .keys()
            .chain(y.keys())
            .all(|k| semantic_eq(get(a, k), get(b, k))),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(p, q))
        }
        (x, y) if is_empty_value(x) || is_empty_value(y) => is_empty_value(x) && is_empty_value(y),
        (x, y) => x == y,
    }
}

/// Zero values a Go struct cannot tell from an absent field: `nil`, empty maps and slices, and
/// `""` (most string fields are not pointers).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.values().all(is_empty_value),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether every field set in `new` equals the same field of `old` (semantically). Fields
/// absent from `new` are ones upstream would have defaulted before comparing, so they count as
/// unchanged; this errs on the side of accepting an update.
pub(crate) fn subset_eq(new: &Value, old: &Value) -> bool {
    match (new, old) {
        (Value::Object(n), _) => n
            .iter()
            .all(|(k, v)| v.is_null() || subset_eq(v, get(old, k))),
        (Value::Array(n), Value::Array(o)) => {
            n.len() == o.len() && n.iter().zip(o).all(|(a, b)| subset_eq(a, b))
        }
        _ => semantic_eq(new, old),
    }
}
