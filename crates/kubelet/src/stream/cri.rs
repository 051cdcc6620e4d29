//! The agent's client to containerd's CRI streaming server. CRI `Exec`, `Attach` and
//! `PortForward` answer with a one-time URL (`http://127.0.0.1:PORT/exec/TOKEN`, …); the
//! client upgrades a request to it to SPDY/3.1 ([`connect`]) and then opens streams the
//! way client-go does:
//!
//! - exec and attach (`v4.channel.k8s.io`, [`RemoteCommand`]): one stream per channel,
//!   each named by its `streamType` header (`error`, `stdin`, `stdout`, `stderr`,
//!   `resize`), in client-go's order. The server starts the command once it has every
//!   stream the CRI request asked for, so the streams opened must match the request's
//!   stdin/stdout/stderr/tty. At the end the server writes a JSON `metav1.Status` on the
//!   error stream ([`exec_status`] reads it) and resets every stream.
//! - port-forward (`portforward.k8s.io`, [`open_port_forward`]): per forwarded connection
//!   an error and a data stream carrying `streamType`, `port` and a shared `requestID`.

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::AsyncWriteExt;

use super::spdy::{self, Headers, Role, Session, Stream};

/// The remote-command protocol spoken to containerd for exec and attach (its newest).
pub const PROTOCOL_V4: &str = "v4.channel.k8s.io";
/// The port-forward protocol.
pub const PROTOCOL_PORT_FORWARD: &str = "portforward.k8s.io";

/// Header names of Kubernetes' streaming protocols (lowercase, as they go on the wire).
pub const HEADER_STREAM_TYPE: &str = "streamtype";
pub const HEADER_PORT: &str = "port";
pub const HEADER_REQUEST_ID: &str = "requestid";
const PROTOCOL_HEADER: &str = "x-stream-protocol-version";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("streaming URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("connecting to the streaming server: {0}")]
    Connect(#[source] std::io::Error),
    #[error("streaming server HTTP: {0}")]
    Http(#[source] hyper::Error),
    #[error("streaming server refused the upgrade: {status} {body}")]
    Upgrade { status: u16, body: String },
    #[error("streaming server chose protocol {got:?}, not {want:?}")]
    Protocol { want: String, got: String },
    #[error(transparent)]
    Spdy(#[from] spdy::Error),
    #[error("sending FIN: {0}")]
    Fin(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Upgrade `url` (a CRI streaming URL, plain `http://`) to SPDY/3.1 speaking `protocol`
/// and return the client session. Fails with `Upgrade` when the server answers anything
/// but 101 (an expired or reused token is a 404).
pub async fn connect(url: &str, protocol: &str) -> Result<Session> {
    let bad = |reason: &str| Error::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// streaming URLs are supported"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let protocol_value = HeaderValue::from_str(protocol).map_err(|_| bad("bad protocol name"))?;

    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(Error::Connect)?;
    tcp.set_nodelay(true).map_err(Error::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(Error::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "streaming server connection");
        }
    });
    // POST as client-go does; the streaming server takes GET too.
    let req = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header(PROTOCOL_HEADER, protocol_value)
        .body(Empty::<Bytes>::new())
        .map_err(|_| bad("cannot build the request"))?;
    let mut resp = sender.send_request(req).await.map_err(Error::Http)?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status().as_u16();
        let body = match resp.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
            Err(_) => String::new(),
        };
        return Err(Error::Upgrade { status, body });
    }
    if let Some(got) = resp.headers().get(PROTOCOL_HEADER)
        && got.as_bytes() != protocol.as_bytes()
    {
        return Err(Error::Protocol {
            want: protocol.to_string(),
            got: String::from_utf8_lossy(got.as_bytes()).into_owned(),
        });
    }
    let upgraded = hyper::upgrade::on(&mut resp).await.map_err(Error::Http)?;
    Ok(Session::new(TokioIo::new(upgraded), Role::Client))
}

/// Which streams an exec or attach has; must match the CRI request the URL came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteCommandOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The streams of one exec or attach. Read `error` to EOF for the outcome
/// ([`exec_status`]); `stderr` is never opened with a tty, `resize` only with one.
#[derive(Debug)]
pub struct RemoteCommand {
    pub session: Session,
    pub error: Stream,
    pub stdin: Option<Stream>,
    pub stdout: Option<Stream>,
    pub stderr: Option<Stream>,
    pub resize: Option<Stream>,
}

impl RemoteCommand {
    /// [`connect`] with [`PROTOCOL_V4`], then [`RemoteCommand::open`].
    pub async fn connect(url: &str, opts: RemoteCommandOptions) -> Result<RemoteCommand> {
        let session = connect(url, PROTOCOL_V4).await?;
        RemoteCommand::open(session, opts).await
    }

    /// Open the streams `opts` asks for on an upgraded session, each waiting for the
    /// server's reply: error, stdin, stdout, stderr (not with a tty), resize (with a tty).
    pub async fn open(session: Session, opts: RemoteCommandOptions) -> Result<RemoteCommand> {
        let open = |kind: &'static str| {
            let session = &session;
            async move {
                let mut h = Headers::new();
                h.insert(HEADER_STREAM_TYPE, HeaderValue::from_static(kind));
                session.open(h).await
            }
        };
        let error = open("error").await?;
        let stdin = if opts.stdin {
            Some(open("stdin").await?)
        } else {
            None
        };
        let stdout = if opts.stdout {
            Some(open("stdout").await?)
        } else {
            None
        };
        let stderr = if opts.stderr && !opts.tty {
            Some(open("stderr").await?)
        } else {
            None
        };
        let resize = if opts.tty {
            Some(open("resize").await?)
        } else {
            None
        };
        Ok(RemoteCommand {
            session,
            error,
            stdin,
            stdout,
            stderr,
            resize,
        })
    }
}

