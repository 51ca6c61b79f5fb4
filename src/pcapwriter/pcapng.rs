//! pcapng files (draft-ietf-opsawg-pcapng): sections opened by a Section Header Block, each with
//! its own byte order and interfaces (Interface Description Blocks), and packets in Enhanced
//! Packet Blocks that name their interface. Readers must track interfaces per section, so the
//! writer can start new sections and mix link types and timestamp resolutions.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::io::{self, Write};

use super::pcap::{invalid_input, length_field, truncate, ByteOrder, Resolution};
use crate::capture::{LinkType, Timestamp};

const SECTION_HEADER_BLOCK: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION_BLOCK: u32 = 1;
const ENHANCED_PACKET_BLOCK: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPTION_END: u16 = 0;
const OPTION_IF_TSRESOL: u16 = 9;
/// if_tsresol value for 10^-9 s; without the option readers assume 10^-6 s.
const TSRESOL_NANOS: u8 = 9;

#[derive(Clone, Copy)]
struct Interface {
    resolution: Resolution,
    snaplen: u32,
}

/// Writes a pcapng file: a section header at creation, interfaces as added, then packets.
pub struct PcapngWriter<W: Write> {
    out: W,
    byte_order: ByteOrder,
    /// Interfaces of the current section; a packet's interface id indexes this list.
    interfaces: Vec<Interface>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the first Section Header Block.
    pub fn new(out: W, byte_order: ByteOrder) -> io::Result<Self> {
        let mut writer = PcapngWriter { out, byte_order, interfaces: Vec::new() };
        writer.new_section(byte_order)?;
        Ok(writer)
    }

    /// Starts another section, in its own byte order; interfaces of earlier sections no longer count.
    pub fn new_section(&mut self, byte_order: ByteOrder) -> io::Result<()> {
        self.byte_order = byte_order;
        self.interfaces.clear();
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&byte_order.u32(BYTE_ORDER_MAGIC));
        body.extend_from_slice(&byte_order.u16(1));
        body.extend_from_slice(&byte_order.u16(0));
        // Section length -1: unknown, so readers must walk the blocks.
        body.extend_from_slice(&[0xff; 8]);
        self.write_block(SECTION_HEADER_BLOCK, &body)
    }

    /// Declares an interface in the current section and returns its id for [`Self::write_packet`].
    /// Nanosecond interfaces carry an `if_tsresol` option; a `snaplen` of 0 means no limit.
    pub fn add_interface(&mut self, link_type: LinkType, resolution: Resolution, snaplen: u32) -> io::Result<u32> {
        let link = u16::try_from(link_type.0).map_err(|_| invalid_input("pcapng link types are 16 bits"))?;
        let order = self.byte_order;
        let mut body = Vec::with_capacity(20);
        body.extend_from_slice(&order.u16(link));
        body.extend_from_slice(&order.u16(0));
        body.extend_from_slice(&order.u32(snaplen));
        if resolution == Resolution::Nanos {
            body.extend_from_slice(&order.u16(OPTION_IF_TSRESOL));
            body.extend_from_slice(&order.u16(1));
            body.extend_from_slice(&[TSRESOL_NANOS, 0, 0, 0]);
            body.extend_from_slice(&order.u16(OPTION_END));
            body.extend_from_slice(&order.u16(0));
        }
        self.write_block(INTERFACE_DESCRIPTION_BLOCK, &body)?;
        let id = length_field(self.interfaces.len())?;
        self.interfaces.push(Interface { resolution, snaplen });
        Ok(id)
    }

    /// Writes one packet seen whole on the wire (cut to the interface's snaplen if longer).
    pub fn write_packet(&mut self, interface: u32, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let orig_len = length_field(data.len())?;
        self.write_packet_with_orig_len(interface, ts, data, orig_len)
    }

    /// Writes one packet claiming `orig_len` bytes on the wire; see
    /// [`super::PcapWriter::write_packet_with_orig_len`].
    pub fn write_packet_with_orig_len(
        &mut self,
        interface: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let declared = usize::try_from(interface).ok().and_then(|index| self.interfaces.get(index).copied());
        let Some(declared) = declared else {
            return Err(invalid_input("packet for an interface not declared in this section"));
        };
        let kept = truncate(data, declared.snaplen);
        let units = declared.resolution.units(ts);
        let order = self.byte_order;
        let mut body = Vec::with_capacity(20usize.saturating_add(kept.len()).saturating_add(3));
        body.extend_from_slice(&order.u32(interface));
        body.extend_from_slice(&order.u32((units >> 32) as u32));
        body.extend_from_slice(&order.u32(units as u32));
        body.extend_from_slice(&order.u32(length_field(kept.len())?));
        body.extend_from_slice(&order.u32(orig_len));
        body.extend_from_slice(kept);
        pad_to_word(&mut body);
        self.write_block(ENHANCED_PACKET_BLOCK, &body)
    }

    /// Flushes and hands back the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// Type, total length, body (already padded to 32 bits), total length again.
    fn write_block(&mut self, block_type: u32, body: &[u8]) -> io::Result<()> {
        let total = length_field(body.len().saturating_add(12))?;
        let order = self.byte_order;
        let mut block = Vec::with_capacity(body.len().saturating_add(12));
        block.extend_from_slice(&order.u32(block_type));
        block.extend_from_slice(&order.u32(total));
        block.extend_from_slice(body);
        block.extend_from_slice(&order.u32(total));
        self.out.write_all(&block)
    }
}

