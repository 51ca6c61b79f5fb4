//! Tunnels carried by IP: GRE (with transparent Ethernet and ERSPAN types I, II and III), PPTP's
//! enhanced GRE, VXLAN, VXLAN-GPE, GENEVE, Teredo, GTP-U, L2TPv2, TZSP, MPLS in UDP and IP-in-IP;
//! and the context that keeps the flows of different tunnels apart.
//!
//! GTP TEIDs, L2TP tunnel and session ids and PPTP call ids are not part of a tunnel's identity:
//! each end names the tunnel by an id of its own choosing and every packet carries its
//! recipient's, so a connection's two directions carry different ones (as MPLS labels differ).
//! Their tunnels are told apart by their endpoints.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use etherparse::UdpHeaderSlice;

use super::ip::IpPacket;
use super::link::{self, be_u16, be_u32, Layer, ETHERTYPE_MPLS_UNICAST};
use super::wifi;
use super::{SkipReason, VlanStack, MAX_ENCAPSULATIONS};

const GRE_CHECKSUM_PRESENT: u16 = 0x8000;
const GRE_ROUTING_PRESENT: u16 = 0x4000;
const GRE_KEY_PRESENT: u16 = 0x2000;
const GRE_SEQUENCE_PRESENT: u16 = 0x1000;
const GRE_VERSION_MASK: u16 = 0x0007;
const GRE_BASE_HEADER_LEN: usize = 4;
const GRE_OPTIONAL_FIELD_LEN: usize = 4;
const GRE_SOURCE_ROUTE_ENTRY_HEADER_LEN: usize = 4;
const GRE_TRANSPARENT_ETHERNET: u16 = 0x6558;
/// ERSPAN type II, or type I when the GRE sequence number is absent (Wireshark's rule).
const GRE_ERSPAN_I_II: u16 = 0x88be;
const GRE_ERSPAN_III: u16 = 0x22eb;

/// PPTP's enhanced GRE (RFC 2637 §4.1): version 1, the key field holding the payload length and
/// the recipient's call id, the acknowledgment number present when the A flag is set.
const GRE_VERSION_PPTP: u16 = 1;
const GRE_PPTP_ACKNOWLEDGMENT_PRESENT: u16 = 0x0080;
const GRE_PPTP_PPP: u16 = 0x880b;

const ERSPAN_II_HEADER_LEN: usize = 8;
const ERSPAN_III_HEADER_LEN: usize = 12;
const ERSPAN_III_PLATFORM_SUBHEADER_LEN: usize = 8;
const ERSPAN_II_VERSION: u8 = 1;
const ERSPAN_III_VERSION: u8 = 2;
const ERSPAN_SESSION_ID_MASK: u16 = 0x03ff;
const ERSPAN_III_OPTIONAL_SUBHEADER: u16 = 0x0001;

const VXLAN_PORT: u16 = 4789;
/// The Linux kernel's VXLAN port before IANA assigned 4789, still its default when none is
/// given (`ip link add … type vxlan` without `dstport`), and flannel's.
const VXLAN_LINUX_PORT: u16 = 8472;
/// VXLAN flags: the VNI is valid (RFC 7348 §5). Required on the Linux port, which other UDP
/// traffic may use too.
const VXLAN_FLAG_VNI: u8 = 0x08;
const VXLAN_HEADER_LEN: usize = 8;
const GENEVE_PORT: u16 = 6081;
const GENEVE_HEADER_LEN: usize = 8;
const GENEVE_OPTION_UNIT: usize = 4;
const UDP_HEADER_LEN: usize = 8;
/// Teredo (RFC 4380): IPv6 in UDP, with the server or relay on port 3544 (either end).
const TEREDO_PORT: u16 = 3544;
/// Indicator types that may precede the IPv6 packet (RFC 4380 §5.1.1): authentication, then origin.
const TEREDO_AUTHENTICATION: u16 = 0x0001;
const TEREDO_ORIGIN: u16 = 0x0000;
/// Indicator type, client identifier length, authentication value length (then both values), and
/// after them an 8-byte nonce and a confirmation byte.
const TEREDO_AUTHENTICATION_FIXED_LEN: usize = 4 + 8 + 1;
const TEREDO_ORIGIN_LEN: usize = 8;
const IPV6_HEADER_LEN: usize = 40;

