//! The `credwatch` command: parse the command line, set up logging, run, map the result to an
//! exit status (documented in `--help`).

mod cli;
#[cfg(feature = "live")]
mod privileges;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{AnalysisArgs, Cli, Command, Format, LiveArgs, ReadArgs};
use credwatch::output::{
    Dedup, Destination, Format as OutputFormat, HtmlReport, Observer, OpenError, OutputSpec, Outputs, PostureOnly,
    PostureTable, Sink, WhenFull,
};
use credwatch::pipeline::{self, Input, RunError};
use credwatch::progress::{Progress, TerminalProgress};

const EXIT_FATAL: u8 = 1;
const EXIT_PARTIAL: u8 = 3;
const EXIT_UNDELIVERED: u8 = 4;
const EXIT_ALERT: u8 = 10;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = cli.check() {
        error.exit();
    }
    // A daemon's log is its only voice: live capture logs at info (stats, interface trouble).
    let daemon = matches!(cli.command, Command::Live(_));
    init_logging(cli.verbose, cli.quiet, daemon);
    // Log lines on stderr would tangle with a progress bar redrawn there.
    let progress_allowed = !cli.quiet && cli.verbose == 0;
    let result = match &cli.command {
        Command::Read(args) => read(args, Mode::Read, progress_allowed),
        Command::Posture(args) => read(args, Mode::Posture, progress_allowed),
        Command::Report(report) => read(&report.read, Mode::Report(&report.html), progress_allowed),
        Command::Live(args) => live(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            // Once, and whatever the log filter: the run's last word.
            eprintln!("credwatch: {error:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool, daemon: bool) {
    let default = match (quiet, verbose + u8::from(daemon)) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
}

/// Standard output, not locked: the sink moves to the output thread.
fn stdout() -> std::io::BufWriter<std::io::Stdout> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout())
}

/// Every sink `--output` names (`default_specs` when none is named), behind the dedup window if any.
fn sinks(
    analysis: &AnalysisArgs,
    default_specs: Vec<OutputSpec>,
    dedup_window: Option<std::time::Duration>,
    when_full: WhenFull,
) -> anyhow::Result<Box<dyn Sink>> {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let specs = if analysis.outputs.is_empty() { default_specs } else { analysis.outputs.clone() };
    let outputs = open_outputs(analysis, &specs, colour, when_full)?;
    Ok(match dedup_window {
        Some(window) => Box::new(Dedup::new(outputs, window)),
        None => Box::new(outputs),
    })
}

/// The sinks `specs` name, in `--format` unless they name their own.
fn open_outputs(
    analysis: &AnalysisArgs,
    specs: &[OutputSpec],
    colour: bool,
    when_full: WhenFull,
) -> Result<Outputs, OpenError> {
    let observer = std::sync::Arc::new(Observer::local());
    Outputs::open(specs, analysis.format.map(Format::output_format), observer, stdout(), colour, when_full)
}

/// `posture`'s outputs: the table for people where text goes to standard output, each server's
/// `server_posture` record on every other `--output` (JSON, ECS or a text line).
fn posture_sinks(analysis: &AnalysisArgs) -> anyhow::Result<Box<dyn Sink>> {
    let specs = if analysis.outputs.is_empty() { vec![OutputSpec::stdout(None)] } else { analysis.outputs.clone() };
    let is_table = |spec: &OutputSpec| {
        spec.destination == Destination::Stdout
            && spec.format_or(analysis.format.map(Format::output_format)) == OutputFormat::Text
    };
    let (table, records): (Vec<OutputSpec>, Vec<OutputSpec>) = specs.into_iter().partition(is_table);
    let mut outputs = Outputs::default();
    if !table.is_empty() {
        outputs.push(Box::new(PostureTable::new(stdout())));
    }
    if !records.is_empty() {
        // Text on standard output is the table: no colour to decide for these.
        let sinks = open_outputs(analysis, &records, false, WhenFull::Wait)?;
        outputs.push(Box::new(PostureOnly::new(sinks)));
    }
    Ok(Box::new(outputs))
}

/// What a run over the file pipeline produces.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// Events on the --output sinks (standard output by default).
    Read,
    /// The posture inventory on standard output.
    Posture,
    /// The HTML page in this file, and events on the --output sinks named.
    Report(&'a Path),
}

