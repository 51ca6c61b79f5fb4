//! Counters shared between the pipeline's threads, and their sum as a `stats` event.
//!
//! Each thread publishes a snapshot of its own counters now and then (a capture thread at every
//! tick, a worker after every batch) into its own slot; whoever reports reads all slots. Nothing
//! is shared per packet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::alert::{saturating_sum, AlertCounts, InterfaceStats, LimitStats, StatsEvent, SCHEMA_VERSION};
use crate::capture::Timestamp;
use crate::decode::DecodeStats;
use crate::flow::{FlowStats, ReassemblyStats};
use crate::proto::ProtoStats;

use super::EngineStats;

/// Counters of one capture source (an interface, or the files of a `read`).
#[derive(Clone, Debug, Default)]
pub struct CaptureCounters {
    pub name: String,
    pub frames: u64,
    pub bytes: u64,
    pub decode: DecodeStats,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    pub queue_drops: u64,
    pub capture_errors: u64,
    /// False while a failed capture is being reopened.
    pub capturing: bool,
    /// Latest packet time seen (meaningless while `frames` is 0).
    pub last_ts: Timestamp,
}

/// One slot per capture source and per worker.
#[derive(Debug)]
pub struct SharedStats {
    captures: Vec<Mutex<CaptureCounters>>,
    workers: Vec<Mutex<EngineStats>>,
    /// Credential alerts written so far (cleartext and weak), for the progress bar.
    credentials_written: AtomicU64,
}

