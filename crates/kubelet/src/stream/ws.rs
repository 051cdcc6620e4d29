//! The WebSocket side of streaming: answering the upgrade, the channel protocols of
//! exec, attach and port-forward, and SPDY tunnelled over WebSocket.
//!
//! Channel protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary message
//! starts with a channel byte. For exec and attach: 0 stdin, 1 stdout, 2 stderr, 3 error
//! (a JSON `Status` at the end), 4 resize (JSON `{"Width":…,"Height":…}` messages). v5
//! adds message `[255, c]`: the client closed channel `c` (stdin's end of file). For
//! port-forward each requested port `i` has data channel `2i` and error channel `2i+1`,
//! and the server's first message on each is the port number (2 bytes, little endian).
//!
//! `SPDY/3.1+portforward.k8s.io` (kubectl 1.31+): the binary messages carry a SPDY/3.1
//! session's bytes as they are; [`tunnel`] turns them back into a byte stream.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};
use tokio_tungstenite::tungstenite::{self, Message};

pub const V5_CHANNEL: &str = "v5.channel.k8s.io";
pub const V4_CHANNEL: &str = "v4.channel.k8s.io";
pub const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// v5's close signal channel.
const CLOSE_CHANNEL: u8 = 255;
/// What one pipe between a channel and its user buffers.
const PIPE: usize = 64 * 1024;

pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Whether a request asks for a WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The first protocol the client offers that is in `supported` (upstream's choice: the
/// client's order).
pub fn negotiate(headers: &HeaderMap, supported: &[&str]) -> Option<&'static str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|offered| {
            [V5_CHANNEL, V4_CHANNEL, SPDY_TUNNEL]
                .into_iter()
                .find(|p| *p == offered && supported.contains(p))
        })
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade, or `None` when the
/// request lacks its key.
pub fn accept<B: Default>(headers: &HeaderMap, protocol: &str) -> Option<Response<B>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(B::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).ok()?,
    );
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_str(protocol).ok()?,
    );
    Some(resp)
}

/// The WebSocket over an upgraded connection (the handshake is done).
pub async fn socket(upgraded: Upgraded) -> Socket {
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await
}

/// One side's ends of a channel connection.
pub struct Channels {
    /// What the client sends, per channel (asked for in [`channels`]'s `inbound`).
    pub inbound: HashMap<u8, DuplexStream>,
    /// Where to write what the client gets, per channel. Shutting one down ends it; once
    /// all are shut down (or dropped) the WebSocket is closed.
    pub outbound: HashMap<u8, DuplexStream>,
}

/// Splits a channel-protocol WebSocket into byte pipes. `first` is sent on an outbound
/// channel before anything else (port-forward's port numbers). `v5` honours the close
/// signal; without it a channel's reader sees end of file only when the socket ends.
pub fn channels(
    ws: Socket,
    v5: bool,
    inbound: &[u8],
    outbound: &[(u8, Option<Bytes>)],
) -> Channels {
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let mut users_in = HashMap::new();
    let mut feeds = HashMap::new();
    for &c in inbound {
        let (user, feed) = tokio::io::duplex(PIPE);
        users_in.insert(c, user);
        feeds.insert(c, feed);
    }
    let mut users_out = HashMap::new();
    for (c, first) in outbound {
        let (user, mut pump) = tokio::io::duplex(PIPE);
        users_out.insert(*c, user);
        let (tx, c, first) = (tx.clone(), *c, first.clone());
        tokio::spawn(async move {
            if let Some(first) = first {
                let mut msg = BytesMut::with_capacity(first.len() + 1);
                msg.extend_from_slice(&[c]);
                msg.extend_from_slice(&first);
                if tx.send(Message::Binary(msg.freeze())).await.is_err() {
                    return;
                }
            }
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match pump.read(&mut buf[1..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        buf[0] = c;
                        let msg = Message::Binary(Bytes::copy_from_slice(&buf[..=n]));
                        if tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    // Writer: every outbound message in order; a normal close once all channels ended.
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        let _ = sink.close().await;
    });
    // Reader: routes the client's messages to their channel until the socket ends.
    tokio::spawn(async move {
        while let Some(msg) = source.next().await {
            let data = match msg {
                Ok(Message::Binary(d)) => d,
                // Clients may send str data as text messages (the Python client does);
                // the channel byte leads either way.
                Ok(Message::Text(t)) => Bytes::from(t),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            let Some((&c, payload)) = data.split_first() else {
                continue;
            };
            if v5 && c == CLOSE_CHANNEL {
                if let Some(mut feed) = payload.first().and_then(|closed| feeds.remove(closed)) {
                    let _ = feed.shutdown().await;
                }
                continue;
            }
            if let Some(feed) = feeds.get_mut(&c)
                && feed.write_all(payload).await.is_err()
            {
                // The user stopped reading this channel.
                feeds.remove(&c);
            }
        }
        for (_, mut feed) in feeds {
            let _ = feed.shutdown().await;
        }
        // The client is gone: nothing more can be written to it.
        writer.abort();
    });
    Channels {
        inbound: users_in,
        outbound: users_out,
    }
}

/// A SPDY session's byte stream out of a `SPDY/3.1+portforward.k8s.io` WebSocket.
pub fn tunnel(ws: Socket) -> DuplexStream {
    let (user, mut pump) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let (mut sink, mut source) = ws.split();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(Message::Binary(d))) => {
                        if pump.write_all(&d).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                n = pump.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = sink.close().await;
    });
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_first_supported_protocol_is_chosen() {
        let mut h = HeaderMap::new();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("base64.channel.k8s.io, v4.channel.k8s.io,v5.channel.k8s.io"),
        );
        assert_eq!(negotiate(&h, &[V5_CHANNEL, V4_CHANNEL]), Some(V4_CHANNEL));
        assert_eq!(negotiate(&h, &[SPDY_TUNNEL]), None);
    }

    #[test]
    fn the_accept_key_is_rfc6455s() {
        let mut h = HeaderMap::new();
        // RFC 6455's example key and answer.
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let resp: Response<()> = accept(&h, V5_CHANNEL).expect("101");
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            resp.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(resp.headers()[header::SEC_WEBSOCKET_PROTOCOL], V5_CHANNEL);
    }
}
