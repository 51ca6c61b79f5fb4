//! Mail-server TLS posture from traffic alone: for every POP3, IMAP and SMTP server seen (any port,
//! logins or not), whether it offers TLS, whether it insists on it, and what crossed in clear.
//!
//! Built from the session records every mail session leaves ([`Event::Session`]) and from the
//! credential alerts. Classes:
//! * `tls_required`: LOGINDISABLED advertised, or STARTTLS offered and no plaintext mechanism
//!   before it (and no cleartext login seen), or implicit TLS, or logins in clear refused with a
//!   demand for TLS (IMAP's `[PRIVACYREQUIRED]`, SMTP's `538`, `-ERR TLS required`) and none
//!   accepted;
//! * `tls_optional`: STARTTLS offered, but plaintext mechanisms advertised or a cleartext login seen;
//! * `no_tls`: capability lists seen, none offering STARTTLS;
//! * `unknown`: no capability list seen (e.g. POP3 clients that never send CAPA).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::alert::{
    AnomalyAlert, AnomalyInfo, AnomalyKind, AppProto, Capabilities, Event, EventType, Outcome, SecretKind,
    SessionObservation, UserKey, SCHEMA_VERSION,
};
use crate::capture::Timestamp;
use crate::keyed_hash::{KeyedMap, KeyedSet};
use crate::tracker_limits::{Holdings, TrackerLimits};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PostureClass {
    /// Ordered by risk: most exposed first.
    NoTls,
    TlsOptional,
    Unknown,
    TlsRequired,
}

impl PostureClass {
    pub fn name(self) -> &'static str {
        match self {
            PostureClass::NoTls => "no_tls",
            PostureClass::TlsOptional => "tls_optional",
            PostureClass::Unknown => "unknown",
            PostureClass::TlsRequired => "tls_required",
        }
    }

    /// What the administrator should do (see docs/posture.md for the server settings).
    pub fn remediation(self) -> &'static str {
        match self {
            PostureClass::NoTls => "enable TLS (STARTTLS or implicit TLS), then require it before authentication",
            PostureClass::TlsOptional => "require TLS before authentication (Dovecot disable_plaintext_auth / ssl = required, Postfix smtpd_tls_auth_only = yes)",
            PostureClass::Unknown => "check the server's configuration: the capture does not show its capabilities",
            PostureClass::TlsRequired => "none",
        }
    }
}

/// One server's posture, as the `server_posture` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerPosture {
    pub timestamp: String,
    pub event_type: &'static str,
    pub app_proto: AppProto,
    pub ip: IpAddr,
    pub port: u16,
    pub class: PostureClass,
    pub remediation: &'static str,
    pub greeting: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Arc<str>>,
    /// STARTTLS/STLS offered in some session (`null`: no capability list seen).
    pub starttls_offered: Option<bool>,
    pub login_disabled: bool,
    /// Plaintext mechanisms the server advertised before TLS (`USER`, `LOGIN`, `AUTH=PLAIN`, …).
    pub plaintext_mechanisms: Vec<String>,
    /// Implicit-TLS ports (993, 995, 465, …) seen on the same host.
    pub implicit_tls_ports: Vec<u16>,
    pub sessions: u64,
    /// Sessions that switched to TLS with STARTTLS (or were implicit TLS).
    pub sessions_tls: u64,
    pub cleartext_logins: u64,
    pub distinct_users: usize,
    /// The tracker filled up ([`TrackerLimits`]): `distinct_users`, the mechanisms, ports and
    /// evidence list what was kept, and there was more.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Why the class: the capability lines and session counts it rests on.
    pub evidence: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub schema_version: u32,
}

impl ServerPosture {
    /// The headline of a posture report: the server takes passwords without TLS (it offers none,
    /// or a cleartext login to it was accepted or went unanswered).
    pub fn accepts_passwords_in_clear(&self) -> bool {
        self.class == PostureClass::NoTls || self.cleartext_logins > 0
    }
}

