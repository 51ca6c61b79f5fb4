//! The flow table: one entry per TCP connection, two reassemblers each, bounded in flows and in
//! buffered bytes, expired on packet time.
//!
//! The table knows nothing of mail: a [`FlowHandler`] receives each flow's ordered byte streams
//! and tells the table when it has seen enough, after which the flow keeps only its TCP state.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use super::key::{FlowKey, Side};
use super::reassembly::{ReassemblyLimits, ReassemblyStats, StreamChunk, StreamReassembler};
use super::seq;
use crate::capture::Timestamp;
use crate::decode::TcpPacket;
use crate::keyed_hash::KeyedMap;

/// Expiry passes over the whole table are at least this far apart in packet time.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Bounds and timeouts of the flow table.
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    /// Flows tracked at once; past it flows are evicted, those that cost least to lose first (see
    /// `EvictionClass`), the least recently seen first among them.
    pub max_flows: usize,
    /// Bytes buffered across all flows: out-of-order data, partial lines and literals, and the
    /// tails kept to compare retransmissions. Past it the flow that overflows drops its partial
    /// line and tails, then skips ahead (its holes become gaps).
    pub max_buffered_total: usize,
    pub reassembly: ReassemblyLimits,
    /// A flow that never carried data (a SYN scan, a refused connection).
    pub embryonic_timeout: Duration,
    pub idle_timeout: Duration,
    /// After FIN from both sides or a RST: time left for stragglers (a retransmitted FIN, the
    /// last ACK). Short, because a busy link closes thousands of connections a second and a
    /// closed flow kept longer only crowds the table.
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
            closed_timeout: Duration::from_secs(2),
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
    /// Of those, flows evicted while being inspected: a login in progress there is lost (the
    /// others carried no data yet, or were settled).
    pub inspected_evicted: u64,
    /// Times the global buffer budget forced a flow to skip ahead.
    pub memcap_skips: u64,
    /// Times the global buffer budget made a flow drop its partial lines and compare tails.
    pub memcap_sheds: u64,
    /// Packets for a flow not inspected any more (authentication over, TLS, not mail).
    pub packets_bypassed: u64,
    /// Data segments that acknowledged bytes of the other direction not delivered yet (captured
    /// later, or lost), and waited for them.
    pub segments_waited: u64,
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
    /// A SYN started another connection on the port pair before this one's end was captured.
    Reused,
}

/// What the table tells its handler about a flow.
pub enum FlowEvent<'a> {
    /// Bytes of one side, in order.
    Data {
        side: Side,
        bytes: &'a [u8],
        /// The segment that brought them acknowledged exactly the bytes of the other side
        /// delivered or given up as lost before them: its sender had received all of them and no
        /// more. A client that speaks after a reply the capture lost shows so that it had it.
        acked_all: bool,
    },
    Gap(Side, u64),
    /// A gap of bytes the capture's snap length cut off the end of the last segment (see
    /// [`StreamChunk::CutOff`]).
    CutOff(Side, u64),
    /// A segment from this side overlapped bytes already held with different content (the first
    /// copy was kept). Told once per flow, the first time; every one is counted in
    /// [`ReassemblyStats::overlaps_differing`].
    OverlapDifferentData(Side),
    Closed(CloseReason),
}

/// Prints the length of data, never its content.
impl fmt::Debug for FlowEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowEvent::Data { side, bytes, acked_all } => f
                .debug_struct("Data")
                .field("side", side)
                .field("len", &bytes.len())
                .field("acked_all", acked_all)
                .finish(),
            FlowEvent::Gap(side, len) => f.debug_tuple("Gap").field(side).field(len).finish(),
            FlowEvent::CutOff(side, len) => f.debug_tuple("CutOff").field(side).field(len).finish(),
            FlowEvent::OverlapDifferentData(side) => f.debug_tuple("OverlapDifferentData").field(side).finish(),
            FlowEvent::Closed(reason) => f.debug_tuple("Closed").field(reason).finish(),
        }
    }
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
    /// Whether each side's SYN (or SYN-ACK) was seen, by [`Side::index`].
    pub syn_seen: [bool; 2],
}

impl FlowInfo {
    /// The connection was open before the capture started.
    pub fn midstream(&self) -> bool {
        self.syn_from.is_none()
    }

    /// Whether `side` was seen opening its half of the connection. A side that never was (a
    /// capture of one direction of an asymmetric route, or a connection older than the capture)
    /// may well have spoken before, or out of sight.
    pub fn saw_syn_from(&self, side: Side) -> bool {
        self.syn_seen.get(side.index()).copied().unwrap_or(false)
    }
}

/// Receives the streams of every flow.
pub trait FlowHandler {
    /// Per-flow state of the handler, from the flow's first payload byte until the handler says
    /// [`Inspect::Stop`] (after which it hears nothing more of the flow) or the flow ends.
    type App;
    fn open(&mut self, info: &FlowInfo) -> Self::App;
    fn event(&mut self, info: &FlowInfo, app: &mut Self::App, event: FlowEvent<'_>, ts: Timestamp) -> Inspect;
    /// Bytes the handler holds for this flow (for memory accounting); zero by default.
    fn buffered(&self, _app: &Self::App) -> usize {
        0
    }
    /// Memory is short: drop what the flow holds (partial lines, literals), as after a gap, and
    /// say now what it held for later (credentials awaiting verdicts).
    fn shed(&mut self, _info: &FlowInfo, _app: &mut Self::App, _ts: Timestamp) {}
}

/// How far a flow's reassembly got.
enum Streams<A> {
    /// No payload yet: only the initial sequence numbers, by side. A SYN scan or a connection
    /// that never speaks costs no buffers.
    Embryonic {
        isn: [Option<u32>; 2],
    },
    Inspecting(Box<Inspection<A>>),
    /// Inspection stopped: the buffers are freed, the entry stays small. It keeps the number of
    /// the SYN that opened the flow, when seen: the same SYN captured again (a second interface or
    /// mirror seeing the same traffic, a moment later) is no new connection, even once the flow
    /// has closed.
    Bypassed {
        syn_seq: Option<u32>,
    },
}

/// What a flow whose streams are being inspected holds: its reassembly and the handler's state,
/// in one allocation.
struct Inspection<A> {
    streams: [StreamReassembler; 2],
    app: A,
    /// Bytes held besides the reorder windows (compare tails, the handler's partial lines), as
    /// last counted into the table's total.
    held: usize,
    waiting: Option<Box<Waiting>>,
    /// The sequence number each side's FIN takes, as its latest FIN not behind the bytes the
    /// stream delivered says: an acknowledgement one past it covers the FIN, not a byte still to
    /// come.
    fin_at: [Option<u32>; 2],
    /// Each side's segment that starts the bytes it holds behind a hole, as `(seq, ack)`: the
    /// reassembler keeps bytes, not segments, and the acknowledgement tells, once the hole is
    /// given up, whether the first line after it was sent having every byte of the other side.
    held_acks: [Option<(u32, u32)>; 2],
}

impl<A> Inspection<A> {
    fn new(streams: [StreamReassembler; 2], app: A, fins: [bool; 2]) -> Self {
        // A FIN seen before any data lies where the stream starts.
        let fin_at = [0, 1].map(|index| {
            let start = streams.get(index).and_then(StreamReassembler::next_seq);
            start.filter(|_| fins.get(index).copied().unwrap_or(false))
        });
        Inspection { streams, app, held: 0, waiting: None, fin_at, held_acks: [None; 2] }
    }

    /// Whether the segment that starts the bytes `side` holds behind a hole acknowledged exactly
    /// what the other side has delivered (see [`acknowledges_exactly`](Self::acknowledges_exactly)).
    fn held_bytes_acknowledge_exactly(&self, side: Side) -> bool {
        let first_held = self.streams.get(side.index()).and_then(StreamReassembler::first_held_seq);
        self.held_acks
            .get(side.index())
            .copied()
            .flatten()
            .is_some_and(|(seq, ack)| first_held == Some(seq) && self.acknowledges_exactly(side.other(), ack))
    }

    /// Notes where a FIN of `side` lies; one behind the bytes its stream delivered is stale or
    /// forged (bytes after it were sent), and ignored.
    fn note_fin(&mut self, side: Side, packet: &TcpPacket<'_>) {
        if !packet.flags.fin() {
            return;
        }
        // Sequence space wraps: so does this sum, whatever a corrupt capture claims is missing.
        let len = (packet.payload.len() as u32)
            .wrapping_add(packet.payload_missing)
            .wrapping_add(u32::from(packet.flags.syn()));
        let at = packet.seq.wrapping_add(len);
        let next = self.streams.get(side.index()).and_then(StreamReassembler::next_seq);
        if next.is_some_and(|next| seq::before(at, next)) {
            return;
        }
        if let Some(fin_at) = self.fin_at.get_mut(side.index()) {
            *fin_at = Some(at);
        }
    }

    /// Where `side`'s stream stands: its next byte's sequence number, and whether its FIN lies
    /// there (an acknowledgement one past it then covers the FIN, not a byte). `None` until the
    /// stream starts.
    fn standing(&self, side: Side) -> Option<(u32, bool)> {
        let next = self.streams.get(side.index()).and_then(StreamReassembler::next_seq)?;
        Some((next, self.fin_at.get(side.index()).copied().flatten() == Some(next)))
    }

    /// Whether an acknowledgement of `ack` covers exactly what `side`'s stream has delivered (or
    /// given up as gaps), its FIN counted when it lies right after. Exactly: one further covers
    /// bytes still to come (out of order, or lost and not given up yet), which may hold replies.
    fn acknowledges_exactly(&self, side: Side, ack: u32) -> bool {
        self.standing(side).is_some_and(|(next, fin)| ack == next || (fin && ack == next.wrapping_add(1)))
    }

    /// Whether `side`'s stream has delivered (or given up as gaps) the bytes before `seq`, its FIN
    /// counted when `with_fin` and it lies right after them: what an acknowledgement from the
    /// other side may cover without the handler hearing of it before those bytes. True until the
    /// stream starts: nothing is known to wait for.
    fn has_delivered(&self, side: Side, seq: u32, with_fin: bool) -> bool {
        self.standing(side).is_none_or(|(next, fin)| !seq::before(next.wrapping_add(u32::from(with_fin && fin)), seq))
    }
}

/// Data segments that acknowledge bytes of the other side not delivered yet: they were sent after
/// those bytes. A capture whose two directions were taken apart and merged (the two ports of a
/// TAP, two taps, a bond of two capture cards) can show a reply before the command it answers,
/// or a client's command before the greeting; read in that order, replies answer the wrong
/// commands. Such a segment waits in its side's queue (in capture order) until the other side's
/// stream has delivered what it acknowledged; a side's other segments do not wait behind it
/// unless they must themselves (the reassembler puts a side's bytes in order: a command whose
/// first segment was captured after its second, or after the reply to the command before it,
/// must not be held up by it). Bytes the capture lost keep segments waiting for a second of packet
/// time, until the flow ends or until the queues pass their bounds ([`WAITING_SEGMENTS`], the
/// flow's reorder budget): then they go in one by one in the order they were sent, the lost bytes
/// given up as gaps just before the segments that acknowledged them.
struct Waiting {
    /// By [`Side::index`].
    queues: [VecDeque<WaitingSegment>; 2],
}

impl Waiting {
    fn queue(&self, side: Side) -> Option<&VecDeque<WaitingSegment>> {
        self.queues.get(side.index())
    }

