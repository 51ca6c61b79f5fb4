//! Helpers shared by the hostile-input integration tests: scripted logins, frame surgery the
//! writer does not script (sequence numbers, urgent data, IP fragments), and running the pipeline
//! in-process or the binary.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use credwatch::alert::{Event, Outcome, RedactionPolicy, UsernamePolicy};
use credwatch::output::{RepeatSummary, ServerReport, Sink};
use credwatch::pcapwriter::{write_pcap_file, CapturedFrame, Conversation, Link};
use credwatch::pipeline::{read_files, RunConfig, RunReport};

pub const CLIENT: [u8; 4] = [10, 0, 0, 1];
pub const SERVER: [u8; 4] = [10, 0, 0, 2];

/// Collects every event of a run.
#[derive(Default)]
pub struct Collect(pub Vec<Event>);

impl Sink for Collect {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        self.0.push(event.clone());
        Ok(())
    }

    fn repeat(&mut self, _summary: &RepeatSummary) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _servers: &[ServerReport], _unread: &credwatch::output::Unread) -> std::io::Result<()> {
        Ok(())
    }
}

/// The facts of a credential alert a test compares: protocol, mechanism, user name, outcome and
/// secret length.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Login {
    pub proto: &'static str,
    pub mechanism: String,
    pub username: Option<String>,
    pub outcome: Outcome,
    pub secret_length: Option<usize>,
}

pub fn logins(events: &[Event]) -> Vec<Login> {
    let mut logins: Vec<Login> = events
        .iter()
        .filter_map(|event| match event {
            Event::Credential(alert) => Some(Login {
                proto: alert.app_proto.name(),
                mechanism: alert.credential.mechanism.to_string(),
                username: alert.credential.username.clone(),
                outcome: alert.credential.outcome,
                secret_length: alert.credential.secret_length,
            }),
            Event::Anomaly(_) | Event::Session(_) | Event::Stats(_) => None,
        })
        .collect();
    logins.sort();
    logins
}

/// The anomaly kinds of a run, as their JSON names.
pub fn anomalies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Anomaly(alert) => Some(alert.anomaly.kind),
            Event::Credential(_) | Event::Session(_) | Event::Stats(_) => None,
        })
        .map(|kind| serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
        .collect()
}

/// A run configuration that shows user names in full, so tests can compare them.
pub fn full_usernames() -> RunConfig {
    let mut config = RunConfig::default();
    config.proto.policy = RedactionPolicy { username: UsernamePolicy::Full, fingerprint_key: None };
    config
}

/// Writes `frames` to a pcap in a temporary directory and runs the library pipeline on it.
pub fn run_frames(frames: &[CapturedFrame], config: &RunConfig) -> (Vec<Event>, RunReport) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.pcap");
    write_pcap_file(&path, frames).unwrap();
    let mut sink = Collect::default();
    let report = read_files(&[path], config, &mut sink).unwrap();
    (sink.0, report)
}

/// A successful POP3 USER/PASS login: greeting, USER, PASS (each split as the writer likes) and
/// the server's replies.
pub fn pop3_login(client_port: u16, user: &[u8], pass: &[u8]) -> Conversation {
    let mut conversation = Conversation::new((CLIENT, client_port), (SERVER, 110));
    conversation.link(Link::RawIp).handshake().server(b"+OK POP3 ready\r\n");
    conversation.client(&[b"USER ".as_slice(), user, b"\r\n"].concat()).server(b"+OK\r\n");
    conversation.client(&[b"PASS ".as_slice(), pass, b"\r\n"].concat()).server(b"+OK logged in\r\n");
    conversation
}

pub fn pop3_success(user: &str, pass_len: usize) -> Login {
    Login {
        proto: "pop3",
        mechanism: "USER/PASS".into(),
        username: Some(user.into()),
        outcome: Outcome::Success,
        secret_length: Some(pass_len),
    }
}

/// Runs the built binary with `args` (and `RUST_LOG` as given).
pub fn credwatch(args: &[&str], rust_log: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_credwatch"));
    command.args(args).env_remove("CREDWATCH_KEY").env("NO_COLOR", "1");
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    command.output().unwrap()
}

