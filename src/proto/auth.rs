//! Authentication bookkeeping shared by the mail protocols: the SASL exchange state machine, and
//! credentials waiting for the server's verdict.
//!
//! Secrets are reduced here, at the moment they are complete, to what may leave this module:
//! their kind, their length and (only with a key) a keyed fingerprint.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::collections::VecDeque;

use zeroize::Zeroizing;

use super::sasl::{self, Mechanism, NtlmMessage};
use super::secret::Secret;
use super::server::ServerInfo;
use super::{CredentialEvent, Ctx, ProtoEvent};
use crate::alert::{AppProto, Outcome, SecretKind, KEYED_HEX_LEN};
use crate::capture::Timestamp;

/// A user name as the client sent it, before the redaction policy: its `Debug` shows its length
/// only, since a raw name must not reach a log or panic message in masked mode.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct RawUser(Vec<u8>);

/// The longest user name kept, in bytes: a mail address has at most 254 (RFC 5321's path limit,
/// less its brackets). A credential is held until its verdict, 32 of them a session, so what a
/// client names is kept within this; a longer "name" is no account and is not reported.
pub(crate) const MAX_USER_NAME: usize = 256;

impl RawUser {
    /// The name, unless it is longer than any account's ([`MAX_USER_NAME`]).
    pub fn kept(name: impl Into<RawUser>) -> Option<RawUser> {
        Some(name.into()).filter(|name| name.0.len() <= MAX_USER_NAME)
    }
}

impl From<Vec<u8>> for RawUser {
    fn from(bytes: Vec<u8>) -> Self {
        RawUser(bytes)
    }
}

impl std::ops::Deref for RawUser {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for RawUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawUser(len={})", self.0.len())
    }
}

/// A credential whose secret was complete, reduced to what may be reported (no secret is
/// left in it; the user name is a [`RawUser`]).
#[derive(Debug)]
pub(crate) struct Captured {
    pub user: Option<RawUser>,
    pub kind: SecretKind,
    pub secret_length: Option<usize>,
    pub fingerprint: Option<String>,
    /// Only the start of it was captured (see [`crate::alert::Credential::partial`]).
    pub partial: bool,
}

impl Captured {
    /// Reduces a reusable secret (password or token) to its length and optional fingerprint;
    /// the secret itself is wiped when it goes out of scope. From a cut line ([`Ctx::line_cut`])
    /// the secret is only its start: the credential is partial, its length and fingerprint
    /// unknown.
    pub fn reusable(user: Option<impl Into<RawUser>>, kind: SecretKind, secret: &Secret, ctx: &Ctx<'_>) -> Captured {
        let whole = !ctx.line_cut;
        Captured {
            user: user.and_then(RawUser::kept),
            kind,
            secret_length: whole.then(|| secret.len()),
            fingerprint: ctx
                .config
                .policy
                .fingerprint_key
                .as_ref()
                .filter(|_| whole)
                .map(|key| secret.fingerprint(key)),
            partial: !whole,
        }
    }

    /// A reusable secret that crossed in clear whole but that the capture holds only part of
    /// (lost bytes inside an IMAP literal): partial, its length and fingerprint unknown.
    pub fn partly_lost(user: Option<impl Into<RawUser>>, kind: SecretKind) -> Captured {
        Captured { user: user.and_then(RawUser::kept), kind, secret_length: None, fingerprint: None, partial: true }
    }

    pub fn challenge_response(user: Option<impl Into<RawUser>>) -> Captured {
        Captured {
            user: user.and_then(RawUser::kept),
            kind: SecretKind::ChallengeResponse,
            secret_length: None,
            fingerprint: None,
            partial: false,
        }
    }
}

/// Server bytes were lost while a credential awaited its verdict with commands pipelined behind
/// it, where replies come in the order of the commands (POP3, SMTP, ManageSieve): the verdict may
/// have been among the lost bytes, and the next reply may answer one of those commands, so the
/// credential is reported unknown before anything else is read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LostVerdict(bool);

impl LostVerdict {
    /// Server bytes were lost: notes whether a credential's verdict may have been among them.
    /// `awaiting`: a credential awaits the verdict to `auth`, the last such command in `pending`.
    pub fn on_server_gap<C: PartialEq>(&mut self, awaiting: bool, pending: &VecDeque<C>, auth: &C) {
        let followed = pending.iter().rposition(|command| command == auth).is_some_and(|at| at + 1 < pending.len());
        self.0 |= awaiting && followed;
    }

    /// Whether the verdict was lost; asked once, before the next line is read.
    pub fn take(&mut self) -> bool {
        std::mem::take(&mut self.0)
    }
}

