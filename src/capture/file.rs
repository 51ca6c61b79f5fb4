//! Capture files in pure Rust: classic pcap (micro/nanosecond, either byte order), pcapng (several
//! sections and interfaces), gzip-compressed either way, from a path or stdin. The format is
//! sniffed from the first bytes, never taken from the file name.
//!
//! Byte offsets in errors and logs count bytes of the *decompressed* stream: for a gzip file they
//! point where `zcat file | tcpdump -r -` would be.
//!
//! This module owns the read buffer and frames every record itself: it must know how long a record
//! is to grow the buffer for a jumbo block and to reject an absurd length as corrupt at once
//! instead of buffering the rest of the file, and the buffer is a [`SharedBlock`] that threaded
//! runs hand to their workers instead of copying payloads. pcap-parser parses the file header,
//! section headers and interface descriptions. pcapng packet blocks (EPB, SPB and the obsolete PB)
//! are decoded here, because pcap-parser collects EPB options into a `Vec` per packet and hands
//! PBs out as unknown blocks.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use pcap_parser::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le, parse_pcap_header,
    parse_sectionheaderblock, InterfaceDescriptionBlock, OptionCode, PcapHeader, BOM_MAGIC, CB_MAGIC, DCB_MAGIC,
    DSB_MAGIC, EPB_MAGIC, IDB_MAGIC, ISB_MAGIC, NRB_MAGIC, PIB_MAGIC, SHB_MAGIC, SJE_MAGIC, SPB_MAGIC,
};

use super::{Frame, LinkType, SharedBlock, Timestamp};

#[cfg(test)]
mod tests;

/// Why a capture file could not be read (further): the file, where, and what went wrong.
#[derive(Debug)]
pub struct CaptureError {
    pub file: String,
    /// Where the record being read starts; `None` when opening the file or reading its header
    /// failed, where an offset would tell nothing.
    pub offset: Option<u64>,
    /// The file is gzip-compressed: the offset counts bytes of its decompressed data (where
    /// `zcat file | tcpdump -r -` would be), not of the file.
    pub compressed: bool,
    pub kind: CaptureErrorKind,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match self.offset {
            Some(offset) if self.compressed => write!(f, "at byte offset {offset} of the decompressed data: ")?,
            Some(offset) => write!(f, "at byte offset {offset}: ")?,
            None => {}
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for CaptureError {}

/// Each message holds its cause, which is therefore not also its `source()`: an error-chain
/// printer would say it twice.
#[derive(Debug, thiserror::Error)]
pub enum CaptureErrorKind {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("empty, not a capture")]
    Empty,
    /// The first bytes are no capture's magic number. They are not kept, nor shown: a file that
    /// is not a capture may start with anything, a password included.
    #[error("not a pcap or pcapng capture, gzip-compressed or not: unknown magic number")]
    UnknownFormat,
    /// Compressed in a format credwatch does not read (gzip it does): the analyst decompresses it.
    #[error("compressed with {}, which is not read here: decompress it first (`{}`)", .0.name(), .0.command())]
    CompressedWith(Compression),
    /// The file (or its decompressed data) ends before its file header (pcap) or first section
    /// header (pcapng) does.
    #[error("the file header is cut short (truncated capture)")]
    HeaderCut,
    #[error("file ends inside a record (truncated capture)")]
    Truncated,
    /// A gzip file's compressed data ends before its end marker: the file was cut (a copy or
    /// compression that did not finish), whatever the offset in its data says.
    #[error("the compressed data ends early (truncated gzip file)")]
    CompressedCut,
    #[error("corrupt capture: {0}")]
    Corrupt(String),
}

/// Starting size of the read buffer: large enough that a read call costs little per packet,
/// small enough to stay in a core's L2 cache (1 MiB here) next to the flow state while its
/// packets are decoded and analysed: 1 MiB reads swept the whole L2 each time (3–5 % more CPU on
/// mixed and mail-heavy traffic, measured).
pub(crate) const INITIAL_BUFFER_LEN: usize = 256 << 10;
/// Longest record (classic pcap record or pcapng block) accepted; anything longer is corruption.
const MAX_RECORD_LEN: usize = 256 << 20;
const NANOS_PER_SEC: u64 = 1_000_000_000;
/// Interfaces one pcapng section may declare. Capturing systems declare one per interface they
/// listen on (a few, hundreds at most); each costs memory for the section's whole reading, and a
/// compressed file of nothing but minimal declarations would otherwise grow it without end.
const MAX_INTERFACES: usize = 65_536;
/// What standard input (`-`) is called in errors and logs: "-: file is empty" said little.
const STDIN_NAME: &str = "standard input";
/// Enough leading bytes to tell the format and, for pcapng, the first block's length.
const SNIFF_LEN: usize = 12;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const LEGACY_HEADER_LEN: usize = 24;
/// Classic pcap magics, read little-endian: microsecond and nanosecond resolution in both byte
/// orders, and the little-endian "modified" (Kuznetsov) format that pcap-parser also reads.
const LEGACY_MAGICS: [u32; 5] = [0xa1b2_c3d4, 0xd4c3_b2a1, 0xa1b2_3c4d, 0x4d3c_b2a1, 0xa1b2_cd34];
/// The obsolete pcapng Packet Block, which pcap-parser has no constant for.
const PB_MAGIC: u32 = 0x0000_0002;
/// An Enhanced (or obsolete) Packet Block's bytes before its packet data: type, length,
/// interface, timestamp, captured and original lengths.
const PACKET_BLOCK_HEADER_LEN: usize = 28;
/// pcapng blocks that carry no packets and are skipped without a warning.
const NON_PACKET_BLOCKS: [u32; 7] = [NRB_MAGIC, ISB_MAGIC, SJE_MAGIC, DSB_MAGIC, CB_MAGIC, DCB_MAGIC, PIB_MAGIC];
/// The link-type bits of a classic pcap header; the upper bits carry FCS information (libpcap's
/// `LT_LINKTYPE`).
const LEGACY_LINKTYPE_MASK: u32 = 0x03FF_FFFF;
/// Blocks kept for reuse while workers may still hold them: about the blocks a threaded run has in
/// flight, so that reading settles on a fixed set of blocks.
const RETIRED_BLOCKS_KEPT: usize = 8;
/// Warnings past this many per file go to the debug level, so one broken file cannot flood the log.
const MAX_LOGGED_WARNINGS: u64 = 20;

/// Reads frames from one capture file.
pub struct FileSource {
    name: String,
    buffer: RecordBuffer,
    layout: Layout,
    /// Timestamp of the latest packet, given to Simple Packet Blocks, which carry none.
    last_ts: Timestamp,
    warnings: u64,
    finished: bool,
}

impl FileSource {
    /// Opens `path` (`-` reads standard input, named so in errors and logs).
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        if path.as_os_str() == "-" {
            return Self::from_reader(STDIN_NAME.to_string(), Box::new(io::stdin()));
        }
        let name = path.to_string_lossy().into_owned();
        match File::open(path) {
            Ok(file) => Self::from_reader(name, Box::new(file)),
            Err(error) => {
                Err(CaptureError { file: name, offset: None, compressed: false, kind: CaptureErrorKind::Open(error) })
            }
        }
    }

