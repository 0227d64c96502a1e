//! `/rest/v1/{table}`: the PostgREST-compatible surface that Supabase and PostgREST client
//! libraries speak. `GET`/`HEAD` read, `POST` inserts or upserts, `PATCH` updates and `DELETE`
//! deletes, with the query string, `Prefer`, `Range` and `Accept` of PostgREST
//! (`dialect::rest` turns them into an [`Operation`]).
//!
//! It runs on the gateway's machinery, not beside it: the client from `X-Athena-Client`, the same
//! key checks in the same order (client → key → body → right), the same pool execution, the same
//! fetch cache and invalidation, the same statistics. What differs is only the shape of the
//! answers: bare JSON arrays (or one object for `application/vnd.pgrst.object+json`),
//! `Content-Range` with 200/206, and errors as `{code, message, details, hint}` ([`RestError`]).

mod error;
mod rpc;

use actix_web::http::header::{HeaderValue, CONTENT_RANGE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::cache::Cached;
use athena_actors::ops::{OpOutput, Operation, TableRef};
use bytes::Bytes;

pub use error::RestError;
pub use rpc::{get as rpc_get, post as rpc_post};

use super::error::{ApiError, Code};
use super::{body, cache, gateway, keys, respond, stats, AppState};
use crate::dialect::rest::{self as dialect, Media, Prefer, Return};

/// A request header as text; a header that is not visible ASCII is refused, not ignored.
fn header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| dialect_error(format!("the {name} header must be visible ASCII"))),
    }
}

fn dialect_error(message: String) -> ApiError {
    ApiError::new(Code::InvalidField, message)
}

fn prefer(req: &HttpRequest) -> Result<Prefer, ApiError> {
    let mut values = Vec::new();
    for v in req.headers().get_all("prefer") {
        values.push(
            v.to_str()
                .map_err(|_| dialect_error("the Prefer header must be visible ASCII".into()))?,
        );
    }
    dialect::prefer(values)
}

/// The query string's pairs, percent-decoded, in order, repeated keys kept.
fn query(req: &HttpRequest) -> Result<dialect::Query, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| dialect_error(format!("the query string cannot be read: {e}")))?
        .into_inner();
    body::storable_params(pairs.iter().map(|(k, v)| (k, v)))?;
    dialect::query(&pairs)
}

/// Names the operation and its table for the statistics.
fn begin(req: &HttpRequest, operation: &'static str, table: &TableRef) {
    stats::note_operation(req, operation, Some(table.to_string()));
}

/// The single object of a one-row JSON array.
fn only_row(rows_json: &[u8]) -> &[u8] {
    let start = rows_json
        .iter()
        .position(|b| *b == b'[')
        .map_or(0, |i| i + 1);
    let end = rows_json
        .iter()
        .rposition(|b| *b == b']')
        .unwrap_or(rows_json.len());
    rows_json.get(start..end).unwrap_or(rows_json).trim_ascii()
}

/// The body for `media`: the array, or its one row (406 unless there is exactly one).
fn shaped(rows_json: Bytes, rows: u64, media: Media) -> Result<Bytes, RestError> {
    if !media.object {
        return Ok(rows_json);
    }
    if rows != 1 {
        return Err(RestError {
            api: ApiError::new(
                Code::NotOneRow,
                "JSON object requested, multiple (or no) rows returned",
            ),
            details: Some(format!("The result contains {rows} rows")),
        });
    }
    Ok(rows_json.slice_ref(only_row(&rows_json)))
}

fn content_type(media: Media) -> &'static str {
    if media.object {
        "application/vnd.pgrst.object+json; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    }
}

