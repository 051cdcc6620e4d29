//! The actions probes and lifecycle hooks run against a container, as upstream's
//! `pkg/probe/{exec,http,tcp,grpc}` do them: a command through CRI `ExecSync`, an HTTP GET
//! (HTTPS without verifying the certificate, redirects followed only on the same host), a
//! TCP connect and a `grpc.health.v1.Health/Check` call. Outputs and failure messages are
//! upstream's, since users read them in `Unhealthy` events.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::backoff::go_duration;
use super::client::{Cri, describe};

/// Upstream reads at most this much of a probe's output or response body.
const MAX_OUTPUT: usize = 10 * 1024;
/// Go's http client gives up after this many redirects.
const MAX_REDIRECTS: usize = 10;
/// How much longer than the command's own timeout an `ExecSync` call may take before the
/// agent gives up on it (upstream adds its CRI call timeout the same way).
const EXEC_GRACE: Duration = Duration::from_secs(30);

/// What one run of an action concluded (upstream's `probe.Result` with its output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    /// A success the user is told about: a redirect to another host, not followed.
    Warning(String),
    Failure(String),
    /// The action could not be run at all; upstream throws such a result away.
    Error(String),
}

/// `kube-<purpose>/<major>.<minor>` of the Kubernetes version this agent reports, the
/// User-Agent upstream's probes (`probe`) and hooks (`lifecycle`) send.
pub fn user_agent(purpose: &str) -> String {
    let v = crate::node::KUBELET_VERSION.trim_start_matches('v');
    let minor = v.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    format!("kube-{purpose}/{minor}")
}

/// Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The port a probe or hook names: a number, or the name of one of the container's ports
/// (else a number written as a string), as upstream's `ResolveContainerPort`.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                None => name
                    .parse::<i64>()
                    .map_err(|_| format!("strconv.Atoi: parsing {name:?}: invalid syntax"))?,
            }
        }
    };
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {n}"))
}

/// How an HTTP probe reads a status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// 200–299.
    Success,
    /// 300–399: a redirect that was not followed; a success with a warning.
    Redirect,
    /// Anything else.
    Failure,
}

pub fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Success,
        300..=399 => Class::Redirect,
        _ => Class::Failure,
    }
}

/// Go's rendering of a failed dial, as probe messages quote it.
fn dial_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        ErrorKind::HostUnreachable => "connect: no route to host".into(),
        ErrorKind::NetworkUnreachable => "connect: network is unreachable".into(),
        ErrorKind::TimedOut => "i/o timeout".into(),
        _ => e.to_string(),
    }
}

// ---- exec ----

/// How a command run through `ExecSync` ended.
#[derive(Debug)]
pub enum Exec {
    Exited {
        code: i32,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    TimedOut,
    /// The runtime could not run it.
    Failed(String),
}

/// Runs `cmd` in container `id`; `timeout` is the command's (`None`: no limit).
pub async fn exec(cri: &Cri, id: &str, cmd: &[String], timeout: Option<Duration>) -> Exec {
    let req = k8s_cri::v1::ExecSyncRequest {
        container_id: id.to_string(),
        cmd: cmd.to_vec(),
        timeout: timeout.map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX)),
    };
    let mut rt = cri.rt.clone();
    let call = rt.exec_sync(req);
    let answer = match timeout {
        Some(t) => match tokio::time::timeout(t + EXEC_GRACE, call).await {
            Ok(a) => a,
            Err(_) => return Exec::TimedOut,
        },
        None => call.await,
    };
    match answer {
        Ok(r) => {
            let r = r.into_inner();
            Exec::Exited {
                code: r.exit_code,
                stdout: r.stdout,
                stderr: r.stderr,
            }
        }
        // containerd reports its own timeout as `timeout 1s exceeded: …`.
        Err(s)
            if s.code() == tonic::Code::DeadlineExceeded
                || (timeout.is_some() && s.message().contains("timeout")) =>
        {
            Exec::TimedOut
        }
        Err(s) => Exec::Failed(describe(&s)),
    }
}

/// Upstream's exec probe: exit code 0 is a success, any other a failure with the output.
pub async fn exec_probe(cri: &Cri, id: &str, cmd: &[String], timeout: Duration) -> Outcome {
    match exec(cri, id, cmd, Some(timeout)).await {
        Exec::Exited {
            code,
            mut stdout,
            stderr,
        } => {
            stdout.extend_from_slice(&stderr);
            stdout.truncate(MAX_OUTPUT);
            let output = String::from_utf8_lossy(&stdout).into_owned();
            if code == 0 {
                Outcome::Success(output)
            } else {
                Outcome::Failure(output)
            }
        }
        Exec::TimedOut => Outcome::Failure(format!("command {:?} timed out", cmd.join(" "))),
        Exec::Failed(e) => Outcome::Error(e),
    }
}

