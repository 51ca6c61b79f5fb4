//! The deployment files in `contrib/` hold what they promise: systemd reads every line of the
//! hardened unit (it ignores a misspelt directive with a warning, which would quietly drop a
//! protection), `credwatch live` accepts the options the environment file sets, and, run with
//! them on loopback under strace, makes only the system calls, opens only the socket families
//! and maps no memory both writable and executable, as the unit's sandbox demands (no systemd
//! runs in the test's containers, so the sandbox itself is checked against what credwatch does).
//!
//! They need `systemd-analyze` (Debian package `systemd`), and the sandbox check root, strace and
//! the `live` feature; without those a test says so and passes as skipped, unless
//! `CREDWATCH_E2E=1` (set by CI) makes it a failure.
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

/// Reports a missing prerequisite: a failure under CREDWATCH_E2E=1, a printed skip otherwise.
fn skip_or_fail(reason: &str) {
    let required = std::env::var("CREDWATCH_E2E").is_ok_and(|value| value == "1");
    assert!(!required, "CREDWATCH_E2E=1 but the check cannot run: {reason}");
    println!("skipped: {reason} (set CREDWATCH_E2E=1 to make this a failure)");
}

fn systemd_analyze() -> Option<PathBuf> {
    let found = on_path("systemd-analyze");
    if found.is_none() {
        skip_or_fail("systemd-analyze not found (Debian package systemd)");
    }
    found
}

