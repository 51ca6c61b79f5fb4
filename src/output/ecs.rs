//! Elastic Common Schema 8.x documents: the standard fields a SIEM keys on (`@timestamp`,
//! `event.*`, `source.*`, `destination.*`, `user.*`, `network.*`, `observer.*`, `rule.*`), and
//! everything ECS has no field for under the custom `credwatch.*` namespace, with the native names.
//! Fields the event does not know are left out, never sent as null.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};

use crate::alert::StatsEvent;
use crate::capture::Timestamp;
use crate::posture::ServerPosture;

use super::{Record, RepeatSummary, ServerReport};
use crate::alert::{
    AnomalyAlert, Credential, CredentialAlert, Event, EventType, FlowMeta, Outcome, Remediation, SecretKind,
    ServerIdentity, UsernameForm,
};

/// The ECS release whose field names these documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// The sensor itself, as `observer.*` describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observer {
    /// Host name of the machine credwatch runs on; empty when unknown.
    pub hostname: String,
}

impl Observer {
    /// This machine, named as the kernel knows it.
    pub fn local() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_string())
            .unwrap_or_default();
        Observer { hostname }
    }
}

/// The ECS document of one record.
pub fn document(record: Record<'_>, observer: &Observer) -> Value {
    let mut document = match record {
        Record::Event(Event::Credential(alert)) => credential(alert),
        Record::Event(Event::Anomaly(alert)) => anomaly(alert),
        Record::Repeat(summary) => repeat(summary),
        Record::Server(report) => server_report(report),
        Record::Posture(posture) => server_posture(posture),
        Record::Event(Event::Stats(stats)) => stats_document(stats),
        Record::Event(Event::Session(_)) => Value::Null,
    };
    if let Value::Object(fields) = &mut document {
        fields.insert("ecs".to_string(), json!({ "version": ECS_VERSION }));
        fields.insert(
            "observer".to_string(),
            json!({
                "hostname": non_empty(&observer.hostname),
                "type": "ids",
                "vendor": "credwatch",
                "product": "credwatch",
                "version": env!("CARGO_PKG_VERSION"),
            }),
        );
    }
    prune(&mut document);
    document
}

/// ECS `event.severity` on the scale Elastic's detection rules use for risk.
fn numeric_severity(severity: &str) -> u8 {
    match severity {
        "high" => 73,
        "medium" => 47,
        _ => 21,
    }
}

fn rule_name(event_type: EventType) -> &'static str {
    match event_type {
        EventType::CleartextCredential => "Mail credential sent in clear",
        EventType::WeakCredential => "Crackable mail challenge-response sent in clear",
        EventType::Anomaly => "Mail protocol anomaly",
    }
}

fn network_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "ipv4",
        IpAddr::V6(_) => "ipv6",
    }
}

/// `source`, `destination`, `client`, `server` and `network` for a flow (client = source).
fn flow_fields(flow: &FlowMeta, protocol: Option<&str>) -> serde_json::Map<String, Value> {
    let source = json!({ "ip": flow.src_ip, "port": flow.src_port });
    let destination = json!({ "ip": flow.dest_ip, "port": flow.dest_port });
    let vlan = |tag: Option<&u16>| tag.map(|id| json!({ "id": id.to_string() }));
    let inner = if flow.vlan.len() > 1 { flow.vlan.last() } else { None };
    let network = json!({
        "transport": flow.proto.to_ascii_lowercase(),
        "type": network_type(flow.src_ip),
        "protocol": protocol,
        "community_id": flow.community_id(),
        "vlan": vlan(flow.vlan.first()),
        "inner": inner.map(|id| json!({ "vlan": vlan(Some(id)) })),
    });
    let mut fields = serde_json::Map::new();
    fields.insert("source".to_string(), source.clone());
    fields.insert("client".to_string(), source);
    fields.insert("destination".to_string(), destination.clone());
    fields.insert("server".to_string(), destination);
    fields.insert("network".to_string(), network);
    fields
}

