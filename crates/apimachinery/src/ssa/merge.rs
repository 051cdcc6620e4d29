//! Merging an applied config into the live object (upstream's `TypedValue.Merge` with the
//! "keep the config's value" rule): maps merge key by key, lists of a map or set type merge
//! item by item, and atomic values, scalars and lists without a type are taken from the
//! config whole.
//!
//! Merged list order is upstream's: items in both keep the config's relative order, items
//! only in the live list stay where they were relative to those, new items come where the
//! config puts them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::path::PathElement;
use super::schema::{ListKind, Ty};
use super::typed::{item_pe, union_keys};

/// Merges `rhs` (the config) into `lhs` (the live object).
pub(super) fn merge(lhs: &Value, rhs: &Value, ty: Ty<'_>) -> Result<Value, String> {
    let mut errs = Vec::new();
    let out = merge_at(Some(lhs), Some(rhs), ty, &mut errs);
    match errs.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(out.unwrap_or_else(|| Value::Object(Map::new()))),
    }
}

fn merge_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty<'_>,
    errs: &mut Vec<String>,
) -> Option<Value> {
    let take = |v: Option<&Value>| v.cloned();
    // The walk is the config's when it has a value (a null taking the live side's), else
    // the live side's; sides of different shapes leave the config's value as it is.
    let walk_of = |v: Option<&Value>| match v {
        Some(Value::Object(_)) => Some(true),
        Some(Value::Array(_)) => Some(false),
        _ => None,
    };
    let walk = match (walk_of(lhs), walk_of(rhs)) {
        (Some(a), Some(b)) if a != b => return take(rhs),
        (_, Some(b)) => Some(b),
        (a, None) => {
            if rhs.is_some_and(|r| !r.is_null()) {
                // A scalar in the config replaces whatever is live.
                return take(rhs);
            }
            a
        }
    };
    match walk {
        Some(true) => {
            let (l, r) = (
                lhs.and_then(Value::as_object),
                rhs.and_then(Value::as_object),
            );
            let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
            if ty.map_atomic() || empty {
                return take(rhs.or(lhs));
            }
            let mut out = Map::new();
            for key in union_keys(l, r) {
                let (lv, rv) = (l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                if let Some(v) = merge_at(lv, rv, ty.field(key).ty, errs) {
                    out.insert(key.to_string(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Some(false) => {
            let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
            let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
            let kind = ty.list_kind();
            if kind == ListKind::Atomic || empty {
                return take(rhs.or(lhs));
            }
            merge_items(l, r, &kind, ty, errs)
        }
        None => take(rhs.or(lhs)),
    }
}

/// Items with their path elements; `observed` maps each element to its item, or to `None`
/// when the live list holds it more than once (upstream merges such items as `null`).
struct Indexed<'v> {
    pes: Vec<(PathElement, &'v Value)>,
    observed: BTreeMap<PathElement, Option<&'v Value>>,
}

fn index<'v>(
    items: Option<&'v Vec<Value>>,
    kind: &ListKind<'_>,
    ty: &Ty<'_>,
    allow_duplicates: bool,
    errs: &mut Vec<String>,
) -> Indexed<'v> {
    let mut out = Indexed {
        pes: Vec::new(),
        observed: BTreeMap::new(),
    };
    for (i, item) in items.into_iter().flatten().enumerate() {
        let pe = match item_pe(item, kind, ty) {
            Ok(pe) => pe,
            Err(e) => {
                errs.push(format!("element {i}: {e}"));
                continue;
            }
        };
        if out.observed.contains_key(&pe) {
            if !allow_duplicates {
                errs.push(format!("duplicate entries for key {pe}"));
                continue;
            }
            out.observed.insert(pe.clone(), None);
        } else {
            out.observed.insert(pe.clone(), Some(item));
        }
        out.pes.push((pe, item));
    }
    out
}

fn merge_items(
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
    kind: &ListKind<'_>,
    ty: Ty<'_>,
    errs: &mut Vec<String>,
) -> Option<Value> {
    let right = index(rhs, kind, &ty, false, errs);
    let left = index(lhs, kind, &ty, true, errs);
    let item_ty = ty.items();
    let null = Value::Null;
    let live =
        |pe: &PathElement| -> Option<&Value> { left.observed.get(pe).map(|v| v.unwrap_or(&null)) };
    // Items of the config that are also live, in the config's order: a live item the config
    // also names waits for its turn in that order.
    let mut shared: VecDeque<&PathElement> = right
        .pes
        .iter()
        .map(|(pe, _)| pe)
        .filter(|pe| left.observed.contains_key(*pe))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::new();
    let (l_len, r_len) = (left.pes.len(), right.pes.len());
    let (mut li, mut ri) = (0, 0);
    while li < l_len || ri < r_len {
        if li < l_len && ri < r_len {
            let pe = &left.pes[li].0;
            if *pe == right.pes[ri].0 {
                merged.insert(pe);
                let rv = right.observed.get(pe).copied().flatten();
                out.extend(merge_at(live(pe), rv, item_ty, errs));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if right.observed.contains_key(pe) && next_shared.is_some_and(|s| s != pe) {
                li += 1;
                continue;
            }
        }
        if li < l_len {
            let (pe, item) = &left.pes[li];
            if !right.observed.contains_key(pe) {
                out.extend(merge_at(Some(item), None, item_ty, errs));
                li += 1;
                continue;
            } else if merged.contains(pe) {
                li += 1;
            }
        }
        if ri < r_len {
            let pe = &right.pes[ri].0;
            merged.insert(pe);
            let rv = right.observed.get(pe).copied().flatten();
            out.extend(merge_at(live(pe), rv, item_ty, errs));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.pop_front();
            }
        }
    }
    (!out.is_empty()).then_some(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn merge_set(live: Value, config: Value) -> Value {
        let list = |v: Value| json!({ "finalizers": v });
        // `ObjectMeta.finalizers` is a set list; deduced objects would replace it.
        let rt = crate::registry::Registry::builtin();
        let cm = rt.get("", "v1", "configmaps").expect("configmaps");
        let schema = super::super::schema::Schema::of(cm);
        let meta = schema.root().field("metadata").ty;
        merge(&list(live), &list(config), meta).expect("merges")["finalizers"].clone()
    }

    #[test]
    fn list_order_follows_upstream() {
        // New config items go where the config puts them; live-only items keep their place.
        assert_eq!(
            merge_set(json!(["a", "b"]), json!(["c"])),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            merge_set(json!(["a", "b"]), json!(["c", "a"])),
            json!(["c", "a", "b"])
        );
        assert_eq!(
            merge_set(json!(["a", "b", "c"]), json!(["c", "a"])),
            json!(["b", "c", "a"])
        );
        assert_eq!(
            merge_set(json!(["x", "a", "y", "b"]), json!(["b", "a"])),
            json!(["x", "y", "b", "a"])
        );
    }
}
