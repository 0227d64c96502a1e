//! The statistics middleware, wrapped around every route. At the start of a request it makes the
//! request id (held for the request's task and used as the error envelope's `trace_id`); at
//! the end it builds one [`RequestRecord`] from the request, the response status, the duration,
//! the audit headers and the [`RequestFacts`] handlers filled in, and hands it to the statistics
//! actor without waiting. Records of routes that are not logged carry only what the metrics use.
//!
//! Every request is counted in the metrics. Only the data routes (`/gateway/*`, `/query/sql`,
//! `/schema/tables|columns`, `/rest/v1/*`, `/pipelines`) are written to the logging tables;
//! health, metrics, documents and admin routes are not. Request bodies, query strings and key
//! material are never recorded.

use std::borrow::Cow;
use std::cell::{RefCell, RefMut};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use athena_actors::stats::{AuthRecord, Observation, OperationRecord, RequestId, RequestRecord};

use super::call::Call;
use super::error::{ApiError, Code};
use super::headers::{text, undecodable_audit_header, USER_AGENT, X_ATHENA_CLIENT, X_REQUEST_ID};
use super::AppState;

tokio::task_local! {
    /// The id of the request being handled on this task, for error envelopes.
    static REQUEST_ID: RequestId;
}

/// What a handler learned that the statistics need. Handlers fill it through [`Call::facts`]
/// (over HTTP: [`facts`], the request's extensions).
#[derive(Debug, Default)]
pub struct RequestFacts {
    /// The client the request was served for, when the handler resolved it differently from the
    /// `X-Athena-Client` header (e.g. `db_name` on `/query/sql`).
    pub client: Option<String>,
    /// The public id of the API key presented, if any.
    pub key_public_id: Option<String>,
    pub operation: Option<OperationRecord>,
    /// The API-key decision, if one was made.
    pub auth: Option<AuthRecord>,
    /// The answer came from a cache.
    pub cached: bool,
}

/// The request's facts, created on first use. Keep the borrow short: never hold it across an
/// `.await`.
pub fn facts(req: &HttpRequest) -> RefMut<'_, RequestFacts> {
    RefMut::map(req.extensions_mut(), |ext| {
        if !ext.contains::<RequestFacts>() {
            ext.insert(RequestFacts::default());
        }
        ext.get_mut::<RequestFacts>().expect("inserted just above")
    })
}

/// Records the data operation a request is about to run.
pub fn note_operation(req: &impl Call, operation: &'static str, table: Option<String>) {
    req.facts().operation = Some(OperationRecord {
        operation: Cow::Borrowed(operation),
        table,
        row_count: None,
        message: None,
    });
}

/// Records the table the request body names, when it names one.
pub fn note_table(req: &impl Call, body: &crate::dialect::Body) {
    if let Ok(table) = crate::dialect::table(body) {
        if let Some(op) = req.facts().operation.as_mut() {
            op.table = Some(table.to_string());
        }
    }
}

/// Records how many rows the operation returned.
pub fn note_rows(req: &impl Call, rows: u64) {
    if let Some(op) = req.facts().operation.as_mut() {
        op.row_count = Some(rows);
    }
}

/// The id of the request being handled, when called inside the middleware.
pub fn current_request_id() -> Option<RequestId> {
    REQUEST_ID.try_with(|id| *id).ok()
}

/// The routes whose requests are written to the logging tables.
fn logged(path: &str) -> bool {
    path.starts_with("/gateway/")
        || path == "/schema/tables"
        || path == "/schema/columns"
        || path == "/query/sql"
        || path.starts_with("/rest/v1/")
        || path.starts_with("/rpc/")
        || path == "/pipelines"
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let at = SystemTime::now();
    let id = RequestId::next();
    let mut res = REQUEST_ID
        .scope(id, async move {
            // The log stores the audit headers as text: one that is not UTF-8 is refused here,
            // for every route, rather than dropped from the record.
            match undecodable_audit_header(req.headers()) {
                None => next
                    .call(req)
                    .await
                    .map(ServiceResponse::map_into_left_body),
                Some(name) => {
                    let err =
                        ApiError::new(Code::InvalidField, format!("{name} is not UTF-8 text"));
                    let resp = match req.path().starts_with("/rest/v1/") {
                        true => HttpResponse::from_error(super::rest::RestError::from(err)),
                        false => HttpResponse::from_error(err),
                    };
                    Ok(req.into_response(resp).map_into_right_body())
                }
            }
        })
        .await;
    // Every answer names its request: the error envelope's `trace_id`, the request log's
    // `request_id`.
    if let Ok(r) = res.as_mut() {
        if let Ok(v) = HeaderValue::from_bytes(&id.hex()) {
            r.headers_mut().insert(X_REQUEST_ID.clone(), v);
        }
    }
    // Handlers turn their errors into responses and the router answers every path, so an `Err`
    // here comes from actix itself; it is rendered after this returns, unrecorded.
    if let Ok(r) = &res {
        let req = r.request();
        if let Some(state) = req
            .app_data::<web::Data<AppState>>()
            .filter(|s| s.settings.stats_enabled)
        {
            let error_code = r.response().error().and_then(|e| {
                e.as_error::<ApiError>()
                    .or_else(|| e.as_error::<super::rest::RestError>().map(|r| &r.api))
                    .map(|e| e.code.as_str())
            });
            let status = r.status().as_u16();
            finish(state, req, id, at, started, status, error_code);
        }
    }
    res
}

