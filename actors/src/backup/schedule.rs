//! Backup schedules, pure: `every: 6h` or `cron: "0 3 * * *"` (five fields, UTC), when one is
//! due, and which backups pruning removes. Times are seconds since the epoch, passed in, so all
//! of it is tested without a clock or an actor.
//!
//! Whether a schedule is due is judged from the newest backup it made (read from the bucket), not
//! from a timer of this instance: a new scheduler (another instance taking over, or a restart)
//! neither repeats a backup nor misses one by more than one tick.

use std::time::Duration;

/// When a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// At most this long after the schedule's newest backup.
    Every(Duration),
    /// At the minutes the expression matches (UTC).
    Cron(Cron),
}

/// One configured schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    pub client: String,
    pub when: When,
    /// Scheduled backups of the client kept; older ones are deleted after each scheduled backup.
    pub keep: usize,
}

/// Parses `30s`, `15m`, `6h`, `1d` (a number and a unit).
pub fn parse_every(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 15m, 6h or 1d"))?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration such as 30s, 15m, 6h or 1d"
            ))
        }
    };
    if secs == 0 {
        return Err("the interval must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

/// A five-field cron expression: minute, hour, day of month, month, day of week (0 or 7 is
/// Sunday). Fields take `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`. As in
/// cron, when both day fields are restricted a day matching either runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_any: bool,
    weekdays_any: bool,
}

fn field(text: &str, lo: u32, hi: u32, name: &str) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{name}: bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let num = |v: &str| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("{name}: {v:?} is not a number from {lo} to {hi}"))
        };
        let (a, b) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (num(a)?, num(b)?),
                None if step > 1 => (num(r)?, hi),
                None => {
                    let n = num(r)?;
                    (n, n)
                }
            },
        };
        if a > b {
            return Err(format!("{name}: {part:?} is an empty range"));
        }
        let mut v = a;
        while v <= b {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

impl Cron {
    pub fn parse(s: &str) -> Result<Cron, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "{s:?} is not a cron expression: five fields (minute hour day month weekday)"
            ));
        }
        let mut weekdays = field(f[4], 0, 7, "weekday")?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Cron {
            minutes: field(f[0], 0, 59, "minute")?,
            hours: field(f[1], 0, 23, "hour")?,
            days: field(f[2], 1, 31, "day")?,
            months: field(f[3], 1, 12, "month")?,
            weekdays,
            days_any: f[2] == "*",
            weekdays_any: f[4] == "*",
        })
    }

    /// Whether the minute starting at `t` (seconds since the epoch, UTC) matches.
    pub fn matches(&self, t: i64) -> bool {
        let days = t.div_euclid(86_400);
        let rem = t.rem_euclid(86_400);
        let (_, month, day) = crate::civil::civil_from_days(days);
        // 1970-01-01 was a Thursday (4).
        let weekday = (days + 4).rem_euclid(7) as u32;
        let bit = |set: u64, v: u32| set & (1 << v) != 0;
        let day_ok = match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (false, true) => bit(self.days, day),
            (true, false) => bit(self.weekdays, weekday),
            (false, false) => bit(self.days, day) || bit(self.weekdays, weekday),
        };
        day_ok
            && bit(self.months, month)
            && bit(self.hours, (rem / 3600) as u32)
            && bit(self.minutes, ((rem / 60) % 60) as u32)
    }

    /// The latest matching minute at or before `t`, looking back at most about four years
    /// (`0 0 29 2 *` matches once in four).
    pub fn last_at_or_before(&self, t: i64) -> Option<i64> {
        let mut m = t - t.rem_euclid(60);
        let floor = m - 4 * 366 * 86_400;
        while m >= floor {
            let days = m.div_euclid(86_400);
            let (_, month, _) = crate::civil::civil_from_days(days);
            if self.months & (1 << month) == 0 {
                // Jump to the last minute of the previous day.
                m = days * 86_400 - 60;
                continue;
            }
            if self.matches(m) {
                return Some(m);
            }
            m -= 60;
        }
        None
    }
}

