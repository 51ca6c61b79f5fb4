//! Wiring: capture → decode → engine → outputs, for files and (with the `live` feature) network
//! interfaces.
//!
//! # Threads
//!
//! ```text
//! live:   capture+decode ──batches──▶ worker 0..N (engine) ──events──▶ output (sinks, summary)
//!         (one per interface)  bounded queues,        bounded queue
//!                              sharded by flow
//!
//! files:  read+decode+engine (share 0) ──batches──▶ worker 1 (engine, sinks) ◀──events── 2..N
//! ```
//!
//! A capture thread decodes each frame, puts the TCP segments (only those) into batches and sends
//! them to the worker the flow's symmetric hash names, so that both directions of a connection
//! meet in one flow table without locks. Reading files, a batch holds the read blocks its
//! payloads lie in rather than copies of them ([`crate::capture::SharedBlock`]); live capture
//! copies the payloads (one buffer per batch, reused), since libpcap reuses its buffer. When
//! packet time enters a new second, every worker gets a tick so that idle workers expire flows on
//! packet time too. One thread alone owns the sinks: live, an output thread; reading files, the
//! first worker thread, which writes between its batches (on two cores, a third thread for the
//! output only took turns with the other two). Reading files, the capture thread is a worker as
//! well: it keeps a share of the flows (two fifths of a worker thread's, since it also reads and
//! decodes everything) and analyses them in place.
//!
//! Files never lose a packet: a full queue makes the reader wait. Their output is put back into
//! the order a single engine produces (by frame, flow and production order), so `read` writes the
//! same lines in the same order whatever `--threads` says. With one thread, `read` runs
//! everything on the calling thread, without queues or copies. Live capture never waits: a full
//! queue drops the batch and counts it (see the `live` module), but for its last batches at the
//! stop, which wait a few seconds for room.
//!
//! Flows carry over from one file to the next, so a capture rotated into several files reads as
//! one. The flow limits are split between the threads in the proportions of their shares of the
//! flows.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod dispatch;
mod engine;
mod inputs;
#[cfg(feature = "live")]
pub mod live;
mod output;
mod stats;
mod worker;

use std::path::PathBuf;
use std::thread::{Scope, ScopedJoinHandle};

use crossbeam_channel::Sender;

use crate::alert::{Event, StatsEvent};
use crate::capture::{CaptureError, FileSource, SharedBlock, Timestamp};
use crate::decode::{DecodeStats, Decoded, Decoder, TcpPacket};
use crate::flow::FlowLimits;
use crate::output::{Sink, Unread};
use crate::progress::{Progress, ReadProgress};
use crate::proto::ProtoConfig;

use dispatch::{sort_by_flow, Batch, Clock, Disconnected, Dispatcher, QueuePolicy, Queues, Share, BATCH_JOBS};
pub use engine::{Engine, EngineStats};
pub use inputs::{expand_inputs, Input, InputError, UnreadableInput};
use output::{Output, OutputMode, OutputMsg, Writer};
use stats::{CaptureCounters, SharedStats};
use worker::Shard;

/// Segments each worker's queue holds by default: about a second of a busy mail SPAN per worker.
pub const DEFAULT_QUEUE_SEGMENTS: usize = 65_536;
/// The most `--queue-size` may ask for: 16 times the default, whose full queue may hold up to
/// about 360 MiB per worker (1,024 batches of at most 256 KiB of payload plus their segments'
/// headers). More would only hide analysis that cannot keep up, at the cost of memory the queues
/// keep once filled.
pub const MAX_QUEUE_SEGMENTS: usize = 16 * DEFAULT_QUEUE_SEGMENTS;
/// Batches each worker's queue holds when reading files: enough to keep the worker busy while the
/// reader fills the next; a deeper queue only costs memory, since the reader waits anyway.
const FILE_QUEUE_BATCHES: usize = 4;
/// Frames between two reports of the reading thread's own worker to the writing worker (which
/// holds other workers' events until every worker is past them).
const LOCAL_PUBLISH_EVERY: u64 = 1024;

