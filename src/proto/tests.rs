//! Session tests on transcripts: what each protocol reports for a conversation, and that any
//! way of cutting the conversation into chunks reports the same.

use base64::Engine as _;
use proptest::prelude::*;

use super::*;
use crate::alert::{AnomalyKind, Outcome, SecretKind};

/// One step of a conversation: who speaks and what (or how many of a side's bytes the capture
/// lost, or its snap length cut off the end of the segment before).
#[derive(Clone, Debug)]
enum Says {
    C(Vec<u8>),
    /// Client bytes in a segment that acknowledged every server byte so far ([`Ctx::acked_all`]).
    CAcked(Vec<u8>),
    S(Vec<u8>),
    ClientLost(u64),
    ServerLost(u64),
    ClientCutOff(u64),
    ServerCutOff(u64),
}
use Says::{CAcked, ClientCutOff, ClientLost, ServerCutOff, ServerLost, C, S};

fn c(text: &str) -> Says {
    C(text.as_bytes().to_vec())
}
fn s(text: &str) -> Says {
    S(text.as_bytes().to_vec())
}
fn b64(text: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Plays a transcript on a session whose client is `Side::Lo`, cutting each step into chunks of
/// `chunk` bytes, and returns the events.
fn play_chunked(server_port: u16, steps: &[Says], chunk: usize, roles_certain: bool) -> Vec<ProtoEvent> {
    let parts = CtxParts::default();
    let session = Session::new(Side::Lo, roles_certain, true, server_port, &parts.config);
    play_on(session, parts, steps, chunk)
}

/// Plays a transcript on the given session, as [`play_chunked`] does.
fn play_on(mut session: Session, mut parts: CtxParts, steps: &[Says], chunk: usize) -> Vec<ProtoEvent> {
    feed(&mut session, &mut parts, steps, chunk);
    session.close(&mut parts.ctx(Timestamp(999)));
    parts.events
}

/// Hands a transcript's steps to a session, each cut into chunks of `chunk` bytes, leaving the
/// flow open.
fn feed(session: &mut Session, parts: &mut CtxParts, steps: &[Says], chunk: usize) {
    for (i, step) in steps.iter().enumerate() {
        let (side, bytes) = match step {
            C(bytes) | CAcked(bytes) => (Side::Lo, bytes),
            S(bytes) => (Side::Hi, bytes),
            ClientLost(len) => {
                session.on_gap(Side::Lo, *len, &mut parts.ctx(Timestamp(i as u64)));
                continue;
            }
            ServerLost(len) => {
                session.on_gap(Side::Hi, *len, &mut parts.ctx(Timestamp(i as u64)));
                continue;
            }
            ClientCutOff(len) => {
                session.on_cut_off(Side::Lo, *len, &mut parts.ctx(Timestamp(i as u64)));
                continue;
            }
            ServerCutOff(len) => {
                session.on_cut_off(Side::Hi, *len, &mut parts.ctx(Timestamp(i as u64)));
                continue;
            }
        };
        for piece in bytes.chunks(chunk.max(1)) {
            let mut ctx = parts.ctx(Timestamp(i as u64));
            ctx.acked_all = matches!(step, CAcked(_));
            session.on_data(side, piece, &mut ctx);
        }
    }
}

fn play(server_port: u16, steps: &[Says]) -> Vec<ProtoEvent> {
    play_chunked(server_port, steps, usize::MAX, true)
}

fn credentials(events: &[ProtoEvent]) -> Vec<&CredentialEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            ProtoEvent::Credential(c) => Some(c),
            ProtoEvent::Anomaly { .. } | ProtoEvent::SessionEnd(_) => None,
        })
        .collect()
}

/// `(mechanism, masked user, outcome, kind)` of each credential.
fn summary(events: &[ProtoEvent]) -> Vec<(String, Option<String>, Outcome, SecretKind)> {
    credentials(events).iter().map(|c| (c.mechanism.to_string(), c.username.clone(), c.outcome, c.secret)).collect()
}

fn one(
    mechanism: &str,
    user: &str,
    outcome: Outcome,
    kind: SecretKind,
) -> Vec<(String, Option<String>, Outcome, SecretKind)> {
    vec![(mechanism.to_string(), Some(user.to_string()), outcome, kind)]
}

fn pop3_user_pass() -> Vec<Says> {
    vec![
        s("+OK Dovecot (Debian) ready.\r\n"),
        c("CAPA\r\n"),
        s("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"),
        c("USER alice\r\n"),
        s("+OK\r\n"),
        c("PASS Sunny Day 2024\r\n"),
        s("+OK Logged in.\r\n"),
        c("STAT\r\n"),
    ]
}

#[test]
fn pop3_user_pass_success_with_server_identity() {
    let events = play(110, &pop3_user_pass());
    assert_eq!(summary(&events), one("USER/PASS", "a***", Outcome::Success, SecretKind::Password));
    let alert = credentials(&events)[0];
    assert_eq!(alert.secret_length, Some(14));
    assert_eq!(alert.server.greeting.as_deref(), Some("+OK Dovecot (Debian) ready."));
    assert_eq!(alert.server.software.as_deref(), Some("Dovecot"));
    assert_eq!(alert.server.starttls_offered, Some(false));
    assert_eq!(alert.remediation, Remediation::ServerOffersNoTls);
    assert_eq!(alert.ts, Timestamp(5), "timestamp of the packet that completed the credential");
}

