//! GET one object, served from the watch cache once it has caught up with the store.

use apimachinery::status::ApiError;
use http::{Response, StatusCode};

use super::Ctx;
use crate::codec::{self, Body};

pub async fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let key = ctx.key();
    let table = ctx.table()?;
    if super::list::cache_is_fresh(ctx).await? {
        let obj = ctx
            .state
            .cache_of(&ctx.rt)
            .get(&key)
            .ok_or_else(|| ctx.not_found())?;
        return Ok(match table {
            Some(t) => {
                let rv = obj.rev.to_string();
                codec::json(
                    StatusCode::OK,
                    &ctx.render_table(&t, &[&obj.value], &rv, None, true),
                )
            }
            None => codec::json_bytes(StatusCode::OK, obj.bytes.clone()),
        });
    }
    let (obj, rev) = super::write::read(ctx, &key)
        .await?
        .ok_or_else(|| ctx.not_found())?;
    Ok(match table {
        Some(t) => codec::json(
            StatusCode::OK,
            &ctx.render_table(&t, &[&obj], &rev.to_string(), None, true),
        ),
        None => codec::json(StatusCode::OK, &obj),
    })
}
