//! ManageSieve (RFC 5804): how mail clients and webmail manage a user's Sieve filters on the mail
//! server (port 4190). Its logins use the mailbox's own password.
//!
//! The server speaks first, with capability lines (`"IMPLEMENTATION" "…"`, `"SASL" "PLAIN
//! LOGIN"`, `"STARTTLS"`, …) ended by `OK`. The client logs in with `AUTHENTICATE "mechanism"`
//! and an optional initial response; each later SASL step is a string on a line of its own, both
//! ways. Strings are quoted or literals (`{n+}` from the client, `{n}` from the server, the bytes
//! after the line). `OK`, `NO` or `BYE` answers each command, in order.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::auth::{self, LostReplies, LostVerdict, PendingCredential, SaslExchange, SaslStep};
use super::framing::{Next, Piece};
use super::imap::parser::{tokenize, tokenize_cut, LineEnd, Token, Tokenized};
use super::server::{demands_tls, ServerInfo};
use super::{split_word, Ctx, DoneReason, Reply, Role};
use crate::alert::{AppProto, Outcome};

/// Unknown commands in a row after which the flow is taken for something else.
const MAX_UNKNOWN_COMMANDS: u32 = 8;

/// Commands of RFC 5804 besides AUTHENTICATE, STARTTLS and CAPABILITY.
const KNOWN_COMMANDS: [&[u8]; 11] = [
    b"LOGOUT",
    b"NOOP",
    b"HAVESPACE",
    b"PUTSCRIPT",
    b"LISTSCRIPTS",
    b"SETACTIVE",
    b"GETSCRIPT",
    b"DELETESCRIPT",
    b"RENAMESCRIPT",
    b"CHECKSCRIPT",
    b"UNAUTHENTICATE",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Authenticate,
    StartTls,
    Capability,
    Unauthenticate,
    Other,
}

/// What the bytes of a literal being read are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LiteralUse {
    /// The mechanism name of an AUTHENTICATE command (any string may be a literal).
    Mechanism,
    /// A client's SASL response (or AUTHENTICATE's initial response).
    SaslResponse,
    /// A server's SASL challenge: only its end matters (the exchange goes on).
    SaslChallenge,
    /// Anything else (a script): skipped.
    Skipped,
}

/// A literal being read: its use and its bytes so far (SASL data: wiped when dropped).
struct Literal {
    role: Role,
    usage: LiteralUse,
    bytes: Zeroizing<Vec<u8>>,
}

/// Literals may hold SASL data: `Debug` shows what they are for and their length only.
impl std::fmt::Debug for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Literal")
            .field("role", &self.role)
            .field("usage", &self.usage)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[derive(Debug, Default)]
pub(crate) struct ManageSieveSession {
    info: ServerInfo,
    /// The greeting's capability lines are over (its `OK` came, or the client spoke).
    greeting_over: bool,
    /// A capability list (greeting or CAPABILITY response) is being read.
    listing_capabilities: bool,
    /// STARTTLS was asked for and not yet answered: the session holds what the client sends
    /// meanwhile (see [`Session::on_data`](super::Session)); lines that reach it all the same (past
    /// the hold's bound) are dropped.
    starttls_pending: bool,
    pending: VecDeque<Command>,
    sasl: Option<SaslExchange>,
    /// This and the literal are boxed: they are rare, and every inspected flow's box holds the
    /// largest of the sessions (IMAP's is).
    awaiting_verdict: Option<Box<PendingCredential>>,
    verdict_lost: LostVerdict,
    replies_lost: LostReplies,
    literal: Option<Box<Literal>>,
    unknown_in_a_row: u32,
    /// The server listed UNAUTHENTICATE (RFC 5804 §2.14.1): a client logged in may return to the
    /// unauthenticated state and log in again, so a login does not end the session.
    unauthenticate_offered: bool,
    /// A login succeeded and the session goes on, for UNAUTHENTICATE and the logins after it.
    /// Capabilities listed now describe the logged-in session, not the server's posture.
    logged_in: bool,
}

/// A status response's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    No,
    Bye,
}

