//! ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps `spec.replicas`
//! active pods matching the selector, adopting orphans and releasing pods it no longer
//! selects, and reports replicas / fullyLabeled / ready / available in the status.
//!
//! Creations go out in slow-start batches (1, 2, 4, …, at most 500 per sync); surplus pods
//! are deleted least-valuable first, ranked as upstream (unscheduled, pending, not ready,
//! cheaper `pod-deletion-cost`, crowded node, recently ready, more restarts, newer).
//! Expectations hold a ReplicaSet's next sync until its own writes show up in the cache.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller_ref::{self, Expectations, Owner};
use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, key_of, podutil, split_key};

pub const NAME: &str = "replicaset";
const COMPONENT: &str = "replicaset-controller";
/// Upstream's `BurstReplicas`: creations or deletions per sync.
const BURST: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming pods")]
    Claim(#[source] kube::Error),
    #[error("creating pods")]
    CreatePods(#[source] kube::Error),
    #[error("deleting pods")]
    DeletePods(#[source] kube::Error),
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    expectations: Expectations,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let queue: Queue<String> = Queue::new();
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        expectations: Expectations::default(),
    });
    sets.on_change({
        let q = queue.clone();
        move |ch| q.add(key_of(ch.object().as_ref()))
    });
    pods.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.pod_changed(&q, ch)
    });
    Box::pin(async move {
        sets.wait_synced().await;
        pods.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

fn owner_key(pod: &Pod) -> Option<String> {
    let name = controller_ref::owner_name::<ReplicaSet>(pod)?;
    Some(format!("{}/{name}", pod.namespace().unwrap_or_default()))
}

impl Controller {
    /// Upstream's add/update/deletePod handlers: observe expectations, queue the owner (or
    /// every ReplicaSet that could adopt an orphan).
    fn pod_changed(&self, q: &Queue<String>, ch: &Change<'_, Pod>) {
        match ch {
            Change::Added(pod) => match owner_key(pod) {
                Some(k) => {
                    if pod.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(&k, &pod.name_any());
                    } else {
                        self.expectations.creation_observed(&k);
                    }
                    q.add(k);
                }
                None => self.queue_adopters(q, pod),
            },
            Change::Updated { old, new } => {
                let (ok, nk) = (owner_key(old), owner_key(new));
                if ok != nk
                    && let Some(k) = ok
                {
                    q.add(k);
                }
                match nk {
                    Some(k) => {
                        if new.metadata.deletion_timestamp.is_some() {
                            self.expectations.deletion_observed(&k, &new.name_any());
                        }
                        q.add(k);
                    }
                    None => {
                        if old.labels() != new.labels() || owner_key(old).is_some() {
                            self.queue_adopters(q, new);
                        }
                    }
                }
            }
            Change::Deleted(pod) => {
                if let Some(k) = owner_key(pod) {
                    self.expectations.deletion_observed(&k, &pod.name_any());
                    q.add(k);
                }
            }
        }
    }

    fn queue_adopters(&self, q: &Queue<String>, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        let ns = pod.namespace().unwrap_or_default();
        for rs in self.sets.list(&ns) {
            let sel = rs.spec.as_ref().map(|s| &s.selector);
            if LabelSelector::from_api(sel).is_ok_and(|s| !s.is_empty() && s.matches(pod.labels()))
            {
                q.add(key_of(rs.as_ref()));
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(rs) = self.sets.get(ns, name) else {
            self.expectations.forget(key);
            return Ok(Next::Done);
        };
        let spec = rs.spec.clone().unwrap_or_default();
        let selector = match LabelSelector::from_api(Some(&spec.selector)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(ns, name, error = %e, "invalid selector");
                return Ok(Next::Done);
            }
        };
        // Checked before reading the cache: writes seen since are in what we read.
        let satisfied = self.expectations.satisfied(key);
        let active: Vec<Arc<Pod>> = self
            .pods
            .list(ns)
            .into_iter()
            .filter(|p| podutil::is_active(p))
            .collect();
        let owner = Owner {
            reference: controller_ref::reference(rs.as_ref()),
            selector: &selector,
            deleting: rs.metadata.deletion_timestamp.is_some(),
        };
        let pods_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let pods = controller_ref::claim(&pods_api, &owner, active)
            .await
            .map_err(Error::Claim)?;
        let mut manage_err = None;
        if satisfied && rs.metadata.deletion_timestamp.is_none() {
            manage_err = self.manage(&rs, key, &pods, &pods_api).await.err();
        }
        let now = jiff::Timestamp::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let status = calculate_status(&rs, &pods, min_ready, now, manage_err.as_ref());
        if Some(&status) != rs.status.as_ref() {
            let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), ns);
            let patch = json!({"status": status_patch(&status)});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if crate::is_not_found(&e) => return Ok(Next::Done),
                Err(e) => return Err(Error::UpdateStatus(e)),
            }
        }
        if let Some(e) = manage_err {
            return Err(e);
        }
        Ok(next_availability_check(&pods, min_ready, now))
    }

    async fn manage(
        &self,
        rs: &ReplicaSet,
        key: &str,
        pods: &[Arc<Pod>],
        api: &Api<Pod>,
    ) -> Result<(), Error> {
        let want = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0);
        let want = usize::try_from(want).unwrap_or(0);
        if pods.len() < want {
            let n = (want - pods.len()).min(BURST);
            self.expectations.expect_creations(key, n);
            let template = rs
                .spec
                .as_ref()
                .and_then(|s| s.template.clone())
                .unwrap_or_default();
            let pod = pod_from_template(&template, controller_ref::reference(rs), &rs.name_any());
            let created = slow_start(n, |_| {
                let pod = pod.clone();
                async move { api.create(&PostParams::default(), &pod).await }
            })
            .await;
            let mut first_err = None;
            for r in &created.results {
                match r {
                    Ok(p) => self.ctx.events.normal(
                        COMPONENT,
                        rs,
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    ),
                    Err(e) => {
                        self.expectations.creation_observed(key);
                        self.ctx.events.warning(
                            COMPONENT,
                            rs,
                            "FailedCreate",
                            format!("Error creating: {}", api_message(e)),
                        );
                    }
                }
            }
            for _ in 0..created.skipped {
                self.expectations.creation_observed(key);
            }
            for r in created.results {
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
            return first_err.map_or(Ok(()), |e| Err(Error::CreatePods(e)));
        }
        if pods.len() > want {
            let n = (pods.len() - want).min(BURST);
            let related = self.related_pods(rs);
            let victims = pods_to_delete(pods, &related, n);
            self.expectations
                .expect_deletions(key, victims.iter().map(|p| p.name_any()));
            let deletes = victims.iter().map(|p| async move {
                let name = p.name_any();
                (
                    name.clone(),
                    api.delete(&name, &DeleteParams::default()).await,
                )
            });
            let mut first_err = None;
            for (name, r) in futures::future::join_all(deletes).await {
                match r {
                    Ok(_) => self.ctx.events.normal(
                        COMPONENT,
                        rs,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    ),
                    Err(e) if crate::is_not_found(&e) => {
                        self.expectations.deletion_observed(key, &name)
                    }
                    Err(e) => {
                        self.expectations.deletion_observed(key, &name);
                        self.ctx.events.warning(
                            COMPONENT,
                            rs,
                            "FailedDelete",
                            format!("Error deleting: {}", api_message(&e)),
                        );
                        first_err.get_or_insert(e);
                    }
                }
            }
            return first_err.map_or(Ok(()), |e| Err(Error::DeletePods(e)));
        }
        Ok(())
    }

    /// Pods of every ReplicaSet sharing this one's controller (a Deployment's old and new
    /// sets): they decide how crowded a node is.
    fn related_pods(&self, rs: &ReplicaSet) -> Vec<Arc<Pod>> {
        let ns = rs.namespace().unwrap_or_default();
        let sets: Vec<String> = match controller_ref::controller_of(rs) {
            Some(owner) => self
                .sets
                .list(&ns)
                .into_iter()
                .filter(|s| {
                    controller_ref::controller_of(s.as_ref()).is_some_and(|o| o.uid == owner.uid)
                })
                .filter_map(|s| s.uid())
                .collect(),
            None => rs.uid().into_iter().collect(),
        };
        self.pods
            .list(&ns)
            .into_iter()
            .filter(|p| {
                controller_ref::controller_of(p.as_ref()).is_some_and(|o| sets.contains(&o.uid))
            })
            .filter(|p| podutil::is_active(p))
            .collect()
    }
}

