//! Capture timestamps: nanoseconds since the Unix epoch, on packet time (never the wall clock in
//! file mode, so that runs are deterministic).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use std::fmt;

use serde::{Serialize, Serializer};

/// How far a frame's timestamp may lie from the capture's time before it is taken for a jump
/// that other frames must confirm: one corrupt record or a tap's clock glitch years ahead must
/// not move packet time alone (the pipeline's clock, fragment reassembly's sweeps).
pub const CLOCK_JUMP: std::time::Duration = std::time::Duration::from_secs(60);

/// Nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos as u64))
    }

    /// The system's clock: for what happens now (live, or the end of a run that read no packet),
    /// not in a capture.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_secs_nanos(since_epoch.as_secs(), since_epoch.subsec_nanos())
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// Time from `earlier` to `self`, zero when `earlier` is later (captures are not always sorted).
    pub const fn saturating_since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    pub const fn saturating_add(self, d: std::time::Duration) -> Timestamp {
        let nanos = d.as_nanos();
        let nanos = if nanos > u64::MAX as u128 { u64::MAX } else { nanos as u64 };
        Timestamp(self.0.saturating_add(nanos))
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-27T09:15:02.123456Z`.
    pub fn rfc3339_micros(self) -> String {
        self.with_rfc3339(str::to_owned)
    }

    /// Hands `f` the text of [`Timestamp::rfc3339_micros`] from the stack, without allocating.
    pub(crate) fn with_rfc3339<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let digits = self.rfc3339_digits();
        // Digits and separators only: always UTF-8.
        f(std::str::from_utf8(&digits).unwrap_or_default())
    }

    /// The text of [`Timestamp::rfc3339_micros`], written digit by digit: every event carries a
    /// timestamp, and the formatting machinery costs several times more. The year has four
    /// digits for every `u64` of nanoseconds (1970 to 2554).
    fn rfc3339_digits(self) -> [u8; 27] {
        let secs = self.0 / 1_000_000_000;
        let micros = (self.0 % 1_000_000_000) / 1_000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        let fields: [(u64, usize); 7] = [
            (year.unsigned_abs(), 4),
            (u64::from(month), 2),
            (u64::from(day), 2),
            (rem / 3600, 2),
            (rem / 60 % 60, 2),
            (rem % 60, 2),
            (micros, 6),
        ];
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        let mut end = 0;
        for (value, width) in fields {
            end += width;
            let mut value = value;
            for slot in text.iter_mut().take(end).rev().take(width) {
                *slot = b'0' + (value % 10) as u8;
                value /= 10;
            }
            // Skip the separator after the field.
            end += 1;
        }
        text
    }

    /// Reads back what [`Timestamp::rfc3339_micros`] writes (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`, UTC,
    /// 1970 or later), for outputs that receive events with their time as text.
    pub fn from_rfc3339(text: &str) -> Option<Timestamp> {
        let text = text.strip_suffix('Z')?;
        let (date, time) = text.split_once('T')?;
        let mut date_parts = date.splitn(3, '-').map(|part| part.parse::<u32>().ok());
        let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
        let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
        let mut clock_parts = clock.splitn(3, ':').map(|part| part.parse::<u64>().ok());
        let (hour, minute, second) = (clock_parts.next()??, clock_parts.next()??, clock_parts.next()??);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let nanos =
            fraction.bytes().chain(std::iter::repeat(b'0')).take(9).fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
        let days = u64::try_from(days_from_civil(i64::from(year), month, day)).ok()?;
        let secs = days.checked_mul(86_400)?.checked_add(hour * 3600 + minute * 60 + second)?;
        Some(Timestamp::from_secs_nanos(secs, nanos))
    }
}

/// As its RFC 3339 text ([`Timestamp::rfc3339_micros`]), written without an allocation.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_rfc3339(|text| serializer.serialize_str(text))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|text| f.write_str(text))
    }
}

/// Days since the epoch to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A proleptic Gregorian date to days since the epoch (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_microseconds() {
        let ts = Timestamp::from_secs_nanos(1_795_770_902, 123_456_789);
        assert_eq!(ts.to_string(), "2026-11-27T09:15:02.123456Z");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::from_secs_nanos(951_782_400, 0).to_string(), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn digit_writer_agrees_with_the_formatter_from_1970_to_the_last_nanosecond() {
        let mut secs = 0u64;
        while secs < u64::MAX / 1_000_000_000 {
            let ts = Timestamp::from_secs_nanos(secs, (secs % 1_000_000) as u32 * 999);
            let (year, month, day) = civil_from_days((secs / 86_400) as i64);
            let rem = secs % 86_400;
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
                rem / 3600,
                rem / 60 % 60,
                rem % 60,
                ts.as_nanos() % 1_000_000_000 / 1_000
            );
            assert_eq!(ts.rfc3339_micros(), expected);
            secs = secs * 3 / 2 + 86_399;
        }
        assert_eq!(Timestamp(u64::MAX).rfc3339_micros(), "2554-07-21T23:34:33.709551Z");
    }

    #[test]
    fn rfc3339_reads_back_what_it_writes() {
        for ts in [
            Timestamp(0),
            Timestamp::from_secs_nanos(1_795_770_902, 123_456_000),
            Timestamp::from_secs_nanos(951_782_400, 0),
        ] {
            assert_eq!(Timestamp::from_rfc3339(&ts.to_string()), Some(ts));
        }
        assert_eq!(Timestamp::from_rfc3339("2026-11-27T09:15:02Z"), Some(Timestamp::from_secs_nanos(1_795_770_902, 0)));
        assert_eq!(
            Timestamp::from_rfc3339("2026-11-27T09:15:02.5Z"),
            Some(Timestamp::from_secs_nanos(1_795_770_902, 500_000_000))
        );
        for bad in [
            "",
            "2026-11-27T09:15:02",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-11-27T09:15:02.x1Z",
            "2026-11-27 09:15:02Z",
            "2026-11-27T25:00:00Z",
        ] {
            assert_eq!(Timestamp::from_rfc3339(bad), None, "{bad:?}");
        }
    }
}
