//! Headers a capturing system puts before the packet it logged: Linux netfilter's NFLOG, Apple's
//! PKTAP, the BSDs' pflog and enc, Solaris's ipnet, Hilscher's netANALYZER, Endace's ERF.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::link::{be_u16, bsd_ip_family, le_u16, le_u32, Layer};
use super::SkipReason;
use crate::capture::LinkType;

/// NFLOG (tcpdump.org's LINKTYPE_NFLOG, libpcap's pcap/nflog.h): the address family (Linux's
/// AF_ values), a version and a resource id, then type-length-value attributes to the end of the
/// frame, each starting on a multiple of 4 bytes, their length (header included) and type in the
/// byte order of the capturing host.
const NFLOG_HEADER_LEN: usize = 4;
const NFLOG_AF_INET: u8 = 2;
const NFLOG_AF_INET6: u8 = 10;
const NFLOG_TLV_HEADER_LEN: usize = 4;
const NFLOG_TLV_ALIGN: usize = 4;
/// The top bit of a type says the attribute nests others.
const NFLOG_TLV_TYPE_MASK: u16 = 0x7fff;
/// NFULA_PAYLOAD: the packet, from its network header on.
const NFULA_PAYLOAD: u16 = 9;
/// Attribute types are small numbers (nfnetlink_log.h): read in the wrong byte order, one is a
/// multiple of 256.
const NFLOG_TLV_TYPES_END: u16 = 0x100;

/// PKTAP (tcpdump.org's LINKTYPE_PKTAP, Apple's bsd/net/pktap.h), little-endian as every Apple
/// host writes it: the header's length (at least version 1's 108 bytes; later versions append
/// fields), the record type, then the DLT of the frame after the header.
const PKTAP_MIN_HEADER_LEN: u32 = 108;
const PKTAP_RECORD_TYPE_OFFSET: usize = 4;
const PKTAP_DLT_OFFSET: usize = 8;
/// The record type saying a frame follows the header.
const PKTAP_RECORD_PACKET: u32 = 1;

/// pflog (tcpdump.org's LINKTYPE_PFLOG, the BSDs' net/if_pflog.h): the header's length in its
/// first byte, padded to a multiple of 4 bytes before the packet, then the packet's address
/// family in one byte. 45 bytes is the shortest header any pf wrote.
const PFLOG_MIN_LENGTH: u8 = 45;
const PFLOG_ALIGN: usize = 4;
const PFLOG_FAMILY_OFFSET: usize = 1;
/// enc (tcpdump.org's LINKTYPE_ENC, OpenBSD's net/if_enc.h): the address family in the capturing
/// host's byte order, the SPI, flags.
const ENC_HEADER_LEN: usize = 12;
/// ipnet (tcpdump.org's LINKTYPE_IPNET, libpcap's pcap/ipnet.h): version, Solaris's address
/// family, hook, packet length, interface indexes and zones, 24 bytes in all.
const IPNET_HEADER_LEN: usize = 24;
const IPNET_FAMILY_OFFSET: usize = 1;
const IPNET_AF_INET: u8 = 2;
const IPNET_AF_INET6: u8 = 26;

/// netANALYZER (tcpdump.org's LINKTYPE_NETANALYZER and LINKTYPE_NETANALYZER_TRANSPARENT, as
/// Wireshark's packet-netanalyzer.c reads them): a little-endian 32-bit header (error flags in the
/// low byte, then a GPIO event flag, the transparent mode flag, a 4-bit version, the port and the
/// frame's length), then an Ethernet frame with its frame check sequence, behind its preamble and
/// start frame delimiter in transparent mode.
const NETANALYZER_HEADER_LEN: usize = 4;
const NETANALYZER_GPIO_EVENT: u32 = 0x100;
const NETANALYZER_VERSION_SHIFT: u32 = 10;
const NETANALYZER_VERSION_MASK: u32 = 0xf;
const NETANALYZER_VERSION: u32 = 1;
/// The errors saying the frame's bytes are not what was sent: MII RX_ER, alignment, FCS.
const NETANALYZER_DAMAGED: u32 = 0x01 | 0x02 | 0x04;
const PREAMBLE_OCTET: u8 = 0x55;
const START_FRAME_DELIMITER: u8 = 0xd5;

