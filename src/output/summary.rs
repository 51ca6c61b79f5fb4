//! The servers at risk: one entry per server that exposed a credential, built from the alerts
//! (all of them: deduplication only thins what is printed, never what is counted).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::alert::{AppProto, Event, Outcome, Remediation, SecretKind, UserKey, UsernameForm, SCHEMA_VERSION};
use crate::capture::Timestamp;
use crate::keyed_hash::KeyedMap;
use crate::posture::ServerPosture;
use crate::tracker_limits::{Holdings, TrackerLimits};

/// How many user names a report lists, so that one busy server does not make a huge event.
pub const MAX_LISTED_USERS: usize = 50;

/// A server and what crossed in clear to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerReport {
    /// `last_seen`, under the name every other event carries its time by (a SIEM dates events
    /// by one field).
    pub timestamp: String,
    pub event_type: &'static str,
    pub app_proto: AppProto,
    pub ip: IpAddr,
    pub port: u16,
    pub greeting: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<Arc<str>>,
    pub starttls_offered: Option<bool>,
    pub remediation: Remediation,
    /// Cleartext credentials (passwords and tokens).
    pub cleartext: u64,
    /// Crackable challenge-responses.
    pub weak: u64,
    pub successes: u64,
    pub failures: u64,
    /// Logins whose outcome the capture did not show.
    pub unknown_outcomes: u64,
    /// Distinct accounts (by [`UserKey`], not by the name as shown: masked names may merge).
    pub users: usize,
    /// Their names as shown, sorted, each once (accounts masked alike share one), at most
    /// `MAX_LISTED_USERS` (50) of them (`users` is the full count).
    pub user_names: Vec<String>,
    /// How `user_names` are written. Never written out itself.
    #[serde(skip)]
    pub username_form: UsernameForm,
    /// More names were shown than `user_names` lists.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more_user_names: bool,
    /// Distinct client addresses.
    pub clients: usize,
    pub mechanisms: Vec<String>,
    /// The summary filled up ([`TrackerLimits`]): `users`, `clients` and `mechanisms` count what
    /// was kept, and there were more.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    pub first_seen: String,
    pub last_seen: String,
    pub schema_version: u32,
}

#[derive(Default)]
struct Entry {
    greeting: Option<Arc<str>>,
    software: Option<Arc<str>>,
    starttls_offered: Option<bool>,
    remediation: Option<Remediation>,
    cleartext: u64,
    weak: u64,
    successes: u64,
    failures: u64,
    unknown_outcomes: u64,
    /// Each account seen (by who logged in: masked names merge accounts) with its name as
    /// shown. Hashed, not ordered: looked up for every alert, sorted once per report.
    users: KeyedMap<UserKey, String>,
    /// How those names are written (one policy per run).
    username_form: UsernameForm,
    clients: BTreeSet<IpAddr>,
    mechanisms: BTreeSet<String>,
    /// A user name, client or mechanism was not kept: the tracker was full.
    truncated: bool,
    first_seen: Option<Timestamp>,
    last_seen: Option<Timestamp>,
}

impl ServerReport {
    /// What the server's posture knows and the report's alerts did not show: whether it offers
    /// STARTTLS, and so what to fix (a server that said LOGINDISABLED yet took a login ignores
    /// it; else the clients skipped STARTTLS, or the server has none). What the alerts showed
    /// stands: a session whose STARTTLS was stripped saw none.
    pub fn complete_from(&mut self, posture: &ServerPosture) {
        if self.starttls_offered.is_some() || posture.starttls_offered.is_none() {
            return;
        }
        self.starttls_offered = posture.starttls_offered;
        if self.remediation == Remediation::Unknown {
            self.remediation = match posture.starttls_offered {
                _ if posture.login_disabled && self.successes > 0 => Remediation::ServerIgnoresLogindisabled,
                Some(true) => Remediation::ClientSkippedStarttls,
                _ => Remediation::ServerOffersNoTls,
            };
        }
    }

    /// The distinct counts for people: `12+` when the summary was full and there were more.
    pub fn shown(&self, count: usize) -> String {
        if self.truncated {
            format!("{count}+")
        } else {
            count.to_string()
        }
    }
}

