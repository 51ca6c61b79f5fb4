//! The live pipeline with scripted interfaces: what a real one does only now and then (fail, come
//! back, panic) happens here on cue.

use std::collections::VecDeque;
use std::io;
use std::sync::Mutex;

use super::*;
use crate::alert::Event;
use crate::capture::live::{Drops, LiveError};
use crate::capture::Frame;
use crate::output::{RepeatSummary, ServerReport};
use crate::pcapwriter::{CapturedFrame, Conversation};
use crate::pipeline::dispatch::{Job, Queues};

/// What a scripted interface does at a read.
enum Step {
    Frame(CapturedFrame),
    /// No frame for this long (a quiet read timeout).
    Wait(Duration),
    Panic,
}

/// An interface that follows its script, then stays quiet.
struct Scripted {
    name: String,
    steps: VecDeque<Step>,
    current: Option<CapturedFrame>,
    /// Set as the last step is handed out (a stop that comes right after it).
    halt_when_done: Option<Arc<AtomicBool>>,
    /// Set when the source is dropped: its capture thread has ended.
    gone: Arc<AtomicBool>,
}

impl Scripted {
    fn new(name: &str, steps: Vec<Step>) -> Scripted {
        Scripted {
            name: name.to_string(),
            steps: steps.into(),
            current: None,
            halt_when_done: None,
            gone: Arc::default(),
        }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.gone.store(true, Ordering::SeqCst);
    }
}

impl FrameSource for Scripted {
    fn interface(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        let wait = |duration| {
            std::thread::sleep(duration);
            Ok(None)
        };
        let step = self.steps.pop_front();
        if let (true, Some(halt)) = (self.steps.is_empty(), &self.halt_when_done) {
            halt.store(true, Ordering::SeqCst);
        }
        match step {
            Some(Step::Frame(frame)) => Ok(Some(self.current.insert(frame).as_frame())),
            Some(Step::Wait(duration)) => wait(duration),
            Some(Step::Panic) => panic!("scripted failure of {}", self.name),
            None => wait(Duration::from_millis(5)),
        }
    }

    fn reopen(&mut self) -> Result<(), LiveError> {
        Ok(())
    }

    fn drops(&mut self) -> Drops {
        Drops::default()
    }
}

/// A sink that keeps the event types it was given, and fails or stalls when told to.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
    /// Every event fails with this.
    fail: Option<io::ErrorKind>,
    /// Each tick waits for this to close (an output stuck on a slow destination).
    stall: Option<crossbeam_channel::Receiver<()>>,
}

impl Sink for Recorder {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        if let Some(kind) = self.fail {
            return Err(kind.into());
        }
        let name = match event {
            Event::Credential(alert) => alert.event_type.name(),
            Event::Anomaly(_) => "anomaly",
            Event::Session(_) => "session",
            Event::Stats(_) => "stats",
        };
        self.events.lock().unwrap().push(name.to_string());
        Ok(())
    }
    fn repeat(&mut self, _: &RepeatSummary) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &[ServerReport]) -> io::Result<()> {
        Ok(())
    }
    fn tick(&mut self, _: Timestamp) -> io::Result<()> {
        if let Some(stall) = &self.stall {
            let _ = stall.recv();
        }
        Ok(())
    }
}

const NO_REPORTS: Intervals = Intervals { stats: Duration::MAX, inventory: Duration::MAX };

/// Runs `sources` on a thread of its own; the result comes on the receiver.
fn start(
    sources: Vec<Scripted>,
    mut sink: Recorder,
    intervals: Intervals,
    control: &Control,
    tuning: Tuning,
) -> crossbeam_channel::Receiver<Result<RunReport, RunError>> {
    let (done, result) = crossbeam_channel::bounded(1);
    let control = control.clone();
    std::thread::spawn(move || {
        let config = RunConfig { threads: 1, ..RunConfig::default() };
        let _ = done.send(run_tuned(sources, &config, intervals, &control, &mut sink, tuning));
    });
    result
}

/// Runs `sources`; the result, or `None` if the run was still going after `within` (it is then
/// asked to stop, as a signal would).
fn run_within(
    sources: Vec<Scripted>,
    sink: Recorder,
    intervals: Intervals,
    control: &Control,
    within: Duration,
) -> Option<Result<RunReport, RunError>> {
    let outcome = start(sources, sink, intervals, control, Tuning::default()).recv_timeout(within).ok();
    if outcome.is_none() {
        control.stop.store(true, Ordering::SeqCst);
    }
    outcome
}

/// Waits up to `within` for `flag`.
fn eventually(flag: &AtomicBool, within: Duration) -> bool {
    let until = Instant::now() + within;
    while !flag.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    flag.load(Ordering::SeqCst)
}

