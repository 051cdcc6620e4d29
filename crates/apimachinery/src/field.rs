//! Field validation errors, rendered the way upstream's `field.Error` renders them
//! (`spec.replicas: Invalid value: -1: must be greater than or equal to 0`).

use std::fmt;

/// Upstream's `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
    TooLong,
    TooMany,
    NotFound,
    TypeInvalid,
    Internal,
}

impl ErrorKind {
    /// The `StatusCause.reason` upstream sends.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::NotFound => "FieldValueNotFound",
            ErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            ErrorKind::Internal => "InternalError",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid | ErrorKind::TypeInvalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::NotFound => "Not found",
            ErrorKind::Internal => "Internal error",
        }
    }

    /// Kinds whose rendering never shows the bad value.
    fn hides_value(self) -> bool {
        matches!(
            self,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong | ErrorKind::Internal
        )
    }
}

/// The offending value, as upstream would print it.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// Not shown at all.
    Omit,
    /// Printed as a quoted Go string (`"Foo_bar"`).
    Str(String),
    /// Printed as is: numbers, booleans, or a Go-syntax rendering such as
    /// `map[string]string(nil)`.
    Raw(String),
}

/// One validation failure at a field path.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: ErrorKind,
    pub field: String,
    pub value: BadValue,
    pub detail: String,
}

impl FieldError {
    pub fn new(kind: ErrorKind, field: impl Into<String>, value: BadValue, detail: &str) -> Self {
        FieldError {
            kind,
            field: field.into(),
            value,
            detail: detail.to_string(),
        }
    }

    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        Self::new(ErrorKind::Required, field, BadValue::Omit, detail)
    }

    pub fn invalid(field: impl Into<String>, value: BadValue, detail: &str) -> Self {
        Self::new(ErrorKind::Invalid, field, value, detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self::new(ErrorKind::Forbidden, field, BadValue::Omit, detail)
    }

    pub fn duplicate(field: impl Into<String>, value: BadValue) -> Self {
        Self::new(ErrorKind::Duplicate, field, value, "")
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: BadValue, valid: &[&str]) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        Self::new(ErrorKind::NotSupported, field, value, &detail)
    }

    /// What follows `field: ` — also the `StatusCause.message` upstream sends.
    pub fn cause_message(&self) -> String {
        let mut s = self.kind.label().to_string();
        if !self.kind.hides_value() {
            match &self.value {
                BadValue::Omit => {}
                BadValue::Str(v) => s.push_str(&format!(": {}", go_quote(v))),
                BadValue::Raw(v) => s.push_str(&format!(": {v}")),
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.cause_message())
    }
}

/// Go's `%q` for the printable strings validation deals in.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_upstream() {
        let e = FieldError::invalid(
            "metadata.name",
            BadValue::Str("Foo".into()),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters",
        );
        assert_eq!(
            e.to_string(),
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"
        );
        assert_eq!(
            FieldError::required("spec.selector", "").to_string(),
            "spec.selector: Required value"
        );
        let ns = FieldError::not_supported(
            "spec.type",
            BadValue::Str("Foo".into()),
            &["ClusterIP", "NodePort"],
        );
        assert_eq!(
            ns.to_string(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
        );
    }
}
