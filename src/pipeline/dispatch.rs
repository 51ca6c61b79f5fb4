//! The capture side of the threaded pipeline: which worker gets a segment, when packet time
//! ticks, and the batches that carry both over the bounded queues.
//!
//! Everything here is decided from the frame sequence alone (never the thread count or the
//! scheduling), so that one worker or many see the same timeline: a flow's segments go to the
//! worker its symmetric hash names, and every worker gets every tick, in capture order.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::net::IpAddr;

use crossbeam_channel::{Sender, TrySendError};

use crate::alert::Event;
use crate::capture::Timestamp;
use crate::decode::{TcpFlags, TcpPacket, VlanStack};
use crate::flow::FlowKey;

/// Packet time ticks (idle flows are looked for) when it enters a new second.
const TICK_PERIOD_SECS: u64 = 1;
/// Jobs per batch: amortises the queue's synchronisation over many segments.
pub const BATCH_SIZE: usize = 64;

/// A TCP segment owning its payload, on its way from the capture thread to a worker (the capture
/// buffer it was decoded from is reused for the next frame). No `Debug`: it holds payload bytes.
pub struct Segment {
    ts: Timestamp,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    vlan: VlanStack,
    tunnel: u64,
    payload: Vec<u8>,
    payload_missing: u32,
}

impl Segment {
    pub fn new(packet: &TcpPacket<'_>, ts: Timestamp) -> Self {
        Segment {
            ts,
            src: packet.src,
            dst: packet.dst,
            src_port: packet.src_port,
            dst_port: packet.dst_port,
            seq: packet.seq,
            ack: packet.ack,
            flags: packet.flags,
            window: packet.window,
            vlan: packet.vlan,
            tunnel: packet.tunnel,
            payload: packet.payload.to_vec(),
            payload_missing: packet.payload_missing,
        }
    }

    pub fn ts(&self) -> Timestamp {
        self.ts
    }

