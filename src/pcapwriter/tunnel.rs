//! Tunnel encapsulations for decoder tests. Each [`Encap`] wraps a [`Packet`] into a new outer
//! packet; a conversation applies its steps innermost first. Header layouts follow VXLAN (RFC 7348),
//! VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe §3.2), GENEVE (RFC 8926), GRE (RFC 2784 with the key and
//! sequence extensions of RFC 2890), PPTP's enhanced GRE (RFC 2637 §4.1), ERSPAN types II and III
//! (draft-foschiano-erspan, as Wireshark dissects them), MPLS (RFC 3032), MPLS in UDP (RFC 7510),
//! GTP-U (3GPP TS 29.281 §5), L2TPv2 (RFC 2661 §3.1) with PPP (RFC 1661 §2, RFC 1662 §3.1), TZSP
//! (Network Chemistry's AN001), VN-Tag, 802.1BR E-tags, 802.1ah I-TAGs (802.1Q §9.7) and IP-in-IP
//! (protocols 4 and 41). [`Encap::Fragment`] is not a tunnel but IP fragmentation (RFC 791,
//! RFC 8200 §4.5), a step that turns one packet into several.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use etherparse::checksum::Sum16BitWords;
use etherparse::{
    IpFragOffset, IpHeaders, IpNumber, Ipv4HeaderSlice, Ipv6FragmentHeader, Ipv6Header, Ipv6HeaderSlice, PacketBuilder,
    PacketBuilderStep,
};

use super::conversation::{ScriptError, Side};
use super::link::{push_ethernet, Macs};

/// What a [`Packet`] starts with, which tells the next layer out how to announce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Ipv4,
    Ipv6,
    Ethernet,
    /// An MPLS label stack followed by an IP packet.
    Mpls,
    /// A PPPoE session header and PPP protocol number followed by an IP packet.
    Pppoe,
    /// A VN-Tag followed by the EtherType of what it tags.
    VnTagged,
    /// An 802.1BR E-tag followed by the EtherType of what it tags.
    ETagged,
    /// Cisco MetaData followed by the EtherType of what it tags.
    CiscoMetadataTagged,
    /// An 802.1ah I-TAG followed by a customer's Ethernet frame.
    BackboneService,
}

impl PacketKind {
    /// EtherType announcing this kind (GRE and GENEVE reuse EtherTypes as protocol types).
    pub(super) fn ether_type(self) -> u16 {
        match self {
            PacketKind::Ipv4 => 0x0800,
            PacketKind::Ipv6 => 0x86DD,
            PacketKind::Ethernet => TRANSPARENT_ETHERNET_BRIDGING,
            PacketKind::Mpls => 0x8847,
            PacketKind::Pppoe => PPPOE_SESSION,
            PacketKind::VnTagged => VN_TAG,
            PacketKind::ETagged => E_TAG,
            PacketKind::CiscoMetadataTagged => CISCO_METADATA,
            PacketKind::BackboneService => PBB_I_TAG,
        }
    }
}

/// A packet on its way out through the encapsulation steps.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub kind: PacketKind,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Packet {
    /// The bytes may hold test passwords: print only the length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet").field("kind", &self.kind).field("len", &self.bytes.len()).finish()
    }
}

/// Outer addresses of a tunnel. Packets the client sends travel from `client_side` to
/// `server_side`, the server's the other way. Mixed families are written as IPv6, with the IPv4
/// end mapped (`::ffff:a.b.c.d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelEnds {
    pub client_side: IpAddr,
    pub server_side: IpAddr,
}

impl TunnelEnds {
    pub fn new(client_side: impl Into<IpAddr>, server_side: impl Into<IpAddr>) -> Self {
        TunnelEnds { client_side: client_side.into(), server_side: server_side.into() }
    }

    fn oriented(self, from: Side) -> (IpAddr, IpAddr) {
        match from {
            Side::Client => (self.client_side, self.server_side),
            Side::Server => (self.server_side, self.client_side),
        }
    }
}

/// One GENEVE option (RFC 8926 §3.5); `data` must be a multiple of 4 bytes, at most 124.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneveOption {
    pub class: u16,
    pub option_type: u8,
    pub data: Vec<u8>,
}

/// One encapsulation step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encap {
    /// An Ethernet header with fixed inner MACs, for tunnels that carry frames (VXLAN, ERSPAN,
    /// GRE or GENEVE in Ethernet mode).
    Ethernet,
    /// VXLAN over UDP port 4789; carries Ethernet.
    Vxlan { ends: TunnelEnds, vni: u32 },
    /// GENEVE over UDP port 6081; carries anything, announced by EtherType.
    Geneve { ends: TunnelEnds, vni: u32, options: Vec<GeneveOption> },
    /// GRE; carries IPv4, IPv6, MPLS or Ethernet (transparent Ethernet bridging). With `sequence`,
    /// the GRE sequence number is the packet's number in the conversation.
    Gre { ends: TunnelEnds, key: Option<u32>, sequence: bool, checksum: bool },
    /// ERSPAN type II: GRE (with sequence number) protocol 0x88BE, 8-byte header; carries Ethernet.
    /// A mirror sends one way only: always from `client_side` (the switch) to `server_side`.
    ErspanII { ends: TunnelEnds, session: u16, vlan: u16, index: u32 },
    /// ERSPAN type III: GRE (with sequence number) protocol 0x22EB, 12-byte header without the
    /// optional platform subheader, timestamp zero; carries Ethernet, one way like type II.
    ErspanIII { ends: TunnelEnds, session: u16, vlan: u16, hardware_id: u8 },
    /// An MPLS label stack (outermost first, TTL 64); carries IP.
    Mpls { labels: Vec<u32> },
    /// IPv4 (protocol 4) or IPv6 (protocol 41) inside IP.
    IpInIp { ends: TunnelEnds },
    /// A PPPoE session (RFC 2516) with the given id; carries IP, announced by its PPP protocol
    /// number (0x0021 IPv4, 0x0057 IPv6), as on a DSL link.
    Pppoe { session: u16 },
    /// Teredo (RFC 4380): IPv6 in UDP between `client_side` port 49152 and `server_side` (the
    /// relay) port 3544. With `indicators`, each packet starts with an authentication indicator
    /// (no client identifier or value, nonce 0) and an origin indicator (the client side's address
    /// and port, obfuscated).
    Teredo { ends: TunnelEnds, indicators: bool },
    /// The packet as the bare payload of a UDP datagram to `port` (both ways): other traffic on a
    /// tunnel's port.
    Udp { ends: TunnelEnds, port: u16 },
    /// GTP-U (3GPP TS 29.281) over UDP port 2152: G-PDUs carrying IP between `client_side` (the
    /// radio end: eNodeB, gNB) and `server_side` (the core's: SGW, UPF). Each end receives on a
    /// tunnel endpoint id of its own: the client side's packets carry `uplink_teid`, the server
    /// side's `downlink_teid`. With `extension`, the E and S flags are set, the sequence number is
    /// the packet's number, and a PDU session container (TS 38.415) extension header precedes the
    /// packet.
    GtpU { ends: TunnelEnds, uplink_teid: u32, downlink_teid: u32, extension: bool },
    /// L2TPv2 data messages (RFC 2661 §3.1) over UDP port 1701 both ways, carrying PPP with IP.
    /// Each end names the tunnel and session by the ids (tunnel, session) it assigned: packets to
    /// the server side carry `server_side_ids`, packets to the client side `client_side_ids`.
    /// With `all_fields`, the L, S and O flags are set (the length, the packet's number as Ns, an
    /// offset of 2 bytes of padding) and PPP keeps its address and control fields; without, the
    /// header is 6 bytes and PPP is compressed (no address and control fields, a one-byte protocol
    /// field).
    L2tp { ends: TunnelEnds, client_side_ids: (u16, u16), server_side_ids: (u16, u16), all_fields: bool },
    /// PPTP's enhanced GRE (RFC 2637 §4.1: GRE version 1, protocol 0x880B) carrying PPP with IP
    /// (address and control fields, two-byte protocol field). Each packet carries its recipient's
    /// call id: the client's `server_call_id`, the server's `client_call_id`. Every packet has a
    /// sequence number (its number); the server's acknowledge the one before.
    Pptp { ends: TunnelEnds, client_call_id: u16, server_call_id: u16 },
    /// TZSP over UDP port 37008 (MikroTik's packet sniffer streaming): the sensor at `client_side`
    /// sends every frame, whoever sent it, to the collector at `server_side`, as version 1, type 0
    /// (received), encapsulation 1 (Ethernet); carries Ethernet. With `tags`, a padding tag and an
    /// RX frame length tag come before the END tag.
    Tzsp { ends: TunnelEnds, tags: bool },
    /// VXLAN-GPE over UDP port 4790; carries IPv4, IPv6, Ethernet or MPLS, named by its
    /// next-protocol byte.
    VxlanGpe { ends: TunnelEnds, vni: u32 },
    /// MPLS in UDP (RFC 7510) to port 6635; carries an MPLS label stack.
    MplsInUdp { ends: TunnelEnds },
    /// A VN-Tag: the client's frames go up from the port extender, from virtual interface `vif`;
    /// the server's go down to it (the direction bit set, `vif` the destination).
    VnTag { vif: u16 },
    /// An 802.1BR E-tag: the client's frames carry `ecid` as ingress E-CID, the server's as E-CID.
    ETag { ecid: u16 },
    /// Cisco MetaData (TrustSec inline tagging): each side's frames carry its security group tag.
    CiscoMetadata { client_sgt: u16, server_sgt: u16 },
    /// 802.1ah provider backbone bridging: an I-TAG with service instance `isid` before the
    /// customer's frame (which it must carry), its addresses included.
    Pbb { isid: u32 },
    /// IP fragmentation of the packet so far (IPv4, or IPv6 without extension headers): a payload
    /// longer than `size` bytes leaves as fragments of `size` bytes (rounded down to a multiple of
    /// 8), in order, each a frame of its own; the identification is the packet's number. Placed
    /// both inside and outside a tunnel, it fragments the inner packets and then each outer one.
    Fragment { size: u16 },
}

pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
pub const TEREDO_PORT: u16 = 3544;
pub const GTP_U_PORT: u16 = 2152;
pub const L2TP_PORT: u16 = 1701;
pub const TZSP_PORT: u16 = 37008;
pub const VXLAN_GPE_PORT: u16 = 4790;
pub const MPLS_IN_UDP_PORT: u16 = 6635;
/// GTP-U version 1, protocol type GTP; the E and S flags.
const GTP_V1: u8 = 0x30;
const GTP_EXTENSION_AND_SEQUENCE: u8 = 0x06;
const GTP_G_PDU: u8 = 0xFF;
/// A PDU session container (TS 29.281 §5.2.2.7): one 4-octet unit, PDU type (0 downlink, 1
/// uplink) in the high nibble, QoS flow id 9, no more extension headers.
const GTP_PDU_SESSION_CONTAINER: u8 = 0x85;
const GTP_QOS_FLOW: u8 = 9;
/// L2TPv2 flags: L, S and O; version 2.
const L2TP_LENGTH_SEQUENCE_OFFSET: u16 = 0x4A00;
const L2TP_VERSION_2: u16 = 0x0002;
const L2TP_OFFSET_PADDING: u16 = 2;
/// PPP in HDLC-like framing: address and control fields.
const PPP_ADDRESS_CONTROL: [u8; 2] = [0xFF, 0x03];
/// Enhanced GRE flags: K and S always, A on the server's packets; version 1.
const PPTP_KEY_SEQUENCE: u16 = 0x3001;
const PPTP_ACKNOWLEDGMENT: u16 = 0x0080;
const PPTP_PPP: u16 = 0x880B;
const TZSP_VERSION_RECEIVED_ETHERNET: [u8; 4] = [1, 0, 0, 1];
const TZSP_PADDING: u8 = 0;
const TZSP_END: u8 = 1;
const TZSP_RX_FRAME_LENGTH: u8 = 41;
/// VXLAN-GPE flags: I (VNI valid) and P (next protocol present), version 0.
const VXLAN_GPE_FLAGS: u8 = 0x0C;
const VN_TAG: u16 = 0x8926;
const E_TAG: u16 = 0x893F;
const CISCO_METADATA: u16 = 0x8909;
/// Cisco MetaData's version (1) and length (1) as switches send them, then its one option, the
/// SGT (type 1), whose two bytes follow.
const CISCO_METADATA_HEAD: [u8; 4] = [1, 1, 0, 1];
const PBB_I_TAG: u16 = 0x88E7;
/// VN-Tag direction bit: set on frames going down to the port extender.
const VN_TAG_TO_EXTENDER: u32 = 1 << 31;
const ERSPAN_II_PROTOCOL: u16 = 0x88BE;
const ERSPAN_III_PROTOCOL: u16 = 0x22EB;
const TRANSPARENT_ETHERNET_BRIDGING: u16 = 0x6558;
const PPPOE_SESSION: u16 = 0x8864;
/// PPPoE version 1, type 1; code 0 for session data.
const PPPOE_VERSION_TYPE: u8 = 0x11;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
/// UDP tunnels pick their source port from a flow hash; a fixed one keeps captures reproducible.
const TUNNEL_SOURCE_PORT: u16 = 49152;
const TTL: u8 = 64;
const INNER_MACS: Macs = Macs { client: [0x02, 0, 0, 0, 0x01, 0x01], server: [0x02, 0, 0, 0, 0x01, 0x02] };

