//! Merging a patch object into an object, and a patch list into a list, with upstream's
//! directives (`mergeMap`/`mergeSlice` in upstream's `strategicpatch`).
//!
//! Upstream iterates Go maps, so the order it visits patch keys is random; we fix one that
//! gives the same result whenever upstream's is deterministic: `$retainKeys`, then
//! `$setElementOrder/…` lists, then ordinary keys, then `$deleteFromPrimitiveList/…`.

use serde_json::{Map, Value};

use super::meta::Strategy;
use super::schema::Node;
use super::{SmpError, bad_arg, go_fmt, go_fmt_map, go_type, order};

pub(super) const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

type Object = Map<String, Value>;

/// Merges `patch` into `original` (both objects of the type at `node`).
pub(super) fn merge_map(
    mut original: Object,
    patch: &Object,
    node: Node<'_>,
) -> Result<Object, SmpError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            // The object becomes the patch's content. Upstream keeps that content raw; we
            // also drop its nulls and directives, which decoding into the type would drop.
            Some("replace") => Ok(clean_object(patch)),
            // Upstream empties the object rather than removing its field.
            Some("delete") => Ok(Object::new()),
            _ => Err(unknown_patch_type(directive, patch)),
        };
    }
    apply_retain_keys(&mut original, patch)?;

    let mut ordered: Vec<&str> = Vec::new();
    for (key, value) in patch {
        if key.starts_with(SET_ELEMENT_ORDER) {
            let field = extract_key(key, SET_ELEMENT_ORDER)?;
            order::merge_ordered_list(&mut original, patch, field, value, node)?;
            ordered.push(field);
        }
    }

    let mut deletions = Vec::new();
    for (key, value) in patch {
        if key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) || ordered.contains(&&**key) {
            continue;
        }
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            deletions.push((extract_key(key, DELETE_FROM_PRIMITIVE_LIST)?, value));
            continue;
        }
        merge_field(&mut original, key, value, node, false)?;
    }
    for (field, value) in deletions {
        merge_field(&mut original, field, value, node, true)?;
    }
    Ok(original)
}

/// `$retainKeys: [..]` clears every key of `original` it does not list; the patch itself may
/// only set listed keys (kubectl apply sends it for unions such as a Deployment's strategy).
fn apply_retain_keys(original: &mut Object, patch: &Object) -> Result<(), SmpError> {
    let Some(retained) = patch.get(RETAIN_KEYS) else {
        return Ok(());
    };
    let retained = retained.as_array().ok_or(SmpError::BadRetainKeysFormat)?;
    let is_retained = |key: &str| retained.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch {
        let exempt = key == RETAIN_KEYS
            || value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER);
        if !exempt && !is_retained(key) {
            return Err(SmpError::BadRetainKeysFormat);
        }
    }
    original.retain(|key, _| is_retained(key));
    Ok(())
}

/// `$setElementOrder/containers` → `containers`.
fn extract_key<'k>(key: &'k str, prefix: &str) -> Result<&'k str, SmpError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ if prefix == SET_ELEMENT_ORDER => Err(SmpError::BadSetElementOrderFormat),
        _ => Err(SmpError::BadPrimitiveListFormat),
    }
}

/// Merges one patch key into `original`. `deletion` marks a `$deleteFromPrimitiveList` list,
/// whose items are removed instead of added and which never creates the field.
fn merge_field(
    original: &mut Object,
    key: &str,
    patch: &Value,
    node: Node<'_>,
    deletion: bool,
) -> Result<(), SmpError> {
    if patch.is_null() {
        original.remove(key);
        return Ok(());
    }
    let Some(current) = original.get_mut(key) else {
        if !deletion && let Some(value) = clean(patch) {
            original.insert(key.to_string(), value);
        }
        return Ok(());
    };
    match (current, patch) {
        (Value::Object(current), Value::Object(patch)) => {
            let (child, meta) = node.field(key);
            *current = if meta.strategy == Some(Strategy::Replace) {
                clean_object(patch)
            } else {
                merge_map(std::mem::take(current), patch, child)?
            };
        }
        (Value::Array(current), Value::Array(patch)) => {
            let (child, meta) = node.field(key);
            let merges = deletion || meta.strategy.is_some_and(Strategy::merges);
            *current = if merges {
                let key = meta.merge_key.unwrap_or("");
                merge_list(std::mem::take(current), patch, child.items(), key, deletion)?
            } else {
                clean_list(patch)
            };
        }
        (current, patch) if go_type(current) == go_type(patch) => *current = patch.clone(),
        // The types differ: the patch value replaces, unless it only lists deletions.
        _ if deletion => {}
        _ => match clean(patch) {
            Some(value) => {
                original.insert(key.to_string(), value);
            }
            None => {
                original.remove(key);
            }
        },
    }
    Ok(())
}