/// The text of an API error, as upstream puts it into events.
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// A pod for `template`, controlled by `owner`, named `<prefix>-<random>`.
pub(crate) fn pod_from_template(
    template: &PodTemplateSpec,
    owner: OwnerReference,
    prefix: &str,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

pub(crate) struct SlowStart<T> {
    pub results: Vec<Result<T, kube::Error>>,
    /// Calls not made because an earlier batch failed.
    pub skipped: usize,
}

/// Upstream's `slowStartBatch`: calls `f` `n` times in batches of 1, 2, 4, … and stops after
/// a batch with a failure, so a quota or admission error costs one call, not hundreds.
pub(crate) async fn slow_start<T, F, Fut>(n: usize, f: F) -> SlowStart<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut results = Vec::with_capacity(n);
    let mut batch = 1;
    while results.len() < n {
        let size = batch.min(n - results.len());
        let start = results.len();
        let out = futures::future::join_all((start..start + size).map(&f)).await;
        let failed = out.iter().any(Result::is_err);
        results.extend(out);
        if failed {
            break;
        }
        batch *= 2;
    }
    let skipped = n - results.len();
    SlowStart { results, skipped }
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match podutil::phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.annotations()
        .get("controller.kubernetes.io/pod-deletion-cost")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Upstream `ActivePodsWithRanks.Less`: `Less` means "delete first".
fn delete_first(a: &Pod, ra: usize, b: &Pod, rb: usize) -> Ordering {
    let assigned = |p: &Pod| !podutil::node_name(p).is_empty();
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then(podutil::is_ready(a).cmp(&podutil::is_ready(b)))
        .then(deletion_cost(a).cmp(&deletion_cost(b)))
        .then(rb.cmp(&ra))
        .then_with(
            || match (podutil::ready_since(a), podutil::ready_since(b)) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            },
        )
        .then(podutil::restarts(b).cmp(&podutil::restarts(a)))
        .then_with(|| {
            let t = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            t(b).cmp(&t(a))
        })
}