/// The first [`MAX_LISTED_USERS`] names as shown, in sorted order, each once: accounts masked
/// alike share one (`users` counts them apart); and whether there were more.
fn first_names(users: &KeyedMap<UserKey, String>) -> (Vec<String>, bool) {
    let names: BTreeSet<&String> = users.values().collect();
    let more = names.len() > MAX_LISTED_USERS;
    (names.into_iter().take(MAX_LISTED_USERS).cloned().collect(), more)
}

/// Accumulates the per-server summary over a run, within [`TrackerLimits`].
pub struct ServerSummary {
    /// Looked up for every alert: a hash map (`reports` sorts what it lists).
    servers: KeyedMap<(AppProto, IpAddr, u16), Entry>,
    holdings: Holdings,
}

impl Default for ServerSummary {
    fn default() -> Self {
        ServerSummary::with_limits(TrackerLimits::default())
    }
}

impl ServerSummary {
    pub fn with_limits(limits: TrackerLimits) -> Self {
        ServerSummary { servers: KeyedMap::default(), holdings: Holdings::new("server summary", limits) }
    }

    /// Alerts for servers past the limit, not summarised.
    pub fn untracked_alerts(&self) -> u64 {
        self.holdings.untracked()
    }

    pub fn add(&mut self, event: &Event) {
        let Event::Credential(alert) = event else { return };
        let key = (alert.app_proto, alert.flow.dest_ip, alert.flow.dest_port);
        let Some(entry) = self.holdings.entry(&mut self.servers, key) else { return };
        let holdings = &mut self.holdings;
        if alert.server.greeting.is_some() {
            entry.greeting.clone_from(&alert.server.greeting);
        }
        if alert.server.software.is_some() {
            entry.software.clone_from(&alert.server.software);
        }
        if alert.server.starttls_offered.is_some() {
            entry.starttls_offered = alert.server.starttls_offered;
        }
        if alert.remediation != Remediation::Unknown || entry.remediation.is_none() {
            entry.remediation = Some(alert.remediation);
        }
        match alert.credential.secret {
            SecretKind::Password | SecretKind::Token => entry.cleartext += 1,
            SecretKind::ChallengeResponse => entry.weak += 1,
        }
        match alert.credential.outcome {
            Outcome::Success => entry.successes += 1,
            Outcome::Failure => entry.failures += 1,
            Outcome::Unknown => entry.unknown_outcomes += 1,
        }
        // Looked up before copied: most alerts repeat a user and a mechanism already counted.
        if let (Some(user), Some(name)) = (alert.credential.user_identity(), &alert.credential.username) {
            if !entry.users.contains_key(&user) && holdings.keep_value(&mut entry.truncated) {
                entry.users.insert(user, name.clone());
                entry.username_form = alert.credential.username_form;
            }
        }
        if !entry.clients.contains(&alert.flow.src_ip) && holdings.keep_value(&mut entry.truncated) {
            entry.clients.insert(alert.flow.src_ip);
        }
        if !entry.mechanisms.contains(alert.credential.mechanism.as_ref()) && holdings.keep_value(&mut entry.truncated)
        {
            entry.mechanisms.insert(alert.credential.mechanism.to_string());
        }
        entry.first_seen = Some(entry.first_seen.map_or(alert.timestamp, |first| first.min(alert.timestamp)));
        entry.last_seen = Some(entry.last_seen.map_or(alert.timestamp, |last| last.max(alert.timestamp)));
    }

    /// Servers that exposed a cleartext credential, or a weak one, most exposed first.
    pub fn reports(&self) -> Vec<ServerReport> {
        let mut reports: Vec<ServerReport> = self
            .servers
            .iter()
            .map(|((app_proto, ip, port), entry)| {
                let (user_names, more_user_names) = first_names(&entry.users);
                let last_seen = entry.last_seen.map(Timestamp::rfc3339_micros).unwrap_or_default();
                ServerReport {
                    timestamp: last_seen.clone(),
                    event_type: "server_report",
                    app_proto: *app_proto,
                    ip: *ip,
                    port: *port,
                    greeting: entry.greeting.clone(),
                    software: entry.software.clone(),
                    starttls_offered: entry.starttls_offered,
                    remediation: entry.remediation.unwrap_or(Remediation::Unknown),
                    cleartext: entry.cleartext,
                    weak: entry.weak,
                    successes: entry.successes,
                    failures: entry.failures,
                    unknown_outcomes: entry.unknown_outcomes,
                    users: entry.users.len(),
                    user_names,
                    username_form: entry.username_form,
                    more_user_names,
                    clients: entry.clients.len(),
                    mechanisms: entry.mechanisms.iter().cloned().collect(),
                    truncated: entry.truncated,
                    first_seen: entry.first_seen.map(Timestamp::rfc3339_micros).unwrap_or_default(),
                    last_seen,
                    schema_version: SCHEMA_VERSION,
                }
            })
            .collect();
        reports.sort_by_key(|r| (std::cmp::Reverse((r.cleartext, r.users, r.weak)), r.app_proto, r.ip, r.port));
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text::tests::sample_alert;

    fn login(user: &str, client: &str, outcome: Outcome, timestamp: &str) -> Event {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.credential.username = Some(user.to_string());
            alert.credential.outcome = outcome;
            alert.flow.src_ip = client.parse().unwrap();
            alert.timestamp = Timestamp::from_rfc3339(timestamp).unwrap();
        }
        event
    }

