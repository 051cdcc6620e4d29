//! API errors as Kubernetes `Status` objects.
//!
//! Messages follow upstream's shapes exactly, because kubectl prints them verbatim and users
//! (and scripts) match on them: `pods "x" not found`, `deployments.apps "x" already exists`,
//! `Operation cannot be fulfilled on pods "x": …`, `Deployment.apps "x" is invalid: …`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

use crate::field::FieldError;

/// A failed API request: the `Status` body and the HTTP code it is sent with.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError(pub Box<Status>);

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.message.as_deref().unwrap_or("unknown error"))
    }
}

impl std::error::Error for ApiError {}

/// `pods` for the core group, `deployments.apps` otherwise — upstream's
/// `GroupResource.String()`.
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// `Pod` for the core group, `Deployment.apps` otherwise — upstream's `GroupKind.String()`.
pub fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError(Box::new(Status {
            code: Some(code.into()),
            reason: Some(reason.to_string()),
            message: Some(message.into()),
            status: Some("Failure".to_string()),
            ..Status::default()
        }))
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.0.details = Some(StatusDetails {
            group: Some(group.to_string()).filter(|g| !g.is_empty()),
            kind: Some(kind.to_string()).filter(|k| !k.is_empty()),
            name: Some(name.to_string()).filter(|n| !n.is_empty()),
            ..StatusDetails::default()
        });
        self
    }

    pub fn code(&self) -> u16 {
        self.0
            .code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500)
    }

    pub fn reason(&self) -> &str {
        self.0.reason.as_deref().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.0.message.as_deref().unwrap_or("")
    }

    /// 404 `pods "x" not found`; `resource` is the plural.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "{} \"{name}\" not found",
            qualified_resource(group, resource)
        );
        Self::new(404, "NotFound", msg).with_details(group, resource, name)
    }

    /// 409 `pods "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "{} \"{name}\" already exists",
            qualified_resource(group, resource)
        );
        Self::new(409, "AlreadyExists", msg).with_details(group, resource, name)
    }

    /// 409 Conflict with a reason of our own, e.g. a stale resourceVersion.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            qualified_resource(group, resource)
        );
        Self::new(409, "Conflict", msg).with_details(group, resource, name)
    }

    /// The conflict upstream returns for a stale `resourceVersion` on update.
    pub fn modified(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 `Deployment.apps "x" is invalid: …` with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        // The message lists each distinct error once (upstream's aggregate de-duplicates);
        // the causes keep every one.
        let mut rendered: Vec<String> = Vec::new();
        for e in errors {
            let text = e.to_string();
            if !rendered.contains(&text) {
                rendered.push(text);
            }
        }
        let body = match rendered.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let msg = format!(
            "{} \"{name}\" is invalid: {body}",
            qualified_kind(group, kind)
        );
        let mut err = Self::new(422, "Invalid", msg).with_details(group, kind, name);
        if let Some(details) = err.0.details.as_mut() {
            details.causes = Some(
                errors
                    .iter()
                    .map(|e| StatusCause {
                        reason: Some(e.kind.reason().to_string()),
                        message: Some(e.cause_message()),
                        field: Some(e.field.clone()),
                    })
                    .collect(),
            );
        }
        err
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 410 `Expired`, for a resourceVersion or continue token older than history.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 410 `Gone`, for a watch from a compacted resourceVersion.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message)
    }

    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json; got {content_type:?}"
            ),
        )
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "TooManyRequests", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// Serialized as a `v1 Status` object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.0).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("kind".into(), "Status".into());
            obj.insert("apiVersion".into(), "v1".into());
            obj.entry("metadata")
                .or_insert_with(|| serde_json::json!({}));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::FieldError;

    #[test]
    fn not_found_message_matches_upstream() {
        assert_eq!(
            ApiError::not_found("", "pods", "x").message(),
            "pods \"x\" not found"
        );
        assert_eq!(
            ApiError::already_exists("apps", "deployments", "x").message(),
            "deployments.apps \"x\" already exists"
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "apps",
            "Deployment",
            "nginx",
            &[FieldError::required("spec.selector", "")],
        );
        assert_eq!(e.code(), 422);
        assert_eq!(
            e.message(),
            "Deployment.apps \"nginx\" is invalid: spec.selector: Required value"
        );
        let v = e.to_json();
        assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(v["details"]["causes"][0]["field"], "spec.selector");
        assert_eq!(v["kind"], "Status");
    }
}
