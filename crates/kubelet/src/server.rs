//! The node agent's HTTPS API, where the API server comes for what only the node has:
//! container logs today (`GET /containerLogs/{namespace}/{pod}/{container}`), exec, attach
//! and port-forward later. Upstream's kubelet serves the same paths on port 10250.
//!
//! The serving certificate is self-signed, made at start for the node's names and IPs
//! (upstream's default without `--tls-cert-file`; the API server does not verify it).
//! Every request but `/healthz` must carry `Authorization: Bearer <token>` with the token
//! the agent was given; others get 401.
//!
//! Errors are answered in plain text with the status upstream's kubelet uses; the API
//! server turns them into a Kubernetes `Status`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use jiff::{SignedDuration, Timestamp};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::logs::{self, LogOptions, LogSource};
use crate::stream::{self, StreamRequest, StreamSource};

/// The port upstream's kubelet serves on.
pub const DEFAULT_PORT: u16 = 10250;

/// How to run the agent's server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The bearer token a request must carry.
    pub token: String,
    /// The certificate's common name.
    pub node_name: String,
    /// Names and IPs the certificate is valid for.
    pub sans: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("generating the serving certificate")]
    Certificate(#[from] rcgen::Error),
    #[error("setting up TLS")]
    Tls(#[from] rustls::Error),
    #[error("listening on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// A response body: whole, or streamed from a log.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// What the server serves from.
#[derive(Clone)]
pub struct Sources {
    /// Container log files.
    pub logs: Arc<dyn LogSource>,
    /// exec, attach and port-forward; without it those paths are 404.
    pub streams: Option<Arc<dyn StreamSource>>,
    /// `/stats/summary` and `/metrics`; without it those paths are 404.
    pub stats: Option<Arc<crate::stats::Collector>>,
}

/// Binds `cfg.bind` and serves until `stop` is cancelled. Returns the bound address (the
/// port chosen when 0 was asked) and the accept loop's task, which ends after `stop`.
pub async fn start(
    cfg: ServerConfig,
    sources: Sources,
    stop: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), ServerError> {
    let tls = tls_config(&cfg)?;
    let listener = TcpListener::bind(cfg.bind)
        .await
        .map_err(|source| ServerError::Listen {
            addr: cfg.bind,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: cfg.bind,
            source,
        })?;
    let handler = Arc::new(Handler {
        token: cfg.token,
        logs: sources.logs,
        streams: sources.streams,
        stats: sources.stats,
    });
    tracing::info!(%addr, node = %cfg.node_name, "node agent server listening");
    let task = tokio::spawn(serve(listener, tls, handler, stop));
    Ok((addr, task))
}

/// A self-signed certificate for the node's names, offered over HTTP/2 and HTTP/1.1.
fn tls_config(cfg: &ServerConfig) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let mut params = rcgen::CertificateParams::new(cfg.sans.clone())?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, cfg.node_name.as_str());
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<Handler>,
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
        let (acceptor, handler, stop) = (acceptor.clone(), handler.clone(), stop.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.handle(req).await) }
            });
            // Upgrades are kept for exec, attach and port-forward.
            let builder = auto::Builder::new(TokioExecutor::new());
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

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Healthz,
    Stats(crate::stats::Page),
    ContainerLogs {
        namespace: String,
        pod: String,
        container: String,
    },
    Exec {
        namespace: String,
        pod: String,
        container: String,
    },
    Attach {
        namespace: String,
        pod: String,
        container: String,
    },
    PortForward {
        namespace: String,
        pod: String,
    },
}

fn route(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect();
    match segments.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["healthz"] => Some(Route::Healthz),
        ["stats", "summary"] => Some(Route::Stats(crate::stats::Page::Summary)),
        ["metrics"] => Some(Route::Stats(crate::stats::Page::Metrics)),
        ["containerLogs", namespace, pod, container]
            if !namespace.is_empty() && !pod.is_empty() && !container.is_empty() =>
        {
            Some(Route::ContainerLogs {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                container: container.to_string(),
            })
        }
        [kind @ ("exec" | "attach"), namespace, pod, container]
            if !namespace.is_empty() && !pod.is_empty() && !container.is_empty() =>
        {
            let (namespace, pod, container) = (
                namespace.to_string(),
                pod.to_string(),
                container.to_string(),
            );
            Some(if kind == "exec" {
                Route::Exec {
                    namespace,
                    pod,
                    container,
                }
            } else {
                Route::Attach {
                    namespace,
                    pod,
                    container,
                }
            })
        }
        ["portForward", namespace, pod] if !namespace.is_empty() && !pod.is_empty() => {
            Some(Route::PortForward {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
            })
        }
        _ => None,
    }
}

