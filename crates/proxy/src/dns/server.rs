//! [`serve`]: the UDP and TCP listeners. Each query is answered from the latest
//! [`Records`] when it is about the cluster's zones, and otherwise relayed unchanged to the
//! upstream resolvers (CoreDNS's `forward` plugin after `kubernetes … fallthrough`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::answer::{EDNS_PAYLOAD, response_edns};
use super::records::Records;

/// No answer from any upstream by then: SERVFAIL (before a stub resolver's own 5 s timeout).
const FORWARD_DEADLINE: Duration = Duration::from_secs(4);
/// How long one upstream gets before the next is tried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// An idle TCP connection is closed after this long without a query.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries handled at once over UDP; more are dropped (the client retries).
const MAX_UDP_INFLIGHT: usize = 1024;
/// TCP connections served at once; more are closed at once.
const MAX_TCP_CONNECTIONS: usize = 256;
/// A DNS header's length: anything shorter has no ID to answer to.
const HEADER_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("no upstream resolvers")]
    NoUpstreams,
    #[error("no upstream answered in time")]
    Timeout,
    #[error("encode the lookup")]
    Encode(#[source] hickory_proto::ProtoError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

struct Shared {
    /// The zone snapshot; each query reads the latest.
    records: watch::Receiver<Arc<Records>>,
    upstreams: Vec<SocketAddr>,
    /// Rotates address records between answers (CoreDNS's `loadbalance`, which k3s enables).
    rotation: AtomicUsize,
}

/// Serves UDP and TCP on the given sockets until `stop`; cluster names from the latest `records`,
/// other names forwarded to `upstreams` (relay the query, keep the client's ID; UDP for UDP, TCP for TCP;
/// SERVFAIL if no upstream answers in a few seconds).
///
/// Malformed queries are dropped (UDP) or end the connection (TCP); one with a readable
/// header gets FORMERR. UDP answers over 512 bytes (or the client's EDNS size, at most
/// 1232) are sent truncated so the client retries over TCP. In-flight queries are abandoned
/// when `stop` fires.
pub async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    records: watch::Receiver<Arc<Records>>,
    upstreams: Vec<SocketAddr>,
    stop: CancellationToken,
) {
    let udp = Arc::new(udp);
    let shared = Arc::new(Shared {
        records,
        upstreams,
        rotation: AtomicUsize::new(0),
    });
    info!(
        udp = ?udp.local_addr().ok(),
        tcp = ?tcp.local_addr().ok(),
        upstreams = ?shared.upstreams,
        "cluster DNS serving"
    );
    let udp_slots = Arc::new(Semaphore::new(MAX_UDP_INFLIGHT));
    let tcp_slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; u16::MAX as usize];
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            received = udp.recv_from(&mut buf) => match received {
                Ok((len, peer)) => {
                    let Ok(permit) = udp_slots.clone().try_acquire_owned() else {
                        debug!(%peer, "too many queries in flight, dropping one");
                        continue;
                    };
                    let packet = buf[..len].to_vec();
                    let (shared, udp) = (shared.clone(), udp.clone());
                    tasks.spawn(async move {
                        let _permit = permit;
                        if let Some(reply) = respond(&shared, &packet, Transport::Udp).await
                            && let Err(e) = udp.send_to(&reply, peer).await
                        {
                            debug!(%peer, error = %e, "send UDP answer");
                        }
                    });
                }
                // ICMP errors from earlier sends surface here; the socket stays usable.
                Err(e) => debug!(error = %e, "receive UDP query"),
            },
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(permit) = tcp_slots.clone().try_acquire_owned() else {
                        debug!(%peer, "too many TCP connections, closing one");
                        continue;
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let _permit = permit;
                        serve_tcp(&shared, stream).await;
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin.
                    warn!(error = %e, "accept DNS TCP connection");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            },
        }
    }
    info!("cluster DNS stopped");
}

