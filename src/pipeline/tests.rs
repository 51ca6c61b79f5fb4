//! The pipeline end to end on written captures: the thread count changes nothing in the output.

use std::io;
use std::time::Duration;

use super::*;
use crate::alert::Outcome;
use crate::output::{RepeatSummary, ServerReport};
use crate::pcapwriter::{interleave, write_pcap_file, CapturedFrame, Conversation, Encap, Side};

/// Keeps what the pipeline wrote, as JSON lines.
#[derive(Default)]
struct Collect {
    lines: Vec<String>,
    events: Vec<Event>,
    servers: Vec<ServerReport>,
}

impl Sink for Collect {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        if let Some(line) = event.to_json() {
            self.lines.push(line.to_string());
        }
        self.events.push(event.clone());
        Ok(())
    }

    fn repeat(&mut self, _: &RepeatSummary) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, servers: &[ServerReport], _: &Unread) -> io::Result<()> {
        self.servers = servers.to_vec();
        Ok(())
    }
}

const START_SECS: u64 = 1_700_000_000;

/// One mail login of the workload; `shape` picks protocol, outcome and ending.
fn session(i: u16) -> Vec<CapturedFrame> {
    let client = ([10, 1, (i / 200) as u8, (i % 200) as u8 + 1], 40_000 + i);
    let pop3 = i.is_multiple_of(2);
    let server = ([10, 0, 0, (i % 5) as u8 + 1], if pop3 { 110 } else { 143 });
    let mut conversation = Conversation::new(client, server);
    conversation.start_at(Timestamp::from_secs_nanos(START_SECS + u64::from(i) * 3, u32::from(i) * 7_919));
    conversation.handshake();
    let user = format!("user{i}");
    if pop3 {
        conversation.server(b"+OK ready\r\n").client(format!("USER {user}\r\n").as_bytes()).server(b"+OK\r\n");
        conversation.client(format!("PASS pw-{i}\r\n").as_bytes());
    } else {
        conversation.server(b"* OK IMAP ready\r\n").client(format!("a1 LOGIN {user} pw-{i}\r\n").as_bytes());
    }
    match i % 4 {
        // Answered, closed.
        0 | 1 => {
            conversation.server(if pop3 { b"+OK in\r\n" } else { b"a1 OK in\r\n" });
            conversation.fin(Side::Client);
        }
        // Refused, then silence long enough for the idle timeout.
        2 => {
            conversation.server(if pop3 { b"-ERR no\r\n" } else { b"a1 NO no\r\n" });
            conversation.wait(Duration::from_secs(700)).client(b"QUIT\r\n");
        }
        // Never answered, never closed: pending until the end of input.
        _ => {}
    }
    conversation.frames().unwrap()
}

fn workload(sessions: u16) -> Vec<CapturedFrame> {
    interleave((0..sessions).map(session))
}

fn run(path: &std::path::Path, threads: usize, queue_segments: usize, stats_event: bool) -> (Collect, RunReport) {
    let config = RunConfig { threads, queue_segments, stats_event, ..RunConfig::default() };
    let mut sink = Collect::default();
    let report = read_files(&[path.to_path_buf()], &config, &mut sink).unwrap();
    (sink, report)
}

#[test]
fn one_worker_or_many_write_the_same_lines_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.pcap");
    write_pcap_file(&path, &workload(120)).unwrap();
    let (single, single_report) = run(&path, 1, DEFAULT_QUEUE_SEGMENTS, false);
    assert_eq!(single.lines.len(), 120, "one credential per session");
    let outcomes = |collect: &Collect, outcome: Outcome| {
        collect
            .events
            .iter()
            .filter(|event| matches!(event, Event::Credential(alert) if alert.credential.outcome == outcome))
            .count()
    };
    assert_eq!(outcomes(&single, Outcome::Success), 60);
    assert_eq!(outcomes(&single, Outcome::Failure), 30);
    assert_eq!(outcomes(&single, Outcome::Unknown), 30);
    assert!(single_report.engine.flow.flows_timed_out >= 30, "the idle sessions expired on packet time");
    for threads in [2, 4, 7] {
        let (many, report) = run(&path, threads, DEFAULT_QUEUE_SEGMENTS, false);
        assert_eq!(many.lines, single.lines, "{threads} threads");
        assert_eq!(many.servers, single.servers, "{threads} threads");
        assert_eq!(report.frames, single_report.frames);
        assert_eq!(report.engine.flow.flows_created, single_report.engine.flow.flows_created);
        assert_eq!(report.engine.flow.flows_timed_out, single_report.engine.flow.flows_timed_out);
        assert_eq!(report.cleartext_alerts, 120);
    }
}