/// GTP-U (3GPP TS 29.281 §4.4.2.3): G-PDUs go to UDP port 2152, from any port.
const GTP_U_PORT: u16 = 2152;
/// Flags byte (§5.1): version (3 bits, 1), protocol type (1: GTP, 0: GTP'), spare, then the E
/// (extension header), S (sequence number) and PN (N-PDU number) flags.
const GTP_VERSION_1: u8 = 1;
const GTP_PROTOCOL_TYPE_GTP: u8 = 0x10;
const GTP_EXTENSION_HEADER_FLAG: u8 = 0x04;
const GTP_OPTIONAL_FIELD_FLAGS: u8 = 0x07;
/// The message type of a G-PDU, the one that carries a user's packet (§6.1).
const GTP_G_PDU: u8 = 0xff;
const GTP_HEADER_LEN: usize = 8;
/// Sequence number, N-PDU number and next extension header type, present together (§5.1).
const GTP_OPTIONAL_FIELDS_LEN: usize = 4;
/// Extension header lengths count 4-octet units (§5.2.1).
const GTP_EXTENSION_UNIT: usize = 4;
/// Extension headers followed in one packet: a G-PDU carries one or two (a PDU session container,
/// say); a longer chain is taken for garbage.
const GTP_MAX_EXTENSION_HEADERS: usize = 16;

/// L2TPv2 (RFC 2661 §3.1, §8.1): UDP port 1701 at one end at least; flags T (control message), L
/// (length present), S (Ns and Nr present), O (offset size present), and the version (2).
const L2TP_PORT: u16 = 1701;
const L2TP_CONTROL_MESSAGE: u16 = 0x8000;
const L2TP_LENGTH_PRESENT: u16 = 0x4000;
const L2TP_SEQUENCE_PRESENT: u16 = 0x0800;
const L2TP_OFFSET_PRESENT: u16 = 0x0200;
const L2TP_VERSION_MASK: u16 = 0x000f;
const L2TP_VERSION_2: u16 = 2;
const L2TP_FLAGS_LEN: usize = 2;
const L2TP_LENGTH_LEN: usize = 2;
const L2TP_IDS_LEN: usize = 4;
const L2TP_SEQUENCE_LEN: usize = 4;
const L2TP_OFFSET_SIZE_LEN: usize = 2;

/// TZSP, the TaZmen Sniffer Protocol (Network Chemistry's application note AN001, as
/// Wireshark's packet-tzsp.c reads it), which MikroTik's packet sniffer streams to UDP 37008:
/// version 1, a type (0: received, 1: transmitted), the encapsulation (1: Ethernet, 7: raw IP,
/// 18: 802.11, 119: Prism, 126: radiotap, 127: AVS), tagged fields up to the END tag (padding and
/// END are one byte, the others a type, a length and that many bytes), then the frame.
const TZSP_PORT: u16 = 37008;
const TZSP_VERSION: u8 = 1;
const TZSP_RECEIVED: u8 = 0;
const TZSP_TRANSMITTED: u8 = 1;
const TZSP_ETHERNET: u16 = 1;
const TZSP_RAW_IP: u16 = 7;
const TZSP_IEEE_802_11: u16 = 18;
const TZSP_IEEE_802_11_PRISM: u16 = 119;
const TZSP_IEEE_802_11_RADIOTAP: u16 = 126;
const TZSP_IEEE_802_11_AVS: u16 = 127;
const TZSP_HEADER_LEN: usize = 4;
const TZSP_TAG_PADDING: u8 = 0;
const TZSP_TAG_END: u8 = 1;
const TZSP_TAG_HEADER_LEN: usize = 2;

/// VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe §3.2): UDP port 4790, flags `R R Ver(2) I P B O`,
/// reserved, the next protocol, the VNI.
const VXLAN_GPE_PORT: u16 = 4790;
const VXLAN_GPE_VERSION_MASK: u8 = 0x30;
const VXLAN_GPE_NEXT_PROTOCOL_PRESENT: u8 = 0x04;
const VXLAN_GPE_IPV4: u8 = 0x01;
const VXLAN_GPE_IPV6: u8 = 0x02;
const VXLAN_GPE_ETHERNET: u8 = 0x03;
const VXLAN_GPE_MPLS: u8 = 0x05;
const VXLAN_GPE_HEADER_LEN: usize = 8;

