//! Which mail protocol a flow speaks, on any port.
//!
//! Ports are hints, not limits: a flow on a configured port starts as that protocol, but a
//! greeting of another shape wins. On other ports a flow must prove itself with the server
//! speaking first: `+OK` (POP3), `* OK`/`* PREAUTH` (IMAP), a capability list starting with a
//! quoted capability name such as `"IMPLEMENTATION"` (ManageSieve), or `220` followed by the
//! client's `EHLO`/`HELO`/`LHLO` (SMTP; FTP also greets with 220, and its client answers `USER`).
//! A client that speaks first (HTTP, Redis, TLS, …) rules the flow out at its first line, so the
//! cost of any-port detection is one line per non-mail flow. Unless its first words may be a mail
//! client's, talking before the greeting while the server's opening is in the capture: the
//! session then holds them until the greeting is over (see
//! [`Detector::may_be_mail_client_first_words`]), and the detector sees them after it.
//!
//! Unless the capture cannot show the greeting: when the server's SYN-ACK is not in it (a capture
//! of one direction of an asymmetric route, or a connection opened before the capture started),
//! the client's first line decides if it is a command that only a mail client opens with: IMAP's
//! tagged `CAPABILITY`, `LOGIN`, `AUTHENTICATE`, `STARTTLS` or `ID`; POP3's `CAPA`, `STLS` or
//! `APOP`; SMTP's `EHLO`, `HELO` or `LHLO`; ManageSieve's `AUTHENTICATE "mechanism"` or a bare
//! `CAPABILITY`. `USER`/`PASS` (FTP's too) and `AUTH` (FTP's and Redis's too) do not.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::framing::Piece;
use super::{Ctx, Role};
use crate::alert::AppProto;

/// Configured ports for each protocol, and the implicit-TLS ports (parsed only when a flow there
/// starts in clear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMap {
    pub pop3: Vec<u16>,
    pub imap: Vec<u16>,
    pub smtp: Vec<u16>,
    pub managesieve: Vec<u16>,
    pub implicit_tls: Vec<u16>,
}

impl Default for PortMap {
    fn default() -> Self {
        PortMap {
            pop3: vec![110],
            imap: vec![143],
            smtp: vec![25, 587, 2525],
            managesieve: vec![4190],
            implicit_tls: vec![993, 995, 465],
        }
    }
}

pub(crate) enum PortClass {
    Hint(AppProto),
    ImplicitTls,
    Unknown,
}

impl PortMap {
    pub(crate) fn classify(&self, port: u16) -> PortClass {
        if self.pop3.contains(&port) {
            PortClass::Hint(AppProto::Pop3)
        } else if self.imap.contains(&port) {
            PortClass::Hint(AppProto::Imap)
        } else if self.smtp.contains(&port) {
            PortClass::Hint(AppProto::Smtp)
        } else if self.managesieve.contains(&port) {
            PortClass::Hint(AppProto::ManageSieve)
        } else if self.implicit_tls.contains(&port) {
            PortClass::ImplicitTls
        } else {
            PortClass::Unknown
        }
    }

    /// True when the port is configured for some mail protocol (hint or implicit TLS).
    pub fn is_mail_port(&self, port: u16) -> bool {
        !matches!(self.classify(port), PortClass::Unknown)
    }
}

/// The protocol an implicit-TLS port conventionally carries (RFC 8314).
pub(crate) fn implicit_tls_protocol(port: u16) -> Option<AppProto> {
    match port {
        993 => Some(AppProto::Imap),
        995 => Some(AppProto::Pop3),
        465 => Some(AppProto::Smtp),
        _ => None,
    }
}

pub(crate) enum Verdict {
    Undecided,
    NotMail,
    /// The flow speaks `proto`; `replay` holds the server lines held back during detection,
    /// which the protocol session must see first.
    Protocol {
        proto: AppProto,
        replay: Vec<Vec<u8>>,
    },
}

