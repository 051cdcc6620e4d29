//! Unknown and duplicate field detection for `fieldValidation=Strict|Warn|Ignore`.
//!
//! Upstream decodes request bodies with `sigs.k8s.io/json`'s strict mode, which reports, in
//! the order it meets them in the document:
//! - `unknown field "spec.foo"` for an object key the typed struct does not have (its value
//!   is skipped, so nothing beneath it is reported);
//! - `duplicate field "metadata.name"` for a key seen before in the same object (for map
//!   types too, e.g. `data.k`).
//!
//! Paths join keys with `.` and indexes as `[i]` (`spec.template.spec.containers[0].foo`);
//! repeats of the same problem are reported once, and at most 100 problems are kept.
//!
//! We have no Go structs to decode into, so a field is *unknown* when it is in the raw body
//! but absent after the registry's typed round trip (`TypedHooks::normalize`). Map-typed
//! fields (`metadata.labels`, `data`) keep every key through that trip, so they are never
//! flagged — as upstream. Known differences, all on the lenient side:
//! - a key whose (last) value is `null` is never called unknown: a known field set to null
//!   also vanishes in the round trip, so the two cannot be told apart;
//! - with a duplicated key, only its last occurrence is checked for unknown fields (the
//!   normalized object holds the last value only); all occurrences are checked for duplicates;
//! - duplicates inside opaque JSON fields (`RawExtension`, `FieldsV1`) are reported; upstream
//!   hands those bytes to a custom unmarshaler and does not look inside.
//!
//! The server turns the problems into a 400 ([`strict_error`]) for `Strict`, or one warning
//! each ([`warnings`]) for `Warn`, the default; `Ignore` skips detection.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::field::{BadValue, FieldError, go_quote};
use crate::status::ApiError;

/// Upstream stops collecting strict errors at this many.
const MAX_PROBLEMS: usize = 100;

/// The `fieldValidation` directive of a create, update or patch request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// Drop unknown fields silently and keep the last of duplicates.
    Ignore,
    /// As Ignore, but warn about each problem (upstream's default when the parameter is absent).
    Warn,
    /// Fail the request with a 400 listing every problem.
    Strict,
}

impl Directive {
    /// Reads the `fieldValidation` query parameter: `Ignore`, `Warn`, `Strict`, or absent or
    /// empty for upstream's default, `Warn`. Matching is case-sensitive, as upstream.
    pub fn parse(value: Option<&str>) -> Result<Self, UnsupportedDirective> {
        match value.unwrap_or_default() {
            "" | "Warn" => Ok(Directive::Warn),
            "Ignore" => Ok(Directive::Ignore),
            "Strict" => Ok(Directive::Strict),
            other => Err(UnsupportedDirective(other.to_string())),
        }
    }
}

/// A `fieldValidation` value upstream does not accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.field_error())]
pub struct UnsupportedDirective(pub String);

impl UnsupportedDirective {
    fn field_error(&self) -> FieldError {
        let value = BadValue::Str(self.0.clone());
        FieldError::not_supported("fieldValidation", value, &["", "Ignore", "Strict", "Warn"])
    }

    /// The 422 upstream's options validation returns, naming `options_kind` (`CreateOptions`,
    /// `UpdateOptions` or `PatchOptions`).
    pub fn to_api_error(&self, options_kind: &str) -> ApiError {
        ApiError::invalid("meta.k8s.io", options_kind, "", &[self.field_error()])
    }
}

/// One strict-decoding problem, at a rendered field path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    UnknownField(String),
    DuplicateField(String),
}

impl Problem {
    pub fn path(&self) -> &str {
        match self {
            Problem::UnknownField(p) | Problem::DuplicateField(p) => p,
        }
    }
}

/// Upstream's text: `unknown field "spec.foo"` / `duplicate field "metadata.name"`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Problem::UnknownField(_) => "unknown field",
            Problem::DuplicateField(_) => "duplicate field",
        };
        write!(f, "{what} {}", go_quote(self.path()))
    }
}

/// Unknown and duplicate fields of a JSON request `body`, given `normalized`, the body after
/// its typed round trip. In upstream's order; empty when the body is not valid JSON (that
/// error is reported by the decoder, and upstream only reports strict problems for bodies
/// that otherwise decode).
pub fn find_problems(body: &[u8], normalized: &Value) -> Vec<Problem> {
    scan(body, Some(normalized))
}

/// Duplicate fields only, for bodies with no typed schema to compare against.
pub fn find_duplicates(body: &[u8]) -> Vec<Problem> {
    scan(body, None)
}

