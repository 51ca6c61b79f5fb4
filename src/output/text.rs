//! Text for people: one aligned line per event, then a table of the servers at risk.

use std::io::{self, Write};

use super::{ServerReport, Sink};
use crate::alert::{Event, EventType, Outcome};

/// ANSI colours, used only when the output is a terminal and `NO_COLOR` is unset.
struct Palette {
    high: &'static str,
    medium: &'static str,
    dim: &'static str,
    reset: &'static str,
}

const COLOURS: Palette = Palette { high: "\x1b[1;31m", medium: "\x1b[33m", dim: "\x1b[2m", reset: "\x1b[0m" };
const PLAIN: Palette = Palette { high: "", medium: "", dim: "", reset: "" };

pub struct TextSink<W: Write> {
    out: W,
    palette: &'static Palette,
}

impl<W: Write> TextSink<W> {
    pub fn new(out: W, colour: bool) -> Self {
        TextSink { out, palette: if colour { &COLOURS } else { &PLAIN } }
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Unknown => "unknown",
    }
}

impl<W: Write + Send> Sink for TextSink<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let p = self.palette;
        match event {
            Event::Credential(alert) => {
                let (label, colour) = match alert.event_type {
                    EventType::CleartextCredential => ("CLEARTEXT", p.high),
                    _ => ("WEAK     ", p.medium),
                };
                let client = std::net::SocketAddr::new(alert.flow.src_ip, alert.flow.src_port);
                let server = std::net::SocketAddr::new(alert.flow.dest_ip, alert.flow.dest_port);
                writeln!(
                    self.out,
                    "{ts}  {colour}{label}{reset}  {proto:<4}  {mech:<20} {user:<24} {outcome:<7}  {client} -> {server}  {dim}{greeting}{reset}",
                    ts = alert.timestamp,
                    reset = p.reset,
                    dim = p.dim,
                    proto = alert.app_proto.name(),
                    mech = alert.credential.mechanism,
                    user = alert.credential.username.as_deref().unwrap_or("(unseen)"),
                    outcome = outcome_word(alert.credential.outcome),
                    greeting = alert.server.greeting.as_deref().unwrap_or(""),
                )
            }
            Event::Anomaly(alert) => writeln!(
                self.out,
                "{}  {}ANOMALY{}    {:?}: {}  {} -> {}",
                alert.timestamp,
                p.medium,
                p.reset,
                alert.anomaly.kind,
                alert.anomaly.detail,
                std::net::SocketAddr::new(alert.flow.src_ip, alert.flow.src_port),
                std::net::SocketAddr::new(alert.flow.dest_ip, alert.flow.dest_port),
            ),
            Event::Stats(stats) => writeln!(
                self.out,
                "{}  {}STATS{}      packets {} bytes {} drops kernel {} interface {} queue {}  flows {} evicted {}  gaps {}  alerts {}/{}/{}",
                stats.timestamp,
                p.dim,
                p.reset,
                stats.packets,
                stats.bytes,
                stats.kernel_drops,
                stats.interface_drops,
                stats.queue_drops,
                stats.flows_active,
                stats.flows_evicted,
                stats.gaps,
                stats.alerts.cleartext_credential,
                stats.alerts.weak_credential,
                stats.alerts.anomaly,
            ),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn finish(&mut self, servers: &[ServerReport]) -> io::Result<()> {
        if servers.is_empty() {
            writeln!(self.out, "No credential crossed in clear.")?;
            return self.out.flush();
        }
        let at_risk = servers.iter().filter(|s| s.cleartext > 0).count();
        writeln!(self.out)?;
        writeln!(self.out, "{at_risk} server(s) accepted credentials in clear:")?;
        writeln!(
            self.out,
            "  {:<5} {:<40} {:>9} {:>5} {:>5} {:>7}  {:<9} {:<24} SOFTWARE / GREETING",
            "PROTO", "SERVER", "CLEARTEXT", "WEAK", "USERS", "CLIENTS", "STARTTLS", "REMEDIATION"
        )?;
        for server in servers {
            let address = std::net::SocketAddr::new(server.ip, server.port).to_string();
            let starttls = match server.starttls_offered {
                Some(true) => "offered",
                Some(false) => "no",
                None => "?",
            };
            let remediation = serde_json::to_value(server.remediation)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let identity = server.software.as_deref().or(server.greeting.as_deref()).unwrap_or("");
            writeln!(
                self.out,
                "  {:<5} {:<40} {:>9} {:>5} {:>5} {:>7}  {:<9} {:<24} {}",
                server.app_proto.name(),
                address,
                server.cleartext,
                server.weak,
                server.users,
                server.clients,
                starttls,
                remediation,
                identity
            )?;
        }
        self.out.flush()
    }
}
