//! Replies the capture lost, in the protocols that answer commands in order (POP3, SMTP,
//! ManageSieve): the client's next command acknowledges the lost bytes, which shows it had the
//! replies to the commands before it, so every verdict after the loss stays on its own command.
//! Read in order alone, each reply after a lost one would answer the command before its own: a
//! refused password reported accepted, an accepted one refused. Sessions are scripted
//! ([`common::script`]) and read with one thread and with two.

mod common;

use base64::Engine as _;
use common::script::Step::{self, Client, ClientLost, Pause, Server, ServerLost};
use common::script::{credentials, logins, run};
use serde_json::Value;

const SECRET: &str = "Lost-Reply-Secret-42";

fn plain_blob() -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0alice\0{SECRET}"))
}

/// The credentials credwatch reports for the session, the same with one thread and two, and the
/// events of the run with one.
fn read(port: u16, steps: &[Step<'_>]) -> (Vec<(String, String, String)>, Vec<Value>) {
    let (events, text) = run(port, steps, &["--show-usernames", "--threads", "1"]);
    let (threaded, _) = run(port, steps, &["--show-usernames", "--threads", "2"]);
    assert_eq!(credentials(&threaded), credentials(&events), "two threads report as one");
    assert!(!text.contains(SECRET), "the secret appears in the output");
    (credentials(&events), events)
}

#[test]
fn pop3_a_lost_reply_to_user_leaves_each_password_its_own_verdict() {
    let pass = format!("PASS {SECRET}\r\n");
    let (found, _) = read(
        110,
        &[
            Server("+OK POP3 ready\r\n"),
            Client("USER alice\r\n"),
            ServerLost("+OK\r\n"),
            Client("PASS not-the-password\r\n"),
            Pause,
            Server("-ERR [AUTH] Authentication failed.\r\n"),
            Client("USER alice\r\n"),
            Server("+OK\r\n"),
            Client(&pass),
            Server("+OK Logged in.\r\n"),
        ],
    );
    assert_eq!(found, logins(&[("USER/PASS", "alice", "failure"), ("USER/PASS", "alice", "success")]));
}

#[test]
fn pop3_a_lost_verdict_is_unknown_and_the_next_login_keeps_its_own() {
    let pass = format!("PASS {SECRET}\r\n");
    let (found, _) = read(
        110,
        &[
            Server("+OK POP3 ready\r\n"),
            Client("USER alice\r\n"),
            Server("+OK\r\n"),
            Client("PASS not-the-password\r\n"),
            ServerLost("-ERR [AUTH] Authentication failed.\r\n"),
            Client("USER bob\r\n"),
            Pause,
            Server("+OK\r\n"),
            Client(&pass),
            Server("-ERR [AUTH] Authentication failed.\r\n"),
            Client("QUIT\r\n"),
            Server("+OK Logging out.\r\n"),
        ],
    );
    assert_eq!(found, logins(&[("USER/PASS", "alice", "unknown"), ("USER/PASS", "bob", "failure")]));
}

#[test]
fn smtp_a_lost_ehlo_reply_leaves_auth_its_verdict_and_claims_no_missing_starttls() {
    let auth = format!("AUTH PLAIN {}\r\n", plain_blob());
    let (found, events) = read(
        587,
        &[
            Server("220 mx.example.test ESMTP\r\n"),
            Client("EHLO laptop\r\n"),
            ServerLost("250-mx.example.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
            Client(&auth),
            Pause,
            Server("535 5.7.8 Authentication failed\r\n"),
            Client("QUIT\r\n"),
            Server("221 2.0.0 Bye\r\n"),
        ],
    );
    assert_eq!(found, logins(&[("AUTH PLAIN", "alice", "failure")]));
    let alert = events.iter().find(|event| event["event_type"] == "cleartext_credential").unwrap();
    assert_eq!(alert["server"]["starttls_offered"], Value::Null, "the lost list may have offered it");
}

#[test]
fn managesieve_a_lost_capability_reply_leaves_authenticate_its_verdict() {
    let authenticate = format!("AUTHENTICATE \"PLAIN\" \"{}\"\r\n", plain_blob());
    let (found, _) = read(
        4190,
        &[
            Server("\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN\"\r\nOK \"ready\"\r\n"),
            Client("CAPABILITY\r\n"),
            ServerLost(
                "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN\"\r\nOK \"Capability completed.\"\r\n",
            ),
            Client(&authenticate),
            Pause,
            Server("OK \"Logged in.\"\r\n"),
        ],
    );
    assert_eq!(found, logins(&[("AUTHENTICATE PLAIN", "alice", "success")]));
}

/// The line end of AUTH is lost too (a one-byte segment): the cut line, sent having received the
/// lost EHLO reply, still takes the verdict after it; and the verdict, captured with the client's
/// FIN far behind, is not read before the loss it follows.
#[test]
fn smtp_an_auth_line_whose_end_was_lost_takes_its_own_verdict() {
    let auth = format!("AUTH PLAIN {}\r", plain_blob());
    for ehlo_reply in [Server("250-mx.example.test\r\n250 AUTH PLAIN\r\n"), ServerLost("250 AUTH PLAIN\r\n")] {
        let (found, events) = read(
            587,
            &[
                Server("220 mx.example.test ESMTP\r\n"),
                Client("EHLO laptop\r\n"),
                ehlo_reply,
                Client(&auth),
                ClientLost("\n"),
                Server("235 2.7.0 Authentication successful\r\n"),
                Client("MAIL FROM:<a@example.test>\r\n"),
                ServerLost("250 2.1.0 Ok\r\n"),
                Client("QUIT\r\n"),
                Server("221 2.0.0 Bye\r\n"),
            ],
        );
        assert_eq!(found, logins(&[("AUTH PLAIN", "alice", "success")]));
        let alert = events.iter().find(|event| event["event_type"] == "cleartext_credential").unwrap();
        assert_eq!(alert["credential"]["partial"], true);
    }
}

/// The verdict of a POP3 login lost, a mailbox command accepted after it shows it accepted: a
/// server answers STAT only once a login was.
#[test]
fn pop3_a_login_whose_verdict_was_lost_is_shown_accepted_by_stat() {
    let response = format!("{}\r\n", plain_blob());
    for (after, outcome) in [(Server("+OK 2 320\r\n"), "success"), (Server("-ERR [SYS/TEMP] try later\r\n"), "unknown")]
    {
        let (found, _) = read(
            110,
            &[
                Server("+OK POP3 ready\r\n"),
                Client("AUTH PLAIN\r\n"),
                Server("+ \r\n"),
                Client(&response),
                ServerLost("+OK Logged in.\r\n"),
                Client("STAT\r\n"),
                Pause,
                after,
                Client("QUIT\r\n"),
                Server("+OK Logging out.\r\n"),
            ],
        );
        assert_eq!(found, logins(&[("AUTH PLAIN", "alice", outcome)]));
    }
}
