//! `credwatch report`: the server inventory as one self-contained HTML page, for people who would
//! rather look than read. Headline figures, a chart of exposures over time (inline SVG drawn here,
//! no script), the servers that exposed credentials, the TLS posture of every mail server, and the
//! anomalies.
//!
//! Greetings, user names, capability lines and anomaly details come from the wire and are attacker
//! controlled: every one goes through [`escape`]. The page carries a Content-Security-Policy that
//! allows nothing but its own stylesheet (by hash), so even a string that slipped through could
//! neither run a script nor fetch anything. It references no external resource: no script, image,
//! font or link.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::for_people::push_shown;
use super::{RepeatSummary, ServerReport, Sink};
use crate::alert::{AnomalyAlert, AppProto, Event, EventType, Remediation};
use crate::capture::Timestamp;
use crate::posture::{PostureClass, ServerPosture};

/// Anomalies listed one by one; past this they are only counted.
pub const MAX_LISTED_ANOMALIES: usize = 200;
/// Input names listed in the page header; past this they are only counted.
const MAX_LISTED_INPUTS: usize = 6;
/// Errors of inputs that could not be read listed on the page; past this they are only counted.
const MAX_LISTED_UNREAD: usize = 20;
/// Greetings longer than this are cut on the page (the full text is in the cell's tooltip).
const GREETING_SHOWN_CHARS: usize = 72;
/// At most this many bars in the exposure chart: the bucket width grows to fit.
const MAX_BUCKETS: u64 = 48;
/// Bucket widths the chart chooses from, in seconds.
const BUCKET_WIDTHS: [u64; 20] =
    [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800];

/// Credential alerts seen in one second (or one chart bucket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Exposures {
    cleartext: u64,
    weak: u64,
}

impl Exposures {
    fn total(self) -> u64 {
        self.cleartext.saturating_add(self.weak)
    }

    fn add(&mut self, kind: EventType, count: u64) {
        match kind {
            EventType::CleartextCredential => self.cleartext = self.cleartext.saturating_add(count),
            EventType::WeakCredential => self.weak = self.weak.saturating_add(count),
            EventType::Anomaly => {}
        }
    }
}

/// Collects a run and writes the page in [`Sink::finish`]. It should see every alert (put it
/// beside [`super::Dedup`], not behind it); behind it, the repeats a summary stands for are drawn
/// in the bucket of their last sighting.
pub struct HtmlReport<W: Write> {
    out: W,
    inputs: Vec<String>,
    /// Credential alerts per second of capture time.
    timeline: BTreeMap<u64, Exposures>,
    totals: Exposures,
    anomalies: Vec<AnomalyAlert>,
    anomaly_count: u64,
    postures: Vec<ServerPosture>,
}

impl<W: Write> HtmlReport<W> {
    /// A report written to `out`; `inputs` names the captures read (shown in the header).
    pub fn new(out: W, inputs: Vec<String>) -> Self {
        HtmlReport {
            out,
            inputs,
            timeline: BTreeMap::new(),
            totals: Exposures::default(),
            anomalies: Vec::new(),
            anomaly_count: 0,
            postures: Vec::new(),
        }
    }

    fn count(&mut self, timestamp: Timestamp, kind: EventType, count: u64) {
        self.totals.add(kind, count);
        self.timeline.entry(timestamp.secs()).or_default().add(kind, count);
    }
}

impl<W: Write + Send> Sink for HtmlReport<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Credential(alert) => self.count(alert.timestamp, alert.event_type, 1),
            Event::Anomaly(alert) => {
                self.anomaly_count = self.anomaly_count.saturating_add(1);
                if self.anomalies.len() < MAX_LISTED_ANOMALIES {
                    self.anomalies.push(alert.as_ref().clone());
                }
            }
            Event::Session(_) | Event::Stats(_) => {}
        }
        Ok(())
    }

    fn repeat(&mut self, summary: &RepeatSummary) -> io::Result<()> {
        // The first alert of the window already came through `event`.
        self.count(summary.last_seen, summary.repeated_event_type, summary.repeat_count.saturating_sub(1));
        Ok(())
    }

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        self.postures.push(posture.clone());
        Ok(())
    }

    fn finish(&mut self, servers: &[ServerReport], unread: &super::Unread) -> io::Result<()> {
        let mut page = String::with_capacity(64 * 1024);
        Page { report: self, servers, unread }
            .write(&mut page)
            .map_err(|_| io::Error::other("cannot format the HTML report"))?;
        self.out.write_all(page.as_bytes())?;
        self.out.flush()
    }
}

/// Escapes text for HTML element content and quoted attribute values. Control characters (which
/// HTML forbids or a browser may hide) and invisible format characters and separators (a
/// right-to-left override would make a name or greeting read backwards) are shown as the text
/// outputs show them (`\xNN`, `\u{..}`), and noncharacters as U+FFFD.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\t' | '\n' => escaped.push(c),
            c if is_noncharacter(c) => escaped.push('\u{fffd}'),
            c => push_shown(&mut escaped, c),
        }
    }
    escaped
}

fn is_noncharacter(c: char) -> bool {
    let code = u32::from(c);
    (0xfdd0..=0xfdef).contains(&code) || code & 0xfffe == 0xfffe
}

