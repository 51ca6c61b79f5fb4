//! Headers capturing systems put before a packet they log, written from their specifications:
//! Linux netfilter's NFLOG (tcpdump.org's LINKTYPE_NFLOG, the kernel's nfnetlink_log.h), Apple's
//! PKTAP (LINKTYPE_PKTAP, xnu's bsd/net/pktap.h), pf's log (LINKTYPE_PFLOG, NetBSD's
//! net/if_pflog.h), OpenBSD's enc (LINKTYPE_ENC, net/if_enc.h), Solaris's ipnet
//! (LINKTYPE_IPNET, libpcap's pcap/ipnet.h), Hilscher's netANALYZER (LINKTYPE_NETANALYZER and
//! LINKTYPE_NETANALYZER_TRANSPARENT) and Endace's ERF (LINKTYPE_ERF, the ERF records of the DAG
//! cards' manuals, with Wireshark's erf_record.h for the extension headers).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::conversation::{ScriptError, Side};
use super::link::{AF_INET, AF_INET6_DARWIN};
use crate::capture::Timestamp;

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
    frame.extend_from_slice(&(if ipv6 { AF_INET6_DARWIN } else { AF_INET }).to_le_bytes());
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

/// The BSDs' address families: AF_INET, and NetBSD's and OpenBSD's AF_INET6.
const BSD_AF_INET: u8 = 2;
const BSD_AF_INET6: u8 = 24;
/// struct pfloghdr as NetBSD (and OpenBSD before 4.8, and macOS) write it: its length field
/// says 61 bytes (the fields before the padding), then 3 bytes pad it to a multiple of 4.
const PFLOG_LENGTH: u8 = 61;
const PFLOG_PADDED_LEN: usize = 64;
/// Verdict pass (PF_PASS), reason match (PFRES_MATCH); directions PF_IN and PF_OUT.
const PF_PASS: u8 = 0;
const PFRES_MATCH: u8 = 0;
const PF_IN: u8 = 1;
const PF_OUT: u8 = 2;
const PFLOG_INTERFACE: &[u8] = b"wm0";
const PFLOG_NAME_LEN: usize = 16;
/// The rule that logged the packet (`pass log proto tcp to port { 110 143 }`, rule 3 of the main
/// ruleset: no subrule, -1).
const PFLOG_RULE: u32 = 3;
const PFLOG_NO_SUBRULE: u32 = u32::MAX;
/// Neither a socket's user nor process is known for a packet pf logs on its way (-1).
const PFLOG_UNKNOWN_ID: u32 = u32::MAX;

/// Appends the pflog header pf puts before a packet (`ipv6` or not) it passed and logged on the
/// client host, as a little-endian NetBSD host writes it: rule numbers big-endian, the socket's
/// and the rule's user and process ids in host order.
pub(super) fn push_pflog(frame: &mut Vec<u8>, ipv6: bool, from: Side) {
    let start = frame.len();
    let family = if ipv6 { BSD_AF_INET6 } else { BSD_AF_INET };
    frame.extend_from_slice(&[PFLOG_LENGTH, family, PF_PASS, PFRES_MATCH]);
    push_padded(frame, PFLOG_INTERFACE, PFLOG_NAME_LEN);
    push_padded(frame, b"", PFLOG_NAME_LEN);
    frame.extend_from_slice(&PFLOG_RULE.to_be_bytes());
    frame.extend_from_slice(&PFLOG_NO_SUBRULE.to_be_bytes());
    for _ in 0..4 {
        frame.extend_from_slice(&PFLOG_UNKNOWN_ID.to_le_bytes());
    }
    frame.push(match from {
        Side::Client => PF_OUT,
        Side::Server => PF_IN,
    });
    frame.resize(start + PFLOG_PADDED_LEN, 0);
}

/// enc's flags (OpenBSD's M_CONF and M_AUTH): the packet was encrypted and authenticated (ESP
/// with authentication), as IPsec in transport mode sends it.
const ENC_CONFIDENTIAL_AUTHENTIC: u32 = 0x0400 | 0x0800;
/// Each direction has its security association, named by the SPI its recipient chose.
const ENC_CLIENT_SPI: u32 = 0x1000_0001;
const ENC_SERVER_SPI: u32 = 0x2000_0002;

