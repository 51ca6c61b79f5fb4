//! The server inventory for people (`credwatch posture`): every mail server seen, by TLS posture,
//! most exposed first, and a headline like a scan report's.

use std::io::{self, Write};

use super::for_people::{escaped, escaped_or_empty};
use super::{RepeatSummary, ServerReport, Sink};
use crate::alert::{Event, OutputStats};
use crate::posture::{PostureClass, ServerPosture};

pub struct PostureTable<W: Write> {
    out: W,
    servers: Vec<ServerPosture>,
}

impl<W: Write> PostureTable<W> {
    /// The table for people.
    pub fn new(out: W) -> Self {
        PostureTable { out, servers: Vec::new() }
    }
}

impl<W: Write + Send> Sink for PostureTable<W> {
    fn event(&mut self, _event: &Event) -> io::Result<()> {
        Ok(())
    }

    fn repeat(&mut self, _summary: &RepeatSummary) -> io::Result<()> {
        Ok(())
    }

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        self.servers.push(posture.clone());
        Ok(())
    }

    fn finish(&mut self, _servers: &[ServerReport], unread: &super::Unread) -> io::Result<()> {
        let count = |class| self.servers.iter().filter(|s| s.class == class).count();
        let accepting = self.servers.iter().filter(|s| s.accepts_passwords_in_clear()).count();
        writeln!(
            self.out,
            "{} mail server(s) seen; {accepting} accept passwords without TLS. no_tls: {}, tls_optional: {}, tls_required: {}, unknown: {}",
            self.servers.len(),
            count(PostureClass::NoTls),
            count(PostureClass::TlsOptional),
            count(PostureClass::TlsRequired),
            count(PostureClass::Unknown),
        )?;
        if !unread.is_empty() {
            writeln!(self.out, "Only what could be read is counted: {}{}.", unread.words(), unread.see_also())?;
        }
        if self.servers.is_empty() {
            return self.out.flush();
        }
        // Columns as wide as their longest value: a protocol name (`managesieve`), a server's
        // list of mechanisms (Dovecot's `AUTH=LOGIN,AUTH=PLAIN,LOGIN`).
        let mechanisms: Vec<String> =
            self.servers.iter().map(|server| escaped(&server.plaintext_mechanisms.join(",")).into_owned()).collect();
        let proto = self.servers.iter().map(|server| server.app_proto.name().len()).fold(5, usize::max);
        let mechanism_width = mechanisms.iter().map(|list| list.chars().count()).fold(24, usize::max);
        writeln!(
            self.out,
            "  {:<13} {:<proto$} {:<40} {:<8} {:<13} {:<mechanism_width$} {:>8} {:>4} {:>9}  SOFTWARE / GREETING",
            "CLASS",
            "PROTO",
            "SERVER",
            "STARTTLS",
            "LOGINDISABLED",
            "PLAINTEXT MECHANISMS",
            "SESSIONS",
            "TLS",
            "CLEARTEXT"
        )?;
        for (server, mechanisms) in self.servers.iter().zip(&mechanisms) {
            let starttls = match server.starttls_offered {
                Some(true) => "offered",
                Some(false) => "no",
                None => "?",
            };
            writeln!(
                self.out,
                "  {:<13} {:<proto$} {:<40} {:<8} {:<13} {:<mechanism_width$} {:>8} {:>4} {:>9}  {}",
                server.class.name(),
                server.app_proto.name(),
                std::net::SocketAddr::new(server.ip, server.port).to_string(),
                starttls,
                if server.login_disabled { "yes" } else { "no" },
                mechanisms,
                server.sessions,
                server.sessions_tls,
                server.cleartext_logins,
                escaped_or_empty(server.software.as_deref().or(server.greeting.as_deref())),
            )?;
        }
        self.out.flush()
    }
}

/// The outputs of `credwatch posture` other than its table: each server's posture (and the
/// closing `stats` event when asked for), nothing about logins.
pub struct PostureOnly<S> {
    inner: S,
}

