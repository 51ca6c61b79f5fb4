//! Which mail protocol a flow speaks, on any port.
//!
//! Ports are hints, not limits: a flow on a configured port starts as that protocol, but a
//! greeting of another shape wins. On other ports a flow must prove itself with the server
//! speaking first: `+OK` (POP3), `* OK`/`* PREAUTH` (IMAP), or `220` followed by the client's
//! `EHLO`/`HELO`/`LHLO` (SMTP; FTP also greets with 220, and its client answers `USER`). A client
//! that speaks first (HTTP, Redis, TLS, …) rules the flow out at its first line, so the cost of
//! any-port detection is one line per non-mail flow.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::framing::Piece;
use super::{Ctx, Role};
use crate::alert::AppProto;

/// Configured ports for each protocol, and the implicit-TLS ports that are never parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMap {
    pub pop3: Vec<u16>,
    pub imap: Vec<u16>,
    pub smtp: Vec<u16>,
    pub implicit_tls: Vec<u16>,
}

impl Default for PortMap {
    fn default() -> Self {
        PortMap { pop3: vec![110], imap: vec![143], smtp: vec![25, 587, 2525], implicit_tls: vec![993, 995, 465] }
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
    /// The flow speaks `proto`; `replay` is a server line held back during detection that the
    /// protocol session must see first.
    Protocol {
        proto: AppProto,
        replay: Option<Vec<u8>>,
    },
}

/// Detection state of one flow.
pub(crate) struct Detector {
    hint: Option<AppProto>,
    client_spoke: bool,
    /// A `220` greeting held until the client's first command tells SMTP from FTP.
    greeting_220: Option<Vec<u8>>,
}

impl Detector {
    pub fn new(hint: Option<AppProto>) -> Self {
        Detector { hint, client_spoke: false, greeting_220: None }
    }

    pub fn on_piece(&mut self, role: Role, piece: &Piece<'_>, _ctx: &mut Ctx<'_>) -> Verdict {
        let line = match piece {
            Piece::Line { line, .. } => *line,
            Piece::Raw { .. } | Piece::Overflow => return self.fallback(),
        };
        match role {
            Role::Server => self.on_server_line(line),
            Role::Client => self.on_client_line(line),
        }
    }

    fn fallback(&self) -> Verdict {
        match self.hint {
            Some(proto) => Verdict::Protocol { proto, replay: None },
            None => Verdict::NotMail,
        }
    }

    fn on_server_line(&mut self, line: &[u8]) -> Verdict {
        if self.greeting_220.is_some() {
            // Further lines of a multi-line 220 greeting.
            return Verdict::Undecided;
        }
        if self.client_spoke {
            return self.fallback();
        }
        match greeting_kind(line) {
            Some(Greeting::Pop3) => Verdict::Protocol { proto: AppProto::Pop3, replay: None },
            Some(Greeting::Imap) => Verdict::Protocol { proto: AppProto::Imap, replay: None },
            Some(Greeting::Code220) if self.hint == Some(AppProto::Smtp) => {
                Verdict::Protocol { proto: AppProto::Smtp, replay: None }
            }
            Some(Greeting::Code220) => {
                self.greeting_220 = Some(line.to_vec());
                Verdict::Undecided
            }
            None => self.fallback(),
        }
    }

    fn on_client_line(&mut self, line: &[u8]) -> Verdict {
        if let Some(greeting) = self.greeting_220.take() {
            let verb = line.split(|b| *b == b' ').next().unwrap_or(line);
            return if [&b"EHLO"[..], b"HELO", b"LHLO"].iter().any(|v| verb.eq_ignore_ascii_case(v)) {
                Verdict::Protocol { proto: AppProto::Smtp, replay: Some(greeting) }
            } else {
                Verdict::NotMail
            };
        }
        self.client_spoke = true;
        self.fallback()
    }
}

enum Greeting {
    Pop3,
    Imap,
    Code220,
}

fn greeting_kind(line: &[u8]) -> Option<Greeting> {
    let starts = |prefix: &[u8]| line.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    if starts(b"+OK") {
        Some(Greeting::Pop3)
    } else if starts(b"* OK") || starts(b"* PREAUTH") || starts(b"* BYE") {
        Some(Greeting::Imap)
    } else if line.starts_with(b"220") && matches!(line.get(3), None | Some(b' ' | b'-' | b'\r')) {
        Some(Greeting::Code220)
    } else {
        None
    }
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
        let mut parts = CtxParts::default();
        let mut ctx = parts.ctx(Default::default());
        let mut detector = Detector::new(hint);
        lines
            .iter()
            .map(|(role, line)| match detector.on_piece(*role, &Piece::Line { line, more_follows: false }, &mut ctx) {
                Verdict::Undecided => "undecided".to_string(),
                Verdict::NotMail => "not mail".to_string(),
                Verdict::Protocol { proto, replay } => {
                    format!("{}{}", proto.name(), if replay.is_some() { "+replay" } else { "" })
                }
            })
            .collect()
    }

    #[test]
    fn greetings_decide_on_any_port() {
        assert_eq!(verdicts(None, &[(Role::Server, b"+OK POP3 ready")]), ["pop3"]);
        assert_eq!(verdicts(None, &[(Role::Server, b"* OK [CAPABILITY IMAP4rev1] hi")]), ["imap"]);
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
    fn greeting_shapes() {
        assert!(looks_like_greeting(b"+OK Dovecot ready.\r\n"));
        assert!(looks_like_greeting(b"220-mx.example.test ESMTP\r\n"));
        assert!(!looks_like_greeting(b"USER alice\r\n"));
        assert!(!looks_like_greeting(b"2200 x"));
    }
}
