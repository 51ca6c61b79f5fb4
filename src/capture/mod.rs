//! Packet sources: capture files (pcap, pcapng, gzip-compressed either way) and, with the `live`
//! feature, network interfaces through libpcap.
//!
//! A source hands out borrowed [`Frame`]s: the bytes stay in the reader's buffer and only the TCP
//! payloads the later stages keep are ever copied. A file's buffer is a [`SharedBlock`], which a
//! threaded run shares with its workers instead of copying the payloads it sends them.

mod block;
mod file;
#[cfg(feature = "live")]
pub mod live;
mod timestamp;

pub use block::SharedBlock;
pub(crate) use file::starts_like_a_capture;
#[cfg(test)]
pub(crate) use file::INITIAL_BUFFER_LEN;
pub use file::{CaptureError, CaptureErrorKind, Compression, FileSource};
pub use timestamp::{Timestamp, CLOCK_JUMP};

/// A link-layer header type, as numbered by the tcpdump.org LINKTYPE registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (IPv4 or IPv6, told apart by the version nibble).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: like NULL, but the family is big-endian.
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// 802.11 (Wi-Fi) frames without a radio header.
    pub const IEEE802_11: LinkType = LinkType(105);
    /// 802.11 frames behind a radiotap header (monitor mode on Linux and macOS).
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    /// 802.11 frames behind a Prism monitoring header (old Linux drivers), or an AVS one.
    pub const IEEE802_11_PRISM: LinkType = LinkType(119);
    /// 802.11 frames behind an AVS monitoring header.
    pub const IEEE802_11_AVS: LinkType = LinkType(163);
    /// Per-Packet Information header (AirPcap, Kismet) before a frame of the type it names.
    pub const PPI: LinkType = LinkType(192);
    /// Some old captures store raw IP under the DLT_RAW values of BSD (12 and 14).
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    /// PPP (RFC 1661), with or without the address and control fields of HDLC-like framing.
    pub const PPP: LinkType = LinkType(9);
    /// PPP in HDLC-like framing (RFC 1662), or Cisco HDLC, told apart by the first byte.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// PPPoE session frames (RFC 2516) without their Ethernet header (NetBSD's pppoe(4)).
    pub const PPP_ETHER: LinkType = LinkType(51);
    /// Cisco HDLC (RFC 1547 §4.3.1): address, control, then an EtherType.
    pub const C_HDLC: LinkType = LinkType(104);
    /// Endace ERF records (DAG cards): a record header, then Ethernet, IPv4 or IPv6 among others.
    pub const ERF: LinkType = LinkType(197);
    /// OpenBSD's enc(4): IPsec traffic before encryption or after decryption, behind a family,
    /// an SPI and flags.
    pub const ENC: LinkType = LinkType(109);
    /// pf's log (pflog(4) on the BSDs and macOS): the rule's verdict, then the packet.
    pub const PFLOG: LinkType = LinkType(117);
    /// Solaris and illumos ipnet: a header with the IP family, then the packet.
    pub const IPNET: LinkType = LinkType(226);
    /// Linux netfilter's NFLOG: a family, then attributes, the packet one of them.
    pub const NFLOG: LinkType = LinkType(239);
    /// Hilscher netANALYZER taps: a 4-byte header, then Ethernet with its FCS.
    pub const NETANALYZER: LinkType = LinkType(240);
    /// netANALYZER in transparent mode: the header, then Ethernet from its preamble to its FCS.
    pub const NETANALYZER_TRANSPARENT: LinkType = LinkType(241);
    /// Apple's PKTAP header (macOS `pktap` interface) before a frame of the type it names.
    pub const PKTAP: LinkType = LinkType(258);
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub link_type: LinkType,
    /// Length of the frame on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    pub data: &'a [u8],
}

impl std::fmt::Debug for Frame<'_> {
    /// Frames carry payload bytes, which may hold passwords: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("ts", &self.ts)
            .field("link_type", &self.link_type)
            .field("orig_len", &self.orig_len)
            .field("caplen", &self.data.len())
            .finish()
    }
}
