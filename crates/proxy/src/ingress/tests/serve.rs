//! `serve` on loopback ports, forwarding to in-test backends that echo what they saw.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ingress::{Routes, serve};

/// An HTTP/1.1 server answering every request with `<name> <path> host=<Host>
/// xff=<X-Forwarded-For> proto=<X-Forwarded-Proto>`.
async fn backend_server(name: &'static str, stop: CancellationToken) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => a.expect("accept"),
            };
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let h = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string()
                };
                let body = format!(
                    "{name} {} host={} xff={} proto={}",
                    req.uri().path(),
                    h("host"),
                    h("x-forwarded-for"),
                    h("x-forwarded-proto"),
                );
                async move { Ok::<_, Infallible>(http::Response::new(body)) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    port
}

fn web_rule(host: &str, paths: serde_json::Value) -> serde_json::Value {
    json!({ "host": host, "http": { "paths": paths } })
}

fn prefix(path: &str, svc: &str) -> serde_json::Value {
    json!({ "path": path, "pathType": "Prefix", "backend": backend(svc, 80) })
}

async fn get(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    port: u16,
    host: &str,
    path: &str,
) -> (StatusCode, String) {
    let req = Request::get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .body(Empty::new())
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A CA and a leaf certificate for `secure.example.com` it signed (PEM cert, PEM key).
fn test_pki() -> (rustls::pki_types::CertificateDer<'static>, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key"))
            .expect("ca");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["secure.example.com".to_string()])
        .expect("params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    (ca.der().clone(), leaf.pem(), leaf_key.serialize_pem())
}

/// A TLS handshake with `sni`, trusting only `ca`, then one GET with `Host: sni`.
async fn https_get(
    port: u16,
    ca: &rustls::pki_types::CertificateDer<'static>,
    sni: &str,
    path: &str,
) -> Result<(StatusCode, String), std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    let tls = connector.connect(name, tcp).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", sni)
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn serve_routes_http_and_https_to_backends() {
    let stop = CancellationToken::new();
    let api_port = backend_server("api", stop.clone()).await;
    let frontend_port = backend_server("frontend", stop.clone()).await;
    let (ca, crt, key) = test_pki();

    let services = [
        service("default", "api-service", &[(None, 80)]),
        service("default", "frontend-service", &[(None, 80)]),
        service("default", "down", &[(None, 80)]),
    ];
    let slices = [
        slice(
            "default",
            "api-service",
            &[("127.0.0.1", true)],
            &[(None, i32::from(api_port))],
        ),
        slice(
            "default",
            "frontend-service",
            &[("127.0.0.1", true)],
            &[(None, i32::from(frontend_port))],
        ),
        slice(
            "default",
            "down",
            &[("127.0.0.1", false)],
            &[(None, i32::from(api_port))],
        ),
    ];
    let ingresses = [
        ingress(
            "default",
            "app-ingress",
            "2024-01-01T00:00:00Z",
            json!({ "rules": [
                web_rule("app.example.com", json!([prefix("/api", "api-service"), prefix("/", "frontend-service")])),
                web_rule("down.example.com", json!([prefix("/", "down")])),
            ]}),
        ),
        ingress(
            "default",
            "secure",
            "2024-01-01T00:00:00Z",
            json!({
                "tls": [{ "hosts": ["secure.example.com"], "secretName": "secure-tls" }],
                "rules": [web_rule("secure.example.com", json!([prefix("/", "api-service")]))],
            }),
        ),
    ];
    let secrets = [tls_secret(
        "default",
        "secure-tls",
        crt.as_bytes(),
        key.as_bytes(),
    )];
    let classes = [our_class(true)];
    let routes = Routes::build(&classes, &ingresses, &services, &slices, &secrets);
    let (routes_tx, routes_rx) = watch::channel(Arc::new(routes));

    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let https = TcpListener::bind("127.0.0.1:0").await.expect("bind https");
    let http_port = http.local_addr().expect("addr").port();
    let https_port = https.local_addr().expect("addr").port();
    let server = tokio::spawn(serve(http, Some(https), routes_rx, stop.clone()));

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let (status, body) = get(&client, http_port, "app.example.com", "/api/x").await;
    assert_eq!(status, StatusCode::OK);
    // Path unchanged (no rewrite), original Host kept, forwarding headers added.
    assert_eq!(
        body,
        "api /api/x host=app.example.com xff=127.0.0.1 proto=http"
    );
    let (status, body) = get(&client, http_port, "app.example.com", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with("frontend / host=app.example.com"),
        "{body}"
    );
    let (status, body) = get(&client, http_port, "app.example.com:80", "/apix").await;
    assert_eq!(
        (status, body.split(' ').next()),
        (StatusCode::OK, Some("frontend"))
    );

    let (status, body) = get(&client, http_port, "unknown.example.com", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("404"), "{body}");
    let (status, _) = get(&client, http_port, "down.example.com", "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // HTTPS: the Secret's certificate for its SNI name, verified against the test CA.
    let (status, body) = https_get(https_port, &ca, "secure.example.com", "/s")
        .await
        .expect("https request");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        "api /s host=secure.example.com xff=127.0.0.1 proto=https"
    );
    // Another name gets the self-signed default, which the test CA does not vouch for.
    let err = https_get(https_port, &ca, "app.example.com", "/")
        .await
        .expect_err("default certificate must not verify");
    assert!(err.to_string().contains("certificate"), "{err}");

    // A new snapshot takes effect for the next request.
    let empty = Routes::build(&classes, &[], &services, &slices, &secrets);
    routes_tx.send(Arc::new(empty)).expect("send routes");
    let (status, _) = get(&client, http_port, "app.example.com", "/api/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    stop.cancel();
    server.await.expect("serve returns after stop");
}

#[tokio::test]
async fn backend_refusing_connections_is_a_bad_gateway() {
    let stop = CancellationToken::new();
    // A port that was free a moment ago: nothing listens there now.
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let routes = Routes::build(
        &[our_class(true)],
        &[ingress(
            "ns",
            "gone",
            "2024-01-01T00:00:00Z",
            json!({
                "rules": [web_rule("gone.test", json!([prefix("/", "gone")]))],
            }),
        )],
        &[service("ns", "gone", &[(None, 80)])],
        &[slice(
            "ns",
            "gone",
            &[("127.0.0.1", true)],
            &[(None, i32::from(closed_port))],
        )],
        &[],
    );
    let (_tx, rx) = watch::channel(Arc::new(routes));
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let port = http.local_addr().expect("addr").port();
    let server = tokio::spawn(serve(http, None, rx, stop.clone()));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let (status, _) = get(&client, port, "gone.test", "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    stop.cancel();
    server.await.expect("serve returns after stop");
}

/// An HTTP/1.1 server that accepts `Upgrade: echo` and then echoes bytes back.
async fn echo_upgrade_server(stop: CancellationToken) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop.cancelled() => return,
                a = listener.accept() => a.expect("accept"),
            };
            let service =
                hyper::service::service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let on_upgrade = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on_upgrade.await {
                            let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                    });
                    let resp = http::Response::builder()
                        .status(StatusCode::SWITCHING_PROTOCOLS)
                        .header("connection", "upgrade")
                        .header("upgrade", "echo")
                        .body(String::new())
                        .expect("response");
                    Ok::<_, Infallible>(resp)
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    port
}

