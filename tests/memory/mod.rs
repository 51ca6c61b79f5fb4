//! Helpers of the memory-bound tests, each alone in its binary so that the process's memory is
//! its test's: the process's resident memory, and POP3 packets between one server and numbered
//! clients.

use std::net::IpAddr;

use credwatch::decode::{TcpFlags, TcpPacket, VlanStack};

/// Memory of one live flow besides what the global budget counts (table entry, reassemblers,
/// compare tails, session with a partial line), measured at about 1.25 KiB; see bench/README.md.
pub const PER_FLOW_FIXED: u64 = 2 * 1024;
/// Allocator slack and the engine's scratch space.
pub const SLACK: u64 = 8 * 1024 * 1024;

/// A field of /proc/self/status in KiB (`VmRSS:`, `VmHWM:`).
pub fn kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A segment between client number `client` (10.x.y.z, port 40000) and the POP3 server.
pub fn packet(client: u32, from_client: bool, flags: u8, seq: u32, payload: &[u8]) -> TcpPacket<'_> {
    let [_, b, c, d] = client.to_be_bytes();
    let client_ip = IpAddr::from([10, b, c, d]);
    let server_ip = IpAddr::from([172, 16, 0, 1]);
    let (src, dst, src_port, dst_port) =
        if from_client { (client_ip, server_ip, 40_000, 110) } else { (server_ip, client_ip, 110, 40_000) };
    TcpPacket {
        src,
        dst,
        src_port,
        dst_port,
        seq,
        ack: 0,
        flags: TcpFlags(flags),
        window: 0,
        vlan: VlanStack::default(),
        tunnel: 0,
        payload,
        payload_missing: 0,
    }
}
