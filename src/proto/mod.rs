//! Mail protocols: detection, one session state machine per flow, and the parsers they own.
//!
//! This is the only module that ever holds a password. Plaintext lives in
//! [`secret::Secret`] (no `Debug` content, no `Serialize`, wiped on drop) and in transient line
//! buffers; what leaves is a [`ProtoEvent`] whose credential is already redacted by the
//! [`RedactionPolicy`]: user name masked or hashed, secret reduced to its kind, its length and an
//! optional keyed fingerprint.
//!
//! Layers per protocol: [`framing`] turns stream chunks into lines; a pure parser reads one line;
//! a session (sans-IO) tracks commands, replies and the authentication sub-state, and emits a
//! credential when its outcome is known (or `unknown` when the flow ends first).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod auth;
mod detect;
pub mod framing;
mod imap;
mod managesieve;
mod pop3;
pub mod sasl;
pub mod secret;
mod server;
mod smtp;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use zeroize::Zeroize as _;

use crate::alert::{
    AnomalyKind, AppProto, ClientIdentity, Outcome, RedactionPolicy, Remediation, SecretKind, ServerIdentity, UserKey,
    UsernameForm,
};
use crate::capture::Timestamp;
use crate::flow::Side;

pub use detect::PortMap;
pub use server::{ServerInfo, ServerLines};

use framing::{LineFramer, Next, Piece};

/// Settings the sessions need, resolved once from the command line.
#[derive(Clone, Debug)]
pub struct ProtoConfig {
    pub ports: PortMap,
    pub policy: RedactionPolicy,
    /// Longest line kept (longer ones are dropped and counted). OAuth tokens need a few KiB.
    pub max_line: usize,
    /// Bytes of a flow inspected (both directions) before it is let go, if no login came by then.
    pub inspection_depth: u64,
    /// Commands awaiting a reply that a session remembers (pipelining); the oldest is dropped past it.
    pub max_pending_commands: usize,
    /// Largest IMAP literal kept for parsing; larger ones are skipped unread.
    pub max_literal: usize,
}

impl ProtoConfig {
    /// Bytes one session holds at most, whatever the traffic ([`Session::buffered`]): a partial
    /// line per direction, the arguments of one IMAP command assembled across literals, and the
    /// commands and credentials awaiting a reply.
    pub fn max_session_buffered(&self) -> usize {
        let awaiting = imap::ImapSession::max_awaiting_bytes(self.max_pending_commands);
        self.max_line.saturating_mul(2).saturating_add(imap::max_command_bytes(self)).saturating_add(awaiting)
    }
}

impl Default for ProtoConfig {
    fn default() -> Self {
        ProtoConfig {
            ports: PortMap::default(),
            policy: RedactionPolicy::default(),
            max_line: 16 * 1024,
            inspection_depth: 256 * 1024,
            max_pending_commands: 32,
            max_literal: 16 * 1024,
        }
    }
}

/// A credential seen on a flow, redacted, without the flow's addressing (the caller adds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialEvent {
    pub ts: Timestamp,
    pub app_proto: AppProto,
    pub mechanism: Cow<'static, str>,
    pub secret: SecretKind,
    pub username: Option<String>,
    /// Who the user name belongs to: tells apart accounts the masked name merges.
    pub user_key: Option<UserKey>,
    pub username_form: UsernameForm,
    pub outcome: Outcome,
    pub secret_length: Option<usize>,
    pub secret_fingerprint: Option<String>,
    /// See [`crate::alert::Credential::partial`].
    pub partial: bool,
    pub server: ServerIdentity,
    pub client: ClientIdentity,
    pub remediation: Remediation,
}

/// What one mail session showed of its server, reported once when the session ends: the raw
/// material of the server inventory (TLS posture), whether or not anyone logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub ts: Timestamp,
    /// `None` for implicit TLS on a port that does not say which protocol it carries.
    pub app_proto: Option<AppProto>,
    pub server: ServerIdentity,
    /// The session switched to TLS with STARTTLS/STLS.
    pub upgraded_to_tls: bool,
    /// The session was TLS from its first byte.
    pub implicit_tls: bool,
    pub starttls_refused: bool,
    /// A login in clear was refused with a demand for TLS (IMAP's `[PRIVACYREQUIRED]`, SMTP's
    /// `538`, a refusal naming TLS).
    pub login_refused_for_tls: bool,
}

/// What a session reports. Not boxed: these pass through a reused buffer on their way to becoming
/// [`crate::alert::Event`]s (boxed there), and boxing them here too cost an allocation per event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtoEvent {
    Credential(CredentialEvent),
    SessionEnd(SessionRecord),
    Anomaly { ts: Timestamp, app_proto: Option<AppProto>, kind: AnomalyKind, detail: String },
}

/// Counters of what the sessions saw and could not use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtoStats {
    pub sessions_pop3: u64,
    pub sessions_imap: u64,
    pub sessions_smtp: u64,
    pub sessions_managesieve: u64,
    pub not_mail: u64,
    pub tls_flows: u64,
    pub starttls_upgrades: u64,
    pub authenticated: u64,
    pub depth_exceeded: u64,
    pub overlong_lines: u64,
    pub malformed_sasl: u64,
    pub pending_dropped: u64,
    pub gaps: u64,
}

/// What one call into a session may produce, and the context it needs.
pub struct Ctx<'a> {
    pub ts: Timestamp,
    /// The client line being read lost its end ([`Piece::Cut`]): a credential in it is partial.
    pub line_cut: bool,
    /// The bytes being read came in a segment that acknowledged exactly the other side's bytes
    /// delivered or lost before them ([`FlowEvent::Data`](crate::flow::FlowEvent)). Set by the
    /// caller of [`Session::on_data`], which keeps it for the client bytes it reads as they came
    /// (not those it held for a server's line), so that a protocol reading a client's command
    /// knows whether the client had received every reply sent before it.
    pub acked_all: bool,
    pub config: &'a ProtoConfig,
    pub events: &'a mut Vec<ProtoEvent>,
    pub stats: &'a mut ProtoStats,
    pub server_lines: &'a mut ServerLines,
}

