//! Credentials awaiting their verdicts are bounded too: 50 000 connections, each naming a user
//! of an address's full length and sending 32 passwords the capture shows no reply to (a session
//! keeps 32 credentials), go through an engine of 10 000 flows and a 4 MiB budget for what flows
//! hold. Without the credentials in that budget, every flow would hold about 16 KiB. The budget
//! must hold after every packet, the process's peak resident memory must grow by no more than the
//! per-flow bound and the budget allow, and no credential may be lost: those the budget sheds are
//! reported at once, outcome unknown.
//!
//! This is the only test in its binary, so the process's memory is this test's.

mod memory;

use credwatch::alert::{Event, Outcome};
use credwatch::capture::Timestamp;
use credwatch::decode::TcpFlags;
use credwatch::flow::FlowLimits;
use credwatch::pipeline::Engine;
use credwatch::proto::ProtoConfig;
use memory::{kib, packet, PER_FLOW_FIXED, SLACK};

const FLOWS: u32 = 50_000;
const MAX_FLOWS: usize = 10_000;
const BUDGET: usize = 4 << 20;
const PASSWORDS: usize = 32;

#[test]
fn credentials_awaiting_verdicts_stay_within_the_global_budget() {
    let limits = FlowLimits { max_flows: MAX_FLOWS, max_buffered_total: BUDGET, ..FlowLimits::default() };
    let mut engine = Engine::new(limits, ProtoConfig::default());
    let mut events: Vec<Event> = Vec::new();
    let user = format!("{}@example.test", "u".repeat(256 - "@example.test".len()));
    let login = format!("USER {user}\r\n{}", "PASS hunter2\r\n".repeat(PASSWORDS));
    let rss_before = kib("VmRSS:");
    let (ack, syn) = (TcpFlags::ACK, TcpFlags::SYN);
    let (mut credentials, mut unknown) = (0, 0);
    for client in 0..FLOWS {
        let ts = Timestamp::from_secs_nanos(1_700_000_000 + u64::from(client / 10_000), (client % 10_000) * 100_000);
        engine.process(&packet(client, true, syn, 0, b""), ts, &mut events);
        engine.process(&packet(client, false, syn | ack, 5_000, b""), ts, &mut events);
        engine.process(&packet(client, false, ack, 5_001, b"+OK POP3 ready\r\n"), ts, &mut events);
        engine.process(&packet(client, true, ack, 1, login.as_bytes()), ts, &mut events);
        let stats = engine.stats();
        assert!(stats.buffered_bytes <= BUDGET, "{} bytes counted", stats.buffered_bytes);
        for event in events.drain(..) {
            if let Event::Credential(alert) = event {
                credentials += 1;
                unknown += usize::from(alert.credential.outcome == Outcome::Unknown);
                assert!(alert.credential.username.is_some(), "a name of an address's length is kept");
            }
        }
    }
    let stats = engine.stats();
    assert!(stats.flow.memcap_sheds > 0, "the budget was reached");
    let peak_growth = (kib("VmHWM:").saturating_sub(rss_before)) * 1024;
    let bound = MAX_FLOWS as u64 * PER_FLOW_FIXED + BUDGET as u64 + SLACK;
    eprintln!(
        "{FLOWS} flows of {PASSWORDS} credentials awaiting verdicts: peak RSS grew by {} KiB, bound {} KiB",
        peak_growth / 1024,
        bound / 1024
    );
    assert!(peak_growth <= bound, "peak RSS grew by {peak_growth} bytes, more than {bound}");

    engine.finish(&mut events);
    credentials += events.iter().filter(|event| matches!(event, Event::Credential(_))).count();
    assert_eq!(credentials, FLOWS as usize * PASSWORDS, "every credential is reported");
    assert!(unknown > 0);
}