/// MPLS in UDP (RFC 7510 §3): an MPLS label stack to UDP port 6635, the source port a flow's
/// entropy.
const MPLS_IN_UDP_PORT: u16 = 6635;

/// The kinds of encapsulation whose context is folded into [`TunnelContext::tunnel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum TunnelKind {
    MplsPseudowire,
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    Teredo,
    IpInIp,
    GtpU,
    L2tp,
    Pptp,
    Tzsp,
    VxlanGpe,
    MplsInUdp,
    /// An 802.1ah backbone service instance (I-SID): a customer's layer 2 domain.
    BackboneService,
}

/// What the peeling loop knows about the encapsulations around the current layer.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TunnelContext {
    /// VLAN tags of the current (innermost so far) layer 2 frame.
    pub vlan: VlanStack,
    /// Hash of every tunnel context entered so far; 0 when none.
    pub tunnel: u64,
    encapsulations: u8,
}

impl TunnelContext {
    /// Counts one more encapsulation layer, refusing past [`MAX_ENCAPSULATIONS`].
    pub fn descend(&mut self) -> Result<(), SkipReason> {
        if self.encapsulations >= MAX_ENCAPSULATIONS {
            return Err(SkipReason::TunnelTooDeep);
        }
        self.encapsulations += 1;
        Ok(())
    }

    /// Folds the current VLAN stack and the tunnel's identity into the tunnel hash and starts an
    /// empty VLAN stack for the inner frame. Endpoints are ordered so that both directions of a
    /// tunnel hash alike.
    pub fn fold(&mut self, kind: TunnelKind, endpoints: Option<(IpAddr, IpAddr)>, id: u32) {
        let endpoints = endpoints.map(|(a, b)| (a.min(b), a.max(b)));
        let mut hasher = rustc_hash::FxHasher::default();
        (self.tunnel, kind, endpoints, self.vlan, id).hash(&mut hasher);
        // 0 means "not tunnelled": never produce it for a tunnel.
        self.tunnel = hasher.finish().max(1);
        self.vlan = VlanStack::default();
    }

    /// Enters a tunnel carried by the `outer` IP packet.
    fn enter(&mut self, kind: TunnelKind, outer: &IpPacket<'_>, id: u32) -> Result<(), SkipReason> {
        self.descend()?;
        self.fold(kind, Some((outer.src, outer.dst)), id);
        Ok(())
    }
}

/// IP-in-IP (protocol 4) and IPv6-in-IP (41, e.g. 6in4): the payload is the inner packet.
pub(super) fn ip_in_ip<'a>(outer: &IpPacket<'a>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    context.enter(TunnelKind::IpInIp, outer, 0)?;
    Ok(Layer::Ip(outer.payload))
}

/// GRE version 0 (RFC 1701/2784/2890), and version 1, PPTP's enhanced GRE.
pub(super) fn gre<'a>(outer: &IpPacket<'a>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let data = outer.payload;
    let flags = be_u16(data, 0).ok_or(SkipReason::Truncated)?;
    let protocol = be_u16(data, 2).ok_or(SkipReason::Truncated)?;
    match flags & GRE_VERSION_MASK {
        0 => {}
        GRE_VERSION_PPTP => return pptp(data, flags, protocol, outer, context),
        _ => return Err(SkipReason::NotIp),
    }
    let mut offset = GRE_BASE_HEADER_LEN;
    if flags & (GRE_CHECKSUM_PRESENT | GRE_ROUTING_PRESENT) != 0 {
        offset += GRE_OPTIONAL_FIELD_LEN;
    }
    let mut key = 0;
    if flags & GRE_KEY_PRESENT != 0 {
        key = be_u32(data, offset).ok_or(SkipReason::Truncated)?;
        offset += GRE_OPTIONAL_FIELD_LEN;
    }
    let sequence_present = flags & GRE_SEQUENCE_PRESENT != 0;
    if sequence_present {
        offset += GRE_OPTIONAL_FIELD_LEN;
    }
    if flags & GRE_ROUTING_PRESENT != 0 {
        offset = skip_source_routes(data, offset)?;
    }
    let rest = data.get(offset..).ok_or(SkipReason::Truncated)?;
    match protocol {
        GRE_TRANSPARENT_ETHERNET => {
            context.enter(TunnelKind::Gre, outer, key)?;
            Ok(Layer::Ethernet(rest))
        }
        GRE_ERSPAN_I_II if !sequence_present => {
            context.enter(TunnelKind::Erspan, outer, 0)?;
            Ok(Layer::Ethernet(rest))
        }
        GRE_ERSPAN_I_II => erspan(rest, ERSPAN_II_VERSION, outer, context),
        GRE_ERSPAN_III => erspan(rest, ERSPAN_III_VERSION, outer, context),
        ether_type => {
            context.enter(TunnelKind::Gre, outer, key)?;
            Ok(Layer::EtherType(ether_type, rest))
        }
    }
}

