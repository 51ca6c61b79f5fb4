use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;

use super::*;

const NAME: &str = "test.cap";

/// A frame copied out of the source, to compare with what was written.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    ts: Timestamp,
    link_type: LinkType,
    orig_len: u32,
    data: Vec<u8>,
}

fn got(ts: Timestamp, link_type: LinkType, orig_len: u32, data: &[u8]) -> Got {
    Got { ts, link_type, orig_len, data: data.to_vec() }
}

fn open_bytes(bytes: Vec<u8>) -> Result<FileSource, CaptureError> {
    FileSource::from_reader(NAME.to_string(), Box::new(Cursor::new(bytes)))
}

/// Reads every frame, then the error that stopped the source if any, and checks the source stays
/// finished afterwards.
fn read_all(source: &mut FileSource) -> (Vec<Got>, Option<CaptureError>) {
    let mut frames = Vec::new();
    let error = loop {
        match source.next_frame() {
            Ok(Some(frame)) => frames.push(got(frame.ts, frame.link_type, frame.orig_len, frame.data)),
            Ok(None) => break None,
            Err(error) => break Some(error),
        }
    };
    assert!(matches!(source.next_frame(), Ok(None)), "a finished source must stay finished");
    (frames, error)
}

fn read_ok(bytes: Vec<u8>) -> (Vec<Got>, u64) {
    let mut source = open_bytes(bytes).expect("capture opens");
    let (frames, error) = read_all(&mut source);
    assert!(error.is_none(), "unexpected error {error:?}");
    (frames, source.warnings())
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("in-memory write");
    encoder.finish().expect("in-memory write")
}

/// Writes a classic pcap file.
struct PcapFile {
    big_endian: bool,
    bytes: Vec<u8>,
}

impl PcapFile {
    fn new(big_endian: bool, nanos: bool, link_type: u32) -> PcapFile {
        let mut file = PcapFile { big_endian, bytes: Vec::new() };
        file.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        file.u16(2);
        file.u16(4);
        file.u32(0); // thiszone
        file.u32(0); // sigfigs
        file.u32(65_535); // snaplen
        file.u32(link_type);
        file
    }

    fn u16(&mut self, value: u16) {
        let bytes = if self.big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
        self.bytes.extend_from_slice(&bytes);
    }

    fn u32(&mut self, value: u32) {
        let bytes = if self.big_endian { value.to_be_bytes() } else { value.to_le_bytes() };
        self.bytes.extend_from_slice(&bytes);
    }

    fn record_header(&mut self, secs: u32, fraction: u32, caplen: u32, orig_len: u32) -> &mut PcapFile {
        self.u32(secs);
        self.u32(fraction);
        self.u32(caplen);
        self.u32(orig_len);
        self
    }

    fn record(&mut self, secs: u32, fraction: u32, orig_len: u32, data: &[u8]) -> &mut PcapFile {
        self.record_header(secs, fraction, data.len() as u32, orig_len);
        self.bytes.extend_from_slice(data);
        self
    }
}

/// Writes a pcapng file, block by block, in the byte order of the current section.
#[derive(Default)]
struct PcapNgFile {
    big_endian: bool,
    bytes: Vec<u8>,
}

const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

impl PcapNgFile {
    fn u16(&self, value: u16) -> [u8; 2] {
        if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    fn u32(&self, value: u32) -> [u8; 4] {
        if self.big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        }
    }

