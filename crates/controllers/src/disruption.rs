//! Disruption controller (upstream `pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status — expected, desired and currently healthy pods, and so how
//! many voluntary disruptions (evictions) are allowed now — which the eviction API and
//! `kubectl get pdb` read.
//!
//! `minAvailable` as a number counts the selected pods; a percentage or `maxUnavailable`
//! needs the pods' controllers' scale (a Deployment through its ReplicaSet, a ReplicaSet, a
//! StatefulSet), and a selected pod without one makes the budget `SyncFailed`, as upstream.

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, controller_ref, key_of, podutil, split_key};

pub const NAME: &str = "disruption";
/// Upstream forgets a disrupted pod the eviction API recorded after this long.
const DISRUPTED_POD_TTL: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    budgets: Arc<Informer<PodDisruptionBudget>>,
    pods: Arc<Informer<Pod>>,
    sets: Arc<Informer<ReplicaSet>>,
    deployments: Arc<Informer<Deployment>>,
    statefulsets: Arc<Informer<StatefulSet>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let budgets = ctx.informers.get::<PodDisruptionBudget>();
    let pods = ctx.informers.get::<Pod>();
    let sets = ctx.informers.get::<ReplicaSet>();
    let deployments = ctx.informers.get::<Deployment>();
    let statefulsets = ctx.informers.get::<StatefulSet>();
    let queue: Queue<String> = Queue::new();
    budgets.on_change({
        let q = queue.clone();
        move |ch| q.add(key_of(ch.object().as_ref()))
    });
    // Any pod or scale change in a namespace may change its budgets.
    let all_in = {
        let (q, budgets) = (queue.clone(), budgets.clone());
        move |ns: &str| {
            for b in budgets.list(ns) {
                q.add(key_of(b.as_ref()));
            }
        }
    };
    pods.on_change({
        let f = all_in.clone();
        move |ch| f(&ch.object().namespace().unwrap_or_default())
    });
    sets.on_change({
        let f = all_in.clone();
        move |ch| f(&ch.object().namespace().unwrap_or_default())
    });
    deployments.on_change({
        let f = all_in.clone();
        move |ch| f(&ch.object().namespace().unwrap_or_default())
    });
    statefulsets.on_change(move |ch| all_in(&ch.object().namespace().unwrap_or_default()));
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        budgets,
        pods,
        sets,
        deployments,
        statefulsets,
    });
    Box::pin(async move {
        c.budgets.wait_synced().await;
        c.pods.wait_synced().await;
        c.sets.wait_synced().await;
        c.deployments.wait_synced().await;
        c.statefulsets.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

/// Upstream `GetScaledValueFromIntOrPercent` (rounding up).
fn scaled(v: &IntOrString, total: i32) -> i32 {
    match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from((p * i64::from(total) + 99) / 100).unwrap_or(0)
        }
    }
}

