//! What every write shares: turning a body into a checked object, encoding for the store,
//! and the read-modify-write loop (upstream's `GuaranteedUpdate`).

use apimachinery::status::ApiError;
use apimachinery::strict::{self, Directive};
use bytes::Bytes;
use http::header;
use serde_json::Value;

use super::Ctx;
use crate::codec;
use crate::objects;

/// A decoded body, plus the warnings to send back.
pub struct Decoded {
    pub obj: Value,
    pub warnings: Vec<String>,
}

/// Decodes a create/update body: media type, apiVersion/kind against the URL, typed
/// decoding (wrong field types are 400s) and unknown/duplicate fields per
/// `fieldValidation`.
pub fn decode(ctx: &Ctx, body: &Bytes) -> Result<Decoded, ApiError> {
    let content_type = codec::media_type(&ctx.headers, header::CONTENT_TYPE);
    let raw = codec::decode_object(&content_type, body)?;
    let obj = check_type_meta(ctx, raw)?;
    let json_body;
    // Duplicate detection needs the JSON text; YAML bodies are re-encoded first.
    let text: &[u8] = if content_type.contains("yaml") {
        json_body = serde_json::to_vec(&obj).unwrap_or_default();
        &json_body
    } else {
        body
    };
    normalize(ctx, obj, Some(text))
}

/// Typed round trip and unknown-field policy for an object already known to be of the
/// request's kind. `raw` is the JSON text it came from, for duplicate-field detection.
pub fn normalize(ctx: &Ctx, obj: Value, raw: Option<&[u8]>) -> Result<Decoded, ApiError> {
    let options_kind = match ctx.info.verb {
        "create" => "CreateOptions",
        "patch" => "PatchOptions",
        _ => "UpdateOptions",
    };
    let mode = Directive::parse(ctx.query.get("fieldValidation"))
        .map_err(|e| e.to_api_error(options_kind))?;
    let rt = &ctx.rt;
    let Some(hooks) = rt.typed else {
        return Ok(Decoded {
            obj,
            warnings: Vec::new(),
        });
    };
    let normalized = (hooks.normalize)(obj.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = rt.kind,
            v = rt.version
        ))
    })?;
    let mut warnings = Vec::new();
    if mode != Directive::Ignore {
        let body = match raw {
            Some(b) => std::borrow::Cow::Borrowed(b),
            None => std::borrow::Cow::Owned(serde_json::to_vec(&obj).unwrap_or_default()),
        };
        let problems = strict::find_problems(&body, &normalized);
        if !problems.is_empty() {
            if mode == Directive::Strict {
                return Err(strict::strict_error(
                    &rt.kind,
                    &rt.version,
                    &rt.kind,
                    &problems,
                    &body,
                ));
            }
            warnings = strict::warnings(&problems);
        }
    }
    Ok(Decoded {
        obj: normalized,
        warnings,
    })
}

/// Checks `apiVersion` and `kind` against the URL, as upstream's decoder does; missing
/// ones default to the URL's (upstream decodes with the resource's kind as the default).
pub fn check_type_meta(ctx: &Ctx, mut obj: Value) -> Result<Value, ApiError> {
    let rt = &ctx.rt;
    if let Some(map) = obj.as_object_mut() {
        if map
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            map.insert("kind".into(), Value::String(rt.kind.clone()));
        }
        if map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            map.insert("apiVersion".into(), Value::String(rt.api_version()));
        }
    }
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let expected = rt.api_version();
    if api_version != expected {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if kind != rt.kind {
        let internal_group = if rt.group.is_empty() {
            "core"
        } else {
            rt.group.split('.').next().unwrap_or("")
        };
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {want}: converting ({v}.{kind}) to ({internal_group}.{want}): unknown conversion",
            v = rt.version,
            want = rt.kind
        )));
    }
    Ok(obj)
}

