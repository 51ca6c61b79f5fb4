//! The capture side of the threaded pipeline: which worker gets a segment, when packet time
//! ticks, and the batches that carry both over the bounded queues.
//!
//! Everything here is decided from the frame sequence alone (never the thread count or the
//! scheduling), so that one worker or many see the same timeline: a flow's segments go to the
//! worker its symmetric hash names, and every worker gets every tick, in capture order.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::ops::Range;

use std::time::Instant;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};

use crate::alert::Event;
use crate::capture::{SharedBlock, Timestamp, CLOCK_JUMP};
use crate::decode::TcpPacket;
use crate::flow::FlowKey;

/// Packet time ticks (idle flows are looked for) when it enters a new second.
const TICK_PERIOD_SECS: u64 = 1;
/// A batch goes out when it holds this many jobs...
pub const BATCH_JOBS: usize = 1024;
/// ...or this many payload bytes... Large batches amortise the queue's synchronisation and the
/// threads' wake-ups; the bytes bound what a worker's queue can hold (see [`Queues`]).
pub const BATCH_BYTES: usize = 256 * 1024;
/// ...or when its payloads lie in this many read blocks: this bounds the blocks a worker's queue
/// keeps from reuse (a sparse worker's batch would otherwise hold one block per segment).
pub const BATCH_BLOCKS: usize = 2;

/// A TCP segment on its way from the capture thread to a worker. No `Debug`: it leads to payload
/// bytes.
pub struct Segment {
    ts: Timestamp,
    /// The decoded packet, its payload left out (see `payload`).
    headers: TcpPacket<'static>,
    payload: Payload,
}

/// Where a segment's payload is. Reading files, it stays in the block it was read into, which the
/// batch holds; otherwise (live capture reuses its buffer for the next frame; payloads rebuilt
/// from IP fragments live in the decoder) it is copied into the batch's own buffer.
enum Payload {
    /// `range` of the batch's block number `block`.
    InBlock { block: usize, range: Range<usize> },
    /// `range` of the batch's buffer.
    Copied(Range<usize>),
}

impl Segment {
    pub fn ts(&self) -> Timestamp {
        self.ts
    }
}

/// What a worker is asked to do, numbered by the capture frame that caused it.
pub enum Job {
    /// Packet time reached `now`: expire idle flows.
    Tick {
        index: u64,
        now: Timestamp,
    },
    Segment {
        index: u64,
        segment: Segment,
    },
}

/// Jobs for one worker, with the blocks their payloads lie in or the payloads themselves in one
/// buffer: a batch costs no allocation per segment, and its buffers are handed back to the
/// capture side for reuse.
pub struct Batch {
    jobs: Vec<Job>,
    /// Payload bytes the jobs refer to, wherever they lie.
    payload_bytes: usize,
    blocks: Vec<SharedBlock>,
    copied: Vec<u8>,
}

impl Batch {
    fn new() -> Batch {
        Batch { jobs: Vec::with_capacity(BATCH_JOBS), payload_bytes: 0, blocks: Vec::new(), copied: Vec::new() }
    }

    /// Adds a segment whose payload lies in `block` when it is given and holds the payload, else
    /// copies the payload.
    fn push_segment(&mut self, index: u64, packet: &TcpPacket<'_>, ts: Timestamp, block: Option<&SharedBlock>) {
        self.payload_bytes += packet.payload.len();
        let in_block = block
            .filter(|_| !packet.payload.is_empty())
            .and_then(|block| Some((block, block.range_of(packet.payload)?)));
        let payload = match in_block {
            Some((block, range)) => {
                if !self.blocks.last().is_some_and(|last| last.is(block)) {
                    self.blocks.push(block.clone());
                }
                Payload::InBlock { block: self.blocks.len() - 1, range }
            }
            None => {
                let start = self.copied.len();
                self.copied.extend_from_slice(packet.payload);
                Payload::Copied(start..self.copied.len())
            }
        };
        let segment = Segment { ts, headers: TcpPacket { payload: &[], ..*packet }, payload };
        self.jobs.push(Job::Segment { index, segment });
    }