#[tokio::test]
async fn upgraded_connections_pass_through_both_ways() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stop = CancellationToken::new();
    let echo_port = echo_upgrade_server(stop.clone()).await;
    let routes = Routes::build(
        &[our_class(true)],
        &[ingress(
            "ns",
            "ws",
            "2024-01-01T00:00:00Z",
            json!({
                "rules": [web_rule("ws.test", json!([prefix("/", "echo")]))],
            }),
        )],
        &[service("ns", "echo", &[(None, 80)])],
        &[slice(
            "ns",
            "echo",
            &[("127.0.0.1", true)],
            &[(None, i32::from(echo_port))],
        )],
        &[],
    );
    let (_tx, rx) = watch::channel(Arc::new(routes));
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let port = http.local_addr().expect("addr").port();
    let server = tokio::spawn(serve(http, None, rx, stop.clone()));

    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(
        b"GET /socket HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .expect("write request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut byte).await.expect("read response head");
        assert_eq!(
            n,
            1,
            "connection closed early: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");

    tcp.write_all(b"ping through the ingress")
        .await
        .expect("write");
    let mut echoed = [0u8; 24];
    tcp.read_exact(&mut echoed).await.expect("read echo");
    assert_eq!(&echoed, b"ping through the ingress");

    stop.cancel();
    server.await.expect("serve returns after stop");
}
