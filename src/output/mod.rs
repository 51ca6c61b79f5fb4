//! Where events go, and in what shape.
//!
//! * Formats ([`Format`]): the native JSON contract, ECS for Elastic-style SIEMs, and text for
//!   people.
//! * Sinks: standard output, files and syslog (RFC 5424 over UDP, or TCP with octet counting), any
//!   number at once ([`Outputs`], built from `--output` specs, see [`OutputSpec`]). Files and
//!   syslog write from a thread of their own behind a bounded queue ([`QueuedSink`]), so a slow or
//!   dead destination never holds up packet processing: it is retried with backoff, and what it
//!   cannot take is dropped and counted.
//! * [`Dedup`] collapses repeated logins into one alert plus a [`RepeatSummary`].
//! * [`ServerSummary`] builds the closing `server_report` inventory; [`HtmlReport`] renders it, with
//!   the TLS posture of every server and a chart of exposures over time, as one HTML page.
//!
//! Outputs only ever see redacted events.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod alert_json;
mod dedup;
mod ecs;
mod for_people;
mod html;
mod posture_table;
mod queued;
#[cfg(test)]
pub(crate) mod shared_text;
mod spec;
mod stdout;
mod summary;
mod syslog;
pub(crate) mod text;

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Arc;

use crate::alert::{Event, OutputStats};
use crate::capture::Timestamp;
use crate::posture::ServerPosture;

pub use dedup::{Dedup, RepeatSummary};
pub use ecs::{Observer, ECS_VERSION};
pub use html::HtmlReport;
pub use posture_table::{PostureOnly, PostureTable};
pub use queued::{QueuedSink, SinkStats, WhenFull};
pub use spec::{Destination, OutputSpec};
pub use stdout::StdoutSink;
pub use summary::{ServerReport, ServerSummary};
pub use syslog::Facility;
pub use text::TextSink;

/// A destination for events. The pipeline calls `event` for each event and `finish` once at the
/// end; the other calls have defaults for sinks that need nothing more. Sinks are `Send`: the
/// pipeline's output thread owns them.
pub trait Sink: Send {
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// Repeats of one alert that [`Dedup`] held back, reported when their window closed.
    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()>;
    /// A server's TLS posture: at the end of a run, and when it changes in live capture.
    fn posture(&mut self, _posture: &ServerPosture) -> io::Result<()> {
        Ok(())
    }
    /// One server of the inventory while the run goes on (live capture, every
    /// `--report-interval`); the closing inventory comes with `finish`.
    fn server_report(&mut self, _report: &ServerReport) -> io::Result<()> {
        Ok(())
    }
    /// The run's last event is in, and its closing postures and summary come next: what a sink
    /// holds back ([`Dedup`]'s repeats) goes out now, so that it precedes them.
    fn end_of_events(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// End of the run: the servers that exposed credentials, most exposed first, and what the run
    /// could not read (the inputs' errors, the frames not decoded), for summaries people read
    /// not to pass for an all-clear then.
    fn finish(&mut self, servers: &[ServerReport], unread: &Unread) -> io::Result<()>;
    /// Event time moved on (live capture calls this periodically, so dedup windows close even
    /// when no new event arrives).
    fn tick(&mut self, _now: Timestamp) -> io::Result<()> {
        Ok(())
    }
    /// Pushes out what is buffered.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// How many more records this sink takes now without dropping any (a queued sink's free
    /// slots, less those kept for alerts): the live server inventory goes out no faster.
    fn room(&self) -> usize {
        usize::MAX
    }
    /// Reopens output files (after log rotation; the live pipeline calls this on SIGHUP).
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Records that never reached their destination (a queue full while it was down, still
    /// queued for it at the end, or written after standard output's reader went away); final
    /// once `finish` has run.
    fn undelivered(&self) -> u64 {
        0
    }
    /// Adds the counters of each output behind this sink to `into`, for the `stats` event.
    fn output_stats(&self, _into: &mut Vec<OutputStats>) {}
    /// Whether anything still reads what this sink writes: false once standard output's reader
    /// has gone and no other destination is left behind it. The pipeline stops reading then.
    fn is_open(&self) -> bool {
        true
    }
}

/// The shape of each event on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The native JSON contract (one object per line; `docs/schema/`).
    Json,
    /// Elastic Common Schema 8.x documents (one per line).
    Ecs,
    /// Aligned text for people.
    Text,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ecs => "ecs",
            Format::Text => "text",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "ecs" => Some(Format::Ecs),
            "text" => Some(Format::Text),
            _ => None,
        }
    }
}

