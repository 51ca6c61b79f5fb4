//! The native JSON line of a credential alert, written directly into the line buffer.
//!
//! Credential alerts are most of what a run writes, and serde_json took about a sixth of a
//! mail-heavy run's instructions to write them: a serializer call and a key per field, every
//! string escaped byte by byte. Here fields go out in order and a string that needs no escape
//! (nearly all of them; checked eight bytes at a time) is copied whole: 4 % less CPU on
//! mail-heavy traffic. A key and its punctuation are one copy, and a server's object, the same
//! for all its flows, is written once and copied after ([`ServerObjects`]). The `Serialize`
//! implementations in [`crate::alert`] stay the definition of the format: a test holds this
//! writer to them, byte for byte, on alerts of every shape, so a field added there and not here
//! fails it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt::Write;
use std::net::IpAddr;

use crate::alert::{CredentialAlert, ServerIdentity};

/// A field's key as written after another field: `,"name":`, put together at compile time so
/// that a key costs one copy. Names are this module's own ASCII identifiers: nothing to escape.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

/// Writes `alert` as serde_json would (compact), appended to `out`; its server object comes from
/// `servers` when written before.
pub fn write_credential_alert(alert: &CredentialAlert, servers: &mut ServerObjects, out: &mut Vec<u8>) {
    let flow = &alert.flow;
    let mut object = Object::open(out);
    alert.timestamp.with_rfc3339(|text| object.key(key!("timestamp")).string(text));
    object.key(key!("event_type")).string(alert.event_type.name());
    object.key(key!("severity")).string(alert.severity);
    object.key(key!("flow_id")).number(flow.flow_id);
    object.key(key!("src_ip")).ip(flow.src_ip);
    object.key(key!("src_port")).number(u64::from(flow.src_port));
    object.key(key!("dest_ip")).ip(flow.dest_ip);
    object.key(key!("dest_port")).number(u64::from(flow.dest_port));
    object.key(key!("proto")).string(flow.proto);
    if !flow.vlan.is_empty() {
        object.key(key!("vlan")).numbers(flow.vlan.iter().map(|id| u64::from(*id)));
    }
    if flow.midstream {
        object.key(key!("midstream")).raw("true");
    }
    object.key(key!("community_id")).string(flow.community_id().as_str());
    object.key(key!("app_proto")).string(alert.app_proto.name());

    let credential = &alert.credential;
    let mut inner = object.key(key!("credential")).open();
    inner.key(key!("mechanism")).string(&credential.mechanism);
    inner.key(key!("secret")).string(credential.secret.name());
    inner.key(key!("username")).optional_string(credential.username.as_deref());
    inner.key(key!("outcome")).string(credential.outcome.name());
    if let Some(length) = credential.secret_length {
        inner.key(key!("secret_length")).number(length as u64);
    }
    if let Some(fingerprint) = &credential.secret_fingerprint {
        inner.key(key!("secret_fingerprint")).string(fingerprint);
    }
    if credential.partial {
        inner.key(key!("partial")).raw("true");
    }
    inner.close();

    servers.write(&alert.server, object.key(key!("server")));

    if let Some(software) = &alert.client.software {
        let mut inner = object.key(key!("client")).open();
        inner.key(key!("software")).string(software);
        inner.close();
    }
    object.key(key!("remediation")).string(alert.remediation.name());
    object.key(key!("schema_version")).number(u64::from(alert.schema_version));
    object.close();
}

/// Server objects written lately, kept for reuse. A server's flows carry equal identities (its
/// texts shared between them), and writing the object (the greeting and capabilities checked for
/// escapes and copied, the address formatted) was about a third of writing an alert.
/// Direct-mapped by address and port: a collision, crafted or not, costs only a rewrite.
#[derive(Clone, Default)]
pub struct ServerObjects {
    /// `SERVER_SLOTS` slots once the first alert is written.
    slots: Vec<Option<WrittenServer>>,
}

#[derive(Clone)]
struct WrittenServer {
    identity: ServerIdentity,
    json: Vec<u8>,
}

/// Slots for server objects (a power of two): a few hundred KiB at most, usually a few tens.
const SERVER_SLOTS: usize = 256;

/// Longest server object kept: a greeting and capability list of the usual sizes fit.
const SERVER_OBJECT_KEPT_MAX: usize = 2048;

