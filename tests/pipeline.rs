//! The pipeline end to end through the command line, on captures written by the repository's
//! pcap writer: mirror encapsulations, SPAN duplicates, tunnels that must not mix, and the
//! thread count changing nothing (on written captures and on the real corpus).

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use credwatch::pcapwriter::{
    interleave, write_pcap_cut, write_pcap_file, write_pcapng_file, CapturedFrame, Conversation, Encap, GeneveOption,
    Link, Side, TunnelEnds,
};
use serde_json::Value;

const CLIENT: [u8; 4] = [10, 20, 0, 5];
const SERVER: [u8; 4] = [10, 20, 0, 9];

/// `credwatch read -f json --threads N` on `path`: its stdout, checked to have succeeded.
fn read_json(path: &Path, threads: usize) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["read", "-f", "json", "--show-usernames", "--threads", &threads.to_string()])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "credwatch failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The alerts (not the server reports and postures) of a run.
fn alerts(path: &Path, threads: usize) -> Vec<Value> {
    read_json(path, threads)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|event| !matches!(event["event_type"].as_str(), Some("server_report" | "server_posture")))
        .collect()
}

/// A POP3 login, accepted, from CLIENT to SERVER.
fn pop3_login(user: &str) -> Conversation {
    let mut conversation = Conversation::new((CLIENT, 40_110), (SERVER, 110));
    common::script::pop3_login(&mut conversation, user).fin(Side::Client);
    conversation
}

/// An IMAP login, refused.
fn imap_login(user: &str) -> Conversation {
    let mut conversation = Conversation::new((CLIENT, 40_143), (SERVER, 143));
    conversation
        .handshake()
        .server(b"* OK IMAP ready\r\n")
        .client(format!("a1 LOGIN {user} not-a-real-password\r\n").as_bytes())
        .server(b"a1 NO wrong\r\n")
        .fin(Side::Client);
    conversation
}

fn write(dir: &Path, name: &str, frames: &[CapturedFrame]) -> PathBuf {
    let path = dir.join(name);
    write_pcap_file(&path, frames).unwrap();
    path
}

fn ip(value: &Value) -> IpAddr {
    value.as_str().unwrap().parse().unwrap()
}

