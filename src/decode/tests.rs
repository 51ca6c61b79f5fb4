//! Decoder tests. Frames are built in code: etherparse's `PacketBuilder` and header types where
//! they exist, small byte builders below for the headers etherparse cannot write.

use std::net::IpAddr;

use etherparse::{
    IpAuthHeader, IpFragOffset, IpNumber, Ipv4Header, Ipv4Options, Ipv6FragmentHeader, Ipv6Header, PacketBuilder,
    TcpHeader, UdpHeader, VlanId,
};
use proptest::prelude::*;

use super::*;
use crate::capture::{LinkType, Timestamp};
use crate::pcapwriter::{CapturedFrame, Conversation, Encap, Link, TunnelEnds, TEREDO_PORT};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const TUNNEL_A: [u8; 4] = [192, 0, 2, 1];
const TUNNEL_B: [u8; 4] = [192, 0, 2, 2];
const TUNNEL_C: [u8; 4] = [192, 0, 2, 3];
const LINE: &[u8] = b"a01 LOGIN alice canary-pw\r\n";
const CLIENT_PORT: u16 = 40_000;
const IMAP_PORT: u16 = 143;

/// What a decoded packet said, owned so that tests can compare it after the decoder moves on.
#[derive(Debug, PartialEq)]
struct Seen {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    vlan: Vec<u16>,
    tunnel: u64,
    payload: Vec<u8>,
    missing: u32,
}

fn frame_at(link_type: LinkType, data: &[u8], secs: u64) -> Frame<'_> {
    Frame { ts: Timestamp::from_secs_nanos(1_700_000_000 + secs, 0), link_type, orig_len: data.len() as u32, data }
}

fn seen(packet: &TcpPacket<'_>) -> Seen {
    Seen {
        src: packet.src,
        dst: packet.dst,
        src_port: packet.src_port,
        dst_port: packet.dst_port,
        seq: packet.seq,
        ack: packet.ack,
        flags: packet.flags.0,
        window: packet.window,
        vlan: packet.vlan.as_slice().to_vec(),
        tunnel: packet.tunnel,
        payload: packet.payload.to_vec(),
        missing: packet.payload_missing,
    }
}

fn decode_at(decoder: &mut Decoder, link_type: LinkType, data: &[u8], secs: u64) -> Result<Seen, SkipReason> {
    match decoder.decode(&frame_at(link_type, data, secs)) {
        Decoded::Tcp(packet) => Ok(seen(&packet)),
        Decoded::Skipped(reason) => Err(reason),
    }
}

/// What the general walk makes of an Ethernet frame, without the fast path.
fn general_walk(data: &[u8]) -> Result<Seen, SkipReason> {
    let mut defrag = Defragmenter::default();
    let mut stats = DecodeStats::default();
    let mut aggregate_rest = None;
    let frame = frame_at(LinkType::ETHERNET, data, 0);
    let context = TunnelContext::default();
    peel(&frame, Layer::Ethernet(data), context, &mut defrag, &mut stats, &mut aggregate_rest)
        .map(|packet| seen(&packet))
}

/// The fast path answers only where the general walk finds TCP, and then with the same packet.
fn fast_path_agrees(data: &[u8]) -> bool {
    match fast::ethernet_tcp(data) {
        Some(packet) => general_walk(data) == Ok(seen(&packet)),
        None => true,
    }
}

fn decode(link_type: LinkType, data: &[u8]) -> Result<Seen, SkipReason> {
    decode_at(&mut Decoder::new(), link_type, data, 0)
}

fn decode_tcp(link_type: LinkType, data: &[u8]) -> Seen {
    match decode(link_type, data) {
        Ok(seen) => seen,
        Err(reason) => panic!("expected TCP, got {reason:?}"),
    }
}

// ---- builders ----

fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp(CLIENT_PORT, IMAP_PORT, 1000, 512)
        .ack(2000)
        .psh()
        .write(&mut out, payload)
        .unwrap();
    out
}

fn ipv6_tcp(src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(src, dst, 64)
        .tcp(CLIENT_PORT, IMAP_PORT, 1000, 512)
        .ack(2000)
        .psh()
        .write(&mut out, payload)
        .unwrap();
    out
}

/// A TCP header plus payload, for packets assembled from separate headers.
fn tcp_segment(payload: &[u8]) -> Vec<u8> {
    let mut header = TcpHeader::new(CLIENT_PORT, IMAP_PORT, 1000, 512);
    header.ack = true;
    header.acknowledgment_number = 2000;
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(payload);
    out
}

fn ethernet(ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// An Ethernet frame with VLAN tags given as (tag protocol id, VLAN id), outermost first.
fn tagged(tags: &[(u16, u16)], ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (index, &(_, id)) in tags.iter().enumerate() {
        body.extend_from_slice(&id.to_be_bytes());
        let next = tags.get(index + 1).map_or(ether_type, |&(tpid, _)| tpid);
        body.extend_from_slice(&next.to_be_bytes());
    }
    body.extend_from_slice(inner);
    ethernet(tags[0].0, &body)
}

fn ipv4_outer(protocol: u8, src: [u8; 4], dst: [u8; 4], inner: &[u8]) -> Vec<u8> {
    let mut header = Ipv4Header::new(inner.len() as u16, 64, IpNumber(protocol), src, dst).unwrap();
    header.header_checksum = header.calc_header_checksum();
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(inner);
    out
}

fn ipv6_outer(next_header: u8, inner: &[u8]) -> Vec<u8> {
    let header = Ipv6Header {
        payload_length: inner.len() as u16,
        next_header: IpNumber(next_header),
        hop_limit: 64,
        source: CLIENT6,
        destination: SERVER6,
        ..Default::default()
    };
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(inner);
    out
}

fn udp(destination_port: u16, inner: &[u8]) -> Vec<u8> {
    let header = UdpHeader { source_port: 50_000, destination_port, length: (8 + inner.len()) as u16, checksum: 0 };
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(inner);
    out
}

const GRE_CHECKSUM: u16 = 0x8000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;

/// A GRE header with the given flags; `fields` are the optional words in wire order.
fn gre(flags: u16, protocol: u16, fields: &[u32], inner: &[u8]) -> Vec<u8> {
    let mut out = flags.to_be_bytes().to_vec();
    out.extend_from_slice(&protocol.to_be_bytes());
    for field in fields {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend_from_slice(inner);
    out
}

fn erspan_ii(session: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0x10, 0x00];
    out.extend_from_slice(&(session & 0x3ff).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(inner);
    out
}

fn erspan_iii(session: u16, platform_subheader: bool, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0x20, 0x00];
    out.extend_from_slice(&(session & 0x3ff).to_be_bytes());
    out.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0, 0, 0, u8::from(platform_subheader)]);
    if platform_subheader {
        out.extend_from_slice(&[0xee; 8]);
    }
    out.extend_from_slice(inner);
    out
}

fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08, 0, 0, 0];
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    out.extend_from_slice(inner);
    out
}

fn geneve(vni: u32, protocol: u16, option_words: u8, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![option_words & 0x3f, 0];
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    out.extend(std::iter::repeat_n(0xab, usize::from(option_words) * 4));
    out.extend_from_slice(inner);
    out
}

fn mpls(labels: &[u32], inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, label) in labels.iter().enumerate() {
        let bottom = u32::from(index + 1 == labels.len());
        out.extend_from_slice(&((label << 12) | (bottom << 8) | 64).to_be_bytes());
    }
    out.extend_from_slice(inner);
    out
}

fn linux_sll(protocol: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

fn linux_sll2(protocol: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = protocol.to_be_bytes().to_vec();
    out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    out.extend_from_slice(inner);
    out
}

/// An 802.11 frame: frame control (`control`, `flags`), duration, three addresses, sequence
/// control, the fourth address when both DS flags are set, then `fields` (QoS and HT control)
/// and `body`.
fn wifi_frame(control: u8, flags: u8, fields: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = vec![control, flags, 0, 0];
    for last in 1..=3 {
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, last]);
    }
    out.extend_from_slice(&[0x10, 0]);
    if flags & 0x03 == 0x03 {
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, 4]);
    }
    out.extend_from_slice(fields);
    out.extend_from_slice(body);
    out
}

/// An RFC 1042 LLC/SNAP header (`oui_last` 0xf8: 802.1H bridge tunnel) and what follows it.
fn snap(oui_last: u8, ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0xaa, 0xaa, 0x03, 0, 0, oui_last];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// A radiotap header with one field, the flags, saying a frame check sequence ends the frame;
/// then `frame` and that sequence.
fn radiotap(frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 9, 0, 0x02, 0, 0, 0, 0x10];
    out.extend_from_slice(frame);
    out.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    out
}

fn with_prefix(prefix: [u8; 4], inner: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(inner);
    out
}

/// Splits an IPv4 packet into fragments of `chunk` payload bytes (a multiple of 8).
fn ipv4_fragments(packet: &[u8], id: u16, chunk: usize) -> Vec<Vec<u8>> {
    let (header, payload) = Ipv4Header::from_slice(packet).unwrap();
    let payload = &payload[..usize::from(header.total_len) - header.header_len()];
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(index, piece)| {
            let offset = index * chunk;
            ipv4_fragment(&header, id, offset, offset + piece.len() < payload.len(), piece)
        })
        .collect()
}

fn ipv4_fragment(header: &Ipv4Header, id: u16, offset: usize, more: bool, piece: &[u8]) -> Vec<u8> {
    let mut header = header.clone();
    header.identification = id;
    header.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
    header.more_fragments = more;
    header.set_payload_len(piece.len()).unwrap();
    header.header_checksum = header.calc_header_checksum();
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(piece);
    out
}

/// Splits an IPv6 packet without extension headers into fragments of `chunk` payload bytes.
fn ipv6_fragments(packet: &[u8], id: u32, chunk: usize) -> Vec<Vec<u8>> {
    let (header, payload) = Ipv6Header::from_slice(packet).unwrap();
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(index, piece)| {
            let offset = index * chunk;
            let fragment = Ipv6FragmentHeader::new(
                header.next_header,
                IpFragOffset::try_new((offset / 8) as u16).unwrap(),
                offset + piece.len() < payload.len(),
                id,
            );
            let mut outer = header.clone();
            outer.next_header = IpNumber::IPV6_FRAGMENTATION_HEADER;
            outer.payload_length = (8 + piece.len()) as u16;
            let mut out = Vec::new();
            outer.write(&mut out).unwrap();
            fragment.write(&mut out).unwrap();
            out.extend_from_slice(piece);
            out
        })
        .collect()
}

/// An IPv6 extension header of the generic kind (hop-by-hop, routing, destination options):
/// next header, length in 8-octet units beyond the first, padding.
fn ipv6_extension(next_header: u8, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![next_header, 0, 0, 0, 0, 0, 0, 0];
    out.extend_from_slice(inner);
    out
}

fn auth_header(next_header: u8, inner: &[u8]) -> Vec<u8> {
    let header = IpAuthHeader::new(IpNumber(next_header), 0x1234, 7, &[0; 4]).unwrap();
    let mut out = Vec::new();
    header.write(&mut out).unwrap();
    out.extend_from_slice(inner);
    out
}

fn long_line(len: usize) -> Vec<u8> {
    (0..len).map(|index| b'a' + (index % 26) as u8).collect()
}

// ---- link layers ----

#[test]
fn ethernet_ipv4_tcp_fields() {
    let seen = decode_tcp(LinkType::ETHERNET, &ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE)));
    assert_eq!(
        seen,
        Seen {
            src: IpAddr::from(CLIENT),
            dst: IpAddr::from(SERVER),
            src_port: CLIENT_PORT,
            dst_port: IMAP_PORT,
            seq: 1000,
            ack: 2000,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 512,
            vlan: vec![],
            tunnel: 0,
            payload: LINE.to_vec(),
            missing: 0,
        }
    );
}

#[test]
fn ethernet_ipv6_tcp_and_flags() {
    let mut packet = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(CLIENT_PORT, IMAP_PORT, 7, 100)
        .syn()
        .fin()
        .rst()
        .urg(1)
        .write(&mut packet, &[])
        .unwrap();
    let seen = decode_tcp(LinkType::ETHERNET, &ethernet(0x86dd, &packet));
    assert_eq!(seen.src, IpAddr::from(CLIENT6));
    assert_eq!(seen.flags, TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST | TcpFlags::URG);
    assert!(seen.payload.is_empty());
}

#[test]
fn ethernet_trailer_padding_is_not_payload() {
    let mut frame = ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, b"hi"));
    frame.extend_from_slice(&[0; 12]);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &frame).payload, b"hi");
}

#[test]
fn single_vlan_tag() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4(CLIENT, SERVER, 64)
        .tcp(CLIENT_PORT, IMAP_PORT, 1, 1)
        .write(&mut frame, LINE)
        .unwrap();
    let seen = decode_tcp(LinkType::ETHERNET, &frame);
    assert_eq!(seen.vlan, [42]);
    assert_eq!(seen.payload, LINE);
}

#[test]
fn qinq_tags_outermost_first() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
        .ipv6(CLIENT6, SERVER6, 64)
        .tcp(CLIENT_PORT, IMAP_PORT, 1, 1)
        .write(&mut frame, LINE)
        .unwrap();
    assert_eq!(frame[12..14], [0x88, 0xa8]);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &frame).vlan, [100, 200]);
}

#[test]
fn stacked_tags_keep_the_first_four() {
    let tags = [(0x9100, 1), (0x88a8, 2), (0x8100, 3), (0x8100, 4), (0x8100, 5)];
    let frame = tagged(&tags, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let seen = decode_tcp(LinkType::ETHERNET, &frame);
    assert_eq!(seen.vlan, [1, 2, 3, 4]);
    assert_eq!(seen.payload, LINE);
}

#[test]
fn vlans_can_be_ignored_on_every_path() {
    let frames = [
        // One tag and two (the fast path), five (the general walk), and an inner tag behind VXLAN.
        tagged(&[(0x8100, 10)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE)),
        tagged(&[(0x88a8, 100), (0x8100, 200)], 0x86dd, &ipv6_tcp(CLIENT6, SERVER6, LINE)),
        tagged(
            &[(0x9100, 1), (0x88a8, 2), (0x8100, 3), (0x8100, 4), (0x8100, 5)],
            0x0800,
            &ipv4_tcp(CLIENT, SERVER, LINE),
        ),
        ethernet(
            0x0800,
            &ipv4_outer(
                17,
                TUNNEL_A,
                TUNNEL_B,
                &udp(4789, &vxlan(5000, &tagged(&[(0x8100, 33)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE)))),
            ),
        ),
    ];
    let mut ignoring = Decoder::new().ignoring_vlans(true);
    for frame in &frames {
        let tagged = decode_tcp(LinkType::ETHERNET, frame);
        assert!(!tagged.vlan.is_empty());
        let untagged = decode_at(&mut ignoring, LinkType::ETHERNET, frame, 0).unwrap();
        assert!(untagged.vlan.is_empty(), "{frame:02x?}");
        assert_eq!(untagged, Seen { vlan: Vec::new(), ..tagged }, "only the tags go");
    }
}

#[test]
fn linux_cooked_v1_and_v2() {
    let packet = ipv4_tcp(CLIENT, SERVER, LINE);
    assert_eq!(decode_tcp(LinkType::LINUX_SLL, &linux_sll(0x0800, &packet)).payload, LINE);
    assert_eq!(decode_tcp(LinkType::LINUX_SLL2, &linux_sll2(0x0800, &packet)).payload, LINE);
    let tagged_inner = [&[0x00, 0x07, 0x08, 0x00][..], &packet].concat();
    assert_eq!(decode_tcp(LinkType::LINUX_SLL, &linux_sll(0x8100, &tagged_inner)).vlan, [7]);
    assert_eq!(decode(LinkType::LINUX_SLL2, &linux_sll2(0x0806, &[0; 28])), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::LINUX_SLL2, &[0x08, 0x00, 0, 0]), Err(SkipReason::Truncated));
}

#[test]
fn raw_ip_link_types() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    for link_type in [LinkType::RAW, LinkType::RAW_BSD12, LinkType::RAW_BSD14, LinkType::IPV4] {
        assert_eq!(decode_tcp(link_type, &v4).src, IpAddr::from(CLIENT), "{link_type:?}");
    }
    for link_type in [LinkType::RAW, LinkType::RAW_BSD12, LinkType::RAW_BSD14, LinkType::IPV6] {
        assert_eq!(decode_tcp(link_type, &v6).src, IpAddr::from(CLIENT6), "{link_type:?}");
    }
}

