//! Live capture from network interfaces through libpcap (the `live` feature).
//!
//! A [`LiveSource`] is opened with root or `CAP_NET_RAW`/`CAP_NET_ADMIN`, before privileges are
//! dropped; it keeps its settings so that it can be reopened when the interface goes away and
//! comes back. A handle whose interface was deleted gets nothing more, not even an error, whatever
//! comes later under the same name: the source notices it by the interface's index and fails, so
//! that it is reopened. Kernel and interface drop counters survive a reopen (they are accumulated here,
//! since libpcap's restart from zero with each handle).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pcap::{Active, Capture, Stat};

use super::{Frame, LinkType, Timestamp};
use crate::proto::PortMap;

/// How often a quiet handle checks that its interface is still the one it opened.
const INDEX_CHECK: Duration = Duration::from_secs(5);

/// How an interface is opened: the options a tcpdump user expects.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// See every frame on the wire, not only those addressed to this host (a SPAN port delivers
    /// other hosts' traffic).
    pub promiscuous: bool,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// Kernel capture buffer in bytes (libpcap's default, about 2 MiB, when `None`).
    pub buffer_size: Option<u32>,
    /// Deliver each packet at once instead of in blocks (lower latency, more wakeups).
    pub immediate: bool,
    /// How long a read waits for packets before the capture thread looks at the clock and the
    /// stop flag (also libpcap's buffer timeout: how long packets may wait in a kernel block).
    pub read_timeout: Duration,
    pub filter: Filter,
}

/// Which packets the kernel hands over.
#[derive(Clone, Debug)]
pub enum Filter {
    /// Built for the interface's link type by [`mail_filter`].
    Mail { ports: PortMap, any_port: bool },
    /// A BPF expression as the user wrote it (empty: everything).
    Expression(String),
}

/// Compiles a BPF expression for Ethernet without opening an interface: a mistyped `--filter`
/// is a bad command line, said before anything is opened (the expression is compiled again
/// for each interface's own link type when it opens).
pub fn check_filter(expression: &str) -> Result<(), String> {
    let capture = Capture::dead(pcap::Linktype::ETHERNET).map_err(|error| error.to_string())?;
    capture.compile(expression, true).map(drop).map_err(|error| error.to_string())
}

impl Filter {
    /// The BPF expression for an interface of `link_type`.
    pub fn expression(&self, link_type: LinkType) -> String {
        match self {
            Filter::Mail { ports, any_port } => mail_filter(ports, *any_port, link_type),
            Filter::Expression(expression) => expression.clone(),
        }
    }
}

/// Opening or reading an interface failed. Messages come from libpcap (no packet bytes).
#[derive(Debug, thiserror::Error)]
#[error("{interface}: {message}")]
pub struct LiveError {
    pub interface: String,
    pub message: String,
    pub kind: LiveErrorKind,
}

/// What a [`LiveError`] calls for: only a refusal is fixed by privileges, so only it says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveErrorKind {
    /// The process may not open a packet socket or set the interface's modes (it lacks
    /// `CAP_NET_RAW`/`CAP_NET_ADMIN`).
    PermissionDenied,
    /// Anything else: no such interface, an interface down, a bad filter, a read failing.
    Other,
}

impl LiveError {
    /// An error of libpcap's about `interface`, its kind told by its text: the pcap crate keeps
    /// only the message of pcap_activate's status (`socket: Operation not permitted`,
    /// `You don't have permission to capture on that device`).
    fn from_pcap(interface: &str, message: String) -> LiveError {
        let lower = message.to_ascii_lowercase();
        let kind = if lower.contains("not permitted") || lower.contains("permission") {
            LiveErrorKind::PermissionDenied
        } else {
            LiveErrorKind::Other
        };
        LiveError { interface: interface.to_string(), message, kind }
    }
}

/// Kernel and interface drops since the source was first opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    pub kernel: u64,
    pub interface: u64,
}

