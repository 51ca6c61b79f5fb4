//! A scripted TCP connection: handshake, data each way, closing, with the seq/ack bookkeeping
//! done here, plus the manipulations evasion and robustness tests need (reordering, duplicates,
//! overlapping retransmissions with other bytes, gaps).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use etherparse::{TcpHeader, TcpOptionElement};

use super::link::{Link, Macs};
use super::tunnel::{ip_builder, Encap, Packet, PacketKind};
use super::CapturedFrame;
use crate::capture::Timestamp;

/// One end of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Why a script cannot be rendered. The first mistake is kept and returned by
/// [`Conversation::frames`], so the builder methods can chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("handshake() must come before any other segment")]
    HandshakeNotFirst,
    #[error("{knob}() must be called before any segment is scripted")]
    TooLate { knob: &'static str },
    #[error("segment {index} does not exist: the last data call produced {batch_len}")]
    NoSuchSegment { index: usize, batch_len: usize },
    #[error("segment sizes must not be zero")]
    ZeroSize,
    #[error("{field} {value} does not fit its header field")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("{layer} cannot carry a {kind:?} packet")]
    CannotCarry { layer: &'static str, kind: PacketKind },
    #[error("VLAN tags need the Ethernet link layer")]
    VlanNeedsEthernet,
    #[error("aggregates (A-MSDU) need an 802.11 link layer")]
    AggregateNeedsWifi,
    #[error("cannot build a packet: {0}")]
    Build(String),
}

const DEFAULT_START: Timestamp = Timestamp::from_secs_nanos(1_700_000_000, 0);
const DEFAULT_STEP: Duration = Duration::from_millis(1);
/// Far apart, and the server's above 2^31, to catch signed comparisons of sequence numbers.
const DEFAULT_CLIENT_ISN: u32 = 1_000_000;
const DEFAULT_SERVER_ISN: u32 = 3_000_000_000;
const DEFAULT_MSS: u16 = 1460;
const WINDOW: u16 = 65_535;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
    rst: bool,
}

impl Flags {
    const SYN: Flags = Flags { syn: true, ack: false, psh: false, fin: false, rst: false };
    const SYN_ACK: Flags = Flags { syn: true, ack: true, psh: false, fin: false, rst: false };
    const ACK: Flags = Flags { syn: false, ack: true, psh: false, fin: false, rst: false };
    const PSH_ACK: Flags = Flags { syn: false, ack: true, psh: true, fin: false, rst: false };
    const FIN_ACK: Flags = Flags { syn: false, ack: true, psh: false, fin: true, rst: false };
    const RST_ACK: Flags = Flags { syn: false, ack: true, psh: false, fin: false, rst: true };
}

#[derive(Clone)]
struct Segment {
    ts: Timestamp,
    from: Side,
    seq: u32,
    ack: u32,
    flags: Flags,
    payload: Vec<u8>,
    /// Segments of one aggregate share its number and go out in one frame.
    aggregate: Option<usize>,
}

impl fmt::Debug for Segment {
    /// Payloads hold test passwords: print only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("ts", &self.ts)
            .field("from", &self.from)
            .field("seq", &self.seq)
            .field("ack", &self.ack)
            .field("flags", &self.flags)
            .field("len", &self.payload.len())
            .finish()
    }
}

/// The packets of an aggregate being rendered: their group, sender and time (the first one's).
struct Aggregate {
    group: usize,
    from: Side,
    ts: Timestamp,
    packets: Vec<Packet>,
}

/// Scripts one TCP connection into frames.
///
/// Every scripted segment takes the current time, then the clock moves on by [`Self::step`].
/// To start mid-stream, send data without calling [`Self::handshake`]: the first byte of each
/// side then has sequence number ISN + 1, as if the handshake had happened before the capture.
/// Configure the link, tunnels, VLANs and MACs at any time: they apply when [`Self::frames`]
/// renders the script.
#[derive(Debug)]
pub struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    client_isn: u32,
    server_isn: u32,
    client_next: u32,
    server_next: u32,
    mss: u16,
    link: Link,
    vlans: Vec<u16>,
    macs: Macs,
    encaps: Vec<Encap>,
    clock: Timestamp,
    step: Duration,
    acknowledge_data: bool,
    segments: Vec<Segment>,
    /// The data segments of the latest `client`/`server`/`send_split` call, for the `*_last` helpers.
    last_batch: Range<usize>,
    error: Option<ScriptError>,
}

