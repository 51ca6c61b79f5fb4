//! Evasion, ambiguity and flood tests: captures written by the repository's writer, then bent the
//! way an attacker (or a broken network) would bend them. Each asserts what credwatch does.

mod support;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use credwatch::alert::Outcome;
use credwatch::capture::Timestamp;
use credwatch::decode::{TcpFlags, TcpPacket, VlanStack};
use credwatch::flow::FlowLimits;
use credwatch::pcapwriter::{CapturedFrame, Conversation, Link, Side};
use credwatch::pipeline::{Engine, RunConfig, RunReport};
use proptest::prelude::*;
use support::*;

// ---- evasion and ambiguity ----

#[test]
fn overlap_with_different_bytes_keeps_the_first_copy_and_raises_an_anomaly() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    conversation.link(Link::RawIp).handshake().server(b"+OK ready\r\n");
    conversation.client(b"USER alice\r\n").retransmit_last_with(0, b"USER mallo\r\n").server(b"+OK\r\n");
    conversation.client(b"PASS secret-1\r\n").server(b"+OK logged in\r\n");
    let (events, report) = run_frames(&conversation.frames().unwrap(), &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)], "first copy wins");
    assert_eq!(anomalies(&events), ["overlap_different_data"]);
    assert_eq!(report.engine.flow.reassembly.overlaps_differing, 1);
}

/// A connection picked up midway (no handshake) whose side's first captured segment is a
/// keepalive probe: its garbage byte is not the start of that side's stream.
#[test]
fn a_keepalive_first_on_a_connection_picked_up_midway_hides_nothing() {
    for keepalive_from in [Side::Client, Side::Server] {
        let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
        conversation.link(Link::RawIp).keepalive(keepalive_from).server(b"+OK POP3 ready\r\n");
        conversation.keepalive(Side::Client).client(b"USER alice\r\n").server(b"+OK\r\n");
        conversation.client(b"PASS secret-1\r\n").server(b"+OK logged in\r\n");
        let (events, _) = run_frames(&conversation.frames().unwrap(), &full_usernames());
        assert_eq!(logins(&events), [pop3_success("alice", 8)], "{keepalive_from:?}");
        let greeting = events.iter().find_map(|event| match event {
            credwatch::alert::Event::Credential(alert) => alert.server.greeting.clone(),
            _ => None,
        });
        assert_eq!(greeting.as_deref(), Some("+OK POP3 ready"), "{keepalive_from:?}");
    }
}

#[test]
fn differing_overlaps_are_counted_each_and_reported_once_per_flow() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    conversation.link(Link::RawIp).handshake();
    // Out of order (the last segment first), then that segment twice more with other bytes.
    conversation.send_split(Side::Server, b"+OK ready\r\n", &[3]).swap_last(0, 3);
    conversation.retransmit_last_with(0, b"xy").retransmit_last_with(0, b"ab");
    conversation.client(b"USER alice\r\n").server(b"+OK\r\n").client(b"PASS pw\r\n").server(b"+OK\r\n");
    let (events, report) = run_frames(&conversation.frames().unwrap(), &full_usernames());
    assert_eq!(anomalies(&events), ["overlap_different_data"]);
    assert_eq!(report.engine.flow.reassembly.overlaps_differing, 2);
    assert_eq!(logins(&events), [pop3_success("alice", 2)]);
}

