//! SPDY/3.1 as Kubernetes speaks it: the multiplexing under `kubectl exec/attach/port-forward`
//! (client-go), the kubelet's streaming server and containerd's CRI streaming server, all of
//! which use Go's moby/spdystream. A [`Session`] runs over any upgraded byte stream in the
//! client or server [`Role`]; each [`Stream`] is a tokio `AsyncRead + AsyncWrite`.
//!
//! # Wire format
//! Frames are SPDY/3 (`frame.rs` has the layouts): SYN_STREAM opens a stream with a header
//! block, the other side answers SYN_REPLY (or RST_STREAM to refuse), DATA carries bytes and
//! the FIN flag half-closes, RST_STREAM aborts a stream, PING is echoed, GOAWAY ends the
//! session. Header blocks are zlib-compressed with the SPDY/3 dictionary, one compression
//! context per direction for the whole session. Clients open odd stream ids, servers even.
//!
//! # What spdystream does, and so this does
//! - No flow control: spdystream never sends WINDOW_UPDATE and ignores the ones it gets, so
//!   enforcing SPDY/3.1's 64 KiB windows against it would stall every transfer. WINDOW_UPDATE
//!   and SETTINGS are read and ignored; backpressure is the transport's (a stream whose reader
//!   falls [`RECV_BUFFER`] behind pauses the whole session's reading).
//! - Go peers drop DATA that arrives on a stream before its SYN_REPLY, so [`Session::open`]
//!   waits for the reply (as client-go does), and writing on an accepted stream first sends
//!   the reply if the caller has not.
//! - A peer's RST_STREAM reads as end of stream, as in spdystream (a Go streaming server resets
//!   every stream when an exec ends).
//!
//! # Layout
//! - this file: [`Session`] (the shared state, a reader task and a writer task) and [`Stream`].
//! - `spdy/frame.rs`: frame encoding and decoding, header blocks and their compression.

mod frame;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use frame::{Decoder, Encoder, Frame, FrameError, Head};

/// Stream headers. Names go lowercase on the wire; several values of one name travel
/// NUL-joined, as SPDY/3 requires.
pub type Headers = http::HeaderMap;

/// How many bytes a stream buffers for its reader before the session stops reading the
/// transport until that reader catches up.
pub const RECV_BUFFER: usize = 1 << 20;
/// How many encoded bytes may wait for the writer task before stream writes wait.
const SEND_BUFFER: usize = 256 << 10;
/// The largest DATA payload one write sends.
const MAX_DATA: usize = 64 << 10;
/// Peer-opened streams alive at once beyond which new ones are refused.
const MAX_STREAMS: usize = 4096;
/// How long the final flush (GOAWAY, last frames) may take before the transport is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(10);

/// RST_STREAM status codes (SPDY/3 §2.4.2) this implementation sends.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;
const GOAWAY_OK: u32 = 0;
const GOAWAY_PROTOCOL_ERROR: u32 = 1;

/// Which end of the connection this is: it fixes the parity of the stream and ping ids we
/// pick (client odd, server even).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spdy transport: {0}")]
    Io(#[source] io::Error),
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    #[error("spdy header compression: {0}")]
    Compression(String),
    #[error("spdy session closed")]
    Closed,
    #[error("spdy peer sent GOAWAY")]
    GoneAway,
    #[error("spdy stream reset by peer (status {0})")]
    Reset(u32),
    #[error("spdy stream was opened by this side; only peer-opened streams are replied to")]
    NotIncoming,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        match e {
            FrameError::Malformed(m) => Error::Protocol(m),
            FrameError::Compression(m) => Error::Compression(m),
        }
    }
}

/// One end of a SPDY session. Cheap to clone; every clone and every [`Stream`] keeps the
/// session alive, and when the last of them is dropped the session sends GOAWAY and shuts
/// the transport down.
#[derive(Clone)]
pub struct Session {
    handle: Arc<Handle>,
    incoming: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Stream>>>,
}

/// A stream of a session: read what the peer sends, write to it, `shutdown()` to half-close.
pub struct Stream {
    handle: Arc<Handle>,
    id: u32,
    headers: Headers,
    incoming: bool,
    /// What `poll_flush` waits for: the transport has taken this many bytes.
    flush_target: Option<u64>,
}

/// Counts the user's handles: dropping the last one closes the session.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.close(GOAWAY_OK);
    }
}

struct Shared {
    role: Role,
    state: Mutex<State>,
    /// Wakes the writer task: frames were queued, or the session is closing.
    writer_wake: Notify,
    /// Wakes the reader task when a full receive buffer drains or its stream goes away.
    space: Notify,
    /// Cancelled once the session is over; stops the reader task, resolves `closed()`.
    done: CancellationToken,
}

struct State {
    /// Encoded frames waiting for the writer task, in wire order. Everything that encodes a
    /// frame does it under this lock, so header blocks hit the compressor in wire order.
    out: Vec<u8>,
    encoder: Encoder,
    /// Bytes the writer task has written / is writing (for `poll_flush`).
    written: u64,
    inflight: u64,
    /// The users' shared handle, for streams the peer opens (weak: the reader task must not
    /// keep the session alive).
    me: Weak<Handle>,
    /// Stream writers (and flushers) waiting for `out` to drain.
    write_waiters: Vec<Waker>,
    streams: HashMap<u32, StreamState>,
    /// Our next stream id.
    next_id: u32,
    /// The lowest id the peer may open next (ids only grow).
    next_peer_id: u32,
    /// The last peer stream we accepted (for GOAWAY).
    last_peer_id: u32,
    next_ping: u32,
    pings: HashMap<u32, oneshot::Sender<()>>,
    /// Where accepted streams go; `None` after GOAWAY either way or the end.
    incoming: Option<mpsc::UnboundedSender<Stream>>,
    goaway_sent: bool,
    goaway_received: bool,
    /// Set when the session should wind down: the writer flushes and shuts the transport.
    closing: bool,
    /// Set when the session is over; streams read EOF and writes fail from then on.
    ended: bool,
}