/// PPTP's enhanced GRE (RFC 2637 §4.1): the key field (payload length, then the recipient's call
/// id), the sequence and acknowledgment numbers when their flags say so, then a PPP frame.
/// Checksum and routing are never present, the key always is. A packet that only acknowledges
/// has no payload.
fn pptp<'a>(
    data: &'a [u8],
    flags: u16,
    protocol: u16,
    outer: &IpPacket<'_>,
    context: &mut TunnelContext,
) -> Result<Layer<'a>, SkipReason> {
    if protocol != GRE_PPTP_PPP {
        return Err(SkipReason::NotIp);
    }
    if flags & (GRE_CHECKSUM_PRESENT | GRE_ROUTING_PRESENT) != 0 || flags & GRE_KEY_PRESENT == 0 {
        return Err(SkipReason::Malformed);
    }
    let payload_len = usize::from(be_u16(data, GRE_BASE_HEADER_LEN).ok_or(SkipReason::Truncated)?);
    let mut offset = GRE_BASE_HEADER_LEN + GRE_OPTIONAL_FIELD_LEN;
    for present in [GRE_SEQUENCE_PRESENT, GRE_PPTP_ACKNOWLEDGMENT_PRESENT] {
        if flags & present != 0 {
            offset += GRE_OPTIONAL_FIELD_LEN;
        }
    }
    let rest = data.get(offset..).ok_or(SkipReason::Truncated)?;
    if payload_len == 0 {
        return Err(SkipReason::NotTcp);
    }
    // The payload length bounds the frame; a snaplen may have cut it shorter.
    let frame = rest.get(..payload_len).unwrap_or(rest);
    let inner = link::ppp(frame)?;
    context.enter(TunnelKind::Pptp, outer, 0)?;
    Ok(inner)
}

/// RFC 1701 source route entries, up to and including the terminating null entry.
fn skip_source_routes(data: &[u8], mut offset: usize) -> Result<usize, SkipReason> {
    loop {
        let family = be_u16(data, offset).ok_or(SkipReason::Truncated)?;
        let sre_len = offset.checked_add(3).and_then(|at| data.get(at)).copied().ok_or(SkipReason::Truncated)?;
        offset = offset.saturating_add(GRE_SOURCE_ROUTE_ENTRY_HEADER_LEN).saturating_add(usize::from(sre_len));
        if family == 0 && sre_len == 0 {
            return Ok(offset);
        }
    }
}

/// ERSPAN type II (8-byte header) or III (12 bytes, plus 8 when the platform-specific subheader
/// flag is set), followed by the mirrored Ethernet frame.
fn erspan<'a>(
    data: &'a [u8],
    expected_version: u8,
    outer: &IpPacket<'_>,
    context: &mut TunnelContext,
) -> Result<Layer<'a>, SkipReason> {
    let version = data.first().map(|byte| byte >> 4).ok_or(SkipReason::Truncated)?;
    if version != expected_version {
        return Err(SkipReason::Malformed);
    }
    let session = be_u16(data, 2).ok_or(SkipReason::Truncated)? & ERSPAN_SESSION_ID_MASK;
    let header_len = if version == ERSPAN_II_VERSION {
        ERSPAN_II_HEADER_LEN
    } else {
        let flags = be_u16(data, ERSPAN_III_HEADER_LEN - 2).ok_or(SkipReason::Truncated)?;
        if flags & ERSPAN_III_OPTIONAL_SUBHEADER != 0 {
            ERSPAN_III_HEADER_LEN + ERSPAN_III_PLATFORM_SUBHEADER_LEN
        } else {
            ERSPAN_III_HEADER_LEN
        }
    };
    let frame = data.get(header_len..).ok_or(SkipReason::Truncated)?;
    context.enter(TunnelKind::Erspan, outer, u32::from(session))?;
    Ok(Layer::Ethernet(frame))
}

