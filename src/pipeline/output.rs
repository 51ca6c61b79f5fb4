//! The output side: the one place that owns the sinks, counts what was written and builds the
//! closing summary of servers. Live, it runs on a thread of its own; a threaded file run has its
//! first worker thread write, putting the workers' events back into the single-engine order.

use std::collections::{HashMap, VecDeque};
use std::io;

use crossbeam_channel::Receiver;

use crate::alert::{worth_warning_again, AlertCounts, Event, EventType, StatsEvent};
use crate::capture::Timestamp;
use crate::output::{ServerReport, ServerSummary, Sink, Unread};
use crate::posture::{PostureTracker, ServerPosture};

use super::dispatch::{Order, END_OF_INPUT};
use super::stats::{self, SharedStats};
use super::RunError;

/// What the workers and the control thread send the writer.
pub enum OutputMsg {
    /// Events of one batch, and the worker's progress: it will send nothing more below
    /// `done_below` (a frame index).
    Events { worker: usize, events: Vec<(Order, Event)>, done_below: u64 },
    /// A stats report to log, and to write as an event when `write` (alert counts are filled in).
    Stats { stats: Box<StatsEvent>, write: bool },
    /// SIGHUP: reopen output files.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Reopen,
    /// Live: time goes on (closes dedup windows even when no event arrives).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Tick(Timestamp),
    /// Live, every `--report-interval`: the server inventory and every posture so far.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Inventory,
}

/// A sink plus what the run needs to know of what went into it: the alert counts, the server
/// summary and the servers' TLS posture.
pub struct Output<'s> {
    sink: &'s mut dyn Sink,
    summary: ServerSummary,
    posture: PostureTracker,
    /// Live: report a server's posture when it is first known or changes (files report them all
    /// at the end).
    posture_changes: bool,
    pub counts: AlertCounts,
    /// What the memory bounds had let go at the last warning about it (0: no warning yet).
    loss_warned: u64,
    /// Packets the capture had lost at the last warning about it (0: no warning yet).
    capture_loss_warned: u64,
    /// Live: inventory records not written yet. They go out as fast as the sinks have room (see
    /// [`Sink::room`]): an inventory of tens of thousands of servers at once would overflow a
    /// file or syslog queue, and drop alerts with it.
    inventory_backlog: VecDeque<InventoryRecord>,
}

enum InventoryRecord {
    Server(ServerReport),
    Posture(ServerPosture),
}

