//! One direction of a TCP connection turned into an ordered byte stream, within a fixed memory
//! budget.
//!
//! # Model
//!
//! Every byte of the direction gets a *stream offset*. Offset 0 is the byte after the SYN
//! ([`StreamReassembler::on_syn`]), or the byte the caller names with
//! [`StreamReassembler::start_at`], or, for a flow picked up mid-stream, the first byte of the
//! first segment *with payload* that arrives. Sequence numbers wrap at 2^32; offsets are `u64`
//! and do not, so a segment is placed once with [`seq::diff`] against the next expected sequence
//! number and everything after that is plain integer comparison.
//!
//! ```text
//!   delivered (gone)           │ window: out-of-order bytes waiting for a hole to fill
//!   ───────────┬───────────────┼──────────┬─────┬────────┬───────────┐
//!              │ tail (recent) │   hole   │ run │  hole  │    run    │
//!   ───────────┴───────────────┼──────────┴─────┴────────┴───────────┘
//!                         next_offset                      next_offset + window.len()
//! ```
//!
//! Contiguous bytes are delivered at once, without waiting for ACKs. When nothing is buffered,
//! an in-order segment is handed on straight from the caller's slice (no copy, no allocation);
//! an in-order segment that fills a hole is handed on from the caller's slice up to the next
//! run, then the run from the window.
//!
//! # Invariants (between calls)
//!
//! 1. `window` holds the offsets `[next_offset, next_offset + window.len())`. Bytes inside holes
//!    are zero placeholders and are never delivered.
//! 2. `runs` lists the present byte ranges of the window: sorted, disjoint and never adjacent
//!    (touching runs are merged), and the first starts strictly after `next_offset` (bytes at
//!    `next_offset` would be contiguous, hence already delivered). So each run has exactly one
//!    hole before it and `runs.len()` is the number of holes.
//! 3. `window.len()` is the end of the last run minus `next_offset`, and 0 (with the allocation
//!    released) when there is no run.
//! 4. After `on_segment`, `window.len() <= max_buffered` and `runs.len() <= max_segments` for the
//!    limits of that call. The window's allocation never exceeds `max_buffered` either: it grows
//!    geometrically but capped at the limit.
//! 5. `tail` holds the last delivered bytes, offsets `[next_offset - tail.len(), next_offset)`,
//!    at most `compare_tail` of them. It is cleared at every gap: bytes before a gap do not end
//!    at `next_offset`.
//! 6. First copy wins: a byte, once delivered or buffered, is never replaced.
//!
//! # Policies
//!
//! * **Overlaps.** Each segment is compared, before anything changes, with the bytes still held:
//!   the buffered runs and the delivered tail. A segment whose overlapping bytes differ counts
//!   once in `overlaps_differing`, whatever the number of differing bytes. Delivered bytes older
//!   than the tail are not compared. A segment that brings no new byte (all of it delivered or
//!   buffered already) counts in `retransmissions`.
//! * **Forced gaps.** When storing an out-of-order segment would make the window longer than
//!   `max_buffered` (holes included: they occupy the window) or need more than `max_segments`
//!   runs, the first hole is given up: a [`StreamChunk::Gap`] of its length, then the run behind
//!   it is delivered. This repeats until the segment fits or has become in order. If the segment
//!   itself starts inside the first hole, only the part of the hole before it is given up. A
//!   segment longer than the whole budget therefore ends up delivered directly, never stored.
//! * **Too far ahead.** A segment starting more than `max_ahead` bytes after the next expected
//!   byte is dropped and its bytes counted in `dropped_out_of_window`: it is much more likely
//!   garbage, an injected packet or another connection's epoch than a real hole that large, and
//!   skipping to it would blind the stream. The cost: a genuine capture loss of more than
//!   `max_ahead` bytes stalls the direction (every later segment is dropped too).
//! * **Far ahead, unconfirmed.** A segment starting more than `max_ahead_unconfirmed` bytes
//!   ahead (but within `max_ahead`) would force a gap longer than the reorder window: one
//!   injected segment could make the stream skip over a login still to come. Such a segment is
//!   dropped (counted in `dropped_out_of_window`) until [`FAR_SEGMENTS_TO_CONFIRM`] of them came
//!   in a row with nothing nearer in between: by then the hole is more likely a genuine capture
//!   loss, and the next one is accepted (forcing the gap). The cost of a genuine loss: those few
//!   segments.
//! * **Before the start.** Bytes before offset 0 are cut off; a segment wholly before it is
//!   ignored and counted in `before_start` (mid-stream, these are retransmissions of bytes we
//!   never saw).
//! * **Secrets.** Buffered bytes and the tail are copies of the payload (credentials included);
//!   they are not zeroized. `Debug` prints lengths and offsets, never bytes.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;

use super::seq;

/// Limits for one direction's reassembly.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyLimits {
    /// Length of the reorder window: bytes held above the first hole, the holes between runs
    /// included. When exceeded, the first hole is declared a gap and delivery skips ahead.
    pub max_buffered: usize,
    /// Distinct holes (equivalently, stored runs) tracked at once; one more also forces a skip
    /// ahead.
    pub max_segments: usize,
    /// How far after the next expected byte a segment may start and still be considered, in
    /// bytes; further ahead it is dropped. Values of 2^31 or more disable the check (sequence
    /// distances are only meaningful below 2^31).
    pub max_ahead: u32,
    /// How far ahead a segment may start and be accepted at once; further (up to `max_ahead`)
    /// it needs confirming by more segments as far ahead (see the module documentation).
    pub max_ahead_unconfirmed: u32,
    /// Recently delivered bytes kept to compare retransmissions against; 0 keeps none.
    pub compare_tail: usize,
}

/// Consecutive segments far ahead of the stream (past `max_ahead_unconfirmed`) dropped before the
/// next one is taken as proof of a genuine loss.
pub const FAR_SEGMENTS_TO_CONFIRM: u32 = 8;

/// First allocation of a compare tail (less when `compare_tail` is less): the lines of a mail
/// login, both ways, mostly fit.
const FIRST_TAIL_CAPACITY: usize = 256;

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_buffered: 64 * 1024,
            max_segments: 64,
            max_ahead: 1 << 20,
            max_ahead_unconfirmed: 64 * 1024,
            compare_tail: 2 * 1024,
        }
    }
}

/// Counters of what reassembly saw and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Segments with payload handed in (empty segments are not counted).
    pub segments: u64,
    pub bytes_delivered: u64,
    /// Segments wholly inside data already delivered or buffered (retransmissions).
    pub retransmissions: u64,
    /// Segments overlapping held bytes (buffered, or delivered and still in the compare tail)
    /// with different content; the first copy is kept. An evasion signal.
    pub overlaps_differing: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes dropped because they lay too far ahead of the stream (outside any sane window).
    pub dropped_out_of_window: u64,
    /// Segments lying wholly before the stream's first byte, ignored.
    pub before_start: u64,
}

/// What a reassembler delivers: in-order bytes, or notice that bytes were lost.
pub enum StreamChunk<'a> {
    Data(&'a [u8]),
    Gap(u64),
    /// Bytes the capture's snap length cut off the end of the segment whose captured bytes came
    /// last: the next bytes are the next segment's.
    CutOff(u64),
}

