//! Headers capturing systems put before a packet they log, written from their specifications:
//! Linux netfilter's NFLOG (tcpdump.org's LINKTYPE_NFLOG, the kernel's nfnetlink_log.h).
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
