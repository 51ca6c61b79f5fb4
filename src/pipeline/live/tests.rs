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

/// What a scripted interface does at a read.
enum Step {
    /// No frame for this long (a quiet read timeout).
    Wait(Duration),
    Panic,
}

/// An interface that follows its script, then stays quiet.
struct Scripted {
    name: String,
    steps: VecDeque<Step>,
}

impl Scripted {
    fn new(name: &str, steps: Vec<Step>) -> Scripted {
        Scripted { name: name.to_string(), steps: steps.into() }
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
        match self.steps.pop_front() {
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

/// A sink that keeps the event types it was given, and fails when told to.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
    /// Every event fails with this.
    fail: Option<io::ErrorKind>,
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
}

const NO_REPORTS: Intervals = Intervals { stats: Duration::MAX, inventory: Duration::MAX };

/// Runs `sources` on a thread of its own; the result, or `None` if the run was still going after
/// `within` (it is then asked to stop, as a signal would).
fn run_within(
    sources: Vec<Scripted>,
    mut sink: Recorder,
    intervals: Intervals,
    control: &Control,
    within: Duration,
) -> Option<Result<RunReport, RunError>> {
    let (done, result) = crossbeam_channel::bounded(1);
    let thread_control = control.clone();
    std::thread::spawn(move || {
        let config = RunConfig { threads: 1, ..RunConfig::default() };
        let _ = done.send(run(sources, &config, intervals, &thread_control, &mut sink));
    });
    let outcome = result.recv_timeout(within).ok();
    if outcome.is_none() {
        control.stop.store(true, Ordering::SeqCst);
    }
    outcome
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