// ---- HTTP ----

/// An HTTP GET a probe or hook makes, resolved against its pod and container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGet {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl HttpGet {
    /// Upstream's `NewRequestForHTTPGetAction`: the host defaults to the pod's IP, the port
    /// may be one of the container's port names.
    pub fn new(a: &HTTPGetAction, c: &Container, pod_ip: &str) -> Result<HttpGet, String> {
        let host = a
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        let port = resolve_port(&a.port, c)?;
        let path = a.path.clone().unwrap_or_default();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Ok(HttpGet {
            https: a
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("https")),
            host,
            port,
            path,
            headers: a
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
        })
    }

    fn url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.https { "https" } else { "http" },
            join_host_port(&self.host, self.port),
            self.path
        )
    }

    /// The header `name` as given, if given (names compare as HTTP does: ignoring case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Where a `Location` sends the next request: same scheme and host when relative.
    fn redirect(&self, location: &str) -> Option<HttpGet> {
        let mut next = self.clone();
        if location.starts_with("http://")
            || location.starts_with("https://")
            || location.starts_with("//")
        {
            let absolute = if location.starts_with("//") {
                format!("{}:{location}", if self.https { "https" } else { "http" })
            } else {
                location.to_string()
            };
            let uri: http::Uri = absolute.parse().ok()?;
            next.https = uri.scheme_str() == Some("https");
            next.host = uri
                .host()?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            next.port = uri.port_u16().unwrap_or(if next.https { 443 } else { 80 });
            next.path = uri
                .path_and_query()
                .map_or_else(|| "/".into(), |p| p.as_str().to_string());
            // A Host header the user set belongs to the first host only.
            next.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
        } else if location.starts_with('/') {
            next.path = location.to_string();
        } else {
            let path = self.path.split(['?', '#']).next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            next.path = format!("{dir}{location}");
        }
        Some(next)
    }
}

/// A response as probes read it: status, `Location`, and the body up to [`MAX_OUTPUT`].
struct Reply {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// TLS for probes and hooks: upstream sets `InsecureSkipVerify`, so any certificate is
/// taken (the handshake signatures are still checked).
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AnyCert(provider.clone()));
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap_or_else(|_| rustls::ClientConfig::builder());
            let mut cfg = builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(cfg)
        })
        .clone()
}

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One GET, no redirects. Errors read as Go's (without the `Get "<url>": ` prefix).
async fn get_once(get: &HttpGet, agent: &str) -> Result<Reply, String> {
    let addr = join_host_port(&get.host, get.port);
    let tcp = TcpStream::connect(addr.as_str())
        .await
        .map_err(|e| format!("dial tcp {addr}: {}", dial_error(&e)))?;
    if !get.https {
        return send(tcp, get, agent).await;
    }
    let name = rustls::pki_types::ServerName::try_from(get.host.clone())
        .map_err(|e| format!("tls: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(insecure_tls())
        .connect(name, tcp)
        .await
        .map_err(|e| tls_error(&e))?;
    send(tls, get, agent).await
}

/// A TLS handshake that met a plain HTTP server reads as Go's message for it, which the
/// hook runner recognises.
fn tls_error(e: &std::io::Error) -> String {
    let plain = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidMessage(_)));
    if plain {
        HTTP_TO_HTTPS.to_string()
    } else {
        format!("tls: {e}")
    }
}

const HTTP_TO_HTTPS: &str = "http: server gave HTTP response to HTTPS client";

async fn send<S>(io: S, get: &HttpGet, agent: &str) -> Result<Reply, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let host = get
        .header("host")
        .map_or_else(|| join_host_port(&get.host, get.port), str::to_string);
    let mut req = http::Request::get(get.path.as_str()).header(http::header::HOST, host);
    if get.header("user-agent").is_none() {
        req = req.header(http::header::USER_AGENT, agent);
    }
    // A given Accept replaces this one (set empty, none is sent).
    if get.header("accept").is_none() {
        req = req.header(http::header::ACCEPT, "*/*");
    }
    for (k, v) in &get.headers {
        if k.eq_ignore_ascii_case("host") || v.is_empty() {
            continue;
        }
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            req = req.header(k, v);
        }
    }
    req = req.header(http::header::CONNECTION, "close");
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    let mut stream = resp.into_body();
    // A body cut at the limit is fine (upstream: "non fatal body truncation").
    while body.len() < MAX_OUTPUT {
        match stream.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    body.truncate(MAX_OUTPUT);
    Ok(Reply {
        status,
        location,
        body,
    })
}

