//! Standard output, whose reader may stop reading: `credwatch read … | head` closes the pipe, the
//! usual Unix signal to stop writing there. The sink then closes quietly instead of failing the
//! run, so that the other outputs (files, syslog, the HTML report) still get everything; what
//! standard output did not get is counted. The run itself stops when no output is left open
//! (see [`Sink::is_open`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::io;

use super::{Format, RepeatSummary, ServerReport, Sink};
use crate::alert::{Event, OutputStats};
use crate::capture::Timestamp;
use crate::posture::ServerPosture;

/// The sink of standard output (text or line formats), closed once its reader is gone.
pub struct StdoutSink<S: Sink> {
    inner: S,
    /// Postures are written in JSON and ECS, not in text: what counts as lost.
    writes_postures: bool,
    closed: bool,
    /// Records handed to standard output.
    written: u64,
    /// Records that did not reach the reader, from the write that found the pipe closed on.
    lost: u64,
}

impl<S: Sink> StdoutSink<S> {
    pub fn new(inner: S, format: Format) -> Self {
        StdoutSink { inner, writes_postures: format != Format::Text, closed: false, written: 0, lost: 0 }
    }

    /// Passes `records` records to the inner sink with `write`, unless the pipe is closed; a
    /// closed pipe (found now or before) counts them as lost and is not an error.
    fn pass(&mut self, records: u64, write: impl FnOnce(&mut S) -> io::Result<()>) -> io::Result<()> {
        if !self.closed {
            match write(&mut self.inner) {
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => self.closed = true,
                Ok(()) => {
                    self.written = self.written.saturating_add(records);
                    return Ok(());
                }
                Err(error) => return Err(error),
            }
        }
        self.lost = self.lost.saturating_add(records);
        Ok(())
    }
}

impl<S: Sink> Sink for StdoutSink<S> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let records = u64::from(!matches!(event, Event::Session(_)));
        self.pass(records, |inner| inner.event(event))
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        self.pass(1, |inner| inner.repeat(summary))
    }

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        self.pass(u64::from(self.writes_postures), |inner| inner.posture(posture))
    }

    fn server_report(&mut self, report: &ServerReport) -> io::Result<()> {
        self.pass(1, |inner| inner.server_report(report))
    }

    fn end_of_events(&mut self) -> io::Result<()> {
        self.pass(0, Sink::end_of_events)
    }

    fn finish(&mut self, servers: &[ServerReport], unread: &super::Unread) -> io::Result<()> {
        let records = u64::try_from(servers.len()).unwrap_or(u64::MAX);
        self.pass(records, |inner| inner.finish(servers, unread))
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.pass(0, |inner| inner.tick(now))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.pass(0, Sink::flush)
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.pass(0, Sink::reopen)
    }

    fn undelivered(&self) -> u64 {
        self.lost
    }

    fn output_stats(&self, into: &mut Vec<OutputStats>) {
        into.push(OutputStats {
            name: "stdout".to_string(),
            written: self.written,
            lost: self.lost,
            ..OutputStats::default()
        });
    }

    fn is_open(&self) -> bool {
        !self.closed
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::output::text::tests::sample_alert;
    use crate::output::TextSink;

    /// A pipe whose reader goes away when `closed` is set.
    struct Pipe(Arc<AtomicBool>);

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_closes_the_sink_and_counts_what_it_missed() {
        let closed = Arc::new(AtomicBool::new(false));
        let mut sink = StdoutSink::new(TextSink::new(Pipe(Arc::clone(&closed)), false), Format::Text);
        let alert = sample_alert();
        sink.event(&alert).unwrap();
        assert!(sink.is_open() && sink.undelivered() == 0);
        closed.store(true, Ordering::Relaxed);
        sink.event(&alert).unwrap();
        sink.event(&alert).unwrap();
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        assert!(!sink.is_open());
        assert_eq!(sink.undelivered(), 2, "the two alerts after the first; the empty summary has no record");
        let mut stats = Vec::new();
        sink.output_stats(&mut stats);
        assert_eq!(stats, [OutputStats { name: "stdout".into(), written: 1, lost: 2, ..OutputStats::default() }]);
    }

    /// Any other failure is still an error.
    #[test]
    fn other_errors_still_fail() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = StdoutSink::new(TextSink::new(Full, false), Format::Text);
        assert_eq!(sink.event(&sample_alert()).unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert!(sink.is_open());
    }
}
