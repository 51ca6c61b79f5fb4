//! The events credwatch reports, as every output serialises them.
//!
//! Nothing in here can hold a password: credentials arrive from [`crate::proto`] already
//! redacted (a secret *kind*, an optional keyed fingerprint, a masked or hashed user name).

mod community_id;
mod redact;
mod stats;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::capture::Timestamp;

pub use community_id::{community_id_v1, CommunityId, PROTO_TCP};
use redact::UserName;
pub(crate) use redact::{keyed_hex, looks_like_hostname, KEYED_HEX_LEN};
pub use redact::{DigestKey, KeyedPurpose, RedactionPolicy, UserKey, UsernameForm, UsernamePolicy};
pub(crate) use stats::saturating_sum;
pub use stats::{worth_warning_again, AlertCounts, InterfaceStats, LimitStats, OutputStats, StatsEvent};

/// Version of the JSON event contract; bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    Pop3,
    Imap,
    Smtp,
    /// ManageSieve (RFC 5804): mail filters, logged into with the mailbox's password.
    ManageSieve,
}

impl AppProto {
    pub fn name(self) -> &'static str {
        match self {
            AppProto::Pop3 => "pop3",
            AppProto::Imap => "imap",
            AppProto::Smtp => "smtp",
            AppProto::ManageSieve => "managesieve",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

impl Outcome {
    /// The `outcome` value on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// What a passive observer obtained from an authentication exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A reusable password.
    Password,
    /// A bearer token (OAuth 2): as good as a password while it is valid.
    Token,
    /// A challenge-response an observer can attack offline (APOP, CRAM-MD5, DIGEST-MD5, NTLM,
    /// SCRAM).
    ChallengeResponse,
}

impl SecretKind {
    /// The `secret` value on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::Token => "token",
            SecretKind::ChallengeResponse => "challenge_response",
        }
    }

    pub fn event_type(self) -> EventType {
        match self {
            SecretKind::Password | SecretKind::Token => EventType::CleartextCredential,
            SecretKind::ChallengeResponse => EventType::WeakCredential,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    CleartextCredential,
    WeakCredential,
    Anomaly,
}

impl EventType {
    pub fn severity(self) -> &'static str {
        match self {
            EventType::CleartextCredential => "high",
            EventType::WeakCredential => "medium",
            EventType::Anomaly => "low",
        }
    }

    /// The `event_type` value on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EventType::CleartextCredential => "cleartext_credential",
            EventType::WeakCredential => "weak_credential",
            EventType::Anomaly => "anomaly",
        }
    }
}

/// Who must act so that this credential stops crossing in clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Remediation {
    /// The server never offered STARTTLS/STLS: its administrator must enable TLS.
    ServerOffersNoTls,
    /// The server offered STARTTLS and the client logged in without it: fix the client.
    ClientSkippedStarttls,
    /// The client asked for STARTTLS, the server refused, and the client went on in clear.
    StarttlsFailed,
    /// The server advertised LOGINDISABLED yet accepted a cleartext login.
    ServerIgnoresLogindisabled,
    /// The capture does not show whether TLS was offered (e.g. the flow was picked up mid-stream).
    Unknown,
}

impl Remediation {
    /// The `remediation` value on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Remediation::ServerOffersNoTls => "server_offers_no_tls",
            Remediation::ClientSkippedStarttls => "client_skipped_starttls",
            Remediation::StarttlsFailed => "starttls_failed",
            Remediation::ServerIgnoresLogindisabled => "server_ignores_logindisabled",
            Remediation::Unknown => "unknown",
        }
    }
}

