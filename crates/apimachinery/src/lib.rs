//! Kubernetes API machinery shared by the API server and its clients.
//!
//! # Layout
//! - `registry.rs`: every served resource (group, version, kind, plural, scope, short names,
//!   categories, subresources) built from k8s-openapi types, plus typed hooks.
//! - `status.rs`: [`status::ApiError`], a Kubernetes `Status` with upstream's codes, reasons
//!   and message shapes.
//! - `field.rs`: field-path validation errors (`spec.selector: Required value`).
//! - `selector/`: label selectors (equality and set-based) and field selectors.
//! - `validation/`: name rules and per-kind validation.
//! - `smp/`: strategic merge patch, with upstream's patch strategies and merge keys per field.
//! - `strict.rs`: unknown and duplicate field detection for `fieldValidation=Strict`.
//! - `ssa/`: server-side apply and `managedFields` tracking, with upstream's merge, prune
//!   and conflict rules.

pub mod defaults;
pub mod field;
/// Resource quantities as integers (`Quantity.Value()`, `MilliValue()`).
pub mod quantity {
    pub use crate::validation::quantity::{milli_value, value};
}
pub mod registry;
pub mod selector;
pub mod smp;
pub mod ssa;
pub mod status;
pub mod strict;
pub mod validation;
