//! SMTP submission and relay (RFC 5321; AUTH RFC 4954; STARTTLS RFC 3207; CHUNKING RFC 3030).
//!
//! Replies come in command order (RFC 2920 pipelining keeps it), multi-line replies end at the line
//! whose code is followed by a space. Message data (`DATA` up to the lone `.`, `BDAT` chunks) is
//! skipped unread: a `PASS` or `AUTH` line inside a mail body is not a login.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::VecDeque;

use super::auth::{self, LostReplies, LostVerdict, PendingCredential, SaslExchange, SaslStep};
use super::framing::{Next, Piece};
use super::server::{demands_tls, ServerInfo};
use super::{split_command_word, Ctx, DoneReason, Reply, Role};
use crate::alert::{AppProto, Outcome};

/// Unknown commands in a row after which the flow is taken for something else.
const MAX_UNKNOWN_COMMANDS: u8 = 8;

/// Commands the session does not act on, but knows for a mail client's.
const OTHER_COMMANDS: [&[u8]; 11] =
    [b"MAIL", b"RCPT", b"RSET", b"NOOP", b"QUIT", b"VRFY", b"EXPN", b"HELP", b"ETRN", b"XCLIENT", b"XFORWARD"];

/// The commands it acts on.
const READ_COMMANDS: [&[u8]; 7] = [b"EHLO", b"HELO", b"LHLO", b"AUTH", b"STARTTLS", b"DATA", b"BDAT"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Ehlo,
    Auth,
    StartTls,
    Data,
    Other,
}

/// A reply line: its code and whether more lines of the same reply follow.
fn parse_reply(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let code = line.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = code.iter().fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'));
    let continues = line.get(3) == Some(&b'-');
    Some((code, continues, line.get(4..).unwrap_or(&[])))
}

/// Whether a server line is a reply line: a code, then a space, a hyphen or its end.
pub(crate) fn is_reply_line(line: &[u8]) -> bool {
    parse_reply(line).is_some() && matches!(line.get(3), None | Some(b' ' | b'-'))
}

/// Whether a server line is the `354` that lets message data in. Read even as the first line
/// after lost server bytes, where a line may be a cut line's tail: only DATA is answered so, and
/// missing it would read the message, and any `AUTH` line it quotes, as commands.
pub(crate) fn is_data_go_ahead(line: &[u8]) -> bool {
    line.starts_with(b"354") && matches!(line.get(3), None | Some(b' '))
}

/// Whether a server line is a `334` challenge. Read even as the first line after lost server
/// bytes: only AUTH is answered so, and a cut line's tail that begins with the code, a space and
/// a challenge is far-fetched, where missing it leaves an exchange whose command was lost (with
/// the replies before it) unread.
pub(crate) fn is_auth_challenge(line: &[u8]) -> bool {
    line.starts_with(b"334") && matches!(line.get(3), None | Some(b' '))
}

/// How far the server's greeting has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Greeting {
    #[default]
    Awaited,
    /// Its first line said more follow (`220-`) and its last line has not come.
    Open,
    Over,
}

#[derive(Debug, Default)]
pub(crate) struct SmtpSession {
    info: ServerInfo,
    greeting: Greeting,
    client_spoke: bool,
    /// STARTTLS was asked for and not yet answered: the session holds what the client sends
    /// meanwhile (see [`Session::on_data`](super::Session)); lines that reach it all the same (past
    /// the hold's bound) are dropped.
    starttls_pending: bool,
    pending: VecDeque<Command>,
    /// A multi-line reply has begun: its last line so far said more follow.
    reply_continues: bool,
    /// The EHLO reply awaited or being read lost lines to a gap: the lines after it add to its
    /// list (the first of them may be no reply's first line).
    ehlo_reply_cut: bool,
    sasl: Option<SaslExchange>,
    /// Boxed: rare, and every inspected flow's box holds the largest of the sessions.
    awaiting_verdict: Option<Box<PendingCredential>>,
    verdict_lost: LostVerdict,
    replies_lost: LostReplies,
    /// The client is sending message data (after DATA, until the lone `.`).
    in_data: bool,
    unknown_in_a_row: u8,
}