    /// Appends a block: type, length, the body padded to 32 bits, length again.
    fn block(&mut self, block_type: u32, body: &[u8]) -> &mut PcapNgFile {
        let padded = body.len().next_multiple_of(4);
        let len = (12 + padded) as u32;
        let (block_type, len_bytes) = (self.u32(block_type), self.u32(len));
        self.bytes.extend_from_slice(&block_type);
        self.bytes.extend_from_slice(&len_bytes);
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + padded - body.len(), 0);
        self.bytes.extend_from_slice(&len_bytes);
        self
    }

    fn options(&self, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (code, value) in options {
            out.extend_from_slice(&self.u16(*code));
            out.extend_from_slice(&self.u16(value.len() as u16));
            out.extend_from_slice(value);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        if !options.is_empty() {
            out.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        out
    }

    fn section(&mut self, big_endian: bool) -> &mut PcapNgFile {
        self.big_endian = big_endian;
        let mut body = self.u32(0x1A2B_3C4D).to_vec();
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        body.extend_from_slice(&self.options(&[(4, b"credwatch tests")])); // shb_userappl
        self.block(SHB_MAGIC, &body)
    }

    fn interface(&mut self, link_type: u16, options: &[(u16, &[u8])]) -> &mut PcapNgFile {
        let mut body = self.u16(link_type).to_vec();
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32(262_144));
        body.extend_from_slice(&self.options(options));
        self.block(IDB_MAGIC, &body)
    }

    fn epb(&mut self, interface: u32, ticks: u64, orig_len: u32, data: &[u8]) -> &mut PcapNgFile {
        self.epb_claiming(interface, ticks, data.len() as u32, orig_len, data)
    }

    /// An EPB whose caplen field says `caplen`, whatever the data.
    fn epb_claiming(&mut self, interface: u32, ticks: u64, caplen: u32, orig_len: u32, data: &[u8]) -> &mut PcapNgFile {
        let mut body = self.u32(interface).to_vec();
        body.extend_from_slice(&self.u32((ticks >> 32) as u32));
        body.extend_from_slice(&self.u32(ticks as u32));
        body.extend_from_slice(&self.u32(caplen));
        body.extend_from_slice(&self.u32(orig_len));
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        // An epb_flags option (inbound), as Wireshark writes.
        body.extend_from_slice(&self.options(&[(2, &self.u32(1))]));
        self.block(EPB_MAGIC, &body)
    }

    fn pb(&mut self, interface: u16, ticks: u64, orig_len: u32, data: &[u8]) -> &mut PcapNgFile {
        let mut body = self.u16(interface).to_vec();
        body.extend_from_slice(&self.u16(0)); // drops count
        body.extend_from_slice(&self.u32((ticks >> 32) as u32));
        body.extend_from_slice(&self.u32(ticks as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(orig_len));
        body.extend_from_slice(data);
        self.block(PB_MAGIC, &body)
    }

    fn spb(&mut self, orig_len: u32, data: &[u8]) -> &mut PcapNgFile {
        let mut body = self.u32(orig_len).to_vec();
        body.extend_from_slice(data);
        self.block(SPB_MAGIC, &body)
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// A reader that hands out at most `chunk` bytes per call, with an `Interrupted` error before
/// every chunk, as a pipe or a slow disk might.
struct Trickle {
    data: Cursor<Vec<u8>>,
    chunk: usize,
    interrupt_next: bool,
}

impl Trickle {
    fn new(data: Vec<u8>, chunk: usize) -> Trickle {
        Trickle { data: Cursor::new(data), chunk, interrupt_next: true }
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if !self.interrupt_next {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let len = buf.len().min(self.chunk);
        self.data.read(&mut buf[..len])
    }
}

/// A reader that fails after handing out `good` bytes.
struct FailingAfter {
    data: Cursor<Vec<u8>>,
    good: u64,
}

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.good.saturating_sub(self.data.position()) as usize;
        if left == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let len = buf.len().min(left);
        self.data.read(&mut buf[..len])
    }
}

fn secs_micros(secs: u64, micros: u64) -> Timestamp {
    Timestamp(secs * 1_000_000_000 + micros * 1_000)
}

#[test]
fn reads_classic_pcap_in_both_byte_orders_and_resolutions() {
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let first = payload(61, 1);
            let second = payload(40, 2);
            let third = payload(10, 3);
            let mut file = PcapFile::new(big_endian, nanos, 1);
            file.record(1_700_000_000, 123_456, 61, &first)
                // Cut by the snaplen.
                .record(1_700_000_001, 999_999, 1_500, &second)
                // caplen larger than orig_len: odd, but kept as is.
                .record(1_700_000_002, 0, 4, &third)
                .record(1_700_000_003, 7, 0, &[]);
            let unit = if nanos { 1 } else { 1_000 };
            let ts = |secs: u64, fraction: u64| Timestamp(secs * 1_000_000_000 + fraction * unit);
            let (frames, warnings) = read_ok(file.bytes);
            let case = format!("big_endian={big_endian} nanos={nanos}");
            assert_eq!(
                frames,
                vec![
                    got(ts(1_700_000_000, 123_456), LinkType::ETHERNET, 61, &first),
                    got(ts(1_700_000_001, 999_999), LinkType::ETHERNET, 1_500, &second),
                    got(ts(1_700_000_002, 0), LinkType::ETHERNET, 4, &third),
                    got(ts(1_700_000_003, 7), LinkType::ETHERNET, 0, &[]),
                ],
                "{case}"
            );
            assert_eq!(warnings, 0, "{case}");
        }
    }
}