    /// Reads a capture from any byte stream; `name` is used in errors and logs.
    pub fn from_reader(name: String, reader: Box<dyn std::io::Read + Send>) -> Result<FileSource, CaptureError> {
        match open_capture(reader) {
            Ok((buffer, layout)) => {
                Ok(FileSource { name, buffer, layout, last_ts: Timestamp::default(), warnings: 0, finished: false })
            }
            Err(kind) => Err(CaptureError { file: name, offset: None, compressed: false, kind }),
        }
    }

    /// The next frame, `Ok(None)` at the end. After an error the source is finished.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        self.next_frame_in_block().map(|next| next.map(|(frame, _)| frame))
    }

    /// [`next_frame`](Self::next_frame), with the block its bytes lie in when it may be shared:
    /// slices of the frame can then be handed on as places in the block (see
    /// [`SharedBlock::range_of`]) instead of copies. Only blocks of the standard size are shared,
    /// so that what holders keep is bounded by their number; a buffer grown for a jumbo record
    /// is not.
    pub fn next_frame_in_block(&mut self) -> Result<Option<(Frame<'_>, Option<&SharedBlock>)>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        // The common cases, a classic pcap record or a pcapng Enhanced Packet Block already
        // buffered whole, without the general loop (which reads, grows the buffer, walks every
        // kind of block and reports errors and warnings, reading the record again).
        self.buffer.consume_pending();
        let data = self.buffer.data();
        let buffered = match &self.layout {
            Layout::Legacy(legacy) => data
                .get(..legacy.record_header_len)
                .and_then(|header| legacy.frame_record(header).ok().flatten())
                .filter(|(len, _)| *len <= data.len()),
            Layout::Ng(section) => section.enhanced_packet(data),
        };
        if let Some((len, packet)) = buffered {
            self.buffer.pending_consume = len;
            self.last_ts = packet.ts;
            return Ok(Some((self.frame_at(packet), self.buffer.shareable_block())));
        }
        match self.next_packet() {
            Ok(Some(packet)) => Ok(Some((self.frame_at(packet), self.buffer.shareable_block()))),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(kind) => {
                self.finished = true;
                Err(CaptureError {
                    file: self.name.clone(),
                    offset: Some(self.buffer.offset()),
                    compressed: self.buffer.compressed,
                    kind,
                })
            }
        }
    }

    /// The name given to the source (the path as the user wrote it, or "standard input").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read blocks allocated so far: a few in all when the blocks shared with workers come back
    /// (see [`next_frame_in_block`](Self::next_frame_in_block)), one when none are shared.
    pub fn blocks_made(&self) -> u64 {
        self.buffer.blocks_made
    }

    /// Compressed bytes consumed so far from the underlying file (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.buffer.compressed_bytes.load(Ordering::Relaxed)
    }

    fn frame_at(&self, packet: PacketLocation) -> Frame<'_> {
        Frame {
            ts: packet.ts,
            link_type: packet.link_type,
            orig_len: packet.orig_len,
            // The decoders only hand out ranges inside the record `next_record` buffered.
            data: self.buffer.data().get(packet.data).unwrap_or_default(),
        }
    }

    /// Non-fatal problems met so far (unknown pcapng blocks, packets for an undeclared interface, …).
    pub fn warnings(&self) -> u64 {
        self.warnings
    }

    /// Reads records until one holds a packet; `None` at a clean end of file.
    fn next_packet(&mut self) -> Result<Option<PacketLocation>, CaptureErrorKind> {
        loop {
            let outcome = match &mut self.layout {
                Layout::Legacy(legacy) => match self.buffer.next_record(|data| legacy.frame_record(data))? {
                    Some(packet) => RecordOutcome::Packet(packet),
                    None => return Ok(None),
                },
                Layout::Ng(section) => {
                    let section_big_endian = section.big_endian;
                    let framed = self.buffer.next_record(|data| {
                        Ok(ng_block_header(data, section_big_endian)?.map(|block| (block.len, block)))
                    })?;
                    let Some(block) = framed else {
                        return Ok(None);
                    };
                    section.decode_block(self.buffer.data(), block, self.last_ts)?
                }
            };
            match outcome {
                RecordOutcome::Packet(packet) => {
                    self.last_ts = packet.ts;
                    return Ok(Some(packet));
                }
                RecordOutcome::Metadata => {}
                RecordOutcome::Warning(warning) => self.note(&warning),
            }
        }
    }

    fn note(&mut self, warning: &Warning) {
        self.warnings += 1;
        let offset = self.buffer.offset();
        if self.warnings <= MAX_LOGGED_WARNINGS {
            tracing::warn!(file = %self.name, offset, "{warning}");
        } else {
            tracing::debug!(file = %self.name, offset, "{warning}");
        }
        if self.warnings == MAX_LOGGED_WARNINGS {
            tracing::warn!(file = %self.name, "further warnings for this file are logged at debug level");
        }
    }
}