impl SmtpSession {
    pub fn on_piece(&mut self, role: Role, piece: Piece<'_>, ctx: &mut Ctx<'_>) -> Reply {
        match (role, piece) {
            (Role::Client, Piece::Line { line }) => self.on_client_line(line, ctx),
            (Role::Server, Piece::Line { line }) => self.on_server_line(line, false, ctx),
            (Role::Server, Piece::Cut { line }) => self.on_server_line(line, true, ctx),
            (Role::Client, Piece::Cut { line }) => self.on_cut_client_line(line, ctx),
            (_, Piece::Raw { .. } | Piece::Overflow) => Reply::line(),
        }
    }

    pub fn on_gap(&mut self, role: Role) {
        if let (Role::Client, Some(sasl)) = (role, &mut self.sasl) {
            sasl.on_client_gap();
        }
        if role == Role::Server {
            if self.pending.front() == Some(&Command::Ehlo) {
                // The EHLO reply lost lines, its first ones perhaps: what it names after the gap
                // adds to what it named before, and absences are unknown.
                self.info.capabilities_cut();
                self.ehlo_reply_cut = true;
            }
            self.reply_continues = false;
            if self.greeting == Greeting::Open {
                self.greeting = Greeting::Over;
            }
            if let Some(sasl) = &mut self.sasl {
                sasl.on_server_gap();
            }
            self.verdict_lost.on_server_gap(self.awaiting_verdict.is_some(), &self.pending, &Command::Auth);
            self.replies_lost.on_server_gap();
        }
    }

    /// Client bytes were lost between lines: see [`LostReplies`].
    pub fn on_client_lost_between_lines(&mut self) {
        let complete = self.sasl.as_ref().is_none_or(SaslExchange::credential_complete);
        if self.awaiting_verdict.is_some() && complete && !self.in_data {
            self.replies_lost.on_client_command_lost();
        }
    }

    /// A challenge answered an AUTH the capture lost: the exchange is read from its responses
    /// ([`SaslExchange::after_lost_command`]), and the commands before it had their replies.
    fn begin_exchange_after_lost_command(&mut self, ctx: &mut Ctx<'_>) {
        self.end_sasl_without_verdict(ctx);
        auth::forget_pending(&mut self.pending, &Command::Ehlo, &mut self.info);
        self.ehlo_reply_cut = false;
        self.sasl = Some(SaslExchange::after_lost_command());
        self.pending.push_back(Command::Auth);
    }

    /// The replies every command still awaits were lost ([`LostReplies`]): a credential among
    /// them is reported with outcome unknown, an EHLO reply lost says nothing of what is absent.
    fn forget_replies(&mut self, ctx: &mut Ctx<'_>) {
        auth::forget_pending(&mut self.pending, &Command::Ehlo, &mut self.info);
        self.reply_continues = false;
        self.ehlo_reply_cut = false;
        self.end_sasl(ctx);
        if let Some(pending) = self.awaiting_verdict.take() {
            pending.emit(AppProto::Smtp, Outcome::Unknown, ctx);
        }
    }

    /// Commands awaiting their replies.
    pub fn replies_awaited(&self) -> usize {
        self.pending.len()
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The greeting has come to its last line (a `220-` line announces more), or the client
    /// spoke before any of it and no later line is taken for it (a capture that missed it).
    pub fn greeting_over(&self) -> bool {
        self.greeting == Greeting::Over || (self.greeting == Greeting::Awaited && self.client_spoke)
    }

    /// The greeting has begun and more of its lines are to come: the client's words wait for its
    /// end (see [`Session::on_data`](super::Session)).
    pub fn greeting_in_progress(&self) -> bool {
        self.greeting == Greeting::Open
    }

    /// STARTTLS awaits its answer: the client's next bytes are read after it, if at all.
    pub fn awaiting_starttls_reply(&self) -> bool {
        self.starttls_pending
    }

    /// Whether the client's `line` would be read as a command it knows: not while message data,
    /// a SASL exchange or STARTTLS's answer is awaited (the first line after a gap, see
    /// [`Session`](super::Session)); in an exchange whose command was lost, its first response
    /// (see [`SaslExchange::takes_first_line_after_gap`]).
    pub fn takes_as_command(&self, line: &[u8]) -> bool {
        let verb = split_command_word(line).0;
        let command = !self.in_data
            && self.sasl.is_none()
            && !self.starttls_pending
            && READ_COMMANDS.iter().chain(&OTHER_COMMANDS).any(|known| verb.eq_ignore_ascii_case(known));
        command || self.sasl.as_ref().is_some_and(|sasl| sasl.takes_first_line_after_gap(line))
    }

    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(pending) = self.awaiting_verdict.take() {
            pending.emit(AppProto::Smtp, Outcome::Unknown, ctx);
        }
    }

