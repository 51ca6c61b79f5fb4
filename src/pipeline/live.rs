//! Live capture (the `live` feature): one capture thread per interface feeding the shared
//! workers, a control loop on the calling thread for stats, SIGHUP and shutdown.
//!
//! Capture never waits for analysis: when a worker's queue is full the batch is dropped and
//! counted (`queue_drops`), because a capture thread that waits only moves the loss into the
//! kernel buffer, where it is blind to flows. A failing interface (down, removed, replaced) is
//! logged and reopened with backoff until it is back (or its old handle comes back to life: a link
//! that went down and up); the run goes on with the others. A capture thread that ends before the
//! run stops (it panicked), or the output thread (an output failed: disk full), ends the run
//! with an error: a sensor blind on one interface, or writing nowhere, must not pass for a
//! healthy one, and a supervisor restarts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use crate::capture::live::{FrameSource, LiveError, LiveErrorKind};
use crate::capture::Timestamp;
use crate::decode::{Decoded, Decoder};
use crate::output::Sink;

use crossbeam_channel::{Sender, TrySendError};

use super::dispatch::{Disconnected, Dispatcher, QueuePolicy};
use super::output::{OutputMode, OutputMsg};
use super::stats::{CaptureCounters, SharedStats};
use super::{RunConfig, RunError, RunReport, Threads};

/// First wait before reopening a failed interface; doubled up to [`MAX_BACKOFF`], so that an
/// interface deleted and created anew is captured again at most half a minute after it is back.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An interface that stays away is warned about at its first failed reopen, then this often.
const WARN_AGAIN: Duration = Duration::from_secs(600);
/// How often the control loop looks at the flags, and capture threads publish their counters.
const POLL: Duration = Duration::from_millis(100);
/// How often the outputs learn the time (dedup windows close on it).
const TICK: Duration = Duration::from_secs(1);
/// Messages the output thread's queue holds before workers wait for it.
const OUTPUT_QUEUE: usize = 1024;
/// How long a capture thread's last batches may wait for room in the workers' queues at the stop
/// (the workers drain them meanwhile); within systemd's stop timeout with room to spare.
const STOP_FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Flags set from outside the run (signal handlers); the run never sets them itself, so that a
/// signal after the run ended on its own is still the first one.
#[derive(Clone, Debug, Default)]
pub struct Control {
    /// SIGINT/SIGTERM: stop capturing, drain, flush, report, return.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP: reopen the outputs.
    pub reopen: Arc<AtomicBool>,
}

/// How often live capture reports while it runs (`Duration::MAX`: only at the end).
#[derive(Clone, Copy, Debug)]
pub struct Intervals {
    /// `stats` events.
    pub stats: Duration,
    /// The server inventory (`server_report`s and postures).
    pub inventory: Duration,
}

/// Captures until `control.stop` is set, then drains the queues, closes every flow (pending
/// credentials come out with outcome `unknown`), writes the final stats and the summary. Stats
/// and the inventory are also written at their `intervals`. A capture thread that cannot start,
/// or ends before the stop, ends the run the same way, then with an error; so does the output
/// thread ending (with its error).
pub fn run<S: FrameSource>(
    sources: Vec<S>,
    config: &RunConfig,
    intervals: Intervals,
    control: &Control,
    sink: &mut dyn Sink,
) -> Result<RunReport, RunError> {
    run_tuned(sources, config, intervals, control, sink, Tuning::default())
}

/// Sizes that the tests shrink, to fill a queue or wait out a backoff in little time.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    output_queue: usize,
    backoff: Backoff,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { output_queue: OUTPUT_QUEUE, backoff: Backoff { first: MIN_BACKOFF, max: MAX_BACKOFF } }
    }
}

/// Waits between tries to reopen a failed interface: `first`, doubled up to `max`.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    first: Duration,
    max: Duration,
}