    #[test]
    fn report_counts_users_clients_outcomes_and_keeps_first_and_last_seen() {
        let mut summary = ServerSummary::default();
        summary.add(&login("b***", "192.0.2.1", Outcome::Success, "2026-11-27T09:00:02.000000Z"));
        summary.add(&login("a***", "192.0.2.2", Outcome::Failure, "2026-11-27T09:00:01.000000Z"));
        summary.add(&login("a***", "192.0.2.2", Outcome::Unknown, "2026-11-27T09:00:03.000000Z"));
        let [report] = summary.reports().try_into().unwrap();
        assert_eq!((report.cleartext, report.weak), (3, 0));
        assert_eq!((report.successes, report.failures, report.unknown_outcomes), (1, 1, 1));
        assert_eq!((report.users, report.clients), (2, 2));
        assert_eq!(report.user_names, ["a***", "b***"]);
        assert_eq!(report.first_seen, "2026-11-27T09:00:01.000000Z");
        assert_eq!(report.last_seen, "2026-11-27T09:00:03.000000Z");
        assert_eq!(report.timestamp, report.last_seen);
        assert_eq!(report.remediation, Remediation::ServerOffersNoTls);
        assert_eq!(report.software.as_deref(), Some("Dovecot"));
        assert_eq!(report.starttls_offered, Some(false));
    }

    /// A report learns from the posture what its alerts did not show, and keeps what they did.
    #[test]
    fn a_report_is_completed_from_the_posture_not_overruled() {
        let report = |starttls_offered: Option<bool>| {
            let mut event = sample_alert();
            if let Event::Credential(alert) = &mut event {
                alert.server.starttls_offered = starttls_offered;
                alert.remediation = Remediation::Unknown;
            }
            let mut summary = ServerSummary::default();
            summary.add(&event);
            summary.reports().remove(0)
        };
        let posture = |starttls_offered: Option<bool>, login_disabled: bool| {
            let mut posture = crate::output::posture_table::tests::posture_showing("x");
            posture.starttls_offered = starttls_offered;
            posture.login_disabled = login_disabled;
            posture
        };
        for (alerts_saw, posture_saw, login_disabled, offered, remediation) in [
            (None, Some(true), false, Some(true), Remediation::ClientSkippedStarttls),
            (None, Some(true), true, Some(true), Remediation::ServerIgnoresLogindisabled),
            (None, Some(false), false, Some(false), Remediation::ServerOffersNoTls),
            (None, None, false, None, Remediation::Unknown),
            (Some(false), Some(true), false, Some(false), Remediation::Unknown),
        ] {
            let mut report = report(alerts_saw);
            report.complete_from(&posture(posture_saw, login_disabled));
            assert_eq!(
                (report.starttls_offered, report.remediation),
                (offered, remediation),
                "{alerts_saw:?} {posture_saw:?}"
            );
        }
    }

    #[test]
    fn accounts_masked_alike_count_as_distinct_users() {
        let policy = crate::alert::RedactionPolicy::default();
        let mut summary = ServerSummary::default();
        for raw in [&b"alice@corp.test"[..], b"adam@corp.test", b"anna@corp.test", b"adam@corp.test"] {
            let mut event = login(&policy.render_username(raw), "192.0.2.1", Outcome::Success, "2026-11-27T09:00:00Z");
            if let Event::Credential(alert) = &mut event {
                alert.credential.user_key = Some(policy.user_key(raw));
            }
            summary.add(&event);
        }
        let [report] = summary.reports().try_into().unwrap();
        assert_eq!(report.users, 3);
        assert_eq!(report.user_names, ["a***@corp.test"], "names as shown, each once");
    }

