//! The command line as the user typed it (clap), and its resolution into a run configuration.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use zeroize::Zeroizing;

use credwatch::alert::{DigestKey, KeyedPurpose, RedactionPolicy, UsernamePolicy};
use credwatch::flow::FlowLimits;
use credwatch::output::{self, OutputSpec};
use credwatch::pipeline::{RunConfig, DEFAULT_QUEUE_SEGMENTS, MAX_QUEUE_SEGMENTS};
use credwatch::proto::{PortMap, ProtoConfig};

/// Find mail logins (POP3, IMAP, SMTP, ManageSieve) whose passwords cross the network in clear,
/// and name the servers that accepted them. Passwords are never shown.
#[derive(Debug, Parser)]
#[command(name = "credwatch", version, propagate_version = true, after_help = EXIT_STATUS_HELP)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Checks what clap's attributes cannot express; an error is a bad command line (exit 2).
    pub fn check(&self) -> Result<(), clap::Error> {
        let (analysis, threads) = match &self.command {
            Command::Read(read) | Command::Posture(read) => (&read.analysis, read.threads),
            Command::Report(report) => (&report.read.analysis, report.read.threads),
            Command::Live(live) => (&live.analysis, live.threads()),
        };
        // Each thread gets about its share of the budget (reading files, the reading thread a
        // smaller one): the minimum holds for the average share.
        let needed = MIN_MAX_BUFFERED_TOTAL.saturating_mul(usize::from(threads));
        if analysis.limits.max_buffered_total < needed {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--max-buffered-total {} is split between {threads} threads, less than the minimum of \
                     {MIN_MAX_BUFFERED_TOTAL} each: raise it to at least {needed} or use fewer threads",
                    analysis.limits.max_buffered_total
                ),
            ));
        }
        for (index, spec) in analysis.outputs.iter().enumerate() {
            if analysis.outputs.iter().skip(index + 1).any(|other| other.destination == spec.destination) {
                return Err(Cli::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "--output names {} twice: each destination takes one format (records would be written twice)",
                        spec.destination
                    ),
                ));
            }
        }
        // Standard input named twice: its second reading would find it empty.
        let paths: &[PathBuf] = match &self.command {
            Command::Read(read) | Command::Posture(read) => &read.paths,
            Command::Report(report) => &report.read.paths,
            Command::Live(_) => &[],
        };
        if paths.iter().filter(|path| path.as_os_str() == "-").count() > 1 {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "standard input (`-`) is named more than once: it can be read only once",
            ));
        }
        Ok(())
    }
}

pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0   the run completed (whether or not credentials were found), or standard output, the only
      output, was closed by its reader (`| head`) and the run stopped there (nothing having
      failed by then)
  1   fatal error (bad input list, output failure)
  2   bad command line
  3   some capture files could not be read to the end, or, in a directory, opened or listed
      (the alerts found are still printed; also when standard output was closed after that)
  4   the run completed (live: stopped cleanly), but a file or syslog output lost records, or
      standard output was closed by its reader while other outputs went on (counted on stderr
      and in the stats events)
  10  with --fail-on-alert: a cleartext credential was found (and nothing failed; also when
      standard output, the only output, was closed after one was found)";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report the logins that crossed in clear in capture files
    ///
    /// Captures are pcap or pcapng, gzip-compressed or not; `-` reads standard input; directories
    /// are searched for captures. Files are read one after another, in the order of their first packets' times
    /// (the order mergecap gives them), whatever order they are named or listed in.
    Read(ReadArgs),
    /// List every mail server seen and its TLS posture, most exposed first
    ///
    /// Every POP3, IMAP, SMTP and ManageSieve server in the captures (logins or not): whether it
    /// offers and requires TLS, with the evidence. Takes the same inputs and options as `read`;
    /// its outputs carry postures only: text on standard output is a table, every other output
    /// one `server_posture` record per server (`--format json` or `ecs`, `--output`), after the
    /// `stats` event with `--stats`.
    Posture(ReadArgs),
    /// Watch network interfaces live until SIGINT or SIGTERM
    ///
    /// For a SPAN/mirror port, a TAP or a cloud traffic-mirroring target. Needs the `live` build
    /// feature and CAP_NET_RAW + CAP_NET_ADMIN (or root with --user to drop it). SIGHUP reopens
    /// output files.
    Live(LiveArgs),
    /// Write the servers at risk as one self-contained HTML page
    ///
    /// A page for people who would rather look than read: headline figures, a chart of
    /// exposures over time, the servers that exposed credentials (most exposed first, with who
    /// must act) and the TLS posture of every mail server. One file, no script, nothing fetched
    /// from the network. Takes the same inputs and options as `read`; events go to the --output
    /// sinks only when some are named.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per alert and a table of the servers at risk, for people.
    Text,
    /// One JSON object per line, nothing else: the native contract (docs/schema/).
    Json,
    /// Elastic Common Schema 8.x documents, one per line.
    Ecs,
}