/// Server bytes were lost after the client's last line was read. A client that waits for each
/// reply sends its next command once it has the reply to its last one: when the client's first
/// line after the loss is a command, sent having received exactly the server's bytes so far, the
/// lost ones included ([`Ctx::acked_all`]), and one command awaited its reply, that reply was
/// among them (or among lines after them that did not read as replies) and will not come. The
/// next reply is then the new command's: without this, every reply after a lost one answers the
/// command before its own (a refused password reported accepted, and the other way round).
///
/// More commands awaiting replies show a client pipelining: it may have received some of their
/// replies and not the others, which are still to come, so nothing is told from it. Nor from a
/// first line that is no command (message data after a lost `354`, a SASL response after a lost
/// challenge: the lost reply was not the final one).
///
/// The client's next command may be lost too: client bytes lost whole after a complete
/// credential (no line of its exchange is still to come) are a command sent after the verdict,
/// or pipelined behind the credential. When server bytes were lost as well before the server's
/// next line, that line cannot be told the verdict: it may answer the lost command, the verdict
/// among the lost bytes (read as the verdict, it would report a refused password accepted).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LostReplies {
    /// Server bytes were lost since the client's last line.
    server: bool,
    /// A command of the client was lost since the server's last line, a credential awaiting its
    /// verdict.
    client_command: bool,
}

impl LostReplies {
    pub fn on_server_gap(&mut self) {
        self.server = true;
    }

    /// Client bytes were lost between lines while a complete credential awaited its verdict.
    pub fn on_client_command_lost(&mut self) {
        self.client_command = true;
    }

    /// The client's first line after the loss is being read, `awaiting` commands awaiting their
    /// replies: whether, if it is a command, the one reply awaited was lost.
    pub fn take(&mut self, awaiting: usize, ctx: &Ctx<'_>) -> bool {
        std::mem::take(self).server && ctx.acked_all && awaiting == 1
    }

    /// A server line is being read, `awaiting` commands awaiting their replies: whether the one
    /// reply awaited may have been lost with the client's command after it, so that this line
    /// tells nothing of it.
    pub fn lost_with_next_command(&mut self, awaiting: usize) -> bool {
        let client_command = std::mem::take(&mut self.client_command);
        let lost = self.server && client_command && awaiting == 1;
        self.server &= !lost;
        lost
    }
}

/// The replies the `pending` commands await were lost ([`LostReplies`]): the queue empties, and
/// a capability list among them (asked by `listing`) says nothing of what the server lacks.
pub(crate) fn forget_pending<C: PartialEq>(pending: &mut VecDeque<C>, listing: &C, info: &mut ServerInfo) {
    if pending.contains(listing) {
        info.capabilities_cut();
    }
    pending.clear();
}

/// Takes the last `auth` command out of a queue of commands awaiting their replies in order: its
/// verdict will not be seen, and the next reply answers the command it belongs to.
pub(crate) fn forget_last<C: PartialEq>(pending: &mut VecDeque<C>, auth: &C) {
    if let Some(at) = pending.iter().rposition(|command| command == auth) {
        pending.remove(at);
    }
}

/// A credential sent by the client, waiting for the server's verdict.
#[derive(Debug)]
pub(crate) struct PendingCredential {
    /// Capture time of the packet that completed the credential.
    pub ts: Timestamp,
    pub mechanism: Cow<'static, str>,
    pub captured: Captured,
    /// What the client had seen of the server when it sent the secret: the alert describes that,
    /// not the capabilities a server announces after the login.
    server: ServerInfo,
}

/// The most memory one credential awaiting its verdict under a key of `key_bytes` holds, as
/// [`awaiting_bytes`] counts it: its place in the queue, the longest user name kept and a
/// fingerprint's hex.
pub(crate) const fn max_awaiting_bytes<K>(key_bytes: usize) -> usize {
    std::mem::size_of::<(K, PendingCredential)>() + key_bytes + MAX_USER_NAME + KEYED_HEX_LEN
}

/// Memory a queue of credentials awaiting their verdicts holds (a session keeps up to 32), for
/// the flows' global budget: its places, allocated or not, and what the credentials and their
/// keys (`key_bytes`) hold.
pub(crate) fn awaiting_bytes<K>(queue: &VecDeque<(K, PendingCredential)>, key_bytes: impl Fn(&K) -> usize) -> usize {
    let places = queue.capacity() * std::mem::size_of::<(K, PendingCredential)>();
    places + queue.iter().map(|(key, pending)| key_bytes(key) + pending.heap_bytes()).sum::<usize>()
}

/// Memory is short: the credentials awaiting their verdicts are reported now, outcome unknown,
/// and their queue's memory is freed.
pub(crate) fn shed_awaiting<K>(queue: &mut VecDeque<(K, PendingCredential)>, proto: AppProto, ctx: &mut Ctx<'_>) {
    for (_, pending) in std::mem::take(queue) {
        pending.emit(proto, Outcome::Unknown, ctx);
    }
}