/// The page's stylesheet; the Content-Security-Policy allows exactly this text, by its hash.
const STYLE: &str = r#"
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --panel: #ffffff; --page: #f5f7fa;
  --red: #c62828; --red-bg: #fdecea; --amber: #b26a00; --amber-bg: #fff4e0; --amber-bar: #f0a202;
  --green: #2e7d32; --green-bg: #e8f5e9; --grey-bg: #eef0f3; --navy: #102a43; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: var(--navy); color: #fff; padding: 22px 32px 20px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; letter-spacing: .2px; }
header p { margin: 2px 0; color: #bcccdc; font-size: 13px; }
main { padding: 24px 32px 8px; max-width: 1400px; }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px;
  margin-bottom: 20px; box-shadow: 0 1px 2px rgba(16, 42, 67, .05); }
h2 { margin: 0 0 4px; font-size: 17px; font-weight: 600; }
.lead { margin: 0 0 14px; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 14px; margin-bottom: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-left: 5px solid var(--muted);
  border-radius: 8px; padding: 12px 16px; }
.card .value { font-size: 28px; font-weight: 650; line-height: 1.1; }
.card .label { color: var(--muted); font-size: 13px; }
.card.red { border-left-color: var(--red); } .card.red .value { color: var(--red); }
.card.amber { border-left-color: var(--amber-bar); } .card.amber .value { color: var(--amber); }
.card.green { border-left-color: var(--green); } .card.green .value { color: var(--green); }
section.unread { border-left: 5px solid var(--red); background: var(--red-bg); }
section.unread h2 { color: var(--red); }
section.unread ul { margin: 0; padding-left: 18px; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .4px; border-bottom: 2px solid var(--line); padding: 8px 10px; white-space: nowrap; }
td { border-bottom: 1px solid var(--line); padding: 9px 10px; vertical-align: top; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
.sub { display: block; color: var(--muted); font-size: 12px; margin-top: 2px; word-break: break-word; }
.names { display: block; color: var(--muted); font-size: 12px; margin-top: 2px; overflow-wrap: break-word; }
td.server { min-width: 220px; } td.users { min-width: 120px; max-width: 240px; } td.fix { min-width: 180px; }
td.logins { min-width: 150px; }
.scroll { overflow-x: auto; } .nowrap { white-space: nowrap; }
.when { white-space: nowrap; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 600;
  white-space: nowrap; margin: 0 4px 2px 0; }
.badge.red { background: var(--red-bg); color: var(--red); }
.badge.amber { background: var(--amber-bg); color: var(--amber); }
.badge.green { background: var(--green-bg); color: var(--green); }
.badge.grey { background: var(--grey-bg); color: var(--muted); }
.proto { display: inline-block; min-width: 42px; text-align: center; border-radius: 4px; padding: 0 5px;
  margin-right: 6px; font-size: 11px; font-weight: 700; background: var(--navy); color: #fff; }
span.fix { font-weight: 600; }
details { margin-top: 4px; font-size: 12px; color: var(--muted); }
summary { cursor: pointer; }
details ul { margin: 4px 0 0; padding-left: 18px; }
.headline { font-size: 16px; margin: 4px 0 10px; }
.headline strong { color: var(--red); }
.empty { color: var(--muted); font-style: italic; margin: 6px 0; }
.legend { display: flex; gap: 18px; color: var(--muted); font-size: 12px; margin: 0 0 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.swatch.cleartext { background: var(--red); } .swatch.weak { background: var(--amber-bar); }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .axis { fill: var(--muted); font-size: 11px; }
svg.chart .cleartext { fill: var(--red); } svg.chart .weak { fill: var(--amber-bar); }
.caption { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
footer { padding: 0 32px 28px; color: var(--muted); font-size: 12px; max-width: 1400px; }
"#;

/// The Content-Security-Policy: nothing may load or run; only the page's own stylesheet applies.
fn content_security_policy() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'")
}

struct Page<'a, W: Write> {
    report: &'a HtmlReport<W>,
    servers: &'a [ServerReport],
    /// The errors of the inputs that could not be read to their end, the frames not decoded.
    unread: &'a super::Unread,
}

impl<W: Write> Page<'_, W> {
    fn write(&self, html: &mut String) -> fmt::Result {
        write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
             <meta name=\"referrer\" content=\"no-referrer\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>credwatch report: mail credentials in clear</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
            content_security_policy()
        )?;
        self.header(html)?;
        html.push_str("<main>\n");
        self.unread_section(html)?;
        self.cards(html)?;
        self.chart_section(html)?;
        self.server_section(html)?;
        self.posture_section(html)?;
        self.anomaly_section(html)?;
        html.push_str("</main>\n");
        write!(
            html,
            "<footer>Generated by credwatch {}. Passwords never leave credwatch's protocol parsers: this page \
             holds none, and user names appear as the run's redaction policy shows them (masked by default). \
             The page is self-contained: no script, and nothing is fetched from the network.</footer>\n\
             </body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        )
    }

    fn header(&self, html: &mut String) -> fmt::Result {
        html.push_str("<header>\n<h1>Mail credentials crossing the network in clear</h1>\n");
        let inputs = &self.report.inputs;
        if !inputs.is_empty() {
            let listed: Vec<String> = inputs.iter().take(MAX_LISTED_INPUTS).map(|name| escape(name)).collect();
            let more = inputs.len().saturating_sub(MAX_LISTED_INPUTS);
            write!(html, "<p>Captures: <span class=\"mono\">{}</span>", listed.join(", "))?;
            if more > 0 {
                write!(html, " and {more} more")?;
            }
            html.push_str("</p>\n");
        }
        let seen = self.servers.iter().flat_map(|s| [&s.first_seen, &s.last_seen]);
        let seen = seen.chain(self.report.postures.iter().flat_map(|p| [&p.first_seen, &p.last_seen]));
        let seen: Vec<&String> = seen.filter(|t| !t.is_empty()).collect();
        if let (Some(first), Some(last)) = (seen.iter().min(), seen.iter().max()) {
            writeln!(html, "<p>Traffic from {} to {} UTC</p>", short_time(first), short_time(last))?;
        }
        html.push_str("</header>\n");
        Ok(())
    }

    /// First on the page when inputs could not be read: the page is mailed around without the
    /// exit status, and its figures must not pass for all there was.
    fn unread_section(&self, html: &mut String) -> fmt::Result {
        if self.unread.is_empty() {
            return Ok(());
        }
        write!(
            html,
            "<section id=\"unread\" class=\"unread\">\n<h2>Incomplete: {}</h2>\n<p class=\"lead\">The figures \
             below count only what could be read: credentials in the rest were not looked for.</p>\n<ul>\n",
            self.unread.words()
        )?;
        for error in self.unread.files.iter().take(MAX_LISTED_UNREAD) {
            writeln!(html, "<li class=\"mono\">{}</li>", escape(error))?;
        }
        let more = self.unread.files.len().saturating_sub(MAX_LISTED_UNREAD);
        if more > 0 {
            writeln!(html, "<li>and {more} more</li>")?;
        }
        if self.unread.undecoded_frames > 0 {
            writeln!(
                html,
                "<li>{} frame(s) could not be decoded: of a link type not read, encrypted, or tunnelled too \
                 deep (the warnings on standard error name the kinds)</li>",
                self.unread.undecoded_frames
            )?;
        }
        html.push_str("</ul>\n</section>\n");
        Ok(())
    }

    /// " in what could be read" when inputs could not be read, after words saying "none".
    fn of_what_was_read(&self) -> &'static str {
        if self.unread.is_empty() {
            ""
        } else {
            " in what could be read"
        }
    }

    fn cards(&self, html: &mut String) -> fmt::Result {
        let totals = self.report.totals;
        let accounts: usize = self.servers.iter().map(|s| s.users).sum();
        let postures = &self.report.postures;
        let accepting = postures.iter().filter(|p| p.accepts_passwords_in_clear()).count();
        // Nothing found is no all-clear when inputs could not be read.
        let clear = if self.unread.is_empty() { "green" } else { "grey" };
        let colour = |n: u64, alarm: &'static str| if n > 0 { alarm } else { clear };
        html.push_str("<div class=\"cards\">\n");
        let cards = [
            (colour(totals.cleartext, "red"), totals.cleartext.to_string(), "passwords and tokens seen in clear"),
            (colour(totals.weak, "amber"), totals.weak.to_string(), "crackable challenge-responses"),
            (
                colour(self.servers.len() as u64, "red"),
                self.servers.len().to_string(),
                "servers that exposed credentials",
            ),
            (colour(accounts as u64, "red"), accounts.to_string(), "accounts exposed (user per server)"),
            (
                colour(accepting as u64, "red"),
                format!("{accepting} / {}", postures.len()),
                "mail servers accepting passwords without TLS",
            ),
        ];
        for (class, value, label) in cards {
            writeln!(
                html,
                "<div class=\"card {class}\"><div class=\"value\">{value}</div><div class=\"label\">{label}</div></div>"
            )?;
        }
        html.push_str("</div>\n");
        Ok(())
    }

    fn chart_section(&self, html: &mut String) -> fmt::Result {
        html.push_str("<section id=\"timeline\">\n<h2>Exposures over time</h2>\n");
        let Some(chart) = Chart::of(&self.report.timeline) else {
            let read = self.of_what_was_read();
            write!(html, "<p class=\"empty\">No credential crossed the network in clear{read}.</p>\n</section>\n")?;
            return Ok(());
        };
        html.push_str(
            "<p class=\"lead\">Credential alerts per interval of capture time.</p>\n<div class=\"legend\">\
             <span><span class=\"swatch cleartext\"></span>cleartext password or token</span>\
             <span><span class=\"swatch weak\"></span>crackable challenge-response</span></div>\n",
        );
        chart.write_svg(html)?;
        write!(
            html,
            "<p class=\"caption\">Each bar covers {} (UTC), from {} to {}.</p>\n</section>\n",
            duration_words(chart.width),
            short_time(&Timestamp::from_secs_nanos(chart.start, 0).to_string()),
            short_time(&Timestamp::from_secs_nanos(chart.end(), 0).to_string()),
        )
    }

    fn server_section(&self, html: &mut String) -> fmt::Result {
        html.push_str("<section id=\"servers\">\n<h2>Servers that exposed credentials</h2>\n");
        if self.servers.is_empty() {
            let read = self.of_what_was_read();
            write!(html, "<p class=\"empty\">No server received a credential in clear{read}.</p>\n</section>\n")?;
            return Ok(());
        }
        html.push_str(
            "<p class=\"lead\">Most exposed first. Fix these first: each row says who must act.</p>\n\
             <div class=\"scroll\"><table class=\"servers\">\n<thead><tr><th>Exposed</th><th>Server</th>\
             <th>STARTTLS</th><th>What to do</th><th>Users</th><th>Logins</th><th>Seen</th>\
             </tr></thead>\n<tbody>\n",
        );
        for server in self.servers {
            html.push_str("<tr>");
            html.push_str("<td>");
            if server.cleartext > 0 {
                write!(html, "<span class=\"badge red\">{} cleartext</span>", server.cleartext)?;
            }
            if server.weak > 0 {
                write!(html, "<span class=\"badge amber\">{} weak</span>", server.weak)?;
            }
            html.push_str("</td>");
            server_cell(
                html,
                server.app_proto,
                server.ip,
                server.port,
                server.software.as_deref(),
                server.greeting.as_deref(),
            )?;
            html.push_str(match server.starttls_offered {
                Some(true) => "<td><span class=\"badge amber\">offered, not used</span></td>",
                Some(false) => "<td><span class=\"badge red\">not offered</span></td>",
                None => "<td><span class=\"badge grey\">not seen</span></td>",
            });
            let (label, hint) = remediation_words(server.remediation);
            write!(html, "<td class=\"fix\"><span class=\"fix\">{label}</span><span class=\"sub\">{hint}</span></td>")?;
            write!(html, "<td class=\"users\"><strong>{}</strong>", server.shown(server.users))?;
            if !server.user_names.is_empty() {
                let names: Vec<String> = server.user_names.iter().map(|name| escape(name)).collect();
                write!(html, "<span class=\"names mono\">{}", names.join(", "))?;
                // Accounts masked alike share a name, so the count cannot say how many are unlisted.
                if server.more_user_names {
                    html.push_str(" and more");
                }
                html.push_str("</span>");
            }
            html.push_str("</td>");
            write!(
                html,
                "<td class=\"logins\">{}<span class=\"sub\">from {} client{}</span>",
                outcome_badges(server.successes, server.failures, server.unknown_outcomes),
                server.clients,
                plural(server.clients)
            )?;
            let mechanisms: Vec<String> = server.mechanisms.iter().map(|m| escape(m)).collect();
            write!(html, "<span class=\"sub mono\">{}</span></td>", mechanisms.join(", "))?;
            write!(
                html,
                "<td class=\"when\">{}<span class=\"sub\">to {}</span></td>",
                short_time(&server.first_seen),
                short_time(&server.last_seen)
            )?;
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody>\n</table></div>\n</section>\n");
        Ok(())
    }

    fn posture_section(&self, html: &mut String) -> fmt::Result {
        let postures = &self.report.postures;
        html.push_str("<section id=\"posture\">\n<h2>TLS posture of every mail server</h2>\n");
        if postures.is_empty() {
            let read = self.of_what_was_read();
            write!(html, "<p class=\"empty\">No POP3, IMAP or SMTP server seen{read}.</p>\n</section>\n")?;
            return Ok(());
        }
        let accepting = postures.iter().filter(|p| p.accepts_passwords_in_clear()).count();
        write!(
            html,
            "<p class=\"headline\"><strong>{accepting}</strong> of {} mail server{} accept{} passwords without TLS.</p>\n<p>",
            postures.len(),
            if postures.len() == 1 { "" } else { "s" },
            if accepting == 1 { "s" } else { "" },
        )?;
        for class in [PostureClass::NoTls, PostureClass::TlsOptional, PostureClass::Unknown, PostureClass::TlsRequired]
        {
            let count = postures.iter().filter(|p| p.class == class).count();
            write!(html, "<span class=\"badge {}\">{count} {}</span>", class_colour(class), class_words(class))?;
        }
        html.push_str(
            "</p>\n<div class=\"scroll\"><table class=\"posture\">\n<thead><tr><th>Class</th><th>Server</th><th>STARTTLS</th>\
             <th>Plaintext mechanisms</th><th>Sessions</th><th>Cleartext logins</th><th>What to do</th></tr></thead>\n<tbody>\n",
        );
        for posture in postures {
            write!(
                html,
                "<tr><td><span class=\"badge {}\">{}</span></td>",
                class_colour(posture.class),
                class_words(posture.class)
            )?;
            server_cell(
                html,
                posture.app_proto,
                posture.ip,
                posture.port,
                posture.software.as_deref(),
                posture.greeting.as_deref(),
            )?;
            html.push_str(match posture.starttls_offered {
                Some(true) => "<td class=\"nowrap\">offered",
                Some(false) => "<td class=\"nowrap\">not offered",
                None => "<td class=\"nowrap\">not seen",
            });
            if posture.login_disabled {
                html.push_str("<span class=\"sub\">LOGINDISABLED</span>");
            }
            if !posture.implicit_tls_ports.is_empty() {
                let ports: Vec<String> = posture.implicit_tls_ports.iter().map(u16::to_string).collect();
                write!(html, "<span class=\"sub\">implicit TLS on {}</span>", ports.join(", "))?;
            }
            html.push_str("</td>");
            let mechanisms: Vec<String> = posture.plaintext_mechanisms.iter().map(|m| escape(m)).collect();
            write!(html, "<td class=\"mono\">{}</td>", mechanisms.join(" "))?;
            write!(
                html,
                "<td class=\"num\">{}<span class=\"sub\">{} with TLS</span></td>",
                posture.sessions, posture.sessions_tls
            )?;
            write!(html, "<td class=\"num\">{}", posture.cleartext_logins)?;
            if posture.distinct_users > 0 {
                write!(
                    html,
                    "<span class=\"sub\">{} user{}</span>",
                    posture.distinct_users,
                    plural(posture.distinct_users)
                )?;
            }
            html.push_str("</td>");
            write!(html, "<td class=\"fix\">{}", escape(posture.remediation))?;
            if !posture.evidence.is_empty() {
                html.push_str("<details><summary>evidence</summary><ul>");
                for line in &posture.evidence {
                    write!(html, "<li class=\"mono\">{}</li>", escape(line))?;
                }
                html.push_str("</ul></details>");
            }
            html.push_str("</td></tr>\n");
        }
        html.push_str("</tbody>\n</table></div>\n</section>\n");
        Ok(())
    }

    fn anomaly_section(&self, html: &mut String) -> fmt::Result {
        let report = self.report;
        if report.anomaly_count == 0 {
            return Ok(());
        }
        write!(
            html,
            "<section id=\"anomalies\">\n<h2>Anomalies</h2>\n<p class=\"lead\">{} anomal{}: traffic a detector \
             should not let pass silently (STARTTLS stripping or injection, overlapping segments with different \
             bytes, malformed SASL).",
            report.anomaly_count,
            if report.anomaly_count == 1 { "y" } else { "ies" }
        )?;
        if report.anomaly_count > report.anomalies.len() as u64 {
            write!(html, " The first {} are listed.", report.anomalies.len())?;
        }
        html.push_str(
            "</p>\n<div class=\"scroll\"><table class=\"anomalies\">\n<thead><tr><th>Time</th><th>Kind</th><th>Client</th>\
             <th>Server</th><th>Detail</th></tr></thead>\n<tbody>\n",
        );
        for alert in &report.anomalies {
            writeln!(
                html,
                "<tr><td class=\"when\">{}</td><td><span class=\"badge amber\">{}</span></td><td class=\"mono\">{}</td>\
                 <td class=\"mono\">{}</td><td>{}</td></tr>",
                short_time(&alert.timestamp.rfc3339_micros()),
                escape(alert.anomaly.kind.name()),
                SocketAddr::new(alert.flow.src_ip, alert.flow.src_port),
                SocketAddr::new(alert.flow.dest_ip, alert.flow.dest_port),
                escape(&alert.anomaly.detail),
            )?;
        }
        html.push_str("</tbody>\n</table></div>\n</section>\n");
        Ok(())
    }
}

/// The server column: protocol, address, and the software or greeting it announced.
fn server_cell(
    html: &mut String,
    proto: AppProto,
    ip: IpAddr,
    port: u16,
    software: Option<&str>,
    greeting: Option<&str>,
) -> fmt::Result {
    write!(
        html,
        "<td class=\"server\"><span class=\"proto\">{}</span><span class=\"mono\">{}</span>",
        proto.name().to_ascii_uppercase(),
        SocketAddr::new(ip, port)
    )?;
    if let Some(software) = software {
        write!(html, "<span class=\"sub\"><strong>{}</strong></span>", escape(software))?;
    }
    if let Some(greeting) = greeting {
        let shown: String = greeting.chars().take(GREETING_SHOWN_CHARS).collect();
        let cut = if shown.len() < greeting.len() { "…" } else { "" };
        write!(html, "<span class=\"sub mono\" title=\"{}\">{}{cut}</span>", escape(greeting), escape(&shown))?;
    }
    html.push_str("</td>");
    Ok(())
}

fn outcome_badges(successes: u64, failures: u64, unknown: u64) -> String {
    let mut badges = String::new();
    for (count, class, word) in
        [(successes, "red", "accepted"), (failures, "grey", "rejected"), (unknown, "grey", "outcome unseen")]
    {
        if count > 0 {
            let _ = write!(badges, "<span class=\"badge {class}\">{count} {word}</span>");
        }
    }
    badges
}

/// A label and a hint saying who must act, per remediation.
fn remediation_words(remediation: Remediation) -> (&'static str, &'static str) {
    match remediation {
        Remediation::ServerOffersNoTls => {
            ("Server offers no TLS", "Enable STARTTLS or implicit TLS on the server, then require it.")
        }
        Remediation::ClientSkippedStarttls => (
            "Client skipped STARTTLS",
            "The server offers TLS: configure the clients to use it, and make the server require it.",
        ),
        Remediation::StarttlsFailed => {
            ("STARTTLS failed", "The server refused STARTTLS and the client went on in clear: repair the server's TLS.")
        }
        Remediation::ServerIgnoresLogindisabled => (
            "Server ignores LOGINDISABLED",
            "It accepted a cleartext login it said it would refuse: fix its configuration.",
        ),
        Remediation::Unknown => ("Unknown", "The capture does not show whether TLS was offered."),
    }
}

fn class_words(class: PostureClass) -> &'static str {
    match class {
        PostureClass::NoTls => "no TLS",
        PostureClass::TlsOptional => "TLS optional",
        PostureClass::Unknown => "unknown",
        PostureClass::TlsRequired => "TLS required",
    }
}

