//! DaemonSet RollingUpdate (upstream `daemon/update.go`). Without surge, old pods are
//! deleted while fewer than `maxUnavailable` nodes are without an available pod, and the
//! manage loop puts new ones in their place. With `maxSurge`, a new pod starts beside the
//! old one on up to `maxSurge` nodes at once, and the old one goes once the new one is
//! available. Deleted pods do not count as unavailable, so updates progress past nodes
//! that are down.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::manage::by_node;
use super::{Controller, Error, min_ready, nodes};
use crate::podutil;

pub fn is_rolling(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn rolling_params(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    if !is_rolling(ds) {
        return None;
    }
    ds.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()
}

/// Upstream `GetScaledValueFromIntOrPercent`, rounding up as both DaemonSet counts do.
fn scaled(v: Option<&IntOrString>, total: i32) -> i32 {
    match v {
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from((p * i64::from(total) + 99) / 100).unwrap_or(0)
        }
        None => 0,
    }
}

/// Upstream `AllowsSurge`: a rolling update with a non-zero maxSurge.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    rolling_params(ds)
        .and_then(|r| r.max_surge.as_ref())
        .is_some_and(|s| scaled(Some(s), 1) != 0)
}

/// (maxSurge, maxUnavailable) for `desired` nodes; both zero is taken as unavailable 1.
pub fn fenceposts(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let r = rolling_params(ds);
    let surge = scaled(r.and_then(|r| r.max_surge.as_ref()), desired);
    let unavailable = scaled(r.and_then(|r| r.max_unavailable.as_ref()), desired);
    if desired > 0 && surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// Upstream `findUpdatedPodsOnNode`: the node's new and old pod (not being deleted), or
/// None when it has more than one of either (the manage loop prunes those first).
fn new_and_old<'a>(
    pods: &'a [Arc<Pod>],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if nodes::is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p.as_ref());
    }
    Some((new, old))
}

impl Controller {
    /// Upstream `rollingUpdate`.
    pub(super) async fn rolling_update(
        &self,
        ds: &DaemonSet,
        node_list: &[Arc<Node>],
        hash: &str,
        key: &str,
    ) -> Result<(), Error> {
        let mut on_node = by_node(&self.owned_pods(ds), false);
        let mut desired = 0;
        for n in node_list {
            if nodes::should_run(n, ds).0 {
                desired += 1;
                on_node.entry(n.name_any()).or_default();
            }
        }
        let (max_surge, max_unavailable) = fenceposts(ds, desired);
        let generation = nodes::template_generation(ds);
        let now = jiff::Timestamp::now();
        let available = |p: &Pod| podutil::is_available(p, min_ready(ds), now);
        let node_by_name: HashMap<String, &Arc<Node>> =
            node_list.iter().map(|n| (n.name_any(), n)).collect();
        let should_run = |node: &str| {
            node_by_name
                .get(node)
                .is_some_and(|n| nodes::should_run(n, ds).0)
        };

        if max_surge == 0 {
            let mut unavailable = 0;
            let mut replace = Vec::new();
            let mut candidates = Vec::new();
            for pods in on_node.values() {
                let Some((new, old)) = new_and_old(pods, hash, generation) else {
                    unavailable += 1;
                    continue;
                };
                match (new, old) {
                    (None, None) | (Some(_), Some(_)) => unavailable += 1,
                    (Some(new), None) => {
                        if !available(new) {
                            unavailable += 1;
                        }
                    }
                    (None, Some(old)) => {
                        if !available(old) {
                            // Not serving anyway: replace it now.
                            replace.push(old.name_any());
                            unavailable += 1;
                        } else if unavailable < max_unavailable {
                            candidates.push(old.name_any());
                        }
                    }
                }
            }
            let room = usize::try_from(max_unavailable - unavailable)
                .unwrap_or(0)
                .min(candidates.len());
            replace.extend(candidates.into_iter().take(room));
            return self.sync_nodes(ds, key, replace, Vec::new(), hash).await;
        }

        let mut delete = Vec::new();
        let mut not_wanted = Vec::new();
        let mut candidates = Vec::new();
        let mut allowed = Vec::new();
        let (mut surging, mut n_available) = (0, 0);
        for (node, pods) in &on_node {
            let Some((new, old)) = new_and_old(pods, hash, generation) else {
                surging += 1;
                continue;
            };
            if let Some(p) = old.or(new)
                && available(p)
            {
                n_available += 1;
            }
            match (new, old) {
                (_, None) => {}
                (None, Some(old)) => {
                    if !should_run(node) {
                        if available(old) {
                            not_wanted.push(old.name_any());
                        } else {
                            delete.push(old.name_any());
                        }
                    } else if !available(old) {
                        allowed.push(node.clone());
                    } else if surging < max_surge {
                        candidates.push(node.clone());
                    }
                }
                (Some(new), Some(old)) => {
                    if available(new) {
                        delete.push(old.name_any());
                    } else {
                        surging += 1;
                    }
                }
            }
        }
        // With surge the owner expects full availability: pods on nodes that no longer want
        // one go only as others become available.
        let deletable = usize::try_from(n_available - desired)
            .unwrap_or(0)
            .min(not_wanted.len());
        delete.extend(not_wanted.into_iter().take(deletable));
        let room = usize::try_from(max_surge - surging)
            .unwrap_or(0)
            .min(candidates.len());
        allowed.extend(candidates.into_iter().take(room));
        self.sync_nodes(ds, key, delete, allowed, hash).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(rolling: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}
        }))
        .expect("ds")
    }

    #[test]
    fn percentages_round_up_and_zero_zero_means_one_unavailable() {
        assert_eq!(
            fenceposts(&ds(json!({"maxUnavailable": "10%", "maxSurge": 0})), 3),
            (0, 1)
        );
        assert_eq!(
            fenceposts(&ds(json!({"maxUnavailable": "50%", "maxSurge": 0})), 3),
            (0, 2)
        );
        assert_eq!(
            fenceposts(&ds(json!({"maxUnavailable": 0, "maxSurge": 0})), 3),
            (0, 1)
        );
        assert_eq!(
            fenceposts(&ds(json!({"maxUnavailable": 0, "maxSurge": "25%"})), 4),
            (1, 0)
        );
        assert!(allows_surge(&ds(
            json!({"maxUnavailable": 0, "maxSurge": 1})
        )));
        assert!(!allows_surge(&ds(
            json!({"maxUnavailable": 1, "maxSurge": 0})
        )));
    }
}
