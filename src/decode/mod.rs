//! Frame decoding: link layer (Ethernet, Linux cooked v1/v2, raw IP, BSD loopback), VLAN tags,
//! tunnels, IPv4/IPv6 (with extension headers) down to TCP, without copying.
//!
//! Data problems are not errors: a frame that is not TCP, or is cut short, is [`Decoded::Skipped`]
//! with a reason that is counted.
//!
//! TO BE IMPLEMENTED (helper): see the interface below.

use std::net::IpAddr;

use crate::capture::LinkType;

/// The VLAN ids a frame carried, outermost first (802.1Q, QinQ and deeper stacks, up to four).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VlanStack {
    ids: [u16; 4],
    len: u8,
}

impl VlanStack {
    /// Appends an id; ids past the fourth are ignored (and the stack still tells flows apart
    /// by the first four).
    pub fn push(&mut self, id: u16) {
        if let Some(slot) = self.ids.get_mut(usize::from(self.len)) {
            *slot = id & 0x0fff;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// TCP header flags (the low byte of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment, its addressing and its payload borrowed from the frame.
#[derive(Clone, Copy)]
pub struct TcpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub vlan: VlanStack,
    /// Identifies the tunnel the packet came out of (0: none), so that inner flows of different
    /// tunnels with overlapping addresses never mix.
    pub tunnel: u64,
    /// The TCP payload; shorter than the segment when the snaplen cut the frame.
    pub payload: &'a [u8],
    /// Payload bytes the frame should have held but the snaplen cut off.
    pub payload_missing: u32,
}

impl std::fmt::Debug for TcpPacket<'_> {
    /// Payloads may hold passwords: print only their length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpPacket")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("src_port", &self.src_port)
            .field("dst_port", &self.dst_port)
            .field("seq", &self.seq)
            .field("ack", &self.ack)
            .field("flags", &self.flags)
            .field("vlan", &self.vlan.as_slice())
            .field("tunnel", &self.tunnel)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why a frame yielded no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    UnsupportedLinkType,
    NotIp,
    NotTcp,
    Truncated,
    Malformed,
    /// A fragment of an IP datagram (reassembly not done here).
    IpFragment,
    TunnelTooDeep,
}

#[derive(Debug)]
pub enum Decoded<'a> {
    Tcp(TcpPacket<'a>),
    Skipped(SkipReason),
}

/// Counters for everything decoding skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub tcp: u64,
    pub unsupported_link_type: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub ip_fragments: u64,
    pub tunnel_too_deep: u64,
}

/// Decodes frames to TCP segments.
#[derive(Debug, Default)]
pub struct Decoder {
    pub stats: DecodeStats,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one frame of the given link type.
    pub fn decode<'a>(&mut self, link_type: LinkType, data: &'a [u8]) -> Decoded<'a> {
        let _ = (link_type, data);
        todo!()
    }
}