    fn is_full(&self) -> bool {
        self.jobs.len() >= BATCH_JOBS || self.payload_bytes >= BATCH_BYTES || self.blocks.len() >= BATCH_BLOCKS
    }

    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn segments(&self) -> usize {
        self.jobs.iter().filter(|job| matches!(job, Job::Segment { .. })).count()
    }

    /// Empties the batch, keeping its buffers and letting go of the blocks.
    pub fn clear(&mut self) {
        self.jobs.clear();
        self.payload_bytes = 0;
        self.blocks.clear();
        self.copied.clear();
    }

    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// A segment of this batch as the decoder produced it, its payload borrowed from the batch.
    pub fn packet(&self, segment: &Segment) -> TcpPacket<'_> {
        let payload = match &segment.payload {
            Payload::InBlock { block, range } => {
                self.blocks.get(*block).and_then(|block| block.bytes().get(range.clone())).unwrap_or_default()
            }
            Payload::Copied(range) => self.copied.get(range.clone()).unwrap_or_default(),
        };
        TcpPacket { payload, ..segment.headers }
    }
}

/// The capture side's ends of the workers' queues: one bounded queue per worker, and the batches
/// the workers are done with, to reuse. A worker's queue holds at most its capacity in batches,
/// each at most [`BATCH_JOBS`] jobs and [`BATCH_BYTES`] of payload plus one segment, its payloads
/// copied or in at most [`BATCH_BLOCKS`] read blocks.
#[derive(Clone)]
pub struct Queues {
    pub workers: Vec<Sender<Batch>>,
    pub spare: Receiver<Batch>,
}

/// Whether an event came from expiring flows before a frame, or from the frame itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Expiry,
    Packet,
}

/// Where an event falls in the run's canonical order: by capture frame, expiry before the frame's
/// own events, then by flow id (flows expiring together), then in the order the flow produced
/// them. A single engine emits in this order too (see [`sort_by_flow`]), which is what makes the
/// output of one worker and of many identical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Order {
    pub index: u64,
    pub phase: Phase,
    pub flow_id: u64,
    pub worker: usize,
    pub serial: u64,
}

/// Index given to the events of the end of input (after every frame).
pub const END_OF_INPUT: u64 = u64::MAX;

/// The flow an event belongs to (0 for events of no flow).
pub fn flow_id_of(event: &Event) -> u64 {
    match event {
        Event::Credential(alert) => alert.flow.flow_id,
        Event::Anomaly(alert) => alert.flow.flow_id,
        Event::Session(session) => session.flow.flow_id,
        Event::Stats(_) => 0,
    }
}

/// Puts the events of one step of a single engine in canonical order (stable: a flow's own events
/// keep their order).
pub fn sort_by_flow(events: &mut [Event]) {
    events.sort_by_key(flow_id_of);
}

/// Frames in a row beyond the capture's time, on the same side, that make a jump its time.
const JUMP_FRAMES: usize = 3;

/// Decides when packet time ticks: whenever a timestamp enters a later period than any before.
/// Out-of-order timestamps (captures are not always sorted) never move time back.
///
/// A frame stamped more than [`CLOCK_JUMP`] away from the capture's time moves nothing on its
/// own: one corrupt record or a tap's clock glitch years ahead would otherwise time out every flow
/// at once, then stop time until the capture caught up. Time jumps when [`JUMP_FRAMES`] frames in
/// a row lie beyond on the same side (a gap in the capture, files read out of order, a clock
/// stepped), to the one of them nearest the time it leaves, so that glitches among them count
/// for nothing.
#[derive(Debug, Default)]
pub struct Clock {
    period: Option<u64>,
    /// The latest frames stamped beyond the capture's time, in a row on one side.
    beyond: Option<Beyond>,
    /// Whether frames that moved nothing were warned about.
    glitch_warned: bool,
}