/// Holds a credential until the server's verdict; past `max_pending_commands` of them (a client
/// pipelining logins the capture shows no reply to) the oldest is reported now, with outcome
/// unknown, rather than kept without limit. `K` is what the reply is matched by (POP3's command,
/// IMAP's tag).
pub(crate) fn await_verdict<K>(
    queue: &mut VecDeque<(K, PendingCredential)>,
    key: K,
    pending: PendingCredential,
    proto: AppProto,
    ctx: &mut Ctx<'_>,
) {
    if queue.len() >= ctx.config.max_pending_commands {
        if let Some((_, oldest)) = queue.pop_front() {
            oldest.emit(proto, Outcome::Unknown, ctx);
        }
    }
    queue.push_back((key, pending));
}

impl PendingCredential {
    pub fn new(
        mechanism: impl Into<Cow<'static, str>>,
        captured: Captured,
        server: &ServerInfo,
        ctx: &Ctx<'_>,
    ) -> Self {
        PendingCredential { ts: ctx.ts, mechanism: mechanism.into(), captured, server: server.clone() }
    }

    /// The server's reply to a command the client sent before the credential, without waiting for
    /// it (pipelining, or Exim's PIPECONNECT sending `EHLO` and `AUTH` before the greeting), came
    /// after the credential was read: the alert describes the server as that reply shows it (its
    /// capabilities, STARTTLS offered), as it would had the client waited.
    pub fn server_replied(&mut self, server: &ServerInfo) {
        self.server = server.clone();
    }

    /// Memory the credential holds besides its own size: the user name and the fingerprint.
    fn heap_bytes(&self) -> usize {
        self.captured.user.as_deref().map_or(0, <[u8]>::len) + self.captured.fingerprint.as_ref().map_or(0, String::len)
    }

    /// Reports the credential with its outcome.
    pub fn emit(self, proto: AppProto, outcome: Outcome, ctx: &mut Ctx<'_>) {
        let info = &self.server;
        let username = self.captured.user.as_deref().map(|user| ctx.config.policy.render_username(user));
        let user_key = self.captured.user.as_deref().map(|user| ctx.config.policy.user_key(user));
        ctx.events.push(ProtoEvent::Credential(CredentialEvent {
            ts: self.ts,
            app_proto: proto,
            mechanism: self.mechanism,
            secret: self.captured.kind,
            username,
            user_key,
            username_form: ctx.config.policy.username_form(),
            outcome,
            secret_length: self.captured.secret_length,
            secret_fingerprint: self.captured.fingerprint,
            partial: self.captured.partial,
            server: info.identity(),
            client: info.client_identity(),
            remediation: info.remediation(outcome),
        }));
    }
}

/// What a SASL client response did to the exchange.
#[derive(Debug)]
pub(crate) enum SaslStep {
    /// More steps may follow; nothing to report yet.
    Continue,
    /// The response completed a credential.
    Captured(Captured),
    /// The client cancelled the exchange (`*`).
    Cancelled,
    /// Not valid base64, or not of the mechanism's shape (counted, never fatal).
    Malformed,
}

/// One SASL exchange (RFC 4422) on any of the three protocols.
pub(crate) struct SaslExchange {
    mechanism: Mechanism,
    /// Client responses so far, malformed ones included: LOGIN tells its user name from its
    /// password by position alone.
    responses: u8,
    /// The user name from an early response: LOGIN's first, SCRAM's client-first message.
    early_user: Option<Vec<u8>>,
    /// That response's line lost its end: the user name may be cut short.
    early_user_cut: bool,
    captured: bool,
    /// Server bytes were lost since the last challenge: the verdict may have been among them.
    server_gap: bool,
    /// The command that began the exchange was lost: its mechanism is told by what it carries
    /// (see [`SaslExchange::after_lost_command`]).
    inferred: Option<InferredLogin>,
    /// The client's next line after lost bytes is a response, whole: the exchange began unseen
    /// and no response came yet, nor was a client byte lost since (the lost bytes before the
    /// challenge ended with the lost command's line); or LOGIN lost its user name response whole
    /// (see `user_lost`), and the next line is the password.
    first_response_next: bool,
    /// Client bytes were lost between lines where LOGIN's user name response was due, and no
    /// challenge came since: whether they end where that response did is not known yet.
    user_lost: bool,
    /// A client line came after that loss, no challenge between: the user name's end if the
    /// `Password:` prompt comes next; the password, or its end, if server bytes are lost (the
    /// prompt among them) and the verdict comes next (see
    /// [`password_before_verdict`](Self::password_before_verdict)). Nothing of it is kept.
    line_after_lost_user: bool,
}

