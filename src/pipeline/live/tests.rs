//! The live pipeline with scripted interfaces: what a real one does only now and then (fail, come
//! back, panic) happens here on cue.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use super::*;
use crate::alert::Event;
use crate::capture::live::{Drops, LiveError, LiveErrorKind};
use crate::capture::Frame;
use crate::output::{RepeatSummary, ServerReport};
use crate::pcapwriter::{CapturedFrame, Conversation};
use crate::pipeline::dispatch::{Job, Queues};

/// What a scripted interface does at a read.
enum Step {
    Frame(CapturedFrame),
    /// No frame for this long (a quiet read timeout).
    Wait(Duration),
    Fail,
    Panic,
}

/// An interface that follows its script, then stays quiet.
struct Scripted {
    name: String,
    steps: VecDeque<Step>,
    current: Option<CapturedFrame>,
    /// What a reopen does: fail this many times, then succeed and follow `after_reopen`.
    reopen_failures: usize,
    after_reopen: Vec<Step>,
    reopens: Arc<AtomicUsize>,
    /// What `still_attached` says.
    attached: bool,
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
            reopen_failures: 0,
            after_reopen: Vec::new(),
            reopens: Arc::default(),
            attached: true,
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
            Some(Step::Fail) => Err(LiveError {
                interface: self.name.clone(),
                message: "The interface went down".to_string(),
                kind: LiveErrorKind::Other,
            }),
            Some(Step::Panic) => panic!("scripted failure of {}", self.name),
            None => wait(Duration::from_millis(5)),
        }
    }

    fn reopen(&mut self) -> Result<(), LiveError> {
        self.reopens.fetch_add(1, Ordering::SeqCst);
        if self.reopen_failures > 0 {
            self.reopen_failures -= 1;
            return Err(LiveError {
                interface: self.name.clone(),
                message: "No such device exists".to_string(),
                kind: LiveErrorKind::Other,
            });
        }
        self.steps = std::mem::take(&mut self.after_reopen).into();
        Ok(())
    }

    fn still_attached(&self) -> bool {
        self.attached
    }

    fn drops(&mut self) -> Drops {
        Drops::default()
    }
}

/// A sink that keeps the event types it was given, and fails or stalls when told to.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
    /// Whether each stats event said its one interface was capturing.
    capturing: Arc<Mutex<Vec<bool>>>,
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
            Event::Stats(stats) => {
                self.capturing.lock().unwrap().extend(stats.interfaces.iter().map(|interface| interface.capturing));
                "stats"
            }
        };
        self.events.lock().unwrap().push(name.to_string());
        Ok(())
    }
    fn repeat(&mut self, _: &RepeatSummary) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, _: &[ServerReport], _: &crate::output::Unread) -> io::Result<()> {
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
    let result = start(vec![quiet, broken], sink, intervals, &control, Tuning { output_queue: 2, ..Tuning::default() });
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
    let dispatcher = Dispatcher::new(queues, QueuePolicy::Drop);
    capture(0, source, Decoder::new(), dispatcher, &shared, &halt, Tuning::default().backoff);
    assert_eq!(worker.join().unwrap(), [Ok(1), Ok(1)], "the worker got both segments");
    assert_eq!(shared.captures()[0].queue_drops, 0);
}

/// Backoff short enough for a test to go through several tries.
const QUICK: Tuning = Tuning {
    output_queue: OUTPUT_QUEUE,
    backoff: Backoff { first: Duration::from_millis(20), max: Duration::from_millis(40) },
};

/// A POP3 login in clear, server replies included.
fn login_frames() -> Vec<Step> {
    let mut conversation = Conversation::new(([10, 0, 0, 1], 40_000), ([10, 0, 0, 2], 110));
    conversation.handshake().server(b"+OK POP3 ready\r\n");
    conversation.client(b"USER carol\r\n").server(b"+OK\r\n");
    conversation.client(b"PASS not-a-real-one\r\n").server(b"+OK logged in\r\n");
    conversation.frames().unwrap().into_iter().map(Step::Frame).collect()
}

