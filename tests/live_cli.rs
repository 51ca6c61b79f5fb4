//! `credwatch live` as a daemon's supervisor sees it: what it says when it cannot start, and its
//! exit status. Each run captures on the loopback of a network namespace of its own (`unshare
//! --net`), so nothing but what the test sends is seen.
//!
//! They need the `live` feature, root (namespaces, capture), and util-linux's `unshare` and
//! `setpriv` with iproute2's `ip`: without those a test says so and passes as skipped, unless
//! `CREDWATCH_E2E=1` (set by CI) makes it a failure.
#![cfg(all(target_os = "linux", feature = "live"))]

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_credwatch");

/// Reports a missing prerequisite: a failure under CREDWATCH_E2E=1, a printed skip otherwise.
fn skip_or_fail(reason: &str) {
    let required = std::env::var("CREDWATCH_E2E").is_ok_and(|value| value == "1");
    assert!(!required, "CREDWATCH_E2E=1 but the check cannot run: {reason}");
    println!("skipped: {reason} (set CREDWATCH_E2E=1 to make this a failure)");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| status.lines().any(|line| line.split_whitespace().take(2).eq(["Uid:", "0"])))
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin".into(), "/sbin".into()]).any(|dir| dir.join(program).is_file())
}

/// Whether the tests can run here; says why not otherwise.
fn prerequisites() -> bool {
    if !is_root() {
        skip_or_fail("not root: the tests capture in network namespaces of their own");
        return false;
    }
    let missing: Vec<&str> = ["unshare", "setpriv", "ip"].into_iter().filter(|program| !on_path(program)).collect();
    if !missing.is_empty() {
        skip_or_fail(&format!("missing {missing:?} (Debian packages util-linux, iproute2)"));
        return false;
    }
    true
}

/// `credwatch ARGS` in a new network namespace whose loopback is up.
fn in_own_namespace(args: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--net", "--", "sh", "-c", r#"PATH=$PATH:/usr/sbin:/sbin ip link set lo up && exec "$0" "$@""#, BINARY])
        .args(args)
        .env_remove("RUST_LOG");
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const PRIVILEGES_HINT: &str = "CAP_NET_RAW";

#[test]
fn a_capture_that_cannot_open_says_why_and_names_privileges_only_when_they_are_the_cause() {
    if !prerequisites() {
        return;
    }
    // 16 bytes, one more than Linux allows: no interface has this name.
    let missing = Command::new(BINARY).args(["live", "--allow-root", "-i", "credwatch-none00"]).output().unwrap();
    let said = stderr(&missing);
    assert_eq!(missing.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot open the capture") && said.contains("No such device"), "{said}");
    assert!(!said.contains(PRIVILEGES_HINT), "a missing interface is no matter of privileges: {said}");

    let bad_filter = in_own_namespace(&["live", "--allow-root", "-i", "lo", "--filter", "tcp port"]).output().unwrap();
    let said = stderr(&bad_filter);
    assert_eq!(bad_filter.status.code(), Some(1), "{said}");
    assert!(said.contains("bad filter \"tcp port\""), "{said}");
    assert!(!said.contains(PRIVILEGES_HINT), "a bad filter is no matter of privileges: {said}");

    let unprivileged = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", BINARY, "live", "-i", "lo"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let said = stderr(&unprivileged);
    assert_eq!(unprivileged.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot open the capture") && said.contains(PRIVILEGES_HINT), "{said}");
}