/// The ECS document of a credential alert; `repeat` adds the dedup fields for summaries.
fn credential_document(alert: &CredentialView<'_>, event: Value, message: String) -> Value {
    let mut fields = flow_fields(alert.flow, Some(alert.app_proto));
    let username = alert.credential.username.as_deref();
    fields.insert("@timestamp".to_string(), json!(alert.timestamp));
    fields.insert("message".to_string(), json!(message));
    fields.insert("event".to_string(), event);
    fields.insert(
        "rule".to_string(),
        json!({
            "id": alert.event_type.name(),
            "name": rule_name(alert.event_type),
            "category": "credential_exposure",
            "ruleset": "credwatch",
        }),
    );
    // ECS's user fields identify one account: a name in full is `user.name`, a keyed digest
    // `user.hash` ("to correlate information for a user in anonymized form"); a masked name,
    // which accounts share (`a***@corp.test`), is neither: it stays under `credwatch.credential`.
    let (name, hash) = match alert.credential.username_form {
        UsernameForm::Full => (username, None),
        UsernameForm::Hashed => (None, username),
        UsernameForm::Masked => (None, None),
    };
    fields.insert("user".to_string(), json!({ "name": name, "hash": hash }));
    fields.insert(
        "related".to_string(),
        json!({ "ip": [alert.flow.src_ip, alert.flow.dest_ip], "user": name.map(|u| vec![u]) }),
    );
    // The login crossed without TLS: that is what every credential alert reports.
    fields.insert("tls".to_string(), json!({ "established": false }));
    fields.insert("user_agent".to_string(), json!({ "original": alert.client_software }));
    fields.insert(
        "credwatch".to_string(),
        json!({
            "event_type": alert.event_type.name(),
            "severity": alert.severity,
            "flow_id": alert.flow.flow_id,
            "midstream": alert.flow.midstream.then_some(true),
            "app_proto": alert.app_proto,
            "credential": alert.credential,
            "server": alert.server,
            "remediation": alert.remediation,
            "schema_version": alert.schema_version,
        }),
    );
    Value::Object(fields)
}

/// The parts of an alert an ECS credential document needs (shared by alerts and summaries).
struct CredentialView<'a> {
    timestamp: Timestamp,
    event_type: EventType,
    severity: &'a str,
    flow: &'a FlowMeta,
    app_proto: &'static str,
    credential: &'a Credential,
    server: &'a ServerIdentity,
    client_software: Option<&'a str>,
    remediation: Remediation,
    schema_version: u32,
}

/// Characters of a user name a `message` shows: the name is whole in its own fields, and a
/// document must fit a syslog message of 8 KiB with all of its copies.
const MESSAGE_NAME_CHARS: usize = 64;

/// `text` cut to `chars` characters, `…` marking the cut.
fn cut(text: &str, chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(chars) {
        Some((end, _)) => Cow::Owned(format!("{}…", text.get(..end).unwrap_or(text))),
        None => Cow::Borrowed(text),
    }
}

fn describe(view: &CredentialView<'_>) -> String {
    let outcome = match view.credential.outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Unknown => "outcome unknown",
    };
    format!(
        "{} {} login ({outcome}) for {} from {} to {}",
        view.app_proto.to_ascii_uppercase(),
        view.credential.mechanism,
        view.credential
            .username
            .as_deref()
            .map_or(Cow::Borrowed("an unseen user"), |name| cut(name, MESSAGE_NAME_CHARS)),
        view.flow.src_ip,
        // `[2001:db8::6]:143`, as RFC 5952 section 6 writes an IPv6 address with a port.
        SocketAddr::new(view.flow.dest_ip, view.flow.dest_port),
    )
}

fn credential(alert: &CredentialAlert) -> Value {
    let view = CredentialView {
        timestamp: alert.timestamp,
        event_type: alert.event_type,
        severity: alert.severity,
        flow: &alert.flow,
        app_proto: alert.app_proto.name(),
        credential: &alert.credential,
        server: &alert.server,
        client_software: alert.client.software.as_deref(),
        remediation: alert.remediation,
        schema_version: alert.schema_version,
    };
    let event = json!({
        "kind": "alert",
        "category": ["authentication", "network"],
        "type": ["info"],
        "outcome": alert.credential.outcome,
        "action": alert.event_type.name(),
        "module": "credwatch",
        "dataset": "credwatch.alert",
        "severity": numeric_severity(alert.severity),
    });
    let what = match alert.credential.secret {
        SecretKind::Password => "Password",
        SecretKind::Token => "Bearer token",
        SecretKind::ChallengeResponse => "Crackable challenge-response",
    };
    let message = format!("{what} sent in clear: {}", describe(&view));
    credential_document(&view, event, message)
}

