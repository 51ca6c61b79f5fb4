//! End to end on generated traffic: the capture generator writes each kind of traffic with its
//! ground truth, the `credwatch` binary reads it, and every planted login must alert exactly once,
//! with the right fields, and nothing else (STARTTLS sessions, APOP, FTP logins, decoy login text
//! in mail bodies) may.

use std::fs::File;
use std::io::BufWriter;
use std::process::Command;

use credwatch::gen::truth::{score, TruthRow};
use credwatch::gen::{generate, GenConfig, TrafficKind};

/// Generates, reads and scores one capture; returns its truth and credwatch's events.
fn check(kind: TrafficKind, size: u64, min_alerts: usize) -> (Vec<TruthRow>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}.pcap", kind.name());
    let path = dir.path().join(&name);
    let config = GenConfig { kind, size, seed: 42 };
    let (writer, report) = generate(&config, &name, BufWriter::new(File::create(&path).unwrap())).unwrap();
    writer.into_inner().unwrap().sync_all().unwrap();

    let output =
        Command::new(env!("CARGO_BIN_EXE_credwatch")).args(["read", "--format", "json"]).arg(&path).output().unwrap();
    assert!(output.status.success(), "credwatch failed: {}", String::from_utf8_lossy(&output.stderr));
    let result = score(&report.truth, &name, output.stdout.as_slice()).unwrap();
    assert!(result.expected >= min_alerts, "{kind:?}: only {} logins planted", result.expected);
    assert!(result.is_perfect(), "{kind:?}: {result}\n{}", result.problems.join("\n"));
    for row in &report.truth {
        assert!(!String::from_utf8_lossy(&output.stderr).contains(&row.password), "a password reached the log");
    }
    let events = output.stdout.split(|b| *b == b'\n').filter(|line| !line.is_empty());
    (report.truth, events.map(|line| serde_json::from_slice(line).unwrap()).collect())
}

#[test]
fn mixed_traffic_every_login_found_nothing_else() {
    let _ = check(TrafficKind::Mixed, 8 << 20, 2);
}

#[test]
fn mail_heavy_traffic_every_login_found_nothing_else() {
    let (truth, events) = check(TrafficKind::MailHeavy, 3 << 20, 100);
    // The directions' timing skews and the logins in clear on implicit-TLS ports must be in the
    // sample, or the check above proved nothing of them.
    for scenario in ["-client-early", "-reply-early", "-on-tls-port"] {
        let planted = truth.iter().any(|row| row.scenario.contains(scenario) && row.expect_alert);
        assert!(planted, "no {scenario} login planted");
    }
    // Each session in clear on an implicit-TLS port is flagged as such, on its own connection.
    for row in truth.iter().filter(|row| row.scenario.contains("-on-tls-port")) {
        let flagged = events.iter().any(|event| {
            event["anomaly"]["kind"] == "cleartext_on_tls_port"
                && event["src_ip"] == row.client_ip.as_str()
                && event["src_port"] == row.client_port
                && event["dest_port"] == row.server_port
        });
        assert!(flagged, "{}:{} -> {}: not flagged", row.client_ip, row.client_port, row.server_port);
    }
}

#[test]
fn many_flows_every_login_found_nothing_else() {
    let _ = check(TrafficKind::ManyFlows, 3 << 20, 15);
}