#[test]
fn reads_the_modified_pcap_format() {
    // Kuznetsov's patched libpcap: magic 0xa1b2cd34 and 8 more bytes per record header
    // (interface index, protocol, packet type, padding).
    let mut file = PcapFile::new(false, false, 1);
    file.bytes[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
    for (secs, data) in [(1u32, &[1u8, 2, 3][..]), (2, &[4, 5])] {
        file.record_header(secs, 9, data.len() as u32, 60);
        file.bytes.extend_from_slice(&[0; 8]);
        file.bytes.extend_from_slice(data);
    }
    let (frames, _) = read_ok(file.bytes);
    assert_eq!(
        frames,
        vec![
            got(secs_micros(1, 9), LinkType::ETHERNET, 60, &[1, 2, 3]),
            got(secs_micros(2, 9), LinkType::ETHERNET, 60, &[4, 5]),
        ]
    );
}

#[test]
fn classic_pcap_link_type_comes_from_the_header_without_fcs_bits() {
    // Bits 26-31 of the field describe the FCS (libpcap's LT_FCS_* macros), not the link type.
    let mut file = PcapFile::new(false, false, 0x1400_0000 | 113);
    file.record(10, 0, 3, &[1, 2, 3]);
    let (frames, _) = read_ok(file.bytes);
    assert_eq!(frames, vec![got(secs_micros(10, 0), LinkType::LINUX_SLL, 3, &[1, 2, 3])]);
}

/// Two sections in different byte orders; interfaces with different link types, resolutions and
/// offsets; all three packet block kinds; blocks to skip.
fn two_section_pcapng() -> (Vec<u8>, Vec<Got>) {
    let eth = payload(61, 10);
    let raw = payload(40, 11);
    let simple = payload(20, 12);
    let obsolete = payload(33, 13);
    let sll = payload(44, 14);
    let odd = payload(10, 15);
    let mut ng = PcapNgFile::default();
    ng.section(false)
        .interface(1, &[])
        .interface(101, &[(OPT_IF_TSRESOL, &[9])])
        .epb(0, 1_700_000_000_123_456, 61, &eth)
        .epb(1, 1_700_000_001_000_000_007, 100, &raw)
        .block(0x0000_1234, b"vendor stuff")
        .block(ISB_MAGIC, &[0; 12])
        .spb(20, &simple)
        .pb(1, 1_700_000_002_000_000_009, 33, &obsolete)
        .epb(2, 1_700_000_003_000_000, 5, &[1, 2, 3, 4, 5]);
    let offset = 1_600_000_000i64.to_be_bytes();
    ng.section(true)
        .interface(113, &[(OPT_IF_TSRESOL, &[0x80 | 10]), (OPT_IF_TSOFFSET, &offset)])
        .epb(0, 5 * 1024 + 512, 44, &sll)
        // Interface 1 belonged to the first section only.
        .epb(1, 0, 5, &[9; 5])
        .epb(0, 6 * 1024, 4, &odd);
    let expected = vec![
        got(secs_micros(1_700_000_000, 123_456), LinkType::ETHERNET, 61, &eth),
        got(Timestamp(1_700_000_001_000_000_007), LinkType::RAW, 100, &raw),
        got(Timestamp(1_700_000_001_000_000_007), LinkType::ETHERNET, 20, &simple),
        got(Timestamp(1_700_000_002_000_000_009), LinkType::RAW, 33, &obsolete),
        got(Timestamp(1_600_000_005_500_000_000), LinkType::LINUX_SLL, 44, &sll),
        got(Timestamp(1_600_000_006_000_000_000), LinkType::LINUX_SLL, 4, &odd),
    ];
    (ng.take(), expected)
}

#[test]
fn reads_pcapng_sections_interfaces_and_packet_blocks() {
    let (bytes, expected) = two_section_pcapng();
    let (frames, warnings) = read_ok(bytes);
    assert_eq!(frames, expected);
    // The unknown block and the two packets for undeclared interfaces.
    assert_eq!(warnings, 3);
}

#[test]
fn simple_packet_block_is_cut_to_its_block_when_orig_len_is_larger() {
    let mut ng = PcapNgFile::default();
    ng.section(false).interface(1, &[]).spb(1_514, &[7; 64]);
    let (frames, _) = read_ok(ng.take());
    assert_eq!(frames, vec![got(Timestamp(0), LinkType::ETHERNET, 1_514, &[7; 64])]);
}

#[test]
fn packet_before_any_interface_is_skipped_with_a_warning() {
    let mut ng = PcapNgFile::default();
    ng.section(false).spb(3, &[1, 2, 3]).interface(1, &[]).epb(0, 1_000_000, 2, &[4, 5]);
    let (frames, warnings) = read_ok(ng.take());
    assert_eq!(frames, vec![got(secs_micros(1, 0), LinkType::ETHERNET, 2, &[4, 5])]);
    assert_eq!(warnings, 1);
}

#[test]
fn invalid_tsresol_falls_back_to_microseconds_with_a_warning() {
    let mut ng = PcapNgFile::default();
    ng.section(false).interface(1, &[(OPT_IF_TSRESOL, &[20])]).epb(0, 2_000_001, 1, &[0]);
    let (frames, warnings) = read_ok(ng.take());
    assert_eq!(frames, vec![got(secs_micros(2, 1), LinkType::ETHERNET, 1, &[0])]);
    assert_eq!(warnings, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The Enhanced Packet Block fast path of `next_frame` finds a packet exactly when the
    /// general block walk would find one in a block buffered whole, and the same one: any
    /// byte order, interface (declared or not), timestamp, claimed length, cut or flipped byte.
    #[test]
    fn the_enhanced_packet_fast_path_agrees_with_the_block_walk(
        big_endian in any::<bool>(),
        declared in 0usize..=3,
        interface in prop_oneof![3 => 0u32..2, 1 => 0u32..4],
        ticks in any::<u64>(),
        data_len in 0usize..48,
        caplen_change in prop_oneof![Just(0i64), -8i64..24],
        orig_len in any::<u32>(),
        flip in proptest::option::of((0usize..96, 1u8..=255)),
        cut in prop_oneof![3 => Just(0usize), 1 => 1usize..8],
    ) {
        let mut file = PcapNgFile { big_endian, ..PcapNgFile::default() };
        let caplen = u32::try_from(data_len as i64 + caplen_change).unwrap_or(u32::MAX);
        let mut bytes = file.epb_claiming(interface, ticks, caplen, orig_len, &payload(data_len, 7)).take();
        if let Some((at, value)) = flip {
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= value;
            }
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        let clocks = [TickScale::MICROSECONDS, TickScale::NanosPerTick(1), TickScale::TicksPerSec(1 << 20)];
        let interfaces = clocks
            .iter()
            .take(declared)
            .enumerate()
            .map(|(n, scale)| Interface {
                link_type: LinkType(n as u32 + 1),
                clock: Clock { scale: *scale, offset_nanos: n as i64 * 7 },
            })
            .collect();
        let section = NgSection { big_endian, interfaces };

        let walked = match ng_block_header(&bytes, big_endian) {
            Ok(Some(block)) if block.block_type == EPB_MAGIC && block.len <= bytes.len() => {
                match section.decode_packet(&bytes[..block.len], block, Timestamp(0)) {
                    Ok(RecordOutcome::Packet(packet)) => Some((block.len, packet)),
                    _ => None,
                }
            }
            _ => None,
        };
        prop_assert_eq!(section.enhanced_packet(&bytes), walked);
    }
}

#[test]
fn tick_scales_follow_if_tsresol() {
    assert_eq!(TickScale::from_tsresol(6), Some(TickScale::NanosPerTick(1_000)));
    assert_eq!(TickScale::from_tsresol(9), Some(TickScale::NanosPerTick(1)));
    assert_eq!(TickScale::from_tsresol(0), Some(TickScale::NanosPerTick(1_000_000_000)));
    assert_eq!(TickScale::from_tsresol(12), Some(TickScale::TicksPerSec(1_000_000_000_000)));
    assert_eq!(TickScale::from_tsresol(19), Some(TickScale::TicksPerSec(10_000_000_000_000_000_000)));
    assert_eq!(TickScale::from_tsresol(20), None);
    assert_eq!(TickScale::from_tsresol(0x80 | 20), Some(TickScale::TicksPerSec(1 << 20)));
    assert_eq!(TickScale::from_tsresol(0x80 | 63), Some(TickScale::TicksPerSec(1 << 63)));
    assert_eq!(TickScale::from_tsresol(0x80 | 64), None);
}

#[test]
fn clock_converts_ticks_and_applies_the_offset_without_overflow() {
    let picos = Clock { scale: TickScale::TicksPerSec(1_000_000_000_000), offset_nanos: 0 };
    assert_eq!(picos.timestamp(1_500_000_000_000_999), Timestamp(1_500_000_000_000));
    let behind = Clock { scale: TickScale::MICROSECONDS, offset_nanos: -5_000_000_000 };
    assert_eq!(behind.timestamp(7_000_000), Timestamp(2_000_000_000));
    assert_eq!(behind.timestamp(1), Timestamp(0), "clamps at the epoch");
    let ahead = Clock { scale: TickScale::NanosPerTick(1_000_000_000), offset_nanos: i64::MAX };
    assert_eq!(ahead.timestamp(u64::MAX), Timestamp(u64::MAX), "saturates");
}

#[test]
fn reads_gzip_compressed_captures_of_several_members() {
    let mut file = PcapFile::new(false, false, 101);
    for i in 0..50u32 {
        file.record(1_000 + i, i, 100 + i, &payload(i as usize, i as u8));
    }
    // pigz and `cat a.gz b.gz` produce several members; all of them are the one stream.
    let (front, back) = file.bytes.split_at(700);
    let compressed = [gzip(front), gzip(back)].concat();
    let mut source = open_bytes(compressed.clone()).expect("gzip capture opens");
    let (frames, error) = read_all(&mut source);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(frames.len(), 50);
    for (i, frame) in frames.iter().enumerate() {
        let i = i as u32;
        assert_eq!(
            frame,
            &got(
                secs_micros(u64::from(1_000 + i), u64::from(i)),
                LinkType::RAW,
                100 + i,
                &payload(i as usize, i as u8)
            )
        );
    }
    assert_eq!(source.bytes_read(), compressed.len() as u64);

    let (ng, expected) = two_section_pcapng();
    let (frames, _) = read_ok(gzip(&ng));
    assert_eq!(frames, expected);
}

/// A gzip-compressed classic pcap of `count` records of 64 bytes.
fn gzipped_records(count: u32) -> Vec<u8> {
    let mut file = PcapFile::new(false, false, 1);
    for i in 0..count {
        file.record(i, 0, 64, &payload(64, i as u8));
    }
    gzip(&file.bytes)
}

/// A gzip file cut short is said to be one, at the offset of the record being read in its
/// decompressed data (said so: it is no offset in the file).
#[test]
fn truncated_gzip_stream_is_a_truncated_capture() {
    let mut compressed = gzipped_records(200);
    compressed.truncate(compressed.len() / 2);
    let mut source = open_bytes(compressed).expect("the header is intact");
    let (frames, error) = read_all(&mut source);
    assert!(!frames.is_empty() && frames.len() < 200);
    let error = error.expect("a truncated stream is an error");
    assert!(matches!(error.kind, CaptureErrorKind::CompressedCut), "{error}");
    let record = 24 + frames.len() as u64 * (16 + 64);
    assert_eq!(error.offset, Some(record));
    assert_eq!(
        error.to_string(),
        format!(
            "test.cap: at byte offset {record} of the decompressed data: the compressed data ends early (truncated \
             gzip file)"
        )
    );
    // Cut within its first bytes: no offset to give.
    let error = open_bytes(gzipped_records(1)[..10].to_vec()).err().expect("a gzip header alone is an error");
    assert_eq!(error.to_string(), "test.cap: the compressed data ends early (truncated gzip file)");
}

/// A whole gzip stream whose data is a capture cut inside a record: a truncated capture, at an
/// offset of the decompressed data.
#[test]
fn a_gzip_of_a_truncated_capture_is_a_truncated_capture() {
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 30, &payload(30, 0)).record(2, 0, 30, &payload(30, 1));
    let cut = &file.bytes[..file.bytes.len() - 5];
    let mut source = open_bytes(gzip(cut)).expect("capture opens");
    let (_, error) = read_all(&mut source);
    let error = error.expect("truncation is an error");
    assert_eq!(
        error.to_string(),
        "test.cap: at byte offset 70 of the decompressed data: file ends inside a record (truncated capture)"
    );
}

#[test]
fn a_gzip_member_failing_its_checksum_is_an_error_after_its_frames() {
    let mut compressed = gzipped_records(20);
    // The member ends with the CRC-32 of the data, then its length.
    let crc_at = compressed.len() - 8;
    compressed[crc_at] ^= 0x01;
    let mut source = open_bytes(compressed).expect("the header is intact");
    let (frames, error) = read_all(&mut source);
    assert_eq!(frames.len(), 20, "the data itself inflates");
    let error = error.expect("a checksum mismatch is an error");
    assert!(matches!(error.kind, CaptureErrorKind::Io(_)), "{error}");
}

#[test]
fn reports_a_truncated_record_with_its_offset() {
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 30, &payload(30, 0)).record(2, 0, 30, &payload(30, 1));
    let mut bytes = file.bytes;
    bytes.truncate(bytes.len() - 5);
    let mut source = open_bytes(bytes).expect("capture opens");
    let (frames, error) = read_all(&mut source);
    assert_eq!(frames, vec![got(secs_micros(1, 0), LinkType::ETHERNET, 30, &payload(30, 0))]);
    let error = error.expect("truncation is an error");
    assert!(matches!(error.kind, CaptureErrorKind::Truncated));
    assert_eq!(error.offset, Some(24 + 16 + 30));
    assert_eq!(error.file, NAME);
    assert_eq!(error.to_string(), "test.cap: at byte offset 70: file ends inside a record (truncated capture)");
}