/// Runs `read`, `posture` or `report` over the same pipeline.
fn read(args: &ReadArgs, mode: Mode<'_>, progress_allowed: bool) -> anyhow::Result<ExitCode> {
    let config = args.run_config()?;
    let inputs = pipeline::expand_inputs(&args.paths)?;
    let analysis = &args.analysis;
    let mut sink: Box<dyn Sink> = match mode {
        Mode::Posture => posture_sinks(analysis)?,
        Mode::Read => sinks(analysis, vec![OutputSpec::stdout(None)], analysis.dedup_window, WhenFull::Wait)?,
        Mode::Report(html) => {
            let file = std::fs::File::create(html).with_context(|| format!("cannot create {}", html.display()))?;
            let names = inputs.iter().map(|input| input.path().display().to_string()).collect();
            let mut both = Outputs::default();
            both.push(sinks(analysis, Vec::new(), analysis.dedup_window, WhenFull::Wait)?);
            // Beside the deduplication, not behind it: the chart counts every alert.
            let page = NamedWriter { inner: std::io::BufWriter::new(file), name: html.display().to_string() };
            both.push(Box::new(HtmlReport::new(page, names)));
            Box::new(both)
        }
    };
    // Alerts streaming to the same terminal would break a bar redrawn in place.
    let alerts_on_terminal = matches!(mode, Mode::Read)
        && std::io::stdout().is_terminal()
        && (analysis.outputs.is_empty() || analysis.outputs.iter().any(|spec| spec.destination == Destination::Stdout));
    let mut progress =
        if progress_allowed && !alerts_on_terminal { TerminalProgress::on_stderr(input_size(&inputs)) } else { None };
    let run =
        pipeline::read_inputs(&inputs, &config, sink.as_mut(), progress.as_mut().map(|bar| bar as &mut dyn Progress));
    let report = match run {
        Ok(report) => report,
        // Standard output, the only output, was closed by its reader (`| head`): stop quietly, as
        // Unix tools do, still telling what had failed and, for `--fail-on-alert`, what was found
        // by then. What standard output missed is no loss then: its reader asked for no more.
        Err(RunError::OutputClosed { cleartext_alerts, unread_files }) => {
            drop(sink);
            return Ok(exit_status(unread_files, 0, args.fail_on_alert && cleartext_alerts > 0));
        }
        Err(error) => return Err(error.into()),
    };
    let undelivered = sink.undelivered();
    drop(sink);
    std::io::stdout().flush().ok();
    tracing::info!(files = report.files_read, "done");
    tracing::debug!(decode = ?report.decode, flow = ?report.engine.flow, proto = ?report.engine.proto, "counters");
    Ok(exit_status(report.file_errors.len(), undelivered, args.fail_on_alert && report.cleartext_alerts > 0))
}

/// The exit status of a run that read what it could: when several apply, the lowest wins (as
/// `--help` says).
fn exit_status(unread_files: usize, undelivered: u64, alert: bool) -> ExitCode {
    if unread_files > 0 {
        ExitCode::from(EXIT_PARTIAL)
    } else if undelivered > 0 {
        ExitCode::from(EXIT_UNDELIVERED)
    } else if alert {
        ExitCode::from(EXIT_ALERT)
    } else {
        ExitCode::SUCCESS
    }
}

/// Ends the run as clap ends it on a bad command line (status 2).
#[cfg(feature = "live")]
fn usage_error(message: impl std::fmt::Display) -> ! {
    use clap::CommandFactory;
    Cli::command().error(clap::error::ErrorKind::ValueValidation, message).exit()
}

#[cfg(not(feature = "live"))]
fn live(_: &LiveArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this credwatch was built without live capture: rebuild it with `cargo build --release --features live` \
         (needs libpcap-dev), or capture with tcpdump and use `credwatch read`"
    )
}

