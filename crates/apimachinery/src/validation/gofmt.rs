//! Go-syntax (`%#v`) renderings of bad values.
//!
//! Upstream's `field.Error` prints composite bad values with `%#v` (Kubernetes 1.33 has no
//! `Stringer` lookup through pointers), so users see `map[string]string(nil)` or
//! `v1.LabelSelector{MatchLabels:…}`. These functions reproduce the renderings for the types our
//! validators report. A JSON `null`/absent field is Go's `nil`; `{}`/`[]` are empty but non-nil.

use serde_json::Value;

use crate::field::go_quote;

use super::json::{get, sorted};

/// `map[string]string{"a":"b", "c":"d"}` (keys sorted, as `fmt` does) or `map[string]string(nil)`.
pub(crate) fn string_map(v: &Value) -> String {
    match v.as_object() {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let parts: Vec<String> = sorted(m)
                .into_iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

/// `[]string{"a", "b"}` or `[]string(nil)`.
pub(crate) fn string_slice(v: &Value) -> String {
    match v.as_array() {
        None => "[]string(nil)".to_string(),
        Some(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|s| go_quote(s.as_str().unwrap_or("")))
                .collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
    }
}

/// A `metav1.LabelSelector` value (upstream dereferences the `*LabelSelector`):
/// `v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
pub(crate) fn label_selector(v: &Value) -> String {
    let exprs = match get(v, "matchExpressions").as_array() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(items) => {
            let parts: Vec<String> = items.iter().map(label_selector_requirement).collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        string_map(get(v, "matchLabels"))
    )
}

fn label_selector_requirement(v: &Value) -> String {
    format!(
        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
        go_quote(get(v, "key").as_str().unwrap_or("")),
        go_quote(get(v, "operator").as_str().unwrap_or("")),
        string_slice(get(v, "values"))
    )
}

/// An `intstr.IntOrString` value: `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
        other => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            other.as_i64().unwrap_or(0)
        ),
    }
}

/// A `metav1.Time` printed through its `String()` (`2024-01-02 03:04:05 +0000 UTC`).
/// Timestamps round-tripped through k8s-openapi are RFC 3339 in UTC.
pub(crate) fn time(v: &Value) -> String {
    let s = v.as_str().unwrap_or("");
    if s.is_empty() {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    }
    match s.strip_suffix('Z').and_then(|t| t.split_once('T')) {
        Some((date, clock)) => format!("{date} {clock} +0000 UTC"),
        None => s.to_string(),
    }
}

/// A pointer field nested in a `%#v` rendering: `(*T)(nil)`, or `(*T)(0xc…)` when set. Go
/// prints the pointee's address, which differs from run to run; a fixed placeholder stands
/// in for it, so messages carrying one can match upstream's only up to that address.
pub(crate) fn go_pointer(ty: &str, v: &Value) -> String {
    if v.is_null() {
        format!("(*{ty})(nil)")
    } else {
        format!("(*{ty})(0xc000000000)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_syntax_renderings() {
        let cases = [
            (string_map(&Value::Null), "map[string]string(nil)"),
            (string_map(&json!({})), "map[string]string{}"),
            (
                string_map(&json!({"tier": "web", "app": "x"})),
                r#"map[string]string{"app":"x", "tier":"web"}"#,
            ),
            (string_slice(&json!(["a", "b"])), r#"[]string{"a", "b"}"#),
            (
                label_selector(&json!({"matchLabels": {"app": "x"}})),
                r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#,
            ),
            (
                label_selector(
                    &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}),
                ),
                r#"v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"a", Operator:"In", Values:[]string{"b"}}}}"#,
            ),
            (
                int_or_string(&json!("25")),
                r#"intstr.IntOrString{Type:1, IntVal:0, StrVal:"25"}"#,
            ),
            (
                int_or_string(&json!(-1)),
                r#"intstr.IntOrString{Type:0, IntVal:-1, StrVal:""}"#,
            ),
            (
                time(&json!("2024-01-02T03:04:05Z")),
                "2024-01-02 03:04:05 +0000 UTC",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
