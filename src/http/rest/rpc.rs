//! `/rest/v1/rpc/{function}`: database functions the way PostgREST serves them, so PostgREST and
//! Supabase clients (`supabase.rpc(…)`) work unchanged. `POST` takes the arguments as a JSON
//! object; `GET` takes them from the query string and calls only functions that cannot change the
//! database (immutable or stable). `select`, filters, `order`, `limit` and `offset` in the query
//! string apply to the result (the `Range` header pages it too, and wins), and `Prefer:
//! count=exact` (or `count=exact`) reports the total in `Content-Range`.
//!
//! Answers take PostgREST's shapes: a scalar function answers its bare value (`3`), a set of
//! scalars a bare array of values, a function returning one composite row that row as an object,
//! a set or table function an array of row objects, and a `void` function 204 without a body.
//! Errors are PostgREST's (`PGRST202` when no version of the function takes the arguments,
//! `PGRST203` for an ambiguous call). Results are never cached.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::keys::Required;
use athena_actors::ops::{Filter, Returns, Rpc, RpcOutput, TableRef};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{content_type, header, page, prefer, query, shaped, with_range, RestError};
use crate::dialect::rest::{self as dialect, Media};
use crate::http::error::{ApiError, Code};
use crate::http::{body, gateway, keys, respond, rpc, stats, AppState};

/// The function of the path, in the schema of a `schema.function` spelling or of the profile
/// header.
fn function(req: &HttpRequest, path: &str, profile: &str) -> Result<TableRef, ApiError> {
    let f = dialect::table(path, header(req, profile)?)?;
    stats::note_operation(req, "rpc", Some(f.to_string()));
    Ok(f)
}

/// `POST /rest/v1/rpc/{function}`: the body's object holds the arguments.
pub async fn post(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let function = function(&req, &path, "content-profile")?;
    let handle = gateway::client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    let media = dialect::media(header(&req, "accept")?)?;
    let prefer = prefer(&req)?;
    let q = query(&req)?;
    let bytes = body::read(&req, payload, state.settings.server.max_body_bytes).await?;
    let args = if bytes.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match body::json(&bytes)? {
            Value::Object(m) => m,
            _ => {
                return Err(ApiError::new(
                    Code::InvalidBody,
                    "the body of a function call must be a JSON object of its arguments",
                )
                .into())
            }
        }
    };
    keys::authorize(&req, &caller, &Required::function(&function))?;
    if q.on_conflict.is_some() || q.columns.is_some() {
        return Err(ApiError::new(
            Code::InvalidField,
            "on_conflict and columns are not supported on a function call",
        )
        .into());
    }
    let max = state.settings.gateway.max_limit;
    let mut call = Rpc {
        function,
        args,
        columns: q.select,
        filter: Filter::all(q.filters),
        order: q.order,
        limit: q.limit.unwrap_or(max).min(max),
        offset: q.offset.unwrap_or(0),
        count: q.count || prefer.count,
    };
    ranged(&req, &mut call, max)?;
    let offset = call.offset;
    let out = gateway::call(&handle, call).await?;
    stats::note_rows(&req, out.output.row_count);
    answer(out, offset, media)
}

/// `GET /rest/v1/rpc/{function}`: the query parameters naming arguments are the arguments.
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let function = function(&req, &path, "accept-profile")?;
    let handle = gateway::client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    let media = dialect::media(header(&req, "accept")?)?;
    let prefer = prefer(&req)?;
    keys::authorize(&req, &caller, &Required::function(&function))?;
    let max = state.settings.gateway.max_limit;
    let pairs = rpc::query_pairs(&req)?;
    let mut call = rpc::read_only_call(&handle, function, &pairs, max, max).await?;
    call.count |= prefer.count;
    ranged(&req, &mut call, max)?;
    let offset = call.offset;
    let out = gateway::call(&handle, call).await?;
    stats::note_rows(&req, out.output.row_count);
    answer(out, offset, media)
}

/// Pages the call by the `Range` header, when given (it wins over `limit`/`offset`).
fn ranged(req: &HttpRequest, call: &mut Rpc, max: u64) -> Result<(), ApiError> {
    if let Some(r) = dialect::range(header(req, "range")?, header(req, "range-unit")?)? {
        call.offset = r.first;
        call.limit = r.last.map_or(max, |last| last - r.first + 1).min(max);
    }
    Ok(())
}

/// The values of the rows' single column (a scalar function's result, under whatever key).
fn values(rows_json: &str) -> Result<Vec<Value>, ApiError> {
    let rows: Vec<Map<String, Value>> = serde_json::from_str(rows_json)
        .map_err(|e| ApiError::new(Code::Internal, format!("rows were not JSON: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().next().map_or(Value::Null, |(_, v)| v))
        .collect())
}

/// The answer in PostgREST's shape for what the function returns.
fn answer(out: RpcOutput, offset: u64, media: Media) -> Result<HttpResponse, RestError> {
    let RpcOutput { output, returns } = out;
    let n = output.row_count;
    let (status, range) = page(offset, n, output.total)?;
    let rows = if media.strip_nulls {
        respond::strip_nulls(&output.rows_json)?
    } else {
        output.rows_json
    };
    let body: Bytes = match returns {
        Returns::Void => {
            return Ok(with_range(
                HttpResponse::build(StatusCode::NO_CONTENT).finish(),
                &range,
            ))
        }
        Returns::Scalar => values(&rows)?
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
            .to_string()
            .into(),
        Returns::ScalarSet => shaped(Value::Array(values(&rows)?).to_string().into(), n, media)?,
        // One composite: the row itself (null when a filter left none), unless an object was
        // asked for, which insists on exactly one.
        Returns::Row if !media.object => match n {
            0 => Bytes::from_static(b"null"),
            _ => shaped(
                Bytes::from(rows),
                1,
                Media {
                    object: true,
                    ..media
                },
            )?,
        },
        Returns::Row | Returns::RowSet => shaped(Bytes::from(rows), n, media)?,
    };
    Ok(with_range(
        HttpResponse::build(status)
            .content_type(content_type(media))
            .body(body),
        &range,
    ))
}
