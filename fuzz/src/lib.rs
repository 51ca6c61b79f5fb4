//! Fuzz harnesses for credwatch, shared by the libFuzzer targets (`fuzz_targets/`) and by the main
//! crate's regression tests (`tests/regressions.rs` includes this file), so that a crashing input
//! kept in `tests/regressions/` replays through exactly the code that found it.
//!
//! Each harness takes arbitrary bytes and must never panic. The reassembly harness also checks the
//! reassembler against a simple model (first copy wins, bounded memory), and the capture harness
//! the encoded events (JSON that parses, remembered server objects equal to fresh ones); both
//! panic on a mismatch, which the fuzzer reports like a crash. The `encode_*` functions write
//! inputs in the harnesses' formats, for seed corpora and tests.

use std::collections::{HashMap, VecDeque};
use std::io::{Cursor, Read};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use credwatch::alert::Event;
use credwatch::capture::{FileSource, Frame, LinkType, SharedBlock, Timestamp};
use credwatch::decode::{Decoded, Decoder, DefragLimits};
use credwatch::flow::{seq, FlowLimits, ReassemblyLimits, ReassemblyStats, Side, StreamChunk, StreamReassembler};
use credwatch::output::{Encoder, Format, Observer, Record};
use credwatch::pipeline::Engine;
use credwatch::proto::{CtxParts, ProtoConfig, Session};

/// Frames a capture may hold at most before the harness stops reading (keeps runs fast on inputs
/// that decompress to a lot).
const MAX_FRAMES: usize = 10_000;

/// The capture harness reads at most this many bytes at a time, so that refills happen within
/// small inputs, and with them the reader moving to another block while frames are held.
const READ_CHUNK: usize = 509;
/// Frames the capture harness holds at a time, as a worker's batches hold their blocks.
const FRAMES_HELD: usize = 3;

/// A capture handed over in chunks of at most [`READ_CHUNK`] bytes.
struct Chunked(Cursor<Vec<u8>>);

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(READ_CHUNK);
        self.0.read(&mut buf[..len])
    }
}

/// A frame's bytes held through its block, and a copy to check them against.
struct HeldFrame {
    block: SharedBlock,
    range: Range<usize>,
    copy: Vec<u8>,
}

impl HeldFrame {
    /// Panics (a finding) when the reader wrote into the block while it was held.
    fn check(&self) {
        assert!(
            self.block.bytes().get(self.range.clone()) == Some(self.copy.as_slice()),
            "a held block was written to"
        );
    }
}

/// Every format's encoder, one of each for the whole input (as a run keeps them), so that the
/// JSON encoder's remembered server objects meet servers as odd as the input makes them.
struct Encoders {
    json: Encoder,
    ecs: Encoder,
    text: Encoder,
}

impl Encoders {
    fn new() -> Encoders {
        Encoders { json: encoder(Format::Json), ecs: encoder(Format::Ecs), text: encoder(Format::Text) }
    }

    /// Encodes every event in every format: JSON and ECS lines must parse, and a JSON line must
    /// be what an encoder remembering nothing writes.
    fn encode_all(&mut self, events: &[Event]) {
        for event in events {
            let record = Record::Event(event);
            let json = self.json.encode(record);
            let afresh = encoder(Format::Json).encode(record);
            assert!(json == afresh, "a remembered server object differs from one written afresh");
            let ecs = self.ecs.encode(record);
            for line in [&json, &ecs].into_iter().filter(|line| !line.is_empty()) {
                assert!(serde_json::from_slice::<serde_json::Value>(line).is_ok(), "an encoded line is not JSON");
            }
            self.text.encode(record);
        }
    }
}

fn encoder(format: Format) -> Encoder {
    Encoder::new(format, Arc::new(Observer { hostname: "fuzz".to_string() }))
}

