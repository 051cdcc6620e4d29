//! Field paths rendered like upstream's `field.Path` (`spec.containers[0].image`,
//! `data[tls.crt]`), and the error constructors of upstream's `field` package
//! (`field.Required`, `field.Invalid`, …) expressed over [`FieldError`].

use crate::field::{BadValue, ErrorKind, FieldError};

/// A field path. Cheap to extend: every step returns a new path, like upstream's `Child`,
/// `Index` and `Key`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A root path (`metadata`, `spec`, or `""` for the whole object).
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    /// `a.b`; the child of an empty root is just `b`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `a[3]`.
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// `a[key]` — upstream does not quote map keys.
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `field.Required`.
pub(crate) fn required(p: &Path, detail: &str) -> FieldError {
    FieldError::required(p.as_str(), detail)
}

/// `field.Invalid` with a value already rendered the way upstream prints it.
pub(crate) fn invalid(p: &Path, value: BadValue, detail: &str) -> FieldError {
    FieldError::invalid(p.as_str(), value, detail)
}

/// `field.Invalid` with a Go string value (printed quoted).
pub(crate) fn invalid_str(p: &Path, value: &str, detail: &str) -> FieldError {
    invalid(p, BadValue::Str(value.to_string()), detail)
}

/// `field.Invalid` with an integer value (printed bare).
pub(crate) fn invalid_int(p: &Path, value: i64, detail: &str) -> FieldError {
    invalid(p, BadValue::Raw(value.to_string()), detail)
}

/// `field.Invalid` with a value printed verbatim (Go `%#v` renderings, `null`).
pub(crate) fn invalid_raw(p: &Path, value: String, detail: &str) -> FieldError {
    invalid(p, BadValue::Raw(value), detail)
}

/// `field.Forbidden`.
pub(crate) fn forbidden(p: &Path, detail: &str) -> FieldError {
    FieldError::forbidden(p.as_str(), detail)
}

/// `field.Duplicate`.
pub(crate) fn duplicate(p: &Path, value: BadValue) -> FieldError {
    FieldError::duplicate(p.as_str(), value)
}

/// `field.NotSupported`; `valid` is listed in the order upstream passes it.
pub(crate) fn not_supported(p: &Path, value: BadValue, valid: &[&str]) -> FieldError {
    FieldError::not_supported(p.as_str(), value, valid)
}

/// `field.NotSupported` for a Go string value.
pub(crate) fn not_supported_str(p: &Path, value: &str, valid: &[&str]) -> FieldError {
    not_supported(p, BadValue::Str(value.to_string()), valid)
}

/// `field.NotFound`.
pub(crate) fn not_found_str(p: &Path, value: &str) -> FieldError {
    FieldError::new(
        ErrorKind::NotFound,
        p.as_str(),
        BadValue::Str(value.to_string()),
        "",
    )
}

/// `field.TooLong` (1.33 wording; the value is never shown).
pub(crate) fn too_long(p: &Path, max: usize) -> FieldError {
    FieldError::new(
        ErrorKind::TooLong,
        p.as_str(),
        BadValue::Omit,
        &format!("may not be more than {max} bytes"),
    )
}

/// `field.TooMany` (`Too many: 1001: must have at most 1000 items`).
pub(crate) fn too_many(p: &Path, actual: usize, max: usize) -> FieldError {
    FieldError::new(
        ErrorKind::TooMany,
        p.as_str(),
        BadValue::Raw(actual.to_string()),
        &format!("must have at most {max} items"),
    )
}

/// Upstream's `FieldImmutableErrorMsg`.
pub(crate) const FIELD_IMMUTABLE: &str = "field is immutable";

/// Upstream's `IsNegativeErrorMsg`.
pub(crate) const IS_NEGATIVE: &str = "must be greater than or equal to 0";

/// `ValidateNonnegativeField`.
pub(crate) fn nonnegative(value: i64, p: &Path) -> Option<FieldError> {
    (value < 0).then(|| invalid_int(p, value, IS_NEGATIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_field_path() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        assert_eq!(Path::new("data").key("tls.crt").as_str(), "data[tls.crt]");
        assert_eq!(Path::new("").child("x").as_str(), "x");
        assert_eq!(
            too_long(&Path::new("metadata").child("annotations"), 262144).to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            not_found_str(&Path::new("a"), "v").to_string(),
            "a: Not found: \"v\""
        );
    }
}
