//! Service load balancer controller (the job of k3s's `servicelb`): a `type: LoadBalancer`
//! Service without a `loadBalancerClass` is served by every node's proxy on the node's own
//! addresses, so its `status.loadBalancer.ingress` lists the Ready nodes' addresses
//! (ExternalIP when a node has one, else InternalIP). Nodes that go away or turn NotReady
//! leave the list; a Service that stops being a LoadBalancer loses it.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::{Ctx, Runner, split_key};

pub const NAME: &str = "service-lb";

/// The address a node's load balancer answers on, if the node is Ready.
fn node_address(node: &Node) -> Option<String> {
    let status = node.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready || node.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let addresses = status.addresses.as_deref().unwrap_or_default();
    let of = |kind: &str| addresses.iter().find(|a| a.type_ == kind);
    of("ExternalIP")
        .or_else(|| of("InternalIP"))
        .map(|a| a.address.clone())
}

/// Is this Service ours to report (a LoadBalancer of the default class)?
fn served(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
    })
}

/// The ingress list a Service should carry, in the form it is compared and written in.
fn wanted(svc: &Service, nodes: &Informer<Node>) -> Vec<serde_json::Value> {
    if !served(svc) {
        return Vec::new();
    }
    let ips: BTreeSet<String> = nodes
        .list_all()
        .iter()
        .filter_map(|n| node_address(n))
        .collect();
    ips.into_iter()
        .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
        .collect()
}

fn current(svc: &Service) -> Vec<serde_json::Value> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let services = ctx.informers.get::<Service>();
    let nodes = ctx.informers.get::<Node>();
    let queue: Queue<String> = Queue::new();
    services.on_change({
        let q = queue.clone();
        move |ch| {
            if !matches!(ch, Change::Deleted(_)) {
                q.add(crate::key_of(ch.object().as_ref()));
            }
        }
    });
    nodes.on_change({
        let (q, services) = (queue.clone(), services.clone());
        move |ch| {
            // Heartbeats update every node all the time; only a change of the address it
            // contributes (readiness, addresses, deletion) concerns the Services.
            if let Change::Updated { old, new } = ch
                && node_address(old) == node_address(new)
            {
                return;
            }
            for svc in services.list_all().iter().filter(|s| served(s)) {
                q.add(crate::key_of(svc.as_ref()));
            }
        }
    });
    let ctx = ctx.clone();
    Box::pin(async move {
        services.wait_synced().await;
        nodes.wait_synced().await;
        let workers = ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let (ctx, services, nodes) = (ctx.clone(), services.clone(), nodes.clone());
            async move {
                let (ns, name) = split_key(&key);
                let Some(svc) = services.get(ns, name) else {
                    return Ok(Next::Done);
                };
                // Another controller's class, or nothing of ours to take back.
                if svc
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.load_balancer_class.is_some())
                {
                    return Ok(Next::Done);
                }
                let want = wanted(&svc, &nodes);
                if want == current(&svc) {
                    return Ok(Next::Done);
                }
                let api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
                let patch = json!({"status": {"loadBalancer": {"ingress": want}}});
                match api
                    .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Ok(Next::Done),
                    Err(e) if crate::is_not_found(&e) => Ok(Next::Done),
                    Err(e) => Err(e),
                }
            }
        })
        .await;
    })
}