    /// The servers are kept in a hash map: the list must not depend on its order.
    #[test]
    fn reports_list_the_most_exposed_first_then_by_server() {
        let on = |server: &str, port: u16, user: &str| {
            let mut event = login(user, "192.0.2.1", Outcome::Success, "2026-11-27T09:00:00.000000Z");
            if let Event::Credential(alert) = &mut event {
                alert.flow.dest_ip = server.parse().unwrap();
                alert.flow.dest_port = port;
            }
            event
        };
        let servers = [("198.51.100.9", 110), ("198.51.100.2", 143), ("198.51.100.2", 110), ("198.51.100.30", 110)];
        let mut summary = ServerSummary::default();
        for (n, (server, port)) in servers.iter().enumerate() {
            summary.add(&on(server, *port, &format!("u{n}***")));
        }
        summary.add(&on("198.51.100.30", 110, "extra***"));
        let listed: Vec<(String, u16)> =
            summary.reports().iter().map(|report| (report.ip.to_string(), report.port)).collect();
        let expected = [("198.51.100.30", 110), ("198.51.100.2", 110), ("198.51.100.2", 143), ("198.51.100.9", 110)];
        assert_eq!(listed, expected.map(|(ip, port)| (ip.to_string(), port)));
    }

    #[test]
    fn exactly_as_many_names_as_listed_are_not_more() {
        let mut summary = ServerSummary::default();
        for n in 0..MAX_LISTED_USERS {
            summary.add(&login(&format!("u{n:03}***"), "192.0.2.1", Outcome::Success, "2026-11-27T09:00:00.000000Z"));
        }
        let report = &summary.reports()[0];
        assert_eq!(report.user_names.len(), MAX_LISTED_USERS);
        assert!(!report.more_user_names);
        assert!(!serde_json::to_string(report).unwrap().contains("more_user_names"));
    }

    #[test]
    fn user_names_are_capped_but_counted() {
        let mut summary = ServerSummary::default();
        for n in 0..MAX_LISTED_USERS + 10 {
            summary.add(&login(&format!("u{n:03}***"), "192.0.2.1", Outcome::Success, "2026-11-27T09:00:00.000000Z"));
        }
        let report = &summary.reports()[0];
        assert_eq!(report.users, MAX_LISTED_USERS + 10);
        assert_eq!(report.user_names.len(), MAX_LISTED_USERS);
        assert!(report.more_user_names);
        assert!(!report.truncated);
        assert!(!serde_json::to_string(report).unwrap().contains("truncated"));
    }

    /// A spray of logins to ever new servers with ever new names fills the summary up to its
    /// limits and no further; the counts go on.
    #[test]
    fn a_spray_of_logins_is_kept_within_the_limits() {
        let limits = TrackerLimits { servers: 3, values: 100 };
        let mut summary = ServerSummary::with_limits(limits);
        for n in 0..1_000u32 {
            let mut event = login(&format!("u{n}***"), "192.0.2.1", Outcome::Success, "2026-11-27T09:00:00.000000Z");
            if let Event::Credential(alert) = &mut event {
                alert.flow.dest_ip = std::net::Ipv4Addr::from(0xc633_6400 + n % 10).into();
            }
            summary.add(&event);
        }
        let reports = summary.reports();
        assert_eq!(reports.len(), limits.servers);
        assert_eq!(summary.untracked_alerts(), 700, "7 of the 10 servers were past the limit");
        assert_eq!(
            reports.iter().map(|report| report.cleartext).sum::<u64>(),
            300,
            "every alert of a kept server counts"
        );
        let kept = reports.iter().map(|report| report.users + report.clients + report.mechanisms.len()).sum::<usize>();
        assert_eq!(kept, limits.values);
        assert!(reports.iter().all(|report| report.truncated));
        assert!(serde_json::to_string(&reports[0]).unwrap().contains(r#""truncated":true"#));
        assert_eq!(reports[0].shown(reports[0].users), format!("{}+", reports[0].users), "people see a lower bound");
        crate::tracker_limits::assert_matches_event_schema(&serde_json::to_value(&reports[0]).unwrap());
    }
}
