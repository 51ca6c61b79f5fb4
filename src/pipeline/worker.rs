//! A worker: one engine, fed segments and ticks, its events tagged with their place in the
//! canonical order and passed on to the writer: the output thread (live), or the first worker
//! thread, which writes too (file runs). It runs on a thread of its own, or (file runs) on the
//! capture thread for the capture thread's own share of the flows.

use super::RunError;

use crossbeam_channel::{Receiver, Sender};

use crate::alert::Event;
use crate::capture::Timestamp;
use crate::decode::TcpPacket;

use super::dispatch::{flow_id_of, Batch, Disconnected, Job, Order, Phase, END_OF_INPUT};
use super::output::{OutputMsg, Writer};
use super::stats::SharedStats;
use super::Engine;

/// A worker thread: runs until the capture side closes the queue, then closes every flow
/// (pending credentials come out with outcome `unknown`). Returns early if the writer is gone.
pub fn run(mut shard: Shard<'_>, batches: Receiver<Batch>, spare: Sender<Batch>) {
    for batch in batches {
        shard.work_through(batch, &spare);
        if shard.publish().is_err() {
            return;
        }
    }
    shard.finish();
}

/// The worker thread that also writes (file runs): after each batch, its own events and what the
/// others sent over `others`, as far as every worker has moved on; once its queue closes, it
/// closes its flows, waits for the others to finish and returns the writer, everything written
/// but the closing stats and summary. Returns early if writing fails.
pub fn run_writing<'s>(
    mut shard: Shard<'_>,
    batches: Receiver<Batch>,
    spare: Sender<Batch>,
    mut writer: Writer<'s>,
    others: Receiver<OutputMsg>,
) -> Result<Writer<'s>, RunError> {
    for batch in batches {
        shard.work_through(batch, &spare);
        if let Some(message) = shard.report() {
            writer.take(message)?;
        }
        while let Ok(message) = others.try_recv() {
            writer.take(message)?;
        }
    }
    shard.close();
    if let Some(message) = shard.report() {
        writer.take(message)?;
    }
    for message in &others {
        writer.take(message)?;
    }
    Ok(writer)
}

/// One worker's engine and what it owes the writer.
pub struct Shard<'s> {
    id: usize,
    engine: Engine,
    /// Where the events go; `None` for the worker that writes them itself ([`run_writing`]).
    output: Option<Sender<OutputMsg>>,
    stats: &'s SharedStats,
    /// File runs: progress matters even without events (the output waits for it).
    ordered: bool,
    /// Events of the engine's latest step, to be tagged.
    scratch: Vec<Event>,
    /// Tagged events not sent yet.
    events: Vec<(Order, Event)>,
    serial: u64,
    /// Frame index below which everything is done.
    done_below: u64,
}

impl<'s> Shard<'s> {
    pub fn new(
        id: usize,
        engine: Engine,
        output: Option<Sender<OutputMsg>>,
        stats: &'s SharedStats,
        ordered: bool,
    ) -> Self {
        Shard { id, engine, output, stats, ordered, scratch: Vec::new(), events: Vec::new(), serial: 0, done_below: 0 }
    }

    /// Runs a batch's jobs, then hands the emptied batch back to the capture side (which may be
    /// gone already, at the end of input: the batch is then just freed).
    fn work_through(&mut self, mut batch: Batch, spare: &Sender<Batch>) {
        for job in batch.jobs() {
            match job {
                Job::Tick { index, now } => self.tick(*index, *now),
                Job::Segment { index, segment } => self.segment(*index, &batch.packet(segment), segment.ts()),
            }
        }
        batch.clear();
        let _ = spare.send(batch);
    }

    /// Packet time reached `now` at frame `index`: expire idle flows.
    pub fn tick(&mut self, index: u64, now: Timestamp) {
        self.engine.expire(now, &mut self.scratch);
        self.tag(index, Phase::Expiry);
    }

    /// Frame `index` carried this segment of one of the shard's flows.
    pub fn segment(&mut self, index: u64, packet: &TcpPacket<'_>, ts: Timestamp) {
        self.engine.process(packet, ts, &mut self.scratch);
        self.tag(index, Phase::Packet);
    }

    /// Everything up to frame `index` is done (the frames in between were other shards').
    pub fn done_up_to(&mut self, index: u64) {
        self.done_below = self.done_below.max(index.saturating_add(1));
    }

    /// Hands the events so far and the progress to the writer, and publishes the counters.
    pub fn publish(&mut self) -> Result<(), Disconnected> {
        match (self.report(), &self.output) {
            (Some(message), Some(output)) => output.send(message).map_err(|_| Disconnected),
            _ => Ok(()),
        }
    }

    /// Publishes the counters; returns the events so far and the progress, unless there is
    /// nothing to tell.
    fn report(&mut self) -> Option<OutputMsg> {
        self.stats.publish_worker(self.id, self.engine.stats());
        if !self.ordered && self.events.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut self.events);
        Some(OutputMsg::Events { worker: self.id, events, done_below: self.done_below })
    }

    /// End of input: every flow closes, and the last events go out.
    pub fn finish(mut self) {
        self.close();
        // The writer may be gone already (it failed): nothing left to do either way.
        let _ = self.publish();
    }

    /// Every flow closes: the last events.
    fn close(&mut self) {
        self.engine.finish(&mut self.scratch);
        self.tag(END_OF_INPUT, Phase::Expiry);
        self.done_below = END_OF_INPUT;
    }

    /// Tags the engine's latest events with their place in the canonical order (most steps have
    /// none: that case is kept to a check).
    #[inline]
    fn tag(&mut self, index: u64, phase: Phase) {
        if !self.scratch.is_empty() {
            self.tag_events(index, phase);
        }
        self.done_up_to(index);
    }

    fn tag_events(&mut self, index: u64, phase: Phase) {
        for event in self.scratch.drain(..) {
            self.serial += 1;
            let order = Order { index, phase, flow_id: flow_id_of(&event), worker: self.id, serial: self.serial };
            self.events.push((order, event));
        }
    }
}
