//! RFC 5424 syslog messages: `<PRI>1 TIMESTAMP HOSTNAME credwatch PROCID MSGID - MSG`, with the
//! record in the sink's format as MSG. Framing (one datagram, or octet counting on TCP) is the
//! transport's job.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::io::Write as _;

use serde_json::Value;

use super::{Encoder, Format, Record};

/// Longest message a syslog sink sends, header included. Receivers must take 480 octets and
/// should take 2 048 (RFC 5424 section 6.1); rsyslog takes 8 KiB by default and cuts what is
/// longer, which would break a JSON record in two. Records are far shorter but for what hostile
/// traffic can make of them (a server's capability list, a user name of escaped bytes, each
/// shown several times in an ECS document): those are shortened to fit, and say so.
pub const MAX_MESSAGE: usize = 8192;

/// Strings of wire fields this short once encoded (quotes included) are never cut when a record
/// is fitted.
const UNCUT_BYTES: usize = 64;

/// Syslog facility (RFC 5424 table 1); PRI = facility × 8 + severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(u8);

impl Default for Facility {
    /// local0, the facility sites usually route to a SIEM.
    fn default() -> Self {
        Facility(16)
    }
}

const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

impl Facility {
    pub fn from_name(name: &str) -> Option<Facility> {
        let index = FACILITY_NAMES.iter().position(|known| known.eq_ignore_ascii_case(name))?;
        u8::try_from(index).ok().map(Facility)
    }

    pub fn code(self) -> u8 {
        self.0
    }
}

/// Syslog severity of a record: a cleartext password is an error condition to fix (3), a
/// crackable challenge-response a warning (4), an anomaly a notice (5), the inventory information
/// (6).
pub fn severity(record: &Record<'_>) -> u8 {
    match record.severity() {
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    }
}

/// What stays the same in every message of a sink.
#[derive(Clone, Debug)]
pub struct Header {
    pub facility: Facility,
    /// Printable ASCII without spaces, or `-`.
    pub hostname: String,
    pub procid: u32,
}

impl Header {
    pub fn new(facility: Facility, hostname: &str) -> Self {
        Header { facility, hostname: header_field(hostname, 255), procid: std::process::id() }
    }

    /// The full message for one record.
    pub fn message(&self, record: Record<'_>, encoder: &mut Encoder) -> Vec<u8> {
        let pri = u16::from(self.facility.code()) * 8 + u16::from(severity(&record));
        let timestamp = header_field(&record.timestamp(), 32);
        let msgid = header_field(record.event_type(), 32);
        let mut message =
            format!("<{pri}>1 {timestamp} {} credwatch {} {msgid} - ", self.hostname, self.procid).into_bytes();
        let budget = MAX_MESSAGE - message.len();
        let encoded = encoder.encode(record);
        match encoder.format {
            // JSON escapes what is not ASCII (`\u00e9`): a message of ASCII needs no byte order
            // mark, which receivers that parse the JSON would choke on.
            Format::Json | Format::Ecs => {
                let ascii = ascii_json(&encoded);
                match ascii.len() > budget {
                    true => message.extend_from_slice(&fit_json(&ascii, budget)),
                    false => message.extend_from_slice(&ascii),
                }
            }
            // Text for people keeps its characters: UTF-8 in MSG must start with a byte order
            // mark (RFC 5424 section 6.4).
            Format::Text => {
                // Room for the mark whenever the line is cut: the cut adds `…`.
                let text = match encoded.len() + UTF8_BOM.len() > budget {
                    true => cut_text(&encoded, budget - UTF8_BOM.len()),
                    false => encoded,
                };
                if !text.is_ascii() {
                    message.extend_from_slice(UTF8_BOM);
                }
                message.extend_from_slice(&text);
            }
        }
        message
    }
}

