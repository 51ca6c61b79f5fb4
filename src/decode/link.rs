//! Link layers (Ethernet, Linux cooked v1/v2, raw IP, BSD loopback, PPP and Cisco HDLC, 802.11
//! through [`super::wifi`]), VLAN tags, port extender tags (VN-Tag, E-tag), 802.1ah backbone
//! service tags, MPLS label stacks, PPPoE sessions and the PPP frames they (and L2TP, PPTP, PPP
//! links) carry, down to the IP packet they carry.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};

use super::capture_headers;
use super::tunnel::{TunnelContext, TunnelKind};
use super::wifi;
use super::SkipReason;
use crate::capture::LinkType;

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(super) const ETHERTYPE_IPV6: u16 = 0x86dd;
pub(super) const ETHERTYPE_VLAN: u16 = 0x8100;
pub(super) const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ tag protocol ids some switches still send.
const ETHERTYPE_QINQ_LEGACY: [u16; 3] = [0x9100, 0x9200, 0x9300];
pub(super) const ETHERTYPE_MPLS_UNICAST: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// Read only to tell a pseudowire's frame from its control word.
const ETHERTYPE_ARP: u16 = 0x0806;
/// Cisco's VN-Tag (the pre-standard 802.1Qbh port extension, as Wireshark's packet-vntag.c reads
/// it): direction, pointer, destination and source virtual interfaces in 4 bytes, then the
/// frame's EtherType.
const ETHERTYPE_VN_TAG: u16 = 0x8926;
const VN_TAG_LEN: usize = 4;
/// IEEE 802.1BR E-TAG (port extension): 6 bytes of tag control information (priority, ingress
/// and egress E-CIDs), then the frame's EtherType.
const ETHERTYPE_E_TAG: u16 = 0x893f;
const E_TAG_LEN: usize = 6;
/// Cisco MetaData (TrustSec inline tagging, as Wireshark's packet-cisco-metadata.c reads it):
/// version, length, option and the source's security group tag (SGT) in 6 bytes, then the
/// frame's EtherType.
const ETHERTYPE_CISCO_METADATA: u16 = 0x8909;
const CISCO_METADATA_LEN: usize = 6;
/// IEEE 802.1ah provider backbone bridging (802.1Q §9.7): the I-TAG's 4 bytes of tag control
/// information, whose low 24 bits are the service instance id (I-SID), then the customer frame
/// from its destination address on.
const ETHERTYPE_PBB_I_TAG: u16 = 0x88e7;
const PBB_I_TAG_LEN: usize = 4;
const PBB_I_SID_MASK: u32 = 0x00ff_ffff;

/// PPPoE session header (RFC 2516): version and type (1, 1), code (0: session data), session
/// id, length; then the PPP protocol number.
const PPPOE_HEADER_LEN: usize = 6;
const PPPOE_VERSION_TYPE: u8 = 0x11;
const PPPOE_SESSION_DATA: u8 = 0x00;
/// PPP's address and control fields in HDLC-like framing (RFC 1662 §3.1), left out of frames
/// when address-and-control-field compression was negotiated (RFC 1661 §6.6).
const PPP_ADDRESS_CONTROL: [u8; 2] = [0xff, 0x03];
const PPP_PROTOCOL_LEN: usize = 2;
const PPP_COMPRESSED_PROTOCOL_LEN: usize = 1;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// Cisco HDLC (RFC 1547 §4.3.1): an address (unicast or broadcast), a control byte, then the
/// EtherType of what follows. A PPP_HDLC capture's first byte tells it from PPP's 0xff address.
const CISCO_HDLC_ADDRESSES: [u8; 2] = [0x0f, 0x8f];
const CISCO_HDLC_PROTOCOL_OFFSET: usize = 2;
const CISCO_HDLC_HEADER_LEN: usize = 4;
const PPP_ALL_STATIONS: u8 = 0xff;

const LINUX_SLL_HEADER_LEN: usize = 16;
const LINUX_SLL_PROTOCOL_OFFSET: usize = 14;
const LINUX_SLL2_HEADER_LEN: usize = 20;
const NULL_HEADER_LEN: usize = 4;
const MPLS_ENTRY_LEN: usize = 4;
const MPLS_BOTTOM_OF_STACK: u8 = 0x01;
const PSEUDOWIRE_CONTROL_WORD_LEN: usize = 4;
/// An Ethernet frame's destination and source addresses, before its ethertype.
const ETHERNET_ADDRESSES_LEN: usize = 12;

