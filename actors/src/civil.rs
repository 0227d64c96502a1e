//! Dates in the proleptic Gregorian calendar and UTC timestamps, without a date library, for
//! everything that writes or reads one (change events, backups and their keys, the WebSocket
//! acknowledgement, ScyllaDB's values, post-processing's buckets). Howard Hinnant's algorithms
//! (<https://howardhinnant.github.io/date_algorithms.html>): exact for any `i64` day count the
//! callers use, negative ones (before 1970) included.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil_from_days`]. The month
/// is 1..=12 and the day 1..=[`days_in_month`]; callers check them.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// How many digits of the second a timestamp shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    None,
    Millis,
    Micros,
}

/// `2024-05-01T12:00:00[.123[456]]Z`: a UTC timestamp in RFC 3339. Times before 1970 are written
/// as the calendar has them; digits below the fraction shown are cut, not rounded.
pub fn rfc3339(t: SystemTime, fraction: Fraction) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let carry = d.subsec_nanos() > 0;
            (
                -(d.as_secs() as i64) - i64::from(carry),
                (1_000_000_000 - d.subsec_nanos()) % 1_000_000_000,
            )
        }
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let rem = secs.rem_euclid(DAY);
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    match fraction {
        Fraction::None => format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        Fraction::Millis => format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            nanos / 1_000_000
        ),
        Fraction::Micros => format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
            nanos / 1_000
        ),
    }
}

/// [`rfc3339`] of a count of seconds since the epoch, without a fraction.
pub fn rfc3339_secs(secs: i64) -> String {
    let t = match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH + std::time::Duration::from_secs(s),
        Err(_) => UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs()),
    };
    rfc3339(t, Fraction::None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn day_counts_and_dates_round_trip_across_eras() {
        for days in (-1_000_000..1_000_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_844), (2024, 5, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert!(is_leap(2000) && is_leap(2024) && !is_leap(1900) && !is_leap(2023));
    }

    #[test]
    fn timestamps_are_utc_with_the_fraction_asked_for() {
        let t = UNIX_EPOCH + Duration::from_micros(1_714_564_800_123_456);
        assert_eq!(rfc3339(t, Fraction::None), "2024-05-01T12:00:00Z");
        assert_eq!(rfc3339(t, Fraction::Millis), "2024-05-01T12:00:00.123Z");
        assert_eq!(rfc3339(t, Fraction::Micros), "2024-05-01T12:00:00.123456Z");
        let before = UNIX_EPOCH - Duration::from_micros(1);
        assert_eq!(
            rfc3339(before, Fraction::Micros),
            "1969-12-31T23:59:59.999999Z"
        );
        assert_eq!(rfc3339_secs(-86_400), "1969-12-31T00:00:00Z");
        assert_eq!(rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
    }
}
