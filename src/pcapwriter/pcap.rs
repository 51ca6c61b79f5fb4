//! Classic pcap files (the libpcap format): a 24-byte file header, then one 16-byte record header
//! per packet. Both byte orders and both timestamp resolutions are writable because readers must
//! accept all four combinations.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::io::{self, Write};

use super::CapturedFrame;
use crate::capture::{LinkType, Timestamp};

/// Byte order of a capture file's headers (pcap) or of one section (pcapng).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ByteOrder {
    #[default]
    Little,
    Big,
}

impl ByteOrder {
    pub(super) fn u16(self, value: u16) -> [u8; 2] {
        match self {
            ByteOrder::Little => value.to_le_bytes(),
            ByteOrder::Big => value.to_be_bytes(),
        }
    }

    pub(super) fn u32(self, value: u32) -> [u8; 4] {
        match self {
            ByteOrder::Little => value.to_le_bytes(),
            ByteOrder::Big => value.to_be_bytes(),
        }
    }
}

/// How finely record timestamps are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolution {
    #[default]
    Micros,
    Nanos,
}

impl Resolution {
    const fn nanos_per_unit(self) -> u64 {
        match self {
            Resolution::Micros => 1_000,
            Resolution::Nanos => 1,
        }
    }

    /// The timestamp in units of this resolution since the epoch (sub-unit digits are cut).
    pub(super) const fn units(self, ts: Timestamp) -> u64 {
        ts.as_nanos() / self.nanos_per_unit()
    }

    /// Whole seconds and the fraction in units of this resolution, as pcap records store them.
    fn split(self, ts: Timestamp) -> (u64, u32) {
        let fraction = (ts.as_nanos() % 1_000_000_000) / self.nanos_per_unit();
        // `fraction` is below 10^9, so it always fits.
        (ts.secs(), u32::try_from(fraction).unwrap_or(u32::MAX))
    }
}

/// The largest snaplen tcpdump uses by default.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Settings of a classic pcap file, fixed by its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapOptions {
    pub link_type: LinkType,
    pub resolution: Resolution,
    pub byte_order: ByteOrder,
    /// Records are cut to this many bytes; 0 means no limit.
    pub snaplen: u32,
}

impl PcapOptions {
    /// Microsecond, little-endian, [`DEFAULT_SNAPLEN`]: what tcpdump writes on x86.
    pub const fn new(link_type: LinkType) -> Self {
        PcapOptions {
            link_type,
            resolution: Resolution::Micros,
            byte_order: ByteOrder::Little,
            snaplen: DEFAULT_SNAPLEN,
        }
    }

    fn magic(self) -> u32 {
        match self.resolution {
            Resolution::Micros => 0xa1b2_c3d4,
            Resolution::Nanos => 0xa1b2_3c4d,
        }
    }
}

/// Writes a classic pcap file: the header at creation, then one record per packet.
pub struct PcapWriter<W: Write> {
    out: W,
    options: PcapOptions,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, options: PcapOptions) -> io::Result<Self> {
        let order = options.byte_order;
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&order.u32(options.magic()));
        header.extend_from_slice(&order.u16(2));
        header.extend_from_slice(&order.u16(4));
        header.extend_from_slice(&order.u32(0)); // thiszone: timestamps are UTC
        header.extend_from_slice(&order.u32(0)); // sigfigs
        header.extend_from_slice(&order.u32(options.snaplen));
        header.extend_from_slice(&order.u32(options.link_type.0));
        out.write_all(&header)?;
        Ok(PcapWriter { out, options })
    }

    /// Writes one packet seen whole on the wire (cut to the snaplen if longer).
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let orig_len = length_field(data.len())?;
        self.write_packet_with_orig_len(ts, data, orig_len)
    }

    /// Writes one packet claiming `orig_len` bytes on the wire, to script snaplen-truncated records.
    /// `data` is still cut to the snaplen; `orig_len` is written as given, even when smaller than the
    /// data, so that tests can also produce inconsistent records.
    pub fn write_packet_with_orig_len(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let kept = truncate(data, self.options.snaplen);
        let (secs, fraction) = self.options.resolution.split(ts);
        let secs = u32::try_from(secs).map_err(|_| invalid_input("timestamp after 2106 does not fit a pcap record"))?;
        let order = self.options.byte_order;
        let mut record = Vec::with_capacity(16usize.saturating_add(kept.len()));
        record.extend_from_slice(&order.u32(secs));
        record.extend_from_slice(&order.u32(fraction));
        record.extend_from_slice(&order.u32(length_field(kept.len())?));
        record.extend_from_slice(&order.u32(orig_len));
        record.extend_from_slice(kept);
        self.out.write_all(&record)
    }

    /// Writes a scripted frame; its link type must be the file's, since pcap has only one.
    pub fn write_frame(&mut self, frame: &CapturedFrame) -> io::Result<()> {
        if frame.link_type != self.options.link_type {
            return Err(invalid_input("frame link type differs from the pcap file's"));
        }
        self.write_packet(frame.ts, &frame.data)
    }

    /// Flushes and hands back the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The part of `data` a capture with this snaplen keeps (0 keeps everything).