impl<'s> Output<'s> {
    pub fn new(sink: &'s mut dyn Sink, posture_changes: bool) -> Self {
        Output {
            sink,
            summary: ServerSummary::default(),
            posture: PostureTracker::default(),
            posture_changes,
            counts: AlertCounts::default(),
            loss_warned: 0,
            capture_loss_warned: 0,
            inventory_backlog: VecDeque::new(),
        }
    }

    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        let findings = self.posture.observe(event, self.posture_changes);
        if !matches!(event, Event::Session(_)) {
            self.write(event)?;
        }
        for anomaly in &findings.anomalies {
            self.write(anomaly)?;
        }
        for posture in &findings.changed {
            self.sink.posture(posture)?;
        }
        self.still_read()
    }

    /// A closed pipe when no output is read any more (standard output's reader went away and
    /// nothing else is left), so that the run stops.
    fn still_read(&self) -> io::Result<()> {
        if self.sink.is_open() {
            Ok(())
        } else {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    /// What a failed write means for the run: a closed pipe (standard output's reader gone, and
    /// no other output left open) stops it early, with the cleartext credentials found by then
    /// (the one being written counted; the files that failed are counted by the reading side,
    /// which fills them in); any other failure is an output error.
    pub fn stopped(&self, error: io::Error) -> RunError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            RunError::OutputClosed { cleartext_alerts: self.counts.cleartext_credential, unread_files: 0 }
        } else {
            RunError::Output(error)
        }
    }

    /// Counts and writes one event (session records, the posture's raw material, are never written).
    fn write(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Credential(alert) if alert.event_type == EventType::CleartextCredential => {
                self.counts.cleartext_credential += 1
            }
            Event::Credential(_) => self.counts.weak_credential += 1,
            Event::Anomaly(_) => self.counts.anomaly += 1,
            Event::Stats(_) | Event::Session(_) => {}
        }
        self.summary.add(event);
        self.sink.event(event)
    }

    /// Logs a stats report with this output's alert counts and the sinks' counters, and writes
    /// it when asked; returns it completed.
    pub fn stats(&mut self, mut stats: StatsEvent, write: bool) -> io::Result<StatsEvent> {
        stats.alerts = self.counts;
        stats.outputs.clear();
        self.sink.output_stats(&mut stats.outputs);
        stats::log(&stats);
        stats::warn_if_nothing_was_ip(&stats);
        let loss = stats::bounds_loss(&stats);
        if worth_warning_again(loss, self.loss_warned) {
            self.loss_warned = loss;
            stats::warn_bounds_let_data_go(&stats);
        }
        let capture_loss = stats::capture_loss(&stats);
        if worth_warning_again(capture_loss, self.capture_loss_warned) {
            self.capture_loss_warned = capture_loss;
            stats::warn_capture_lost_packets(&stats);
        }
        if write {
            self.sink.event(&Event::Stats(Box::new(stats.clone())))?;
        }
        Ok(stats)
    }

    /// The inventory so far: one `server_report` per exposed server, one posture per server, out
    /// as the sinks have room. A new one replaces what the last one still had to write.
    fn inventory(&mut self) -> io::Result<()> {
        if !self.inventory_backlog.is_empty() {
            tracing::warn!(
                left = self.inventory_backlog.len(),
                "the last server inventory was not written out in full before the next one (an output too slow or \
                 down); the next one replaces it"
            );
        }
        let (reports, postures) = self.reports_and_postures();
        self.inventory_backlog = (reports.into_iter().map(InventoryRecord::Server))
            .chain(postures.into_iter().map(InventoryRecord::Posture))
            .collect();
        self.write_inventory()
    }

    /// The exposed servers' reports and every server's posture. A report learns from the
    /// posture what its own alerts did not show: clients that log in with `USER`/`PASS` never ask
    /// for the capabilities, while other sessions to the same server did (see
    /// [`ServerReport::complete_from`]), and a report and a posture of one run must not disagree.
    fn reports_and_postures(&self) -> (Vec<ServerReport>, Vec<ServerPosture>) {
        let postures = self.posture.snapshot();
        let by_server: HashMap<_, &ServerPosture> =
            postures.iter().map(|posture| ((posture.app_proto, posture.ip, posture.port), posture)).collect();
        let mut reports = self.summary.reports();
        for report in &mut reports {
            if let Some(posture) = by_server.get(&(report.app_proto, report.ip, report.port)) {
                report.complete_from(posture);
            }
        }
        (reports, postures)
    }

    /// Writes as much of the inventory as the sinks have room for.
    fn write_inventory(&mut self) -> io::Result<()> {
        let room = self.sink.room().min(self.inventory_backlog.len());
        for record in self.inventory_backlog.drain(..room) {
            match record {
                InventoryRecord::Server(report) => self.sink.server_report(&report)?,
                InventoryRecord::Posture(posture) => self.sink.posture(&posture)?,
            }
        }
        Ok(())
    }

    /// End of the run: what the sinks held back, every server's posture, the summary of servers
    /// (with the errors of the inputs that could not be read to their end), and everything
    /// flushed.
    pub fn finish(&mut self, unread: &Unread) -> io::Result<()> {
        if self.summary.untracked_alerts() > 0 || self.posture.untracked_events() > 0 {
            tracing::warn!(
                summary_alerts = self.summary.untracked_alerts(),
                posture_events = self.posture.untracked_events(),
                "events of servers past the trackers' limit were left out of the server summary and posture"
            );
        }
        // The closing postures and summary replace what an inventory still had to write.
        self.inventory_backlog.clear();
        self.sink.end_of_events()?;
        let (reports, postures) = self.reports_and_postures();
        for posture in &postures {
            self.sink.posture(posture)?;
        }
        self.sink.finish(&reports, unread)?;
        self.sink.flush()?;
        self.still_read()
    }
}

/// How the writer writes.
#[derive(Clone, Copy, Debug)]
pub struct OutputMode {
    pub workers: usize,
    /// Files: restore the single-engine order (deterministic output whatever the thread count).
    /// Live: write events as they come.
    pub ordered: bool,
    /// Live: flush the sink whenever nothing is waiting, so alerts appear at once.
    pub flush_when_idle: bool,
}

/// Holds events until every worker has moved past their frame.
struct Reorder {
    /// Few at a time (a worker is at most a few batches behind another): a vector sorted when
    /// some are due costs less than a tree kept sorted.
    pending: Vec<(Order, Event)>,
    done_below: Vec<u64>,
}

impl Reorder {
    fn new(workers: usize) -> Self {
        Reorder { pending: Vec::new(), done_below: vec![0; workers] }
    }