#[test]
fn bsd_null_loopback_in_both_byte_orders() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    for family in [2u32] {
        for prefix in [family.to_le_bytes(), family.to_be_bytes()] {
            assert_eq!(decode_tcp(LinkType::NULL, &with_prefix(prefix, &v4)).payload, LINE);
        }
    }
    for family in [24u32, 28, 30] {
        for prefix in [family.to_le_bytes(), family.to_be_bytes()] {
            assert_eq!(decode_tcp(LinkType::NULL, &with_prefix(prefix, &v6)).payload, LINE);
        }
    }
    assert_eq!(decode(LinkType::NULL, &with_prefix(7u32.to_le_bytes(), &v4)), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::NULL, &[2, 0]), Err(SkipReason::Truncated));
}

#[test]
fn openbsd_loop_is_big_endian() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    assert_eq!(decode_tcp(LinkType::LOOP, &with_prefix(2u32.to_be_bytes(), &v4)).payload, LINE);
    assert_eq!(decode(LinkType::LOOP, &with_prefix(2u32.to_le_bytes(), &v4)), Err(SkipReason::NotIp));
}

/// A PPPoE session header (session 0x0101) and PPP protocol number before `inner`.
fn pppoe(code: u8, protocol: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0x11, code, 0x01, 0x01];
    out.extend_from_slice(&u16::try_from(inner.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&protocol.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

#[test]
fn pppoe_sessions_carry_ip() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &ethernet(0x8864, &pppoe(0, 0x0021, &v4))).payload, LINE);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &ethernet(0x8864, &pppoe(0, 0x0057, &v6))).src, IpAddr::from(CLIENT6));
    assert_eq!(decode_tcp(LinkType::ETHERNET, &tagged(&[(0x8100, 7)], 0x8864, &pppoe(0, 0x0021, &v4))).vlan, [7]);
    // Ethernet's padding after a short packet is left out by the IP length.
    let mut padded = ethernet(0x8864, &pppoe(0, 0x0021, &v4));
    padded.extend_from_slice(&[0; 12]);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &padded).payload, LINE);
    // PPP's link control and authentication (PAP) are not IP; other codes and versions are not
    // session data.
    for protocol in [0xc021, 0xc023, 0x8021] {
        assert_eq!(
            decode(LinkType::ETHERNET, &ethernet(0x8864, &pppoe(0, protocol, &[0; 20]))),
            Err(SkipReason::NotIp)
        );
    }
    assert_eq!(decode(LinkType::ETHERNET, &ethernet(0x8864, &pppoe(0x09, 0x0021, &v4))), Err(SkipReason::Malformed));
    let mut version_two = pppoe(0, 0x0021, &v4);
    version_two[0] = 0x21;
    assert_eq!(decode(LinkType::ETHERNET, &ethernet(0x8864, &version_two)), Err(SkipReason::Malformed));
    assert_eq!(decode(LinkType::ETHERNET, &ethernet(0x8864, &[0x11, 0, 1, 1, 0])), Err(SkipReason::Truncated));
}

/// A Cisco HDLC frame (unicast address, control 0) announcing `ether_type`.
fn cisco_hdlc(ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0x0f, 0x00];
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

#[test]
fn ppp_links_with_and_without_hdlc_framing_and_compression() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    for frame in [ppp(true, &[0x00, 0x21], &v4), ppp(false, &[0x00, 0x21], &v4), ppp(false, &[0x21], &v4)] {
        assert_eq!(decode_tcp(LinkType::PPP, &frame).payload, LINE, "{:02x?}", &frame[..4]);
    }
    assert_eq!(decode_tcp(LinkType::PPP, &ppp(true, &[0x57], &v6)).src, IpAddr::from(CLIENT6));
    assert_eq!(decode_tcp(LinkType::PPP_HDLC, &ppp(true, &[0x00, 0x21], &v4)).payload, LINE);
    // LCP and IPCP are PPP's own traffic; an empty frame is cut short.
    for protocol in [[0xc0, 0x21], [0x80, 0x21]] {
        assert_eq!(decode(LinkType::PPP, &ppp(true, &protocol, &[0; 20])), Err(SkipReason::NotIp));
    }
    assert_eq!(decode(LinkType::PPP, &[]), Err(SkipReason::Truncated));
    assert_eq!(decode(LinkType::PPP, &[0xff, 0x03, 0x00]), Err(SkipReason::Truncated));
}

#[test]
fn cisco_hdlc_alone_or_in_a_ppp_hdlc_capture() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    for link_type in [LinkType::C_HDLC, LinkType::PPP_HDLC] {
        assert_eq!(decode_tcp(link_type, &cisco_hdlc(0x0800, &v4)).payload, LINE);
        assert_eq!(decode_tcp(link_type, &cisco_hdlc(0x86dd, &v6)).dst, IpAddr::from(SERVER6));
        assert_eq!(decode_tcp(link_type, &cisco_hdlc(0x8847, &mpls(&[16], &v4))).payload, LINE, "MPLS");
        let mut broadcast = cisco_hdlc(0x0800, &v4);
        broadcast[0] = 0x8f;
        assert_eq!(decode_tcp(link_type, &broadcast).payload, LINE);
        // SLARP keepalives are not IP; another address is no Cisco HDLC (nor PPP).
        assert_eq!(decode(link_type, &cisco_hdlc(0x8035, &[0; 20])), Err(SkipReason::NotIp));
        let mut unknown_address = cisco_hdlc(0x0800, &v4);
        unknown_address[0] = 0x03;
        assert_eq!(decode(link_type, &unknown_address), Err(SkipReason::Malformed));
        assert_eq!(decode(link_type, &[0x0f, 0x00, 0x08]), Err(SkipReason::Truncated));
    }
}

#[test]
fn ppp_ether_captures_start_with_the_pppoe_header() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    assert_eq!(decode_tcp(LinkType::PPP_ETHER, &pppoe(0, 0x0021, &v4)).payload, LINE);
    assert_eq!(decode(LinkType::PPP_ETHER, &pppoe(0, 0xc021, &[0; 20])), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::PPP_ETHER, &pppoe(0x09, 0x0021, &v4)), Err(SkipReason::Malformed));
    assert_eq!(decode(LinkType::PPP_ETHER, &[0x11]), Err(SkipReason::Truncated));
}

/// An NFLOG record of `family` with the attributes given as (type, value), their lengths and
/// types in either byte order, each padded to a multiple of 4 bytes.
fn nflog(big_endian: bool, family: u8, attributes: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![family, 0, 0, 1];
    for (tlv_type, value) in attributes {
        let length = u16::try_from(4 + value.len()).unwrap();
        let (length, tlv_type) = if big_endian {
            (length.to_be_bytes(), tlv_type.to_be_bytes())
        } else {
            (length.to_le_bytes(), tlv_type.to_le_bytes())
        };
        out.extend_from_slice(&length);
        out.extend_from_slice(&tlv_type);
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

#[test]
fn nflog_records_in_either_byte_order() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let prefix: &[u8] = b"in\0";
    for big_endian in [false, true] {
        let record = nflog(big_endian, 2, &[(1, &[8, 0, 1, 0]), (10, prefix), (9, &v4)]);
        assert_eq!(decode_tcp(LinkType::NFLOG, &record).payload, LINE, "big-endian: {big_endian}");
        let record6 = nflog(big_endian, 10, &[(10, prefix), (9, &v6)]);
        assert_eq!(decode_tcp(LinkType::NFLOG, &record6).src, IpAddr::from(CLIENT6));
        // An attribute of type 0 says nothing of the byte order: the next one does.
        let unspecified = nflog(big_endian, 2, &[(0, &[0; 4]), (9, &v4)]);
        assert_eq!(decode_tcp(LinkType::NFLOG, &unspecified).payload, LINE);
        // A type's top bit says it nests attributes, and is no part of the type (as Wireshark
        // reads it).
        let flagged = nflog(big_endian, 2, &[(1, &[8, 0, 1, 0]), (0x8009, &v4)]);
        assert_eq!(decode_tcp(LinkType::NFLOG, &flagged).payload, LINE);
    }
    // Cut by the snap length inside the packet: what there is of it.
    let record = nflog(false, 2, &[(9, &v4)]);
    let cut = decode_tcp(LinkType::NFLOG, &record[..8 + v4.len() - 5]);
    assert_eq!((cut.payload.as_slice(), cut.missing), (&LINE[..LINE.len() - 5], 5));
}

#[test]
fn nflog_records_without_an_ip_packet() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    // Logged with a copy range of 0 (no payload attribute); a bridge family record.
    assert_eq!(decode(LinkType::NFLOG, &nflog(false, 2, &[(1, &[8, 0, 1, 0]), (10, b"x\0")])), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::NFLOG, &nflog(false, 7, &[(9, &v4)])), Err(SkipReason::NotIp));
    // An attribute shorter than its own header; attributes cut short before the packet.
    let mut short = nflog(false, 2, &[(1, &[8, 0, 1, 0]), (10, b"x\0"), (9, &v4)]);
    short[12] = 2;
    assert_eq!(decode(LinkType::NFLOG, &short), Err(SkipReason::Malformed));
    let record = nflog(false, 2, &[(10, b"a longer prefix\0"), (9, &v4)]);
    assert_eq!(decode(LinkType::NFLOG, &record[..10]), Err(SkipReason::Truncated));
    assert_eq!(decode(LinkType::NFLOG, &record[..22]), Err(SkipReason::Truncated));
    assert_eq!(decode(LinkType::NFLOG, &[2, 0]), Err(SkipReason::Truncated));
}

/// A PKTAP header of `length` bytes (little-endian fields, the rest zero) with a record type and
/// the DLT of `frame`, which follows it.
fn pktap(length: u32, record_type: u32, dlt: u32, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0; length as usize];
    out[0..4].copy_from_slice(&length.to_le_bytes());
    out[4..8].copy_from_slice(&record_type.to_le_bytes());
    out[8..12].copy_from_slice(&dlt.to_le_bytes());
    out.extend_from_slice(frame);
    out
}

#[test]
fn pktap_headers_lead_to_the_frame_they_name() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let frames = [
        pktap(108, 1, 1, &ethernet(0x0800, &v4)),
        pktap(156, 1, 1, &ethernet(0x0800, &v4)),
        pktap(108, 1, 12, &v4),
        pktap(108, 1, 0, &with_prefix(30u32.to_le_bytes(), &ipv6_tcp(CLIENT6, SERVER6, LINE))),
    ];
    for frame in &frames {
        assert_eq!(decode_tcp(LinkType::PKTAP, frame).payload, LINE);
    }
    // No frame after the header; a header shorter than version 1's, or cut short.
    assert_eq!(decode(LinkType::PKTAP, &pktap(108, 0, 1, &[])), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::PKTAP, &pktap(104, 1, 1, &ethernet(0x0800, &v4))), Err(SkipReason::Malformed));
    assert_eq!(decode(LinkType::PKTAP, &frames[1][..150]), Err(SkipReason::Truncated));
    assert_eq!(decode(LinkType::PKTAP, &frames[1][..10]), Err(SkipReason::Truncated));
    // A frame of a type not read is named by its own type.
    let mut decoder = Decoder::new();
    let bluetooth = pktap(108, 1, 187, &[0; 20]);
    assert_eq!(decode_at(&mut decoder, LinkType::PKTAP, &bluetooth, 0), Err(SkipReason::UnsupportedLinkType));
    assert_eq!(link::innermost_link_type(LinkType::PKTAP, &bluetooth), LinkType(187));
}

#[test]
fn capture_headers_never_nest() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let inner = pktap(108, 1, 1, &ethernet(0x0800, &v4));
    assert_eq!(decode(LinkType::PKTAP, &pktap(108, 1, 258, &inner)), Err(SkipReason::Malformed));
    assert_eq!(
        decode(LinkType::PKTAP, &pktap(108, 1, 192, &ppi(false, 0, 1, &ethernet(0x0800, &v4)))),
        Err(SkipReason::Malformed)
    );
    assert_eq!(decode(LinkType::PPI, &ppi(false, 0, 258, &inner)), Err(SkipReason::Malformed));
    // Alternating headers as deep as a frame allows end at the second, whatever the depth.
    let mut deep = ethernet(0x0800, &v4);
    for level in 0..=2000 {
        deep = if level % 2 == 0 { pktap(108, 1, 192, &deep) } else { ppi(false, 0, 258, &deep) };
    }
    assert_eq!(decode(LinkType::PKTAP, &deep), Err(SkipReason::Malformed));
}

/// A pflog header whose length byte says `length` (padded to a multiple of 4 bytes, the rest
/// zero) and whose family is `family`, before `packet`.
fn pflog(length: u8, family: u8, packet: &[u8]) -> Vec<u8> {
    let mut out = vec![0; usize::from(length).next_multiple_of(4)];
    out[0] = length;
    out[1] = family;
    out.extend_from_slice(packet);
    out
}

#[test]
fn pflog_headers_padded_to_4_bytes_before_the_packet() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    // NetBSD's and macOS's 61 bytes (padded to 64), FreeBSD's 69 (72), OpenBSD's 100; IPv6 as
    // each BSD numbers it.
    for length in [61, 69, 100] {
        assert_eq!(decode_tcp(LinkType::PFLOG, &pflog(length, 2, &v4)).payload, LINE, "{length}");
        for family in [24, 28, 30] {
            assert_eq!(decode_tcp(LinkType::PFLOG, &pflog(length, family, &v6)).src, IpAddr::from(CLIENT6));
        }
    }
    assert_eq!(decode(LinkType::PFLOG, &pflog(61, 17, &v4)), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::PFLOG, &pflog(44, 2, &v4)), Err(SkipReason::Malformed));
    assert_eq!(decode(LinkType::PFLOG, &pflog(61, 2, &v4)[..62]), Err(SkipReason::Truncated));
    assert_eq!(decode(LinkType::PFLOG, &[]), Err(SkipReason::Truncated));
}

#[test]
fn enc_headers_in_either_byte_order() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let enc = |family: [u8; 4], packet: &[u8]| [&family[..], &[0x10, 0, 0, 1, 0, 0x0c, 0, 0], packet].concat();
    assert_eq!(decode_tcp(LinkType::ENC, &enc(2u32.to_le_bytes(), &v4)).payload, LINE);
    assert_eq!(decode_tcp(LinkType::ENC, &enc(2u32.to_be_bytes(), &v4)).payload, LINE);
    assert_eq!(decode_tcp(LinkType::ENC, &enc(24u32.to_be_bytes(), &v6)).dst, IpAddr::from(SERVER6));
    assert_eq!(decode(LinkType::ENC, &enc(7u32.to_le_bytes(), &v4)), Err(SkipReason::NotIp));
    assert_eq!(decode(LinkType::ENC, &enc(2u32.to_le_bytes(), &[])[..11]), Err(SkipReason::Truncated));
}