/// Detection state of one flow.
pub(crate) struct Detector {
    hint: Option<AppProto>,
    /// The server's SYN-ACK was not captured: its greeting may be out of sight too.
    greeting_may_be_unseen: bool,
    /// The server's SYN-ACK was captured: the session is seen from its start (before any login).
    connection_start_seen: bool,
    client_spoke: bool,
    /// The lines of a `220` greeting, held until the client's first command tells SMTP from FTP
    /// (at most [`HELD_GREETING_LINES`]: the first ones and the latest).
    greeting_220: Vec<Vec<u8>>,
}

/// Lines of a multi-line `220` greeting kept for the SMTP session (real ones have a few).
const HELD_GREETING_LINES: usize = 8;

/// A client's first word without a space or line end after it yet, this short and printable,
/// may still be a verb or an IMAP tag (see [`Detector::may_be_mail_client_first_words`]).
const PARTIAL_WORD: usize = 32;

/// The verbs [`opening_command`] takes as a line's first word, and `USER`.
const FIRST_VERBS: [&[u8]; 9] =
    [b"EHLO", b"HELO", b"LHLO", b"AUTHENTICATE", b"CAPABILITY", b"CAPA", b"STLS", b"APOP", b"USER"];

impl Detector {
    pub fn new(hint: Option<AppProto>, greeting_may_be_unseen: bool) -> Self {
        Detector {
            hint,
            greeting_may_be_unseen,
            connection_start_seen: !greeting_may_be_unseen,
            client_spoke: false,
            greeting_220: Vec::new(),
        }
    }

    /// Whether the capture holds the connection's start (see `connection_start_seen`).
    pub fn connection_start_seen(&self) -> bool {
        self.connection_start_seen
    }

    /// The server's first bytes were lost: its greeting, if it sent one, is out of sight.
    pub fn greeting_lost(&mut self) {
        self.greeting_may_be_unseen = true;
    }

    /// Takes the flow for `proto` as a configured port's would be (the flow on an implicit-TLS
    /// port started in clear: it speaks that port's protocol).
    pub fn assume(&mut self, proto: Option<AppProto>) {
        self.hint = self.hint.or(proto);
    }

    /// Whether what the server said so far is a whole greeting that waits for the client's
    /// first command to decide (a `220`, SMTP or FTP).
    pub fn greeting_over(&self) -> bool {
        self.greeting_220.last().is_some_and(|line| line.get(3) != Some(&b'-'))
    }

    /// Whether a `220-` greeting has begun and its last line has not come: the client's first
    /// command, which decides, waits for its end.
    pub fn greeting_in_progress(&self) -> bool {
        !self.greeting_220.is_empty() && !self.greeting_over()
    }

    /// Whether a client's first bytes, sent before any byte of a server whose opening is in the
    /// capture, may be a mail client talking before the greeting (a pipelining client, a spam
    /// bot that does not wait, or a capture whose two directions are skewed): the session then
    /// holds them until the greeting has decided. On a configured port anything may be;
    /// elsewhere an opening command of the module documentation or `USER` (IRC's clients open
    /// with it too: their servers do not greet like mail servers), or the start of a line too
    /// short to tell. Not `AUTH`: Redis's client opens with it and its server answers `+OK`.
    pub fn may_be_mail_client_first_words(&self, data: &[u8]) -> bool {
        if self.hint.is_some() {
            return true;
        }
        let Some(line_end) = memchr::memchr(b'\n', data) else {
            return may_start_a_mail_opening(data);
        };
        let line = data.get(..line_end).unwrap_or(data);
        let verb = line.trim_ascii().split(|b| *b == b' ').next().unwrap_or_default();
        opening_command(line).is_some() || verb.eq_ignore_ascii_case(b"USER")
    }

    pub fn on_piece(&mut self, role: Role, piece: &Piece<'_>, _ctx: &mut Ctx<'_>) -> Verdict {
        let line = match piece {
            Piece::Line { line } => *line,
            Piece::Cut { line } => return self.on_cut_line(role, line),
            Piece::Raw { .. } | Piece::Overflow => return self.fallback(),
        };
        match role {
            Role::Server => self.on_server_line(line),
            Role::Client => self.on_client_line(line),
        }
    }

