//! IPv4 and IPv6 headers, with IPv4 options, IPv6 extension headers and AH, down to the upper
//! layer protocol. Header checks are etherparse's; the walk over extension headers is ours, so
//! that it stops at a fragment header (what follows it in a later fragment is data, not headers).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::net::IpAddr;

use etherparse::{
    err, IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6Header, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice,
};

use super::SkipReason;

pub(super) const TCP: u8 = IpNumber::TCP.0;
pub(super) const UDP: u8 = IpNumber::UDP.0;
pub(super) const GRE: u8 = IpNumber::GRE.0;
pub(super) const IPV4_IN_IP: u8 = IpNumber::IPV4.0;
pub(super) const IPV6_IN_IP: u8 = IpNumber::IPV6.0;
const AUTH: u8 = IpNumber::AUTHENTICATION_HEADER.0;
const HOP_BY_HOP: u8 = IpNumber::IPV6_HEADER_HOP_BY_HOP.0;
const ROUTING: u8 = IpNumber::IPV6_ROUTE_HEADER.0;
const FRAGMENT: u8 = IpNumber::IPV6_FRAGMENTATION_HEADER.0;
const DESTINATION_OPTIONS: u8 = IpNumber::IPV6_DESTINATION_OPTIONS.0;

/// Where a fragment's payload goes in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
    /// Byte offset of the payload within the reassembled datagram.
    pub offset: u32,
    /// More fragments follow this one.
    pub more: bool,
}

/// An IP packet with its headers peeled off.
#[derive(Clone, Copy, Debug)]
pub(super) struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (for a fragment: the first header of the fragmented part).
    pub protocol: u8,
    /// The payload bytes the capture holds (never beyond the packet's declared length).
    pub payload: &'a [u8],
    /// Payload bytes declared by the IP length field but cut off by the capture's snaplen.
    pub missing: u32,
    pub fragment: Option<Fragment>,
}

impl IpPacket<'_> {
    fn is_ipv6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// The header fields alone, without borrowing the payload: what [`reassembled`] needs of a
    /// datagram's fragment after the fragment's bytes are gone.
    pub fn addressing(&self) -> IpPacket<'static> {
        IpPacket {
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            payload: &[],
            missing: self.missing,
            fragment: self.fragment,
        }
    }
}

/// Whether a packet of this protocol can lead to TCP: TCP itself, a tunnel we peel, or an
/// extension header in front of one (possible for fragments, whose headers are parsed only after
/// reassembly). Everything else is rejected before any more work.
pub(super) fn may_carry_tcp(protocol: u8) -> bool {
    matches!(protocol, TCP | UDP | GRE | IPV4_IN_IP | IPV6_IN_IP | AUTH | HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS)
}

/// Parses an IPv4 or IPv6 packet (told apart by its version nibble).
pub(super) fn parse(bytes: &[u8]) -> Result<IpPacket<'_>, SkipReason> {
    match bytes.first().map(|byte| byte >> 4) {
        None => Err(SkipReason::Truncated),
        Some(4) => parse_v4(bytes),
        Some(6) => parse_v6(bytes),
        Some(_) => Err(SkipReason::Malformed),
    }
}

fn parse_v4(bytes: &[u8]) -> Result<IpPacket<'_>, SkipReason> {
    use err::ipv4::HeaderSliceError;
    let header = Ipv4HeaderSlice::from_slice(bytes).map_err(|err| match err {
        HeaderSliceError::Len(_) => SkipReason::Truncated,
        HeaderSliceError::Content(_) => SkipReason::Malformed,
    })?;
    let header_len = header.slice().len();
    // A total length shorter than the header shows up in captures of TCP segmentation offload
    // (the kernel fills it in later): trust the capture then, as etherparse's lax slicing does.
    let declared_len = match usize::from(header.total_len()) {
        len if len < header_len => bytes.len(),
        len => len,
    };
    let (payload, missing) = split_declared(bytes, header_len, declared_len);
    let mut packet = IpPacket {
        src: header.source_addr().into(),
        dst: header.destination_addr().into(),
        protocol: header.protocol().0,
        payload,
        missing,
        fragment: None,
    };
    if header.is_fragmenting_payload() {
        packet.fragment = Some(Fragment {
            id: u32::from(header.identification()),
            offset: u32::from(header.fragments_offset().byte_offset()),
            more: header.more_fragments(),
        });
        Ok(packet)
    } else {
        skip_extension_headers(packet)
    }
}

