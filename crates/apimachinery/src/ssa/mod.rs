//! Server-side apply and field management (`metadata.managedFields`), with upstream's
//! semantics (sigs.k8s.io/structured-merge-diff and k8s.io/apimachinery
//! `pkg/util/managedfields`):
//!
//! - every write records which manager set which fields: an apply owns exactly the fields
//!   of its config (operation `Apply`); create, update and patch own the fields they changed
//!   (operation `Update`, one entry per manager, apiVersion and subresource);
//! - an apply merges its config into the object (maps by key, lists typed `map` by their
//!   keys, `set` lists as sets, atomic values whole), removes what the same manager applied
//!   before and no longer applies unless someone else owns it, and fails with a 409 when it
//!   would change a field another manager owns, unless forced;
//! - a write that changes a field takes it from its other owners; a client may also rewrite
//!   `managedFields` itself, and `[]` (or `[{}]`) clears them (kubectl's client-side to
//!   server-side apply upgrade relies on both).
//!
//! Callers pass objects as Kubernetes JSON. The apply config is the request body as
//! parsed (not defaulted, or the defaults would become the applier's); the object `apply`
//! returns is to be defaulted, validated and stored like any update. Where upstream's
//! behaviour depends on Go types or conversions we do not have, we approximate it:
//! managers of other versions of a resource are compared at the requested version, and a
//! map or list that pruning empties is removed rather than set to `null`.
//!
//! # Layout
//! - `mod.rs`: [`FieldManager`], [`apply`], [`track_update`], [`revert_time_only_changes`]
//!   and request-option helpers.
//! - `error.rs`: [`SsaError`], [`Conflict`] and the `Status` each error becomes.
//! - `updater.rs`: the apply and update algorithms (upstream's manager chain and `Updater`).
//! - `merge.rs`: merging a config into an object, with upstream's list order.
//! - `typed.rs`: schema-aware walks: validation, field sets, comparison, removal.
//! - `schema.rs`: the type at each path (list and map types), for built-ins and CRDs.
//! - `set.rs`: [`FieldSet`] and the FieldsV1 encoding.
//! - `path.rs`: [`PathElement`], value order and Go-compatible printing.
//! - `managed.rs`: decoding, ordering and capping managedFields entries.
//! - `last_applied.rs`: the `kubectl` client-side apply annotation bridge.
//! - `skeleton.rs`: the zero object creates are compared against.

mod error;
mod last_applied;
mod managed;
mod merge;
mod path;
mod schema;
mod set;
mod skeleton;
#[cfg(test)]
mod tests;
mod typed;
mod updater;

use serde_json::Value;

pub use error::{Conflict, SsaError};
pub use last_applied::LAST_APPLIED_ANNOTATION;
pub use managed::Operation;
pub use path::{PathElement, path_string};
pub use set::FieldSet;

use crate::field::{BadValue, ErrorKind, FieldError};
use crate::registry::ResourceType;
use crate::status::ApiError;

pub type Result<T, E = SsaError> = std::result::Result<T, E>;

/// Upstream's `FieldManagerMaxLength`.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// Field management for one endpoint: a resource, or one of its subresources (`status`,
/// `scale`), whose entries carry `subresource` and which ignore each other's fields.
///
/// Through the main resource of a kind with a `status` subresource, `status` is neither
/// owned nor applied (the apply keeps the stored status); through `status`, `spec` is.
#[derive(Clone, Copy, Debug)]
pub struct FieldManager<'a> {
    rt: &'a ResourceType,
    subresource: &'a str,
}

impl<'a> FieldManager<'a> {
    /// The main resource.
    pub fn new(rt: &'a ResourceType) -> Self {
        FieldManager {
            rt,
            subresource: "",
        }
    }

    /// A subresource of `rt` (`status`, `scale`); `rt` is the parent, whose objects are
    /// passed and whose apiVersion entries carry.
    pub fn subresource(rt: &'a ResourceType, subresource: &'a str) -> Self {
        FieldManager { rt, subresource }
    }

