//! `metadata.managedFields` in memory: one field set per manager identity, with upstream's
//! decoding rules, entry order and cap on the number of `Update` entries.
//!
//! A manager's identity is (name, operation, apiVersion, subresource), except that `Apply`
//! entries leave out the apiVersion, so an applier keeps one entry across versions. Entries
//! with the same identity are one entry (the last one decoded wins, as in upstream's map).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::path::write_go_json_str;
use super::set::FieldSet;

/// Upstream keeps at most this many `Update` entries, folding the oldest into
/// `ancient-changes` (`DefaultMaxUpdateManagers`).
const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who owns a set of fields (upstream's manager identifier).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Empty for `Apply`.
    pub api_version: String,
    pub subresource: String,
}

impl ManagerId {
    /// The identity a request acts as; an empty name is upstream's `unknown`.
    pub(super) fn new(
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: &str,
    ) -> Self {
        ManagerId {
            manager: if manager.is_empty() {
                "unknown"
            } else {
                manager
            }
            .to_string(),
            operation,
            api_version: match operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.to_string(),
            },
            subresource: subresource.to_string(),
        }
    }

    /// Upstream's identifier string (the entry as JSON without fields and time), which is
    /// what conflict messages sort managers by.
    pub(super) fn identifier(&self) -> String {
        let mut out = String::from("{\"manager\":");
        write_go_json_str(&self.manager, &mut out);
        out.push_str(",\"operation\":");
        write_go_json_str(self.operation.as_str(), &mut out);
        if !self.api_version.is_empty() {
            out.push_str(",\"apiVersion\":");
            write_go_json_str(&self.api_version, &mut out);
        }
        if !self.subresource.is_empty() {
            out.push_str(",\"subresource\":");
            write_go_json_str(&self.subresource, &mut out);
        }
        out.push('}');
        out
    }
}

/// One manager's fields.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Entry {
    pub set: FieldSet,
    pub api_version: String,
    /// `RFC3339` time of the manager's last change, as written.
    pub time: Option<String>,
}

/// All managers of an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Managed {
    pub entries: BTreeMap<ManagerId, Entry>,
}

impl Managed {
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Decodes `metadata.managedFields` of `obj` (absent or `null` is empty). Errors carry
    /// upstream's messages.
    pub(super) fn decode(obj: &Value) -> Result<Managed, String> {
        match managed_fields(obj) {
            None | Some(Value::Null) => Ok(Managed::default()),
            Some(Value::Array(items)) => {
                let mut managed = Managed::default();
                for (i, item) in items.iter().enumerate() {
                    let (id, entry) = decode_entry(i, item)?;
                    managed.entries.insert(id, entry);
                }
                Ok(managed)
            }
            Some(other) => Err(format!(
                "expected a list of managed fields entries, got {other}"
            )),
        }
    }