/// Cuts `bytes` at every length and checks that exactly the records wholly before the cut come
/// out, followed by `Truncated` when the cut falls inside a record.
fn check_every_truncation(bytes: &[u8], header_len: usize, record_ends: &[usize]) {
    for cut in header_len..bytes.len() {
        let mut source = open_bytes(bytes[..cut].to_vec()).expect("the header is intact");
        let (frames, error) = read_all(&mut source);
        let whole = record_ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(frames.len(), whole, "cut at {cut}");
        let at_boundary = cut == header_len || record_ends.contains(&cut);
        match error {
            None => assert!(at_boundary, "cut at {cut} inside a record went unnoticed"),
            Some(error) => {
                assert!(!at_boundary, "cut at {cut} is a clean end: {error}");
                assert!(matches!(error.kind, CaptureErrorKind::Truncated), "cut at {cut}: {error}");
                let record_start = record_ends.iter().copied().filter(|&end| end <= cut).max().unwrap_or(header_len);
                assert_eq!(error.offset, Some(record_start as u64), "cut at {cut}");
            }
        }
    }
}

#[test]
fn every_truncation_of_a_classic_pcap_is_reported() {
    let mut file = PcapFile::new(true, true, 1);
    file.record(1, 0, 13, &payload(13, 0)).record(2, 0, 0, &[]).record(3, 0, 7, &payload(7, 1));
    check_every_truncation(&file.bytes, 24, &[24 + 16 + 13, 24 + 32 + 13, 24 + 48 + 20]);
}