/// The read buffer: the bytes `start..end` of the current block, refilled from the stream. Frames
/// borrow the block; a threaded run also shares it with workers (their segments point into it),
/// and then reading goes on in another block: the oldest retired one when its holders are all
/// done with it, else a new one. A block nobody else holds is reused in place, as a plain buffer.
struct RecordBuffer {
    stream: Box<dyn Read + Send>,
    compressed_bytes: ByteCount,
    block: SharedBlock,
    start: usize,
    end: usize,
    /// Offset of `start` in the decompressed stream.
    offset: u64,
    /// Length of the record handed out last. It is consumed at the next call, so that the frame
    /// returned meanwhile can borrow the buffer.
    pending_consume: usize,
    /// Blocks read before the current one, oldest first, to be reused once free.
    retired: VecDeque<SharedBlock>,
    /// Blocks allocated so far (a number growing with the file would mean blocks are not coming
    /// back).
    blocks_made: u64,
    exhausted: bool,
    /// The stream is decompressed gzip: offsets count its data, and its ending early is the
    /// compressed file's being cut.
    compressed: bool,
}

impl RecordBuffer {
    fn new(stream: SniffedStream, compressed_bytes: ByteCount, capacity: usize) -> RecordBuffer {
        RecordBuffer {
            stream: stream.stream,
            compressed: stream.compressed,
            compressed_bytes,
            block: SharedBlock::new(capacity),
            start: 0,
            end: 0,
            offset: 0,
            pending_consume: 0,
            retired: VecDeque::new(),
            blocks_made: 1,
            exhausted: false,
        }
    }

    /// Offset of the current record in the decompressed stream.
    fn offset(&self) -> u64 {
        self.offset
    }

    fn capacity(&self) -> usize {
        self.block.len()
    }

    /// The current block, if it is of the standard size (see [`FileSource::next_frame_in_block`]).
    fn shareable_block(&self) -> Option<&SharedBlock> {
        (self.block.len() == INITIAL_BUFFER_LEN).then_some(&self.block)
    }

    /// The buffered bytes, from the current record on.
    fn data(&self) -> &[u8] {
        self.block.bytes().get(self.start..self.end).unwrap_or_default()
    }

    fn consume(&mut self, len: usize) {
        let len = len.min(self.end - self.start);
        self.start += len;
        self.offset += len as u64;
    }

    /// Steps past the record handed out last.
    fn consume_pending(&mut self) {
        let len = std::mem::take(&mut self.pending_consume);
        self.consume(len);
    }

    /// Steps past the previous record and makes sure the whole next one is in the buffer.
    /// `frame` reads its length (and whatever else the caller needs) from the bytes buffered so
    /// far, or returns `None` while even its header is incomplete. Returns `None` at a clean end of
    /// file.
    fn next_record<H>(
        &mut self,
        frame: impl Fn(&[u8]) -> Result<Option<(usize, H)>, CaptureErrorKind>,
    ) -> Result<Option<H>, CaptureErrorKind> {
        self.consume_pending();
        loop {
            let available = self.end - self.start;
            match frame(self.data())? {
                Some((len, header)) if len <= available => {
                    self.pending_consume = len;
                    return Ok(Some(header));
                }
                Some((len, _)) => self.grow_towards(len, available),
                None => {}
            }
            if !self.refill()? {
                return if available == 0 { Ok(None) } else { Err(CaptureErrorKind::Truncated) };
            }
        }
    }

