//! Panic-free JSON access with Go's notion of "unset", shared by the defaulting files.
//!
//! Upstream defaulters test Go zero values: a nil pointer, an empty string, a zero integer,
//! an empty slice or map. On JSON those are an absent key or `null`, plus `""`, `0` or `[]`
//! for fields Go holds by value. A value of the wrong JSON type is never "unset": it is left
//! alone for validation to report.

use serde_json::Value;

pub(super) type Map = serde_json::Map<String, Value>;

/// True when `key` is absent or `null` (a nil pointer in Go).
pub(super) fn is_unset(m: &Map, key: &str) -> bool {
    matches!(m.get(key), None | Some(Value::Null))
}

/// The string at `key`, or `""` when absent or not a string.
pub(super) fn str_of<'a>(m: &'a Map, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// True when `key` holds a non-empty string, object or array.
pub(super) fn has_items(m: &Map, key: &str) -> bool {
    match m.get(key) {
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    }
}

/// The object at `key`, when there is one.
pub(super) fn child<'a>(m: &'a mut Map, key: &str) -> Option<&'a mut Map> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key`, created empty when absent or `null` (a Go struct field, or a pointer
/// upstream allocates before filling it in). `None` when something else is there.
pub(super) fn child_or_empty<'a>(m: &'a mut Map, key: &str) -> Option<&'a mut Map> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The objects in the array at `key` (other elements are skipped).
pub(super) fn items<'a>(m: &'a mut Map, key: &str) -> impl Iterator<Item = &'a mut Map> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Sets a pointer field (`if obj.X == nil`).
pub(super) fn default_ptr(m: &mut Map, key: &str, value: Value) {
    if is_unset(m, key) {
        m.insert(key.to_string(), value);
    }
}

/// True when a string field Go holds by value is unset: absent, `null` or `""`.
pub(super) fn is_blank(m: &Map, key: &str) -> bool {
    match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Sets a string field Go holds by value (`if obj.X == ""`).
pub(super) fn default_str(m: &mut Map, key: &str, value: &str) {
    if is_blank(m, key) {
        m.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// Sets an integer field Go holds by value (`if obj.X == 0`).
pub(super) fn default_int(m: &mut Map, key: &str, value: i64) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    };
    if unset {
        m.insert(key.to_string(), Value::from(value));
    }
}

/// Sets a slice or map field (`if len(obj.X) == 0`).
pub(super) fn default_list(m: &mut Map, key: &str, value: Value) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    };
    if unset {
        m.insert(key.to_string(), value);
    }
}

/// Copies every entry of the map at `from` that the map at `to` lacks (creating `to` only
/// when there is something to copy): upstream's "default requests to limits" pattern.
pub(super) fn fill_missing(m: &mut Map, to: &str, from: &str) {
    let Some(source) = m
        .get(from)
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
        .cloned()
    else {
        return;
    };
    if let Some(target) = child_or_empty(m, to) {
        for (k, v) in source {
            target.entry(k).or_insert(v);
        }
    }
}

/// `metadata.<key>` as a string, or `""`.
pub(super) fn meta_str<'a>(obj: &'a Map, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}