#[test]
fn files_never_drop_even_with_tiny_queues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny-queues.pcap");
    write_pcap_file(&path, &workload(40)).unwrap();
    let (single, single_report) = run(&path, 1, DEFAULT_QUEUE_SEGMENTS, false);
    let (many, report) = run(&path, 3, 1, false);
    assert_eq!(many.lines, single.lines);
    assert_eq!(report.stats.queue_drops, 0);
    assert_eq!(report.engine.flow.reassembly.segments, single_report.engine.flow.reassembly.segments);
}

#[test]
fn the_closing_stats_are_written_only_when_asked_and_count_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.pcap");
    let frames = workload(8);
    write_pcap_file(&path, &frames).unwrap();
    for threads in [1, 2] {
        let (quiet, _) = run(&path, threads, DEFAULT_QUEUE_SEGMENTS, false);
        assert!(!quiet.events.iter().any(|event| matches!(event, Event::Stats(_))));
        let (loud, report) = run(&path, threads, DEFAULT_QUEUE_SEGMENTS, true);
        let Some(Event::Stats(stats)) = loud.events.last() else { panic!("the stats come last: {:?}", loud.lines) };
        assert!(stats.is_final);
        assert_eq!(stats.packets, frames.len() as u64);
        assert_eq!(stats.alerts.cleartext_credential, 8);
        // Two sessions go quiet for 700 s; their QUITs, the capture's last two frames, are too few
        // to move time that far (three in a row are needed): each goes on in its flow.
        assert_eq!(stats.flows_created, 8);
        assert_eq!(stats.timestamp, frames.iter().map(|f| f.ts).max().unwrap().rfc3339_micros());
        assert_eq!(report.stats, **stats);
        assert_eq!(loud.lines.len(), quiet.lines.len() + 1);
    }
}

#[test]
fn the_closing_stats_count_what_decoding_skipped_and_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decode.pcap");
    // A login whose PASS line alone is long enough to cross in two fragments, and whose greeting
    // frame is corrupt (IP version 5).
    let mut conversation = Conversation::new(([10, 9, 0, 1], 40_009), ([10, 9, 0, 2], 110));
    conversation.encap(Encap::Fragment { size: 32 });
    conversation.handshake().server(b"+OK ready\r\n").client(b"USER alice\r\n").server(b"+OK\r\n");
    conversation.client(b"PASS a-password-long-enough-to-fragment\r\n").server(b"+OK in\r\n");
    let mut frames = conversation.frames().unwrap();
    assert_eq!(frames.len(), 3 + 5 + 1);
    frames[3].data[14] = 0x55;
    write_pcap_file(&path, &frames).unwrap();
    for threads in [1, 2] {
        let (collected, _) = run(&path, threads, DEFAULT_QUEUE_SEGMENTS, true);
        let Some(Event::Stats(stats)) = collected.events.last() else { panic!("no stats: {:?}", collected.lines) };
        let decode = &stats.decode;
        assert_eq!((decode.malformed, decode.fragments_reassembled, decode.ip_fragments), (1, 1, 1), "{decode:?}");
        assert_eq!(stats.tcp_segments, frames.len() as u64 - 2);
        let line: serde_json::Value = serde_json::from_str(collected.lines.last().unwrap()).unwrap();
        assert_eq!(line["decode"]["malformed"], 1);
        assert_eq!(line["decode"]["fragments_reassembled"], 1);
        assert!(line["decode"].get("tcp").is_none(), "tcp_segments says it");
    }
}