    fn segments(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// Payload bytes waiting (at most 32 segments to sum).
    fn bytes(&self) -> usize {
        self.queues.iter().flatten().map(|segment| segment.payload.len()).sum()
    }
}

struct WaitingSegment {
    seq: u32,
    /// The acknowledgement number: the other side's bytes before it come first.
    after: u32,
    payload: Vec<u8>,
    missing: u32,
    /// Packet time when it started waiting.
    since: Timestamp,
}

impl WaitingSegment {
    fn new(segment: &SegmentIn<'_>, after: u32, since: Timestamp) -> Self {
        let payload = segment.payload.to_vec();
        WaitingSegment { seq: segment.seq, after, payload, missing: segment.missing, since }
    }

    fn as_segment(&self) -> SegmentIn<'_> {
        SegmentIn { seq: self.seq, ack: Some(self.after), payload: &self.payload, missing: self.missing }
    }
}

/// Packet time a segment waits at most: the directions of a merged capture are apart by
/// microseconds to milliseconds; bytes that have not come after this long were lost, and a flow
/// that goes quiet after a loss must not hold its alerts back for its lifetime.
const WAIT_PATIENCE: Duration = Duration::from_secs(1);

/// Segments a flow keeps waiting for the other side at most (both sides): a skew of a few round
/// trips.
const WAITING_SEGMENTS: usize = 32;

/// One table entry. Kept small (the key lives beside it in the table, the buffers behind a box)
/// because every packet of a capture reads one entry at random: the smaller the entries, the
/// more of them stay in the CPU caches.
struct Flow<A> {
    /// [`FlowInfo::id`], computed once when the flow starts.
    id: u64,
    last_seen: Timestamp,
    /// Both sides sent FIN, or one sent RST: only stragglers are left to come.
    closing: bool,
    /// Closing for a RST near where its sender's stream stood but not there: the endpoints may
    /// have ignored it (RFC 5961 answers one with a challenge ACK). New bytes undo the closing.
    reset_unconfirmed: bool,
    streams: Streams<A>,
    /// The side that sent the SYN, when the handshake was seen.
    syn_from: Option<Side>,
    /// [`FlowInfo::syn_seen`].
    syn_seen: [bool; 2],
    carried_data: bool,
    fin: [bool; 2],
    /// The handler was told of a differing overlap already (once per flow is enough to alert).
    overlap_reported: bool,
    /// A segment waits for the other side (see [`Waiting`]): kept beside the box so that the
    /// other side's pure ACKs can check for it without reading the box.
    waiting: bool,
}

impl<A> Flow<A> {
    /// The SYN that opened the flow, by side and sequence number, as far as the flow still knows
    /// it (see [`Streams::Bypassed`]).
    fn own_syn(&self) -> Option<(Side, u32)> {
        let side = self.syn_from?;
        let seq = match &self.streams {
            Streams::Embryonic { isn } => isn.get(side.index()).copied().flatten(),
            Streams::Inspecting(inspection) => inspection
                .streams
                .get(side.index())
                .and_then(StreamReassembler::first_seq)
                .map(|first| first.wrapping_sub(1)),
            Streams::Bypassed { syn_seq } => *syn_seq,
        }?;
        Some((side, seq))
    }

    fn info(&self, key: &FlowKey) -> FlowInfo {
        FlowInfo { id: self.id, key: *key, syn_from: self.syn_from, syn_seen: self.syn_seen }
    }

    /// Bytes of the flow counted in the table's total: reorder windows, compare tails and what
    /// the handler holds.
    fn counted_bytes(&self) -> usize {
        match &self.streams {
            Streams::Inspecting(inspection) => {
                inspection.streams.iter().map(StreamReassembler::buffered_bytes).sum::<usize>()
                    + inspection.held
                    + inspection.waiting.as_ref().map_or(0, |waiting| waiting.bytes())
            }
            Streams::Embryonic { .. } | Streams::Bypassed { .. } => 0,
        }
    }
}

/// The table's state that a packet's flow step updates besides the flow itself.
struct Budget<'t> {
    limits: &'t FlowLimits,
    buffered_total: &'t mut usize,
    stats: &'t mut FlowStats,
}

/// What a closed flow keeps while its stragglers may come.
#[derive(Clone, Copy, Debug)]
struct ClosedFlow {
    last_seen: Timestamp,
    /// Its SYN, by side and sequence number (see [`Streams::Bypassed`]).
    syn: Option<(Side, u32)>,
}

/// All flows of one worker.
pub struct FlowTable<H: FlowHandler> {
    /// Keyed with a secret seed: the keys come from the traffic (see [`crate::keyed_hash`]).
    flows: KeyedMap<FlowKey, Flow<H::App>>,
    /// Flows that ended (FIN both ways, or RST) with their inspection over: only the time of
    /// their latest packet, until `closed_timeout` passes, so that stragglers (the last ACK, a
    /// retransmitted FIN) do not start a new flow. Kept apart because on a busy link they
    /// outnumber the live flows several times over, and every packet looks up a live flow: in a
    /// table of live flows only, its entry is far more likely to be in the CPU caches.
    closed: KeyedMap<FlowKey, ClosedFlow>,
    /// When the latest pass over the whole table looked for timed-out flows.
    swept_at: Option<Timestamp>,
    /// Packet time as the caller's latest [`expire`](Self::expire) said: what `make_room` measures
    /// idleness by, since one packet's own timestamp may be a glitch years ahead.
    now: Option<Timestamp>,
    limits: FlowLimits,
    buffered_total: usize,
    pub stats: FlowStats,
}

impl<H: FlowHandler> FlowTable<H> {
    pub fn new(limits: FlowLimits) -> Self {
        FlowTable {
            flows: KeyedMap::default(),
            closed: KeyedMap::default(),
            swept_at: None,
            now: None,
            limits,
            buffered_total: 0,
            stats: FlowStats::default(),
        }
    }

    /// Flows tracked, closed ones waiting for their stragglers included.
    pub fn len(&self) -> usize {
        self.flows.len() + self.closed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.closed.is_empty()
    }

    /// Bytes buffered out of order across all flows.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_total
    }

    /// Feeds one packet to its flow. A packet of a known flow costs one table lookup.
    pub fn process(&mut self, packet: &TcpPacket<'_>, ts: Timestamp, handler: &mut H) {
        let (key, side) = FlowKey::of(packet);
        let flags = packet.flags;
        // A new SYN on a finished connection, or one that cannot be this connection's: the port
        // pair was reused.
        let new_connection = flags.syn() && !flags.ack();
        if let Some(flow) = self.flows.get_mut(&key) {
            let ends = new_connection
                && flow.own_syn() != Some((side, packet.seq))
                && (flow.closing || starts_another_connection(flow, side, packet.seq));
            if !ends {
                let mut budget =
                    Budget { limits: &self.limits, buffered_total: &mut self.buffered_total, stats: &mut self.stats };
                step(flow, &key, side, packet, ts, handler, &mut budget);
                if flow.closing && matches!(flow.streams, Streams::Bypassed { .. }) {
                    let closed = ClosedFlow { last_seen: flow.last_seen, syn: flow.own_syn() };
                    self.flows.remove(&key);
                    self.closed.insert(key, closed);
                }
                return;
            }
            let reason = if flow.closing { CloseReason::Fin } else { CloseReason::Reused };
            self.close(&key, reason, handler);
        } else if let Some(closed) = self.closed.get_mut(&key) {
            if !new_connection || closed.syn == Some((side, packet.seq)) {
                closed.last_seen = closed.last_seen.max(ts);
                self.stats.packets_bypassed += 1;
                return;
            }
            self.closed.remove(&key);
            self.stats.flows_closed += 1;
        }
        if flags.rst() || (packet.payload.is_empty() && !flags.syn()) {
            return;
        }
        self.make_room(ts, handler);
        let syn_from = match (flags.syn(), flags.ack()) {
            (true, false) => Some(side),
            (true, true) => Some(side.other()),
            _ => None,
        };
        let flow = Flow {
            id: flow_id(&key, ts),
            last_seen: ts,
            closing: false,
            reset_unconfirmed: false,
            streams: Streams::Embryonic { isn: [None; 2] },
            syn_from,
            syn_seen: [false; 2],
            carried_data: false,
            fin: [false; 2],
            overlap_reported: false,
            waiting: false,
        };
        let flow = self.flows.entry(key).or_insert(flow);
        self.stats.flows_created += 1;
        let mut budget =
            Budget { limits: &self.limits, buffered_total: &mut self.buffered_total, stats: &mut self.stats };
        step(flow, &key, side, packet, ts, handler, &mut budget);
    }

    /// Ends flows whose time is up, on packet time. A pass over the table made less than
    /// [`SWEEP_INTERVAL`] ago (by `make_room` under a flood) counts as done: flows may outlive
    /// their timeout by that much, and a flood costs one pass per interval, not two. A pass made
    /// later than `now` does not count: time was taken back (a file older than the one before).
    pub fn expire(&mut self, now: Timestamp, handler: &mut H) {
        self.now = Some(now);
        if self.swept_at.is_some_and(|at| at <= now && now.saturating_since(at) < SWEEP_INTERVAL) {
            return;
        }
        self.swept_at = Some(now);
        let limits = self.limits;
        let expired: Vec<(FlowKey, Flow<H::App>)> =
            self.flows.extract_if(|_, flow| timed_out(flow, now, &limits)).collect();
        for (key, flow) in expired {
            self.stats.flows_timed_out += 1;
            self.end(&key, flow, CloseReason::Timeout, handler);
        }
        self.expire_closed(now);
    }

    /// Forgets the closed flows whose stragglers had `closed_timeout` to come.
    fn expire_closed(&mut self, now: Timestamp) {
        let before = self.closed.len();
        let timeout = self.limits.closed_timeout;
        self.closed.retain(|_, closed| now.saturating_since(closed.last_seen) <= timeout);
        self.stats.flows_timed_out += (before - self.closed.len()) as u64;
    }

    /// Ends every flow (end of input, shutdown).
    pub fn close_all(&mut self, handler: &mut H) {
        self.closed.clear();
        let flows = std::mem::take(&mut self.flows);
        for (key, flow) in flows {
            self.end(&key, flow, CloseReason::EndOfInput, handler);
        }
    }

    fn close(&mut self, key: &FlowKey, reason: CloseReason, handler: &mut H) {
        if let Some(flow) = self.flows.remove(key) {
            self.end(key, flow, reason, handler);
        }
    }

    /// A flow taken out of the table: what its streams still buffer is delivered, then the
    /// handler hears it closed (if it was still inspecting it).
    fn end(&mut self, key: &FlowKey, mut flow: Flow<H::App>, reason: CloseReason, handler: &mut H) {
        self.buffered_total = self.buffered_total.saturating_sub(flow.counted_bytes());
        let (info, ts) = (flow.info(key), flow.last_seen);
        if reason == CloseReason::Evicted && flow.eviction_class() == EvictionClass::Inspecting {
            self.stats.inspected_evicted += 1;
        }
        if let Streams::Inspecting(inspection) = &mut flow.streams {
            if inspection.waiting.is_some() {
                // What they waited for will not all come: they go in between the other side's
                // bytes, as far as the capture shows where.
                let mut uncounted = 0; // the flow's bytes left the budget above
                let mut budget =
                    Budget { limits: &self.limits, buffered_total: &mut uncounted, stats: &mut self.stats };
                let overlap_reported = &mut flow.overlap_reported;
                release_due(inspection, true, None, &info, ts, handler, &mut budget, overlap_reported);
            }
            let Inspection { streams, app, .. } = &mut **inspection;
            for (side, stream) in [Side::Lo, Side::Hi].into_iter().zip(streams.iter_mut()) {
                let mut inspect = Inspect::Continue;
                stream.flush(&mut self.stats.reassembly, &mut |chunk| {
                    if inspect == Inspect::Continue {
                        inspect = handler.event(&info, app, chunk_event(side, chunk, false), ts);
                    }
                });
            }
            handler.event(&info, app, FlowEvent::Closed(reason), ts);
        }
        match reason {
            CloseReason::Evicted => self.stats.flows_evicted += 1,
            CloseReason::Fin | CloseReason::Reset | CloseReason::Reused => self.stats.flows_closed += 1,
            CloseReason::Timeout | CloseReason::EndOfInput => {}
        }
    }

    /// Keeps the table under its flow limit: first closed flows waiting for stragglers (all of
    /// them: nothing is inspected there any more), then what has timed out, then the rest by
    /// [`EvictionClass`], the least recently seen first in each, up to an eighth of the table in
    /// all (amortised O(1) per new flow, whatever the flood). One pass over the table finds what has timed out and the age (with
    /// the flow id to break ties) of the newest live flow to evict, a second takes them out:
    /// under a flood this runs about every eighth of the table's size. The choice depends only
    /// on what the table holds, never on the order the map keeps it in (which changes with the
    /// map's seed from run to run), so a capture read twice evicts the same flows.
    fn make_room(&mut self, packet_ts: Timestamp, handler: &mut H) {
        if self.len() < self.limits.max_flows {
            return;
        }
        // The packet's time, within a sweep interval of the table's: a packet stamped far off
        // (a glitch) times nothing out, and a tick in the same interval counts this pass as its own.
        let now = self.now.map_or(packet_ts, |now| packet_ts.clamp(now, now.saturating_add(SWEEP_INTERVAL)));
        if !self.closed.is_empty() {
            self.expire_closed(now);
            self.stats.flows_evicted += self.closed.len() as u64;
            self.closed.clear();
            if self.len() < self.limits.max_flows {
                return;
            }
        }
        let limits = self.limits;
        self.swept_at = Some(now);
        let flows = self.flows.len();
        let mut ages: Vec<(EvictionClass, Timestamp, u64)> = self
            .flows
            .values()
            .filter(|flow| !timed_out(flow, now, &limits))
            .map(|flow| (flow.eviction_class(), flow.last_seen, flow.id))
            .collect();
        // Live flows go too when timed-out ones are not enough: those that cost least to lose
        // first, the least recently seen first among them.
        let to_evict = (flows / 8).max(1).saturating_sub(flows - ages.len());
        let cutoff = match to_evict.checked_sub(1) {
            Some(nth) if nth < ages.len() => Some(*ages.select_nth_unstable(nth).1),
            _ => None,
        };
        drop(ages); // Up to 24 bytes per flow: gone before the flows' ends are reported.
        let leaving: Vec<(FlowKey, Flow<H::App>)> = self
            .flows
            .extract_if(|_, flow| {
                timed_out(flow, now, &limits)
                    || cutoff.is_some_and(|cutoff| (flow.eviction_class(), flow.last_seen, flow.id) <= cutoff)
            })
            .collect();
        for (key, flow) in leaving {
            if timed_out(&flow, now, &limits) {
                self.stats.flows_timed_out += 1;
                self.end(&key, flow, CloseReason::Timeout, handler);
            } else {
                self.end(&key, flow, CloseReason::Evicted, handler);
            }
        }
    }
}

