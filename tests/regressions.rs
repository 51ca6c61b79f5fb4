//! Fuzzing, on the stable test side: inputs the fuzzers found (`tests/regressions/<target>/`, each
//! named after what it caught) replay through the very harnesses that found them, and the seed
//! corpora the fuzz targets start from are written here from captures of the repository's writer.
//!
//! `fuzz/run.sh` calls [`seed_corpora_drive_the_harnesses`] with `CREDWATCH_FUZZ_SEEDS=DIR` to
//! write the seeds into `DIR/<target>/`.

mod support;

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::io::Write;
use std::path::Path;

use credwatch::capture::{FileSource, LinkType};
use credwatch::decode::{Decoded, Decoder};
use credwatch::flow::FlowKey;
use credwatch::pcapwriter::{write_pcap, write_pcapng, CapturedFrame, Conversation, Encap, Link, Side, TunnelEnds};
use harness::SessionTarget;
use support::*;

/// Runs one input through a fuzz harness.
type Harness = fn(&[u8]);

/// One conversation's chunks in order: `(from_server, bytes)`.
type Chunks = Vec<(bool, &'static [u8])>;

/// Every fuzz target, by name, and how to run one input through it.
const TARGETS: &[(&str, Harness)] = &[
    ("capture_file", harness::capture_file),
    ("decode_frames", harness::decode_frames),
    ("reassembly", harness::reassembly),
    ("session_pop3", |data| harness::session(SessionTarget::Pop3, data)),
    ("session_imap", |data| harness::session(SessionTarget::Imap, data)),
    ("session_smtp", |data| harness::session(SessionTarget::Smtp, data)),
    ("session_managesieve", |data| harness::session(SessionTarget::ManageSieve, data)),
    ("session_any_port", |data| harness::session(SessionTarget::AnyPort, data)),
];

#[test]
fn kept_fuzz_findings_replay_without_panic() {
    let root = repo().join("tests/regressions");
    let mut replayed = 0;
    for (target, run) in TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else { continue };
        for entry in entries.flatten() {
            run(&std::fs::read(entry.path()).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no regression inputs under {}", root.display());
}

/// Conversations whose bytes seed the fuzzers: one login per protocol and mechanism family.
fn seed_conversations() -> Vec<(SessionTarget, Chunks)> {
    vec![
        (
            SessionTarget::Pop3,
            vec![
                (true, b"+OK POP3 ready <1.2@host>\r\n"),
                (false, b"CAPA\r\n"),
                (true, b"+OK\r\nUSER\r\nSASL PLAIN LOGIN XOAUTH2\r\nSTLS\r\n.\r\n"),
                (false, b"USER alice\r\n"),
                (true, b"+OK\r\n"),
                (false, b"PASS pw-alice\r\n"),
                (true, b"-ERR no\r\n"),
                (false, b"AUTH PLAIN\r\n"),
                (true, b"+ \r\n"),
                (false, b"AGFsaWNlAHB3LWFsaWNl\r\n"),
                (true, b"+OK\r\n"),
            ],
        ),
        (
            SessionTarget::Imap,
            vec![
                (true, b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN] ready\r\n"),
                (false, b"a1 ID (\"name\" \"fuzz\")\r\n"),
                (true, b"* ID NIL\r\na1 OK\r\n"),
                (false, b"a2 LOGIN {5}\r\n"),
                (true, b"+ go\r\n"),
                (false, b"alice {8+}\r\npw-alice\r\n"),
                (true, b"a2 NO bad\r\n"),
                (false, b"a3 AUTHENTICATE PLAIN AGFsaWNlAHB3LWFsaWNl\r\n"),
                (true, b"a3 OK done\r\n"),
            ],
        ),
        (
            SessionTarget::Smtp,
            vec![
                (true, b"220 mx ESMTP\r\n"),
                (false, b"EHLO me\r\n"),
                (true, b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH LOGIN PLAIN CRAM-MD5\r\n"),
                (false, b"AUTH LOGIN\r\n"),
                (true, b"334 VXNlcm5hbWU6\r\n"),
                (false, b"YWxpY2U=\r\n"),
                (true, b"334 UGFzc3dvcmQ6\r\n"),
                (false, b"cHctYWxpY2U=\r\n"),
                (true, b"235 ok\r\n"),
                (false, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5 LAST\r\nhello"),
            ],
        ),
        (
            SessionTarget::ManageSieve,
            vec![
                (
                    true,
                    b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\nOK\r\n",
                ),
                (false, b"PUTSCRIPT \"s\" {9+}\r\nkeep;\r\n\r\n"),
                (true, b"OK\r\n"),
                (false, b"AUTHENTICATE \"LOGIN\"\r\n"),
                (true, b"{12}\r\nVXNlcm5hbWU6\r\n"),
                (false, b"\"YWxpY2U=\"\r\n"),
                (true, b"\"UGFzc3dvcmQ6\"\r\n"),
                (false, b"{12+}\r\ncHctYWxpY2U=\r\n"),
                (true, b"OK\r\n"),
            ],
        ),
        (
            SessionTarget::AnyPort,
            vec![
                (false, b"a1 CAPABILITY\r\n"),
                (true, b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na1 OK\r\n"),
                (false, b"a2 LOGIN alice pw-alice\r\n"),
                (true, b"a2 OK\r\n"),
            ],
        ),
        (
            SessionTarget::AnyPort,
            vec![
                (false, b"CAPA\r\n"),
                (true, b"+OK\r\nUSER\r\n.\r\n"),
                (false, b"USER alice\r\nPASS pw-alice\r\n"),
                (true, b"+OK\r\n+OK\r\n"),
            ],
        ),
    ]
}

fn target_name(target: SessionTarget) -> &'static str {
    match target {
        SessionTarget::Pop3 => "session_pop3",
        SessionTarget::Imap => "session_imap",
        SessionTarget::Smtp => "session_smtp",
        SessionTarget::ManageSieve => "session_managesieve",
        SessionTarget::AnyPort => "session_any_port",
    }
}

/// The same conversations as captures (for the file and decode targets).
fn seed_captures() -> Vec<Vec<CapturedFrame>> {
    // Every link, the conversations taking turns on them.
    seed_conversations()
        .into_iter()
        .cycle()
        .zip(Link::all())
        .enumerate()
        .map(|(index, ((target, chunks), link))| {
            let mut conversation = Conversation::new((CLIENT, 40_000 + index as u16), (SERVER, target.server_port()));
            conversation.link(link).vlans(if link == Link::Ethernet { &[7] } else { &[] }).handshake();
            for (from_server, bytes) in chunks {
                conversation.send_split(if from_server { Side::Server } else { Side::Client }, bytes, &[40]);
            }
            conversation.fin(Side::Client);
            match target {
                // The capture holds the client's direction only: the server's opening is missing.
                SessionTarget::AnyPort => conversation.frames_from(Side::Client).unwrap(),
                _ => conversation.frames().unwrap(),
            }
        })
        .chain([two_greetings_one_server(), login_over_pppoe(), login_in_wifi_aggregates()])
        .chain(logins_through_newer_tunnels())
        .collect()
}

/// A login through each of the tunnels and tags added with GTP-U, so that the decode and file
/// targets start from inputs that reach their decoders.
fn logins_through_newer_tunnels() -> Vec<Vec<CapturedFrame>> {
    let ends = TunnelEnds::new([192, 0, 2, 1], [192, 0, 2, 2]);
    let encapsulations: Vec<Vec<Encap>> = vec![
        vec![Encap::GtpU { ends, uplink_teid: 1, downlink_teid: 2, extension: true }],
        vec![Encap::L2tp { ends, client_side_ids: (1, 2), server_side_ids: (3, 4), all_fields: true }],
        vec![Encap::L2tp { ends, client_side_ids: (1, 2), server_side_ids: (3, 4), all_fields: false }],
        vec![Encap::Pptp { ends, client_call_id: 1, server_call_id: 2 }],
        vec![Encap::Ethernet, Encap::Tzsp { ends, tags: true }],
        vec![Encap::Mpls { labels: vec![16] }, Encap::VxlanGpe { ends, vni: 5 }],
        vec![Encap::Ethernet, Encap::VxlanGpe { ends, vni: 5 }],
        vec![Encap::Mpls { labels: vec![16, 17] }, Encap::MplsInUdp { ends }],
        vec![Encap::VnTag { vif: 3 }, Encap::ETag { ecid: 4 }],
        vec![Encap::Ethernet, Encap::Pbb { isid: 0x0001_0000 }],
    ];
    encapsulations
        .into_iter()
        .enumerate()
        .map(|(index, encaps)| {
            let mut conversation = Conversation::new((CLIENT, 43_000 + index as u16), (SERVER, 110));
            for encap in encaps {
                conversation.encap(encap);
            }
            conversation
                .handshake()
                .server(b"+OK ready\r\n")
                .client(b"USER alice\r\nPASS pw-alice\r\n")
                .server(b"+OK\r\n+OK\r\n")
                .fin(Side::Client)
                .frames()
                .unwrap()
        })
        .collect()
}

/// A login monitored on an open Wi-Fi network, both sides bundling their segments into 802.11
/// aggregates (A-MSDU).
fn login_in_wifi_aggregates() -> Vec<CapturedFrame> {
    Conversation::new((CLIENT, 42_500), (SERVER, 110))
        .link(Link::Radiotap)
        .handshake()
        .server(b"+OK ready\r\n")
        .send_split(Side::Client, b"USER alice\r\nPASS pw-alice\r\n", &[12, 5, 9])
        .aggregate_last()
        .send_split(Side::Server, b"+OK\r\n+OK\r\n", &[5, 5])
        .aggregate_last()
        .fin(Side::Client)
        .frames()
        .unwrap()
}

/// A login on a DSL link: PPPoE inside a VLAN.
fn login_over_pppoe() -> Vec<CapturedFrame> {
    Conversation::new((CLIENT, 42_000), (SERVER, 143))
        .vlans(&[35])
        .encap(Encap::Pppoe { session: 0x0101 })
        .handshake()
        .server(b"* OK ready\r\n")
        .client(b"a1 LOGIN alice pw-alice\r\n")
        .server(b"a1 OK\r\n")
        .fin(Side::Client)
        .frames()
        .unwrap()
}

/// Two logins to one server whose greeting changed in between (a restart, an upgrade): the JSON
/// encoder must not write the first connection's server object for the second.
fn two_greetings_one_server() -> Vec<CapturedFrame> {
    let login = |greeting: &[u8], client_port| {
        Conversation::new((CLIENT, client_port), (SERVER, 110))
            .handshake()
            .server(greeting)
            .client(b"USER alice\r\n")
            .server(b"+OK\r\n")
            .client(b"PASS pw-alice\r\n")
            .server(b"+OK\r\n")
            .fin(Side::Client)
            .frames()
            .unwrap()
    };
    let mut frames = login(b"+OK Dovecot ready.\r\n", 41_000);
    frames.extend(login(b"+OK Cyrus POP3 v3 ready\r\n", 41_001));
    frames
}

/// Segments of one direction, for the reassembly target: in order, reversed, and overlapping.
fn seed_segments() -> Vec<Vec<u8>> {
    let line: &[u8] = b"USER alice\r\nPASS pw-alice\r\n";
    let pieces: Vec<(u8, u16, &[u8])> =
        line.chunks(5).enumerate().map(|(i, piece)| (0, u16::try_from(i * 5).unwrap(), piece)).collect();
    let mut reversed = pieces.clone();
    reversed.reverse();
    let overlapping = vec![(1, 0, &line[..8]), (0, 4, &line[4..20]), (2, 16, &line[16..])];
    vec![
        harness::encode_segments(u32::MAX - 10, &pieces),
        harness::encode_segments(1000, &reversed),
        harness::encode_segments(0, &overlapping),
    ]
}

/// Every seed, by target.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (target, chunks) in seed_conversations() {
        seeds.push((target_name(target), harness::encode_session(&chunks)));
    }
    for frames in seed_captures() {
        let pcap = write_pcap(Vec::new(), &frames).unwrap();
        // Compressed too, so that the fuzzer reaches the inflater from the start.
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&pcap).unwrap();
        seeds.push(("capture_file", gzip.finish().unwrap()));
        seeds.push(("capture_file", pcap));
        seeds.push(("capture_file", write_pcapng(Vec::new(), &frames).unwrap()));
        let link_type = frames.first().map_or(LinkType::ETHERNET, |frame| frame.link_type);
        let bytes: Vec<&[u8]> = frames.iter().map(|frame| frame.data.as_slice()).collect();
        seeds.push(("decode_frames", harness::encode_frames(link_type, &bytes)));
    }
    for segments in seed_segments() {
        seeds.push(("reassembly", segments));
    }
    seeds
}

/// The seeds are valid inputs of their harnesses (they run, and the session seeds really carry
/// logins the pipeline finds), and `CREDWATCH_FUZZ_SEEDS` gets them written for the fuzzers.
#[test]
fn seed_corpora_drive_the_harnesses() {
    let seeds = seeds();
    for (target, input) in &seeds {
        let (_, run) = TARGETS.iter().find(|(name, _)| name == target).unwrap();
        run(input);
    }
    for frames in seed_captures() {
        let (events, _) = run_frames(&frames, &full_usernames());
        assert!(!logins(&events).is_empty(), "a seed capture carries no login the pipeline finds");
    }
    if let Some(dir) = std::env::var_os("CREDWATCH_FUZZ_SEEDS") {
        write_seeds(Path::new(&dir), &seeds);
    }
}

fn write_seeds(dir: &Path, seeds: &[(&str, Vec<u8>)]) {
    for (index, (target, input)) in seeds.iter().enumerate() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir).unwrap();
        std::fs::write(target_dir.join(format!("seed-{index:03}")), input).unwrap();
    }
    if let Some(corpus) = shared_corpus() {
        for (index, capture) in captures_under(&corpus).iter().enumerate() {
            std::fs::copy(capture, dir.join("capture_file").join(format!("corpus-{index:03}"))).unwrap();
        }
    }
}

