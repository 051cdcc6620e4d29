//! The bridge from client-side `kubectl apply` (the `last-applied-configuration`
//! annotation) to server-side apply, for the manager named `kubectl` only, as upstream:
//!
//! - conflicts on fields whose live value is still what the annotation says was applied are
//!   not conflicts: kubectl applied them before, so the apply is forced
//!   (`lastAppliedManager`);
//! - after a server-side apply, an existing annotation is rewritten to the applied config,
//!   so a later client-side apply diffs against the right thing (`lastAppliedUpdater`).

use serde_json::Value;

use super::path::go_json;
use super::set::FieldSet;
use super::typed::{compare, to_field_set, validate};
use super::updater::Ctx;

pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose applies upgrade client-side apply state.
pub(super) const KUBECTL: &str = "kubectl";

/// Upstream's `TotalAnnotationSizeLimitB`: past it, the annotation is dropped instead.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

fn last_applied(obj: &Value) -> Option<&str> {
    obj.get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// The fields kubectl may take over without a conflict: those in the annotation whose live
/// value equals the annotation's. `None` when there is no usable annotation.
pub(super) fn allowed_conflicts(ctx: &Ctx<'_>, live: &Value) -> Option<FieldSet> {
    let last: Value = serde_json::from_str(last_applied(live)?).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(ctx.api_version.as_str()) {
        return None;
    }
    let root = ctx.schema.root();
    if !validate(live, root).is_empty() || !validate(&last, root).is_empty() {
        return None;
    }
    let cmp = compare(&last, live, root).ok()?;
    Some(
        to_field_set(&last, root)
            .difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

/// Rewrites an existing annotation of `obj` to `config` (without the annotation itself),
/// encoded as kubectl encodes it: Go's JSON with a trailing newline.
pub(super) fn sync_annotation(obj: &mut Value, config: &Value) {
    if last_applied(obj).is_none() {
        return;
    }
    let mut applied = config.clone();
    if let Some(annotations) = applied
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    let text = go_json(&applied) + "\n";
    let Some(annotations) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    annotations.insert(LAST_APPLIED_ANNOTATION.into(), Value::String(text));
    let size: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > ANNOTATIONS_SIZE_LIMIT {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}