/// What losing a flow to eviction costs, least first: one that never carried data (a SYN flood's)
/// loses nothing yet; one no longer inspected is read again from its middle if it goes on; one
/// being inspected loses the login it may be in the middle of.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EvictionClass {
    Embryonic,
    Bypassed,
    Inspecting,
}

impl<A> Flow<A> {
    fn eviction_class(&self) -> EvictionClass {
        match self.streams {
            Streams::Embryonic { .. } => EvictionClass::Embryonic,
            Streams::Bypassed { .. } => EvictionClass::Bypassed,
            Streams::Inspecting(_) => EvictionClass::Inspecting,
        }
    }
}

/// One packet of a known flow: timestamps, handshake, reassembly and the handler, close flags.
fn step<H: FlowHandler>(
    flow: &mut Flow<H::App>,
    key: &FlowKey,
    side: Side,
    packet: &TcpPacket<'_>,
    ts: Timestamp,
    handler: &mut H,
    budget: &mut Budget<'_>,
) {
    let flags = packet.flags;
    flow.last_seen = flow.last_seen.max(ts);
    if let Streams::Bypassed { .. } = flow.streams {
        // Most packets of a capture belong to flows no longer inspected (bulk transfers, TLS,
        // mail after the login): timestamps and close flags, done.
        budget.stats.packets_bypassed += 1;
        note_close_flags(flow, side, packet);
        return;
    }
    if flags.syn() {
        if flow.syn_from.is_none() && !flow.carried_data {
            flow.syn_from = Some(if flags.ack() { side.other() } else { side });
        }

        if let Some(seen) = flow.syn_seen.get_mut(side.index()) {
            *seen = true;
        }
    }
    // A SYN-ACK also tells where the peer's stream starts: its SYN may come later in the capture
    // (the directions taken apart) or not at all, and what the server says must wait for the
    // client's bytes it acknowledges.
    let peer_isn = (flags.syn() && flags.ack()).then(|| packet.ack.wrapping_sub(1));
    match &mut flow.streams {
        Streams::Embryonic { isn } if flags.syn() => {
            if let Some(isn) = isn.get_mut(side.index()) {
                // A SYN-ACK's own number outranks one read from the handshake's last ACK.
                if flags.ack() {
                    *isn = Some(packet.seq);
                } else {
                    isn.get_or_insert(packet.seq);
                }
            }
            if let (Some(peer_isn), Some(isn)) = (peer_isn, isn.get_mut(side.other().index())) {
                isn.get_or_insert(peer_isn);
            }
        }
        // The handshake's last ACK, captured before the SYN-ACK (two taps whose clocks are a
        // few milliseconds apart), tells where the server's stream starts: the client's first
        // command then waits for the greeting it acknowledges instead of going in before it.
        Streams::Embryonic { isn } if flags.ack() && packet.payload.is_empty() && flow.syn_from == Some(side) => {
            if let Some(peer @ None) = isn.get_mut(side.other().index()) {
                *peer = Some(packet.ack.wrapping_sub(1));
            }
        }
        Streams::Inspecting(inspection) if flags.syn() => {
            stream_of(&mut inspection.streams, side).on_syn(packet.seq);
            if let Some(peer_isn) = peer_isn {
                stream_of(&mut inspection.streams, side.other()).on_syn(peer_isn);
            }
        }
        _ => {}
    }
    if packet.payload.is_empty() {
        if let (true, Streams::Inspecting(inspection)) = (flags.fin(), &mut flow.streams) {
            inspection.note_fin(side, packet);
        }
        if flow.waiting {
            // Segments of the other side may have waited for this FIN, or long enough.
            let info = flow.info(key);
            if let Streams::Inspecting(inspection) = &mut flow.streams {
                let overlap_reported = &mut flow.overlap_reported;
                let sending = Sending::of(side, packet);
                let inspect = release_due(inspection, false, sending, &info, ts, handler, budget, overlap_reported);
                flow.waiting = inspection.waiting.is_some();
                let Inspection { streams, app, held, .. } = &mut **inspection;
                account_held(streams, held, app, handler, budget, &info, ts);
                finish_step(flow, side, packet, inspect, budget);
                return;
            }
        }
        note_close_flags(flow, side, packet);
        return;
    }
    flow.carried_data = true;
    let info = flow.info(key);
    if let Streams::Embryonic { isn } = flow.streams {
        let mut streams = [StreamReassembler::new(), StreamReassembler::new()];
        for (stream, isn) in streams.iter_mut().zip(isn) {
            if let Some(isn) = isn {
                stream.on_syn(isn);
            }
        }
        if flags.ack() {
            // Picked up without the other side's SYN: this acknowledgement says where its bytes
            // go on (its first segments may come later in the capture, in any order).
            stream_of(&mut streams, side.other()).starts_by(packet.ack);
        }
        let app = handler.open(&info);
        flow.streams = Streams::Inspecting(Box::new(Inspection::new(streams, app, flow.fin)));
    }
    let standing = flow.reset_unconfirmed.then(|| stream_position(flow, side));
    let Streams::Inspecting(inspection) = &mut flow.streams else { return };
    let seq = if flags.syn() { packet.seq.wrapping_add(1) } else { packet.seq };
    inspection.note_fin(side, packet);
    let acknowledges_undelivered = flags.ack() && !inspection.has_delivered(side.other(), packet.ack, true);
    let ack = flags.ack().then_some(packet.ack);
    let segment = SegmentIn { seq, ack, payload: packet.payload, missing: packet.payload_missing };
    let inspect = if flow.waiting || acknowledges_undelivered {
        step_out_of_order(inspection, &info, side, segment, packet, ts, handler, budget, &mut flow.overlap_reported)
    } else {
        reassemble(inspection, &info, side, segment, ts, handler, budget, &mut flow.overlap_reported)
    };
    flow.waiting = inspection.waiting.is_some();
    let Inspection { streams, app, held, .. } = &mut **inspection;
    account_held(streams, held, app, handler, budget, &info, ts);
    if standing.is_some_and(|standing| stream_position(flow, side) != standing) {
        // New bytes after a reset: the endpoints ignored it, and the flow lives on instead of
        // ending a closing timeout after it (the rest of its login read as picked up midway).
        flow.closing = false;
        flow.reset_unconfirmed = false;
    }
    finish_step(flow, side, packet, inspect, budget);
}

/// The close flags, then, when the handler has seen enough, the flow keeps only its TCP state.
#[inline(always)]
fn finish_step<A>(flow: &mut Flow<A>, side: Side, packet: &TcpPacket<'_>, inspect: Inspect, budget: &mut Budget<'_>) {
    note_close_flags(flow, side, packet);
    if inspect == Inspect::Stop {
        *budget.buffered_total = budget.buffered_total.saturating_sub(flow.counted_bytes());
        let syn_seq = flow.own_syn().map(|(_, seq)| seq);
        flow.streams = Streams::Bypassed { syn_seq };
        flow.waiting = false;
    }
}

/// A data segment when the capture shows the two directions out of order (see [`Waiting`]): one
/// that acknowledges bytes of the other side not delivered yet waits, any other goes in, and
/// then whatever waited for it.
#[allow(clippy::too_many_arguments)]
#[cold]
fn step_out_of_order<H: FlowHandler>(
    inspection: &mut Inspection<H::App>,
    info: &FlowInfo,
    side: Side,
    segment: SegmentIn<'_>,
    packet: &TcpPacket<'_>,
    ts: Timestamp,
    handler: &mut H,
    budget: &mut Budget<'_>,
    overlap_reported: &mut bool,
) -> Inspect {
    let len = segment.payload.len();
    let waits = packet.flags.ack() && !inspection.has_delivered(side.other(), packet.ack, true);
    let fits = budget.buffered_total.saturating_add(len) <= budget.limits.max_buffered_total;
    if !(waits && fits) {
        // Nothing to wait for (or no room to wait): in it goes, and what waited for it may follow.
        let inspect = reassemble(inspection, info, side, segment, ts, handler, budget, overlap_reported);
        if inspect == Inspect::Stop {
            return inspect;
        }
        let sending = Sending::of(side, packet);
        return release_due(inspection, false, sending, info, ts, handler, budget, overlap_reported);
    }
    let after = packet.ack;
    budget.stats.segments_waited += 1;
    *budget.buffered_total += len;
    let waiting = inspection.waiting.get_or_insert_with(|| Box::new(Waiting { queues: Default::default() }));
    if let Some(queue) = waiting.queues.get_mut(side.index()) {
        queue.push_back(WaitingSegment::new(&segment, after, ts));
    }
    let over = waiting.segments() > WAITING_SEGMENTS || waiting.bytes() > budget.limits.reassembly.max_buffered;
    release_due(inspection, over, Sending::of(side, packet), info, ts, handler, budget, overlap_reported)
}

