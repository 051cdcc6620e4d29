//! One protobuf message → its Kubernetes JSON form.
//!
//! Generic messages become objects keyed by JSON name ([`super::names`]); a handful of
//! apimachinery and apiextensions messages have custom JSON forms in Go (`MarshalJSON`) and
//! are converted by hand in [`special`].
//!
//! Zero values: gogo-protobuf writes every non-pointer field, so a body carries
//! `generateName: ""`, `imagePullPolicy: ""`, `paused: false` and the like where Go's JSON
//! (`omitempty`) has nothing. Defaulting on this server keys off absence, so an empty string
//! (or empty bytes) is dropped unless the schema requires the field (Go then encodes it even
//! when empty). Numbers and booleans are kept: on the wire a pointer field set to zero looks
//! exactly like a non-pointer zero, and dropping the former would change meaning
//! (`replicas: 0` would default to 1, `allowPrivilegeEscalation: false` would become unset),
//! while keeping the latter only leaves a redundant `paused: false` in the object.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::DecodeError;
use super::names::names;
use super::table::{Field, MESSAGES, Ty};
use super::wire::{Fields, WireValue};

/// Nesting limit; real objects stay far below it (a CRD schema nests a few dozen levels),
/// and it keeps a hostile body from exhausting the stack.
const MAX_DEPTH: u32 = 100;

/// The JSON value of message `index` encoded in `data`.
pub(super) fn message(index: usize, data: &[u8], depth: u32) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let msg = &MESSAGES[index];
    if let Some(v) = special(msg.key, data, depth)? {
        return Ok(v);
    }
    let field_names = &names()[index];
    let mut obj = Map::new();
    let mut inlined = Vec::new();
    for item in Fields::new(data) {
        let (tag, wire) = item?;
        // Unknown tags are skipped, as Go does: a newer client may send newer fields.
        let Some((pos, field)) = msg.field(tag) else {
            continue;
        };
        let name = &field_names[pos];
        let ctx = || format!("{}.{}", msg.path, field.name);
        match field.ty {
            Ty::MapString | Ty::MapBytes | Ty::MapMessage(_) => {
                let WireValue::Bytes(entry) = wire else {
                    return Err(DecodeError::WireType(ctx()));
                };
                let (k, v) = map_entry(field, entry, depth).map_err(|e| e.within(ctx))?;
                let map = obj
                    .entry(&*name.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(k, v);
                }
            }
            _ if field.repeated => {
                let values = repeated(field, wire, depth).map_err(|e| e.within(ctx))?;
                let array = obj
                    .entry(&*name.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(array) = array {
                    array.extend(values);
                }
            }
            _ => {
                let v = single(field.ty, wire, depth).map_err(|e| e.within(ctx))?;
                if name.inline {
                    inlined.push(v);
                } else if v.as_str() == Some("") && !name.required {
                    obj.remove(&*name.json);
                } else {
                    obj.insert(name.json.to_string(), v);
                }
            }
        }
    }
    for v in inlined {
        if let Value::Object(fields) = v {
            obj.extend(fields);
        }
    }
    Ok(Value::Object(obj))
}

