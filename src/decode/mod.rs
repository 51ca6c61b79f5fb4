//! Frame decoding: link layer (Ethernet, Linux cooked v1/v2, raw IP, BSD loopback, PPP, Cisco
//! HDLC, 802.11, and the headers capturing systems put first: NFLOG, PKTAP, pflog, enc, ipnet,
//! netANALYZER, ERF), VLAN tags, PPPoE, tunnels, IPv4/IPv6 (with extension headers) down to TCP,
//! without copying.
//!
//! Data problems are not errors: a frame that is not TCP, or is cut short, is [`Decoded::Skipped`]
//! with a reason that is counted.
//!
//! Layers are peeled in a loop (`link` → `ip` → `tunnel` → `ip` …) rather than by
//! recursion, so that a crafted frame cannot nest deeper than [`MAX_ENCAPSULATIONS`].
//!
//! # VLANs and tunnels
//!
//! [`TcpPacket::vlan`] holds the VLAN tags of the innermost frame. When a tunnel is entered, the
//! tags seen so far are folded into [`TcpPacket::tunnel`] together with the tunnel's own context
//! (outer addresses, in an order that is the same for both directions, plus the VXLAN,
//! VXLAN-GPE or GENEVE VNI, GRE key, ERSPAN session id or 802.1ah I-SID), and the stack starts
//! empty for the inner frame. MPLS labels are not folded in: a connection's two directions travel
//! on different label-switched paths, so labels would split it in two. Nor are GTP-U TEIDs, L2TP
//! tunnel and session ids, PPTP call ids, port extender (VN-Tag, E-tag) ids or Cisco MetaData
//! security group tags, for the same
//! reason: each packet carries the id its recipient chose, different each way.
//!
//! # Fragments
//!
//! IPv4 and IPv6 fragments are reassembled (`defrag`) within fixed memory, at every IP layer of a
//! frame (inner fragments inside a tunnel whose packets are fragmented again outside, as Wireshark
//! reassembles them); the reassembled datagram lives in the decoder, which is why
//! [`Decoder::decode`] borrows the decoder for as long as the returned packet lives.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod capture_headers;
mod defrag;
mod fast;
mod ip;
mod link;
mod tunnel;
mod wifi;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::ops::Range;

use crate::alert::saturating_sum;
use crate::capture::{Frame, LinkType};

pub use defrag::DefragLimits;
use defrag::{DatagramKey, Defragmenter};
use ip::IpPacket;
use link::Layer;
use tunnel::TunnelContext;

/// Encapsulation layers (MPLS stack, GRE, PPTP, ERSPAN, VXLAN, VXLAN-GPE, GENEVE, Teredo, GTP-U,
/// L2TP, TZSP, MPLS in UDP, IP-in-IP, VN-Tag, E-tag, Cisco MetaData, 802.1ah I-TAG) peeled before a frame is given
/// up as [`SkipReason::TunnelTooDeep`].
pub const MAX_ENCAPSULATIONS: u8 = 8;

/// The VLAN ids a frame carried, outermost first (802.1Q, QinQ and deeper stacks, up to four).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VlanStack {
    ids: [u16; 4],
    len: u8,
}