/// `Content-Range` and the status of a page of `rows` rows starting at `offset`, as PostgREST
/// computes them: `first-last/total` (`*/total` for an empty page, `*` for an unknown total), 206
/// when the total is known and larger than the page, 416 for an offset past the total.
pub fn page(offset: u64, rows: u64, total: Option<i64>) -> Result<(StatusCode, String), ApiError> {
    let total = total.map(|t| t.max(0) as u64);
    if let Some(t) = total.filter(|t| offset > *t) {
        return Err(ApiError::new(
            Code::RangeNotSatisfiable,
            format!("An offset of {offset} was requested, but there are only {t} rows."),
        ));
    }
    let of = total.map_or_else(|| "*".to_string(), |t| t.to_string());
    let range = match rows {
        0 => format!("*/{of}"),
        n => format!("{offset}-{}/{of}", offset + n - 1),
    };
    let status = match total {
        Some(t) if rows < t => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    Ok((status, range))
}

fn with_range(mut resp: HttpResponse, range: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(range) {
        resp.headers_mut().insert(CONTENT_RANGE, v);
    }
    resp
}

/// `GET` and `HEAD`: a fetch through the gateway's cache.
pub async fn read(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let table = dialect::table(&path, header(&req, "accept-profile")?)?;
    begin(&req, "fetch", &table);
    let handle = gateway::client(&req, &state, None)?;
    let caller = keys::authenticate(&req, &state, &handle, false)?;
    let handle = gateway::retarget(&req, &state, handle)?;
    let media = dialect::media(header(&req, "accept")?)?;
    let prefer = prefer(&req)?;
    let range = dialect::range(header(&req, "range")?, header(&req, "range-unit")?)?;
    let fetch = dialect::fetch(
        table,
        query(&req)?,
        &prefer,
        range,
        state.settings.gateway.max_limit,
    )?;
    let offset = fetch.offset;
    let op = Operation::Fetch(fetch);
    keys::authorize(&req, &caller, &keys::required(&op))?;
    // The cached body is the row array; aliases are part of the `Fetch` (so of the key), and the
    // object media type is applied after the cache, so only stripping changes the body.
    let shape = if media.strip_nulls {
        "rest;strip-nulls"
    } else {
        "rest"
    };
    let render = |op| async {
        let out = gateway::execute(&handle, op).await?;
        stats::note_rows(&req, out.row_count);
        let body = if media.strip_nulls {
            respond::strip_nulls(&out.rows_json)?
        } else {
            out.rows_json
        };
        Ok(Cached {
            body: body.into(),
            rows: out.row_count,
            total: out.total,
        })
    };
    let (outcome, answer) =
        cache::fetch(&req, &state, &handle.name, &caller, op, shape, render).await?;
    let (status, range) = match page(offset, answer.rows, answer.total) {
        Ok(p) => p,
        Err(api) => {
            // PostgREST tells the total with its 416, so a client can page back into range.
            let resp = HttpResponse::from_error(RestError::from(api));
            let total = answer.total.unwrap_or(0).max(0);
            return Ok(with_range(resp, &format!("*/{total}")));
        }
    };
    let body = shaped(answer.body, answer.rows, media)?;
    let resp = HttpResponse::build(status)
        .content_type(content_type(media))
        .body(if req.method() == Method::HEAD {
            Bytes::new()
        } else {
            body
        });
    Ok(cache::with_header(with_range(resp, &range), outcome))
}

/// Reads a write's body: JSON of any shape (the dialect says which shapes it takes).
async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<serde_json::Value, ApiError> {
    body::json(&body::read(req, payload, state.settings.server.max_body_bytes).await?)
}

/// Runs a write, invalidates the table's cache entries whatever the outcome, and answers in
/// PostgREST's shape: `status` with the rows for `return=representation`, else `minimal`.
#[allow(clippy::too_many_arguments)]
async fn write(
    req: &HttpRequest,
    state: &AppState,
    handle: &athena_actors::registry::ClientHandle,
    op: Operation,
    table: &TableRef,
    media: Media,
    prefer: Prefer,
    (status, minimal): (StatusCode, StatusCode),
) -> Result<HttpResponse, RestError> {
    // The object media type promises one row: the write commits only if it touched exactly one.
    let res = if media.object {
        gateway::execute_one(handle, op).await
    } else {
        gateway::execute(handle, op).await
    };
    cache::written(state, &handle.name, table).await;
    let out = res?;
    stats::note_rows(req, out.row_count);
    answer_write(out, media, prefer, (status, minimal))
}

fn answer_write(
    out: OpOutput,
    media: Media,
    prefer: Prefer,
    (status, minimal): (StatusCode, StatusCode),
) -> Result<HttpResponse, RestError> {
    let n = out.row_count;
    let of = if prefer.count {
        n.to_string()
    } else {
        "*".into()
    };
    let range = match n {
        0 => format!("*/{of}"),
        n => format!("0-{}/{of}", n - 1),
    };
    let resp = match prefer.ret {
        Return::Minimal => HttpResponse::build(minimal).finish(),
        Return::Representation => {
            let rows = if media.strip_nulls {
                respond::strip_nulls(&out.rows_json)?
            } else {
                out.rows_json
            };
            let body = shaped(Bytes::from(rows), n, media)?;
            HttpResponse::build(status)
                .content_type(content_type(media))
                .body(body)
        }
    };
    Ok(with_range(resp, &range))
}

/// What every write reads before its body, in the gateway's order: the table, the client, the
/// key; then the media type, the preferences and the query string.
struct WriteStart {
    table: TableRef,
    handle: std::sync::Arc<athena_actors::registry::ClientHandle>,
    caller: keys::Caller,
    media: Media,
    prefer: Prefer,
    query: dialect::Query,
}

fn start_write(
    req: &HttpRequest,
    state: &AppState,
    path: &str,
    operation: &'static str,
) -> Result<WriteStart, ApiError> {
    let table = dialect::table(path, header(req, "content-profile")?)?;
    begin(req, operation, &table);
    let handle = gateway::client(req, state, None)?;
    let caller = keys::authenticate(req, state, &handle, false)?;
    let handle = gateway::retarget(req, state, handle)?;
    Ok(WriteStart {
        media: dialect::media(header(req, "accept")?)?,
        prefer: prefer(req)?,
        query: query(req)?,
        table,
        handle,
        caller,
    })
}

/// `POST`: insert (or upsert) the body's object or objects.
pub async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let w = start_write(&req, &state, &path, "insert")?;
    let body = json_body(&req, payload, &state).await?;
    let insert = dialect::insert(w.table.clone(), w.query, &w.prefer, body)?;
    let empty = insert.rows.is_empty();
    let op = Operation::Insert(insert);
    keys::authorize(&req, &w.caller, &keys::required(&op))?;
    let statuses = (StatusCode::CREATED, StatusCode::CREATED);
    if empty {
        // Nothing to insert, so nothing runs and nothing is invalidated; the table must still
        // exist (a Supabase project's PostgREST describes no table, and answers for itself).
        if !matches!(
            w.handle.backend,
            athena_actors::backend::Backend::Supabase(_)
        ) {
            gateway::execute(&w.handle, Operation::DescribeTable(w.table.clone())).await?;
        }
        stats::note_rows(&req, 0);
        let out = OpOutput {
            rows_json: "[]".into(),
            row_count: 0,
            total: None,
            rows_affected: None,
            next_page: None,
        };
        return answer_write(out, w.media, w.prefer, statuses);
    }
    write(
        &req, &state, &w.handle, op, &w.table, w.media, w.prefer, statuses,
    )
    .await
}

