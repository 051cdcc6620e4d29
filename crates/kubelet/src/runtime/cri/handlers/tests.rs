use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

fn container(v: serde_json::Value) -> Container {
    serde_json::from_value(v).expect("container")
}

fn web() -> Container {
    container(json!({
        "name": "web",
        "ports": [{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9000}]
    }))
}

#[test]
fn ports_resolve_by_number_by_name_and_by_numeric_string() {
    let c = web();
    assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
    assert_eq!(
        resolve_port(&IntOrString::String("http".into()), &c),
        Ok(8080)
    );
    assert_eq!(
        resolve_port(&IntOrString::String("admin".into()), &c),
        Ok(9000)
    );
    assert_eq!(
        resolve_port(&IntOrString::String("8443".into()), &c),
        Ok(8443)
    );
    assert_eq!(
        resolve_port(&IntOrString::String("metrics".into()), &c),
        Err("strconv.Atoi: parsing \"metrics\": invalid syntax".into())
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(0), &c),
        Err("invalid port number: 0".into())
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(70000), &c),
        Err("invalid port number: 70000".into())
    );
}

#[test]
fn http_statuses_classify_as_upstream_probes_read_them() {
    assert_eq!(classify(200), Class::Success);
    assert_eq!(classify(204), Class::Success);
    assert_eq!(classify(302), Class::Redirect);
    assert_eq!(classify(399), Class::Redirect);
    assert_eq!(classify(199), Class::Failure);
    assert_eq!(classify(400), Class::Failure);
    assert_eq!(classify(404), Class::Failure);
    assert_eq!(classify(503), Class::Failure);
}

#[test]
fn the_user_agent_names_the_reported_minor_version() {
    assert_eq!(user_agent("probe"), "kube-probe/1.33");
    assert_eq!(user_agent("lifecycle"), "kube-lifecycle/1.33");
}

#[test]
fn an_http_get_defaults_to_the_pod_ip_and_resolves_its_port_name() {
    let action: HTTPGetAction =
        serde_json::from_value(json!({"port": "http", "path": "healthz", "scheme": "HTTPS",
            "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}))
        .expect("action");
    let get = HttpGet::new(&action, &web(), "10.42.0.7").expect("get");
    assert_eq!(
        get,
        HttpGet {
            https: true,
            host: "10.42.0.7".into(),
            port: 8080,
            path: "/healthz".into(),
            headers: vec![("X-Probe".into(), "yes".into())],
        }
    );
    assert_eq!(get.url(), "https://10.42.0.7:8080/healthz");
    let v6 = HttpGet {
        host: "fd00::1".into(),
        ..get.clone()
    };
    assert_eq!(v6.url(), "https://[fd00::1]:8080/healthz");

    let with_host: HTTPGetAction =
        serde_json::from_value(json!({"port": 80, "host": "example.test"})).expect("action");
    let get = HttpGet::new(&with_host, &web(), "10.42.0.7").expect("get");
    assert_eq!(get.url(), "http://example.test:80/");

    let unknown: HTTPGetAction = serde_json::from_value(json!({"port": "nope"})).expect("action");
    assert!(HttpGet::new(&unknown, &web(), "10.42.0.7").is_err());
}

#[test]
fn redirect_locations_resolve_against_the_request() {
    let get = HttpGet {
        https: false,
        host: "10.0.0.1".into(),
        port: 8080,
        path: "/a/b?x=1".into(),
        headers: vec![("Host".into(), "svc".into())],
    };
    let abs = get.redirect("/other").expect("absolute path");
    assert_eq!(abs.url(), "http://10.0.0.1:8080/other");
    assert_eq!(abs.headers, get.headers);
    let rel = get.redirect("c").expect("relative");
    assert_eq!(rel.url(), "http://10.0.0.1:8080/a/c");
    let full = get
        .redirect("https://example.test/path?q")
        .expect("absolute url");
    assert_eq!(full.url(), "https://example.test:443/path?q");
    assert!(full.headers.is_empty(), "the Host header stays behind");
    let scheme_relative = get.redirect("//10.0.0.2:81/z").expect("scheme-relative");
    assert_eq!(scheme_relative.url(), "http://10.0.0.2:81/z");
}

/// Serves canned HTTP/1.1 answers: `answer(path, request head)` gives status, extra
/// headers and body; `None` never answers.
async fn serve_http<F>(answer: F) -> SocketAddr
where
    F: Fn(&str, &str) -> Option<(u16, String, String)> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(respond(tcp, move |p: &str, h: &str| answer(p, h)));
        }
    });
    addr
}

