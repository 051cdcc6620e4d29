//! Streaming for exec, attach and port-forward (upstream's kubelet `/exec`, `/attach` and
//! `/portForward` handlers together with the API server's stream translation).
//!
//! A client's upgrade reaches the agent through the API server unchanged. The agent asks
//! containerd for the stream's URL ([`StreamSource`]: CRI `Exec`, `Attach`,
//! `PortForward`), connects to containerd's streaming server with SPDY/3.1 ([`cri`]), and
//! only then answers the client's upgrade, in whichever protocol the client speaks:
//!
//! - exec and attach: WebSocket `v5.channel.k8s.io` or `v4.channel.k8s.io` ([`ws`]), or a
//!   SPDY/3.1 upgrade (`v4.channel.k8s.io` streams, what kubectl before 1.30 speaks);
//! - port-forward: SPDY/3.1 tunnelled over WebSocket (`SPDY/3.1+portforward.k8s.io`, what
//!   kubectl 1.31+ speaks first), a plain SPDY/3.1 upgrade (`portforward.k8s.io`), or the
//!   WebSocket channel protocol with the ports in the query (the Python client).
//!
//! Then bytes are copied between the client's streams and containerd's
//! ([`remotecommand`], [`portforward`]); half-closes carry over (a client's end of stdin
//! ends the process's stdin).
//!
//! # Layout
//! - `spdy.rs`: SPDY/3.1 sessions (both roles); `cri.rs`: the client to containerd;
//! - `ws.rs`: the WebSocket handshake, channel multiplexing, the SPDY tunnel;
//! - `remotecommand.rs`: exec and attach; `portforward.rs`: port-forward.

pub mod cri;
mod portforward;
mod remotecommand;
pub mod spdy;
pub mod ws;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

/// Which streams an exec or attach has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamIo {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// What a client asked to stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamRequest {
    Exec {
        namespace: String,
        pod: String,
        container: String,
        command: Vec<String>,
        io: StreamIo,
    },
    Attach {
        namespace: String,
        pod: String,
        container: String,
        io: StreamIo,
    },
    PortForward {
        namespace: String,
        pod: String,
        /// The ports named in the query (the WebSocket protocol needs them up front; SPDY
        /// clients name a port per stream).
        ports: Vec<u16>,
    },
}

impl StreamRequest {
    pub fn namespace(&self) -> &str {
        match self {
            StreamRequest::Exec { namespace, .. }
            | StreamRequest::Attach { namespace, .. }
            | StreamRequest::PortForward { namespace, .. } => namespace,
        }
    }

    pub fn pod(&self) -> &str {
        match self {
            StreamRequest::Exec { pod, .. }
            | StreamRequest::Attach { pod, .. }
            | StreamRequest::PortForward { pod, .. } => pod,
        }
    }
}

/// Why a stream cannot start; answered before any upgrade, in the status upstream uses.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Runtime(String),
}

impl StreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            StreamError::NotFound(_) => StatusCode::NOT_FOUND,
            StreamError::BadRequest(_) => StatusCode::BAD_REQUEST,
            StreamError::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Where the streams of a request are served (the container runtime's streaming server).
#[async_trait::async_trait]
pub trait StreamSource: Send + Sync + 'static {
    /// The URL of containerd's streaming server for `req`.
    async fn url(&self, req: &StreamRequest) -> Result<String, StreamError>;
}

/// The client's protocol, from its upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// WebSocket with a channel protocol (`v5` says whether it is v5).
    Channels { v5: bool },
    /// WebSocket carrying a SPDY session (port-forward).
    SpdyTunnel,
    /// A SPDY/3.1 upgrade; the stream protocol version answered.
    Spdy(&'static str),
}

const SPDY_REMOTECOMMAND: &str = "v4.channel.k8s.io";
const SPDY_PORTFORWARD: &str = "portforward.k8s.io";

