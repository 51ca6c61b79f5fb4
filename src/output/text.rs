//! Text for people: one aligned line per event, then a table of the servers at risk.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::borrow::Cow;
use std::io::{self, Write};
use std::net::SocketAddr;

use super::for_people::{escaped, escaped_or_empty};
use super::{Record, RepeatSummary, ServerReport, Sink};
use crate::alert::{CredentialAlert, Event, EventType, InterfaceStats, Outcome, Remediation};
use crate::capture::Timestamp;

/// ANSI colours, used only when the output is a terminal and `NO_COLOR` is unset.
pub(super) struct Palette {
    high: &'static str,
    medium: &'static str,
    dim: &'static str,
    reset: &'static str,
}

const COLOURS: Palette = Palette { high: "\x1b[1;31m", medium: "\x1b[33m", dim: "\x1b[2m", reset: "\x1b[0m" };
pub(super) const PLAIN: Palette = Palette { high: "", medium: "", dim: "", reset: "" };

pub struct TextSink<W: Write> {
    out: W,
    palette: &'static Palette,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, colour: bool) -> Self {
        TextSink { out, palette: if colour { &COLOURS } else { &PLAIN } }
    }
}

/// One line for a record, as the text format prints it (server reports get their own line form
/// for file and syslog sinks, where no table can be drawn).
pub(super) fn line(record: Record<'_>, p: &Palette) -> String {
    match record {
        Record::Event(Event::Credential(alert)) => {
            let label = match alert.event_type {
                EventType::CleartextCredential => "CLEARTEXT",
                _ => "WEAK     ",
            };
            credential_line(alert.timestamp, label, alert.event_type, &CredentialView::of(alert), p)
        }
        Record::Event(Event::Anomaly(alert)) => format!(
            "{}  {}ANOMALY{}    {}: {}  {} -> {}",
            alert.timestamp,
            p.medium,
            p.reset,
            alert.anomaly.kind.name(),
            escaped(&alert.anomaly.detail),
            SocketAddr::new(alert.flow.src_ip, alert.flow.src_port),
            SocketAddr::new(alert.flow.dest_ip, alert.flow.dest_port),
        ),
        Record::Repeat(summary) => {
            let view = CredentialView {
                proto: summary.app_proto.name(),
                mechanism: &summary.credential.mechanism,
                username: summary.credential.username.as_deref(),
                partial: summary.credential.partial,
                outcome: summary.credential.outcome,
                client: SocketAddr::new(summary.flow.src_ip, summary.flow.src_port),
                server: SocketAddr::new(summary.flow.dest_ip, summary.flow.dest_port),
                greeting: summary.server.greeting.as_deref(),
            };
            let label = format!("REPEAT x{:<3}", summary.repeat_count);
            let line = credential_line(summary.last_seen, &label, summary.repeated_event_type, &view, p);
            format!("{line}  (since {})", summary.first_seen)
        }
        Record::Server(server) => format!(
            "{}  SERVER     {:<4}  {}  cleartext={} weak={} users={} clients={} starttls={} remediation={}  {}",
            server.last_seen,
            server.app_proto.name(),
            SocketAddr::new(server.ip, server.port),
            server.cleartext,
            server.weak,
            server.shown(server.users),
            server.shown(server.clients),
            starttls_word(server.starttls_offered),
            remediation_word(server.remediation),
            escaped_or_empty(server.software.as_deref().or(server.greeting.as_deref())),
        ),
        Record::Posture(posture) => format!(
            "{}  POSTURE    {:<4}  {}  class={} starttls={} sessions={} tls={} cleartext_logins={}  {}",
            posture.last_seen,
            posture.app_proto.name(),
            SocketAddr::new(posture.ip, posture.port),
            posture.class.name(),
            starttls_word(posture.starttls_offered),
            posture.sessions,
            posture.sessions_tls,
            posture.cleartext_logins,
            escaped_or_empty(posture.software.as_deref().or(posture.greeting.as_deref())),
        ),
        Record::Event(Event::Stats(stats)) => format!(
            "{}  {}STATS{}      packets {} bytes {} undecoded {} drops kernel {} interface {} queue {}  flows {} evicted {} ({} inspecting)  gaps {} shed {}  alerts {}/{}/{}  undelivered {}{}",
            stats.timestamp,
            p.dim,
            p.reset,
            stats.packets,
            stats.bytes,
            stats.decode.unreadable(),
            stats.kernel_drops,
            stats.interface_drops,
            stats.queue_drops,
            stats.flows_active,
            stats.flows_evicted,
            stats.limits.inspected_flows_evicted,
            stats.gaps,
            stats.limits.buffer_sheds.saturating_add(stats.limits.buffer_skips),
            stats.alerts.cleartext_credential,
            stats.alerts.weak_credential,
            stats.alerts.anomaly,
            stats.undelivered(),
            blind_interfaces(&stats.interfaces),
        ),
        Record::Event(Event::Session(_)) => String::new(),
    }
}

