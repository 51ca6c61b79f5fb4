//! Link-layer headers in front of a scripted packet: Ethernet (with a VLAN stack), Linux cooked
//! capture v1 and v2, raw IP, the BSD loopback headers, PPP (RFC 1661, RFC 1662 §3.1, PPPoE as
//! RFC 2516 §4), Cisco HDLC (RFC 1547 §4.3.1), 802.11 (bare or with radiotap), and the headers
//! of [`super::capture_headers`].
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use etherparse::{
    ArpHardwareId, EtherType, Ethernet2Header, LinuxSllHeader, LinuxSllPacketType, LinuxSllProtocolType,
    SingleVlanHeader, VlanId, VlanPcp,
};

use super::capture_headers::{
    push_enc, push_erf, push_ipnet, push_netanalyzer, push_nflog, push_pflog, push_pktap, ErfRecord,
};
use super::conversation::{ScriptError, Side};
use super::tunnel::{ppp_frame, pppoe_session, Packet, PacketKind};
use crate::capture::{LinkType, Timestamp};

/// The link layer a conversation is captured on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Link {
    /// Ethernet II, with the conversation's VLAN tags if any.
    #[default]
    Ethernet,
    /// Linux "any" device, cooked header v1 (16 bytes).
    LinuxSll,
    /// Linux cooked header v2 (20 bytes, with the interface index).
    LinuxSll2,
    /// No link header: the IP packet itself.
    RawIp,
    /// BSD loopback: a 4-byte address family, little-endian (as captured on x86 macOS, whose
    /// AF_INET6 is 30).
    Null,
    /// OpenBSD loopback: a 4-byte address family, big-endian (OpenBSD's AF_INET6 is 24).
    Loop,
    /// 802.11 data frames of an open network, as a station's traffic through its access point
    /// (the server's MAC standing for the access point's): the client's frames QoS data to the
    /// distribution system, the server's plain data from it, each with an LLC/SNAP header.
    Wifi,
    /// [`Link::Wifi`] frames behind a radiotap header whose flags say a frame check sequence
    /// (the real CRC-32) ends each frame, as monitor mode captures them.
    Radiotap,
    /// [`Link::Wifi`] frames behind a PPI header with an 802.11-Common field saying a frame
    /// check sequence ends each frame, as AirPcap and Kismet capture them.
    Ppi,
    /// PPP on a serial or dial-up link (LINKTYPE_PPP), each end having negotiated compression
    /// for what it receives: the client's frames in full (address, control, two-byte protocol),
    /// the server's without address and control and with a one-byte protocol (RFC 1661 §6.5,
    /// §6.6).
    Ppp,
    /// PPP in HDLC-like framing (LINKTYPE_PPP_HDLC): address, control, two-byte protocol.
    PppHdlc,
    /// PPPoE session frames without their Ethernet header (LINKTYPE_PPP_ETHER), as NetBSD's
    /// pppoe(4) interface captures them.
    PppEther,
    /// Cisco HDLC (LINKTYPE_C_HDLC): unicast address, control, then the EtherType.
    CiscoHdlc,
    /// Packets an iptables NFLOG rule on the client host logs (LINKTYPE_NFLOG), from a
    /// little-endian host: the server's coming in, the client's going out.
    Nflog,
    /// Ethernet frames behind the PKTAP header of macOS's `pktap` interface, on the client host
    /// (LINKTYPE_PKTAP).
    Pktap,
    /// Packets pf passed and logged on the client host, a NetBSD one (LINKTYPE_PFLOG).
    Pflog,
    /// IPsec traffic in clear on the client host's enc interface, an OpenBSD one (LINKTYPE_ENC).
    Enc,
    /// The client host's IP traffic seen through Solaris's /dev/ipnet (LINKTYPE_IPNET).
    Ipnet,
    /// Ethernet frames, padded to the minimum frame size and ended by their frame check
    /// sequence, as a netANALYZER tap captures each direction on a port of its own
    /// (LINKTYPE_NETANALYZER).
    NetAnalyzer,
    /// [`Link::NetAnalyzer`] frames in transparent mode, from their preamble on
    /// (LINKTYPE_NETANALYZER_TRANSPARENT).
    NetAnalyzerTransparent,
    /// ERF Ethernet records of an Endace DAG card tapping the link, each direction on a port of
    /// its own, with the frame check sequence; the client's records carry two extension headers
    /// (LINKTYPE_ERF).
    Erf,
    /// ERF IPv4 and IPv6 records (a card capturing packets without their link layer).
    ErfIp,
}