/// Anything a sink writes: the three kinds of records, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum Record<'a> {
    Event(&'a Event),
    Repeat(&'a RepeatSummary),
    Server(&'a ServerReport),
    Posture(&'a ServerPosture),
}

impl Record<'_> {
    /// When the record happened (RFC 3339): the event's time, or the last sighting for summaries.
    pub fn timestamp(&self) -> Cow<'_, str> {
        match self {
            Record::Event(Event::Credential(alert)) => alert.timestamp.rfc3339_micros().into(),
            Record::Event(Event::Anomaly(alert)) => alert.timestamp.rfc3339_micros().into(),
            Record::Event(Event::Session(session)) => session.timestamp.rfc3339_micros().into(),
            Record::Event(Event::Stats(stats)) => stats.timestamp.as_str().into(),
            Record::Repeat(summary) => summary.last_seen.rfc3339_micros().into(),
            Record::Server(report) => report.last_seen.as_str().into(),
            Record::Posture(posture) => posture.last_seen.as_str().into(),
        }
    }

    pub fn event_type(&self) -> &'static str {
        match self {
            Record::Event(Event::Credential(alert)) => alert.event_type.name(),
            Record::Event(Event::Anomaly(alert)) => alert.event_type.name(),
            Record::Event(Event::Session(_)) => "session",
            Record::Event(Event::Stats(stats)) => stats.event_type,
            Record::Repeat(summary) => summary.event_type,
            Record::Server(report) => report.event_type,
            Record::Posture(posture) => posture.event_type,
        }
    }

    /// `high`, `medium`, `low` for alerts; `info` for the inventory.
    pub fn severity(&self) -> &'static str {
        match self {
            Record::Event(Event::Credential(alert)) => alert.severity,
            Record::Event(Event::Anomaly(alert)) => alert.severity,
            Record::Repeat(summary) => summary.severity,
            Record::Event(Event::Session(_) | Event::Stats(_)) | Record::Server(_) | Record::Posture(_) => "info",
        }
    }
}

/// Turns records into one line each (without the newline) in a format.
#[derive(Clone, Debug)]
pub struct Encoder {
    pub format: Format,
    pub observer: Arc<Observer>,
    /// Native JSON: the server objects of recent alerts, written once per server.
    servers: alert_json::ServerObjects,
}

impl Encoder {
    /// Lines in `format`; `observer` names the sensor in ECS documents.
    pub fn new(format: Format, observer: Arc<Observer>) -> Encoder {
        Encoder { format, observer, servers: alert_json::ServerObjects::default() }
    }

    /// The record's line; empty for what has no line in this format (session records, which are
    /// internal, and postures in text, which `credwatch posture` tabulates instead).
    pub fn encode(&mut self, record: Record<'_>) -> Vec<u8> {
        let mut line = Vec::new();
        self.encode_into(record, &mut line);
        line
    }

    /// [`encode`](Self::encode), appending to `line` (a buffer reused from record to record).
    pub fn encode_into(&mut self, record: Record<'_>, line: &mut Vec<u8>) {
        if matches!(record, Record::Event(Event::Session(_))) {
            return;
        }
        let start = line.len();
        let encoded = match self.format {
            Format::Json => native_json(record, &mut self.servers, line),
            Format::Ecs => serde_json::to_writer(&mut *line, &ecs::document(record, &self.observer)),
            Format::Text => {
                line.extend_from_slice(text::line(record, &text::PLAIN).as_bytes());
                Ok(())
            }
        };
        // Our records always serialise; should one not, it leaves no half line behind.
        if encoded.is_err() {
            line.truncate(start);
        }
    }
}

