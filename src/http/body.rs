//! Reading request bodies: a hard size limit (413 `payload_too_large`), then JSON parsing that
//! answers every failure with the envelope (`invalid_json`, `invalid_body`) rather than actix's
//! plain-text errors.

use actix_web::{web, HttpRequest};
use bytes::BytesMut;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::error::{ApiError, Code};

/// How much of an oversized body is read and discarded before answering, so that an ordinary
/// client sees the 413 instead of a reset connection. Past this the connection is dropped.
const DRAIN_FACTOR: usize = 16;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
        .hint("send fewer rows per request, or raise server.max_body_bytes")
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::InvalidBody, format!("could not read the body: {e}"))
        })?;
        seen += chunk.len();
        if seen > limit.saturating_mul(DRAIN_FACTOR) {
            return Err(too_large());
        }
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

/// Reads and parses a body that must be one JSON object, with no NUL character in it.
pub async fn read_object(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    object(&read(req, payload, limit).await?)
}

/// Refuses a NUL character in any string (or key) of `value`, naming the field it is under. The
/// path is built only for the refusal, so a clean body costs a scan and nothing else.
pub fn storable(value: &Value, field: &str) -> Result<(), ApiError> {
    if field.contains('\0') {
        return Err(nul("a field name"));
    }
    match nul_at(value) {
        None => Ok(()),
        Some(Nul::Key) => Err(nul("a field name")),
        Some(Nul::At(rest)) => Err(nul(&format!("{field}{rest}"))),
    }
}

/// Refuses a NUL character in `text`, naming `field` (formatted only for the refusal).
pub fn storable_text(text: &str, field: impl std::fmt::Display) -> Result<(), ApiError> {
    match text.contains('\0') {
        true => Err(nul(&field.to_string())),
        false => Ok(()),
    }
}

fn nul(at: &str) -> ApiError {
    ApiError::new(
        Code::InvalidValue,
        format!("{at} holds a NUL character (U+0000), which PostgreSQL cannot store"),
    )
}

/// Where a NUL character is below a value: the rest of its path (`[2].name`), or a key.
enum Nul {
    At(String),
    Key,
}

fn nul_at(value: &Value) -> Option<Nul> {
    match value {
        Value::String(s) => s.contains('\0').then(|| Nul::At(String::new())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| match nul_at(v)? {
                Nul::At(rest) => Some(Nul::At(format!("[{i}]{rest}"))),
                Nul::Key => Some(Nul::Key),
            }),
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                return Some(Nul::Key);
            }
            match nul_at(v)? {
                Nul::At(rest) => Some(Nul::At(format!(".{k}{rest}"))),
                Nul::Key => Some(Nul::Key),
            }
        }),
        _ => None,
    }
}

/// Like [`read_object`], but an empty body is an empty object.
pub async fn read_optional_object(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = read(req, payload, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    object(&bytes)
}

/// The query string's parameters (the last of a repeated name wins); a malformed one is a 400.
/// A NUL character in a name or a value is a 400 naming the parameter.
pub fn query_map(req: &HttpRequest) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let map =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map(web::Query::into_inner)
            .map_err(|e| ApiError::new(Code::InvalidField, format!("bad query string: {e}")))?;
    storable_params(&map)?;
    Ok(map)
}

/// Refuses a NUL character in the name or the value of a query parameter, naming it.
pub fn storable_params<'a>(
    params: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<(), ApiError> {
    params.into_iter().try_for_each(|(k, v)| {
        storable_text(k, "a query parameter's name")?;
        storable_text(v, format_args!("query parameter {k}"))
    })
}

/// Parses a body that must be one JSON object. PostgreSQL cannot store a NUL character (U+0000),
/// so one anywhere in the body, in a value or a field name, is a 400 naming where, before any
/// field is read.
pub fn object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse(bytes, "the request body is empty; send a JSON object")? {
        Value::Object(m) => {
            storable_fields(&m)?;
            Ok(m)
        }
        other => Err(ApiError::new(
            Code::InvalidBody,
            format!("the body must be a JSON object, not {}", kind(&other)),
        )),
    }
}

/// Refuses a NUL character in any field of an object (a body, a WebSocket message), naming it.
pub fn storable_fields(m: &Map<String, Value>) -> Result<(), ApiError> {
    m.iter().try_for_each(|(k, v)| storable(v, k))
}

/// Parses a body of JSON of any shape (the `/rest/v1` writes), refusing a NUL character anywhere
/// in it as [`object`] does.
pub fn json(bytes: &[u8]) -> Result<Value, ApiError> {
    let value = parse(bytes, "the request body is empty; send JSON")?;
    match nul_at(&value) {
        None => Ok(value),
        Some(Nul::Key) => Err(nul("a field name")),
        Some(Nul::At(rest)) if rest.is_empty() => Err(nul("the body")),
        Some(Nul::At(rest)) => Err(nul(rest.trim_start_matches('.'))),
    }
}

/// JSON from a body that is not empty (`empty` says what to send instead).
fn parse(bytes: &[u8], empty: &str) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(Code::InvalidBody, empty));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// How a JSON value's type reads in an error message ("a string", "an array", …).
pub(crate) use athena_actors::ops::json_kind as kind;