#[test]
fn a_capture_thread_that_panics_ends_the_run_with_an_error_and_leaves_the_signal_flag_alone() {
    let quiet = Scripted::new("quiet0", Vec::new());
    let broken = Scripted::new("broken0", vec![Step::Wait(Duration::from_millis(200)), Step::Panic]);
    let control = Control::default();
    let outcome = run_within(vec![quiet, broken], Recorder::default(), NO_REPORTS, &control, Duration::from_secs(10));
    match outcome {
        Some(Err(RunError::Capture { interface, reason })) => {
            assert_eq!(interface, "broken0");
            assert!(reason.contains("scripted failure of broken0"), "{reason}");
        }
        Some(other) => panic!("expected the capture's failure, got {other:?}"),
        None => panic!("the run went on without the broken interface's capture"),
    }
    assert!(!control.stop.load(Ordering::SeqCst), "a SIGTERM now must count as the first (a clean stop)");
}

#[test]
fn a_failed_output_ends_the_run_promptly_with_its_error() {
    // The first stats event finds the disk full: the output thread ends, and with it the run,
    // though the capture would go on for ever.
    let sink = Recorder { fail: Some(io::ErrorKind::StorageFull), ..Recorder::default() };
    let intervals = Intervals { stats: Duration::from_millis(100), inventory: Duration::MAX };
    let control = Control::default();
    let quiet = Scripted::new("quiet0", Vec::new());
    match run_within(vec![quiet], sink, intervals, &control, Duration::from_secs(10)) {
        Some(Err(RunError::Output(error))) => assert_eq!(error.kind(), io::ErrorKind::StorageFull),
        Some(other) => panic!("expected the output's error, got {other:?}"),
        None => panic!("the run went on with its output gone"),
    }
    assert!(!control.stop.load(Ordering::SeqCst));
}

#[test]
fn the_control_loop_keeps_watching_the_threads_while_the_output_is_stuck() {
    // The output thread hangs in its first tick and its queue (two messages) fills with stats;
    // a capture thread then fails. The loop must notice and stop the others, although it cannot
    // hand the output anything.
    let (unstick, stall) = crossbeam_channel::bounded(0);
    let sink = Recorder { stall: Some(stall), ..Recorder::default() };
    let quiet = Scripted::new("quiet0", Vec::new());
    let quiet_gone = Arc::clone(&quiet.gone);
    let broken = Scripted::new("broken0", vec![Step::Wait(Duration::from_millis(800)), Step::Panic]);
    let intervals = Intervals { stats: Duration::from_millis(1), inventory: Duration::MAX };
    let control = Control::default();
    let result = start(vec![quiet, broken], sink, intervals, &control, Tuning { output_queue: 2 });
    let noticed = eventually(&quiet_gone, Duration::from_secs(5));
    drop(unstick);
    let outcome = result.recv_timeout(Duration::from_secs(10));
    assert!(noticed, "the other capture thread was still running: the loop was waiting for the output");
    assert!(matches!(outcome, Ok(Err(RunError::Capture { .. }))), "{outcome:?}");
}

/// A frame of a POP3 client's `USER` command (one TCP segment with payload).
fn login_segment(client_port: u16) -> CapturedFrame {
    let mut conversation = Conversation::new(([10, 0, 0, 1], client_port), ([10, 0, 0, 2], 110));
    conversation.handshake().client(b"USER a\r\n");
    conversation.frames().unwrap().pop().unwrap()
}

#[test]
fn the_last_batch_waits_for_room_at_the_stop_instead_of_being_dropped() {
    let (queue, batches) = crossbeam_channel::bounded(1);
    let (_spare, spare) = crossbeam_channel::unbounded();
    let queues = Queues { workers: vec![queue], spare };
    // The worker's queue is full when the stop comes: it takes the batch there only after a while.
    let mut filler = Dispatcher::new(queues.clone(), QueuePolicy::Block);
    let first = login_segment(40_000);
    let mut decoder = Decoder::new();
    let Decoded::Tcp(packet) = decoder.decode(&first.as_frame()) else { panic!("a TCP segment") };
    filler.frame(first.ts, Some(&packet)).unwrap();
    filler.flush().unwrap();
    let worker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let segments = |batch: crate::pipeline::dispatch::Batch| {
            batch.jobs().iter().filter(|job| matches!(job, Job::Segment { .. })).count()
        };
        [
            batches.recv_timeout(Duration::from_secs(5)).map(segments),
            batches.recv_timeout(Duration::from_secs(5)).map(segments),
        ]
    });
    let halt = Arc::new(AtomicBool::new(false));
    let mut source = Scripted::new("eth0", vec![Step::Frame(login_segment(40_001))]);
    source.halt_when_done = Some(Arc::clone(&halt));
    let shared = SharedStats::new(["eth0".to_string()], 1);
    capture(0, source, Decoder::new(), Dispatcher::new(queues, QueuePolicy::Drop), &shared, &halt);
    assert_eq!(worker.join().unwrap(), [Ok(1), Ok(1)], "the worker got both segments");
    assert_eq!(shared.captures()[0].queue_drops, 0);
}
