//! Caller-written SQL (`/gateway/query`, `/query/sql`): wrapping for JSON rendering, the simple
//! protocol for what cannot be prepared, the gateway deadline and the session reset.

use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use serde_json::Value;
use tokio_postgres::types::{Kind, ToSql};
use tokio_postgres::SimpleQueryMessage;

use super::{connection, map_pg_error};
use crate::backend::postgres::params::{array_literal, TextParam};
use crate::backend::postgres::schema::{ColumnInfo, ValueKind};
use crate::ops::{OpError, OpOutput, Sql};

/// Restores a connection after caller-written SQL, which may have changed session state (`SET`,
/// `SET ROLE`, `search_path`, advisory locks, temp tables), even from inside a query through
/// functions such as `set_config`. Prepared statements survive, so the statement cache stays
/// valid.
const RESET_SESSION: &str = "RESET ALL; SET SESSION AUTHORIZATION DEFAULT; CLOSE ALL; \
    UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// True inside a transaction block the caller's SQL opened (the statement is not its
/// transaction's first); an error means the block is open and failed.
const IN_TRANSACTION: &str = "SELECT now() <> statement_timestamp()";

/// Runs caller-written SQL with positional parameters.
///
/// Statements that return rows are wrapped as `WITH r AS (<query>) SELECT json_agg(r)` so
/// PostgreSQL renders the result; statements that return none report the rows they affected.
/// Statements that can be neither wrapped nor prepared (SHOW, several statements at once) run
/// through the simple protocol when they take no parameters.
///
/// The statement timeout is enforced twice: by the server setting on the connection, and by a
/// gateway deadline that cancels the query, because the SQL itself could lift the setting. The
/// connection's session is reset before it returns to the pool.
/// A cancel request uses `source`'s TLS settings, those of the client's connections.
pub async fn run_sql(
    pool: Pool,
    sql: Sql,
    timeout: Duration,
    source: &crate::pg::PgConfig,
) -> Result<OpOutput, OpError> {
    let query = sql
        .query
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
        .to_string();
    if query.is_empty() {
        return Err(OpError::InvalidRequest("query is empty".into()));
    }
    let client = connection(&pool).await?;
    let cancel = client.cancel_token();
    let outcome = if timeout.is_zero() {
        Some(run_sql_on(&client, &query, &sql.params).await)
    } else {
        // A little slack so the server's own timeout, with its clearer error, usually fires first.
        tokio::time::timeout(
            timeout + Duration::from_millis(250),
            run_sql_on(&client, &query, &sql.params),
        )
        .await
        .ok()
    };
    match outcome {
        Some((result, wrapped)) => {
            // A wrapped statement is one query: it cannot leave a transaction block open.
            reset_in_background(client, !wrapped);
            result
        }
        None => {
            // In the background and bounded: a server that stopped answering may not take the
            // cancel request either. The TLS connector is made here, off the path of statements
            // that finish in time.
            let cancel_tls = source.cancel_tls();
            tokio::spawn(async move {
                let cancelled = cancel.cancel_query(cancel_tls);
                let _ = tokio::time::timeout(timeout, cancelled).await;
            });
            // The connection was mid-statement: do not give it back to the pool.
            drop(Object::take(client));
            Err(OpError::StatementTimeout)
        }
    }
}

/// Resets the session, first ending a transaction block the SQL may have opened (checked, so
/// that no `ROLLBACK` outside a block fills the server's log with warnings).
fn reset_in_background(client: Object, may_be_in_transaction: bool) {
    tokio::spawn(async move {
        if may_be_in_transaction {
            let open = match client.simple_query(IN_TRANSACTION).await {
                Ok(messages) => messages
                    .iter()
                    .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t"))),
                Err(_) => true,
            };
            if open && client.batch_execute("ROLLBACK").await.is_err() {
                drop(Object::take(client));
                return;
            }
        }
        if client.batch_execute(RESET_SESSION).await.is_err() {
            drop(Object::take(client));
        }
    });
}

/// The result, and whether the statement ran wrapped.
async fn run_sql_on(
    client: &Object,
    query: &str,
    values: &[Value],
) -> (Result<OpOutput, OpError>, bool) {
    let wrapped =
        format!("WITH r AS (\n{query}\n) SELECT coalesce(json_agg(r), '[]'), count(*) FROM r");
    match client.prepare_cached(&wrapped).await {
        Ok(stmt) => (run_wrapped(client, &stmt, values).await, true),
        Err(e) if e.as_db_error().is_some() => (run_unwrapped(client, query, values).await, false),
        Err(e) => (Err(map_pg_error(e)), false),
    }
}

