//! Container logs: reading the CRI log files the runtime writes, for `kubectl logs`.
//!
//! A CRI log file holds one record a line: `<RFC3339Nano time> <stdout|stderr> <tag> <text>`,
//! where the tag is `F` (the text ends a line) or `P` (a partial line, continued by the
//! next record). [`open`] turns such a file into the byte stream `kubectl logs` shows:
//! texts joined back into lines, optionally prefixed by their time, limited to the last
//! lines or to those since a time, capped in bytes, and followed while the container runs
//! (upstream's `kuberuntime/logs.ReadLogs`).
//!
//! Where the file is comes from the runtime through [`LogSource`].

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

/// How often a follower looks for new lines at the end of the file. Upstream waits on
/// inotify; polling keeps this free of a watcher per follower at a small delay.
const POLL: Duration = Duration::from_millis(200);
/// How often a follower at the end of the file asks whether the container still runs.
const RUNNING_CHECK: Duration = Duration::from_secs(1);
/// Output is sent in chunks of about this size while more lines are at hand.
const CHUNK: usize = 32 * 1024;
/// Block size when reading backwards for `tailLines`.
const TAIL_BLOCK: u64 = 32 * 1024;

/// What part of a log to send and how (the kubelet's reading of `PodLogOptions`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    /// Keep sending new lines until the container stops or the reader goes away.
    pub follow: bool,
    /// The container's previous instance (only used to pick the file).
    pub previous: bool,
    /// Only the last N lines (`None`: all).
    pub tail_lines: Option<i64>,
    /// Only lines logged at or after this time.
    pub since: Option<Timestamp>,
    /// Prefix each line with its time (RFC 3339, nanoseconds) and a space.
    pub timestamps: bool,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<i64>,
}

/// Why a log cannot be read, with the HTTP status class the agent answers with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The pod or container is unknown here (404).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be served as asked: the container waits to start, has no
    /// previous instance… (400). The message is upstream's.
    #[error("{0}")]
    BadRequest(String),
    /// The log file could not be opened or read.
    #[error("failed to open log file {path:?}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LogError {
    /// The text the agent answers with (the cause included).
    pub fn message(&self) -> String {
        match self {
            LogError::NotFound(m) | LogError::BadRequest(m) => m.clone(),
            LogError::Open { source, .. } => format!("{self}: {source}"),
        }
    }

    /// The HTTP status code the agent's server answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            LogError::NotFound(_) => 404,
            LogError::BadRequest(_) | LogError::Open { .. } => 400,
        }
    }
}

/// Where a container's logs are, answered by the runtime.
#[async_trait::async_trait]
pub trait LogSource: Send + Sync + 'static {
    /// The log file of container `container` of pod `namespace/pod`: its current
    /// instance, or the one before when `previous`. Fails with upstream's message when the
    /// pod or container is unknown ([`LogError::NotFound`]) or has no such instance yet or
    /// any more ([`LogError::BadRequest`]).
    async fn log_file(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<PathBuf, LogError>;

    /// Whether the instance logging to `path` still runs; a follower stops at the end of
    /// the file once it does not.
    async fn still_running(&self, namespace: &str, pod: &str, container: &str, path: &Path)
    -> bool;
}

/// The bytes of a log as they are read.
pub type LogStream = BoxStream<'static, io::Result<Bytes>>;

/// Asked by a follower at the end of the file: does the writer still run?
pub type RunningCheck = Box<dyn FnMut() -> BoxFuture<'static, bool> + Send>;

/// The log of one container, asked of `source` and read from its file with `opts`.
pub async fn container_log(
    source: Arc<dyn LogSource>,
    namespace: &str,
    pod: &str,
    container: &str,
    opts: LogOptions,
) -> Result<LogStream, LogError> {
    let path = source
        .log_file(namespace, pod, container, opts.previous)
        .await?;
    let (ns, pod, container, file) = (
        namespace.to_string(),
        pod.to_string(),
        container.to_string(),
        path.clone(),
    );
    let check: RunningCheck = Box::new(move || {
        let (source, ns, pod, container, file) = (
            source.clone(),
            ns.clone(),
            pod.clone(),
            container.clone(),
            file.clone(),
        );
        Box::pin(async move { source.still_running(&ns, &pod, &container, &file).await })
    });
    open(path, opts, check).await
}