#[test]
fn ipnet_headers_name_the_solaris_family() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let ipnet = |family: u8, packet: &[u8]| {
        let mut out = vec![2, family, 0, 1];
        out.extend_from_slice(&u32::try_from(packet.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(packet);
        out
    };
    assert_eq!(decode_tcp(LinkType::IPNET, &ipnet(2, &v4)).payload, LINE);
    assert_eq!(decode_tcp(LinkType::IPNET, &ipnet(26, &v6)).src, IpAddr::from(CLIENT6));
    assert_eq!(decode(LinkType::IPNET, &ipnet(10, &v6)), Err(SkipReason::NotIp), "Linux's AF_INET6 is not Solaris's");
    assert_eq!(decode(LinkType::IPNET, &ipnet(2, &v4)[..23]), Err(SkipReason::Truncated));
}

/// A netANALYZER header (version 1, `flags` or'ed in) before `ethernet`, behind a preamble of
/// `preamble` octets and the start frame delimiter in transparent mode, and a frame check
/// sequence (not checked: zeros).
fn netanalyzer(flags: u32, transparent: bool, preamble: usize, ethernet: &[u8]) -> Vec<u8> {
    let mode = if transparent { 0x200 } else { 0 };
    let mut out = (flags | mode | 1 << 10 | u32::try_from(ethernet.len() + 4).unwrap() << 16).to_le_bytes().to_vec();
    if transparent {
        out.extend(std::iter::repeat_n(0x55, preamble));
        out.push(0xd5);
    }
    out.extend_from_slice(ethernet);
    out.extend_from_slice(&[0; 4]);
    out
}

#[test]
fn netanalyzer_frames_plain_and_transparent() {
    let frame = ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    assert_eq!(decode_tcp(LinkType::NETANALYZER, &netanalyzer(0, false, 0, &frame)).payload, LINE);
    // The preamble is as long as it was on the wire (the header flags one not 7 bytes long).
    for preamble in [7, 6, 8] {
        let flags = if preamble == 7 { 0 } else { 0xc0 };
        let captured = netanalyzer(flags, true, preamble, &frame);
        assert_eq!(decode_tcp(LinkType::NETANALYZER_TRANSPARENT, &captured).payload, LINE, "{preamble}");
    }
    let mut no_delimiter = netanalyzer(0, true, 7, &frame);
    no_delimiter[11] = 0x5d;
    assert_eq!(decode(LinkType::NETANALYZER_TRANSPARENT, &no_delimiter), Err(SkipReason::Malformed));
    assert_eq!(decode(LinkType::NETANALYZER_TRANSPARENT, &no_delimiter[..11]), Err(SkipReason::Truncated));
    for link_type in [LinkType::NETANALYZER, LinkType::NETANALYZER_TRANSPARENT] {
        let transparent = link_type == LinkType::NETANALYZER_TRANSPARENT;
        // A GPIO event is no frame, whatever its bytes; another header version is not read.
        assert_eq!(decode(link_type, &netanalyzer(0x100, transparent, 7, &frame)), Err(SkipReason::NotIp));
        let mut version_two = netanalyzer(0, transparent, 7, &frame);
        version_two[1] ^= 0x0c;
        assert_eq!(decode(link_type, &version_two), Err(SkipReason::Malformed));
        assert_eq!(decode(link_type, &[0, 4, 0]), Err(SkipReason::Truncated));
        // Frames received with errors are not what was sent; a frame too long is merely cut.
        let mut decoder = Decoder::new();
        for flags in [0x01, 0x02, 0x04] {
            let damaged = netanalyzer(flags, transparent, 7, &frame);
            assert_eq!(decode_at(&mut decoder, link_type, &damaged, 0), Err(SkipReason::FailedFrameCheck));
        }
        assert_eq!(decoder.stats.failed_frame_check, 3);
        assert_eq!(decode_tcp(link_type, &netanalyzer(0x08, transparent, 7, &frame)).payload, LINE);
    }
}

/// An ERF record of `record_type` with `flags`, `extensions` extension headers (chained by their
/// first bit), the Ethernet subheader when the type is an Ethernet one, then `payload`.
fn erf(record_type: u8, flags: u8, extensions: usize, payload: &[u8]) -> Vec<u8> {
    let ethernet = [2, 11, 16, 20].contains(&record_type);
    let chained = if extensions > 0 { 0x80 } else { 0 };
    let mut out = vec![0; 8];
    out.extend_from_slice(&[record_type | chained, flags]);
    let length = 16 + 8 * extensions + if ethernet { 2 } else { 0 } + payload.len();
    out.extend_from_slice(&u16::try_from(length).unwrap().to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    for number in 0..extensions {
        let more = if number + 1 < extensions { 0x80 } else { 0 };
        out.extend_from_slice(&[16 | more, 1, 2, 3, 4, 5, 6, 7]);
    }
    if ethernet {
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(payload);
    out
}

#[test]
fn erf_records_of_ethernet_and_ip() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let frame = ethernet(0x0800, &v4);
    for record_type in [2, 11, 16, 20] {
        for extensions in [0, 1, 3] {
            let record = erf(record_type, 0x04, extensions, &frame);
            assert_eq!(decode_tcp(LinkType::ERF, &record).payload, LINE, "type {record_type}, {extensions}");
        }
    }
    assert_eq!(decode_tcp(LinkType::ERF, &erf(22, 0x04, 1, &v4)).payload, LINE);
    assert_eq!(decode_tcp(LinkType::ERF, &erf(23, 0x04, 0, &v6)).src, IpAddr::from(CLIENT6));
    // A record padded to the card's snap length: the IP length leaves the padding out.
    let padded = erf(2, 0, 0, &[frame.as_slice(), &[0; 40]].concat());
    assert_eq!(decode_tcp(LinkType::ERF, &padded).payload, LINE);
    // An error in the card's data stream (not on the wire) leaves the bytes as they were.
    assert_eq!(decode_tcp(LinkType::ERF, &erf(2, 0x20, 0, &frame)).payload, LINE);
}

#[test]
fn erf_records_without_a_packet_read_here() {
    let frame = ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let mut decoder = Decoder::new();
    assert_eq!(decode_at(&mut decoder, LinkType::ERF, &erf(2, 0x10, 1, &frame), 0), Err(SkipReason::FailedFrameCheck));
    assert_eq!(decoder.stats.failed_frame_check, 1);
    // PoS HDLC, ATM, metadata and padding records.
    for record_type in [1, 3, 27, 48] {
        assert_eq!(decode(LinkType::ERF, &erf(record_type, 0, 0, &[0; 40])), Err(SkipReason::NotIp), "{record_type}");
    }
    // Cut in the header, in the extension headers, before the Ethernet subheader ends.
    let record = erf(2, 0, 2, &frame);
    for len in [15, 20, 33] {
        assert_eq!(decode(LinkType::ERF, &record[..len]), Err(SkipReason::Truncated), "{len}");
    }
}

#[test]
fn wifi_data_frames_bare_and_behind_radiotap() {
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let v6 = snap(0, 0x86dd, &ipv6_tcp(CLIENT6, SERVER6, LINE));
    let frames = [
        // Station to access point, and back.
        wifi_frame(0x08, 0x01, &[], &v4),
        wifi_frame(0x08, 0x02, &[], &v6),
        // QoS data; with an HT control field; between access points (four addresses).
        wifi_frame(0x88, 0x01, &[0x05, 0], &v4),
        wifi_frame(0x88, 0x81, &[0x05, 0, 1, 2, 3, 4], &v6),
        wifi_frame(0x88, 0x03, &[0x05, 0], &v4),
        // A retry, and the 802.1H bridge-tunnel encapsulation.
        wifi_frame(0x08, 0x09, &[], &snap(0xf8, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE))),
    ];
    for frame in &frames {
        assert_eq!(decode_tcp(LinkType::IEEE802_11, frame).payload, LINE);
        assert_eq!(decode_tcp(LinkType::IEEE802_11_RADIOTAP, &radiotap(frame)).payload, LINE);
    }
    assert_eq!(decode_tcp(LinkType::IEEE802_11, &frames[1]).src, IpAddr::from(CLIENT6));
}

#[test]
fn wifi_frames_without_a_packet_to_read() {
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let mut decoder = Decoder::new();
    let protected = wifi_frame(0x88, 0x41, &[0, 0], &v4);
    assert_eq!(decode_at(&mut decoder, LinkType::IEEE802_11, &protected, 0), Err(SkipReason::Encrypted));
    assert_eq!(
        decode_at(&mut decoder, LinkType::IEEE802_11_RADIOTAP, &radiotap(&protected), 0),
        Err(SkipReason::Encrypted)
    );
    assert_eq!(decoder.stats.encrypted, 2);
    let not_ip = [
        wifi_frame(0x80, 0, &[], &v4),                                   // a beacon (management)
        wifi_frame(0xd4, 0, &[], &[]),                                   // an ACK (control)
        wifi_frame(0x48, 0x01, &[], &[]),                                // null data
        wifi_frame(0x08, 0x01, &[], &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]), // spanning tree LLC
        wifi_frame(0x08, 0x01, &[], &snap(0, 0x0806, &[0; 28])),         // ARP
    ];
    for frame in &not_ip {
        assert_eq!(decode(LinkType::IEEE802_11, frame), Err(SkipReason::NotIp), "{frame:02x?}");
    }
    assert_eq!(decode(LinkType::IEEE802_11, &wifi_frame(0x09, 0x01, &[], &v4)), Err(SkipReason::Malformed));
    let mut radiotap_v1 = radiotap(&wifi_frame(0x08, 0x01, &[], &v4));
    radiotap_v1[0] = 1;
    assert_eq!(decode(LinkType::IEEE802_11_RADIOTAP, &radiotap_v1), Err(SkipReason::Malformed));
    assert_eq!(decode(LinkType::IEEE802_11_RADIOTAP, &[0, 0, 200, 0, 0, 0, 0, 0]), Err(SkipReason::Truncated));
    let full = radiotap(&wifi_frame(0x88, 0x83, &[0x05, 0, 1, 2, 3, 4], &v4));
    for len in 0..full.len() {
        let _ = decode_at(&mut decoder, LinkType::IEEE802_11_RADIOTAP, &full[..len], 0);
    }
    assert!(decoder.stats.truncated > 0);
}

/// A radiotap header with the TSF timer (so the flags lie after padding and 8 bytes), `extra`
/// presence bitmaps after the first, and `flags`; then `frame`.
fn radiotap_with(flags: u8, extra_bitmaps: usize, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0];
    let chained = |last: bool| if last { 0u32 } else { 1 << 31 };
    out.extend_from_slice(&(0x03 | chained(extra_bitmaps == 0)).to_le_bytes());
    for n in 0..extra_bitmaps {
        out.extend_from_slice(&chained(n + 1 == extra_bitmaps).to_le_bytes());
    }
    out.resize(out.len().next_multiple_of(8), 0);
    out.extend_from_slice(&1_000_000u64.to_le_bytes());
    out.push(flags);
    let len = u16::try_from(out.len()).unwrap();
    out[2..4].copy_from_slice(&len.to_le_bytes());
    out.extend_from_slice(frame);
    out
}

#[test]
fn radiotap_flags_after_the_tsf_timer_are_read() {
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let qos = wifi_frame(0x88, 0x01, &[0x05, 0], &v4);
    for extra in 0..3 {
        assert_eq!(decode_tcp(LinkType::IEEE802_11_RADIOTAP, &radiotap_with(0, extra, &qos)).payload, LINE);
    }
    // A frame that failed its frame check is counted, not decoded.
    let mut decoder = Decoder::new();
    for extra in 0..3 {
        assert_eq!(
            decode_at(&mut decoder, LinkType::IEEE802_11_RADIOTAP, &radiotap_with(0x40, extra, &qos), 0),
            Err(SkipReason::FailedFrameCheck)
        );
    }
    assert_eq!(decoder.stats.failed_frame_check, 3);
    // Radiotap says the 802.11 header is padded to a multiple of 4 bytes: the QoS header's 26
    // bytes are followed by 2 bytes of padding; headers already aligned get none.
    let mut padded = wifi_frame(0x88, 0x01, &[0x05, 0], &[]);
    padded.extend_from_slice(&[0, 0]);
    padded.extend_from_slice(&v4);
    assert_eq!(decode_tcp(LinkType::IEEE802_11_RADIOTAP, &radiotap_with(0x20, 0, &padded)).payload, LINE);
    assert_eq!(decode(LinkType::IEEE802_11_RADIOTAP, &radiotap_with(0, 0, &padded)), Err(SkipReason::NotIp));
    let plain = wifi_frame(0x08, 0x01, &[], &v4);
    assert_eq!(decode_tcp(LinkType::IEEE802_11_RADIOTAP, &radiotap_with(0x20, 1, &plain)).payload, LINE);
    // Flags said present but past the header's end, or bitmaps running past it: malformed.
    let mut short = radiotap_with(0, 0, &qos);
    short[2] = 16;
    assert_eq!(decode(LinkType::IEEE802_11_RADIOTAP, &short), Err(SkipReason::Malformed));
    let endless = [0, 0, 12, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(decode(LinkType::IEEE802_11_RADIOTAP, &endless), Err(SkipReason::Malformed));
    // No flags field at all: nothing set.
    let mut no_flags = vec![0, 0, 8, 0, 0, 0, 0, 0];
    no_flags.extend_from_slice(&plain);
    assert_eq!(decode_tcp(LinkType::IEEE802_11_RADIOTAP, &no_flags).payload, LINE);
}

/// An A-MSDU body: each packet in a subframe with addresses and its length, padded to 4 bytes
/// but the last.
fn amsdu(msdus: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, msdu) in msdus.iter().enumerate() {
        if n > 0 {
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        out.extend_from_slice(&u16::try_from(msdu.len()).unwrap().to_be_bytes());
        out.extend_from_slice(msdu);
    }
    out
}

/// Every packet of one frame: `decode`, then `decode_next` until it says there is no more.
fn decode_all(decoder: &mut Decoder, link_type: LinkType, data: &[u8]) -> Vec<Result<Seen, SkipReason>> {
    let frame = frame_at(link_type, data, 0);
    let seen = |decoded: Decoded<'_>| match decoded {
        Decoded::Tcp(packet) => Ok(seen(&packet)),
        Decoded::Skipped(reason) => Err(reason),
    };
    let mut all = vec![seen(decoder.decode(&frame))];
    while let Some(decoded) = decoder.decode_next(&frame) {
        all.push(seen(decoded));
    }
    all
}

#[test]
fn wifi_aggregates_yield_every_packet_they_hold() {
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let arp = snap(0, 0x0806, &[0; 28]);
    let v6 = snap(0, 0x86dd, &ipv6_tcp(CLIENT6, SERVER6, LINE));
    let body = amsdu(&[&v4, &arp, &v6]);
    let mut decoder = Decoder::new();
    for (link_type, frame) in [
        (LinkType::IEEE802_11, wifi_frame(0x88, 0x01, &[0x80, 0], &body)),
        // Behind radiotap with a frame check sequence after the last subframe; between access
        // points (four addresses).
        (LinkType::IEEE802_11_RADIOTAP, radiotap(&wifi_frame(0x88, 0x03, &[0x80, 0], &body))),
    ] {
        let all = decode_all(&mut decoder, link_type, &frame);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].as_ref().unwrap().src, IpAddr::from(CLIENT));
        assert_eq!(all[1], Err(SkipReason::NotIp));
        assert_eq!(all[2].as_ref().unwrap().src, IpAddr::from(CLIENT6));
        assert!(all.iter().flatten().all(|seen| seen.payload == LINE));
    }
    assert_eq!(decoder.stats.tcp, 4);
    // The next frame starts afresh: nothing is left of the aggregate before it.
    assert_eq!(decode_all(&mut decoder, LinkType::IEEE802_11, &wifi_frame(0x08, 0x01, &[], &v4)).len(), 1);
    // A subframe longer than what is left ends the aggregate there.
    let mut cut = wifi_frame(0x88, 0x01, &[0x80, 0], &amsdu(&[&v4, &v6]));
    cut.truncate(cut.len() - 10);
    let all = decode_all(&mut decoder, LinkType::IEEE802_11, &cut);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], Err(SkipReason::Truncated));
    // Cut anywhere, an aggregate never panics and always ends.
    let whole = wifi_frame(0x88, 0x01, &[0x80, 0], &body);
    for len in 0..whole.len() {
        assert!(decode_all(&mut decoder, LinkType::IEEE802_11, &whole[..len]).len() <= 3);
    }
}

/// A PPI header (`aligned`: fields on multiples of 4) with an odd-sized field of another type,
/// then an 802.11-Common field with `common_flags`, before a frame of `link_type`.
fn ppi(aligned: bool, common_flags: u16, link_type: u32, frame: &[u8]) -> Vec<u8> {
    let mut fields = vec![0x07, 0x00, 3, 0, 1, 2, 3];
    if aligned {
        fields.push(0);
    }
    let mut common = vec![0; 20];
    common[8..10].copy_from_slice(&common_flags.to_le_bytes());
    fields.extend_from_slice(&[2, 0, 20, 0]);
    fields.extend_from_slice(&common);
    let mut out = vec![0, u8::from(aligned)];
    out.extend_from_slice(&u16::try_from(8 + fields.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&link_type.to_le_bytes());
    out.extend_from_slice(&fields);
    out.extend_from_slice(frame);
    out
}

/// A Prism monitoring header (144 bytes, its length in the given byte order) before `frame`.
fn prism(big_endian: bool, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0; 144];
    out[0..4].copy_from_slice(&0x44u32.to_le_bytes());
    let length = if big_endian { 144u32.to_be_bytes() } else { 144u32.to_le_bytes() };
    out[4..8].copy_from_slice(&length);
    out[8..13].copy_from_slice(b"wlan0");
    out.extend_from_slice(frame);
    out
}

