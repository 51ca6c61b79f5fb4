//! The deployment files in `contrib/` hold what they promise: systemd reads every line of the
//! hardened unit (it ignores a misspelt directive with a warning, which would quietly drop a
//! protection), and `credwatch live` accepts the options the environment file sets.
//!
//! The unit check needs `systemd-analyze` (Debian package `systemd`); without it the test says so
//! and passes as skipped, unless `CREDWATCH_E2E=1` (set by CI) makes it a failure.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the unit expects the binary (docs/deployment.md installs it there).
const INSTALLED_BINARY: &str = "/usr/local/bin/credwatch";

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// The unit as installed, but starting the binary cargo built (`systemd-analyze verify` checks
/// that the command exists).
fn unit_with_built_binary() -> String {
    let unit = read(&contrib("credwatch.service"));
    let exec_start = format!("ExecStart={INSTALLED_BINARY} live ");
    assert!(unit.lines().any(|line| line.starts_with(&exec_start)), "the unit no longer starts `{exec_start}…`");
    unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_credwatch"))
}

#[test]
fn systemd_reads_every_line_of_the_unit() {
    let Some(analyze) = on_path("systemd-analyze") else {
        let required = std::env::var("CREDWATCH_E2E").is_ok_and(|value| value == "1");
        assert!(!required, "CREDWATCH_E2E=1 but systemd-analyze is missing (Debian package systemd)");
        println!("skipped: systemd-analyze not found (Debian package systemd)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = dir.path().join("credwatch.service");
    std::fs::write(&unit, unit_with_built_binary()).expect("write the unit");
    let output = Command::new(analyze).arg("verify").arg(&unit).output().expect("run systemd-analyze");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "systemd-analyze verify failed ({}):\n{said}", output.status);
    assert!(said.trim().is_empty(), "systemd-analyze verify warned (a warned line is ignored by systemd):\n{said}");
}

/// `CREDWATCH_OPTIONS="…"` of the environment file, split as systemd splits `$CREDWATCH_OPTIONS`
/// (on white space).
fn environment_file_options() -> Vec<String> {
    let env = read(&contrib("credwatch.env"));
    let value = env
        .lines()
        .find_map(|line| line.strip_prefix("CREDWATCH_OPTIONS="))
        .expect("credwatch.env sets CREDWATCH_OPTIONS");
    let value = value.strip_prefix('"').and_then(|value| value.strip_suffix('"')).unwrap_or(value);
    value.split_whitespace().map(str::to_string).collect()
}

#[cfg(feature = "live")]
#[test]
fn live_accepts_the_options_of_the_environment_file() {
    /// No interface has this name (16 bytes, one more than Linux allows), so nothing is captured
    /// wherever the test runs.
    const NO_SUCH_INTERFACE: &str = "credwatch-none00";
    let mut options = environment_file_options();
    let interface = options.iter().position(|option| option == "-i").expect("the environment file names an interface");
    let name = options.get_mut(interface + 1).expect("-i has a value");
    *name = NO_SUCH_INTERFACE.to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["live", "-f", "json", "--allow-root"])
        .args(&options)
        .output()
        .expect("run credwatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A bad command line exits 2; options that parse get as far as opening the interface.
    assert_eq!(output.status.code(), Some(1), "credwatch live {options:?}:\n{stderr}");
    assert!(stderr.contains("cannot open the capture"), "credwatch live {options:?}:\n{stderr}");
    assert!(output.stdout.is_empty(), "nothing is captured, nothing is written");
}

#[test]
fn the_environment_file_sets_an_interface_and_the_unit_reads_it() {
    let options = environment_file_options();
    assert!(options.windows(2).any(|pair| pair.first().is_some_and(|flag| flag == "-i")), "{options:?}");
    let unit = read(&contrib("credwatch.service"));
    assert!(unit.lines().any(|line| line == "EnvironmentFile=-/etc/default/credwatch"), "the unit reads the file");
    assert!(unit.lines().any(|line| line.ends_with(" $CREDWATCH_OPTIONS")), "the unit passes the options on");
}
