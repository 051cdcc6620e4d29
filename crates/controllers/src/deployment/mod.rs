//! Deployment controller (upstream `pkg/controller/deployment`): owns ReplicaSets, one per
//! pod template (named `<deployment>-<pod-template-hash>`), and moves replicas from old to
//! new ones by the strategy.
//!
//! - `mod.rs`: informer wiring and the sync entry (paused / scaling / rollout).
//! - `rollout.rs`: one sync's working state: finding or creating the new ReplicaSet and
//!   syncing revisions, scaling, proportional scaling, history clean-up.
//! - `rolling.rs` / `recreate.rs`: the two strategies.
//! - `status.rs`: status counters, Available / Progressing conditions, the progress deadline.
//! - `util.rs`: hashes, annotations, fenceposts.
//!
//! `kubectl rollout undo` needs nothing here: kubectl copies the old ReplicaSet's template
//! into the Deployment, and that ReplicaSet becomes the new one again with the next revision.

mod recreate;
mod rolling;
mod rollout;
mod status;
pub mod util;

use std::sync::Arc;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use crate::controller_ref::{self, Owner};
use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, key_of, split_key};

pub const NAME: &str = "deployment";
const COMPONENT: &str = "deployment-controller";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("claiming replica sets")]
    Claim(#[source] kube::Error),
    #[error("creating replica set {name}")]
    CreateReplicaSet {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("hash collision with replica set {0}; retrying with a new collision count")]
    HashCollision(String),
    #[error("updating replica set {name}")]
    UpdateReplicaSet {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting replica set {name}")]
    DeleteReplicaSet {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the deployment")]
    UpdateDeployment(#[source] kube::Error),
    #[error("updating status")]
    UpdateStatus(#[source] kube::Error),
}

pub(crate) struct Controller {
    ctx: Arc<Ctx>,
    deployments: Arc<Informer<Deployment>>,
    sets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let deployments = ctx.informers.get::<Deployment>();
    let sets = ctx.informers.get::<ReplicaSet>();
    let pods = ctx.informers.get::<Pod>();
    let queue: Queue<String> = Queue::new();
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        deployments: deployments.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
    });
    deployments.on_change({
        let q = queue.clone();
        move |ch| q.add(key_of(ch.object().as_ref()))
    });
    sets.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| c.replica_set_changed(&q, ch)
    });
    // Recreate waits for old pods to be gone, which only pod deletions tell.
    pods.on_change({
        let (q, c) = (queue.clone(), c.clone());
        move |ch| {
            if let Change::Deleted(p) = ch
                && let Some(rs) = controller_ref::owner_name::<ReplicaSet>(p.as_ref())
                && let Some(rs) = c.sets.get(&p.namespace().unwrap_or_default(), rs)
                && let Some(d) = controller_ref::owner_name::<Deployment>(rs.as_ref())
            {
                q.add(format!("{}/{d}", rs.namespace().unwrap_or_default()));
            }
        }
    });
    Box::pin(async move {
        deployments.wait_synced().await;
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

impl Controller {
    fn replica_set_changed(&self, q: &Queue<String>, ch: &Change<'_, ReplicaSet>) {
        let owner = |rs: &ReplicaSet| {
            controller_ref::owner_name::<Deployment>(rs)
                .map(|d| format!("{}/{d}", rs.namespace().unwrap_or_default()))
        };
        if let Change::Updated { old, .. } = ch
            && let Some(k) = owner(old)
        {
            q.add(k);
        }
        let rs = ch.object();
        match owner(rs) {
            Some(k) => q.add(k),
            None if !matches!(ch, Change::Deleted(_)) => {
                // An orphan: every Deployment that could adopt it.
                let ns = rs.namespace().unwrap_or_default();
                for d in self.deployments.list(&ns) {
                    let sel = d.spec.as_ref().map(|s| &s.selector);
                    if LabelSelector::from_api(sel)
                        .is_ok_and(|s| !s.is_empty() && s.matches(rs.labels()))
                    {
                        q.add(key_of(d.as_ref()));
                    }
                }
            }
            None => {}
        }
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(d) = self.deployments.get(ns, name) else {
            return Ok(Next::Done);
        };
        let d = (*d).clone();
        let selector = d.spec.as_ref().map(|s| &s.selector);
        let selector = match LabelSelector::from_api(selector) {
            Ok(s) if s.is_empty() => {
                self.ctx.events.warning(
                    COMPONENT,
                    &d,
                    "SelectingAll",
                    "This deployment is selecting all pods. A non-empty selector is required."
                        .into(),
                );
                return Ok(Next::Done);
            }
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(ns, name, error = %e, "invalid selector");
                return Ok(Next::Done);
            }
        };
        let owner = Owner {
            reference: controller_ref::reference(&d),
            selector: &selector,
            deleting: d.metadata.deletion_timestamp.is_some(),
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), ns);
        let sets = controller_ref::claim(&api, &owner, self.sets.list(ns))
            .await
            .map_err(Error::Claim)?;
        let mut r = rollout::Rollout::new(self, d, sets.iter().map(|s| (**s).clone()).collect());
        if r.d.metadata.deletion_timestamp.is_some() {
            return r.sync_status_only().await;
        }
        r.check_paused_conditions().await?;
        if r.paused() {
            return r.sync_scale().await;
        }
        if r.is_scaling_event() {
            return r.sync_scale().await;
        }
        if util::is_recreate(&r.d) {
            r.rollout_recreate().await
        } else {
            r.rollout_rolling().await
        }
    }
}