    /// Reads until `len` bytes are buffered; `false` when the stream ends first.
    fn fill_to(&mut self, len: usize) -> Result<bool, CaptureErrorKind> {
        while self.end - self.start < len {
            if !self.refill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads more of the stream after the buffered bytes, once; `false` at its end.
    fn refill(&mut self) -> Result<bool, CaptureErrorKind> {
        if self.exhausted {
            return Ok(false);
        }
        self.make_room(self.capacity());
        loop {
            let space = self.block.exclusive().and_then(|bytes| bytes.get_mut(self.end..)).unwrap_or_default();
            match self.stream.read(space) {
                Ok(0) => {
                    self.exhausted = true;
                    return Ok(false);
                }
                Ok(read) => {
                    self.end += read;
                    return Ok(true);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io_failure(error, self.compressed)),
            }
        }
    }

    /// Moves the buffered bytes to the start of a block of at least `capacity` bytes that nobody
    /// else holds: the current one when it is free and large enough, else a retired or new one.
    fn make_room(&mut self, capacity: usize) {
        let buffered = self.start..self.end;
        let len = buffered.len();
        match self.block.exclusive() {
            // Already at the start (a record being gathered over many reads): nothing to move.
            Some(bytes) if bytes.len() >= capacity => {
                if buffered.start > 0 {
                    bytes.copy_within(buffered, 0);
                }
            }
            _ => {
                let mut fresh = self.free_block(capacity);
                if let (Some(to), Some(from)) =
                    (fresh.exclusive().and_then(|bytes| bytes.get_mut(..len)), self.block.bytes().get(buffered))
                {
                    to.copy_from_slice(from);
                }
                let old = std::mem::replace(&mut self.block, fresh);
                self.retire(old);
            }
        }
        self.start = 0;
        self.end = len;
    }

    /// The oldest retired block if every holder is done with it and it is large enough (holders
    /// let go in about the order blocks were read), else a new block.
    fn free_block(&mut self, capacity: usize) -> SharedBlock {
        if let Some(oldest) = self.retired.front_mut() {
            if oldest.len() >= capacity && oldest.exclusive().is_some() {
                if let Some(block) = self.retired.pop_front() {
                    return block;
                }
            }
        }
        self.blocks_made += 1;
        SharedBlock::new(capacity)
    }

    /// Keeps a block that workers may still hold, for reuse; past [`RETIRED_BLOCKS_KEPT`] the
    /// oldest is let go (it is freed when its last holder is done).
    fn retire(&mut self, block: SharedBlock) {
        if block.len() == self.capacity() {
            self.retired.push_back(block);
        }
        if self.retired.len() > RETIRED_BLOCKS_KEPT {
            self.retired.pop_front();
        }
    }

    /// Grows the buffer towards a record of `len` bytes (framing caps `len` at `MAX_RECORD_LEN`),
    /// doubling only once the buffer is full: a record header claiming far more bytes than the
    /// file holds then costs the memory of the bytes really there, not of the claim.
    fn grow_towards(&mut self, len: usize, available: usize) {
        let capacity = self.capacity();
        if len > capacity && available >= capacity {
            let grown = capacity.saturating_mul(2).min(len.next_power_of_two()).min(MAX_RECORD_LEN);
            self.retired.clear();
            self.make_room(grown);
        }
    }
}

/// Compressed bytes read at most to see the first bytes of a gzip file's data when searching a
/// directory: far more than a gzip header with its file name and comment takes, and little to
/// read for every gzip file of a directory.
const GZIP_SNIFF_LIMIT: u64 = 64 << 10;

/// Whether `stream` starts like a capture, as [`FileSource`] would tell (for the search of
/// directories, which keeps only captures): a capture's magic number, or gzip data starting with
/// one. A gzip stream whose first bytes cannot be decompressed (corrupt, cut, or a header past
/// [`GZIP_SNIFF_LIMIT`]) counts as a capture: reading it says what is wrong, where leaving it out
/// could hide a capture. Errors are those of reading `stream` for its first four bytes; a stream
/// shorter than that is no capture.
pub(crate) fn starts_like_a_capture(mut stream: impl Read) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    match stream.read_exact(&mut magic) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(error) => return Err(error),
    }
    if !magic.starts_with(&GZIP_MAGIC) {
        return Ok(is_capture_magic(magic));
    }
    let mut decompressed = MultiGzDecoder::new(Cursor::new(magic).chain(stream.take(GZIP_SNIFF_LIMIT)));
    let mut data = [0u8; 4];
    Ok(match read_up_to(&mut decompressed, &mut data) {
        Ok(4) => is_capture_magic(data),
        // Less than four bytes of data, the stream complete: no capture.
        Ok(_) => false,
        Err(_) => true,
    })
}

fn is_capture_magic(magic: [u8; 4]) -> bool {
    let magic = u32::from_le_bytes(magic);
    LEGACY_MAGICS.contains(&magic) || magic == SHB_MAGIC
}

/// Compression formats told by their magic numbers, for a clear error: `tcpdump -z` and
/// archiving scripts compress rotated captures with any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Bzip2,
    Xz,
    Zstd,
    Lz4,
}