/// An AVS monitoring header (version 1, 64 bytes) before `frame`.
fn avs(frame: &[u8]) -> Vec<u8> {
    let mut out = vec![0; 64];
    out[0..4].copy_from_slice(&0x8021_1001u32.to_be_bytes());
    out[4..8].copy_from_slice(&64u32.to_be_bytes());
    out.extend_from_slice(frame);
    out
}

#[test]
fn older_wifi_monitoring_headers_are_read() {
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let wifi = wifi_frame(0x08, 0x01, &[], &v4);
    let frames = [
        (LinkType::PPI, ppi(false, 0x0001, 105, &wifi)),
        (LinkType::PPI, ppi(true, 0, 105, &wifi)),
        (LinkType::PPI, ppi(false, 0, 1, &ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE)))),
        (LinkType::IEEE802_11_PRISM, prism(false, &wifi)),
        (LinkType::IEEE802_11_PRISM, prism(true, &wifi)),
        (LinkType::IEEE802_11_PRISM, avs(&wifi)),
        (LinkType::IEEE802_11_AVS, avs(&wifi)),
    ];
    for (link_type, frame) in &frames {
        assert_eq!(decode_tcp(*link_type, frame).payload, LINE, "{link_type:?}");
    }
    let mut decoder = Decoder::new();
    for aligned in [false, true] {
        assert_eq!(
            decode_at(&mut decoder, LinkType::PPI, &ppi(aligned, 0x0005, 105, &wifi), 0),
            Err(SkipReason::FailedFrameCheck)
        );
    }
    assert_eq!(decoder.stats.failed_frame_check, 2);
    assert_eq!(decode(LinkType::PPI, &ppi(false, 0, 192, &ppi(false, 0, 105, &wifi))), Err(SkipReason::Malformed));
    let mut bad_magic = avs(&wifi);
    bad_magic[0] = 0x90;
    assert_eq!(decode(LinkType::IEEE802_11_AVS, &bad_magic), Err(SkipReason::Malformed));
    // A Prism header cut short is a truncated frame; a length no frame has in either byte order,
    // a malformed one.
    let prism_header = prism(false, &wifi);
    assert_eq!(decode(LinkType::IEEE802_11_PRISM, &prism_header[..100]), Err(SkipReason::Truncated));
    let mut bad_length = prism_header;
    bad_length[4..8].copy_from_slice(&0x0101_0101u32.to_le_bytes());
    assert_eq!(decode(LinkType::IEEE802_11_PRISM, &bad_length), Err(SkipReason::Malformed));
    for (link_type, frame) in &frames {
        for len in 0..frame.len() {
            let _ = decode_at(&mut decoder, *link_type, &frame[..len], 0);
        }
    }
}

#[test]
fn unsupported_link_type_is_counted() {
    let mut decoder = Decoder::new();
    let result = decode_at(&mut decoder, LinkType(147), &[0; 40], 0);
    assert_eq!(result, Err(SkipReason::UnsupportedLinkType));
    assert_eq!(decoder.stats.unsupported_link_type, 1);
}

// ---- IP ----

#[test]
fn ipv4_options_and_authentication_header() {
    let segment = tcp_segment(LINE);
    let inner = auth_header(6, &segment);
    let mut header = Ipv4Header::new(0, 64, IpNumber::AUTHENTICATION_HEADER, CLIENT, SERVER).unwrap();
    header.options = Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).unwrap();
    header.set_payload_len(inner.len()).unwrap();
    let mut packet = Vec::new();
    header.write(&mut packet).unwrap();
    packet.extend_from_slice(&inner);
    let seen = decode_tcp(LinkType::RAW, &packet);
    assert_eq!(seen.payload, LINE);
    assert_eq!(seen.dst_port, IMAP_PORT);
}

#[test]
fn ipv6_extension_headers() {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const DESTINATION: u8 = 60;
    const AUTH: u8 = 51;
    // hop-by-hop → routing → atomic fragment (offset 0, no more) → AH → destination → TCP
    let destination = ipv6_extension(6, &tcp_segment(LINE));
    let auth = auth_header(DESTINATION, &destination);
    let mut atomic_fragment = Vec::new();
    Ipv6FragmentHeader::new(IpNumber(AUTH), IpFragOffset::ZERO, false, 9).write(&mut atomic_fragment).unwrap();
    atomic_fragment.extend_from_slice(&auth);
    let routing = ipv6_extension(FRAGMENT, &atomic_fragment);
    let hop_by_hop = ipv6_extension(ROUTING, &routing);
    let packet = ipv6_outer(HOP_BY_HOP, &hop_by_hop);
    let seen = decode_tcp(LinkType::RAW, &packet);
    assert_eq!(seen.payload, LINE);
    assert_eq!(seen.src, IpAddr::from(CLIENT6));
}

#[test]
fn non_tcp_is_rejected_and_counted() {
    let mut decoder = Decoder::new();
    let mut udp_packet = Vec::new();
    PacketBuilder::ipv4(CLIENT, SERVER, 64).udp(53, 53).write(&mut udp_packet, b"q").unwrap();
    let icmp = ipv4_outer(1, CLIENT, SERVER, &[8, 0, 0, 0, 0, 0, 0, 0]);
    let esp = ipv6_outer(50, &[0; 16]);
    for packet in [&udp_packet, &icmp, &esp] {
        assert_eq!(decode_at(&mut decoder, LinkType::RAW, packet, 0), Err(SkipReason::NotTcp));
    }
    let arp = ethernet(0x0806, &[0; 28]);
    assert_eq!(decode_at(&mut decoder, LinkType::ETHERNET, &arp, 0), Err(SkipReason::NotIp));
    let garbage_version = [0x50; 40];
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &garbage_version, 0), Err(SkipReason::Malformed));
    assert_eq!(decoder.stats.not_tcp, 3);
    assert_eq!(decoder.stats.not_ip, 1);
    assert_eq!(decoder.stats.malformed, 1);
    assert_eq!(decoder.stats.tcp, 0);
}

#[test]
fn snaplen_cut_frame_reports_missing_payload() {
    let line = long_line(400);
    let frame = ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, &line));
    let snaplen = 14 + 20 + 20 + 100;
    let mut decoder = Decoder::new();
    let seen = decode_at(&mut decoder, LinkType::ETHERNET, &frame[..snaplen], 0).unwrap();
    assert_eq!(seen.payload, line[..100]);
    assert_eq!(seen.missing, 300);

    let frame6 = ethernet(0x86dd, &ipv6_tcp(CLIENT6, SERVER6, &line));
    let seen = decode_at(&mut decoder, LinkType::ETHERNET, &frame6[..14 + 40 + 20 + 10], 0).unwrap();
    assert_eq!((seen.payload.len(), seen.missing), (10, 390));

    let cut_in_tcp_header = &frame[..14 + 20 + 10];
    assert_eq!(decode_at(&mut decoder, LinkType::ETHERNET, cut_in_tcp_header, 0), Err(SkipReason::Truncated));
    assert_eq!(decoder.stats.truncated, 1);
    assert_eq!(decoder.stats.tcp, 2);
}

#[test]
fn segmentation_offload_zero_length_uses_the_capture() {
    let mut packet = ipv4_tcp(CLIENT, SERVER, LINE);
    packet[2..4].copy_from_slice(&[0, 0]);
    let seen = decode_tcp(LinkType::RAW, &packet);
    assert_eq!((seen.payload.as_slice(), seen.missing), (LINE, 0));
}

// ---- tunnels ----

fn inner_frame() -> Vec<u8> {
    ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE))
}

fn gre_over(outer_src: [u8; 4], outer_dst: [u8; 4], gre_packet: &[u8]) -> Vec<u8> {
    ethernet(0x0800, &ipv4_outer(47, outer_src, outer_dst, gre_packet))
}

fn assert_inner(seen: &Seen) {
    assert_eq!(seen.src, IpAddr::from(CLIENT));
    assert_eq!(seen.dst, IpAddr::from(SERVER));
    assert_eq!(seen.payload, LINE);
    assert_ne!(seen.tunnel, 0);
}

#[test]
fn mpls_label_stack_to_ip() {
    let v4 = ethernet(0x8847, &mpls(&[16, 17, 18], &ipv4_tcp(CLIENT, SERVER, LINE)));
    let seen = decode_tcp(LinkType::ETHERNET, &v4);
    assert_eq!((seen.payload.as_slice(), seen.tunnel), (LINE, 0));
    let v6 = tagged(&[(0x8100, 5)], 0x8848, &mpls(&[100], &ipv6_tcp(CLIENT6, SERVER6, LINE)));
    let seen = decode_tcp(LinkType::ETHERNET, &v6);
    assert_eq!((seen.vlan.as_slice(), seen.tunnel), (&[5][..], 0));
    assert_eq!(decode(LinkType::ETHERNET, &ethernet(0x8847, &mpls(&[16], &[0x90; 20]))), Err(SkipReason::NotIp));
}

#[test]
fn mpls_pseudowire_with_control_word() {
    let inner = tagged(&[(0x8100, 30)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let frame = tagged(&[(0x8100, 9)], 0x8847, &mpls(&[16, 17], &with_prefix([0; 4], &inner)));
    let seen = decode_tcp(LinkType::ETHERNET, &frame);
    assert_inner(&seen);
    assert_eq!(seen.vlan, [30]);
    // A source address whose third and fourth bytes read as an ethertype (00:60:08:00:…) where
    // a frame without control word has its own: what follows does not fit, the word is there.
    for source in
        [[0x00, 0x60, 0x08, 0x00, 0x12, 0x34], [0x00, 0x60, 0x08, 0x06, 0x12, 0x34], [0x00, 0x60, 0x88, 0x64, 0, 1]]
    {
        let mut inner = ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
        inner[6..12].copy_from_slice(&source);
        let frame = ethernet(0x8847, &mpls(&[16], &with_prefix([0; 4], &inner)));
        assert_inner(&decode_tcp(LinkType::ETHERNET, &frame));
    }
}

#[test]
fn mpls_pseudowire_without_control_word() {
    // RFC 4448 makes the control word optional. A frame whose destination address starts with a
    // zero nibble (Intel's 00:1b:21) must not be taken for one; nor any other address for IP.
    for first_bytes in [[0x00, 0x1b], [0x0a, 0x00], [0xa4, 0xbb], [0x02, 0x00]] {
        let mut inner = tagged(&[(0x8100, 30)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
        inner[..2].copy_from_slice(&first_bytes);
        let frame = ethernet(0x8847, &mpls(&[16], &inner));
        let seen = decode_tcp(LinkType::ETHERNET, &frame);
        assert_inner(&seen);
        assert_eq!(seen.vlan, [30], "{first_bytes:02x?}");
    }
    let not_ethernet = ethernet(0x8847, &mpls(&[16], &[0xa0; 40]));
    assert_eq!(decode(LinkType::ETHERNET, &not_ethernet), Err(SkipReason::NotIp));
}

#[test]
fn mpls_pseudowire_frames_with_port_extender_and_backbone_tags() {
    // Frames whose destination address starts with a nibble other than zero: without a control
    // word, only their ethertype says they are frames at all.
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let customer = ethernet(0x0800, &v4);
    let frames = [
        tag_then(0x8926, &[0, 0, 0, 5], 0x0800, &v4),
        tag_then(0x893f, &[0, 3, 0, 0, 0, 0], 0x0800, &v4),
        tag_then(0x8909, &[1, 1, 0, 1, 0, 42], 0x0800, &v4),
        ethernet(0x88e7, &[&[0, 0x12, 0x34, 0x56][..], &customer].concat()),
    ];
    for mut inner in frames {
        let tag_protocol = [inner[12], inner[13]];
        inner[0] = 0xa4;
        let frame = ethernet(0x8847, &mpls(&[16], &inner));
        assert_eq!(decode_tcp(LinkType::ETHERNET, &frame).payload, LINE, "{tag_protocol:02x?}");
        // Behind a zero nibble with a control word, the tagged frame is still read whole.
        inner[0] = 0x00;
        let with_word = ethernet(0x8847, &mpls(&[16], &with_prefix([0; 4], &inner)));
        assert_eq!(decode_tcp(LinkType::ETHERNET, &with_word).payload, LINE, "{tag_protocol:02x?}");
        // Without one, the frame fits its tag and is taken as it stands.
        let without_word = ethernet(0x8847, &mpls(&[16], &inner));
        assert_eq!(decode_tcp(LinkType::ETHERNET, &without_word).payload, LINE, "{tag_protocol:02x?}");
    }
}

#[test]
fn vlan_id_zero_is_a_priority_tag_not_a_vlan() {
    // 802.1Q priority tagging (VID 0, priority bits set or not): the frame is on the port's own
    // VLAN, so one direction tagged so and the other untagged is one connection.
    for tag in [0x0000, 0xa000] {
        let frame = tagged(&[(0x8100, tag)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
        let seen = decode_tcp(LinkType::ETHERNET, &frame);
        assert!(seen.vlan.is_empty(), "{tag:#x}: {:?}", seen.vlan);
        assert_eq!(seen.payload, LINE);
    }
    let inner_priority = tagged(&[(0x88a8, 7), (0x8100, 0)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    assert_eq!(decode_tcp(LinkType::ETHERNET, &inner_priority).vlan, [7]);
}

#[test]
fn gre_carrying_ip_with_optional_fields() {
    let inner = ipv4_tcp(CLIENT, SERVER, LINE);
    let plain = decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &gre(0, 0x0800, &[], &inner)));
    assert_inner(&plain);
    let all_fields = gre(GRE_CHECKSUM | GRE_KEY | GRE_SEQUENCE, 0x0800, &[0, 77, 5], &inner);
    let keyed = decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &all_fields));
    assert_inner(&keyed);
    assert_ne!(keyed.tunnel, plain.tunnel, "the GRE key is part of the tunnel identity");
    let v6 = gre(0, 0x86dd, &[], &ipv6_tcp(CLIENT6, SERVER6, LINE));
    assert_eq!(decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &v6)).payload, LINE);
}

#[test]
fn gre_with_source_routes() {
    let routes = [0x0800u16.to_be_bytes(), [0, 4]].concat();
    let mut body = routes;
    body.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 0]);
    body.extend_from_slice(&ipv4_tcp(CLIENT, SERVER, LINE));
    let packet = gre(0x4000, 0x0800, &[0], &body);
    assert_inner(&decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &packet)));
}

#[test]
fn gre_transparent_ethernet_records_inner_vlan() {
    let inner = tagged(&[(0x8100, 12)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let frame = gre_over(TUNNEL_A, TUNNEL_B, &gre(GRE_KEY, 0x6558, &[1], &inner));
    let seen = decode_tcp(LinkType::ETHERNET, &frame);
    assert_inner(&seen);
    assert_eq!(seen.vlan, [12]);
}

#[test]
fn erspan_types_one_two_three() {
    let type_one = gre(0, 0x88be, &[], &inner_frame());
    let type_two_a = gre(GRE_SEQUENCE, 0x88be, &[1], &erspan_ii(10, &inner_frame()));
    let type_two_b = gre(GRE_SEQUENCE, 0x88be, &[2], &erspan_ii(11, &inner_frame()));
    let type_three = gre(GRE_SEQUENCE, 0x22eb, &[3], &erspan_iii(10, false, &inner_frame()));
    let type_three_sub = gre(GRE_SEQUENCE, 0x22eb, &[4], &erspan_iii(10, true, &inner_frame()));
    let mut tunnels = Vec::new();
    for packet in [type_one, type_two_a, type_two_b, type_three, type_three_sub] {
        let seen = decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &packet));
        assert_inner(&seen);
        tunnels.push(seen.tunnel);
    }
    assert_ne!(tunnels[1], tunnels[2], "sessions 10 and 11 differ");
    assert_eq!(tunnels[1], tunnels[3], "same session and outer addresses");
    assert_eq!(tunnels[3], tunnels[4]);
    let wrong_version = gre(GRE_SEQUENCE, 0x22eb, &[3], &erspan_ii(10, &inner_frame()));
    assert_eq!(decode(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &wrong_version)), Err(SkipReason::Malformed));
}

