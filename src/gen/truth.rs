//! Ground truth of a generated capture, in the row format of the corpus's `truth.jsonl` (one JSON
//! object per login attempt), and scoring of credwatch's JSON alerts against it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One login attempt planted in a capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthRow {
    pub file: String,
    pub protocol: String,
    pub server_ip: String,
    pub server_port: u16,
    pub client_ip: String,
    pub client_port: u16,
    /// `USER/PASS`, `IMAP-LOGIN` or `SASL-<MECH>`, as in the corpus.
    pub mechanism: String,
    pub username: String,
    pub password_in_clear: bool,
    pub starttls_before_auth: bool,
    pub tls: bool,
    pub outcome: String,
    pub expect_alert: bool,
    /// Test-only secret, so that a scorer can check it never appears in the output.
    pub password: String,
    pub sasl_ir: bool,
    pub imap_literal: String,
    pub client: String,
    pub scenario: String,
    pub note: String,
    /// The server's greeting line the alert must carry: a client that talks first must not
    /// have its server named by a reply. Absent from truth files that predate it.
    #[serde(default)]
    pub server_greeting: String,
}

impl TruthRow {
    /// The mechanism name credwatch reports for this attempt (`AUTH PLAIN`, `LOGIN`, …).
    pub fn alert_mechanism(&self) -> String {
        match (self.protocol.as_str(), self.mechanism.as_str()) {
            ("imap", "IMAP-LOGIN") => "LOGIN".to_string(),
            (protocol, mechanism) => match mechanism.strip_prefix("SASL-") {
                Some(sasl) if protocol == "imap" => format!("AUTHENTICATE {sasl}"),
                Some(sasl) => format!("AUTH {sasl}"),
                None => mechanism.to_string(),
            },
        }
    }

    fn connection(&self) -> Connection {
        (self.client_ip.to_ascii_lowercase(), self.client_port, self.server_ip.to_ascii_lowercase(), self.server_port)
    }
}

/// Client address, client port, server address, server port.
type Connection = (String, u16, String, u16);

/// Replaces the rows of `file` in the `truth.jsonl` at `path` by `rows`, keeping the other files'
/// rows, so that several generated captures can share one corpus folder and a re-run does not
/// duplicate rows.
pub fn update_truth_file(path: &Path, file: &str, rows: &[TruthRow]) -> io::Result<()> {
    let mut kept: Vec<TruthRow> = match fs::File::open(path) {
        Ok(existing) => read_rows(io::BufReader::new(existing))?.into_iter().filter(|row| row.file != file).collect(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    kept.extend_from_slice(rows);
    let mut out = io::BufWriter::new(fs::File::create(path)?);
    for row in &kept {
        serde_json::to_writer(&mut out, row)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads truth rows, one JSON object per line (blank lines skipped).
pub fn read_rows(input: impl BufRead) -> io::Result<Vec<TruthRow>> {
    let mut rows = Vec::new();
    for line in input.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            rows.push(serde_json::from_str(&line)?);
        }
    }
    Ok(rows)
}

/// How credwatch's alerts on one capture compare with its truth.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Score {
    /// Attempts that must raise an alert.
    pub expected: usize,
    /// Of those, the ones that raised one.
    pub found: usize,
    /// Cleartext-credential alerts on a connection where none was expected, plus repeated alerts
    /// on one expected connection.
    pub false_alerts: usize,
    /// Matched alerts whose protocol, mechanism, outcome or server (address, port, greeting)
    /// differ from the truth.
    pub field_errors: usize,
    /// Lines of the output that were not JSON alerts.
    pub unreadable_lines: usize,
    /// Output lines holding a planted password (a redaction failure).
    pub leaks: usize,
    /// A few problems, for the report (connections and field names only, never secrets).
    pub problems: Vec<String>,
}

impl Score {
    /// Everything expected found, nothing else raised, no field wrong, nothing leaked.
    pub fn is_perfect(&self) -> bool {
        self.found == self.expected
            && self.false_alerts == 0
            && self.field_errors == 0
            && self.unreadable_lines == 0
            && self.leaks == 0
    }

    fn problem(&mut self, text: String) {
        const MAX_PROBLEMS: usize = 20;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(text);
        }
    }
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recall {}/{}, false {}, field errors {}, leaks {}",
            self.found, self.expected, self.false_alerts, self.field_errors, self.leaks
        )
    }
}