/// BSD address families: AF_INET is 2 everywhere, AF_INET6 is 24 (NetBSD, OpenBSD), 28 (FreeBSD)
/// or 30 (macOS).
const AF_INET: u32 = 2;
const AF_INET6: [u32; 3] = [24, 28, 30];

/// The next thing to decode.
#[derive(Clone, Copy, Debug)]
pub(super) enum Layer<'a> {
    /// An Ethernet II frame.
    Ethernet(&'a [u8]),
    /// The bytes following an ethertype (or a protocol field that uses ethertype values).
    EtherType(u16, &'a [u8]),
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// The subframes of an 802.11 aggregate (A-MSDU), each a packet of its own, from the one to
    /// read next to the frame's end.
    Aggregate(&'a [u8]),
}

/// Reads a big-endian u16 at `offset`, if the data is long enough.
pub(super) fn be_u16(data: &[u8], offset: usize) -> Option<u16> {
    data.get(offset..)?.first_chunk::<2>().map(|bytes| u16::from_be_bytes(*bytes))
}

/// Reads a big-endian u32 at `offset`, if the data is long enough.
pub(super) fn be_u32(data: &[u8], offset: usize) -> Option<u32> {
    data.get(offset..)?.first_chunk::<4>().map(|bytes| u32::from_be_bytes(*bytes))
}

/// Reads a little-endian u16 at `offset`, if the data is long enough (radio headers are
/// little-endian).
pub(super) fn le_u16(data: &[u8], offset: usize) -> Option<u16> {
    data.get(offset..)?.first_chunk::<2>().map(|bytes| u16::from_le_bytes(*bytes))
}

/// Reads a little-endian u32 at `offset`, if the data is long enough.
pub(super) fn le_u32(data: &[u8], offset: usize) -> Option<u32> {
    data.get(offset..)?.first_chunk::<4>().map(|bytes| u32::from_le_bytes(*bytes))
}

/// The first layer inside a frame of the given link type.
pub(super) fn first_layer(link_type: LinkType, data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    match link_type {
        LinkType::ETHERNET => Ok(Layer::Ethernet(data)),
        LinkType::RAW | LinkType::IPV4 | LinkType::IPV6 | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => {
            Ok(Layer::Ip(data))
        }
        LinkType::LINUX_SLL => {
            let protocol = be_u16(data, LINUX_SLL_PROTOCOL_OFFSET).ok_or(SkipReason::Truncated)?;
            Ok(Layer::EtherType(protocol, data.get(LINUX_SLL_HEADER_LEN..).unwrap_or_default()))
        }
        LinkType::LINUX_SLL2 => {
            let protocol = be_u16(data, 0).ok_or(SkipReason::Truncated)?;
            let rest = data.get(LINUX_SLL2_HEADER_LEN..).ok_or(SkipReason::Truncated)?;
            Ok(Layer::EtherType(protocol, rest))
        }
        LinkType::NULL => {
            let family = data.first_chunk::<4>().ok_or(SkipReason::Truncated)?;
            // The byte order is the capturing machine's, unknown here: try both.
            bsd_ip_family(u32::from_le_bytes(*family))
                .or_else(|_| bsd_ip_family(u32::from_be_bytes(*family)))
                .map(|()| Layer::Ip(data.get(NULL_HEADER_LEN..).unwrap_or_default()))
        }
        LinkType::LOOP => {
            let family = data.first_chunk::<4>().ok_or(SkipReason::Truncated)?;
            bsd_ip_family(u32::from_be_bytes(*family))
                .map(|()| Layer::Ip(data.get(NULL_HEADER_LEN..).unwrap_or_default()))
        }
        LinkType::PPP => ppp(data),
        LinkType::PPP_HDLC => match *data.first().ok_or(SkipReason::Truncated)? {
            PPP_ALL_STATIONS => ppp(data),
            address if CISCO_HDLC_ADDRESSES.contains(&address) => cisco_hdlc(data),
            _ => Err(SkipReason::Malformed),
        },
        LinkType::PPP_ETHER => pppoe_session(data),
        LinkType::C_HDLC => cisco_hdlc(data),
        LinkType::NFLOG => capture_headers::nflog(data),
        LinkType::PFLOG => capture_headers::pflog(data),
        LinkType::ENC => capture_headers::enc(data),
        LinkType::IPNET => capture_headers::ipnet(data),
        LinkType::NETANALYZER => capture_headers::netanalyzer(data, false),
        LinkType::NETANALYZER_TRANSPARENT => capture_headers::netanalyzer(data, true),
        LinkType::ERF => capture_headers::erf(data),
        LinkType::IEEE802_11 => wifi::ieee802_11(data),
        LinkType::IEEE802_11_RADIOTAP => wifi::radiotap(data),
        LinkType::IEEE802_11_PRISM => wifi::ieee802_11(wifi::after_prism_or_avs(data)?),
        LinkType::IEEE802_11_AVS => wifi::ieee802_11(wifi::after_avs(data)?),
        LinkType::PPI => wifi::after_ppi(data).and_then(|(inner, frame)| named_by_header(inner, frame)),
        LinkType::PKTAP => capture_headers::after_pktap(data).and_then(|(inner, frame)| named_by_header(inner, frame)),
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

/// The first layer of a frame whose type a capture header (PPI, PKTAP) names: the frame's own
/// type, never another such header, so that headers cannot nest.
fn named_by_header(link_type: LinkType, frame: &[u8]) -> Result<Layer<'_>, SkipReason> {
    if matches!(link_type, LinkType::PPI | LinkType::PKTAP) {
        return Err(SkipReason::Malformed);
    }
    first_layer(link_type, frame)
}

/// The link type a frame's packet is actually framed in: behind a PPI or PKTAP header, the one it
/// names. For messages about a type credwatch does not read.
pub(super) fn innermost_link_type(link_type: LinkType, data: &[u8]) -> LinkType {
    match link_type {
        LinkType::PPI => wifi::after_ppi(data).map_or(link_type, |(inner, _)| inner),
        LinkType::PKTAP => capture_headers::after_pktap(data).map_or(link_type, |(inner, _)| inner),
        _ => link_type,
    }
}

/// Accepts the BSD address families of IPv4 and IPv6 (the IP version nibble tells which), as
/// loopback, pflog and enc headers give them.
pub(super) fn bsd_ip_family(family: u32) -> Result<(), SkipReason> {
    if family == AF_INET || AF_INET6.contains(&family) {
        Ok(())
    } else {
        Err(SkipReason::NotIp)
    }
}

/// An Ethernet II header; 802.3 frames (a length where the ethertype would be) carry no IP we
/// decode and fall out as [`SkipReason::NotIp`] in [`ether_type`].
pub(super) fn ethernet(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let header = Ethernet2HeaderSlice::from_slice(data).map_err(|_| SkipReason::Truncated)?;
    let rest = data.get(header.slice().len()..).unwrap_or_default();
    Ok(Layer::EtherType(header.ether_type().0, rest))
}

/// What an ethertype leads to: a VLAN tag (recorded), a port extender or backbone service tag,
/// an MPLS label stack, a PPPoE session, or IP.
pub(super) fn ether_type<'a>(
    ether_type: u16,
    data: &'a [u8],
    context: &mut TunnelContext,
) -> Result<Layer<'a>, SkipReason> {
    match ether_type {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(Layer::Ip(data)),
        ETHERTYPE_VLAN | ETHERTYPE_QINQ => vlan_tag(data, context),
        tag if ETHERTYPE_QINQ_LEGACY.contains(&tag) => vlan_tag(data, context),
        ETHERTYPE_MPLS_UNICAST | ETHERTYPE_MPLS_MULTICAST => mpls(data, context),
        ETHERTYPE_PPPOE_SESSION => pppoe_session(data),
        ETHERTYPE_VN_TAG => port_extender_tag(data, VN_TAG_LEN, context),
        ETHERTYPE_E_TAG => port_extender_tag(data, E_TAG_LEN, context),
        ETHERTYPE_CISCO_METADATA => port_extender_tag(data, CISCO_METADATA_LEN, context),
        ETHERTYPE_PBB_I_TAG => backbone_service(data, context),
        _ => Err(SkipReason::NotIp),
    }
}

/// A port extender's tag (VN-Tag, E-tag) or Cisco MetaData, and the EtherType after it. Their ids
/// name the virtual port a frame enters or leaves by, or the sender's security group, different
/// in each direction, so they are not kept: the frame stays in its VLANs.
fn port_extender_tag<'a>(data: &'a [u8], tag_len: usize, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let ether_type = be_u16(data, tag_len).ok_or(SkipReason::Truncated)?;
    context.descend()?;
    Ok(Layer::EtherType(ether_type, data.get(tag_len + 2..).unwrap_or_default()))
}

