//! `GET /`, `/health`, `/ready` and the OpenAPI documents.

use actix_web::{web, HttpResponse};
use athena_actors::backend::Backend;
use athena_actors::pool::HealthState;
use athena_actors::registry::ClientHandle;
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::{respond, AppState};

pub const OPENAPI: &str = include_str!("../../openapi.yaml");
pub const OPENAPI_WSS: &str = include_str!("../../openapi-wss.yaml");

pub fn client_json(c: &ClientHandle) -> Value {
    let mut v = json!({
        "name": c.name,
        "backend": c.backend.kind(),
        "state": c.backend.status().state().as_str(),
        "lifecycle": c.lifecycle.as_str(),
        "last_error": c.backend.status().last_error().map(|e| e.to_string()),
        "inflight": c.backend.inflight(),
    });
    // A Supabase client shows its project's origin; never its key.
    if let Backend::Supabase(s) = &c.backend {
        v["url"] = json!(s.shared.origin());
    }
    v
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
        .map(|c| c.backend.status().state())
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
