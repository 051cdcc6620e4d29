//! The REST verbs over any registered resource, one file per verb.
//!
//! # Layout
//! - `mod.rs`: the per-request context and dispatch by verb.
//! - `create.rs`, `get.rs`, `list.rs`, `watch.rs`, `update.rs`, `patch.rs`, `delete.rs`:
//!   the verbs (`delete.rs` also serves deletecollection).
//! - `scale.rs`: the `scale` subresource; `pods.rs`: `pods/binding` and `pods/eviction`;
//!   `log.rs`: `pods/log`, proxied to the node's agent; `stream.rs`: `pods/exec`,
//!   `pods/attach` and `pods/portforward`, upgraded connections proxied to the agent.
//! - `write.rs`: what every write shares: decoding a body into a checked object, the
//!   store round trip, guaranteed updates.
//! - `filter.rs`: namespace, label and field selection of objects.

mod create;
mod delete;
mod filter;
mod get;
mod list;
mod log;
mod patch;
mod pods;
mod scale;
pub mod stream;
mod update;
mod watch;
pub mod write;

use std::sync::Arc;

use apimachinery::registry::ResourceType;
use apimachinery::status::{ApiError, qualified_resource};
use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::codec::Body;
use crate::request::{Query, RequestInfo};
use crate::state::ApiState;
use crate::table;

/// Everything a verb handler needs about one request.
pub struct Ctx {
    pub state: Arc<ApiState>,
    pub info: RequestInfo,
    pub query: Query,
    pub rt: Arc<ResourceType>,
    pub headers: HeaderMap,
}

impl Ctx {
    pub fn namespace(&self) -> Option<&str> {
        if self.rt.namespaced {
            self.info.namespace.as_deref()
        } else {
            None
        }
    }

    pub fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or("")
    }

    pub fn key(&self) -> String {
        self.rt.storage_key(self.namespace(), self.name())
    }

    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.rt.group, &self.rt.plural, self.name())
    }

    /// Who a write is recorded for in `managedFields`: the `fieldManager` parameter, else
    /// the client's User-Agent product (`kubectl`, `python-requests`, …).
    pub fn field_manager(&self) -> String {
        let agent = self
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        apimachinery::ssa::manager_or_user_agent(self.query.value("fieldManager"), agent)
    }

    /// A server-side apply (`PATCH` with `application/apply-patch+yaml`).
    pub fn is_apply(&self) -> bool {
        self.info.verb == "patch"
            && crate::codec::media_type(&self.headers, http::header::CONTENT_TYPE)
                == "application/apply-patch+yaml"
    }

    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    /// Whether the client asked for a server-side Table (kubectl's human output), and how
    /// much of each object its rows carry.
    pub fn table(&self) -> Result<Option<TableRequest>, ApiError> {
        let accept = self
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        if !table::wants_table(accept) {
            return Ok(None);
        }
        let version = match table::negotiate(accept) {
            Ok(table::Output::Table(v)) => v,
            _ => return Ok(None),
        };
        let include = table::Include::from_query(self.query.get("includeObject"))?;
        Ok(Some(TableRequest { version, include }))
    }

    /// Renders objects as a Table for this request's resource.
    pub fn render_table(
        &self,
        req: &TableRequest,
        objects: &[&serde_json::Value],
        rv: &str,
        continue_token: Option<&str>,
        headers: bool,
    ) -> serde_json::Value {
        let mut options = table::Options::new(rv);
        options.include = req.include;
        options.version = req.version;
        options.headers = headers;
        options.continue_token = continue_token;
        options.printer_columns = self.rt.printer_columns.as_ref();
        table::render(&self.rt, objects, &options)
    }
}

/// A Table response's shape.
#[derive(Clone, Copy, Debug)]
pub struct TableRequest {
    pub version: table::MetaVersion,
    pub include: table::Include,
}

/// Checks a resource request's resource, scope, subresource and verb.
pub fn context(
    state: Arc<ApiState>,
    info: RequestInfo,
    query: Query,
    headers: HeaderMap,
) -> Result<Ctx, ApiError> {
    let registry = state.registry();
    let rt = registry
        .get(&info.group, &info.version, &info.resource)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        })?;
    if info.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    if let Some(sub) = &info.subresource
        && !rt.has_subresource(sub)
    {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let verb = info.verb;
    if !rt.supports(verb) && info.subresource.is_none() {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            qualified_resource(&rt.group, &rt.plural)
        )));
    }
    Ok(Ctx {
        state,
        info,
        query,
        rt,
        headers,
    })
}

/// Serves a resource request: checks the resource, scope and verb, then runs the verb.
pub async fn serve(
    state: Arc<ApiState>,
    info: RequestInfo,
    query: Query,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    // metrics.k8s.io is computed, not stored, so it has no registry entry.
    if info.group == crate::resource_metrics::GROUP {
        return crate::resource_metrics::serve(&state, &info, &query, &headers).await;
    }
    let ctx = context(state, info, query, headers)?;
    let verb = ctx.info.verb;
    match (verb, ctx.info.subresource.as_deref()) {
        ("get", Some("scale")) => scale::get(&ctx).await,
        ("update", Some("scale")) => scale::write(&ctx, body, false).await,
        ("patch", Some("scale")) => scale::write(&ctx, body, true).await,
        ("create", Some("binding")) => pods::bind(&ctx, body).await,
        ("create", Some("eviction")) => pods::evict(&ctx, body).await,
        ("get", Some("log")) => log::log(&ctx).await,
        ("get", _) => get::get(&ctx).await,
        ("list", None) => list::list(&ctx).await,
        ("watch", None) => watch::watch(&ctx).await,
        ("create", None) => create::create(&ctx, body).await,
        ("update", _) => update::update(&ctx, body).await,
        ("patch", _) => patch::patch(&ctx, body).await,
        ("delete", None) => delete::delete(&ctx, body).await,
        ("deletecollection", None) => delete::delete_collection(&ctx, body).await,
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}
