//! Raw SQL: `POST /gateway/query {query, params?}` and `POST /query/sql {query, driver, db_name}`
//! (`driver: scylla`, alias `athena`, runs CQL with `?` parameters on a ScyllaDB client).
//! Both need a key holding `gateway.query` (or the admin key) whatever the enforcement setting,
//! and run under the client's statement timeout. Caller-supplied connection targets
//! (`X-JDBC-URL`) are refused.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::ops::Operation;
use serde_json::{json, Value};

use super::call::Call;
use super::error::{ApiError, Code};
use super::gateway::{client, execute, Answer};
use super::{body, cache, keys, respond, stats, AppState};
use crate::dialect::{self, Body};
use athena_actors::keys::Required;
use athena_actors::registry::ClientHandle;

fn refuse_connection_targets(req: &impl Call) -> Result<(), ApiError> {
    if let Some(header) = req.connection_target() {
        return Err(ApiError::new(
            Code::ConnectionTargetNotAllowed,
            format!("caller-supplied connection targets ({header}) are not allowed"),
        )
        .hint("register the database as a client and name it in X-Athena-Client"));
    }
    Ok(())
}

/// Raw SQL needs `gateway.query` or the admin key, whether or not keys are enforced.
fn require_query_right(
    req: &impl Call,
    state: &AppState,
    handle: &ClientHandle,
) -> Result<(), ApiError> {
    let caller = keys::authenticate(req, state, handle, true)?;
    keys::authorize(req, &caller, &Required::raw_sql())
}

/// The part of `/gateway/query` that needs no body: connection targets refused, the client
/// resolved, `gateway.query` (or the admin key) required. Shared with the WebSocket gateway.
pub fn begin_gateway_query(
    req: &impl Call,
    state: &AppState,
) -> Result<Arc<ClientHandle>, ApiError> {
    stats::note_operation(req, "query", None);
    refuse_connection_targets(req)?;
    let handle = client(req, state, None)?;
    require_query_right(req, state, &handle)?;
    Ok(handle)
}

/// The rest of `/gateway/query`: the statement runs under the statement timeout, the tables it
/// names are invalidated in the cache, and the envelope is rendered.
pub async fn finish_gateway_query(
    req: &impl Call,
    state: &AppState,
    handle: &ClientHandle,
    body: Body,
) -> Result<Answer, ApiError> {
    let sql = dialect::sql(&body)?;
    let text = sql.query.clone();
    let res = execute(handle, Operation::Sql(sql)).await;
    cache::sql_ran(state, &handle.name, &text).await;
    let out = res?;
    stats::note_rows(req, out.rows_affected.unwrap_or(out.row_count));
    let body = respond::rows_body(
        "Returned",
        &out,
        false,
        &[
            ("returned_row_count", json!(out.row_count)),
            ("rows_affected", json!(out.rows_affected)),
        ],
    )?;
    Ok(Answer {
        body: body.into(),
        cache: None,
    })
}

pub async fn gateway_query(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let handle = begin_gateway_query(&req, &state)?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    Ok(finish_gateway_query(&req, &state, &handle, body)
        .await?
        .into_response())
}

pub async fn query_sql(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stats::note_operation(&req, "query", None);
    refuse_connection_targets(&req)?;
    keys::precheck(&req, &state)?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let driver = dialect::opt_str(&body, "driver")?.ok_or_else(|| dialect::missing("driver"))?;
    // The driver says which language `query` is in, and so which clients can run it.
    let language = match driver.to_ascii_lowercase().as_str() {
        "postgresql" | "postgres" => "sql",
        "scylla" | "athena" => "cql",
        "supabase" => {
            return Err(ApiError::new(
                Code::DriverNotAvailable,
                format!("the {driver} driver is not available on this server"),
            ))
        }
        other => {
            return Err(ApiError::new(
                Code::UnknownDriver,
                format!("unknown driver {other:?}; use postgresql or scylla"),
            ))
        }
    };
    // db_name names the client; X-Athena-Client may repeat it but not contradict it.
    let db_name = dialect::opt_str(&body, "db_name")?;
    let header = req
        .headers()
        .get(&super::headers::X_ATHENA_CLIENT)
        .and_then(|v| v.to_str().ok());
    if let (Some(d), Some(h)) = (db_name, header) {
        if !d.trim().eq_ignore_ascii_case(h.trim()) {
            return Err(ApiError::new(
                Code::InvalidField,
                format!("db_name {d:?} and X-Athena-Client {h:?} name different clients"),
            ));
        }
    }
    let handle = client(&req, &state, db_name)?;
    // SQL runs on PostgreSQL clients (a Supabase client refuses it as any raw SQL), CQL on
    // ScyllaDB clients; a client that does not speak the driver's language is refused before
    // the query right is looked at.
    let is_scylla = handle.backend.kind() == athena_actors::backend::scylla::BACKEND;
    if is_scylla != (language == "cql") {
        return Err(ApiError::new(
            Code::UnsupportedByBackend,
            format!(
                "client {:?} is a {} client; the {driver} driver's {} does not run there",
                handle.name,
                handle.backend.kind(),
                language.to_ascii_uppercase(),
            ),
        )
        .hint("driver postgresql runs SQL on PostgreSQL clients, driver scylla (or athena) runs CQL on ScyllaDB clients"));
    }
    require_query_right(&req, &state, &handle)?;
    let sql = dialect::sql(&body)?;
    let started = Instant::now();
    let text = sql.query.clone();
    let res = execute(&handle, Operation::Sql(sql)).await;
    cache::sql_ran(&state, &handle.name, &text).await;
    let out = res?;
    stats::note_rows(&req, out.rows_affected.unwrap_or(out.row_count));
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    respond::rows(
        "Returned",
        &out,
        false,
        &[
            ("db_name", Value::String(handle.name.clone())),
            (
                "duration_ms",
                json!((duration_ms * 1000.0).round() / 1000.0),
            ),
            ("returned_row_count", json!(out.row_count)),
            ("rows_affected", json!(out.rows_affected)),
        ],
    )
}