#[test]
fn every_truncation_of_a_pcapng_is_reported() {
    let mut ng = PcapNgFile::default();
    ng.section(true).interface(1, &[]);
    let header_len = ng.bytes.len();
    let mut ends = Vec::new();
    ng.epb(0, 1, 5, &[1, 2, 3, 4, 5]);
    ends.push(ng.bytes.len());
    ng.spb(3, &[6, 7, 8]);
    ends.push(ng.bytes.len());
    ng.epb(0, 2, 1, &[9]);
    ends.push(ng.bytes.len());
    check_every_truncation(&ng.bytes, header_len, &ends);
}

/// A cut file header is said to be one, without a record offset (there is no record).
#[test]
fn a_cut_inside_the_file_header_is_reported_when_opening() {
    let file = PcapFile::new(false, false, 1);
    for cut in 4..24 {
        let error = open_bytes(file.bytes[..cut].to_vec()).err().expect("an incomplete header is an error");
        assert!(matches!(error.kind, CaptureErrorKind::HeaderCut), "cut at {cut}: {error}");
        assert_eq!(error.to_string(), "test.cap: the file header is cut short (truncated capture)");
    }
    let mut ng = PcapNgFile::default();
    let shb = ng.section(false).take();
    for cut in 4..shb.len() {
        let error = open_bytes(shb[..cut].to_vec()).err().expect("an incomplete section header is an error");
        assert!(matches!(error.kind, CaptureErrorKind::HeaderCut), "cut at {cut}: {error}");
    }
    // Decompressed data as short, from a whole gzip stream.
    let error = open_bytes(gzip(&file.bytes[..20])).err().expect("an incomplete header is an error");
    assert!(matches!(error.kind, CaptureErrorKind::HeaderCut), "{error}");
}

/// A capture compressed in a format not read here is named, with the way to decompress it.
#[test]
fn names_the_compression_it_does_not_read() {
    for (head, name, command) in [
        (&b"BZh91AY&SY"[..], "bzip2", "bunzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4][..], "xz", "unxz"),
        (&[0x28, 0xb5, 0x2f, 0xfd, 0x24, 0][..], "zstd", "zstd -d"),
        (&[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40][..], "lz4", "lz4 -d"),
    ] {
        let error = open_bytes(head.to_vec()).err().expect("not read");
        assert!(matches!(error.kind, CaptureErrorKind::CompressedWith(_)), "{error}");
        let shown = error.to_string();
        assert!(shown.contains(name) && shown.contains(command), "{shown}");
    }
}

#[test]
fn rejects_what_is_not_a_capture() {
    let error = open_bytes(b"GET / HTTP/1.1\r\n".to_vec()).err().expect("text is not a capture");
    assert!(matches!(error.kind, CaptureErrorKind::UnknownFormat), "{error}");
    assert_eq!(error.file, NAME);

    let error = open_bytes(vec![0xd4, 0xc3]).err().expect("two bytes are not a capture");
    assert!(matches!(error.kind, CaptureErrorKind::UnknownFormat), "{error}");

    // The magic decides, not the name: a pcap called .pcapng is still read as pcap.
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 1, &[42]);
    let source = FileSource::from_reader("capture.pcapng".into(), Box::new(Cursor::new(file.bytes)));
    let (frames, error) = read_all(&mut source.expect("pcap opens"));
    assert!(error.is_none());
    assert_eq!(frames.len(), 1);

    // A gzip stream holding something else.
    let error = open_bytes(gzip(b"just some text")).err().expect("not a capture");
    assert!(matches!(error.kind, CaptureErrorKind::UnknownFormat), "{error}");
}

