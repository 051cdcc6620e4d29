//! NodeResourcesFit: a node fits when its allocatable minus what its pods request covers
//! the pod's requests (cpu, memory, ephemeral-storage, pod count, extended resources), and
//! scores nodes by a strategy: `LeastAllocated` (default, spreads), `MostAllocated` (packs)
//! or `RequestedToCapacityRatio` (upstream `noderesources.Fit`).

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use super::resource_allocation::{
    ResourceSpec, ShapePoint, allocatable_requested, broken_linear, default_resources,
    least_requested_score, most_requested_score, pod_request, validate_resources,
};
use crate::cache::NodeInfo;
use crate::framework::{
    Action, ClusterEvent, Code, Cycle, EventResource, Handle, MAX_NODE_SCORE, Plugin, PodInfo,
    Points, Slot, Status,
};
use crate::resource::is_extended_resource_name;

pub const NAME: &str = "NodeResourcesFit";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default)]
    ignored_resources: Vec<String>,
    #[serde(default)]
    ignored_resource_groups: Vec<String>,
    #[serde(default)]
    scoring_strategy: Option<StrategyArgs>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StrategyArgs {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
    #[serde(default)]
    requested_to_capacity_ratio: Option<RatioArgs>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct RatioArgs {
    #[serde(default)]
    shape: Vec<ShapePoint>,
}

/// How NodeResourcesFit scores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// The shape with scores already scaled to 0..=100.
    RequestedToCapacityRatio(Vec<ShapePoint>),
}

pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = match args {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("NodeResourcesFitArgs: {e}"))?
        }
        None => Args::default(),
    };
    let strategy_args = args.scoring_strategy.unwrap_or_default();
    let resources = strategy_args.resources.unwrap_or_else(default_resources);
    validate_resources("scoringStrategy.resources", &resources)?;
    let strategy = match strategy_args.kind.as_deref().unwrap_or("LeastAllocated") {
        "LeastAllocated" => Strategy::LeastAllocated,
        "MostAllocated" => Strategy::MostAllocated,
        "RequestedToCapacityRatio" => {
            let shape = strategy_args
                .requested_to_capacity_ratio
                .map(|r| r.shape)
                .unwrap_or_default();
            if shape.is_empty() {
                return Err("scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified".into());
            }
            for w in shape.windows(2) {
                if w[1].utilization <= w[0].utilization {
                    return Err("scoringStrategy.requestedToCapacityRatio.shape: Invalid value: utilization values must be sorted in increasing order".into());
                }
            }
            // Shapes score 0..=10; upstream scales them to the node score range.
            Strategy::RequestedToCapacityRatio(
                shape
                    .into_iter()
                    .map(|p| ShapePoint {
                        utilization: p.utilization,
                        score: p.score * (MAX_NODE_SCORE / 10),
                    })
                    .collect(),
            )
        }
        other => return Err(format!("scoring strategy {other} is not supported")),
    };
    Ok(Arc::new(Fit {
        ignored_resources: args.ignored_resources,
        ignored_groups: args.ignored_resource_groups,
        strategy,
        resources,
    }))
}

struct Fit {
    ignored_resources: Vec<String>,
    ignored_groups: Vec<String>,
    strategy: Strategy,
    resources: Vec<ResourceSpec>,
}

impl Fit {
    fn ignored(&self, name: &str) -> bool {
        is_extended_resource_name(name)
            && (self.ignored_resources.iter().any(|r| r == name)
                || (!self.ignored_groups.is_empty()
                    && self
                        .ignored_groups
                        .iter()
                        .any(|g| name.split('/').next() == Some(g.as_str()))))
    }

