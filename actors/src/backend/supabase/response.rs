//! PostgREST's answers as the operation layer's: rows (with the total from `Content-Range`) or an
//! [`OpError`] chosen from PostgREST's `code` (a `PGRST…` code or the SQLSTATE PostgreSQL
//! reported) and the HTTP status.
//!
//! Pure: the executor hands in the status, the `Content-Range` header and the body text.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::ops::{DbFailure, OpError, OpOutput, Returns, RpcOutput};

/// PostgREST's error body.
#[derive(Debug, Default, Deserialize)]
struct PgrstError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    hint: Option<String>,
}

/// The total of `Content-Range: first-last/total` (`*/total` when empty); `None` for `*`.
pub fn total(content_range: Option<&str>) -> Option<i64> {
    content_range?.rsplit_once('/')?.1.trim().parse().ok()
}

/// A successful answer: the body is a JSON array of rows (or one object for a single-row write).
pub fn rows(body: String, content_range: Option<&str>, single: bool) -> Result<OpOutput, OpError> {
    let bad = |e: serde_json::Error| OpError::BadBackendResponse(format!("rows are not JSON: {e}"));
    let (rows_json, row_count) = if single {
        let _: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&body).map_err(bad)?;
        (format!("[{body}]"), 1)
    } else if body.trim().is_empty() {
        ("[]".to_string(), 0)
    } else {
        let items: Vec<IgnoredAny> = serde_json::from_str(&body).map_err(bad)?;
        (body, items.len() as u64)
    };
    Ok(OpOutput {
        rows_json,
        row_count,
        total: total(content_range),
        rows_affected: None,
        next_page: None,
    })
}

/// A function's answer in PostgREST's shapes, as rows: a bare value is one row `{function:
/// value}` (`Scalar`), an array of values one such row each (`ScalarSet`), an object one row
/// (`Row`), an array of objects the rows (`RowSet`), no body at all `void`. An empty array is an
/// empty `RowSet`: the shape of an empty answer cannot tell a set of values from a set of rows.
pub fn rpc(
    body: String,
    content_range: Option<&str>,
    function: &str,
) -> Result<RpcOutput, OpError> {
    let bad =
        |e: serde_json::Error| OpError::BadBackendResponse(format!("the answer is not JSON: {e}"));
    let one = |v: serde_json::Value| {
        let mut row = serde_json::Map::new();
        row.insert(function.to_string(), v);
        serde_json::Value::Object(row)
    };
    let total = total(content_range);
    let (rows, returns) = if body.trim().is_empty() {
        (vec![one(serde_json::Value::Null)], Returns::Void)
    } else {
        match serde_json::from_str(&body).map_err(bad)? {
            serde_json::Value::Array(items) if items.iter().all(serde_json::Value::is_object) => {
                let row_count = items.len() as u64;
                let output = OpOutput {
                    rows_json: body,
                    row_count,
                    total,
                    rows_affected: None,
                    next_page: None,
                };
                return Ok(RpcOutput {
                    output,
                    returns: Returns::RowSet,
                });
            }
            serde_json::Value::Array(items) => {
                (items.into_iter().map(one).collect(), Returns::ScalarSet)
            }
            row @ serde_json::Value::Object(_) => (vec![row], Returns::Row),
            value => (vec![one(value)], Returns::Scalar),
        }
    };
    let output = OpOutput {
        row_count: rows.len() as u64,
        rows_json: serde_json::Value::Array(rows).to_string(),
        total,
        rows_affected: None,
        next_page: None,
    };
    Ok(RpcOutput { output, returns })
}

/// Whether `code` looks like a SQLSTATE (five characters, digits and upper-case letters).
fn is_sqlstate(code: &str) -> bool {
    code.len() == 5
        && code
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// The first name quoted in `message` (`'x'` or `"x"`), else the word after `column `.
fn quoted_name(message: &str) -> Option<String> {
    for q in ['\'', '"'] {
        if let Some((_, rest)) = message.split_once(q) {
            if let Some((name, _)) = rest.split_once(q) {
                return Some(name.to_string());
            }
        }
    }
    let rest = message.split_once("column ")?.1;
    rest.split_whitespace().next().map(str::to_string)
}

/// The number in PostgREST's `The result contains N rows`.
fn rows_in(details: Option<&str>) -> u64 {
    details
        .and_then(|d| d.split_whitespace().find_map(|w| w.parse().ok()))
        .unwrap_or(0)
}

/// A failed answer as an error: a 5xx without a query's own SQLSTATE is `Unavailable` and a 504
/// `BackendTimeout`, which count against the client's breaker; PostgREST's answers about the query
/// do not. `target` names the backend in messages (never with its key); `table` is the
/// operation's table or function.
pub fn error(status: u16, body: &str, target: &str, table: &str) -> OpError {
    let parsed: Option<PgrstError> = serde_json::from_str(body).ok();
    let Some(e) = parsed.filter(|e| e.code.is_some() || e.message.is_some()) else {
        let err = match status {
            401 | 403 => OpError::BackendAuth(format!("{target} answered {status}")),
            504 => OpError::BackendTimeout(format!("{target} answered {status}")),
            s if s >= 500 => OpError::Unavailable(format!("{target} answered {status}")),
            _ => OpError::BadBackendResponse(format!(
                "{target} answered {status} without a PostgREST error; is the URL a Supabase project?"
            )),
        };
        return err;
    };
    let code = e.code.clone().unwrap_or_default();
    let message = e.message.clone().unwrap_or_default();
    let db = |sqlstate: &str| {
        OpError::Db(Box::new(DbFailure {
            sqlstate: sqlstate.to_string(),
            message: message.clone(),
            detail: e.details.clone(),
            hint: e.hint.clone(),
            constraint: None,
            column: None,
        }))
    };
    let err = match (status, code.as_str()) {
        (_, "42P01" | "PGRST205" | "PGRST202" | "42883") => OpError::UnknownTable {
            table: table.to_string(),
        },
        (_, "42703" | "PGRST204") => OpError::UnknownColumn {
            table: table.to_string(),
            column: quoted_name(&message).unwrap_or(message.clone()),
        },
        (_, "PGRST116") => OpError::NotOneRow {
            rows: rows_in(e.details.as_deref()),
        },
        (_, "57014") => OpError::StatementTimeout,
        // The caller's rights inside the upstream database (row-level security, grants).
        (401 | 403, _) | (_, "PGRST301" | "PGRST302" | "PGRST300") => {
            OpError::BackendAuth(format!("{target} answered {status}: {message}"))
        }
        (_, "PGRST000" | "PGRST001" | "PGRST002" | "PGRST003") => {
            OpError::Unavailable(format!("{target}: {message}"))
        }
        (504, _) => OpError::BackendTimeout(format!("{target}: {message}")),
        (_, "PGRST100") => OpError::InvalidFilter(message.clone()),
        (_, "PGRST125") => OpError::BadBackendResponse(format!(
            "{target} has no such path ({message}); is the URL a Supabase project?"
        )),
        (_, c) if c.starts_with("PGRST1") => OpError::InvalidRequest(message.clone()),
        (_, c) if is_sqlstate(c) => db(c),
        (s, _) if s >= 500 => OpError::Unavailable(format!("{target} answered {s}: {message}")),
        (s, _) => OpError::BadBackendResponse(format!("{target} answered {s}: {message}")),
    };
    err
}