impl Conversation {
    /// A connection from `client` to `server`, e.g. `Conversation::new(([10, 0, 0, 1], 40000),
    /// ([10, 0, 0, 2], 110))`. If one address is IPv4 and the other IPv6, the IPv4 one is written as
    /// an IPv4-mapped IPv6 address.
    pub fn new(client: impl Into<SocketAddr>, server: impl Into<SocketAddr>) -> Self {
        Conversation {
            client: client.into(),
            server: server.into(),
            client_isn: DEFAULT_CLIENT_ISN,
            server_isn: DEFAULT_SERVER_ISN,
            client_next: DEFAULT_CLIENT_ISN.wrapping_add(1),
            server_next: DEFAULT_SERVER_ISN.wrapping_add(1),
            mss: DEFAULT_MSS,
            link: Link::Ethernet,
            vlans: Vec::new(),
            macs: Macs { client: [0x02, 0, 0, 0, 0, 0x01], server: [0x02, 0, 0, 0, 0, 0x02] },
            encaps: Vec::new(),
            clock: DEFAULT_START,
            step: DEFAULT_STEP,
            acknowledge_data: false,
            segments: Vec::new(),
            last_batch: 0..0,
            error: None,
        }
    }

    /// Initial sequence numbers (e.g. near 2^32 to test wraparound); before any segment.
    pub fn isns(&mut self, client: u32, server: u32) -> &mut Self {
        if !self.segments.is_empty() {
            return self.fail(ScriptError::TooLate { knob: "isns" });
        }
        self.client_isn = client;
        self.server_isn = server;
        self.client_next = client.wrapping_add(1);
        self.server_next = server.wrapping_add(1);
        self
    }

    /// Largest payload per segment (default 1460), also announced in the SYNs.
    pub fn mss(&mut self, mss: u16) -> &mut Self {
        if mss == 0 {
            return self.fail(ScriptError::OutOfRange { field: "MSS", value: 0 });
        }
        self.mss = mss;
        self
    }

    pub fn link(&mut self, link: Link) -> &mut Self {
        self.link = link;
        self
    }

    /// VLAN ids, outermost first, on the outer Ethernet header: one gives an 802.1Q tag, more give
    /// a QinQ stack (802.1ad outer tag, 802.1Q inner ones).
    pub fn vlans(&mut self, ids: &[u16]) -> &mut Self {
        self.vlans = ids.to_vec();
        self
    }

    pub fn macs(&mut self, client: [u8; 6], server: [u8; 6]) -> &mut Self {
        self.macs = Macs { client, server };
        self
    }

    /// Adds an encapsulation around every packet; the first one added is the innermost.
    pub fn encap(&mut self, step: Encap) -> &mut Self {
        self.encaps.push(step);
        self
    }

    /// Sets the clock: the next segment is stamped `ts`.
    pub fn start_at(&mut self, ts: Timestamp) -> &mut Self {
        self.clock = ts;
        self
    }

    /// Time between consecutive segments (default 1 ms).
    pub fn step(&mut self, step: Duration) -> &mut Self {
        self.step = step;
        self
    }

    /// Lets time pass with no traffic, e.g. to trigger idle timeouts.
    pub fn wait(&mut self, idle: Duration) -> &mut Self {
        self.clock = self.clock.saturating_add(idle);
        self
    }

    /// When on, the receiver answers every data call with a pure ACK (off by default, so that
    /// scripts stay short).
    pub fn acknowledge_data(&mut self, on: bool) -> &mut Self {
        self.acknowledge_data = on;
        self
    }

    /// SYN, SYN-ACK, ACK; must come first.
    pub fn handshake(&mut self) -> &mut Self {
        if !self.segments.is_empty() {
            return self.fail(ScriptError::HandshakeNotFirst);
        }
        self.push(Side::Client, self.client_isn, 0, Flags::SYN, Vec::new());
        self.push(Side::Server, self.server_isn, self.client_next, Flags::SYN_ACK, Vec::new());
        self.push(Side::Client, self.client_next, self.server_next, Flags::ACK, Vec::new());
        self
    }

    /// Data from the client, in MSS-sized segments, PSH on the last.
    pub fn client(&mut self, data: &[u8]) -> &mut Self {
        self.send_split(Side::Client, data, &[])
    }

    /// Data from the server, in MSS-sized segments, PSH on the last.
    pub fn server(&mut self, data: &[u8]) -> &mut Self {
        self.send_split(Side::Server, data, &[])
    }

