//! `GET /schema/clients|tables|columns`, read from the registry and the live catalog.

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::ops::{Operation, TableRef};
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::gateway::{client, execute};
use super::{auth, keys, respond, AppState};
use athena_actors::keys::{Action, Required};

pub async fn clients(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let snap = state.actors.snapshot.load();
    let names: Vec<&str> = snap
        .clients
        .values()
        .filter(|c| c.lifecycle.as_str() == "active")
        .map(|c| c.name.as_str())
        .collect();
    let details: Vec<Value> = snap
        .clients
        .values()
        .map(|c| super::health::client_json(c))
        .collect();
    Ok(respond::data(
        &respond::counted(names.len(), "client"),
        json!({"clients": names, "details": details}),
    ))
}

pub async fn tables(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let handle = client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    let out = execute(&handle, Operation::ListTables).await?;
    let mut tables: Vec<Value> = serde_json::from_str(&out.rows_json)
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    // A key sees the tables it may read; the admin key and anonymous callers (where keys are not
    // enforced) see them all.
    if let Some(key) = caller.key.as_ref().filter(|_| !caller.admin) {
        tables.retain(|t| {
            let table = TableRef {
                schema: t["table_schema"].as_str().map(str::to_string),
                name: t["table_name"].as_str().unwrap_or_default().to_string(),
            };
            key.allows(&Required::table(&table, Action::Read))
        });
    }
    Ok(respond::data(
        &format!("Fetched {} tables", tables.len()),
        json!({"tables": tables}),
    ))
}

pub async fn columns(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = super::body::query_map(&req)?;
    let name = query
        .get("table_name")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingField,
                "the table_name query parameter is required",
            )
        })?;
    let table = match (query.get("schema"), name.split_once('.')) {
        (Some(s), _) => TableRef {
            schema: Some(s.clone()),
            name: name.to_string(),
        },
        (None, Some((s, t))) if !s.is_empty() && !t.is_empty() => TableRef {
            schema: Some(s.into()),
            name: t.into(),
        },
        _ => TableRef {
            schema: None,
            name: name.to_string(),
        },
    };
    let handle = client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    keys::authorize(&req, &caller, &Required::table(&table, Action::Read))?;
    let table_name = table.name.clone();
    let out = execute(&handle, Operation::DescribeTable(table)).await?;
    let columns: Value = serde_json::from_str(&out.rows_json)
        .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(respond::data(
        &format!("Fetched {} columns", out.row_count),
        json!({"table_name": table_name, "columns": columns}),
    ))
}
