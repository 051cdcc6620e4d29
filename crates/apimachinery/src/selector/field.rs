//! Field selectors: `metadata.name=x,spec.nodeName!=` — equality tests on a few fields each
//! kind exposes.
//!
//! Parsing follows upstream `fields.ParseSelector`: terms split on unescaped commas and sorted,
//! each split at its first `!=`, `==` or `=`, and the value unescaped (`\\`, `\,`, `\=`). The
//! field is not trimmed, so `metadata.name = x` names the field `metadata.name `.
//!
//! Then, as upstream's list handler does, every field goes through the kind's field-label
//! conversion ([`FieldLabels`]): unsupported fields are a 400 with the kind's own message, and
//! aliases become canonical (`spec.host` → `spec.nodeName`). Matching reads each field from the
//! stored JSON object the way upstream's `GetAttrs` builds its field set; a field that is absent
//! reads as `""` (so `spec.nodeName=` selects unscheduled pods).

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::field::go_quote;
use crate::status::ApiError;

/// Why a field selector was rejected. Every message is upstream's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A term has no operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Syntax { selector: String, term: String },
    /// A backslash not followed by `\`, `,` or `=` (or at the end).
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// An unescaped `=` in a value. Upstream prints the code point as a number (`61`).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// The kind does not support this field; the message depends on the kind.
    #[error("{0}")]
    UnsupportedField(String),
}

/// Sent as 400 `BadRequest` with the message unchanged, as upstream's list handler does.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=` or `==` (upstream keeps no distinction and renders `=`).
    Equals,
    NotEquals,
}

/// One term, with its field already converted to the kind's canonical label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub field: String,
    pub operator: Operator,
    pub value: String,
}

/// How a field's value is read from a stored object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A dotted path; strings as is, other scalars rendered, absent as `""`.
    Path(&'static str),
    /// A boolean that defaults to `false` (upstream formats Go bools).
    Bool(&'static str),
    /// An integer that defaults to `0` (upstream formats Go ints).
    Int(&'static str),
    /// Pod `status.podIP`: upstream reads the first of `status.podIPs`.
    PodIp,
    /// Event `source`: the source component, else the reporting controller.
    Reporter {
        component: &'static str,
        fallback: &'static str,
    },
    /// Accepted by upstream's conversion but absent from its field set, so always `""`
    /// (Pod `status.podIPs`).
    Empty,
}

/// How a kind words the rejection of an unsupported field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejection {
    /// `field label not supported: foo` (core kinds, CSRs, events.k8s.io).
    NotSupported,
    /// `field label "foo" not supported for batchv1.Job`.
    Job,
}

/// One accepted field label: the name a client sends, the canonical name upstream converts
/// it to, and where its value lives in the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label {
    name: &'static str,
    canonical: &'static str,
    source: Source,
}

const fn same(name: &'static str) -> Label {
    Label {
        name,
        canonical: name,
        source: Source::Path(name),
    }
}

const fn with(name: &'static str, source: Source) -> Label {
    Label {
        name,
        canonical: name,
        source,
    }
}

/// events.k8s.io names converted to core Event labels, read from the events.k8s.io object.
const fn renamed(name: &'static str, canonical: &'static str) -> Label {
    Label {
        name,
        canonical,
        source: Source::Path(name),
    }
}

const NAME: Label = same("metadata.name");
const NAMESPACE: Label = same("metadata.namespace");

/// A built-in kind that registers its own field-label conversion upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct BuiltinKind {
    group: &'static str,
    kind: &'static str,
    labels: &'static [Label],
    rejection: Rejection,
}