/// The value of a non-repeated field.
fn single(ty: Ty, wire: WireValue<'_>, depth: u32) -> Result<Value, DecodeError> {
    Ok(match (ty, wire) {
        (Ty::String, WireValue::Bytes(b)) => Value::String(utf8(b)?),
        (Ty::Bytes, WireValue::Bytes(b)) => base64(b),
        (Ty::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        // int32 travels sign-extended to 64 bits; truncation restores it.
        (Ty::Int32, WireValue::Varint(v)) => Value::from(v as i32),
        (Ty::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Ty::Double, WireValue::Fixed64(v)) => Number::from_f64(f64::from_bits(v))
            .map(Value::Number)
            .ok_or(DecodeError::Malformed(
                "a double that is not a finite number",
            ))?,
        (Ty::Message(i), WireValue::Bytes(b)) => message(i, b, depth + 1)?,
        _ => return Err(DecodeError::WireType(String::new())),
    })
}

/// The values one occurrence of a repeated field contributes: one, or several when scalars
/// are packed (proto3 packs by default; gogo's proto2 output does not, so accept both).
fn repeated(field: &Field, wire: WireValue<'_>, depth: u32) -> Result<Vec<Value>, DecodeError> {
    let packable = matches!(field.ty, Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Double);
    match wire {
        WireValue::Bytes(mut packed) if packable => {
            let mut out = Vec::new();
            while !packed.is_empty() {
                let item = if field.ty == Ty::Double {
                    let (head, rest) = packed
                        .split_first_chunk::<8>()
                        .ok_or(DecodeError::Truncated)?;
                    packed = rest;
                    WireValue::Fixed64(u64::from_le_bytes(*head))
                } else {
                    WireValue::Varint(super::wire::read_varint(&mut packed)?)
                };
                out.push(single(field.ty, item, depth)?);
            }
            Ok(out)
        }
        _ => Ok(vec![single(field.ty, wire, depth)?]),
    }
}

/// A map entry message `{1: key, 2: value}`; a missing part is its type's empty value.
fn map_entry(field: &Field, entry: &[u8], depth: u32) -> Result<(String, Value), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    for item in Fields::new(entry) {
        match item? {
            (1, WireValue::Bytes(b)) => key = utf8(b)?,
            (2, WireValue::Bytes(b)) => {
                value = Some(match field.ty {
                    Ty::MapString => Value::String(utf8(b)?),
                    Ty::MapBytes => base64(b),
                    Ty::MapMessage(i) => message(i, b, depth + 1)?,
                    _ => return Err(DecodeError::WireType(String::new())),
                });
            }
            (1 | 2, _) => return Err(DecodeError::WireType(String::new())),
            _ => {}
        }
    }
    let value = match (value, field.ty) {
        (Some(v), _) => v,
        (None, Ty::MapMessage(i)) => message(i, &[], depth + 1)?,
        (None, _) => Value::String(String::new()),
    };
    Ok((key, value))
}

/// Messages whose Go type has its own JSON form. `None` → an ordinary message.
fn special(key: &str, data: &[u8], depth: u32) -> Result<Option<Value>, DecodeError> {
    const APIEXT: &str = "apiextensions_apiserver.pkg.apis.apiextensions.";
    let v = match key {
        // `resource.Quantity` is its canonical string; the zero Quantity prints as "0".
        "apimachinery.pkg.api.resource.quantity"
        | "apimachinery.pkg.api.resource.quantityvalue" => {
            let s = scalar_fields(data)?.string(1)?;
            Value::String(s.unwrap_or_else(|| "0".into()))
        }
        "apimachinery.pkg.util.intstr.intorstring" => {
            let f = scalar_fields(data)?;
            if f.varint(1) == Some(1) {
                Value::String(f.string(3)?.unwrap_or_default())
            } else {
                Value::from(f.varint(2).unwrap_or(0) as i32)
            }
        }
        // Go writes a zero Time as no bytes at all and reads it back as null; JSON keeps
        // whole seconds (Time) or microseconds (MicroTime).
        "apimachinery.pkg.apis.meta.v1.time" | "apimachinery.pkg.apis.meta.v1.microtime" => {
            if data.is_empty() {
                Value::Null
            } else {
                let f = scalar_fields(data)?;
                let seconds = f.varint(1).unwrap_or(0) as i64;
                let nanos = f.varint(2).unwrap_or(0) as i32;
                Value::String(rfc3339(seconds, nanos, key.ends_with("microtime"))?)
            }
        }
        "apimachinery.pkg.apis.meta.v1.duration" => Value::String(go_duration(
            scalar_fields(data)?.varint(1).unwrap_or(0) as i64,
        )),
        "apimachinery.pkg.runtime.rawextension" | "apimachinery.pkg.apis.meta.v1.fieldsv1" => {
            embedded(scalar_fields(data)?.bytes(1)?, depth)?
        }
        k if k.strip_prefix(APIEXT).is_some_and(|k| k.ends_with(".json")) => {
            embedded(scalar_fields(data)?.bytes(1)?, depth)?
        }
        k if k.starts_with(APIEXT) && k.contains(".jsonschemapropsor") => {
            schema_or(k, data, depth)?
        }
        _ => return Ok(None),
    };
    Ok(Some(v))
}

