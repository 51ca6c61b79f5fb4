//! The mail-server TLS posture inventory (`credwatch posture`), on captures written by the repo's
//! pcap writer: a server offering STARTTLS, one not offering it, one advertising LOGINDISABLED,
//! and one whose capability list changes between sessions.

mod common;

use std::net::SocketAddr;

use credwatch::capture::Timestamp;
use credwatch::pcapwriter::{interleave, write_pcap_file, CapturedFrame, Conversation, Side};
use serde_json::Value;

fn session(server: SocketAddr, client_port: u16, start: u64, lines: &[(Side, &[u8])]) -> Vec<CapturedFrame> {
    let mut conversation = Conversation::new(([192, 0, 2, 80], client_port), server);
    conversation.start_at(Timestamp::from_secs_nanos(1_795_770_000 + start, 0)).handshake();
    for (side, bytes) in lines {
        match side {
            Side::Client => conversation.client(bytes),
            Side::Server => conversation.server(bytes),
        };
    }
    conversation.fin(Side::Client).frames().unwrap()
}

fn posture(frames: Vec<CapturedFrame>) -> (Vec<Value>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("posture.pcap");
    write_pcap_file(&path, &frames).unwrap();
    let postures = common::read_json(&[&path], &[]);
    let output = common::credwatch(&["posture", "--format", "json", path.to_str().unwrap()], &[]);
    let only = common::parse_lines(&output.stdout);
    assert!(only.iter().all(|e| e["event_type"] == "server_posture"), "posture --format json prints postures only");
    (postures, only)
}

fn find(postures: &[Value], port: u16) -> &Value {
    postures.iter().find(|p| p["event_type"] == "server_posture" && p["port"] == port).expect("a posture for the port")
}

const S: Side = Side::Server;
const C: Side = Side::Client;

