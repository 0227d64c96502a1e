//! Time values for `time_granularity`: parses what PostgreSQL's `row_to_json` emits for
//! `timestamptz`, `timestamp` and `date` (and epoch seconds), and cuts them into UTC buckets.
//! The calendar arithmetic is Howard Hinnant's days-from-civil / civil-from-days, so no date
//! crate is needed.

use athena_actors::civil::{civil_from_days, days_from_civil, days_in_month, DAY};
use serde_json::Value;

use super::number::Num;
use super::Granularity;

/// Years accepted. Year 1 starts on a Monday (proleptic Gregorian), so every week bucket of an
/// accepted time still has a four-digit year; PostgreSQL prints other years in forms (`BC`,
/// five digits) that are not ISO 8601 anyway.
const MIN_YEAR: i64 = 1;
const MAX_YEAR: i64 = 9999;

/// Seconds since 1970-01-01 00:00 UTC, floored (the finest bucket is a minute, so sub-second
/// digits never matter). `None` when the value is not a time.
pub(super) fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => epoch(&n.to_string()),
        Value::String(s) => {
            let s = s.trim();
            epoch(s).or_else(|| datetime(s))
        }
        _ => None,
    }
}

/// The bucket a time falls in: its start (for ordering) and its label.
pub(super) fn bucket(secs: i64, granularity: Granularity) -> (i64, String) {
    let days = secs.div_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let date = format!("{y:04}-{m:02}-{d:02}");
    match granularity {
        Granularity::Minute => {
            let start = secs.div_euclid(60) * 60;
            let tod = start - days * DAY;
            (
                start,
                format!("{date} {:02}:{:02}", tod / 3600, tod % 3600 / 60),
            )
        }
        Granularity::Hour => {
            let start = secs.div_euclid(3600) * 3600;
            (
                start,
                format!("{date} {:02}:00", (start - days * DAY) / 3600),
            )
        }
        Granularity::Day => (days * DAY, date),
        Granularity::Week => {
            // Day 0 (1970-01-01) was a Thursday, so `days + 3` counts from a Monday.
            let monday = days - (days + 3).rem_euclid(7);
            let (y, m, d) = civil_from_days(monday);
            (monday * DAY, format!("{y:04}-{m:02}-{d:02}"))
        }
        Granularity::Month => (days_from_civil(y, m, 1) * DAY, format!("{y:04}-{m:02}")),
    }
}

fn epoch(text: &str) -> Option<i64> {
    in_range(Num::parse(text)?.floor_i64()?)
}

fn in_range(secs: i64) -> Option<i64> {
    let lo = days_from_civil(MIN_YEAR, 1, 1) * DAY;
    let hi = (days_from_civil(MAX_YEAR, 12, 31) + 1) * DAY;
    (lo..hi).contains(&secs).then_some(secs)
}

/// `YYYY-MM-DD`, optionally followed by `T` or a space, `HH:MM[:SS[.fraction]]` and an offset
/// (`Z`, `±HH`, `±HH:MM`, `±HHMM`, `±HH:MM:SS`). No offset means UTC: a `timestamp` without time
/// zone has no other meaning we could give it.
fn datetime(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let y = c.digits(4)?;
    c.expect(b'-')?;
    let mo = c.digits(2)?;
    c.expect(b'-')?;
    let d = c.digits(2)?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&y) || !(1..=12).contains(&mo) {
        return None;
    }
    let (mo, d) = (mo as u32, u32::try_from(d).ok()?);
    if d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let date = days_from_civil(y, mo, d) * DAY;
    if c.done() {
        return in_range(date);
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let h = c.digits(2)?;
    c.expect(b':')?;
    let mi = c.digits(2)?;
    let sec = if c.eat(b':') { c.digits(2)? } else { 0 };
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    if c.eat(b'.') || c.eat(b',') {
        let start = c.i;
        while c.peek().is_some_and(|b| b.is_ascii_digit()) {
            c.i += 1;
        }
        if c.i == start {
            return None;
        }
    }
    let offset = if c.done() || c.eat(b'Z') || c.eat(b'z') {
        0
    } else {
        let sign = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return None;
        };
        let oh = c.digits(2)?;
        let (mut om, mut os) = (0, 0);
        if c.eat(b':') {
            om = c.digits(2)?;
            if c.eat(b':') {
                os = c.digits(2)?;
            }
        } else if let Some(m) = c.digits(2) {
            om = m;
        }
        if oh > 23 || om > 59 || os > 59 {
            return None;
        }
        sign * (oh * 3600 + om * 60 + os)
    };
    if !c.done() {
        return None;
    }
    in_range(date + h * 3600 + mi * 60 + sec - offset)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// Exactly `n` ASCII digits; consumes nothing when they are not there.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let part = self.b.get(self.i..self.i + n)?;
        let mut v = 0;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(b - b'0');
        }
        self.i += n;
        Some(v)
    }
}