/// ERF (Endace's Extensible Record Format, one record per frame under tcpdump.org's LINKTYPE_ERF,
/// as Wireshark's pcap-common.c reads it): a 16-byte header (a little-endian time stamp, the
/// record type, flags, then the big-endian record length, loss counter or colour, and wire
/// length), 8-byte extension headers while the top bit of the type, then of each extension
/// header's first byte, says another follows, then the record's payload.
const ERF_HEADER_LEN: usize = 16;
const ERF_EXTENSION_FOLLOWS: u8 = 0x80;
const ERF_EXTENSION_LEN: usize = 8;
const ERF_TYPE_MASK: u8 = 0x7f;
/// Ethernet records, plain and with colour or hash information in the loss counter (ERF types
/// ETH, COLOR_ETH, DSM_COLOR_ETH, COLOR_HASH_ETH): a 2-byte subheader (offset, padding) comes
/// before the frame.
const ERF_TYPES_ETHERNET: [u8; 4] = [2, 11, 16, 20];
const ERF_ETHERNET_SUBHEADER_LEN: usize = 2;
const ERF_TYPE_IPV4: u8 = 22;
const ERF_TYPE_IPV6: u8 = 23;
/// Flags: an error in the received data, present on the wire.
const ERF_FLAG_RX_ERROR: u8 = 0x10;

/// Reads a `u16` in one byte order at an offset.
type ReadU16 = fn(&[u8], usize) -> Option<u16>;

/// The IP packet an NFLOG frame carries in its payload attribute. The attributes' byte order is
/// the capturing host's, which the frame does not state: as Wireshark does, the order in which
/// the first attribute of a type other than 0 has a type below 256 is taken. A frame without a
/// payload (logged with a copy range of 0), or of another family (bridge, ARP), carries no IP.
pub(super) fn nflog(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let [family, ..] = *data.first_chunk::<NFLOG_HEADER_LEN>().ok_or(SkipReason::Truncated)?;
    if family != NFLOG_AF_INET && family != NFLOG_AF_INET6 {
        return Err(SkipReason::NotIp);
    }
    let read: ReadU16 = if nflog_order_is(data, be_u16) || !nflog_order_is(data, le_u16) { be_u16 } else { le_u16 };
    let mut offset = NFLOG_HEADER_LEN;
    while offset < data.len() {
        let (Some(length), Some(tlv_type)) = (read(data, offset), read(data, offset + 2)) else {
            return Err(SkipReason::Truncated);
        };
        let length = usize::from(length);
        if length < NFLOG_TLV_HEADER_LEN {
            return Err(SkipReason::Malformed);
        }
        let end = offset + length;
        if tlv_type & NFLOG_TLV_TYPE_MASK == NFULA_PAYLOAD {
            // A snap length may have cut the packet: the IP layer tells what is missing.
            let value = data.get(offset + NFLOG_TLV_HEADER_LEN..).unwrap_or_default();
            return Ok(Layer::Ip(data.get(offset + NFLOG_TLV_HEADER_LEN..end).unwrap_or(value)));
        }
        if end > data.len() {
            return Err(SkipReason::Truncated);
        }
        offset = end.next_multiple_of(NFLOG_TLV_ALIGN);
    }
    Err(SkipReason::NotIp)
}

/// Whether `read` is the byte order of an NFLOG frame's attributes (Wireshark's test): walking
/// them, the first whose type is not 0 has a type below 256, and none before it is shorter than
/// its header.
fn nflog_order_is(data: &[u8], read: ReadU16) -> bool {
    let mut offset = NFLOG_HEADER_LEN;
    while let (Some(length), Some(tlv_type)) = (read(data, offset), read(data, offset + 2)) {
        let tlv_type = tlv_type & NFLOG_TLV_TYPE_MASK;
        if usize::from(length) < NFLOG_TLV_HEADER_LEN || tlv_type >= NFLOG_TLV_TYPES_END {
            return false;
        }
        if tlv_type != 0 {
            return true;
        }
        offset = (offset + usize::from(length)).next_multiple_of(NFLOG_TLV_ALIGN);
    }
    false
}

/// The link type and bytes of the frame after a PKTAP header (macOS's `pktap` interface, which
/// names each packet's interface and process). Its DLT value is the capturing host's; those that
/// differ from the LINKTYPE of the same header (raw IP's 12 and 14) are read as raw IP already.
/// A record without a frame carries no IP.
pub(super) fn after_pktap(data: &[u8]) -> Result<(LinkType, &[u8]), SkipReason> {
    let length = le_u32(data, 0).ok_or(SkipReason::Truncated)?;
    if length < PKTAP_MIN_HEADER_LEN {
        return Err(SkipReason::Malformed);
    }
    let record_type = le_u32(data, PKTAP_RECORD_TYPE_OFFSET).ok_or(SkipReason::Truncated)?;
    let dlt = le_u32(data, PKTAP_DLT_OFFSET).ok_or(SkipReason::Truncated)?;
    let frame = data.get(usize::try_from(length).map_err(|_| SkipReason::Malformed)?..).ok_or(SkipReason::Truncated)?;
    if record_type != PKTAP_RECORD_PACKET {
        return Err(SkipReason::NotIp);
    }
    Ok((LinkType(dlt), frame))
}