/// Exactly one credential alert, for the inner endpoints, with the expected outcome.
fn assert_one_login(alerts: &[Value], port: u16, outcome: &str, what: &str) {
    assert_eq!(alerts.len(), 1, "{what}: {alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["event_type"], "cleartext_credential", "{what}");
    assert_eq!((ip(&alert["src_ip"]), ip(&alert["dest_ip"])), (IpAddr::from(CLIENT), IpAddr::from(SERVER)), "{what}");
    assert_eq!(alert["dest_port"], port, "{what}");
    assert_eq!(alert["credential"]["outcome"], outcome, "{what}");
}

fn ends() -> TunnelEnds {
    TunnelEnds::new([192, 0, 2, 1], [192, 0, 2, 2])
}

/// GTP-U with different TEIDs each way, as the two ends assign them.
fn gtp_u(ends: TunnelEnds, extension: bool) -> Encap {
    Encap::GtpU { ends, uplink_teid: 0x0100_0001, downlink_teid: 0x0200_0002, extension }
}

/// L2TP with different tunnel and session ids each way, as the two ends assign them.
fn l2tp(ends: TunnelEnds, all_fields: bool) -> Encap {
    Encap::L2tp { ends, client_side_ids: (11, 12), server_side_ids: (21, 22), all_fields }
}

/// PPTP with different call ids each way, as the two ends assign them.
fn pptp(ends: TunnelEnds) -> Encap {
    Encap::Pptp { ends, client_call_id: 0x4001, server_call_id: 0x8002 }
}

/// Every encapsulation the decoder peels, as (name, VLAN ids, steps innermost first).
fn encapsulations() -> Vec<(&'static str, Vec<u16>, Vec<Encap>)> {
    let gre = |key| Encap::Gre { ends: ends(), key, sequence: true, checksum: false };
    let option = GeneveOption { class: 0x0103, option_type: 1, data: vec![0, 0, 0, 42] };
    vec![
        ("802.1Q", vec![10], vec![]),
        ("QinQ", vec![10, 20], vec![]),
        ("VXLAN", vec![], vec![Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 4242 }]),
        ("GENEVE carrying IP", vec![], vec![Encap::Geneve { ends: ends(), vni: 7, options: vec![option] }]),
        (
            "GENEVE carrying Ethernet",
            vec![],
            vec![Encap::Ethernet, Encap::Geneve { ends: ends(), vni: 7, options: vec![] }],
        ),
        ("GRE", vec![], vec![gre(None)]),
        ("GRE with a key, carrying Ethernet", vec![], vec![Encap::Ethernet, gre(Some(99))]),
        ("ERSPAN II", vec![], vec![Encap::Ethernet, Encap::ErspanII { ends: ends(), session: 3, vlan: 0, index: 1 }]),
        (
            "ERSPAN III",
            vec![],
            vec![Encap::Ethernet, Encap::ErspanIII { ends: ends(), session: 3, vlan: 0, hardware_id: 2 }],
        ),
        ("MPLS", vec![], vec![Encap::Mpls { labels: vec![16, 1000] }]),
        ("MPLS inside GRE", vec![], vec![Encap::Mpls { labels: vec![16] }, gre(None)]),
        ("IPv4 in IPv4", vec![], vec![Encap::IpInIp { ends: ends() }]),
        (
            "IPv4 in IPv6",
            vec![],
            vec![Encap::IpInIp {
                ends: TunnelEnds::new(
                    "2001:db8::1".parse::<IpAddr>().unwrap(),
                    "2001:db8::2".parse::<IpAddr>().unwrap(),
                ),
            }],
        ),
        ("VXLAN in QinQ", vec![100, 200], vec![Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 1 }]),
        ("PPPoE", vec![], vec![Encap::Pppoe { session: 0x1234 }]),
        ("PPPoE in 802.1Q", vec![7], vec![Encap::Pppoe { session: 1 }]),
        ("GTP-U", vec![], vec![gtp_u(ends(), false)]),
        ("GTP-U with an extension header", vec![], vec![gtp_u(ends(), true)]),
        ("L2TP, PPP compressed", vec![], vec![l2tp(ends(), false)]),
        ("L2TP with every optional field", vec![], vec![l2tp(ends(), true)]),
        ("PPTP", vec![], vec![pptp(ends())]),
        ("TZSP", vec![], vec![Encap::Ethernet, Encap::Tzsp { ends: ends(), tags: false }]),
        ("TZSP with tags", vec![], vec![Encap::Ethernet, Encap::Tzsp { ends: ends(), tags: true }]),
        ("VXLAN-GPE carrying IP", vec![], vec![Encap::VxlanGpe { ends: ends(), vni: 5 }]),
        ("VXLAN-GPE carrying Ethernet", vec![], vec![Encap::Ethernet, Encap::VxlanGpe { ends: ends(), vni: 5 }]),
        (
            "VXLAN-GPE carrying MPLS",
            vec![],
            vec![Encap::Mpls { labels: vec![16] }, Encap::VxlanGpe { ends: ends(), vni: 5 }],
        ),
        ("MPLS in UDP", vec![], vec![Encap::Mpls { labels: vec![16, 17] }, Encap::MplsInUdp { ends: ends() }]),
        ("VN-Tag", vec![], vec![Encap::VnTag { vif: 7 }]),
        ("E-tag in 802.1Q", vec![10], vec![Encap::ETag { ecid: 9 }]),
        ("Cisco MetaData", vec![], vec![Encap::CiscoMetadata { client_sgt: 10, server_sgt: 20 }]),
        ("802.1ah in a backbone VLAN", vec![20], vec![Encap::Ethernet, Encap::Pbb { isid: 0x01_0000 }]),
    ]
}

/// Encapsulations on the link that are not tunnels: the link's VLAN tags are the flow's.
fn same_link_domain(encap: &Encap) -> bool {
    matches!(encap, Encap::Pppoe { .. } | Encap::VnTag { .. } | Encap::ETag { .. } | Encap::CiscoMetadata { .. })
}

fn wrapped(mut conversation: Conversation, vlans: &[u16], encaps: &[Encap]) -> Vec<CapturedFrame> {
    conversation.vlans(vlans);
    for encap in encaps {
        conversation.encap(encap.clone());
    }
    conversation.frames().unwrap()
}

#[test]
fn a_login_inside_each_encapsulation_gives_one_alert_with_the_inner_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    for (name, vlans, encaps) in encapsulations() {
        for (login, port, outcome) in [(pop3_login("alice"), 110, "success"), (imap_login("bob"), 143, "failure")] {
            let path = write(dir.path(), "tunnel.pcap", &wrapped(login, &vlans, &encaps));
            let alerts = alerts(&path, 2);
            assert_one_login(&alerts, port, outcome, name);
            // PPPoE is a session on the same link, not a tunnel, and port extender tags are tags:
            // the link's VLAN tags are the flow's.
            if encaps.iter().all(same_link_domain) {
                let expected = if vlans.is_empty() { Value::Null } else { serde_json::json!(vlans) };
                assert_eq!(alerts[0]["vlan"], expected, "{name}");
            } else {
                assert!(alerts[0].get("vlan").is_none(), "{name}: tags outside a tunnel are not the inner flow's");
            }
        }
    }
}

/// VLAN ids and encapsulation steps around a conversation.
type Carrier = (Vec<u16>, Vec<Encap>);