    /// A line whose end was lost decides only as a greeting that names its protocol at its start
    /// (a `220` only on SMTP's ports: elsewhere its lines are held whole, to tell SMTP apart);
    /// anything else waits for the next line, as if the cut line had been lost whole.
    fn on_cut_line(&self, role: Role, line: &[u8]) -> Verdict {
        if role == Role::Client || self.client_spoke || !self.greeting_220.is_empty() {
            return Verdict::Undecided;
        }
        let proto = match greeting_kind(line) {
            Some(Greeting::Pop3) => AppProto::Pop3,
            Some(Greeting::Imap) => AppProto::Imap,
            Some(Greeting::ManageSieve) => AppProto::ManageSieve,
            Some(Greeting::Code220) if self.hint == Some(AppProto::Smtp) => AppProto::Smtp,
            Some(Greeting::Code220) | None => return Verdict::Undecided,
        };
        Verdict::Protocol { proto, replay: Vec::new() }
    }

    fn fallback(&self) -> Verdict {
        match self.hint {
            Some(proto) => Verdict::Protocol { proto, replay: Vec::new() },
            None => Verdict::NotMail,
        }
    }

    fn on_server_line(&mut self, line: &[u8]) -> Verdict {
        if !self.greeting_220.is_empty() {
            // Further lines of a multi-line 220 greeting.
            if !self.greeting_over() {
                self.hold_220_line(line);
            }
            return Verdict::Undecided;
        }
        if self.client_spoke {
            return self.fallback();
        }
        match greeting_kind(line) {
            Some(Greeting::Pop3) => Verdict::Protocol { proto: AppProto::Pop3, replay: Vec::new() },
            Some(Greeting::Imap) => Verdict::Protocol { proto: AppProto::Imap, replay: Vec::new() },
            Some(Greeting::ManageSieve) => Verdict::Protocol { proto: AppProto::ManageSieve, replay: Vec::new() },
            Some(Greeting::Code220) if self.hint == Some(AppProto::Smtp) => {
                Verdict::Protocol { proto: AppProto::Smtp, replay: Vec::new() }
            }
            Some(Greeting::Code220) => {
                self.hold_220_line(line);
                Verdict::Undecided
            }
            None => self.fallback(),
        }
    }

    /// Keeps a line of a `220` greeting: the first ones, and the latest in the last place.
    fn hold_220_line(&mut self, line: &[u8]) {
        if self.greeting_220.len() == HELD_GREETING_LINES {
            self.greeting_220.pop();
        }
        self.greeting_220.push(line.to_vec());
    }

    fn on_client_line(&mut self, line: &[u8]) -> Verdict {
        if !self.greeting_220.is_empty() {
            let greeting = std::mem::take(&mut self.greeting_220);
            let verb = line.split(|b| *b == b' ').next().unwrap_or(line);
            return if [&b"EHLO"[..], b"HELO", b"LHLO"].iter().any(|v| verb.eq_ignore_ascii_case(v)) {
                Verdict::Protocol { proto: AppProto::Smtp, replay: greeting }
            } else {
                Verdict::NotMail
            };
        }
        let first_line = !self.client_spoke;
        self.client_spoke = true;
        if first_line && self.hint.is_none() && self.greeting_may_be_unseen {
            if let Some(proto) = opening_command(line) {
                return Verdict::Protocol { proto, replay: Vec::new() };
            }
        }
        self.fallback()
    }
}

/// IMAP commands a client opens a session with (before or to log in).
const IMAP_OPENING: [&[u8]; 5] = [b"CAPABILITY", b"LOGIN", b"AUTHENTICATE", b"STARTTLS", b"ID"];
/// Characters an IMAP tag cannot hold besides controls and space (RFC 9051 `tag`).
const NOT_IN_IMAP_TAG: &[u8] = b"(){%*\"\\+";

