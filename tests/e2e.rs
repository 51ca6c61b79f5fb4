//! The real-server bed: runs `tests/e2e/run.sh` against the credwatch binary cargo built.
//!
//! The bed needs root (network namespaces) and Debian packages (Dovecot, Postfix, tcpdump, curl,
//! fetchmail, …; `tests/e2e/install-deps.sh` installs them). Without them the test says why and
//! passes as skipped, unless `CREDWATCH_E2E=1` (set by CI) makes a missing prerequisite a failure.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Output};

/// run.sh's exit status when it is not root or packages are missing (automake's "skipped").
const PREREQUISITES_MISSING: i32 = 77;

fn required() -> bool {
    std::env::var("CREDWATCH_E2E").is_ok_and(|value| value == "1")
}

fn run_script(args: &[&str]) -> std::io::Result<Output> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/run.sh");
    Command::new("bash").arg(script).args(args).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reports a missing prerequisite: a failure under CREDWATCH_E2E=1, a printed skip otherwise.
fn skip_or_fail(reason: &str) {
    assert!(!required(), "CREDWATCH_E2E=1 but the e2e bed cannot run: {reason}");
    println!("skipped: e2e bed not run: {reason} (set CREDWATCH_E2E=1 to make this a failure)");
}

#[test]
fn real_servers_bed() {
    let preflight = match run_script(&["--preflight"]) {
        Ok(output) => output,
        Err(error) => return skip_or_fail(&format!("cannot start bash: {error}")),
    };
    if preflight.status.code() == Some(PREREQUISITES_MISSING) {
        return skip_or_fail(text(&preflight.stderr).trim());
    }
    assert!(
        preflight.status.success(),
        "run.sh --preflight failed: {}{}",
        text(&preflight.stdout),
        text(&preflight.stderr)
    );

    let bed = run_script(&["--bin", env!("CARGO_BIN_EXE_credwatch")]).expect("run tests/e2e/run.sh");
    print!("{}", text(&bed.stdout));
    eprint!("{}", text(&bed.stderr));
    assert!(bed.status.success(), "tests/e2e/run.sh failed with {}: see its output above", bed.status);
}
