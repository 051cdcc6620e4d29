//! The API server's Prometheus metrics at `/metrics` (authenticated like every path but
//! the health checks), under upstream's names: `apiserver_request_total`,
//! `apiserver_request_duration_seconds`, `apiserver_current_inflight_requests` and
//! `apiserver_storage_objects`, plus what other components in the process register
//! ([`ApiMetrics::register`]: the scheduler under `rkube server`).
//!
//! The request path touches atomics only. A request series (verb, group, version,
//! resource, subresource, scope) owns a slot of a fixed open-addressing table, found by
//! its labels' hash and claimed with one compare-and-swap the first time the series is
//! seen; its per-code counters and latency buckets are atomics in that slot. Once the
//! table is full, new series are not recorded (their labels come from request paths, so
//! the table's size also bounds what a client can make us remember).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use http::{HeaderMap, Method, StatusCode, Uri};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::state::ApiState;

/// The content type of the exposition (OpenMetrics text, which Prometheus reads like its
/// own format).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Series slots (a power of two). Upstream's series count is about verbs × resources ×
/// a few subresources; a few thousand cover it.
const SLOTS: usize = 8192;
/// Distinct status codes counted per series.
const CODES: usize = 16;
/// Upstream's `apiserver_request_duration_seconds` buckets.
const BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// A request's series labels, borrowed from its path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels<'a> {
    pub verb: &'static str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub scope: &'static str,
}

/// The same, owned by a series slot.
#[derive(Debug)]
struct OwnedLabels {
    verb: &'static str,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: &'static str,
}