    /// Data from `from` in segments of the given sizes, used in turn and repeated until the data
    /// runs out (`&[1]` sends one byte per segment); each is capped at the MSS, and no sizes means
    /// MSS-sized segments.
    pub fn send_split(&mut self, from: Side, data: &[u8], sizes: &[usize]) -> &mut Self {
        if sizes.contains(&0) {
            return self.fail(ScriptError::ZeroSize);
        }
        let mss = usize::from(self.mss);
        let mut sizes = sizes.iter().copied().cycle();
        let start = self.segments.len();
        let mut rest = data;
        while !rest.is_empty() {
            let size = sizes.next().unwrap_or(mss).min(mss).min(rest.len());
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let flags = if rest.is_empty() { Flags::PSH_ACK } else { Flags::ACK };
            self.push(from, self.next_seq(from), self.next_seq(from.peer()), flags, chunk.to_vec());
            self.advance(from, chunk.len());
        }
        self.last_batch = start..self.segments.len();
        if self.acknowledge_data && !data.is_empty() {
            let peer = from.peer();
            self.push(peer, self.next_seq(peer), self.next_seq(from), Flags::ACK, Vec::new());
        }
        self
    }

    /// Orderly close started by `from`: FIN, the peer's FIN, the last ACK.
    pub fn fin(&mut self, from: Side) -> &mut Self {
        let peer = from.peer();
        self.push(from, self.next_seq(from), self.next_seq(peer), Flags::FIN_ACK, Vec::new());
        self.advance(from, 1);
        self.push(peer, self.next_seq(peer), self.next_seq(from), Flags::FIN_ACK, Vec::new());
        self.advance(peer, 1);
        self.push(from, self.next_seq(from), self.next_seq(peer), Flags::ACK, Vec::new());
        self
    }

    /// A keepalive probe from `from` as BSD and Windows stacks send it (RFC 9293 §3.8.4): the byte
    /// before its next one, a garbage NUL, ACK only; the stream does not move.
    pub fn keepalive(&mut self, from: Side) -> &mut Self {
        let peer = from.peer();
        self.push(from, self.next_seq(from).wrapping_sub(1), self.next_seq(peer), Flags::ACK, vec![0]);
        self
    }

    /// Abortive close: one RST from `from`.
    pub fn rst(&mut self, from: Side) -> &mut Self {
        let peer = from.peer();
        self.push(from, self.next_seq(from), self.next_seq(peer), Flags::RST_ACK, Vec::new());
        self
    }

    /// Reverses the order of the last data call's segments (their capture times stay in order).
    pub fn reverse_last(&mut self) -> &mut Self {
        if let Some(batch) = self.segments.get_mut(self.last_batch.clone()) {
            let stamps: Vec<Timestamp> = batch.iter().map(|segment| segment.ts).collect();
            batch.reverse();
            for (segment, ts) in batch.iter_mut().zip(stamps) {
                segment.ts = ts;
            }
        }
        self
    }

    /// Swaps segments `a` and `b` of the last data call (their capture times stay in order).
    pub fn swap_last(&mut self, a: usize, b: usize) -> &mut Self {
        let (Some(first), Some(second)) = (self.batch_index(a), self.batch_index(b)) else {
            return self.no_such_segment(a.max(b));
        };
        self.segments.swap(first, second);
        let stamps = (self.segments.get(first).map(|s| s.ts), self.segments.get(second).map(|s| s.ts));
        if let (Some(first_ts), Some(second_ts)) = stamps {
            self.set_ts(first, second_ts);
            self.set_ts(second, first_ts);
        }
        self
    }

    /// Moves the last data call's segments `earlier` segments back in the capture (capture times
    /// stay in order), as a capture of the two directions merged out of order shows a reply
    /// before the command it answers.
    pub fn captured_early(&mut self, earlier: usize) -> &mut Self {
        let batch = self.last_batch.clone();
        let Some(start) = batch.start.checked_sub(earlier) else {
            return self.no_such_segment(earlier);
        };
        let Some(moved) = self.segments.get_mut(start..batch.end) else {
            return self.no_such_segment(earlier);
        };
        let stamps: Vec<Timestamp> = moved.iter().map(|segment| segment.ts).collect();
        moved.rotate_right(batch.len());
        for (segment, ts) in moved.iter_mut().zip(stamps) {
            segment.ts = ts;
        }
        self.last_batch = start..start + batch.len();
        self
    }