impl Format {
    pub fn output_format(self) -> output::Format {
        match self {
            Format::Text => output::Format::Text,
            Format::Json => output::Format::Json,
            Format::Ecs => output::Format::Ecs,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsernameMode {
    /// First character and domain, when it is a host name: b***@example.test.
    Masked,
    /// In full, for teams allowed to see them.
    Full,
    /// Keyed HMAC-SHA256 (needs --key-file or CREDWATCH_KEY).
    Hashed,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Capture files or directories; `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Exit with status 10 when a cleartext credential was found.
    #[arg(long)]
    pub fail_on_alert: bool,
    /// Worker threads analysing flows. With 1 (the default: the least CPU time per file)
    /// everything runs on the calling thread without queues or copies; with more, the reading
    /// thread keeps a share of the flows and worker threads take the rest, the first of them
    /// writing (on two cores, 2 take about 0.6-0.7x the wall time on mail-heavy traffic; see
    /// bench/README.md). The output is the same whatever the number, unless the flow table
    /// fills (--max-flows): which flows are evicted may then differ.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// Also write the closing counters as a `stats` event (-v logs them in one line).
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Interface to capture (repeat for several; `any`: all interfaces, Linux cooked headers,
    /// no VLAN tags in the filter).
    #[arg(short, long = "interface", required = true, value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// BPF filter (tcpdump syntax) instead of the default built from the mail ports; VLAN-tagged
    /// and tunnelled traffic needs `vlan and ...` and the tunnel carriers (see docs/deployment.md).
    #[arg(long, value_name = "EXPR", conflicts_with = "any_port")]
    pub filter: Option<String>,
    /// Default filter on every TCP port instead of the mail ports: finds mail servers on
    /// unusual ports, at the cost of copying all TCP traffic to the workers.
    #[arg(long)]
    pub any_port: bool,
    /// Do not put the interfaces in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Bytes kept of each frame.
    #[arg(long, default_value_t = 65_535, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(128..=262_144))]
    pub snaplen: u32,
    /// Kernel capture buffer per interface, in MiB (default: libpcap's, about 2 MiB; raise it
    /// when kernel_drops grow).
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub buffer_size: Option<u32>,
    /// Hand each packet over at once instead of in blocks (lower latency, more CPU).
    #[arg(long)]
    pub immediate: bool,
    /// Worker threads analysing flows (default: the cores available, up to 64 and to one per
    /// MiB of --max-buffered-total); each interface also has a capture thread, and there is
    /// one output thread.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Segments each worker's queue holds (1 to 1048576), in N/1024 batches of up to 1024
    /// segments or 256 KiB (a batch may leave before it is full); past it the capture drops
    /// (counted as queue_drops).
    #[arg(long, default_value_t = DEFAULT_QUEUE_SEGMENTS, value_name = "N", value_parser = queue_size)]
    pub queue_size: usize,
    /// Seconds between `stats` events (and log lines); 0: only at exit.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub stats_interval: u64,
    /// Seconds between server inventories (`server_report` per exposed server and
    /// `server_posture` per mail server); 0: only at exit.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub report_interval: u64,
    /// After opening the interfaces, switch to this user (and its group, unless --group).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// After opening the interfaces, switch to this group (with --user).
    #[arg(long, value_name = "NAME", requires = "user")]
    pub group: Option<String>,
    /// Analyse packets as root (not recommended: drop with --user, or run unprivileged with
    /// CAP_NET_RAW and CAP_NET_ADMIN).
    #[arg(long)]
    pub allow_root: bool,
    /// Report every login, even the repeats of a polling client (live deduplicates within 1h
    /// by default; see --dedup-window).
    #[arg(long, conflicts_with = "dedup_window")]
    pub no_dedup: bool,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// What both commands share: how to analyse and how to report.
#[derive(Debug, Args)]
pub struct AnalysisArgs {
    /// Output format of every --output that names none [default: text on stdout, json in files
    /// and syslog].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
    /// Where events go; repeat for several at once (default: stdout). SINK is one of
    /// `stdout`, `file:PATH` (appended to, flushed every second, reopened on SIGHUP when live),
    /// `syslog+udp://HOST:PORT` or `syslog+tcp://HOST:PORT` (RFC 5424; TCP with octet counting),
    /// each optionally followed by `,format=json|ecs|text` and, for syslog, `,facility=NAME`
    /// (default local0). Example: --output stdout --output file:/var/log/credwatch.json,format=ecs
    /// --output syslog+udp://127.0.0.1:514. A file or syslog destination that fails is retried in
    /// the background; what it cannot take is dropped and counted, never holding up the run.
    #[arg(short, long = "output", value_name = "SINK", value_parser = OutputSpec::parse)]
    pub outputs: Vec<OutputSpec>,
    /// Report repeats of the same login (same client host, server, user, mechanism and outcome)
    /// within this window (on capture time) once, as a repeat_summary with repeat_count,
    /// first_seen and last_seen, instead of one alert each: e.g. 10m, 1h, 1d. Off by default for `read`, so a
    /// forensic reading shows every login; `live` defaults to 1h (`--no-dedup` turns it off).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub dedup_window: Option<Duration>,
    /// How user names appear in alerts.
    #[arg(long, value_enum, default_value_t = UsernameMode::Masked, value_name = "MODE")]
    pub usernames: UsernameMode,
    /// Shortcut for --usernames full.
    #[arg(long, conflicts_with = "usernames")]
    pub show_usernames: bool,
    /// File holding the secret key for --usernames hashed and --fingerprint-secrets (a key on the
    /// command line would show in the process list). The CREDWATCH_KEY variable also works.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Add a keyed fingerprint of each secret to alerts, to spot one password used on several
    /// accounts without revealing it (needs a key).
    #[arg(long)]
    pub fingerprint_secrets: bool,
    /// Tell connections apart by addresses and ports alone, whatever their VLAN tags: for SPAN
    /// ports that see a connection's two directions with different tags (each would be half a
    /// connection), or the two routed copies of it on two VLANs (each login reported twice).
    /// Alerts then carry no `vlan` field.
    #[arg(long)]
    pub ignore_vlans: bool,
    #[command(flatten)]
    pub ports: PortArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Shortest key accepted for `--usernames hashed` and `--fingerprint-secrets`: 128 bits, so that
/// whoever reads the alerts cannot find the key by brute force and then test guessed user names
/// or passwords against the hashes and fingerprints.
pub const MIN_KEY_LEN: usize = 16;

/// A duration as a number and a unit: `90s`, `10m`, `1h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 10m"))?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    match number.checked_mul(unit_seconds) {
        Some(0) => Err(format!("{text:?}: the duration must be positive")),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Err(format!("{text:?}: too long")),
    }
}

/// Live workers by default: one per core, up to 64 (each gets its share of the default buffer
/// budget, which covers 128 threads' minimum).
const MAX_DEFAULT_THREADS: u16 = 64;

fn default_threads() -> u16 {
    std::thread::available_parallelism()
        .map_or(1, |n| u16::try_from(n.get()).unwrap_or(MAX_DEFAULT_THREADS).min(MAX_DEFAULT_THREADS))
}

/// Ports are hints, not limits: mail protocols are also recognised on other ports by their
/// greetings. Each list is comma-separated; `none` (or an empty value) names no port; an option
/// given twice adds its lists up.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// POP3 ports.
    #[arg(long, value_parser = port_list, default_value = "110", value_name = "PORTS")]
    pub pop3_ports: Vec<PortList>,
    /// IMAP ports.
    #[arg(long, value_parser = port_list, default_value = "143", value_name = "PORTS")]
    pub imap_ports: Vec<PortList>,
    /// SMTP ports.
    #[arg(long, value_parser = port_list, default_value = "25,587,2525", value_name = "PORTS")]
    pub smtp_ports: Vec<PortList>,
    /// ManageSieve ports (mail filters, logged into with the mailbox's password).
    #[arg(long, value_parser = port_list, default_value = "4190", value_name = "PORTS")]
    pub sieve_ports: Vec<PortList>,
    /// Implicit-TLS ports (IMAPS, POP3S, SMTPS): counted as protected when the flow starts with
    /// TLS; mail in clear there is read and flagged (`none`: no port is one, and live capture
    /// leaves them out of its filter).
    #[arg(long, value_parser = port_list, default_value = "993,995,465", value_name = "PORTS")]
    pub tls_ports: Vec<PortList>,
}

/// A list of ports given on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortList(pub Vec<u16>);

/// The ports of an option given once or more.
fn all_ports(lists: &[PortList]) -> Vec<u16> {
    lists.iter().flat_map(|list| list.0.iter().copied()).collect()
}

/// `110,1110`, or `none` or nothing for no port (so that a default list can be emptied).
fn port_list(text: &str) -> Result<PortList, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(PortList::default());
    }
    text.split(',')
        .map(|port| match port.trim() {
            "" => Err("an empty entry between commas".to_string()),
            port => port.parse::<u16>().map_err(|_| format!("{port:?} is not a port (0-65535)")),
        })
        .collect::<Result<Vec<u16>, String>>()
        .map(PortList)
}