/// Upstream 1.33's `AddFieldLabelConversionFunc` registrations for the versions rkube serves,
/// paired with what each kind's `GetAttrs` puts in its field set. Kinds not listed here (apps
/// ReplicaSet and StatefulSet included: apps/v1 registers none) accept only `metadata.name` and
/// `metadata.namespace`.
static BUILTIN: &[BuiltinKind] = &[
    BuiltinKind {
        group: "",
        kind: "Pod",
        labels: &[
            NAME,
            NAMESPACE,
            same("spec.nodeName"),
            same("spec.restartPolicy"),
            same("spec.schedulerName"),
            same("spec.serviceAccountName"),
            with("spec.hostNetwork", Source::Bool("spec.hostNetwork")),
            same("status.phase"),
            with("status.podIP", Source::PodIp),
            with("status.podIPs", Source::Empty),
            same("status.nominatedNodeName"),
            // Kept upstream for old v1 clients.
            Label {
                name: "spec.host",
                canonical: "spec.nodeName",
                source: Source::Path("spec.nodeName"),
            },
        ],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "",
        kind: "Node",
        labels: &[
            NAME,
            with("spec.unschedulable", Source::Bool("spec.unschedulable")),
        ],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "",
        kind: "ReplicationController",
        labels: &[
            NAME,
            NAMESPACE,
            with("status.replicas", Source::Int("status.replicas")),
        ],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "",
        kind: "Event",
        labels: &[
            same("involvedObject.kind"),
            same("involvedObject.namespace"),
            same("involvedObject.name"),
            same("involvedObject.uid"),
            same("involvedObject.apiVersion"),
            same("involvedObject.resourceVersion"),
            same("involvedObject.fieldPath"),
            same("reason"),
            same("reportingComponent"),
            with(
                "source",
                Source::Reporter {
                    component: "source.component",
                    fallback: "reportingComponent",
                },
            ),
            same("type"),
            NAMESPACE,
            NAME,
        ],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "",
        kind: "Namespace",
        labels: &[same("status.phase"), NAME],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "",
        kind: "Secret",
        labels: &[same("type"), NAMESPACE, NAME],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "",
        kind: "Service",
        labels: &[NAMESPACE, NAME, same("spec.clusterIP"), same("spec.type")],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "batch",
        kind: "Job",
        labels: &[
            NAME,
            NAMESPACE,
            with("status.successful", Source::Int("status.succeeded")),
        ],
        rejection: Rejection::Job,
    },
    BuiltinKind {
        group: "certificates.k8s.io",
        kind: "CertificateSigningRequest",
        labels: &[NAME, same("spec.signerName")],
        rejection: Rejection::NotSupported,
    },
    BuiltinKind {
        group: "events.k8s.io",
        kind: "Event",
        labels: &[
            same("reason"),
            renamed("regarding.kind", "involvedObject.kind"),
            renamed("regarding.namespace", "involvedObject.namespace"),
            renamed("regarding.name", "involvedObject.name"),
            renamed("regarding.uid", "involvedObject.uid"),
            renamed("regarding.apiVersion", "involvedObject.apiVersion"),
            renamed(
                "regarding.resourceVersion",
                "involvedObject.resourceVersion",
            ),
            renamed("regarding.fieldPath", "involvedObject.fieldPath"),
            renamed("reportingController", "reportingComponent"),
            with(
                "source",
                Source::Reporter {
                    component: "deprecatedSource.component",
                    fallback: "reportingController",
                },
            ),
            same("type"),
            NAMESPACE,
            NAME,
        ],
        rejection: Rejection::NotSupported,
    },
];

/// A custom resource's selectable fields (its CRD version's `selectableFields`).
#[derive(Debug, PartialEq, Eq)]
pub struct CustomKind {
    /// Upstream's `GroupVersionKind.String()`, e.g. `stable.example.com/v1, Kind=CronTab`.
    gvk: String,
    namespaced: bool,
    /// Field paths without the leading dot (`spec.color`).
    fields: Vec<String>,
}

/// Which field labels a kind accepts, and how their values are read (upstream's field-label
/// conversion plus `GetAttrs`). Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldLabels {
    /// Only `metadata.name` and `metadata.namespace` (upstream's default conversion).
    Default,
    Builtin(&'static BuiltinKind),
    Custom(Arc<CustomKind>),
}

impl FieldLabels {
    /// The labels of a built-in kind, by API group (`""` for core) and kind.
    pub fn for_kind(group: &str, kind: &str) -> Self {
        BUILTIN
            .iter()
            .find(|k| k.group == group && k.kind == kind)
            .map_or(FieldLabels::Default, FieldLabels::Builtin)
    }

    /// A custom resource: `metadata.name`, `metadata.namespace` when namespaced, and each
    /// selectable field's JSON path (given as in the CRD, `.spec.color`; the leading dot is
    /// optional in selectors, as upstream allows).
    pub fn custom(
        group: &str,
        version: &str,
        kind: &str,
        namespaced: bool,
        json_paths: &[String],
    ) -> Self {
        FieldLabels::Custom(Arc::new(CustomKind {
            gvk: format!("{group}/{version}, Kind={kind}"),
            namespaced,
            fields: json_paths
                .iter()
                .map(|p| p.trim_start_matches('.').to_string())
                .collect(),
        }))
    }

    /// Upstream's `ConvertFieldLabel`: the canonical label for `label`, or the kind's error.
    fn convert(&self, label: &str) -> Result<String, Error> {
        match self {
            FieldLabels::Default => match label {
                "metadata.name" | "metadata.namespace" => Ok(label.to_string()),
                _ => Err(Error::UnsupportedField(format!(
                    "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                    go_quote(label)
                ))),
            },
            FieldLabels::Builtin(kind) => match kind.labels.iter().find(|l| l.name == label) {
                Some(l) => Ok(l.canonical.to_string()),
                None => Err(Error::UnsupportedField(match kind.rejection {
                    Rejection::NotSupported => format!("field label not supported: {label}"),
                    Rejection::Job => format!(
                        "field label {} not supported for batchv1.Job",
                        go_quote(label)
                    ),
                })),
            },
            FieldLabels::Custom(kind) => {
                let trimmed = label.strip_prefix('.').unwrap_or(label);
                if label == "metadata.name" || (kind.namespaced && label == "metadata.namespace") {
                    Ok(label.to_string())
                } else if kind.fields.iter().any(|f| f == trimmed) {
                    Ok(trimmed.to_string())
                } else {
                    Err(Error::UnsupportedField(format!(
                        "field label not supported for {}: {label}",
                        kind.gvk
                    )))
                }
            }
        }
    }

