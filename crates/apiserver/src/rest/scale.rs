//! The `scale` subresource: an autoscaling/v1 `Scale` view of a workload's replicas, read
//! and written through the parent object (what `kubectl scale` and autoscalers use).

use apimachinery::field::{BadValue, FieldError};
use apimachinery::selector::LabelSelector;
use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::{Value, json};

use super::Ctx;
use super::update::apply_update;
use super::write::{self, Mutated, Updated};
use crate::codec::{self, Body};
use crate::{objects, patching};

/// The Scale of a workload object.
fn scale_of(parent: &Value) -> Value {
    let meta = &parent["metadata"];
    let selector =
        serde_json::from_value::<metav1::LabelSelector>(parent["spec"]["selector"].clone())
            .ok()
            .and_then(|s| LabelSelector::from_api(Some(&s)).ok())
            .map(|s| s.to_string())
            .unwrap_or_default();
    let mut status = json!({"replicas": parent["status"]["replicas"].as_i64().unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = Value::String(selector);
    }
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": parent["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": status,
    })
}

pub async fn get(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    match write::read(ctx, &ctx.key()).await? {
        Some((parent, _)) => Ok(codec::json(StatusCode::OK, &scale_of(&parent))),
        None => Err(ctx.not_found()),
    }
}

/// PUT (a whole Scale) or PATCH (a patch of the Scale) → the parent's `spec.replicas`.
pub async fn write(ctx: &Ctx, body: Bytes, patch: bool) -> Result<Response<Body>, ApiError> {
    let incoming: Value = if patch {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    } else {
        let ct = codec::media_type(&ctx.headers, header::CONTENT_TYPE);
        codec::decode_object(&ct, &body)?
    };
    let kind = if patch {
        let ct = codec::media_type(&ctx.headers, header::CONTENT_TYPE);
        Some(patching::PatchKind::from_media_type(&ct, true)?)
    } else {
        None
    };
    let key = ctx.key();
    let updated = write::guaranteed_update(ctx, &key, |current| {
        let mut scale = scale_of(current);
        if let Some(meta) = scale.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        // A Scale has no lists, so every patch type merges the same way; the parent's
        // schema serves for strategic merge.
        let desired = match kind {
            Some(k) => patching::apply(k, &scale, &incoming, &ctx.rt)?,
            None => incoming.clone(),
        };
        let pinned = objects::resource_version(&desired).map(String::from);
        let replicas = match &desired["spec"]["replicas"] {
            Value::Null => 0,
            v => v.as_i64().ok_or_else(|| ApiError::bad_request(format!("Scale in version \"v1\" cannot be handled as a Scale: json: cannot unmarshal {} into Go struct field ScaleSpec.spec.replicas of type int32", codec::json_type_name(v))))?,
        };
        if replicas < 0 {
            return Err(ApiError::invalid("autoscaling", "Scale", ctx.name(), &[FieldError::invalid(
                "spec.replicas", BadValue::Raw(replicas.to_string()), "must be greater than or equal to 0")]));
        }
        let mut parent = current.clone();
        parent["spec"]["replicas"] = json!(replicas);
        // The parent is updated like a main-resource update: its status is kept and its
        // generation grows.
        Ok(Mutated { obj: apply_update(ctx, parent, current)?, pinned })
    })
    .await?;
    let (Updated::Object(parent) | Updated::Deleted(parent)) = updated;
    Ok(codec::json(StatusCode::OK, &scale_of(&parent)))
}
