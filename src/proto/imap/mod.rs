//! IMAP (RFC 3501, RFC 9051; SASL-IR RFC 4959; LITERAL+ RFC 7888; ID RFC 2971).
//!
//! Client commands are assembled across literals: a line ending in `{n}` or `{n+}` is followed by
//! `n` raw bytes, then the rest of the command. Outcomes come from the tagged `OK`/`NO`/`BAD` of
//! the command's tag, so pipelined commands need no ordering.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

pub(super) mod parser;

/// The tokens of a line, for tests elsewhere in `proto` that check their `Debug` output.
#[cfg(test)]
pub(crate) fn parser_tokens(line: &[u8]) -> Result<parser::Tokenized<'_>, parser::TokenizeError> {
    parser::tokenize(line)
}

use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::auth::{self, Captured, PendingCredential, SaslExchange, SaslStep};
use super::detect::is_imap_tag;
use super::framing::{response_code_may_be_cut, whole_words, Next, Piece};
use super::secret::Secret;
use super::server::{demands_tls, ServerInfo};
use super::{split_word, Ctx, DoneReason, ProtoConfig, Reply, Role};
use crate::alert::{AppProto, Outcome, SecretKind};
use parser::{LineEnd, Token, Tokenized};

/// Commands whose arguments the session reads; the others are only followed for their literals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Login,
    Authenticate,
    StartTls,
    Id,
    Capability,
    Unauthenticate,
    /// A command a server runs only for a logged-in client (the authenticated and selected
    /// states of RFC 9051): one it accepts shows the logins sent before it accepted.
    LoggedIn,
    Other,
}

impl Command {
    fn of(name: &[u8]) -> Command {
        const NAMES: &[(&[u8], Command)] = &[
            (b"LOGIN", Command::Login),
            (b"AUTHENTICATE", Command::Authenticate),
            (b"STARTTLS", Command::StartTls),
            (b"ID", Command::Id),
            (b"CAPABILITY", Command::Capability),
            (b"UNAUTHENTICATE", Command::Unauthenticate),
            (b"SELECT", Command::LoggedIn),
            (b"EXAMINE", Command::LoggedIn),
            (b"CREATE", Command::LoggedIn),
            (b"DELETE", Command::LoggedIn),
            (b"RENAME", Command::LoggedIn),
            (b"SUBSCRIBE", Command::LoggedIn),
            (b"UNSUBSCRIBE", Command::LoggedIn),
            (b"LIST", Command::LoggedIn),
            (b"LSUB", Command::LoggedIn),
            (b"NAMESPACE", Command::LoggedIn),
            (b"STATUS", Command::LoggedIn),
            (b"APPEND", Command::LoggedIn),
            (b"IDLE", Command::LoggedIn),
            (b"CLOSE", Command::LoggedIn),
            (b"UNSELECT", Command::LoggedIn),
            (b"EXPUNGE", Command::LoggedIn),
            (b"SEARCH", Command::LoggedIn),
            (b"FETCH", Command::LoggedIn),
            (b"STORE", Command::LoggedIn),
            (b"COPY", Command::LoggedIn),
            (b"MOVE", Command::LoggedIn),
            (b"UID", Command::LoggedIn),
        ];
        NAMES.iter().find(|(n, _)| name.eq_ignore_ascii_case(n)).map_or(Command::Other, |(_, c)| *c)
    }

    fn keeps_arguments(self) -> bool {
        matches!(self, Command::Login | Command::Authenticate | Command::Id)
    }
}

/// One argument of an assembled command; wiped on drop since LOGIN's second one is a password.
enum Arg {
    String(Zeroizing<Vec<u8>>),
    /// A literal string the capture lost part of: it was sent, its bytes are not known.
    Lost,
    Nil,
    ListOpen,
    ListClose,
}

/// Arguments may be passwords: `Debug` shows their length only.
impl std::fmt::Debug for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::String(bytes) => write!(f, "String(len={})", bytes.len()),
            Arg::Lost => f.write_str("Lost"),
            Arg::Nil => f.write_str("Nil"),
            Arg::ListOpen => f.write_str("ListOpen"),
            Arg::ListClose => f.write_str("ListClose"),
        }
    }
}

impl Arg {
    fn string(&self) -> Option<&[u8]> {
        match self {
            Arg::String(bytes) => Some(bytes),
            Arg::Lost | Arg::Nil | Arg::ListOpen | Arg::ListClose => None,
        }
    }
}

/// A client command being assembled across literals.
struct Assembly {
    tag: Vec<u8>,
    command: Command,
    args: Vec<Arg>,
    /// A literal, or the arguments in all, were too large to keep: the command cannot be read.
    truncated: bool,
    /// The announced literal is being received.
    literal: Option<Zeroizing<Vec<u8>>>,
    /// Bytes of that literal were lost: it is kept as [`Arg::Lost`], its received bytes are not.
    literal_holed: bool,
}

/// Commands of IMAP4rev1, IMAP4rev2 and common extensions: a line after a gap that starts with a
/// tag and one of them is taken for a command.
const COMMANDS: [&[u8]; 38] = [
    b"CAPABILITY",
    b"NOOP",
    b"LOGOUT",
    b"STARTTLS",
    b"AUTHENTICATE",
    b"LOGIN",
    b"ID",
    b"ENABLE",
    b"SELECT",
    b"EXAMINE",
    b"CREATE",
    b"DELETE",
    b"RENAME",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"LIST",
    b"LSUB",
    b"NAMESPACE",
    b"STATUS",
    b"APPEND",
    b"IDLE",
    b"CHECK",
    b"CLOSE",
    b"UNSELECT",
    b"EXPUNGE",
    b"SEARCH",
    b"FETCH",
    b"STORE",
    b"COPY",
    b"MOVE",
    b"UID",
    b"GETQUOTA",
    b"GETQUOTAROOT",
    b"GETACL",
    b"MYRIGHTS",
    b"GETMETADATA",
    b"COMPRESS",
    b"UNAUTHENTICATE",
];

/// Arguments one command keeps at most: ID's 30 field-value pairs (RFC 2971) and its
/// parentheses, with room to spare. A command continued line after line (each ending in a
/// literal, `{0}` included) would otherwise grow without end.
const MAX_ARGUMENTS: usize = 64;