fn parse_v6(bytes: &[u8]) -> Result<IpPacket<'_>, SkipReason> {
    use err::ipv6::HeaderSliceError;
    let header = Ipv6HeaderSlice::from_slice(bytes).map_err(|err| match err {
        HeaderSliceError::Len(_) => SkipReason::Truncated,
        HeaderSliceError::Content(_) => SkipReason::Malformed,
    })?;
    // A zero payload length means a jumbogram or segmentation offload: trust the capture then.
    let declared_len = match usize::from(header.payload_length()) {
        0 => bytes.len(),
        len => Ipv6Header::LEN + len,
    };
    let (payload, missing) = split_declared(bytes, Ipv6Header::LEN, declared_len);
    skip_extension_headers(IpPacket {
        src: header.source_addr().into(),
        dst: header.destination_addr().into(),
        protocol: header.next_header().0,
        payload,
        missing,
        fragment: None,
    })
}

/// The payload between the header and the declared end (or the end of the capture, if sooner),
/// and how many declared bytes the capture lacks.
fn split_declared(bytes: &[u8], header_len: usize, declared_len: usize) -> (&[u8], u32) {
    let available = declared_len.min(bytes.len());
    let missing = u32::try_from(declared_len.saturating_sub(available)).unwrap_or(u32::MAX);
    (bytes.get(header_len..available).unwrap_or_default(), missing)
}

/// Steps over AH and (IPv6 only) hop-by-hop, routing, destination options and fragment headers.
/// A fragment header that really fragments stops the walk: the rest is fragment data.
fn skip_extension_headers(mut packet: IpPacket<'_>) -> Result<IpPacket<'_>, SkipReason> {
    let ipv6 = packet.is_ipv6();
    loop {
        let (header_len, next) = match packet.protocol {
            AUTH => {
                let header = IpAuthHeaderSlice::from_slice(packet.payload).map_err(|err| match err {
                    err::ip_auth::HeaderSliceError::Len(_) => SkipReason::Truncated,
                    err::ip_auth::HeaderSliceError::Content(_) => SkipReason::Malformed,
                })?;
                (header.slice().len(), header.next_header().0)
            }
            HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS if ipv6 => {
                let header = Ipv6RawExtHeaderSlice::from_slice(packet.payload).map_err(|_| SkipReason::Truncated)?;
                (header.slice().len(), header.next_header().0)
            }
            FRAGMENT if ipv6 => {
                let header = Ipv6FragmentHeaderSlice::from_slice(packet.payload).map_err(|_| SkipReason::Truncated)?;
                if header.is_fragmenting_payload() {
                    packet.fragment = Some(Fragment {
                        id: header.identification(),
                        offset: u32::from(header.fragment_offset().byte_offset()),
                        more: header.more_fragments(),
                    });
                }
                (header.slice().len(), header.next_header().0)
            }
            _ => return Ok(packet),
        };
        packet.payload = packet.payload.get(header_len..).unwrap_or_default();
        packet.protocol = next;
        if packet.fragment.is_some() {
            return Ok(packet);
        }
    }
}

/// The packet that a completed datagram makes: the first fragment's addressing with the
/// reassembled payload, whose leading extension headers (if any) are parsed now.
pub(super) fn reassembled<'a>(fragment: &IpPacket<'_>, datagram: &'a [u8]) -> Result<IpPacket<'a>, SkipReason> {
    let packet = skip_extension_headers(IpPacket {
        src: fragment.src,
        dst: fragment.dst,
        protocol: fragment.protocol,
        payload: datagram,
        missing: 0,
        fragment: None,
    })?;
    match packet.fragment {
        // A fragment header inside a reassembled datagram is nonsense.
        Some(_) => Err(SkipReason::Malformed),
        None => Ok(packet),
    }
}