/// The redacted credential of an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// The protocol's own verb: `USER/PASS`, `LOGIN`, `APOP`, `AUTH PLAIN`, `AUTHENTICATE PLAIN`, ….
    pub mechanism: Cow<'static, str>,
    pub secret: SecretKind,
    /// The user name after the redaction policy (masked by default); null when the capture did not show it.
    pub username: Option<String>,
    /// Who the user name belongs to (see [`UserKey`]); `None` when the capture did not show it,
    /// or the event was built without one. Never written out.
    #[serde(skip)]
    pub user_key: Option<UserKey>,
    /// How `username` is written. Never written out itself.
    #[serde(skip)]
    pub username_form: UsernameForm,
    pub outcome: Outcome,
    /// Length in bytes of the secret that crossed (not for challenge-responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_length: Option<usize>,
    /// Keyed fingerprint of the secret (only with `--fingerprint-key`), to spot reuse without revealing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_fingerprint: Option<String>,
    /// The capture holds only part of the line that carried the credential (a snap length or a
    /// loss cut it, or lost bytes inside an IMAP literal): it crossed in clear whole, but the user
    /// name or the secret may be cut short; the secret's length and fingerprint are given only
    /// when the secret was whole.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

impl Credential {
    /// Who logged in, for deduplication and distinct-user counts: the key of the raw name, or for
    /// an event built without one, of the name as shown.
    pub fn user_identity(&self) -> Option<UserKey> {
        self.user_key.or_else(|| self.username.as_deref().map(|shown| UserKey::of(UserName::Shown(shown))))
    }
}

/// Upper-cases the ASCII letters of `text` but for the hex digits of its `\xNN` escapes.
fn upper_case_outside_escapes(text: &mut str) {
    // A plain loop: capabilities are a few bytes each, too short for `memchr` to pay for itself.
    if !text.bytes().any(|byte| byte == b'\\') {
        return text.make_ascii_uppercase();
    }
    let mut at = 0;
    while at < text.len() {
        let escape = text
            .as_bytes()
            .get(at..at + 4)
            .is_some_and(|head| head.starts_with(b"\\x") && head.iter().skip(2).all(u8::is_ascii_hexdigit));
        if escape {
            at += 4;
            continue;
        }
        // Every byte of a character outside ASCII is left as it is; an ASCII byte is a
        // character of its own, so this range is always on boundaries when it is ASCII.
        if let Some(byte) = text.get_mut(at..at + 1) {
            byte.make_ascii_uppercase();
        }
        at += 1;
    }
}

/// What the flow revealed about the server that accepted (or was sent) the credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerIdentity {
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// The server's first line, trimmed, control bytes escaped; null when the capture holds none.
    pub greeting: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Arc<str>>,
    /// Capabilities seen (CAPA, CAPABILITY, EHLO), upper-cased, in order of appearance.
    #[serde(skip_serializing_if = "Capabilities::is_empty")]
    pub capabilities: Capabilities,
    /// STARTTLS/STLS offered in the greeting or a capability list; null when no list was seen.
    pub starttls_offered: Option<bool>,
    /// LOGINDISABLED advertised (IMAP); null when no capability list was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_disabled: Option<bool>,
}

/// The capabilities a server announced, upper-cased, each once, in order of appearance;
/// serialised as an array of strings. Every event of a flow carries its server's list, so the
/// list is shared: a copy costs a reference count. The capabilities are kept in one text, each
/// ended by a newline (capability text is printable: a newline cannot occur in one), which costs
/// a flow one or two allocations for its whole list rather than one per capability, and an
/// empty list (most flows' lists until the server lists them, if ever) none.
#[derive(Clone, Debug, Default)]
pub struct Capabilities(Option<Arc<CapabilityText>>);

#[derive(Clone, Debug, Default)]
struct CapabilityText {
    /// Every capability followed by `\n`.
    text: String,
    len: usize,
}

/// Room for a usual capability list (an IMAP CAPABILITY line or an EHLO reply) at the first push.
const CAPABILITY_TEXT_START: usize = 128;