/// What a [`Ctx`] borrows, owned in one place, for tests, fuzz harnesses and benchmarks that
/// drive sessions by hand (the engine keeps these parts apart, beside its flow table).
#[derive(Default)]
pub struct CtxParts {
    pub config: ProtoConfig,
    pub events: Vec<ProtoEvent>,
    pub stats: ProtoStats,
    pub server_lines: ServerLines,
}

impl CtxParts {
    /// A context at time `ts` borrowing these parts.
    pub fn ctx(&mut self, ts: Timestamp) -> Ctx<'_> {
        Ctx {
            ts,
            line_cut: false,
            acked_all: false,
            config: &self.config,
            events: &mut self.events,
            stats: &mut self.stats,
            server_lines: &mut self.server_lines,
        }
    }
}

/// Why a session stopped looking at its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoneReason {
    /// Authentication succeeded: nothing more to learn.
    Authenticated,
    /// The rest of the flow is TLS (implicit, or after STARTTLS).
    Tls,
    /// The flow does not speak a mail protocol.
    NotMail,
    /// The inspection depth was reached.
    DepthExceeded,
    /// The flow ended.
    Closed,
}

/// Which way a piece of the stream went, once the roles are known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// The per-protocol state machines, behind one enum so dispatch is static. Held inline, not
/// boxed: a session lives in its flow's inspection box already, and a second allocation cost
/// every inspected segment one more cache miss to reach it.
enum Protocol {
    Detecting(detect::Detector),
    Pop3(pop3::Pop3Session),
    Imap(imap::ImapSession),
    Smtp(smtp::SmtpSession),
    ManageSieve(managesieve::ManageSieveSession),
    Done(DoneReason),
}

impl Protocol {
    /// Whether the client's first bytes may be a mail client's, talking before the greeting.
    fn client_may_talk_first(&self, data: &[u8]) -> bool {
        match self {
            Protocol::Detecting(detector) => detector.may_be_mail_client_first_words(data),
            _ => false,
        }
    }

    /// Whether the client's bytes wait for the server before they are read: a multi-line
    /// greeting has begun (read before it ends, the client's first command would take the rest
    /// of the greeting for its reply, and every later command the reply before its own), or
    /// STARTTLS awaits its answer (refused, they are commands in clear; accepted, an injection).
    fn client_waits_for_server(&self) -> bool {
        let greeting_in_progress = match self {
            Protocol::Detecting(detector) => detector.greeting_in_progress(),
            Protocol::Smtp(session) => session.greeting_in_progress(),
            Protocol::ManageSieve(session) => session.greeting_in_progress(),
            Protocol::Pop3(_) | Protocol::Imap(_) | Protocol::Done(_) => false,
        };
        greeting_in_progress || self.awaiting_starttls_reply()
    }

    /// Whether at most one command awaits its reply: the server's next reply, whatever its place,
    /// cannot answer a command after the one it answers (see [`auth::LostReplies`]).
    fn awaits_at_most_one_reply(&self) -> bool {
        match self {
            Protocol::Pop3(session) => session.replies_awaited() <= 1,
            Protocol::Smtp(session) => session.replies_awaited() <= 1,
            Protocol::ManageSieve(session) => session.replies_awaited() <= 1,
            // Tags place IMAP's replies.
            Protocol::Imap(_) | Protocol::Detecting(_) | Protocol::Done(_) => true,
        }
    }

    /// Whether STARTTLS was asked for and awaits its answer.
    fn awaiting_starttls_reply(&self) -> bool {
        match self {
            Protocol::Pop3(session) => session.awaiting_starttls_reply(),
            Protocol::Imap(session) => session.awaiting_starttls_reply(),
            Protocol::Smtp(session) => session.awaiting_starttls_reply(),
            Protocol::ManageSieve(session) => session.awaiting_starttls_reply(),
            Protocol::Detecting(_) | Protocol::Done(_) => false,
        }
    }

    /// Whether the first line after a gap that fell between lines is read: from the client, when
    /// it looks like a command the session would take in its state (not inside a SASL exchange,
    /// message data or a literal, which the framer counts through a gap); from an IMAP server, a
    /// tagged status answering a command in flight (a verdict); from any server whose next line
    /// starts one as far as can be told (`resumes_at_line`: its first bytes were lost, the
    /// greeting, a whole reply sent before the client spoke, or the gap cut a line whose start was
    /// read), a status or reply line of its protocol: servers write their replies in whole lines,
    /// and a cut line's tail seldom looks like one; from an SMTP server, its `354` and `334` in
    /// any case (see [`smtp::is_data_go_ahead`], [`smtp::is_auth_challenge`]). Else it may be the
    /// tail of a line the gap cut, and is dropped.
    fn reads_line_after_gap(&self, role: Role, line: &[u8], resumes_at_line: bool) -> bool {
        match (self, role) {
            (Protocol::Imap(session), Role::Server) => session.takes_as_reply(line),
            (Protocol::Pop3(_), Role::Server) => resumes_at_line && pop3::is_status_line(line),
            (Protocol::Smtp(_), Role::Server) => {
                (resumes_at_line && smtp::is_reply_line(line))
                    || smtp::is_data_go_ahead(line)
                    || smtp::is_auth_challenge(line)
            }
            (Protocol::ManageSieve(_), Role::Server) => resumes_at_line && managesieve::is_status_line(line),
            (Protocol::Detecting(_) | Protocol::Done(_), Role::Server) => false,
            (Protocol::Pop3(session), Role::Client) => session.takes_as_command(line),
            (Protocol::Imap(session), Role::Client) => session.takes_as_command(line),
            (Protocol::Smtp(session), Role::Client) => session.takes_as_command(line),
            (Protocol::ManageSieve(session), Role::Client) => session.takes_as_command(line),
            (Protocol::Detecting(_) | Protocol::Done(_), Role::Client) => false,
        }
    }

    /// Whether the start of a client line whose end was lost is read: it carries a credential
    /// (the session's login commands and SASL responses), partial. Anything else may be cut
    /// anywhere, even in its command name, and is left as if lost whole.
    fn reads_cut_client_line(&self, line: &[u8]) -> bool {
        match self {
            Protocol::Pop3(session) => session.reads_cut_line(line),
            Protocol::Imap(session) => session.reads_cut_line(line),
            Protocol::Smtp(session) => session.reads_cut_line(line),
            Protocol::ManageSieve(session) => session.reads_cut_line(line),
            Protocol::Detecting(_) | Protocol::Done(_) => false,
        }
    }

