//! Scripted mail sessions with planted logins: POP3, IMAP and SMTP, each in the variations a
//! detector must cope with (SASL forms, IMAP literals, lower-case commands, split, reordered and
//! retransmitted segments, replies captured before their commands, clients that talk before the
//! greeting, STARTTLS, cleartext on implicit-TLS ports), and mail bodies
//! full of login-shaped decoy text.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::rng::Rng;
use crate::pcapwriter::{Conversation, Side};

/// What was planted in one session, before the addressing is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planted {
    pub protocol: &'static str,
    /// `USER/PASS`, `APOP`, `IMAP-LOGIN` or `SASL-<MECH>`.
    pub mechanism: &'static str,
    pub username: String,
    pub password: String,
    pub outcome: &'static str,
    pub password_in_clear: bool,
    pub starttls: bool,
    pub sasl_ir: bool,
    pub imap_literal: &'static str,
    pub scenario: String,
    /// The server's greeting line as the alert must name it (no line end).
    pub greeting: String,
}

/// Mail protocols, by their usual server port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailProtocol {
    Pop3,
    Imap,
    Smtp,
}

impl MailProtocol {
    /// The standard cleartext port; SMTP submission uses 587 or 25. Now and then the protocol's
    /// implicit-TLS port, spoken in clear all the same (a misconfigured server: passwords in clear
    /// where clients expect TLS).
    pub fn port(self, rng: &mut Rng) -> u16 {
        if rng.percent(2) {
            return self.implicit_tls_port();
        }
        match self {
            MailProtocol::Pop3 => 110,
            MailProtocol::Imap => 143,
            MailProtocol::Smtp if rng.percent(50) => 587,
            MailProtocol::Smtp => 25,
        }
    }

    /// The port for the protocol over implicit TLS (RFC 8314).
    pub fn implicit_tls_port(self) -> u16 {
        match self {
            MailProtocol::Pop3 => 995,
            MailProtocol::Imap => 993,
            MailProtocol::Smtp => 465,
        }
    }
}

/// How much mail a session moves after logging in.
#[derive(Clone, Copy, Debug)]
pub struct BodySizes {
    pub min: usize,
    pub max: usize,
    /// Messages fetched (POP3 RETR, IMAP FETCH) or sent (SMTP DATA) after the login.
    pub max_messages: usize,
}

/// Password alphabet: valid in an IMAP atom, so every LOGIN form can carry it.
const PASSWORD_CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!#";
const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const USERNAME_PROMPT: &[u8] = b"VXNlcm5hbWU6";
const PASSWORD_PROMPT: &[u8] = b"UGFzc3dvcmQ6";

/// Scripts one session of `protocol` (handshake, greeting, login attempt, mail traffic, close)
/// onto `conv` and returns what it planted; `None` for an SMTP relay session, which carries
/// decoy text but no login.
pub fn script_session(
    conv: &mut Conversation,
    protocol: MailProtocol,
    rng: &mut Rng,
    bodies: BodySizes,
) -> Option<Planted> {
    conv.handshake();
    let style = Style { lower: rng.percent(20) };
    let planted = match protocol {
        MailProtocol::Pop3 => Some(pop3(conv, rng, style, bodies)),
        MailProtocol::Imap => Some(imap(conv, rng, style, bodies)),
        MailProtocol::Smtp => smtp(conv, rng, style, bodies),
    };
    if rng.percent(90) {
        conv.fin(Side::Client);
    } else {
        conv.rst(Side::Client);
    }
    planted
}

#[derive(Clone, Copy)]
struct Style {
    /// Commands in lower case (`user`, `a1 login`, `auth plain`): verbs are case-insensitive.
    lower: bool,
}

impl Style {
    fn verb(self, verb: &str) -> String {
        if self.lower {
            verb.to_ascii_lowercase()
        } else {
            verb.to_string()
        }
    }
}

