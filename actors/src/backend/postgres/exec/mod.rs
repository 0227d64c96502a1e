//! Statement execution against the pool. These futures own everything they use (a pool handle
//! and a plan), so the actor holds none of its state across an `.await`.

mod raw;

use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;

pub use raw::run_sql;

use super::schema::{self, ColumnInfo, TableInfo};
use super::sql::{Plan, Shape};
use crate::ops::{DbFailure, OpError, OpOutput, TableRef};

/// Prepared statements kept per connection before the cache is started over.
const STATEMENT_CACHE_MAX: usize = 512;

pub fn map_pool_error(e: PoolError) -> OpError {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => OpError::PoolExhausted,
        PoolError::Timeout(TimeoutType::Create) => {
            OpError::Unavailable("connecting to the database timed out".into())
        }
        PoolError::Timeout(TimeoutType::Recycle) => {
            OpError::Unavailable("checking a pooled connection timed out".into())
        }
        // Backend errors come from opening or checking a connection: whatever the server said
        // (refused, unknown database, bad credentials), the client cannot be reached.
        PoolError::Backend(e) => match map_pg_error(e) {
            OpError::Db(f) => {
                OpError::Unavailable(format!("{} (SQLSTATE {})", f.message, f.sqlstate))
            }
            other => other,
        },
        PoolError::Closed => OpError::Unavailable("the pool is closed".into()),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            OpError::Internal(e.to_string())
        }
    }
}

pub fn map_pg_error(e: tokio_postgres::Error) -> OpError {
    if let Some(cause) = crate::pg::tls_cause(&e) {
        return OpError::Unavailable(cause);
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if code == "57014" {
            return OpError::StatementTimeout;
        }
        if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") {
            return OpError::Unavailable(db.message().to_string());
        }
        return OpError::Db(Box::new(DbFailure {
            sqlstate: code.to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            constraint: db.constraint().map(str::to_string),
            column: db.column().map(str::to_string),
        }));
    }
    if e.is_closed() || is_network_io(&e) {
        return OpError::Unavailable(connection_cause(&e));
    }
    OpError::Internal(e.to_string())
}

/// Whether the error is the network failing (as opposed to, say, a protocol message the client
/// could not parse, which says nothing about the database being reachable).
fn is_network_io(e: &tokio_postgres::Error) -> bool {
    use std::io::ErrorKind::*;
    // tokio_postgres's own word for a socket that could not be opened, whatever the cause (a
    // host name that does not resolve included).
    if e.to_string().starts_with("error connecting to server") {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | AddrNotAvailable
                    | BrokenPipe
                    | TimedOut
                    | UnexpectedEof
                    | HostUnreachable
                    | NetworkUnreachable
                    | NetworkDown
            ) || io.to_string().contains("connect");
        }
        source = s.source();
    }
    e.to_string().contains("error connecting") || e.to_string().contains("timed out")
}

/// A description of a connection failure that never includes the connection string.
fn connection_cause(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

fn is_stale_plan(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code() == "0A000" && db.message().contains("cached plan"))
}

pub(super) async fn connection(pool: &Pool) -> Result<Object, OpError> {
    let client = pool.get().await.map_err(map_pool_error)?;
    if client.statement_cache.size() > STATEMENT_CACHE_MAX {
        client.statement_cache.clear();
    }
    Ok(client)
}

/// A `json` value read as its text, without a cast in the statement: the binary form of `json`
/// is the text itself.
pub(super) struct JsonText<'a>(pub(super) &'a str);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText<'a> {
    fn from_sql(
        _ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(JsonText(std::str::from_utf8(raw)?))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSON
    }
}

/// Runs a plan and collects its rows as one JSON array.
///
/// `deadline` bounds the wait for the server's answer (see [`PoolShared`](super::PoolShared)): a
/// connection that stops answering is taken out of the pool and the request ends in a timeout
/// instead of hanging. For a `write` (one statement, committed by the server as it ends), a
/// connection lost or silent after the statement was sent leaves its outcome unknown, which is
/// said as such ([`OpError::OutcomeUnknown`]) and never as a failure.
pub async fn run_plan(
    pool: Pool,
    plan: Plan,
    deadline: Option<Duration>,
    write: bool,
) -> Result<OpOutput, OpError> {
    let client = connection(&pool).await?;
    let res = match deadline {
        None => run_plan_on(&client, plan).await,
        Some(limit) => match tokio::time::timeout(limit, run_plan_on(&client, plan)).await {
            Ok(res) => res,
            Err(_) => {
                drop(Object::take(client));
                return Err(no_answer(limit, write));
            }
        },
    };
    res.map_err(|e| if write { lost_write(e, &client) } else { e })
}

