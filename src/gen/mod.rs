//! A deterministic capture generator for benchmarks and end-to-end tests: the same seed and size
//! give the same capture, byte for byte, with the exact ground truth of every login it planted.
//!
//! Three kinds of traffic ([`TrafficKind`]):
//! * **mixed** enterprise traffic, about 1.7 % of its bytes mail (TLS, HTTP, SMB-like bulk, SSH,
//!   FTP, DNS over UDP, implicit-TLS mail; a quarter IPv6, a quarter in VLANs);
//! * **mail-heavy** traffic: thousands of concurrent POP3, IMAP and SMTP sessions with every login
//!   variation `mail` knows (SASL forms, literals, lower case, split, reordered and retransmitted
//!   segments, STARTTLS) and decoy login text inside message bodies;
//! * **many flows**: SYN probes, short sessions and connections that never close, about a million
//!   per gigabyte, with real logins among them.
//!
//! Logins use invented user names and passwords; the passwords are in the truth rows so that a
//! scorer can check they never appear in credwatch's output.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod background;
mod mail;
mod rng;
mod schedule;
pub mod truth;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::capture::Timestamp;
use crate::pcapwriter::{CapturedFrame, Conversation, ScriptError};

use mail::BodySizes;
pub use mail::MailProtocol;
pub use rng::Rng;
use schedule::Scheduler;
use truth::TruthRow;

/// The shape of the generated traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficKind {
    Mixed,
    MailHeavy,
    ManyFlows,
}

impl TrafficKind {
    pub const ALL: [TrafficKind; 3] = [TrafficKind::Mixed, TrafficKind::MailHeavy, TrafficKind::ManyFlows];

    /// The name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            TrafficKind::Mixed => "mixed",
            TrafficKind::MailHeavy => "mail-heavy",
            TrafficKind::ManyFlows => "many-flows",
        }
    }

    pub fn from_name(name: &str) -> Option<TrafficKind> {
        TrafficKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct GenConfig {
    pub kind: TrafficKind,
    /// Target file size in bytes; the capture stops at the first conversation that reaches it.
    pub size: u64,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Default)]
pub struct GenReport {
    pub frames: u64,
    pub bytes: u64,
    /// TCP connections and UDP exchanges.
    pub flows: u64,
    /// Bytes of mail sessions (frames whole, headers included).
    pub mail_bytes: u64,
    /// One row per planted login attempt (`expect_alert` tells which must alert).
    pub truth: Vec<TruthRow>,
}

/// Why generation failed. Each message holds its cause, which is therefore not also its
/// `source()`: an error-chain printer would say it twice.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("cannot write the capture: {0}")]
    Io(io::Error),
    #[error("generator bug: {0}")]
    Script(String),
}

impl From<io::Error> for GenError {
    fn from(error: io::Error) -> Self {
        GenError::Io(error)
    }
}

impl From<ScriptError> for GenError {
    fn from(error: ScriptError) -> Self {
        GenError::Script(error.to_string())
    }
}

/// Parses a size such as `10MB`, `1GB`, `512k` or `4096` (binary multiples: 1 MB = 2^20 bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// Capture time of the first frame (2023-11-14), far from any epoch edge.
const START: Timestamp = Timestamp::from_secs_nanos(1_700_000_000, 0);
/// Share of the mixed capture's bytes that are mail sessions (per mille).
const MIXED_MAIL_PER_MILLE: u64 = 17;
/// VLAN ids used for tagged flows; one flow in twenty of the tagged ones is QinQ.
const VLANS: [u16; 4] = [10, 20, 30, 100];
/// Client ports per client address before the next address is used.
const PORTS_PER_CLIENT: u64 = 60_000;

