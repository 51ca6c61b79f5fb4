//! Sinks that write from a thread of their own: files and syslog.
//!
//! The pipeline encodes each record and hands it to a bounded queue without waiting; the sink's
//! thread delivers it. When the destination fails (server down, disk full), the thread keeps the
//! message, retries with exponential backoff (0.1 s up to 30 s) and counts the errors; meanwhile
//! the queue fills, and once it is full new records are dropped and counted rather than letting
//! the sensor stall. At exit the thread gets one more try; what it still cannot deliver is
//! dropped and counted. Files are written in batches, flushed at least every second and at exit.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::syslog::Header;
use super::{Destination, Encoder, OutputSpec, Record, RepeatSummary, ServerReport, Sink};
use crate::alert::Event;

/// Records a sink holds while its destination is slow or down (about 10 MB of typical alerts).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Longest time a record written to a file stays in memory.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A file batch is written out early past this size.
const FLUSH_BYTES: usize = 64 * 1024;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A TCP server that stops reading holds the sink's thread no longer than this per message.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest UDP payload over IPv4; longer messages are truncated, as RFC 5426 allows.
const MAX_DATAGRAM: usize = 65_507;

/// What a queued sink did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Records handed to the destination (written to the file, sent on the socket).
    pub written: u64,
    /// Records dropped because the queue was full (destination down or too slow for too long).
    pub dropped_queue_full: u64,
    /// Records lost to a failure: a file batch whose write failed, or what was still queued at
    /// exit while the destination was down.
    pub lost: u64,
    /// Failed attempts (open, connect, write); each is retried after a backoff.
    pub errors: u64,
}

#[derive(Default)]
struct Shared {
    written: AtomicU64,
    dropped_queue_full: AtomicU64,
    lost: AtomicU64,
    errors: AtomicU64,
    closing: AtomicBool,
    reopen: AtomicBool,
}

