//! Progress of long offline reads: the pipeline reports how far it got ([`Progress`]), and
//! [`TerminalProgress`] draws it as one line on a terminal, redrawn in place at most ten times a
//! second. Nothing is drawn when the output is not a terminal, nor for reads shorter than half a
//! second.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where a read stands.
#[derive(Clone, Copy, Debug)]
pub struct ReadProgress<'a> {
    /// The capture being read, as the user named it.
    pub file: &'a str,
    /// Input bytes consumed so far over all files (compressed bytes for gzip captures).
    pub bytes: u64,
    /// Credential alerts raised so far (cleartext and weak).
    pub alerts: u64,
}

/// Receives the progress of a read (see `pipeline::read_inputs`).
pub trait Progress {
    /// Called every few thousand frames and at the end of each file.
    fn update(&mut self, progress: &ReadProgress<'_>);
    /// Takes the indicator off the screen before other text is written there (an error message,
    /// the final report); the next update draws it again.
    fn clear(&mut self);
}

/// Time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Reads that end sooner never show a bar.
const FIRST_DRAW_AFTER: Duration = Duration::from_millis(500);
/// Width of the bar between its brackets.
const BAR_WIDTH: usize = 20;
/// Characters of the file name shown (its end, where the name is).
const NAME_WIDTH: usize = 18;
/// The line stays narrower than a classic terminal, so that `\r` can redraw it.
const LINE_WIDTH: usize = 79;

/// A one-line progress bar redrawn with `\r` on a terminal.
pub struct TerminalProgress<W: Write> {
    out: W,
    total: Option<u64>,
    started: Instant,
    last_drawn: Option<Instant>,
    shown: bool,
}

impl TerminalProgress<io::Stderr> {
    /// A bar on standard error for `total` input bytes (`None` when unknown, e.g. standard input),
    /// or `None` when standard error is not a terminal: then nothing is ever printed.
    pub fn on_stderr(total: Option<u64>) -> Option<Self> {
        io::stderr().is_terminal().then(|| TerminalProgress::new(io::stderr(), total))
    }
}

impl<W: Write> TerminalProgress<W> {
    pub fn new(out: W, total: Option<u64>) -> Self {
        TerminalProgress { out, total, started: Instant::now(), last_drawn: None, shown: false }
    }

    fn draw(&mut self, progress: &ReadProgress<'_>, now: Instant) {
        let elapsed = now.saturating_duration_since(self.started);
        if elapsed < FIRST_DRAW_AFTER || self.last_drawn.is_some_and(|last| now.duration_since(last) < REDRAW_EVERY) {
            return;
        }
        self.last_drawn = Some(now);
        let line = progress_line(progress, self.total, elapsed);
        // A terminal that went away is no reason to stop reading captures.
        let drawn = write!(self.out, "\r{line}\x1b[K").and_then(|()| self.out.flush());
        self.shown = drawn.is_ok();
    }
}

impl<W: Write> Progress for TerminalProgress<W> {
    fn update(&mut self, progress: &ReadProgress<'_>) {
        self.draw(progress, Instant::now());
    }