/// What the error stream of a v4 exec or attach said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStatus {
    /// `Some(0)` on success, `Some(n)` when the process exited with `n`, `None` when the
    /// command could not run (or the status made no sense).
    pub exit_code: Option<i32>,
    /// The status message when the command failed.
    pub message: Option<String>,
}

/// Read the error stream's whole content: empty or `Success` is exit 0; a `Failure` with
/// reason `NonZeroExitCode` carries the code in the cause whose reason is `ExitCode`
/// (client-go's v4 decoder); anything else is an error message (plain text is what the
/// v1–v3 protocols send).
pub fn exec_status(error_stream: &[u8]) -> ExecStatus {
    let text = String::from_utf8_lossy(error_stream);
    let text = text.trim();
    if text.is_empty() {
        return ExecStatus {
            exit_code: Some(0),
            message: None,
        };
    }
    let Ok(status) = serde_json::from_str::<Status>(text) else {
        return ExecStatus {
            exit_code: None,
            message: Some(text.to_string()),
        };
    };
    if status.status.as_deref() == Some("Success") {
        return ExecStatus {
            exit_code: Some(0),
            message: None,
        };
    }
    let message = status
        .message
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| status.reason.clone())
        .unwrap_or_else(|| "unknown error".into());
    let exit_code = (status.reason.as_deref() == Some("NonZeroExitCode"))
        .then(|| {
            status
                .details
                .as_ref()?
                .causes
                .as_ref()?
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))?
                .message
                .as_deref()?
                .trim()
                .parse::<i32>()
                .ok()
        })
        .flatten();
    ExecStatus {
        exit_code,
        message: Some(message),
    }
}

/// One message for the resize stream: client-go's `TerminalSize` as JSON, one per line.
pub fn resize_message(width: u16, height: u16) -> Vec<u8> {
    format!("{{\"Width\":{width},\"Height\":{height}}}\n").into_bytes()
}

/// The streams of one forwarded connection.
#[derive(Debug)]
pub struct PortForwardStreams {
    /// The server writes a message here if it cannot forward (already half-closed by us).
    pub error: Stream,
    /// The connection's bytes, both ways.
    pub data: Stream,
}