/// A segment injected far beyond the receive window (2 MiB ahead) carrying a fake login is
/// dropped and counted; the real login behind it is still found.
#[test]
fn segment_beyond_the_window_is_dropped_and_the_real_login_found() {
    let conversation = pop3_login(40_000, b"alice", b"pw-alice");
    let mut frames = conversation.frames().unwrap();
    let user_frame = frames.iter().position(|f| carries(f, b"USER alice")).unwrap();
    let client_next = conversation.next_seq(Side::Client);
    let mut fake = pop3_login(40_000, b"evil", b"pw-evil").frames().unwrap();
    let fake_user = fake.iter().position(|f| carries(f, b"USER evil")).unwrap();
    let injected = with_seq(&fake.swap_remove(fake_user), client_next.wrapping_add(2 << 20));
    frames.insert(user_frame, CapturedFrame { ts: frames[user_frame].ts, ..injected });
    let (events, report) = run_frames(&frames, &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
    assert_eq!(report.engine.flow.reassembly.dropped_out_of_window, u64::try_from(b"USER evil\r\n".len()).unwrap());
}

/// Just past the reorder window (64 KiB by default) but within what a sender may have in flight:
/// one injected segment must not make the stream skip over the real login.
#[test]
fn one_segment_just_past_the_reorder_window_does_not_blind_the_stream() {
    let conversation = pop3_login(40_000, b"alice", b"pw-alice");
    let mut frames = conversation.frames().unwrap();
    let user_frame = frames.iter().position(|f| carries(f, b"USER alice")).unwrap();
    let seq = conversation.next_seq(Side::Client);
    let injected = with_seq(&frames[user_frame], seq.wrapping_add(100_000));
    frames.insert(user_frame, injected);
    let (events, report) = run_frames(&frames, &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
    assert_eq!(report.engine.flow.reassembly.gaps, 0);
    assert!(report.engine.flow.reassembly.dropped_out_of_window > 0);
}

#[test]
fn spoofed_rst_before_the_login_does_not_hide_it() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    conversation.link(Link::RawIp).handshake().server(b"+OK ready\r\n").rst(Side::Server);
    conversation.client(b"USER alice\r\n").server(b"+OK\r\n");
    conversation.client(b"PASS pw-alice\r\n").server(b"+OK logged in\r\n");
    let (events, _) = run_frames(&conversation.frames().unwrap(), &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
}

/// Urgent data is delivered in line (as most stacks do, SO_OOBINLINE aside): the byte at the
/// urgent pointer is part of the password.
#[test]
fn urgent_data_stays_in_the_stream() {
    let conversation = pop3_login(40_000, b"alice", b"pw-alice");
    let frames: Vec<CapturedFrame> = conversation
        .frames()
        .unwrap()
        .iter()
        .map(|frame| if carries(frame, b"PASS ") { with_urgent(frame, 6) } else { frame.clone() })
        .collect();
    let (events, _) = run_frames(&frames, &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
}

#[test]
fn ipv4_fragments_carrying_the_login_are_reassembled() {
    let frames = pop3_login(40_000, b"alice", b"pw-alice").frames().unwrap();
    let fragmented: Vec<CapturedFrame> = frames
        .iter()
        .enumerate()
        .flat_map(|(index, frame)| {
            if carries(frame, b"USER ") || carries(frame, b"PASS ") {
                let mut pieces = ipv4_fragments(frame, u16::try_from(index).unwrap(), 8);
                pieces.reverse();
                pieces
            } else {
                vec![frame.clone()]
            }
        })
        .collect();
    assert!(fragmented.len() > frames.len() + 4);
    let (events, report) = run_frames(&fragmented, &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
    assert_eq!(report.decode.fragments_reassembled, 2);
}

#[test]
fn ipv6_fragments_carrying_the_login_are_reassembled() {
    let client = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let server = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    let mut conversation = Conversation::new((client, 40_000), (server, 143));
    conversation.link(Link::RawIp).handshake().server(b"* OK IMAP ready\r\n");
    conversation.client(b"a1 LOGIN alice pw-alice\r\n").server(b"a1 OK done\r\n");
    let fragmented: Vec<CapturedFrame> = conversation
        .frames()
        .unwrap()
        .iter()
        .flat_map(|frame| if carries(frame, b"LOGIN") { ipv6_fragments(frame, 7, 16) } else { vec![frame.clone()] })
        .collect();
    let (events, report) = run_frames(&fragmented, &full_usernames());
    let found = logins(&events);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].proto, found[0].username.as_deref()), ("imap", Some("alice")));
    assert_eq!(found[0].outcome, Outcome::Success);
    assert_eq!(report.decode.fragments_reassembled, 1);
}

#[test]
fn one_byte_segments_carry_the_login() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    conversation.link(Link::RawIp).handshake().send_split(Side::Server, b"+OK ready\r\n", &[1]);
    conversation.send_split(Side::Client, b"USER alice\r\n", &[1]).send_split(Side::Server, b"+OK\r\n", &[1]);
    conversation.send_split(Side::Client, b"PASS pw-alice\r\n", &[1]).server(b"+OK logged in\r\n");
    let (events, report) = run_frames(&conversation.frames().unwrap(), &full_usernames());
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
    assert!(report.engine.flow.reassembly.segments > 40);
}

