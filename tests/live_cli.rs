//! `credwatch live` as a daemon's supervisor sees it: what it says when it cannot start, and its
//! exit status. Each run captures on the loopback of a network namespace of its own (`unshare
//! --net`), so nothing but what the test sends is seen.
//!
//! They need the `live` feature, root (namespaces, capture), and util-linux's `unshare` and
//! `setpriv` with iproute2's `ip`: without those a test says so and passes as skipped, unless
//! `CREDWATCH_E2E=1` (set by CI) makes it a failure.
#![cfg(all(target_os = "linux", feature = "live"))]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

    // What the command line asks that cannot be done is a bad command line (status 2), said
    // before anything is opened: a filter that does not compile, an account that is not there,
    // root without --user.
    let bad_filter = in_own_namespace(&["live", "--allow-root", "-i", "lo", "--filter", "tcp port"]).output().unwrap();
    let said = stderr(&bad_filter);
    assert_eq!(bad_filter.status.code(), Some(2), "{said}");
    assert!(said.contains("--filter \"tcp port\" does not compile"), "{said}");
    assert!(!said.contains(PRIVILEGES_HINT), "a bad filter is no matter of privileges: {said}");
    let no_such_user = in_own_namespace(&["live", "-i", "lo", "--user", "credwatch-nobody-here"]).output().unwrap();
    let said = stderr(&no_such_user);
    assert_eq!(no_such_user.status.code(), Some(2), "{said}");
    assert!(said.contains("no such user: credwatch-nobody-here") && !said.contains("capture opened"), "{said}");
    let as_root = in_own_namespace(&["live", "-i", "lo"]).output().unwrap();
    let said = stderr(&as_root);
    assert_eq!(as_root.status.code(), Some(2), "{said}");
    assert!(said.contains("refusing to analyse packets as root"), "{said}");

    let unprivileged = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", BINARY, "live", "-i", "lo"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let said = stderr(&unprivileged);
    assert_eq!(unprivileged.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot open the capture") && said.contains(PRIVILEGES_HINT), "{said}");
}

