//! ImageLocality: prefer nodes that already have the pod's images, weighted by image size and
//! damped by how many nodes have them (so one popular image does not pile pods up), as
//! upstream `imagelocality`.

use std::sync::Arc;

use crate::cache::NodeInfo;
use crate::framework::{Cycle, Handle, MAX_NODE_SCORE, Plugin, PodInfo, Points, Slot, Status};

pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
/// Below this total the score is 0.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container: at or above this the score is 100.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub fn new(_args: Option<&serde_json::Value>, _h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(ImageLocality))
}

struct ImageLocality;

/// Upstream `calculatePriority`.
fn priority(sum: i64, containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }

    fn points(&self) -> Points {
        Points::SCORE
    }

    fn score(&self, cx: &Cycle, pod: &PodInfo, _s: &Slot, node: &NodeInfo) -> Result<i64, Status> {
        if node.images.is_empty() {
            return Ok(0);
        }
        let total = cx.cache.num_nodes().max(1) as f64;
        let mut sum = 0i64;
        for name in &pod.images {
            if let Some(&size) = node.images.get(name) {
                let spread = f64::from(cx.cache.image_num_nodes(name)) / total;
                sum += (size as f64 * spread) as i64;
            }
        }
        Ok(priority(sum, pod.images.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::helper::testing::*;
    use serde_json::json;

    #[test]
    fn bigger_and_rarer_images_score_by_spread() {
        let with_images = |name: &str, images: serde_json::Value| {
            node(
                json!({"metadata": {"name": name}, "status": {"images": images,
                "allocatable": {"cpu": "1", "pods": "10"}}}),
            )
        };
        let c = cache_with(
            vec![
                with_images(
                    "big",
                    json!([{"names": ["registry/app:1"], "sizeBytes": 500 * MB}]),
                ),
                with_images(
                    "both",
                    json!([{"names": ["registry/app:1"], "sizeBytes": 500 * MB},
                                           {"names": ["sidecar:latest"], "sizeBytes": 300 * MB}]),
                ),
                with_images("none", json!([])),
            ],
            vec![],
        );
        let p = new(
            None,
            &Handle {
                profile: String::new(),
            },
        )
        .expect("plugin");
        let pd = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "registry/app:1"}, {"name": "b", "image": "sidecar"}]}}));
        let score = |n: &str| {
            let node = c.node_by_name(n).expect("node");
            with_cycle(&c, |cx| p.score(cx, &pd, &Slot::default(), node)).expect("score")
        };
        // app: 500MB × 2/3 nodes; sidecar: 300MB × 1/3; two containers → 2000MB ceiling.
        let app = ((500 * MB) as f64 * (2.0 / 3.0)) as i64;
        let side = ((300 * MB) as f64 * (1.0 / 3.0)) as i64;
        assert_eq!(score("big"), priority(app, 2));
        assert_eq!(score("both"), priority(app + side, 2));
        assert_eq!(score("none"), 0);
        assert!(score("both") > score("big"));
    }
}