fn pad_to_word(body: &mut Vec<u8>) {
    let padding = (4 - body.len() % 4) % 4;
    body.resize(body.len().saturating_add(padding), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::parse_pcapng;
    use pcap_parser::pcapng::Block;

    #[test]
    fn sections_interfaces_and_packets_parse_back() {
        let ts = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        let mut writer = PcapngWriter::new(Vec::new(), ByteOrder::Little).unwrap();
        let ether = writer.add_interface(LinkType::ETHERNET, Resolution::Micros, 0).unwrap();
        let raw = writer.add_interface(LinkType::RAW, Resolution::Nanos, 3).unwrap();
        assert_eq!((ether, raw), (0, 1));
        writer.write_packet(ether, ts, b"hello").unwrap();
        writer.write_packet(raw, ts, b"truncated").unwrap();
        writer.new_section(ByteOrder::Big).unwrap();
        assert!(writer.write_packet(raw, ts, b"x").is_err(), "interface 1 belongs to the old section");
        let sll = writer.add_interface(LinkType::LINUX_SLL, Resolution::Nanos, 0).unwrap();
        writer.write_packet_with_orig_len(sll, ts, b"abcd", 1514).unwrap();
        let bytes = writer.into_inner().unwrap();

        let (rest, capture) = parse_pcapng(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(capture.sections.len(), 2);
        let first = capture.sections.first().unwrap();
        let second = capture.sections.get(1).unwrap();
        assert!(!first.big_endian);
        assert!(second.big_endian);

        let interfaces: Vec<_> = first.iter_interfaces().collect();
        assert_eq!(interfaces.len(), 2);
        assert_eq!(interfaces.first().unwrap().linktype.0, 1);
        assert_eq!(interfaces.first().unwrap().ts_resolution(), Some(1_000_000));
        assert_eq!(interfaces.get(1).unwrap().linktype.0, 101);
        assert_eq!(interfaces.get(1).unwrap().ts_resolution(), Some(1_000_000_000));
        assert_eq!(interfaces.get(1).unwrap().snaplen, 3);

        let packets: Vec<_> = first
            .blocks
            .iter()
            .filter_map(|block| match block {
                Block::EnhancedPacket(epb) => Some(epb),
                _ => None,
            })
            .collect();
        assert_eq!(packets.len(), 2);
        let hello = packets.first().unwrap();
        assert_eq!((hello.if_id, hello.caplen, hello.origlen), (0, 5, 5));
        assert_eq!(hello.data.get(..5), Some(&b"hello"[..]));
        assert_eq!(hello.decode_ts(0, 1_000_000), (1_700_000_000, 123_456));
        let cut = packets.get(1).unwrap();
        assert_eq!((cut.if_id, cut.caplen, cut.origlen), (1, 3, 9));
        assert_eq!(cut.decode_ts(0, 1_000_000_000), (1_700_000_000, 123_456_789));

        let sll_packet = second
            .blocks
            .iter()
            .find_map(|block| match block {
                Block::EnhancedPacket(epb) => Some(epb),
                _ => None,
            })
            .unwrap();
        assert_eq!((sll_packet.if_id, sll_packet.caplen, sll_packet.origlen), (0, 4, 1514));
        assert_eq!(sll_packet.data.get(..4), Some(&b"abcd"[..]));
    }

    #[test]
    fn refuses_link_types_wider_than_16_bits() {
        let mut writer = PcapngWriter::new(Vec::new(), ByteOrder::Little).unwrap();
        let error = writer.add_interface(LinkType(70_000), Resolution::Micros, 0).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
