//! The `credwatch` command: parse the command line, set up logging, run, map the result to an
//! exit status (documented in `--help`).

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, Format, ReadArgs};
use credwatch::output::{Dedup, Observer, OutputSpec, Outputs, PostureTable, Sink};
use credwatch::pipeline::{self, RunError};

const EXIT_FATAL: u8 = 1;
const EXIT_PARTIAL: u8 = 3;
const EXIT_ALERT: u8 = 10;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let result = match &cli.command {
        Command::Read(args) => read(args, false),
        Command::Posture(args) => read(args, true),
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

/// Runs `read`, or with `posture_only` the posture inventory over the same pipeline.
fn read(args: &ReadArgs, posture_only: bool) -> anyhow::Result<ExitCode> {
    let config = args.run_config()?;
    let paths = pipeline::expand_inputs(&args.paths)?;
    let stdout = std::io::stdout();
    let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let out = std::io::BufWriter::with_capacity(64 * 1024, stdout);
    let mut sink: Box<dyn Sink> = if posture_only {
        match args.format {
            Some(Format::Json) => Box::new(PostureTable::json(out)),
            _ => Box::new(PostureTable::new(out)),
        }
    } else {
        let specs = if args.outputs.is_empty() { vec![OutputSpec::stdout(None)] } else { args.outputs.clone() };
        let outputs = Outputs::open(
            &specs,
            args.format.map(Format::output_format),
            std::sync::Arc::new(Observer::local()),
            out,
            colour,
        )?;
        match args.dedup_window {
            Some(window) => Box::new(Dedup::new(outputs, window)),
            None => Box::new(outputs),
        }
    };
    let report = pipeline::read_files(&paths, &config, sink.as_mut())?;
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

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(cause.downcast_ref::<RunError>(), Some(RunError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