/// A GET with Go's redirect rules for probes: 301/302/303/307/308 are followed while they
/// stay on the first request's host, up to [`MAX_REDIRECTS`]; one to another host is
/// returned as it is. Errors are Go's `Get "<url>": <cause>`.
async fn fetch(first: &HttpGet, agent: &str) -> Result<Reply, String> {
    let mut get = first.clone();
    let mut hops = 0;
    loop {
        let reply = get_once(&get, agent)
            .await
            .map_err(|e| format!("Get {:?}: {e}", get.url()))?;
        let follow = matches!(reply.status, 301 | 302 | 303 | 307 | 308);
        let Some(next) = reply
            .location
            .as_deref()
            .filter(|_| follow)
            .and_then(|l| get.redirect(l))
        else {
            return Ok(reply);
        };
        if next.host != first.host {
            return Ok(reply);
        }
        hops += 1;
        if hops >= MAX_REDIRECTS {
            return Err(format!("Get {:?}: stopped after 10 redirects", next.url()));
        }
        get = next;
    }
}

/// Upstream's HTTP probe: 200–399 succeed (a redirect not followed with a warning), any
/// other status fails with `HTTP probe failed with statuscode: N`; a request that cannot
/// be made (refused, timed out) fails with the client's error.
pub async fn http_probe(get: &HttpGet, timeout: Duration) -> Outcome {
    let agent = user_agent("probe");
    match tokio::time::timeout(timeout, fetch(get, &agent)).await {
        Err(_) => Outcome::Failure(format!(
            "Get {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
            get.url()
        )),
        Ok(Err(e)) => Outcome::Failure(e),
        Ok(Ok(reply)) => {
            let body = String::from_utf8_lossy(&reply.body).into_owned();
            match classify(reply.status) {
                Class::Success => Outcome::Success(body),
                Class::Redirect => {
                    Outcome::Warning(format!("Probe terminated redirects, Response body: {body}"))
                }
                // The body stays out of the message (upstream #99425).
                Class::Failure => Outcome::Failure(format!(
                    "HTTP probe failed with statuscode: {}",
                    reply.status
                )),
            }
        }
    }
}

/// Upstream's HTTP lifecycle hook: any response will do, only a failed request is an
/// error. An HTTPS hook answered in plain HTTP is retried over HTTP; `Ok(true)` says so.
pub async fn http_hook(get: &HttpGet) -> Result<bool, String> {
    let agent = user_agent("lifecycle");
    match fetch(get, &agent).await {
        Ok(_) => Ok(false),
        Err(e) if get.https && e.ends_with(HTTP_TO_HTTPS) => {
            let mut plain = get.clone();
            plain.https = false;
            plain
                .headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            fetch(&plain, &agent).await.map(|_| true).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

// ---- TCP ----

/// Upstream's TCP probe: a connection that opens within `timeout` succeeds.
pub async fn tcp_probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, TcpStream::connect(addr.as_str())).await {
        Ok(Ok(_)) => Outcome::Success(String::new()),
        Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: {}", dial_error(&e))),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

// ---- gRPC ----

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`; `status` is a `ServingStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

pub const SERVING: i32 = 1;
pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

fn serving_status(s: i32) -> String {
    match s {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// Upstream's gRPC probe: `Check(service)` over plain-text HTTP/2 must answer `SERVING`
/// within `timeout`.
pub async fn grpc_probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = join_host_port(host, port);
    let deadline = tokio::time::Instant::now() + timeout;
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Failure(format!("error: failed to connect service at {addr:?}: {e}"));
        }
    };
    let endpoint = match endpoint.user_agent(user_agent("probe")) {
        Ok(e) => e.connect_timeout(timeout),
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let channel = match tokio::time::timeout_at(deadline, endpoint.connect()).await {
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service {addr:?} within {}: context deadline exceeded",
                go_duration(timeout)
            ));
        }
        Ok(Err(e)) => {
            let cause =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            return Outcome::Failure(format!(
                "error: failed to connect service at {addr:?}: {cause}"
            ));
        }
        Ok(Ok(c)) => c,
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        grpc.unary(
            tonic::Request::new(HealthCheckRequest {
                service: service.to_string(),
            }),
            http::uri::PathAndQuery::from_static(HEALTH_CHECK),
            tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default(),
        )
        .await
    };
    let timed_out = || {
        Outcome::Failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        ))
    };
    match tokio::time::timeout_at(deadline, call).await {
        Err(_) => timed_out(),
        Ok(Err(s)) => match s.code() {
            tonic::Code::Unimplemented => Outcome::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                s.message()
            )),
            tonic::Code::DeadlineExceeded => timed_out(),
            _ => Outcome::Failure(format!("error: health rpc probe failed: {}", describe(&s))),
        },
        Ok(Ok(resp)) => {
            let status = resp.into_inner().status;
            if status == SERVING {
                Outcome::Success("service is serving".into())
            } else {
                Outcome::Failure(format!(
                    "service unhealthy (responded with {:?})",
                    serving_status(status)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
