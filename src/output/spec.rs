//! The `--output` syntax: `DESTINATION[,format=FORMAT][,facility=FACILITY]`.
//!
//! | destination               | what                                                        |
//! |---------------------------|-------------------------------------------------------------|
//! | `stdout` (or `-`)         | standard output                                             |
//! | `file:PATH`               | append to PATH; reopened on SIGHUP (live) for log rotation  |
//! | `syslog+udp://HOST:PORT`  | RFC 5424 over UDP (RFC 5426), one datagram per event        |
//! | `syslog+tcp://HOST:PORT`  | RFC 5424 over TCP with octet counting (RFC 6587)            |
//!
//! Options are parsed from the right, so a file path may itself hold commas.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt;
use std::path::PathBuf;

use super::{Facility, Format};

/// Where a sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
    /// `host:port` (or `[v6]:port`), resolved at each (re)connection.
    SyslogUdp(String),
    SyslogTcp(String),
}

/// As `--output` names it.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Stdout => f.write_str("stdout"),
            Destination::File(path) => write!(f, "file:{}", path.display()),
            Destination::SyslogUdp(address) => write!(f, "syslog+udp://{address}"),
            Destination::SyslogTcp(address) => write!(f, "syslog+tcp://{address}"),
        }
    }
}

/// One `--output` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSpec {
    pub destination: Destination,
    /// `None`: the `--format` of the command line.
    pub format: Option<Format>,
    pub facility: Facility,
}

impl OutputSpec {
    pub fn stdout(format: Option<Format>) -> Self {
        OutputSpec { destination: Destination::Stdout, format, facility: Facility::default() }
    }

    /// The format this output writes: its own `format=`, else `default_format` (`--format`),
    /// else text on standard output and JSON elsewhere.
    pub fn format_or(&self, default_format: Option<Format>) -> Format {
        let fallback = if self.destination == Destination::Stdout { Format::Text } else { Format::Json };
        self.format.or(default_format).unwrap_or(fallback)
    }

    /// Parses one `--output` value (the error says what is wrong, for clap to print).
    pub fn parse(text: &str) -> Result<OutputSpec, String> {
        let mut rest = text;
        let mut format = None;
        let mut facility = None;
        while let Some((head, option)) = rest.rsplit_once(',') {
            match option.split_once('=') {
                Some(("format", name)) if format.is_none() => {
                    format =
                        Some(Format::from_name(name).ok_or_else(|| {
                            format!("unknown format {name:?} in --output {text:?} (json, ecs or text)")
                        })?);
                }
                Some(("facility", name)) if facility.is_none() => {
                    facility = Some(Facility::from_name(name).ok_or_else(|| {
                        format!("unknown syslog facility {name:?} in --output {text:?} (e.g. local0, daemon, auth)")
                    })?);
                }
                _ => break,
            }
            rest = head;
        }
        let destination = if rest == "stdout" || rest == "-" {
            Destination::Stdout
        } else if let Some(path) = rest.strip_prefix("file:") {
            if path.is_empty() {
                return Err(format!("--output {text:?}: file: needs a path"));
            }
            Destination::File(PathBuf::from(path))
        } else if let Some(address) = rest.strip_prefix("syslog+udp://") {
            Destination::SyslogUdp(host_port(address, text)?)
        } else if let Some(address) = rest.strip_prefix("syslog+tcp://") {
            Destination::SyslogTcp(host_port(address, text)?)
        } else {
            return Err(format!(
                "--output {text:?}: expected stdout, file:PATH, syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT"
            ));
        };
        let is_syslog = matches!(destination, Destination::SyslogUdp(_) | Destination::SyslogTcp(_));
        if facility.is_some() && !is_syslog {
            return Err(format!("--output {text:?}: facility= applies to syslog destinations only"));
        }
        Ok(OutputSpec { destination, format, facility: facility.unwrap_or_default() })
    }
}

/// Checks `HOST:PORT` (a bracketed IPv6 literal as host is fine) and keeps it as given.
fn host_port(address: &str, whole: &str) -> Result<String, String> {
    let bad = || format!("--output {whole:?}: expected HOST:PORT after the scheme (e.g. 127.0.0.1:514, [::1]:514)");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && !host.contains([':', '/', '[', ']']),
    };
    match port.parse::<u16>() {
        Ok(port) if port != 0 && host_ok => Ok(address.to_string()),
        _ => Err(bad()),
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.destination {
            Destination::Stdout => write!(f, "stdout"),
            Destination::File(path) => write!(f, "file:{}", path.display()),
            Destination::SyslogUdp(address) => write!(f, "syslog+udp://{address}"),
            Destination::SyslogTcp(address) => write!(f, "syslog+tcp://{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(OutputSpec::parse("stdout").unwrap(), OutputSpec::stdout(None));
        assert_eq!(OutputSpec::parse("-,format=ecs").unwrap(), OutputSpec::stdout(Some(Format::Ecs)));
        let file = OutputSpec::parse("file:/var/log/credwatch.json").unwrap();
        assert_eq!(file.destination, Destination::File(PathBuf::from("/var/log/credwatch.json")));
        assert_eq!(file.format, None);
        let udp = OutputSpec::parse("syslog+udp://127.0.0.1:514,format=ecs,facility=auth").unwrap();
        assert_eq!(udp.destination, Destination::SyslogUdp("127.0.0.1:514".to_string()));
        assert_eq!((udp.format, udp.facility), (Some(Format::Ecs), Facility::from_name("auth").unwrap()));
        let tcp = OutputSpec::parse("syslog+tcp://[::1]:601").unwrap();
        assert_eq!(tcp.destination, Destination::SyslogTcp("[::1]:601".to_string()));
        assert_eq!(tcp.facility, Facility::default());
        let named = OutputSpec::parse("syslog+tcp://siem.example.test:6514").unwrap();
        assert_eq!(named.to_string(), "syslog+tcp://siem.example.test:6514");
    }

    #[test]
    fn options_come_off_the_right_so_paths_may_hold_commas() {
        let spec = OutputSpec::parse("file:alerts,2026.json,format=text").unwrap();
        assert_eq!(spec.destination, Destination::File(PathBuf::from("alerts,2026.json")));
        assert_eq!(spec.format, Some(Format::Text));
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        for bad in [
            "",
            "file:",
            "syslog://127.0.0.1:514",
            "syslog+udp://127.0.0.1",
            "syslog+udp://127.0.0.1:0",
            "syslog+udp://127.0.0.1:70000",
            "syslog+tcp://::1:514",
            "syslog+udp://127.0.0.1:514,format=xml",
            "file:x.json,facility=local0",
            "syslog+udp://127.0.0.1:514,facility=local9",
        ] {
            assert!(OutputSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