/// Prints the length of data, never its content.
impl fmt::Debug for StreamChunk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamChunk::Data(bytes) => f.debug_struct("Data").field("len", &bytes.len()).finish(),
            StreamChunk::Gap(len) => f.debug_tuple("Gap").field(len).finish(),
            StreamChunk::CutOff(len) => f.debug_tuple("CutOff").field(len).finish(),
        }
    }
}

/// A present byte range of the window, in stream offsets, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    start: u64,
    end: u64,
}

/// Per-direction reassembler. See the module documentation for the model and its invariants.
#[derive(Default)]
pub struct StreamReassembler {
    /// Sequence number of stream offset 0; `None` until the stream starts.
    origin: Option<u32>,
    /// `origin` was read from the peer's acknowledgement, not from a SYN, and no byte came yet
    /// (see [`starts_by`](Self::starts_by)).
    origin_tentative: bool,
    /// Stream offset of the next byte to deliver: bytes delivered plus bytes given up as gaps.
    next_offset: u64,
    /// Reorder window starting at `next_offset` (invariants 1, 3, 4).
    window: VecDeque<u8>,
    /// Present ranges of the window (invariant 2).
    runs: Vec<Run>,
    /// Last delivered bytes, to compare retransmissions against (invariant 5).
    tail: VecDeque<u8>,
    /// Segments dropped in a row for starting past `max_ahead_unconfirmed`.
    far_in_a_row: u32,
}

/// Shows positions and sizes only: the bytes may hold credentials.
impl fmt::Debug for StreamReassembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReassembler")
            .field("origin", &self.origin)
            .field("origin_tentative", &self.origin_tentative)
            .field("next_offset", &self.next_offset)
            .field("window_len", &self.window.len())
            .field("runs", &self.runs)
            .field("tail_len", &self.tail.len())
            .field("far_in_a_row", &self.far_in_a_row)
            .finish()
    }
}

/// How a segment relates to the bytes already held.
struct Overlap {
    /// Some overlapping byte differs from the copy held.
    differs: bool,
    /// At least one byte is neither delivered nor buffered yet.
    brings_new_bytes: bool,
}