/// Writes a classic pcap capture (Ethernet, nanosecond) to `out`; `file` is the name the truth
/// rows give it. Returns the output and what was planted.
pub fn generate<W: Write>(config: &GenConfig, file: &str, out: W) -> Result<(W, GenReport), GenError> {
    let mut generator = Generator {
        rng: Rng::new(config.seed),
        kind: config.kind,
        file: file.to_string(),
        scheduler: Scheduler::new(out)?,
        now: START,
        next_client: 0,
        report: GenReport::default(),
    };
    while generator.scheduler.scheduled_bytes() < config.size {
        generator.next_flow()?;
    }
    let mut report = generator.report;
    report.bytes = generator.scheduler.scheduled_bytes();
    let out = generator.scheduler.finish()?;
    Ok((out, report))
}

/// Non-mail flow types of the mixed capture, with their weights (by count).
#[derive(Clone, Copy)]
enum Background {
    Dns,
    Http,
    Tls,
    Smb,
    Ssh,
    Ftp,
    ImplicitTlsMail,
}

const MIXED_BACKGROUND: [(Background, u64); 7] = [
    (Background::Dns, 35),
    (Background::Http, 25),
    (Background::Tls, 25),
    (Background::Smb, 3),
    (Background::Ssh, 4),
    (Background::Ftp, 2),
    (Background::ImplicitTlsMail, 6),
];

struct Generator<W: Write> {
    rng: Rng,
    kind: TrafficKind,
    file: String,
    scheduler: Scheduler<W>,
    /// Start time of the next flow; flows start in time order.
    now: Timestamp,
    next_client: u64,
    report: GenReport,
}

impl<W: Write> Generator<W> {
    fn next_flow(&mut self) -> Result<(), GenError> {
        match self.kind {
            TrafficKind::Mixed => self.mixed_flow()?,
            TrafficKind::MailHeavy => self.mail_heavy_flow()?,
            TrafficKind::ManyFlows => self.many_flows_flow()?,
        }
        self.report.flows += 1;
        Ok(())
    }

    fn mixed_flow(&mut self) -> Result<(), GenError> {
        self.advance(0, 400);
        let mail_share_low = self.report.mail_bytes * 1000 < self.scheduler.scheduled_bytes() * MIXED_MAIL_PER_MILLE;
        if mail_share_low {
            let bodies = BodySizes { min: 1_000, max: 20_000, max_messages: 3 };
            let protocol = self.pick_protocol();
            return self.mail(protocol, bodies, 1, 40);
        }
        let total: u64 = MIXED_BACKGROUND.iter().map(|(_, weight)| weight).sum();
        let mut ticket = self.rng.below(total);
        let mut chosen = Background::Dns;
        for (kind, weight) in MIXED_BACKGROUND {
            if ticket < weight {
                chosen = kind;
                break;
            }
            ticket -= weight;
        }
        match chosen {
            Background::Dns => self.dns(),
            Background::Http => {
                let bytes = self.rng.size(2_000, 300_000);
                self.tcp(80, Duration::from_micros(30), |conv, rng| background::http(conv, rng, bytes))
            }
            Background::Tls => {
                let bytes = self.rng.size(5_000, 1_500_000);
                self.tcp(443, Duration::from_micros(30), |conv, rng| background::tls(conv, rng, bytes))
            }
            Background::Smb => {
                let bytes = self.rng.size(1_000_000, 12_000_000);
                self.tcp(445, Duration::from_micros(15), |conv, rng| background::smb(conv, rng, bytes))
            }
            Background::Ssh => {
                let bytes = self.rng.size(2_000, 100_000);
                self.tcp(22, Duration::from_micros(200), |conv, rng| background::ssh(conv, rng, bytes))
            }
            Background::Ftp => self.tcp(21, Duration::from_millis(5), background::ftp),
            Background::ImplicitTlsMail => {
                let port = *self.rng.pick(&[993, 995, 465]).unwrap_or(&993);
                self.tcp(port, Duration::from_millis(2), |conv, rng| background::tls(conv, rng, 20_000))
            }
        }
    }

