//! NodeResourcesBalancedAllocation: prefer nodes whose resources would be used in similar
//! fractions after placing the pod (1 − standard deviation of the fractions), as upstream
//! `noderesources.BalancedAllocation`. Best-effort pods are not scored.

use std::sync::Arc;

use serde::Deserialize;

use super::resource_allocation::{
    ResourceSpec, allocatable_requested, default_resources, pod_request, validate_resources,
};
use crate::cache::NodeInfo;
use crate::framework::{Cycle, Handle, MAX_NODE_SCORE, Plugin, PodInfo, Points, Slot, Status};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

#[derive(Clone, Debug, Default, Deserialize)]
struct Args {
    #[serde(default)]
    resources: Option<Vec<ResourceSpec>>,
}

pub fn new(args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = match args {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("NodeResourcesBalancedAllocationArgs: {e}"))?,
        None => Args::default(),
    };
    let resources = args.resources.unwrap_or_else(default_resources);
    validate_resources("resources", &resources)?;
    Ok(Arc::new(Balanced { resources }))
}

struct Balanced {
    resources: Vec<ResourceSpec>,
}

/// Upstream `balancedResourceScorer`.
fn balanced_score(fractions: &[f64]) -> i64 {
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl Plugin for Balanced {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::PRE_SCORE.or(Points::SCORE)
    }

    fn pre_score(&self, _cx: &Cycle, pod: &PodInfo, _s: &mut Slot, _nodes: &[usize]) -> Status {
        if self
            .resources
            .iter()
            .all(|r| pod_request(pod, &r.name, true) == 0)
        {
            Status::skip()
        } else {
            Status::success()
        }
    }

    fn score(&self, _cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Result<i64, Status> {
        // At most a handful of resources: a small stack buffer, no allocation.
        let mut buf = [0f64; 8];
        let mut n = 0;
        let mut heap = Vec::new();
        for r in &self.resources {
            let req = pod_request(pod, &r.name, true);
            let (alloc, requested) = allocatable_requested(node, &r.name, req, true);
            if alloc == 0 {
                continue;
            }
            let f = (requested as f64 / alloc as f64).min(1.0);
            if n < buf.len() {
                buf[n] = f;
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&buf);
                }
                heap.push(f);
            }
            n += 1;
        }
        Ok(if heap.is_empty() {
            balanced_score(&buf[..n])
        } else {
            balanced_score(&heap)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    #[test]
    fn balanced_fractions_score_higher() {
        let n = node(json!({"metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "4", "memory": "10000", "pods": "110"}}}));
        let c = cache_with(vec![n], vec![]);
        let node = c.node_by_name("n").expect("n");
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let score = |pd: &PodInfo| {
            with_cycle(&c, |cx| {
                if p.pre_score(cx, pd, &mut Slot::default(), &[]).is_skip() {
                    return None;
                }
                Some(p.score(cx, pd, &Slot::default(), node).expect("score"))
            })
        };
        // cpu 3/4 = .75, memory 5000/10000 = .5 → std .125 → 87.
        assert_eq!(score(&pod_req("a", "3", "5000")), Some(87));
        // cpu 2/4 = .5, memory .5 → 100.
        assert_eq!(score(&pod_req("b", "2", "5000")), Some(100));
        assert_eq!(score(&pod_req("besteffort", "", "")), None);
        assert_eq!(balanced_score(&[0.1, 0.4, 0.7]), 75);
    }
}