/// Where an exchange whose command was lost stands, as far as LOGIN goes: its prompts name their
/// step, and a response to a lost prompt is the one after the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InferredLogin {
    /// No LOGIN prompt seen: only a self-describing response (PLAIN, XOAUTH2) is read.
    Unknown,
    /// `Username:` was asked: the next response names the user (not kept: the command is lost,
    /// so its position is not known, and a password must never be shown as a user name).
    User,
    /// `Password:` was asked, or the response after the user name is next.
    Password,
}

/// The early user name is shown by its length only: LOGIN's first response is meant to be the
/// user name, but a misbehaving client may have put anything there.
impl std::fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .field("responses", &self.responses)
            .field("early_user_len", &self.early_user.as_ref().map(Vec::len))
            .field("early_user_cut", &self.early_user_cut)
            .field("captured", &self.captured)
            .field("server_gap", &self.server_gap)
            .field("inferred", &self.inferred)
            .field("first_response_next", &self.first_response_next)
            .field("user_lost", &self.user_lost)
            .field("line_after_lost_user", &self.line_after_lost_user)
            .finish()
    }
}

impl SaslExchange {
    pub fn new(mechanism_name: &[u8]) -> Self {
        SaslExchange {
            mechanism: Mechanism::from_name(mechanism_name),
            responses: 0,
            early_user: None,
            early_user_cut: false,
            captured: false,
            server_gap: false,
            inferred: None,
            first_response_next: false,
            user_lost: false,
            line_after_lost_user: false,
        }
    }

    /// An exchange shown by a challenge to a command the capture lost (`AUTH` and its mechanism
    /// with it). A Wireshark user still reads such an exchange: a PLAIN or XOAUTH2 response says
    /// what it holds, and LOGIN's prompts (`Username:`, `Password:`, base64 in the challenge)
    /// say which response is the password. The user name of LOGIN is not kept.
    pub fn after_lost_command() -> Self {
        SaslExchange { inferred: Some(InferredLogin::Unknown), first_response_next: true, ..SaslExchange::new(b"") }
    }

    /// Whether `line`, the client's first after lost bytes, is read: the first response of an
    /// exchange whose command was among them (the challenge answered that whole line), LOGIN's
    /// password after its user name response was lost, or a line where that response was due
    /// (see `line_after_lost_user`).
    pub fn takes_first_line_after_gap(&self, line: &[u8]) -> bool {
        (self.first_response_next || self.user_lost) && self.continues_with(line)
    }

    /// Client bytes were lost between lines: a line after them may be a tail. Where LOGIN's user
    /// name was due, they began with it (the client sends nothing else then); a challenge after
    /// them shows it whole (see [`on_challenge`](Self::on_challenge)).
    pub fn on_client_gap(&mut self) {
        self.first_response_next = false;
        self.line_after_lost_user = false;
        self.user_lost = !self.captured
            && match self.inferred {
                Some(InferredLogin::User) => true,
                Some(InferredLogin::Unknown | InferredLogin::Password) => false,
                None => self.mechanism == Mechanism::Login && self.responses == 0,
            };
    }

    /// The text of a challenge (base64), for an exchange whose command was lost: LOGIN's prompts
    /// tell which step comes.
    pub fn on_prompt(&mut self, text: &[u8]) {
        let Some(inferred) = &mut self.inferred else { return };
        let Ok(prompt) = sasl::decode_base64(text.trim_ascii()) else { return };
        match sasl::login_prompt(&prompt) {
            Some(sasl::LoginPrompt::User) => *inferred = InferredLogin::User,
            Some(sasl::LoginPrompt::Password) => *inferred = InferredLogin::Password,
            None => {}
        }
    }

    pub fn mechanism(&self) -> &Mechanism {
        &self.mechanism
    }

    /// The credential is complete and no server byte was lost since: a command the client sends
    /// now was sent behind it without waiting (pipelined), and the verdict still comes.
    pub fn verdict_still_comes(&self) -> bool {
        self.captured && !self.server_gap
    }

    /// A server challenge (`+ …`, `334 …`): the exchange goes on, whatever server bytes were lost
    /// before it. Its text is not read: LOGIN's prompts do not decide which response is which.
    pub fn on_challenge(&mut self) {
        self.server_gap = false;
        self.line_after_lost_user = false;
        if std::mem::take(&mut self.user_lost) {
            // The server asks again having had the lost bytes up to its acknowledgement (the
            // flow gives them up to there): they were LOGIN's user name response, whole, and the
            // next line is the password's response, whole. A loss after the challenge would be
            // a gap of its own.
            self.responses = 1;
            if self.inferred.is_some() {
                self.inferred = Some(InferredLogin::Password);
            }
            self.first_response_next = true;
        }
    }

