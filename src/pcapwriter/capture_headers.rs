//! Headers capturing systems put before a packet they log, written from their specifications:
//! Linux netfilter's NFLOG (tcpdump.org's LINKTYPE_NFLOG, the kernel's nfnetlink_log.h) and
//! Apple's PKTAP (LINKTYPE_PKTAP, xnu's bsd/net/pktap.h).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::conversation::{ScriptError, Side};

/// Linux address families, as NFLOG's header gives them.
const LINUX_AF_INET: u8 = 2;
const LINUX_AF_INET6: u8 = 10;
/// The NFLOG group the rule logs to (`-j NFLOG --nflog-group 5`), the header's resource id.
const NFLOG_GROUP: u16 = 5;
/// Attribute types (nfnetlink_log.h): the packet header (hardware protocol, netfilter hook),
/// the rule's prefix, the input or output interface, and the packet.
const NFULA_PACKET_HDR: u16 = 1;
const NFULA_IFINDEX_INDEV: u16 = 4;
const NFULA_IFINDEX_OUTDEV: u16 = 5;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;
/// Netfilter hooks: the server's packets are logged coming in to the client host, the client's
/// going out of it.
const NF_INET_LOCAL_IN: u8 = 1;
const NF_INET_LOCAL_OUT: u8 = 3;
/// The prefix of the logging rule (`--nflog-prefix mail`), NUL-terminated: 5 bytes, so that the
/// attribute after it is padded.
const NFLOG_PREFIX: &[u8] = b"mail\0";
const NFLOG_INTERFACE_INDEX: u32 = 2;
const NFLOG_TLV_HEADER_LEN: usize = 4;
const NFLOG_TLV_ALIGN: usize = 4;

/// Appends an NFLOG record of an IP packet (`ipv6` or not) sent by `from`, as a little-endian
/// host logs it: attributes' lengths and types in host byte order, their values in network byte
/// order, each attribute padded to a multiple of 4 bytes, the packet last.
pub(super) fn push_nflog(frame: &mut Vec<u8>, packet: &[u8], ipv6: bool, from: Side) -> Result<(), ScriptError> {
    let (family, ether_type) = if ipv6 { (LINUX_AF_INET6, 0x86DDu16) } else { (LINUX_AF_INET, 0x0800) };
    frame.extend_from_slice(&[family, 0]);
    frame.extend_from_slice(&NFLOG_GROUP.to_be_bytes());
    let (hook, interface) = match from {
        Side::Client => (NF_INET_LOCAL_OUT, NFULA_IFINDEX_OUTDEV),
        Side::Server => (NF_INET_LOCAL_IN, NFULA_IFINDEX_INDEV),
    };
    let [protocol_high, protocol_low] = ether_type.to_be_bytes();
    push_nflog_tlv(frame, NFULA_PACKET_HDR, &[protocol_high, protocol_low, hook, 0])?;
    push_nflog_tlv(frame, NFULA_PREFIX, NFLOG_PREFIX)?;
    push_nflog_tlv(frame, interface, &NFLOG_INTERFACE_INDEX.to_be_bytes())?;
    push_nflog_tlv(frame, NFULA_PAYLOAD, packet)
}

fn push_nflog_tlv(frame: &mut Vec<u8>, tlv_type: u16, value: &[u8]) -> Result<(), ScriptError> {
    let length = NFLOG_TLV_HEADER_LEN + value.len();
    let length = u16::try_from(length)
        .map_err(|_| ScriptError::OutOfRange { field: "NFLOG attribute length", value: length as u64 })?;
    frame.extend_from_slice(&length.to_le_bytes());
    frame.extend_from_slice(&tlv_type.to_le_bytes());
    frame.extend_from_slice(value);
    frame.resize(frame.len().next_multiple_of(NFLOG_TLV_ALIGN), 0);
    Ok(())
}

