//! `/admin/clients`: the client catalog (in the logging database) beside each client's runtime
//! state, and freezing. Admin key only. The registry owns the catalog: each change is a message
//! it answers once the change is written, announced to the other instances and served here, so
//! changes survive restarts. This module reads the request and renders the answer.

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::registry::admin::{CatalogChange, CatalogEntry, CatalogError};
use serde_json::{json, Value};

use super::error::{ApiError, Code};
use super::{auth, body, respond, AppState};

/// Replaces the password of a connection URI with `***`.
pub fn redact_uri(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://").map(|i| i + 3) else {
        return uri.to_string();
    };
    let rest = &uri[scheme_end..];
    let Some(at) = rest.rfind('@') else {
        return uri.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &uri[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => uri.to_string(),
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let detail = e.to_string();
        match e {
            CatalogError::Unavailable(_) | CatalogError::NotApplied(_) => {
                ApiError::new(Code::BackendUnavailable, detail)
            }
            CatalogError::NotProvisioned => {
                ApiError::new(Code::BackendUnavailable, detail).hint("POST /admin/provision")
            }
            CatalogError::Exists => ApiError::new(Code::UniqueViolation, detail),
            CatalogError::InvalidName | CatalogError::ConfigConnection => {
                ApiError::new(Code::InvalidField, detail)
            }
            CatalogError::UnknownClient(_) => ApiError::new(Code::UnknownClient, detail),
            CatalogError::Refused(_) => ApiError::new(Code::InvalidQuery, detail),
        }
    }
}

/// A catalog row with the client's runtime state, its URI's password redacted.
fn client_json(c: &CatalogEntry, state: &AppState) -> Value {
    let snap = state.actors.snapshot.load();
    let runtime = snap
        .get(&c.client_name)
        .map(|h| super::health::client_json(h));
    json!({
        "client_name": c.client_name,
        "source": c.source,
        "description": c.description,
        "backend": c.backend,
        "pg_uri": c.pg_uri.as_deref().map(redact_uri),
        "pg_uri_env_var": c.pg_uri_env_var,
        "is_active": c.is_active,
        "is_frozen": c.is_frozen,
        "frozen_reason": c.frozen_reason,
        "frozen_at": c.frozen_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "runtime": runtime,
    })
}

pub async fn list(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rows = state.actors.registry.list_catalog().await?;
    let clients: Vec<Value> = rows.iter().map(|c| client_json(c, &state)).collect();
    Ok(respond::data(
        &respond::counted(clients.len(), "client"),
        json!({"clients": clients}),
    ))
}

/// `PUT /admin/clients/{client_name}/freeze {is_frozen, reason?}`.
pub async fn freeze(
    _admin: auth::Admin,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let frozen = crate::dialect::opt_bool(&body, "is_frozen")?
        .ok_or_else(|| ApiError::new(Code::MissingField, "is_frozen is required"))?;
    crate::dialect::not_null(&body, &["is_frozen", "reason"])?;
    let reason = crate::dialect::opt_str(&body, "reason")?
        .unwrap_or("")
        .to_string();
    let change = CatalogChange::Freeze {
        name: path.into_inner(),
        frozen,
        reason,
    };
    let client = state.actors.registry.change_catalog(change).await?;
    Ok(respond::data(
        if frozen {
            "Client frozen"
        } else {
            "Client unfrozen"
        },
        json!({"client": client_json(&client, &state)}),
    ))
}

