//! The shared corpora (`../shared/corpus`): real servers and clients, and captures from other
//! projects' test suites, with ground truth; and the repository's own real-server captures
//! (`fixtures/e2e`). Every login whose secret crossed in clear gives exactly one
//! `cleartext_credential` on its connection with the right fields; every challenge-response login
//! one `weak_credential`; nothing else alerts; no password is printed. The shared corpora are
//! skipped (with a message) when absent.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

type Connection = (String, u64, String, u64);

fn connection(client_ip: &Value, client_port: &Value, server_ip: &Value, server_port: &Value) -> Connection {
    (
        client_ip.as_str().unwrap_or_default().to_lowercase(),
        client_port.as_u64().unwrap_or_default(),
        server_ip.as_str().unwrap_or_default().to_lowercase(),
        server_port.as_u64().unwrap_or_default(),
    )
}

fn truth(dir: &Path) -> Vec<Value> {
    let jsonl = dir.join("truth.jsonl");
    if jsonl.exists() {
        std::fs::read_to_string(jsonl)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        serde_json::from_str::<Vec<Value>>(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
    }
}

/// The alert mechanism name for a truth row's mechanism.
fn mechanism(row: &Value) -> String {
    let protocol = row["protocol"].as_str().unwrap_or_default();
    let mechanism = row["mechanism"].as_str().unwrap_or_default();
    match (protocol, mechanism.strip_prefix("SASL-")) {
        (_, None) if mechanism == "IMAP-LOGIN" => "LOGIN".to_string(),
        ("imap", Some(sasl)) => format!("AUTHENTICATE {sasl}"),
        (_, Some(sasl)) => format!("AUTH {sasl}"),
        (_, None) => mechanism.to_string(),
    }
}

fn is_challenge_response(mechanism: &str) -> bool {
    ["APOP", "CRAM-MD5", "DIGEST-MD5", "NTLM"].iter().any(|m| mechanism.ends_with(m)) || mechanism.contains(" SCRAM-")
}

/// Every form in which a row's secret could leak.
fn secret_forms(row: &Value) -> Vec<String> {
    let Some(password) = row["password"].as_str().filter(|p| p.len() >= 4) else { return Vec::new() };
    let user = row["username"].as_str().unwrap_or_default();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    vec![
        password.to_string(),
        b64(password.as_bytes()),
        b64(format!("\0{user}\0{password}").as_bytes()),
        b64(format!("{user}\0{user}\0{password}").as_bytes()),
    ]
}

fn check_corpus(sub: &str) {
    if let Some(dir) = common::shared_corpus(sub) {
        check_dir(&dir);
    }
}

fn check_dir(dir: &Path) {
    let rows = truth(dir);
    let mut by_file: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for row in &rows {
        by_file.entry(row["file"].as_str().unwrap().to_string()).or_default().push(row);
    }
    let mut problems = Vec::new();
    for (file, rows) in &by_file {
        let path = dir.join(file);
        let output = common::credwatch(&["read", "--format", "json", path.to_str().unwrap()], &[("RUST_LOG", "trace")]);
        if !output.status.success() {
            problems.push(format!("{file}: exit status {:?}", output.status.code()));
        }
        let events = common::parse_lines(&output.stdout);
        let mut alerts: BTreeMap<(Connection, String), Vec<&Value>> = BTreeMap::new();
        for event in &events {
            if let Some(kind @ ("cleartext_credential" | "weak_credential")) = event["event_type"].as_str() {
                let key = connection(&event["src_ip"], &event["src_port"], &event["dest_ip"], &event["dest_port"]);
                alerts.entry((key, kind.to_string())).or_default().push(event);
            }
        }
        for row in rows {
            let key = connection(&row["client_ip"], &row["client_port"], &row["server_ip"], &row["server_port"]);
            let expected_mechanism = mechanism(row);
            let kind = if row["expect_alert"] == true {
                Some("cleartext_credential")
            } else if row["mechanism"].is_string() && row["tls"] != true && is_challenge_response(&expected_mechanism) {
                Some("weak_credential")
            } else {
                None
            };
            let Some(kind) = kind else { continue };
            let found = alerts.remove(&(key.clone(), kind.to_string())).unwrap_or_default();
            let [alert] = found.as_slice() else {
                problems.push(format!("{file}: {} {kind} alerts for {key:?}, expected 1", found.len()));
                continue;
            };
            let outcome = row["outcome"].as_str().unwrap_or("unknown");
            let alternatives = row["outcome_alternatives"].as_array().cloned().unwrap_or_default();
            if alert["credential"]["outcome"] != outcome && !alternatives.contains(&alert["credential"]["outcome"]) {
                problems.push(format!("{file}: {key:?}: outcome {} != {outcome}", alert["credential"]["outcome"]));
            }
            if alert["credential"]["mechanism"] != expected_mechanism.as_str() {
                problems.push(format!(
                    "{file}: {key:?}: mechanism {} != {expected_mechanism}",
                    alert["credential"]["mechanism"]
                ));
            }
            if alert["app_proto"] != row["protocol"] {
                problems.push(format!("{file}: {key:?}: app_proto {}", alert["app_proto"]));
            }
            if row["greeting_seen"] != false && alert["server"]["greeting"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{file}: {key:?}: no server greeting"));
            }
            let user = row["username"].as_str().unwrap_or_default();
            let shown = alert["credential"]["username"].as_str().unwrap_or_default();
            let first: String = user.chars().take(1).collect();
            if !shown.starts_with(&first) || !shown.contains("***") {
                problems.push(format!("{file}: {key:?}: user name shown as {shown:?}"));
            }
        }
        for ((key, kind), extra) in alerts {
            if kind == "cleartext_credential" {
                problems.push(format!("{file}: {} unexpected {kind} on {key:?}", extra.len()));
            }
        }
        let printed = [output.stdout.as_slice(), output.stderr.as_slice()].concat();
        let printed = String::from_utf8_lossy(&printed);
        for row in rows {
            for form in secret_forms(row) {
                if printed.contains(&form) {
                    problems.push(format!("{file}: a secret of {:?} appears in the output", row["username"]));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn real_servers_and_clients() {
    check_corpus("real");
}

#[test]
fn public_test_suites() {
    check_corpus("public");
}

/// The real-server captures kept in the repository (`fixtures/e2e`), checked the same way
/// without the shared corpus.
#[test]
fn repository_real_server_captures() {
    check_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/e2e"));
}

/// Every capture of the corpora reads to its end: real-world files must not trip the reader.
/// Read in one run, the files are read in the order of their first packets. Two test suites hold
/// the same IMAP capture (the same connection at the same times): read one after the other, it
/// is one connection and one login. Two Suricata test cases hold one SMTP session at times 16
/// years apart (one copy's clock rewritten): two logins.
#[test]
fn every_corpus_file_reads_cleanly() {
    let Some(dir) = common::shared_corpus("") else { return };
    let output = common::credwatch(&["read", "--format", "json", dir.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let events = common::parse_lines(&output.stdout);
    let credentials = common::of_type(&events, "cleartext_credential");
    assert!(credentials.len() >= 44, "{}", credentials.len());
    let on = |client_port: u16, server_port: u16| {
        credentials.iter().filter(|alert| alert["src_port"] == client_port && alert["dest_port"] == server_port).count()
    };
    assert_eq!(on(4167, 143), 1, "the IMAP capture two suites hold is one connection");
    assert_eq!(on(3326, 587), 2, "the SMTP session held at two times is two logins");
}