/// The least each limit may be set to. Below these a run does not fail: it silently misses logins
/// (flows evicted or let go before their login, lines shed for lack of memory) and reports "no
/// credential" all the same, so such values are refused as a bad command line instead.
pub const MIN_MAX_FLOWS: usize = 64;
/// A line (16 KiB): a greeting, a capability list and a login fit in a few of them.
pub const MIN_INSPECTION_DEPTH: usize = 16 * 1024;
/// A line's worth, so that one reordered line can wait for the segment before it.
pub const MIN_MAX_BUFFERED_PER_FLOW: usize = 16 * 1024;
/// What a few flows hold at once at the default per-flow limit: a partial line each way, an
/// IMAP command's literals and out-of-order bytes both ways (about 208 KiB per flow), with room
/// for the share of each thread.
pub const MIN_MAX_BUFFERED_TOTAL: usize = 1024 * 1024;

/// Half a minute of silence: a person typing a password at a prompt, a client waiting on a slow
/// server; less would close flows between a greeting and its login.
pub const MIN_IDLE_TIMEOUT_SECS: usize = 30;

/// A queue size from 1 to [`MAX_QUEUE_SEGMENTS`]: a huge one would have the queues allocated or
/// filled past any memory the host has.
fn queue_size(text: &str) -> Result<usize, String> {
    let value: usize = text.parse().map_err(|_| format!("{text:?}: expected a whole number"))?;
    if !(1..=MAX_QUEUE_SEGMENTS).contains(&value) {
        return Err(format!("{value} is not between 1 and the maximum of {MAX_QUEUE_SEGMENTS} segments"));
    }
    Ok(value)
}