/// `JSONSchemaPropsOrBool` {1 allows, 2 schema}, `…OrArray` {1 schema, 2 jSONSchemas},
/// `…OrStringArray` {1 schema, 2 property}: the schema, or the other alternative.
fn schema_or(key: &str, data: &[u8], depth: u32) -> Result<Value, DecodeError> {
    let version = key.rsplit_once('.').map_or(key, |(v, _)| v);
    let props = super::table::find(&format!("{version}.jsonschemaprops")).ok_or(
        DecodeError::Malformed("JSONSchemaProps missing from the tables"),
    )?;
    let mut flag = false;
    let mut schema = None;
    let mut list = Vec::new();
    let or_bool = key.ends_with("orbool");
    for item in Fields::new(data) {
        match item? {
            (1, WireValue::Varint(v)) if or_bool => flag = v != 0,
            (2, WireValue::Bytes(b)) if or_bool => schema = Some(message(props, b, depth + 1)?),
            (1, WireValue::Bytes(b)) => schema = Some(message(props, b, depth + 1)?),
            (2, WireValue::Bytes(b)) if key.ends_with("orarray") => {
                list.push(message(props, b, depth + 1)?)
            }
            (2, WireValue::Bytes(b)) => list.push(Value::String(utf8(b)?)),
            _ => return Err(DecodeError::WireType(key.to_string())),
        }
    }
    Ok(match schema {
        Some(s) if or_bool || list.is_empty() => s,
        _ if or_bool => Value::Bool(flag),
        None if list.is_empty() => Value::Null,
        _ => Value::Array(list),
    })
}

/// Raw bytes that hold an embedded object: JSON, or nested Kubernetes protobuf.
fn embedded(raw: Option<&[u8]>, depth: u32) -> Result<Value, DecodeError> {
    match raw {
        None | Some([]) => Ok(Value::Null),
        Some(b) if b.starts_with(super::MAGIC) => super::decode_at(b, depth + 1),
        Some(b) => serde_json::from_slice(b).map_err(DecodeError::EmbeddedJson),
    }
}

/// Last-wins scalar fields of a small message, for the special forms.
struct ScalarFields<'a>(Vec<(u32, WireValue<'a>)>);

fn scalar_fields(data: &[u8]) -> Result<ScalarFields<'_>, DecodeError> {
    Ok(ScalarFields(Fields::new(data).collect::<Result<_, _>>()?))
}

impl<'a> ScalarFields<'a> {
    fn last(&self, tag: u32) -> Option<WireValue<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }
    fn varint(&self, tag: u32) -> Option<u64> {
        match self.last(tag)? {
            WireValue::Varint(v) => Some(v),
            _ => None,
        }
    }
    fn bytes(&self, tag: u32) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.last(tag) {
            Some(WireValue::Bytes(b)) => Ok(Some(b)),
            None => Ok(None),
            Some(_) => Err(DecodeError::WireType(String::new())),
        }
    }
    fn string(&self, tag: u32) -> Result<Option<String>, DecodeError> {
        self.bytes(tag)?.map(utf8).transpose()
    }
}

pub(super) fn utf8(b: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::Malformed("a string that is not UTF-8"))
}

fn base64(b: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b))
}

/// `2006-01-02T15:04:05Z` (`meta/v1.Time`) or `2006-01-02T15:04:05.000000Z` (`MicroTime`).
fn rfc3339(seconds: i64, nanos: i32, micro: bool) -> Result<String, DecodeError> {
    let ts = jiff::Timestamp::from_second(seconds)
        .map_err(|_| DecodeError::Malformed("a time out of range"))?;
    let mut s = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if micro {
        s.push_str(&format!(".{:06}", nanos.clamp(0, 999_999_999) / 1000));
    }
    s.push('Z');
    Ok(s)
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `250ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        let (unit, div) = match n {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", fraction(n, div));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = fraction(rest, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{secs}s"),
        (0, m) => format!("{sign}{m}m{secs}s"),
        (h, m) => format!("{sign}{h}h{m}m{secs}s"),
    }
}

/// `n / div` with the remainder as decimals, trailing zeros dropped.
fn fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let rem = n % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(250_000_000), "250ms");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(-3_723_500_000_000), "-1h2m3.5s");
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(
            rfc3339(0, 0, false).ok().as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(
            rfc3339(1_700_000_000, 123_456_789, true).ok().as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
        assert_eq!(
            rfc3339(-62_135_596_800, 0, false).ok().as_deref(),
            Some("0001-01-01T00:00:00Z")
        );
        assert!(rfc3339(i64::MAX, 0, false).is_err());
    }
}