/// Scores credwatch's `--format json` output for one capture against the truth rows of that
/// capture (rows of other files are ignored).
pub fn score(rows: &[TruthRow], file: &str, alerts: impl BufRead) -> io::Result<Score> {
    let rows: Vec<&TruthRow> = rows.iter().filter(|row| row.file == file).collect();
    let expected: HashMap<Connection, &TruthRow> =
        rows.iter().filter(|row| row.expect_alert).map(|row| (row.connection(), *row)).collect();
    // Tens of thousands of passwords against every line: one automaton, not one search each.
    let passwords = rows.iter().map(|row| row.password.as_str()).filter(|pw| pw.len() >= 6);
    let passwords = aho_corasick::AhoCorasick::new(passwords).map_err(io::Error::other)?;
    let mut score = Score { expected: expected.len(), ..Score::default() };
    let mut matched: HashMap<Connection, usize> = HashMap::new();
    for line in alerts.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if passwords.is_match(&line) {
            score.leaks += 1;
        }
        let Ok(alert) = serde_json::from_str::<serde_json::Value>(&line) else {
            score.unreadable_lines += 1;
            continue;
        };
        if text(&alert, "/event_type") != "cleartext_credential" {
            continue;
        }
        let connection = (
            text(&alert, "/src_ip").to_ascii_lowercase(),
            port(&alert, "/src_port"),
            text(&alert, "/dest_ip").to_ascii_lowercase(),
            port(&alert, "/dest_port"),
        );
        let Some(row) = expected.get(&connection) else {
            score.false_alerts += 1;
            score.problem(format!("false alert on {connection:?}"));
            continue;
        };
        let seen = matched.entry(connection.clone()).or_default();
        *seen += 1;
        if *seen > 1 {
            score.false_alerts += 1;
            score.problem(format!("repeated alert on {connection:?}"));
            continue;
        }
        score.found += 1;
        for (field, got, want) in [
            ("app_proto", text(&alert, "/app_proto"), row.protocol.clone()),
            ("mechanism", text(&alert, "/credential/mechanism"), row.alert_mechanism()),
            ("outcome", text(&alert, "/credential/outcome"), row.outcome.clone()),
            ("server.ip", text(&alert, "/server/ip").to_ascii_lowercase(), row.server_ip.to_ascii_lowercase()),
            ("server.port", port(&alert, "/server/port").to_string(), row.server_port.to_string()),
            ("server.greeting", text(&alert, "/server/greeting"), row.server_greeting.clone()),
        ] {
            if got != want && !(field == "server.greeting" && want.is_empty()) {
                score.field_errors += 1;
                score.problem(format!("{field} is {got:?}, expected {want:?} on {connection:?}"));
            }
        }
    }
    for (connection, row) in &expected {
        if !matched.contains_key(connection) {
            score.problem(format!("missed {} {} on {connection:?} ({})", row.protocol, row.mechanism, row.scenario));
        }
    }
    Ok(score)
}

/// The string at `pointer` in an alert, empty when absent.
fn text(alert: &serde_json::Value, pointer: &str) -> String {
    alert.pointer(pointer).and_then(serde_json::Value::as_str).unwrap_or_default().to_string()
}