/// The PKTAP header macOS writes today: version 1's 108 bytes, then the flow id, IP protocol,
/// time stamp and the process's UUIDs.
const PKTAP_HEADER_LEN: u32 = 156;
const PKTAP_RECORD_PACKET: u32 = 1;
/// DLT_EN10MB: the frame after the header is Ethernet.
const DLT_EN10MB: u32 = 1;
const PKTAP_INTERFACE: &[u8] = b"en0";
const PKTAP_IFNAME_LEN: usize = 24;
/// Direction flags (PTH_FLAG_DIR_IN, PTH_FLAG_DIR_OUT).
const PTH_FLAG_DIR_IN: u32 = 0x01;
const PTH_FLAG_DIR_OUT: u32 = 0x02;
/// macOS's protocol families for IPv4 and IPv6.
const DARWIN_PF_INET: u32 = 2;
const DARWIN_PF_INET6: u32 = 30;
const ETHERNET_HEADER_LEN: u32 = 14;
/// The mail client the packets belong to, by process id and command name (MAXCOMLEN + 1 bytes,
/// padded to 20).
const PKTAP_PID: u32 = 4242;
const PKTAP_COMMAND: &[u8] = b"Mail";
const PKTAP_COMMAND_LEN: usize = 20;
/// IFT_ETHER, en0's interface type, and its unit number.
const IFT_ETHER: u16 = 6;
const PKTAP_FLOW_ID: u32 = 0x0001_2345;
const IPPROTO_TCP: u32 = 6;
const PKTAP_UUID: [u8; 16] = [0x5a; 16];

/// Appends the PKTAP header macOS's `pktap` interface puts before an Ethernet frame of an IP
/// packet (`ipv6` or not) that the mail client on the capturing host sent (`from` the client) or
/// received: every field little-endian, as Apple hosts write them.
pub(super) fn push_pktap(frame: &mut Vec<u8>, ipv6: bool, from: Side) {
    frame.extend_from_slice(&PKTAP_HEADER_LEN.to_le_bytes());
    frame.extend_from_slice(&PKTAP_RECORD_PACKET.to_le_bytes());
    frame.extend_from_slice(&DLT_EN10MB.to_le_bytes());
    push_padded(frame, PKTAP_INTERFACE, PKTAP_IFNAME_LEN);
    let direction = match from {
        Side::Client => PTH_FLAG_DIR_OUT,
        Side::Server => PTH_FLAG_DIR_IN,
    };
    frame.extend_from_slice(&direction.to_le_bytes());
    frame.extend_from_slice(&(if ipv6 { DARWIN_PF_INET6 } else { DARWIN_PF_INET }).to_le_bytes());
    frame.extend_from_slice(&ETHERNET_HEADER_LEN.to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&PKTAP_PID.to_le_bytes());
    push_padded(frame, PKTAP_COMMAND, PKTAP_COMMAND_LEN);
    // Service class 0 (best effort), interface type and unit.
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&IFT_ETHER.to_le_bytes());
    frame.extend_from_slice(&0u16.to_le_bytes());
    frame.extend_from_slice(&PKTAP_PID.to_le_bytes());
    push_padded(frame, PKTAP_COMMAND, PKTAP_COMMAND_LEN);
    frame.extend_from_slice(&PKTAP_FLOW_ID.to_le_bytes());
    frame.extend_from_slice(&IPPROTO_TCP.to_le_bytes());
    // The time stamp (seconds, microseconds) is left 0, as for packets not tied to a flow yet.
    frame.extend_from_slice(&[0; 8]);
    frame.extend_from_slice(&PKTAP_UUID);
    frame.extend_from_slice(&PKTAP_UUID);
}

/// Appends `text` NUL-padded to `len` bytes.
fn push_padded(frame: &mut Vec<u8>, text: &[u8], len: usize) {
    let end = frame.len() + len;
    frame.extend_from_slice(text);
    frame.resize(end, 0);
}
