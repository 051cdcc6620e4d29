//! exec and attach: the client's streams (WebSocket channels or SPDY streams) joined to
//! containerd's (upstream's remotecommand server with the API server's v5 translation).

use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::cri::{RemoteCommand, RemoteCommandOptions};
use super::spdy::{Role, Session};
use super::{Protocol, StreamError, StreamIo, ws};

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// How long a SPDY client may take to open its streams (upstream's stream creation
/// timeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

// Channel numbers of the channel protocols, and SPDY `streamType`s, by stream.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// containerd's side of a command, connected before the client's upgrade is answered.
pub(super) async fn connect(url: &str, io: StreamIo) -> Result<RemoteCommand, StreamError> {
    let opts = RemoteCommandOptions {
        stdin: io.stdin,
        stdout: io.stdout,
        stderr: io.stderr,
        tty: io.tty,
    };
    RemoteCommand::connect(url, opts).await.map_err(|e| {
        StreamError::Runtime(format!("unable to connect to the container runtime: {e}"))
    })
}

/// The client's side of a command.
struct Client {
    stdin: Option<Reader>,
    stdout: Option<Writer>,
    stderr: Option<Writer>,
    error: Writer,
    resize: Option<Reader>,
    /// Held while the streams run (a SPDY session ends when dropped).
    session: Option<Session>,
}

/// Runs a command's streams on the client's upgraded connection until the command ends.
pub(super) async fn run(upgraded: Upgraded, proto: Protocol, io: StreamIo, up: RemoteCommand) {
    let client = match proto {
        Protocol::Channels { v5 } => Some(channels(ws::socket(upgraded).await, v5, io)),
        Protocol::Spdy(_) => spdy(Session::new(TokioIo::new(upgraded), Role::Server), io).await,
        Protocol::SpdyTunnel => None,
    };
    match client {
        Some(client) => bridge(client, up).await,
        None => up.session.close(),
    }
}

fn channels(socket: ws::Socket, v5: bool, io: StreamIo) -> Client {
    let mut inbound = vec![];
    if io.stdin {
        inbound.push(STDIN);
    }
    if io.tty {
        inbound.push(RESIZE);
    }
    let mut outbound = vec![(ERROR, None)];
    if io.stdout {
        outbound.push((STDOUT, None));
    }
    if io.stderr {
        outbound.push((STDERR, None));
    }
    let mut ch = ws::channels(socket, v5, &inbound, &outbound);
    let mut reader = |c| ch.inbound.remove(&c).map(|s| Box::new(s) as Reader);
    let stdin = reader(STDIN);
    let resize = reader(RESIZE);
    let mut writer = |c| ch.outbound.remove(&c).map(|s| Box::new(s) as Writer);
    let stdout = writer(STDOUT);
    let stderr = writer(STDERR);
    let error = writer(ERROR).unwrap_or_else(|| Box::new(tokio::io::sink()));
    Client {
        stdin,
        stdout,
        stderr,
        error,
        resize,
        session: None,
    }
}

/// Waits for the streams a SPDY client opens (`streamType` error, stdin, stdout, stderr,
/// resize), as many as the request's options call for.
async fn spdy(session: Session, io: StreamIo) -> Option<Client> {
    let expected = 1 + [io.stdin, io.stdout, io.stderr, io.tty]
        .iter()
        .filter(|on| **on)
        .count();
    let mut client = Client {
        stdin: None,
        stdout: None,
        stderr: None,
        error: Box::new(tokio::io::sink()),
        resize: None,
        session: None,
    };
    let mut have_error = false;
    let mut got = 0;
    let accept_all = async {
        while got < expected {
            let stream = session.accept().await?;
            let kind = stream
                .headers()
                .get("streamtype")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if stream.reply(&Default::default()).is_err() {
                return None;
            }
            match kind.as_str() {
                "error" => {
                    client.error = Box::new(stream);
                    have_error = true;
                }
                "stdin" => client.stdin = Some(Box::new(stream)),
                "stdout" => client.stdout = Some(Box::new(stream)),
                "stderr" => client.stderr = Some(Box::new(stream)),
                "resize" => client.resize = Some(Box::new(stream)),
                other => {
                    tracing::debug!(stream_type = other, "unexpected stream type");
                    continue;
                }
            }
            got += 1;
        }
        Some(())
    };
    match tokio::time::timeout(STREAM_CREATION_TIMEOUT, accept_all).await {
        Ok(Some(())) if have_error => {
            client.session = Some(session);
            Some(client)
        }
        _ => {
            tracing::debug!("SPDY client did not open its streams");
            session.close();
            None
        }
    }
}

/// Copies stdin and resize to containerd, stdout and stderr back, and — once the command
/// has ended and its output is through — containerd's error stream (the exit status).
async fn bridge(client: Client, up: RemoteCommand) {
    let RemoteCommand {
        session,
        error,
        stdin,
        stdout,
        stderr,
        resize,
    } = up;
    let mut inputs = tokio::task::JoinSet::new();
    if let (Some(mut from), Some(mut to)) = (client.stdin, stdin) {
        inputs.spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            // The client's end of input is the command's.
            let _ = to.shutdown().await;
        });
    }
    if let (Some(mut from), Some(mut to)) = (client.resize, resize) {
        inputs.spawn(async move {
            let _ = tokio::io::copy(&mut from, &mut to).await;
        });
    }
    async fn output<R: AsyncRead + Unpin>(from: Option<R>, to: Option<Writer>) {
        if let (Some(mut from), Some(mut to)) = (from, to) {
            let _ = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.shutdown().await;
        }
    }
    let status = async move {
        let mut error = error;
        let mut buf = Vec::new();
        let _ = error.read_to_end(&mut buf).await;
        buf
    };
    let ((), (), status) = tokio::join!(
        output(stdout, client.stdout),
        output(stderr, client.stderr),
        status
    );
    let mut error = client.error;
    let _ = error.write_all(&status).await;
    let _ = error.shutdown().await;
    inputs.abort_all();
    session.close();
    if let Some(s) = client.session {
        // Queued frames (the status, the FINs) are written before the session ends.
        s.close();
    }
}
