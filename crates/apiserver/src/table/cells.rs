//! Column definitions and the cell formatting every printer shares: reading fields out of
//! a JSON object without failing, ages (`HumanDuration`), label and selector renderings,
//! container lists, quantities and the `… + N more...` lists.
//!
//! Everything here mirrors a helper of upstream's `pkg/printers/internalversion` or
//! `k8s.io/apimachinery` (named in each doc comment); missing or mistyped fields read as
//! Go's zero values, because that is what the typed Go printers see.

use std::collections::BTreeMap;

use apimachinery::selector::LabelSelector;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::{Map, Value};

/// `metav1.ObjectMeta{}.SwaggerDoc()["name"]`.
pub const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]`.
pub const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One `TableColumnDefinition`. kubectl shows priority 0 columns always and priority 1
/// columns only with `-o wide`; `format: name` marks the column kubectl prefixes with the
/// kind (`pod/x`) when it prints several kinds at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Col {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: u8,
}

impl Col {
    /// A priority 0 column without a format.
    pub const fn new(name: &'static str, ty: &'static str, description: &'static str) -> Col {
        Col {
            name,
            ty,
            format: "",
            description,
            priority: 0,
        }
    }

    /// The same column shown only with `-o wide`.
    pub const fn wide(self) -> Col {
        Col {
            priority: 1,
            ..self
        }
    }

    /// The same column with `format: name`.
    pub const fn named(self) -> Col {
        Col {
            format: "name",
            ..self
        }
    }

    pub fn to_json(self) -> Value {
        serde_json::json!({
            "name": self.name,
            "type": self.ty,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The `Name` column every printer starts with.
pub const NAME: Col = Col::new("Name", "string", NAME_DOC).named();
/// The `Age` column.
pub const AGE: Col = Col::new("Age", "string", CREATED_DOC);
pub const CONTAINERS: Col = Col::new(
    "Containers",
    "string",
    "Names of each container in the template.",
)
.wide();
pub const IMAGES: Col = Col::new(
    "Images",
    "string",
    "Images referenced by each container in the template.",
)
.wide();

/// What a row function may consult besides the object.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// "Now" for ages; injectable so tests are deterministic.
    pub now: Timestamp,
    /// The group the object was read through (`events.k8s.io` Events have other fields than
    /// core ones).
    pub group: &'a str,
}

impl Ctx<'_> {
    /// `translateTimestampSince(obj.CreationTimestamp)`.
    pub fn age(&self, obj: &Value) -> String {
        self.since(opt_str(obj, "/metadata/creationTimestamp"))
    }

    /// `translateTimestampSince`: `<unknown>` for a missing (zero) time.
    pub fn since(&self, timestamp: Option<&str>) -> String {
        match timestamp.and_then(parse_time) {
            Some(t) => human_duration(nanos_between(t, self.now)),
            None => "<unknown>".to_string(),
        }
    }
}

/// Parses an RFC 3339 `metav1.Time`/`MicroTime`; `None` for the zero time, empty or bad text.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let t: Timestamp = s.parse().ok()?;
    // Go's zero time (0001-01-01T00:00:00Z) is "unset".
    (t.as_second() != -62_135_596_800).then_some(t)
}

/// `to - from` in nanoseconds.
pub fn nanos_between(from: Timestamp, to: Timestamp) -> i128 {
    to.as_nanosecond() - from.as_nanosecond()
}

/// `duration.HumanDuration`: a succinct age with 2–3 significant figures (`45s`, `3m2s`,
/// `5h`, `2d3h`, `3y12d`). Up to a second in the future reads as `0s` (clock skew), more
/// as `<invalid>`.
pub fn human_duration(nanos: i128) -> String {
    const SEC: i128 = 1_000_000_000;
    let seconds = nanos / SEC;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / (60 * SEC);
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / (3600 * SEC);
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// The string at `ptr`, or `None` when absent or not a string.
pub fn opt_str<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// The string at `ptr`, or `""` (Go's zero value).
pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    opt_str(v, ptr).unwrap_or("")
}

/// The integer at `ptr`, or `None`. Accepts floats with an integral value too, since JSON
/// does not tell them apart.
pub fn opt_int(v: &Value, ptr: &str) -> Option<i64> {
    let n = v.pointer(ptr)?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    })
}

/// The integer at `ptr`, or `0`.
pub fn int_at(v: &Value, ptr: &str) -> i64 {
    opt_int(v, ptr).unwrap_or(0)
}

/// The boolean at `ptr`, or `None`.
pub fn opt_bool(v: &Value, ptr: &str) -> Option<bool> {
    v.pointer(ptr).and_then(Value::as_bool)
}

/// The array at `ptr`, or an empty slice.
pub fn arr_at<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `ptr`, if there is one.
pub fn map_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(ptr).and_then(Value::as_object)
}

/// The number of entries of the map at `ptr` (`len(obj.Data)`).
pub fn len_at(v: &Value, ptr: &str) -> i64 {
    match v.pointer(ptr) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// A string-to-string map (labels, selectors); non-string values are skipped.
pub fn string_map(v: &Value, ptr: &str) -> BTreeMap<String, String> {
    map_at(v, ptr)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `labels.FormatLabels`: `a=b,c=d` sorted by key, `<none>` when empty.
pub fn format_labels(v: &Value, ptr: &str) -> String {
    let l = LabelSelector::from_map(&string_map(v, ptr)).to_string();
    if l.is_empty() {
        "<none>".to_string()
    } else {
        l
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: `None` for a selector upstream rejects.
/// A null selector (matches nothing) and an empty one (matches everything) both render as
/// the empty string.
pub fn selector_string(v: &Value, ptr: &str) -> Option<String> {
    let selector = match v.pointer(ptr) {
        None | Some(Value::Null) => None,
        Some(s) => Some(serde_json::from_value::<metav1::LabelSelector>(s.clone()).ok()?),
    };
    LabelSelector::from_api(selector.as_ref())
        .ok()
        .map(|s| s.to_string())
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when empty, `<error>` when
/// invalid.
pub fn format_label_selector(v: &Value, ptr: &str) -> String {
    match selector_string(v, ptr) {
        None => "<error>".to_string(),
        Some(s) if s.is_empty() => "<none>".to_string(),
        Some(s) => s,
    }
}

/// `layoutContainerCells`: container names and images, each joined with `,`.
pub fn containers(v: &Value, ptr: &str) -> (String, String) {
    let list = arr_at(v, ptr);
    let names: Vec<&str> = list.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `Quantity.String()` of the quantity at `ptr`; `"0"` when absent, like a zero
/// `resource.Quantity` read out of a map.
///
/// The stored text is printed as is: canonical inputs (`1Gi`, `500m`, `10`) print exactly as
/// upstream does; a non-canonical spelling (`1024Mi`) is not re-canonicalized here, because
/// the canonicalizer is private to `apimachinery`.
pub fn quantity(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// `helper.GetAccessModesAsString`: `RWO,ROX,RWX,RWOP` in that fixed order, deduplicated.
pub fn access_modes(v: &Value, ptr: &str) -> String {
    let modes: Vec<&str> = arr_at(v, ptr).iter().filter_map(Value::as_str).collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `listWithMoreString`: at most `max` entries, then ` + N more...`; `<unset>` when empty.
pub fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items.len().min(max);
    let ret = items[..shown].join(",");
    if items.len() > max {
        format!("{ret} + {} more...", items.len() - max)
    } else if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}

/// `net.JoinHostPort`: brackets around IPv6 hosts.
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `printBoolPtr`: `True`/`False`, `<unset>` when absent.
pub fn bool_ptr(v: &Value, ptr: &str) -> String {
    match opt_bool(v, ptr) {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

/// `IntOrString.String()`.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `sets.NewString(...).List()` of load balancer ingress points (IP, else hostname),
/// joined with `,`. The server always prints wide, so the 16-byte clipping never applies.
pub fn load_balancer_ingress(v: &Value, ptr: &str) -> String {
    let mut set: Vec<&str> = arr_at(v, ptr)
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, "/ip");
            let host = str_at(i, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.sort_unstable();
    set.dedup();
    set.join(",")
}