    fn mail_heavy_flow(&mut self) -> Result<(), GenError> {
        self.advance(0, 400);
        match self.rng.below(100) {
            0..=3 => {
                let port = *self.rng.pick(&[993, 995, 465]).unwrap_or(&993);
                self.tcp(port, Duration::from_millis(5), |conv, rng| background::tls(conv, rng, 30_000))
            }
            4..=7 => self.dns(),
            _ => {
                let protocol = self.pick_protocol();
                let bodies = BodySizes { min: 500, max: 12_000, max_messages: 4 };
                self.mail(protocol, bodies, 5, 60)
            }
        }
    }

    fn many_flows_flow(&mut self) -> Result<(), GenError> {
        self.advance(0, 100);
        match self.rng.below(1000) {
            0..=449 => {
                let port = u16::try_from(self.rng.range(1, 10_000)).unwrap_or(1);
                let (mut conv, _) = self.conversation(port);
                let frames = background::syn_probe(&mut conv, &mut self.rng)?;
                self.schedule(frames, false)
            }
            450..=749 => {
                let bytes = self.rng.size(200, 3_000);
                self.tcp(80, Duration::from_micros(300), |conv, rng| background::http(conv, rng, bytes))
            }
            750..=939 => self.tcp(8080, Duration::from_micros(500), background::never_closed),
            940..=989 => self.dns(),
            _ => {
                let protocol = self.pick_protocol();
                let bodies = BodySizes { min: 300, max: 3_000, max_messages: 1 };
                self.mail(protocol, bodies, 1, 20)
            }
        }
    }

    fn pick_protocol(&mut self) -> MailProtocol {
        match self.rng.below(100) {
            0..=34 => MailProtocol::Pop3,
            35..=74 => MailProtocol::Imap,
            _ => MailProtocol::Smtp,
        }
    }

    /// Moves the clock on by a random gap of `min_micros..=max_micros`.
    fn advance(&mut self, min_micros: u64, max_micros: u64) {
        self.now = self.now.saturating_add(Duration::from_micros(self.rng.range(min_micros, max_micros)));
    }

    /// A conversation from a fresh client endpoint to a server on `port`, starting now, IPv6 a
    /// quarter of the time, in VLANs a quarter of the time; with its client and server.
    fn conversation(&mut self, port: u16) -> (Conversation, (SocketAddr, SocketAddr)) {
        let v6 = self.rng.percent(25);
        let client = self.client(v6);
        let server = SocketAddr::new(self.server(v6, port), port);
        let mut conv = Conversation::new(client, server);
        let client_isn = u32::try_from(self.rng.below(1 << 32)).unwrap_or(0);
        let server_isn = u32::try_from(self.rng.below(1 << 32)).unwrap_or(0);
        conv.isns(client_isn, server_isn).start_at(self.now);
        let vlans = self.vlans();
        conv.vlans(&vlans);
        (conv, (client, server))
    }

    fn vlans(&mut self) -> Vec<u16> {
        if !self.rng.percent(25) {
            return Vec::new();
        }
        let inner = *self.rng.pick(&VLANS).unwrap_or(&10);
        if self.rng.percent(5) {
            vec![1000, inner]
        } else {
            vec![inner]
        }
    }

