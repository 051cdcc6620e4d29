//! [`serve`] on loopback ports, with a fake upstream resolver.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ips, query, services, slice, slices, svc};
use crate::dns::{Records, serve};

/// Generous: the answers come at once, but CI machines are slow.
const WAIT: Duration = Duration::from_secs(20);
/// What the fake upstream answers over UDP and over TCP.
const UPSTREAM_UDP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const UPSTREAM_TCP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn upstream_reply(request: &Message, ip: Ipv4Addr) -> Vec<u8> {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.recursion_available = true;
    reply.add_queries(request.queries.iter().cloned());
    if let Some(q) = request.queries.first() {
        reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
    }
    reply.to_vec().expect("encode")
}

/// A resolver on one loopback port (UDP and TCP) that answers every name with a fixed
/// address, a different one per transport.
async fn fake_upstream() -> (SocketAddr, JoinHandle<()>) {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let udp_loop = async {
            let mut buf = vec![0u8; 65535];
            while let Ok((len, peer)) = udp.recv_from(&mut buf).await {
                if let Ok(request) = Message::from_vec(&buf[..len]) {
                    let _ = udp
                        .send_to(&upstream_reply(&request, UPSTREAM_UDP), peer)
                        .await;
                }
            }
        };
        let tcp_loop = async {
            while let Ok((mut stream, _)) = tcp.accept().await {
                tokio::spawn(async move {
                    let mut len = [0u8; 2];
                    stream.read_exact(&mut len).await.expect("length");
                    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    stream.read_exact(&mut buf).await.expect("query");
                    let request = Message::from_vec(&buf).expect("decode");
                    let reply = upstream_reply(&request, UPSTREAM_TCP);
                    let len = u16::try_from(reply.len()).expect("short");
                    stream.write_all(&len.to_be_bytes()).await.expect("write");
                    stream.write_all(&reply).await.expect("write");
                });
            }
        };
        tokio::join!(udp_loop, tcp_loop);
    });
    (addr, task)
}

