//! Path elements and values the way structured-merge-diff orders, compares and prints them.
//!
//! Field sets are ordered trees, and upstream's order (fields, then keyed items, then set
//! items, then indexes; numbers compare numerically across int and float) decides both the
//! order of conflicts in messages and which paths are "the same". Printing follows
//! upstream's `PathElement.String()` (`.spec`, `[name="nginx"]`, `[="x"]`, `[0]`) and its
//! FieldsV1 keys (`f:spec`, `k:{"name":"nginx"}`, `v:"x"`, `i:0`), whose JSON is Go's
//! `encoding/json` output (sorted keys, `<>&` escaped).

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde_json::{Map, Number, Value};

use crate::field::go_quote;

/// One step of a path into an object.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A struct field or a map key: `f:name`.
    Field(String),
    /// An item of a list with keys, by its key fields sorted by name: `k:{"name":"nginx"}`.
    Key(Vec<(String, Value)>),
    /// An item of a set list, by its value: `v:"x"`.
    Value(Value),
    /// An item by position. Kubernetes types never produce it; kept when decoded.
    Index(i64),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The FieldsV1 key of this element (`f:spec`, `k:{"name":"nginx"}`).
    pub fn to_fields_key(&self) -> String {
        let mut out = String::new();
        match self {
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_json_str(name, &mut out);
                    out.push(':');
                    write_go_json(value, &mut out);
                }
                out.push('}');
            }
            PathElement::Value(value) => {
                out.push_str("v:");
                write_go_json(value, &mut out);
            }
            PathElement::Index(i) => {
                let _ = write!(out, "i:{i}");
            }
        }
        out
    }

    /// Parses a FieldsV1 key. `Ok(None)` for a type this version does not know (upstream
    /// drops those, so a newer writer's data is ignored rather than refused).
    pub fn from_fields_key(key: &str) -> Result<Option<PathElement>, String> {
        let bytes = key.as_bytes();
        if bytes.len() < 2 {
            return Err("key must be 2 characters long:".into());
        }
        if bytes[1] != b':' {
            return Err(format!("missing colon: {key}"));
        }
        let rest = &key[2..];
        Ok(Some(match bytes[0] {
            b'f' => PathElement::Field(rest.to_string()),
            b'v' => PathElement::Value(serde_json::from_str(rest).map_err(|e| e.to_string())?),
            b'k' => {
                let map: Map<String, Value> =
                    serde_json::from_str(rest).map_err(|e| e.to_string())?;
                let mut fields: Vec<(String, Value)> = map.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                PathElement::Key(fields)
            }
            b'i' => PathElement::Index(rest.parse().map_err(|e| format!("{e}"))?),
            _ => return Ok(None),
        }))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| value_cmp(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value_cmp(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Upstream's `PathElement.String()`: `.spec`, `[name="nginx",protocol="TCP"]`, `[="x"]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={}", go_value_string(value))?;
                }
                f.write_str("]")
            }
            PathElement::Value(value) => write!(f, "[={}]", go_value_string(value)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as upstream prints it: its elements' strings, concatenated.
pub fn path_string(path: &[PathElement]) -> String {
    let mut out = String::new();
    for pe in path {
        let _ = write!(out, "{pe}");
    }
    out
}

/// A map's entries by key: serde_json keeps insertion order when some crate in the build
/// enables `preserve_order`, and Go's order is the sorted one.
pub(super) fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// A number the way upstream's unstructured JSON holds it: int64 when it fits, else float64.
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::Int(i),
        None => Num::Float(n.as_f64().unwrap_or(0.0)),
    }
}

fn float_cmp(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(n) if matches!(num(n), Num::Float(_)) => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
        Value::Null => 6,
    }
}

/// Upstream's total order on values (`value.Compare`): floats, ints (numbers compare
/// numerically with each other), strings, bools, lists, maps, null.
pub fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (num(x), num(y)) {
            (Num::Int(x), Num::Int(y)) => x.cmp(&y),
            (Num::Int(x), Num::Float(y)) => float_cmp(x as f64, y),
            (Num::Float(x), Num::Int(y)) => float_cmp(x, y as f64),
            (Num::Float(x), Num::Float(y)) => float_cmp(x, y),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (a, b) in x.iter().zip(y) {
                let c = value_cmp(a, b);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((ak, av), (bk, bv)) in sorted(x).into_iter().zip(sorted(y)) {
                let c = ak.cmp(bk).then_with(|| value_cmp(av, bv));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Upstream's value equality (`value.Equals`): like `==`, except that an int and a float
/// with the same numeric value are equal.
pub fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (num(x), num(y)) {
            (Num::Int(x), Num::Int(y)) => x == y,
            (Num::Int(x), Num::Float(y)) | (Num::Float(y), Num::Int(x)) => x as f64 == y,
            (Num::Float(x), Num::Float(y)) => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| value_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| value_eq(v, other)))
        }
        _ => a == b,
    }
}