/// Queries over one TCP connection, answered in order, until the client closes it, idles,
/// or sends something that is not a DNS message.
async fn serve_tcp(shared: &Shared, mut stream: TcpStream) {
    loop {
        let mut len = [0u8; 2];
        match timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if packet.len() < HEADER_LEN {
            return;
        }
        match timeout(TCP_IDLE, stream.read_exact(&mut packet)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(reply) = respond(shared, &packet, Transport::Tcp).await else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        match timeout(TCP_IDLE, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

/// The reply to one query packet, or None to send nothing.
async fn respond(shared: &Shared, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let header = packet.get(..HEADER_LEN)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    if header[2] & 0x80 != 0 {
        // A response, not a query: answering could start a loop between servers.
        return None;
    }
    let op_code = OpCode::from_u8((header[2] >> 3) & 0x0f);
    let formerr = || {
        Message::error_msg(id, op_code, ResponseCode::FormErr)
            .to_vec()
            .ok()
    };
    // Checked before decoding: a header claiming thousands of questions makes the decoder
    // reserve room for all of them.
    if u16::from_be_bytes([header[4], header[5]]) != 1 {
        return formerr();
    }
    let Ok(request) = Message::from_vec(packet) else {
        return formerr();
    };
    let limit = match transport {
        Transport::Udp => request.edns.as_ref().map_or(512, |e| {
            usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD))
        }),
        Transport::Tcp => usize::from(u16::MAX),
    };
    if request.metadata.op_code != OpCode::Query {
        return encode(&error_reply(&request, ResponseCode::NotImp), limit);
    }
    let records = shared.records.borrow().clone();
    if let Some(mut reply) = records.answer(&request) {
        if let Some((target, qtype)) = records.external_cname(&reply) {
            match lookup_upstream(&shared.upstreams, target.clone(), qtype).await {
                Ok(answers) => reply.answers.extend(answers),
                Err(e) => debug!(%target, error = %e, "resolve CNAME target"),
            }
        }
        rotate_addresses(&mut reply, shared.rotation.fetch_add(1, Ordering::Relaxed));
        return encode(&reply, limit);
    }
    match forward(transport, &shared.upstreams, packet, id).await {
        Ok(reply) => Some(reply),
        Err(e) => {
            let name = request.queries.first().map(|q| q.name().to_string());
            debug!(?name, error = %e, "forward query");
            encode(&error_reply(&request, ResponseCode::ServFail), limit)
        }
    }
}

/// `reply` in wire form, truncated (TC, no records) when it exceeds `limit` bytes.
fn encode(reply: &Message, limit: usize) -> Option<Vec<u8>> {
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        Ok(_) => reply.truncate().to_vec().ok(),
        Err(e) => {
            debug!(error = %e, "encode DNS answer");
            Message::error_msg(
                reply.metadata.id,
                reply.metadata.op_code,
                ResponseCode::ServFail,
            )
            .to_vec()
            .ok()
        }
    }
}

/// An answer with only a response code, echoing the question.
fn error_reply(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = code;
    reply.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        reply.set_edns(response_edns());
    }
    reply
}

/// Rotates the A and AAAA records of the answer section among their own positions, so
/// clients that take the first address spread over a headless Service's pods.
fn rotate_addresses(reply: &mut Message, by: usize) {
    let is_address = |r: &Record| matches!(r.data, RData::A(_) | RData::AAAA(_));
    let Some(owner) = reply
        .answers
        .iter()
        .find(|r| is_address(r))
        .map(|r| r.name.clone())
    else {
        return;
    };
    let positions: Vec<usize> = (reply.answers.iter().enumerate())
        .filter(|(_, r)| is_address(r) && r.name == owner)
        .map(|(i, _)| i)
        .collect();
    if positions.len() < 2 {
        return;
    }
    let mut data: Vec<RData> = positions
        .iter()
        .map(|&i| reply.answers[i].data.clone())
        .collect();
    data.rotate_left(by % positions.len());
    for (&i, d) in positions.iter().zip(data) {
        reply.answers[i].data = d;
    }
}

/// Sends `query` to the upstreams in turn over `transport` (over UDP each on a fresh
/// socket, so concurrent clients' IDs cannot collide) until one answers with the same ID.
async fn forward(
    transport: Transport,
    upstreams: &[SocketAddr],
    query: &[u8],
    id: u16,
) -> Result<Vec<u8>, ForwardError> {
    if upstreams.is_empty() {
        return Err(ForwardError::NoUpstreams);
    }
    let deadline = Instant::now() + FORWARD_DEADLINE;
    for upstream in upstreams.iter().cycle() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let attempt_end = deadline.min(now + ATTEMPT_TIMEOUT);
        let exchange = async {
            match transport {
                Transport::Udp => udp_exchange(*upstream, query, id).await,
                Transport::Tcp => tcp_exchange(*upstream, query, id).await,
            }
        };
        match timeout_at(attempt_end, exchange).await {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(e)) => {
                debug!(%upstream, ?transport, error = %e, "upstream failed");
                // A refused port answers at once; don't spin through the list in a loop.
                tokio::time::sleep_until(attempt_end.min(now + Duration::from_millis(200))).await;
            }
            Err(_) => debug!(%upstream, ?transport, "upstream timed out"),
        }
    }
    Err(ForwardError::Timeout)
}

async fn udp_exchange(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    // Connected: the kernel drops datagrams from anyone but the upstream.
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; u16::MAX as usize];
    loop {
        let len = socket.recv(&mut buf).await?;
        if is_reply_to(&buf[..len], id) {
            buf.truncate(len);
            return Ok(buf);
        }
    }
}

async fn tcp_exchange(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| io::Error::other("query too long"))?;
    let mut stream = TcpStream::connect(upstream).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        if is_reply_to(&reply, id) {
            return Ok(reply);
        }
    }
}

/// A response (QR set) carrying `id`.
fn is_reply_to(packet: &[u8], id: u16) -> bool {
    packet.len() >= HEADER_LEN
        && u16::from_be_bytes([packet[0], packet[1]]) == id
        && packet[2] & 0x80 != 0
}

/// The answer records for `name`/`qtype` from the upstreams (UDP, then TCP if truncated).
async fn lookup_upstream(
    upstreams: &[SocketAddr],
    name: Name,
    qtype: RecordType,
) -> Result<Vec<Record>, ForwardError> {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name, qtype));
    query.set_edns(response_edns());
    let id = query.metadata.id;
    let bytes = query.to_vec().map_err(ForwardError::Encode)?;
    let mut reply = forward(Transport::Udp, upstreams, &bytes, id).await?;
    if reply.get(2).is_some_and(|flags| flags & 0x02 != 0) {
        reply = forward(Transport::Tcp, upstreams, &bytes, id).await?;
    }
    Ok(Message::from_vec(&reply)
        .map(|m| m.answers)
        .unwrap_or_default())
}
