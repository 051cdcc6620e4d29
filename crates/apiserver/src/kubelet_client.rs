//! Talking to node agents (upstream's `pkg/kubelet/client`): where a node's agent listens,
//! and an HTTPS request to it.
//!
//! The agent's certificate is self-signed and not verified, as upstream does without
//! `--kubelet-certificate-authority`; the request carries the cluster's admin token, which
//! the agent was given to check.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::status::ApiError;
use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::net::TcpStream;

/// The port assumed when a Node reports none (upstream's `--kubelet-port` default).
pub const DEFAULT_PORT: u16 = 10250;
/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The address types tried in turn for a node's agent: the internal IP first (what the
/// agent registers and listens on), then upstream's default order for the rest.
const PREFERRED_ADDRESS_TYPES: &[&str] = &[
    "InternalIP",
    "Hostname",
    "InternalDNS",
    "ExternalDNS",
    "ExternalIP",
];

/// Where a node's agent listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub host: String,
    pub port: u16,
}

impl Location {
    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// The agent's address and port from a Node (upstream's `GetConnectionInfo`): the first
/// address of a preferred type (a `Hostname` falls back to the `kubernetes.io/hostname`
/// label), and `status.daemonEndpoints.kubeletEndpoint.Port` or [`DEFAULT_PORT`].
pub fn location(node: &Value) -> Result<Location, ApiError> {
    let addresses = node["status"]["addresses"].as_array();
    let of_type = |ty: &str| {
        addresses
            .into_iter()
            .flatten()
            .find(|a| a["type"] == ty)
            .and_then(|a| a["address"].as_str())
            .filter(|a| !a.is_empty())
    };
    let host = PREFERRED_ADDRESS_TYPES.iter().find_map(|ty| {
        of_type(ty).or_else(|| {
            (*ty == "Hostname")
                .then(|| node["metadata"]["labels"]["kubernetes.io/hostname"].as_str())
                .flatten()
                .filter(|h| !h.is_empty())
        })
    });
    let Some(host) = host else {
        // Go's `%v` of the address list: `[{InternalIP 10.0.0.1} {Hostname n1}]`.
        let known: Vec<String> = addresses
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{{{} {}}}",
                    a["type"].as_str().unwrap_or(""),
                    a["address"].as_str().unwrap_or("")
                )
            })
            .collect();
        return Err(unknown_error(format!(
            "no preferred addresses found; known addresses: [{}]",
            known.join(" ")
        )));
    };
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_PORT);
    Ok(Location {
        host: host.to_string(),
        port,
    })
}

/// A plain error turned into a Status the way upstream's handlers do: 500 with no reason,
/// so kubectl prints `Error from server: <message>`.
pub fn unknown_error(message: String) -> ApiError {
    let mut e = ApiError::new(500, "", message);
    e.0.reason = None;
    e
}

/// `GET https://<location><path_and_query>` with `token`. Fails with Go's wording
/// (`Get "https://…": dial tcp …: connect: connection refused`) as a [`unknown_error`].
pub async fn get(
    at: &Location,
    path_and_query: &str,
    token: &str,
) -> Result<Response<Incoming>, ApiError> {
    send(at, path_and_query, token, &[]).await
}

/// An upgrade request (`GET` with `headers`, which carry `Connection: Upgrade` and the
/// protocol's own headers) to the agent. The answer is the agent's: `101 Switching
/// Protocols` (then `hyper::upgrade::on` of it gives the connection), or its error.
pub async fn upgrade(
    at: &Location,
    path_and_query: &str,
    token: &str,
    headers: &[(header::HeaderName, header::HeaderValue)],
) -> Result<Response<Incoming>, ApiError> {
    send(at, path_and_query, token, headers).await
}

async fn send(
    at: &Location,
    path_and_query: &str,
    token: &str,
    headers: &[(header::HeaderName, header::HeaderValue)],
) -> Result<Response<Incoming>, ApiError> {
    let authority = at.authority();
    let url = format!("https://{authority}{path_and_query}");
    let fail = |what: String| unknown_error(format!("Get {url:?}: {what}"));
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&authority)).await {
        Err(_) => return Err(fail(format!("dial tcp {authority}: i/o timeout"))),
        Ok(Err(e)) => return Err(fail(format!("dial tcp {authority}: {}", dial_error(&e)))),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let name = match at.host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(at.host.clone())
            .map_err(|e| fail(format!("invalid host name: {e}")))?,
    };
    let tls_config = client_config().map_err(|e| fail(e.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config);
    let tls = match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => return Err(fail("net/http: TLS handshake timeout".into())),
        Ok(Err(e)) => return Err(fail(e.to_string())),
        Ok(Ok(s)) => s,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| fail(e.to_string()))?;
    // The connection lives as long as the response body (or the upgraded connection) is
    // used; it ends when that is dropped (the client went away), which the agent sees as
    // its reader leaving.
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "node agent connection ended with an error");
        }
    });
    let mut req = Request::get(path_and_query)
        .header(header::HOST, authority.as_str())
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::USER_AGENT, "rkube-apiserver");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(e.to_string()))?;
    sender
        .send_request(req)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// The tail of Go's dial error: `connect: connection refused`.
fn dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        std::io::ErrorKind::HostUnreachable => "connect: no route to host".into(),
        std::io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".into(),
        _ => format!("connect: {e}"),
    }
}

/// The client configuration for agents: any certificate is accepted, but the handshake
/// signatures are still checked against it. Cheap to build (no roots to load).
fn client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Accepts whatever certificate the agent shows (upstream's `InsecureSkipVerify` for
/// agents when no CA is configured).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn location_prefers_the_internal_ip_and_the_reported_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.7"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}},
        }});
        assert_eq!(
            location(&node).expect("location"),
            Location {
                host: "10.0.0.7".into(),
                port: 10251
            }
        );
        let node = json!({"metadata": {"labels": {"kubernetes.io/hostname": "h"}}, "status": {}});
        let at = location(&node).expect("location");
        assert_eq!((at.host.as_str(), at.port), ("h", DEFAULT_PORT));
        let v6 = Location {
            host: "fd00::1".into(),
            port: 10250,
        };
        assert_eq!(v6.authority(), "[fd00::1]:10250");
    }

    #[test]
    fn a_node_without_addresses_is_upstreams_error() {
        let err =
            location(&json!({"status": {"addresses": [{"type": "ExternalName", "address": "x"}]}}))
                .expect_err("no address");
        assert_eq!(err.code(), 500);
        assert_eq!(err.reason(), "");
        assert_eq!(
            err.message(),
            "no preferred addresses found; known addresses: [{ExternalName x}]"
        );
    }
}
