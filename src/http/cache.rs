//! The HTTP side of the cache: which fetches are cached and under which key, the
//! `X-Athena-Cache: hit|miss|bypass` header, and the invalidation that follows every write.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpResponse;
use athena_actors::cache::named::tables_named;
use athena_actors::cache::{CacheKey, Cached, Lookup, TableKey};
use athena_actors::ops::{Operation, TableRef};
use bytes::Bytes;

use super::call::Call;
use super::error::ApiError;
use super::keys::Caller;
use super::{stats, AppState};

pub const HEADER: HeaderName = HeaderName::from_static("x-athena-cache");

/// What the caller may see, as part of the key: two callers with the same rights share entries.
pub fn scope(caller: &Caller) -> String {
    if caller.admin {
        return "admin".into();
    }
    match &caller.key {
        Some(k) => {
            let mut rights: Vec<&str> = k.right_names.iter().map(String::as_str).collect();
            rights.sort_unstable();
            format!("rights:{}", rights.join(","))
        }
        None => "anonymous".into(),
    }
}

/// How a cacheable request was answered, for `X-Athena-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    Bypass,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }
}

/// Adds `X-Athena-Cache` to a response.
pub fn with_header(mut resp: HttpResponse, outcome: Outcome) -> HttpResponse {
    resp.headers_mut()
        .insert(HEADER, HeaderValue::from_static(outcome.as_str()));
    resp
}

/// A JSON response with `X-Athena-Cache`.
pub fn json(body: Bytes, outcome: Outcome) -> HttpResponse {
    let resp = HttpResponse::Ok()
        .content_type("application/json")
        .body(body);
    with_header(resp, outcome)
}

/// Answers a fetch from the cache, or runs it with `run` (which executes the operation and
/// renders the response body) and caches what it rendered. `shape` is everything besides the
/// fetch itself that the body depends on (the surface, transforms, post-processing). The caller
/// builds the response from the answer. Any other operation simply runs, uncached.
/// `Cache-Control: no-cache` (or `no-store`) skips the cache for the request, read and write.
pub async fn fetch<F, Fut>(
    req: &impl Call,
    state: &AppState,
    client: &str,
    caller: &Caller,
    op: Operation,
    shape: &str,
    run: F,
) -> Result<(Outcome, Cached), ApiError>
where
    F: FnOnce(Operation) -> Fut,
    Fut: std::future::Future<Output = Result<Cached, ApiError>>,
{
    let Operation::Fetch(fetch) = &op else {
        return Ok((Outcome::Bypass, run(op).await?));
    };
    let cache = &state.actors.cache;
    let table = TableKey::new(client, &fetch.table);
    let ttl = cache.ttl(&table);
    if ttl.is_zero() || req.bypass_cache() {
        cache.bypassed();
        return Ok((Outcome::Bypass, run(op).await?));
    }
    let request = format!("{fetch:?}");
    let key = CacheKey::new(table, ttl, &[&scope(caller), &request, shape]);
    match cache.lookup(key).await {
        Lookup::Hit(hit) => {
            req.facts().cached = true;
            stats::note_rows(req, hit.rows);
            Ok((Outcome::Hit, hit))
        }
        Lookup::Miss(ticket) => {
            let answer = run(op).await?;
            cache.fill(ticket, answer.clone());
            Ok((Outcome::Miss, answer))
        }
    }
}

/// After a write to `table` (whatever its outcome: a statement cut off by a timeout may still
/// have committed).
pub async fn written(state: &AppState, client: &str, table: &TableRef) {
    let table = TableKey::new(client, table);
    state.actors.cache.invalidate(vec![table]).await;
}

/// After raw SQL: every table the statement names, in `public` when unqualified.
pub async fn sql_ran(state: &AppState, client: &str, sql: &str) {
    let cache = &state.actors.cache;
    match tables_named(sql) {
        Some(names) => {
            let tables = names
                .into_iter()
                .map(|(schema, name)| TableKey::new(client, &TableRef { schema, name }))
                .collect();
            cache.invalidate(tables).await;
        }
        None => cache.invalidate_all().await,
    }
}