/// Everything a run needs, resolved from the command line.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub flow: FlowLimits,
    pub proto: ProtoConfig,
    /// Worker threads. With one, `read` runs on the calling thread; live capture always keeps its
    /// capture thread apart from the workers.
    pub threads: usize,
    /// Segments each worker's queue holds.
    pub queue_segments: usize,
    /// Write the closing stats as a `stats` event (live capture always writes them).
    pub stats_event: bool,
    /// Tell flows apart without their VLAN ids ([`Decoder::ignoring_vlans`]).
    pub ignore_vlans: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            flow: FlowLimits::default(),
            proto: ProtoConfig::default(),
            threads: 1,
            queue_segments: DEFAULT_QUEUE_SEGMENTS,
            stats_event: false,
            ignore_vlans: false,
        }
    }
}

impl RunConfig {
    fn workers(&self) -> usize {
        self.threads.max(1)
    }

    /// The flow limits of a thread with `share` of the flows.
    fn shard_limits(&self, share: Share) -> FlowLimits {
        FlowLimits {
            max_flows: share.of(self.flow.max_flows).max(1),
            max_buffered_total: share.of(self.flow.max_buffered_total),
            ..self.flow
        }
    }

    /// Batches each worker's queue holds live: `queue_segments` worth, to ride out bursts.
    fn queue_batches(&self) -> usize {
        self.queue_segments.div_ceil(BATCH_JOBS).max(1)
    }
}

/// What a run did, for the exit status and the closing log line.
#[derive(Debug, Default)]
pub struct RunReport {
    pub files_read: usize,
    /// Files that could not be read to the end (the message names file and offset).
    pub file_errors: Vec<String>,
    pub frames: u64,
    pub bytes: u64,
    pub cleartext_alerts: u64,
    pub weak_alerts: u64,
    pub anomalies: u64,
    pub decode: DecodeStats,
    pub engine: EngineStats,
    /// The most read blocks one file needed (a threaded run shares them with its workers; the
    /// README's memory bounds say how many at most).
    pub read_blocks: u64,
    /// The closing stats report (as logged, and written when asked).
    pub stats: StatsEvent,
}

/// An error that stops the whole run (the outputs failed). Each message holds its cause, which is
/// therefore not also its `source()`: an error-chain printer would say it twice.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    /// Every output's reader went away (standard output, the only one, was a pipe its reader
    /// closed): the run stopped early, as Unix tools do. Carries the cleartext credentials found
    /// by then, for `--fail-on-alert`, and the files that had failed by then, which the exit
    /// status must still tell.
    #[error("standard output was closed by its reader")]
    OutputClosed { cleartext_alerts: u64, unread_files: usize },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// Live: an interface's capture thread ended before the run was asked to stop.
    #[error("the capture of {interface} failed: {reason}")]
    Capture { interface: String, reason: String },
}

/// Reads capture files one after another. A file that cannot be read (or not to its end) is
/// reported and the run goes on with the next; what it held up to the error is kept.
pub fn read_files(paths: &[PathBuf], config: &RunConfig, sink: &mut dyn Sink) -> Result<RunReport, RunError> {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::Capture).collect();
    read_inputs(&inputs, config, sink, None)
}

/// Frames between two progress updates: often enough for a smooth bar, rare enough to cost nothing.
const PROGRESS_EVERY: u64 = 4096;

/// [`read_files`] over the inputs [`expand_inputs`] found (those that could not be looked into are
/// reported in their place, as files that cannot be opened), telling `progress` how far it got
/// every few thousand frames.
pub fn read_inputs(
    inputs: &[Input],
    config: &RunConfig,
    sink: &mut dyn Sink,
    progress: Option<&mut dyn Progress>,
) -> Result<RunReport, RunError> {
    let shared = SharedStats::new(["files".to_string()], config.workers());
    let mut report = RunReport::default();
    match read_into(inputs, config, sink, progress, &shared, &mut report) {
        Ok(stats) => Ok(report.completed(&shared, stats)),
        Err(RunError::OutputClosed { cleartext_alerts, .. }) => {
            Err(RunError::OutputClosed { cleartext_alerts, unread_files: report.file_errors.len() })
        }
        Err(error) => Err(error),
    }
}

