//! Completion indexes of Indexed Jobs (upstream `indexed_job_utils.go`): sets of indexes
//! kept as ordered, merged intervals, their compressed text form in
//! `status.completedIndexes` / `status.failedIndexes` ("1,3-5"), and what the index and
//! per-index failure-count annotations of a pod say.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// Annotation and label with a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Annotations counting the failed (and policy-ignored) pods before this one in its index.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interval {
    first: i32,
    last: i32,
}

/// A set of indexes as ordered, non-overlapping, non-adjacent intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intervals(Vec<Interval>);

impl Intervals {
    /// Upstream `parseIndexesFromString`: a corrupt interval is skipped, intervals from
    /// `completions` on are dropped and one reaching past it is cut.
    pub fn parse(s: &str, completions: i32) -> Intervals {
        let mut out: Vec<Interval> = Vec::new();
        if s.is_empty() {
            return Intervals(out);
        }
        for part in s.split(',') {
            let mut limits = part.split('-');
            let Some(Ok(first)) = limits.next().map(str::parse::<i32>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match limits.next() {
                Some(l) => match l.parse::<i32>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match out.last_mut() {
                Some(prev) if prev.last == first - 1 => prev.last = last,
                _ => out.push(Interval { first, last }),
            }
        }
        Intervals(out)
    }

    /// These intervals plus `indexes` (ascending; repeats allowed).
    pub fn with_indexes(&self, indexes: &[i32]) -> Intervals {
        let add = Intervals(
            indexes
                .iter()
                .map(|&i| Interval { first: i, last: i })
                .collect(),
        );
        self.merge(&add)
    }

    /// The union of two sets.
    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut out: Vec<Interval> = Vec::with_capacity(self.0.len() + other.0.len());
        let mut push = |iv: Interval| match out.last_mut() {
            Some(last) if iv.first <= last.last + 1 => last.last = last.last.max(iv.last),
            _ => out.push(iv),
        };
        let (mut a, mut b) = (self.0.iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.first < y.first => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(iv) = next {
                push(*iv);
            }
        }
        Intervals(out)
    }

    /// How many indexes the set holds.
    pub fn total(&self) -> i32 {
        self.0
            .iter()
            .map(|iv| iv.last - iv.first + 1)
            .fold(0i32, i32::saturating_add)
    }

    pub fn has(&self, ix: i32) -> bool {
        let pos = self.0.partition_point(|iv| iv.last < ix);
        self.0.get(pos).is_some_and(|iv| iv.first <= ix)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Upstream `matchSucceededIndexesRule`: does `succeeded` hold every index of this set,
    /// or at least `count` of them?
    pub fn covered_by(&self, succeeded: &Intervals, count: Option<i32>) -> bool {
        let mut contains = 0;
        let (mut r, mut s) = (0, 0);
        while r < self.0.len() && s < succeeded.0.len() {
            let (rule, got) = (self.0[r], succeeded.0[s]);
            let overlap = rule.last.min(got.last) - rule.first.max(got.first) + 1;
            if overlap > 0 {
                contains += overlap;
            }
            match got.last.cmp(&rule.last) {
                std::cmp::Ordering::Less => s += 1,
                std::cmp::Ordering::Greater => r += 1,
                std::cmp::Ordering::Equal => {
                    s += 1;
                    r += 1;
                }
            }
        }
        contains == self.total() || count.is_some_and(|c| contains >= c)
    }

    /// Upstream `firstPendingIndexes`: the first `count` indexes below `completions` not in
    /// this (non-pending) set.
    pub fn first_missing(&self, count: usize, completions: i32) -> Vec<i32> {
        let mut out = Vec::with_capacity(count);
        let mut candidate = 0;
        for iv in &self.0 {
            while candidate < completions && out.len() < count && candidate < iv.first {
                out.push(candidate);
                candidate += 1;
            }
            candidate = candidate.max(iv.last + 1);
        }
        while candidate < completions && out.len() < count {
            out.push(candidate);
            candidate += 1;
        }
        out
    }
}

/// `0,1` for two adjacent indexes and `0-2` from three on, as upstream writes them.
impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, iv) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", iv.first)?;
            if iv.last == iv.first + 1 {
                write!(f, ",{}", iv.last)?;
            } else if iv.last > iv.first {
                write!(f, "-{}", iv.last)?;
            }
        }
        Ok(())
    }
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The pod's completion index, if its annotation holds a valid one.
pub fn of(pod: &Pod) -> Option<i32> {
    annotation(pod, COMPLETION_INDEX)?
        .parse::<i32>()
        .ok()
        .filter(|i| *i >= 0)
}

