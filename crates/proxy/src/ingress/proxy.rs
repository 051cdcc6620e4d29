//! The HTTP(S) listeners: accept, pick the backend from the latest routes, and forward
//! over HTTP/1.1 to a pod, streaming bodies both ways (and upgraded connections such as
//! WebSockets).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::routes::Routes;
use super::tls;

type Body = BoxBody<Bytes, hyper::Error>;

/// A client that stalls the handshake must not hold a task forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1); never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Serves HTTP on `http` and HTTPS on `https` until `stop`, routing by the latest `routes`.
/// Returns once `stop` fires (open connections are dropped then). If the TLS setup fails
/// (it should not: it only generates a key), HTTPS is not served and the error is logged.
pub async fn serve(
    http: TcpListener,
    https: Option<TcpListener>,
    routes: watch::Receiver<Arc<Routes>>,
    stop: CancellationToken,
) {
    let proxy = Arc::new(Proxy::new(routes.clone()));
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(http, None, proxy.clone(), stop.clone()));
    if let Some(listener) = https {
        match tls::server_config(routes) {
            Ok(cfg) => {
                tasks.spawn(accept_loop(
                    listener,
                    Some(TlsAcceptor::from(cfg)),
                    proxy,
                    stop.clone(),
                ));
            }
            Err(e) => tracing::error!(error = %e, "ingress HTTPS disabled"),
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// What the handler knows about the connection a request came on.
#[derive(Clone, Copy)]
struct Conn {
    peer: SocketAddr,
    local_port: u16,
    tls: bool,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    stop: CancellationToken,
) {
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "ingress accept failed");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            peer,
            local_port,
            tls: tls.is_some(),
        };
        let (tls, proxy, stop) = (tls.clone(), proxy.clone(), stop.clone());
        tokio::spawn(async move {
            match tls {
                None => serve_connection(TokioIo::new(tcp), conn, proxy, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let stream = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = handshake => match r {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "ingress TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "ingress TLS handshake timed out");
                                return;
                            }
                        },
                    };
                    serve_connection(TokioIo::new(stream), conn, proxy, stop).await;
                }
            }
        });
    }
}

async fn serve_connection<I>(io: I, conn: Conn, proxy: Arc<Proxy>, stop: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service_stop = stop.clone();
    let service = hyper::service::service_fn(move |req| {
        let (proxy, stop) = (proxy.clone(), service_stop.clone());
        async move { Ok::<_, Infallible>(proxy.handle(req, conn, stop).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    let served = builder.serve_connection_with_upgrades(io, service);
    tokio::select! {
        r = served => {
            if let Err(e) = r {
                tracing::debug!(peer = %conn.peer, error = %e, "ingress connection ended with an error");
            }
        }
        _ = stop.cancelled() => {}
    }
}

struct Proxy {
    routes: watch::Receiver<Arc<Routes>>,
    client: Client<HttpConnector, Incoming>,
}

impl Proxy {
    fn new(routes: watch::Receiver<Arc<Routes>>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Proxy { routes, client }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        conn: Conn,
        stop: CancellationToken,
    ) -> Response<Body> {
        let host = request_host(&req).unwrap_or_default();
        let span = tracing::debug_span!(
            "ingress_request",
            peer = %conn.peer,
            host = %host,
            path = %req.uri().path(),
        );
        async move {
            let upstream = {
                let routes = self.routes.borrow().clone();
                routes.route(&host, req.uri().path()).cloned()
            };
            let Some(upstream) = upstream else {
                tracing::debug!("no Ingress rule matches");
                return text(
                    StatusCode::NOT_FOUND,
                    "404 Not Found: no Ingress rule matches this host and path\n",
                );
            };
            let Some(addr) = upstream.pick() else {
                tracing::debug!(backend = %upstream.target(), "backend has no ready endpoints");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "503 Service Unavailable: the backend has no ready endpoints\n",
                );
            };
            tracing::debug!(backend = %upstream.target(), %addr, "forwarding");
            self.forward(req, &host, addr, conn, stop).await
        }
        .instrument(span)
        .await
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        host: &str,
        addr: SocketAddr,
        conn: Conn,
        stop: CancellationToken,
    ) -> Response<Body> {
        let upgrade = upgrade_protocol(&req);
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let Ok(uri) = format!("http://{addr}{path}").parse::<Uri>() else {
            return text(StatusCode::BAD_REQUEST, "400 Bad Request\n");
        };
        let original_host = req.headers().get(header::HOST).cloned();
        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        // HTTP/2 from the client is HTTP/1.1 to the pod.
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        let headers = &mut parts.headers;
        // The pod sees the Host the client asked for (HTTP/2 carries it as :authority).
        let host_value = original_host.or_else(|| HeaderValue::from_str(host).ok());
        if let Some(h) = &host_value {
            headers.insert(header::HOST, h.clone());
            headers.insert(X_FORWARDED_HOST, h.clone());
        }
        // Like ingress-nginx without use-forwarded-headers: the client's own claims are
        // replaced, not trusted.
        let client_ip = HeaderValue::from_str(&conn.peer.ip().to_string()).ok();
        if let Some(ip) = client_ip {
            headers.insert(X_FORWARDED_FOR, ip.clone());
            headers.insert(X_REAL_IP, ip);
        }
        headers.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(if conn.tls { "https" } else { "http" }),
        );
        headers.insert(X_FORWARDED_PORT, HeaderValue::from(conn.local_port));
        if let Some(proto) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, proto.clone());
        }

        let mut resp = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "ingress backend request failed");
                return text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n");
            }
        };

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let backend_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(splice(client_upgrade, backend_upgrade, stop));
            let (parts, _) = resp.into_parts();
            return Response::from_parts(parts, Empty::new().map_err(|n| match n {}).boxed());
        }
        strip_hop_by_hop(resp.headers_mut());
        resp.map(BodyExt::boxed)
    }
}

/// Copies bytes both ways between an upgraded client connection and the backend's until
/// either side closes or the server stops.
async fn splice(
    client: hyper::upgrade::OnUpgrade,
    backend: hyper::upgrade::OnUpgrade,
    stop: CancellationToken,
) {
    let (client, backend) = match tokio::try_join!(client, backend) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "ingress upgrade failed");
            return;
        }
    };
    let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut backend) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "ingress upgraded connection ended with an error");
            }
        }
        _ = stop.cancelled() => {}
    }
}

/// The host the request names: the URI authority (HTTP/2, absolute-form) or Host header.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str().to_string());
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

/// The `Upgrade` protocol of an HTTP/1.1 upgrade request (`Connection: upgrade`).
fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let wants = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !wants {
        return None;
    }
    req.headers().get(header::UPGRADE).cloned()
}

/// Drops hop-by-hop headers, including any the Connection header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|n| match n {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