/// [`read_inputs`] into `report`, returning the closing stats.
fn read_into(
    inputs: &[Input],
    config: &RunConfig,
    sink: &mut dyn Sink,
    mut progress: Option<&mut dyn Progress>,
    shared: &SharedStats,
    report: &mut RunReport,
) -> Result<StatsEvent, RunError> {
    let mut counters = CaptureCounters { name: "files".to_string(), ..CaptureCounters::default() };
    let mut decoder = Decoder::new().ignoring_vlans(config.ignore_vlans);
    if config.workers() == 1 {
        let mut inline = Inline {
            engine: Engine::new(config.flow, config.proto.clone()),
            clock: Clock::default(),
            output: Output::new(sink, false),
            events: Vec::new(),
            shared,
        };
        let reader =
            Reader { decoder: &mut decoder, counters: &mut counters, progress: progress.as_deref_mut(), shared };
        reader.read_all(inputs, report, |ts, packet, _, first_of_frame| inline.frame(ts, packet, first_of_frame))?;
        inline.finish()?;
        counters.decode = decoder.stats.clone();
        shared.publish_capture(0, &counters);
        shared.publish_worker(0, inline.engine.stats());
        let output = &mut inline.output;
        let stats = output
            .stats(shared.event(closing_time(&counters), true, false), config.stats_event)
            .map_err(|error| output.stopped(error))?;
        output.finish(&unread(report, &stats)).map_err(|error| output.stopped(error))?;
        return Ok(stats);
    }
    let mode = OutputMode { workers: config.workers(), ordered: true, flush_when_idle: false };
    std::thread::scope(|scope| {
        // The reading thread is a worker too: it keeps one share of the flows, the other
        // `threads - 1` shares go to worker threads, the first of which writes.
        let depth = config.queue_batches().min(FILE_QUEUE_BATCHES);
        let (local_share, worker_share) = Share::file_run(config.workers() - 1);
        let plan =
            WorkerPlan { first: 1, queue_batches: depth, ordered: true, limits: config.shard_limits(worker_share) };
        let FileWorkers { writing, others, queues, events } =
            start_file_workers(scope, config, plan, sink, shared, mode)?;
        let engine = Engine::new(config.shard_limits(local_share), config.proto.clone());
        let mut local = Shard::new(0, engine, Some(events), shared, true);
        let mut dispatcher = Dispatcher::with_local_share(queues, QueuePolicy::Block);
        // The workers being gone means the output failed: joining the writer says why.
        let reader = Reader { decoder: &mut decoder, counters: &mut counters, progress, shared };
        let _ = reader
            .read_all(inputs, report, |ts, packet, block, first_of_frame| {
                let routed = match packet {
                    Some(packet) if !first_of_frame => dispatcher.route_more(ts, packet, block)?,
                    _ => dispatcher.route(ts, packet, block)?,
                };
                if let Some(now) = routed.tick {
                    local.tick(routed.index, now);
                }
                match packet {
                    Some(packet) if routed.local => local.segment(routed.index, packet, ts),
                    _ => local.done_up_to(routed.index),
                }
                if routed.index % LOCAL_PUBLISH_EVERY == 0 {
                    local.publish()?;
                }
                Ok::<(), Disconnected>(())
            })
            .and_then(|()| dispatcher.flush());
        drop(dispatcher);
        local.finish();
        counters.decode = decoder.stats.clone();
        shared.publish_capture(0, &counters);
        for worker in others {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let mut writer = match writing.join() {
            Ok(writer) => writer?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let output = &mut writer.output;
        let mut stats = output
            .stats(shared.event(closing_time(&counters), true, false), config.stats_event)
            .map_err(|error| output.stopped(error))?;
        stats.alerts = writer.finish(&unread(report, &stats))?;
        Ok(stats)
    })
}

/// What the run could not read: the files that failed, and the frames that could not be decoded.
fn unread(report: &RunReport, stats: &StatsEvent) -> Unread {
    Unread { files: report.file_errors.clone(), undecoded_frames: stats.decode.not_looked_into() }
}

/// When a file run's closing `stats` event happened: its last packet's time, or, for a run that
/// read none (empty or unreadable captures, the runs an operator most wants to see), the time it
/// ended, not 1970.
fn closing_time(counters: &CaptureCounters) -> Timestamp {
    if counters.frames == 0 {
        Timestamp::now()
    } else {
        counters.last_ts
    }
}

/// What [`start_file_workers`] starts.
struct FileWorkers<'scope, 'env> {
    /// Worker 1, which writes; joined, it returns the writer.
    writing: ScopedJoinHandle<'scope, Result<Writer<'env>, RunError>>,
    others: Vec<ScopedJoinHandle<'scope, ()>>,
    /// Every worker's queue, worker 1's first.
    queues: Queues,
    /// Where the other workers and the reading thread's own share send their events.
    events: Sender<OutputMsg>,
}

/// Worker threads, and the queues that feed them.
struct Workers<'scope> {
    threads: Vec<ScopedJoinHandle<'scope, ()>>,
    queues: Vec<Sender<Batch>>,
}

/// Which worker threads to start: numbered from `first` to the configured count, each with a
/// queue of `queue_batches` batches and an engine of `limits`, reporting their progress even
/// without events when `ordered` (file runs).
#[derive(Clone, Copy)]
struct WorkerPlan {
    first: usize,
    queue_batches: usize,
    ordered: bool,
    limits: FlowLimits,
}

/// The worker threads of a file run, numbered from `plan.first` (1: 0 is the reading thread's
/// own share). Worker 1 also writes (see
/// [`worker::run_writing`]): on two cores, a third thread for the output only took turns with the
/// other two, at a cost. The others' events go to it over an unbounded queue, so that nobody waits
/// for it but at the end.
fn start_file_workers<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    config: &'env RunConfig,
    plan: WorkerPlan,
    sink: &'env mut dyn Sink,
    shared: &'env SharedStats,
    mode: OutputMode,
) -> Result<FileWorkers<'scope, 'env>, RunError> {
    let (events, others) = crossbeam_channel::unbounded();
    let (spare, spares) = crossbeam_channel::unbounded();
    let (queue, batches) = crossbeam_channel::bounded(plan.queue_batches);
    let shard = Shard::new(plan.first, Engine::new(plan.limits, config.proto.clone()), None, shared, true);
    let writer = Writer::new(sink, mode, shared);
    let writer_spare = spare.clone();
    let writing = std::thread::Builder::new()
        .name(format!("worker-{}", plan.first))
        .spawn_scoped(scope, move || worker::run_writing(shard, batches, writer_spare, writer, others))
        .map_err(RunError::Thread)?;
    let plan = WorkerPlan { first: plan.first + 1, ..plan };
    let Workers { threads: others, queues } = start_workers(scope, config, plan, &events, &spare, shared)?;
    // The queues go to the capture side alone: the workers finish when it drops them.
    let queues = Queues { workers: [queue].into_iter().chain(queues).collect(), spare: spares };
    Ok(FileWorkers { writing, others, queues, events })
}

