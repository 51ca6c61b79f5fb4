//! Canonical flow keys: both directions of a connection map to one key.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::net::IpAddr;

use crate::decode::{TcpPacket, VlanStack};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// Which endpoint of a canonical key sent a packet: `Lo` is the lower endpoint of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Lo,
    Hi,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Side::Lo => 0,
            Side::Hi => 1,
        }
    }
}

/// A connection's identity: its two endpoints in canonical order plus the VLAN and tunnel it was
/// seen in, so that overlapping address spaces never mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub lo: Endpoint,
    pub hi: Endpoint,
    pub vlan: VlanStack,
    pub tunnel: u64,
}

impl FlowKey {
    /// The key of the packet's connection and which side of it sent the packet.
    pub fn of(packet: &TcpPacket<'_>) -> (FlowKey, Side) {
        let src = Endpoint { ip: packet.src, port: packet.src_port };
        let dst = Endpoint { ip: packet.dst, port: packet.dst_port };
        let (lo, hi, side) = if src <= dst { (src, dst, Side::Lo) } else { (dst, src, Side::Hi) };
        (FlowKey { lo, hi, vlan: packet.vlan, tunnel: packet.tunnel }, side)
    }

    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::Lo => self.lo,
            Side::Hi => self.hi,
        }
    }

    /// A hash that is the same for both directions and independent of the process (for sharding
    /// flows to workers deterministically).
    pub fn symmetric_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = rustc_hash::FxHasher::default();
        self.hash(&mut hasher);
        hasher.finish()
    }
}
