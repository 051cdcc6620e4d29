//! HTTPS serving: TLS accept loop, authentication, and routing of a request to discovery,
//! OpenAPI, health, version or the REST verbs.

use std::sync::Arc;

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::codec::{self, Body};
use crate::request::{self, ApiPath, Query};
use crate::state::ApiState;
use crate::{docs, rest};

/// Accepts connections until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ApiState>,
    stop: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(1000);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// Serves one request; never fails (errors become `Status` responses).
pub async fn handle(state: Arc<ApiState>, req: Request<Incoming>) -> Response<Body> {
    let span = tracing::debug_span!("request", method = %req.method(), path = %req.uri().path());
    let metrics = state.metrics.begin(
        req.method(),
        req.uri(),
        req.headers(),
        authenticated(&state, req.headers()),
    );
    async move {
        let resp = route(state, req).await.unwrap_or_else(|e| codec::error(&e));
        tracing::debug!(status = resp.status().as_u16(), "done");
        metrics.finish(resp.status());
        resp
    }
    .instrument(span)
    .await
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(codec::full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn authenticated(state: &ApiState, headers: &http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
        return false;
    };
    // Constant-time comparison: the token is the cluster's admin credential.
    let (a, b) = (token.as_bytes(), state.token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn version_info() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("v1.33.0+rkube-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn route(state: Arc<ApiState>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => return Ok(text(StatusCode::OK, "ok")),
        "/version" | "/version/" => return Ok(codec::json(StatusCode::OK, &version_info())),
        "/cacerts" => {
            let mut resp = text(StatusCode::OK, "");
            *resp.body_mut() = codec::full(Bytes::from(state.ca_pem.clone()));
            return Ok(resp);
        }
        _ => {}
    }
    if path.starts_with("/healthz/") || path.starts_with("/livez/") || path.starts_with("/readyz/")
    {
        return Ok(text(StatusCode::OK, "ok"));
    }
    if !authenticated(&state, req.headers()) {
        return Err(ApiError::unauthorized());
    }
    if path == "/metrics" {
        let mut resp = text(StatusCode::OK, "");
        *resp.body_mut() = codec::full(Bytes::from(state.metrics.render(&state)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        return Ok(resp);
    }
    let query = Query::parse(req.uri().query());
    if let Some(resp) = docs::serve(&state, &path, req.uri().query(), req.headers()) {
        return Ok(resp);
    }
    let method = req.method().clone();
    match request::parse(&method, &path, &query) {
        Some(ApiPath::Resource(info))
            if matches!(
                info.subresource.as_deref(),
                Some("exec" | "attach" | "portforward")
            ) && matches!(method, Method::GET | Method::POST) =>
        {
            let raw_query = req.uri().query().map(str::to_string);
            let ctx = rest::context(state, info, query, req.headers().clone())?;
            rest::stream::connect(&ctx, raw_query.as_deref(), req).await
        }
        Some(ApiPath::Resource(info)) => {
            let (parts, body) = req.into_parts();
            let body = if matches!(method, Method::GET | Method::HEAD) {
                Bytes::new()
            } else {
                codec::read_body(body).await?
            };
            rest::serve(state, info, query, parts.headers, body).await
        }
        Some(_) | None => Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
    }
}