fn run_tuned<S: FrameSource>(
    sources: Vec<S>,
    config: &RunConfig,
    intervals: Intervals,
    control: &Control,
    sink: &mut dyn Sink,
    tuning: Tuning,
) -> Result<RunReport, RunError> {
    let shared = SharedStats::new(sources.iter().map(|s| s.interface().to_string()), config.workers());
    let mode = OutputMode { workers: config.workers(), ordered: false, flush_when_idle: true };
    // The run's own stop, for its threads: set on a signal, or when a thread failed.
    let halt = AtomicBool::new(false);
    let stats = std::thread::scope(|scope| {
        let queue_sizes = (config.queue_batches(), tuning.output_queue);
        let (threads, queues) = Threads::start(scope, config, queue_sizes, sink, &shared, mode)?;
        let mut captures = Vec::new();
        let mut failure = None;
        for (id, source) in sources.into_iter().enumerate() {
            let dispatcher = Dispatcher::new(queues.clone(), QueuePolicy::Drop);
            let decoder = Decoder::new().ignoring_vlans(config.ignore_vlans);
            let interface = source.interface().to_string();
            let (shared, halt) = (&shared, &halt);
            let spawned =
                std::thread::Builder::new().name(format!("capture-{interface}")).spawn_scoped(scope, move || {
                    capture(id, source, decoder, dispatcher, shared, halt, tuning.backoff);
                });
            match spawned {
                Ok(handle) => captures.push(CaptureThread { interface, handle }),
                Err(error) => {
                    failure = Some(RunError::Thread(error));
                    break;
                }
            }
        }
        drop(queues);
        let ended = match failure {
            None => control_loop(&threads, &captures, intervals, control, &shared),
            Some(_) => Ended::Stop,
        };
        tracing::info!("stopping: draining the queues");
        halt.store(true, Ordering::SeqCst);
        for capture in captures {
            if let Err(panic) = capture.handle.join() {
                let reason = panic_message(panic.as_ref());
                failure.get_or_insert(RunError::Capture { interface: capture.interface, reason });
            }
        }
        // An output that failed is the cause of whatever else stopped: its error comes first.
        let stats = threads.finish(&shared, Timestamp::now())?;
        let ended = match ended {
            Ended::Stop => None,
            Ended::Capture(interface) => Some(RunError::Capture { interface, reason: "it stopped".to_string() }),
            // Its error was returned above: an output thread only ends early on one.
            Ended::Output => Some(RunError::from(Disconnected)),
        };
        failure.or(ended).map_or(Ok(stats), Err)
    })?;
    let report = RunReport::default();
    Ok(report.completed(&shared, stats))
}

/// A running capture thread and its interface.
struct CaptureThread<'scope> {
    interface: String,
    handle: ScopedJoinHandle<'scope, ()>,
}

/// Why the control loop returned.
enum Ended {
    /// A signal asked for the stop.
    Stop,
    /// This interface's capture thread ended first.
    Capture(String),
    /// The output thread ended first (an output failed).
    Output,
}