#[test]
fn vxlan_with_inner_vlan() {
    let inner = tagged(&[(0x8100, 33)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let outer = |vni| ethernet(0x0800, &ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(4789, &vxlan(vni, &inner))));
    let first = decode_tcp(LinkType::ETHERNET, &outer(5000));
    assert_inner(&first);
    assert_eq!(first.vlan, [33]);
    let other_vni = decode_tcp(LinkType::ETHERNET, &outer(5001));
    assert_ne!(first.tunnel, other_vni.tunnel);
    let not_a_tunnel = ethernet(0x0800, &ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(4788, &vxlan(1, &inner))));
    assert_eq!(decode(LinkType::ETHERNET, &not_a_tunnel), Err(SkipReason::NotTcp));
}

#[test]
fn vxlan_on_the_linux_port_needs_its_vni_flag() {
    let over = |port, payload: &[u8]| ethernet(0x0800, &ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(port, payload)));
    let vxlan_frame = vxlan(42, &inner_frame());
    let linux = decode_tcp(LinkType::ETHERNET, &over(8472, &vxlan_frame));
    assert_inner(&linux);
    assert_eq!(linux.tunnel, decode_tcp(LinkType::ETHERNET, &over(4789, &vxlan_frame)).tunnel, "one VNI, one tunnel");
    // Other traffic on 8472 (no VNI flag), or nothing at all, is not a tunnel.
    let mut flagless = vxlan_frame.clone();
    flagless[0] = 0;
    assert_eq!(decode(LinkType::ETHERNET, &over(8472, &flagless)), Err(SkipReason::NotTcp));
    assert_eq!(decode(LinkType::ETHERNET, &over(8472, &[])), Err(SkipReason::NotTcp));
}

#[test]
fn geneve_by_protocol_type() {
    let ip_inner = geneve(7, 0x0800, 2, &ipv4_tcp(CLIENT, SERVER, LINE));
    let ethernet_inner = geneve(7, 0x6558, 0, &inner_frame());
    for payload in [ip_inner, ethernet_inner] {
        let frame = ipv6_outer(17, &udp(6081, &payload));
        assert_inner(&decode_tcp(LinkType::RAW, &frame));
    }
    let bad_version = [&[0x40u8, 0, 0x08, 0, 0, 0, 7, 0][..], &ipv4_tcp(CLIENT, SERVER, LINE)].concat();
    assert_eq!(decode(LinkType::RAW, &ipv6_outer(17, &udp(6081, &bad_version))), Err(SkipReason::Malformed));
}

#[test]
fn ip_in_ip_and_6in4() {
    let four_in_four = ipv4_outer(4, TUNNEL_A, TUNNEL_B, &ipv4_tcp(CLIENT, SERVER, LINE));
    assert_inner(&decode_tcp(LinkType::RAW, &four_in_four));
    let six_in_four = ipv4_outer(41, TUNNEL_A, TUNNEL_B, &ipv6_tcp(CLIENT6, SERVER6, LINE));
    let seen = decode_tcp(LinkType::RAW, &six_in_four);
    assert_eq!((seen.src, seen.payload.as_slice()), (IpAddr::from(CLIENT6), LINE));
    assert_ne!(seen.tunnel, 0);
}

#[test]
fn same_inner_addresses_in_different_tunnels_do_not_mix() {
    let inner = ipv4_tcp(CLIENT, SERVER, LINE);
    let via = |src, dst| decode_tcp(LinkType::RAW, &ipv4_outer(4, src, dst, &inner)).tunnel;
    assert_ne!(via(TUNNEL_A, TUNNEL_B), via(TUNNEL_A, TUNNEL_C));
    assert_eq!(via(TUNNEL_A, TUNNEL_B), via(TUNNEL_B, TUNNEL_A), "both directions of one tunnel");
    let gre_ip = gre(0, 0x0800, &[], &inner);
    let over_gre = decode_tcp(LinkType::RAW, &ipv4_outer(47, TUNNEL_A, TUNNEL_B, &gre_ip)).tunnel;
    assert_ne!(over_gre, via(TUNNEL_A, TUNNEL_B), "GRE and IP-in-IP between the same hosts");
}

#[test]
fn teredo_carries_a_pop3_login_with_or_without_indicators() {
    let ends = TunnelEnds::new(TUNNEL_A, TUNNEL_B);
    let (line, _, plain) = decode_conversation(&[], CLIENT6.into(), SERVER6.into());
    let (_, _, in_ip) = decode_conversation(&[Encap::IpInIp { ends }], CLIENT6.into(), SERVER6.into());
    for indicators in [false, true] {
        let (_, decoder, seen) =
            decode_conversation(&[Encap::Teredo { ends, indicators }], CLIENT6.into(), SERVER6.into());
        assert_eq!(decoder.stats.tcp, 5, "handshake, greeting and login, indicators: {indicators}");
        assert_eq!(decoder.stats.tunnelled_tcp, 5);
        let login = login_of(&seen).unwrap();
        assert_eq!((login.payload.as_slice(), login.src), (line.as_slice(), IpAddr::from(CLIENT6)));
        assert!(seen.iter().all(|packet| packet.tunnel == login.tunnel), "both directions in one tunnel");
        assert_ne!(login.tunnel, 0);
        assert_ne!(login.tunnel, login_of(&plain).unwrap().tunnel, "never mixed with the same flow outside");
        assert_ne!(login.tunnel, login_of(&in_ip).unwrap().tunnel, "nor with 6in4 between the same hosts");
    }
}

#[test]
fn other_traffic_on_the_teredo_port_is_not_a_tunnel() {
    let ends = TunnelEnds::new(TUNNEL_A, TUNNEL_B);
    let login = |encap: Encap, client: IpAddr, server: IpAddr| {
        let mut conversation = Conversation::new((client, CLIENT_PORT), (server, 110));
        conversation.encap(encap).handshake().client(b"PASS secret\r\n").frames().unwrap()
    };
    // An IPv4 packet as the payload of UDP 3544: not IPv6.
    let frames = login(Encap::Udp { ends, port: TEREDO_PORT }, CLIENT.into(), SERVER.into());
    let (decoder, seen) = decode_frames(&frames);
    assert!(seen.is_empty());
    assert_eq!(decoder.stats.not_tcp, frames.len() as u64);
    // IPv6 whose length is not what the datagram holds.
    let mut frames = login(Encap::Teredo { ends, indicators: false }, CLIENT6.into(), SERVER6.into());
    for frame in &mut frames {
        let payload_length = 14 + 20 + 8 + 4;
        frame.data[payload_length + 1] ^= 0x08;
    }
    let (decoder, seen) = decode_frames(&frames);
    assert!(seen.is_empty());
    assert_eq!(decoder.stats.not_tcp, frames.len() as u64);
    // Authentication indicator lengths running past the datagram.
    let mut frames = login(Encap::Teredo { ends, indicators: true }, CLIENT6.into(), SERVER6.into());
    for frame in &mut frames {
        frame.data[14 + 20 + 8 + 2] = 0xff;
    }
    let (decoder, seen) = decode_frames(&frames);
    assert!(seen.is_empty());
    assert_eq!(decoder.stats.not_tcp, frames.len() as u64);
}

#[test]
fn outer_vlan_is_folded_into_the_tunnel() {
    let tunnel = ipv4_outer(4, TUNNEL_A, TUNNEL_B, &ipv4_tcp(CLIENT, SERVER, LINE));
    let on_vlan = |id| decode_tcp(LinkType::ETHERNET, &tagged(&[(0x8100, id)], 0x0800, &tunnel));
    let (ten, eleven) = (on_vlan(10), on_vlan(11));
    assert!(ten.vlan.is_empty());
    assert_ne!(ten.tunnel, eleven.tunnel);
}

/// `depth` IP-in-IP layers around a TCP packet.
fn nested_ip_in_ip(depth: usize) -> Vec<u8> {
    (0..depth).fold(ipv4_tcp(CLIENT, SERVER, LINE), |inner, _| ipv4_outer(4, TUNNEL_A, TUNNEL_B, &inner))
}

#[test]
fn tunnel_depth_is_capped() {
    let mut decoder = Decoder::new();
    let deepest = nested_ip_in_ip(usize::from(MAX_ENCAPSULATIONS));
    assert_inner(&decode_at(&mut decoder, LinkType::RAW, &deepest, 0).unwrap());
    let too_deep = nested_ip_in_ip(usize::from(MAX_ENCAPSULATIONS) + 1);
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &too_deep, 0), Err(SkipReason::TunnelTooDeep));
    let mixed = (0..MAX_ENCAPSULATIONS).fold(inner_frame(), |inner, _| {
        ethernet(0x0800, &ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(4789, &vxlan(1, &inner))))
    });
    let mixed_too_deep = ethernet(0x8847, &mpls(&[16], &mixed[14..]));
    assert_eq!(decode_at(&mut decoder, LinkType::ETHERNET, &mixed_too_deep, 0), Err(SkipReason::TunnelTooDeep));
    assert_eq!(decoder.stats.tunnel_too_deep, 2);
}

// ---- newer tunnels: GTP-U, L2TP, PPTP, TZSP, VXLAN-GPE, MPLS in UDP, port extender and backbone tags ----

fn udp_ports(source_port: u16, destination_port: u16, inner: &[u8]) -> Vec<u8> {
    let mut datagram = udp(destination_port, inner);
    datagram[..2].copy_from_slice(&source_port.to_be_bytes());
    datagram
}

/// An Ethernet frame carrying a UDP datagram between the tunnel ends `src` and `dst`.
fn over_udp(src: [u8; 4], dst: [u8; 4], destination_port: u16, payload: &[u8]) -> Vec<u8> {
    ethernet(0x0800, &ipv4_outer(17, src, dst, &udp(destination_port, payload)))
}

/// A GTP-U header: `flags` (version 1, PT set, plus E/S/PN), message type, length, TEID, then the
/// optional 4-byte field when E, S or PN is set (`next_type` its last byte), the extension
/// headers as given (each already framed) and `inner`.
fn gtp_u(flags: u8, message_type: u8, teid: u32, next_type: u8, extensions: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if flags & 0x07 != 0 {
        body.extend_from_slice(&[0x12, 0x34, 0, next_type]);
    }
    body.extend_from_slice(extensions);
    body.extend_from_slice(inner);
    let mut out = vec![flags, message_type];
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&teid.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A GTP-U extension header of `units` 4-octet units whose content is filler, then `next_type`.
fn gtp_extension(units: u8, next_type: u8) -> Vec<u8> {
    let mut out = vec![units];
    out.extend(std::iter::repeat_n(0xee, usize::from(units) * 4 - 2));
    out.push(next_type);
    out
}

#[test]
fn gtp_u_optional_fields_and_extension_header_chain() {
    let inner = ipv4_tcp(CLIENT, SERVER, LINE);
    let over = |gtp: &[u8]| over_udp(TUNNEL_A, TUNNEL_B, 2152, gtp);
    let plain = decode_tcp(LinkType::ETHERNET, &over(&gtp_u(0x30, 0xff, 7, 0, &[], &inner)));
    assert_inner(&plain);
    // S or PN alone: the optional field is there, its next-extension byte not read (E is clear).
    for flags in [0x32, 0x31] {
        assert_inner(&decode_tcp(LinkType::ETHERNET, &over(&gtp_u(flags, 0xff, 7, 0x85, &[], &inner))));
    }
    // E: a PDU session container, then a two-unit header, then none.
    let chain = [gtp_extension(1, 0x40), gtp_extension(2, 0)].concat();
    let chained = decode_tcp(LinkType::ETHERNET, &over(&gtp_u(0x34, 0xff, 7, 0x85, &chain, &inner)));
    assert_inner(&chained);
    assert_eq!(chained.tunnel, plain.tunnel, "the extension headers are no part of the tunnel");
    let v6 = decode_tcp(LinkType::ETHERNET, &over(&gtp_u(0x30, 0xff, 7, 0, &[], &ipv6_tcp(CLIENT6, SERVER6, LINE))));
    assert_eq!(v6.src, IpAddr::from(CLIENT6));

    let zero_length = [gtp_extension(1, 0x85), vec![0, 0, 0, 0]].concat();
    let endless: Vec<u8> = (0..17).flat_map(|_| gtp_extension(1, 0x85)).collect();
    let cases: [(Vec<u8>, SkipReason); 9] = [
        (gtp_u(0x34, 0xff, 7, 0x85, &zero_length, &inner), SkipReason::Malformed),
        (gtp_u(0x34, 0xff, 7, 0x85, &endless, &inner), SkipReason::Malformed),
        (gtp_u(0x34, 0xff, 7, 0x85, &gtp_extension(1, 0x85), &[]), SkipReason::Truncated),
        (gtp_u(0x34, 0xff, 7, 0x85, &[3, 0, 0], &[]), SkipReason::Truncated),
        // Echo request, end marker: no user packet.
        (gtp_u(0x32, 0x01, 0, 0, &[], &[]), SkipReason::NotTcp),
        (gtp_u(0x30, 0xfe, 7, 0, &[], &[]), SkipReason::NotTcp),
        // Version 2, and GTP' (protocol type 0).
        (gtp_u(0x50, 0xff, 7, 0, &[], &inner), SkipReason::Malformed),
        (gtp_u(0x20, 0xff, 7, 0, &[], &inner), SkipReason::Malformed),
        // An Ethernet PDU session: no IP header.
        (gtp_u(0x30, 0xff, 7, 0, &[], &inner_frame()), SkipReason::NotIp),
    ];
    for (index, (gtp, reason)) in cases.iter().enumerate() {
        assert_eq!(decode(LinkType::ETHERNET, &over(gtp)), Err(*reason), "case {index}");
    }
}

#[test]
fn gtp_u_directions_share_a_tunnel_whatever_their_teids() {
    let inner = ipv4_tcp(CLIENT, SERVER, LINE);
    let via = |src, dst, teid| {
        decode_tcp(LinkType::ETHERNET, &over_udp(src, dst, 2152, &gtp_u(0x30, 0xff, teid, 0, &[], &inner))).tunnel
    };
    // Uplink on the core's TEID, downlink on the radio end's: one tunnel.
    assert_eq!(via(TUNNEL_A, TUNNEL_B, 0x100), via(TUNNEL_B, TUNNEL_A, 0x200));
    assert_ne!(via(TUNNEL_A, TUNNEL_B, 0x100), via(TUNNEL_A, TUNNEL_C, 0x100), "other endpoints, another tunnel");
    let gre_ip = gre(0, 0x0800, &[], &inner);
    let over_gre = decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &gre_ip)).tunnel;
    assert_ne!(via(TUNNEL_A, TUNNEL_B, 0x100), over_gre, "GTP-U and GRE between the same hosts");
}