/// Counts the request in the metrics and, on a logged route, hands its record to the statistics
/// actor.
fn finish(
    state: &AppState,
    req: &HttpRequest,
    request_id: RequestId,
    at: SystemTime,
    started: Instant,
    status: u16,
    error_code: Option<&str>,
) {
    let facts = req
        .extensions_mut()
        .remove::<RequestFacts>()
        .unwrap_or_default();
    let route = route(req);
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let snapshot = state.actors.snapshot.load();
    // The client a handler resolved, or else the registered one the header names.
    let header_client = || {
        let name = req.headers().get(&X_ATHENA_CLIENT)?.to_str().ok()?;
        snapshot.get(name).map(|c| c.name.as_str())
    };
    if !logged(req.path()) {
        // Counted in the metrics only, without a record: nothing reaches the actor.
        state.actors.stats.observe(Observation {
            route,
            method: req.method().as_str(),
            client: facts.client.as_deref().or_else(header_client),
            status,
            duration_ms,
        });
        return;
    }
    let client = facts.client.or_else(|| header_client().map(str::to_string));
    let mut operation = facts.operation;
    if let (Some(op), Some(code)) = (operation.as_mut(), error_code) {
        op.message.get_or_insert_with(|| code.to_string());
    }
    // Most paths are their route's pattern (`/gateway/fetch`): those are borrowed.
    let path = match req.path() {
        p if p == route => Cow::Borrowed(route),
        p => Cow::Owned(p.to_string()),
    };
    let [user_id, company_id, organization_id] = req.audit_ids().map(|v| v.map(str::to_string));
    state.actors.stats.record(RequestRecord {
        request_id,
        at,
        client,
        method: method(req.method()),
        route: Cow::Borrowed(route),
        path,
        status,
        duration_ms,
        key_public_id: facts.key_public_id,
        user_id,
        company_id,
        organization_id,
        remote_addr: req.peer_addr().map(|a| a.ip()),
        user_agent: text(req, &USER_AGENT),
        cached: facts.cached,
        operation,
        auth: facts.auth,
    });
}

/// The method, borrowed when it is a standard one.
fn method(m: &Method) -> Cow<'static, str> {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    match STANDARD.iter().find(|s| *s == m) {
        Some(s) => Cow::Borrowed(s.as_str()),
        None => Cow::Owned(m.as_str().to_string()),
    }
}

/// Paths whose route pattern each worker thread remembers; beyond it (paths carrying ids), the
/// pattern is looked up every time. Paths that match no route are never remembered.
const REMEMBERED_PATHS: usize = 1024;

/// The route pattern `req` matched (`unmatched` for none), interned. Looking a pattern up walks the
/// application's resource map and allocates, so each worker thread remembers the pattern of the
/// paths it has seen; the patterns come from the route table, so interning them keeps a bounded
/// set alive for the life of the process.
fn route(req: &HttpRequest) -> &'static str {
    thread_local! {
        static ROUTES: RefCell<HashMap<Box<str>, &'static str>> = RefCell::new(HashMap::new());
    }
    let path = req.path();
    if let Some(route) = ROUTES.with(|r| r.borrow().get(path).copied()) {
        return route;
    }
    let Some(pattern) = req.match_pattern() else {
        // Not remembered: paths that match no route (a scanner's) must not fill the table.
        return "unmatched";
    };
    let route = intern(&pattern);
    ROUTES.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() < REMEMBERED_PATHS {
            r.insert(path.into(), route);
        }
    });
    route
}

fn intern(pattern: &str) -> &'static str {
    static PATTERNS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut patterns = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = patterns.get(pattern) {
        return p;
    }
    let p: &'static str = Box::leak(pattern.into());
    patterns.insert(p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_routes_are_logged() {
        for p in [
            "/gateway/fetch",
            "/gateway/nope",
            "/query/sql",
            "/rest/v1/users",
            "/pipelines",
            "/schema/tables",
        ] {
            assert!(logged(p), "{p}");
        }
        for p in [
            "/",
            "/health",
            "/metrics",
            "/admin/clients",
            "/openapi.yaml",
            "/query/sqlx",
            "/gatewayx",
        ] {
            assert!(!logged(p), "{p}");
        }
    }

    #[test]
    fn standard_methods_are_borrowed_and_patterns_interned_once() {
        assert!(matches!(method(&Method::PATCH), Cow::Borrowed("PATCH")));
        let odd = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method(&odd), "PURGE");
        let a = intern("/gateway/fetch");
        let b = intern(&String::from("/gateway/fetch"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(intern("unmatched"), "unmatched");
    }

    #[test]
    fn the_request_id_is_visible_only_inside_the_scope() {
        assert_eq!(current_request_id(), None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let id = RequestId::next();
        let seen = rt.block_on(REQUEST_ID.scope(id, async { current_request_id() }));
        assert_eq!(seen, Some(id));
    }

    #[test]
    fn request_ids_are_32_hex_digits_and_distinct() {
        let (a, b) = (RequestId::next(), RequestId::next());
        assert_ne!(a, b);
        for id in [a.to_string(), b.to_string()] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        assert_eq!(
            a.to_string()[..16],
            b.to_string()[..16],
            "one prefix per process"
        );
    }
}
