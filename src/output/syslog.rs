//! RFC 5424 syslog messages: `<PRI>1 TIMESTAMP HOSTNAME credwatch PROCID MSGID - MSG`, with the
//! record in the sink's format as MSG. Framing (one datagram, or octet counting on TCP) is the
//! transport's job.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use super::{Encoder, Record};

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
        encoder.encode_into(record, &mut message);
        message
    }
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
}
