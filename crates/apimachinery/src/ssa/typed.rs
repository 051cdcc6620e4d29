//! Schema-aware walks over objects (upstream's `typed` package): validating an applied
//! config, the set of fields an object sets, comparing two objects, removing a set of
//! fields, and completing a set with the struct fields on the way to its members.
//!
//! Which walk a value takes is decided by the value (an object is walked as a map, an
//! array as a list, anything else is a leaf); the schema only says whether that map or list
//! is atomic, which keys are declared fields and how list items are identified. A `null`
//! counts as present but empty.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::path::{PathElement, path_string, value_eq};
use super::schema::{ListKind, Ty};
use super::set::FieldSet;

/// The path element of one item of a non-atomic list.
pub(super) fn item_pe(
    item: &Value,
    kind: &ListKind<'_>,
    list: &Ty<'_>,
) -> Result<PathElement, String> {
    match kind {
        ListKind::Map(keys) => {
            let obj = match item {
                Value::Object(obj) => obj,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields: Vec<(String, Value)> = Vec::with_capacity(keys.len());
            for key in keys {
                match obj.get(*key) {
                    Some(v) => fields.push(((*key).to_string(), v.clone())),
                    None => {
                        if let Some(default) = list.key_default(key) {
                            fields.push(((*key).to_string(), default));
                        }
                    }
                }
            }
            if !keys.is_empty() && fields.is_empty() {
                let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] (and doesn't have default values for any key fields)",
                    quoted.join(" ")
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        ListKind::Set | ListKind::Atomic => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            _ => Ok(PathElement::Value(item.clone())),
        },
    }
}

/// Checks an applied config against the schema the way upstream types it: undeclared
/// fields, list items without keys, duplicate items. Returns upstream's error strings
/// (`.spec.foo: field not declared in schema`). Scalar types are left to decoding.
pub(super) fn validate(v: &Value, ty: Ty<'_>) -> Vec<String> {
    let mut errs = Vec::new();
    validate_at(v, ty, &mut Vec::new(), &mut errs);
    errs
}

fn at(path: &[PathElement], msg: impl Into<String>) -> String {
    let msg = msg.into();
    if path.is_empty() {
        msg
    } else {
        format!("{}: {msg}", path_string(path))
    }
}

fn validate_at(v: &Value, ty: Ty<'_>, path: &mut Vec<PathElement>, errs: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, child) in sorted(map) {
                let field = ty.field(key);
                path.push(PathElement::Field(key.clone()));
                if !field.allowed {
                    // Upstream stops at the first undeclared field of a map.
                    errs.push(at(path, "field not declared in schema"));
                    path.pop();
                    return;
                }
                validate_at(child, field.ty, path, errs);
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = ty.list_kind();
            let item_ty = ty.items();
            let mut seen: Vec<PathElement> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let pe = if kind == ListKind::Atomic {
                    PathElement::Index(i as i64)
                } else {
                    match item_pe(item, &kind, &ty) {
                        Ok(pe) => pe,
                        Err(e) => {
                            errs.push(at(path, format!("element {i}: {e}")));
                            return;
                        }
                    }
                };
                if kind != ListKind::Atomic {
                    if seen.contains(&pe) {
                        errs.push(at(path, format!("duplicate entries for key {pe}")));
                    }
                    seen.push(pe.clone());
                }
                path.push(pe);
                validate_at(item, item_ty, path, errs);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The fields `v` sets (upstream's `ToFieldSet`): every scalar, every list item (with
/// duplicates owned as a whole), atomic maps and lists as one leaf, empty objects and nulls,
/// and map keys that are data rather than declared fields.
pub(super) fn to_field_set(v: &Value, ty: Ty<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    field_set_at(v, ty, &mut Vec::new(), &mut set);
    set
}

fn field_set_at(v: &Value, ty: Ty<'_>, path: &mut Vec<PathElement>, set: &mut FieldSet) {
    match v {
        Value::Object(map) => {
            if ty.map_atomic() {
                set.insert(path);
                return;
            }
            for (key, child) in map {
                let field = ty.field(key);
                path.push(PathElement::Field(key.clone()));
                field_set_at(child, field.ty, path, set);
                let empty = matches!(child, Value::Null)
                    || matches!(child, Value::Object(m) if m.is_empty());
                if empty || !field.declared {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = ty.list_kind();
            if kind == ListKind::Atomic {
                set.insert(path);
                return;
            }
            let item_ty = ty.items();
            let pes: Vec<Option<PathElement>> = items
                .iter()
                .map(|item| item_pe(item, &kind, &ty).ok())
                .collect();
            let mut counts: BTreeMap<&PathElement, usize> = BTreeMap::new();
            for pe in pes.iter().flatten() {
                *counts.entry(pe).or_default() += 1;
            }
            for (item, pe) in items.iter().zip(&pes) {
                let Some(pe) = pe else { continue };
                path.push(pe.clone());
                // Duplicated items cannot be told apart, so upstream owns them as a whole.
                if counts.get(pe).copied().unwrap_or(0) < 2 {
                    field_set_at(item, item_ty, path, set);
                }
                set.insert(path);
                path.pop();
            }
        }
        Value::Null => {}
        _ => set.insert(path),
    }
}

/// What changed from `lhs` to `rhs` (upstream's `Comparison`).
#[derive(Debug, Default)]
pub(super) struct Comparison {
    pub removed: FieldSet,
    pub modified: FieldSet,
    pub added: FieldSet,
}

impl Comparison {
    /// Drops reset fields (`status` on the main resource) and everything below them.
    pub(super) fn filter(&mut self, reset: &FieldSet) {
        if reset.is_empty() {
            return;
        }
        self.removed = self.removed.recursive_difference(reset);
        self.modified = self.modified.recursive_difference(reset);
        self.added = self.added.recursive_difference(reset);
    }
}

/// Compares two objects. New subtrees are recorded as added at every level (so the
/// updater owns a created struct or list item itself, upstream's `".": {}`), leaves are
/// modified when their values differ.
pub(super) fn compare(lhs: &Value, rhs: &Value, ty: Ty<'_>) -> Result<Comparison, String> {
    let mut cmp = Comparison::default();
    let mut errs = Vec::new();
    compare_at(
        Some(lhs),
        Some(rhs),
        ty,
        &mut Vec::new(),
        &mut cmp,
        &mut errs,
    );
    match errs.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(cmp),
    }
}

/// The walk a value takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Map,
    List,
    Leaf,
}

fn shape(v: Option<&Value>) -> Option<Shape> {
    match v? {
        Value::Object(_) => Some(Shape::Map),
        Value::Array(_) => Some(Shape::List),
        Value::Null => None,
        _ => Some(Shape::Leaf),
    }
}

/// The walks to take for a pair: a `null` or missing side takes the other side's walk;
/// sides of different shapes are each walked (upstream handles both atoms).
fn shapes(lhs: Option<&Value>, rhs: Option<&Value>) -> (Shape, Option<Shape>) {
    match (shape(lhs), shape(rhs)) {
        (None, None) => (Shape::Leaf, None),
        (Some(s), None) | (None, Some(s)) => (s, None),
        (Some(a), Some(b)) if a == b => (a, None),
        (Some(a), Some(b)) => (a, Some(b)),
    }
}

fn compare_at(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty<'_>,
    path: &mut Vec<PathElement>,
    cmp: &mut Comparison,
    errs: &mut Vec<String>,
) {
    let (first, second) = shapes(lhs, rhs);
    let mut in_leaf = compare_shape(first, lhs, rhs, ty, path, cmp, errs);
    if let Some(second) = second {
        in_leaf = compare_shape(second, lhs, rhs, ty, path, cmp, errs);
    }
    if !in_leaf {
        if lhs.is_none() {
            cmp.added.insert(path);
        } else if rhs.is_none() {
            cmp.removed.insert(path);
        }
    }
}

/// Walks one shape; returns whether the position was compared as a leaf.
fn compare_shape(
    shape: Shape,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    ty: Ty<'_>,
    path: &mut Vec<PathElement>,
    cmp: &mut Comparison,
    errs: &mut Vec<String>,
) -> bool {
    match shape {
        Shape::Leaf => {}
        Shape::Map => {
            let (l, r) = (
                lhs.and_then(Value::as_object),
                rhs.and_then(Value::as_object),
            );
            let empty = l.is_none_or(Map::is_empty) && r.is_none_or(Map::is_empty);
            if !ty.map_atomic() && !empty {
                for key in union_keys(l, r) {
                    let field = ty.field(key);
                    path.push(PathElement::Field(key.to_string()));
                    let (lv, rv) = (l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                    compare_at(lv, rv, field.ty, path, cmp, errs);
                    path.pop();
                }
                return false;
            }
        }
        Shape::List => {
            let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
            let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
            let kind = ty.list_kind();
            if kind != ListKind::Atomic && !empty {
                compare_items(l, r, &kind, ty, path, cmp, errs);
                return false;
            }
        }
    }
    compare_leaf(lhs, rhs, path, cmp);
    true
}

fn compare_leaf(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &[PathElement],
    cmp: &mut Comparison,
) {
    match (lhs, rhs) {
        (None, _) => cmp.added.insert(path),
        (_, None) => cmp.removed.insert(path),
        (Some(l), Some(r)) if !value_eq(l, r) => cmp.modified.insert(path),
        _ => {}
    }
}

/// A list's items grouped by path element, in order of first appearance.
struct Grouped<'v> {
    order: Vec<PathElement>,
    items: BTreeMap<PathElement, Vec<&'v Value>>,
}

impl<'v> Grouped<'v> {
    fn of(
        items: Option<&'v Vec<Value>>,
        kind: &ListKind<'_>,
        ty: &Ty<'_>,
        path: &[PathElement],
        errs: &mut Vec<String>,
    ) -> Grouped<'v> {
        let mut out = Grouped {
            order: Vec::new(),
            items: BTreeMap::new(),
        };
        for (i, item) in items.into_iter().flatten().enumerate() {
            match item_pe(item, kind, ty) {
                Ok(pe) => match out.items.get_mut(&pe) {
                    Some(values) => values.push(item),
                    None => {
                        out.order.push(pe.clone());
                        out.items.insert(pe, vec![item]);
                    }
                },
                Err(e) => errs.push(at(path, format!("element {i}: {e}"))),
            }
        }
        out
    }

    fn get(&self, pe: &PathElement) -> &[&'v Value] {
        self.items.get(pe).map_or(&[], Vec::as_slice)
    }
}

fn compare_items(
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
    kind: &ListKind<'_>,
    ty: Ty<'_>,
    path: &mut Vec<PathElement>,
    cmp: &mut Comparison,
    errs: &mut Vec<String>,
) {
    let left = Grouped::of(lhs, kind, &ty, path, errs);
    let right = Grouped::of(rhs, kind, &ty, path, errs);
    let mut order: Vec<&PathElement> = left.order.iter().collect();
    order.extend(
        right
            .order
            .iter()
            .filter(|pe| !left.items.contains_key(*pe)),
    );
    let item_ty = ty.items();
    for pe in order {
        let (l, r) = (left.get(pe), right.get(pe));
        path.push(pe.clone());
        match (l.len(), r.len()) {
            (0..=1, 0..=1) => compare_at(
                l.first().copied(),
                r.first().copied(),
                item_ty,
                path,
                cmp,
                errs,
            ),
            (2.., 2..) => {
                let same = l.len() == r.len() && l.iter().zip(r).all(|(a, b)| value_eq(a, b));
                if !same {
                    cmp.modified.insert(path);
                }
            }
            (2.., _) => {
                if let Some(r) = r.first() {
                    compare_at(None, Some(r), item_ty, path, cmp, errs);
                }
                cmp.removed.insert(path);
            }
            (_, _) => {
                if let Some(l) = l.first() {
                    compare_at(Some(l), None, item_ty, path, cmp, errs);
                }
                cmp.added.insert(path);
            }
        }
        path.pop();
    }
}

/// `v` without the fields in `set` (upstream's `RemoveItems`): a member removes the field
/// or item with everything below it. A map or list left empty is dropped rather than left
/// as upstream's `null`, which decoding would drop anyway.
pub(super) fn remove_items(v: &Value, set: &FieldSet, ty: Ty<'_>) -> Value {
    remove_at(v, set, ty).unwrap_or_else(|| Value::Object(Map::new()))
}

fn remove_at(v: &Value, set: &FieldSet, ty: Ty<'_>) -> Option<Value> {
    match v {
        Value::Object(map) => {
            if map.is_empty() || ty.map_atomic() {
                return None;
            }
            let mut out = Map::new();
            for (key, child) in map {
                let pe = PathElement::Field(key.clone());
                if set.members().contains(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(subset) => {
                        if let Some(kept) = remove_at(child, subset, ty.field(key).ty) {
                            out.insert(key.clone(), kept);
                        }
                    }
                    None => {
                        out.insert(key.clone(), child.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kind = ty.list_kind();
            if items.is_empty() || kind == ListKind::Atomic {
                return None;
            }
            let item_ty = ty.items();
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Ok(pe) = item_pe(item, &kind, &ty) else {
                    out.push(item.clone());
                    continue;
                };
                if set.members().contains(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(subset) => out.extend(remove_at(item, subset, item_ty)),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        _ => Some(v.clone()),
    }
}

/// `set` plus, as members, every declared struct field on the way to its members
/// (upstream's `EnsureNamedFieldsAreMembers`): owning `.spec.replicas` implies owning the
/// field `.spec`, but not a map key like `.metadata.labels.app`'s parent item.
pub(super) fn ensure_named(set: &FieldSet, ty: Ty<'_>) -> FieldSet {
    let mut out = FieldSet::new();
    for pe in set.members() {
        out.insert_member(pe.clone());
    }
    for (pe, child) in set.children() {
        let child_ty = match pe {
            PathElement::Field(name) => {
                let field = ty.field(name);
                if field.declared {
                    out.insert_member(pe.clone());
                }
                field.ty
            }
            PathElement::Key(_) => ty.items(),
            PathElement::Value(_) | PathElement::Index(_) => Ty::Atomic,
        };
        out.set_child(pe.clone(), ensure_named(child, child_ty));
    }
    out
}

pub(super) fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    super::path::sorted(map)
}

/// The keys of either map, sorted and deduplicated.
pub(super) fn union_keys<'m>(
    l: Option<&'m Map<String, Value>>,
    r: Option<&'m Map<String, Value>>,
) -> Vec<&'m str> {
    let mut keys: Vec<&str> = l
        .into_iter()
        .chain(r)
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}
