//! Statement execution on the client's one shared session. Prepared statements are cached by the
//! session ([`CachingSession`]); each statement carries the client's consistency, request timeout
//! and page size. These futures own what they use, so no actor state is held across an `.await`.

use std::time::{Duration, Instant};

use scylla::client::caching_session::CachingSession;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::{Consistency, Statement as CqlStatement};
use scylla::value::{CqlValue, Row};
use serde_json::{Map, Value};

use super::errors::{map_error, map_prepare};
use super::plan::{FetchPlan, Statement};
use super::types::CqlType;
use super::values;
use super::write::WritePlan;
use crate::ops::{OpError, OpOutput, Sql};

/// Most rows raw CQL may return; a larger result asks for a `LIMIT`.
pub const RAW_MAX_ROWS: usize = 100_000;

/// How every statement of a client runs.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    pub consistency: Consistency,
    pub request_timeout: Duration,
    /// Most rows one page asks the cluster for.
    pub page_size: i32,
}

fn statement(cql: &str, rs: &RunSettings, page_size: i32) -> CqlStatement {
    let mut s = CqlStatement::new(cql.to_string());
    s.set_consistency(rs.consistency);
    s.set_request_timeout(Some(rs.request_timeout));
    s.set_page_size(page_size.max(1));
    s
}

type Page = (Vec<Row>, PagingStateResponse);