fn scan(body: &[u8], normalized: Option<&Value>) -> Vec<Problem> {
    let mut de = serde_json::Deserializer::from_slice(body);
    // serde_json's recursion limit (128) bounds both this parse and the walk below.
    let Ok(root) = Node::deserialize(&mut de) else {
        return Vec::new();
    };
    if de.end().is_err() {
        return Vec::new();
    }
    let mut walker = Walker::default();
    walker.walk(&root, normalized, &mut String::new());
    walker.problems
}

/// `strict decoding error: unknown field "a", duplicate field "b"` — upstream's
/// `strictDecodingError` text, also what patch handlers embed in their errors.
pub fn strict_decoding_message(problems: &[Problem]) -> String {
    let listed: Vec<String> = problems.iter().map(Problem::to_string).collect();
    format!("strict decoding error: {}", listed.join(", "))
}

/// The 400 a create or update with `fieldValidation=Strict` fails with:
/// `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: …`.
/// `body_kind`/`body_version` are what the body declared (defaulted from the URL when absent).
pub fn strict_error(
    body_kind: &str,
    body_version: &str,
    target_kind: &str,
    problems: &[Problem],
    body: &[u8],
) -> ApiError {
    decode_error(
        body_kind,
        body_version,
        target_kind,
        &strict_decoding_message(problems),
        body,
    )
}

/// Upstream's `transformDecodeError`: how any body decoding failure is reported (400).
/// With no kind known for the body, the message ends with a summary of the body instead.
pub fn decode_error(
    body_kind: &str,
    body_version: &str,
    target_kind: &str,
    cause: &str,
    body: &[u8],
) -> ApiError {
    if body_kind.is_empty() {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {target_kind}): {cause} ({})",
            summarize(body)
        ))
    } else {
        ApiError::bad_request(format!(
            "{body_kind} in version {} cannot be handled as a {target_kind}: {cause}",
            go_quote(body_version)
        ))
    }
}

/// Upstream's `summarizeData(body, 30)`: JSON-looking bodies as text, others as hex.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let head = &body[..body.len().min(MAX)];
    let more = if body.len() > MAX { " ..." } else { "" };
    match body.first() {
        None => "<empty>".to_string(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// The warning texts for `fieldValidation=Warn`, one per problem.
pub fn warnings(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(Problem::to_string).collect()
}

/// A `Warning` header value for `text`: `299 - "unknown field \"spec.foo\""` (upstream's
/// `NewWarningHeader`, which escapes only `"` and `\`).
pub fn warning_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("299 - \"");
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The shape of a raw body, keeping key order and duplicate keys (which `Value` loses).
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Null,
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Object(entries))
    }
}

#[derive(Default)]
struct Walker {
    problems: Vec<Problem>,
    seen: HashSet<Problem>,
}

impl Walker {
    fn record(&mut self, problem: Problem) {
        if self.problems.len() < MAX_PROBLEMS && self.seen.insert(problem.clone()) {
            self.problems.push(problem);
        }
    }

    /// Visits `node` at `path`; `normalized` is its counterpart after the round trip, or
    /// `None` where that cannot be known (then only duplicates are looked for).
    fn walk(&mut self, node: &Node, normalized: Option<&Value>, path: &mut String) {
        match node {
            Node::Object(entries) => {
                self.walk_object(entries, normalized.and_then(Value::as_object), path)
            }
            Node::Array(items) => {
                let normalized = normalized.and_then(Value::as_array);
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.walk(item, normalized.and_then(|a| a.get(i)), path);
                    path.truncate(len);
                }
            }
            Node::Null | Node::Scalar => {}
        }
    }

    fn walk_object(
        &mut self,
        entries: &[(String, Node)],
        normalized: Option<&serde_json::Map<String, Value>>,
        path: &mut String,
    ) {
        // The last occurrence of each key: its value is the one a JSON parser keeps, so the
        // only one the normalized object can be compared with.
        let last: HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.as_str(), i))
            .collect();
        let mut seen = HashSet::with_capacity(entries.len());
        for (i, (key, value)) in entries.iter().enumerate() {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let last_index = last.get(key.as_str()).copied().unwrap_or(i);
            let last_is_null = matches!(entries.get(last_index), Some((_, Node::Null)));
            let unknown = normalized.is_some_and(|m| !m.contains_key(key)) && !last_is_null;
            if unknown {
                // Like upstream, an unknown field's value is skipped, not inspected.
                self.record(Problem::UnknownField(path.clone()));
            } else {
                if !seen.insert(key.as_str()) {
                    self.record(Problem::DuplicateField(path.clone()));
                }
                let child = if last_index == i {
                    normalized.and_then(|m| m.get(key))
                } else {
                    None
                };
                self.walk(value, child, path);
            }
            path.truncate(len);
        }
    }
}

#[cfg(test)]
mod tests;
