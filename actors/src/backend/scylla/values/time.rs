//! Dates, times, timestamps and durations between CQL's numbers and text, in the proleptic
//! Gregorian calendar, without a date library (the ranges CQL allows exceed most of them).
//!
//! * timestamp: milliseconds since the epoch ↔ RFC 3339 in UTC with milliseconds
//!   (`2024-05-01T12:00:00.000Z`); in, any offset, a space for `T`, no offset (UTC), a bare date
//!   (midnight UTC), or an integer of epoch milliseconds. Digits below the millisecond are cut.
//! * date: days ↔ `YYYY-MM-DD` (years beyond 0000..9999 with a sign, ISO 8601 expanded).
//! * time: nanoseconds since midnight ↔ `HH:MM:SS[.fffffffff]` (trailing zeros dropped); in, also
//!   an integer of nanoseconds.
//! * duration: ↔ ISO 8601 (`P1Y2M3DT4H5M6.5S`, `-P3D`); in, also CQL's own units
//!   (`1y2mo3w4d5h6m7s8ms9us10ns`).

use crate::civil::{civil_from_days, days_from_civil, days_in_month};

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!(
            "{}{:04}-{m:02}-{d:02}",
            if y < 0 { '-' } else { '+' },
            y.abs()
        )
    }
}

/// `[+-]YYYY-MM-DD` → days since the epoch.
fn parse_date_part(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let mut parts = rest.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() < 4 || y.len() > 9 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    let y: i64 = sign * y.parse::<i64>().ok()?;
    let m: u32 = m.parse().ok()?;
    let d: u32 = d.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// CQL `date` (days, 2^31 = the epoch) → `YYYY-MM-DD`.
pub fn date_to_string(raw: u32) -> String {
    format_date(raw as i64 - (1i64 << 31))
}

/// `YYYY-MM-DD` → CQL `date`.
pub fn parse_date(s: &str) -> Result<u32, String> {
    let days =
        parse_date_part(s.trim()).ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))?;
    u32::try_from(days + (1i64 << 31)).map_err(|_| format!("{s:?} is out of the date range"))
}

/// `HH:MM:SS.fffffffff` (fraction trimmed) from nanoseconds since midnight.
pub fn time_to_string(nanos: i64) -> String {
    let n = nanos.rem_euclid(NANOS_PER_DAY);
    let secs = n / 1_000_000_000;
    let frac = n % 1_000_000_000;
    let base = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        base
    } else {
        let f = format!("{frac:09}");
        format!("{base}.{}", f.trim_end_matches('0'))
    }
}

/// `HH:MM[:SS[.f…]]` (at most nine fraction digits) → nanoseconds since midnight.
fn parse_clock(s: &str) -> Option<i64> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let h: i64 = parts[0].parse().ok()?;
    let m: i64 = parts[1].parse().ok()?;
    let sec: i64 = parts.get(2).map_or(Some(0), |p| p.parse().ok())?;
    if h > 23 || m > 59 || sec > 59 || (frac.is_some() && parts.len() != 3) {
        return None;
    }
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + nanos)
}

/// `HH:MM:SS[.f…]` → nanoseconds since midnight.
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_clock(s.trim()).ok_or_else(|| format!("{s:?} is not a time (HH:MM:SS[.fffffffff])"))
}

/// Epoch milliseconds → RFC 3339 UTC with milliseconds.
pub fn timestamp_to_string(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let clock = time_to_string(rem * 1_000_000);
    let (hms, _) = clock.split_at(8);
    format!("{}T{hms}.{:03}Z", format_date(days), rem % 1000)
}

/// RFC 3339 (or a bare date, or no offset meaning UTC) → epoch milliseconds.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 timestamp");
    let t = s.trim();
    // The date ends at the first 'T', 't' or ' ' after the year.
    let split = t
        .char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, 'T' | 't' | ' '))
        .map(|(i, _)| i);
    let (date, rest) = match split {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    };
    let days = parse_date_part(date).ok_or_else(bad)?;
    let (clock, offset_min) = if rest.is_empty() {
        (0, 0)
    } else {
        let (clock, off) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let (c, o) = rest.split_at(i);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let o = o[1..].replace(':', "");
            if o.len() != 4 || !o.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let h: i64 = o[..2].parse().map_err(|_| bad())?;
            let m: i64 = o[2..].parse().map_err(|_| bad())?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            (c, sign * (h * 60 + m))
        } else {
            (rest, 0)
        };
        // Cut below the millisecond before reading the clock (which keeps nanoseconds).
        let clock = match clock.split_once('.') {
            Some((hms, f)) if f.len() > 9 => {
                // `get`, not slicing: a non-ASCII fraction is refused, never a panic.
                format!("{hms}.{}", f.get(..9).ok_or_else(bad)?)
            }
            _ => clock.to_string(),
        };
        (parse_clock(&clock).ok_or_else(bad)?, off)
    };
    days.checked_mul(86_400_000)
        .and_then(|d| d.checked_add(clock / 1_000_000))
        .and_then(|v| v.checked_sub(offset_min * 60_000))
        .ok_or_else(|| format!("{s:?} is out of the timestamp range"))
}