#[test]
fn each_server_is_classified_with_its_evidence() {
    let ip = [198, 51, 100, 90];
    let offering = session(
        (ip, 143).into(),
        50001,
        0,
        &[
            (S, b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
            (C, b"a LOGIN alice Posture-Pass-1\r\n"),
            (S, b"a OK\r\n"),
        ],
    );
    let not_offering = session(
        (ip, 25).into(),
        50002,
        1,
        &[
            (S, b"220 mx ESMTP\r\n"),
            (C, b"EHLO me\r\n"),
            (S, b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 bye\r\n"),
        ],
    );
    let login_disabled = session(
        (ip, 10143).into(),
        50003,
        2,
        &[
            (S, b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
            (C, b"a STARTTLS\r\n"),
            (S, b"a OK go\r\n"),
        ],
    );
    let (events, only) = posture(interleave([offering, not_offering, login_disabled]));
    let imap = find(&events, 143);
    assert_eq!(imap["class"], "tls_optional");
    assert_eq!(imap["cleartext_logins"], 1);
    assert_eq!(imap["plaintext_mechanisms"], serde_json::json!(["AUTH=PLAIN", "LOGIN"]));
    assert!(imap["evidence"][0].as_str().unwrap().contains("STARTTLS"));
    let smtp = find(&events, 25);
    assert_eq!(smtp["class"], "no_tls");
    assert_eq!(smtp["starttls_offered"], false);
    assert_eq!(smtp["sessions"], 1);
    let strict = find(&events, 10143);
    assert_eq!(strict["class"], "tls_required");
    assert_eq!(strict["login_disabled"], true);
    assert_eq!(strict["sessions_tls"], 1);
    assert_eq!(only.len(), 3);
    assert_eq!(only[0]["class"], "no_tls", "most exposed first");
}

#[test]
fn a_capability_list_that_changes_between_sessions_is_flagged() {
    let server: SocketAddr = ([198, 51, 100, 91], 587).into();
    let with_tls = session(
        server,
        50010,
        0,
        &[
            (S, b"220 mx ESMTP Postfix\r\n"),
            (C, b"EHLO a\r\n"),
            (S, b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
            (C, b"STARTTLS\r\n"),
            (S, b"220 go\r\n"),
        ],
    );
    let stripped = session(
        server,
        50011,
        5,
        &[
            (S, b"220 mx ESMTP Postfix\r\n"),
            (C, b"EHLO a\r\n"),
            (S, b"250-mx\r\n250 AUTH PLAIN\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 bye\r\n"),
        ],
    );
    let (events, _) = posture(interleave([with_tls, stripped]));
    let anomalies = common::of_type(&events, "anomaly");
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0]["anomaly"]["kind"], "starttls_stripping");
    assert_eq!(anomalies[0]["src_port"], 50011, "the session that lost STARTTLS");
    let posture = find(&events, 587);
    assert_eq!(posture["class"], "tls_optional");
    assert!(posture["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains("1 offered STARTTLS, 1 did not")));
}

#[test]
fn the_text_inventory_leads_with_the_count_of_exposed_servers() {
    let frames = session(
        ([198, 51, 100, 92], 110).into(),
        50020,
        0,
        &[
            (S, b"+OK ready\r\n"),
            (C, b"CAPA\r\n"),
            (S, b"+OK\r\nUSER\r\n.\r\n"),
            (C, b"USER bob\r\n"),
            (S, b"+OK\r\n"),
            (C, b"PASS Posture-Pass-2\r\n"),
            (S, b"+OK\r\n"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.pcap");
    write_pcap_file(&path, &frames).unwrap();
    let output = common::credwatch(&["posture", path.to_str().unwrap()], &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("1 mail server(s) seen; 1 accept passwords without TLS. no_tls: 1,"), "{text}");
    assert!(text.contains("no_tls        pop3  198.51.100.92:110"), "{text}");
    assert!(!text.contains("Posture-Pass-2"));
}

/// `posture` honours `--output` and `--format` as `read` does, writing postures only: the table
/// stays for text on standard output, every other output gets one record per server.
#[test]
fn posture_records_go_to_every_output_in_its_format() {
    let demo = common::repo_path("fixtures/demo.pcap");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inventory.jsonl");
    let file_spec = format!("file:{}", file.display());
    let output =
        common::credwatch(&["posture", "--stats", "-o", "stdout", "-o", &file_spec, demo.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.starts_with("4 mail server(s) seen; 3 accept passwords without TLS."), "{table}");

    let written = common::parse_lines(&std::fs::read(&file).unwrap());
    let kinds: Vec<&str> = written.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stats", "server_posture", "server_posture", "server_posture", "server_posture"]);
    let outputs = written[0]["outputs"].as_array().expect("the stats event counts the outputs");
    assert!(
        outputs.iter().any(|o| o["name"].as_str().is_some_and(|name| name.contains("inventory.jsonl"))),
        "{outputs:?}"
    );

    let ecs = common::credwatch(&["posture", "--format", "ecs", demo.to_str().unwrap()], &[]);
    let documents = common::parse_lines(&ecs.stdout);
    assert_eq!(documents.len(), 4);
    assert!(documents.iter().all(|d| d["credwatch"]["event_type"] == "server_posture"), "{documents:?}");
}

/// Servers that list plaintext mechanisms before TLS but refuse logins in clear asking for it
/// (Courier's POP3 with `POP3_TLS_REQUIRED`, Dovecot's IMAP `[PRIVACYREQUIRED]`, SMTP's `538`)
/// require TLS; one that accepts a login in clear as well does not.
#[test]
fn servers_refusing_logins_in_clear_for_tls_require_it() {
    let ip = [198, 51, 100, 91];
    let pop3 = session(
        (ip, 110).into(),
        50011,
        0,
        &[
            (S, b"+OK Hello there.\r\n"),
            (C, b"CAPA\r\n"),
            (S, b"+OK Here's what I can do:\r\nSTLS\r\nTOP\r\nUSER\r\nSASL LOGIN\r\nIMPLEMENTATION Courier Mail Server\r\n.\r\n"),
            (C, b"USER alice\r\n"),
            (S, b"-ERR TLS required to log in.\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"+OK Better luck next time.\r\n"),
        ],
    );
    let imap = session(
        (ip, 143).into(),
        50012,
        1,
        &[
            (S, b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
            (C, b"a LOGIN alice Posture-Pass-2\r\n"),
            (S, b"* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS\r\n"),
            (S, b"a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"),
        ],
    );
    let smtp = session(
        (ip, 587).into(),
        50013,
        2,
        &[
            (S, b"220 mx ESMTP\r\n"),
            (C, b"EHLO me\r\n"),
            (S, b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"),
            (C, b"AUTH PLAIN AGFsaWNlAFBvc3R1cmUtUGFzcy0z\r\n"),
            (S, b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"),
        ],
    );
    let accepting_too = session(
        (ip, 587).into(),
        50014,
        3,
        &[
            (S, b"220 mx ESMTP\r\n"),
            (C, b"EHLO me\r\n"),
            (S, b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"),
            (C, b"AUTH PLAIN AGFsaWNlAFBvc3R1cmUtUGFzcy0z\r\n"),
            (S, b"235 2.7.0 Authentication successful\r\n"),
        ],
    );
    let (events, _) = posture(interleave([pop3.clone(), imap.clone(), smtp.clone()]));
    for port in [110, 143, 587] {
        let server = find(&events, port);
        assert_eq!(server["class"], "tls_required", "port {port}: {server}");
        let evidence = server["evidence"].as_array().unwrap();
        assert!(
            evidence.iter().any(|line| line == "1 session(s) refused a cleartext login asking for TLS"),
            "{server}"
        );
    }
    let (events, _) = posture(interleave([pop3, imap, smtp, accepting_too]));
    assert_eq!(find(&events, 587)["class"], "tls_optional");
    assert_eq!(find(&events, 110)["class"], "tls_required");
}