/// An L2TPv2 data message: `flags` (version 2 added), the length when L is set, tunnel 0x0101 and
/// session 0x0202, Ns/Nr when S is set, the offset size and `padding` bytes when O is set, then
/// `ppp`.
fn l2tp(flags: u16, padding: u16, ppp: &[u8]) -> Vec<u8> {
    let mut out = (flags | 2).to_be_bytes().to_vec();
    if flags & 0x4000 != 0 {
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(&[1, 1, 2, 2]);
    if flags & 0x0800 != 0 {
        out.extend_from_slice(&[0, 5, 0, 6]);
    }
    if flags & 0x0200 != 0 {
        out.extend_from_slice(&padding.to_be_bytes());
        out.extend(std::iter::repeat_n(0xaa, usize::from(padding)));
    }
    out.extend_from_slice(ppp);
    if flags & 0x4000 != 0 {
        let len = u16::try_from(out.len()).unwrap().to_be_bytes();
        out[2..4].copy_from_slice(&len);
    }
    out
}

/// A PPP frame: with the address and control fields or not, then `protocol` as given.
fn ppp(address_control: bool, protocol: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut out = if address_control { vec![0xff, 0x03] } else { Vec::new() };
    out.extend_from_slice(protocol);
    out.extend_from_slice(inner);
    out
}

#[test]
fn l2tp_optional_fields_and_offset_padding() {
    let inner = ipv4_tcp(CLIENT, SERVER, LINE);
    let over = |message: &[u8]| over_udp(TUNNEL_A, TUNNEL_B, 1701, message);
    let frame = ppp(true, &[0x00, 0x21], &inner);
    let mut tunnels = Vec::new();
    // None, each of L, S and O (with and without padding), all of them.
    for (flags, padding) in [(0, 0), (0x4000, 0), (0x0800, 0), (0x0200, 0), (0x0200, 5), (0x4a00, 3)] {
        let seen = decode_tcp(LinkType::ETHERNET, &over(&l2tp(flags, padding, &frame)));
        assert_inner(&seen);
        tunnels.push(seen.tunnel);
    }
    assert!(tunnels.windows(2).all(|pair| pair[0] == pair[1]), "header fields are no part of the tunnel");
    // The end that accepted the tunnel answering from 1701 to another port.
    let reply = ethernet(0x0800, &ipv4_outer(17, TUNNEL_B, TUNNEL_A, &udp_ports(1701, 50_000, &l2tp(0, 0, &frame))));
    assert_eq!(decode_tcp(LinkType::ETHERNET, &reply).tunnel, tunnels[0], "both directions, one tunnel");

    let mut version_three = l2tp(0, 0, &frame);
    version_three[1] = 0x03;
    let cases: [(Vec<u8>, SkipReason); 5] = [
        (l2tp(0x8000 | 0x4800, 0, &[0, 8, 0, 0]), SkipReason::NotTcp),
        (version_three, SkipReason::NotTcp),
        (l2tp(0x0200, 40, &[])[..12].to_vec(), SkipReason::Truncated),
        (l2tp(0x0800, 0, &[])[..8].to_vec(), SkipReason::Truncated),
        (l2tp(0, 0, &ppp(true, &[0xc0, 0x21], &[1, 1, 0, 4])), SkipReason::NotIp),
    ];
    for (index, (message, reason)) in cases.iter().enumerate() {
        assert_eq!(decode(LinkType::ETHERNET, &over(message)), Err(*reason), "case {index}");
    }
}

#[test]
fn ppp_address_control_and_protocol_field_compression() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let over = |frame: &[u8]| over_udp(TUNNEL_A, TUNNEL_B, 1701, &l2tp(0, 0, frame));
    for address_control in [true, false] {
        for protocol in [&[0x00, 0x21][..], &[0x21]] {
            assert_inner(&decode_tcp(LinkType::ETHERNET, &over(&ppp(address_control, protocol, &v4))));
        }
        for protocol in [&[0x00, 0x57][..], &[0x57]] {
            let seen = decode_tcp(LinkType::ETHERNET, &over(&ppp(address_control, protocol, &v6)));
            assert_eq!(seen.src, IpAddr::from(CLIENT6));
        }
        // LCP, CHAP, compressed datagrams (CCP, MPPE), compressed IPX: not IP.
        for protocol in [&[0xc0, 0x21][..], &[0xc2, 0x23], &[0x00, 0xfd], &[0x2b]] {
            let frame = ppp(address_control, protocol, &v4);
            assert_eq!(decode(LinkType::ETHERNET, &over(&frame)), Err(SkipReason::NotIp), "{protocol:02x?}");
        }
        assert_eq!(decode(LinkType::ETHERNET, &over(&ppp(address_control, &[], &[]))), Err(SkipReason::Truncated));
    }
    assert_eq!(decode(LinkType::ETHERNET, &over(&[0x00])), Err(SkipReason::Truncated), "half a protocol field");
    // PPPoE's PPP is read the same way.
    let compressed = [&[0x11, 0, 1, 1, 0, 0, 0x21][..], &v4].concat();
    assert_eq!(decode_tcp(LinkType::ETHERNET, &ethernet(0x8864, &compressed)).payload, LINE);
}

/// PPTP's enhanced GRE flags: K (always), S, A; version 1.
const PPTP_KEY: u16 = 0x2001;
const PPTP_SEQUENCE: u16 = 0x1000;
const PPTP_ACKNOWLEDGMENT: u16 = 0x0080;

/// Enhanced GRE with `flags`, the key word (payload length, `call_id`), the sequence and
/// acknowledgment numbers its flags announce, then `payload`.
fn pptp(flags: u16, call_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut fields = vec![u32::from(u16::try_from(payload.len()).unwrap()) << 16 | u32::from(call_id)];
    if flags & PPTP_SEQUENCE != 0 {
        fields.push(41);
    }
    if flags & PPTP_ACKNOWLEDGMENT != 0 {
        fields.push(40);
    }
    gre(flags, 0x880b, &fields, payload)
}

#[test]
fn pptp_enhanced_gre_carries_ppp() {
    let frame = ppp(true, &[0x00, 0x21], &ipv4_tcp(CLIENT, SERVER, LINE));
    let mut tunnels = Vec::new();
    for (flags, call_id, src, dst) in [
        (PPTP_KEY | PPTP_SEQUENCE, 0x4001, TUNNEL_A, TUNNEL_B),
        (PPTP_KEY | PPTP_SEQUENCE | PPTP_ACKNOWLEDGMENT, 0x8002, TUNNEL_B, TUNNEL_A),
        (PPTP_KEY | PPTP_ACKNOWLEDGMENT, 0x8002, TUNNEL_B, TUNNEL_A),
    ] {
        let seen = decode_tcp(LinkType::ETHERNET, &gre_over(src, dst, &pptp(flags, call_id, &frame)));
        assert_inner(&seen);
        tunnels.push(seen.tunnel);
    }
    assert!(tunnels.windows(2).all(|pair| pair[0] == pair[1]), "call ids differ each way: one tunnel");
    let compressed = ppp(false, &[0x21], &ipv4_tcp(CLIENT, SERVER, LINE));
    assert_inner(&decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &pptp(PPTP_KEY, 1, &compressed))));
    // The payload length ends the PPP frame: bytes after it are not read.
    let mut trailing = pptp(PPTP_KEY, 1, &frame);
    trailing.extend_from_slice(&[0xde; 8]);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &trailing)).payload, LINE);

    let mut no_key = pptp(PPTP_KEY | PPTP_SEQUENCE, 1, &frame);
    no_key[0] &= !0x20;
    let mut with_checksum = pptp(PPTP_KEY, 1, &frame);
    with_checksum[0] |= 0x80;
    let cases: [(Vec<u8>, SkipReason); 6] = [
        // An acknowledgment alone.
        (pptp(PPTP_KEY | PPTP_ACKNOWLEDGMENT, 1, &[]), SkipReason::NotTcp),
        (no_key, SkipReason::Malformed),
        (with_checksum, SkipReason::Malformed),
        (gre(PPTP_KEY, 0x0800, &[20 << 16], &ipv4_tcp(CLIENT, SERVER, LINE)), SkipReason::NotIp),
        (gre(0x2002, 0x880b, &[20 << 16], &frame), SkipReason::NotIp),
        (pptp(PPTP_KEY | PPTP_SEQUENCE, 1, &ppp(true, &[0x00, 0xfd], &[0x90; 20])), SkipReason::NotIp),
    ];
    for (index, (packet, reason)) in cases.iter().enumerate() {
        assert_eq!(decode(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, packet)), Err(*reason), "case {index}");
    }
    let cut = pptp(PPTP_KEY | PPTP_SEQUENCE | PPTP_ACKNOWLEDGMENT, 1, &frame);
    assert_eq!(decode(LinkType::ETHERNET, &gre_over(TUNNEL_A, TUNNEL_B, &cut[..14])), Err(SkipReason::Truncated));
}

/// A TZSP header (version 1, `packet_type`, `encapsulation`), `tags` as given, then `frame`.
fn tzsp(packet_type: u8, encapsulation: u16, tags: &[u8], frame: &[u8]) -> Vec<u8> {
    let mut out = vec![1, packet_type];
    out.extend_from_slice(&encapsulation.to_be_bytes());
    out.extend_from_slice(tags);
    out.extend_from_slice(frame);
    out
}

#[test]
fn tzsp_tags_until_the_end_tag() {
    let over = |payload: &[u8]| over_udp(TUNNEL_A, TUNNEL_B, 37008, payload);
    let frame = tagged(&[(0x8100, 44)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let end_only = decode_tcp(LinkType::ETHERNET, &over(&tzsp(0, 1, &[1], &frame)));
    assert_inner(&end_only);
    assert_eq!(end_only.vlan, [44], "the mirrored frame's own tags");
    // Padding, a signal strength (1 byte), an RX frame length (2), padding, END; and transmitted.
    let tags = [0, 10, 1, 0xc4, 41, 2, 0x01, 0x00, 0, 0, 1];
    assert_eq!(decode_tcp(LinkType::ETHERNET, &over(&tzsp(0, 1, &tags, &frame))).tunnel, end_only.tunnel);
    assert_inner(&decode_tcp(LinkType::ETHERNET, &over(&tzsp(1, 1, &[0, 1], &frame))));

    let mut version_two = tzsp(0, 1, &[1], &frame);
    version_two[0] = 2;
    let cases: [(Vec<u8>, SkipReason); 6] = [
        (tzsp(0, 1, &[41, 200, 0], &[]), SkipReason::Truncated),
        (tzsp(0, 1, &[0, 0, 0], &[]), SkipReason::Truncated),
        (tzsp(0, 1, &[], &[]), SkipReason::Truncated),
        // A keepalive; a token ring frame.
        (tzsp(4, 1, &[1], &[]), SkipReason::NotTcp),
        (tzsp(0, 2, &[1], &frame), SkipReason::NotTcp),
        (version_two, SkipReason::Malformed),
    ];
    for (index, (payload, reason)) in cases.iter().enumerate() {
        assert_eq!(decode(LinkType::ETHERNET, &over(payload)), Err(*reason), "case {index}");
    }
}

#[test]
fn tzsp_streams_of_wireless_sensors_and_raw_ip() {
    let over = |payload: &[u8]| over_udp(TUNNEL_A, TUNNEL_B, 37008, payload);
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let wifi = wifi_frame(0x88, 0x01, &[0x05, 0], &snap(0, 0x0800, &v4));
    let ethernet_tunnel = decode_tcp(LinkType::ETHERNET, &over(&tzsp(0, 1, &[1], &ethernet(0x0800, &v4)))).tunnel;
    for (name, encapsulation, frame) in [
        ("raw IP", 7, v4.clone()),
        ("802.11", 18, wifi.clone()),
        ("Prism", 119, prism(false, &wifi)),
        ("radiotap", 126, radiotap(&wifi)),
        ("AVS", 127, avs(&wifi)),
    ] {
        let packet = decode_tcp(LinkType::ETHERNET, &over(&tzsp(0, encapsulation, &[1], &frame)));
        assert_eq!((packet.payload.as_slice(), packet.tunnel), (LINE, ethernet_tunnel), "{name}");
    }
    // What the sensor heard encrypted stays unread.
    let protected = wifi_frame(0x88, 0x41, &[0x05, 0], &[0; 64]);
    assert_eq!(decode(LinkType::ETHERNET, &over(&tzsp(0, 18, &[1], &protected))), Err(SkipReason::Encrypted));
}

#[test]
fn every_packet_of_an_aggregate_a_sensor_streamed_keeps_its_tunnel() {
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let v6 = snap(0, 0x86dd, &ipv6_tcp(CLIENT6, SERVER6, LINE));
    let aggregate = wifi_frame(0x88, 0x01, &[0x80, 0], &amsdu(&[&v4, &v6, &v4]));
    let streamed = over_udp(TUNNEL_A, TUNNEL_B, 37008, &tzsp(0, 18, &[1], &aggregate));
    let mut decoder = Decoder::new();
    let all = decode_all(&mut decoder, LinkType::ETHERNET, &streamed);
    assert_eq!(all.len(), 3, "{all:?}");
    let tunnels: Vec<u64> = all.iter().map(|packet| packet.as_ref().unwrap().tunnel).collect();
    assert!(tunnels[0] != 0 && tunnels.iter().all(|tunnel| *tunnel == tunnels[0]), "{tunnels:?}");
    // Trailing bytes after the datagram (an Ethernet trailer) are no subframe.
    let mut trailed = streamed.clone();
    trailed.extend_from_slice(&[0; 6]);
    assert_eq!(decode_all(&mut decoder, LinkType::ETHERNET, &trailed), all);
}

#[test]
fn every_packet_of_an_aggregate_streamed_in_fragments_is_read() {
    // A sensor's stream of aggregates (several KiB each) crosses a link of a smaller MTU: every
    // datagram arrives in IP fragments, and the subframes lie in the reassembled one.
    let v4 = snap(0, 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let v6 = snap(0, 0x86dd, &ipv6_tcp(CLIENT6, SERVER6, LINE));
    let aggregate = wifi_frame(0x88, 0x01, &[0x80, 0], &amsdu(&[&v4, &v6, &v4]));
    let datagram = ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(37008, &tzsp(0, 18, &[1], &aggregate)));
    let fragments: Vec<Vec<u8>> =
        ipv4_fragments(&datagram, 7, 96).iter().map(|fragment| ethernet(0x0800, fragment)).collect();
    let (last, before) = fragments.split_last().unwrap();
    let mut decoder = Decoder::new();
    for fragment in before {
        assert_eq!(decode_all(&mut decoder, LinkType::ETHERNET, fragment), [Err(SkipReason::IpFragment)]);
    }
    let all = decode_all(&mut decoder, LinkType::ETHERNET, last);
    assert_eq!(all.len(), 3, "{all:?}");
    let sources: Vec<IpAddr> = all.iter().map(|packet| packet.as_ref().unwrap().src).collect();
    assert_eq!(sources, [IpAddr::from(CLIENT), IpAddr::from(CLIENT6), IpAddr::from(CLIENT)]);
    let tunnels: Vec<u64> = all.iter().map(|packet| packet.as_ref().unwrap().tunnel).collect();
    assert!(tunnels[0] != 0 && tunnels.iter().all(|tunnel| *tunnel == tunnels[0]), "{tunnels:?}");
    assert!(all.iter().all(|packet| packet.as_ref().unwrap().payload == LINE));
    // The next frame starts afresh.
    assert_eq!(
        decode_all(&mut decoder, LinkType::ETHERNET, &ethernet(0x0800, &ipv4_tcp(CLIENT, SERVER, LINE))).len(),
        1
    );
    // A first packet that is no TCP segment leaves the others to read.
    let arp = snap(0, 0x0806, &[0; 28]);
    let aggregate = wifi_frame(0x88, 0x01, &[0x80, 0], &amsdu(&[&arp, &v4, &v6]));
    let datagram = ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(37008, &tzsp(0, 18, &[1], &aggregate)));
    let fragments: Vec<Vec<u8>> =
        ipv4_fragments(&datagram, 8, 96).iter().map(|fragment| ethernet(0x0800, fragment)).collect();
    let (last, before) = fragments.split_last().unwrap();
    for fragment in before {
        decode_all(&mut decoder, LinkType::ETHERNET, fragment);
    }
    let all = decode_all(&mut decoder, LinkType::ETHERNET, last);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0], Err(SkipReason::NotIp));
    assert!(all[1..].iter().all(|packet| packet.as_ref().is_ok_and(|packet| packet.payload == LINE)), "{all:?}");
}

fn vxlan_gpe(flags: u8, next_protocol: u8, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = vec![flags, 0, 0, next_protocol];
    out.extend_from_slice(&(vni << 8).to_be_bytes());
    out.extend_from_slice(inner);
    out
}

#[test]
fn vxlan_gpe_by_next_protocol() {
    let over = |payload: &[u8]| over_udp(TUNNEL_A, TUNNEL_B, 4790, payload);
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let inners = [
        (0x01, v4.clone()),
        (0x02, ipv6_tcp(CLIENT6, SERVER6, LINE)),
        (0x03, inner_frame()),
        (0x05, mpls(&[16, 17], &v4)),
    ];
    let mut tunnels = Vec::new();
    for (next_protocol, inner) in inners {
        let seen = decode_tcp(LinkType::ETHERNET, &over(&vxlan_gpe(0x0c, next_protocol, 77, &inner)));
        assert_eq!(seen.payload, LINE, "next protocol {next_protocol}");
        tunnels.push(seen.tunnel);
    }
    assert!(tunnels.windows(2).all(|pair| pair[0] == pair[1]), "one VNI, one tunnel");
    let other_vni = decode_tcp(LinkType::ETHERNET, &over(&vxlan_gpe(0x0c, 0x01, 78, &v4)));
    assert_ne!(other_vni.tunnel, tunnels[0]);
    let as_vxlan = decode_tcp(LinkType::ETHERNET, &over_udp(TUNNEL_A, TUNNEL_B, 4789, &vxlan(77, &inner_frame())));
    assert_ne!(as_vxlan.tunnel, tunnels[0], "VXLAN and VXLAN-GPE with one VNI");

    let cases: [(Vec<u8>, SkipReason); 5] = [
        // NSH.
        (vxlan_gpe(0x0c, 0x04, 77, &v4), SkipReason::NotTcp),
        (vxlan_gpe(0x1c, 0x01, 77, &v4), SkipReason::Malformed),
        (vxlan_gpe(0x08, 0x01, 77, &v4), SkipReason::Malformed),
        (vxlan_gpe(0x0c, 0x01, 77, &[])[..6].to_vec(), SkipReason::Truncated),
        (vec![0x0c, 0], SkipReason::Truncated),
    ];
    for (index, (payload, reason)) in cases.iter().enumerate() {
        assert_eq!(decode(LinkType::ETHERNET, &over(payload)), Err(*reason), "case {index}");
    }
}