/// 802.1Q tag protocol id, used for a single tag and for the inner tags of a stack.
const TPID_8021Q: u16 = 0x8100;
/// 802.1ad (QinQ) tag protocol id, used for the outer tag of a stack.
const TPID_8021AD: u16 = 0x88A8;
pub(super) const AF_INET: u32 = 2;
pub(super) const AF_INET6_DARWIN: u32 = 30;
const AF_INET6_OPENBSD: u32 = 24;
/// Interface index written in SLL2 headers.
const SLL2_INTERFACE_INDEX: u32 = 2;
/// A radiotap header as Linux's mac80211 writes one in monitor mode: version 0, length 33, two
/// presence bitmaps (the first: TSF timer, flags, rate, channel, signal, and another radiotap
/// bitmap follows; the second: a chain's signal and antenna), padding to align the TSF timer on 8
/// bytes, then the fields; the flags say a frame check sequence ends the frame.
const RADIOTAP_HEADER: [u8; 33] = [
    0, 0, 33, 0, // version, padding, length
    0x2f, 0, 0, 0xa0, // TSFT, flags, rate, channel, dBm signal; radiotap bitmap next; extended
    0x20, 0x08, 0, 0, // dBm signal, antenna
    0, 0, 0, 0, // padding to the TSF timer's alignment
    0x40, 0x42, 0x0f, 0, 0, 0, 0, 0,    // TSF timer (µs)
    0x10, // flags: FCS at the end
    0x0c, // rate: 6 Mb/s
    0x85, 0x09, 0xc0, 0x00, // channel: 2437 MHz, 2 GHz OFDM
    0xd8, // signal: -40 dBm
    0xd7, 0x00, // chain 0: -41 dBm, antenna 0
];
/// 802.11 frame control: QoS data and data (type 2, subtypes 8 and 0).
const WIFI_QOS_DATA: u8 = 0x88;
const WIFI_DATA: u8 = 0x08;
const WIFI_TO_DS: u8 = 0x01;
const WIFI_FROM_DS: u8 = 0x02;
/// A PPI header: version 0, no flags, length 32, link type 105 (802.11), then one 802.11-Common
/// field (type 2, 20 bytes): TSF timer, flags (a frame check sequence ends the frame), rate,
/// channel 2437 MHz (2 GHz OFDM), no hopping, signal -40 dBm, noise -95 dBm.
const PPI_HEADER: [u8; 32] = [
    0, 0, 32, 0, 105, 0, 0, 0, // version, flags, length, link type
    2, 0, 20, 0, // 802.11-Common, its length
    0x40, 0x42, 0x0f, 0, 0, 0, 0, 0, // TSF timer
    0x01, 0x00, // flags: FCS present
    0x0c, 0x00, // rate: 6 Mb/s (in 500 kb/s)
    0x85, 0x09, 0xc0, 0x00, // channel
    0, 0, // hopping set and pattern
    0xd8, 0xa1, // signal, noise
];
/// The PPPoE session id of [`Link::PppEther`] frames.
const PPPOE_SESSION_ID: u16 = 0x0101;
/// Cisco HDLC's unicast address and its control byte.
const CISCO_HDLC_UNICAST: [u8; 2] = [0x0F, 0x00];
/// The shortest Ethernet frame, its frame check sequence included, and that sequence's length.
const ETHERNET_MIN_FRAME: usize = 64;
const ETHERNET_FCS_LEN: usize = 4;
/// QoS control, first byte: the body is an aggregate (A-MSDU), whose subframes are aligned on 4.
const QOS_AMSDU: u8 = 0x80;
const AMSDU_ALIGN: usize = 4;
/// RFC 1042 LLC/SNAP header, before the ethertype.
const LLC_SNAP: [u8; 6] = [0xaa, 0xaa, 0x03, 0, 0, 0];

impl Link {
    /// Serial framings (PPP, Cisco HDLC) and the headers capturing systems put before a packet
    /// (NFLOG, PKTAP, pflog, enc, ipnet, netANALYZER, ERF).
    pub const SERIAL_AND_CAPTURE_HEADERS: [Link; 13] = [
        Link::Ppp,
        Link::PppHdlc,
        Link::PppEther,
        Link::CiscoHdlc,
        Link::Nflog,
        Link::Pktap,
        Link::Pflog,
        Link::Enc,
        Link::Ipnet,
        Link::NetAnalyzer,
        Link::NetAnalyzerTransparent,
        Link::Erf,
        Link::ErfIp,
    ];

    /// Every link the writer frames.
    pub fn all() -> impl Iterator<Item = Link> {
        let before = [
            Link::Ethernet,
            Link::LinuxSll,
            Link::LinuxSll2,
            Link::RawIp,
            Link::Null,
            Link::Loop,
            Link::Wifi,
            Link::Radiotap,
            Link::Ppi,
        ];
        before.into_iter().chain(Link::SERIAL_AND_CAPTURE_HEADERS)
    }

    pub fn link_type(self) -> LinkType {
        match self {
            Link::Ethernet => LinkType::ETHERNET,
            Link::LinuxSll => LinkType::LINUX_SLL,
            Link::LinuxSll2 => LinkType::LINUX_SLL2,
            Link::RawIp => LinkType::RAW,
            Link::Null => LinkType::NULL,
            Link::Loop => LinkType::LOOP,
            Link::Wifi => LinkType::IEEE802_11,
            Link::Radiotap => LinkType::IEEE802_11_RADIOTAP,
            Link::Ppi => LinkType::PPI,
            Link::Ppp => LinkType::PPP,
            Link::PppHdlc => LinkType::PPP_HDLC,
            Link::PppEther => LinkType::PPP_ETHER,
            Link::CiscoHdlc => LinkType::C_HDLC,
            Link::Nflog => LinkType::NFLOG,
            Link::Pktap => LinkType::PKTAP,
            Link::Pflog => LinkType::PFLOG,
            Link::Enc => LinkType::ENC,
            Link::Ipnet => LinkType::IPNET,
            Link::NetAnalyzer => LinkType::NETANALYZER,
            Link::NetAnalyzerTransparent => LinkType::NETANALYZER_TRANSPARENT,
            Link::Erf | Link::ErfIp => LinkType::ERF,
        }
    }