/// Starts the worker threads of `plan`, sending their events to `events` and their emptied
/// batches to `spare` (they finish when every copy of their queues is dropped).
fn start_workers<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    config: &'env RunConfig,
    plan: WorkerPlan,
    events: &Sender<OutputMsg>,
    spare: &Sender<Batch>,
    shared: &'env SharedStats,
) -> Result<Workers<'scope>, RunError> {
    let mut workers = Workers { threads: Vec::new(), queues: Vec::new() };
    for id in plan.first..config.workers() {
        let (queue, batches) = crossbeam_channel::bounded(plan.queue_batches);
        workers.queues.push(queue);
        let engine = Engine::new(plan.limits, config.proto.clone());
        let shard = Shard::new(id, engine, Some(events.clone()), shared, plan.ordered);
        let spare = spare.clone();
        // On failure the threads started so far end as their queues are dropped.
        let worker = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn_scoped(scope, move || worker::run(shard, batches, spare));
        workers.threads.push(worker.map_err(RunError::Thread)?);
    }
    Ok(workers)
}

impl RunReport {
    /// Fills in the totals from the threads' counters and the closing stats.
    fn completed(mut self, shared: &SharedStats, stats: StatsEvent) -> RunReport {
        for capture in shared.captures() {
            self.frames += capture.frames;
            self.bytes += capture.bytes;
            stats::add_decode(&mut self.decode, &capture.decode);
        }
        self.engine = shared.engine();
        self.cleartext_alerts = stats.alerts.cleartext_credential;
        self.weak_alerts = stats.alerts.weak_credential;
        self.anomalies = stats.alerts.anomaly;
        self.stats = stats;
        self
    }
}

