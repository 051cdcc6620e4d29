//! EndpointSlice controller (upstream `pkg/controller/endpointslice`): for every Service with
//! a selector, `discovery.k8s.io/v1` EndpointSlices owned by it, one group per address type
//! and resolved port set, at most 100 endpoints each. Unlike Endpoints they keep terminating
//! pods, with `ready` / `serving` / `terminating` conditions, and carry each endpoint's zone.
//! Slices are updated in place (their names stay) and deleted when no longer needed; the
//! garbage collector removes them with their Service.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::service_pods::{self, PortSet, pod_ip};
use crate::{Ctx, Runner, controller_ref, key_of, podutil, split_key};

pub const NAME: &str = "endpointslice";
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const MAX_ENDPOINTS: usize = 100;
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating an endpoint slice")]
    Create(#[source] kube::Error),
    #[error("updating endpoint slice {0}")]
    Update(String, #[source] kube::Error),
    #[error("deleting endpoint slice {0}")]
    Delete(String, #[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    /// Per Service, the slices this controller last wrote (name → resourceVersion, empty
    /// for a delete): a sync waits until the cache has caught up with them, so a stale
    /// cache never makes it create a second slice (upstream's EndpointSliceTracker).
    written: std::sync::Mutex<std::collections::HashMap<String, Vec<(String, String)>>>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    slices: Arc<Informer<EndpointSlice>>,
}

fn service_of(slice: &EndpointSlice) -> Option<String> {
    let labels = slice.labels();
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    let svc = labels.get(SERVICE_NAME_LABEL)?;
    Some(format!("{}/{svc}", slice.namespace().unwrap_or_default()))
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let slices = ctx.informers.get::<EndpointSlice>();
    let queue: Queue<String> = Queue::new();
    services.on_change({
        let q = queue.clone();
        move |ch| q.add(key_of(ch.object().as_ref()))
    });
    pods.on_change({
        let (q, services) = (queue.clone(), services.clone());
        move |ch| {
            if let Change::Updated { old, new } = ch
                && old.labels() != new.labels()
            {
                for k in service_pods::services_for(&services, old) {
                    q.add(k);
                }
            }
            for k in service_pods::services_for(&services, ch.object()) {
                q.add(k);
            }
        }
    });
    slices.on_change({
        let q = queue.clone();
        move |ch| {
            if let Some(k) = service_of(ch.object()) {
                q.add(k);
            }
        }
    });
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        written: Default::default(),
        services: services.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        slices: slices.clone(),
    });
    Box::pin(async move {
        services.wait_synced().await;
        pods.wait_synced().await;
        nodes.wait_synced().await;
        slices.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

/// A desired slice's identity: address type and its (sorted) ports.
type GroupKey = (String, PortSet);

fn rv(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

impl Controller {
    fn cache_is_stale(&self, key: &str, ns: &str) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        written.get(key).is_some_and(|w| {
            w.iter()
                .any(|(name, wrote)| match self.slices.get(ns, name) {
                    Some(s) => {
                        wrote.is_empty()
                            || rv(&s.resource_version().unwrap_or_default()) < rv(wrote)
                    }
                    None => !wrote.is_empty(),
                })
        })
    }

    fn endpoint(&self, svc: &Service, pod: &Pod, ip: &str) -> Endpoint {
        let spec = pod.spec.as_ref();
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let pod_ready = podutil::is_ready(pod);
        let publish = svc
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false);
        let node = spec.and_then(|s| s.node_name.clone());
        let zone = node
            .as_deref()
            .and_then(|n| self.nodes.get("", n))
            .and_then(|n| n.labels().get(ZONE_LABEL).cloned());
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (pod_ready && !terminating)),
                serving: Some(pod_ready),
                terminating: Some(terminating),
            }),
            hostname: spec
                .filter(|s| s.subdomain.as_deref() == Some(svc.name_any().as_str()))
                .and_then(|s| s.hostname.clone()),
            node_name: node,
            zone,
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.namespace(),
                name: Some(pod.name_any()),
                uid: pod.uid(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The endpoints of `svc`, grouped as slices want them, sorted by address.
    fn desired(&self, svc: &Service) -> BTreeMap<GroupKey, Vec<Endpoint>> {
        let svc_ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        let mut groups: BTreeMap<GroupKey, BTreeMap<String, Endpoint>> = BTreeMap::new();
        for pod in service_pods::selected_pods(&self.pods, svc) {
            if !service_pods::should_include(&pod, true) {
                continue;
            }
            let Some(ip) = pod_ip(&pod) else { continue };
            let ports = service_pods::resolve_ports(&pod, &svc_ports);
            let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
            groups
                .entry((family.to_string(), ports))
                .or_default()
                .insert(ip.to_string(), self.endpoint(svc, &pod, ip));
        }
        groups
            .into_iter()
            .map(|(k, v)| (k, v.into_values().collect()))
            .collect()
    }

    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let Some(svc) = self.services.get(ns, name) else {
            // Owned slices go with the Service (garbage collector).
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(key);
            return Ok(Next::Done);
        };
        if service_pods::selector(&svc).is_none() {
            return Ok(Next::Done);
        }
        if self.cache_is_stale(key, ns) {
            return Ok(Next::After(std::time::Duration::from_millis(50)));
        }
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut wrote: Vec<(String, String)> = Vec::new();
        let mut existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list(ns)
            .into_iter()
            .filter(|s| service_of(s).as_deref() == Some(key))
            .collect();
        let app_protocol = |n: &str| {
            svc.spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .and_then(|ps| ps.iter().find(|p| p.name.as_deref().unwrap_or("") == n))
                .and_then(|p| p.app_protocol.clone())
        };
        let mut labels = svc.labels().clone();
        labels.insert(SERVICE_NAME_LABEL.into(), name.to_string());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        if service_pods::is_headless(&svc) {
            labels.insert("service.kubernetes.io/headless".into(), String::new());
        }
        let mut wanted: Vec<(String, Option<Vec<EndpointPort>>, Vec<Endpoint>)> = Vec::new();
        let desired = self.desired(&svc);
        if desired.is_empty() {
            // Upstream keeps one empty slice for a Service with no endpoints.
            wanted.push(("IPv4".into(), None, Vec::new()));
        }
        for ((family, ports), endpoints) in desired {
            let ports: Vec<EndpointPort> = ports
                .iter()
                .map(|(n, p, proto)| EndpointPort {
                    name: Some(n.clone()),
                    port: Some(*p),
                    protocol: Some(proto.clone()),
                    app_protocol: app_protocol(n),
                })
                .collect();
            for chunk in endpoints.chunks(MAX_ENDPOINTS) {
                wanted.push((family.clone(), Some(ports.clone()), chunk.to_vec()));
            }
        }
        for (family, ports, endpoints) in wanted {
            // Reuse a slice of the same shape if there is one.
            let reuse = existing
                .iter()
                .position(|s| s.address_type == family && s.ports == ports);
            let slice = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{name}-")),
                    namespace: Some(ns.to_string()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![controller_ref::reference(svc.as_ref())]),
                    ..Default::default()
                },
                address_type: family,
                endpoints,
                ports,
            };
            match reuse {
                Some(i) => {
                    let cur = existing.remove(i);
                    if cur.endpoints == slice.endpoints && *cur.labels() == labels {
                        continue;
                    }
                    let mut next = slice;
                    next.metadata.generate_name = None;
                    next.metadata.name = cur.metadata.name.clone();
                    next.metadata.resource_version = cur.resource_version();
                    next.metadata.owner_references = cur.metadata.owner_references.clone();
                    match api
                        .replace(&cur.name_any(), &PostParams::default(), &next)
                        .await
                    {
                        Ok(s) => {
                            wrote.push((s.name_any(), s.resource_version().unwrap_or_default()))
                        }
                        Err(e) if crate::is_not_found(&e) => {}
                        Err(e) => return Err(Error::Update(cur.name_any(), e)),
                    }
                }
                None => match api.create(&PostParams::default(), &slice).await {
                    Ok(s) => wrote.push((s.name_any(), s.resource_version().unwrap_or_default())),
                    Err(kube::Error::Api(s)) if s.code == 403 => return Ok(Next::Done),
                    Err(e) => return Err(Error::Create(e)),
                },
            }
        }
        for stale in existing {
            match api
                .delete(&stale.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => wrote.push((stale.name_any(), String::new())),
                Err(e) if crate::is_not_found(&e) => {}
                Err(e) => return Err(Error::Delete(stale.name_any(), e)),
            }
        }
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if wrote.is_empty() {
            written.remove(key);
        } else {
            written.insert(key.to_string(), wrote);
        }
        Ok(Next::Done)
    }
}
