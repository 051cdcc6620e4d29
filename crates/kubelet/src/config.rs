//! What to simulate: [`SimConfig`], its defaults and the address ranges it draws from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid CIDR {value:?}: {why}")]
    InvalidCidr { value: String, why: &'static str },
    #[error("node CIDR mask /{mask} does not fit the cluster CIDR {cluster} (want /{min}../30)")]
    NodeMask {
        mask: u8,
        cluster: Ipv4Cidr,
        min: u8,
    },
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("the lease renew interval ({renew:?}) must be shorter than the lease ({lease:?})")]
    RenewNotShorter { renew: Duration, lease: Duration },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Upstream's default node lease length (`nodeLeaseDurationSeconds`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(40);
/// Upstream's renew interval: a quarter of the lease (the lease controller's
/// `renewIntervalFraction`).
pub const DEFAULT_LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// Upstream's `nodeStatusReportFrequency`: with leases, a kubelet posts an unchanged node
/// status only this often.
pub const DEFAULT_NODE_STATUS_REPORT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A set of simulated nodes that share one shape.
///
/// Capacity and allocatable are equal (no system reservations or eviction thresholds,
/// as in kwok), so a scheduler test can fill a node exactly.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// How many nodes to register.
    pub nodes: usize,
    /// Nodes are named `<name_prefix><index>`, index from 0.
    pub name_prefix: String,
    /// Capacity as Kubernetes quantities.
    pub cpu: String,
    pub memory: String,
    pub ephemeral_storage: String,
    pub pods: u32,
    /// Extended resources every node advertises, e.g. `nvidia.com/gpu: "8"`.
    pub extended_resources: BTreeMap<String, String>,
    /// Labels added to the ones a kubelet sets itself (hostname, os, arch, zone, …).
    pub labels: BTreeMap<String, String>,
    /// `topology.kubernetes.io/zone` values, assigned round-robin; empty for no zone label.
    pub zones: Vec<String>,
    /// `topology.kubernetes.io/region`, if any.
    pub region: Option<String>,
    /// Taints set at registration (upstream's `--register-with-taints`).
    pub taints: Vec<Taint>,
    /// `kubernetes.io/arch` and `nodeInfo.architecture`.
    pub arch: String,
    /// How long the containers of a pod with `restartPolicy` Never or OnFailure run before
    /// they exit 0 and the pod is Succeeded. Pods with `restartPolicy: Always` run until
    /// deleted.
    pub pod_run_duration: Duration,
    /// Node InternalIPs are handed out from this range, one per node, shared by every
    /// simulator in the process. Give concurrent simulator processes different ranges.
    pub node_ip_range: Ipv4Cidr,
    /// Pod IPs come from a per-node block of this size out of `cluster_cidr`. With more
    /// nodes than blocks, nodes share blocks (and their address pools), so pod IPs stay
    /// unique until the cluster CIDR is full.
    pub cluster_cidr: Ipv4Cidr,
    pub node_cidr_mask: u8,
    /// `spec.leaseDurationSeconds` of each node Lease.
    pub lease_duration: Duration,
    /// How often each node renews its Lease. Renewals are spread evenly over the interval
    /// so that thousands of nodes do not write at once.
    pub lease_renew_interval: Duration,
    /// How often an unchanged node status is posted again.
    pub node_status_report_interval: Duration,
    /// Most API writes in flight for registration and pod status.
    pub write_concurrency: usize,
    /// Most lease renewals and node status reports in flight (kept apart from pod writes
    /// so that a burst of pods never starves heartbeats).
    pub heartbeat_concurrency: usize,
    /// Every pod is synced again this often even when nothing was seen to change
    /// (upstream's `syncFrequency`: ConfigMap and Secret volumes refresh so); `None` for
    /// simulated nodes, whose pods have nothing to refresh.
    pub resync_period: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 1,
            name_prefix: "sim-node-".into(),
            cpu: "32".into(),
            memory: "256Gi".into(),
            ephemeral_storage: "1Ti".into(),
            pods: 110,
            extended_resources: BTreeMap::new(),
            labels: BTreeMap::new(),
            zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
            region: None,
            taints: Vec::new(),
            arch: host_arch().into(),
            pod_run_duration: Duration::from_secs(5),
            node_ip_range: Ipv4Cidr::new(Ipv4Addr::new(172, 16, 0, 0), 12),
            cluster_cidr: Ipv4Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 16),
            node_cidr_mask: 24,
            lease_duration: DEFAULT_LEASE_DURATION,
            lease_renew_interval: DEFAULT_LEASE_RENEW_INTERVAL,
            node_status_report_interval: DEFAULT_NODE_STATUS_REPORT_INTERVAL,
            write_concurrency: 64,
            heartbeat_concurrency: 16,
            resync_period: None,
        }
    }
}