/// The longest tag whose command is tracked until its reply, in bytes. Clients number their
/// commands (`a1`, `A0001`); a session keeps up to 32 tags twice over (commands and credentials
/// awaiting a reply), so a tag as long as a line would make each flow hold half a megabyte. A
/// login under a longer tag is reported at once, outcome unknown.
const MAX_TRACKED_TAG: usize = 64;

impl Assembly {
    /// Bytes held: the arguments' strings and the literal being received.
    fn held(&self) -> usize {
        self.literal.as_ref().map_or(0, |literal| literal.capacity())
            + self.args.iter().map(|arg| arg.string().map_or(0, <[u8]>::len)).sum::<usize>()
    }

    /// The command is past what one command may keep ([`max_command_bytes`], [`MAX_ARGUMENTS`]):
    /// its arguments go (wiped), and it is no longer read.
    fn truncate_if_over(&mut self, config: &ProtoConfig) {
        if self.held() > max_command_bytes(config) || self.args.len() > MAX_ARGUMENTS {
            self.args = Vec::new();
            self.literal = None;
            self.truncated = true;
        }
    }
}

/// Bytes of arguments one command keeps at most: a line's worth of atoms and quoted strings and
/// two literals at their largest (LOGIN's user name and password).
pub(crate) fn max_command_bytes(config: &ProtoConfig) -> usize {
    config.max_line.saturating_add(config.max_literal.saturating_mul(2))
}

/// The literal may be a password: `Debug` shows its length only.
impl std::fmt::Debug for Assembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembly")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("truncated", &self.truncated)
            .field("literal_len", &self.literal.as_ref().map(|literal| literal.len()))
            .finish()
    }
}

/// A `LOGIN` whose line the capture lost, a literal announced at its end: the server's go-ahead
/// (a continuation that is no SASL challenge) shows the client's next bytes to be that literal
/// and the rest of the command.
enum LostLogin {
    /// The client's next line: the literal, then the rest of the command.
    Line,
    /// That line ended announcing a second literal, LOGIN's password; `user`: the user name's
    /// literal before it.
    Password { user: Zeroizing<Vec<u8>>, password: Zeroizing<Vec<u8>> },
    /// The password came whole; the command ends with the next line, empty.
    End { user: Zeroizing<Vec<u8>>, password: Zeroizing<Vec<u8>> },
}

impl LostLogin {
    fn held(&self) -> usize {
        match self {
            LostLogin::Line => 0,
            LostLogin::Password { user, password } | LostLogin::End { user, password } => user.len() + password.len(),
        }
    }
}

/// The user name and password are shown by their lengths only.
impl std::fmt::Debug for LostLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostLogin::Line => f.write_str("Line"),
            LostLogin::Password { user, password } | LostLogin::End { user, password } => f
                .debug_struct(if matches!(self, LostLogin::End { .. }) { "End" } else { "Password" })
                .field("user_len", &user.len())
                .field("password_len", &password.len())
                .finish(),
        }
    }
}

/// Whether a continuation's text (after `+ `) answers a literal rather than asking a SASL step,
/// whose challenges are base64 with its padding (RFC 9051 `continue-req`, RFC 4648): `+ OK`,
/// `+ go ahead`, `+ Ready for literal data`. An empty one (PLAIN's first challenge, or a terse
/// server's go-ahead) is taken for SASL's.
fn is_literal_go_ahead(text: &[u8]) -> bool {
    use base64::Engine;
    let text = text.trim_ascii();
    !text.is_empty() && base64::engine::general_purpose::STANDARD.decode(text).is_err()
}

#[derive(Debug, Default)]
pub(crate) struct ImapSession {
    info: ServerInfo,
    greeting_seen: bool,
    client_spoke: bool,
    /// STARTTLS was asked for and not yet answered: the session holds what the client sends
    /// meanwhile (see [`Session::on_data`](crate::proto::Session)); lines that reach it all the same (past
    /// the hold's bound) are dropped.
    starttls_pending: bool,
    assembly: Option<Assembly>,
    /// Tags of commands whose tagged reply matters.
    pending: VecDeque<(Vec<u8>, Command)>,
    awaiting_verdict: VecDeque<(Vec<u8>, PendingCredential)>,
    /// AUTHENTICATE in progress (its tag): client lines are SASL responses until its tagged reply.
    sasl: Option<(Vec<u8>, SaslExchange)>,
    /// The server listed UNAUTHENTICATE (RFC 8437) in a capability list: a client logged in may
    /// return to the not-authenticated state and log in again, so a login does not end the session.
    unauthenticate_offered: bool,
    /// A login succeeded and the session goes on, for UNAUTHENTICATE and the logins after it.
    /// Capabilities listed now describe the logged-in session, not the server's posture.
    logged_in: bool,
    /// The tag of a command whose line a gap cut with a literal it announced (an `APPEND`'s
    /// message, a `LOGIN`'s password; empty when the command was lost): the client's lines are
    /// that literal until the server answers it.
    message_unread: Option<Vec<u8>>,
    /// The line read for a lost `LOGIN` was cut: the command may go on past the cut with
    /// another literal, which a go-ahead before the client's next line shows.
    lost_login_cut: bool,
    /// A `LOGIN` the capture lost, its literal answered by the server's go-ahead (rare: boxed, so
    /// that every session does not carry its room).
    lost_login: Option<Box<LostLogin>>,
    /// The capture holds the connection's start: the session began before any login, as when its
    /// greeting was seen.
    connection_start_seen: bool,
    /// Client bytes were lost after the credential of a command the capture lost: a tagged reply
    /// to no command in flight may answer a command lost with them, and is not taken for that
    /// credential's verdict (see [`ImapSession::adopt_tag`]).
    orphan_verdict_unknown: bool,
}

/// Whether a capability list (words separated by spaces) holds UNAUTHENTICATE. Every capability
/// response is asked, so the words looked at are only those starting with a `U`.
fn lists_unauthenticate(list: &[u8]) -> bool {
    const NAME: &[u8] = b"UNAUTHENTICATE";
    memchr::memchr2_iter(b'U', b'u', list).any(|start| {
        let word_start = start.checked_sub(1).is_none_or(|before| list.get(before) == Some(&b' '));
        let end = start + NAME.len();
        word_start
            && list.get(start..end).is_some_and(|word| word.eq_ignore_ascii_case(NAME))
            && matches!(list.get(end), None | Some(b' '))
    })
}

