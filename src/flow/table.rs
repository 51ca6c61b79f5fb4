//! The flow table: one entry per TCP connection, two reassemblers each, bounded in flows and in
//! buffered bytes, expired on packet time.
//!
//! The table knows nothing of mail: a [`FlowHandler`] receives each flow's ordered byte streams
//! and tells the table when it has seen enough, after which the flow keeps only its TCP state.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::time::Duration;

use rustc_hash::FxHashMap;

use super::key::{FlowKey, Side};
use super::reassembly::{ReassemblyLimits, ReassemblyStats, StreamChunk, StreamReassembler};
use crate::capture::Timestamp;
use crate::decode::TcpPacket;

/// Expiry passes over the whole table are at least this far apart in packet time.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Bounds and timeouts of the flow table.
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    /// Flows tracked at once; past it the least recently seen are evicted.
    pub max_flows: usize,
    /// Bytes buffered across all flows: out-of-order data, partial lines and literals, and the
    /// tails kept to compare retransmissions. Past it the flow that overflows drops its partial
    /// line and tails, then skips ahead (its holes become gaps).
    pub max_buffered_total: usize,
    pub reassembly: ReassemblyLimits,
    /// A flow that never carried data (a SYN scan, a refused connection).
    pub embryonic_timeout: Duration,
    pub idle_timeout: Duration,
    /// After FIN from both sides or a RST: time left for stragglers.
    pub closed_timeout: Duration,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_flows: 262_144,
            max_buffered_total: 128 * 1024 * 1024,
            reassembly: ReassemblyLimits::default(),
            embryonic_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            closed_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of the flow table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub flows_created: u64,
    pub flows_closed: u64,
    pub flows_timed_out: u64,
    pub flows_evicted: u64,
    /// Times the global buffer budget forced a flow to skip ahead.
    pub memcap_skips: u64,
    /// Times the global buffer budget made a flow drop its partial lines and compare tails.
    pub memcap_sheds: u64,
    /// Packets for a flow not inspected any more (authentication over, TLS, not mail).
    pub packets_bypassed: u64,
    pub reassembly: ReassemblyStats,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Fin,
    Reset,
    Timeout,
    Evicted,
    EndOfInput,
}

/// What the table tells its handler about a flow.
#[derive(Debug)]
pub enum FlowEvent<'a> {
    Data(Side, &'a [u8]),
    Gap(Side, u64),
    /// A segment from this side overlapped bytes already held with different content (the first
    /// copy was kept). Told once per flow, the first time; every one is counted in
    /// [`ReassemblyStats::overlaps_differing`].
    OverlapDifferentData(Side),
    Closed(CloseReason),
}

/// What the handler tells the table back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inspect {
    Continue,
    /// Stop reassembling this flow: keep only its TCP state so it is not picked up again.
    Stop,
}