/// A line of 1 MiB without CRLF costs at most the line limit, is counted, and the login that
/// follows the next LF is found.
#[test]
fn a_megabyte_without_crlf_is_dropped_as_one_overlong_line() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    conversation.link(Link::RawIp).handshake().server(b"+OK ready\r\n");
    conversation.client(&vec![b'A'; 1 << 20]).client(b"\r\n").server(b"-ERR what\r\n");
    conversation.client(b"USER alice\r\n").server(b"+OK\r\n").client(b"PASS pw-alice\r\n").server(b"+OK\r\n");
    let mut config = full_usernames();
    config.proto.inspection_depth = 4 << 20;
    let (events, report) = run_frames(&conversation.frames().unwrap(), &config);
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
    assert_eq!(report.engine.proto.overlong_lines, 1);
}

/// An IMAP literal announcing 4 GiB is skipped unread, and the session reads the next command.
#[test]
fn a_four_gigabyte_literal_is_not_buffered() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 143));
    conversation.link(Link::RawIp).handshake().server(b"* OK IMAP ready\r\n");
    conversation.client(b"a1 LOGIN {4294967296}\r\n").server(b"a1 BAD too big\r\n");
    conversation.client(b"a2 LOGIN bob pw-bob\r\n").server(b"a2 OK done\r\n");
    let engine_peak = run_with_peak_buffer(&conversation.frames().unwrap(), &full_usernames());
    assert!(engine_peak.buffered < 64 * 1024, "buffered {} bytes", engine_peak.buffered);
    let found = logins(&engine_peak.events);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].username.as_deref(), found[0].outcome), (Some("bob"), Outcome::Success));
}

/// A user name that is not UTF-8 is reported with `\xNN` escapes, not replaced; NUL bytes too.
#[test]
fn invalid_utf8_and_nul_in_user_names_are_escaped_losslessly() {
    let frames = pop3_login(40_000, b"al\xffi\xc3ce", b"pw-alice").frames().unwrap();
    let (events, _) = run_frames(&frames, &full_usernames());
    assert_eq!(logins(&events), [pop3_success("al\\xffi\\xc3ce", 8)]);

    let frames = pop3_login(40_001, b"bob\0x", b"pw\0bob").frames().unwrap();
    let (events, _) = run_frames(&frames, &full_usernames());
    let found = logins(&events);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].secret_length, Some(6), "the NUL is part of the password");
    let username = found[0].username.clone().unwrap();
    assert!(username.starts_with("bob") && username.ends_with('x') && username.len() > 4, "{username:?}");
}

/// A million pipelined commands in one flow: the pending queue stays bounded (oldest dropped, and
/// counted), and the password at the end is still reported when the flow ends.
#[test]
fn a_million_pipelined_commands_keep_memory_bounded() {
    const COMMANDS: usize = 1_000_000;
    let mut config = full_usernames().proto;
    config.inspection_depth = u64::MAX;
    let mut engine = Engine::new(FlowLimits::default(), config);
    let mut events = Vec::new();
    let mut client = Segments::new(40_000, 110);
    engine.process(&client.packet(Some(b"+OK ready\r\n"), true), client.tick(), &mut events);
    let mut stream = b"NOOP\r\n".repeat(COMMANDS);
    stream.extend_from_slice(b"USER alice\r\nPASS pw-alice\r\n");
    for chunk in stream.chunks(1460) {
        engine.process(&client.packet(Some(chunk), false), client.tick(), &mut events);
    }
    let stats = engine.stats();
    assert!(stats.buffered_bytes < 64 * 1024);
    assert!(stats.proto.pending_dropped >= (COMMANDS - 64) as u64, "dropped {}", stats.proto.pending_dropped);
    engine.finish(&mut events);
    let found = logins(&events);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].username.as_deref(), found[0].outcome), (Some("alice"), Outcome::Unknown));
}

// ---- floods ----

/// Builds TCP packets directly (no capture file), for floods of a million packets.
struct Segments {
    client_port: u16,
    server_port: u16,
    client_seq: u32,
    server_seq: u32,
    now: Timestamp,
}

impl Segments {
    fn new(client_port: u16, server_port: u16) -> Segments {
        Segments {
            client_port,
            server_port,
            client_seq: 1000,
            server_seq: 9000,
            now: Timestamp::from_secs_nanos(1_700_000_000, 0),
        }
    }

    fn tick(&mut self) -> Timestamp {
        self.now = self.now.saturating_add(Duration::from_micros(10));
        self.now
    }