/// Whether a word can be an IMAP tag.
pub(crate) fn is_imap_tag(word: &[u8]) -> bool {
    !word.is_empty() && word.iter().all(|b| b.is_ascii_graphic() && !NOT_IN_IMAP_TAG.contains(b))
}

/// The protocol of a client line that only a mail client opens a session with (see the module
/// documentation).
fn opening_command(line: &[u8]) -> Option<AppProto> {
    let is_one_of = |word: &[u8], verbs: &[&[u8]]| verbs.iter().any(|verb| word.eq_ignore_ascii_case(verb));
    let mut words = line.trim_ascii_end().split(|b| *b == b' ');
    let first = words.next()?;
    let second = words.next();
    let arguments = usize::from(second.is_some()) + words.count();
    if is_one_of(first, &[b"EHLO", b"HELO", b"LHLO"]) {
        return Some(AppProto::Smtp);
    }
    // ManageSieve names its mechanism as a string, which no IMAP client does.
    let sieve_authenticate =
        first.eq_ignore_ascii_case(b"AUTHENTICATE") && second.is_some_and(|s| s.starts_with(b"\""));
    if sieve_authenticate || (first.eq_ignore_ascii_case(b"CAPABILITY") && arguments == 0) {
        return Some(AppProto::ManageSieve);
    }
    let pop3 = match arguments {
        0 => is_one_of(first, &[b"CAPA", b"STLS"]),
        2 => first.eq_ignore_ascii_case(b"APOP"),
        _ => false,
    };
    if pop3 {
        return Some(AppProto::Pop3);
    }
    let is_tag = is_imap_tag(first);
    (is_tag && second.is_some_and(|verb| is_one_of(verb, &IMAP_OPENING))).then_some(AppProto::Imap)
}

/// Whether the start of a client's first line, its end not come yet, may become an opening
/// command or `USER`: a first word still coming, a verb that opens one, or an IMAP tag and a
/// verb that is or may become one.
fn may_start_a_mail_opening(start: &[u8]) -> bool {
    let starts_with =
        |word: &[u8], verb: &[u8]| verb.get(..word.len()).is_some_and(|head| head.eq_ignore_ascii_case(word));
    let mut words = start.split(|b| *b == b' ');
    let first = words.next().unwrap_or_default();
    let Some(second) = words.next() else {
        return first.len() <= PARTIAL_WORD && first.iter().all(u8::is_ascii_graphic);
    };
    let second_complete = words.next().is_some();
    let is_tag = is_imap_tag(first);
    let imap_verb = IMAP_OPENING.iter().any(|verb| {
        if second_complete {
            second.eq_ignore_ascii_case(verb)
        } else {
            starts_with(second, verb)
        }
    });
    FIRST_VERBS.iter().any(|verb| first.eq_ignore_ascii_case(verb)) || (is_tag && imap_verb)
}

/// Whether a chunk from the presumed server is in fact a mail client's opening command (roles
/// guessed wrong).
pub(crate) fn looks_like_client_command(data: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    opening_command(data.get(..line_end).unwrap_or(data)).is_some()
}

enum Greeting {
    Pop3,
    Imap,
    ManageSieve,
    Code220,
}

/// Capabilities a ManageSieve server's greeting lists, each line a quoted name (RFC 5804 §1.7).
const MANAGESIEVE_CAPABILITIES: [&[u8]; 9] =
    [b"IMPLEMENTATION", b"SASL", b"SIEVE", b"STARTTLS", b"VERSION", b"NOTIFY", b"MAXREDIRECTS", b"LANGUAGE", b"OWNER"];

/// `"NAME"` of a ManageSieve capability at the start of a line.
fn is_managesieve_capability(line: &[u8]) -> bool {
    let Some(quoted) = line.strip_prefix(b"\"") else { return false };
    let name = quoted.split(|b| *b == b'"').next().unwrap_or_default();
    quoted.len() > name.len() && MANAGESIEVE_CAPABILITIES.iter().any(|known| name.eq_ignore_ascii_case(known))
}

