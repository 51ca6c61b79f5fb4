//! The servers at risk: one entry per server that exposed a credential, built from the alerts
//! (all of them: deduplication only thins what is printed, never what is counted).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::alert::{AppProto, Event, Outcome, Remediation, SecretKind, SCHEMA_VERSION};

/// How many user names a report lists, so that one busy server does not make a huge event.
pub const MAX_LISTED_USERS: usize = 50;

/// A server and what crossed in clear to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerReport {
    pub event_type: &'static str,
    pub app_proto: AppProto,
    pub ip: IpAddr,
    pub port: u16,
    pub greeting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
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
    /// Distinct user names as reported (masked, hashed or full, per policy).
    pub users: usize,
    /// Those names, sorted, at most [`MAX_LISTED_USERS`] of them (`users` is the full count).
    pub user_names: Vec<String>,
    /// Distinct client addresses.
    pub clients: usize,
    pub mechanisms: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub schema_version: u32,
}

#[derive(Default)]
struct Entry {
    greeting: Option<String>,
    software: Option<String>,
    starttls_offered: Option<bool>,
    remediation: Option<Remediation>,
    cleartext: u64,
    weak: u64,
    successes: u64,
    failures: u64,
    unknown_outcomes: u64,
    users: BTreeSet<String>,
    clients: BTreeSet<IpAddr>,
    mechanisms: BTreeSet<String>,
    first_seen: Option<String>,
    last_seen: Option<String>,
}

/// Accumulates the per-server summary over a run.
#[derive(Default)]
pub struct ServerSummary {
    servers: BTreeMap<(AppProto, IpAddr, u16), Entry>,
}

impl ServerSummary {
    pub fn add(&mut self, event: &Event) {
        let Event::Credential(alert) = event else { return };
        let entry = self.servers.entry((alert.app_proto, alert.flow.dest_ip, alert.flow.dest_port)).or_default();
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
        if let Some(user) = &alert.credential.username {
            entry.users.insert(user.clone());
        }
        entry.clients.insert(alert.flow.src_ip);
        entry.mechanisms.insert(alert.credential.mechanism.clone());
        if entry.first_seen.as_ref().is_none_or(|first| alert.timestamp < *first) {
            entry.first_seen = Some(alert.timestamp.clone());
        }
        if entry.last_seen.as_ref().is_none_or(|last| alert.timestamp > *last) {
            entry.last_seen = Some(alert.timestamp.clone());
        }
    }

    /// Servers that exposed a cleartext credential, or a weak one, most exposed first.
    pub fn reports(&self) -> Vec<ServerReport> {
        let mut reports: Vec<ServerReport> = self
            .servers
            .iter()
            .map(|((app_proto, ip, port), entry)| ServerReport {
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
                user_names: entry.users.iter().take(MAX_LISTED_USERS).cloned().collect(),
                clients: entry.clients.len(),
                mechanisms: entry.mechanisms.iter().cloned().collect(),
                first_seen: entry.first_seen.clone().unwrap_or_default(),
                last_seen: entry.last_seen.clone().unwrap_or_default(),
                schema_version: SCHEMA_VERSION,
            })
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse((r.cleartext, r.users, r.weak)));
        reports
    }
}