/// The fields a credential line shows, shared by alerts and repeat summaries.
struct CredentialView<'a> {
    proto: &'static str,
    mechanism: &'a str,
    username: Option<&'a str>,
    /// The capture cut the line that carried it.
    partial: bool,
    outcome: Outcome,
    client: SocketAddr,
    server: SocketAddr,
    greeting: Option<&'a str>,
}

impl<'a> CredentialView<'a> {
    fn of(alert: &'a CredentialAlert) -> Self {
        CredentialView {
            proto: alert.app_proto.name(),
            mechanism: &alert.credential.mechanism,
            username: alert.credential.username.as_deref(),
            partial: alert.credential.partial,
            outcome: alert.credential.outcome,
            client: SocketAddr::new(alert.flow.src_ip, alert.flow.src_port),
            server: SocketAddr::new(alert.flow.dest_ip, alert.flow.dest_port),
            greeting: alert.server.greeting.as_deref(),
        }
    }
}

fn credential_line(
    timestamp: Timestamp,
    label: &str,
    event_type: EventType,
    view: &CredentialView<'_>,
    p: &Palette,
) -> String {
    let colour = match event_type {
        EventType::CleartextCredential => p.high,
        _ => p.medium,
    };
    let mechanism = escaped(view.mechanism);
    format!(
        "{timestamp}  {colour}{label}{reset}  {proto:<4}  {mech:<20} {user:<24} {outcome:<7}  {client} -> {server}  {dim}{greeting}{reset}",
        reset = p.reset,
        dim = p.dim,
        proto = view.proto,
        mech = if view.partial { Cow::Owned(format!("{mechanism} (partial)")) } else { mechanism },
        user = view.username.map_or(Cow::Borrowed("(unseen)"), escaped),
        outcome = view.outcome.name(),
        client = view.client,
        server = view.server,
        greeting = escaped_or_empty(view.greeting),
    )
}

/// The interfaces whose capture failed and is being reopened (`  blind eth1,eth2`), or nothing:
/// a line that reads as quiet must not hide that it is blind.
fn blind_interfaces(interfaces: &[InterfaceStats]) -> String {
    let blind: Vec<&str> =
        interfaces.iter().filter(|interface| !interface.capturing).map(|interface| interface.name.as_str()).collect();
    if blind.is_empty() {
        String::new()
    } else {
        format!("  blind {}", escaped(&blind.join(",")))
    }
}

fn starttls_word(offered: Option<bool>) -> &'static str {
    match offered {
        Some(true) => "offered",
        Some(false) => "no",
        None => "?",
    }
}