/// UDP: only the tunnel ports lead on (VXLAN on 4789 and 8472, VXLAN-GPE, GENEVE, Teredo, GTP-U,
/// L2TP, TZSP, MPLS in UDP); anything else is not TCP.
pub(super) fn udp<'a>(outer: &IpPacket<'a>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let header = UdpHeaderSlice::from_slice(outer.payload).map_err(|_| SkipReason::Truncated)?;
    // Trust the UDP length only when it is consistent with what the capture holds.
    let end = match usize::from(header.length()) {
        len if (UDP_HEADER_LEN..=outer.payload.len()).contains(&len) => len,
        _ => outer.payload.len(),
    };
    let data = outer.payload.get(UDP_HEADER_LEN..end).unwrap_or_default();
    match header.destination_port() {
        VXLAN_LINUX_PORT if data.first().is_none_or(|flags| flags & VXLAN_FLAG_VNI == 0) => Err(SkipReason::NotTcp),
        VXLAN_PORT | VXLAN_LINUX_PORT => {
            let vni = be_u32(data, 4).ok_or(SkipReason::Truncated)? >> 8;
            let frame = data.get(VXLAN_HEADER_LEN..).ok_or(SkipReason::Truncated)?;
            context.enter(TunnelKind::Vxlan, outer, vni)?;
            Ok(Layer::Ethernet(frame))
        }
        GENEVE_PORT => geneve(data, outer, context),
        TEREDO_PORT => teredo(data, header.length(), outer, context),
        GTP_U_PORT => gtp_u(data, outer, context),
        L2TP_PORT => l2tp(data, outer, context),
        TZSP_PORT => tzsp(data, outer, context),
        VXLAN_GPE_PORT => vxlan_gpe(data, outer, context),
        MPLS_IN_UDP_PORT => {
            context.enter(TunnelKind::MplsInUdp, outer, 0)?;
            Ok(Layer::EtherType(ETHERTYPE_MPLS_UNICAST, data))
        }
        _ if header.source_port() == TEREDO_PORT => teredo(data, header.length(), outer, context),
        // The end that accepted the tunnel may answer from another port (RFC 2661 §8.1); most
        // keep 1701.
        _ if header.source_port() == L2TP_PORT => l2tp(data, outer, context),
        _ => Err(SkipReason::NotTcp),
    }
}

/// GTP-U (3GPP TS 29.281 §5): a G-PDU's header (§5.1), its optional fields when E, S or PN is
/// set, the extension headers the E flag announces (§5.2: a length in 4-octet units, then the
/// next one's type in the last octet, 0 ending the chain), then the user's IPv4 or IPv6 packet.
/// Other messages (echo, error indication, end marker) carry no user packet.
fn gtp_u<'a>(data: &'a [u8], outer: &IpPacket<'_>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let [flags, message_type] = *data.first_chunk::<2>().ok_or(SkipReason::Truncated)?;
    if flags >> 5 != GTP_VERSION_1 || flags & GTP_PROTOCOL_TYPE_GTP == 0 {
        return Err(SkipReason::Malformed);
    }
    if message_type != GTP_G_PDU {
        return Err(SkipReason::NotTcp);
    }
    let mut offset = GTP_HEADER_LEN;
    if flags & GTP_OPTIONAL_FIELD_FLAGS != 0 {
        offset += GTP_OPTIONAL_FIELDS_LEN;
    }
    if flags & GTP_EXTENSION_HEADER_FLAG != 0 {
        let mut next_type = *data.get(offset - 1).ok_or(SkipReason::Truncated)?;
        let mut headers = 0;
        while next_type != 0 {
            headers += 1;
            let units = *data.get(offset).ok_or(SkipReason::Truncated)?;
            if units == 0 || headers > GTP_MAX_EXTENSION_HEADERS {
                return Err(SkipReason::Malformed);
            }
            offset += usize::from(units) * GTP_EXTENSION_UNIT;
            next_type = *data.get(offset - 1).ok_or(SkipReason::Truncated)?;
        }
    }
    let inner = data.get(offset..).ok_or(SkipReason::Truncated)?;
    match inner.first().map(|byte| byte >> 4) {
        None => return Err(SkipReason::Truncated),
        Some(4 | 6) => {}
        // Ethernet and unstructured PDU sessions (5G) carry no IP header.
        Some(_) => return Err(SkipReason::NotIp),
    }
    context.enter(TunnelKind::GtpU, outer, 0)?;
    Ok(Layer::Ip(inner))
}