fn native_json(
    record: Record<'_>,
    servers: &mut alert_json::ServerObjects,
    line: &mut Vec<u8>,
) -> serde_json::Result<()> {
    match record {
        Record::Event(Event::Credential(alert)) => {
            alert_json::write_credential_alert(alert, servers, line);
            Ok(())
        }
        Record::Event(Event::Anomaly(alert)) => serde_json::to_writer(line, alert),
        Record::Repeat(summary) => serde_json::to_writer(line, summary),
        Record::Server(report) => serde_json::to_writer(line, report),
        Record::Posture(posture) => serde_json::to_writer(line, posture),
        Record::Event(Event::Stats(stats)) => serde_json::to_writer(line, stats),
        Record::Event(Event::Session(_)) => Ok(()),
    }
}

/// One encoded record per line on a writer (standard output, or any `Write` in tests).
pub struct LineSink<W: Write> {
    out: W,
    encoder: Encoder,
    /// The line being written, its allocation kept from one record to the next.
    line: Vec<u8>,
}

/// The native format on a writer, as before several formats existed.
pub type JsonSink<W> = LineSink<W>;

impl<W: Write> LineSink<W> {
    /// Native JSON lines.
    pub fn new(out: W) -> Self {
        LineSink::with_encoder(out, Encoder::new(Format::Json, Arc::new(Observer::default())))
    }

    pub fn with_encoder(out: W, encoder: Encoder) -> Self {
        LineSink { out, encoder, line: Vec::new() }
    }

    fn write(&mut self, record: Record<'_>) -> io::Result<()> {
        self.line.clear();
        self.encoder.encode_into(record, &mut self.line);
        if self.line.is_empty() {
            return Ok(());
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }
}

impl<W: Write + Send> Sink for LineSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.write(Record::Event(event))
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        self.write(Record::Repeat(summary))
    }

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        self.write(Record::Posture(posture))
    }

    fn server_report(&mut self, report: &ServerReport) -> io::Result<()> {
        self.write(Record::Server(report))
    }

    /// Lines for machines: the errors were logged, and the exit status tells them.
    fn finish(&mut self, servers: &[ServerReport], _unread: &Unread) -> io::Result<()> {
        for server in servers {
            self.write(Record::Server(server))?;
        }
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What a run could not read, for the closing summaries people read: "no credential" must not
/// pass for an all-clear when part of the traffic was not looked at (the summaries are mailed
/// and pasted without the exit status, and `-q` hides the warnings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unread {
    /// Inputs that could not be read to their end, one message each naming the file.
    pub files: Vec<String>,
    /// Frames whose contents could not be looked into at all: of a link type not read,
    /// encrypted (802.11), tunnelled too deep.
    pub undecoded_frames: u64,
}

impl Unread {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.undecoded_frames == 0
    }

    /// `1 file could not be read to its end, 13 frames could not be decoded (of …)`: the frames'
    /// kinds said here, since with `-q` no warning names them.
    pub fn words(&self) -> String {
        let files = match self.files.len() {
            0 => None,
            1 => Some("1 file could not be read to its end".to_string()),
            count => Some(format!("{count} files could not be read to their end")),
        };
        let frames = match self.undecoded_frames {
            0 => None,
            count => Some(format!(
                "{count} frame{} could not be decoded (of a link type not read, encrypted, or tunnelled too deep)",
                if count == 1 { "" } else { "s" }
            )),
        };
        files.into_iter().chain(frames).collect::<Vec<_>>().join(", ")
    }

    /// Where a summary on standard output sends its reader: the errors above, which name the
    /// files (errors are shown even with `-q`).
    pub fn see_also(&self) -> &'static str {
        if self.files.is_empty() {
            ""
        } else {
            " (see the errors above)"
        }
    }
}

/// Why the outputs of a run could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("stdout named twice in --output")]
    StdoutTwice,
    /// The system's reason is part of the message, not a source of its own: it reads once.
    #[error("{spec}: {error}")]
    Destination { spec: OutputSpec, error: io::Error },
}

impl OpenError {
    /// Whether a file output was refused for want of permission (the file, or its directory).
    pub fn is_file_permission_denied(&self) -> bool {
        matches!(self, OpenError::Destination { spec, error }
            if matches!(spec.destination, Destination::File(_)) && error.kind() == io::ErrorKind::PermissionDenied)
    }
}