/// The repository root (where `fixtures/` lives).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared corpus of real captures beside the repository, when this machine has it.
pub fn shared_corpus() -> Option<PathBuf> {
    let corpus = repo().join("../shared/corpus");
    corpus.is_dir().then_some(corpus)
}

/// Capture files under `dir`, recursively, sorted.
pub fn captures_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(captures_under(&path));
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng" | "cap" | "gz")) {
            found.push(path);
        }
    }
    found.sort();
    found
}

// ---- frame surgery on raw-IP frames written by the pcapwriter ----

/// Offset of the TCP header in a raw-IP frame (IPv4 with its IHL, or IPv6 without extensions).
fn tcp_offset(frame: &[u8]) -> usize {
    match frame[0] >> 4 {
        4 => usize::from(frame[0] & 0x0f) * 4,
        6 => 40,
        version => panic!("not an IP packet: version {version}"),
    }
}

/// The frame with its TCP sequence number replaced (checksums are not rechecked by credwatch,
/// as on a capture with offloading).
pub fn with_seq(frame: &CapturedFrame, seq: u32) -> CapturedFrame {
    let mut frame = frame.clone();
    let at = tcp_offset(&frame.data) + 4;
    frame.data[at..at + 4].copy_from_slice(&seq.to_be_bytes());
    frame
}

/// The frame with URG set and the urgent pointer at `pointer`.
pub fn with_urgent(frame: &CapturedFrame, pointer: u16) -> CapturedFrame {
    let mut frame = frame.clone();
    let tcp = tcp_offset(&frame.data);
    frame.data[tcp + 13] |= 0x20;
    frame.data[tcp + 18..tcp + 20].copy_from_slice(&pointer.to_be_bytes());
    frame
}

/// Splits a raw IPv4 frame (no options) into fragments of `chunk` payload bytes (a multiple of 8).
pub fn ipv4_fragments(frame: &CapturedFrame, id: u16, chunk: usize) -> Vec<CapturedFrame> {
    let (header, payload) = frame.data.split_at(20);
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(index, piece)| {
            let offset = index * chunk;
            let more = offset + piece.len() < payload.len();
            let mut fragment = header.to_vec();
            fragment[2..4].copy_from_slice(&u16::try_from(20 + piece.len()).unwrap().to_be_bytes());
            fragment[4..6].copy_from_slice(&id.to_be_bytes());
            let flags_offset = u16::try_from(offset / 8).unwrap() | if more { 0x2000 } else { 0 };
            fragment[6..8].copy_from_slice(&flags_offset.to_be_bytes());
            fragment[10..12].copy_from_slice(&[0, 0]);
            let checksum = ipv4_checksum(&fragment);
            fragment[10..12].copy_from_slice(&checksum.to_be_bytes());
            fragment.extend_from_slice(piece);
            CapturedFrame { data: fragment, ..frame.clone() }
        })
        .collect()
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let sum: u32 = header.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]]))).sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    !u16::try_from((folded & 0xffff) + (folded >> 16)).unwrap()
}

/// Splits a raw IPv6 frame (no extension headers) into fragments of `chunk` payload bytes (a
/// multiple of 8), each with a fragment header.
pub fn ipv6_fragments(frame: &CapturedFrame, id: u32, chunk: usize) -> Vec<CapturedFrame> {
    const FRAGMENT_HEADER: u8 = 44;
    let (header, payload) = frame.data.split_at(40);
    let next_header = header[6];
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(index, piece)| {
            let offset = index * chunk;
            let more = offset + piece.len() < payload.len();
            let mut fragment = header.to_vec();
            fragment[4..6].copy_from_slice(&u16::try_from(8 + piece.len()).unwrap().to_be_bytes());
            fragment[6] = FRAGMENT_HEADER;
            let offset_flags = u16::try_from(offset).unwrap() | u16::from(more);
            fragment.extend_from_slice(&[next_header, 0]);
            fragment.extend_from_slice(&offset_flags.to_be_bytes());
            fragment.extend_from_slice(&id.to_be_bytes());
            fragment.extend_from_slice(piece);
            CapturedFrame { data: fragment, ..frame.clone() }
        })
        .collect()
}

/// Whether the frame's bytes contain `needle` (to find the frame that carries a command).
pub fn carries(frame: &CapturedFrame, needle: &[u8]) -> bool {
    frame.data.windows(needle.len()).any(|window| window == needle)
}
