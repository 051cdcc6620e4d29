//! DELETE and DELETECOLLECTION: preconditions, graceful deletion of scheduled pods,
//! finalizers (`deletionTimestamp` first, removal once the last finalizer is gone) and
//! propagation policies (the `orphan` / `foregroundDeletion` finalizers the garbage
//! collector acts on).

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::Ctx;
use super::filter::Filter;
use super::write::{self, store_error};
use crate::codec::{self, Body};
use crate::objects;

/// The parts of `DeleteOptions` the server acts on.
#[derive(Debug, Default)]
struct Options {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

fn options(ctx: &Ctx, body: &Bytes) -> Result<Options, ApiError> {
    let mut o = Options::default();
    if !body.iter().all(|b| b.is_ascii_whitespace()) {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode DeleteOptions: {e}")))?;
        o.grace = v["gracePeriodSeconds"].as_i64();
        o.propagation = v["propagationPolicy"].as_str().map(String::from);
        if v["orphanDependents"] == json!(true) {
            o.propagation.get_or_insert_with(|| "Orphan".into());
        }
        o.uid = v["preconditions"]["uid"].as_str().map(String::from);
        o.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    if let Some(g) = ctx.query.value("gracePeriodSeconds") {
        o.grace = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    if let Some(p) = ctx.query.value("propagationPolicy") {
        o.propagation = Some(p.to_string());
    }
    match o.propagation.as_deref() {
        None | Some("Orphan" | "Background" | "Foreground") => Ok(o),
        Some(other) => Err(ApiError::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            &[apimachinery::field::FieldError::not_supported(
                "propagationPolicy",
                apimachinery::field::BadValue::Str(other.to_string()),
                &["Foreground", "Background", "Orphan", "nil"],
            )],
        )),
    }
}

/// What happened to the object.
pub(super) enum Outcome {
    /// Gone from the store.
    Deleted(Value),
    /// Marked for deletion (finalizers or a grace period still pending).
    Pending(Value),
}

pub async fn delete(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let outcome = delete_object(ctx, body).await?;
    if let Outcome::Deleted(obj) = &outcome
        && !ctx.dry_run()
    {
        crate::admission::after_delete(ctx, obj).await;
    }
    let keep_object =
        ctx.rt.group.is_empty() && matches!(ctx.rt.kind.as_str(), "Pod" | "Namespace");
    Ok(match outcome {
        Outcome::Pending(obj) => codec::json(StatusCode::OK, &obj),
        Outcome::Deleted(obj) if keep_object => codec::json(StatusCode::OK, &obj),
        Outcome::Deleted(obj) => codec::json(StatusCode::OK, &success(ctx, &obj)),
    })
}

/// Deletes the request's object with the DeleteOptions in `body`.
pub(super) async fn delete_object(ctx: &Ctx, body: Bytes) -> Result<Outcome, ApiError> {
    let opts = options(ctx, &body)?;
    delete_one(ctx, &ctx.key(), ctx.name(), &opts).await
}

/// Upstream's `Status{Success}` naming the deleted object.
fn success(ctx: &Ctx, obj: &Value) -> Value {
    let mut details = json!({"name": objects::name(obj).unwrap_or(""), "kind": ctx.rt.plural});
    if !ctx.rt.group.is_empty() {
        details["group"] = Value::String(ctx.rt.group.clone());
    }
    if let Some(uid) = objects::uid(obj) {
        details["uid"] = Value::String(uid.to_string());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

async fn delete_one(ctx: &Ctx, key: &str, name: &str, opts: &Options) -> Result<Outcome, ApiError> {
    let rt = &ctx.rt;
    for _ in 0..16 {
        let Some((current, rev)) = write::read(ctx, key).await? else {
            return Err(ApiError::not_found(&rt.group, &rt.plural, name));
        };
        check_preconditions(ctx, name, &current, opts)?;
        let grace = grace_period(ctx, &current, opts);
        let mut finalizers = objects::finalizers(&current);
        for (policy, finalizer) in [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")] {
            if opts.propagation.as_deref() == Some(policy)
                && !finalizers.iter().any(|f| f == finalizer)
            {
                finalizers.push(finalizer.to_string());
            }
        }
        let namespace_finalizers = rt.group.is_empty()
            && rt.kind == "Namespace"
            && current["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
        if finalizers.is_empty() && grace == 0 && !namespace_finalizers {
            if ctx.dry_run() {
                return Ok(Outcome::Deleted(current));
            }
            return match ctx.state.store.delete(key, Some(rev)).await {
                Ok(_) => Ok(Outcome::Deleted(current)),
                Err(store::Error::Conflict { .. }) => continue,
                Err(e) => Err(store_error(ctx, name, e)),
            };
        }
        // Graceful: mark it; whoever owns the finalizers (or the kubelet) finishes.
        let mut marked = current.clone();
        let meta = objects::meta_mut(&mut marked);
        if meta.get("deletionTimestamp").is_none() {
            meta.insert(
                "deletionTimestamp".into(),
                Value::String(objects::now_plus(grace)),
            );
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        } else if let Some(old) = meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
        {
            // A shorter grace period may replace a longer one, never the reverse.
            if grace < old {
                meta.insert(
                    "deletionTimestamp".into(),
                    Value::String(objects::now_plus(grace)),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
        }
        if !finalizers.is_empty() {
            meta.insert("finalizers".into(), json!(finalizers));
        }
        if rt.group.is_empty() && rt.kind == "Namespace" {
            marked["status"]["phase"] = json!("Terminating");
        }
        if rt.tracks_generation && !objects::is_deleting(&current) {
            let g = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            objects::meta_mut(&mut marked).insert("generation".into(), json!(g));
        }
        if marked == current || ctx.dry_run() {
            return Ok(Outcome::Pending(marked));
        }
        return match ctx
            .state
            .store
            .update(key, write::encode(&marked), rev)
            .await
        {
            Ok(kv) => {
                objects::set_resource_version(&mut marked, kv.mod_revision);
                Ok(Outcome::Pending(marked))
            }
            Err(store::Error::Conflict { .. }) => continue,
            Err(e) => Err(store_error(ctx, name, e)),
        };
    }
    Err(ApiError::conflict(
        &rt.group,
        &rt.plural,
        name,
        "too many concurrent updates; please try again",
    ))
}

fn check_preconditions(
    ctx: &Ctx,
    name: &str,
    current: &Value,
    opts: &Options,
) -> Result<(), ApiError> {
    let rt = &ctx.rt;
    if let Some(uid) = &opts.uid {
        let actual = objects::uid(current).unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.resource_version {
        let actual = objects::resource_version(current).unwrap_or("");
        if rv != actual {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// Only pods are deleted gracefully, and only once a node runs them: an unscheduled or
/// finished pod goes at once (upstream's pod strategy `CheckGracefulDelete`).
fn grace_period(ctx: &Ctx, obj: &Value, opts: &Options) -> i64 {
    if !(ctx.rt.group.is_empty() && ctx.rt.kind == "Pod") {
        return 0;
    }
    let scheduled = obj["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        obj["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !scheduled || finished {
        return 0;
    }
    let default = obj["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30);
    opts.grace.unwrap_or(default).max(0)
}

pub async fn delete_collection(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let opts = options(ctx, &body)?;
    let filter = Filter::from_ctx(ctx)?;
    super::list::cache_is_fresh(ctx).await?;
    let prefix = super::list::scope_prefix(ctx);
    let objs = ctx.state.cache_of(&ctx.rt).list(Some(&prefix), None);
    for obj in objs.iter().filter(|o| filter.matches(&o.value)) {
        let name = objects::name(&obj.value).unwrap_or("").to_string();
        match delete_one(ctx, &obj.key, &name, &opts).await {
            Ok(_) => {}
            Err(e) if e.code() == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(codec::json(
        StatusCode::OK,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    ))
}