impl VlanStack {
    /// Appends an id; ids past the fourth are ignored (and the stack still tells flows apart
    /// by the first four), and so is id 0.
    pub fn push(&mut self, id: u16) {
        // VLAN id 0 is a priority tag (802.1Q): the frame is on the port's own VLAN, as if
        // untagged; one direction of a connection tagged so must not split it from the other.
        if id & 0x0fff == 0 {
            return;
        }
        if let Some(slot) = self.ids.get_mut(usize::from(self.len)) {
            *slot = id & 0x0fff;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// TCP header flags (the low byte of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// A TCP segment, its addressing and its payload borrowed from the frame.
#[derive(Clone, Copy)]
pub struct TcpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub vlan: VlanStack,
    /// Identifies the tunnel the packet came out of (0: none), so that inner flows of different
    /// tunnels with overlapping addresses never mix.
    pub tunnel: u64,
    /// The TCP payload; shorter than the segment when the snaplen cut the frame.
    pub payload: &'a [u8],
    /// Payload bytes the frame should have held but the snaplen cut off.
    pub payload_missing: u32,
}

impl std::fmt::Debug for TcpPacket<'_> {
    /// Payloads may hold passwords: print only their length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpPacket")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("src_port", &self.src_port)
            .field("dst_port", &self.dst_port)
            .field("seq", &self.seq)
            .field("ack", &self.ack)
            .field("flags", &self.flags)
            .field("vlan", &self.vlan.as_slice())
            .field("tunnel", &self.tunnel)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why a frame yielded no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    UnsupportedLinkType,
    NotIp,
    NotTcp,
    Truncated,
    Malformed,
    /// A fragment of an IP datagram that is not complete yet (it is kept for reassembly), or one
    /// that could not be kept (memory bound).
    IpFragment,
    TunnelTooDeep,
    /// An 802.11 frame whose body is encrypted (WEP, WPA): nothing in it can be read.
    Encrypted,
    /// The capture marks the frame as failing its frame check sequence or received with errors
    /// (radiotap's and PPI's bad-FCS flags, netANALYZER's error flags, ERF's RX error): its bytes
    /// are not what was sent.
    FailedFrameCheck,
}

#[derive(Debug)]
pub enum Decoded<'a> {
    Tcp(TcpPacket<'a>),
    Skipped(SkipReason),
}

/// Counters for everything decoding produced or skipped; the `stats` event's `decode` object
/// (but `tcp`, which is its `tcp_segments`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    #[serde(skip)]
    pub tcp: u64,
    /// TCP segments that came out of a tunnel (GRE, PPTP, ERSPAN, VXLAN, VXLAN-GPE, GENEVE,
    /// Teredo, GTP-U, L2TP, TZSP, MPLS in UDP, IP-in-IP, an 802.1ah backbone service or an MPLS
    /// pseudowire; MPLS labels, VN-Tags, E-tags and Cisco MetaData alone are no tunnel).
    pub tunnelled_tcp: u64,
    pub unsupported_link_type: u64,
    pub not_ip: u64,
    pub not_tcp: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub ip_fragments: u64,
    pub tunnel_too_deep: u64,
    pub encrypted: u64,
    pub failed_frame_check: u64,
    /// Datagrams completed from their fragments.
    pub fragments_reassembled: u64,
    /// Incomplete datagrams dropped to stay within [`DefragLimits`] (count, bytes or holes).
    pub fragments_evicted: u64,
    /// Incomplete datagrams dropped because their first fragment is older than the timeout.
    pub fragments_timed_out: u64,
    /// Fragments overlapping bytes already received with different ones (the first copy is
    /// kept): the IP counterpart of the TCP reassembler's `overlaps_differing`.
    pub fragment_overlaps_differing: u64,
}

impl DecodeStats {
    /// Frames that may have carried TCP but could not be read (cut short, malformed, of a link
    /// type not read, encrypted, failing their check, nested too deep): what a capture hides.
    pub fn unreadable(&self) -> u64 {
        saturating_sum([
            self.truncated,
            self.malformed,
            self.unsupported_link_type,
            self.encrypted,
            self.failed_frame_check,
            self.tunnel_too_deep,
        ])
    }

    /// Frames whose contents credwatch cannot look into at all, whatever they carry: of a link
    /// type not read, encrypted (802.11), tunnelled deeper than it follows. Each kind is warned
    /// about when met. Unlike [`unreadable`](Self::unreadable), no everyday noise: a frame
    /// failing its check is resent, and a malformed or cut frame is one among many.
    pub fn not_looked_into(&self) -> u64 {
        saturating_sum([self.unsupported_link_type, self.encrypted, self.tunnel_too_deep])
    }

    /// Every frame skipped, whatever the reason (a frame that is no TCP segment included).
    fn skipped(&self) -> u64 {
        saturating_sum([self.unreadable(), self.not_ip, self.not_tcp, self.ip_fragments])
    }

