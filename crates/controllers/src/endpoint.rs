//! Endpoints controller (upstream `pkg/controller/endpoint`): for every Service with a
//! selector, an Endpoints object of the same name listing the selected pods — ready ones in
//! `addresses`, others in `notReadyAddresses` (all in `addresses` with
//! `publishNotReadyAddresses`) — grouped into subsets by the ports they resolve to.
//! Headless Services without ports still list their pods. The Endpoints go with the Service.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::queue::{Next, Queue};
use crate::service_pods::{self, PortSet, pod_ip};
use crate::{Ctx, Runner, key_of, podutil, split_key};

pub const NAME: &str = "endpoint";
/// Upstream caps an Endpoints object at 1000 addresses and says so in this annotation.
const MAX_ADDRESSES: usize = 1000;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing endpoints")]
    Write(#[source] kube::Error),
    #[error("deleting endpoints")]
    Delete(#[source] kube::Error),
}

struct Controller {
    ctx: Arc<Ctx>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
}

pub fn new(ctx: &Arc<Ctx>, stop: CancellationToken) -> Runner {
    let services = ctx.informers.get::<Service>();
    let pods = ctx.informers.get::<Pod>();
    let endpoints = ctx.informers.get::<Endpoints>();
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
    // Someone removed the Endpoints of a Service: put them back (upstream watches only
    // deletes, so user-made Endpoints without a Service are left alone).
    endpoints.on_change({
        let q = queue.clone();
        move |ch| {
            if let Change::Deleted(e) = ch {
                q.add(key_of(e.as_ref()))
            }
        }
    });
    let c = Arc::new(Controller {
        ctx: ctx.clone(),
        services: services.clone(),
        pods: pods.clone(),
        endpoints: endpoints.clone(),
    });
    Box::pin(async move {
        services.wait_synced().await;
        pods.wait_synced().await;
        endpoints.wait_synced().await;
        let workers = c.ctx.config.workers;
        crate::queue::run_workers(NAME, queue, workers, stop, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
    })
}

fn address(pod: &Pod, ip: &str, svc: &Service) -> EndpointAddress {
    let spec = pod.spec.as_ref();
    // A pod's hostname is published only for the Service named by its subdomain.
    let hostname = spec
        .filter(|s| s.subdomain.as_deref() == Some(svc.name_any().as_str()))
        .and_then(|s| s.hostname.clone());
    EndpointAddress {
        ip: ip.to_string(),
        hostname,
        node_name: spec.and_then(|s| s.node_name.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.namespace(),
            name: Some(pod.name_any()),
            uid: pod.uid(),
            ..Default::default()
        }),
    }
}

/// The subsets for `svc` over `pods`, packed as upstream's `RepackSubsets`: one subset per
/// distinct port set, addresses sorted.
pub fn subsets(svc: &Service, pods: &[Arc<Pod>]) -> (Vec<EndpointSubset>, bool) {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_ports = spec.ports.clone().unwrap_or_default();
    // port set (sorted) → (ready, not ready) addresses by ip
    type Addrs = BTreeMap<String, EndpointAddress>;
    let mut groups: BTreeMap<PortSet, (Addrs, Addrs)> = BTreeMap::new();
    let mut total = 0;
    for pod in pods {
        if !service_pods::should_include(pod, false) {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let addr = address(pod, ip, svc);
        let ready = publish_not_ready || podutil::is_ready(pod);
        let ports = if svc_ports.is_empty() {
            if !service_pods::is_headless(svc) {
                continue;
            }
            Vec::new()
        } else {
            let resolved = service_pods::resolve_ports(pod, &svc_ports);
            if resolved.is_empty() {
                continue;
            }
            resolved
        };
        let g = groups.entry(ports).or_default();
        if ready {
            g.0.insert(ip.to_string(), addr);
        } else {
            g.1.insert(ip.to_string(), addr);
        }
        total += 1;
    }
    let truncated = total > MAX_ADDRESSES;
    let mut budget = MAX_ADDRESSES;
    let mut out = Vec::new();
    for (ports, (ready, not_ready)) in groups {
        let take = |m: Addrs, budget: &mut usize| -> Option<Vec<EndpointAddress>> {
            let v: Vec<EndpointAddress> = m.into_values().take(*budget).collect();
            *budget -= v.len();
            (!v.is_empty()).then_some(v)
        };
        let addresses = take(ready, &mut budget);
        let not_ready_addresses = take(not_ready, &mut budget);
        if addresses.is_none() && not_ready_addresses.is_none() {
            continue;
        }
        let app_protocol = |name: &str| {
            svc_ports
                .iter()
                .find(|p| p.name.as_deref().unwrap_or("") == name)
                .and_then(|p| p.app_protocol.clone())
        };
        out.push(EndpointSubset {
            addresses,
            not_ready_addresses,
            ports: (!ports.is_empty()).then(|| {
                ports
                    .iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name: (!name.is_empty()).then(|| name.clone()),
                        port: *port,
                        protocol: Some(protocol.clone()),
                        app_protocol: app_protocol(name),
                    })
                    .collect()
            }),
        });
    }
    (out, truncated)
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Next, Error> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), ns);
        let Some(svc) = self.services.get(ns, name) else {
            // The Service went: so do its Endpoints (if we would have managed them).
            if self.endpoints.get(ns, name).is_some() && !is_bootstrap(ns, name) {
                return match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => Ok(Next::Done),
                    Err(e) if crate::is_not_found(&e) => Ok(Next::Done),
                    Err(e) => Err(Error::Delete(e)),
                };
            }
            return Ok(Next::Done);
        };
        if service_pods::selector(&svc).is_none() {
            return Ok(Next::Done);
        }
        let pods = service_pods::selected_pods(&self.pods, &svc);
        let (subsets, truncated) = subsets(&svc, &pods);
        let mut labels = svc.labels().clone();
        if service_pods::is_headless(&svc) {
            labels.insert(HEADLESS_LABEL.into(), String::new());
        }
        let current = self.endpoints.get(ns, name);
        let mut annotations = current
            .as_ref()
            .map(|e| e.annotations().clone())
            .unwrap_or_default();
        if truncated {
            annotations.insert(OVER_CAPACITY.into(), "truncated".into());
        } else {
            annotations.remove(OVER_CAPACITY);
        }
        let subsets = (!subsets.is_empty()).then_some(subsets);
        if let Some(cur) = &current
            && cur.subsets == subsets
            && *cur.labels() == labels
            && *cur.annotations() == annotations
        {
            return Ok(Next::Done);
        }
        let ep = Endpoints {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                resource_version: current.as_ref().and_then(|c| c.resource_version()),
                ..Default::default()
            },
            subsets,
        };
        let r = match current {
            Some(_) => api.replace(name, &PostParams::default(), &ep).await,
            None => api.create(&PostParams::default(), &ep).await,
        };
        match r {
            Ok(_) => Ok(Next::Done),
            // The namespace is going; nothing to keep up.
            Err(kube::Error::Api(s)) if s.code == 403 => Ok(Next::Done),
            Err(e) => Err(Error::Write(e)),
        }
    }
}

/// `default/kubernetes` is the API server's own, kept by it.
fn is_bootstrap(ns: &str, name: &str) -> bool {
    ns == "default" && name == "kubernetes"
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus, ServicePort, ServiceSpec};

    fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(Default::default()),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn svc(publish_not_ready: bool) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_string(), "web".to_string())].into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    ..Default::default()
                }]),
                publish_not_ready_addresses: Some(publish_not_ready),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn unready_pods_are_listed_apart_unless_published() {
        let pods = vec![pod("a", "10.42.0.2", true), pod("b", "10.42.0.3", false)];
        let (s, _) = subsets(&svc(false), &pods);
        assert_eq!(s.len(), 1);
        let ips = |v: &Option<Vec<EndpointAddress>>| {
            v.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
        };
        assert_eq!(ips(&s[0].addresses), ["10.42.0.2"]);
        assert_eq!(ips(&s[0].not_ready_addresses), ["10.42.0.3"]);
        let (s, _) = subsets(&svc(true), &pods);
        assert_eq!(ips(&s[0].addresses), ["10.42.0.2", "10.42.0.3"]);
        assert_eq!(s[0].ports.as_ref().map(|p| p[0].port), Some(80));
    }
}
