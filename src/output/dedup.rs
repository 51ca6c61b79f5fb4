//! No alert floods: a mail client polling every few minutes with a stored password raises the
//! same alert all day. Within a window (on event time), alerts with the same client address,
//! server (address, port, protocol), user, mechanism and outcome are collapsed: the first goes
//! out at once, the others are counted, and when the window closes (or at exit) one
//! `repeat_summary` reports how many there were and when. Nothing is dropped without being
//! counted in a summary.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{ServerReport, Sink};
use crate::alert::{
    AppProto, ClientIdentity, Credential, CredentialAlert, Event, EventType, FlowMeta, Outcome, Remediation,
    ServerIdentity, UserKey, SCHEMA_VERSION,
};
use crate::capture::Timestamp;

/// Windows tracked at once; past this, new alerts go out undeduplicated (never dropped), so memory
/// stays bounded whatever the traffic.
pub const MAX_TRACKED: usize = 65_536;

/// Repeats of one alert within a dedup window. Carries the last repeat's connection and details;
/// `repeat_count` counts every alert of the window, the first (already sent) included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepeatSummary {
    /// When the last repeat was seen.
    pub timestamp: Timestamp,
    pub event_type: &'static str,
    pub severity: &'static str,
    /// The `event_type` of the alerts this summary stands for.
    pub repeated_event_type: EventType,
    #[serde(flatten)]
    pub flow: FlowMeta,
    pub app_proto: AppProto,
    pub credential: Credential,
    pub server: ServerIdentity,
    #[serde(skip_serializing_if = "ClientIdentity::is_empty")]
    pub client: ClientIdentity,
    pub remediation: Remediation,
    pub repeat_count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub schema_version: u32,
}

/// What makes two alerts "the same" for deduplication. The user is who logged in, not the name
/// as shown: masked names merge accounts. The client's address is part of it: the same password
/// used from another host (a stolen one, replayed) is an alert of its own, with the connection a
/// SIEM joins to its other records, never a count in another host's summary.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    client: IpAddr,
    server: IpAddr,
    port: u16,
    app_proto: AppProto,
    user: Option<UserKey>,
    mechanism: Cow<'static, str>,
    outcome: Outcome,
}

impl Key {
    fn of(alert: &CredentialAlert) -> Key {
        Key {
            client: alert.flow.src_ip,
            server: alert.flow.dest_ip,
            port: alert.flow.dest_port,
            app_proto: alert.app_proto,
            user: alert.credential.user_identity(),
            mechanism: alert.credential.mechanism.clone(),
            outcome: alert.credential.outcome,
        }
    }
}

struct Window {
    /// The window's place in the order windows opened: ties of time are broken by it, never by
    /// the key, whose user digest changes from run to run.
    opened: u64,
    closes_at: Timestamp,
    count: u64,
    first_seen: Timestamp,
    last_seen: Timestamp,
    last: Box<CredentialAlert>,
}

impl Window {
    fn summary(self) -> RepeatSummary {
        let last = *self.last;
        RepeatSummary {
            timestamp: self.last_seen,
            event_type: "repeat_summary",
            severity: last.severity,
            repeated_event_type: last.event_type,
            flow: last.flow,
            app_proto: last.app_proto,
            credential: last.credential,
            server: last.server,
            client: last.client,
            remediation: last.remediation,
            repeat_count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            schema_version: SCHEMA_VERSION,
        }
    }
}

/// Deduplicates credential alerts in front of another sink (anomalies pass straight through).
pub struct Dedup<S: Sink> {
    inner: S,
    window: Duration,
    open: HashMap<Key, Window>,
    /// Open windows by closing time (then opening order), to close them in order without
    /// scanning.
    closing: BTreeSet<(Timestamp, u64, Key)>,
    /// Windows opened so far.
    opened: u64,
    /// Latest event time seen: time only moves forward here, even when captures are not sorted.
    now: Timestamp,
}

