//! POST: create an object (with `generateName` and `dryRun`).

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;

use super::Ctx;
use super::write::{self, add_warnings};
use crate::codec::{self, Body};
use crate::{admission, allocator, objects, strategy};

/// How many times a `generateName` create retries a taken name (upstream retries too).
const GENERATE_NAME_ATTEMPTS: usize = 8;

pub async fn create(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    apimachinery::ssa::validate_write_options("CreateOptions", ctx.query.value("fieldManager"))?;
    let decoded = write::decode(ctx, &body)?;
    insert(ctx, decoded.obj, &decoded.warnings, true).await
}

/// Creates a decoded object. `track` records the create in `managedFields` as an Update
/// by the request's field manager; a server-side apply that creates has already recorded
/// its Apply.
pub(super) async fn insert(
    ctx: &Ctx,
    mut obj: Value,
    warnings: &[String],
    track: bool,
) -> Result<Response<Body>, ApiError> {
    let rt = &ctx.rt;
    // The namespace comes from the URL; a different one in the body is refused.
    if rt.namespaced {
        let url_ns = ctx.info.namespace.clone().unwrap_or_default();
        match objects::namespace(&obj) {
            Some(ns) if ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
        if url_ns.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource",
            ));
        }
        objects::meta_mut(&mut obj).insert("namespace".into(), Value::String(url_ns));
    } else {
        objects::meta_mut(&mut obj).remove("namespace");
    }
    let generate = objects::name(&obj).is_none()
        && objects::meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty());
    strategy::prepare_for_create(rt, &mut obj);
    if generate {
        let prefix = objects::meta_str(&obj, "generateName")
            .unwrap_or("")
            .to_string();
        let name = format!("{prefix}{}", objects::generate_name_suffix());
        objects::meta_mut(&mut obj).insert("name".into(), Value::String(name));
    }
    // After the name and uid exist: some defaults derive from them (a Job's selector, a
    // Namespace's name label).
    admission::default_object(rt, &mut obj);
    if track {
        apimachinery::ssa::track_update(rt, None, &mut obj, &ctx.field_manager(), &objects::now());
    }
    admission::validate_create(rt, &obj)?;
    if let Some(ns) = ctx.namespace() {
        admission::check_namespace_open(ctx, ns).await?;
    }
    if ctx.dry_run() {
        return respond(obj, warnings);
    }
    let claimed = if admission::is_service(rt) {
        Some(allocator::allocate(ctx.state.store.as_ref(), &mut obj, None).await?)
    } else {
        None
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let name = objects::name(&obj).unwrap_or("").to_string();
        let key = rt.storage_key(ctx.namespace(), &name);
        match ctx.state.store.create(&key, write::encode(&obj)).await {
            Ok(kv) => {
                objects::set_resource_version(&mut obj, kv.mod_revision);
                admission::after_write(ctx, &mut obj).await;
                return respond(obj, warnings);
            }
            Err(store::Error::AlreadyExists { .. })
                if generate && attempt < GENERATE_NAME_ATTEMPTS =>
            {
                let prefix = objects::meta_str(&obj, "generateName")
                    .unwrap_or("")
                    .to_string();
                let name = format!("{prefix}{}", objects::generate_name_suffix());
                objects::meta_mut(&mut obj).insert("name".into(), Value::String(name));
            }
            Err(e) => {
                if let Some(claimed) = claimed {
                    claimed.release(ctx.state.store.as_ref()).await;
                }
                return Err(write::store_error(ctx, &name, e));
            }
        }
    }
}

fn respond(obj: Value, warnings: &[String]) -> Result<Response<Body>, ApiError> {
    let mut resp = codec::json(StatusCode::CREATED, &obj);
    add_warnings(&mut resp, warnings);
    Ok(resp)
}