fn protocol(headers: &HeaderMap, port_forward: bool) -> Result<Protocol, StreamError> {
    if ws::is_websocket(headers) {
        let supported: &[&str] = if port_forward {
            &[ws::SPDY_TUNNEL, ws::V5_CHANNEL, ws::V4_CHANNEL]
        } else {
            &[ws::V5_CHANNEL, ws::V4_CHANNEL]
        };
        return match ws::negotiate(headers, supported) {
            Some(ws::SPDY_TUNNEL) => Ok(Protocol::SpdyTunnel),
            Some(p) => Ok(Protocol::Channels {
                v5: p == ws::V5_CHANNEL,
            }),
            None => Err(StreamError::BadRequest(format!(
                "unable to upgrade: no supported WebSocket subprotocol; supported: {}",
                supported.join(", ")
            ))),
        };
    }
    let spdy = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    if !spdy {
        return Err(StreamError::BadRequest("Upgrade request required".into()));
    }
    let wanted = if port_forward {
        SPDY_PORTFORWARD
    } else {
        SPDY_REMOTECOMMAND
    };
    let offered = headers
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == wanted);
    if !offered {
        return Err(StreamError::Runtime(format!(
            "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports [{wanted}]",
            headers
                .get_all("x-stream-protocol-version")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
        )));
    }
    Ok(Protocol::Spdy(wanted))
}

/// Serves one exec, attach or port-forward request: answers the upgrade and runs the
/// streams in a task of their own. `Err` is answered before any upgrade.
pub async fn serve<B: Default>(
    mut req: Request<Incoming>,
    what: StreamRequest,
    source: &dyn StreamSource,
) -> Result<Response<B>, StreamError> {
    let port_forward = matches!(what, StreamRequest::PortForward { .. });
    let proto = protocol(req.headers(), port_forward)?;
    if let (Protocol::Channels { .. }, StreamRequest::PortForward { ports, .. }) = (proto, &what)
        && ports.is_empty()
    {
        return Err(StreamError::BadRequest(
            "query parameter \"port\" is required".into(),
        ));
    }
    let url = source.url(&what).await?;
    let upstream = match &what {
        StreamRequest::Exec { io, .. } | StreamRequest::Attach { io, .. } => {
            Upstream::Command(Box::new(remotecommand::connect(&url, *io).await?))
        }
        StreamRequest::PortForward { .. } => {
            Upstream::PortForward(portforward::connect(&url).await?)
        }
    };
    let resp = match proto {
        Protocol::Channels { v5 } => ws::accept(
            req.headers(),
            if v5 { ws::V5_CHANNEL } else { ws::V4_CHANNEL },
        ),
        Protocol::SpdyTunnel => ws::accept(req.headers(), ws::SPDY_TUNNEL),
        Protocol::Spdy(version) => {
            let mut resp = Response::new(B::default());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
            h.insert(
                "x-stream-protocol-version",
                HeaderValue::from_static(version),
            );
            Some(resp)
        }
    }
    .ok_or_else(|| StreamError::BadRequest("missing Sec-WebSocket-Key".into()))?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "client upgrade did not complete");
                return;
            }
        };
        match (upstream, what) {
            (
                Upstream::Command(up),
                StreamRequest::Exec { io, .. } | StreamRequest::Attach { io, .. },
            ) => remotecommand::run(upgraded, proto, io, *up).await,
            (Upstream::PortForward(up), StreamRequest::PortForward { ports, .. }) => {
                portforward::run(upgraded, proto, &ports, up).await
            }
            _ => {}
        }
    });
    Ok(resp)
}

enum Upstream {
    Command(Box<cri::RemoteCommand>),
    PortForward(spdy::Session),
}

/// Reads the query of `/exec`, `/attach` (upstream's kubelet parameter names: `command`,
/// `input`, `output`, `error`, `tty`) or `/portForward` (`port`).
pub fn parse_query(values: &[(String, String)]) -> (Vec<String>, StreamIo, Vec<u16>) {
    let flag = |k: &str| {
        values
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .is_some_and(|(_, v)| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
    };
    let tty = flag("tty");
    let io = StreamIo {
        stdin: flag("input"),
        stdout: flag("output"),
        // Upstream drops stderr with a TTY: a terminal has one output.
        stderr: flag("error") && !tty,
        tty,
    };
    let command = values
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let ports = values
        .iter()
        .filter(|(k, _)| k == "port")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p > 0)
        .collect();
    (command, io, ports)
}