struct StreamState {
    recv: VecDeque<Bytes>,
    recv_len: usize,
    remote_fin: bool,
    peer_reset: Option<u32>,
    local_fin: bool,
    /// Locally opened: SYN_REPLY received. Peer-opened: SYN_REPLY sent.
    replied: bool,
    incoming: bool,
    /// `open()` waiting for SYN_REPLY.
    reply_tx: Option<oneshot::Sender<Result<()>>>,
    read_waker: Option<Waker>,
}

impl StreamState {
    fn new(incoming: bool) -> StreamState {
        StreamState {
            recv: VecDeque::new(),
            recv_len: 0,
            remote_fin: false,
            peer_reset: None,
            local_fin: false,
            replied: false,
            incoming,
            reply_tx: None,
            read_waker: None,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.handle.0.role)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start winding down: GOAWAY (once), then the writer flushes and shuts the transport.
    fn close(&self, status: u32) {
        let mut st = self.lock();
        if !st.goaway_sent && !st.ended {
            st.goaway_sent = true;
            let last = st.last_peer_id;
            frame::goaway(&mut st.out, last, status);
        }
        st.closing = true;
        st.incoming = None;
        drop(st);
        self.writer_wake.notify_one();
    }

    /// The session is over: wake everyone waiting on it.
    fn end(&self, why: Option<&Error>) {
        let mut st = self.lock();
        if let Some(e) = why
            && !st.ended
        {
            tracing::debug!(error = %e, "spdy session ended");
        }
        st.ended = true;
        st.closing = true;
        st.incoming = None;
        let mut wakers = std::mem::take(&mut st.write_waiters);
        let mut replies = Vec::new();
        for s in st.streams.values_mut() {
            wakers.extend(s.read_waker.take());
            replies.extend(s.reply_tx.take());
        }
        let pings = std::mem::take(&mut st.pings);
        drop(st);
        for r in replies {
            let _ = r.send(Err(Error::Closed));
        }
        drop(pings);
        for w in wakers {
            w.wake();
        }
        self.done.cancel();
        self.writer_wake.notify_one();
        self.space.notify_one();
    }

    fn wake_writer(&self) {
        self.writer_wake.notify_one();
    }
}

impl Session {
    /// Start a session over `io` (an upgraded HTTP connection, or anything else) and spawn its
    /// reader and writer tasks; must be called within a tokio runtime.
    pub fn new<T>(io: T, role: Role) -> Session
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            role,
            state: Mutex::new(State {
                out: Vec::new(),
                encoder: Encoder::new(),
                written: 0,
                inflight: 0,
                me: Weak::new(),
                write_waiters: Vec::new(),
                streams: HashMap::new(),
                next_id: if role == Role::Client { 1 } else { 2 },
                next_peer_id: if role == Role::Client { 2 } else { 1 },
                last_peer_id: 0,
                next_ping: if role == Role::Client { 1 } else { 2 },
                pings: HashMap::new(),
                incoming: Some(tx),
                goaway_sent: false,
                goaway_received: false,
                closing: false,
                ended: false,
            }),
            writer_wake: Notify::new(),
            space: Notify::new(),
            done: CancellationToken::new(),
        });
        let handle = Arc::new(Handle(shared.clone()));
        shared.lock().me = Arc::downgrade(&handle);
        let (rd, wr) = tokio::io::split(io);
        tokio::spawn(read_task(shared.clone(), rd));
        tokio::spawn(write_task(shared, wr));
        Session {
            handle,
            incoming: Arc::new(tokio::sync::Mutex::new(rx)),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.0
    }

    /// Open a stream: send SYN_STREAM with `headers` and wait for the peer's SYN_REPLY.
    /// Fails with `Reset(status)` if the peer refuses the stream, `GoneAway` after the peer's
    /// GOAWAY, `Closed` once the session is over. Cancel-safe: dropping the future resets
    /// the stream.
    pub async fn open(&self, headers: Headers) -> Result<Stream> {
        let shared = self.shared();
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = shared.lock();
            if st.goaway_received {
                return Err(Error::GoneAway);
            }
            if st.ended || st.closing {
                return Err(Error::Closed);
            }
            let id = st.next_id;
            if id > frame::MAX_STREAM_ID {
                return Err(Error::Protocol("stream ids exhausted".into()));
            }
            st.next_id += 2;
            let st = &mut *st;
            if let Err(e) = st.encoder.syn_stream(&mut st.out, id, 0, &headers) {
                encoding_failed(shared, st, &e);
                return Err(e.into());
            }
            let mut s = StreamState::new(false);
            s.reply_tx = Some(tx);
            st.streams.insert(id, s);
            id
        };
        shared.wake_writer();
        let stream = Stream {
            handle: self.handle.clone(),
            id,
            headers,
            incoming: false,
            flush_target: None,
        };
        match rx.await {
            Ok(Ok(())) => Ok(stream),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed),
        }
    }

    /// The next stream the peer opened, with its SYN_STREAM headers in
    /// [`Stream::headers`]; reply with [`Stream::reply`] or refuse with [`Stream::refuse`].
    /// `None` once the session is over or either side sent GOAWAY. Streams the peer opens
    /// before anyone calls this wait in order.
    pub async fn accept(&self) -> Option<Stream> {
        self.incoming.lock().await.recv().await
    }

    /// Send a PING and wait for its echo; returns the round trip time.
    pub async fn ping(&self) -> Result<Duration> {
        let shared = self.shared();
        let (tx, rx) = oneshot::channel();
        {
            let mut st = shared.lock();
            if st.ended || st.closing {
                return Err(Error::Closed);
            }
            let id = st.next_ping;
            st.next_ping = if id > frame::MAX_STREAM_ID - 2 {
                id & 1
            } else {
                id + 2
            };
            st.pings.insert(id, tx);
            frame::ping(&mut st.out, id);
        }
        shared.wake_writer();
        let start = Instant::now();
        rx.await.map_err(|_| Error::Closed)?;
        Ok(start.elapsed())
    }

    /// End the session now: send GOAWAY, flush, shut the transport down. Streams read EOF
    /// and fail writes afterwards; `open` and `accept` stop. Idempotent.
    pub fn close(&self) {
        self.shared().close(GOAWAY_OK);
    }

    /// Resolves once the session is over (transport closed or failed, protocol error,
    /// `close()`).
    pub async fn closed(&self) {
        self.shared().done.cancelled().await
    }

    pub fn is_closed(&self) -> bool {
        self.shared().done.is_cancelled()
    }
}

