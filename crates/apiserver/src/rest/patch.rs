//! PATCH: JSON patch, JSON merge patch and strategic merge patch, applied to the current
//! object inside the guaranteed-update loop, then treated like an update.

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::Value;

use super::Ctx;
use super::update::{apply_update, check_identity};
use super::write::{self, Mutated, Updated, add_warnings};
use crate::codec::{self, Body};
use crate::{admission, objects, patching};

pub async fn patch(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let content_type = codec::media_type(&ctx.headers, header::CONTENT_TYPE);
    let kind = patching::PatchKind::from_media_type(&content_type, ctx.rt.typed.is_some())?;
    let force = ctx.query.get("force").map(|v| v == "true" || v == "1");
    apimachinery::ssa::validate_patch_options(
        kind == patching::PatchKind::Apply,
        ctx.query.value("fieldManager"),
        force,
    )?;
    if kind == patching::PatchKind::Apply {
        return apply(ctx, &body, force.unwrap_or(false)).await;
    }
    let patch: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let key = ctx.key();
    let mut warnings = Vec::new();
    let updated = write::guaranteed_update(ctx, &key, |current| {
        // A patch that changes the resourceVersion pins the write to it (upstream treats it
        // as a precondition; JSON patches use a `replace`/`test` of it); one that leaves it
        // alone is unconditional and retried on conflicts.
        let patched = patching::apply(kind, current, &patch, &ctx.rt)?;
        let pinned = objects::resource_version(&patched)
            .filter(|rv| Some(*rv) != objects::resource_version(current))
            .map(String::from);
        let raw = serde_json::to_vec(&patched).unwrap_or_default();
        let decoded = write::normalize(ctx, patched, Some(&raw))?;
        warnings = decoded.warnings;
        let obj = check_identity(ctx, decoded.obj)?;
        Ok(Mutated {
            obj: apply_update(ctx, obj, current)?,
            pinned,
        })
    })
    .await?;
    let (Updated::Object(mut obj) | Updated::Deleted(mut obj)) = updated;
    admission::after_write(ctx, &mut obj).await;
    let mut resp = codec::json(StatusCode::OK, &obj);
    add_warnings(&mut resp, &warnings);
    Ok(resp)
}

/// Server-side apply: merges the applied configuration into the object (creating it when
/// missing) with field ownership and conflicts, then stores it like an update.
async fn apply(ctx: &Ctx, body: &Bytes, force: bool) -> Result<Response<Body>, ApiError> {
    let config = codec::decode_object("application/yaml", body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {}", e.message())))?;
    let config = write::check_type_meta(ctx, config)?;
    let manager = ctx.query.value("fieldManager").unwrap_or("").to_string();
    let fields = match ctx.info.subresource.as_deref() {
        Some(sub) => apimachinery::ssa::FieldManager::subresource(&ctx.rt, sub),
        None => apimachinery::ssa::FieldManager::new(&ctx.rt),
    };
    let key = ctx.key();
    if write::read(ctx, &key).await?.is_none() {
        if ctx.info.subresource.is_some() {
            return Err(ctx.not_found());
        }
        let created = fields
            .apply(None, &config, &manager, force, &objects::now())
            .map_err(|e| e.to_api_error())?;
        let created = check_identity(ctx, created)?;
        let decoded = write::normalize(ctx, created, None)?;
        return super::create::insert(ctx, decoded.obj, &decoded.warnings, false).await;
    }
    let pinned = objects::resource_version(&config).map(String::from);
    let updated = write::guaranteed_update(ctx, &key, |current| {
        let mut base = current.clone();
        if let Some(meta) = base.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let merged = fields
            .apply(Some(&base), &config, &manager, force, &objects::now())
            .map_err(|e| e.to_api_error())?;
        let decoded = write::normalize(ctx, merged, None)?;
        let obj = check_identity(ctx, decoded.obj)?;
        Ok(Mutated {
            obj: apply_update(ctx, obj, current)?,
            pinned: pinned.clone(),
        })
    })
    .await?;
    let (Updated::Object(mut obj) | Updated::Deleted(mut obj)) = updated;
    admission::after_write(ctx, &mut obj).await;
    Ok(codec::json(StatusCode::OK, &obj))
}