/// An L2TPv2 data message (RFC 2661 §3.1): flags and version, the length when L is set, tunnel
/// and session ids, Ns and Nr when S is set, the offset size and that many bytes of padding when
/// O is set, then a PPP frame. Control messages (T set) and other versions (L2TPv3 over UDP) carry
/// no PPP.
fn l2tp<'a>(data: &'a [u8], outer: &IpPacket<'_>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let flags = be_u16(data, 0).ok_or(SkipReason::Truncated)?;
    if flags & L2TP_VERSION_MASK != L2TP_VERSION_2 || flags & L2TP_CONTROL_MESSAGE != 0 {
        return Err(SkipReason::NotTcp);
    }
    let mut offset = L2TP_FLAGS_LEN;
    if flags & L2TP_LENGTH_PRESENT != 0 {
        offset += L2TP_LENGTH_LEN;
    }
    offset += L2TP_IDS_LEN;
    if flags & L2TP_SEQUENCE_PRESENT != 0 {
        offset += L2TP_SEQUENCE_LEN;
    }
    if flags & L2TP_OFFSET_PRESENT != 0 {
        let padding = be_u16(data, offset).ok_or(SkipReason::Truncated)?;
        offset += L2TP_OFFSET_SIZE_LEN + usize::from(padding);
    }
    let inner = link::ppp(data.get(offset..).ok_or(SkipReason::Truncated)?)?;
    context.enter(TunnelKind::L2tp, outer, 0)?;
    Ok(inner)
}

/// TZSP: a frame a remote sensor received or sent, behind the header and its tagged fields:
/// Ethernet, raw IP, or 802.11 bare or behind a Prism, radiotap or AVS header (a wireless sensor's
/// frames, read as the capture of a monitor interface is). Other packet types (configuration,
/// keepalive, port opener) and encapsulations (token ring, FDDI…) are not followed.
fn tzsp<'a>(data: &'a [u8], outer: &IpPacket<'_>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let [version, packet_type] = *data.first_chunk::<2>().ok_or(SkipReason::Truncated)?;
    if version != TZSP_VERSION {
        return Err(SkipReason::Malformed);
    }
    let encapsulation = be_u16(data, 2).ok_or(SkipReason::Truncated)?;
    let followed = matches!(
        encapsulation,
        TZSP_ETHERNET
            | TZSP_RAW_IP
            | TZSP_IEEE_802_11
            | TZSP_IEEE_802_11_PRISM
            | TZSP_IEEE_802_11_RADIOTAP
            | TZSP_IEEE_802_11_AVS
    );
    if !matches!(packet_type, TZSP_RECEIVED | TZSP_TRANSMITTED) || !followed {
        return Err(SkipReason::NotTcp);
    }
    let mut offset = TZSP_HEADER_LEN;
    loop {
        match *data.get(offset).ok_or(SkipReason::Truncated)? {
            TZSP_TAG_END => break,
            TZSP_TAG_PADDING => offset += 1,
            _ => {
                let len = *data.get(offset + 1).ok_or(SkipReason::Truncated)?;
                offset += TZSP_TAG_HEADER_LEN + usize::from(len);
            }
        }
    }
    let frame = data.get(offset + 1..).ok_or(SkipReason::Truncated)?;
    context.enter(TunnelKind::Tzsp, outer, 0)?;
    match encapsulation {
        TZSP_RAW_IP => Ok(Layer::Ip(frame)),
        TZSP_IEEE_802_11 => wifi::ieee802_11(frame),
        TZSP_IEEE_802_11_PRISM => wifi::ieee802_11(wifi::after_prism_or_avs(frame)?),
        TZSP_IEEE_802_11_RADIOTAP => wifi::radiotap(frame),
        TZSP_IEEE_802_11_AVS => wifi::ieee802_11(wifi::after_avs(frame)?),
        _ => Ok(Layer::Ethernet(frame)),
    }
}