    fn count_skip(&mut self, reason: SkipReason) {
        let counter = match reason {
            SkipReason::UnsupportedLinkType => &mut self.unsupported_link_type,
            SkipReason::NotIp => &mut self.not_ip,
            SkipReason::NotTcp => &mut self.not_tcp,
            SkipReason::Truncated => &mut self.truncated,
            SkipReason::Malformed => &mut self.malformed,
            SkipReason::IpFragment => &mut self.ip_fragments,
            SkipReason::TunnelTooDeep => &mut self.tunnel_too_deep,
            SkipReason::Encrypted => &mut self.encrypted,
            SkipReason::FailedFrameCheck => &mut self.failed_frame_check,
        };
        *counter += 1;
    }
}

/// Decodes frames to TCP segments, reassembling IP fragments on the way.
#[derive(Debug, Default)]
pub struct Decoder {
    pub stats: DecodeStats,
    defrag: Defragmenter,
    warned: Warned,
    /// The subframes of the latest frame not read yet, when it was an aggregate (802.11 A-MSDU)
    /// of several packets (see [`Decoder::decode_next`]).
    aggregate_rest: Option<AggregateRest>,
    /// Packets come out without their VLAN ids (see [`Decoder::ignoring_vlans`]).
    ignore_vlans: bool,
}

/// What was warned about already: each kind of problem once.
#[derive(Debug, Default)]
struct Warned {
    /// Link types met that no layer here reads, each warned about once.
    unsupported: Vec<LinkType>,
    /// A segment cut short by the capture's snap length.
    cut_short: bool,
    /// A frame cut by the capture's snap length before the end of its headers.
    cut_in_headers: bool,
    /// Skips that hide logins (encrypted 802.11 frames, frames failing their check, tunnels
    /// nested too deep), each once.
    skips: Vec<SkipReason>,
    /// IP fragments overlapping with different bytes.
    fragment_overlap: bool,
}

/// Where an aggregate's subframes not read yet lie, and the encapsulations around them (an
/// aggregate a wireless sensor streamed through a tunnel): each is peeled from there.
#[derive(Clone, Debug)]
struct AggregateRest {
    span: Range<usize>,
    lies_in: LiesIn,
    context: TunnelContext,
}

/// The bytes an aggregate's rest is a span of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LiesIn {
    Frame,
    /// The datagram the defragmenter completed last: a sensor's stream, its datagrams larger than
    /// a link's MTU, fragmented on the way.
    Datagram,
}

