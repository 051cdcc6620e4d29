//! The scheduling queue (upstream `PriorityQueue`): pods waiting for a scheduling attempt.
//!
//! - *active*: ready now, highest priority first, then longest waiting.
//! - *backoff*: failed recently; ready after 1 s × 2^(attempts−1), capped (10 s by default).
//! - *unschedulable*: rejected by plugins; moved back only by a cluster event one of the
//!   rejecting plugins registered for (or after five minutes as a safety net).
//! - *gated*: pods with `spec.schedulingGates`, until the gates are removed.
//!
//! Like upstream before queueing hints, a pod that fails while a cluster event arrived during
//! its attempt goes to backoff instead of unschedulable (the event may already have helped).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::framework::{ClusterEvent, PodInfo};

/// Upstream `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(300);

/// A pod taken from the queue for an attempt; handed back on failure.
#[derive(Clone, Debug)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    /// Attempts so far, including the current one.
    pub attempts: u32,
    /// When it last entered the queue (orders equal priorities; backoff counts from it).
    pub timestamp: Instant,
    /// When it was first popped (for end-to-end latency).
    pub initial_attempt: Option<Instant>,
    /// Plugins that rejected it in its last attempt.
    pub unschedulable_plugins: Vec<&'static str>,
    /// The scheduling cycle of its last attempt.
    cycle: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    Gated,
}

#[derive(Debug)]
struct Entry {
    qp: QueuedPod,
    place: Place,
    /// Matches the heap item that is current for this entry.
    seq: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    uid: String,
}