fn status_of(first_word: &[u8]) -> Option<Status> {
    if first_word.eq_ignore_ascii_case(b"OK") {
        Some(Status::Ok)
    } else if first_word.eq_ignore_ascii_case(b"NO") {
        Some(Status::No)
    } else if first_word.eq_ignore_ascii_case(b"BYE") {
        Some(Status::Bye)
    } else {
        None
    }
}

/// The name of a status response's code, right after the status (`NO (TRYLATER) "..."`, RFC
/// 5804 section 1.3): up to a space, a `/` (`QUOTA/MAXSIZE`) or the closing parenthesis.
fn response_code(line: &[u8]) -> Option<&[u8]> {
    let code = split_word(line).1.trim_ascii_start().strip_prefix(b"(")?;
    let end = code.iter().position(|byte| matches!(byte, b')' | b' ' | b'/')).unwrap_or(code.len());
    code.get(..end).filter(|name| !name.is_empty())
}

/// A status response's text for people, after its status and response code: the code may carry
/// data (`(SASL "base64…")`) whose letters say nothing.
fn human_text(line: &[u8]) -> &[u8] {
    let rest = split_word(line).1.trim_ascii_start();
    match rest.strip_prefix(b"(") {
        Some(code) => {
            code.iter().position(|byte| *byte == b')').and_then(|end| code.get(end + 1..)).unwrap_or_default()
        }
        None => rest,
    }
}

/// Whether a server line is a response (`OK`, `NO` or `BYE`, then a space or its end).
pub(crate) fn is_status_line(line: &[u8]) -> bool {
    let word = line.split(|byte| *byte == b' ').next().unwrap_or(line);
    status_of(word).is_some()
}

/// The bytes a literal announced at the end of a line may fill, if it is to be read at all.
fn literal_len(end: LineEnd) -> Option<u64> {
    match end {
        LineEnd::Literal { len, .. } => Some(len),
        LineEnd::Complete => None,
    }
}

impl ManageSieveSession {
    pub fn on_piece(&mut self, role: Role, piece: Piece<'_>, ctx: &mut Ctx<'_>) -> Reply {
        match piece {
            Piece::Line { line } => match role {
                Role::Client => self.on_client_line(line, false, ctx),
                Role::Server => self.on_server_line(line, ctx),
            },
            Piece::Cut { line } => match role {
                Role::Client => self.on_cut_client_line(line, ctx),
                Role::Server => self.on_cut_server_line(line, ctx),
            },
            Piece::Raw { data, last } => {
                self.on_literal_bytes(role, data, last, ctx);
                Reply::line()
            }
            Piece::Overflow => Reply::line(),
        }
    }

    pub fn on_gap(&mut self, role: Role) {
        if self.literal.as_ref().is_some_and(|literal| literal.role == role) {
            self.literal = None;
        }
        if role == Role::Server {
            if self.listing_capabilities {
                self.info.capabilities_cut();
            }
            if let Some(sasl) = &mut self.sasl {
                sasl.on_server_gap();
            }
            self.verdict_lost.on_server_gap(self.awaiting_verdict.is_some(), &self.pending, &Command::Authenticate);
            self.replies_lost.on_server_gap();
        }
    }

    /// Client bytes were lost inside a literal whose length the command announced (a snap length
    /// cut it, say): a SASL response there is read as far as it came, as a line whose end was
    /// lost (a partial credential); the rest of the literal is skipped. `literal_ends`: the loss
    /// took the literal's last bytes.
    pub fn on_client_gap_in_literal(&mut self, literal_ends: bool, ctx: &mut Ctx<'_>) {
        let Some(literal) = self.literal.as_mut().filter(|literal| literal.role == Role::Client) else { return };
        let usage = std::mem::replace(&mut literal.usage, LiteralUse::Skipped);
        let response = std::mem::take(&mut literal.bytes);
        if literal_ends {
            self.literal = None;
        }
        if usage == LiteralUse::SaslResponse {
            ctx.line_cut = true;
            self.sasl_response(&response, ctx);
            ctx.line_cut = false;
        }
    }

    /// Client bytes were lost between lines: see [`LostReplies`].
    pub fn on_client_lost_between_lines(&mut self) {
        let complete = self.sasl.as_ref().is_none_or(SaslExchange::credential_complete);
        if self.awaiting_verdict.is_some() && complete {
            self.replies_lost.on_client_command_lost();
        }
    }