/// Capture-file reader, then decoder and engine, then the output encoders: the whole offline
/// pipeline on a file's bytes. Frames are held for a while through their read block (as threaded
/// runs do), and must not change meanwhile.
pub fn capture_file(data: &[u8]) {
    let Ok(mut source) = FileSource::from_reader("fuzz-input".into(), Box::new(Chunked(Cursor::new(data.to_vec()))))
    else {
        return;
    };
    let mut decoder = Decoder::new();
    let limits = small_flow_limits();
    let mut engine = Engine::new(limits, small_proto_config());
    let mut events = Vec::new();
    let mut encoders = Encoders::new();
    let mut second = 0;
    let mut held = VecDeque::new();
    for _ in 0..MAX_FRAMES {
        let Ok(Some((frame, block))) = source.next_frame_in_block() else { break };
        if let Some(block) = block.filter(|_| !frame.data.is_empty()) {
            let range = block.range_of(frame.data).expect("a frame lies in the block it was read into");
            held.push_back(HeldFrame { block: block.clone(), range, copy: frame.data.to_vec() });
            if held.len() > FRAMES_HELD {
                held.pop_front().iter().for_each(HeldFrame::check);
            }
        }
        // Flows expire on packet time, once per second of it, as the pipeline does.
        if frame.ts.secs() != second {
            second = frame.ts.secs();
            engine.expire(frame.ts, &mut events);
        }
        // Every packet of the frame (several in an 802.11 aggregate).
        let mut decoded = Some(decoder.decode(&frame));
        while let Some(packet) = decoded {
            if let Decoded::Tcp(packet) = packet {
                engine.process(&packet, frame.ts, &mut events);
                // The README's memory bounds, after every packet.
                let stats = engine.stats();
                assert!(stats.active_flows <= limits.max_flows, "more flows than the limit");
                assert!(stats.buffered_bytes <= limits.max_buffered_total, "flows hold more than the budget");
            }
            decoded = decoder.decode_next(&frame);
        }
        encoders.encode_all(&events);
        events.clear();
    }
    engine.finish(&mut events);
    encoders.encode_all(&events);
    held.iter().for_each(HeldFrame::check);
}

/// Link types the decode harness picks from with the input's first byte (modulo their number):
/// every supported one, plus one it does not know. Those added later come after it, so that a
/// kept input whose first byte was below the number then keeps its link type.
pub const LINK_TYPES: [LinkType; 28] = [
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::LINUX_SLL2,
    LinkType::RAW_BSD12,
    LinkType::RAW_BSD14,
    LinkType::IEEE802_11,
    LinkType::IEEE802_11_RADIOTAP,
    LinkType::IEEE802_11_PRISM,
    LinkType::IEEE802_11_AVS,
    LinkType::PPI,
    LinkType(147),
    LinkType::PPP,
    LinkType::PPP_HDLC,
    LinkType::PPP_ETHER,
    LinkType::C_HDLC,
    LinkType::NFLOG,
    LinkType::PKTAP,
    LinkType::PFLOG,
    LinkType::ENC,
    LinkType::IPNET,
    LinkType::NETANALYZER,
    LinkType::NETANALYZER_TRANSPARENT,
    LinkType::ERF,
];

/// Frame decoding: byte 0 selects the link type ([`LINK_TYPES`]), then frames follow, each a
/// little-endian `u16` length and that many bytes (the last one takes what is left). One decoder
/// sees them all, so fragments can meet; its fragment pool is small so that limits are reached.
pub fn decode_frames(data: &[u8]) {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let link_type = LINK_TYPES.get(usize::from(selector) % LINK_TYPES.len()).copied().unwrap_or(LinkType::ETHERNET);
    let limits = DefragLimits { max_datagrams: 4, max_bytes: 4096, max_ranges: 8, timeout: Duration::from_secs(2) };
    let mut decoder = Decoder::with_defrag_limits(limits);
    let mut second = 0;
    while !rest.is_empty() {
        let (frame, tail) = take_record(rest);
        rest = tail;
        second += 1;
        let frame = Frame {
            ts: Timestamp::from_secs_nanos(1_700_000_000 + second, 0),
            link_type,
            orig_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
            data: frame,
        };
        // An aggregate's subframes each take at least their 14-byte header: the packets of a frame
        // are bounded by its length.
        let mut packets = 0;
        let mut decoded = Some(decoder.decode(&frame));
        while let Some(packet) = decoded {
            packets += 1;
            assert!(packets <= frame.data.len() / 14 + 1, "more packets than the frame can hold");
            if let Decoded::Tcp(packet) = packet {
                assert!(packet.payload.len() <= frame.data.len() || decoder.stats.fragments_reassembled > 0);
            }
            decoded = decoder.decode_next(&frame);
        }
    }
}