fn repeat(summary: &RepeatSummary) -> Value {
    let view = CredentialView {
        timestamp: summary.last_seen,
        event_type: summary.repeated_event_type,
        severity: summary.severity,
        flow: &summary.flow,
        app_proto: summary.app_proto.name(),
        credential: &summary.credential,
        server: &summary.server,
        client_software: summary.client.software.as_deref(),
        remediation: summary.remediation,
        schema_version: summary.schema_version,
    };
    // `event` kind, not `alert`: the first of these logins already raised the alert.
    let event = json!({
        "kind": "event",
        "category": ["authentication", "network"],
        "type": ["info"],
        "outcome": summary.credential.outcome,
        "action": summary.event_type,
        "module": "credwatch",
        "dataset": "credwatch.repeat",
        "severity": numeric_severity(summary.severity),
        "start": summary.first_seen,
        "end": summary.last_seen,
    });
    let message = format!("{} times since {}: {}", summary.repeat_count, summary.first_seen, describe(&view));
    let mut document = credential_document(&view, event, message);
    if let Some(custom) = document.get_mut("credwatch").and_then(Value::as_object_mut) {
        custom.insert("event_type".to_string(), json!(summary.event_type));
        custom.insert("repeated_event_type".to_string(), json!(summary.repeated_event_type));
        custom.insert("repeat_count".to_string(), json!(summary.repeat_count));
        custom.insert("first_seen".to_string(), json!(summary.first_seen));
        custom.insert("last_seen".to_string(), json!(summary.last_seen));
    }
    document
}

fn anomaly(alert: &AnomalyAlert) -> Value {
    let mut fields = flow_fields(&alert.flow, alert.app_proto.map(|p| p.name()));
    fields.insert("@timestamp".to_string(), json!(alert.timestamp));
    fields.insert("message".to_string(), json!(alert.anomaly.detail));
    fields.insert(
        "event".to_string(),
        json!({
            "kind": "alert",
            "category": ["network", "intrusion_detection"],
            "type": ["info"],
            "action": alert.anomaly.kind,
            "module": "credwatch",
            "dataset": "credwatch.anomaly",
            "severity": numeric_severity(alert.severity),
        }),
    );
    fields.insert(
        "rule".to_string(),
        json!({
            "id": alert.anomaly.kind,
            "name": rule_name(alert.event_type),
            "category": "protocol_anomaly",
            "ruleset": "credwatch",
        }),
    );
    fields.insert("related".to_string(), json!({ "ip": [alert.flow.src_ip, alert.flow.dest_ip] }));
    fields.insert(
        "credwatch".to_string(),
        json!({
            "event_type": alert.event_type.name(),
            "severity": alert.severity,
            "flow_id": alert.flow.flow_id,
            "midstream": alert.flow.midstream.then_some(true),
            "app_proto": alert.app_proto,
            "anomaly": alert.anomaly,
            "schema_version": alert.schema_version,
        }),
    );
    Value::Object(fields)
}

fn server_report(report: &ServerReport) -> Value {
    let server = json!({ "ip": report.ip, "port": report.port });
    json!({
        "@timestamp": report.last_seen,
        "message": format!(
            "{} server {} exposed {} cleartext and {} weak credential(s) of {} user(s)",
            report.app_proto.name().to_ascii_uppercase(),
            SocketAddr::new(report.ip, report.port),
            report.cleartext,
            report.weak,
            report.shown(report.users),
        ),
        "event": {
            "kind": "state",
            "category": ["network"],
            "type": ["info"],
            "action": report.event_type,
            "module": "credwatch",
            "dataset": "credwatch.server_report",
            "start": report.first_seen,
            "end": report.last_seen,
        },
        "server": server,
        "destination": server,
        "network": { "protocol": report.app_proto, "transport": "tcp", "type": network_type(report.ip) },
        // Names in full only: masks and digests are no user names (see `credential_document`).
        "related": {
            "ip": [report.ip],
            "user": (report.username_form == UsernameForm::Full && !report.user_names.is_empty())
                .then_some(&report.user_names),
        },
        "credwatch": {
            "event_type": report.event_type,
            "server_report": report,
            "schema_version": report.schema_version,
        },
    })
}