/// A CQL duration: months, days, nanoseconds, all of one sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    pub months: i32,
    pub days: i32,
    pub nanos: i64,
}

/// ISO 8601: `P1Y2M3DT4H5M6.000000007S`, `-P3D`, `PT0S`.
pub fn duration_to_string(d: Duration) -> String {
    let negative = d.months < 0 || d.days < 0 || d.nanos < 0;
    let (months, days, nanos) = (
        d.months.unsigned_abs() as u64,
        d.days.unsigned_abs() as u64,
        d.nanos.unsigned_abs(),
    );
    let mut out = String::from(if negative { "-P" } else { "P" });
    if months / 12 > 0 {
        out.push_str(&format!("{}Y", months / 12));
    }
    if months % 12 > 0 {
        out.push_str(&format!("{}M", months % 12));
    }
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if nanos > 0 || (months == 0 && days == 0) {
        out.push('T');
        let secs = nanos / 1_000_000_000;
        let frac = nanos % 1_000_000_000;
        if secs / 3600 > 0 {
            out.push_str(&format!("{}H", secs / 3600));
        }
        if secs / 60 % 60 > 0 {
            out.push_str(&format!("{}M", secs / 60 % 60));
        }
        if secs % 60 > 0 || frac > 0 || nanos == 0 {
            out.push_str(&(secs % 60).to_string());
            if frac > 0 {
                out.push('.');
                out.push_str(format!("{frac:09}").trim_end_matches('0'));
            }
            out.push('S');
        }
    }
    out
}

/// ISO 8601 (`P…`) or CQL units (`1h30m`) → a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (ISO 8601 like P1DT2H, or CQL units like 1d2h)");
    let t = s.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    // Wide accumulators, bounded after every unit: no input can overflow them.
    let (mut months, mut days, mut nanos) = (0i128, 0i128, 0i128);
    let in_range = |months: i128, days: i128, nanos: i128| {
        months.abs() <= i32::MAX as i128
            && days.abs() <= i32::MAX as i128
            && nanos.abs() <= i64::MAX as i128
    };
    let upper = body.to_ascii_uppercase();
    if let Some(iso) = upper.strip_prefix('P') {
        let mut in_time = false;
        let mut num = String::new();
        let mut any = false;
        for c in iso.chars() {
            match c {
                'T' if !in_time && num.is_empty() => in_time = true,
                '0'..='9' | '.' => num.push(c),
                unit => {
                    if num.is_empty() {
                        return Err(bad());
                    }
                    any = true;
                    if unit == 'S' && in_time {
                        nanos += seconds_to_nanos(&num).ok_or_else(bad)?;
                    } else {
                        let n = num.parse::<i64>().map_err(|_| bad())? as i128;
                        match (unit, in_time) {
                            ('Y', false) => months += n * 12,
                            ('M', false) => months += n,
                            ('W', false) => days += n * 7,
                            ('D', false) => days += n,
                            ('H', true) => nanos += n * 3_600_000_000_000,
                            ('M', true) => nanos += n * 60_000_000_000,
                            _ => return Err(bad()),
                        }
                    }
                    num.clear();
                }
            }
            if !in_range(months, days, nanos) {
                return Err(bad());
            }
        }
        if !num.is_empty() || !any {
            return Err(bad());
        }
    } else {
        let lower = body.to_ascii_lowercase();
        let b = lower.as_bytes();
        let mut i = 0;
        if b.is_empty() {
            return Err(bad());
        }
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n = lower[start..i].parse::<i64>().map_err(|_| bad())? as i128;
            let ustart = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            match &lower[ustart..i] {
                "y" => months += n * 12,
                "mo" => months += n,
                "w" => days += n * 7,
                "d" => days += n,
                "h" => nanos += n * 3_600_000_000_000,
                "m" => nanos += n * 60_000_000_000,
                "s" => nanos += n * 1_000_000_000,
                "ms" => nanos += n * 1_000_000,
                "us" => nanos += n * 1_000,
                "ns" => nanos += n,
                _ => return Err(bad()),
            }
            if !in_range(months, days, nanos) {
                return Err(bad());
            }
        }
    }
    let sign: i128 = if negative { -1 } else { 1 };
    Ok(Duration {
        months: i32::try_from(sign * months).map_err(|_| bad())?,
        days: i32::try_from(sign * days).map_err(|_| bad())?,
        nanos: i64::try_from(sign * nanos).map_err(|_| bad())?,
    })
}

/// `6.5` seconds → nanoseconds (at most nine fraction digits).
fn seconds_to_nanos(s: &str) -> Option<i128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    // At most 20 integer digits: the product below stays far inside i128.
    if int.is_empty()
        || int.len() > 20
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i128 = int.parse().ok()?;
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(int * 1_000_000_000 + frac)
}
