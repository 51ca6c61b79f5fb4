//! Memory stays bounded under a flood: 200 000 connections, each holding as much state as a
//! connection can (a mail session waiting for the end of a line, out-of-order bytes in the
//! reassembler), go through an engine limited to 10 000 flows. The engine's counters must stay
//! within the limits after every packet, the process's peak resident memory must grow by no more
//! than the documented per-flow bound allows, and a login after the flood must still be found.
//!
//! This is the only test in its binary, so the process's memory is this test's.

mod memory;

use credwatch::alert::Event;
use credwatch::capture::Timestamp;
use credwatch::decode::TcpFlags;
use credwatch::flow::FlowLimits;
use credwatch::pipeline::Engine;
use credwatch::proto::ProtoConfig;
use memory::{kib, packet, PER_FLOW_FIXED, SLACK};

const FLOWS: u32 = 200_000;
const MAX_FLOWS: usize = 10_000;

#[test]
fn a_flood_of_heavy_flows_stays_within_the_flow_and_memory_bounds() {
    let limits = FlowLimits { max_flows: MAX_FLOWS, ..FlowLimits::default() };
    let mut engine = Engine::new(limits, ProtoConfig::default());
    let mut events: Vec<Event> = Vec::new();
    let out_of_order = [b'x'; 1_000];
    let rss_before = kib("VmRSS:");
    let (ack, syn) = (TcpFlags::ACK, TcpFlags::SYN);
    let (mut peak_flows, mut peak_buffered) = (0, 0);
    for client in 0..FLOWS {
        let ts = Timestamp::from_secs_nanos(1_700_000_000 + u64::from(client / 10_000), (client % 10_000) * 100_000);
        engine.process(&packet(client, true, syn, 0, b""), ts, &mut events);
        engine.process(&packet(client, false, syn | ack, 5_000, b""), ts, &mut events);
        engine.process(&packet(client, false, ack, 5_001, b"+OK POP3 ready\r\n"), ts, &mut events);
        // A command that never ends, and bytes beyond a hole that never fills.
        engine.process(&packet(client, true, ack, 1, b"USER someone-waiting"), ts, &mut events);
        engine.process(&packet(client, true, ack, 2_000, &out_of_order), ts, &mut events);
        // Evicted sessions leave records of their server; nobody logged in.
        assert!(!events.iter().any(|e| matches!(e, Event::Credential(_))), "nobody logged in yet");
        events.clear();
        let stats = engine.stats();
        assert!(stats.active_flows <= MAX_FLOWS, "{} flows", stats.active_flows);
        assert!(stats.buffered_bytes <= limits.max_buffered_total);
        peak_flows = peak_flows.max(stats.active_flows);
        peak_buffered = peak_buffered.max(stats.buffered_bytes as u64);
    }
    let stats = engine.stats();
    assert_eq!(stats.flow.flows_created, u64::from(FLOWS));
    assert!(stats.flow.flows_evicted >= u64::from(FLOWS) - MAX_FLOWS as u64);
    assert_eq!(peak_flows, MAX_FLOWS);

    let peak_growth = (kib("VmHWM:").saturating_sub(rss_before)) * 1024;
    // Out-of-order bytes are bounded globally (max_buffered_total) and counted; the rest per flow.
    let bound = MAX_FLOWS as u64 * PER_FLOW_FIXED + peak_buffered + SLACK;
    eprintln!(
        "{FLOWS} flows through a {MAX_FLOWS}-flow table: peak RSS grew by {} KiB, of which {} KiB out-of-order \
         bytes; {} B per tracked flow besides them; bound {} KiB",
        peak_growth / 1024,
        peak_buffered / 1024,
        peak_growth.saturating_sub(peak_buffered) / MAX_FLOWS as u64,
        bound / 1024
    );
    assert!(peak_growth <= bound, "peak RSS grew by {peak_growth} bytes, more than {bound}");

    let client = FLOWS + 1;
    let ts = Timestamp::from_secs_nanos(1_700_001_000, 0);
    engine.process(&packet(client, true, syn, 0, b""), ts, &mut events);
    engine.process(&packet(client, false, syn | ack, 5_000, b""), ts, &mut events);
    engine.process(&packet(client, false, ack, 5_001, b"+OK POP3 ready\r\n"), ts, &mut events);
    engine.process(&packet(client, true, ack, 1, b"USER alice\r\nPASS Sunny-Day-2024\r\n"), ts, &mut events);
    engine.process(&packet(client, false, ack, 5_017, b"+OK\r\n+OK Logged in.\r\n"), ts, &mut events);
    let logins = events.iter().filter(|e| matches!(e, Event::Credential(_))).count();
    assert_eq!(logins, 1, "the login after the flood is found");
}
