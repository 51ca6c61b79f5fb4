//! `credwatch read` as a user meets it: inputs (files, directories, stdin, gzip, several files),
//! formats, broken files, exit statuses.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use credwatch::pcapwriter::{write_pcap_file, CapturedFrame, Conversation, Link, Side};
use flate2::write::GzEncoder;

fn demo() -> std::path::PathBuf {
    common::repo_path("fixtures/demo.pcap")
}

fn alerts(events: &[serde_json::Value]) -> usize {
    common::of_type(events, "cleartext_credential").len()
}

/// Writes `frames` to a capture, reads it as JSON and returns its cleartext alerts and what it
/// said on stderr, having checked that the run succeeded.
fn read_frames(frames: &[CapturedFrame]) -> (usize, String) {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.pcap");
    write_pcap_file(&capture, frames).unwrap();
    let output = common::credwatch(&["read", "--format", "json", capture.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (alerts(&common::parse_lines(&output.stdout)), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn stdin_gzip_and_directories_give_the_same_alerts() {
    let direct = common::read_json(&[&demo()], &[]);
    assert_eq!(alerts(&direct), 4);

    let mut child = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["read", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(demo()).unwrap()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(common::parse_lines(&output.stdout), direct);

    let dir = tempfile::tempdir().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(demo()).unwrap()).unwrap();
    // The name lies about the format: content decides.
    std::fs::write(dir.path().join("capture.txt"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.path().join("README"), b"not a capture").unwrap();
    let from_dir = common::read_json(&[dir.path()], &[]);
    assert_eq!(from_dir, direct);
}

/// Standard input is named so in errors, and can be named once only: a second reading would find
/// it empty.
#[test]
fn standard_input_is_named_so_and_read_once() {
    let empty = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["read", "-"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(stderr.contains("standard input: empty, not a capture"), "{stderr}");
    let twice = common::credwatch(&["read", "-", demo().to_str().unwrap(), "-"], &[]);
    assert_eq!(twice.status.code(), Some(2), "a bad command line");
    assert!(String::from_utf8_lossy(&twice.stderr).contains("standard input (`-`) is named more than once"));
    assert!(twice.stdout.is_empty());
}

/// A capture well within every bound reads without a word on stderr: warnings are for runs that
/// lost something.
#[test]
fn a_capture_within_the_bounds_reads_without_warnings() {
    let output = common::credwatch(&["read", "--format", "json", "--stats", demo().to_str().unwrap()], &[]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let events = common::parse_lines(&output.stdout);
    let stats = common::of_type(&events, "stats");
    let limits = &stats.first().expect("a stats event")["limits"];
    assert_eq!(limits["buffer_sheds"], 0);
    assert_eq!(limits["overlong_lines"], 0);
}

#[test]
fn a_broken_file_is_named_and_the_others_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(demo()).unwrap();
    let truncated = dir.path().join("truncated.pcap");
    std::fs::write(&truncated, &whole[..whole.len() * 2 / 3]).unwrap();
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
    let output = common::credwatch(
        &["read", "--format", "json", truncated.to_str().unwrap(), garbage.to_str().unwrap(), demo().to_str().unwrap()],
        &[],
    );
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated.pcap: at byte offset"), "{stderr}");
    assert!(stderr.contains("garbage.pcap"), "{stderr}");
    let events = common::parse_lines(&output.stdout);
    // What the truncated copy held before the cut, plus everything of the intact file.
    assert!(alerts(&events) > 4, "{}", alerts(&events));
}

#[test]
fn missing_files_and_bad_flags_have_their_own_statuses() {
    let missing = common::credwatch(&["read", "/nonexistent/capture.pcap"], &[]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/capture.pcap"));
    // What the text summary says must not read as an all-clear, whatever thread reads.
    for threads in ["1", "2"] {
        let missing = common::credwatch(&["read", "--threads", threads, "/nonexistent/capture.pcap"], &[]);
        assert_eq!(
            String::from_utf8_lossy(&missing.stdout),
            "No credential crossed in clear in what could be read: 1 file could not be read to its end (see the \
             errors above).\n"
        );
    }
    let bad_flag = common::credwatch(&["read", "--format", "xml", "x.pcap"], &[]);
    assert_eq!(bad_flag.status.code(), Some(2));
    let no_key = common::credwatch(&["read", "--usernames", "hashed", demo().to_str().unwrap()], &[]);
    assert_eq!(no_key.status.code(), Some(1));
    let said = String::from_utf8_lossy(&no_key.stderr);
    assert_eq!(said.matches("needs a key").count(), 1, "a fatal error is said once: {said}");
    assert!(said.starts_with("credwatch: "), "{said}");
    // A directory with nothing to read is not an all-clear.
    let empty = tempfile::tempdir().unwrap();
    let nothing = common::credwatch(&["read", empty.path().to_str().unwrap()], &[]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no capture file"));
    assert!(nothing.stdout.is_empty(), "{}", String::from_utf8_lossy(&nothing.stdout));
}

/// A capture in a directory that cannot be opened, and a directory that cannot be listed, are
/// reported like a named file that cannot be opened (exit 3, each named once, its cause said
/// once), and the other captures are still read; so is a named directory that cannot be listed.
#[test]
fn what_a_directory_holds_that_cannot_be_read_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path, mode| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    let top = tempfile::tempdir().unwrap();
    mode(top.path(), 0o755).unwrap();
    let dir = top.path().join("captures");
    let (locked_file, locked_dir) = (dir.join("b.pcap"), dir.join("sub"));
    std::fs::create_dir_all(&locked_dir).unwrap();
    std::fs::copy(demo(), dir.join("a.pcap")).unwrap();
    std::fs::copy(demo(), &locked_file).unwrap();
    std::fs::copy(demo(), locked_dir.join("c.pcap")).unwrap();
    mode(&locked_file, 0o000).unwrap();
    mode(&locked_dir, 0o000).unwrap();

    let output = common::credwatch_unprivileged(&["read", "--format", "json", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(alerts(&common::parse_lines(&output.stdout)), 4, "a.pcap is read: {stderr}");
    for (path, said) in [(&locked_file, "cannot open"), (&locked_dir, "cannot list this directory")] {
        let line = stderr.lines().find(|line| line.contains(path.to_str().unwrap())).unwrap_or_default();
        assert!(line.contains(said), "{}: {stderr}", path.display());
        assert_eq!(line.matches("Permission denied").count(), 1, "{stderr}");
    }
    assert_eq!(stderr.lines().count(), 2, "{stderr}");

    let named = common::credwatch_unprivileged(&["read", "--format", "json", locked_dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&named.stderr);
    assert_eq!(named.status.code(), Some(3), "as a named file that cannot be opened: {stderr}");
    assert!(stderr.contains("cannot list this directory"), "{stderr}");
    mode(&locked_dir, 0o755).unwrap();
}

#[test]
fn frames_of_a_link_type_credwatch_cannot_read_are_warned_about_once() {
    // The demo capture declared as Bluetooth HCI (LINKTYPE 187): nothing in it decodes, which
    // must not pass for an all-clear.
    let mut capture = std::fs::read(demo()).unwrap();
    assert_eq!(capture[2..4], [0xb2, 0xa1], "a little-endian classic pcap");
    capture[20..24].copy_from_slice(&187u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let bluetooth = dir.path().join("bluetooth.pcap");
    std::fs::write(&bluetooth, capture).unwrap();
    let output = common::credwatch(&["read", "--format", "json", bluetooth.to_str().unwrap()], &[]);
    assert!(output.status.success());
    assert!(common::of_type(&common::parse_lines(&output.stdout), "cleartext_credential").is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("cannot be decoded").count(), 1, "{stderr}");
    assert!(stderr.contains("link_type=187"), "{stderr}");

    // The same frames behind PPI headers naming Bluetooth: the warning names what is inside.
    let frames: Vec<CapturedFrame> = credwatch::capture::FileSource::open(&demo())
        .map(|mut source| {
            let mut frames = Vec::new();
            while let Ok(Some(frame)) = source.next_frame() {
                let mut data = vec![0, 0, 8, 0];
                data.extend_from_slice(&187u32.to_le_bytes());
                data.extend_from_slice(frame.data);
                frames.push(CapturedFrame { ts: frame.ts, link_type: credwatch::capture::LinkType::PPI, data });
            }
            frames
        })
        .unwrap();
    let behind_ppi = dir.path().join("ppi.pcap");
    write_pcap_file(&behind_ppi, &frames).unwrap();
    let output = common::credwatch(&["read", "--format", "json", behind_ppi.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("cannot be decoded").count(), 1, "{stderr}");
    assert!(stderr.contains("link_type=187"), "{stderr}");
}

#[test]
fn a_capture_of_frames_that_are_not_ip_is_warned_about() {
    // The demo's frames behind an ethertype credwatch does not read (a vendor tag, VN-Tag's
    // 0x8926): nothing decodes, which must not pass for an all-clear.
    let frames: Vec<CapturedFrame> = credwatch::capture::FileSource::open(&demo())
        .map(|mut source| {
            let mut frames = Vec::new();
            while let Ok(Some(frame)) = source.next_frame() {
                let mut data = frame.data.to_vec();
                data[12..14].copy_from_slice(&0x8926u16.to_be_bytes());
                frames.push(CapturedFrame { ts: frame.ts, link_type: frame.link_type, data });
            }
            frames
        })
        .unwrap();
    let (_, stderr) = read_frames(&frames);
    assert_eq!(stderr.matches("most frames were not IP").count(), 1, "{stderr}");
    let demo_run = common::credwatch(&["read", "--format", "json", demo().to_str().unwrap()], &[]);
    assert!(!String::from_utf8_lossy(&demo_run.stderr).contains("not IP"));
}

#[test]
fn encrypted_wifi_is_warned_about_once() {
    // A monitor-mode capture of a login on a protected network: the frames' bodies are
    // encrypted (here: marked so), which must not pass for an all-clear either.
    let mut conversation = Conversation::new(([10, 1, 0, 5], 40_110), ([10, 1, 0, 9], 110));
    conversation
        .link(Link::Radiotap)
        .handshake()
        .server(b"+OK POP3 ready\r\n")
        .client(b"USER alice\r\nPASS not-a-real-password\r\n")
        .server(b"+OK\r\n+OK\r\n");
    let mut frames = conversation.frames().unwrap();
    for frame in &mut frames {
        // The writer's radiotap header is 33 bytes; the 802.11 flags byte follows the frame
        // control byte.
        frame.data[RADIOTAP_LEN + 1] |= 0x40;
    }
    let (logins, stderr) = read_frames(&frames);
    assert_eq!(logins, 0);
    assert_eq!(stderr.matches("encrypted").count(), 1, "{stderr}");
}

/// Length of the radiotap header the pcap writer puts before 802.11 frames, and where its flags
/// field lies (after two presence bitmaps, padding and the 8-byte TSF timer).
const RADIOTAP_LEN: usize = 33;
const RADIOTAP_FLAGS_AT: usize = 24;

/// A POP3 login caught in monitor mode (802.11 behind radiotap), then `more` lines, client and
/// server in turn.
fn monitor_mode_login(more: &[&[u8]]) -> Vec<CapturedFrame> {
    let mut conversation = Conversation::new(([10, 1, 0, 5], 40_110), ([10, 1, 0, 9], 110));
    common::script::pop3_login(conversation.link(Link::Radiotap), "alice");
    for (turn, line) in more.iter().enumerate() {
        if turn % 2 == 0 {
            conversation.client(line);
        } else {
            conversation.server(line);
        }
    }
    conversation.frames().unwrap()
}

#[test]
fn wifi_frames_that_failed_their_frame_check_are_left_out() {
    // A monitor-mode receiver caught the login line corrupted (radiotap flags it: bad FCS), then
    // the station's retry. Taken as data, the corrupted copy would come first into the stream:
    // no login, and a false "overlap with different bytes" anomaly.
    let mut frames = monitor_mode_login(&[]);
    let pass = frames.iter().position(|frame| frame.data.windows(5).any(|w| w == b"PASS ")).unwrap();
    let mut corrupted = frames[pass].clone();
    corrupted.data[RADIOTAP_FLAGS_AT] |= 0x40;
    let verb = corrupted.data.windows(5).position(|w| w == b"PASS ").unwrap();
    corrupted.data[verb + 2] ^= 0x10;
    frames.insert(pass, corrupted);
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("monitor.pcap");
    write_pcap_file(&capture, &frames).unwrap();
    let output = common::credwatch(&["read", "--format", "json", capture.to_str().unwrap()], &[]);
    assert!(output.status.success());
    let events = common::parse_lines(&output.stdout);
    let logins = common::of_type(&events, "cleartext_credential");
    assert_eq!(logins.len(), 1, "{events:?}");
    assert_eq!(logins[0]["credential"]["outcome"], "success");
    assert!(common::of_type(&events, "anomaly").is_empty(), "{events:?}");
}

#[test]
fn wifi_frames_failing_their_check_in_numbers_are_warned_about_once() {
    // A driver that marks every frame's FCS as bad (or a receiver out of range): nothing can be
    // read, which must not pass for an all-clear. One bad frame among good ones (the test above)
    // is a radio's everyday noise and raises no warning.
    let login = monitor_mode_login(&[b"STAT\r\n", b"+OK 0 0\r\n", b"QUIT\r\n", b"+OK bye\r\n"]);
    let mut frames = login.clone();
    assert!(frames.len() >= 10);
    for frame in &mut frames {
        frame.data[RADIOTAP_FLAGS_AT] |= 0x40;
    }
    let (logins, stderr) = read_frames(&frames);
    assert_eq!(logins, 0);
    assert_eq!(stderr.matches("fail their frame check").count(), 1, "{stderr}");

    let mut frames = login;
    frames[3].data[RADIOTAP_FLAGS_AT] |= 0x40;
    let (_, stderr) = read_frames(&frames);
    assert!(!stderr.contains("frame check"), "{stderr}");
}

#[test]
fn packets_nested_deeper_than_followed_are_warned_about_once() {
    let mut conversation = Conversation::new(([10, 1, 0, 5], 40_110), ([10, 1, 0, 9], 110));
    conversation.server(b"+OK POP3 ready\r\n").client(b"USER alice\r\nPASS not-a-real-password\r\n");
    let ends = credwatch::pcapwriter::TunnelEnds::new([192, 0, 2, 1], [192, 0, 2, 2]);
    for _ in 0..=credwatch::decode::MAX_ENCAPSULATIONS {
        conversation.encap(credwatch::pcapwriter::Encap::IpInIp { ends });
    }
    let (_, stderr) = read_frames(&conversation.frames().unwrap());
    assert_eq!(stderr.matches("more tunnel or encapsulation layers").count(), 1, "{stderr}");
}

#[test]
fn frames_stamped_far_from_their_neighbours_are_warned_about_once() {
    let mut conversation = Conversation::new(([10, 1, 0, 5], 40_110), ([10, 1, 0, 9], 110));
    conversation.handshake().server(b"+OK POP3 ready\r\n").client(b"USER alice\r\nPASS not-a-real-password\r\n");
    conversation.server(b"+OK\r\n");
    let mut frames = conversation.frames().unwrap();
    let glitch = |frame: &CapturedFrame, days: u64| CapturedFrame {
        ts: frame.ts.saturating_add(std::time::Duration::from_secs(days * 86_400)),
        ..frame.clone()
    };
    let (one, two) = (glitch(&frames[1], 4_000), glitch(&frames[3], 1));
    frames.insert(2, one);
    frames.insert(5, two);
    let (found, stderr) = read_frames(&frames);
    assert_eq!(found, 1);
    assert_eq!(stderr.matches("clock glitches").count(), 1, "{stderr}");
    // A capture whose time jumps for good (a gap) is no glitch.
    let mut gap = Conversation::new(([10, 1, 0, 5], 40_110), ([10, 1, 0, 9], 110));
    gap.handshake().wait(std::time::Duration::from_secs(3_600)).server(b"+OK POP3 ready\r\n");
    gap.client(b"USER alice\r\nPASS not-a-real-password\r\n").server(b"+OK\r\n");
    let (found, stderr) = read_frames(&gap.frames().unwrap());
    assert_eq!(found, 1);
    assert!(!stderr.contains("clock glitches"), "{stderr}");
}

#[test]
fn logins_in_wifi_aggregates_are_found() {
    // A station bundles its login, sent in three segments, into one A-MSDU frame, and the access
    // point its replies: every packet of an aggregate counts, with one thread or two.
    let mut conversation = Conversation::new(([10, 1, 0, 5], 40_143), ([10, 1, 0, 9], 143));
    conversation
        .link(Link::Radiotap)
        .handshake()
        .server(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
        .send_split(Side::Client, b"a1 LOGIN alice not-a-real-password\r\n", &[3, 6, 27])
        .aggregate_last()
        .send_split(Side::Server, b"a1 OK LOGIN completed\r\n* BYE\r\n", &[23, 7])
        .aggregate_last();
    let frames = conversation.frames().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("aggregates.pcap");
    write_pcap_file(&capture, &frames).unwrap();
    for threads in ["1", "2"] {
        let output =
            common::credwatch(&["read", "--format", "json", "--threads", threads, capture.to_str().unwrap()], &[]);
        assert!(output.status.success());
        let events = common::parse_lines(&output.stdout);
        let logins = common::of_type(&events, "cleartext_credential");
        assert_eq!(logins.len(), 1, "threads {threads}: {events:?}");
        assert_eq!(logins[0]["credential"]["mechanism"], "LOGIN");
        assert_eq!(logins[0]["credential"]["outcome"], "success");
    }
}

#[test]
fn ignore_vlans_joins_what_a_span_port_saw_with_two_tags() {
    // A SPAN port on a router's two VLANs. One connection shows its client's packets tagged 10
    // and its server's tagged 20; another is copied whole on both VLANs.
    let login = |port| {
        let mut conversation = Conversation::new(([10, 1, 0, 5], port), ([10, 1, 0, 9], 110));
        common::script::pop3_login(&mut conversation, "alice").fin(Side::Client);
        conversation
    };
    let mut asymmetric = login(40_001);
    let mut frames = asymmetric.vlans(&[10]).frames_from(Side::Client).unwrap();
    frames.extend(asymmetric.vlans(&[20]).frames_from(Side::Server).unwrap());
    frames.sort_by_key(|frame| frame.ts);
    let mut copied = login(40_002);
    let (on_10, on_20) = (copied.vlans(&[10]).frames().unwrap(), copied.vlans(&[20]).frames().unwrap());
    for (first, second) in on_10.into_iter().zip(on_20) {
        let mut second = second;
        second.ts = second.ts.saturating_add(std::time::Duration::from_micros(50));
        frames.extend([first, second]);
    }
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("span.pcap");
    write_pcap_file(&capture, &frames).unwrap();
    let path = capture.to_str().unwrap();

    let by_port = |events: &[serde_json::Value], port: u64| {
        common::of_type(events, "cleartext_credential").into_iter().filter(|alert| alert["src_port"] == port).count()
    };
    let tagged = common::parse_lines(&common::credwatch(&["read", "--format", "json", path], &[]).stdout);
    assert_eq!(by_port(&tagged, 40_002), 2, "one login per copy: {tagged:?}");
    let half = common::of_type(&tagged, "cleartext_credential").into_iter().find(|alert| alert["src_port"] == 40_001);
    assert_eq!(half.unwrap()["credential"]["outcome"], "unknown", "the server's half is another flow");

    for threads in ["1", "2"] {
        let output =
            common::credwatch(&["read", "--format", "json", "--ignore-vlans", "--threads", threads, path], &[]);
        assert!(output.status.success());
        let events = common::parse_lines(&output.stdout);
        let logins = common::of_type(&events, "cleartext_credential");
        assert_eq!(logins.len(), 2, "{events:?}");
        for login in &logins {
            assert_eq!(login["credential"]["outcome"], "success", "{login}");
            assert_eq!(login["server"]["greeting"], "+OK POP3 ready");
            assert!(login.get("vlan").is_none());
        }
        assert!(common::of_type(&events, "anomaly").is_empty(), "{events:?}");
    }
}

#[test]
fn fail_on_alert_is_for_scripts() {
    let found = common::credwatch(&["read", "--fail-on-alert", demo().to_str().unwrap()], &[]);
    assert_eq!(found.status.code(), Some(10));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    credwatch::pcapwriter::write_pcap_file(&empty, &[]).unwrap();
    let nothing = common::credwatch(&["read", "--fail-on-alert", empty.to_str().unwrap()], &[]);
    assert_eq!(nothing.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&nothing.stdout).contains("No credential crossed in clear."));
}

/// A run that read no packet (an empty capture, or only broken ones) dates its closing stats by
/// when it ended, not by 1970: a SIEM files the event among the runs of that day.
#[test]
fn stats_of_a_run_without_packets_carry_the_time_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    credwatch::pcapwriter::write_pcap_file(&empty, &[]).unwrap();
    let before = std::time::SystemTime::now();
    for threads in ["1", "2"] {
        let output = common::credwatch(
            &["read", "--format", "json", "--stats", "--threads", threads, empty.to_str().unwrap()],
            &[],
        );
        let events = common::parse_lines(&output.stdout);
        let [stats] = common::of_type(&events, "stats").try_into().expect("one stats event");
        let stamp = stats["timestamp"].as_str().unwrap();
        let stamp = credwatch::capture::Timestamp::from_rfc3339(stamp).unwrap();
        let since_epoch = before.duration_since(std::time::UNIX_EPOCH).unwrap();
        // Microseconds in the event: the second of `before` is enough.
        assert!(stamp.as_nanos() / 1_000_000_000 >= since_epoch.as_secs(), "{stats}");
    }
    let demo_stats = common::read_json(&[&demo()], &["--stats"]);
    let [stats] = common::of_type(&demo_stats, "stats").try_into().unwrap();
    assert_eq!(stats["timestamp"], "2026-11-27T09:00:05.030000Z", "a run that read packets dates by its last one");
}

/// Frames credwatch cannot decode (a link type it does not read) are read but not looked into:
/// the closing words say so, even with `-q`, rather than "No credential crossed in clear".
#[test]
fn a_capture_that_could_not_be_decoded_is_no_all_clear() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("user0.pcap");
    let frames: Vec<CapturedFrame> = (0..13)
        .map(|second| CapturedFrame {
            ts: credwatch::capture::Timestamp::from_secs_nanos(1_700_000_000 + second, 0),
            link_type: credwatch::capture::LinkType(147),
            data: vec![0; 60],
        })
        .collect();
    write_pcap_file(&capture, &frames).unwrap();
    let output = common::credwatch(&["-q", "read", capture.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.trim_end(),
        "No credential crossed in clear in what could be read: 13 frames could not be decoded (of a link type not \
         read, encrypted, or tunnelled too deep)."
    );
}

/// A client that logs in with `USER`/`PASS` never asks for the capabilities; another session to
/// the same server shows it offers STLS. The server's report says what its posture says: STARTTLS
/// offered, the client skipped it.
#[test]
fn a_server_report_knows_what_the_servers_other_sessions_showed() {
    let dir = tempfile::tempdir().unwrap();
    let server = ([10, 4, 0, 2], 110);
    let mut careful = Conversation::new(([10, 4, 0, 1], 40_000), server);
    careful
        .handshake()
        .server(b"+OK POP3 ready\r\n")
        .client(b"CAPA\r\n")
        .server(b"+OK\r\nUSER\r\nSTLS\r\n.\r\n")
        .client(b"STLS\r\n")
        .server(b"+OK Begin TLS\r\n");
    let mut hasty = Conversation::new(([10, 4, 0, 3], 40_001), server);
    common::script::pop3_login(
        hasty.start_at(credwatch::capture::Timestamp::from_secs_nanos(1_700_000_100, 0)),
        "alice",
    );
    let capture = dir.path().join("two-clients.pcap");
    write_pcap_file(&capture, &[careful.frames().unwrap(), hasty.frames().unwrap()].concat()).unwrap();
    let events = common::read_json(&[&capture], &[]);
    let [alert] = common::of_type(&events, "cleartext_credential").try_into().unwrap();
    assert_eq!(alert["remediation"], "unknown", "the alert's own session showed nothing");
    let [report] = common::of_type(&events, "server_report").try_into().unwrap();
    let [posture] = common::of_type(&events, "server_posture").try_into().unwrap();
    assert_eq!(posture["starttls_offered"], true);
    assert_eq!(report["starttls_offered"], true);
    assert_eq!(report["remediation"], "client_skipped_starttls");
}

/// Evidence in a directory that credwatch cannot read (a capture compressed with zstd, as
/// `tcpdump -z` may leave it, a damaged one) is an error naming it, not silence: the run exits
/// 3 and says what to do, while the readable captures are still read.
#[test]
fn captures_in_a_directory_that_cannot_be_read_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(demo(), dir.path().join("a.pcap")).unwrap();
    std::fs::write(dir.path().join("b.pcap.zst"), [0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x00]).unwrap();
    std::fs::write(dir.path().join("c.pcap"), b"\xff\xff\xff\xff damaged").unwrap();
    let output = common::credwatch(&["read", "--format", "json", dir.path().to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("b.pcap.zst") && stderr.contains("zstd -d"), "{stderr}");
    assert!(stderr.contains("c.pcap") && stderr.contains("unknown magic number"), "{stderr}");
    let events = common::parse_lines(&output.stdout);
    assert!(!common::of_type(&events, "cleartext_credential").is_empty(), "the readable capture is read");
}

/// A capture rotated by `tcpdump -C` into `cap`, `cap1`, … `cap11`, each login spanning two
/// files: a directory listing (or a shell's glob) sorts `cap10` before `cap2`, and the command
/// line may name them in any order. Read in the order of their first packets, every login is
/// whole: its user name, its outcome.
#[test]
fn a_rotated_capture_reads_whole_whatever_the_order_of_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for i in 0..12u16 {
        let mut conversation = Conversation::new(([10, 3, 0, 1], 30_000 + i), ([10, 3, 0, 2], 110));
        let start = credwatch::capture::Timestamp::from_secs_nanos(1_700_000_000 + u64::from(i) * 10, 0);
        common::script::pop3_login(conversation.start_at(start), &format!("user{i:02}"));
        frames.extend(conversation.frames().unwrap());
    }
    // Files of 7 frames: every login (9 frames) is cut by a rotation.
    let mut files = Vec::new();
    for (n, chunk) in frames.chunks(7).enumerate() {
        let name = if n == 0 { "cap".to_string() } else { format!("cap{n}") };
        let path = dir.path().join(name);
        write_pcap_file(&path, chunk).unwrap();
        files.push(path);
    }
    assert!(files.len() > 11, "names past cap10 sort before cap2 as text");
    let reversed: Vec<&str> = files.iter().rev().map(|path| path.to_str().unwrap()).collect();
    let directory = [dir.path().to_str().unwrap()];
    for inputs in [&reversed[..], &directory[..]] {
        let events =
            common::read_json(&inputs.iter().map(std::path::Path::new).collect::<Vec<_>>(), &["--show-usernames"]);
        let logins: Vec<(String, String)> = common::of_type(&events, "cleartext_credential")
            .iter()
            .map(|alert| {
                let credential = &alert["credential"];
                (
                    credential["username"].as_str().unwrap_or("").to_string(),
                    credential["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = (0..12).map(|i| (format!("user{i:02}"), "success".to_string())).collect();
        assert_eq!(logins, expected, "{inputs:?}");
    }
}

/// A capture of `logins` POP3 logins, one after another: JSON lines enough to fill a pipe.
fn many_logins(path: &std::path::Path, logins: u16) {
    let mut frames = Vec::new();
    for i in 0..logins {
        let mut conversation = Conversation::new(([10, 2, 0, 1], 20_000 + i), ([10, 2, 0, 2], 110));
        common::script::pop3_login(
            conversation.start_at(credwatch::capture::Timestamp::from_secs_nanos(1_700_000_000 + u64::from(i), 0)),
            "alice",
        );
        frames.extend(conversation.frames().unwrap());
    }
    write_pcap_file(path, &frames).unwrap();
}

/// Runs credwatch, reads one line of its standard output and closes it, as `| head -1` does;
/// returns its exit status.
fn status_closed_after_one_line(args: &[&str]) -> Option<i32> {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("cleartext_credential"), "{line}");
    drop(stdout);
    child.wait().unwrap().code()
}

/// Standard output closed by its reader (`| head -1`) stops the run quietly, but the status
/// still follows the documented rule: files that failed before make it 3, whatever was found;
/// else a cleartext credential found makes it 10 with `--fail-on-alert`; else 0.
#[test]
fn a_closed_standard_output_still_tells_the_files_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pcap");
    many_logins(&big, 500);
    let big = big.to_str().unwrap();
    let truncated = common::repo_path("fixtures/broken/truncated-record.pcap");
    let cases: [(&[&str], i32); 6] = [
        (&[big], 0),
        (&["--fail-on-alert", big], 10),
        (&["/nonexistent.pcap", big], 3),
        (&["--fail-on-alert", "/nonexistent.pcap", big], 3),
        (&[truncated.to_str().unwrap(), big], 3),
        (&["--fail-on-alert", truncated.to_str().unwrap(), big], 3),
    ];
    for threads in ["1", "2"] {
        for (inputs, expected) in &cases {
            let mut args = vec!["read", "--format", "json", "--threads", threads];
            args.extend_from_slice(inputs);
            assert_eq!(status_closed_after_one_line(&args), Some(*expected), "{args:?}");
        }
    }
}

#[test]
fn json_output_is_only_json_objects_with_the_contract_fields() {
    let events = common::read_json(&[&demo()], &[]);
    for alert in common::of_type(&events, "cleartext_credential") {
        for field in [
            "timestamp",
            "severity",
            "flow_id",
            "src_ip",
            "src_port",
            "dest_ip",
            "dest_port",
            "proto",
            "app_proto",
            "credential",
            "server",
            "remediation",
            "schema_version",
        ] {
            assert!(alert.get(field).is_some(), "{field} missing in {alert}");
        }
        for field in ["mechanism", "secret", "username", "outcome"] {
            assert!(alert["credential"].get(field).is_some(), "credential.{field} missing");
        }
        for field in ["ip", "port", "greeting", "starttls_offered"] {
            assert!(alert["server"].get(field).is_some(), "server.{field} missing");
        }
    }
}

#[test]
fn usernames_can_be_shown_or_hashed_with_a_key() {
    let full = common::read_json(&[&demo()], &["--show-usernames"]);
    assert_eq!(full[0]["credential"]["username"], "alice");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, b"a secret key for the tests\n").unwrap();
    let hashed = common::read_json(
        &[&demo()],
        &["--usernames", "hashed", "--key-file", key.to_str().unwrap(), "--fingerprint-secrets"],
    );
    let name = hashed[0]["credential"]["username"].as_str().unwrap();
    // docs/security.md's recipe: the key file's bytes without the white space around them.
    assert_eq!(
        name,
        format!(
            "hmac-sha256:{}",
            documented_digest(b"a secret key for the tests", b"credwatch user name v1", b"alice")
        )
    );
    assert_eq!(hashed[0]["credential"]["secret_fingerprint"].as_str().map(str::len), Some(16));
}

/// HMAC-SHA256 under HMAC-SHA256(site key, label), its first 8 bytes in hex.
fn documented_digest(site_key: &[u8], label: &[u8], data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mac = |key: &[u8], data: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes()
    };
    mac(&mac(site_key, label), data).iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn text_output_reads_as_a_report() {
    let output = common::credwatch(&["read", demo().to_str().unwrap()], &[]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().next().unwrap().contains("CLEARTEXT  pop3  USER/PASS"));
    assert!(text.contains("4 server(s) exposed credentials"));
    assert!(!text.contains('\x1b'), "no colour when not a terminal");
}

/// README (Memory bounds): `-v` logs every bound's counter at exit, by the stats event's names.
#[test]
fn verbose_logs_the_closing_counters_with_every_limit() {
    let output = common::credwatch(&["-v", "read", demo().to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|line| line.contains("final_report=true")).expect("a closing stats line");
    for counter in [
        "packets=75",
        "undecoded=0",
        "inspected_flows_evicted=0",
        "buffer_sheds=0",
        "buffer_skips=0",
        "out_of_window_bytes=0",
        "overlong_lines=0",
        "pending_dropped=0",
        "depth_exceeded=0",
        "cleartext=4",
    ] {
        assert!(line.contains(counter), "{counter} missing: {line}");
    }
}
