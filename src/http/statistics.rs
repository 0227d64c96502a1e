//! `/admin/clients/statistics*`: the per-client and per-table totals the statistics actor keeps
//! in the logging database. Admin key only. Reads query the tables directly; a refresh first asks
//! the actor to write what it holds, then rebuilds both tables from the logs in one transaction.
//! Without a ready logging database these answer 503 `logging_unavailable`.

use actix_web::{web, HttpResponse};
use athena_actors::registry::LoggingState;
use athena_actors::stats::writer::{self, WriteError};
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::{auth, respond, AppState};

fn unavailable(detail: impl Into<String>) -> ApiError {
    ApiError::new(Code::LoggingUnavailable, detail).hint("GET / shows the logging database's state")
}

fn db_error(e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        Some(db) if db.code().code() == "42P01" => {
            unavailable("the logging database is not migrated yet")
                .hint("POST /admin/provision migrates it")
        }
        Some(db) => {
            tracing::warn!(sqlstate = %db.code().code(), message = %db.message(), "statistics query failed");
            ApiError::new(Code::DatabaseError, "the statistics query failed")
        }
        None => unavailable("the logging database is unavailable"),
    }
}

/// A connection to the logging database, unless it is known not to be ready.
async fn logging_db(state: &AppState) -> Result<deadpool_postgres::Object, ApiError> {
    if let LoggingState::Pending { .. } = state.actors.snapshot.load().logging {
        return Err(unavailable(
            "the logging database is not ready yet (it is being created or migrated)",
        ));
    }
    state
        .logging_db
        .get()
        .await
        .map_err(|_| unavailable("the logging database is unavailable"))
}

const CLIENT_ROW: &str = "client_name, total_requests, successful_requests, failed_requests, \
    total_cached_requests, total_operations, (to_json(last_request_at) #>> '{}'), (to_json(last_operation_at) #>> '{}'), \
    (to_json(updated_at) #>> '{}')";

fn client_json(r: &tokio_postgres::Row) -> Value {
    json!({
        "client_name": r.get::<_, String>(0),
        "total_requests": r.get::<_, i64>(1),
        "successful_requests": r.get::<_, i64>(2),
        "failed_requests": r.get::<_, i64>(3),
        "total_cached_requests": r.get::<_, i64>(4),
        "total_operations": r.get::<_, i64>(5),
        "last_request_at": r.get::<_, Option<String>>(6),
        "last_operation_at": r.get::<_, Option<String>>(7),
        "updated_at": r.get::<_, String>(8),
    })
}

async fn all_clients(db: &tokio_postgres::Client) -> Result<HttpResponse, ApiError> {
    let rows = db
        .query(
            &format!("SELECT {CLIENT_ROW} FROM client_statistics ORDER BY client_name"),
            &[],
        )
        .await
        .map_err(db_error)?;
    let list: Vec<Value> = rows.iter().map(client_json).collect();
    Ok(respond::data(
        &format!("Statistics of {}", respond::counted(list.len(), "client")),
        json!({"statistics": list}),
    ))
}

/// `GET /admin/clients/statistics`.
pub async fn list(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let db = logging_db(&state).await?;
    all_clients(&db).await
}

/// `POST /admin/clients/statistics/refresh`: write pending records, rebuild, list.
pub async fn refresh(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut db = logging_db(&state).await?;
    state
        .actors
        .stats
        .flush()
        .await
        .map_err(|e| unavailable(format!("pending statistics could not be written: {e}")))?;
    writer::rebuild(&mut db).await.map_err(|e| match e {
        WriteError::Unavailable(_) => unavailable("the logging database is unavailable"),
        WriteError::Rejected(msg) => {
            tracing::warn!(error = %msg, "statistics rebuild failed");
            ApiError::new(Code::DatabaseError, "the statistics rebuild failed")
        }
    })?;
    all_clients(&db).await
}

/// `GET /admin/clients/{client_name}/statistics`.
pub async fn client(
    _admin: auth::Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().trim().to_ascii_lowercase();
    let db = logging_db(&state).await?;
    let row = db
        .query_opt(
            &format!("SELECT {CLIENT_ROW} FROM client_statistics WHERE client_name = $1"),
            &[&name],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            ApiError::new(
                Code::UnknownClient,
                format!("no statistics for a client named {name:?}"),
            )
            .hint("GET /admin/clients/statistics lists the clients with statistics")
        })?;
    let tables = db
        .query(
            "SELECT client_name, table_name, operation, total_operations, error_operations, \
             (to_json(last_operation_at) #>> '{}') FROM client_table_statistics WHERE client_name = $1 \
             ORDER BY table_name, operation",
            &[&name],
        )
        .await
        .map_err(db_error)?;
    let tables: Vec<Value> = tables
        .iter()
        .map(|r| {
            json!({
                "client_name": r.get::<_, String>(0),
                "table_name": r.get::<_, String>(1),
                "operation": r.get::<_, String>(2),
                "total_operations": r.get::<_, i64>(3),
                "error_operations": r.get::<_, i64>(4),
                "last_operation_at": r.get::<_, Option<String>>(5),
            })
        })
        .collect();
    Ok(respond::data(
        &format!("Statistics of client {name}"),
        json!({"statistics": client_json(&row), "tables": tables}),
    ))
}
