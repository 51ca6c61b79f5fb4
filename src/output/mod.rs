//! Where events go: JSON lines for machines, aligned text for people, and the closing summary of
//! servers at risk. Outputs only ever see redacted events.

mod summary;
mod text;

use std::io::{self, Write};

use crate::alert::Event;

pub use summary::{ServerReport, ServerSummary};
pub use text::TextSink;

/// An output format. Sinks are `Send`: the pipeline's output thread owns them.
pub trait Sink: Send {
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// End of the run: the servers that exposed credentials, most exposed first.
    fn finish(&mut self, servers: &[ServerReport]) -> io::Result<()>;
    /// Pushes buffered events out (live mode calls it whenever the output queue runs empty).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Reopens output files after they were rotated away (SIGHUP); a no-op for streams.
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One JSON object per line, nothing else (the native format).
pub struct JsonSink<W: Write> {
    out: W,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink { out }
    }
}

impl<W: Write + Send> Sink for JsonSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Credential(alert) => serde_json::to_writer(&mut self.out, alert)?,
            Event::Anomaly(alert) => serde_json::to_writer(&mut self.out, alert)?,
            Event::Stats(stats) => serde_json::to_writer(&mut self.out, stats)?,
        }
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, servers: &[ServerReport]) -> io::Result<()> {
        for server in servers {
            serde_json::to_writer(&mut self.out, server)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}
