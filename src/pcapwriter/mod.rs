//! The project's own capture writer: scripts TCP conversations into frames and writes them as pcap
//! or pcapng, so that every test capture is either real or produced by code in this repository.
//!
//! * [`Conversation`] scripts one TCP connection (handshake, data with correct seq/ack, closing,
//!   reordering, retransmissions, gaps) on a chosen [`Link`], optionally in VLANs and [`Encap`]
//!   tunnels, and renders it into [`CapturedFrame`]s.
//! * [`PcapWriter`] and [`PcapngWriter`] write frames with full control over the file format
//!   (byte order, resolution, snaplen, sections, interfaces); [`write_pcap`] and [`write_pcapng`]
//!   cover the common case.
//! * [`interleave`] merges several conversations into one capture by timestamp.
//!
//! ```
//! use credwatch::pcapwriter::{write_pcap, Conversation, Side};
//!
//! let frames = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 110))
//!     .handshake()
//!     .server(b"+OK ready\r\n")
//!     .client(b"USER alice\r\n")
//!     .fin(Side::Client)
//!     .frames()?;
//! assert_eq!(frames.len(), 3 + 2 + 3);
//! let capture: Vec<u8> = write_pcap(Vec::new(), &frames)?;
//! assert_eq!(capture.get(..4), Some(&[0x4d, 0x3c, 0xb2, 0xa1][..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod capture_headers;
mod conversation;
mod link;
mod pcap;
mod pcapng;
mod tunnel;

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub use conversation::{Conversation, ScriptError, Side};
pub use link::Link;
pub use pcap::{ByteOrder, PcapOptions, PcapWriter, Resolution, DEFAULT_SNAPLEN};
pub use pcapng::PcapngWriter;
pub use tunnel::{
    Encap, GeneveOption, Packet, PacketKind, TunnelEnds, GENEVE_PORT, GTP_U_PORT, L2TP_PORT, MPLS_IN_UDP_PORT,
    TEREDO_PORT, TZSP_PORT, VXLAN_GPE_PORT, VXLAN_PORT,
};

use crate::capture::{Frame, LinkType, Timestamp};

/// One scripted frame, owning its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    pub ts: Timestamp,
    pub link_type: LinkType,
    pub data: Vec<u8>,
}

impl CapturedFrame {
    /// A borrowed view, as a capture source would hand it out, to feed the decoder without a file.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            link_type: self.link_type,
            orig_len: u32::try_from(self.data.len()).unwrap_or(u32::MAX),
            data: &self.data,
        }
    }
}