/// `PATCH`: update the filtered rows with the body's object.
pub async fn update(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let w = start_write(&req, &state, &path, "update")?;
    let body = json_body(&req, payload, &state).await?;
    let op = Operation::Update(dialect::update(w.table.clone(), w.query, body)?);
    keys::authorize(&req, &w.caller, &keys::required(&op))?;
    let statuses = (StatusCode::OK, StatusCode::NO_CONTENT);
    write(
        &req, &state, &w.handle, op, &w.table, w.media, w.prefer, statuses,
    )
    .await
}

/// `DELETE`: delete the filtered rows.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RestError> {
    let w = start_write(&req, &state, &path, "delete")?;
    let op = Operation::Delete(dialect::delete(w.table.clone(), w.query)?);
    keys::authorize(&req, &w.caller, &keys::required(&op))?;
    let statuses = (StatusCode::OK, StatusCode::NO_CONTENT);
    write(
        &req, &state, &w.handle, op, &w.table, w.media, w.prefer, statuses,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_answer_content_range_and_partial_content_like_postgrest() {
        let p = |o, r, t| page(o, r, t).map(|(s, c)| (s.as_u16(), c));
        assert_eq!(p(0, 10, None).unwrap(), (200, "0-9/*".into()));
        assert_eq!(p(0, 10, Some(10)).unwrap(), (200, "0-9/10".into()));
        assert_eq!(p(10, 10, Some(25)).unwrap(), (206, "10-19/25".into()));
        assert_eq!(p(0, 0, Some(0)).unwrap(), (200, "*/0".into()));
        assert_eq!(p(0, 0, None).unwrap(), (200, "*/*".into()));
        assert_eq!(p(5, 0, Some(5)).unwrap(), (206, "*/5".into()));
        assert_eq!(
            page(6, 0, Some(5)).unwrap_err().code,
            Code::RangeNotSatisfiable
        );
    }

    #[test]
    fn the_object_media_type_takes_the_only_row() {
        let object = Media {
            object: true,
            strip_nulls: false,
        };
        let one = shaped(Bytes::from_static(b"[{\"a\":[1]}]"), 1, object).unwrap();
        assert_eq!(&one[..], b"{\"a\":[1]}");
        let agg = shaped(Bytes::from_static(b"[{\"a\":1}\n]"), 1, object).unwrap();
        assert_eq!(&agg[..], b"{\"a\":1}");
        let err = shaped(Bytes::from_static(b"[]"), 0, object).unwrap_err();
        assert_eq!(err.api.code, Code::NotOneRow);
        assert_eq!(err.details.as_deref(), Some("The result contains 0 rows"));
    }
}
