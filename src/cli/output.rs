//! What the CLI's remote commands share for output: tables of JSON rows for people, a progress
//! spinner on a terminal (none when stderr is not one), and the gateway's error envelope turned
//! into one line for stderr.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest cell a table prints; longer values are cut with `…`.
const MAX_CELL: usize = 48;

fn cell(v: &Value, cut: bool) -> String {
    let s = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let s = s.replace(['\n', '\t'], " ");
    if cut && s.chars().count() > MAX_CELL {
        let cut: String = s.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// Renders rows (JSON objects) as an aligned table; the columns are the keys in order of first
/// appearance. Each line ends without trailing spaces.
pub fn table(rows: &[Value]) -> String {
    table_uncut(rows, &[])
}

/// [`table`], printing the columns named in `uncut` whole: values people copy into the next
/// command (a backup's key) must not be shortened.
pub fn table_uncut(rows: &[Value], uncut: &[&str]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| {
                    cell(
                        r.get(c).unwrap_or(&Value::Null),
                        !uncut.contains(&c.as_str()),
                    )
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header);
    for row in &body {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}

/// One line for stderr from the gateway's error envelope: status, code, detail and hint.
pub fn envelope_error(status: u16, answer: &Value) -> String {
    let text = |k: &str| answer.get(k).and_then(Value::as_str);
    let mut s = format!(
        "{status} {}: {}",
        text("code").unwrap_or("error"),
        text("error")
            .or_else(|| text("message"))
            .unwrap_or("the server refused the request")
    );
    if let Some(h) = text("hint") {
        s.push_str(&format!(" (hint: {h})"));
    }
    if let Some(t) = text("trace_id") {
        s.push_str(&format!(" [trace_id {t}]"));
    }
    s
}

/// A spinner on stderr while long work runs, drawn only when stderr is a terminal; cleared when
/// dropped.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    /// What the spinner says; the work may change it as it goes (`set_message`).
    message: Arc<Mutex<String>>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    pub fn start(message: &str) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let message = Arc::new(Mutex::new(message.to_string()));
        let thread = std::io::stderr().is_terminal().then(|| {
            let stop = stop.clone();
            let message = message.clone();
            std::thread::spawn(move || {
                let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                let started = Instant::now();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let text = message.lock().map(|m| m.clone()).unwrap_or_default();
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[2K{} {text} {:.1}s ",
                        frames[i % frames.len()],
                        started.elapsed().as_secs_f32()
                    );
                    let _ = err.flush();
                    drop(err);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = write!(std::io::stderr(), "\r\x1b[2K");
            })
        });
        Spinner {
            stop,
            message,
            thread,
        }
    }

    /// Changes what the spinner says (progress of the work).
    pub fn set_message(&self, text: String) {
        if let Ok(mut m) = self.message.lock() {
            *m = text;
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_aligns_columns_of_every_row() {
        let t = table(&[
            json!({"id": 1, "name": "Ada"}),
            json!({"id": 22, "extra": null}),
        ]);
        assert_eq!(t, "ID  NAME  EXTRA\n1   Ada   -\n22  -     -");
    }

    #[test]
    fn uncut_columns_print_whole_and_the_others_are_cut() {
        let long = "k".repeat(70);
        let t = table_uncut(&[json!({"key": long, "note": long})], &["key"]);
        let row = t.lines().nth(1).unwrap();
        assert!(row.starts_with(&format!("{long}  ")), "{row}");
        assert!(row.ends_with('…'), "{row}");
    }

    #[test]
    fn an_envelope_becomes_one_line_with_code_and_hint() {
        let e = envelope_error(
            404,
            &json!({"status": "error", "code": "unknown_table", "error": "no t", "hint": "look", "trace_id": "x"}),
        );
        assert_eq!(e, "404 unknown_table: no t (hint: look) [trace_id x]");
    }
}