    /// Whether a client line whose end was lost is read: `AUTH` with its initial response begun
    /// (cut before it, the line may or may not have held one, and LOGIN's responses would be
    /// taken one for the other), a SASL response, never message data (see
    /// [`Session::lose`](super::Session)).
    pub fn reads_cut_line(&self, line: &[u8]) -> bool {
        let (verb, argument) = split_command_word(line);
        let auth = verb.eq_ignore_ascii_case(b"AUTH") && !split_command_word(argument).1.is_empty();
        let sasl_response = self.sasl.as_ref().is_some_and(|sasl| sasl.continues_with(line));
        !self.in_data && !self.starttls_pending && (auth || sasl_response)
    }

    /// A client line whose end was lost: a credential in it is partial.
    fn on_cut_client_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        if !self.reads_cut_line(line) {
            return Reply::line();
        }
        self.on_client_line(line, ctx)
    }

    fn on_client_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        self.client_spoke = true;
        self.give_up_lost_verdict(ctx);
        let replies_lost = self.replies_lost.take(self.pending.len(), ctx);
        if self.starttls_pending {
            return Reply::line();
        }
        if self.in_data {
            if line == b"." {
                self.in_data = false;
            }
            return Reply::line();
        }
        if let Some(sasl) = &mut self.sasl {
            if sasl.continues_with(line) {
                let step = sasl.on_response(line, ctx);
                self.sasl_step(step, ctx);
                return Reply::line();
            }
            if sasl.verdict_still_comes() && !starts_with_auth(line) {
                // A command pipelined behind a complete credential: the verdict comes first, in
                // order, unless server bytes are lost before it (see `on_gap`).
                self.sasl = None;
            } else {
                self.end_sasl_without_verdict(ctx);
            }
        } else if self.awaiting_verdict.is_some() && starts_with_auth(line) {
            // Another AUTH before the last one's verdict: a client waits for it, so it was lost.
            self.end_sasl_without_verdict(ctx);
        }
        if replies_lost {
            self.forget_replies(ctx);
        }
        let (verb, argument) = split_command_word(line);
        let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);
        let mut next = Next::Line;
        let command = if is(b"EHLO") || is(b"HELO") || is(b"LHLO") {
            Command::Ehlo
        } else if is(b"AUTH") {
            let (mechanism, initial_response) = split_command_word(argument);
            let mut sasl = SaslExchange::new(mechanism);
            let step = (!initial_response.is_empty()).then(|| sasl.on_response(initial_response, ctx));
            self.sasl = Some(sasl);
            if let Some(step) = step {
                self.sasl_step(step, ctx);
            }
            Command::Auth
        } else if is(b"STARTTLS") {
            self.starttls_pending = true;
            // What follows waits for the answer (held by the caller).
            next = Next::Pause;
            Command::StartTls
        } else if is(b"DATA") || is_header_field(line) {
            // A message's header field where a command was due: DATA and its `354` were lost
            // (or the capture began inside the message), and what follows up to the `.` line is
            // message data, whatever `AUTH` lines it quotes; the final reply is DATA's.
            self.in_data = true;
            Command::Data
        } else if is(b"BDAT") {
            let size = split_command_word(argument).0;
            let size = std::str::from_utf8(size).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            next = Next::Raw(size);
            Command::Other
        } else {
            if OTHER_COMMANDS.iter().any(|known| is(known)) {
                self.unknown_in_a_row = 0;
            } else {
                self.unknown_in_a_row = self.unknown_in_a_row.saturating_add(1);
            }
            Command::Other
        };
        if self.pending.len() >= ctx.config.max_pending_commands {
            self.pending.pop_front();
            ctx.stats.pending_dropped += 1;
        }
        self.pending.push_back(command);
        if self.unknown_in_a_row > MAX_UNKNOWN_COMMANDS {
            return Reply::done(DoneReason::NotMail);
        }
        Reply::next(next)
    }

    /// What a step of the exchange in `self.sasl` did.
    fn sasl_step(&mut self, step: SaslStep, ctx: &mut Ctx<'_>) {
        match step {
            SaslStep::Captured(captured) => {
                if let Some(sasl) = &self.sasl {
                    let mechanism = sasl.mechanism().label("AUTH");
                    self.awaiting_verdict =
                        Some(Box::new(PendingCredential::new(mechanism, captured, &self.info, ctx)));
                }
            }
            SaslStep::Cancelled => self.sasl = None,
            SaslStep::Continue | SaslStep::Malformed => {}
        }
    }

    /// The exchange is over but its verdict will not be seen (lost, or never captured, as the
    /// client's next command shows): the credential is reported with outcome unknown, and AUTH
    /// leaves the reply queue so that the next reply answers the command it belongs to.
    fn end_sasl_without_verdict(&mut self, ctx: &mut Ctx<'_>) {
        self.end_sasl(ctx);
        if let Some(pending) = self.awaiting_verdict.take() {
            pending.emit(AppProto::Smtp, Outcome::Unknown, ctx);
        }
        auth::forget_last(&mut self.pending, &Command::Auth);
    }

    /// The exchange in `self.sasl` is over: a password the capture lost the start of awaits
    /// the verdict like any credential (see [`SaslExchange::password_before_verdict`]).
    fn end_sasl(&mut self, ctx: &mut Ctx<'_>) {
        let Some(mut sasl) = self.sasl.take() else { return };
        if let Some(pending) = sasl.password_before_verdict("AUTH", &self.info, ctx) {
            self.awaiting_verdict = Some(Box::new(pending));
        }
    }

    /// See [`LostVerdict`].
    fn give_up_lost_verdict(&mut self, ctx: &mut Ctx<'_>) {
        if self.verdict_lost.take() {
            self.end_sasl_without_verdict(ctx);
        }
    }

    /// A server line; `cut` when its end was lost. A cut line ends its reply: servers write a
    /// reply at once, so what the cut took is the rest of it (its code is the reply's), and the
    /// next line after the gap starts the next reply.
    fn on_server_line(&mut self, line: &[u8], cut: bool, ctx: &mut Ctx<'_>) -> Reply {
        self.give_up_lost_verdict(ctx);
        if self.replies_lost.lost_with_next_command(self.pending.len()) {
            self.forget_replies(ctx);
        }
        let Some((code, continues, text)) = parse_reply(line) else {
            return Reply::line();
        };
        let continues = continues && !cut;
        let first_of_reply = !self.reply_continues;
        self.reply_continues = continues;
        let greeting_line = match self.greeting {
            Greeting::Open => true,
            Greeting::Awaited => !self.client_spoke,
            Greeting::Over => false,
        };
        if greeting_line {
            // The greeting is one reply to its last line (RFC 5321 §4.2), whatever the client
            // said meanwhile.
            if first_of_reply && self.greeting == Greeting::Awaited {
                if cut {
                    self.info.set_cut_greeting(line, true, ctx.server_lines);
                } else {
                    self.info.set_greeting(line, true, ctx.server_lines);
                }
                self.greeting = Greeting::Open;
            }
            if self.greeting == Greeting::Open && !continues {
                self.greeting = Greeting::Over;
            }
            return Reply::line();
        }
        let front = self.pending.front().copied();
        if front == Some(Command::Ehlo) && code == 250 {
            if first_of_reply && !self.ehlo_reply_cut {
                self.info.begin_capabilities(false);
            } else if !cut {
                self.info.add_capability(text);
            }
            if cut {
                self.info.capabilities_cut();
            }
        }
        if continues {
            return Reply::line();
        }
        if front == Some(Command::Ehlo) {
            // Replies come in the order of the commands: a credential awaiting its verdict now
            // was sent behind this EHLO.
            if let Some(pending) = &mut self.awaiting_verdict {
                pending.server_replied(&self.info);
            }
        }
        match (front, code) {
            (Some(Command::Auth), 334) => {
                if let Some(sasl) = &mut self.sasl {
                    sasl.on_challenge();
                    sasl.on_prompt(text);
                }
                return Reply::line();
            }
            (_, 334) => {
                // Only AUTH is answered so: its line was lost (a gap), and the replies to the
                // commands before it with it.
                self.begin_exchange_after_lost_command(ctx);
                if let Some(sasl) = &mut self.sasl {
                    sasl.on_prompt(text);
                }
                return Reply::line();
            }
            (Some(Command::Data), 354) => return Reply::line(),
            (_, 354) => {
                // Only DATA is answered so: its line was lost (a gap), and what the client sends
                // now is message data, never commands.
                self.in_data = true;
                return Reply::line();
            }
            _ => {}
        }
        self.pending.pop_front();
        self.ehlo_reply_cut = false;
        let positive = (200..400).contains(&code);
        match front {
            Some(Command::Auth) => {
                // RFC 4954's `538 5.7.11 Encryption required for requested authentication
                // mechanism`, or a refusal that says as much.
                let refused_for_tls = code == 538 || (!positive && demands_tls(text));
                self.info.login_refused_for_tls |= refused_for_tls;
                self.end_sasl(ctx);
                if let Some(pending) = self.awaiting_verdict.take() {
                    // A refusal for want of TLS is one, whatever its code: the posture counts it so.
                    let outcome = if refused_for_tls { Outcome::Failure } else { auth_verdict(code) };
                    pending.emit(AppProto::Smtp, outcome, ctx);
                }
                if code == 235 {
                    return Reply::done(DoneReason::Authenticated);
                }
            }
            Some(Command::StartTls) if code == 220 => {
                ctx.stats.starttls_upgrades += 1;
                return Reply::done(DoneReason::Tls);
            }
            Some(Command::StartTls) => {
                self.info.starttls_refused = true;
                self.starttls_pending = false;
            }
            Some(Command::Data) if !positive => self.in_data = false,
            _ => {}
        }
        Reply::line()
    }
}