    /// Puts this link's header in front of `packet`, sent by `from` (which picks the source MAC
    /// and, for cooked captures, the packet type as seen on the client host) and captured at `ts`
    /// (which headers with a time stamp of their own repeat).
    pub(super) fn frame(
        self,
        packet: &Packet,
        from: Side,
        ts: Timestamp,
        macs: Macs,
        vlans: &[u16],
    ) -> Result<Vec<u8>, ScriptError> {
        if !vlans.is_empty() && self != Link::Ethernet {
            return Err(ScriptError::VlanNeedsEthernet);
        }
        let (source, destination) = macs.oriented(from);
        let mut frame = Vec::with_capacity(packet.bytes.len().saturating_add(48));
        // Where the frame that a frame check sequence covers starts, when one ends it.
        let mut checked_from = None;
        match self {
            Link::Ethernet => {
                let ether_type = ether_type(packet.kind, "Ethernet")?;
                push_ethernet(&mut frame, source, destination, vlans, ether_type)?;
            }
            Link::LinuxSll => {
                let ether_type = ether_type(packet.kind, "Linux SLL")?;
                let header = LinuxSllHeader {
                    packet_type: sll_packet_type(from),
                    arp_hrd_type: ArpHardwareId::ETHERNET,
                    sender_address_valid_length: 6,
                    sender_address: padded_mac(source),
                    protocol_type: LinuxSllProtocolType::EtherType(EtherType(ether_type)),
                };
                frame.extend_from_slice(&header.to_bytes());
            }
            Link::LinuxSll2 => {
                let ether_type = ether_type(packet.kind, "Linux SLL2")?;
                frame.extend_from_slice(&ether_type.to_be_bytes());
                frame.extend_from_slice(&[0, 0]);
                frame.extend_from_slice(&SLL2_INTERFACE_INDEX.to_be_bytes());
                frame.extend_from_slice(&ArpHardwareId::ETHERNET.0.to_be_bytes());
                let [_, packet_type] = u16::from(sll_packet_type(from)).to_be_bytes();
                frame.push(packet_type);
                frame.push(6);
                frame.extend_from_slice(&padded_mac(source));
            }
            Link::RawIp => {
                ip_only(packet.kind, "raw IP")?;
            }
            Link::Null => {
                let family = if ip_only(packet.kind, "BSD NULL")? { AF_INET6_DARWIN } else { AF_INET };
                frame.extend_from_slice(&family.to_le_bytes());
            }
            Link::Loop => {
                let family = if ip_only(packet.kind, "OpenBSD LOOP")? { AF_INET6_OPENBSD } else { AF_INET };
                frame.extend_from_slice(&family.to_be_bytes());
            }
            Link::Wifi | Link::Radiotap | Link::Ppi => {
                let ether_type = ether_type(packet.kind, "802.11")?;
                checked_from = self.push_monitor_header(&mut frame);
                push_wifi_header(&mut frame, from, macs, false);
                push_llc_snap(&mut frame, ether_type);
            }
            Link::Ppp => return ppp_frame(packet, "PPP", from == Side::Server),
            Link::PppHdlc => return ppp_frame(packet, "PPP in HDLC-like framing", false),
            Link::PppEther => return pppoe_session(PPPOE_SESSION_ID, packet),
            Link::CiscoHdlc => {
                let ether_type = ether_type(packet.kind, "Cisco HDLC")?;
                frame.extend_from_slice(&CISCO_HDLC_UNICAST);
                frame.extend_from_slice(&ether_type.to_be_bytes());
            }
            Link::Nflog => {
                push_nflog(&mut frame, &packet.bytes, ip_only(packet.kind, "NFLOG")?, from)?;
                return Ok(frame);
            }
            Link::Pktap => {
                push_pktap(&mut frame, ip_only(packet.kind, "PKTAP")?, from);
                push_ethernet(&mut frame, source, destination, &[], ether_type(packet.kind, "PKTAP")?)?;
            }
            Link::Pflog => push_pflog(&mut frame, ip_only(packet.kind, "pflog")?, from),
            Link::Enc => push_enc(&mut frame, ip_only(packet.kind, "enc")?, from),
            Link::Ipnet => push_ipnet(&mut frame, packet.bytes.len(), ip_only(packet.kind, "ipnet")?, from)?,
            Link::NetAnalyzer | Link::NetAnalyzerTransparent => {
                let ethernet = ethernet_with_fcs(packet, source, destination, "netANALYZER")?;
                push_netanalyzer(&mut frame, &ethernet, self == Link::NetAnalyzerTransparent, from)?;
                return Ok(frame);
            }
            Link::Erf => {
                let ethernet = ethernet_with_fcs(packet, source, destination, "ERF")?;
                push_erf(&mut frame, ErfRecord::Ethernet, &ethernet, ts, from)?;
                return Ok(frame);
            }
            Link::ErfIp => {
                let record = if ip_only(packet.kind, "ERF")? { ErfRecord::Ipv6 } else { ErfRecord::Ipv4 };
                push_erf(&mut frame, record, &packet.bytes, ts, from)?;
                return Ok(frame);
            }
        }
        frame.extend_from_slice(&packet.bytes);
        Ok(with_fcs(frame, checked_from))
    }

    /// One 802.11 frame carrying all of `packets`, sent by `from`: an aggregate (A-MSDU), QoS
    /// data whose body holds one subframe per packet, as stations and access points send bursts
    /// of small packets. Only the Wi-Fi links carry aggregates.
    pub(super) fn aggregate_frame(
        self,
        packets: &[Packet],
        from: Side,
        macs: Macs,
        vlans: &[u16],
    ) -> Result<Vec<u8>, ScriptError> {
        if !matches!(self, Link::Wifi | Link::Radiotap | Link::Ppi) {
            return Err(ScriptError::AggregateNeedsWifi);
        }
        if !vlans.is_empty() {
            return Err(ScriptError::VlanNeedsEthernet);
        }
        let mut frame = Vec::new();
        let checked_from = self.push_monitor_header(&mut frame);
        push_wifi_header(&mut frame, from, macs, true);
        let body_start = frame.len();
        let (source, destination) = macs.oriented(from);
        for (number, packet) in packets.iter().enumerate() {
            let ether_type = ether_type(packet.kind, "802.11")?;
            if number > 0 {
                // Every subframe but the last is padded to a multiple of 4 bytes.
                let padded = (frame.len() - body_start).next_multiple_of(AMSDU_ALIGN);
                frame.resize(body_start + padded, 0);
            }
            let length = LLC_SNAP.len() + 2 + packet.bytes.len();
            let length = u16::try_from(length)
                .map_err(|_| ScriptError::OutOfRange { field: "A-MSDU subframe length", value: length as u64 })?;
            frame.extend_from_slice(&destination);
            frame.extend_from_slice(&source);
            frame.extend_from_slice(&length.to_be_bytes());
            push_llc_snap(&mut frame, ether_type);
            frame.extend_from_slice(&packet.bytes);
        }
        Ok(with_fcs(frame, checked_from))
    }
}

impl Link {
    /// Appends the monitoring header of the Wi-Fi links that have one; returns where the 802.11
    /// frame, which a frame check sequence then ends, starts.
    fn push_monitor_header(self, frame: &mut Vec<u8>) -> Option<usize> {
        match self {
            Link::Radiotap => frame.extend_from_slice(&RADIOTAP_HEADER),
            Link::Ppi => frame.extend_from_slice(&PPI_HEADER),
            _ => return None,
        }
        Some(frame.len())
    }
}

