//! Node networking for rkube, run beside every node agent: Service routing through iptables
//! nat chains (in the style of kube-proxy's iptables mode), NetworkPolicy enforcement
//! through filter chains, the cluster DNS server, and the built-in Ingress controller.
//!
//! All of it reads one [`cluster::Cluster`] view (watches of Services, EndpointSlices,
//! Pods, Namespaces, NetworkPolicies, Ingresses, IngressClasses, Secrets).

pub mod cluster;
pub mod dns;
pub mod ingress;
pub mod iptables;
pub mod netpol;
pub mod node;
pub mod services;

use std::net::Ipv4Addr;

/// The node this proxy serves.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// The Node's name (`spec.nodeName` of its pods).
    pub name: String,
    /// The node's own addresses (InternalIP first); NodePorts answer on these and on
    /// 127.0.0.1, and Ingresses report the first.
    pub ips: Vec<Ipv4Addr>,
    /// The cluster's pod CIDR (`10.42.0.0/16`): traffic from outside it to a Service is
    /// masqueraded.
    pub cluster_cidr: (Ipv4Addr, u8),
}

impl NodeInfo {
    /// `cluster_cidr` as `a.b.c.d/n`.
    pub fn cluster_cidr_str(&self) -> String {
        format!("{}/{}", self.cluster_cidr.0, self.cluster_cidr.1)
    }
}