/// What the live pipeline asks of an interface: [`LiveSource`], or a scripted one in its tests
/// (failures, reopens and panics cannot be had from a real interface at will).
pub trait FrameSource: Send {
    fn interface(&self) -> &str;
    /// The next frame, or `None` when none came within the read timeout.
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError>;
    /// Opens the interface again with the same settings.
    fn reopen(&mut self) -> Result<(), LiveError>;
    /// Whether the interface is still the one the handle was opened on, neither deleted nor
    /// replaced by another of its name: frames still buffered from before a deletion do not
    /// mean that it came back.
    fn still_attached(&self) -> bool;
    /// Kernel and interface drops since the source was first opened.
    fn drops(&mut self) -> Drops;
}

/// One interface being captured.
///
/// The handle is non-blocking and waited for with `poll` on a duplicate of its descriptor:
/// libpcap's own read timeout does not start until a first packet arrives (Linux TPACKET_V3), so
/// a blocking read on a quiet interface would never let the thread see a stop request.
pub struct LiveSource {
    interface: String,
    options: LiveOptions,
    capture: Capture<Active>,
    /// The same socket as `capture`'s, for `poll` while the handle is borrowed by a frame.
    readiness: OwnedFd,
    link_type: LinkType,
    /// The interface's index when the handle was opened (0: unknown, or `any`: not checked).
    index: u32,
    /// When the index was last checked.
    index_checked: Instant,
    /// Drops of the handles closed before this one.
    earlier: Drops,
    /// The current handle's last counters (u32 in libpcap: wrapping differences are taken).
    last: Stat,
    current: Drops,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource").field("interface", &self.interface).field("link_type", &self.link_type).finish()
    }
}

impl LiveSource {
    /// Opens and activates `interface` (`any`: all interfaces, Linux cooked headers) and installs
    /// the filter.
    pub fn open(interface: &str, options: &LiveOptions) -> Result<LiveSource, LiveError> {
        let (capture, readiness) = activate(interface, options)?;
        let link_type = link_type_of(&capture);
        Ok(LiveSource {
            interface: interface.to_string(),
            options: options.clone(),
            capture,
            readiness,
            link_type,
            index: index_of(interface),
            index_checked: Instant::now(),
            earlier: Drops::default(),
            last: Stat { received: 0, dropped: 0, if_dropped: 0 },
            current: Drops::default(),
        })
    }

    pub fn link_type(&self) -> LinkType {
        self.link_type
    }
}

impl FrameSource for LiveSource {
    fn interface(&self) -> &str {
        &self.interface
    }

