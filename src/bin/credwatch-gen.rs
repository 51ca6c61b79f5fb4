//! `credwatch-gen`: writes seeded benchmark and test captures with their ground truth, and scores
//! credwatch's JSON alerts against that truth.
//!
//! ```text
//! credwatch-gen generate --kind mail-heavy --size 1GB --seed 7 --out captures/mail-heavy.pcap
//! credwatch read --format json captures/mail-heavy.pcap > alerts.jsonl
//! credwatch-gen score --truth captures/truth.jsonl --file mail-heavy.pcap alerts.jsonl
//! ```

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use credwatch::gen::truth::{read_rows, score, update_truth_file};
use credwatch::gen::{generate, parse_size, GenConfig, TrafficKind};

#[derive(Parser)]
#[command(version, about = "Generate seeded captures with ground truth; score credwatch against it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a capture and its truth rows (replacing that file's rows in the truth file).
    Generate {
        /// mixed, mail-heavy or many-flows.
        #[arg(long, value_parser = parse_kind)]
        kind: TrafficKind,
        /// Target size, e.g. 10MB or 1GB (binary multiples).
        #[arg(long, value_parser = parse_size_arg, default_value = "10MB")]
        size: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The pcap file to write.
        #[arg(long)]
        out: PathBuf,
        /// Truth file to update; default `truth.jsonl` beside the capture, so that the folder
        /// can be scored with the corpus tools.
        #[arg(long)]
        truth: Option<PathBuf>,
    },
    /// Compare credwatch's `--format json` output with the truth; exit 1 unless perfect.
    Score {
        #[arg(long)]
        truth: PathBuf,
        /// The capture's name in the truth rows (its file name).
        #[arg(long)]
        file: String,
        /// credwatch's output (`-` for standard input).
        alerts: PathBuf,
    },
}

fn parse_kind(name: &str) -> Result<TrafficKind, String> {
    TrafficKind::from_name(name).ok_or_else(|| "expected mixed, mail-heavy or many-flows".to_string())
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).ok_or_else(|| "expected a size such as 4096, 10MB or 1GB".to_string())
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Generate { kind, size, seed, out, truth } => {
            run_generate(GenConfig { kind, size, seed }, &out, truth)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Score { truth, file, alerts } => run_score(&truth, &file, &alerts),
    }
}

fn run_generate(config: GenConfig, out: &Path, truth: Option<PathBuf>) -> anyhow::Result<()> {
    let name = out.file_name().context("--out must name a file")?.to_string_lossy().into_owned();
    let truth = truth.unwrap_or_else(|| out.with_file_name("truth.jsonl"));
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (writer, report) = generate(&config, &name, BufWriter::with_capacity(1 << 20, file))?;
    writer.into_inner().map_err(|error| error.into_error())?.sync_all()?;
    update_truth_file(&truth, &name, &report.truth).with_context(|| format!("cannot update {}", truth.display()))?;
    let alerts = report.truth.iter().filter(|row| row.expect_alert).count();
    eprintln!(
        "{}: {} {} bytes, {} frames, {} flows, mail {:.1} % of bytes, {} login attempts ({} must alert)",
        out.display(),
        config.kind.name(),
        report.bytes,
        report.frames,
        report.flows,
        report.mail_bytes as f64 * 100.0 / report.bytes.max(1) as f64,
        report.truth.len(),
        alerts
    );
    Ok(())
}

fn run_score(truth: &Path, file: &str, alerts: &Path) -> anyhow::Result<ExitCode> {
    let rows =
        read_rows(BufReader::new(File::open(truth).with_context(|| format!("cannot open {}", truth.display()))?))?;
    let result = if alerts.as_os_str() == "-" {
        score(&rows, file, io::stdin().lock())?
    } else {
        let input = File::open(alerts).with_context(|| format!("cannot open {}", alerts.display()))?;
        score(&rows, file, BufReader::new(input))?
    };
    for problem in &result.problems {
        println!("{file}: {problem}");
    }
    println!("{file}: {result}");
    Ok(if result.is_perfect() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