/// A side seen sending from `seq` on (a SYN or bytes, not a bare ACK or keepalive): segments
/// waiting for its bytes before `seq` go on waiting, those bytes being on their way (a direction
/// captured seconds late), not lost.
#[derive(Clone, Copy)]
struct Sending {
    side: Side,
    seq: u32,
}

impl Sending {
    fn of(side: Side, packet: &TcpPacket<'_>) -> Option<Sending> {
        (packet.flags.syn() || !packet.payload.is_empty()).then_some(Sending { side, seq: packet.seq })
    }

    /// Whether the bytes a segment of `side` waits for, before `after`, are on their way.
    fn brings(&self, side: Side, after: u32) -> bool {
        self.side == side.other() && seq::before(self.seq, after)
    }
}

/// A data segment on its way to a reassembler.
struct SegmentIn<'p> {
    seq: u32,
    /// The acknowledgement number, when the ACK flag is set.
    ack: Option<u32>,
    payload: &'p [u8],
    /// Bytes the snap length cut off after the payload.
    missing: u32,
}

/// Hands a segment of `side` to its reassembler and the handler what becomes contiguous, within
/// the global budget; tells whether the handler wants more. Inlined: this is the path of nearly
/// every data packet (the others are rare).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn reassemble<H: FlowHandler>(
    inspection: &mut Inspection<H::App>,
    info: &FlowInfo,
    side: Side,
    segment: SegmentIn<'_>,
    ts: Timestamp,
    handler: &mut H,
    budget: &mut Budget<'_>,
    overlap_reported: &mut bool,
) -> Inspect {
    // Buffered bytes this segment delivers behind its own take its acknowledgement: sent (or sent
    // again) before any reply to them, it covers none (but for a retransmission sent needlessly
    // after a reply came, which a capture seldom holds).
    let acked_all = segment.ack.is_some_and(|ack| inspection.acknowledges_exactly(side.other(), ack));
    let Inspection { streams, app, held_acks, .. } = inspection;
    let stream = stream_of(streams, side);
    let mut inspect = Inspect::Continue;
    let before = stream.buffered_bytes();
    let stats = &mut *budget.stats;
    let differing_before = stats.reassembly.overlaps_differing;
    let limits = &budget.limits.reassembly;
    let mut deliver = |chunk: StreamChunk<'_>| {
        if inspect == Inspect::Continue {
            inspect = handler.event(info, app, chunk_event(side, chunk, acked_all), ts);
        }
    };
    stream.on_segment(segment.seq, segment.payload, limits, &mut stats.reassembly, &mut deliver);
    let kept_end = segment.seq.wrapping_add(segment.payload.len() as u32);
    stream.cut_off(kept_end, segment.missing, limits, &mut stats.reassembly, &mut deliver);
    if let (Some(ack), Some(held_ack)) = (segment.ack, held_acks.get_mut(side.index())) {
        if stream.first_held_seq() == Some(segment.seq) {
            *held_ack = Some((segment.seq, ack));
        }
    }
    if stats.reassembly.overlaps_differing > differing_before && !*overlap_reported {
        *overlap_reported = true;
        if inspect == Inspect::Continue {
            inspect = handler.event(info, app, FlowEvent::OverlapDifferentData(side), ts);
        }
    }
    let after = stream.buffered_bytes();
    let total = budget.buffered_total.saturating_sub(before).saturating_add(after);
    *budget.buffered_total = total;
    if total > budget.limits.max_buffered_total && after > 0 {
        stats.memcap_skips += 1;
        stream.flush(&mut stats.reassembly, &mut |chunk| {
            if inspect == Inspect::Continue {
                inspect = handler.event(info, app, chunk_event(side, chunk, false), ts);
            }
        });
        *budget.buffered_total = budget.buffered_total.saturating_sub(after);
    }
    inspect
}

/// Lets in the waiting segments whose acknowledged bytes the other side's stream has delivered
/// (its FIN counted), the earliest captured first, until none is left that may. With
/// `all` (the queues are over their bounds, or the flow ends), or once a segment has waited
/// [`WAIT_PATIENCE`] by `ts` (and no packet `sending` shows its bytes coming), a segment held up
/// by bytes that did not come goes in after the other side's stream gives them up as gaps (see
/// [`next_to_release`]).
#[allow(clippy::too_many_arguments)]
#[cold]
fn release_due<H: FlowHandler>(
    inspection: &mut Inspection<H::App>,
    all: bool,
    sending: Option<Sending>,
    info: &FlowInfo,
    ts: Timestamp,
    handler: &mut H,
    budget: &mut Budget<'_>,
    overlap_reported: &mut bool,
) -> Inspect {
    let mut inspect = Inspect::Continue;
    while inspect == Inspect::Continue {
        let Some((side, index, give_up)) = next_to_release(inspection, all, sending, ts) else { break };
        let Some(waiting) = inspection.waiting.as_deref_mut() else { break };
        let Some(segment) = waiting.queues.get_mut(side.index()).and_then(|queue| queue.remove(index)) else { break };
        let awaited_sends = waiting.queue(side.other()).is_some_and(|queue| !queue.is_empty());
        if waiting.segments() == 0 {
            inspection.waiting = None;
        }
        *budget.buffered_total = budget.buffered_total.saturating_sub(segment.payload.len());
        if give_up {
            let awaited = side.other();
            // The first bytes after the gap are the held segment's: they take its
            // acknowledgement (a line sent having the other side's every byte, lost ones too).
            let mut held_acked = inspection.held_bytes_acknowledge_exactly(awaited);
            let Inspection { streams, app, .. } = &mut *inspection;
            let mut deliver = |chunk: StreamChunk<'_>| {
                let acked_all = matches!(chunk, StreamChunk::Data(_)) && std::mem::take(&mut held_acked);
                if inspect == Inspect::Continue {
                    inspect = handler.event(info, app, chunk_event(awaited, chunk, acked_all), ts);
                }
            };
            let stream = stream_of(streams, awaited);
            if !info.saw_syn_from(awaited) && !awaited_sends && stream.is_untouched() {
                // Its start was read from the handshake (its SYN lost) and it never sent a byte:
                // a capture of one direction (an asymmetric route) lost nothing, and nothing is
                // to wait for that side again. A side with segments waiting does send: the bytes
                // before them were lost, a gap to report.
                stream.forget_start();
            }
            let before = stream.buffered_bytes();
            stream.flush_before(segment.after, &budget.limits.reassembly, &mut budget.stats.reassembly, &mut deliver);
            let gone = before.saturating_sub(stream.buffered_bytes());
            *budget.buffered_total = budget.buffered_total.saturating_sub(gone);
            if inspect == Inspect::Stop {
                break;
            }
        }
        inspect = reassemble(inspection, info, side, segment.as_segment(), ts, handler, budget, overlap_reported);
    }
    inspect
}

/// The waiting segment to let in next (its side, its place in the side's queue), and whether the
/// bytes it waits for are to be given up first; `None` while every one may still wait.
fn next_to_release<A>(
    inspection: &Inspection<A>,
    all: bool,
    sending: Option<Sending>,
    ts: Timestamp,
) -> Option<(Side, usize, bool)> {
    let waiting = inspection.waiting.as_deref()?;
    let queued = || {
        [Side::Lo, Side::Hi].into_iter().flat_map(|side| {
            waiting.queue(side).into_iter().flatten().enumerate().map(move |(index, segment)| (side, index, segment))
        })
    };
    let delivered = |side: Side, seq: u32, with_fin: bool| inspection.has_delivered(side, seq, with_fin);
    let due = queued()
        .filter(|(side, _, segment)| delivered(side.other(), segment.after, true))
        .min_by_key(|(side, index, segment)| (segment.since, side.index(), *index));
    if let Some((side, index, _)) = due {
        return Some((side, index, false));
    }
    // Bytes seen coming are not given up for lost (see [`Sending`]); the other side's packets,
    // the bounds and the flow's end do give them up.
    let may_give_up = |side: Side, segment: &WaitingSegment| {
        all || !sending.is_some_and(|sending| sending.brings(side, segment.after))
    };
    if !all
        && !queued()
            .any(|(side, _, segment)| may_give_up(side, segment) && ts.saturating_since(segment.since) > WAIT_PATIENCE)
    {
        return None;
    }
    // Held up by bytes the capture lost. The one sent first goes first: it does not wait for
    // bytes that wait in the other queue (acknowledgements follow what was received).
    let awaits_queued_bytes = |side: Side, after: u32| {
        waiting.queue(side.other()).into_iter().flatten().any(|other| {
            let end = other.seq.wrapping_add(other.payload.len() as u32);
            seq::before(other.seq, after) && !delivered(side.other(), end, false)
        })
    };
    queued()
        .filter(|(side, _, segment)| may_give_up(*side, segment))
        .min_by_key(|(side, index, segment)| {
            (awaits_queued_bytes(*side, segment.after), segment.since, side.index(), *index)
        })
        .map(|(side, index, _)| (side, index, true))
}

fn stream_of(streams: &mut [StreamReassembler; 2], side: Side) -> &mut StreamReassembler {
    let [lo, hi] = streams;
    match side {
        Side::Lo => lo,
        Side::Hi => hi,
    }
}

/// Counts what a flow holds besides its reorder windows into the global budget; past the budget
/// the flow sheds it (its partial line is lost, as after a gap), so that a flood of flows that
/// never finish a line stays within `max_buffered_total` too. Inlined: every data packet ends here.
#[inline(always)]
fn account_held<H: FlowHandler>(
    streams: &mut [StreamReassembler; 2],
    counted: &mut usize,
    app: &mut H::App,
    handler: &mut H,
    budget: &mut Budget<'_>,
    info: &FlowInfo,
    ts: Timestamp,
) {
    let tails =
        |streams: &[StreamReassembler; 2]| streams.iter().map(StreamReassembler::compare_tail_bytes).sum::<usize>();
    let mut held = tails(streams) + handler.buffered(app);
    let total = &mut *budget.buffered_total;
    if held > 0 && total.saturating_sub(*counted).saturating_add(held) > budget.limits.max_buffered_total {
        budget.stats.memcap_sheds += 1;
        handler.shed(info, app, ts);
        streams.iter_mut().for_each(StreamReassembler::release_compare_tail);
        held = tails(streams) + handler.buffered(app);
    }
    *total = total.saturating_sub(*counted).saturating_add(held);
    *counted = held;
}