#[cfg(feature = "live")]
fn live(args: &LiveArgs) -> anyhow::Result<ExitCode> {
    use std::time::Duration;

    use credwatch::capture::live::{Filter, LiveErrorKind, LiveOptions, LiveSource};
    use credwatch::pipeline::live::{Control, Intervals};

    let config = args.run_config()?;
    // What the command line asks that cannot be done is said before anything is opened, with
    // the status of a bad command line.
    if privileges::is_root() && args.user.is_none() && !args.allow_root {
        usage_error(
            "refusing to analyse packets as root: pass --user NAME to drop root once the interfaces are open, \
             run as an unprivileged user with CAP_NET_RAW and CAP_NET_ADMIN, or pass --allow-root",
        );
    }
    if let Some(expression) = &args.filter {
        if let Err(error) = credwatch::capture::live::check_filter(expression) {
            usage_error(format!("--filter {expression:?} does not compile: {error}"));
        }
    }
    let account = args
        .user
        .as_deref()
        .map(|user| privileges::account(user, args.group.as_deref()))
        .transpose()
        .unwrap_or_else(|error| usage_error(format!("{error:#}")));
    privileges::no_core_dumps()?;
    let control = Control::default();
    install_signal_handlers(&control)?;
    let filter = match &args.filter {
        Some(expression) => Filter::Expression(expression.clone()),
        None => Filter::Mail { ports: config.proto.ports.clone(), any_port: args.any_port },
    };
    let options = LiveOptions {
        promiscuous: !args.no_promisc,
        snaplen: args.snaplen,
        buffer_size: args.buffer_size.map(|mib| mib.saturating_mul(1024 * 1024)),
        immediate: args.immediate,
        read_timeout: Duration::from_millis(250),
        filter,
    };
    let sources = args
        .interfaces
        .iter()
        .map(|interface| LiveSource::open(interface, &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            // The privileges hint only where privileges are the cause: not for a missing
            // interface or a bad filter.
            let context = match error.kind {
                LiveErrorKind::PermissionDenied => {
                    "cannot open the capture (it needs root, or CAP_NET_RAW and CAP_NET_ADMIN)"
                }
                LiveErrorKind::Other => "cannot open the capture",
            };
            anyhow::Error::new(error).context(context)
        })?;
    if let Some(account) = &account {
        privileges::drop_to(account)?;
    }
    let interval = |seconds| match seconds {
        0 => Duration::MAX,
        secs => Duration::from_secs(secs),
    };
    let intervals = Intervals { stats: interval(args.stats_interval), inventory: interval(args.report_interval) };
    let mut sink = sinks(&args.analysis, vec![OutputSpec::stdout(None)], args.dedup_window(), WhenFull::Drop).map_err(
        |error| match &account {
            // Said because the same command run without --user opens the file.
            Some(account) if error.downcast_ref::<OpenError>().is_some_and(OpenError::is_file_permission_denied) => {
                error.context(format!(
                "cannot open an output as user {} (with --user, outputs are opened once root is dropped: the file, or \
                 its directory, must be writable by that user)",
                account.name()
            ))
            }
            _ => error,
        },
    )?;
    let report = pipeline::live::run(sources, &config, intervals, &control, sink.as_mut())?;
    let undelivered = sink.undelivered();
    drop(sink);
    std::io::stdout().flush().ok();
    tracing::info!(cleartext = report.cleartext_alerts, undelivered, "stopped");
    // As for `read`: a supervisor must learn that records never reached the SIEM.
    Ok(if undelivered > 0 { ExitCode::from(EXIT_UNDELIVERED) } else { ExitCode::SUCCESS })
}

/// SIGINT/SIGTERM ask for a clean stop; a second one exits at once, saying so (an operator, or
/// systemd's stop timeout, cut the clean stop short, and a supervisor's log must say what that
/// cost). SIGHUP asks for reopening the outputs. The stop signals are taken on a thread of their
/// own, where logging is safe, not in the handler.
#[cfg(feature = "live")]
fn install_signal_handlers(control: &credwatch::pipeline::live::Control) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use signal_hook::flag;
    use std::sync::atomic::Ordering;
    let mut stop_signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let stop = control.stop.clone();
    std::thread::Builder::new().name("signals".to_string()).spawn(move || {
        for signal in stop_signals.forever() {
            if stop.swap(true, Ordering::SeqCst) {
                // The log line may block on a standard error nobody reads (`2>&1 | stalled`):
                // the exit waits for it a moment at most.
                let _ = std::thread::Builder::new().name("exit".to_string()).spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    signal_hook::low_level::exit(EXIT_FATAL.into());
                });
                tracing::error!(
                    signal,
                    "a second stop signal: exiting at once, without writing what the outputs still held"
                );
                // `_exit`: no flush of standard output, which may be what holds the stop.
                signal_hook::low_level::exit(EXIT_FATAL.into());
            }
        }
    })?;
    flag::register(SIGHUP, control.reopen.clone())?;
    Ok(())
}

/// A writer whose errors name its file: "cannot write output: No space left on device" did not say
/// which output failed.
struct NamedWriter<W: Write> {
    inner: W,
    name: String,
}

impl<W: Write> NamedWriter<W> {
    fn named(&self, error: std::io::Error) -> std::io::Error {
        std::io::Error::new(error.kind(), format!("{}: {error}", self.name))
    }
}

impl<W: Write> Write for NamedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|error| self.named(error))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|error| self.named(error))
    }
}

/// Total bytes of the inputs, for the progress bar; `None` when unknown (standard input).
fn input_size(inputs: &[Input]) -> Option<u64> {
    inputs
        .iter()
        .map(|input| match input {
            Input::Capture(path) if path.as_os_str() == "-" => None,
            Input::Capture(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Unreadable(_) => Some(0),
        })
        .sum()
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(cause.downcast_ref::<RunError>(), Some(RunError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(cause.downcast_ref::<RunError>(), Some(RunError::OutputClosed { .. }))
    })
}
