//! `POST /admin/provision {uri | client_name}` and `GET /admin/provision/status?client_name=`:
//! migrate a database to the logging schema and report which logging tables it holds. Admin key
//! only. Without a target they act on the configured logging database.

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::provision::{self, ProvisionError};
use serde_json::json;

use super::error::{ApiError, Code};
use super::{auth, body, respond, AppState};
use crate::dialect;

/// The database a request names, and whether it may be created when missing.
fn target(
    state: &AppState,
    uri: Option<&str>,
    client: Option<&str>,
) -> Result<(athena_actors::pg::PgConfig, bool), ApiError> {
    match (uri, client) {
        (Some(_), Some(_)) => Err(ApiError::new(
            Code::InvalidField,
            "give uri or client_name, not both",
        )),
        (Some(u), None) => u.parse().map(|c| (c, false)).map_err(|e| {
            ApiError::new(
                Code::InvalidField,
                format!("uri is not a PostgreSQL connection URI: {e}"),
            )
        }),
        (None, Some(name)) => state
            .settings
            .clients
            .iter()
            .find(|c| c.name() == name.trim())
            .ok_or_else(|| ApiError::new(Code::UnknownClient, format!("no client named {name:?}")))
            .and_then(|c| match c {
                athena_actors::registry::ClientSpec::Postgres(p) => Ok((p.config.clone(), false)),
                other => Err(ApiError::new(
                    Code::UnsupportedByBackend,
                    format!(
                        "provisioning is not supported by client {name:?}: its backend is {}",
                        other.backend()
                    ),
                )),
            }),
        (None, None) => Ok((
            state.settings.logging.clone(),
            state.settings.logging_create_database,
        )),
    }
}

fn provision_error(e: ProvisionError) -> ApiError {
    match e {
        ProvisionError::Connect(msg) => ApiError::new(
            Code::BackendUnavailable,
            format!("cannot connect to the database: {msg}"),
        ),
        other => ApiError::new(Code::InvalidQuery, other.to_string()),
    }
}

pub async fn provision(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body =
        body::read_optional_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let uri = dialect::opt_str(&body, "uri")?;
    let client = dialect::opt_str(&body, "client_name")?;
    let (pg, create) = target(&state, uri, client)?;
    let report = provision::provision(&pg, create)
        .await
        .map_err(provision_error)?;
    let conn = provision::connect(&pg).await.map_err(provision_error)?;
    let status = provision::status(&conn).await.map_err(provision_error)?;
    Ok(respond::data(
        &format!("Applied {} migrations", report.applied.len()),
        json!({
            "created_database": report.created_database,
            "applied": report.applied,
            "already_applied": report.already_applied,
            "present": status.present,
            "missing": status.missing,
        }),
    ))
}

pub async fn status(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = super::body::query_map(&req)?;
    let client = query
        .get("client_name")
        .map(String::as_str)
        .filter(|c| !c.trim().is_empty());
    let (pg, _) = target(&state, None, client)?;
    let conn = provision::connect(&pg).await.map_err(provision_error)?;
    let status = provision::status(&conn).await.map_err(provision_error)?;
    Ok(respond::data(
        if status.missing.is_empty() {
            "provisioned"
        } else {
            "not provisioned"
        },
        json!({
            "provisioned": status.missing.is_empty(),
            "present": status.present,
            "missing": status.missing,
            "applied_versions": status.applied_versions,
        }),
    ))
}