fn lock<T>(slot: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked left counters that are still worth reporting.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedStats {
    pub fn new(capture_names: impl IntoIterator<Item = String>, workers: usize) -> Self {
        SharedStats {
            captures: capture_names
                .into_iter()
                .map(|name| Mutex::new(CaptureCounters { name, capturing: true, ..CaptureCounters::default() }))
                .collect(),
            workers: (0..workers).map(|_| Mutex::new(EngineStats::default())).collect(),
            credentials_written: AtomicU64::new(0),
        }
    }

    /// The output stage tells how many credential alerts it has written.
    pub fn publish_alerts(&self, counts: &AlertCounts) {
        let written = counts.cleartext_credential.saturating_add(counts.weak_credential);
        self.credentials_written.store(written, Ordering::Relaxed);
    }

    pub fn credentials_written(&self) -> u64 {
        self.credentials_written.load(Ordering::Relaxed)
    }

    pub fn publish_capture(&self, source: usize, counters: &CaptureCounters) {
        if let Some(slot) = self.captures.get(source) {
            lock(slot).clone_from(counters);
        }
    }

    pub fn publish_worker(&self, worker: usize, stats: EngineStats) {
        if let Some(slot) = self.workers.get(worker) {
            *lock(slot) = stats;
        }
    }

    /// Every capture source's counters.
    pub fn captures(&self) -> Vec<CaptureCounters> {
        self.captures.iter().map(|slot| lock(slot).clone()).collect()
    }

    /// The workers' counters summed.
    pub fn engine(&self) -> EngineStats {
        let mut total = EngineStats::default();
        for slot in &self.workers {
            add_engine(&mut total, &lock(slot));
        }
        total
    }

    /// The run so far as a `stats` event (alert counts are filled in by the output thread, which
    /// alone knows what it wrote).
    pub fn event(&self, timestamp: Timestamp, is_final: bool, per_interface: bool) -> StatsEvent {
        let captures = self.captures();
        let engine = self.engine();
        let sum = |field: fn(&CaptureCounters) -> u64| captures.iter().map(field).sum::<u64>();
        let mut decode = DecodeStats::default();
        for capture in &captures {
            add_decode(&mut decode, &capture.decode);
        }
        StatsEvent {
            timestamp: timestamp.rfc3339_micros(),
            event_type: "stats",
            is_final,
            packets: sum(|c| c.frames),
            bytes: sum(|c| c.bytes),
            tcp_segments: sum(|c| c.decode.tcp),
            kernel_drops: sum(|c| c.kernel_drops),
            interface_drops: sum(|c| c.interface_drops),
            queue_drops: sum(|c| c.queue_drops),
            flows_active: engine.active_flows as u64,
            flows_created: engine.flow.flows_created,
            flows_evicted: engine.flow.flows_evicted,
            flows_timed_out: engine.flow.flows_timed_out,
            reassembly_bytes: engine.buffered_bytes as u64,
            gaps: engine.flow.reassembly.gaps,
            segments_waited: engine.flow.segments_waited,
            limits: LimitStats {
                inspected_flows_evicted: engine.flow.inspected_evicted,
                buffer_sheds: engine.flow.memcap_sheds,
                buffer_skips: engine.flow.memcap_skips,
                out_of_window_bytes: engine.flow.reassembly.dropped_out_of_window,
                overlong_lines: engine.proto.overlong_lines,
                pending_dropped: engine.proto.pending_dropped,
                depth_exceeded: engine.proto.depth_exceeded,
            },
            decode,
            alerts: AlertCounts::default(),
            interfaces: if per_interface {
                captures
                    .iter()
                    .map(|c| InterfaceStats {
                        name: c.name.clone(),
                        packets: c.frames,
                        bytes: c.bytes,
                        kernel_drops: c.kernel_drops,
                        interface_drops: c.interface_drops,
                        queue_drops: c.queue_drops,
                        capture_errors: c.capture_errors,
                        capturing: c.capturing,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            outputs: Vec::new(),
            schema_version: SCHEMA_VERSION,
        }
    }
}

/// Adds `more` to `total`. Fields are listed exhaustively (no `..`) so that a new counter cannot
/// be forgotten here: the code stops compiling instead.
pub fn add_engine(total: &mut EngineStats, more: &EngineStats) {
    let EngineStats { flow, proto, active_flows, buffered_bytes } = more;
    add_flow(&mut total.flow, flow);
    add_proto(&mut total.proto, proto);
    total.active_flows += active_flows;
    total.buffered_bytes += buffered_bytes;
}

fn add_flow(total: &mut FlowStats, more: &FlowStats) {
    let FlowStats {
        flows_created,
        flows_closed,
        flows_timed_out,
        flows_evicted,
        inspected_evicted,
        memcap_skips,
        memcap_sheds,
        packets_bypassed,
        segments_waited,
        reassembly,
    } = more;
    total.flows_created += flows_created;
    total.flows_closed += flows_closed;
    total.flows_timed_out += flows_timed_out;
    total.flows_evicted += flows_evicted;
    total.inspected_evicted += inspected_evicted;
    total.memcap_skips += memcap_skips;
    total.memcap_sheds += memcap_sheds;
    total.packets_bypassed += packets_bypassed;
    total.segments_waited += segments_waited;
    add_reassembly(&mut total.reassembly, reassembly);
}

fn add_reassembly(total: &mut ReassemblyStats, more: &ReassemblyStats) {
    let ReassemblyStats {
        segments,
        bytes_delivered,
        retransmissions,
        overlaps_differing,
        gaps,
        gap_bytes,
        dropped_out_of_window,
        before_start,
    } = more;
    total.segments += segments;
    total.bytes_delivered += bytes_delivered;
    total.retransmissions += retransmissions;
    total.overlaps_differing += overlaps_differing;
    total.gaps += gaps;
    total.gap_bytes += gap_bytes;
    total.dropped_out_of_window += dropped_out_of_window;
    total.before_start += before_start;
}

fn add_proto(total: &mut ProtoStats, more: &ProtoStats) {
    let ProtoStats {
        sessions_pop3,
        sessions_imap,
        sessions_smtp,
        sessions_managesieve,
        not_mail,
        tls_flows,
        starttls_upgrades,
        authenticated,
        depth_exceeded,
        overlong_lines,
        malformed_sasl,
        pending_dropped,
        gaps,
    } = more;
    total.sessions_pop3 += sessions_pop3;
    total.sessions_imap += sessions_imap;
    total.sessions_smtp += sessions_smtp;
    total.sessions_managesieve += sessions_managesieve;
    total.not_mail += not_mail;
    total.tls_flows += tls_flows;
    total.starttls_upgrades += starttls_upgrades;
    total.authenticated += authenticated;
    total.depth_exceeded += depth_exceeded;
    total.overlong_lines += overlong_lines;
    total.malformed_sasl += malformed_sasl;
    total.pending_dropped += pending_dropped;
    total.gaps += gaps;
}

/// Adds `more` to `total` (several interfaces each decode their own frames).
pub fn add_decode(total: &mut DecodeStats, more: &DecodeStats) {
    let DecodeStats {
        tcp,
        tunnelled_tcp,
        unsupported_link_type,
        not_ip,
        not_tcp,
        truncated,
        malformed,
        ip_fragments,
        tunnel_too_deep,
        encrypted,
        failed_frame_check,
        fragments_reassembled,
        fragments_evicted,
        fragments_timed_out,
        fragment_overlaps_differing,
    } = more;
    total.tcp += tcp;
    total.tunnelled_tcp += tunnelled_tcp;
    total.unsupported_link_type += unsupported_link_type;
    total.not_ip += not_ip;
    total.not_tcp += not_tcp;
    total.truncated += truncated;
    total.malformed += malformed;
    total.ip_fragments += ip_fragments;
    total.tunnel_too_deep += tunnel_too_deep;
    total.encrypted += encrypted;
    total.failed_frame_check += failed_frame_check;
    total.fragments_reassembled += fragments_reassembled;
    total.fragments_evicted += fragments_evicted;
    total.fragments_timed_out += fragments_timed_out;
    total.fragment_overlaps_differing += fragment_overlaps_differing;
}

/// What the memory bounds let go that may have held logins: flows evicted while being inspected,
/// held bytes shed or skipped for the global budget, fragmented datagrams dropped. (Flows evicted
/// before they carried data or after they were settled lose nothing; a line past its limit, or a
/// session let go at the inspection depth, is the parser's bound, met by ordinary traffic.)
pub fn bounds_loss(stats: &StatsEvent) -> u64 {
    saturating_sum([
        stats.limits.inspected_flows_evicted,
        stats.limits.buffer_sheds,
        stats.limits.buffer_skips,
        stats.decode.fragments_evicted,
    ])
}

/// Says that the memory bounds let data go, and which bound to raise: a run that met them would
/// otherwise read as complete (a flood meets them by design: the bound holds, the warning says
/// what it cost).
pub fn warn_bounds_let_data_go(stats: &StatsEvent) {
    tracing::warn!(
        inspected_flows_evicted = stats.limits.inspected_flows_evicted,
        buffer_sheds = stats.limits.buffer_sheds,
        buffer_skips = stats.limits.buffer_skips,
        fragments_evicted = stats.decode.fragments_evicted,
        "memory bounds let data go: logins in it may be missed or their outcome unknown (raise --max-flows \
         for inspected_flows_evicted, --max-buffered-total for buffer_sheds and buffer_skips; the stats event \
         counts them)"
    );
}

/// Packets a live capture lost before they were analysed: dropped by the kernel (its buffer
/// full), by the interface, or at a worker's full queue.
pub fn capture_loss(stats: &StatsEvent) -> u64 {
    saturating_sum([stats.kernel_drops, stats.interface_drops, stats.queue_drops])
}

/// Says that the capture lost packets, and what to raise: a sensor that drops is blind to the
/// logins in what it dropped, and the counters alone (an info line) would leave it quiet.
pub fn warn_capture_lost_packets(stats: &StatsEvent) {
    tracing::warn!(
        kernel_drops = stats.kernel_drops,
        interface_drops = stats.interface_drops,
        queue_drops = stats.queue_drops,
        packets = stats.packets,
        "the capture lost packets: logins in them are missed (kernel_drops: raise --buffer-size or narrow the \
         filter; interface_drops: the NIC's ring; queue_drops: more --threads or --queue-size; see \
         docs/deployment.md)"
    );
}

/// Says, at the end of a run, that most frames were not IP and none held TCP: the capture may
/// carry its IP in an encapsulation credwatch does not read (a vendor tag, a tunnel not peeled),
/// which would otherwise end in a silent all-clear.
pub fn warn_if_nothing_was_ip(stats: &StatsEvent) {
    if stats.is_final && stats.tcp_segments == 0 && stats.decode.not_ip > stats.packets / 2 {
        tracing::warn!(
            frames = stats.packets,
            not_ip = stats.decode.not_ip,
            "no TCP segment was found, and most frames were not IP: they may carry it in an encapsulation \
             credwatch does not read (Wireshark shows what they are)"
        );
    }
}

/// The tracing line every stats report also goes to (stderr, journald): the counters of the
/// `stats` event, the decode counters summed as `undecoded` (frames that may have held TCP but
/// could not be read), the limits each by name.
pub fn log(stats: &StatsEvent) {
    tracing::info!(
        final_report = stats.is_final,
        packets = stats.packets,
        bytes = stats.bytes,
        tcp = stats.tcp_segments,
        kernel_drops = stats.kernel_drops,
        interface_drops = stats.interface_drops,
        queue_drops = stats.queue_drops,
        flows_active = stats.flows_active,
        flows_evicted = stats.flows_evicted,
        reassembly_bytes = stats.reassembly_bytes,
        gaps = stats.gaps,
        segments_waited = stats.segments_waited,
        undecoded = stats.decode.unreadable(),
        inspected_flows_evicted = stats.limits.inspected_flows_evicted,
        buffer_sheds = stats.limits.buffer_sheds,
        buffer_skips = stats.limits.buffer_skips,
        out_of_window_bytes = stats.limits.out_of_window_bytes,
        overlong_lines = stats.limits.overlong_lines,
        pending_dropped = stats.limits.pending_dropped,
        depth_exceeded = stats.limits.depth_exceeded,
        cleartext = stats.alerts.cleartext_credential,
        weak = stats.alerts.weak_credential,
        anomalies = stats.alerts.anomaly,
        outputs_undelivered = stats.undelivered(),
        "stats"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_sums_every_source_and_worker() {
        let shared = SharedStats::new(["eth0".to_string(), "eth1".to_string()], 2);
        let capture = |frames, drops| CaptureCounters {
            frames,
            bytes: frames * 100,
            kernel_drops: drops,
            queue_drops: 1,
            decode: DecodeStats { malformed: drops, fragments_reassembled: 1, ..DecodeStats::default() },
            ..CaptureCounters::default()
        };
        shared.publish_capture(0, &CaptureCounters { name: "eth0".into(), ..capture(10, 2) });
        shared.publish_capture(1, &CaptureCounters { name: "eth1".into(), ..capture(5, 3) });
        let mut worker = EngineStats { active_flows: 3, buffered_bytes: 7, ..EngineStats::default() };
        worker.flow.flows_evicted = 2;
        worker.flow.reassembly.gaps = 4;
        worker.flow.memcap_sheds = 5;
        worker.flow.reassembly.dropped_out_of_window = 6;
        worker.proto.pending_dropped = 1;
        shared.publish_worker(0, worker.clone());
        shared.publish_worker(1, worker);
        let event = shared.event(Timestamp::from_secs_nanos(1, 0), true, true);
        assert_eq!((event.packets, event.bytes, event.kernel_drops, event.queue_drops), (15, 1500, 5, 2));
        assert_eq!((event.flows_active, event.flows_evicted, event.gaps, event.reassembly_bytes), (6, 4, 8, 14));
        assert_eq!(event.interfaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["eth0", "eth1"]);
        let limits = event.limits;
        assert_eq!((limits.buffer_sheds, limits.out_of_window_bytes, limits.pending_dropped), (10, 12, 2));
        assert_eq!(bounds_loss(&event), 10, "sheds lose data; evictions of settled flows do not");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event_type"], "stats");
        assert_eq!(json["final"], true);
        assert_eq!(json["alerts"]["cleartext_credential"], 0);
        assert_eq!(
            (json["decode"]["malformed"].as_u64(), json["decode"]["fragments_reassembled"].as_u64()),
            (Some(5), Some(2))
        );
        assert!(shared.event(Timestamp(0), false, false).interfaces.is_empty());
    }
}