impl ServerObjects {
    /// Writes `server`'s object as the value of the field `value` starts.
    fn write(&mut self, server: &ServerIdentity, value: Value<'_>) {
        let out = value.out;
        if self.slots.is_empty() {
            self.slots.resize(SERVER_SLOTS, None);
        }
        let Some(slot) = self.slots.get_mut(slot_of(server)) else {
            write_server(server, out);
            return;
        };
        if let Some(written) = slot.as_ref().filter(|written| written.identity == *server) {
            out.extend_from_slice(&written.json);
            return;
        }
        let start = out.len();
        write_server(server, out);
        let json = out.get(start..).unwrap_or_default();
        if json.len() > SERVER_OBJECT_KEPT_MAX {
            return;
        }
        match slot {
            Some(written) => {
                written.identity.clone_from(server);
                written.json.clear();
                written.json.extend_from_slice(json);
            }
            None => *slot = Some(WrittenServer { identity: server.clone(), json: json.to_vec() }),
        }
    }
}

/// Server objects hold no secret, but a map of them says nothing useful in a log either.
impl std::fmt::Debug for ServerObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.slots.iter().filter(|slot| slot.is_some()).count();
        f.debug_struct("ServerObjects").field("kept", &kept).finish()
    }
}

/// The slot of a server's address and port.
fn slot_of(server: &ServerIdentity) -> usize {
    let address = match server.ip {
        Some(IpAddr::V4(ip)) => u64::from(u32::from(ip)),
        Some(IpAddr::V6(ip)) => {
            let bits = u128::from(ip);
            (bits >> 64) as u64 ^ bits as u64
        }
        None => 0,
    };
    let mixed = (address ^ u64::from(server.port) << 48).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> (64 - SERVER_SLOTS.trailing_zeros())) as usize
}

/// A server object, as serde writes [`ServerIdentity`].
fn write_server(server: &ServerIdentity, out: &mut Vec<u8>) {
    let mut inner = Object::open(out);
    match server.ip {
        Some(ip) => inner.key(key!("ip")).ip(ip),
        None => inner.key(key!("ip")).raw("null"),
    }
    inner.key(key!("port")).number(u64::from(server.port));
    inner.key(key!("greeting")).optional_string(server.greeting.as_deref());
    if let Some(software) = &server.software {
        inner.key(key!("software")).string(software);
    }
    if let Some(hostname) = &server.hostname {
        inner.key(key!("hostname")).string(hostname);
    }
    if !server.capabilities.is_empty() {
        inner.key(key!("capabilities")).strings(server.capabilities.iter());
    }
    inner.key(key!("starttls_offered")).optional_bool(server.starttls_offered);
    if let Some(disabled) = server.login_disabled {
        inner.key(key!("login_disabled")).optional_bool(Some(disabled));
    }
    inner.close();
}