#[derive(Default)]
struct Entry {
    greeting: Option<Arc<str>>,
    software: Option<Arc<str>>,
    hostname: Option<Arc<str>>,
    sessions: u64,
    sessions_tls: u64,
    implicit: bool,
    sessions_offering: u64,
    sessions_not_offering: u64,
    login_disabled: bool,
    plaintext: BTreeSet<String>,
    capability_lines: BTreeSet<String>,
    /// The capability list (and LOGINDISABLED) the last session brought: a server repeats its
    /// list to every session, and taking in the same list again changes nothing.
    last_capabilities: Option<(Capabilities, Option<bool>)>,
    cleartext_logins: u64,
    /// Sessions in which a login in clear was refused with a demand for TLS.
    sessions_refusing_for_tls: u64,
    /// Who logged in (masked names merge accounts). Hashed, not ordered: looked up for every
    /// alert, only counted.
    users: KeyedSet<UserKey>,
    /// A user name, mechanism or capability list was not kept: the tracker was full.
    truncated: bool,
    first_seen: Option<Timestamp>,
    last_seen: Option<Timestamp>,
    /// The class last reported, to report changes only.
    reported: Option<(PostureClass, Option<bool>)>,
}

type ServerKey = (AppProto, IpAddr, u16);

/// What one observation brings to report now.
#[derive(Debug, Default)]
pub struct Findings {
    pub anomalies: Vec<Event>,
    /// Postures first known or changed (only when asked for).
    pub changed: Vec<ServerPosture>,
}

/// Accumulates the posture of every server over a run, within [`TrackerLimits`].
pub struct PostureTracker {
    /// Looked up for every session and credential: a hash map (reports sort what they list).
    servers: KeyedMap<ServerKey, Entry>,
    /// Implicit-TLS ports by address (see [`Self::note_implicit_tls`]).
    implicit_tls_ports: BTreeMap<IpAddr, BTreeSet<u16>>,
    holdings: Holdings,
}

impl Default for PostureTracker {
    fn default() -> Self {
        PostureTracker::with_limits(TrackerLimits::default())
    }
}

impl PostureTracker {
    pub fn with_limits(limits: TrackerLimits) -> Self {
        PostureTracker {
            servers: KeyedMap::default(),
            implicit_tls_ports: BTreeMap::new(),
            holdings: Holdings::new("posture", limits),
        }
    }

    /// Sessions and credentials of servers past the limit, not taken into account.
    pub fn untracked_events(&self) -> u64 {
        self.holdings.untracked()
    }

    /// An implicit-TLS session to `ip`:`port`. The addresses count against the server limit
    /// apart from the servers themselves, the ports as values.
    fn note_implicit_tls(&mut self, ip: IpAddr, port: u16) {
        let admitted = match self.implicit_tls_ports.get(&ip) {
            Some(ports) if ports.contains(&port) => return,
            Some(_) => true,
            None => self.holdings.admit_server(self.implicit_tls_ports.len()),
        };
        if admitted && self.holdings.admit_value() {
            self.implicit_tls_ports.entry(ip).or_default().insert(port);
        }
    }

    /// Takes one event into account. Returns what should be reported now: a STARTTLS-stripping
    /// anomaly when a server that offered STARTTLS stops offering it (or the reverse) between
    /// sessions, and with `report_changes` the server's posture when it is first known or changed.
    pub fn observe(&mut self, event: &Event, report_changes: bool) -> Findings {
        match event {
            Event::Session(session) => self.observe_session(session, report_changes),
            Event::Credential(alert) => {
                // Credentials come before the record of their session (which ends later).
                let key = (alert.app_proto, alert.flow.dest_ip, alert.flow.dest_port);
                let Some(entry) = self.holdings.entry(&mut self.servers, key) else { return Findings::default() };
                let holdings = &mut self.holdings;
                entry.first_seen = Some(entry.first_seen.map_or(alert.timestamp, |first| first.min(alert.timestamp)));
                if matches!(alert.credential.secret, SecretKind::Password | SecretKind::Token)
                    && alert.credential.outcome != Outcome::Failure
                {
                    entry.cleartext_logins += 1;
                }
                if let Some(user) = alert.credential.user_identity().filter(|user| !entry.users.contains(user)) {
                    if holdings.keep_value(&mut entry.truncated) {
                        entry.users.insert(user);
                    }
                }
                Findings::default()
            }
            Event::Anomaly(_) | Event::Stats(_) => Findings::default(),
        }
    }

