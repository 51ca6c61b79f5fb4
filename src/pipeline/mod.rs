//! Wiring: capture → decode → engine → outputs, for files (one after another, in the order given;
//! flows carry over from one file to the next, so a capture rotated into several files reads as
//! one).

mod engine;
mod inputs;

use std::path::PathBuf;

use crate::alert::{Event, EventType};
use crate::capture::{CaptureError, FileSource};
use crate::decode::{DecodeStats, Decoded, Decoder};
use crate::flow::FlowLimits;
use crate::output::{ServerSummary, Sink};
use crate::posture::PostureTracker;
use crate::progress::{Progress, ReadProgress};
use crate::proto::ProtoConfig;

pub use engine::{Engine, EngineStats};
pub use inputs::{expand_inputs, InputError};

/// Everything a run needs, resolved from the command line.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    pub flow: FlowLimits,
    pub proto: ProtoConfig,
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
}

/// An error that stops the whole run (the outputs failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// Reads capture files one after another through one engine. A file that cannot be read (or
/// not to its end) is reported and the run goes on with the next; what it held up to the error
/// is kept.
pub fn read_files(paths: &[PathBuf], config: &RunConfig, sink: &mut dyn Sink) -> Result<RunReport, RunError> {
    read_files_with_progress(paths, config, sink, None)
}

/// Frames between two progress updates: often enough for a smooth bar, rare enough to cost nothing.
const PROGRESS_EVERY_FRAMES: u64 = 4096;

/// [`read_files`], telling `progress` how far it got every few thousand frames.
pub fn read_files_with_progress<'s>(
    paths: &[PathBuf],
    config: &RunConfig,
    sink: &'s mut dyn Sink,
    progress: Option<&'s mut dyn Progress>,
) -> Result<RunReport, RunError> {
    let mut run = Run {
        progress,
        bytes_of_finished_files: 0,
        engine: Engine::new(config.flow, config.proto.clone()),
        decoder: Decoder::new(),
        summary: ServerSummary::default(),
        posture: PostureTracker::default(),
        report: RunReport::default(),
        events: Vec::new(),
        sink,
    };
    for path in paths {
        let outcome = match FileSource::open(path) {
            Ok(mut source) => {
                let outcome = run.read(&mut source)?;
                run.bytes_of_finished_files += source.bytes_read();
                outcome
            }
            Err(error) => Err(error),
        };
        run.report.files_read += 1;
        if let Err(error) = outcome {
            run.clear_progress();
            tracing::error!("{error}");
            run.report.file_errors.push(error.to_string());
        }
    }
    run.finish()
}

struct Run<'s> {
    engine: Engine,
    decoder: Decoder,
    summary: ServerSummary,
    posture: PostureTracker,
    report: RunReport,
    events: Vec<Event>,
    sink: &'s mut dyn Sink,
    progress: Option<&'s mut dyn Progress>,
    /// Input bytes of the files already read, for progress over all of them.
    bytes_of_finished_files: u64,
}

impl Run<'_> {
    /// Reads one source to its end. The outer error is the outputs failing (fatal), the inner one
    /// this file failing (the run goes on).
    fn read(&mut self, source: &mut FileSource) -> Result<Result<(), CaptureError>, RunError> {
        tracing::info!(file = source.name(), "reading");
        loop {
            let frame = match source.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(Ok(())),
                Err(error) => return Ok(Err(error)),
            };
            self.report.frames += 1;
            self.report.bytes += frame.data.len() as u64;
            match self.decoder.decode(&frame) {
                Decoded::Tcp(packet) => self.engine.process(&packet, frame.ts, &mut self.events),
                Decoded::Skipped(_) => {
                    self.engine.advance_time(frame.ts);
                    self.engine.drain_events(&mut self.events);
                }
            }
            if !self.events.is_empty() {
                self.emit()?;
            }
            if self.report.frames % PROGRESS_EVERY_FRAMES == 0 {
                self.show_progress(source);
            }
        }
    }

    fn show_progress(&mut self, source: &FileSource) {
        if let Some(progress) = self.progress.as_deref_mut() {
            progress.update(&ReadProgress {
                file: source.name(),
                bytes: self.bytes_of_finished_files + source.bytes_read(),
                alerts: self.report.cleartext_alerts + self.report.weak_alerts,
            });
        }
    }

    fn clear_progress(&mut self) {
        if let Some(progress) = self.progress.as_deref_mut() {
            progress.clear();
        }
    }

    fn emit(&mut self) -> Result<(), RunError> {
        let mut follow_ups = Vec::new();
        for event in &self.events {
            follow_ups.extend(self.posture.observe(event, false).anomalies);
        }
        self.events.append(&mut follow_ups);
        for event in self.events.drain(..) {
            match &event {
                Event::Credential(alert) if alert.event_type == EventType::CleartextCredential => {
                    self.report.cleartext_alerts += 1
                }
                Event::Credential(_) => self.report.weak_alerts += 1,
                Event::Anomaly(_) => self.report.anomalies += 1,
                Event::Session(_) => continue,
            }
            self.summary.add(&event);
            self.sink.event(&event)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<RunReport, RunError> {
        self.clear_progress();
        self.engine.finish(&mut self.events);
        self.emit()?;
        for posture in self.posture.snapshot() {
            self.sink.posture(&posture)?;
        }
        self.sink.finish(&self.summary.reports())?;
        self.report.decode = self.decoder.stats.clone();
        self.report.engine = self.engine.stats();
        Ok(self.report)
    }
}
