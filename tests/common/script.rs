//! Scripted TCP sessions: written to a capture by the repo's pcap writer, read by credwatch.
//! After a loss, the client's next segment acknowledges the lost bytes and waits for them, so
//! scripts pause before the server answers it, as a live capture's clock would (the waiting
//! segment goes in first, after the gap).

use std::net::SocketAddr;
use std::time::Duration;

use credwatch::pcapwriter::{write_pcap_file, Conversation, Side};
use serde_json::Value;

/// A POP3 login in clear as most clients make it, from the handshake: greeting, `USER`, `PASS`,
/// accepted.
pub fn pop3_login<'c>(conversation: &'c mut Conversation, user: &str) -> &'c mut Conversation {
    conversation
        .handshake()
        .server(b"+OK POP3 ready\r\n")
        .client(format!("USER {user}\r\n").as_bytes())
        .server(b"+OK\r\n")
        .client(b"PASS not-a-real-password\r\n")
        .server(b"+OK logged in\r\n")
}

/// One step of a scripted session.
pub enum Step<'a> {
    Client(&'a str),
    Server(&'a str),
    /// Client data whose every segment the capture lost.
    ClientLost(&'a str),
    /// Server data whose every segment the capture lost.
    ServerLost(&'a str),
    /// Client data in segments of this many bytes.
    ClientSplit(&'a str, usize),
    /// Two seconds without a packet: segments held for lost bytes are let in by then.
    Pause,
}

/// Writes one TCP session to a capture and returns what credwatch printed for it, as JSON lines
/// and as raw text.
pub fn run(server_port: u16, steps: &[Step<'_>], extra_args: &[&str]) -> (Vec<Value>, String) {
    let client: SocketAddr = ([192, 0, 2, 60], 40_100).into();
    let server: SocketAddr = ([198, 51, 100, 60], server_port).into();
    let mut conversation = Conversation::new(client, server);
    conversation.handshake().acknowledge_data(true);
    for step in steps {
        match step {
            Step::Client(text) => conversation.client(text.as_bytes()),
            Step::Server(text) => conversation.server(text.as_bytes()),
            Step::ClientLost(text) => conversation.client(text.as_bytes()).drop_last(0),
            Step::ServerLost(text) => conversation.server(text.as_bytes()).drop_last(0),
            Step::ClientSplit(text, size) => conversation.send_split(Side::Client, text.as_bytes(), &[*size]),
            Step::Pause => conversation.wait(Duration::from_secs(2)),
        };
    }
    conversation.fin(Side::Client);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.pcap");
    write_pcap_file(&path, &conversation.frames().unwrap()).unwrap();
    let mut args = vec!["read", "--format", "json"];
    args.extend_from_slice(extra_args);
    args.push(path.to_str().unwrap());
    let output = super::credwatch(&args, &[]);
    assert!(output.status.success(), "credwatch exit status {:?}", output.status);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (super::parse_lines(&output.stdout), text)
}

/// `(mechanism, user, outcome)` of each credential event, in order.
pub fn credentials(events: &[Value]) -> Vec<(String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or("null").to_string();
    events
        .iter()
        .filter(|e| e["event_type"] == "cleartext_credential" || e["event_type"] == "weak_credential")
        .map(|e| {
            let credential = &e["credential"];
            (text(&credential["mechanism"]), text(&credential["username"]), text(&credential["outcome"]))
        })
        .collect()
}

pub fn logins(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected.iter().map(|(m, u, o)| (m.to_string(), u.to_string(), o.to_string())).collect()
}