/// The capture side of a file run: files in, decoded frames to `feed`, progress out.
struct Reader<'r, 'p> {
    decoder: &'r mut Decoder,
    counters: &'r mut CaptureCounters,
    progress: Option<&'r mut (dyn Progress + 'p)>,
    shared: &'r SharedStats,
}

impl Reader<'_, '_> {
    /// Reads every file into `feed`, a call per packet (or per frame that held none), saying
    /// whether it is its frame's first (an 802.11 aggregate holds several); stops early only when
    /// `feed` fails.
    fn read_all<E>(
        mut self,
        inputs: &[Input],
        report: &mut RunReport,
        mut feed: impl FnMut(Timestamp, Option<&TcpPacket<'_>>, Option<&SharedBlock>, bool) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut bytes_of_finished_files = 0;
        for input in inputs {
            let opened = match input {
                Input::Capture(path) => FileSource::open(path).map_err(|error| error.to_string()),
                Input::Unreadable(error) => Err(error.to_string()),
            };
            let mut source = match opened {
                Ok(source) => source,
                Err(error) => {
                    report.files_read += 1;
                    self.clear_progress();
                    tracing::error!("{error}");
                    report.file_errors.push(error);
                    continue;
                }
            };
            tracing::info!(file = source.name(), "reading");
            // What the decoder warns about while reading is told with the file's name.
            let span = tracing::warn_span!("capture", file = source.name());
            let outcome = span.in_scope(|| self.read_one(&mut source, bytes_of_finished_files, &mut feed))?;
            bytes_of_finished_files += source.bytes_read();
            report.read_blocks = report.read_blocks.max(source.blocks_made());
            report.files_read += 1;
            if let Err(error) = outcome {
                self.clear_progress();
                tracing::error!("{error}");
                report.file_errors.push(error.to_string());
            }
        }
        self.clear_progress();
        Ok(())
    }

    /// Reads one source to its end. The outer error is `feed` failing (fatal), the inner one this
    /// file failing (the run goes on).
    fn read_one<E>(
        &mut self,
        source: &mut FileSource,
        bytes_before: u64,
        feed: &mut impl FnMut(Timestamp, Option<&TcpPacket<'_>>, Option<&SharedBlock>, bool) -> Result<(), E>,
    ) -> Result<Result<(), CaptureError>, E> {
        loop {
            if self.counters.frames.is_multiple_of(PROGRESS_EVERY) {
                self.show_progress(source, bytes_before);
            }
            let (frame, block) = match source.next_frame_in_block() {
                Ok(Some(next)) => next,
                Ok(None) => return Ok(Ok(())),
                Err(error) => return Ok(Err(error)),
            };
            self.counters.frames += 1;
            self.counters.bytes += frame.data.len() as u64;
            self.counters.last_ts = self.counters.last_ts.max(frame.ts);
            match self.decoder.decode(&frame) {
                Decoded::Tcp(packet) => feed(frame.ts, Some(&packet), block, true)?,
                Decoded::Skipped(_) => feed(frame.ts, None, block, true)?,
            }
            // The other packets of an aggregate frame (802.11 A-MSDU).
            while let Some(decoded) = self.decoder.decode_next(&frame) {
                if let Decoded::Tcp(packet) = decoded {
                    feed(frame.ts, Some(&packet), block, false)?;
                }
            }
        }
    }

    fn show_progress(&mut self, source: &FileSource, bytes_before: u64) {
        if let Some(progress) = self.progress.as_deref_mut() {
            progress.update(&ReadProgress {
                file: source.name(),
                bytes: bytes_before + source.bytes_read(),
                alerts: self.shared.credentials_written(),
            });
        }
    }

    fn clear_progress(&mut self) {
        if let Some(progress) = self.progress.as_deref_mut() {
            progress.clear();
        }
    }
}

/// `--threads 1` for files: the engine on the calling thread, in the same order the threaded
/// pipeline restores.
struct Inline<'s> {
    engine: Engine,
    clock: Clock,
    output: Output<'s>,
    events: Vec<Event>,
    shared: &'s SharedStats,
}

impl Inline<'_> {
    /// One packet of a frame (or the frame, when it held none); packet time is read from its
    /// frame's first.
    fn frame(&mut self, ts: Timestamp, packet: Option<&TcpPacket<'_>>, first_of_frame: bool) -> Result<(), RunError> {
        if let Some(now) = first_of_frame.then(|| self.clock.tick_due(ts)).flatten() {
            self.engine.expire(now, &mut self.events);
            self.emit()?;
        }
        if let Some(packet) = packet {
            self.engine.process(packet, ts, &mut self.events);
            self.emit()?;
        }
        Ok(())
    }

