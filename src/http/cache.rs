//! The HTTP side of the cache: which fetches are cached and under which key, the
//! `X-Athena-Cache: hit|miss|bypass` header, and the invalidation that follows every write.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use athena_actors::cache::named::tables_named;
use athena_actors::cache::{CacheKey, Cached, Lookup, TableKey};
use athena_actors::ops::{Fetch, TableRef};
use bytes::Bytes;

use super::error::ApiError;
use super::keys::Caller;
use super::{respond, stats, AppState};

pub const HEADER: HeaderName = HeaderName::from_static("x-athena-cache");

/// `Cache-Control: no-cache` (or `no-store`) skips the cache for this request, read and write.
pub fn bypass_requested(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("cache-control")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .any(|d| d == "no-cache" || d == "no-store")
}

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

fn with_header(mut resp: HttpResponse, outcome: &'static str) -> HttpResponse {
    resp.headers_mut()
        .insert(HEADER, HeaderValue::from_static(outcome));
    resp
}

/// Serves a fetch from the cache, or runs it with `run` (which returns the response body and its
/// row count) and caches the result. `request` is the normalised request with everything the
/// body depends on.
pub async fn fetch<F, Fut>(
    req: &HttpRequest,
    state: &AppState,
    client: &str,
    caller: &Caller,
    fetch: &Fetch,
    shape: &str,
    run: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(String, u64), ApiError>>,
{
    let cache = &state.actors.cache;
    let table = TableKey::new(client, &fetch.table);
    let ttl = cache.ttl(&table);
    if ttl.is_zero() || bypass_requested(req) {
        cache.bypassed();
        let (body, _) = run().await?;
        return Ok(with_header(respond::json(body), "bypass"));
    }
    let request = format!("{fetch:?}");
    let key = CacheKey::new(table, ttl, &[&scope(caller), &request, shape]);
    match cache.lookup(key).await {
        Lookup::Hit(hit) => {
            stats::facts(req).cached = true;
            stats::note_rows(req, hit.rows);
            let resp = HttpResponse::Ok()
                .content_type("application/json")
                .body(hit.body);
            Ok(with_header(resp, "hit"))
        }
        Lookup::Miss(ticket) => {
            let (body, rows) = run().await?;
            let body = Bytes::from(body);
            cache.fill(
                ticket,
                Cached {
                    body: body.clone(),
                    rows,
                },
            );
            let resp = HttpResponse::Ok()
                .content_type("application/json")
                .body(body);
            Ok(with_header(resp, "miss"))
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
