//! Request bodies in, responses out: media types, size limits and `Status` errors.

use std::convert::Infallible;

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use serde_json::Value;

pub type Body = BoxBody<Bytes, Infallible>;

/// Upstream's limit on a request body (`MaxRequestBodyBytes`, 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json_bytes(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

pub fn error(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &err.to_json())
}

/// The media type of a header value, without parameters, lower-cased.
pub fn media_type(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Decodes a create/update body (JSON, YAML or Kubernetes protobuf) into a JSON object.
pub fn decode_object(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = match content_type {
        "" | "application/json" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: {}",
                json_error_text(&e)
            ))
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the YAML body is not valid UTF-8"))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
        }
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            json_type_name(&value)
        )));
    }
    Ok(value)
}

/// Go's name for a JSON value's type in `json: cannot unmarshal X into …`.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn json_error_text(e: &serde_json::Error) -> String {
    format!("{e}")
}

/// Beyond this much, an oversized body is no longer drained before answering 413.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

/// Reads a body up to [`MAX_BODY`], answering 413 beyond it. An oversized body is read to
/// its end (up to a bound) before the answer: HTTP/2 clients such as curl treat a reset
/// stream as a transport failure and never show the 413.
pub async fn read_body(mut body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if total > MAX_BODY + MAX_DRAIN {
                break;
            }
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::request_entity_too_large(format!(
            "Request entity too large: limit is {MAX_BODY}"
        )));
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_yaml() {
        let v = decode_object("application/json", br#"{"kind":"Pod"}"#).expect("json");
        assert_eq!(v["kind"], "Pod");
        let v =
            decode_object("application/yaml", b"kind: Pod\nmetadata:\n  name: x\n").expect("yaml");
        assert_eq!(v["metadata"]["name"], "x");
    }

    #[test]
    fn rejects_malformed_bodies_with_400() {
        let e = decode_object("application/json", b"{nope").expect_err("bad json");
        assert_eq!(e.code(), 400);
        assert!(
            e.message()
                .starts_with("couldn't get version/kind; json parse error")
        );
        let e = decode_object("application/json", b"[1]").expect_err("array");
        assert_eq!(e.code(), 400);
        // Protobuf is decoded, so garbage in it is a 400 too.
        let e = decode_object("application/vnd.kubernetes.protobuf", b"x").expect_err("protobuf");
        assert_eq!(e.code(), 400);
        let e = decode_object("application/cbor", b"x").expect_err("cbor");
        assert_eq!(e.code(), 415);
    }
}