/// A number of at least `MIN`, or a message saying why less would blind the run.
fn at_least<const MIN: usize>(text: &str) -> Result<usize, String> {
    let value: usize = text.parse().map_err(|_| format!("{text:?}: expected a whole number"))?;
    if value < MIN {
        return Err(format!("{value} is below the minimum of {MIN}: less would silently miss logins"));
    }
    Ok(value)
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Flows tracked at once (at least 64); past it flows are evicted (and counted): those that
    /// never carried data first, logins in progress last, the least recently seen first in each.
    #[arg(long, default_value_t = FlowLimits::default().max_flows, value_name = "N", value_parser = at_least::<MIN_MAX_FLOWS>)]
    pub max_flows: usize,
    /// Bytes of each flow inspected before it is let go, if no login came by then (at least
    /// 16384).
    #[arg(long, default_value_t = ProtoConfig::default().inspection_depth as usize, value_name = "BYTES", value_parser = at_least::<MIN_INSPECTION_DEPTH>)]
    pub inspection_depth: usize,
    /// Out-of-order bytes buffered per flow direction (at least 16384).
    #[arg(long, default_value_t = FlowLimits::default().reassembly.max_buffered, value_name = "BYTES", value_parser = at_least::<MIN_MAX_BUFFERED_PER_FLOW>)]
    pub max_buffered_per_flow: usize,
    /// Bytes buffered across all flows: out-of-order bytes, partial lines, literals (at least
    /// 1048576).
    #[arg(long, default_value_t = FlowLimits::default().max_buffered_total, value_name = "BYTES", value_parser = at_least::<MIN_MAX_BUFFERED_TOTAL>)]
    pub max_buffered_total: usize,
    /// Seconds without packets after which a flow is closed (on capture time; at least 30).
    #[arg(long, default_value_t = FlowLimits::default().idle_timeout.as_secs() as usize, value_name = "SECONDS", value_parser = at_least::<MIN_IDLE_TIMEOUT_SECS>)]
    pub idle_timeout: usize,
}