/// VXLAN-GPE: VXLAN's header with a version and a next-protocol byte (present when P is set),
/// naming IPv4, IPv6, Ethernet or MPLS (NSH and the rest are not followed).
fn vxlan_gpe<'a>(data: &'a [u8], outer: &IpPacket<'_>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let flags = *data.first().ok_or(SkipReason::Truncated)?;
    if flags & VXLAN_GPE_VERSION_MASK != 0 || flags & VXLAN_GPE_NEXT_PROTOCOL_PRESENT == 0 {
        return Err(SkipReason::Malformed);
    }
    let next_protocol = *data.get(3).ok_or(SkipReason::Truncated)?;
    let vni = be_u32(data, 4).ok_or(SkipReason::Truncated)? >> 8;
    let inner = data.get(VXLAN_GPE_HEADER_LEN..).ok_or(SkipReason::Truncated)?;
    let layer = match next_protocol {
        VXLAN_GPE_IPV4 | VXLAN_GPE_IPV6 => Layer::Ip(inner),
        VXLAN_GPE_ETHERNET => Layer::Ethernet(inner),
        VXLAN_GPE_MPLS => Layer::EtherType(ETHERTYPE_MPLS_UNICAST, inner),
        _ => return Err(SkipReason::NotTcp),
    };
    context.enter(TunnelKind::VxlanGpe, outer, vni)?;
    Ok(layer)
}

/// Teredo: optional authentication and origin indicators, then an IPv6 packet. Other traffic on
/// port 3544 is told apart as Wireshark's heuristic does: the packet must say version 6 and its
/// length must be what is left of the datagram on the wire (`udp_len`, the UDP length field, so
/// that a frame cut by the snaplen still passes); anything else is not a tunnel, hence not TCP.
fn teredo<'a>(
    data: &'a [u8],
    udp_len: u16,
    outer: &IpPacket<'_>,
    context: &mut TunnelContext,
) -> Result<Layer<'a>, SkipReason> {
    let mut offset = 0;
    if be_u16(data, offset) == Some(TEREDO_AUTHENTICATION) {
        let lengths = data.get(offset + 2..offset + 4).ok_or(SkipReason::NotTcp)?;
        let values: usize = lengths.iter().map(|len| usize::from(*len)).sum();
        offset += TEREDO_AUTHENTICATION_FIXED_LEN + values;
    }
    if be_u16(data, offset) == Some(TEREDO_ORIGIN) {
        offset += TEREDO_ORIGIN_LEN;
    }
    let inner = data.get(offset..).ok_or(SkipReason::NotTcp)?;
    let is_ipv6 = inner.first().is_some_and(|byte| byte >> 4 == 6);
    let on_the_wire = usize::from(udp_len).checked_sub(UDP_HEADER_LEN + offset);
    let declared = be_u16(inner, 4).map(|payload_len| IPV6_HEADER_LEN + usize::from(payload_len));
    if !is_ipv6 || on_the_wire.is_none() || on_the_wire != declared {
        return Err(SkipReason::NotTcp);
    }
    context.enter(TunnelKind::Teredo, outer, 0)?;
    Ok(Layer::Ip(inner))
}

/// GENEVE (RFC 8926): an 8-byte header plus options, then a frame named by an ethertype.
fn geneve<'a>(data: &'a [u8], outer: &IpPacket<'_>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let first = *data.first().ok_or(SkipReason::Truncated)?;
    if first >> 6 != 0 {
        return Err(SkipReason::Malformed);
    }
    let options_len = usize::from(first & 0x3f) * GENEVE_OPTION_UNIT;
    let protocol = be_u16(data, 2).ok_or(SkipReason::Truncated)?;
    let vni = be_u32(data, 4).ok_or(SkipReason::Truncated)? >> 8;
    let inner = data.get(GENEVE_HEADER_LEN + options_len..).ok_or(SkipReason::Truncated)?;
    context.enter(TunnelKind::Geneve, outer, vni)?;
    Ok(match protocol {
        GRE_TRANSPARENT_ETHERNET => Layer::Ethernet(inner),
        ether_type => Layer::EtherType(ether_type, inner),
    })
}