    /// Moves the last data call's segments `earlier` segments back, as [`Self::captured_early`]
    /// does, and makes them sent there too: they acknowledge none of the bytes they now come
    /// before, as a client that talks before the server's greeting (a pipelining client, a bot
    /// that does not wait) sends them.
    pub fn spoken_early(&mut self, earlier: usize) -> &mut Self {
        self.captured_early(earlier);
        let moved = self.last_batch.clone();
        let passed = moved.end..moved.end.saturating_add(earlier);
        let Some(from) = self.segments.get(moved.start).map(|segment| segment.from) else {
            return self;
        };
        let first_passed_from_peer = self
            .segments
            .get(passed)
            .and_then(|passed| passed.iter().find(|segment| segment.from == from.peer()))
            .map(|segment| segment.seq);
        if let (Some(ack), Some(moved)) = (first_passed_from_peer, self.segments.get_mut(moved)) {
            moved.iter_mut().for_each(|segment| segment.ack = ack);
        }
        self
    }

    /// Removes segment `index` of the last data call, leaving a hole in the stream.
    pub fn drop_last(&mut self, index: usize) -> &mut Self {
        let Some(position) = self.batch_index(index) else {
            return self.no_such_segment(index);
        };
        self.segments.remove(position);
        self.last_batch.end = self.last_batch.end.saturating_sub(1);
        self
    }

    /// Sends segment `index` of the last data call again, now.
    pub fn retransmit_last(&mut self, index: usize) -> &mut Self {
        let Some(original) = self.batch_segment(index) else {
            return self.no_such_segment(index);
        };
        self.push(original.from, original.seq, original.ack, original.flags, original.payload);
        self
    }

    /// Sends, now, a segment at the sequence number of segment `index` of the last data call but
    /// carrying `data`: an overlapping retransmission with different bytes when the lengths agree,
    /// a partial or extended one when they don't.
    pub fn retransmit_last_with(&mut self, index: usize, data: &[u8]) -> &mut Self {
        let Some(original) = self.batch_segment(index) else {
            return self.no_such_segment(index);
        };
        self.push(original.from, original.seq, original.ack, Flags::PSH_ACK, data.to_vec());
        self
    }

    /// Sends the last data call's segments in one 802.11 aggregate frame (A-MSDU), at the time of
    /// the first: a Wi-Fi station or access point bundling a burst. Needs [`Link::Wifi`] or
    /// [`Link::Radiotap`] when rendered.
    pub fn aggregate_last(&mut self) -> &mut Self {
        let group = self.last_batch.start;
        if let Some(batch) = self.segments.get_mut(self.last_batch.clone()) {
            batch.iter_mut().for_each(|segment| segment.aggregate = Some(group));
        }
        self
    }

    /// The sequence number `side` will use for its next byte.
    pub fn next_seq(&self, side: Side) -> u32 {
        match side {
            Side::Client => self.client_next,
            Side::Server => self.server_next,
        }
    }

    /// Renders the script into frames, in scripting order, or the first scripting mistake.
    pub fn frames(&self) -> Result<Vec<CapturedFrame>, ScriptError> {
        self.render(None)
    }

    /// Only the frames that `side` sent, as a capture of one direction holds them (asymmetric
    /// routing sends the replies over another link, which the tap does not see).
    pub fn frames_from(&self, side: Side) -> Result<Vec<CapturedFrame>, ScriptError> {
        self.render(Some(side))
    }