    /// Takes a worker's events; returns those no later event can precede any more, in order.
    fn add(
        &mut self,
        worker: usize,
        events: Vec<(Order, Event)>,
        done_below: u64,
    ) -> std::vec::Drain<'_, (Order, Event)> {
        self.pending.extend(events);
        if let Some(progress) = self.done_below.get_mut(worker) {
            *progress = (*progress).max(done_below);
        }
        let safe_below = self.done_below.iter().copied().min().unwrap_or(END_OF_INPUT);
        let first_held =
            Order { index: safe_below, phase: super::dispatch::Phase::Expiry, flow_id: 0, worker: 0, serial: 0 };
        let due = |order: &Order| safe_below == END_OF_INPUT || *order < first_held;
        let ready = if self.pending.iter().any(|(order, _)| due(order)) {
            self.pending.sort_unstable_by_key(|(order, _)| *order);
            self.pending.partition_point(|(order, _)| due(order))
        } else {
            0
        };
        self.pending.drain(..ready)
    }

    /// Everything left, in order (all workers are done).
    fn drain(&mut self) -> std::vec::Drain<'_, (Order, Event)> {
        self.pending.sort_unstable_by_key(|(order, _)| *order);
        self.pending.drain(..)
    }
}

/// An [`Output`] fed by the workers' messages: in the single-engine order (file runs) or as they
/// come (live).
pub struct Writer<'s> {
    pub output: Output<'s>,
    /// File runs: holds each worker's events until every worker is past them.
    reorder: Option<Reorder>,
    shared: &'s SharedStats,
}

impl<'s> Writer<'s> {
    pub fn new(sink: &'s mut dyn Sink, mode: OutputMode, shared: &'s SharedStats) -> Self {
        Writer {
            output: Output::new(sink, !mode.ordered),
            reorder: mode.ordered.then(|| Reorder::new(mode.workers)),
            shared,
        }
    }

    /// Acts on one message: writes what it makes ready, logs or writes stats, reopens, ticks.
    pub fn take(&mut self, message: OutputMsg) -> Result<(), RunError> {
        self.act_on(message).map_err(|error| self.output.stopped(error))
    }

    fn act_on(&mut self, message: OutputMsg) -> io::Result<()> {
        match message {
            OutputMsg::Events { worker, events, done_below } => {
                match &mut self.reorder {
                    Some(reorder) => {
                        for (_, event) in reorder.add(worker, events, done_below) {
                            self.output.event(&event)?;
                        }
                    }
                    None => {
                        for (_, event) in events {
                            self.output.event(&event)?;
                        }
                    }
                }
                self.shared.publish_alerts(&self.output.counts);
            }
            OutputMsg::Stats { stats, write } => drop(self.output.stats(*stats, write)?),
            OutputMsg::Reopen => {
                tracing::info!("reopening outputs");
                self.output.sink.reopen()?;
            }
            OutputMsg::Tick(now) => {
                self.output.sink.tick(now)?;
                self.output.write_inventory()?;
            }
            OutputMsg::Inventory => self.output.inventory()?,
        }
        Ok(())
    }

    /// Every sender is gone: what is still held, then the closing summary (with the errors of
    /// the inputs that could not be read to their end). Returns the counts of what was written.
    pub fn finish(mut self, unread: &Unread) -> Result<AlertCounts, RunError> {
        self.drain_and_finish(unread).map_err(|error| self.output.stopped(error))?;
        Ok(self.output.counts)
    }

    fn drain_and_finish(&mut self, unread: &Unread) -> io::Result<()> {
        if let Some(reorder) = &mut self.reorder {
            for (_, event) in reorder.drain() {
                self.output.event(&event)?;
            }
        }
        self.output.finish(unread)
    }
}