fn greeting_kind(line: &[u8]) -> Option<Greeting> {
    let starts = |prefix: &[u8]| line.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    if starts(b"+OK") {
        Some(Greeting::Pop3)
    } else if starts(b"* OK") || starts(b"* PREAUTH") || starts(b"* BYE") {
        Some(Greeting::Imap)
    } else if line.starts_with(b"220") && matches!(line.get(3), None | Some(b' ' | b'-' | b'\r')) {
        Some(Greeting::Code220)
    } else if is_managesieve_capability(line) {
        Some(Greeting::ManageSieve)
    } else {
        None
    }
}

/// Whether a client's first chunk on an implicit-TLS port, in clear, opens with a login command
/// of the protocol the port carries: POP3's `USER` or `AUTH` on 995, SMTP's `AUTH` on 465. Their
/// clients send it first when the capture lost the greeting (and the `EHLO`); elsewhere these
/// verbs are FTP's or Redis's too, but no such client talks to the port of POP3 or SMTP over TLS.
pub(crate) fn opens_login_of(proto: Option<AppProto>, data: &[u8]) -> bool {
    let verb = data.split(|b| matches!(b, b' ' | b'\r' | b'\n')).next().unwrap_or_default();
    let verbs: &[&[u8]] = match proto {
        Some(AppProto::Pop3) => &[b"USER", b"AUTH"],
        Some(AppProto::Smtp) => &[b"AUTH"],
        Some(AppProto::Imap | AppProto::ManageSieve) | None => &[],
    };
    verbs.iter().any(|known| verb.eq_ignore_ascii_case(known))
}