/// `pg_uri` or `pg_uri_env_var` (never both), checked to name a PostgreSQL URI. `required`:
/// one of them must be given.
fn connection_fields(
    body: &serde_json::Map<String, Value>,
    required: bool,
) -> Result<(Option<&str>, Option<&str>), ApiError> {
    let uri = crate::dialect::opt_str(body, "pg_uri")?;
    let env_var = crate::dialect::opt_str(body, "pg_uri_env_var")?;
    let invalid = |msg: String| ApiError::new(Code::InvalidField, msg);
    match (uri, env_var) {
        (Some(_), Some(_)) => {
            return Err(invalid("give pg_uri or pg_uri_env_var, not both".into()))
        }
        (Some(u), None) => {
            u.parse::<athena_actors::pg::PgConfig>()
                .map_err(|e| invalid(format!("pg_uri is not a PostgreSQL connection URI: {e}")))?;
        }
        (None, Some(v)) => {
            let value = std::env::var(v).map_err(|_| {
                invalid(format!("environment variable {v} is not set on the server"))
            })?;
            value.parse::<athena_actors::pg::PgConfig>().map_err(|e| {
                invalid(format!(
                    "environment variable {v} is not a usable PostgreSQL connection URI: {e}"
                ))
            })?;
        }
        (None, None) if required => {
            return Err(ApiError::new(
                Code::MissingField,
                "pg_uri or pg_uri_env_var is required",
            ))
        }
        (None, None) => {}
    }
    Ok((uri, env_var))
}

/// `POST /admin/clients {client_name, pg_uri | pg_uri_env_var, description?}`: registers a client
/// in the catalog; its pool starts at once.
pub async fn create(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    let name = crate::dialect::opt_str(&body, "client_name")?
        .ok_or_else(|| ApiError::new(Code::MissingField, "client_name is required"))?
        .trim()
        .to_string();
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(CatalogError::InvalidName.into());
    }
    let description = crate::dialect::opt_str(&body, "description")?.map(str::to_string);
    let (uri, env_var) = connection_fields(&body, true)?;
    let change = CatalogChange::Create {
        name,
        pg_uri: uri.map(str::to_string),
        pg_uri_env_var: env_var.map(str::to_string),
        description,
    };
    let client = state.actors.registry.change_catalog(change).await?;
    Ok(HttpResponse::Created().content_type("application/json").body(
        json!({"status": "success", "message": "Client created", "data": {"client": client_json(&client, &state)}})
            .to_string(),
    ))
}

/// `PATCH /admin/clients/{client_name} {description?, pg_uri?, pg_uri_env_var?, is_active?}`:
/// edits the catalog row (a new URI reconnects the client; `is_active: false` takes it out of the
/// registry until reactivated). Config clients keep their connection settings in config.yaml.
pub async fn update(
    _admin: auth::Admin,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = body::read_object(&req, payload, state.settings.server.max_body_bytes).await?;
    // A null description clears it; the connection and the state cannot be null.
    let clear_description = body.get("description").is_some_and(Value::is_null);
    let description = crate::dialect::opt_str(&body, "description")?;
    crate::dialect::not_null(&body, &["pg_uri", "pg_uri_env_var", "is_active"])?;
    let (uri, env_var) = connection_fields(&body, false)?;
    let active = crate::dialect::opt_bool(&body, "is_active")?;
    if !clear_description
        && description.is_none()
        && uri.is_none()
        && env_var.is_none()
        && active.is_none()
    {
        return Err(ApiError::new(
            Code::MissingField,
            "give at least one of description, pg_uri, pg_uri_env_var, is_active",
        ));
    }
    let change = CatalogChange::Update {
        name: path.into_inner(),
        description: match (clear_description, description) {
            (true, _) => Some(None),
            (false, d) => d.map(|d| Some(d.to_string())),
        },
        pg_uri: uri.map(str::to_string),
        pg_uri_env_var: env_var.map(str::to_string),
        is_active: active,
    };
    let client = state.actors.registry.change_catalog(change).await?;
    Ok(respond::data(
        "Client updated",
        json!({"client": client_json(&client, &state)}),
    ))
}

/// `DELETE /admin/clients/{client_name}`: soft-deletes the catalog row and removes the client
/// from the registry; config clients stay deleted across restarts.
pub async fn delete(
    _admin: auth::Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let change = CatalogChange::Delete {
        name: path.into_inner(),
    };
    let client = state.actors.registry.change_catalog(change).await?;
    Ok(respond::data(
        "Client deleted",
        json!({"client": client_json(&client, &state)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::redact_uri;

    #[test]
    fn passwords_are_redacted_from_uris() {
        assert_eq!(
            redact_uri("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_uri("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_uri("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_uri("host=h"), "host=h");
    }
}