fn credentials(rng: &mut Rng) -> (String, String) {
    let first = rng.text(NAME_CHARS, 5);
    let number = rng.below(100_000);
    let user = if rng.percent(50) { format!("{first}{number}") } else { format!("{first}.{number}@example.test") };
    let len = rng.size(10, 18);
    (user, rng.text(PASSWORD_CHARS, len))
}

fn bearer_token(rng: &mut Rng) -> String {
    format!("ya29.{}", rng.text(PASSWORD_CHARS, 40))
}

fn xoauth2(user: &str, token: &str) -> String {
    BASE64.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn sasl_plain(user: &str, password: &str) -> String {
    BASE64.encode(format!("\0{user}\0{password}"))
}

fn b64(text: &str) -> String {
    BASE64.encode(text)
}

/// Sends a credential-bearing client line the hard way, sometimes: in tiny segments, reordered,
/// or with a retransmitted segment.
fn tricky(conv: &mut Conversation, rng: &mut Rng, line: &[u8]) {
    let piece = rng.size(1, 5);
    match rng.below(6) {
        0 => {
            conv.send_split(Side::Client, line, &[piece]);
        }
        1 => {
            conv.send_split(Side::Client, line, &[piece.max(line.len() / 3).max(1)]).reverse_last();
        }
        2 if line.len() >= 2 => {
            conv.send_split(Side::Client, line, &[line.len() / 2]).swap_last(0, 1);
        }
        3 if line.len() >= 2 => {
            conv.send_split(Side::Client, line, &[line.len() / 2]).retransmit_last(0);
        }
        _ => {
            conv.client(line);
        }
    }
}

/// A SASL LOGIN exchange without initial response: the command, then the user name and the
/// password each after the server's base64 prompt (`continuation` is `+ ` for POP3 and IMAP, `334 `
/// for SMTP); the password line goes through [`tricky`].
fn sasl_login(conv: &mut Conversation, rng: &mut Rng, command: &str, continuation: &[u8], user: &str, password: &str) {
    conv.client(&line(command));
    conv.server(&[continuation, USERNAME_PROMPT, b"\r\n"].concat());
    conv.client(&line(&b64(user)));
    conv.server(&[continuation, PASSWORD_PROMPT, b"\r\n"].concat());
    tricky(conv, rng, &line(&b64(password)));
}

fn line(text: &str) -> Vec<u8> {
    format!("{text}\r\n").into_bytes()
}

/// A TLS session after STARTTLS or on an implicit-TLS port: a ClientHello-shaped record, the
/// server's flight, then application data records.
pub fn tls_exchange(conv: &mut Conversation, rng: &mut Rng, data_records: usize) {
    conv.client(&tls_record(0x16, rng, 300));
    conv.server(&tls_record(0x16, rng, 2800));
    conv.client(&tls_record(0x14, rng, 60));
    for _ in 0..data_records {
        let len = rng.size(40, 600);
        conv.client(&tls_record(0x17, rng, len));
        let len = rng.size(100, 6000);
        conv.server(&tls_record(0x17, rng, len));
    }
}

/// One TLS record of `content_type` (TLS 1.2 header) with `len` random bytes.
pub fn tls_record(content_type: u8, rng: &mut Rng, len: usize) -> Vec<u8> {
    let len = len.min(16_384);
    let mut record = vec![content_type, 0x03, 0x03];
    record.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    record.extend_from_slice(&rng.bytes(len));
    record
}

/// A message body of about `size` bytes whose lines include login-shaped text: what a mail
/// about passwords, a forwarded log or a phishing sample would carry. Lines never start with a
/// dot, so no dot-stuffing is needed.
pub fn message_body(rng: &mut Rng, size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "meeting",
        "report",
        "quarterly",
        "budget",
        "please",
        "review",
        "attached",
        "team",
        "project",
        "deadline",
        "thanks",
        "regards",
        "update",
        "server",
        "account",
        "invoice",
        "schedule",
        "customer",
        "draft",
    ];
    let mut body = Vec::with_capacity(size.saturating_add(128));
    body.extend_from_slice(b"From: someone@example.test\r\nTo: you@example.test\r\nSubject: notes\r\n\r\n");
    while body.len() < size {
        if rng.percent(10) {
            body.extend_from_slice(&decoy_line(rng));
        } else {
            let words = rng.size(6, 14);
            let text: Vec<&str> = (0..words).filter_map(|_| rng.pick(WORDS).copied()).collect();
            body.extend_from_slice(&line(&text.join(" ")));
        }
    }
    body
}

