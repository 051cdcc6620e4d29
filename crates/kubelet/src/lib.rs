//! rkube's node agent. It runs pods as real containers through containerd ([`Agent`]:
//! what `rkube server` runs by default and `rkube agent` runs alone), or simulated nodes
//! (like kwok): thousands of Nodes from one process, each with a Lease heartbeat and pods
//! that "run" without containers ([`run_sim`], what `rkube sim --nodes N` runs; [`Sim`]
//! when the caller wants to fail and recover nodes). Both share the heartbeat and pod
//! workers; the pod workers talk to containers only through the [`runtime::Runtime`] trait.
//!
//! # Layout
//! - `config.rs`: [`SimConfig`], its defaults and validation, [`Ipv4Cidr`].
//! - `sim.rs`: [`Sim`] / [`run_sim`]: registration, node slots and IP ranges, control.
//! - `node.rs`: the Node object (labels, capacity, conditions, nodeInfo), registering it,
//!   posting its status.
//! - `lease.rs`: the node Lease in `kube-node-lease`: creating and renewing it.
//! - `heartbeat.rs`: one task that renews every node's lease, spread over the interval,
//!   and posts node status when due.
//! - `pods.rs`: the pod workers: one watch for all nodes, one sync at a time per pod,
//!   status writes, deletion.
//! - `status.rs`: runtime state → API `PodStatus` (phase, conditions, container statuses).
//! - `runtime/mod.rs`: the [`runtime::Runtime`] trait and runtime-side state types;
//!   `runtime/sim.rs`: the simulated runtime; `runtime/ipam.rs`: its pod IP pools.
//! - `agent.rs`: [`Agent`]: the machine as a Node, the CRI runtime, the kubelet API;
//!   `containerd.rs`: using or starting containerd.
//! - `runtime/cri/`: the containerd runtime (sandboxes, containers, images, back-off).
//! - `env.rs`: a container's environment (env, envFrom, field and resource refs, service
//!   links, `$(VAR)` expansion); `volumes/`: emptyDir, configMap, secret, downwardAPI,
//!   projected, hostPath and PVC volumes on disk and their mounts.
//! - `server.rs`: the kubelet HTTPS API (logs); `logs.rs`: reading CRI log files.
//! - `stats.rs`: sampling node and pod usage for the Summary API (`/stats/summary`);
//!   `metrics.rs`: the agent's Prometheus `/metrics`.
//! - `api.rs`: reading kube-rs errors, retrying transient ones.

pub mod agent;
mod api;
pub mod config;
mod containerd;
pub mod env;
mod heartbeat;
pub mod lease;
pub mod logs;
pub mod metrics;
pub mod node;
mod pods;
pub mod runtime;
pub mod server;
mod sim;
pub mod stats;
pub mod status;
pub mod stream;
pub mod volumes;

pub use agent::{Agent, AgentConfig};
pub use config::{Ipv4Cidr, SimConfig};
pub use sim::{Error, Result, Sim, run_sim};