#[test]
fn the_same_inner_connection_in_two_tunnels_or_vlans_gives_two_logins() {
    let dir = tempfile::tempdir().unwrap();
    let gre = |key| Encap::Gre { ends: ends(), key: Some(key), sequence: false, checksum: false };
    let other_ends = TunnelEnds::new([192, 0, 2, 1], [192, 0, 2, 3]);
    let pairs: Vec<(&str, Carrier, Carrier)> = vec![
        ("VLAN ids", (vec![10], vec![]), (vec![11], vec![])),
        ("QinQ outer ids", (vec![10, 20], vec![]), (vec![11, 20], vec![])),
        (
            "VXLAN VNIs",
            (vec![], vec![Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 1 }]),
            (vec![], vec![Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 2 }]),
        ),
        (
            "GENEVE VNIs",
            (vec![], vec![Encap::Geneve { ends: ends(), vni: 1, options: vec![] }]),
            (vec![], vec![Encap::Geneve { ends: ends(), vni: 2, options: vec![] }]),
        ),
        ("GRE keys", (vec![], vec![gre(1)]), (vec![], vec![gre(2)])),
        (
            "ERSPAN sessions",
            (vec![], vec![Encap::Ethernet, Encap::ErspanII { ends: ends(), session: 1, vlan: 0, index: 0 }]),
            (vec![], vec![Encap::Ethernet, Encap::ErspanII { ends: ends(), session: 2, vlan: 0, index: 0 }]),
        ),
        (
            "IP-in-IP outer addresses",
            (vec![], vec![Encap::IpInIp { ends: ends() }]),
            (vec![], vec![Encap::IpInIp { ends: other_ends }]),
        ),
        ("tunnelled or not", (vec![], vec![]), (vec![], vec![Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 1 }])),
        ("GTP-U endpoints", (vec![], vec![gtp_u(ends(), false)]), (vec![], vec![gtp_u(other_ends, false)])),
        ("L2TP endpoints", (vec![], vec![l2tp(ends(), false)]), (vec![], vec![l2tp(other_ends, true)])),
        ("PPTP endpoints", (vec![], vec![pptp(ends())]), (vec![], vec![pptp(other_ends)])),
        (
            "TZSP sensors",
            (vec![], vec![Encap::Ethernet, Encap::Tzsp { ends: ends(), tags: false }]),
            (vec![], vec![Encap::Ethernet, Encap::Tzsp { ends: other_ends, tags: false }]),
        ),
        (
            "VXLAN-GPE VNIs",
            (vec![], vec![Encap::VxlanGpe { ends: ends(), vni: 1 }]),
            (vec![], vec![Encap::VxlanGpe { ends: ends(), vni: 2 }]),
        ),
        (
            "MPLS in UDP endpoints",
            (vec![], vec![Encap::Mpls { labels: vec![16] }, Encap::MplsInUdp { ends: ends() }]),
            (vec![], vec![Encap::Mpls { labels: vec![16] }, Encap::MplsInUdp { ends: other_ends }]),
        ),
        (
            "802.1ah I-SIDs",
            (vec![5], vec![Encap::Ethernet, Encap::Pbb { isid: 1 }]),
            (vec![5], vec![Encap::Ethernet, Encap::Pbb { isid: 2 }]),
        ),
        ("VLANs around a VN-Tag", (vec![10], vec![Encap::VnTag { vif: 1 }]), (vec![11], vec![Encap::VnTag { vif: 1 }])),
        ("VLANs around an E-tag", (vec![10], vec![Encap::ETag { ecid: 1 }]), (vec![11], vec![Encap::ETag { ecid: 1 }])),
        (
            "VLANs around Cisco MetaData",
            (vec![10], vec![Encap::CiscoMetadata { client_sgt: 1, server_sgt: 2 }]),
            (vec![11], vec![Encap::CiscoMetadata { client_sgt: 1, server_sgt: 2 }]),
        ),
        (
            "GTP-U or L2TP between the same ends",
            (vec![], vec![gtp_u(ends(), false)]),
            (vec![], vec![l2tp(ends(), false)]),
        ),
    ];
    for (name, (vlans_a, encaps_a), (vlans_b, encaps_b)) in pairs {
        // Same addresses, ports, sequence numbers and timing; only the user names differ.
        let frames = interleave([
            wrapped(pop3_login("alice"), &vlans_a, &encaps_a),
            wrapped(pop3_login("bobby"), &vlans_b, &encaps_b),
        ]);
        let path = write(dir.path(), "two.pcap", &frames);
        for threads in [1, 3] {
            let alerts = alerts(&path, threads);
            let mut users: Vec<&str> = alerts.iter().map(|a| a["credential"]["username"].as_str().unwrap()).collect();
            users.sort_unstable();
            assert_eq!(users, ["alice", "bobby"], "{name}, {threads} threads: {alerts:#?}");
            assert!(alerts.iter().all(|a| a["credential"]["outcome"] == "success"), "{name}");
        }
    }
}

/// The `decode` counters of a `--stats` run on `path`, and how many alerts it raised.
fn decode_stats(path: &Path) -> (Value, usize) {
    let output = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["read", "-f", "json", "--stats"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "credwatch failed: {}", String::from_utf8_lossy(&output.stderr));
    let events: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let stats = events.iter().find(|event| event["event_type"] == "stats").expect("a stats event");
    let alerts = events.iter().filter(|event| event["event_type"] == "cleartext_credential").count();
    (stats["decode"].clone(), alerts)
}

