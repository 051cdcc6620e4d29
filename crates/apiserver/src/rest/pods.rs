//! Pod subresources a scheduler and a drain use: `binding` (assign to a node) and
//! `eviction` (delete unless a PodDisruptionBudget forbids it).

use apimachinery::field::FieldError;
use apimachinery::selector::LabelSelector;
use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause;
use serde_json::{Value, json};

use super::Ctx;
use super::write::{self, Mutated};
use crate::codec::{self, Body};
use crate::objects;

fn success() -> Response<Body> {
    codec::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

fn body_object(ctx: &Ctx, body: &Bytes) -> Result<Value, ApiError> {
    let ct = codec::media_type(&ctx.headers, header::CONTENT_TYPE);
    codec::decode_object(&ct, body)
}

/// `POST pods/<name>/binding`: sets `spec.nodeName` once, with the PodScheduled condition
/// (upstream's `assignPod`).
pub async fn bind(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let binding = body_object(ctx, &body)?;
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            ctx.name(),
            &[FieldError::required("target.name", "")],
        ));
    }
    if let Some(kind) = binding["target"]["kind"]
        .as_str()
        .filter(|k| !k.is_empty() && *k != "Node")
    {
        return Err(ApiError::invalid(
            "",
            "Binding",
            ctx.name(),
            &[FieldError::not_supported(
                "target.kind",
                apimachinery::field::BadValue::Str(kind.to_string()),
                &["Node", "<empty>"],
            )],
        ));
    }
    let conflict = |why: String| ApiError::conflict("", "pods/binding", ctx.name(), &why);
    let key = ctx.key();
    let annotations = binding["metadata"]["annotations"].clone();
    write::guaranteed_update(ctx, &key, |current| {
        let name = objects::name(current).unwrap_or("");
        if objects::is_deleting(current) {
            return Err(conflict(format!(
                "pod {name} is being deleted, cannot be assigned to a host"
            )));
        }
        if let Some(existing) = current["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            return Err(conflict(format!(
                "pod {name} is already assigned to node {existing:?}"
            )));
        }
        let mut pod = current.clone();
        pod["spec"]["nodeName"] = json!(node);
        if let Some(a) = annotations.as_object() {
            let meta = objects::meta_mut(&mut pod);
            let target = meta.entry("annotations").or_insert_with(|| json!({}));
            for (k, v) in a {
                target[k] = v.clone();
            }
        }
        set_condition(&mut pod, "PodScheduled", "True");
        Ok(Mutated {
            obj: pod,
            pinned: None,
        })
    })
    .await?;
    Ok(success())
}

fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    let now = objects::now();
    let conditions = pod["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = conditions else {
        return;
    };
    match list.iter_mut().find(|c| c["type"] == kind) {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
        }
        None => list.push(json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now})),
    }
}

fn too_many_requests(cause: String) -> ApiError {
    let mut e = ApiError::too_many_requests(
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    e.0.details = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("DisruptionBudget".into()),
                message: Some(cause),
                field: None,
            }]),
            ..Default::default()
        },
    );
    e
}

/// `POST pods/<name>/eviction`: deletes the pod unless its PodDisruptionBudget has no
/// disruption left (429), recording the disruption in the budget's status first.
pub async fn evict(ctx: &Ctx, body: Bytes) -> Result<Response<Body>, ApiError> {
    let eviction = body_object(ctx, &body)?;
    let Some((pod, _)) = write::read(ctx, &ctx.key()).await? else {
        return Err(ctx.not_found());
    };
    let ns = ctx.namespace().unwrap_or("").to_string();
    // Pods that are done, not yet running, or already going need no budget (upstream's
    // `canIgnorePDB`).
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    let ignore_budget =
        matches!(phase, "Succeeded" | "Failed" | "Pending") || objects::is_deleting(&pod);
    if !ignore_budget {
        let registry = ctx.state.registry();
        if let Some(pdb_rt) = registry.get("policy", "v1", "poddisruptionbudgets") {
            let prefix = format!("{}{ns}/", pdb_rt.storage_prefix());
            let labels = &pod["metadata"]["labels"];
            let listed = ctx
                .state
                .store
                .list(store::ListRequest {
                    prefix: &prefix,
                    ..Default::default()
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let matching: Vec<(Value, store::KeyValue)> = listed
                .kvs
                .into_iter()
                .filter_map(|kv| {
                    serde_json::from_slice::<Value>(&kv.value)
                        .ok()
                        .map(|v| (v, kv))
                })
                .filter(|(pdb, _)| {
                    serde_json::from_value::<metav1::LabelSelector>(pdb["spec"]["selector"].clone())
                        .ok()
                        .and_then(|s| LabelSelector::from_api(Some(&s)).ok())
                        .is_some_and(|s| {
                            !s.is_empty()
                                && s.matches_object(&json!({"metadata": {"labels": labels}}))
                        })
                })
                .collect();
            if matching.len() > 1 {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
            if let Some((mut pdb, kv)) = matching.into_iter().next() {
                let name = objects::name(&pdb).unwrap_or("").to_string();
                let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
                if pdb["status"]["observedGeneration"].as_i64().unwrap_or(-1) < generation {
                    return Err(too_many_requests(format!(
                        "The disruption budget {name} is still being processed by the server."
                    )));
                }
                let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
                if allowed <= 0 {
                    let desired = pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0);
                    let current = pdb["status"]["currentHealthy"].as_i64().unwrap_or(0);
                    return Err(too_many_requests(format!(
                        "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
                    )));
                }
                pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
                let pod_name = ctx.name().to_string();
                pdb["status"]["disruptedPods"][pod_name] = json!(objects::now());
                match ctx
                    .state
                    .store
                    .update(&kv.key, write::encode(&pdb), kv.mod_revision)
                    .await
                {
                    Ok(_) => {}
                    Err(store::Error::Conflict { .. }) => {
                        return Err(ApiError::conflict(
                            "policy",
                            "poddisruptionbudgets",
                            &name,
                            "the object has been modified; please apply your changes to the latest version and try again",
                        ));
                    }
                    Err(e) => return Err(ApiError::internal(e.to_string())),
                }
            }
        }
    }
    let options = serde_json::to_vec(&eviction["deleteOptions"]).unwrap_or_default();
    let options = if eviction["deleteOptions"].is_object() {
        Bytes::from(options)
    } else {
        Bytes::new()
    };
    super::delete::delete_object(ctx, options).await?;
    Ok(success())
}