impl Compression {
    fn of(head: &[u8]) -> Option<Compression> {
        const MAGICS: [(&[u8], Compression); 4] = [
            (b"BZh", Compression::Bzip2),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0], Compression::Xz),
            (&[0x28, 0xb5, 0x2f, 0xfd], Compression::Zstd),
            (&[0x04, 0x22, 0x4d, 0x18], Compression::Lz4),
        ];
        MAGICS.iter().find(|(magic, _)| head.starts_with(magic)).map(|(_, compression)| *compression)
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    fn command(self) -> &'static str {
        match self {
            Compression::Bzip2 => "bunzip2 FILE",
            Compression::Xz => "unxz FILE",
            Compression::Zstd => "zstd -d FILE",
            Compression::Lz4 => "lz4 -d FILE",
        }
    }
}

/// Sniffs gzip, then the capture format, and reads the file header.
fn open_capture(raw: Box<dyn Read + Send>) -> Result<(RecordBuffer, Layout), CaptureErrorKind> {
    let compressed_bytes = ByteCount::default();
    let stream = decompressed_stream(raw, &compressed_bytes)?;
    let (head, head_len) = (stream.head, stream.head_len);
    let sniffed = head.get(..head_len).unwrap_or_default();
    if sniffed.is_empty() {
        return Err(CaptureErrorKind::Empty);
    }
    if let Some(compression) = Compression::of(sniffed) {
        return Err(CaptureErrorKind::CompressedWith(compression));
    }
    let Some(&magic) = sniffed.first_chunk::<4>() else {
        return Err(CaptureErrorKind::UnknownFormat);
    };
    let magic_le = u32::from_le_bytes(magic);
    if LEGACY_MAGICS.contains(&magic_le) {
        open_legacy(stream, compressed_bytes)
    } else if magic_le == SHB_MAGIC {
        open_ng(stream, compressed_bytes, &head, head_len)
    } else {
        Err(CaptureErrorKind::UnknownFormat)
    }
}

/// The capture stream, decompressed when it starts with the gzip magic, and its first bytes.
struct SniffedStream {
    /// The whole stream, including the bytes in `head`.
    stream: Box<dyn Read + Send>,
    /// The first `SNIFF_LEN` bytes, or fewer (`head_len`) when the stream is that short.
    head: [u8; SNIFF_LEN],
    head_len: usize,
    /// `stream` is decompressed gzip.
    compressed: bool,
}

fn decompressed_stream(
    raw: Box<dyn Read + Send>,
    compressed_bytes: &ByteCount,
) -> Result<SniffedStream, CaptureErrorKind> {
    let mut compressed = CountingReader { inner: raw, compressed_bytes: Arc::clone(compressed_bytes) };
    let mut head = [0u8; SNIFF_LEN];
    let head_len = read_up_to(&mut compressed, &mut head).map_err(|error| io_failure(error, false))?;
    let already_read = Cursor::new(head).take(head_len as u64);
    if !head.starts_with(&GZIP_MAGIC) {
        let stream = Box::new(already_read.chain(compressed));
        return Ok(SniffedStream { stream, head, head_len, compressed: false });
    }
    let mut decompressed = MultiGzDecoder::new(already_read.chain(compressed));
    let mut head = [0u8; SNIFF_LEN];
    let head_len = read_up_to(&mut decompressed, &mut head).map_err(|error| io_failure(error, true))?;
    let already_read = Cursor::new(head).take(head_len as u64);
    let stream = Box::new(already_read.chain(decompressed));
    Ok(SniffedStream { stream, head, head_len, compressed: true })
}

fn open_legacy(stream: SniffedStream, compressed_bytes: ByteCount) -> Result<(RecordBuffer, Layout), CaptureErrorKind> {
    let mut buffer = RecordBuffer::new(stream, compressed_bytes, INITIAL_BUFFER_LEN);
    if !buffer.fill_to(LEGACY_HEADER_LEN)? {
        return Err(CaptureErrorKind::HeaderCut);
    }
    let layout = match parse_pcap_header(buffer.data()) {
        Ok((_, header)) => LegacyLayout::new(&header),
        // Never format the parser error itself: it carries file bytes.
        Err(_) => return Err(CaptureErrorKind::Corrupt("invalid file header".into())),
    };
    buffer.consume(LEGACY_HEADER_LEN);
    Ok((buffer, Layout::Legacy(layout)))
}

/// Opens a pcapng stream whose first `head_len` bytes are `head`. The first Section Header Block
/// is checked here, so that a file that is no capture fails to open, and stays in the buffer, to
/// be read like any later one.
fn open_ng(
    stream: SniffedStream,
    compressed_bytes: ByteCount,
    head: &[u8; SNIFF_LEN],
    head_len: usize,
) -> Result<(RecordBuffer, Layout), CaptureErrorKind> {
    let sniffed = head.get(..head_len).unwrap_or_default();
    let section = ng_block_header(sniffed, false)?.ok_or(CaptureErrorKind::HeaderCut)?;
    let capacity = INITIAL_BUFFER_LEN.max(section.len.next_power_of_two());
    let mut buffer = RecordBuffer::new(stream, compressed_bytes, capacity);
    if !buffer.fill_to(section.len)? {
        return Err(CaptureErrorKind::HeaderCut);
    }
    // Now that the block is buffered whole, its trailer is checked too.
    ng_block_header(buffer.data(), false)?;
    if parse_sectionheaderblock(buffer.data()).is_err() {
        return Err(CaptureErrorKind::Corrupt("invalid section header block".into()));
    }
    let layout = Layout::Ng(NgSection { big_endian: section.big_endian, interfaces: Vec::new() });
    Ok((buffer, layout))
}