/// The bytes kept in the store: the object without `resourceVersion` (the store's
/// revision is the resourceVersion, filled in on every read).
pub fn encode(obj: &Value) -> Bytes {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// Maps a store failure on one object to the API error upstream sends.
pub fn store_error(ctx: &Ctx, name: &str, err: store::Error) -> ApiError {
    let rt = &ctx.rt;
    match err {
        store::Error::AlreadyExists { .. } => ApiError::already_exists(&rt.group, &rt.plural, name),
        store::Error::NotFound { .. } => ApiError::not_found(&rt.group, &rt.plural, name),
        store::Error::Conflict { .. } => ApiError::modified(&rt.group, &rt.plural, name),
        store::Error::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        other => {
            tracing::error!(error = %other, key = %ctx.key(), "store failure");
            ApiError::internal(other.to_string())
        }
    }
}

/// The object as the store has it now, with its revision.
pub async fn read(ctx: &Ctx, key: &str) -> Result<Option<(Value, i64)>, ApiError> {
    let kv = ctx
        .state
        .store
        .get(key)
        .await
        .map_err(|e| store_error(ctx, ctx.name(), e))?;
    Ok(kv.and_then(|kv| {
        let mut v: Value = serde_json::from_slice(&kv.value).ok()?;
        objects::set_resource_version(&mut v, kv.mod_revision);
        Some((v, kv.mod_revision))
    }))
}

/// The result of a guaranteed update.
pub enum Updated {
    /// Written (or unchanged, when the new object equalled the old one).
    Object(Value),
    /// The update removed the last finalizer of an object being deleted, so it is gone.
    Deleted(Value),
}

/// What a mutation produced: the new object, and the resourceVersion the client pinned it
/// to (a PUT body's, or one a patch sets), if any.
pub struct Mutated {
    pub obj: Value,
    pub pinned: Option<String>,
}

/// How many read-modify-write attempts one update makes before answering 409.
const MAX_UPDATE_ATTEMPTS: usize = 256;

/// Where an attempt's current object came from.
enum Current {
    /// The watch cache's copy: usually current, but it may trail the store.
    Cached(std::sync::Arc<crate::cache::Obj>),
    /// Read from the store just now.
    Stored(Value),
}

impl Current {
    fn value(&self) -> &Value {
        match self {
            Current::Cached(o) => &o.value,
            Current::Stored(v) => v,
        }
    }

    fn is_cached(&self) -> bool {
        matches!(self, Current::Cached(_))
    }
}

/// Reads the current object, lets `mutate` compute the new one, and writes it with a
/// compare-and-swap, retrying on conflicts unless the client pinned a resourceVersion
/// (then a conflict is the client's 409). An unchanged object is not written at all, so
/// its resourceVersion stays (upstream skips no-op writes the same way).
///
/// The first attempt starts from the watch cache's copy, as upstream's GuaranteedUpdate
/// starts from the cacher's: the compare-and-swap proves it current. Whatever a stale copy
/// could decide wrongly (a conflict, a pinned resourceVersion that differs, no change) is
/// decided again from the store before it reaches the client.
pub async fn guaranteed_update<F>(ctx: &Ctx, key: &str, mut mutate: F) -> Result<Updated, ApiError>
where
    F: FnMut(&Value) -> Result<Mutated, ApiError>,
{
    let name = ctx.name().to_string();
    let mut cached = ctx.state.cache_of(&ctx.rt).get(key);
    // Upstream retries a conflict until the request times out; a bound keeps a pathological
    // hot spot from spinning forever, and is generous enough for many racing writers.
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let (current, rev) = match cached.take() {
            Some(obj) => {
                let rev = obj.rev;
                (Current::Cached(obj), rev)
            }
            None => match read(ctx, key).await? {
                Some((v, rev)) => (Current::Stored(v), rev),
                None => return Err(ctx.not_found()),
            },
        };
        let stale_possible = current.is_cached();
        let Mutated {
            obj: mut new,
            pinned,
        } = mutate(current.value())?;
        if let Some(rv) = &pinned
            && rv.parse::<i64>().ok() != Some(rev)
        {
            if stale_possible {
                continue;
            }
            return Err(ApiError::modified(&ctx.rt.group, &ctx.rt.plural, &name));
        }
        objects::set_resource_version(&mut new, rev);
        if new == *current.value() {
            if stale_possible {
                continue;
            }
            return Ok(Updated::Object(new));
        }
        if ctx.dry_run() {
            return Ok(Updated::Object(new));
        }
        let retry = |e: &store::Error| {
            matches!(e, store::Error::Conflict { .. }) && (pinned.is_none() || stale_possible)
        };
        // The last finalizer removed from an object being deleted: finish the delete. An
        // object still inside its grace period (a terminating pod) stays until its owner
        // deletes it with grace 0, as upstream's ShouldDeleteDuringUpdate.
        if deletes_during_update(current.value(), &new) {
            match ctx.state.store.delete(key, Some(rev)).await {
                Ok(kv) => {
                    objects::set_resource_version(&mut new, kv.mod_revision);
                    return Ok(Updated::Deleted(new));
                }
                Err(e) if retry(&e) => continue,
                Err(e) => return Err(store_error(ctx, &name, e)),
            }
        }
        match ctx.state.store.update(key, encode(&new), rev).await {
            Ok(kv) => {
                objects::set_resource_version(&mut new, kv.mod_revision);
                return Ok(Updated::Object(new));
            }
            Err(e) if retry(&e) => continue,
            Err(e) => return Err(store_error(ctx, &name, e)),
        }
    }
    Err(ApiError::conflict(
        &ctx.rt.group,
        &ctx.rt.plural,
        &name,
        "too many concurrent updates; please try again",
    ))
}

/// Whether an update that produced `new` from `current` completes a pending delete: no
/// finalizers are left and the delete asked for no grace period.
fn deletes_during_update(current: &Value, new: &Value) -> bool {
    objects::is_deleting(current)
        && objects::finalizers(new).is_empty()
        // A namespace also waits for its `spec.finalizers` (upstream's namespace storage
        // overrides ShouldDeleteDuringUpdate the same way).
        && new["spec"]["finalizers"].as_array().is_none_or(|f| f.is_empty())
        && current["metadata"]["deletionGracePeriodSeconds"]
            .as_i64()
            .is_none_or(|g| g == 0)
}

/// Attaches `Warning: 299 - "…"` headers, as upstream does for field validation warnings.
pub fn add_warnings(resp: &mut http::Response<codec::Body>, warnings: &[String]) {
    for w in warnings {
        if let Ok(v) = http::HeaderValue::from_str(&strict::warning_header(w)) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}