#[test]
fn systemd_reads_every_line_of_the_unit() {
    let Some(analyze) = systemd_analyze() else { return };
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

/// The environment file's options with `interface` in place of the one it names.
#[cfg(feature = "live")]
fn environment_file_options_on(interface: &str) -> Vec<String> {
    let mut options = environment_file_options();
    let at = options.iter().position(|option| option == "-i").expect("the environment file names an interface");
    *options.get_mut(at + 1).expect("-i has a value") = interface.to_string();
    options
}

#[test]
fn the_environment_file_sets_an_interface_and_the_unit_reads_it() {
    let options = environment_file_options();
    assert!(options.windows(2).any(|pair| pair.first().is_some_and(|flag| flag == "-i")), "{options:?}");
    let unit = read(&contrib("credwatch.service"));
    assert!(unit.lines().any(|line| line == "EnvironmentFile=-/etc/default/credwatch"), "the unit reads the file");
    assert!(unit.lines().any(|line| line.ends_with(" $CREDWATCH_OPTIONS")), "the unit passes the options on");
}

/// A core dump of the running sensor could hold passwords from its payload buffers
/// (docs/security.md): the unit allows none.
#[test]
fn the_unit_allows_no_core_dump() {
    let unit = read(&contrib("credwatch.service"));
    let limits: Vec<&str> = unit.lines().filter_map(|line| line.strip_prefix("LimitCORE=")).collect();
    assert_eq!(limits, ["0"]);
}

/// What needs the `live` feature: the binary's `live` command.
#[cfg(feature = "live")]
mod live {
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::process::Command;

    use super::{contrib, environment_file_options_on, on_path, read, skip_or_fail, systemd_analyze};

    #[test]
    fn live_accepts_the_options_of_the_environment_file() {
        /// No interface has this name (16 bytes, one more than Linux allows), so nothing is captured
        /// wherever the test runs.
        const NO_SUCH_INTERFACE: &str = "credwatch-none00";
        let options = environment_file_options_on(NO_SUCH_INTERFACE);
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

    /// Values of the unit's `key=` lines, in order.
    fn unit_values<'u>(unit: &'u str, key: &str) -> Vec<&'u str> {
        unit.lines().filter_map(|line| line.strip_prefix(key)?.strip_prefix('=')).collect()
    }

    /// The system calls a `SystemCallFilter=` item names: a group (`@name`, expanded with
    /// `systemd-analyze syscall-filter`, groups within it too) or one call.
    fn system_calls_of(analyze: &Path, item: &str) -> Vec<String> {
        if !item.starts_with('@') {
            return vec![item.to_string()];
        }
        let output = Command::new(analyze).args(["syscall-filter", item]).output().expect("run systemd-analyze");
        assert!(
            output.status.success(),
            "systemd-analyze syscall-filter {item}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(listing.starts_with(item), "systemd-analyze does not know {item}:\n{listing}");
        listing
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|entry| !entry.is_empty() && !entry.starts_with('#'))
            .flat_map(|entry| system_calls_of(analyze, entry))
            .collect()
    }

    /// The calls the unit's filter lets through: its allow list less every `~` list after it.
    fn allowed_system_calls(analyze: &Path, unit: &str) -> BTreeSet<String> {
        let filters = unit_values(unit, "SystemCallFilter");
        let (denied, allowed): (Vec<&str>, Vec<&str>) = filters.iter().partition(|filter| filter.starts_with('~'));
        assert!(!allowed.is_empty(), "the unit has no SystemCallFilter allow list");
        let expand = |lists: &[&str]| -> BTreeSet<String> {
            lists
                .iter()
                .flat_map(|list| list.trim_start_matches('~').split_whitespace())
                .flat_map(|item| system_calls_of(analyze, item))
                .collect()
        };
        let denied = expand(&denied);
        expand(&allowed).into_iter().filter(|call| !denied.contains(call)).collect()
    }

    fn is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|status| status.lines().any(|line| line.split_whitespace().take(2).eq(["Uid:", "0"])))
    }

    /// Waits up to ten seconds for `done` to hold of the file's text; returns the text.
    fn wait_for(path: &Path, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if done(&text) || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends `signal` (a name: HUP, TERM…) to `pid` with the shell's own kill, which needs no
    /// procps.
    fn send(signal: &str, pid: &str) -> bool {
        let status = Command::new("sh").args(["-c", r#"kill -s "$0" "$1""#, signal, pid]).status();
        status.is_ok_and(|status| status.success())
    }

    /// strace's exit status (credwatch's), or `None` if both had to be killed after ten seconds.
    fn wait_or_kill(strace: &mut std::process::Child, credwatch: &str) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(status) = strace.try_wait().expect("wait for strace") {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // Hung: a tracer's death only detaches its tracee, so both are killed.
        send("KILL", credwatch);
        let _ = strace.kill();
        let _ = strace.wait();
        None
    }

    /// A POP3 login in clear over loopback, both ends in this process; returns the server's port.
    fn pop3_login_on_loopback() -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        let port = listener.local_addr().expect("bound address").port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let mut from_client = BufReader::new(server.try_clone().expect("clone"));
        let mut from_server = BufReader::new(client.try_clone().expect("clone"));
        let mut line = String::new();
        for (say, answer) in [
            ("", "+OK POP3 ready\r\n"),
            ("USER sandbox\r\n", "+OK\r\n"),
            ("PASS not-a-real-one\r\n", "+OK logged in\r\n"),
        ] {
            if !say.is_empty() {
                client.write_all(say.as_bytes()).expect("client writes");
                line.clear();
                from_client.read_line(&mut line).expect("server reads");
            }
            server.write_all(answer.as_bytes()).expect("server writes");
            line.clear();
            from_server.read_line(&mut line).expect("client reads");
        }
        client.write_all(b"QUIT\r\n").expect("client writes");
        port
    }

    /// The system call of each line of `strace -f` output (`PID name(args…`), resumed lines left out.
    fn traced_calls(trace: &str) -> impl Iterator<Item = (&str, &str)> {
        trace.lines().filter_map(|line| {
            let call = line.split_once(' ')?.1.trim_start();
            let (name, args) = call.split_once('(')?;
            name.bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
                .then_some((name, args))
        })
    }

    #[test]
    fn live_capture_stays_inside_the_units_sandbox() {
        let Some(analyze) = systemd_analyze() else { return };
        let Some(strace) = on_path("strace") else { return skip_or_fail("strace not found (Debian package strace)") };
        if !is_root() {
            return skip_or_fail("not root: capturing on loopback needs it");
        }
        let unit = read(&contrib("credwatch.service"));
        let dir = tempfile::tempdir().expect("temp dir");
        let (trace, alerts, log) = (dir.path().join("trace"), dir.path().join("alerts"), dir.path().join("log"));
        let options = environment_file_options_on("lo");
        // --any-port: the login below goes to a port the default filter leaves out.
        let mut traced = Command::new(strace)
            .args(["-f", "-qq", "-o"])
            .arg(&trace)
            .arg(env!("CARGO_BIN_EXE_credwatch"))
            .args(["live", "-f", "json", "--allow-root", "--any-port"])
            .args(&options)
            .stdout(std::fs::File::create(&alerts).expect("alerts file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("run strace");
        let started = wait_for(&log, |log| log.contains("capture opened")).contains("capture opened");
        // strace's first line is credwatch's exec, after its process id.
        let credwatch = std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let login = started.then(pop3_login_on_loopback).map(|port| format!("\"dest_port\":{port}"));
        let written = login
            .as_ref()
            .map(|login| wait_for(&alerts, |alerts| alerts.lines().any(|line| line.contains(login))))
            .unwrap_or_default();
        // The unit's reload, then its stop.
        let reloaded =
            send("HUP", &credwatch) && wait_for(&log, |log| log.contains("reopening outputs")).contains("reopening");
        let stopping = send("TERM", &credwatch);
        let status = wait_or_kill(&mut traced, &credwatch);
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(started, "credwatch did not start:\n{log}");
        assert!(stopping, "cannot signal credwatch (pid {credwatch:?})");
        assert!(reloaded, "SIGHUP (the unit's reload) was not handled:\n{log}");
        assert!(
            written.lines().any(|line| login.as_ref().is_some_and(|login| line.contains(login))
                && line.contains("cleartext_credential")),
            "no alert for the login:\n{written}\n{log}"
        );
        assert!(status.is_some_and(|status| status.success()), "credwatch under strace ended with {status:?}:\n{log}");

        let trace = std::fs::read_to_string(&trace).expect("the trace");
        let allowed = allowed_system_calls(&analyze, &unit);
        assert!(
            traced_calls(&trace).any(|(name, args)| name == "socket" && args.starts_with("AF_PACKET,")),
            "the trace holds no packet socket"
        );
        let calls: BTreeSet<&str> = traced_calls(&trace).map(|(name, _)| name).collect();
        let refused: Vec<&&str> = calls.iter().filter(|name| !allowed.contains(**name)).collect();
        assert!(refused.is_empty(), "calls the unit's SystemCallFilter refuses: {refused:?}");

        let families: Vec<&str> =
            unit_values(&unit, "RestrictAddressFamilies").iter().flat_map(|list| list.split_whitespace()).collect();
        assert!(!families.is_empty(), "the unit restricts no address family");
        for (_, args) in traced_calls(&trace).filter(|(name, _)| *name == "socket") {
            let family = args.split(',').next().unwrap_or_default();
            assert!(families.contains(&family), "socket({args} is outside RestrictAddressFamilies {families:?}");
        }

        assert_eq!(unit_values(&unit, "MemoryDenyWriteExecute"), ["yes"]);
        for (name, args) in
            traced_calls(&trace).filter(|(name, _)| matches!(*name, "mmap" | "mprotect" | "pkey_mprotect"))
        {
            assert!(
                !(args.contains("PROT_WRITE") && args.contains("PROT_EXEC")),
                "{name}({args} maps writable and executable memory"
            );
        }
    }
}