/// The event for a chunk of `side`'s stream; `acked_all` as in [`FlowEvent::Data`].
fn chunk_event(side: Side, chunk: StreamChunk<'_>, acked_all: bool) -> FlowEvent<'_> {
    match chunk {
        StreamChunk::Data(bytes) => FlowEvent::Data { side, bytes, acked_all },
        StreamChunk::Gap(len) => FlowEvent::Gap(side, len),
        StreamChunk::CutOff(len) => FlowEvent::CutOff(side, len),
    }
}

fn note_close_flags<A>(flow: &mut Flow<A>, side: Side, packet: &TcpPacket<'_>) {
    if packet.flags.fin() {
        if let Some(fin) = flow.fin.get_mut(side.index()) {
            *fin = true;
        }
    }
    if packet.flags.rst() {
        if let Some(standing) = reset_standing(flow, side, packet.seq) {
            // A reset near where the stream stood leaves the flow closing for now; one there (or
            // a flow already closing otherwise) settles it.
            flow.reset_unconfirmed = match standing {
                ResetStanding::There => false,
                ResetStanding::Near => flow.reset_unconfirmed || !flow.closing,
            };
            flow.closing = true;
        }
    }
    if flow.fin.iter().all(|fin| *fin) {
        flow.closing = true;
        flow.reset_unconfirmed = false;
    }
}

/// How far from where a side's stream stands a sequence number may be and still belong to it:
/// bytes in flight that the capture missed, far more than a mail exchange keeps in flight.
const SEQ_SLACK: u32 = 1 << 20;

/// Whether `seq` lies within [`SEQ_SLACK`] of `reference`, either way.
fn near(seq: u32, reference: u32) -> bool {
    seq.wrapping_sub(reference) <= SEQ_SLACK || reference.wrapping_sub(seq) <= SEQ_SLACK
}

/// Where `side`'s stream stands: its next byte, or the one after its SYN; `None` when nothing of
/// it was seen (or the flow keeps no streams).
fn stream_position<A>(flow: &Flow<A>, side: Side) -> Option<u32> {
    match &flow.streams {
        Streams::Embryonic { isn } => isn.get(side.index()).copied().flatten().map(|isn| isn.wrapping_add(1)),
        Streams::Inspecting(inspection) => inspection.streams.get(side.index()).and_then(StreamReassembler::next_seq),
        Streams::Bypassed { .. } => None,
    }
}

/// Where a RST lies against its sender's stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ResetStanding {
    /// Where the stream stands (or the flow keeps no position): the endpoints take it.
    There,
    /// Near but not there: the endpoints may ignore it (RFC 5961's challenge ACK).
    Near,
}

/// A RST ends the connection only if its sequence number is near where the sender's stream
/// stands: the endpoints ignore one far outside the window (RFC 5961), and so must a reader of
/// the capture (a stale reset of an earlier connection on the port pair, a middlebox's guess),
/// or the login after it is read as a new connection without its greeting. `None` for one that
/// far.
fn reset_standing<A>(flow: &Flow<A>, side: Side, seq: u32) -> Option<ResetStanding> {
    match stream_position(flow, side) {
        None => Some(ResetStanding::There),
        Some(position) if seq == position => Some(ResetStanding::There),
        Some(position) if near(seq, position) => Some(ResetStanding::Near),
        Some(_) => None,
    }
}

/// A SYN (no ACK) from `side` on a flow that is not closing starts another connection on the same
/// port pair when it cannot be this one's: the capture missed the old connection's end (a FIN or
/// RST lost, a client that died and reused its port), as Wireshark's "TCP port numbers reused".
/// A retransmitted SYN carries the flow's initial sequence number; one captured behind its
/// connection's first data (the directions merged out of order) lies just before that data (a
/// new connection whose random initial number falls there, one in 4 096, is missed). A flow no
/// longer inspected keeps no sequence numbers: a SYN after its data is another connection (a
/// SYN is retransmitted only before the handshake completes), its own SYN seen or not (a flow
/// picked up midstream, whose client reconnects from the same port, would otherwise swallow
/// the new connection until it idled out).
fn starts_another_connection<A>(flow: &Flow<A>, side: Side, syn_seq: u32) -> bool {
    let first = syn_seq.wrapping_add(1);
    match &flow.streams {
        Streams::Embryonic { isn } => isn.get(side.index()).copied().flatten().is_some_and(|isn| isn != syn_seq),
        Streams::Inspecting(inspection) => inspection
            .streams
            .get(side.index())
            .and_then(StreamReassembler::first_seq)
            .is_some_and(|start| !near(first, start) || seq::before(start, first)),
        Streams::Bypassed { .. } => flow.carried_data,
    }
}

/// How long a flow closing for a reset its endpoints may have ignored waits for bytes that would
/// say so (a user typing a password after a middlebox's stray reset).
const UNCONFIRMED_RESET_TIMEOUT: Duration = Duration::from_secs(30);