struct Handler {
    token: String,
    logs: Arc<dyn LogSource>,
    streams: Option<Arc<dyn StreamSource>>,
    stats: Option<Arc<crate::stats::Collector>>,
}

impl Handler {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let span =
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path());
        async move {
            let resp = self.route(req).await;
            tracing::debug!(status = resp.status().as_u16(), "done");
            resp
        }
        .instrument(span)
        .await
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let Some(route) = route(req.uri().path()) else {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        };
        if route == Route::Healthz {
            return text(StatusCode::OK, "ok");
        }
        if !self.authenticated(req.headers()) {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let streaming = matches!(
            route,
            Route::Exec { .. } | Route::Attach { .. } | Route::PortForward { .. }
        );
        let allowed = if streaming {
            matches!(*req.method(), Method::GET | Method::POST)
        } else {
            matches!(*req.method(), Method::GET | Method::HEAD)
        };
        if !allowed {
            return text(StatusCode::METHOD_NOT_ALLOWED, "405: Method Not Allowed");
        }
        match route {
            Route::Healthz => text(StatusCode::OK, "ok"),
            Route::Stats(page) => crate::stats::respond(self.stats.as_deref(), page),
            Route::Exec {
                namespace,
                pod,
                container,
            } => {
                let (command, io, _) = stream::parse_query(&query_pairs(req.uri().query()));
                let what = StreamRequest::Exec {
                    namespace,
                    pod,
                    container,
                    command,
                    io,
                };
                self.stream(req, what).await
            }
            Route::Attach {
                namespace,
                pod,
                container,
            } => {
                let (_, io, _) = stream::parse_query(&query_pairs(req.uri().query()));
                let what = StreamRequest::Attach {
                    namespace,
                    pod,
                    container,
                    io,
                };
                self.stream(req, what).await
            }
            Route::PortForward { namespace, pod } => {
                let (_, _, ports) = stream::parse_query(&query_pairs(req.uri().query()));
                let what = StreamRequest::PortForward {
                    namespace,
                    pod,
                    ports,
                };
                self.stream(req, what).await
            }
            Route::ContainerLogs {
                namespace,
                pod,
                container,
            } => {
                self.container_logs(&namespace, &pod, &container, req.uri().query())
                    .await
            }
        }
    }

    /// exec, attach, port-forward (upstream's `getExec`, `getAttach`, `getPortForward`).
    async fn stream(&self, req: Request<Incoming>, what: StreamRequest) -> Response<Body> {
        let Some(source) = &self.streams else {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        };
        tracing::debug!(?what, "stream");
        match stream::serve(req, what, source.as_ref()).await {
            Ok(resp) => resp,
            Err(e) => text(e.status(), &e.to_string()),
        }
    }

    fn authenticated(&self, headers: &http::HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return false;
        };
        // Constant time: the token is the cluster's admin credential.
        let (a, b) = (token.as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// `GET /containerLogs/{namespace}/{pod}/{container}` (upstream's `getContainerLogs`).
    async fn container_logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        query: Option<&str>,
    ) -> Response<Body> {
        let opts = match parse_log_options(query, Timestamp::now()) {
            Ok(o) => o,
            // Upstream answers these two with a fixed JSON-ish text.
            Err(OptionsError::Decode) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    r#"{"message": "Unable to decode query."}"#,
                );
            }
            Err(OptionsError::Invalid) => {
                return text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    r#"{"message": "Invalid request."}"#,
                );
            }
        };
        tracing::debug!(
            ns = namespace,
            name = pod,
            container,
            ?opts,
            "container logs"
        );
        match logs::container_log(self.logs.clone(), namespace, pod, container, opts).await {
            Ok(stream) => {
                let frames = stream.map(|chunk| chunk.map(Frame::data));
                let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                resp
            }
            Err(e) => {
                let status =
                    StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
                text(status, &e.message())
            }
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[derive(Debug, PartialEq, Eq)]
enum OptionsError {
    /// A value that does not parse.
    Decode,
    /// Values that parse but are not allowed (upstream's `ValidatePodLogOptions`).
    Invalid,
}

/// Reads `PodLogOptions` from a query the way upstream's kubelet does: a present boolean
/// is true unless `0` or `false`; the old `tail` parameter stands for `tailLines` (`all`:
/// no limit); `sinceSeconds` counts back from `now` and a later `sinceTime` wins.
fn parse_log_options(query: Option<&str>, now: Timestamp) -> Result<LogOptions, OptionsError> {
    let pairs = query_pairs(query);
    // The first value counts, as with Go's `url.Values`.
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let flag = |k: &str| get(k).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let int = |k: &str| -> Result<Option<i64>, OptionsError> {
        get(k)
            .map(|v| v.parse::<i64>().map_err(|_| OptionsError::Decode))
            .transpose()
    };
    let tail_lines = match get("tail").filter(|t| !t.is_empty()) {
        Some("all") => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| OptionsError::Decode)?),
        None => int("tailLines")?,
    };
    let since_seconds = int("sinceSeconds")?;
    let since_time = get("sinceTime")
        .map(|v| v.parse::<Timestamp>().map_err(|_| OptionsError::Decode))
        .transpose()?;
    let limit_bytes = int("limitBytes")?;
    let invalid = tail_lines.is_some_and(|n| n < 0)
        || limit_bytes.is_some_and(|n| n < 1)
        || (since_seconds.is_some() && since_time.is_some())
        || since_seconds.is_some_and(|s| s < 1);
    if invalid {
        return Err(OptionsError::Invalid);
    }
    let since = since_seconds
        .and_then(|s| now.checked_sub(SignedDuration::from_secs(s)).ok())
        .into_iter()
        .chain(since_time)
        .max();
    Ok(LogOptions {
        follow: flag("follow"),
        previous: flag("previous"),
        tail_lines,
        since,
        timestamps: flag("timestamps"),
        limit_bytes,
    })
}