/// How records are laid out, per container format.
enum Layout {
    Legacy(LegacyLayout),
    Ng(NgSection),
}

/// What a record turned out to hold.
enum RecordOutcome {
    Packet(PacketLocation),
    /// A header, an interface description or a block without packets.
    Metadata,
    Warning(Warning),
}

/// A packet found in the buffer: `data` is the range of its bytes in the reader's buffer.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct PacketLocation {
    ts: Timestamp,
    link_type: LinkType,
    orig_len: u32,
    data: Range<usize>,
}

/// Non-fatal oddities, counted in [`FileSource::warnings`]. They never hold file contents.
enum Warning {
    UnknownBlock(u32),
    UndeclaredInterface(u32),
    InvalidTsresol(u8),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownBlock(block_type) => write!(f, "skipped a pcapng block of unknown type {block_type:#010x}"),
            Warning::UndeclaredInterface(id) => {
                write!(f, "skipped a packet for undeclared pcapng interface {id}")
            }
            Warning::InvalidTsresol(tsresol) => {
                write!(f, "invalid if_tsresol {tsresol:#04x}, assuming microseconds")
            }
        }
    }
}

/// The record format of a classic pcap file, from its header.
#[derive(Clone, Copy)]
struct LegacyLayout {
    link_type: LinkType,
    big_endian: bool,
    record_header_len: usize,
    nanos_per_tick: u64,
}

impl LegacyLayout {
    fn new(header: &PcapHeader) -> LegacyLayout {
        LegacyLayout {
            // The field is 32 bits on disk; the sign pcap-parser gives it is meaningless.
            link_type: LinkType(header.network.0 as u32 & LEGACY_LINKTYPE_MASK),
            big_endian: header.is_bigendian(),
            record_header_len: if header.is_modified_format() { 24 } else { 16 },
            nanos_per_tick: if header.is_nanosecond_precision() { 1 } else { 1_000 },
        }
    }

    /// Length and packet of the record starting `data`, once its header is buffered. The header
    /// is four integers, read here directly: having pcap-parser parse every record a second time
    /// cost a tenth of the reading time in profiles.
    fn frame_record(&self, data: &[u8]) -> Result<Option<(usize, PacketLocation)>, CaptureErrorKind> {
        let field = |at| read_u32(data, at, self.big_endian);
        let (Some(ts_sec), Some(ts_frac), Some(caplen), Some(orig_len)) = (field(0), field(4), field(8), field(12))
        else {
            return Ok(None);
        };
        let caplen = match usize::try_from(caplen) {
            Ok(caplen) if caplen <= MAX_RECORD_LEN - self.record_header_len => caplen,
            _ => {
                return Err(CaptureErrorKind::Corrupt(format!(
                    "record claims {caplen} captured bytes, more than the {MAX_RECORD_LEN} byte limit"
                )))
            }
        };
        let ts = Timestamp(
            u64::from(ts_sec)
                .saturating_mul(NANOS_PER_SEC)
                .saturating_add(u64::from(ts_frac).saturating_mul(self.nanos_per_tick)),
        );
        let data_start = self.record_header_len;
        let location =
            PacketLocation { ts, link_type: self.link_type, orig_len, data: data_start..data_start + caplen };
        Ok(Some((data_start + caplen, location)))
    }
}

/// The state of the current pcapng section: its byte order and the interfaces declared so far.
struct NgSection {
    big_endian: bool,
    interfaces: Vec<Interface>,
}

/// A pcapng interface: its link type and how its timestamps count.
struct Interface {
    link_type: LinkType,
    clock: Clock,
}

/// The type and length of a pcapng block, from its first bytes.
#[derive(Clone, Copy)]
struct NgBlockHeader {
    block_type: u32,
    len: usize,
    big_endian: bool,
}

/// Reads the header of the pcapng block starting `data`, once enough of it is buffered, and checks
/// its lengths. A Section Header Block carries its own byte order; other blocks use the section's.
fn ng_block_header(data: &[u8], section_big_endian: bool) -> Result<Option<NgBlockHeader>, CaptureErrorKind> {
    let Some(raw_type) = read_u32(data, 0, false) else {
        return Ok(None);
    };
    let big_endian = if raw_type == SHB_MAGIC {
        match read_u32(data, 8, false) {
            None => return Ok(None),
            Some(BOM_MAGIC) => false,
            Some(bom) if bom == BOM_MAGIC.swap_bytes() => true,
            Some(_) => return Err(CaptureErrorKind::Corrupt("section header with an invalid byte-order magic".into())),
        }
    } else {
        section_big_endian
    };
    let Some(len_field) = read_u32(data, 4, big_endian) else {
        return Ok(None);
    };
    let block_type = if big_endian { raw_type.swap_bytes() } else { raw_type };
    let len = match usize::try_from(len_field) {
        Ok(len) if (12..=MAX_RECORD_LEN).contains(&len) && len % 4 == 0 => len,
        _ => {
            return Err(CaptureErrorKind::Corrupt(format!(
                "block of type {block_type:#010x} claims an invalid length of {len_field} bytes"
            )))
        }
    };
    if let Some(trailer) = read_u32(data, len - 4, big_endian) {
        if trailer != len_field {
            return Err(CaptureErrorKind::Corrupt(format!(
                "block of type {block_type:#010x} has length {len_field} but trailer {trailer}"
            )));
        }
    }
    Ok(Some(NgBlockHeader { block_type, len, big_endian }))
}

