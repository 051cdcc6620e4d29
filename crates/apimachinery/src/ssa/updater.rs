//! The field manager proper: upstream's chain of managers (`structuredmerge`, `stripmeta`,
//! `managedfieldsupdater`, `buildmanagerinfo`, `capmanagers`, `skipnonapplied`,
//! `lastapplied*`) and structured-merge-diff's `Updater`, for one resource endpoint.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::error::{Conflict, SsaError};
use super::last_applied::{self, KUBECTL};
use super::managed::{Entry, Managed, ManagerId, Operation, is_reset};
use super::merge::merge;
use super::path::{PathElement, path_string, value_eq};
use super::schema::Schema;
use super::set::FieldSet;
use super::skeleton::empty_object;
use super::typed::{Comparison, compare, ensure_named, remove_items, to_field_set, validate};
use crate::registry::ResourceType;

/// What one endpoint (a resource, or one of its subresources) needs while tracking fields.
pub(super) struct Ctx<'a> {
    pub rt: &'a ResourceType,
    pub schema: Schema<'a>,
    /// `apps/v1`: the version entries are recorded at.
    pub api_version: String,
    /// Empty for the main resource.
    pub subresource: &'a str,
    /// Fields the endpoint resets (upstream's strategy `GetResetFields`): nobody owns them
    /// through it and an apply's values for them are dropped.
    pub reset: FieldSet,
    /// Identity and bookkeeping fields no manager ever owns (upstream's `stripMetaManager`).
    strip: FieldSet,
    /// The kind's zero object (see `skeleton.rs`).
    zero: Value,
    pub now: &'a str,
}

/// Why the structured apply stopped.
enum Fail {
    Conflicts(Vec<(ManagerId, Vec<PathElement>)>),
    Other(SsaError),
}

/// The manager an update is recorded under before it is merged into the caller's entry
/// (upstream's `current-operation`). No decoded entry has an empty apiVersion with
/// `Update`, so it cannot collide with one.
fn current_operation() -> ManagerId {
    ManagerId {
        manager: "current-operation".into(),
        operation: Operation::Update,
        api_version: String::new(),
        subresource: String::new(),
    }
}

fn field(name: &str) -> PathElement {
    PathElement::Field(name.into())
}