/// A query's decoded `key=value` pairs, in order.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Decodes `%XX` escapes, and `+` as a space in a query (`plus_is_space`).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use http_body_util::BodyExt;

    use super::*;
    use crate::logs::LogError;

    /// Pods' log files by `namespace/pod/container`, running until told otherwise.
    struct FakeLogs {
        files: HashMap<String, PathBuf>,
        running: AtomicBool,
    }

    #[async_trait::async_trait]
    impl LogSource for FakeLogs {
        async fn log_file(
            &self,
            namespace: &str,
            pod: &str,
            container: &str,
            previous: bool,
        ) -> Result<PathBuf, LogError> {
            if previous {
                return Err(LogError::BadRequest(format!(
                    "previous terminated container {container:?} in pod {pod:?} not found"
                )));
            }
            self.files
                .get(&format!("{namespace}/{pod}/{container}"))
                .cloned()
                .ok_or_else(|| LogError::NotFound(format!("pod {pod:?} does not exist")))
        }

        async fn still_running(&self, _: &str, _: &str, _: &str, _: &Path) -> bool {
            self.running.load(Ordering::SeqCst)
        }
    }

    /// GET `path` the way the API server calls an agent (any certificate accepted), with
    /// an optional bearer token (an empty one when `None`).
    async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Response<Incoming> {
        let at = apiserver::kubelet_client::Location {
            host: addr.ip().to_string(),
            port: addr.port(),
        };
        apiserver::kubelet_client::get(&at, path, token.unwrap_or(""))
            .await
            .expect("response")
    }

    async fn body(resp: Response<Incoming>) -> String {
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    struct Fixture {
        addr: SocketAddr,
        log: tempfile::NamedTempFile,
        logs: Arc<FakeLogs>,
        stop: CancellationToken,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    async fn fixture() -> Fixture {
        let mut log = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(log, "2024-05-01T10:00:01Z stdout F one").expect("write");
        writeln!(log, "2024-05-01T10:00:02Z stderr P t").expect("write");
        writeln!(log, "2024-05-01T10:00:02Z stderr F wo").expect("write");
        writeln!(log, "2024-05-01T10:00:03Z stdout F three").expect("write");
        let logs = Arc::new(FakeLogs {
            files: HashMap::from([("default/web/app".to_string(), log.path().to_path_buf())]),
            running: AtomicBool::new(true),
        });
        let stop = CancellationToken::new();
        let cfg = ServerConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            token: "s3cret".into(),
            node_name: "node-a".into(),
            sans: vec!["127.0.0.1".into(), "node-a".into()],
        };
        let sources = Sources {
            logs: logs.clone(),
            streams: None,
            stats: None,
        };
        let (addr, _task) = start(cfg, sources, stop.clone()).await.expect("start");
        Fixture {
            addr,
            log,
            logs,
            stop,
        }
    }

    #[tokio::test]
    async fn requests_without_the_token_are_unauthorized() {
        let fx = fixture().await;
        let path = "/containerLogs/default/web/app";
        let resp = get(fx.addr, path, None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body(resp).await, "Unauthorized");
        let resp = get(fx.addr, path, Some("s3cre")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = get(fx.addr, path, Some("s3cret")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = get(fx.addr, "/healthz", None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body(resp).await, "ok");
        let resp = get(fx.addr, "/nothing/here", Some("s3cret")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn container_logs_honour_the_options() {
        let fx = fixture().await;
        let logs = |q: &'static str| {
            let addr = fx.addr;
            async move {
                let resp = get(
                    addr,
                    &format!("/containerLogs/default/web/app{q}"),
                    Some("s3cret"),
                )
                .await;
                (resp.status(), body(resp).await)
            }
        };
        assert_eq!(logs("").await, (StatusCode::OK, "one\ntwo\nthree\n".into()));
        assert_eq!(logs("?tailLines=1").await.1, "three\n");
        assert_eq!(logs("?tail=2").await.1, "two\nthree\n");
        assert_eq!(logs("?tail=all").await.1, "one\ntwo\nthree\n");
        assert_eq!(
            logs("?tailLines=2&timestamps=true").await.1,
            "2024-05-01T10:00:02.000000000Z two\n2024-05-01T10:00:03.000000000Z three\n"
        );
        assert_eq!(logs("?limitBytes=6").await.1, "one\ntw");
        assert_eq!(
            logs("?sinceTime=2024-05-01T10%3A00%3A02Z").await.1,
            "two\nthree\n"
        );
        // Logged in 2024: nothing is younger than an hour.
        assert_eq!(logs("?sinceSeconds=3600").await.1, "");
    }

    #[tokio::test]
    async fn bad_options_and_unknown_containers_get_upstreams_answers() {
        let fx = fixture().await;
        let logs = |p: &'static str| {
            let addr = fx.addr;
            async move {
                let resp = get(addr, p, Some("s3cret")).await;
                (resp.status(), body(resp).await)
            }
        };
        assert_eq!(
            logs("/containerLogs/default/web/app?tailLines=-1").await,
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"message": "Invalid request."}"#.into()
            )
        );
        assert_eq!(
            logs("/containerLogs/default/web/app?sinceSeconds=5&sinceTime=2024-05-01T10:00:02Z")
                .await
                .0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            logs("/containerLogs/default/web/app?tailLines=x").await,
            (
                StatusCode::BAD_REQUEST,
                r#"{"message": "Unable to decode query."}"#.into()
            )
        );
        assert_eq!(
            logs("/containerLogs/default/nope/app").await,
            (StatusCode::NOT_FOUND, r#"pod "nope" does not exist"#.into())
        );
        assert_eq!(
            logs("/containerLogs/default/web/app?previous=true").await,
            (
                StatusCode::BAD_REQUEST,
                r#"previous terminated container "app" in pod "web" not found"#.into()
            )
        );
    }

    #[tokio::test]
    async fn follow_streams_appended_lines_until_the_container_stops() {
        let mut fx = fixture().await;
        let resp = get(
            fx.addr,
            "/containerLogs/default/web/app?follow=true&tailLines=1",
            Some("s3cret"),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let mut got = String::new();
        let mut read_until = async |want: &str, got: &mut String| {
            tokio::time::timeout(Duration::from_secs(10), async {
                while !got.contains(want) {
                    let frame = body.frame().await.expect("body ended").expect("frame");
                    if let Ok(data) = frame.into_data() {
                        got.push_str(std::str::from_utf8(&data).expect("utf-8"));
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {want:?}; got {got:?}"));
        };
        read_until("three\n", &mut got).await;
        writeln!(fx.log, "2024-05-01T10:00:04Z stdout F four").expect("write");
        fx.log.flush().expect("flush");
        read_until("four\n", &mut got).await;
        assert_eq!(got, "three\nfour\n");
        fx.logs.running.store(false, Ordering::SeqCst);
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = body.frame().await {
                frame.expect("frame");
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "the response ends once the container stopped"
        );
    }

    #[test]
    fn options_read_like_upstreams_kubelet() {
        let now: Timestamp = "2024-05-01T10:00:00Z".parse().expect("time");
        let o = parse_log_options(Some("follow&previous=0&timestamps=FALSE"), now).expect("ok");
        assert!(o.follow && !o.previous && !o.timestamps);
        let o = parse_log_options(Some("sinceSeconds=60"), now).expect("ok");
        assert_eq!(o.since, Some("2024-05-01T09:59:00Z".parse().expect("time")));
        assert_eq!(
            parse_log_options(Some("limitBytes=0"), now),
            Err(OptionsError::Invalid)
        );
        assert_eq!(
            parse_log_options(Some("sinceSeconds=0"), now),
            Err(OptionsError::Invalid)
        );
        assert_eq!(
            parse_log_options(Some("sinceTime=yesterday"), now),
            Err(OptionsError::Decode)
        );
    }

    #[test]
    fn routes_by_path_segments() {
        assert_eq!(route("/healthz"), Some(Route::Healthz));
        assert_eq!(
            route("/containerLogs/kube-system/coredns-1/coredns"),
            Some(Route::ContainerLogs {
                namespace: "kube-system".into(),
                pod: "coredns-1".into(),
                container: "coredns".into()
            })
        );
        assert_eq!(route("/containerLogs/ns/pod"), None);
        assert_eq!(route("/containerLogs/ns//c"), None);
    }
}
