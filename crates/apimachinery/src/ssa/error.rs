//! [`SsaError`] and the `Status` each failure is answered with, shaped like upstream's
//! (`Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1:
//! .spec.replicas`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};

use super::managed::Operation;
use crate::field::go_quote;
use crate::status::ApiError;

/// A field the applied config would change that another manager owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    pub operation: Operation,
    /// The other manager's apiVersion; empty for `Apply` managers, which conflict under
    /// their name alone.
    pub api_version: String,
    /// The subresource the other manager wrote through; empty for the main resource.
    pub subresource: String,
    /// The field, as upstream prints paths: `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
}

impl Conflict {
    /// Upstream's `printManager`: `"kubectl"` for appliers, `"kube-controller-manager" using
    /// apps/v1` for updaters, with ` with subresource "status"` after the name when set.
    pub fn manager_description(&self) -> String {
        let mut out = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(
                " with subresource {}",
                go_quote(&self.subresource)
            ));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// Why an apply failed. Messages are upstream's, since kubectl prints them verbatim.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SsaError {
    /// Fields owned by other managers would change; `force=true` takes them over. Ordered
    /// by manager, then field.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The config is not a JSON object.
    #[error("error decoding patch: the applied configuration is not an object")]
    NotAnObject,
    /// The config's `apiVersion`/`kind` are not the resource's (`apps/v1, Kind=Foo`).
    #[error("invalid object type: {0}")]
    InvalidObjectType(String),
    /// The config sets `metadata.managedFields`, which only the server writes on apply.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The config does not fit the kind's schema: undeclared fields, list items without
    /// their keys, duplicate items. `object` is `namespace/name; group/version, Kind=Kind`.
    #[error("failed to create typed patch object ({object}): {errors}")]
    TypedPatch { object: String, errors: String },
    /// The stored object's `managedFields` cannot be read.
    #[error("failed to decode managed fields: {0}")]
    DecodeManagedFields(String),
    /// Recording the fields of an object that had no managedFields failed.
    #[error("failed to create manager for existing fields: {0}")]
    BeforeFirstApply(String),
    /// The stored object could not be merged with the config (it breaks its own schema).
    #[error("failed to merge config: {0}")]
    Merge(String),
}

impl SsaError {
    /// The `Status` upstream answers with: 409 `Conflict` with one `FieldManagerConflict`
    /// cause per field, 400 `BadRequest` for a config of the wrong type or carrying
    /// managedFields, and 500 without a reason for the rest, which upstream never converts
    /// to a `Status` error.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            SsaError::Conflicts(conflicts) => {
                let causes = conflicts
                    .iter()
                    .map(|c| StatusCause {
                        reason: Some("FieldManagerConflict".into()),
                        message: Some(format!("conflict with {}", c.manager_description())),
                        field: Some(c.field.clone()),
                    })
                    .collect();
                ApiError(Box::new(Status {
                    code: Some(409),
                    reason: Some("Conflict".into()),
                    message: Some(self.to_string()),
                    status: Some("Failure".into()),
                    details: Some(StatusDetails {
                        causes: Some(causes),
                        ..StatusDetails::default()
                    }),
                    ..Status::default()
                }))
            }
            SsaError::NotAnObject
            | SsaError::InvalidObjectType(_)
            | SsaError::ManagedFieldsInConfig => ApiError::bad_request(self.to_string()),
            SsaError::TypedPatch { .. }
            | SsaError::DecodeManagedFields(_)
            | SsaError::BeforeFirstApply(_)
            | SsaError::Merge(_) => ApiError(Box::new(Status {
                code: Some(500),
                message: Some(self.to_string()),
                status: Some("Failure".into()),
                ..Status::default()
            })),
        }
    }
}

/// Upstream's `getConflictMessage`: one conflict inline; several grouped by manager
/// (managers sorted by identifier), one `- field` line each.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_description(),
            c.field
        );
    }
    let mut lines: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for c in conflicts {
        let manager = c.manager_description();
        if last.as_ref() != Some(&manager) {
            lines.push(format!("conflicts with {manager}:"));
            last = Some(manager);
        }
        lines.push(format!("- {}", c.field));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}