    fn observe_session(&mut self, session: &SessionObservation, report_changes: bool) -> Findings {
        let ip = session.flow.dest_ip;
        let port = session.flow.dest_port;
        if session.implicit_tls {
            self.note_implicit_tls(ip, port);
        }
        let Some(proto) = session.app_proto else { return Findings::default() };
        let Some(entry) = self.holdings.entry(&mut self.servers, (proto, ip, port)) else { return Findings::default() };
        let holdings = &mut self.holdings;
        // Files read out of time order, or the two halves of a connection in two files, bring
        // sessions out of order: the earliest and the latest, not the first and the last read.
        entry.first_seen = Some(entry.first_seen.map_or(session.timestamp, |first| first.min(session.timestamp)));
        entry.last_seen = Some(entry.last_seen.map_or(session.timestamp, |last| last.max(session.timestamp)));
        entry.sessions += 1;
        if session.upgraded_to_tls || session.implicit_tls {
            entry.sessions_tls += 1;
        }
        entry.implicit |= session.implicit_tls;
        let server = &session.server;
        if server.greeting.is_some() {
            entry.greeting.clone_from(&server.greeting);
            entry.software.clone_from(&server.software);
            entry.hostname.clone_from(&server.hostname);
        }
        let mut out = Findings::default();
        match server.starttls_offered {
            Some(true) => {
                if entry.sessions_not_offering > 0 && entry.sessions_offering == 0 {
                    out.anomalies.push(stripping(
                        session,
                        proto,
                        "now offers STARTTLS after sessions that did not see it",
                    ));
                }
                entry.sessions_offering += 1;
            }
            Some(false) => {
                if entry.sessions_offering > 0 {
                    out.anomalies.push(stripping(
                        session,
                        proto,
                        "this session saw no STARTTLS although earlier sessions did: possible STARTTLS stripping",
                    ));
                }
                entry.sessions_not_offering += 1;
            }
            None => {}
        }
        entry.login_disabled |= server.login_disabled == Some(true);
        if session.login_refused_for_tls {
            entry.sessions_refusing_for_tls += 1;
        }
        let capabilities = (server.capabilities.clone(), server.login_disabled);
        if !server.capabilities.is_empty() && entry.last_capabilities.as_ref() != Some(&capabilities) {
            let line = server.capabilities.to_line();
            if !entry.capability_lines.contains(&line) && holdings.keep_value(&mut entry.truncated) {
                entry.capability_lines.insert(line);
            }
            for mechanism in plaintext_mechanisms(proto, &server.capabilities, server.login_disabled) {
                if !entry.plaintext.contains(&mechanism) && holdings.keep_value(&mut entry.truncated) {
                    entry.plaintext.insert(mechanism);
                }
            }
            entry.last_capabilities = Some(capabilities);
        }
        let now = (classify(entry), offered(entry));
        if report_changes && entry.reported != Some(now) {
            entry.reported = Some(now);
            out.changed.push(self.posture(proto, ip, port));
        }
        out
    }

    /// Every server's posture, most exposed first.
    pub fn snapshot(&self) -> Vec<ServerPosture> {
        let mut all: Vec<ServerPosture> =
            self.servers.keys().map(|(proto, ip, port)| self.posture(*proto, *ip, *port)).collect();
        all.sort_by_key(|p| (p.class, std::cmp::Reverse(p.cleartext_logins), p.ip, p.port, p.app_proto));
        all
    }