/// Frames cut short inside a tunnel's header, or whose header's first byte is mangled, give no
/// alert and no panic, and each is counted as truncated, malformed or not TCP.
#[test]
fn broken_headers_of_the_newer_tunnels_are_counted_not_followed() {
    const ETHERNET_IPV4: usize = 14 + 20;
    const ETHERNET_IPV4_UDP: usize = ETHERNET_IPV4 + 8;
    let dir = tempfile::tempdir().unwrap();
    // Each encapsulation with where its header starts in the frame, and whether a first byte of
    // 0xff breaks it (an MPLS label or a port extender tag may hold anything).
    let cases: Vec<(&str, Vec<Encap>, usize, bool)> = vec![
        ("GTP-U", vec![gtp_u(ends(), true)], ETHERNET_IPV4_UDP, true),
        ("L2TP", vec![l2tp(ends(), true)], ETHERNET_IPV4_UDP, true),
        ("PPTP", vec![pptp(ends())], ETHERNET_IPV4, true),
        ("TZSP", vec![Encap::Ethernet, Encap::Tzsp { ends: ends(), tags: true }], ETHERNET_IPV4_UDP, true),
        ("VXLAN-GPE", vec![Encap::VxlanGpe { ends: ends(), vni: 5 }], ETHERNET_IPV4_UDP, true),
        (
            "MPLS in UDP",
            vec![Encap::Mpls { labels: vec![16] }, Encap::MplsInUdp { ends: ends() }],
            ETHERNET_IPV4_UDP,
            false,
        ),
        ("VN-Tag", vec![Encap::VnTag { vif: 7 }], 14, false),
        ("E-tag", vec![Encap::ETag { ecid: 9 }], 14, false),
        ("Cisco MetaData", vec![Encap::CiscoMetadata { client_sgt: 1, server_sgt: 2 }], 14, false),
        ("802.1ah", vec![Encap::Ethernet, Encap::Pbb { isid: 3 }], 14, false),
    ];
    for (name, encaps, header_at, first_byte_checked) in cases {
        let whole = wrapped(pop3_login("alice"), &[], &encaps);
        let mut variants = vec![(
            "cut",
            whole
                .iter()
                .map(|frame| CapturedFrame { data: frame.data[..header_at + 3].to_vec(), ..frame.clone() })
                .collect(),
        )];
        if first_byte_checked {
            let mut mangled = whole.clone();
            mangled.iter_mut().for_each(|frame| frame.data[header_at] = 0xff);
            variants.push(("mangled", mangled));
        }
        for (how, frames) in variants {
            let (decode, alerts) = decode_stats(&write(dir.path(), "broken.pcap", &frames));
            assert_eq!(alerts, 0, "{name}, {how}");
            let counted: u64 =
                ["truncated", "malformed", "not_tcp"].iter().map(|key| decode[key].as_u64().unwrap()).sum();
            assert_eq!(counted, frames.len() as u64, "{name}, {how}: {decode:#}");
            assert_eq!(decode["tunnelled_tcp"], 0, "{name}, {how}");
        }
    }
}

/// Every frame twice, as a SPAN port mirroring both the ingress and the egress of a switch
/// delivers them; `delay` frames later for the second copy (0: right behind the first).
fn duplicated(frames: &[CapturedFrame], delay: usize) -> Vec<CapturedFrame> {
    let mut out: Vec<CapturedFrame> = Vec::with_capacity(frames.len() * 2);
    for (i, frame) in frames.iter().enumerate() {
        out.push(frame.clone());
        if let Some(earlier) = i.checked_sub(delay).and_then(|j| frames.get(j)) {
            out.push(CapturedFrame { ts: frame.ts, ..earlier.clone() });
        }
    }
    for earlier in frames.iter().skip(frames.len().saturating_sub(delay)) {
        let ts = frames.last().unwrap().ts;
        out.push(CapturedFrame { ts, ..earlier.clone() });
    }
    out
}

#[test]
fn span_duplicates_give_no_duplicate_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let single = interleave([pop3_login("alice").frames().unwrap(), imap_login("bob").frames().unwrap()]);
    let path = write(dir.path(), "once.pcap", &single);
    let expected = alerts(&path, 1);
    assert_eq!(expected.len(), 2);
    for delay in [0, 1, 3] {
        let twice = duplicated(&single, delay);
        assert_eq!(twice.len(), single.len() * 2);
        let path = write(dir.path(), "twice.pcap", &twice);
        for threads in [1, 4] {
            let alerts = alerts(&path, threads);
            assert_eq!(alerts, expected, "delay {delay}, {threads} threads");
        }
    }
    // Also through a tunnel: a cloud mirror session can deliver both directions twice too.
    let vxlan = [Encap::Ethernet, Encap::Vxlan { ends: ends(), vni: 9 }];
    let path = write(dir.path(), "twice-vxlan.pcap", &duplicated(&wrapped(pop3_login("alice"), &[], &vxlan), 0));
    assert_one_login(&alerts(&path, 2), 110, "success", "duplicated VXLAN");
}