impl OwnedLabels {
    fn pairs(&self) -> [(&'static str, &str); 7] {
        [
            ("component", "apiserver"),
            ("group", &self.group),
            ("resource", &self.resource),
            ("scope", self.scope),
            ("subresource", &self.subresource),
            ("verb", self.verb),
            ("version", &self.version),
        ]
    }
}

fn static_method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The label a non-resource path is counted under (upstream instruments each such handler
/// with its path); anything else is `other`, so paths never make series of their own.
fn non_resource(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "/apis",
        "/api",
        "/version",
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/openapi/v2",
        "/openapi/v3",
        "/cacerts",
    ];
    KNOWN
        .iter()
        .find(|k| {
            path.strip_prefix(**k)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .copied()
        .unwrap_or("other")
}

/// Upstream's request labels (`RequestInfo` plus `CleanVerb` and `CleanScope`): verbs as
/// `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `APPLY`, `DELETE`, `DELETECOLLECTION`,
/// `CONNECT`; scope `resource` for one object or a create, `namespace`, `cluster`.
pub fn labels<'a>(
    method: &Method,
    path: &'a str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Labels<'a> {
    let plain = Labels {
        verb: static_method(method),
        subresource: non_resource(path),
        ..Labels::default()
    };
    let mut segs = path.trim_matches('/').split('/');
    let (group, version) = match segs.next() {
        Some("api") => ("", segs.next()),
        Some("apis") => match segs.next() {
            Some(g) => (g, segs.next()),
            None => return plain,
        },
        _ => return plain,
    };
    let Some(version) = version.filter(|v| !v.is_empty()) else {
        return plain;
    };
    let mut rest: Vec<&str> = segs.collect();
    if rest.first().is_none_or(|r| r.is_empty()) {
        return plain;
    }
    let mut watch = false;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest.remove(0);
    }
    let mut namespaced = false;
    if rest.len() > 2 && rest[0] == "namespaces" && !matches!(rest[2], "status" | "finalize") {
        namespaced = true;
        rest.drain(..2);
    }
    let Some(resource) = rest.first().copied().filter(|r| !r.is_empty()) else {
        return plain;
    };
    let named = rest.len() > 1;
    let subresource = rest.get(2).copied().unwrap_or("");
    let watch_param = query.is_some_and(|q| {
        q.split('&')
            .any(|p| matches!(p, "watch=1" | "watch=true" | "watch=True" | "watch=t"))
    });
    let verb = match *method {
        _ if matches!(subresource, "exec" | "attach" | "portforward" | "proxy") => "CONNECT",
        Method::GET | Method::HEAD if watch || watch_param => "WATCH",
        Method::GET | Method::HEAD if named => "GET",
        Method::GET | Method::HEAD => "LIST",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH
            if headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/apply-patch")) =>
        {
            "APPLY"
        }
        Method::PATCH => "PATCH",
        Method::DELETE if named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        _ => static_method(method),
    };
    let scope = if named || verb == "POST" {
        "resource"
    } else if namespaced {
        "namespace"
    } else {
        "cluster"
    };
    Labels {
        verb,
        group,
        version,
        resource,
        subresource,
        scope,
    }
}

/// Latency of one series and dry-run value.
#[derive(Debug)]
struct Latency {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl Latency {
    fn observe(&self, secs: f64, nanos: u64) {
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Series {
    labels: OwnedLabels,
    /// Status codes (0: free) and their counts, claimed like the series table.
    codes: [(AtomicU16, AtomicU64); CODES],
    /// Without and with `dryRun=All`.
    latency: [Latency; 2],
}

impl Series {
    fn new(l: &Labels<'_>) -> Series {
        Series {
            labels: OwnedLabels {
                verb: l.verb,
                group: l.group.to_string(),
                version: l.version.to_string(),
                resource: l.resource.to_string(),
                subresource: l.subresource.to_string(),
                scope: l.scope,
            },
            codes: std::array::from_fn(|_| (AtomicU16::new(0), AtomicU64::new(0))),
            latency: [Latency::default(), Latency::default()],
        }
    }

    fn count(&self, code: u16) {
        for (c, n) in &self.codes {
            let seen = c.load(Ordering::Acquire);
            if seen == code
                || (seen == 0
                    && match c.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => true,
                        Err(other) => other == code,
                    })
            {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// The series' label hash; 0 while free.
    key: AtomicU64,
    series: OnceLock<Box<Series>>,
}

/// The request series and in-flight counts.
#[derive(Debug)]
struct Requests {
    slots: Box<[Slot]>,
    /// `readOnly` and `mutating` requests being served.
    inflight: [AtomicI64; 2],
}

impl Requests {
    fn new() -> Requests {
        Requests {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            inflight: [AtomicI64::new(0), AtomicI64::new(0)],
        }
    }

    /// The series' slot, claimed if new; `None` when the table is full.
    fn slot(&self, l: &Labels<'_>) -> Option<usize> {
        let mut h = std::hash::DefaultHasher::new();
        l.hash(&mut h);
        let key = h.finish().max(1);
        let mask = self.slots.len() - 1;
        let mut i = (key as usize) & mask;
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            let seen = slot.key.load(Ordering::Acquire);
            let ours = seen == key
                || (seen == 0
                    && match slot
                        .key
                        .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                    {
                        Ok(_) => true,
                        Err(other) => other == key,
                    });
            if ours {
                // Whoever gets here first (the claimer or a racing twin) fills it.
                slot.series.get_or_init(|| Box::new(Series::new(l)));
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    fn series(&self) -> impl Iterator<Item = &Series> {
        self.slots
            .iter()
            .filter_map(|s| s.series.get().map(|b| &**b))
    }
}

impl Collector for Requests {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            None,
            MetricType::Counter,
        )?;
        for s in self.series() {
            for (code, n) in &s.codes {
                let code = code.load(Ordering::Acquire);
                if code == 0 {
                    continue;
                }
                let code = code.to_string();
                let mut labels: Vec<(&str, &str)> = s.labels.pairs().to_vec();
                labels.insert(0, ("code", &code));
                ConstCounter::new(n.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            None,
            MetricType::Histogram,
        )?;
        for s in self.series() {
            for (dry_run, lat) in ["", "All"].iter().zip(&s.latency) {
                let counts: Vec<u64> = lat
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                let count: u64 = counts.iter().sum();
                if count == 0 {
                    continue;
                }
                let buckets: Vec<(f64, u64)> = BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(counts)
                    .collect();
                let mut labels: Vec<(&str, &str)> = s.labels.pairs().to_vec();
                labels.insert(1, ("dry_run", dry_run));
                let sum = lat.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
                family
                    .encode_family(&labels)?
                    .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            None,
            MetricType::Gauge,
        )?;
        for (kind, n) in ["readOnly", "mutating"].iter().zip(&self.inflight) {
            ConstGauge::new(n.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("request_kind", *kind)])?)?;
        }
        Ok(())
    }
}

/// The API server's metrics registry.
#[derive(Debug)]
pub struct ApiMetrics {
    requests: Arc<Requests>,
    /// Collectors of the whole process; locked only to scrape and register.
    registry: Mutex<Registry>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let requests = Arc::new(Requests::new());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(requests.clone()));
        ApiMetrics {
            requests,
            registry: Mutex::new(registry),
        }
    }
}

/// One request being served; [`Request::finish`] records it, dropping it unfinished (the
/// client went away) only ends its in-flight count.
#[must_use]
pub struct Request {
    requests: Arc<Requests>,
    slot: Option<usize>,
    dry_run: bool,
    /// Which in-flight gauge counts it (`None`: long-running, counted by neither).
    inflight: Option<usize>,
    started: Instant,
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(i) = self.inflight {
            self.requests.inflight[i].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Request {
    pub fn finish(self, status: StatusCode) {
        let Some(slot) = self.slot else {
            return;
        };
        if let Some(s) = self.requests.slots[slot].series.get() {
            s.count(status.as_u16());
            let elapsed = self.started.elapsed();
            s.latency[usize::from(self.dry_run)].observe(
                elapsed.as_secs_f64(),
                u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            );
        }
    }
}

impl ApiMetrics {
    /// Starts counting a request. Only authenticated requests get a series (an anonymous
    /// client cannot fill the table); watches and connections are long-running and count
    /// toward no in-flight gauge, as upstream.
    pub fn begin(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        authenticated: bool,
    ) -> Request {
        let l = labels(method, uri.path(), uri.query(), headers);
        let long_running = matches!(l.verb, "WATCH" | "CONNECT");
        let inflight =
            (!long_running).then(|| usize::from(!matches!(*method, Method::GET | Method::HEAD)));
        if let Some(i) = inflight {
            self.requests.inflight[i].fetch_add(1, Ordering::Relaxed);
        }
        let dry_run = uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "dryRun=All"));
        Request {
            requests: self.requests.clone(),
            slot: if authenticated {
                self.requests.slot(&l)
            } else {
                None
            },
            dry_run,
            inflight,
            started: Instant::now(),
        }
    }

    /// Adds a component's collector to what `/metrics` shows.
    pub fn register(&self, collector: Box<dyn Collector>) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register_collector(collector);
    }

    /// The exposition: every registered collector, then `apiserver_storage_objects` counted
    /// from the watch cache now.
    pub fn render(&self, state: &ApiState) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        {
            let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            let _ = encode_registry(&mut out, &registry);
        }
        let objects = Family::<[(&'static str, String); 1], Gauge>::default();
        let registry = state.registry();
        let mut seen = std::collections::HashSet::new();
        for rt in registry.all() {
            let prefix = rt.storage_prefix();
            if !seen.insert(prefix.clone()) {
                continue;
            }
            let n = state.cache.get(&prefix).map_or(0, |c| c.len());
            let resource = if rt.group.is_empty() {
                rt.plural.clone()
            } else {
                format!("{}.{}", rt.plural, rt.group)
            };
            objects
                .get_or_create(&[("resource", resource)])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut storage = Registry::default();
        storage.register(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            objects,
        );
        let _ = encode_registry(&mut out, &storage);
        let _ = encode_eof(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(method: Method, path_and_query: &str) -> Labels<'static> {
        let (path, query) = path_and_query
            .split_once('?')
            .map_or((path_and_query, None), |(p, q)| (p, Some(q)));
        let path: &'static str = Box::leak(path.to_string().into_boxed_str());
        labels(&method, path, query, &HeaderMap::new())
    }

    #[test]
    fn requests_are_labelled_as_upstreams() {
        let get = l(Method::GET, "/api/v1/namespaces/default/pods/web");
        assert_eq!(
            (get.verb, get.group, get.version, get.resource, get.scope),
            ("GET", "", "v1", "pods", "resource")
        );
        let list = l(Method::GET, "/apis/apps/v1/namespaces/ns/deployments");
        assert_eq!(
            (list.verb, list.group, list.scope),
            ("LIST", "apps", "namespace")
        );
        assert_eq!(l(Method::GET, "/api/v1/pods").scope, "cluster");
        assert_eq!(l(Method::GET, "/api/v1/pods?watch=true").verb, "WATCH");
        assert_eq!(
            l(Method::GET, "/api/v1/watch/namespaces/a/pods").verb,
            "WATCH"
        );
        let create = l(Method::POST, "/api/v1/namespaces/default/pods");
        assert_eq!((create.verb, create.scope), ("POST", "resource"));
        let status = l(
            Method::PUT,
            "/apis/apps/v1/namespaces/a/deployments/d/status",
        );
        assert_eq!((status.verb, status.subresource), ("PUT", "status"));
        assert_eq!(
            l(Method::DELETE, "/api/v1/namespaces/a/pods").verb,
            "DELETECOLLECTION"
        );
        assert_eq!(
            l(Method::POST, "/api/v1/namespaces/a/pods/p/exec").verb,
            "CONNECT"
        );
        // The namespace object itself.
        let ns = l(Method::PUT, "/api/v1/namespaces/a/finalize");
        assert_eq!(
            (ns.resource, ns.subresource, ns.scope),
            ("namespaces", "finalize", "resource")
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            "application/apply-patch+yaml".parse().expect("header"),
        );
        assert_eq!(
            labels(
                &Method::PATCH,
                "/api/v1/namespaces/a/pods/p",
                None,
                &headers
            )
            .verb,
            "APPLY"
        );
        let discovery = l(Method::GET, "/apis/apps/v1");
        assert_eq!((discovery.resource, discovery.subresource), ("", "/apis"));
        assert_eq!(l(Method::GET, "/healthz/ping").subresource, "/healthz");
        assert_eq!(l(Method::GET, "/some/thing").subresource, "other");
    }

    #[test]
    fn the_exposition_counts_requests_by_code_with_latency() {
        let m = ApiMetrics::default();
        let uri: Uri = "/api/v1/namespaces/default/pods".parse().expect("uri");
        let headers = HeaderMap::new();
        for code in [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::CONFLICT,
        ] {
            m.begin(&Method::POST, &uri, &headers, true).finish(code);
        }
        m.begin(&Method::POST, &uri, &headers, false)
            .finish(StatusCode::UNAUTHORIZED);
        let open = m.begin(&Method::GET, &uri, &headers, true);
        let mut text = String::new();
        let registry = m.registry.lock().expect("lock");
        encode_registry(&mut text, &registry).expect("encode");
        drop(registry);
        let series = "component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"";
        assert!(
            text.contains(&format!(
                "apiserver_request_total{{code=\"201\",{series}}} 2\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "apiserver_request_total{{code=\"409\",{series}}} 1\n"
            )),
            "{text}"
        );
        assert!(!text.contains("code=\"401\""), "{text}");
        assert!(
            text.contains("apiserver_request_duration_seconds_count{component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("apiserver_current_inflight_requests{request_kind=\"readOnly\"} 1\n"),
            "{text}"
        );
        drop(open);
        assert_eq!(m.requests.inflight[0].load(Ordering::Relaxed), 0);
        assert_eq!(m.requests.inflight[1].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_table_drops_new_series_only() {
        let r = Requests {
            slots: (0..4).map(|_| Slot::default()).collect(),
            inflight: [AtomicI64::new(0), AtomicI64::new(0)],
        };
        let names = ["a", "b", "c", "d", "e"];
        let slots: Vec<Option<usize>> = names
            .iter()
            .map(|n| {
                r.slot(&Labels {
                    resource: n,
                    ..Labels::default()
                })
            })
            .collect();
        assert!(slots[..4].iter().all(Option::is_some));
        assert_eq!(slots[4], None);
        let again = r.slot(&Labels {
            resource: "b",
            ..Labels::default()
        });
        assert_eq!(again, slots[1]);
    }
}
