//! `credwatch report --html`: the page holds what `read` reports (every server, its counts and
//! masked users, the posture classes), stays one self-contained file, and shows hostile wire
//! strings as text. The headless-Chromium tests load the page for real: the DOM has the expected
//! rows, nothing leaves the machine, a screenshot is taken. They skip when `chromium` is not
//! installed, unless `CREDWATCH_CHROMIUM=1` (CI) makes its absence a failure.
//!
//! `CREDWATCH_WRITE_SCREENSHOT=1 cargo test --test report` refreshes `docs/report.png`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use credwatch::capture::Timestamp;
use credwatch::pcapwriter::{write_pcap_file, Conversation, Side};
use serde_json::Value;

/// Runs `credwatch report --html OUT extra... inputs...` and returns the page.
fn report(inputs: &[&Path], extra: &[&str], out: &Path) -> String {
    let mut args = vec!["report", "--html", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(inputs.iter().map(String::as_str));
    let output = common::credwatch(&args, &[]);
    assert!(output.status.success(), "credwatch report failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read_to_string(out).unwrap()
}

/// The rows of the table with this class, between its `<tbody>` and `</tbody>`.
fn table_rows<'a>(page: &'a str, class: &str) -> Vec<&'a str> {
    let Some(table) = page.split(&format!("<table class=\"{class}\">")).nth(1) else { return Vec::new() };
    let body = table.split("<tbody>").nth(1).unwrap().split("</tbody>").next().unwrap();
    body.split("<tr>").skip(1).collect()
}

fn socket(event: &Value) -> String {
    let ip: std::net::IpAddr = event["ip"].as_str().unwrap().parse().unwrap();
    std::net::SocketAddr::new(ip, event["port"].as_u64().unwrap() as u16).to_string()
}

/// Every `server_report` and `server_posture` of `read --format json` has its row, in order, with
/// its figures; the headline counts match.
fn assert_page_matches_read(page: &str, inputs: &[&Path]) {
    let events = common::read_json(inputs, &[]);
    let servers = common::of_type(&events, "server_report");
    let postures = common::of_type(&events, "server_posture");
    let rows = table_rows(page, "servers");
    assert_eq!(rows.len(), servers.len(), "one row per server_report");
    for (row, server) in rows.iter().zip(&servers) {
        assert!(row.contains(&socket(server)), "row for {} in order: {row}", socket(server));
        let cleartext = server["cleartext"].as_u64().unwrap();
        if cleartext > 0 {
            assert!(row.contains(&format!("{cleartext} cleartext</span>")), "{row}");
        }
        assert!(row.contains(&format!("<strong>{}</strong>", server["users"])), "{row}");
        for name in server["user_names"].as_array().unwrap() {
            let name = name.as_str().unwrap().replace('&', "&amp;").replace('<', "&lt;");
            assert!(row.contains(&name), "user {name} listed: {row}");
        }
    }
    assert_eq!(table_rows(page, "posture").len(), postures.len(), "one row per server_posture");
    let accepting =
        postures.iter().filter(|p| p["class"] == "no_tls" || p["cleartext_logins"].as_u64().unwrap_or(0) > 0).count();
    assert!(page.contains(&format!("<strong>{accepting}</strong> of {} mail server", postures.len())));
    let cleartext = common::of_type(&events, "cleartext_credential").len();
    assert!(page.contains(&format!("<div class=\"value\">{cleartext}</div><div class=\"label\">passwords")));
}

#[test]
fn demo_report_holds_every_server_and_posture() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::repo_path("fixtures/demo.pcap");
    let page = report(&[&demo], &[], &dir.path().join("report.html"));
    assert_page_matches_read(&page, &[&demo]);
    assert!(page.contains("<svg class=\"chart\""), "exposure chart");
    assert!(page.contains("b***@example.test"), "masked user names");
    assert!(page.contains("Client skipped STARTTLS") && page.contains("Server offers no TLS"));
    for secret in ["Demo-Pop3-Secret", "Demo imap {secret}", "Demo-Smtp-Secret", "Demo-Tls-Secret", "ya29.Demo-Token"] {
        assert!(!page.contains(secret), "secret {secret:?} in the page");
    }
}

