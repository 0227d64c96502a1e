//! The log rows of a batch in PostgreSQL's `COPY … FROM STDIN` text format. COPY costs the
//! database noticeably less per row than an `INSERT … SELECT unnest(…)`, and the log tables take
//! one row per request, so this is where the statistics spend the database's time.
//!
//! Text format: columns separated by tabs, rows by newlines, `\N` for null, and backslash, tab,
//! newline and carriage return escaped. Values were already cleaned of NUL by the batch.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::batch::{AuthRows, OperationRows, RequestRows};

/// Column lists, in the order the encoders below write them.
pub const REQUEST_COLUMNS: &str = "created_at, request_id, client, method, path, status_code, \
    duration_ms, api_key_public_id, user_id, company_id, organization_id, remote_addr, \
    user_agent, cached";
pub const OPERATION_COLUMNS: &str = "created_at, request_id, operation, table_name, client, \
    method, path, status_code, duration_ms, row_count, error, message";
pub const AUTH_COLUMNS: &str = "created_at, request_id, api_key_id, api_key_public_id, \
    client_name, method, path, required_rights, granted_rights, authenticated, authorized, \
    enforced, failure_reason, remote_addr, user_agent";

/// One COPY payload being written row by row.
#[derive(Default)]
struct Rows {
    out: String,
    /// No column written yet on the current row.
    line_start: bool,
}

impl Rows {
    fn with_capacity(n: usize) -> Rows {
        Rows {
            out: String::with_capacity(n),
            line_start: true,
        }
    }

    fn sep(&mut self) {
        if !self.line_start {
            self.out.push('\t');
        }
        self.line_start = false;
    }

    fn text(&mut self, v: &str) {
        self.sep();
        for c in v.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\t' => self.out.push_str("\\t"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                c => self.out.push(c),
            }
        }
    }

    fn opt_text(&mut self, v: &Option<String>) {
        match v {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn null(&mut self) {
        self.sep();
        self.out.push_str("\\N");
    }

    fn num(&mut self, v: impl std::fmt::Display) {
        self.sep();
        let _ = write!(self.out, "{v}");
    }

    fn opt_num(&mut self, v: Option<i64>) {
        match v {
            Some(n) => self.num(n),
            None => self.null(),
        }
    }

    fn float(&mut self, v: f64) {
        if v.is_finite() {
            self.num(v);
        } else {
            self.null();
        }
    }

    fn boolean(&mut self, v: bool) {
        self.sep();
        self.out.push(if v { 't' } else { 'f' });
    }

    fn time(&mut self, t: SystemTime) {
        self.sep();
        timestamp(&mut self.out, t);
    }

    fn end(&mut self) {
        self.out.push('\n');
        self.line_start = true;
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00` for a time at or after the epoch (earlier times are the epoch).
fn timestamp(out: &mut String, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}+00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    );
}

pub fn requests(r: &RequestRows) -> String {
    let mut w = Rows::with_capacity(r.at.len() * 160);
    for i in 0..r.at.len() {
        w.time(r.at[i]);
        w.text(&r.request_id[i]);
        w.opt_text(&r.client[i]);
        w.text(&r.method[i]);
        w.text(&r.path[i]);
        w.num(r.status[i]);
        w.float(r.duration_ms[i]);
        w.opt_text(&r.key_public_id[i]);
        w.opt_text(&r.user_id[i]);
        w.opt_text(&r.company_id[i]);
        w.opt_text(&r.organization_id[i]);
        w.opt_text(&r.remote_addr[i]);
        w.opt_text(&r.user_agent[i]);
        w.boolean(r.cached[i]);
        w.end();
    }
    w.out
}

pub fn operations(o: &OperationRows) -> String {
    let mut w = Rows::with_capacity(o.at.len() * 140);
    for i in 0..o.at.len() {
        w.time(o.at[i]);
        w.text(&o.request_id[i]);
        w.text(&o.operation[i]);
        w.opt_text(&o.table[i]);
        w.opt_text(&o.client[i]);
        w.text(&o.method[i]);
        w.text(&o.path[i]);
        w.num(o.status[i]);
        w.float(o.duration_ms[i]);
        w.opt_num(o.row_count[i]);
        w.boolean(o.error[i]);
        w.opt_text(&o.message[i]);
        w.end();
    }
    w.out
}

pub fn auth(a: &AuthRows) -> String {
    let mut w = Rows::with_capacity(a.at.len() * 200);
    for i in 0..a.at.len() {
        w.time(a.at[i]);
        w.text(&a.request_id[i]);
        w.opt_num(a.api_key_id[i]);
        w.opt_text(&a.public_id[i]);
        w.opt_text(&a.client_name[i]);
        w.text(&a.method[i]);
        w.text(&a.path[i]);
        w.text(&a.required_rights[i]);
        w.text(&a.granted_rights[i]);
        w.boolean(a.authenticated[i]);
        w.boolean(a.authorized[i]);
        w.boolean(a.enforced[i]);
        w.opt_text(&a.failure_reason[i]);
        w.opt_text(&a.remote_addr[i]);
        w.opt_text(&a.user_agent[i]);
        w.end();
    }
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ts(secs: u64, micros: u32) -> String {
        let mut s = String::new();
        timestamp(
            &mut s,
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros)),
        );
        s
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(ts(0, 0), "1970-01-01 00:00:00.000000+00");
        // date -u -d @1795842000
        assert_eq!(ts(1_795_842_000, 42), "2026-11-28 05:00:00.000042+00");
        assert_eq!(ts(951_782_400, 0), "2000-02-29 00:00:00.000000+00");
        assert_eq!(ts(4_107_542_399, 999_999), "2100-02-28 23:59:59.999999+00");
    }

    #[test]
    fn text_escapes_the_copy_delimiters_and_writes_nulls() {
        let mut w = Rows::with_capacity(0);
        w.text("a\tb\nc\\d\re");
        w.opt_text(&None);
        w.boolean(true);
        w.opt_num(Some(-3));
        w.float(f64::NAN);
        w.end();
        w.text("x");
        w.end();
        assert_eq!(w.out, "a\\tb\\nc\\\\d\\re\t\\N\tt\t-3\t\\N\nx\n");
    }
}