fn remediation_word(remediation: Remediation) -> String {
    serde_json::to_value(remediation).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl<W: Write + Send> Sink for TextSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        if matches!(event, Event::Session(_)) {
            return Ok(());
        }
        writeln!(self.out, "{}", line(Record::Event(event), self.palette))
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        writeln!(self.out, "{}", line(Record::Repeat(summary), self.palette))
    }

    fn server_report(&mut self, report: &ServerReport) -> io::Result<()> {
        writeln!(self.out, "{}", line(Record::Server(report), self.palette))
    }

    fn finish(&mut self, servers: &[ServerReport], unread: &super::Unread) -> io::Result<()> {
        if servers.is_empty() {
            if unread.is_empty() {
                writeln!(self.out, "No credential crossed in clear.")?;
            } else {
                let (words, see_also) = (unread.words(), unread.see_also());
                writeln!(self.out, "No credential crossed in clear in what could be read: {words}{see_also}.")?;
            }
            return self.out.flush();
        }
        let in_clear = servers.iter().filter(|s| s.cleartext > 0).count();
        writeln!(self.out)?;
        writeln!(
            self.out,
            "{} server(s) exposed credentials: {in_clear} took passwords or tokens in clear, {} only crackable challenge-responses.",
            servers.len(),
            servers.len() - in_clear
        )?;
        // As wide as the longest protocol name listed (`managesieve`).
        let proto = servers.iter().map(|server| server.app_proto.name().len()).fold(5, usize::max);
        writeln!(
            self.out,
            "  {:<proto$} {:<40} {:>9} {:>5} {:>5} {:>7}  {:<9} {:<24} SOFTWARE / GREETING",
            "PROTO", "SERVER", "CLEARTEXT", "WEAK", "USERS", "CLIENTS", "STARTTLS", "REMEDIATION"
        )?;
        for server in servers {
            let address = SocketAddr::new(server.ip, server.port).to_string();
            let starttls = starttls_word(server.starttls_offered);
            let remediation = remediation_word(server.remediation);
            let identity = escaped_or_empty(server.software.as_deref().or(server.greeting.as_deref()));
            writeln!(
                self.out,
                "  {:<proto$} {:<40} {:>9} {:>5} {:>5} {:>7}  {:<9} {:<24} {}",
                server.app_proto.name(),
                address,
                server.cleartext,
                server.weak,
                server.shown(server.users),
                server.shown(server.clients),
                starttls,
                remediation,
                identity
            )?;
        }
        if !unread.is_empty() {
            writeln!(self.out, "Only what could be read is counted: {}{}.", unread.words(), unread.see_also())?;
        }
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::{AppProto, ClientIdentity, Credential, FlowMeta, SecretKind, ServerIdentity, SCHEMA_VERSION};

    /// A POP3 USER/PASS alert like the demo capture's first one.
    pub(crate) fn sample_alert() -> Event {
        let client_ip = "192.0.2.10".parse().unwrap();
        let server_ip = "198.51.100.5".parse().unwrap();
        Event::Credential(Box::new(CredentialAlert {
            timestamp: Timestamp::from_rfc3339("2026-11-27T09:00:00.039000Z").unwrap(),
            event_type: EventType::CleartextCredential,
            severity: "high",
            flow: FlowMeta {
                flow_id: 42,
                src_ip: client_ip,
                src_port: 50110,
                dest_ip: server_ip,
                dest_port: 110,
                proto: "TCP",
                vlan: vec![100, 200],
                midstream: false,
            },
            app_proto: AppProto::Pop3,
            credential: Credential {
                mechanism: "USER/PASS".into(),
                secret: SecretKind::Password,
                username: Some("a***".to_string()),
                user_key: None,
                username_form: crate::alert::UsernameForm::Masked,
                outcome: Outcome::Success,
                secret_length: Some(16),
                secret_fingerprint: None,
                partial: false,
            },
            server: ServerIdentity {
                ip: Some(server_ip),
                port: 110,
                greeting: Some("+OK Dovecot (Debian) ready.".into()),
                software: Some("Dovecot".into()),
                hostname: None,
                capabilities: ["USER"].into_iter().collect(),
                starttls_offered: Some(false),
                login_disabled: None,
            },
            client: ClientIdentity { software: Some("Thunderbird 128.4".into()) },
            remediation: Remediation::ServerOffersNoTls,
            schema_version: SCHEMA_VERSION,
        }))
    }

    #[test]
    fn alert_line_is_plain_without_colour_and_shows_no_secret_material() {
        let mut sink = TextSink::new(Vec::new(), false);
        sink.event(&sample_alert()).unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert!(text.starts_with("2026-11-27T09:00:00.039000Z  CLEARTEXT  pop3  USER/PASS"), "{text}");
        assert!(text.contains("a***") && text.contains("192.0.2.10:50110 -> 198.51.100.5:110"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn a_partial_credential_says_so_beside_its_mechanism() {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.credential.partial = true;
        }
        let mut sink = TextSink::new(Vec::new(), false);
        sink.event(&event).unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert!(text.contains("  USER/PASS (partial)  "), "{text}");
    }

    /// An alert whose user name, mechanism and greeting carry what a hostile client or server
    /// would put there to forge lines or drive the terminal.
    #[test]
    fn anomaly_line_names_the_kind_as_json_does() {
        let Event::Credential(alert) = sample_alert() else { unreachable!() };
        let anomaly = Event::Anomaly(Box::new(crate::alert::AnomalyAlert {
            timestamp: alert.timestamp,
            event_type: EventType::Anomaly,
            severity: "low",
            flow: alert.flow.clone(),
            app_proto: Some(AppProto::Pop3),
            anomaly: crate::alert::AnomalyInfo {
                kind: crate::alert::AnomalyKind::CleartextOnTlsPort,
                detail: "pop3 in clear on 995".into(),
            },
            schema_version: SCHEMA_VERSION,
        }));
        let mut sink = TextSink::new(Vec::new(), false);
        sink.event(&anomaly).unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert!(text.contains("ANOMALY    cleartext_on_tls_port: pop3 in clear on 995  192.0.2.10:50110"), "{text}");
    }

    pub(crate) fn hostile_alert() -> Event {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.credential.username = Some("\x1b[2K\r@corp.test\n2026-11-27T09:00:00Z  CLEARTEXT  fake".into());
            alert.credential.mechanism = "AUTH X\x1b]0;title\x07".into();
            alert.server.greeting = Some("+OK \u{9b}31m ready\r".into());
        }
        event
    }

    /// The closing counters in one line, with what a person needs to tell "quiet" from "blind":
    /// frames that could not be read, and bytes the memory bounds let go.
    #[test]
    fn stats_line_shows_drops_unreadable_frames_and_sheds() {
        let mut stats = crate::alert::StatsEvent { packets: 10, flows_evicted: 2, ..Default::default() };
        stats.decode.truncated = 3;
        stats.decode.encrypted = 1;
        stats.decode.not_ip = 7;
        stats.limits.buffer_sheds = 4;
        stats.limits.buffer_skips = 1;
        stats.limits.inspected_flows_evicted = 1;
        let output = |name: &str, dropped_queue_full, lost| crate::alert::OutputStats {
            name: name.into(),
            written: 9,
            dropped_queue_full,
            lost,
            errors: 1,
        };
        stats.outputs = vec![output("stdout", 0, 1), output("syslog+tcp://192.0.2.9:601", 5, 2)];
        let line = line(Record::Event(&Event::Stats(Box::new(stats))), &PLAIN);
        assert!(line.contains("packets 10 bytes 0 undecoded 4 drops"), "not_ip is no loss: {line}");
        assert!(line.contains("evicted 2 (1 inspecting)  gaps 0 shed 5  alerts 0/0/0"), "{line}");
        assert!(line.ends_with("  undelivered 8"), "what the outputs dropped or lost: {line}");
    }

    /// Live, an interface whose capture failed and is not back is named: the line would read as
    /// quiet otherwise.
    #[test]
    fn stats_line_names_the_blind_interfaces() {
        let interface =
            |name: &str, capturing| crate::alert::InterfaceStats { name: name.into(), capturing, ..Default::default() };
        let mut stats = crate::alert::StatsEvent {
            interfaces: vec![interface("eth0", true), interface("eth1", false), interface("eth2", false)],
            ..Default::default()
        };
        let blind = line(Record::Event(&Event::Stats(Box::new(stats.clone()))), &PLAIN);
        assert!(blind.ends_with("  undelivered 0  blind eth1,eth2"), "{blind}");
        stats.interfaces = vec![interface("eth0", true)];
        let capturing = line(Record::Event(&Event::Stats(Box::new(stats))), &PLAIN);
        assert!(capturing.ends_with("  undelivered 0"), "{capturing}");
    }

    #[test]
    fn wire_strings_cannot_break_the_line_or_reach_the_terminal_raw() {
        let mut sink = TextSink::new(Vec::new(), false);
        sink.event(&hostile_alert()).unwrap();
        let text = String::from_utf8(sink.out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one record, one line: {text:?}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("\\x1b[2K\\x0d@corp.test\\x0a2026"), "{text:?}");
        assert!(text.contains("AUTH X\\x1b]0;title\\x07") && text.contains("+OK \\x9b31m ready\\x0d"), "{text:?}");
    }

    #[test]
    fn invisible_format_characters_and_separators_show_escaped() {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.credential.username = Some("\u{202e}***@corp.test".into());
            alert.server.greeting = Some("+OK \u{2028}\u{2029}\u{feff} ready".into());
        }
        let line = line(Record::Event(&event), &PLAIN);
        assert!(line.contains("\\u{202e}***@corp.test"), "{line:?}");
        assert!(line.contains("+OK \\u{2028}\\u{2029}\\u{feff} ready"), "{line:?}");
    }

    /// The closing words never read as an all-clear when inputs could not be read.
    #[test]
    fn the_summary_says_when_inputs_could_not_be_read() {
        let summary = |servers: &[ServerReport], files: &[String], undecoded_frames: u64| {
            let mut sink = TextSink::new(Vec::new(), false);
            sink.finish(servers, &crate::output::Unread { files: files.to_vec(), undecoded_frames }).unwrap();
            String::from_utf8(sink.out).unwrap()
        };
        assert_eq!(summary(&[], &[], 0), "No credential crossed in clear.\n");
        let unread = ["a.pcap: cannot open".to_string()];
        assert_eq!(
            summary(&[], &unread, 0),
            "No credential crossed in clear in what could be read: 1 file could not be read to its end (see the \
             errors above).\n"
        );
        // Frames of a link type not read, or encrypted: read, but not looked into.
        assert_eq!(
            summary(&[], &[], 13),
            "No credential crossed in clear in what could be read: 13 frames could not be decoded (of a link type \
             not read, encrypted, or tunnelled too deep).\n"
        );
        let mut servers = crate::output::ServerSummary::default();
        servers.add(&sample_alert());
        let text = summary(&servers.reports(), &[unread[0].clone(), unread[0].clone()], 1);
        assert!(text.contains("1 server(s) exposed credentials"), "{text}");
        let last = text.lines().last().unwrap();
        assert_eq!(
            last,
            "Only what could be read is counted: 2 files could not be read to their end, 1 frame could not be decoded \
             (of a link type not read, encrypted, or tunnelled too deep) (see the errors above)."
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let mut sink = TextSink::new(Vec::new(), true);
        sink.event(&sample_alert()).unwrap();
        assert!(String::from_utf8(sink.out).unwrap().contains("\x1b[1;31mCLEARTEXT\x1b[0m"));
    }
}
