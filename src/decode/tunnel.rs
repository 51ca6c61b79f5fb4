//! Tunnels carried by IP: GRE (with transparent Ethernet and ERSPAN types I, II and III), VXLAN,
//! GENEVE, Teredo and IP-in-IP; and the context that keeps the flows of different tunnels apart.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use etherparse::UdpHeaderSlice;

use super::ip::IpPacket;
use super::link::{be_u16, be_u32, Layer};
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

/// GRE version 0 (RFC 1701/2784/2890). Version 1 (PPTP) carries PPP, which holds no IP we decode.
pub(super) fn gre<'a>(outer: &IpPacket<'a>, context: &mut TunnelContext) -> Result<Layer<'a>, SkipReason> {
    let data = outer.payload;
    let flags = be_u16(data, 0).ok_or(SkipReason::Truncated)?;
    let protocol = be_u16(data, 2).ok_or(SkipReason::Truncated)?;
    if flags & GRE_VERSION_MASK != 0 {
        return Err(SkipReason::NotIp);
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

/// UDP: only the tunnel ports lead on (VXLAN on 4789 and 8472, GENEVE, Teredo); anything else is
/// not TCP.
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
        _ if header.source_port() == TEREDO_PORT => teredo(data, header.length(), outer, context),
        _ => Err(SkipReason::NotTcp),
    }
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
