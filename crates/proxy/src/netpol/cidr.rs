//! IPv4 CIDR blocks, and `ipBlock.except` as plain arithmetic: a block minus its exceptions
//! is a short list of smaller blocks (at most 32 per exception), so an `ipBlock` becomes a
//! few `-s`/`-d` matches instead of a helper chain or a mark.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 block with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: u32,
    len: u8,
}

fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Cidr> {
        (len <= 32).then(|| Cidr {
            addr: u32::from(addr) & mask(len),
            len,
        })
    }

    /// `a.b.c.d/n`; `None` for anything else (IPv6 blocks included: these rules are IPv4).
    /// Host bits are cleared, as the kernel does with `-s 10.0.0.1/8`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = s.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        // Only plain decimal digits: `u8::from_str` would also take `+8`.
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Cidr::new(addr, len.parse().ok()?)
    }

    /// Whether every address of `other` is in `self`.
    pub fn contains(self, other: Cidr) -> bool {
        self.len <= other.len && other.addr & mask(self.len) == self.addr
    }

    /// The addresses of `self` that are in none of `except`, as disjoint blocks in address
    /// order. Exceptions outside `self` change nothing; one covering `self` leaves nothing.
    pub fn subtract(self, except: &[Cidr]) -> Vec<Cidr> {
        let mut blocks = vec![self];
        for &e in except {
            let mut next = Vec::with_capacity(blocks.len());
            for b in blocks {
                if e.contains(b) {
                    continue;
                }
                if !b.contains(e) {
                    next.push(b);
                    continue;
                }
                // `b` minus `e`: at each prefix length between them, the half that does not
                // lead towards `e`.
                for l in b.len..e.len {
                    let bit = 1u32 << (31 - u32::from(l));
                    next.push(Cidr {
                        addr: (e.addr ^ bit) & mask(l + 1),
                        len: l + 1,
                    });
                }
            }
            blocks = next;
        }
        blocks.sort();
        blocks
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).expect("cidr")
    }

    fn texts(blocks: &[Cidr]) -> Vec<String> {
        blocks.iter().map(Cidr::to_string).collect()
    }

    #[test]
    fn parse_clears_host_bits_and_refuses_non_ipv4() {
        assert_eq!(c("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "fd00::/8",
            "x/8",
            "10.0.0.0/",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn except_leaves_the_rest_of_the_block() {
        assert_eq!(
            texts(&c("10.0.0.0/24").subtract(&[c("10.0.0.128/25")])),
            ["10.0.0.0/25"]
        );
        assert_eq!(
            texts(&c("10.0.0.0/24").subtract(&[c("10.0.0.0/26")])),
            ["10.0.0.64/26", "10.0.0.128/25"]
        );
        // Two exceptions, one of them a single address.
        assert_eq!(
            texts(&c("10.0.0.0/29").subtract(&[c("10.0.0.4/30"), c("10.0.0.1/32")])),
            ["10.0.0.0/32", "10.0.0.2/31"]
        );
    }

    #[test]
    fn except_outside_or_covering_the_block() {
        assert_eq!(
            texts(&c("10.0.0.0/24").subtract(&[c("10.0.1.0/24")])),
            ["10.0.0.0/24"]
        );
        assert!(c("10.0.0.0/24").subtract(&[c("10.0.0.0/16")]).is_empty());
    }

    #[test]
    fn everything_but_one_address_takes_32_blocks() {
        let blocks = c("0.0.0.0/0").subtract(&[c("10.42.0.7/32")]);
        assert_eq!(blocks.len(), 32);
        let seven = c("10.42.0.7/32");
        assert!(blocks.iter().all(|b| !b.contains(seven)));
        assert!(blocks.iter().any(|b| b.contains(c("10.42.0.6/32"))));
        assert!(blocks.iter().any(|b| b.contains(c("192.168.0.1/32"))));
    }
}
