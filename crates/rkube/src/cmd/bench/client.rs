//! A lean HTTP/2 client for benchmarks: one TLS connection multiplexes many concurrent
//! requests, so the client spends little of the machine's CPU next to the server.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One multiplexed HTTP/2 connection to the API server.
#[derive(Clone)]
pub struct Client {
    send: http2::SendRequest<Full<Bytes>>,
    base: String,
    token: Arc<str>,
}

impl Client {
    /// Connects to `url` (`https://127.0.0.1:PORT`) trusting the data dir's CA.
    pub async fn connect(url: &str, data_dir: &Path) -> anyhow::Result<Client> {
        let ca = std::fs::read(data_dir.join("tls/ca.crt")).context("reading the cluster CA")?;
        let token = std::fs::read_to_string(data_dir.join("token")).context("reading the token")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        let hostport = url.trim_start_matches("https://");
        let tcp = TcpStream::connect(hostport).await?;
        tcp.set_nodelay(true)?;
        let host = hostport
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(hostport);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
        let tls = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
        let (send, conn) = http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake(TokioIo::new(tls))
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client {
            send,
            base: url.to_string(),
            token: token.trim().into(),
        })
    }

    /// Sends a request and returns the status and the whole body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", content_type)
            .body(Full::new(body.unwrap_or_default()))?;
        let mut send = self.send.clone();
        send.ready().await?;
        let resp = send.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// Starts a streaming GET (a watch); returns the response body to read frames from.
    pub async fn stream(&self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .body(Full::new(Bytes::new()))?;
        let mut send = self.send.clone();
        send.ready().await?;
        let resp = send.send_request(req).await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "watch failed: {}",
            resp.status()
        );
        Ok(resp.into_body())
    }
}