#[test]
fn a_missing_file_is_reported_and_the_others_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.pcap");
    write_pcap_file(&path, &session(0)).unwrap();
    let config = RunConfig { threads: 2, ..RunConfig::default() };
    let mut sink = Collect::default();
    let report = read_files(&[dir.path().join("absent.pcap"), path], &config, &mut sink).unwrap();
    assert_eq!(report.files_read, 2);
    assert_eq!(report.file_errors.len(), 1);
    assert_eq!(sink.lines.len(), 1);
}

/// A sink that fails with `kind`: the run must stop with the error, not hang on full queues.
struct Broken(io::ErrorKind);

impl Sink for Broken {
    fn event(&mut self, _: &Event) -> io::Result<()> {
        Err(self.0.into())
    }

    fn repeat(&mut self, _: &RepeatSummary) -> io::Result<()> {
        Err(self.0.into())
    }

    fn finish(&mut self, _: &[ServerReport], _: &Unread) -> io::Result<()> {
        Err(self.0.into())
    }
}

/// The error of a run over a missing file, then a small workload, whose output fails with `kind`,
/// with 1 and 4 threads.
fn runs_failing_with(kind: io::ErrorKind) -> Vec<(usize, RunError)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.pcap");
    write_pcap_file(&path, &workload(60)).unwrap();
    let paths = [dir.path().join("absent.pcap"), path];
    [1, 4]
        .into_iter()
        .map(|threads| {
            let config = RunConfig { threads, queue_segments: 1, ..RunConfig::default() };
            (threads, read_files(&paths, &config, &mut Broken(kind)).unwrap_err())
        })
        .collect()
}

#[test]
fn an_output_failure_ends_the_run_with_its_error() {
    for (threads, error) in runs_failing_with(io::ErrorKind::StorageFull) {
        let RunError::Output(error) = error else { panic!("not an output error: {error}") };
        assert_eq!(error.kind(), io::ErrorKind::StorageFull, "{threads} threads");
    }
}

/// A closed pipe is the reader going away: the run stops, saying what it had found by then, and
/// which files had failed by then (the exit status must still tell).
#[test]
fn a_closed_pipe_stops_the_run_with_the_cleartext_found_and_the_files_failed_so_far() {
    for (threads, error) in runs_failing_with(io::ErrorKind::BrokenPipe) {
        let RunError::OutputClosed { cleartext_alerts, unread_files } = error else {
            panic!("not a closed output: {error}")
        };
        assert_eq!(cleartext_alerts, 1, "{threads} threads: the alert whose write found the pipe closed");
        assert_eq!(unread_files, 1, "{threads} threads: the missing file");
    }
}

/// A capture of `size` bytes of generated `kind` traffic, written in `dir`.
fn generated(dir: &tempfile::TempDir, kind: crate::gen::TrafficKind, size: u64, seed: u64) -> std::path::PathBuf {
    let name = format!("{}.pcap", kind.name());
    let path = dir.path().join(&name);
    let config = crate::gen::GenConfig { kind, size, seed };
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    crate::gen::generate(&config, &name, file).unwrap().0.into_inner().unwrap().sync_all().unwrap();
    path
}

/// Worker threads hold the read blocks their segments point into, and hand them back: a threaded
/// run of a capture larger than the README's bound (9 + 12 blocks per worker thread) stays within
/// it, and a run on one thread needs one block.
#[test]
fn a_threaded_run_keeps_its_read_blocks_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = generated(&dir, crate::gen::TrafficKind::MailHeavy, 32 << 20, 3);
    let blocks_in_file = std::fs::metadata(&path).unwrap().len() / crate::capture::INITIAL_BUFFER_LEN as u64;
    let (single, single_report) = run(&path, 1, DEFAULT_QUEUE_SEGMENTS, false);
    assert_eq!(single_report.read_blocks, 1);
    let (threaded, report) = run(&path, 2, DEFAULT_QUEUE_SEGMENTS, false);
    assert_eq!(threaded.lines, single.lines);
    let bound = 9 + 12;
    assert!(blocks_in_file > bound, "the capture spans more blocks ({blocks_in_file}) than the bound");
    assert!(report.read_blocks > 1, "the workers held blocks: reading went on in others");
    assert!(report.read_blocks <= bound, "{} blocks held for a file of {blocks_in_file} blocks", report.read_blocks);
}