    /// The replies every command still awaits were lost ([`LostReplies`]): a credential among
    /// them is reported with outcome unknown, a capability list lost says nothing of what is
    /// absent.
    fn forget_replies(&mut self, ctx: &mut Ctx<'_>) {
        auth::forget_pending(&mut self.pending, &Command::Capability, &mut self.info);
        self.sasl = None;
        if let Some(pending) = self.awaiting_verdict.take() {
            pending.emit(AppProto::ManageSieve, Outcome::Unknown, ctx);
        }
    }

    /// See [`LostVerdict`].
    fn give_up_lost_verdict(&mut self, ctx: &mut Ctx<'_>) {
        if self.verdict_lost.take() {
            self.end_sasl_without_verdict(ctx);
        }
    }

    /// Commands awaiting their replies.
    pub fn replies_awaited(&self) -> usize {
        self.pending.len()
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The greeting's capability list has ended with its status line.
    pub fn greeting_over(&self) -> bool {
        self.greeting_over
    }

    /// The greeting's capability list has begun and its status line has not come: the client's
    /// words wait for its end (see [`Session::on_data`](super::Session)).
    pub fn greeting_in_progress(&self) -> bool {
        !self.greeting_over && self.listing_capabilities
    }

    /// STARTTLS awaits its answer: the client's next bytes are read after it, if at all.
    pub fn awaiting_starttls_reply(&self) -> bool {
        self.starttls_pending
    }

    /// Bytes held for a literal being read.
    pub fn buffered(&self) -> usize {
        self.literal.as_ref().map_or(0, |literal| literal.bytes.len())
    }

    /// Memory is short: the literal being read goes, as if its bytes were lost.
    pub fn shed(&mut self) {
        self.literal = None;
    }

    /// Whether the client's `line` would be read as a command it knows: not inside a SASL
    /// exchange or while STARTTLS's answer is awaited (the first line after a gap, see
    /// [`Session`](super::Session)).
    pub fn takes_as_command(&self, line: &[u8]) -> bool {
        let in_sasl = self.sasl.is_some() && self.pending.back() == Some(&Command::Authenticate);
        let verb = tokenize(line).ok().and_then(|tokenized| match tokenized.tokens.first() {
            Some(Token::Atom(verb)) => Some(*verb),
            _ => None,
        });
        let known = |verb: &[u8]| {
            [&b"AUTHENTICATE"[..], b"STARTTLS", b"CAPABILITY"]
                .iter()
                .chain(&KNOWN_COMMANDS)
                .any(|known| verb.eq_ignore_ascii_case(known))
        };
        !in_sasl && !self.starttls_pending && verb.is_some_and(known)
    }

    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(pending) = self.awaiting_verdict.take() {
            pending.emit(AppProto::ManageSieve, Outcome::Unknown, ctx);
        }
    }

    /// Reads the literal a line announced: its bytes are kept for SASL, else skipped.
    fn read_literal(&mut self, role: Role, usage: LiteralUse, len: u64, ctx: &Ctx<'_>) -> Reply {
        let kept = usage != LiteralUse::Skipped && len <= ctx.config.max_literal as u64;
        let usage = if kept { usage } else { LiteralUse::Skipped };
        self.literal = Some(Box::new(Literal { role, usage, bytes: Zeroizing::new(Vec::new()) }));
        Reply::next(Next::Raw(len))
    }

    fn on_literal_bytes(&mut self, role: Role, data: &[u8], last: bool, ctx: &mut Ctx<'_>) {
        let Some(literal) = self.literal.as_mut().filter(|literal| literal.role == role) else { return };
        if matches!(literal.usage, LiteralUse::Mechanism | LiteralUse::SaslResponse) {
            literal.bytes.extend_from_slice(data);
        }
        if !last {
            return;
        }
        let Some(literal) = self.literal.take() else { return };
        match literal.usage {
            // The rest of the AUTHENTICATE line, which may hold the initial response, comes as
            // the next line and is read as a SASL step.
            LiteralUse::Mechanism => self.sasl = Some(SaslExchange::new(&literal.bytes)),
            LiteralUse::SaslResponse => self.sasl_response(&literal.bytes, ctx),
            LiteralUse::SaslChallenge => {
                if let Some(sasl) = &mut self.sasl {
                    sasl.on_challenge();
                }
            }
            LiteralUse::Skipped => {}
        }
    }