/// Many conversations of every kind in one capture (pcapng). Each has its own client port: some
/// encapsulations share a tunnel context (MPLS labels are not part of it, by design).
/// An IMAP login over IPv4 and a POP3 one over IPv6, both captured on `link`, give their two
/// alerts, with one thread or two.
fn assert_logins_found_on(dir: &Path, link: Link) {
    let mut frames = imap_login("alice").link(link).frames().unwrap();
    let mut over_ipv6 = Conversation::new(
        ("2001:db8::5".parse::<IpAddr>().unwrap(), 40_110),
        ("2001:db8::9".parse::<IpAddr>().unwrap(), 110),
    );
    over_ipv6
        .link(link)
        .handshake()
        .server(b"+OK POP3 ready\r\n")
        .client(b"USER alice\r\nPASS not-a-real-password\r\n")
        .server(b"+OK\r\n+OK logged in\r\n");
    frames.extend(over_ipv6.frames().unwrap());
    let path = write(dir, &format!("{link:?}.pcap"), &frames);
    for threads in [1, 2] {
        let found = alerts(&path, threads);
        assert_eq!(found.len(), 2, "{link:?}: {found:#?}");
        assert_one_login(&found[..1], 143, "failure", &format!("IMAP over {link:?}"));
        assert_eq!(
            (found[1]["app_proto"].as_str(), found[1]["dest_ip"].as_str()),
            (Some("pop3"), Some("2001:db8::9")),
            "{link:?}"
        );
        assert_eq!(found[1]["credential"]["outcome"], "success", "{link:?}");
    }
}

/// Logins over an open Wi-Fi network, captured bare (802.11) and in monitor mode (radiotap or PPI,
/// with a frame check sequence after every frame), over IPv4 and IPv6.
#[test]
fn logins_over_wifi_are_found() {
    let dir = tempfile::tempdir().unwrap();
    for link in [Link::Wifi, Link::Radiotap, Link::Ppi] {
        assert_logins_found_on(dir.path(), link);
    }
}

/// Logins in the captures other systems write: PPP links (framed, compressed, over PPPoE), Cisco
/// HDLC, firewall logs (Linux's NFLOG, the BSDs' pflog), macOS's per-process captures (PKTAP),
/// OpenBSD's IPsec interface (enc), Solaris's ipnet, and netANALYZER taps (with every frame's FCS,
/// from its preamble on in transparent mode), and Endace ERF records (Ethernet, IP).
#[test]
fn logins_in_captures_of_other_link_types_are_found() {
    let dir = tempfile::tempdir().unwrap();
    for link in Link::SERIAL_AND_CAPTURE_HEADERS {
        assert_logins_found_on(dir.path(), link);
    }
}

/// Logins on ports credwatch is not told about, each in a capture of the client's direction only
/// (asymmetric routing): the server's greeting is out of sight, so the client's first line must
/// tell the protocol.
#[test]
fn logins_captured_in_one_direction_on_unconfigured_ports_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let sessions: [(&str, u16, &[&[u8]]); 3] = [
        ("imap", 10_143, &[b"a1 CAPABILITY\r\n", b"a2 LOGIN alice not-a-real-password\r\n"]),
        ("pop3", 10_110, &[b"CAPA\r\n", b"USER alice\r\n", b"PASS not-a-real-password\r\n"]),
        ("smtp", 10_587, &[b"EHLO laptop\r\n", b"AUTH PLAIN AGFsaWNlAG5vdC1hLXJlYWwtcGFzc3dvcmQ=\r\n"]),
    ];
    for (proto, port, lines) in sessions {
        let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, port));
        conversation.handshake();
        for line in lines {
            conversation.client(line).server(b"+OK\r\n");
        }
        conversation.fin(Side::Client);
        let one_way = conversation.frames_from(Side::Client).unwrap();
        let path = write(dir.path(), &format!("{proto}-one-way.pcap"), &one_way);
        for threads in [1, 2] {
            let found = alerts(&path, threads);
            assert_one_login(&found, port, "unknown", proto);
            assert_eq!(found[0]["app_proto"], proto);
            assert_eq!(found[0]["credential"]["username"], "alice", "{proto}");
        }
    }
}