/// Opens the CRI log file at `path` and streams it as `opts` asks. The file is opened
/// (and the tail found) before this returns, so a missing file is an error here rather
/// than in the stream. The stream ends at the end of the file, or when following, once
/// `still_running` says no and the end is reached; dropping it stops the reading.
pub async fn open(
    path: PathBuf,
    opts: LogOptions,
    still_running: RunningCheck,
) -> Result<LogStream, LogError> {
    let open_err = |source| LogError::Open {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).await.map_err(open_err)?;
    let start = match opts.tail_lines {
        Some(n) if n >= 0 => tail_start(&mut file, n.unsigned_abs())
            .await
            .map_err(open_err)?,
        _ => 0,
    };
    file.seek(SeekFrom::Start(start)).await.map_err(open_err)?;
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::spawn(async move {
        let mut follower = Follower {
            path,
            reader: BufReader::new(file),
            opts,
            still_running,
            tx,
        };
        if let Err(e) = follower.run().await {
            let _ = follower.tx.send(Err(e)).await;
        }
    });
    Ok(Box::pin(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
    })))
}

/// One parsed CRI record.
struct Record<'a> {
    /// The time as written (kept to print it with its own offset).
    time_text: &'a str,
    time: Timestamp,
    partial: bool,
    /// The text, with its newline unless partial.
    text: &'a [u8],
}

/// Parses one raw line (with its `\n`, if any). `None` for a malformed line, which is
/// skipped as upstream does.
fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time_text = std::str::from_utf8(fields.next()?).ok()?;
    let time: Timestamp = time_text.parse().ok()?;
    match fields.next()? {
        b"stdout" | b"stderr" => {}
        _ => return None,
    }
    let tags = fields.next()?;
    // Tags are `:`-separated; the first says partial or full.
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    let mut text = fields.next().unwrap_or(b"");
    if partial && text.last() == Some(&b'\n') {
        text = &text[..text.len() - 1];
    }
    Some(Record {
        time_text,
        time,
        partial,
        text,
    })
}

/// `2006-01-02T15:04:05.000000000Z07:00` (Go's fixed-width RFC3339Nano the kubelet
/// prints), keeping the offset the runtime wrote.
fn format_time(text: &str, time: Timestamp) -> String {
    let (offset, suffix) = match text.len().checked_sub(6).and_then(|i| text.get(i..)) {
        Some(s) if !text.ends_with(['Z', 'z']) => (parse_offset(s).unwrap_or(Offset::UTC), s),
        _ => (Offset::UTC, "Z"),
    };
    let suffix = if offset == Offset::UTC && suffix != "Z" {
        // `+00:00` prints as Go prints a UTC time.
        "Z"
    } else {
        suffix
    };
    let local = time.to_zoned(TimeZone::fixed(offset));
    format!("{}{suffix}", local.strftime("%Y-%m-%dT%H:%M:%S.%9f"))
}

/// `+HH:MM` / `-HH:MM`.
fn parse_offset(s: &str) -> Option<Offset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s.get(1..)?.split_once(':')?;
    let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
    Offset::from_seconds(sign * secs).ok()
}

/// Turns records into output: joins partial records, filters by time, prefixes times,
/// counts bytes.
struct Writer {
    out: Vec<u8>,
    timestamps: bool,
    since: Option<Timestamp>,
    /// Bytes still allowed (`None`: no limit).
    left: Option<u64>,
    /// Inside a line begun by a partial record: whether that line is being shown.
    continuing: Option<bool>,
}

impl Writer {
    fn new(opts: &LogOptions) -> Writer {
        Writer {
            out: Vec::new(),
            timestamps: opts.timestamps,
            since: opts.since,
            left: opts.limit_bytes.map(|n| n.max(0).unsigned_abs()),
            continuing: None,
        }
    }

    fn done(&self) -> bool {
        self.left == Some(0)
    }

    /// Adds one raw line.
    fn line(&mut self, raw: &[u8]) {
        let Some(rec) = parse(raw) else {
            tracing::debug!(line = %String::from_utf8_lossy(raw), "skipping a malformed log line");
            return;
        };
        let show = match self.continuing {
            Some(show) => show,
            None => {
                let show = self.since.is_none_or(|since| rec.time >= since);
                if show && self.timestamps {
                    let prefix = format_time(rec.time_text, rec.time);
                    self.push(prefix.as_bytes());
                    self.push(b" ");
                }
                show
            }
        };
        if show {
            self.push(rec.text);
        }
        self.continuing = rec.partial.then_some(show);
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = match self.left {
            Some(left) => {
                let n = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                self.left = Some(left - n as u64);
                n
            }
            None => bytes.len(),
        };
        self.out.extend_from_slice(&bytes[..n]);
    }

