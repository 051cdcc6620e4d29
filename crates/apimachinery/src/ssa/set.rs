//! [`FieldSet`]: a set of paths, stored as a tree, with upstream's set algebra and the
//! FieldsV1 encoding of `metadata.managedFields[].fieldsV1`.
//!
//! A path is a *member* of the set (the field or item itself is owned) or only a prefix of
//! longer members (its *children*). In FieldsV1 a member with nothing below it is `{}`, and
//! a member that also has children carries a `".": {}` entry:
//! `{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}` owns `.metadata.labels` and
//! `.metadata.labels.app` but not `.metadata`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{PathElement, path_string};

/// A set of field paths (upstream's `fieldpath.Set`). Children are never empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding these paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a [PathElement]>) -> Self {
        let mut set = FieldSet::new();
        for path in paths {
            set.insert(path);
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path; the empty path is ignored, as upstream does.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member (not merely a prefix of one).
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree below `pe` (empty when there is none).
    pub fn with_prefix(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub(super) fn members(&self) -> &BTreeSet<PathElement> {
        &self.members
    }

    pub(super) fn children(&self) -> &BTreeMap<PathElement, FieldSet> {
        &self.children
    }

    pub(super) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Puts a subtree under `pe`, keeping the no-empty-children invariant.
    pub(super) fn set_child(&mut self, pe: PathElement, child: FieldSet) {
        if child.is_empty() {
            self.children.remove(&pe);
        } else {
            self.children.insert(pe, child);
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    pub fn union_in_place(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => mine.union_in_place(child),
                None => {
                    self.children.insert(pe.clone(), child.clone());
                }
            }
        }
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                out.set_child(pe.clone(), child.intersection(theirs));
            }
        }
        out
    }

    /// Paths of `self` that are not paths of `other`. A member of `other` does not remove
    /// `self`'s paths below it (see [`FieldSet::recursive_difference`] for that).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            match other.children.get(pe) {
                Some(theirs) => out.set_child(pe.clone(), child.difference(theirs)),
                None => out.set_child(pe.clone(), child.clone()),
            }
        }
        out
    }

    /// Like [`FieldSet::difference`], but a member of `other` also removes every path below
    /// it: how upstream drops reset fields (`status`) from a manager's set.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(theirs) => out.set_child(pe.clone(), child.recursive_difference(theirs)),
                None => out.set_child(pe.clone(), child.clone()),
            }
        }
        out
    }

    /// Every member path, in upstream's iteration order (a node's members, then its
    /// children in order).
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Vec<PathElement>>) {
        for pe in &self.members {
            let mut path = prefix.clone();
            path.push(pe.clone());
            out.push(path);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The FieldsV1 form of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode(false))
    }

    fn encode(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        for pe in &self.members {
            if !self.children.contains_key(pe) {
                out.insert(pe.to_fields_key(), Value::Object(Map::new()));
            }
        }
        for (pe, child) in &self.children {
            let is_member = self.members.contains(pe);
            out.insert(pe.to_fields_key(), Value::Object(child.encode(is_member)));
        }
        out
    }

    /// Decodes FieldsV1. Keys of unknown element types are skipped with their subtree, as
    /// upstream does; malformed keys and non-object values are errors.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = v else {
            return Err(format!("expected an object, got {v}"));
        };
        Ok(decode(map)?.0.unwrap_or_default())
    }
}

/// One FieldsV1 object: its children (if any) and whether it marks its own path a member.
fn decode(map: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), String> {
    let mut is_member = false;
    let mut children: Option<FieldSet> = None;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_key(key)
            .map_err(|e| format!("parsing key as path element: {e}"))?
        else {
            continue;
        };
        let Value::Object(inner) = value else {
            return Err(format!("expected an object for {key:?}, got {value}"));
        };
        let (grandchildren, child_is_member) = decode(inner)?;
        let set = children.get_or_insert_with(FieldSet::new);
        if child_is_member {
            set.members.insert(pe.clone());
        }
        if let Some(grandchildren) = grandchildren {
            match set.children.get_mut(&pe) {
                Some(existing) => existing.union_in_place(&grandchildren),
                None => set.set_child(pe, grandchildren),
            }
        }
    }
    // An object with nothing (known) inside is a leaf: the path itself is owned.
    if children.as_ref().is_none_or(FieldSet::is_empty) {
        return Ok((None, true));
    }
    Ok((children, is_member))
}

impl std::fmt::Display for FieldSet {
    /// One path per line, as upstream's `Set.String()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.paths().iter().map(|p| path_string(p)).collect();
        f.write_str(&lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    fn set(v: Value) -> FieldSet {
        FieldSet::from_fields_v1(&v).expect("valid FieldsV1")
    }

    #[test]
    fn fields_v1_round_trips() {
        let cases = [
            json!({}),
            json!({"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{}}}),
            json!({"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}),
            json!({"f:metadata":{"f:finalizers":{".":{},"v:\"a\"":{},"v:\"b\"":{}}}}),
            json!({"f:spec":{"f:selector":{}}}),
        ];
        for case in cases {
            assert_eq!(set(case.clone()).to_fields_v1(), case);
        }
    }

    #[test]
    fn decoding_follows_upstream_rules() {
        // Unknown element types are dropped; a node left with nothing is a leaf.
        assert_eq!(set(json!({"f:a":{"x:new":{}}})), set(json!({"f:a":{}})));
        assert!(set(json!({"f:a":{}})).has(&[f("a")]));
        assert!(!set(json!({"f:a":{"f:b":{}}})).has(&[f("a")]));
        assert!(set(json!({"f:a":{".":{},"f:b":{}}})).has(&[f("a")]));
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"k:notjson": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"z": {}})).is_err());
    }

    #[test]
    fn algebra() {
        let a = set(json!({"f:a":{}, "f:b":{"f:c":{}, "f:d":{}}}));
        let b = set(json!({"f:b":{"f:c":{}}, "f:e":{}}));
        assert_eq!(
            a.union(&b),
            set(json!({"f:a":{}, "f:b":{"f:c":{}, "f:d":{}}, "f:e":{}}))
        );
        assert_eq!(a.intersection(&b), set(json!({"f:b":{"f:c":{}}})));
        assert_eq!(a.difference(&b), set(json!({"f:a":{}, "f:b":{"f:d":{}}})));
        assert!(a.difference(&a).is_empty());
        // A member removes what lies below it only in the recursive difference.
        let status = FieldSet::from_paths([&[f("b")][..]]);
        assert_eq!(a.difference(&status), a);
        assert_eq!(a.recursive_difference(&status), set(json!({"f:a":{}})));
        let paths: Vec<String> = a.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(paths, [".a", ".b.c", ".b.d"]);
    }
}