    /// The segment as the decoder produced it, borrowing the owned payload.
    pub fn packet(&self) -> TcpPacket<'_> {
        TcpPacket {
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            vlan: self.vlan,
            tunnel: self.tunnel,
            payload: &self.payload,
            payload_missing: self.payload_missing,
        }
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

/// Decides when packet time ticks: whenever a timestamp enters a later period than any before.
/// Out-of-order timestamps (captures are not always sorted) never move time back.
#[derive(Debug, Default)]
pub struct Clock {
    period: Option<u64>,
}

impl Clock {
    /// Whether `ts` makes time tick; the first timestamp only starts the clock (there is nothing
    /// to expire yet).
    pub fn tick_due(&mut self, ts: Timestamp) -> bool {
        let period = ts.secs() / TICK_PERIOD_SECS;
        match self.period {
            Some(current) if period <= current => false,
            started => {
                self.period = Some(period);
                started.is_some()
            }
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

/// Feeds the workers from one capture thread.
pub struct Dispatcher {
    queues: Vec<Sender<Vec<Job>>>,
    batches: Vec<Vec<Job>>,
    policy: QueuePolicy,
    clock: Clock,
    next_index: u64,
    /// Segments dropped because a queue was full.
    pub queue_drops: u64,
}

impl Dispatcher {
    pub fn new(queues: Vec<Sender<Vec<Job>>>, policy: QueuePolicy) -> Self {
        let batches = queues.iter().map(|_| Vec::with_capacity(BATCH_SIZE)).collect();
        Dispatcher { queues, batches, policy, clock: Clock::default(), next_index: 0, queue_drops: 0 }
    }

    /// One captured frame, with its TCP segment if it had one. Returns whether time ticked.
    pub fn frame(&mut self, ts: Timestamp, packet: Option<&TcpPacket<'_>>) -> Result<bool, Disconnected> {
        let index = self.next_index;
        self.next_index = self.next_index.wrapping_add(1);
        let ticked = self.clock.tick_due(ts);
        if ticked {
            self.tick(index, ts)?;
        }
        if let Some(packet) = packet {
            let worker = shard(FlowKey::of(packet).0.symmetric_hash(), self.queues.len());
            let full = match self.batches.get_mut(worker) {
                Some(batch) => {
                    batch.push(Job::Segment { index, segment: Segment::new(packet, ts) });
                    batch.len() >= BATCH_SIZE
                }
                None => false,
            };
            if full {
                self.send(worker)?;
            }
        }
        Ok(ticked)
    }

    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    /// The capture is idle at wall-clock time `now` (live mode): let time tick if due, and hand
    /// the workers what is waiting so that alerts are not held back. Returns whether time ticked.
    pub fn idle(&mut self, now: Timestamp) -> Result<bool, Disconnected> {
        let ticked = self.clock.tick_due(now);
        if ticked {
            self.tick(self.next_index, now)?;
        } else {
            self.flush()?;
        }
        Ok(ticked)
    }

    /// Every worker gets the tick, then every batch goes out so that all workers move on together.
    fn tick(&mut self, index: u64, now: Timestamp) -> Result<(), Disconnected> {
        for batch in &mut self.batches {
            batch.push(Job::Tick { index, now });
        }
        self.flush()
    }

    /// Sends every non-empty batch.
    pub fn flush(&mut self) -> Result<(), Disconnected> {
        for worker in 0..self.batches.len() {
            if self.batches.get(worker).is_some_and(|batch| !batch.is_empty()) {
                self.send(worker)?;
            }
        }
        Ok(())
    }

    fn send(&mut self, worker: usize) -> Result<(), Disconnected> {
        let (Some(batch), Some(queue)) = (self.batches.get_mut(worker), self.queues.get(worker)) else {
            return Ok(());
        };
        let batch = std::mem::replace(batch, Vec::with_capacity(BATCH_SIZE));
        match self.policy {
            QueuePolicy::Block => queue.send(batch).map_err(|_| Disconnected),
            QueuePolicy::Drop => match queue.try_send(batch) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(batch)) => {
                    let segments = batch.iter().filter(|job| matches!(job, Job::Segment { .. })).count();
                    self.queue_drops = self.queue_drops.saturating_add(segments as u64);
                    Ok(())
                }
                Err(TrySendError::Disconnected(_)) => Err(Disconnected),
            },
        }
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
        assert!(!clock.tick_due(secs(100)), "the first timestamp starts the clock");
        assert!(!clock.tick_due(Timestamp::from_secs_nanos(100, 900_000_000)));
        assert!(clock.tick_due(secs(101)));
        assert!(!clock.tick_due(secs(99)), "an older timestamp does not tick");
        assert!(!clock.tick_due(secs(101)));
        assert!(clock.tick_due(secs(105)));
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

    #[test]
    fn both_directions_of_a_flow_go_to_one_worker_and_segments_own_their_payload() {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..4).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut dispatcher = Dispatcher::new(senders, QueuePolicy::Block);
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
        let per_worker: Vec<Vec<Job>> = receivers.iter().map(|rx| rx.iter().flatten().collect()).collect();
        let busy: Vec<&Vec<Job>> = per_worker.iter().filter(|jobs| !jobs.is_empty()).collect();
        assert_eq!(busy.len(), 1, "one flow, one worker");
        let payloads: Vec<&[u8]> = busy[0]
            .iter()
            .filter_map(|job| match job {
                Job::Segment { segment, .. } => Some(segment.packet().payload),
                Job::Tick { .. } => None,
            })
            .filter(|payload| !payload.is_empty())
            .collect();
        assert_eq!(payloads, [&b"+OK\r\n"[..], b"USER a\r\n"]);
        let indexes: Vec<u64> = busy[0]
            .iter()
            .filter_map(|job| match job {
                Job::Segment { index, .. } => Some(*index),
                Job::Tick { .. } => None,
            })
            .collect();
        assert_eq!(indexes, (0..frames.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_drops_and_counts_in_live_mode() {
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let mut dispatcher = Dispatcher::new(vec![sender], QueuePolicy::Drop);
        let mut decoder = Decoder::new();
        let frames = frames();
        let data = frames.iter().find(|f| f.data.len() > 60).unwrap().as_frame();
        let Decoded::Tcp(packet) = decoder.decode(&data) else { panic!("not tcp") };
        for _ in 0..BATCH_SIZE * 3 {
            dispatcher.frame(data.ts, Some(&packet)).unwrap();
        }
        assert_eq!(dispatcher.queue_drops, 2 * BATCH_SIZE as u64);
        assert_eq!(receiver.len(), 1);
        drop(receiver);
        for _ in 0..BATCH_SIZE {
            if dispatcher.frame(data.ts, Some(&packet)).is_err() {
                return;
            }
        }
        panic!("a closed queue must be reported");
    }
}