/// An 802.1ah I-TAG and the customer frame it carries: a layer 2 domain of its own, whose VLAN
/// tags are kept apart from the backbone's, told apart by its service instance id (the same both
/// ways).
fn backbone_service<'a>(data: &'a [u8], context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let service_instance = be_u32(data, 0).ok_or(SkipReason::Truncated)? & PBB_I_SID_MASK;
    let customer_frame = data.get(PBB_I_TAG_LEN..).unwrap_or_default();
    context.descend()?;
    context.fold(TunnelKind::BackboneService, None, service_instance);
    Ok(Layer::Ethernet(customer_frame))
}

/// A PPPoE session frame (DSL links): the IP packet its PPP payload carries. PPP's own control
/// traffic (LCP, the authentication protocols, IPCP) is not IP. The IP header's length, not
/// PPPoE's, says where the packet ends (after it, Ethernet may pad).
fn pppoe_session(data: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let [version_type, code] = *data.first_chunk::<2>().ok_or(SkipReason::Truncated)?;
    if version_type != PPPOE_VERSION_TYPE || code != PPPOE_SESSION_DATA {
        return Err(SkipReason::Malformed);
    }
    ppp(data.get(PPPOE_HEADER_LEN..).ok_or(SkipReason::Truncated)?)
}

/// The IP packet of a PPP frame (RFC 1661 §2), with or without its address and control fields,
/// its protocol field two bytes or, when protocol-field compression was negotiated (§6.5), one:
/// protocol numbers' first byte is even and their last odd, so an odd first byte is a whole
/// compressed field. PPP's control protocols, and compressed or encrypted (MPPE) data, are not IP.
pub(super) fn ppp(frame: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let frame = frame.strip_prefix(&PPP_ADDRESS_CONTROL).unwrap_or(frame);
    let first = *frame.first().ok_or(SkipReason::Truncated)?;
    let (protocol, protocol_len) = if first & 1 == 1 {
        (u16::from(first), PPP_COMPRESSED_PROTOCOL_LEN)
    } else {
        (be_u16(frame, 0).ok_or(SkipReason::Truncated)?, PPP_PROTOCOL_LEN)
    };
    if protocol != PPP_IPV4 && protocol != PPP_IPV6 {
        return Err(SkipReason::NotIp);
    }
    Ok(Layer::Ip(frame.get(protocol_len..).unwrap_or_default()))
}

