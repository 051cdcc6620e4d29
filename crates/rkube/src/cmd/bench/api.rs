//! `rkube bench api`: the same workload against a server on each datastore, in one run.
//!
//! Phases per datastore: durable creates, gets, lists of a 100-object namespace, and watch
//! fan-out (many watchers receiving a burst of creates). Latency is per request, from send
//! to the whole response read, measured by the client on the same machine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args as ClapArgs;
use http::Method;
use http_body_util::BodyExt;
use serde_json::json;

use super::client::Client;
use super::percentiles;
use super::procs::ServerProc;

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Objects created (and then read back) per datastore.
    #[arg(long, default_value_t = 20_000)]
    pub creates: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// HTTP/2 connections the requests are spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// LIST requests of a 100-object namespace.
    #[arg(long, default_value_t = 2_000)]
    pub lists: usize,
    /// Concurrent watchers in the fan-out phase.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Objects created while the watchers watch.
    #[arg(long, default_value_t = 1_000)]
    pub watch_events: usize,
    /// Datastores to compare. etcd is started on loopback from `etcd` on PATH (Debian's
    /// etcd-server) or `$RKUBE_TEST_ETCD`.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,etcd")]
    pub datastores: Vec<String>,
}

#[derive(Default, Debug)]
struct Report {
    start_ms: f64,
    idle_rss: f64,
    peak_rss: f64,
    rows: Vec<(String, f64, f64, f64)>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for ds in &args.datastores {
        eprintln!("== datastore {ds}");
        let tmp = tempfile::tempdir()?;
        let (_etcd, extra) = match ds.as_str() {
            "sqlite" => (None, vec!["--datastore".to_string(), "sqlite".to_string()]),
            "memory" => (None, vec!["--datastore".to_string(), "memory".to_string()]),
            "etcd" => {
                let etcd = store::conformance::TestEtcd::start().await;
                let extra = vec![
                    "--datastore".into(),
                    "etcd".into(),
                    "--datastore-endpoint".into(),
                    etcd.endpoint.clone(),
                ];
                (Some(etcd), extra)
            }
            other => anyhow::bail!("unknown datastore {other}"),
        };
        let data_dir = tmp.path().join("rkube");
        std::fs::create_dir_all(&data_dir)?;
        let server = ServerProc::start(&data_dir, &extra)?;
        let report = bench_one(&args, &server)
            .await
            .with_context(|| format!("benchmarking {ds}"))?;
        reports.push((ds.clone(), report));
    }
    print_table(&args, &reports);
    Ok(())
}

async fn clients(args: &Args, server: &ServerProc) -> anyhow::Result<Vec<Client>> {
    let mut out = Vec::new();
    for _ in 0..args.connections.max(1) {
        out.push(Client::connect(&server.url, &server.data_dir).await?);
    }
    Ok(out)
}

fn configmap(ns: &str, name: &str) -> Bytes {
    Bytes::from(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": {"bench": "true"}},
               "data": {"key": "value", "other": "a slightly longer value to look like real data"}})
        .to_string(),
    )
}

/// Runs `total` requests made by `make` with `concurrency` in flight; returns
/// (requests/s, latencies).
async fn drive<F, Fut>(
    total: usize,
    concurrency: usize,
    make: F,
) -> anyhow::Result<(f64, Vec<Duration>)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let make = make.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let t = Instant::now();
                make(i).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    Ok((rate, all))
}

async fn create_ns(c: &Client, ns: &str) -> anyhow::Result<()> {
    let body = Bytes::from(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
    );
    let (st, b) = c
        .request(
            Method::POST,
            "/api/v1/namespaces",
            Some(body),
            "application/json",
        )
        .await?;
    anyhow::ensure!(
        st.is_success(),
        "creating namespace {ns}: {st} {}",
        String::from_utf8_lossy(&b)
    );
    Ok(())
}