    fn emit(&mut self) -> Result<(), RunError> {
        if self.events.is_empty() {
            return Ok(());
        }
        sort_by_flow(&mut self.events);
        for event in self.events.drain(..) {
            self.output.event(&event).map_err(|error| self.output.stopped(error))?;
        }
        self.shared.publish_alerts(&self.output.counts);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), RunError> {
        self.engine.finish(&mut self.events);
        self.emit()
    }
}

/// The workers and the output thread of a live run.
#[cfg_attr(not(feature = "live"), allow(dead_code))]
struct Threads<'scope> {
    output: Sender<OutputMsg>,
    workers: Vec<ScopedJoinHandle<'scope, ()>>,
    writer: ScopedJoinHandle<'scope, Result<crate::alert::AlertCounts, RunError>>,
}

#[cfg_attr(not(feature = "live"), allow(dead_code))]
impl<'scope> Threads<'scope> {
    /// Starts the output thread, behind a queue of `output_queue` messages, and the worker
    /// threads, each with a queue of `queue_batches` batches; returns them with the workers'
    /// queues, to be handed to the capture threads (the workers finish when every copy of them is
    /// dropped).
    fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        config: &'env RunConfig,
        (queue_batches, output_queue): (usize, usize),
        sink: &'env mut dyn Sink,
        shared: &'env SharedStats,
        mode: OutputMode,
    ) -> Result<(Self, Queues), RunError> {
        let (output, output_queue) = crossbeam_channel::bounded(output_queue);
        let writer = std::thread::Builder::new()
            .name("output".to_string())
            .spawn_scoped(scope, move || output::run(output_queue, sink, mode, shared))
            .map_err(RunError::Thread)?;
        let (spare, spares) = crossbeam_channel::unbounded();
        let limits = config.shard_limits(Share::even(config.workers()));
        let plan = WorkerPlan { first: 0, queue_batches, ordered: mode.ordered, limits };
        let Workers { threads: workers, queues } = start_workers(scope, config, plan, &output, &spare, shared)?;
        Ok((Threads { output, workers, writer }, Queues { workers: queues, spare: spares }))
    }

    /// Waits for the workers (the capture side must have dropped its queues), has the output
    /// thread log and write the closing stats (per interface), waits for it and returns those
    /// stats.
    fn finish(self, shared: &SharedStats, now: Timestamp) -> Result<StatsEvent, RunError> {
        for worker in self.workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let mut stats = shared.event(now, true, true);
        // If the output thread is gone, joining it below says why.
        let _ = self.output.send(OutputMsg::Stats { stats: Box::new(stats.clone()), write: true });
        drop(self.output);
        match self.writer.join() {
            Ok(counts) => stats.alerts = counts?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
        Ok(stats)
    }
}

impl From<std::io::Error> for RunError {
    fn from(error: std::io::Error) -> Self {
        RunError::Output(error)
    }
}

impl From<Disconnected> for RunError {
    fn from(_: Disconnected) -> Self {
        RunError::Output(std::io::Error::other("the output thread stopped"))
    }
}

#[cfg(test)]
mod tests;
