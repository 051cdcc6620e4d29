//! Pod IP pools for the simulated runtime.
//!
//! Pools are process-wide, keyed by block, because several nodes (and several
//! simulators in one process) share a block once there are more nodes than blocks. Each
//! held address records its holder (runtime instance and pod), so that only the holder
//! frees it and a restarted simulator can take over the addresses of its pods.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};

use super::sim::lock;
use crate::config::Ipv4Cidr;

/// Who holds a pod IP: one pod of one runtime instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub runtime: u64,
    pub uid: String,
}

/// Runtime instances in this process, to tell their IP holds apart.
pub(crate) static RUNTIME_IDS: AtomicU64 = AtomicU64::new(0);

/// Held addresses per pod-IP block, for the whole process.
static POOLS: LazyLock<Mutex<HashMap<Ipv4Cidr, Pool>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// One block's addresses. Offsets 0 (network), 1 (the bridge gateway, as with CNI's bridge
/// plugin) and the last (broadcast) are never handed out.
struct Pool {
    held: HashMap<u64, Owner>,
    size: u64,
    /// Where the next search starts, so a freed address is not reused at once.
    next: u64,
}

impl Pool {
    fn new(block: Ipv4Cidr) -> Pool {
        Pool {
            held: HashMap::new(),
            size: block.size(),
            next: 2,
        }
    }

    fn usable(&self, off: u64) -> bool {
        off >= 2 && off + 1 < self.size
    }
}

fn offset(block: Ipv4Cidr, ip: Ipv4Addr) -> u64 {
    u64::from(u32::from(ip).wrapping_sub(u32::from(block.addr)))
}

pub(crate) fn allocate_ip(block: Ipv4Cidr, owner: &Owner) -> Option<Ipv4Addr> {
    let mut pools = lock(&POOLS);
    let pool = pools.entry(block).or_insert_with(|| Pool::new(block));
    let span = pool.size.saturating_sub(3);
    for i in 0..span {
        let off = 2 + (pool.next - 2 + i) % span;
        if let Entry::Vacant(slot) = pool.held.entry(off) {
            slot.insert(owner.clone());
            pool.next = if off + 2 < pool.size { off + 1 } else { 2 };
            return block.nth(off);
        }
    }
    None
}

/// Holds `ip` for `owner`: free, or held for the same pod by another runtime instance (a
/// simulator restarted in this process), which loses it.
pub(crate) fn reserve_ip(block: Ipv4Cidr, ip: Ipv4Addr, owner: &Owner) -> bool {
    let off = offset(block, ip);
    let mut pools = lock(&POOLS);
    let pool = pools.entry(block).or_insert_with(|| Pool::new(block));
    if !pool.usable(off) {
        return false;
    }
    match pool.held.get(&off) {
        Some(h) if h.uid != owner.uid => false,
        _ => {
            pool.held.insert(off, owner.clone());
            true
        }
    }
}

/// Frees `ip` if `owner` still holds it.
pub(crate) fn release_ip(block: Ipv4Cidr, ip: Ipv4Addr, owner: &Owner) {
    let off = offset(block, ip);
    if let Some(pool) = lock(&POOLS).get_mut(&block)
        && pool.held.get(&off) == Some(owner)
    {
        pool.held.remove(&off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_hands_out_each_usable_address_once() {
        let b = Ipv4Cidr::new(Ipv4Addr::new(10, 251, 0, 0), 29);
        let o = |uid: &str| Owner {
            runtime: 0,
            uid: uid.into(),
        };
        let got: Vec<_> = std::iter::from_fn(|| allocate_ip(b, &o("a"))).collect();
        // .0 network, .1 gateway, .7 broadcast are never used.
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], Ipv4Addr::new(10, 251, 0, 2));
        assert_eq!(got[4], Ipv4Addr::new(10, 251, 0, 6));
        release_ip(b, got[1], &o("someone else"));
        assert_eq!(
            allocate_ip(b, &o("b")),
            None,
            "only the holder frees an address"
        );
        release_ip(b, got[1], &o("a"));
        assert_eq!(allocate_ip(b, &o("b")), Some(got[1]));
        assert!(!reserve_ip(b, got[0], &o("c")));
        assert!(
            reserve_ip(
                b,
                got[1],
                &Owner {
                    runtime: 1,
                    uid: "b".into()
                }
            ),
            "the same pod in a new runtime takes its address over"
        );
        release_ip(b, got[1], &o("b"));
        assert!(
            !reserve_ip(b, got[1], &o("c")),
            "the old runtime no longer frees it"
        );
    }
}