impl Shared {
    fn stats(&self) -> SinkStats {
        SinkStats {
            written: self.written.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// A file or syslog sink: encodes on the caller's thread, delivers on its own.
pub struct QueuedSink {
    name: String,
    encoder: Encoder,
    syslog: Option<Header>,
    sender: Option<Sender<Vec<u8>>>,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl QueuedSink {
    /// Starts the sink for a file or syslog destination. A file that cannot be opened is an error
    /// here (most likely a wrong path); a syslog server that is down is not (it is retried).
    pub fn start(spec: &OutputSpec, encoder: Encoder) -> io::Result<QueuedSink> {
        let header = Header::new(spec.facility, &encoder.observer.hostname);
        let (transport, syslog): (Box<dyn Transport>, _) = match &spec.destination {
            Destination::File(path) => (Box::new(FileTransport::open(path.clone())?), None),
            Destination::SyslogUdp(target) => {
                (Box::new(UdpTransport { target: target.clone(), socket: None }), Some(header))
            }
            Destination::SyslogTcp(target) => {
                (Box::new(TcpTransport { target: target.clone(), stream: None }), Some(header))
            }
            Destination::Stdout => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "stdout is not a queued sink"));
            }
        };
        QueuedSink::with_transport(spec.to_string(), transport, encoder, syslog, QUEUE_CAPACITY)
    }

    fn with_transport(
        name: String,
        transport: Box<dyn Transport>,
        encoder: Encoder,
        syslog: Option<Header>,
        capacity: usize,
    ) -> io::Result<QueuedSink> {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let shared = Arc::new(Shared::default());
        let worker = Worker { name: name.clone(), transport, receiver, shared: Arc::clone(&shared) };
        let worker = std::thread::Builder::new().name("credwatch-output".to_string()).spawn(move || worker.run())?;
        Ok(QueuedSink { name, encoder, syslog, sender: Some(sender), shared, worker: Some(worker) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> SinkStats {
        self.shared.stats()
    }

    fn push(&mut self, record: Record<'_>) {
        let Some(sender) = &self.sender else { return };
        let message = match &self.syslog {
            Some(header) => header.message(record, &self.encoder),
            None => self.encoder.encode(record),
        };
        match sender.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.shared.dropped_queue_full.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(sink = %self.name, capacity = QUEUE_CAPACITY, "output queue full: dropping records");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lets the thread deliver what is queued (one last try if the destination is down) and waits
    /// for it.
    fn close(&mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.sender = None;
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                tracing::error!(sink = %self.name, "output thread panicked");
            }
        }
        let stats = self.stats();
        if stats.dropped_queue_full > 0 || stats.lost > 0 {
            tracing::warn!(sink = %self.name, ?stats, "some records did not reach this output");
        } else {
            tracing::debug!(sink = %self.name, ?stats, "output closed");
        }
    }
}

impl Sink for QueuedSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.push(Record::Event(event));
        Ok(())
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        self.push(Record::Repeat(summary));
        Ok(())
    }

    fn finish(&mut self, servers: &[ServerReport]) -> io::Result<()> {
        for server in servers {
            self.push(Record::Server(server));
        }
        self.close();
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.shared.reopen.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for QueuedSink {
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.close();
        }
    }
}

/// How a sink's thread reaches its destination.
trait Transport: Send {
    /// Delivers (or, for files, buffers) one message, opening or connecting first if needed.
    fn send(&mut self, message: &[u8]) -> io::Result<()>;
    /// Bytes waiting for the next flush.
    fn buffered(&self) -> usize {
        0
    }
    /// Writes out the buffer; on error, says how many messages were lost with it.
    fn flush(&mut self) -> Result<(), (io::Error, u64)> {
        Ok(())
    }
    /// Drops the file or connection; the next `send` opens a new one.
    fn close(&mut self);
}

struct Worker {
    name: String,
    transport: Box<dyn Transport>,
    receiver: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(mut self) {
        let mut backoff = BACKOFF_FIRST;
        let mut failing = false;
        let mut pending: Option<Vec<u8>> = None;
        let mut last_flush = Instant::now();
        loop {
            if self.shared.reopen.swap(false, Ordering::Relaxed) {
                self.flush();
                self.transport.close();
            }
            if let Some(message) = pending.take() {
                match self.transport.send(&message) {
                    Ok(()) => {
                        self.shared.written.fetch_add(1, Ordering::Relaxed);
                        if failing {
                            tracing::info!(sink = %self.name, "output recovered");
                            failing = false;
                        }
                        backoff = BACKOFF_FIRST;
                    }
                    Err(error) => {
                        self.shared.errors.fetch_add(1, Ordering::Relaxed);
                        if !failing {
                            tracing::warn!(sink = %self.name, %error, "output failing; retrying with backoff");
                            failing = true;
                        }
                        self.transport.close();
                        if self.shared.closing.load(Ordering::Relaxed) {
                            let left = 1 + self.receiver.try_iter().count() as u64;
                            self.shared.lost.fetch_add(left, Ordering::Relaxed);
                            return;
                        }
                        pending = Some(message);
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
            if self.transport.buffered() >= FLUSH_BYTES || last_flush.elapsed() >= FLUSH_INTERVAL {
                self.flush();
                last_flush = Instant::now();
            }
            match self.receiver.recv_timeout(FLUSH_INTERVAL) {
                Ok(message) => pending = Some(message),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    fn flush(&mut self) {
        if let Err((error, lost)) = self.transport.flush() {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
            self.shared.lost.fetch_add(lost, Ordering::Relaxed);
            tracing::warn!(sink = %self.name, %error, lost, "output write failed");
            self.transport.close();
        }
    }

    /// Waits out a backoff, cut short when the sink is closing.
    fn sleep(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while !self.shared.closing.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Appends lines to a file, in batches.
struct FileTransport {
    path: PathBuf,
    file: Option<File>,
    buffer: Vec<u8>,
    lines: u64,
}

impl FileTransport {
    fn open(path: PathBuf) -> io::Result<FileTransport> {
        let mut transport = FileTransport { path, file: None, buffer: Vec::new(), lines: 0 };
        transport.ensure_open()?;
        Ok(transport)
    }

    fn ensure_open(&mut self) -> io::Result<&mut File> {
        match &mut self.file {
            Some(file) => Ok(file),
            slot => Ok(slot.insert(OpenOptions::new().create(true).append(true).open(&self.path)?)),
        }
    }
}

impl Transport for FileTransport {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.ensure_open()?;
        self.buffer.extend_from_slice(message);
        self.buffer.push(b'\n');
        self.lines += 1;
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn flush(&mut self) -> Result<(), (io::Error, u64)> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.lines);
        let buffer = std::mem::take(&mut self.buffer);
        let file = self.ensure_open().map_err(|error| (error, lines))?;
        file.write_all(&buffer).and_then(|()| file.flush()).map_err(|error| (error, lines))
    }

    fn close(&mut self) {
        self.file = None;
    }
}

/// RFC 5426: one message per datagram.
struct UdpTransport {
    target: String,
    socket: Option<UdpSocket>,
}

impl Transport for UdpTransport {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        let socket = match &mut self.socket {
            Some(socket) => socket,
            slot => {
                let address = resolve(&self.target)?;
                let local = if address.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let socket = UdpSocket::bind(local)?;
                socket.connect(address)?;
                slot.insert(socket)
            }
        };
        socket.send(message.get(..MAX_DATAGRAM).unwrap_or(message)).map(drop)
    }

    fn close(&mut self) {
        self.socket = None;
    }
}

/// RFC 6587 octet counting: `LENGTH SP MESSAGE`, so messages may hold newlines.
struct TcpTransport {
    target: String,
    stream: Option<TcpStream>,
}

impl TcpTransport {
    fn connect(target: &str) -> io::Result<TcpStream> {
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address");
        for address in target.to_socket_addrs()? {
            match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }
}

/// Whether the server closed (or reset) the connection: writing would then lose the message
/// silently into a dead socket, so reconnect first.
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match stream.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

impl Transport for TcpTransport {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        if self.stream.as_ref().is_some_and(peer_closed) {
            self.stream = None;
        }
        let stream = match &mut self.stream {
            Some(stream) => stream,
            slot => slot.insert(TcpTransport::connect(&self.target)?),
        };
        let mut frame = format!("{} ", message.len()).into_bytes();
        frame.extend_from_slice(message);
        stream.write_all(&frame)
    }

    fn close(&mut self) {
        self.stream = None;
    }
}

fn resolve(target: &str) -> io::Result<std::net::SocketAddr> {
    target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{target}: no address")))
}
