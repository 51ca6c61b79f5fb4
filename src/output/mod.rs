//! Where events go: JSON lines for machines, aligned text for people, and the closing summary of
//! servers at risk. Outputs only ever see redacted events.

mod posture_table;
mod summary;
mod text;

use std::io::{self, Write};

use crate::alert::Event;

pub use posture_table::PostureTable;
pub use summary::{ServerReport, ServerSummary};
pub use text::TextSink;

/// An output format.
pub trait Sink {
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// End of the run: the servers that exposed credentials, most exposed first.
    fn finish(&mut self, servers: &[ServerReport]) -> io::Result<()>;
}

/// One JSON object per line, nothing else (the native format).
pub struct JsonSink<W: Write> {
    out: W,
    postures_only: bool,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink { out, postures_only: false }
    }

    /// Only `server_posture` events (for `credwatch posture --format json`).
    pub fn postures_only(out: W) -> Self {
        JsonSink { out, postures_only: true }
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        if self.postures_only && !matches!(event, Event::Posture(_)) {
            return Ok(());
        }
        match event {
            Event::Credential(alert) => serde_json::to_writer(&mut self.out, alert)?,
            Event::Anomaly(alert) => serde_json::to_writer(&mut self.out, alert)?,
            Event::Posture(posture) => serde_json::to_writer(&mut self.out, posture)?,
            Event::Session(_) => return Ok(()),
        }
        self.out.write_all(b"\n")
    }

    fn finish(&mut self, servers: &[ServerReport]) -> io::Result<()> {
        for server in servers.iter().filter(|_| !self.postures_only) {
            serde_json::to_writer(&mut self.out, server)?;
            self.out.write_all(b"\n")?;
        }
        self.out.flush()
    }
}
