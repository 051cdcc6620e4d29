//! OpenAPI documents: `/openapi/v3` (a root listing one document per group version) and
//! `/openapi/v3/<api|apis/group>/<version>` (OpenAPI 3.0 with `paths` and
//! `components.schemas`), plus a minimal `/openapi/v2` for old kubectl.
//!
//! kubectl reads these documents on every create/apply/explain:
//! - server-side field validation is assumed only if, in the group version's document, a
//!   PATCH operation tagged with the kind's `x-kubernetes-group-version-kind` lists an inline
//!   `fieldValidation` query parameter (cli-runtime `supportsQueryParamV3`); otherwise kubectl
//!   validates on the client or refuses;
//! - `kubectl explain` finds the kind through the `x-kubernetes-group-version-kind` of the
//!   resource's list/item operations, then the schema in `components.schemas` whose
//!   `x-kubernetes-group-version-kind` array contains that exact `{group, kind, version}`
//!   object, and follows `$ref`/`allOf` from there.
//!
//! # Layout
//! - `mod.rs`: [`OpenApi`] (all documents of a registry, serialized and hashed once), the
//!   root document, and the `/openapi/v2` stand-in.
//! - `schemas.rs`: `components.schemas` from k8s-openapi's schemars schemas and CRD schemas.
//! - `paths.rs`: `paths` (operations, parameters, request and response bodies).

mod paths;
mod schemas;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use apimachinery::registry::Registry;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::discovery::{Document, content_hash};

/// The Kubernetes version the documents describe (`info.version`).
const KUBERNETES_VERSION: &str = "v1.33.0";

/// Content type of `/openapi/v3` and of every group-version document.
pub const V3_CONTENT_TYPE: &str = "application/json";

/// The `Content-Type` of a protobuf `/openapi/v2` response. kubectl asks for
/// `…spec.v2@v1.0+protobuf`, but Go's `mime.ParseMediaType` rejects the `@`, so upstream
/// (kube-openapi `handler`) answers with this dotted form, and kubectl 1.27 fails with
/// "mime: unexpected content after media subtype" on anything else.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Every OpenAPI v3 document of one registry, serialized and hashed.
///
/// Built once per registry; [`OpenApi::rebuild`] reuses the documents of group versions
/// that did not change, so a CRD change costs one document, not all of them.
#[derive(Clone, Debug)]
pub struct OpenApi {
    root: Document,
    /// `api/v1`, `apis/apps/v1`, … → document.
    docs: BTreeMap<String, CachedDoc>,
}

#[derive(Clone, Debug)]
struct CachedDoc {
    /// Hash of everything the document is built from.
    fingerprint: String,
    doc: Document,
}

impl OpenApi {
    /// Builds every group-version document and the root.
    pub fn new(registry: &Registry) -> Self {
        Self::build(registry, &BTreeMap::new())
    }

    /// The documents of a changed registry, reusing unchanged group versions from `self`.
    pub fn rebuild(&self, registry: &Registry) -> Self {
        Self::build(registry, &self.docs)
    }

    fn build(registry: &Registry, previous: &BTreeMap<String, CachedDoc>) -> Self {
        let mut docs = BTreeMap::new();
        for g in registry.groups() {
            for v in &g.versions {
                let key = gv_path(&g.name, v);
                let common = common_gvs(registry, &g.name, v);
                let fingerprint = fingerprint(registry, &g.name, v, &common);
                let doc = match previous.get(&key) {
                    Some(p) if p.fingerprint == fingerprint => p.doc.clone(),
                    _ => Document::from_json(&build_document(registry, &g.name, v, &common)),
                };
                docs.insert(key, CachedDoc { fingerprint, doc });
            }
        }
        let paths: Map<String, Value> = docs
            .iter()
            .map(|(key, d)| {
                let url = format!("/openapi/v3/{key}?hash={}", d.doc.hash());
                (key.clone(), json!({"serverRelativeURL": url}))
            })
            .collect();
        let root = Document::from_json(&json!({"paths": paths}));
        OpenApi { root, docs }
    }

    /// `GET /openapi/v3`. Serve with its ETag; upstream sends no `Cache-Control` here, so
    /// clients revalidate it and learn new hashes.
    pub fn root(&self) -> &Document {
        &self.root
    }

    /// `GET /openapi/v3/<path>`, `path` being `api/v1` or `apis/<group>/<version>` (no leading
    /// slash, no query). `None` → 404. The document's [`Document::hash`] is the `hash=` value
    /// the root advertises for it.
    pub fn group_version(&self, path: &str) -> Option<&Document> {
        self.docs.get(path.trim_matches('/')).map(|d| &d.doc)
    }

    /// Any document under `/openapi/v3`: `path` is what follows `/openapi/v3/` (`""` for the
    /// root, `apis/apps/v1` for a group version). `None` → 404.
    pub fn document(&self, path: &str) -> Option<&Document> {
        if path.trim_matches('/').is_empty() {
            Some(&self.root)
        } else {
            self.group_version(path)
        }
    }