/// The error of a statement that got no answer within `limit`.
fn no_answer(limit: Duration, write: bool) -> OpError {
    let after_ms = limit.as_millis() as u64;
    if write {
        OpError::OutcomeUnknown(format!("the database did not answer within {after_ms} ms"))
    } else {
        OpError::NoAnswer { after_ms }
    }
}

/// A write's error, as what is known of its outcome: a connection that failed without the server
/// reporting an error (closed, reset) may have lost the reply of a committed write.
fn lost_write(e: OpError, client: &Object) -> OpError {
    match e {
        OpError::Unavailable(cause) if client.is_closed() => {
            OpError::OutcomeUnknown(format!("the connection was lost ({cause})"))
        }
        other => other,
    }
}

/// Runs a plan on a connection the caller holds (a transaction's).
pub async fn run_plan_on(client: &Object, plan: Plan) -> Result<OpOutput, OpError> {
    let params: Vec<&(dyn ToSql + Sync)> = plan.params.iter().map(|p| p as _).collect();
    let rows = match query_cached(client, &plan.sql, &params).await {
        Err(e) if is_stale_plan(&e) => {
            // The table changed under a cached statement: forget the plan and try once more.
            client.statement_cache.clear();
            query_cached(client, &plan.sql, &params).await
        }
        other => other,
    }
    .map_err(map_pg_error)?;
    match plan.shape {
        Shape::Rows => Ok(rows_output(&rows)),
        Shape::AggregateWithTotal => {
            let row = rows
                .first()
                .ok_or_else(|| OpError::Internal("an aggregate returned no row".into()))?;
            Ok(OpOutput {
                rows_json: row.get::<_, JsonText>(0).0.to_string(),
                row_count: row.get::<_, i64>(1).max(0) as u64,
                total: Some(row.get(2)),
                rows_affected: None,
                next_page: None,
            })
        }
    }
}

/// Runs a write in a transaction that commits only when the statement touched exactly one row;
/// otherwise it is rolled back and the answer is [`OpError::NotOneRow`]. A connection lost
/// before the `COMMIT` was sent rolled the work back (a failure); one lost, or silent past
/// `deadline`, after it leaves the outcome unknown.
pub async fn run_plan_one(
    pool: Pool,
    plan: Plan,
    deadline: Option<Duration>,
) -> Result<OpOutput, OpError> {
    if plan.shape != Shape::Rows {
        return Err(OpError::Internal(
            "a single-row run needs a row plan".into(),
        ));
    }
    let mut client = connection(&pool).await?;
    let committing = std::cell::Cell::new(false);
    let run = run_one_on(&mut client, &plan, &committing);
    let res = match deadline {
        None => run.await,
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(res) => res,
            Err(_) => {
                drop(Object::take(client));
                return Err(no_answer(limit, committing.get()));
            }
        },
    };
    match res {
        Err(e) if committing.get() => Err(lost_write(e, &client)),
        other => other,
    }
}

async fn run_one_on(
    client: &mut Object,
    plan: &Plan,
    committing: &std::cell::Cell<bool>,
) -> Result<OpOutput, OpError> {
    let params: Vec<&(dyn ToSql + Sync)> = plan.params.iter().map(|p| p as _).collect();
    let mut retried = false;
    loop {
        let tx = client.transaction().await.map_err(map_pg_error)?;
        let res = match tx.prepare_cached(&plan.sql).await {
            Ok(stmt) => tx.query(&stmt, &params).await,
            Err(e) => Err(e),
        };
        let rows = match res {
            Ok(rows) => rows,
            Err(e) if is_stale_plan(&e) && !retried => {
                // As in `run_plan`: the failed statement ended the transaction, so start over.
                drop(tx);
                client.statement_cache.clear();
                retried = true;
                continue;
            }
            Err(e) => return Err(map_pg_error(e)),
        };
        if rows.len() != 1 {
            tx.rollback().await.map_err(map_pg_error)?;
            return Err(OpError::NotOneRow {
                rows: rows.len() as u64,
            });
        }
        committing.set(true);
        tx.commit().await.map_err(map_pg_error)?;
        return Ok(rows_output(&rows));
    }
}