impl ReadArgs {
    /// The run configuration these flags ask for.
    pub fn run_config(&self) -> anyhow::Result<RunConfig> {
        Ok(RunConfig { threads: self.threads.into(), stats_event: self.stats, ..self.analysis.run_config()? })
    }
}

/// Live capture deduplicates within this window unless told otherwise: a mail client polling
/// every few minutes would otherwise raise hundreds of identical alerts a day.
pub const LIVE_DEDUP_WINDOW: Duration = Duration::from_secs(3600);

impl LiveArgs {
    /// The dedup window live capture uses.
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn dedup_window(&self) -> Option<Duration> {
        (!self.no_dedup).then(|| self.analysis.dedup_window.unwrap_or(LIVE_DEDUP_WINDOW))
    }

    /// The workers asked for, or by default one per core (up to 64) that the buffer budget
    /// gives its minimum share: a default never makes a command line bad.
    pub fn threads(&self) -> u16 {
        self.threads.unwrap_or_else(|| {
            let budget = self.analysis.limits.max_buffered_total / MIN_MAX_BUFFERED_TOTAL;
            default_threads().min(u16::try_from(budget).unwrap_or(u16::MAX)).max(1)
        })
    }

    /// The run configuration these flags ask for (only builds with the `live` feature use it).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    pub fn run_config(&self) -> anyhow::Result<RunConfig> {
        Ok(RunConfig {
            threads: self.threads().into(),
            queue_segments: self.queue_size,
            stats_event: true,
            ..self.analysis.run_config()?
        })
    }
}

impl AnalysisArgs {
    /// The analysis part of the run configuration.
    fn run_config(&self) -> anyhow::Result<RunConfig> {
        let key = self.key()?;
        let username = match (self.show_usernames, self.usernames) {
            (true, _) | (false, UsernameMode::Full) => UsernamePolicy::Full,
            (false, UsernameMode::Masked) => UsernamePolicy::Masked,
            (false, UsernameMode::Hashed) => match &key {
                Some(key) => UsernamePolicy::Hashed { key: DigestKey::derive(key, KeyedPurpose::UserName) },
                None => bail!("--usernames hashed needs a key: --key-file FILE or the CREDWATCH_KEY variable"),
            },
        };
        if self.fingerprint_secrets && key.is_none() {
            bail!("--fingerprint-secrets needs a key: --key-file FILE or the CREDWATCH_KEY variable");
        }
        let fingerprint_key = key
            .filter(|_| self.fingerprint_secrets)
            .map(|key| DigestKey::derive(&key, KeyedPurpose::SecretFingerprint));
        let policy = RedactionPolicy { username, fingerprint_key };
        let ports = PortMap {
            pop3: all_ports(&self.ports.pop3_ports),
            imap: all_ports(&self.ports.imap_ports),
            smtp: all_ports(&self.ports.smtp_ports),
            managesieve: all_ports(&self.ports.sieve_ports),
            implicit_tls: all_ports(&self.ports.tls_ports),
        };
        let mut flow = FlowLimits {
            max_flows: self.limits.max_flows,
            max_buffered_total: self.limits.max_buffered_total,
            idle_timeout: Duration::from_secs(u64::try_from(self.limits.idle_timeout).unwrap_or(u64::MAX)),
            ..FlowLimits::default()
        };
        flow.reassembly.max_buffered = self.limits.max_buffered_per_flow;
        let proto = ProtoConfig {
            ports,
            policy,
            inspection_depth: self.limits.inspection_depth as u64,
            ..ProtoConfig::default()
        };
        Ok(RunConfig { flow, proto, ignore_vlans: self.ignore_vlans, ..RunConfig::default() })
    }