impl Ord for ActiveItem {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.timestamp.cmp(&self.timestamp))
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Counts per sub-queue, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lengths {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

/// See the module docs. Owned by the scheduling loop (no locking).
#[derive(Debug)]
pub struct Queue {
    entries: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    initial_backoff: Duration,
    max_backoff: Duration,
    /// Plugin name → events that may undo its rejection.
    plugin_events: HashMap<&'static str, Vec<ClusterEvent>>,
    lengths: Lengths,
}

impl Queue {
    pub fn new(
        initial_backoff: Duration,
        max_backoff: Duration,
        plugin_events: HashMap<&'static str, Vec<ClusterEvent>>,
    ) -> Queue {
        Queue {
            entries: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BinaryHeap::new(),
            seq: 0,
            scheduling_cycle: 0,
            move_request_cycle: 0,
            initial_backoff,
            max_backoff,
            plugin_events,
            lengths: Lengths::default(),
        }
    }

    pub fn lengths(&self) -> Lengths {
        self.lengths
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// Upstream `calculateBackoffDuration`.
    pub fn backoff_duration(&self, attempts: u32) -> Duration {
        let mut d = self.initial_backoff;
        for _ in 1..attempts {
            if d > self.max_backoff.saturating_sub(d) {
                return self.max_backoff;
            }
            d += d;
        }
        d.min(self.max_backoff)
    }

    fn backoff_expiry(&self, qp: &QueuedPod) -> Instant {
        qp.timestamp + self.backoff_duration(qp.attempts)
    }

    fn count(&mut self, place: Place, delta: isize) {
        let c = match place {
            Place::Active => &mut self.lengths.active,
            Place::Backoff => &mut self.lengths.backoff,
            Place::Unschedulable => &mut self.lengths.unschedulable,
            Place::Gated => &mut self.lengths.gated,
        };
        *c = c.saturating_add_signed(delta);
    }

    fn put(&mut self, qp: QueuedPod, place: Place) {
        self.seq += 1;
        let seq = self.seq;
        let uid = qp.info.uid.clone();
        match place {
            Place::Active => self.active.push(ActiveItem {
                priority: qp.info.priority,
                timestamp: qp.timestamp,
                seq,
                uid: uid.clone(),
            }),
            Place::Backoff => {
                let at = self.backoff_expiry(&qp);
                self.backoff.push(Reverse((at, seq, uid.clone())));
            }
            Place::Unschedulable | Place::Gated => {}
        }
        self.count(place, 1);
        if let Some(old) = self.entries.insert(uid, Entry { qp, place, seq }) {
            self.count(old.place, -1);
        }
    }

    fn remove(&mut self, uid: &str) -> Option<Entry> {
        let e = self.entries.remove(uid)?;
        self.count(e.place, -1);
        Some(e)
    }

    /// A new pending pod, or a new version of one already queued (see [`Queue::update`]).
    pub fn add(&mut self, info: Arc<PodInfo>, now: Instant) {
        if self.entries.contains_key(&info.uid) {
            self.update(info, now);
            return;
        }
        let place = if info.has_scheduling_gates() {
            Place::Gated
        } else {
            Place::Active
        };
        let qp = QueuedPod {
            info,
            attempts: 0,
            timestamp: now,
            initial_attempt: None,
            unschedulable_plugins: Vec::new(),
            cycle: 0,
        };
        self.put(qp, place);
    }

    /// A queued pod changed. A gated pod whose gates are gone, or an unschedulable pod whose
    /// spec or labels changed, gets another attempt (after its backoff).
    pub fn update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let Some(e) = self.entries.get_mut(&info.uid) else {
            self.add(info, now);
            return;
        };
        let old = std::mem::replace(&mut e.qp.info, info.clone());
        let place = e.place;
        match place {
            Place::Gated if !info.has_scheduling_gates() => {
                let mut qp = self.remove(&info.uid).map(|e| e.qp).expect("entry exists");
                qp.timestamp = now;
                self.put(qp, Place::Active);
            }
            Place::Unschedulable
                if old.pod.spec != info.pod.spec
                    || old.pod.metadata.labels != info.pod.metadata.labels =>
            {
                let qp = self.remove(&info.uid).map(|e| e.qp).expect("entry exists");
                self.requeue_moved(qp, now);
            }
            _ => {}
        }
    }

    pub fn delete(&mut self, uid: &str) {
        self.remove(uid);
    }

    /// Moves backoff pods whose time has come to active.
    pub fn flush_backoff(&mut self, now: Instant) {
        while let Some(Reverse((at, seq, uid))) = self.backoff.peek() {
            if *at > now {
                break;
            }
            let (seq, uid) = (*seq, uid.clone());
            self.backoff.pop();
            let current = self
                .entries
                .get(&uid)
                .is_some_and(|e| e.seq == seq && e.place == Place::Backoff);
            if current {
                let qp = self.remove(&uid).map(|e| e.qp).expect("entry exists");
                self.put(qp, Place::Active);
            }
        }
    }

    /// Moves pods unschedulable for longer than [`MAX_UNSCHEDULABLE_DURATION`].
    pub fn flush_unschedulable(&mut self, now: Instant) {
        let stale: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.place == Place::Unschedulable
                    && now.duration_since(e.qp.timestamp) > MAX_UNSCHEDULABLE_DURATION
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in stale {
            let qp = self.remove(&uid).map(|e| e.qp).expect("entry exists");
            self.requeue_moved(qp, now);
        }
    }

    /// Backoff if the pod is still backing off, else active.
    fn requeue_moved(&mut self, qp: QueuedPod, now: Instant) {
        let place = if qp.attempts > 0 && self.backoff_expiry(&qp) > now {
            Place::Backoff
        } else {
            Place::Active
        };
        self.put(qp, place);
    }

    /// The next pod to attempt, if one is ready. The pod leaves the queue until handed back.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush_backoff(now);
        while let Some(item) = self.active.pop() {
            let current = self
                .entries
                .get(&item.uid)
                .is_some_and(|e| e.seq == item.seq && e.place == Place::Active);
            if !current {
                continue;
            }
            let mut qp = self.remove(&item.uid).map(|e| e.qp).expect("entry exists");
            self.scheduling_cycle += 1;
            qp.cycle = self.scheduling_cycle;
            qp.attempts += 1;
            qp.initial_attempt.get_or_insert(now);
            return Some(qp);
        }
        None
    }

    /// When the earliest backoff ends, if any pod is backing off.
    pub fn next_backoff(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, seq, uid))) = self.backoff.peek() {
            let current = self
                .entries
                .get(uid)
                .is_some_and(|e| e.seq == *seq && e.place == Place::Backoff);
            if current {
                return Some(*at);
            }
            self.backoff.pop();
        }
        None
    }

    /// Hands back a pod the plugins rejected.
    pub fn add_unschedulable(
        &mut self,
        mut qp: QueuedPod,
        plugins: Vec<&'static str>,
        now: Instant,
    ) {
        if self.entries.contains_key(&qp.info.uid) {
            return;
        }
        qp.timestamp = now;
        qp.unschedulable_plugins = plugins;
        let place = if self.move_request_cycle >= qp.cycle {
            Place::Backoff
        } else {
            Place::Unschedulable
        };
        self.put(qp, place);
    }

    /// Hands back a pod whose attempt failed for another reason (an error, a failed
    /// binding): it retries after its backoff.
    pub fn add_backoff(&mut self, mut qp: QueuedPod, now: Instant) {
        if self.entries.contains_key(&qp.info.uid) {
            return;
        }
        qp.timestamp = now;
        self.put(qp, Place::Backoff);
    }

    /// A cluster event: moves the unschedulable pods it may help (upstream
    /// `MoveAllToActiveOrBackoffQueue`). `only` restricts the candidates (e.g. lower
    /// priority pods when a nominated pod goes).
    pub fn on_event(
        &mut self,
        event: ClusterEvent,
        now: Instant,
        only: Option<&dyn Fn(&PodInfo) -> bool>,
    ) {
        self.move_request_cycle = self.scheduling_cycle;
        if self.lengths.unschedulable == 0 {
            return;
        }
        let movable: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.place == Place::Unschedulable)
            .filter(|(_, e)| only.is_none_or(|f| f(&e.qp.info)))
            .filter(|(_, e)| {
                e.qp.unschedulable_plugins.is_empty()
                    || e.qp.unschedulable_plugins.iter().any(|p| {
                        self.plugin_events
                            .get(p)
                            .is_some_and(|evs| evs.iter().any(|r| event.matches(r)))
                    })
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in movable {
            let qp = self.remove(&uid).map(|e| e.qp).expect("entry exists");
            self.requeue_moved(qp, now);
        }
    }

    /// Every queued pod's UID.
    pub fn uids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The queued version of a pod.
    pub fn get(&self, uid: &str) -> Option<&Arc<PodInfo>> {
        self.entries.get(uid).map(|e| &e.qp.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Action, EventResource};
    use crate::plugins::helper::testing::pod;
    use serde_json::json;

    fn p(name: &str, prio: i32) -> Arc<PodInfo> {
        Arc::new(pod(
            json!({"metadata": {"name": name}, "spec": {"priority": prio}}),
        ))
    }

    fn queue() -> Queue {
        let mut events = HashMap::new();
        events.insert(
            "NodeAffinity",
            vec![ClusterEvent::new(
                EventResource::Node,
                Action::ADD.or(Action::UPDATE_NODE_LABEL),
            )],
        );
        Queue::new(Duration::from_secs(1), Duration::from_secs(10), events)
    }

    #[test]
    fn priority_then_arrival_order() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(p("low", 0), t0);
        q.add(p("high", 100), t0 + Duration::from_millis(1));
        q.add(p("low2", 0), t0 + Duration::from_millis(2));
        let order: Vec<String> = std::iter::from_fn(|| q.pop(t0))
            .map(|qp| qp.info.name().to_string())
            .collect();
        assert_eq!(order, ["high", "low", "low2"]);
        assert!(q.is_empty());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let q = queue();
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff_duration(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_pods_move_on_registered_events_only() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(p("a", 0), t0);
        let qp = q.pop(t0).expect("pod");
        q.add_unschedulable(qp, vec!["NodeAffinity"], t0);
        assert_eq!(q.lengths().unschedulable, 1);
        // An assigned pod being deleted does not help NodeAffinity.
        q.on_event(
            ClusterEvent::new(EventResource::AssignedPod, Action::DELETE),
            t0,
            None,
        );
        assert_eq!(q.lengths().unschedulable, 1);
        // A node label change does; the pod is still backing off (1 s).
        q.on_event(
            ClusterEvent::new(EventResource::Node, Action::UPDATE_NODE_LABEL),
            t0,
            None,
        );
        assert_eq!(q.lengths().backoff, 1);
        assert!(q.pop(t0).is_none());
        assert_eq!(q.next_backoff(), Some(t0 + Duration::from_secs(1)));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(q.pop(later).map(|qp| qp.attempts), Some(2));
    }

    #[test]
    fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(p("a", 0), t0);
        let qp = q.pop(t0).expect("pod");
        q.on_event(
            ClusterEvent::new(EventResource::Node, Action::ADD),
            t0,
            None,
        );
        q.add_unschedulable(qp, vec!["NodeAffinity"], t0);
        assert_eq!(q.lengths().backoff, 1);
    }

    #[test]
    fn gated_pods_wait_for_their_gates() {
        let mut q = queue();
        let t0 = Instant::now();
        let gated = Arc::new(pod(
            json!({"metadata": {"name": "g"}, "spec": {"schedulingGates": [{"name": "x"}]}}),
        ));
        q.add(gated, t0);
        assert!(q.pop(t0).is_none());
        assert_eq!(q.lengths().gated, 1);
        q.update(Arc::new(pod(json!({"metadata": {"name": "g"}}))), t0);
        assert_eq!(
            q.pop(t0).map(|qp| qp.info.name().to_string()),
            Some("g".into())
        );
    }

    #[test]
    fn deleted_pods_are_never_popped() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add(p("a", 0), t0);
        q.delete("uid-a");
        assert!(q.pop(t0).is_none());
        assert_eq!(q.lengths(), Lengths::default());
    }
}
