//! Label selectors: a conjunction of requirements on an object's `metadata.labels`.
//!
//! Mirrors upstream `k8s.io/apimachinery/pkg/labels`: the same operators, the same key and
//! value validation (with upstream's error texts), requirements sorted by key, and the same
//! canonical rendering (`a=b,c in (x,y),!d`).
//!
//! Two selectors are special, and upstream tells them apart:
//! - **everything** ([`LabelSelector::everything`], an empty query string, or an empty
//!   `metav1.LabelSelector {}`) matches every object;
//! - **nothing** ([`LabelSelector::nothing`], or a *null* `metav1.LabelSelector`) matches no
//!   object. Controllers rely on this: a workload whose selector is null selects no pods.

mod parse;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};
use crate::status::ApiError;

/// Why a selector could not be built. Every message is upstream's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The query string is not a selector: `found ',', expected: identifier after ','`, or
    /// `unable to parse requirement: …` for a requirement that is malformed or invalid.
    #[error("{0}")]
    Parse(String),
    /// A requirement built from parts (API object or code) failed validation:
    /// `values[0][app]: Invalid value: "a b": a valid label must be …`.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `matchExpressions` operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnknownOperator(String),
}

/// Selector errors reach clients as 400 `BadRequest` with the message unchanged, as upstream's
/// list handler does (`errors.NewBadRequest(err.Error())`).
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// Upstream's `selection.Operator` as label requirements use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    /// `a=b`
    Equals,
    /// `a==b`: matches like [`Operator::Equals`] but renders as written.
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    /// `a>1`: the label must be an integer greater than the value.
    GreaterThan,
    /// `a<1`
    LessThan,
}

impl Operator {
    /// The upstream operator string (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`, `gt`,
    /// `lt`) as it appears in upstream's error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// Read access to a label set, so one matcher serves typed maps and raw JSON objects.
pub trait Labels {
    /// The value of `key`, or `None` when the label is absent.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON `metadata.labels` object. A non-string value counts as absent: a stored object
/// has passed validation, so this only guards against garbage.
impl Labels for serde_json::Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// One requirement: a key, an operator and (for most operators) values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// In the order given; rendering sorts a copy, as upstream does.
    values: Vec<String>,
}

impl Requirement {
    /// Upstream's `NewRequirement`: validates the key (qualified name), the number of values
    /// for the operator, integer values for Gt/Lt, and every value (label value syntax).
    /// Returns every problem at once, aggregated the way upstream prints a list of errors.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, Error> {
        Self::build(key.into(), operator, values, false)
    }