async fn respond<S, F>(mut io: S, answer: F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: Fn(&str, &str) -> Option<(u16, String, String)>,
{
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        // A TLS handshake: answer as HTTP servers do to what they cannot parse.
        if head.first() == Some(&0x16) {
            let _ = io.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let Some((status, headers, body)) = answer(&path, &head) else {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return;
    };
    let reply = format!(
        "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = io.write_all(reply.as_bytes()).await;
    let _ = io.shutdown().await;
}

fn routes(path: &str, head: &str) -> Option<(u16, String, String)> {
    let ok = |body: &str| Some((200, String::new(), body.to_string()));
    let to = |loc: &str| Some((302, format!("Location: {loc}\r\n"), "moved".to_string()));
    match path {
        "/ok" => ok("fine"),
        "/bad" => Some((500, String::new(), "secret detail".into())),
        "/same" => to("/ok"),
        "/other" => to("http://127.0.0.2:1/elsewhere"),
        "/loop" => to("/loop"),
        "/hang" => None,
        "/headers" => {
            let lower = head.to_ascii_lowercase();
            let sent = lower.contains("\r\nx-probe: yes\r\n")
                && lower.contains("\r\nuser-agent: kube-probe/1.33\r\n")
                && lower.contains("\r\naccept: */*\r\n")
                && lower.contains("\r\nhost: svc.example\r\n");
            if sent {
                ok("headers seen")
            } else {
                Some((400, String::new(), head.to_string()))
            }
        }
        _ => Some((404, String::new(), String::new())),
    }
}

fn get_to(addr: SocketAddr, path: &str) -> HttpGet {
    HttpGet {
        https: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        path: path.into(),
        headers: Vec::new(),
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn http_probes_succeed_below_400_and_fail_with_the_status_code() {
    let addr = serve_http(routes).await;
    assert_eq!(
        http_probe(&get_to(addr, "/ok"), SECOND).await,
        Outcome::Success("fine".into())
    );
    assert_eq!(
        http_probe(&get_to(addr, "/bad"), SECOND).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(
        http_probe(&get_to(addr, "/missing"), SECOND).await,
        Outcome::Failure("HTTP probe failed with statuscode: 404".into())
    );
}

#[tokio::test]
async fn http_probes_follow_redirects_only_on_the_same_host() {
    let addr = serve_http(routes).await;
    assert_eq!(
        http_probe(&get_to(addr, "/same"), SECOND).await,
        Outcome::Success("fine".into())
    );
    assert_eq!(
        http_probe(&get_to(addr, "/other"), SECOND).await,
        Outcome::Warning("Probe terminated redirects, Response body: moved".into())
    );
    let Outcome::Failure(msg) = http_probe(&get_to(addr, "/loop"), SECOND).await else {
        panic!("a redirect loop must fail");
    };
    assert!(msg.ends_with("stopped after 10 redirects"), "{msg}");
}

#[tokio::test]
async fn http_probes_send_the_given_headers_and_upstreams_defaults() {
    let addr = serve_http(routes).await;
    let mut get = get_to(addr, "/headers");
    get.headers = vec![
        ("X-Probe".into(), "yes".into()),
        ("host".into(), "svc.example".into()),
    ];
    assert_eq!(
        http_probe(&get, SECOND).await,
        Outcome::Success("headers seen".into())
    );
}

#[tokio::test]
async fn http_probes_fail_when_refused_or_too_slow() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    assert_eq!(
        http_probe(&get_to(addr, "/"), SECOND).await,
        Outcome::Failure(format!(
            "Get \"http://{addr}/\": dial tcp {addr}: connect: connection refused"
        ))
    );
    let slow = serve_http(routes).await;
    let Outcome::Failure(msg) =
        http_probe(&get_to(slow, "/hang"), Duration::from_millis(200)).await
    else {
        panic!("a probe that gets no answer must fail");
    };
    assert!(msg.contains("Client.Timeout exceeded"), "{msg}");
}

/// A TLS listener with a self-signed certificate no client could verify.
async fn serve_https() -> SocketAddr {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["untrusted.example".into()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    respond(tls, routes).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_probes_do_not_verify_the_certificate() {
    let addr = serve_https().await;
    let mut get = get_to(addr, "/ok");
    get.https = true;
    assert_eq!(
        http_probe(&get, SECOND).await,
        Outcome::Success("fine".into())
    );
}

#[tokio::test]
async fn an_https_hook_answered_in_plain_http_is_retried_over_http() {
    let addr = serve_http(routes).await;
    let mut get = get_to(addr, "/bad");
    get.https = true;
    // Hooks take any status; the plain-HTTP retry is reported.
    assert_eq!(http_hook(&get).await, Ok(true));
    assert_eq!(http_hook(&get_to(addr, "/bad")).await, Ok(false));
}

#[tokio::test]
async fn tcp_probes_succeed_when_a_connection_opens() {
    let open = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = open.local_addr().expect("addr");
    assert_eq!(
        tcp_probe("127.0.0.1", addr.port(), SECOND).await,
        Outcome::Success(String::new())
    );
    drop(open);
    assert_eq!(
        tcp_probe("127.0.0.1", addr.port(), SECOND).await,
        Outcome::Failure(format!("dial tcp {addr}: connect: connection refused"))
    );
}

/// A `grpc.health.v1.Health` server answering every `Check` with `status`, except for
/// service `unknown`, which it does not know (`NOT_FOUND`).
#[derive(Clone)]
struct Health(i32);

impl tonic::server::NamedService for Health {
    const NAME: &'static str = "grpc.health.v1.Health";
}

struct Check(i32);

impl tonic::server::UnaryService<HealthCheckRequest> for Check {
    type Response = HealthCheckResponse;
    type Future = std::future::Ready<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;

    fn call(&mut self, req: tonic::Request<HealthCheckRequest>) -> Self::Future {
        std::future::ready(if req.get_ref().service == "unknown" {
            Err(tonic::Status::not_found("unknown service"))
        } else {
            Ok(tonic::Response::new(HealthCheckResponse { status: self.0 }))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Health {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let status = self.0;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                HealthCheckResponse,
                HealthCheckRequest,
            >::default());
            Ok(grpc.unary(Check(status), req).await)
        })
    }
}

async fn serve_grpc(status: i32) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(Health(status))
            .serve_with_incoming(incoming),
    );
    addr
}

#[tokio::test]
async fn grpc_probes_succeed_only_when_serving() {
    let serving = serve_grpc(SERVING).await;
    assert_eq!(
        grpc_probe("127.0.0.1", serving.port(), "", SECOND).await,
        Outcome::Success("service is serving".into())
    );
    let Outcome::Failure(msg) = grpc_probe("127.0.0.1", serving.port(), "unknown", SECOND).await
    else {
        panic!("an unknown service must fail");
    };
    assert!(
        msg.starts_with("error: health rpc probe failed: ") && msg.contains("NotFound"),
        "{msg}"
    );
    let not_serving = serve_grpc(2).await;
    assert_eq!(
        grpc_probe("127.0.0.1", not_serving.port(), "db", SECOND).await,
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
}

#[tokio::test]
async fn grpc_probes_fail_when_nothing_listens() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let Outcome::Failure(msg) = grpc_probe("127.0.0.1", port, "", SECOND).await else {
        panic!("a probe of a closed port must fail");
    };
    assert!(
        msg.starts_with(&format!(
            "error: failed to connect service at \"127.0.0.1:{port}\""
        )),
        "{msg}"
    );
}
