//! Sinks that write from a thread of their own: files and syslog.
//!
//! The pipeline encodes each record and hands it to a bounded queue; the sink's thread delivers
//! it. When the destination fails (server down, disk full), the thread keeps the message, retries
//! with exponential backoff (0.1 s up to 30 s) and counts the errors; meanwhile the queue fills,
//! and once it is full new records are dropped and counted rather than letting the sensor stall.
//! A full queue in front of a destination that delivers is a burst (the closing inventory of tens
//! of thousands of servers): reading files, the record waits for room ([`WhenFull::Wait`]); live,
//! it is dropped and counted all the same ([`WhenFull::Drop`]: the capture never waits), but for
//! the closing records, which wait a few seconds. At exit the thread gets one more try; what it
//! still cannot deliver is dropped and counted. Files are written in batches, flushed at least
//! every second and at exit.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

use super::syslog::Header;
use super::{Destination, Encoder, OutputSpec, Record, RepeatSummary, ServerReport, Sink};
use crate::alert::{worth_warning_again, Event, OutputStats};
use crate::posture::ServerPosture;

/// Records a sink holds while its destination is slow or down (about 10 MB of typical alerts).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Longest time a record written to a file stays in memory.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// A file batch is written out early past this size.
const FLUSH_BYTES: usize = 64 * 1024;
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A failing destination counts as recovered once it has taken records this long without an
/// error. One success is not enough: a datagram to a closed UDP port is accepted, and the refusal
/// it earns (ICMP port unreachable) fails the next send, so the destination would flap between
/// failing and recovered with every record, the backoff starting over each time.
const RECOVERED_AFTER: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A TCP server that stops reading holds the sink's thread no longer than this per message.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest UDP payload over IPv4; longer messages are truncated, as RFC 5426 allows.
const MAX_DATAGRAM: usize = 65_507;

/// What a queued sink does with a record that finds its queue full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room while the destination delivers (reading files: a burst loses nothing); drop
    /// when it is failing, as it may stay down for long.
    Wait,
    /// Drop and count the record (live capture: the output thread never stalls the sensor).
    Drop,
}

/// [`Sink::room`] keeps one slot in this many of the queue for alerts: the live inventory never
/// fills them.
const ALERTS_KEEP_ONE_SLOT_IN: usize = 10;
/// Live, the closing records wait for room this long at most (all of them together): a
/// destination that delivers slowly must not hold the stop past a supervisor's patience.
const CLOSING_WAIT: Duration = Duration::from_secs(10);
/// How long a record waiting for room sleeps between looks at whether the destination failed.
const ROOM_POLL: Duration = Duration::from_millis(50);

/// What a queued sink did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Records handed to the destination (written whole to the file, sent on the socket); the
    /// records of a file batch that a failed write did not take whole leave this count for
    /// `lost`.
    pub written: u64,
    /// Records dropped because the queue was full (destination down or too slow for too long).
    pub dropped_queue_full: u64,
    /// Records lost to a failure: those of a file batch that a failed write did not take whole,
    /// or what was still queued at exit while the destination was down.
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
    /// The destination's latest attempt failed (records waiting for room give up).
    failing: AtomicBool,
    /// Live, the end of the closing wait: what is still queued then is given up for lost.
    give_up_at: std::sync::OnceLock<Instant>,
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
    /// Records dropped for a full queue at the last warning about it (0: none yet).
    drops_warned: u64,
    when_full: WhenFull,
    /// When records stop waiting for room (live, from the end of events on).
    wait_until: Option<Instant>,
    /// [`CLOSING_WAIT`] (shorter in tests).
    closing_wait: Duration,
}

impl QueuedSink {
    /// Starts the sink for a file or syslog destination. A file that cannot be opened is an error
    /// here (most likely a wrong path); a syslog server that is down is not (it is retried).
    pub fn start(spec: &OutputSpec, encoder: Encoder, when_full: WhenFull) -> io::Result<QueuedSink> {
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
        QueuedSink::with_transport(spec.to_string(), transport, encoder, syslog, QUEUE_CAPACITY, when_full)
    }