async fn bench_one(args: &Args, server: &ServerProc) -> anyhow::Result<Report> {
    let mut report = Report {
        start_ms: server.start_to_ready.as_secs_f64() * 1000.0,
        ..Default::default()
    };
    let cs = clients(args, server).await?;
    // Let start-up allocations settle before calling the RSS idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.idle_rss = server.rss_mib().0;
    for ns in ["bench", "bench-list", "bench-watch"] {
        create_ns(&cs[0], ns).await?;
    }

    let pick = {
        let cs = cs.clone();
        move |i: usize| cs[i % cs.len()].clone()
    };
    let p = pick.clone();
    let (rate, lat) = drive(args.creates, args.concurrency, move |i| {
        let c = p(i);
        async move {
            let (st, b) = c
                .request(
                    Method::POST,
                    "/api/v1/namespaces/bench/configmaps",
                    Some(configmap("bench", &format!("cm-{i}"))),
                    "application/json",
                )
                .await?;
            anyhow::ensure!(
                st.as_u16() == 201,
                "create: {st} {}",
                String::from_utf8_lossy(&b)
            );
            Ok(())
        }
    })
    .await?;
    push(&mut report, "create (durable)", rate, lat);

    let p = pick.clone();
    let n = args.creates;
    let (rate, lat) = drive(args.creates, args.concurrency, move |i| {
        let c = p(i);
        let name = format!("cm-{}", (i * 7919) % n.max(1));
        async move {
            let (st, _) = c
                .request(
                    Method::GET,
                    &format!("/api/v1/namespaces/bench/configmaps/{name}"),
                    None,
                    "application/json",
                )
                .await?;
            anyhow::ensure!(st.as_u16() == 200, "get: {st}");
            Ok(())
        }
    })
    .await?;
    push(&mut report, "get", rate, lat);

    for i in 0..100 {
        let (st, _) = cs[0]
            .request(
                Method::POST,
                "/api/v1/namespaces/bench-list/configmaps",
                Some(configmap("bench-list", &format!("l-{i}"))),
                "application/json",
            )
            .await?;
        anyhow::ensure!(st.is_success(), "seeding list namespace: {st}");
    }
    let p = pick.clone();
    let (rate, lat) = drive(args.lists, args.concurrency.min(64), move |i| {
        let c = p(i);
        async move {
            let (st, b) = c
                .request(
                    Method::GET,
                    "/api/v1/namespaces/bench-list/configmaps",
                    None,
                    "application/json",
                )
                .await?;
            anyhow::ensure!(st.as_u16() == 200 && b.len() > 100 * 100, "list: {st}");
            Ok(())
        }
    })
    .await?;
    push(&mut report, "list (100 objects)", rate, lat);

    let (rate, lat) = watch_fanout(args, &cs).await?;
    push(
        &mut report,
        &format!("watch events delivered ({} watchers)", args.watchers),
        rate,
        lat,
    );
    report.peak_rss = server.rss_mib().1;
    Ok(report)
}

fn push(report: &mut Report, name: &str, rate: f64, lat: Vec<Duration>) {
    let (p50, p99) = percentiles(lat);
    eprintln!("{name}: {rate:.0}/s p50 {p50:.2} ms p99 {p99:.2} ms");
    report.rows.push((name.to_string(), rate, p50, p99));
}

/// Watchers on one namespace receive a burst of creates; rate = events delivered per
/// second across all watchers, latency = create sent → event received.
async fn watch_fanout(args: &Args, cs: &[Client]) -> anyhow::Result<(f64, Vec<Duration>)> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (_, list) = cs[0]
        .request(
            Method::GET,
            "/api/v1/namespaces/bench-watch/configmaps",
            None,
            "application/json",
        )
        .await?;
    let rv = serde_json::from_slice::<serde_json::Value>(&list)?["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let mut watchers = Vec::new();
    for w in 0..args.watchers {
        let mut body = cs[w % cs.len()]
            .stream(&format!(
                "/api/v1/namespaces/bench-watch/configmaps?watch=true&resourceVersion={rv}"
            ))
            .await?;
        let sent = sent.clone();
        let want = args.watch_events;
        watchers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(want);
            let mut buf = Vec::new();
            while lat.len() < want {
                let Some(frame) = body.frame().await else {
                    break;
                };
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let ev: serde_json::Value = serde_json::from_slice(&line)?;
                    if let Some(name) = ev["object"]["metadata"]["name"].as_str()
                        && let Some(t) = sent
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .get(name)
                    {
                        lat.push(t.elapsed());
                    }
                }
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let started = Instant::now();
    let cs2: Vec<Client> = cs.to_vec();
    let sent2 = sent.clone();
    drive(args.watch_events, 32, move |i| {
        let c = cs2[i % cs2.len()].clone();
        let sent = sent2.clone();
        async move {
            let name = format!("w-{i}");
            sent.lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(name.clone(), Instant::now());
            let (st, _) = c
                .request(
                    Method::POST,
                    "/api/v1/namespaces/bench-watch/configmaps",
                    Some(configmap("bench-watch", &name)),
                    "application/json",
                )
                .await?;
            anyhow::ensure!(st.as_u16() == 201, "create: {st}");
            Ok(())
        }
    })
    .await?;
    let mut all = Vec::new();
    for w in watchers {
        all.extend(
            tokio::time::timeout(Duration::from_secs(120), w)
                .await
                .context("watchers stalled")???,
        );
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, all))
}

fn print_table(args: &Args, reports: &[(String, Report)]) {
    println!();
    println!(
        "rkube bench api: {} creates, {} in flight over {} HTTP/2 connections; {} lists; {} watchers x {} events",
        args.creates,
        args.concurrency,
        args.connections,
        args.lists,
        args.watchers,
        args.watch_events
    );
    println!();
    let header: Vec<String> = reports.iter().map(|(ds, _)| ds.clone()).collect();
    println!("| metric | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    let rows = reports.first().map(|(_, r)| r.rows.len()).unwrap_or(0);
    for i in 0..rows {
        let name = &reports[0].1.rows[i].0;
        let cells: Vec<String> = reports
            .iter()
            .map(|(_, r)| {
                let (_, rate, p50, p99) = &r.rows[i];
                format!("{rate:.0}/s (p50 {p50:.1} ms, p99 {p99:.1} ms)")
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let line = |label: &str, f: &dyn Fn(&Report) -> String| {
        let cells: Vec<String> = reports.iter().map(|(_, r)| f(r)).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    line("start to ready", &|r| format!("{:.0} ms", r.start_ms));
    line("server RSS idle", &|r| format!("{:.1} MiB", r.idle_rss));
    line("server RSS peak (loaded)", &|r| {
        format!("{:.1} MiB", r.peak_rss)
    });
}