/// Different unsupported link types warned about at most (a capture has one per interface).
const UNSUPPORTED_WARNED: usize = 16;

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Packets come out without VLAN ids, so that flows are told apart by addresses, ports and
    /// tunnels alone: a SPAN port may see a connection's two directions, or two routed copies
    /// of it, with different tags.
    pub fn ignoring_vlans(self, ignore: bool) -> Self {
        Decoder { ignore_vlans: ignore, ..self }
    }

    /// A decoder whose fragment reassembly keeps to the given limits.
    pub fn with_defrag_limits(limits: DefragLimits) -> Self {
        Decoder { defrag: Defragmenter::new(limits), ..Decoder::default() }
    }

    /// Decodes one frame, or the first packet of an aggregate (see [`decode_next`](Self::decode_next)).
    /// The packet borrows the frame's bytes, or the decoder's reassembly buffer when the frame
    /// completed a fragmented datagram; hence `&'a mut self`.
    pub fn decode<'a>(&'a mut self, frame: &Frame<'a>) -> Decoded<'a> {
        self.aggregate_rest = None;
        self.defrag.expire(frame.ts, &mut self.stats);
        if frame.link_type == LinkType::ETHERNET {
            if let Some(mut packet) = fast::ethernet_tcp(frame.data) {
                self.stats.tcp += 1;
                if self.ignore_vlans {
                    packet.vlan = VlanStack::default();
                }
                return Decoded::Tcp(packet);
            }
        }
        let first = link::first_layer(frame.link_type, frame.data);
        self.peel_from(frame, first, TunnelContext::default())
    }

    /// The next packet of the frame [`decode`](Self::decode) was given last, when that frame was
    /// an aggregate of several (802.11 A-MSDU); `None` once all were decoded. Call it until then
    /// after `decode`, with the same frame.
    #[inline]
    pub fn decode_next<'a>(&'a mut self, frame: &Frame<'a>) -> Option<Decoded<'a>> {
        let AggregateRest { span, lies_in, context } = self.aggregate_rest.take()?;
        Some(match lies_in {
            LiesIn::Frame => {
                let rest = frame.data.get(span).ok_or(SkipReason::Truncated);
                self.peel_from(frame, rest.map(Layer::Aggregate), context)
            }
            LiesIn::Datagram => self.peel_rest_of_datagram(frame, span, context),
        })
    }

    fn peel_from<'a>(
        &'a mut self,
        frame: &Frame<'a>,
        first: Result<Layer<'a>, SkipReason>,
        context: TunnelContext,
    ) -> Decoded<'a> {
        let Decoder { stats, defrag, warned, aggregate_rest, ignore_vlans } = self;
        let result = first.and_then(|layer| peel(frame, layer, context, defrag, stats, aggregate_rest));
        warned.conclude(result, frame, stats, *ignore_vlans)
    }

    /// Peels the next subframes of an aggregate that lay in a reassembled datagram. The datagram
    /// stays where it is, borrowed: a subframe that is itself an IP fragment is not added to the
    /// pool (that would need the buffer moved out, as [`peel`] does), and is skipped.
    fn peel_rest_of_datagram<'a>(
        &'a mut self,
        frame: &Frame<'a>,
        span: Range<usize>,
        mut context: TunnelContext,
    ) -> Decoded<'a> {
        let Decoder { stats, defrag, warned, aggregate_rest, ignore_vlans } = self;
        let datagram: &'a [u8] = defrag.completed();
        let result = datagram.get(span).ok_or(SkipReason::Truncated).and_then(|rest| {
            match peel_layers(frame, Layer::Aggregate(rest), Some(datagram), &mut context, aggregate_rest)? {
                Peeled::Tcp(packet) => Ok(packet),
                Peeled::Fragment(..) => Err(SkipReason::IpFragment),
            }
        });
        warned.conclude(result, frame, stats, *ignore_vlans)
    }
}

impl Warned {
    /// Counts what peeling a packet came to, warning about what hides logins (once each).
    fn conclude<'a>(
        &mut self,
        result: Result<TcpPacket<'a>, SkipReason>,
        frame: &Frame<'_>,
        stats: &mut DecodeStats,
        ignore_vlans: bool,
    ) -> Decoded<'a> {
        if stats.fragment_overlaps_differing > 0 && !self.fragment_overlap {
            self.fragment_overlap = true;
            warn_fragment_overlap();
        }
        match result {
            Ok(mut packet) => {
                stats.tcp += 1;
                if packet.tunnel != 0 {
                    stats.tunnelled_tcp += 1;
                }
                if ignore_vlans {
                    packet.vlan = VlanStack::default();
                }
                if packet.payload_missing > 0 && !self.cut_short {
                    self.cut_short = true;
                    warn_cut_short(frame);
                }
                Decoded::Tcp(packet)
            }
            Err(reason) => {
                stats.count_skip(reason);
                let cut = frame.data.len() < usize::try_from(frame.orig_len).unwrap_or(usize::MAX);
                if reason == SkipReason::Truncated && cut && !self.cut_in_headers {
                    self.cut_in_headers = true;
                    warn_cut_in_headers(frame);
                }
                if reason == SkipReason::UnsupportedLinkType {
                    warn_unsupported(&mut self.unsupported, link::innermost_link_type(frame.link_type, frame.data));
                }
                if !self.skips.contains(&reason) && warn_skips(reason, stats) {
                    self.skips.push(reason);
                }
                Decoded::Skipped(reason)
            }
        }
    }
}

/// Says, once, that the capture's snap length cut TCP payloads short: the reassembly sees gaps
/// where the bytes were, so logins there go unseen, and only the gap counter would tell why.
fn warn_cut_short(frame: &Frame<'_>) {
    tracing::warn!(
        kept = frame.data.len(),
        on_the_wire = frame.orig_len,
        "frames were cut short by the capture's snap length: payload bytes are missing, and logins in \
         them cannot be seen (capture whole frames, e.g. tcpdump -s 0)"
    );
}