pub(super) fn truncate(data: &[u8], snaplen: u32) -> &[u8] {
    match usize::try_from(snaplen) {
        Ok(limit) if snaplen != 0 => data.get(..limit).unwrap_or(data),
        _ => data,
    }
}

pub(super) fn length_field(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| invalid_input("packet longer than 4 GiB"))
}

pub(super) fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_parser::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header};

    const TS: Timestamp = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);

    fn write(options: PcapOptions, packets: &[(&[u8], Option<u32>)]) -> Vec<u8> {
        let mut writer = PcapWriter::new(Vec::new(), options).unwrap();
        for (data, orig_len) in packets {
            match orig_len {
                Some(len) => writer.write_packet_with_orig_len(TS, data, *len).unwrap(),
                None => writer.write_packet(TS, data).unwrap(),
            }
        }
        writer.into_inner().unwrap()
    }

    #[test]
    fn little_endian_microseconds_parse_back() {
        let bytes = write(PcapOptions::new(LinkType::ETHERNET), &[(b"abcdef", None)]);
        let (rest, header) = parse_pcap_header(&bytes).unwrap();
        assert_eq!(header.magic_number, 0xa1b2_c3d4);
        assert!(!header.is_bigendian());
        assert!(!header.is_nanosecond_precision());
        assert_eq!((header.version_major, header.version_minor), (2, 4));
        assert_eq!(header.snaplen, DEFAULT_SNAPLEN);
        assert_eq!(header.network.0, 1);
        let (rest, record) = parse_pcap_frame(rest).unwrap();
        assert_eq!((record.ts_sec, record.ts_usec), (1_700_000_000, 123_456));
        assert_eq!((record.caplen, record.origlen), (6, 6));
        assert_eq!(record.data, b"abcdef");
        assert!(rest.is_empty());
    }

    #[test]
    fn big_endian_nanoseconds_parse_back() {
        let options = PcapOptions {
            resolution: Resolution::Nanos,
            byte_order: ByteOrder::Big,
            ..PcapOptions::new(LinkType::LINUX_SLL2)
        };
        let bytes = write(options, &[(b"xyz", None)]);
        assert_eq!(bytes.get(..4), Some(&[0xa1, 0xb2, 0x3c, 0x4d][..]));
        let (rest, header) = parse_pcap_header(&bytes).unwrap();
        assert!(header.is_bigendian());
        assert!(header.is_nanosecond_precision());
        assert_eq!(header.network.0, 276);
        let (_, record) = parse_pcap_frame_be(rest).unwrap();
        assert_eq!((record.ts_sec, record.ts_usec), (1_700_000_000, 123_456_789));
        assert_eq!(record.data, b"xyz");
    }

    #[test]
    fn snaplen_cuts_records_and_orig_len_is_kept() {
        let options = PcapOptions { snaplen: 4, ..PcapOptions::new(LinkType::RAW) };
        let bytes = write(options, &[(b"0123456789", None), (b"01", Some(1500))]);
        let (rest, _) = parse_pcap_header(&bytes).unwrap();
        let (rest, cut) = parse_pcap_frame(rest).unwrap();
        assert_eq!((cut.caplen, cut.origlen, cut.data), (4, 10, &b"0123"[..]));
        let (rest, claimed) = parse_pcap_frame(rest).unwrap();
        assert_eq!((claimed.caplen, claimed.origlen, claimed.data), (2, 1500, &b"01"[..]));
        assert!(rest.is_empty());
    }

    #[test]
    fn zero_snaplen_keeps_everything() {
        assert_eq!(truncate(b"abc", 0), b"abc");
        assert_eq!(truncate(b"abc", 2), b"ab");
        assert_eq!(truncate(b"abc", 9), b"abc");
    }

    #[test]
    fn refuses_timestamps_past_2106_and_foreign_link_types() {
        let mut writer = PcapWriter::new(Vec::new(), PcapOptions::new(LinkType::ETHERNET)).unwrap();
        let late = Timestamp::from_secs_nanos(u64::from(u32::MAX) + 1, 0);
        assert_eq!(writer.write_packet(late, b"x").unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let frame = CapturedFrame { ts: TS, link_type: LinkType::RAW, data: vec![0x45] };
        assert_eq!(writer.write_frame(&frame).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(writer.into_inner().unwrap().len(), 24, "nothing but the header was written");
    }
}