async fn run_wrapped(
    client: &Object,
    stmt: &tokio_postgres::Statement,
    values: &[Value],
) -> Result<OpOutput, OpError> {
    let params = bind_raw(values, stmt.params())?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    let row = client.query_one(stmt, &refs).await.map_err(map_pg_error)?;
    Ok(OpOutput {
        rows_json: row.get::<_, super::JsonText>(0).0.to_string(),
        row_count: row.get::<_, i64>(1).max(0) as u64,
        total: None,
        rows_affected: None,
        next_page: None,
    })
}

async fn run_unwrapped(
    client: &Object,
    query: &str,
    values: &[Value],
) -> Result<OpOutput, OpError> {
    let stmt = match client.prepare(query).await {
        Ok(stmt) => stmt,
        Err(e) if values.is_empty() && is_multi_statement(&e) => {
            return run_simple(client, query).await
        }
        Err(e) => return Err(map_pg_error(e)),
    };
    let params = bind_raw(values, stmt.params())?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    if stmt.columns().is_empty() {
        let n = client.execute(&stmt, &refs).await.map_err(map_pg_error)?;
        return Ok(OpOutput {
            rows_json: "[]".into(),
            row_count: 0,
            total: None,
            rows_affected: Some(n),
            next_page: None,
        });
    }
    if !values.is_empty() {
        return Err(OpError::InvalidRequest(
            "this statement returns rows that cannot be rendered with parameters; run it without params".into(),
        ));
    }
    run_simple(client, query).await
}

fn is_multi_statement(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code() == "42601" && db.message().contains("multiple commands"))
}

/// The simple protocol: values arrive as text; rows of the last statement that returned any.
async fn run_simple(client: &Object, query: &str) -> Result<OpOutput, OpError> {
    let messages = client.simple_query(query).await.map_err(map_pg_error)?;
    let mut rows: Vec<Value> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut affected = 0u64;
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => {
                let mut obj = serde_json::Map::new();
                for (i, c) in r.columns().iter().enumerate() {
                    obj.insert(
                        c.name().to_string(),
                        r.get(i).map_or(Value::Null, |s| Value::String(s.into())),
                    );
                }
                current.push(Value::Object(obj));
            }
            SimpleQueryMessage::CommandComplete(n) => {
                affected += n;
                if !current.is_empty() {
                    rows = std::mem::take(&mut current);
                }
            }
            _ => {}
        }
    }
    Ok(OpOutput {
        row_count: rows.len() as u64,
        rows_json: Value::Array(rows).to_string(),
        total: None,
        rows_affected: Some(affected),
        next_page: None,
    })
}

/// Converts positional JSON parameters to text parameters for the statement's inferred types.
fn bind_raw(
    values: &[Value],
    types: &[tokio_postgres::types::Type],
) -> Result<Vec<TextParam>, OpError> {
    if values.len() != types.len() {
        return Err(OpError::InvalidRequest(format!(
            "the query takes {} parameter(s) but {} were given",
            types.len(),
            values.len()
        )));
    }
    values
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (v, ty))| {
            let name = format!("${}", i + 1);
            let kind = match ty.kind() {
                Kind::Array(elem) => ValueKind::Array {
                    elem_json: matches!(elem.name(), "json" | "jsonb"),
                },
                _ if matches!(ty.name(), "json" | "jsonb") => ValueKind::Json,
                _ => ValueKind::Scalar,
            };
            let col = ColumnInfo {
                name,
                data_type: ty.name().to_string(),
                kind,
                nullable: true,
                default: None,
                primary_key: false,
            };
            match (v, kind) {
                (Value::Array(items), ValueKind::Array { elem_json }) => {
                    Ok(TextParam(Some(array_literal(items, elem_json, &col)?)))
                }
                (Value::Array(_) | Value::Object(_), ValueKind::Scalar) => {
                    Ok(TextParam(Some(v.to_string())))
                }
                _ => crate::backend::postgres::params::json_to_text(v, &col).map(TextParam),
            }
        })
        .collect()
}