/// The port at `pointer` in an alert, 0 when absent.
fn port(alert: &serde_json::Value, pointer: &str) -> u16 {
    alert.pointer(pointer).and_then(serde_json::Value::as_u64).and_then(|port| u16::try_from(port).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(client_port: u16, expect_alert: bool) -> TruthRow {
        TruthRow {
            file: "a.pcap".into(),
            protocol: "imap".into(),
            server_ip: "fd00::1".into(),
            server_port: 143,
            client_ip: "10.0.0.1".into(),
            client_port,
            mechanism: "SASL-PLAIN".into(),
            username: "alice".into(),
            password_in_clear: expect_alert,
            starttls_before_auth: false,
            tls: false,
            outcome: "success".into(),
            expect_alert,
            password: "Secret-Pass-1".into(),
            sasl_ir: true,
            imap_literal: String::new(),
            client: "test".into(),
            scenario: "s".into(),
            note: String::new(),
            server_greeting: String::new(),
        }
    }

    fn alert(client_port: u16, mechanism: &str) -> String {
        serde_json::json!({
            "event_type": "cleartext_credential", "src_ip": "10.0.0.1", "src_port": client_port,
            "dest_ip": "FD00::1", "dest_port": 143, "app_proto": "imap",
            "credential": {"mechanism": mechanism, "outcome": "success"},
            "server": {"ip": "fd00::1", "port": 143}
        })
        .to_string()
    }

    #[test]
    fn mechanisms_are_named_as_credwatch_names_them() {
        let mut r = row(1, true);
        assert_eq!(r.alert_mechanism(), "AUTHENTICATE PLAIN");
        r.protocol = "smtp".into();
        assert_eq!(r.alert_mechanism(), "AUTH PLAIN");
        r.protocol = "imap".into();
        r.mechanism = "IMAP-LOGIN".into();
        assert_eq!(r.alert_mechanism(), "LOGIN");
        r.protocol = "pop3".into();
        r.mechanism = "USER/PASS".into();
        assert_eq!(r.alert_mechanism(), "USER/PASS");
    }

    #[test]
    fn scoring_counts_hits_misses_false_repeats_fields_and_leaks() {
        let rows = vec![row(1, true), row(2, true), row(3, false), row(4, true)];
        let output = [
            alert(1, "AUTHENTICATE PLAIN"),
            alert(1, "AUTHENTICATE PLAIN"),
            alert(3, "AUTHENTICATE PLAIN"),
            alert(4, "LOGIN"),
            r#"{"event_type":"anomaly"}"#.to_string(),
            "not json Secret-Pass-1".to_string(),
        ]
        .join("\n");
        let result = score(&rows, "a.pcap", output.as_bytes()).unwrap();
        assert_eq!((result.expected, result.found), (3, 2));
        assert_eq!(result.false_alerts, 2, "the repeat on port 1 and the alert on port 3");
        assert_eq!(result.field_errors, 1, "mechanism on port 4");
        assert_eq!((result.unreadable_lines, result.leaks), (1, 1));
        assert!(result.problems.iter().any(|p| p.contains("missed")));
        assert!(!result.is_perfect());
        assert_eq!(result.to_string(), "recall 2/3, false 2, field errors 1, leaks 1");
        let clean = score(&rows, "other.pcap", "".as_bytes()).unwrap();
        assert!(clean.is_perfect() && clean.expected == 0);
    }

    #[test]
    fn a_greeting_in_the_truth_must_be_the_alerts() {
        let mut greeted = row(1, true);
        greeted.server_greeting = "* OK ready".into();
        let with_greeting = |greeting: &str| {
            let mut alert: serde_json::Value = serde_json::from_str(&alert(1, "AUTHENTICATE PLAIN")).unwrap();
            alert["server"]["greeting"] = greeting.into();
            alert.to_string()
        };
        let right = score(std::slice::from_ref(&greeted), "a.pcap", with_greeting("* OK ready").as_bytes()).unwrap();
        assert!(right.is_perfect());
        let wrong = score(&[greeted], "a.pcap", with_greeting("* OK [CAPABILITY X]").as_bytes()).unwrap();
        assert_eq!(wrong.field_errors, 1);
        assert!(wrong.problems.iter().any(|p| p.starts_with("server.greeting")));
        let untold = score(&[row(1, true)], "a.pcap", with_greeting("anything").as_bytes()).unwrap();
        assert!(untold.is_perfect(), "rows without a greeting do not check it");
    }

    #[test]
    fn truth_file_updates_replace_only_that_files_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truth.jsonl");
        let mut other = row(9, true);
        other.file = "b.pcap".into();
        update_truth_file(&path, "b.pcap", &[other.clone()]).unwrap();
        update_truth_file(&path, "a.pcap", &[row(1, true)]).unwrap();
        update_truth_file(&path, "a.pcap", &[row(2, true)]).unwrap();
        let rows = read_rows(io::BufReader::new(fs::File::open(&path).unwrap())).unwrap();
        assert_eq!(rows, vec![other, row(2, true)]);
    }
}