    /// Whether the client's held bytes may be read now.
    fn reads_client(&self) -> bool {
        self.greeting_over() && !self.client_waits_for_server()
    }

    /// Whether the server's greeting is over, so that the client's held bytes may be read.
    fn greeting_over(&self) -> bool {
        match self {
            Protocol::Detecting(detector) => detector.greeting_over(),
            Protocol::Pop3(session) => session.greeting_over(),
            Protocol::Imap(session) => session.greeting_over(),
            Protocol::Smtp(session) => session.greeting_over(),
            Protocol::ManageSieve(session) => session.greeting_over(),
            Protocol::Done(_) => true,
        }
    }
}

/// What a protocol session asks of the framers after a piece.
pub(crate) struct Reply {
    pub next: Next,
    /// Change the other direction's framer too, as an answer to what it sent (see
    /// [`LineFramer::answered`]: a refused IMAP literal will not come, a lost LOGIN's literal
    /// comes next).
    pub other: Option<Next>,
    pub done: Option<DoneReason>,
}

impl Reply {
    pub fn next(next: Next) -> Reply {
        Reply { next, other: None, done: None }
    }
    pub fn line() -> Reply {
        Reply::next(Next::Line)
    }
    pub fn done(reason: DoneReason) -> Reply {
        Reply { next: Next::Stop, other: Some(Next::Stop), done: Some(reason) }
    }
}

/// The framer of one side and the other side's.
fn this_and_other(framers: &mut [LineFramer; 2], side: Side) -> (&mut LineFramer, &mut LineFramer) {
    let [lo, hi] = framers;
    match side {
        Side::Lo => (lo, hi),
        Side::Hi => (hi, lo),
    }
}

/// What the protocol's replies to the pieces of one side asked beyond that side's next mode:
/// the other side's next mode, and the session's end.
#[derive(Default)]
struct Asked {
    other: Option<Next>,
    done: Option<DoneReason>,
}

impl Asked {
    /// Notes a reply; returns the framer's next mode (none once the session ends).
    fn note(&mut self, reply: Reply) -> Next {
        if reply.other.is_some() {
            self.other = reply.other;
        }
        if let Some(reason) = reply.done {
            self.done = Some(reason);
            return Next::Stop;
        }
        reply.next
    }
}

/// What a loss did to the line it fell in (see [`Session::read_cut_line`]).
#[derive(Clone, Copy, Debug, Default)]
struct Cut {
    /// A line was held, and the loss cut it.
    happened: bool,
    /// It was the client's, and carried a credential.
    credential: bool,
}

/// One flow's application-layer state: detection, then a POP3, IMAP or SMTP session.
pub struct Session {
    /// Which side of the flow key is the client. Certain when the handshake was seen; otherwise
    /// a guess from ports that the first lines may correct.
    client: Side,
    roles_certain: bool,
    protocol: Protocol,
    /// Framers by flow side (not by role, so a role swap needs no re-framing).
    framers: [LineFramer; 2],
    seen_data: [bool; 2],
    /// The server's next line, the first after a gap, starts a line as far as can be told: the
    /// server's first bytes were lost before the client spoke (its greeting, which the client's
    /// acknowledgements showed sent, a whole reply), or the gap cut a line whose start was read.
    /// Until the server's next line is read.
    server_resumes_at_line: bool,
    /// The client's bytes read last came in a segment that acknowledged all the server's bytes
    /// ([`Ctx::acked_all`]): a line of theirs that a loss cuts was sent so.
    client_acked_all: bool,
    inspected: u64,
    /// The server port is an implicit-TLS port: what comes is TLS, unless the flow's first bytes
    /// are not.
    implicit_tls: Option<ImplicitTls>,
    /// The client's first bytes may still be held for the greeting: the server's opening is in
    /// the capture and neither side has sent data yet.
    may_hold: bool,
    /// The client's bytes that came before the server's greeting was over, or after STARTTLS
    /// before its answer, not framed yet (at most `max_line`, held instead of a partial line in
    /// the client's framer): framed once the server lets the client speak, so that the session
    /// sees them in the order the server did (see [`Session::on_data`]).
    early_client: Option<Box<HeldBytes>>,
}

/// Bytes held back, behind one pointer in the session: rarely any, and every inspected flow has
/// a session (see `a_session_stays_within_the_inspection_boxs_share`). They may hold a password:
/// no `Debug`, and wiped as a partial line is, when they outgrow their allocation, when bytes
/// read move down and when dropped.
#[derive(Default)]
struct HeldBytes {
    bytes: Vec<u8>,
    /// The start of the bytes not read yet. Each answer to a STARTTLS lets the session read the
    /// held bytes up to the next one: they are read where they lie, so that a client pipelining
    /// thousands of STARTTLS a server refuses costs a pass over its bytes, not one per answer.
    read: usize,
    /// Bytes that came after these while STARTTLS awaited its answer, past the bound: not kept,
    /// a gap where they were once the held bytes are read.
    dropped: u64,
}

impl HeldBytes {
    fn unread(&self) -> &[u8] {
        self.bytes.get(self.read..).unwrap_or_default()
    }

    /// Moves the unread bytes to the start, wiping the bytes they leave, before more are added.
    fn drop_read(&mut self) {
        if self.read == 0 {
            return;
        }
        let unread = self.bytes.len().saturating_sub(self.read);
        self.bytes.copy_within(self.read.., 0);
        if let Some(left) = self.bytes.get_mut(unread..) {
            left.zeroize();
        }
        self.bytes.truncate(unread);
        self.read = 0;
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        framing::wipe(&mut self.bytes);
    }
}

/// An implicit-TLS port and the protocol it conventionally carries.
#[derive(Clone, Copy, Debug)]
struct ImplicitTls {
    proto: Option<AppProto>,
    /// The flow's first bytes were text, not TLS: it is read as the port's protocol, and a mail
    /// session found in it is reported as an anomaly when it ends.
    cleartext: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .field("app_proto", &self.app_proto())
            .field("done", &self.done_reason())
            .finish()
    }
}