/// Whether a schedule should back up now. `last` is the creation time of its newest backup;
/// `since` is when this scheduler started (a cron schedule with no backup yet waits for its next
/// time rather than running at once).
pub fn due(when: &When, last: Option<i64>, since: i64, now: i64) -> bool {
    match when {
        When::Every(d) => last.is_none_or(|l| now - l >= d.as_secs() as i64),
        When::Cron(c) => match c.last_at_or_before(now) {
            None => false,
            Some(slot) => match last {
                Some(l) => l < slot,
                None => slot >= since - since.rem_euclid(60),
            },
        },
    }
}

/// The keys pruning removes: every backup past the newest `keep`, given `(key, created)` pairs of
/// one schedule's complete backups.
pub fn to_prune(mut backups: Vec<(String, i64)>, keep: usize) -> Vec<String> {
    backups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    backups.into_iter().skip(keep).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-05-01T00:00:00Z, a Wednesday.
    const MAY1: i64 = 1_714_521_600;

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_every("6h").unwrap(), Duration::from_secs(21_600));
        assert_eq!(parse_every("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_every("1d").unwrap(), Duration::from_secs(86_400));
        for bad in ["", "6", "h", "0s", "6 hours", "-1m"] {
            assert!(parse_every(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cron_matches_minutes_hours_and_days() {
        let c = Cron::parse("0 3 * * *").unwrap();
        assert!(c.matches(MAY1 + 3 * 3600));
        assert!(!c.matches(MAY1 + 3 * 3600 + 60));
        assert_eq!(c.last_at_or_before(MAY1 + 5 * 3600), Some(MAY1 + 3 * 3600));
        assert_eq!(
            c.last_at_or_before(MAY1 + 3600),
            Some(MAY1 - 86_400 + 3 * 3600)
        );
        let every15 = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(
            every15.last_at_or_before(MAY1 + 29 * 60 + 5),
            Some(MAY1 + 15 * 60)
        );
        // Sundays (0 and 7) at 12:30: 2024-05-05.
        for expr in ["30 12 * * 0", "30 12 * * 7", "30 12 * * 6-7"] {
            let c = Cron::parse(expr).unwrap();
            assert_eq!(
                c.last_at_or_before(MAY1 + 6 * 86_400),
                Some(MAY1 + 4 * 86_400 + 12 * 3600 + 1800),
                "{expr}"
            );
        }
        let leap = Cron::parse("0 0 29 2 *").unwrap();
        assert_eq!(leap.last_at_or_before(MAY1), Some(MAY1 - 62 * 86_400));
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "5-1 * * * *",
            "*/0 * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn due_follows_the_newest_backup() {
        let every = When::Every(Duration::from_secs(3600));
        assert!(due(&every, None, MAY1, MAY1));
        assert!(!due(&every, Some(MAY1), MAY1, MAY1 + 3599));
        assert!(due(&every, Some(MAY1), MAY1, MAY1 + 3600));
        let cron = When::Cron(Cron::parse("0 3 * * *").unwrap());
        // No backup yet: the next 03:00 after the scheduler started, not the one before.
        assert!(!due(&cron, None, MAY1 + 4 * 3600, MAY1 + 5 * 3600));
        assert!(due(&cron, None, MAY1 + 4 * 3600, MAY1 + 86_400 + 3 * 3600));
        assert!(due(
            &cron,
            Some(MAY1 - 86_400),
            MAY1 + 4 * 3600,
            MAY1 + 4 * 3600
        ));
        assert!(!due(
            &cron,
            Some(MAY1 + 3 * 3600 + 5),
            MAY1,
            MAY1 + 4 * 3600
        ));
    }

    #[test]
    fn pruning_keeps_the_newest() {
        let b = |k: &str, t| (k.to_string(), t);
        let gone = to_prune(vec![b("a", 1), b("c", 3), b("b", 2), b("d", 4)], 2);
        assert_eq!(gone, vec!["b".to_string(), "a".to_string()]);
        assert!(to_prune(vec![b("a", 1)], 3).is_empty());
    }
}