#[test]
fn report_writes_nothing_on_stdout_unless_outputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::repo_path("fixtures/demo.pcap");
    let html = dir.path().join("report.html");
    let quiet = common::credwatch(&["report", "--html", html.to_str().unwrap(), demo.to_str().unwrap()], &[]);
    assert!(quiet.status.success() && quiet.stdout.is_empty());
    let with_json = common::credwatch(
        &["report", "--html", html.to_str().unwrap(), "--output", "stdout", "-f", "json", demo.to_str().unwrap()],
        &[],
    );
    assert!(with_json.status.success());
    let events = common::parse_lines(&with_json.stdout);
    assert_eq!(common::of_type(&events, "cleartext_credential").len(), 4);
    let missing = common::credwatch(&["report", "--html", "/nonexistent-dir/r.html", demo.to_str().unwrap()], &[]);
    assert_eq!(missing.status.code(), Some(1), "an unwritable page is a fatal error");
}

/// A page over inputs that could not all be read says so first, naming them: it is mailed around
/// without the exit status.
#[test]
fn a_page_over_inputs_that_could_not_be_read_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let demo = common::repo_path("fixtures/demo.pcap");
    for inputs in [&["/nonexistent.pcap"][..], &["/nonexistent.pcap", demo.to_str().unwrap()]] {
        let mut args = vec!["report", "--html", html.to_str().unwrap()];
        args.extend_from_slice(inputs);
        let output = common::credwatch(&args, &[]);
        assert_eq!(output.status.code(), Some(3));
        let page = std::fs::read_to_string(&html).unwrap();
        let main = page.split("<main>").nth(1).unwrap();
        assert!(main.starts_with("\n<section id=\"unread\""), "{main}");
        assert!(main.contains("Incomplete: 1 file could not be read to its end"), "{main}");
        assert!(main.contains("/nonexistent.pcap: "), "{main}");
        assert!(!page.contains("No credential crossed the network in clear."), "{page}");
    }
}

/// A page that cannot be written is a fatal error naming the file, its cause said once.
#[test]
fn a_page_that_cannot_be_written_says_which_and_why_once() {
    let demo = common::repo_path("fixtures/demo.pcap");
    let full = common::credwatch(&["report", "--html", "/dev/full", demo.to_str().unwrap()], &[]);
    assert_eq!(full.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(stderr.trim_end(), "credwatch: cannot write output: /dev/full: No space left on device (os error 28)");
}

#[test]
fn dedup_does_not_thin_the_chart() {
    let Some(corpus) = common::shared_corpus("real") else { return };
    let polling = corpus.join("pop3-polling.pcap");
    let dir = tempfile::tempdir().unwrap();
    let page = report(&[&polling], &["--dedup-window", "1h"], &dir.path().join("r.html"));
    assert!(page.contains("<div class=\"value\">5</div><div class=\"label\">passwords"), "5 logins counted");
}

#[test]
fn corpus_report_holds_every_server_and_posture() {
    let Some(corpus) = common::shared_corpus("real") else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = report(&[&corpus], &[], &dir.path().join("report.html"));
    assert_page_matches_read(&page, &[&corpus]);
}

/// A capture whose server greeting, capabilities and user name are HTML and script.
fn hostile_capture(dir: &Path) -> PathBuf {
    let path = dir.join("hostile.pcap");
    let frames = Conversation::new(([192, 0, 2, 66], 50066), ([198, 51, 100, 66], 110))
        .start_at(Timestamp::from_secs_nanos(1_795_770_000, 0))
        .handshake()
        .server(b"+OK <script>document.title='pwned'</script><img src=x onerror=alert(1)> ready\r\n")
        .client(b"CAPA\r\n")
        .server(b"+OK\r\nUSER\r\nX-<b>bold</b>\r\n.\r\n")
        .client(b"USER <iframe src=\"javascript:alert(2)\">\"'&amp;\r\n")
        .server(b"+OK\r\n")
        .client(b"PASS Hostile-Secret-1\r\n")
        .server(b"+OK\r\n")
        .fin(Side::Client)
        .frames()
        .unwrap();
    write_pcap_file(&path, &frames).unwrap();
    path
}

#[test]
fn hostile_wire_strings_are_shown_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let capture = hostile_capture(dir.path());
    let page = report(&[&capture], &["--show-usernames"], &dir.path().join("hostile.html"));
    for markup in ["<script", "<img", "<iframe", "<b>", "javascript:alert(2)\">"] {
        assert!(!page.contains(markup), "{markup} reached the page as markup");
    }
    assert!(page.contains("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;"));
    assert!(page.contains("&lt;iframe src=&quot;javascript:alert(2)&quot;&gt;&quot;&#39;&amp;amp;"));
    assert!(!page.contains("Hostile-Secret-1"));
}

