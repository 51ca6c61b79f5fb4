//! End to end on generated traffic: the capture generator writes each kind of traffic with its
//! ground truth, the `credwatch` binary reads it, and every planted login must alert exactly once,
//! with the right fields, and nothing else (STARTTLS sessions, APOP, FTP logins, decoy login text
//! in mail bodies) may.

use std::fs::File;
use std::io::BufWriter;
use std::process::Command;

use credwatch::gen::truth::score;
use credwatch::gen::{generate, GenConfig, TrafficKind};

fn check(kind: TrafficKind, size: u64, min_alerts: usize) {
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
}

#[test]
fn mixed_traffic_every_login_found_nothing_else() {
    check(TrafficKind::Mixed, 8 << 20, 2);
}

#[test]
fn mail_heavy_traffic_every_login_found_nothing_else() {
    check(TrafficKind::MailHeavy, 3 << 20, 100);
}

#[test]
fn many_flows_every_login_found_nothing_else() {
    check(TrafficKind::ManyFlows, 3 << 20, 15);
}