/// A file that is not a capture may start with a secret (a saved transcript, a password
/// file): the error says what was expected and shows none of its bytes, in any form.
#[test]
fn an_unknown_format_shows_none_of_the_files_bytes() {
    for bytes in [&b"PASS hunter2\r\n"[..], b"PA", b"\x1f\x8bPASS"] {
        let contents = if bytes.starts_with(&[0x1f, 0x8b]) { gzip(b"PASS hunter2") } else { bytes.to_vec() };
        let error = open_bytes(contents).err().expect("not a capture");
        let shown = format!("{error} {error:?}");
        let expected = shown.contains("unknown magic number") && shown.contains("not a pcap or pcapng capture");
        assert!(expected, "the error says what was expected");
        // As text, and as the numbers and hex that `Debug` and `{:02x?}` print bytes as.
        let as_list = |text: String| text.replace(['[', ']'], "");
        let forms =
            ["PA".to_string(), as_list(format!("{:?}", b"PA")), as_list(format!("{:02x?}", b"PA")), "5041".into()];
        for leak in forms {
            assert!(!shown.contains(&leak), "the error shows the file's first bytes");
        }
    }
}

#[test]
fn rejects_an_invalid_byte_order_magic() {
    let mut ng = PcapNgFile::default();
    let mut bytes = ng.section(false).take();
    bytes[8..12].copy_from_slice(&[1, 2, 3, 4]);
    let error = open_bytes(bytes).err().expect("invalid byte-order magic");
    assert!(matches!(error.kind, CaptureErrorKind::Corrupt(_)), "{error}");
}

#[test]
fn an_empty_file_is_an_error() {
    let error = open_bytes(Vec::new()).err().expect("empty file");
    assert!(matches!(error.kind, CaptureErrorKind::Empty));
    let error = open_bytes(gzip(&[])).err().expect("empty gzip");
    assert!(matches!(error.kind, CaptureErrorKind::Empty));
}

#[test]
fn a_capture_without_packets_ends_cleanly() {
    let file = PcapFile::new(false, true, 1);
    assert_eq!(read_ok(file.bytes), (Vec::new(), 0));
    let mut ng = PcapNgFile::default();
    ng.section(true).interface(1, &[]);
    assert_eq!(read_ok(ng.take()), (Vec::new(), 0));
}

/// A section declaring interfaces without end (a compressed file of nothing else grows memory
/// a thousand times faster than it is read) is corrupt past the limit; one within it reads.
#[test]
fn a_section_declaring_too_many_interfaces_is_corrupt() {
    let mut ng = PcapNgFile::default();
    ng.section(false);
    for _ in 0..MAX_INTERFACES {
        ng.interface(1, &[]);
    }
    ng.epb(MAX_INTERFACES as u32 - 1, 0, 4, b"data");
    let within = ng.take();
    assert_eq!(read_ok(within.clone()).0.len(), 1);
    let mut ng = PcapNgFile::default();
    let mut bytes = within;
    bytes.extend_from_slice(&ng.interface(1, &[]).take());
    let mut source = open_bytes(bytes).expect("capture opens");
    let (frames, error) = read_all(&mut source);
    assert_eq!(frames.len(), 1);
    let error = error.expect("too many interfaces");
    assert!(matches!(error.kind, CaptureErrorKind::Corrupt(_)), "{error}");
    assert!(error.to_string().contains("more than 65536 interfaces"), "{error}");
}

fn expect_corrupt_after_one_frame(bytes: Vec<u8>, offset: u64) {
    let mut source = open_bytes(bytes).expect("capture opens");
    let (frames, error) = read_all(&mut source);
    assert_eq!(frames.len(), 1);
    let error = error.expect("corruption is an error");
    assert!(matches!(error.kind, CaptureErrorKind::Corrupt(_)), "{error}");
    assert_eq!(error.offset, Some(offset), "{error}");
}

#[test]
fn a_huge_caplen_is_corruption() {
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 4, &[1, 2, 3, 4]).record_header(2, 0, 0xFFFF_FFF0, 60);
    file.bytes.extend_from_slice(&[0; 100]);
    expect_corrupt_after_one_frame(file.bytes, 24 + 16 + 4);
}

#[test]
fn a_record_claiming_more_than_the_file_holds_costs_no_memory() {
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 4, &[1, 2, 3, 4]).record_header(2, 0, 200 << 20, 200 << 20);
    file.bytes.extend_from_slice(&[0; 100]);
    let mut source = open_bytes(file.bytes).unwrap();
    let (frames, error) = read_all(&mut source);
    assert_eq!(frames.len(), 1);
    assert!(matches!(error.map(|e| e.kind), Some(CaptureErrorKind::Truncated)));
    assert_eq!(source.buffer.capacity(), INITIAL_BUFFER_LEN, "the buffer did not grow for the claim");
}

