//! The `credwatch` command: parse the command line, set up logging, run, map the result to an
//! exit status (documented in `--help`).

mod cli;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, Format, ReadArgs};
use credwatch::output::{Dedup, Destination, HtmlReport, Observer, OutputSpec, Outputs, PostureTable, Sink};
use credwatch::pipeline::{self, RunError};
use credwatch::progress::{Progress, TerminalProgress};

const EXIT_FATAL: u8 = 1;
const EXIT_PARTIAL: u8 = 3;
const EXIT_ALERT: u8 = 10;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    // Log lines on stderr would tangle with a bar redrawn there.
    let progress_allowed = !cli.quiet && cli.verbose == 0;
    let result = match &cli.command {
        Command::Read(args) => read(args, Mode::Read, progress_allowed),
        Command::Posture(args) => read(args, Mode::Posture, progress_allowed),
        Command::Report(report) => read(&report.read, Mode::Report(&report.html), progress_allowed),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            tracing::error!("{error:#}");
            eprintln!("credwatch: {error:#}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
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

/// What a run over the pipeline produces.
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
    let paths = pipeline::expand_inputs(&args.paths)?;
    let stdout = std::io::stdout();
    let stdout_is_terminal = stdout.is_terminal();
    let colour = stdout_is_terminal && std::env::var_os("NO_COLOR").is_none();
    let out = std::io::BufWriter::with_capacity(64 * 1024, stdout);
    let mut sink: Box<dyn Sink> = match mode {
        Mode::Posture => match args.format {
            Some(Format::Json) => Box::new(PostureTable::json(out)),
            _ => Box::new(PostureTable::new(out)),
        },
        Mode::Read => event_outputs(args, vec![OutputSpec::stdout(None)], out, colour)?,
        Mode::Report(html) => {
            let file = std::fs::File::create(html).with_context(|| format!("cannot create {}", html.display()))?;
            let inputs = paths.iter().map(|path| path.display().to_string()).collect();
            let mut both = Outputs::default();
            both.push(event_outputs(args, Vec::new(), out, colour)?);
            // Beside the deduplication, not behind it: the chart counts every alert.
            both.push(Box::new(HtmlReport::new(std::io::BufWriter::new(file), inputs)));
            Box::new(both)
        }
    };
    // Alerts streaming to the same terminal would break a bar redrawn in place.
    let alerts_on_terminal = matches!(mode, Mode::Read)
        && stdout_is_terminal
        && (args.outputs.is_empty() || args.outputs.iter().any(|spec| spec.destination == Destination::Stdout));
    let mut progress =
        if progress_allowed && !alerts_on_terminal { TerminalProgress::on_stderr(input_size(&paths)) } else { None };
    let report = pipeline::read_files_with_progress(
        &paths,
        &config,
        sink.as_mut(),
        progress.as_mut().map(|bar| bar as &mut dyn Progress),
    )?;
    drop(sink);
    std::io::stdout().flush().ok();
    tracing::info!(
        files = report.files_read,
        frames = report.frames,
        bytes = report.bytes,
        cleartext = report.cleartext_alerts,
        weak = report.weak_alerts,
        anomalies = report.anomalies,
        flows = report.engine.flow.flows_created,
        evicted = report.engine.flow.flows_evicted,
        gaps = report.engine.flow.reassembly.gaps,
        "done"
    );
    tracing::debug!(decode = ?report.decode, flow = ?report.engine.flow, proto = ?report.engine.proto, "counters");
    Ok(if !report.file_errors.is_empty() {
        ExitCode::from(EXIT_PARTIAL)
    } else if args.fail_on_alert && report.cleartext_alerts > 0 {
        ExitCode::from(EXIT_ALERT)
    } else {
        ExitCode::SUCCESS
    })
}

/// The --output sinks, or `default_specs` when none is named, behind deduplication when asked.
fn event_outputs<W: Write + Send + 'static>(
    args: &ReadArgs,
    default_specs: Vec<OutputSpec>,
    out: W,
    colour: bool,
) -> anyhow::Result<Box<dyn Sink + Send>> {
    let specs = if args.outputs.is_empty() { default_specs } else { args.outputs.clone() };
    let outputs = Outputs::open(
        &specs,
        args.format.map(Format::output_format),
        std::sync::Arc::new(Observer::local()),
        out,
        colour,
    )?;
    Ok(match args.dedup_window {
        Some(window) => Box::new(Dedup::new(outputs, window)),
        None => Box::new(outputs),
    })
}

/// Total bytes of the inputs, for the progress bar; `None` when unknown (standard input).
fn input_size(paths: &[PathBuf]) -> Option<u64> {
    paths
        .iter()
        .map(|path| if path.as_os_str() == "-" { None } else { std::fs::metadata(path).ok().map(|m| m.len()) })
        .sum()
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(cause.downcast_ref::<RunError>(), Some(RunError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
