//! Secrets canary: run the binary with `RUST_LOG=trace` in every output format over every capture
//! we have (the broken fixtures, captures written here with planted passwords, and the shared
//! corpus when this machine has it) and check that no password, token or SASL blob, nor its
//! base64, appears in stdout, stderr or any file the run wrote.

mod support;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use credwatch::pcapwriter::{write_pcap_cut, write_pcap_file, write_pcapng_file, Conversation, Link, Side};
use support::*;

/// Commands and output formats to try. `{out}` stands for a file in a fresh
/// directory whose every file is searched too. Add new formats here.
const FORMATS: &[&[&str]] = &[
    &["read", "--format", "json"],
    &["read", "--format", "text"],
    &["read", "--format", "ecs"],
    &["read", "--format", "json", "--show-usernames"],
    &["read", "--format", "text", "-vvv"],
    &["read", "--output", "file:{out},format=ecs", "--output", "file:{out}.txt,format=text", "--dedup-window", "1h"],
    &["posture", "--format", "text"],
    &["posture", "--format", "json"],
    &["report", "--html", "{out}", "--show-usernames"],
];

/// A login planted in a capture: the user and the secret that must never be shown.
struct Planted {
    user: String,
    secret: String,
}

/// Strings that would betray `planted`: the secret itself, its base64, and the base64 of the SASL
/// PLAIN and XOAUTH2 messages that carry it; with `cut`, also their starts (a snap length's cut
/// leaves a secret's start in the capture, as a partial credential).
fn needles(planted: &Planted, cut: bool) -> Vec<String> {
    let (user, secret) = (&planted.user, &planted.secret);
    let blobs = [
        format!("\0{user}\0{secret}"),
        format!("{user}\0{user}\0{secret}"),
        format!("user={user}\x01auth=Bearer {secret}\x01\x01"),
    ];
    let mut needles = vec![secret.clone(), STANDARD.encode(secret)];
    needles.extend(blobs.iter().map(|blob| STANDARD.encode(blob)));
    if cut {
        let starts: Vec<String> = needles.iter().map(|needle| needle.chars().take(PLANTED_START).collect()).collect();
        needles.extend(starts);
    }
    needles
}

/// The start of a planted secret that is its own (`Canary-S`), and of the base64 texts that carry
/// one, searched for in the output of captures that cut them.
const PLANTED_START: usize = 8;

/// Snap lengths the planted logins are also written with: each cuts some of their lines in the
/// user name, in the secret or in the SASL blob.
const SNAP_LENGTHS: [u32; 3] = [70, 100, 120];