    fn clear(&mut self) {
        if self.shown {
            self.shown = false;
            self.last_drawn = None;
            let _ = write!(self.out, "\r\x1b[K").and_then(|()| self.out.flush());
        }
    }
}

/// The progress line: file, bar and percentage (when the total is known), bytes, rate, alerts.
pub fn progress_line(progress: &ReadProgress<'_>, total: Option<u64>, elapsed: Duration) -> String {
    let mut line = terminal_safe_tail(progress.file, NAME_WIDTH);
    if let Some(total) = total.filter(|&total| total > 0) {
        let done = progress.bytes.min(total);
        let filled = usize::try_from(u128::from(done) * BAR_WIDTH as u128 / u128::from(total)).unwrap_or(BAR_WIDTH);
        let percent = u128::from(done) * 100 / u128::from(total);
        line.push_str(&format!(
            " [{}{}] {percent:>3}% {} / {}",
            "#".repeat(filled),
            "-".repeat(BAR_WIDTH.saturating_sub(filled)),
            human_bytes(progress.bytes),
            human_bytes(total)
        ));
    } else {
        line.push_str(&format!(" {}", human_bytes(progress.bytes)));
    }
    let seconds = elapsed.as_secs_f64().max(0.001);
    let rate = (progress.bytes as f64 / seconds) as u64;
    line.push_str(&format!(
        "  {}/s  {} alert{}",
        human_bytes(rate),
        progress.alerts,
        if progress.alerts == 1 { "" } else { "s" }
    ));
    line.chars().take(LINE_WIDTH).collect()
}

/// The last `width` characters of a name, with control characters (which could drive the
/// terminal) replaced by `?`.
fn terminal_safe_tail(name: &str, width: usize) -> String {
    let base = name.rsplit(['/', '\\']).find(|part| !part.is_empty()).unwrap_or(name);
    let chars: Vec<char> = base.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    match chars.len().checked_sub(width) {
        Some(skip) if skip > 0 => std::iter::once('…').chain(chars.into_iter().skip(skip + 1)).collect(),
        _ => chars.into_iter().collect(),
    }
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `3.2 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(file: &str, bytes: u64, alerts: u64) -> ReadProgress<'_> {
        ReadProgress { file, bytes, alerts }
    }

    #[test]
    fn line_shows_bar_share_bytes_rate_and_alerts() {
        let line = progress_line(&at("captures/big.pcap", 3 << 30, 12), Some(12 << 30), Duration::from_secs(10));
        assert_eq!(line, "big.pcap [#####---------------]  25% 3.0 GiB / 12.0 GiB  307.2 MiB/s  12 alerts");
        let done = progress_line(&at("a.pcap", 100, 1), Some(100), Duration::from_secs(1));
        assert_eq!(done, "a.pcap [####################] 100% 100 B / 100 B  100 B/s  1 alert");
        assert!(line.chars().count() <= LINE_WIDTH);
    }

    #[test]
    fn line_without_a_known_total_has_no_bar() {
        let line = progress_line(&at("-", 1536, 0), None, Duration::from_secs(2));
        assert_eq!(line, "- 1.5 KiB  768 B/s  0 alerts");
        // Gzip headers read past the file size never overflow the bar.
        let over = progress_line(&at("x.pcap.gz", 200, 0), Some(100), Duration::from_secs(1));
        assert!(over.contains("[####################] 100%"));
    }

    #[test]
    fn names_are_cut_and_cannot_drive_the_terminal() {
        assert_eq!(terminal_safe_tail("dir/evil\x1b]0;title\x07.pcap", 40), "evil?]0;title?.pcap");
        assert_eq!(terminal_safe_tail("/captures/a-very-long-capture-name-2026.pcap", 12), "…e-2026.pcap");
        let long = progress_line(&at(&"x".repeat(300), u64::MAX / 2, u64::MAX), Some(u64::MAX), Duration::ZERO);
        assert!(long.chars().count() <= LINE_WIDTH);
    }

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 << 40), "5.0 TiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn redraws_are_throttled_and_cleared() {
        let mut bar = TerminalProgress::new(Vec::new(), Some(1000));
        let start = bar.started;
        let progress = at("a.pcap", 10, 0);
        bar.draw(&progress, start + Duration::from_millis(100));
        assert!(bar.out.is_empty(), "nothing in the first half second");
        bar.draw(&progress, start + Duration::from_millis(600));
        bar.draw(&progress, start + Duration::from_millis(650));
        assert_eq!(String::from_utf8_lossy(&bar.out).matches('\r').count(), 1, "one draw per 100 ms");
        bar.draw(&progress, start + Duration::from_millis(700));
        assert_eq!(String::from_utf8_lossy(&bar.out).matches('\r').count(), 2);
        bar.clear();
        assert!(String::from_utf8_lossy(&bar.out).ends_with("\r\x1b[K"));
        let cleared = bar.out.len();
        bar.clear();
        assert_eq!(bar.out.len(), cleared, "clearing twice writes nothing more");
    }
}