/// Appends the header OpenBSD's enc interface puts before an IPsec packet (`ipv6` or not) in
/// clear, from a little-endian host: family and flags in host order, the SPI big-endian.
pub(super) fn push_enc(frame: &mut Vec<u8>, ipv6: bool, from: Side) {
    let family = if ipv6 { BSD_AF_INET6 } else { BSD_AF_INET };
    frame.extend_from_slice(&u32::from(family).to_le_bytes());
    let spi = match from {
        Side::Client => ENC_CLIENT_SPI,
        Side::Server => ENC_SERVER_SPI,
    };
    frame.extend_from_slice(&spi.to_be_bytes());
    frame.extend_from_slice(&ENC_CONFIDENTIAL_AUTHENTIC.to_le_bytes());
}

/// ipnet: header version 2, Solaris's AF_INET and AF_INET6, hook types for a packet received
/// from and sent to another machine.
const IPNET_VERSION: u8 = 2;
const SOLARIS_AF_INET: u8 = 2;
const SOLARIS_AF_INET6: u8 = 26;
const IPNET_INBOUND: u16 = 0;
const IPNET_OUTBOUND: u16 = 1;
const IPNET_INTERFACE_INDEX: u32 = 2;
/// The global zone, both ends' (no group interface: 0).
const GLOBAL_ZONE: u32 = 0;

/// Appends the ipnet header Solaris's /dev/ipnet puts before an IP packet of `packet_len` bytes
/// (`ipv6` or not) on the client host; its fields are big-endian.
pub(super) fn push_ipnet(frame: &mut Vec<u8>, packet_len: usize, ipv6: bool, from: Side) -> Result<(), ScriptError> {
    let family = if ipv6 { SOLARIS_AF_INET6 } else { SOLARIS_AF_INET };
    frame.extend_from_slice(&[IPNET_VERSION, family]);
    let hook = match from {
        Side::Client => IPNET_OUTBOUND,
        Side::Server => IPNET_INBOUND,
    };
    frame.extend_from_slice(&hook.to_be_bytes());
    let length = u32::try_from(packet_len)
        .map_err(|_| ScriptError::OutOfRange { field: "ipnet packet length", value: packet_len as u64 })?;
    frame.extend_from_slice(&length.to_be_bytes());
    for field in [IPNET_INTERFACE_INDEX, 0, GLOBAL_ZONE, GLOBAL_ZONE] {
        frame.extend_from_slice(&field.to_be_bytes());
    }
    Ok(())
}

/// netANALYZER's header: version 1 (bits 10 to 13), the transparent mode flag, the capture port
/// (bits 14 and 15) and the frame's length (bits 16 to 27); no error flags.
const NETANALYZER_VERSION_1: u32 = 1 << 10;
const NETANALYZER_TRANSPARENT_MODE: u32 = 1 << 9;
const NETANALYZER_PORT_SHIFT: u32 = 14;
const NETANALYZER_LENGTH_SHIFT: u32 = 16;
const NETANALYZER_LENGTH_MAX: usize = 0x0fff;
/// An Ethernet frame's preamble (seven 0x55 octets) and start frame delimiter.
const PREAMBLE_AND_SFD: [u8; 8] = [0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0xD5];

/// Appends the netANALYZER header (little-endian) and `ethernet`, a whole Ethernet frame with its
/// frame check sequence, behind its preamble and start frame delimiter when `transparent`. The
/// tap captures each direction on its own port: the client's on port 0, the server's on port 1.
pub(super) fn push_netanalyzer(
    frame: &mut Vec<u8>,
    ethernet: &[u8],
    transparent: bool,
    from: Side,
) -> Result<(), ScriptError> {
    if ethernet.len() > NETANALYZER_LENGTH_MAX {
        return Err(ScriptError::OutOfRange { field: "netANALYZER frame length", value: ethernet.len() as u64 });
    }
    let port: u32 = match from {
        Side::Client => 0,
        Side::Server => 1,
    };
    let mode = if transparent { NETANALYZER_TRANSPARENT_MODE } else { 0 };
    let length = u32::try_from(ethernet.len()).unwrap_or(0);
    let header = NETANALYZER_VERSION_1 | mode | port << NETANALYZER_PORT_SHIFT | length << NETANALYZER_LENGTH_SHIFT;
    frame.extend_from_slice(&header.to_le_bytes());
    if transparent {
        frame.extend_from_slice(&PREAMBLE_AND_SFD);
    }
    frame.extend_from_slice(ethernet);
    Ok(())
}