/// Encoding a header block failed: the compression context is broken, so the session is.
fn encoding_failed(shared: &Shared, st: &mut State, e: &FrameError) {
    tracing::debug!(error = %e, "spdy: encoding a frame failed");
    st.closing = true;
    shared.writer_wake.notify_one();
}

impl Stream {
    /// The stream id (odd for client-opened streams, even for server-opened ones).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The SYN_STREAM headers: what we sent, or what the peer sent for accepted streams.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Send SYN_REPLY with `headers` on a peer-opened stream. Idempotent: only the first
    /// call sends. Writing or shutting down before replying sends an empty reply first.
    pub fn reply(&self, headers: &Headers) -> Result<()> {
        if !self.incoming {
            return Err(Error::NotIncoming);
        }
        let shared = &self.handle.0;
        let mut st = shared.lock();
        if st.ended || st.closing {
            return Err(Error::Closed);
        }
        let st = &mut *st;
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Err(Error::Closed);
        };
        if let Some(status) = s.peer_reset {
            return Err(Error::Reset(status));
        }
        if s.replied {
            return Ok(());
        }
        if let Err(e) = st.encoder.syn_reply(&mut st.out, self.id, 0, headers) {
            encoding_failed(shared, st, &e);
            return Err(e.into());
        }
        s.replied = true;
        shared.wake_writer();
        Ok(())
    }

    /// Abort the stream: RST_STREAM with CANCEL (what dropping an unfinished stream does).
    pub fn reset(self) {
        self.send_reset(RST_CANCEL);
    }

    /// Refuse a peer-opened stream instead of replying: RST_STREAM with REFUSED_STREAM.
    pub fn refuse(self) {
        self.send_reset(RST_REFUSED_STREAM);
    }

    /// The status code of the peer's RST_STREAM, if the peer reset this stream.
    pub fn peer_reset(&self) -> Option<u32> {
        let st = self.handle.0.lock();
        st.streams.get(&self.id).and_then(|s| s.peer_reset)
    }

    fn send_reset(&self, status: u32) {
        let shared = &self.handle.0;
        let mut st = shared.lock();
        let Some(s) = st.streams.get_mut(&self.id) else {
            return;
        };
        if s.peer_reset.is_some() || (s.local_fin && s.remote_fin) {
            return;
        }
        // No more writes, and reads end (as spdystream's Reset does).
        s.local_fin = true;
        s.remote_fin = true;
        if !st.ended {
            frame::rst_stream(&mut st.out, self.id, status);
            drop(st);
            shared.wake_writer();
        }
    }

    /// Queue one DATA frame with up to `MAX_DATA` bytes of `buf`, or with `fin` an empty one
    /// carrying FIN, replying first on an unreplied peer-opened stream. Returns the number of
    /// bytes taken from `buf` (0 for a FIN).
    fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8], fin: bool) -> Poll<io::Result<usize>> {
        let shared = &self.handle.0;
        let mut guard = shared.lock();
        let st = &mut *guard;
        if st.ended || st.closing {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        if s.peer_reset.is_some() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
        }
        if s.local_fin {
            if fin {
                return Poll::Ready(Ok(0));
            }
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if !fin && st.out.len() >= SEND_BUFFER {
            if !st.write_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                st.write_waiters.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        if s.incoming && !s.replied {
            if let Err(e) = st
                .encoder
                .syn_reply(&mut st.out, self.id, 0, &Headers::new())
            {
                encoding_failed(shared, st, &e);
                return Poll::Ready(Err(io::Error::other(Error::from(e))));
            }
            s.replied = true;
        }
        let n = buf.len().min(MAX_DATA);
        if fin {
            frame::data(&mut st.out, self.id, frame::FLAG_FIN, &[]);
            s.local_fin = true;
        } else {
            frame::data(&mut st.out, self.id, 0, &buf[..n]);
        }
        drop(guard);
        shared.wake_writer();
        Poll::Ready(Ok(n))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let shared = &self.handle.0;
        let mut st = shared.lock();
        let Some(s) = st.streams.remove(&self.id) else {
            return;
        };
        let was_full = s.recv_len >= RECV_BUFFER;
        // After our FIN there is nothing to abort; before it, tell the peer to stop.
        let reset = !s.local_fin && s.peer_reset.is_none() && !st.ended;
        if reset {
            frame::rst_stream(&mut st.out, self.id, RST_CANCEL);
        }
        drop(st);
        if reset {
            shared.wake_writer();
        }
        if was_full {
            shared.space.notify_one();
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let shared = &self.handle.0;
        let mut st = shared.lock();
        let ended = st.ended;
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Poll::Ready(Ok(()));
        };
        if let Some(chunk) = s.recv.front_mut() {
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            chunk.advance(n);
            if chunk.is_empty() {
                s.recv.pop_front();
            }
            let was_full = s.recv_len >= RECV_BUFFER;
            s.recv_len -= n;
            drop(st);
            if was_full {
                shared.space.notify_one();
            }
            return Poll::Ready(Ok(()));
        }
        if s.remote_fin || s.peer_reset.is_some() || ended {
            return Poll::Ready(Ok(()));
        }
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_send(cx, buf, false)
    }

    /// Waits until everything queued before the flush has been written to the transport.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let mut st = this.handle.0.lock();
        let target = *this
            .flush_target
            .get_or_insert(st.written + st.inflight + st.out.len() as u64);
        if st.written >= target {
            this.flush_target = None;
            return Poll::Ready(Ok(()));
        }
        if st.ended {
            this.flush_target = None;
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if !st.write_waiters.iter().any(|w| w.will_wake(cx.waker())) {
            st.write_waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Half-close: DATA with FIN. Idempotent; reading goes on until the peer's FIN.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx, &[], true).map_ok(|_| ())
    }
}

/// Reads frames until the transport ends, the peer misbehaves or the session is closed.
async fn read_task<R: AsyncRead + Unpin>(shared: Arc<Shared>, rd: R) {
    let mut rd = BufReader::with_capacity(64 << 10, rd);
    let mut decoder = Decoder::new();
    let result = tokio::select! {
        r = read_frames(&shared, &mut rd, &mut decoder) => r,
        _ = shared.done.cancelled() => Ok(()),
    };
    match result {
        Ok(()) => shared.end(None),
        Err(e) => {
            if matches!(e, Error::Protocol(_) | Error::Compression(_)) {
                tracing::debug!(error = %e, "spdy: closing session on a bad frame");
                shared.close(GOAWAY_PROTOCOL_ERROR);
            }
            shared.end(Some(&e));
        }
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    rd: &mut R,
    decoder: &mut Decoder,
) -> Result<()> {
    loop {
        let mut head = [0u8; 8];
        // A clean EOF between frames ends the session; inside a frame it is an error.
        match rd.read(&mut head[..1]).await.map_err(Error::Io)? {
            0 => return Ok(()),
            _ => {
                rd.read_exact(&mut head[1..]).await.map_err(Error::Io)?;
            }
        }
        let head = Head::parse(head)?;
        let mut body = BytesMut::zeroed(head.len);
        rd.read_exact(&mut body).await.map_err(Error::Io)?;
        let frame = decoder.decode(head, body.freeze())?;
        handle_frame(shared, frame).await;
    }
}

async fn handle_frame(shared: &Arc<Shared>, frame: Frame) {
    match frame {
        Frame::Data { id, flags, data } => {
            let full = {
                let mut st = shared.lock();
                let Some(s) = st.streams.get_mut(&id) else {
                    // Late data for a stream already gone: dropped, as spdystream does.
                    return;
                };
                if s.peer_reset.is_none() && !s.remote_fin && !data.is_empty() {
                    s.recv_len += data.len();
                    s.recv.push_back(data);
                }
                if flags & frame::FLAG_FIN != 0 {
                    s.remote_fin = true;
                }
                if let Some(w) = s.read_waker.take() {
                    w.wake();
                }
                s.recv_len >= RECV_BUFFER
            };
            if full {
                wait_for_space(shared, id).await;
            }
        }
        Frame::SynStream { id, flags, headers } => accept_stream(shared, id, flags, headers),
        Frame::SynReply { id, flags } => {
            let mut st = shared.lock();
            let Some(s) = st.streams.get_mut(&id) else {
                return;
            };
            if s.incoming || s.replied {
                return;
            }
            s.replied = true;
            if flags & frame::FLAG_FIN != 0 {
                s.remote_fin = true;
            }
            if let Some(tx) = s.reply_tx.take() {
                let _ = tx.send(Ok(()));
            }
        }
        Frame::Headers { id, flags } => {
            let mut st = shared.lock();
            if let Some(s) = st.streams.get_mut(&id)
                && flags & frame::FLAG_FIN != 0
            {
                s.remote_fin = true;
                if let Some(w) = s.read_waker.take() {
                    w.wake();
                }
            }
        }
        Frame::RstStream { id, status } => {
            let mut st = shared.lock();
            let Some(s) = st.streams.get_mut(&id) else {
                return;
            };
            s.peer_reset = Some(status);
            let reader = s.read_waker.take();
            let reply = s.reply_tx.take();
            let writers = std::mem::take(&mut st.write_waiters);
            drop(st);
            if let Some(tx) = reply {
                let _ = tx.send(Err(Error::Reset(status)));
            }
            reader.into_iter().chain(writers).for_each(Waker::wake);
            shared.space.notify_one();
        }
        Frame::Ping { id } => {
            let mut st = shared.lock();
            let ours = (id & 1) == (st.next_ping & 1);
            if ours {
                if let Some(tx) = st.pings.remove(&id) {
                    let _ = tx.send(());
                }
            } else if !st.ended {
                frame::ping(&mut st.out, id);
                drop(st);
                shared.wake_writer();
            }
        }
        Frame::GoAway { last_good } => {
            let mut st = shared.lock();
            st.goaway_received = true;
            st.incoming = None;
            // Our streams above `last_good` were never seen by the peer.
            let mut failed = Vec::new();
            for (&id, s) in st.streams.iter_mut() {
                if !s.incoming && id > last_good {
                    failed.extend(s.reply_tx.take());
                }
            }
            drop(st);
            for tx in failed {
                let _ = tx.send(Err(Error::GoneAway));
            }
        }
        Frame::Ignored => {}
    }
}

/// A SYN_STREAM from the peer: check its id, then hand the stream to `accept()`.
fn accept_stream(shared: &Arc<Shared>, id: u32, flags: u8, headers: Headers) {
    let mut st = shared.lock();
    let peer_parity = if shared.role == Role::Client { 0 } else { 1 };
    if id & 1 != peer_parity || id < st.next_peer_id {
        // As spdystream: refuse the stream, keep the session.
        tracing::debug!(id, "spdy: SYN_STREAM with an invalid stream id");
        frame::rst_stream(&mut st.out, id, RST_PROTOCOL_ERROR);
        drop(st);
        shared.wake_writer();
        return;
    }
    st.next_peer_id = id.saturating_add(2);
    if st.goaway_sent || st.closing || st.ended {
        return;
    }
    if st.streams.len() >= MAX_STREAMS || st.incoming.is_none() {
        frame::rst_stream(&mut st.out, id, RST_REFUSED_STREAM);
        drop(st);
        shared.wake_writer();
        return;
    }
    // No user handle left means the session is closing: nobody could take the stream.
    let Some(handle) = st.me.upgrade() else {
        return;
    };
    st.last_peer_id = id;
    let mut s = StreamState::new(true);
    s.remote_fin = flags & frame::FLAG_FIN != 0;
    s.local_fin = flags & frame::FLAG_UNIDIRECTIONAL != 0;
    st.streams.insert(id, s);
    let tx = st.incoming.clone();
    drop(st);
    // The Stream is built and (if nobody listens) dropped outside the lock: its Drop locks,
    // and so may the Handle's.
    let stream = Stream {
        handle,
        id,
        headers,
        incoming: true,
        flush_target: None,
    };
    if let Some(tx) = tx {
        let _ = tx.send(stream);
    }
}

/// Pause reading while stream `id` holds a full receive buffer (its reader is behind).
async fn wait_for_space(shared: &Arc<Shared>, id: u32) {
    loop {
        let notified = shared.space.notified();
        {
            let st = shared.lock();
            let full = st
                .streams
                .get(&id)
                .is_some_and(|s| s.recv_len >= RECV_BUFFER && s.peer_reset.is_none());
            if !full || st.ended {
                return;
            }
        }
        notified.await;
    }
}

/// Writes queued frames to the transport in batches; shuts it down once the session closes.
async fn write_task<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut wr: W) {
    let mut batch = Vec::new();
    loop {
        let (closing, waiters) = {
            let mut st = shared.lock();
            std::mem::swap(&mut st.out, &mut batch);
            st.inflight = batch.len() as u64;
            (st.closing, std::mem::take(&mut st.write_waiters))
        };
        // `out` is empty again: writers waiting for room can go on.
        waiters.into_iter().for_each(Waker::wake);
        if batch.is_empty() {
            if closing {
                break;
            }
            shared.writer_wake.notified().await;
            continue;
        }
        let n = batch.len() as u64;
        let write = async {
            wr.write_all(&batch).await?;
            wr.flush().await
        };
        let result = if closing {
            tokio::time::timeout(CLOSE_FLUSH, write)
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        } else {
            write.await
        };
        batch.clear();
        if let Err(e) = result {
            shared.end(Some(&Error::Io(e)));
            return;
        }
        let waiters = {
            let mut st = shared.lock();
            st.written += n;
            st.inflight = 0;
            std::mem::take(&mut st.write_waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH, wr.shutdown()).await;
    shared.end(None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const DEADLINE: Duration = Duration::from_secs(30);

    fn pair() -> (Session, Session) {
        let (a, b) = tokio::io::duplex(64 << 10);
        (Session::new(a, Role::Client), Session::new(b, Role::Server))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(DEADLINE, f)
            .await
            .expect("within the deadline")
    }

    /// Server side of most tests: accept every stream, reply, and echo it back, FIN for FIN.
    fn echo_server(server: Session) {
        tokio::spawn(async move {
            while let Some(stream) = server.accept().await {
                stream.reply(&Headers::new()).expect("reply");
                tokio::spawn(async move {
                    let (mut rd, mut wr) = tokio::io::split(stream);
                    tokio::io::copy(&mut rd, &mut wr).await.expect("echo");
                    wr.shutdown().await.expect("fin");
                });
            }
        });
    }

    /// Open a stream, wait for the peer to accept it.
    async fn open_pair(client: &Session, server: &Session, h: Headers) -> (Stream, Stream) {
        let opened = tokio::spawn({
            let client = client.clone();
            async move { client.open(h).await }
        });
        let accepted = within(server.accept()).await.expect("a stream");
        accepted.reply(&Headers::new()).expect("reply");
        let opened = within(opened).await.expect("task").expect("open");
        (opened, accepted)
    }

    #[tokio::test]
    async fn headers_round_trip_to_the_accepting_side() {
        let (client, server) = pair();
        let sent = headers(&[
            ("streamtype", "stdout"),
            ("port", "8080"),
            ("x-multi", "a"),
            ("x-multi", "b"),
        ]);
        let (opened, accepted) = open_pair(&client, &server, sent.clone()).await;
        assert_eq!(accepted.headers(), &sent);
        assert_eq!(opened.headers(), &sent);
        assert_eq!(opened.id(), 1, "clients open odd ids");
        assert_eq!(accepted.id(), 1);
        // The other direction: the server opens even ids and the client accepts them.
        let (from_server, at_client) =
            open_pair(&server, &client, headers(&[("streamtype", "error")])).await;
        assert_eq!(from_server.id(), 2);
        assert_eq!(
            at_client.headers().get("streamtype").expect("header"),
            "error"
        );
    }

    #[tokio::test]
    async fn data_flows_both_ways_and_fin_half_closes() {
        let (client, server) = pair();
        let (mut c, mut s) = open_pair(&client, &server, Headers::new()).await;
        c.write_all(b"hello ").await.expect("write");
        c.write_all(b"world").await.expect("write");
        c.shutdown().await.expect("fin");
        let mut got = Vec::new();
        within(s.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"hello world");
        // Half-closed: the server can still answer, and the client still reads.
        s.write_all(b"bye")
            .await
            .expect("write after the peer's FIN");
        s.shutdown().await.expect("fin");
        let mut got = Vec::new();
        within(c.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"bye");
        // Writing after our own FIN is refused.
        let err = c.write_all(b"x").await.expect_err("write after shutdown");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(c.peer_reset().is_none() && s.peer_reset().is_none());
    }

    #[tokio::test]
    async fn writing_before_replying_replies_implicitly() {
        let (client, server) = pair();
        let opened = tokio::spawn({
            let client = client.clone();
            async move { client.open(Headers::new()).await }
        });
        let mut accepted = within(server.accept()).await.expect("a stream");
        accepted.write_all(b"early").await.expect("write");
        accepted.shutdown().await.expect("fin");
        let mut opened = within(opened).await.expect("task").expect("open");
        let mut got = Vec::new();
        within(opened.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"early");
    }

    #[tokio::test]
    async fn dropping_an_unfinished_stream_resets_it() {
        let (client, server) = pair();
        let (c, mut s) = open_pair(&client, &server, Headers::new()).await;
        drop(c);
        let mut got = Vec::new();
        within(s.read_to_end(&mut got))
            .await
            .expect("reset reads as EOF");
        assert!(got.is_empty());
        assert_eq!(s.peer_reset(), Some(RST_CANCEL));
        let err = s.write_all(b"x").await.expect_err("write after reset");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

        // After our FIN, dropping is not a reset: the peer still gets its data and EOF.
        let (mut c, mut s) = open_pair(&client, &server, Headers::new()).await;
        c.write_all(b"last words").await.expect("write");
        c.shutdown().await.expect("fin");
        drop(c);
        let mut got = Vec::new();
        within(s.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"last words");
        assert_eq!(s.peer_reset(), None);
    }

    #[tokio::test]
    async fn explicit_reset_and_refuse() {
        let (client, server) = pair();
        let (c, mut s) = open_pair(&client, &server, Headers::new()).await;
        c.reset();
        let mut got = Vec::new();
        within(s.read_to_end(&mut got)).await.expect("EOF");
        assert_eq!(s.peer_reset(), Some(RST_CANCEL));

        let opened = tokio::spawn({
            let client = client.clone();
            async move { client.open(Headers::new()).await }
        });
        within(server.accept()).await.expect("a stream").refuse();
        match within(opened).await.expect("task") {
            Err(Error::Reset(status)) => assert_eq!(status, RST_REFUSED_STREAM),
            other => panic!("open of a refused stream: {other:?}"),
        }
        // The session survives a refused stream.
        echo_server(server);
        let mut c = within(client.open(Headers::new())).await.expect("open");
        c.write_all(b"still here").await.expect("write");
        c.shutdown().await.expect("fin");
        let mut got = Vec::new();
        within(c.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"still here");
    }

    #[tokio::test]
    async fn many_concurrent_streams_keep_their_data_apart() {
        let (client, server) = pair();
        echo_server(server);
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = client.open(Headers::new()).await.expect("open");
                let msg: Vec<u8> = format!("stream {i} ")
                    .repeat(i as usize % 50 + 1)
                    .into_bytes();
                let (mut rd, mut wr) = tokio::io::split(&mut s);
                let write = async {
                    for chunk in msg.chunks(7) {
                        wr.write_all(chunk).await.expect("write");
                    }
                    wr.shutdown().await.expect("fin");
                };
                let mut got = Vec::new();
                let read = rd.read_to_end(&mut got);
                let ((), read) = tokio::join!(write, read);
                read.expect("read");
                assert_eq!(got, msg, "stream {i}");
            }));
        }
        for t in tasks {
            within(t).await.expect("stream task");
        }
    }

    #[tokio::test]
    async fn multi_mib_transfers_both_ways_do_not_stall() {
        let (client, server) = pair();
        echo_server(server);
        let mut s = within(client.open(Headers::new())).await.expect("open");
        let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let (mut rd, mut wr) = tokio::io::split(&mut s);
        let write = async {
            wr.write_all(&data).await.expect("write");
            wr.shutdown().await.expect("fin");
        };
        let mut got = Vec::with_capacity(data.len());
        let read = rd.read_to_end(&mut got);
        let ((), read) = within(async { tokio::join!(write, read) }).await;
        read.expect("read");
        assert_eq!(got.len(), data.len());
        assert!(got == data, "the echoed bytes differ");
    }

    #[tokio::test]
    async fn a_slow_reader_gets_everything_past_the_receive_buffer() {
        let (client, server) = pair();
        let (mut c, mut s) = open_pair(&client, &server, Headers::new()).await;
        let total = 3 * RECV_BUFFER + 123;
        let writer = tokio::spawn(async move {
            let data = vec![7u8; total];
            c.write_all(&data).await.expect("write");
            c.shutdown().await.expect("fin");
            c
        });
        // Let the writer run ahead until the receive buffer is full, then read it all.
        tokio::task::yield_now().await;
        let mut got = Vec::new();
        within(s.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got.len(), total);
        within(writer).await.expect("writer");
        // The session still works after pausing its reading.
        let (mut c2, mut s2) = open_pair(&client, &server, Headers::new()).await;
        c2.write_all(b"after").await.expect("write");
        c2.shutdown().await.expect("fin");
        let mut got = Vec::new();
        within(s2.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"after");
    }

    #[tokio::test]
    async fn ping_is_answered() {
        let (client, server) = pair();
        within(client.ping()).await.expect("client ping");
        within(server.ping()).await.expect("server ping");
    }

    #[tokio::test]
    async fn goaway_stops_new_streams_but_not_the_open_ones() {
        let (client, server) = pair();
        let (mut c, mut s) = open_pair(&client, &server, Headers::new()).await;
        // A raw GOAWAY from the server side, without closing its transport.
        {
            let mut st = server.shared().lock();
            frame::goaway(&mut st.out, 1, GOAWAY_OK);
        }
        server.shared().wake_writer();
        let err = loop {
            match within(client.open(Headers::new())).await {
                Err(e) => break e,
                // The GOAWAY may not have arrived yet; the server refuses nothing by itself.
                Ok(stream) => {
                    drop(stream);
                    tokio::task::yield_now().await;
                }
            }
        };
        assert!(matches!(err, Error::GoneAway), "{err:?}");
        assert!(within(client.accept()).await.is_none());
        c.write_all(b"on the old stream").await.expect("write");
        c.shutdown().await.expect("fin");
        let mut got = Vec::new();
        within(s.read_to_end(&mut got)).await.expect("read");
        assert_eq!(got, b"on the old stream");
    }

    #[tokio::test]
    async fn close_ends_the_session_for_both_sides() {
        let (client, server) = pair();
        let (mut c, _s) = open_pair(&client, &server, Headers::new()).await;
        server.close();
        within(client.closed()).await;
        within(server.closed()).await;
        assert!(client.is_closed());
        let mut got = Vec::new();
        within(c.read_to_end(&mut got))
            .await
            .expect("EOF after the session ends");
        assert_eq!(
            c.write_all(b"x").await.expect_err("write").kind(),
            io::ErrorKind::BrokenPipe
        );
        assert!(matches!(
            client.open(Headers::new()).await,
            Err(Error::Closed | Error::GoneAway)
        ));
        assert!(client.accept().await.is_none());
    }

    #[tokio::test]
    async fn dropping_every_handle_closes_the_transport() {
        let (client, server) = pair();
        let (c, s) = open_pair(&client, &server, Headers::new()).await;
        drop(s);
        drop(c);
        drop(client);
        within(server.closed()).await;
    }

    /// A session on one end of a pipe, raw bytes on the other.
    fn raw(role: Role) -> (Session, DuplexStream) {
        let (a, b) = tokio::io::duplex(64 << 10);
        (Session::new(a, role), b)
    }

    fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&(0x8000u16 | 3).to_be_bytes());
        f.extend_from_slice(&kind.to_be_bytes());
        f.extend_from_slice(&(((flags as u32) << 24) | body.len() as u32).to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// Read frames from the raw end until EOF; return the control frame types seen.
    async fn control_types(mut raw: DuplexStream) -> Vec<(u16, Vec<u8>)> {
        let mut all = Vec::new();
        within(raw.read_to_end(&mut all)).await.expect("read");
        let mut seen = Vec::new();
        let mut b = &all[..];
        while b.len() >= 8 {
            let len = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
            let body = b.get(8..8 + len).unwrap_or_default().to_vec();
            if b[0] & 0x80 != 0 {
                seen.push((u16::from_be_bytes([b[2], b[3]]), body));
            }
            b = b.get(8 + len..).unwrap_or_default();
        }
        seen
    }

    #[tokio::test]
    async fn malformed_frames_close_the_session_with_a_protocol_error() {
        let mut zlib_garbage = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        zlib_garbage.extend_from_slice(b"definitely not zlib");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("version 2", {
                let mut f = control(frame::TYPE_PING, 0, &1u32.to_be_bytes());
                f[1] = 2;
                f
            }),
            ("DATA on stream 0", vec![0, 0, 0, 0, 0, 0, 0, 1, 42]),
            (
                "short SYN_STREAM",
                control(frame::TYPE_SYN_STREAM, 0, &[0, 0, 0, 1]),
            ),
            (
                "bad header block",
                control(frame::TYPE_SYN_STREAM, 0, &zlib_garbage),
            ),
            (
                "SETTINGS length",
                control(frame::TYPE_SETTINGS, 0, &[0, 0, 0, 9, 1, 2]),
            ),
            ("PING length", control(frame::TYPE_PING, 0, &[0, 0, 1])),
            (
                "RST on stream 0",
                control(frame::TYPE_RST_STREAM, 0, &[0; 8]),
            ),
            ("GOAWAY length", control(frame::TYPE_GOAWAY, 0, &[0; 4])),
            ("truncated frame", {
                let mut f = control(frame::TYPE_PING, 0, &1u32.to_be_bytes());
                f[7] = 40;
                f
            }),
        ];
        for (name, bytes) in cases {
            let (session, mut raw) = raw(Role::Server);
            raw.write_all(&bytes).await.expect("write");
            if name == "truncated frame" {
                raw.shutdown().await.expect("eof");
            }
            within(session.closed()).await;
            assert!(
                session.open(Headers::new()).await.is_err(),
                "{name}: open after the end"
            );
            if name != "truncated frame" {
                let seen = control_types(raw).await;
                assert!(
                    seen.iter().any(|(t, body)| *t == frame::TYPE_GOAWAY
                        && body.get(4..8) == Some(&GOAWAY_PROTOCOL_ERROR.to_be_bytes()[..])),
                    "{name}: expected GOAWAY(PROTOCOL_ERROR), saw {seen:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn unknown_and_ignored_frames_keep_the_session() {
        let (session, mut raw) = raw(Role::Client);
        // SETTINGS, WINDOW_UPDATE, a made-up control type, then a PING from the server side.
        raw.write_all(&control(
            frame::TYPE_SETTINGS,
            0,
            &[0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0],
        ))
        .await
        .expect("write");
        raw.write_all(&control(
            frame::TYPE_WINDOW_UPDATE,
            0,
            &[0, 0, 0, 1, 0, 1, 0, 0],
        ))
        .await
        .expect("write");
        raw.write_all(&control(0x42, 0, b"whatever"))
            .await
            .expect("write");
        raw.write_all(&control(frame::TYPE_PING, 0, &2u32.to_be_bytes()))
            .await
            .expect("write");
        // The ping comes back unchanged.
        let mut echo = [0u8; 12];
        within(raw.read_exact(&mut echo)).await.expect("ping echo");
        assert_eq!(
            echo.to_vec(),
            control(frame::TYPE_PING, 0, &2u32.to_be_bytes())
        );
        assert!(!session.is_closed());
    }

    #[tokio::test]
    async fn a_syn_stream_with_a_bad_id_is_refused_without_ending_the_session() {
        let (session, mut raw) = raw(Role::Server);
        let mut enc = frame::Encoder::new();
        let mut out = Vec::new();
        // Even ids belong to the server: a client may not open stream 2.
        enc.syn_stream(&mut out, 2, 0, &Headers::new())
            .expect("encode");
        enc.syn_stream(&mut out, 1, 0, &headers(&[("streamtype", "data")]))
            .expect("encode");
        raw.write_all(&out).await.expect("write");
        let s = within(session.accept()).await.expect("stream 1 accepted");
        assert_eq!(s.id(), 1);
        let mut rst = [0u8; 16];
        within(raw.read_exact(&mut rst)).await.expect("RST");
        let mut expected = control(frame::TYPE_RST_STREAM, 0, &2u32.to_be_bytes());
        expected.extend_from_slice(&RST_PROTOCOL_ERROR.to_be_bytes());
        expected[7] = 8;
        assert_eq!(rst.to_vec(), expected);
        assert!(!session.is_closed());
    }

    #[tokio::test]
    async fn a_headers_frame_with_fin_half_closes() {
        let (session, mut raw) = raw(Role::Server);
        let mut enc = frame::Encoder::new();
        let mut out = Vec::new();
        enc.syn_stream(&mut out, 1, 0, &Headers::new())
            .expect("encode");
        frame::data(&mut out, 1, 0, b"body");
        enc.headers(
            &mut out,
            1,
            frame::FLAG_FIN,
            &headers(&[("x-trailer", "1")]),
        )
        .expect("encode");
        raw.write_all(&out).await.expect("write");
        let mut s = within(session.accept()).await.expect("stream");
        let mut got = Vec::new();
        within(s.read_to_end(&mut got))
            .await
            .expect("EOF after HEADERS+FIN");
        assert_eq!(got, b"body");
        assert!(!session.is_closed());
    }

    #[tokio::test]
    async fn the_transport_ending_ends_the_streams() {
        let (session, mut raw) = raw(Role::Server);
        let mut enc = frame::Encoder::new();
        let mut out = Vec::new();
        enc.syn_stream(&mut out, 1, 0, &Headers::new())
            .expect("encode");
        frame::data(&mut out, 1, 0, b"partial");
        raw.write_all(&out).await.expect("write");
        let mut s = within(session.accept()).await.expect("stream");
        drop(raw);
        let mut got = Vec::new();
        within(s.read_to_end(&mut got)).await.expect("EOF");
        assert_eq!(got, b"partial");
        within(session.closed()).await;
        assert!(s.write_all(b"x").await.is_err());
    }
}