    /// The next frame, or `None` when the read timeout passed without one (or a signal came).
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        let interface = &self.interface;
        let (readiness, timeout) = (&self.readiness, self.options.read_timeout);
        let (index, index_checked) = (self.index, &mut self.index_checked);
        match self.capture.next_packet() {
            Ok(packet) => {
                let secs = u64::try_from(packet.header.ts.tv_sec).unwrap_or(0);
                let micros = u32::try_from(packet.header.ts.tv_usec).unwrap_or(0).min(999_999);
                Ok(Some(Frame {
                    ts: Timestamp::from_secs_nanos(secs, micros * 1000),
                    link_type: self.link_type,
                    orig_len: packet.header.len,
                    data: packet.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                if index != 0 && index_checked.elapsed() >= INDEX_CHECK {
                    *index_checked = Instant::now();
                    if index_of(interface) != index {
                        return Err(LiveError {
                            interface: interface.clone(),
                            message: "the interface was removed (or replaced by another of that name)".to_string(),
                            kind: LiveErrorKind::Other,
                        });
                    }
                }
                let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
                let mut fds = [PollFd::new(readiness.as_fd(), PollFlags::POLLIN)];
                // An interrupted wait (EINTR: a signal) is a timeout like any other; an error
                // condition on the socket shows up in the next read.
                let _ = poll(&mut fds, timeout);
                Ok(None)
            }
            Err(error) => Err(LiveError::from_pcap(interface, error.to_string())),
        }
    }

    fn still_attached(&self) -> bool {
        self.index == 0 || index_of(&self.interface) == self.index
    }

    /// Drops since the source was first opened (reading libpcap's counters).
    fn drops(&mut self) -> Drops {
        if let Ok(stat) = self.capture.stats() {
            self.current.kernel += u64::from(stat.dropped.wrapping_sub(self.last.dropped));
            self.current.interface += u64::from(stat.if_dropped.wrapping_sub(self.last.if_dropped));
            self.last = stat;
        }
        Drops {
            kernel: self.earlier.kernel + self.current.kernel,
            interface: self.earlier.interface + self.current.interface,
        }
    }

    /// Opens the interface again with the same settings (after it went down or away). On failure
    /// the old handle stays, and may recover by itself when the interface comes back up.
    fn reopen(&mut self) -> Result<(), LiveError> {
        let (capture, readiness) = activate(&self.interface, &self.options)?;
        let drops = self.drops();
        self.earlier = drops;
        self.current = Drops::default();
        self.last = Stat { received: 0, dropped: 0, if_dropped: 0 };
        self.link_type = link_type_of(&capture);
        self.capture = capture;
        self.readiness = readiness;
        self.index = index_of(&self.interface);
        Ok(())
    }
}

/// An open, filtered, non-blocking handle and a duplicate of its descriptor to wait on.
fn activate(interface: &str, options: &LiveOptions) -> Result<(Capture<Active>, OwnedFd), LiveError> {
    let error = |error: pcap::Error| LiveError::from_pcap(interface, error.to_string());
    let timeout_ms = i32::try_from(options.read_timeout.as_millis()).unwrap_or(i32::MAX).max(1);
    let mut inactive = Capture::from_device(interface)
        .map_err(error)?
        .promisc(options.promiscuous)
        .snaplen(i32::try_from(options.snaplen).unwrap_or(i32::MAX))
        .immediate_mode(options.immediate)
        .timeout(timeout_ms);
    if let Some(size) = options.buffer_size {
        inactive = inactive.buffer_size(i32::try_from(size).unwrap_or(i32::MAX));
    }
    let mut capture = inactive.open().map_err(error)?.setnonblock().map_err(error)?;
    let filter = options.filter.expression(link_type_of(&capture));
    if !filter.is_empty() {
        capture.filter(&filter, true).map_err(|e| LiveError {
            interface: interface.to_string(),
            message: format!("bad filter {filter:?}: {e}"),
            kind: LiveErrorKind::Other,
        })?;
    }
    let readiness = capture.as_fd().try_clone_to_owned().map_err(|e| LiveError {
        interface: interface.to_string(),
        message: format!("cannot duplicate the capture descriptor: {e}"),
        kind: LiveErrorKind::Other,
    })?;
    tracing::info!(interface, filter, "capture opened");
    Ok((capture, readiness))
}

/// The interface's index in this network namespace; 0 when it has none (`any`, or gone).
fn index_of(interface: &str) -> u32 {
    nix::net::if_::if_nametoindex(interface).unwrap_or(0)
}

fn link_type_of(capture: &Capture<Active>) -> LinkType {
    LinkType(u32::try_from(capture.get_datalink().0).unwrap_or(u32::MAX))
}

/// The carriers of the encapsulations the decoder peels: VXLAN, VXLAN-GPE and GENEVE (UDP 4789 and
/// Linux's 8472, 4790, 6081), Teredo (UDP 3544), GTP-U (2152), L2TP (1701), TZSP (37008), MPLS in
/// UDP (6635), GRE, ERSPAN and PPTP (IP protocol 47), IP-in-IP (4, 41), MPLS (EtherType 0x8847),
/// PPPoE sessions (0x8864), VN-Tag (0x8926), 802.1BR E-tags (0x893F), Cisco MetaData (0x8909) and
/// 802.1ah I-TAGs (0x88E7). Their inner packets cannot be filtered by port in one expression with
/// the VLAN branches (libpcap's `mpls` keyword cannot be combined with `vlan`, and `pppoes`, like
/// `vlan`, shifts the offsets of everything after it), so the carriers are let through whole.
const TUNNEL_CARRIERS: &str =
    "udp port 4789 or udp port 8472 or udp port 4790 or udp port 6081 or udp port 3544 or udp port 2152 \
    or udp port 1701 or udp port 37008 or udp port 6635 or ip proto 47 or ip6 proto 47 \
    or ip proto 4 or ip proto 41 or ip6 proto 4 or ip6 proto 41 \
    or ether proto 0x8847 or ether proto 0x8864 or ether proto 0x8926 or ether proto 0x893f \
    or ether proto 0x8909 or ether proto 0x88e7";

/// Link types libpcap compiles no filter for: behind a PPI header the frame's type is not known
/// when it compiles, and it has none for NFLOG, ERF and PKTAP headers ("filtering not
/// implemented"). Nor any that would pass what is read: its PPP filters expect the address,
/// control and two-byte protocol fields, so they drop frames whose end negotiated compressing
/// them, and, on PPP in HDLC framing, Cisco HDLC frames.
const UNFILTERED_LINKS: [LinkType; 6] =
    [LinkType::PPI, LinkType::NFLOG, LinkType::ERF, LinkType::PKTAP, LinkType::PPP, LinkType::PPP_HDLC];

/// Link types of 802.11 monitor interfaces, bare or behind a radio header (but PPI).
const WIFI_MONITOR_LINKS: [LinkType; 4] =
    [LinkType::IEEE802_11, LinkType::IEEE802_11_RADIOTAP, LinkType::IEEE802_11_PRISM, LinkType::IEEE802_11_AVS];

/// The default BPF filter. With `any_port`, every TCP segment (mail protocols are recognised on
/// any port by their greetings, at the cost of copying all TCP to the workers); otherwise the
/// configured mail ports, implicit-TLS ones included (a session in clear there is a finding, and
/// TLS there is the posture's evidence; a TLS flow is let go at its first bytes). The tunnel
/// carriers are always let through. On Ethernet, 802.1Q and QinQ frames are included too: a
/// plain `tcp port 110` reads the EtherType at a fixed offset and misses them. The VLAN part is
/// nested because each `vlan` keyword shifts the offsets for the rest of the expression; libpcap
/// has no `vlan` keyword for other link types (such as the Linux cooked headers of `-i any`).
/// On an 802.11 monitor interface every data frame goes through: a filter on ports reads the
/// LLC/SNAP header where a lone packet has it, and so drops aggregates (A-MSDU), several packets
/// in one frame; beacons and other management and control frames stay out. Where libpcap
/// compiles no filter (PPI, NFLOG, ERF, PKTAP), every frame goes through (an empty filter),
/// rather than the capture failing to open; so it does on PPP links, whose libpcap filters drop
/// frames read here.
pub fn mail_filter(ports: &PortMap, any_port: bool, link_type: LinkType) -> String {
    if UNFILTERED_LINKS.contains(&link_type) {
        return String::new();
    }
    if WIFI_MONITOR_LINKS.contains(&link_type) {
        return "type data".to_string();
    }
    let mut all: Vec<u16> = ports
        .pop3
        .iter()
        .chain(&ports.imap)
        .chain(&ports.smtp)
        .chain(&ports.managesieve)
        .chain(&ports.implicit_tls)
        .copied()
        .collect();
    all.sort_unstable();
    all.dedup();
    let tcp = if any_port || all.is_empty() {
        "tcp".to_string()
    } else {
        all.iter().map(|port| format!("tcp port {port}")).collect::<Vec<_>>().join(" or ")
    };
    let untagged = format!("({tcp}) or {TUNNEL_CARRIERS}");
    if link_type == LinkType::ETHERNET {
        format!("{untagged} or (vlan and ({untagged} or (vlan and ({untagged}))))")
    } else {
        untagged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcapwriter::{CapturedFrame, Conversation, Encap, Link, Side, TunnelEnds};

    fn mail_ports() -> PortMap {
        PortMap {
            pop3: vec![110],
            imap: vec![143],
            smtp: vec![25, 587],
            managesieve: vec![4190],
            implicit_tls: vec![993],
        }
    }

    fn login(server_port: u16, link: Link, vlans: &[u16], encaps: &[Encap]) -> Vec<CapturedFrame> {
        let mut conversation = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], server_port));
        conversation.link(link).vlans(vlans);
        for encap in encaps {
            conversation.encap(encap.clone());
        }
        conversation.handshake().client(b"USER a\r\n").frames().unwrap()
    }