/// Every sink the user asked for, fed in turn. A queued sink (file, syslog) never fails here: it
/// counts its own trouble. Standard output closed by its reader ([`StdoutSink`]) is counted too,
/// and the others go on; only when none is left open is the whole closed (the run stops).
#[derive(Default)]
pub struct Outputs {
    sinks: Vec<Box<dyn Sink + Send>>,
    queued: Vec<QueuedSink>,
}

impl Outputs {
    /// Opens every sink the specs name. A spec without `format=` takes `default_format`, or when
    /// that is unset text on standard output and JSON elsewhere. `stdout` is the writer for a
    /// `stdout` spec; `colour` says whether text on it may be colourised; `when_full` what file and
    /// syslog sinks do with a record that finds their queue full. Network and file sinks start their threads here;
    /// nothing connects or opens a file yet, so a destination down at start-up is retried like one
    /// that fails later.
    pub fn open<W: Write + Send + 'static>(
        specs: &[OutputSpec],
        default_format: Option<Format>,
        observer: Arc<Observer>,
        stdout: W,
        colour: bool,
        when_full: WhenFull,
    ) -> Result<Outputs, OpenError> {
        let mut outputs = Outputs::default();
        let mut stdout = Some(stdout);
        for spec in specs {
            let format = spec.format_or(default_format);
            let encoder = Encoder::new(format, Arc::clone(&observer));
            match &spec.destination {
                Destination::Stdout => {
                    let Some(out) = stdout.take() else {
                        return Err(OpenError::StdoutTwice);
                    };
                    outputs.sinks.push(match format {
                        Format::Text => Box::new(StdoutSink::new(TextSink::new(out, colour), format)),
                        Format::Json | Format::Ecs => {
                            Box::new(StdoutSink::new(LineSink::with_encoder(out, encoder), format))
                        }
                    });
                }
                Destination::File(_) | Destination::SyslogUdp(_) | Destination::SyslogTcp(_) => {
                    let sink = QueuedSink::start(spec, encoder, when_full)
                        .map_err(|error| OpenError::Destination { spec: spec.clone(), error })?;
                    outputs.queued.push(sink)
                }
            }
        }
        Ok(outputs)
    }

    /// Adds a sink (tests, or a library user's own destination).
    pub fn push(&mut self, sink: Box<dyn Sink + Send>) {
        self.sinks.push(sink);
    }

    fn each(&mut self, mut call: impl FnMut(&mut dyn Sink) -> io::Result<()>) -> io::Result<()> {
        for sink in &mut self.queued {
            call(sink)?;
        }
        for sink in &mut self.sinks {
            call(sink.as_mut())?;
        }
        Ok(())
    }
}

