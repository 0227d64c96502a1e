//! `GET /`, `/health`, `/ready` and the OpenAPI documents.

use actix_web::{web, HttpResponse};
use std::sync::OnceLock;
use std::time::Instant;

use athena_actors::backend::postgres::{BreakerCell, HealthState};
use athena_actors::backend::Backend;
use athena_actors::registry::ClientHandle;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::{respond, AppState};

pub const OPENAPI: &str = include_str!("../../openapi.yaml");
pub const OPENAPI_WSS: &str = include_str!("../../openapi-wss.yaml");

/// A client's runtime state: `state` is its health (`unknown | online | offline`, derived from the
/// breaker), `breaker` the circuit breaker itself.
pub fn client_json(c: &ClientHandle) -> Value {
    let breaker = c.backend.breaker();
    let mut v = json!({
        "name": c.name,
        "backend": c.backend.kind(),
        "state": breaker.health().as_str(),
        "lifecycle": c.lifecycle.as_str(),
        "last_error": breaker.cause().map(|e| e.to_string()),
        "inflight": c.backend.inflight(),
        "breaker": breaker_json(breaker),
    });
    match &c.backend {
        // A Supabase client shows its project's origin; never its key.
        Backend::Supabase(s) => v["url"] = json!(s.shared.origin()),
        // A ScyllaDB client shows its contact points and keyspace; never its credentials.
        Backend::Scylla(s) => {
            v["hosts"] = json!(s.shared.hosts());
            v["keyspace"] = json!(s.shared.keyspace());
        }
        // A PostgreSQL client shows how its connections are protected; never its URI.
        Backend::Postgres(p) => {
            let tls = p.shared.source().tls();
            v["tls"] = json!({
                "sslmode": tls.effective_mode().as_str(),
                "verified": tls.verifies(),
            });
        }
    }
    v
}

pub fn breaker_json(b: &BreakerCell) -> Value {
    json!({
        "state": b.state().as_str(),
        "retry_after_ms": b.retry_after(Instant::now()).map(|d| d.as_millis() as u64),
        "trial_in_progress": b.trial_taken(),
        "recent_failures": b.recent_failures(),
        "opened_total": b.opened(),
        "last_cause": b.cause().map(|e| e.to_string()),
    })
}

fn logging(state: &AppState) -> Value {
    let snap = state.actors.snapshot.load();
    json!({"state": snap.logging.as_str(), "last_error": snap.logging.last_error()})
}

fn clients(state: &AppState) -> (Vec<Value>, &'static str) {
    let snap = state.actors.snapshot.load();
    let list: Vec<Value> = snap.clients.values().map(|c| client_json(c)).collect();
    let overall = overall(snap.clients.values().map(|c| c.backend.breaker().health()));
    (list, overall)
}

/// `online` when every state is, `degraded` when some are, `offline` when none is.
fn overall(states: impl Iterator<Item = HealthState>) -> &'static str {
    let (mut all, mut any) = (true, false);
    for s in states {
        all &= s == HealthState::Online;
        any |= s == HealthState::Online;
    }
    match (all, any) {
        (true, _) => "online",
        (false, true) => "degraded",
        (false, false) => "offline",
    }
}

/// The ScyllaDB clients' state for `athena_scylladb` (athena_rs 2.0.2 reported a constant
/// `online`): as `athena_deadpool` over them, `not_configured` when there are none.
fn scylla_state(state: &AppState) -> &'static str {
    let snap = state.actors.snapshot.load();
    let mut scylla = snap
        .clients
        .values()
        .filter(|c| matches!(c.backend, Backend::Scylla(_)))
        .map(|c| c.backend.breaker().health())
        .peekable();
    if scylla.peek().is_none() {
        return "not_configured";
    }
    overall(scylla)
}

/// `openapi.yaml`, parsed once (`GET /`'s route summaries, `GET /docs`).
pub(super) fn openapi_doc() -> &'static serde_yaml::Value {
    static DOC: OnceLock<serde_yaml::Value> = OnceLock::new();
    DOC.get_or_init(|| serde_yaml::from_str(OPENAPI).unwrap_or_default())
}

/// Every route as `GET /` lists it: the path, its methods and the summary of its first method in
/// openapi.yaml (athena_rs 2.0.2's `routes`), built once from the route table actix serves.
fn routes_json() -> &'static Value {
    static ROUTES: OnceLock<Value> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let doc = openapi_doc();
        let mut paths: Vec<(&str, Vec<&str>)> = Vec::new();
        for (method, path) in super::route_list() {
            match paths.iter_mut().find(|(p, _)| p == path) {
                Some((_, methods)) => methods.push(method),
                None => paths.push((path, vec![method])),
            }
        }
        let summary = |path: &str, method: &str| {
            doc["paths"][path][method.to_ascii_lowercase().as_str()]["summary"]
                .as_str()
                .map(str::to_string)
        };
        Value::Array(
            paths
                .into_iter()
                .map(|(path, methods)| {
                    let summary = summary(path, methods[0]);
                    json!({"path": path, "methods": methods, "summary": summary})
                })
                .collect(),
        )
    })
}

pub async fn root(state: web::Data<AppState>) -> HttpResponse {
    let (list, overall) = clients(&state);
    respond::json(
        json!({
            "status": "success",
            "message": "athena is online",
            "version": env!("CARGO_PKG_VERSION"),
            "athena_api": "online",
            "athena_deadpool": overall,
            "athena_scylladb": scylla_state(&state),
            "cargo_toml_version": env!("CARGO_PKG_VERSION"),
            "routes": routes_json(),
            "data": {
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_secs": state.started.elapsed().as_secs(),
                "clients": list,
                "logging": logging(&state),
                "cdc": super::cdc::summary(&state),
            }
        })
        .to_string(),
    )
}

pub async fn health() -> HttpResponse {
    respond::json(r#"{"status":"success","message":"ok","data":{"status":"ok"}}"#.to_string())
}

pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.actors.snapshot.load().loaded {
        return Err(ApiError::new(
            Code::NotReady,
            "the client registry is still loading",
        ));
    }
    let (list, overall) = clients(&state);
    Ok(respond::data(
        "ready",
        json!({"backends": overall, "clients": list, "logging": logging(&state)}),
    ))
}

pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}

pub async fn openapi_wss() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI_WSS)
}
