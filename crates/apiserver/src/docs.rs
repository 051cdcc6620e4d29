//! Serving discovery and OpenAPI documents: built once per registry (they change only
//! when CRDs do), answered from shared bytes with `ETag` revalidation.

use std::sync::{Arc, Mutex};

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::codec::{self, Body};
use crate::discovery::{self, Discovery, DiscoveryFormat, Document};
use crate::state::ApiState;

/// The documents of one registry snapshot. OpenAPI is built on first use: discovery is
/// asked for by every client, the OpenAPI documents (tens of MiB of schemas while built)
/// only by kubectl's validation and `explain`.
pub struct Docs {
    pub discovery: Discovery,
    registry: Arc<apimachinery::registry::Registry>,
    openapi: std::sync::OnceLock<crate::openapi::OpenApi>,
}

impl Docs {
    pub fn openapi(&self) -> &crate::openapi::OpenApi {
        self.openapi
            .get_or_init(|| crate::openapi::OpenApi::new(&self.registry))
    }
}

/// Documents for the current registry, rebuilt when the registry is replaced.
#[derive(Default)]
pub struct DocCache {
    /// (registry snapshot address, its documents). The address identifies the snapshot
    /// because the registry is replaced as a whole, never mutated.
    current: Mutex<Option<(usize, Arc<Docs>)>>,
}

impl DocCache {
    pub fn get(&self, state: &ApiState) -> Arc<Docs> {
        let registry = state.registry();
        let id = Arc::as_ptr(&registry) as usize;
        let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, docs)) = guard.as_ref()
            && *cached == id
        {
            return docs.clone();
        }
        let docs = Arc::new(Docs {
            discovery: Discovery::new(&registry, &state.advertise_address),
            registry: registry.clone(),
            openapi: std::sync::OnceLock::new(),
        });
        *guard = Some((id, docs.clone()));
        docs
    }
}

fn document(doc: &Document, content_type: &str, headers: &HeaderMap) -> Response<Body> {
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut resp = if doc.matches(if_none_match) {
        let mut r = Response::new(codec::full(bytes::Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = codec::json_bytes(StatusCode::OK, doc.body());
        if let Ok(v) = HeaderValue::from_str(content_type) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    if let Ok(v) = HeaderValue::from_str(&doc.etag()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// Serves `/api`, `/apis`, `/apis/<g>`, `/api/v1`, `/apis/<g>/<v>` and `/openapi/v3…`;
/// `None` for any other path.
pub fn serve(
    state: &ApiState,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match segments.as_slice() {
        ["api"] | ["apis"] => {
            let docs = state.docs.get(state);
            let legacy = segments[0] == "api";
            Some(vary_accept(match discovery::negotiate(accept) {
                Some(DiscoveryFormat::AggregatedV2) => {
                    let doc = if legacy {
                        docs.discovery.aggregated_core()
                    } else {
                        docs.discovery.aggregated_apis()
                    };
                    document(doc, discovery::AGGREGATED_V2_CONTENT_TYPE, headers)
                }
                Some(DiscoveryFormat::Legacy) => {
                    let doc = if legacy {
                        docs.discovery.api_versions()
                    } else {
                        docs.discovery.api_group_list()
                    };
                    document(doc, discovery::LEGACY_CONTENT_TYPE, headers)
                }
                None => codec::error(&apimachinery::status::ApiError::not_acceptable(
                    "only the following media types are accepted: application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
                )),
            }))
        }
        ["apis", group] => {
            let docs = state.docs.get(state);
            Some(match docs.discovery.api_group(group) {
                Some(doc) => document(doc, discovery::LEGACY_CONTENT_TYPE, headers),
                None => not_found(),
            })
        }
        ["api", version] | ["apis", _, version] => {
            let group = if segments[0] == "api" {
                ""
            } else {
                segments[1]
            };
            let docs = state.docs.get(state);
            Some(match docs.discovery.resource_list(group, version) {
                Some(doc) => document(doc, discovery::LEGACY_CONTENT_TYPE, headers),
                None => not_found(),
            })
        }
        ["openapi", "v3", rest @ ..] => {
            let docs = state.docs.get(state);
            let gv = rest.join("/");
            Some(match docs.openapi().document(&gv) {
                Some(doc) => {
                    let asked = query_param(query, "hash");
                    match asked {
                        // A stale hash is redirected to the current document (upstream: 301).
                        Some(h) if h != doc.hash() => {
                            let mut r = Response::new(codec::full(bytes::Bytes::new()));
                            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
                            if let Ok(v) = HeaderValue::from_str(&format!(
                                "/openapi/v3/{gv}?hash={}",
                                doc.hash()
                            )) {
                                r.headers_mut().insert(header::LOCATION, v);
                            }
                            r
                        }
                        Some(_) => {
                            let mut r = document(doc, crate::openapi::V3_CONTENT_TYPE, headers);
                            r.headers_mut().insert(
                                header::CACHE_CONTROL,
                                HeaderValue::from_static("public, immutable"),
                            );
                            r
                        }
                        None => document(doc, crate::openapi::V3_CONTENT_TYPE, headers),
                    }
                }
                None => not_found(),
            })
        }
        ["openapi", "v2"] => Some(match crate::openapi::v2_document(accept) {
            Some((content_type, body)) => {
                let mut r = Response::new(codec::full(body));
                if let Ok(v) = HeaderValue::from_str(content_type) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r
            }
            None => codec::error(&apimachinery::status::ApiError::not_acceptable(
                "only the following media types are accepted: application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json",
            )),
        }),
        _ => None,
    }
}

fn vary_accept(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn not_found() -> Response<Body> {
    codec::error(&apimachinery::status::ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    ))
}