impl Session {
    /// A session for a new flow. `client` is the side that sent the SYN when `roles_certain`,
    /// else the guess from ports; `server_port` is that guess's server port.
    /// `server_opening_seen`: the server's SYN-ACK was in the capture, so its greeting, if it
    /// sent one, is too.
    pub fn new(
        client: Side,
        roles_certain: bool,
        server_opening_seen: bool,
        server_port: u16,
        config: &ProtoConfig,
    ) -> Session {
        let (hint, implicit_tls) = match config.ports.classify(server_port) {
            detect::PortClass::ImplicitTls => {
                // No hint yet: the port's protocol is assumed once the flow's first bytes show it
                // in clear (see `on_data`).
                (None, Some(ImplicitTls { proto: detect::implicit_tls_protocol(server_port), cleartext: false }))
            }
            detect::PortClass::Hint(proto) => (Some(proto), None),
            detect::PortClass::Unknown => (None, None),
        };
        let protocol = Protocol::Detecting(detect::Detector::new(hint, !server_opening_seen));
        Session {
            client,
            roles_certain,
            protocol,
            framers: [LineFramer::new(config.max_line), LineFramer::new(config.max_line)],
            seen_data: [false, false],
            server_resumes_at_line: false,
            client_acked_all: false,
            inspected: 0,
            may_hold: roles_certain && server_opening_seen,
            implicit_tls,
            early_client: None,
        }
    }

    /// The client side as currently understood.
    pub fn client(&self) -> Side {
        self.client
    }

    pub fn app_proto(&self) -> Option<AppProto> {
        match &self.protocol {
            Protocol::Pop3(_) => Some(AppProto::Pop3),
            Protocol::Imap(_) => Some(AppProto::Imap),
            Protocol::Smtp(_) => Some(AppProto::Smtp),
            Protocol::ManageSieve(_) => Some(AppProto::ManageSieve),
            Protocol::Detecting(_) | Protocol::Done(_) => None,
        }
    }

    /// Why the session stopped, or `None` while it still wants the flow's bytes.
    pub fn done_reason(&self) -> Option<DoneReason> {
        match self.protocol {
            Protocol::Done(reason) => Some(reason),
            _ => None,
        }
    }

    /// Bytes the session holds (partial lines, literals, credentials awaiting their verdicts),
    /// for memory accounting.
    pub fn buffered(&self) -> usize {
        let assembling = match &self.protocol {
            Protocol::Pop3(session) => session.buffered(),
            Protocol::Imap(session) => session.buffered(),
            Protocol::ManageSieve(session) => session.buffered(),
            _ => 0,
        };
        self.framers.iter().map(LineFramer::buffered).sum::<usize>()
            + assembling
            + self.early_client.as_ref().map_or(0, |held| held.bytes.len())
    }

    /// Memory is short: drop partial lines and a literal being assembled, as if bytes were lost
    /// (parsing resumes at the next line), and report the credentials awaiting their verdicts
    /// now, outcome unknown.
    pub fn shed(&mut self, ctx: &mut Ctx<'_>) {
        for framer in &mut self.framers {
            framer.gap(0);
        }
        self.early_client = None;
        match &mut self.protocol {
            Protocol::Pop3(session) => session.shed(ctx),
            Protocol::Imap(session) => session.shed(ctx),
            Protocol::ManageSieve(session) => session.shed(),
            _ => {}
        }
    }

    /// Reassembled bytes from one side of the flow.
    ///
    /// A client may talk before the server's greeting (a pipelining client, a spam bot that does
    /// not wait), and a capture of the two directions taken apart may show it doing so. Read in
    /// that order, the greeting would answer the client's first command and every reply after it
    /// the command before its own: a rejected password reported accepted, and on a port that is
    /// not configured, the flow not recognised at all. When the server's opening is in the
    /// capture, client bytes that come first and may be a mail client's are therefore held (up to
    /// `max_line`) until the greeting is over, then read.
    ///
    /// Likewise a client that does not wait for the answer to STARTTLS: what it sends before the
    /// answer is held, and read once the server refused TLS (it ran those commands in clear); if
    /// the server accepted, they were injected into what it took for TLS (an anomaly).
    pub fn on_data(&mut self, side: Side, data: &[u8], ctx: &mut Ctx<'_>) {
        let acked_all = std::mem::take(&mut ctx.acked_all);
        if self.done_reason().is_some() || data.is_empty() {
            return;
        }
        let first_from_side = !self.seen_data.get(side.index()).copied().unwrap_or(true);
        let first_in_flow = !self.seen_data.iter().any(|seen| *seen);
        if let Some(seen) = self.seen_data.get_mut(side.index()) {
            *seen = true;
        }
        if let Some(tls) = self.implicit_tls.as_mut().filter(|_| first_in_flow) {
            // Cleartext on a port meant for TLS: a server or client misconfigured (or a capture of
            // decrypted traffic), read so that a login there is not missed. With the handshake in
            // sight these are the flow's first bytes, and TLS's first byte is a record type (or
            // an SSLv2 hello's length, high bit set), whatever the segment sizes; picked up
            // midstream, they may be anywhere in a record, and only text is taken for clear.
            tls.cleartext = if self.roles_certain { !starts_like_tls(data) } else { looks_like_text(data) };
            // A line only a mail server or client opens with also names the protocol the port
            // carries (SMTP's 220 waits for EHLO otherwise), as does a login command of that
            // protocol from its client (the greeting lost); anything else in clear must show
            // itself mail as on a port not configured, so a scanner's probe is no session.
            let opens_mail = detect::looks_like_greeting(data)
                || detect::looks_like_client_command(data)
                || (side == self.client && self.roles_certain && detect::opens_login_of(tls.proto, data));
            if let (true, true, Protocol::Detecting(detector)) = (tls.cleartext, opens_mail, &mut self.protocol) {
                detector.assume(tls.proto);
            }
        }
        if self.implicit_tls.is_some_and(|tls| !tls.cleartext) || (first_from_side && looks_like_tls(data)) {
            ctx.stats.tls_flows += 1;
            if self.app_proto().is_some() {
                // TLS after a session in clear began, without STARTTLS (a client set up for
                // implicit TLS meeting a server in clear): the session ends, no upgrade.
                self.end(None, ctx);
            } else if let Some(tls) = self.implicit_tls.filter(|tls| tls.cleartext) {
                // A greeting in clear still waiting for the client's first command to name its
                // protocol (`220`, SMTP or FTP) when TLS came instead: flagged, no session.
                if let (Some(proto), true) = (tls.proto, self.protocol.greeting_over()) {
                    cleartext_on_tls_port(proto, ctx);
                }
            } else {
                ctx.events.push(ProtoEvent::SessionEnd(SessionRecord {
                    ts: ctx.ts,
                    app_proto: self.implicit_tls.and_then(|tls| tls.proto),
                    server: ServerIdentity::default(),
                    upgraded_to_tls: false,
                    implicit_tls: true,
                    starttls_refused: false,
                    login_refused_for_tls: false,
                }));
            }
            self.finish(DoneReason::Tls, ctx);
            return;
        }
        if first_in_flow && !self.roles_certain {
            self.guess_roles_from_first_bytes(side, data);
        }
        self.inspected = self.inspected.saturating_add(data.len() as u64);
        let from_client = side == self.client;
        let may_hold = std::mem::take(&mut self.may_hold);
        if from_client
            && (self.early_client.is_some()
                || self.protocol.client_waits_for_server()
                || (may_hold && self.protocol.client_may_talk_first(data)))
        {
            self.client_acked_all = false;
            if self.hold_client(data, ctx) {
                return;
            }
        } else {
            if from_client && acked_all {
                self.client_had_all_server_bytes();
            }
            if from_client {
                self.client_acked_all = acked_all;
            }
            ctx.acked_all = from_client && acked_all;
            let rest = self.frame(side, data, ctx);
            ctx.acked_all = false;
            if from_client {
                // The client's line asked to wait for the server's answer (STARTTLS).
                self.hold_client(rest, ctx);
            } else {
                self.read_after_greeting(side, rest, ctx);
            }
        }
        if !from_client && self.done_reason().is_none() && self.early_client.is_some() && self.protocol.reads_client() {
            // The server let the client speak with this data's last line.
            self.resume_client(ctx);
        }
        if self.done_reason().is_none() && self.inspected > ctx.config.inspection_depth {
            ctx.stats.depth_exceeded += 1;
            self.finish(DoneReason::DepthExceeded, ctx);
        }
    }

