//! Label and field selectors, as the `labelSelector` / `fieldSelector` query parameters and
//! the `metav1.LabelSelector` API type express them.
//!
//! Both follow upstream apimachinery (`k8s.io/apimachinery/pkg/labels` and `…/pkg/fields`)
//! to the letter, including the exact error texts: the API server returns them verbatim in
//! a 400 `BadRequest`, and kubectl prints them.
//!
//! # Layout
//! - `label.rs`: [`LabelSelector`] — requirements, matching, canonical rendering, key/value
//!   validation and conversion from `metav1.LabelSelector`.
//! - `label/parse.rs`: the query-string lexer and parser (`a in (x,y),!b,c!=d`).
//! - `field.rs`: [`FieldSelector`] — parsing with backslash escapes, the per-kind field
//!   labels upstream's apiserver accepts, and matching against JSON objects.

pub mod field;
pub mod label;

pub use field::{FieldLabels, FieldSelector};
pub use label::LabelSelector;