/// A line that looks like a login command; inside a message body it is just text.
fn decoy_line(rng: &mut Rng) -> Vec<u8> {
    let (user, password) = credentials(rng);
    let text = match rng.below(8) {
        0 => format!("PASS {password}"),
        1 => format!("USER {user}"),
        2 => format!("a1 LOGIN {user} {password}"),
        3 => format!("AUTH PLAIN {}", sasl_plain(&user, &password)),
        4 => format!("AUTHENTICATE PLAIN {}", sasl_plain(&user, &password)),
        5 => format!("AUTH LOGIN {}", b64(&user)),
        6 => "+OK Logged in.".to_string(),
        _ => format!("a2 login \"{user}\" \"{password}\""),
    };
    line(&text)
}

fn outcome(rng: &mut Rng) -> bool {
    rng.percent(85)
}

/// Sends the server's verdict on a login; sometimes the capture shows it before the last segment
/// of the credential it answers (the two directions merged out of order, as by two TAP ports).
/// Returns the scenario's suffix.
fn verdict(conv: &mut Conversation, rng: &mut Rng, reply: &[u8]) -> &'static str {
    conv.server(reply);
    if rng.percent(4) {
        conv.captured_early(1);
        "-reply-early"
    } else {
        ""
    }
}

/// Sometimes the client does not wait for the greeting: its first command, just scripted, goes
/// out before it (a pipelining client, a bot; Postfix's postscreen calls it pregreet). Returns
/// the scenario's suffix.
fn maybe_spoken_early(conv: &mut Conversation, rng: &mut Rng) -> &'static str {
    if rng.percent(3) {
        conv.spoken_early(1);
        "-client-early"
    } else {
        ""
    }
}