impl fmt::Debug for CapturedFrame {
    /// Frames hold test passwords: print only the length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturedFrame")
            .field("ts", &self.ts)
            .field("link_type", &self.link_type)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Merges conversations into one capture, ordered by timestamp; frames with equal timestamps keep
/// their conversation order.
pub fn interleave(conversations: impl IntoIterator<Item = Vec<CapturedFrame>>) -> Vec<CapturedFrame> {
    let mut frames: Vec<CapturedFrame> = conversations.into_iter().flatten().collect();
    frames.sort_by_key(|frame| frame.ts);
    frames
}

/// Writes `frames` as a nanosecond, little-endian pcap file with the link type of the first frame
/// (Ethernet if there is none); frames of another link type are refused, since pcap has only one.
pub fn write_pcap<W: Write>(out: W, frames: &[CapturedFrame]) -> io::Result<W> {
    write_pcap_cut(out, frames, DEFAULT_SNAPLEN)
}

/// [`write_pcap`] with every record cut to `snaplen` bytes, as `tcpdump -s` writes them: a
/// capture that lost the ends of long frames.
pub fn write_pcap_cut<W: Write>(out: W, frames: &[CapturedFrame], snaplen: u32) -> io::Result<W> {
    let link_type = frames.first().map_or(LinkType::ETHERNET, |frame| frame.link_type);
    let options = PcapOptions { resolution: Resolution::Nanos, snaplen, ..PcapOptions::new(link_type) };
    let mut writer = PcapWriter::new(out, options)?;
    for frame in frames {
        writer.write_frame(frame)?;
    }
    writer.into_inner()
}

/// Writes `frames` as a little-endian pcapng file with one nanosecond interface per link type, so
/// frames of different link types can share the capture.
pub fn write_pcapng<W: Write>(out: W, frames: &[CapturedFrame]) -> io::Result<W> {
    let mut writer = PcapngWriter::new(out, ByteOrder::Little)?;
    let mut interfaces: Vec<(LinkType, u32)> = Vec::new();
    for frame in frames {
        let known = interfaces.iter().find(|(link_type, _)| *link_type == frame.link_type);
        let interface = match known {
            Some((_, id)) => *id,
            None => {
                let id = writer.add_interface(frame.link_type, Resolution::Nanos, DEFAULT_SNAPLEN)?;
                interfaces.push((frame.link_type, id));
                id
            }
        };
        writer.write_packet(interface, frame.ts, &frame.data)?;
    }
    writer.into_inner()
}

/// [`write_pcap`] to a new file at `path`.
pub fn write_pcap_file(path: impl AsRef<Path>, frames: &[CapturedFrame]) -> io::Result<()> {
    write_pcap(BufWriter::new(File::create(path)?), frames)?;
    Ok(())
}

/// [`write_pcapng`] to a new file at `path`.
pub fn write_pcapng_file(path: impl AsRef<Path>, frames: &[CapturedFrame]) -> io::Result<()> {
    write_pcapng(BufWriter::new(File::create(path)?), frames)?;
    Ok(())
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::pcapng::Block;
    use pcap_parser::{parse_pcap, parse_pcapng};
    use test_support::{segments, tcp_of};

    fn login(client_port: u16, link: Link) -> Vec<CapturedFrame> {
        Conversation::new(([10, 0, 0, 1], client_port), ([10, 0, 0, 2], 110))
            .link(link)
            .handshake()
            .server(b"+OK\r\n")
            .client(b"USER a\r\n")
            .fin(Side::Client)
            .frames()
            .unwrap()
    }

    #[test]
    fn a_conversation_round_trips_through_pcap() {
        let frames = login(40_000, Link::Ethernet);
        let bytes = write_pcap(Vec::new(), &frames).unwrap();
        let (rest, capture) = parse_pcap(&bytes).unwrap();
        assert!(rest.is_empty());
        assert!(capture.header.is_nanosecond_precision());
        assert_eq!(capture.header.network.0, 1);
        assert_eq!(capture.blocks.len(), frames.len());
        for (record, frame) in capture.blocks.iter().zip(&frames) {
            assert_eq!(Timestamp::from_secs_nanos(record.ts_sec.into(), record.ts_usec), frame.ts);
            assert_eq!(record.data, frame.data.as_slice());
            assert_eq!(record.origlen as usize, frame.data.len());
        }
        let reparsed: Vec<CapturedFrame> = capture
            .blocks
            .iter()
            .map(|record| CapturedFrame {
                ts: Timestamp::from_secs_nanos(record.ts_sec.into(), record.ts_usec),
                link_type: LinkType::ETHERNET,
                data: record.data.to_vec(),
            })
            .collect();
        assert_eq!(segments(&reparsed)[4].payload, b"USER a\r\n");
    }

    #[test]
    fn interleaved_conversations_of_two_link_types_share_a_pcapng() {
        let mut late = login(40_001, Link::LinuxSll);
        let mut shift = Conversation::new(([10, 0, 0, 1], 1), ([10, 0, 0, 2], 2));
        shift.start_at(Timestamp::from_secs_nanos(1_700_000_000, 500_000)).client(b"x");
        late.extend(shift.link(Link::LinuxSll).frames().unwrap());
        let merged = interleave([login(40_000, Link::Ethernet), late]);
        assert!(merged.windows(2).all(|pair| pair[0].ts <= pair[1].ts));
        assert_eq!(merged.len(), 8 + 8 + 1);
        assert_eq!(merged[0].link_type, LinkType::ETHERNET, "equal timestamps keep conversation order");
        assert_eq!(merged[1].link_type, LinkType::LINUX_SLL);

        let bytes = write_pcapng(Vec::new(), &merged).unwrap();
        let (rest, capture) = parse_pcapng(&bytes).unwrap();
        assert!(rest.is_empty());
        let section = capture.sections.first().unwrap();
        let link_types: Vec<i32> = section.iter_interfaces().map(|idb| idb.linktype.0).collect();
        assert_eq!(link_types, vec![1, 113]);
        let packets: Vec<_> = section
            .blocks
            .iter()
            .filter_map(|block| match block {
                Block::EnhancedPacket(epb) => Some(epb),
                _ => None,
            })
            .collect();
        assert_eq!(packets.len(), merged.len());
        for (packet, frame) in packets.iter().zip(&merged) {
            let expected_interface = if frame.link_type == LinkType::ETHERNET { 0 } else { 1 };
            assert_eq!(packet.if_id, expected_interface);
            assert_eq!(&packet.data[..packet.caplen as usize], frame.data.as_slice());
            let (secs, nanos) = packet.decode_ts(0, 1_000_000_000);
            assert_eq!(Timestamp::from_secs_nanos(secs.into(), nanos), frame.ts);
        }
    }

    #[test]
    fn pcap_refuses_mixed_link_types() {
        let mut frames = login(40_000, Link::Ethernet);
        frames.extend(login(40_001, Link::RawIp));
        assert_eq!(write_pcap(Vec::new(), &frames).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn files_are_written_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let frames = login(40_000, Link::RawIp);
        let pcap_path = dir.path().join("login.pcap");
        let pcapng_path = dir.path().join("login.pcapng");
        write_pcap_file(&pcap_path, &frames).unwrap();
        write_pcapng_file(&pcapng_path, &frames).unwrap();
        let pcap = std::fs::read(pcap_path).unwrap();
        assert_eq!(parse_pcap(&pcap).unwrap().1.blocks.len(), frames.len());
        let pcapng = std::fs::read(pcapng_path).unwrap();
        assert_eq!(parse_pcapng(&pcapng).unwrap().1.sections.len(), 1);
    }

    #[test]
    fn as_frame_borrows_the_bytes() {
        let frames = login(40_000, Link::Ethernet);
        let frame = frames[3].as_frame();
        assert_eq!((frame.ts, frame.link_type), (frames[3].ts, LinkType::ETHERNET));
        assert_eq!(frame.orig_len as usize, frame.data.len());
        let packet = etherparse::SlicedPacket::from_ethernet(frame.data).unwrap();
        assert_eq!(tcp_of(&packet).payload, b"+OK\r\n");
    }
}