impl Controller {
    /// The summed scale of the selected pods' controllers, each counted once.
    fn expected_scale(&self, ns: &str, pods: &[Arc<Pod>]) -> Result<i32, String> {
        let mut seen: BTreeMap<String, i32> = BTreeMap::new();
        for pod in pods {
            let Some(r) = controller_ref::controller_of(pod.as_ref()) else {
                return Err(format!(
                    "found no controller ref for pod \"{}\"",
                    pod.name_any()
                ));
            };
            let scale = match (r.api_version.as_str(), r.kind.as_str()) {
                ("apps/v1", "ReplicaSet") => {
                    let rs = self
                        .sets
                        .get(ns, &r.name)
                        .filter(|rs| rs.uid().as_deref() == Some(&r.uid));
                    let Some(rs) = rs else {
                        return Err(format!(
                            "found no controllers for pod \"{}\"",
                            pod.name_any()
                        ));
                    };
                    match controller_ref::owner_name::<Deployment>(rs.as_ref()) {
                        Some(d) => match self.deployments.get(ns, d) {
                            Some(d) => (
                                "Deployment",
                                d.name_any(),
                                d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                            ),
                            None => {
                                return Err(format!(
                                    "found no controllers for pod \"{}\"",
                                    pod.name_any()
                                ));
                            }
                        },
                        None => (
                            "ReplicaSet",
                            rs.name_any(),
                            rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                        ),
                    }
                }
                ("apps/v1", "StatefulSet") => match self.statefulsets.get(ns, &r.name) {
                    Some(s) => (
                        "StatefulSet",
                        s.name_any(),
                        s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    ),
                    None => {
                        return Err(format!(
                            "found no controllers for pod \"{}\"",
                            pod.name_any()
                        ));
                    }
                },
                _ => {
                    return Err(format!(
                        "found no controllers for pod \"{}\"",
                        pod.name_any()
                    ));
                }
            };
            seen.insert(format!("{}/{}", scale.0, scale.1), scale.2);
        }
        Ok(seen.values().sum())
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(pdb) = self.budgets.get(ns, name) else {
            return Ok(Next::Done);
        };
        let spec = pdb.spec.clone().unwrap_or_default();
        let selector = LabelSelector::from_api(spec.selector.as_ref())
            .unwrap_or_else(|_| LabelSelector::nothing());
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list(ns)
            .into_iter()
            .filter(|p| selector.matches(p.labels()))
            .collect();
        let old = pdb.status.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        // Evictions recorded by the API server, until their pods go or they expire.
        let disrupted: BTreeMap<String, Time> = old
            .disrupted_pods
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(pod, at)| {
                at.0 + DISRUPTED_POD_TTL > now
                    && pods
                        .iter()
                        .any(|p| p.name_any() == *pod && p.metadata.deletion_timestamp.is_none())
            })
            .collect();
        let healthy = i32::try_from(
            pods.iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && !disrupted.contains_key(&p.name_any())
                })
                .filter(|p| podutil::is_ready(p))
                .count(),
        )
        .unwrap_or(i32::MAX);
        let count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
        let computed = match (&spec.max_unavailable, &spec.min_available) {
            (Some(max), _) => self
                .expected_scale(ns, &pods)
                .map(|expected| (expected, (expected - scaled(max, expected)).max(0))),
            (None, Some(IntOrString::Int(min))) => Ok((count, *min)),
            (None, Some(min)) => self
                .expected_scale(ns, &pods)
                .map(|expected| (expected, scaled(min, expected))),
            (None, None) => Ok((count, 0)),
        };
        let mut status = PodDisruptionBudgetStatus {
            observed_generation: pdb.metadata.generation,
            current_healthy: healthy,
            disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
            ..Default::default()
        };
        let cond = match computed {
            Ok((expected, desired)) => {
                status.expected_pods = expected;
                status.desired_healthy = desired;
                status.disruptions_allowed = (healthy - desired).max(0);
                if status.disruptions_allowed > 0 {
                    ("True", "SufficientPods", String::new())
                } else {
                    ("False", "InsufficientPods", String::new())
                }
            }
            Err(msg) => ("False", "SyncFailed", msg),
        };
        let prior = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionAllowed");
        let transition = match prior {
            Some(p) if p.status == cond.0 => p.last_transition_time.clone(),
            _ => Time(now),
        };
        status.conditions = Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: cond.0.into(),
            reason: cond.1.into(),
            message: cond.2,
            observed_generation: pdb.metadata.generation,
            last_transition_time: transition,
        }]);
        if pdb.status.as_ref() == Some(&status) {
            return Ok(Next::Done);
        }
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut body = serde_json::json!({"status": status});
        if status.disrupted_pods.is_none() {
            body["status"]["disruptedPods"] = serde_json::Value::Null;
        }
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => Ok(Next::Done),
            Err(e) if crate::is_not_found(&e) => Ok(Next::Done),
            Err(e) => Err(Error::UpdateStatus(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 3), 2);
        assert_eq!(scaled(&IntOrString::String("10%".into()), 10), 1);
        assert_eq!(scaled(&IntOrString::Int(2), 10), 2);
    }
}
