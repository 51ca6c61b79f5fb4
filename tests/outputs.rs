//! The SIEM-facing outputs, through the binary: every emitted line validates against the JSON
//! Schemas in `docs/schema/`, dedup collapses a polling client, several sinks run at once, and
//! syslog reaches a real listener on loopback.

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

fn schema(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(common::repo_path(&format!("docs/schema/{name}"))).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"));
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, line: &Value, origin: &str) {
    let errors: Vec<String> = validator.iter_errors(line).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{origin}: {line}\n{}", errors.join("\n"));
}

/// The demo fixture and every capture of the shared corpora that are present.
fn captures() -> Vec<PathBuf> {
    let mut files = vec![common::repo_path("fixtures/demo.pcap")];
    for corpus in ["real", "public"] {
        if let Some(dir) = common::shared_corpus(corpus) {
            files.push(dir);
        }
    }
    files
}

fn run_json(capture: &Path, extra: &[&str]) -> Vec<Value> {
    common::read_json(&[capture], extra)
}

#[test]
fn every_native_line_matches_the_schema() {
    let validator = schema("events.schema.json");
    let mut seen = std::collections::BTreeSet::new();
    for extra in [&[][..], &["--show-usernames", "--dedup-window", "1h", "--stats"][..]] {
        for capture in captures() {
            for line in run_json(&capture, extra) {
                assert_valid(&validator, &line, &format!("{} {extra:?}", capture.display()));
                seen.insert(line["event_type"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    for event_type in ["cleartext_credential", "weak_credential", "server_report", "server_posture", "stats"] {
        assert!(seen.contains(event_type), "no {event_type} was checked: {seen:?}");
    }
    if common::shared_corpus("real").is_some() {
        assert!(seen.contains("repeat_summary"), "no repeat_summary was checked: {seen:?}");
    }
}

#[test]
fn every_ecs_line_matches_the_ecs_schema() {
    let validator = schema("ecs.schema.json");
    let mut kinds = std::collections::BTreeSet::new();
    for capture in captures() {
        for line in run_json(&capture, &["--output", "stdout,format=ecs", "--dedup-window", "1h", "--stats"]) {
            assert_valid(&validator, &line, &capture.display().to_string());
            kinds.insert(line["event"]["kind"].as_str().unwrap_or_default().to_string());
        }
    }
    assert!(kinds.contains("alert") && kinds.contains("state") && kinds.contains("metric"), "{kinds:?}");
}

/// A ManageSieve login (a protocol none of the fixtures or corpora holds), written by the pcap
/// writer: its alert, server report and posture match both schemas.
#[test]
fn a_managesieve_login_matches_both_schemas() {
    let mut conversation = credwatch::pcapwriter::Conversation::new(([10, 3, 0, 5], 40_190), ([10, 3, 0, 9], 4190));
    conversation
        .handshake()
        .server(b"\"IMPLEMENTATION\" \"Cyrus timsieved v3.4.5\"\r\n\"SASL\" \"PLAIN\"\r\n\"STARTTLS\"\r\nOK\r\n")
        .client(b"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAG5vdC1hLXJlYWwtcGFzc3dvcmQ=\"\r\n")
        .server(b"OK\r\n");
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("managesieve.pcap");
    credwatch::pcapwriter::write_pcap_file(&capture, &conversation.frames().unwrap()).unwrap();

    let native = schema("events.schema.json");
    let lines = run_json(&capture, &["--stats"]);
    for line in &lines {
        assert_valid(&native, line, "managesieve");
    }
    let alert = lines.iter().find(|line| line["event_type"] == "cleartext_credential").expect("an alert");
    assert_eq!(alert["app_proto"], "managesieve");
    assert_eq!(alert["credential"]["mechanism"], "AUTHENTICATE PLAIN");
    assert_eq!(alert["server"]["software"], "Cyrus");
    assert_eq!(alert["remediation"], "client_skipped_starttls");
    let posture = lines.iter().find(|line| line["event_type"] == "server_posture").expect("a posture");
    assert_eq!(posture["app_proto"], "managesieve");
    assert_eq!(
        posture["plaintext_mechanisms"],
        serde_json::json!(["AUTHENTICATE PLAIN"]),
        "named as its alert names it"
    );

    let ecs = schema("ecs.schema.json");
    let documents = run_json(&capture, &["--output", "stdout,format=ecs"]);
    for document in &documents {
        assert_valid(&ecs, document, "managesieve (ECS)");
    }
    assert!(documents.iter().any(|document| document["network"]["protocol"] == "managesieve"));
}

/// The tables for people keep their columns when a row's protocol name (`managesieve`) or list
/// of plaintext mechanisms (Dovecot's) is longer than most: every row's server address starts
/// under its header.
#[test]
fn the_text_tables_keep_their_columns_for_long_values() {
    let mut sieve = credwatch::pcapwriter::Conversation::new(([10, 3, 0, 5], 40_191), ([10, 3, 0, 9], 4190));
    sieve
        .handshake()
        .server(b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\nOK\r\n")
        .client(b"AUTHENTICATE \"PLAIN\" \"AGFsaWNlAG5vdC1hLXJlYWwtcGFzc3dvcmQ=\"\r\n")
        .server(b"OK\r\n");
    let mut imap = credwatch::pcapwriter::Conversation::new(([10, 3, 0, 5], 40_192), ([10, 3, 0, 9], 143));
    imap.handshake()
        .server(b"* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ STARTTLS AUTH=PLAIN AUTH=LOGIN AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready\r\n")
        .client(b"a1 LOGIN alice not-a-real-password\r\n")
        .server(b"a1 OK\r\n");
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("tables.pcap");
    let frames = credwatch::pcapwriter::interleave([sieve.frames().unwrap(), imap.frames().unwrap()]);
    credwatch::pcapwriter::write_pcap_file(&capture, &frames).unwrap();
    for command in ["read", "posture"] {
        let output = common::credwatch(&[command, "--format", "text", capture.to_str().unwrap()], &[]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let header = text.lines().find(|line| line.contains("SERVER")).expect("a table");
        let column = header.find("SERVER").unwrap();
        let rows: Vec<&str> =
            text.lines().filter(|line| line.contains("10.3.0.9:")).filter(|line| line.starts_with("  ")).collect();
        assert_eq!(rows.len(), 2, "{text}");
        for row in rows {
            assert_eq!(row.find("10.3.0.9:"), Some(column), "{command}: {text}");
            let after_mechanisms = header.find("SESSIONS").map(|at| row.get(at..at + 8));
            assert!(
                after_mechanisms.is_none_or(|cell| cell.is_some_and(|cell| cell.trim().parse::<u64>().is_ok())),
                "{command}: {text}"
            );
        }
    }
}

#[test]
fn schema_rejects_what_the_contract_forbids() {
    let validator = schema("events.schema.json");
    let mut line = run_json(&common::repo_path("fixtures/demo.pcap"), &[]).remove(0);
    assert!(validator.is_valid(&line));
    line["credential"]["password"] = Value::from("hunter2");
    assert!(!validator.is_valid(&line), "an unknown field must fail validation");
    line["credential"].as_object_mut().unwrap().remove("password");
    line["community_id"] = Value::from("1:not-a-hash");
    assert!(!validator.is_valid(&line));
}

fn polling() -> Option<PathBuf> {
    common::shared_corpus("real").map(|dir| dir.join("pop3-polling.pcap"))
}

#[test]
fn a_polling_client_raises_five_alerts_without_a_window() {
    let Some(capture) = polling() else { return };
    let events = run_json(&capture, &[]);
    assert_eq!(common::of_type(&events, "cleartext_credential").len(), 5);
    assert!(common::of_type(&events, "repeat_summary").is_empty());
}

#[test]
fn a_polling_client_raises_one_alert_and_one_repeat_summary_with_a_window() {
    let Some(capture) = polling() else { return };
    let events = run_json(&capture, &["--dedup-window", "10m"]);
    let alerts = common::of_type(&events, "cleartext_credential");
    let repeats = common::of_type(&events, "repeat_summary");
    assert_eq!((alerts.len(), repeats.len()), (1, 1), "{events:#?}");
    let (alert, repeat) = (alerts[0], repeats[0]);
    assert_eq!(repeat["repeat_count"], 5);
    assert_eq!(repeat["first_seen"], alert["timestamp"]);
    assert!(repeat["last_seen"].as_str() > repeat["first_seen"].as_str());
    assert_eq!(repeat["timestamp"], repeat["last_seen"]);
    assert_eq!(repeat["repeated_event_type"], "cleartext_credential");
    for field in ["dest_ip", "dest_port", "app_proto", "severity"] {
        assert_eq!(repeat[field], alert[field], "{field}");
    }
    for field in ["mechanism", "username", "outcome"] {
        assert_eq!(repeat["credential"][field], alert["credential"][field], "{field}");
    }
    let order: Vec<&str> = events.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(order, ["cleartext_credential", "repeat_summary", "server_posture", "server_report"]);
    let report = common::of_type(&events, "server_report")[0];
    assert_eq!(report["cleartext"], 5, "the inventory counts every login, deduplicated or not");
    assert_eq!(report["successes"], 5);
    assert_eq!(report["user_names"], serde_json::json!([alert["credential"]["username"]]));
}

/// The example of docs/outputs.md, on the repository's own capture of fetchmail polling.
#[test]
fn the_documented_dedup_example_holds() {
    let capture = common::repo_path("fixtures/e2e/pop3-polling.pcap");
    assert_eq!(common::of_type(&run_json(&capture, &[]), "cleartext_credential").len(), 3);
    let events = run_json(&capture, &["--dedup-window", "10m"]);
    assert_eq!(common::of_type(&events, "cleartext_credential").len(), 1);
    let repeats = common::of_type(&events, "repeat_summary");
    assert_eq!(repeats.len(), 1);
    assert_eq!(repeats[0]["repeat_count"], 3);
}

#[test]
fn a_short_window_closes_between_polls() {
    let Some(capture) = polling() else { return };
    let events = run_json(&capture, &["--dedup-window", "1s"]);
    let alerts = common::of_type(&events, "cleartext_credential").len();
    let repeated: u64 =
        common::of_type(&events, "repeat_summary").iter().map(|r| r["repeat_count"].as_u64().unwrap() - 1).sum();
    assert!(alerts > 1, "polls about a second apart must open new windows");
    assert_eq!(alerts as u64 + repeated, 5, "nothing is lost: alerts plus held-back repeats make five");
}

#[test]
fn several_outputs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.ecs.json");
    let text = dir.path().join("alerts.txt");
    let output = common::credwatch(
        &[
            "read",
            "--format",
            "json",
            "--output",
            "stdout",
            "--output",
            &format!("file:{},format=ecs", file.display()),
            "--output",
            &format!("file:{},format=text", text.display()),
            "fixtures/demo.pcap",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let native = common::parse_lines(&output.stdout);
    let ecs = common::parse_lines(&std::fs::read(&file).unwrap());
    assert_eq!(native.len(), ecs.len());
    assert!(native.len() >= 6);
    for (native, ecs) in native.iter().zip(&ecs) {
        assert_eq!(native["event_type"], ecs["credwatch"]["event_type"]);
        if let Some(community_id) = native.get("community_id") {
            assert_eq!(community_id, &ecs["network"]["community_id"]);
        }
    }
    let text = std::fs::read_to_string(&text).unwrap();
    assert_eq!(text.lines().count(), native.len());
    assert!(text.lines().any(|line| line.contains("CLEARTEXT") && line.contains("USER/PASS")));
}

#[test]
fn syslog_over_udp_from_the_binary() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let target = format!("syslog+udp://{},facility=local3", listener.local_addr().unwrap());
    let output = common::credwatch(&["read", "--output", &target, "fixtures/demo.pcap"], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty(), "stdout is not an output unless named");
    let expected = run_json(&common::repo_path("fixtures/demo.pcap"), &[]);
    let validator = schema("events.schema.json");
    let mut buffer = vec![0u8; 65_536];
    for want in &expected {
        let len = listener.recv(&mut buffer).unwrap();
        let message = std::str::from_utf8(&buffer[..len]).unwrap();
        let (header, json) = message.split_once(" - ").unwrap();
        let fields: Vec<&str> = header.split(' ').collect();
        let pri = fields[0].strip_prefix('<').unwrap().split_once(">1").unwrap().0;
        let severity = match want["event_type"].as_str().unwrap() {
            "cleartext_credential" => 3,
            "weak_credential" => 4,
            "anomaly" => 5,
            _ => 6,
        };
        assert_eq!(pri.parse::<u32>().unwrap(), 19 * 8 + severity, "{message}");
        assert_eq!(fields[3], "credwatch");
        assert_eq!(fields[5], want["event_type"]);
        let got: Value = serde_json::from_str(json).unwrap();
        assert_valid(&validator, &got, "syslog");
        assert_eq!(got["event_type"], want["event_type"]);
        assert_eq!(got["timestamp"].as_str().or(got["last_seen"].as_str()), Some(fields[1]));
    }
}

#[test]
fn an_unreachable_syslog_server_does_not_stop_the_run_but_sets_the_exit_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let syslog = format!("syslog+tcp://127.0.0.1:{port}");
    // With a dedup window too: the loss is told through the window's sink.
    for window in [None, Some("1h")] {
        let mut args = vec!["read", "--format", "json", "--output", "stdout", "--output", &syslog];
        args.extend(window.iter().flat_map(|window| ["--dedup-window", *window]));
        args.push("fixtures/demo.pcap");
        let started = std::time::Instant::now();
        let output = common::credwatch(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(4), "records were lost ({window:?}): {stderr}");
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(!common::parse_lines(&output.stdout).is_empty(), "stdout still gets everything");
        assert!(stderr.contains("did not reach"), "the loss is reported: {stderr}");
    }
}

/// An SMTP AUTH PLAIN login whose authentication identity carries a line break, escape
/// sequences and a forged alert line after its `@` (which masking therefore hides: no host name).
fn forged_line_login(dir: &Path) -> PathBuf {
    use base64::Engine as _;
    let authcid = "x@corp.test\n2026-05-28T20:26:40.009999Z  CLEARTEXT  smtp  AUTH PLAIN  v***  success  \
                   10.9.9.9:5555 -> 10.0.0.2:25  forged\x1b[2K\x1b[1A\r";
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0{authcid}\0not-a-real-password"));
    let mut conversation = credwatch::pcapwriter::Conversation::new(([10, 0, 0, 1], 40_000), ([10, 0, 0, 2], 587));
    conversation.handshake().server(b"220 mx ESMTP\r\n").client(b"EHLO me\r\n").server(b"250 AUTH PLAIN\r\n");
    conversation.client(format!("AUTH PLAIN {blob}\r\n").as_bytes()).server(b"235 ok\r\n");
    let capture = dir.join("forged-line.pcap");
    credwatch::pcapwriter::write_pcap_file(&capture, &conversation.frames().unwrap()).unwrap();
    capture
}

/// Whether a human-readable output holds one alert line, no raw control character, and the user
/// name as `shown`.
fn assert_one_inert_alert_line(text: &str, origin: &str, shown: &str) {
    let alert_lines = text.lines().filter(|line| line.split_whitespace().nth(1) == Some("CLEARTEXT")).count();
    assert_eq!(alert_lines, 1, "{origin}: {text:?}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{origin}: {text:?}");
    assert!(text.contains(shown), "{origin}: {text:?}");
}

#[test]
fn a_user_name_cannot_forge_lines_in_text_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let capture = forged_line_login(dir.path());
    let capture = capture.to_str().unwrap();
    let output = common::credwatch(&["read", capture], &[]);
    assert!(output.status.success());
    assert_one_inert_alert_line(&String::from_utf8(output.stdout).unwrap(), "stdout", " x***  ");

    let file = dir.path().join("alerts.txt");
    let spec = format!("file:{},format=text", file.display());
    let output = common::credwatch(&["read", "-o", &spec, capture], &[]);
    assert!(output.status.success());
    assert_one_inert_alert_line(&std::fs::read_to_string(&file).unwrap(), "text file", " x***  ");

    let output = common::credwatch(&["read", "--usernames", "full", capture], &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_one_inert_alert_line(&text, "full names", "x@corp.test\\x0a2026");
}

/// Whether `c` is one of the invisible characters a greeting or user name below carries.
fn is_planted_invisible(c: char) -> bool {
    matches!(c, '\u{202e}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
}

#[test]
fn format_characters_and_separators_show_escaped_in_every_output_for_people() {
    let dir = tempfile::tempdir().unwrap();
    let mut conversation = credwatch::pcapwriter::Conversation::new(([10, 0, 0, 1], 40_007), ([10, 0, 0, 2], 110));
    conversation.handshake().server("+OK \u{202e}ydaer\u{2028}\u{2029}\u{feff} POP3\r\n".as_bytes());
    conversation.client("USER \u{202e}moc.tset@ecila\r\n".as_bytes()).server(b"+OK\r\n");
    conversation.client(b"PASS not-a-real-password\r\n").server(b"+OK\r\n");
    let capture = dir.path().join("format-characters.pcap");
    credwatch::pcapwriter::write_pcap_file(&capture, &conversation.frames().unwrap()).unwrap();
    let capture = capture.to_str().unwrap();
    let html = dir.path().join("report.html");

    for args in
        [&["read"][..], &["read", "--usernames", "full"], &["posture"], &["report", "--html", html.to_str().unwrap()]]
    {
        let output = common::credwatch(&[args, &[capture]].concat(), &[]);
        assert!(output.status.success(), "{args:?}");
        let text = if args[0] == "report" {
            std::fs::read_to_string(&html).unwrap()
        } else {
            String::from_utf8(output.stdout).unwrap()
        };
        assert!(!text.chars().any(is_planted_invisible), "{args:?}: {text:?}");
        assert!(text.contains("+OK \\u{202e}ydaer\\u{2028}\\u{2029}\\u{feff} POP3"), "{args:?}: {text:?}");
    }
}

/// POP3 logins a minute apart to one server by `alice@`, `adam@`, `anna@corp.test` (masked alike
/// as `a***@corp.test`), then `adam@` again.
fn logins_masked_alike(dir: &Path) -> PathBuf {
    let mut frames = Vec::new();
    for (n, user) in ["alice", "adam", "anna", "adam"].into_iter().enumerate() {
        let port = 40_000 + u16::try_from(n).unwrap();
        let mut conversation = credwatch::pcapwriter::Conversation::new(([10, 0, 0, 1], port), ([10, 0, 0, 2], 110));
        conversation.start_at(credwatch::capture::Timestamp::from_secs_nanos(1_795_770_000 + 60 * n as u64, 0));
        conversation.handshake().server(b"+OK POP3 ready\r\n");
        conversation.client(format!("USER {user}@corp.test\r\n").as_bytes()).server(b"+OK\r\n");
        conversation.client(b"PASS not-a-real-password\r\n").server(b"+OK\r\n");
        frames.extend(conversation.frames().unwrap());
    }
    let capture = dir.join("masked-alike.pcap");
    credwatch::pcapwriter::write_pcap_file(&capture, &frames).unwrap();
    capture
}

#[test]
fn accounts_masked_alike_are_neither_deduplicated_together_nor_counted_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let capture = logins_masked_alike(dir.path());
    let events = run_json(&capture, &["--dedup-window", "1h"]);
    let validator = schema("events.schema.json");
    events.iter().for_each(|line| assert_valid(&validator, line, "masked alike"));
    let alerts = common::of_type(&events, "cleartext_credential");
    assert_eq!(alerts.len(), 3, "one per account: {events:#?}");
    assert!(alerts.iter().all(|alert| alert["credential"]["username"] == "a***@corp.test"));
    let repeats = common::of_type(&events, "repeat_summary");
    assert_eq!(repeats.len(), 1, "adam's second login");
    assert_eq!(repeats[0]["repeat_count"], 2);
    let reports = common::of_type(&events, "server_report");
    assert_eq!(reports[0]["users"], 3);
    assert_eq!(reports[0]["user_names"], serde_json::json!(["a***@corp.test"]));
    let postures = common::of_type(&events, "server_posture");
    assert_eq!(postures[0]["distinct_users"], 3);

    let output = common::credwatch(&["read", capture.to_str().unwrap()], &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    let row = text.lines().find(|line| line.trim_start().starts_with("pop3  10.0.0.2:110")).unwrap();
    assert_eq!(row.split_whitespace().nth(4), Some("3"), "the USERS column: {row}");

    let html = dir.path().join("report.html");
    let output = common::credwatch(&["report", "--html", html.to_str().unwrap(), capture.to_str().unwrap()], &[]);
    assert!(output.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<td class=\"users\"><strong>3</strong>"), "the Users cell");
}

/// A capture of many POP3 logins: its JSON lines far outgrow a pipe's buffer and stdout's.
fn many_logins(dir: &Path) -> PathBuf {
    let mut frames = Vec::new();
    for n in 0..1500u16 {
        let mut conversation =
            credwatch::pcapwriter::Conversation::new(([10, 0, 1, 1], 20_000 + n), ([10, 0, 0, 2], 110));
        conversation.handshake().server(b"+OK POP3 ready\r\n");
        conversation.client(format!("USER user{n}\r\n").as_bytes()).server(b"+OK\r\n");
        conversation.client(b"PASS not-a-real-password\r\n").server(b"+OK\r\n");
        frames.extend(conversation.frames().unwrap());
    }
    let capture = dir.join("many.pcap");
    credwatch::pcapwriter::write_pcap_file(&capture, &frames).unwrap();
    capture
}

/// Runs credwatch with `args`, its standard output read by a reader that takes 100 bytes and
/// closes the pipe; returns the exit status and standard error.
fn with_early_closing_reader(args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 100];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_closed_stdout_stops_a_run_alone_and_spares_the_other_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let capture = many_logins(dir.path());
    let capture = capture.to_str().unwrap();

    let file = dir.path().join("alerts.json");
    let spec = format!("file:{}", file.display());
    let (status, stderr) =
        with_early_closing_reader(&["read", "--fail-on-alert", "-f", "json", "-o", "stdout", "-o", &spec, capture]);
    assert_eq!(status, Some(4), "stdout lost records while the file got them: {stderr}");
    assert!(stderr.contains("standard output was closed by its reader"), "{stderr}");
    let lines = common::parse_lines(&std::fs::read(&file).unwrap());
    assert_eq!(common::of_type(&lines, "cleartext_credential").len(), 1500, "the file got every alert");

    let (status, stderr) = with_early_closing_reader(&["read", "--fail-on-alert", "-f", "json", capture]);
    assert_eq!(status, Some(10), "alone, stdout stops the run; alerts were found: {stderr}");
    assert!(stderr.is_empty(), "quietly: {stderr}");
    let (status, stderr) = with_early_closing_reader(&["read", "-f", "json", capture]);
    assert_eq!(status, Some(0), "{stderr}");
    let (status, stderr) = with_early_closing_reader(&["read", "--threads", "2", "-f", "json", capture]);
    assert_eq!(status, Some(0), "{stderr}");
}

/// A file output on a disk that fills up partway: the file holds whole records only, and each
/// record is counted written or lost, never both, never neither. On a 16 KiB tmpfs in a mount
/// namespace of its own; needs root and util-linux's `unshare` (skipped otherwise, a failure
/// under `CREDWATCH_E2E=1`).
#[test]
fn a_file_output_on_a_disk_that_fills_up_holds_whole_records_and_counts_the_rest() {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status.lines().any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
    });
    let unshare = std::process::Command::new("unshare").arg("--version").output().is_ok();
    if !(root && unshare) {
        let required = std::env::var("CREDWATCH_E2E").is_ok_and(|value| value == "1");
        assert!(!required, "CREDWATCH_E2E=1 but the full-disk check needs root and unshare");
        println!("skipped: the full-disk check needs root and util-linux's unshare");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("mail.pcap");
    let generated = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch-gen"))
        .args(["generate", "--kind", "mail-heavy", "--size", "2MB", "--seed", "3", "--out"])
        .arg(&capture)
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let all = common::read_json(&[&capture], &["--stats"]).len();

    let small = dir.path().join("small");
    let kept = dir.path().join("kept.jsonl");
    std::fs::create_dir(&small).unwrap();
    let script = r#"mount -t tmpfs -o size=16k credwatch-full "$1" && "$2" read --stats -f json -o "file:$1/alerts.jsonl" "$3" >/dev/null; status=$?; cp "$1/alerts.jsonl" "$4"; exit $status"#;
    let run = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&small)
        .arg(env!("CARGO_BIN_EXE_credwatch"))
        .arg(&capture)
        .arg(&kept)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(4), "records were lost: {log}");
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(text.ends_with('\n'), "no torn record at the end: {text}");
    let lines: Vec<Value> =
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect();
    let counted = |field: &str| -> usize {
        let closing =
            log.lines().find(|line| line.contains("some records did not reach this output")).unwrap_or_default();
        let value = closing.split(&format!(" {field}=")).nth(1).and_then(|rest| rest.split(' ').next());
        value.and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("no {field} in: {log}"))
    };
    assert!(!lines.is_empty() && lines.len() < all, "the disk filled up partway: {} of {all}", lines.len());
    assert_eq!(counted("written"), lines.len(), "{log}");
    assert_eq!(counted("written") + counted("lost"), all, "{log}");
}

/// Servers and clients that send every string credwatch reports at its longest, made of bytes
/// that are written escaped (`\x01` is four characters, five in JSON).
fn bulky_logins(dir: &Path) -> PathBuf {
    use base64::Engine as _;
    let junk = |len: usize| -> Vec<u8> { (0..len).map(|i| if i % 2 == 0 { 0x01 } else { b'\\' }).collect() };
    let mut frames = Vec::new();
    let mut smtp = credwatch::pcapwriter::Conversation::new(([10, 0, 0, 1], 40_000), ([10, 0, 0, 2], 587));
    // A host name as long as DNS allows (253), and more text than a greeting keeps.
    let hostname = format!("{}.example.test", vec!["a".repeat(60); 4].join("."));
    smtp.handshake()
        .server(&[format!("220 {hostname} ESMTP ").as_bytes(), &junk(2000), b"\r\n"].concat())
        .client(b"EHLO me\r\n");
    let mut ehlo = Vec::new();
    for i in 0..200 {
        ehlo.extend_from_slice(format!("250-X{i:03}").as_bytes());
        // Backslashes: each one is two bytes in JSON.
        ehlo.extend_from_slice(&[b'\\'; 1000]);
        ehlo.extend_from_slice(b"\r\n");
    }
    ehlo.extend_from_slice(b"250 AUTH PLAIN LOGIN\r\n");
    smtp.server(&ehlo);
    let user = junk(256);
    let blob =
        base64::engine::general_purpose::STANDARD.encode([b"\0".as_slice(), &user, b"\0not-a-real-password"].concat());
    smtp.client(format!("AUTH PLAIN {blob}\r\n").as_bytes()).server(b"235 ok\r\n");
    frames.extend(smtp.frames().unwrap());
    let mut imap = credwatch::pcapwriter::Conversation::new(([10, 0, 0, 3], 40_001), ([10, 0, 0, 2], 143));
    imap.handshake()
        .server(&[b"* OK [CAPABILITY IMAP4rev1 ".as_slice(), &junk(3000), b"] ", &junk(2000), b"\r\n"].concat());
    imap.client(&[b"a ID (\"name\" \"".as_slice(), &[0x01; 2000], b"\")\r\n"].concat());
    imap.server(&[b"* ID (\"name\" \"".as_slice(), &junk(2000), b"\")\r\na OK\r\n"].concat());
    imap.client(format!("b LOGIN {{{}}}\r\n", user.len()).as_bytes()).server(b"+ go\r\n");
    imap.client(&[user.as_slice(), b" not-a-real-password\r\n"].concat()).server(b"b OK\r\n");
    let mut late = imap.frames().unwrap();
    for frame in &mut late {
        frame.ts = credwatch::capture::Timestamp::from_secs_nanos(frame.ts.as_nanos() / 1_000_000_000 + 10, 0);
    }
    frames.extend(late);
    let capture = dir.join("bulky.pcap");
    credwatch::pcapwriter::write_pcap_file(&capture, &frames).unwrap();
    capture
}

/// Receivers must take syslog messages of 480 octets and should take 2 048 (RFC 5424 section
/// 6.1); rsyslog takes 8 KiB by default and cuts longer ones, which breaks their JSON. Whatever
/// the traffic sends, every syslog message fits in 8 KiB, header included, and is whole: valid
/// JSON that matches its schema, saying `shortened_for_syslog` when it had to be cut down. Files keep
/// records whole.
#[test]
fn every_syslog_message_fits_8_kib_whatever_the_traffic_sends() {
    let dir = tempfile::tempdir().unwrap();
    let capture = bulky_logins(dir.path());
    let capture = capture.to_str().unwrap();
    let mut cut_down = 0;
    for format in ["json", "ecs", "text"] {
        for usernames in ["masked", "full"] {
            let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
            listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let target = format!("syslog+udp://{},format={format}", listener.local_addr().unwrap());
            let file = dir.path().join(format!("{format}-{usernames}.out"));
            let file_output = format!("file:{},format={format}", file.display());
            let args =
                ["read", "--stats", "--usernames", usernames, "--output", &target, "--output", &file_output, capture];
            let output = common::credwatch(&args, &[]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let whole = std::fs::read_to_string(&file).unwrap();
            assert!(whole.lines().count() >= 7, "two alerts, their servers' reports and postures, the stats: {whole}");
            let longest_record = whole.lines().map(str::len).max().unwrap();
            let mut buffer = vec![0u8; 65_536];
            let mut shortened = 0;
            for record in whole.lines() {
                let len = listener.recv(&mut buffer).unwrap();
                assert!(len <= 8192, "{format}, {usernames}: a message of {len} bytes");
                let message = std::str::from_utf8(&buffer[..len]).unwrap();
                let (_, body) = message.split_once(" - ").unwrap();
                if format == "text" {
                    // UTF-8 after a byte order mark (RFC 5424 section 6.4), ASCII without.
                    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
                    assert!(body == record || body.ends_with('…'), "{format}: {body}");
                    continue;
                }
                assert!(body.is_ascii(), "JSON in syslog escapes what is not ASCII: {body}");
                let got: Value = serde_json::from_str(body).unwrap();
                let schema_name = if format == "ecs" { "ecs.schema.json" } else { "events.schema.json" };
                assert_valid(&schema(schema_name), &got, "syslog");
                let marked = if format == "ecs" {
                    &got["credwatch"]["shortened_for_syslog"]
                } else {
                    &got["shortened_for_syslog"]
                };
                if got == serde_json::from_str::<Value>(record).unwrap() {
                    assert!(marked.is_null(), "{body}");
                } else {
                    assert_eq!(marked, &Value::Bool(true), "{body}");
                    assert!(record.len() + 200 > 8192, "only records too long are cut: {record}");
                    shortened += 1;
                }
            }
            if format != "text" && longest_record > 8192 {
                assert!(shortened > 0, "{format}, {usernames}");
            }
            cut_down += shortened;
        }
    }
    // ECS documents show a user name four times: in full, the capture makes them too long.
    assert!(cut_down > 0, "the capture makes some record too long for a syslog message");
}