impl ImapSession {
    /// A session; `connection_start_seen`: the capture holds the connection's handshake.
    pub fn new(connection_start_seen: bool) -> Self {
        ImapSession { connection_start_seen, ..ImapSession::default() }
    }

    pub fn on_piece(&mut self, role: Role, piece: Piece<'_>, ctx: &mut Ctx<'_>) -> Reply {
        match (role, piece) {
            (Role::Client, Piece::Line { line }) => self.on_client_line(line, false, ctx),
            (Role::Client, Piece::Cut { line }) => self.on_cut_client_line(line, ctx),
            (Role::Client, Piece::Raw { data, last }) => self.on_client_literal(data, last),
            (Role::Server, Piece::Line { line }) => self.on_server_line(line, false, ctx),
            (Role::Server, Piece::Cut { line }) => self.on_server_line(line, true, ctx),
            (Role::Server, Piece::Raw { .. }) | (_, Piece::Overflow) => Reply::line(),
        }
    }

    /// Bytes held: a command being assembled across literals, a lost `LOGIN`'s, and the commands
    /// and credentials awaiting a reply.
    pub fn buffered(&self) -> usize {
        let commands = self.pending.capacity() * std::mem::size_of::<(Vec<u8>, Command)>()
            + self.pending.iter().map(|(tag, _)| tag.len()).sum::<usize>();
        self.assembly.as_ref().map_or(0, Assembly::held)
            + self.lost_login.as_deref().map_or(0, LostLogin::held)
            + commands
            + auth::awaiting_bytes(&self.awaiting_verdict, Vec::len)
    }

    /// The most [`buffered`](Self::buffered) counts for the commands and credentials awaiting a
    /// reply, `max_pending` of each (their queues' places grow by doubling).
    pub fn max_awaiting_bytes(max_pending: usize) -> usize {
        let command = std::mem::size_of::<(Vec<u8>, Command)>() + MAX_TRACKED_TAG;
        let places = max_pending.checked_next_power_of_two().unwrap_or(max_pending);
        places.saturating_mul(command + auth::max_awaiting_bytes::<Vec<u8>>(MAX_TRACKED_TAG))
    }

    /// Drops the literal being collected (the command it belongs to cannot be read any more) and
    /// the tags of commands awaiting a reply; the credentials awaiting their verdicts are
    /// reported now, outcome unknown.
    pub fn shed(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(assembly) = &mut self.assembly {
            assembly.literal = None;
            assembly.args.clear();
            assembly.truncated = true;
        }
        self.lost_login = None;
        self.pending = VecDeque::new();
        auth::shed_awaiting(&mut self.awaiting_verdict, AppProto::Imap, ctx);
    }

    pub fn on_gap(&mut self, role: Role) {
        match role {
            Role::Client => {
                self.assembly = None;
                self.lost_login = None;
                self.orphan_verdict_unknown |= self.awaiting_verdict.iter().any(|(tag, _)| tag.is_empty());
                if let Some((_, sasl)) = &mut self.sasl {
                    sasl.on_client_gap();
                }
            }
            Role::Server => {
                if let Some((_, sasl)) = &mut self.sasl {
                    sasl.on_server_gap();
                }
            }
        }
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }

    /// The untagged greeting has come, or the client spoke first and no later line is taken for
    /// it (a capture that missed the greeting).
    pub fn greeting_over(&self) -> bool {
        self.greeting_seen || self.client_spoke
    }

    /// STARTTLS awaits its answer: the client's next bytes are read after it, if at all.
    pub fn awaiting_starttls_reply(&self) -> bool {
        self.starttls_pending
    }

    /// Whether the client's `line` would be read as a new command, a tag and a command IMAP
    /// knows: not while a command is assembled across literals, a SASL exchange or STARTTLS's
    /// answer is awaited (the first line after a gap, see [`Session`](super::super::Session));
    /// in an exchange whose command was lost, its first response (see
    /// [`SaslExchange::takes_first_line_after_gap`]).
    pub fn takes_as_command(&self, line: &[u8]) -> bool {
        if matches!(self.lost_login.as_deref(), Some(LostLogin::Line)) {
            return true;
        }
        if let Some((_, sasl)) = &self.sasl {
            return sasl.takes_first_line_after_gap(line);
        }
        if self.assembly.is_some() || self.starttls_pending || self.message_unread.is_some() {
            return false;
        }
        let Ok(tokenized) = parser::tokenize(line) else { return false };
        let mut tokens = tokenized.tokens.iter();
        tokens.next().and_then(Token::astring).is_some_and(is_imap_tag)
            && tokens
                .next()
                .and_then(Token::string)
                .is_some_and(|name| COMMANDS.iter().any(|c| name.eq_ignore_ascii_case(c)))
    }

    /// Whether a server line is a tagged status answering a command in flight: read even as the
    /// first line after a gap, which it cannot be the cut tail of (it names its command). An
    /// exchange whose `AUTHENTICATE` the capture lost takes the first tagged status for its
    /// verdict, whatever its tag.
    pub fn takes_as_reply(&self, line: &[u8]) -> bool {
        let (tag, rest) = split_word(line);
        let status = split_word(rest).0;
        let orphan_exchange = self.sasl.as_ref().is_some_and(|(sasl_tag, _)| sasl_tag.is_empty());
        [b"OK".as_slice(), b"NO", b"BAD"].iter().any(|word| status.eq_ignore_ascii_case(word))
            && (self.pending.iter().any(|(pending, _)| pending.as_slice() == tag)
                || (orphan_exchange && is_imap_tag(tag)))
    }

    pub fn flush(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((_, pending)) = self.awaiting_verdict.pop_front() {
            pending.emit(AppProto::Imap, Outcome::Unknown, ctx);
        }
    }

    /// Whether a client line whose end was lost is read: `LOGIN` with its user name begun,
    /// `AUTHENTICATE` with its initial response begun (cut before it, the line may or may not
    /// have held one, and LOGIN's responses would be taken one for the other), either continued
    /// after a literal, a SASL response, a lost `LOGIN`'s literal after its go-ahead (see
    /// [`Session::lose`](super::super::Session)).
    pub fn reads_cut_line(&self, line: &[u8]) -> bool {
        let logs_in = |command: Command| matches!(command, Command::Login | Command::Authenticate);
        let credential = match &self.assembly {
            Some(assembly) => logs_in(assembly.command),
            None => {
                let (_tag, rest) = split_word(line);
                let (name, arguments) = split_word(rest);
                match Command::of(name) {
                    Command::Login => !arguments.is_empty(),
                    Command::Authenticate => !split_word(arguments).1.is_empty(),
                    _ => false,
                }
            }
        };
        let sasl_response =
            self.assembly.is_none() && self.sasl.as_ref().is_some_and(|(_, sasl)| sasl.continues_with(line));
        let lost_login = matches!(self.lost_login.as_deref(), Some(LostLogin::Line));
        !self.starttls_pending && self.message_unread.is_none() && (credential || sasl_response || lost_login)
    }