impl Encap {
    /// Wraps `inner`, sent by `from`; `number` is the packet's index in its conversation (used as
    /// GRE sequence number and fragment identification). One packet comes out, or several for
    /// [`Encap::Fragment`].
    pub fn wrap(&self, inner: Packet, from: Side, number: u32) -> Result<Vec<Packet>, ScriptError> {
        let packet = match self {
            Encap::Fragment { size } => return fragment(inner, *size, number),
            Encap::Ethernet => {
                let (source, destination) = INNER_MACS.oriented(from);
                let mut bytes = Vec::with_capacity(inner.bytes.len().saturating_add(14));
                let ether_type = match inner.kind {
                    PacketKind::Ethernet => return Err(cannot_carry("Ethernet", inner.kind)),
                    kind => kind.ether_type(),
                };
                push_ethernet(&mut bytes, source, destination, &[], ether_type)?;
                bytes.extend_from_slice(&inner.bytes);
                Ok(Packet { kind: PacketKind::Ethernet, bytes })
            }
            Encap::Vxlan { ends, vni } => {
                require_ethernet(&inner, "VXLAN")?;
                let mut payload = vec![0x08, 0, 0, 0]; // flags: VNI present
                payload.extend_from_slice(&(fits(*vni, 24, "VXLAN VNI")? << 8).to_be_bytes());
                payload.extend_from_slice(&inner.bytes);
                outer_udp(*ends, from, VXLAN_PORT, &payload)
            }
            Encap::Geneve { ends, vni, options } => {
                let options = geneve_options(options)?;
                let words = u8::try_from(options.len() / 4)
                    .ok()
                    .filter(|words| *words < 64)
                    .ok_or(ScriptError::OutOfRange { field: "GENEVE options length", value: options.len() as u64 })?;
                let mut payload = vec![words, 0]; // version 0, no O or C bit
                payload.extend_from_slice(&inner.kind.ether_type().to_be_bytes());
                payload.extend_from_slice(&(fits(*vni, 24, "GENEVE VNI")? << 8).to_be_bytes());
                payload.extend_from_slice(&options);
                payload.extend_from_slice(&inner.bytes);
                outer_udp(*ends, from, GENEVE_PORT, &payload)
            }
            Encap::Gre { ends, key, sequence, checksum } => {
                let sequence = sequence.then_some(number);
                let gre = gre(inner.kind.ether_type(), *key, sequence, *checksum, &inner.bytes);
                outer_ip(*ends, from, IpNumber::GRE, &gre)
            }
            Encap::ErspanII { ends, session, vlan, index } => {
                require_ethernet(&inner, "ERSPAN")?;
                let mut erspan = Vec::with_capacity(inner.bytes.len().saturating_add(8));
                erspan.extend_from_slice(&(0x1000 | fits16(*vlan, 12, "ERSPAN VLAN")?).to_be_bytes());
                // COS 0, encapsulation type 0 (untagged), not truncated.
                erspan.extend_from_slice(&fits16(*session, 10, "ERSPAN session")?.to_be_bytes());
                erspan.extend_from_slice(&fits(*index, 20, "ERSPAN index")?.to_be_bytes());
                erspan.extend_from_slice(&inner.bytes);
                let gre = gre(ERSPAN_II_PROTOCOL, None, Some(number), false, &erspan);
                outer_ip(*ends, Side::Client, IpNumber::GRE, &gre)
            }
            Encap::ErspanIII { ends, session, vlan, hardware_id } => {
                require_ethernet(&inner, "ERSPAN")?;
                let mut erspan = Vec::with_capacity(inner.bytes.len().saturating_add(12));
                erspan.extend_from_slice(&(0x2000 | fits16(*vlan, 12, "ERSPAN VLAN")?).to_be_bytes());
                // COS 0, BSO 0, not truncated.
                erspan.extend_from_slice(&fits16(*session, 10, "ERSPAN session")?.to_be_bytes());
                // Timestamp and security group tag.
                erspan.extend_from_slice(&[0; 6]);
                // P 0, frame type 0 (Ethernet), hardware id in bits 9..4, D 0, granularity 0, O 0.
                let hardware_id = fits16(u16::from(*hardware_id), 6, "ERSPAN hardware id")?;
                erspan.extend_from_slice(&(hardware_id << 4).to_be_bytes());
                erspan.extend_from_slice(&inner.bytes);
                let gre = gre(ERSPAN_III_PROTOCOL, None, Some(number), false, &erspan);
                outer_ip(*ends, Side::Client, IpNumber::GRE, &gre)
            }
            Encap::Mpls { labels } => {
                if !matches!(inner.kind, PacketKind::Ipv4 | PacketKind::Ipv6) {
                    return Err(cannot_carry("MPLS", inner.kind));
                }
                let mut bytes = Vec::with_capacity(inner.bytes.len().saturating_add(labels.len().saturating_mul(4)));
                let mut rest = labels.iter().peekable();
                while let Some(&label) = rest.next() {
                    let bottom_of_stack = if rest.peek().is_none() { 1 << 8 } else { 0 };
                    let entry = fits(label, 20, "MPLS label")? << 12 | bottom_of_stack | u32::from(TTL);
                    bytes.extend_from_slice(&entry.to_be_bytes());
                }
                bytes.extend_from_slice(&inner.bytes);
                Ok(Packet { kind: PacketKind::Mpls, bytes })
            }
            Encap::Pppoe { session } => Ok(Packet { kind: PacketKind::Pppoe, bytes: pppoe_session(*session, &inner)? }),
            Encap::Teredo { ends, indicators } => {
                if inner.kind != PacketKind::Ipv6 {
                    return Err(cannot_carry("Teredo", inner.kind));
                }
                let mut payload = Vec::with_capacity(inner.bytes.len().saturating_add(21));
                if *indicators {
                    // Authentication: type, client id length 0, value length 0, nonce, confirmation.
                    payload.extend_from_slice(&[0, 1, 0, 0]);
                    payload.extend_from_slice(&[0; 9]);
                    // Origin: type, then port and IPv4 address, each bit inverted.
                    let origin = match ends.client_side {
                        IpAddr::V4(address) => address.octets(),
                        IpAddr::V6(_) => [0; 4],
                    };
                    payload.extend_from_slice(&[0, 0]);
                    payload.extend_from_slice(&(!TUNNEL_SOURCE_PORT).to_be_bytes());
                    payload.extend(origin.iter().map(|byte| !byte));
                }
                payload.extend_from_slice(&inner.bytes);
                let (source_port, destination_port) = match from {
                    Side::Client => (TUNNEL_SOURCE_PORT, TEREDO_PORT),
                    Side::Server => (TEREDO_PORT, TUNNEL_SOURCE_PORT),
                };
                outer_udp_ports(*ends, from, source_port, destination_port, &payload)
            }
            Encap::Udp { ends, port } => outer_udp_ports(*ends, from, *port, *port, &inner.bytes),
            Encap::GtpU { ends, uplink_teid, downlink_teid, extension } => {
                if !matches!(inner.kind, PacketKind::Ipv4 | PacketKind::Ipv6) {
                    return Err(cannot_carry("GTP-U", inner.kind));
                }
                let (teid, pdu_type) = match from {
                    Side::Client => (uplink_teid, 1),
                    Side::Server => (downlink_teid, 0),
                };
                let mut optional = Vec::new();
                if *extension {
                    let [_, _, sequence @ ..] = number.to_be_bytes();
                    optional.extend_from_slice(&sequence);
                    // N-PDU number unused, then the extension header and its successor: none.
                    optional.extend_from_slice(&[0, GTP_PDU_SESSION_CONTAINER]);
                    optional.extend_from_slice(&[1, pdu_type << 4, GTP_QOS_FLOW, 0]);
                }
                let length = optional.len().saturating_add(inner.bytes.len());
                let length = u16::try_from(length)
                    .map_err(|_| ScriptError::OutOfRange { field: "GTP-U length", value: length as u64 })?;
                let flags = if *extension { GTP_V1 | GTP_EXTENSION_AND_SEQUENCE } else { GTP_V1 };
                let mut payload = vec![flags, GTP_G_PDU];
                payload.extend_from_slice(&length.to_be_bytes());
                payload.extend_from_slice(&teid.to_be_bytes());
                payload.extend_from_slice(&optional);
                payload.extend_from_slice(&inner.bytes);
                outer_udp(*ends, from, GTP_U_PORT, &payload)
            }
            Encap::L2tp { ends, client_side_ids, server_side_ids, all_fields } => {
                let (tunnel, session) = match from {
                    Side::Client => server_side_ids,
                    Side::Server => client_side_ids,
                };
                let ppp = ppp_frame(&inner, "L2TP", !*all_fields)?;
                let mut header = Vec::with_capacity(16);
                if *all_fields {
                    header.extend_from_slice(&(L2TP_LENGTH_SEQUENCE_OFFSET | L2TP_VERSION_2).to_be_bytes());
                    let length = ppp.len().saturating_add(16);
                    let length = u16::try_from(length)
                        .map_err(|_| ScriptError::OutOfRange { field: "L2TP length", value: length as u64 })?;
                    header.extend_from_slice(&length.to_be_bytes());
                } else {
                    header.extend_from_slice(&L2TP_VERSION_2.to_be_bytes());
                }
                header.extend_from_slice(&tunnel.to_be_bytes());
                header.extend_from_slice(&session.to_be_bytes());
                if *all_fields {
                    // Ns (the packet's number), Nr, the offset size and its padding.
                    let [_, _, sequence @ ..] = number.to_be_bytes();
                    header.extend_from_slice(&sequence);
                    header.extend_from_slice(&[0, 0]);
                    header.extend_from_slice(&L2TP_OFFSET_PADDING.to_be_bytes());
                    header.extend(std::iter::repeat_n(0, usize::from(L2TP_OFFSET_PADDING)));
                }
                header.extend_from_slice(&ppp);
                outer_udp_ports(*ends, from, L2TP_PORT, L2TP_PORT, &header)
            }
            Encap::Pptp { ends, client_call_id, server_call_id } => {
                let ppp = ppp_frame(&inner, "PPTP", false)?;
                let payload_length = u16::try_from(ppp.len())
                    .map_err(|_| ScriptError::OutOfRange { field: "PPTP payload length", value: ppp.len() as u64 })?;
                let (flags, call_id) = match from {
                    Side::Client => (PPTP_KEY_SEQUENCE, server_call_id),
                    Side::Server => (PPTP_KEY_SEQUENCE | PPTP_ACKNOWLEDGMENT, client_call_id),
                };
                let mut gre = Vec::with_capacity(ppp.len().saturating_add(16));
                gre.extend_from_slice(&flags.to_be_bytes());
                gre.extend_from_slice(&PPTP_PPP.to_be_bytes());
                gre.extend_from_slice(&payload_length.to_be_bytes());
                gre.extend_from_slice(&call_id.to_be_bytes());
                gre.extend_from_slice(&number.to_be_bytes());
                if from == Side::Server {
                    gre.extend_from_slice(&number.saturating_sub(1).to_be_bytes());
                }
                gre.extend_from_slice(&ppp);
                outer_ip(*ends, from, IpNumber::GRE, &gre)
            }
            Encap::Tzsp { ends, tags } => {
                require_ethernet(&inner, "TZSP")?;
                let mut payload = TZSP_VERSION_RECEIVED_ETHERNET.to_vec();
                if *tags {
                    let frame_length = u16::try_from(inner.bytes.len()).unwrap_or(u16::MAX);
                    payload.push(TZSP_PADDING);
                    payload.extend_from_slice(&[TZSP_RX_FRAME_LENGTH, 2]);
                    payload.extend_from_slice(&frame_length.to_be_bytes());
                }
                payload.push(TZSP_END);
                payload.extend_from_slice(&inner.bytes);
                outer_udp(*ends, Side::Client, TZSP_PORT, &payload)
            }
            Encap::VxlanGpe { ends, vni } => {
                let next_protocol = match inner.kind {
                    PacketKind::Ipv4 => 1,
                    PacketKind::Ipv6 => 2,
                    PacketKind::Ethernet => 3,
                    PacketKind::Mpls => 5,
                    kind => return Err(cannot_carry("VXLAN-GPE", kind)),
                };
                let mut payload = vec![VXLAN_GPE_FLAGS, 0, 0, next_protocol];
                payload.extend_from_slice(&(fits(*vni, 24, "VXLAN-GPE VNI")? << 8).to_be_bytes());
                payload.extend_from_slice(&inner.bytes);
                outer_udp(*ends, from, VXLAN_GPE_PORT, &payload)
            }
            Encap::MplsInUdp { ends } => {
                if inner.kind != PacketKind::Mpls {
                    return Err(cannot_carry("MPLS in UDP", inner.kind));
                }
                outer_udp(*ends, from, MPLS_IN_UDP_PORT, &inner.bytes)
            }
            Encap::VnTag { vif } => {
                // Direction, pointer 0, destination vif (14 bits), looped 0, reserved, version 0,
                // source vif (12 bits).
                let tag = match from {
                    Side::Client => u32::from(fits16(*vif, 12, "VN-Tag vif")?),
                    Side::Server => VN_TAG_TO_EXTENDER | u32::from(fits16(*vif, 12, "VN-Tag vif")?) << 16,
                };
                tagged(&inner, "VN-Tag", &tag.to_be_bytes(), PacketKind::VnTagged)
            }
            Encap::ETag { ecid } => {
                // E-PCP and E-DEI 0, ingress E-CID base (12 bits), reserved, GRP 0, E-CID base
                // (12 bits), both extensions 0.
                let ecid = u64::from(fits16(*ecid, 12, "E-tag E-CID")?);
                let tag = match from {
                    Side::Client => ecid << 32,
                    Side::Server => ecid << 16,
                };
                let [_, _, tag @ ..] = tag.to_be_bytes();
                tagged(&inner, "E-tag", &tag, PacketKind::ETagged)
            }
            Encap::CiscoMetadata { client_sgt, server_sgt } => {
                let sgt = match from {
                    Side::Client => client_sgt,
                    Side::Server => server_sgt,
                };
                let tag = [&CISCO_METADATA_HEAD[..], &sgt.to_be_bytes()].concat();
                tagged(&inner, "Cisco MetaData", &tag, PacketKind::CiscoMetadataTagged)
            }
            Encap::Pbb { isid } => {
                require_ethernet(&inner, "802.1ah")?;
                // I-PCP, I-DEI, UCA and reserved bits 0, then the I-SID.
                let mut bytes = fits(*isid, 24, "802.1ah I-SID")?.to_be_bytes().to_vec();
                bytes.extend_from_slice(&inner.bytes);
                Ok(Packet { kind: PacketKind::BackboneService, bytes })
            }
            Encap::IpInIp { ends } => {
                let protocol = match inner.kind {
                    PacketKind::Ipv4 => IpNumber::IPV4,
                    PacketKind::Ipv6 => IpNumber::IPV6,
                    kind => return Err(cannot_carry("IP-in-IP", kind)),
                };
                outer_ip(*ends, from, protocol, &inner.bytes)
            }
        };
        packet.map(|packet| vec![packet])
    }
}

