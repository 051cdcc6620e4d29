//! Durable create throughput of the SQLite backend under many concurrent writers.
//!
//! `cargo run -p store --release --example sqlite_bench -- [WRITERS] [TOTAL] [DIR]`
//! (defaults: 256 writers, 100000 creates, a temporary directory on the default temp
//! filesystem — point DIR at the disk a server would use to measure that disk).

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::Store;
use store::sqlite::SqliteStore;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let writers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let tmp = tempfile::tempdir_in(args.next().unwrap_or_else(|| "/tmp".into())).expect("temp dir");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&tmp.path().join("bench.db")).expect("open"));
    // A realistic value: roughly a small pod object.
    let value = bytes::Bytes::from(vec![b'x'; 1024]);

    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let value = value.clone();
            let count = total / writers + usize::from(w < total % writers);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(count);
                for i in 0..count {
                    let key = format!("/registry/pods/bench/w{w}-{i}");
                    let t = Instant::now();
                    store.create(&key, value.clone()).await.expect("create");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.expect("writer"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{total} durable creates, {writers} writers: {:.0}/s in {elapsed:.2?}; \
         latency p50 {:.2?} p99 {:.2?} max {:.2?}",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1],
    );
    let size = |name: &str| {
        std::fs::metadata(tmp.path().join(name)).map_or(0, |m| m.len()) / (1024 * 1024)
    };
    println!(
        "database {} MiB, WAL {} MiB",
        size("bench.db"),
        size("bench.db-wal")
    );
    let revision = store.current_revision().await.expect("revision");
    assert_eq!(revision as usize, total);
}
