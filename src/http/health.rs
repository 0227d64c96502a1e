//! `GET /`, `/health`, `/ready` and the OpenAPI documents.

use actix_web::{web, HttpResponse};
use std::time::Instant;

use athena_actors::backend::Backend;
use athena_actors::pool::{BreakerCell, HealthState};
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
    let states: Vec<HealthState> = snap
        .clients
        .values()
        .map(|c| c.backend.breaker().health())
        .collect();
    let overall = if states.iter().all(|s| *s == HealthState::Online) {
        "online"
    } else if states.contains(&HealthState::Online) {
        "degraded"
    } else {
        "offline"
    };
    (list, overall)
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