/// A PPPoE session header (RFC 2516 §4) and the PPP protocol number before an IP packet.
pub(super) fn pppoe_session(session: u16, inner: &Packet) -> Result<Vec<u8>, ScriptError> {
    let protocol = ppp_protocol(inner, "PPPoE")?;
    // The length counts the PPP payload: the protocol number and the packet.
    let length = inner.bytes.len().saturating_add(2);
    let length =
        u16::try_from(length).map_err(|_| ScriptError::OutOfRange { field: "PPPoE length", value: length as u64 })?;
    let mut bytes = Vec::with_capacity(usize::from(length).saturating_add(6));
    bytes.extend_from_slice(&[PPPOE_VERSION_TYPE, 0]);
    bytes.extend_from_slice(&session.to_be_bytes());
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&protocol.to_be_bytes());
    bytes.extend_from_slice(&inner.bytes);
    Ok(bytes)
}

/// A PPP frame of an IP packet: with address and control fields and a two-byte protocol field,
/// or `compressed` (neither field, a one-byte protocol field).
pub(super) fn ppp_frame(inner: &Packet, layer: &'static str, compressed: bool) -> Result<Vec<u8>, ScriptError> {
    let protocol = ppp_protocol(inner, layer)?;
    let mut frame = Vec::with_capacity(inner.bytes.len().saturating_add(4));
    if compressed {
        let [_, low_byte] = protocol.to_be_bytes();
        frame.push(low_byte);
    } else {
        frame.extend_from_slice(&PPP_ADDRESS_CONTROL);
        frame.extend_from_slice(&protocol.to_be_bytes());
    }
    frame.extend_from_slice(&inner.bytes);
    Ok(frame)
}

/// The PPP protocol number of an IP packet; `layer` cannot carry anything else.
fn ppp_protocol(inner: &Packet, layer: &'static str) -> Result<u16, ScriptError> {
    match inner.kind {
        PacketKind::Ipv4 => Ok(PPP_IPV4),
        PacketKind::Ipv6 => Ok(PPP_IPV6),
        kind => Err(cannot_carry(layer, kind)),
    }
}

/// A tag in front of a packet announced by EtherType: the tag's bytes, then that EtherType.
fn tagged(inner: &Packet, layer: &'static str, tag: &[u8], kind: PacketKind) -> Result<Packet, ScriptError> {
    if inner.kind == PacketKind::Ethernet {
        return Err(cannot_carry(layer, inner.kind));
    }
    let mut bytes = Vec::with_capacity(inner.bytes.len().saturating_add(tag.len()).saturating_add(2));
    bytes.extend_from_slice(tag);
    bytes.extend_from_slice(&inner.kind.ether_type().to_be_bytes());
    bytes.extend_from_slice(&inner.bytes);
    Ok(Packet { kind, bytes })
}

/// The fragments of an IP packet whose payload exceeds `size` bytes, or the packet itself.
fn fragment(inner: Packet, size: u16, number: u32) -> Result<Vec<Packet>, ScriptError> {
    let chunk = usize::from(size) / 8 * 8;
    if chunk == 0 {
        return Err(ScriptError::OutOfRange { field: "fragment size", value: size.into() });
    }
    let build = |e: etherparse::err::ValueTooBigError<usize>| ScriptError::Build(e.to_string());
    let malformed = |e: &dyn fmt::Display| ScriptError::Build(e.to_string());
    let mut packets = Vec::new();
    match inner.kind {
        PacketKind::Ipv4 => {
            let slice = Ipv4HeaderSlice::from_slice(&inner.bytes).map_err(|e| malformed(&e))?;
            let header_len = slice.slice().len();
            let payload = inner.bytes.get(header_len..usize::from(slice.total_len())).unwrap_or_default();
            if payload.len() <= chunk {
                return Ok(vec![inner]);
            }
            let mut header = slice.to_header();
            header.identification = (number & 0xffff) as u16;
            for (index, piece) in payload.chunks(chunk).enumerate() {
                let offset = index * chunk;
                header.fragment_offset = fragment_offset(offset)?;
                header.more_fragments = offset + piece.len() < payload.len();
                header.set_payload_len(piece.len()).map_err(build)?;
                header.header_checksum = header.calc_header_checksum();
                let mut bytes = header.to_bytes().to_vec();
                bytes.extend_from_slice(piece);
                packets.push(Packet { kind: PacketKind::Ipv4, bytes });
            }
        }
        PacketKind::Ipv6 => {
            let slice = Ipv6HeaderSlice::from_slice(&inner.bytes).map_err(|e| malformed(&e))?;
            let payload = inner.bytes.get(Ipv6Header::LEN..).unwrap_or_default();
            if payload.len() <= chunk {
                return Ok(vec![inner]);
            }
            let mut header = slice.to_header();
            let next_header = header.next_header;
            header.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
            for (index, piece) in payload.chunks(chunk).enumerate() {
                let offset = index * chunk;
                let more = offset + piece.len() < payload.len();
                let fragment_header = Ipv6FragmentHeader::new(next_header, fragment_offset(offset)?, more, number);
                header.set_payload_length(piece.len() + Ipv6FragmentHeader::LEN).map_err(build)?;
                let mut bytes = header.to_bytes().to_vec();
                bytes.extend_from_slice(&fragment_header.to_bytes());
                bytes.extend_from_slice(piece);
                packets.push(Packet { kind: PacketKind::Ipv6, bytes });
            }
        }
        kind => return Err(cannot_carry("IP fragmentation", kind)),
    }
    Ok(packets)
}

/// The fragment offset field (units of 8 bytes) for a byte offset.
fn fragment_offset(offset: usize) -> Result<IpFragOffset, ScriptError> {
    u16::try_from(offset / 8)
        .ok()
        .and_then(|units| IpFragOffset::try_new(units).ok())
        .ok_or(ScriptError::OutOfRange { field: "fragment offset", value: offset as u64 })
}

/// A packet builder for `source` → `destination`, IPv6 with mapped addresses if the families differ.
pub(super) fn ip_builder(source: IpAddr, destination: IpAddr) -> (PacketBuilderStep<IpHeaders>, PacketKind) {
    match (source, destination) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            (PacketBuilder::ipv4(source.octets(), destination.octets(), TTL), PacketKind::Ipv4)
        }
        (source, destination) => {
            (PacketBuilder::ipv6(as_ipv6(source).octets(), as_ipv6(destination).octets(), TTL), PacketKind::Ipv6)
        }
    }
}