/// Open the error stream (and half-close it: only the server writes there) and then the
/// data stream for `port`, both carrying `request_id` so the server pairs them, as
/// client-go's port-forwarder does. Use a fresh id per connection on a session.
pub async fn open_port_forward(
    session: &Session,
    port: u16,
    request_id: u32,
) -> Result<PortForwardStreams> {
    let mut h = Headers::new();
    h.insert(HEADER_STREAM_TYPE, HeaderValue::from_static("error"));
    h.insert(HEADER_PORT, HeaderValue::from(port));
    h.insert(HEADER_REQUEST_ID, HeaderValue::from(request_id));
    let mut error = session.open(h.clone()).await?;
    error.shutdown().await.map_err(Error::Fin)?;
    h.insert(HEADER_STREAM_TYPE, HeaderValue::from_static("data"));
    let data = session.open(h).await?;
    Ok(PortForwardStreams { error, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_status_reads_v4_statuses() {
        assert_eq!(exec_status(b"").exit_code, Some(0));
        assert_eq!(
            exec_status(br#"{"metadata":{},"status":"Success"}"#),
            ExecStatus {
                exit_code: Some(0),
                message: None
            }
        );
        let failed = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        let s = exec_status(failed);
        assert_eq!(s.exit_code, Some(3));
        assert!(s.message.expect("message").contains("exit code 3"));
        let internal = br#"{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: no such file","reason":"InternalError","code":500}"#;
        let s = exec_status(internal);
        assert_eq!(s.exit_code, None);
        assert_eq!(
            s.message.as_deref(),
            Some("Internal error occurred: error executing command in container: no such file")
        );
        let no_cause = br#"{"status":"Failure","reason":"NonZeroExitCode","message":"m"}"#;
        assert_eq!(exec_status(no_cause).exit_code, None);
        let v1 = exec_status(b"error executing command: boom");
        assert_eq!(v1.exit_code, None);
        assert_eq!(v1.message.as_deref(), Some("error executing command: boom"));
    }

    #[test]
    fn resize_messages_are_client_go_terminal_sizes() {
        assert_eq!(resize_message(80, 24), b"{\"Width\":80,\"Height\":24}\n");
    }

    #[tokio::test]
    async fn connect_rejects_urls_it_cannot_use() {
        for url in ["https://127.0.0.1:1/exec/x", "not a url", "/exec/x"] {
            assert!(
                matches!(connect(url, PROTOCOL_V4).await, Err(Error::Url { .. })),
                "{url}"
            );
        }
    }

    /// A streaming-server stand-in: answers the upgrade, then runs `serve` on the session.
    async fn fake_server<F, Fut>(status: u16, serve: F) -> String
    where
        F: FnOnce(Session) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut rd = BufReader::new(tcp);
            let mut request = String::new();
            loop {
                let mut line = String::new();
                rd.read_line(&mut line).await.expect("request line");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                request.push_str(&line);
            }
            let lower = request.to_ascii_lowercase();
            assert!(lower.starts_with("post /exec/token "), "{request}");
            assert!(lower.contains("upgrade: spdy/3.1"), "{request}");
            assert!(lower.contains("connection: upgrade"), "{request}");
            assert!(lower.contains("x-stream-protocol-version: v4.channel.k8s.io"));
            let mut tcp = rd.into_inner();
            if status != 101 {
                let body = "token not found";
                let resp = format!(
                    "HTTP/1.1 {status} Not Found\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                tcp.write_all(resp.as_bytes()).await.expect("respond");
                return;
            }
            tcp.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n",
            )
            .await
            .expect("respond");
            serve(Session::new(tcp, Role::Server)).await;
        });
        format!("http://{addr}/exec/token")
    }

    #[tokio::test]
    async fn remote_command_opens_streams_in_client_go_order() {
        use tokio::io::AsyncReadExt;
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        let url = fake_server(101, |server| async move {
            let mut kinds = Vec::new();
            let mut streams = Vec::new();
            for _ in 0..4 {
                let s = server.accept().await.expect("stream");
                kinds.push(
                    s.headers()
                        .get(HEADER_STREAM_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string(),
                );
                s.reply(&Headers::new()).expect("reply");
                streams.push(s);
            }
            let mut error = streams.remove(0);
            error
                .write_all(br#"{"metadata":{},"status":"Success"}"#)
                .await
                .expect("status");
            error.shutdown().await.expect("fin");
            let _ = seen_tx.send(kinds);
            server.closed().await;
        })
        .await;
        let opts = RemoteCommandOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        };
        let mut rc = RemoteCommand::connect(&url, opts).await.expect("connect");
        assert!(rc.stderr.is_none(), "no stderr with a tty");
        assert!(rc.stdin.is_some() && rc.stdout.is_some() && rc.resize.is_some());
        let mut status = Vec::new();
        rc.error.read_to_end(&mut status).await.expect("status");
        assert_eq!(exec_status(&status).exit_code, Some(0));
        assert_eq!(
            seen_rx.await.expect("server saw the streams"),
            ["error", "stdin", "stdout", "resize"]
        );
    }

    #[tokio::test]
    async fn a_refused_upgrade_reports_status_and_body() {
        let url = fake_server(404, |_| async {}).await;
        match RemoteCommand::connect(&url, RemoteCommandOptions::default()).await {
            Err(Error::Upgrade { status, body }) => {
                assert_eq!(status, 404);
                assert_eq!(body, "token not found");
            }
            other => panic!("{other:?}"),
        }
    }
}