    /// `nil_values` renders an empty value list as Go's `[]string(nil)` (what upstream's
    /// `LabelSelectorAsSelector` passes) rather than `[]string{}`.
    fn build(
        key: String,
        operator: Operator,
        values: Vec<String>,
        nil_values: bool,
    ) -> Result<Self, Error> {
        let mut errs = Vec::new();
        if let Some(e) = key_error(&key, "key") {
            errs.push(e);
        }
        let count_error = |detail: &str| {
            FieldError::invalid(
                "values",
                BadValue::Raw(go_string_slice(&values, nil_values)),
                detail,
            )
            .to_string()
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                errs.push(count_error(
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(count_error(
                    "exact-match compatibility requires one single value",
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(count_error(
                    "values set must be empty for exists and does not exist",
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(count_error(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        let detail = "for 'Gt', 'Lt' operators, the value must be an integer";
                        let e = FieldError::invalid(
                            format!("values[{i}]"),
                            BadValue::Str(v.clone()),
                            detail,
                        );
                        errs.push(e.to_string());
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = crate::validation::name::is_valid_label_value(v);
            if !msgs.is_empty() {
                let path = format!("values[{i}][{key}]");
                errs.push(
                    FieldError::invalid(path, BadValue::Str(v.clone()), &msgs.join("; "))
                        .to_string(),
                );
            }
        }
        match aggregate(errs) {
            Some(msg) => Err(Error::InvalidRequirement(msg)),
            None => Ok(Requirement {
                key,
                operator,
                values,
            }),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Upstream's `Requirement.Matches`. NotIn and != match when the label is absent; Gt/Lt
    /// never match a label that is absent or not an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let label = labels.label(&self.key);
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                label.is_some_and(has_value)
            }
            Operator::NotIn | Operator::NotEquals => !label.is_some_and(has_value),
            Operator::Exists => label.is_some(),
            Operator::DoesNotExist => label.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), [want]) = (
                    label.and_then(|l| l.parse::<i64>().ok()),
                    self.values.as_slice(),
                ) else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        // Values render sorted so equal selectors print equally, whatever order they came in.
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector; see the module docs for *everything* versus *nothing*.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key (stable, so repeated keys keep their order).
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object (upstream `labels.Everything()`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// Matches no object (upstream `labels.Nothing()`); renders as the empty string.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query syntax (upstream `labels.Parse`). The empty string
    /// gives [`LabelSelector::everything`].
    pub fn parse(s: &str) -> Result<Self, Error> {
        let requirements = parse::parse(s)?;
        Ok(Self::from_requirements(requirements))
    }

    /// Upstream's `metav1.LabelSelectorAsSelector`: `None` (a null selector) matches nothing,
    /// an empty one matches everything; `matchLabels` become `=` requirements and
    /// `matchExpressions` In/NotIn/Exists/DoesNotExist requirements, all validated.
    pub fn from_api(selector: Option<&metav1::LabelSelector>) -> Result<Self, Error> {
        let Some(selector) = selector else {
            return Ok(Self::nothing());
        };
        let labels = selector.match_labels.iter().flatten();
        let exprs = selector.match_expressions.iter().flatten();
        let mut requirements = Vec::new();
        for (k, v) in labels {
            requirements.push(Requirement::build(
                k.clone(),
                Operator::Equals,
                vec![v.clone()],
                false,
            )?);
        }
        for e in exprs {
            let op = match e.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(Error::UnknownOperator(other.to_string())),
            };
            let values = e.values.clone().unwrap_or_default();
            requirements.push(Requirement::build(e.key.clone(), op, values, true)?);
        }
        Ok(Self::from_requirements(requirements))
    }

    /// A selector requiring every label of `set` (upstream `SelectorFromValidatedSet`, used for
    /// the map-form selectors of Services and ReplicationControllers). Not validated; an empty
    /// set matches everything.
    pub fn from_map(set: &BTreeMap<String, String>) -> Self {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        Self::from_requirements(requirements)
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// True when the selector matches everything (upstream `Empty()`; false for *nothing*).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches no object.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches against an object's `metadata.labels` (absent labels = an empty set).
    pub fn matches_object(&self, object: &Value) -> bool {
        let empty = serde_json::Map::new();
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.matches(labels)
    }

    /// The one value `key` must have, if the first requirement on `key` pins it (`=`, `==`,
    /// or `in` with a single value) — upstream `RequiresExactMatch`, useful for indexing.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [one]) => Some(one),
            _ => None,
        }
    }
}

/// Canonical rendering: requirements by key, joined by `,` (upstream `String()`).
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Upstream `validateLabelKey`: one `Invalid value` error at `path`, all reasons joined.
fn key_error(key: &str, path: &str) -> Option<String> {
    let errs = crate::validation::name::is_qualified_name(key);
    (!errs.is_empty()).then(|| {
        FieldError::invalid(path, BadValue::Str(key.to_string()), &errs.join("; ")).to_string()
    })
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(values: &[String], nil_when_empty: bool) -> String {
    if values.is_empty() && nil_when_empty {
        return "[]string(nil)".to_string();
    }
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Upstream's aggregate error text: one error as is, several as `[a, b]` without repeats.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut unique: Vec<String> = Vec::with_capacity(errs.len());
    for e in errs {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop(),
        _ => Some(format!("[{}]", unique.join(", "))),
    }
}

#[cfg(test)]
mod tests;