/// What a reply taken for AUTH's says of the login. RFC 4954 accepts with 235 alone and refuses
/// with 5xx (`535`: the credentials are invalid; `538`: not in clear) or 4xx, a temporary
/// failure (`454 4.7.0 Temporary authentication failure`, Postfix's answer when its password
/// service is down, whatever the password; `432`, a password transition needed; `421`,
/// closing), which says nothing of the secret. Any other code is another command's reply (AUTH's
/// verdict and the command after it both lost by the capture), which tells nothing either.
fn auth_verdict(code: u16) -> Outcome {
    match code {
        235 => Outcome::Success,
        500..=599 => Outcome::Failure,
        _ => Outcome::Unknown,
    }
}

/// Whether a line is a message header field (RFC 5322 section 2.2: a field name, then a colon;
/// names are letters, digits and hyphens in practice): no SMTP command looks so, `MAIL FROM:`
/// and `RCPT TO:` having a space before their colon.
fn is_header_field(line: &[u8]) -> bool {
    let name = line.split(|byte| *byte == b':').next().unwrap_or_default();
    name.len() < line.len()
        && (1..=76).contains(&name.len())
        && name.iter().all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-')
}

/// Whether a client line is an AUTH command (which a client sends only after the last one's
/// verdict).
fn starts_with_auth(line: &[u8]) -> bool {
    split_command_word(line).0.eq_ignore_ascii_case(b"AUTH")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_told_from_commands() {
        for line in [&b"From: someone@example.test"[..], b"Subject:", b"X-Mailer: x", b"Message-ID:<a@b>"] {
            assert!(is_header_field(line), "{line:?}");
        }
        for line in [&b"MAIL FROM:<a@example.test>"[..], b"RCPT TO:<b@example.test>", b"AUTH PLAIN AGE=", b"", b":x"] {
            assert!(!is_header_field(line), "{line:?}");
        }
    }

    #[test]
    fn reply_lines() {
        assert_eq!(parse_reply(b"250-PIPELINING"), Some((250, true, &b"PIPELINING"[..])));
        assert_eq!(parse_reply(b"235 2.7.0 ok"), Some((235, false, &b"2.7.0 ok"[..])));
        assert_eq!(parse_reply(b"334"), Some((334, false, &b""[..])));
        assert_eq!(parse_reply(b"23x"), None);
        assert_eq!(parse_reply(b"OK"), None);
    }
}