#[test]
fn corrupt_pcapng_block_lengths_are_reported() {
    let mut ng = PcapNgFile::default();
    ng.section(false).interface(1, &[]).epb(0, 1, 1, &[1]);
    let good_len = ng.bytes.len() as u64;
    let good = ng.take();

    let with = |tail: &[u8]| [good.as_slice(), tail].concat();
    let epb_header = |len: u32| {
        let mut header = EPB_MAGIC.to_le_bytes().to_vec();
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&[0; 40]);
        header
    };
    // Larger than any sane block.
    expect_corrupt_after_one_frame(with(&epb_header(0xFFFF_FF00)), good_len);
    // Shorter than a block header.
    expect_corrupt_after_one_frame(with(&epb_header(8)), good_len);
    // Not a multiple of four.
    expect_corrupt_after_one_frame(with(&epb_header(45)), good_len);
    // Leading and trailing lengths disagree.
    let mut ng = PcapNgFile::default();
    let mut mismatched = ng.epb(0, 1, 1, &[1]).take();
    let last = mismatched.len() - 4;
    mismatched[last..].copy_from_slice(&999u32.to_le_bytes());
    expect_corrupt_after_one_frame(with(&mismatched), good_len);
    // An EPB claiming more captured bytes than it holds.
    let overlong = ng.epb_claiming(0, 1, 5_000, 5_000, &[1, 2, 3, 4]).take();
    expect_corrupt_after_one_frame(with(&overlong), good_len);
    // Packet blocks too short for their own fields.
    let stub = ng.block(EPB_MAGIC, &[0; 8]).take();
    expect_corrupt_after_one_frame(with(&stub), good_len);
    let stub = ng.block(SPB_MAGIC, &[]).take();
    expect_corrupt_after_one_frame(with(&stub), good_len);
}

#[test]
fn grows_the_buffer_for_a_record_larger_than_it() {
    let jumbo = payload(3 * INITIAL_BUFFER_LEN + 5, 9);
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 60, &[1; 60]).record(2, 0, jumbo.len() as u32, &jumbo).record(3, 0, 1, &[3]);
    let source = FileSource::from_reader(NAME.into(), Box::new(Trickle::new(file.bytes, 1 << 16)));
    let (frames, error) = read_all(&mut source.expect("capture opens"));
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        frames,
        vec![
            got(secs_micros(1, 0), LinkType::ETHERNET, 60, &[1; 60]),
            got(secs_micros(2, 0), LinkType::ETHERNET, jumbo.len() as u32, &jumbo),
            got(secs_micros(3, 0), LinkType::ETHERNET, 1, &[3]),
        ]
    );

    let mut ng = PcapNgFile::default();
    ng.section(false).interface(1, &[]).epb(0, 1, jumbo.len() as u32, &jumbo);
    let (frames, _) = read_ok(ng.take());
    assert_eq!(frames, vec![got(Timestamp(1_000), LinkType::ETHERNET, jumbo.len() as u32, &jumbo)]);
}

/// A classic pcap of `records` frames of `len` bytes, each filled with its own number.
fn numbered_records(records: u32, len: usize) -> Vec<u8> {
    let mut file = PcapFile::new(false, false, 1);
    for n in 0..records {
        let data: Vec<u8> = n.to_le_bytes().iter().cycle().take(len).copied().collect();
        file.record(n, 0, len as u32, &data);
    }
    file.bytes
}

/// Workers hold slices of the blocks frames were read into: reading on must never write into a
/// block somebody holds.
#[test]
fn bytes_held_from_a_shared_block_never_change_while_reading_goes_on() {
    let records = (5 * INITIAL_BUFFER_LEN / 1_000) as u32;
    let mut source = open_bytes(numbered_records(records, 1_000)).expect("capture opens");
    let mut held = Vec::new();
    let mut frames = 0;
    while let Some((frame, block)) = source.next_frame_in_block().expect("reads") {
        let block = block.expect("blocks of the standard size are shared");
        if frames % 97 == 0 {
            let range = block.range_of(frame.data).expect("a frame lies in its block");
            held.push((block.clone(), range, frame.data.to_vec()));
        }
        frames += 1;
    }
    assert_eq!(frames, records);
    assert!(source.buffer.blocks_made >= 5, "held blocks made reading go on in new ones");
    for (block, range, bytes) in &held {
        assert_eq!(&block.bytes()[range.clone()], bytes.as_slice());
    }
}

/// A holder that lets go after a while (a worker done with its batch) gives the block back: the
/// reader settles on a few blocks however long the file.
#[test]
fn blocks_come_back_once_their_holders_let_go() {
    let records = (16 * INITIAL_BUFFER_LEN / 1_000) as u32;
    let mut source = open_bytes(numbered_records(records, 1_000)).expect("capture opens");
    let mut holding: std::collections::VecDeque<SharedBlock> = std::collections::VecDeque::new();
    while let Some((_, block)) = source.next_frame_in_block().expect("reads") {
        let block = block.expect("shared");
        if !holding.back().is_some_and(|last| last.is(block)) {
            holding.push_back(block.clone());
        }
        if holding.len() > 2 {
            holding.pop_front();
        }
    }
    assert!(source.buffer.blocks_made <= 4, "{} blocks for a 16-block file", source.buffer.blocks_made);
}

#[test]
fn a_buffer_grown_for_a_jumbo_record_is_not_shared() {
    let jumbo = payload(INITIAL_BUFFER_LEN + 5, 1);
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 60, &[1; 60]).record(2, 0, jumbo.len() as u32, &jumbo).record(3, 0, 1, &[3]);
    let mut source = open_bytes(file.bytes).expect("capture opens");
    let mut shared = Vec::new();
    while let Some((_, block)) = source.next_frame_in_block().expect("reads") {
        shared.push(block.is_some());
    }
    assert_eq!(shared, [true, false, false]);
}

#[test]
fn reads_from_a_stream_that_trickles_and_gets_interrupted() {
    let (bytes, expected) = two_section_pcapng();
    for chunk in [1, 3, 7] {
        let source = FileSource::from_reader(NAME.into(), Box::new(Trickle::new(bytes.clone(), chunk)));
        let (frames, error) = read_all(&mut source.expect("capture opens"));
        assert!(error.is_none(), "chunk {chunk}: {error:?}");
        assert_eq!(frames, expected, "chunk {chunk}");
    }
}