    fn posture(&self, proto: AppProto, ip: IpAddr, port: u16) -> ServerPosture {
        let entry = self.servers.get(&(proto, ip, port));
        let empty = Entry::default();
        let entry = entry.unwrap_or(&empty);
        let class = classify(entry);
        let mut evidence: Vec<String> =
            entry.capability_lines.iter().map(|line| format!("capabilities: {line}")).collect();
        evidence.push(format!(
            "{} session(s): {} offered STARTTLS, {} did not, {} used TLS",
            entry.sessions, entry.sessions_offering, entry.sessions_not_offering, entry.sessions_tls
        ));
        if entry.cleartext_logins > 0 {
            evidence.push(format!("{} cleartext login(s) accepted or unanswered", entry.cleartext_logins));
        }
        if entry.sessions_refusing_for_tls > 0 {
            evidence.push(format!(
                "{} session(s) refused a cleartext login asking for TLS",
                entry.sessions_refusing_for_tls
            ));
        }
        ServerPosture {
            timestamp: text_of(entry.last_seen),
            event_type: "server_posture",
            app_proto: proto,
            ip,
            port,
            class,
            remediation: class.remediation(),
            greeting: entry.greeting.clone(),
            software: entry.software.clone(),
            hostname: entry.hostname.clone(),
            starttls_offered: offered(entry),
            login_disabled: entry.login_disabled,
            plaintext_mechanisms: entry.plaintext.iter().cloned().collect(),
            implicit_tls_ports: self
                .implicit_tls_ports
                .get(&ip)
                .map(|ports| ports.iter().copied().collect())
                .unwrap_or_default(),
            sessions: entry.sessions,
            sessions_tls: entry.sessions_tls,
            cleartext_logins: entry.cleartext_logins,
            distinct_users: entry.users.len(),
            truncated: entry.truncated,
            evidence,
            first_seen: text_of(entry.first_seen),
            last_seen: text_of(entry.last_seen),
            schema_version: SCHEMA_VERSION,
        }
    }
}

fn offered(entry: &Entry) -> Option<bool> {
    match (entry.sessions_offering, entry.sessions_not_offering) {
        (0, 0) => None,
        (0, _) => Some(false),
        _ => Some(true),
    }
}

fn classify(entry: &Entry) -> PostureClass {
    if entry.implicit {
        return PostureClass::TlsRequired;
    }
    // Refusing logins in clear for want of TLS, and accepting none, the server requires TLS
    // whatever mechanisms its lists name.
    let refuses_clear = entry.sessions_refusing_for_tls > 0 && entry.cleartext_logins == 0;
    match offered(entry) {
        None if entry.login_disabled || refuses_clear => PostureClass::TlsRequired,
        None => PostureClass::Unknown,
        Some(false) => PostureClass::NoTls,
        Some(true) if refuses_clear => PostureClass::TlsRequired,
        Some(true) if entry.cleartext_logins > 0 || !entry.plaintext.is_empty() => PostureClass::TlsOptional,
        Some(true) => PostureClass::TlsRequired,
    }
}

/// A time as the posture reports it: empty when none was seen.
fn text_of(time: Option<Timestamp>) -> String {
    time.map(Timestamp::rfc3339_micros).unwrap_or_default()
}