    /// A data segment, from the server when `from_server`, continuing its direction's stream and
    /// acknowledging the other's.
    fn packet<'a>(&mut self, payload: Option<&'a [u8]>, from_server: bool) -> TcpPacket<'a> {
        let payload = payload.unwrap_or_default();
        let (client, server) = (IpAddr::from(CLIENT), IpAddr::from(SERVER));
        let len = u32::try_from(payload.len()).unwrap();
        let (src, dst, src_port, dst_port, seq) = if from_server {
            self.server_seq = self.server_seq.wrapping_add(len);
            (server, client, self.server_port, self.client_port, self.server_seq.wrapping_sub(len))
        } else {
            self.client_seq = self.client_seq.wrapping_add(len);
            (client, server, self.client_port, self.server_port, self.client_seq.wrapping_sub(len))
        };
        TcpPacket {
            src,
            dst,
            src_port,
            dst_port,
            seq,
            ack: if from_server { self.client_seq } else { self.server_seq },
            flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
            window: 65_535,
            vlan: VlanStack::default(),
            tunnel: 0,
            payload,
            payload_missing: 0,
        }
    }
}

/// A SYN from a spoofed address to the POP3 port.
fn syn(source: u32, port: u16) -> TcpPacket<'static> {
    TcpPacket {
        src: IpAddr::from(source.to_be_bytes()),
        dst: IpAddr::from(SERVER),
        src_port: port,
        dst_port: 110,
        seq: source,
        ack: 0,
        flags: TcpFlags(TcpFlags::SYN),
        window: 1024,
        vlan: VlanStack::default(),
        tunnel: 0,
        payload: &[],
        payload_missing: 0,
    }
}

/// A million half-open flows against a table of 4096: the table never grows past its bound,
/// evictions are counted, and a real login in the middle of the flood is still found.
#[test]
fn a_million_half_open_flows_stay_within_the_flow_limit() {
    const FLOWS: u32 = 1_000_000;
    let limits = FlowLimits { max_flows: 4096, ..FlowLimits::default() };
    let mut engine = Engine::new(limits, full_usernames().proto);
    let mut events = Vec::new();
    let mut login = Segments::new(40_000, 110);
    let script: [(&[u8], bool); 5] = [
        (b"+OK ready\r\n", true),
        (b"USER alice\r\n", false),
        (b"+OK\r\n", true),
        (b"PASS pw-alice\r\n", false),
        (b"+OK logged in\r\n", true),
    ];
    // The login is active during the flood (a packet every 500 SYNs), so it stays among the
    // recently seen flows and eviction spares it.
    let mut steps = script.iter();
    let mut peak_flows = 0;
    for source in 0..FLOWS {
        let ts = login.tick();
        engine.process(&syn(0x0b00_0000 + source, 1024 + (source % 60_000) as u16), ts, &mut events);
        if source >= 500_000 && source % 500 == 0 {
            if let Some((payload, from_server)) = steps.next() {
                engine.process(&login.packet(Some(payload), *from_server), login.tick(), &mut events);
            }
        }
        if source % 10_000 == 0 {
            peak_flows = peak_flows.max(engine.stats().active_flows);
        }
    }
    let stats = engine.stats();
    assert!(peak_flows <= 4096 && stats.active_flows <= 4096);
    assert!(stats.flow.flows_evicted >= u64::from(FLOWS) - 4096 - 1, "evicted {}", stats.flow.flows_evicted);
    engine.finish(&mut events);
    assert_eq!(logins(&events), [pop3_success("alice", 8)]);
}

/// Peak of what the engine held while it read `frames`, and the events.
struct EnginePeak {
    buffered: usize,
    events: Vec<credwatch::alert::Event>,
}

fn run_with_peak_buffer(frames: &[CapturedFrame], config: &RunConfig) -> EnginePeak {
    let mut decoder = credwatch::decode::Decoder::new();
    let mut engine = Engine::new(config.flow, config.proto.clone());
    let mut events = Vec::new();
    let mut buffered = 0;
    for frame in frames {
        if let credwatch::decode::Decoded::Tcp(packet) = decoder.decode(&frame.as_frame()) {
            engine.process(&packet, frame.ts, &mut events);
        }
        buffered = buffered.max(engine.stats().buffered_bytes);
    }
    engine.finish(&mut events);
    EnginePeak { buffered, events }
}