/// A Cisco HDLC frame: the EtherType after its address and control bytes says what it carries
/// (IP, MPLS; SLARP and CDP are not IP).
fn cisco_hdlc(frame: &[u8]) -> Result<Layer<'_>, SkipReason> {
    let address = *frame.first().ok_or(SkipReason::Truncated)?;
    if !CISCO_HDLC_ADDRESSES.contains(&address) {
        return Err(SkipReason::Malformed);
    }
    let protocol = be_u16(frame, CISCO_HDLC_PROTOCOL_OFFSET).ok_or(SkipReason::Truncated)?;
    Ok(Layer::EtherType(protocol, frame.get(CISCO_HDLC_HEADER_LEN..).unwrap_or_default()))
}

fn vlan_tag<'a>(data: &'a [u8], context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let tag = SingleVlanHeaderSlice::from_slice(data).map_err(|_| SkipReason::Truncated)?;
    context.vlan.push(tag.vlan_identifier().value());
    let rest = data.get(tag.slice().len()..).unwrap_or_default();
    Ok(Layer::EtherType(tag.ether_type().0, rest))
}

/// An MPLS label stack (one encapsulation layer however many labels). Below the bottom label the
/// version nibble tells IPv4 and IPv6 apart; anything else is an Ethernet pseudowire (RFC 4448),
/// a new layer 2 domain whose VLAN tags are kept apart from the outer ones, without its optional
/// control word when the frame there carries an ethertype read here, else after it (a zero
/// nibble), as Wireshark's heuristic guesses.
fn mpls<'a>(data: &'a [u8], context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    context.descend()?;
    let mut rest = data;
    loop {
        let entry = rest.first_chunk::<MPLS_ENTRY_LEN>().ok_or(SkipReason::Truncated)?;
        rest = rest.get(MPLS_ENTRY_LEN..).unwrap_or_default();
        if entry[2] & MPLS_BOTTOM_OF_STACK != 0 {
            break;
        }
    }
    let nibble = rest.first().map(|byte| byte >> 4);
    if matches!(nibble, Some(4 | 6)) {
        return Ok(Layer::Ip(rest));
    }
    // Read without a control word, a frame with one shows bytes of its source address where
    // the ethertype would be; read with one, a VLAN-tagged frame without shows its inner
    // ethertype there. Behind a zero nibble, the frame as it stands is taken only when what
    // follows its ethertype fits it too.
    let frame = match nibble {
        None => return Err(SkipReason::Truncated),
        Some(0) if carries_known_ether_type(rest) && body_fits_ether_type(rest) => rest,
        Some(0) => rest.get(PSEUDOWIRE_CONTROL_WORD_LEN..).ok_or(SkipReason::Truncated)?,
        Some(_) if carries_known_ether_type(rest) => rest,
        Some(_) => return Err(SkipReason::NotIp),
    };
    context.fold(TunnelKind::MplsPseudowire, None, 0);
    Ok(Layer::Ethernet(frame))
}

