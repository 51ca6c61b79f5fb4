//! Every way a mail credential crosses in clear, on captures written by the repo's pcap writer:
//! each SASL mechanism on each protocol, the server's identity and who must fix it, and the
//! look-alikes that must stay quiet. Real-client captures of the same mechanisms are in
//! `tests/corpus.rs` (shared corpus) and the real-server bed (`tests/e2e/`).

mod common;

use std::net::SocketAddr;

use base64::Engine as _;
use credwatch::pcapwriter::{write_pcap_file, Conversation, Side};
use serde_json::Value;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One step of a scripted session.
enum Step<'a> {
    Client(&'a [u8]),
    Server(&'a [u8]),
    /// The previous step's segments reached the capture this many segments early (the capture's
    /// two directions merged out of order).
    CapturedEarly(usize),
    /// The capture lost the previous step's segment.
    Lost,
}
use Step::{CapturedEarly, Client, Lost, Server};

/// Writes one TCP session to a capture and returns credwatch's events for it.
fn run(server_port: u16, steps: &[Step<'_>], extra_args: &[&str]) -> Vec<Value> {
    run_from(true, server_port, steps, extra_args)
}

/// [`run`], with the connection's handshake in the capture or not (picked up mid-session).
fn run_from(handshake: bool, server_port: u16, steps: &[Step<'_>], extra_args: &[&str]) -> Vec<Value> {
    let client: SocketAddr = ([192, 0, 2, 50], 40_000).into();
    let server: SocketAddr = ([198, 51, 100, 50], server_port).into();
    let mut conversation = Conversation::new(client, server);
    if handshake {
        conversation.handshake();
    }
    for step in steps {
        match step {
            Client(bytes) => conversation.client(bytes),
            Server(bytes) => conversation.server(bytes),
            CapturedEarly(segments) => conversation.captured_early(*segments),
            Lost => conversation.drop_last(0),
        };
    }
    conversation.fin(Side::Client);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.pcap");
    write_pcap_file(&path, &conversation.frames().unwrap()).unwrap();
    let mut args = vec!["--show-usernames"];
    args.extend_from_slice(extra_args);
    common::read_json(&[&path], &args)
}

/// `(event_type, mechanism, user, outcome, secret)` of each credential event.
fn credentials(events: &[Value]) -> Vec<(String, String, String, String, String)> {
    events
        .iter()
        .filter(|e| e["event_type"] == "cleartext_credential" || e["event_type"] == "weak_credential")
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or("null").to_string();
            (
                text(&e["event_type"]),
                text(&e["credential"]["mechanism"]),
                text(&e["credential"]["username"]),
                text(&e["credential"]["outcome"]),
                text(&e["credential"]["secret"]),
            )
        })
        .collect()
}

fn expect(
    event_type: &str,
    mechanism: &str,
    user: &str,
    outcome: &str,
    secret: &str,
) -> Vec<(String, String, String, String, String)> {
    vec![(event_type.into(), mechanism.into(), user.into(), outcome.into(), secret.into())]
}

const POP3_GREETING: &[u8] = b"+OK POP3 server ready\r\n";
const IMAP_GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2] ready\r\n";
const SMTP_GREETING: &[u8] = b"220 mx.example.test ESMTP Exim 4.96\r\n";
const EHLO_REPLY: &[u8] =
    b"250-mx.example.test Hello\r\n250-AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER CRAM-MD5 DIGEST-MD5 NTLM\r\n250 HELP\r\n";

fn xoauth2_blob() -> String {
    b64(b"user=tok@example.test\x01auth=Bearer ya29.Canary-Token-xyz\x01\x01")
}

fn oauthbearer_blob() -> String {
    b64(b"n,a=ob@example.test,\x01host=mx.example.test\x01port=587\x01auth=Bearer Canary-Bearer-xyz\x01\x01")
}