#[test]
fn pop3_failure_lowercase_and_pipelined() {
    let events = play(
        110,
        &[
            s("+OK ready\r\n"),
            c("user bob@example.test\r\npass x y\r\n"),
            s("+OK\r\n-ERR [AUTH] Authentication failed.\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("USER/PASS", "b***@example.test", Outcome::Failure, SecretKind::Password));
}

/// The response code of a refusal tells what it says of the secret: right (`[IN-USE]`), wrong
/// (`[AUTH]`, or none), or nothing (a system failure, a login too soon).
#[test]
fn pop3_refusals_tell_by_their_response_code_what_they_say_of_the_secret() {
    for (reply, outcome) in [
        ("-ERR [IN-USE] Couldn't open INBOX: Mailbox is locked\r\n", Outcome::Success),
        ("-err [in-use/lock] busy\r\n", Outcome::Success),
        ("-ERR [SYS/TEMP] Temporary authentication failure. [host:2026-12-02]\r\n", Outcome::Unknown),
        ("-ERR [SYS/PERM] Mailbox is read-only\r\n", Outcome::Unknown),
        ("-ERR [sys] odd\r\n", Outcome::Unknown),
        ("-ERR [LOGIN-DELAY] wait a while\r\n", Outcome::Unknown),
        ("-ERR [SYS/PERM] TLS required to log in\r\n", Outcome::Failure),
        ("-ERR [AUTH] Authentication failed.\r\n", Outcome::Failure),
        ("-ERR [SYSTEM] no\r\n", Outcome::Failure),
        ("-ERR SYS/TEMP\r\n", Outcome::Failure),
        ("-ERR [IN-USER] no\r\n", Outcome::Failure),
        ("-ERR IN-USE\r\n", Outcome::Failure),
    ] {
        let events = play(110, &[s("+OK ready\r\n"), c("USER carol\r\n"), s("+OK\r\n"), c("PASS pw\r\n"), s(reply)]);
        assert_eq!(summary(&events), one("USER/PASS", "c***", outcome, SecretKind::Password), "{reply}");
    }
    // Still in the authorization state: a second try is read too.
    let events = play(
        110,
        &[
            s("+OK ready\r\n"),
            c("USER carol\r\nPASS pw\r\n"),
            s("+OK\r\n-ERR [IN-USE] locked\r\n"),
            c("USER dave\r\nPASS pw2\r\n"),
            s("+OK\r\n+OK in\r\n"),
        ],
    );
    assert_eq!(credentials(&events).len(), 2);
}

#[test]
fn pop3_outcome_unknown_when_the_flow_ends_first() {
    let events = play(110, &[s("+OK ready\r\n"), c("USER carol\r\n"), s("+OK\r\n"), c("PASS pw\r\n")]);
    assert_eq!(summary(&events), one("USER/PASS", "c***", Outcome::Unknown, SecretKind::Password));
}

#[test]
fn pop3_a_status_line_ends_a_capability_listing_that_lost_its_end() {
    let events = play(
        110,
        &[
            s("+OK ready\r\n"),
            c("CAPA\r\n"),
            s("+OK\r\nUSER\r\nTOP\r\n"),
            c("USER carol\r\n"),
            s("+OK\r\n"),
            c("PASS pw\r\n"),
            s("-ERR [AUTH] no\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("USER/PASS", "c***", Outcome::Failure, SecretKind::Password));
    let Some(ProtoEvent::SessionEnd(record)) = events.last() else { panic!("{events:?}") };
    assert_eq!(record.server.capabilities.iter().collect::<Vec<_>>(), ["USER", "TOP"]);
}

#[test]
fn pop3_apop_is_weak_not_cleartext() {
    let events = play(
        110,
        &[
            s("+OK ready <1896.697170952@dbc.mtview.ca.us>\r\n"),
            c("APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"),
            s("+OK\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("APOP", "m***", Outcome::Success, SecretKind::ChallengeResponse));
}

#[test]
fn pop3_auth_plain_with_and_without_initial_response() {
    let blob = b64(b"\0digitalinvestigator@networksims.com\0napier123");
    let with_ir = play(110, &[s("+OK\r\n"), C(format!("AUTH PLAIN {blob}\r\n").into_bytes()), s("+OK\r\n")]);
    assert_eq!(summary(&with_ir), one("AUTH PLAIN", "d***@networksims.com", Outcome::Success, SecretKind::Password));
    let without = play(
        110,
        &[s("+OK\r\n"), c("AUTH PLAIN\r\n"), s("+ \r\n"), C(format!("{blob}\r\n").into_bytes()), s("-ERR no\r\n")],
    );
    assert_eq!(summary(&without), one("AUTH PLAIN", "d***@networksims.com", Outcome::Failure, SecretKind::Password));
}

#[test]
fn pop3_auth_cancelled_reports_nothing() {
    let events = play(
        110,
        &[
            s("+OK\r\n"),
            c("AUTH LOGIN\r\n"),
            s("+ VXNlcm5hbWU6\r\n"),
            C(format!("{}\r\n", b64(b"alice")).into_bytes()),
            s("+ UGFzc3dvcmQ6\r\n"),
            c("*\r\n"),
            s("-ERR cancelled\r\n"),
        ],
    );
    assert!(summary(&events).is_empty());
}

#[test]
fn pop3_stls_stops_parsing_and_injection_is_flagged() {
    let events = play(
        110,
        &[s("+OK\r\n"), c("STLS\r\n"), s("+OK Begin TLS\r\n"), c("USER alice\r\nPASS secret\r\n"), s("+OK\r\n+OK\r\n")],
    );
    assert!(summary(&events).is_empty(), "data after STLS is never cleartext");
    let injected = play(110, &[s("+OK\r\n"), c("STLS\r\nUSER alice\r\n"), s("+OK Begin TLS\r\n")]);
    assert!(injected
        .iter()
        .any(|e| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::StarttlsCommandInjection, .. })));
}

#[test]
fn pop3_refused_stls_then_login_is_starttls_failed() {
    let events = play(
        110,
        &[
            s("+OK\r\n"),
            c("CAPA\r\n"),
            s("+OK\r\nSTLS\r\nUSER\r\n.\r\n"),
            c("STLS\r\n"),
            s("-ERR TLS unavailable\r\n"),
            c("USER a\r\n"),
            s("+OK\r\n"),
            c("PASS b\r\n"),
            s("+OK\r\n"),
        ],
    );
    assert_eq!(credentials(&events)[0].remediation, Remediation::StarttlsFailed);
}

/// A client that does not wait for the answer to STARTTLS, on each protocol: its login, in the
/// same segment as STARTTLS or not, then the server's refusal and its verdict on the login.
fn logins_behind_starttls(blob: &str) -> Vec<(u16, Vec<Says>)> {
    vec![
        (
            143,
            vec![
                s("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
                c("a1 STARTTLS\r\n"),
                c("a2 LOGIN cid hunter2\r\n"),
                s("a1 NO TLS unavailable\r\na2 OK Logged in\r\n"),
            ],
        ),
        (
            143,
            vec![
                s("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
                c("a1 STARTTLS\r\na2 LOGIN cid hunter2\r\n"),
                s("a1 BAD STARTTLS not available\r\na2 OK Logged in\r\n"),
            ],
        ),
        (
            110,
            vec![
                s("+OK ready\r\n"),
                c("STLS\r\n"),
                c("USER cid\r\nPASS hunter2\r\n"),
                s("-ERR TLS not available\r\n+OK\r\n+OK Logged in.\r\n"),
            ],
        ),
        (
            587,
            vec![
                s("220 mx ESMTP Postfix\r\n"),
                c("EHLO c\r\n"),
                s("250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
                c("STARTTLS\r\n"),
                C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
                s("454 4.7.0 TLS not available\r\n235 2.7.0 Authentication successful\r\n"),
            ],
        ),
        (
            4190,
            vec![
                s("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\nOK\r\n"),
                c("STARTTLS\r\n"),
                C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes()),
                s("NO \"TLS unavailable\"\r\nOK \"Logged in.\"\r\n"),
            ],
        ),
    ]
}

/// What a client sends before the answer to STARTTLS is read once the server refused TLS: it ran
/// those commands in clear.
#[test]
fn a_login_sent_before_a_refused_starttls_answer_is_reported() {
    for (port, steps) in logins_behind_starttls(&b64(b"\0cid\0hunter2")) {
        let events = play(port, &steps);
        let mechanism = match port {
            143 => "LOGIN",
            110 => "USER/PASS",
            587 => "AUTH PLAIN",
            _ => "AUTHENTICATE PLAIN",
        };
        assert_eq!(summary(&events), one(mechanism, "c***", Outcome::Success, SecretKind::Password), "port {port}");
        assert_eq!(credentials(&events)[0].remediation, Remediation::StarttlsFailed, "port {port}");
        assert!(!events.iter().any(|e| matches!(e, ProtoEvent::Anomaly { .. })), "port {port}: refused, not injected");
    }
}

/// The same words answered by an accepted STARTTLS were injected into what the server took for
/// TLS: an anomaly, never a credential, whether they came in STARTTLS's segment or later. The
/// client's TLS handshake itself is not one.
#[test]
fn words_sent_before_an_accepted_starttls_answer_are_an_injection() {
    let accepted = ["a1 OK Begin TLS\r\n", "a1 OK Begin TLS\r\n", "+OK Begin TLS\r\n", "220 2.0.0 Ready\r\n", "OK\r\n"];
    for ((port, mut steps), accept) in logins_behind_starttls(&b64(b"\0cid\0hunter2")).into_iter().zip(accepted) {
        if let Some(S(reply)) = steps.last_mut() {
            *reply = accept.as_bytes().to_vec();
        }
        let events = play(port, &steps);
        assert!(credentials(&events).is_empty(), "port {port}");
        let injections = events
            .iter()
            .filter(|e| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::StarttlsCommandInjection, .. }));
        assert_eq!(injections.count(), 1, "port {port}");
    }
    let client_hello = vec![0x16, 0x03, 0x01, 0x00, 0x10, 1, 2, 3];
    let events = play(110, &[s("+OK\r\n"), c("STLS\r\n"), C(client_hello), s("+OK Begin TLS\r\n")]);
    assert!(events.iter().all(|e| matches!(e, ProtoEvent::SessionEnd(_))), "{events:?}");
}

/// A capture that missed the greeting (it starts mid-flow) still reads what the client sent
/// before a refused STARTTLS answer: the client spoke, so no later line is the greeting, and the
/// held words are read once the refusal came, not at the flow's end after every reply.
#[test]
fn a_login_behind_a_refused_starttls_is_read_in_a_capture_without_the_greeting() {
    for (port, steps) in logins_behind_starttls(&b64(b"\0cid\0hunter2")) {
        let parts = CtxParts::default();
        let session = Session::new(Side::Lo, true, false, port, &parts.config);
        let events = play_on(session, parts, steps.get(1..).unwrap_or_default(), usize::MAX);
        let outcomes: Vec<Outcome> = credentials(&events).iter().map(|c| c.outcome).collect();
        assert_eq!(outcomes, [Outcome::Success], "port {port}");
        assert_eq!(credentials(&events)[0].remediation, Remediation::StarttlsFailed, "port {port}");
    }
}

/// A client pipelining many STARTTLS in one segment, each refused in a reply of its own, then its
/// login: every refusal lets the session read the held bytes up to the next STARTTLS, where they
/// lie (not copied again for each answer), and the login behind them is read once, whole.
#[test]
fn a_login_behind_many_refused_starttls_is_read_once() {
    const REFUSALS: usize = 1_000;
    let cases: [(u16, &str, &str, &str, &str); 3] = [
        (110, "+OK ready\r\n", "STLS\r\n", "-ERR no TLS\r\n", "USER cid\r\nPASS hunter2\r\n"),
        (587, "220 mx ESMTP\r\n", "STARTTLS\r\n", "454 4.7.0 no TLS\r\n", "AUTH PLAIN AGNpZABodW50ZXIy\r\n"),
        (143, "* OK ready\r\n", "t STARTTLS\r\n", "t NO no TLS\r\n", "a LOGIN cid hunter2\r\n"),
    ];
    for (port, greeting, starttls, refusal, login) in cases {
        let mut steps = vec![s(greeting)];
        if port == 587 {
            steps.extend([c("EHLO c\r\n"), s("250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n")]);
        }
        steps.push(C(format!("{}{login}", starttls.repeat(REFUSALS)).into_bytes()));
        steps.extend(std::iter::repeat_n(s(refusal), REFUSALS));
        let verdict = match port {
            110 => "+OK\r\n+OK Logged in.\r\n",
            587 => "235 2.7.0 ok\r\n",
            _ => "a OK Logged in\r\n",
        };
        steps.push(s(verdict));
        let events = play(port, &steps);
        let found: Vec<(Outcome, Remediation)> =
            credentials(&events).iter().map(|credential| (credential.outcome, credential.remediation)).collect();
        assert_eq!(found, [(Outcome::Success, Remediation::StarttlsFailed)], "port {port}");
    }
}

/// A client that goes on talking behind STARTTLS in the same segment, past what a client waiting
/// for the answer sends, has no more than a line held (the rest dropped): the login among the
/// held bytes is still read after a refusal, and an acceptance still reports the injection.
#[test]
fn words_behind_starttls_are_held_up_to_a_line() {
    // Three long commands: past the hold's bound, within the commands a session keeps pending.
    let filler = format!("NOOP {}\r\n", "x".repeat(ProtoConfig::default().max_line / 3)).repeat(3);
    let accepted = ["a1 OK Begin TLS\r\n", "a1 OK Begin TLS\r\n", "+OK Begin TLS\r\n", "220 2.0.0 Ready\r\n", "OK\r\n"];
    for ((port, steps), accept) in logins_behind_starttls(&b64(b"\0cid\0hunter2")).into_iter().zip(accepted) {
        // The STARTTLS line, the login and the filler in one segment.
        let mut merged: Vec<Says> = Vec::new();
        for step in steps {
            match (merged.last_mut(), step) {
                (Some(C(before)), C(bytes)) => before.extend_from_slice(&bytes),
                (_, step) => merged.push(step),
            }
        }
        let starttls = merged.iter().rposition(|step| matches!(step, C(_))).unwrap();
        if let Some(C(bytes)) = merged.get_mut(starttls) {
            bytes.extend_from_slice(filler.as_bytes());
        }
        let mut parts = CtxParts::default();
        let max_line = parts.config.max_line;
        let mut session = Session::new(Side::Lo, true, true, port, &parts.config);
        feed(&mut session, &mut parts, &merged[..=starttls], usize::MAX);
        let held = session.early_client.as_ref().map_or(0, |held| held.bytes.len());
        assert!(held <= max_line, "port {port}: {held} bytes held");

        let refused = play(port, &merged);
        let expected = credentials(&play(port, &logins_behind_starttls(&b64(b"\0cid\0hunter2"))[0].1)).len();
        assert_eq!(expected, 1);
        let found: Vec<Outcome> = credentials(&refused).iter().map(|c| c.outcome).collect();
        assert_eq!(found, [Outcome::Success], "port {port}: the login behind the refused STARTTLS");

        if let Some(S(reply)) = merged.last_mut() {
            *reply = accept.as_bytes().to_vec();
        }
        let injected = play(port, &merged);
        assert!(credentials(&injected).is_empty(), "port {port}");
        let injections = injected
            .iter()
            .filter(|e| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::StarttlsCommandInjection, .. }));
        assert_eq!(injections.count(), 1, "port {port}: padding past the hold hides no injection");
    }
}

#[test]
fn imap_login_every_astring_form() {
    // Failures name the form by its index and length: the lines hold passwords.
    for (form, (login, user)) in [
        ("a1 LOGIN alice s3cret\r\n", "a***"),
        ("a1 login \"bob@example.test\" \"b0b says \\\"hi\\\" \\\\o/\"\r\n", "b***@example.test"),
        ("a1 LOGIN {5}\r\nalice {8+}\r\ntrick{7}\r\n", "a***"),
        ("a1 LOGIN \"alice\" \"trick{7}\"\r\n", "a***"),
    ]
    .into_iter()
    .enumerate()
    {
        let events = play(
            143,
            &[s("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"), c(login), s("a1 OK done\r\n")],
        );
        assert_eq!(
            summary(&events),
            one("LOGIN", user, Outcome::Success, SecretKind::Password),
            "form {form} ({} bytes)",
            login.len()
        );
    }
}

/// ManageSieve's `NO (TRYLATER)` says nothing of the secret; `NO (ENCRYPT-NEEDED)`, or a text
/// asking for TLS, refuses the login in clear, which the server's posture counts.
#[test]
fn managesieve_refusals_tell_by_their_response_code_what_they_say_of_the_secret() {
    let plain = b64(b"\0alice\0secret");
    for (verdict, outcome, refused_for_tls) in [
        ("NO (TRYLATER) \"Temporary authentication failure\"\r\n", Outcome::Unknown, false),
        ("no (trylater)\r\n", Outcome::Unknown, false),
        ("NO (ENCRYPT-NEEDED) \"Plaintext authentication disallowed\"\r\n", Outcome::Failure, true),
        ("NO \"Authentication failed (TRYLATER)\"\r\n", Outcome::Failure, false),
        ("NO (TRYLATERX)\r\n", Outcome::Failure, false),
        // Refused for want of TLS in words only, as Dovecot's other services say it.
        ("NO \"Plaintext authentication disallowed on non-secure (SSL/TLS) connections\"\r\n", Outcome::Failure, true),
        // A demand for TLS is a failure whatever its code.
        ("NO (TRYLATER) \"TLS required\"\r\n", Outcome::Failure, true),
        // A code's data is no text for people: its letters say nothing.
        ("NO (SASL \"YWJj/SSL+ZGVm\") \"Authentication failed\"\r\n", Outcome::Failure, false),
        ("OK (TRYLATER)\r\n", Outcome::Success, false),
    ] {
        let steps = [
            s("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN\"\r\nOK \"ready\"\r\n"),
            C(format!("AUTHENTICATE \"PLAIN\" \"{plain}\"\r\n").into_bytes()),
            s(verdict),
        ];
        let events = play(4190, &steps);
        let alerts = credentials(&events);
        assert_eq!(alerts.iter().map(|alert| alert.outcome).collect::<Vec<_>>(), [outcome], "{verdict}");
        let refused = events
            .iter()
            .any(|event| matches!(event, ProtoEvent::SessionEnd(session) if session.login_refused_for_tls));
        assert_eq!(refused, refused_for_tls, "{verdict}");
    }
}

/// The response code of a `NO` tells what it says of the secret: right (authorization refused
/// after authentication), nothing (the server's failure), or that the login was refused.
#[test]
fn imap_refusals_tell_by_their_response_code_what_they_say_of_the_secret() {
    let plain = "AGFsaWNlAHNlY3JldA=="; // base64 of "\0alice\0secret"
    for (verdict, outcome) in [
        ("a1 NO [AUTHORIZATIONFAILED] not allowed to act as bob\r\n", Outcome::Success),
        ("a1 no [authorizationfailed]\r\n", Outcome::Success),
        ("a1 NO [UNAVAILABLE] Temporary authentication failure. [host:2026-12-02]\r\n", Outcome::Unknown),
        ("a1 NO [SERVERBUG] Internal error occurred\r\n", Outcome::Unknown),
        ("a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed\r\n", Outcome::Failure),
        ("a1 BAD [UNAVAILABLE] odd\r\n", Outcome::Failure),
        (
            "a1 NO [UNAVAILABLE] Plaintext authentication disallowed on non-secure (SSL/TLS) connections\r\n",
            Outcome::Failure,
        ),
        ("a1 NO Login failed for \"[UNAVAILABLE]\"\r\n", Outcome::Failure),
        ("a1 NO Login failed for \"[AUTHORIZATIONFAILED]\"\r\n", Outcome::Failure),
        ("a1 NO [UNAVAILABLEX] odd\r\n", Outcome::Failure),
        ("a1 NO [AUTHENTICATIONFAILED] failed\r\n", Outcome::Failure),
        ("a1 BAD [AUTHORIZATIONFAILED] odd\r\n", Outcome::Failure),
        ("a1 NO AUTHORIZATIONFAILED\r\n", Outcome::Failure),
    ] {
        let events = play(143, &[s("* OK ready\r\n"), c(&format!("a1 AUTHENTICATE PLAIN {plain}\r\n")), s(verdict)]);
        let alerts = credentials(&events);
        assert_eq!(alerts.len(), 1, "{verdict}");
        assert_eq!(alerts[0].outcome, outcome, "{verdict}");
    }
}

/// `NIL` is special only where IMAP's grammar says `nstring`; LOGIN's user name and password are
/// astrings, and servers take `nil` there as the three letters.
#[test]
fn imap_login_takes_nil_as_a_user_name_or_password() {
    for (login, verdict, user, outcome, password_length) in [
        ("a1 LOGIN yuri NIL\r\n", "a1 NO [AUTHENTICATIONFAILED] failed\r\n", "y***", Outcome::Failure, 3),
        ("a1 LOGIN nil \"pw-1234\"\r\n", "a1 OK Logged in\r\n", "n***", Outcome::Success, 7),
        ("nil LOGIN Nil nIL\r\n", "nil OK Logged in\r\n", "N***", Outcome::Success, 3),
    ] {
        let events = play(143, &[s("* OK [CAPABILITY IMAP4rev1] ready\r\n"), c(login), s(verdict)]);
        assert_eq!(summary(&events), one("LOGIN", user, outcome, SecretKind::Password), "user {user}");
        assert_eq!(credentials(&events)[0].secret_length, Some(password_length), "user {user}");
    }
}

#[test]
fn imap_synchronising_literal_waits_for_continuation() {
    let events = play(
        143,
        &[
            s("* OK ready\r\n"),
            c("x7 LOGIN {5}\r\n"),
            s("+ OK\r\n"),
            c("carol {4}\r\n"),
            s("+ OK\r\n"),
            c("p w!\r\n"),
            s("x7 NO [AUTHENTICATIONFAILED] bad\r\n"),
        ],
    );
    let alerts = credentials(&events);
    assert_eq!(summary(&events), one("LOGIN", "c***", Outcome::Failure, SecretKind::Password));
    assert_eq!(alerts[0].secret_length, Some(4));
    assert_eq!(alerts[0].remediation, Remediation::Unknown, "no capability list was seen");
}

#[test]
fn imap_refused_literal_does_not_swallow_the_next_command() {
    let events = play(
        143,
        &[
            s("* OK ready\r\n"),
            c("a LOGIN {4294967296}\r\n"),
            s("a BAD literal too big\r\n"),
            c("b LOGIN alice pw\r\n"),
            s("b OK\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
}

/// Logins the capture shows no reply to (a client pipelining them, or only the client's side
/// captured) are held up to `max_pending_commands`; past it the oldest is reported at once, with
/// outcome unknown, so none is lost and none is kept without limit.
#[test]
fn credentials_awaiting_a_reply_are_bounded_and_none_is_lost() {
    for (port, greeting, login) in
        [(110, "+OK ready\r\n", "USER u{i}\r\nPASS pw{i}\r\n"), (143, "* OK ready\r\n", "a{i} LOGIN u{i} pw{i}\r\n")]
    {
        let mut parts = CtxParts::default();
        let held = parts.config.max_pending_commands;
        let mut session = Session::new(Side::Lo, true, true, port, &parts.config);
        session.on_data(Side::Hi, greeting.as_bytes(), &mut parts.ctx(Timestamp(1)));
        for i in 0..100 {
            let line = login.replace("{i}", &i.to_string());
            session.on_data(Side::Lo, line.as_bytes(), &mut parts.ctx(Timestamp(2)));
        }
        assert_eq!(credentials(&parts.events).len(), 100 - held, "port {port}: reported before the end");
        assert!(credentials(&parts.events).iter().all(|c| c.outcome == Outcome::Unknown));
        assert_eq!(credentials(&parts.events)[0].username.as_deref(), Some("u***"), "the oldest first");
        session.close(&mut parts.ctx(Timestamp(3)));
        assert_eq!(credentials(&parts.events).len(), 100, "port {port}: every login reported");
    }
}

/// A command continued line after line (each ending in a literal, empty or not) keeps at most
/// what one command may, however long it goes on, and is then not read; the next one is.
#[test]
fn an_endless_imap_command_stays_within_the_session_bound() {
    let mut parts = CtxParts::default();
    let bound = parts.config.max_session_buffered();
    let literal = vec![b'x'; parts.config.max_literal];
    let mut session = Session::new(Side::Lo, true, true, 143, &parts.config);
    let mut say = |side, bytes: &[u8], session: &mut Session| {
        session.on_data(side, bytes, &mut parts.ctx(Timestamp(1)));
        assert!(session.buffered() <= bound, "{} bytes held, bound {bound}", session.buffered());
    };
    say(Side::Hi, b"* OK ready\r\n", &mut session);
    // Literal after literal: the fourth would be over the cap, and neither it nor any after is kept.
    say(Side::Lo, b"a LOGIN ", &mut session);
    for round in 0..8 {
        say(Side::Lo, format!("{{{}}}\r\n", literal.len()).as_bytes(), &mut session);
        say(Side::Lo, &literal, &mut session);
        assert!(session.buffered() <= 3 * literal.len(), "round {round}: {} bytes held", session.buffered());
    }
    // Lines of empty lists, each continued by an empty literal: past the argument count.
    say(Side::Lo, b"\r\nc ID ", &mut session);
    for round in 0..8 {
        say(Side::Lo, format!("{}{{0}}\r\n", "() ".repeat(1000)).as_bytes(), &mut session);
        assert!(session.buffered() < 1024, "round {round}: {} bytes held", session.buffered());
    }
    say(Side::Lo, b"\r\nb LOGIN alice pw\r\n", &mut session);
    say(Side::Hi, b"a NO too long\r\nc OK\r\nb OK\r\n", &mut session);
    session.close(&mut parts.ctx(Timestamp(2)));
    assert_eq!(summary(&parts.events), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
}

/// The cap leaves room for the largest legitimate commands: a LOGIN with two literals at the
/// literal limit, and ID with the 30 field-value pairs RFC 2971 allows. (A user name that long is
/// no account: the credential is reported without it.)
#[test]
fn imap_login_with_two_largest_literals_and_a_full_id_are_read() {
    let config = ProtoConfig::default();
    let (user, password) = ("u".repeat(config.max_literal), "p".repeat(config.max_literal));
    let fields: String = (0..30).map(|i| format!("\"k{i}\" \"v{i}\" ")).collect();
    let events = play(
        143,
        &[
            s("* OK ready\r\n"),
            c(&format!("x ID ({fields}\"name\" \"Thunderbird\")\r\n").replace("\"k29\" \"v29\" ", "")),
            s("x OK\r\n"),
            c(&format!("a LOGIN {{{}}}\r\n", user.len())),
            s("+ go\r\n"),
            c(&format!("{user} {{{}}}\r\n", password.len())),
            s("+ go\r\n"),
            c(&format!("{password}\r\n")),
            s("a OK\r\n"),
        ],
    );
    assert_eq!(summary(&events), [("LOGIN".to_string(), None, Outcome::Success, SecretKind::Password)]);
    assert_eq!(credentials(&events)[0].secret_length, Some(config.max_literal));
    let client = &credentials(&events)[0].client;
    assert_eq!(client.software.as_deref(), Some("Thunderbird"), "{client:?}");
}

#[test]
fn imap_authenticate_with_and_without_sasl_ir_and_id() {
    let blob = b64("\0josé.müller@example.test\0pässwörd".as_bytes());
    let events = play(
        143,
        &[
            s("* OK [CAPABILITY IMAP4rev1 SASL-IR ID AUTH=PLAIN] ready\r\n"),
            c("1 ID (\"name\" \"Thunderbird\" \"version\" \"115.3\")\r\n"),
            s("* ID NIL\r\n1 OK\r\n"),
            C(format!("2 AUTHENTICATE PLAIN {blob}\r\n").into_bytes()),
            s("2 OK done\r\n"),
        ],
    );
    assert_eq!(
        summary(&events),
        one("AUTHENTICATE PLAIN", "j***@example.test", Outcome::Success, SecretKind::Password)
    );
    assert_eq!(credentials(&events)[0].client.software.as_deref(), Some("Thunderbird 115.3"));
    let events = play(
        143,
        &[
            s("* OK ready\r\n"),
            c("2 AUTHENTICATE PLAIN\r\n"),
            s("+ \r\n"),
            C(format!("{blob}\r\n").into_bytes()),
            s("2 NO bad\r\n"),
        ],
    );
    assert_eq!(
        summary(&events),
        one("AUTHENTICATE PLAIN", "j***@example.test", Outcome::Failure, SecretKind::Password)
    );
}

#[test]
fn imap_cram_md5_is_weak_and_starttls_stops() {
    let events = play(
        143,
        &[
            s("* OK ready\r\n"),
            c("a AUTHENTICATE CRAM-MD5\r\n"),
            s("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+\r\n"),
            C(format!("{}\r\n", b64(b"tim b913a602c7eda7a495b4e6e7334d3890")).into_bytes()),
            s("a OK\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("AUTHENTICATE CRAM-MD5", "t***", Outcome::Success, SecretKind::ChallengeResponse));
    let events = play(
        143,
        &[s("* OK ready\r\n"), c("a STARTTLS\r\n"), s("a OK go\r\n"), c("b LOGIN alice pw\r\n"), s("b OK\r\n")],
    );
    assert!(summary(&events).is_empty());
}

#[test]
fn imap_preauth_has_nothing_to_report() {
    let events = play(143, &[s("* PREAUTH welcome\r\n"), c("a LOGIN alice pw\r\n"), s("a OK\r\n")]);
    assert!(credentials(&events).is_empty());
}

/// An administrative client reusing one connection for two accounts (RFC 8437, RFC 5804
/// §2.14.1): the server offered UNAUTHENTICATE, so the first login does not end the session.
fn logins_around_unauthenticate() -> Vec<(u16, Vec<Says>)> {
    let plain = |user: &str, password: &str| b64(format!("\0{user}\0{password}").as_bytes());
    vec![
        (
            143,
            vec![
                s("* OK [CAPABILITY IMAP4rev1 UNAUTHENTICATE AUTH=PLAIN] Cyrus IMAP ready\r\n"),
                c("a1 LOGIN dan Fake-Pass-3\r\n"),
                s("a1 OK [CAPABILITY IMAP4rev1 UNAUTHENTICATE X-LOGGED-IN] Logged in\r\n"),
                c("a2 SELECT INBOX\r\n"),
                s("* 1 EXISTS\r\na2 OK done\r\n"),
                c("a3 UNAUTHENTICATE\r\n"),
                s("a3 OK Unauthenticated\r\n"),
                c("a4 LOGIN eve Fake-Pass-4\r\n"),
                s("a4 NO [AUTHENTICATIONFAILED] wrong\r\n"),
            ],
        ),
        (
            4190,
            vec![
                s("\"IMPLEMENTATION\" \"Cyrus timsieved v3.6.1\"\r\n\"SASL\" \"PLAIN\"\r\n\"UNAUTHENTICATE\"\r\nOK\r\n"),
                C(format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", plain("ken", "Fake-Pass-1")).into_bytes()),
                s("OK\r\n"),
                c("CAPABILITY\r\n"),
                s("\"IMPLEMENTATION\" \"Cyrus timsieved v3.6.1\"\r\n\"OWNER\" \"ken\"\r\n\"UNAUTHENTICATE\"\r\nOK\r\n"),
                c("UNAUTHENTICATE\r\n"),
                s("OK\r\n"),
                C(format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", plain("lee", "Fake-Pass-2")).into_bytes()),
                s("NO\r\n"),
            ],
        ),
    ]
}

/// The records sessions left when they ended.
fn session_records(events: &[ProtoEvent]) -> Vec<&SessionRecord> {
    events
        .iter()
        .filter_map(|event| match event {
            ProtoEvent::SessionEnd(record) => Some(record),
            ProtoEvent::Credential(_) | ProtoEvent::Anomaly { .. } => None,
        })
        .collect()
}

/// The record a session left when it ended.
fn session_record(events: &[ProtoEvent]) -> &SessionRecord {
    session_records(events).first().copied().unwrap()
}

#[test]
fn a_second_login_after_unauthenticate_is_reported() {
    let [(imap_port, imap), (sieve_port, sieve)] = logins_around_unauthenticate().try_into().unwrap();
    let events = play(imap_port, &imap);
    let expected = [
        ("LOGIN".to_string(), Some("d***".to_string()), Outcome::Success, SecretKind::Password),
        ("LOGIN".to_string(), Some("e***".to_string()), Outcome::Failure, SecretKind::Password),
    ];
    assert_eq!(summary(&events), expected);
    // Capabilities listed once logged in are not the server's posture.
    let record = session_record(&events);
    assert!(!record.server.capabilities.iter().any(|c| c == "X-LOGGED-IN"), "{:?}", record.server.capabilities);

    let events = play(sieve_port, &sieve);
    let expected = [
        ("AUTHENTICATE PLAIN".to_string(), Some("k***".to_string()), Outcome::Success, SecretKind::Password),
        ("AUTHENTICATE PLAIN".to_string(), Some("l***".to_string()), Outcome::Failure, SecretKind::Password),
    ];
    assert_eq!(summary(&events), expected);
    let record = session_record(&events);
    assert!(!record.server.capabilities.iter().any(|c| c.starts_with("OWNER")), "{:?}", record.server.capabilities);
}

/// Without UNAUTHENTICATE on offer, a login still ends the session: logged-in traffic is not read.
#[test]
fn a_login_ends_the_session_unless_unauthenticate_was_offered() {
    for (port, steps) in logins_around_unauthenticate() {
        let steps: Vec<Says> = steps
            .into_iter()
            .map(|step| match step {
                S(bytes) => S(String::from_utf8(bytes).unwrap().replace("UNAUTHENTICATE", "X-OTHER").into_bytes()),
                other => other,
            })
            .collect();
        let mut parts = CtxParts::default();
        let mut session = Session::new(Side::Lo, true, true, port, &parts.config);
        feed(&mut session, &mut parts, &steps[..3], usize::MAX);
        assert_eq!(session.done_reason(), Some(DoneReason::Authenticated), "port {port}");
        assert_eq!(summary(&play(port, &steps)).len(), 1, "port {port}");
    }
}

fn smtp_auth_login() -> Vec<Says> {
    vec![
        s("220 mx.example.test ESMTP Postfix (Debian/GNU)\r\n"),
        c("EHLO client\r\n"),
        s("250-mx.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
        c("AUTH LOGIN\r\n"),
        s("334 VXNlcm5hbWU6\r\n"),
        C(format!("{}\r\n", b64(b"gurpartap@patriots.in")).into_bytes()),
        s("334 UGFzc3dvcmQ6\r\n"),
        C(format!("{}\r\n", b64(b"punjab@123")).into_bytes()),
        s("235 2.7.0 Authentication successful\r\n"),
        c("MAIL FROM:<a@b>\r\n"),
    ]
}

#[test]
fn smtp_auth_login_with_capabilities() {
    let events = play(587, &smtp_auth_login());
    assert_eq!(summary(&events), one("AUTH LOGIN", "g***@patriots.in", Outcome::Success, SecretKind::Password));
    let alert = credentials(&events)[0];
    assert_eq!(alert.server.starttls_offered, Some(true));
    assert_eq!(alert.remediation, Remediation::ClientSkippedStarttls);
    assert_eq!(alert.server.hostname.as_deref(), Some("mx.example.test"));
    assert!(alert.server.capabilities.iter().any(|c| c == "AUTH PLAIN LOGIN"));
}

#[test]
fn smtp_mail_bodies_are_not_logins() {
    let events = play(
        25,
        &[
            s("220 mx ESMTP\r\n"),
            c("EHLO c\r\n"),
            s("250 mx\r\n"),
            c("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
            s("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
            c("Subject: test\r\n\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nPASS secret\r\n.\r\n"),
            s("250 queued\r\n"),
            c("BDAT 30 LAST\r\nAUTH LOGIN\r\nUSER a\r\nPASS b\r\n"),
            s("250 ok\r\n"),
            c("QUIT\r\n"),
        ],
    );
    assert!(credentials(&events).is_empty(), "{events:?}");
}

#[test]
fn smtp_auth_plain_initial_response_failure() {
    let blob = b64(b"\0eve\0wrong");
    let events = play(
        25,
        &[
            s("220 mx ESMTP\r\n"),
            c("EHLO c\r\n"),
            s("250 mx\r\n"),
            C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
            s("535 5.7.8 failed\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("AUTH PLAIN", "e***", Outcome::Failure, SecretKind::Password));
}

#[test]
fn any_port_needs_a_mail_greeting() {
    let pop3_on_1110 = play(1110, &pop3_user_pass());
    assert_eq!(summary(&pop3_on_1110).len(), 1);
    let redis = play(6379, &[c("AUTH hunter2\r\n"), s("+OK\r\n"), c("USER x\r\n"), c("PASS y\r\n"), s("+OK\r\n")]);
    assert!(redis.is_empty());
    let ftp = play(
        21,
        &[
            s("220 ProFTPD ready\r\n"),
            c("USER alice\r\n"),
            s("331 Password required\r\n"),
            c("PASS secret\r\n"),
            s("230 ok\r\n"),
        ],
    );
    assert!(ftp.is_empty());
    let smtp_on_10025 = play(10025, &smtp_auth_login());
    assert_eq!(summary(&smtp_on_10025).len(), 1);
    assert_eq!(
        credentials(&smtp_on_10025)[0].server.greeting.as_deref(),
        Some("220 mx.example.test ESMTP Postfix (Debian/GNU)")
    );
}

/// Clients that talk before the greeting (or captures whose two directions are skewed), each
/// shown its server's greeting first, then its own words, then the replies.
fn early_talkers() -> Vec<(u16, Vec<Says>)> {
    let blob = b64(b"\0alice\0hunter2");
    vec![
        (110, vec![c("USER alice\r\n"), s("+OK ready\r\n"), s("+OK\r\n"), c("PASS hunter2\r\n"), s("-ERR bad\r\n")]),
        (2110, vec![c("USER alice\r\nPASS hunter2\r\n"), s("+OK ready\r\n+OK\r\n-ERR bad\r\n")]),
        (2143, vec![c("a LOGIN alice hunter2\r\n"), s("* OK ready\r\na NO bad\r\n")]),
        (
            10025,
            vec![
                C(format!("EHLO x\r\nAUTH PLAIN {blob}\r\n").into_bytes()),
                s("220-mx.example.test ESMTP\r\n220 ready\r\n250-mx.example.test\r\n250 AUTH PLAIN\r\n535 no\r\n"),
            ],
        ),
        (
            2190,
            vec![
                C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes()),
                s("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\nOK \"ready\"\r\nNO \"bad\"\r\n"),
            ],
        ),
    ]
}

#[test]
fn a_client_talking_before_the_greeting_is_read_after_it() {
    let expected = [
        ("USER/PASS", "+OK ready"),
        ("USER/PASS", "+OK ready"),
        ("LOGIN", "* OK ready"),
        ("AUTH PLAIN", "220-mx.example.test ESMTP"),
        ("AUTHENTICATE PLAIN", "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\""),
    ];
    for ((port, steps), (mechanism, greeting)) in early_talkers().into_iter().zip(expected) {
        let events = play(port, &steps);
        assert_eq!(summary(&events), one(mechanism, "a***", Outcome::Failure, SecretKind::Password), "port {port}");
        assert_eq!(credentials(&events)[0].server.greeting.as_deref(), Some(greeting), "port {port}");
        if port == 10025 {
            let Some(ProtoEvent::SessionEnd(record)) = events.last() else { panic!("{events:?}") };
            assert!(record.server.capabilities.contains("AUTH PLAIN"), "the EHLO reply, after the whole greeting");
        }
    }
}

/// Clients that talk while a multi-line greeting is still coming (a `220-` line, ManageSieve's
/// capability lines before `OK`), then the rest of the greeting, then the replies.
fn mid_greeting_talkers() -> Vec<(u16, Vec<Says>)> {
    let blob = b64(b"\0alice\0hunter2");
    let smtp = |port| {
        (
            port,
            vec![
                s("220-mx.example.test ESMTP Postfix\r\n"),
                C(format!("EHLO bot\r\nAUTH PLAIN {blob}\r\n").into_bytes()),
                s("220 mx.example.test ESMTP Postfix\r\n250-mx.example.test\r\n250 AUTH PLAIN\r\n"),
                s("235 2.7.0 Authentication successful\r\n"),
            ],
        )
    };
    vec![
        smtp(25),
        smtp(10025),
        (
            4190,
            vec![
                s("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n"),
                C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes()),
                s("\"SASL\" \"PLAIN LOGIN\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n"),
                s("NO \"Authentication failed.\"\r\n"),
            ],
        ),
    ]
}

/// What a client says while a multi-line greeting is still coming is read after the greeting's
/// last line, so that each reply answers its own command.
#[test]
fn a_client_talking_during_a_multi_line_greeting_is_read_after_it() {
    let expected =
        [("AUTH PLAIN", Outcome::Success), ("AUTH PLAIN", Outcome::Success), ("AUTHENTICATE PLAIN", Outcome::Failure)];
    for ((port, steps), (mechanism, outcome)) in mid_greeting_talkers().into_iter().zip(expected) {
        let events = play(port, &steps);
        assert_eq!(summary(&events), one(mechanism, "a***", outcome, SecretKind::Password), "port {port}");
        let Some(ProtoEvent::SessionEnd(record)) = events.last() else { panic!("{events:?}") };
        let capability = if port == 4190 { "SASL PLAIN LOGIN" } else { "AUTH PLAIN" };
        assert!(record.server.capabilities.contains(capability), "port {port}: the whole greeting, then the replies");
    }
}

#[test]
fn a_client_talking_first_is_held_only_while_it_may_be_a_mail_client() {
    let not_mail = |port: u16, first: &[u8]| {
        let mut parts = CtxParts::default();
        let mut session = Session::new(Side::Lo, true, true, port, &parts.config);
        session.on_data(Side::Lo, first, &mut parts.ctx(Timestamp(0)));
        parts.stats.not_mail == 1 && session.buffered() == 0
    };
    assert!(not_mail(8080, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP is let go at its first line");
    assert!(not_mail(6379, b"AUTH hunter2\r\n"), "Redis's AUTH is not held for a +OK");
    assert!(!not_mail(2110, b"USER al"), "the start of a line may become a command");

    // A hold ends when the flow does, the server's side has a gap, or it grows past a line.
    let mut parts = CtxParts::default();
    let mut session = Session::new(Side::Lo, true, true, 110, &parts.config);
    session.on_data(Side::Lo, b"USER alice\r\nPASS hunter2\r\n", &mut parts.ctx(Timestamp(0)));
    assert!(credentials(&parts.events).is_empty(), "held for the greeting");
    assert!(!format!("{session:?}").contains("hunter2"), "held bytes are not printed");
    session.close(&mut parts.ctx(Timestamp(1)));
    assert_eq!(summary(&parts.events), one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));

    let mut parts = CtxParts::default();
    let mut session = Session::new(Side::Lo, true, true, 110, &parts.config);
    session.on_data(Side::Lo, b"USER alice\r\nPASS hunter2\r\n", &mut parts.ctx(Timestamp(0)));
    session.on_gap(Side::Hi, 100, &mut parts.ctx(Timestamp(1)));
    assert!(session.early_client.is_none(), "the greeting may be what was lost: read the client's words now");
    session.on_data(Side::Hi, b" greeting tail\r\n+OK\r\n+OK\r\n", &mut parts.ctx(Timestamp(2)));
    assert_eq!(summary(&parts.events), one("USER/PASS", "a***", Outcome::Success, SecretKind::Password));

    let mut parts = CtxParts::default();
    let max_line = parts.config.max_line;
    let mut session = Session::new(Side::Lo, true, true, 110, &parts.config);
    session.on_data(Side::Lo, b"USER alice\r\nPASS hunter2\r\n", &mut parts.ctx(Timestamp(0)));
    session.on_data(Side::Lo, format!("NOOP{}\r\n", " ".repeat(max_line)).as_bytes(), &mut parts.ctx(Timestamp(1)));
    assert!(session.early_client.is_none(), "more than a line is not held");
    session.close(&mut parts.ctx(Timestamp(2)));
    assert_eq!(summary(&parts.events), one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));

    // Without the server's opening in the capture, nothing is held: the greeting may never come.
    let mut parts = CtxParts::default();
    let mut session = Session::new(Side::Lo, true, false, 110, &parts.config);
    session.on_data(Side::Lo, b"USER alice\r\nPASS hunter2\r\n", &mut parts.ctx(Timestamp(0)));
    assert!(session.early_client.is_none());
    session.close(&mut parts.ctx(Timestamp(1)));
    assert_eq!(summary(&parts.events), one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));
}

/// A lost client segment that held whole lines hides none of the lines after it: the first line
/// after the gap is read when it looks like a command of the session's state, as a capture that
/// starts there would be. (Where replies come in order, POP3's and SMTP's, the reply to the lost
/// command takes the place of the next one's: these transcripts leave it out.)
#[test]
fn a_login_right_after_a_lost_segment_is_read() {
    let blob = b64(b"\0alice\0hunter2");
    for (port, steps, mechanism, user) in [
        (
            143,
            vec![
                s("* OK ready\r\n"),
                ClientLost(14),
                c("a1 LOGIN alice hunter2\r\n"),
                s("* CAPABILITY IMAP4rev1\r\na0 OK\r\na1 OK\r\n"),
            ],
            "LOGIN",
            Some("a***"),
        ),
        (110, vec![s("+OK ready\r\n"), ClientLost(12), c("PASS hunter2\r\n"), s("+OK\r\n+OK\r\n")], "USER/PASS", None),
        (
            587,
            vec![
                s("220 mx ESMTP\r\n"),
                ClientLost(8),
                C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
                s("235 ok\r\n"),
            ],
            "AUTH PLAIN",
            Some("a***"),
        ),
        (
            4190,
            vec![
                s(SIEVE_GREETING),
                ClientLost(12),
                C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes()),
                s("OK\r\nOK\r\n"),
            ],
            "AUTHENTICATE PLAIN",
            Some("a***"),
        ),
    ] {
        let events = play(port, &steps);
        let expected = vec![(mechanism.to_string(), user.map(str::to_string), Outcome::Success, SecretKind::Password)];
        assert_eq!(summary(&events), expected, "port {port}");
    }
}

/// An IMAP server's tagged verdict right after lost server lines is read: it names the command it
/// answers, so it cannot be the cut tail of a lost line. Anything else first after the gap is
/// dropped, as it may be such a tail (here a status for a tag never sent).
#[test]
fn an_imap_verdict_right_after_lost_server_lines_is_read() {
    let login = |after_gap: &str| {
        play(
            143,
            &[s("* OK ready\r\n"), c("a1 LOGIN alice hunter2\r\n"), ServerLost(40), S(after_gap.as_bytes().to_vec())],
        )
    };
    assert_eq!(
        summary(&login("a1 OK LOGIN completed\r\n")),
        one("LOGIN", "a***", Outcome::Success, SecretKind::Password)
    );
    assert_eq!(
        summary(&login("a1 no [AUTHENTICATIONFAILED] bad\r\n")),
        one("LOGIN", "a***", Outcome::Failure, SecretKind::Password)
    );
    assert_eq!(
        summary(&login("1 OK done\r\na1 NO [AUTHENTICATIONFAILED] bad\r\n")),
        one("LOGIN", "a***", Outcome::Failure, SecretKind::Password)
    );
    assert_eq!(
        summary(&login("b1 OK LOGIN completed\r\n")),
        one("LOGIN", "a***", Outcome::Unknown, SecretKind::Password)
    );
}

fn acked(text: &str) -> Says {
    CAcked(text.as_bytes().to_vec())
}

/// Replies the capture lost after a command (POP3, SMTP and ManageSieve answer in command order):
/// the client's next command, sent having received every server byte, the lost ones included,
/// shows they answered the commands before it, and the reply after it is its own. Sent without
/// having received them (a client pipelining), it shows nothing, and nothing is guessed.
#[test]
fn replies_lost_before_a_command_sent_after_them_answer_none_after_it() {
    let blob = b64(b"\0alice\0hunter2");
    let sessions = |login: fn(&str) -> Says| {
        [
            (110, vec![s("+OK ready\r\n"), c("USER alice\r\n"), ServerLost(5), login("PASS hunter2\r\n")], "-ERR bad"),
            (
                587,
                vec![s("220 mx ESMTP\r\n"), c("EHLO x\r\n"), ServerLost(40), login(&format!("AUTH PLAIN {blob}\r\n"))],
                "535 5.7.8 bad",
            ),
            (
                4190,
                vec![
                    s(SIEVE_GREETING),
                    c("CAPABILITY\r\n"),
                    ServerLost(60),
                    login(&format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n")),
                ],
                "NO \"bad\"",
            ),
        ]
    };
    for (login, outcome) in [(acked as fn(&str) -> Says, Outcome::Failure), (c, Outcome::Unknown)] {
        for (port, mut steps, refusal) in sessions(login) {
            steps.push(S(format!("{refusal}\r\n").into_bytes()));
            let found = summary(&play(port, &steps));
            assert_eq!(found.iter().map(|login| login.2).collect::<Vec<_>>(), [outcome], "port {port}: {found:?}");
        }
    }
}

/// A login's verdict lost together with the client's next command: no later server line is read
/// as the verdict, whichever loss came first (here a message body's line that reads as one, the
/// lost command a `RETR`). A command lost with no server byte lost was sent behind the login: the
/// verdict still comes, first.
#[test]
fn a_verdict_lost_with_the_command_after_it_is_taken_from_no_later_line() {
    let blob = b64(b"\0alice\0hunter2");
    let logins: [(u16, Vec<Says>, &str, &str); 5] = [
        (
            110,
            vec![s("+OK ready\r\n"), c("USER alice\r\n"), s("+OK\r\n"), c("PASS hunter2\r\n")],
            "-ERR bad",
            "+OK Logged in.",
        ),
        (
            110,
            vec![
                s("+OK ready\r\n"),
                c("AUTH LOGIN\r\n"),
                s("+ VXNlcm5hbWU6\r\n"),
                C(format!("{}\r\n", b64(b"alice")).into_bytes()),
                s("+ UGFzc3dvcmQ6\r\n"),
                C(format!("{}\r\n", b64(b"hunter2")).into_bytes()),
            ],
            "-ERR bad",
            "+OK Logged in.",
        ),
        (
            587,
            vec![
                s("220 mx ESMTP\r\n"),
                c("EHLO x\r\n"),
                s("250 mx\r\n"),
                C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
            ],
            "535 5.7.8 bad",
            "235 2.7.0 Authentication successful",
        ),
        (
            4190,
            vec![s(SIEVE_GREETING), C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes())],
            "NO \"bad\"",
            "OK \"Logged in.\"",
        ),
        (
            4190,
            vec![
                s(SIEVE_GREETING),
                c("AUTHENTICATE \"LOGIN\"\r\n"),
                S(format!("\"{}\"\r\n", b64(b"Username:")).into_bytes()),
                C(format!("\"{}\"\r\n", b64(b"alice")).into_bytes()),
                S(format!("\"{}\"\r\n", b64(b"Password:")).into_bytes()),
                C(format!("\"{}\"\r\n", b64(b"hunter2")).into_bytes()),
            ],
            "NO \"bad\"",
            "OK \"Logged in.\"",
        ),
    ];
    for (port, login, refusal, accepting) in &logins {
        // The server's bytes after the loss: a line's tail (dropped: the loss may have cut it),
        // then a line that reads as an acceptance.
        let after_loss = S(format!("the quarterly report\r\n{accepting}\r\n").into_bytes());
        let losses: [(Vec<Says>, Outcome); 3] = [
            (vec![ServerLost(40), ClientLost(8), after_loss.clone()], Outcome::Unknown),
            (vec![ClientLost(8), ServerLost(40), after_loss], Outcome::Unknown),
            (vec![ClientLost(8), S(format!("{refusal}\r\n").into_bytes())], Outcome::Failure),
        ];
        for (lost, outcome) in losses {
            let steps: Vec<Says> = login.iter().cloned().chain(lost).collect();
            let found = summary(&play(*port, &steps));
            assert_eq!(found.iter().map(|login| login.2).collect::<Vec<_>>(), [outcome], "port {port}: {steps:?}");
        }
    }
}

/// Where the server's bytes stood before a loss (a line's end: the client had them all) says
/// nothing of where they resume after another: the line after it may be a tail, and one that
/// reads as a status is not taken for the verdict.
#[test]
fn the_line_after_a_second_server_loss_is_not_read_as_a_verdict() {
    let steps = [
        s("+OK ready\r\n"),
        c("USER alice\r\n"),
        ServerLost(5),
        acked("PASS hunter2\r\n"),
        ServerLost(30),
        s("+OK but this is the tail of a line\r\n"),
    ];
    let found = summary(&play(110, &steps));
    assert_eq!(found, one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));
}

/// An exchange whose AUTH line the capture lost (and the commands before it, and their replies)
/// is read from the challenge on: a PLAIN or XOAUTH2 response says what it holds, LOGIN's
/// `Password:` prompt says which response is the password (its user name is not kept: the
/// command's position unknown, a password must never be shown as one), and the verdict is
/// AUTH's.
#[test]
fn an_exchange_whose_command_was_lost_is_read_from_its_challenge() {
    let plain = b64(b"\0alice\0hunter2");
    let xoauth2 = b64(b"user=alice\x01auth=Bearer ya29.token\x01\x01");
    let login = |challenge: &str, prompt: &str| -> Vec<Says> {
        vec![
            S(format!("{challenge}{}\r\n", b64(b"Username:")).into_bytes()),
            C(format!("{}\r\n", b64(b"alice")).into_bytes()),
            S(format!("{challenge}{}\r\n", b64(prompt.as_bytes())).into_bytes()),
            C(format!("{}\r\n", b64(b"hunter2")).into_bytes()),
        ]
    };
    let cases: Vec<(u16, Vec<Says>, &str, Option<&str>)> = vec![
        (587, login("334 ", "Password:"), "LOGIN", None),
        (110, login("+ ", "Password:"), "LOGIN", None),
        (143, login("+ ", "Password:"), "LOGIN", None),
        (587, vec![s("334 \r\n"), C(format!("{plain}\r\n").into_bytes())], "PLAIN", Some("a***")),
        (110, vec![s("+ \r\n"), C(format!("{plain}\r\n").into_bytes())], "PLAIN", Some("a***")),
        (143, vec![s("+ \r\n"), C(format!("{plain}\r\n").into_bytes())], "PLAIN", Some("a***")),
        (110, vec![s("+ \r\n"), C(format!("{xoauth2}\r\n").into_bytes())], "XOAUTH2", Some("a***")),
        // The prompt after the user name lost: the response after it is the next by position.
        (
            587,
            vec![
                s(&format!("334 {}\r\n", b64(b"Username:"))),
                C(format!("{}\r\n", b64(b"alice")).into_bytes()),
                ServerLost(18),
                acked(&format!("{}\r\n", b64(b"hunter2"))),
            ],
            "LOGIN",
            None,
        ),
    ];
    for (port, exchange, mechanism, user) in cases {
        let kind = if mechanism == "XOAUTH2" { SecretKind::Token } else { SecretKind::Password };
        let (opening, verb, verdict): (Vec<Says>, &str, &str) = match port {
            110 => (vec![s("+OK ready\r\n"), c("CAPA\r\n"), ClientLost(12)], "AUTH", "+OK Logged in.\r\n"),
            143 => (
                vec![
                    s("* OK ready\r\n"),
                    c("a1 CAPABILITY\r\n"),
                    s("* CAPABILITY IMAP4rev1\r\na1 OK done\r\n"),
                    ClientLost(25),
                ],
                "AUTHENTICATE",
                "a2 OK Logged in\r\n",
            ),
            _ => (vec![s("220 mx ESMTP\r\n"), ClientLost(21)], "AUTH", "235 2.7.0 Authentication successful\r\n"),
        };
        let steps: Vec<Says> = opening.into_iter().chain(exchange).chain([s(verdict)]).collect();
        let found = summary(&play(port, &steps));
        let expected = vec![(format!("{verb} {mechanism}"), user.map(str::to_string), Outcome::Success, kind)];
        assert_eq!(found, expected, "port {port}: {steps:?}");
    }
}

/// IMAP's continuation request also answers a literal: one while a logged-in command is in
/// flight (`IDLE`, `APPEND`) begins no exchange.
#[test]
fn an_imap_continuation_while_idle_begins_no_exchange() {
    let plain = b64(b"\0alice\0hunter2");
    let idle = [
        s("* OK ready\r\n"),
        c("a1 LOGIN alice hunter2\r\n"),
        ServerLost(20),
        c("a2 IDLE\r\n"),
        s("* 3 EXISTS\r\n+ idling\r\n"),
        C(format!("{plain}\r\n").into_bytes()),
        s("a2 OK done\r\n"),
    ];
    assert_eq!(summary(&play(143, &idle)), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
}

/// A `LOGIN` line lost whole, its literal announced: the server's go-ahead (a continuation whose
/// text is no base64 challenge) shows the client's next line to be that literal and the rest of
/// the command. A line announcing a second literal carried the user name, and the password
/// follows whole (partial when it lost bytes); a line that ends the command holds the password,
/// where in it is not known (partial, no user name), also when the line's end was lost. `ID`'s
/// list, an empty continuation (SASL's), a client loss that may have taken the line's start, or
/// a session picked up midstream (an `APPEND`'s go-ahead, past a login) report nothing.
#[test]
fn a_lost_login_line_is_read_from_its_literal_after_the_go_ahead() {
    let failed = || s("a7 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    /// The masked user name, the outcome and the secret's length, when a login is reported.
    type Found = Option<(Option<&'static str>, Outcome, Option<usize>)>;
    let cases: [(Vec<Says>, Found); 11] = [
        (vec![s("+ OK\r\n"), c("hunter2\r\n"), s("a7 OK Logged in\r\n")], Some((None, Outcome::Success, None))),
        (
            vec![s("+ Ready for literal data\r\n"), c("alice {7}\r\n"), s("+ OK\r\n"), c("hunter2\r\n"), failed()],
            Some((Some("a***"), Outcome::Failure, Some(7))),
        ),
        (
            vec![s("+ go ahead\r\n"), c("alice {7+}\r\nhunter2\r\n"), s("a7 OK Logged in\r\n")],
            Some((Some("a***"), Outcome::Success, Some(7))),
        ),
        (vec![s("+ OK\r\n"), c("Thunderbird)\r\n"), s("a7 OK\r\n")], None),
        (vec![s("+ \r\n"), c("hunter2\r\n"), s("a7 OK Logged in\r\n")], None),
        (vec![s("+ OK\r\n"), ClientLost(4), c("er2\r\n"), s("a7 OK Logged in\r\n")], None),
        // Refused before its literal came: the next line is a command again.
        (vec![s("+ OK\r\n"), s("a7 BAD too long\r\n"), c("a8 LOGOUT\r\n")], None),
        // The line's end lost, and the verdict: a later mailbox command accepted shows it.
        (
            vec![s("+ OK\r\n"), c("hunter2"), ClientLost(2), c("b1 SELECT INBOX\r\n"), s("b1 OK done\r\n")],
            Some((None, Outcome::Success, None)),
        ),
        // The verdict lost: the reply to a command seen after it, or to one lost after it, is
        // not taken for it.
        (
            vec![s("+ OK\r\n"), c("hunter2\r\n"), c("z1 LOGOUT\r\n"), s("* BYE\r\nz1 OK Logout completed.\r\n")],
            Some((None, Outcome::Unknown, None)),
        ),
        (
            vec![s("+ OK\r\n"), c("hunter2\r\n"), ClientLost(11), s("* BYE\r\nz1 OK Logout completed.\r\n")],
            Some((None, Outcome::Unknown, None)),
        ),
        // The password's literal lost bytes: partial, the user name kept.
        (
            vec![s("+ OK\r\n"), c("alice {7+}\r\nhun"), ClientLost(2), c("r2\r\n"), s("a7 OK Logged in\r\n")],
            Some((Some("a***"), Outcome::Success, None)),
        ),
    ];
    for (i, (steps, expected)) in cases.into_iter().enumerate() {
        let transcript = [vec![s("* OK ready\r\n"), ClientLost(20)], steps, vec![c("a9 SELECT INBOX\r\n")]].concat();
        let events = play(143, &transcript);
        let logins = credentials(&events);
        match expected {
            Some((user, outcome, secret_length)) => {
                let [login] = logins.as_slice() else { panic!("case {i}: {events:?}") };
                assert_eq!(login.mechanism.to_string(), "LOGIN", "case {i}");
                assert_eq!((login.username.as_deref(), login.outcome), (user, outcome), "case {i}");
                assert_eq!((login.secret_length, login.partial), (secret_length, secret_length.is_none()), "case {i}");
            }
            None => assert!(logins.is_empty(), "case {i}: {events:?}"),
        }
    }
    // A lost `ID` answered: no login is taken for done, and the client's next one is read.
    let id = vec![
        s("* OK ready\r\n"),
        ClientLost(20),
        s("+ OK\r\n"),
        c("Thunderbird)\r\n"),
        s("a7 OK ID completed\r\n"),
        c("a8 LOGIN alice hunter2\r\n"),
        s("a8 OK Logged in\r\n"),
    ];
    assert_eq!(summary(&play(143, &id)), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
    // The same with an empty go-ahead, read as a lost AUTHENTICATE's first challenge.
    let mut id_empty_go_ahead = id.clone();
    id_empty_go_ahead[2] = s("+ \r\n");
    let events = play(143, &id_empty_go_ahead);
    assert_eq!(summary(&events), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
    // The greeting lost, the handshake seen: still before any login; picked up midstream (no
    // handshake), the go-ahead may be an APPEND's, past a login.
    let greeting_lost = [
        ServerLost(30),
        c("a1 CAPABILITY\r\n"),
        s("* CAPABILITY IMAP4rev1\r\na1 OK done\r\n"),
        ClientLost(20),
        s("+ OK\r\n"),
        c("hunter2\r\n"),
        s("a7 OK Logged in\r\n"),
    ];
    let events = play(143, &greeting_lost);
    assert_eq!(summary(&events), [("LOGIN".to_string(), None, Outcome::Success, SecretKind::Password)]);
    let parts = CtxParts::default();
    let session = Session::new(Side::Lo, false, false, 143, &parts.config);
    let midstream = play_on(session, parts, &greeting_lost, usize::MAX);
    assert!(credentials(&midstream).is_empty(), "{midstream:?}");
    // Picked up midstream (no greeting): the go-ahead may be an APPEND's, past a login.
    let parts = CtxParts::default();
    let session = Session::new(Side::Lo, false, false, 143, &parts.config);
    let append = [ClientLost(30), s("+ Ready for literal data\r\n"), c("Subject: hi\r\n"), s("a5 OK APPEND done\r\n")];
    let midstream = play_on(session, parts, &append, usize::MAX);
    assert!(credentials(&midstream).is_empty(), "{midstream:?}");
}

/// Bytes lost inside a LOGIN literal whose length was announced: the literal's end is known, so
/// the command is read on after it. A user name that lost bytes leaves the password whole, with
/// no user name; a password that lost bytes is reported partial, its length and fingerprint
/// unknown; a loss that runs past the literal's end leaves the command unread, as before.
#[test]
fn a_loss_inside_an_imap_literal_leaves_the_rest_of_the_login_readable() {
    let greeting = || s("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n");
    /// The masked user name and whether the password is partial, when a login is reported.
    type Found = Option<(Option<&'static str>, bool)>;
    let cases: [(Vec<Says>, Found); 6] = [
        // The user name's literal lost its middle, then LITERAL+ for the password.
        (vec![c("a1 LOGIN {5+}\r\nal"), ClientLost(2), c("e {7+}\r\nhunter2\r\n")], Some((None, false))),
        // Lost up to the literal's end: the line goes on right after it.
        (vec![c("a1 LOGIN {5}\r\n"), s("+ OK\r\n"), c("al"), ClientLost(3), c(" hunter2\r\n")], Some((None, false))),
        // The whole literal lost, its announcement seen.
        (vec![c("a1 LOGIN {5}\r\n"), s("+ OK\r\n"), ClientLost(5), c(" \"hunter2\"\r\n")], Some((None, false))),
        // The password's literal lost bytes: partial.
        (
            vec![c("a1 LOGIN alice {7}\r\n"), s("+ OK\r\n"), c("hun"), ClientLost(2), c("r2\r\n")],
            Some((Some("a***"), true)),
        ),
        (vec![c("a1 LOGIN alice {7+}\r\nhun"), ClientLost(4), c("\r\n")], Some((Some("a***"), true))),
        // Past the literal's end: where the line goes on is not known.
        (vec![c("a1 LOGIN {5}\r\n"), s("+ OK\r\n"), c("al"), ClientLost(9), c("\r\n")], None),
    ];
    for (i, (steps, expected)) in cases.into_iter().enumerate() {
        let transcript = [vec![greeting()], steps, vec![s("a1 OK Logged in\r\n"), c("a2 SELECT INBOX\r\n")]].concat();
        let events = play(143, &transcript);
        let logins = credentials(&events);
        match expected {
            Some((user, partial)) => {
                let [login] = logins.as_slice() else { panic!("case {i}: {events:?}") };
                assert_eq!(
                    (login.mechanism.to_string(), login.outcome),
                    ("LOGIN".to_string(), Outcome::Success),
                    "case {i}"
                );
                assert_eq!(login.username.as_deref(), user, "case {i}");
                assert_eq!(login.partial, partial, "case {i}");
                assert_eq!(login.secret_length, (!partial).then_some(7), "case {i}");
            }
            None => assert!(logins.is_empty(), "case {i}: {events:?}"),
        }
    }
    // Another command's literal that lost bytes: the command's line is read to its end, and the
    // line after it is a command again.
    let id = [
        greeting(),
        c("a1 ID (\"name\" {11}\r\n"),
        s("+ OK\r\n"),
        c("Thund"),
        ClientLost(3),
        c("ird)\r\n"),
        s("a1 OK\r\n"),
        c("a2 LOGIN alice hunter2\r\n"),
        s("a2 OK Logged in\r\n"),
    ];
    assert_eq!(summary(&play(143, &id)), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
}

/// LOGIN's user name response lost whole: the next response is the password (the client sends
/// nothing else meanwhile), reported with no user name, whether the command was captured or not.
/// The `Password:` prompt shows the loss ended where the user name did (the server asked having
/// it). With the prompt lost too, the line before the verdict is the response it answers: the
/// password, or its end if the loss took its start, reported partial.
#[test]
fn a_login_exchange_that_lost_its_user_name_still_shows_its_password() {
    let password = || acked(&format!("{}\r\n", b64(b"hunter2")));
    for (port, verb) in [(110, "AUTH"), (587, "AUTH"), (143, "AUTHENTICATE")] {
        let (challenge, opening, command, verdict) = match port {
            110 => ("+ ", "+OK ready\r\n", "AUTH LOGIN\r\n", "+OK Logged in.\r\n"),
            587 => ("334 ", "220 mx ESMTP\r\n", "AUTH LOGIN\r\n", "235 2.7.0 Authentication successful\r\n"),
            _ => ("+ ", "* OK ready\r\n", "a1 AUTHENTICATE LOGIN\r\n", "a1 OK Logged in\r\n"),
        };
        let user_prompt = s(&format!("{challenge}{}\r\n", b64(b"Username:")));
        let password_prompt = s(&format!("{challenge}{}\r\n", b64(b"Password:")));
        let prompt_len = format!("{challenge}{}\r\n", b64(b"Password:")).len() as u64;
        let mechanism = format!("{verb} LOGIN");
        // (partial, secret length); no user name is shown
        let whole = (false, Some(7));
        let password_or_its_end = (true, None);
        let variants: [(Vec<Says>, _); 4] = [
            (vec![c(command), user_prompt.clone(), ClientLost(10), password_prompt.clone(), password()], whole),
            (
                vec![
                    ClientLost(command.len() as u64),
                    user_prompt.clone(),
                    ClientLost(10),
                    password_prompt.clone(),
                    password(),
                ],
                whole,
            ),
            (
                vec![c(command), user_prompt.clone(), ClientLost(10), ServerLost(prompt_len), password()],
                password_or_its_end,
            ),
            (
                vec![
                    ClientLost(command.len() as u64),
                    user_prompt.clone(),
                    ClientLost(10),
                    ServerLost(prompt_len),
                    password(),
                ],
                password_or_its_end,
            ),
        ];
        for (exchange, (partial, length)) in variants {
            let steps: Vec<Says> = [s(opening)].into_iter().chain(exchange).chain([s(verdict)]).collect();
            let events = play(port, &steps);
            let logins = credentials(&events);
            assert_eq!(
                summary(&events),
                [(mechanism.clone(), None, Outcome::Success, SecretKind::Password)],
                "port {port}: {steps:?}"
            );
            assert_eq!(
                logins.first().map(|login| (login.partial, login.secret_length)),
                Some((partial, length)),
                "port {port}: {steps:?}"
            );
        }
    }
}

/// A loss that cut LOGIN's user name line, its end read: with the `Password:` prompt lost as
/// well, the next line is the password whole; a verdict right after the user name's end (a
/// server refusing the name) shows no password crossed.
#[test]
fn a_login_exchange_that_lost_its_user_name_start_and_prompt_reads_the_next_line() {
    let user_end = || c("2U=\r\n");
    for (port, verb) in [(110, "AUTH"), (587, "AUTH"), (143, "AUTHENTICATE")] {
        let (challenge, opening, command, verdict, refusal) = match port {
            110 => ("+ ", "+OK ready\r\n", "AUTH LOGIN\r\n", "+OK Logged in.\r\n", "-ERR no\r\n"),
            587 => ("334 ", "220 mx ESMTP\r\n", "AUTH LOGIN\r\n", "235 2.7.0 ok\r\n", "535 5.7.8 no\r\n"),
            _ => ("+ ", "* OK ready\r\n", "a1 AUTHENTICATE LOGIN\r\n", "a1 OK Logged in\r\n", "a1 NO no\r\n"),
        };
        let prompt = |text: &[u8]| s(&format!("{challenge}{}\r\n", b64(text)));
        let prompt_len = format!("{challenge}{}\r\n", b64(b"Password:")).len() as u64;
        let start = [s(opening), c(command), prompt(b"Username:"), ClientLost(6), user_end()];
        let password = acked(&format!("{}\r\n", b64(b"hunter2")));
        let prompt_lost: Vec<Says> =
            start.iter().cloned().chain([ServerLost(prompt_len), password.clone(), s(verdict)]).collect();
        let events = play(port, &prompt_lost);
        let found = [(format!("{verb} LOGIN"), None, Outcome::Success, SecretKind::Password)];
        assert_eq!(summary(&events), found, "port {port}");
        assert_eq!(
            credentials(&events).first().map(|login| (login.partial, login.secret_length)),
            Some((false, Some(7)))
        );
        let prompt_seen: Vec<Says> =
            start.iter().cloned().chain([prompt(b"Password:"), password, s(verdict)]).collect();
        assert_eq!(summary(&play(port, &prompt_seen)), found, "port {port}");
        let refused: Vec<Says> = start.iter().cloned().chain([s(refusal)]).collect();
        assert_eq!(summary(&play(port, &refused)), [], "port {port}");
    }
}

/// The password's line after the lost user name and prompt, its verdict lost too: the client's
/// next command shows the exchange over, and the password crossed: accepted where that command
/// needs a login and replies come in order (POP3's `STAT`), else unknown (as for any SASL
/// exchange whose verdict was lost).
#[test]
fn a_password_after_a_lost_prompt_is_reported_when_the_verdict_is_lost_too() {
    for (port, verb, outcome) in
        [(110, "AUTH", Outcome::Success), (587, "AUTH", Outcome::Unknown), (143, "AUTHENTICATE", Outcome::Unknown)]
    {
        let (challenge, opening, command, next, reply) = match port {
            110 => ("+ ", "+OK ready\r\n", "AUTH LOGIN\r\n", "STAT\r\n", "+OK 1 120\r\n"),
            587 => ("334 ", "220 mx ESMTP\r\n", "AUTH LOGIN\r\n", "MAIL FROM:<a@example.test>\r\n", "250 Ok\r\n"),
            _ => ("+ ", "* OK ready\r\n", "a1 AUTHENTICATE LOGIN\r\n", "a2 SELECT INBOX\r\n", "a2 OK done\r\n"),
        };
        let steps = [
            s(opening),
            c(command),
            s(&format!("{challenge}{}\r\n", b64(b"Username:"))),
            ClientLost(10),
            ServerLost(18),
            acked(&format!("{}\r\n", b64(b"hunter2"))),
            ServerLost(30),
            acked(next),
            s(reply),
        ];
        let events = play(port, &steps);
        let expected = [(format!("{verb} LOGIN"), None, outcome, SecretKind::Password)];
        assert_eq!(summary(&events), expected, "port {port}");
        assert!(credentials(&events).iter().all(|login| login.partial), "port {port}");
    }
}

/// A message whose `DATA` and `354` the capture lost shows itself by its header: the lines after
/// it are message data, so an `AUTH` line a mail quotes is no login, and the command after the
/// `.` line is read.
#[test]
fn a_message_whose_data_command_was_lost_is_not_read_as_commands() {
    let blob = b64(b"\0alice\0hunter2");
    let steps = [
        s("220 mx ESMTP\r\n"),
        c("EHLO x\r\n"),
        s("250 mx\r\n"),
        c("MAIL FROM:<a@example.test>\r\n"),
        s("250 2.1.0 Ok\r\n"),
        c("RCPT TO:<b@example.test>\r\n"),
        s("250 2.1.5 Ok\r\n"),
        ClientLost(6),
        ServerLost(37),
        CAcked(format!("From: a@example.test\r\nSubject: notes\r\n\r\nAUTH PLAIN {blob}\r\n.\r\n").into_bytes()),
        s("250 2.0.0 Ok: queued\r\n"),
        C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
        s("235 2.7.0 Authentication successful\r\n"),
    ];
    assert_eq!(summary(&play(25, &steps)), one("AUTH PLAIN", "a***", Outcome::Success, SecretKind::Password));
}

/// A `354` after lost server bytes lets message data in even where the line after a loss is
/// otherwise not read (it may be a tail): the message a client sends then, its header lost too,
/// is not read as commands.
#[test]
fn a_data_go_ahead_after_a_loss_is_read() {
    let blob = b64(b"\0alice\0hunter2");
    let steps = [
        s("220 mx ESMTP\r\n"),
        c("EHLO x\r\n"),
        s("250 mx\r\n"),
        c("MAIL FROM:<a@example.test>\r\n"),
        ServerLost(14),
        c("RCPT TO:<b@example.test>\r\n"),
        ServerLost(14),
        s("354 End data with <CR><LF>.<CR><LF>\r\n"),
        ClientLost(300),
        C(format!("quarterly report\r\nAUTH PLAIN {blob}\r\n.\r\n").into_bytes()),
        s("250 2.0.0 Ok: queued\r\n"),
    ];
    assert_eq!(summary(&play(25, &steps)), []);
}

/// The first line after lost client bytes is read as the first response of an exchange whose
/// command was lost only when no client byte was lost since its challenge: after a later loss
/// the line may be a response's tail, and is not taken for the password.
#[test]
fn a_response_tail_after_a_later_loss_is_not_taken_for_a_password() {
    let user_then_password = vec![
        s(&format!("334 {}\r\n", b64(b"Username:"))),
        C(format!("{}\r\n", b64(b"alice")).into_bytes()),
        s(&format!("334 {}\r\n", b64(b"Password:"))),
    ];
    let password_only = vec![s(&format!("334 {}\r\n", b64(b"Password:")))];
    for exchange in [user_then_password, password_only] {
        let steps: Vec<Says> = [s("220 mx ESMTP\r\n"), ClientLost(12)]
            .into_iter()
            .chain(exchange)
            .chain([ClientLost(6), c("1vY3hhTW12\r\n"), s("235 2.7.0 Authentication successful\r\n")])
            .collect();
        assert_eq!(summary(&play(587, &steps)), [], "{steps:?}");
    }
}

/// A client pipelining shows nothing by acknowledging the lost bytes: more commands awaited
/// replies, and the later ones' may be still to come (here USER's, written after PASS came); nor
/// does a first line after the loss that is no command (message data after a lost `354`, whose
/// DATA still awaits its final reply).
#[test]
fn lost_replies_of_a_pipelining_client_are_not_guessed() {
    let events = play(
        110,
        &[
            s("+OK ready\r\n"),
            c("CAPA\r\nUSER alice\r\n"),
            ServerLost(29),
            acked("PASS hunter2\r\n"),
            s("+OK\r\n-ERR [AUTH] bad\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));
    let blob = b64(b"\0alice\0hunter2");
    let events = play(
        587,
        &[
            s("220 mx ESMTP\r\n"),
            c("EHLO x\r\n"),
            s("250-mx\r\n250 PIPELINING\r\n"),
            c("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"),
            s("250 ok\r\n250 ok\r\n"),
            ServerLost(14),
            CAcked(format!("Subject: hi\r\n\r\nhello\r\n.\r\nAUTH PLAIN {blob}\r\n").into_bytes()),
            s("250 2.0.0 queued\r\n235 2.7.0 ok\r\n"),
        ],
    );
    assert_eq!(summary(&events), one("AUTH PLAIN", "a***", Outcome::Success, SecretKind::Password));
}

/// A login command whose end a loss cut, sent having received every server byte: the reply lost
/// before it answered the command before it, and the verdict after it is the login's.
#[test]
fn a_cut_login_sent_after_lost_replies_takes_its_own_verdict() {
    let blob = b64(b"\0alice\0hunter2");
    for (login, outcome) in [(acked as fn(&str) -> Says, Outcome::Success), (c, Outcome::Unknown)] {
        let steps = [
            s("220 mx ESMTP\r\n"),
            c("EHLO x\r\n"),
            ServerLost(40),
            login(&format!("AUTH PLAIN {blob}")),
            ClientLost(2),
            s("235 2.7.0 ok\r\n"),
        ];
        let events = play(587, &steps);
        assert_eq!(summary(&events), one("AUTH PLAIN", "a***", outcome, SecretKind::Password));
        assert!(credentials(&events).iter().all(|login| login.partial));
    }
}

/// A POP3 login whose verdict the capture lost is shown accepted by a mailbox command accepted
/// after it (a server answers STAT, LIST, RETR… only once a login was); refused, or followed by
/// another login or nothing, it shows nothing.
#[test]
fn a_pop3_login_whose_verdict_was_lost_is_shown_accepted_by_a_mailbox_command() {
    let blob = b64(b"\0alice\0hunter2");
    let logins = [
        vec![s("+OK ready\r\n"), c("USER alice\r\n"), s("+OK\r\n"), c("PASS hunter2\r\n")],
        vec![s("+OK ready\r\n"), c("AUTH PLAIN\r\n"), s("+ \r\n"), C(format!("{blob}\r\n").into_bytes())],
    ];
    let after: [(&[Says], Outcome); 5] = [
        (&[acked("STAT\r\n"), s("+OK 2 320\r\n")], Outcome::Success),
        (&[acked("NOOP\r\n"), s("+OK\r\n"), c("LIST\r\n"), s("+OK 2 messages\r\n1 120\r\n.\r\n")], Outcome::Success),
        (&[acked("STAT\r\n"), s("-ERR not now\r\n")], Outcome::Unknown),
        (&[acked("QUIT\r\n"), s("+OK bye\r\n")], Outcome::Unknown),
        (&[acked("USER bob\r\n"), s("+OK\r\n"), c("STAT\r\n"), s("+OK 2 320\r\n")], Outcome::Unknown),
    ];
    for login in &logins {
        for (next, outcome) in &after {
            let steps: Vec<Says> = login.iter().cloned().chain([ServerLost(16)]).chain(next.iter().cloned()).collect();
            let found = summary(&play(110, &steps));
            assert_eq!(found.iter().map(|login| login.2).collect::<Vec<_>>(), [*outcome], "{steps:?}");
        }
    }
}

/// An SMTP login's verdict is a 235 or a refusal: when the capture lost both the verdict and the
/// command after it, that command's `250` is not taken for a refusal; and a temporary refusal
/// says nothing of the secret.
#[test]
fn an_smtp_reply_tells_of_the_login_only_what_its_code_says() {
    let blob = b64(b"\0alice\0hunter2");
    let cases: [(&[Says], Outcome); 8] = [
        (&[ServerLost(37), ClientLost(28), s("250 2.1.0 Ok\r\n")], Outcome::Unknown),
        (&[s("235 2.7.0 Authentication successful\r\n")], Outcome::Success),
        (&[s("535 5.7.8 Authentication credentials invalid\r\n")], Outcome::Failure),
        (&[s("554 5.7.0 Too many failed logins\r\n")], Outcome::Failure),
        (&[s("454 4.7.0 Temporary authentication failure\r\n")], Outcome::Unknown),
        (&[s("454 4.7.0 Must issue a STARTTLS command first\r\n")], Outcome::Failure),
        (&[s("432 4.7.12 A password transition is needed\r\n")], Outcome::Unknown),
        (&[s("538 5.7.11 Encryption required for requested authentication mechanism\r\n")], Outcome::Failure),
    ];
    for (reply, outcome) in cases {
        let steps: Vec<Says> = [
            s("220 mx ESMTP\r\n"),
            c("EHLO x\r\n"),
            s("250-mx\r\n250 AUTH PLAIN\r\n"),
            C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
        ]
        .into_iter()
        .chain(reply.iter().cloned())
        .chain([c("RCPT TO:<b@example.test>\r\n"), s("250 2.1.5 Ok\r\n")])
        .collect();
        let found = summary(&play(587, &steps));
        assert_eq!(found.iter().map(|login| login.2).collect::<Vec<_>>(), [outcome], "{steps:?}");
    }
}

/// A capability list the capture lost says nothing of what the server lacks, and the reply after
/// it, to the next command, is not read as the list.
#[test]
fn a_lost_capability_list_claims_no_absence_and_takes_no_later_reply() {
    let steps = [
        s("+OK ready\r\n"),
        c("CAPA\r\n"),
        ServerLost(30),
        acked("USER alice\r\n"),
        s("+OK\r\n"),
        c("PASS hunter2\r\n"),
        s("+OK logged in\r\n"),
    ];
    let events = play(110, &steps);
    assert_eq!(summary(&events), one("USER/PASS", "a***", Outcome::Success, SecretKind::Password));
    assert_eq!(credentials(&events).first().map(|login| login.server.starttls_offered), Some(None));
}

/// An IMAP login whose verdict the capture lost is shown accepted by a command only a logged-in
/// client may send, accepted after it (a server answers the login first); refused, or sent before
/// the login, such a command shows nothing.
#[test]
fn an_imap_login_whose_verdict_was_lost_is_shown_accepted_by_a_later_command() {
    let login = |after: &[Says]| {
        let mut steps = vec![s("* OK ready\r\n"), c("a1 LOGIN alice hunter2\r\n"), ServerLost(40)];
        steps.extend_from_slice(after);
        play(143, &steps)
    };
    let accepted = login(&[c("a2 SELECT INBOX\r\n"), s("* 1 EXISTS\r\na2 OK [READ-WRITE] SELECT completed\r\n")]);
    assert_eq!(summary(&accepted), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
    let pipelined = login(&[c("a2 uid fetch 1:* (FLAGS)\r\n"), s("a2 OK done\r\n")]);
    assert_eq!(summary(&pipelined), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
    let refused = login(&[c("a2 SELECT INBOX\r\n"), s("a2 BAD not logged in\r\n")]);
    assert_eq!(summary(&refused), one("LOGIN", "a***", Outcome::Unknown, SecretKind::Password));
    let not_logged_in = login(&[c("a2 NOOP\r\n"), s("a2 OK\r\n")]);
    assert_eq!(summary(&not_logged_in), one("LOGIN", "a***", Outcome::Unknown, SecretKind::Password));
    let before = play(
        143,
        &[
            s("* OK ready\r\n"),
            c("a0 LIST \"\" \"*\"\r\na1 LOGIN alice hunter2\r\n"),
            ServerLost(40),
            s("a0 OK listed\r\n"),
        ],
    );
    assert_eq!(summary(&before), one("LOGIN", "a***", Outcome::Unknown, SecretKind::Password));
}

/// What follows a gap and does not look like a command, or comes where the client sends data,
/// is never read as one: message data (the gap inside it, or the lost segment the DATA command
/// itself, answered by the server's 354), a literal, or the tail of a line the gap cut.
#[test]
fn data_after_a_gap_is_never_a_login() {
    let blob = b64(b"\0lol\0Canary-Decoy-1");
    let decoy = format!("AUTH PLAIN {blob}\r\na1 LOGIN mallory Canary-Decoy-2\r\nPASS Canary-Decoy-3\r\n");
    for (port, steps) in [
        (
            25,
            vec![
                s("220 mx ESMTP\r\n"),
                c("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
                s("250 mx\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n"),
                c("Subject: x\r\n\r\n"),
                ClientLost(100),
                C(format!("{decoy}.\r\n").into_bytes()),
                s("250 queued\r\n"),
            ],
        ),
        (
            25,
            vec![
                s("220 mx ESMTP\r\n"),
                c("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"),
                s("250 mx\r\n250 ok\r\n250 ok\r\n"),
                ClientLost(6),
                s("354 go ahead\r\n"),
                C(format!("Subject: x\r\n\r\n{decoy}.\r\n").into_bytes()),
                s("250 queued\r\n"),
            ],
        ),
        (
            143,
            vec![
                s("* OK ready\r\n"),
                C(format!("a5 APPEND INBOX {{{}+}}\r\nSubject: notes\r\n\r\n", 16 + 100 + decoy.len()).into_bytes()),
                ClientLost(100),
                C(decoy.clone().into_bytes()),
                s("a5 OK\r\n"),
            ],
        ),
        (
            143,
            vec![s("* OK ready\r\n"), c("a0 NOOP\r\nnote: "), ClientLost(20), c("a1 LOGIN mallory Canary-Decoy-2\r\n")],
        ),
        (110, vec![s("+OK ready\r\n"), c("NOOP\r\nnote: "), ClientLost(20), c("PASS Canary-Decoy-3\r\n")]),
    ] {
        let events = play(port, &steps);
        assert!(credentials(&events).is_empty(), "port {port}: {:?}", summary(&events));
    }
}

/// Server lines whose ends a capture lost (a snap length cuts every segment longer than it, a lost
/// segment the line it held part of), each followed by the gap: a status or reply line's verdict
/// is at its start, the next status line after the cut is the next reply's, a greeting keeps its
/// whole words, and a capability list that lost its end claims nothing it may have named.
#[test]
fn lines_cut_by_a_gap_keep_their_verdicts_and_claim_no_missing_capability() {
    let blob = b64(b"\0alice\0hunter2");
    let cases: Vec<(u16, Vec<Says>, &str, &str)> = vec![
        (
            587,
            vec![
                s("220 mx.example.test ESMTP Postfix\r\n"),
                c("EHLO laptop\r\n"),
                s("250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY"),
                ServerLost(40),
                C(format!("AUTH PLAIN {blob}\r\n").into_bytes()),
                s("235 2.7.0 Authentication successful\r\n"),
                c("QUIT\r\n"),
                s("221 2.0.0 Bye\r\n"),
            ],
            "AUTH PLAIN",
            "220 mx.example.test ESMTP Postfix",
        ),
        (
            110,
            vec![
                s("+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us"),
                ServerLost(3),
                c("CAPA\r\n"),
                s("+OK\r\nUSER\r\nSASL PLAIN\r\nUID"),
                ServerLost(16),
                c("USER alice\r\n"),
                s("+OK\r\n"),
                c("PASS hunter2\r\n"),
                s("+OK Logged in, and a greeting too long for the snap"),
                ServerLost(30),
            ],
            "USER/PASS",
            "+OK Dovecot ready.",
        ),
        (
            143,
            vec![
                s("* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ STAR"),
                ServerLost(50),
                c("a1 LOGIN alice hunter2\r\n"),
                s("a1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT SORT=DISPLAY THRE"),
                ServerLost(100),
            ],
            "LOGIN",
            "* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+",
        ),
        (
            4190,
            vec![
                s(SIEVE_GREETING),
                C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes()),
                s("OK \"Logged in, and a message too long for the sn"),
                ServerLost(10),
            ],
            "AUTHENTICATE PLAIN",
            "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"",
        ),
    ];
    for (port, steps, mechanism, greeting) in cases {
        let events = play(port, &steps);
        assert_eq!(summary(&events), one(mechanism, "a***", Outcome::Success, SecretKind::Password), "port {port}");
        let server = &session_record(&events).server;
        assert_eq!(server.greeting.as_deref(), Some(greeting), "port {port}");
        if port != 4190 {
            assert_eq!(server.starttls_offered, None, "port {port}: STARTTLS may have been in the lost bytes");
        }
        assert!(server.capabilities.iter().all(|c| !["VRFY", "UID"].contains(&c)), "port {port}: cut capability");
    }
}

/// Client lines a snap length cut: a login command or SASL response is a partial credential (its
/// user name and secret as far as they came; the secret's length only when it was whole), the
/// client's next line is read, and so is the command after another line the cut took.
#[test]
fn client_lines_cut_by_a_snap_length_are_partial_credentials() {
    let plain = b64(b"\0alice\0hunter2-and-more");
    // Port, transcript, mechanism, masked user name, secret length.
    type Case = (u16, Vec<Says>, &'static str, &'static str, Option<usize>);
    let cases: Vec<Case> = vec![
        (
            110,
            vec![
                s("+OK ready\r\n"),
                c("USER alice\r\n"),
                s("+OK\r\n"),
                c("PASS hunter2-and"),
                ClientCutOff(9),
                s("+OK Logged in.\r\n"),
            ],
            "USER/PASS",
            "a***",
            None,
        ),
        (
            110,
            vec![
                s("+OK ready\r\n"),
                c("USER alice@example.te"),
                ClientCutOff(10),
                s("+OK\r\n"),
                c("PASS hunter2\r\n"),
                s("+OK Logged in.\r\n"),
            ],
            "USER/PASS",
            "a***@example.te",
            Some(7),
        ),
        (
            143,
            vec![
                s("* OK ready\r\n"),
                c("a0 ID (\"name\" \"Thunder"),
                ClientCutOff(30),
                s("* ID NIL\r\na0 OK\r\n"),
                c("a1 LOGIN alice \"hunter2 and"),
                ClientCutOff(12),
                s("a1 OK done\r\n"),
            ],
            "LOGIN",
            "a***",
            None,
        ),
        (
            587,
            vec![
                s("220 mx ESMTP\r\n"),
                c("EHLO laptop\r\n"),
                s("250 AUTH PLAIN LOGIN\r\n"),
                C(format!("AUTH PLAIN {}", &plain[..20]).into_bytes()),
                ClientCutOff(20),
                s("235 2.7.0 ok\r\n"),
            ],
            "AUTH PLAIN",
            "a***",
            None,
        ),
        (
            587,
            vec![
                s("220 mx ESMTP\r\n"),
                c("EHLO laptop\r\n"),
                s("250 AUTH PLAIN LOGIN\r\n"),
                c("AUTH LOGIN\r\n"),
                s("334 VXNlcm5hbWU6\r\n"),
                C(b64(b"alice@example.test").as_bytes()[..20].to_vec()),
                ClientCutOff(14),
                s("334 UGFzc3dvcmQ6\r\n"),
                C(format!("{}\r\n", b64(b"hunter2")).into_bytes()),
                s("235 2.7.0 ok\r\n"),
            ],
            "AUTH LOGIN",
            "a***@example.t",
            Some(7),
        ),
        (
            4190,
            vec![
                s(SIEVE_GREETING),
                C(format!("AUTHENTICATE \"PLAIN\" \"{}", &plain[..20]).into_bytes()),
                ClientCutOff(22),
                s("OK\r\n"),
            ],
            "AUTHENTICATE PLAIN",
            "a***",
            None,
        ),
    ];
    for (port, steps, mechanism, user, secret_length) in cases {
        let events = play(port, &steps);
        assert_eq!(summary(&events), one(mechanism, user, Outcome::Success, SecretKind::Password), "port {port}");
        let credential = credentials(&events)[0];
        assert!(credential.partial, "port {port}");
        assert_eq!(credential.secret_length, secret_length, "port {port}");
        assert_eq!(credential.secret_fingerprint, None, "port {port}");
    }
}

/// A client line that lost its end to lost segments, not a snap length, is no credential unless
/// it is a login command: the line after it may be its tail, and is not read as a command.
#[test]
fn the_line_after_a_client_line_lost_segments_cut_is_not_read() {
    let events = play(
        143,
        &[s("* OK ready\r\n"), c("a0 NOOP note: "), ClientLost(20), c("a1 LOGIN mallory Canary-Decoy-2\r\n")],
    );
    assert!(credentials(&events).is_empty(), "{:?}", summary(&events));
    let events =
        play(143, &[s("* OK ready\r\n"), c("a0 NOOP note: "), ClientCutOff(20), c("a1 LOGIN alice hunter2\r\n")]);
    assert_eq!(
        summary(&events),
        one("LOGIN", "a***", Outcome::Unknown, SecretKind::Password),
        "after a snap length's cut"
    );
}

/// A server line a snap length cut while the client's words wait for it (a client that spoke
/// before the greeting, or behind STARTTLS) is read before them: the cut greeting answers no
/// command, and the cut STARTTLS answer decides what the held words were.
#[test]
fn a_cut_server_line_is_read_before_the_client_words_waiting_for_it() {
    let early = play(
        110,
        &[
            c("USER alice\r\nPASS hunter2\r\n"),
            S(b"+OK Dovecot re".to_vec()),
            ServerCutOff(10),
            s("+OK\r\n-ERR [AUTH] Authentication failed.\r\n"),
        ],
    );
    assert_eq!(summary(&early), one("USER/PASS", "a***", Outcome::Failure, SecretKind::Password));
    let behind_starttls = [s("+OK ready\r\n"), c("STLS\r\nUSER alice\r\nPASS hunter2\r\n")];
    let accepted =
        play(110, &[behind_starttls.to_vec(), vec![S(b"+OK Begin TLS nego".to_vec()), ServerCutOff(9)]].concat());
    assert!(credentials(&accepted).is_empty(), "{:?}", summary(&accepted));
    let injection =
        |e: &ProtoEvent| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::StarttlsCommandInjection, .. });
    assert_eq!(accepted.iter().filter(|e| injection(e)).count(), 1);
    let refused = play(
        110,
        &[
            behind_starttls.to_vec(),
            vec![S(b"-ERR TLS not avail".to_vec()), ServerCutOff(9), s("+OK\r\n+OK Logged in.\r\n")],
        ]
        .concat(),
    );
    assert_eq!(summary(&refused), one("USER/PASS", "a***", Outcome::Success, SecretKind::Password));
}

/// What a cut line leaves undecided stays so: a negative verdict cut before its response code
/// (POP3's `[IN-USE]` and IMAP's `[AUTHORIZATIONFAILED]` would make it a right secret) is
/// `unknown`, one whose text shows no code is a failure; an `AUTH` cut before its initial
/// response is not read (the line may or may not have held one, and LOGIN's responses would be
/// taken one for the other by position), but a `Password:` prompt after it tells which response
/// is the password, reported with no user name; a challenge-response cut short is partial.
#[test]
fn what_a_cut_line_leaves_undecided_stays_undecided() {
    let pop3 = |verdict: &str| {
        play(
            110,
            &[
                s("+OK ready\r\n"),
                c("USER alice\r\n"),
                s("+OK\r\n"),
                c("PASS hunter2\r\n"),
                S(verdict.as_bytes().to_vec()),
                ServerCutOff(20),
            ],
        )
    };
    assert_eq!(summary(&pop3("-ERR [IN-US")), one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));
    assert_eq!(summary(&pop3("-ERR ")), one("USER/PASS", "a***", Outcome::Unknown, SecretKind::Password));
    assert_eq!(
        summary(&pop3("-ERR [AUTH] Authentica")),
        one("USER/PASS", "a***", Outcome::Failure, SecretKind::Password)
    );
    assert_eq!(
        summary(&pop3("-ERR Authentication fa")),
        one("USER/PASS", "a***", Outcome::Failure, SecretKind::Password)
    );
    let imap = |verdict: &str| {
        play(
            143,
            &[s("* OK ready\r\n"), c("a1 LOGIN alice hunter2\r\n"), S(verdict.as_bytes().to_vec()), ServerCutOff(20)],
        )
    };
    assert_eq!(summary(&imap("a1 NO [AUTHORIZ")), one("LOGIN", "a***", Outcome::Unknown, SecretKind::Password));
    assert_eq!(
        summary(&imap("a1 NO [AUTHENTICATIONFAILED] Au")),
        one("LOGIN", "a***", Outcome::Failure, SecretKind::Password)
    );

    let hidden_initial_response = play(
        587,
        &[
            s("220 mx ESMTP\r\n"),
            c("EHLO laptop\r\n"),
            s("250 AUTH LOGIN\r\n"),
            C(b"AUTH LOGIN".to_vec()),
            ClientCutOff(10),
            s("334 UGFzc3dvcmQ6\r\n"),
            C(format!("{}\r\n", b64(b"hunter2")).into_bytes()),
            s("235 ok\r\n"),
        ],
    );
    assert_eq!(
        summary(&hidden_initial_response),
        [("AUTH LOGIN".to_string(), None, Outcome::Success, SecretKind::Password)]
    );

    let client_first = b64(b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL");
    let server_first = b64(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
    let client_final = b64(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    let scram = play(
        143,
        &[
            s("* OK ready\r\n"),
            C(format!("a1 AUTHENTICATE SCRAM-SHA-1 {client_first}\r\n").into_bytes()),
            S(format!("+ {server_first}\r\n").into_bytes()),
            C(client_final.as_bytes()[..client_final.len() - 8].to_vec()),
            ClientCutOff(10),
            s("a1 OK done\r\n"),
        ],
    );
    assert_eq!(
        summary(&scram),
        one("AUTHENTICATE SCRAM-SHA-1", "a***", Outcome::Success, SecretKind::ChallengeResponse)
    );
    assert!(credentials(&scram)[0].partial, "the proof was cut");
}

/// An IMAP APPEND whose line a snap length cut lost the message literal it announced: the
/// client's lines after it are message text, never logins, until the server answers it.
#[test]
fn message_text_after_a_cut_append_is_never_a_login() {
    let blob = b64(b"\0lol\0Canary-Decoy-1");
    let events = play(
        143,
        &[
            s("* OK ready\r\n"),
            c("a4 LOGIN alice hunter2\r\n"),
            s("a4 OK [CAPABILITY IMAP4rev1 UNAUTHENTICATE] done\r\n"),
            c("a5 APPEND INBOX (\\Seen) {3"),
            ClientCutOff(20),
            c("a1 LOGIN mallory Canary-Decoy-2\r\n"),
            C(format!("a2 AUTHENTICATE PLAIN {blob}").into_bytes()),
            ClientCutOff(30),
            c("x LOGIN ceo Canary-Dec"),
            ClientCutOff(30),
            s("a5 OK APPEND completed\r\n"),
            c("a6 UNAUTHENTICATE\r\n"),
            s("a6 OK\r\n"),
            c("a7 LOGIN bob hunter3\r\n"),
            s("a7 NO bad\r\n"),
        ],
    );
    let expected = vec![
        ("LOGIN".to_string(), Some("a***".to_string()), Outcome::Success, SecretKind::Password),
        ("LOGIN".to_string(), Some("b***".to_string()), Outcome::Failure, SecretKind::Password),
    ];
    assert_eq!(summary(&events), expected);
}

/// A cut `AUTH` or `AUTHENTICATE` line is read only once its initial response has begun: cut at
/// or in its mechanism, it may have held one or not, and LOGIN's next response would be taken for
/// the user name when it is the password.
#[test]
fn a_cut_auth_line_is_read_only_with_its_initial_response_begun() {
    let pop3 = pop3::Pop3Session::default();
    for (line, read) in [(&b"AUTH LOGIN"[..], false), (b"AUTH LOGIN dX", true), (b"PASS h", true), (b"PAS", false)] {
        assert_eq!(pop3.reads_cut_line(line), read, "pop3 {}", String::from_utf8_lossy(line));
    }
    let smtp = smtp::SmtpSession::default();
    for (line, read) in [(&b"AUTH PLAIN "[..], false), (b"AUTH PLAIN AG", true), (b"MAIL FROM:<a@", false)] {
        assert_eq!(smtp.reads_cut_line(line), read, "smtp {}", String::from_utf8_lossy(line));
    }
    let imap = imap::ImapSession::default();
    for (line, read) in [
        (&b"a1 AUTHENTICATE LOGIN"[..], false),
        (b"a1 AUTHENTICATE LOGIN dX", true),
        (b"a1 LOGIN al", true),
        (b"a1 SELECT IN", false),
    ] {
        assert_eq!(imap.reads_cut_line(line), read, "imap {}", String::from_utf8_lossy(line));
    }
    let sieve = managesieve::ManageSieveSession::default();
    for (line, read) in [(&b"AUTHENTICATE \"PLAIN\""[..], false), (b"AUTHENTICATE \"PLAIN\" \"AG", true)] {
        assert_eq!(sieve.reads_cut_line(line), read, "managesieve {}", String::from_utf8_lossy(line));
    }
}

/// An IMAP capability list in a cut line is read up to its last whole word: STARTTLS named
/// before the cut counts, an absence does not; a greeting cut before its first blank is none.
#[test]
fn an_imap_capability_list_in_a_cut_line_counts_what_it_named() {
    for (before, cut, starttls, listed) in [
        (vec![], "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PL", Some(true), ["IMAP4REV1", "STARTTLS"]),
        (vec![], "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN STAR", None, ["IMAP4REV1", "AUTH=PLAIN"]),
        (
            vec![s("* OK ready\r\n"), c("a0 CAPABILITY\r\n")],
            "* CAPABILITY IMAP4rev1 STARTTLS LOGINDIS",
            Some(true),
            ["IMAP4REV1", "STARTTLS"],
        ),
    ] {
        let mut steps = before;
        steps.extend([S(cut.as_bytes().to_vec()), ServerCutOff(30), c("a1 LOGIN alice hunter2\r\n"), s("a1 OK\r\n")]);
        let events = play(143, &steps);
        let credential = credentials(&events)[0];
        assert_eq!(credential.server.starttls_offered, starttls, "{cut}");
        assert_eq!(credential.server.login_disabled, None, "{cut}: LOGINDISABLED may have been cut");
        assert_eq!(credential.server.capabilities.iter().collect::<Vec<_>>(), listed, "{cut}: no cut word");
    }
    let events = play(110, &[S(b"+OKready".to_vec()), ServerCutOff(30), c("USER alice\r\n"), s("+OK\r\n")]);
    assert_eq!(session_record(&events).server.greeting, None);
}

/// A capability list whose middle or start was lost keeps what it named before and after the
/// loss, and claims no absence, not even once its end comes.
#[test]
fn a_capability_list_with_a_lost_middle_or_start_claims_no_absence() {
    let events = play(
        25,
        &[
            s("220 mx.example.test ESMTP\r\n"),
            c("EHLO laptop\r\n"),
            s("250-mx.example.test\r\n250-PIPELINING\r\n"),
            ServerLost(14),
            s("250-SIZE 1024\r\n250 8BITMIME\r\n"),
            c("QUIT\r\n"),
            s("221 bye\r\n"),
        ],
    );
    let server = &session_record(&events).server;
    assert_eq!(server.starttls_offered, None);
    assert_eq!(server.capabilities.iter().collect::<Vec<_>>(), ["PIPELINING", "8BITMIME"]);

    let start_lost = play(
        25,
        &[
            s("220 mx.example.test ESMTP\r\n"),
            c("EHLO laptop\r\n"),
            ServerLost(40),
            s("250-SIZE 1024\r\n250 8BITMIME\r\n"),
            c("QUIT\r\n"),
            s("221 bye\r\n"),
        ],
    );
    assert_eq!(session_record(&start_lost).server.starttls_offered, None, "the list's start was lost");
}

#[test]
fn tls_is_never_parsed() {
    let client_hello = vec![0x16, 0x03, 0x01, 0x00, 0x10, 1, 2, 3];
    let events = play(995, &[C(client_hello.clone()), c("USER a\r\n"), s("+OK\r\n"), c("PASS b\r\n"), s("+OK\r\n")]);
    assert!(credentials(&events).is_empty());
    let [ProtoEvent::SessionEnd(record)] = events.as_slice() else { panic!("{events:?}") };
    assert!(record.implicit_tls);
    assert_eq!(record.app_proto, Some(AppProto::Pop3));
    let tls_on_110 = play(110, &[C(client_hello), c("USER a\r\nPASS b\r\n")]);
    assert!(credentials(&tls_on_110).is_empty());
    // Picked up after its handshake, an implicit-TLS flow starts with an application data record.
    let midstream = play(993, &[S(vec![0x17, 0x03, 0x03, 0x00, 0x20, 9, 9]), c("a LOGIN x y\r\n")]);
    assert!(matches!(midstream.as_slice(), [ProtoEvent::SessionEnd(record)] if record.implicit_tls), "{midstream:?}");
}

/// A server that speaks POP3, IMAP or SMTP in clear on an implicit-TLS port lets passwords
/// cross in clear where the port promised TLS: the logins are reported, with an anomaly saying
/// where they came from, and the session is no implicit TLS for the server's posture.
#[test]
fn cleartext_on_an_implicit_tls_port_is_read_and_flagged() {
    for (port, steps, mechanism) in [
        (
            995,
            vec![s("+OK ready\r\n"), c("USER alice\r\n"), s("+OK\r\n"), c("PASS hunter2\r\n"), s("+OK\r\n")],
            "USER/PASS",
        ),
        (993, vec![s("* OK ready\r\n"), c("a1 LOGIN alice hunter2\r\n"), s("a1 OK done\r\n")], "LOGIN"),
        (
            465,
            vec![
                s("220 mx ESMTP\r\n"),
                c("EHLO c\r\n"),
                s("250 AUTH PLAIN\r\n"),
                C(format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0hunter2")).into_bytes()),
                s("235 ok\r\n"),
            ],
            "AUTH PLAIN",
        ),
    ] {
        let events = play(port, &steps);
        assert_eq!(summary(&events), one(mechanism, "a***", Outcome::Success, SecretKind::Password), "port {port}");
        let flagged: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                ProtoEvent::Anomaly { kind: AnomalyKind::CleartextOnTlsPort, detail, .. } => Some(detail.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(flagged.len(), 1, "port {port}: {events:?}");
        assert!(flagged[0].contains("in clear on a port for implicit TLS"), "{}", flagged[0]);
        let records = session_records(&events);
        assert!(matches!(records.as_slice(), [record] if !record.implicit_tls), "port {port}");
    }
    // With the handshake in sight, bytes that are neither TLS nor mail (a scanner's probe, a
    // banner, garbage) are no session, and raise nothing.
    let tls_alert = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
    for probe in [C(b"\x01\x02garbage\r\n".repeat(20)), c("GET / HTTP/1.0\r\n\r\n"), s("SSH-2.0-OpenSSH_9.6\r\n")] {
        let events = play(993, &[probe, S(tls_alert.clone())]);
        assert!(events.is_empty(), "{events:?}");
    }
    // A greeting in clear cut into one-byte segments, or in UTF-8, is still one.
    let pop3 = [s("+OK Serveur prêt\r\n"), c("USER alice\r\n"), s("+OK\r\n"), c("PASS hunter2\r\n"), s("+OK\r\n")];
    for chunk in [1, 5, usize::MAX] {
        let events = play_chunked(995, &pop3, chunk, true);
        assert_eq!(summary(&events), one("USER/PASS", "a***", Outcome::Success, SecretKind::Password), "chunk {chunk}");
    }
    // Picked up in the middle of a TLS record (no handshake in sight): still TLS, even when a few
    // bytes of ciphertext happen to be printable.
    for mid_record in [vec![0x8f, 0x20, 0x41, 0x9c, 0x0d, 0x0a, 0x33], b"k7#Qz".to_vec()] {
        let events = play_chunked(993, &[S(mid_record)], usize::MAX, false);
        assert!(matches!(events.as_slice(), [ProtoEvent::SessionEnd(record)] if record.implicit_tls), "{events:?}");
    }
    // A client set up for implicit TLS meeting a server that greets in clear: one session, in
    // clear (flagged), which ended without an upgrade; SMTP's 220 as well as the others.
    let client_hello = vec![0x16, 0x03, 0x01, 0x00, 0x10, 1, 2, 3];
    for (port, greeting) in [(995, "+OK ready\r\n"), (993, "* OK ready\r\n"), (465, "220 mx ESMTP\r\n")] {
        let mismatch = play(port, &[s(greeting), C(client_hello.clone())]);
        let records = session_records(&mismatch);
        let one_session_in_clear =
            matches!(records.as_slice(), [r] if !r.implicit_tls && !r.upgraded_to_tls && r.app_proto.is_some());
        assert!(one_session_in_clear, "port {port}: {mismatch:?}");
        let flagged =
            mismatch.iter().any(|e| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::CleartextOnTlsPort, .. }));
        assert!(flagged, "port {port}");
    }
    // Picked up in the middle of a session in clear (no handshake in sight, no greeting): a
    // login opening the capture is read all the same.
    let parts = CtxParts::default();
    let session = Session::new(Side::Lo, false, false, 993, &parts.config);
    let midstream = play_on(session, parts, &[c("a5 LOGIN alice hunter2\r\n"), s("a5 OK done\r\n")], usize::MAX);
    assert_eq!(summary(&midstream), one("LOGIN", "a***", Outcome::Success, SecretKind::Password));
    assert!(midstream.iter().any(|e| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::CleartextOnTlsPort, .. })));
}

/// The greeting in clear lost (and SMTP's EHLO with it), the client's first line is a login
/// command of the port's protocol: POP3's `USER` or `AUTH` names POP3 on 995 and SMTP's `AUTH`
/// names SMTP on 465, as `EHLO` or a tagged `LOGIN` would; where they may be another
/// protocol's (FTP's `USER`), they are not read.
#[test]
fn a_login_on_a_tls_port_whose_greeting_was_lost_is_read() {
    let plain = format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0hunter2"));
    for (port, steps, mechanism) in [
        (995, vec![c("USER alice\r\n"), s("+OK\r\n"), c("PASS hunter2\r\n"), s("+OK\r\n")], "USER/PASS"),
        (995, vec![C(plain.clone().into_bytes()), s("+OK Logged in.\r\n")], "AUTH PLAIN"),
        (465, vec![ClientLost(8), C(plain.clone().into_bytes()), s("235 ok\r\n")], "AUTH PLAIN"),
    ] {
        let lost_greeting = [vec![ServerLost(30)], steps].concat();
        let events = play(port, &lost_greeting);
        assert_eq!(summary(&events), one(mechanism, "a***", Outcome::Success, SecretKind::Password), "port {port}");
        let flagged =
            events.iter().any(|e| matches!(e, ProtoEvent::Anomaly { kind: AnomalyKind::CleartextOnTlsPort, .. }));
        assert!(flagged, "port {port}: {events:?}");
    }
    let on_ftp_port =
        play(990, &[ServerLost(30), c("USER alice\r\n"), s("331 ok\r\n"), c("PASS hunter2\r\n"), s("230 ok\r\n")]);
    assert!(on_ftp_port.is_empty(), "{on_ftp_port:?}");
}

#[test]
fn roles_are_corrected_by_the_greeting_when_the_handshake_was_missed() {
    // Side::Lo speaks the greeting: the port-based guess that Lo is the client was wrong.
    let mut parts = CtxParts::default();
    let mut session = Session::new(Side::Lo, false, true, 40000, &parts.config);
    let mut ctx = parts.ctx(Timestamp(0));
    session.on_data(Side::Lo, b"+OK POP3 ready\r\n", &mut ctx);
    session.on_data(Side::Hi, b"USER alice\r\nPASS pw\r\n", &mut ctx);
    session.on_data(Side::Lo, b"+OK\r\n+OK\r\n", &mut ctx);
    assert_eq!(session.client(), Side::Hi);
    assert_eq!(summary(&parts.events), one("USER/PASS", "a***", Outcome::Success, SecretKind::Password));
}

/// One record per session, logins or not, with what it showed of the server.
#[test]
fn every_session_leaves_a_record_of_its_server() {
    let records = |events: &[ProtoEvent]| -> Vec<SessionRecord> {
        events
            .iter()
            .filter_map(|e| match e {
                ProtoEvent::SessionEnd(record) => Some(record.clone()),
                _ => None,
            })
            .collect()
    };
    let upgraded = play(
        143,
        &[s("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n"), c("a STARTTLS\r\n"), s("a OK\r\n")],
    );
    let [record] = records(&upgraded).try_into().unwrap();
    assert!(record.upgraded_to_tls && !record.implicit_tls);
    assert_eq!(record.server.starttls_offered, Some(true));
    assert_eq!(record.server.login_disabled, Some(true));
    let logged_in = play(
        143,
        &[
            s("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] hi\r\n"),
            c("a LOGIN alice pw\r\n"),
            s("* CAPABILITY IMAP4rev1 IDLE\r\na OK [CAPABILITY IMAP4rev1 IDLE MOVE] in\r\n"),
        ],
    );
    let [record] = records(&logged_in).try_into().unwrap();
    assert_eq!(record.server.starttls_offered, Some(true), "post-login capabilities are not the posture");
    assert!(record.server.capabilities.contains("AUTH=PLAIN"));
    let plain = play(110, &pop3_user_pass());
    let [record] = records(&plain).try_into().unwrap();
    assert_eq!((record.app_proto, record.upgraded_to_tls), (Some(AppProto::Pop3), false));
    assert_eq!(record.server.greeting.as_deref(), Some("+OK Dovecot (Debian) ready."));
    assert!(records(&play(6379, &[c("PING\r\n"), s("+PONG\r\n")])).is_empty(), "not mail, no record");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    for transcript in [pop3_user_pass(), smtp_auth_login()] {
        let events = play(110, &transcript);
        let debug = format!("{events:?}");
        for secret in ["Sunny Day 2024", "punjab@123", &b64(b"punjab@123")] {
            assert!(!debug.contains(secret));
        }
    }
}

/// A Dovecot (Pigeonhole) ManageSieve greeting.
const SIEVE_GREETING: &str = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto reject envelope\"\r\n\
    \"NOTIFY\" \"mailto\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n";

#[test]
fn managesieve_authenticate_with_an_initial_response_quoted_or_literal() {
    let blob = b64(b"\0jane@example.test\0Sunny Day 2024");
    let events = play(
        4190,
        &[
            s(SIEVE_GREETING),
            C(format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n").into_bytes()),
            s("OK \"Logged in.\"\r\n"),
        ],
    );
    assert_eq!(
        summary(&events),
        one("AUTHENTICATE PLAIN", "j***@example.test", Outcome::Success, SecretKind::Password)
    );
    let alert = credentials(&events)[0];
    assert_eq!(alert.app_proto, AppProto::ManageSieve);
    assert_eq!(alert.server.software.as_deref(), Some("Dovecot"));
    assert_eq!(alert.server.greeting.as_deref(), Some("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\""));
    assert_eq!(alert.server.starttls_offered, Some(true));
    assert_eq!(alert.remediation, Remediation::ClientSkippedStarttls);
    assert!(alert.server.capabilities.iter().any(|c| c == "SASL PLAIN LOGIN"), "{:?}", alert.server.capabilities);

    // RFC 5804's example: the initial response as a non-synchronising literal, refused.
    let events = play(
        4190,
        &[
            s(SIEVE_GREETING),
            C(format!("Authenticate \"PLAIN\" {{{}+}}\r\n{blob}\r\n", blob.len()).into_bytes()),
            s("NO \"Authentication failed.\"\r\n"),
        ],
    );
    assert_eq!(
        summary(&events),
        one("AUTHENTICATE PLAIN", "j***@example.test", Outcome::Failure, SecretKind::Password)
    );
}

#[test]
fn managesieve_mechanism_names_sent_as_literals() {
    // RFC 5804 lets every string be a literal, the mechanism name too; the rest of the line
    // then holds the initial response, quoted or a literal of its own, or nothing.
    let blob = b64(b"\0jane@example.test\0Sunny Day 2024");
    let lines = [
        format!("AUTHENTICATE {{5+}}\r\nPLAIN \"{blob}\"\r\n"),
        format!("AUTHENTICATE {{5+}}\r\nplain {{{}+}}\r\n{blob}\r\n", blob.len()),
    ];
    for (form, line) in lines.into_iter().enumerate() {
        let events = play(4190, &[s(SIEVE_GREETING), C(line.into_bytes()), s("OK\r\n")]);
        assert_eq!(
            summary(&events),
            one("AUTHENTICATE PLAIN", "j***@example.test", Outcome::Success, SecretKind::Password),
            "form {form}"
        );
    }
    let steps = [
        s(SIEVE_GREETING),
        c("AUTHENTICATE {5+}\r\nLOGIN\r\n"),
        s("\"VXNlcm5hbWU6\"\r\n"),
        C(format!("\"{}\"\r\n", b64(b"gurpartap@patriots.in")).into_bytes()),
        s("\"UGFzc3dvcmQ6\"\r\n"),
        C(format!("\"{}\"\r\n", b64(b"punjab@123")).into_bytes()),
        s("NO\r\n"),
    ];
    assert_eq!(
        summary(&play(4190, &steps)),
        one("AUTHENTICATE LOGIN", "g***@patriots.in", Outcome::Failure, SecretKind::Password)
    );
}

fn managesieve_login_steps() -> Vec<Says> {
    vec![
        s(SIEVE_GREETING),
        c("AUTHENTICATE \"LOGIN\"\r\n"),
        s("{12}\r\nVXNlcm5hbWU6\r\n"),
        C(format!("\"{}\"\r\n", b64(b"gurpartap@patriots.in")).into_bytes()),
        s("\"UGFzc3dvcmQ6\"\r\n"),
        C(format!("{{16+}}\r\n{}\r\n", b64(b"punjab@123")).into_bytes()),
        s("OK\r\n"),
    ]
}

#[test]
fn managesieve_sasl_steps_as_strings_and_literals() {
    let events = play(4190, &managesieve_login_steps());
    assert_eq!(summary(&events), one("AUTHENTICATE LOGIN", "g***@patriots.in", Outcome::Success, SecretKind::Password));
}

#[test]
fn managesieve_scripts_starttls_and_cancels_are_not_logins() {
    let blob = b64(b"\0jane@example.test\0Sunny Day 2024");
    let script = format!("AUTHENTICATE \"PLAIN\" \"{blob}\"\r\n");
    let events = play(
        4190,
        &[
            s(SIEVE_GREETING),
            C(format!("PUTSCRIPT \"notes\" {{{}+}}\r\n{script}\r\n", script.len()).into_bytes()),
            s("OK\r\n"),
            c("AUTHENTICATE \"PLAIN\"\r\n"),
            s("\"\"\r\n"),
            c("\"*\"\r\n"),
            s("NO \"Cancelled\"\r\n"),
            c("LOGOUT\r\n"),
        ],
    );
    assert!(credentials(&events).is_empty(), "{:?}", summary(&events));
    let events = play(
        4190,
        &[s(SIEVE_GREETING), c("STARTTLS\r\n"), s("OK \"Begin TLS negotiation now.\"\r\n"), C(script.into_bytes())],
    );
    assert!(credentials(&events).is_empty());
}

#[test]
fn a_session_stays_within_the_inspection_boxs_share() {
    // Every inspected flow's box holds a session as large as the largest protocol's: a protocol
    // that grows it costs every flow (rare state, such as a credential awaiting its verdict or a
    // literal being read, goes behind a box of its own).
    let size = std::mem::size_of::<Session>();
    assert!(size <= 512, "a session takes {size} bytes");
}

fn transcripts() -> Vec<(u16, Vec<Says>)> {
    let blob = b64(b"\0digitalinvestigator@networksims.com\0napier123");
    vec![
        (110, pop3_user_pass()),
        (587, smtp_auth_login()),
        (143, vec![s("* OK ready\r\n"), c("a1 LOGIN {5}\r\nalice {8+}\r\ntrick{7}\r\n"), s("a1 OK\r\n")]),
        (
            143,
            vec![
                s("* OK ready\r\n"),
                c("a AUTHENTICATE PLAIN\r\n"),
                s("+ \r\n"),
                C(format!("{blob}\r\n").into_bytes()),
                s("a NO\r\n"),
            ],
        ),
        (110, vec![s("+OK\r\n"), C(format!("AUTH PLAIN {blob}\r\n").into_bytes()), s("+OK\r\n")]),
        (4190, managesieve_login_steps()),
    ]
    .into_iter()
    .chain(early_talkers())
    .chain(logins_behind_starttls(&blob))
    .chain(mid_greeting_talkers())
    .chain(logins_around_unauthenticate())
    .chain(logins_in_clear_on_tls_ports())
    .collect()
}

/// Logins in clear on the implicit-TLS ports, each opening as its protocol does.
fn logins_in_clear_on_tls_ports() -> Vec<(u16, Vec<Says>)> {
    vec![
        (995, pop3_user_pass()),
        (993, vec![s("* OK ready\r\n"), c("a1 LOGIN alice hunter2\r\n"), s("a1 OK\r\n")]),
        (465, smtp_auth_login()),
    ]
}

proptest! {
    /// Any split of a conversation into chunks, down to one byte each, reports the same.
    #[test]
    fn any_split_same_events(chunk in 1usize..64, which in any::<prop::sample::Index>()) {
        let mut all = transcripts();
        let (port, steps) = all.swap_remove(which.index(all.len()));
        let whole: Vec<_> = summary(&play(port, &steps));
        let split: Vec<_> = summary(&play_chunked(port, &steps, chunk, true));
        prop_assert_eq!(whole, split);
    }

    /// Sessions take any bytes from either side without panicking.
    #[test]
    fn sessions_are_total(port in prop::sample::select(vec![110u16, 143, 25, 4190, 4000]), roles_certain in any::<bool>(), chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..200)), 0..20)) {
        let steps: Vec<Says> = chunks.into_iter().map(|(client, bytes)| if client { C(bytes) } else { S(bytes) }).collect();
        let _ = play_chunked(port, &steps, 7, roles_certain);
    }

    /// Whatever comes, a session holds no more than `max_session_buffered` (small limits, so that
    /// generated traffic reaches them; IMAP-shaped pieces, so that literals and continued
    /// commands come up often).
    #[test]
    fn sessions_stay_within_their_bound(
        port in prop::sample::select(vec![110u16, 143, 25, 4190]),
        pieces in prop::collection::vec((any::<bool>(), prop::sample::select(vec![
            "* OK x\r\n", "+ go\r\n", "a LOGIN ", "b AUTHENTICATE PLAIN ", "c ID (", "\"kkkkkkkk\" ", "() ",
            "{0}\r\n", "{9}\r\nxxxxxxxxx", "{32}\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "{300}\r\n", "{3+}\r\nxxx",
            "xxxxxxxxxx", "\r\n", "a OK\r\n", "a NO\r\n",
        ]), 1usize..12), 0..120),
    ) {
        let mut parts = CtxParts { config: ProtoConfig { max_line: 64, max_literal: 32, ..ProtoConfig::default() }, ..CtxParts::default() };
        let bound = parts.config.max_session_buffered();
        let mut session = Session::new(Side::Lo, true, true, port, &parts.config);
        for (from_server, piece, times) in pieces {
            let side = if from_server { Side::Hi } else { Side::Lo };
            session.on_data(side, piece.repeat(times).as_bytes(), &mut parts.ctx(Timestamp(1)));
            prop_assert!(session.buffered() <= bound, "{} bytes held, bound {}", session.buffered(), bound);
        }
    }
}

/// Sessions caught mid-login (a partial line, a literal half received, tokens assembled) print
/// no byte of the password in their `Debug` output.
#[test]
fn sessions_mid_login_debug_without_secrets() {
    let mut parts = CtxParts::default();
    let mut ctx = parts.ctx(Timestamp(0));
    let mut imap = imap::ImapSession::default();
    imap.on_piece(Role::Server, framing::Piece::Line { line: b"* OK hi" }, &mut ctx);
    imap.on_piece(Role::Client, framing::Piece::Line { line: b"a LOGIN \"Canary-User\" {20}" }, &mut ctx);
    imap.on_piece(Role::Client, framing::Piece::Raw { data: b"Canary-Secret-", last: false }, &mut ctx);
    let mut framer = framing::LineFramer::new(100);
    framer.feed(b"PASS Canary-Secret-2", &mut |_| framing::Next::Line);
    let piece = framing::Piece::Line { line: b"PASS Canary-Secret-3" };
    let token = imap_tokens_debug(b"a LOGIN alice Canary-Secret-4");
    let mut sieve = managesieve::ManageSieveSession::default();
    let blob = b64(b"\0alice\0Canary-Secret-5");
    sieve.on_piece(Role::Server, framing::Piece::Line { line: b"OK" }, &mut ctx);
    let authenticate = format!("AUTHENTICATE \"PLAIN\" {{{}+}}", blob.len());
    sieve.on_piece(Role::Client, framing::Piece::Line { line: authenticate.as_bytes() }, &mut ctx);
    sieve.on_piece(Role::Client, framing::Piece::Raw { data: &blob.as_bytes()[..12], last: false }, &mut ctx);
    assert!(sieve.buffered() > 0, "the literal is being held");
    let sieve = format!("{sieve:?}");
    assert!(!sieve.contains(&blob[..12]), "ManageSieve's literal shows in Debug");
    // A lost LOGIN read from its literal's go-ahead, its user name kept and its password begun.
    let mut lost_login = imap::ImapSession::default();
    lost_login.on_piece(Role::Server, framing::Piece::Line { line: b"* OK hi" }, &mut ctx);
    lost_login.on_gap(Role::Client);
    lost_login.on_piece(Role::Server, framing::Piece::Line { line: b"+ OK" }, &mut ctx);
    lost_login.on_piece(Role::Client, framing::Piece::Line { line: b"Canary-User-7 {20}" }, &mut ctx);
    lost_login.on_piece(Role::Client, framing::Piece::Raw { data: b"Canary-Secret-", last: false }, &mut ctx);
    assert!(lost_login.buffered() > 0, "the lost login's password is being held");
    let lost_login = format!("{lost_login:?}");
    assert!(!lost_login.contains("Canary-User"), "a lost login's user name shows in Debug");
    let debugs = [("IMAP", format!("{imap:?}")), ("framer", format!("{framer:?}")), ("piece", format!("{piece:?}"))];
    let more = [("token", token), ("ManageSieve", sieve), ("lost IMAP login", lost_login)];
    for (what, debug) in debugs.into_iter().chain(more) {
        assert!(!debug.contains("Canary-Secret"), "{what}: a password shows in Debug");
    }
}

/// A session holding a raw user name (POP3's `USER` waiting for `PASS`, credentials waiting for
/// their verdict) and the SASL messages that carry one show neither it nor the password in
/// their `Debug` output: in masked mode a raw name must not reach a log or a panic message.
#[test]
fn raw_user_names_stay_out_of_debug_output() {
    let mut parts = CtxParts::default();
    let mut ctx = parts.ctx(Timestamp(0));
    let mut pop3_user = pop3::Pop3Session::default();
    pop3_user.on_piece(Role::Server, framing::Piece::Line { line: b"+OK" }, &mut ctx);
    pop3_user.on_piece(Role::Client, framing::Piece::Line { line: b"USER Canary-User-1" }, &mut ctx);
    let mut pop3_pass = pop3::Pop3Session::default();
    for (role, line) in [
        (Role::Server, &b"+OK"[..]),
        (Role::Client, b"USER Canary-User-2"),
        (Role::Server, b"+OK"),
        (Role::Client, b"PASS Canary-Secret-2"),
    ] {
        pop3_pass.on_piece(role, framing::Piece::Line { line }, &mut ctx);
    }
    let mut imap = imap::ImapSession::default();
    imap.on_piece(Role::Server, framing::Piece::Line { line: b"* OK hi" }, &mut ctx);
    imap.on_piece(Role::Client, framing::Piece::Line { line: b"a LOGIN Canary-User-3 Canary-Secret-3" }, &mut ctx);
    let mut sasl = auth::SaslExchange::new(b"PLAIN");
    let step = sasl.on_response(b64(b"\0Canary-User-4\0Canary-Secret-4").as_bytes(), &mut ctx);
    let plain = sasl::parse_plain(b"Canary-User-5\0Canary-User-6\0Canary-Secret-5");
    let ntlm = sasl::NtlmMessage::Authenticate {
        user: b"Canary-User-7".to_vec(),
        domain: b"Canary-User-8".to_vec(),
        workstation: b"Canary-User-9".to_vec(),
    };
    let debugs = [
        ("POP3 after USER", format!("{pop3_user:?}")),
        ("POP3 awaiting its verdict", format!("{pop3_pass:?}")),
        ("IMAP awaiting its verdict", format!("{imap:?}")),
        ("a captured SASL step", format!("{step:?}")),
        ("a PLAIN message", format!("{plain:?}")),
        ("an NTLM message", format!("{ntlm:?}")),
    ];
    // As text, and as the numbers a derived `Debug` prints bytes as.
    let canary_bytes = format!("{:?}", b"Canary").replace(['[', ']'], "");
    for (what, debug) in debugs {
        assert!(debug.contains("len"), "{what}: lengths are shown");
        assert!(
            !debug.contains("Canary") && !debug.contains(&canary_bytes),
            "{what}: a raw user name or password shows in Debug"
        );
    }
}

fn imap_tokens_debug(line: &[u8]) -> String {
    format!("{:?}", imap::parser_tokens(line))
}

/// A credential is held until its verdict, up to 32 a session: what it keeps of the user name is
/// bounded. A name of an address's length is reported; a longer one is no account, and the
/// credential is reported without it, on every protocol and mechanism.
#[test]
fn user_names_longer_than_any_address_are_not_kept() {
    for (len, shown) in [(auth::MAX_USER_NAME, Some("u***")), (auth::MAX_USER_NAME + 1, None)] {
        let user = "u".repeat(len);
        let plain = b64(format!("\0{user}\0hunter2").as_bytes());
        let cases = [
            (
                110,
                vec![s("+OK\r\n"), C(format!("USER {user}\r\nPASS hunter2\r\n").into_bytes()), s("+OK\r\n+OK in\r\n")],
            ),
            (143, vec![s("* OK\r\n"), C(format!("a LOGIN {user} hunter2\r\n").into_bytes()), s("a OK in\r\n")]),
            (587, vec![s("220 mx\r\n"), C(format!("AUTH PLAIN {plain}\r\n").into_bytes()), s("235 ok\r\n")]),
        ];
        for (port, steps) in cases {
            let events = play(port, &steps);
            let users: Vec<Option<&str>> = credentials(&events).iter().map(|c| c.username.as_deref()).collect();
            assert_eq!(users, [shown], "port {port}, a name of {len} bytes");
            assert_eq!(credentials(&events)[0].outcome, Outcome::Success, "port {port}");
        }
    }
}

/// A session keeps the tags of the commands awaiting a reply: a login under a tag longer than
/// any client's is reported at once, outcome unknown, its command not tracked.
#[test]
fn a_login_under_an_overlong_tag_is_reported_at_once() {
    for (tag_len, outcome) in [(64, Outcome::Success), (65, Outcome::Unknown)] {
        let tag = "t".repeat(tag_len);
        let steps = [
            s("* OK ready\r\n"),
            C(format!("{tag} LOGIN cid hunter2\r\n").into_bytes()),
            C(format!("{tag} SELECT INBOX\r\n").into_bytes()),
            S(format!("{tag} OK Logged in\r\n{tag} OK selected\r\n").into_bytes()),
        ];
        let mut parts = CtxParts::default();
        let mut session = Session::new(Side::Lo, true, true, 143, &parts.config);
        feed(&mut session, &mut parts, &steps[..2], usize::MAX);
        let reported_before_the_reply = credentials(&parts.events).len();
        assert_eq!(reported_before_the_reply, usize::from(outcome == Outcome::Unknown), "tag of {tag_len}");
        let events = play(143, &steps);
        assert_eq!(summary(&events), one("LOGIN", "c***", outcome, SecretKind::Password), "tag of {tag_len}");
    }
}

/// A client that sends its login behind a capability request without waiting for the reply (Exim
/// as a client with PIPECONNECT sends `EHLO` and `AUTH` before the greeting; a POP3 client
/// pipelining `CAPA`): the alert describes the server as that reply shows it, STARTTLS offered
/// and skipped, as when the client waits.
#[test]
fn a_login_pipelined_behind_the_capability_request_is_described_by_its_reply() {
    let blob = b64(b"\0bob@example.test\0hunter2");
    let cases = [
        (
            587,
            "AUTH PLAIN",
            vec![
                C(format!("EHLO client.example.test\r\nAUTH PLAIN {blob}\r\n").into_bytes()),
                s("220 mx.example.test ESMTP Exim 4.96\r\n"),
                s("250-mx.example.test Hello\r\n250-PIPECONNECT\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"),
                s("235 Authentication succeeded\r\n"),
            ],
        ),
        (
            110,
            "USER/PASS",
            vec![
                s("+OK ready\r\n"),
                c("CAPA\r\nUSER bob@example.test\r\nPASS hunter2\r\n"),
                s("+OK\r\nSTLS\r\nUSER\r\nPIPELINING\r\n.\r\n+OK\r\n+OK Logged in.\r\n"),
            ],
        ),
    ];
    for (port, mechanism, steps) in cases {
        let events = play(port, &steps);
        assert_eq!(summary(&events), one(mechanism, "b***@example.test", Outcome::Success, SecretKind::Password));
        let credential = credentials(&events)[0];
        assert_eq!(credential.server.starttls_offered, Some(true), "port {port}");
        assert!(!credential.server.capabilities.is_empty(), "port {port}");
        assert_eq!(credential.remediation, Remediation::ClientSkippedStarttls, "port {port}");
    }
}

/// A snap length that cut the EHLO reply took its last line: the next reply, with a code only
/// AUTH gives (RFC 4954), is AUTH's verdict, whether whole or cut itself (as by tcpdump -s 96 on
/// Postfix's `235 2.7.0 Authentication successful`), not the EHLO's, which left AUTH to take the
/// next command's reply for its own.
#[test]
fn an_auth_verdict_after_an_ehlo_reply_cut_short_is_auth_s() {
    let blob = b64(b"\0carol@example.test\0hunter2");
    for (verdict, outcome) in [
        ("235 2.7.0 Authentication successful", Outcome::Success),
        ("535 5.7.8 Error: authentication failed: another step", Outcome::Failure),
    ] {
        for verdict_cut in [false, true] {
            let mut steps = vec![
                s("220 pf.example.test ESMTP Postfix\r\n"),
                c("EHLO vm\r\n"),
                s("250-pf.example.test\r\n250-PIPEL"),
                ServerCutOff(120),
                // The client had every byte the server sent (its acknowledgement says so): the
                // server's next line starts a reply.
                CAcked(format!("AUTH PLAIN {}", &blob[..20]).into_bytes()),
                ClientCutOff((blob.len() - 20 + 2) as u64),
            ];
            if verdict_cut {
                steps.extend([S(verdict.as_bytes()[..30].to_vec()), ServerCutOff(verdict.len() as u64 - 28)]);
            } else {
                steps.push(S(format!("{verdict}\r\n").into_bytes()));
            }
            steps.extend([c("MAIL FROM:<carol@example.test>\r\n"), s("250 2.1.0 Ok\r\n")]);
            let events = play(25, &steps);
            let found: Vec<Outcome> = credentials(&events).iter().map(|credential| credential.outcome).collect();
            assert_eq!(found, [outcome], "{verdict}, cut: {verdict_cut}");
        }
    }
}

/// A ManageSieve SASL response sent as a literal whose end a snap length cut (sieve-connect sends
/// `AUTHENTICATE "PLAIN" {52+}` and the message on the next line) is read as far as it came, as
/// a cut line is: a partial credential with the user name it holds whole. The rest of the
/// literal, when it comes after a loss inside it, is skipped.
#[test]
fn a_managesieve_sasl_literal_cut_short_is_a_partial_credential() {
    let blob = b64(b"\0carol@example.test\0Sunny Day 2024");
    for (kept, lost_then_rest) in [(30, false), (30, true), (8, false)] {
        let mut steps = vec![
            s(SIEVE_GREETING),
            C(format!("AUTHENTICATE \"PLAIN\" {{{}+}}\r\n", blob.len()).into_bytes()),
            C(blob.as_bytes()[..kept].to_vec()),
        ];
        let lost = if lost_then_rest { 4 } else { blob.len() - kept + 2 };
        steps.push(ClientCutOff(lost as u64));
        if lost_then_rest {
            steps.push(C(format!("{}\r\n", &blob[kept + 4..]).into_bytes()));
        }
        steps.push(s("OK \"Logged in.\"\r\n"));
        let events = play(4190, &steps);
        let user = if kept == 30 { "c***@example.test" } else { "c***" };
        assert_eq!(
            summary(&events),
            one("AUTHENTICATE PLAIN", user, Outcome::Success, SecretKind::Password),
            "{kept} bytes kept, rest after the loss: {lost_then_rest}"
        );
        assert!(credentials(&events)[0].partial);
    }
}

/// nginx's mail proxy logs into its IMAP backend with synchronising literals; a snap length cuts
/// each of the client's segments (`a0001 LOGIN {16}`, the user name's literal with the password's
/// announcement, the password's literal) wherever it falls: one login, with the user name only
/// when its literal came whole, never a piece of an announcement for one, and the literals after
/// the cut never read as another, lost, login.
#[test]
fn a_login_by_literals_under_any_snap_length_is_one_login() {
    let client = ["a0001 LOGIN {16}\r\n", "bob@example.test {16}\r\n", "Sunny-Day-2024!!\r\n"];
    for keep in 1..=24 {
        let mut steps = vec![s("* OK [CAPABILITY IMAP4rev1] Courier-IMAP ready.\r\n")];
        for (i, segment) in client.iter().enumerate() {
            let kept = keep.min(segment.len());
            steps.push(C(segment.as_bytes()[..kept].to_vec()));
            if kept < segment.len() {
                steps.push(ClientCutOff((segment.len() - kept) as u64));
            }
            if i < 2 {
                steps.push(s("+ OK\r\n"));
            }
        }
        steps.push(s("a0001 OK LOGIN Ok.\r\n"));
        let events = play(143, &steps);
        let found: Vec<(Outcome, Option<&str>)> =
            credentials(&events).iter().map(|c| (c.outcome, c.username.as_deref())).collect();
        assert_eq!(found.len(), 1, "{keep} bytes kept: {found:?}");
        // Cut before `{`, the command is not seen; its reply is then not known to be the login's
        // (client bytes were lost after its password began).
        let outcome = if keep < "a0001 LOGIN {".len() { Outcome::Unknown } else { Outcome::Success };
        assert_eq!(found[0].0, outcome, "{keep} bytes kept");
        assert!(matches!(found[0].1, None | Some("b***@example.test")), "{keep} bytes kept: {found:?}");
    }
}

/// An `AUTH LOGIN` carrying the user name, lost with the `EHLO` reply before it: the `334`
/// prompt after the loss is read (only AUTH is answered so), and its `Password:` places the
/// password.
#[test]
fn a_prompt_after_lost_replies_begins_the_exchange() {
    let ehlo_reply = "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
    let command = format!("AUTH LOGIN {}\r\n", b64(b"alice"));
    let steps = [
        s("220 mx ESMTP\r\n"),
        c("EHLO x\r\n"),
        ServerLost(ehlo_reply.len() as u64),
        ClientLost(command.len() as u64),
        s(&format!("334 {}\r\n", b64(b"Password:"))),
        acked(&format!("{}\r\n", b64(b"hunter2"))),
        s("235 2.7.0 Authentication successful\r\n"),
    ];
    let events = play(587, &steps);
    assert_eq!(summary(&events), [("AUTH LOGIN".to_string(), None, Outcome::Success, SecretKind::Password)]);
    assert_eq!(credentials(&events).first().map(|login| (login.partial, login.secret_length)), Some((false, Some(7))));
}

/// A loss from inside LOGIN's user name literal past the line's end (the password's literal
/// announced there): the server's go-ahead for that literal shows the client's line ended within
/// the lost bytes, so the next line is not the cut line's tail but the password's literal.
#[test]
fn a_go_ahead_after_a_loss_past_a_literal_ends_the_cut_line() {
    let steps = [
        s("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        c("a1 LOGIN {5}\r\n"),
        s("+ go ahead\r\n"),
        c("al"),
        ClientLost(9),
        s("+ go ahead\r\n"),
        acked("hunter2\r\n"),
        s("a1 OK Logged in\r\n"),
    ];
    let events = play(143, &steps);
    assert_eq!(summary(&events), [("LOGIN".to_string(), None, Outcome::Success, SecretKind::Password)]);
}
