//! Patch formats: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge
//! patch; server-side apply is refused until it is implemented.

use apimachinery::registry::ResourceType;
use apimachinery::status::ApiError;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    /// The patch type of a `Content-Type`; strategic merge needs a built-in kind (its
    /// merge keys come from the Go types upstream), so custom resources get 415 as upstream.
    pub fn from_media_type(media: &str, builtin: bool) -> Result<PatchKind, ApiError> {
        match media {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" if builtin => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}; got {other:?}",
                    if builtin {
                        ", application/strategic-merge-patch+json"
                    } else {
                        ""
                    }
                ),
            )),
        }
    }
}

/// Applies a patch to the current object.
pub fn apply(
    kind: PatchKind,
    current: &Value,
    patch: &Value,
    rt: &ResourceType,
) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchKind::Merge | PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(format!(
                    "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    crate::codec::json_type_name(patch)
                )));
            }
            if kind == PatchKind::Strategic {
                apimachinery::smp::apply(&mut doc, patch, rt).map_err(|e| {
                    let (code, reason) = match e.http_status() {
                        400 => (400, "BadRequest"),
                        422 => (422, "Invalid"),
                        // Upstream passes other patch failures through as internal errors.
                        _ => (500, "InternalError"),
                    };
                    ApiError::new(code, reason, e.to_string())
                })?;
            } else {
                json_patch::merge(&mut doc, patch);
            }
        }
        PatchKind::Apply => {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
    }
    Ok(doc)
}
