//! Counters and latency histograms, lock-free, with upstream's metric names in the
//! Prometheus text rendering (`scheduler_schedule_attempts_total`, …), which is also a
//! `prometheus_client` collector, so a process serving `/metrics` (the API server under
//! `rkube server`) can show the scheduler's metrics with its own.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets grow by 2^(1/4) from 1 µs; the last is open-ended (about 70 s at bucket 95).
const BUCKETS: usize = 96;

/// A latency histogram with fine log buckets, for quantiles as well as Prometheus.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

fn bucket_upper_ns(i: usize) -> f64 {
    1_000.0 * 2f64.powf(i as f64 / 4.0)
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        let i = if ns <= 1_000 {
            0
        } else {
            (((ns as f64 / 1_000.0).log2() * 4.0).ceil() as usize).min(BUCKETS - 1)
        };
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket (≤ 19% high).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.snapshot().quantile(q)
    }

    /// The bucket counts now, so a caller can take quantiles of one stretch of time.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.counts.iter().map(|c| c.load(Relaxed)).collect())
    }

    pub fn mean(&self) -> Option<Duration> {
        let n = self.count();
        (n > 0).then(|| Duration::from_nanos(self.sum_ns.load(Relaxed) / n))
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        // Prometheus buckets at powers of two (every fourth fine bucket) keep the text short.
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Relaxed);
            if i % 4 == 0 && i + 1 < BUCKETS {
                let le = bucket_upper_ns(i) / 1e9;
                let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
            }
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", self.count());
        let plain = labels.trim_end_matches(',');
        let braces = if plain.is_empty() {
            String::new()
        } else {
            format!("{{{plain}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_ns.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{braces} {}", self.count());
    }
}

/// A histogram's bucket counts at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot(Vec<u64>);

impl Snapshot {
    /// What was observed after `earlier` (a snapshot of the same histogram).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .zip(earlier.0.iter().chain(std::iter::repeat(&0)))
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
        )
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0..=1), as the upper bound of its bucket (≤ 19% high).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Duration::from_nanos(bucket_upper_ns(i) as u64));
            }
        }
        None
    }
}

/// What the scheduler counts. Shared with whoever serves `/metrics` or runs a benchmark.
#[derive(Debug, Default)]
pub struct Metrics {
    pub scheduled: AtomicU64,
    pub unschedulable: AtomicU64,
    pub errors: AtomicU64,
    pub bound: AtomicU64,
    pub bind_failures: AtomicU64,
    pub preemption_attempts: AtomicU64,
    pub preemption_victims: AtomicU64,
    pub events_dropped: AtomicU64,
    pub pending_active: AtomicI64,
    pub pending_backoff: AtomicI64,
    pub pending_unschedulable: AtomicI64,
    pub pending_gated: AtomicI64,
    /// One scheduling attempt: filter, score, assume (upstream
    /// `scheduler_scheduling_attempt_duration_seconds`).
    pub attempt_duration: Histogram,
    /// From the first attempt to a successful binding (upstream
    /// `scheduler_pod_scheduling_sli_duration_seconds`).
    pub e2e_duration: Histogram,
    /// The binding call alone.
    pub binding_duration: Histogram,
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let g = |v: &AtomicU64| v.load(Relaxed);
        out.push_str("# TYPE scheduler_schedule_attempts_total counter\n");
        for (result, v) in [
            ("scheduled", g(&self.scheduled)),
            ("unschedulable", g(&self.unschedulable)),
            ("error", g(&self.errors)),
        ] {
            let _ = writeln!(
                out,
                "scheduler_schedule_attempts_total{{result=\"{result}\"}} {v}"
            );
        }
        out.push_str("# TYPE scheduler_pending_pods gauge\n");
        for (queue, v) in [
            ("active", &self.pending_active),
            ("backoff", &self.pending_backoff),
            ("unschedulable", &self.pending_unschedulable),
            ("gated", &self.pending_gated),
        ] {
            let _ = writeln!(
                out,
                "scheduler_pending_pods{{queue=\"{queue}\"}} {}",
                v.load(Relaxed)
            );
        }
        out.push_str("# TYPE scheduler_preemption_attempts_total counter\n");
        let _ = writeln!(
            out,
            "scheduler_preemption_attempts_total {}",
            g(&self.preemption_attempts)
        );
        out.push_str("# TYPE scheduler_preemption_victims_total counter\n");
        let _ = writeln!(
            out,
            "scheduler_preemption_victims_total {}",
            g(&self.preemption_victims)
        );
        out.push_str("# TYPE scheduler_scheduling_attempt_duration_seconds histogram\n");
        self.attempt_duration.render(
            &mut out,
            "scheduler_scheduling_attempt_duration_seconds",
            "",
        );
        out.push_str("# TYPE scheduler_pod_scheduling_sli_duration_seconds histogram\n");
        self.e2e_duration.render(
            &mut out,
            "scheduler_pod_scheduling_sli_duration_seconds",
            "",
        );
        out.push_str("# TYPE scheduler_binding_duration_seconds histogram\n");
        self.binding_duration
            .render(&mut out, "scheduler_binding_duration_seconds", "");
        out
    }
}