/// The byte order mark that starts a MSG in UTF-8 (RFC 5424 section 6.4).
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// JSON text with every character outside ASCII written as `\uXXXX` (two for those beyond the
/// Basic Multilingual Plane): such characters only occur inside strings, where the escape means
/// the same character.
fn ascii_json(json: &[u8]) -> Cow<'_, [u8]> {
    // DEL too: it is ASCII, but receivers rewrite it (rsyslog's `#177`), changing the value.
    let plain = |byte: &u8| byte.is_ascii() && *byte != 0x7f;
    if json.iter().all(plain) {
        return Cow::Borrowed(json);
    }
    let text = String::from_utf8_lossy(json);
    let mut ascii = Vec::with_capacity(json.len() + json.len() / 2);
    for c in text.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            ascii.push(c as u8);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                // Writing to a Vec cannot fail.
                let _ = write!(ascii, "\\u{unit:04x}");
            }
        }
    }
    Cow::Owned(ascii)
}

/// A text line cut to `budget` bytes at a character boundary, `…` marking the cut.
fn cut_text(encoded: &[u8], budget: usize) -> Vec<u8> {
    if encoded.len() <= budget {
        return encoded.to_vec();
    }
    let text = String::from_utf8_lossy(encoded);
    let mut end = budget.saturating_sub('…'.len_utf8()).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", text.get(..end).unwrap_or_default()).into_bytes()
}

/// A JSON record (ASCII, [`ascii_json`]) cut down to `budget` bytes, still whole and of its
/// schema: of the values that came from the wire ([`WIRE_FIELDS`]), the longest strings are cut
/// (`…` marks each cut, every copy of a value cut alike, so that one name never reads two ways)
/// and the longest lists shortened, longest first; should that not be enough, each of them is
/// left as `…` or an empty list. The record says so (`"shortened_for_syslog":true`, under
/// `credwatch` in ECS documents); its other fields are untouched.
fn fit_json(encoded: &[u8], budget: usize) -> Vec<u8> {
    let Ok(mut record) = serde_json::from_slice::<Value>(encoded) else {
        return encoded.to_vec();
    };
    let mark = match record.get_mut("credwatch").and_then(Value::as_object_mut) {
        Some(custom) => custom,
        None => match record.as_object_mut() {
            Some(fields) => fields,
            None => return encoded.to_vec(),
        },
    };
    mark.insert("shortened_for_syslog".to_string(), Value::Bool(true));
    while encoded_len(&record) > budget {
        let Some(path) = bulkiest(&record) else {
            clear_wire_values(&mut record, false);
            break;
        };
        match pointer_mut(&mut record, &path) {
            // Each cut leaves fewer bytes or items than before: the loop ends.
            Some(Value::String(text)) => {
                let cut = cut_to(text, encoded_len(&Value::String(text.clone())) / 2);
                let whole = std::mem::replace(text, cut.clone());
                replace_copies(&mut record, &whole, &cut);
            }
            Some(Value::Array(items)) => items.truncate(items.len() / 2),
            _ => break,
        }
    }
    serde_json::to_vec(&record).map_or_else(|_| encoded.to_vec(), |json| ascii_json(&json).into_owned())
}

/// Fields whose values a server or client chose (greetings, capabilities, names, software,
/// evidence quoting them, an anomaly's detail) and the sentence built from them: the only ones
/// a record too long for a syslog message gives up part of.
const WIRE_FIELDS: [&str; 14] = [
    "greeting",
    "capabilities",
    "username",
    "user_names",
    "user",
    "name",
    "original",
    "software",
    "hostname",
    "evidence",
    "mechanisms",
    "plaintext_mechanisms",
    "detail",
    "message",
];

fn is_wire_field(name: &str) -> bool {
    WIRE_FIELDS.contains(&name)
}

/// Objects whose fields are never the wire's, whatever their names: the rule, the sensor, the
/// stats' interfaces and outputs (`rule.name`, `observer.hostname`, `interfaces[].name`).
const OWN_OBJECTS: [&str; 4] = ["rule", "observer", "interfaces", "outputs"];

/// The start of `text` that takes at most `max_bytes` once escaped ([`ascii_json`]), then `…`.
fn cut_to(text: &str, max_bytes: usize) -> String {
    let mut used = 0;
    let kept: String = text
        .chars()
        .take_while(|c| {
            used += escaped_len(*c);
            used <= max_bytes
        })
        .collect();
    format!("{}…", kept.trim_end_matches('…'))
}

/// Bytes a character takes in a JSON string as [`ascii_json`] writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if c.is_ascii_control() || !c.is_ascii() => 6 * c.len_utf16(),
        _ => 1,
    }
}