impl NgSection {
    /// Decodes the block at the start of `data` (buffered whole).
    fn decode_block(
        &mut self,
        data: &[u8],
        block: NgBlockHeader,
        last_ts: Timestamp,
    ) -> Result<RecordOutcome, CaptureErrorKind> {
        match block.block_type {
            SHB_MAGIC => {
                let big_endian = match parse_sectionheaderblock(data) {
                    Ok((_, shb)) => shb.big_endian(),
                    Err(_) => return Err(CaptureErrorKind::Corrupt("invalid section header block".into())),
                };
                self.big_endian = big_endian;
                self.interfaces.clear();
                Ok(RecordOutcome::Metadata)
            }
            IDB_MAGIC => {
                let parsed = if self.big_endian {
                    parse_interfacedescriptionblock_be(data)
                } else {
                    parse_interfacedescriptionblock_le(data)
                };
                let (interface, warning) = match parsed {
                    Ok((_, idb)) => Interface::from_idb(&idb, self.big_endian),
                    Err(_) => return Err(CaptureErrorKind::Corrupt("invalid interface description block".into())),
                };
                if self.interfaces.len() >= MAX_INTERFACES {
                    return Err(CaptureErrorKind::Corrupt(format!(
                        "more than {MAX_INTERFACES} interfaces declared in one section"
                    )));
                }
                self.interfaces.push(interface);
                Ok(warning.map_or(RecordOutcome::Metadata, RecordOutcome::Warning))
            }
            EPB_MAGIC | PB_MAGIC | SPB_MAGIC => {
                let bytes = data.get(..block.len).unwrap_or_default();
                self.decode_packet(bytes, block, last_ts)
            }
            block_type if NON_PACKET_BLOCKS.contains(&block_type) => Ok(RecordOutcome::Metadata),
            block_type => Ok(RecordOutcome::Warning(Warning::UnknownBlock(block_type))),
        }
    }

    /// Length and packet of the Enhanced Packet Block starting `data`, when it is buffered whole,
    /// well formed and of a declared interface: a few field reads for the usual pcapng record,
    /// where [`ng_block_header`] and [`decode_packet`](Self::decode_packet) take three times the
    /// instructions. Anything else is left to them.
    fn enhanced_packet(&self, data: &[u8]) -> Option<(usize, PacketLocation)> {
        let field = |at| read_u32(data, at, self.big_endian);
        if field(0)? != EPB_MAGIC {
            return None;
        }
        let len = usize::try_from(field(4)?).ok().filter(|len| (32..=MAX_RECORD_LEN).contains(len) && len % 4 == 0)?;
        if usize::try_from(field(len - 4)?).ok()? != len {
            return None;
        }
        // The packet bytes follow the header and end before the trailing length.
        let data_end =
            usize::try_from(field(20)?).ok()?.checked_add(PACKET_BLOCK_HEADER_LEN).filter(|end| *end <= len - 4)?;
        let interface = self.interfaces.get(usize::try_from(field(8)?).ok()?)?;
        let ticks = (u64::from(field(12)?) << 32) | u64::from(field(16)?);
        let packet = PacketLocation {
            ts: interface.clock.timestamp(ticks),
            link_type: interface.link_type,
            orig_len: field(24)?,
            data: PACKET_BLOCK_HEADER_LEN..data_end,
        };
        Some((len, packet))
    }

    /// Decodes an Enhanced, Simple or obsolete Packet Block held whole in `bytes`.
    fn decode_packet(
        &self,
        bytes: &[u8],
        block: NgBlockHeader,
        last_ts: Timestamp,
    ) -> Result<RecordOutcome, CaptureErrorKind> {
        let corrupt =
            |what: &str| CaptureErrorKind::Corrupt(format!("{what} in block of type {:#010x}", block.block_type));
        let big_endian = block.big_endian;
        let field = |at: usize| read_u32(bytes, at, big_endian).ok_or_else(|| corrupt("block too short"));
        let is_simple = block.block_type == SPB_MAGIC;
        // Type, length, the fixed fields and the trailing length.
        let min_len = if is_simple { 16 } else { 32 };
        if block.len < min_len {
            return Err(corrupt("block too short"));
        }
        // Packet bytes end where the trailing length field starts.
        let data_limit = block.len - 4;
        let (interface_id, ticks, orig_len, caplen, data_start) = if is_simple {
            let orig_len = field(8)?;
            // An SPB has no caplen: the packet fills the block, up to its original length.
            let room = u32::try_from(data_limit.saturating_sub(12)).unwrap_or(u32::MAX);
            (0, None, orig_len, orig_len.min(room), 12)
        } else {
            let interface_id = if block.block_type == PB_MAGIC {
                // The obsolete PB has a 16-bit interface id followed by a drop count.
                read_u16(bytes, 8, big_endian).map(u32::from).ok_or_else(|| corrupt("block too short"))?
            } else {
                field(8)?
            };
            let ticks = (u64::from(field(12)?) << 32) | u64::from(field(16)?);
            (interface_id, Some(ticks), field(24)?, field(20)?, PACKET_BLOCK_HEADER_LEN)
        };
        let data_end = usize::try_from(caplen).ok().and_then(|caplen| caplen.checked_add(data_start));
        let data = match data_end {
            Some(data_end) if data_end <= data_limit => data_start..data_end,
            _ => return Err(corrupt(&format!("captured length {caplen} larger than the block"))),
        };
        let Some(interface) = usize::try_from(interface_id).ok().and_then(|id| self.interfaces.get(id)) else {
            return Ok(RecordOutcome::Warning(Warning::UndeclaredInterface(interface_id)));
        };
        Ok(RecordOutcome::Packet(PacketLocation {
            ts: ticks.map_or(last_ts, |ticks| interface.clock.timestamp(ticks)),
            link_type: interface.link_type,
            orig_len,
            data,
        }))
    }
}

