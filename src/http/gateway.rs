//! `/gateway/fetch|data|insert|update|delete`: structured CRUD in the gateway dialect.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::cache::Cached;
use athena_actors::ops::{OpError, OpOutput, Operation};
use athena_actors::registry::{ClientHandle, Lifecycle};

use super::error::{ApiError, Code};
use super::{body, cache, keys, respond, stats, AppState};
use crate::dialect::{self, Kind};

/// The client named by `X-Athena-Client` (or `fallback`), ready to take requests.
pub fn client(
    req: &HttpRequest,
    state: &AppState,
    fallback: Option<&str>,
) -> Result<Arc<ClientHandle>, ApiError> {
    let header = match req.headers().get("x-athena-client") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(Code::InvalidField, "X-Athena-Client must be visible ASCII")
        })?),
        None => None,
    };
    let name = header
        .or(fallback)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingClientHeader,
                "the X-Athena-Client header is required",
            )
            .hint("name the database client, e.g. X-Athena-Client: default")
        })?;
    let snapshot = state.actors.snapshot.load();
    if !snapshot.loaded {
        return Err(ApiError::new(
            Code::NotReady,
            "the client registry is still loading",
        ));
    }
    let handle = snapshot
        .get(name)
        .ok_or_else(|| {
            ApiError::new(Code::UnknownClient, format!("no client named {name:?}"))
                .hint("GET /schema/clients lists the clients (admin key)")
        })?
        .clone();
    stats::facts(req).client = Some(handle.name.clone());
    match &handle.lifecycle {
        Lifecycle::Active => Ok(handle),
        Lifecycle::Frozen { .. } => Err(ApiError::new(
            Code::ClientFrozen,
            format!("client {name:?} is frozen"),
        )),
        Lifecycle::Deleted => Err(ApiError::new(
            Code::UnknownClient,
            format!("no client named {name:?}"),
        )),
    }
}

/// Runs one operation on the client's pool.
pub async fn execute(handle: &ClientHandle, op: Operation) -> Result<OpOutput, ApiError> {
    handle
        .pool
        .execute(op)
        .await
        .map_err(|e| pool_error(handle, e))
}

/// Runs a write that must touch exactly one row: it is rolled back otherwise (`not_one_row`).
pub async fn execute_one(handle: &ClientHandle, op: Operation) -> Result<OpOutput, ApiError> {
    handle
        .pool
        .execute_one(op)
        .await
        .map_err(|e| pool_error(handle, e))
}

/// An operation's failure, naming the client where the cause is the client's state.
fn pool_error(handle: &ClientHandle, e: OpError) -> ApiError {
    match e {
        OpError::Unavailable(_) => ApiError::new(
            Code::BackendUnavailable,
            format!("the database of client {:?} is unavailable", handle.name),
        )
        .hint("GET / shows each client's state; requests succeed again once it is online"),
        OpError::Overloaded | OpError::PoolExhausted => ApiError::new(
            Code::Overloaded,
            format!("client {:?} has too many requests in flight", handle.name),
        ),
        other => ApiError::from(other),
    }
}

fn strip_nulls(req: &HttpRequest) -> bool {
    req.headers()
        .get("x-strip-nulls")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn verb(kind: Kind) -> &'static str {
    match kind {
        Kind::Fetch => "Fetched",
        Kind::Insert => "Inserted",
        Kind::Update => "Updated",
        Kind::Delete => "Deleted",
        Kind::Sql => "Returned",
    }
}

async fn run(
    kind: Kind,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stats::note_operation(&req, kind.operation_name(), None);
    let handle = client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    stats::note_table(&req, &body);
    let op = dialect::operation(kind, &body, &state.dialect())?;
    keys::authorize(&req, &caller, &keys::required(&op))?;
    let strip = strip_nulls(&req);
    let written = match &op {
        Operation::Fetch(fetch) => {
            let fetch = fetch.clone();
            let shape = if strip { "strip-nulls" } else { "" };
            let render = || async {
                let out = execute(&handle, op).await?;
                stats::note_rows(&req, out.row_count);
                Ok(Cached {
                    body: respond::rows_body(verb(kind), &out, strip, &[])?.into(),
                    rows: out.row_count,
                    total: out.total,
                })
            };
            let (outcome, answer) =
                cache::fetch(&req, &state, &handle.name, &caller, &fetch, shape, render).await?;
            return Ok(cache::json(answer.body, outcome));
        }
        Operation::Insert(i) => Some(i.table.clone()),
        Operation::Update(u) => Some(u.table.clone()),
        Operation::Delete(d) => Some(d.table.clone()),
        _ => None,
    };
    let res = execute(&handle, op).await;
    if let Some(table) = written {
        cache::written(&state, &handle.name, &table).await;
    }
    let out = res?;
    stats::note_rows(&req, out.row_count);
    respond::rows(verb(kind), &out, strip, &[])
}

pub async fn fetch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Fetch, req, payload, state).await
}

pub async fn insert(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Insert, req, payload, state).await
}

pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Update, req, payload, state).await
}

pub async fn delete(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    run(Kind::Delete, req, payload, state).await
}