impl Capabilities {
    /// Every capability followed by `\n`.
    fn text(&self) -> &str {
        self.0.as_deref().map_or("", |list| list.text.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        // A byte loop: the capabilities are a few bytes each, too short for `split`'s searcher
        // to pay for itself (every push looks through the list).
        let mut rest = self.text();
        std::iter::from_fn(move || {
            let end = rest.bytes().position(|byte| byte == b'\n')?;
            let capability = rest.get(..end)?;
            rest = rest.get(end + 1..)?;
            Some(capability)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.0.as_deref().map_or(0, |list| list.len)
    }

    /// Bytes of text the capabilities hold, a separator each included.
    pub fn text_len(&self) -> usize {
        self.text().len()
    }

    /// Whether the list holds `capability`, in any case.
    pub fn contains(&self, capability: &str) -> bool {
        self.iter().any(|held| held.eq_ignore_ascii_case(capability))
    }

    /// Appends `capability`, upper-cased but for its `\xNN` escapes (bytes the wire carried, which
    /// stay lower-case hex as everywhere else), unless it is empty or the list holds it already. A
    /// newline in it (never in printable text) becomes a space.
    pub fn push(&mut self, capability: &str) {
        if capability.contains('\n') {
            return self.push(&capability.replace('\n', " "));
        }
        if capability.is_empty() || self.contains(capability) {
            return;
        }
        let list = Arc::make_mut(self.0.get_or_insert_with(Arc::default));
        if list.text.capacity() == 0 {
            list.text.reserve(CAPABILITY_TEXT_START.max(capability.len() + 1));
        }
        let start = list.text.len();
        list.text.push_str(capability);
        if let Some(appended) = list.text.get_mut(start..) {
            upper_case_outside_escapes(appended);
        }
        list.text.push('\n');
        list.len += 1;
    }

    /// The capabilities on one line, separated by spaces.
    pub fn to_line(&self) -> String {
        let mut line = self.text().replace('\n', " ");
        line.pop();
        line
    }

    /// Empties the list (a new capability list replaces the old one); events holding the old
    /// list keep it.
    pub fn clear(&mut self) {
        match self.0.as_mut().and_then(Arc::get_mut) {
            Some(list) => {
                list.text.clear();
                list.len = 0;
            }
            None => self.0 = None,
        }
    }
}

/// Equal lists hold the same capabilities in the same order, however they are stored (an emptied
/// list may keep its allocation).
impl PartialEq for Capabilities {
    fn eq(&self, other: &Capabilities) -> bool {
        match (&self.0, &other.0) {
            (Some(mine), Some(theirs)) if Arc::ptr_eq(mine, theirs) => true,
            _ => self.text() == other.text(),
        }
    }
}

impl Eq for Capabilities {}

impl<S: AsRef<str>> FromIterator<S> for Capabilities {
    fn from_iter<I: IntoIterator<Item = S>>(capabilities: I) -> Self {
        let mut list = Capabilities::default();
        for capability in capabilities {
            list.push(capability.as_ref());
        }
        list
    }
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// What the flow revealed about the client software (IMAP ID, RFC 2971).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<Arc<str>>,
}

impl ClientIdentity {
    pub fn is_empty(&self) -> bool {
        self.software.is_none()
    }
}

/// The connection an event belongs to; `src` is always the client, `dest` the server. Serialised
/// with its Community ID, so every event that carries a flow can be joined with Zeek's and
/// Suricata's records of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMeta {
    pub flow_id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: &'static str,
    pub vlan: Vec<u16>,
    /// The connection was already open when the capture started (no handshake seen).
    pub midstream: bool,
}

impl FlowMeta {
    /// Community ID v1 with the default seed (0), as Zeek and Suricata log it by default.
    pub fn community_id(&self) -> CommunityId {
        let proto = if self.proto.eq_ignore_ascii_case("udp") { 17 } else { PROTO_TCP };
        community_id_v1(0, (self.src_ip, self.src_port), (self.dest_ip, self.dest_port), proto)
    }
}

impl FlowMeta {
    /// Writes the flow's fields, its `community_id` included, into the object being serialised:
    /// they sit at the top level of every event that carries a flow. (Written out rather than
    /// with `#[serde(flatten)]`, which goes through a map serialiser several times slower.)
    fn serialize_fields<S: SerializeStruct>(&self, fields: &mut S) -> Result<(), S::Error> {
        fields.serialize_field("flow_id", &self.flow_id)?;
        fields.serialize_field("src_ip", &self.src_ip)?;
        fields.serialize_field("src_port", &self.src_port)?;
        fields.serialize_field("dest_ip", &self.dest_ip)?;
        fields.serialize_field("dest_port", &self.dest_port)?;
        fields.serialize_field("proto", self.proto)?;
        if self.vlan.is_empty() {
            fields.skip_field("vlan")?;
        } else {
            fields.serialize_field("vlan", &self.vlan)?;
        }
        if self.midstream {
            fields.serialize_field("midstream", &true)?;
        } else {
            fields.skip_field("midstream")?;
        }
        fields.serialize_field("community_id", &self.community_id())
    }
}

impl Serialize for FlowMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("FlowMeta", 9)?;
        self.serialize_fields(&mut fields)?;
        fields.end()
    }
}