#[derive(Clone, Copy, Debug)]
struct Beyond {
    ahead: bool,
    frames: usize,
    /// The frames' timestamp nearest the capture's time.
    nearest: Timestamp,
}

impl Clock {
    /// The time flows are to be expired at if `ts` makes time tick; the first timestamp only starts
    /// the clock (there is nothing to expire yet). Inlined for its common case, a frame in the
    /// current period with no jump pending: it runs for every frame.
    #[inline(always)]
    pub fn tick_due(&mut self, ts: Timestamp) -> Option<Timestamp> {
        let period = ts.secs() / TICK_PERIOD_SECS;
        if self.period == Some(period) && self.beyond.is_none() {
            return None;
        }
        self.tick_due_in(ts, period)
    }

    fn tick_due_in(&mut self, ts: Timestamp, period: u64) -> Option<Timestamp> {
        let Some(current) = self.period else {
            self.period = Some(period);
            return None;
        };
        if period.abs_diff(current) <= CLOCK_JUMP.as_secs() / TICK_PERIOD_SECS {
            if self.beyond.take().is_some() {
                self.glitch_skipped();
            }
            return (period > current).then(|| {
                self.period = Some(period);
                ts
            });
        }
        let ahead = period > current;
        let run = match self.beyond {
            Some(run) if run.ahead == ahead => Beyond {
                ahead,
                frames: run.frames + 1,
                nearest: if ahead { run.nearest.min(ts) } else { run.nearest.max(ts) },
            },
            _ => Beyond { ahead, frames: 1, nearest: ts },
        };
        if run.frames < JUMP_FRAMES {
            self.beyond = Some(run);
            return None;
        }
        self.beyond = None;
        tracing::debug!(from = current * TICK_PERIOD_SECS, to = run.nearest.secs(), "capture time jumped");
        self.period = Some(run.nearest.secs() / TICK_PERIOD_SECS);
        Some(run.nearest)
    }

    fn glitch_skipped(&mut self) {
        if !std::mem::replace(&mut self.glitch_warned, true) {
            tracing::warn!(
                max_secs = CLOCK_JUMP.as_secs(),
                "frames stamped far from the capture's time, with their neighbours close to it, were taken as \
                 clock glitches: flows time out on the neighbours' time (their alerts still carry the frames' own \
                 timestamps)"
            );
        }
    }
}

/// The worker a flow belongs to. The hash is remixed first: the flow tables hash the same keys
/// with the same hasher, and taking the raw hash modulo N would leave each worker's table with
/// keys that all share their low bits.
pub fn shard(key_hash: u64, workers: usize) -> usize {
    let mixed = (key_hash ^ (key_hash >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    let workers = u64::try_from(workers).unwrap_or(u64::from(u32::MAX)).min(u64::from(u32::MAX));
    usize::try_from(mixed.wrapping_mul(workers) >> 32).unwrap_or(0)
}

/// The flows are dealt out in slots: each worker thread gets [`WORKER_SLOTS`], the capture
/// thread [`LOCAL_SLOTS`], as it also reads, decodes and routes every frame (about a fifth of a
/// one-thread run on mail-heavy traffic). Measured with one worker thread on mail-heavy traffic
/// (25 rounds): 2 slots of 7 took 4 % less wall time than 1 of 4, 1 of 3 as much, 1 of 2 14 % more.
const WORKER_SLOTS: usize = 5;
const LOCAL_SLOTS: usize = 2;

/// A thread's part of the flows: `slots` of `total`. The flow limits are split in the same
/// proportions, so that each thread's table fills as one engine's would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    slots: usize,
    total: usize,
}

impl Share {
    /// The capture thread's part of a file run's flows with `worker_threads` worker threads, and
    /// each worker thread's (see [`Dispatcher::with_local_share`]).
    pub fn file_run(worker_threads: usize) -> (Share, Share) {
        let total = WORKER_SLOTS * worker_threads + LOCAL_SLOTS;
        (Share { slots: LOCAL_SLOTS, total }, Share { slots: WORKER_SLOTS, total })
    }

    /// Each worker thread's part when the capture thread keeps none (live capture).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn even(workers: usize) -> Share {
        Share { slots: 1, total: workers.max(1) }
    }

    /// This part of `amount`, rounded down (without overflow, whatever `amount`).
    pub fn of(self, amount: usize) -> usize {
        amount / self.total * self.slots + amount % self.total * self.slots / self.total
    }
}