    /// Bytes of the server's side were lost: they may have held the verdict.
    pub fn on_server_gap(&mut self) {
        self.server_gap = true;
    }

    /// The server's final reply to the exchange came (not a challenge). When a client line
    /// followed the loss of LOGIN's user name response and server bytes were lost after it was
    /// asked for, the lost bytes held the `Password:` prompt (the client answers nothing else),
    /// so that line was the password or its end, the response the verdict answers: it crossed
    /// in clear, and is reported partial (where it began is not known), with no user name.
    /// The credential, named after the protocol's command (`verb`), awaits the verdict like any.
    pub fn password_before_verdict(
        &mut self,
        verb: &str,
        server: &ServerInfo,
        ctx: &Ctx<'_>,
    ) -> Option<PendingCredential> {
        if !(self.line_after_lost_user && self.server_gap) || self.captured {
            return None;
        }
        self.captured = true;
        self.mechanism = Mechanism::Login;
        let captured = Captured::partly_lost(None::<Vec<u8>>, SecretKind::Password);
        Some(PendingCredential::new(self.mechanism.label(verb), captured, server, ctx))
    }

    /// Whether the credential is complete: no line of the exchange is still to come from the
    /// client, unless a challenge asks for one.
    pub fn credential_complete(&self) -> bool {
        self.captured
    }

    /// Whether the credential is complete and server bytes were lost since: a client that sends
    /// anything now has had its verdict (a further step would have followed a challenge).
    pub fn verdict_may_be_lost(&self) -> bool {
        self.server_gap && self.captured
    }

    /// Whether a client line is the next step of this exchange, or a command that shows it over
    /// (its verdict lost with server bytes, or never captured). A line with a space is never a
    /// step; once server bytes were lost, neither is anything after a complete credential, nor a
    /// bare POP3/SMTP command.
    pub fn continues_with(&self, line: &[u8]) -> bool {
        let lost = self.server_gap && (self.captured || sasl::is_bare_command(line));
        !lost && sasl::may_be_response(line)
    }

    /// A client response line (base64, `=` for empty, `*` to cancel). From a cut line
    /// ([`Ctx::line_cut`]) what decodes of its start is read, and what does not parse is taken
    /// for the cut, not for a malformed response.
    pub fn on_response(&mut self, line: &[u8], ctx: &mut Ctx<'_>) -> SaslStep {
        let line = line.trim_ascii();
        if line == b"*" {
            return SaslStep::Cancelled;
        }
        if self.user_lost && !self.captured {
            if !std::mem::replace(&mut self.line_after_lost_user, true) || !self.server_gap {
                return SaslStep::Continue;
            }
            // A second line with no challenge between, the prompt lost with server bytes: the
            // first was the user name's end, this one is the password's response, whole.
            self.user_lost = false;
            self.line_after_lost_user = false;
            self.responses = 1;
            if self.inferred.is_some() {
                self.inferred = Some(InferredLogin::Password);
            }
        }
        let position = self.responses;
        self.responses = self.responses.saturating_add(1);
        self.first_response_next = false;
        let text = if ctx.line_cut { sasl::whole_base64_groups(line) } else { line };
        let Ok(decoded) = sasl::decode_base64(text).map(Zeroizing::new) else {
            if ctx.line_cut {
                return SaslStep::Continue;
            }
            ctx.stats.malformed_sasl += 1;
            return SaslStep::Malformed;
        };
        if self.captured {
            return SaslStep::Continue;
        }
        let step = match self.step(&decoded, position, ctx) {
            SaslStep::Malformed if ctx.line_cut => SaslStep::Continue,
            // A challenge-response cut short too: what an observer holds is partial.
            SaslStep::Captured(mut captured) if ctx.line_cut => {
                captured.partial = true;
                SaslStep::Captured(captured)
            }
            step => step,
        };
        if matches!(step, SaslStep::Captured(_)) {
            self.captured = true;
        } else if matches!(step, SaslStep::Malformed) {
            ctx.stats.malformed_sasl += 1;
        }
        step
    }

