//! rkube's node agent. Today it runs simulated nodes (like kwok): thousands of Nodes from
//! one process, each with a Lease heartbeat and pods that "run" without containers. The
//! pod workers talk to containers only through the [`runtime::Runtime`] trait, where the
//! CRI runtime (containerd) will slot in.
//!
//! Entry points: [`run_sim`] (what `rkube sim --nodes N` runs) and [`Sim`] when the caller
//! wants to fail and recover nodes.
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
//! - `api.rs`: reading kube-rs errors, retrying transient ones.

mod api;
pub mod config;
mod heartbeat;
pub mod lease;
pub mod node;
mod pods;
pub mod runtime;
mod sim;
pub mod status;

pub use config::{Ipv4Cidr, SimConfig};
pub use sim::{Error, Result, Sim, run_sim};