    /// A client line whose end was lost: a credential in it is partial.
    fn on_cut_client_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        if !self.reads_cut_line(line) {
            let (tag, rest) = split_word(line);
            if self.assembly.is_none() && split_word(rest).0.eq_ignore_ascii_case(b"APPEND") {
                // The literal it announced, a message, was cut off with it: what follows is
                // message text, never commands, until the server answers it.
                self.message_unread = Some(tag.to_vec());
            }
            return Reply::line();
        }
        self.on_client_line(line, true, ctx)
    }

    /// A client line; `cut` when its end was lost (see [`ImapSession::on_cut_client_line`]).
    fn on_client_line(&mut self, line: &[u8], cut: bool, ctx: &mut Ctx<'_>) -> Reply {
        self.client_spoke = true;
        self.lost_login_cut = false;
        if self.starttls_pending || self.message_unread.is_some() {
            return Reply::line();
        }
        if let Some(lost) = self.lost_login.take() {
            return self.on_lost_login_line(*lost, line, ctx);
        }
        if self.assembly.is_none() {
            if let Some((_, sasl)) = &mut self.sasl {
                if sasl.continues_with(line) {
                    let step = sasl.on_response(line, ctx);
                    self.sasl_step(step, ctx);
                    return Reply::line();
                }
                if sasl.verdict_still_comes() {
                    // A command sent behind a complete credential: its tagged verdict still comes.
                    self.sasl = None;
                } else {
                    self.end_sasl_without_verdict(ctx);
                }
            }
        }
        let mut literal_past_cut = false;
        let tokenized = if cut {
            let (tokens, announced) = parser::tokenize_cut(line);
            literal_past_cut = announced;
            Tokenized { tokens, end: LineEnd::Complete }
        } else {
            let Ok(tokenized) = parser::tokenize(line) else {
                self.assembly = None;
                return Reply::line();
            };
            tokenized
        };
        let mut tokens = tokenized.tokens.into_iter();
        if self.assembly.is_none() {
            let tag = tokens.next().and_then(|t| t.astring().map(<[u8]>::to_vec)).unwrap_or_default();
            let command = tokens.next().and_then(|t| t.string().map(Command::of)).unwrap_or(Command::Other);
            self.assembly = Some(Assembly {
                tag,
                command,
                args: Vec::new(),
                truncated: false,
                literal: None,
                literal_holed: false,
            });
        }
        let Some(assembly) = &mut self.assembly else { return Reply::line() };
        if assembly.command.keeps_arguments() && !assembly.truncated {
            // One past the limit at most, for `truncate_if_over` to see.
            let room = (MAX_ARGUMENTS + 1).saturating_sub(assembly.args.len());
            // LOGIN's user name and password are astrings: `NIL` there is a name or a password.
            let nil_is_a_string = assembly.command == Command::Login;
            assembly.args.extend(tokens.take(room).map(|token| match token {
                Token::Atom(atom) => Arg::String(Zeroizing::new(atom.to_vec())),
                Token::Quoted(text) => Arg::String(Zeroizing::new(text.into_owned())),
                Token::Nil(atom) if nil_is_a_string => Arg::String(Zeroizing::new(atom.to_vec())),
                Token::Nil(_) => Arg::Nil,
                Token::ListOpen => Arg::ListOpen,
                Token::ListClose => Arg::ListClose,
            }));
            assembly.truncate_if_over(ctx.config);
        }
        match tokenized.end {
            LineEnd::Literal { len, .. } => {
                let fits = usize::try_from(len).is_ok_and(|len| {
                    len <= ctx.config.max_literal
                        && assembly.held().saturating_add(len) <= max_command_bytes(ctx.config)
                        && assembly.args.len() < MAX_ARGUMENTS
                });
                if !(assembly.command.keeps_arguments() && !assembly.truncated && fits) {
                    // Skipped unread; what came before stays (AUTHENTICATE's mechanism), nothing
                    // after is kept.
                    assembly.truncated = true;
                    return Reply::next(Next::Raw(len));
                }
                if len == 0 {
                    // Nothing to wait for: an empty argument, and the line goes on.
                    assembly.args.push(Arg::String(Zeroizing::new(Vec::new())));
                    return Reply::line();
                }
                assembly.literal = Some(Zeroizing::new(Vec::with_capacity(len as usize)));
                assembly.literal_holed = false;
                Reply::next(Next::Raw(len))
            }
            LineEnd::Complete => {
                if let Some(assembly) = self.assembly.take() {
                    if literal_past_cut && assembly.command == Command::Login {
                        return self.login_cut_at_a_literal(assembly, ctx);
                    }
                    return self.execute(assembly, ctx);
                }
                Reply::line()
            }
        }
    }

    /// A `LOGIN` line cut inside or after the announcement of a literal, which comes past the
    /// cut: its password crossed in clear, in that literal or the next. It is reported as a line
    /// cut before its password is (partial, with the user name when that came whole), and the
    /// client's lines are that literal until the server answers the command (its go-ahead is no
    /// lost command's).
    fn login_cut_at_a_literal(&mut self, assembly: Assembly, ctx: &mut Ctx<'_>) -> Reply {
        let tag = assembly.tag.clone();
        let user_whole = assembly.args.iter().any(|arg| matches!(arg, Arg::String(_) | Arg::Lost));
        let reply = if user_whole {
            self.execute(assembly, ctx)
        } else {
            let pending = PendingCredential::new(
                "LOGIN",
                Captured::partly_lost(None::<Vec<u8>>, SecretKind::Password),
                &self.info,
                ctx,
            );
            self.await_verdict(tag.clone(), pending, ctx);
            if tag.len() <= MAX_TRACKED_TAG {
                self.track(tag.clone(), Command::Login, ctx);
            }
            Reply::line()
        };
        self.message_unread = Some(tag);
        reply
    }

    fn on_client_literal(&mut self, data: &[u8], last: bool) -> Reply {
        if let Some(lost) = self.lost_login.as_deref_mut() {
            if let LostLogin::Password { user, password } = lost {
                password.extend_from_slice(data);
                if last {
                    *lost = LostLogin::End { user: std::mem::take(user), password: std::mem::take(password) };
                }
                return Reply::line();
            }
        }
        if let Some(assembly) = &mut self.assembly {
            if let Some(literal) = assembly.literal.as_mut().filter(|_| !assembly.literal_holed) {
                literal.extend_from_slice(data);
            }
            if last {
                if let Some(literal) = assembly.literal.take() {
                    assembly.args.push(if assembly.literal_holed { Arg::Lost } else { Arg::String(literal) });
                }
            }
        }
        Reply::line()
    }

    /// The client's line after the go-ahead to a lost `LOGIN`'s literal: that literal, then the
    /// rest of the command. Ending with another literal's announcement, it was the user name, and
    /// the password follows whole; ending the command, the password is in it, where is not known
    /// (the literal may be the password, or the user name before it): partial. A line ending a
    /// list is `ID`'s, no login.
    fn on_lost_login_line(&mut self, lost: LostLogin, line: &[u8], ctx: &mut Ctx<'_>) -> Reply {
        match lost {
            LostLogin::Line => match parser::trailing_literal(line) {
                Some((user, len)) => {
                    let fits = usize::try_from(len).is_ok_and(|len| len <= ctx.config.max_literal);
                    if fits && len > 0 && user.len() <= ctx.config.max_literal {
                        let (user, password) = (Zeroizing::new(user.to_vec()), Zeroizing::new(Vec::new()));
                        self.lost_login = Some(Box::new(LostLogin::Password { user, password }));
                    }
                    return Reply::next(Next::Raw(len));
                }
                None if line.ends_with(b")") => {}
                None => {
                    self.await_lost_login(Captured::partly_lost(None::<Vec<u8>>, SecretKind::Password), ctx);
                    self.lost_login_cut = ctx.line_cut;
                }
            },
            LostLogin::End { user, password } if line.is_empty() => {
                let password = Secret::new(password.to_vec());
                let captured = Captured::reusable(Some(user.to_vec()), SecretKind::Password, &password, ctx);
                self.await_lost_login(captured, ctx);
            }
            LostLogin::Password { .. } | LostLogin::End { .. } => {}
        }
        Reply::line()
    }

    /// A lost `LOGIN`'s credential awaits the verdict to the tag the server's reply will name.
    /// Only now is the command known to be a login (not `ID`), and tracked as one.
    fn await_lost_login(&mut self, captured: Captured, ctx: &mut Ctx<'_>) {
        let pending = PendingCredential::new("LOGIN", captured, &self.info, ctx);
        self.await_verdict(Vec::new(), pending, ctx);
        self.track(Vec::new(), Command::Login, ctx);
    }

    /// Client bytes were lost inside a literal whose length the command announced: the framer
    /// counts them through it (`literal_ends`: up to its end), and the command goes on after it,
    /// its tag and what follows the literal read. In LOGIN the literal is an argument whose
    /// bytes are unknown, so that the other one keeps its place (a password after a user name
    /// cut by the loss is read whole); another command's arguments are not read. A lost
    /// `LOGIN`'s password literal that lost bytes is reported partial.
    pub fn on_client_gap_in_literal(&mut self, literal_ends: bool, ctx: &mut Ctx<'_>) {
        if let Some(LostLogin::Password { user, .. }) = self.lost_login.as_deref() {
            let captured = Captured::partly_lost(Some(user.to_vec()), SecretKind::Password);
            self.lost_login = None;
            return self.await_lost_login(captured, ctx);
        }
        let Some(assembly) = &mut self.assembly else { return self.on_gap(Role::Client) };
        match &mut assembly.literal {
            Some(literal) if assembly.command == Command::Login && !assembly.truncated => {
                *literal = Zeroizing::new(Vec::new());
                assembly.literal_holed = true;
            }
            _ => {
                assembly.literal = None;
                assembly.truncated = true;
            }
        }
        if literal_ends {
            self.on_client_literal(&[], true);
        }
    }

    fn execute(&mut self, assembly: Assembly, ctx: &mut Ctx<'_>) -> Reply {
        let Assembly { tag, command, args, truncated, .. } = assembly;
        match command {
            Command::Login if !truncated => {
                let mut strings = args.iter().filter(|arg| matches!(arg, Arg::String(_) | Arg::Lost));
                let (user, password) = (strings.next(), strings.next());
                let user = user.map(|user| user.string().map(<[u8]>::to_vec));
                let captured = match (user, password) {
                    (Some(user), Some(Arg::Lost)) => Some(Captured::partly_lost(user, SecretKind::Password)),
                    (Some(user), Some(password)) => {
                        let password = Secret::new(password.string().unwrap_or_default().to_vec());
                        Some(Captured::reusable(user, SecretKind::Password, &password, ctx))
                    }
                    // Cut before the password: it was sent, and none of it captured.
                    (Some(user), None) if ctx.line_cut => {
                        Some(Captured::reusable(user, SecretKind::Password, &Secret::new(Vec::new()), ctx))
                    }
                    _ => None,
                };
                if let Some(captured) = captured {
                    let pending = PendingCredential::new("LOGIN", captured, &self.info, ctx);
                    self.await_verdict(tag.clone(), pending, ctx);
                }
            }
            Command::Authenticate => {
                let mut strings = args.iter().filter_map(Arg::string);
                let mechanism = strings.next().unwrap_or_default();
                let mut sasl = SaslExchange::new(mechanism);
                if let Some(initial_response) = strings.next() {
                    let step = sasl.on_response(initial_response, ctx);
                    self.sasl = Some((tag.clone(), sasl));
                    self.sasl_step(step, ctx);
                } else {
                    self.sasl = Some((tag.clone(), sasl));
                }
            }
            Command::Id => self.client_id(&args),
            Command::StartTls => self.starttls_pending = true,
            Command::Login | Command::Capability | Command::Unauthenticate | Command::LoggedIn | Command::Other => {}
        }
        // A logged-in client's command matters only while a login's verdict is awaited; any
        // command while a lost command's tag is to be adopted, whose reply is no lost one's.
        let tracked = match command {
            Command::Other => !tag.is_empty() && self.pending.iter().any(|(pending, _)| pending.is_empty()),
            Command::LoggedIn => !self.awaiting_verdict.is_empty(),
            _ => true,
        };
        if tracked && tag.len() <= MAX_TRACKED_TAG {
            self.track(tag, command, ctx);
        }
        if self.starttls_pending {
            // What follows waits for the answer (held by the caller).
            return Reply::next(Next::Pause);
        }
        Reply::line()
    }

    /// The command awaits its reply, tracked by its tag: the oldest goes past the limit.
    fn track(&mut self, tag: Vec<u8>, command: Command, ctx: &mut Ctx<'_>) {
        if self.pending.len() >= ctx.config.max_pending_commands {
            self.pending.pop_front();
            ctx.stats.pending_dropped += 1;
        }
        self.pending.push_back((tag, command));
    }

    fn await_verdict(&mut self, tag: Vec<u8>, pending: PendingCredential, ctx: &mut Ctx<'_>) {
        if tag.len() > MAX_TRACKED_TAG {
            pending.emit(AppProto::Imap, Outcome::Unknown, ctx);
            return;
        }
        auth::await_verdict(&mut self.awaiting_verdict, tag, pending, AppProto::Imap, ctx);
    }

    /// What a step of the exchange in `self.sasl` did.
    fn sasl_step(&mut self, step: SaslStep, ctx: &mut Ctx<'_>) {
        match step {
            SaslStep::Captured(captured) => {
                if let Some((tag, sasl)) = &self.sasl {
                    let mechanism = sasl.mechanism().label("AUTHENTICATE");
                    let pending = PendingCredential::new(mechanism, captured, &self.info, ctx);
                    let orphan = tag.is_empty();
                    self.await_verdict(tag.clone(), pending, ctx);
                    if orphan {
                        // A lost command is known to be a login only by its credential: its tag
                        // is tracked from here on (see `begin_exchange_after_lost_command`).
                        self.track(Vec::new(), Command::Authenticate, ctx);
                    }
                }
            }
            SaslStep::Cancelled => self.sasl = None,
            SaslStep::Continue | SaslStep::Malformed => {}
        }
    }

    /// The exchange in `self.sasl` is over: returns its tag. A password the capture lost the
    /// start of awaits the verdict to it like any credential (see
    /// [`SaslExchange::password_before_verdict`]).
    fn end_sasl(&mut self, ctx: &mut Ctx<'_>) -> Option<Vec<u8>> {
        let (tag, mut sasl) = self.sasl.take()?;
        if let Some(pending) = sasl.password_before_verdict("AUTHENTICATE", &self.info, ctx) {
            self.await_verdict(tag.clone(), pending, ctx);
        }
        Some(tag)
    }

    /// The exchange is over but its tagged verdict will not be seen (lost, or never captured, as
    /// the client's next command shows): its credential is reported with outcome unknown.
    fn end_sasl_without_verdict(&mut self, ctx: &mut Ctx<'_>) {
        let Some(tag) = self.end_sasl(ctx) else { return };
        if let Some(i) = self.awaiting_verdict.iter().position(|(t, _)| *t == tag) {
            if let Some((_, pending)) = self.awaiting_verdict.remove(i) {
                pending.emit(AppProto::Imap, Outcome::Unknown, ctx);
            }
        }
        if let Some(i) = self.pending.iter().position(|(t, _)| *t == tag) {
            self.pending.remove(i);
        }
    }

    /// `ID ("name" "Thunderbird" "version" "115.3")`: the client software, for the help desk.
    fn client_id(&mut self, args: &[Arg]) {
        let strings: Vec<Option<&[u8]>> =
            args.iter().filter(|a| !matches!(a, Arg::ListOpen | Arg::ListClose)).map(Arg::string).collect();
        let field = |key: &[u8]| {
            strings.chunks(2).find_map(|pair| match pair {
                [Some(k), Some(v)] if k.eq_ignore_ascii_case(key) => Some(*v),
                _ => None,
            })
        };
        let software = match (field(b"name"), field(b"version")) {
            (Some(name), Some(version)) => [name, b" ", version].concat(),
            (Some(name), None) => name.to_vec(),
            (None, _) => return,
        };
        self.info.set_client_software(&software);
    }

    /// A server line; `cut` when its end was lost: its tag and status are at its start, but a
    /// capability list in it may be cut short, and a literal it ended with is not known.
    fn on_server_line(&mut self, line: &[u8], cut: bool, ctx: &mut Ctx<'_>) -> Reply {
        let next = match parser::line_end(line) {
            Ok(LineEnd::Literal { len, .. }) if len > 0 && !cut => Next::Raw(len),
            _ => Next::Line,
        };
        let (tag, rest) = split_word(line);
        let (status, text) = split_word(rest);
        if tag == b"*" {
            let greeting = !self.greeting_seen && !self.client_spoke;
            if cut {
                self.on_cut_untagged(status, text, line, ctx);
            } else {
                self.on_untagged(status, text, line, ctx);
            }
            if greeting && status.eq_ignore_ascii_case(b"PREAUTH") {
                return Reply::done(DoneReason::Authenticated);
            }
        } else if tag == b"+" {
            if std::mem::take(&mut self.lost_login_cut) {
                // The lost LOGIN's line announced another literal past its cut (the password's,
                // after the user name's): the client's lines are that literal until the server
                // answers.
                self.message_unread = Some(Vec::new());
            } else if self.continuation_answers_a_lost_command() {
                if !is_literal_go_ahead(rest) {
                    self.begin_exchange_after_lost_command(ctx);
                } else if self.greeting_seen || self.connection_start_seen {
                    // Known to be before any login (the greeting or the handshake seen, no login
                    // since), where a literal is LOGIN's or ID's; a capture picked up midstream
                    // may be past one, where it may be an APPEND's message.
                    self.begin_lost_login(ctx);
                    // The server had the line that announced the literal whole: the client's
                    // next bytes are the literal, not the tail of a line a loss cut.
                    return Reply { next, other: Some(Next::Line), done: None };
                }
            }
            if let Some((_, sasl)) = &mut self.sasl {
                sasl.on_challenge();
                sasl.on_prompt(rest);
            }
        } else if !tag.is_empty() {
            return self.on_tagged(tag, status, text, cut, ctx);
        }
        Reply::next(next)
    }

    /// Whether a continuation request answers nothing the capture holds: no exchange, literal or
    /// message is awaited, and no command in flight takes one (`IDLE`, `APPEND`: logged-in
    /// commands). It then answers an `AUTHENTICATE` the capture lost, or a lost command's
    /// literal.
    fn continuation_answers_a_lost_command(&self) -> bool {
        self.sasl.is_none()
            && self.assembly.is_none()
            && self.lost_login.is_none()
            && self.message_unread.is_none()
            && !self.logged_in
            && !self.pending.iter().any(|(_, command)| *command == Command::LoggedIn)
    }

    /// An `AUTHENTICATE` the capture lost: the exchange is read from its responses
    /// ([`SaslExchange::after_lost_command`]); its tag is the first tagged reply's that answers
    /// no command in flight (an empty tag until then). The command is tracked as a login only
    /// once a credential shows it one: an empty continuation may also answer an `ID`'s literal,
    /// whose `OK` must not end the session as a login's would.
    fn begin_exchange_after_lost_command(&mut self, ctx: &mut Ctx<'_>) {
        self.flush_orphan(ctx);
        self.sasl = Some((Vec::new(), SaslExchange::after_lost_command()));
    }

    /// A `LOGIN` the capture lost, its literal's go-ahead seen: read from the client's next line
    /// ([`ImapSession::on_lost_login_line`]), its tag the first tagged reply's that answers no
    /// command in flight.
    fn begin_lost_login(&mut self, ctx: &mut Ctx<'_>) {
        self.flush_orphan(ctx);
        self.lost_login = Some(Box::new(LostLogin::Line));
    }

    /// An earlier exchange whose command was lost, never answered: its credential is unknown.
    fn flush_orphan(&mut self, ctx: &mut Ctx<'_>) {
        self.orphan_verdict_unknown = false;
        if let Some(i) = self.awaiting_verdict.iter().position(|(tag, _)| tag.is_empty()) {
            if let Some((_, pending)) = self.awaiting_verdict.remove(i) {
                pending.emit(AppProto::Imap, Outcome::Unknown, ctx);
            }
        }
        self.pending.retain(|(tag, _)| !tag.is_empty());
    }

    /// A tagged reply: if it answers no command in flight and an exchange whose command was lost
    /// awaits its verdict, this is that command's tag (unless client bytes were lost since its
    /// credential: the reply may answer a command lost with them).
    fn adopt_tag(&mut self, tag: &[u8]) {
        if self.orphan_verdict_unknown || self.pending.iter().any(|(pending, _)| pending.as_slice() == tag) {
            return;
        }
        let orphan = |pending: &mut Vec<u8>| {
            if pending.is_empty() {
                *pending = tag.to_vec();
            }
        };
        self.pending.iter_mut().for_each(|(pending, _)| orphan(pending));
        self.awaiting_verdict.iter_mut().for_each(|(pending, _)| orphan(pending));
        if let Some((pending, _)) = &mut self.sasl {
            orphan(pending);
        }
    }

    /// A command only a logged-in client may send, the `position`th awaiting its reply, was
    /// accepted: the logins sent before it, whose verdicts the capture lost (a server answers a
    /// login before it runs a command sent after it), were accepted. Returns whether there were
    /// any.
    fn accepted_before(&mut self, position: usize, ctx: &mut Ctx<'_>) -> bool {
        let earlier: Vec<Vec<u8>> = self
            .pending
            .iter()
            .take(position)
            .filter(|(sent, command)| {
                matches!(command, Command::Login | Command::Authenticate)
                    && self.awaiting_verdict.iter().any(|(tag, _)| tag == sent)
            })
            .map(|(sent, _)| sent.clone())
            .collect();
        for tag in &earlier {
            self.pending.retain(|(sent, _)| sent != tag);
            self.sasl = self.sasl.take().filter(|(sasl_tag, _)| sasl_tag != tag);
            while let Some(i) = self.awaiting_verdict.iter().position(|(awaiting, _)| awaiting == tag) {
                if let Some((_, pending)) = self.awaiting_verdict.remove(i) {
                    pending.emit(AppProto::Imap, Outcome::Success, ctx);
                }
            }
        }
        !earlier.is_empty()
    }

    /// A login succeeded: the session is over, unless the server
    /// offered UNAUTHENTICATE, after which the same connection may log in again. Then `None`,
    /// and the session goes on (within the inspection depth, as any other).
    fn logged_in(&mut self, ctx: &mut Ctx<'_>) -> Option<Reply> {
        if !self.unauthenticate_offered {
            return Some(Reply::done(DoneReason::Authenticated));
        }
        ctx.stats.authenticated += 1;
        self.logged_in = true;
        None
    }

    fn on_untagged(&mut self, status: &[u8], text: &[u8], line: &[u8], ctx: &mut Ctx<'_>) {
        let first_line = !self.greeting_seen && !self.client_spoke;
        if first_line {
            self.greeting_seen = true;
            self.info.set_greeting(line, false, ctx.server_lines);
        }
        if status.eq_ignore_ascii_case(b"CAPABILITY") {
            self.capabilities(text, false, ctx);
        } else if status.eq_ignore_ascii_case(b"OK") {
            if let Some(code) = parser::response_code(text) {
                let (name, list) = split_word(code);
                if name.eq_ignore_ascii_case(b"CAPABILITY") {
                    self.capabilities(list, false, ctx);
                }
            }
        }
    }

    /// An untagged line whose end was lost: a greeting is seen (its whole words kept), a
    /// capability list it held is read up to its last whole word, and claims no absence (what it
    /// lost may be what matters).
    fn on_cut_untagged(&mut self, status: &[u8], text: &[u8], line: &[u8], ctx: &mut Ctx<'_>) {
        if !self.greeting_seen && !self.client_spoke {
            self.greeting_seen = true;
            self.info.set_cut_greeting(line, false, ctx.server_lines);
        }
        if status.eq_ignore_ascii_case(b"CAPABILITY") {
            self.capabilities(whole_words(text), true, ctx);
        } else if status.eq_ignore_ascii_case(b"OK") {
            match parser::response_code(text) {
                Some(code) => {
                    let (name, list) = split_word(code);
                    if name.eq_ignore_ascii_case(b"CAPABILITY") {
                        self.capabilities(list, false, ctx);
                    }
                }
                None => {
                    let (name, list) = split_word(text.strip_prefix(b"[").unwrap_or_default());
                    if name.eq_ignore_ascii_case(b"CAPABILITY") {
                        self.capabilities(whole_words(list), true, ctx);
                    }
                }
            }
        }
    }

    /// A capability list. Those sent while a login awaits its verdict or after it describe the
    /// session after it (servers announce post-login capabilities with it) and are not the
    /// server's posture; UNAUTHENTICATE counts wherever it is listed.
    /// `cut`: the list lost its end (see [`ServerInfo::capabilities_cut`]).
    fn capabilities(&mut self, list: &[u8], cut: bool, ctx: &mut Ctx<'_>) {
        self.unauthenticate_offered |= lists_unauthenticate(list);
        if !self.awaiting_verdict.is_empty() || self.sasl.is_some() || self.logged_in {
            return;
        }
        self.info.set_imap_capabilities(list, ctx.server_lines);
        if cut {
            self.info.capabilities_cut();
        }
    }

    /// A tagged status; `cut` when its line's end was lost.
    fn on_tagged(&mut self, tag: &[u8], status: &[u8], text: &[u8], cut: bool, ctx: &mut Ctx<'_>) -> Reply {
        let ok = status.eq_ignore_ascii_case(b"OK");
        if !ok && !status.eq_ignore_ascii_case(b"NO") && !status.eq_ignore_ascii_case(b"BAD") {
            return Reply::line();
        }
        self.adopt_tag(tag);
        let mut reply = Reply::line();
        if self.message_unread.as_deref().is_some_and(|unread| unread.is_empty() || unread == tag) {
            // An empty tag is a lost command's: the first tagged reply is most likely its.
            self.message_unread = None;
        }
        // The server finished a command whose literal is still awaited: it refused it, and the
        // client will not send it.
        if self.assembly.as_ref().is_some_and(|a| a.tag == tag) {
            self.assembly = None;
            reply.other = Some(Next::Line);
        }
        if self.sasl.as_ref().is_some_and(|(t, _)| t == tag) {
            self.end_sasl(ctx);
        }
        let position = self.pending.iter().position(|(t, _)| t == tag);
        let command = position.and_then(|i| self.pending.remove(i)).map(|(_, c)| c);
        let refused_for_tls =
            !ok && matches!(command, Some(Command::Login | Command::Authenticate)) && demands_tls(text);
        self.info.login_refused_for_tls |= refused_for_tls;
        if command.is_none() || command == Some(Command::Login) {
            // A lost command answered before its line ended (the server refused what it had),
            // or after it (an `ID`'s): its literal is not awaited any more.
            self.lost_login = None;
        }
        if let (true, Some(Command::LoggedIn), Some(position)) = (ok, command, position) {
            if self.accepted_before(position, ctx) {
                return self.logged_in(ctx).unwrap_or(reply);
            }
        }
        let outcome = match refusal_code(status, text) {
            _ if ok => Outcome::Success,
            Some(code) if code.eq_ignore_ascii_case(b"AUTHORIZATIONFAILED") => Outcome::Success,
            // A refusal for want of TLS is one, whatever its code: the posture counts it so.
            _ if refused_for_tls => Outcome::Failure,
            Some(code) if code.eq_ignore_ascii_case(b"UNAVAILABLE") || code.eq_ignore_ascii_case(b"SERVERBUG") => {
                Outcome::Unknown
            }
            _ if cut && response_code_may_be_cut(text) => Outcome::Unknown,
            _ => Outcome::Failure,
        };
        if let Some(i) = self.awaiting_verdict.iter().position(|(t, _)| t == tag) {
            if let Some((_, pending)) = self.awaiting_verdict.remove(i) {
                pending.emit(AppProto::Imap, outcome, ctx);
            }
        }
        // Capabilities announced with a login's verdict describe the session after it: only
        // UNAUTHENTICATE is taken from them.
        let login = matches!(command, Some(Command::Login | Command::Authenticate));
        if let Some(code) = parser::response_code(text) {
            let (name, list) = split_word(code);
            if name.eq_ignore_ascii_case(b"CAPABILITY") {
                if login {
                    self.unauthenticate_offered |= lists_unauthenticate(list);
                } else {
                    self.capabilities(list, false, ctx);
                }
            }
        }
        match command {
            Some(Command::Login | Command::Authenticate) if ok => self.logged_in(ctx).unwrap_or(reply),
            Some(Command::Unauthenticate) if ok => {
                self.logged_in = false;
                reply
            }
            Some(Command::StartTls) if ok => {
                ctx.stats.starttls_upgrades += 1;
                Reply::done(DoneReason::Tls)
            }
            Some(Command::StartTls) => {
                self.info.starttls_refused = true;
                self.starttls_pending = false;
                reply
            }
            _ => reply,
        }
    }
}