/// The index, if it is one of the Job's (below `completions`).
pub fn valid(pod: &Pod, completions: i32) -> Option<i32> {
    of(pod).filter(|i| *i < completions)
}

/// The set of indexes the pods carry.
pub fn set_of<'a>(pods: impl IntoIterator<Item = &'a Arc<Pod>>) -> Vec<i32> {
    let set: BTreeSet<i32> = pods.into_iter().filter_map(|p| of(p)).collect();
    set.into_iter().collect()
}

/// A count annotation; anything but an int32 ≥ 0 reads as 0, as upstream.
fn count(pod: &Pod, key: &str) -> i32 {
    annotation(pod, key)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(0)
}

pub fn failure_count(pod: &Pod) -> i32 {
    count(pod, INDEX_FAILURE_COUNT)
}

pub fn ignored_failure_count(pod: &Pod) -> i32 {
    count(pod, INDEX_IGNORED_FAILURE_COUNT)
}

/// Failures of the index so far, counted and ignored.
pub fn absolute_failure_count(pod: &Pod) -> i32 {
    failure_count(pod).saturating_add(ignored_failure_count(pod))
}

/// Upstream `appendDuplicatedIndexPodsForRemoval`: among active pods, the ones without a
/// valid index and, of each repeated index, all but the one `delete_first` ranks last.
/// Returns (to remove, kept).
pub fn duplicates(
    pods: &[Arc<Pod>],
    completions: i32,
    delete_first: impl Fn(&Pod, &Pod) -> std::cmp::Ordering,
) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let mut rm = Vec::new();
    let mut by_index: HashMap<i32, Vec<Arc<Pod>>> = HashMap::new();
    for p in pods {
        match valid(p, completions) {
            Some(ix) => by_index.entry(ix).or_default().push(p.clone()),
            None => rm.push(p.clone()),
        }
    }
    let mut keys: Vec<i32> = by_index.keys().copied().collect();
    keys.sort_unstable();
    let mut left = Vec::new();
    for ix in keys {
        let Some(mut same) = by_index.remove(&ix) else {
            continue;
        };
        same.sort_by(|a, b| delete_first(a, b));
        if let Some(best) = same.pop() {
            left.push(best);
        }
        rm.extend(same);
    }
    (rm, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: &str) -> Intervals {
        Intervals::parse(s, 100)
    }

    #[test]
    fn completed_indexes_use_upstream_compressed_format() {
        assert_eq!(
            Intervals::default().with_indexes(&[0, 1, 2]).to_string(),
            "0-2"
        );
        assert_eq!(
            Intervals::default().with_indexes(&[1, 3, 4, 5]).to_string(),
            "1,3-5"
        );
        // Two adjacent indexes are written as a pair, not a range.
        assert_eq!(
            Intervals::default().with_indexes(&[3, 4]).to_string(),
            "3,4"
        );
        assert_eq!(Intervals::default().to_string(), "");
    }

    #[test]
    fn parsing_merges_adjacent_intervals_and_cuts_at_completions() {
        assert_eq!(iv("1,2-4,7").to_string(), "1-4,7");
        assert_eq!(Intervals::parse("0-3,5,9-12", 10).to_string(), "0-3,5,9");
        assert_eq!(Intervals::parse("0,x,2", 10).to_string(), "0,2");
        assert_eq!(Intervals::parse("0,3-y,4", 10).to_string(), "0,4");
        assert_eq!(iv("0-4").total(), 5);
    }

    #[test]
    fn merging_and_membership() {
        let a = iv("0-2,10");
        let b = iv("3,8-9,20");
        assert_eq!(a.merge(&b).to_string(), "0-3,8-10,20");
        assert_eq!(a.with_indexes(&[1, 1, 11]).to_string(), "0-2,10,11");
        assert!(a.has(2) && a.has(10) && !a.has(3) && !a.has(11));
        assert!(!Intervals::default().has(0));
    }

    #[test]
    fn first_missing_skips_the_non_pending_indexes() {
        assert_eq!(iv("0,2-3").first_missing(3, 10), vec![1, 4, 5]);
        assert_eq!(iv("1-8").first_missing(5, 10), vec![0, 9]);
        assert_eq!(Intervals::default().first_missing(2, 1), vec![0]);
        assert!(iv("0-9").first_missing(2, 10).is_empty());
    }

    #[test]
    fn succeeded_indexes_rules_count_overlaps() {
        let rule = iv("0-2,5");
        assert!(rule.covered_by(&iv("0-5"), None));
        assert!(!rule.covered_by(&iv("0-2"), None));
        assert!(rule.covered_by(&iv("1-2"), Some(2)));
        assert!(!rule.covered_by(&iv("1,7"), Some(2)));
    }
}
