//! POP3 (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034).
//!
//! Replies come in command order, so the session keeps a bounded queue of commands awaiting a
//! status line (`+OK`/`-ERR`) and knows which of them answer with a multi-line body. The
//! credential of `PASS`, `APOP` or `AUTH` is reported when its status line arrives.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::VecDeque;

use super::auth::{self, Captured, LostReplies, LostVerdict, PendingCredential, RawUser, SaslExchange, SaslStep};
use super::framing::{response_code_may_be_cut, Next, Piece};
use super::secret::Secret;
use super::server::{demands_tls, ServerInfo};
use super::{is_blank, skip_blanks, split_command_word, split_verb, Ctx, DoneReason, Reply, Role};
use crate::alert::{AppProto, Outcome, SecretKind};

/// Unknown commands in a row after which the flow is taken for something else.
const MAX_UNKNOWN_COMMANDS: u8 = 8;

/// Commands the session does not act on, but knows for a mail client's.
const OTHER_COMMANDS: [&[u8]; 12] =
    [b"QUIT", b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"UTF8", b"LANG", b"XTND"];

/// The commands it acts on.
const READ_COMMANDS: [&[u8]; 6] = [b"USER", b"PASS", b"APOP", b"AUTH", b"STLS", b"CAPA"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    User,
    Pass,
    Apop,
    Auth,
    Stls,
    Capa,
    /// `STAT`, `LIST`, `RETR`, `UIDL`, `TOP` or `DELE`: a mailbox's, which a server accepts only
    /// once a login was (RFC 1939's TRANSACTION state); `multiline` as for `Other`.
    Mailbox {
        multiline: bool,
    },
    /// Any other command; `multiline` when a positive reply carries a body.
    Other {
        multiline: bool,
    },
}

impl Command {
    /// Whether a positive reply carries a body.
    fn multiline(self) -> bool {
        matches!(self, Command::Mailbox { multiline: true } | Command::Other { multiline: true })
    }
}

/// Commands that log in.
const LOGIN_COMMANDS: [&[u8]; 4] = [b"USER", b"PASS", b"APOP", b"AUTH"];

/// Commands of a mailbox (see [`Command::Mailbox`]).
const MAILBOX_COMMANDS: [&[u8]; 6] = [b"STAT", b"LIST", b"RETR", b"UIDL", b"TOP", b"DELE"];

#[derive(Debug)]
enum Status {
    Ok,
    Err,
    /// A SASL continuation (`+ base64` or a bare `+`).
    Continue,
}

fn status_of(line: &[u8]) -> Option<Status> {
    let head = line.get(..3).unwrap_or(line);
    if head.eq_ignore_ascii_case(b"+OK") {
        Some(Status::Ok)
    } else if line.get(..4).is_some_and(|h| h.eq_ignore_ascii_case(b"-ERR")) {
        Some(Status::Err)
    } else if line == b"+" || line.starts_with(b"+ ") {
        Some(Status::Continue)
    } else {
        None
    }
}

/// Whether a server line is a positive or negative status (not a SASL challenge, which only
/// follows a command).
pub(crate) fn is_status_line(line: &[u8]) -> bool {
    matches!(status_of(line), Some(Status::Ok | Status::Err))
}

#[derive(Debug, Default)]
pub(crate) struct Pop3Session {
    info: ServerInfo,
    greeting_seen: bool,
    client_spoke: bool,
    /// STARTTLS was asked for and not yet answered: the session holds what the client sends
    /// meanwhile (see [`Session::on_data`](super::Session)); lines that reach it all the same (past
    /// the hold's bound) are dropped.
    starttls_pending: bool,
    pending_commands: VecDeque<Command>,
    /// Inside a multi-line reply body (until the `.` line), and whether it is a CAPA list.
    in_body: Option<Command>,
    user: Option<RawUser>,
    /// The user name is the start of a `USER` line whose end was lost.
    user_cut: bool,
    /// An AUTH exchange in progress: client lines are SASL responses until its status line.
    sasl: Option<SaslExchange>,
    awaiting_verdict: VecDeque<(Command, PendingCredential)>,
    verdict_lost: LostVerdict,
    replies_lost: LostReplies,
    /// The last credential whose verdict the capture lost ([`Pop3Session::forget_replies`]): a
    /// mailbox command accepted after it shows it accepted; anything else leaves it unknown.
    verdict_unseen: Option<Box<PendingCredential>>,
    unknown_in_a_row: u8,
}