/// What to do when a worker's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Wait (files: nothing is lost, the run just takes longer).
    Block,
    /// Drop the batch and count its segments (live: the capture must keep reading or the kernel
    /// drops instead, blindly).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Drop,
}

/// The workers are gone: the output failed and the run is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnected;

/// Where a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routed {
    /// The frame's index in the capture.
    pub index: u64,
    /// Packet time ticked at this frame (before its segment), to this time.
    pub tick: Option<Timestamp>,
    /// The segment belongs to the capture thread's own share of the flows.
    pub local: bool,
}

/// Feeds the workers from one capture thread.
pub struct Dispatcher {
    queues: Queues,
    batches: Vec<Batch>,
    /// The capture thread keeps the first share of the flows (shard 0) for a worker of its own:
    /// its share and each worker thread's, worked out once for the run.
    local_share: Option<(Share, Share)>,
    policy: QueuePolicy,
    clock: Clock,
    next_index: u64,
    /// Segments dropped because a queue was full.
    pub queue_drops: u64,
}

impl Dispatcher {
    /// Every flow goes to a worker behind `queues`.
    pub fn new(queues: Queues, policy: QueuePolicy) -> Self {
        let batches = queues.workers.iter().map(|_| Batch::new()).collect();
        Dispatcher {
            queues,
            batches,
            local_share: None,
            policy,
            clock: Clock::default(),
            next_index: 0,
            queue_drops: 0,
        }
    }

    /// The capture thread works too: a share of the flows stays with it (see [`Routed::local`]),
    /// and it expires them on the ticks [`route`](Self::route) reports.
    pub fn with_local_share(queues: Queues, policy: QueuePolicy) -> Self {
        let local_share = Some(Share::file_run(queues.workers.len()));
        Dispatcher { local_share, ..Dispatcher::new(queues, policy) }
    }

