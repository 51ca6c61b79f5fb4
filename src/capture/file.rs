//! Capture files in pure Rust: classic pcap (micro/nanosecond, either byte order), pcapng (several
//! sections and interfaces), gzip-compressed either way, from a path or stdin. The format is
//! sniffed from the first bytes, never taken from the file name.
//!
//! TO BE IMPLEMENTED (helper): see the interface below.

use std::path::Path;

use super::{Frame, LinkType, Timestamp};

/// Why a capture file could not be read (further), with the file and byte offset it happened at.
#[derive(Debug, thiserror::Error)]
#[error("{file}: at byte offset {offset}: {kind}")]
pub struct CaptureError {
    pub file: String,
    pub offset: u64,
    pub kind: CaptureErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureErrorKind {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a pcap or pcapng capture (first bytes {0:02x?})")]
    UnknownFormat([u8; 4]),
    #[error("file ends inside a record (truncated capture)")]
    Truncated,
    #[error("corrupt capture: {0}")]
    Corrupt(String),
}

/// Reads frames from one capture file.
pub struct FileSource {
    _todo: (),
}

impl FileSource {
    /// Opens `path` (`-` reads standard input).
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let _ = path;
        todo!()
    }

    /// Reads a capture from any byte stream; `name` is used in errors and logs.
    pub fn from_reader(name: String, reader: Box<dyn std::io::Read + Send>) -> Result<FileSource, CaptureError> {
        let _ = (name, reader);
        todo!()
    }

    /// The next frame, `Ok(None)` at the end. After an error the source is finished.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let _ = (LinkType::ETHERNET, Timestamp(0));
        todo!()
    }

    /// The name given to the source (the path as the user wrote it, or `-`).
    pub fn name(&self) -> &str {
        todo!()
    }

    /// Compressed bytes consumed so far from the underlying file (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        todo!()
    }

    /// Non-fatal problems met so far (unknown pcapng blocks, packets for an undeclared interface, …).
    pub fn warnings(&self) -> u64 {
        todo!()
    }
}