    /// The client spoke having received exactly the server's bytes so far ([`Ctx::acked_all`]):
    /// if they ended with a gap, the server's next line starts one. A client speaks after a
    /// whole reply, so what it had received ended at a line's end. The line is read only while
    /// at most one command awaits its reply: with more (a client pipelining), the lost bytes may
    /// have held some of their replies, and the line may answer a later command than the first.
    fn client_had_all_server_bytes(&mut self) {
        let server = self.framers.get(self.client.other().index());
        if server.is_some_and(|framer| framer.after_gap() && framer.buffered() == 0)
            && self.protocol.awaits_at_most_one_reply()
        {
            self.server_resumes_at_line = true;
        }
    }

    /// Holds client bytes until the server lets the client speak, up to `max_line` in all.
    /// Returns whether the bytes are held (or, past the bound behind STARTTLS, dropped).
    ///
    /// Past the bound before the greeting's end, too much came to be a mail client waiting for
    /// it, and everything is read in capture order after all. Behind STARTTLS, what the session
    /// would read now it could only throw away (the answer decides whether it was cleartext at
    /// all): the first `max_line` bytes stay held, so that a login among them is read after a
    /// refusal and an acceptance still reports the injection, and the rest is dropped, a gap
    /// where it was.
    fn hold_client(&mut self, data: &[u8], ctx: &mut Ctx<'_>) -> bool {
        if data.is_empty() || self.done_reason().is_some() {
            return false;
        }
        let max_line = ctx.config.max_line;
        let held = self.early_client.as_ref().map_or(0, |held| held.unread().len());
        if held.saturating_add(data.len()) <= max_line {
            let held = self.early_client.get_or_insert_default();
            held.drop_read();
            framing::append(&mut held.bytes, data, max_line);
            return true;
        }
        if self.protocol.awaiting_starttls_reply() {
            let room = max_line.saturating_sub(held).min(data.len());
            let (kept, dropped) = data.split_at(room);
            let held = self.early_client.get_or_insert_default();
            held.drop_read();
            framing::append(&mut held.bytes, kept, max_line);
            held.dropped = held.dropped.saturating_add(dropped.len() as u64);
            return true;
        }
        self.release_early_client(ctx);
        self.read_client_in_capture_order(data, ctx);
        false
    }

    /// Reads the client's held bytes in the order they came, whatever they ask for (the server's
    /// answer is lost, will not come, or more came than a client waiting for it sends).
    fn release_early_client(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(held) = self.early_client.take() {
            self.read_client_in_capture_order(held.unread(), ctx);
            self.lose(self.client, held.dropped, Cut::default(), false, ctx);
        }
    }

    /// Frames client bytes, not stopping where a line asks to wait for the server.
    fn read_client_in_capture_order(&mut self, mut data: &[u8], ctx: &mut Ctx<'_>) {
        while !data.is_empty() && self.done_reason().is_none() {
            data = self.frame(self.client, data, ctx);
        }
    }

    /// The server let the client speak: its held bytes are read, up to a line that asks to wait
    /// for the server again (a STARTTLS among them); the rest stays held, where it lies.
    fn resume_client(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(mut held) = self.early_client.take().filter(|_| self.done_reason().is_none()) {
            let unread = self.frame(self.client, held.unread(), ctx).len();
            held.read = held.bytes.len().saturating_sub(unread);
            if unread > 0 && self.done_reason().is_none() {
                self.early_client = Some(held);
            } else {
                self.lose(self.client, held.dropped, Cut::default(), false, ctx);
            }
        }
    }

    /// The server let the client speak before its `rest`: the client's held bytes are read
    /// first, and the server's after them, pausing again wherever the server lets the client
    /// speak.
    fn read_after_greeting(&mut self, server: Side, mut rest: &[u8], ctx: &mut Ctx<'_>) {
        while !rest.is_empty() && self.done_reason().is_none() {
            self.resume_client(ctx);
            rest = self.frame(server, rest, ctx);
        }
    }

