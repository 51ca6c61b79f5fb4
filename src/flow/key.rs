//! Canonical flow keys: both directions of a connection map to one key.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::decode::{TcpPacket, VlanStack};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    /// `self <= other`, as integers when both are of one family (every packet's two are): the
    /// derived order compares an enum and byte arrays, on every packet.
    fn precedes(&self, other: &Endpoint) -> bool {
        match (self.ip, other.ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a), self.port) <= (u32::from(b), other.port),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), self.port) <= (u128::from(b), other.port),
            _ => self <= other,
        }
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub lo: Endpoint,
    pub hi: Endpoint,
    pub vlan: VlanStack,
    pub tunnel: u64,
}

/// The VLAN ids, 12 bits each, below their count: one word per stack, a different one for every
/// stack.
fn vlan_word(vlan: &VlanStack) -> u64 {
    let ids = vlan.as_slice();
    ids.iter().fold(ids.len() as u64, |word, id| word << 12 | u64::from(*id))
}

impl Hash for FlowKey {
    /// Hashed once or twice per packet, so as a few whole words (an IPv4 endpoint is one) rather
    /// than field by field, which costs a hasher round per field and per length prefix.
    fn hash<H: Hasher>(&self, state: &mut H) {
        for endpoint in [&self.lo, &self.hi] {
            let port = u64::from(endpoint.port);
            match endpoint.ip {
                IpAddr::V4(ip) => state.write_u64(u64::from(u32::from(ip)) << 16 | port),
                IpAddr::V6(ip) => {
                    let bits = u128::from(ip);
                    state.write_u64(bits as u64);
                    state.write_u64((bits >> 64) as u64 ^ port << 48 ^ 1);
                }
            }
        }
        state.write_u64(vlan_word(&self.vlan));
        state.write_u64(self.tunnel);
    }
}

impl FlowKey {
    /// The key of the packet's connection and which side of it sent the packet.
    pub fn of(packet: &TcpPacket<'_>) -> (FlowKey, Side) {
        let src = Endpoint { ip: packet.src, port: packet.src_port };
        let dst = Endpoint { ip: packet.dst, port: packet.dst_port };
        let (lo, hi, side) = if src.precedes(&dst) { (src, dst, Side::Lo) } else { (dst, src, Side::Hi) };
        (FlowKey { lo, hi, vlan: packet.vlan, tunnel: packet.tunnel }, side)
    }

    pub fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::Lo => self.lo,
            Side::Hi => self.hi,
        }
    }

    /// A hash of the packet's connection, the same for both directions and independent of the
    /// process, computed from the packet without building its key: the reading thread routes
    /// every segment of a threaded run with it, so it is a few integer operations.
    pub fn route_hash(packet: &TcpPacket<'_>) -> u64 {
        let endpoint = |ip: IpAddr, port: u16| -> u64 {
            let address = match ip {
                IpAddr::V4(ip) => u64::from(u32::from(ip)),
                IpAddr::V6(ip) => {
                    let bits = u128::from(ip);
                    (bits as u64) ^ (bits >> 64) as u64 ^ 1 << 63
                }
            };
            address.rotate_left(16) ^ u64::from(port)
        };
        let (src, dst) = (endpoint(packet.src, packet.src_port), endpoint(packet.dst, packet.dst_port));
        let mut hasher = rustc_hash::FxHasher::default();
        // Sum and product of the endpoints: both orders give the same pair.
        hasher.write_u64(src.wrapping_add(dst));
        hasher.write_u64(src.wrapping_mul(dst));
        hasher.write_u64(vlan_word(&packet.vlan));
        hasher.write_u64(packet.tunnel);
        hasher.finish()
    }

    /// A hash that is the same for both directions and independent of the process (for flow
    /// ids that do not depend on the thread count).
    pub fn symmetric_hash(&self) -> u64 {
        let mut hasher = rustc_hash::FxHasher::default();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;

    fn packet(
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
        vlans: &[u16],
        tunnel: u64,
    ) -> TcpPacket<'static> {
        let mut vlan = VlanStack::default();
        vlans.iter().for_each(|id| vlan.push(*id));
        TcpPacket {
            src,
            dst,
            src_port,
            dst_port,
            seq: 0,
            ack: 0,
            flags: TcpFlags(TcpFlags::ACK),
            window: 0,
            vlan,
            tunnel,
            payload: &[],
            payload_missing: 0,
        }
    }

    #[test]
    fn endpoints_order_as_the_derived_order_says() {
        let endpoints: Vec<Endpoint> =
            ["10.0.0.1", "10.0.0.2", "9.255.255.255", "fd00::1", "::ffff:10.0.0.1", "fd00::1:0"]
                .iter()
                .flat_map(|ip| [0u16, 110, 40_000].map(|port| Endpoint { ip: ip.parse().unwrap(), port }))
                .collect();
        for a in &endpoints {
            for b in &endpoints {
                assert_eq!(a.precedes(b), a <= b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn both_directions_share_key_and_hash_and_any_field_changes_the_hash() {
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let v6: IpAddr = "fd00::1".parse().unwrap();
        let (forward, forward_side) = FlowKey::of(&packet(a, 40_000, b, 110, &[5], 0));
        let (backward, backward_side) = FlowKey::of(&packet(b, 110, a, 40_000, &[5], 0));
        assert_eq!(forward, backward);
        assert_eq!(forward.symmetric_hash(), backward.symmetric_hash());
        assert_ne!(forward_side, backward_side);
        let variants = [
            packet(a, 40_001, b, 110, &[5], 0),
            packet(a, 40_000, b, 110, &[6], 0),
            packet(a, 40_000, b, 110, &[5, 6], 0),
            packet(a, 40_000, b, 110, &[], 0),
            packet(a, 40_000, b, 110, &[5], 7),
            packet(v6, 40_000, b, 110, &[5], 0),
        ];
        let forward_route = FlowKey::route_hash(&packet(a, 40_000, b, 110, &[5], 0));
        assert_eq!(FlowKey::route_hash(&packet(b, 110, a, 40_000, &[5], 0)), forward_route);
        let v6_peer: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(
            FlowKey::route_hash(&packet(v6, 40_000, v6_peer, 143, &[], 3)),
            FlowKey::route_hash(&packet(v6_peer, 143, v6, 40_000, &[], 3))
        );
        for variant in &variants {
            let (key, _) = FlowKey::of(variant);
            assert_ne!(key, forward);
            assert_ne!(key.symmetric_hash(), forward.symmetric_hash(), "{key:?}");
            assert_ne!(FlowKey::route_hash(variant), forward_route, "{key:?}");
        }
    }
}
