//! The JSONPath subset CRD `additionalPrinterColumns` use (`.spec.replicas`,
//! `.status.conditions[?(@.type=="Ready")].status`, `.metadata.labels['app\.x/y']`),
//! evaluated like upstream's `k8s.io/client-go/util/jsonpath` with missing keys allowed:
//! a path that finds nothing yields no result rather than an error.

use serde_json::Value;

/// A parse failure; upstream drops the column (and every one after it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized column definition {0:?}")]
pub struct ParseError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    /// `..name`: the field at any depth.
    Recursive(String),
    Wildcard,
    Index(i64),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Vec<Step>,
    /// `None` for an existence test (`[?(@.x)]`).
    op: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses a column's `jsonPath` (without the `{}` template braces).
    pub fn parse(path: &str) -> Result<JsonPath, ParseError> {
        let err = || ParseError(path.to_string());
        let inner = path.trim();
        let inner = inner
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .unwrap_or(inner);
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        let (steps, rest) = parse_steps(inner).ok_or_else(err)?;
        if !rest.is_empty() {
            return Err(err());
        }
        Ok(JsonPath { steps })
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, vec![root])
    }
}

/// Parses steps until the end of input or an unmatched `)`/`=`-like character (used for the
/// left side of filters).
fn parse_steps(mut s: &str) -> Option<(Vec<Step>, &str)> {
    let mut steps = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix("..") {
            let (name, rest) = field_name(rest);
            if name.is_empty() {
                return None;
            }
            steps.push(Step::Recursive(name));
            s = rest;
        } else if let Some(rest) = s.strip_prefix('.') {
            if let Some(rest) = rest.strip_prefix('*') {
                steps.push(Step::Wildcard);
                s = rest;
                continue;
            }
            let (name, rest) = field_name(rest);
            // A lone `.` (the whole object) adds no step.
            if !name.is_empty() {
                steps.push(Step::Field(name));
            }
            s = rest;
        } else if let Some(rest) = s.strip_prefix('[') {
            let end = bracket_end(rest)?;
            steps.push(parse_bracket(rest[..end].trim())?);
            s = &rest[end + 1..];
        } else {
            return Some((steps, s));
        }
    }
}

/// A field name up to the next unescaped `.` or `[`; `\.` is a literal dot.
fn field_name(s: &str) -> (String, &str) {
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    name.push(next);
                }
            }
            '.' | '[' | ')' | '=' | '!' | '<' | '>' | ' ' => return (name, &s[i..]),
            c => name.push(c),
        }
    }
    (name, "")
}

/// The index of the `]` closing a bracket, skipping quoted text and nested brackets.
fn bracket_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Some(i),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

fn parse_bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Some(key) = unquote(inner) {
        return Some(Step::Field(key.to_string()));
    }
    if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return parse_filter(filter.trim()).map(Step::Filter);
    }
    inner.parse::<i64>().ok().map(Step::Index)
}

fn unquote(s: &str) -> Option<&str> {
    ['\'', '"']
        .iter()
        .find_map(|q| s.strip_prefix(*q).and_then(|s| s.strip_suffix(*q)))
}

fn parse_filter(f: &str) -> Option<Filter> {
    let rest = f.strip_prefix('@')?;
    let (left, rest) = parse_steps(rest)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Some(Filter { left, op: None });
    }
    let ops = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (op, literal) = ops
        .iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|l| (*op, l.trim())))?;
    let literal = match unquote(literal) {
        Some(s) => Value::String(s.to_string()),
        None => serde_json::from_str::<Value>(literal).ok()?,
    };
    Some(Filter {
        left,
        op: Some((op, literal)),
    })
}

fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => next.extend(v.get(name.as_str())),
                Step::Recursive(name) => recurse(v, name, &mut next),
                Step::Wildcard => match v {
                    Value::Object(m) => next.extend(m.values()),
                    Value::Array(a) => next.extend(a.iter()),
                    _ => {}
                },
                Step::Index(i) => {
                    if let Value::Array(a) = v {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(idx).ok().and_then(|i| a.get(i)));
                    }
                }
                Step::Filter(f) => {
                    if let Value::Array(a) = v {
                        next.extend(a.iter().filter(|item| matches(f, item)));
                    }
                }
            }
        }
        current = next;
    }
    current
}

fn recurse<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            out.extend(m.get(name));
            for child in m.values() {
                recurse(child, name, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                recurse(child, name, out);
            }
        }
        _ => {}
    }
}

fn matches(f: &Filter, item: &Value) -> bool {
    let found = eval(&f.left, vec![item]);
    let Some((op, literal)) = &f.op else {
        return !found.is_empty();
    };
    found.iter().any(|v| match (v, literal) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                Op::Ge => a >= b,
            }
        }
        (a, b) => match op {
            Op::Eq => *a == b,
            Op::Ne => *a != b,
            _ => false,
        },
    })
}