/// Says, once, that the capture's snap length cut frames before the end of their headers: they
/// cannot be read at all, and a capture made so (tcpdump's old default of 68 bytes cuts the TCP
/// options of most segments) would otherwise end in a silent all-clear.
fn warn_cut_in_headers(frame: &Frame<'_>) {
    tracing::warn!(
        kept = frame.data.len(),
        on_the_wire = frame.orig_len,
        "frames were cut by the capture's snap length before the end of their headers: they cannot be read, \
         nor logins in them (the stats event counts them in decode.truncated; capture whole frames, e.g. \
         tcpdump -s 0)"
    );
}

/// Says, once, that IP fragments overlapped with different bytes: a sender does not do that, an
/// evasion attempt (or a broken middlebox) does, and only a counter would tell otherwise. The
/// first copy was kept, as the TCP reassembler keeps its own.
fn warn_fragment_overlap() {
    tracing::warn!(
        "IP fragments overlapped with different bytes (an evasion trick, or broken equipment): the first \
         copy was kept; the stats event counts them in decode.fragment_overlaps_differing"
    );
}

/// Frames failing their frame check are warned about once they are this many and at least a
/// tenth of the frames: a few are a radio's everyday noise (the sender's retry carries the bytes),
/// or a wire's.
const FAILED_CHECKS_WORTH_WARNING: u64 = 8;

/// Says, once per reason, that skipped frames hide what the capture holds, where that would
/// otherwise end in a silent all-clear: encrypted 802.11 frames (a protected network), frames
/// failing their check in numbers, tunnels nested deeper than followed. Returns whether it
/// warned (frames failing their check are warned about only once they are many).
fn warn_skips(reason: SkipReason, stats: &DecodeStats) -> bool {
    match reason {
        SkipReason::Encrypted => tracing::warn!(
            "802.11 frames are encrypted (WEP or WPA): logins in them cannot be seen (decrypt the capture \
             first, e.g. with Wireshark's decryption keys or airdecap-ng)"
        ),
        SkipReason::FailedFrameCheck => {
            let frames = stats.tcp.saturating_add(stats.skipped());
            let many = stats.failed_frame_check >= FAILED_CHECKS_WORTH_WARNING
                && stats.failed_frame_check.saturating_mul(10) >= frames;
            if !many {
                return false;
            }
            tracing::warn!(
                failed = stats.failed_frame_check,
                frames,
                "many frames fail their frame check (bad FCS, or received with errors) and are skipped: logins \
                 in them cannot be seen (poor radio reception, a faulty link, or a driver marking good frames bad)"
            );
        }
        SkipReason::TunnelTooDeep => tracing::warn!(
            max_layers = MAX_ENCAPSULATIONS,
            "packets nested in more tunnel or encapsulation layers than credwatch follows are skipped: \
             logins in them cannot be seen (the stats event counts them in decode.tunnel_too_deep)"
        ),
        SkipReason::UnsupportedLinkType
        | SkipReason::NotIp
        | SkipReason::NotTcp
        | SkipReason::Truncated
        | SkipReason::Malformed
        | SkipReason::IpFragment => return false,
    }
    true
}

/// Says, once per link type, that its frames cannot be decoded: a capture of a link credwatch
/// does not read (802.15.4, say) would otherwise end in a silent all-clear.
fn warn_unsupported(seen: &mut Vec<LinkType>, link_type: LinkType) {
    if seen.contains(&link_type) || seen.len() >= UNSUPPORTED_WARNED {
        return;
    }
    seen.push(link_type);
    tracing::warn!(
        link_type = link_type.0,
        "frames of this link type cannot be decoded, and logins in them cannot be seen (credwatch reads \
         Ethernet, Linux cooked v1 and v2, raw IPv4 and IPv6, BSD loopback, PPP, PPPoE, Cisco HDLC, \
         NFLOG, PKTAP, pflog, enc, ipnet, netANALYZER, ERF, and 802.11 bare or behind radiotap, PPI, Prism \
         or AVS headers)"
    );
}