// --- headless Chromium -------------------------------------------------------------------------

/// The Chromium binary, or `None` (with a message) when absent and not required.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CREDWATCH_CHROMIUM").is_none_or(|v| v != "1"),
            "CREDWATCH_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium; CREDWATCH_CHROMIUM=1 requires it)");
    }
    found
}

/// What Chromium made of a page: its DOM after load, and the URLs of every request the page
/// itself started (the browser's own background requests, whose initiator is "not an origin",
/// are left out; all name resolution fails anyway).
struct Loaded {
    dom: String,
    page_requests: Vec<String>,
}

fn headless(chromium: &Path, profile: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra);
    command
}

fn load(chromium: &Path, page: &Path) -> Loaded {
    let work = tempfile::tempdir().unwrap();
    let net_log = work.path().join("net-log.json");
    let output = headless(chromium, &work.path().join("profile"), &["--dump-dom"])
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg(file_url(page))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&net_log).unwrap()).unwrap();
    let start_job = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    let page_requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| &event["type"] == start_job && event["params"]["url"].is_string())
        .filter(|event| event["params"]["initiator"] != "not an origin")
        .map(|event| event["params"]["url"].as_str().unwrap().to_string())
        .collect();
    Loaded { dom: String::from_utf8(output.stdout).unwrap(), page_requests }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.canonicalize().unwrap().display())
}

#[test]
fn chromium_sees_the_request_of_a_page_that_makes_one() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.html");
    std::fs::write(&control, "<!DOCTYPE html><img src=\"http://credwatch-control.invalid/x.png\">").unwrap();
    let loaded = load(&chromium, &control);
    assert_eq!(loaded.page_requests, ["http://credwatch-control.invalid/x.png"], "the detector works");
}