/// The `n` pods to delete first; a pod's rank is how many related pods share its node.
fn pods_to_delete(pods: &[Arc<Pod>], related: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for p in related {
        *per_node.entry(podutil::node_name(p)).or_default() += 1;
    }
    let rank = |p: &Pod| {
        let node = podutil::node_name(p);
        if node.is_empty() {
            0
        } else {
            per_node.get(node).copied().unwrap_or(0)
        }
    };
    let mut ranked: Vec<(Arc<Pod>, usize)> = pods.iter().map(|p| (p.clone(), rank(p))).collect();
    ranked.sort_by(|(a, ra), (b, rb)| delete_first(a, *ra, b, *rb));
    ranked.into_iter().take(n).map(|(p, _)| p).collect()
}

fn calculate_status(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    min_ready: i32,
    now: jiff::Timestamp,
    manage_err: Option<&Error>,
) -> ReplicaSetStatus {
    let template_labels: BTreeMap<String, String> = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = old
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "ReplicaFailure")
        .collect();
    if let Some(e @ (Error::CreatePods(k) | Error::DeletePods(k))) = manage_err {
        let reason = if matches!(e, Error::CreatePods(_)) {
            "FailedCreate"
        } else {
            "FailedDelete"
        };
        let prior = old
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "ReplicaFailure" && c.reason.as_deref() == Some(reason));
        conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(api_message(k)),
            last_transition_time: prior
                .and_then(|c| c.last_transition_time.clone())
                .or(Some(Time(now))),
        });
    }
    ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        })),
        ready_replicas: Some(count(&podutil::is_ready)),
        available_replicas: Some(count(&|p| podutil::is_available(p, min_ready, now))),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: old.terminating_replicas,
    }
}

/// A merge patch that also clears conditions that went away.
fn status_patch(s: &ReplicaSetStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if s.conditions.is_none() {
        v["conditions"] = serde_json::Value::Null;
    }
    v
}

/// When a ready pod will have been ready for `minReadySeconds`, look again.
fn next_availability_check(pods: &[Arc<Pod>], min_ready: i32, now: jiff::Timestamp) -> Next {
    if min_ready <= 0 {
        return Next::Done;
    }
    let min = jiff::SignedDuration::from_secs(i64::from(min_ready));
    pods.iter()
        .filter_map(|p| podutil::ready_since(p))
        .map(|t| t + min)
        .filter(|t| *t > now)
        .min()
        .map_or(Next::Done, |t| {
            let d = t.duration_since(now).unsigned_abs();
            Next::After(d + Duration::from_millis(100))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn pod(name: &str, node: &str, phase: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn unscheduled_then_pending_then_unready_pods_go_first() {
        let pods = vec![
            pod("running-ready", "n1", "Running", true),
            pod("running-unready", "n1", "Running", false),
            pod("pending", "n1", "Pending", false),
            pod("unscheduled", "", "Pending", false),
        ];
        let order: Vec<String> = pods_to_delete(&pods, &pods, 4)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(
            order,
            ["unscheduled", "pending", "running-unready", "running-ready"]
        );
    }

    #[test]
    fn a_pod_on_a_crowded_node_goes_before_a_lone_one() {
        let pods = vec![
            pod("alone", "n1", "Running", true),
            pod("crowded", "n2", "Running", true),
        ];
        let related = vec![
            pods[0].clone(),
            pods[1].clone(),
            pod("other", "n2", "Running", true),
        ];
        let first = pods_to_delete(&pods, &related, 1);
        assert_eq!(first[0].name_any(), "crowded");
    }

    #[tokio::test]
    async fn slow_start_stops_after_the_first_failing_batch() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let out = slow_start(10, |i| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if i == 2 {
                    Err(kube::Error::LinesCodecMaxLineLengthExceeded)
                } else {
                    Ok(i)
                }
            }
        })
        .await;
        // Batches 1 and 2 ran (3 calls); the failure in the second stops the rest.
        assert_eq!(out.results.len(), 3);
        assert_eq!(out.skipped, 7);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