impl<S: Sink> Dedup<S> {
    pub fn new(inner: S, window: Duration) -> Self {
        Dedup { inner, window, open: HashMap::new(), closing: BTreeSet::new(), opened: 0, now: Timestamp(0) }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Closes the windows that ended by `now`, reporting those that saw repeats.
    fn close_until(&mut self, now: Timestamp) -> io::Result<()> {
        self.now = self.now.max(now);
        while let Some((closes_at, ..)) = self.closing.first() {
            if *closes_at > self.now {
                break;
            }
            if let Some((_, _, key)) = self.closing.pop_first() {
                self.close(&key)?;
            }
        }
        Ok(())
    }

    fn close(&mut self, key: &Key) -> io::Result<()> {
        match self.open.remove(key) {
            Some(window) if window.count > 1 => self.inner.repeat(&window.summary()),
            _ => Ok(()),
        }
    }

    fn credential(&mut self, event: &Event, alert: &CredentialAlert) -> io::Result<()> {
        let at = alert.timestamp;
        self.close_until(at)?;
        let key = Key::of(alert);
        if let Some(window) = self.open.get_mut(&key) {
            window.count += 1;
            window.first_seen = window.first_seen.min(at);
            if at >= window.last_seen {
                window.last_seen = at;
                *window.last = alert.clone();
            }
            return Ok(());
        }
        if self.open.len() < MAX_TRACKED {
            let closes_at = at.saturating_add(self.window);
            let opened = self.opened;
            self.opened += 1;
            self.closing.insert((closes_at, opened, key.clone()));
            self.open.insert(
                key,
                Window { opened, closes_at, count: 1, first_seen: at, last_seen: at, last: Box::new(alert.clone()) },
            );
        }
        self.inner.event(event)
    }

    /// Closes every window, in the order they opened (the map's own order changes from run to
    /// run).
    fn close_all(&mut self) -> io::Result<()> {
        let mut windows: Vec<(Key, Window)> = self.open.drain().collect();
        self.closing.clear();
        windows.sort_by_key(|(_, window)| (window.first_seen, window.closes_at, window.opened));
        for (_, window) in windows {
            if window.count > 1 {
                self.inner.repeat(&window.summary())?;
            }
        }
        Ok(())
    }
}

impl<S: Sink> Sink for Dedup<S> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Credential(alert) => self.credential(event, alert),
            Event::Anomaly(alert) => {
                self.close_until(alert.timestamp)?;
                self.inner.event(event)
            }
            Event::Session(_) | Event::Stats(_) => self.inner.event(event),
        }
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        self.inner.repeat(summary)
    }

    fn server_report(&mut self, report: &ServerReport) -> io::Result<()> {
        self.inner.server_report(report)
    }

    /// Passes through: live capture reports postures as they change and in its periodic
    /// inventory, which must not cut the windows short (only `end_of_events` does, at the end).
    fn posture(&mut self, posture: &crate::posture::ServerPosture) -> io::Result<()> {
        self.inner.posture(posture)
    }

    /// The end of a run: the repeats held back go out before the closing postures.
    /// The outputs hear it first: the repeats held back are closing records too, and wait for
    /// room as the others do (see [`WhenFull`](super::WhenFull)).
    fn end_of_events(&mut self) -> io::Result<()> {
        self.inner.end_of_events()?;
        self.close_all()
    }

    fn room(&self) -> usize {
        self.inner.room()
    }

    fn finish(&mut self, servers: &[ServerReport], unread: &super::Unread) -> io::Result<()> {
        self.close_all()?;
        self.inner.finish(servers, unread)
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.close_until(now)?;
        self.inner.tick(now)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.inner.reopen()
    }

    fn undelivered(&self) -> u64 {
        self.inner.undelivered()
    }

    fn output_stats(&self, into: &mut Vec<crate::alert::OutputStats>) {
        self.inner.output_stats(into);
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text::tests::sample_alert;

    /// Records what reaches it.
    #[derive(Default)]
    struct Recorder {
        alerts: Vec<Timestamp>,
        repeats: Vec<RepeatSummary>,
        postures: usize,
        finished: bool,
        /// Heard `end_of_events`, and repeats that came after it.
        events_over: bool,
        repeats_after_end: usize,
    }

    impl Sink for Recorder {
        fn event(&mut self, event: &Event) -> io::Result<()> {
            if let Event::Credential(alert) = event {
                self.alerts.push(alert.timestamp);
            }
            Ok(())
        }
        fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
            self.repeats.push(summary.clone());
            self.repeats_after_end += usize::from(self.events_over);
            Ok(())
        }
        fn posture(&mut self, _posture: &crate::posture::ServerPosture) -> io::Result<()> {
            self.postures += 1;
            Ok(())
        }
        fn end_of_events(&mut self) -> io::Result<()> {
            self.events_over = true;
            Ok(())
        }
        fn finish(&mut self, _servers: &[ServerReport], _unread: &crate::output::Unread) -> io::Result<()> {
            self.finished = true;
            Ok(())
        }
    }

    fn login_at(seconds: u64, user: &str) -> Event {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.timestamp = Timestamp::from_secs_nanos(1_795_770_000 + seconds, 0);
            alert.credential.username = Some(user.to_string());
            alert.flow.src_port = 40_000 + u16::try_from(seconds % 1000).unwrap();
        }
        event
    }

    /// A login by the account `raw`, shown masked as the default policy shows it.
    fn masked_login_at(seconds: u64, raw: &[u8]) -> Event {
        let policy = crate::alert::RedactionPolicy::default();
        let mut event = login_at(seconds, &policy.render_username(raw));
        if let Event::Credential(alert) = &mut event {
            alert.credential.user_key = Some(policy.user_key(raw));
        }
        event
    }

    #[test]
    fn accounts_masked_alike_are_not_merged() {
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(3600));
        for (second, raw) in [(0, &b"alice@corp.test"[..]), (60, b"adam@corp.test"), (120, b"anna@corp.test")] {
            dedup.event(&masked_login_at(second, raw)).unwrap();
        }
        dedup.event(&masked_login_at(180, b"adam@corp.test")).unwrap();
        dedup.finish(&[], &crate::output::Unread::default()).unwrap();
        let recorder = dedup.into_inner();
        assert_eq!(recorder.alerts.len(), 3, "one alert per account");
        let [repeat] = recorder.repeats.as_slice() else { panic!("one summary, adam's") };
        assert_eq!((repeat.repeat_count, repeat.first_seen), (2, recorder.alerts[1]));
        assert!(!format!("{repeat:?}").contains("adam"), "Debug shows the masked name and no key");
    }

    #[test]
    fn windows_opened_at_one_instant_close_in_the_order_they_opened() {
        // Twenty accounts' first logins at the same second, each repeated later: the summaries
        // come in the order the windows opened, not by the accounts' digests (random per run).
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(3600));
        let names: Vec<Vec<u8>> = (0..20).map(|i| format!("user{i}@corp.test").into_bytes()).collect();
        for name in &names {
            dedup.event(&masked_login_at(0, name)).unwrap();
        }
        for (i, name) in (0u64..).zip(&names) {
            dedup.event(&masked_login_at(100 + i, name)).unwrap();
        }
        dedup.finish(&[], &crate::output::Unread::default()).unwrap();
        let recorder = dedup.into_inner();
        let last_seen: Vec<Timestamp> = recorder.repeats.iter().map(|repeat| repeat.last_seen).collect();
        let mut sorted = last_seen.clone();
        sorted.sort();
        assert_eq!(last_seen.len(), 20);
        assert_eq!(last_seen, sorted);
    }

    #[test]
    fn first_alert_goes_out_repeats_are_summarised_at_exit() {
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(600));
        for second in 0..5 {
            dedup.event(&login_at(second * 60, "f***")).unwrap();
        }
        assert_eq!(dedup.inner.alerts.len(), 1);
        assert!(dedup.inner.repeats.is_empty());
        dedup.finish(&[], &crate::output::Unread::default()).unwrap();
        let recorder = dedup.into_inner();
        assert!(recorder.finished);
        let [summary] = recorder.repeats.as_slice() else { panic!("one summary expected") };
        assert_eq!(summary.repeat_count, 5);
        assert_eq!(summary.first_seen, recorder.alerts[0]);
        assert_eq!(summary.last_seen, Timestamp::from_secs_nanos(1_795_770_240, 0));
        assert_eq!(summary.timestamp, summary.last_seen);
        assert_eq!(summary.flow.src_port, 40_240);
        assert_eq!(summary.repeated_event_type, EventType::CleartextCredential);
    }

    #[test]
    fn a_posture_between_two_logins_leaves_their_window_open() {
        // Live capture reports a posture whenever a server is first seen or changes, and all of
        // them in its periodic inventory: the dedup windows must not close then.
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(3600));
        dedup.event(&login_at(0, "f***")).unwrap();
        dedup.posture(&some_posture()).unwrap();
        dedup.event(&login_at(60, "f***")).unwrap();
        assert_eq!((dedup.inner.alerts.len(), dedup.inner.repeats.len(), dedup.inner.postures), (1, 0, 1));
        dedup.end_of_events().unwrap();
        let [repeat] = dedup.inner.repeats.as_slice() else { panic!("one summary at the end") };
        assert_eq!(repeat.repeat_count, 2);
        assert_eq!(dedup.inner.repeats_after_end, 1, "a closing record: the outputs heard the end first");
    }

    fn some_posture() -> crate::posture::ServerPosture {
        let mut tracker = crate::posture::PostureTracker::default();
        tracker.observe(&login_at(0, "f***"), false);
        tracker.snapshot().pop().unwrap()
    }

    #[test]
    fn window_closes_on_event_time_and_a_new_one_opens() {
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(600));
        dedup.event(&login_at(0, "f***")).unwrap();
        dedup.event(&login_at(300, "f***")).unwrap();
        dedup.event(&login_at(700, "f***")).unwrap();
        assert_eq!(dedup.inner.alerts.len(), 2, "the window closed at 600 s: a new alert at 700 s");
        assert_eq!(dedup.inner.repeats.len(), 1);
        assert_eq!(dedup.inner.repeats[0].repeat_count, 2);
        dedup.tick(Timestamp::from_secs_nanos(1_795_770_000 + 1400, 0)).unwrap();
        assert_eq!(dedup.inner.repeats.len(), 1, "a window without repeats closes silently");
        dedup.finish(&[], &crate::output::Unread::default()).unwrap();
        assert_eq!(dedup.inner.repeats.len(), 1);
    }

    #[test]
    fn windows_opened_at_one_instant_close_in_the_same_order_every_run() {
        // Flows expiring together give their pending logins one timestamp: at the end, their
        // summaries must not come out in the order of a randomly seeded map.
        let summaries = || {
            let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(600));
            for user in 0..32 {
                dedup.event(&login_at(0, &format!("u{user:02}***"))).unwrap();
                dedup.event(&login_at(60, &format!("u{user:02}***"))).unwrap();
            }
            dedup.finish(&[], &crate::output::Unread::default()).unwrap();
            dedup.into_inner().repeats.iter().map(|summary| summary.credential.username.clone()).collect::<Vec<_>>()
        };
        let first = summaries();
        assert_eq!(first.len(), 32);
        for _ in 0..8 {
            assert_eq!(summaries(), first);
        }
    }

    /// A stored password polled from one host is summarised; the same login from another host
    /// (a replay, from wherever the password was sniffed) is an alert of its own.
    #[test]
    fn the_same_login_from_another_client_is_an_alert_of_its_own() {
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(3600));
        let from = |seconds: u64, client: [u8; 4]| {
            let mut event = login_at(seconds, "a***");
            if let Event::Credential(alert) = &mut event {
                alert.flow.src_ip = IpAddr::from(client);
            }
            event
        };
        for (second, client) in
            [(0, [10, 0, 0, 1]), (300, [10, 0, 0, 2]), (600, [203, 0, 113, 66]), (900, [10, 0, 0, 1])]
        {
            dedup.event(&from(second, client)).unwrap();
        }
        dedup.finish(&[], &crate::output::Unread::default()).unwrap();
        let recorder = dedup.into_inner();
        assert_eq!(recorder.alerts.len(), 3, "one alert per client host");
        let [repeat] = recorder.repeats.as_slice() else { panic!("one summary, the first host's") };
        assert_eq!((repeat.repeat_count, repeat.flow.src_ip), (2, IpAddr::from([10, 0, 0, 1])));
    }

    #[test]
    fn key_tells_users_and_outcomes_apart() {
        let mut dedup = Dedup::new(Recorder::default(), Duration::from_secs(600));
        dedup.event(&login_at(0, "a***")).unwrap();
        dedup.event(&login_at(1, "b***")).unwrap();
        let mut failed = login_at(2, "a***");
        if let Event::Credential(alert) = &mut failed {
            alert.credential.outcome = Outcome::Failure;
        }
        dedup.event(&failed).unwrap();
        dedup.event(&login_at(3, "a***")).unwrap();
        assert_eq!(dedup.inner.alerts.len(), 3);
        dedup.finish(&[], &crate::output::Unread::default()).unwrap();
        assert_eq!(dedup.inner.repeats.len(), 1);
        assert_eq!(dedup.inner.repeats[0].credential.username.as_deref(), Some("a***"));
    }
}
