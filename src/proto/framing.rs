//! Line framing shared by every protocol: stream chunks in, complete lines (or counted raw bytes,
//! for IMAP literals and SMTP BDAT chunks) out. All incompleteness is handled here, once.
//!
//! A line longer than the limit is dropped whole (the framer skips to the next LF) and reported,
//! so a peer that never sends CRLF costs at most `max_line` bytes.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use zeroize::Zeroize;

/// What the framer hands to a session.
pub enum Piece<'a> {
    /// A complete line without its CRLF (a bare LF also ends a line).
    Line { line: &'a [u8] },
    /// Part of a raw run the session asked for; `last` marks its final part.
    Raw { data: &'a [u8], last: bool },
    /// The start of a line whose end was lost (a gap came before its line end): a capture's snap
    /// length cuts every segment longer than it so, and a lost segment any line it held part of.
    Cut { line: &'a [u8] },
    /// A line exceeded the limit and was dropped.
    Overflow,
}

/// What the session wants next from this direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Line,
    /// The next `n` bytes are raw data (a literal or a BDAT chunk), whatever they hold.
    Raw(u64),
    /// Nothing more from this direction is of interest.
    Stop,
    /// Lines, but not before the caller has read the other direction: [`LineFramer::feed`]
    /// returns the bytes after this piece, unread.
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Line,
    Raw(u64),
    Stopped,
}

/// Frames one direction of a stream.
pub struct LineFramer {
    /// A partial line carried over from the previous chunk. It may hold a partial password, so it
    /// is wiped, not just truncated.
    partial: Vec<u8>,
    max_line: usize,
    mode: Mode,
    /// Dropping the rest of an overlong line, or of a line a gap cut.
    skipping_to_eol: bool,
    /// A gap came where no line was being assembled: the next line may be whole, or the tail of
    /// one the gap cut. It is framed, and the session decides ([`LineFramer::after_gap`]).
    after_gap: bool,
}

/// Lines may hold passwords: `Debug` shows lengths, never bytes.
impl std::fmt::Debug for Piece<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Piece::Line { line } => f.debug_struct("Line").field("len", &line.len()).finish(),
            Piece::Cut { line } => f.debug_struct("Cut").field("len", &line.len()).finish(),
            Piece::Raw { data, last } => f.debug_struct("Raw").field("len", &data.len()).field("last", last).finish(),
            Piece::Overflow => f.write_str("Overflow"),
        }
    }
}

impl std::fmt::Debug for LineFramer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineFramer")
            .field("partial_len", &self.partial.len())
            .field("max_line", &self.max_line)
            .field("mode", &self.mode)
            .field("skipping_to_eol", &self.skipping_to_eol)
            .field("after_gap", &self.after_gap)
            .finish()
    }
}

impl Drop for LineFramer {
    fn drop(&mut self) {
        wipe(&mut self.partial);
    }
}

impl LineFramer {
    pub fn new(max_line: usize) -> Self {
        LineFramer { partial: Vec::new(), max_line, mode: Mode::Line, skipping_to_eol: false, after_gap: false }
    }