impl<S: Sink> PostureOnly<S> {
    pub fn new(inner: S) -> Self {
        PostureOnly { inner }
    }
}

impl<S: Sink> Sink for PostureOnly<S> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Stats(_) => self.inner.event(event),
            Event::Credential(_) | Event::Anomaly(_) | Event::Session(_) => Ok(()),
        }
    }

    fn repeat(&mut self, _summary: &RepeatSummary) -> io::Result<()> {
        Ok(())
    }

    fn posture(&mut self, posture: &ServerPosture) -> io::Result<()> {
        self.inner.posture(posture)
    }

    fn end_of_events(&mut self) -> io::Result<()> {
        self.inner.end_of_events()
    }

    fn room(&self) -> usize {
        self.inner.room()
    }

    /// The servers that exposed credentials are `read`'s closing report, not a posture.
    fn finish(&mut self, _servers: &[ServerReport], unread: &super::Unread) -> io::Result<()> {
        self.inner.finish(&[], unread)
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

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    fn output_stats(&self, into: &mut Vec<OutputStats>) {
        self.inner.output_stats(into);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::AppProto;
    use crate::posture::PostureClass;

    /// A server whose greeting and mechanism names carry `text`.
    pub(crate) fn posture_showing(text: &str) -> ServerPosture {
        ServerPosture {
            timestamp: "2026-11-27T09:00:00.039000Z".into(),
            event_type: "server_posture",
            app_proto: AppProto::Imap,
            ip: "198.51.100.6".parse().unwrap(),
            port: 143,
            class: PostureClass::NoTls,
            remediation: PostureClass::NoTls.remediation(),
            greeting: Some(format!("* OK {text}").into()),
            software: None,
            hostname: None,
            starttls_offered: Some(false),
            login_disabled: false,
            plaintext_mechanisms: vec![format!("AUTH={text}")],
            implicit_tls_ports: Vec::new(),
            sessions: 1,
            sessions_tls: 0,
            cleartext_logins: 1,
            distinct_users: 1,
            truncated: false,
            evidence: Vec::new(),
            first_seen: "2026-11-27T09:00:00.039000Z".into(),
            last_seen: "2026-11-27T09:00:00.039000Z".into(),
            schema_version: crate::alert::SCHEMA_VERSION,
        }
    }

    #[test]
    fn the_table_escapes_what_servers_said() {
        let mut table = PostureTable::new(Vec::new());
        table.posture(&posture_showing("x\x1b[2J\ny")).unwrap();
        table.finish(&[], &crate::output::Unread::default()).unwrap();
        let text = String::from_utf8(table.out).unwrap();
        assert_eq!(text.lines().count(), 3, "headline, header, one server: {text:?}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("AUTH=x\\x1b[2J\\x0ay") && text.contains("* OK x\\x1b[2J\\x0ay"), "{text:?}");
    }

    #[test]
    fn the_headline_says_when_inputs_could_not_be_read() {
        let mut table = PostureTable::new(Vec::new());
        table
            .finish(&[], &crate::output::Unread { files: vec!["a.pcap: cannot open".to_string()], undecoded_frames: 0 })
            .unwrap();
        let text = String::from_utf8(table.out).unwrap();
        assert!(text.starts_with("0 mail server(s) seen;"), "{text}");
        assert!(text.contains("\nOnly what could be read is counted: 1 file could not be read to its end"), "{text}");
    }

    #[test]
    fn the_table_shows_format_characters_escaped() {
        let mut table = PostureTable::new(Vec::new());
        table.posture(&posture_showing("\u{202e}gnp\u{2029}")).unwrap();
        table.finish(&[], &crate::output::Unread::default()).unwrap();
        let text = String::from_utf8(table.out).unwrap();
        assert!(text.contains("* OK \\u{202e}gnp\\u{2029}"), "{text:?}");
    }
}