    fn step(&mut self, decoded: &[u8], position: u8, ctx: &Ctx<'_>) -> SaslStep {
        if let Some(inferred) = self.inferred {
            return self.inferred_step(inferred, decoded, ctx);
        }
        match &self.mechanism {
            Mechanism::Plain if decoded.is_empty() => SaslStep::Continue,
            Mechanism::Plain => match sasl::parse_plain(decoded)
                .or_else(|| ctx.line_cut.then(|| sasl::parse_plain_start(decoded)).flatten())
            {
                Some(plain) => SaslStep::Captured(Captured::reusable(
                    Some(plain.authcid),
                    SecretKind::Password,
                    &plain.password,
                    ctx,
                )),
                None => SaslStep::Malformed,
            },
            Mechanism::Login => self.login_step(decoded, position, ctx),
            Mechanism::XOAuth2 if decoded.is_empty() => SaslStep::Continue,
            Mechanism::XOAuth2 => match sasl::parse_xoauth2(decoded) {
                Some((user, token)) => {
                    SaslStep::Captured(Captured::reusable(Some(user), SecretKind::Token, &token, ctx))
                }
                None => SaslStep::Malformed,
            },
            Mechanism::OAuthBearer if decoded.iter().all(|b| *b == 0x01) => SaslStep::Continue,
            Mechanism::OAuthBearer => match sasl::parse_oauthbearer(decoded) {
                Some((user, token)) => SaslStep::Captured(Captured::reusable(user, SecretKind::Token, &token, ctx)),
                None => SaslStep::Malformed,
            },
            Mechanism::CramMd5 => match sasl::parse_cram_md5_response(decoded) {
                Some(user) => SaslStep::Captured(Captured::challenge_response(Some(user))),
                None => SaslStep::Malformed,
            },
            Mechanism::DigestMd5 => match sasl::parse_digest_md5_response(decoded) {
                Some(user) => SaslStep::Captured(Captured::challenge_response(Some(user))),
                None => SaslStep::Continue,
            },
            Mechanism::Ntlm => match sasl::parse_ntlm(decoded) {
                NtlmMessage::Authenticate { user, domain, .. } => {
                    // Reported as Windows writes it: DOMAIN\user.
                    let account = if domain.is_empty() { user } else { [domain.as_slice(), b"\\", &user].concat() };
                    SaslStep::Captured(Captured::challenge_response(Some(account)))
                }
                NtlmMessage::Negotiate | NtlmMessage::Challenge => SaslStep::Continue,
                NtlmMessage::Invalid => SaslStep::Malformed,
            },
            Mechanism::Scram(_) => self.scram_step(decoded, ctx),
            Mechanism::GssApi | Mechanism::External | Mechanism::Anonymous | Mechanism::Other(_) => SaslStep::Continue,
        }
    }

    /// A response in an exchange whose command was lost: a PLAIN or XOAUTH2 message by its
    /// shape, else LOGIN's password where the prompts place it.
    fn inferred_step(&mut self, inferred: InferredLogin, decoded: &[u8], ctx: &Ctx<'_>) -> SaslStep {
        if let Some(plain) = sasl::parse_plain(decoded) {
            self.mechanism = Mechanism::Plain;
            return SaslStep::Captured(Captured::reusable(
                Some(plain.authcid),
                SecretKind::Password,
                &plain.password,
                ctx,
            ));
        }
        if let Some((user, token)) = sasl::parse_xoauth2(decoded) {
            self.mechanism = Mechanism::XOAuth2;
            return SaslStep::Captured(Captured::reusable(Some(user), SecretKind::Token, &token, ctx));
        }
        match inferred {
            InferredLogin::Unknown => SaslStep::Continue,
            InferredLogin::User => {
                self.inferred = Some(InferredLogin::Password);
                SaslStep::Continue
            }
            InferredLogin::Password => {
                self.mechanism = Mechanism::Login;
                let password = Secret::new(decoded.to_vec());
                SaslStep::Captured(Captured::reusable(None::<Vec<u8>>, SecretKind::Password, &password, ctx))
            }
        }
    }

    /// SCRAM (RFC 5802): the client-first message names the user, the client-final message's
    /// proof completes what an offline guesser needs (with the server-first message's salt and
    /// iteration count). Taken by shape rather than position: an empty response may come first
    /// (to an empty challenge) or last (to the server-final message).
    fn scram_step(&mut self, decoded: &[u8], ctx: &Ctx<'_>) -> SaslStep {
        if sasl::is_scram_client_final(decoded) {
            let mut captured = Captured::challenge_response(self.early_user.take());
            captured.partial = self.early_user_cut;
            return SaslStep::Captured(captured);
        }
        match sasl::parse_scram_client_first(decoded) {
            Some(user) => {
                self.early_user = Some(user);
                self.early_user_cut = ctx.line_cut;
                SaslStep::Continue
            }
            None if decoded.is_empty() => SaslStep::Continue,
            None => SaslStep::Malformed,
        }
    }