#[test]
fn mpls_in_udp_reads_the_label_stack() {
    let over = |src, dst, payload: &[u8]| over_udp(src, dst, 6635, payload);
    let to_ip =
        decode_tcp(LinkType::ETHERNET, &over(TUNNEL_A, TUNNEL_B, &mpls(&[16, 17], &ipv4_tcp(CLIENT, SERVER, LINE))));
    assert_inner(&to_ip);
    let pseudowire = over(TUNNEL_A, TUNNEL_B, &mpls(&[16], &with_prefix([0; 4], &inner_frame())));
    assert_inner(&decode_tcp(LinkType::ETHERNET, &pseudowire));
    let elsewhere =
        decode_tcp(LinkType::ETHERNET, &over(TUNNEL_A, TUNNEL_C, &mpls(&[16], &ipv4_tcp(CLIENT, SERVER, LINE))));
    assert_ne!(elsewhere.tunnel, to_ip.tunnel);
    assert_eq!(decode(LinkType::ETHERNET, &over(TUNNEL_A, TUNNEL_B, &[0, 1, 0x01])), Err(SkipReason::Truncated));
}

/// An Ethernet frame whose header is followed by `tag_protocol`, `tag` and what it tags.
fn tag_then(tag_protocol: u16, tag: &[u8], ether_type: u16, inner: &[u8]) -> Vec<u8> {
    let mut body = tag.to_vec();
    body.extend_from_slice(&ether_type.to_be_bytes());
    body.extend_from_slice(inner);
    ethernet(tag_protocol, &body)
}

#[test]
fn port_extender_tags_keep_the_frame_in_its_vlans() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    // A VN-Tag up (source vif 5) and down (destination vif 9): ids that differ each way.
    let up = decode_tcp(LinkType::ETHERNET, &tag_then(0x8926, &[0, 0, 0, 5], 0x0800, &v4));
    let down = decode_tcp(LinkType::ETHERNET, &tag_then(0x8926, &[0x80, 9, 0, 0], 0x0800, &v4));
    assert_eq!((up.tunnel, down.tunnel, up.payload.as_slice()), (0, 0, LINE));
    let e_tag = decode_tcp(LinkType::ETHERNET, &tag_then(0x893f, &[0, 3, 0, 0, 0, 0], 0x0800, &v4));
    assert_eq!((e_tag.tunnel, e_tag.payload.as_slice()), (0, LINE));
    // VLAN tags before and after the tag are the frame's.
    let mut vlan_after = 12u16.to_be_bytes().to_vec();
    vlan_after.extend_from_slice(&0x0800u16.to_be_bytes());
    vlan_after.extend_from_slice(&v4);
    let inner = tag_then(0x893f, &[0; 6], 0x8100, &vlan_after);
    let frame = tagged(&[(0x8100, 11)], 0x893f, &inner[14..]);
    assert_eq!(decode_tcp(LinkType::ETHERNET, &frame).vlan, [11, 12]);
    // Cisco MetaData: version 1, length 1, the SGT option, the sender's security group 42.
    let cmd = decode_tcp(LinkType::ETHERNET, &tag_then(0x8909, &[1, 1, 0, 1, 0, 42], 0x0800, &v4));
    assert_eq!((cmd.tunnel, cmd.payload.as_slice()), (0, LINE));
    for (tag_protocol, whole_tag) in [(0x8926, 4), (0x893f, 6), (0x8909, 6)] {
        let cut = tag_then(tag_protocol, &vec![0; whole_tag], 0x0800, &[]);
        assert_eq!(decode(LinkType::ETHERNET, &cut[..cut.len() - 1]), Err(SkipReason::Truncated));
    }
}

#[test]
fn backbone_service_instances_are_layer_2_domains_of_their_own() {
    // B-VLAN 100, I-SID 0x123456, then the customer frame with its C-VLAN 30.
    let customer = tagged(&[(0x8100, 30)], 0x0800, &ipv4_tcp(CLIENT, SERVER, LINE));
    let service = |isid: u32, b_vlan| {
        let body = [&isid.to_be_bytes()[..], &customer].concat();
        decode_tcp(LinkType::ETHERNET, &tagged(&[(0x88a8, b_vlan)], 0x88e7, &body))
    };
    let first = service(0x0012_3456, 100);
    assert_inner(&first);
    assert_eq!(first.vlan, [30], "the customer's tags, not the backbone's");
    assert_ne!(first.tunnel, service(0x0012_3457, 100).tunnel, "another service instance");
    assert_ne!(first.tunnel, service(0x0012_3456, 101).tunnel, "another backbone VLAN");
    assert_eq!(first.tunnel, service(0xe012_3456, 100).tunnel, "priority bits are no part of the I-SID");
    assert_eq!(decode(LinkType::ETHERNET, &ethernet(0x88e7, &[0, 0, 1])), Err(SkipReason::Truncated));
}

#[test]
fn each_newer_layer_counts_towards_the_depth_limit() {
    let max = usize::from(MAX_ENCAPSULATIONS);
    let in_gtp = |inner: Vec<u8>| ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(2152, &gtp_u(0x30, 0xff, 1, 0, &[], &inner)));
    let nested = |depth| (0..depth).fold(ipv4_tcp(CLIENT, SERVER, LINE), |inner, _| in_gtp(inner));
    assert_inner(&decode_tcp(LinkType::RAW, &nested(max)));
    assert_eq!(decode(LinkType::RAW, &nested(max + 1)), Err(SkipReason::TunnelTooDeep));
    let vn_tags = |count| {
        let (mut ether_type, mut body) = (0x0800u16, ipv4_tcp(CLIENT, SERVER, LINE));
        for _ in 0..count {
            body = [&[0, 0, 0, 1][..], &ether_type.to_be_bytes(), &body].concat();
            ether_type = 0x8926;
        }
        ethernet(ether_type, &body)
    };
    assert_eq!(decode_tcp(LinkType::ETHERNET, &vn_tags(max)).payload, LINE);
    assert_eq!(decode(LinkType::ETHERNET, &vn_tags(max + 1)), Err(SkipReason::TunnelTooDeep));
}

// ---- fragments ----

fn feed(decoder: &mut Decoder, fragments: &[Vec<u8>], secs: u64) -> Vec<Result<Seen, SkipReason>> {
    fragments.iter().map(|fragment| decode_at(decoder, LinkType::RAW, fragment, secs)).collect()
}

#[test]
fn ipv4_fragments_in_order() {
    let line = long_line(300);
    let fragments = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &line), 1, 96);
    assert_eq!(fragments.len(), 4);
    let mut decoder = Decoder::new();
    let results = feed(&mut decoder, &fragments, 0);
    assert!(results[..3].iter().all(|result| *result == Err(SkipReason::IpFragment)));
    let seen = results[3].as_ref().unwrap();
    assert_eq!((seen.payload.as_slice(), seen.dst_port), (line.as_slice(), IMAP_PORT));
    assert_eq!(decoder.stats.fragments_reassembled, 1);
    assert_eq!(decoder.stats.ip_fragments, 3);
    assert_eq!(decoder.stats.tcp, 1);
}

#[test]
fn ipv4_fragments_out_of_order_and_duplicated() {
    let line = long_line(300);
    let mut fragments = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &line), 2, 64);
    fragments.reverse();
    fragments.insert(2, fragments[1].clone());
    let mut decoder = Decoder::new();
    let results = feed(&mut decoder, &fragments, 0);
    let last = results.last().unwrap().as_ref().unwrap();
    assert_eq!(last.payload, line);
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 1);
}

#[test]
fn ipv4_overlapping_fragment_cannot_rewrite_earlier_bytes() {
    let line = long_line(200);
    let packet = ipv4_tcp(CLIENT, SERVER, &line);
    let fragments = ipv4_fragments(&packet, 3, 64);
    let (header, _) = Ipv4Header::from_slice(&packet).unwrap();
    let forged = ipv4_fragment(&header, 3, 64, true, &[b'X'; 64]);
    let mut decoder = Decoder::new();
    // The genuine second fragment, then a forged copy of its range, then the others.
    let sequence = [&fragments[1], &forged, &fragments[0], &fragments[2], &fragments[3]].map(|bytes| bytes.clone());
    let results = feed(&mut decoder, &sequence, 0);
    let seen = results.iter().find_map(|result| result.as_ref().ok()).unwrap();
    assert_eq!(seen.payload, line);
}

#[test]
fn overlapping_fragments_with_different_bytes_are_counted_and_the_first_copy_kept() {
    let line = [b"PASS ".as_slice(), &long_line(60), b"\r\n"].concat();
    let mut conversation = Conversation::new((IpAddr::from(CLIENT), CLIENT_PORT), (IpAddr::from(SERVER), 110));
    conversation.link(Link::RawIp).encap(Encap::Fragment { size: 32 }).client(&line);
    let mut frames = conversation.frames().unwrap();
    assert_eq!(frames.len(), 3);
    // A copy of the middle fragment, identical; then one whose last byte differs.
    let same = frames[1].clone();
    let mut forged = frames[1].clone();
    *forged.data.last_mut().unwrap() ^= 0x20;
    frames.splice(2..2, [same, forged]);
    let (decoder, seen) = decode_frames(&frames);
    assert_eq!(login_of(&seen).unwrap().payload, line, "the first copy wins");
    assert_eq!(decoder.stats.fragment_overlaps_differing, 1, "the identical copy is no evasion");
    assert_eq!(decoder.stats.fragments_reassembled, 1);
}

#[test]
fn ipv6_fragments_in_and_out_of_order() {
    let line = long_line(500);
    let fragments = ipv6_fragments(&ipv6_tcp(CLIENT6, SERVER6, &line), 0xdead_beef, 128);
    let mut decoder = Decoder::new();
    let results = feed(&mut decoder, &fragments, 0);
    assert_eq!(results.last().unwrap().as_ref().unwrap().payload, line);

    let mut shuffled = fragments.clone();
    shuffled.swap(0, 2);
    shuffled.reverse();
    let results = feed(&mut decoder, &shuffled, 1);
    assert_eq!(results.last().unwrap().as_ref().unwrap().payload, line);
    assert_eq!(decoder.stats.fragments_reassembled, 2);
}

#[test]
fn fragmented_tunnel_outer_is_reassembled_then_peeled() {
    let gre_packet = gre(0, 0x0800, &[], &ipv4_tcp(CLIENT, SERVER, &long_line(200)));
    let outer = ipv4_outer(47, TUNNEL_A, TUNNEL_B, &gre_packet);
    let fragments = ipv4_fragments(&outer, 4, 80);
    let results = feed(&mut Decoder::new(), &fragments, 0);
    let seen = results.last().unwrap().as_ref().unwrap();
    assert_eq!(seen.payload, long_line(200));
    assert_ne!(seen.tunnel, 0);
}

/// The client's `PASS` line of a POP3 login written by the capture writer with `encaps`
/// (innermost first), and what decoding every frame gave.
fn decode_conversation(encaps: &[Encap], client: IpAddr, server: IpAddr) -> (Vec<u8>, Decoder, Vec<Seen>) {
    let line = [b"PASS ".as_slice(), &long_line(120), b"\r\n"].concat();
    let mut conversation = Conversation::new((client, CLIENT_PORT), (server, 110));
    for step in encaps {
        conversation.encap(step.clone());
    }
    let frames = conversation.handshake().server(b"+OK\r\n").client(&line).frames().unwrap();
    let (decoder, seen_packets) = decode_frames(&frames);
    (line, decoder, seen_packets)
}

/// The TCP packets the frames decode to, and the decoder's counters.
fn decode_frames(frames: &[CapturedFrame]) -> (Decoder, Vec<Seen>) {
    let mut decoder = Decoder::new();
    let mut seen_packets = Vec::new();
    for frame in frames {
        if let Decoded::Tcp(packet) = decoder.decode(&frame.as_frame()) {
            seen_packets.push(seen(&packet));
        }
    }
    (decoder, seen_packets)
}

/// The login line among decoded packets.
fn login_of(seen: &[Seen]) -> Option<&Seen> {
    seen.iter().find(|packet| !packet.payload.is_empty() && packet.dst_port == 110)
}

#[test]
fn fragments_inside_a_tunnel_fragmented_again_outside_are_reassembled_at_both_layers() {
    let ends = TunnelEnds::new(TUNNEL_A, TUNNEL_B);
    let gre = Encap::Gre { ends, key: None, sequence: false, checksum: false };
    // Every outer packet (at least 44 bytes of GRE payload) leaves in fragments of 40 bytes.
    let encaps = [Encap::Fragment { size: 64 }, gre, Encap::Fragment { size: 40 }];
    let (line, decoder, seen) = decode_conversation(&encaps, CLIENT.into(), SERVER.into());
    let login = login_of(&seen).unwrap();
    assert_eq!(login.payload, line);
    assert_ne!(login.tunnel, 0);
    // Handshake and greeting: 4 outer datagrams; the login: 3 outer ones, then the inner one.
    assert_eq!(decoder.stats.fragments_reassembled, 4 + 3 + 1);
    assert_eq!(decoder.stats.tcp, 5, "handshake, greeting and login all decoded");
    assert!(decoder.defrag.pending.is_empty());
}

#[test]
fn ipv6_fragments_inside_ip_in_ip_fragmented_again_outside_are_reassembled() {
    let ends = TunnelEnds::new(TUNNEL_A, TUNNEL_C);
    let encaps = [Encap::Fragment { size: 56 }, Encap::IpInIp { ends }, Encap::Fragment { size: 40 }];
    let (line, decoder, seen) = decode_conversation(&encaps, CLIENT6.into(), SERVER6.into());
    let login = login_of(&seen).unwrap();
    assert_eq!((login.payload.as_slice(), login.dst), (line.as_slice(), IpAddr::from(SERVER6)));
    // Every outer packet is fragmented: handshake and greeting 4, the login's 3 inner fragments 3,
    // then the inner datagram.
    assert_eq!(decoder.stats.fragments_reassembled, 4 + 3 + 1);
    assert_eq!(decoder.stats.tcp, 5);
    assert!(decoder.defrag.pending.is_empty());
}

#[test]
fn fragments_of_different_vlans_do_not_mix() {
    let line = long_line(100);
    let fragments = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &line), 5, 64);
    let on_vlan = |id, fragment: &[u8]| tagged(&[(0x8100, id)], 0x0800, fragment);
    let mut decoder = Decoder::new();
    let first = decode_at(&mut decoder, LinkType::ETHERNET, &on_vlan(1, &fragments[0]), 0);
    let second = decode_at(&mut decoder, LinkType::ETHERNET, &on_vlan(2, &fragments[1]), 0);
    assert_eq!((first, second), (Err(SkipReason::IpFragment), Err(SkipReason::IpFragment)));
    let done = decode_at(&mut decoder, LinkType::ETHERNET, &on_vlan(1, &fragments[1]), 0).unwrap();
    assert_eq!((done.payload, done.vlan), (line, vec![1]));
}

#[test]
fn fragment_reassembly_times_out_on_packet_time() {
    let fragments = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &long_line(100)), 6, 64);
    let mut decoder = Decoder::new();
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &fragments[0], 0), Err(SkipReason::IpFragment));
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &fragments[1], 31), Err(SkipReason::IpFragment));
    assert_eq!(decoder.stats.fragments_timed_out, 1);
    assert_eq!(decoder.stats.fragments_reassembled, 0);
}