/// The frame with, when `checked_from` says where the 802.11 frame starts, the CRC-32 of the
/// frame from there on appended: its frame check sequence.
fn with_fcs(mut frame: Vec<u8>, checked_from: Option<usize>) -> Vec<u8> {
    if let Some(start) = checked_from {
        let mut crc = flate2::Crc::new();
        crc.update(frame.get(start..).unwrap_or_default());
        frame.extend_from_slice(&crc.sum().to_le_bytes());
    }
    frame
}

/// An Ethernet frame as it was on the wire: `packet` behind an Ethernet header, padded to the
/// minimum frame size (64 bytes with the frame check sequence), then its frame check sequence.
fn ethernet_with_fcs(
    packet: &Packet,
    source: [u8; 6],
    destination: [u8; 6],
    link: &'static str,
) -> Result<Vec<u8>, ScriptError> {
    let mut ethernet = Vec::with_capacity(packet.bytes.len().saturating_add(18).max(ETHERNET_MIN_FRAME));
    push_ethernet(&mut ethernet, source, destination, &[], ether_type(packet.kind, link)?)?;
    ethernet.extend_from_slice(&packet.bytes);
    ethernet.resize(ethernet.len().max(ETHERNET_MIN_FRAME - ETHERNET_FCS_LEN), 0);
    Ok(with_fcs(ethernet, Some(0)))
}

/// Appends an RFC 1042 LLC/SNAP header announcing `ether_type`.
fn push_llc_snap(frame: &mut Vec<u8>, ether_type: u16) {
    frame.extend_from_slice(&LLC_SNAP);
    frame.extend_from_slice(&ether_type.to_be_bytes());
}

/// Appends an 802.11 data frame's header (see [`Link::Wifi`]); an aggregate's is QoS data with
/// the A-MSDU bit, whichever side sends it.
fn push_wifi_header(frame: &mut Vec<u8>, from: Side, macs: Macs, aggregate: bool) {
    let access_point = macs.server;
    let (source, destination) = macs.oriented(from);
    let qos = from == Side::Client || aggregate;
    let (direction, addresses) = match from {
        // To the distribution system: receiver (the access point), transmitter, destination.
        Side::Client => (WIFI_TO_DS, [access_point, source, destination]),
        // From it: receiver, transmitter (the access point), source.
        Side::Server => (WIFI_FROM_DS, [destination, access_point, source]),
    };
    frame.extend_from_slice(&[if qos { WIFI_QOS_DATA } else { WIFI_DATA }, direction, 0, 0]);
    for address in addresses {
        frame.extend_from_slice(&address);
    }
    // Sequence control, then the QoS control (its first byte's top bit: A-MSDU).
    frame.extend_from_slice(&[0, 0]);
    if qos {
        frame.extend_from_slice(&[if aggregate { QOS_AMSDU } else { 0 }, 0]);
    }
}

/// The MAC addresses of the two ends of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Macs {
    pub client: [u8; 6],
    pub server: [u8; 6],
}

impl Macs {
    /// (source, destination) of a frame sent by `from`.
    pub fn oriented(self, from: Side) -> ([u8; 6], [u8; 6]) {
        match from {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        }
    }
}

/// Appends an Ethernet II header and the VLAN tags (outermost first) announcing `ether_type`.
/// A stack of two or more tags starts with an 802.1ad tag, as QinQ switches send it.
pub(super) fn push_ethernet(
    frame: &mut Vec<u8>,
    source: [u8; 6],
    destination: [u8; 6],
    vlans: &[u16],
    ether_type: u16,
) -> Result<(), ScriptError> {
    let first_type = match vlans.len() {
        0 => ether_type,
        1 => TPID_8021Q,
        _ => TPID_8021AD,
    };
    frame.extend_from_slice(&Ethernet2Header { source, destination, ether_type: EtherType(first_type) }.to_bytes());
    let mut rest = vlans.iter().peekable();
    while let Some(&id) = rest.next() {
        let vlan_id =
            VlanId::try_new(id).map_err(|_| ScriptError::OutOfRange { field: "VLAN id", value: id.into() })?;
        let next_type = if rest.peek().is_some() { TPID_8021Q } else { ether_type };
        let tag = SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id,
            ether_type: EtherType(next_type),
        };
        frame.extend_from_slice(&tag.to_bytes());
    }
    Ok(())
}

/// The EtherType a link layer announces `kind` with; a frame is no link layer's payload.
fn ether_type(kind: PacketKind, link: &'static str) -> Result<u16, ScriptError> {
    match kind {
        PacketKind::Ethernet => Err(ScriptError::CannotCarry { layer: link, kind }),
        kind => Ok(kind.ether_type()),
    }
}

/// Whether the packet is IPv6; an error if it is not IP at all.
fn ip_only(kind: PacketKind, link: &'static str) -> Result<bool, ScriptError> {
    match kind {
        PacketKind::Ipv4 => Ok(false),
        PacketKind::Ipv6 => Ok(true),
        PacketKind::Ethernet
        | PacketKind::Mpls
        | PacketKind::Pppoe
        | PacketKind::VnTagged
        | PacketKind::ETagged
        | PacketKind::CiscoMetadataTagged
        | PacketKind::BackboneService => Err(ScriptError::CannotCarry { layer: link, kind }),
    }
}

/// Cooked captures are taken on the client host: its frames go out, the server's come in.
fn sll_packet_type(from: Side) -> LinuxSllPacketType {
    match from {
        Side::Client => LinuxSllPacketType::OUTGOING,
        Side::Server => LinuxSllPacketType::HOST,
    }
}