/// Facts about a flow, for the handler.
#[derive(Clone, Copy, Debug)]
pub struct FlowInfo {
    /// Stable for a given connection whatever the thread count: a hash of the key and start time.
    pub id: u64,
    pub key: FlowKey,
    /// The side that sent the SYN, when the handshake was seen.
    pub syn_from: Option<Side>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl FlowInfo {
    /// The connection was open before the capture started.
    pub fn midstream(&self) -> bool {
        self.syn_from.is_none()
    }
}

/// Receives the streams of every flow.
pub trait FlowHandler {
    /// Per-flow state of the handler.
    type App;
    fn open(&mut self, info: &FlowInfo) -> Self::App;
    fn event(&mut self, info: &FlowInfo, app: &mut Self::App, event: FlowEvent<'_>, ts: Timestamp) -> Inspect;
    /// Bytes the handler holds for this flow (for memory accounting); zero by default.
    fn buffered(&self, _app: &Self::App) -> usize {
        0
    }
    /// Memory is short: drop what the flow holds (partial lines, literals), as after a gap.
    fn shed(&mut self, _app: &mut Self::App) {}
}

struct Flow<A> {
    info: FlowInfo,
    /// `None` once inspection stopped: the buffers are freed, the entry stays small.
    streams: Option<Box<[StreamReassembler; 2]>>,
    app: A,
    carried_data: bool,
    fin: [bool; 2],
    closing_since: Option<Timestamp>,
    /// The handler was told of a differing overlap already (once per flow is enough to alert).
    overlap_reported: bool,
    /// Bytes held besides the reorder windows (compare tails, the handler's partial lines),
    /// as last counted into the table's total.
    held: usize,
}

/// All flows of one worker.
pub struct FlowTable<H: FlowHandler> {
    flows: FxHashMap<FlowKey, Flow<H::App>>,
    /// Scratch space of `make_room`: whether timed out, last seen, key.
    by_age: Vec<(bool, Timestamp, FlowKey)>,
    /// When the latest pass over the whole table looked for timed-out flows.
    swept_at: Option<Timestamp>,
    limits: FlowLimits,
    buffered_total: usize,
    pub stats: FlowStats,
}

impl<H: FlowHandler> FlowTable<H> {
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            flows: FxHashMap::default(),
            by_age: Vec::new(),
            swept_at: None,
            limits,
            buffered_total: 0,
            stats: FlowStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Bytes buffered out of order across all flows.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_total
    }

    /// Feeds one packet to its flow.
    pub fn process(&mut self, packet: &TcpPacket<'_>, ts: Timestamp, handler: &mut H) {
        let (key, side) = FlowKey::of(packet);
        let flags = packet.flags;
        if let Some(flow) = self.flows.get_mut(&key) {
            // A new SYN on a finished connection: the port pair was reused.
            let reused = flags.syn() && !flags.ack() && flow.closing_since.is_some();
            if !reused && flow.streams.is_none() {
                // Most packets of a capture belong to flows no longer inspected (bulk transfers,
                // TLS, mail after the login): one lookup, timestamps and close flags, done.
                flow.info.last_seen = flow.info.last_seen.max(ts);
                self.stats.packets_bypassed += 1;
                note_close_flags(flow, side, packet, ts);
                return;
            }
            if reused {
                self.close(&key, CloseReason::Fin, handler);
            }
        }
        if !self.flows.contains_key(&key) {
            if flags.rst() || (packet.payload.is_empty() && !flags.syn()) {
                return;
            }
            self.make_room(ts, handler);
            let syn_from = match (flags.syn(), flags.ack()) {
                (true, false) => Some(side),
                (true, true) => Some(side.other()),
                _ => None,
            };
            let info = FlowInfo { id: flow_id(&key, ts), key, syn_from, first_seen: ts, last_seen: ts };
            let app = handler.open(&info);
            let streams = Some(Box::new([StreamReassembler::new(), StreamReassembler::new()]));
            self.flows.insert(
                key,
                Flow {
                    info,
                    streams,
                    app,
                    carried_data: false,
                    fin: [false; 2],
                    closing_since: None,
                    overlap_reported: false,
                    held: 0,
                },
            );
            self.stats.flows_created += 1;
        }
        let Some(flow) = self.flows.get_mut(&key) else { return };
        flow.info.last_seen = flow.info.last_seen.max(ts);
        if flags.syn() && flow.info.syn_from.is_none() && !flow.carried_data {
            flow.info.syn_from = Some(if flags.ack() { side.other() } else { side });
        }
        let Some(streams) = flow.streams.as_deref_mut() else {
            self.stats.packets_bypassed += 1;
            note_close_flags(flow, side, packet, ts);
            return;
        };
        let [lo, hi] = streams;
        let stream = match side {
            Side::Lo => lo,
            Side::Hi => hi,
        };
        if flags.syn() {
            stream.on_syn(packet.seq);
        }
        let mut inspect = Inspect::Continue;
        if !packet.payload.is_empty() {
            flow.carried_data = true;
            let before = stream.buffered_bytes();
            let differing_before = self.stats.reassembly.overlaps_differing;
            let seq = if flags.syn() { packet.seq.wrapping_add(1) } else { packet.seq };
            let (info, app) = (&flow.info, &mut flow.app);
            stream.on_segment(seq, packet.payload, &self.limits.reassembly, &mut self.stats.reassembly, &mut |chunk| {
                if inspect == Inspect::Continue {
                    inspect = handler.event(info, app, chunk_event(side, chunk), ts);
                }
            });
            if self.stats.reassembly.overlaps_differing > differing_before && !flow.overlap_reported {
                flow.overlap_reported = true;
                if inspect == Inspect::Continue {
                    inspect = handler.event(info, app, FlowEvent::OverlapDifferentData(side), ts);
                }
            }
            let after = stream.buffered_bytes();
            self.buffered_total = self.buffered_total.saturating_sub(before).saturating_add(after);
            if self.buffered_total > self.limits.max_buffered_total && after > 0 {
                self.stats.memcap_skips += 1;
                stream.flush(&mut self.stats.reassembly, &mut |chunk| {
                    if inspect == Inspect::Continue {
                        inspect = handler.event(info, app, chunk_event(side, chunk), ts);
                    }
                });
                self.buffered_total = self.buffered_total.saturating_sub(after);
            }
        }
        if !packet.payload.is_empty() {
            account_held(flow, handler, &mut self.buffered_total, self.limits.max_buffered_total, &mut self.stats);
        }
        note_close_flags(flow, side, packet, ts);
        if inspect == Inspect::Stop {
            self.stop_inspecting(&key);
        }
    }

