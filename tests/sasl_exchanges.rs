//! SASL exchanges whose end the capture does not show: the server's verdict lost (a gap) or never
//! captured. The exchange must end there, its credential reported with outcome `unknown`, and
//! every later command read as a command, so that no later login goes unreported. Sessions are
//! scripted ([`common::script`]).
//!
//! And LOGIN exchanges whose prompts mislead: the reported user name is the first response,
//! never the password.

mod common;

use base64::Engine as _;
use common::script::Step::{Client, ClientSplit, Pause, Server, ServerLost};
use common::script::{credentials, logins, run, Step};

const SECRET: &str = "Zq9@SECRET-7731";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Runs `steps` with full user names and checks the credentials, and that the secret (nor its
/// base64) is nowhere in the output (checked without printing it).
fn check(server_port: u16, steps: &[Step<'_>], expected: &[(&str, &str, &str)]) {
    let (events, text) = run(server_port, steps, &["--show-usernames"]);
    assert_eq!(credentials(&events), logins(expected));
    assert!(!text.contains(SECRET) && !text.contains(&b64(SECRET.as_bytes())), "the secret appears in the output");
}

const IMAP_GREETING: &str = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] ready\r\n";
const POP3_GREETING: &str = "+OK POP3 ready\r\n";
const SMTP_GREETING: &str = "220 mx.example.test ESMTP\r\n";
const SIEVE_GREETING: &str =
    "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\nOK \"ready\"\r\n";

fn imap_login() -> String {
    format!("b LOGIN alice {SECRET}\r\n")
}

fn plain_blob() -> String {
    b64(format!("\0alice\0{SECRET}").as_bytes())
}

#[test]
fn imap_a_lost_tagged_verdict_does_not_hide_the_next_login() {
    let login = imap_login();
    let gssapi = format!("{}\r\n", b64(b"kerberos-ap-req"));
    for verdict in [ServerLost("a NO GSSAPI failed\r\n"), Server("")] {
        check(
            143,
            &[
                Server(IMAP_GREETING),
                Client("a AUTHENTICATE GSSAPI\r\n"),
                Server("+ \r\n"),
                Client(&gssapi),
                verdict,
                Client(&login),
                Pause,
                Server("b OK logged in\r\n"),
            ],
            &[("LOGIN", "alice", "success")],
        );
    }
    // A credential completed in the exchange is reported, outcome unknown, and the next one too.
    let wrong = format!("{}\r\n", b64(b"\0alice\0wrong-pass"));
    check(
        143,
        &[
            Server(IMAP_GREETING),
            Client("a AUTHENTICATE PLAIN\r\n"),
            Server("+ \r\n"),
            Client(&wrong),
            ServerLost("a NO failed\r\n"),
            Client(&login),
            Pause,
            Server("b OK logged in\r\n"),
        ],
        &[("AUTHENTICATE PLAIN", "alice", "unknown"), ("LOGIN", "alice", "success")],
    );
}

#[test]
fn pop3_a_lost_auth_verdict_does_not_take_the_next_reply() {
    let pass = format!("PASS {SECRET}\r\n");
    let gssapi = format!("{}\r\n", b64(b"kerberos-ap-req"));
    for verdict in [ServerLost("-ERR failed\r\n"), Server("")] {
        check(
            110,
            &[
                Server(POP3_GREETING),
                Client("AUTH GSSAPI\r\n"),
                Server("+ \r\n"),
                Client(&gssapi),
                verdict,
                Client("USER alice\r\n"),
                Pause,
                Server("+OK\r\n"),
                Client(&pass),
                Server("+OK logged in\r\n"),
            ],
            &[("USER/PASS", "alice", "success")],
        );
    }
}

#[test]
fn smtp_a_lost_auth_verdict_does_not_hide_the_next_auth() {
    let plain = format!("AUTH PLAIN {}\r\n", plain_blob());
    let user = format!("{}\r\n", b64(b"alice"));
    let wrong = format!("{}\r\n", b64(b"wrong-pass"));
    for verdict in [ServerLost("535 5.7.8 failed\r\n"), Server("")] {
        check(
            587,
            &[
                Server(SMTP_GREETING),
                Client("EHLO c\r\n"),
                Server("250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
                Client("AUTH LOGIN\r\n"),
                Server("334 VXNlcm5hbWU6\r\n"),
                Client(&user),
                Server("334 UGFzc3dvcmQ6\r\n"),
                Client(&wrong),
                verdict,
                Client(&plain),
                Pause,
                Server("235 2.7.0 ok\r\n"),
            ],
            &[("AUTH LOGIN", "alice", "unknown"), ("AUTH PLAIN", "alice", "success")],
        );
    }
}

#[test]
fn managesieve_a_lost_verdict_does_not_hide_the_next_authenticate() {
    let plain = format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", plain_blob());
    let wrong = format!("\"{}\"\r\n", b64(b"\0alice\0wrong-pass"));
    for verdict in [ServerLost("NO \"failed\"\r\n"), Server("")] {
        check(
            4190,
            &[
                Server(SIEVE_GREETING),
                Client("AUTHENTICATE \"PLAIN\"\r\n"),
                Server("\"\"\r\n"),
                Client(&wrong),
                verdict,
                Client(&plain),
                Pause,
                Server("OK \"Logged in.\"\r\n"),
            ],
            &[("AUTHENTICATE PLAIN", "alice", "unknown"), ("AUTHENTICATE PLAIN", "alice", "success")],
        );
    }
}

#[test]
fn an_exchange_goes_on_past_a_lost_challenge_and_split_responses() {
    // The first prompt is lost: the responses that follow are still the exchange's.
    let user = format!("{}\r\n", b64(b"alice"));
    let password = format!("{}\r\n", b64(SECRET.as_bytes()));
    check(
        587,
        &[
            Server(SMTP_GREETING),
            Client("EHLO c\r\n"),
            Server("250 AUTH LOGIN\r\n"),
            Client("AUTH LOGIN\r\n"),
            ServerLost("334 VXNlcm5hbWU6\r\n"),
            Client(&user),
            Pause,
            Server("334 UGFzc3dvcmQ6\r\n"),
            Client(&password),
            Server("235 2.7.0 ok\r\n"),
        ],
        &[("AUTH LOGIN", "alice", "success")],
    );
    // Responses cut into small segments, the verdict after them.
    let blob = format!("{}\r\n", plain_blob());
    for (port, greeting, start, challenge, verdict, mechanism) in [
        (143, IMAP_GREETING, "a AUTHENTICATE PLAIN\r\n", "+ \r\n", "a OK\r\n", "AUTHENTICATE PLAIN"),
        (110, POP3_GREETING, "AUTH PLAIN\r\n", "+ \r\n", "+OK\r\n", "AUTH PLAIN"),
        (25, SMTP_GREETING, "AUTH PLAIN\r\n", "334 \r\n", "235 ok\r\n", "AUTH PLAIN"),
    ] {
        check(
            port,
            &[Server(greeting), Client(start), Server(challenge), ClientSplit(&blob, 3), Server(verdict)],
            &[(mechanism, "alice", "success")],
        );
    }
}

/// LOGIN prompts from a hostile or odd server, in turn for the user name and the password: as
/// base64 (`true`) or raw.
const HOSTILE_PROMPTS: &[(&str, &str, bool)] = &[
    ("Password:", "Username:", true),
    ("Username:", "Username:", true),
    ("Password:", "Password:", true),
    ("", "", true),
    ("Enter user:", "Enter user secret:", true),
    ("Enter user secret:", "Confirm:", false),
];

/// A LOGIN exchange on `port` answered by position (user name, then password), as Outlook and
/// Thunderbird do, whatever the prompts say; with `initial`, the user name is the initial
/// response and only the password is prompted for.
fn login_steps(port: u16, prompts: (&str, &str, bool), initial: bool) -> Vec<String> {
    let (first, second, encoded) = prompts;
    let prompt = |text: &str| if encoded { b64(text.as_bytes()) } else { text.to_string() };
    let (user, password) = (b64(b"alice"), b64(SECRET.as_bytes()));
    let (greeting, start, challenge, verdict): (&str, String, fn(String) -> String, &str) = match port {
        143 => (IMAP_GREETING, "a AUTHENTICATE LOGIN".into(), |p| format!("+ {p}\r\n"), "a OK\r\n"),
        110 => (POP3_GREETING, "AUTH LOGIN".into(), |p| format!("+ {p}\r\n"), "+OK\r\n"),
        4190 => (SIEVE_GREETING, "AUTHENTICATE \"LOGIN\"".into(), |p| format!("\"{p}\"\r\n"), "OK\r\n"),
        _ => (SMTP_GREETING, "AUTH LOGIN".into(), |p| format!("334 {p}\r\n"), "235 2.7.0 ok\r\n"),
    };
    let response = |text: &str| if port == 4190 { format!("\"{text}\"\r\n") } else { format!("{text}\r\n") };
    let mut steps = vec![greeting.to_string()];
    if initial {
        let ir = if port == 4190 { format!(" \"{user}\"") } else { format!(" {user}") };
        steps.extend([format!("{start}{ir}\r\n"), challenge(prompt(first)), response(&password)]);
    } else {
        steps.extend([format!("{start}\r\n"), challenge(prompt(first)), response(&user)]);
        steps.extend([challenge(prompt(second)), response(&password)]);
    }
    // A client that answers a further prompt with the password again changes nothing.
    steps.extend([challenge(prompt(second)), response(&password), verdict.to_string()]);
    steps
}

#[test]
fn login_reports_the_first_response_as_the_user_whatever_the_prompts_say() {
    for (port, mechanism) in
        [(25, "AUTH LOGIN"), (143, "AUTHENTICATE LOGIN"), (110, "AUTH LOGIN"), (4190, "AUTHENTICATE LOGIN")]
    {
        for &prompts in HOSTILE_PROMPTS {
            for initial in [false, true] {
                let texts = login_steps(port, prompts, initial);
                // Server and client take turns, the server first.
                let steps: Vec<Step<'_>> = texts
                    .iter()
                    .enumerate()
                    .map(|(i, text)| if i % 2 == 0 { Server(text) } else { Client(text) })
                    .collect();
                check(port, &steps, &[(mechanism, "alice", "success")]);
                // Masking keeps what follows the last `@`: the default output names the first
                // response only (a password shown as a user name would show its tail).
                let (events, text) = run(port, &steps, &[]);
                let users: Vec<String> = credentials(&events).into_iter().map(|(_, user, _)| user).collect();
                assert_eq!(users, ["a***"], "port {port}, prompts {prompts:?}, initial {initial}");
                assert!(!text.contains("SECRET"), "a part of the secret appears in the masked output");
            }
        }
    }
}

#[test]
fn a_command_pipelined_behind_a_complete_credential_leaves_it_its_verdict() {
    // RFC 2920 and RFC 2449 let a client send its next command without waiting: the replies come
    // in order, the verdict first.
    let plain = format!("AUTH PLAIN {}\r\n", plain_blob());
    check(
        587,
        &[
            Server(SMTP_GREETING),
            Client("EHLO c\r\n"),
            Server("250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
            Client(&format!("{plain}MAIL FROM:<a@example.test>\r\n")),
            Server("535 5.7.8 failed\r\n503 5.5.1 auth first\r\n"),
        ],
        &[("AUTH PLAIN", "alice", "failure")],
    );
    check(
        143,
        &[
            Server(IMAP_GREETING),
            Client(&format!("a AUTHENTICATE PLAIN {}\r\nb SELECT INBOX\r\n", plain_blob())),
            Server("a OK logged in\r\nb OK selected\r\n"),
        ],
        &[("AUTHENTICATE PLAIN", "alice", "success")],
    );
    check(
        110,
        &[
            Server(POP3_GREETING),
            Client(&format!("{plain}STAT\r\n")),
            Server("-ERR [AUTH] failed\r\n-ERR not logged in\r\n"),
        ],
        &[("AUTH PLAIN", "alice", "failure")],
    );
    check(
        4190,
        &[
            Server(SIEVE_GREETING),
            Client(&format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\nLISTSCRIPTS\r\n", plain_blob())),
            Server("NO \"Authentication failed\"\r\nNO \"Not logged in\"\r\n"),
        ],
        &[("AUTHENTICATE PLAIN", "alice", "failure")],
    );
}

#[test]
fn a_verdict_lost_with_commands_pipelined_behind_it_is_unknown_not_theirs() {
    // The verdict lost, the replies to the pipelined commands must not pass for it (the framer
    // drops the line right after a gap, which it may have cut: the next one is the test).
    let plain = format!("AUTH PLAIN {}\r\n", plain_blob());
    let (events, _) = run(
        587,
        &[
            Server(SMTP_GREETING),
            Client("EHLO c\r\n"),
            Server("250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
            Client(&format!("{plain}MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\n")),
            ServerLost("535 5.7.8 failed\r\n"),
            Pause,
            Server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n"),
        ],
        &["--show-usernames"],
    );
    assert_eq!(credentials(&events), logins(&[("AUTH PLAIN", "alice", "unknown")]));
    let pass = format!("PASS {SECRET}\r\n");
    let (events, _) = run(
        110,
        &[
            Server(POP3_GREETING),
            Client(&format!("{plain}USER alice\r\n")),
            ServerLost("-ERR [AUTH] failed\r\n"),
            Pause,
            Server("+OK\r\n+OK\r\n"),
            Client(&pass),
            Server("+OK logged in\r\n"),
        ],
        &["--show-usernames"],
    );
    let found = credentials(&events);
    assert_eq!(found.first(), logins(&[("AUTH PLAIN", "alice", "unknown")]).first());
    assert_eq!(found.get(1).map(|(m, u, _)| (m.as_str(), u.as_str())), Some(("USER/PASS", "alice")));
    let (events, _) = run(
        4190,
        &[
            Server(SIEVE_GREETING),
            Client(&format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\nLISTSCRIPTS\r\nHAVESPACE \"s\" 1\r\n", plain_blob())),
            ServerLost("NO \"Authentication failed\"\r\n"),
            Pause,
            Server("NO \"Not logged in\"\r\nOK\r\n"),
        ],
        &["--show-usernames"],
    );
    assert_eq!(credentials(&events), logins(&[("AUTHENTICATE PLAIN", "alice", "unknown")]));
}

/// A second AUTHENTICATE while the first one's credential still awaits its verdict (a capture
/// that missed the server's replies): both credentials are reported, neither takes the other's
/// place.
#[test]
fn a_second_authenticate_before_a_verdict_reports_both() {
    let authenticate = format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", plain_blob());
    let (events, _) = run(
        4190,
        &[Server(SIEVE_GREETING), Client(&authenticate), Client("LISTSCRIPTS\r\n"), Client(&authenticate)],
        &["--show-usernames"],
    );
    assert_eq!(
        credentials(&events),
        logins(&[("AUTHENTICATE PLAIN", "alice", "unknown"), ("AUTHENTICATE PLAIN", "alice", "unknown")])
    );
}