#[test]
fn chromium_renders_the_demo_report_without_network() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let demo = common::repo_path("fixtures/demo.pcap");
    let html = dir.path().join("report.html");
    let page = report(&[&demo], &[], &html);
    let loaded = load(&chromium, &html);
    assert_eq!(loaded.page_requests, Vec::<String>::new(), "the page fetched nothing");
    let servers = common::of_type(&common::read_json(&[&demo], &[]), "server_report").len();
    assert_eq!(table_rows(&loaded.dom, "servers").len(), servers, "the DOM has one row per server");
    assert_eq!(table_rows(&loaded.dom, "servers").len(), table_rows(&page, "servers").len());
    assert!(loaded.dom.contains("198.51.100.5:110") && loaded.dom.contains("[2001:db8::6]:10143"));
    assert!(loaded.dom.contains("<svg class=\"chart\""), "the chart is in the DOM");
    assert_eq!(loaded.dom.matches("<rect class=\"cleartext\"").count(), 4, "one red bar per second with logins");

    // The screenshot (docs/report.png) shows the page as the README's quick start makes it, with
    // the path relative to the repository.
    let output = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .current_dir(common::repo_path(""))
        .args(["report", "--html", html.to_str().unwrap(), "fixtures/demo.pcap"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let screenshot = dir.path().join("report.png");
    let output = headless(&chromium, &dir.path().join("profile"), &["--window-size=1280,2000", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(file_url(&html))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert_eq!(png.get(16..24), Some(&[0, 0, 5, 0, 0, 0, 7, 208][..]), "1280 x 2000 pixels");
    assert!(png.len() > 50_000, "a page, not a blank ({} bytes)", png.len());
    if std::env::var_os("CREDWATCH_WRITE_SCREENSHOT").is_some() {
        std::fs::write(common::repo_path("docs/report.png"), &png).unwrap();
    }
}

#[test]
fn chromium_shows_hostile_strings_as_text() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let capture = hostile_capture(dir.path());
    let html = dir.path().join("hostile.html");
    report(&[&capture], &["--show-usernames"], &html);
    let loaded = load(&chromium, &html);
    assert_eq!(loaded.page_requests, Vec::<String>::new(), "the injected img fetched nothing");
    for element in ["<script", "<img", "<iframe", "<b>"] {
        assert!(!loaded.dom.contains(element), "{element} became an element");
    }
    assert!(loaded.dom.contains("<title>credwatch report"), "the injected script did not rename the page");
    assert!(loaded.dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"), "shown as text");
}

// --- progress bar ------------------------------------------------------------------------------

/// A capture long enough to read for over a second in a debug build: a POP3 login, then a
/// mailbox download of `megabytes` MB.
fn long_capture(dir: &Path, megabytes: usize) -> PathBuf {
    let path = dir.join("long.pcap");
    let frames = Conversation::new(([192, 0, 2, 70], 50070), ([198, 51, 100, 70], 110))
        .start_at(Timestamp::from_secs_nanos(1_795_770_000, 0))
        .mss(200)
        .handshake()
        .server(b"+OK ready\r\n")
        .client(b"USER alice\r\n")
        .server(b"+OK\r\n")
        .client(b"PASS Progress-Secret-1\r\n")
        .server(b"+OK\r\n")
        .client(b"RETR 1\r\n")
        .server(&b"mail body line\r\n".repeat(megabytes << 16))
        .fin(Side::Client)
        .frames()
        .unwrap();
    write_pcap_file(&path, &frames).unwrap();
    path
}

#[test]
fn progress_is_silent_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let capture = long_capture(dir.path(), 24);
    let output = common::credwatch(&["read", "-f", "json", capture.to_str().unwrap()], &[]);
    assert!(output.status.success());
    assert_eq!(common::of_type(&common::parse_lines(&output.stdout), "cleartext_credential").len(), 1);
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "nothing on a piped stderr");
}

/// Runs a shell command under a pseudo-terminal (util-linux `script`) and returns what it printed
/// there; `None` when `script` is missing.
fn on_a_terminal(command: &str) -> Option<String> {
    let output = Command::new("script").args(["-qec", command, "/dev/null"]).output();
    match output {
        Ok(output) if output.status.success() => Some(String::from_utf8_lossy(&output.stdout).into_owned()),
        Ok(output) => panic!("script failed: {}", String::from_utf8_lossy(&output.stderr)),
        Err(_) => {
            eprintln!("skipped: util-linux `script` is not installed");
            None
        }
    }
}

#[test]
fn progress_is_drawn_on_a_terminal_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let capture = long_capture(dir.path(), 24);
    let bin = env!("CARGO_BIN_EXE_credwatch");
    // Standard input stalls after the first megabyte, so the read outlasts the bar's half-second
    // delay whatever the machine's speed.
    let slow_read = |flags: &str| {
        format!(
            "(head -c 1000000 '{0}'; sleep 0.8; tail -c +1000001 '{0}') | '{bin}' read {flags} -f json - > /dev/null",
            capture.display()
        )
    };
    let Some(shown) = on_a_terminal(&slow_read("")) else { return };
    assert!(shown.starts_with("\rstandard input "), "a line redrawn in place, named after the input: {shown:?}");
    assert!(shown.contains("MiB/s  1 alert\x1b[K"), "rate and alerts so far: {shown:?}");
    assert!(shown.ends_with("\r\x1b[K"), "cleared at the end: {shown:?}");
    assert!(!shown.contains("Progress-Secret-1"));
    assert_eq!(on_a_terminal(&slow_read("-q")).unwrap(), "", "-q silences it");
}