/// One JSON array of the rows' single JSON column.
fn rows_output(rows: &[tokio_postgres::Row]) -> OpOutput {
    let mut json = String::with_capacity(
        2 + rows
            .iter()
            .map(|r| r.get::<_, JsonText>(0).0.len() + 1)
            .sum::<usize>(),
    );
    json.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(row.get::<_, JsonText>(0).0);
    }
    json.push(']');
    OpOutput {
        rows_json: json,
        row_count: rows.len() as u64,
        total: None,
        rows_affected: None,
        next_page: None,
    }
}

async fn query_cached(
    client: &Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(sql).await?;
    client.query(&stmt, params).await
}

/// Runs one catalog read on a pooled connection within `deadline` (requests wait on it): a
/// connection that stays silent is taken out of the pool and the read ends in
/// [`OpError::NoAnswer`].
async fn catalog_read<T>(
    pool: Pool,
    deadline: Option<Duration>,
    read: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
) -> Result<T, OpError> {
    let client = connection(&pool).await?;
    let res = match deadline {
        None => Ok(read(&client).await),
        Some(limit) => tokio::time::timeout(limit, read(&client)).await,
    };
    match res {
        Ok(res) => res.map_err(map_pg_error),
        Err(_) => {
            drop(Object::take(client));
            Err(no_answer(deadline.unwrap_or_default(), false))
        }
    }
}

/// Reads a table's description, within `deadline` (see [`catalog_read`]).
pub async fn load_table(
    pool: Pool,
    table: TableRef,
    deadline: Option<Duration>,
) -> Result<Option<TableInfo>, OpError> {
    catalog_read(pool, deadline, async |c| {
        schema::load_table(c, &table).await
    })
    .await
}

/// Reads the versions of a function, within `deadline` (see [`catalog_read`]).
pub async fn load_functions(
    pool: Pool,
    function: TableRef,
    deadline: Option<Duration>,
) -> Result<Option<super::functions::FunctionSet>, OpError> {
    catalog_read(pool, deadline, async |c| {
        super::functions::load_functions(c, &function).await
    })
    .await
}

/// Lists the tables, within `deadline` (see [`catalog_read`]).
pub async fn list_tables(pool: Pool, deadline: Option<Duration>) -> Result<OpOutput, OpError> {
    let (rows_json, n) =
        catalog_read(pool, deadline, async |c| schema::list_tables(c).await).await?;
    Ok(OpOutput {
        rows_json,
        row_count: n.max(0) as u64,
        total: None,
        rows_affected: None,
        next_page: None,
    })
}

/// A cheap round trip proving the database answers: `SELECT 1` on a fresh connection (a pooled
/// one may be stale while the database is fine), all within `limit` twice over (connect, then
/// query). The error is the cause in words, without the connection string.
pub async fn probe(config: crate::pg::PgConfig, limit: Duration) -> Result<(), String> {
    let run = async {
        let (client, conn) = config
            .connect()
            .await
            .map_err(|e| map_pg_error(e).to_string())?;
        // Ends when the client is dropped.
        tokio::spawn(conn);
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| map_pg_error(e).to_string())?;
        Ok(())
    };
    tokio::time::timeout(limit * 2, run)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the health probe got no answer within {} ms",
                (limit * 2).as_millis()
            ))
        })
}

/// Describes a table's columns as the `/schema/columns` rows.
pub fn describe(info: &TableInfo) -> OpOutput {
    let rows: Vec<Value> = info
        .columns
        .iter()
        .map(|c: &ColumnInfo| {
            json!({
                "column_name": c.name,
                "data_type": c.data_type,
                "column_default": c.default,
                "is_nullable": c.nullable,
                "is_primary_key": c.primary_key,
            })
        })
        .collect();
    OpOutput {
        row_count: rows.len() as u64,
        rows_json: Value::Array(rows).to_string(),
        total: None,
        rows_affected: None,
        next_page: None,
    }
}