/// The output thread: writes until every sender is gone, then the summary. Returns the counts of
/// what it wrote.
pub fn run(
    receiver: Receiver<OutputMsg>,
    sink: &mut dyn Sink,
    mode: OutputMode,
    shared: &SharedStats,
) -> Result<AlertCounts, RunError> {
    let mut writer = Writer::new(sink, mode, shared);
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(_) => {
                if mode.flush_when_idle {
                    writer.output.sink.flush().map_err(|error| writer.output.stopped(error))?;
                }
                match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            }
        };
        writer.take(message)?;
    }
    // Interfaces have no files to fail.
    writer.finish(&Unread::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::dispatch::Phase;

    fn stats_event(n: u64) -> Event {
        Event::Stats(Box::new(StatsEvent { packets: n, ..StatsEvent::default() }))
    }

    fn order(index: u64, phase: Phase, flow_id: u64, worker: usize, serial: u64) -> Order {
        Order { index, phase, flow_id, worker, serial }
    }

    fn packets(events: impl Iterator<Item = (Order, Event)>) -> Vec<u64> {
        events
            .map(|(_, event)| match event {
                Event::Stats(stats) => stats.packets,
                _ => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn events_wait_until_every_worker_has_passed_their_frame() {
        let mut reorder = Reorder::new(2);
        let first = packets(reorder.add(1, vec![(order(5, Phase::Packet, 9, 1, 0), stats_event(5))], 6));
        assert!(first.is_empty(), "worker 0 may still send events of frames below 6");
        let second = reorder.add(
            0,
            vec![
                (order(5, Phase::Expiry, 3, 0, 1), stats_event(4)),
                (order(7, Phase::Packet, 1, 0, 2), stats_event(7)),
            ],
            8,
        );
        assert_eq!(packets(second), [4, 5], "expiry before the frame's own events; frame 7 is held");
        let end = reorder.add(1, vec![(order(END_OF_INPUT, Phase::Expiry, 2, 1, 3), stats_event(99))], END_OF_INPUT);
        assert_eq!(packets(end), [7]);
        let last = reorder.add(0, vec![(order(END_OF_INPUT, Phase::Expiry, 1, 0, 4), stats_event(98))], END_OF_INPUT);
        assert_eq!(packets(last), [98, 99], "once every worker is done, everything goes, by flow");
        assert_eq!(reorder.drain().len(), 0);
    }

    /// Packets the capture lost are warned about, again each time their count doubled: a sensor
    /// that drops must not look quiet.
    #[test]
    fn capture_losses_are_warned_about_each_time_they_doubled() {
        let log = crate::output::shared_text::SharedText::default();
        let mut sink = Probe::default();
        let mut output = Output::new(&mut sink, true);
        log.logging(|| {
            for (kernel_drops, queue_drops) in [(0, 0), (3, 2), (5, 3), (8, 3), (20, 0)] {
                output.stats(StatsEvent { kernel_drops, queue_drops, ..StatsEvent::default() }, false).unwrap();
            }
        });
        let log = log.text();
        let warned: Vec<&str> = log.lines().filter(|line| line.contains("the capture lost packets")).collect();
        assert_eq!(warned.len(), 2, "at 5 and at 20 (11 is not twice 5): {log}");
        assert!(warned.iter().all(|line| line.contains("WARN")), "{log}");
    }

    /// Counts what the output thread asks of its sink, and logs the records in order.
    #[derive(Default)]
    struct Probe {
        log: Vec<&'static str>,
        events: usize,
        reopened: usize,
        flushed: usize,
        finished: bool,
        reports: usize,
        postures: usize,
        ticks: usize,
        /// What [`Sink::room`] says (no limit when `None`).
        room: Option<usize>,
    }

    impl Sink for Probe {
        fn event(&mut self, _: &Event) -> io::Result<()> {
            self.events += 1;
            self.log.push("event");
            Ok(())
        }
        fn repeat(&mut self, _: &crate::output::RepeatSummary) -> io::Result<()> {
            self.log.push("repeat");
            Ok(())
        }
        fn finish(&mut self, _: &[crate::output::ServerReport], _: &crate::output::Unread) -> io::Result<()> {
            self.finished = true;
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushed += 1;
            Ok(())
        }
        fn reopen(&mut self) -> io::Result<()> {
            self.reopened += 1;
            Ok(())
        }
        fn server_report(&mut self, _: &crate::output::ServerReport) -> io::Result<()> {
            self.reports += 1;
            Ok(())
        }
        fn posture(&mut self, _: &crate::posture::ServerPosture) -> io::Result<()> {
            self.postures += 1;
            self.log.push("posture");
            Ok(())
        }
        fn tick(&mut self, _: Timestamp) -> io::Result<()> {
            self.ticks += 1;
            Ok(())
        }
        fn room(&self) -> usize {
            self.room.unwrap_or(usize::MAX)
        }
    }

    /// Three exposed servers, then `messages`; the sink has room for four records at a time.
    /// Returns the server reports and the postures written.
    fn inventory_with_room_for_four(messages: Vec<OutputMsg>) -> (usize, usize) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        for (n, serial) in (1..=3u8).zip(0..) {
            let mut alert = crate::output::text::tests::sample_alert();
            if let Event::Credential(alert) = &mut alert {
                alert.flow.dest_ip = std::net::IpAddr::from([192, 0, 2, n]);
            }
            let events = vec![(order(serial, Phase::Packet, serial, 0, serial), alert)];
            sender.send(OutputMsg::Events { worker: 0, events, done_below: serial + 1 }).unwrap();
        }
        for message in messages {
            sender.send(message).unwrap();
        }
        drop(sender);
        let mut probe = Probe { room: Some(4), ..Probe::default() };
        let mode = OutputMode { workers: 1, ordered: false, flush_when_idle: false };
        run(receiver, &mut probe, mode, &SharedStats::new([], 1)).unwrap();
        (probe.reports, probe.postures)
    }

    #[test]
    fn live_inventories_go_out_as_the_sinks_have_room() {
        let closing = 3;
        // Room for three reports and one posture, then the run ends: the rest is replaced by the
        // closing postures.
        assert_eq!(inventory_with_room_for_four(vec![OutputMsg::Inventory]), (3, 1 + closing));
        // A tick later, the other two postures.
        let tick = OutputMsg::Tick(Timestamp(1));
        assert_eq!(inventory_with_room_for_four(vec![OutputMsg::Inventory, tick]), (3, 3 + closing));
        // A new inventory replaces what the last one still had to write.
        let messages = vec![OutputMsg::Inventory, OutputMsg::Inventory, OutputMsg::Tick(Timestamp(1))];
        assert_eq!(inventory_with_room_for_four(messages), (3 + 3, 1 + 3 + closing));
    }

    #[test]
    fn live_inventories_come_on_request_and_time_reaches_the_sinks() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let alert = crate::output::text::tests::sample_alert();
        sender
            .send(OutputMsg::Events {
                worker: 0,
                events: vec![(order(1, Phase::Packet, 1, 0, 0), alert)],
                done_below: 2,
            })
            .unwrap();
        sender.send(OutputMsg::Inventory).unwrap();
        sender.send(OutputMsg::Tick(Timestamp(5))).unwrap();
        sender.send(OutputMsg::Inventory).unwrap();
        drop(sender);
        let mut probe = Probe::default();
        run(
            receiver,
            &mut probe,
            OutputMode { workers: 1, ordered: false, flush_when_idle: true },
            &SharedStats::new([], 1),
        )
        .unwrap();
        assert_eq!(probe.reports, 2, "the exposed server, once per inventory");
        assert_eq!(probe.ticks, 1);
        assert!(probe.finished);
    }

    #[test]
    fn live_inventories_leave_dedup_windows_open_and_the_repeats_precede_the_closing_postures() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let alert = crate::output::text::tests::sample_alert();
        let events = |serial| vec![(order(serial, Phase::Packet, 1, 0, serial), alert.clone())];
        sender.send(OutputMsg::Events { worker: 0, events: events(1), done_below: 2 }).unwrap();
        sender.send(OutputMsg::Inventory).unwrap();
        sender.send(OutputMsg::Events { worker: 0, events: events(2), done_below: 3 }).unwrap();
        drop(sender);
        let mut dedup = crate::output::Dedup::new(Probe::default(), std::time::Duration::from_secs(3600));
        let mode = OutputMode { workers: 1, ordered: false, flush_when_idle: false };
        run(receiver, &mut dedup, mode, &SharedStats::new([], 1)).unwrap();
        let log = dedup.into_inner().log;
        assert_eq!(log, ["event", "posture", "repeat", "posture"], "one alert, its repeat before the closing posture");
    }

    #[test]
    fn the_output_thread_reopens_on_request_writes_stats_and_finishes() {
        let (sender, receiver) = crossbeam_channel::unbounded();
        sender.send(OutputMsg::Reopen).unwrap();
        let events = vec![(order(1, Phase::Packet, 1, 0, 0), stats_event(1))];
        sender.send(OutputMsg::Events { worker: 0, events, done_below: 2 }).unwrap();
        sender.send(OutputMsg::Stats { stats: Box::new(StatsEvent::default()), write: true }).unwrap();
        sender.send(OutputMsg::Stats { stats: Box::new(StatsEvent::default()), write: false }).unwrap();
        drop(sender);
        let mut probe = Probe::default();
        let mode = OutputMode { workers: 1, ordered: false, flush_when_idle: true };
        run(receiver, &mut probe, mode, &SharedStats::new([], 1)).unwrap();
        assert_eq!(probe.reopened, 1);
        assert_eq!(probe.events, 2, "one event, one stats report written, one only logged");
        assert!(probe.finished);
        assert!(probe.flushed >= 1);
    }
}