pub(super) async fn page(
    s: &CachingSession,
    st: &Statement,
    rs: &RunSettings,
    page_size: i32,
    state: PagingState,
) -> Result<Page, OpError> {
    let (res, next) = s
        .execute_single_page(statement(&st.cql, rs, page_size), &st.values, state)
        .await
        .map_err(map_error)?;
    let rows = match res.into_rows_result() {
        Ok(r) => r
            .rows::<Row>()
            .map_err(|e| OpError::Internal(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| OpError::Internal(e.to_string()))?,
        Err(_) => Vec::new(),
    };
    Ok((rows, next))
}

/// Runs a fetch: pages are read until `limit` rows are in hand or the table has no more; the
/// answer carries the cursor of what follows.
pub async fn run_fetch(
    s: &CachingSession,
    plan: FetchPlan,
    rs: RunSettings,
) -> Result<OpOutput, OpError> {
    if plan.matches_nothing {
        return Ok(OpOutput {
            rows_json: "[]".into(),
            total: plan.count.as_ref().map(|_| 0),
            ..OpOutput::default()
        });
    }
    let mut rows: Vec<Value> = Vec::new();
    let mut state = match &plan.paging_state {
        Some(b) => PagingState::new_from_raw_bytes(b.clone()),
        None => PagingState::start(),
    };
    let mut next = None;
    let limit = plan.limit as usize;
    // Filtering may read many pages that keep nothing: past the request timeout the answer is
    // what was found, with the cursor of where to go on.
    let deadline = Instant::now() + rs.request_timeout;
    while rows.len() < limit && (next.is_none() || Instant::now() < deadline) {
        let want = (limit - rows.len()).min(rs.page_size.max(1) as usize) as i32;
        let (got, more) = page(s, &plan.select, &rs, want, state).await?;
        for row in got {
            let mut obj = Map::new();
            for (i, key) in &plan.fields {
                obj.insert(
                    key.clone(),
                    values::opt_to_json(row.columns.get(*i).and_then(Option::as_ref)),
                );
            }
            rows.push(Value::Object(obj));
        }
        match more {
            PagingStateResponse::HasMorePages { state: st } => {
                next = st.as_bytes_slice().map(|b| b.to_vec());
                state = st;
            }
            PagingStateResponse::NoMorePages => {
                next = None;
                break;
            }
        }
    }
    let total = match &plan.count {
        Some(c) => {
            let (r, _) = page(s, c, &rs, 1, PagingState::start()).await?;
            let n = r
                .first()
                .and_then(|r| r.columns.first())
                .and_then(|c| match c {
                    Some(CqlValue::BigInt(n)) => Some(*n),
                    _ => None,
                })
                .unwrap_or(0);
            Some(n)
        }
        None => None,
    };
    Ok(OpOutput {
        row_count: rows.len() as u64,
        rows_json: Value::Array(rows).to_string(),
        total,
        rows_affected: None,
        next_page: next.map(|b| super::cursor::encode(&plan.fingerprint, &b)),
    })
}

/// Runs a write: one statement, a logged batch, or lightweight transactions one by one.
pub async fn run_write(
    s: &CachingSession,
    plan: WritePlan,
    rs: RunSettings,
) -> Result<OpOutput, OpError> {
    let mut out_rows: Vec<Value> = Vec::with_capacity(plan.rows.len());
    if plan.batch {
        let mut batch = Batch::new(BatchType::Logged);
        batch.set_consistency(rs.consistency);
        batch.set_request_timeout(Some(rs.request_timeout));
        for st in &plan.statements {
            batch.append_statement(statement(&st.cql, &rs, rs.page_size));
        }
        let values: Vec<&Vec<Option<CqlValue>>> =
            plan.statements.iter().map(|s| &s.values).collect();
        s.batch(&batch, &values).await.map_err(map_error)?;
        out_rows = plan.rows.into_iter().map(Value::Object).collect();
    } else {
        for (st, row) in plan.statements.iter().zip(plan.rows) {
            let (rows, _) = page(s, st, &rs, rs.page_size, PagingState::start()).await?;
            let applied = !plan.conditional
                || matches!(
                    rows.first().and_then(|r| r.columns.first()),
                    Some(Some(CqlValue::Boolean(true)))
                );
            if applied {
                out_rows.push(Value::Object(row));
            }
        }
    }
    let n = out_rows.len() as u64;
    Ok(OpOutput {
        rows_json: Value::Array(out_rows).to_string(),
        row_count: n,
        ..OpOutput::default()
    })
}

/// Whether a CQL text changes the schema (`CREATE`, `ALTER`, `DROP`, `TRUNCATE` is not one).
pub fn changes_schema(cql: &str) -> bool {
    matches!(first_keyword(cql).as_str(), "CREATE" | "ALTER" | "DROP")
}

/// The first keyword of a CQL text, past comments.
fn first_keyword(cql: &str) -> String {
    let mut s = cql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--").or_else(|| s.strip_prefix("//")) {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    s.split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Raw CQL with positional `?` parameters, bound with the types the prepared statement declares.
/// `USE` is refused: it would switch the keyspace of the shared session under every request.
pub async fn run_cql(s: &CachingSession, sql: Sql, rs: RunSettings) -> Result<OpOutput, OpError> {
    if first_keyword(&sql.query) == "USE" {
        return Err(OpError::InvalidRequest(
            "USE would change the keyspace of every request on this client; name the keyspace \
             in the statement (keyspace.table)"
                .into(),
        ));
    }
    let st = statement(&sql.query, &rs, rs.page_size);
    let prepared = s.add_prepared_statement(&st).await.map_err(map_prepare)?;
    let specs = prepared.get_variable_col_specs();
    if specs.len() != sql.params.len() {
        return Err(OpError::InvalidRequest(format!(
            "the statement has {} parameter(s) (?), and {} value(s) were given",
            specs.len(),
            sql.params.len()
        )));
    }
    let mut bound = Vec::with_capacity(specs.len());
    for (i, (spec, v)) in specs.iter().zip(&sql.params).enumerate() {
        let ty = CqlType::from_driver(spec.typ());
        bound.push(
            values::from_json(&ty, v).map_err(|reason| OpError::InvalidValue {
                column: format!("parameter {} ({})", i + 1, spec.name()),
                reason,
            })?,
        );
    }
    let stmt = Statement {
        cql: sql.query,
        values: bound,
    };
    let mut rows: Vec<Value> = Vec::new();
    let mut state = PagingState::start();
    let deadline = Instant::now() + rs.request_timeout;
    loop {
        let (res, more) = s
            .execute_single_page(statement(&stmt.cql, &rs, rs.page_size), &stmt.values, state)
            .await
            .map_err(map_error)?;
        if let Ok(r) = res.into_rows_result() {
            let cols: Vec<String> = r
                .column_specs()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            for row in r
                .rows::<Row>()
                .map_err(|e| OpError::Internal(e.to_string()))?
            {
                let row = row.map_err(|e| OpError::Internal(e.to_string()))?;
                let obj: Map<String, Value> = cols
                    .iter()
                    .zip(&row.columns)
                    .map(|(n, v)| (n.clone(), values::opt_to_json(v.as_ref())))
                    .collect();
                rows.push(Value::Object(obj));
            }
            if rows.len() > RAW_MAX_ROWS {
                return Err(OpError::LimitExceeded(format!(
                    "the statement returns more than {RAW_MAX_ROWS} rows; add a LIMIT"
                )));
            }
        }
        match more {
            PagingStateResponse::HasMorePages { state: st } => state = st,
            PagingStateResponse::NoMorePages => break,
        }
        if Instant::now() > deadline {
            return Err(OpError::StatementTimeout);
        }
    }
    Ok(OpOutput {
        row_count: rows.len() as u64,
        rows_json: Value::Array(rows).to_string(),
        // CQL reports no count of changed rows.
        rows_affected: None,
        ..OpOutput::default()
    })
}

/// A cheap round trip proving the cluster answers.
pub async fn probe(s: &CachingSession, rs: RunSettings) -> Result<(), OpError> {
    let st = Statement {
        cql: "SELECT now() FROM system.local".into(),
        values: Vec::new(),
    };
    page(s, &st, &rs, 1, PagingState::start()).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keyword_is_read_past_comments() {
        assert_eq!(first_keyword("  use ks"), "USE");
        assert_eq!(
            first_keyword("-- note\n/* block */ // line\n Use\tks"),
            "USE"
        );
        assert_eq!(first_keyword("/* unterminated"), "");
        assert_eq!(first_keyword("SELECT 1"), "SELECT");
        assert!(changes_schema("/* x */ alter TABLE t ADD c int"));
        assert!(changes_schema("create index on t (c)"));
        assert!(!changes_schema("INSERT INTO t (a) VALUES (1)"));
        assert!(!changes_schema("select * from created"));
    }
}
