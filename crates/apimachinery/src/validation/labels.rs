//! Label maps and label selectors: upstream's `metav1/validation.ValidateLabels`,
//! `ValidateLabelSelector`, and the parts of `metav1.LabelSelectorAsSelector` validation needs
//! (whether a selector parses, is empty, and matches a label set).

use serde_json::Value;

use crate::field::{BadValue, FieldError};

use super::json::{get, list, sorted, str_of};
use super::name::{is_qualified_name, is_valid_label_value};
use super::path::{Path, forbidden, invalid_str, required};

/// `ValidateLabelName`: a label key must be a qualified name.
pub fn validate_label_name(key: &str, path: &Path) -> Vec<FieldError> {
    is_qualified_name(key)
        .iter()
        .map(|msg| invalid_str(path, key, msg))
        .collect()
}

/// `ValidateLabels`: keys are qualified names, values label values. All errors point at the
/// map itself (`metadata.labels`), as upstream's do.
pub fn validate_labels(labels: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = labels.as_object() {
        for (k, v) in sorted(m) {
            errs.extend(validate_label_name(k, path));
            let v = v.as_str().unwrap_or("");
            for msg in is_valid_label_value(v) {
                errs.push(invalid_str(path, v, &msg));
            }
        }
    }
    errs
}

/// `ValidateLabelSelector`. `allow_invalid_values` mirrors
/// `LabelSelectorValidationOptions.AllowInvalidLabelValueInSelector` (false for workload
/// selectors, which "validate strictly").
pub fn validate_label_selector(
    selector: &Value,
    allow_invalid_values: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !selector.is_object() {
        return errs;
    }
    errs.extend(validate_labels(
        get(selector, "matchLabels"),
        &path.child("matchLabels"),
    ));
    for (i, expr) in list(selector, "matchExpressions").iter().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = list(expr, "values");
        match str_of(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(invalid_str(
                &p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(str_of(expr, "key"), &p.child("key")));
        if !allow_invalid_values {
            for (j, v) in values.iter().enumerate() {
                let v = v.as_str().unwrap_or("");
                for msg in is_valid_label_value(v) {
                    errs.push(invalid_str(&p.child("values").index(j), v, &msg));
                }
            }
        }
    }
    errs
}

/// A parsed selector, as `metav1.LabelSelectorAsSelector` returns it.
#[derive(Debug, PartialEq)]
pub(crate) enum Selector {
    /// A nil selector: `labels.Nothing()`, which is *not* empty and matches nothing.
    Nothing,
    /// A selector with no requirements: `labels.Everything()`.
    Everything,
    Requirements(Vec<Requirement>),
}

#[derive(Debug, PartialEq)]
pub(crate) struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// `metav1.LabelSelectorAsSelector`: `None` when the selector does not parse (bad keys,
/// values or operators), which is when upstream's conversion returns an error.
pub(crate) fn as_selector(selector: &Value) -> Option<Selector> {
    if !selector.is_object() {
        return Some(Selector::Nothing);
    }
    let labels = get(selector, "matchLabels").as_object();
    let exprs = list(selector, "matchExpressions");
    if labels.is_none_or(|m| m.is_empty()) && exprs.is_empty() {
        return Some(Selector::Everything);
    }
    let mut reqs = Vec::new();
    for (k, v) in labels.map(sorted).unwrap_or_default() {
        let v = v.as_str().unwrap_or("");
        if !is_qualified_name(k).is_empty() || !is_valid_label_value(v).is_empty() {
            return None;
        }
        reqs.push(Requirement {
            key: k.to_string(),
            op: Op::In,
            values: vec![v.to_string()],
        });
    }
    for expr in exprs {
        let key = str_of(expr, "key");
        let values: Vec<String> = list(expr, "values")
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect();
        let op = match str_of(expr, "operator") {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            _ => return None,
        };
        let count_ok = match op {
            Op::In | Op::NotIn => !values.is_empty(),
            Op::Exists | Op::DoesNotExist => values.is_empty(),
        };
        if !count_ok
            || !is_qualified_name(key).is_empty()
            || values.iter().any(|v| !is_valid_label_value(v).is_empty())
        {
            return None;
        }
        reqs.push(Requirement {
            key: key.to_string(),
            op,
            values,
        });
    }
    Some(Selector::Requirements(reqs))
}

impl Selector {
    /// `labels.Selector.Empty()`.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::Everything)
    }

    /// `labels.Selector.Matches(labels.Set(m))` for a JSON label map (absent = no labels).
    pub(crate) fn matches(&self, labels: &Value) -> bool {
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        match self {
            Selector::Nothing => false,
            Selector::Everything => true,
            Selector::Requirements(reqs) => reqs.iter().all(|r| match r.op {
                Op::In => label(&r.key).is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => label(&r.key).is_none_or(|v| r.values.iter().all(|x| x != v)),
                Op::Exists => label(&r.key).is_some(),
                Op::DoesNotExist => label(&r.key).is_none(),
            }),
        }
    }
}

/// A `*metav1.LabelSelector` bad value, rendered the way upstream's `field.Invalid` prints it.
pub(crate) fn selector_value(selector: &Value) -> BadValue {
    BadValue::Raw(super::gofmt::label_selector(selector))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_semantics() {
        let cases = [
            (Value::Null, json!({"app": "x"}), false, false),
            (json!({}), json!({}), true, true),
            (
                json!({"matchLabels": {"app": "x"}}),
                json!({"app": "x", "b": "c"}),
                false,
                true,
            ),
            (
                json!({"matchLabels": {"app": "x"}}),
                Value::Null,
                false,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}),
                json!({"app": "x"}),
                false,
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                json!({"app": "x"}),
                false,
                false,
            ),
        ];
        for (sel, labels, empty, matches) in cases {
            let s = as_selector(&sel);
            let s = s.as_ref();
            assert_eq!(s.map(Selector::is_empty), Some(empty), "{sel}");
            assert_eq!(
                s.map(|s| s.matches(&labels)),
                Some(matches),
                "{sel} vs {labels}"
            );
        }
        assert_eq!(
            as_selector(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            None
        );
    }

    #[test]
    fn selector_validation_messages() {
        let sel = json!({"matchLabels": {"app": "-x"}, "matchExpressions": [
            {"key": "a", "operator": "In"},
            {"key": "b", "operator": "Exists", "values": ["x"]},
            {"key": "c", "operator": "Foo"},
        ]});
        let errs: Vec<String> =
            validate_label_selector(&sel, false, &Path::new("spec").child("selector"))
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(
            errs,
            vec![
                "spec.selector.matchLabels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Foo\": not a valid selector operator",
            ]
        );
    }
}
