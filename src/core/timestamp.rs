//! RFC 3339 timestamps, as Docker writes them and as the history records them.
//!
//! Docker reports `Created` and `State.StartedAt` as RFC 3339 with up to nine fractional
//! digits and trailing zeros trimmed, so the strings do not sort as text
//! (`…52.1234Z` sorts after `…52.12345Z`). pointsman compares instants, so it parses them.
//! A dozen lines of calendar arithmetic are cheaper than a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch. Unparseable or zero timestamps are 0, the oldest instant:
/// a container Docker never started sorts before every container it did start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Instant(pub i128);

impl Instant {
    pub fn now() -> Instant {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Instant(d.as_nanos() as i128)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fffffffff](Z|±HH:MM)`; anything else is the epoch.
    pub fn parse(text: &str) -> Instant {
        parse_rfc3339(text).map(Instant).unwrap_or_default()
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds).
    pub fn to_rfc3339(self) -> String {
        let total_ms = self.0.div_euclid(1_000_000);
        let ms = total_ms.rem_euclid(1000);
        let secs = total_ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

fn parse_rfc3339(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { text.get(r)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, c) in frac[..digits].bytes().enumerate().take(9) {
            nanos += i128::from(c - b'0') * 10i128.pow(8 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            let s = h * 3600 + m * 60;
            if rest.starts_with('-') { -s } else { s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_fraction_lengths_compare_as_instants_not_text() {
        let a = Instant::parse("2026-11-26T05:02:52.1234Z");
        let b = Instant::parse("2026-11-26T05:02:52.12345Z");
        assert!(a < b);
    }

    #[test]
    fn offsets_are_applied() {
        assert_eq!(
            Instant::parse("2026-11-26T06:00:00+01:00"),
            Instant::parse("2026-11-26T05:00:00Z")
        );
    }

    #[test]
    fn round_trips_through_formatting() {
        let t = Instant::parse("2024-02-29T23:59:58.123Z");
        assert_eq!(t.to_rfc3339(), "2024-02-29T23:59:58.123Z");
        assert_eq!(Instant(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn garbage_and_docker_zero_time_are_the_epoch_or_before() {
        assert_eq!(Instant::parse("not a time"), Instant(0));
        assert!(Instant::parse("0001-01-01T00:00:00Z") < Instant(0));
    }
}