    /// Bytes held for a partial line (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    pub fn is_stopped(&self) -> bool {
        self.mode == Mode::Stopped
    }

    /// Switch mode from outside a callback (e.g. a literal the server refused will never come).
    pub fn set_next(&mut self, next: Next) {
        self.mode = match next {
            Next::Line | Next::Pause => Mode::Line,
            Next::Raw(0) => Mode::Line,
            Next::Raw(n) => Mode::Raw(n),
            Next::Stop => Mode::Stopped,
        };
        if self.mode == Mode::Stopped {
            wipe(&mut self.partial);
        }
    }

    /// The other side answered a line this side sent, waiting for the answer before it went on (a
    /// literal's go-ahead, the refusal of the command that announced one): this side's next
    /// bytes start what the answer asked for, and a cut line's tail being skipped ended within
    /// lost bytes (the two directions are read in the order spoken: every byte the answer
    /// acknowledged was read, or lost, before it).
    pub fn answered(&mut self, next: Next) {
        self.set_next(next);
        if self.mode == Mode::Line {
            self.skipping_to_eol = false;
            self.after_gap = false;
        }
    }

    /// Raw bytes still expected, if a raw run is in progress.
    pub fn raw_remaining(&self) -> Option<u64> {
        match self.mode {
            Mode::Raw(n) => Some(n),
            _ => None,
        }
    }

    /// Bytes were lost. A raw run absorbs the gap, and one that ends where the gap does goes
    /// back to lines (the line it was announced in goes on after it); past its end, and in line
    /// mode when part of a line was held, the partial line is dropped and the framer
    /// resynchronises on the next line end. A gap between two lines keeps the next one: its
    /// first line is framed as any, marked [`LineFramer::after_gap`] (a lost segment that held
    /// whole lines hides none of the lines after it).
    pub fn gap(&mut self, len: u64) {
        match self.mode {
            Mode::Raw(n) if len < n => self.mode = Mode::Raw(n - len),
            Mode::Raw(n) if len == n => self.mode = Mode::Line,
            Mode::Raw(_) => {
                self.mode = Mode::Line;
                self.skipping_to_eol = true;
                self.after_gap = false;
            }
            Mode::Line if self.partial.is_empty() && !self.skipping_to_eol => self.after_gap = true,
            Mode::Line => {
                wipe(&mut self.partial);
                self.skipping_to_eol = true;
                self.after_gap = false;
            }
            Mode::Stopped => {}
        }
    }

    /// The next line (or overflow) is the first after a gap that fell between lines: it may be
    /// the tail of a line the gap cut, for the session to judge by its looks.
    pub fn after_gap(&self) -> bool {
        self.after_gap
    }

    /// Bytes are about to be lost ([`LineFramer::gap`]) while part of a line is held: that start
    /// of a cut line goes to `on_piece` as a [`Piece::Cut`], then is wiped. The first line after
    /// the gap is then framed and marked as after a gap between lines, for the session to judge
    /// (a new line, or the cut line's tail), unless [`LineFramer::skip_cut_tail`] says to skip it.
    /// Returns whether a line was cut.
    pub fn cut(&mut self, on_piece: &mut dyn FnMut(Piece<'_>) -> Next) -> bool {
        if self.mode != Mode::Line || self.partial.is_empty() || self.skipping_to_eol {
            return false;
        }
        let next = on_piece(Piece::Cut { line: trim_cr(&self.partial) });
        wipe(&mut self.partial);
        self.set_next(next);
        true
    }

    /// The first line after the cut is taken for the cut line's tail: skipped to its line end.
    pub fn skip_cut_tail(&mut self) {
        if self.mode == Mode::Line {
            self.skipping_to_eol = true;
        }
    }

    /// The first line after the gap is taken for a new one, read as any (not judged).
    pub fn resume_at_line(&mut self) {
        self.after_gap = false;
    }

    /// Frames `data`, calling `on_piece` for every piece; the callback's answer sets the mode for
    /// the bytes that follow. Returns what a [`Next::Pause`] left unread (nothing otherwise).
    /// Inlined: a session frames every chunk of every inspected flow.
    #[inline(always)]
    pub fn feed<'d>(&mut self, mut data: &'d [u8], on_piece: &mut dyn FnMut(Piece<'_>) -> Next) -> &'d [u8] {
        while !data.is_empty() {
            match self.mode {
                Mode::Stopped => return &[],
                Mode::Raw(remaining) => {
                    let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(data.len());
                    let (raw, rest) = data.split_at(take);
                    data = rest;
                    let left = remaining - take as u64;
                    self.mode = Mode::Raw(left);
                    let next = on_piece(Piece::Raw { data: raw, last: left == 0 });
                    if left == 0 {
                        self.set_next(next);
                        if next == Next::Pause {
                            return data;
                        }
                    }
                }
                Mode::Line => {
                    let Some(eol) = memchr::memchr(b'\n', data) else {
                        self.keep_partial(data, on_piece);
                        return &[];
                    };
                    let (head, rest) = data.split_at(eol);
                    data = rest.get(1..).unwrap_or(&[]);
                    if self.skipping_to_eol {
                        self.skipping_to_eol = false;
                        continue;
                    }
                    self.after_gap = false;
                    let next = if self.partial.is_empty() {
                        on_piece(Piece::Line { line: trim_cr(head) })
                    } else if self.partial.len() + head.len() > self.max_line {
                        wipe(&mut self.partial);
                        on_piece(Piece::Overflow)
                    } else {
                        append(&mut self.partial, head, self.max_line);
                        let next = on_piece(Piece::Line { line: trim_cr(&self.partial) });
                        wipe(&mut self.partial);
                        next
                    };
                    self.set_next(next);
                    if next == Next::Pause {
                        return data;
                    }
                }
            }
        }
        &[]
    }

    fn keep_partial(&mut self, data: &[u8], on_piece: &mut dyn FnMut(Piece<'_>) -> Next) {
        if self.skipping_to_eol {
            return;
        }
        if self.partial.len() + data.len() > self.max_line {
            wipe(&mut self.partial);
            self.skipping_to_eol = true;
            self.after_gap = false;
            let next = on_piece(Piece::Overflow);
            if next == Next::Stop {
                self.set_next(next);
            }
        } else {
            append(&mut self.partial, data, self.max_line);
        }
    }
}

/// First allocation of a partial line: most lines split by a segment boundary fit.
const FIRST_PARTIAL_CAPACITY: usize = 128;

/// Appends `bytes` to a partial line (the caller keeps it within `max_line`). A line that
/// outgrows its allocation moves to one twice as large, at least [`FIRST_PARTIAL_CAPACITY`] and
/// at most `max_line` (unless it needs more), and the old one is wiped before it is freed: a
/// plain reallocation would leave a copy of a partial password behind, and growing from the
/// first piece's size took a reallocation for nearly every split line.
pub(super) fn append(partial: &mut Vec<u8>, bytes: &[u8], max_line: usize) {
    let needed = partial.len() + bytes.len();
    if needed > partial.capacity() {
        let capacity = partial.capacity().saturating_mul(2).max(FIRST_PARTIAL_CAPACITY).min(max_line).max(needed);
        let mut grown = Vec::with_capacity(capacity);
        grown.extend_from_slice(partial);
        wipe(partial);
        *partial = grown;
    }
    partial.extend_from_slice(bytes);
}

/// Empties a partial line, overwriting the bytes it held first. Every byte past the length was
/// wiped this way before (or never written), so the spare capacity needs no second pass: a
/// framer that once held a long line does not pay for it at every line after.
pub(super) fn wipe(partial: &mut Vec<u8>) {
    // Most calls find nothing to wipe; zeroize would still call memset (behind its barrier).
    if !partial.is_empty() {
        partial.as_mut_slice().zeroize();
        partial.clear();
    }
}

/// Whether the text after a negative status, in a line whose end was lost, may have lost a
/// response code that would change its meaning (POP3's `[IN-USE]`, IMAP's
/// `[AUTHORIZATIONFAILED]`): the cut came before any text, or inside a bracket.
pub(super) fn response_code_may_be_cut(text: &[u8]) -> bool {
    let text = text.trim_ascii_start();
    text.is_empty() || (text.starts_with(b"[") && !text.contains(&b']'))
}

/// What a cut line holds whole: the words before its last blank (the last may be cut short).
pub(super) fn whole_words(cut: &[u8]) -> &[u8] {
    let end = cut.iter().rposition(|byte| matches!(byte, b' ' | b'\t')).unwrap_or(0);
    cut.get(..end).unwrap_or_default().trim_ascii_end()
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Got {
        Line(Vec<u8>),
        Raw(Vec<u8>, bool),
        Cut(Vec<u8>),
        Overflow,
    }

    fn record(piece: Piece<'_>) -> Got {
        match piece {
            Piece::Line { line } => Got::Line(line.to_vec()),
            Piece::Raw { data, last } => Got::Raw(data.to_vec(), last),
            Piece::Cut { line } => Got::Cut(line.to_vec()),
            Piece::Overflow => Got::Overflow,
        }
    }

    fn run(framer: &mut LineFramer, chunks: &[&[u8]], mut answer: impl FnMut(&Got) -> Next) -> Vec<Got> {
        let mut got = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, &mut |piece| {
                let item = record(piece);
                let next = answer(&item);
                got.push(item);
                next
            });
        }
        got
    }

    #[test]
    fn joins_lines_split_anywhere() {
        let mut framer = LineFramer::new(100);
        let got = run(&mut framer, &[b"US", b"ER a", b"lice\r", b"\nPASS x\r\nQU"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"USER alice".to_vec()), Got::Line(b"PASS x".to_vec())]);
        assert_eq!(framer.buffered(), 2);
    }

    #[test]
    fn a_partial_line_grows_by_doubling_within_the_line_limit() {
        let mut framer = LineFramer::new(1000);
        let mut capacities = Vec::new();
        for _ in 0..30 {
            run(&mut framer, &[&[b'a'; 30]], |_| Next::Line);
            if capacities.last() != Some(&framer.partial.capacity()) {
                capacities.push(framer.partial.capacity());
            }
        }
        assert_eq!(capacities, [FIRST_PARTIAL_CAPACITY, 256, 512, 1000]);
        let got = run(&mut framer, &[b"b\r\n"], |_| Next::Line);
        assert_eq!(got, [Got::Line([&[b'a'; 900][..], b"b"].concat())]);
        assert_eq!(framer.buffered(), 0, "the line was wiped once framed");

        let mut small = LineFramer::new(50);
        run(&mut small, &[b"USER alice"], |_| Next::Line);
        assert_eq!(small.partial.capacity(), 50, "never more than a line may hold");
    }

    #[test]
    fn bare_lf_ends_a_line_and_empty_lines_are_kept() {
        let mut framer = LineFramer::new(100);
        let got = run(&mut framer, &[b"a\n\r\nb\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"a".to_vec()), Got::Line(b"".to_vec()), Got::Line(b"b".to_vec())]);
    }

    #[test]
    fn raw_runs_cross_chunks_then_lines_resume() {
        let mut framer = LineFramer::new(100);
        let got = run(&mut framer, &[b"a LOGIN {5}\r\nab", b"c\r\n", b"de rest\r\n"], |item| match item {
            Got::Line(line) if line.ends_with(b"{5}") => Next::Raw(5),
            _ => Next::Line,
        });
        assert_eq!(
            got,
            vec![
                Got::Line(b"a LOGIN {5}".to_vec()),
                Got::Raw(b"ab".to_vec(), false),
                Got::Raw(b"c\r\n".to_vec(), true),
                Got::Line(b"de rest".to_vec()),
            ]
        );
    }

    #[test]
    fn overlong_lines_are_dropped_and_framing_recovers() {
        let mut framer = LineFramer::new(8);
        let got = run(&mut framer, &[b"0123456", b"789abc", b"def\r\nok\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Overflow, Got::Line(b"ok".to_vec())]);
        let got = run(&mut framer, &[b"0123456789\r\nok\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"0123456789".to_vec()), Got::Line(b"ok".to_vec())]);
    }

    #[test]
    fn a_gap_drops_the_partial_line_and_resyncs() {
        let mut framer = LineFramer::new(100);
        run(&mut framer, &[b"PASS sec"], |_| Next::Line);
        framer.gap(10);
        let got = run(&mut framer, &[b"ret\r\nNOOP\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"NOOP".to_vec())]);
    }

    #[test]
    fn a_gap_between_lines_keeps_the_next_line_and_marks_it() {
        let mut framer = LineFramer::new(100);
        run(&mut framer, &[b"CAPA\r\n"], |_| Next::Line);
        framer.gap(6);
        assert!(framer.after_gap());
        let got = run(&mut framer, &[b"USER al", b"ice\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"USER alice".to_vec())]);
        assert!(!framer.after_gap(), "only the first line after the gap is marked");
        framer.gap(6);
        run(&mut framer, &[b"NO"], |_| Next::Line);
        framer.gap(6);
        assert!(!framer.after_gap(), "part of a line was held: the gap cut it");
        let got = run(&mut framer, &[b"tail\r\nNOOP\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"NOOP".to_vec())]);
    }

    /// A gap that cuts a line hands its start over; the line after the gap is framed and marked
    /// when the session judges it, skipped as the cut line's tail when it does not.
    #[test]
    fn a_line_cut_by_a_gap_is_handed_over_and_the_next_line_judged_or_skipped() {
        for judge_next in [true, false] {
            let mut framer = LineFramer::new(100);
            run(&mut framer, &[b"+OK\r\n250-SIZE 1024\r\n250-STAR"], |_| Next::Line);
            let mut cut = Vec::new();
            assert!(framer.cut(&mut |piece| {
                cut.push(record(piece));
                Next::Line
            }));
            if !judge_next {
                framer.skip_cut_tail();
            }
            assert_eq!(cut, [Got::Cut(b"250-STAR".to_vec())]);
            assert_eq!(framer.buffered(), 0, "the cut line was wiped");
            framer.gap(30);
            assert_eq!(framer.after_gap(), judge_next);
            let got = run(&mut framer, &[b"235 ok\r\n221 bye\r\n"], |_| Next::Line);
            let mut expected = vec![Got::Line(b"221 bye".to_vec())];
            if judge_next {
                expected.insert(0, Got::Line(b"235 ok".to_vec()));
            }
            assert_eq!(got, expected, "judge_next {judge_next}");
        }
    }

    /// Nothing is cut between lines, inside a raw run or while skipping an overlong line's rest;
    /// a cut whose answer stops the framer stops it.
    #[test]
    fn only_a_held_line_start_is_cut() {
        let mut never = |_: Piece<'_>| -> Next { panic!("nothing to cut") };
        let mut framer = LineFramer::new(8);
        run(&mut framer, &[b"CAPA\r\n"], |_| Next::Line);
        assert!(!framer.cut(&mut never));
        framer.set_next(Next::Raw(10));
        run(&mut framer, &[b"1234"], |_| Next::Line);
        assert!(!framer.cut(&mut never));
        framer.set_next(Next::Line);
        run(&mut framer, &[b"0123456789"], |_| Next::Line);
        assert!(!framer.cut(&mut never));

        let mut framer = LineFramer::new(100);
        run(&mut framer, &[b"+OK Begin TLS"], |_| Next::Line);
        assert!(framer.cut(&mut |_| Next::Stop));
        assert!(framer.is_stopped());
    }

    #[test]
    fn a_gap_inside_a_raw_run_shortens_it() {
        let mut framer = LineFramer::new(100);
        framer.set_next(Next::Raw(10));
        framer.gap(4);
        assert_eq!(framer.raw_remaining(), Some(6));
        let got = run(&mut framer, &[b"123456x\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Raw(b"123456".to_vec(), true), Got::Line(b"x".to_vec())]);
        // A gap that ends where the run does: the line the run was announced in goes on.
        framer.set_next(Next::Raw(10));
        framer.gap(10);
        assert_eq!(framer.raw_remaining(), None);
        let got = run(&mut framer, &[b" rest\r\nnext\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b" rest".to_vec()), Got::Line(b"next".to_vec())]);
        assert!(!framer.after_gap());
        // Past its end: where the next line starts is not known, the rest of this one is skipped.
        framer.set_next(Next::Raw(10));
        framer.gap(11);
        let got = run(&mut framer, &[b"est\r\nnext\r\n"], |_| Next::Line);
        assert_eq!(got, vec![Got::Line(b"next".to_vec())]);
    }

    #[test]
    fn stop_ignores_everything_after() {
        let mut framer = LineFramer::new(100);
        let got = run(&mut framer, &[b"STLS\r\n\x16\x03\x01junk\r\n"], |_| Next::Stop);
        assert_eq!(got, vec![Got::Line(b"STLS".to_vec())]);
        assert!(framer.is_stopped());
    }
}