    /// The served group-version paths (`api/v1`, `apis/apps/v1`, …).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.docs.keys().map(String::as_str)
    }
}

/// `api/v1` or `apis/<group>/<version>`: the key under `/openapi/v3` (client-go
/// `gvToAPIPath`).
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The OpenAPI 3.0 document of one group version, unserialized (for tests and tools; the
/// server uses the cached [`OpenApi`]).
pub fn group_version_document(registry: &Registry, group: &str, version: &str) -> Value {
    build_document(
        registry,
        group,
        version,
        &common_gvs(registry, group, version),
    )
}

/// The group versions listed in the `x-kubernetes-group-version-kind` of the shared
/// `DeleteOptions` and `WatchEvent` schemas: every built-in group version (upstream lists
/// every group version of its scheme) plus the document's own. Custom groups other than the
/// document's own are left out so built-in documents do not change when CRDs come and go.
fn common_gvs(registry: &Registry, group: &str, version: &str) -> Vec<(String, String)> {
    let mut gvs: Vec<(String, String)> = registry
        .all()
        .iter()
        .filter(|t| t.typed.is_some())
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    gvs.push((group.to_string(), version.to_string()));
    gvs.sort();
    gvs.dedup();
    gvs
}

/// A hash of every input of a group-version document: if it is unchanged, so is the
/// document (built-in schemas are fixed at compile time).
fn fingerprint(
    registry: &Registry,
    group: &str,
    version: &str,
    common: &[(String, String)],
) -> String {
    let mut s = format!("{common:?}\n");
    for rt in registry.resources_of(group, version) {
        let schema_name = rt.typed.map(|h| (h.schema_name)().into_owned());
        let custom = rt.custom_schema.as_ref().map(Value::to_string);
        s.push_str(&format!(
            "{}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}\n",
            rt.plural,
            rt.kind,
            rt.list_kind,
            rt.namespaced,
            rt.verbs,
            rt.subresources,
            schema_name,
            custom
        ));
    }
    content_hash(s.as_bytes())
}

fn build_document(
    registry: &Registry,
    group: &str,
    version: &str,
    common: &[(String, String)],
) -> Value {
    let mut components = schemas::Components::new();
    let mut paths = Map::new();
    paths::add_api_resources(&mut paths, group, version, &components.common);
    for rt in registry.resources_of(group, version) {
        let names = components.add_resource(registry, rt);
        paths::add_resource(&mut paths, rt, &names, &components.common);
    }
    let schemas = components.finish(common);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "authorization",
                    "description": "Bearer token authentication",
                }
            },
        },
        "security": [{"BearerToken": []}],
    })
}

/// `GET /openapi/v2`: the response `(Content-Type, body)` for a request's `Accept` header,
/// `None` if nothing acceptable was asked for (406). Like upstream, both the `@v1.0` and
/// the `.v1.0` protobuf media types are understood, and `*/*` gets JSON.
pub fn v2_document(accept: Option<&str>) -> Option<(&'static str, Bytes)> {
    let accept = accept.filter(|a| !a.trim().is_empty()).unwrap_or("*/*");
    accept.split(',').find_map(|range| {
        let media = range
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json" | "application/*" | "*/*" => {
                Some((V3_CONTENT_TYPE, Bytes::from(v2_json().to_string())))
            }
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
            | "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" => {
                Some((V2_PROTOBUF_CONTENT_TYPE, v2_protobuf()))
            }
            _ => None,
        }
    })
}

/// The body of `/openapi/v2` for protobuf requests: a gnostic `openapi.v2.Document` holding
/// only `swagger: "2.0"` and `info`, with no definitions.
///
/// kubectl 1.27/1.28 fetch and parse this before every create/apply (`Validator` calls
/// `OpenAPISchema()`) and fail the command if it is missing. Once the v3 verifier has found
/// `fieldValidation` they never consult it. kubectl apply falls back to it when the v3
/// document offers no strategic merge patch, finds no definition, and then computes the
/// patch from its compiled-in types (correct for every built-in kind).
pub fn v2_protobuf() -> Bytes {
    // Field numbers from gnostic's OpenAPIv2.proto: Document.swagger = 1, Document.info = 2,
    // Info.title = 1, Info.version = 2; all length-delimited (wire type 2).
    let mut info = Vec::new();
    push_len_delimited(&mut info, 1, b"Kubernetes");
    push_len_delimited(&mut info, 2, KUBERNETES_VERSION.as_bytes());
    let mut doc = Vec::new();
    push_len_delimited(&mut doc, 1, b"2.0");
    push_len_delimited(&mut doc, 2, &info);
    Bytes::from(doc)
}

/// Protobuf length-delimited field; lengths here are < 128, so the varint is one byte.
fn push_len_delimited(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    let mut len = bytes.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
}

/// The body of `/openapi/v2` for JSON requests: the same empty Swagger 2.0 document.
pub fn v2_json() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": {},
        "definitions": {},
    })
}
