//! GET one object, served from the watch cache once it has caught up with the store.

use apimachinery::status::ApiError;
use http::{Response, StatusCode};

use super::Ctx;
use crate::codec::{self, Body};

pub async fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let key = ctx.key();
    if super::list::cache_is_fresh(ctx).await? {
        return match ctx.state.cache_of(&ctx.rt).get(&key) {
            Some(obj) => Ok(codec::json_bytes(StatusCode::OK, obj.bytes.clone())),
            None => Err(ctx.not_found()),
        };
    }
    match super::write::read(ctx, &key).await? {
        Some((obj, _)) => Ok(codec::json(StatusCode::OK, &obj)),
        None => Err(ctx.not_found()),
    }
}