    /// The entries as upstream writes them: `Apply` before `Update`, then by time (whole
    /// seconds), manager, apiVersion and subresource. `None` when there are none, so the
    /// field is removed rather than left as `[]`.
    pub(super) fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<(&ManagerId, &Entry)> = self.entries.iter().collect();
        entries.sort_by(|(a, ae), (b, be)| {
            a.operation
                .cmp(&b.operation)
                .then_with(|| seconds(ae.time.as_deref()).cmp(&seconds(be.time.as_deref())))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| ae.api_version.cmp(&be.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        let items = entries
            .into_iter()
            .map(|(id, e)| {
                let mut m = Map::new();
                m.insert("manager".into(), id.manager.clone().into());
                m.insert("operation".into(), id.operation.as_str().into());
                if !e.api_version.is_empty() {
                    m.insert("apiVersion".into(), e.api_version.clone().into());
                }
                if let Some(t) = &e.time {
                    m.insert("time".into(), t.clone().into());
                }
                m.insert("fieldsType".into(), "FieldsV1".into());
                m.insert("fieldsV1".into(), e.set.to_fields_v1());
                if !id.subresource.is_empty() {
                    m.insert("subresource".into(), id.subresource.clone().into());
                }
                Value::Object(m)
            })
            .collect();
        Some(Value::Array(items))
    }

    /// Writes the entries into `obj`'s metadata (removing the field when there are none).
    pub(super) fn write_to(&self, obj: &mut Value) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        match self.encode() {
            Some(list) => {
                meta.insert("managedFields".into(), list);
            }
            None => {
                meta.remove("managedFields");
            }
        }
    }

    /// Folds the oldest `Update` entries into one `ancient-changes` entry per apiVersion
    /// until at most ten remain (upstream's `capManagersManager`).
    pub(super) fn cap_update_managers(&mut self) {
        let mut updaters: Vec<ManagerId> = self
            .entries
            .keys()
            .filter(|id| id.operation == Operation::Update)
            .cloned()
            .collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        let when = |id: &ManagerId| seconds(self.entries.get(id).and_then(|e| e.time.as_deref()));
        updaters.sort_by(|a, b| {
            when(a)
                .cmp(&when(b))
                .then_with(|| a.identifier().cmp(&b.identifier()))
        });
        let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
        let mut remaining = updaters.len();
        for id in updaters {
            if remaining <= MAX_UPDATE_MANAGERS {
                break;
            }
            let Some(entry) = self.entries.get(&id).cloned() else {
                continue;
            };
            let version = entry.api_version.clone();
            let bucket = ManagerId::new(ANCIENT_CHANGES, Operation::Update, &version, "");
            let Some(first) = first_of_version.get(&version).cloned() else {
                first_of_version.insert(version, id);
                continue;
            };
            if !self.entries.contains_key(&bucket)
                && let Some(first_entry) = self.entries.remove(&first)
            {
                self.entries.insert(bucket.clone(), first_entry);
            }
            let mut merged = self.entries.remove(&bucket).unwrap_or(Entry {
                set: FieldSet::new(),
                api_version: version,
                time: None,
            });
            merged.set = entry.set.union(&merged.set);
            // The merged entry is newer than the bucket, so its time is the bucket's.
            merged.time = entry.time.clone();
            self.entries.remove(&id);
            self.entries.insert(bucket, merged);
            remaining -= 1;
        }
    }
}

fn managed_fields(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// Whether a request's `managedFields` asks to clear them: `[]` or `[{}]` (upstream's
/// `isResetManagedFields`; absent or `null` means "keep the stored ones").
pub(super) fn is_reset(obj: &Value) -> bool {
    match managed_fields(obj) {
        Some(Value::Array(items)) => match items.as_slice() {
            [] => true,
            [Value::Object(entry)] => entry.values().all(is_zero),
            _ => false,
        },
        _ => false,
    }
}

/// A JSON value that decodes to Go's zero value.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn decode_entry(i: usize, item: &Value) -> Result<(ManagerId, Entry), String> {
    let get = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
    let operation = match get("operation") {
        "Apply" => Operation::Apply,
        "Update" => Operation::Update,
        _ => return Err("operation must be `Apply` or `Update`".into()),
    };
    let api_version = get("apiVersion");
    if api_version.is_empty() {
        return Err("apiVersion must not be empty".into());
    }
    match get("fieldsType") {
        "FieldsV1" => {}
        "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
        other => {
            return Err(format!(
                "invalid fieldsType {other:?} in managed fields entry {i}"
            ));
        }
    }
    let set = match item.get("fieldsV1") {
        None | Some(Value::Null) => FieldSet::new(),
        Some(fields) => FieldSet::from_fields_v1(fields).map_err(|e| {
            format!("error decoding versioned set from entry {i}: error decoding set: {e}")
        })?,
    };
    let id = ManagerId::new(get("manager"), operation, api_version, get("subresource"));
    // `ManagerId::new` names an empty manager `unknown`; a decoded entry keeps its name.
    let id = ManagerId {
        manager: get("manager").to_string(),
        ..id
    };
    let entry = Entry {
        set,
        api_version: api_version.to_string(),
        time: item.get("time").and_then(Value::as_str).map(str::to_string),
    };
    Ok((id, entry))
}

/// Upstream's `IgnoreManagedFieldsTimestampsTransformer`: when `new` differs from `old`
/// only in managedFields times (same entries, same order), `old`'s times are put back so
/// the write is a no-op.
pub(super) fn revert_time_only_changes(old: &Value, new: &mut Value) {
    let (Some(Value::Array(before)), Some(Value::Array(after))) =
        (managed_fields(old), managed_fields(new))
    else {
        return;
    };
    let time = |e: &Value| e.get("time").cloned();
    let untimed = |e: &Value| {
        let mut e = e.clone();
        if let Some(map) = e.as_object_mut() {
            map.remove("time");
        }
        e
    };
    if before.len() != after.len()
        || before.iter().zip(after).all(|(a, b)| time(a) == time(b))
        || !before
            .iter()
            .zip(after)
            .all(|(a, b)| untimed(a) == untimed(b))
        || !equal_but_managed_fields(old, new)
    {
        return;
    }
    let times: Vec<Option<Value>> = before.iter().map(time).collect();
    let Some(Value::Array(entries)) = new
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
    else {
        return;
    };
    for (entry, time) in entries.iter_mut().zip(times) {
        if let Some(map) = entry.as_object_mut() {
            match time {
                Some(t) => map.insert("time".into(), t),
                None => map.remove("time"),
            };
        }
    }
}

fn equal_but_managed_fields(a: &Value, b: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else {
        return a == b;
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match (k.as_str(), b.get(k)) {
            (_, None) => false,
            ("metadata", Some(w)) => match (v, w) {
                (Value::Object(m), Value::Object(n)) => {
                    m.len() == n.len()
                        && m.iter()
                            .all(|(k, v)| k == "managedFields" || n.get(k) == Some(v))
                }
                _ => v == w,
            },
            (_, Some(w)) => v == w,
        })
}

/// Unix seconds of an RFC 3339 time (0 when absent or unreadable, as upstream's nil time).
pub(super) fn seconds(time: Option<&str>) -> i64 {
    time.and_then(parse_rfc3339).unwrap_or(0)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(range)?).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest.get(1..)?.split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_parse() {
        assert_eq!(seconds(Some("1970-01-01T00:00:00Z")), 0);
        assert_eq!(seconds(Some("2024-03-01T12:30:05Z")), 1_709_296_205);
        assert_eq!(
            seconds(Some("2024-03-01T13:30:05.123+01:00")),
            1_709_296_205
        );
        assert_eq!(seconds(Some("yesterday")), 0);
        assert_eq!(seconds(None), 0);
    }