/// Sends the periodic messages and SIGHUP's reopen to the output thread until a signal asks for
/// the stop or a thread ended before it. It never waits for the output thread, however far
/// behind: a message that finds its queue full is offered again at the next round (a late tick
/// or stats report costs nothing, the stats being cumulative), and meanwhile the loop keeps
/// watching the signals and the threads.
fn control_loop(
    threads: &Threads<'_>,
    captures: &[CaptureThread<'_>],
    intervals: Intervals,
    control: &Control,
    shared: &SharedStats,
) -> Ended {
    // `None`: no periodic reports (an interval too long to add to a clock).
    let mut next_report = Instant::now().checked_add(intervals.stats);
    let mut next_inventory = Instant::now().checked_add(intervals.inventory);
    let mut next_tick = Instant::now();
    let mut reopen = false;
    while !control.stop.load(Ordering::SeqCst) {
        if threads.writer.is_finished() {
            // It ends early only on an error, which the run returns (and a closed standard
            // output, the only one, is a quiet stop): said here only as what the run does next.
            tracing::info!("the output thread ended: stopping the run");
            return Ended::Output;
        }
        if let Some(ended) = captures.iter().find(|capture| capture.handle.is_finished()) {
            tracing::error!(interface = ended.interface, "a capture thread ended: stopping the run");
            return Ended::Capture(ended.interface.clone());
        }
        std::thread::sleep(POLL);
        reopen |= control.reopen.swap(false, Ordering::SeqCst);
        if reopen {
            reopen = !offer(&threads.output, OutputMsg::Reopen);
        }
        let now = Instant::now();
        if now >= next_tick && offer(&threads.output, OutputMsg::Tick(Timestamp::now())) {
            next_tick = now + TICK;
        }
        if let Some(due) = next_report.filter(|due| now >= *due) {
            let stats = Box::new(shared.event(Timestamp::now(), false, true));
            if offer(&threads.output, OutputMsg::Stats { stats, write: true }) {
                next_report = following(due, intervals.stats, now);
            }
        }
        if let Some(due) = next_inventory.filter(|due| now >= *due) {
            if offer(&threads.output, OutputMsg::Inventory) {
                next_inventory = following(due, intervals.inventory, now);
            }
        }
    }
    Ended::Stop
}

/// Hands `message` to the output thread unless its queue is full (`false`: offer it again later).
/// An output thread that is gone takes it too: the loop notices at its next round.
fn offer(output: &Sender<OutputMsg>, message: OutputMsg) -> bool {
    !matches!(output.try_send(message), Err(TrySendError::Full(_)))
}

/// When a report due at `due` and sent at `now` is due again: one `every` later, or, if it was
/// held back past that, one `every` after it went (no burst of reports to catch up). `None`: too
/// far to count.
fn following(due: Instant, every: Duration, now: Instant) -> Option<Instant> {
    due.checked_add(every).filter(|next| *next > now).or_else(|| now.checked_add(every))
}

/// What a panicking thread said (a `&str` or a `String` for `panic!` with a message).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => format!("panicked: {message}"),
        (None, Some(message)) => format!("panicked: {message}"),
        (None, None) => "panicked".to_string(),
    }
}

/// An interface whose capture failed, being reopened.
struct Reopening {
    next_try: Instant,
    /// The wait after the next try, should it fail.
    backoff: Duration,
    /// When a failed try was last logged as a warning.
    warned: Option<Instant>,
}

impl Reopening {
    fn new(backoff: Backoff) -> Reopening {
        Reopening { next_try: Instant::now() + backoff.first, backoff: backoff.first, warned: None }
    }

    /// A try failed: the next one comes after a longer wait. Said as a warning the first time and
    /// every [`WARN_AGAIN`], at debug level otherwise, so that an interface gone for days neither
    /// floods the log nor goes quiet.
    fn failed(&mut self, error: &LiveError, max: Duration) {
        self.backoff = (self.backoff * 2).min(max);
        self.next_try = Instant::now() + self.backoff;
        let retry = self.backoff.as_secs_f64();
        if self.warned.is_none_or(|at| at.elapsed() >= WARN_AGAIN) {
            self.warned = Some(Instant::now());
            let hint = match error.kind {
                LiveErrorKind::PermissionDenied => {
                    " (reopening needs CAP_NET_RAW and CAP_NET_ADMIN, which a run that dropped root with --user has \
                     given up: see docs/deployment.md)"
                }
                LiveErrorKind::Other => "",
            };
            tracing::warn!(
                "cannot reopen the capture yet: {error}{hint}; trying again in {retry}s, then at most every {}s",
                max.as_secs()
            );
        } else {
            tracing::debug!("cannot reopen the capture yet: {error}; trying again in {retry}s");
        }
    }
}