/// Logins the canary captures plant, one per mechanism that carries a reusable secret.
/// The files whole, the same cut by [`SNAP_LENGTHS`] (under `cut/`), and the logins.
fn planted_logins(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<Planted>) {
    let b64 = |text: &str| STANDARD.encode(text);
    let plant = |n: usize| Planted { user: format!("canary{n}@example.test"), secret: format!("Canary-Secret-{n}-x9") };
    let mut files = Vec::new();
    let mut cut_files = Vec::new();
    let mut planted = Vec::new();
    let mut add = |port: u16, script: &dyn Fn(&mut Conversation, &Planted), pcapng: bool| {
        let login = plant(planted.len());
        // Every file holds a connection of its own on the same ports: its own initial numbers
        // (the same SYN again would be a copy of a connection read before, not a new one).
        let connection = |variant: u32| {
            let mut conversation = Conversation::new((CLIENT, 40_000 + port), (SERVER, port));
            let isn = 1_000_000 * (planted.len() as u32 * 4 + variant + 1);
            conversation.isns(isn, isn + 500_000).link(Link::Ethernet).handshake();
            script(&mut conversation, &login);
            conversation.fin(Side::Client);
            conversation.frames().unwrap()
        };
        let frames = connection(0);
        let path = dir.join(format!("canary-{}.{}", planted.len(), if pcapng { "pcapng" } else { "pcap" }));
        if pcapng {
            write_pcapng_file(&path, &frames).unwrap();
        } else {
            write_pcap_file(&path, &frames).unwrap();
        }
        files.push(path);
        for (variant, snaplen) in (1..).zip(SNAP_LENGTHS) {
            let cut = dir.join("cut").join(format!("canary-{}-snaplen-{snaplen}.pcap", planted.len()));
            std::fs::create_dir_all(cut.parent().unwrap()).unwrap();
            std::fs::write(&cut, write_pcap_cut(Vec::new(), &connection(variant), snaplen).unwrap()).unwrap();
            cut_files.push(cut);
        }
        planted.push(login);
    };
    add(
        110,
        &|c, p| {
            c.server(b"+OK ready\r\n").client(format!("USER {}\r\n", p.user).as_bytes()).server(b"+OK\r\n");
            c.client(format!("PASS {}\r\n", p.secret).as_bytes()).server(b"+OK\r\n");
        },
        false,
    );
    add(
        143,
        &|c, p| {
            c.server(b"* OK ready\r\n").client(format!("a1 LOGIN {} \"{}\"\r\n", p.user, p.secret).as_bytes());
            c.server(b"a1 OK\r\n");
        },
        true,
    );
    add(
        143,
        &|c, p| {
            let blob = b64(&format!("\0{}\0{}", p.user, p.secret));
            c.server(b"* OK ready\r\n").client(format!("a1 AUTHENTICATE PLAIN {blob}\r\n").as_bytes());
            c.server(b"a1 NO bad\r\n");
        },
        false,
    );
    add(
        587,
        &|c, p| {
            c.server(b"220 mx ESMTP\r\n").client(b"EHLO me\r\n").server(b"250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
            c.client(b"AUTH LOGIN\r\n")
                .server(b"334 VXNlcm5hbWU6\r\n")
                .client(format!("{}\r\n", b64(&p.user)).as_bytes());
            c.server(b"334 UGFzc3dvcmQ6\r\n").client(format!("{}\r\n", b64(&p.secret)).as_bytes());
            c.server(b"235 ok\r\n");
        },
        false,
    );
    add(
        587,
        &|c, p| {
            // A password prompt that says "user": the password must not become the user name.
            c.server(b"220 mx ESMTP\r\n").client(b"EHLO me\r\n").server(b"250 AUTH LOGIN\r\n");
            c.client(format!("AUTH LOGIN {}\r\n", b64(&p.user)).as_bytes());
            c.server(format!("334 {}\r\n", b64("Enter user secret:")).as_bytes());
            c.client(format!("{}\r\n", b64(&p.secret)).as_bytes());
            c.server(format!("334 {}\r\n", b64("Confirm:")).as_bytes());
            c.client(format!("{}\r\n", b64(&p.secret)).as_bytes()).server(b"235 ok\r\n");
        },
        true,
    );
    add(
        25,
        &|c, p| {
            let blob = b64(&format!("{}\0{}\0{}", p.user, p.user, p.secret));
            c.server(b"220 mx ESMTP\r\n").client(b"EHLO me\r\n").server(b"250 AUTH PLAIN\r\n");
            c.client(format!("AUTH PLAIN {blob}\r\n").as_bytes()).server(b"235 ok\r\n");
        },
        true,
    );
    add(
        110,
        &|c, p| {
            let blob = b64(&format!("user={}\x01auth=Bearer {}\x01\x01", p.user, p.secret));
            c.server(b"+OK ready\r\n").client(format!("AUTH XOAUTH2 {blob}\r\n").as_bytes()).server(b"+OK\r\n");
        },
        false,
    );
    (files, cut_files, planted)
}

/// Passwords of the shared corpus's ground truth (`truth.jsonl` rows that name one).
fn corpus_logins(corpus: &Path) -> Vec<Planted> {
    let mut logins = Vec::new();
    for truth in ["real/truth.jsonl"] {
        let Ok(text) = std::fs::read_to_string(corpus.join(truth)) else { continue };
        for row in text.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()) {
            if let (Some(user), Some(secret)) = (row["username"].as_str(), row["password"].as_str()) {
                logins.push(Planted { user: user.into(), secret: secret.into() });
            }
        }
    }
    logins
}

