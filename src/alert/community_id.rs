//! Community ID v1 (corelight's community-id-spec): one flow hash that Zeek, Suricata, Arkime and
//! Elastic all compute the same way, so an alert joins their records of the same connection.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use serde::{Serialize, Serializer};
use sha1::{Digest, Sha1};

/// IANA protocol number of TCP, the only transport credwatch reports on.
pub const PROTO_TCP: u8 = 6;

/// Length of a v1 ID: `1:` and the 28 base64 characters of a 20-byte SHA-1.
const ID_LEN: usize = 30;

/// A Community ID, kept as its text on the stack: one is computed for every alert written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommunityId {
    text: [u8; ID_LEN],
}

impl CommunityId {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

impl fmt::Display for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CommunityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<&str> for CommunityId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for CommunityId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The Community ID v1 of a flow with ports (TCP, UDP, SCTP): `1:` and the base64 of
/// SHA1(seed, lower endpoint address, higher address, proto, 0, lower port, higher port), all in
/// network byte order. Either direction of a flow gives the same ID.
pub fn community_id_v1(seed: u16, a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> CommunityId {
    let a_bytes = AddressBytes::of(a.0);
    let b_bytes = AddressBytes::of(b.0);
    let a_first = (a_bytes.as_slice(), a.1) <= (b_bytes.as_slice(), b.1);
    let ((lo_addr, lo_port), (hi_addr, hi_port)) =
        if a_first { ((a_bytes, a.1), (b_bytes, b.1)) } else { ((b_bytes, b.1), (a_bytes, a.1)) };
    let mut hasher = Sha1::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(lo_addr.as_slice());
    hasher.update(hi_addr.as_slice());
    hasher.update([proto, 0]);
    hasher.update(lo_port.to_be_bytes());
    hasher.update(hi_port.to_be_bytes());
    let mut text = [0u8; ID_LEN];
    let (prefix, digest_text) = text.split_at_mut(2);
    prefix.copy_from_slice(b"1:");
    // 20 bytes always encode to exactly 28 characters, which is the room left.
    let written = base64::engine::general_purpose::STANDARD.encode_slice(hasher.finalize(), digest_text);
    debug_assert_eq!(written.ok(), Some(ID_LEN - 2));
    CommunityId { text }
}

/// An address in network byte order, without an allocation.
#[derive(Clone, Copy)]
struct AddressBytes {
    octets: [u8; 16],
    len: usize,
}

impl AddressBytes {
    fn of(ip: IpAddr) -> AddressBytes {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                AddressBytes { octets: [a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], len: 4 }
            }
            IpAddr::V6(v6) => AddressBytes { octets: v6.octets(), len: 16 },
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.octets.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of the spec's `baseline/baseline_deflt.json` (seed 0) and `baseline_seed1.json`
    /// (seed 1) for the protocols with ports: (seed, proto, saddr, sport, daddr, dport, id).
    const SPEC_VECTORS: &[(u16, u8, &str, u16, &str, u16, &str)] = &[
        (0, 6, "128.232.110.120", 34855, "66.35.250.204", 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        (0, 6, "66.35.250.204", 80, "128.232.110.120", 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
        (
            0,
            6,
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            63943,
            "2607:f8b0:400c:c03::1a",
            25,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        ),
        (
            0,
            6,
            "2607:f8b0:400c:c03::1a",
            25,
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            63943,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
        ),
        (0, 17, "192.168.1.52", 54585, "8.8.8.8", 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
        (0, 17, "8.8.8.8", 53, "192.168.1.52", 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
        (0, 132, "192.168.170.8", 7, "192.168.170.56", 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
        (0, 132, "192.168.170.56", 7, "192.168.170.8", 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
        (1, 6, "128.232.110.120", 34855, "66.35.250.204", 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (
            1,
            6,
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            63943,
            "2607:f8b0:400c:c03::1a",
            25,
            "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        ),
        (1, 17, "8.8.8.8", 53, "192.168.1.52", 54585, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    ];

    #[test]
    fn matches_the_spec_baseline() {
        for &(seed, proto, saddr, sport, daddr, dport, expected) in SPEC_VECTORS {
            let source = (saddr.parse().unwrap(), sport);
            let dest = (daddr.parse().unwrap(), dport);
            assert_eq!(community_id_v1(seed, source, dest, proto), expected, "{saddr}:{sport} -> {daddr}:{dport}");
        }
    }

    #[test]
    fn same_address_orders_by_port() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let one_way = community_id_v1(0, (ip, 40000), (ip, 110), PROTO_TCP);
        assert_eq!(one_way, community_id_v1(0, (ip, 110), (ip, 40000), PROTO_TCP));
        assert_ne!(one_way, community_id_v1(0, (ip, 40001), (ip, 110), PROTO_TCP));
    }
}