/// The fields every alert starts with: when, what, how bad, and its flow's fields.
fn serialize_alert_head<S: SerializeStruct>(
    fields: &mut S,
    timestamp: Timestamp,
    event_type: EventType,
    severity: &str,
    flow: &FlowMeta,
) -> Result<(), S::Error> {
    fields.serialize_field("timestamp", &timestamp)?;
    fields.serialize_field("event_type", &event_type)?;
    fields.serialize_field("severity", severity)?;
    flow.serialize_fields(fields)
}

/// A credential seen in clear (or a crackable challenge-response). Serialised with the flow's
/// fields at the top level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialAlert {
    pub timestamp: Timestamp,
    pub event_type: EventType,
    pub severity: &'static str,
    pub flow: FlowMeta,
    pub app_proto: AppProto,
    pub credential: Credential,
    pub server: ServerIdentity,
    /// Left out of the output when empty.
    pub client: ClientIdentity,
    pub remediation: Remediation,
    pub schema_version: u32,
}

impl Serialize for CredentialAlert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("CredentialAlert", 18)?;
        serialize_alert_head(&mut fields, self.timestamp, self.event_type, self.severity, &self.flow)?;
        fields.serialize_field("app_proto", &self.app_proto)?;
        fields.serialize_field("credential", &self.credential)?;
        fields.serialize_field("server", &self.server)?;
        if self.client.is_empty() {
            fields.skip_field("client")?;
        } else {
            fields.serialize_field("client", &self.client)?;
        }
        fields.serialize_field("remediation", &self.remediation)?;
        fields.serialize_field("schema_version", &self.schema_version)?;
        fields.end()
    }
}

/// Something a detector should not let pass silently: STARTTLS injection, overlapping segments
/// with different bytes, undecodable SASL. Serialised with the flow's fields at the top level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyAlert {
    pub timestamp: Timestamp,
    pub event_type: EventType,
    pub severity: &'static str,
    pub flow: FlowMeta,
    /// Left out of the output when unknown.
    pub app_proto: Option<AppProto>,
    pub anomaly: AnomalyInfo,
    pub schema_version: u32,
}

impl Serialize for AnomalyAlert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("AnomalyAlert", 15)?;
        serialize_alert_head(&mut fields, self.timestamp, self.event_type, self.severity, &self.flow)?;
        match &self.app_proto {
            Some(app_proto) => fields.serialize_field("app_proto", app_proto)?,
            None => fields.skip_field("app_proto")?,
        }
        fields.serialize_field("anomaly", &self.anomaly)?;
        fields.serialize_field("schema_version", &self.schema_version)?;
        fields.end()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnomalyInfo {
    pub kind: AnomalyKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Cleartext commands sent behind STARTTLS before the server accepted it (CVE-2011-0411
    /// pattern).
    StarttlsCommandInjection,
    /// Retransmitted bytes that differ from the first copy: a detector could be fooled.
    OverlapDifferentData,
    /// A SASL message that was not valid base64 or not of its mechanism's shape.
    MalformedSasl,
    /// A server seen offering STARTTLS in some sessions and not in others: something between
    /// client and server may strip it.
    StarttlsStripping,
    /// A mail session in clear on an implicit-TLS port (993, 995, 465 or `--tls-ports`).
    CleartextOnTlsPort,
}

impl AnomalyKind {
    /// Every kind, for tests that hold names and serde to one another.
    #[cfg(test)]
    const ALL: [AnomalyKind; 5] = [
        AnomalyKind::StarttlsCommandInjection,
        AnomalyKind::OverlapDifferentData,
        AnomalyKind::MalformedSasl,
        AnomalyKind::StarttlsStripping,
        AnomalyKind::CleartextOnTlsPort,
    ];

    /// The kind as JSON and ECS write it, for the outputs made for people.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::StarttlsCommandInjection => "starttls_command_injection",
            AnomalyKind::OverlapDifferentData => "overlap_different_data",
            AnomalyKind::MalformedSasl => "malformed_sasl",
            AnomalyKind::StarttlsStripping => "starttls_stripping",
            AnomalyKind::CleartextOnTlsPort => "cleartext_on_tls_port",
        }
    }
}