    /// Upstream `fitsRequest`: every insufficient resource, in upstream's order.
    fn insufficient(&self, pod: &PodInfo, node: &NodeInfo) -> Vec<Cow<'static, str>> {
        let mut out = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            out.push(Cow::Borrowed("Too many pods"));
        }
        let req = &pod.requests;
        if req.is_zero() {
            return out;
        }
        let (a, r) = (&node.allocatable, &node.requested);
        if req.milli_cpu > 0 && req.milli_cpu > a.milli_cpu - r.milli_cpu {
            out.push(Cow::Borrowed("Insufficient cpu"));
        }
        if req.memory > 0 && req.memory > a.memory - r.memory {
            out.push(Cow::Borrowed("Insufficient memory"));
        }
        if req.ephemeral_storage > 0
            && req.ephemeral_storage > a.ephemeral_storage - r.ephemeral_storage
        {
            out.push(Cow::Borrowed("Insufficient ephemeral-storage"));
        }
        for (name, q) in &req.scalar {
            if *q == 0 || self.ignored(name) {
                continue;
            }
            if *q > a.scalar(name) - r.scalar(name) {
                out.push(Cow::Owned(format!("Insufficient {name}")));
            }
        }
        out
    }

    fn fits(&self, pod: &PodInfo, node: &NodeInfo) -> bool {
        // The common case without allocating: check, and only build reasons on failure.
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            return false;
        }
        let req = &pod.requests;
        let (a, r) = (&node.allocatable, &node.requested);
        (req.milli_cpu == 0 || req.milli_cpu <= a.milli_cpu - r.milli_cpu)
            && (req.memory == 0 || req.memory <= a.memory - r.memory)
            && (req.ephemeral_storage == 0
                || req.ephemeral_storage <= a.ephemeral_storage - r.ephemeral_storage)
            && req.scalar.iter().all(|(name, q)| {
                *q == 0 || self.ignored(name) || *q <= a.scalar(name) - r.scalar(name)
            })
    }
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::PRE_FILTER
            .or(Points::FILTER)
            .or(Points::PRE_SCORE)
            .or(Points::SCORE)
    }

    fn events(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(
                EventResource::AssignedPod,
                Action::DELETE.or(Action::UPDATE_POD_SCALE_DOWN),
            ),
            ClusterEvent::new(
                EventResource::Node,
                Action::ADD
                    .or(Action::UPDATE_NODE_ALLOCATABLE)
                    .or(Action::UPDATE_NODE_TAINT)
                    .or(Action::UPDATE_NODE_LABEL),
            ),
        ]
    }

    fn filter(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Status {
        if self.fits(pod, node) {
            Status::success()
        } else {
            Status::with_reasons(Code::Unschedulable, self.insufficient(pod, node))
        }
    }

    fn score(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Result<i64, Status> {
        let (mut total, mut weights) = (0i64, 0i64);
        for r in &self.resources {
            let req = pod_request(pod, &r.name, false);
            let (alloc, requested) = allocatable_requested(node, &r.name, req, false);
            if alloc == 0 {
                continue;
            }
            match &self.strategy {
                Strategy::LeastAllocated => {
                    total += least_requested_score(requested, alloc) * r.weight;
                    weights += r.weight;
                }
                Strategy::MostAllocated => {
                    total += most_requested_score(requested, alloc) * r.weight;
                    weights += r.weight;
                }
                Strategy::RequestedToCapacityRatio(shape) => {
                    let utilization = if requested > alloc {
                        100
                    } else {
                        requested * 100 / alloc
                    };
                    let s = broken_linear(shape, utilization);
                    if s > 0 {
                        total += s * r.weight;
                        weights += r.weight;
                    }
                }
            }
        }
        if weights == 0 {
            return Ok(0);
        }
        Ok(match self.strategy {
            Strategy::RequestedToCapacityRatio(_) => (total as f64 / weights as f64).round() as i64,
            _ => total / weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    fn plugin(args: serde_json::Value) -> Arc<dyn Plugin> {
        new(
            Some(&args),
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin")
    }

    #[test]
    fn filter_reports_each_insufficient_resource() {
        let n = simple_node("n1", json!({}), "2", "4Gi");
        let used = pod(
            json!({"metadata": {"name": "used"}, "spec": {"nodeName": "n1",
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}}}]}}),
        );
        let c = cache_with(vec![n], vec![used]);
        let node = c.node_by_name("n1").expect("n1");
        let p = plugin(json!({}));
        let cases = [
            (pod_req("fits", "500m", "1Gi"), vec![]),
            (pod_req("cpu", "600m", ""), vec!["Insufficient cpu"]),
            (
                pod_req("both", "1", "4Gi"),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (pod_req("none", "", ""), vec![]),
        ];
        for (pd, want) in cases {
            let s = with_cycle(&c, |cx| p.filter(cx, &pd, &Slot::default(), node));
            assert_eq!(s.reasons(), want.as_slice(), "{}", pd.name());
        }
    }

    #[test]
    fn extended_resources_and_pod_count() {
        let gpu = node(json!({"metadata": {"name": "gpu"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "1", "nvidia.com/gpu": "2"}}}));
        let c = cache_with(
            vec![gpu, simple_node("plain", json!({}), "4", "8Gi")],
            vec![],
        );
        let want = pod(json!({"metadata": {"name": "g"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}]}}));
        let p = plugin(json!({}));
        let on = |name: &str| {
            let n = c.node_by_name(name).expect("node");
            with_cycle(&c, |cx| p.filter(cx, &want, &Slot::default(), n))
        };
        assert!(on("gpu").is_success());
        assert_eq!(on("plain").reasons(), ["Insufficient nvidia.com/gpu"]);
        let ignoring = plugin(json!({"ignoredResourceGroups": ["nvidia.com"]}));
        let n = c.node_by_name("plain").expect("node");
        assert!(with_cycle(&c, |cx| ignoring.filter(cx, &want, &Slot::default(), n)).is_success());

        let full = pod(json!({"metadata": {"name": "x"}, "spec": {"nodeName": "gpu"}}));
        let c = cache_with(
            vec![node(
                json!({"metadata": {"name": "gpu"}, "status": {"allocatable": {"pods": "1"}}}),
            )],
            vec![full],
        );
        let n = c.node_by_name("gpu").expect("node");
        let s = with_cycle(&c, |cx| {
            p.filter(cx, &pod_req("y", "", ""), &Slot::default(), n)
        });
        assert_eq!(s.reasons(), ["Too many pods"]);
    }

    #[test]
    fn least_and_most_allocated_scores() {
        // Upstream's example: node 4000m/10000, pod requests 3000m/5000 → least
        // (25 + 50) / 2 = 37, most (75 + 50) / 2 = 62.
        let n = node(json!({"metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "4", "memory": "10000", "pods": "110"}}}));
        let c = cache_with(vec![n], vec![]);
        let node = c.node_by_name("n").expect("n");
        let pd = pod_req("p", "3", "5000");
        let score = |args| {
            let p = plugin(args);
            with_cycle(&c, |cx| p.score(cx, &pd, &Slot::default(), node)).expect("score")
        };
        assert_eq!(score(json!({})), 37);
        assert_eq!(
            score(json!({"scoringStrategy": {"type": "MostAllocated"}})),
            62
        );
        assert_eq!(
            score(json!({"scoringStrategy": {"type": "MostAllocated",
                "resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}})),
            (75 * 3 + 50) / 4
        );
        assert_eq!(
            score(
                json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}})
            ),
            63
        );
        assert!(
            new(
                Some(&json!({"scoringStrategy": {"type": "Bogus"}})),
                &Handle {
                    profile: String::new()
                }
            )
            .is_err()
        );
        assert!(
            new(
                Some(&json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 0}]}})),
                &Handle {
                    profile: String::new()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn unrequested_cpu_counts_as_default_when_scoring() {
        let n = node(json!({"metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "1", "memory": "1000Mi", "pods": "110"}}}));
        let c = cache_with(vec![n], vec![]);
        let node = c.node_by_name("n").expect("n");
        let p = plugin(json!({}));
        // 100m of 1000m used → 90; 200Mi of 1000Mi → 80; mean 85.
        let s = with_cycle(&c, |cx| {
            p.score(cx, &pod_req("p", "", ""), &Slot::default(), node)
        });
        assert_eq!(s.expect("score"), 85);
    }
}