/// The server's greeting is sent and lost by the capture (the client's acknowledgements show it
/// came): what follows reads as if it had been seen. On a port that is not configured, the
/// client's opening command tells the protocol; on any port, the first reply after the loss is
/// the first command's, not a greeting, so each verdict lands on its own command.
#[test]
fn logins_after_a_greeting_the_capture_lost_are_found_with_their_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let imap: &[(&[u8], &[u8])] = &[(b"a1 LOGIN alice not-a-real-password\r\n", b"a1 OK LOGIN completed\r\n")];
    let pop3: &[(&[u8], &[u8])] = &[(b"USER alice\r\n", b"+OK\r\n"), (b"PASS not-a-real-password\r\n", b"+OK in\r\n")];
    let smtp: &[(&[u8], &[u8])] = &[
        (b"EHLO laptop\r\n", b"250-mx.example.test\r\n250 AUTH PLAIN\r\n"),
        (b"AUTH PLAIN AGFsaWNlAG5vdC1hLXJlYWwtcGFzc3dvcmQ=\r\n", b"235 2.7.0 ok\r\n"),
    ];
    let sessions = [
        ("imap", 143, b"* OK ready\r\n".as_slice(), imap),
        ("imap", 10_143, b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n", imap),
        ("pop3", 110, b"+OK POP3 ready\r\n", pop3),
        ("smtp", 2_526, b"220 mx.example.test ESMTP\r\n", smtp),
        ("smtp", 587, b"220 mx.example.test ESMTP\r\n", smtp),
    ];
    for (proto, port, greeting, exchanges) in sessions {
        let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, port));
        conversation.handshake().server(greeting).drop_last(0);
        for (command, reply) in exchanges {
            conversation.client(command).server(reply);
        }
        conversation.fin(Side::Client);
        let path = write(dir.path(), &format!("{proto}-{port}-greeting-lost.pcap"), &conversation.frames().unwrap());
        for threads in [1, 2] {
            let found = alerts(&path, threads);
            assert_one_login(&found, port, "success", &format!("{proto} on {port}"));
            assert_eq!(found[0]["app_proto"], proto);
            assert_eq!(found[0]["server"]["greeting"], Value::Null, "no reply taken for the greeting");
            if proto == "smtp" {
                assert_eq!(
                    found[0]["server"]["capabilities"],
                    serde_json::json!(["AUTH PLAIN"]),
                    "the whole EHLO reply"
                );
            }
        }
    }
}

/// A client that does not wait for the greeting, whose server's first segment (greeting and the
/// answers to those commands) the capture lost: the lost bytes hold verdicts, so the next reply
/// is not taken for the first command's (it would call a refused password accepted).
#[test]
fn replies_lost_with_the_greeting_of_a_client_that_did_not_wait_are_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, 110));
    conversation.handshake().client(b"USER alice\r\nPASS not-a-real-password\r\n");
    conversation.server(b"+OK POP3 ready\r\n+OK\r\n-ERR [AUTH] bad\r\n").drop_last(0);
    conversation.client(b"USER bob\r\nPASS not-a-real-password-2\r\n").server(b"+OK\r\n+OK logged in\r\n");
    conversation.fin(Side::Client);
    let path = write(dir.path(), "impatient-client.pcap", &conversation.frames().unwrap());
    let outcomes: Vec<(String, String)> = alerts(&path, 1)
        .iter()
        .map(|alert| (alert["credential"]["username"].to_string(), alert["credential"]["outcome"].to_string()))
        .collect();
    assert!(!outcomes.contains(&("\"alice\"".into(), "\"success\"".into())), "{outcomes:?}");
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}

/// The capture lost the client's first segment (and with both directions, the greeting): the
/// line after it still opens the session, on a configured port and, one direction captured, as
/// the opening that tells the protocol.
#[test]
fn a_login_after_the_clients_lost_first_segment_is_found() {
    let dir = tempfile::tempdir().unwrap();
    // Protocol, port, the greeting, the client's lost first line, its login and the verdict.
    type Script = (&'static str, u16, &'static [u8], &'static [u8], &'static [u8], &'static [u8]);
    let sessions: [Script; 3] = [
        ("imap", 143, b"* OK ready\r\n", b"a1 CAPABILITY\r\n", b"a2 LOGIN alice not-a-real-password\r\n", b"a2 OK\r\n"),
        ("imap", 10_143, b"* OK ready\r\n", b"a1 ID NIL\r\n", b"a2 LOGIN alice not-a-real-password\r\n", b"a2 OK\r\n"),
        (
            "smtp",
            587,
            b"220 mx ESMTP\r\n",
            b"EHLO laptop\r\n",
            b"AUTH PLAIN AGFsaWNlAG5vdC1hLXJlYWwtcGFzc3dvcmQ=\r\n",
            b"235 ok\r\n",
        ),
    ];
    for (proto, port, greeting, lost, login, verdict) in sessions {
        let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, port));
        conversation.handshake().server(greeting).drop_last(0).client(lost).drop_last(0);
        conversation.client(login).server(verdict).fin(Side::Client);
        let both = write(dir.path(), &format!("{proto}-{port}.pcap"), &conversation.frames().unwrap());
        assert_one_login(&alerts(&both, 1), port, "success", &format!("{proto} on {port}"));
        let one_way = conversation.frames_from(Side::Client).unwrap();
        let one_way = write(dir.path(), &format!("{proto}-{port}-one-way.pcap"), &one_way);
        assert_one_login(&alerts(&one_way, 1), port, "unknown", &format!("{proto} on {port}, one way"));
    }
}

