//! The order of merged lists, and `$setElementOrder/<field>` (upstream's
//! `normalizeElementOrder`, `mergeSortedSlice` and `mergePatchIntoOriginal`).
//!
//! Items are identified by their merge key value (objects) or by themselves (primitives).
//! Lists are small (containers, env, ports), so lookups are linear scans.

use serde_json::{Map, Value};

use super::merge::{DIRECTIVE, clean_list, merge_list, no_merge_key};
use super::meta::Strategy;
use super::schema::Node;
use super::{SmpError, bad_arg, go_fmt, go_type};

const LIST: &str = "[]interface {}";
pub(super) const OBJECT: &str = "map[string]interface {}";

/// The Go type shared by every item of `lists`; upstream refuses lists mixing types (`1` and
/// `1.5` included, since it decodes them as `int64` and `float64`) and lists of lists.
pub(super) fn element_type(lists: &[&[Value]]) -> Result<&'static str, SmpError> {
    let mut seen: Option<&'static str> = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let ty = go_type(item);
        match seen {
            None if ty == LIST => return Err(SmpError::ListOfLists),
            None => seen = Some(ty),
            Some(prev) if prev != ty => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(SmpError::MixedElementTypes {
                    lists: go_fmt(&Value::Array(all)),
                });
            }
            Some(_) => {}
        }
    }
    seen.ok_or(SmpError::NoElements)
}

/// The identities of `items`; with a key, every item must be an object carrying it.
pub(super) fn identities<'v>(
    items: impl IntoIterator<Item = &'v Value>,
    key: Option<&str>,
) -> Result<Vec<Value>, SmpError> {
    items
        .into_iter()
        .map(|item| identity(item, key).cloned())
        .collect()
}

fn identity<'v>(item: &'v Value, key: Option<&str>) -> Result<&'v Value, SmpError> {
    let Some(key) = key else {
        return Ok(item);
    };
    let Value::Object(fields) = item else {
        return Err(bad_arg(OBJECT, item));
    };
    fields.get(key).ok_or_else(|| no_merge_key(fields, key))
}

fn position(ids: &[Value], id: &Value) -> Option<usize> {
    ids.iter().position(|i| i == id)
}

/// Orders a merged list: the items `patch_ids` names in that order, the others in
/// `server_ids` order, interleaved so that a server-only item goes before a patch item only
/// when it preceded it on the server.
pub(super) fn normalize(
    merged: Vec<Value>,
    patch_ids: &[Value],
    server_ids: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, SmpError> {
    let mut from_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let id = identity(&item, key)?.clone();
        if position(patch_ids, &id).is_some() {
            from_patch.push((id, item));
        } else {
            server_only.push((id, item));
        }
    }
    // Upstream's comparator treats unknown items inconsistently; with real patches every
    // item is found, and unknown ones go last here.
    from_patch.sort_by_key(|(id, _)| position(patch_ids, id).unwrap_or(usize::MAX));
    server_only.sort_by_key(|(id, _)| position(server_ids, id).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = from_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((l, _)), Some((r, _))) => {
                match (position(server_ids, l), position(server_ids, r)) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(_, item)| item));
    }
    Ok(out)
}

/// Handles `$setElementOrder/<field>: order`: merges the patch's `field` (if any) into the
/// original's, then orders the result by `order`, keeping server-only items near their
/// server neighbours. The caller skips `field` afterwards.
pub(super) fn merge_ordered_list(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &Value,
    node: Node<'_>,
) -> Result<(), SmpError> {
    let order = order.as_array().ok_or_else(|| bad_arg(LIST, order))?;
    let current = match original.get(field) {
        Some(Value::Array(list)) => Some(list),
        Some(other) => return Err(bad_arg(LIST, other)),
        None => None,
    };
    let patch_list = match patch.get(field) {
        Some(Value::Array(list)) => Some(list),
        Some(other) => return Err(bad_arg(LIST, other)),
        None => None,
    };
    let (child, meta) = node.field(field);
    let key = meta.merge_key;
    let patch_items = patch_list.map_or(&[][..], Vec::as_slice);
    validate_order(patch_items, order, key)?;

    let merged = match (current, patch_list) {
        (None, None) => return Ok(()),
        (Some(current), None) => current.clone(),
        (None, Some(patch_list)) => clean_list(patch_list),
        (Some(current), Some(patch_list)) => {
            if meta.strategy.is_some_and(Strategy::merges) {
                merge_list(
                    current.clone(),
                    patch_list,
                    child.items(),
                    key.unwrap_or(""),
                    false,
                )?
            } else {
                clean_list(patch_list)
            }
        }
    };
    let current_items = current.map_or(&[][..], Vec::as_slice);
    element_type(&[current_items, patch_items])?;
    let order_ids = identities(order, key)?;
    let server_ids = identities(current_items, key)?;
    let ordered = normalize(merged, &order_ids, &server_ids, key)?;
    original.insert(field.to_string(), Value::Array(ordered));
    Ok(())
}

/// The patch list must name its items (other than directive items) in `order`'s relative
/// order, and only items `order` lists (upstream `validatePatchWithSetOrderList`).
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<(), SmpError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut remaining = Vec::with_capacity(patch.len());
    for item in patch {
        match (key, item) {
            (None, _) => remaining.push(item),
            (Some(_), Value::Object(fields)) => {
                if fields.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                    remaining.push(item);
                }
            }
            (Some(_), other) => return Err(bad_arg(OBJECT, other)),
        }
    }
    let mut p = 0;
    let mut o = 0;
    while let (Some(item), Some(ordered)) = (remaining.get(p), order.get(o)) {
        if item.get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if identity(item, key)? == identity(ordered, key)? {
            p += 1;
        }
        o += 1;
    }
    if p < remaining.len() {
        return Err(SmpError::SetElementOrderMismatch {
            patch: go_fmt(&Value::Array(patch.to_vec())),
            order: go_fmt(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}