/// Plaintext mechanisms a capability list offers before TLS, named as the protocol's command
/// sends them (as its alerts name them), but IMAP's as its capabilities do (`AUTH=PLAIN`, beside
/// `LOGIN`).
fn plaintext_mechanisms(proto: AppProto, capabilities: &Capabilities, login_disabled: Option<bool>) -> Vec<String> {
    let mut found = Vec::new();
    let plaintext = |mechanisms: &[&str], command: &str| -> Vec<String> {
        mechanisms.iter().filter(|m| matches!(**m, "PLAIN" | "LOGIN")).map(|m| format!("{command} {m}")).collect()
    };
    for capability in capabilities.iter() {
        let words: Vec<&str> = capability.split([' ', '=']).collect();
        match (proto, words.as_slice()) {
            (AppProto::Pop3, ["USER"]) => found.push("USER".to_string()),
            (AppProto::Pop3, ["SASL", mechanisms @ ..]) | (AppProto::Smtp, ["AUTH", mechanisms @ ..]) => {
                found.extend(plaintext(mechanisms, "AUTH"))
            }
            (AppProto::ManageSieve, ["SASL", mechanisms @ ..]) => found.extend(plaintext(mechanisms, "AUTHENTICATE")),
            (AppProto::Imap, ["AUTH", mechanism]) if matches!(*mechanism, "PLAIN" | "LOGIN") => {
                found.push(format!("AUTH={mechanism}"))
            }
            _ => {}
        }
    }
    if proto == AppProto::Imap && login_disabled == Some(false) {
        found.push("LOGIN".to_string());
    }
    found
}

