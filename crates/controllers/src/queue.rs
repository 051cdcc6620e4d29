//! The work queue every controller pulls keys from (client-go's rate-limited workqueue):
//! a key queued many times before a worker takes it is reconciled once, a key is never
//! reconciled by two workers at once (one queued while in flight runs again after), and a
//! failing key backs off exponentially.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Upstream's per-item exponential limiter: 5 ms doubling to 1000 s.
const BASE_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1000);

struct State<K> {
    queue: VecDeque<K>,
    /// Keys waiting to be processed (in `queue`, or re-queued while in flight).
    dirty: HashSet<K>,
    /// Keys a worker holds right now.
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    /// The earliest pending `add_after` per key: a later one for the same key adds nothing
    /// (client-go's delaying queue keeps one entry per key the same way).
    delayed: HashMap<K, tokio::time::Instant>,
    shut_down: bool,
}

/// A de-duplicating queue of keys. Cheap to clone (shared).
pub struct Queue<K> {
    state: Arc<Mutex<State<K>>>,
    ready: Arc<Notify>,
}

impl<K> Clone for Queue<K> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Default for Queue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Queue<K> {
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                delayed: HashMap::new(),
                shut_down: false,
            })),
            ready: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.shut_down || !s.dirty.insert(key.clone()) {
            return;
        }
        // A key in flight is queued again by `done`.
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = tokio::time::Instant::now() + delay;
        {
            let mut s = self.lock();
            if s.delayed.get(&key).is_some_and(|t| *t <= at) {
                return;
            }
            s.delayed.insert(key.clone(), at);
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            {
                let mut s = q.lock();
                // A sooner timer replaced this one and will fire (or has fired) instead.
                if s.delayed.get(&key) != Some(&at) {
                    return;
                }
                s.delayed.remove(&key);
            }
            q.add(key);
        });
    }

    /// Queues `key` after its next back-off step.
    pub fn add_rate_limited(&self, key: K) {
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = BASE_DELAY
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(MAX_DELAY);
        self.add_after(key, delay);
    }

    /// Clears `key`'s back-off after a success.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// The next key to process, or `None` once shut down. Pair with [`Queue::done`].
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.lock();
                if s.shut_down {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    // More work: let another worker wake too.
                    if !s.queue.is_empty() {
                        self.ready.notify_one();
                    }
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was queued meanwhile it goes back in line.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Wakes every worker with `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.ready.notify_waiters();
    }

    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a reconcile asks for next.
pub enum Next {
    /// Nothing until something changes.
    Done,
    /// Look again after this long (a deadline, a pod becoming available…).
    After(Duration),
}

/// Runs `workers` tasks that take keys from `queue` and call `reconcile` until `stop`.
/// An error re-queues the key with back-off; success resets it.
pub async fn run_workers<K, F, Fut, E>(
    name: &'static str,
    queue: Queue<K>,
    workers: usize,
    stop: CancellationToken,
    reconcile: F,
) where
    K: Hash + Eq + Clone + Send + Sync + std::fmt::Display + 'static,
    F: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Next, E>> + Send,
    E: std::error::Error,
{
    let reconcile = Arc::new(reconcile);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (queue, reconcile) = (queue.clone(), reconcile.clone());
        set.spawn(async move {
            while let Some(key) = queue.get().await {
                match reconcile(key.clone()).await {
                    Ok(next) => {
                        queue.forget(&key);
                        if let Next::After(d) = next {
                            queue.add_after(key.clone(), d);
                        }
                    }
                    Err(e) => {
                        tracing::info!(controller = name, %key, error = %chain(&e), "sync failed; retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    stop.cancelled().await;
    queue.shut_down();
    while set.join_next().await.is_some() {}
}

/// An error with its causes: `creating pods: pods "x" is forbidden: …`.
/// An API error contributes its Status message only.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        if let Some(kube::Error::Api(status)) = s.downcast_ref::<kube::Error>() {
            out.push_str(&status.message);
            break;
        }
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_added_many_times_is_taken_once() {
        let q = Queue::new();
        for _ in 0..3 {
            q.add("a".to_string());
        }
        q.add("b".to_string());
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        assert_eq!(q.get().await.as_deref(), Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn a_key_queued_while_in_flight_runs_again_after_done() {
        let q = Queue::new();
        q.add(1);
        let k = q.get().await.expect("key");
        q.add(1);
        // Not handed to a second worker while the first holds it.
        assert!(q.is_empty());
        q.done(&k);
        assert_eq!(q.get().await, Some(1));
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q: Queue<u8> = Queue::new();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(waiter.await.expect("join"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_earliest_delayed_add_of_a_key_fires() {
        let q = Queue::new();
        q.add_after(1, Duration::from_secs(10));
        q.add_after(1, Duration::from_secs(20));
        q.add_after(1, Duration::from_secs(5));
        assert_eq!(q.lock().delayed.len(), 1);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(q.get().await, Some(1));
        q.done(&1);
        // The 10 s and 20 s timers were superseded: nothing more arrives.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(q.is_empty());
        assert!(q.lock().delayed.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_until_forgotten() {
        let q = Queue::new();
        q.add_rate_limited(7);
        tokio::time::sleep(Duration::from_millis(6)).await;
        assert_eq!(q.get().await, Some(7));
        q.done(&7);
        // The second failure waits 10 ms.
        q.add_rate_limited(7);
        tokio::time::sleep(Duration::from_millis(6)).await;
        assert!(q.is_empty());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(q.get().await, Some(7));
        q.done(&7);
        q.forget(&7);
        assert!(q.lock().failures.is_empty());
    }
}
