//! Content negotiation for object endpoints: does the `Accept` header ask for the object
//! itself, a `Table`, or `PartialObjectMetadata`?
//!
//! Mirrors upstream's `NegotiateMediaTypeOptions` with the REST scope's restrictions:
//! ranges are tried by descending `q` (more specific first among equals, otherwise in
//! header order); the first one this server can serve wins. `as`/`g`/`v` parameters ask for
//! a conversion, which must be `Table`, `PartialObjectMetadata` or
//! `PartialObjectMetadataList` in `meta.k8s.io/v1` or `v1beta1`; a range asking for
//! anything else is skipped, not an error. `stream` may only be `watch`. Only JSON is served
//! (no YAML, protobuf or CBOR), so ranges for those are skipped too.

use apimachinery::status::ApiError;

/// The `meta.k8s.io` version a conversion was asked in; the response's `apiVersion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetaVersion {
    #[default]
    V1,
    V1Beta1,
}

impl MetaVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            MetaVersion::V1 => "meta.k8s.io/v1",
            MetaVersion::V1Beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// What the response body should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// The object or list itself.
    Object,
    Table(MetaVersion),
    /// One object's metadata (GET, WATCH events).
    PartialObjectMetadata(MetaVersion),
    /// A list of object metadata (LIST).
    PartialObjectMetadataList(MetaVersion),
}

/// The message of upstream's 406 when no range can be served, listing what this server
/// serves.
pub const NOT_ACCEPTABLE: &str = "only the following media types are accepted: application/json";

/// Negotiates the `Accept` header of a request for an object, a list or a watch. A
/// missing or empty header means the object itself. `Err` is upstream's
/// `406 NotAcceptable` when no range can be served.
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Object);
    };
    let mut ranges: Vec<Range> = accept.split(',').filter_map(Range::parse).collect();
    // Stable: equal ranges keep header order.
    ranges.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then((a.ty == "*").cmp(&(b.ty == "*")))
            .then((a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    ranges
        .iter()
        .filter(|r| r.q > 0.0)
        .find_map(Range::output)
        .ok_or_else(|| ApiError::not_acceptable(NOT_ACCEPTABLE))
}

/// Whether the `Accept` header selects a `Table` (kubectl's human-readable `get`).
pub fn wants_table(accept: Option<&str>) -> bool {
    matches!(negotiate(accept), Ok(Output::Table(_)))
}

/// One media range of an `Accept` header.
struct Range<'a> {
    ty: String,
    subtype: String,
    q: f64,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> Range<'a> {
    fn parse(text: &'a str) -> Option<Range<'a>> {
        let mut parts = text.split(';');
        let media = parts.next()?.trim();
        let (ty, subtype) = media.split_once('/').unwrap_or((media, "*"));
        if ty.is_empty() {
            return None;
        }
        let mut q = 1.0;
        let mut params = Vec::new();
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k == "q" {
                q = v.parse().unwrap_or(0.0);
            } else {
                params.push((k, v));
            }
        }
        Some(Range {
            ty: ty.trim().to_ascii_lowercase(),
            subtype: subtype.trim().to_ascii_lowercase(),
            q,
            params,
        })
    }

    /// What this range selects, if this server can serve it.
    fn output(&self) -> Option<Output> {
        let json = matches!(
            (self.ty.as_str(), self.subtype.as_str()),
            ("application", "json" | "*") | ("*", "*")
        );
        if !json {
            return None;
        }
        let (mut kind, mut group, mut version) = (None, None, None);
        for &(k, v) in &self.params {
            match k {
                "as" => kind = Some(v),
                "g" => group = Some(v),
                "v" => version = Some(v),
                "stream" if !v.is_empty() && v != "watch" => return None,
                "sv" if !v.is_empty() && v != "v1" => return None,
                _ => {}
            }
        }
        if kind.is_none() && group.is_none() && version.is_none() {
            return Some(Output::Object);
        }
        let meta = match (group.unwrap_or(""), version.unwrap_or("")) {
            ("meta.k8s.io", "v1") => MetaVersion::V1,
            ("meta.k8s.io", "v1beta1") => MetaVersion::V1Beta1,
            _ => return None,
        };
        match kind.unwrap_or("") {
            "Table" => Some(Output::Table(meta)),
            "PartialObjectMetadata" => Some(Output::PartialObjectMetadata(meta)),
            "PartialObjectMetadataList" => Some(Output::PartialObjectMetadataList(meta)),
            _ => None,
        }
    }
}
