//! WATCH: newline-delimited `WatchEvent`s over a streamed response, served from the watch
//! cache: synthetic ADDED events for the current state (no resourceVersion, `0`, or
//! `sendInitialEvents`), or history replayed after a resourceVersion, then live events;
//! BOOKMARKs when asked for; an ERROR event with a 410 when the resourceVersion is older
//! than the cache's history.

use std::sync::Arc;
use std::time::Duration;

use apimachinery::status::ApiError;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use rand::Rng;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::Ctx;
use super::filter::Filter;
use crate::cache::{CacheEvent, EventType, TooOld};
use crate::codec::Body;
use crate::state::ApiState;

/// How long a watch from a future resourceVersion waits for the cache (upstream: 3 s,
/// then "Too large resource version").
const FUTURE_WAIT: Duration = Duration::from_secs(3);

pub async fn watch(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let mut filter = Filter::from_ctx(ctx)?;
    if let Some(name) = &ctx.info.name {
        filter.pin_name(name);
    }
    let rv = ctx.query.value("resourceVersion");
    let send_initial = ctx.query.get("sendInitialEvents").map(|v| v == "true");
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    if send_initial.is_some() {
        if ctx.query.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[apimachinery::field::FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        if send_initial == Some(true) && !bookmarks {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[apimachinery::field::FieldError::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                )],
            ));
        }
    }
    let requested = match rv {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    let cache = &ctx.state.cache;
    // Where the watch starts: after a revision, or (None) with the current state.
    let after = match (send_initial, requested) {
        (Some(true), _) | (None, None) => {
            if rv.is_none() || send_initial == Some(true) {
                // "Most recent" state: the cache must have every acknowledged write.
                super::list::cache_is_fresh(ctx).await?;
            }
            if let Some(n) = requested {
                cache.wait_for(n, FUTURE_WAIT).await;
            }
            None
        }
        (_, Some(n)) => {
            if !cache.wait_for(n, FUTURE_WAIT).await {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {n}, current: {}",
                    cache.revision()
                )));
            }
            Some(n)
        }
        (Some(false), None) => Some(cache.revision()),
    };
    let timeout = match ctx
        .query
        .value("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
    {
        Some(t) => Duration::from_secs(t),
        None => {
            let min = ctx.state.settings.min_request_timeout.as_secs().max(1);
            Duration::from_secs(rand::rng().random_range(min..min * 2))
        }
    };
    let current = cache.revision();
    let start = ctx.state.cache_of(&ctx.rt).watch(after, current);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let table = ctx.table()?;
    let watcher = Watcher {
        table: table.map(|t| TableWatch {
            request: t,
            ctx_rt: ctx.rt.clone(),
            headers_sent: std::sync::atomic::AtomicBool::new(false),
        }),
        state: ctx.state.clone(),
        filter,
        kind: ctx.rt.kind.clone(),
        api_version: ctx.rt.api_version(),
        bookmarks,
        initial_end: send_initial == Some(true),
        timeout,
        tx,
    };
    match start {
        Ok(start) => {
            tokio::spawn(watcher.run(start.initial, start.live, start.start_rev));
        }
        Err(TooOld { requested, oldest }) => {
            let status =
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"));
            let line = event_line(
                "ERROR",
                &serde_json::to_vec(&status.to_json()).unwrap_or_default(),
            );
            tokio::spawn(async move {
                let _ = watcher.tx.send(line).await;
            });
        }
    }
    let frames = ReceiverStream::new(rx).map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
    let body = BodyExt::boxed(StreamBody::new(frames));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// A watch whose events carry one-row Tables (kubectl get -w).
struct TableWatch {
    request: super::TableRequest,
    ctx_rt: Arc<apimachinery::registry::ResourceType>,
    /// Column definitions go with the first event only, as upstream sends them; the
    /// watcher is one task, so a relaxed flag suffices.
    headers_sent: std::sync::atomic::AtomicBool,
}

struct Watcher {
    table: Option<TableWatch>,
    state: Arc<ApiState>,
    filter: Filter,
    kind: String,
    api_version: String,
    bookmarks: bool,
    initial_end: bool,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
}

impl Watcher {
    async fn run(
        self,
        initial: Vec<Arc<CacheEvent>>,
        mut live: broadcast::Receiver<Arc<CacheEvent>>,
        start_rev: i64,
    ) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut last = 0i64;
        for ev in &initial {
            if !self.send_event(ev).await {
                return;
            }
            last = last.max(ev.rev);
        }
        last = last.max(start_rev);
        if self.initial_end && !self.bookmark(last.max(start_rev), true).await {
            return;
        }
        let period = self.state.settings.bookmark_interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        // One bookmark shortly before the timeout, so a client resumes from a fresh revision.
        let pre_deadline = deadline
            .checked_sub(Duration::from_secs(1))
            .filter(|_| self.timeout > Duration::from_secs(2));
        let mut pre_sent = pre_deadline.is_none();
        loop {
            let pre = async {
                match pre_deadline {
                    Some(t) if !pre_sent => tokio::time::sleep_until(t).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.bookmarks => {
                    match self.flush_then_bookmark(&mut live, &mut last).await {
                        Some(true) => {}
                        _ => return,
                    }
                }
                _ = pre, if self.bookmarks => {
                    pre_sent = true;
                    match self.flush_then_bookmark(&mut live, &mut last).await {
                        Some(true) => {}
                        _ => return,
                    }
                }
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        if ev.rev > last {
                            if !self.send_event(&ev).await {
                                return;
                            }
                            last = ev.rev;
                        }
                    }
                    // Too slow a client: end the watch; it resumes from its last revision.
                    Err(_) => return,
                }
            }
        }
    }

    /// Sends every event already queued, then a bookmark at the cache's revision (which
    /// covers them all). `None` when the watch must end.
    async fn flush_then_bookmark(
        &self,
        live: &mut broadcast::Receiver<Arc<CacheEvent>>,
        last: &mut i64,
    ) -> Option<bool> {
        let rev = self.state.cache.revision();
        loop {
            match live.try_recv() {
                Ok(ev) => {
                    if ev.rev > *last {
                        if !self.send_event(&ev).await {
                            return None;
                        }
                        *last = ev.rev;
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(_) => return None,
            }
        }
        *last = (*last).max(rev);
        Some(self.bookmark(*last, false).await)
    }

    async fn bookmark(&self, rev: i64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rev.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": meta});
        let line = event_line("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default());
        self.tx.send(line).await.is_ok()
    }

    /// Sends the event as this watcher sees it through its filter: an object that starts
    /// or stops matching appears as ADDED or DELETED. False when the client is gone.
    async fn send_event(&self, ev: &CacheEvent) -> bool {
        let now = self.filter.matches(&ev.obj.value);
        let before = ev.prev.as_ref().map(|p| self.filter.matches(&p.value));
        let kind = match (ev.kind, now, before) {
            (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Deleted, false, _) => return true,
            (_, true, Some(true)) => EventType::Modified,
            (_, true, _) => EventType::Added,
            (_, false, Some(true)) => EventType::Deleted,
            (_, false, _) => return true,
        };
        let kind = if ev.kind == EventType::Added && kind == EventType::Modified {
            EventType::Added
        } else {
            kind
        };
        let line = match &self.table {
            Some(t) => {
                let headers = !t
                    .headers_sent
                    .swap(true, std::sync::atomic::Ordering::Relaxed);
                let rv = ev.obj.rev.to_string();
                let mut options = crate::table::Options::new(&rv);
                options.include = t.request.include;
                options.version = t.request.version;
                options.headers = headers;
                options.printer_columns = t.ctx_rt.printer_columns.as_ref();
                let rendered = crate::table::render(&t.ctx_rt, &[&ev.obj.value], &options);
                event_line(
                    kind.as_str(),
                    &serde_json::to_vec(&rendered).unwrap_or_default(),
                )
            }
            None => event_line(kind.as_str(), &ev.obj.bytes),
        };
        self.tx.send(line).await.is_ok()
    }
}

/// `{"type":"…","object":…}\n`, the object's bytes spliced in as they are.
fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(object.len() + kind.len() + 24);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
    out.freeze()
}