struct Server {
    udp: SocketAddr,
    tcp: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

async fn start(records: watch::Receiver<Arc<Records>>, upstreams: Vec<SocketAddr>) -> Server {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let (udp_addr, tcp_addr) = (
        udp.local_addr().expect("addr"),
        tcp.local_addr().expect("addr"),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(udp, tcp, records, upstreams, stop.clone()));
    Server {
        udp: udp_addr,
        tcp: tcp_addr,
        stop,
        task,
    }
}

async fn udp_raw(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(packet, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(len);
    Some(buf)
}

async fn udp_ask(server: SocketAddr, request: &Message) -> Message {
    let reply = udp_raw(server, &request.to_vec().expect("encode"))
        .await
        .expect("a UDP answer");
    Message::from_vec(&reply).expect("decode answer")
}

async fn tcp_ask(server: SocketAddr, request: &Message) -> Message {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await.expect("connect");
        let bytes = request.to_vec().expect("encode");
        let len = u16::try_from(bytes.len()).expect("short");
        stream.write_all(&len.to_be_bytes()).await.expect("write");
        stream.write_all(&bytes).await.expect("write");
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.expect("length");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await.expect("answer");
        Message::from_vec(&buf).expect("decode answer")
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("a TCP answer in time")
}

fn v4(ip: Ipv4Addr) -> IpAddr {
    IpAddr::V4(ip)
}

#[tokio::test]
async fn serves_cluster_names_and_relays_the_rest_over_udp_and_tcp() {
    let (upstream, upstream_task) = fake_upstream().await;
    let (tx, rx) = watch::channel(Arc::new(Records::build(
        "cluster.local",
        &services(),
        &slices(),
    )));
    let server = start(rx, vec![upstream]).await;
    let web = "web.default.svc.cluster.local.";

    for (label, reply) in [
        (
            "udp",
            udp_ask(server.udp, &query(0x1234, web, RecordType::A)).await,
        ),
        (
            "tcp",
            tcp_ask(server.tcp, &query(0x1234, web, RecordType::A)).await,
        ),
    ] {
        assert_eq!(reply.metadata.id, 0x1234, "{label}");
        assert!(reply.metadata.authoritative, "{label}");
        assert_eq!(ips(&reply), [v4(Ipv4Addr::new(10, 43, 0, 20))], "{label}");
    }

    // A foreign name goes to the upstream over the client's transport, ID unchanged.
    let reply = udp_ask(server.udp, &query(0xBEEF, "example.org.", RecordType::A)).await;
    assert_eq!(reply.metadata.id, 0xBEEF);
    assert_eq!(ips(&reply), [v4(UPSTREAM_UDP)]);
    let reply = tcp_ask(server.tcp, &query(0xCAFE, "example.org.", RecordType::A)).await;
    assert_eq!(reply.metadata.id, 0xCAFE);
    assert_eq!(ips(&reply), [v4(UPSTREAM_TCP)]);

    // An ExternalName is completed with the target's addresses from upstream.
    let reply = udp_ask(
        server.udp,
        &query(5, "ext.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    let target = Name::from_ascii("example.com.").expect("name");
    assert_eq!(reply.answers[0].data, RData::CNAME(CNAME(target.clone())));
    assert_eq!(reply.answers[1].name, target);
    assert_eq!(ips(&reply), [v4(UPSTREAM_UDP)]);

    // A new snapshot answers the next query.
    let moved = svc(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.21", "ports": [{"name": "http", "port": 80}]},
    }));
    tx.send(Arc::new(Records::build("cluster.local", &[moved], &[])))
        .expect("server holds the receiver");
    let reply = udp_ask(server.udp, &query(6, web, RecordType::A)).await;
    assert_eq!(ips(&reply), [v4(Ipv4Addr::new(10, 43, 0, 21))]);
    let reply = udp_ask(
        server.udp,
        &query(7, "nginx.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);

    server.stop.cancel();
    tokio::time::timeout(WAIT, server.task)
        .await
        .expect("serve returns after stop")
        .expect("serve does not panic");
    upstream_task.abort();
}

#[tokio::test]
async fn large_udp_answers_are_truncated_and_complete_over_tcp() {
    let endpoints: Vec<String> = (1..=60).map(|i| format!("10.42.1.{i}")).collect();
    let eps: Vec<(&str, bool, Option<&str>)> = endpoints
        .iter()
        .map(|ip| (ip.as_str(), true, None))
        .collect();
    let headless = svc(json!({
        "metadata": {"name": "big", "namespace": "default"},
        "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]},
    }));
    let records = Records::build(
        "cluster.local",
        &[headless],
        &[slice("default", "big", &eps, ("http", 80))],
    );
    let (_tx, rx) = watch::channel(Arc::new(records));
    let server = start(rx, Vec::new()).await;
    let big = "big.default.svc.cluster.local.";

    let reply = udp_ask(server.udp, &query(1, big, RecordType::A)).await;
    assert!(reply.metadata.truncation, "60 addresses exceed 512 bytes");
    assert!(reply.answers.is_empty());
    assert_eq!(reply.queries.len(), 1);

    // With EDNS the client's larger buffer is used.
    let mut request = query(2, big, RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    request.set_edns(edns);
    let reply = udp_ask(server.udp, &request).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 60);

    let reply = tcp_ask(server.tcp, &query(3, big, RecordType::A)).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 60);
    server.stop.cancel();
}

#[tokio::test]
async fn malformed_queries_are_dropped_or_refused_and_serving_continues() {
    let (_tx, rx) = watch::channel(Arc::new(Records::build(
        "cluster.local",
        &services(),
        &slices(),
    )));
    let server = start(rx, Vec::new()).await;

    // Too short for a header: no answer (checked by the next query being answered first).
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.send_to(&[1, 2, 3], server.udp).await.expect("send");
    let valid = query(0x0101, "web.default.svc.cluster.local.", RecordType::A);
    socket
        .send_to(&valid.to_vec().expect("encode"), server.udp)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(WAIT, socket.recv_from(&mut buf))
        .await
        .expect("an answer")
        .expect("recv");
    let reply = Message::from_vec(&buf[..len]).expect("decode");
    assert_eq!(reply.metadata.id, 0x0101);

    // A header, one question, then garbage: FORMERR to that ID.
    let mut packet = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    packet.extend_from_slice(&[0xff; 7]);
    let reply = udp_raw(server.udp, &packet).await.expect("FORMERR");
    let reply = Message::from_vec(&reply).expect("decode");
    assert_eq!(reply.metadata.id, 0xABCD);
    assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);

    // A TCP frame too short for a header closes the connection.
    let mut stream = TcpStream::connect(server.tcp).await.expect("connect");
    stream.write_all(&[0, 3, 1, 2, 3]).await.expect("write");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed without an answer"
    );

    let reply = tcp_ask(server.tcp, &valid).await;
    assert_eq!(ips(&reply), [v4(Ipv4Addr::new(10, 43, 0, 20))]);
    server.stop.cancel();
}

#[tokio::test]
async fn unanswered_forwards_get_servfail() {
    // An upstream that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (_tx, rx) = watch::channel(Arc::new(Records::build("cluster.local", &[], &[])));
    let server = start(rx, vec![silent.local_addr().expect("addr")]).await;
    let reply = udp_ask(server.udp, &query(0x4242, "example.org.", RecordType::A)).await;
    assert_eq!(reply.metadata.id, 0x4242);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(reply.queries.len(), 1);
    server.stop.cancel();
}