    /// The value of canonical field `field` in `object`, as upstream's field set holds it.
    fn value(&self, field: &str, object: &Value) -> String {
        let source = match self {
            FieldLabels::Builtin(kind) => kind
                .labels
                .iter()
                .find(|l| l.canonical == field)
                .map_or(Source::Empty, |l| l.source),
            FieldLabels::Default | FieldLabels::Custom(_) => return render(lookup(object, field)),
        };
        match source {
            Source::Path(path) => render(lookup(object, path)),
            Source::Bool(path) => lookup(object, path)
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            Source::Int(path) => lookup(object, path)
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
            Source::PodIp => match lookup(object, "status.podIPs").and_then(Value::as_array) {
                Some(ips) if !ips.is_empty() => render(ips.first().and_then(|ip| ip.get("ip"))),
                _ => render(lookup(object, "status.podIP")),
            },
            Source::Reporter {
                component,
                fallback,
            } => {
                let value = render(lookup(object, component));
                if value.is_empty() {
                    render(lookup(object, fallback))
                } else {
                    value
                }
            }
            Source::Empty => String::new(),
        }
    }
}

fn lookup<'a>(object: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(object, |v, part| v.get(part))
}

fn render(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A parsed field selector for one kind. An empty selector matches everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSelector {
    /// In upstream's order: terms sorted as written.
    requirements: Vec<Requirement>,
    labels: FieldLabels,
}

/// Parses `s` for a built-in kind: shorthand for
/// `FieldSelector::parse(FieldLabels::for_kind(group, kind), s)`.
pub fn parse(group: &str, kind: &str, s: &str) -> Result<FieldSelector, Error> {
    FieldSelector::parse(FieldLabels::for_kind(group, kind), s)
}

impl FieldSelector {
    /// Matches every object of the kind.
    pub fn everything(labels: FieldLabels) -> Self {
        FieldSelector {
            requirements: Vec::new(),
            labels,
        }
    }

    /// Parses the `fieldSelector` query syntax, then checks every field against the kind.
    /// Syntax errors win over unsupported fields, and the first term (in sorted order) to fail
    /// decides the message, as upstream.
    pub fn parse(labels: FieldLabels, s: &str) -> Result<Self, Error> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut parsed = Vec::with_capacity(terms.len());
        for term in terms.iter().filter(|t| !t.is_empty()) {
            let (field, operator, raw) = split_term(term).ok_or_else(|| Error::Syntax {
                selector: s.to_string(),
                term: term.to_string(),
            })?;
            parsed.push((field, operator, unescape(raw)?));
        }
        let requirements = parsed
            .into_iter()
            .map(|(field, operator, value)| {
                Ok(Requirement {
                    field: labels.convert(field)?,
                    operator,
                    value,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(FieldSelector {
            requirements,
            labels,
        })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether every term holds for `object` (a stored object of the selector's kind).
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let value = self.labels.value(&r.field, object);
            (value == r.value) == (r.operator == Operator::Equals)
        })
    }

    /// The value `field` must equal, from the first `=` term on it (upstream
    /// `RequiresExactMatch`). Lets the server serve `metadata.name=x` as a point read and
    /// `metadata.namespace=y` from one namespace.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == Operator::Equals)
            .map(|r| r.value.as_str())
    }
}

/// Canonical rendering: `field=value` / `field!=value` joined by `,`, values escaped.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            let op = if r.operator == Operator::Equals {
                "="
            } else {
                "!="
            };
            let sep = if i > 0 { "," } else { "" };
            write!(f, "{sep}{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

/// Upstream `EscapeValue`: a literal value made safe inside a selector.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas not preceded by a backslash; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator; `!=` and `==` are tried before `=` at each position.
fn split_term(term: &str) -> Option<(&str, Operator, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        let (op, len) = if rest.starts_with("!=") {
            (Operator::NotEquals, 2)
        } else if rest.starts_with("==") {
            (Operator::Equals, 2)
        } else if rest.starts_with('=') {
            (Operator::Equals, 1)
        } else {
            return None;
        };
        Some((&term[..i], op, &term[i + len..]))
    })
}

/// Upstream `UnescapeValue`.
fn unescape(s: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(Error::InvalidEscape(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
        } else {
            match c {
                '\\' => in_slash = true,
                ',' | '=' => return Err(Error::UnescapedCharacter(c)),
                c => out.push(c),
            }
        }
    }
    if in_slash {
        return Err(Error::InvalidEscape("\\".to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
