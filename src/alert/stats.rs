//! The `stats` event: what a run has seen and dropped so far, written periodically in live mode
//! and at the end of a run, so that a SIEM can tell "no alerts" from "blind".

use serde::Serialize;

use crate::decode::DecodeStats;

/// Counters of a whole run (all interfaces, all workers), cumulative since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatsEvent {
    /// Wall-clock time in live mode; the last packet's time when reading files.
    pub timestamp: String,
    pub event_type: &'static str,
    /// The closing report of the run (the others are periodic).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Frames captured and their bytes (as captured, after the snaplen).
    pub packets: u64,
    pub bytes: u64,
    /// Frames that decoded to a TCP segment (the rest is counted by reason in `decode`).
    pub tcp_segments: u64,
    /// Dropped by the kernel because the capture buffer was full (pcap `ps_drop`).
    pub kernel_drops: u64,
    /// Dropped by the interface or its driver (pcap `ps_ifdrop`).
    pub interface_drops: u64,
    /// Segments dropped because a worker's queue was full (live mode only; files never drop).
    pub queue_drops: u64,
    pub flows_active: u64,
    pub flows_created: u64,
    pub flows_evicted: u64,
    pub flows_timed_out: u64,
    /// Bytes held out of order by the reassemblers, across all workers.
    pub reassembly_bytes: u64,
    /// Holes the reassemblers gave up waiting for (lost or dropped packets).
    pub gaps: u64,
    /// Data segments that waited for bytes of the other direction captured after them (a capture
    /// whose two directions are merged out of order) or lost.
    pub segments_waited: u64,
    /// What decoding skipped, by reason, and what fragment reassembly and tunnels did: a capture
    /// that decodes to nothing (malformed, cut short, an unread link type) must not pass for a
    /// quiet one.
    pub decode: DecodeStats,
    pub limits: LimitStats,
    pub alerts: AlertCounts,
    /// Per-interface capture counters (live mode).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceStats>,
    /// What each output did with the records handed to it, so that records lost on the way to a
    /// SIEM show while the run goes on, not only in its exit status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputStats>,
    pub schema_version: u32,
}

impl StatsEvent {
    /// Records the outputs lost so far: dropped for a full queue, lost to a failure, or not read.
    pub fn undelivered(&self) -> u64 {
        saturating_sum(self.outputs.iter().flat_map(|output| [output.dropped_queue_full, output.lost]))
    }
}

/// The sum of counters, held at `u64::MAX` rather than wrapping (a total that wrapped would read
/// as nothing lost).
pub(crate) fn saturating_sum(counts: impl IntoIterator<Item = u64>) -> u64 {
    counts.into_iter().fold(0, u64::saturating_add)
}

/// Counters of one output (`--output`), cumulative since the start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutputStats {
    /// The output as named on the command line (`stdout`, `file:PATH`, `syslog+tcp://HOST:PORT`).
    pub name: String,
    /// Records delivered: written to the file or sent on the socket (standard output: handed to
    /// it).
    pub written: u64,
    /// Records dropped because the output's queue was full (its destination down or too slow).
    pub dropped_queue_full: u64,
    /// Records lost to a failure: a file batch whose write failed, what was still queued at exit
    /// while the destination was down, or what standard output's reader did not take.
    pub lost: u64,
    /// Failed attempts to write, open or connect (each retried after a backoff).
    pub errors: u64,
}

/// Whether a counter of losses at `count` is worth a warning, the last one having come at
/// `last_warned` (0: none yet): at the first loss, then each time it doubled, so that a daemon
/// running for days says so again when it keeps losing, without a line per loss.
pub fn worth_warning_again(count: u64, last_warned: u64) -> bool {
    count > 0 && count >= last_warned.saturating_mul(2)
}

/// What the bounds on memory and parsing let go, beside `flows_evicted` and the decode counters:
/// a login in what they count may be missed, or its outcome unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LimitStats {
    /// Flows evicted (`--max-flows`) while being inspected: a login in progress there is lost.
    /// (`flows_evicted` counts every eviction, of flows without data and settled ones too.)
    pub inspected_flows_evicted: u64,
    /// Times the global buffer budget (`--max-buffered-total`) made a flow drop its partial lines
    /// and retransmission-compare tails.
    pub buffer_sheds: u64,
    /// Times the global buffer budget made a flow skip ahead past bytes it held out of order.
    pub buffer_skips: u64,
    /// Bytes dropped because they lay too far ahead of their stream (injected or stray data).
    pub out_of_window_bytes: u64,
    /// Lines longer than the line limit, dropped.
    pub overlong_lines: u64,
    /// Commands awaiting a reply dropped past the per-session limit.
    pub pending_dropped: u64,
    /// Sessions let go at `--inspection-depth` without a login.
    pub depth_exceeded: u64,
}

/// Events written so far, by event type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    pub cleartext_credential: u64,
    pub weak_credential: u64,
    pub anomaly: u64,
}

/// Capture counters of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceStats {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub queue_drops: u64,
    /// Times the capture failed (interface down, device gone) and was retried.
    pub capture_errors: u64,
    /// False while a failed capture is being reopened: the interface is blind (a deleted one
    /// not back yet, or one that a run which dropped root with `--user` cannot reopen).
    pub capturing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A total past `u64::MAX` stays there: wrapped, it would read as nothing lost.
    #[test]
    fn sums_hold_at_the_maximum() {
        assert_eq!(saturating_sum([1, 2, 3]), 6);
        assert_eq!(saturating_sum([u64::MAX - 1, 2, 5]), u64::MAX);
        assert_eq!(saturating_sum([]), 0);
    }

    #[test]
    fn a_loss_warns_at_first_then_each_time_it_doubled() {
        let mut last = 0;
        let warned: Vec<u64> = [0, 0, 3, 4, 5, 6, 11, 12, 12, 30]
            .into_iter()
            .filter(|&loss| {
                let warn = worth_warning_again(loss, last);
                if warn {
                    last = loss;
                }
                warn
            })
            .collect();
        assert_eq!(warned, [3, 6, 12, 30]);
    }
}