impl StreamReassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream starts after this SYN's sequence number. Ignored once the stream has started
    /// (a retransmitted SYN, or one reordered behind data); a new connection on the same
    /// addresses needs a new reassembler.
    pub fn on_syn(&mut self, seq: u32) {
        if self.origin_tentative && self.is_untouched() {
            self.origin = None;
            self.origin_tentative = false;
        }
        self.start_at(seq.wrapping_add(1));
    }

    /// The stream's first byte has sequence number `seq`: for when no SYN will be seen but the
    /// start is known otherwise (for instance from the peer's acknowledgement number). Ignored
    /// once the stream has started.
    pub fn start_at(&mut self, seq: u32) {
        if self.origin.is_none() {
            self.origin = Some(seq);
        }
    }

    /// The peer acknowledged the stream up to `seq` before any byte of it was captured (a flow
    /// picked up without its handshake): the stream starts there for now, so that what the peer
    /// acknowledged past it waits for those bytes and a first segment captured after later ones
    /// (a line sent in segments that the capture reordered) leaves a hole to fill. Tentatively:
    /// a first segment starting before it (bytes the peer had, their segments captured after its
    /// acknowledgement, as when the directions of a tap are merged out of order) or too far past
    /// it to be taken at once starts the stream itself, and so does a SYN. Ignored once the
    /// stream has started.
    pub fn starts_by(&mut self, seq: u32) {
        if self.origin.is_none() {
            self.origin = Some(seq);
            self.origin_tentative = true;
        }
    }

    /// Whether the stream has a start but neither delivered nor holds a byte.
    pub fn is_untouched(&self) -> bool {
        self.next_offset == 0 && self.buffered_bytes() == 0
    }

    /// Forgets a start that no byte followed (see [`is_untouched`](Self::is_untouched)), so that
    /// the stream starts again at its first segment, or not at all; ignored otherwise.
    pub fn forget_start(&mut self) {
        if self.is_untouched() {
            self.origin = None;
            self.origin_tentative = false;
        }
    }

    /// Sequence number of the stream's first byte, once the stream has started.
    pub fn first_seq(&self) -> Option<u32> {
        self.origin
    }

    /// Sequence number of the next byte to deliver, once the stream has started.
    pub fn next_seq(&self) -> Option<u32> {
        // Truncation is the point: sequence numbers are offsets modulo 2^32.
        self.origin.map(|origin| origin.wrapping_add(self.next_offset as u32))
    }

    /// Sequence number of the first byte held behind a hole, if any: where the bytes delivered
    /// after the hole's gap start.
    pub fn first_held_seq(&self) -> Option<u32> {
        let run = self.runs.first()?;
        // Truncation is the point, as in `next_seq`.
        Some(self.origin?.wrapping_add(run.start as u32))
    }

    /// Adds a segment and delivers every byte that became contiguous, in order. Without a
    /// prior `on_syn`/`start_at`, the first segment with payload starts the stream at its own
    /// sequence number, or where the peer had acknowledged it (see [`starts_by`](Self::starts_by)).
    /// Inlined: the flow table's step calls it for nearly every data packet.
    #[inline(always)]
    pub fn on_segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        limits: &ReassemblyLimits,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        if payload.is_empty() {
            return;
        }
        stats.segments += 1;
        let origin = match self.origin {
            Some(origin) => origin,
            // A stream picked up midway whose first segment is a lone NUL: a keepalive probe (see
            // below) from a side that sat idle, not its first byte (mail protocols are text). The
            // stream starts at the next segment, which follows it.
            None if payload == [0] => {
                stats.retransmissions += 1;
                return;
            }
            None => *self.origin.insert(seq),
        };
        let next_seq = origin.wrapping_add(self.next_offset as u32);
        let mut ahead = seq::diff(seq, next_seq);
        if ahead == -1 && payload.len() == 1 {
            // A keepalive probe (RFC 9293 §3.8.4): the byte before the next, which BSD and
            // Windows stacks fill with garbage rather than the byte they sent. Not an overlap.
            stats.retransmissions += 1;
            return;
        }
        if std::mem::take(&mut self.origin_tentative) && !(0..=i64::from(limits.max_ahead_unconfirmed)).contains(&ahead)
        {
            // The first segment is not where the peer's acknowledgement placed the start, nor a
            // hole of reordered bytes after it: it starts the stream (see `starts_by`).
            self.origin = Some(seq);
            ahead = 0;
        }
        if ahead > i64::from(limits.max_ahead) {
            stats.dropped_out_of_window += len_u64(payload.len());
            return;
        }
        if ahead > i64::from(limits.max_ahead_unconfirmed) && self.far_in_a_row < FAR_SEGMENTS_TO_CONFIRM {
            self.far_in_a_row += 1;
            stats.dropped_out_of_window += len_u64(payload.len());
            return;
        }
        self.far_in_a_row = 0;
        let Some((start, payload)) = self.place(ahead, payload) else {
            stats.before_start += 1;
            return;
        };
        let overlap = self.compare_with_held(start, payload);
        if overlap.differs {
            stats.overlaps_differing += 1;
        }
        if !overlap.brings_new_bytes {
            stats.retransmissions += 1;
            return;
        }
        self.insert(start, payload, limits, stats, deliver);
    }

    /// The `missing` bytes from `seq` were on the wire but the capture's snap length cut them off:
    /// when the stream has delivered up to `seq`, they are given up now, as a gap, instead of
    /// holding back every later byte until the hole is given up at a limit or at close.
    pub fn cut_off(
        &mut self,
        seq: u32,
        missing: u32,
        limits: &ReassemblyLimits,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        if missing > 0 && self.next_seq() == Some(seq) {
            let limit = self.next_offset.saturating_add(u64::from(missing));
            self.give_up_first_hole(limit, limits.compare_tail, true, stats, deliver);
        }
    }

    /// Gives up waiting for the bytes before sequence number `seq`, which the other side
    /// acknowledged (so they were sent): what is buffered before it is delivered, the holes
    /// before it become gaps. Nothing happens for a `seq` behind the stream or further ahead than
    /// `max_ahead`.
    pub fn flush_before(
        &mut self,
        seq: u32,
        limits: &ReassemblyLimits,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        let Some(next) = self.next_seq() else { return };
        let ahead = seq::diff(seq, next);
        if ahead <= 0 || ahead > i64::from(limits.max_ahead) {
            return;
        }
        let limit = self.next_offset.saturating_add(ahead.unsigned_abs());
        while self.next_offset < limit {
            self.give_up_first_hole(limit, limits.compare_tail, false, stats, deliver);
        }
    }

    /// Delivers whatever is still buffered (with gaps for the holes), at close. No gap is
    /// reported after the last buffered byte: nothing says more was sent.
    pub fn flush(&mut self, stats: &mut ReassemblyStats, deliver: &mut dyn FnMut(StreamChunk<'_>)) {
        while !self.runs.is_empty() {
            self.give_up_first_hole(u64::MAX, 0, false, stats, deliver);
        }
    }

    /// Length of the reorder window: buffered bytes plus the holes between them, i.e. the
    /// memory the window occupies (its allocation is at most `max_buffered` and is released
    /// when the window empties). The compare tail is counted apart, in
    /// [`compare_tail_bytes`](Self::compare_tail_bytes).
    pub fn buffered_bytes(&self) -> usize {
        self.window.len()
    }

    /// Delivered bytes kept for comparison with retransmissions (at most `compare_tail`).
    pub fn compare_tail_bytes(&self) -> usize {
        self.tail.len()
    }

    /// Frees the compare tail under memory pressure: retransmissions of the bytes it held can no
    /// longer be compared (invariant 5 holds: an empty tail is a valid tail).
    pub fn release_compare_tail(&mut self) {
        self.tail = VecDeque::new();
    }

    /// Stream offset of the segment's first byte, given its distance `ahead` of the next
    /// expected byte, with any bytes before the stream start cut off; `None` when the whole
    /// segment lies before the start.
    fn place<'p>(&self, ahead: i64, payload: &'p [u8]) -> Option<(u64, &'p [u8])> {
        let distance = ahead.unsigned_abs();
        if ahead >= 0 {
            return Some((self.next_offset.saturating_add(distance), payload));
        }
        match self.next_offset.checked_sub(distance) {
            Some(start) => Some((start, payload)),
            None => {
                let before_start = to_usize(distance - self.next_offset);
                let rest = payload.get(before_start..).unwrap_or_default();
                (!rest.is_empty()).then_some((0, rest))
            }
        }
    }

    /// Compares the segment `start..` with the bytes still held (delivered tail and buffered
    /// runs), before anything changes.
    fn compare_with_held(&self, start: u64, payload: &[u8]) -> Overlap {
        let end = start.saturating_add(len_u64(payload.len()));
        let tail_start = self.next_offset.saturating_sub(len_u64(self.tail.len()));
        let delivered_overlap = start.max(tail_start)..end.min(self.next_offset);
        let mut differs = !same_bytes(&self.tail, tail_start, payload, start, delivered_overlap);
        let mut held = end.min(self.next_offset).saturating_sub(start);
        for run in self.runs.iter().filter(|run| run.start < end && run.end > start) {
            let overlap = start.max(run.start)..end.min(run.end);
            held += overlap.end - overlap.start;
            differs |= !same_bytes(&self.window, self.next_offset, payload, start, overlap);
        }
        Overlap { differs, brings_new_bytes: held < len_u64(payload.len()) }
    }

    /// Delivers or stores the new bytes of a segment already compared with what is held, forcing
    /// gaps until it fits within the limits. Inlined into [`on_segment`](Self::on_segment), for the
    /// same reason.
    #[inline(always)]
    fn insert(
        &mut self,
        mut start: u64,
        mut payload: &[u8],
        limits: &ReassemblyLimits,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        loop {
            // Bytes now behind the delivery point were compared already; the first copy won.
            if start < self.next_offset {
                payload = payload.get(to_usize(self.next_offset - start)..).unwrap_or_default();
                start = self.next_offset;
            }
            if payload.is_empty() {
                return;
            }
            if start == self.next_offset {
                // In order: hand on straight from the segment, up to the next buffered run.
                let until_run = self.runs.first().map_or(usize::MAX, |run| to_usize(run.start - start));
                let (now, rest) = payload.split_at(until_run.min(payload.len()));
                self.discard_front(now.len());
                emit(&mut self.tail, limits.compare_tail, stats, deliver, now);
                self.next_offset += len_u64(now.len());
                self.deliver_ready(limits.compare_tail, stats, deliver);
                start += len_u64(now.len());
                payload = rest;
                continue;
            }
            let end = start.saturating_add(len_u64(payload.len()));
            if self.fits(start, end, limits) {
                self.store(start, payload, limits);
                return;
            }
            self.give_up_first_hole(start, limits.compare_tail, false, stats, deliver);
        }
    }

    /// Whether storing `start..end` (out of order) keeps the window within the limits.
    fn fits(&self, start: u64, end: u64, limits: &ReassemblyLimits) -> bool {
        let (first, after) = self.touching_runs(start, end);
        let runs_after = self.runs.len() + 1 - (after - first);
        let window_end = self.runs.last().map_or(end, |run| run.end.max(end));
        runs_after <= limits.max_segments && window_end - self.next_offset <= len_u64(limits.max_buffered)
    }

    /// Index range of the runs overlapping or adjacent to `start..end`: those a stored segment
    /// merges with. `first <= after` already holds (runs are sorted and disjoint); the `max`
    /// keeps the later `drain(first..after)` panic-free whatever happens.
    fn touching_runs(&self, start: u64, end: u64) -> (usize, usize) {
        let first = self.runs.partition_point(|run| run.end < start);
        let after = self.runs.partition_point(|run| run.start <= end);
        (first, after.max(first))
    }

    /// Writes the not-yet-held bytes of an out-of-order segment into the window and merges its
    /// range into the runs. The caller checked [`fits`](Self::fits).
    fn store(&mut self, start: u64, payload: &[u8], limits: &ReassemblyLimits) {
        let end = start.saturating_add(len_u64(payload.len()));
        let needed = to_usize(end - self.next_offset);
        if needed > self.window.len() {
            if needed > self.window.capacity() {
                let target = self.window.capacity().saturating_mul(2).min(limits.max_buffered).max(needed);
                self.window.reserve_exact(target - self.window.len());
            }
            self.window.resize(needed, 0);
        }

        let (first, after) = self.touching_runs(start, end);
        let touching = self.runs.get(first..after).unwrap_or_default();
        let mut cursor = start;
        for run in touching {
            if run.start > cursor {
                write_hole(&mut self.window, self.next_offset, cursor..run.start, start, payload);
            }
            cursor = cursor.max(run.end);
        }
        if cursor < end {
            write_hole(&mut self.window, self.next_offset, cursor..end, start, payload);
        }

        let merged = Run {
            start: touching.first().map_or(start, |run| run.start.min(start)),
            end: touching.last().map_or(end, |run| run.end.max(end)),
        };
        self.runs.drain(first..after);
        self.runs.insert(first, merged);
    }

    /// Gives up the first hole: a gap up to the first run, or up to `limit` if that comes
    /// first (`cut_off`: the snap length's cut), then delivers the run if it became contiguous.
    fn give_up_first_hole(
        &mut self,
        limit: u64,
        tail_cap: usize,
        cut_off: bool,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        let hole_end = self.runs.first().map_or(limit, |run| run.start.min(limit));
        let len = hole_end.saturating_sub(self.next_offset);
        self.discard_front(to_usize(len));
        self.next_offset = hole_end.max(self.next_offset);
        self.tail.clear();
        stats.gaps += 1;
        stats.gap_bytes += len;
        deliver(if cut_off { StreamChunk::CutOff(len) } else { StreamChunk::Gap(len) });
        self.deliver_ready(tail_cap, stats, deliver);
    }

    /// Delivers the first run if it starts at `next_offset`, restoring invariant 2.
    fn deliver_ready(
        &mut self,
        tail_cap: usize,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        let Some(&run) = self.runs.first() else {
            return;
        };
        if run.start != self.next_offset {
            return;
        }
        self.runs.remove(0);
        let len = to_usize(run.end - run.start);
        let (front, back) = deque_range(&self.window, 0..len);
        emit(&mut self.tail, tail_cap, stats, deliver, front);
        emit(&mut self.tail, tail_cap, stats, deliver, back);
        self.discard_front(len);
        self.next_offset = run.end;
    }

    /// Drops `len` bytes (delivered or given up) from the front of the window, releasing its
    /// allocation once it is empty (invariant 3).
    fn discard_front(&mut self, len: usize) {
        let len = len.min(self.window.len());
        self.window.drain(..len);
        if self.window.is_empty() {
            self.window = VecDeque::new();
        }
    }
}

