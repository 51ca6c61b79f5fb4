//! The bundled demo capture (`fixtures/demo.pcap`, used by the README's quick start): written by
//! the scripts below with the repo's own pcap writer, and checked against its golden alerts.
//!
//! `CREDWATCH_WRITE_FIXTURES=1 cargo test --test demo` rewrites the capture and the golden file
//! after a deliberate change.

mod common;

use std::time::Duration;

use base64::Engine as _;
use credwatch::capture::Timestamp;
use credwatch::pcapwriter::{interleave, write_pcap, CapturedFrame, Conversation, Side};

/// Passwords planted in the demo; the canary test proves none of them is ever printed.
pub const DEMO_SECRETS: &[&str] =
    &["Demo-Pop3-Secret", "Demo imap {secret}", "Demo-Smtp-Secret", "Demo-Tls-Secret", "ya29.Demo-Token"];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn at(seconds: u64) -> Timestamp {
    Timestamp::from_secs_nanos(1_795_770_000 + seconds, 0)
}

fn demo_frames() -> Vec<CapturedFrame> {
    let ms = Duration::from_millis(3);
    let pop3 = Conversation::new(([192, 0, 2, 10], 50110), ([198, 51, 100, 5], 110))
        .start_at(at(0))
        .step(ms)
        .handshake()
        .server(b"+OK Dovecot (Debian) ready.\r\n")
        .client(b"CAPA\r\n")
        .server(b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN\r\n.\r\n")
        .client(b"USER alice\r\n")
        .server(b"+OK\r\n")
        .send_split(Side::Client, b"PASS Demo-Pop3-Secret\r\n", &[3, 4, 5])
        .reverse_last()
        .server(b"+OK Logged in.\r\n")
        .client(b"QUIT\r\n")
        .server(b"+OK Logging out.\r\n")
        .fin(Side::Client)
        .frames();
    let imap = Conversation::new(([192, 0, 2, 11], 50143), ([198, 51, 100, 6], 143))
        .start_at(at(1))
        .step(ms)
        .handshake()
        .server(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR STARTTLS AUTH=PLAIN] Cyrus IMAP ready\r\n")
        .client(b"a1 LOGIN \"bob@example.test\" {18}\r\n")
        .server(b"+ go ahead\r\n")
        .client(b"Demo imap {secret}\r\n")
        .server(b"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n")
        .fin(Side::Client)
        .frames();
    let smtp_blob = b64(b"\0carol@example.test\0Demo-Smtp-Secret");
    let smtp_ir = format!("AUTH PLAIN {smtp_blob}\r\n");
    let smtp = Conversation::new(([192, 0, 2, 12], 50587), ([198, 51, 100, 7], 587))
        .start_at(at(2))
        .step(ms)
        .vlans(&[100])
        .handshake()
        .server(b"220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n")
        .client(b"EHLO laptop\r\n")
        .server(b"250-mail.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
        .client(smtp_ir.as_bytes())
        .server(b"535 5.7.8 Error: authentication failed\r\n")
        .client(b"QUIT\r\n")
        .server(b"221 2.0.0 Bye\r\n")
        .fin(Side::Client)
        .frames();
    let starttls = Conversation::new(([192, 0, 2, 13], 50144), ([198, 51, 100, 6], 143))
        .start_at(at(3))
        .step(ms)
        .handshake()
        .server(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Cyrus IMAP ready\r\n")
        .client(b"s1 STARTTLS\r\n")
        .server(b"s1 OK Begin TLS negotiation now\r\n")
        .client(b"s2 LOGIN dave Demo-Tls-Secret\r\n")
        .server(b"s2 OK\r\n")
        .fin(Side::Client)
        .frames();
    let apop = Conversation::new(([192, 0, 2, 14], 50111), ([198, 51, 100, 5], 110))
        .start_at(at(4))
        .step(ms)
        .handshake()
        .server(b"+OK Dovecot (Debian) ready. <1896.697170952@mail.example.test>\r\n")
        .client(b"APOP erin c4c9334bac560ecc979e58001b3e22fb\r\n")
        .server(b"+OK Logged in.\r\n")
        .fin(Side::Client)
        .frames();
    let token = b64(b"user=frank@example.test\x01auth=Bearer ya29.Demo-Token\x01\x01");
    let xoauth = format!("x1 AUTHENTICATE XOAUTH2 {token}\r\n");
    let odd_port = Conversation::new(
        ("2001:db8::20".parse::<std::net::Ipv6Addr>().unwrap(), 50200),
        ("2001:db8::6".parse::<std::net::Ipv6Addr>().unwrap(), 10143),
    )
    .start_at(at(5))
    .step(ms)
    .handshake()
    .server(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] Dovecot ready.\r\n")
    .client(b"x0 ID (\"name\" \"Thunderbird\" \"version\" \"128.4\")\r\n")
    .server(b"* ID NIL\r\nx0 OK ID completed\r\n")
    .client(xoauth.as_bytes())
    .server(b"x1 OK Logged in\r\n")
    .fin(Side::Client)
    .frames();
    let conversations =
        [pop3, imap, smtp, starttls, apop, odd_port].map(|frames| frames.expect("scripted conversation"));
    interleave(conversations)
}

fn demo_pcap() -> Vec<u8> {
    write_pcap(Vec::new(), &demo_frames()).expect("in-memory pcap")
}

/// The golden form of an alert: everything but the flow id, which is a hash.
fn golden(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .map(|event| {
            let mut event = event.clone();
            if let Some(object) = event.as_object_mut() {
                object.remove("flow_id");
            }
            format!("{event}\n")
        })
        .collect()
}

#[test]
fn demo_capture_matches_its_script() {
    let path = common::repo_path("fixtures/demo.pcap");
    let written = demo_pcap();
    if std::env::var_os("CREDWATCH_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &written).unwrap();
    }
    assert!(std::fs::read(&path).unwrap() == written, "fixtures/demo.pcap differs from its script; see the module doc");
}

#[test]
fn demo_alerts_match_golden() {
    let events = common::read_json(&[&common::repo_path("fixtures/demo.pcap")], &[]);
    let path = common::repo_path("fixtures/demo.expected.jsonl");
    let actual = golden(&events);
    if std::env::var_os("CREDWATCH_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    assert_eq!(actual, std::fs::read_to_string(&path).unwrap());
}

#[test]
fn demo_reports_each_login_once() {
    let events = common::read_json(&[&common::repo_path("fixtures/demo.pcap")], &["--show-usernames"]);
    let alerts: Vec<(String, String, String, String)> = events
        .iter()
        .filter(|e| e["event_type"] == "cleartext_credential" || e["event_type"] == "weak_credential")
        .map(|e| {
            (
                e["event_type"].as_str().unwrap().to_string(),
                e["credential"]["mechanism"].as_str().unwrap().to_string(),
                e["credential"]["username"].as_str().unwrap().to_string(),
                e["credential"]["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("cleartext_credential", "USER/PASS", "alice", "success"),
        ("cleartext_credential", "LOGIN", "bob@example.test", "success"),
        ("cleartext_credential", "AUTH PLAIN", "carol@example.test", "failure"),
        ("weak_credential", "APOP", "erin", "success"),
        ("cleartext_credential", "AUTHENTICATE XOAUTH2", "frank@example.test", "success"),
    ];
    let expected: Vec<_> =
        expected.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string())).collect();
    assert_eq!(alerts, expected);
    let xoauth = events.iter().find(|e| e["credential"]["mechanism"] == "AUTHENTICATE XOAUTH2").unwrap();
    assert_eq!(xoauth["credential"]["secret"], "token");
    assert_eq!(xoauth["client"]["software"], "Thunderbird 128.4");
    assert_eq!(xoauth["dest_ip"], "2001:db8::6");
    let smtp = events.iter().find(|e| e["app_proto"] == "smtp").unwrap();
    assert_eq!(smtp["vlan"], serde_json::json!([100]));
    assert_eq!(smtp["remediation"], "client_skipped_starttls");
    let text = String::from_utf8(common::credwatch(&["read", "fixtures/demo.pcap"], &[]).stdout).unwrap();
    for secret in DEMO_SECRETS {
        assert!(!text.contains(secret));
    }
}

/// Every field a JSON example in the documentation shows for a demo alert is what `read` prints
/// for that connection (ECS examples: all but the sensor's host name), so that the examples
/// stay true, `flow_id` included.
#[test]
fn documented_examples_match_the_demo() {
    let demo = common::repo_path("fixtures/demo.pcap");
    let native = common::read_json(&[&demo], &[]);
    let output = common::credwatch(&["read", "--format", "ecs", demo.to_str().unwrap()], &[]);
    let ecs = common::parse_lines(&output.stdout);
    let mut checked = 0;
    for doc in ["README.md", "docs/outputs.md"] {
        let text = std::fs::read_to_string(common::repo_path(doc)).unwrap();
        for block in text.split("```json\n").skip(1).filter_map(|rest| rest.split("```").next()) {
            let Ok(example) = serde_json::from_str::<serde_json::Value>(block) else { continue };
            // The same record: of the same type, on the same connection (or, for a server's
            // report, of the same server).
            let identity = |event: &serde_json::Value| {
                let native = [&event["event_type"], &event["src_port"], &event["ip"], &event["port"]];
                let ecs = [&event["credwatch"]["event_type"], &event["source"]["port"]];
                format!("{native:?} {ecs:?}")
            };
            let actual = if example.get("credwatch").is_some() { &ecs } else { &native };
            let Some(event) = actual.iter().find(|event| identity(event) == identity(&example)) else {
                panic!("{doc}: no demo record for the example {}", identity(&example));
            };
            assert_shown_fields_match(doc, &example, event, "");
            checked += 1;
        }
    }
    assert!(checked >= 3, "the examples were found ({checked})");
}

fn assert_shown_fields_match(doc: &str, example: &serde_json::Value, actual: &serde_json::Value, path: &str) {
    match example {
        serde_json::Value::Object(fields) => {
            for (name, value) in fields {
                let path = format!("{path}.{name}");
                if path == ".observer.hostname" {
                    continue;
                }
                assert_shown_fields_match(doc, value, &actual[name.as_str()], &path);
            }
        }
        shown => assert_eq!(shown, actual, "{doc}: {path} differs from what the demo prints"),
    }
}