    fn default_filter(ports: &PortMap, any_port: bool) -> String {
        mail_filter(ports, any_port, LinkType::ETHERNET)
    }

    #[test]
    fn only_libpcap_refusals_are_permission_errors() {
        for (message, kind) in [
            ("libpcap error: socket: Operation not permitted", LiveErrorKind::PermissionDenied),
            ("You don't have permission to capture on that device", LiveErrorKind::PermissionDenied),
            ("libpcap error: No such device exists", LiveErrorKind::Other),
            ("libpcap error: That device is not up", LiveErrorKind::Other),
        ] {
            assert_eq!(LiveError::from_pcap("eth1", message.to_string()).kind, kind, "{message}");
        }
    }

    #[test]
    fn the_default_filter_lists_the_mail_ports_once_implicit_tls_included() {
        let filter = default_filter(&mail_ports(), false);
        assert!(filter.starts_with(
            "(tcp port 25 or tcp port 110 or tcp port 143 or tcp port 587 or tcp port 993 or tcp port 4190) or udp port 4789"
        ));
        assert!(filter.contains(" or (vlan and ((tcp port 25 "));
        let without_tls = PortMap { implicit_tls: Vec::new(), ..mail_ports() };
        assert!(!default_filter(&without_tls, false).contains("993"), "--tls-ports none leaves them out");
        assert!(default_filter(&mail_ports(), true).starts_with("(tcp) or udp port 4789"));
        assert_eq!(
            mail_filter(&mail_ports(), false, LinkType::LINUX_SLL),
            format!(
                "(tcp port 25 or tcp port 110 or tcp port 143 or tcp port 587 or tcp port 993 or tcp port 4190) or {TUNNEL_CARRIERS}"
            )
        );
        let expression = Filter::Expression("host 192.0.2.1".into());
        assert_eq!(expression.expression(LinkType::ETHERNET), "host 192.0.2.1");
    }