    /// Whether a client line whose end was lost is read: `AUTHENTICATE` with its initial response
    /// begun (cut before it, the line may or may not have held one, and LOGIN's responses would
    /// be taken one for the other), a SASL response (see [`Session::lose`](super::Session)).
    pub fn reads_cut_line(&self, line: &[u8]) -> bool {
        let (name, arguments) = split_word(line);
        let authenticate = name.eq_ignore_ascii_case(b"AUTHENTICATE") && !split_word(arguments).1.is_empty();
        let in_sasl = self.sasl.is_some() && self.pending.back() == Some(&Command::Authenticate);
        !self.starttls_pending && (authenticate || (in_sasl && line.starts_with(b"\"")))
    }

    /// A client line whose end was lost: a credential in it is partial.
    fn on_cut_client_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        if !self.reads_cut_line(line) {
            return Reply::line();
        }
        self.on_client_line(line, true, ctx)
    }

    /// A client line; `cut` when its end was lost (see [`ManageSieveSession::on_cut_client_line`]).
    fn on_client_line(&mut self, line: &[u8], cut: bool, ctx: &mut Ctx<'_>) -> Reply {
        self.give_up_lost_verdict(ctx);
        let replies_lost = self.replies_lost.take(self.pending.len(), ctx);
        self.greeting_over = true;
        self.listing_capabilities = false;
        if self.starttls_pending || line.is_empty() {
            // The end of a line that a literal interrupted, or bytes meant for TLS.
            return Reply::line();
        }
        let tokenized = if cut {
            Tokenized { tokens: tokenize_cut(line).0, end: LineEnd::Complete }
        } else {
            let Ok(tokenized) = tokenize(line) else {
                return self.unknown_command();
            };
            tokenized
        };
        let mut tokens = tokenized.tokens.iter();
        let literal = literal_len(tokenized.end);
        if let Some(sasl) = self.sasl.as_ref().filter(|_| self.pending.back() == Some(&Command::Authenticate)) {
            // A SASL step is one string, quoted or a literal; a command starts with an atom.
            let command = matches!(tokenized.tokens.first(), Some(Token::Atom(_)));
            if !command && !sasl.verdict_may_be_lost() {
                match (tokens.next(), literal) {
                    (None, Some(len)) => return self.read_literal(Role::Client, LiteralUse::SaslResponse, len, ctx),
                    (Some(Token::Quoted(response)), _) => self.sasl_response(response, ctx),
                    _ => {}
                }
                return Reply::line();
            }
            if sasl.verdict_still_comes() && !starts_with_authenticate(&tokenized.tokens) {
                // A command sent behind a complete credential: replies come in order, the verdict
                // first, unless server bytes are lost before it (see `on_gap`).
                self.sasl = None;
            } else {
                self.end_sasl_without_verdict(ctx);
            }
        } else if self.awaiting_verdict.is_some() && starts_with_authenticate(&tokenized.tokens) {
            // Another AUTHENTICATE before the last one's verdict: a client waits for it, so it
            // was lost.
            self.end_sasl_without_verdict(ctx);
        }
        if replies_lost {
            self.forget_replies(ctx);
        }
        let Some(Token::Atom(verb)) = tokens.next() else {
            return self.unknown_command();
        };
        let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);
        let command = if is(b"AUTHENTICATE") {
            self.push(Command::Authenticate, ctx);
            let Some(mechanism) = tokens.next() else {
                self.sasl = None;
                return match literal {
                    Some(len) => self.read_literal(Role::Client, LiteralUse::Mechanism, len, ctx),
                    None => Reply::line(),
                };
            };
            self.sasl = Some(SaslExchange::new(mechanism.string().unwrap_or_default()));
            match (tokens.next(), literal) {
                (Some(Token::Quoted(response)), _) => self.sasl_response(response, ctx),
                (None, Some(len)) => return self.read_literal(Role::Client, LiteralUse::SaslResponse, len, ctx),
                _ => {}
            }
            return Reply::line();
        } else if is(b"STARTTLS") {
            self.starttls_pending = true;
            Command::StartTls
        } else if is(b"CAPABILITY") {
            Command::Capability
        } else if is(b"UNAUTHENTICATE") {
            Command::Unauthenticate
        } else if KNOWN_COMMANDS.iter().any(|known| is(known)) {
            Command::Other
        } else {
            return self.unknown_command();
        };
        self.unknown_in_a_row = 0;
        self.push(command, ctx);
        if command == Command::StartTls {
            // What follows waits for the answer (held by the caller).
            return Reply::next(Next::Pause);
        }
        match literal {
            Some(len) => self.read_literal(Role::Client, LiteralUse::Skipped, len, ctx),
            None => Reply::line(),
        }
    }

    fn unknown_command(&mut self) -> Reply {
        self.unknown_in_a_row += 1;
        if self.unknown_in_a_row > MAX_UNKNOWN_COMMANDS {
            return Reply::done(DoneReason::NotMail);
        }
        Reply::line()
    }

    fn push(&mut self, command: Command, ctx: &mut Ctx<'_>) {
        if self.pending.len() >= ctx.config.max_pending_commands {
            self.pending.pop_front();
            ctx.stats.pending_dropped += 1;
        }
        self.pending.push_back(command);
    }

    fn sasl_response(&mut self, response: &[u8], ctx: &mut Ctx<'_>) {
        let Some(sasl) = &mut self.sasl else { return };
        match sasl.on_response(response, ctx) {
            SaslStep::Captured(captured) => {
                let mechanism = sasl.mechanism().label("AUTHENTICATE");
                self.awaiting_verdict = Some(Box::new(PendingCredential::new(mechanism, captured, &self.info, ctx)));
            }
            SaslStep::Cancelled => self.sasl = None,
            SaslStep::Continue | SaslStep::Malformed => {}
        }
    }

    /// The exchange is over but its verdict will not be seen (lost, or never captured, as the
    /// client's next command shows): its credential is reported with outcome unknown, and
    /// AUTHENTICATE leaves the reply queue so that the next status answers its own command.
    fn end_sasl_without_verdict(&mut self, ctx: &mut Ctx<'_>) {
        self.sasl = None;
        if let Some(pending) = self.awaiting_verdict.take() {
            pending.emit(AppProto::ManageSieve, Outcome::Unknown, ctx);
        }
        auth::forget_last(&mut self.pending, &Command::Authenticate);
    }

    fn on_server_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        self.give_up_lost_verdict(ctx);
        if self.replies_lost.lost_with_next_command(self.pending.len()) {
            self.forget_replies(ctx);
        }
        let Ok(tokenized) = tokenize(line) else {
            return Reply::line();
        };
        let literal = literal_len(tokenized.end);
        let mut tokens = tokenized.tokens.iter();
        // A string answers AUTHENTICATE while it is the command awaiting its reply.
        let in_sasl = self.sasl.is_some() && self.pending.front() == Some(&Command::Authenticate);
        let listing = !self.greeting_over || self.pending.front() == Some(&Command::Capability);
        match (tokens.next(), literal) {
            (Some(Token::Atom(word)), _) => match status_of(word) {
                Some(status) => self.on_status(status, Some(line), ctx),
                None => Reply::line(),
            },
            (Some(Token::Quoted(_)), _) if in_sasl => {
                if let Some(sasl) = &mut self.sasl {
                    sasl.on_challenge();
                }
                Reply::line()
            }
            (Some(Token::Quoted(name)), _) if listing => {
                self.on_capability(line, name, tokens.next().and_then(Token::string), ctx);
                Reply::line()
            }
            (None, Some(len)) => {
                let usage = if in_sasl { LiteralUse::SaslChallenge } else { LiteralUse::Skipped };
                self.read_literal(Role::Server, usage, len, ctx)
            }
            _ => Reply::line(),
        }
    }

    /// A server line whose end was lost: a status response's verdict is its first word; anything
    /// else (a capability, a challenge) may be cut short and is not read.
    fn on_cut_server_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        self.give_up_lost_verdict(ctx);
        match status_of(split_word(line).0) {
            // Its response code and text may be cut short: not read.
            Some(status) => self.on_status(status, None, ctx),
            None => Reply::line(),
        }
    }

    /// One line of a capability list: `"NAME"` and, for most, a quoted value.
    fn on_capability(&mut self, line: &[u8], name: &[u8], value: Option<&[u8]>, ctx: &mut Ctx<'_>) {
        self.unauthenticate_offered |= name.eq_ignore_ascii_case(b"UNAUTHENTICATE");
        if self.logged_in {
            return;
        }
        if !self.listing_capabilities {
            self.listing_capabilities = true;
            self.info.begin_capabilities(false);
        }
        if name.eq_ignore_ascii_case(b"IMPLEMENTATION") && self.info.greeting.is_none() {
            // The server's name for itself: what a greeting line is for the other protocols.
            self.info.set_greeting(line, false, ctx.server_lines);
        }
        match value.filter(|value| !value.is_empty()) {
            Some(value) => self.info.add_capability(&[name, b" ", value].concat()),
            None => self.info.add_capability(name),
        }
    }

    /// A status response, with its whole line when that was read to its end (its response code,
    /// `TRYLATER` of `NO (TRYLATER) "..."`, and its text tell what a refusal says).
    fn on_status(&mut self, status: Status, line: Option<&[u8]>, ctx: &mut Ctx<'_>) -> Reply {
        self.listing_capabilities = false;
        if !self.greeting_over {
            self.greeting_over = true;
            return Reply::line();
        }
        let code = line.and_then(response_code);
        let code_is = |name: &[u8]| status == Status::No && code.is_some_and(|code| code.eq_ignore_ascii_case(name));
        match self.pending.pop_front() {
            Some(Command::Authenticate) => {
                self.sasl = None;
                // RFC 5804 section 1.3's code for authentication refused until TLS is negotiated,
                // or words that say so, as the other protocols' servers use them.
                let refused_for_tls = code_is(b"ENCRYPT-NEEDED")
                    || (status != Status::Ok && line.map(human_text).is_some_and(demands_tls));
                self.info.login_refused_for_tls |= refused_for_tls;
                if let Some(pending) = self.awaiting_verdict.take() {
                    let outcome = match status {
                        Status::Ok => Outcome::Success,
                        _ if refused_for_tls => Outcome::Failure,
                        // "A temporary failure": it says nothing of the secret.
                        _ if code_is(b"TRYLATER") => Outcome::Unknown,
                        _ => Outcome::Failure,
                    };
                    pending.emit(AppProto::ManageSieve, outcome, ctx);
                }
                if status == Status::Ok {
                    if !self.unauthenticate_offered {
                        return Reply::done(DoneReason::Authenticated);
                    }
                    // The same connection may log in again after UNAUTHENTICATE: followed on,
                    // within the inspection depth as any other.
                    ctx.stats.authenticated += 1;
                    self.logged_in = true;
                }
            }
            Some(Command::Unauthenticate) if status == Status::Ok => self.logged_in = false,
            Some(Command::StartTls) if status == Status::Ok => {
                ctx.stats.starttls_upgrades += 1;
                return Reply::done(DoneReason::Tls);
            }
            Some(Command::StartTls) => {
                self.info.starttls_refused = true;
                self.starttls_pending = false;
            }
            Some(Command::Capability | Command::Unauthenticate | Command::Other) | None => {}
        }
        Reply::line()
    }
}

/// Whether a client line's tokens are an AUTHENTICATE command (which a client sends only after
/// the last one's verdict).
fn starts_with_authenticate(tokens: &[Token<'_>]) -> bool {
    matches!(tokens.first(), Some(Token::Atom(verb)) if verb.eq_ignore_ascii_case(b"AUTHENTICATE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_in_any_case() {
        assert_eq!(status_of(b"ok"), Some(Status::Ok));
        assert_eq!(status_of(b"No"), Some(Status::No));
        assert_eq!(status_of(b"BYE"), Some(Status::Bye));
        assert_eq!(status_of(b"OKAY"), None);
    }
}
