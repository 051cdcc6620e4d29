//! port-forward: each connection a client forwards is joined to a connection containerd
//! makes inside the pod's network namespace (upstream's portforward server).
//!
//! SPDY clients (plain or tunnelled over WebSocket) open a pair of streams per connection,
//! `streamType` error and data, with the same `requestID` and the `port`. WebSocket
//! channel clients name the ports in the query and get one connection per port.

use std::collections::HashMap;

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;

use super::cri::{self, PortForwardStreams};
use super::spdy::{Role, Session, Stream};
use super::{Protocol, StreamError, ws};

/// containerd's side, connected before the client's upgrade is answered.
pub(super) async fn connect(url: &str) -> Result<Session, StreamError> {
    cri::connect(url, cri::PROTOCOL_PORT_FORWARD)
        .await
        .map_err(|e| {
            StreamError::Runtime(format!("unable to connect to the container runtime: {e}"))
        })
}

/// Forwards the client's connections until the client goes away.
pub(super) async fn run(upgraded: Upgraded, proto: Protocol, ports: &[u16], up: Session) {
    match proto {
        Protocol::Channels { v5 } => channels(ws::socket(upgraded).await, v5, ports, &up).await,
        Protocol::SpdyTunnel => {
            let io = ws::tunnel(ws::socket(upgraded).await);
            spdy(Session::new(io, Role::Server), &up).await
        }
        Protocol::Spdy(_) => spdy(Session::new(TokioIo::new(upgraded), Role::Server), &up).await,
    }
    up.close();
}

/// SPDY clients: pairs the streams of each connection by `requestID`, then forwards it.
async fn spdy(client: Session, up: &Session) {
    let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    let mut forwards = JoinSet::new();
    let mut next_id = 0u32;
    while let Some(stream) = client.accept().await {
        let header = |k: &str| {
            stream
                .headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (kind, port, request) = (header("streamtype"), header("port"), header("requestid"));
        let Ok(port) = port.parse::<u16>() else {
            tracing::debug!(port, "port-forward stream with a bad port");
            stream.refuse();
            continue;
        };
        if stream.reply(&Default::default()).is_err() {
            break;
        }
        let entry = pending.entry(request.clone()).or_default();
        match kind.as_str() {
            "error" => entry.0 = Some(stream),
            "data" => entry.1 = Some(stream),
            other => {
                tracing::debug!(stream_type = other, "unexpected port-forward stream type");
                continue;
            }
        }
        if entry.0.is_some()
            && entry.1.is_some()
            && let Some((Some(error), Some(data))) = pending.remove(&request)
        {
            let up = up.clone();
            next_id = next_id.wrapping_add(1);
            let id = next_id;
            forwards.spawn(async move { forward(&up, port, id, data, error).await });
        }
    }
    forwards.abort_all();
    client.close();
}

/// One forwarded connection: data both ways (each side's end carried over as a
/// half-close), containerd's error (a refused port) passed on.
async fn forward<D, E>(up: &Session, port: u16, id: u32, mut data: D, mut error: E)
where
    D: AsyncRead + AsyncWrite + Unpin,
    E: AsyncWrite + Unpin + Send + 'static,
{
    match cri::open_port_forward(up, port, id).await {
        Ok(PortForwardStreams {
            error: mut up_error,
            data: mut up_data,
        }) => {
            let errors = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut up_error, &mut error).await;
                let _ = error.shutdown().await;
            });
            let _ = tokio::io::copy_bidirectional(&mut data, &mut up_data).await;
            let _ = data.shutdown().await;
            let _ = errors.await;
        }
        Err(e) => {
            let _ = error
                .write_all(format!("error forwarding port {port} to pod: {e}").as_bytes())
                .await;
            let _ = error.shutdown().await;
            let _ = data.shutdown().await;
        }
    }
}

/// WebSocket channel clients: port `i` of the query has data channel `2i` and error
/// channel `2i+1`, each opened with the port number.
async fn channels(socket: ws::Socket, v5: bool, ports: &[u16], up: &Session) {
    let inbound: Vec<u8> = (0..ports.len()).map(|i| (2 * i) as u8).collect();
    let outbound: Vec<(u8, Option<Bytes>)> = ports
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let first = Some(Bytes::copy_from_slice(&p.to_le_bytes()));
            [((2 * i) as u8, first.clone()), ((2 * i + 1) as u8, first)]
        })
        .collect();
    let mut ch = ws::channels(socket, v5, &inbound, &outbound);
    let mut forwards = JoinSet::new();
    for (i, port) in ports.iter().enumerate() {
        let (d, e) = ((2 * i) as u8, (2 * i + 1) as u8);
        let (Some(from_client), Some(to_client), Some(error)) = (
            ch.inbound.remove(&d),
            ch.outbound.remove(&d),
            ch.outbound.remove(&e),
        ) else {
            continue;
        };
        let (up, port, id) = (up.clone(), *port, i as u32);
        forwards.spawn(async move {
            let data = tokio::io::join(from_client, to_client);
            forward(&up, port, id, data, error).await
        });
    }
    while forwards.join_next().await.is_some() {}
}
