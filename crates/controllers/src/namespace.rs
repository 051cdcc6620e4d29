//! Namespace controller (upstream `pkg/controller/namespace`): a namespace being deleted
//! (`Terminating`, with the `kubernetes` finalizer in `spec.finalizers`) has everything in it
//! deleted — every namespaced resource the API serves, CRDs' too — and once nothing is left
//! the finalizer is removed through `namespaces/{name}/finalize`, which lets the API server
//! remove the namespace.
//!
//! While content drains the namespace is looked at again every `namespace_resync`, and its
//! `NamespaceContentRemaining` / `NamespaceFinalizersRemaining` conditions say what it waits
//! for, as upstream reports them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use serde_json::json;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::informer::Change;
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner};

pub const NAME: &str = "namespace";
const FINALIZER: &str = "kubernetes";
/// How long a discovery result is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("discovering resources")]
    Discovery(#[source] kube::Error),
    #[error("deleting {resource}")]
    DeleteContent {
        resource: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizing the namespace")]
    Finalize(#[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    discovered: Mutex<Option<(Instant, Arc<Vec<ApiResource>>)>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let namespaces = ctx.informers.get::<Namespace>();
    let queue: Queue<String> = Queue::new();
    namespaces.on_change({
        let q = queue.clone();
        move |ch| {
            let ns = ch.object();
            if !matches!(ch, Change::Deleted(_)) && ns.metadata.deletion_timestamp.is_some() {
                q.add(ns.metadata.name.clone().unwrap_or_default());
            }
        }
    });
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        discovered: Mutex::new(None),
    });
    Box::pin(async move {
        namespaces.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |name: String| {
            let (c, namespaces) = (c.clone(), namespaces.clone());
            async move {
                match namespaces.get("", &name) {
                    Some(ns) => c.sync(&ns).await,
                    None => Ok(Next::Done),
                }
            }
        })
        .await;
    })
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

impl Controller {
    /// Namespaced resources that can be listed and deleted, preferred version per group.
    async fn resources(&self) -> Result<Arc<Vec<ApiResource>>, Error> {
        let mut d = self.discovered.lock().await;
        if let Some((at, r)) = d.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(r.clone());
        }
        let discovery = Discovery::new(self.ctx.client.clone())
            .run()
            .await
            .map_err(Error::Discovery)?;
        let mut out = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if caps.scope == Scope::Namespaced
                    && caps.supports_operation(verbs::LIST)
                    && caps.supports_operation(verbs::DELETE)
                {
                    out.push(ar);
                }
            }
        }
        let out = Arc::new(out);
        *d = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    async fn sync(&self, ns: &Namespace) -> Result<Next, Error> {
        if ns.metadata.deletion_timestamp.is_none() || !has_finalizer(ns) {
            return Ok(Next::Done);
        }
        let name = ns.metadata.name.clone().unwrap_or_default();
        let resources = self.resources().await?;
        // resource → (objects left, finalizers they wait for)
        let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
        let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
        for ar in resources.iter() {
            let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), &name, ar);
            let resource = if ar.group.is_empty() {
                ar.plural.clone()
            } else {
                format!("{}.{}", ar.plural, ar.group)
            };
            let listed = match api.list_metadata(&ListParams::default()).await {
                Ok(l) => l,
                Err(e) if crate::is_not_found(&e) => continue,
                Err(source) => return Err(Error::DeleteContent { resource, source }),
            };
            if listed.items.is_empty() {
                continue;
            }
            let mut left = 0;
            for item in &listed.items {
                left += 1;
                for f in item.metadata.finalizers.iter().flatten() {
                    *finalizers.entry(f.clone()).or_default() += 1;
                }
                if item.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let obj_name = item.metadata.name.clone().unwrap_or_default();
                match api.delete(&obj_name, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(e) if crate::is_not_found(&e) || crate::is_conflict(&e) => {}
                    Err(source) => return Err(Error::DeleteContent { resource, source }),
                }
            }
            remaining.insert(resource, left);
        }
        if remaining.is_empty() {
            self.finalize(ns).await?;
            return Ok(Next::Done);
        }
        self.report(ns, &remaining, &finalizers).await;
        Ok(Next::After(self.ctx.config.namespace_resync))
    }

    /// Removes our finalizer through the `finalize` subresource.
    async fn finalize(&self, ns: &Namespace) -> Result<(), Error> {
        let mut next = ns.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.finalizers = Some(
                spec.finalizers
                    .iter()
                    .flatten()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect(),
            );
        }
        let name = ns.metadata.name.clone().unwrap_or_default();
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        match api
            .replace_subresource("finalize", &name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::Finalize(e)),
        }
    }

    /// Upstream's deletion conditions, so `kubectl describe ns` says what is left.
    async fn report(
        &self,
        ns: &Namespace,
        remaining: &BTreeMap<String, usize>,
        finalizers: &BTreeMap<String, usize>,
    ) {
        let now = Time(jiff::Timestamp::now());
        let old = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let cond = |type_: &str, ok: bool, reason: &str, message: String| {
            let status = if ok { "False" } else { "True" };
            let prior = old.iter().find(|c| c.type_ == type_);
            NamespaceCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: match prior {
                    Some(p) if p.status == status => p.last_transition_time.clone(),
                    _ => Some(now.clone()),
                },
            }
        };
        let content = remaining
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ");
        let fins = finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ");
        let conditions = vec![
            cond(
                "NamespaceContentRemaining",
                false,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {content}"),
            ),
            if finalizers.is_empty() {
                cond(
                    "NamespaceFinalizersRemaining",
                    true,
                    "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished".into(),
                )
            } else {
                cond(
                    "NamespaceFinalizersRemaining",
                    false,
                    "SomeFinalizersRemain",
                    format!("Some content in the namespace has finalizers remaining: {fins}"),
                )
            },
        ];
        let mut merged: Vec<NamespaceCondition> = old
            .iter()
            .filter(|c| !conditions.iter().any(|n| n.type_ == c.type_))
            .cloned()
            .collect();
        merged.extend(conditions);
        if merged == old {
            return;
        }
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let patch = json!({"status": {"conditions": merged}});
        let name = ns.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            tracing::debug!(ns = name, error = %e, "updating namespace conditions");
        }
    }
}