fn class_colour(class: PostureClass) -> &'static str {
    match class {
        PostureClass::NoTls => "red",
        PostureClass::TlsOptional => "amber",
        PostureClass::Unknown => "grey",
        PostureClass::TlsRequired => "green",
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// `2026-11-27T09:15:02.123456Z` as `2026-11-27 09:15:02`; other text escaped as it is.
fn short_time(timestamp: &str) -> String {
    match timestamp.get(..19) {
        Some(prefix) if Timestamp::from_rfc3339(timestamp).is_some() => prefix.replacen('T', " ", 1),
        _ => escape(timestamp),
    }
}

fn duration_words(seconds: u64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{} day{}", s / 86_400, if s == 86_400 { "" } else { "s" }),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The exposure chart: stacked bars per time bucket.
#[derive(Debug)]
struct Chart {
    /// First bucket's start, in seconds since the epoch (a multiple of `width`).
    start: u64,
    /// Bucket width in seconds.
    width: u64,
    buckets: Vec<Exposures>,
}

const SVG_WIDTH: u64 = 960;
const SVG_HEIGHT: u64 = 240;
const PLOT_LEFT: u64 = 48;
const PLOT_RIGHT: u64 = 12;
const PLOT_TOP: u64 = 12;
const PLOT_BOTTOM: u64 = 28;

impl Chart {
    /// Buckets for the timeline; `None` when it is empty.
    fn of(timeline: &BTreeMap<u64, Exposures>) -> Option<Chart> {
        let first = *timeline.keys().next()?;
        let last = *timeline.keys().next_back()?;
        let span = last.saturating_sub(first);
        let width = BUCKET_WIDTHS
            .into_iter()
            .find(|width| span / width < MAX_BUCKETS)
            .unwrap_or_else(|| (span / (MAX_BUCKETS - 1)).div_ceil(86_400).max(1).saturating_mul(86_400));
        let start = first - first % width;
        let count = (last.saturating_sub(start) / width).saturating_add(1);
        let mut buckets = vec![Exposures::default(); usize::try_from(count).unwrap_or(0)];
        for (second, exposures) in timeline {
            let index = usize::try_from(second.saturating_sub(start) / width).unwrap_or(usize::MAX);
            if let Some(bucket) = buckets.get_mut(index) {
                bucket.add(EventType::CleartextCredential, exposures.cleartext);
                bucket.add(EventType::WeakCredential, exposures.weak);
            }
        }
        Some(Chart { start, width, buckets })
    }

    /// End of the last bucket.
    fn end(&self) -> u64 {
        self.start.saturating_add(self.width.saturating_mul(self.buckets.len() as u64))
    }

    fn write_svg(&self, html: &mut String) -> fmt::Result {
        let plot_width = (SVG_WIDTH - PLOT_LEFT - PLOT_RIGHT) as f64;
        let plot_height = (SVG_HEIGHT - PLOT_TOP - PLOT_BOTTOM) as f64;
        let bottom = (SVG_HEIGHT - PLOT_BOTTOM) as f64;
        let peak = self.buckets.iter().map(|b| b.total()).max().unwrap_or(0);
        // At least four gridlines, so that a handful of alerts does not fill the plot.
        let step = nice_step(peak.max(4).div_ceil(4));
        let top = peak.max(4).div_ceil(step).saturating_mul(step);
        let y_of = |count: u64| bottom - count as f64 / top as f64 * plot_height;
        writeln!(
            html,
            "<svg class=\"chart\" viewBox=\"0 0 {SVG_WIDTH} {SVG_HEIGHT}\" role=\"img\" \
             aria-label=\"Credential alerts over time, at most {peak} per bucket\">"
        )?;
        let mut tick = 0;
        while tick <= top {
            let y = y_of(tick);
            writeln!(
                html,
                "<line class=\"grid\" x1=\"{PLOT_LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
                SVG_WIDTH - PLOT_RIGHT,
                PLOT_LEFT - 8,
                y + 4.0
            )?;
            tick = tick.saturating_add(step);
        }
        let slot = plot_width / self.buckets.len() as f64;
        let bar = (slot * 0.72).min(40.0);
        let label_every = self.buckets.len().div_ceil(8);
        for (index, bucket) in self.buckets.iter().enumerate() {
            let from = self.start.saturating_add(self.width.saturating_mul(index as u64));
            let x = PLOT_LEFT as f64 + slot * index as f64 + (slot - bar) / 2.0;
            if bucket.total() > 0 {
                write!(
                    html,
                    "<g class=\"bar\"><title>{} UTC, {}: {} cleartext, {} weak</title>",
                    short_time(&Timestamp::from_secs_nanos(from, 0).to_string()),
                    duration_words(self.width),
                    bucket.cleartext,
                    bucket.weak
                )?;
                let cleartext_top = y_of(bucket.cleartext);
                for (class, y, height) in [
                    ("cleartext", cleartext_top, bottom - cleartext_top),
                    ("weak", y_of(bucket.total()), cleartext_top - y_of(bucket.total())),
                ] {
                    if height > 0.0 {
                        write!(
                            html,
                            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{height:.1}\" rx=\"1.5\"/>"
                        )?;
                    }
                }
                html.push_str("</g>\n");
            }
            if index % label_every == 0 {
                writeln!(
                    html,
                    "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                    x + bar / 2.0,
                    SVG_HEIGHT - PLOT_BOTTOM + 18,
                    self.axis_label(from)
                )?;
            }
        }
        html.push_str("</svg>\n");
        Ok(())
    }

    /// A bucket's start on the time axis, as precise as the bucket width needs.
    fn axis_label(&self, seconds: u64) -> String {
        let text = Timestamp::from_secs_nanos(seconds, 0).to_string();
        let one_day = self.end().saturating_sub(self.start) <= 86_400;
        let range = match (self.width, one_day) {
            (width, _) if width >= 86_400 => 0..10,
            (width, true) if width < 60 => 11..19,
            (_, true) => 11..16,
            (_, false) => 5..16,
        };
        text.get(range).unwrap_or_default().replace('T', " ")
    }
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `raw` (and at least 1).
fn nice_step(raw: u64) -> u64 {
    let mut magnitude: u64 = 1;
    loop {
        for factor in [1, 2, 5] {
            let step = magnitude.saturating_mul(factor);
            if step >= raw || step == u64::MAX {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::text::tests::sample_alert;
    use crate::output::ServerSummary;
    use crate::posture::PostureTracker;

    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

    fn alert_at(timestamp: &str, user: &str, greeting: &str) -> Event {
        let mut event = sample_alert();
        if let Event::Credential(alert) = &mut event {
            alert.timestamp = Timestamp::from_rfc3339(timestamp).unwrap();
            alert.credential.username = Some(user.to_string());
            alert.server.greeting = Some(greeting.into());
            alert.server.software = None;
        }
        event
    }

    /// Renders a page from events the way the pipeline feeds a sink.
    fn render(events: &[Event], inputs: &[&str]) -> String {
        render_after_errors(events, inputs, &[])
    }

    /// [`render`], some inputs having failed with these errors.
    fn render_after_errors(events: &[Event], inputs: &[&str], unread: &[String]) -> String {
        let mut summary = ServerSummary::default();
        let mut posture = PostureTracker::default();
        let mut report = HtmlReport::new(Vec::new(), inputs.iter().map(|s| s.to_string()).collect());
        for event in events {
            posture.observe(event, false);
            summary.add(event);
            report.event(event).unwrap();
        }
        for server in posture.snapshot() {
            report.posture(&server).unwrap();
        }
        let unread = crate::output::Unread { files: unread.to_vec(), undecoded_frames: 0 };
        report.finish(&summary.reports(), &unread).unwrap();
        String::from_utf8(report.out).unwrap()
    }

    #[test]
    fn escape_neutralises_markup_quotes_and_controls() {
        assert_eq!(
            escape(HOSTILE),
            "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}[31m\u{7f}"), "a\\x00b\\x1b[31m\\x7f");
        assert_eq!(escape("tab\tok\nline"), "tab\tok\nline");
        assert_eq!(escape("x\u{fdd0}\u{ffff}y"), "x\u{fffd}\u{fffd}y");
        assert_eq!(escape("Dovecot ready. é 日本"), "Dovecot ready. é 日本");
    }

    #[test]
    fn escape_shows_format_characters_and_separators() {
        assert_eq!(escape("a\u{202e}gpj.exe"), "a\\u{202e}gpj.exe");
        assert_eq!(escape("\u{feff}x\u{2028}y\u{2029}\u{200d}"), "\\u{feff}x\\u{2028}y\\u{2029}\\u{200d}");
    }

    #[test]
    fn wire_strings_never_reach_the_page_as_markup() {
        let page = render(
            &[alert_at("2026-11-27T09:00:00.000000Z", HOSTILE, &format!("+OK {HOSTILE}"))],
            &["captures/<b>.pcap"],
        );
        assert!(!page.contains("<script"), "no script element");
        assert!(!page.contains("<img"), "no injected element");
        assert!(!page.contains("<b>"), "input names escaped too");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the user name is shown, escaped");
        assert!(page.contains("captures/&lt;b&gt;.pcap"));
        assert!(!page.contains("\"'&"), "quotes from the wire are escaped");
    }

    #[test]
    fn page_is_self_contained_and_locked_down() {
        let page = render(&[alert_at("2026-11-27T09:00:00.000000Z", "a***", "+OK ready")], &["demo.pcap"]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        for forbidden in ["http:", "https:", "src=", "href=", "url(", "@import", "<script", "<link", "<iframe"] {
            assert!(!page.contains(forbidden), "{forbidden} found in the page");
        }
        let csp = content_security_policy();
        assert!(page.contains(&format!("content=\"{csp}\"")));
        assert!(csp.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(page.contains(&format!("<style>{STYLE}</style>")), "the hashed text is exactly the style element's");
    }

    #[test]
    fn page_has_cards_chart_servers_and_posture() {
        let events = [
            alert_at("2026-11-27T09:00:01.000000Z", "a***", "+OK Dovecot ready."),
            alert_at("2026-11-27T09:00:05.000000Z", "b***", "+OK Dovecot ready."),
            alert_at("2026-11-27T09:00:40.000000Z", "a***", "+OK Dovecot ready."),
        ];
        let page = render(&events, &["demo.pcap"]);
        assert_eq!(page.matches("<section").count(), 3, "timeline, servers, posture; no anomaly section");
        assert!(page.contains("<div class=\"value\">3</div><div class=\"label\">passwords and tokens seen in clear"));
        assert!(page.contains("<div class=\"value\">2</div><div class=\"label\">accounts exposed"));
        let servers = page.split("<table class=\"servers\">").nth(1).unwrap().split("</table>").next().unwrap();
        assert_eq!(servers.matches("<tr>").count(), 2, "header and one server");
        assert!(servers.contains("198.51.100.5:110"));
        assert!(servers.contains("<span class=\"badge red\">3 cleartext</span>"));
        assert!(servers.contains("a***, b***"));
        assert!(servers.contains("Server offers no TLS"));
        assert!(page.contains("<strong>1</strong> of 1 mail server accepts passwords without TLS."));
        // 39 s of traffic: one-second buckets would be 40 bars; the chart takes 1 s buckets (< 48).
        let svg = page.split("<svg").nth(1).unwrap().split("</svg>").next().unwrap();
        assert_eq!(svg.matches("<g class=\"bar\">").count(), 3);
        assert!(svg.contains("09:00:01 UTC, 1 s: 1 cleartext, 0 weak"));
    }

    /// "and more" follows the listed names only when some were left out.
    #[test]
    fn and_more_only_past_the_listed_names() {
        let names = |count: usize| -> Vec<Event> {
            (0..count).map(|n| alert_at("2026-11-27T09:00:00.000000Z", &format!("u{n:03}***"), "+OK")).collect()
        };
        let listed = crate::output::summary::MAX_LISTED_USERS;
        assert!(!render(&names(listed), &[]).contains("and more"));
        assert!(render(&names(listed + 1), &[]).contains(" and more</span>"));
    }

    #[test]
    fn empty_run_says_so() {
        let page = render(&[], &[]);
        assert!(page.contains("No credential crossed the network in clear."));
        assert!(page.contains("No server received a credential in clear."));
        assert!(!page.contains("<svg"));
        assert!(!page.contains("Incomplete") && page.contains("card green"));
    }

    /// Inputs that could not be read are said first, with their errors (escaped: they hold file
    /// names), and nothing on the page reads as an all-clear: the page travels without the exit
    /// status.
    #[test]
    fn a_run_whose_inputs_could_not_all_be_read_says_so_first() {
        let unread = ["a.pcap: cannot open: No such file or directory (os error 2)".to_string(), "<b>.pcap: x".into()];
        let page = render_after_errors(&[], &["a.pcap", "<b>.pcap"], &unread);
        let main = page.split("<main>").nth(1).unwrap();
        assert!(main.starts_with("\n<section id=\"unread\""), "{main}");
        assert!(main.contains("<h2>Incomplete: 2 files could not be read to their end</h2>"), "{main}");
        assert!(main.contains("<li class=\"mono\">a.pcap: cannot open: No such file or directory (os error 2)</li>"));
        assert!(main.contains("&lt;b&gt;.pcap: x") && !main.contains("<b>"));
        assert!(page.contains("No credential crossed the network in clear in what could be read."));
        assert!(page.contains("No server received a credential in clear in what could be read."));
        assert!(!page.contains("card green"), "no green all-clear");
        let one = render_after_errors(&[alert_at("2026-11-27T09:00:00.000000Z", "a***", "+OK")], &[], &unread[..1]);
        assert!(one.contains("<h2>Incomplete: 1 file could not be read to its end</h2>"));
    }

    #[test]
    fn repeats_held_back_by_dedup_are_counted() {
        let mut report = HtmlReport::new(Vec::new(), Vec::new());
        let first = alert_at("2026-11-27T09:00:00.000000Z", "a***", "+OK");
        report.event(&first).unwrap();
        let Event::Credential(alert) = first else { unreachable!() };
        let summary = RepeatSummary {
            timestamp: Timestamp::from_rfc3339("2026-11-27T09:10:00Z").unwrap(),
            event_type: "repeat_summary",
            severity: "high",
            repeated_event_type: EventType::CleartextCredential,
            flow: alert.flow.clone(),
            app_proto: alert.app_proto,
            credential: alert.credential.clone(),
            server: alert.server.clone(),
            client: alert.client.clone(),
            remediation: alert.remediation,
            repeat_count: 5,
            first_seen: alert.timestamp,
            last_seen: Timestamp::from_rfc3339("2026-11-27T09:10:00Z").unwrap(),
            schema_version: crate::alert::SCHEMA_VERSION,
        };
        report.repeat(&summary).unwrap();
        assert_eq!(report.totals, Exposures { cleartext: 5, weak: 0 });
        let last = Timestamp::from_rfc3339("2026-11-27T09:10:00Z").unwrap().secs();
        assert_eq!(report.timeline.get(&last), Some(&Exposures { cleartext: 4, weak: 0 }));
    }

    #[test]
    fn chart_buckets_fit_the_span() {
        let mut timeline = BTreeMap::new();
        timeline.insert(1_000_000, Exposures { cleartext: 1, weak: 0 });
        timeline.insert(1_000_000 + 3 * 3600, Exposures { cleartext: 2, weak: 1 });
        let chart = Chart::of(&timeline).unwrap();
        assert_eq!(chart.width, 300, "3 h in buckets of 5 min: 37 bars");
        assert!(chart.buckets.len() as u64 <= MAX_BUCKETS);
        assert_eq!(chart.buckets.iter().map(|b| b.total()).sum::<u64>(), 4);
        assert_eq!(chart.start % chart.width, 0);
        timeline.insert(1_000_000 + 5 * 365 * 86_400, Exposures { cleartext: 1, weak: 0 });
        let chart = Chart::of(&timeline).unwrap();
        assert!(chart.buckets.len() as u64 <= MAX_BUCKETS, "{} buckets over 5 years", chart.buckets.len());
        assert!(Chart::of(&BTreeMap::new()).is_none());
    }

    #[test]
    fn nice_steps() {
        assert_eq!([0, 1, 2, 3, 6, 11, 40, 300].map(nice_step), [1, 1, 2, 5, 10, 20, 50, 500]);
    }
}
