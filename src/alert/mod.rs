//! The events credwatch reports, as every output serialises them.
//!
//! Nothing in here can hold a password: credentials arrive from [`crate::proto`] already
//! redacted (a secret *kind*, an optional keyed fingerprint, a masked or hashed user name).

mod redact;
mod stats;

use std::net::IpAddr;

use serde::Serialize;

use crate::capture::Timestamp;

pub(crate) use redact::keyed_hex;
pub use redact::{RedactionPolicy, UsernamePolicy};
pub use stats::{AlertCounts, InterfaceStats, StatsEvent};

/// Version of the JSON event contract; bumped when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    Pop3,
    Imap,
    Smtp,
}

impl AppProto {
    pub fn name(self) -> &'static str {
        match self {
            AppProto::Pop3 => "pop3",
            AppProto::Imap => "imap",
            AppProto::Smtp => "smtp",
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

/// What a passive observer obtained from an authentication exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A reusable password.
    Password,
    /// A bearer token (OAuth 2): as good as a password while it is valid.
    Token,
    /// A challenge-response an observer can attack offline (APOP, CRAM-MD5, DIGEST-MD5, NTLM).
    ChallengeResponse,
}

impl SecretKind {
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

/// The redacted credential of an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credential {
    /// The protocol's own verb: `USER/PASS`, `LOGIN`, `APOP`, `AUTH PLAIN`, `AUTHENTICATE PLAIN`, ….
    pub mechanism: String,
    pub secret: SecretKind,
    /// The user name after the redaction policy (masked by default); null when the capture did not show it.
    pub username: Option<String>,
    pub outcome: Outcome,
    /// Length in bytes of the secret that crossed (not for challenge-responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_length: Option<usize>,
    /// Keyed fingerprint of the secret (only with `--fingerprint-key`), to spot reuse without revealing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_fingerprint: Option<String>,
}

/// What the flow revealed about the server that accepted (or was sent) the credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerIdentity {
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// The server's first line, trimmed, control bytes escaped; null when the capture holds none.
    pub greeting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Capabilities seen (CAPA, CAPABILITY, EHLO), upper-cased, in order of appearance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// STARTTLS/STLS offered in the greeting or a capability list; null when no list was seen.
    pub starttls_offered: Option<bool>,
    /// LOGINDISABLED advertised (IMAP); null when no capability list was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_disabled: Option<bool>,
}

/// What the flow revealed about the client software (IMAP ID, RFC 2971).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
}

impl ClientIdentity {
    pub fn is_empty(&self) -> bool {
        self.software.is_none()
    }
}

/// The connection an event belongs to; `src` is always the client, `dest` the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlowMeta {
    pub flow_id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vlan: Vec<u16>,
    /// The connection was already open when the capture started (no handshake seen).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub midstream: bool,
}

/// A credential seen in clear (or a crackable challenge-response).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CredentialAlert {
    pub timestamp: String,
    pub event_type: EventType,
    pub severity: &'static str,
    #[serde(flatten)]
    pub flow: FlowMeta,
    pub app_proto: AppProto,
    pub credential: Credential,
    pub server: ServerIdentity,
    #[serde(skip_serializing_if = "ClientIdentity::is_empty")]
    pub client: ClientIdentity,
    pub remediation: Remediation,
    pub schema_version: u32,
}

/// Something a detector should not let pass silently: STARTTLS injection, overlapping segments
/// with different bytes, undecodable SASL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnomalyAlert {
    pub timestamp: String,
    pub event_type: EventType,
    pub severity: &'static str,
    #[serde(flatten)]
    pub flow: FlowMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<AppProto>,
    pub anomaly: AnomalyInfo,
    pub schema_version: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AnomalyInfo {
    pub kind: AnomalyKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Cleartext commands pipelined behind STARTTLS in the same segment (CVE-2011-0411 pattern).
    StarttlsCommandInjection,
    /// Retransmitted bytes that differ from the first copy: a detector could be fooled.
    OverlapDifferentData,
    /// A SASL message that was not valid base64 or not of its mechanism's shape.
    MalformedSasl,
}

/// Every event the pipeline hands to the outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Credential(Box<CredentialAlert>),
    Anomaly(Box<AnomalyAlert>),
    /// Counters of the run (periodic in live mode, and at exit).
    Stats(Box<StatsEvent>),
}

impl Event {
    pub fn timestamp_of(ts: Timestamp) -> String {
        ts.rfc3339_micros()
    }

    /// The event as one JSON object (the native format).
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Event::Credential(alert) => serde_json::to_value(alert),
            Event::Anomaly(alert) => serde_json::to_value(alert),
            Event::Stats(stats) => serde_json::to_value(stats),
        };
        value.unwrap_or(serde_json::Value::Null)
    }
}