/// Every string of `value` equal to `whole` becomes `cut`.
fn replace_copies(value: &mut Value, whole: &str, cut: &str) {
    match value {
        Value::String(text) if text == whole => *text = cut.to_string(),
        Value::Object(fields) => fields.values_mut().for_each(|field| replace_copies(field, whole, cut)),
        Value::Array(items) => items.iter_mut().for_each(|item| replace_copies(item, whole, cut)),
        _ => {}
    }
}

/// The last resort: every value of a wire field becomes `…` (a string) or an empty list.
fn clear_wire_values(value: &mut Value, in_wire_field: bool) {
    match value {
        Value::String(text) if in_wire_field => *text = "…".to_string(),
        Value::Array(items) if in_wire_field => items.clear(),
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut().filter(|(name, _)| !OWN_OBJECTS.contains(&name.as_str())) {
                clear_wire_values(field, is_wire_field(name));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| clear_wire_values(item, in_wire_field)),
        _ => {}
    }
}

/// Bytes of `value` as [`ascii_json`] writes it.
fn encoded_len(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |json| {
        json.chars().map(|c| if c.is_ascii() && c != '\u{7f}' { 1 } else { 6 * c.len_utf16() }).sum()
    })
}

/// Where the bulkiest piece of a wire field that can still be made smaller lies: a string of
/// more than [`UNCUT_BYTES`] once encoded, or a list of more than one item.
fn bulkiest(value: &Value) -> Option<Vec<PathStep>> {
    fn walk(value: &Value, in_wire_field: bool, path: &mut Vec<PathStep>, best: &mut Option<(usize, Vec<PathStep>)>) {
        let size = || encoded_len(value);
        let shrinkable = in_wire_field
            && match value {
                Value::String(_) => size() > UNCUT_BYTES,
                Value::Array(items) => items.len() > 1,
                _ => false,
            };
        if shrinkable {
            let size = size();
            if best.as_ref().is_none_or(|(largest, _)| size > *largest) {
                *best = Some((size, path.clone()));
            }
        }
        match value {
            Value::Object(fields) => {
                for (name, field) in fields.iter().filter(|(name, _)| !OWN_OBJECTS.contains(&name.as_str())) {
                    path.push(PathStep::Field(name.clone()));
                    walk(field, is_wire_field(name), path, best);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(PathStep::Item(index));
                    walk(item, in_wire_field, path, best);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(value, false, &mut Vec::new(), &mut best);
    best.map(|(_, path)| path)
}

#[derive(Clone, Debug)]
enum PathStep {
    Field(String),
    Item(usize),
}

fn pointer_mut<'a>(mut value: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    for step in path {
        value = match step {
            PathStep::Field(name) => value.get_mut(name.as_str())?,
            PathStep::Item(index) => value.get_mut(*index)?,
        };
    }
    Some(value)
}

/// RFC 5424 header fields are printable US-ASCII without spaces, bounded in length; anything else
/// becomes the NILVALUE `-`.
fn header_field(value: &str, max_len: usize) -> String {
    if value.is_empty() || value.len() > max_len || !value.bytes().all(|b| (33..=126).contains(&b)) {
        "-".to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::output::text::tests::sample_alert;
    use crate::output::{Format, Observer};

    #[test]
    fn facilities_by_name() {
        assert_eq!(Facility::default(), Facility::from_name("local0").unwrap());
        assert_eq!(Facility::from_name("auth").unwrap().code(), 4);
        assert_eq!(Facility::from_name("LOCAL7").unwrap().code(), 23);
        assert_eq!(Facility::from_name("local8"), None);
    }

    #[test]
    fn message_has_the_rfc5424_header_then_the_record() {
        let header = Header { facility: Facility::default(), hostname: "sensor1".to_string(), procid: 77 };
        let mut encoder = Encoder::new(Format::Json, Arc::new(Observer::default()));
        let event = sample_alert();
        let message = String::from_utf8(header.message(Record::Event(&event), &mut encoder)).unwrap();
        let expected_header =
            "<131>1 2026-11-27T09:00:00.039000Z sensor1 credwatch 77 cleartext_credential - {\"timestamp\":";
        assert!(message.starts_with(expected_header), "{message}");
        let json: serde_json::Value = serde_json::from_str(message.split_once(" - ").unwrap().1).unwrap();
        assert_eq!(json["event_type"], "cleartext_credential");
    }

    #[test]
    fn text_messages_are_one_line_without_control_characters() {
        let header = Header { facility: Facility::default(), hostname: "sensor1".to_string(), procid: 77 };
        let mut encoder = Encoder::new(Format::Text, Arc::new(Observer::default()));
        let event = crate::output::text::tests::hostile_alert();
        let message = String::from_utf8(header.message(Record::Event(&event), &mut encoder)).unwrap();
        // No structured data (`-`): the SD-PARAM escapes of `"`, `\` and `]` do not apply to MSG.
        assert!(message.starts_with("<131>1 2026-11-27T09:00:00.039000Z sensor1 credwatch 77 cleartext_credential - "));
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }

    #[test]
    fn unfit_header_values_become_nil() {
        assert_eq!(Header::new(Facility::default(), "my host").hostname, "-");
        assert_eq!(Header::new(Facility::default(), "").hostname, "-");
        assert_eq!(Header::new(Facility::default(), "mx1.example.test").hostname, "mx1.example.test");
    }

    /// A record too long for a syslog message keeps every field, and all but the values from
    /// the wire whole; of those, the longest give way first, every copy of a value alike, and
    /// the record says so.
    #[test]
    fn a_record_too_long_is_cut_down_whole() {
        let capabilities: Vec<String> = (0..64).map(|i| format!("X-{i:02}-{}", "\\".repeat(100))).collect();
        let name = "\u{1}".repeat(256);
        let record = json!({
            "timestamp": "2026-11-27T09:00:00.039000Z",
            "event_type": "cleartext_credential",
            "event": { "category": ["authentication", "network"] },
            "related": { "ip": ["192.0.2.1", "192.0.2.2"], "user": [name] },
            "user": { "name": name },
            "credential": { "username": name, "mechanism": "AUTH PLAIN" },
            "server": { "greeting": "g".repeat(300), "capabilities": capabilities },
        });
        let encoded = serde_json::to_vec(&record).unwrap();
        assert!(encoded.len() > 8192);
        let fitted = fit_json(&ascii_json(&encoded), 2000);
        assert!(fitted.len() <= 2000, "{}", fitted.len());
        let fitted: Value = serde_json::from_slice(&fitted).unwrap();
        assert_eq!(fitted["shortened_for_syslog"], true);
        for untouched in ["timestamp", "event_type", "event"] {
            assert_eq!(fitted[untouched], record[untouched], "{untouched}");
        }
        assert_eq!(fitted["related"]["ip"], record["related"]["ip"], "lists not from the wire keep their items");
        assert_eq!(fitted["credential"]["mechanism"], "AUTH PLAIN");
        let capabilities = fitted["server"]["capabilities"].as_array().unwrap();
        assert!(!capabilities.is_empty() && capabilities.len() < 64);
        assert_eq!(capabilities[0].as_str().unwrap().get(..5), Some("X-00-"), "the first ones are kept");
        let username = fitted["credential"]["username"].as_str().unwrap();
        assert!(username.ends_with('…') && username.len() < 256, "{username:?}");
        assert_eq!(fitted["user"]["name"], username, "every copy of the name cut alike");
        assert_eq!(fitted["related"]["user"][0], username);
    }

    /// When cutting the wire's values down is not enough, they are left empty: the record stays
    /// whole, of its schema, within the limit.
    #[test]
    fn a_record_whose_wire_values_cannot_fit_keeps_them_empty() {
        let record = json!({
            "event_type": "server_posture",
            "evidence": (0..200).map(|i| format!("e{i}")).collect::<Vec<_>>(),
            "greeting": "g".repeat(60),
            "plaintext_mechanisms": ["AUTH PLAIN", "AUTH LOGIN"],
            "observer": { "hostname": "h".repeat(100) },
        });
        let fitted = fit_json(&serde_json::to_vec(&record).unwrap(), 60);
        let fitted: Value = serde_json::from_slice(&fitted).unwrap();
        assert_eq!(fitted["observer"], record["observer"], "the sensor's own name is not the wire's");
        assert_eq!(fitted["greeting"], "…");
        assert_eq!(fitted["evidence"], json!([]));
        assert_eq!(fitted["event_type"], "server_posture");
        assert_eq!(fitted["shortened_for_syslog"], true);
    }

    /// JSON goes out in ASCII, so that no byte order mark is needed; text keeps its characters
    /// after one (RFC 5424 section 6.4).
    #[test]
    fn messages_in_utf8_start_with_a_byte_order_mark_and_json_needs_none() {
        let header = Header { facility: Facility::default(), hostname: "sensor1".to_string(), procid: 77 };
        let mut event = sample_alert();
        if let crate::alert::Event::Credential(alert) = &mut event {
            alert.credential.username = Some("ø***@exämple.test 𝄞\u{7f}".to_string());
        }
        for format in [Format::Json, Format::Ecs] {
            let mut encoder = Encoder::new(format, Arc::new(Observer::default()));
            let message = header.message(Record::Event(&event), &mut encoder);
            assert!(message.is_ascii() && !message.contains(&0x7f), "{format:?}: DEL is rewritten by receivers");
            let body = String::from_utf8(message).unwrap();
            let json: Value = serde_json::from_str(body.split_once(" - ").unwrap().1).unwrap();
            let name = if format == Format::Json {
                &json["credential"]["username"]
            } else {
                &json["credwatch"]["credential"]["username"]
            };
            assert_eq!(name, "ø***@exämple.test 𝄞\u{7f}");
        }
        let mut encoder = Encoder::new(Format::Text, Arc::new(Observer::default()));
        let message = header.message(Record::Event(&event), &mut encoder);
        let (_, body) = message.split_at(message.windows(3).position(|w| w == b" - ").unwrap() + 3);
        assert!(body.starts_with(UTF8_BOM) && String::from_utf8_lossy(body).contains("ø***@exämple.test"));
        let plain = header.message(Record::Event(&sample_alert()), &mut encoder);
        assert!(plain.is_ascii(), "no mark for a message in ASCII");
    }

    /// An ECS document says it under its own namespace; text is cut at its end.
    #[test]
    fn ecs_documents_and_text_lines_are_cut_down_their_own_way() {
        let document = json!({ "message": "m".repeat(5000), "credwatch": { "event_type": "stats" } });
        let fitted = fit_json(&serde_json::to_vec(&document).unwrap(), 1000);
        let fitted: Value = serde_json::from_slice(&fitted).unwrap();
        assert_eq!(fitted["credwatch"]["shortened_for_syslog"], true);
        assert!(fitted.get("shortened_for_syslog").is_none());
        let line = "é".repeat(3000);
        let cut = cut_text(line.as_bytes(), 1001);
        let cut = String::from_utf8(cut).unwrap();
        assert!(cut.len() <= 1001 && cut.ends_with('…'), "{}", cut.len());
    }

    proptest! {
        // Each case encodes records of up to 40 KB many times over.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the wire put in a record (any characters, astral ones included, any number
        /// of list items), fitting ends, fits the budget, and leaves the other fields alone.
        #[test]
        fn fitting_ends_and_fits(
            strings in proptest::collection::vec((0usize..3000, any::<char>()), 1..12),
            list in proptest::collection::vec(".{0,200}", 0..80),
        ) {
            let mut wire = serde_json::Map::new();
            for ((len, c), name) in strings.iter().zip(WIRE_FIELDS.iter().cycle()) {
                wire.insert((*name).to_string(), Value::String(c.to_string().repeat(*len)));
            }
            wire.insert("capabilities".to_string(), json!(list));
            let record = json!({ "event_type": "cleartext_credential", "server": wire, "port": 110 });
            let encoded = ascii_json(&serde_json::to_vec(&record).unwrap()).into_owned();
            prop_assert!(encoded.is_ascii());
            prop_assert_eq!(&serde_json::from_slice::<Value>(&encoded).unwrap(), &record, "escaped, the same record");
            let fitted = fit_json(&encoded, 2000);
            prop_assert!(fitted.len() <= 2000, "{} bytes", fitted.len());
            prop_assert!(fitted.is_ascii());
            let fitted = serde_json::from_slice::<Value>(&fitted).unwrap();
            prop_assert_eq!(&fitted["event_type"], &record["event_type"]);
            prop_assert_eq!(&fitted["port"], &record["port"]);
        }
    }
}