/// Upstream's `value.ToString`, used inside printed paths: strings quoted Go-style, maps
/// as `k=v` pairs run together.
pub fn go_value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => go_float_v(f),
        },
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_value_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => sorted(map)
            .into_iter()
            .map(|(k, v)| format!("{k}={}", go_value_string(v)))
            .collect(),
    }
}

/// `%v` of a float64: shortest form, exponent (`1e+21`, `1e-05`) outside [1e-4, 1e21).
fn go_float_v(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        go_exponent(&format!("{f:e}"), true)
    } else {
        format!("{f}")
    }
}

/// Rewrites Rust's `1.5e-7` into Go's exponent form: a sign always, and (for `%v`) at
/// least two digits.
fn go_exponent(rust: &str, pad: bool) -> String {
    let Some((mantissa, exp)) = rust.split_once('e') else {
        return rust.to_string();
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let digits = if pad && digits.len() < 2 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    format!("{mantissa}e{sign}{digits}")
}

/// Appends `v` as Go's `encoding/json` writes it: map keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped, floats in `%g`-like form with exponents only outside [1e-6, 1e21).
pub fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match num(n) {
            Num::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Num::Float(f) => {
                let abs = f.abs();
                if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                    out.push_str(&go_exponent(&format!("{f:e}"), false));
                } else {
                    let _ = write!(out, "{f}");
                }
            }
        },
        Value::String(s) => write_go_json_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json_str(k, out);
                out.push(':');
                write_go_json(v, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Go's `encoding/json` (HTML-safe) writes it.
pub fn write_go_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `v` serialized as Go's `encoding/json` would.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn elements_order_like_upstream() {
        let mut pes = [
            PathElement::Index(0),
            PathElement::Value(json!("a")),
            PathElement::Key(vec![("name".into(), json!("b"))]),
            PathElement::Field("z".into()),
            PathElement::Field("a".into()),
            PathElement::Value(json!(2)),
            PathElement::Value(json!(1.5)),
        ];
        pes.sort();
        let keys: Vec<String> = pes.iter().map(PathElement::to_fields_key).collect();
        assert_eq!(
            keys,
            [
                "f:a",
                "f:z",
                r#"k:{"name":"b"}"#,
                "v:1.5",
                "v:2",
                r#"v:"a""#,
                "i:0"
            ]
        );
    }

    #[test]
    fn keys_round_trip_and_print() {
        for key in [
            "f:spec",
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            r#"v:"example.com/fin""#,
            "i:3",
        ] {
            let pe = PathElement::from_fields_key(key).ok().flatten();
            assert_eq!(pe.map(|p| p.to_fields_key()).as_deref(), Some(key));
        }
        assert_eq!(PathElement::from_fields_key("x:whatever"), Ok(None));
        assert!(PathElement::from_fields_key("f").is_err());
        assert!(PathElement::from_fields_key("k:[1]").is_err());
        let path = [
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(vec![("name".into(), json!("nginx"))]),
            PathElement::Field("ports".into()),
            PathElement::Key(vec![
                ("containerPort".into(), json!(80)),
                ("protocol".into(), json!("TCP")),
            ]),
            PathElement::Field("finalizers".into()),
            PathElement::Value(json!("a\"b")),
        ];
        assert_eq!(
            path_string(&path),
            r#".spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"].finalizers[="a\"b"]"#
        );
    }

    #[test]
    fn go_json_escapes_html_and_formats_floats() {
        assert_eq!(
            go_json(&json!({"b": "<&>", "a": 1})),
            r#"{"a":1,"b":"\u003c\u0026\u003e"}"#
        );
        assert_eq!(go_json(&json!(1.5)), "1.5");
        assert_eq!(go_json(&json!(1e21)), "1e+21");
        assert_eq!(go_json(&json!(1e-7)), "1e-7");
        assert_eq!(go_value_string(&json!(1e-5)), "1e-05");
        assert_eq!(go_value_string(&json!(100.0)), "100");
    }

    #[test]
    fn numbers_compare_across_int_and_float() {
        assert!(value_eq(&json!(1), &json!(1.0)));
        assert!(!value_eq(&json!(1), &json!("1")));
        assert_eq!(value_cmp(&json!(9), &json!(10)), Ordering::Less);
        assert_eq!(value_cmp(&json!(2.5), &json!(2)), Ordering::Greater);
    }
}