/// An NTLMSSP AUTHENTICATE (type 3) message with Unicode strings, as MS-NLMP lays it out.
fn ntlm_type3(domain: &str, user: &str, workstation: &str) -> Vec<u8> {
    let utf16 = |s: &str| s.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>();
    let (domain, user, workstation) = (utf16(domain), utf16(user), utf16(workstation));
    let lm = [0u8; 24];
    let nt = [0x11u8; 24];
    let mut message = b"NTLMSSP\0".to_vec();
    message.extend_from_slice(&3u32.to_le_bytes());
    let mut offset = 64u32;
    let mut payload = Vec::new();
    for field in [&lm[..], &nt[..], &domain, &user, &workstation, &[]] {
        let len = field.len() as u16;
        message.extend_from_slice(&len.to_le_bytes());
        message.extend_from_slice(&len.to_le_bytes());
        message.extend_from_slice(&offset.to_le_bytes());
        offset += u32::from(len);
        payload.extend_from_slice(field);
    }
    message.extend_from_slice(&0x0000_0001u32.to_le_bytes());
    message.extend_from_slice(&payload);
    message
}

#[test]
fn xoauth2_on_all_three_protocols() {
    let blob = xoauth2_blob();
    let pop3 = run(
        110,
        &[Server(POP3_GREETING), Client(format!("AUTH XOAUTH2 {blob}\r\n").as_bytes()), Server(b"+OK\r\n")],
        &[],
    );
    assert_eq!(
        credentials(&pop3),
        expect("cleartext_credential", "AUTH XOAUTH2", "tok@example.test", "success", "token")
    );
    let imap = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(format!("t1 AUTHENTICATE XOAUTH2 {blob}\r\n").as_bytes()),
            Server(b"t1 OK\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&imap),
        expect("cleartext_credential", "AUTHENTICATE XOAUTH2", "tok@example.test", "success", "token")
    );
    // A rejected token: the server's error challenge is answered with an empty response.
    let smtp = run(
        587,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(EHLO_REPLY),
            Client(b"AUTH XOAUTH2\r\n"),
            Server(b"334 \r\n"),
            Client(format!("{blob}\r\n").as_bytes()),
            Server(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
            Client(b"\r\n"),
            Server(b"535 5.7.8 Username and Password not accepted\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&smtp),
        expect("cleartext_credential", "AUTH XOAUTH2", "tok@example.test", "failure", "token")
    );
}

#[test]
fn oauthbearer_reports_a_token() {
    let blob = oauthbearer_blob();
    let smtp = run(
        587,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(EHLO_REPLY),
            Client(format!("AUTH OAUTHBEARER {blob}\r\n").as_bytes()),
            Server(b"235 ok\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&smtp),
        expect("cleartext_credential", "AUTH OAUTHBEARER", "ob@example.test", "success", "token")
    );
}

#[test]
fn challenge_responses_are_weak_not_cleartext() {
    let digest = b64(br#"charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth"#);
    let imap = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(b"d AUTHENTICATE DIGEST-MD5\r\n"),
            Server(format!("+ {}\r\n", b64(br#"realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8"#)).as_bytes()),
            Client(format!("{digest}\r\n").as_bytes()),
            Server(b"+ cnNwYXV0aD1lYTQwZjYwMzM1YzQyN2I1NTI3Yjg0ZGJhYmNkZmZmZA==\r\n"),
            Client(b"\r\n"),
            Server(b"d OK\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&imap),
        expect("weak_credential", "AUTHENTICATE DIGEST-MD5", "chris", "success", "challenge_response")
    );

    let type1 = b64(b"NTLMSSP\0\x01\0\0\0\x07\x82\x08\xa2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let type3 = b64(&ntlm_type3("CORP", "mallory", "WS01"));
    let smtp = run(
        25,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(EHLO_REPLY),
            Client(format!("AUTH NTLM {type1}\r\n").as_bytes()),
            Server(b"334 TlRMTVNTUAACAAAAAAAAAAAAAAAFgomiESIzRFVmd4gAAAAAAAAAAAAAAAAAAAAA\r\n"),
            Client(format!("{type3}\r\n").as_bytes()),
            Server(b"535 5.7.3 Authentication unsuccessful\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&smtp),
        expect("weak_credential", "AUTH NTLM", "CORP\\mallory", "failure", "challenge_response")
    );

    let cram = run(
        110,
        &[
            Server(POP3_GREETING),
            Client(b"AUTH CRAM-MD5\r\n"),
            Server(b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"),
            Client(format!("{}\r\n", b64(b"tim b913a602c7eda7a495b4e6e7334d3890")).as_bytes()),
            Server(b"+OK\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&cram), expect("weak_credential", "AUTH CRAM-MD5", "tim", "success", "challenge_response"));
}

/// SCRAM's client-final message holds a proof that, with the server's salt and iteration count,
/// lets a password be guessed offline (RFC 5802 section 9): weak, like CRAM-MD5, on every protocol.
#[test]
fn scram_in_clear_is_weak() {
    let client_first = format!("{}\r\n", b64(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
    let server_first = b64(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    let client_final = format!(
        "{}\r\n",
        b64(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    );
    let server_final = b64(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

    let imap = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(b"s AUTHENTICATE SCRAM-SHA-256\r\n"),
            Server(b"+ \r\n"),
            Client(client_first.as_bytes()),
            Server(format!("+ {server_first}\r\n").as_bytes()),
            Client(client_final.as_bytes()),
            Server(format!("+ {server_final}\r\n").as_bytes()),
            Client(b"\r\n"),
            Server(b"s OK\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&imap),
        expect("weak_credential", "AUTHENTICATE SCRAM-SHA-256", "user", "success", "challenge_response")
    );

    let smtp = run(
        587,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(EHLO_REPLY),
            Client(format!("AUTH SCRAM-SHA-1 {client_first}").as_bytes()),
            Server(format!("334 {server_first}\r\n").as_bytes()),
            Client(client_final.as_bytes()),
            Server(b"535 5.7.8 Authentication failed\r\n"),
        ],
        &[],
    );
    assert_eq!(
        credentials(&smtp),
        expect("weak_credential", "AUTH SCRAM-SHA-1", "user", "failure", "challenge_response")
    );

    let pop3 = run(
        110,
        &[
            Server(POP3_GREETING),
            Client(b"AUTH SCRAM-SHA-256\r\n"),
            Server(b"+ \r\n"),
            Client(client_first.as_bytes()),
            Server(format!("+ {server_first}\r\n").as_bytes()),
            Client(client_final.as_bytes()),
            Server(format!("+OK {server_final}\r\n").as_bytes()),
        ],
        &[],
    );
    assert_eq!(
        credentials(&pop3),
        expect("weak_credential", "AUTH SCRAM-SHA-256", "user", "success", "challenge_response")
    );

    let client_first_quoted = b64(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let managesieve = run(
        4190,
        &[
            Server(b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"SCRAM-SHA-256\"\r\nOK \"ready\"\r\n"),
            Client(format!("AUTHENTICATE \"SCRAM-SHA-256\" \"{client_first_quoted}\"\r\n").as_bytes()),
            Server(format!("\"{server_first}\"\r\n").as_bytes()),
            Client(format!("\"{}\"\r\n", client_final.trim_end()).as_bytes()),
            Server(format!("OK (SASL \"{server_final}\")\r\n").as_bytes()),
        ],
        &[],
    );
    assert_eq!(
        credentials(&managesieve),
        expect("weak_credential", "AUTHENTICATE SCRAM-SHA-256", "user", "success", "challenge_response")
    );

    let refused_before_the_proof = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(format!("s AUTHENTICATE SCRAM-SHA-256 {client_first}").as_bytes()),
            Server(b"s NO unknown user\r\n"),
        ],
        &[],
    );
    assert!(credentials(&refused_before_the_proof).is_empty(), "no proof crossed, nothing to crack");
}

#[test]
fn mechanisms_that_expose_nothing_raise_nothing() {
    let external = run(
        587,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(EHLO_REPLY),
            Client(b"AUTH EXTERNAL =\r\n"),
            Server(b"235 ok\r\n"),
        ],
        &[],
    );
    assert!(credentials(&external).is_empty());
    let anonymous = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(format!("a AUTHENTICATE ANONYMOUS {}\r\n", b64(b"guest")).as_bytes()),
            Server(b"a OK\r\n"),
        ],
        &[],
    );
    assert!(credentials(&anonymous).is_empty());
}

#[test]
fn logindisabled_ignored_is_the_servers_fault() {
    let events = run(
        143,
        &[
            Server(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
            Client(b"a LOGIN alice Canary-Pass-1\r\n"),
            Server(b"a OK\r\n"),
        ],
        &[],
    );
    assert_eq!(events[0]["remediation"], "server_ignores_logindisabled");
    assert_eq!(events[0]["server"]["login_disabled"], true);
}

#[test]
fn a_refused_starttls_then_a_login_is_starttls_failed() {
    let events = run(
        587,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(b"250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
            Client(b"STARTTLS\r\n"),
            Server(b"454 4.7.0 TLS not available\r\n"),
            Client(format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0Canary-Pass-2")).as_bytes()),
            Server(b"235 ok\r\n"),
        ],
        &[],
    );
    assert_eq!(events[0]["remediation"], "starttls_failed");
}

/// POP3 and SMTP servers split a command's words on any run of blanks (Postfix's
/// `smtpd_token.c`), so `AUTH  PLAIN` and `AUTH<TAB>PLAIN` log in like `AUTH PLAIN`. A POP3
/// password is still the rest of the line after one separator; a user name is reported without
/// blanks at its ends.
#[test]
fn command_words_may_be_separated_by_runs_of_blanks() {
    let plain = |user: &str| b64(format!("\0{user}\0Canary-Pass-7").as_bytes());
    for (line, user) in [
        (format!("AUTH  PLAIN {}\r\n", plain("al")), "al"),
        (format!("AUTH\tPLAIN\t{}\r\n", plain("ed")), "ed"),
        (format!("auth plain  {} \r\n", plain("bo")), "bo"),
    ] {
        let events = run(
            587,
            &[
                Server(SMTP_GREETING),
                Client(b"EHLO\tme\r\n"),
                Server(EHLO_REPLY),
                Client(line.as_bytes()),
                Server(b"235 2.7.0 ok\r\n"),
            ],
            &[],
        );
        assert_eq!(credentials(&events), expect("cleartext_credential", "AUTH PLAIN", user, "success", "password"));
        assert_eq!(
            events[0]["server"]["capabilities"][0],
            "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER CRAM-MD5 DIGEST-MD5 NTLM"
        );
    }
    let pop3 = run(
        110,
        &[Server(POP3_GREETING), Client(format!("AUTH \t PLAIN {}\r\n", plain("di")).as_bytes()), Server(b"+OK\r\n")],
        &[],
    );
    assert_eq!(credentials(&pop3), expect("cleartext_credential", "AUTH PLAIN", "di", "success", "password"));
    let pop3 = run(
        110,
        &[
            Server(POP3_GREETING),
            Client(b"USER  sue  \r\n"),
            Server(b"+OK\r\n"),
            Client(b"PASS  Canary Pass 8\r\n"),
            Server(b"-ERR [AUTH] failed\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&pop3), expect("cleartext_credential", "USER/PASS", "sue", "failure", "password"));
    assert_eq!(pop3[0]["credential"]["secret_length"], 14, "the blank after the first is the password's");
}

/// A capture that lost a client segment of whole lines reads the login right after it, as a
/// capture starting there would; one that lost the DATA command still skips the message the
/// server's 354 announced.
#[test]
fn a_lost_segment_hides_neither_the_next_login_nor_message_data() {
    let imap = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(b"a0 CAPABILITY\r\n"),
            Lost,
            Client(b"a1 LOGIN alice Canary-Pass-9\r\n"),
            Server(b"* CAPABILITY IMAP4rev1\r\na0 OK\r\na1 OK\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&imap), expect("cleartext_credential", "LOGIN", "alice", "success", "password"));
    let decoy = format!("AUTH PLAIN {}\r\n", b64(b"\0lol\0Canary-Decoy-1"));
    let smtp = run(
        25,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO c\r\n"),
            Server(b"250 mx.example.test\r\n"),
            Client(b"MAIL FROM:<a@example.test>\r\n"),
            Server(b"250 ok\r\n"),
            Client(b"DATA\r\n"),
            Lost,
            Server(b"354 go ahead\r\n"),
            Client(format!("Subject: x\r\n\r\n{decoy}.\r\n").as_bytes()),
            Server(b"250 queued\r\n"),
        ],
        &[],
    );
    assert!(credentials(&smtp).is_empty(), "{:?}", credentials(&smtp));
}

#[test]
fn commands_pipelined_behind_starttls_are_an_anomaly_not_a_credential() {
    let events = run(
        110,
        &[Server(POP3_GREETING), Client(b"STLS\r\nUSER alice\r\nPASS Canary-Pass-3\r\n"), Server(b"+OK Begin TLS\r\n")],
        &[],
    );
    assert!(credentials(&events).is_empty());
    let anomalies = common::of_type(&events, "anomaly");
    assert_eq!(anomalies.len(), 1);
    assert_eq!(anomalies[0]["anomaly"]["kind"], "starttls_command_injection");
}

#[test]
fn look_alikes_stay_quiet() {
    let redis = run(
        6379,
        &[Client(b"AUTH Canary-Redis-Pass\r\n"), Server(b"+OK\r\n"), Client(b"PING\r\n"), Server(b"+PONG\r\n")],
        &[],
    );
    assert!(redis.is_empty(), "{redis:?}");
    let ftp = run(
        21,
        &[
            Server(b"220 (vsFTPd 3.0.3)\r\n"),
            Client(b"USER alice\r\n"),
            Server(b"331 Please specify the password.\r\n"),
            Client(b"PASS Canary-Ftp-Pass\r\n"),
            Server(b"230 Login successful.\r\n"),
        ],
        &[],
    );
    assert!(ftp.is_empty(), "{ftp:?}");
}

#[test]
fn mail_servers_on_odd_ports_are_found() {
    let pop3 = run(
        1110,
        &[
            Server(POP3_GREETING),
            Client(b"USER alice\r\n"),
            Server(b"+OK\r\n"),
            Client(b"PASS Canary-Pass-4\r\n"),
            Server(b"+OK\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&pop3), expect("cleartext_credential", "USER/PASS", "alice", "success", "password"));
    let imap = run(
        10143,
        &[
            Server(IMAP_GREETING),
            Client(b"a LOGIN alice Canary-Pass-5\r\n"),
            Server(b"a NO [AUTHENTICATIONFAILED] no\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&imap), expect("cleartext_credential", "LOGIN", "alice", "failure", "password"));
    let smtp = run(
        2526,
        &[
            Server(SMTP_GREETING),
            Client(b"EHLO me\r\n"),
            Server(EHLO_REPLY),
            Client(format!("AUTH PLAIN {}\r\n", b64(b"\0bob\0Canary-Pass-6")).as_bytes()),
            Server(b"235 ok\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&smtp), expect("cleartext_credential", "AUTH PLAIN", "bob", "success", "password"));
    assert_eq!(smtp[0]["server"]["software"], "Exim 4.96");
}

#[test]
fn implicit_tls_is_not_parsed_and_cleartext_there_is_flagged() {
    let client_hello = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03];
    let tls = run(995, &[Client(&client_hello), Server(&[0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00])], &[]);
    assert!(credentials(&tls).is_empty());
    let [posture] = common::of_type(&tls, "server_posture")[..] else { panic!("{tls:?}") };
    assert_eq!((posture["class"].as_str(), posture["sessions_tls"].as_u64()), (Some("tls_required"), Some(1)));

    // The same port spoken in clear: the login crossed the network in clear all the same.
    let clear = run(
        995,
        &[
            Server(POP3_GREETING),
            Client(b"USER alice\r\n"),
            Server(b"+OK\r\n"),
            Client(b"PASS Canary-Pass-7\r\n"),
            Server(b"+OK\r\n"),
        ],
        &[],
    );
    assert_eq!(credentials(&clear), expect("cleartext_credential", "USER/PASS", "alice", "success", "password"));
    let anomalies = common::of_type(&clear, "anomaly");
    let kinds: Vec<_> = anomalies.iter().map(|a| a["anomaly"]["kind"].as_str()).collect();
    assert_eq!(kinds, [Some("cleartext_on_tls_port")]);
    assert_eq!(anomalies[0]["dest_port"], 995);
    let [posture] = common::of_type(&clear, "server_posture")[..] else { panic!("{clear:?}") };
    assert_ne!(posture["class"], "tls_required");
    assert_eq!(posture["sessions_tls"], 0);
}

#[test]
fn ports_can_be_configured() {
    let steps = [Client(b"USER alice\r\n"), Server(b"+OK\r\n"), Client(b"PASS Canary-Pass-8\r\n"), Server(b"+OK\r\n")];
    // Picked up mid-session, without the greeting, only a configured port is analysed.
    assert!(run_from(false, 2110, &steps, &[]).is_empty());
    let configured = run_from(false, 2110, &steps, &["--pop3-ports", "110,2110"]);
    assert_eq!(credentials(&configured), expect("cleartext_credential", "USER/PASS", "alice", "success", "password"));
    // With the handshake in sight, the server's first words are its greeting, whatever the
    // client said before them: a POP3 greeting on any port.
    let early = [
        Client(b"USER alice\r\nPASS Canary-Pass-8\r\n"),
        Server(b"+OK POP3 ready\r\n+OK\r\n-ERR [AUTH] Authentication failed\r\n"),
    ];
    assert_eq!(
        credentials(&run(2110, &early, &[])),
        expect("cleartext_credential", "USER/PASS", "alice", "failure", "password")
    );
}

#[test]
fn a_capture_whose_directions_are_out_of_order_is_read_in_the_order_spoken() {
    // The server's side reaches the capture late: the client's USER before the greeting.
    let greeting_late = [
        Server(POP3_GREETING),
        Client(b"USER alice\r\n"),
        CapturedEarly(1),
        Server(b"+OK\r\n"),
        Client(b"PASS Canary-Pass-9\r\n"),
        Server(b"-ERR [AUTH] Authentication failed\r\n"),
    ];
    // The client's side reaches it late: each reply before the command it answers.
    let replies_early = [
        Server(POP3_GREETING),
        Client(b"USER alice\r\n"),
        Server(b"+OK\r\n"),
        CapturedEarly(1),
        Client(b"PASS Canary-Pass-9\r\n"),
        Server(b"-ERR [AUTH] Authentication failed\r\n"),
        CapturedEarly(1),
    ];
    for (steps, waits) in [(&greeting_late[..], 1), (&replies_early, 2)] {
        let events = run(110, steps, &["--stats"]);
        assert_eq!(credentials(&events), expect("cleartext_credential", "USER/PASS", "alice", "failure", "password"));
        let alert = events.iter().find(|e| e["event_type"] == "cleartext_credential").unwrap();
        assert_eq!(alert["server"]["greeting"], "+OK POP3 server ready");
        let [stats] = common::of_type(&events, "stats")[..] else { panic!("{events:?}") };
        assert_eq!(stats["segments_waited"], waits, "the skew is reported");
    }
    let in_order = [
        Server(POP3_GREETING),
        Client(b"USER alice\r\n"),
        Server(b"+OK\r\n"),
        Client(b"PASS Canary-Pass-9\r\n"),
        Server(b"-ERR [AUTH] Authentication failed\r\n"),
    ];
    let events = run(110, &in_order, &["--stats"]);
    let [stats] = common::of_type(&events, "stats")[..] else { panic!("{events:?}") };
    assert_eq!(stats["segments_waited"], 0, "a capture in order waits for nothing");
}

#[test]
fn no_secret_is_printed() {
    let blob = xoauth2_blob();
    let events = run(
        143,
        &[
            Server(IMAP_GREETING),
            Client(format!("t1 AUTHENTICATE XOAUTH2 {blob}\r\n").as_bytes()),
            Server(b"t1 OK\r\n"),
        ],
        &[],
    );
    let printed = serde_json::to_string(&events).unwrap();
    assert!(!printed.contains("Canary-Token") && !printed.contains(&blob));
}