/// One interface's capture thread, until `halt`. After a failure the interface is reopened with
/// `backoff` until that succeeds, or the old handle delivers again on the same interface.
fn capture(
    id: usize,
    mut source: impl FrameSource,
    mut decoder: Decoder,
    mut dispatcher: Dispatcher,
    shared: &SharedStats,
    halt: &AtomicBool,
    backoff: Backoff,
) {
    let mut counters =
        CaptureCounters { name: source.interface().to_string(), capturing: true, ..CaptureCounters::default() };
    let mut reopening: Option<Reopening> = None;
    let mut last_publish = Instant::now();
    while !halt.load(Ordering::Relaxed) {
        if let Some(pending) = reopening.as_mut().filter(|pending| Instant::now() >= pending.next_try) {
            match source.reopen() {
                Ok(()) => {
                    tracing::info!(interface = source.interface(), "capture reopened");
                    reopening = None;
                    counters.capturing = true;
                }
                Err(error) => pending.failed(&error, backoff.max),
            }
        }
        let outcome = match source.next_frame() {
            Ok(Some(frame)) => {
                counters.frames += 1;
                counters.bytes += frame.data.len() as u64;
                counters.last_ts = counters.last_ts.max(frame.ts);
                let mut outcome = match decoder.decode(&frame) {
                    Decoded::Tcp(packet) => dispatcher.frame(frame.ts, Some(&packet)),
                    Decoded::Skipped(_) => dispatcher.frame(frame.ts, None),
                };
                // The other packets of an aggregate frame (802.11 A-MSDU).
                while let (Ok(ticked), Some(decoded)) = (outcome, decoder.decode_next(&frame)) {
                    if let Decoded::Tcp(packet) = decoded {
                        outcome = dispatcher.frame_more(frame.ts, &packet).map(|()| ticked);
                    }
                }
                if reopening.is_some() && source.still_attached() {
                    // The old handle works again: the link went down and came back up.
                    tracing::info!(interface = counters.name, "capture recovered");
                    reopening = None;
                    counters.capturing = true;
                }
                outcome
            }
            Ok(None) => dispatcher.idle(Timestamp::now()),
            Err(error) => {
                let pending = match &mut reopening {
                    Some(pending) => pending,
                    None => {
                        counters.capture_errors += 1;
                        counters.capturing = false;
                        let first = backoff.first.as_secs_f64();
                        tracing::warn!("capture failed: {error}; reopening it in {first}s");
                        reopening.insert(Reopening::new(backoff))
                    }
                };
                // A handle that fails at every read is not read in a loop: wait for the next try
                // (a second at a time, so that the workers still get their ticks).
                sleep_unless_stopped(pending.next_try.saturating_duration_since(Instant::now()).min(TICK), halt);
                dispatcher.idle(Timestamp::now())
            }
        };
        match outcome {
            Err(Disconnected) => break,
            Ok(ticked) if ticked || last_publish.elapsed() >= POLL => {
                publish(id, &mut source, &decoder, &mut counters, &dispatcher, shared);
                last_publish = Instant::now();
            }
            Ok(_) => {}
        }
    }
    // The workers drain what is queued once every capture thread has dropped its dispatcher.
    let _ = dispatcher.flush_until(Instant::now() + STOP_FLUSH_WAIT);
    publish(id, &mut source, &decoder, &mut counters, &dispatcher, shared);
}

fn publish(
    id: usize,
    source: &mut impl FrameSource,
    decoder: &Decoder,
    counters: &mut CaptureCounters,
    dispatcher: &Dispatcher,
    shared: &SharedStats,
) {
    let drops = source.drops();
    counters.kernel_drops = drops.kernel;
    counters.interface_drops = drops.interface;
    counters.queue_drops = dispatcher.queue_drops;
    counters.decode.clone_from(&decoder.stats);
    shared.publish_capture(id, counters);
}

fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) {
    let until = Instant::now() + duration;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests;
