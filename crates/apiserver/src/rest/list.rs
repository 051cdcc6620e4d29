//! LIST: from the watch cache, or — when the client pages with `limit`/`continue` — from
//! the store at one revision, so every page of a list is a consistent snapshot.

use std::time::Duration;

use apimachinery::status::ApiError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{BufMut, Bytes, BytesMut};
use http::{Response, StatusCode};
use serde_json::{Value, json};
use store::ListRequest;

use super::Ctx;
use super::filter::Filter;
use crate::cache::Obj;
use crate::codec::{self, Body};

/// How long a read waits for the watch cache to catch up with the store before it reads
/// the store directly.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// Whether the cache may answer this read: it has applied every write acknowledged so far
/// (or the client asked for `resourceVersion=0`, i.e. any state).
pub async fn cache_is_fresh(ctx: &Ctx) -> Result<bool, ApiError> {
    if ctx.query.get("resourceVersion") == Some("0") {
        return Ok(true);
    }
    let rev = ctx
        .state
        .store
        .current_revision()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ctx.state.cache.wait_for(rev, FRESHNESS_WAIT).await)
}

/// The store prefix the request covers: one namespace, or the whole resource.
pub fn scope_prefix(ctx: &Ctx) -> String {
    match ctx.namespace() {
        Some(ns) => format!("{}{ns}/", ctx.rt.storage_prefix()),
        None => ctx.rt.storage_prefix(),
    }
}

pub async fn list(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_ctx(ctx)?;
    let limit = match ctx.query.value("limit") {
        Some(l) => l.parse::<usize>().unwrap_or(0),
        None => 0,
    };
    let token = ctx.query.value("continue");
    if limit > 0 || token.is_some() {
        return list_from_store(ctx, &filter, limit, token).await;
    }
    let prefix = scope_prefix(ctx);
    if cache_is_fresh(ctx).await? {
        let rev = ctx.state.cache.revision();
        let items: Vec<std::sync::Arc<Obj>> = ctx
            .state
            .cache_of(&ctx.rt)
            .list(Some(&prefix), None)
            .into_iter()
            .filter(|o| filter.matches(&o.value))
            .collect();
        return respond(ctx, rev, None, &items);
    }
    list_from_store(ctx, &filter, 0, None).await
}

async fn list_from_store(
    ctx: &Ctx,
    filter: &Filter,
    limit: usize,
    token: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let prefix = scope_prefix(ctx);
    let (mut revision, mut start) = match token {
        Some(t) => decode_continue(t, &prefix)?,
        None => (0, prefix.clone()),
    };
    let chunk = if limit == 0 { 0 } else { limit.max(100) + 1 };
    let mut items: Vec<std::sync::Arc<Obj>> = Vec::new();
    let mut next: Option<String> = None;
    'pages: loop {
        let res = ctx
            .state
            .store
            .list(ListRequest {
                prefix: &prefix,
                start: Some(&start),
                limit: chunk,
                revision,
            })
            .await
            .map_err(|e| match e {
                store::Error::Compacted { .. } if token.is_some() => {
                    ApiError::expired(TOO_OLD_CONTINUE)
                }
                other => ApiError::internal(other.to_string()),
            })?;
        revision = res.revision;
        let last = res.kvs.last().map(|kv| kv.key.clone());
        for kv in &res.kvs {
            if limit > 0 && items.len() == limit {
                next = Some(kv.key.clone());
                break 'pages;
            }
            if let Some(obj) = Obj::from_kv(kv)
                && filter.matches(&obj.value)
            {
                items.push(std::sync::Arc::new(obj));
            }
        }
        match (res.more, last) {
            (true, Some(last)) => start = format!("{last}\0"),
            _ => break,
        }
    }
    let token = next.map(|key| encode_continue(revision, &key, &prefix));
    respond(ctx, revision, token.as_deref(), &items)
}

/// The list as JSON (the items' shared bytes spliced in) or as a Table.
fn respond(
    ctx: &Ctx,
    rev: i64,
    token: Option<&str>,
    items: &[std::sync::Arc<Obj>],
) -> Result<Response<Body>, ApiError> {
    if let Some(t) = ctx.table()? {
        let values: Vec<&Value> = items.iter().map(|o| &o.value).collect();
        return Ok(codec::json(
            StatusCode::OK,
            &ctx.render_table(&t, &values, &rev.to_string(), token, true),
        ));
    }
    let bytes: Vec<Bytes> = items.iter().map(|o| o.bytes.clone()).collect();
    Ok(list_response(ctx, rev, token, &bytes))
}

/// Upstream's message for a continue token whose revision was compacted.
const TOO_OLD_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Like upstream's token: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}`, the
/// key relative to the listed prefix.
fn encode_continue(rev: i64, key: &str, prefix: &str) -> String {
    let start = key.strip_prefix(prefix).unwrap_or(key);
    B64.encode(json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start}).to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(i64, String), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = B64
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(token))
        .map_err(|_| invalid("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|_| invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(invalid("server does not recognize this encoded version"));
    }
    let rev = v["rv"].as_i64().filter(|r| *r > 0).ok_or_else(|| {
        invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    })?;
    let start = v["start"]
        .as_str()
        .ok_or_else(|| invalid("incorrect encoded start key"))?;
    if start.contains("..") || start.starts_with('/') {
        return Err(invalid("path traversal attempt detected"));
    }
    Ok((rev, format!("{prefix}{start}")))
}

/// `{"apiVersion":…,"kind":"PodList","metadata":{…},"items":[…]}` assembled from the
/// items' shared bytes, without re-serializing them.
pub fn list_response(ctx: &Ctx, rev: i64, token: Option<&str>, items: &[Bytes]) -> Response<Body> {
    let mut meta = json!({"resourceVersion": rev.to_string()});
    if let Some(t) = token {
        meta["continue"] = Value::String(t.to_string());
    }
    let head =
        json!({"apiVersion": ctx.rt.api_version(), "kind": ctx.rt.list_kind, "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let size: usize = items.iter().map(|i| i.len() + 1).sum();
    let mut out = BytesMut::with_capacity(head.len() + size + 16);
    // Reopen the header object to append `items`.
    out.put_slice(&head[..head.len().saturating_sub(1)]);
    out.put_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(item);
    }
    out.put_slice(b"]}");
    codec::json_bytes(StatusCode::OK, out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips() {
        let t = encode_continue(42, "/registry/pods/ns/b", "/registry/pods/ns/");
        assert_eq!(
            decode_continue(&t, "/registry/pods/ns/").expect("valid"),
            (42, "/registry/pods/ns/b".to_string())
        );
        assert_eq!(decode_continue("!!!", "/p/").expect_err("bad").code(), 400);
    }
}