fn stripping(session: &SessionObservation, proto: AppProto, detail: &str) -> Event {
    Event::Anomaly(Box::new(AnomalyAlert {
        timestamp: session.timestamp,
        event_type: EventType::Anomaly,
        severity: EventType::Anomaly.severity(),
        flow: session.flow.clone(),
        app_proto: Some(proto),
        anomaly: AnomalyInfo { kind: AnomalyKind::StarttlsStripping, detail: detail.to_string() },
        schema_version: SCHEMA_VERSION,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{FlowMeta, ServerIdentity};

    fn session(port: u16, capabilities: &[&str], starttls: Option<bool>, upgraded: bool) -> Event {
        let ip: IpAddr = [198, 51, 100, 1].into();
        Event::Session(Box::new(SessionObservation {
            timestamp: Timestamp::from_secs_nanos(1_767_225_600 + capabilities.len() as u64, 0),
            flow: FlowMeta {
                flow_id: 1,
                src_ip: [192, 0, 2, 1].into(),
                src_port: 40000,
                dest_ip: ip,
                dest_port: port,
                proto: "TCP",
                vlan: Vec::new(),
                midstream: false,
            },
            app_proto: Some(match port {
                110 => AppProto::Pop3,
                143 => AppProto::Imap,
                _ => AppProto::Smtp,
            }),
            server: ServerIdentity {
                ip: Some(ip),
                port,
                greeting: Some("hello".into()),
                capabilities: capabilities.iter().collect(),
                starttls_offered: starttls,
                login_disabled: (port == 143).then_some(capabilities.contains(&"LOGINDISABLED")),
                ..ServerIdentity::default()
            },
            upgraded_to_tls: upgraded,
            implicit_tls: false,
            starttls_refused: false,
            login_refused_for_tls: false,
        }))
    }

    /// Sessions observed out of time order (files read out of order) still span from the
    /// earliest to the latest.
    #[test]
    fn first_and_last_seen_are_the_earliest_and_latest() {
        let mut tracker = PostureTracker::default();
        for seconds in [20, 10, 30, 15] {
            let mut event = session(110, &["USER"], Some(false), false);
            if let Event::Session(observation) = &mut event {
                observation.timestamp = Timestamp::from_secs_nanos(1_767_225_600 + seconds, 0);
            }
            tracker.observe(&event, false);
        }
        let [posture] = tracker.snapshot().try_into().unwrap();
        assert_eq!(
            (posture.first_seen.as_str(), posture.last_seen.as_str()),
            ("2026-01-01T00:00:10.000000Z", "2026-01-01T00:00:30.000000Z")
        );
    }

    /// Sessions to ever new servers, with ever new capability lists, and implicit-TLS sessions
    /// to ever new addresses fill the tracker up to its limits and no further.
    #[test]
    fn a_spray_of_sessions_is_kept_within_the_limits() {
        let limits = TrackerLimits { servers: 4, values: 50 };
        let mut tracker = PostureTracker::with_limits(limits);
        for n in 0..500u32 {
            let capability = format!("X-{n}");
            let mut event = session(110, &["USER", &capability], Some(false), false);
            if let Event::Session(observation) = &mut event {
                observation.flow.dest_ip = std::net::Ipv4Addr::from(0xc633_6400 + n % 8).into();
            }
            tracker.observe(&event, false);
            let mut tls = session(995, &[], None, false);
            if let Event::Session(observation) = &mut tls {
                observation.flow.dest_ip = std::net::Ipv4Addr::from(0xcb00_7100 + n).into();
                observation.implicit_tls = true;
                observation.app_proto = None;
            }
            tracker.observe(&tls, false);
        }
        let postures = tracker.snapshot();
        assert_eq!(postures.len(), limits.servers);
        assert_eq!(tracker.untracked_events(), 248, "4 of the 8 servers (62 sessions each) were past the limit");
        assert_eq!(postures.iter().map(|posture| posture.sessions).sum::<u64>(), 252);
        assert!(tracker.implicit_tls_ports.len() <= limits.servers);
        let lines = postures.iter().map(|posture| posture.evidence.len() - 1).sum::<usize>();
        let ports = tracker.implicit_tls_ports.values().map(BTreeSet::len).sum::<usize>();
        let plaintext = postures.iter().map(|posture| posture.plaintext_mechanisms.len()).sum::<usize>();
        assert_eq!(lines + ports + plaintext, limits.values);
        assert!(postures.iter().all(|posture| posture.truncated));
        crate::tracker_limits::assert_matches_event_schema(&serde_json::to_value(&postures[0]).unwrap());
    }

    fn class_after(events: &[Event]) -> PostureClass {
        let mut tracker = PostureTracker::default();
        for event in events {
            tracker.observe(event, false);
        }
        tracker.snapshot()[0].class
    }

    #[test]
    fn classes_follow_the_capabilities() {
        assert_eq!(
            class_after(&[session(143, &["IMAP4REV1", "STARTTLS", "LOGINDISABLED"], Some(true), true)]),
            PostureClass::TlsRequired
        );
        assert_eq!(
            class_after(&[session(143, &["IMAP4REV1", "STARTTLS", "AUTH=PLAIN"], Some(true), false)]),
            PostureClass::TlsOptional
        );
        assert_eq!(
            class_after(&[session(25, &["PIPELINING", "AUTH PLAIN LOGIN"], Some(false), false)]),
            PostureClass::NoTls
        );
        assert_eq!(
            class_after(&[session(25, &["PIPELINING", "STARTTLS"], Some(true), true)]),
            PostureClass::TlsRequired
        );
        assert_eq!(class_after(&[session(110, &[], None, false)]), PostureClass::Unknown);
    }

    #[test]
    fn a_server_that_stops_offering_starttls_raises_an_anomaly_and_a_new_posture() {
        let mut tracker = PostureTracker::default();
        let first = tracker.observe(&session(25, &["STARTTLS", "AUTH PLAIN"], Some(true), false), true);
        assert!(matches!(first.changed.as_slice(), [p] if p.class == PostureClass::TlsOptional));
        assert!(first.anomalies.is_empty());
        let second = tracker.observe(&session(25, &["AUTH PLAIN LOGIN"], Some(false), false), true);
        assert!(second
            .anomalies
            .iter()
            .any(|e| matches!(e, Event::Anomaly(a) if a.anomaly.kind == AnomalyKind::StarttlsStripping)));
        let unchanged = tracker.observe(&session(25, &["STARTTLS", "AUTH PLAIN"], Some(true), false), true);
        assert!(unchanged.anomalies.is_empty() && unchanged.changed.is_empty(), "nothing new to report");
        let posture = &tracker.snapshot()[0];
        assert_eq!((posture.sessions, posture.starttls_offered), (3, Some(true)));
        assert!(posture.evidence.iter().any(|e| e.contains("2 offered STARTTLS, 1 did not")));
    }
}