/// Delivers one chunk of contiguous bytes and remembers its end in the compare tail.
fn emit(
    tail: &mut VecDeque<u8>,
    tail_cap: usize,
    stats: &mut ReassemblyStats,
    deliver: &mut dyn FnMut(StreamChunk<'_>),
    bytes: &[u8],
) {
    if bytes.is_empty() {
        return;
    }
    stats.bytes_delivered += len_u64(bytes.len());
    deliver(StreamChunk::Data(bytes));
    remember(tail, tail_cap, bytes);
}

/// Appends delivered bytes to the tail, keeping at most `cap` of the most recent ones. The
/// tail's allocation starts at [`FIRST_TAIL_CAPACITY`] and grows by doubling up to exactly
/// `cap`: a mail login delivers a few hundred bytes, and allocating the whole tail at once made it
/// most of a live flow's memory, while growing from the first chunk's size took a reallocation
/// for every few lines (a fifth of all allocations on mail traffic).
fn remember(tail: &mut VecDeque<u8>, cap: usize, bytes: &[u8]) {
    if cap == 0 {
        *tail = VecDeque::new();
        return;
    }
    let kept = bytes.get(bytes.len().saturating_sub(cap)..).unwrap_or_default();
    let overflow = (tail.len() + kept.len()).saturating_sub(cap);
    tail.drain(..overflow.min(tail.len()));
    let needed = tail.len() + kept.len();
    if needed > tail.capacity() {
        let target = tail.capacity().saturating_mul(2).max(needed).max(FIRST_TAIL_CAPACITY).min(cap);
        tail.reserve_exact(target.saturating_sub(tail.len()));
    }
    tail.extend(kept);
}

/// Copies the part `hole` (stream offsets) of the segment starting at `start` into the window,
/// which starts at `window_start`.
fn write_hole(window: &mut VecDeque<u8>, window_start: u64, hole: Range<u64>, start: u64, payload: &[u8]) {
    let source = payload.get(to_usize(hole.start - start)..to_usize(hole.end - start)).unwrap_or_default();
    let at = to_usize(hole.start - window_start);
    let (front, back) = window.as_mut_slices();
    let front_len = front.len();
    let destination = front.iter_mut().skip(at).chain(back.iter_mut().skip(at.saturating_sub(front_len)));
    for (to, from) in destination.zip(source) {
        *to = *from;
    }
}

/// Whether the bytes of `overlap` (stream offsets) are the same in `held`, which starts at
/// offset `held_start`, and in `payload`, which starts at `payload_start`. An empty overlap
/// matches.
fn same_bytes(held: &VecDeque<u8>, held_start: u64, payload: &[u8], payload_start: u64, overlap: Range<u64>) -> bool {
    if overlap.start >= overlap.end {
        return true;
    }
    let theirs =
        payload.get(to_usize(overlap.start - payload_start)..to_usize(overlap.end - payload_start)).unwrap_or_default();
    let (front, back) = deque_range(held, to_usize(overlap.start - held_start)..to_usize(overlap.end - held_start));
    match theirs.split_at_checked(front.len()) {
        Some((first, second)) => first == front && second == back,
        None => false,
    }
}

/// The bytes of `range` (indices into the deque) as the two slices the ring stores them in;
/// parts out of bounds are left out.
fn deque_range(deque: &VecDeque<u8>, range: Range<usize>) -> (&[u8], &[u8]) {
    let (front, back) = deque.as_slices();
    let split = front.len();
    let front_part = front.get(range.start.min(split)..range.end.min(split));
    let back_part = back.get(range.start.saturating_sub(split)..range.end.saturating_sub(split));
    (front_part.unwrap_or_default(), back_part.unwrap_or_default())
}

/// Lengths as stream-offset distances (lossless on every supported target).
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Offsets within the window or a segment fit in `usize`; saturate rather than wrap otherwise.
fn to_usize(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// A delivered chunk, owned; consecutive `Data` chunks are merged so that tests do not depend
    /// on how the ring buffer happens to split its bytes.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Out {
        Data(Vec<u8>),
        Gap(u64),
    }

    fn data(bytes: &[u8]) -> Out {
        Out::Data(bytes.to_vec())
    }

    fn record(out: &mut Vec<Out>, chunk: StreamChunk<'_>) {
        match chunk {
            StreamChunk::Data(bytes) => {
                assert!(!bytes.is_empty(), "empty Data chunk delivered");
                match out.last_mut() {
                    Some(Out::Data(last)) => last.extend_from_slice(bytes),
                    _ => out.push(Out::Data(bytes.to_vec())),
                }
            }
            StreamChunk::Gap(len) | StreamChunk::CutOff(len) => {
                assert!(len > 0, "empty Gap delivered");
                out.push(Out::Gap(len));
            }
        }
    }

    #[test]
    fn compare_tail_grows_with_what_was_delivered_up_to_its_cap() {
        let limits = ReassemblyLimits::default();
        let mut stats = ReassemblyStats::default();
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let mut seq = 1u32;
        let mut send = |r: &mut StreamReassembler, len: usize| {
            r.on_segment(seq, &vec![b'a'; len], &limits, &mut stats, &mut |_| {});
            seq = seq.wrapping_add(len as u32);
        };
        send(&mut r, 40);
        assert_eq!(r.tail.capacity(), FIRST_TAIL_CAPACITY, "a short login keeps a short tail");
        let mut capacities = vec![r.tail.capacity()];
        for _ in 0..100 {
            send(&mut r, 70);
            if capacities.last() != Some(&r.tail.capacity()) {
                capacities.push(r.tail.capacity());
            }
        }
        assert_eq!(capacities, [256, 512, 1024, 2048], "one allocation per doubling, up to the cap");
        assert_eq!(r.compare_tail_bytes(), limits.compare_tail);
    }

    #[test]
    fn a_compare_tail_smaller_than_the_first_allocation_is_allocated_exactly() {
        let limits = ReassemblyLimits { compare_tail: 100, ..ReassemblyLimits::default() };
        let mut stats = ReassemblyStats::default();
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        r.on_segment(1, &[b'a'; 40], &limits, &mut stats, &mut |_| {});
        r.on_segment(41, &[b'b'; 90], &limits, &mut stats, &mut |_| {});
        assert_eq!((r.compare_tail_bytes(), r.tail.capacity()), (100, 100));
    }

    struct Harness {
        reassembler: StreamReassembler,
        limits: ReassemblyLimits,
        stats: ReassemblyStats,
        out: Vec<Out>,
    }

    impl Harness {
        fn new(limits: ReassemblyLimits) -> Self {
            Harness {
                reassembler: StreamReassembler::new(),
                limits,
                stats: ReassemblyStats::default(),
                out: Vec::new(),
            }
        }

        fn seg(&mut self, seq: u32, bytes: &[u8]) {
            let out = &mut self.out;
            self.reassembler.on_segment(seq, bytes, &self.limits, &mut self.stats, &mut |chunk| record(out, chunk));
            check_invariants(&self.reassembler, &self.limits);
        }

        fn flush(&mut self) {
            let out = &mut self.out;
            self.reassembler.flush(&mut self.stats, &mut |chunk| record(out, chunk));
            check_invariants(&self.reassembler, &self.limits);
        }

        fn take(&mut self) -> Vec<Out> {
            std::mem::take(&mut self.out)
        }
    }

    /// The module's invariants 1–5, checked after every call in every test.
    fn check_invariants(r: &StreamReassembler, limits: &ReassemblyLimits) {
        for pair in r.runs.windows(2) {
            assert!(pair[0].end < pair[1].start, "runs overlap or touch: {:?}", r.runs);
        }
        for run in &r.runs {
            assert!(run.start < run.end, "empty run: {:?}", r.runs);
        }
        match (r.runs.first(), r.runs.last()) {
            (Some(first), Some(last)) => {
                assert!(first.start > r.next_offset, "deliverable run left: {r:?}");
                assert_eq!(r.window.len() as u64, last.end - r.next_offset, "{r:?}");
            }
            _ => {
                assert_eq!(r.window.len(), 0);
                assert_eq!(r.window.capacity(), 0, "empty window keeps its allocation");
            }
        }
        assert!(r.buffered_bytes() <= limits.max_buffered, "{r:?}");
        assert!(r.window.capacity() <= limits.max_buffered, "{r:?}");
        assert!(r.runs.len() <= limits.max_segments, "{r:?}");
        assert!(r.tail.len() <= limits.compare_tail, "{r:?}");
        assert!(r.tail.len() as u64 <= r.next_offset, "{r:?}");
    }

    const ISN: u32 = 1000;

    /// Sequence number of stream offset `offset` after a SYN at `ISN`.
    fn at(offset: u32) -> u32 {
        ISN.wrapping_add(1).wrapping_add(offset)
    }

    fn started(limits: ReassemblyLimits) -> Harness {
        let mut h = Harness::new(limits);
        h.reassembler.on_syn(ISN);
        h
    }

    #[test]
    fn in_order_segments_are_delivered_at_once() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(0), b"hello ");
        assert_eq!(h.take(), [data(b"hello ")]);
        h.seg(at(6), b"world");
        assert_eq!(h.take(), [data(b"world")]);
        assert_eq!(h.stats, ReassemblyStats { segments: 2, bytes_delivered: 11, ..Default::default() });
        assert_eq!(h.reassembler.buffered_bytes(), 0);
        assert_eq!(h.reassembler.next_seq(), Some(at(11)));
    }

    #[test]
    fn in_order_data_is_borrowed_from_the_segment() {
        let mut r = StreamReassembler::new();
        r.on_syn(ISN);
        let limits = ReassemblyLimits::default();
        let mut stats = ReassemblyStats::default();
        let payload = b"USER alice\r\n".to_vec();
        let mut seen = Vec::new();
        r.on_segment(at(0), &payload, &limits, &mut stats, &mut |chunk| {
            if let StreamChunk::Data(bytes) = chunk {
                seen.push((bytes.as_ptr(), bytes.len()));
            }
        });
        assert_eq!(seen, [(payload.as_ptr(), payload.len())]);

        // Filling a hole: the filling bytes come from the segment, the run after from the window.
        r.on_segment(at(17), b"more", &limits, &mut stats, &mut |_| panic!("out of order"));
        let filler = b"PASS ".to_vec();
        seen.clear();
        r.on_segment(at(12), &filler, &limits, &mut stats, &mut |chunk| {
            if let StreamChunk::Data(bytes) = chunk {
                seen.push((bytes.as_ptr(), bytes.len()));
            }
        });
        assert_eq!(seen.first(), Some(&(filler.as_ptr(), filler.len())));
        assert_eq!(seen.iter().map(|&(_, len)| len).sum::<usize>(), 9);
    }

    #[test]
    fn one_byte_segments() {
        let mut h = started(ReassemblyLimits::default());
        let text = b"USER alice\r\n";
        for (offset, byte) in (0u32..).zip(text) {
            h.seg(at(offset), std::slice::from_ref(byte));
        }
        assert_eq!(h.take(), [data(text)]);
        assert_eq!(h.stats.segments, 12);
        assert_eq!(h.stats.bytes_delivered, 12);
    }

    #[test]
    fn out_of_order_segments_wait_for_the_hole() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(5), b"fghij");
        assert_eq!(h.take(), []);
        assert_eq!(h.reassembler.buffered_bytes(), 10, "hole of 5 plus 5 bytes");
        h.seg(at(10), b"klm");
        assert_eq!(h.take(), []);
        assert_eq!(h.reassembler.buffered_bytes(), 13);
        h.seg(at(0), b"abcde");
        assert_eq!(h.take(), [data(b"abcdefghijklm")]);
        assert_eq!(h.reassembler.buffered_bytes(), 0);
        assert_eq!(h.stats.gaps, 0);
    }

    #[test]
    fn reversed_segments() {
        let mut h = started(ReassemblyLimits::default());
        let text = b"The quick brown fox jumps over the lazy dog";
        let pieces: Vec<(u32, &[u8])> = (0u32..).step_by(4).zip(text.chunks(4)).collect();
        for &(offset, piece) in pieces.iter().rev() {
            h.seg(at(offset), piece);
        }
        assert_eq!(h.take(), [data(text)]);
        assert_eq!(h.stats.retransmissions, 0);
        assert_eq!(h.reassembler.buffered_bytes(), 0);
    }

    #[test]
    fn duplicates_are_counted_as_retransmissions() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(0), b"abc");
        h.seg(at(0), b"abc");
        h.seg(at(5), b"xyz");
        h.seg(at(5), b"xyz");
        h.seg(at(6), b"y");
        assert_eq!(h.stats.retransmissions, 3);
        h.seg(at(3), b"de");
        assert_eq!(h.take(), [data(b"abcdexyz")]);
        assert_eq!(h.stats.overlaps_differing, 0);
    }

    #[test]
    fn differing_overlap_of_delivered_bytes_keeps_the_first_copy() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(0), b"abcdef");
        h.seg(at(2), b"cdXfgh");
        assert_eq!(h.take(), [data(b"abcdefgh")]);
        assert_eq!(h.stats.overlaps_differing, 1);
        assert_eq!(h.stats.retransmissions, 0, "it brought new bytes");
        h.seg(at(4), b"ef");
        assert_eq!(h.stats.overlaps_differing, 1, "same bytes are no evasion");
        assert_eq!(h.stats.retransmissions, 1);
    }

    #[test]
    fn a_keepalive_first_does_not_start_a_stream_picked_up_midway() {
        let mut h = Harness::new(ReassemblyLimits::default());
        h.seg(at(9), b"\0");
        assert_eq!((h.reassembler.first_seq(), h.stats.retransmissions), (None, 1));
        h.seg(at(10), b"a1 LOGIN");
        assert_eq!(h.take(), [data(b"a1 LOGIN")]);
        // A lone byte of text does start one.
        let mut h = Harness::new(ReassemblyLimits::default());
        h.seg(at(9), b"a");
        h.seg(at(10), b"1 LOGIN");
        assert_eq!(h.take(), [data(b"a1 LOGIN")]);
    }

    #[test]
    fn a_keepalive_with_a_garbage_byte_is_no_differing_overlap() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(0), b"abc");
        h.seg(at(2), b"\0");
        assert_eq!((h.stats.overlaps_differing, h.stats.retransmissions), (0, 1));
        h.seg(at(1), b"\0");
        assert_eq!(h.stats.overlaps_differing, 1, "a byte further back is no keepalive");
        assert_eq!(h.take(), [data(b"abc")]);
    }

    #[test]
    fn differing_overlap_of_buffered_bytes_keeps_the_first_copy() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(10), b"12345");
        h.seg(at(10), b"1X345678");
        assert_eq!(h.stats.overlaps_differing, 1);
        h.seg(at(9), b"Y1");
        assert_eq!(h.stats.overlaps_differing, 1, "the overlapping byte matches");
        h.seg(at(0), b"012345678Z");
        assert_eq!(h.stats.overlaps_differing, 2, "Z differs from the buffered Y");
        assert_eq!(h.take(), [data(b"012345678Y12345678")]);
    }

    #[test]
    fn delivered_bytes_beyond_the_compare_tail_are_not_compared() {
        let limits = ReassemblyLimits { compare_tail: 4, ..Default::default() };
        let mut h = started(limits);
        h.seg(at(0), b"abcdefgh");
        h.seg(at(0), b"Xbcdefgh");
        assert_eq!(h.stats.overlaps_differing, 0, "byte 0 is no longer held");
        assert_eq!(h.stats.retransmissions, 1);
        h.seg(at(4), b"eXgh");
        assert_eq!(h.stats.overlaps_differing, 1);
        assert_eq!(h.reassembler.compare_tail_bytes(), 4);
    }

    #[test]
    fn buffer_limit_forces_a_gap() {
        let limits = ReassemblyLimits { max_buffered: 10, ..Default::default() };
        let mut h = started(limits);
        h.seg(at(3), b"defgh");
        assert_eq!(h.reassembler.buffered_bytes(), 8);
        h.seg(at(8), b"ijklmn");
        assert_eq!(h.take(), [Out::Gap(3), data(b"defghijklmn")]);
        assert_eq!((h.stats.gaps, h.stats.gap_bytes), (1, 3));
        assert_eq!(h.reassembler.buffered_bytes(), 0);
        h.seg(at(0), b"abc");
        assert_eq!(h.take(), [], "the hole was given up");
        assert_eq!(h.stats.retransmissions, 1);
    }

    #[test]
    fn range_limit_forces_a_gap() {
        let limits = ReassemblyLimits { max_segments: 2, ..Default::default() };
        let mut h = started(limits);
        h.seg(at(2), b"c");
        h.seg(at(5), b"f");
        assert_eq!(h.take(), []);
        h.seg(at(8), b"i");
        assert_eq!(h.take(), [Out::Gap(2), data(b"c")]);
        assert_eq!(h.reassembler.buffered_bytes(), 6, "offsets 3..9 held");
        h.seg(at(3), b"de");
        h.seg(at(6), b"gh");
        assert_eq!(h.take(), [data(b"defghi")]);
        assert_eq!((h.stats.gaps, h.stats.gap_bytes), (1, 2));
    }

    #[test]
    fn segment_inside_the_first_hole_gives_up_only_the_part_before_it() {
        let limits = ReassemblyLimits { max_segments: 1, ..Default::default() };
        let mut h = started(limits);
        h.seg(at(10), b"kl");
        h.seg(at(5), b"f");
        assert_eq!(h.take(), [Out::Gap(5), data(b"f")]);
        h.seg(at(6), b"ghij");
        assert_eq!(h.take(), [data(b"ghijkl")]);
    }

    #[test]
    fn segment_larger_than_the_budget_is_delivered_after_a_gap() {
        let limits = ReassemblyLimits { max_buffered: 8, ..Default::default() };
        let mut h = started(limits);
        let big = [7u8; 20];
        h.seg(at(3), &big);
        assert_eq!(h.take(), [Out::Gap(3), data(&big)]);
        assert_eq!(h.reassembler.buffered_bytes(), 0);
    }

    #[test]
    fn syn_near_the_wrap_and_data_across_zero() {
        let mut h = Harness::new(ReassemblyLimits::default());
        h.reassembler.on_syn(u32::MAX - 1);
        h.seg(2, b"def");
        assert_eq!(h.take(), []);
        h.seg(u32::MAX, b"abc");
        assert_eq!(h.take(), [data(b"abcdef")]);
        h.seg(5, b"g");
        h.seg(u32::MAX - 3, b"xx");
        assert_eq!(h.take(), [data(b"g")]);
        assert_eq!(h.stats.before_start, 1);
        assert_eq!(h.reassembler.next_seq(), Some(6));
    }

    #[test]
    fn mid_stream_pickup_starts_at_the_first_segment() {
        let mut h = Harness::new(ReassemblyLimits::default());
        assert_eq!(h.reassembler.next_seq(), None);
        h.seg(5000, b"");
        assert_eq!(h.reassembler.next_seq(), None, "an empty segment does not start the stream");
        h.seg(5000, b"LOGIN");
        assert_eq!(h.take(), [data(b"LOGIN")]);
        h.seg(4990, b"0123456789");
        assert_eq!(h.stats.before_start, 1);
        h.seg(4995, b"12345LOGIN");
        assert_eq!(h.stats.retransmissions, 1);
        assert_eq!(h.stats.overlaps_differing, 0);
        h.seg(5005, b" bob");
        assert_eq!(h.take(), [data(b" bob")]);
        h.reassembler.on_syn(4000);
        assert_eq!(h.reassembler.next_seq(), Some(5009), "a late SYN is ignored");
    }

    #[test]
    fn start_at_names_the_first_byte() {
        let mut h = Harness::new(ReassemblyLimits::default());
        h.reassembler.start_at(777);
        h.seg(780, b"d");
        assert_eq!(h.take(), []);
        h.seg(777, b"abc");
        assert_eq!(h.take(), [data(b"abcd")]);
    }

    /// A flow picked up without its handshake, the peer's acknowledgement read first: a line
    /// whose segments the capture reversed is put together, whatever segment comes first.
    #[test]
    fn a_start_the_peer_acknowledged_holds_segments_captured_before_the_first() {
        let mut h = Harness::new(ReassemblyLimits::default());
        h.reassembler.starts_by(777);
        h.seg(787, b"LOGIN\r\n");
        h.seg(782, b"b pw ");
        assert_eq!(h.take(), []);
        h.seg(777, b"a1 bo");
        assert_eq!(h.take(), [data(b"a1 bob pw LOGIN\r\n")]);
        assert_eq!(h.stats.gaps, 0);
    }

    /// The acknowledgement is only a guess at the start: bytes before it (the peer had them, their
    /// segment captured after its acknowledgement), bytes too far past it, or a SYN start the
    /// stream instead; a keepalive probe does not.
    #[test]
    fn a_start_the_peer_acknowledged_gives_way() {
        let mut h = Harness::new(ReassemblyLimits::default());
        h.reassembler.starts_by(777);
        h.seg(776, &[0]);
        h.seg(700, b"USER alice\r\n");
        assert_eq!(h.take(), [data(b"USER alice\r\n")]);
        assert_eq!(h.reassembler.first_seq(), Some(700));

        let limits = ReassemblyLimits::default();
        let mut far = Harness::new(limits);
        far.reassembler.starts_by(777);
        let beyond = 777u32.wrapping_add(limits.max_ahead_unconfirmed).wrapping_add(1);
        far.seg(beyond, b"x");
        assert_eq!(far.take(), [data(b"x")]);

        let mut syn = Harness::new(ReassemblyLimits::default());
        syn.reassembler.starts_by(777);
        syn.reassembler.on_syn(899);
        assert_eq!(syn.reassembler.first_seq(), Some(900));

        let mut forgotten = Harness::new(ReassemblyLimits::default());
        forgotten.reassembler.starts_by(777);
        forgotten.reassembler.forget_start();
        forgotten.seg(800, b"y");
        assert_eq!(forgotten.take(), [data(b"y")]);
    }

    #[test]
    fn flush_delivers_buffered_data_with_gaps() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(5), b"fgh");
        h.seg(at(12), b"mno");
        h.flush();
        assert_eq!(h.take(), [Out::Gap(5), data(b"fgh"), Out::Gap(4), data(b"mno")]);
        assert_eq!((h.stats.gaps, h.stats.gap_bytes), (2, 9));
        assert_eq!(h.reassembler.buffered_bytes(), 0);
        assert_eq!(h.reassembler.next_seq(), Some(at(15)));
        h.flush();
        assert_eq!(h.take(), []);
    }

    #[test]
    fn data_before_the_stream_start_is_ignored() {
        let mut h = Harness::new(ReassemblyLimits::default());
        h.reassembler.on_syn(100);
        h.seg(50, b"0123456789");
        assert_eq!(h.take(), []);
        assert_eq!(h.stats.before_start, 1);
        h.seg(95, b"......abcd");
        assert_eq!(h.take(), [data(b"abcd")], "only bytes from 101 on are kept");
    }

    #[test]
    fn segment_too_far_ahead_is_dropped() {
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(2 << 20), b"x");
        assert_eq!(h.take(), []);
        assert_eq!(h.stats.dropped_out_of_window, 1);
        assert_eq!(h.reassembler.buffered_bytes(), 0);

        let mut h = started(ReassemblyLimits { max_ahead: 100, ..Default::default() });
        h.seg(at(100), b"a");
        assert_eq!(h.reassembler.buffered_bytes(), 101, "exactly max_ahead is accepted");
        h.seg(at(101), b"yz");
        assert_eq!(h.stats.dropped_out_of_window, 2);
        assert_eq!(h.reassembler.buffered_bytes(), 101);
    }

    #[test]
    fn a_lone_segment_far_ahead_is_dropped_until_confirmed() {
        let mut h = started(ReassemblyLimits { max_buffered: 100, max_ahead_unconfirmed: 100, ..Default::default() });
        h.seg(at(500), b"fake");
        h.seg(at(0), b"real");
        assert_eq!(h.take(), [data(b"real")], "the injected segment did not make the stream skip");
        assert_eq!(h.stats.dropped_out_of_window, 4);
        for n in 0..FAR_SEGMENTS_TO_CONFIRM {
            h.seg(at(1000 + n), b"x");
        }
        assert_eq!(h.take(), [], "not confirmed yet");
        h.seg(at(2000), b"lost-before");
        assert_eq!(h.take(), [Out::Gap(1996), data(b"lost-before")], "a genuine loss skips ahead");
        assert_eq!(h.stats.gaps, 1);
    }

    #[test]
    fn debug_output_shows_no_payload() {
        let chunk = format!("{:?}", StreamChunk::Data(b"hunter2"));
        assert_eq!(chunk, "Data { len: 7 }");
        let mut h = started(ReassemblyLimits::default());
        h.seg(at(0), b"hunter2");
        h.seg(at(20), b"hunter3");
        let state = format!("{:?}", h.reassembler);
        assert!(!state.contains("hunter"), "{state}");
        assert!(!state.contains("104, 117"), "{state}");
    }

    /// Cuts `len` bytes into consecutive pieces whose lengths cycle through `lens`.
    fn cut(len: usize, lens: &[usize]) -> Vec<Range<usize>> {
        let mut pieces = Vec::new();
        let mut start = 0;
        for &piece_len in lens.iter().cycle() {
            if start >= len {
                break;
            }
            let end = (start + piece_len).min(len);
            pieces.push(start..end);
            start = end;
        }
        pieces
    }

    /// A random byte string and the segments covering it: a full cut, some duplicated pieces and
    /// some extra overlapping copies (with the same bytes), in a random order.
    fn arb_stream() -> impl Strategy<Value = (Vec<u8>, Vec<Range<usize>>)> {
        (
            prop::collection::vec(any::<u8>(), 1..400),
            prop::collection::vec(1usize..40, 1..20),
            prop::collection::vec(any::<Index>(), 0..10),
            prop::collection::vec((any::<Index>(), 1usize..60), 0..10),
            prop::collection::vec(any::<u32>(), 1..100),
        )
            .prop_map(|(bytes, lens, duplicated, extra, keys)| {
                let mut pieces = cut(bytes.len(), &lens);
                let originals = pieces.len();
                for index in duplicated {
                    pieces.push(pieces[index.index(originals)].clone());
                }
                for (start, len) in extra {
                    let start = start.index(bytes.len());
                    pieces.push(start..(start + len).min(bytes.len()));
                }
                let mut keyed: Vec<_> =
                    pieces.into_iter().enumerate().map(|(i, piece)| (keys[i % keys.len()], i, piece)).collect();
                keyed.sort_by_key(|&(key, i, _)| (key, i));
                (bytes, keyed.into_iter().map(|(_, _, piece)| piece).collect())
            })
    }

    /// ISNs anywhere, with extra weight right below the wrap.
    fn arb_isn() -> impl Strategy<Value = u32> {
        prop_oneof![any::<u32>(), (u32::MAX - 500)..=u32::MAX]
    }

    fn feed(h: &mut Harness, isn: u32, bytes: &[u8], pieces: &[Range<usize>]) {
        h.reassembler.on_syn(isn);
        for piece in pieces {
            let seq = isn.wrapping_add(1).wrapping_add(piece.start as u32);
            h.seg(seq, &bytes[piece.clone()]);
        }
    }

    proptest! {
        #[test]
        fn reassembly_oracle_with_ample_limits((bytes, pieces) in arb_stream(), isn in arb_isn()) {
            let limits = ReassemblyLimits {
                max_buffered: 1 << 20,
                max_segments: 1 << 16,
                ..Default::default()
            };
            let mut h = Harness::new(limits);
            feed(&mut h, isn, &bytes, &pieces);
            prop_assert_eq!(h.take(), vec![Out::Data(bytes.clone())]);
            prop_assert_eq!(h.stats.gaps, 0);
            prop_assert_eq!(h.stats.overlaps_differing, 0);
            prop_assert_eq!(h.stats.bytes_delivered, bytes.len() as u64);
            prop_assert_eq!(h.reassembler.buffered_bytes(), 0);
            h.flush();
            prop_assert_eq!(h.take(), vec![]);
        }

        #[test]
        fn reassembly_oracle_with_small_limits(
            (bytes, pieces) in arb_stream(),
            isn in arb_isn(),
            max_buffered in 0usize..64,
            max_segments in 0usize..5,
            compare_tail in 0usize..16,
        ) {
            let limits = ReassemblyLimits {
                max_buffered,
                max_segments,
                compare_tail,
                ..Default::default()
            };
            let mut h = Harness::new(limits);
            feed(&mut h, isn, &bytes, &pieces);
            h.flush();
            let mut position = 0usize;
            for chunk in h.take() {
                match chunk {
                    Out::Data(delivered) => {
                        let end = position + delivered.len();
                        prop_assert!(end <= bytes.len(), "delivered past the end");
                        prop_assert_eq!(&delivered[..], &bytes[position..end], "at {}", position);
                        position = end;
                    }
                    Out::Gap(len) => position += len as usize,
                }
            }
            prop_assert_eq!(position, bytes.len());
            prop_assert_eq!(h.stats.bytes_delivered + h.stats.gap_bytes, bytes.len() as u64);
            prop_assert_eq!(h.stats.overlaps_differing, 0);
            prop_assert_eq!(h.reassembler.buffered_bytes(), 0);
        }

        /// First copy wins, checked against a model that records, per offset, the first byte
        /// seen; with ample limits every overlap is compared and only holes become gaps.
        #[test]
        fn first_copy_wins_against_a_model(
            segments in prop::collection::vec(
                (0usize..300, prop::collection::vec(0u8..3, 1..30)), 1..40),
            isn in arb_isn(),
        ) {
            let limits = ReassemblyLimits {
                max_buffered: 1 << 20,
                max_segments: 1 << 16,
                compare_tail: 1 << 20,
                ..Default::default()
            };
            let mut h = Harness::new(limits);
            h.reassembler.on_syn(isn);
            let mut model: Vec<Option<u8>> = vec![None; 400];
            let (mut differing, mut retransmissions) = (0, 0);
            for (offset, payload) in &segments {
                // A lone byte just before the next one is a keepalive probe: a retransmission
                // whatever it holds.
                let next = model.iter().position(Option::is_none).unwrap_or(model.len());
                if payload.len() == 1 && offset + 1 == next {
                    retransmissions += 1;
                    h.seg(isn.wrapping_add(1).wrapping_add(*offset as u32), payload);
                    continue;
                }
                let cells = &mut model[*offset..offset + payload.len()];
                if cells.iter().zip(payload).any(|(held, new)| held.is_some_and(|b| b != *new)) {
                    differing += 1;
                }
                if cells.iter().all(Option::is_some) {
                    retransmissions += 1;
                }
                for (cell, byte) in cells.iter_mut().zip(payload) {
                    cell.get_or_insert(*byte);
                }
                h.seg(isn.wrapping_add(1).wrapping_add(*offset as u32), payload);
            }
            h.flush();
            let last = model.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
            let mut expected = Vec::new();
            for cell in &model[..last] {
                match (cell, expected.last_mut()) {
                    (Some(byte), Some(Out::Data(run))) => run.push(*byte),
                    (Some(byte), _) => expected.push(Out::Data(vec![*byte])),
                    (None, Some(Out::Gap(len))) => *len += 1,
                    (None, _) => expected.push(Out::Gap(1)),
                }
            }
            prop_assert_eq!(h.take(), expected);
            prop_assert_eq!(h.stats.overlaps_differing, differing);
            prop_assert_eq!(h.stats.retransmissions, retransmissions);
        }

        /// Whatever arrives (wild sequence numbers, any sizes, any limits), memory stays within
        /// the limits and the invariants hold (checked by the harness after every call).
        #[test]
        fn buffered_bytes_never_exceed_the_limit(
            segments in prop::collection::vec(
                (prop_oneof![3 => -200i64..2000, 1 => any::<u32>().prop_map(i64::from)],
                 prop::collection::vec(any::<u8>(), 0..300)),
                1..60),
            isn in arb_isn(),
            syn in any::<bool>(),
            max_buffered in 0usize..1024,
            max_segments in 0usize..8,
            max_ahead in prop_oneof![0u32..4096, Just(u32::MAX)],
            max_ahead_unconfirmed in prop_oneof![0u32..4096, Just(u32::MAX)],
            compare_tail in 0usize..64,
        ) {
            let limits = ReassemblyLimits { max_buffered, max_segments, max_ahead, max_ahead_unconfirmed, compare_tail };
            let mut h = Harness::new(limits);
            if syn {
                h.reassembler.on_syn(isn);
            }
            for (offset, payload) in &segments {
                h.seg(isn.wrapping_add(*offset as u32), payload);
                prop_assert!(h.reassembler.buffered_bytes() <= max_buffered);
            }
            h.flush();
            prop_assert_eq!(h.reassembler.buffered_bytes(), 0);
            let delivered: u64 = h
                .take()
                .iter()
                .map(|chunk| match chunk {
                    Out::Data(bytes) => bytes.len() as u64,
                    Out::Gap(len) => *len,
                })
                .sum();
            prop_assert_eq!(delivered, h.reassembler.next_offset);
            prop_assert_eq!(delivered, h.stats.bytes_delivered + h.stats.gap_bytes);
        }
    }
}
