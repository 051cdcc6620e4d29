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
    let patch: Value = if kind == patching::PatchKind::Apply {
        return Err(ApiError::unsupported_media_type(&content_type));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let key = ctx.key();
    let mut warnings = Vec::new();
    let updated = write::guaranteed_update(ctx, &key, |current| {
        // The patch applies to the object without its resourceVersion, so a version in the
        // result is one the patch itself pins.
        let mut base = current.clone();
        if let Some(meta) = base.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let patched = patching::apply(kind, &base, &patch, &ctx.rt)?;
        let pinned = objects::resource_version(&patched).map(String::from);
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