fn timed_out<A>(flow: &Flow<A>, now: Timestamp, limits: &FlowLimits) -> bool {
    let timeout = if flow.closing && flow.reset_unconfirmed {
        UNCONFIRMED_RESET_TIMEOUT.max(limits.closed_timeout)
    } else if flow.closing {
        limits.closed_timeout
    } else if flow.carried_data {
        limits.idle_timeout
    } else {
        limits.embryonic_timeout
    };
    now.saturating_since(flow.last_seen) > timeout
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
    use proptest::prelude::*;
    use std::hash::BuildHasher;
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
                FlowEvent::Data { .. } => {
                    self.data_events += 1;
                    Inspect::Stop
                }
                FlowEvent::Closed(reason) => {
                    self.closed.push(reason);
                    Inspect::Continue
                }
                FlowEvent::Gap(..) | FlowEvent::CutOff(..) | FlowEvent::OverlapDifferentData(_) => Inspect::Continue,
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
    const SYN_ACK: u8 = TcpFlags::SYN | TcpFlags::ACK;

    /// SYNs from `count` IPv6 clients to [::1]:110 whose flow keys all have the same FxHash: the
    /// second word of each client address undoes what the first did to the hasher's state.
    fn fx_colliding_syns(count: u64) -> Vec<TcpPacket<'static>> {
        use rustc_hash::FxHasher;
        use std::hash::Hasher;
        const FX_ROTATE: u32 = 26;
        const TARGET: u64 = 0x5eed_5eed_5eed_5eed;
        let server: IpAddr = std::net::Ipv6Addr::LOCALHOST.into();
        let server_bits = 1u128;
        (1..=count)
            .map(|n| {
                let client_port = 40_000;
                // The words FlowKey::hash writes for the server (the lower endpoint), then the
                // client address's low word: the hasher's state is what `finish` rotated.
                let mut fx = FxHasher::default();
                fx.write_u64(server_bits as u64);
                fx.write_u64((server_bits >> 64) as u64 ^ 110 << 48 ^ 1);
                let low = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                fx.write_u64(low);
                let state = fx.finish().rotate_right(FX_ROTATE);
                let high = TARGET.wrapping_sub(state) ^ u64::from(client_port) << 48 ^ 1;
                let client = std::net::Ipv6Addr::from(u128::from(high) << 64 | u128::from(low));
                TcpPacket {
                    src: client.into(),
                    dst: server,
                    src_port: client_port,
                    dst_port: 110,
                    ..packet(0, true, SYN, 0, b"")
                }
            })
            .collect()
    }

    #[test]
    fn connections_crafted_to_collide_in_fxhash_do_not_collide_in_the_table() {
        let syns = fx_colliding_syns(5_000);
        let keys: Vec<FlowKey> = syns.iter().map(|syn| FlowKey::of(syn).0).collect();
        let fx: std::collections::HashSet<u64> =
            keys.iter().map(|key| rustc_hash::FxBuildHasher.hash_one(key)).collect();
        assert_eq!(fx.len(), 1, "the crafted keys all collide under FxHash");

        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = StopAtData::default();
        for syn in &syns {
            table.process(syn, at(0), &mut handler);
        }
        assert_eq!(table.len(), keys.len());
        let hashes: std::collections::HashSet<u64> =
            keys.iter().map(|key| table.flows.hasher().hash_one(key)).collect();
        assert_eq!(hashes.len(), keys.len(), "the table's hasher tells every crafted key apart");

        let other = FlowTable::<StopAtData>::new(FlowLimits::default());
        let key = keys.first().expect("keys");
        assert_ne!(
            table.flows.hasher().hash_one(key),
            other.flows.hasher().hash_one(key),
            "each table has its own seed"
        );
    }

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
            if let FlowEvent::Data { bytes, .. } = event {
                app.extend_from_slice(bytes);
            }
            Inspect::Continue
        }
        fn buffered(&self, app: &Vec<u8>) -> usize {
            app.len()
        }
        fn shed(&mut self, _info: &FlowInfo, app: &mut Vec<u8>, _ts: Timestamp) {
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
        let tails = |flow: &Flow<Vec<u8>>| match &flow.streams {
            Streams::Inspecting(inspection) => {
                inspection.streams.iter().map(StreamReassembler::compare_tail_bytes).sum::<usize>()
            }
            Streams::Embryonic { .. } | Streams::Bypassed { .. } => 0,
        };
        let app_len = |flow: &Flow<Vec<u8>>| match &flow.streams {
            Streams::Inspecting(inspection) => inspection.app.len(),
            Streams::Embryonic { .. } | Streams::Bypassed { .. } => 0,
        };
        let held: usize = table.flows.values().map(|flow| app_len(flow) + tails(flow)).sum();
        assert_eq!(table.buffered_bytes(), held);
        table.close_all(&mut handler);
        assert_eq!(table.buffered_bytes(), 0, "closing flows gives their bytes back");
    }

    /// Records the bytes it hears, in order, by side, and the gaps among them.
    #[derive(Default)]
    struct Recorder {
        heard: Vec<(Side, Vec<u8>)>,
        /// Every data and gap event as text: `C:` or `S:` and the bytes with whether their segment
        /// acknowledged all of the other side (`+`) or not (`-`); `C gap N`, `S gap N`.
        timeline: Vec<String>,
    }

    impl FlowHandler for Recorder {
        type App = ();
        fn open(&mut self, _info: &FlowInfo) {}
        fn event(&mut self, _info: &FlowInfo, _app: &mut (), event: FlowEvent<'_>, _ts: Timestamp) -> Inspect {
            let who = |side: Side| if side == Side::Lo { "C" } else { "S" };
            match event {
                FlowEvent::Data { side, bytes, acked_all } => {
                    self.heard.push((side, bytes.to_vec()));
                    let acked = if acked_all { '+' } else { '-' };
                    let text = String::from_utf8_lossy(bytes);
                    self.timeline.push(format!("{}{acked}{}", who(side), text.trim_end()));
                }
                FlowEvent::Gap(side, len) => self.timeline.push(format!("{} gap {len}", who(side))),
                _ => {}
            }
            Inspect::Continue
        }
    }

    const PSH_ACK: u8 = TcpFlags::PSH | TcpFlags::ACK;

    /// A packet of client port 40000's connection, acknowledging `ack`.
    fn acking(from_client: bool, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> TcpPacket<'_> {
        TcpPacket { ack, payload, ..packet(40_000, from_client, flags, seq, b"") }
    }

    /// A table that saw the handshake (client ISN 100, server ISN 500) and the server's greeting,
    /// 7 bytes from 501, and the handler that heard it.
    fn greeted() -> (FlowTable<Recorder>, Recorder) {
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(false, SYN | ACK, 500, 101, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 501, b""), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), at(0), &mut handler);
        (table, handler)
    }

    /// USER, its reply, PASS and its reply, after [`greeted`]'s greeting, each acknowledging what
    /// the other side sent before it.
    fn login() -> [TcpPacket<'static>; 4] {
        [
            acking(true, PSH_ACK, 101, 508, b"USER a\r\n"),
            acking(false, PSH_ACK, 508, 109, b"+OK\r\n"),
            acking(true, PSH_ACK, 109, 513, b"PASS b\r\n"),
            acking(false, PSH_ACK, 513, 117, b"-ERR\r\n"),
        ]
    }

    fn heard(handler: &Recorder) -> Vec<&[u8]> {
        handler.heard.iter().map(|(_, data)| data.as_slice()).collect()
    }

    #[test]
    fn a_segment_acknowledging_bytes_not_captured_yet_waits_for_them() {
        let (mut table, mut handler) = greeted();
        let tails = table.buffered_bytes();
        // The reply to USER, captured before USER (its ACK covers USER's 8 bytes).
        table.process(&acking(false, PSH_ACK, 508, 109, b"+OK\r\n"), at(1), &mut handler);
        assert_eq!(heard(&handler), [b"hello\r\n"]);
        assert_eq!(table.buffered_bytes(), tails + 5, "the waiting bytes count in the budget");
        table.process(&acking(true, PSH_ACK, 101, 508, b"USER a\r\n"), at(1), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n"]);
        assert_eq!(table.stats.segments_waited, 1);
        assert_eq!(table.buffered_bytes(), tails + 8 + 5, "only compare tails are left");
        // In capture order, nothing waits, not even after bytes the snap length cut off.
        table.process(&acking(true, PSH_ACK, 109, 513, b"PASS b\r\n"), at(2), &mut handler);
        let cut = TcpPacket { payload_missing: 20, ..acking(false, PSH_ACK, 513, 117, b"-ERR\r\n") };
        table.process(&cut, at(2), &mut handler);
        table.process(&acking(true, PSH_ACK, 117, 539, b"QUIT\r\n"), at(2), &mut handler);
        assert_eq!(heard(&handler)[3..], [&b"PASS b\r\n"[..], b"-ERR\r\n", b"QUIT\r\n"]);
        assert_eq!(table.stats.segments_waited, 1);
    }

    #[test]
    fn data_tells_whether_its_segment_acknowledged_exactly_the_other_sides_bytes() {
        // In order, each segment acknowledges all the other side sent: its sender had it all.
        let (mut table, mut handler) = greeted();
        for packet in login() {
            table.process(&packet, at(1), &mut handler);
        }
        assert_eq!(handler.timeline[1..], ["C+USER a", "S++OK", "C+PASS b", "S+-ERR"]);
        // A command sent before the reply before it came (pipelined) acknowledges less.
        table.process(&acking(true, PSH_ACK, 117, 513, b"QUIT\r\n"), at(1), &mut handler);
        assert_eq!(handler.timeline.last().map(String::as_str), Some("C-QUIT"));
        // A reply the capture lost: the next command, which acknowledged it, waits for it, goes in
        // after its gap, and shows its sender had received it.
        let (mut table, mut handler) = greeted();
        let [user, _lost_reply, pass, _] = login();
        table.process(&user, at(1), &mut handler);
        table.process(&pass, at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 513, 117, b"+OK in\r\n"), at(1), &mut handler);
        table.process(&acking(true, PSH_ACK, 117, 521, b"STAT\r\n"), at(3), &mut handler);
        assert_eq!(handler.timeline[1..], ["C+USER a", "S gap 5", "C+PASS b", "S++OK in", "C+STAT"]);
    }

    #[test]
    fn a_fin_beyond_bytes_the_capture_lost_does_not_stand_for_them() {
        // PASS's line end is lost; the reply acknowledges it, and the client's FIN comes after it.
        // The FIN does not cover the lost byte: the reply goes in after its gap, not before it.
        let (mut table, mut handler) = greeted();
        let [user, ok, _, _] = login();
        table.process(&user, at(1), &mut handler);
        table.process(&ok, at(1), &mut handler);
        table.process(&acking(true, PSH_ACK, 109, 513, b"PASS b\r"), at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 513, 117, b"-ERR\r\n"), at(1), &mut handler);
        table.process(&acking(true, FIN_ACK, 117, 519, b""), at(1), &mut handler);
        table.process(&acking(false, FIN_ACK, 519, 118, b""), at(1), &mut handler);
        table.process(&acking(true, ACK, 118, 520, b""), at(1), &mut handler);
        table.close_all(&mut handler);
        assert_eq!(handler.timeline[3..], ["C+PASS b", "C gap 1", "S+-ERR"]);
        // A FIN right after the bytes delivered is what an acknowledgement one past them covers:
        // the reply to a QUIT sent with its FIN goes in at once.
        let (mut table, mut handler) = greeted();
        table.process(&acking(true, FIN_ACK | PSH_ACK, 101, 508, b"QUIT\r\n"), at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 508, 108, b"+OK bye\r\n"), at(1), &mut handler);
        assert_eq!(handler.timeline[1..], ["C+QUIT", "S++OK bye"]);
        assert_eq!(table.stats.segments_waited, 0);
        // A stale or forged FIN behind the bytes delivered does not move where the FIN lies.
        let (mut table, mut handler) = greeted();
        table.process(&acking(true, PSH_ACK, 101, 508, b"QUIT\r\n"), at(1), &mut handler);
        table.process(&acking(true, FIN_ACK, 107, 508, b""), at(1), &mut handler);
        table.process(&acking(true, FIN_ACK, 103, 508, b""), at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 508, 108, b"+OK bye\r\n"), at(1), &mut handler);
        assert_eq!(handler.timeline[1..], ["C+QUIT", "S++OK bye"]);
        assert_eq!(table.stats.segments_waited, 0);
    }

    #[test]
    fn a_server_side_captured_late_from_its_syn_ack_on_still_greets_first() {
        // Two taps a few milliseconds apart: the client's whole side, its handshake ACK and its
        // first command included, is in the capture before the server's SYN-ACK and greeting.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 501, b""), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 101, 508, b"USER a\r\n"), at(0), &mut handler);
        table.process(&acking(false, SYN | ACK, 500, 101, b""), at(0), &mut handler);
        assert!(heard(&handler).is_empty(), "USER waits for the greeting it acknowledges");
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), at(0), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n"]);
        // The SYN-ACK's own number outranks the one read from the ACK.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 9_001, b""), at(0), &mut handler);
        table.process(&acking(false, SYN | ACK, 500, 101, b""), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), at(0), &mut handler);
        assert_eq!(heard(&handler), [b"hello\r\n"]);
    }

    #[test]
    fn a_server_side_captured_seconds_late_loses_nothing() {
        // Two taps two seconds apart: the client's whole short session first, then the server's,
        // its SYN-ACK included. The server's packets show it alive: nothing waiting for it is
        // given up before its bytes come.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        let late = |secs: u64| Timestamp::from_secs_nanos(1_002 + secs, 0);
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 501, b""), at(0), &mut handler);
        for packet in login().into_iter().step_by(2) {
            table.process(&packet, at(0), &mut handler);
        }
        table.process(&acking(false, SYN | ACK, 500, 101, b""), late(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), late(0), &mut handler);
        for packet in login().into_iter().skip(1).step_by(2) {
            table.process(&packet, late(0), &mut handler);
        }
        let spoken = [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"];
        assert_eq!(heard(&handler), spoken);
        assert_eq!(table.stats.reassembly.gaps, 0);
    }

    #[test]
    fn a_capture_of_the_client_side_alone_loses_nothing_waiting_for_the_server() {
        // An asymmetric route: the server's packets never reach the capture. The handshake's last
        // ACK gives the server's stream a start, but no byte of it ever comes: the client's
        // commands wait their patience out once, then go in without a gap, and nothing waits
        // again.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 501, b""), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 101, 530, b"USER a\r\n"), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 109, 540, b"PASS b\r\n"), at(2), &mut handler);
        table.process(&acking(true, PSH_ACK, 117, 550, b"STAT\r\n"), at(3), &mut handler);
        table.process(&acking(true, FIN_ACK, 123, 560, b""), at(3), &mut handler);
        assert_eq!(heard(&handler), [&b"USER a\r\n"[..], b"PASS b\r\n", b"STAT\r\n"]);
        assert_eq!(table.stats.reassembly.gaps, 0);
        assert_eq!(table.stats.segments_waited, 2, "USER, and PASS queued behind it");
    }

    #[test]
    fn bytes_held_behind_a_lost_segment_keep_their_acknowledgement_when_it_is_given_up() {
        // USER was lost; PASS, sent having the greeting, waits behind it in its own stream. The
        // server's reply acknowledges PASS and waits for it: when the lost bytes are given up,
        // PASS goes in with its own acknowledgement, which covered every server byte.
        let (mut table, mut handler) = greeted();
        table.process(&acking(true, PSH_ACK, 109, 508, b"PASS b\r\n"), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 508, 117, b"-ERR\r\n"), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 117, 514, b"QUIT\r\n"), at(2), &mut handler);
        assert_eq!(handler.timeline[1..], ["C gap 8", "C+PASS b", "S+-ERR", "C+QUIT"]);
    }

    #[test]
    fn a_client_whose_syn_and_first_command_were_lost_shows_the_gap_and_keeps_its_order() {
        // The client's SYN and EHLO were lost; the SYN-ACK says where its stream starts. The
        // server's EHLO reply waits for the lost command, AUTH for that reply, and AUTH's verdict
        // (captured before AUTH) for AUTH: the lost command is a gap, and AUTH goes in before
        // its verdict, not after it.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(false, SYN | ACK, 500, 101, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 501, b""), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"220 mx\r\n"), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 509, 109, b"250 mx\r\n"), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 517, 121, b"235 ok\r\n"), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 109, 517, b"AUTH PLAIN\r\n"), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 121, 525, b"QUIT\r\n"), at(2), &mut handler);
        assert_eq!(handler.timeline, ["S+220 mx", "C gap 8", "S+250 mx", "C+AUTH PLAIN", "S+235 ok", "C+QUIT"]);
    }

    #[test]
    fn a_direction_captured_late_is_read_in_the_order_the_conversation_happened() {
        // The client's segments reach the capture a whole exchange late: both replies come first.
        let (mut table, mut handler) = greeted();
        let [user, ok, pass, err] = login();
        for packet in [ok, err, user, pass] {
            table.process(&packet, at(1), &mut handler);
        }
        let spoken = [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"];
        assert_eq!(heard(&handler), spoken);
        assert_eq!(table.stats.segments_waited, 2, "both replies waited");
    }

    #[test]
    fn a_login_captured_in_any_order_is_heard_as_spoken() {
        // Both directions out of order, and each direction's own segments too (USER captured
        // after PASS, the replies swapped): each of the 24 orders is heard as spoken, nothing lost.
        let spoken = [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"];
        let mut orders: Vec<Vec<usize>> = vec![vec![]];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for order in &orders {
                for next in (0..4).filter(|i| !order.contains(i)) {
                    longer.push([order.as_slice(), &[next]].concat());
                }
            }
            orders = longer;
        }
        assert_eq!(orders.len(), 24);
        for order in orders {
            let (mut table, mut handler) = greeted();
            let login = login();
            for &i in &order {
                table.process(&login[i], at(1), &mut handler);
            }
            assert_eq!(heard(&handler), spoken, "captured in the order {order:?}");
            assert_eq!(table.stats.reassembly.gaps, 0, "captured in the order {order:?}");
        }
    }

    #[test]
    fn the_servers_direction_captured_first_waits_for_the_clients() {
        // Two taps, one per direction, their files read one after the other: the server's whole
        // side first. Its SYN-ACK tells where the client's stream starts, so the replies wait
        // for the commands they acknowledge.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        let [user, ok, pass, err] = login();
        table.process(&acking(false, SYN | ACK, 500, 101, b""), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), at(0), &mut handler);
        table.process(&ok, at(1), &mut handler);
        table.process(&err, at(1), &mut handler);
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(true, ACK, 101, 501, b""), at(0), &mut handler);
        table.process(&user, at(1), &mut handler);
        table.process(&pass, at(1), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"]);
        assert_eq!(table.stats.reassembly.gaps, 0);
    }

    #[test]
    fn a_syn_that_cannot_be_this_connections_starts_another() {
        // The old connection's FIN and RST never captured: a SYN with another initial sequence
        // number ends it and starts the next one, whose greeting and login are heard.
        let (mut table, mut handler) = greeted();
        table.process(&login()[0], at(1), &mut handler);
        table.process(&acking(true, SYN, 100, 0, b""), at(1), &mut handler);
        assert_eq!(table.stats.flows_created, 1, "a retransmitted SYN is the same connection");
        table.process(&acking(true, SYN, 900_000, 0, b""), at(5), &mut handler);
        table.process(&acking(false, SYN | ACK, 70_000, 900_001, b""), at(5), &mut handler);
        table.process(&acking(false, PSH_ACK, 70_001, 900_001, b"again\r\n"), at(5), &mut handler);
        assert_eq!((table.stats.flows_created, table.stats.flows_closed), (2, 1));
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n", b"again\r\n"]);

        // A connection captured from its middle, its SYN captured behind its first data: the same
        // connection.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), at(0), &mut handler);
        table.process(&acking(true, PSH_ACK, 101, 508, b"USER a\r\n"), at(0), &mut handler);
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        assert_eq!(table.stats.flows_created, 1);
    }

    #[test]
    fn a_reset_far_from_the_senders_stream_is_ignored() {
        // A stale or guessed RST, outside any window: the endpoints go on, and so does the flow.
        let (mut table, mut handler) = greeted();
        table.process(&acking(false, TcpFlags::RST, 508 + 10_000_000, 0, b""), at(1), &mut handler);
        table.expire(at(4), &mut handler);
        for packet in login() {
            table.process(&packet, at(4), &mut handler);
        }
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"]);
        assert_eq!(table.stats.flows_created, 1);

        // One in the window that the endpoints ignore: the login goes on after it, seconds later
        // (the flow waits for that longer than a closed one does).
        let (mut table, mut handler) = greeted();
        let [user, ..] = login();
        table.process(&acking(false, TcpFlags::RST, 508 + 1_000, 0, b""), at(1), &mut handler);
        table.expire(at(4), &mut handler);
        for packet in login() {
            table.process(&packet, at(4), &mut handler);
        }
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"]);
        assert_eq!((table.stats.flows_created, table.stats.flows_timed_out), (1, 0));
        assert!(table.flows.values().all(|flow| !flow.closing), "the bytes after it undid the closing");

        // Near, then only a byte the capture shows again (no new one): the flow still closes.
        let (mut table, mut handler) = greeted();
        table.process(&acking(false, TcpFlags::RST, 508 + 1_000, 0, b""), at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"hello\r\n"), at(1), &mut handler);
        assert!(table.flows.values().all(|flow| flow.closing), "a retransmission undoes nothing");

        // One where the sender's stream stands closes it, whatever comes after it.
        let (mut table, mut handler) = greeted();
        table.process(&acking(false, TcpFlags::RST, 508, 0, b""), at(1), &mut handler);
        let Some(flow) = table.flows.values().next() else { panic!("the flow is kept for its stragglers") };
        assert!(flow.closing);
        table.process(&user, at(1), &mut handler);
        assert!(table.flows.values().all(|flow| flow.closing), "bytes that crossed the reset on the wire");
    }

    #[test]
    fn a_full_table_evicts_flows_without_data_before_a_login_in_progress() {
        // A SYN flood fills the table while a login is half done: the flood's flows go first,
        // however recent, and the login goes on.
        let limits = FlowLimits { max_flows: 16, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = Recorder::default();
        for packet in [acking(false, PSH_ACK, 501, 101, b"hello\r\n"), login()[0]] {
            table.process(&packet, at(0), &mut handler);
        }
        for port in 0..200u16 {
            table.process(&packet(41_000 + port, true, SYN, 7, b""), at(1), &mut handler);
        }
        assert!(table.stats.flows_evicted > 0);
        table.process(&login()[1], at(2), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER a\r\n", b"+OK\r\n"]);
        assert_eq!(table.stats.flows_created, 201, "the login's flow was never evicted");
    }

    #[test]
    fn what_waits_is_bounded() {
        let (mut table, mut handler) = greeted();
        // Replies acknowledging client bytes that never come: past the bound they all go in.
        let mut seq = 508;
        for _ in 0..=WAITING_SEGMENTS {
            table.process(&acking(false, PSH_ACK, seq, 109, b"+OK\r\n"), at(1), &mut handler);
            seq += 5;
        }
        assert_eq!(heard(&handler).len(), 1 + WAITING_SEGMENTS + 1);
        let Some(Flow { streams: Streams::Inspecting(inspection), .. }) = table.flows.values().next() else {
            panic!("the flow is inspected")
        };
        assert!(inspection.waiting.is_none());
    }

    #[test]
    fn a_waiting_segment_goes_in_when_the_flow_ends_after_the_bytes_that_came() {
        // The client's USER never captured: the reply to it waits for it, and PASS, sent after
        // the reply, waits for the reply. At the end USER is given up (a gap), then the reply
        // and PASS go in, in the order they were sent.
        let (mut table, mut handler) = greeted();
        table.process(&acking(false, PSH_ACK, 508, 109, b"+OK\r\n"), at(1), &mut handler);
        table.process(&acking(true, PSH_ACK, 109, 513, b"PASS b\r\n"), at(1), &mut handler);
        assert_eq!(heard(&handler), [b"hello\r\n"]);
        let gaps = table.stats.reassembly.gaps;
        table.close_all(&mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"+OK\r\n", b"PASS b\r\n"]);
        assert_eq!(table.stats.reassembly.gaps, gaps + 1, "USER's bytes, given up");

        // Nothing more from the client: the replies go in, in order, when the flow ends.
        let (mut table, mut handler) = greeted();
        table.process(&acking(false, PSH_ACK, 508, 109, b"+OK\r\n"), at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 513, 109, b"+OK again\r\n"), at(1), &mut handler);
        assert_eq!(heard(&handler), [b"hello\r\n"], "the server's next segment waits for USER too");
        table.close_all(&mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"+OK\r\n", b"+OK again\r\n"]);
        assert_eq!(table.buffered_bytes(), 0);
    }

    #[test]
    fn a_segment_waits_for_lost_bytes_a_second_of_packet_time_at_most() {
        // USER never captured; the reply to it waits, and goes in at the client's first packet a
        // second later (a keepalive), USER's bytes given up first.
        let (mut table, mut handler) = greeted();
        let [_, ok, ..] = login();
        table.process(&ok, at(1), &mut handler);
        table.process(&acking(true, ACK, 108, 513, b""), at(1), &mut handler);
        assert_eq!(heard(&handler), [b"hello\r\n"], "not before its time");
        let gaps = table.stats.reassembly.gaps;
        table.process(&acking(true, ACK, 108, 513, b""), at(3), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"+OK\r\n"]);
        assert_eq!(table.stats.reassembly.gaps, gaps + 1);
    }

    #[test]
    fn after_a_lost_segment_the_conversation_keeps_its_order_at_the_end() {
        // The greeting's second segment never captured: everything after it waits, then goes
        // in as it was sent, the lost bytes a gap.
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = Recorder::default();
        table.process(&acking(true, SYN, 100, 0, b""), at(0), &mut handler);
        table.process(&acking(false, SYN | ACK, 500, 101, b""), at(0), &mut handler);
        table.process(&acking(false, PSH_ACK, 501, 101, b"hel"), at(0), &mut handler);
        for packet in login() {
            table.process(&packet, at(1), &mut handler);
        }
        assert_eq!(heard(&handler), [b"hel"]);
        table.close_all(&mut handler);
        let spoken = [&b"hel"[..], b"USER a\r\n", b"+OK\r\n", b"PASS b\r\n", b"-ERR\r\n"];
        assert_eq!(heard(&handler), spoken);
    }

    #[test]
    fn a_reply_waits_for_the_command_bytes_still_in_a_hole() {
        // USER's two segments captured in reverse, the reply between them: the reply's ACK is
        // past every client byte the capture has shown, but not past what was delivered.
        let (mut table, mut handler) = greeted();
        table.process(&acking(true, PSH_ACK, 105, 508, b" a\r\n"), at(1), &mut handler);
        table.process(&acking(false, PSH_ACK, 508, 109, b"+OK\r\n"), at(1), &mut handler);
        table.process(&acking(true, ACK, 101, 508, b"USER"), at(1), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"USER", b" a\r\n", b"+OK\r\n"]);
    }

    #[test]
    fn bytes_the_snap_length_cut_off_are_a_gap_at_once() {
        let (mut table, mut handler) = greeted();
        let cut = TcpPacket { payload_missing: 6, ..acking(true, PSH_ACK, 101, 508, b"PA") };
        table.process(&cut, at(1), &mut handler);
        table.process(&acking(true, PSH_ACK, 109, 508, b"QUIT\r\n"), at(1), &mut handler);
        assert_eq!(heard(&handler), [&b"hello\r\n"[..], b"PA", b"QUIT\r\n"], "not held behind a hole");
        assert_eq!(table.stats.reassembly.gaps, 1);
    }

    #[test]
    fn a_table_entry_fits_in_two_cache_lines() {
        // Every packet reads one entry at random: growing it past 128 bytes costs every packet.
        let entry = std::mem::size_of::<(FlowKey, Flow<Vec<u8>>)>();
        assert!(entry <= 128, "{entry} bytes");
        let closed = std::mem::size_of::<(FlowKey, ClosedFlow)>();
        assert!(closed <= 80, "a closed flow keeps only its key, a time and its SYN: {closed} bytes");
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
        table.expire(at(6), &mut handler);
        assert_eq!(table.len(), 1);
        // The port pair reused by a new SYN: the old flow ends, a new one starts and is inspected.
        table.process(&packet(40_000, true, SYN, 7_000, b""), at(6), &mut handler);
        table.process(&packet(40_000, true, ACK, 7_001, b"GET /"), at(6), &mut handler);
        assert_eq!(table.stats.flows_closed, 1);
        assert!(handler.closed.is_empty(), "a handler that stopped hears nothing more of the flow");
        assert_eq!((table.stats.flows_created, handler.data_events), (2, 2));
    }

    /// The same connection captured twice, the second copy a moment later (two interfaces or
    /// mirrors seeing the same traffic): the copy's SYN, once the flow is no longer inspected or
    /// has closed, is the flow's own SYN again and starts nothing; another SYN does.
    #[test]
    fn a_copy_of_a_flows_own_syn_starts_no_new_connection() {
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = StopAtData::default();
        let play = |table: &mut FlowTable<StopAtData>, handler: &mut StopAtData, secs: u64| {
            table.process(&packet(40_000, true, SYN, 99, b""), at(secs), handler);
            table.process(&packet(40_000, false, SYN_ACK, 499, b""), at(secs), handler);
            table.process(&packet(40_000, true, ACK, 100, b"GET /"), at(secs), handler);
        };
        play(&mut table, &mut handler, 0);
        // The copy while the first is no longer inspected but open.
        play(&mut table, &mut handler, 1);
        assert_eq!((table.stats.flows_created, table.stats.flows_closed, handler.data_events), (1, 0, 1));
        table.process(&packet(40_000, true, FIN_ACK, 105, b""), at(1), &mut handler);
        table.process(&packet(40_000, false, FIN_ACK, 500, b""), at(1), &mut handler);
        // The copy once the first has closed.
        play(&mut table, &mut handler, 2);
        assert_eq!((table.stats.flows_created, handler.data_events), (1, 1));
        // A new connection on the same ports.
        table.process(&packet(40_000, true, SYN, 7_000, b""), at(2), &mut handler);
        table.process(&packet(40_000, true, ACK, 7_001, b"GET /"), at(2), &mut handler);
        assert_eq!((table.stats.flows_created, handler.data_events), (2, 2));
    }

    #[test]
    fn a_syn_after_a_midstream_flow_no_longer_inspected_starts_another_connection() {
        let mut table = FlowTable::new(FlowLimits::default());
        let mut handler = StopAtData::default();
        // Picked up midstream (no SYN seen), inspected, then let go; its end never captured.
        table.process(&packet(40_000, true, ACK, 100, b"a1 LOGIN"), at(0), &mut handler);
        table.process(&packet(40_000, true, ACK, 108, b" more"), at(1), &mut handler);
        assert_eq!(handler.data_events, 1);
        // The client reconnects from the same port: a new connection, inspected from its start.
        table.process(&packet(40_000, true, SYN, 9_000, b""), at(2), &mut handler);
        table.process(&packet(40_000, true, ACK, 9_001, b"a1 LOGIN"), at(2), &mut handler);
        assert_eq!((table.stats.flows_created, handler.data_events), (2, 2));
    }

    #[test]
    fn closed_flows_wait_apart_for_their_stragglers_and_go_first_when_room_is_short() {
        let limits = FlowLimits { max_flows: 4, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = StopAtData::default();
        for port in [1, 2, 3] {
            table.process(&packet(port, true, SYN, 0, b""), at(0), &mut handler);
            table.process(&packet(port, true, ACK, 1, b"HELO"), at(0), &mut handler);
            table.process(&packet(port, true, FIN_ACK, 5, b""), at(1), &mut handler);
            table.process(&packet(port, false, FIN_ACK, 900, b""), at(1), &mut handler);
        }
        assert_eq!((table.flows.len(), table.closed.len(), table.len()), (0, 3, 3));
        // Stragglers, a late retransmission with data included, start nothing new.
        table.process(&packet(1, true, ACK, 6, b""), at(2), &mut handler);
        table.process(&packet(2, false, FIN_ACK, 1, b"late"), at(2), &mut handler);
        assert_eq!((table.stats.flows_created, table.len(), handler.data_events), (3, 3, 3));
        // Still inspecting when it closes: the flow stays live, for its session to hear it end.
        let mut hoarder = Hoarder::default();
        let mut inspected = FlowTable::new(limits);
        inspected.process(&packet(7, true, ACK, 1, b"USER"), at(0), &mut hoarder);
        inspected.process(&packet(7, true, FIN_ACK, 5, b""), at(0), &mut hoarder);
        inspected.process(&packet(7, false, FIN_ACK, 1, b""), at(0), &mut hoarder);
        assert_eq!((inspected.flows.len(), inspected.closed.len()), (1, 0));
        // Closed flows leave `closed_timeout` after their latest packet, counted as timed out.
        table.expire(Timestamp::from_secs_nanos(1_003, 500_000_000), &mut handler);
        assert_eq!((table.len(), table.stats.flows_timed_out), (2, 1), "ports 1 and 2 were seen at 2 s");
        // A full table drops its closed flows before any live one.
        for port in [10, 11, 12, 13] {
            table.process(&packet(port, true, SYN, 0, b""), at(4), &mut handler);
        }
        assert_eq!((table.flows.len(), table.closed.len(), table.stats.flows_evicted), (4, 0, 2));
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
    fn a_packet_stamped_years_ahead_into_a_full_table_times_out_nothing() {
        let limits = FlowLimits { max_flows: 16, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = StopAtData::default();
        for port in 0..16 {
            table.process(&packet(1_000 + port, true, SYN, 1, b""), at(0), &mut handler);
        }
        table.expire(at(1), &mut handler);
        table.process(&packet(5_000, true, SYN, 1, b""), at(300_000_000), &mut handler);
        assert_eq!(table.stats.flows_timed_out, 0, "idle on the table's time, not the glitch's");
        assert_eq!((table.stats.flows_evicted, table.len()), (2, 15));
    }

    #[test]
    fn a_pass_to_make_room_counts_for_the_tick_in_its_interval() {
        let limits = FlowLimits { max_flows: 16, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = StopAtData::default();
        table.process(&packet(999, true, ACK, 1, b"x"), Timestamp::from_secs_nanos(1_000, 800_000_000), &mut handler);
        table.expire(at(600), &mut handler);
        let half_past = Timestamp::from_secs_nanos(1_600, 500_000_000);
        for port in 0..16 {
            table.process(&packet(1_000 + port, true, SYN, 1, b""), half_past, &mut handler);
        }
        assert!(table.stats.flows_evicted > 0, "the flood made room");
        // Port 999, idle 600.2 s at 601 s, waits for the next pass (a flood costs one a second).
        table.expire(at(601), &mut handler);
        assert_eq!(table.stats.flows_timed_out, 0);
        table.expire(at(602), &mut handler);
        assert_eq!(table.stats.flows_timed_out, 1);
    }

    #[test]
    fn a_full_table_evicts_about_the_oldest_eighth() {
        const MAX: usize = 8 * 1024;
        let limits = FlowLimits { max_flows: MAX, ..FlowLimits::default() };
        let mut table = FlowTable::new(limits);
        let mut handler = StopAtData::default();
        let client = |n: u32| -> IpAddr { [10, 1, (n >> 8) as u8, n as u8].into() };
        let syn = |n: u32| {
            let mut syn = packet(40_000, true, SYN, 1, b"");
            syn.src = client(n);
            syn
        };
        for n in 0..=MAX as u32 {
            table.process(&syn(n), Timestamp::from_secs_nanos(1_000, n * 1_000), &mut handler);
            assert!(table.len() <= MAX);
        }
        // The flow that overflowed the table made room for up to an eighth, the least recently
        // seen: nearly an eighth went, all of them among the oldest.
        let evicted = table.stats.flows_evicted as usize;
        assert!((MAX / 10..=MAX / 8).contains(&evicted), "{evicted} evicted");
        let kept = |n: u32| table.flows.contains_key(&FlowKey::of(&syn(n)).0);
        assert!((MAX as u32 / 6..=MAX as u32).all(kept), "a flow newer than the oldest sixth was evicted");
        let old_kept = (0..evicted as u32).filter(|n| kept(*n)).count();
        assert!(old_kept * 10 <= evicted, "{old_kept} of the {evicted} oldest flows kept");
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

    /// One step of a random run: a packet of one of a few connections, or an expiry pass.
    #[derive(Clone, Debug)]
    enum Step {
        Packet { port: u16, from_client: bool, flags: u8, seq: u32, ack: u32, data: bool, millis: u64 },
        Expire { millis: u64 },
    }

    /// Stops inspecting some flows at their first data (those whose client port is odd) and
    /// holds every byte of the others, so that runs mix bypassed and inspected flows.
    struct StopOdd;

    impl FlowHandler for StopOdd {
        type App = Vec<u8>;
        fn open(&mut self, _info: &FlowInfo) -> Vec<u8> {
            Vec::new()
        }
        fn event(&mut self, info: &FlowInfo, app: &mut Vec<u8>, event: FlowEvent<'_>, _ts: Timestamp) -> Inspect {
            match event {
                FlowEvent::Data { .. } if info.key.lo.port % 2 == 1 => Inspect::Stop,
                FlowEvent::Data { bytes, .. } => {
                    app.extend_from_slice(bytes);
                    Inspect::Continue
                }
                _ => Inspect::Continue,
            }
        }
        fn buffered(&self, app: &Vec<u8>) -> usize {
            app.len()
        }
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        let flags = prop::sample::select(vec![SYN, SYN | ACK, ACK, FIN_ACK, TcpFlags::RST, TcpFlags::RST | ACK]);
        prop_oneof![
            8 => (1u16..7, any::<bool>(), flags, 0u32..64, 0u32..64, any::<bool>(), 0u64..1_500).prop_map(
                |(port, from_client, flags, seq, ack, data, millis)| Step::Packet { port, from_client, flags, seq, ack, data, millis }
            ),
            1 => (0u64..4_000).prop_map(|millis| Step::Expire { millis }),
        ]
    }

    proptest! {
        /// Whatever the packets, every flow created is in exactly one place: live, closed and
        /// waiting for stragglers, or counted as closed, timed out or evicted; the table stays
        /// within its limit and its buffered total is what its flows hold.
        #[test]
        fn every_flow_is_accounted_for_once(steps in prop::collection::vec(arb_step(), 1..120), max_flows in 1usize..5) {
            let limits = FlowLimits { max_flows, ..FlowLimits::default() };
            let mut table = FlowTable::new(limits);
            let mut handler = StopOdd;
            let mut now = Timestamp::from_secs_nanos(1_000, 0);
            for step in steps {
                match step {
                    Step::Packet { port, from_client, flags, seq, ack, data, millis } => {
                        now = now.saturating_add(Duration::from_millis(millis));
                        let payload: &'static [u8] = if data { b"A1 LOGIN" } else { b"" };
                        let packet = TcpPacket { ack, ..packet(port, from_client, flags, seq, payload) };
                        table.process(&packet, now, &mut handler);
                    }
                    Step::Expire { millis } => {
                        now = now.saturating_add(Duration::from_millis(millis));
                        table.expire(now, &mut handler);
                    }
                }
                let stats = &table.stats;
                prop_assert!(table.len() <= max_flows);
                prop_assert!(table.flows.keys().all(|key| !table.closed.contains_key(key)));
                prop_assert_eq!(
                    stats.flows_created,
                    (table.flows.len() + table.closed.len()) as u64
                        + stats.flows_closed
                        + stats.flows_timed_out
                        + stats.flows_evicted
                );
                let held: usize = table.flows.values().map(Flow::counted_bytes).sum();
                prop_assert_eq!(table.buffered_bytes(), held);
            }
            table.close_all(&mut handler);
            prop_assert!(table.is_empty());
            prop_assert_eq!(table.buffered_bytes(), 0);
        }

        /// A conversation whose two directions reach the capture merged in any order (each in its
        /// own order) is heard in the order it was spoken: every message acknowledges the ones
        /// before it.
        #[test]
        fn a_conversation_merged_in_any_order_is_heard_as_spoken(
            messages in prop::collection::vec((1usize..40, 1usize..4), 1..12),
            server_first in any::<bool>(),
            merge in prop::collection::vec(any::<bool>(), 0..80),
        ) {
            let texts: Vec<Vec<u8>> =
                messages.iter().enumerate().map(|(n, (len, _))| vec![b'a' + (n % 26) as u8; *len]).collect();
            let (mut next, mut spoken) = ([1_001u32, 5_001u32], Vec::new());
            let mut segments: [Vec<TcpPacket<'_>>; 2] = [Vec::new(), Vec::new()];
            for (n, (text, (len, pieces))) in texts.iter().zip(&messages).enumerate() {
                let from = usize::from((n % 2 == 0) == server_first);
                for piece in text.chunks(len.div_ceil(*pieces)) {
                    let from_client = from == 0;
                    let ack = next[1 - from];
                    segments[from].push(acking(from_client, PSH_ACK, next[from], ack, piece));
                    next[from] += piece.len() as u32;
                }
                spoken.push((from == 0, text.clone()));
            }
            let mut table = FlowTable::new(FlowLimits::default());
            let mut handler = Recorder::default();
            table.process(&acking(true, SYN, 1_000, 0, b""), at(0), &mut handler);
            table.process(&acking(false, SYN | ACK, 5_000, 1_001, b""), at(0), &mut handler);
            let [mut client, mut server] = segments.map(|side| side.into_iter().peekable());
            let mut choices = merge.into_iter();
            while client.peek().is_some() || server.peek().is_some() {
                let take_client = server.peek().is_none() || (client.peek().is_some() && choices.next().unwrap_or(true));
                let packet = if take_client { client.next() } else { server.next() };
                table.process(&packet.unwrap(), at(1), &mut handler);
            }
            table.close_all(&mut handler);
            let client_side = FlowKey::of(&acking(true, ACK, 0, 0, b"")).1;
            let mut heard: Vec<(bool, Vec<u8>)> = Vec::new();
            for (side, data) in &handler.heard {
                match heard.last_mut() {
                    Some((from_client, text)) if *from_client == (*side == client_side) => text.extend_from_slice(data),
                    _ => heard.push((*side == client_side, data.clone())),
                }
            }
            prop_assert_eq!(heard, spoken);
        }
    }
}