/// Every truncation of every frame of every fixture (and corpus) capture decodes without panic,
/// and a truncated TCP frame never yields more payload than the whole one.
#[test]
fn every_truncation_of_every_fixture_frame_decodes() {
    let mut files = captures_under(&repo().join("fixtures"));
    if let Some(corpus) = shared_corpus() {
        files.extend(captures_under(&corpus.join("real")));
    } else {
        eprintln!("shared corpus absent: only the repository's fixtures are used");
    }
    let mut frames_checked = 0;
    for file in &files {
        let Ok(mut source) = FileSource::open(file) else { continue };
        while let Ok(Some(frame)) = source.next_frame() {
            let whole_payload = match Decoder::new().decode(&frame) {
                Decoded::Tcp(packet) => Some((FlowKey::of(&packet), packet.payload.len())),
                Decoded::Skipped(_) => None,
            };
            for len in 0..frame.data.len() {
                let cut = credwatch::capture::Frame { data: &frame.data[..len], ..frame };
                if let (Decoded::Tcp(packet), Some((key, payload_len))) = (Decoder::new().decode(&cut), whole_payload) {
                    assert!(packet.payload.len() <= payload_len, "{}: a cut frame grew", file.display());
                    assert_eq!(FlowKey::of(&packet).0, key.0);
                }
            }
            frames_checked += 1;
        }
    }
    assert!(frames_checked > 20, "only {frames_checked} frames");
}
