//! `/admin/clients/statistics*`: the per-client and per-table totals the statistics actor keeps
//! in the logging database (read by `athena_actors::stats::totals`). Admin key only. A refresh
//! first asks the actor to write what it holds, then rebuilds both tables from the logs in one
//! transaction.
//! Without a ready logging database these answer 503 `logging_unavailable`.

use actix_web::{web, HttpResponse};
use athena_actors::registry::LoggingState;
use athena_actors::stats::totals;
use athena_actors::stats::writer::{self, WriteError};
use serde_json::json;

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

async fn all_clients(db: &tokio_postgres::Client) -> Result<HttpResponse, ApiError> {
    let list = totals::clients(db).await.map_err(db_error)?;
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
    let (totals, tables) = totals::client(&db, &name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            ApiError::new(
                Code::UnknownClient,
                format!("no statistics for a client named {name:?}"),
            )
            .hint("GET /admin/clients/statistics lists the clients with statistics")
        })?;
    Ok(respond::data(
        &format!("Statistics of client {name}"),
        json!({"statistics": totals, "tables": tables}),
    ))
}