/// A flow that never sends CRLF and an IMAP literal that is never filled, beside a real login:
/// what they hold stays within the line and literal limits, and the login is found.
#[test]
fn a_flow_without_crlf_and_an_unfilled_literal_stay_bounded() {
    let mut endless = Conversation::new((CLIENT, 40_001), (SERVER, 110));
    endless.link(Link::RawIp).handshake().server(b"+OK ready\r\n");
    for _ in 0..64 {
        endless.client(&[b'x'; 4096]);
    }
    let mut literal = Conversation::new((CLIENT, 40_002), (SERVER, 143));
    literal.link(Link::RawIp).handshake().server(b"* OK IMAP ready\r\n").client(b"a1 LOGIN {16000}\r\n");
    literal.server(b"+ go ahead\r\n").client(b"only a few bytes");
    let frames = credwatch::pcapwriter::interleave([
        endless.frames().unwrap(),
        literal.frames().unwrap(),
        pop3_login(40_003, b"alice", b"pw-alice").frames().unwrap(),
    ]);
    let config = full_usernames();
    let peak = run_with_peak_buffer(&frames, &config);
    let line_and_literal = config.proto.max_line + config.proto.max_literal;
    assert!(peak.buffered <= 2 * line_and_literal, "held {} bytes", peak.buffered);
    assert_eq!(logins(&peak.events), [pop3_success("alice", 8)]);
}