impl Sink for Outputs {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.each(|sink| sink.event(event))
    }

    fn room(&self) -> usize {
        let queued = self.queued.iter().map(|sink| sink.room());
        queued.chain(self.sinks.iter().map(|sink| sink.room())).min().unwrap_or(usize::MAX)
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        self.each(|sink| sink.repeat(summary))
    }

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        self.each(|sink| sink.posture(posture))
    }

    fn server_report(&mut self, report: &ServerReport) -> io::Result<()> {
        self.each(|sink| sink.server_report(report))
    }

    fn end_of_events(&mut self) -> io::Result<()> {
        self.each(|sink| sink.end_of_events())
    }

    fn finish(&mut self, servers: &[ServerReport], unread: &Unread) -> io::Result<()> {
        self.each(|sink| sink.finish(servers, unread))?;
        // Said only when the run went on for other outputs: alone, a closed pipe ends it quietly.
        let missed: u64 = self.sinks.iter().filter(|sink| !sink.is_open()).map(|sink| sink.undelivered()).sum();
        if missed > 0 && self.is_open() {
            tracing::warn!(
                lost = missed,
                "standard output was closed by its reader: these records did not reach it (the other outputs got them)"
            );
        }
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.each(|sink| sink.tick(now))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.each(|sink| sink.flush())
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.each(|sink| sink.reopen())
    }

    fn undelivered(&self) -> u64 {
        let queued = self.queued.iter().map(Sink::undelivered);
        queued.chain(self.sinks.iter().map(|sink| sink.undelivered())).sum()
    }

    fn output_stats(&self, into: &mut Vec<OutputStats>) {
        self.queued.iter().for_each(|sink| sink.output_stats(into));
        self.sinks.iter().for_each(|sink| sink.output_stats(into));
    }

    /// Open while any sink is (queued sinks always are); an empty set has nothing to close.
    fn is_open(&self) -> bool {
        let no_sinks = self.sinks.is_empty() && self.queued.is_empty();
        no_sinks || !self.queued.is_empty() || self.sinks.iter().any(|sink| sink.is_open())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text::tests::sample_alert;

    /// A sink with room for so many records.
    struct Room(usize);

    impl Sink for Room {
        fn event(&mut self, _: &Event) -> io::Result<()> {
            Ok(())
        }
        fn repeat(&mut self, _: &RepeatSummary) -> io::Result<()> {
            Ok(())
        }
        fn finish(&mut self, _: &[ServerReport], _: &Unread) -> io::Result<()> {
            Ok(())
        }
        fn room(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn the_room_of_several_sinks_is_the_least_of_theirs_through_every_wrapper() {
        let mut outputs = Outputs::default();
        assert_eq!(outputs.room(), usize::MAX);
        outputs.push(Box::new(Room(7)));
        outputs.push(Box::new(Dedup::new(Room(5), std::time::Duration::from_secs(60))));
        assert_eq!(outputs.room(), 5);
        outputs.push(Box::new(PostureOnly::new(Room(3))));
        assert_eq!(outputs.room(), 3);
    }

    #[test]
    fn native_json_line_keeps_the_contract_and_adds_community_id() {
        let event = sample_alert();
        let mut sink = JsonSink::new(Vec::new());
        sink.event(&event).unwrap();
        let line = String::from_utf8(sink.out).unwrap();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event_type"], "cleartext_credential");
        assert_eq!(value["src_ip"], "192.0.2.10");
        assert_eq!(value["credential"]["mechanism"], "USER/PASS");
        assert_eq!(value["schema_version"], 2);
        let expected = crate::alert::community_id_v1(
            0,
            ("192.0.2.10".parse().unwrap(), 50110),
            ("198.51.100.5".parse().unwrap(), 110),
            6,
        );
        assert_eq!(value["community_id"], expected.as_str());
    }

    #[test]
    fn outputs_fan_out_to_every_sink() {
        let shared = shared_text::SharedText::default();
        let mut outputs = Outputs::default();
        outputs.push(Box::new(JsonSink::new(shared.clone())));
        let ecs = Encoder::new(Format::Ecs, Arc::new(Observer::default()));
        outputs.push(Box::new(LineSink::with_encoder(shared.clone(), ecs)));
        outputs.event(&sample_alert()).unwrap();
        outputs.finish(&[], &crate::output::Unread::default()).unwrap();
        let written = shared.text();
        let lines: Vec<serde_json::Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event_type"], "cleartext_credential");
        assert_eq!(lines[1]["event"]["kind"], "alert");
    }

    /// Live's hint for `--user` is for a file the dropped account may not write, nothing else.
    #[test]
    fn a_file_refused_for_want_of_permission_is_told_apart() {
        let error = |spec: &str, kind: io::ErrorKind| OpenError::Destination {
            spec: OutputSpec::parse(spec).unwrap(),
            error: io::Error::new(kind, "refused"),
        };
        assert!(error("file:/var/log/credwatch.json", io::ErrorKind::PermissionDenied).is_file_permission_denied());
        assert!(!error("file:/var/log/credwatch.json", io::ErrorKind::NotFound).is_file_permission_denied());
        assert!(!error("syslog+tcp://127.0.0.1:514", io::ErrorKind::PermissionDenied).is_file_permission_denied());
        assert!(!OpenError::StdoutTwice.is_file_permission_denied());
        let shown = error("file:/var/log/credwatch.json", io::ErrorKind::PermissionDenied).to_string();
        assert_eq!(shown, "file:/var/log/credwatch.json: refused", "the system's reason, once");
    }

    #[test]
    fn stdout_cannot_be_named_twice() {
        let specs = [OutputSpec::stdout(None), OutputSpec::stdout(Some(Format::Ecs))];
        let opened = Outputs::open(&specs, None, Arc::new(Observer::default()), Vec::new(), false, WhenFull::Drop);
        assert!(matches!(opened, Err(OpenError::StdoutTwice)));
    }
}
