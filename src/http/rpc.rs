//! Database functions in the gateway dialect: `POST /gateway/rpc` (the function, its arguments
//! and the fetch body's shaping fields in a JSON body) and `GET /rpc/{function}` (arguments and
//! PostgREST-style `select`, filters, `order`, `limit`, `offset` in the query string).
//!
//! Both run like every gateway request (client → key → body → right `<function>.execute` →
//! pool) and answer the rows envelope: a set or table function one row per result row, a scalar
//! function one row `{function_name: value}`. Results are never cached: a function may read
//! tables the cache does not know it depends on, or change the database. A GET may only call a
//! function that cannot change the database (immutable or stable); a volatile one is refused
//! with 405 `volatile_function`, before it runs.

use std::collections::HashSet;

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::backend::postgres::functions::Volatility;
use athena_actors::backend::postgres::schema::ValueKind;
use athena_actors::keys::Required;
use athena_actors::ops::{Filter, OpError, Rpc, TableRef};
use athena_actors::registry::ClientHandle;
use serde_json::{Map, Value};

use super::call::Call;
use super::error::{ApiError, Code};
use super::{body, gateway, keys, respond, stats, AppState};
use crate::dialect::{self, rest};

/// Query parameters that shape the result; never taken as arguments.
const RESERVED: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "count",
    "or",
    "and",
    "not.or",
    "not.and",
    "on_conflict",
    "columns",
];

/// `POST /gateway/rpc`.
pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    stats::note_operation(&req, "rpc", None);
    let handle = gateway::client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    if let Some(name) = body.get("function").and_then(Value::as_str) {
        if let Ok(f) = dialect::rpc::function_ref(name, None, "function") {
            note_function(&req, &f);
        }
    }
    let rpc = dialect::rpc(&body, &state.dialect())?;
    note_function(&req, &rpc.function);
    keys::authorize(&req, &caller, &Required::function(&rpc.function))?;
    answer(&req, &handle, rpc).await
}

/// `GET /rpc/{function}`.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let function = dialect::rpc::function_ref(&path, None, "function")?;
    stats::note_operation(&req, "rpc", Some(function.to_string()));
    let handle = gateway::client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    keys::authorize(&req, &caller, &Required::function(&function))?;
    let max = state.settings.gateway.max_limit;
    let limit = state.settings.gateway.default_limit.min(max);
    let rpc = read_only_call(&handle, function, &query_pairs(&req)?, limit, max).await?;
    answer(&req, &handle, rpc).await
}

async fn answer(
    req: &HttpRequest,
    handle: &ClientHandle,
    rpc: Rpc,
) -> Result<HttpResponse, ApiError> {
    let out = gateway::call(handle, rpc).await?;
    stats::note_rows(req, out.output.row_count);
    respond::rows("Returned", &out.output, req.strip_nulls(), &[])
}

fn note_function(req: &impl Call, function: &TableRef) {
    if let Some(op) = req.facts().operation.as_mut() {
        op.table = Some(function.to_string());
    }
}

/// The query string's pairs, percent-decoded, in order, repeated keys kept.
pub fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            ApiError::new(
                Code::InvalidField,
                format!("the query string cannot be read: {e}"),
            )
        })
}

/// A call made with GET: the query parameters naming an argument of the function are its
/// arguments (text, read by the argument type's input; JSON for json and jsonb arguments), the
/// others shape the result as on `/rest/v1`. The version called must be immutable or stable.
pub async fn read_only_call(
    handle: &ClientHandle,
    function: TableRef,
    pairs: &[(String, String)],
    default_limit: u64,
    max_limit: u64,
) -> Result<Rpc, ApiError> {
    let set = handle
        .backend
        .postgres("calling a function with GET")
        .map_err(|e| gateway::pool_error(handle, e))?
        .function(&function, false)
        .await
        .map_err(|e| gateway::pool_error(handle, e))?;
    let names: HashSet<&str> = set.arg_names().collect();
    let mut args = Map::new();
    let mut shaping = Vec::new();
    for (k, v) in pairs {
        if !names.contains(k.as_str()) || RESERVED.contains(&k.as_str()) {
            shaping.push((k.clone(), v.clone()));
            continue;
        }
        let value = match set.arg_kind(k) {
            Some(ValueKind::Json) => serde_json::from_str(v).map_err(|_| {
                ApiError::from(OpError::InvalidValue {
                    column: k.clone(),
                    reason: "a json argument given in the query string must be JSON".into(),
                })
            })?,
            _ => Value::String(v.clone()),
        };
        if args.insert(k.clone(), value).is_some() {
            return Err(ApiError::new(
                Code::InvalidField,
                format!("the argument {k} is given more than once"),
            ));
        }
    }
    let q = rest::query(&shaping)?;
    if q.on_conflict.is_some() || q.columns.is_some() {
        return Err(ApiError::new(
            Code::InvalidField,
            "on_conflict and columns mean nothing for a function call",
        ));
    }
    let given: Vec<&str> = args.keys().map(String::as_str).collect();
    let version = set.resolve(&given).map_err(ApiError::from)?;
    if version.volatility == Volatility::Volatile {
        return Err(ApiError::from(OpError::VolatileFunction {
            function: version.display_name(),
        }));
    }
    Ok(Rpc {
        function,
        args,
        columns: q.select,
        filter: Filter::all(q.filters),
        order: q.order,
        limit: q.limit.unwrap_or(default_limit).min(max_limit),
        offset: q.offset.unwrap_or(0),
        count: q.count,
    })
}