    /// Frames one side's bytes and hands the pieces to the protocol. Returns what is left unread
    /// when the greeting ended while client bytes are held. Inlined: called for every chunk of
    /// every inspected flow (the other calls are rare).
    #[inline(always)]
    fn frame<'d>(&mut self, side: Side, data: &'d [u8], ctx: &mut Ctx<'_>) -> &'d [u8] {
        let Session { client, protocol, framers, early_client, server_resumes_at_line, .. } = self;
        let role = if side == *client { Role::Client } else { Role::Server };
        let client_held = role == Role::Server && early_client.is_some();
        let (framer, other_framer) = this_and_other(framers, side);
        let mut asked = Asked::default();
        let mut first_after_gap = framer.after_gap();
        let rest = framer.feed(data, &mut |piece| {
            let resumes_at_line = role == Role::Server && std::mem::take(server_resumes_at_line);
            if std::mem::take(&mut first_after_gap) {
                if let Piece::Line { line } = piece {
                    if !protocol.reads_line_after_gap(role, line, resumes_at_line) {
                        return Next::Line;
                    }
                }
            }
            let next = asked.note(dispatch(protocol, role, piece, ctx));
            if client_held && next == Next::Line && protocol.reads_client() {
                return Next::Pause;
            }
            next
        });
        if let Some(next) = asked.other {
            other_framer.answered(next);
        }
        if let Some(reason) = asked.done {
            self.finish_as(reason, ctx);
            return &[];
        }
        rest
    }

    /// The protocol said the session is over: an accepted STARTTLS reports what the client sent
    /// ahead of its answer, then the session finishes.
    fn finish_as(&mut self, reason: DoneReason, ctx: &mut Ctx<'_>) {
        if reason == DoneReason::Tls {
            self.report_injection(ctx);
        }
        self.finish(reason, ctx);
    }

    /// The server accepted STARTTLS: cleartext the client sent before that answer was meant to
    /// run as if it came over TLS (CVE-2011-0411 and its kin).
    fn report_injection(&self, ctx: &mut Ctx<'_>) {
        let injected =
            self.early_client.as_ref().is_some_and(|held| !held.unread().is_empty() && !looks_like_tls(held.unread()));
        if let Some(proto) = self.app_proto().filter(|_| injected) {
            starttls_injection(proto, ctx);
        }
    }

    /// Bytes were lost on one side.
    pub fn on_gap(&mut self, side: Side, len: u64, ctx: &mut Ctx<'_>) {
        self.on_loss(side, len, false, ctx);
    }

    /// The capture's snap length cut `len` bytes off the end of one side's last segment: the next
    /// bytes start the next segment.
    pub fn on_cut_off(&mut self, side: Side, len: u64, ctx: &mut Ctx<'_>) {
        self.on_loss(side, len, true, ctx);
    }

    /// Bytes were lost on one side; `cut_off` when a snap length cut them off a segment's end.
    fn on_loss(&mut self, side: Side, len: u64, cut_off: bool, ctx: &mut Ctx<'_>) {
        let seen = |session: &Session, side: Side| session.seen_data.get(side.index()).copied().unwrap_or(true);
        let first_bytes = len > 0 && !seen(self, side);
        let lost = len > 0;
        // A server line the loss cut is read first, while what is known of where it started
        // holds: the client's held bytes may wait for it (a greeting, STARTTLS's answer).
        let server_cut = if side == self.client || !lost { Cut::default() } else { self.read_cut_line(side, ctx) };
        if lost && side != self.client {
            // Where the server's bytes stood (a line's end, as a client that had them all showed)
            // tells nothing of where they resume after more were lost: the lost bytes may end
            // inside a line.
            self.server_resumes_at_line = false;
        }
        let detecting = matches!(self.protocol, Protocol::Detecting(_));
        if first_bytes && detecting && (side == self.client || !self.roles_certain) {
            // The client's first bytes, or a side's whose role is a guess: what comes next
            // starts a line as far as anything can tell, and it may be the opening that decides
            // the protocol.
            ctx.stats.gaps += 1;
            return;
        }
        if first_bytes && side != self.client && self.roles_certain {
            // The server's first bytes, the greeting: the client's opening tells the protocol as
            // when the handshake is out of sight. Sent before the client spoke (it has not), they
            // are the greeting alone, a whole reply, and the next line starts one.
            self.server_resumes_at_line = !seen(self, self.client);
            if let Protocol::Detecting(detector) = &mut self.protocol {
                detector.greeting_lost();
            }
        }
        // Whatever the client said before the gap comes after the server's cut line; past a
        // gap in the server's bytes, the greeting may be what was lost.
        if self.done_reason().is_none() {
            self.may_hold = false;
            self.release_early_client(ctx);
        }
        let cut = if side == self.client && lost && self.done_reason().is_none() {
            self.read_cut_line(side, ctx)
        } else {
            server_cut
        };
        if self.done_reason().is_none() {
            self.lose(side, len, cut, cut_off, ctx);
        } else if lost {
            // The cut line ended the session: the loss after it still counts.
            ctx.stats.gaps += 1;
        }
    }

    /// Reads the line the loss on `side` cut, as far as it came ([`Piece::Cut`]): a server's
    /// status or reply line gives its verdict, which is at its start; a client's login command or
    /// SASL response is a credential as far as it came. A server's line held as the first after an
    /// earlier gap is read only if the session would read it whole there.
    fn read_cut_line(&mut self, side: Side, ctx: &mut Ctx<'_>) -> Cut {
        let role = if side == self.client { Role::Client } else { Role::Server };
        let Session { protocol, framers, server_resumes_at_line, client_acked_all, .. } = self;
        let (framer, other_framer) = this_and_other(framers, side);
        let first_after_gap = framer.after_gap();
        let mut asked = Asked::default();
        let mut credential = false;
        let happened = framer.cut(&mut |piece| {
            if let Piece::Cut { line } = &piece {
                if role == Role::Server {
                    // The cut line is the server's next line: it consumes what the flag says of it.
                    let resumes_at_line = std::mem::take(server_resumes_at_line);
                    if first_after_gap && !protocol.reads_line_after_gap(role, line, resumes_at_line) {
                        return Next::Line;
                    }
                }
                // A client's cut line is read only as a credential, judged by its looks as the
                // first line after a gap is.
                credential = role == Role::Client && protocol.reads_cut_client_line(line);
            }
            ctx.line_cut = role == Role::Client;
            ctx.acked_all = role == Role::Client && *client_acked_all;
            let reply = dispatch(protocol, role, piece, ctx);
            ctx.line_cut = false;
            ctx.acked_all = false;
            asked.note(reply)
        });
        if let Some(next) = asked.other {
            other_framer.answered(next);
        }
        if let Some(reason) = asked.done {
            self.finish_as(reason, ctx);
        }
        Cut { happened, credential }
    }