impl Histogram {
    /// `(sum in seconds, count, per-bucket counts)` with the Prometheus buckets of
    /// [`Histogram::render`]: every fourth fine bucket, then `+Inf`.
    fn prometheus(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets: Vec<(f64, u64)> = (0..BUCKETS - 1)
            .step_by(4)
            .map(|i| (bucket_upper_ns(i) / 1e9, 0))
            .collect();
        buckets.push((f64::INFINITY, 0));
        let last = buckets.len() - 1;
        for (i, c) in self.counts.iter().enumerate() {
            buckets[i.div_ceil(4).min(last)].1 += c.load(Relaxed);
        }
        let count = buckets.iter().map(|(_, c)| c).sum();
        (self.sum_ns.load(Relaxed) as f64 / 1e9, count, buckets)
    }
}

impl prometheus_client::collector::Collector for Metrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::{EncodeMetric, NoLabelSet};
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;

        let g = |v: &AtomicU64| v.load(Relaxed);
        let mut f = encoder.encode_descriptor(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
            None,
            MetricType::Counter,
        )?;
        for (result, v) in [
            ("scheduled", g(&self.scheduled)),
            ("unschedulable", g(&self.unschedulable)),
            ("error", g(&self.errors)),
        ] {
            ConstCounter::new(v).encode(f.encode_family(&[("result", result)])?)?;
        }
        let mut f = encoder.encode_descriptor(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type.",
            None,
            MetricType::Gauge,
        )?;
        for (queue, v) in [
            ("active", &self.pending_active),
            ("backoff", &self.pending_backoff),
            ("unschedulable", &self.pending_unschedulable),
            ("gated", &self.pending_gated),
        ] {
            ConstGauge::new(v.load(Relaxed)).encode(f.encode_family(&[("queue", queue)])?)?;
        }
        for (name, help, v) in [
            (
                "scheduler_preemption_attempts",
                "Total preemption attempts in the cluster till now",
                &self.preemption_attempts,
            ),
            (
                "scheduler_preemption_victims",
                "Number of selected preemption victims",
                &self.preemption_victims,
            ),
        ] {
            let f = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(g(v)).encode(f)?;
        }
        for (name, help, h) in [
            (
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                &self.attempt_duration,
            ),
            (
                "scheduler_pod_scheduling_sli_duration_seconds",
                "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue and might involve multiple scheduling attempts.",
                &self.e2e_duration,
            ),
            (
                "scheduler_binding_duration_seconds",
                "Binding latency in seconds",
                &self.binding_duration,
            ),
        ] {
            let mut f = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            let (sum, count, buckets) = h.prometheus();
            f.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_difference_has_only_the_later_observations() {
        let h = Histogram::default();
        for _ in 0..1000 {
            h.observe(Duration::from_micros(10));
        }
        let before = h.snapshot();
        for _ in 0..10 {
            h.observe(Duration::from_millis(5));
        }
        let later = h.snapshot().since(&before);
        assert_eq!(later.count(), 10);
        let p50 = later.quantile(0.5).expect("p50");
        assert!(
            p50 >= Duration::from_millis(5) && p50 <= Duration::from_millis(6),
            "{p50:?}"
        );
        assert!(h.quantile(0.5).expect("all") < Duration::from_micros(12));
    }

    #[test]
    fn the_collector_shows_upstreams_names_with_cumulative_buckets() {
        let m = Metrics::default();
        m.scheduled.fetch_add(2, Relaxed);
        m.pending_active.store(3, Relaxed);
        m.attempt_duration.observe(Duration::from_micros(3));
        m.attempt_duration.observe(Duration::from_secs(1000));
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(m));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("scheduler_pending_pods{queue=\"active\"} 3\n"),
            "{text}"
        );
        // 3 µs falls in the 4 µs bucket; 1000 s only in +Inf.
        assert!(
            text.contains(
                "scheduler_scheduling_attempt_duration_seconds_bucket{le=\"0.000004\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("scheduler_scheduling_attempt_duration_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn quantiles_are_within_a_bucket() {
        let h = Histogram::default();
        for us in 1..=100 {
            h.observe(Duration::from_micros(us));
        }
        let p50 = h.quantile(0.5).expect("p50");
        assert!(
            p50 >= Duration::from_micros(50) && p50 <= Duration::from_micros(60),
            "{p50:?}"
        );
        let p99 = h.quantile(0.99).expect("p99");
        assert!(
            p99 >= Duration::from_micros(99) && p99 <= Duration::from_micros(120),
            "{p99:?}"
        );
        let m = Metrics::default();
        m.attempt_duration.observe(Duration::from_millis(1));
        let text = m.render();
        assert!(text.contains("scheduler_schedule_attempts_total{result=\"scheduled\"} 0"));
        assert!(text.contains("scheduler_scheduling_attempt_duration_seconds_count 1"));
    }
}