/// What one mail session showed of its server, logins or not: internal material for the server
/// inventory, not printed as such.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionObservation {
    pub timestamp: Timestamp,
    pub flow: FlowMeta,
    pub app_proto: Option<AppProto>,
    pub server: ServerIdentity,
    pub upgraded_to_tls: bool,
    pub implicit_tls: bool,
    pub starttls_refused: bool,
    /// A login in clear was refused with a demand for TLS.
    pub login_refused_for_tls: bool,
}

/// Every event the pipeline hands to the outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Credential(Box<CredentialAlert>),
    Anomaly(Box<AnomalyAlert>),
    Session(Box<SessionObservation>),
    /// Counters of the run (periodic in live mode, and at exit).
    Stats(Box<StatsEvent>),
}

impl Event {
    /// The event as one JSON object (the native format); `None` for internal events.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        match self {
            Event::Credential(alert) => serde_json::to_value(alert).ok(),
            Event::Anomaly(alert) => serde_json::to_value(alert).ok(),
            Event::Stats(stats) => serde_json::to_value(stats).ok(),
            Event::Session(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomaly_kinds_are_named_as_serde_writes_them() {
        for kind in AnomalyKind::ALL {
            assert_eq!(serde_json::to_value(kind).ok(), Some(serde_json::Value::from(kind.name())));
        }
    }

    #[test]
    fn capabilities_are_upper_cased_once_each_and_shared_until_changed() {
        let mut list: Capabilities = ["imap4rev1", "AUTH=PLAIN", "Imap4Rev1", "", "starttls"].into_iter().collect();
        assert_eq!(list.iter().collect::<Vec<_>>(), ["IMAP4REV1", "AUTH=PLAIN", "STARTTLS"]);
        assert_eq!(list.len(), 3);
        assert!(list.contains("auth=plain"));
        assert_eq!(list.to_line(), "IMAP4REV1 AUTH=PLAIN STARTTLS");
        assert_eq!(serde_json::to_string(&list).ok().as_deref(), Some(r#"["IMAP4REV1","AUTH=PLAIN","STARTTLS"]"#));

        let event_copy = list.clone();
        list.clear();
        list.push("SASL PLAIN");
        assert_eq!(list.iter().collect::<Vec<_>>(), ["SASL PLAIN"]);
        assert_eq!(event_copy.len(), 3, "a copy held by an event keeps the list it was given");

        list.push("x-two\nlines");
        list.push("X-TWO\nLINES");
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            ["SASL PLAIN", "X-TWO LINES"],
            "a newline cannot split a capability"
        );
        assert_eq!(list.len(), 2);

        list.clear();
        assert!(list.is_empty());
        assert_eq!(list.iter().count(), 0);
        assert_eq!(list.to_line(), "");
        assert_eq!(serde_json::to_string(&list).ok().as_deref(), Some("[]"));
    }

    #[test]
    fn lists_are_equal_by_content_however_stored() {
        let empty = Capabilities::default();
        let mut emptied: Capabilities = ["STARTTLS"].into_iter().collect();
        emptied.clear();
        assert_eq!(emptied, empty, "an emptied list that kept its allocation is still empty");
        let mut shared: Capabilities = ["STARTTLS"].into_iter().collect();
        let held = shared.clone();
        shared.clear();
        assert_eq!(shared, empty, "a list emptied while an event held it");
        assert_eq!(held, ["starttls"].into_iter().collect::<Capabilities>());
        assert_ne!(held, empty);
    }
}