/// Merges a patch list into a list with the merge strategy: lists of objects by `key`
/// (directive items first), primitives as a set (or, for `deletion`, by removal).
pub(super) fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    items: Node<'_>,
    key: &str,
    deletion: bool,
) -> Result<Vec<Value>, SmpError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if order::element_type(&[&original, patch])? != order::OBJECT {
        if deletion {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let server_order = original.clone();
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for value in original.into_iter().chain(patch.iter().cloned()) {
            if !merged.contains(&value) {
                merged.push(value);
            }
        }
        return order::normalize(merged, patch, &server_order, None);
    }
    if key.is_empty() {
        return Err(SmpError::NoMergeKeyDeclared {
            ty: items.describe().to_string(),
        });
    }
    let (original, patch, replaced) = apply_list_directives(original, patch, key)?;
    if replaced {
        return Ok(patch.into_iter().filter_map(clean).collect());
    }
    let server_order = order::identities(&original, Some(key))?;
    let patch_order = order::identities(patch.iter().copied(), Some(key))?;
    let merged = merge_items(original, &patch, key, items)?;
    order::normalize(merged, &patch_order, &server_order, Some(key))
}

/// Applies the `$patch` items of a patch list of objects: `delete` removes every item with
/// that key value, `replace` makes the rest of the patch list the whole list. Returns the
/// remaining original, the plain patch items and whether the list was replaced.
fn apply_list_directives<'p>(
    mut original: Vec<Value>,
    patch: &'p [Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<&'p Value>, bool), SmpError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(fields) = item else {
            return Err(bad_arg("map[string]interface {}", item));
        };
        let Some(directive) = fields.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = fields.get(key).ok_or_else(|| no_merge_key(fields, key))?;
                original.retain(|o| o.get(key) != Some(value));
            }
            // Keep scanning so that later directives still get validated, as upstream.
            Some("replace") => replace = true,
            Some("merge") => return Err(SmpError::MergeDirectiveInList),
            _ => return Err(unknown_patch_type(directive, fields)),
        }
    }
    Ok((original, plain, replace))
}

/// Merges each plain patch item into the original item with the same key value, or appends it.
fn merge_items(
    mut original: Vec<Value>,
    patch: &[&Value],
    key: &str,
    items: Node<'_>,
) -> Result<Vec<Value>, SmpError> {
    for item in patch {
        let Value::Object(fields) = item else {
            return Err(bad_arg("map[string]interface {}", item));
        };
        let value = fields.get(key).ok_or_else(|| no_merge_key(fields, key))?;
        let mut found = None;
        for (index, o) in original.iter().enumerate() {
            if !o.is_object() {
                return Err(SmpError::NotAMap { index });
            }
            if o.get(key) == Some(value) {
                found = Some(index);
                break;
            }
        }
        match found.and_then(|i| original.get_mut(i)) {
            Some(Value::Object(current)) => {
                *current = merge_map(std::mem::take(current), fields, items)?;
            }
            _ => original.extend(clean(item)),
        }
    }
    Ok(original)
}

/// A patch value as stored when there is nothing to merge it into (upstream
/// `discardNullValuesFromPatch` + `removeDirectives`): nulls in objects are dropped (they
/// delete nothing), objects carrying `$patch` are dropped whole, and directive keys are
/// stripped (upstream leaves those for decoding to drop). `None` when `value` itself is an
/// object carrying `$patch`.
pub(super) fn clean(value: &Value) -> Option<Value> {
    match value {
        Value::Object(fields) if fields.contains_key(DIRECTIVE) => None,
        Value::Object(fields) => Some(Value::Object(clean_fields(fields))),
        Value::Array(items) => Some(Value::Array(clean_list(items))),
        other => Some(other.clone()),
    }
}

fn clean_object(fields: &Object) -> Object {
    let mut out = clean_fields(fields);
    out.remove(DIRECTIVE);
    out
}

fn clean_fields(fields: &Object) -> Object {
    fields
        .iter()
        .filter(|(key, value)| !value.is_null() && !is_directive_key(key))
        .filter_map(|(key, value)| Some((key.clone(), clean(value)?)))
        .collect()
}

pub(super) fn clean_list(items: &[Value]) -> Vec<Value> {
    items.iter().filter_map(clean).collect()
}

fn is_directive_key(key: &str) -> bool {
    key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

pub(super) fn no_merge_key(fields: &Object, key: &str) -> SmpError {
    SmpError::NoMergeKey {
        map: go_fmt_map(fields),
        key: key.to_string(),
    }
}

fn unknown_patch_type(directive: &Value, fields: &Object) -> SmpError {
    SmpError::UnknownPatchType {
        directive: go_fmt(directive),
        map: go_fmt_map(fields),
    }
}