    /// `len` bytes of one side will not be read, after the line they cut, if any, was read
    /// ([`Session::read_cut_line`]). After the server's cut line, its next line is read when it
    /// looks like a status or reply line (a tail of the cut line seldom does); after a client's
    /// credential, as any line (a client writes a command or a SASL response at once, so the next
    /// segment starts the next line); after any other client line, when a snap length cut it
    /// (`cut_off`), the next line is read when it looks like a command (the next segment's
    /// start), and when lost segments did, it is skipped as the tail: a command there may be the
    /// rest of a line such as a mail body's.
    fn lose(&mut self, side: Side, len: u64, cut: Cut, cut_off: bool, ctx: &mut Ctx<'_>) {
        if len == 0 {
            return;
        }
        ctx.stats.gaps += 1;
        let role = if side == self.client { Role::Client } else { Role::Server };
        let Some(framer) = self.framers.get_mut(side.index()) else { return };
        if cut.happened && role == Role::Client && !cut.credential && !cut_off {
            framer.skip_cut_tail();
        }
        self.server_resumes_at_line |= cut.happened && role == Role::Server;
        // Lost inside a literal whose length was announced: the framer counts the lost bytes
        // through it, and the command it belongs to goes on after it. A loss that starts inside
        // one cut it short (a snap length's, say).
        let literal_left = framer.raw_remaining().filter(|_| role == Role::Client);
        let in_literal = literal_left.is_some_and(|left| len <= left);
        let literal_ends = literal_left == Some(len);
        framer.gap(len);
        if cut.credential {
            framer.resume_at_line();
        }
        match &mut self.protocol {
            Protocol::Pop3(session) => session.on_gap(role),
            Protocol::Imap(session) if in_literal => session.on_client_gap_in_literal(literal_ends, ctx),
            Protocol::Imap(session) => session.on_gap(role),
            Protocol::Smtp(session) => session.on_gap(role),
            Protocol::ManageSieve(session) if literal_left.is_some() => {
                session.on_client_gap_in_literal(literal_left.is_some_and(|left| len >= left), ctx);
            }
            Protocol::ManageSieve(session) => session.on_gap(role),
            Protocol::Detecting(_) | Protocol::Done(_) => {}
        }
        if role == Role::Client && !cut.happened && !in_literal {
            match &mut self.protocol {
                Protocol::Pop3(session) => session.on_client_lost_between_lines(),
                Protocol::Smtp(session) => session.on_client_lost_between_lines(),
                Protocol::ManageSieve(session) => session.on_client_lost_between_lines(),
                // Tags place IMAP's replies.
                Protocol::Imap(_) | Protocol::Detecting(_) | Protocol::Done(_) => {}
            }
        }
    }

    /// The flow ended (FIN, RST, timeout, eviction or end of input): credentials still waiting for
    /// their outcome are reported as `unknown`.
    pub fn close(&mut self, ctx: &mut Ctx<'_>) {
        self.release_early_client(ctx);
        self.end(None, ctx);
    }

    /// Reports what is pending and what the session showed of its server, once.
    fn end(&mut self, reason: Option<DoneReason>, ctx: &mut Ctx<'_>) {
        let (proto, info) = match &mut self.protocol {
            Protocol::Pop3(session) => {
                session.flush(ctx);
                (AppProto::Pop3, session.info())
            }
            Protocol::Imap(session) => {
                session.flush(ctx);
                (AppProto::Imap, session.info())
            }
            Protocol::Smtp(session) => {
                session.flush(ctx);
                (AppProto::Smtp, session.info())
            }
            Protocol::ManageSieve(session) => {
                session.flush(ctx);
                (AppProto::ManageSieve, session.info())
            }
            Protocol::Detecting(_) | Protocol::Done(_) => return,
        };
        if self.implicit_tls.take().is_some() {
            cleartext_on_tls_port(proto, ctx);
        }
        ctx.events.push(ProtoEvent::SessionEnd(SessionRecord {
            ts: ctx.ts,
            app_proto: Some(proto),
            server: info.identity(),
            upgraded_to_tls: reason == Some(DoneReason::Tls),
            implicit_tls: false,
            starttls_refused: info.starttls_refused,
            login_refused_for_tls: info.login_refused_for_tls,
        }));
        self.protocol = Protocol::Done(reason.unwrap_or(DoneReason::Closed));
    }

    fn finish(&mut self, reason: DoneReason, ctx: &mut Ctx<'_>) {
        match reason {
            DoneReason::Authenticated => ctx.stats.authenticated += 1,
            DoneReason::NotMail => ctx.stats.not_mail += 1,
            DoneReason::Tls | DoneReason::DepthExceeded | DoneReason::Closed => {}
        }
        self.end(Some(reason), ctx);
        self.protocol = Protocol::Done(reason);
        self.early_client = None;
        for framer in &mut self.framers {
            framer.set_next(Next::Stop);
        }
    }

    /// Without a handshake the roles come from ports; a first line that only the other role
    /// sends (a greeting from the presumed client, a mail client's opening command from the
    /// presumed server) proves them wrong.
    fn guess_roles_from_first_bytes(&mut self, side: Side, data: &[u8]) {
        let wrong = if side == self.client {
            detect::looks_like_greeting(data)
        } else {
            detect::looks_like_client_command(data)
        };
        if wrong {
            self.client = self.client.other();
        }
    }