/// The same opening to a server that the capture shows answering the handshake and then not
/// greeting: that server is not a mail server, and the flow is not taken for one.
#[test]
fn a_client_speaking_first_to_a_silent_server_in_sight_is_not_mail() {
    let dir = tempfile::tempdir().unwrap();
    let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, 10_143));
    conversation.handshake().client(b"a2 LOGIN alice not-a-real-password\r\n").server(b"a2 OK\r\n").fin(Side::Client);
    let path = write(dir.path(), "silent-server.pcap", &conversation.frames().unwrap());
    assert_eq!(alerts(&path, 1), Vec::<Value>::new());
}

/// A connection older than the capture, on unconfigured ports, the client's port below the
/// server's: the roles guessed from the ports are wrong until the client's first line shows them.
#[test]
fn a_login_in_a_connection_older_than_the_capture_is_found_on_any_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut conversation = Conversation::new((CLIENT, 4_000), (SERVER, 10_143));
    conversation
        .client(b"a5 LOGIN alice not-a-real-password\r\n")
        .server(b"a5 OK LOGIN completed\r\n")
        .client(b"a6 SELECT INBOX\r\n");
    let path = write(dir.path(), "midstream.pcap", &conversation.frames().unwrap());
    let found = alerts(&path, 1);
    assert_one_login(&found, 10_143, "success", "midstream");
    assert_eq!(found[0]["midstream"], true);
}

/// A command (empty for none) and the server's reply.
type Exchange = (&'static [u8], Vec<u8>);

/// Logins in a capture cut by a snap length of 128 bytes, as captures kept for long often are:
/// every segment loses what lies past its first 74 payload bytes, so each long reply (an EHLO or
/// CAPA list, an IMAP greeting or verdict with its capabilities) loses its end. Verdicts are at
/// the replies' starts, and each lands on its own command; the lists that lost their ends claim no
/// absent STARTTLS, which the whole capture shows offered.
#[test]
fn logins_in_a_capture_cut_by_a_snap_length_keep_their_verdicts_and_claim_no_absent_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let smtp_capabilities: &[u8] =
        b"250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n\
          250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
    let imap_capabilities = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN";
    let sessions: [(&str, u16, Vec<Exchange>); 3] = [
        (
            "smtp",
            587,
            vec![
                (b"", b"220 mx.example.test ESMTP\r\n".to_vec()),
                (b"EHLO laptop\r\n", smtp_capabilities.to_vec()),
                (
                    b"AUTH PLAIN AGFsaWNlAG5vdC1hLXJlYWwtcGFzc3dvcmQ=\r\n",
                    b"235 2.7.0 Authentication successful\r\n".to_vec(),
                ),
                (b"QUIT\r\n", b"221 2.0.0 Bye\r\n".to_vec()),
            ],
        ),
        (
            "pop3",
            110,
            vec![
                (b"", b"+OK POP3 ready\r\n".to_vec()),
                (
                    b"CAPA\r\n",
                    b"+OK Capability list follows\r\nTOP\r\nUSER\r\nRESP-CODES\r\nPIPELINING\r\nUIDL\r\nSTLS\r\n.\r\n"
                        .to_vec(),
                ),
                (b"USER alice\r\n", b"+OK\r\n".to_vec()),
                (
                    b"PASS not-a-real-password\r\n",
                    b"+OK Logged in, and the mailbox holds far more than a snap length\r\n".to_vec(),
                ),
                (b"QUIT\r\n", b"+OK Logging out.\r\n".to_vec()),
            ],
        ),
        (
            "imap",
            143,
            vec![
                (b"", format!("* OK [CAPABILITY {imap_capabilities}] ready\r\n").into_bytes()),
                (
                    b"a1 LOGIN alice not-a-real-password\r\n",
                    format!("a1 OK [CAPABILITY {imap_capabilities} SORT] Logged in\r\n").into_bytes(),
                ),
                (b"a2 LOGOUT\r\n", b"* BYE\r\na2 OK Logout completed.\r\n".to_vec()),
            ],
        ),
    ];
    for (proto, port, exchanges) in sessions {
        let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, port));
        conversation.handshake();
        for (command, reply) in &exchanges {
            if !command.is_empty() {
                conversation.client(command);
            }
            conversation.server(reply);
        }
        conversation.fin(Side::Client);
        let frames = conversation.frames().unwrap();
        let whole = write(dir.path(), &format!("{proto}-whole.pcap"), &frames);
        let cut = dir.path().join(format!("{proto}-snaplen-128.pcap"));
        std::fs::write(&cut, write_pcap_cut(Vec::new(), &frames, 128).unwrap()).unwrap();
        for (path, starttls) in [(&whole, Value::Bool(true)), (&cut, Value::Null)] {
            for threads in [1, 2] {
                let what = format!("{proto} in {}, {threads} thread(s)", path.display());
                let events: Vec<Value> =
                    read_json(path, threads).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
                let found: Vec<Value> =
                    events.iter().filter(|event| event["event_type"] == "cleartext_credential").cloned().collect();
                assert_one_login(&found, port, "success", &what);
                assert_eq!(found[0]["server"]["starttls_offered"], starttls, "{what}");
                let posture = events.iter().find(|event| event["event_type"] == "server_posture").unwrap();
                assert_eq!(posture["starttls_offered"], starttls, "{what}");
                assert!(events.iter().all(|event| event["event_type"] != "anomaly"), "{what}: {events:#?}");
            }
        }
    }
}

