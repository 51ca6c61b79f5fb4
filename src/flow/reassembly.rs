//! One direction of a TCP connection turned into an ordered byte stream, within a fixed memory
//! budget.
//!
//! TO BE IMPLEMENTED (helper): see the interface below.

/// Limits for one direction's reassembly.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyLimits {
    /// Bytes held above a hole, waiting for it to fill. When exceeded, the hole is declared a gap
    /// and delivery skips ahead.
    pub max_buffered: usize,
    /// Distinct holes tracked at once; one more also forces a skip ahead.
    pub max_segments: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits { max_buffered: 64 * 1024, max_segments: 64 }
    }
}

/// Counters of what reassembly saw and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub segments: u64,
    pub bytes_delivered: u64,
    /// Segments wholly inside data already delivered or buffered (retransmissions).
    pub retransmissions: u64,
    /// Overlapping bytes whose content differed from the first copy (kept): an evasion signal.
    pub overlaps_differing: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Bytes dropped because they lay too far ahead of the stream (outside any sane window).
    pub dropped_out_of_window: u64,
}

/// What a reassembler delivers: in-order bytes, or notice that bytes were lost.
#[derive(Debug)]
pub enum StreamChunk<'a> {
    Data(&'a [u8]),
    Gap(u64),
}

/// Per-direction reassembler.
#[derive(Debug, Default)]
pub struct StreamReassembler {
    _todo: (),
}

impl StreamReassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream starts after this SYN's sequence number.
    pub fn on_syn(&mut self, seq: u32) {
        let _ = seq;
        todo!()
    }

    /// Adds a segment and delivers every byte that became contiguous, in order.
    pub fn on_segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        limits: &ReassemblyLimits,
        stats: &mut ReassemblyStats,
        deliver: &mut dyn FnMut(StreamChunk<'_>),
    ) {
        let _ = (seq, payload, limits, stats, deliver);
        todo!()
    }

    /// Delivers whatever is still buffered (with gaps for the holes), at close.
    pub fn flush(&mut self, stats: &mut ReassemblyStats, deliver: &mut dyn FnMut(StreamChunk<'_>)) {
        let _ = (stats, deliver);
        todo!()
    }

    /// Bytes currently held (for memory accounting).
    pub fn buffered_bytes(&self) -> usize {
        todo!()
    }
}