impl SimConfig {
    /// Checks the settings that are ours to judge; names, quantities and taints are left
    /// to the API server, which rejects them at registration with upstream's messages.
    pub fn validate(&self) -> Result<()> {
        let min = self.cluster_cidr.prefix;
        if self.node_cidr_mask < min || self.node_cidr_mask > 30 {
            return Err(Error::NodeMask {
                mask: self.node_cidr_mask,
                cluster: self.cluster_cidr,
                min,
            });
        }
        for (field, zero) in [
            ("write_concurrency", self.write_concurrency == 0),
            ("heartbeat_concurrency", self.heartbeat_concurrency == 0),
            ("lease_renew_interval", self.lease_renew_interval.is_zero()),
            ("lease_duration", self.lease_duration.as_secs() == 0),
            (
                "node_status_report_interval",
                self.node_status_report_interval.is_zero(),
            ),
        ] {
            if zero {
                return Err(Error::Zero { field });
            }
        }
        if self.lease_renew_interval >= self.lease_duration {
            return Err(Error::RenewNotShorter {
                renew: self.lease_renew_interval,
                lease: self.lease_duration,
            });
        }
        Ok(())
    }

    /// The name of node `index`.
    pub fn node_name(&self, index: usize) -> String {
        format!("{}{index}", self.name_prefix)
    }

    /// The zone of node `index` (round-robin).
    pub fn zone(&self, index: usize) -> Option<&str> {
        if self.zones.is_empty() {
            None
        } else {
            Some(&self.zones[index % self.zones.len()])
        }
    }
}

/// The Go architecture name of this machine, as a kubelet reports it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// An IPv4 network, `10.42.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The network containing `addr` (host bits are cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Ipv4Cidr {
        let prefix = prefix.min(32);
        Ipv4Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// How many addresses the network holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// The `n`th address of the network, if it has one.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr).wrapping_add(n as u32)))
    }

    /// The `n`th subnet of length `prefix` inside this network, if it has one.
    pub fn subnet(&self, prefix: u8, n: u64) -> Option<Ipv4Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        let step = 1u64 << (32 - u32::from(prefix));
        (n < count).then(|| {
            Ipv4Cidr::new(
                Ipv4Addr::from(u32::from(self.addr).wrapping_add((n * step) as u32)),
                prefix,
            )
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why| Error::InvalidCidr {
            value: s.to_string(),
            why,
        };
        let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("missing /prefix"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
        if prefix > 32 {
            return Err(bad("prefix longer than 32"));
        }
        if u32::from(addr) & !mask(prefix) != 0 {
            return Err(bad("host bits set"));
        }
        Ok(Ipv4Cidr { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_splits_into_node_blocks() {
        let c: Ipv4Cidr = "10.42.0.0/16".parse().expect("cidr");
        assert_eq!(c.size(), 65536);
        assert_eq!(
            c.subnet(24, 3).map(|s| s.to_string()).as_deref(),
            Some("10.42.3.0/24")
        );
        assert_eq!(c.subnet(24, 256), None);
        assert_eq!(c.nth(258), Some(Ipv4Addr::new(10, 42, 1, 2)));
        assert!("10.42.0.1/16".parse::<Ipv4Cidr>().is_err());
        assert!("10.42.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.42.0.0/33".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn defaults_validate_and_zones_round_robin() {
        let cfg = SimConfig::default();
        cfg.validate().expect("defaults are valid");
        assert_eq!(cfg.node_name(7), "sim-node-7");
        assert_eq!(cfg.zone(0), Some("zone-a"));
        assert_eq!(cfg.zone(4), Some("zone-b"));
        let none = SimConfig {
            zones: vec![],
            ..SimConfig::default()
        };
        assert_eq!(none.zone(1), None);
    }

    #[test]
    fn rejects_a_node_mask_outside_the_cluster_cidr() {
        let cfg = SimConfig {
            node_cidr_mask: 12,
            ..SimConfig::default()
        };
        assert!(matches!(cfg.validate(), Err(Error::NodeMask { .. })));
        let cfg = SimConfig {
            lease_renew_interval: Duration::from_secs(40),
            ..SimConfig::default()
        };
        assert!(matches!(cfg.validate(), Err(Error::RenewNotShorter { .. })));
    }
}