#[test]
fn fragment_reassembly_still_times_out_after_a_frame_stamped_far_ahead() {
    let first_of = |id| ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &long_line(100)), id, 64).swap_remove(0);
    let mut decoder = Decoder::new();
    for (id, secs) in [(6, 0), (7, 1_000_000_000)] {
        assert_eq!(decode_at(&mut decoder, LinkType::RAW, &first_of(id), secs), Err(SkipReason::IpFragment));
    }
    assert_eq!(decoder.stats.fragments_timed_out, 0, "not at the glitch");
    for (id, secs) in [(8, 40), (9, 80)] {
        assert_eq!(decode_at(&mut decoder, LinkType::RAW, &first_of(id), secs), Err(SkipReason::IpFragment));
    }
    assert_eq!(decoder.stats.fragments_timed_out, 2, "on the capture's time after it");
    // A gap in the capture: the first frame past it sweeps nothing, the next one does.
    for (id, secs) in [(10, 10_000), (11, 10_001)] {
        assert_eq!(decode_at(&mut decoder, LinkType::RAW, &first_of(id), secs), Err(SkipReason::IpFragment));
    }
    assert_eq!(decoder.stats.fragments_timed_out, 3);
    // A jump while nothing but a datagram about to complete was pending, then a glitch much
    // later: the glitch alone still sweeps nothing.
    let limits = DefragLimits { timeout: std::time::Duration::from_secs(120), ..DefragLimits::default() };
    let mut decoder = Decoder::with_defrag_limits(limits);
    let whole = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &long_line(100)), 12, 64);
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &whole[0], 0), Err(SkipReason::IpFragment));
    assert!(decode_at(&mut decoder, LinkType::RAW, &whole[1], 70).is_ok(), "complete, nothing pending");
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &first_of(13), 200), Err(SkipReason::IpFragment));
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &first_of(14), 1_000_000_000), Err(SkipReason::IpFragment));
    assert_eq!(decoder.stats.fragments_timed_out, 0);
}

#[test]
fn fragment_memory_is_bounded() {
    let limits = DefragLimits { max_datagrams: 3, max_bytes: 700, ..DefragLimits::default() };
    let mut decoder = Decoder::with_defrag_limits(limits);
    let line = long_line(600);
    let packet = ipv4_tcp(CLIENT, SERVER, &line);
    // First fragments of datagrams 1..=5: 104 buffered bytes each, so only three fit at once.
    for id in 1..=5 {
        let first = &ipv4_fragments(&packet, id, 104)[0];
        assert_eq!(decode_at(&mut decoder, LinkType::RAW, first, 0), Err(SkipReason::IpFragment));
    }
    assert_eq!(decoder.stats.fragments_evicted, 2);
    assert_eq!(decoder.defrag.pending.len(), 3);
    // The last fragment of datagram 5 needs 620 bytes: older datagrams make way.
    let last = ipv4_fragments(&packet, 5, 104).pop().unwrap();
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &last, 0), Err(SkipReason::IpFragment));
    assert!(decoder.defrag.buffered_bytes <= limits.max_bytes);
    assert_eq!(decoder.stats.fragments_evicted, 4);
    // Datagram 5 can still complete.
    let results = feed(&mut decoder, &ipv4_fragments(&packet, 5, 104)[1..5], 0);
    assert_eq!(results.last().unwrap().as_ref().unwrap().payload, line);
    assert_eq!(decoder.defrag.buffered_bytes, 0);
}

#[test]
fn scattered_fragments_hit_the_range_limit() {
    let limits = DefragLimits { max_ranges: 4, ..DefragLimits::default() };
    let mut decoder = Decoder::with_defrag_limits(limits);
    let packet = ipv4_tcp(CLIENT, SERVER, &long_line(400));
    let fragments = ipv4_fragments(&packet, 8, 16);
    let every_other: Vec<_> = fragments.iter().step_by(2).take(5).cloned().collect();
    feed(&mut decoder, &every_other, 0);
    assert_eq!(decoder.stats.fragments_evicted, 1);
    assert!(decoder.defrag.pending.is_empty());
}

#[test]
fn malformed_and_truncated_fragments() {
    let packet = ipv4_tcp(CLIENT, SERVER, &long_line(100));
    let (header, payload) = Ipv4Header::from_slice(&packet).unwrap();
    let misaligned = ipv4_fragment(&header, 9, 0, true, &payload[..20]);
    let beyond_max = ipv4_fragment(&header, 9, 65_528, false, &payload[..16]);
    let whole = &ipv4_fragments(&packet, 9, 64)[0];
    let mut decoder = Decoder::new();
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &misaligned, 0), Err(SkipReason::Malformed));
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &beyond_max, 0), Err(SkipReason::Malformed));
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &whole[..whole.len() - 1], 0), Err(SkipReason::Truncated));
    let mut icmp = ipv4_fragment(&header, 9, 0, true, &payload[..16]);
    icmp[9] = 1;
    assert_eq!(decode_at(&mut decoder, LinkType::RAW, &icmp, 0), Err(SkipReason::NotTcp));
    assert!(decoder.defrag.pending.is_empty());
}

#[test]
fn debug_output_hides_payload() {
    let mut decoder = Decoder::new();
    let fragments = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &long_line(100)), 1, 64);
    feed(&mut decoder, &fragments[..1], 0);
    let packet = ipv4_tcp(CLIENT, SERVER, LINE);
    let printed = match decoder.decode(&frame_at(LinkType::RAW, &packet, 0)) {
        Decoded::Tcp(packet) => format!("{packet:?}"),
        Decoded::Skipped(reason) => panic!("expected TCP, got {reason:?}"),
    };
    let debug = format!("{printed} {decoder:?}");
    assert!(!debug.contains("canary") && !debug.contains("abcdefgh"), "{debug}");
}

// ---- robustness ----

/// Every frame the tests above build, with its link type.
fn corpus() -> Vec<(LinkType, Vec<u8>)> {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let inner = inner_frame();
    let mut frames = vec![
        (LinkType::ETHERNET, ethernet(0x0800, &v4)),
        (LinkType::ETHERNET, tagged(&[(0x88a8, 1), (0x8100, 2)], 0x86dd, &v6)),
        (LinkType::LINUX_SLL, linux_sll(0x0800, &v4)),
        (LinkType::LINUX_SLL2, linux_sll2(0x86dd, &v6)),
        (LinkType::RAW, v4.clone()),
        (LinkType::NULL, with_prefix(30u32.to_le_bytes(), &v6)),
        (LinkType::LOOP, with_prefix(2u32.to_be_bytes(), &v4)),
        (LinkType::ETHERNET, ethernet(0x8847, &mpls(&[16, 17], &v4))),
        (LinkType::ETHERNET, ethernet(0x8847, &mpls(&[16], &with_prefix([0; 4], &inner)))),
        (LinkType::ETHERNET, gre_over(TUNNEL_A, TUNNEL_B, &gre(GRE_CHECKSUM | GRE_KEY, 0x0800, &[0, 1], &v4))),
        (LinkType::ETHERNET, gre_over(TUNNEL_A, TUNNEL_B, &gre(0, 0x88be, &[], &inner))),
        (LinkType::ETHERNET, gre_over(TUNNEL_A, TUNNEL_B, &gre(GRE_SEQUENCE, 0x88be, &[1], &erspan_ii(3, &inner)))),
        (
            LinkType::ETHERNET,
            gre_over(TUNNEL_A, TUNNEL_B, &gre(GRE_SEQUENCE, 0x22eb, &[1], &erspan_iii(3, true, &inner))),
        ),
        (LinkType::RAW, ipv4_outer(17, TUNNEL_A, TUNNEL_B, &udp(4789, &vxlan(9, &inner)))),
        (LinkType::RAW, ipv6_outer(17, &udp(6081, &geneve(9, 0x6558, 1, &inner)))),
        (LinkType::RAW, ipv4_outer(41, TUNNEL_A, TUNNEL_B, &v6)),
        (LinkType::RAW, ipv6_outer(0, &ipv6_extension(51, &auth_header(6, &tcp_segment(LINE))))),
        (
            LinkType::ETHERNET,
            over_udp(TUNNEL_A, TUNNEL_B, 2152, &gtp_u(0x34, 0xff, 1, 0x85, &gtp_extension(1, 0), &v4)),
        ),
        (LinkType::ETHERNET, over_udp(TUNNEL_A, TUNNEL_B, 1701, &l2tp(0x4a00, 2, &ppp(true, &[0x00, 0x21], &v4)))),
        (LinkType::ETHERNET, over_udp(TUNNEL_A, TUNNEL_B, 1701, &l2tp(0, 0, &ppp(false, &[0x57], &v6)))),
        (
            LinkType::ETHERNET,
            gre_over(
                TUNNEL_A,
                TUNNEL_B,
                &pptp(PPTP_KEY | PPTP_SEQUENCE | PPTP_ACKNOWLEDGMENT, 1, &ppp(true, &[0x00, 0x21], &v4)),
            ),
        ),
        (LinkType::ETHERNET, over_udp(TUNNEL_A, TUNNEL_B, 37008, &tzsp(0, 1, &[0, 41, 2, 0, 60, 1], &inner))),
        (LinkType::ETHERNET, over_udp(TUNNEL_A, TUNNEL_B, 4790, &vxlan_gpe(0x0c, 0x03, 9, &inner))),
        (LinkType::ETHERNET, over_udp(TUNNEL_A, TUNNEL_B, 4790, &vxlan_gpe(0x0c, 0x05, 9, &mpls(&[16], &v4)))),
        (LinkType::ETHERNET, over_udp(TUNNEL_A, TUNNEL_B, 6635, &mpls(&[16, 17], &v6))),
        (LinkType::ETHERNET, tag_then(0x8926, &[0, 0, 0, 5], 0x0800, &v4)),
        (LinkType::ETHERNET, tag_then(0x893f, &[0, 3, 0, 0, 0, 0], 0x86dd, &v6)),
        (LinkType::ETHERNET, ethernet(0x88e7, &[&[0, 0x12, 0x34, 0x56][..], &inner].concat())),
        (LinkType::PPP, ppp(false, &[0x21], &v4)),
        (LinkType::PPP_HDLC, ppp(true, &[0x00, 0x57], &v6)),
        (LinkType::PPP_HDLC, cisco_hdlc(0x0800, &v4)),
        (LinkType::PPP_ETHER, pppoe(0, 0x0021, &v4)),
        (LinkType::C_HDLC, cisco_hdlc(0x8847, &mpls(&[16], &v6))),
        (LinkType::NFLOG, nflog(false, 2, &[(1, &[8, 0, 1, 0]), (10, b"mail\0"), (9, &v4)])),
        (LinkType::NFLOG, nflog(true, 10, &[(9, &v6)])),
        (LinkType::PKTAP, pktap(156, 1, 1, &ethernet(0x0800, &v4))),
        (LinkType::PFLOG, pflog(61, 24, &v6)),
        (LinkType::ENC, [&2u32.to_le_bytes()[..], &[0; 8], &v4].concat()),
        (LinkType::IPNET, [&[2, 2, 0, 0][..], &[0; 20], &v4].concat()),
        (LinkType::NETANALYZER, netanalyzer(0, false, 0, &ethernet(0x86dd, &v6))),
        (LinkType::NETANALYZER_TRANSPARENT, netanalyzer(0, true, 7, &ethernet(0x0800, &v4))),
        (LinkType::ERF, erf(2, 0x04, 2, &ethernet(0x0800, &v4))),
        (LinkType::ERF, erf(23, 0x04, 0, &v6)),
    ];
    let fragmented = ipv4_fragments(&ipv4_tcp(CLIENT, SERVER, &long_line(100)), 1, 64);
    let fragmented6 = ipv6_fragments(&ipv6_tcp(CLIENT6, SERVER6, &long_line(100)), 1, 64);
    frames.extend(fragmented.into_iter().chain(fragmented6).map(|fragment| (LinkType::RAW, fragment)));
    frames
}

#[test]
fn corpus_frames_decode() {
    let mut decoder = Decoder::new();
    for (index, (link_type, frame)) in corpus().iter().enumerate() {
        let result = decode_at(&mut decoder, *link_type, frame, 0);
        assert!(matches!(result, Ok(_) | Err(SkipReason::IpFragment)), "frame {index}: {result:?}");
    }
    assert_eq!(decoder.stats.fragments_reassembled, 2);
}

#[test]
fn every_truncation_of_every_corpus_frame_is_handled() {
    let mut decoder = Decoder::new();
    for (link_type, frame) in corpus() {
        for len in 0..frame.len() {
            let _ = decode_at(&mut decoder, link_type, &frame[..len], 0);
        }
    }
    assert!(decoder.stats.truncated > 0);
}

/// How many frames the counters account for (each frame ends in exactly one of them).
fn outcomes(stats: &DecodeStats) -> u64 {
    stats.tcp
        + stats.unsupported_link_type
        + stats.not_ip
        + stats.not_tcp
        + stats.truncated
        + stats.malformed
        + stats.ip_fragments
        + stats.tunnel_too_deep
        + stats.encrypted
        + stats.failed_frame_check
}

#[test]
fn the_fast_path_takes_the_common_frames_and_agrees_with_the_general_walk() {
    let v4 = ipv4_tcp(CLIENT, SERVER, LINE);
    let v6 = ipv6_tcp(CLIENT6, SERVER6, LINE);
    let common = [
        ethernet(0x0800, &v4),
        ethernet(0x86dd, &v6),
        tagged(&[(0x8100, 7)], 0x0800, &v4),
        tagged(&[(0x88a8, 1), (0x8100, 2)], 0x86dd, &v6),
    ];
    for frame in &common {
        let fast = fast::ethernet_tcp(frame).map(|packet| seen(&packet));
        assert!(fast.is_some(), "a common frame left to the general walk");
        assert_eq!(fast.ok_or(SkipReason::NotTcp), general_walk(frame));
    }
    // Three tags, a legacy QinQ tag, a padded IPv4 packet: fast or not, the same answer.
    let padded = ethernet(0x0800, &[v4.as_slice(), &[0; 16]].concat());
    for frame in
        [tagged(&[(0x8100, 1), (0x8100, 2), (0x8100, 3)], 0x0800, &v4), tagged(&[(0x9100, 5)], 0x0800, &v4), padded]
    {
        assert!(fast_path_agrees(&frame));
    }
    for (link_type, frame) in corpus() {
        if link_type == LinkType::ETHERNET {
            for len in 0..=frame.len() {
                assert!(fast_path_agrees(&frame[..len]), "corpus frame cut at {len}");
            }
        }
    }
}

proptest! {
    #[test]
    fn the_fast_path_agrees_with_the_general_walk_on_corrupted_frames(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((0usize..80, any::<u8>()), 1..6),
    ) {
        let ethernet_frames: Vec<Vec<u8>> =
            corpus().into_iter().filter(|(link, _)| *link == LinkType::ETHERNET).map(|(_, frame)| frame).collect();
        let mut frame = ethernet_frames[pick.index(ethernet_frames.len())].clone();
        for (position, byte) in edits {
            let at = position % frame.len();
            frame[at] = byte;
        }
        prop_assert!(fast_path_agrees(&frame));
    }

    #[test]
    fn random_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        link in prop::sample::select(vec![0u32, 1, 9, 12, 14, 50, 51, 101, 104, 108, 109, 113, 117, 197, 226, 228, 229, 239, 240, 241, 258, 276]),
    ) {
        let mut decoder = Decoder::new();
        let _ = decode_at(&mut decoder, LinkType(link), &data, 0);
        prop_assert_eq!(outcomes(&decoder.stats), 1);
    }

    #[test]
    fn corrupted_corpus_frames_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let corpus = corpus();
        let (link_type, mut frame) = corpus[pick.index(corpus.len())].clone();
        for (position, byte) in edits {
            let at = position.index(frame.len());
            frame[at] = byte;
        }
        let mut decoder = Decoder::new();
        for len in [frame.len(), frame.len() / 2] {
            let _ = decode_at(&mut decoder, link_type, &frame[..len], 0);
        }
        prop_assert_eq!(outcomes(&decoder.stats), 2);
    }
}

/// What keeps a closing summary from reading as an all-clear: frames whose contents are out of
/// reach, not a radio's resent frames or a few malformed ones among many.
#[test]
fn only_frames_out_of_reach_are_not_looked_into() {
    let everyday =
        DecodeStats { failed_frame_check: 5, malformed: 3, truncated: 2, not_tcp: 40, ..DecodeStats::default() };
    assert_eq!(everyday.not_looked_into(), 0);
    let hidden = DecodeStats { unsupported_link_type: 13, encrypted: 4, tunnel_too_deep: 1, ..everyday };
    assert_eq!(hidden.not_looked_into(), 18);
}