/// Client lines a snap length of 128 bytes cut, read from the file through the reassembly: an
/// IMAP `ID` cut short does not hide the `LOGIN` after it, and that `LOGIN`, cut in its password,
/// is a partial credential (its user name whole, no secret length), whatever the thread count.
#[test]
fn a_login_cut_by_a_snap_length_is_a_partial_credential() {
    let dir = tempfile::tempdir().unwrap();
    let mut conversation = Conversation::new((CLIENT, 50_000), (SERVER, 143));
    conversation
        .handshake()
        .server(b"* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] ready\r\n")
        .client(b"a1 ID (\"name\" \"Thunderbird\" \"version\" \"128.5.0\" \"os\" \"Linux\" \"vendor\" \"Mozilla\")\r\n")
        .server(b"* ID NIL\r\na1 OK ID completed\r\n")
        .client(b"a2 LOGIN alice \"not-a-real-password, long enough to pass the snap length of this capture\"\r\n")
        .server(b"a2 OK Logged in\r\n")
        .fin(Side::Client);
    let path = dir.path().join("imap-snaplen-128.pcap");
    std::fs::write(&path, write_pcap_cut(Vec::new(), &conversation.frames().unwrap(), 128).unwrap()).unwrap();
    for threads in [1, 2] {
        let found = alerts(&path, threads);
        assert_one_login(&found, 143, "success", &format!("{threads} thread(s)"));
        let credential = &found[0]["credential"];
        assert_eq!((&credential["username"], &credential["partial"]), (&Value::from("alice"), &Value::Bool(true)));
        assert_eq!(credential["secret_length"], Value::Null);
        assert_eq!(found[0]["client"]["software"], Value::Null, "the cut ID is not read");
    }
}

#[test]
fn one_thread_or_four_give_the_same_output_on_a_mixed_capture() {
    let dir = tempfile::tempdir().unwrap();
    let mut conversations = Vec::new();
    for (i, (_, vlans, encaps)) in encapsulations().into_iter().enumerate() {
        let start = credwatch::capture::Timestamp::from_secs_nanos(1_700_000_000 + i as u64, 0);
        let port = 41_000 + 2 * i as u16;
        let mut pop3 = Conversation::new((CLIENT, port), (SERVER, 110));
        pop3.start_at(start).handshake().server(b"+OK\r\n").client(format!("USER u{i}\r\nPASS p\r\n").as_bytes());
        pop3.server(b"+OK\r\n+OK\r\n").fin(Side::Server);
        let mut imap = Conversation::new((CLIENT, port + 1), (SERVER, 143));
        imap.start_at(start).handshake().server(b"* OK\r\n").client(format!("a LOGIN i{i} p\r\n").as_bytes());
        imap.server(b"a NO\r\n").fin(Side::Client);
        conversations.push(wrapped(pop3, &vlans, &encaps));
        conversations.push(wrapped(imap, &vlans, &encaps));
    }
    let path = dir.path().join("mixed.pcapng");
    write_pcapng_file(&path, &interleave(conversations)).unwrap();
    let one = read_json(&path, 1);
    assert_eq!(
        one.lines().filter(|line| line.contains("\"cleartext_credential\"")).count(),
        encapsulations().len() * 2
    );
    assert_eq!(read_json(&path, 4), one);
}

/// The real captures: every file gives the same output with one thread and with four. They are
/// the repository's own real captures (`fixtures/e2e`) and the shared corpora next to the checkout
/// (CREDWATCH_CORPUS names another folder), searched recursively.
#[test]
fn one_thread_or_four_give_the_same_output_on_every_corpus_file() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![repo.join("fixtures/e2e")];
    match std::env::var_os("CREDWATCH_CORPUS") {
        Some(dir) => dirs.push(PathBuf::from(dir)),
        None => dirs.extend(["real", "public"].map(|sub| repo.join("../shared/corpus").join(sub))),
    }
    let dirs: Vec<PathBuf> = dirs
        .into_iter()
        .filter(|dir| {
            let present = dir.is_dir();
            if !present {
                eprintln!("skipped: no corpus at {}", dir.display());
            }
            present
        })
        .collect();
    let files = credwatch::pipeline::expand_inputs(&dirs).unwrap();
    assert!(!files.is_empty(), "no captures in {dirs:?}");
    let mut alerts_seen = 0;
    for file in files.iter().map(credwatch::pipeline::Input::path) {
        let one = read_json(file, 1);
        alerts_seen += one.lines().filter(|line| line.contains("_credential\"")).count();
        assert_eq!(read_json(file, 4), one, "{}", file.display());
    }
    assert!(alerts_seen > 0, "the corpus holds logins");
}