    #[test]
    fn identifiers_match_upstream() {
        let apply = ManagerId::new("kubectl", Operation::Apply, "apps/v1", "");
        assert_eq!(
            apply.identifier(),
            r#"{"manager":"kubectl","operation":"Apply"}"#
        );
        let update = ManagerId::new("kubelet", Operation::Update, "v1", "status");
        assert_eq!(
            update.identifier(),
            r#"{"manager":"kubelet","operation":"Update","apiVersion":"v1","subresource":"status"}"#
        );
        assert_eq!(
            ManagerId::new("", Operation::Update, "v1", "").manager,
            "unknown"
        );
    }

    #[test]
    fn decode_rejects_what_upstream_rejects() {
        let obj = |entry: Value| json!({"metadata": {"managedFields": [entry]}});
        let cases = [
            (
                json!({"manager": "a", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}),
                "operation must be `Apply` or `Update`",
            ),
            (
                json!({"manager": "a", "operation": "Update", "fieldsType": "FieldsV1"}),
                "apiVersion must not be empty",
            ),
            (
                json!({"manager": "a", "operation": "Update", "apiVersion": "v1"}),
                "missing fieldsType in managed fields entry 0",
            ),
            (
                json!({"manager": "a", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}),
                "invalid fieldsType \"FieldsV2\" in managed fields entry 0",
            ),
        ];
        for (entry, want) in cases {
            assert_eq!(Managed::decode(&obj(entry)), Err(want.to_string()));
        }
        assert!(is_reset(&json!({"metadata": {"managedFields": []}})));
        assert!(is_reset(&json!({"metadata": {"managedFields": [{}]}})));
        assert!(!is_reset(&json!({"metadata": {"managedFields": null}})));
        assert!(!is_reset(&json!({"metadata": {}})));
    }

    #[test]
    fn encode_orders_apply_first_then_by_time() {
        let mut managed = Managed::default();
        for (name, op, time) in [
            ("b", Operation::Update, "2024-01-01T00:00:02Z"),
            ("a", Operation::Update, "2024-01-01T00:00:03Z"),
            ("z", Operation::Apply, "2024-01-01T00:00:09Z"),
        ] {
            let set =
                FieldSet::from_paths([&[super::super::path::PathElement::Field("x".into())][..]]);
            managed.entries.insert(
                ManagerId::new(name, op, "v1", ""),
                Entry {
                    set,
                    api_version: "v1".into(),
                    time: Some(time.into()),
                },
            );
        }
        let names: Vec<String> = managed
            .encode()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|e| e["manager"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(names, ["z", "b", "a"]);
    }

    #[test]
    fn update_entries_are_capped() {
        let mut managed = Managed::default();
        for i in 0..12 {
            let set =
                FieldSet::from_paths([
                    &[super::super::path::PathElement::Field(format!("f{i}"))][..]
                ]);
            managed.entries.insert(
                ManagerId::new(&format!("m{i:02}"), Operation::Update, "v1", ""),
                Entry {
                    set,
                    api_version: "v1".into(),
                    time: Some(format!("2024-01-01T00:00:{i:02}Z")),
                },
            );
        }
        managed.cap_update_managers();
        assert_eq!(managed.entries.len(), 10);
        let bucket = ManagerId::new(ANCIENT_CHANGES, Operation::Update, "v1", "");
        let ancient = managed.entries.get(&bucket).expect("bucket");
        assert_eq!(ancient.set.paths().len(), 3, "{}", ancient.set);
        assert_eq!(ancient.time.as_deref(), Some("2024-01-01T00:00:02Z"));
    }
}