fn padded_mac(mac: [u8; 6]) -> [u8; 8] {
    let [a, b, c, d, e, f] = mac;
    [a, b, c, d, e, f, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapwriter::test_support::{slice, tcp_of};
    use crate::pcapwriter::{CapturedFrame, Conversation};
    use etherparse::{LinkSlice, NetSlice};

    const CLIENT_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 1];
    const SERVER_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 2];

    /// A client line and a server line, on `link`, over IPv4 or IPv6.
    fn exchange(link: Link, ipv6: bool, vlans: &[u16]) -> Vec<CapturedFrame> {
        let (client, server): (std::net::SocketAddr, std::net::SocketAddr) = if ipv6 {
            ("[2001:db8::1]:40000".parse().unwrap(), "[2001:db8::2]:110".parse().unwrap())
        } else {
            (([10, 0, 0, 1], 40000).into(), ([10, 0, 0, 2], 110).into())
        };
        Conversation::new(client, server)
            .link(link)
            .vlans(vlans)
            .macs(CLIENT_MAC, SERVER_MAC)
            .client(b"CAPA\r\n")
            .server(b"+OK\r\n")
            .frames()
            .unwrap()
    }

    fn assert_tcp_payloads(frames: &[CapturedFrame]) {
        assert_eq!(tcp_of(&slice(&frames[0])).payload, b"CAPA\r\n");
        assert_eq!(tcp_of(&slice(&frames[1])).payload, b"+OK\r\n");
    }

    #[test]
    fn ethernet_orients_macs_and_announces_ip_version() {
        for (ipv6, ether_type) in [(false, 0x0800), (true, 0x86DD)] {
            let frames = exchange(Link::Ethernet, ipv6, &[]);
            assert!(frames.iter().all(|frame| frame.link_type == LinkType::ETHERNET));
            let packet = slice(&frames[0]);
            let Some(LinkSlice::Ethernet2(ethernet)) = &packet.link else { panic!("no Ethernet") };
            assert_eq!((ethernet.source(), ethernet.destination()), (CLIENT_MAC, SERVER_MAC));
            assert_eq!(ethernet.ether_type(), EtherType(ether_type));
            let reply = slice(&frames[1]);
            let Some(LinkSlice::Ethernet2(ethernet)) = &reply.link else { panic!("no Ethernet") };
            assert_eq!((ethernet.source(), ethernet.destination()), (SERVER_MAC, CLIENT_MAC));
            assert_tcp_payloads(&frames);
        }
    }

    #[test]
    fn vlan_stacks_use_8021q_and_8021ad() {
        let single = exchange(Link::Ethernet, false, &[42]);
        assert_eq!(single[0].data[12..16], [0x81, 0x00, 0x00, 42]);
        assert_eq!(single[0].data[16..18], [0x08, 0x00]);

        let qinq = exchange(Link::Ethernet, true, &[100, 0xfff]);
        assert_eq!(qinq[0].data[12..14], [0x88, 0xA8]);
        assert_eq!(qinq[0].data[16..18], [0x81, 0x00]);
        assert_eq!(qinq[0].data[20..22], [0x86, 0xDD]);

        let triple = exchange(Link::Ethernet, false, &[1, 2, 3]);
        let packet = slice(&triple[1]);
        let ids: Vec<u16> = packet.vlan_ids().iter().map(|id| id.value()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_tcp_payloads(&triple);
    }

    #[test]
    fn linux_sll_marks_outgoing_and_incoming() {
        let frames = exchange(Link::LinuxSll, false, &[]);
        assert_eq!(frames[0].link_type, LinkType::LINUX_SLL);
        for (frame, packet_type, mac) in
            [(&frames[0], LinuxSllPacketType::OUTGOING, CLIENT_MAC), (&frames[1], LinuxSllPacketType::HOST, SERVER_MAC)]
        {
            let packet = slice(frame);
            let Some(LinkSlice::LinuxSll(sll)) = &packet.link else { panic!("no SLL") };
            assert_eq!(sll.packet_type(), packet_type);
            assert_eq!(sll.arp_hardware_type(), ArpHardwareId::ETHERNET);
            assert_eq!(sll.sender_address(), mac);
            assert_eq!(sll.protocol_type(), LinuxSllProtocolType::EtherType(EtherType::IPV4));
        }
        assert_tcp_payloads(&frames);
    }

    #[test]
    fn linux_sll2_fields_sit_at_their_offsets() {
        let frames = exchange(Link::LinuxSll2, true, &[]);
        assert_eq!(frames[0].link_type, LinkType::LINUX_SLL2);
        let header = &frames[0].data[..20];
        assert_eq!(header[0..2], [0x86, 0xDD], "protocol");
        assert_eq!(header[2..4], [0, 0], "reserved");
        assert_eq!(header[4..8], SLL2_INTERFACE_INDEX.to_be_bytes(), "interface index");
        assert_eq!(header[8..10], [0, 1], "ARPHRD_ETHER");
        assert_eq!(header[10], 4, "outgoing");
        assert_eq!(header[11], 6, "address length");
        assert_eq!(header[12..20], padded_mac(CLIENT_MAC));
        assert_eq!(frames[1].data[10], 0, "incoming to this host");
        assert_tcp_payloads(&frames);
    }

    #[test]
    fn raw_ip_has_no_link_header() {
        for ipv6 in [false, true] {
            let frames = exchange(Link::RawIp, ipv6, &[]);
            assert_eq!(frames[0].link_type, LinkType::RAW);
            assert_eq!(frames[0].data[0] >> 4, if ipv6 { 6 } else { 4 });
            assert!(matches!(slice(&frames[0]).net, Some(NetSlice::Ipv4(_) | NetSlice::Ipv6(_))));
            assert_tcp_payloads(&frames);
        }
    }

    #[test]
    fn bsd_loopback_families_follow_their_byte_order() {
        let cases = [
            (Link::Null, false, [2, 0, 0, 0]),
            (Link::Null, true, [30, 0, 0, 0]),
            (Link::Loop, false, [0, 0, 0, 2]),
            (Link::Loop, true, [0, 0, 0, 24]),
        ];
        for (link, ipv6, family) in cases {
            let frames = exchange(link, ipv6, &[]);
            assert_eq!(frames[0].link_type, link.link_type());
            assert_eq!(frames[0].data[..4], family, "{link:?} ipv6={ipv6}");
            assert_tcp_payloads(&frames);
        }
    }

    /// The IP packet's TCP payload, the IP packet starting at `offset`.
    fn payload_at(frame: &CapturedFrame, offset: usize, end: usize) -> Vec<u8> {
        let packet = etherparse::SlicedPacket::from_ip(&frame.data[offset..end]).unwrap();
        let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else { panic!("no TCP") };
        tcp.payload().to_vec()
    }

    /// CRC-32 (IEEE 802.3, reflected), bit by bit: the frame check sequence of 802.11 too.
    fn crc32(bytes: &[u8]) -> u32 {
        !bytes.iter().fold(u32::MAX, |crc, byte| {
            (0..8).fold(crc ^ u32::from(*byte), |crc, _| if crc & 1 == 1 { crc >> 1 ^ 0xEDB8_8320 } else { crc >> 1 })
        })
    }

    #[test]
    fn wifi_frames_go_through_the_access_point_with_llc_snap() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the check value of CRC-32");
        let frames = exchange(Link::Wifi, false, &[]);
        assert_eq!(frames[0].link_type, LinkType::IEEE802_11);
        let to_ap = &frames[0].data;
        assert_eq!(to_ap[..2], [0x88, 0x01], "QoS data, to the distribution system");
        assert_eq!([&to_ap[4..10], &to_ap[10..16], &to_ap[16..22]], [SERVER_MAC, CLIENT_MAC, SERVER_MAC]);
        assert_eq!(to_ap[26..34], [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        assert_eq!(payload_at(&frames[0], 34, to_ap.len()), b"CAPA\r\n");
        let from_ap = &frames[1].data;
        assert_eq!(from_ap[..2], [0x08, 0x02], "data, from the distribution system");
        assert_eq!([&from_ap[4..10], &from_ap[10..16], &from_ap[16..22]], [CLIENT_MAC, SERVER_MAC, SERVER_MAC]);
        assert_eq!(from_ap[24..32], [0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        assert_eq!(payload_at(&frames[1], 32, from_ap.len()), b"+OK\r\n");

        let monitors: [(Link, &[u8], LinkType); 2] = [
            (Link::Radiotap, &RADIOTAP_HEADER, LinkType::IEEE802_11_RADIOTAP),
            (Link::Ppi, &PPI_HEADER, LinkType::PPI),
        ];
        for (link, header, link_type) in monitors {
            let monitored = exchange(link, link == Link::Radiotap, &[]);
            assert_eq!(monitored[0].link_type, link_type);
            for frame in &monitored {
                let data = &frame.data;
                assert_eq!(&data[..header.len()], header);
                let (covered, fcs) = data[header.len()..].split_at(data.len() - header.len() - 4);
                assert_eq!(fcs, crc32(covered).to_le_bytes(), "{link:?}");
                assert_eq!(covered[0] & 0x0c, 0x08, "the covered bytes start with a data frame's control");
            }
            assert_eq!(payload_at(&monitored[0], header.len() + 34, monitored[0].data.len() - 4), b"CAPA\r\n");
        }
    }

    #[test]
    fn ppp_links_frame_ip_as_rfc_1661_and_1662_say() {
        for (ipv6, protocol) in [(false, 0x21u8), (true, 0x57)] {
            let ppp = exchange(Link::Ppp, ipv6, &[]);
            assert_eq!(ppp[0].link_type, LinkType::PPP);
            assert_eq!(ppp[0].data[..4], [0xFF, 0x03, 0x00, protocol], "the client's frames in full");
            assert_eq!(ppp[1].data[..1], [protocol], "the server's compressed: no address, control, one byte");
            assert_eq!(payload_at(&ppp[0], 4, ppp[0].data.len()), b"CAPA\r\n");
            assert_eq!(payload_at(&ppp[1], 1, ppp[1].data.len()), b"+OK\r\n");

            let hdlc = exchange(Link::PppHdlc, ipv6, &[]);
            assert_eq!(hdlc[1].link_type, LinkType::PPP_HDLC);
            assert_eq!(hdlc[1].data[..4], [0xFF, 0x03, 0x00, protocol]);
            assert_eq!(payload_at(&hdlc[1], 4, hdlc[1].data.len()), b"+OK\r\n");

            let pppoe = exchange(Link::PppEther, ipv6, &[]);
            assert_eq!(pppoe[0].link_type, LinkType::PPP_ETHER);
            let data = &pppoe[0].data;
            assert_eq!(data[..4], [0x11, 0x00, 0x01, 0x01], "version, type, session data, session id");
            assert_eq!(usize::from(u16::from_be_bytes([data[4], data[5]])), data.len() - 6, "the PPP payload's length");
            assert_eq!(data[6..8], [0x00, protocol]);
            assert_eq!(payload_at(&pppoe[0], 8, data.len()), b"CAPA\r\n");

            let cisco = exchange(Link::CiscoHdlc, ipv6, &[]);
            assert_eq!(cisco[0].link_type, LinkType::C_HDLC);
            let ether_type: [u8; 2] = if ipv6 { [0x86, 0xDD] } else { [0x08, 0x00] };
            assert_eq!(cisco[0].data[..4], [0x0F, 0x00, ether_type[0], ether_type[1]], "unicast, control 0, type");
            assert_eq!(payload_at(&cisco[1], 4, cisco[1].data.len()), b"+OK\r\n");
        }
    }

    /// The attributes of an NFLOG record as (type, value), read little-endian, each checked to
    /// start on a multiple of 4 bytes.
    fn nflog_attributes(data: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut attributes = Vec::new();
        let mut offset = 4;
        while offset < data.len() {
            assert_eq!(offset % 4, 0, "attributes are aligned on 4 bytes");
            let length = usize::from(u16::from_le_bytes([data[offset], data[offset + 1]]));
            let tlv_type = u16::from_le_bytes([data[offset + 2], data[offset + 3]]);
            attributes.push((tlv_type, data[offset + 4..offset + length].to_vec()));
            offset = (offset + length).next_multiple_of(4);
        }
        assert_eq!(offset, data.len(), "the last attribute ends the record, padded");
        attributes
    }

    #[test]
    fn nflog_records_hold_the_packet_in_their_last_attribute() {
        for (ipv6, family, protocol) in [(false, 2u8, [0x08, 0x00]), (true, 10, [0x86, 0xDD])] {
            let frames = exchange(Link::Nflog, ipv6, &[]);
            assert_eq!(frames[0].link_type, LinkType::NFLOG);
            for (frame, hook, interface, payload) in
                [(&frames[0], 3, 5, &b"CAPA\r\n"[..]), (&frames[1], 1, 4, &b"+OK\r\n"[..])]
            {
                assert_eq!(frame.data[..4], [family, 0, 0, 5], "family, version 0, group 5 big-endian");
                let attributes = nflog_attributes(&frame.data);
                let types: Vec<u16> = attributes.iter().map(|(tlv_type, _)| *tlv_type).collect();
                assert_eq!(types, [1, 10, interface, 9], "header, prefix, interface, payload");
                assert_eq!(attributes[0].1, [protocol[0], protocol[1], hook, 0], "hardware protocol, hook");
                assert_eq!(attributes[1].1, b"mail\0");
                assert_eq!(attributes[2].1, 2u32.to_be_bytes());
                let packet = etherparse::SlicedPacket::from_ip(&attributes[3].1).unwrap();
                let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else { panic!("no TCP") };
                assert_eq!(tcp.payload(), payload);
            }
        }
    }

    #[test]
    fn pktap_headers_name_the_ethernet_frame_after_them() {
        let u32_at = |data: &[u8], offset: usize| u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap());
        for (ipv6, family) in [(false, 2), (true, 30)] {
            let frames = exchange(Link::Pktap, ipv6, &[]);
            assert_eq!(frames[0].link_type, LinkType::PKTAP);
            for (frame, direction, macs) in
                [(&frames[0], 2, (CLIENT_MAC, SERVER_MAC)), (&frames[1], 1, (SERVER_MAC, CLIENT_MAC))]
            {
                let data = &frame.data;
                let length = u32_at(data, 0) as usize;
                assert_eq!(length, 156, "version 1's 108 bytes and the fields macOS appends");
                assert_eq!((u32_at(data, 4), u32_at(data, 8)), (1, 1), "a packet follows, DLT_EN10MB");
                assert_eq!(&data[12..36], b"en0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
                assert_eq!((u32_at(data, 36), u32_at(data, 40)), (direction, family), "flags, protocol family");
                assert_eq!(u32_at(data, 44), 14, "the link-layer header's length");
                assert_eq!(&data[56..60], b"Mail", "the command name");
                let packet = etherparse::SlicedPacket::from_ethernet(&data[length..]).unwrap();
                let Some(LinkSlice::Ethernet2(ethernet)) = &packet.link else { panic!("no Ethernet") };
                assert_eq!((ethernet.source(), ethernet.destination()), macs);
            }
            assert_eq!(
                tcp_of(&etherparse::SlicedPacket::from_ethernet(&frames[1].data[156..]).unwrap()).payload,
                b"+OK\r\n"
            );
        }
    }

    #[test]
    fn bsd_and_solaris_log_headers_sit_before_the_packet() {
        for (ipv6, bsd_family, solaris_family) in [(false, 2u8, 2u8), (true, 24, 26)] {
            let pflog = exchange(Link::Pflog, ipv6, &[]);
            assert_eq!(pflog[0].link_type, LinkType::PFLOG);
            for (frame, direction) in [(&pflog[0], 2), (&pflog[1], 1)] {
                let data = &frame.data;
                assert_eq!(data[..4], [61, bsd_family, 0, 0], "length, family, pass, match");
                assert_eq!(&data[4..8], b"wm0\0");
                assert_eq!(data[36..44], [0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF], "rule 3, no subrule");
                assert_eq!(data[60], direction, "out, or in");
                assert_eq!(data[61..64], [0; 3], "padded to a multiple of 4");
            }
            assert_eq!(payload_at(&pflog[0], 64, pflog[0].data.len()), b"CAPA\r\n");

            let enc = exchange(Link::Enc, ipv6, &[]);
            assert_eq!(enc[1].link_type, LinkType::ENC);
            assert_eq!(enc[0].data[..12], [bsd_family, 0, 0, 0, 0x10, 0, 0, 1, 0, 0x0C, 0, 0], "family, SPI, flags");
            assert_eq!(enc[1].data[4..8], [0x20, 0, 0, 2], "the other direction's SPI");
            assert_eq!(payload_at(&enc[1], 12, enc[1].data.len()), b"+OK\r\n");

            let ipnet = exchange(Link::Ipnet, ipv6, &[]);
            assert_eq!(ipnet[0].link_type, LinkType::IPNET);
            for (frame, hook) in [(&ipnet[0], 1), (&ipnet[1], 0)] {
                let data = &frame.data;
                assert_eq!(data[..4], [2, solaris_family, 0, hook], "version, family, hook");
                assert_eq!(
                    u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize,
                    data.len() - 24,
                    "packet length"
                );
                assert_eq!(data[8..24], [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "interface, group, zones");
            }
            assert_eq!(payload_at(&ipnet[0], 24, ipnet[0].data.len()), b"CAPA\r\n");
        }
    }

    #[test]
    fn netanalyzer_frames_are_whole_ethernet_frames_with_their_fcs() {
        for (link, link_type, transparent) in [
            (Link::NetAnalyzer, LinkType::NETANALYZER, false),
            (Link::NetAnalyzerTransparent, LinkType::NETANALYZER_TRANSPARENT, true),
        ] {
            let frames = exchange(link, false, &[]);
            assert_eq!(frames[0].link_type, link_type);
            for (frame, port) in [(&frames[0], 0), (&frames[1], 1)] {
                let header = u32::from_le_bytes(frame.data[..4].try_into().unwrap());
                assert_eq!(header & 0xff, 0, "no errors");
                assert_eq!(header & 0x100, 0, "no GPIO event");
                assert_eq!(header & 0x200 != 0, transparent, "transparent mode");
                assert_eq!((header >> 10) & 0xf, 1, "version 1");
                assert_eq!((header >> 14) & 0x3, port, "each direction on its port");
                let start = if transparent { 4 + 8 } else { 4 };
                if transparent {
                    assert_eq!(frame.data[4..12], [0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0xD5], "preamble, SFD");
                }
                let ethernet = &frame.data[start..];
                assert_eq!((header >> 16) as usize & 0xfff, ethernet.len(), "the frame's length, its FCS included");
                assert!(ethernet.len() >= 64, "padded to the minimum frame size");
                let (covered, fcs) = ethernet.split_at(ethernet.len() - 4);
                assert_eq!(fcs, crc32(covered).to_le_bytes());
            }
            assert_eq!(
                payload_at(&frames[0], if transparent { 12 } else { 4 } + 14, frames[0].data.len()),
                b"CAPA\r\n"
            );
        }
    }

    #[test]
    fn erf_records_carry_ethernet_or_ip_behind_their_headers() {
        let be16 = |data: &[u8], offset: usize| usize::from(u16::from_be_bytes([data[offset], data[offset + 1]]));
        let frames = exchange(Link::Erf, false, &[]);
        assert_eq!(frames[0].link_type, LinkType::ERF);
        for (frame, record_type, port, extensions) in [(&frames[0], 0x82, 0, 2), (&frames[1], 0x02, 1, 0)] {
            let data = &frame.data;
            let stamp = u64::from_le_bytes(data[..8].try_into().unwrap());
            assert_eq!(stamp >> 32, frame.ts.secs(), "seconds in the high half");
            let nanos = ((stamp & 0xffff_ffff) * 1_000_000_000) >> 32;
            assert!(frame.ts.as_nanos() % 1_000_000_000 - nanos <= 1, "the binary fraction of the second");
            assert_eq!(data[8..10], [record_type, 0x04 | port], "Ethernet, extension headers; varying length, port");
            assert_eq!(be16(data, 10), data.len(), "the record's length");
            assert_eq!(be16(data, 12), 0, "no loss");
            let start = 16 + 8 * extensions;
            if extensions == 2 {
                assert_eq!((data[16], data[24]), (0x80 | 17, 16), "host id, another follows; flow id, the last");
            }
            assert_eq!(data[start..start + 2], [0, 0], "the Ethernet subheader");
            let ethernet = &data[start + 2..];
            assert_eq!(be16(data, 14), ethernet.len(), "the wire length, the frame check sequence included");
            let (covered, fcs) = ethernet.split_at(ethernet.len() - 4);
            assert_eq!(fcs, crc32(covered).to_le_bytes());
        }
        assert_eq!(payload_at(&frames[0], 16 + 16 + 2 + 14, frames[0].data.len()), b"CAPA\r\n");
        for (ipv6, record_type) in [(false, 22), (true, 23)] {
            let records = exchange(Link::ErfIp, ipv6, &[]);
            assert_eq!(records[1].data[8..10], [record_type, 0x04 | 1]);
            assert_eq!(be16(&records[1].data, 14), records[1].data.len() - 16, "the packet's length");
            assert_eq!(payload_at(&records[1], 16, records[1].data.len()), b"+OK\r\n");
        }
    }

    #[test]
    fn links_refuse_what_they_cannot_carry() {
        let frame = Packet { kind: PacketKind::Ethernet, bytes: vec![0; 14] };
        let macs = Macs { client: CLIENT_MAC, server: SERVER_MAC };
        for link in Link::all() {
            assert!(matches!(
                link.frame(&frame, Side::Client, Timestamp(0), macs, &[]),
                Err(ScriptError::CannotCarry { kind: PacketKind::Ethernet, .. })
            ));
        }
        let mpls = Packet { kind: PacketKind::Mpls, bytes: vec![0; 4] };
        assert!(link_frame_ok(Link::Ethernet, &mpls));
        assert!(!link_frame_ok(Link::RawIp, &mpls));
    }

    #[test]
    fn aggregates_put_a_burst_in_one_wifi_frame() {
        use crate::decode::{Decoded, Decoder};
        for link in [Link::Wifi, Link::Radiotap, Link::Ppi] {
            let mut conversation = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 110));
            conversation
                .link(link)
                .client(b"CAPA\r\n")
                .send_split(Side::Server, b"+OK\r\nUSER\r\n.\r\n", &[5, 6, 3])
                .aggregate_last()
                .client(b"QUIT\r\n");
            let frames = conversation.frames().unwrap();
            assert_eq!(frames.len(), 3, "the three server segments share a frame");
            let mut decoder = Decoder::new();
            let mut payloads = Vec::new();
            for frame in &frames {
                let frame = frame.as_frame();
                let mut decoded = Some(decoder.decode(&frame));
                while let Some(packet) = decoded {
                    let Decoded::Tcp(packet) = packet else { panic!("not TCP: {packet:?}") };
                    payloads.push(packet.payload.to_vec());
                    decoded = decoder.decode_next(&frame);
                }
            }
            let expected: [&[u8]; 5] = [b"CAPA\r\n", b"+OK\r\n", b"USER\r\n", b".\r\n", b"QUIT\r\n"];
            assert_eq!(payloads, expected);
            let aggregate = &frames[1].data;
            let header = match link {
                Link::Radiotap => RADIOTAP_HEADER.len(),
                Link::Ppi => PPI_HEADER.len(),
                _ => 0,
            };
            assert_eq!(aggregate[header..header + 2], [WIFI_QOS_DATA, WIFI_FROM_DS]);
            assert_eq!(aggregate[header + 24], QOS_AMSDU, "the QoS control says A-MSDU");
        }
        let mut on_ethernet = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 110));
        on_ethernet.client(b"CAPA\r\n").aggregate_last();
        assert!(matches!(on_ethernet.frames(), Err(ScriptError::AggregateNeedsWifi)));
    }

    fn link_frame_ok(link: Link, packet: &Packet) -> bool {
        let macs = Macs { client: CLIENT_MAC, server: SERVER_MAC };
        link.frame(packet, Side::Client, Timestamp(0), macs, &[]).is_ok()
    }
}