/// Classic pcap records come the quick way when buffered whole and the general way when a read
/// is needed: a stream trickling in at any pace gives the same frames as the whole file.
#[test]
fn classic_pcap_frames_are_the_same_whatever_the_reads() {
    let mut file = PcapFile::new(false, true, 1);
    for n in 0..40u32 {
        let len = (n as usize * 37) % 300 + 1;
        file.record(n, n * 1_000, len as u32 + n % 3, &payload(len, n as u8));
    }
    let (whole, _) = read_ok(file.bytes.clone());
    assert_eq!(whole.len(), 40);
    for chunk in [1, 3, 7, 100, 1_000] {
        let source = FileSource::from_reader(NAME.into(), Box::new(Trickle::new(file.bytes.clone(), chunk)));
        let (frames, error) = read_all(&mut source.expect("capture opens"));
        assert!(error.is_none(), "chunk {chunk}: {error:?}");
        assert_eq!(frames, whole, "chunk {chunk}");
    }
}

#[test]
fn a_read_error_names_the_cause_and_ends_the_source() {
    let mut file = PcapFile::new(false, false, 1);
    file.record(1, 0, 30, &payload(30, 0)).record(2, 0, 30, &payload(30, 1));
    let failing = FailingAfter { data: Cursor::new(file.bytes), good: 24 + 46 + 10 };
    let mut source = FileSource::from_reader(NAME.into(), Box::new(failing)).expect("header reads");
    let (frames, error) = read_all(&mut source);
    assert_eq!(frames.len(), 1);
    let error = error.expect("the read error surfaces");
    assert!(matches!(&error.kind, CaptureErrorKind::Io(io) if io.to_string() == "disk on fire"), "{error}");
    assert_eq!(error.offset, Some(24 + 46));
}

#[test]
fn opens_files_by_path_and_counts_bytes_read() {
    let mut file = PcapFile::new(false, false, 1);
    file.record(5, 6, 2, &[7, 8]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("trace.bin");
    std::fs::write(&path, &file.bytes).expect("write capture");
    let mut source = FileSource::open(&path).expect("capture opens");
    assert_eq!(source.name(), path.to_string_lossy());
    let (frames, error) = read_all(&mut source);
    assert!(error.is_none());
    assert_eq!(frames, vec![got(secs_micros(5, 6), LinkType::ETHERNET, 2, &[7, 8])]);
    assert_eq!(source.bytes_read(), file.bytes.len() as u64);

    let missing = dir.path().join("missing.pcap");
    let error = FileSource::open(&missing).err().expect("missing file");
    assert!(matches!(error.kind, CaptureErrorKind::Open(_)));
    assert_eq!(error.file, missing.to_string_lossy());
    // Nothing was read: no offset.
    assert_eq!(
        error.to_string(),
        format!("{}: cannot open: No such file or directory (os error 2)", missing.display())
    );
}

#[test]
fn frame_debug_and_errors_never_show_payload() {
    let secret = b"PASS hunter2";
    let mut ng = PcapNgFile::default();
    ng.section(false).interface(1, &[]).epb(0, 1, secret.len() as u32, secret);
    let mut bytes = ng.take();
    // A corrupt block whose bytes are the secret.
    bytes.extend_from_slice(&[secret.as_slice(), &[0; 4]].concat());
    let mut source = open_bytes(bytes).expect("capture opens");
    let frame = source.next_frame().expect("frame").expect("frame");
    assert!(!format!("{frame:?}").contains("hunter2"));
    let error = source.next_frame().expect_err("corrupt block");
    assert!(!format!("{error} {error:?}").contains("hunter2"), "the error shows the payload");
}

#[test]
fn file_source_can_move_to_a_capture_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<FileSource>();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_after_a_header_never_panic(pcapng in any::<bool>(), tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = if pcapng {
            PcapNgFile::default().section(false).interface(1, &[]).take()
        } else {
            PcapFile::new(false, false, 1).bytes
        };
        bytes.extend_from_slice(&tail);
        let mut source = open_bytes(bytes).expect("the header is valid");
        let mut frames = 0usize;
        while let Ok(Some(frame)) = source.next_frame() {
            prop_assert!(frame.data.len() <= tail.len());
            frames += 1;
            // Every record is at least 12 bytes long, so the loop ends.
            prop_assert!(frames <= tail.len() / 12);
        }
        prop_assert!(matches!(source.next_frame(), Ok(None)));
    }
}

fn corpus_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            corpus_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "pcap" || ext == "pcapng") {
            found.push(path);
        }
    }
}

#[test]
fn reads_the_shared_corpus_to_the_end() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !corpus.is_dir() {
        println!("skipping: no capture corpus at {}", corpus.display());
        return;
    }
    let mut files = Vec::new();
    corpus_files(&corpus, &mut files);
    assert!(!files.is_empty(), "the corpus holds captures");
    let mut checked_counts = 0;
    for path in &files {
        let mut source = FileSource::open(path).unwrap_or_else(|e| panic!("{e}"));
        let mut frames = 0u64;
        while source.next_frame().unwrap_or_else(|e| panic!("{e}")).is_some() {
            frames += 1;
        }
        let expected = match path.file_name().and_then(|name| name.to_str()) {
            Some("pop3-user-pass.pcap") => Some(74),
            Some("basic-pcapng.pcapng") => Some(114),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(frames, expected, "{}", path.display());
            checked_counts += 1;
        }
        assert_eq!(source.bytes_read(), std::fs::metadata(path).expect("metadata").len());
    }
    assert_eq!(checked_counts, 2, "both reference files are in the corpus");
}