    /// Ends flows whose time is up, on packet time. A pass over the table made less than
    /// [`SWEEP_INTERVAL`] ago (by `make_room` under a flood) counts as done: flows may outlive
    /// their timeout by that much, and a flood costs one pass per interval, not two.
    pub fn expire(&mut self, now: Timestamp, handler: &mut H) {
        if self.swept_at.is_some_and(|at| now.saturating_since(at) < SWEEP_INTERVAL) {
            return;
        }
        self.swept_at = Some(now);
        let limits = self.limits;
        let expired: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, flow)| now.saturating_since(flow.info.last_seen) > timeout_of(flow, &limits))
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.stats.flows_timed_out += 1;
            self.close(&key, CloseReason::Timeout, handler);
        }
    }

    /// Ends every flow (end of input, shutdown).
    pub fn close_all(&mut self, handler: &mut H) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for key in keys {
            self.close(&key, CloseReason::EndOfInput, handler);
        }
    }

    fn stop_inspecting(&mut self, key: &FlowKey) {
        if let Some(flow) = self.flows.get_mut(key) {
            if let Some(streams) = flow.streams.take() {
                let windows: usize = streams.iter().map(StreamReassembler::buffered_bytes).sum();
                self.buffered_total = self.buffered_total.saturating_sub(windows + flow.held);
                flow.held = 0;
            }
        }
    }

    fn close(&mut self, key: &FlowKey, reason: CloseReason, handler: &mut H) {
        let Some(mut flow) = self.flows.remove(key) else { return };
        let ts = flow.info.last_seen;
        let info = flow.info;
        if let Some(mut streams) = flow.streams.take() {
            let windows: usize = streams.iter().map(StreamReassembler::buffered_bytes).sum();
            self.buffered_total = self.buffered_total.saturating_sub(windows + flow.held);
            for (side, stream) in [Side::Lo, Side::Hi].into_iter().zip(streams.iter_mut()) {
                let app = &mut flow.app;
                let mut inspect = Inspect::Continue;
                stream.flush(&mut self.stats.reassembly, &mut |chunk| {
                    if inspect == Inspect::Continue {
                        inspect = handler.event(&info, app, chunk_event(side, chunk), ts);
                    }
                });
            }
        }
        handler.event(&info, &mut flow.app, FlowEvent::Closed(reason), ts);
        match reason {
            CloseReason::Evicted => self.stats.flows_evicted += 1,
            CloseReason::Fin | CloseReason::Reset => self.stats.flows_closed += 1,
            CloseReason::Timeout | CloseReason::EndOfInput => {}
        }
    }

    /// Keeps the table under its flow limit: first what has timed out, then the least recently
    /// seen sixteenth (amortised O(1) per new flow, whatever the flood). One pass over the table
    /// finds both, into a buffer kept from one call to the next: under a flood this runs every
    /// sixteenth of the table's size, and the pass is its whole cost.
    fn make_room(&mut self, now: Timestamp, handler: &mut H) {
        if self.flows.len() < self.limits.max_flows {
            return;
        }
        let limits = self.limits;
        self.swept_at = Some(now);
        let mut by_age = std::mem::take(&mut self.by_age);
        by_age.clear();
        by_age.extend(self.flows.iter().map(|(key, flow)| {
            let timed_out = now.saturating_since(flow.info.last_seen) > timeout_of(flow, &limits);
            (timed_out, flow.info.last_seen, *key)
        }));
        // Timed-out flows sort first, then by age.
        let timed_out = by_age.iter().filter(|(timed_out, _, _)| *timed_out).count();
        let batch = (by_age.len() / 16).max(1).max(timed_out);
        if batch < by_age.len() {
            by_age.select_nth_unstable_by_key(batch, |(timed_out, seen, _)| (!*timed_out, *seen));
        }
        for (timed_out, _, key) in by_age.drain(..).take(batch) {
            if timed_out {
                self.stats.flows_timed_out += 1;
                self.close(&key, CloseReason::Timeout, handler);
            } else {
                self.close(&key, CloseReason::Evicted, handler);
            }
        }
        self.by_age = by_age;
    }
}

