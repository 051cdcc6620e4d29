//! Custom resources: the `Name` column plus the CRD version's `additionalPrinterColumns`,
//! or a single `Age` date column when it has none (upstream's
//! `serveDefaultColumnsIfEmpty`). Cells are computed from each column's JSONPath and typed
//! like upstream's CRD table convertor: `string` columns print the first match as Go's
//! `fmt.Print` would (maps and lists as JSON), `integer`/`number`/`boolean` keep JSON
//! types, `date` becomes an age; a missing value is a null cell (`<none>` in kubectl).

use serde_json::{Value, json};

use super::cells::{CREATED_DOC, Ctx, NAME, human_duration, name, nanos_between, parse_time};
use super::jsonpath::JsonPath;

/// One printer column of a custom resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    name: String,
    ty: String,
    format: String,
    description: String,
    priority: i64,
    path: JsonPath,
}

/// The columns for a CRD version's `additionalPrinterColumns` (the JSON array as stored in
/// the CRD). As upstream, a column whose JSONPath does not parse drops itself and every
/// column after it; `None` or an empty list gives the default `Age` column.
pub fn columns(additional: Option<&Value>) -> Vec<Column> {
    let defs = additional
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let Some(defs) = defs else {
        return JsonPath::parse(".metadata.creationTimestamp")
            .map(|path| Column {
                name: "Age".to_string(),
                ty: "date".to_string(),
                format: String::new(),
                description: CREATED_DOC.to_string(),
                priority: 0,
                path,
            })
            .into_iter()
            .collect();
    };
    let mut out = Vec::new();
    for def in defs {
        let text = |k: &str| def.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let json_path = text("jsonPath");
        let Ok(path) = JsonPath::parse(&json_path) else {
            tracing::debug!(json_path, "invalid printer column, later columns dropped");
            break;
        };
        let description = match text("description") {
            d if d.is_empty() => {
                format!("Custom resource definition column (in JSONPath format): {json_path}")
            }
            d => d,
        };
        out.push(Column {
            name: text("name"),
            ty: text("type"),
            format: text("format"),
            description,
            priority: def.get("priority").and_then(Value::as_i64).unwrap_or(0),
            path,
        });
    }
    out
}

/// The column definitions: `Name`, then the custom columns.
pub fn definitions(columns: &[Column]) -> Vec<Value> {
    std::iter::once(NAME.to_json())
        .chain(columns.iter().map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        }))
        .collect()
}

/// One row's cells.
pub fn row(obj: &Value, columns: &[Column], ctx: &Ctx) -> Vec<Value> {
    let mut cells = vec![Value::from(name(obj))];
    for c in columns {
        // Only one result is expected from a simple path; the first one counts.
        let cell = match c.path.find(obj).first() {
            None => Value::Null,
            Some(v) if c.ty == "string" => Value::String(go_print(v)),
            Some(v) => typed_cell(&c.ty, v, ctx),
        };
        cells.push(cell);
    }
    cells
}

/// `cellForJSONValue`: the value in the column's type, or null when it does not fit.
fn typed_cell(ty: &str, v: &Value, ctx: &Ctx) -> Value {
    match (ty, v) {
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => Value::String(date_cell(s, ctx)),
        _ => Value::Null,
    }
}

/// `ConvertToHumanReadableDateType` of a parsed `metav1.Time`.
fn date_cell(s: &str, ctx: &Ctx) -> String {
    if s.is_empty() || s == "null" {
        return "<unknown>".to_string();
    }
    match s.parse::<jiff::Timestamp>() {
        Err(_) => "<invalid>".to_string(),
        Ok(_) => match parse_time(s) {
            Some(t) => human_duration(nanos_between(t, ctx.now)),
            None => "<unknown>".to_string(),
        },
    }
}

/// How upstream's JSONPath printer renders a value: maps and lists as compact JSON,
/// scalars as Go's `fmt.Print`.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// Go's `%v` for a float64 (`strconv` `'g'` with the shortest digits): exponent form
/// (`1e+06`, `1.5e-05`) when the decimal exponent is below -4 or at least 6, plain
/// (`123456`, `0.25`) otherwise.
fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_string()
        } else if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // `{:e}` gives the shortest round-trip digits: `1.2345e6`, `-5e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        // Plain decimal; Rust's Display is shortest round-trip without exponent.
        let s = format!("{f}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}
