//! The common case without the general walk: an Ethernet frame with at most two 802.1Q/802.1ad
//! tags, carrying IPv4 without options or IPv6 without extension headers, not fragmented, with a
//! TCP segment, all of it in the capture. Most frames of any capture are like this, and reading
//! their fixed offsets directly costs a fraction of peeling them layer by layer.
//!
//! Anything else (tunnels, options, fragments, snaplen cuts, odd lengths) returns `None` and is
//! decoded the general way. Where this path answers, it answers exactly what the general walk
//! would: the decoder tests hold it to that on every frame they build and on random corruptions
//! of them.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ip::TCP as PROTOCOL_TCP;
use super::link::{be_u16, be_u32, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use super::{TcpFlags, TcpPacket, VlanStack};

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const TCP_HEADER_LEN: usize = 20;
/// IPv4's more-fragments flag and fragment offset.
const IPV4_FRAGMENTING: u16 = 0x3fff;
const TCP_FLAG_BITS: u8 = TcpFlags::FIN | TcpFlags::SYN | TcpFlags::RST | TcpFlags::PSH | TcpFlags::ACK | TcpFlags::URG;

/// The TCP segment of an Ethernet frame in the common case, or `None` for the general walk.
pub(super) fn ethernet_tcp(frame: &[u8]) -> Option<TcpPacket<'_>> {
    let mut ether_type = be_u16(frame, ETHERNET_HEADER_LEN - 2)?;
    let mut offset = ETHERNET_HEADER_LEN;
    let mut vlan = VlanStack::default();
    for _ in 0..2 {
        if ether_type != ETHERTYPE_VLAN && ether_type != ETHERTYPE_QINQ {
            break;
        }
        vlan.push(be_u16(frame, offset)?);
        ether_type = be_u16(frame, offset + 2)?;
        offset += VLAN_TAG_LEN;
    }
    let ip = frame.get(offset..)?;
    let (src, dst, segment) = match ether_type {
        ETHERTYPE_IPV4 => ipv4(ip)?,
        ETHERTYPE_IPV6 => ipv6(ip)?,
        _ => return None,
    };
    tcp(src, dst, segment, vlan)
}

/// Version 4 with a 20-byte header, not a fragment, TCP, wholly captured and long enough for a
/// TCP header: the addresses and the segment (up to the declared length: Ethernet pads).
fn ipv4(ip: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    let header = ip.first_chunk::<IPV4_HEADER_LEN>()?;
    let [version_ihl, _, _, _, _, _, _, _, _, protocol, _, _, s0, s1, s2, s3, d0, d1, d2, d3] = *header;
    let total_len = usize::from(be_u16(ip, 2)?);
    let fragmenting = be_u16(ip, 6)? & IPV4_FRAGMENTING != 0;
    if version_ihl != 0x45 || protocol != PROTOCOL_TCP || fragmenting || total_len < IPV4_HEADER_LEN + TCP_HEADER_LEN {
        return None;
    }
    let segment = ip.get(IPV4_HEADER_LEN..total_len)?;
    Some((Ipv4Addr::new(s0, s1, s2, s3).into(), Ipv4Addr::new(d0, d1, d2, d3).into(), segment))
}

/// Version 6 whose next header is TCP, with a non-zero payload length wholly captured.
fn ipv6(ip: &[u8]) -> Option<(IpAddr, IpAddr, &[u8])> {
    let header = ip.first_chunk::<IPV6_HEADER_LEN>()?;
    let payload_len = usize::from(be_u16(ip, 4)?);
    if header.first()? >> 4 != 6 || *header.get(6)? != PROTOCOL_TCP || payload_len < TCP_HEADER_LEN {
        return None;
    }
    let segment = ip.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + payload_len)?;
    let src: [u8; 16] = *header.get(8..24)?.first_chunk::<16>()?;
    let dst: [u8; 16] = *header.get(24..40)?.first_chunk::<16>()?;
    Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into(), segment))
}

/// A TCP header whose data offset fits the segment.
fn tcp(src: IpAddr, dst: IpAddr, segment: &[u8], vlan: VlanStack) -> Option<TcpPacket<'_>> {
    let data_offset = usize::from(segment.get(12)? >> 4) * 4;
    if data_offset < TCP_HEADER_LEN {
        return None;
    }
    let payload = segment.get(data_offset..)?;
    Some(TcpPacket {
        src,
        dst,
        src_port: be_u16(segment, 0)?,
        dst_port: be_u16(segment, 2)?,
        seq: be_u32(segment, 4)?,
        ack: be_u32(segment, 8)?,
        flags: TcpFlags(segment.get(13)? & TCP_FLAG_BITS),
        window: be_u16(segment, 14)?,
        vlan,
        tunnel: 0,
        payload,
        payload_missing: 0,
    })
}
