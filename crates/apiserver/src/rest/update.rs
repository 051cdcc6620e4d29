//! PUT: replace an object (or its status), guarded by the body's resourceVersion.

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;

use super::Ctx;
use super::write::{self, Mutated, Updated, add_warnings};
use crate::codec::{self, Body};
use crate::{admission, objects, strategy};

pub async fn update(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    apimachinery::ssa::validate_write_options("UpdateOptions", ctx.query.value("fieldManager"))?;
    let decoded = write::decode(ctx, &body)?;
    let incoming = check_identity(ctx, decoded.obj)?;
    let key = ctx.key();
    let pinned = objects::resource_version(&incoming).map(String::from);
    let updated = write::guaranteed_update(ctx, &key, |current| {
        Ok(Mutated {
            obj: apply_update(ctx, incoming.clone(), current)?,
            pinned: pinned.clone(),
        })
    })
    .await?;
    let (Updated::Object(mut obj) | Updated::Deleted(mut obj)) = updated;
    admission::after_write(ctx, &mut obj).await;
    let mut resp = codec::json(StatusCode::OK, &obj);
    add_warnings(&mut resp, &decoded.warnings);
    Ok(resp)
}

/// The body's name and namespace must be the URL's (empty ones are filled in).
pub fn check_identity(ctx: &Ctx, mut obj: Value) -> Result<Value, ApiError> {
    let url_name = ctx.name().to_string();
    match objects::name(&obj) {
        Some(n) if n != url_name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({url_name})"
            )));
        }
        _ => {}
    }
    objects::meta_mut(&mut obj).insert("name".into(), Value::String(url_name));
    if ctx.rt.namespaced {
        let url_ns = ctx.info.namespace.clone().unwrap_or_default();
        if objects::namespace(&obj).is_some_and(|ns| ns != url_ns) {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        objects::meta_mut(&mut obj).insert("namespace".into(), Value::String(url_ns));
    } else {
        objects::meta_mut(&mut obj).remove("namespace");
    }
    Ok(obj)
}

/// The update rules shared by PUT and PATCH: server-owned fields, the status split,
/// defaults and validation against the current object.
pub fn apply_update(ctx: &Ctx, mut new: Value, current: &Value) -> Result<Value, ApiError> {
    let sub = ctx.info.subresource.as_deref();
    // An unconditional update is checked as an update of the current version.
    if objects::resource_version(&new).is_none()
        && let Some(rv) = objects::resource_version(current).map(String::from)
    {
        objects::meta_mut(&mut new).insert("resourceVersion".into(), Value::String(rv));
    }
    // Defaults first, as upstream applies them when decoding: an update that only omits
    // defaulted fields is no spec change and does not bump the generation.
    admission::default_object(&ctx.rt, &mut new);
    strategy::prepare_for_update(&ctx.rt, &mut new, current, sub);
    track_fields(ctx, current, &mut new);
    admission::validate_update(&ctx.rt, &new, current, sub)?;
    // A write that changed nothing but managedFields times is no write at all.
    apimachinery::ssa::revert_time_only_changes(current, &mut new);
    Ok(new)
}

/// Records the write in `managedFields` for the endpoint it came through (the resource, or
/// its `status`/`scale` subresource), unless it is a server-side apply (already recorded).
fn track_fields(ctx: &Ctx, current: &Value, new: &mut Value) {
    if ctx.is_apply() {
        return;
    }
    let manager = match ctx.info.subresource.as_deref() {
        Some(sub) => apimachinery::ssa::FieldManager::subresource(&ctx.rt, sub),
        None => apimachinery::ssa::FieldManager::new(&ctx.rt),
    };
    manager.update(Some(current), new, &ctx.field_manager(), &objects::now());
}