/// Splits a `u16`-length-prefixed record off the front; a short prefix or body takes what is left.
fn take_record(data: &[u8]) -> (&[u8], &[u8]) {
    let (len, body) = match data {
        [lo, hi, body @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), body),
        _ => return (data, &[]),
    };
    body.split_at(len.min(body.len()))
}

/// Encodes frames for [`decode_frames`]: the link type's index in [`LINK_TYPES`], then each frame
/// with its length.
pub fn encode_frames(link_type: LinkType, frames: &[&[u8]]) -> Vec<u8> {
    let selector = LINK_TYPES.iter().position(|known| *known == link_type).unwrap_or(0);
    let mut out = vec![u8::try_from(selector).unwrap_or(0)];
    for frame in frames {
        let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(frame.get(..usize::from(len)).unwrap_or(frame));
    }
    out
}

/// Reassembly limits small enough for a fuzzer to reach every overflow path.
pub const TIGHT_REASSEMBLY: ReassemblyLimits = ReassemblyLimits {
    max_buffered: 64,
    max_segments: 4,
    max_ahead: 512,
    max_ahead_unconfirmed: 128,
    compare_tail: 16,
};

/// TCP reassembly of one direction, checked against a model.
///
/// Input: byte 0 picks the limits (even: [`TIGHT_REASSEMBLY`], odd: the defaults), bytes 1–4 are
/// the initial sequence number (little-endian, so wraparound is reachable); then records of a
/// flag byte, a `u16` offset from that ISN and a `u8` length, followed by the payload. Flag bit 0
/// sends a SYN first, bit 1 flushes after the segment, bit 2 says the snap length cut `length`
/// more bytes off it ([`StreamReassembler::cut_off`]), bit 3 gives up the bytes up to `length`
/// past it ([`StreamReassembler::flush_before`]).
///
/// The model: the byte delivered at a stream offset is the first copy of that offset received
/// (segments the reassembler counted as dropped out of window do not count); gaps and data together advance the stream
/// exactly as far as [`StreamReassembler::next_seq`] says; the window and compare tail stay within
/// the limits.
pub fn reassembly(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let limits = if selector % 2 == 0 { TIGHT_REASSEMBLY } else { ReassemblyLimits::default() };
    let (isn, mut rest) = match rest {
        [a, b, c, d, tail @ ..] => (u32::from_le_bytes([*a, *b, *c, *d]), tail),
        _ => return,
    };
    let mut reassembler = StreamReassembler::new();
    let mut stats = ReassemblyStats::default();
    let mut model = FirstCopyModel::default();
    while let [flags, off_lo, off_hi, len, tail @ ..] = rest {
        let (payload, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        let seq = isn.wrapping_add(u32::from(u16::from_le_bytes([*off_lo, *off_hi])));
        if flags & 1 != 0 {
            reassembler.on_syn(isn.wrapping_sub(1));
        }
        let next_seq = reassembler.next_seq();
        let dropped_before = stats.dropped_out_of_window;
        let mut delivered = Vec::new();
        reassembler.on_segment(seq, payload, &limits, &mut stats, &mut |chunk| delivered.push(owned(chunk)));
        if stats.dropped_out_of_window == dropped_before {
            model.receive(next_seq, seq, payload);
        }
        let end = seq.wrapping_add(payload.len() as u32);
        if flags & 4 != 0 {
            // The snap length cut `len` more bytes off this segment.
            reassembler.cut_off(end, u32::from(*len), &limits, &mut stats, &mut |chunk| delivered.push(owned(chunk)));
        }
        if flags & 8 != 0 {
            // The other side acknowledged `len` bytes past this segment, and they are given up.
            let acknowledged = end.wrapping_add(u32::from(*len));
            reassembler.flush_before(acknowledged, &limits, &mut stats, &mut |chunk| delivered.push(owned(chunk)));
        }
        if flags & 2 != 0 {
            reassembler.flush(&mut stats, &mut |chunk| delivered.push(owned(chunk)));
        }
        model.check(&reassembler, &delivered, &limits);
    }
}

/// A delivered chunk, copied out of the reassembler for checking.
enum Delivered {
    Data(Vec<u8>),
    Gap(u64),
}

fn owned(chunk: StreamChunk<'_>) -> Delivered {
    match chunk {
        StreamChunk::Data(bytes) => Delivered::Data(bytes.to_vec()),
        StreamChunk::Gap(len) | StreamChunk::CutOff(len) => Delivered::Gap(len),
    }
}

/// What the reassembler must deliver: the first copy of each stream offset.
#[derive(Default)]
struct FirstCopyModel {
    /// Sequence number of stream offset 0, once known.
    origin: Option<u32>,
    /// Stream offset of the next byte to deliver.
    next_offset: u64,
    first_copy: HashMap<u64, u8>,
}

impl FirstCopyModel {
    /// Records the bytes of a segment the reassembler took (not dropped as too far ahead), given
    /// its next expected sequence number before the segment.
    fn receive(&mut self, next_seq: Option<u32>, seq: u32, payload: &[u8]) {
        // A lone NUL before any start is a keepalive probe, which starts no stream.
        if payload.is_empty() || (next_seq.is_none() && payload == [0]) {
            return;
        }
        let next_seq = next_seq.unwrap_or(seq);
        let ahead = seq::diff(seq, next_seq);
        // Gaps may come before any segment is taken (bytes given up before the first arrived).
        let origin = *self.origin.get_or_insert(next_seq.wrapping_sub(self.next_offset as u32));
        assert_eq!(origin.wrapping_add(self.next_offset as u32), next_seq, "model and reassembler disagree");
        for (index, byte) in payload.iter().enumerate() {
            let Some(offset) = (self.next_offset as i64).checked_add(ahead + index as i64) else { continue };
            if let Ok(offset) = u64::try_from(offset) {
                self.first_copy.entry(offset).or_insert(*byte);
            }
        }
    }

    fn check(&mut self, reassembler: &StreamReassembler, delivered: &[Delivered], limits: &ReassemblyLimits) {
        for chunk in delivered {
            match chunk {
                Delivered::Gap(len) => self.next_offset += len,
                Delivered::Data(bytes) => {
                    for byte in bytes {
                        let expected = self.first_copy.get(&self.next_offset);
                        assert_eq!(
                            expected,
                            Some(byte),
                            "byte at stream offset {} is not the first copy",
                            self.next_offset
                        );
                        self.next_offset += 1;
                    }
                }
            }
        }
        if let (Some(origin), Some(next_seq)) = (self.origin, reassembler.next_seq()) {
            assert_eq!(origin.wrapping_add(self.next_offset as u32), next_seq, "stream position diverged");
        }
        assert!(reassembler.buffered_bytes() <= limits.max_buffered, "window over its limit");
        assert!(reassembler.compare_tail_bytes() <= limits.compare_tail, "compare tail over its limit");
    }
}

/// Encodes segments for [`reassembly`] (tight limits): `(flags, offset from isn, payload)`.
pub fn encode_segments(isn: u32, segments: &[(u8, u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&isn.to_le_bytes());
    for (flags, offset, payload) in segments {
        let payload = payload.get(..255).unwrap_or(payload);
        out.push(*flags);
        out.extend_from_slice(&offset.to_le_bytes());
        out.push(u8::try_from(payload.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(payload);
    }
    out
}

/// The protocol a session harness starts with, through the port hint.
#[derive(Clone, Copy, Debug)]
pub enum SessionTarget {
    Pop3,
    Imap,
    Smtp,
    ManageSieve,
    /// An unconfigured port: the protocol comes from the server's greeting or, when the capture
    /// missed the server's SYN-ACK (inputs of odd length), from the client's first line; with
    /// the SYN-ACK in sight, a client talking first may be held for the greeting.
    AnyPort,
}

impl SessionTarget {
    pub fn server_port(self) -> u16 {
        match self {
            SessionTarget::Pop3 => 110,
            SessionTarget::Imap => 143,
            SessionTarget::Smtp => 587,
            SessionTarget::ManageSieve => 4190,
            SessionTarget::AnyPort => 40_000,
        }
    }

    fn server_opening_seen(self, data: &[u8]) -> bool {
        !matches!(self, SessionTarget::AnyPort) || data.len().is_multiple_of(2)
    }
}

/// Header byte of a session record announcing a gap rather than data.
const GAP_RECORD: u8 = 0xff;

/// A protocol session (client on the flow's low side, server on the high side) fed chunks in
/// either direction, then closed.
///
/// Input: records of one header byte, then data. Header `0xff` is a gap: the next byte's low bit
/// is the side, its second bit whether a snap length cut the bytes off (else they were lost),
/// its value the gap length. Otherwise bit 7 is the side (0: client, 1: server) and
/// bits 0–6 the chunk length (a short chunk takes what is left). A client chunk right after a
/// server record came in a segment that acknowledged every server byte (`Ctx::acked_all`), as a
/// client's answer to what the server said does.
pub fn session(target: SessionTarget, data: &[u8]) {
    let mut parts = CtxParts { config: small_proto_config(), ..CtxParts::default() };
    let mut session =
        Session::new(Side::Lo, true, target.server_opening_seen(data), target.server_port(), &parts.config);
    let mut rest = data;
    let mut tick = 0;
    let mut server_spoke_last = false;
    while let [header, tail @ ..] = rest {
        tick += 1;
        let mut ctx = parts.ctx(Timestamp::from_secs_nanos(1_700_000_000, tick));
        if *header == GAP_RECORD {
            let Some((&gap, tail)) = tail.split_first() else { break };
            let side = if gap & 1 == 0 { Side::Lo } else { Side::Hi };
            if gap & 2 == 0 {
                session.on_gap(side, u64::from(gap), &mut ctx);
            } else {
                session.on_cut_off(side, u64::from(gap), &mut ctx);
            }
            server_spoke_last = side == Side::Hi;
            rest = tail;
            continue;
        }
        let side = if header & 0x80 == 0 { Side::Lo } else { Side::Hi };
        let (chunk, tail) = tail.split_at(usize::from(header & 0x7f).min(tail.len()));
        ctx.acked_all = side == Side::Lo && server_spoke_last;
        server_spoke_last = side == Side::Hi;
        session.on_data(side, chunk, &mut ctx);
        rest = tail;
        assert!(session.buffered() <= parts.config.max_session_buffered(), "a session holds more than its bound");
    }
    session.close(&mut parts.ctx(Timestamp::from_secs_nanos(1_700_000_001, 0)));
}

/// Encodes a conversation for [`session`]: `(from_server, bytes)` in order, split into records.
pub fn encode_session(chunks: &[(bool, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (from_server, bytes) in chunks {
        for piece in bytes.chunks(0x7f) {
            let len = u8::try_from(piece.len()).unwrap_or(0x7f);
            out.push(if *from_server { 0x80 | len } else { len });
            out.extend_from_slice(piece);
        }
    }
    out
}

/// Protocol limits small enough for a fuzzer to reach their overflow paths.
pub fn small_proto_config() -> ProtoConfig {
    ProtoConfig {
        max_line: 512,
        inspection_depth: 64 * 1024,
        max_pending_commands: 4,
        max_literal: 256,
        ..ProtoConfig::default()
    }
}

/// Flow limits small enough for a fuzzer to reach eviction and the buffer budget.
pub fn small_flow_limits() -> FlowLimits {
    FlowLimits { max_flows: 8, max_buffered_total: 1024, reassembly: TIGHT_REASSEMBLY, ..FlowLimits::default() }
}