    /// Every frame of the conversation passes the filter (`true`), or none does (`false`).
    fn passes(filter: &str, link: pcap::Linktype, frames: &[CapturedFrame]) -> bool {
        let program = Capture::dead(link).unwrap().compile(filter, true).unwrap();
        let passed = frames.iter().filter(|frame| program.filter(&frame.data)).count();
        assert!(passed == 0 || passed == frames.len(), "{passed} of {} frames passed", frames.len());
        passed == frames.len()
    }

    #[test]
    fn the_default_filter_passes_mail_in_vlans_and_tunnels_and_nothing_else() {
        let ethernet = pcap::Linktype::ETHERNET;
        let filter = default_filter(&mail_ports(), false);
        let ends = TunnelEnds::new([192, 0, 2, 1], [192, 0, 2, 2]);
        let vxlan = [Encap::Ethernet, Encap::Vxlan { ends, vni: 7 }];
        let gre = [Encap::Gre { ends, key: Some(3), sequence: false, checksum: false }];
        let mpls = [Encap::Mpls { labels: vec![16, 17] }];
        let ip_in_ip = [Encap::IpInIp { ends }];
        let pppoe = [Encap::Pppoe { session: 9 }];
        let gtp_u = [Encap::GtpU { ends, uplink_teid: 1, downlink_teid: 2, extension: true }];
        let l2tp = [Encap::L2tp { ends, client_side_ids: (1, 2), server_side_ids: (3, 4), all_fields: false }];
        let pptp = [Encap::Pptp { ends, client_call_id: 1, server_call_id: 2 }];
        let tzsp = [Encap::Ethernet, Encap::Tzsp { ends, tags: false }];
        let vxlan_gpe = [Encap::VxlanGpe { ends, vni: 7 }];
        let mpls_in_udp = [Encap::Mpls { labels: vec![16] }, Encap::MplsInUdp { ends }];
        let vn_tag = [Encap::VnTag { vif: 3 }];
        let e_tag = [Encap::ETag { ecid: 3 }];
        let cisco_metadata = [Encap::CiscoMetadata { client_sgt: 4, server_sgt: 5 }];
        let backbone = [Encap::Ethernet, Encap::Pbb { isid: 3 }];
        for (name, vlans, encaps) in [
            ("plain", &[][..], &[][..]),
            ("802.1Q", &[10], &[]),
            ("QinQ", &[10, 20], &[]),
            ("VXLAN", &[], &vxlan),
            ("VXLAN in a VLAN", &[5], &vxlan),
            ("GRE", &[], &gre),
            ("MPLS", &[], &mpls),
            ("MPLS in a VLAN", &[5], &mpls),
            ("IP-in-IP", &[], &ip_in_ip),
            ("GTP-U", &[], &gtp_u),
            ("L2TP", &[], &l2tp),
            ("PPTP", &[], &pptp),
            ("TZSP", &[], &tzsp),
            ("VXLAN-GPE", &[], &vxlan_gpe),
            ("MPLS in UDP", &[], &mpls_in_udp),
            ("VN-Tag", &[], &vn_tag),
            ("E-tag in a VLAN", &[5], &e_tag),
            ("Cisco MetaData", &[], &cisco_metadata),
            ("802.1ah in a backbone VLAN", &[5], &backbone),
        ] {
            assert!(passes(&filter, ethernet, &login(110, Link::Ethernet, vlans, encaps)), "{name}");
            assert!(!passes(&filter, ethernet, &login(80, Link::Ethernet, vlans, &[])), "web, {name}");
        }
        assert!(
            passes(&filter, ethernet, &login(993, Link::Ethernet, &[], &[])),
            "implicit TLS, or mail in clear there"
        );
        // Teredo: IPv6 in UDP 3544, whose ports BPF cannot see either.
        let mut teredo =
            Conversation::new(([0x2001, 0, 0, 0, 0, 0, 0, 1], 40000), ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2], 110));
        teredo.encap(Encap::Teredo { ends, indicators: false }).handshake().client(b"USER a\r\n");
        assert!(passes(&filter, ethernet, &teredo.frames().unwrap()), "Teredo");
        // VXLAN on Linux's default port (8472): the same frames with the outer UDP port changed.
        let mut on_linux_port = login(110, Link::Ethernet, &[], &vxlan);
        for frame in &mut on_linux_port {
            frame.data[36..38].copy_from_slice(&8472u16.to_be_bytes());
        }
        assert!(passes(&filter, ethernet, &on_linux_port));
        // PPPoE sessions go through whole, in VLANs too; the tighter filter docs/deployment.md
        // gives for a link that is all PPPoE keeps only their mail.
        let login_over_pppoe = login(110, Link::Ethernet, &[], &pppoe);
        assert!(passes(&filter, ethernet, &login_over_pppoe));
        assert!(passes(&filter, ethernet, &login(110, Link::Ethernet, &[7], &pppoe)), "PPPoE in a VLAN");
        let tighter = "pppoes and (tcp port 110 or tcp port 143)";
        assert!(passes(tighter, ethernet, &login_over_pppoe));
        assert!(!passes(tighter, ethernet, &login(80, Link::Ethernet, &[], &pppoe)));
        assert!(passes(&default_filter(&mail_ports(), true), ethernet, &login(80, Link::Ethernet, &[10], &[])));
    }

    #[test]
    fn the_filter_of_wifi_monitor_captures_passes_data_frames_aggregates_included() {
        // A beacon: management, not data.
        let beacon = CapturedFrame {
            ts: Timestamp(0),
            link_type: LinkType::IEEE802_11,
            data: [&[0x80u8, 0][..], &[0; 34]].concat(),
        };
        for (link, link_type) in [
            (Link::Wifi, LinkType::IEEE802_11),
            (Link::Radiotap, LinkType::IEEE802_11_RADIOTAP),
            (Link::Ppi, LinkType::PPI),
        ] {
            let dlt = pcap::Linktype(i32::try_from(link_type.0).unwrap());
            let filter = mail_filter(&mail_ports(), false, link_type);
            assert_eq!(filter.is_empty(), link == Link::Ppi, "PPI, and only PPI, goes unfiltered");
            assert!(passes(&filter, dlt, &login(110, link, &[], &[])), "{link:?}");
            let mut aggregated = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 110));
            aggregated
                .link(link)
                .handshake()
                .send_split(Side::Client, b"USER a\r\nPASS b\r\n", &[8, 8])
                .aggregate_last();
            assert!(passes(&filter, dlt, &aggregated.frames().unwrap()), "{link:?}: an A-MSDU");
            if link == Link::Wifi {
                assert!(!passes(&filter, dlt, std::slice::from_ref(&beacon)));
            }
        }
    }

    #[test]
    fn the_filter_of_every_other_link_type_read_compiles_or_is_left_out() {
        // On Linux these link types' DLT values are their LINKTYPE values.
        let filtered = [
            Link::PppEther,
            Link::CiscoHdlc,
            Link::Enc,
            Link::Pflog,
            Link::Ipnet,
            Link::NetAnalyzer,
            Link::NetAnalyzerTransparent,
        ];
        let frames_from = |link, side, server_port| {
            let mut conversation = Conversation::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], server_port));
            conversation.link(link).handshake().client(b"USER a\r\n").server(b"+OK\r\n").frames_from(side).unwrap()
        };
        for link in filtered {
            let link_type = link.link_type();
            let dlt = pcap::Linktype(i32::try_from(link_type.0).unwrap());
            let filter = mail_filter(&mail_ports(), false, link_type);
            for side in [Side::Client, Side::Server] {
                assert!(passes(&filter, dlt, &frames_from(link, side, 110)), "{link:?} {side:?}");
                assert!(!passes(&filter, dlt, &frames_from(link, side, 80)), "{link:?} {side:?}");
            }
        }
        // libpcap's PPP filters drop what is read there: the server's frames, their fields
        // compressed, and Cisco HDLC frames in a PPP-in-HDLC capture.
        for (link, dropped) in
            [(Link::Ppp, (Link::Ppp, Side::Server)), (Link::PppHdlc, (Link::CiscoHdlc, Side::Client))]
        {
            let dlt = pcap::Linktype(i32::try_from(link.link_type().0).unwrap());
            assert_eq!(mail_filter(&mail_ports(), false, link.link_type()), "", "{link:?}");
            assert!(passes("tcp port 110", dlt, &frames_from(link, Side::Client, 110)), "{link:?}");
            let (framing, side) = dropped;
            assert!(!passes("tcp port 110", dlt, &frames_from(framing, side, 110)), "{link:?}: libpcap reads them now");
        }
        for (link, dlt) in [(Link::Nflog, 239), (Link::Erf, 197), (Link::Pktap, 258)] {
            let filter = mail_filter(&mail_ports(), false, link.link_type());
            assert_eq!(filter, "", "{link:?}");
            let refused = Capture::dead(pcap::Linktype(dlt)).unwrap().compile("tcp port 110", true);
            assert!(refused.is_err(), "{link:?}: libpcap compiles filters for it now");
        }
    }

    #[test]
    fn the_filter_of_cooked_and_raw_captures_compiles_and_passes_mail() {
        // libpcap compiles for DLT values: raw IP is DLT_RAW (12 on Linux), not LINKTYPE_RAW.
        for (link, link_type, dlt) in [(Link::LinuxSll, LinkType::LINUX_SLL, 113), (Link::RawIp, LinkType::RAW, 12)] {
            let filter = mail_filter(&mail_ports(), false, link_type);
            assert!(passes(&filter, pcap::Linktype(dlt), &login(143, link, &[], &[])), "{link:?}");
            assert!(!passes(&filter, pcap::Linktype(dlt), &login(80, link, &[], &[])), "{link:?}");
        }
    }
}