fn pop3(conv: &mut Conversation, rng: &mut Rng, style: Style, bodies: BodySizes) -> Planted {
    let stamp = rng.below(1 << 40);
    let greeting = line(&format!("+OK Dovecot ready. <{stamp}.1@mail.example.test>"));
    conv.server(&greeting);
    let mut early = "";
    if rng.percent(50) {
        conv.client(&line(&style.verb("CAPA")));
        early = maybe_spoken_early(conv, rng);
        conv.server(b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN LOGIN XOAUTH2\r\nSTLS\r\n.\r\n");
    }
    let (user, password) = credentials(rng);
    let success = outcome(rng);
    let verdict_line: &[u8] = if success { b"+OK Logged in.\r\n" } else { b"-ERR [AUTH] Authentication failed.\r\n" };
    let mut planted = Planted {
        protocol: "pop3",
        mechanism: "USER/PASS",
        username: user.clone(),
        password: password.clone(),
        outcome: if success { "success" } else { "failure" },
        password_in_clear: true,
        starttls: false,
        sasl_ir: false,
        imap_literal: "",
        scenario: String::new(),
        greeting: String::from_utf8_lossy(greeting.trim_ascii_end()).into_owned(),
    };
    match rng.below(8) {
        0 => {
            planted.mechanism = "SASL-PLAIN";
            planted.sasl_ir = true;
            tricky(conv, rng, &line(&format!("{} {}", style.verb("AUTH PLAIN"), sasl_plain(&user, &password))));
        }
        1 => {
            planted.mechanism = "SASL-PLAIN";
            conv.client(&line(&style.verb("AUTH PLAIN")));
            conv.server(b"+ \r\n");
            tricky(conv, rng, &line(&sasl_plain(&user, &password)));
        }
        2 => {
            planted.mechanism = "SASL-LOGIN";
            sasl_login(conv, rng, &style.verb("AUTH LOGIN"), b"+ ", &user, &password);
        }
        3 => {
            planted.mechanism = "SASL-XOAUTH2";
            planted.sasl_ir = true;
            planted.password = bearer_token(rng);
            tricky(conv, rng, &line(&format!("{} {}", style.verb("AUTH XOAUTH2"), xoauth2(&user, &planted.password))));
        }
        4 => {
            planted.mechanism = "APOP";
            planted.password_in_clear = false;
            let digest = rng.text(b"0123456789abcdef", 32);
            conv.client(&line(&format!("{} {user} {digest}", style.verb("APOP"))));
        }
        5 => {
            planted.starttls = true;
            planted.password_in_clear = false;
            planted.scenario = "pop3-stls".into();
            conv.client(&line(&style.verb("STLS")));
            conv.server(b"+OK Begin TLS negotiation now.\r\n");
            tls_exchange(conv, rng, 3);
            return planted;
        }
        _ => {
            conv.client(&line(&format!("{} {user}", style.verb("USER"))));
            conv.server(b"+OK\r\n");
            tricky(conv, rng, &line(&format!("{} {password}", style.verb("PASS"))));
        }
    }
    let skew = verdict(conv, rng, verdict_line);
    planted.scenario = format!("pop3-{}{early}{skew}", planted.mechanism.to_ascii_lowercase());
    if success {
        let messages = rng.size(1, bodies.max_messages.max(1));
        conv.client(&line(&style.verb("STAT")));
        conv.server(&line(&format!("+OK {messages} 48213")));
        for number in 1..=messages {
            conv.client(&line(&format!("{} {number}", style.verb("RETR"))));
            let size = rng.size(bodies.min, bodies.max);
            let body = message_body(rng, size);
            let mut reply = line(&format!("+OK {} octets", body.len()));
            reply.extend_from_slice(&body);
            reply.extend_from_slice(b".\r\n");
            conv.server(&reply);
        }
    }
    conv.client(&line(&style.verb("QUIT")));
    conv.server(b"+OK Logging out.\r\n");
    planted
}

fn imap(conv: &mut Conversation, rng: &mut Rng, style: Style, bodies: BodySizes) -> Planted {
    let greeting: &[u8] =
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2] Dovecot ready.\r\n";
    conv.server(greeting);
    let (user, password) = credentials(rng);
    let success = outcome(rng);
    let tag = format!("a{:03}", rng.below(1000));
    let verdict_line = if success {
        line(&format!("{tag} OK [CAPABILITY IMAP4rev1] Logged in"))
    } else {
        line(&format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed."))
    };
    let mut planted = Planted {
        protocol: "imap",
        mechanism: "IMAP-LOGIN",
        username: user.clone(),
        password: password.clone(),
        outcome: if success { "success" } else { "failure" },
        password_in_clear: true,
        starttls: false,
        sasl_ir: false,
        imap_literal: "",
        scenario: String::new(),
        greeting: String::from_utf8_lossy(greeting.trim_ascii_end()).into_owned(),
    };
    let login = style.verb("LOGIN");
    let authenticate = style.verb("AUTHENTICATE");
    let mut early = "";
    match rng.below(9) {
        0 => {
            planted.mechanism = "SASL-PLAIN";
            planted.sasl_ir = true;
            tricky(conv, rng, &line(&format!("{tag} {authenticate} PLAIN {}", sasl_plain(&user, &password))));
        }
        1 => {
            planted.mechanism = "SASL-PLAIN";
            conv.client(&line(&format!("{tag} {authenticate} PLAIN")));
            conv.server(b"+ \r\n");
            tricky(conv, rng, &line(&sasl_plain(&user, &password)));
        }
        2 => {
            planted.mechanism = "SASL-LOGIN";
            sasl_login(conv, rng, &format!("{tag} {authenticate} LOGIN"), b"+ ", &user, &password);
        }
        3 => {
            planted.mechanism = "SASL-XOAUTH2";
            planted.sasl_ir = true;
            planted.password = bearer_token(rng);
            tricky(conv, rng, &line(&format!("{tag} {authenticate} XOAUTH2 {}", xoauth2(&user, &planted.password))));
        }
        4 => {
            planted.imap_literal = "password";
            conv.client(&line(&format!("{tag} {login} {user} {{{}}}", password.len())));
            conv.server(b"+ OK\r\n");
            tricky(conv, rng, &line(&password));
        }
        5 => {
            planted.imap_literal = "user-sync,password-nonsync";
            conv.client(&line(&format!("{tag} {login} {{{}}}", user.len())));
            conv.server(b"+ OK\r\n");
            tricky(conv, rng, format!("{user} {{{}+}}\r\n{password}\r\n", password.len()).as_bytes());
        }
        6 => {
            planted.starttls = true;
            planted.password_in_clear = false;
            planted.scenario = "imap-starttls".into();
            conv.client(&line(&format!("{tag} {}", style.verb("STARTTLS"))));
            conv.server(&line(&format!("{tag} OK Begin TLS negotiation now.")));
            tls_exchange(conv, rng, 3);
            return planted;
        }
        7 => {
            planted.password = format!("{} {}", rng.text(PASSWORD_CHARS, 6), rng.text(PASSWORD_CHARS, 6));
            tricky(conv, rng, &line(&format!("{tag} {login} \"{user}\" \"{}\"", planted.password)));
        }
        _ => {
            tricky(conv, rng, &line(&format!("{tag} {login} {user} {password}")));
            early = maybe_spoken_early(conv, rng);
        }
    }
    let skew = verdict(conv, rng, &verdict_line);
    planted.scenario = format!("imap-{}{early}{skew}", planted.mechanism.to_ascii_lowercase());
    if success {
        conv.client(&line(&format!("b1 {} INBOX", style.verb("SELECT"))));
        conv.server(b"* 12 EXISTS\r\n* 0 RECENT\r\nb1 OK [READ-WRITE] Select completed.\r\n");
        for number in 1..=rng.size(1, bodies.max_messages.max(1)) {
            conv.client(&line(&format!("c{number} {} {number} BODY[]", style.verb("FETCH"))));
            let size = rng.size(bodies.min, bodies.max);
            let body = message_body(rng, size);
            let mut reply = format!("* {number} FETCH (BODY[] {{{}}}\r\n", body.len()).into_bytes();
            reply.extend_from_slice(&body);
            reply.extend_from_slice(format!(")\r\nc{number} OK Fetch completed.\r\n").as_bytes());
            conv.server(&reply);
        }
    }
    conv.client(&line(&format!("z1 {}", style.verb("LOGOUT"))));
    conv.server(b"* BYE Logging out\r\nz1 OK Logout completed.\r\n");
    planted
}

fn smtp(conv: &mut Conversation, rng: &mut Rng, style: Style, bodies: BodySizes) -> Option<Planted> {
    let greeting: &[u8] = b"220 mx.example.test ESMTP Postfix\r\n";
    conv.server(greeting);
    conv.client(&line(&format!("{} client.example.test", style.verb("EHLO"))));
    let early = maybe_spoken_early(conv, rng);
    conv.server(
        b"250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n\
          250-AUTH PLAIN LOGIN XOAUTH2\r\n250 8BITMIME\r\n",
    );
    let (user, password) = credentials(rng);
    let success = outcome(rng);
    let verdict_line: &[u8] = if success {
        b"235 2.7.0 Authentication successful\r\n"
    } else {
        b"535 5.7.8 Error: authentication failed\r\n"
    };
    let mut planted = Planted {
        protocol: "smtp",
        mechanism: "SASL-PLAIN",
        username: user.clone(),
        password: password.clone(),
        outcome: if success { "success" } else { "failure" },
        password_in_clear: true,
        starttls: false,
        sasl_ir: false,
        imap_literal: "",
        scenario: String::new(),
        greeting: String::from_utf8_lossy(greeting.trim_ascii_end()).into_owned(),
    };
    let auth = style.verb("AUTH");
    match rng.below(7) {
        0 => {
            planted.sasl_ir = true;
            tricky(conv, rng, &line(&format!("{auth} PLAIN {}", sasl_plain(&user, &password))));
        }
        1 => {
            conv.client(&line(&format!("{auth} PLAIN")));
            conv.server(b"334 \r\n");
            tricky(conv, rng, &line(&sasl_plain(&user, &password)));
        }
        2 => {
            planted.mechanism = "SASL-LOGIN";
            sasl_login(conv, rng, &format!("{auth} LOGIN"), b"334 ", &user, &password);
        }
        3 => {
            planted.mechanism = "SASL-LOGIN";
            planted.sasl_ir = true;
            conv.client(&line(&format!("{auth} LOGIN {}", b64(&user))));
            conv.server(&[b"334 ", PASSWORD_PROMPT, b"\r\n"].concat());
            tricky(conv, rng, &line(&b64(&password)));
        }
        4 => {
            planted.mechanism = "SASL-XOAUTH2";
            planted.sasl_ir = true;
            planted.password = bearer_token(rng);
            tricky(conv, rng, &line(&format!("{auth} XOAUTH2 {}", xoauth2(&user, &planted.password))));
        }
        5 => {
            planted.starttls = true;
            planted.password_in_clear = false;
            planted.scenario = "smtp-starttls".into();
            conv.client(&line(&style.verb("STARTTLS")));
            conv.server(b"220 2.0.0 Ready to start TLS\r\n");
            tls_exchange(conv, rng, 2);
            return Some(planted);
        }
        _ => {
            // A relay session: no AUTH, messages whose bodies carry login-shaped lines.
            smtp_messages(conv, rng, style, bodies);
            conv.client(&line(&style.verb("QUIT")));
            conv.server(b"221 2.0.0 Bye\r\n");
            return None;
        }
    }
    let skew = verdict(conv, rng, verdict_line);
    planted.scenario = format!("smtp-{}{early}{skew}", planted.mechanism.to_ascii_lowercase());
    if success {
        smtp_messages(conv, rng, style, bodies);
    }
    conv.client(&line(&style.verb("QUIT")));
    conv.server(b"221 2.0.0 Bye\r\n");
    Some(planted)
}

fn smtp_messages(conv: &mut Conversation, rng: &mut Rng, style: Style, bodies: BodySizes) {
    for _ in 0..rng.size(1, bodies.max_messages.max(1)) {
        conv.client(&line(&format!("{}:<a@example.test>", style.verb("MAIL FROM"))));
        conv.server(b"250 2.1.0 Ok\r\n");
        conv.client(&line(&format!("{}:<b@example.test>", style.verb("RCPT TO"))));
        conv.server(b"250 2.1.5 Ok\r\n");
        conv.client(&line(&style.verb("DATA")));
        conv.server(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        let size = rng.size(bodies.min, bodies.max);
        let mut body = message_body(rng, size);
        body.extend_from_slice(b".\r\n");
        conv.client(&body);
        conv.server(b"250 2.0.0 Ok: queued\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_hold_decoys_and_no_dot_lines() {
        let mut rng = Rng::new(3);
        let body = message_body(&mut rng, 20_000);
        assert!(body.len() >= 20_000);
        let text = String::from_utf8(body).unwrap();
        assert!(text.lines().any(|l| l.starts_with("PASS ") || l.starts_with("AUTH ") || l.contains(" LOGIN ")));
        assert!(!text.lines().any(|l| l.starts_with('.')));
    }

    #[test]
    fn sasl_forms_decode_to_their_fields() {
        assert_eq!(BASE64.decode(sasl_plain("u", "p")).unwrap(), b"\0u\0p");
        assert_eq!(BASE64.decode(xoauth2("u", "t")).unwrap(), b"user=u\x01auth=Bearer t\x01\x01");
    }

    #[test]
    fn tls_records_are_framed() {
        let record = tls_record(0x17, &mut Rng::new(1), 100);
        assert_eq!(&record[..5], &[0x17, 3, 3, 0, 100]);
        assert_eq!(record.len(), 105);
    }
}