    /// One captured frame, with its TCP segment if it had one, its payload to be copied. Returns
    /// whether time ticked.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn frame(&mut self, ts: Timestamp, packet: Option<&TcpPacket<'_>>) -> Result<bool, Disconnected> {
        self.route(ts, packet, None).map(|routed| routed.tick.is_some())
    }

    /// Another packet of the frame [`frame`](Self::frame) was given last (an 802.11 aggregate's):
    /// packet time was read from the frame already.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn frame_more(&mut self, ts: Timestamp, packet: &TcpPacket<'_>) -> Result<(), Disconnected> {
        self.route_packet(ts, Some(packet), None, false).map(drop)
    }

    /// [`frame`](Self::frame) for a frame read into `block`, which the segment's batch then holds
    /// instead of a copy of its payload; tells where the segment went.
    pub fn route(
        &mut self,
        ts: Timestamp,
        packet: Option<&TcpPacket<'_>>,
        block: Option<&SharedBlock>,
    ) -> Result<Routed, Disconnected> {
        self.route_packet(ts, packet, block, true)
    }

    /// [`route`](Self::route) for another packet of the frame routed last (an 802.11
    /// aggregate's): packet time was read from the frame already.
    pub fn route_more(
        &mut self,
        ts: Timestamp,
        packet: &TcpPacket<'_>,
        block: Option<&SharedBlock>,
    ) -> Result<Routed, Disconnected> {
        self.route_packet(ts, Some(packet), block, false)
    }

    /// Routes a packet; `first_of_frame` says whether its frame's timestamp is new to the clock.
    fn route_packet(
        &mut self,
        ts: Timestamp,
        packet: Option<&TcpPacket<'_>>,
        block: Option<&SharedBlock>,
        first_of_frame: bool,
    ) -> Result<Routed, Disconnected> {
        let index = self.next_index;
        self.next_index = self.next_index.wrapping_add(1);
        let tick = if first_of_frame { self.clock.tick_due(ts) } else { None };
        if let Some(now) = tick {
            self.tick(index, now)?;
        }
        let mut local = false;
        if let Some(packet) = packet {
            let hash = FlowKey::route_hash(packet);
            let remote = match self.local_share {
                // The capture thread also reads, decodes and routes every frame: it keeps fewer
                // slots than a worker thread, which evens out the threads' loads.
                Some((local, worker)) => {
                    shard(hash, local.total).checked_sub(local.slots).map(|slot| slot / worker.slots)
                }
                None => Some(shard(hash, self.batches.len())),
            };
            let full = match remote.and_then(|worker| self.batches.get_mut(worker)) {
                Some(batch) => {
                    batch.push_segment(index, packet, ts, block);
                    batch.is_full()
                }
                None => {
                    local = true;
                    false
                }
            };
            if let (true, Some(worker)) = (full, remote) {
                self.send(worker)?;
            }
        }
        Ok(Routed { index, tick, local })
    }

    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    /// The capture is idle at wall-clock time `now` (live mode): let time tick if due, and hand
    /// the workers what is waiting so that alerts are not held back. Returns whether time ticked.
    pub fn idle(&mut self, now: Timestamp) -> Result<bool, Disconnected> {
        let tick = self.clock.tick_due(now);
        match tick {
            Some(now) => self.tick(self.next_index, now)?,
            None => self.flush()?,
        }
        Ok(tick.is_some())
    }

    /// Every worker gets the tick, then every batch goes out so that all workers move on together.
    fn tick(&mut self, index: u64, now: Timestamp) -> Result<(), Disconnected> {
        for batch in &mut self.batches {
            batch.jobs.push(Job::Tick { index, now });
        }
        self.flush()
    }

    /// Sends every non-empty batch.
    pub fn flush(&mut self) -> Result<(), Disconnected> {
        self.flush_waiting_until(None)
    }

    /// Sends every non-empty batch, waiting for room until `deadline` whatever the policy: at the
    /// end of a live capture the workers are draining their queues, and the last batches must not
    /// be dropped for the moment they take. What finds no room by then is dropped and counted.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn flush_until(&mut self, deadline: Instant) -> Result<(), Disconnected> {
        self.flush_waiting_until(Some(deadline))
    }

    fn flush_waiting_until(&mut self, deadline: Option<Instant>) -> Result<(), Disconnected> {
        for worker in 0..self.batches.len() {
            if self.batches.get(worker).is_some_and(|batch| !batch.is_empty()) {
                self.send_waiting_until(worker, deadline)?;
            }
        }
        Ok(())
    }

    fn send(&mut self, worker: usize) -> Result<(), Disconnected> {
        self.send_waiting_until(worker, None)
    }

    /// Sends a worker's batch as the policy says, or waiting until `deadline` when there is one.
    fn send_waiting_until(&mut self, worker: usize, deadline: Option<Instant>) -> Result<(), Disconnected> {
        let (Some(batch), Some(queue)) = (self.batches.get_mut(worker), self.queues.workers.get(worker)) else {
            return Ok(());
        };
        let spare = self.queues.spare.try_recv().unwrap_or_else(|_| Batch::new());
        let batch = std::mem::replace(batch, spare);
        let unsent = match (self.policy, deadline) {
            (QueuePolicy::Block, _) => return queue.send(batch).map_err(|_| Disconnected),
            (QueuePolicy::Drop, Some(deadline)) => match queue.send_deadline(batch, deadline) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(batch)) => batch,
                Err(SendTimeoutError::Disconnected(_)) => return Err(Disconnected),
            },
            (QueuePolicy::Drop, None) => match queue.try_send(batch) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(batch)) => batch,
                Err(TrySendError::Disconnected(_)) => return Err(Disconnected),
            },
        };
        self.queue_drops = self.queue_drops.saturating_add(unsent.segments() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoded, Decoder};
    use crate::pcapwriter::{Conversation, Side};

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs_nanos(s, 0)
    }

    #[test]
    fn the_clock_ticks_once_per_new_second_and_never_backwards() {
        let mut clock = Clock::default();
        assert_eq!(clock.tick_due(secs(100)), None, "the first timestamp starts the clock");
        assert_eq!(clock.tick_due(Timestamp::from_secs_nanos(100, 900_000_000)), None);
        assert_eq!(clock.tick_due(secs(101)), Some(secs(101)));
        assert_eq!(clock.tick_due(secs(99)), None, "an older timestamp does not tick");
        assert_eq!(clock.tick_due(secs(101)), None);
        assert_eq!(clock.tick_due(secs(160)), Some(secs(160)), "a minute's gap is no jump");
    }

    #[test]
    fn a_glitch_alone_moves_no_time_either_way() {
        let mut clock = Clock::default();
        clock.tick_due(secs(1_000));
        for glitch in [secs(1_000_000_000), secs(0), Timestamp(u64::MAX)] {
            assert_eq!(clock.tick_due(glitch), None);
            assert_eq!(clock.tick_due(glitch), None, "two glitches in a row are not enough");
            assert_eq!(clock.tick_due(secs(1_000)), None);
        }
        assert_eq!(clock.tick_due(secs(1_001)), Some(secs(1_001)), "time goes on from where it was");
    }

    #[test]
    fn three_frames_beyond_make_a_jump_to_the_nearest_of_them() {
        let mut clock = Clock::default();
        clock.tick_due(secs(1_000));
        // A gap in the capture, with a glitch among the frames after it.
        assert_eq!(clock.tick_due(secs(5_000)), None);
        assert_eq!(clock.tick_due(secs(9_000_000)), None);
        assert_eq!(clock.tick_due(secs(5_001)), Some(secs(5_000)));
        assert_eq!(clock.tick_due(secs(5_002)), Some(secs(5_002)), "ticking on from the new time");
        // A file read after a later one.
        assert_eq!(clock.tick_due(secs(300)), None);
        assert_eq!(clock.tick_due(secs(301)), None);
        assert_eq!(clock.tick_due(secs(302)), Some(secs(302)), "back to the latest of them");
        assert_eq!(clock.tick_due(secs(303)), Some(secs(303)));
    }

    #[test]
    fn sparse_frames_move_time_every_third_frame() {
        let mut clock = Clock::default();
        clock.tick_due(secs(0));
        let ticks: Vec<Option<Timestamp>> = (1..=6).map(|n| clock.tick_due(secs(n * 600))).collect();
        assert_eq!(ticks, [None, None, Some(secs(600)), None, None, Some(secs(2_400))]);
    }

    #[test]
    fn shards_cover_every_worker_and_stay_in_range() {
        let mut seen = [0usize; 4];
        for hash in 0..4000u64 {
            let worker = shard(hash.wrapping_mul(0x1234_5678_9abc_def1), 4);
            seen[worker] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "uneven shards: {seen:?}");
        assert_eq!(shard(u64::MAX, 1), 0);
        assert!((0..1000).all(|h| shard(h, 3) < 3));
    }

    fn frames() -> Vec<crate::pcapwriter::CapturedFrame> {
        Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 110))
            .handshake()
            .server(b"+OK\r\n")
            .client(b"USER a\r\n")
            .fin(Side::Client)
            .frames()
            .unwrap()
    }

    fn queues(workers: Vec<Sender<Batch>>) -> Queues {
        Queues { workers, spare: crossbeam_channel::never() }
    }

    #[test]
    fn both_directions_of_a_flow_go_to_one_worker_and_segments_own_their_payload() {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..4).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut dispatcher = Dispatcher::new(queues(senders), QueuePolicy::Block);
        let mut decoder = Decoder::new();
        let frames = frames();
        for frame in &frames {
            let frame = frame.as_frame();
            match decoder.decode(&frame) {
                Decoded::Tcp(packet) => dispatcher.frame(frame.ts, Some(&packet)).unwrap(),
                Decoded::Skipped(_) => dispatcher.frame(frame.ts, None).unwrap(),
            };
        }
        dispatcher.flush().unwrap();
        drop(dispatcher);
        let per_worker: Vec<Vec<Batch>> = receivers.iter().map(|rx| rx.iter().collect()).collect();
        let busy: Vec<&Vec<Batch>> = per_worker.iter().filter(|batches| !batches.is_empty()).collect();
        assert_eq!(busy.len(), 1, "one flow, one worker");
        let mut payloads = Vec::new();
        let mut indexes = Vec::new();
        for batch in busy[0] {
            for job in batch.jobs() {
                if let Job::Segment { index, segment } = job {
                    indexes.push(*index);
                    payloads.push(batch.packet(segment).payload.to_vec());
                }
            }
        }
        payloads.retain(|payload| !payload.is_empty());
        assert_eq!(payloads, [&b"+OK\r\n"[..], b"USER a\r\n"]);
        assert_eq!(indexes, (0..frames.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn the_reading_thread_keeps_its_slots_against_each_workers_slots() {
        let (ts, packet) = data_packet();
        for workers in [1usize, 3] {
            let (senders, _receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| crossbeam_channel::unbounded()).unzip();
            let mut dispatcher = Dispatcher::with_local_share(queues(senders), QueuePolicy::Block);
            let flows = 20_000u16;
            let mut local = 0u32;
            for port in 1..=flows {
                let forward = TcpPacket { src_port: port, ..packet };
                let routed = dispatcher.route(ts, Some(&forward), None).unwrap();
                let reply = TcpPacket { src: forward.dst, dst: forward.src, src_port: 110, dst_port: port, ..packet };
                assert_eq!(
                    dispatcher.route(ts, Some(&reply), None).unwrap().local,
                    routed.local,
                    "one flow, one thread"
                );
                local += u32::from(routed.local);
            }
            // The share the flow limits are split by (see `Share`) is the share routed.
            let expected = Share::file_run(workers).0.of(usize::from(flows)) as f64;
            let share = f64::from(local);
            assert!(
                (share - expected).abs() < expected * 0.1,
                "{workers} worker(s): {local} local flows, {expected} expected"
            );
        }
    }

    /// Segments of frames read from a file travel as places in the shared read blocks, a batch
    /// holding at most `BATCH_BLOCKS` of them, and come out with the bytes that were read.
    #[test]
    fn segments_read_from_a_file_travel_in_their_blocks_without_copies() {
        let chunk: Vec<u8> = (0..1_000u32).map(|i| (i % 251) as u8).collect();
        let mut conversation = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 143));
        conversation.handshake();
        for _ in 0..3_000 {
            conversation.client(&chunk);
        }
        let capture = crate::pcapwriter::write_pcap(Vec::new(), &conversation.frames().unwrap()).unwrap();
        let mut source =
            crate::capture::FileSource::from_reader("test".into(), Box::new(std::io::Cursor::new(capture))).unwrap();
        let (sender, receiver) = crossbeam_channel::unbounded();
        let mut dispatcher = Dispatcher::new(queues(vec![sender]), QueuePolicy::Block);
        let mut decoder = Decoder::new();
        let mut blocks_seen: Vec<SharedBlock> = Vec::new();
        while let Some((frame, block)) = source.next_frame_in_block().unwrap() {
            let block = block.expect("shared");
            if !blocks_seen.iter().any(|seen| seen.is(block)) {
                blocks_seen.push(block.clone());
            }
            match decoder.decode(&frame) {
                Decoded::Tcp(packet) => dispatcher.route(frame.ts, Some(&packet), Some(block)).unwrap(),
                Decoded::Skipped(_) => dispatcher.route(frame.ts, None, Some(block)).unwrap(),
            };
        }
        assert!(blocks_seen.len() >= 3, "the capture spans several blocks");
        dispatcher.flush().unwrap();
        drop(dispatcher);
        let mut stream = Vec::new();
        for batch in receiver.iter() {
            assert!(batch.copied.is_empty(), "no payload was copied");
            assert!(batch.blocks.len() <= BATCH_BLOCKS);
            for job in batch.jobs() {
                if let Job::Segment { segment, .. } = job {
                    stream.extend_from_slice(batch.packet(segment).payload);
                }
            }
        }
        assert_eq!(stream, chunk.repeat(3_000));

        // A sparse worker's batch goes out as soon as its payloads span two blocks.
        let mut sparse = Batch::new();
        let first = blocks_seen[0].bytes().get(1_000..1_100).unwrap();
        let packet = TcpPacket { payload: first, ..data_packet().1 };
        sparse.push_segment(0, &packet, Timestamp::default(), Some(&blocks_seen[0]));
        sparse.push_segment(1, &packet, Timestamp::default(), Some(&blocks_seen[0]));
        assert!(!sparse.is_full());
        let second = TcpPacket { payload: blocks_seen[1].bytes().get(..100).unwrap(), ..packet };
        sparse.push_segment(2, &second, Timestamp::default(), Some(&blocks_seen[1]));
        assert!(sparse.is_full());
        assert_eq!(sparse.packet(segment_of(&sparse, 2)).payload, second.payload);
        // A payload that is not in the block given (rebuilt from fragments) is copied.
        let rebuilt = b"LOGIN".to_vec();
        sparse.push_segment(3, &TcpPacket { payload: &rebuilt, ..packet }, Timestamp::default(), Some(&blocks_seen[1]));
        assert_eq!(sparse.copied, rebuilt);
        assert_eq!(sparse.packet(segment_of(&sparse, 3)).payload, b"LOGIN");
    }

    fn segment_of(batch: &Batch, wanted: u64) -> &Segment {
        batch
            .jobs()
            .iter()
            .find_map(|job| match job {
                Job::Segment { index, segment } if *index == wanted => Some(segment),
                _ => None,
            })
            .unwrap()
    }

    /// The time and headers (payload left out) of the first frame of [`frames`] carrying data.
    fn data_packet() -> (Timestamp, TcpPacket<'static>) {
        let frames = frames();
        let data = frames.iter().find(|f| f.data.len() > 60).unwrap().as_frame();
        let mut decoder = Decoder::new();
        let Decoded::Tcp(packet) = decoder.decode(&data) else { panic!("not tcp") };
        (data.ts, TcpPacket { payload: &[], ..packet })
    }

    #[test]
    fn a_batch_goes_out_when_its_payload_bytes_reach_the_limit() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let mut dispatcher = Dispatcher::new(queues(vec![sender]), QueuePolicy::Block);
        let (ts, packet) = data_packet();
        let big = vec![b'x'; 64 * 1024];
        let big = TcpPacket { payload: &big, ..packet };
        for _ in 0..BATCH_BYTES / big.payload.len() {
            dispatcher.frame(ts, Some(&big)).unwrap();
        }
        let batch = receiver.try_recv().expect("a full batch was sent");
        assert_eq!(batch.jobs().len(), BATCH_BYTES / big.payload.len());
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_drops_and_counts_in_live_mode() {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let mut dispatcher = Dispatcher::new(queues(vec![sender]), QueuePolicy::Drop);
        let (ts, packet) = data_packet();
        for _ in 0..BATCH_JOBS * 3 {
            dispatcher.frame(ts, Some(&packet)).unwrap();
        }
        assert_eq!(dispatcher.queue_drops, 2 * BATCH_JOBS as u64);
        assert_eq!(receiver.len(), 1);
        drop(receiver);
        for _ in 0..BATCH_JOBS {
            if dispatcher.frame(ts, Some(&packet)).is_err() {
                return;
            }
        }
        panic!("a closed queue must be reported");
    }
}