/// What an ERF record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ErfRecord {
    /// An Ethernet frame with its frame check sequence (ERF type ETH).
    Ethernet,
    Ipv4,
    Ipv6,
}

const ERF_TYPE_ETH: u8 = 2;
const ERF_TYPE_IPV4: u8 = 22;
const ERF_TYPE_IPV6: u8 = 23;
/// The type's top bit, and an extension header's first bit: another extension header follows.
const ERF_EXTENSION_FOLLOWS: u8 = 0x80;
/// Flags: varying length records (not padded to the snap length); the capture port in the low
/// two bits.
const ERF_FLAG_VARYING_LENGTH: u8 = 0x04;
const ERF_HEADER_LEN: usize = 16;
const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Extension headers (types as in Wireshark's erf_record.h): the host id (type 17: source id,
/// then a 48-bit host id), then the flow id (type 16: source id, hash type, stack type, then a
/// 32-bit flow hash).
const ERF_EXT_HOST_ID: [u8; 8] = [17 | ERF_EXTENSION_FOLLOWS, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const ERF_EXT_FLOW_ID: [u8; 8] = [16, 1, 1, 0, 0x12, 0x34, 0x56, 0x78];
/// The Ethernet subheader: offset and padding, both 0.
const ERF_ETHERNET_SUBHEADER: [u8; 2] = [0, 0];

/// Appends an ERF record of `payload` captured at `ts` by a DAG card tapping the link, the
/// client's traffic on port 0 and the server's on port 1: the header (time stamp little-endian,
/// the other fields big-endian), the client's two extension headers on Ethernet records, the
/// Ethernet subheader, then the payload. Records are of varying length, not padded.
pub(super) fn push_erf(
    frame: &mut Vec<u8>,
    record: ErfRecord,
    payload: &[u8],
    ts: Timestamp,
    from: Side,
) -> Result<(), ScriptError> {
    let extensions: &[[u8; 8]] = match (record, from) {
        (ErfRecord::Ethernet, Side::Client) => &[ERF_EXT_HOST_ID, ERF_EXT_FLOW_ID],
        _ => &[],
    };
    let (record_type, subheader): (u8, &[u8]) = match record {
        ErfRecord::Ethernet => (ERF_TYPE_ETH, &ERF_ETHERNET_SUBHEADER),
        ErfRecord::Ipv4 => (ERF_TYPE_IPV4, &[]),
        ErfRecord::Ipv6 => (ERF_TYPE_IPV6, &[]),
    };
    let record_type = if extensions.is_empty() { record_type } else { record_type | ERF_EXTENSION_FOLLOWS };
    let port = match from {
        Side::Client => 0,
        Side::Server => 1,
    };
    let record_len = ERF_HEADER_LEN + extensions.len() * 8 + subheader.len() + payload.len();
    let too_long = |field, value: usize| ScriptError::OutOfRange { field, value: value as u64 };
    let record_len = u16::try_from(record_len).map_err(|_| too_long("ERF record length", record_len))?;
    let wire_len = u16::try_from(payload.len()).map_err(|_| too_long("ERF wire length", payload.len()))?;
    // The time stamp: seconds in the high 32 bits, the binary fraction of a second in the low.
    let fraction = ((ts.as_nanos() % NANOS_PER_SEC) << 32) / NANOS_PER_SEC;
    frame.extend_from_slice(&(ts.secs() << 32 | fraction).to_le_bytes());
    frame.extend_from_slice(&[record_type, ERF_FLAG_VARYING_LENGTH | port]);
    frame.extend_from_slice(&record_len.to_be_bytes());
    // No record lost before this one.
    frame.extend_from_slice(&0u16.to_be_bytes());
    frame.extend_from_slice(&wire_len.to_be_bytes());
    for extension in extensions {
        frame.extend_from_slice(extension);
    }
    frame.extend_from_slice(subheader);
    frame.extend_from_slice(payload);
    Ok(())
}