/// Whether what follows an Ethernet frame's ethertype is what it announces: an IP header of
/// that version, a VLAN, port extender or Cisco MetaData tag followed by a known ethertype, a
/// backbone service tag followed by a customer frame with one, an Ethernet/IPv4 ARP header, a
/// PPPoE session header (MPLS labels are taken on trust).
fn body_fits_ether_type(frame: &[u8]) -> bool {
    const ARP_ETHERNET_IPV4: [u8; 4] = [0x00, 0x01, 0x08, 0x00];
    let body = frame.get(ETHERNET_ADDRESSES_LEN + 2..).unwrap_or_default();
    let version = body.first().map(|byte| byte >> 4);
    match be_u16(frame, ETHERNET_ADDRESSES_LEN) {
        Some(ETHERTYPE_IPV4) => version == Some(4),
        Some(ETHERTYPE_IPV6) => version == Some(6),
        Some(ETHERTYPE_ARP) => body.starts_with(&ARP_ETHERNET_IPV4),
        Some(ETHERTYPE_PPPOE_SESSION) => body.starts_with(&[PPPOE_VERSION_TYPE, PPPOE_SESSION_DATA]),
        Some(tag) if tag == ETHERTYPE_VLAN || tag == ETHERTYPE_QINQ || ETHERTYPE_QINQ_LEGACY.contains(&tag) => {
            be_u16(body, 2).is_some_and(is_known_ether_type)
        }
        Some(ETHERTYPE_VN_TAG) => be_u16(body, VN_TAG_LEN).is_some_and(is_known_ether_type),
        Some(ETHERTYPE_E_TAG) => be_u16(body, E_TAG_LEN).is_some_and(is_known_ether_type),
        Some(ETHERTYPE_CISCO_METADATA) => be_u16(body, CISCO_METADATA_LEN).is_some_and(is_known_ether_type),
        Some(ETHERTYPE_PBB_I_TAG) => {
            be_u16(body, PBB_I_TAG_LEN + ETHERNET_ADDRESSES_LEN).is_some_and(is_known_ether_type)
        }
        _ => true,
    }
}

/// Whether an Ethernet frame's ethertype is one [`ether_type`] reads (or ARP, which a pseudowire
/// carries as well): how a pseudowire's frame is told from its control word.
fn carries_known_ether_type(frame: &[u8]) -> bool {
    be_u16(frame, ETHERNET_ADDRESSES_LEN).is_some_and(is_known_ether_type)
}

fn is_known_ether_type(ether_type: u16) -> bool {
    matches!(
        ether_type,
        ETHERTYPE_IPV4
            | ETHERTYPE_IPV6
            | ETHERTYPE_VLAN
            | ETHERTYPE_QINQ
            | ETHERTYPE_MPLS_UNICAST
            | ETHERTYPE_MPLS_MULTICAST
            | ETHERTYPE_PPPOE_SESSION
            | ETHERTYPE_ARP
            | ETHERTYPE_VN_TAG
            | ETHERTYPE_E_TAG
            | ETHERTYPE_CISCO_METADATA
            | ETHERTYPE_PBB_I_TAG
    ) || ETHERTYPE_QINQ_LEGACY.contains(&ether_type)
}