/// The packet a pf rule logged (pflog). The address families are those of the BSD that logged it.
pub(super) fn pflog(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let length = *data.first().ok_or(SkipReason::Truncated)?;
    if length < PFLOG_MIN_LENGTH {
        return Err(SkipReason::Malformed);
    }
    let family = *data.get(PFLOG_FAMILY_OFFSET).ok_or(SkipReason::Truncated)?;
    let packet = data.get(usize::from(length).next_multiple_of(PFLOG_ALIGN)..).ok_or(SkipReason::Truncated)?;
    bsd_ip_family(u32::from(family)).map(|()| Layer::Ip(packet))
}

/// The packet of an IPsec security association as OpenBSD's enc interface shows it: in clear,
/// before encryption or after decryption. Its family is in the capturing host's byte order:
/// both are tried, as for BSD loopback.
pub(super) fn enc(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let family = data.first_chunk::<4>().ok_or(SkipReason::Truncated)?;
    let packet = data.get(ENC_HEADER_LEN..).ok_or(SkipReason::Truncated)?;
    bsd_ip_family(u32::from_le_bytes(*family))
        .or_else(|_| bsd_ip_family(u32::from_be_bytes(*family)))
        .map(|()| Layer::Ip(packet))
}

/// The packet behind a Solaris ipnet header, whose family says IPv4 or IPv6.
pub(super) fn ipnet(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let packet = data.get(IPNET_HEADER_LEN..).ok_or(SkipReason::Truncated)?;
    match data.get(IPNET_FAMILY_OFFSET) {
        Some(&(IPNET_AF_INET | IPNET_AF_INET6)) => Ok(Layer::Ip(packet)),
        _ => Err(SkipReason::NotIp),
    }
}

/// The Ethernet frame a netANALYZER tap captured (`transparent`: with its preamble and start frame
/// delimiter, the preamble as long as it was on the wire). A GPIO event carries no frame; a frame
/// received with errors is not what was sent, and is skipped as failing its frame check. Its
/// frame check sequence is left in place: the IP header's length stops before it.
pub(super) fn netanalyzer(data: &[u8], transparent: bool) -> Result<Layer<'_>, SkipReason> {
    let header = le_u32(data, 0).ok_or(SkipReason::Truncated)?;
    if header & NETANALYZER_GPIO_EVENT != 0 {
        return Err(SkipReason::NotIp);
    }
    if (header >> NETANALYZER_VERSION_SHIFT) & NETANALYZER_VERSION_MASK != NETANALYZER_VERSION {
        return Err(SkipReason::Malformed);
    }
    if header & NETANALYZER_DAMAGED != 0 {
        return Err(SkipReason::FailedFrameCheck);
    }
    let frame = data.get(NETANALYZER_HEADER_LEN..).unwrap_or_default();
    if !transparent {
        return Ok(Layer::Ethernet(frame));
    }
    let delimiter = frame.iter().position(|byte| *byte != PREAMBLE_OCTET).ok_or(SkipReason::Truncated)?;
    match frame.get(delimiter..) {
        Some([START_FRAME_DELIMITER, ethernet @ ..]) => Ok(Layer::Ethernet(ethernet)),
        _ => Err(SkipReason::Malformed),
    }
}

/// The frame or packet of an ERF record (Endace DAG cards): Ethernet, with its frame check
/// sequence when the card kept it, or IPv4 or IPv6. What follows the packet (the frame check
/// sequence, the padding of a record shorter than the card's snap length) is left in place: the
/// IP header's length stops before it. A record received with an error on the wire is skipped
/// as failing its frame check; other record types (ATM, HDLC, InfiniBand, padding, metadata) are
/// not read.
pub(super) fn erf(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let [_, _, _, _, _, _, _, _, record_type, flags, ..] =
        *data.first_chunk::<ERF_HEADER_LEN>().ok_or(SkipReason::Truncated)?;
    if flags & ERF_FLAG_RX_ERROR != 0 {
        return Err(SkipReason::FailedFrameCheck);
    }
    let mut offset = ERF_HEADER_LEN;
    let mut extension = record_type;
    while extension & ERF_EXTENSION_FOLLOWS != 0 {
        extension = *data.get(offset).ok_or(SkipReason::Truncated)?;
        offset += ERF_EXTENSION_LEN;
    }
    let (offset, ethernet) = match record_type & ERF_TYPE_MASK {
        ethernet if ERF_TYPES_ETHERNET.contains(&ethernet) => (offset + ERF_ETHERNET_SUBHEADER_LEN, true),
        ERF_TYPE_IPV4 | ERF_TYPE_IPV6 => (offset, false),
        _ => return Err(SkipReason::NotIp),
    };
    let payload = data.get(offset..).ok_or(SkipReason::Truncated)?;
    Ok(if ethernet { Layer::Ethernet(payload) } else { Layer::Ip(payload) })
}