    fn render(&self, only_from: Option<Side>) -> Result<Vec<CapturedFrame>, ScriptError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let link_type = self.link.link_type();
        let mut frames: Vec<CapturedFrame> = Vec::new();
        let mut aggregate: Option<Aggregate> = None;
        for (number, segment) in self.segments.iter().enumerate() {
            if only_from.is_some_and(|side| segment.from != side) {
                continue;
            }
            let number = u32::try_from(number).unwrap_or(u32::MAX);
            let mut packets = vec![self.ip_packet(segment)?];
            for step in &self.encaps {
                let mut wrapped = Vec::with_capacity(packets.len());
                for packet in packets {
                    wrapped.extend(step.wrap(packet, segment.from, number)?);
                }
                packets = wrapped;
            }
            if aggregate.as_ref().is_some_and(|open| segment.aggregate != Some(open.group)) {
                frames.extend(self.aggregate_frame(aggregate.take())?);
            }
            for packet in packets {
                match (segment.aggregate, &mut aggregate) {
                    (Some(_), Some(open)) => open.packets.push(packet),
                    (Some(group), None) => {
                        aggregate = Some(Aggregate { group, from: segment.from, ts: segment.ts, packets: vec![packet] })
                    }
                    (None, _) => {
                        let data = self.link.frame(&packet, segment.from, segment.ts, self.macs, &self.vlans)?;
                        frames.push(CapturedFrame { ts: segment.ts, link_type, data });
                    }
                }
            }
        }
        frames.extend(self.aggregate_frame(aggregate)?);
        Ok(frames)
    }

    /// The frame of an aggregate's packets, when there is one.
    fn aggregate_frame(&self, aggregate: Option<Aggregate>) -> Result<Option<CapturedFrame>, ScriptError> {
        let Some(Aggregate { from, ts, packets, .. }) = aggregate else {
            return Ok(None);
        };
        let data = self.link.aggregate_frame(&packets, from, self.macs, &self.vlans)?;
        Ok(Some(CapturedFrame { ts, link_type: self.link.link_type(), data }))
    }

    fn ip_packet(&self, segment: &Segment) -> Result<Packet, ScriptError> {
        let (source, destination) = match segment.from {
            Side::Client => (self.client, self.server),
            Side::Server => (self.server, self.client),
        };
        let mut tcp = TcpHeader::new(source.port(), destination.port(), segment.seq, WINDOW);
        tcp.syn = segment.flags.syn;
        tcp.ack = segment.flags.ack;
        tcp.psh = segment.flags.psh;
        tcp.fin = segment.flags.fin;
        tcp.rst = segment.flags.rst;
        tcp.acknowledgment_number = segment.ack;
        if segment.flags.syn {
            tcp.set_options(&[TcpOptionElement::MaximumSegmentSize(self.mss)])
                .map_err(|e| ScriptError::Build(e.to_string()))?;
        }
        let (builder, kind) = ip_builder(source.ip(), destination.ip());
        let builder = builder.tcp_header(tcp);
        let mut bytes = Vec::with_capacity(builder.size(segment.payload.len()));
        builder.write_to_vec(&mut bytes, &segment.payload).map_err(|e| ScriptError::Build(e.to_string()))?;
        Ok(Packet { kind, bytes })
    }

    fn push(&mut self, from: Side, seq: u32, ack: u32, flags: Flags, payload: Vec<u8>) {
        self.segments.push(Segment { ts: self.clock, from, seq, ack, flags, payload, aggregate: None });
        self.clock = self.clock.saturating_add(self.step);
    }

    fn advance(&mut self, side: Side, by: usize) {
        // Segments are at most an MSS (u16) long, so `by` always fits.
        let by = u32::try_from(by).unwrap_or(u32::MAX);
        let next = match side {
            Side::Client => &mut self.client_next,
            Side::Server => &mut self.server_next,
        };
        *next = next.wrapping_add(by);
    }

    fn batch_index(&self, index: usize) -> Option<usize> {
        let position = self.last_batch.start.checked_add(index)?;
        (position < self.last_batch.end).then_some(position)
    }

    fn batch_segment(&self, index: usize) -> Option<Segment> {
        self.batch_index(index).and_then(|position| self.segments.get(position)).cloned()
    }

    fn set_ts(&mut self, position: usize, ts: Timestamp) {
        if let Some(segment) = self.segments.get_mut(position) {
            segment.ts = ts;
        }
    }

    fn no_such_segment(&mut self, index: usize) -> &mut Self {
        let batch_len = self.last_batch.len();
        self.fail(ScriptError::NoSuchSegment { index, batch_len })
    }

    fn fail(&mut self, error: ScriptError) -> &mut Self {
        self.error.get_or_insert(error);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapwriter::test_support::{segments, slice, Seg};
    use etherparse::{NetSlice, TcpOptionElement, TransportSlice};
    use proptest::prelude::*;

    const CLIENT_PORT: u16 = 40_000;

    fn pop3() -> Conversation {
        Conversation::new(([10, 0, 0, 1], CLIENT_PORT), ([10, 0, 0, 2], 110))
    }

    fn seg(src_port: u16, seq: u32, ack: Option<u32>, flags: &str, payload: &[u8]) -> Seg {
        Seg { src_port, seq, ack, flags: flags.to_string(), payload: payload.to_vec() }
    }

    fn payloads(segs: &[Seg]) -> Vec<&[u8]> {
        segs.iter().map(|s| s.payload.as_slice()).collect()
    }

    #[test]
    fn handshake_data_and_fin_have_continuous_seq_and_ack() {
        let frames = pop3()
            .isns(100, 5000)
            .handshake()
            .server(b"+OK\r\n")
            .client(b"USER a\r\n")
            .fin(Side::Client)
            .frames()
            .unwrap();
        let (c, s) = (CLIENT_PORT, 110);
        assert_eq!(
            segments(&frames),
            vec![
                seg(c, 100, None, "S", b""),
                seg(s, 5000, Some(101), "SA", b""),
                seg(c, 101, Some(5001), "A", b""),
                seg(s, 5001, Some(101), "AP", b"+OK\r\n"),
                seg(c, 101, Some(5006), "AP", b"USER a\r\n"),
                seg(c, 109, Some(5006), "AF", b""),
                seg(s, 5006, Some(110), "AF", b""),
                seg(c, 110, Some(5007), "A", b""),
            ]
        );
    }

    #[test]
    fn syns_announce_the_mss() {
        let frames = pop3().mss(536).handshake().frames().unwrap();
        for frame in frames.iter().take(2) {
            let Some(TransportSlice::Tcp(tcp)) = slice(frame).transport else { panic!("not TCP") };
            let options: Vec<_> = tcp.options_iterator().map(|option| option.unwrap()).collect();
            assert_eq!(options, vec![TcpOptionElement::MaximumSegmentSize(536)]);
        }
    }

    #[test]
    fn data_is_split_at_the_mss_and_at_given_sizes() {
        let frames = pop3()
            .mss(4)
            .client(b"0123456789")
            .send_split(Side::Server, b"abcdefg", &[1])
            .send_split(Side::Client, b"ABCDEFGHIJKLMN", &[2, 3, 9])
            .frames()
            .unwrap();
        let segs = segments(&frames);
        let expected = "0123 4567 89 a b c d e f g AB CDE FGHI JK LMN";
        assert_eq!(payloads(&segs), expected.split(' ').map(str::as_bytes).collect::<Vec<_>>());
        let psh: Vec<bool> = segs.iter().map(|s| s.flags.contains('P')).collect();
        let last_of_each_call = [2, 9, 14];
        for (index, has_psh) in psh.iter().enumerate() {
            assert_eq!(*has_psh, last_of_each_call.contains(&index), "PSH on segment {index}");
        }
    }

    #[test]
    fn sequence_numbers_wrap_around_2_pow_32() {
        let frames = pop3()
            .isns(u32::MAX - 2, u32::MAX)
            .handshake()
            .send_split(Side::Client, b"abcd", &[1])
            .server(b"ok")
            .frames()
            .unwrap();
        let segs = segments(&frames);
        assert_eq!(segs[1].ack, Some(u32::MAX - 1));
        let client_seqs: Vec<u32> = segs[3..7].iter().map(|s| s.seq).collect();
        assert_eq!(client_seqs, vec![u32::MAX - 1, u32::MAX, 0, 1]);
        assert_eq!((segs[7].seq, segs[7].ack), (0, Some(2)), "server ISN u32::MAX puts its first byte at 0");
    }

    #[test]
    fn without_handshake_the_capture_starts_mid_stream() {
        let conversation = pop3().isns(7, 70).client(b"PASS x\r\n").frames().unwrap();
        assert_eq!(segments(&conversation), vec![seg(CLIENT_PORT, 8, Some(71), "AP", b"PASS x\r\n")]);
    }

    #[test]
    fn reverse_and_swap_reorder_segments_but_keep_time_in_order() {
        let frames = pop3().send_split(Side::Client, b"abcd", &[1]).reverse_last().frames().unwrap();
        assert_eq!(payloads(&segments(&frames)), vec![&b"d"[..], b"c", b"b", b"a"]);
        assert!(frames.windows(2).all(|pair| pair[0].ts < pair[1].ts));

        let frames = pop3().send_split(Side::Client, b"abcd", &[1]).swap_last(0, 2).frames().unwrap();
        assert_eq!(payloads(&segments(&frames)), vec![&b"c"[..], b"b", b"a", b"d"]);
        assert!(frames.windows(2).all(|pair| pair[0].ts < pair[1].ts));
    }

    #[test]
    fn a_reply_captured_early_keeps_its_numbers_and_time_stays_in_order() {
        let frames = pop3()
            .isns(100, 5000)
            .handshake()
            .server(b"+OK\r\n")
            .client(b"USER a\r\n")
            .server(b"+OK\r\n")
            .captured_early(1)
            .frames()
            .unwrap();
        let (c, s) = (CLIENT_PORT, 110);
        assert_eq!(
            segments(&frames)[3..],
            [
                seg(s, 5001, Some(101), "AP", b"+OK\r\n"),
                seg(s, 5006, Some(109), "AP", b"+OK\r\n"),
                seg(c, 101, Some(5006), "AP", b"USER a\r\n"),
            ]
        );
        assert!(frames.windows(2).all(|pair| pair[0].ts < pair[1].ts));
        assert!(pop3().client(b"x").captured_early(1).frames().is_err(), "nothing before it to pass");
    }

    #[test]
    fn a_command_spoken_early_acknowledges_none_of_the_greeting() {
        let frames = pop3()
            .isns(100, 5000)
            .handshake()
            .server(b"+OK\r\n")
            .client(b"CAPA\r\n")
            .spoken_early(1)
            .server(b"+OK\r\n")
            .frames()
            .unwrap();
        let (c, s) = (CLIENT_PORT, 110);
        assert_eq!(
            segments(&frames)[3..],
            [
                seg(c, 101, Some(5001), "AP", b"CAPA\r\n"),
                seg(s, 5001, Some(101), "AP", b"+OK\r\n"),
                seg(s, 5006, Some(107), "AP", b"+OK\r\n"),
            ]
        );
        assert!(frames.windows(2).all(|pair| pair[0].ts < pair[1].ts));
        assert!(pop3().client(b"x").spoken_early(1).frames().is_err(), "nothing before it to pass");
    }

    #[test]
    fn dropping_a_segment_leaves_a_gap() {
        let frames =
            pop3().isns(0, 0).send_split(Side::Client, b"abc", &[1]).drop_last(1).client(b"d").frames().unwrap();
        let segs = segments(&frames);
        assert_eq!(
            segs.iter().map(|s| (s.seq, s.payload.clone())).collect::<Vec<_>>(),
            vec![(1, b"a".to_vec()), (3, b"c".to_vec()), (4, b"d".to_vec())]
        );
    }

    #[test]
    fn retransmissions_repeat_or_overlap_with_other_bytes() {
        let frames = pop3()
            .isns(0, 0)
            .send_split(Side::Client, b"USER alice\r\n", &[5])
            .retransmit_last(1)
            .retransmit_last_with(0, b"XXXXX")
            .frames()
            .unwrap();
        let segs = segments(&frames);
        assert_eq!(segs.len(), 5);
        assert_eq!((segs[3].seq, segs[3].payload.as_slice()), (segs[1].seq, &b"alice"[..]));
        assert_eq!((segs[4].seq, segs[4].payload.as_slice()), (1, &b"XXXXX"[..]));
        assert!(frames[3].ts > frames[2].ts, "a retransmission comes later");
    }

    #[test]
    fn pure_acks_answer_data_when_asked() {
        let frames = pop3().isns(0, 10).acknowledge_data(true).client(b"NOOP\r\n").frames().unwrap();
        assert_eq!(
            segments(&frames),
            vec![seg(CLIENT_PORT, 1, Some(11), "AP", b"NOOP\r\n"), seg(110, 11, Some(7), "A", b"")]
        );
    }

    #[test]
    fn rst_closes_from_either_side() {
        let frames = pop3().isns(0, 10).client(b"x").rst(Side::Server).frames().unwrap();
        assert_eq!(segments(&frames)[1], seg(110, 11, Some(2), "AR", b""));
    }

    #[test]
    fn time_advances_per_packet_and_waits() {
        let start = Timestamp::from_secs_nanos(1_800_000_000, 0);
        let frames = pop3()
            .start_at(start)
            .step(Duration::from_millis(10))
            .client(b"a")
            .wait(Duration::from_secs(60))
            .client(b"b")
            .frames()
            .unwrap();
        assert_eq!(frames[0].ts, start);
        assert_eq!(frames[1].ts, Timestamp::from_secs_nanos(1_800_000_060, 10_000_000));
    }

    #[test]
    fn ipv6_and_mixed_families() {
        let client: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let server: SocketAddr = "[2001:db8::2]:143".parse().unwrap();
        let frames = Conversation::new(client, server).handshake().frames().unwrap();
        let Some(NetSlice::Ipv6(ip)) = slice(&frames[1]).net else { panic!("not IPv6") };
        assert_eq!(ip.header().source_addr(), server.ip());
        assert_eq!(ip.header().destination_addr(), client.ip());

        let frames = Conversation::new(([192, 0, 2, 1], 40000), server).client(b"x").frames().unwrap();
        let Some(NetSlice::Ipv6(ip)) = slice(&frames[0]).net else { panic!("not IPv6") };
        assert_eq!(ip.header().source_addr(), "::ffff:192.0.2.1".parse::<std::net::Ipv6Addr>().unwrap());
    }

    /// The error `frames()` reports after `script` ran on a fresh conversation.
    fn error_of(script: impl FnOnce(&mut Conversation) -> &mut Conversation) -> ScriptError {
        let mut conversation = pop3();
        script(&mut conversation);
        conversation.frames().unwrap_err()
    }

    #[test]
    fn scripting_mistakes_are_reported_by_frames() {
        use ScriptError::*;
        let handshake_late = error_of(|c| c.client(b"x").handshake());
        assert_eq!(handshake_late, HandshakeNotFirst);
        assert_eq!(error_of(|c| c.client(b"x").isns(1, 2)), TooLate { knob: "isns" });
        let swap = error_of(|c| c.client(b"ab").swap_last(0, 2));
        assert_eq!(swap, NoSuchSegment { index: 2, batch_len: 1 });
        let nothing_sent = error_of(|c| c.drop_last(0));
        assert_eq!(nothing_sent, NoSuchSegment { index: 0, batch_len: 0 });
        let zero = error_of(|c| c.send_split(Side::Client, b"ab", &[1, 0]));
        assert_eq!(zero, ZeroSize);
        assert_eq!(error_of(|c| c.mss(0)), OutOfRange { field: "MSS", value: 0 });
        let vlan = error_of(|c| c.vlans(&[4096]).client(b"x"));
        assert_eq!(vlan, OutOfRange { field: "VLAN id", value: 4096 });
        let raw_vlan = error_of(|c| c.link(Link::RawIp).vlans(&[1]).client(b"x"));
        assert_eq!(raw_vlan, VlanNeedsEthernet);
    }

    #[test]
    fn debug_output_never_shows_payload() {
        let mut conversation = pop3();
        conversation.client(b"PASS canary-secret\r\n");
        let frames = conversation.frames().unwrap();
        assert!(!format!("{conversation:?}").contains("canary"));
        assert_eq!(
            format!("{:?}", frames[0]),
            "CapturedFrame { ts: Timestamp(1700000000000000000), link_type: LinkType(1), len: 74 }"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the ISNs and splits, each direction's segments tile its byte stream exactly.
        #[test]
        fn segments_tile_each_stream(
            client_isn: u32,
            server_isn: u32,
            calls in prop::collection::vec(
                (
                    any::<bool>(),
                    prop::collection::vec(any::<u8>(), 0..40),
                    prop::collection::vec(1usize..8, 0..3),
                ),
                1..8,
            ),
        ) {
            let mut conversation = pop3();
            conversation.isns(client_isn, server_isn).mss(16).handshake();
            let mut expected = (Vec::new(), Vec::new());
            for (from_client, data, sizes) in &calls {
                let side = if *from_client { Side::Client } else { Side::Server };
                conversation.send_split(side, data, sizes);
                let stream = if *from_client { &mut expected.0 } else { &mut expected.1 };
                stream.extend_from_slice(data);
            }
            let segs = segments(&conversation.frames().unwrap());
            let mut next = (client_isn.wrapping_add(1), server_isn.wrapping_add(1));
            let mut streams = (Vec::new(), Vec::new());
            for s in segs.iter().skip(3) {
                let from_client = s.src_port == CLIENT_PORT;
                let (own, peer) = if from_client { (&mut next.0, next.1) } else { (&mut next.1, next.0) };
                prop_assert_eq!(s.seq, *own);
                prop_assert_eq!(s.ack, Some(peer));
                prop_assert!(!s.payload.is_empty() && s.payload.len() <= 16);
                *own = own.wrapping_add(s.payload.len() as u32);
                let stream = if from_client { &mut streams.0 } else { &mut streams.1 };
                stream.extend_from_slice(&s.payload);
            }
            prop_assert_eq!(streams, expected);
            prop_assert_eq!(next, (conversation.next_seq(Side::Client), conversation.next_seq(Side::Server)));
        }
    }
}