impl Pop3Session {
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
            if self.in_body == Some(Command::Capa) {
                self.info.capabilities_cut();
            }
            self.in_body = None;
            if let Some(sasl) = &mut self.sasl {
                sasl.on_server_gap();
            }
            let awaited = self.awaiting_verdict.iter().any(|(command, _)| *command == Command::Auth);
            self.verdict_lost.on_server_gap(awaited, &self.pending_commands, &Command::Auth);
            self.replies_lost.on_server_gap();
        }
    }

    /// Client bytes were lost between lines: see [`LostReplies`].
    pub fn on_client_lost_between_lines(&mut self) {
        let complete = self.sasl.as_ref().is_none_or(SaslExchange::credential_complete);
        if !self.awaiting_verdict.is_empty() && complete {
            self.replies_lost.on_client_command_lost();
        }
    }

    /// The replies every command still awaits were lost ([`LostReplies`]): credentials among them
    /// are reported with outcome unknown, but the last, which a mailbox command accepted next
    /// shows accepted; a capability list lost says nothing of what is absent.
    fn forget_replies(&mut self, ctx: &mut Ctx<'_>) {
        auth::forget_pending(&mut self.pending_commands, &Command::Capa, &mut self.info);
        self.end_sasl(ctx);
        let last = self.awaiting_verdict.pop_back();
        while let Some((_, pending)) = self.awaiting_verdict.pop_front() {
            pending.emit(AppProto::Pop3, Outcome::Unknown, ctx);
        }
        if let Some((_, pending)) = last {
            if let Some(older) = self.verdict_unseen.replace(Box::new(pending)) {
                older.emit(AppProto::Pop3, Outcome::Unknown, ctx);
            }
        }
    }

    /// Reports the credential whose verdict was lost, if any, by what a later command showed: a
    /// mailbox command `accepted` says the login was (the session is then over); anything else
    /// says nothing, and it is reported unknown.
    fn settle_unseen_verdict(&mut self, accepted: bool, ctx: &mut Ctx<'_>) -> Option<Reply> {
        let pending = self.verdict_unseen.take()?;
        if accepted {
            pending.emit(AppProto::Pop3, Outcome::Success, ctx);
            return Some(Reply::done(DoneReason::Authenticated));
        }
        pending.emit(AppProto::Pop3, Outcome::Unknown, ctx);
        None
    }

    /// Commands awaiting their replies.
    pub fn replies_awaited(&self) -> usize {
        self.pending_commands.len()
    }

    /// See [`LostVerdict`].
    fn give_up_lost_verdict(&mut self, ctx: &mut Ctx<'_>) {
        if self.verdict_lost.take() {
            self.end_sasl_without_verdict(ctx);
        }
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The greeting has come, or the client spoke first and no later line is taken for it (a
    /// capture that missed the greeting): see [`Session::greeting_over`](super::Session).
    pub fn greeting_over(&self) -> bool {
        self.greeting_seen || self.client_spoke
    }

    /// STARTTLS awaits its answer: the client's next bytes are read after it, if at all.
    pub fn awaiting_starttls_reply(&self) -> bool {
        self.starttls_pending
    }

    /// Whether the client's `line` would be read as a command it knows: not inside a SASL
    /// exchange or while STARTTLS's answer is awaited (the first line after a gap, see
    /// [`Session`](super::Session)); in an exchange whose command was lost, its first response
    /// (see [`SaslExchange::takes_first_line_after_gap`]).
    pub fn takes_as_command(&self, line: &[u8]) -> bool {
        let verb = split_verb(line).0;
        let command = self.sasl.is_none()
            && !self.starttls_pending
            && READ_COMMANDS.iter().chain(&OTHER_COMMANDS).any(|known| verb.eq_ignore_ascii_case(known));
        command || self.sasl.as_ref().is_some_and(|sasl| sasl.takes_first_line_after_gap(line))
    }

    /// The flow ended: report what still waits for a verdict.
    /// Bytes the credentials awaiting their verdicts hold, for memory accounting.
    pub fn buffered(&self) -> usize {
        auth::awaiting_bytes(&self.awaiting_verdict, |_| 0)
    }

    /// Memory is short: the credentials awaiting their verdicts are reported now, outcome unknown.
    pub fn shed(&mut self, ctx: &mut Ctx<'_>) {
        auth::shed_awaiting(&mut self.awaiting_verdict, AppProto::Pop3, ctx);
    }

    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        self.settle_unseen_verdict(false, ctx);
        while let Some((_, pending)) = self.awaiting_verdict.pop_front() {
            pending.emit(AppProto::Pop3, Outcome::Unknown, ctx);
        }
    }

    /// Whether a client line whose end was lost is read: `USER` or `PASS` with their argument
    /// begun, `AUTH` with its initial response begun (cut before it, the line may or may not
    /// have held one, and LOGIN's responses would be taken one for the other), a SASL response
    /// (see [`Session::lose`](super::Session)).
    pub fn reads_cut_line(&self, line: &[u8]) -> bool {
        let (verb, after_verb) = split_verb(line);
        let argument = skip_blanks(after_verb);
        let credential = if verb.eq_ignore_ascii_case(b"AUTH") {
            !split_command_word(argument).1.is_empty()
        } else {
            (verb.eq_ignore_ascii_case(b"USER") || verb.eq_ignore_ascii_case(b"PASS")) && !after_verb.is_empty()
        };
        let sasl_response = self.sasl.as_ref().is_some_and(|sasl| sasl.continues_with(line));
        !self.starttls_pending && (credential || sasl_response)
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
        let replies_lost = self.replies_lost.take(self.pending_commands.len(), ctx);
        if self.starttls_pending {
            return Reply::line();
        }
        if self.sasl.as_ref().is_some_and(|sasl| sasl.continues_with(line)) {
            self.sasl_response(line, ctx);
            return Reply::line();
        }
        // A command: an exchange before it is over (its verdict lost with the replies, if so).
        if replies_lost {
            self.forget_replies(ctx);
        }
        if let Some(sasl) = &self.sasl {
            if sasl.verdict_still_comes() {
                // A command pipelined behind a complete credential (RFC 2449 PIPELINING): the
                // verdict comes first, in order, unless server bytes are lost before it.
                self.sasl = None;
            } else {
                self.end_sasl_without_verdict(ctx);
            }
        }
        let (verb, after_verb) = split_verb(line);
        let argument = skip_blanks(after_verb);
        if LOGIN_COMMANDS.iter().any(|login| verb.eq_ignore_ascii_case(login)) {
            // Logging in again (or asking how), the client shows nothing of the last login's
            // verdict.
            self.settle_unseen_verdict(false, ctx);
        }
        let command = if verb.eq_ignore_ascii_case(b"USER") {
            // Servers take the rest of the line as the name (Dovecot), and may match it against
            // their accounts ignoring blanks at its ends; reported without them, it is the
            // account the help desk knows, and the same one every time.
            self.user = RawUser::kept(argument.trim_ascii_end().to_vec());
            self.user_cut = ctx.line_cut;
            Command::User
        } else if verb.eq_ignore_ascii_case(b"PASS") {
            // The password is the rest of the line after the one separator, blanks included, as
            // the server takes it.
            let password = Secret::new(after_verb.get(1..).unwrap_or_default().to_vec());
            let mut captured = Captured::reusable(self.user.clone(), SecretKind::Password, &password, ctx);
            captured.partial |= self.user_cut;
            let pending = PendingCredential::new("USER/PASS", captured, &self.info, ctx);
            self.await_verdict(Command::Pass, pending, ctx);
            Command::Pass
        } else if verb.eq_ignore_ascii_case(b"APOP") {
            let name = before_last_word(argument.trim_ascii_end()).trim_ascii_end();
            let captured = Captured::challenge_response(Some(name.to_vec()));
            let pending = PendingCredential::new("APOP", captured, &self.info, ctx);
            self.await_verdict(Command::Apop, pending, ctx);
            Command::Apop
        } else if verb.eq_ignore_ascii_case(b"AUTH") {
            if argument.is_empty() {
                Command::Other { multiline: true }
            } else {
                let (mechanism, initial_response) = split_command_word(argument);
                self.sasl = Some(SaslExchange::new(mechanism));
                if !initial_response.is_empty() {
                    self.sasl_response(initial_response, ctx);
                }
                Command::Auth
            }
        } else if verb.eq_ignore_ascii_case(b"STLS") {
            self.starttls_pending = true;
            Command::Stls
        } else if verb.eq_ignore_ascii_case(b"CAPA") {
            Command::Capa
        } else {
            self.other_command(verb, argument)
        };
        self.push_command(command, ctx);
        if self.unknown_in_a_row > MAX_UNKNOWN_COMMANDS {
            return Reply::done(DoneReason::NotMail);
        }
        if command == Command::Stls {
            // What follows waits for the answer (held by the caller).
            return Reply::next(Next::Pause);
        }
        Reply::line()
    }

    fn sasl_response(&mut self, line: &[u8], ctx: &mut Ctx<'_>) {
        let Some(sasl) = &mut self.sasl else { return };
        match sasl.on_response(line, ctx) {
            SaslStep::Captured(captured) => {
                let mechanism = sasl.mechanism().label("AUTH");
                let pending = PendingCredential::new(mechanism, captured, &self.info, ctx);
                self.await_verdict(Command::Auth, pending, ctx);
            }
            SaslStep::Cancelled => self.sasl = None,
            SaslStep::Continue | SaslStep::Malformed => {}
        }
    }

    /// A challenge answered an AUTH the capture lost: the exchange is read from its responses
    /// ([`SaslExchange::after_lost_command`]), and the commands before it had their replies.
    fn begin_exchange_after_lost_command(&mut self, ctx: &mut Ctx<'_>) {
        self.in_body = None;
        self.forget_replies(ctx);
        self.settle_unseen_verdict(false, ctx);
        self.sasl = Some(SaslExchange::after_lost_command());
        self.pending_commands.push_back(Command::Auth);
    }

    /// The exchange is over but its verdict will not be seen (lost, or never captured, as the
    /// client's next command shows): its credential is reported with outcome unknown, and AUTH
    /// leaves the reply queue so that the next status line answers the command it belongs to.
    fn end_sasl_without_verdict(&mut self, ctx: &mut Ctx<'_>) {
        self.end_sasl(ctx);
        if let Some(auth) = self.awaiting_verdict.iter().rposition(|(command, _)| *command == Command::Auth) {
            if let Some((_, pending)) = self.awaiting_verdict.remove(auth) {
                pending.emit(AppProto::Pop3, Outcome::Unknown, ctx);
            }
        }
        auth::forget_last(&mut self.pending_commands, &Command::Auth);
    }

    /// The exchange in `self.sasl` is over: a password the capture lost the start of awaits
    /// the verdict like any credential (see [`SaslExchange::password_before_verdict`]).
    fn end_sasl(&mut self, ctx: &mut Ctx<'_>) {
        let Some(mut sasl) = self.sasl.take() else { return };
        if let Some(pending) = sasl.password_before_verdict("AUTH", &self.info, ctx) {
            self.await_verdict(Command::Auth, pending, ctx);
        }
    }

    fn other_command(&mut self, verb: &[u8], argument: &[u8]) -> Command {
        if OTHER_COMMANDS.iter().any(|known| verb.eq_ignore_ascii_case(known)) {
            self.unknown_in_a_row = 0;
        } else {
            self.unknown_in_a_row = self.unknown_in_a_row.saturating_add(1);
        }
        let multiline = verb.eq_ignore_ascii_case(b"RETR")
            || verb.eq_ignore_ascii_case(b"TOP")
            || ((verb.eq_ignore_ascii_case(b"LIST") || verb.eq_ignore_ascii_case(b"UIDL")) && argument.is_empty());
        if MAILBOX_COMMANDS.iter().any(|mailbox| verb.eq_ignore_ascii_case(mailbox)) {
            Command::Mailbox { multiline }
        } else {
            Command::Other { multiline }
        }
    }

    fn push_command(&mut self, command: Command, ctx: &mut Ctx<'_>) {
        if self.pending_commands.len() >= ctx.config.max_pending_commands {
            self.pending_commands.pop_front();
            ctx.stats.pending_dropped += 1;
        }
        self.pending_commands.push_back(command);
    }

    fn await_verdict(&mut self, command: Command, pending: PendingCredential, ctx: &mut Ctx<'_>) {
        auth::await_verdict(&mut self.awaiting_verdict, command, pending, AppProto::Pop3, ctx);
    }

    /// A server line; `cut` when its end was lost (its status is still at its start, but a
    /// capability it lists may be cut short).
    fn on_server_line(&mut self, line: &[u8], cut: bool, ctx: &mut Ctx<'_>) -> Reply {
        if cut && line == b"+" {
            // `+OK` or a SASL challenge: the cut leaves no telling.
            return Reply::line();
        }
        self.give_up_lost_verdict(ctx);
        if self.replies_lost.lost_with_next_command(self.pending_commands.len()) {
            self.forget_replies(ctx);
        }
        if let Some(body_of) = self.in_body {
            // No capability is named like a status line (RFC 2449): one in a listing means the
            // session lost track of which reply answers what; the listing is over.
            let lost_track = body_of == Command::Capa && matches!(status_of(line), Some(Status::Ok | Status::Err));
            if !lost_track {
                if line == b"." {
                    self.in_body = None;
                    if body_of == Command::Capa {
                        // Replies come in the order of the commands: credentials awaiting their
                        // verdicts now were sent behind this CAPA.
                        for (_, pending) in &mut self.awaiting_verdict {
                            pending.server_replied(&self.info);
                        }
                    }
                } else if body_of == Command::Capa && !cut {
                    self.info.add_capability(line);
                }
                return Reply::line();
            }
            self.in_body = None;
        }
        let Some(status) = status_of(line) else {
            return Reply::line();
        };
        if !self.greeting_seen && !self.client_spoke {
            self.greeting_seen = true;
            if cut {
                self.info.set_cut_greeting(line, false, ctx.server_lines);
            } else {
                self.info.set_greeting(line, false, ctx.server_lines);
            }
            return Reply::line();
        }
        if let Status::Continue = status {
            if self.sasl.is_none() && !self.pending_commands.contains(&Command::Auth) {
                // Only AUTH is answered so: its line was lost (a gap), and the replies to the
                // commands before it with it.
                self.begin_exchange_after_lost_command(ctx);
            }
            if let Some(sasl) = &mut self.sasl {
                sasl.on_challenge();
                sasl.on_prompt(line.get(2..).unwrap_or_default());
            }
            return Reply::line();
        }
        let ok = matches!(status, Status::Ok);
        let command = self.pending_commands.pop_front();
        let refused_for_tls =
            !ok && matches!(command, Some(Command::User | Command::Pass | Command::Auth)) && demands_tls(line);
        self.info.login_refused_for_tls |= refused_for_tls;
        match command {
            Some(Command::Capa) if ok => {
                self.info.begin_capabilities(false);
                self.in_body = Some(Command::Capa);
            }
            Some(Command::Mailbox { .. }) if self.verdict_unseen.is_some() => {
                if let Some(done) = self.settle_unseen_verdict(ok, ctx) {
                    return done;
                }
            }
            Some(other) if ok && other.multiline() => self.in_body = command,
            Some(Command::Stls) if ok => {
                ctx.stats.starttls_upgrades += 1;
                return Reply::done(DoneReason::Tls);
            }
            Some(Command::Stls) => {
                self.info.starttls_refused = true;
                self.starttls_pending = false;
            }
            Some(Command::Auth) => self.end_sasl(ctx),
            _ => {}
        }
        if let Some(command @ (Command::Pass | Command::Apop | Command::Auth)) = command {
            let outcome = match refusal_code(line) {
                _ if ok => Outcome::Success,
                Some(code) if code.eq_ignore_ascii_case(b"IN-USE") => Outcome::Success,
                // A refusal for want of TLS is one, whatever its code: the posture counts it so.
                _ if refused_for_tls => Outcome::Failure,
                Some(code) if code.eq_ignore_ascii_case(b"SYS") || code.eq_ignore_ascii_case(b"LOGIN-DELAY") => {
                    Outcome::Unknown
                }
                _ if cut && response_code_may_be_cut(line.get(4..).unwrap_or_default()) => Outcome::Unknown,
                _ => Outcome::Failure,
            };
            if let Some(position) = self.awaiting_verdict.iter().position(|(c, _)| *c == command) {
                if let Some((_, pending)) = self.awaiting_verdict.remove(position) {
                    pending.emit(AppProto::Pop3, outcome, ctx);
                }
            }
            if ok {
                return Reply::done(DoneReason::Authenticated);
            }
        }
        Reply::line()
    }
}

/// The response code of a refusal (RFC 2449 section 8), its first level only (`SYS` of
/// `[SYS/TEMP]`), for what it says of the secret:
/// - `IN-USE`: "the authentication was successful, but the user's maildrop is currently in use"
///   (section 8.1.2): the secret was right, which is what the outcome tells;
/// - `SYS` (RFC 3206): the failure is the system's, not the credentials' (Dovecot's answer when
///   its password database is down, whatever the password), and `LOGIN-DELAY` (section 8.1.1):
///   the user logged in too recently to be let in again; neither says whether the secret was
///   right.
fn refusal_code(line: &[u8]) -> Option<&[u8]> {
    let code = line.get(4..).map(<[u8]>::trim_ascii_start)?.strip_prefix(b"[")?;
    let end = code.iter().position(|byte| matches!(byte, b']' | b'/')).unwrap_or(code.len());
    code.get(..end)
}

/// Everything before the last blank (`APOP name digest`: the name may hold spaces).
fn before_last_word(argument: &[u8]) -> &[u8] {
    argument.iter().rposition(|byte| is_blank(*byte)).and_then(|space| argument.get(..space)).unwrap_or(argument)
}