/// With `--user`, outputs are opened once root is dropped: a file only root may write fails with
/// a message that says so, since the same command without `--user` would open it.
#[test]
fn an_output_the_user_cannot_write_names_the_user_and_why() {
    if !prerequisites() {
        return;
    }
    let nobody = std::fs::read_to_string("/etc/passwd").unwrap_or_default().lines().any(|l| l.starts_with("nobody:"));
    if !nobody {
        skip_or_fail("no user nobody to switch to");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = format!("file:{}", dir.path().join("alerts.jsonl").display());
    let refused = in_own_namespace(&["live", "-i", "lo", "--user", "nobody", "-o", &file]).output().unwrap();
    let said = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot open an output as user nobody (with --user, outputs are opened once root is dropped"),
        "{said}"
    );
    assert!(said.contains(&file) && said.contains("Permission denied"), "{said}");
}

/// A `credwatch live` running in a namespace of its own, its standard output and error in files.
struct Running {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Running {
    /// Starts `credwatch ARGS` in its own namespace, standard output to `stdout` (a file of the
    /// run's directory unless given), and waits until it captures.
    fn start(args: &[&str], stdout: Option<Stdio>) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let stdout = stdout.unwrap_or_else(|| std::fs::File::create(dir.path().join("stdout")).unwrap().into());
        let child = in_own_namespace(args)
            .stdout(stdout)
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let running = Running { child, dir };
        let opened = running.wait_for("stderr", |log| log.contains("capture opened") || log.contains("credwatch: "));
        assert!(opened.contains("capture opened"), "credwatch did not start: {opened}");
        running
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits up to 20 s for `done` to hold of the file's text; returns the text.
    fn wait_for(&self, name: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.read(name);
            if done(&text) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (unshare and sh exec'd credwatch: the child is credwatch itself).
    fn terminate(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("sh").args(["-c", r#"kill -s TERM "$0""#, &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// The exit status, or `None` if it had to be killed after `within`.
    fn exit_status(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

fn events_schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema/events.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

/// Payload buffers may hold passwords: a live run writes no core dump, whatever limit it was
/// started with (here unlimited), and cannot raise its limit again.
#[test]
fn a_live_run_writes_no_core_dump() {
    if !prerequisites() {
        return;
    }
    let mut credwatch = Running::start(&["live", "--allow-root", "-i", "lo"], None);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", credwatch.child.id())).unwrap();
    credwatch.terminate();
    let status = credwatch.exit_status(Duration::from_secs(20));
    let core = limits.lines().find(|line| line.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(), ["0", "0"], "{limits}");
    assert_eq!(status, Some(0), "{}", credwatch.read("stderr"));
}

/// An output that loses records shows it in the periodic `stats` events while the run goes on,
/// and in the exit status (4, as `read` does) after a clean stop.
#[test]
fn records_an_output_lost_show_in_the_stats_and_the_exit_status() {
    if !prerequisites() {
        return;
    }
    // /dev/full takes the file open and fails every write.
    let args = ["live", "--allow-root", "-i", "lo", "-f", "json", "--stats-interval", "1", "-o", "stdout"];
    let mut credwatch = Running::start(&[&args[..], &["-o", "file:/dev/full"]].concat(), None);
    let lost_shows = |text: &str| {
        json_lines(text).iter().any(|event| {
            event["event_type"] == "stats"
                && event["outputs"].as_array().is_some_and(|outputs| {
                    outputs.iter().any(|output| output["name"] == "file:/dev/full" && output["lost"].as_u64() > Some(0))
                })
        })
    };
    let during = credwatch.wait_for("stdout", lost_shows);
    credwatch.terminate();
    let status = credwatch.exit_status(Duration::from_secs(20));
    let (stdout, stderr) = (credwatch.read("stdout"), credwatch.read("stderr"));
    assert!(lost_shows(&during), "no periodic stats told of the lost records: {during}\n{stderr}");
    let schema = events_schema();
    for event in json_lines(&stdout) {
        let errors: Vec<String> = schema.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{event}: {errors:?}");
    }
    let last = json_lines(&stdout).into_iter().rfind(|event| event["event_type"] == "stats").unwrap();
    let stdout_counters = last["outputs"].as_array().unwrap().iter().find(|output| output["name"] == "stdout");
    assert_eq!(stdout_counters.map(|counters| &counters["lost"]), Some(&0.into()), "{last}");
    assert!(stderr.contains("outputs_undelivered="), "the stats log line counts them too: {stderr}");
    assert_eq!(status, Some(4), "{stderr}");
}

/// Standard output failing for good (a full disk under systemd's `StandardOutput=append:`) ends
/// the run at once with status 1, for `Restart=on-failure`, instead of capturing into nowhere.
#[test]
fn a_failing_standard_output_ends_the_run_with_status_1() {
    if !prerequisites() {
        return;
    }
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let args = ["live", "--allow-root", "-i", "lo", "-f", "json", "--stats-interval", "1"];
    let mut credwatch = Running::start(&args, Some(full.into()));
    let status = credwatch.exit_status(Duration::from_secs(20));
    let stderr = credwatch.read("stderr");
    assert_eq!(status, Some(1), "without a signal, once the first stats event could not be written: {stderr}");
    assert!(stderr.contains("cannot write output: No space left on device"), "{stderr}");
}

/// A clean stop waits for standard output, which a reader that stopped reading holds for ever: a
/// second SIGTERM (systemd's stop timeout, or an operator) exits at once with status 1, saying
/// what it cost.
#[test]
fn a_second_stop_signal_cuts_a_stuck_stop_short_and_says_so() {
    use std::io::Write;
    if !prerequisites() {
        return;
    }
    let (reader, mut writer) = std::io::pipe().unwrap();
    let stdout = writer.try_clone().unwrap();
    // Fills the pipe, then blocks until the reader goes at the test's end.
    std::thread::spawn(move || writer.write_all(&vec![b'\n'; 1 << 20]));
    std::thread::sleep(Duration::from_millis(200));
    let args = ["live", "--allow-root", "-i", "lo", "-f", "json", "--stats-interval", "1"];
    let mut credwatch = Running::start(&args, Some(stdout.into()));
    // A stats event is due after a second: the output thread is then stuck writing it.
    std::thread::sleep(Duration::from_millis(1500));
    credwatch.terminate();
    std::thread::sleep(Duration::from_millis(700));
    let waiting = credwatch.child.try_wait().unwrap().is_none();
    assert!(waiting, "the stop did not wait for standard output: {}", credwatch.read("stderr"));
    credwatch.terminate();
    let status = credwatch.exit_status(Duration::from_secs(5));
    let stderr = credwatch.read("stderr");
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("a second stop signal: exiting at once, without writing"), "{stderr}");
    drop(reader);

    // Standard error stuck as well (`2>&1 | stalled`): the second signal's log line cannot be
    // written, and the exit does not wait for it.
    let (reader, mut writer) = std::io::pipe().unwrap();
    let (stdout, stderr) = (writer.try_clone().unwrap(), writer.try_clone().unwrap());
    std::thread::spawn(move || writer.write_all(&vec![b'\n'; 1 << 20]));
    std::thread::sleep(Duration::from_millis(200));
    let child = in_own_namespace(&args).stdout(stdout).stderr(stderr).spawn().unwrap();
    let mut credwatch = Running { child, dir: tempfile::tempdir().unwrap() };
    std::thread::sleep(Duration::from_millis(1000));
    credwatch.terminate();
    std::thread::sleep(Duration::from_millis(300));
    credwatch.terminate();
    assert_eq!(credwatch.exit_status(Duration::from_secs(5)), Some(1), "a second signal exits, whatever blocks");
    drop(reader);
}