    /// LOGIN (draft-murchison-sasl-login): the first response is the user name, the second the
    /// password; an initial response is the first. Clients answer by position, whatever the
    /// prompts say, so only the position counts: no prompt text can make the password the
    /// reported user name, and no response after the first is ever kept as one. Later ones are
    /// ignored.
    fn login_step(&mut self, decoded: &[u8], position: u8, ctx: &Ctx<'_>) -> SaslStep {
        match position {
            0 => {
                // A cut before anything decodes shows no user name, not an empty one.
                self.early_user = (!decoded.is_empty() || !ctx.line_cut).then(|| decoded.to_vec());
                self.early_user_cut = ctx.line_cut;
                SaslStep::Continue
            }
            1 => {
                let password = Secret::new(decoded.to_vec());
                let mut captured = Captured::reusable(self.early_user.take(), SecretKind::Password, &password, ctx);
                captured.partial |= self.early_user_cut;
                SaslStep::Captured(captured)
            }
            _ => SaslStep::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framing::Piece;
    use crate::proto::{CtxParts, DoneReason, Role};
    use base64::Engine;
    use Role::{Client as C, Server as S};

    fn b64(bytes: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.encode(bytes).into_bytes()
    }

    fn run(mechanism: &str, challenges_and_responses: &[(Option<&[u8]>, &[u8])]) -> Vec<String> {
        let mut parts = CtxParts::default();
        let mut ctx = parts.ctx(Timestamp(0));
        let mut exchange = SaslExchange::new(mechanism.as_bytes());
        challenges_and_responses
            .iter()
            .map(|(challenge, response)| {
                if challenge.is_some() {
                    exchange.on_challenge();
                }
                match exchange.on_response(response, &mut ctx) {
                    SaslStep::Continue => "continue".to_string(),
                    SaslStep::Cancelled => "cancelled".to_string(),
                    SaslStep::Malformed => "malformed".to_string(),
                    SaslStep::Captured(c) => format!(
                        "{:?} user={} len={:?}",
                        c.kind,
                        String::from_utf8_lossy(c.user.as_deref().unwrap_or(b"-")),
                        c.secret_length
                    ),
                }
            })
            .collect()
    }

    #[test]
    fn plain_reports_the_authentication_identity() {
        assert_eq!(run("plain", &[(None, &b64(b"admin\0alice\0pw123"))]), ["Password user=alice len=Some(5)"]);
        assert_eq!(
            run("PLAIN", &[(None, b"="), (Some(b""), &b64(b"\0bob\0x"))]),
            ["continue", "Password user=bob len=Some(1)"]
        );
    }

    #[test]
    fn login_takes_the_user_name_first_and_the_password_second() {
        let (user, password) = (b64(b"alice"), b64(b"Zq9@SECRET-7731"));
        let expected = ["continue", "Password user=alice len=Some(15)"];
        assert_eq!(run("LOGIN", &[(Some(b""), &user), (Some(b""), &password)]), expected);
        // An initial response is the first; responses after the password change nothing.
        assert_eq!(run("LOGIN", &[(None, &user), (Some(b""), &password), (Some(b""), &password)])[..2], expected);
        assert_eq!(run("LOGIN", &[(None, &user), (Some(b""), &password), (Some(b""), &user)])[2], "continue");
    }

    #[test]
    fn login_never_takes_a_later_response_for_the_user_name() {
        // The first response is not base64: it still was the user name's turn, so the next
        // one is the password, reported with no user name.
        let password = b64(b"Zq9@SECRET-7731");
        assert_eq!(
            run("LOGIN", &[(None, b"alice!"), (None, &password), (None, &password)]),
            ["malformed", "Password user=- len=Some(15)", "continue"]
        );
    }

    #[test]
    fn a_login_exchange_debug_shows_no_response() {
        let mut parts = CtxParts::default();
        let mut exchange = SaslExchange::new(b"LOGIN");
        exchange.on_response(&b64(b"Canary-First-Response"), &mut parts.ctx(Timestamp(0)));
        let debug = format!("{exchange:?}");
        assert!(debug.contains("early_user_len: Some(21)"));
        assert!(!debug.contains("Canary"), "the first response appears in Debug");
    }

    #[test]
    fn cancel_and_bad_base64() {
        assert_eq!(run("LOGIN", &[(None, &b64(b"alice")), (None, b"*")]), ["continue", "cancelled"]);
        assert_eq!(run("PLAIN", &[(None, b"!!notbase64!!")]), ["malformed"]);
    }

    #[test]
    fn tokens_and_challenge_responses() {
        assert_eq!(
            run("XOAUTH2", &[(None, &b64(b"user=u@example.test\x01auth=Bearer ya29.tok\x01\x01")), (None, b"")]),
            ["Token user=u@example.test len=Some(8)", "continue"]
        );
        assert_eq!(
            run(
                "CRAM-MD5",
                &[(
                    Some(b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"),
                    &b64(b"tim b913a602c7eda7a495b4e6e7334d3890")
                )]
            ),
            ["ChallengeResponse user=tim len=None"]
        );
    }

    #[test]
    fn scram_reports_the_client_first_user_at_the_proof() {
        let server_first = b64(b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let server_final = b64(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert_eq!(
            run(
                "SCRAM-SHA-256",
                &[
                    (Some(b""), b""),
                    (None, &b64(b"n,,n=u=2Cser,r=abc")),
                    (Some(&server_first), &b64(b"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")),
                    (Some(&server_final), b""),
                ]
            ),
            ["continue", "continue", "ChallengeResponse user=u,ser len=None", "continue"]
        );
        assert_eq!(
            run("SCRAM-SHA-1", &[(None, &b64(b"n,,n=user,r=abc")), (None, &b64(b"not a scram message"))]),
            ["continue", "malformed"]
        );
    }

    /// Plays lines on a POP3 session (no framer: a gap loses nothing but what it says), `None`
    /// for a gap in the server's bytes, and returns `(mechanism, outcome)` of each credential
    /// and whether the session stopped as logged in.
    fn pop3(lines: &[(Role, Option<&[u8]>)]) -> (Vec<(String, Outcome)>, bool) {
        let mut parts = CtxParts::default();
        let mut ctx = parts.ctx(Timestamp(0));
        let mut session = crate::proto::pop3::Pop3Session::default();
        let mut logged_in = false;
        for (role, line) in lines {
            match line {
                Some(line) => {
                    let reply = session.on_piece(*role, Piece::Line { line }, &mut ctx);
                    logged_in |= reply.done == Some(DoneReason::Authenticated);
                }
                None => session.on_gap(*role),
            }
        }
        session.flush(&mut ctx);
        let credentials = parts
            .events
            .iter()
            .filter_map(|event| match event {
                ProtoEvent::Credential(c) => Some((c.mechanism.to_string(), c.outcome)),
                _ => None,
            })
            .collect();
        (credentials, logged_in)
    }

    #[test]
    fn after_a_server_gap_a_bare_command_ends_the_exchange() {
        let response = b64(b"kerberos-ap-req");
        let before_gap =
            [(S, Some(&b"+OK ready"[..])), (C, Some(b"AUTH GSSAPI")), (S, Some(b"+ ")), (C, Some(&response))];
        // The verdict is lost: CAPA's `+OK` answers CAPA, not AUTH, and the login after it counts.
        let lost_verdict = [
            (S, None),
            (C, Some(&b"CAPA"[..])),
            (S, Some(b"+OK")),
            (S, Some(b"USER")),
            (S, Some(b".")),
            (C, Some(b"USER alice")),
            (S, Some(b"+OK")),
            (C, Some(b"PASS pw")),
            (S, Some(b"-ERR no")),
        ];
        let (credentials, logged_in) = pop3(&[&before_gap[..], &lost_verdict].concat());
        assert_eq!(credentials, [("USER/PASS".to_string(), Outcome::Failure)]);
        assert!(!logged_in, "CAPA's reply was taken for the AUTH verdict");
        // Without a gap, the same word is a SASL response (valid base64), as before.
        let no_gap = [(C, Some(&b"CAPA"[..])), (S, Some(b"+OK"))];
        assert!(pop3(&[&before_gap[..], &no_gap].concat()).1);
    }

    #[test]
    fn after_a_server_gap_a_complete_credential_waits_for_no_more_steps() {
        let blob = b64(b"\0alice\0pw");
        let start = [(S, Some(&b"+OK ready"[..])), (C, Some(b"AUTH PLAIN")), (S, Some(b"+ ")), (C, Some(&blob))];
        // The verdict lost, the client's next line (base64-shaped or not) is a command.
        let lost = [(S, None), (C, Some(&b"NOOP"[..])), (S, Some(b"+OK"))];
        let (credentials, logged_in) = pop3(&[&start[..], &lost].concat());
        assert_eq!(credentials, [("AUTH PLAIN".to_string(), Outcome::Unknown)]);
        assert!(!logged_in);
        // A verdict that does come after the gap, before the client speaks, still counts.
        let late = [(S, None), (S, Some(&b"+OK"[..]))];
        assert_eq!(pop3(&[&start[..], &late].concat()), (vec![("AUTH PLAIN".to_string(), Outcome::Success)], true));
        // A challenge after the gap shows the exchange going on: its response is a step.
        let challenge = [(S, None), (S, Some(&b"+ "[..])), (C, Some(b"AQ==")), (S, Some(b"-ERR no"))];
        assert_eq!(pop3(&[&start[..], &challenge].concat()).0, [("AUTH PLAIN".to_string(), Outcome::Failure)]);
    }
}