/// The binary under a SYN flood with `--max-flows 1000`: peak RSS stays small, the closing log
/// line counts the evictions, and the login in the same capture is reported.
#[test]
fn binary_under_a_syn_flood_stays_small_and_finds_the_login() {
    const SYNS: u32 = 200_000;
    let template = Conversation::new((CLIENT, 1), (SERVER, 110)).link(Link::RawIp).handshake().frames().unwrap();
    let mut frames: Vec<CapturedFrame> = Vec::with_capacity(SYNS as usize + 16);
    let mut ts = Timestamp::from_secs_nanos(1_600_000_000, 0);
    for source in 0..SYNS {
        let mut frame = template[0].clone();
        frame.data[12..16].copy_from_slice(&(0x0b00_0000 + source).to_be_bytes());
        ts = ts.saturating_add(Duration::from_micros(1));
        frame.ts = ts;
        frames.push(frame);
    }
    let mut login = pop3_login(40_000, b"alice", b"pw-alice");
    login.start_at(Timestamp::from_secs_nanos(1_600_000_000, 100_000_000));
    let frames = credwatch::pcapwriter::interleave([frames, login.frames().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("syn-flood.pcap");
    credwatch::pcapwriter::write_pcap_file(&path, &frames).unwrap();

    let child = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["read", "-v", "--format", "json", "--stats", "--max-flows", "1000", "--show-usernames"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let peak_kib = peak_rss_kib_while_running(child.id());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stdout.contains("\"username\":\"alice\""), "{stdout}");
    let evicted: u64 = stderr
        .split_whitespace()
        .find_map(|word| word.strip_prefix("flows_evicted="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no eviction count in {stderr}"));
    assert!(evicted >= u64::from(SYNS) - 1000 - 1, "evicted {evicted}");
    // Flows that never carried data lose nothing when evicted: no warning.
    assert!(!stderr.contains("memory bounds let data go"), "{stderr}");
    let stats = stdout.lines().find(|line| line.contains("\"event_type\":\"stats\"")).expect("a stats event");
    let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
    assert_eq!(stats["flows_evicted"], evicted);
    assert_eq!(stats["limits"]["inspected_flows_evicted"], 0);
    assert_eq!(stats["limits"]["buffer_sheds"], 0, "SYNs hold no bytes");
    if let Some(peak_kib) = peak_kib {
        assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    }
}

/// Logins in progress evicted past `--max-flows` are lost: the run says so, once, on stderr and
/// in the stats event, naming the limit to raise.
#[test]
fn evicting_logins_in_progress_is_warned_about() {
    const SESSIONS: u16 = 300;
    let sessions = (0..SESSIONS).map(|n| {
        let mut conversation = Conversation::new((CLIENT, 20_000 + n), (SERVER, 110));
        conversation.link(Link::RawIp).start_at(Timestamp::from_secs_nanos(1_600_000_000, u32::from(n) * 1000));
        conversation.handshake().server(b"+OK POP3 ready\r\n").client(b"USER alice\r\n");
        conversation.frames().unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open-logins.pcap");
    credwatch::pcapwriter::write_pcap_file(&path, &credwatch::pcapwriter::interleave(sessions)).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["read", "--format", "json", "--stats", "--max-flows", "64"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.matches("memory bounds let data go").count(), 1, "{stderr}");
    assert!(stderr.contains("--max-flows"), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stats = stdout.lines().find(|line| line.contains("\"event_type\":\"stats\"")).expect("a stats event");
    let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
    let evicted = stats["limits"]["inspected_flows_evicted"].as_u64().unwrap();
    assert!(evicted >= u64::from(SESSIONS) - 64, "{evicted} evicted while inspected");
}

/// Polls `/proc/PID/status` for VmHWM (peak resident set) until the process exits; the last value
/// read is the peak up to then. `None` where there is no procfs.
fn peak_rss_kib_while_running(pid: u32) -> Option<u64> {
    let status = format!("/proc/{pid}/status");
    let mut peak = None;
    while let Ok(text) = std::fs::read_to_string(&status) {
        if text.lines().any(|line| line.starts_with("State:") && line.contains('Z')) {
            break;
        }
        let hwm = text
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        peak = hwm.or(peak);
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

// ---- clocks ----

/// Capture time at the start of the clock tests.
const T0: u64 = 1_600_000_000;

/// A SYN from another client at `secs` seconds into the capture: a frame that only moves time.
fn syn_at(client_port: u16, secs: u64) -> CapturedFrame {
    let mut probe = Conversation::new((CLIENT, client_port), ([10, 0, 0, 9], 80));
    probe.link(Link::RawIp).start_at(Timestamp::from_secs_nanos(T0 + secs, 0)).handshake();
    probe.frames().unwrap().swap_remove(0)
}

/// `frames` read with one thread, then with two, user names in full.
fn on_one_and_two_threads(frames: &[CapturedFrame]) -> Vec<(usize, Vec<credwatch::alert::Event>, RunReport)> {
    [1, 2]
        .into_iter()
        .map(|threads| {
            let config = RunConfig { threads, ..full_usernames() };
            let (events, report) = run_frames(frames, &config);
            (threads, events, report)
        })
        .collect()
}

/// A POP3 login on `link` from port 40 000 starting at T0, a second apart, with `glitch` in
/// between its USER and its PASS.
fn login_around(link: Link, glitch: CapturedFrame) -> Vec<CapturedFrame> {
    let mut login = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    login.link(link).start_at(Timestamp::from_secs_nanos(T0, 0)).step(Duration::from_secs(1));
    login.handshake().server(b"+OK POP3 ready\r\n").client(b"USER alice\r\n").server(b"+OK\r\n");
    let mut frames = login.frames().unwrap();
    let after_user = frames.len();
    login.client(b"PASS pw-alice\r\n").server(b"+OK logged in\r\n");
    let mut rest = login.frames().unwrap().split_off(after_user);
    frames.push(glitch);
    frames.append(&mut rest);
    frames
}

#[test]
fn a_frame_stamped_years_ahead_ends_no_flow() {
    const TEN_YEARS: u64 = 10 * 365 * 86_400;
    for (threads, events, report) in on_one_and_two_threads(&login_around(Link::RawIp, syn_at(50_000, TEN_YEARS))) {
        assert_eq!(logins(&events), [pop3_success("alice", 8)], "threads {threads}");
        let greeting = events.iter().find_map(|event| match event {
            credwatch::alert::Event::Credential(alert) => alert.server.greeting.clone(),
            _ => None,
        });
        assert_eq!(greeting.as_deref(), Some("+OK POP3 ready"), "threads {threads}");
        assert_eq!(report.engine.flow.flows_timed_out, 0, "threads {threads}");
    }
}

/// An 802.11 aggregate stamped years ahead holds three packets: one frame, one glitch.
#[test]
fn the_packets_of_an_aggregate_stamped_years_ahead_are_one_glitch() {
    let mut other = Conversation::new(([10, 0, 0, 7], 41_000), ([10, 0, 0, 9], 80));
    other.link(Link::Radiotap).handshake().send_split(Side::Client, b"GET / HTTP/1.1\r\n", &[4, 4, 8]).aggregate_last();
    let mut glitch = other.frames().unwrap().into_iter().max_by_key(|frame| frame.data.len()).unwrap();
    glitch.ts = Timestamp::from_secs_nanos(T0 + 10 * 365 * 86_400, 0);
    let frames = login_around(Link::Radiotap, glitch);
    for (threads, events, report) in on_one_and_two_threads(&frames) {
        assert_eq!(logins(&events), [pop3_success("alice", 8)], "threads {threads}");
        assert_eq!(report.engine.flow.flows_timed_out, 0, "threads {threads}");
    }
}

/// After a frame stamped far ahead, idle flows still time out as the capture's own time goes on.
#[test]
fn flows_still_time_out_after_a_frame_stamped_far_ahead() {
    let mut background = Conversation::new((CLIENT, 45_000), ([10, 0, 0, 9], 80));
    background.link(Link::RawIp).start_at(Timestamp::from_secs_nanos(T0, 500_000_000));
    background.step(Duration::from_secs(5)).handshake();
    for _ in 0..150 {
        background.client(b"x");
    }
    // The glitch comes while the login is in progress; a probe later is left unanswered.
    let mut login = login_around(Link::RawIp, syn_at(50_000, 1_000_000));
    let glitch = login.iter().position(|frame| frame.ts.secs() > T0 + 3600).unwrap();
    let glitch_frame = login.remove(glitch);
    let glitch_after = login[glitch - 1].ts;
    let mut frames =
        credwatch::pcapwriter::interleave([login, background.frames().unwrap(), vec![syn_at(50_001, 100)]]);
    let glitch_at = frames.iter().position(|frame| frame.ts > glitch_after).unwrap();
    frames.insert(glitch_at, glitch_frame);
    let mut single = Vec::new();
    for (threads, events, report) in on_one_and_two_threads(&frames) {
        assert_eq!(logins(&events), [pop3_success("alice", 8)], "threads {threads}");
        // The login (idle after its last reply) and the probe (never answered) timed out.
        assert_eq!(report.engine.flow.flows_timed_out, 2, "threads {threads}");
        if threads == 1 {
            single = events;
        } else {
            assert_eq!(events, single, "the same events in the same order whatever the threads");
        }
    }
}

/// Files named in the wrong order: time goes back at the second, and its flows still time out.
#[test]
fn flows_still_time_out_in_a_file_older_than_the_one_before() {
    let mut later = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    later.link(Link::RawIp).start_at(Timestamp::from_secs_nanos(T0 + 86_400, 0)).step(Duration::from_secs(1));
    later.handshake().server(b"+OK POP3 ready\r\n").client(b"USER alice\r\n").server(b"+OK\r\n");
    later.client(b"PASS pw-alice\r\n").server(b"+OK logged in\r\n");
    let mut background = Conversation::new((CLIENT, 45_000), ([10, 0, 0, 9], 80));
    background.link(Link::RawIp).start_at(Timestamp::from_secs_nanos(T0, 500_000_000));
    background.step(Duration::from_secs(5)).handshake();
    for _ in 0..30 {
        background.client(b"x");
    }
    let earlier = credwatch::pcapwriter::interleave([background.frames().unwrap(), vec![syn_at(50_001, 10)]]);
    let dir = tempfile::tempdir().unwrap();
    let paths = [dir.path().join("tuesday.pcap"), dir.path().join("monday.pcap")];
    credwatch::pcapwriter::write_pcap_file(&paths[0], &later.frames().unwrap()).unwrap();
    credwatch::pcapwriter::write_pcap_file(&paths[1], &earlier).unwrap();
    let mut single = Vec::new();
    for threads in [1, 2] {
        let mut config = full_usernames();
        config.threads = threads;
        let mut sink = Collect::default();
        let report = credwatch::pipeline::read_files(&paths, &config, &mut sink).unwrap();
        assert_eq!(logins(&sink.0), [pop3_success("alice", 8)], "threads {threads}");
        assert_eq!(report.engine.flow.flows_timed_out, 1, "the unanswered probe, threads {threads}");
        if threads == 1 {
            single = sink.0;
        } else {
            assert_eq!(sink.0, single, "the same events in the same order whatever the threads");
        }
    }
}

// ---- property tests ----

/// How a test splits, reorders, duplicates and overlaps one message's segments.
#[derive(Clone, Debug)]
struct Mangle {
    sizes: Vec<usize>,
    /// A permutation seed: segment order is sorted by these keys.
    order: Vec<u32>,
    duplicates: Vec<usize>,
    /// Retransmissions starting at a segment and running `extra` bytes further (same bytes).
    overlaps: Vec<(usize, usize)>,
}

fn mangle() -> impl Strategy<Value = Mangle> {
    (
        prop::collection::vec(1usize..8, 1..6),
        prop::collection::vec(any::<u32>(), 32),
        prop::collection::vec(0usize..32, 0..3),
        prop::collection::vec((0usize..32, 1usize..10), 0..3),
    )
        .prop_map(|(sizes, order, duplicates, overlaps)| Mangle { sizes, order, duplicates, overlaps })
}

/// Sends `message` from `from`, split and mangled as `how` says, with capture times in order.
fn send_mangled(conversation: &mut Conversation, from: Side, message: &[u8], how: &Mangle) {
    let size_of = |segment: usize| how.sizes[segment % how.sizes.len()];
    let count = segment_count(message.len(), &how.sizes);
    conversation.send_split(from, message, &how.sizes);
    let mut wanted: Vec<usize> = (0..count).collect();
    wanted.sort_by_key(|segment| how.order[segment % how.order.len()]);
    // `batch[i]` is the segment now at position i; swaps keep capture times in order.
    let mut batch: Vec<usize> = (0..count).collect();
    for (target, segment) in wanted.iter().enumerate() {
        let position = (target..count).find(|&i| batch[i] == *segment).unwrap();
        if position != target {
            conversation.swap_last(target, position);
            batch.swap(target, position);
        }
    }
    let starts: Vec<usize> = (0..count).map(|segment| (0..segment).map(size_of).sum()).collect();
    for &duplicate in &how.duplicates {
        conversation.retransmit_last(duplicate % count);
    }
    for &(position, extra) in &how.overlaps {
        let segment = batch[position % count];
        let start = starts[segment];
        let end = (start + size_of(segment) + extra).min(message.len());
        conversation.retransmit_last_with(position % count, &message[start..end]);
    }
}

fn segment_count(len: usize, sizes: &[usize]) -> usize {
    let (mut sent, mut count) = (0, 0);
    while sent < len {
        sent += sizes[count % sizes.len()];
        count += 1;
    }
    count
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the splitting, reordering, duplication and same-byte overlaps of each message's
    /// segments, the pipeline reports the same login, and no overlap anomaly.
    #[test]
    fn mangled_segments_give_the_same_alerts(
        imap in any::<bool>(),
        user_mangle in mangle(),
        pass_mangle in mangle(),
        reply_mangle in mangle(),
    ) {
        let server_port = if imap { 143 } else { 110 };
        let (greeting, user, pass, ok): (&[u8], &[u8], &[u8], &[u8]) = if imap {
            (b"* OK IMAP ready\r\n", b"a1 CAPABILITY\r\n", b"a2 LOGIN alice \"pw alice\"\r\n", b"a2 OK logged in\r\n")
        } else {
            (b"+OK ready\r\n", b"USER alice\r\n", b"PASS pw alice\r\n", b"+OK logged in\r\n")
        };
        let first_reply: &[u8] = if imap { b"* CAPABILITY IMAP4rev1\r\na1 OK\r\n" } else { b"+OK\r\n" };
        let script = |mangled: bool| {
            let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, server_port));
            conversation.link(Link::RawIp).handshake().server(greeting);
            if mangled {
                send_mangled(&mut conversation, Side::Client, user, &user_mangle);
                conversation.server(first_reply);
                send_mangled(&mut conversation, Side::Client, pass, &pass_mangle);
                send_mangled(&mut conversation, Side::Server, ok, &reply_mangle);
            } else {
                conversation.client(user).server(first_reply).client(pass).server(ok);
            }
            conversation.fin(Side::Client).frames().unwrap()
        };
        let (expected, _) = run_frames(&script(false), &full_usernames());
        let (events, _) = run_frames(&script(true), &full_usernames());
        prop_assert_eq!(logins(&events), logins(&expected));
        prop_assert_eq!(logins(&expected).len(), 1);
        prop_assert!(anomalies(&events).is_empty(), "{:?}", anomalies(&events));
    }
}

#[test]
fn segment_counts_match_the_writer() {
    let mut conversation = Conversation::new((CLIENT, 40_000), (SERVER, 110));
    conversation.link(Link::RawIp).send_split(Side::Client, b"0123456789", &[3, 1]);
    assert_eq!(conversation.frames().unwrap().len(), segment_count(10, &[3, 1]));
}
