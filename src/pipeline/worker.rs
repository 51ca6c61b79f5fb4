//! A worker thread: one engine, fed batches of segments and ticks, its events tagged with their
//! place in the canonical order and passed on to the output thread.

use crossbeam_channel::{Receiver, Sender};

use crate::alert::Event;

use super::dispatch::{flow_id_of, Batch, Job, Order, Phase, END_OF_INPUT};
use super::output::OutputMsg;
use super::stats::SharedStats;
use super::Engine;

/// Runs until the capture side closes the queue, then closes every flow (pending credentials
/// come out with outcome `unknown`). Returns early if the output thread is gone.
pub fn run(
    id: usize,
    mut engine: Engine,
    batches: Receiver<Batch>,
    spare: Sender<Batch>,
    output: Sender<OutputMsg>,
    stats: &SharedStats,
    ordered: bool,
) {
    let mut tagger = Tagger { worker: id, serial: 0, scratch: Vec::new() };
    for mut batch in batches {
        let mut events = Vec::new();
        let mut done_below = 0;
        for job in batch.jobs() {
            let index = match job {
                Job::Tick { index, now } => {
                    engine.expire(*now, &mut tagger.scratch);
                    tagger.tag(*index, Phase::Expiry, &mut events);
                    *index
                }
                Job::Segment { index, segment } => {
                    engine.process(&batch.packet(segment), segment.ts(), &mut tagger.scratch);
                    tagger.tag(*index, Phase::Packet, &mut events);
                    *index
                }
            };
            done_below = index.saturating_add(1);
        }
        batch.clear();
        // The capture side may be gone already (end of input): the batch is then just freed.
        let _ = spare.send(batch);
        stats.publish_worker(id, engine.stats());
        // In ordered mode progress matters even without events: the output waits for it.
        if (ordered || !events.is_empty()) && output.send(OutputMsg::Events { worker: id, events, done_below }).is_err()
        {
            return;
        }
    }
    engine.finish(&mut tagger.scratch);
    let mut events = Vec::new();
    tagger.tag(END_OF_INPUT, Phase::Expiry, &mut events);
    stats.publish_worker(id, engine.stats());
    // The output thread may be gone already (it failed): nothing left to do either way.
    let _ = output.send(OutputMsg::Events { worker: id, events, done_below: END_OF_INPUT });
}

/// Gives each event its [`Order`].
struct Tagger {
    worker: usize,
    serial: u64,
    scratch: Vec<Event>,
}

impl Tagger {
    fn tag(&mut self, index: u64, phase: Phase, into: &mut Vec<(Order, Event)>) {
        for event in self.scratch.drain(..) {
            self.serial += 1;
            let order = Order { index, phase, flow_id: flow_id_of(&event), worker: self.worker, serial: self.serial };
            into.push((order, event));
        }
    }
}