    /// Applies `config` as `manager` (see [`apply`]).
    pub fn apply(
        &self,
        current: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value> {
        updater::Ctx::new(self.rt, self.subresource, now).apply(current, config, manager, force)
    }

    /// Records a non-apply write (see [`track_update`]).
    pub fn update(&self, old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
        updater::Ctx::new(self.rt, self.subresource, now).update(old, new, manager)
    }
}

/// Server-side apply of `config` by `manager` to `current` (`None` creates), at `now`
/// (RFC 3339, `2024-05-01T10:00:00Z`).
///
/// Returns the object to store, with `metadata.managedFields` updated: the manager's
/// `Apply` entry owns exactly the fields of `config` (with a new time when the object
/// changed). Fields the manager applied before and `config` omits are removed unless
/// another manager owns them. Fails with [`SsaError::Conflicts`] when `config` would change
/// a field another manager owns, unless `force` (then ownership moves to `manager`).
/// For the manager `kubectl`, fields whose values match the client-side
/// `last-applied-configuration` annotation never conflict, and the annotation, when
/// present, is rewritten to `config`. Pure: the same inputs give the same output.
pub fn apply(
    rt: &ResourceType,
    current: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value> {
    FieldManager::new(rt).apply(current, config, manager, force, now)
}

/// Records the write of `new` over `old` (`None` on create) by `manager`, through the
/// main resource, at `now`, by rewriting `new`'s `metadata.managedFields`.
///
/// The fields that changed become `manager`'s (operation `Update`, merged into its earlier
/// entry, with a new time) and leave other managers' sets; removed fields leave everyone's;
/// managers left with nothing are dropped. `managedFields` sent in `new` replace the stored
/// ones when they decode (a missing or undecodable list keeps the stored ones, `[]` or
/// `[{}]` clears them, and an existing object with none stays untracked until the next
/// apply). Never fails: on an internal error the stored entries are kept.
pub fn track_update(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    FieldManager::new(rt).update(old, new, manager, now)
}

/// Puts back `old`'s managedFields times when they are all that differs between `old` and
/// the object about to be stored, so the write is a no-op (upstream's registry does this
/// last, after the strategy, because a manager may be recorded for a change the strategy
/// then undoes).
pub fn revert_time_only_changes(old: &Value, new: &mut Value) {
    managed::revert_time_only_changes(old, new)
}

/// The manager of a non-apply write: the `fieldManager` query parameter, else the
/// User-Agent up to its first `/` (`kubectl/v1.33.0 (linux/amd64) …` → `kubectl`),
/// without unprintable characters and cut to 128 bytes.
pub fn manager_or_user_agent(field_manager: Option<&str>, user_agent: &str) -> String {
    if let Some(manager) = field_manager.filter(|m| !m.is_empty()) {
        return manager.to_string();
    }
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| is_print(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Go's `unicode.IsPrint`, closely enough: graphic characters and the ASCII space.
fn is_print(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace())
}

/// Upstream's `ValidateFieldManager` of a `fieldManager` option.
pub fn validate_field_manager(field_manager: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if field_manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::new(
            ErrorKind::TooLong,
            "fieldManager",
            BadValue::Omit,
            &format!("may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes"),
        ));
    }
    for (i, c) in field_manager.char_indices() {
        if !is_print(c) {
            errs.push(FieldError::invalid(
                "fieldManager",
                BadValue::Str(field_manager.to_string()),
                &format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    errs
}

/// Upstream's `ValidatePatchOptions` for the field-management options: an apply needs a
/// `fieldManager`, only an apply may say `force`. Fails with 422 `PatchOptions.meta.k8s.io
/// "" is invalid: fieldManager: Required value: is required for apply patch`.
pub fn validate_patch_options(
    is_apply: bool,
    field_manager: Option<&str>,
    force: Option<bool>,
) -> std::result::Result<(), ApiError> {
    let mut errs = Vec::new();
    let manager = field_manager.unwrap_or("");
    if !is_apply && force.is_some() {
        errs.push(FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        ));
    }
    if is_apply && manager.is_empty() {
        errs.push(FieldError::required(
            "fieldManager",
            "is required for apply patch",
        ));
    }
    errs.extend(validate_field_manager(manager));
    options_result("PatchOptions", &errs)
}

/// The `fieldManager` check of create and update (`options_kind` is `CreateOptions` or
/// `UpdateOptions`).
pub fn validate_write_options(
    options_kind: &str,
    field_manager: Option<&str>,
) -> std::result::Result<(), ApiError> {
    options_result(
        options_kind,
        &validate_field_manager(field_manager.unwrap_or("")),
    )
}

fn options_result(kind: &str, errs: &[FieldError]) -> std::result::Result<(), ApiError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("meta.k8s.io", kind, "", errs))
    }
}