    /// A client endpoint never used before in this capture, so that no two flows share a key.
    fn client(&mut self, v6: bool) -> SocketAddr {
        let index = self.next_client;
        self.next_client += 1;
        let host = index / PORTS_PER_CLIENT;
        let port = u16::try_from(1024 + index % PORTS_PER_CLIENT).unwrap_or(u16::MAX);
        let [_, _, _, _, _, b, c, d] = host.to_be_bytes();
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0xc, 0, 0, 0, u16::from(b), u16::from(c), u16::from(d)))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 64 | (b & 0x3f), c, d))
        };
        SocketAddr::new(ip, port)
    }

    /// One of a few servers per port.
    fn server(&mut self, v6: bool, port: u16) -> IpAddr {
        let [high, low] = port.to_be_bytes();
        let host = u8::try_from(self.rng.range(1, 8)).unwrap_or(1);
        if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x5, 0, 0, 0, 0, u16::from_be_bytes([high, low]), u16::from(host)))
        } else {
            IpAddr::V4(Ipv4Addr::new(172, 16, low.wrapping_add(high), host))
        }
    }

    /// A TCP flow to `port` scripted by `script`, segments `step` apart.
    fn tcp(
        &mut self,
        port: u16,
        step: Duration,
        script: impl FnOnce(&mut Conversation, &mut Rng),
    ) -> Result<(), GenError> {
        let (mut conv, _) = self.conversation(port);
        conv.step(step);
        let mut rng = self.rng.fork();
        script(&mut conv, &mut rng);
        let frames = conv.frames()?;
        self.schedule(frames, false)
    }

    /// A mail session with segments `min_ms..=max_ms` milliseconds apart, and its truth row.
    fn mail(&mut self, protocol: MailProtocol, bodies: BodySizes, min_ms: u64, max_ms: u64) -> Result<(), GenError> {
        let port = protocol.port(&mut self.rng);
        let (mut conv, ends) = self.conversation(port);
        conv.step(Duration::from_millis(self.rng.range(min_ms, max_ms)));
        let mut rng = self.rng.fork();
        let planted = mail::script_session(&mut conv, protocol, &mut rng, bodies);
        let frames = conv.frames()?;
        if let Some(mut planted) = planted {
            if port == protocol.implicit_tls_port() {
                planted.scenario.push_str("-on-tls-port");
            }
            self.report.truth.push(self.truth_row(planted, ends));
        }
        self.schedule(frames, true)
    }

    fn dns(&mut self) -> Result<(), GenError> {
        let v6 = self.rng.percent(25);
        let client = self.client(v6);
        let server = self.server(v6, 53);
        let vlans = self.vlans();
        let frames = background::dns(&mut self.rng, client, server, vlans.get(..1).unwrap_or(&[]), self.now)
            .map_err(GenError::Script)?;
        self.schedule(frames, false)
    }

    fn schedule(&mut self, frames: Vec<CapturedFrame>, mail: bool) -> Result<(), GenError> {
        let bytes: u64 = frames.iter().map(|frame| frame.data.len() as u64 + 16).sum();
        if mail {
            self.report.mail_bytes += bytes;
        }
        self.report.frames += frames.len() as u64;
        self.scheduler.add(self.now, frames)?;
        Ok(())
    }

    fn truth_row(&self, planted: mail::Planted, (client, server): (SocketAddr, SocketAddr)) -> TruthRow {
        TruthRow {
            file: self.file.clone(),
            protocol: planted.protocol.to_string(),
            server_ip: server.ip().to_string(),
            server_port: server.port(),
            client_ip: client.ip().to_string(),
            client_port: client.port(),
            mechanism: planted.mechanism.to_string(),
            username: planted.username,
            password_in_clear: planted.password_in_clear,
            starttls_before_auth: planted.starttls,
            tls: planted.starttls,
            outcome: planted.outcome.to_string(),
            expect_alert: planted.password_in_clear,
            password: planted.password,
            sasl_ir: planted.sasl_ir,
            imap_literal: planted.imap_literal.to_string(),
            client: "credwatch-gen".to_string(),
            scenario: planted.scenario,
            note: String::new(),
            server_greeting: planted.greeting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn small(kind: TrafficKind, seed: u64) -> (Vec<u8>, GenReport) {
        generate(&GenConfig { kind, size: 2 << 20, seed }, "x.pcap", Vec::new()).unwrap()
    }

    #[test]
    fn sizes_parse_in_binary_multiples() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("10MB"), Some(10 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1 G"), Some(1 << 30));
        assert_eq!(parse_size("12TB"), None);
        assert_eq!(parse_size("MB"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }

    #[test]
    fn same_seed_same_capture_other_seed_other_capture() {
        for kind in TrafficKind::ALL {
            let (first, report) = small(kind, 9);
            let (again, _) = small(kind, 9);
            let (other, _) = small(kind, 10);
            assert!(first == again, "{kind:?} is not deterministic");
            assert!(first != other);
            assert_eq!(first.len() as u64, report.bytes);
            assert!(report.bytes >= 2 << 20 && report.bytes < (2 << 20) + (16 << 20), "{}", report.bytes);
        }
    }

    #[test]
    fn frames_are_in_time_order_and_decode() {
        let (bytes, report) = small(TrafficKind::MailHeavy, 3);
        let (_, capture) = pcap_parser::parse_pcap(&bytes).unwrap();
        assert_eq!(capture.blocks.len() as u64, report.frames);
        let stamps: Vec<(u32, u32)> = capture.blocks.iter().map(|b| (b.ts_sec, b.ts_usec)).collect();
        assert!(stamps.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    fn mail_heavy_plants_every_variation() {
        let (_, report) = small(TrafficKind::MailHeavy, 1);
        let kinds: HashSet<(String, String, bool)> =
            report.truth.iter().map(|r| (r.protocol.clone(), r.mechanism.clone(), r.sasl_ir)).collect();
        for (protocol, mechanism, ir) in [
            ("pop3", "USER/PASS", false),
            ("pop3", "APOP", false),
            ("pop3", "SASL-PLAIN", true),
            ("pop3", "SASL-PLAIN", false),
            ("pop3", "SASL-LOGIN", false),
            ("pop3", "SASL-XOAUTH2", true),
            ("imap", "IMAP-LOGIN", false),
            ("imap", "SASL-PLAIN", true),
            ("imap", "SASL-PLAIN", false),
            ("imap", "SASL-LOGIN", false),
            ("imap", "SASL-XOAUTH2", true),
            ("smtp", "SASL-PLAIN", true),
            ("smtp", "SASL-PLAIN", false),
            ("smtp", "SASL-LOGIN", true),
            ("smtp", "SASL-LOGIN", false),
            ("smtp", "SASL-XOAUTH2", true),
        ] {
            assert!(kinds.contains(&(protocol.into(), mechanism.into(), ir)), "no {protocol} {mechanism} ir={ir}");
        }
        let literals: HashSet<&str> = report.truth.iter().map(|r| r.imap_literal.as_str()).collect();
        assert!(literals.contains("password") && literals.contains("user-sync,password-nonsync"));
        assert!(report.truth.iter().any(|r| r.starttls_before_auth && !r.expect_alert));
        assert!(report.truth.iter().any(|r| r.outcome == "failure" && r.expect_alert));
        assert!(report.truth.iter().any(|r| r.client_ip.contains(':')), "IPv6 sessions");
        let connections: HashSet<(&str, u16)> =
            report.truth.iter().map(|r| (r.client_ip.as_str(), r.client_port)).collect();
        assert_eq!(connections.len(), report.truth.len(), "one attempt per connection");
    }

    #[test]
    fn mixed_is_mostly_not_mail_and_many_flows_is_mostly_flows() {
        let (_, mixed) =
            generate(&GenConfig { kind: TrafficKind::Mixed, size: 16 << 20, seed: 2 }, "m", Vec::new()).unwrap();
        let share = mixed.mail_bytes as f64 / mixed.bytes as f64;
        assert!((0.01..0.03).contains(&share), "mail share {share}");
        let (_, flows) = small(TrafficKind::ManyFlows, 2);
        assert!(flows.flows * 1200 > flows.bytes, "{} flows in {} bytes", flows.flows, flows.bytes);
        assert!(!flows.truth.is_empty());
    }
}