/// Runs `source` until `done` holds of the recorded events and its reopen count (or 10 s
/// passed), then stops it as a signal would; returns the events and the count.
fn run_until(source: Scripted, done: impl Fn(&[String], usize) -> bool) -> (Vec<String>, usize) {
    let sink = Recorder::default();
    let events = Arc::clone(&sink.events);
    let reopens = Arc::clone(&source.reopens);
    let control = Control::default();
    let result = start(vec![source], sink, NO_REPORTS, &control, QUICK);
    let until = Instant::now() + Duration::from_secs(10);
    while !done(&events.lock().unwrap(), reopens.load(Ordering::SeqCst)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    control.stop.store(true, Ordering::SeqCst);
    let outcome = result.recv_timeout(Duration::from_secs(10));
    assert!(matches!(outcome, Ok(Ok(_))), "{outcome:?}");
    let events = events.lock().unwrap().clone();
    (events, reopens.load(Ordering::SeqCst))
}

#[test]
fn a_failed_interface_is_reopened_until_it_is_back() {
    // Deleted, then created anew after a while: the first tries find no such device, and the old
    // handle stays silent for good. The capture must keep trying until a reopen succeeds.
    let mut source = Scripted::new("veth0", vec![Step::Fail]);
    source.reopen_failures = 3;
    source.after_reopen = login_frames();
    let (events, reopens) = run_until(source, |events, _| events.iter().any(|event| event == "cleartext_credential"));
    assert_eq!(reopens, 4, "three failed tries, then one that worked");
    assert_eq!(events.iter().filter(|event| *event == "cleartext_credential").count(), 1, "{events:?}");
}

/// The stats tell an interface being reopened from one that captures: a deleted interface not
/// back yet is blind, however few errors it counts.
#[test]
fn the_stats_say_whether_each_interface_is_capturing() {
    let mut source = Scripted::new("veth0", vec![Step::Wait(Duration::from_millis(300)), Step::Fail]);
    // Blind for about half a second (tries 40 ms apart), then back.
    source.reopen_failures = 12;
    let sink = Recorder::default();
    let capturing = Arc::clone(&sink.capturing);
    let reopens = Arc::clone(&source.reopens);
    let control = Control::default();
    let every_50_ms = Intervals { stats: Duration::from_millis(50), inventory: Duration::MAX };
    let result = start(vec![source], sink, every_50_ms, &control, QUICK);
    let until = Instant::now() + Duration::from_secs(10);
    while reopens.load(Ordering::SeqCst) < 13 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    control.stop.store(true, Ordering::SeqCst);
    assert!(matches!(result.recv_timeout(Duration::from_secs(10)), Ok(Ok(_))));
    let said = capturing.lock().unwrap().clone();
    let first_blind = said.iter().position(|c| !c).unwrap_or_else(|| panic!("never blind: {said:?}"));
    assert!(said.get(..first_blind).is_some_and(|before| !before.is_empty() && before.iter().all(|c| *c)), "{said:?}");
    assert_eq!(said.last(), Some(&true), "capturing again once reopened: {said:?}");
}

#[test]
fn an_old_handle_that_delivers_again_ends_the_reopening() {
    // A link that went down and came back up: the old handle delivers again (under --user the
    // reopens themselves never work). The tries stop there.
    let mut steps = vec![Step::Fail, Step::Wait(Duration::from_millis(100))];
    steps.extend(login_frames());
    let mut source = Scripted::new("eth1", steps);
    source.reopen_failures = usize::MAX;
    let alerted = std::cell::Cell::new(None);
    let (events, reopens) = run_until(source, |events, _| {
        if events.iter().any(|event| event == "cleartext_credential") {
            alerted.set(alerted.get().or(Some(Instant::now())));
        }
        // Left running a second after the login went through.
        alerted.get().is_some_and(|at| at.elapsed() > Duration::from_secs(1))
    });
    assert!(alerted.get().is_some(), "{events:?}");
    assert!((1..=5).contains(&reopens), "a try or two while the link was down, none after: {reopens}");
}

#[test]
fn frames_left_in_a_deleted_interfaces_buffer_do_not_end_the_reopening() {
    // libpcap says "The interface disappeared", then hands out what its ring still held: the
    // interface is not back for that.
    let mut source = Scripted::new("veth0", vec![Step::Fail, Step::Frame(login_segment(40_002))]);
    source.attached = false;
    source.reopen_failures = 2;
    source.after_reopen = login_frames();
    let (events, reopens) = run_until(source, |events, _| events.iter().any(|event| event == "cleartext_credential"));
    assert_eq!(reopens, 3, "{events:?}");
}