    /// Statistics hook: count the protocol once it is known.
    pub(crate) fn count_protocol(proto: AppProto, stats: &mut ProtoStats) {
        match proto {
            AppProto::Pop3 => stats.sessions_pop3 += 1,
            AppProto::Imap => stats.sessions_imap += 1,
            AppProto::Smtp => stats.sessions_smtp += 1,
            AppProto::ManageSieve => stats.sessions_managesieve += 1,
        }
    }
}

fn dispatch(protocol: &mut Protocol, role: Role, piece: Piece<'_>, ctx: &mut Ctx<'_>) -> Reply {
    if let Piece::Overflow = piece {
        ctx.stats.overlong_lines += 1;
    }
    match protocol {
        Protocol::Detecting(detector) => match detector.on_piece(role, &piece, ctx) {
            detect::Verdict::Undecided => Reply::line(),
            detect::Verdict::NotMail => Reply::done(DoneReason::NotMail),
            detect::Verdict::Protocol { proto, replay } => {
                Session::count_protocol(proto, ctx.stats);
                let mut session = match proto {
                    AppProto::Pop3 => Protocol::Pop3(pop3::Pop3Session::default()),
                    AppProto::Imap => Protocol::Imap(imap::ImapSession::new(detector.connection_start_seen())),
                    AppProto::Smtp => Protocol::Smtp(smtp::SmtpSession::default()),
                    AppProto::ManageSieve => Protocol::ManageSieve(managesieve::ManageSieveSession::default()),
                };
                for greeting in &replay {
                    let reply = dispatch_to(&mut session, Role::Server, Piece::Line { line: greeting }, ctx);
                    if reply.done.is_some() {
                        *protocol = session;
                        return reply;
                    }
                }
                let reply = dispatch_to(&mut session, role, piece, ctx);
                *protocol = session;
                reply
            }
        },
        other => dispatch_to(other, role, piece, ctx),
    }
}

fn dispatch_to(protocol: &mut Protocol, role: Role, piece: Piece<'_>, ctx: &mut Ctx<'_>) -> Reply {
    match protocol {
        Protocol::Pop3(session) => session.on_piece(role, piece, ctx),
        Protocol::Imap(session) => session.on_piece(role, piece, ctx),
        Protocol::Smtp(session) => session.on_piece(role, piece, ctx),
        Protocol::ManageSieve(session) => session.on_piece(role, piece, ctx),
        Protocol::Detecting(_) => Reply::line(),
        Protocol::Done(reason) => Reply::done(*reason),
    }
}

/// Splits a line at its first space: a verb (or tag) and the rest, spaces included (passwords
/// and some user names contain spaces). For IMAP, whose grammar and servers take exactly one
/// space; POP3 and SMTP commands go through [`split_command_word`].
pub(crate) fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', line) {
        Some(space) => (line.get(..space).unwrap_or(line), line.get(space + 1..).unwrap_or(&[])),
        None => (line, &[]),
    }
}

/// Splits a POP3 or SMTP command line at its first run of blanks (spaces or tabs): the first word
/// and the rest, inner blanks included. Servers skip any run of white space between words
/// (Postfix's `smtpd_token.c`), so they run `AUTH  PLAIN` and `AUTH\tPLAIN` as any other.
pub(crate) fn split_command_word(line: &[u8]) -> (&[u8], &[u8]) {
    let (word, after) = split_verb(line);
    (word, skip_blanks(after))
}

/// The first word of a command line (up to a space or tab) and what follows it, the blanks that
/// separate them included.
pub(crate) fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    let end = line.iter().position(|byte| is_blank(*byte)).unwrap_or(line.len());
    line.split_at(end)
}

/// `bytes` without the blanks it starts with.
pub(crate) fn skip_blanks(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|byte| !is_blank(*byte)).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or(&[])
}

pub(crate) fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// Cleartext commands sent behind STARTTLS before the server accepted it: a server that buffers
/// them would run them as if they came over TLS (CVE-2011-0411 and its kin).
fn starttls_injection(proto: AppProto, ctx: &mut Ctx<'_>) {
    ctx.events.push(ProtoEvent::Anomaly {
        ts: ctx.ts,
        app_proto: Some(proto),
        kind: AnomalyKind::StarttlsCommandInjection,
        detail: "cleartext data followed the STARTTLS command before the server accepted it".into(),
    });
}

/// A mail session in clear on an implicit-TLS port: every login in it crossed the network in
/// clear, where the port promised TLS (or the capture is of decrypted traffic, which this says).
fn cleartext_on_tls_port(proto: AppProto, ctx: &mut Ctx<'_>) {
    ctx.events.push(ProtoEvent::Anomaly {
        ts: ctx.ts,
        app_proto: Some(proto),
        kind: AnomalyKind::CleartextOnTlsPort,
        detail: format!(
            "{} in clear on a port for implicit TLS (a misconfigured server or client, or a capture of decrypted traffic)",
            proto.name()
        ),
    });
}

/// Whether a flow's first byte is TLS's: a record type (change cipher spec, alert, handshake,
/// application data) or an SSLv2 hello's length, high bit set. No text protocol starts so.
fn starts_like_tls(data: &[u8]) -> bool {
    data.first().is_some_and(|first| matches!(first, 0x14..=0x17) || first & 0x80 != 0)
}

/// Whether bytes read as the lines of a text protocol: their start (up to 64 bytes) UTF-8 without
/// controls but blanks and line ends (a character cut at the end aside), and either a line end in
/// it or at least 16 bytes. Ciphertext passes by chance only: 16 bytes of it far less than once
/// in 5 million, 64 bytes about never.
fn looks_like_text(data: &[u8]) -> bool {
    let start = data.get(..64).unwrap_or(data);
    let utf8 = match std::str::from_utf8(start) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none(),
    };
    let no_controls = start.iter().all(|byte| !byte.is_ascii_control() || matches!(byte, b'\t' | b'\r' | b'\n'));
    utf8 && no_controls && (start.len() >= 16 || start.contains(&b'\n'))
}

/// A TLS record header (handshake, TLS 1.0–1.3) or an SSLv2-style hello.
fn looks_like_tls(data: &[u8]) -> bool {
    matches!(data, [0x16, 0x03, minor, ..] if *minor <= 0x04)
        || matches!(data, [first, _, 0x01, 0x03 | 0x00, ..] if first & 0x80 != 0)
}
