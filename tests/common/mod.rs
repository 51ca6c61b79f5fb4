//! Helpers shared by the integration tests: run the binary, parse its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod script;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The shared corpus next to the repository, when present.
pub fn shared_corpus(sub: &str) -> Option<PathBuf> {
    let dir = repo_path("../shared/corpus").join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// Runs `credwatch` with arguments and environment overrides.
pub fn credwatch(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_credwatch"));
    command.args(args).env_remove("RUST_LOG").env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("credwatch runs")
}

/// Runs `credwatch` as a user file permissions apply to: as root (which reads whatever it likes)
/// it runs as `nobody`. Whatever it reads must be open to others then (a temporary directory is
/// not: make it so).
pub fn credwatch_unprivileged(args: &[&str]) -> Output {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_credwatch"));
    command.args(args).env_remove("RUST_LOG").env("NO_COLOR", "1");
    let probe = tempfile::tempfile().expect("a temporary file");
    if probe.metadata().expect("its metadata").uid() == 0 {
        const NOBODY: u32 = 65_534;
        command.uid(NOBODY).gid(NOBODY);
    }
    command.output().expect("credwatch runs")
}

/// The JSON objects of `credwatch read --format json` on the given paths (exit status checked).
pub fn read_json(paths: &[&Path], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["read", "--format", "json"];
    args.extend_from_slice(extra);
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let output = credwatch(&args, &[]);
    assert!(output.status.success(), "credwatch failed: {}", String::from_utf8_lossy(&output.stderr));
    parse_lines(&output.stdout)
}

pub fn parse_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// Events of one type.
pub fn of_type<'a>(events: &'a [serde_json::Value], event_type: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event_type"] == event_type).collect()
}