impl Interface {
    /// The interface an IDB declares, and a warning when its resolution is unusable.
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> (Interface, Option<Warning>) {
        // pcap-parser reads if_tsoffset little-endian whatever the section's byte order.
        let offset_secs = idb
            .options
            .iter()
            .find(|option| option.code == OptionCode::IfTsoffset)
            .and_then(|option| option.as_bytes().ok()?.first_chunk::<8>().copied())
            .map_or(0, |bytes| if big_endian { i64::from_be_bytes(bytes) } else { i64::from_le_bytes(bytes) });
        let (scale, warning) = match TickScale::from_tsresol(idb.if_tsresol) {
            Some(scale) => (scale, None),
            None => (TickScale::MICROSECONDS, Some(Warning::InvalidTsresol(idb.if_tsresol))),
        };
        let clock = Clock { scale, offset_nanos: offset_secs.saturating_mul(NANOS_PER_SEC as i64) };
        // The IDB field is 16 bits, so the value is never negative.
        (Interface { link_type: LinkType(idb.linktype.0 as u32), clock }, warning)
    }
}

/// How an interface's timestamp ticks convert to nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Clock {
    scale: TickScale,
    /// `if_tsoffset`, which pcapng counts in whole seconds.
    offset_nanos: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TickScale {
    /// Decimal resolutions down to the nanosecond: one multiplication per packet.
    NanosPerTick(u64),
    /// Finer decimal or binary resolutions.
    TicksPerSec(u64),
}

impl TickScale {
    /// The pcapng default resolution.
    const MICROSECONDS: TickScale = TickScale::NanosPerTick(1_000);

    /// From an `if_tsresol` value (bit 7 clear: 10^-n s, set: 2^-n s); `None` when the
    /// resolution does not fit 64 bits.
    fn from_tsresol(tsresol: u8) -> Option<TickScale> {
        let exponent = u32::from(tsresol & 0x7f);
        if tsresol & 0x80 == 0 {
            match exponent {
                0..=9 => Some(TickScale::NanosPerTick(10u64.pow(9 - exponent))),
                10..=19 => Some(TickScale::TicksPerSec(10u64.pow(exponent))),
                _ => None,
            }
        } else {
            1u64.checked_shl(exponent).map(TickScale::TicksPerSec)
        }
    }
}

impl Clock {
    fn timestamp(&self, ticks: u64) -> Timestamp {
        let nanos = match self.scale {
            TickScale::NanosPerTick(nanos_per_tick) => ticks.saturating_mul(nanos_per_tick),
            TickScale::TicksPerSec(ticks_per_sec) => {
                let secs = ticks / ticks_per_sec;
                let fraction =
                    u128::from(ticks % ticks_per_sec) * u128::from(NANOS_PER_SEC) / u128::from(ticks_per_sec);
                // `fraction` is below one second's worth of nanoseconds.
                secs.saturating_mul(NANOS_PER_SEC).saturating_add(fraction as u64)
            }
        };
        Timestamp(nanos.saturating_add_signed(self.offset_nanos))
    }
}

fn read_u32(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes = *data.get(at..)?.first_chunk::<4>()?;
    Some(if big_endian { u32::from_be_bytes(bytes) } else { u32::from_le_bytes(bytes) })
}

fn read_u16(data: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    let bytes = *data.get(at..)?.first_chunk::<2>()?;
    Some(if big_endian { u16::from_be_bytes(bytes) } else { u16::from_le_bytes(bytes) })
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// A gzip stream that stops early reports `UnexpectedEof`: its file was cut. (Another reader
/// saying so has ended inside a record.)
fn io_failure(error: io::Error, compressed: bool) -> CaptureErrorKind {
    match error.kind() {
        io::ErrorKind::UnexpectedEof if compressed => CaptureErrorKind::CompressedCut,
        io::ErrorKind::UnexpectedEof => CaptureErrorKind::Truncated,
        _ => CaptureErrorKind::Io(error),
    }
}

/// Bytes read from the file itself, before any decompression (for progress), counted by the
/// reader chain and read by the source.
type ByteCount = Arc<AtomicU64>;

/// Counts the bytes read from the file itself, before any decompression.
struct CountingReader {
    inner: Box<dyn Read + Send>,
    compressed_bytes: ByteCount,
}

impl Read for CountingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.compressed_bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
