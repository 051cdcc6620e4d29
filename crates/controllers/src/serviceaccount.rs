//! ServiceAccounts controller (upstream `serviceaccounts-controller`): every active
//! namespace has a `default` ServiceAccount, re-created if deleted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use tokio_util::sync::CancellationToken;

use crate::informer::Change;
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner};

pub const NAME: &str = "serviceaccount";
const DEFAULT: &str = "default";

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let namespaces = ctx.informers.get::<Namespace>();
    let accounts = ctx.informers.get::<ServiceAccount>();
    let queue: Queue<String> = Queue::new();
    namespaces.on_change({
        let q = queue.clone();
        move |ch| {
            if !matches!(ch, Change::Deleted(_)) {
                q.add(ch.object().metadata.name.clone().unwrap_or_default());
            }
        }
    });
    accounts.on_change({
        let q = queue.clone();
        move |ch| {
            if let Change::Deleted(sa) = ch
                && sa.metadata.name.as_deref() == Some(DEFAULT)
            {
                q.add(sa.metadata.namespace.clone().unwrap_or_default());
            }
        }
    });
    let ctx = ctx.clone();
    Box::pin(async move {
        namespaces.wait_synced().await;
        accounts.wait_synced().await;
        let workers = ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |ns: String| {
            let (ctx, namespaces, accounts) = (ctx.clone(), namespaces.clone(), accounts.clone());
            async move {
                let Some(n) = namespaces.get("", &ns) else {
                    return Ok(Next::Done);
                };
                // Nothing can be created in a terminating namespace.
                if n.metadata.deletion_timestamp.is_some() || accounts.get(&ns, DEFAULT).is_some() {
                    return Ok(Next::Done);
                }
                let sa = ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some(DEFAULT.into()),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ns);
                match api.create(&PostParams::default(), &sa).await {
                    Ok(_) => Ok(Next::Done),
                    Err(e) if crate::is_conflict(&e) || crate::is_not_found(&e) => Ok(Next::Done),
                    // A namespace that started terminating meanwhile refuses it: done.
                    Err(kube::Error::Api(s)) if s.code == 403 => Ok(Next::Done),
                    Err(e) => Err(e),
                }
            }
        })
        .await;
    })
}