impl<'a> Ctx<'a> {
    pub(super) fn new(rt: &'a ResourceType, subresource: &'a str, now: &'a str) -> Ctx<'a> {
        let reset = match subresource {
            "" if rt.has_subresource("status") => FieldSet::from_paths([&[field("status")][..]]),
            "status" => FieldSet::from_paths([&[field("spec")][..]]),
            _ => FieldSet::new(),
        };
        let mut strip = FieldSet::from_paths([
            &[field("apiVersion")][..],
            &[field("kind")][..],
            &[field("metadata")][..],
        ]);
        for name in [
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        ] {
            strip.insert(&[field("metadata"), field(name)]);
        }
        let schema = Schema::of(rt);
        let api_version = rt.api_version();
        let zero = empty_object(schema.root(), &api_version, &rt.kind);
        Ctx {
            rt,
            schema,
            api_version,
            subresource,
            reset,
            strip,
            zero,
            now,
        }
    }

    /// `v` as upstream's typed decoding sees it: with the zero object's value-typed structs
    /// present where `v` lacks them, so comparisons do not see them created.
    fn filled<'v>(&self, v: &'v Value) -> Cow<'v, Value> {
        if self.rt.typed.is_none() || !lacks(v, &self.zero) {
            return Cow::Borrowed(v);
        }
        let mut out = v.clone();
        fill(&mut out, &self.zero);
        Cow::Owned(out)
    }

    /// Upstream's `FieldManager.Apply`, with the version check and the last-applied
    /// handling around it.
    pub(super) fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, SsaError> {
        // A create merges into nothing; upstream's zero object would only add empty structs.
        let empty = Value::Object(Map::new());
        let live = live.unwrap_or(&empty);
        let managed = Managed::decode(live).map_err(SsaError::DecodeManagedFields)?;
        self.check_config(config)?;
        let result = match self.apply_tracked(live, config, managed.clone(), manager, force) {
            Err(Fail::Conflicts(conflicts)) if manager == KUBECTL => {
                match last_applied::allowed_conflicts(self, live) {
                    Some(allowed) => {
                        let left: Vec<_> = conflicts
                            .into_iter()
                            .filter(|(_, path)| !allowed.has(path))
                            .collect();
                        if left.is_empty() {
                            self.apply_tracked(live, config, managed, manager, true)
                        } else {
                            Err(Fail::Conflicts(left))
                        }
                    }
                    None => Err(Fail::Conflicts(conflicts)),
                }
            }
            other => other,
        };
        let (mut obj, managed) = result.map_err(|fail| match fail {
            Fail::Conflicts(conflicts) => SsaError::Conflicts(public_conflicts(conflicts)),
            Fail::Other(e) => e,
        })?;
        managed.write_to(&mut obj);
        if manager == KUBECTL {
            last_applied::sync_annotation(&mut obj, config);
        }
        Ok(obj)
    }

    fn check_config(&self, config: &Value) -> Result<(), SsaError> {
        let Value::Object(map) = config else {
            return Err(SsaError::NotAnObject);
        };
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        if api_version != self.api_version || kind != self.rt.kind {
            // Go's `GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            return Err(SsaError::InvalidObjectType(format!(
                "{group}/{version}, Kind={kind}"
            )));
        }
        let metadata = map.get("metadata");
        if metadata
            .and_then(|m| m.get("managedFields"))
            .is_some_and(|f| !f.is_null())
        {
            return Err(SsaError::ManagedFieldsInConfig);
        }
        let errors = validate(config, self.schema.root());
        if !errors.is_empty() {
            let meta = |key: &str| {
                metadata
                    .and_then(|m| m.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let (group, version) = self
                .api_version
                .split_once('/')
                .unwrap_or(("", &self.api_version));
            let errors = match errors.as_slice() {
                [one] => one.clone(),
                many => format!("errors:\n  {}", many.join("\n  ")),
            };
            return Err(SsaError::TypedPatch {
                object: format!(
                    "{}/{}; {group}/{version}, Kind={}",
                    meta("namespace"),
                    meta("name"),
                    self.rt.kind
                ),
                errors,
            });
        }
        Ok(())
    }

    /// Upstream's `skipNonAppliedManager.Apply` and the managers below it: an object
    /// without managedFields first has its existing fields recorded as owned by
    /// `before-first-apply`, so an apply cannot silently take them over.
    fn apply_tracked(
        &self,
        live: &Value,
        config: &Value,
        mut managed: Managed,
        manager: &str,
        force: bool,
    ) -> Result<(Value, Managed), Fail> {
        if managed.is_empty() {
            self.update_tracked(&self.zero, live, &mut managed, "before-first-apply")
                .map_err(|e| Fail::Other(SsaError::BeforeFirstApply(e)))?;
        }
        let id = ManagerId::new(manager, Operation::Apply, "", self.subresource);
        let changed = self.structured_apply(live, config, &mut managed, &id, force)?;
        self.strip(&mut managed, &id);
        let obj = match changed {
            Some(obj) => {
                if let Some(entry) = managed.entries.get_mut(&id) {
                    entry.time = Some(self.now.to_string());
                }
                obj
            }
            // A no-op apply changes ownership at most, not the manager's time.
            None => live.clone(),
        };
        Ok((obj, managed))
    }

    /// Upstream's `FieldManager.UpdateNoErrors` for a non-apply write of `new` over `live`
    /// (`None` on create).
    pub(super) fn update(&self, live: Option<&Value>, new: &mut Value, manager: &str) {
        if !new.get("metadata").is_some_and(Value::is_object) {
            return;
        }
        let live = live.unwrap_or(&self.zero);
        let from_live = || Managed::decode(live).unwrap_or_default();
        let mut managed = if !self.subresource.is_empty() {
            // Subresources never take managedFields from the request.
            from_live()
        } else if is_reset(new) {
            Managed::default()
        } else {
            match Managed::decode(new) {
                Ok(m) if !m.is_empty() => m,
                // Clients unaware of managedFields must not erase them.
                _ => from_live(),
            }
        };
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        let has_uid = live
            .get("metadata")
            .and_then(|m| m.get("uid"))
            .and_then(Value::as_str)
            .is_some_and(|uid| !uid.is_empty());
        // Upstream stops tracking an existing object whose managedFields were cleared,
        // until the next apply.
        let tracked = !managed.is_empty() || !has_uid;
        if tracked
            && self
                .update_tracked(live, new, &mut managed, manager)
                .is_err()
        {
            // Upstream's `UpdateNoErrors`: keep the stored entries rather than fail the write.
            let kept = live
                .get("metadata")
                .and_then(|m| m.get("managedFields"))
                .cloned();
            if let (Some(meta), Some(kept)) =
                (new.get_mut("metadata").and_then(Value::as_object_mut), kept)
            {
                meta.insert("managedFields".into(), kept);
            }
            return;
        }
        managed.write_to(new);
    }

    /// An update through the managers below `skipNonApplied`: the changed fields become the
    /// manager's (merged into its earlier `Update` entry, with a new time) and leave
    /// everyone else's; removed fields leave everyone's.
    fn update_tracked(
        &self,
        live: &Value,
        new: &Value,
        managed: &mut Managed,
        manager: &str,
    ) -> Result<(), String> {
        let id = ManagerId::new(
            manager,
            Operation::Update,
            &self.api_version,
            self.subresource,
        );
        let current = current_operation();
        self.structured_update(live, new, managed, &current)?;
        self.strip(managed, &current);
        if let Some(entry) = managed.entries.remove(&current) {
            let set = match managed.entries.remove(&id) {
                Some(previous) => entry.set.union(&previous.set),
                None => entry.set,
            };
            managed.entries.insert(
                id,
                Entry {
                    set,
                    api_version: self.api_version.clone(),
                    time: Some(self.now.to_string()),
                },
            );
        }
        managed.cap_update_managers();
        Ok(())
    }

    fn strip(&self, managed: &mut Managed, id: &ManagerId) {
        if let Some(entry) = managed.entries.get_mut(id) {
            entry.set = entry.set.difference(&self.strip);
            if entry.set.is_empty() {
                managed.entries.remove(id);
            }
        }
    }

    /// structured-merge-diff's `Updater.Update`.
    fn structured_update(
        &self,
        live: &Value,
        new: &Value,
        managed: &mut Managed,
        workflow: &ManagerId,
    ) -> Result<(), String> {
        let cmp = match self.reconcile(live, new, managed, workflow, true) {
            Ok(cmp) => cmp,
            Err(Fail::Other(e)) => return Err(e.to_string()),
            Err(Fail::Conflicts(_)) => return Err("conflicts while forcing".into()),
        };
        let previous = managed
            .entries
            .get(workflow)
            .map(|e| e.set.clone())
            .unwrap_or_default();
        let set = previous
            .difference(&cmp.removed)
            .union(&cmp.modified)
            .union(&cmp.added)
            .recursive_difference(&self.reset);
        if set.is_empty() {
            managed.entries.remove(workflow);
        } else {
            managed.entries.insert(
                workflow.clone(),
                Entry {
                    set,
                    api_version: self.api_version.clone(),
                    time: None,
                },
            );
        }
        Ok(())
    }

    /// structured-merge-diff's `Updater.Apply`: merges, prunes what the manager stopped
    /// applying, and settles ownership. Returns the new object, or `None` when the apply
    /// changes nothing in it.
    fn structured_apply(
        &self,
        live: &Value,
        config: &Value,
        managed: &mut Managed,
        id: &ManagerId,
        force: bool,
    ) -> Result<Option<Value>, Fail> {
        let root = self.schema.root();
        let mut merged = merge(live, config, root).map_err(|e| Fail::Other(SsaError::Merge(e)))?;
        self.keep_reset_fields(&mut merged, live);
        let previous = managed.entries.get(id).cloned();
        let set = to_field_set(config, root).recursive_difference(&self.reset);
        managed.entries.insert(
            id.clone(),
            Entry {
                set,
                api_version: self.api_version.clone(),
                time: previous.as_ref().and_then(|e| e.time.clone()),
            },
        );
        if let Some(last) = previous.filter(|e| !e.set.is_empty()) {
            merged = self.prune(&merged, managed, &last.set);
        }
        self.reconcile(live, &merged, managed, id, force)?;
        Ok((!value_eq(live, &merged)).then_some(merged))
    }

    /// Upstream's strategies reset what an endpoint does not write (`status` through the
    /// main resource): the applied values there are dropped for the live ones.
    fn keep_reset_fields(&self, merged: &mut Value, live: &Value) {
        let Some(out) = merged.as_object_mut() else {
            return;
        };
        for pe in self.reset.members() {
            if let PathElement::Field(name) = pe {
                match live.get(name) {
                    Some(v) => {
                        out.insert(name.clone(), v.clone());
                    }
                    None => {
                        out.remove(name);
                    }
                }
            }
        }
    }

    /// Removes what the applier owned last time and no longer applies, unless another
    /// manager owns it (upstream's `prune`, `addBackOwnedItems`, `addBackDanglingItems`).
    fn prune(&self, merged: &Value, managed: &Managed, last: &FieldSet) -> Value {
        let root = self.schema.root();
        let named = |set: &FieldSet| ensure_named(set, root);
        let fields_of = |v: &Value| named(&to_field_set(v, root));
        let last = named(last);
        let pruned = remove_items(merged, &last, root);
        let mut owned = FieldSet::new();
        for entry in managed.entries.values() {
            owned.union_in_place(&entry.set);
        }
        let merged_set = fields_of(merged);
        let removed = merged_set.difference(&fields_of(&pruned).union(&named(&owned)));
        let pruned = remove_items(merged, &removed, root);
        let dangling = merged_set
            .difference(&fields_of(&pruned))
            .intersection(&last);
        remove_items(merged, &dangling, root)
    }

    /// structured-merge-diff's `Updater.update`: what changed from `old` to `new` leaves
    /// every other manager's set, and is a conflict for what they owned unless forced.
    fn reconcile(
        &self,
        old: &Value,
        new: &Value,
        managed: &mut Managed,
        workflow: &ManagerId,
        force: bool,
    ) -> Result<Comparison, Fail> {
        let mut cmp = compare(&self.filled(old), &self.filled(new), self.schema.root())
            .map_err(|e| Fail::Other(SsaError::Merge(format!("failed to compare objects: {e}"))))?;
        cmp.filter(&self.reset);
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts: Vec<(ManagerId, FieldSet)> = Vec::new();
        for (id, entry) in &managed.entries {
            if id == workflow {
                continue;
            }
            let owned = entry.set.intersection(&changed);
            if !owned.is_empty() {
                conflicts.push((id.clone(), owned));
            }
        }
        if !force && !conflicts.is_empty() {
            let mut flat = Vec::new();
            for (id, set) in conflicts {
                flat.extend(set.paths().into_iter().map(|p| (id.clone(), p)));
            }
            return Err(Fail::Conflicts(flat));
        }
        for (id, set) in &conflicts {
            if let Some(entry) = managed.entries.get_mut(id) {
                entry.set = entry.set.difference(set);
            }
        }
        if !cmp.removed.is_empty() {
            for (id, entry) in managed.entries.iter_mut() {
                if id != workflow {
                    entry.set = entry.set.difference(&cmp.removed);
                }
            }
        }
        managed.entries.retain(|_, e| !e.set.is_empty());
        Ok(cmp)
    }
}

/// Conflicts as callers see them, grouped by manager in the order of upstream's sorted
/// identifiers, fields in set order within each.
fn public_conflicts(mut conflicts: Vec<(ManagerId, Vec<PathElement>)>) -> Vec<Conflict> {
    conflicts.sort_by_cached_key(|(id, _)| id.identifier());
    conflicts
        .into_iter()
        .map(|(id, path)| Conflict {
            manager: id.manager,
            operation: id.operation,
            api_version: id.api_version,
            subresource: id.subresource,
            field: path_string(&path),
        })
        .collect()
}

/// Whether `v` lacks a field of `zero` (recursing into objects both have).
fn lacks(v: &Value, zero: &Value) -> bool {
    let (Value::Object(v), Value::Object(zero)) = (v, zero) else {
        return false;
    };
    zero.iter().any(|(k, z)| match v.get(k) {
        None => true,
        Some(child) => lacks(child, z),
    })
}

fn fill(v: &mut Value, zero: &Value) {
    let (Value::Object(v), Value::Object(zero)) = (v, zero) else {
        return;
    };
    for (k, z) in zero {
        match v.get_mut(k) {
            Some(child) => fill(child, z),
            None => {
                v.insert(k.clone(), z.clone());
            }
        }
    }
}