    fn take(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| Bytes::from(std::mem::take(&mut self.out)))
    }
}

/// The reading task behind a [`LogStream`].
struct Follower {
    path: PathBuf,
    reader: BufReader<File>,
    opts: LogOptions,
    still_running: RunningCheck,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

/// Sends `bytes`; false once the reader is gone.
async fn send(tx: &mpsc::Sender<io::Result<Bytes>>, bytes: Option<Bytes>) -> bool {
    match bytes {
        Some(b) => tx.send(Ok(b)).await.is_ok(),
        None => !tx.is_closed(),
    }
}

impl Follower {
    async fn run(&mut self) -> io::Result<()> {
        let mut w = Writer::new(&self.opts);
        let mut line = Vec::new();
        // Set once the writer was seen stopped: one more read to the end, then stop.
        let mut last_read = false;
        let mut checked_at: Option<tokio::time::Instant> = None;
        loop {
            if w.done() {
                send(&self.tx, w.take()).await;
                return Ok(());
            }
            self.reader.read_until(b'\n', &mut line).await?;
            if line.ends_with(b"\n") {
                w.line(&line);
                line.clear();
                if w.out.len() >= CHUNK && !send(&self.tx, w.take()).await {
                    return Ok(());
                }
                continue;
            }
            // End of file, perhaps inside a line still being written.
            if !send(&self.tx, w.take()).await {
                return Ok(());
            }
            if !self.opts.follow || last_read {
                // A last line without its newline is shown as it is (upstream does too).
                if !line.is_empty() {
                    w.line(&line);
                    send(&self.tx, w.take()).await;
                }
                return Ok(());
            }
            if rotated(self.reader.get_ref(), &self.path).await {
                if !line.is_empty() {
                    w.line(&line);
                    line.clear();
                }
                match File::open(&self.path).await {
                    Ok(f) => {
                        tracing::debug!(path = %self.path.display(), "log file rotated, reopening");
                        self.reader = BufReader::new(f);
                        continue;
                    }
                    // Rotated away and not (yet) recreated: keep reading the old one.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            let due = checked_at.is_none_or(|at| at.elapsed() >= RUNNING_CHECK);
            if due {
                checked_at = Some(tokio::time::Instant::now());
                if !(self.still_running)().await {
                    // Whatever it wrote before stopping is read once more, then done.
                    last_read = true;
                    continue;
                }
            }
            tokio::select! {
                _ = self.tx.closed() => return Ok(()),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Whether `path` now names another file than `file` (log rotation renames the file and
/// the runtime reopens a new one under the old name).
async fn rotated(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(current) = file.metadata().await else {
        return false;
    };
    match tokio::fs::metadata(path).await {
        Ok(m) => m.ino() != current.ino() || m.dev() != current.dev(),
        Err(_) => false,
    }
}

/// The offset where the last `n` lines of the log begin. Reads backwards in blocks, so a
/// large file costs about the size of those lines. A line written as several partial
/// records counts once; a file ending inside a line counts that line as its last.
async fn tail_start(file: &mut File, n: u64) -> io::Result<u64> {
    let len = file.metadata().await?.len();
    if n == 0 {
        return Ok(len);
    }
    // `buf` holds the file from `pos` up to `end`, where the record looked at next ends
    // (its newline included).
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = len;
    let mut end = len;
    // Whole lines between `end` and the end of the file.
    let mut lines = 0u64;
    let mut last_record = true;
    loop {
        let rel_end = (end - pos) as usize;
        // Its own newline (or, for an unfinished last record, its last byte) is no start.
        let body = &buf[..rel_end.saturating_sub(1)];
        let start = match body.iter().rposition(|b| *b == b'\n') {
            Some(i) => pos + i as u64 + 1,
            None if pos == 0 => 0,
            None => {
                let from = pos.saturating_sub(TAIL_BLOCK);
                let mut block = vec![0u8; (pos - from) as usize];
                file.seek(SeekFrom::Start(from)).await?;
                file.read_exact(&mut block).await?;
                block.extend_from_slice(&buf[..rel_end]);
                buf = block;
                pos = from;
                continue;
            }
        };
        let raw = &buf[(start - pos) as usize..rel_end];
        let ends_line = parse(raw).is_some_and(|r| !r.partial);
        if last_record && !ends_line && !raw.is_empty() {
            lines = 1;
        }
        last_record = false;
        if ends_line {
            if lines == n {
                return Ok(end);
            }
            lines += 1;
        }
        if start == 0 {
            return Ok(0);
        }
        end = start;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::StreamExt;

    use super::*;

    fn always(running: bool) -> RunningCheck {
        Box::new(move || Box::pin(async move { running }))
    }

    fn log_file(lines: &[&str]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        for l in lines {
            writeln!(f, "{l}").expect("write");
        }
        f
    }

    async fn read(path: &Path, opts: LogOptions) -> String {
        let stream = open(path.to_path_buf(), opts, always(false))
            .await
            .expect("open");
        let chunks: Vec<Bytes> = stream.map(|c| c.expect("chunk")).collect::<Vec<_>>().await;
        String::from_utf8(chunks.concat()).expect("utf-8")
    }

    const FIVE: &[&str] = &[
        "2024-05-01T10:00:01.000000001Z stdout F one",
        "2024-05-01T10:00:02Z stderr F two",
        "2024-05-01T10:00:03.5Z stdout P th",
        "2024-05-01T10:00:03.6Z stdout P re",
        "2024-05-01T10:00:03.7Z stdout F e",
        "2024-05-01T10:00:04Z stdout F four",
        "2024-05-01T10:00:05Z stdout F five",
    ];

    fn opts() -> LogOptions {
        LogOptions::default()
    }

    #[tokio::test]
    async fn partial_records_are_joined_into_lines() {
        let f = log_file(FIVE);
        assert_eq!(
            read(f.path(), opts()).await,
            "one\ntwo\nthree\nfour\nfive\n"
        );
    }

    #[tokio::test]
    async fn malformed_lines_are_skipped_and_an_unfinished_last_line_is_shown() {
        let mut f = log_file(&["garbage", "2024-05-01T10:00:01Z stdout F ok", "x y F z"]);
        write!(f, "2024-05-01T10:00:02Z stdout F unfinished").expect("write");
        assert_eq!(read(f.path(), opts()).await, "ok\nunfinished");
    }

    #[tokio::test]
    async fn tail_lines_counts_whole_lines_from_the_end() {
        let f = log_file(FIVE);
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..opts()
        };
        assert_eq!(read(f.path(), tail(2)).await, "four\nfive\n");
        assert_eq!(read(f.path(), tail(3)).await, "three\nfour\nfive\n");
        assert_eq!(read(f.path(), tail(4)).await, "two\nthree\nfour\nfive\n");
        assert_eq!(read(f.path(), tail(0)).await, "");
        assert_eq!(
            read(f.path(), tail(100)).await,
            "one\ntwo\nthree\nfour\nfive\n"
        );
    }

    #[tokio::test]
    async fn tail_counts_a_line_still_being_written_as_the_last() {
        let f = log_file(&[
            "2024-05-01T10:00:01Z stdout F a",
            "2024-05-01T10:00:02Z stdout F b",
            "2024-05-01T10:00:03Z stdout P c",
        ]);
        let tail = LogOptions {
            tail_lines: Some(1),
            ..opts()
        };
        assert_eq!(read(f.path(), tail).await, "c");
    }

    #[tokio::test]
    async fn tail_of_a_file_larger_than_a_block() {
        let lines: Vec<String> = (0..20_000)
            .map(|i| format!("2024-05-01T10:00:00Z stdout F line {i}"))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let f = log_file(&refs);
        assert!(f.as_file().metadata().expect("meta").len() > 4 * TAIL_BLOCK);
        let tail = LogOptions {
            tail_lines: Some(3),
            ..opts()
        };
        assert_eq!(
            read(f.path(), tail).await,
            "line 19997\nline 19998\nline 19999\n"
        );
        let tail = LogOptions {
            tail_lines: Some(15_000),
            ..opts()
        };
        let out = read(f.path(), tail).await;
        assert_eq!(out.lines().count(), 15_000);
        assert!(out.starts_with("line 5000\n"), "{}", &out[..20]);
    }

    #[tokio::test]
    async fn since_keeps_lines_logged_at_or_after_it() {
        let f = log_file(FIVE);
        let since = |t: &str| LogOptions {
            since: Some(t.parse().expect("time")),
            ..opts()
        };
        assert_eq!(
            read(f.path(), since("2024-05-01T10:00:04Z")).await,
            "four\nfive\n"
        );
        // A joined line goes by the time of its first record.
        assert_eq!(
            read(f.path(), since("2024-05-01T10:00:03.5Z")).await,
            "three\nfour\nfive\n"
        );
        assert_eq!(
            read(f.path(), since("2024-05-01T10:00:03.6Z")).await,
            "four\nfive\n"
        );
    }

    #[tokio::test]
    async fn timestamps_prefix_each_line_in_fixed_nanoseconds() {
        let f = log_file(&FIVE[..5]);
        let opts = LogOptions {
            timestamps: true,
            ..opts()
        };
        assert_eq!(
            read(f.path(), opts).await,
            "2024-05-01T10:00:01.000000001Z one\n\
             2024-05-01T10:00:02.000000000Z two\n\
             2024-05-01T10:00:03.500000000Z three\n"
        );
    }

    #[test]
    fn timestamps_keep_the_offset_the_runtime_wrote() {
        let raw = "2024-05-01T12:00:01.25+02:00";
        let t: Timestamp = raw.parse().expect("time");
        assert_eq!(format_time(raw, t), "2024-05-01T12:00:01.250000000+02:00");
        let raw = "2024-05-01T10:00:01+00:00";
        let t: Timestamp = raw.parse().expect("time");
        assert_eq!(format_time(raw, t), "2024-05-01T10:00:01.000000000Z");
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_output() {
        let f = log_file(FIVE);
        let limit = |n| LogOptions {
            limit_bytes: Some(n),
            ..opts()
        };
        assert_eq!(read(f.path(), limit(6)).await, "one\ntw");
        let with_times = LogOptions {
            timestamps: true,
            ..limit(35)
        };
        assert_eq!(
            read(f.path(), with_times).await,
            "2024-05-01T10:00:01.000000001Z one\n"
        );
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_before_streaming() {
        let dir = tempfile::tempdir().expect("dir");
        let err = open(dir.path().join("0.log"), opts(), always(false))
            .await
            .err()
            .expect("fails");
        assert_eq!(err.status_code(), 400);
        assert!(
            err.message().starts_with("failed to open log file"),
            "{}",
            err.message()
        );
    }

    /// Reads from `stream` until `want` has arrived, failing after a deadline.
    async fn read_until(stream: &mut LogStream, got: &mut String, want: &str) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !got.contains(want) {
                let chunk = stream.next().await.expect("stream ended").expect("chunk");
                got.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {want:?}; got {got:?}"));
    }

    #[tokio::test]
    async fn follow_sends_appended_lines_and_stops_when_the_container_stops() {
        let mut f = log_file(&FIVE[..2]);
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let check: RunningCheck = Box::new(move || {
            let flag = flag.clone();
            Box::pin(async move { flag.load(Ordering::SeqCst) })
        });
        let opts = LogOptions {
            follow: true,
            tail_lines: Some(1),
            ..opts()
        };
        let mut stream = open(f.path().to_path_buf(), opts, check)
            .await
            .expect("open");
        let mut got = String::new();
        read_until(&mut stream, &mut got, "two\n").await;
        // A line written in two steps and in two records arrives whole.
        write!(f, "2024-05-01T10:00:09Z stdout P hal").expect("write");
        f.flush().expect("flush");
        write!(f, "f\n2024-05-01T10:00:09Z stdout F way\n").expect("write");
        f.flush().expect("flush");
        read_until(&mut stream, &mut got, "halfway\n").await;
        assert_eq!(got, "two\nhalfway\n");
        // The container stops after a last line: it is sent, then the stream ends.
        writeln!(f, "2024-05-01T10:00:10Z stdout F bye").expect("write");
        f.flush().expect("flush");
        running.store(false, Ordering::SeqCst);
        let rest = tokio::time::timeout(Duration::from_secs(10), async {
            let mut rest = String::new();
            while let Some(chunk) = stream.next().await {
                rest.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("utf-8"));
            }
            rest
        })
        .await
        .expect("the stream ends once the container stopped");
        assert_eq!(rest, "bye\n");
    }

    #[tokio::test]
    async fn follow_reopens_a_rotated_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2024-05-01T10:00:01Z stdout F before\n").expect("write");
        let opts = LogOptions {
            follow: true,
            ..opts()
        };
        let mut stream = open(path.clone(), opts, always(true)).await.expect("open");
        let mut got = String::new();
        read_until(&mut stream, &mut got, "before\n").await;
        std::fs::rename(&path, dir.path().join("0.log.20240501-100002")).expect("rotate");
        std::fs::write(&path, "2024-05-01T10:00:03Z stdout F after\n").expect("write");
        read_until(&mut stream, &mut got, "after\n").await;
        assert_eq!(got, "before\nafter\n");
    }
}
