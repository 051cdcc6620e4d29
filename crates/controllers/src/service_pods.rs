//! What the endpoints and EndpointSlice controllers share: which Services select a pod,
//! whether a pod belongs in a Service's endpoints, and what a Service port's `targetPort`
//! means on a given pod (upstream `endpointutil` / `podutil.FindPort`).

use std::sync::Arc;

use apimachinery::selector::label::LabelSelector;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use crate::informer::Informer;
use crate::{key_of, podutil};

/// The Service's selector, if it manages endpoints at all (a Service without a selector
/// has user-managed endpoints; an empty one is treated alike, as it reads back after a
/// protobuf round trip upstream).
pub fn selector(svc: &Service) -> Option<LabelSelector> {
    let sel = svc
        .spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())?;
    Some(LabelSelector::from_map(sel))
}

/// Keys of the Services in the pod's namespace whose selector matches the pod's labels.
pub fn services_for(services: &Informer<Service>, pod: &Pod) -> Vec<String> {
    let ns = pod.namespace().unwrap_or_default();
    services
        .list(&ns)
        .iter()
        .filter(|s| selector(s).is_some_and(|sel| sel.matches(pod.labels())))
        .map(|s| key_of(s.as_ref()))
        .collect()
}

/// Pods the Service selects, in its namespace.
pub fn selected_pods(pods: &Informer<Pod>, svc: &Service) -> Vec<Arc<Pod>> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    pods.list(&svc.namespace().unwrap_or_default())
        .into_iter()
        .filter(|p| sel.matches(p.labels()))
        .collect()
}

/// Upstream `ShouldPodBeInEndpoints`: it has an IP, has not finished, and (unless
/// terminating endpoints are wanted) is not being deleted.
pub fn should_include(pod: &Pod, include_terminating: bool) -> bool {
    if matches!(podutil::phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    if pod_ip(pod).is_none() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

pub fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

/// Upstream `FindPort`: a numeric targetPort is itself; a named one is the container port
/// of that name and protocol. `None` when the pod has no such port.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// A pod's resolved ports for a Service: (port name, number, protocol), sorted.
pub type PortSet = Vec<(String, i32, String)>;

/// The Service ports this pod serves, resolved (`FindPort`); ports it lacks are left out.
pub fn resolve_ports(pod: &Pod, ports: &[ServicePort]) -> PortSet {
    let mut out: PortSet = ports
        .iter()
        .filter_map(|p| {
            Some((
                p.name.clone().unwrap_or_default(),
                find_port(pod, p)?,
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            ))
        })
        .collect();
    out.sort();
    out
}

/// A headless Service has `clusterIP: None`.
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec};

    fn pod_with_port(name: &str, port: i32) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some(name.into()),
                        container_port: port,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc_port = ServicePort {
            port: 80,
            target_port: Some(IntOrString::String("http".into())),
            ..Default::default()
        };
        assert_eq!(
            find_port(&pod_with_port("http", 8080), &svc_port),
            Some(8080)
        );
        assert_eq!(find_port(&pod_with_port("web", 8080), &svc_port), None);
        let numeric = ServicePort {
            port: 80,
            target_port: Some(IntOrString::Int(9090)),
            ..Default::default()
        };
        assert_eq!(find_port(&pod_with_port("x", 1), &numeric), Some(9090));
    }
}