/// Counts what a flow holds besides its reorder windows into the global budget; past the budget
/// the flow sheds it (its partial line is lost, as after a gap), so that a flood of flows that
/// never finish a line stays within `max_buffered_total` too.
fn account_held<H: FlowHandler>(
    flow: &mut Flow<H::App>,
    handler: &mut H,
    buffered_total: &mut usize,
    budget: usize,
    stats: &mut FlowStats,
) {
    let tails = |flow: &Flow<H::App>| {
        flow.streams.as_deref().map_or(0, |streams| streams.iter().map(StreamReassembler::compare_tail_bytes).sum())
    };
    let mut held = tails(flow) + handler.buffered(&flow.app);
    if held > 0 && buffered_total.saturating_sub(flow.held).saturating_add(held) > budget {
        stats.memcap_sheds += 1;
        handler.shed(&mut flow.app);
        if let Some(streams) = flow.streams.as_deref_mut() {
            streams.iter_mut().for_each(StreamReassembler::release_compare_tail);
        }
        held = tails(flow) + handler.buffered(&flow.app);
    }
    *buffered_total = buffered_total.saturating_sub(flow.held).saturating_add(held);
    flow.held = held;
}

fn chunk_event(side: Side, chunk: StreamChunk<'_>) -> FlowEvent<'_> {
    match chunk {
        StreamChunk::Data(data) => FlowEvent::Data(side, data),
        StreamChunk::Gap(len) => FlowEvent::Gap(side, len),
    }
}

fn note_close_flags<A>(flow: &mut Flow<A>, side: Side, packet: &TcpPacket<'_>, ts: Timestamp) {
    if packet.flags.fin() {
        if let Some(fin) = flow.fin.get_mut(side.index()) {
            *fin = true;
        }
    }
    if packet.flags.rst() || flow.fin.iter().all(|fin| *fin) {
        flow.closing_since.get_or_insert(ts);
    }
}

fn timeout_of<A>(flow: &Flow<A>, limits: &FlowLimits) -> Duration {
    if flow.closing_since.is_some() {
        limits.closed_timeout
    } else if flow.carried_data {
        limits.idle_timeout
    } else {
        limits.embryonic_timeout
    }
}

/// A flow id that does not depend on which worker saw the flow, kept below 2^53 so that JSON
/// consumers that read numbers as doubles keep it exact.
fn flow_id(key: &FlowKey, first_seen: Timestamp) -> u64 {
    (key.symmetric_hash() ^ first_seen.as_nanos().wrapping_mul(0x9e37_79b9_7f4a_7c15)) & ((1 << 53) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{TcpFlags, VlanStack};
    use std::net::IpAddr;

    /// Stops inspecting at the first data, and records how flows ended.
    #[derive(Default)]
    struct StopAtData {
        data_events: usize,
        closed: Vec<CloseReason>,
    }

    impl FlowHandler for StopAtData {
        type App = ();
        fn open(&mut self, _info: &FlowInfo) {}
        fn event(&mut self, _info: &FlowInfo, _app: &mut (), event: FlowEvent<'_>, _ts: Timestamp) -> Inspect {
            match event {
                FlowEvent::Data(..) => {
                    self.data_events += 1;
                    Inspect::Stop
                }
                FlowEvent::Closed(reason) => {
                    self.closed.push(reason);
                    Inspect::Continue
                }
                FlowEvent::Gap(..) | FlowEvent::OverlapDifferentData(_) => Inspect::Continue,
            }
        }
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs_nanos(1_000 + secs, 0)
    }

    fn packet(client_port: u16, from_client: bool, flags: u8, seq: u32, payload: &'static [u8]) -> TcpPacket<'static> {
        let (client, server): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let ((src, src_port), (dst, dst_port)) =
            if from_client { ((client, client_port), (server, 80)) } else { ((server, 80), (client, client_port)) };
        TcpPacket {
            src,
            dst,
            src_port,
            dst_port,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            window: 0,
            vlan: VlanStack::default(),
            tunnel: 0,
            payload,
            payload_missing: 0,
        }
    }

    const SYN: u8 = TcpFlags::SYN;
    const ACK: u8 = TcpFlags::ACK;
    const FIN_ACK: u8 = TcpFlags::FIN | TcpFlags::ACK;

    /// Holds every byte it is given (like a session waiting for a line end) until told to shed.
    #[derive(Default)]
    struct Hoarder {
        sheds: usize,
    }

    impl FlowHandler for Hoarder {
        type App = Vec<u8>;
        fn open(&mut self, _info: &FlowInfo) -> Vec<u8> {
            Vec::new()
        }
        fn event(&mut self, _info: &FlowInfo, app: &mut Vec<u8>, event: FlowEvent<'_>, _ts: Timestamp) -> Inspect {
            if let FlowEvent::Data(_, data) = event {
                app.extend_from_slice(data);
            }
            Inspect::Continue
        }
        fn buffered(&self, app: &Vec<u8>) -> usize {
            app.len()
        }
        fn shed(&mut self, app: &mut Vec<u8>) {
            self.sheds += 1;
            app.clear();
        }
    }

    #[test]
    fn partial_lines_count_against_the_global_budget_and_are_shed_past_it() {
        let limits = FlowLimits { max_buffered_total: 4_000, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = Hoarder::default();
        const LINE: &[u8] = &[b'x'; 300];
        for port in 0..50 {
            table.process(&packet(40_000 + port, true, SYN, 0, b""), at(0), &mut handler);
            table.process(&packet(40_000 + port, true, ACK, 1, LINE), at(0), &mut handler);
            assert!(table.buffered_bytes() <= limits.max_buffered_total, "{}", table.buffered_bytes());
        }
        assert!(handler.sheds > 0 && table.stats.memcap_sheds == handler.sheds as u64);
        // What is counted is exactly what is held (flows' bytes plus their compare tails).
        let tails = |flow: &Flow<Vec<u8>>| {
            flow.streams.as_deref().map_or(0, |streams| streams.iter().map(StreamReassembler::compare_tail_bytes).sum())
        };
        let held: usize = table.flows.values().map(|flow| flow.app.len() + tails(flow)).sum();
        assert_eq!(table.buffered_bytes(), held);
        table.close_all(&mut handler);
        assert_eq!(table.buffered_bytes(), 0, "closing flows gives their bytes back");
    }

    #[test]
    fn flows_no_longer_inspected_are_bypassed_but_still_close_and_reopen() {
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = StopAtData::default();
        table.process(&packet(40_000, true, SYN, 99, b""), at(0), &mut handler);
        table.process(&packet(40_000, true, ACK, 100, b"GET /"), at(1), &mut handler);
        for (offset, secs) in [(5, 2), (10, 3), (15, 4)] {
            table.process(&packet(40_000, true, ACK, 100 + offset, b"more!"), at(secs), &mut handler);
        }
        assert_eq!(handler.data_events, 1);
        assert_eq!(table.stats.packets_bypassed, 3);
        table.process(&packet(40_000, true, FIN_ACK, 120, b""), at(5), &mut handler);
        table.process(&packet(40_000, false, FIN_ACK, 500, b""), at(5), &mut handler);
        assert_eq!(table.stats.packets_bypassed, 5);
        // Closed but within its closing time: it still counts, and last_seen moved on.
        table.expire(at(14), &mut handler);
        assert_eq!(table.len(), 1);
        // The port pair reused by a new SYN: the old flow ends, a new one starts and is inspected.
        table.process(&packet(40_000, true, SYN, 7_000, b""), at(15), &mut handler);
        table.process(&packet(40_000, true, ACK, 7_001, b"GET /"), at(15), &mut handler);
        assert_eq!(handler.closed, [CloseReason::Fin]);
        assert_eq!((table.stats.flows_created, handler.data_events), (2, 2));
    }

    #[test]
    fn a_flood_stays_under_the_limit_and_evicts_the_least_recently_seen() {
        let limits = FlowLimits { max_flows: 64, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = StopAtData::default();
        for n in 0..1_000u16 {
            let now = Timestamp::from_secs_nanos(1_000, u32::from(n) * 1_000);
            table.process(&packet(1_000 + n, true, SYN, 1, b""), now, &mut handler);
            // Port 999 keeps talking, so it is never the least recently seen.
            table.process(&packet(999, true, SYN, 1, b""), now, &mut handler);
            assert!(table.len() <= 64);
        }
        assert!(table.stats.flows_evicted >= 1_000 - 64);
        assert_eq!(table.stats.flows_timed_out, 0);
        let (survivor, _) = FlowKey::of(&packet(999, true, SYN, 1, b""));
        let (newest, _) = FlowKey::of(&packet(1_999, true, SYN, 1, b""));
        assert!(table.flows.contains_key(&survivor) && table.flows.contains_key(&newest));
    }

    #[test]
    fn expiry_passes_are_a_sweep_interval_apart() {
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = StopAtData::default();
        table.process(&packet(5_000, true, SYN, 1, b""), at(0), &mut handler);
        table.expire(at(20), &mut handler);
        assert_eq!(table.len(), 1, "embryonic timeout is 30 s");
        let just_after = Timestamp::from_secs_nanos(1_031, 0);
        table.expire(just_after, &mut handler);
        assert_eq!(table.len(), 0);
        table.process(&packet(5_001, true, SYN, 1, b""), at(0), &mut handler);
        table.expire(Timestamp::from_secs_nanos(1_031, 500_000_000), &mut handler);
        assert_eq!(table.len(), 1, "within a second of the last pass: skipped");
        table.expire(Timestamp::from_secs_nanos(1_032, 0), &mut handler);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn timed_out_flows_make_room_before_live_ones_are_evicted() {
        let limits = FlowLimits { max_flows: 16, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = StopAtData::default();
        for n in 0..8 {
            table.process(&packet(2_000 + n, true, SYN, 1, b""), at(0), &mut handler);
        }
        for n in 0..8 {
            table.process(&packet(3_000 + n, true, SYN, 1, b""), at(100), &mut handler);
        }
        table.process(&packet(4_000, true, SYN, 1, b""), at(101), &mut handler);
        assert_eq!((table.stats.flows_timed_out, table.stats.flows_evicted), (8, 0));
        assert_eq!(table.len(), 9);
        assert!(handler.closed.iter().all(|reason| *reason == CloseReason::Timeout));
    }
}
