//! Community ID v1 (corelight's community-id-spec): one flow hash that Zeek, Suricata, Arkime and
//! Elastic all compute the same way, so an alert joins their records of the same connection.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// IANA protocol number of TCP, the only transport credwatch reports on.
pub const PROTO_TCP: u8 = 6;

/// The Community ID v1 of a flow with ports (TCP, UDP, SCTP): `1:` and the base64 of
/// SHA1(seed, lower endpoint address, higher address, proto, 0, lower port, higher port), all in
/// network byte order. Either direction of a flow gives the same ID.
pub fn community_id_v1(seed: u16, a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> String {
    let a_bytes = address_bytes(a.0);
    let b_bytes = address_bytes(b.0);
    let a_first = (a_bytes.as_slice(), a.1) <= (b_bytes.as_slice(), b.1);
    let ((lo_addr, lo_port), (hi_addr, hi_port)) =
        if a_first { ((a_bytes, a.1), (b_bytes, b.1)) } else { ((b_bytes, b.1), (a_bytes, a.1)) };
    let mut hasher = Sha1::new();
    hasher.update(seed.to_be_bytes());
    hasher.update(&lo_addr);
    hasher.update(&hi_addr);
    hasher.update([proto, 0]);
    hasher.update(lo_port.to_be_bytes());
    hasher.update(hi_port.to_be_bytes());
    format!("1:{}", base64::engine::general_purpose::STANDARD.encode(hasher.finalize()))
}

fn address_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
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