/// The response code of a `NO` (its name, without arguments), for what it says of the secret
/// (RFC 5530 section 3):
/// - `AUTHORIZATIONFAILED`: "authentication succeeded in using the authentication identity, but
///   the server cannot or will not allow [it] to act as the requested authorization identity":
///   the secret was right, which is what the outcome tells;
/// - `UNAVAILABLE` ("temporary failure because a subsystem is down", Dovecot's answer when its
///   password database is, whatever the password) and `SERVERBUG`: the server's failure, which
///   says nothing of the secret.
///
/// A refusal in clear (`PRIVACYREQUIRED`) stays a failure: the server refused the login, as its
/// posture counts it.
fn refusal_code<'a>(status: &[u8], text: &'a [u8]) -> Option<&'a [u8]> {
    // Right after the status (RFC 9051's resp-text): a bracket further on may be a user name
    // the server echoes, which the client chose.
    if !status.eq_ignore_ascii_case(b"NO") || !text.trim_ascii_start().starts_with(b"[") {
        return None;
    }
    parser::response_code(text).map(|code| split_word(code).0)
}

#[cfg(test)]
mod tests {
    use super::lists_unauthenticate;

    #[test]
    fn unauthenticate_is_found_as_a_whole_word_in_any_case() {
        assert!(lists_unauthenticate(b"IMAP4rev1 AUTH=PLAIN UNAUTHENTICATE"));
        assert!(lists_unauthenticate(b"unauthenticate IMAP4rev1"));
        assert!(lists_unauthenticate(b"UnAuthenticate"));
        assert!(!lists_unauthenticate(b"IMAP4rev1 XUNAUTHENTICATE UNAUTHENTICATEX AUTH=PLAIN"));
        assert!(!lists_unauthenticate(b"UNAUTHENTICAT"));
        assert!(!lists_unauthenticate(b""));
    }
}
