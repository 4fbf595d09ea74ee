//! ClusterIP and NodePort allocators, with kube-apiserver's static/dynamic split and random
//! scan (`randomScanStrategyWithOffset`): dynamic picks come from the upper band first.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::sim::SimRng;

/// A bitmap allocator over `0..max` with a reserved lower band `0..offset`.
#[derive(Debug, Clone)]
pub struct Bitmap {
    max: u32,
    offset: u32,
    used: BTreeSet<u32>,
}

impl Bitmap {
    pub fn new(max: u32, offset: u32) -> Self {
        Bitmap {
            max,
            offset: offset.min(max),
            used: BTreeSet::new(),
        }
    }

    pub fn is_used(&self, i: u32) -> bool {
        self.used.contains(&i)
    }

    pub fn mark(&mut self, i: u32) -> bool {
        i < self.max && self.used.insert(i)
    }

    pub fn release(&mut self, i: u32) {
        self.used.remove(&i);
    }

    /// Random start in the upper band, scan forward with wrap; then the lower band.
    pub fn allocate(&mut self, rng: &SimRng) -> Option<u32> {
        for (lo, hi) in [(self.offset, self.max), (0, self.offset)] {
            let span = hi - lo;
            if span == 0 {
                continue;
            }
            let used_in_band = self.used.range(lo..hi).count() as u32;
            if used_in_band >= span {
                continue;
            }
            let start = rng.below(u64::from(span)) as u32;
            for i in 0..span {
                let at = lo + (start + i) % span;
                if !self.used.contains(&at) {
                    self.used.insert(at);
                    return Some(at);
                }
            }
        }
        None
    }
}

/// Service ClusterIPs from one IPv4 CIDR (offsets relative to network+1, as upstream).
#[derive(Debug, Clone)]
pub struct IpAllocator {
    pub network: Ipv4Addr,
    pub prefix: u8,
    bitmap: Bitmap,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("provided IP is not in the valid range. The range of valid IPs is {0}")]
    IpOutOfRange(String),
    #[error("provided IP is already allocated")]
    IpAllocated,
    #[error("provided port is not in the valid range. The range of valid ports is {0}")]
    PortOutOfRange(String),
    #[error("provided port is already allocated")]
    PortAllocated,
    #[error("range is full")]
    Full,
}

impl IpAllocator {
    pub fn new(network: Ipv4Addr, prefix: u8) -> Self {
        let size: u64 = 1u64 << (32 - u32::from(prefix));
        // Usable addresses exclude network and broadcast.
        let max = size.saturating_sub(2).min(u64::from(u32::MAX)) as u32;
        let offset = if size < 16 {
            0
        } else {
            (size / 16).clamp(16, 256) as u32
        };
        IpAllocator {
            network,
            prefix,
            bitmap: Bitmap::new(max, offset),
        }
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network, self.prefix)
    }

    fn index(&self, ip: Ipv4Addr) -> Option<u32> {
        let n = u32::from(self.network);
        let v = u32::from(ip);
        let i = v.checked_sub(n)?.checked_sub(1)?;
        (i < self.bitmap.max).then_some(i)
    }

    /// The address at a given 1-based index (`nth(1)` = 10.96.0.1).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network).wrapping_add(n))
    }

    pub fn allocate_specific(&mut self, ip: Ipv4Addr) -> Result<(), AllocError> {
        let i = self
            .index(ip)
            .ok_or_else(|| AllocError::IpOutOfRange(self.cidr()))?;
        if self.bitmap.mark(i) {
            Ok(())
        } else {
            Err(AllocError::IpAllocated)
        }
    }

    pub fn allocate_next(&mut self, rng: &SimRng) -> Result<Ipv4Addr, AllocError> {
        let i = self.bitmap.allocate(rng).ok_or(AllocError::Full)?;
        Ok(self.nth(i + 1))
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        if let Some(i) = self.index(ip) {
            self.bitmap.release(i);
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.index(ip).is_some()
    }
}

/// NodePorts from `base..base+size`.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    pub base: u16,
    pub size: u16,
    bitmap: Bitmap,
}

impl PortAllocator {
    pub fn new(base: u16, size: u16) -> Self {
        let offset = (u32::from(size) / 32).clamp(16, 128);
        PortAllocator {
            base,
            size,
            bitmap: Bitmap::new(u32::from(size), offset),
        }
    }

    pub fn range(&self) -> String {
        format!(
            "{}-{}",
            self.base,
            u32::from(self.base) + u32::from(self.size) - 1
        )
    }

    pub fn allocate_specific(&mut self, port: i64) -> Result<(), AllocError> {
        let i = port - i64::from(self.base);
        if i < 0 || i >= i64::from(self.size) {
            return Err(AllocError::PortOutOfRange(self.range()));
        }
        if self.bitmap.mark(i as u32) {
            Ok(())
        } else {
            Err(AllocError::PortAllocated)
        }
    }

    pub fn is_free(&self, port: i64) -> Result<(), AllocError> {
        let i = port - i64::from(self.base);
        if i < 0 || i >= i64::from(self.size) {
            return Err(AllocError::PortOutOfRange(self.range()));
        }
        if self.bitmap.is_used(i as u32) {
            Err(AllocError::PortAllocated)
        } else {
            Ok(())
        }
    }

    pub fn allocate_next(&mut self, rng: &SimRng) -> Result<i64, AllocError> {
        let i = self.bitmap.allocate(rng).ok_or(AllocError::Full)?;
        Ok(i64::from(self.base) + i64::from(i))
    }

    pub fn release(&mut self, port: i64) {
        let i = port - i64::from(self.base);
        if i >= 0 && i < i64::from(self.size) {
            self.bitmap.release(i as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ips_come_from_the_upper_band() {
        let mut a = IpAllocator::new(Ipv4Addr::new(10, 96, 0, 0), 12);
        let rng = SimRng::new(1, "t");
        assert_eq!(a.nth(1), Ipv4Addr::new(10, 96, 0, 1));
        a.allocate_specific(Ipv4Addr::new(10, 96, 0, 1)).unwrap();
        assert_eq!(
            a.allocate_specific(Ipv4Addr::new(10, 96, 0, 1)),
            Err(AllocError::IpAllocated)
        );
        for _ in 0..200 {
            let ip = u32::from(a.allocate_next(&rng).unwrap());
            // Reference 1.17: dynamic IPs start at 10.96.1.1 for a /12.
            assert!(ip >= u32::from(Ipv4Addr::new(10, 96, 1, 1)));
            assert!(ip < u32::from(Ipv4Addr::new(10, 111, 255, 255)));
        }
        assert!(matches!(
            a.allocate_specific(Ipv4Addr::new(192, 168, 0, 1)),
            Err(AllocError::IpOutOfRange(r)) if r == "10.96.0.0/12"
        ));
    }

    #[test]
    fn node_ports_come_from_30086_up_first() {
        let mut p = PortAllocator::new(30000, 2768);
        let rng = SimRng::new(3, "t");
        for _ in 0..500 {
            let port = p.allocate_next(&rng).unwrap();
            assert!((30086..=32767).contains(&port), "{port}");
        }
        assert_eq!(
            p.allocate_specific(20000).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
    }

    #[test]
    fn a_full_upper_band_falls_back_to_the_lower_band() {
        let mut b = Bitmap::new(20, 16);
        let rng = SimRng::new(0, "t");
        let mut got: Vec<u32> = (0..20).map(|_| b.allocate(&rng).unwrap()).collect();
        assert!(got[..4].iter().all(|i| *i >= 16));
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert_eq!(b.allocate(&rng), None);
    }
}
