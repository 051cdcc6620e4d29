//! Per-key exponential back-off, as upstream's `flowcontrol.Backoff` (crash loops: 10 s
//! doubling to 5 min; image pulls the same).

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<String, Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    delay: Duration,
    last_update: Timestamp,
}

fn since(later: Timestamp, earlier: Timestamp) -> Duration {
    later
        .duration_since(earlier)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

impl Backoff {
    /// An entry untouched for twice the maximum starts over (upstream `hasExpired`).
    fn live(&self, key: &str, at: Timestamp) -> Option<Entry> {
        self.entries
            .get(key)
            .copied()
            .filter(|e| since(at, e.last_update) <= MAX * 2)
    }

    /// The current delay, if `key` has one.
    pub fn delay(&self, key: &str, now: Timestamp) -> Option<Duration> {
        self.live(key, now).map(|e| e.delay)
    }

    /// Whether `now` is still within the delay counted from `event` (upstream
    /// `IsInBackOffSince`: a container's finish time). Returns the time left.
    pub fn remaining_since(&self, key: &str, event: Timestamp, now: Timestamp) -> Option<Duration> {
        let e = self.live(key, event)?;
        e.delay
            .checked_sub(since(now, event))
            .filter(|d| !d.is_zero())
    }

    /// Whether `now` is within the delay counted from the last [`Backoff::next`] (upstream
    /// `IsInBackOffSinceUpdate`: image pulls). Returns the time left.
    pub fn remaining_since_update(&self, key: &str, now: Timestamp) -> Option<Duration> {
        let e = self.live(key, now)?;
        e.delay
            .checked_sub(since(now, e.last_update))
            .filter(|d| !d.is_zero())
    }

    /// Records another failure: the first delay, or twice the last one up to the maximum.
    pub fn next(&mut self, key: &str, now: Timestamp) -> Duration {
        let delay = match self.live(key, now) {
            Some(e) => (e.delay * 2).min(MAX),
            None => INITIAL,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
        delay
    }

    /// Forgets every key that starts with `prefix` (a pod's keys when it goes).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// Go's `time.Duration.String()` for whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_ten_seconds_to_five_minutes() {
        let mut b = Backoff::default();
        let t0 = Timestamp::UNIX_EPOCH;
        let delays: Vec<u64> = (0..7).map(|_| b.next("k", t0).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
        // Untouched for more than twice the maximum: back to the start.
        let later = t0 + jiff::SignedDuration::from_secs(601);
        assert_eq!(b.next("k", later).as_secs(), 10);
    }

    #[test]
    fn a_crash_waits_out_the_delay_from_its_finish() {
        let mut b = Backoff::default();
        let t0 = Timestamp::UNIX_EPOCH;
        assert_eq!(b.remaining_since("k", t0, t0), None);
        b.next("k", t0);
        let finished = t0 + jiff::SignedDuration::from_secs(3);
        let now = finished + jiff::SignedDuration::from_secs(4);
        assert_eq!(
            b.remaining_since("k", finished, now),
            Some(Duration::from_secs(6))
        );
        let after = finished + jiff::SignedDuration::from_secs(11);
        assert_eq!(b.remaining_since("k", finished, after), None);
    }

    #[test]
    fn go_durations_read_like_kubelet_messages() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