/// Peels the frame layer by layer down to TCP, reassembling fragments at every IP layer met (a
/// tunnel's inner packets may be fragmented, and so may the outer packets carrying each piece).
///
/// Frames without fragments take [`peel_layers`] alone, borrowing the frame. A completed datagram
/// lives in the pool's completed buffer; when it holds a fragment itself, the buffer is moved out
/// (not copied) while that fragment is added, so that its bytes stay valid, and peeling restarts
/// on the newly completed datagram. Each round enters a tunnel before it meets another IP layer,
/// so [`MAX_ENCAPSULATIONS`] bounds the rounds.
///
/// An aggregate's first subframe is peeled, and where the others lie is left in
/// `aggregate_rest`.
fn peel<'a>(
    frame: &Frame<'a>,
    layer: Layer<'a>,
    mut context: TunnelContext,
    defrag: &'a mut Defragmenter,
    stats: &mut DecodeStats,
    aggregate_rest: &mut Option<AggregateRest>,
) -> Result<TcpPacket<'a>, SkipReason> {
    let (fragment_packet, fragment) = match peel_layers(frame, layer, None, &mut context, aggregate_rest)? {
        Peeled::Tcp(packet) => return Ok(packet),
        Peeled::Fragment(packet, fragment) => (packet, fragment),
    };
    let key = DatagramKey::new(&fragment_packet, fragment, &context);
    if !defrag.insert(key, fragment, fragment_packet.payload, frame.ts, stats)? {
        return Err(SkipReason::IpFragment);
    }
    let mut header = fragment_packet.addressing();
    loop {
        let outer = defrag.take_completed();
        let entered = context;
        let peeled = match peel_datagram(frame, &header, &outer, &mut context, aggregate_rest) {
            Ok(peeled) => peeled,
            Err(reason) => {
                // The datagram stays: an aggregate's next packets may lie in it.
                defrag.restore_completed(outer);
                return Err(reason);
            }
        };
        match peeled {
            Peeled::Tcp(_) => {
                // Peel it again below, borrowing the pool for `'a` this time.
                defrag.restore_completed(outer);
                context = entered;
                break;
            }
            Peeled::Fragment(packet, fragment) => {
                // The datagram goes: a rest of an aggregate it held goes with it.
                if aggregate_rest.as_ref().is_some_and(|rest| rest.lies_in == LiesIn::Datagram) {
                    *aggregate_rest = None;
                }
                let key = DatagramKey::new(&packet, fragment, &context);
                if !defrag.insert(key, fragment, packet.payload, frame.ts, stats)? {
                    return Err(SkipReason::IpFragment);
                }
                header = packet.addressing();
            }
        }
    }
    match peel_datagram(frame, &header, defrag.completed(), &mut context, aggregate_rest)? {
        Peeled::Tcp(packet) => Ok(packet),
        // Peeling the same bytes in the same context ends the same way as above.
        Peeled::Fragment(..) => Err(SkipReason::IpFragment),
    }
}

/// Where a run of layers ended.
enum Peeled<'b> {
    Tcp(TcpPacket<'b>),
    /// A fragment (held whole by the capture), to add to its datagram before peeling goes on.
    Fragment(IpPacket<'b>, ip::Fragment),
}

/// Peels layers until TCP or an IP fragment; `layer` lies in the frame, or in `datagram` when one
/// is given (the defragmenter's completed datagram).
fn peel_layers<'b>(
    frame: &Frame<'_>,
    mut layer: Layer<'b>,
    datagram: Option<&[u8]>,
    context: &mut TunnelContext,
    aggregate_rest: &mut Option<AggregateRest>,
) -> Result<Peeled<'b>, SkipReason> {
    loop {
        let ip_bytes = match layer {
            Layer::Aggregate(subframes) => {
                let (msdu, rest) = wifi::split_subframe(subframes)?;
                // The others are read later from where they lie.
                let (whole, lies_in) = match datagram {
                    Some(datagram) => (datagram, LiesIn::Datagram),
                    None => (frame.data, LiesIn::Frame),
                };
                *aggregate_rest = span_in(whole, rest).filter(|span| !span.is_empty()).map(|span| AggregateRest {
                    span,
                    lies_in,
                    context: *context,
                });
                layer = wifi::llc_snap(msdu)?;
                continue;
            }
            Layer::Ethernet(bytes) => {
                layer = link::ethernet(bytes)?;
                continue;
            }
            Layer::EtherType(ether_type, bytes) => {
                layer = link::ether_type(ether_type, bytes, context)?;
                continue;
            }
            Layer::Ip(bytes) => bytes,
        };
        let packet = ip::parse(ip_bytes)?;
        if !ip::may_carry_tcp(packet.protocol) {
            return Err(SkipReason::NotTcp);
        }
        if let Some(fragment) = packet.fragment {
            if packet.missing > 0 {
                return Err(SkipReason::Truncated);
            }
            return Ok(Peeled::Fragment(packet, fragment));
        }
        layer = match above_ip(&packet, context)? {
            Above::Tcp(tcp) => return Ok(Peeled::Tcp(tcp)),
            Above::Tunnel(inner) => inner,
        };
    }
}