/// A JSON object being written: puts the commas between its fields.
struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> Object<'o> {
    fn open(out: &'o mut Vec<u8>) -> Object<'o> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Starts a field whose `key!` text is `key`; the returned value writes its value.
    fn key(&mut self, key: &'static str) -> Value<'_> {
        // The first field goes without the leading comma.
        let text = if self.empty { key.get(1..).unwrap_or_default() } else { key };
        self.empty = false;
        self.out.extend_from_slice(text.as_bytes());
        Value { out: self.out }
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// The value of one field.
struct Value<'v> {
    out: &'v mut Vec<u8>,
}

impl<'v> Value<'v> {
    fn raw(self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn string(self, text: &str) {
        write_string(self.out, text);
    }

    fn optional_string(self, text: Option<&str>) {
        match text {
            Some(text) => write_string(self.out, text),
            None => self.raw("null"),
        }
    }

    fn optional_bool(self, value: Option<bool>) {
        self.raw(match value {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
    }

    fn number(self, value: u64) {
        write_number(self.out, value);
    }

    fn ip(self, ip: IpAddr) {
        self.out.push(b'"');
        match ip {
            // Digits written directly, as serde does for IPv4.
            IpAddr::V4(ip) => {
                for (index, octet) in ip.octets().into_iter().enumerate() {
                    if index > 0 {
                        self.out.push(b'.');
                    }
                    if octet >= 100 {
                        self.out.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        self.out.push(b'0' + octet / 10 % 10);
                    }
                    self.out.push(b'0' + octet % 10);
                }
            }
            // Formatted on the stack and copied once, as serde does: `write!` straight into the
            // line would go through `io::Write` piece by piece.
            IpAddr::V6(ip) => {
                let mut text = AddressText { bytes: [0; ADDRESS_TEXT_MAX], len: 0 };
                // An address's text always fits.
                let _ = write!(text, "{ip}");
                self.out.extend_from_slice(text.bytes.get(..text.len).unwrap_or_default());
            }
        }
        self.out.push(b'"');
    }

    fn numbers(self, values: impl Iterator<Item = u64>) {
        self.array(values, write_number);
    }

    fn strings<'s>(self, values: impl Iterator<Item = &'s str>) {
        self.array(values, write_string);
    }

    fn array<T>(self, values: impl Iterator<Item = T>, write_item: fn(&mut Vec<u8>, T)) {
        self.out.push(b'[');
        for (index, value) in values.enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            write_item(self.out, value);
        }
        self.out.push(b']');
    }

    fn open(self) -> Object<'v> {
        Object::open(self.out)
    }
}

/// Longest address text: eight groups of four hex digits and seven colons.
const ADDRESS_TEXT_MAX: usize = 39;

struct AddressText {
    bytes: [u8; ADDRESS_TEXT_MAX],
    len: usize,
}

impl std::fmt::Write for AddressText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_number(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(digit) = digits.get_mut(start) {
            *digit = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Whether a byte must be escaped in a JSON string, as serde_json does: control characters, the
/// quote and the backslash (nothing else: other bytes, UTF-8 included, go as they are).
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Whether any byte needs an escape, eight bytes at a time: the classic bit tricks that tell
/// whether a word holds a zero byte (`x ^ quote` has one where `x` holds a quote) or a byte below
/// 0x20.
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGH != 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let word = u64::from_le_bytes(eight);
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
        if control || has_zero(word ^ (ONES * u64::from(b'"'))) || has_zero(word ^ (ONES * u64::from(b'\\'))) {
            return true;
        }
    }
    words.remainder().iter().any(|byte| needs_escape(*byte))
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.push(b'"');
    if !any_needs_escape(bytes) {
        out.extend_from_slice(bytes);
    } else {
        for byte in bytes {
            match *byte {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                control if control < 0x20 => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let high = HEX.get(usize::from(control >> 4)).copied().unwrap_or(b'0');
                    let low = HEX.get(usize::from(control & 0xf)).copied().unwrap_or(b'0');
                    out.extend_from_slice(&[b'\\', b'u', b'0', b'0', high, low]);
                }
                other => out.push(other),
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{
        AppProto, Capabilities, ClientIdentity, Credential, FlowMeta, Outcome, Remediation, SecretKind, ServerIdentity,
        SCHEMA_VERSION,
    };
    use crate::capture::Timestamp;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn same_as_serde(alert: &CredentialAlert, servers: &mut ServerObjects) {
        let mut ours = Vec::new();
        write_credential_alert(alert, servers, &mut ours);
        let serde = serde_json::to_vec(alert).unwrap();
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
    }

    fn alert(variant: usize) -> CredentialAlert {
        let pick = |n: usize| variant / n % 2 == 1;
        let mut capabilities = Capabilities::default();
        if pick(2) {
            for capability in ["IMAP4REV1", "AUTH=PLAIN", "X-\"ODD\\ONE\""] {
                capabilities.push(capability);
            }
        }
        let secret = [SecretKind::Password, SecretKind::Token, SecretKind::ChallengeResponse][variant % 3];
        CredentialAlert {
            timestamp: Timestamp::from_secs_nanos(1_700_000_000 + variant as u64, 123_456_789),
            event_type: secret.event_type(),
            severity: secret.event_type().severity(),
            flow: FlowMeta {
                flow_id: 9_007_199_254_740_991 - variant as u64,
                src_ip: if pick(4) { "fd00::1:0:0:2".parse().unwrap() } else { [10, 0, 0, 1].into() },
                src_port: 40_000,
                dest_ip: if pick(4) { "2001:db8::25".parse().unwrap() } else { [192, 0, 2, 25].into() },
                dest_port: 143,
                proto: "TCP",
                vlan: if pick(8) { vec![100, 4095] } else { Vec::new() },
                midstream: pick(16),
            },
            app_proto: [AppProto::Pop3, AppProto::Imap, AppProto::Smtp][variant % 3],
            credential: Credential {
                mechanism: if pick(32) { "AUTHENTICATE PLAIN".into() } else { "USER/PASS".into() },
                secret,
                username: pick(64).then(|| "j***@exämple.test".to_string()),
                user_key: None,
                username_form: crate::alert::UsernameForm::Masked,
                outcome: [Outcome::Success, Outcome::Failure, Outcome::Unknown][variant / 3 % 3],
                secret_length: pick(128).then_some(12),
                secret_fingerprint: pick(256).then(|| "hmac-sha256:00ff".to_string()),
                partial: pick(512),
            },
            server: ServerIdentity {
                ip: pick(512).then(|| "192.0.2.25".parse().unwrap()),
                port: 143,
                greeting: pick(1024).then(|| Arc::from("* OK [CAPABILITY IMAP4rev1] \"Dovecot\" \\ ready\u{1}\t")),
                software: pick(2048).then(|| Arc::from("Dovecot")),
                hostname: pick(4096).then(|| Arc::from("mail.example.test")),
                capabilities,
                starttls_offered: [None, Some(true), Some(false)][variant / 9 % 3],
                login_disabled: [None, Some(true), Some(false)][variant / 27 % 3],
            },
            client: ClientIdentity { software: pick(8192).then(|| Arc::from("Thunderbird \"128\"")) },
            remediation: [
                Remediation::ServerOffersNoTls,
                Remediation::ClientSkippedStarttls,
                Remediation::StarttlsFailed,
                Remediation::ServerIgnoresLogindisabled,
                Remediation::Unknown,
            ][variant % 5],
            schema_version: SCHEMA_VERSION,
        }
    }

    #[test]
    fn every_shape_of_alert_is_written_as_serde_writes_it() {
        // Every optional field on and off, every enum value, across 16 384 combinations.
        // One set of server objects for all: consecutive variants have the same server address
        // and port but other texts, so a server object reused when it should not be fails this.
        let mut servers = ServerObjects::default();
        for variant in 0..16_384 {
            same_as_serde(&alert(variant), &mut servers);
        }
    }

    #[test]
    fn a_server_object_written_before_is_reused_and_only_for_an_equal_server() {
        let mut servers = ServerObjects::default();
        let first = alert(1024 + 2);
        same_as_serde(&first, &mut servers);
        assert_eq!(format!("{servers:?}"), "ServerObjects { kept: 1 }");
        // The same server again, its texts in allocations of their own: written from the copy.
        let mut again = first.clone();
        again.server.greeting = first.server.greeting.as_deref().map(Arc::from);
        same_as_serde(&again, &mut servers);
        // Each field that differs makes it a server object of its own.
        let mut changed = Vec::new();
        for change in 0..7 {
            let mut other = first.clone();
            let server = &mut other.server;
            match change {
                0 => server.port = 110,
                1 => server.greeting = Some(Arc::from("* OK elsewhere")),
                2 => server.software = Some(Arc::from("Cyrus")),
                3 => server.hostname = Some(Arc::from("mx.example.test")),
                4 => server.capabilities.push("IDLE"),
                5 => server.starttls_offered = Some(true),
                _ => server.login_disabled = Some(true),
            }
            same_as_serde(&other, &mut servers);
            changed.push(other);
        }
        same_as_serde(&first, &mut servers);
        assert!(changed.iter().all(|other| other.server != first.server));
    }

    #[test]
    fn a_server_object_too_long_to_keep_is_written_every_time() {
        let mut servers = ServerObjects::default();
        let mut long = alert(1024);
        long.server.greeting = Some(Arc::from("+OK ".to_string() + &"x".repeat(SERVER_OBJECT_KEPT_MAX)));
        same_as_serde(&long, &mut servers);
        assert_eq!(format!("{servers:?}"), "ServerObjects { kept: 0 }");
        same_as_serde(&long, &mut servers);
    }

    proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_escapes_it(text in any::<String>(), control in 0u8..0x20) {
            let text = format!("{text}{}", char::from(control));
            let mut ours = Vec::new();
            write_string(&mut ours, &text);
            prop_assert_eq!(ours, serde_json::to_vec(&text).unwrap());
        }

        #[test]
        fn any_number_is_written_as_serde_writes_it(value in any::<u64>()) {
            let mut ours = Vec::new();
            write_number(&mut ours, value);
            prop_assert_eq!(ours, serde_json::to_vec(&value).unwrap());
        }
    }
}