/// The flow limits are split between the threads as the flows are (the reading thread keeps a
/// smaller share): under pressure, each table fills as one engine's would, and a threaded run
/// evicts about as many flows as one thread.
#[test]
fn a_threaded_run_under_flow_pressure_evicts_as_one_thread_would() {
    let dir = tempfile::tempdir().unwrap();
    let path = generated(&dir, crate::gen::TrafficKind::ManyFlows, 8 << 20, 5);
    let evicted = |threads| {
        let flow = FlowLimits { max_flows: 4096, ..FlowLimits::default() };
        let config = RunConfig { threads, flow, ..RunConfig::default() };
        let report = read_files(std::slice::from_ref(&path), &config, &mut Collect::default()).unwrap();
        report.engine.flow.flows_evicted
    };
    let single = evicted(1);
    assert!(single > 1_000, "the capture puts the table under pressure ({single} evicted)");
    for threads in [2, 3] {
        let threaded = evicted(threads);
        assert!(threaded.abs_diff(single) * 10 < single, "{threads} threads evicted {threaded}, one {single}");
    }
}

#[test]
fn the_flow_limits_are_split_in_the_proportions_of_the_shares() {
    let (local, worker) = Share::file_run(2);
    let config = RunConfig {
        flow: FlowLimits { max_flows: 120_000, max_buffered_total: usize::MAX, ..FlowLimits::default() },
        ..RunConfig::default()
    };
    let (local, worker) = (config.shard_limits(local), config.shard_limits(worker));
    assert_eq!(local.max_flows * 5, worker.max_flows * 2, "two slots against five");
    assert!(local.max_flows + 2 * worker.max_flows <= 120_000);
    assert!(local.max_flows + 2 * worker.max_flows > 119_990);
    let buffered = |limits: FlowLimits| limits.max_buffered_total as u128;
    assert!(buffered(local) + 2 * buffered(worker) <= usize::MAX as u128, "no overflow, no more than the total");
    assert!(buffered(local) > usize::MAX as u128 * 2 / 12 - 12);
    let even = config.shard_limits(Share::even(3));
    assert_eq!(even.max_flows, 40_000);
}

/// Flows picked up without their handshake (the capture started later, or lost it): a login line
/// whose segments the capture reversed is read whole, and a verdict captured before the command
/// it answers (the two directions merged out of order) still answers that command, not the next.
#[test]
fn flows_picked_up_midstream_are_read_in_the_order_spoken() {
    let mut reversed = Conversation::new(([10, 2, 0, 1], 40_001), ([10, 0, 0, 9], 143));
    reversed.start_at(Timestamp::from_secs_nanos(START_SECS, 0));
    reversed.server(b"* OK IMAP ready\r\n");
    reversed.send_split(Side::Client, b"a1 LOGIN alice midstream-pw\r\n", &[9]).reverse_last();
    reversed.server(b"a1 OK in\r\n").fin(Side::Client);
    let mut early = Conversation::new(([10, 2, 0, 2], 40_002), ([10, 0, 0, 9], 110));
    early.start_at(Timestamp::from_secs_nanos(START_SECS + 1, 0));
    early.server(b"+OK ready\r\n").client(b"AUTH PLAIN AGJvYgBtaWRzdHJlYW0tcHc=\r\n");
    early.server(b"-ERR no\r\n").captured_early(1);
    early.client(b"QUIT\r\n").server(b"+OK bye\r\n").fin(Side::Client);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("midstream.pcap");
    write_pcap_file(&path, &interleave([reversed.frames().unwrap(), early.frames().unwrap()])).unwrap();
    let (sink, _) = run(&path, 1, 65_536, false);
    let logins: Vec<(u16, Option<String>, Outcome, bool)> = sink
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Credential(alert) => Some((
                alert.flow.dest_port,
                alert.credential.username.clone(),
                alert.credential.outcome,
                alert.credential.partial,
            )),
            _ => None,
        })
        .collect();
    let expected = [
        (143, Some("a***".to_string()), Outcome::Success, false),
        (110, Some("b***".to_string()), Outcome::Failure, false),
    ];
    assert_eq!(logins, expected);
    assert!(sink.events.iter().all(|event| match event {
        Event::Credential(alert) => alert.flow.midstream,
        _ => true,
    }));
}