/// Where `part` lies in `whole`, when it is a part of it rather than bytes elsewhere (addresses
/// compared, nothing read through them).
fn span_in(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// Peels a reassembled datagram, whose IP header was `header`'s, on from its payload.
fn peel_datagram<'b>(
    frame: &Frame<'_>,
    header: &IpPacket<'_>,
    datagram: &'b [u8],
    context: &mut TunnelContext,
    aggregate_rest: &mut Option<AggregateRest>,
) -> Result<Peeled<'b>, SkipReason> {
    let packet = ip::reassembled(header, datagram)?;
    match above_ip(&packet, context)? {
        Above::Tcp(tcp) => Ok(Peeled::Tcp(tcp)),
        Above::Tunnel(inner) => peel_layers(frame, inner, Some(datagram), context, aggregate_rest),
    }
}

/// What an unfragmented IP packet carries.
enum Above<'b> {
    Tcp(TcpPacket<'b>),
    /// The inner layer of a tunnel (entered in the context).
    Tunnel(Layer<'b>),
}

fn above_ip<'b>(packet: &IpPacket<'b>, context: &mut TunnelContext) -> Result<Above<'b>, SkipReason> {
    Ok(Above::Tunnel(match packet.protocol {
        ip::TCP => return tcp(packet, context).map(Above::Tcp),
        ip::UDP => tunnel::udp(packet, context)?,
        ip::GRE => tunnel::gre(packet, context)?,
        ip::IPV4_IN_IP | ip::IPV6_IN_IP => tunnel::ip_in_ip(packet, context)?,
        _ => return Err(SkipReason::NotTcp),
    }))
}

/// Reads the TCP header; the payload is whatever of the segment the capture holds.
fn tcp<'a>(packet: &IpPacket<'a>, context: &TunnelContext) -> Result<TcpPacket<'a>, SkipReason> {
    use etherparse::err::tcp::HeaderSliceError;
    let header = etherparse::TcpHeaderSlice::from_slice(packet.payload).map_err(|err| match err {
        HeaderSliceError::Len(_) => SkipReason::Truncated,
        HeaderSliceError::Content(_) => SkipReason::Malformed,
    })?;
    let flag_bits = [
        (header.fin(), TcpFlags::FIN),
        (header.syn(), TcpFlags::SYN),
        (header.rst(), TcpFlags::RST),
        (header.psh(), TcpFlags::PSH),
        (header.ack(), TcpFlags::ACK),
        (header.urg(), TcpFlags::URG),
    ];
    let flags = flag_bits.iter().filter(|(set, _)| *set).fold(0, |bits, (_, bit)| bits | bit);
    Ok(TcpPacket {
        src: packet.src,
        dst: packet.dst,
        src_port: header.source_port(),
        dst_port: header.destination_port(),
        seq: header.sequence_number(),
        ack: header.acknowledgment_number(),
        flags: TcpFlags(flags),
        window: header.window_size(),
        vlan: context.vlan,
        tunnel: context.tunnel,
        payload: packet.payload.get(header.slice().len()..).unwrap_or_default(),
        payload_missing: packet.missing,
    })
}