/// Runs every format over `files` and fails on any needle in what the run printed or wrote;
/// `cut`: the files cut the secrets, so their starts are needles too.
fn assert_no_leak(files: &[PathBuf], logins: &[Planted], cut: bool) {
    // Very short secrets would match by chance (and the corpus has none); every planted one is long.
    let needles: Vec<String> =
        logins.iter().flat_map(|login| needles(login, cut)).filter(|needle| needle.len() >= 6).collect();
    assert!(!needles.is_empty());
    for format in FORMATS {
        let out_dir = tempfile::tempdir().unwrap();
        let out_file = out_dir.path().join("out");
        let mut args: Vec<String> = Vec::new();
        args.extend(format.iter().map(|arg| arg.replace("{out}", out_file.to_str().unwrap())));
        args.extend(files.iter().map(|file| file.to_str().unwrap().to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = credwatch(&args, Some("trace"));
        assert!(matches!(output.status.code(), Some(0 | 3)), "{format:?}: {:?}", output.status);
        let mut written = vec![("stdout".to_owned(), output.stdout), ("stderr".to_owned(), output.stderr)];
        for entry in std::fs::read_dir(out_dir.path()).unwrap().flatten() {
            written.push((entry.path().display().to_string(), std::fs::read(entry.path()).unwrap()));
        }
        assert!(written[1].1.len() > 1000, "{format:?}: trace logging produced almost nothing");
        for (name, bytes) in &written {
            let text = String::from_utf8_lossy(bytes);
            for needle in &needles {
                assert!(!text.contains(needle.as_str()), "{format:?}: a secret (or its base64) appears in {name}");
            }
        }
    }
}

#[test]
fn planted_secrets_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let (files, cut_files, logins) = planted_logins(dir.path());
    // The alerts are there (so the canary is not passing by seeing nothing).
    let mut args = vec!["read", "--format", "json"];
    args.extend(files.iter().map(|file| file.to_str().unwrap()));
    let output = credwatch(&args, None);
    let alerts = String::from_utf8_lossy(&output.stdout).matches("\"cleartext_credential\"").count();
    assert_eq!(alerts, logins.len(), "{}", String::from_utf8_lossy(&output.stdout));
    let output = credwatch(&["read", "--format", "json", dir.path().join("cut").to_str().unwrap()], None);
    let partial = String::from_utf8_lossy(&output.stdout).matches("\"partial\":true").count();
    assert!(partial >= logins.len(), "cut lines give partial credentials: {}", String::from_utf8_lossy(&output.stdout));
    assert_no_leak(&files, &logins, false);
    assert_no_leak(&cut_files, &logins, true);
}

#[test]
fn broken_fixture_secret_never_appears() {
    let files = captures_under(&repo().join("fixtures"));
    assert!(files.len() >= 9);
    let planted = Planted { user: "alice".into(), secret: "broken-fixture-pw".into() };
    assert_no_leak(&files, &[planted], true);
}

#[test]
fn corpus_secrets_never_appear() {
    let Some(corpus) = shared_corpus() else {
        eprintln!("skipped: no shared corpus beside the repository");
        return;
    };
    let logins = corpus_logins(&corpus);
    let files = captures_under(&corpus);
    assert!(!logins.is_empty() && !files.is_empty());
    assert_no_leak(&files, &logins, false);
}

#[test]
fn help_shows_no_secret_and_no_key() {
    for args in [&["--help"][..], &["read", "--help"], &["--version"]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_credwatch"))
            .args(args)
            .env("CREDWATCH_KEY", "canary-key-material-42")
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = [output.stdout, output.stderr].concat();
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains("canary-key-material-42"), "{args:?}");
        assert!(!text.contains(&STANDARD.encode("canary-key-material-42")), "{args:?}");
    }
}

/// People type their password into the user name field, or after the name on the same line: the
/// user name then holds a secret, which masking must hide as well (but for the first character)
/// wherever user names are shown masked. `--show-usernames` shows them as asked.
#[test]
fn a_password_typed_as_the_user_name_stays_masked() {
    let dir = tempfile::tempdir().unwrap();
    let typed = ["Canary@Typed-Secret-1!", "alice@corp.test Canary-Typed-Secret-2"];
    let mut files = Vec::new();
    for (n, user) in typed.iter().enumerate() {
        let mut conversation = Conversation::new((CLIENT, 40_110 + n as u16), (SERVER, 110));
        conversation.link(Link::Ethernet).handshake();
        conversation.server(b"+OK ready\r\n").client(format!("USER {user}\r\n").as_bytes()).server(b"+OK\r\n");
        conversation.client(b"PASS Canary-Typed-Secret-3\r\n").server(b"-ERR [AUTH] failed\r\n");
        conversation.fin(Side::Client);
        let path = dir.path().join(format!("typed-{n}.pcap"));
        write_pcap_file(&path, &conversation.frames().unwrap()).unwrap();
        files.push(path.to_str().unwrap().to_owned());
    }
    let json = credwatch(
        &[&["read", "--format", "json"][..], &files.iter().map(String::as_str).collect::<Vec<_>>()].concat(),
        None,
    );
    let json = String::from_utf8_lossy(&json.stdout);
    assert_eq!(json.matches("\"username\":\"C***\"").count(), 1, "{json}");
    assert_eq!(json.matches("\"username\":\"a***\"").count(), 1, "{json}");
    for format in [&["read", "--format", "text"][..], &["read", "--format", "ecs"], &["posture", "--format", "text"]] {
        let mut args = format.to_vec();
        args.extend(files.iter().map(String::as_str));
        let output = credwatch(&args, Some("trace"));
        let text = String::from_utf8_lossy(&[output.stdout, output.stderr].concat()).into_owned();
        for secret in ["Typed-Secret-1", "Canary-Typed-Secret-2", "Canary-Typed-Secret-3", "corp.test"] {
            assert!(!text.contains(secret), "{format:?}: {secret}");
        }
    }
}