    fn with_transport(
        name: String,
        transport: Box<dyn Transport>,
        encoder: Encoder,
        syslog: Option<Header>,
        capacity: usize,
        when_full: WhenFull,
    ) -> io::Result<QueuedSink> {
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        let shared = Arc::new(Shared::default());
        let worker = Worker::new(name.clone(), transport, receiver, Arc::clone(&shared));
        // The thread logs where its creator does (a test's scoped subscriber included).
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        let worker = std::thread::Builder::new()
            .name("credwatch-output".to_string())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || worker.run()))?;
        Ok(QueuedSink {
            name,
            encoder,
            syslog,
            sender: Some(sender),
            shared,
            worker: Some(worker),
            drops_warned: 0,
            when_full,
            wait_until: None,
            closing_wait: CLOSING_WAIT,
        })
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
            Some(header) => header.message(record, &mut self.encoder),
            None => self.encoder.encode(record),
        };
        let mut message = match sender.try_send(message) {
            Ok(()) => return,
            Err(TrySendError::Full(message)) => message,
            Err(TrySendError::Disconnected(_)) => {
                self.shared.lost.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if self.when_full == WhenFull::Wait {
            let in_time = |until: &Option<Instant>| until.is_none_or(|until| Instant::now() < until);
            while !self.shared.failing.load(Ordering::Relaxed) && in_time(&self.wait_until) {
                match sender.send_timeout(message, ROOM_POLL) {
                    Ok(()) => return,
                    Err(SendTimeoutError::Timeout(back)) => message = back,
                    Err(SendTimeoutError::Disconnected(_)) => {
                        self.shared.lost.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
        self.count_dropped();
    }

    /// A record dropped for a full queue: counted, and said again each time the drops doubled (a
    /// destination down for days keeps saying so).
    fn count_dropped(&mut self) {
        let dropped = self.shared.dropped_queue_full.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if worth_warning_again(dropped, self.drops_warned) {
            self.drops_warned = dropped;
            tracing::warn!(sink = %self.name, dropped, "output queue full: dropping records");
        }
    }

    /// Live, server records (postures, the inventory) stay out of the slots kept for alerts.
    fn in_reserve(&self) -> bool {
        self.when_full == WhenFull::Drop && self.sender.is_some() && self.free_beyond_reserve() == 0
    }

    /// Free slots of the queue beyond those kept for alerts (none once closed).
    fn free_beyond_reserve(&self) -> usize {
        let Some(sender) = &self.sender else { return 0 };
        let capacity = sender.capacity().unwrap_or(usize::MAX);
        capacity.saturating_sub(sender.len()).saturating_sub(capacity / ALERTS_KEEP_ONE_SLOT_IN)
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
        let SinkStats { written, dropped_queue_full, lost, errors } = stats;
        if dropped_queue_full > 0 || lost > 0 {
            tracing::warn!(sink = %self.name, written, dropped_queue_full, lost, errors, "some records did not reach this output");
        } else {
            tracing::debug!(sink = %self.name, written, errors, "output closed");
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

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        if self.in_reserve() {
            self.count_dropped();
        } else {
            self.push(Record::Posture(posture));
        }
        Ok(())
    }

    fn server_report(&mut self, report: &ServerReport) -> io::Result<()> {
        if self.in_reserve() {
            self.count_dropped();
        } else {
            self.push(Record::Server(report));
        }
        Ok(())
    }

    /// The capture is over: the closing postures and summary wait for room (see [`WhenFull`]);
    /// live, they and what is queued get a closing wait (10 s) to be delivered, no more: a
    /// destination that delivers slowly must not hold the stop past a supervisor's patience.
    fn end_of_events(&mut self) -> io::Result<()> {
        if self.when_full == WhenFull::Drop {
            let until = Instant::now() + self.closing_wait;
            self.when_full = WhenFull::Wait;
            self.wait_until = Some(until);
            let _ = self.shared.give_up_at.set(until);
        }
        Ok(())
    }

    /// A destination that is failing sets no pace: what does not fit its queue is dropped anyway
    /// (server records before the slots kept for alerts), and the other outputs go on.
    fn room(&self) -> usize {
        if self.shared.failing.load(Ordering::Relaxed) {
            return usize::MAX;
        }
        self.free_beyond_reserve()
    }

    /// Records for machines: the errors were logged, and the exit status tells them.
    fn finish(&mut self, servers: &[ServerReport], _unread: &super::Unread) -> io::Result<()> {
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

    fn undelivered(&self) -> u64 {
        let stats = self.stats();
        stats.dropped_queue_full.saturating_add(stats.lost)
    }

    fn output_stats(&self, into: &mut Vec<OutputStats>) {
        let SinkStats { written, dropped_queue_full, lost, errors } = self.stats();
        into.push(OutputStats { name: self.name.clone(), written, dropped_queue_full, lost, errors });
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
    /// Whether `send` only buffers, the flush delivering (a file): a send that worked proves
    /// nothing of the destination then.
    fn buffers(&self) -> bool {
        false
    }
    /// Drops the file or connection; the next `send` opens a new one.
    fn close(&mut self);
}

struct Worker {
    name: String,
    transport: Box<dyn Transport>,
    receiver: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    /// Records lost at the last warning about it (0: none yet).
    lost_warned: u64,
    /// Since when the destination has been failing (`None`: it delivers).
    failing: Option<Instant>,
    /// When its latest attempt failed.
    last_error: Instant,
    /// The wait before a failed message is tried again.
    backoff: Duration,
    /// "output failing" was said for the current run of failures (a failed write of a file batch
    /// has a warning of its own, and does not stand for a failure to open the file).
    failing_said: bool,
}

impl Worker {
    fn new(name: String, transport: Box<dyn Transport>, receiver: Receiver<Vec<u8>>, shared: Arc<Shared>) -> Worker {
        Worker {
            name,
            transport,
            receiver,
            shared,
            lost_warned: 0,
            failing: None,
            last_error: Instant::now(),
            backoff: BACKOFF_FIRST,
            failing_said: false,
        }
    }

    fn run(mut self) {
        let mut pending: Option<Vec<u8>> = None;
        let mut last_flush = Instant::now();
        loop {
            let backlog = pending.is_some() || !self.receiver.is_empty();
            if backlog && self.shared.give_up_at.get().is_some_and(|at| Instant::now() >= *at) {
                let left = u64::from(pending.is_some()) + self.receiver.try_iter().count() as u64;
                self.shared.lost.fetch_add(left, Ordering::Relaxed);
                self.flush();
                return;
            }
            if self.shared.reopen.swap(false, Ordering::Relaxed) {
                self.flush();
                self.transport.close();
            }
            if let Some(message) = pending.take() {
                match self.transport.send(&message) {
                    Ok(()) => {
                        self.shared.written.fetch_add(1, Ordering::Relaxed);
                        // Records may wait for room again.
                        self.shared.failing.store(false, Ordering::Relaxed);
                        if !self.transport.buffers() {
                            self.delivered();
                        }
                    }
                    Err(error) => {
                        self.shared.failing.store(true, Ordering::Relaxed);
                        self.failed();
                        if !std::mem::replace(&mut self.failing_said, true) {
                            tracing::warn!(sink = %self.name, %error, "output failing; retrying with backoff");
                        }
                        self.transport.close();
                        if self.shared.closing.load(Ordering::Relaxed) {
                            let left = 1 + self.receiver.try_iter().count() as u64;
                            self.shared.lost.fetch_add(left, Ordering::Relaxed);
                            return;
                        }
                        pending = Some(message);
                        self.sleep(self.backoff);
                        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
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

    /// An attempt failed.
    fn failed(&mut self) {
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        self.last_error = Instant::now();
        self.failing.get_or_insert(self.last_error);
    }

    /// Records reached the destination. The log and the backoff wait for it to prove itself
    /// (see [`RECOVERED_AFTER`]) before it counts as recovered.
    fn delivered(&mut self) {
        if self.failing.is_some() && self.last_error.elapsed() >= RECOVERED_AFTER {
            let failed_for = self.failing.take().map(|since| since.elapsed().as_secs());
            self.failing_said = false;
            tracing::info!(sink = %self.name, failed_for_secs = failed_for, "output recovered");
        }
        if self.failing.is_none() {
            self.backoff = BACKOFF_FIRST;
        }
    }

    fn flush(&mut self) {
        let buffered = self.transport.buffered() > 0;
        match self.transport.flush() {
            Ok(()) if buffered => self.delivered(),
            Ok(()) => {}
            Err((error, lost)) => {
                self.failed();
                // The batch was counted written as it was buffered: what never reached the file
                // is taken back.
                let _ = self
                    .shared
                    .written
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |written| Some(written.saturating_sub(lost)));
                let lost_so_far = self.shared.lost.fetch_add(lost, Ordering::Relaxed).saturating_add(lost);
                // A full disk fails every flush, once a second: said again each time the loss doubled.
                if worth_warning_again(lost_so_far, self.lost_warned) {
                    self.lost_warned = lost_so_far;
                    tracing::warn!(sink = %self.name, %error, lost, lost_so_far, "output write failed");
                }
                self.transport.close();
            }
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
    /// A write failed partway through a line that could not be cut back out: the next batch
    /// starts on a line of its own, so that its first record is not glued to the torn one.
    torn: bool,
}

impl FileTransport {
    fn open(path: PathBuf) -> io::Result<FileTransport> {
        let mut transport = FileTransport { path, file: None, buffer: Vec::new(), lines: 0, torn: false };
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

    fn buffers(&self) -> bool {
        true
    }

    fn flush(&mut self) -> Result<(), (io::Error, u64)> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.lines);
        let buffer = std::mem::take(&mut self.buffer);
        let torn = self.torn;
        let file = self.ensure_open().map_err(|error| (error, lines))?;
        let separated = if torn { file.write_all(b"\n") } else { Ok(()) };
        let appended = separated
            .map_err(|error| AppendFailure { error, whole_lines: 0, torn: true })
            .and_then(|()| append_lines(file, &buffer));
        match appended {
            Ok(()) => {
                self.torn = false;
                Ok(())
            }
            Err(failure) => {
                self.torn = failure.torn;
                Err((failure.error, lines.saturating_sub(failure.whole_lines)))
            }
        }
    }

    fn close(&mut self) {
        self.file = None;
    }
}

/// What appending lines needs of a file (a trait, so that a test can fill a disk).
trait LineFile: Write {
    fn len(&self) -> io::Result<u64>;
    /// Cuts the file back to `len` bytes.
    fn cut_to(&mut self, len: u64) -> io::Result<()>;
}

impl LineFile for File {
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// A write of lines that failed: its error, how many lines reached the file whole, and whether a
/// torn line is left at its end.
#[derive(Debug)]
struct AppendFailure {
    error: io::Error,
    whole_lines: u64,
    torn: bool,
}

/// Appends `lines` (each ending in a newline) to `file`. A write that fails partway (a disk that
/// fills up) leaves the lines written whole, counted as such, and cuts the torn one back out: a
/// reader of the file (a SIEM's shipper) never sees half a record, and the next batch starts
/// where a line would.
fn append_lines(file: &mut dyn LineFile, lines: &[u8]) -> Result<(), AppendFailure> {
    let mut done = 0;
    while let Some(rest) = lines.get(done..).filter(|rest| !rest.is_empty()) {
        let error = match file.write(rest) {
            Ok(0) => io::ErrorKind::WriteZero.into(),
            Ok(written) => {
                done += written;
                continue;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => error,
        };
        let written = lines.get(..done).unwrap_or_default();
        let whole_end = written.iter().rposition(|byte| *byte == b'\n').map_or(0, |newline| newline + 1);
        // The file's end after the failure is the torn line's (its length before the write may
        // have changed meanwhile: a rotation's copytruncate).
        let torn_len = (done - whole_end) as u64;
        let torn = whole_end < done
            && file.len().ok().and_then(|end| end.checked_sub(torn_len)).is_none_or(|cut| file.cut_to(cut).is_err());
        let whole_lines = memchr::memchr_iter(b'\n', written).count() as u64;
        return Err(AppendFailure { error, whole_lines, torn });
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;

    use super::*;
    use crate::output::shared_text::SharedText;
    use crate::output::text::tests::sample_alert;
    use crate::output::{Format, Observer};

    fn encoder(format: Format) -> Encoder {
        Encoder::new(format, Arc::new(Observer { hostname: "sensor1".to_string() }))
    }

    /// A sink as `Outputs::open` makes it: the spec's format, else `default`.
    fn sink(spec: &str, default: Format) -> QueuedSink {
        let spec = OutputSpec::parse(spec).unwrap();
        QueuedSink::start(&spec, encoder(spec.format.unwrap_or(default)), WhenFull::Drop).unwrap()
    }

    /// A destination that never accepts anything.
    struct Stuck;

    impl Transport for Stuck {
        fn send(&mut self, _message: &[u8]) -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::TimedOut, "stuck"))
        }
        fn close(&mut self) {}
    }

    /// A destination that takes a record every `delay`, counting them.
    struct Slow {
        delay: Duration,
        delivered: Arc<AtomicU64>,
    }

    impl Slow {
        fn every(delay: Duration) -> Slow {
            Slow { delay, delivered: Arc::default() }
        }
    }

    impl Transport for Slow {
        fn send(&mut self, _message: &[u8]) -> io::Result<()> {
            std::thread::sleep(self.delay);
            self.delivered.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn close(&mut self) {}
    }

    /// Accepts every other record, as a UDP socket to a closed port does (the refusal of one
    /// datagram fails the next send); counts the attempts.
    struct Flapping {
        attempts: Arc<AtomicU64>,
    }

    impl Transport for Flapping {
        fn send(&mut self, _message: &[u8]) -> io::Result<()> {
            if self.attempts.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"))
            } else {
                Ok(())
            }
        }
        fn close(&mut self) {}
    }

    /// Buffers records as a file does; its flushes fail while the disk is full, its opens while
    /// the file cannot be opened.
    #[derive(Default)]
    struct Buffering {
        lines: u64,
        disk_full: Arc<AtomicBool>,
        unopenable: Arc<AtomicBool>,
    }

    impl Transport for Buffering {
        fn send(&mut self, _message: &[u8]) -> io::Result<()> {
            if self.unopenable.load(Ordering::Relaxed) {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            self.lines += 1;
            Ok(())
        }
        fn buffered(&self) -> usize {
            self.lines as usize
        }
        fn buffers(&self) -> bool {
            true
        }
        fn flush(&mut self) -> Result<(), (io::Error, u64)> {
            let lines = std::mem::take(&mut self.lines);
            if self.disk_full.load(Ordering::Relaxed) {
                return Err((io::Error::from_raw_os_error(28), lines));
            }
            Ok(())
        }
        fn close(&mut self) {}
    }

    /// Holds each record until told to go on (or let go).
    struct Gated(Receiver<()>);

    impl Transport for Gated {
        fn send(&mut self, _message: &[u8]) -> io::Result<()> {
            let _ = self.0.recv();
            Ok(())
        }
        fn close(&mut self) {}
    }

    /// A JSON sink to `transport` behind a queue of `capacity` records.
    fn queued(transport: impl Transport + 'static, capacity: usize, when_full: WhenFull) -> QueuedSink {
        let name = "test".to_string();
        QueuedSink::with_transport(name, Box::new(transport), encoder(Format::Json), None, capacity, when_full).unwrap()
    }

    /// Waits (a few seconds at most) until `done` holds.
    fn eventually(mut done: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done()
    }

    fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn file_appends_flushes_within_a_second_and_reopens_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credwatch.json");
        std::fs::write(&path, "{\"kept\":true}\n").unwrap();
        let mut sink = sink(&format!("file:{}", path.display()), Format::Json);
        sink.event(&sample_alert()).unwrap();
        assert!(eventually(|| lines(&path).len() == 2), "not flushed within the interval");
        let rotated = dir.path().join("credwatch.json.1");
        std::fs::rename(&path, &rotated).unwrap();
        sink.reopen().unwrap();
        sink.event(&sample_alert()).unwrap();
        sink.event(&sample_alert()).unwrap();
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        let old = lines(&rotated);
        assert_eq!(old.len(), 2);
        assert_eq!(old[0]["kept"], true);
        assert_eq!(old[1]["event_type"], "cleartext_credential");
        let new = lines(&path);
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|line| line["credential"]["mechanism"] == "USER/PASS"));
        assert_eq!(sink.stats(), SinkStats { written: 3, ..SinkStats::default() });
    }

    /// A disk with room for so many bytes: a write past them is cut short, the next one fails,
    /// as Linux does on a full file system.
    struct SmallDisk {
        data: Vec<u8>,
        room: usize,
        cut_fails: bool,
    }

    impl Write for SmallDisk {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let fits = bytes.len().min(self.room.saturating_sub(self.data.len()));
            if fits == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.data.extend_from_slice(&bytes[..fits]);
            Ok(fits)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl LineFile for SmallDisk {
        fn len(&self) -> io::Result<u64> {
            Ok(self.data.len() as u64)
        }
        fn cut_to(&mut self, len: u64) -> io::Result<()> {
            if self.cut_fails {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            self.data.truncate(len as usize);
            Ok(())
        }
    }

    /// A disk that fills up partway through a batch keeps the lines written whole, counted as
    /// such, and not the torn one: a reader of the file never sees half a record.
    #[test]
    fn a_disk_that_fills_up_keeps_whole_lines_only() {
        let batch = b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n";
        let mut disk = SmallDisk { data: b"{\"n\":0}\n".to_vec(), room: 8 + 25, cut_fails: false };
        let failure = append_lines(&mut disk, batch).unwrap_err();
        assert_eq!((failure.error.raw_os_error(), failure.whole_lines, failure.torn), (Some(28), 3, false));
        assert_eq!(disk.data, b"{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");

        let mut stuck = SmallDisk { data: Vec::new(), room: 12, cut_fails: true };
        let failure = append_lines(&mut stuck, batch).unwrap_err();
        assert_eq!((failure.whole_lines, failure.torn), (1, true), "a torn line that could not be cut is said");

        let mut roomy = SmallDisk { data: Vec::new(), room: 1 << 10, cut_fails: false };
        append_lines(&mut roomy, batch).unwrap();
        assert_eq!(roomy.data, batch);
    }

    /// After a torn line that could not be cut back out, the next batch starts on a line of its
    /// own: a reader of the file loses the torn record, not the next one too.
    #[test]
    fn a_batch_after_a_torn_line_starts_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        std::fs::write(&path, "{\"to").unwrap();
        let mut transport = FileTransport::open(path.clone()).unwrap();
        transport.torn = true;
        transport.send(b"{\"kept\":2}").unwrap();
        transport.flush().unwrap();
        transport.send(b"{\"kept\":3}").unwrap();
        transport.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"to\n{\"kept\":2}\n{\"kept\":3}\n");
    }

    /// A file whose writes failed (a full disk) is said to have recovered once a write worked, and
    /// its last failure is [`RECOVERED_AFTER`] old; a flush with nothing to write proves nothing.
    #[test]
    fn a_file_that_failed_is_said_to_recover_once_it_takes_records_again() {
        let disk_full = Arc::new(AtomicBool::new(true));
        let transport = Buffering { disk_full: Arc::clone(&disk_full), ..Buffering::default() };
        let (_sender, receiver) = crossbeam_channel::bounded(1);
        let shared = Arc::new(Shared::default());
        let mut worker = Worker::new("file:test".to_string(), Box::new(transport), receiver, Arc::clone(&shared));
        let log = SharedText::default();
        log.logging(|| {
            worker.transport.send(b"{}").unwrap();
            worker.flush();
            assert!(worker.failing.is_some());
            disk_full.store(false, Ordering::Relaxed);
            let long_ago = Instant::now().checked_sub(RECOVERED_AFTER + Duration::from_secs(1)).unwrap();
            worker.last_error = long_ago;
            worker.flush();
            assert!(worker.failing.is_some(), "nothing was written");
            worker.transport.send(b"{}").unwrap();
            worker.flush();
        });
        assert!(worker.failing.is_none());
        let log = log.text();
        assert_eq!(log.matches("output recovered").count(), 1, "{log}");
        assert_eq!(shared.stats().errors, 1);
    }

    /// A file that cannot be opened again after its writes failed is said to be failing: the
    /// write failures' own warning does not stand for it.
    #[test]
    fn a_file_that_cannot_be_reopened_after_failed_writes_is_said_to_be_failing() {
        let transport = Buffering::default();
        let (disk_full, unopenable) = (Arc::clone(&transport.disk_full), Arc::clone(&transport.unopenable));
        disk_full.store(true, Ordering::Relaxed);
        let log = SharedText::default();
        log.logging(|| {
            let mut sink = queued(transport, 100, WhenFull::Drop);
            sink.event(&sample_alert()).unwrap();
            assert!(eventually(|| sink.stats().errors >= 1), "the flush never failed");
            unopenable.store(true, Ordering::Relaxed);
            sink.event(&sample_alert()).unwrap();
            assert!(eventually(|| sink.stats().errors >= 2), "the open never failed");
            sink.finish(&[], &crate::output::Unread::default()).unwrap();
        });
        let log = log.text();
        assert_eq!(log.matches("output write failed").count(), 1, "{log}");
        assert_eq!(log.matches("output failing").count(), 1, "{log}");
    }

    #[test]
    fn a_full_disk_is_counted_not_fatal() {
        if !std::path::Path::new("/dev/full").exists() {
            return;
        }
        let mut sink = sink("file:/dev/full", Format::Json);
        for _ in 0..3 {
            sink.event(&sample_alert()).unwrap();
        }
        let started = Instant::now();
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        let stats = sink.stats();
        assert!(stats.errors >= 1, "{stats:?}");
        assert_eq!((stats.written, stats.lost), (0, 3), "a record is written or lost, never both: {stats:?}");
    }

    #[test]
    fn a_missing_directory_is_refused_at_start() {
        let spec = OutputSpec::parse("file:/nonexistent-credwatch-dir/x.json").unwrap();
        assert!(QueuedSink::start(&spec, encoder(Format::Json), WhenFull::Drop).is_err());
    }

    #[test]
    fn syslog_udp_sends_one_rfc5424_datagram_per_record() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let address = listener.local_addr().unwrap();
        let mut sink = sink(&format!("syslog+udp://{address},format=ecs,facility=auth"), Format::Json);
        sink.event(&sample_alert()).unwrap();
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        let mut datagram = vec![0u8; 65_536];
        let len = listener.recv(&mut datagram).unwrap();
        let message = std::str::from_utf8(&datagram[..len]).unwrap();
        let pid = std::process::id();
        let header = format!("<35>1 2026-11-27T09:00:00.039000Z sensor1 credwatch {pid} cleartext_credential - ");
        assert!(message.starts_with(&header), "{message}");
        let document: serde_json::Value = serde_json::from_str(&message[header.len()..]).unwrap();
        assert_eq!(document["event"]["kind"], "alert");
        assert_eq!(sink.stats().written, 1);
    }

    /// Reads RFC 6587 octet-counted frames until the connection closes.
    fn read_frames(stream: TcpStream) -> Vec<String> {
        let mut reader = BufReader::new(stream);
        let mut frames = Vec::new();
        loop {
            let mut length = Vec::new();
            if reader.read_until(b' ', &mut length).unwrap() == 0 {
                return frames;
            }
            let length: usize = std::str::from_utf8(&length).unwrap().trim_end().parse().unwrap();
            let mut frame = vec![0u8; length];
            reader.read_exact(&mut frame).unwrap();
            frames.push(String::from_utf8(frame).unwrap());
        }
    }

    #[test]
    fn syslog_tcp_uses_octet_counting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || read_frames(listener.accept().unwrap().0));
        let mut sink = sink(&format!("syslog+tcp://{address}"), Format::Json);
        sink.event(&sample_alert()).unwrap();
        sink.event(&sample_alert()).unwrap();
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        drop(sink);
        let frames = server.join().unwrap();
        assert_eq!(frames.len(), 2);
        for frame in frames {
            assert!(frame.starts_with("<131>1 2026-11-27T09:00:00.039000Z sensor1 credwatch "), "{frame}");
            let json = frame.split_once(" cleartext_credential - ").unwrap().1;
            let event: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(event["dest_port"], 110);
        }
    }

    #[test]
    fn a_server_down_is_retried_and_what_it_missed_is_counted() {
        let address = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut sink = sink(&format!("syslog+tcp://{address}"), Format::Json);
        let started = Instant::now();
        for _ in 0..3 {
            sink.event(&sample_alert()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_millis(500), "the caller must never wait for the server");
        assert!(eventually(|| sink.stats().errors >= 2), "retries expected: {:?}", sink.stats());
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        let stats = sink.stats();
        assert_eq!((stats.written, stats.lost), (0, 3), "{stats:?}");
    }

    #[test]
    fn a_server_that_comes_back_gets_what_was_queued() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let mut sink = sink(&format!("syslog+tcp://{address}"), Format::Json);
        sink.event(&sample_alert()).unwrap();
        sink.event(&sample_alert()).unwrap();
        assert!(eventually(|| sink.stats().errors >= 1));
        let listener = TcpListener::bind(address).unwrap();
        let server = std::thread::spawn(move || read_frames(listener.accept().unwrap().0));
        assert!(eventually(|| sink.stats().written == 2), "{:?}", sink.stats());
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        drop(sink);
        assert_eq!(server.join().unwrap().len(), 2);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let mut sink = queued(Stuck, 4, WhenFull::Drop);
        let started = Instant::now();
        for _ in 0..20 {
            sink.event(&sample_alert()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        let stats = sink.stats();
        assert_eq!(stats.written, 0);
        assert_eq!(stats.dropped_queue_full + stats.lost, 20, "{stats:?}");
        assert!(stats.dropped_queue_full >= 15, "{stats:?}");
        let mut counters = Vec::new();
        sink.output_stats(&mut counters);
        let [counters] = counters.as_slice() else { panic!("one output") };
        assert_eq!((counters.name.as_str(), counters.dropped_queue_full), ("test", stats.dropped_queue_full));
    }

    /// A destination slower than the records come: reading files, they wait for room instead of
    /// being dropped; live, they are dropped.
    #[test]
    fn a_full_queue_waits_for_a_destination_that_delivers_when_told_to() {
        // Live, the closing records wait too: the capture is over.
        for (when_full, events_over, all_delivered) in
            [(WhenFull::Wait, false, true), (WhenFull::Drop, false, false), (WhenFull::Drop, true, true)]
        {
            let slow = Slow::every(Duration::from_millis(1));
            let delivered = Arc::clone(&slow.delivered);
            let mut sink = queued(slow, 4, when_full);
            if events_over {
                sink.end_of_events().unwrap();
            }
            for _ in 0..100 {
                sink.event(&sample_alert()).unwrap();
            }
            sink.finish(&[], &crate::output::Unread::default()).unwrap();
            let stats = sink.stats();
            assert_eq!(stats.written + stats.dropped_queue_full, 100, "{when_full:?}: {stats:?}");
            assert_eq!(stats.dropped_queue_full == 0, all_delivered, "{when_full:?}: {stats:?}");
            assert_eq!(delivered.load(Ordering::Relaxed), stats.written);
        }
    }

    #[test]
    fn room_is_what_the_queue_can_take_less_a_tenth_kept_for_alerts() {
        let (open, gate) = crossbeam_channel::unbounded();
        let mut sink = queued(Gated(gate), 20, WhenFull::Drop);
        assert_eq!(sink.room(), 18);
        for _ in 0..10 {
            sink.event(&sample_alert()).unwrap();
        }
        // The thread holds one record at the gate, or is about to take it.
        assert!((8..=9).contains(&sink.room()), "{}", sink.room());
        for _ in 0..20 {
            sink.event(&sample_alert()).unwrap();
        }
        assert_eq!(sink.room(), 0);
        drop(open);
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        assert_eq!(sink.room(), 0, "closed");
    }

    /// Live, postures and the inventory never take the slots kept for alerts.
    #[test]
    fn server_records_leave_a_tenth_of_the_queue_to_alerts() {
        let mut tracker = crate::posture::PostureTracker::default();
        tracker.observe(&sample_alert(), false);
        let posture = tracker.snapshot().pop().unwrap();
        let (open, gate) = crossbeam_channel::unbounded();
        let mut sink = queued(Gated(gate), 20, WhenFull::Drop);
        for _ in 0..30 {
            sink.posture(&posture).unwrap();
        }
        let kept_out = sink.stats().dropped_queue_full;
        assert!((11..=12).contains(&kept_out), "18 queued (one maybe at the gate), {kept_out} dropped");
        sink.event(&sample_alert()).unwrap();
        sink.event(&sample_alert()).unwrap();
        assert_eq!(sink.stats().dropped_queue_full, kept_out, "the alerts found room");
        drop(open);
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
    }

    /// A destination that fails drops what does not fit: it holds no other output back.
    #[test]
    fn a_failing_destination_sets_no_pace() {
        let mut sink = queued(Stuck, 20, WhenFull::Drop);
        for _ in 0..30 {
            sink.event(&sample_alert()).unwrap();
        }
        assert!(eventually(|| sink.room() == usize::MAX), "{}", sink.room());
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
    }

    /// Live, the closing records wait for room, but not past the closing wait: a destination that
    /// delivers slowly does not hold the stop.
    #[test]
    fn live_closing_records_wait_a_bounded_time() {
        // 60 closing records to a destination taking one every 50 ms, a closing wait of 300 ms.
        let closing = |capacity| {
            let mut sink = queued(Slow::every(Duration::from_millis(50)), capacity, WhenFull::Drop);
            sink.closing_wait = Duration::from_millis(300);
            sink.end_of_events().unwrap();
            for _ in 0..60 {
                sink.event(&sample_alert()).unwrap();
            }
            sink.finish(&[], &crate::output::Unread::default()).unwrap();
            sink.stats()
        };
        // A full queue: pushes wait, then give up.
        let stats = closing(4);
        assert_eq!(stats.written + stats.dropped_queue_full + stats.lost, 60, "{stats:?}");
        // Six at the destination's pace; fewer when the machine is busy with other tests.
        assert!(stats.written >= 1 && stats.dropped_queue_full + stats.lost > 0, "waited, then gave up: {stats:?}");
        // A queue with room for everything: what is still queued past the wait is lost, not
        // delivered at the destination's pace before the stop.
        let stats = closing(200);
        assert_eq!((stats.written + stats.lost, stats.dropped_queue_full), (60, 0), "{stats:?}");
        assert!(stats.lost > 0, "{stats:?}");
    }

    /// Waiting for room ends when the destination fails: it may stay down for long.
    #[test]
    fn records_waiting_for_room_give_up_when_the_destination_fails() {
        let mut sink = queued(Stuck, 4, WhenFull::Wait);
        let started = Instant::now();
        for _ in 0..20 {
            sink.event(&sample_alert()).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        let stats = sink.stats();
        assert_eq!((stats.written, stats.dropped_queue_full + stats.lost), (0, 20), "{stats:?}");
    }

    /// A destination that refuses every other record is failing, said once: no "recovered"
    /// between refusals, and the backoff goes on growing (five records take 0.1 + 0.2 + 0.4 +
    /// 0.8 + 1.6 s of waiting, not five times 0.1 s).
    #[test]
    fn a_destination_that_flaps_is_failing_until_it_delivers_for_a_while() {
        let log = SharedText::default();
        let attempts = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        log.logging(|| {
            let mut sink = queued(Flapping { attempts: Arc::clone(&attempts) }, 100, WhenFull::Drop);
            for _ in 0..5 {
                sink.event(&sample_alert()).unwrap();
            }
            assert!(eventually(|| attempts.load(Ordering::Relaxed) >= 10), "{attempts:?}");
            sink.finish(&[], &crate::output::Unread::default()).unwrap();
        });
        assert!(started.elapsed() >= Duration::from_millis(3_000), "{:?}", started.elapsed());
        let log = log.text();
        assert_eq!(log.matches("output failing").count(), 1, "{log}");
        assert_eq!(log.matches("output recovered").count(), 0, "{log}");
    }

    /// A log line for each time the drops doubled: a destination down for days keeps saying so,
    /// without a line per record.
    #[test]
    fn a_full_queue_warns_again_each_time_its_drops_doubled() {
        let log = SharedText::default();
        let mut sink = queued(Stuck, 1, WhenFull::Drop);
        log.logging(|| {
            for _ in 0..70 {
                sink.event(&sample_alert()).unwrap();
            }
        });
        let dropped = sink.stats().dropped_queue_full;
        sink.finish(&[], &crate::output::Unread::default()).unwrap();
        let log = log.text();
        let warned: Vec<u64> = log
            .lines()
            .filter(|line| line.contains("output queue full"))
            .map(|line| line.split("dropped=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap())
            .collect();
        // 68 or 69 drops: the queue holds one record, the thread may have taken another.
        assert!(dropped >= 68, "{dropped}");
        assert_eq!(warned, [1, 2, 4, 8, 16, 32, 64], "{log}");
    }
}
