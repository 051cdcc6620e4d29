//! Resource-based scoring shared by NodeResourcesFit's strategies and
//! NodeResourcesBalancedAllocation (upstream `resourceAllocationScorer`).

use serde::Deserialize;

use crate::cache::NodeInfo;
use crate::framework::MAX_NODE_SCORE;
use crate::framework::types::PodInfo;
use crate::resource::{self, CPU, EPHEMERAL_STORAGE, MEMORY};

/// `resources[]` of a scoring strategy: a resource and its weight.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

/// cpu and memory, weight 1 each: upstream's default for every resource scorer.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: CPU.into(),
            weight: 1,
        },
        ResourceSpec {
            name: MEMORY.into(),
            weight: 1,
        },
    ]
}

/// Upstream's validation: weights 1..=100, no duplicates.
pub fn validate_resources(path: &str, specs: &[ResourceSpec]) -> Result<(), String> {
    for (i, r) in specs.iter().enumerate() {
        if !(1..=100).contains(&r.weight) {
            return Err(format!(
                "{path}[{i}].weight: Invalid value: {}: resource weight of {} should be in the range of 1-100",
                r.weight, r.name
            ));
        }
        if specs[..i].iter().any(|o| o.name == r.name) {
            return Err(format!("{path}[{i}].name: Duplicate value: \"{}\"", r.name));
        }
    }
    Ok(())
}

/// The pod's request of `name`; with `use_requested` false, cpu and memory count the
/// 100m / 200Mi defaults for containers without requests.
pub fn pod_request(pod: &PodInfo, name: &str, use_requested: bool) -> i64 {
    match name {
        CPU if !use_requested => pod.non_zero_cpu,
        MEMORY if !use_requested => pod.non_zero_memory,
        n => pod.requests.get(n),
    }
}

/// (allocatable, requested-after-placing-the-pod) of `name` on `node`; `(0, 0)` leaves the
/// resource out of the score (an extended resource the pod does not request, or that the
/// node does not have).
pub fn allocatable_requested(
    node: &NodeInfo,
    name: &str,
    pod_request: i64,
    use_requested: bool,
) -> (i64, i64) {
    match name {
        CPU => (
            node.allocatable.milli_cpu,
            if use_requested {
                node.requested.milli_cpu
            } else {
                node.non_zero_cpu
            } + pod_request,
        ),
        MEMORY => (
            node.allocatable.memory,
            if use_requested {
                node.requested.memory
            } else {
                node.non_zero_memory
            } + pod_request,
        ),
        EPHEMERAL_STORAGE => (
            node.allocatable.ephemeral_storage,
            node.requested.ephemeral_storage + pod_request,
        ),
        n if resource::is_scalar_resource_name(n) => {
            if pod_request == 0 || !node.allocatable.has_scalar(n) {
                (0, 0)
            } else {
                (
                    node.allocatable.scalar(n),
                    node.requested.scalar(n) + pod_request,
                )
            }
        }
        _ => (0, 0),
    }
}

/// Upstream `leastRequestedScore`: the free fraction, 0..=100.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// Upstream `mostRequestedScore`: the used fraction, capped at 100.
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// A point of a `requestedToCapacityRatio` shape: utilization 0..=100 → score 0..=10.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct ShapePoint {
    pub utilization: i64,
    pub score: i64,
}

/// Upstream `BuildBrokenLinearFunction` over a shape already scaled to 0..=100 scores.
pub fn broken_linear(shape: &[ShapePoint], p: i64) -> i64 {
    for (i, pt) in shape.iter().enumerate() {
        if p <= pt.utilization {
            if i == 0 {
                return pt.score;
            }
            let prev = shape[i - 1];
            return prev.score
                + (pt.score - prev.score) * (p - prev.utilization)
                    / (pt.utilization - prev.utilization);
        }
    }
    shape.last().map_or(0, |p| p.score)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        assert_eq!(least_requested_score(1000, 4000), 75);
        assert_eq!(least_requested_score(5000, 4000), 0);
        assert_eq!(most_requested_score(1000, 4000), 25);
        assert_eq!(most_requested_score(5000, 4000), 100);
        assert_eq!(least_requested_score(1, 0), 0);
        let shape = [
            ShapePoint {
                utilization: 0,
                score: 0,
            },
            ShapePoint {
                utilization: 100,
                score: 100,
            },
        ];
        assert_eq!(broken_linear(&shape, 30), 30);
        assert_eq!(broken_linear(&shape, 130), 100);
    }

    #[test]
    fn weights_are_validated() {
        let bad = vec![ResourceSpec {
            name: "cpu".into(),
            weight: 0,
        }];
        assert!(validate_resources("resources", &bad).is_err());
        assert!(validate_resources("resources", &default_resources()).is_ok());
    }
}