pub(super) fn as_ipv6(address: IpAddr) -> Ipv6Addr {
    match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn outer_ip(ends: TunnelEnds, from: Side, protocol: IpNumber, payload: &[u8]) -> Result<Packet, ScriptError> {
    let (source, destination) = ends.oriented(from);
    let (builder, kind) = ip_builder(source, destination);
    let mut bytes = Vec::with_capacity(builder.size(payload.len()));
    builder.write_to_vec(&mut bytes, protocol, payload).map_err(|e| ScriptError::Build(e.to_string()))?;
    Ok(Packet { kind, bytes })
}

fn outer_udp(ends: TunnelEnds, from: Side, destination_port: u16, payload: &[u8]) -> Result<Packet, ScriptError> {
    outer_udp_ports(ends, from, TUNNEL_SOURCE_PORT, destination_port, payload)
}

fn outer_udp_ports(
    ends: TunnelEnds,
    from: Side,
    source_port: u16,
    destination_port: u16,
    payload: &[u8],
) -> Result<Packet, ScriptError> {
    let (source, destination) = ends.oriented(from);
    let (builder, kind) = ip_builder(source, destination);
    let builder = builder.udp(source_port, destination_port);
    let mut bytes = Vec::with_capacity(builder.size(payload.len()));
    builder.write_to_vec(&mut bytes, payload).map_err(|e| ScriptError::Build(e.to_string()))?;
    Ok(Packet { kind, bytes })
}

/// A GRE header (RFC 2784/2890) followed by `payload`, the checksum covering both.
fn gre(protocol: u16, key: Option<u32>, sequence: Option<u32>, checksum: bool, payload: &[u8]) -> Vec<u8> {
    let mut flags = 0u16;
    if checksum {
        flags |= 0x8000;
    }
    if key.is_some() {
        flags |= 0x2000;
    }
    if sequence.is_some() {
        flags |= 0x1000;
    }
    let mut gre = Vec::with_capacity(payload.len().saturating_add(16));
    gre.extend_from_slice(&flags.to_be_bytes());
    gre.extend_from_slice(&protocol.to_be_bytes());
    if checksum {
        gre.extend_from_slice(&[0; 4]); // checksum, filled below, and reserved
    }
    for value in [key, sequence].into_iter().flatten() {
        gre.extend_from_slice(&value.to_be_bytes());
    }
    gre.extend_from_slice(payload);
    if checksum {
        let sum = Sum16BitWords::new().add_slice(&gre).ones_complement().to_be();
        if let Some(field) = gre.get_mut(4..6) {
            field.copy_from_slice(&sum.to_be_bytes());
        }
    }
    gre
}

fn geneve_options(options: &[GeneveOption]) -> Result<Vec<u8>, ScriptError> {
    let mut bytes = Vec::new();
    for option in options {
        let words = Some(option.data.len())
            .filter(|len| len % 4 == 0)
            .and_then(|len| u8::try_from(len / 4).ok())
            .filter(|words| *words < 32)
            .ok_or(ScriptError::OutOfRange { field: "GENEVE option length", value: option.data.len() as u64 })?;
        bytes.extend_from_slice(&option.class.to_be_bytes());
        bytes.push(option.option_type);
        bytes.push(words); // the 3 reserved bits stay zero
        bytes.extend_from_slice(&option.data);
    }
    Ok(bytes)
}

fn require_ethernet(inner: &Packet, layer: &'static str) -> Result<(), ScriptError> {
    match inner.kind {
        PacketKind::Ethernet => Ok(()),
        kind => Err(cannot_carry(layer, kind)),
    }
}

fn cannot_carry(layer: &'static str, kind: PacketKind) -> ScriptError {
    ScriptError::CannotCarry { layer, kind }
}

/// `value` if it fits in `bits` bits.
fn fits(value: u32, bits: u32, field: &'static str) -> Result<u32, ScriptError> {
    if value >> bits == 0 {
        Ok(value)
    } else {
        Err(ScriptError::OutOfRange { field, value: value.into() })
    }
}

fn fits16(value: u16, bits: u32, field: &'static str) -> Result<u16, ScriptError> {
    fits(value.into(), bits, field).map(|_| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapwriter::test_support::{slice, tcp_of};
    use crate::pcapwriter::{CapturedFrame, Conversation};
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const CLIENT_PORT: u16 = 40_000;

    fn ends() -> TunnelEnds {
        TunnelEnds::new([192, 0, 2, 1], [198, 51, 100, 1])
    }

    /// One client segment and one server segment, wrapped in `steps` (innermost first), over Ethernet.
    fn wrapped(steps: &[Encap]) -> Vec<CapturedFrame> {
        let mut conversation = Conversation::new(([10, 0, 0, 1], CLIENT_PORT), ([10, 0, 0, 2], 143));
        for step in steps {
            conversation.encap(step.clone());
        }
        conversation.client(b"a LOGIN u p\r\n").server(b"a OK\r\n").frames().unwrap()
    }

    fn wrap_error(steps: &[Encap]) -> ScriptError {
        let mut conversation = Conversation::new(([10, 0, 0, 1], CLIENT_PORT), ([10, 0, 0, 2], 143));
        for step in steps {
            conversation.encap(step.clone());
        }
        conversation.client(b"x").frames().unwrap_err()
    }

    /// Outer IPv4 addresses, IP protocol and payload of a frame.
    fn outer_ipv4(frame: &CapturedFrame) -> ([u8; 4], [u8; 4], IpNumber, Vec<u8>) {
        let packet = slice(frame);
        let Some(NetSlice::Ipv4(ip)) = &packet.net else { panic!("outer is not IPv4") };
        let header = ip.header();
        (header.source(), header.destination(), ip.payload().ip_number, ip.payload().payload.to_vec())
    }

    /// Destination port and payload of the outer UDP datagram.
    fn outer_udp(frame: &CapturedFrame) -> (u16, Vec<u8>) {
        let packet = slice(frame);
        let Some(TransportSlice::Udp(udp)) = &packet.transport else { panic!("outer is not UDP") };
        (udp.destination_port(), udp.payload().to_vec())
    }

    fn assert_inner_tcp(inner: SlicedPacket<'_>, src_port: u16, payload: &[u8]) {
        let tcp = tcp_of(&inner);
        assert_eq!((tcp.src_port, tcp.payload.as_slice()), (src_port, payload));
    }

    fn u16_at(bytes: &[u8], offset: usize) -> u16 {
        u16::from_be_bytes([bytes[offset], bytes[offset + 1]])
    }

    fn u32_at(bytes: &[u8], offset: usize) -> u32 {
        u32::from_be_bytes([bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]])
    }

    #[test]
    fn vxlan_carries_ethernet_over_udp_4789_both_ways() {
        let frames = wrapped(&[Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 0xABCDEF }]);
        let (source, destination, protocol, _) = outer_ipv4(&frames[0]);
        assert_eq!((source, destination, protocol), ([192, 0, 2, 1], [198, 51, 100, 1], IpNumber::UDP));
        let (source, destination, _, _) = outer_ipv4(&frames[1]);
        assert_eq!((source, destination), ([198, 51, 100, 1], [192, 0, 2, 1]), "replies go back through the tunnel");

        let (port, vxlan) = outer_udp(&frames[0]);
        assert_eq!(port, VXLAN_PORT);
        assert_eq!(vxlan[0], 0x08, "I flag");
        assert_eq!(vxlan[1..4], [0, 0, 0]);
        assert_eq!(u32_at(&vxlan, 4) >> 8, 0xABCDEF);
        assert_eq!(vxlan[7], 0);
        let inner = SlicedPacket::from_ethernet(&vxlan[8..]).unwrap();
        assert_inner_tcp(inner, CLIENT_PORT, b"a LOGIN u p\r\n");
        let (_, reply) = outer_udp(&frames[1]);
        assert_inner_tcp(SlicedPacket::from_ethernet(&reply[8..]).unwrap(), 143, b"a OK\r\n");
    }

    #[test]
    fn geneve_announces_its_payload_and_options() {
        let option = GeneveOption { class: 0x0102, option_type: 0x80, data: vec![1, 2, 3, 4, 5, 6, 7, 8] };
        let frames = wrapped(&[Encap::Geneve { ends: ends(), vni: 7, options: vec![option] }]);
        let (port, geneve) = outer_udp(&frames[0]);
        assert_eq!(port, GENEVE_PORT);
        assert_eq!(geneve[0] >> 6, 0, "version");
        assert_eq!(geneve[0] & 0x3f, 3, "options length in 4-byte words");
        assert_eq!(geneve[1], 0, "no O or C flag");
        assert_eq!(u16_at(&geneve, 2), 0x0800, "IPv4 payload");
        assert_eq!(u32_at(&geneve, 4), 7 << 8);
        assert_eq!(u16_at(&geneve, 8), 0x0102, "option class");
        assert_eq!((geneve[10], geneve[11]), (0x80, 2), "option type and length");
        assert_eq!(geneve[12..20], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_inner_tcp(SlicedPacket::from_ip(&geneve[20..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");

        let frames = wrapped(&[Encap::Ethernet, Encap::Geneve { ends: ends(), vni: 7, options: vec![] }]);
        let (_, geneve) = outer_udp(&frames[0]);
        assert_eq!((geneve[0], u16_at(&geneve, 2)), (0, 0x6558), "no options, Ethernet payload");
        assert_inner_tcp(SlicedPacket::from_ethernet(&geneve[8..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
    }

    #[test]
    fn gre_with_checksum_key_and_sequence() {
        let gre = Encap::Gre { ends: ends(), key: Some(0xDEAD_BEEF), sequence: true, checksum: true };
        let frames = wrapped(&[gre]);
        for (number, frame) in frames.iter().enumerate() {
            let (_, _, protocol, gre) = outer_ipv4(frame);
            assert_eq!(protocol, IpNumber::GRE);
            assert_eq!(u16_at(&gre, 0), 0xB000, "C, K and S flags, version 0");
            assert_eq!(u16_at(&gre, 2), 0x0800);
            assert_eq!(Sum16BitWords::new().add_slice(&gre).ones_complement(), 0, "checksum verifies");
            assert_eq!(u16_at(&gre, 6), 0, "reserved");
            assert_eq!(u32_at(&gre, 8), 0xDEAD_BEEF);
            assert_eq!(u32_at(&gre, 12), number as u32);
        }
        let (_, _, _, gre) = outer_ipv4(&frames[0]);
        assert_inner_tcp(SlicedPacket::from_ip(&gre[16..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
    }

    #[test]
    fn gre_over_ipv6_and_transparent_ethernet() {
        let ends_v6 =
            TunnelEnds::new("2001:db8::a".parse::<Ipv6Addr>().unwrap(), "2001:db8::b".parse::<Ipv6Addr>().unwrap());
        let frames = wrapped(&[Encap::Gre { ends: ends_v6, key: None, sequence: false, checksum: false }]);
        let packet = slice(&frames[0]);
        let Some(NetSlice::Ipv6(ip)) = &packet.net else { panic!("outer is not IPv6") };
        assert_eq!(ip.payload().ip_number, IpNumber::GRE);
        let gre = ip.payload().payload;
        assert_eq!((u16_at(gre, 0), u16_at(gre, 2)), (0, 0x0800), "no optional fields");
        assert_inner_tcp(SlicedPacket::from_ip(&gre[4..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");

        let frames =
            wrapped(&[Encap::Ethernet, Encap::Gre { ends: ends(), key: Some(9), sequence: false, checksum: false }]);
        let (_, _, _, gre) = outer_ipv4(&frames[1]);
        assert_eq!((u16_at(&gre, 0), u16_at(&gre, 2), u32_at(&gre, 4)), (0x2000, 0x6558, 9));
        assert_inner_tcp(SlicedPacket::from_ethernet(&gre[8..]).unwrap(), 143, b"a OK\r\n");
    }

    #[test]
    fn erspan_ii_header_fields() {
        let erspan = Encap::ErspanII { ends: ends(), session: 0x3FF, vlan: 0xABC, index: 0xFFFFF };
        let frames = wrapped(&[Encap::Ethernet, erspan]);
        for (number, frame) in frames.iter().enumerate() {
            let (source, _, protocol, gre) = outer_ipv4(frame);
            assert_eq!(source, [192, 0, 2, 1], "mirrored copies always leave the switch");
            assert_eq!(protocol, IpNumber::GRE);
            assert_eq!((u16_at(&gre, 0), u16_at(&gre, 2)), (0x1000, 0x88BE));
            assert_eq!(u32_at(&gre, 4), number as u32);
            let header = &gre[8..16];
            assert_eq!(u16_at(header, 0) >> 12, 1, "version: type II");
            assert_eq!(u16_at(header, 0) & 0xFFF, 0xABC);
            assert_eq!(u16_at(header, 2) & 0x3FF, 0x3FF, "session id");
            assert_eq!(u16_at(header, 2) >> 10, 0, "COS, encapsulation type, truncated");
            assert_eq!(u32_at(header, 4), 0xFFFFF, "index, reserved bits zero");
        }
        let (_, _, _, gre) = outer_ipv4(&frames[1]);
        assert_inner_tcp(SlicedPacket::from_ethernet(&gre[16..]).unwrap(), 143, b"a OK\r\n");
    }

    #[test]
    fn erspan_iii_header_fields() {
        let erspan = Encap::ErspanIII { ends: ends(), session: 5, vlan: 10, hardware_id: 0x3F };
        let frames = wrapped(&[Encap::Ethernet, erspan]);
        let (_, _, _, gre) = outer_ipv4(&frames[0]);
        assert_eq!((u16_at(&gre, 0), u16_at(&gre, 2)), (0x1000, 0x22EB));
        let header = &gre[8..20];
        assert_eq!(u16_at(header, 0), 0x2000 | 10, "version 2 (type III), VLAN");
        assert_eq!(u16_at(header, 2), 5, "session id");
        assert_eq!(u32_at(header, 4), 0, "timestamp");
        assert_eq!(u16_at(header, 8), 0, "security group tag");
        let flags = u16_at(header, 10);
        assert_eq!((flags >> 4) & 0x3F, 0x3F, "hardware id");
        assert_eq!(flags & 0xFC0F, 0, "P, frame type, D, granularity, O all zero");
        assert_inner_tcp(SlicedPacket::from_ethernet(&gre[20..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
    }

    #[test]
    fn pppoe_session_header_announces_ip() {
        let frames = wrapped(&[Encap::Pppoe { session: 0xBEEF }]);
        let data = &frames[0].data;
        assert_eq!(u16_at(data, 12), 0x8864);
        assert_eq!(data[14..16], [0x11, 0x00], "version 1, type 1, session data");
        assert_eq!(u16_at(data, 16), 0xBEEF);
        assert_eq!(usize::from(u16_at(data, 18)), data.len() - 20, "the PPP payload's length");
        assert_eq!(u16_at(data, 20), 0x0021, "PPP protocol: IPv4");
        assert_inner_tcp(SlicedPacket::from_ip(&data[22..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
        let pppoe_in_mpls = wrap_error(&[Encap::Pppoe { session: 1 }, Encap::Mpls { labels: vec![16] }]);
        assert_eq!(pppoe_in_mpls, ScriptError::CannotCarry { layer: "MPLS", kind: PacketKind::Pppoe });
    }

    #[test]
    fn mpls_stack_over_ethernet_and_inside_gre() {
        let frames = wrapped(&[Encap::Mpls { labels: vec![16, 0xFFFFF] }]);
        let data = &frames[0].data;
        assert_eq!(u16_at(data, 12), 0x8847);
        let (first, second) = (u32_at(data, 14), u32_at(data, 18));
        assert_eq!((first >> 12, (first >> 8) & 1, first & 0xFF), (16, 0, 64));
        assert_eq!((second >> 12, (second >> 8) & 1, second & 0xFF), (0xFFFFF, 1, 64), "bottom of stack");
        assert_inner_tcp(SlicedPacket::from_ip(&data[22..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");

        let frames = wrapped(&[
            Encap::Mpls { labels: vec![100] },
            Encap::Gre { ends: ends(), key: None, sequence: false, checksum: false },
        ]);
        let (_, _, _, gre) = outer_ipv4(&frames[0]);
        assert_eq!(u16_at(&gre, 2), 0x8847);
        assert_eq!(u32_at(&gre, 4) >> 12, 100);
        assert_inner_tcp(SlicedPacket::from_ip(&gre[8..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
    }

    #[test]
    fn ip_in_ip_uses_protocols_4_and_41() {
        let frames = wrapped(&[Encap::IpInIp { ends: ends() }]);
        let (source, _, protocol, inner) = outer_ipv4(&frames[0]);
        assert_eq!((source, protocol), ([192, 0, 2, 1], IpNumber::IPV4));
        assert_inner_tcp(SlicedPacket::from_ip(&inner).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");

        let frames = Conversation::new(
            ("2001:db8::1".parse::<Ipv6Addr>().unwrap(), 40000),
            ("2001:db8::2".parse::<Ipv6Addr>().unwrap(), 110),
        )
        .encap(Encap::IpInIp { ends: ends() })
        .client(b"x")
        .frames()
        .unwrap();
        let (_, _, protocol, inner) = outer_ipv4(&frames[0]);
        assert_eq!(protocol, IpNumber::IPV6);
        assert_inner_tcp(SlicedPacket::from_ip(&inner).unwrap(), 40000, b"x");
    }

    /// The payload of each IPv4 fragment with its offset and more-fragments flag.
    fn ipv4_pieces(frames: &[CapturedFrame]) -> Vec<(u16, bool, Vec<u8>)> {
        frames
            .iter()
            .map(|frame| {
                let (header, payload) = etherparse::Ipv4Header::from_slice(&frame.data[14..]).unwrap();
                assert_eq!(header.header_checksum, header.calc_header_checksum());
                let len = header.total_len as usize - header.header_len();
                (header.fragment_offset.byte_offset(), header.more_fragments, payload[..len].to_vec())
            })
            .collect()
    }

    #[test]
    fn fragmentation_splits_ipv4_into_aligned_pieces() {
        let whole = wrapped(&[]);
        let frames = wrapped(&[Encap::Fragment { size: 20 }]);
        // Client: 20 TCP + 13 payload bytes = 33 → 16 + 16 + 1; server: 20 + 6 = 26 → 16 + 10.
        let pieces = ipv4_pieces(&frames);
        let layout: Vec<(u16, bool, usize)> = pieces.iter().map(|(at, more, data)| (*at, *more, data.len())).collect();
        assert_eq!(layout, [(0, true, 16), (16, true, 16), (32, false, 1), (0, true, 16), (16, false, 10)]);
        let client: Vec<u8> = pieces[..3].iter().flat_map(|(_, _, data)| data.clone()).collect();
        assert_eq!(client, whole[0].data[34..]);
        let ids: Vec<u16> = frames
            .iter()
            .map(|f| etherparse::Ipv4Header::from_slice(&f.data[14..]).unwrap().0.identification)
            .collect();
        assert_eq!(ids, [0, 0, 0, 1, 1], "the packet's number");
        assert_eq!(wrapped(&[Encap::Fragment { size: 1500 }]), whole, "short packets are left whole");
    }

    #[test]
    fn fragmentation_inserts_an_ipv6_fragment_header() {
        let mut conversation = Conversation::new(
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], CLIENT_PORT),
            ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], 143),
        );
        conversation.encap(Encap::Fragment { size: 24 });
        let frames = conversation.client(b"a LOGIN u p\r\n").frames().unwrap();
        assert_eq!(frames.len(), 2);
        let mut data = Vec::new();
        for (index, frame) in frames.iter().enumerate() {
            let (header, rest) = Ipv6Header::from_slice(&frame.data[14..]).unwrap();
            assert_eq!(header.next_header, IpNumber::IPV6_FRAGMENTATION_HEADER);
            let (fragment, piece) = Ipv6FragmentHeader::from_slice(rest).unwrap();
            assert_eq!(usize::from(header.payload_length), 8 + piece.len());
            assert_eq!((fragment.next_header, fragment.more_fragments), (IpNumber::TCP, index == 0));
            assert_eq!(usize::from(fragment.fragment_offset.byte_offset()), data.len());
            data.extend_from_slice(piece);
        }
        let tcp = etherparse::TcpSlice::from_slice(&data).unwrap();
        assert_eq!(tcp.payload(), b"a LOGIN u p\r\n");
    }

    #[test]
    fn teredo_carries_ipv6_over_udp_3544_with_optional_indicators() {
        let mut conversation =
            Conversation::new(([0x2001, 0, 0, 0, 0, 0, 0, 1], CLIENT_PORT), ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], 110));
        conversation.encap(Encap::Teredo { ends: ends(), indicators: false });
        let frames = conversation.client(b"USER u\r\n").server(b"+OK\r\n").frames().unwrap();
        let (_, _, protocol, udp) = outer_ipv4(&frames[0]);
        assert_eq!((protocol, u16_at(&udp, 0), u16_at(&udp, 2)), (IpNumber::UDP, 49152, TEREDO_PORT));
        let inner = SlicedPacket::from_ip(&udp[8..]).unwrap();
        assert_inner_tcp(inner, CLIENT_PORT, b"USER u\r\n");
        let (_, _, _, udp) = outer_ipv4(&frames[1]);
        assert_eq!((u16_at(&udp, 0), u16_at(&udp, 2)), (TEREDO_PORT, 49152), "the relay answers from 3544");

        let mut conversation =
            Conversation::new(([0x2001, 0, 0, 0, 0, 0, 0, 1], CLIENT_PORT), ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], 110));
        conversation.encap(Encap::Teredo { ends: ends(), indicators: true });
        let frames = conversation.client(b"USER u\r\n").frames().unwrap();
        let (_, _, _, udp) = outer_ipv4(&frames[0]);
        assert_eq!(&udp[8..12], &[0, 1, 0, 0], "authentication indicator, empty id and value");
        assert_eq!(u16_at(&udp, 21), 0, "origin indicator");
        assert_eq!(!u16_at(&udp, 23), 49152);
        assert_eq!(udp[25..29].iter().map(|byte| !byte).collect::<Vec<_>>(), [192, 0, 2, 1]);
        assert_inner_tcp(SlicedPacket::from_ip(&udp[29..]).unwrap(), CLIENT_PORT, b"USER u\r\n");
        assert_eq!(
            wrap_error(&[Encap::Teredo { ends: ends(), indicators: false }]),
            cannot_carry("Teredo", PacketKind::Ipv4)
        );
    }

    #[test]
    fn bare_udp_carries_the_packet_as_it_is() {
        let frames = wrapped(&[Encap::Udp { ends: ends(), port: TEREDO_PORT }]);
        let (_, _, _, udp) = outer_ipv4(&frames[1]);
        assert_eq!((u16_at(&udp, 0), u16_at(&udp, 2)), (TEREDO_PORT, TEREDO_PORT));
        assert_inner_tcp(SlicedPacket::from_ip(&udp[8..]).unwrap(), 143, b"a OK\r\n");
    }

    #[test]
    fn mismatched_payloads_and_oversized_fields_are_refused() {
        use PacketKind::{Ethernet, Ipv4, Mpls};
        let carry = |layer, kind| ScriptError::CannotCarry { layer, kind };
        let range = |field, value| ScriptError::OutOfRange { field, value };
        let vxlan = |vni| Encap::Vxlan { ends: ends(), vni };
        let erspan2 = |session| Encap::ErspanII { ends: ends(), session, vlan: 0, index: 0 };
        let erspan3 = |hardware_id| Encap::ErspanIII { ends: ends(), session: 0, vlan: 0, hardware_id };
        let mpls = |label| Encap::Mpls { labels: vec![label] };

        assert_eq!(wrap_error(&[vxlan(1)]), carry("VXLAN", Ipv4));
        assert_eq!(wrap_error(&[mpls(1), vxlan(1)]), carry("VXLAN", Mpls));
        assert_eq!(wrap_error(&[erspan2(1)]), carry("ERSPAN", Ipv4));
        assert_eq!(wrap_error(&[Encap::Ethernet]), carry("Ethernet", Ethernet));
        assert_eq!(wrap_error(&[Encap::Ethernet, Encap::Ethernet]), carry("Ethernet", Ethernet));
        assert_eq!(wrap_error(&[Encap::Ethernet, mpls(1)]), carry("MPLS", Ethernet));
        let ip_in_ip = Encap::IpInIp { ends: ends() };
        assert_eq!(wrap_error(&[Encap::Ethernet, ip_in_ip]), carry("IP-in-IP", Ethernet));

        assert_eq!(wrap_error(&[Encap::Ethernet, vxlan(1 << 24)]), range("VXLAN VNI", 1 << 24));
        assert_eq!(wrap_error(&[mpls(1 << 20)]), range("MPLS label", 1 << 20));
        assert_eq!(wrap_error(&[Encap::Ethernet, erspan2(1024)]), range("ERSPAN session", 1024));
        assert_eq!(wrap_error(&[Encap::Ethernet, erspan3(64)]), range("ERSPAN hardware id", 64));
        let odd_option = GeneveOption { class: 0, option_type: 0, data: vec![0; 3] };
        let geneve = Encap::Geneve { ends: ends(), vni: 0, options: vec![odd_option] };
        assert_eq!(wrap_error(&[geneve]), range("GENEVE option length", 3));
        assert_eq!(wrap_error(&[Encap::Fragment { size: 7 }]), range("fragment size", 7));
        assert_eq!(wrap_error(&[Encap::Ethernet, Encap::Fragment { size: 8 }]), carry("IP fragmentation", Ethernet));
    }

    #[test]
    fn gtp_u_g_pdus_carry_each_ends_teid() {
        let gtp =
            |extension| Encap::GtpU { ends: ends(), uplink_teid: 0x0102_0304, downlink_teid: 0x0A0B_0C0D, extension };
        let frames = wrapped(&[gtp(false)]);
        for (frame, teid, src_port) in [(&frames[0], 0x0102_0304, CLIENT_PORT), (&frames[1], 0x0A0B_0C0D, 143)] {
            let (port, header) = outer_udp(frame);
            assert_eq!(port, GTP_U_PORT);
            assert_eq!((header[0], header[1]), (0x30, 0xFF), "version 1, GTP, no optional field; G-PDU");
            assert_eq!(usize::from(u16_at(&header, 2)), header.len() - 8, "length after the mandatory header");
            assert_eq!(u32_at(&header, 4), teid, "the receiving end's TEID");
            assert_eq!(SlicedPacket::from_ip(&header[8..]).map(|p| tcp_of(&p).src_port).unwrap(), src_port);
        }
        let frames = wrapped(&[gtp(true)]);
        let (_, header) = outer_udp(&frames[1]);
        assert_eq!(header[0], 0x36, "E and S flags");
        assert_eq!(usize::from(u16_at(&header, 2)), header.len() - 8);
        assert_eq!((u16_at(&header, 8), header[10], header[11]), (1, 0, 0x85), "sequence, N-PDU, next: PDU session");
        assert_eq!(header[12..16], [1, 0x00, 9, 0], "one unit, downlink PDU type, QFI 9, no more headers");
        assert_inner_tcp(SlicedPacket::from_ip(&header[16..]).unwrap(), 143, b"a OK\r\n");
    }

    #[test]
    fn l2tp_data_messages_with_and_without_optional_fields() {
        let l2tp =
            |all_fields| Encap::L2tp { ends: ends(), client_side_ids: (1, 2), server_side_ids: (3, 4), all_fields };
        let frames = wrapped(&[l2tp(false)]);
        let (port, message) = outer_udp(&frames[0]);
        assert_eq!((port, u16_at(&message, 0)), (L2TP_PORT, 0x0002), "no flag, version 2");
        assert_eq!((u16_at(&message, 2), u16_at(&message, 4)), (3, 4), "the server side's tunnel and session");
        assert_eq!(message[6], 0x21, "PPP without address and control, compressed protocol: IPv4");
        assert_inner_tcp(SlicedPacket::from_ip(&message[7..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
        let (_, reply) = outer_udp(&frames[1]);
        assert_eq!((u16_at(&reply, 2), u16_at(&reply, 4)), (1, 2), "the client side's ids");

        let frames = wrapped(&[l2tp(true)]);
        let (_, message) = outer_udp(&frames[1]);
        assert_eq!(u16_at(&message, 0), 0x4A02, "L, S and O flags, version 2");
        assert_eq!(usize::from(u16_at(&message, 2)), message.len(), "the message's length");
        assert_eq!((u16_at(&message, 4), u16_at(&message, 6)), (1, 2));
        assert_eq!((u16_at(&message, 8), u16_at(&message, 10)), (1, 0), "Ns: the packet's number; Nr");
        assert_eq!((u16_at(&message, 12), &message[14..16]), (2, &[0, 0][..]), "offset size and padding");
        assert_eq!(message[16..20], [0xFF, 0x03, 0x00, 0x21], "address, control, protocol IPv4");
        assert_inner_tcp(SlicedPacket::from_ip(&message[20..]).unwrap(), 143, b"a OK\r\n");
    }

    #[test]
    fn pptp_enhanced_gre_names_the_recipients_call() {
        let frames = wrapped(&[Encap::Pptp { ends: ends(), client_call_id: 0x1111, server_call_id: 0x2222 }]);
        for (number, frame) in frames.iter().enumerate() {
            let (_, _, protocol, gre) = outer_ipv4(frame);
            assert_eq!(protocol, IpNumber::GRE);
            let acknowledges = number == 1;
            let flags = if acknowledges { 0x3081 } else { 0x3001 };
            assert_eq!((u16_at(&gre, 0), u16_at(&gre, 2)), (flags, 0x880B), "K, S (and A), version 1; PPP");
            let call_id = if acknowledges { 0x1111 } else { 0x2222 };
            let header_len = if acknowledges { 16 } else { 12 };
            assert_eq!(usize::from(u16_at(&gre, 4)), gre.len() - header_len, "payload length");
            assert_eq!((u16_at(&gre, 6), u32_at(&gre, 8)), (call_id, number as u32), "call id, sequence number");
            if acknowledges {
                assert_eq!(u32_at(&gre, 12), 0, "acknowledges the client's packet");
            }
            assert_eq!(gre[header_len..header_len + 4], [0xFF, 0x03, 0x00, 0x21]);
            assert!(SlicedPacket::from_ip(&gre[header_len + 4..]).is_ok());
        }
    }

    #[test]
    fn tzsp_streams_mirrored_frames_one_way() {
        for tags in [false, true] {
            let frames = wrapped(&[Encap::Ethernet, Encap::Tzsp { ends: ends(), tags }]);
            let expected_tags: &[u8] = if tags { &[0, 41, 2] } else { &[] };
            for frame in &frames {
                let (source, _, _, _) = outer_ipv4(frame);
                assert_eq!(source, [192, 0, 2, 1], "always from the sensor");
                let (port, payload) = outer_udp(frame);
                assert_eq!((port, &payload[..4]), (TZSP_PORT, &[1, 0, 0, 1][..]), "version 1, received, Ethernet");
                assert_eq!(&payload[4..4 + expected_tags.len()], expected_tags);
                let end = 4 + if tags { 5 } else { 0 };
                if tags {
                    assert_eq!(usize::from(u16_at(&payload, 7)), payload.len() - end - 1, "the frame's length");
                }
                assert_eq!(payload[end], 1, "END tag");
                assert!(SlicedPacket::from_ethernet(&payload[end + 1..]).is_ok());
            }
        }
    }

    #[test]
    fn vxlan_gpe_names_its_next_protocol() {
        let gpe = || Encap::VxlanGpe { ends: ends(), vni: 0x00AB_CDEF };
        for (steps, next_protocol) in
            [(vec![gpe()], 1), (vec![Encap::Ethernet, gpe()], 3), (vec![Encap::Mpls { labels: vec![16] }, gpe()], 5)]
        {
            let (port, header) = outer_udp(&wrapped(&steps)[0]);
            assert_eq!(port, VXLAN_GPE_PORT);
            assert_eq!(header[..4], [0x0C, 0, 0, next_protocol], "I and P flags, version 0");
            assert_eq!(u32_at(&header, 4), 0xABCD_EF00);
        }
        let mut over_ipv6 =
            Conversation::new(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 1), ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], 2));
        let frames = over_ipv6.encap(gpe()).client(b"x").frames().unwrap();
        assert_eq!(outer_udp(&frames[0]).1[3], 2, "IPv6");
    }

    #[test]
    fn mpls_in_udp_carries_the_label_stack_to_6635() {
        let frames = wrapped(&[Encap::Mpls { labels: vec![16] }, Encap::MplsInUdp { ends: ends() }]);
        let (port, stack) = outer_udp(&frames[0]);
        assert_eq!((port, u32_at(&stack, 0)), (MPLS_IN_UDP_PORT, 16 << 12 | 1 << 8 | 64));
        assert_inner_tcp(SlicedPacket::from_ip(&stack[4..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
    }

    #[test]
    fn port_extender_and_backbone_service_tags() {
        let frames = wrapped(&[Encap::VnTag { vif: 0x123 }]);
        let (up, down) = (&frames[0].data, &frames[1].data);
        assert_eq!((u16_at(up, 12), u32_at(up, 14), u16_at(up, 18)), (0x8926, 0x123, 0x0800), "source vif");
        assert_eq!(u32_at(down, 14), 0x8123_0000, "direction bit, destination vif");

        let frames = wrapped(&[Encap::ETag { ecid: 0xABC }]);
        let (up, down) = (&frames[0].data, &frames[1].data);
        assert_eq!((u16_at(up, 12), &up[14..20], u16_at(up, 20)), (0x893F, &[0x0A, 0xBC, 0, 0, 0, 0][..], 0x0800));
        assert_eq!(down[14..20], [0, 0, 0x0A, 0xBC, 0, 0], "E-CID");

        let frames = wrapped(&[Encap::CiscoMetadata { client_sgt: 42, server_sgt: 7 }]);
        let (up, down) = (&frames[0].data, &frames[1].data);
        assert_eq!((u16_at(up, 12), &up[14..20], u16_at(up, 20)), (0x8909, &[1, 1, 0, 1, 0, 42][..], 0x0800));
        assert_eq!(u16_at(down, 18), 7, "the server's SGT");

        let frames = wrapped(&[Encap::Ethernet, Encap::Pbb { isid: 0x00AB_CDEF }]);
        let data = &frames[0].data;
        assert_eq!((u16_at(data, 12), u32_at(data, 14)), (0x88E7, 0x00AB_CDEF), "I-TAG: the I-SID");
        assert_inner_tcp(SlicedPacket::from_ethernet(&data[18..]).unwrap(), CLIENT_PORT, b"a LOGIN u p\r\n");
    }

    #[test]
    fn newer_encapsulations_refuse_what_they_cannot_carry() {
        use PacketKind::{Ethernet, Ipv4, Mpls, Pppoe};
        let carry = |layer, kind| ScriptError::CannotCarry { layer, kind };
        let gtp = Encap::GtpU { ends: ends(), uplink_teid: 1, downlink_teid: 2, extension: false };
        assert_eq!(wrap_error(&[Encap::Ethernet, gtp]), carry("GTP-U", Ethernet));
        let l2tp = Encap::L2tp { ends: ends(), client_side_ids: (1, 1), server_side_ids: (2, 2), all_fields: false };
        assert_eq!(wrap_error(&[Encap::Mpls { labels: vec![1] }, l2tp]), carry("L2TP", Mpls));
        let pptp = Encap::Pptp { ends: ends(), client_call_id: 1, server_call_id: 2 };
        assert_eq!(wrap_error(&[Encap::Ethernet, pptp]), carry("PPTP", Ethernet));
        assert_eq!(wrap_error(&[Encap::Tzsp { ends: ends(), tags: false }]), carry("TZSP", Ipv4));
        let gpe = Encap::VxlanGpe { ends: ends(), vni: 1 };
        assert_eq!(wrap_error(&[Encap::Pppoe { session: 1 }, gpe]), carry("VXLAN-GPE", Pppoe));
        assert_eq!(wrap_error(&[Encap::MplsInUdp { ends: ends() }]), carry("MPLS in UDP", Ipv4));
        assert_eq!(wrap_error(&[Encap::Ethernet, Encap::VnTag { vif: 1 }]), carry("VN-Tag", Ethernet));
        assert_eq!(wrap_error(&[Encap::Ethernet, Encap::ETag { ecid: 1 }]), carry("E-tag", Ethernet));
        assert_eq!(wrap_error(&[Encap::Pbb { isid: 1 }]), carry("802.1ah", Ipv4));
        let range = |field, value| ScriptError::OutOfRange { field, value };
        assert_eq!(wrap_error(&[Encap::VnTag { vif: 1 << 12 }]), range("VN-Tag vif", 1 << 12));
        assert_eq!(wrap_error(&[Encap::ETag { ecid: 1 << 12 }]), range("E-tag E-CID", 1 << 12));
        assert_eq!(wrap_error(&[Encap::Ethernet, Encap::Pbb { isid: 1 << 24 }]), range("802.1ah I-SID", 1 << 24));
        let gpe = Encap::VxlanGpe { ends: ends(), vni: 1 << 24 };
        assert_eq!(wrap_error(&[gpe]), range("VXLAN-GPE VNI", 1 << 24));
    }
}