    /// The key, wiped from memory when dropped (the untrimmed copy read too).
    fn key(&self) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
        let key = match &self.key_file {
            Some(path) => Some(Zeroizing::new(
                std::fs::read(path).with_context(|| format!("cannot read key file {}", path.display()))?,
            )),
            None => std::env::var_os("CREDWATCH_KEY").map(|k| Zeroizing::new(k.into_encoded_bytes())),
        };
        let key = key.map(|k| Zeroizing::new(k.trim_ascii().to_vec()));
        if let Some(len) = key.as_ref().map(|key| key.len()).filter(|len| *len < MIN_KEY_LEN) {
            bail!(
                "the key is {len} bytes long, too short to keep hashed user names and fingerprints from being \
                 guessed: use at least {MIN_KEY_LEN} random bytes (e.g. `head -c 32 /dev/urandom > KEYFILE`)"
            );
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("credwatch").chain(args.iter().copied()))
    }

    fn read_args(args: &[&str]) -> ReadArgs {
        match parse(args).unwrap().command {
            Command::Read(read) | Command::Posture(read) => read,
            Command::Report(report) => report.read,
            Command::Live(_) => panic!("not read"),
        }
    }

    #[test]
    fn read_defaults() {
        let read = read_args(&["read", "a.pcap"]);
        assert_eq!(read.analysis.format, None);
        assert_eq!(read.threads, 1);
        assert!(!read.stats);
        let config = read.run_config().unwrap();
        assert_eq!(config.proto.ports.smtp, [25, 587, 2525]);
        assert_eq!(config.proto.policy.username, UsernamePolicy::Masked);
    }

    #[test]
    fn ports_and_limits_parse() {
        let read =
            read_args(&["read", "-f", "json", "--pop3-ports", "110,1110", "--max-flows", "100", "--threads", "4", "x"]);
        let config = read.run_config().unwrap();
        assert_eq!(config.proto.ports.pop3, [110, 1110]);
        assert_eq!(config.flow.max_flows, 100);
        assert_eq!(config.threads, 4);
        assert!(parse(&["read", "--pop3-ports", "70000", "x"]).is_err());
        assert!(parse(&["read", "--pop3-ports", "110,,", "x"]).is_err());
        let twice = read_args(&["read", "--pop3-ports", "110", "--pop3-ports", "1110,2110", "x"]);
        assert_eq!(twice.run_config().unwrap().proto.ports.pop3, [110, 1110, 2110], "given twice, added up");
        for none in ["", "none", "NONE"] {
            let config = read_args(&["read", "--tls-ports", none, "x"]).run_config().unwrap();
            assert!(config.proto.ports.implicit_tls.is_empty(), "{none:?}");
        }
        assert!(parse(&["read", "--threads", "0", "x"]).is_err());
    }

    #[test]
    fn standard_input_can_be_named_once() {
        assert!(parse(&["read", "-", "a.pcap"]).unwrap().check().is_ok());
        for command in [&["read"][..], &["posture"], &["report", "--html", "r.html"]] {
            let args = [command, &["-", "a.pcap", "-"]].concat();
            let error = parse(&args).unwrap().check().expect_err("- twice");
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert!(error.to_string().contains("standard input (`-`) is named more than once"), "{error}");
        }
    }

    /// Limits so small that the run would silently miss logins are a bad command line (exit
    /// status 2), named with their minimum; the minimums themselves are accepted.
    #[test]
    fn limits_below_their_minimum_are_refused() {
        let limits = [
            ("--max-buffered-total", MIN_MAX_BUFFERED_TOTAL),
            ("--max-buffered-per-flow", MIN_MAX_BUFFERED_PER_FLOW),
            ("--max-flows", MIN_MAX_FLOWS),
            ("--inspection-depth", MIN_INSPECTION_DEPTH),
            ("--idle-timeout", MIN_IDLE_TIMEOUT_SECS),
        ];
        for (option, min) in limits {
            for too_small in [0, min / 2, min - 1] {
                let error = parse(&["read", option, &too_small.to_string(), "x"]).expect_err(option);
                assert_eq!(error.exit_code(), 2, "{option} {too_small}");
                assert!(error.to_string().contains(&format!("minimum of {min}")), "{option} {too_small}");
            }
            let read = read_args(&["read", option, &min.to_string(), "x"]);
            assert!(read.run_config().is_ok(), "{option} {min}");
        }
        let config = read_args(&["read", "--max-buffered-total", "1048576", "--inspection-depth", "20000", "x"])
            .run_config()
            .unwrap();
        assert_eq!((config.flow.max_buffered_total, config.proto.inspection_depth), (1_048_576, 20_000));
    }

    /// One destination named twice would get every record twice (or, for stdout, fail at
    /// start-up as a fatal error): a bad command line instead, whatever the formats.
    #[test]
    fn a_destination_named_twice_is_refused() {
        for (first, second) in
            [("stdout", "-"), ("file:a.json", "file:a.json,format=ecs"), ("syslog+udp://h:514", "syslog+udp://h:514")]
        {
            for command in ["read", "posture", "live"] {
                let mut args = vec![command, "-o", first, "-o", second];
                args.extend(if command == "live" { ["-i", "eth0"] } else { ["x", "--threads=1"] });
                let error = parse(&args).unwrap().check().expect_err(second);
                assert_eq!(error.exit_code(), 2);
                assert!(error.to_string().contains("twice"), "{error}");
            }
        }
        let distinct = parse(&["read", "-o", "stdout", "-o", "file:a.json", "-o", "file:b.json", "x"]).unwrap();
        assert!(distinct.check().is_ok());
    }

    /// The buffer budget is split between the threads, and each share must meet the minimum, or
    /// every thread would shed what it holds (seen: 1024 threads on 1 MiB found no login).
    #[test]
    fn the_buffer_budget_must_cover_every_threads_minimum() {
        let one_mib = MIN_MAX_BUFFERED_TOTAL.to_string();
        let two_mib = (2 * MIN_MAX_BUFFERED_TOTAL).to_string();
        let error = parse(&["read", "--threads", "3", "--max-buffered-total", &two_mib, "x"]).unwrap().check();
        let error = error.expect_err("two shares of a minimum for three threads");
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains(&format!("at least {}", 3 * MIN_MAX_BUFFERED_TOTAL)), "{error}");
        assert!(parse(&["read", "--threads", "2", "--max-buffered-total", &two_mib, "x"]).unwrap().check().is_ok());
        assert!(parse(&["read", "--max-buffered-total", &one_mib, "x"]).unwrap().check().is_ok());
        let live = parse(&["live", "-i", "eth0", "--threads", "1024", "--max-buffered-total", &two_mib]).unwrap();
        assert!(live.check().is_err());
        assert!(parse(&["live", "-i", "eth0", "--threads", "128"]).unwrap().check().is_ok(), "the default budget");
        // Left to its default, the thread count fits the budget instead of making it refused.
        let small = parse(&["live", "-i", "eth0", "--max-buffered-total", &two_mib]).unwrap();
        assert!(small.check().is_ok());
        let Command::Live(live) = &small.command else { unreachable!() };
        assert!((1..=2).contains(&live.threads()), "{}", live.threads());
    }

    #[test]
    fn outputs_and_dedup_window_parse() {
        let read = read_args(&[
            "read",
            "--output",
            "stdout",
            "-o",
            "file:alerts.json,format=ecs",
            "--output",
            "syslog+tcp://127.0.0.1:601,facility=auth",
            "--dedup-window",
            "10m",
            "x",
        ]);
        assert_eq!(read.analysis.outputs.len(), 3);
        assert_eq!(read.analysis.outputs[1].format, Some(output::Format::Ecs));
        assert_eq!(read.analysis.dedup_window, Some(Duration::from_secs(600)));
        let read = read_args(&["read", "x"]);
        assert!(read.analysis.outputs.is_empty() && read.analysis.dedup_window.is_none());
        assert!(parse(&["read", "--output", "syslog+udp://nowhere", "x"]).is_err());
        assert!(parse(&["read", "--dedup-window", "10", "x"]).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "m", "0m", "10", "10x", "1.5h", "-1h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hashing_needs_a_key() {
        let read = read_args(&["read", "--usernames", "hashed", "x"]);
        if std::env::var_os("CREDWATCH_KEY").is_none() {
            assert!(read.run_config().is_err());
        }
        assert!(parse(&["read"]).is_err());
    }

    #[test]
    fn keys_shorter_than_16_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = |key: &[u8]| {
            let path = dir.path().join("key");
            std::fs::write(&path, key).unwrap();
            let path = path.to_str().unwrap().to_string();
            read_args(&["read", "--usernames", "hashed", "--fingerprint-secrets", "--key-file", &path, "x"])
                .run_config()
        };
        for short in [&b"k"[..], b"fifteen-bytes-k", b"  fifteen-bytes-k\n"] {
            let Err(error) = run(short) else { panic!("a short key is refused") };
            let error = error.to_string();
            assert!(error.contains("at least 16"), "the error names the minimum");
            assert!(!error.contains("fifteen"), "the error shows the key");
        }
        let config = run(b"sixteen-bytes-ky\n").unwrap();
        let trimmed = DigestKey::derive(b"sixteen-bytes-ky", KeyedPurpose::SecretFingerprint);
        assert_eq!(config.proto.policy.fingerprint_key, Some(trimmed), "the key file's bytes, its newline trimmed");
    }

    #[test]
    fn live_options_parse() {
        let Command::Live(live) = parse(&[
            "live",
            "-i",
            "eth1",
            "-i",
            "eth2",
            "--no-promisc",
            "--buffer-size",
            "64",
            "--threads",
            "2",
            "--stats-interval",
            "10",
            "--user",
            "credwatch",
            "-f",
            "json",
        ])
        .unwrap()
        .command
        else {
            panic!("not live")
        };
        assert_eq!(live.interfaces, ["eth1", "eth2"]);
        assert!(live.no_promisc && !live.any_port && !live.allow_root);
        assert_eq!((live.buffer_size, live.snaplen, live.stats_interval), (Some(64), 65_535, 10));
        assert_eq!(live.analysis.format, Some(Format::Json));
        assert_eq!(live.dedup_window(), Some(LIVE_DEDUP_WINDOW));
        let config = live.run_config().unwrap();
        assert_eq!((config.threads, config.stats_event), (2, true));
        assert_eq!(live.queue_size, DEFAULT_QUEUE_SEGMENTS);
        assert!(parse(&["live"]).is_err(), "an interface is required");
        assert!(parse(&["live", "-i", "x", "--any-port", "--filter", "tcp"]).is_err());
        assert!(parse(&["live", "-i", "x", "--group", "g"]).is_err(), "--group goes with --user");
    }

    /// A huge `--queue-size` would have crossbeam allocate (or the queues fill) past any memory:
    /// a bad command line (exit status 2), named with the maximum.
    #[test]
    fn the_queue_size_is_bounded() {
        let queue_size = |value: &str| match parse(&["live", "-i", "x", "--queue-size", value]) {
            Ok(Cli { command: Command::Live(live), .. }) => Ok(live.run_config().unwrap().queue_segments),
            Ok(_) => panic!("not live"),
            Err(error) => Err(error),
        };
        assert_eq!(queue_size(&MAX_QUEUE_SEGMENTS.to_string()).unwrap(), MAX_QUEUE_SEGMENTS);
        assert_eq!(queue_size("1").unwrap(), 1);
        for too_big in [MAX_QUEUE_SEGMENTS + 1, usize::MAX] {
            let error = queue_size(&too_big.to_string()).expect_err("too big");
            assert_eq!(error.exit_code(), 2);
            assert!(error.to_string().contains(&MAX_QUEUE_SEGMENTS.to_string()), "{error}");
        }
        assert_eq!(queue_size("0").expect_err("empty queues").exit_code(), 2);
    }

    #[test]
    fn report_needs_an_html_file() {
        let Command::Report(report) = parse(&["report", "--html", "out.html", "-f", "json", "a.pcap"]).unwrap().command
        else {
            panic!("report parses as Report");
        };
        assert_eq!(report.html, PathBuf::from("out.html"));
        assert_eq!(report.read.paths, [PathBuf::from("a.pcap")]);
        assert!(report.read.analysis.outputs.is_empty());
        assert!(parse(&["report", "a.pcap"]).is_err(), "--html is required");
    }
}