/// Whether a chunk from the presumed client is in fact a server greeting (roles guessed wrong).
pub(crate) fn looks_like_greeting(data: &[u8]) -> bool {
    let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len());
    greeting_kind(data.get(..line_end).unwrap_or(data)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CtxParts;

    fn verdicts(hint: Option<AppProto>, lines: &[(Role, &[u8])]) -> Vec<String> {
        verdicts_of(Detector::new(hint, false), lines)
    }

    /// Verdicts on a flow whose server's SYN-ACK the capture does not hold.
    fn verdicts_greeting_unseen(lines: &[(Role, &[u8])]) -> Vec<String> {
        verdicts_of(Detector::new(None, true), lines)
    }

    fn verdicts_of(mut detector: Detector, lines: &[(Role, &[u8])]) -> Vec<String> {
        let mut parts = CtxParts::default();
        let mut ctx = parts.ctx(Default::default());
        lines
            .iter()
            .map(|(role, line)| match detector.on_piece(*role, &Piece::Line { line }, &mut ctx) {
                Verdict::Undecided => "undecided".to_string(),
                Verdict::NotMail => "not mail".to_string(),
                Verdict::Protocol { proto, replay } => {
                    format!("{}{}", proto.name(), if replay.is_empty() { "" } else { "+replay" })
                }
            })
            .collect()
    }

    #[test]
    fn greetings_decide_on_any_port() {
        assert_eq!(verdicts(None, &[(Role::Server, b"+OK POP3 ready")]), ["pop3"]);
        assert_eq!(verdicts(None, &[(Role::Server, b"* OK [CAPABILITY IMAP4rev1] hi")]), ["imap"]);
        assert_eq!(
            verdicts(None, &[(Role::Server, b"\"IMPLEMENTATION\" \"Cyrus timsieved v2.4.17\"")]),
            ["managesieve"]
        );
        assert_eq!(verdicts(None, &[(Role::Server, b"\"SASL\" \"PLAIN\"")]), ["managesieve"]);
        assert_eq!(verdicts(None, &[(Role::Server, b"\"HELLO\" \"world\"")]), ["not mail"]);
        assert_eq!(verdicts(None, &[(Role::Server, b"\"SIEVE")]), ["not mail"]);
        assert_eq!(verdicts(Some(AppProto::Pop3), &[(Role::Server, b"* OK IMAP on the POP3 port")]), ["imap"]);
        assert_eq!(
            verdicts(None, &[(Role::Server, b"220 mx ESMTP"), (Role::Client, b"EHLO client")]),
            ["undecided", "smtp+replay"]
        );
    }

    #[test]
    fn ftp_and_redis_look_alikes_are_rejected() {
        assert_eq!(
            verdicts(None, &[(Role::Server, b"220 ProFTPD Server ready"), (Role::Client, b"USER anonymous")]),
            ["undecided", "not mail"]
        );
        assert_eq!(
            verdicts(None, &[(Role::Client, b"AUTH hunter2"), (Role::Server, b"+OK")]),
            ["not mail", "not mail"]
        );
        assert_eq!(verdicts(None, &[(Role::Server, b"SSH-2.0-OpenSSH_9.2")]), ["not mail"]);
    }

    #[test]
    fn hinted_ports_accept_midstream_flows() {
        assert_eq!(verdicts(Some(AppProto::Pop3), &[(Role::Client, b"CAPA")]), ["pop3"]);
        assert_eq!(verdicts(Some(AppProto::Smtp), &[(Role::Server, b"220 mx ESMTP")]), ["smtp"]);
    }

    #[test]
    fn a_mail_clients_opening_decides_when_the_greeting_may_be_out_of_sight() {
        let openings: [(&[u8], &str); 11] = [
            (b"a1 LOGIN alice hunter2", "imap"),
            (b"A001 capability", "imap"),
            (b"1 AUTHENTICATE PLAIN", "imap"),
            (b"x.2 ID (\"name\" \"mutt\")", "imap"),
            (b"CAPA", "pop3"),
            (b"stls", "pop3"),
            (b"APOP mrose c4c9334bac560ecc979e58001b3e22fb", "pop3"),
            (b"EHLO client.example.test", "smtp"),
            (b"lhlo", "smtp"),
            (b"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAGh1bnRlcjI=\"", "managesieve"),
            (b"CAPABILITY", "managesieve"),
        ];
        // Failures name a line by its index: some hold passwords.
        for (i, (line, proto)) in openings.into_iter().enumerate() {
            assert_eq!(verdicts_greeting_unseen(&[(Role::Client, line)]), [proto], "opening {i}");
            assert_eq!(verdicts(None, &[(Role::Client, line)]), ["not mail"], "greeting in sight: opening {i}");
        }
        // What other protocols' clients open with, and lines that only look close.
        let others: [&[u8]; 10] = [
            b"USER anonymous",
            b"AUTH hunter2",
            b"AUTH TLS",
            b"GET / HTTP/1.1",
            b"* LOGIN a b",
            b"a+ LOGIN a b",
            b"LOGIN alice hunter2",
            b"CAPA now",
            b"APOP mrose",
            b"AUTHENTICATE PLAIN",
        ];
        for (i, line) in others.into_iter().enumerate() {
            assert_eq!(verdicts_greeting_unseen(&[(Role::Client, line)]), ["not mail"], "other line {i}");
        }
        // The first line decides, and a server that greets still does.
        assert_eq!(
            verdicts_greeting_unseen(&[(Role::Client, b"PING"), (Role::Client, b"a1 LOGIN a b")]),
            ["not mail", "not mail"]
        );
        assert_eq!(verdicts_greeting_unseen(&[(Role::Server, b"+OK ready")]), ["pop3"]);
    }

    #[test]
    fn greeting_shapes() {
        assert!(looks_like_greeting(b"+OK Dovecot ready.\r\n"));
        assert!(looks_like_greeting(b"220-mx.example.test ESMTP\r\n"));
        assert!(!looks_like_greeting(b"USER alice\r\n"));
        assert!(!looks_like_greeting(b"2200 x"));
        assert!(looks_like_client_command(b"a1 LOGIN alice hunter2\r\n"));
        assert!(looks_like_client_command(b"EHLO client\r\nAUTH PLAIN\r\n"));
        assert!(!looks_like_client_command(b"a1 OK LOGIN completed\r\n"));
        assert!(!looks_like_client_command(b"* CAPABILITY IMAP4rev1\r\n"));
    }
}