fn stats_document(stats: &StatsEvent) -> Value {
    json!({
        "@timestamp": stats.timestamp,
        "message": format!(
            "{} packets, {} kernel drops, {} queue drops, {} active flows, {} cleartext credential(s)",
            stats.packets, stats.kernel_drops, stats.queue_drops, stats.flows_active, stats.alerts.cleartext_credential
        ),
        "event": {
            "kind": "metric",
            "category": ["network"],
            "type": ["info"],
            "action": stats.event_type,
            "module": "credwatch",
            "dataset": "credwatch.stats",
        },
        "credwatch": {
            "event_type": stats.event_type,
            "stats": stats,
            "schema_version": stats.schema_version,
        },
    })
}

fn server_posture(posture: &ServerPosture) -> Value {
    let server = json!({ "ip": posture.ip, "port": posture.port });
    json!({
        "@timestamp": posture.last_seen,
        "message": format!(
            "{} server {} TLS posture {}: {}",
            posture.app_proto.name().to_ascii_uppercase(),
            SocketAddr::new(posture.ip, posture.port),
            posture.class.name(),
            posture.remediation,
        ),
        "event": {
            "kind": "state",
            "category": ["network", "configuration"],
            "type": ["info"],
            "action": posture.event_type,
            "module": "credwatch",
            "dataset": "credwatch.server_posture",
            "start": posture.first_seen,
            "end": posture.last_seen,
        },
        "server": server,
        "destination": server,
        "network": { "protocol": posture.app_proto, "transport": "tcp", "type": network_type(posture.ip) },
        "related": { "ip": [posture.ip] },
        "credwatch": {
            "event_type": posture.event_type,
            "server_posture": posture,
            "schema_version": posture.schema_version,
        },
    })
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

/// Removes nulls and the objects left empty by that, recursively.
fn prune(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for field in fields.values_mut() {
                prune(field);
            }
            fields.retain(|_, field| !field.is_null() && !matches!(field, Value::Object(inner) if inner.is_empty()));
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text::tests::sample_alert;

    fn observer() -> Observer {
        Observer { hostname: "sensor1".to_string() }
    }

    #[test]
    fn credential_alert_maps_field_by_field() {
        let event = sample_alert();
        let doc = document(Record::Event(&event), &observer());
        assert_eq!(doc["@timestamp"], "2026-11-27T09:00:00.039000Z");
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        assert_eq!(doc["event"]["kind"], "alert");
        assert_eq!(doc["event"]["category"], json!(["authentication", "network"]));
        assert_eq!(doc["event"]["type"], json!(["info"]));
        assert_eq!(doc["event"]["outcome"], "success");
        assert_eq!(doc["event"]["module"], "credwatch");
        assert_eq!(doc["event"]["dataset"], "credwatch.alert");
        assert_eq!(doc["event"]["action"], "cleartext_credential");
        assert_eq!(doc["event"]["severity"], 73);
        assert_eq!(doc["source"], json!({ "ip": "192.0.2.10", "port": 50110 }));
        assert_eq!(doc["client"], doc["source"]);
        assert_eq!(doc["destination"], json!({ "ip": "198.51.100.5", "port": 110 }));
        assert_eq!(doc["server"], doc["destination"]);
        assert_eq!(doc["network"]["protocol"], "pop3");
        assert_eq!(doc["network"]["transport"], "tcp");
        assert_eq!(doc["network"]["type"], "ipv4");
        assert_eq!(doc["network"]["vlan"]["id"], "100");
        assert_eq!(doc["network"]["inner"]["vlan"]["id"], "200");
        let Event::Credential(alert) = &event else { unreachable!() };
        assert_eq!(doc["network"]["community_id"], alert.flow.community_id().as_str());
        assert_eq!(doc["observer"]["hostname"], "sensor1");
        assert_eq!(doc["observer"]["type"], "ids");
        assert_eq!(doc["observer"]["product"], "credwatch");
        assert_eq!(doc["rule"]["id"], "cleartext_credential");
        assert_eq!(doc["rule"]["name"], "Mail credential sent in clear");
        assert_eq!(doc["tls"]["established"], false);
        assert_eq!(doc["user_agent"]["original"], "Thunderbird 128.4");
        assert_eq!(doc["related"]["ip"], json!(["192.0.2.10", "198.51.100.5"]));
        assert!(doc.get("user").is_none() && doc["related"].get("user").is_none(), "a mask is no user name: {doc}");
        assert_eq!(doc["credwatch"]["credential"]["username"], "a***");
        assert_eq!(doc["credwatch"]["credential"]["mechanism"], "USER/PASS");
        assert_eq!(doc["credwatch"]["credential"]["secret"], "password");
        assert_eq!(doc["credwatch"]["server"]["software"], "Dovecot");
        assert_eq!(doc["credwatch"]["server"]["starttls_offered"], false);
        assert_eq!(doc["credwatch"]["remediation"], "server_offers_no_tls");
        assert_eq!(doc["credwatch"]["flow_id"], 42);
        assert!(doc["credwatch"].get("midstream").is_none());
        let message = doc["message"].as_str().unwrap();
        assert_eq!(
            message,
            "Password sent in clear: POP3 USER/PASS login (success) for a*** from 192.0.2.10 to 198.51.100.5:110"
        );
    }

    /// ECS's user fields name one account: a name in full is `user.name` (and `related.user`), a
    /// keyed digest `user.hash`; a masked name, which accounts share, is neither.
    #[test]
    fn user_fields_follow_how_the_name_is_written() {
        for (form, shown, user, related) in [
            (UsernameForm::Full, "alice", json!({ "name": "alice" }), json!(["alice"])),
            (
                UsernameForm::Hashed,
                "hmac-sha256:4363d9e365c39b44",
                json!({ "hash": "hmac-sha256:4363d9e365c39b44" }),
                Value::Null,
            ),
            (UsernameForm::Masked, "a***", Value::Null, Value::Null),
        ] {
            let mut event = sample_alert();
            if let Event::Credential(alert) = &mut event {
                alert.credential.username = Some(shown.to_string());
                alert.credential.username_form = form;
            }
            let doc = document(Record::Event(&event), &observer());
            assert_eq!(doc["user"], user, "{form:?}");
            assert_eq!(doc["related"]["user"], related, "{form:?}");
            let mut summary = crate::output::ServerSummary::default();
            summary.add(&event);
            let [report] = summary.reports().try_into().unwrap();
            let doc = document(Record::Server(&report), &observer());
            assert_eq!(doc["related"]["user"], related, "server report, {form:?}");
        }
    }

    /// The sentence shows a long user name's start; the name is whole in its own fields.
    #[test]
    fn a_message_shows_the_start_of_a_long_user_name() {
        let mut event = sample_alert();
        let long = format!("{}@example.test", "é".repeat(100));
        if let Event::Credential(alert) = &mut event {
            alert.credential.username = Some(long.clone());
            alert.credential.username_form = UsernameForm::Full;
        }
        let doc = document(Record::Event(&event), &observer());
        let shown = format!("for {}… from", "é".repeat(64));
        assert!(doc["message"].as_str().unwrap().contains(&shown), "{}", doc["message"]);
        assert_eq!(doc["user"]["name"], long);
    }

    /// `2001:db8::6:110` would read as another address: a port follows an IPv6 address in
    /// brackets (RFC 5952 section 6), as the text output writes it.
    #[test]
    fn messages_bracket_an_ipv6_server_address() {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.flow.src_ip = "2001:db8::20".parse().unwrap();
            alert.flow.dest_ip = "2001:db8::6".parse().unwrap();
        }
        let doc = document(Record::Event(&event), &Observer::default());
        assert_eq!(
            doc["message"],
            "Password sent in clear: POP3 USER/PASS login (success) for a*** from 2001:db8::20 to [2001:db8::6]:110"
        );
        let mut summary = crate::output::ServerSummary::default();
        summary.add(&event);
        let [report] = summary.reports().try_into().unwrap();
        let doc = document(Record::Server(&report), &Observer::default());
        assert!(doc["message"].as_str().unwrap().starts_with("POP3 server [2001:db8::6]:110 exposed"), "{doc}");
    }

    #[test]
    fn nothing_is_null_in_a_document() {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.credential.username = None;
            alert.client.software = None;
            alert.flow.vlan.clear();
        }
        let doc = document(Record::Event(&event), &Observer::default());
        let text = doc.to_string();
        assert!(!text.contains("null"), "{text}");
        assert!(doc.get("user").is_none() && doc["network"].get("vlan").is_none());
        assert!(doc["observer"].get("hostname").is_none());
    }
}
