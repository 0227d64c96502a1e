//! `/admin/clients`: the client catalog (in the logging database) beside each client's runtime
//! state, and freezing. Admin key only. Changes are written to the catalog first, then applied to
//! the registry by a message, so they survive restarts.

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::registry::messages::{ReloadCatalog, SetFrozen};
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

/// A connection to the logging database, which holds the catalog, from the shared pool.
pub(super) async fn catalog(state: &AppState) -> Result<deadpool_postgres::Object, ApiError> {
    state.logging_db.get().await.map_err(|e| {
        ApiError::new(
            Code::BackendUnavailable,
            format!("the logging database is unavailable: {e}"),
        )
    })
}

fn db_error(e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        Some(db) if db.code().code() == "42P01" => ApiError::new(
            Code::BackendUnavailable,
            "the logging database is not provisioned yet",
        )
        .hint("POST /admin/provision"),
        Some(db) if db.code().code() == "23505" => ApiError::new(
            Code::UniqueViolation,
            "a client with that name already exists",
        ),
        Some(db) if db.code().code() == "23514" => ApiError::new(
            Code::InvalidField,
            "client_name must be 1 to 63 lower-case letters, digits, '_' or '-'",
        ),
        Some(db) => ApiError::new(Code::InvalidQuery, db.message().to_string()),
        None => ApiError::new(
            Code::BackendUnavailable,
            "the logging database is unavailable",
        ),
    }
}

const ROW: &str = "client_name, source, description, backend, pg_uri, pg_uri_env_var, is_active, \
    is_frozen, frozen_reason, frozen_at::text, created_at::text, updated_at::text";

fn row_json(r: &tokio_postgres::Row, state: &AppState) -> Value {
    let name: String = r.get(0);
    let snap = state.actors.snapshot.load();
    let runtime = snap.get(&name).map(|c| super::health::client_json(c));
    json!({
        "client_name": name,
        "source": r.get::<_, String>(1),
        "description": r.get::<_, Option<String>>(2),
        "backend": r.get::<_, String>(3),
        "pg_uri": r.get::<_, Option<String>>(4).map(|u| redact_uri(&u)),
        "pg_uri_env_var": r.get::<_, Option<String>>(5),
        "is_active": r.get::<_, bool>(6),
        "is_frozen": r.get::<_, bool>(7),
        "frozen_reason": r.get::<_, Option<String>>(8),
        "frozen_at": r.get::<_, Option<String>>(9),
        "created_at": r.get::<_, String>(10),
        "updated_at": r.get::<_, String>(11),
        "runtime": runtime,
    })
}

pub async fn list(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let db = catalog(&state).await?;
    let rows = db
        .query(
            &format!("SELECT {ROW} FROM athena_clients WHERE deleted_at IS NULL ORDER BY lower(client_name)"),
            &[],
        )
        .await
        .map_err(db_error)?;
    let clients: Vec<Value> = rows.iter().map(|r| row_json(r, &state)).collect();
    Ok(respond::data(
        &respond::counted(clients.len(), "client"),
        json!({"clients": clients}),
    ))
}

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
    let name = path.into_inner();
    let db = catalog(&state).await?;
    let row = db
        .query_opt(
            &format!(
                "UPDATE athena_clients SET is_frozen = $2, \
                 frozen_reason = CASE WHEN $2 THEN nullif($3, '') END, \
                 frozen_at = CASE WHEN $2 THEN now() END, updated_at = now() \
                 WHERE lower(client_name) = lower($1) AND deleted_at IS NULL RETURNING {ROW}"
            ),
            &[&name, &frozen, &reason],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| unknown_client(&name))?;
    let client_name: String = row.get(0);
    notify(&db, &client_name).await;
    state
        .actors
        .registry
        .send(SetFrozen {
            name: client_name.to_ascii_lowercase(),
            frozen,
            reason,
        })
        .await
        .map_err(|_| ApiError::new(Code::Internal, "the registry did not answer"))?;
    Ok(respond::data(
        if frozen {
            "Client frozen"
        } else {
            "Client unfrozen"
        },
        json!({"client": row_json(&row, &state)}),
    ))
}

fn unknown_client(name: &str) -> ApiError {
    ApiError::new(
        Code::UnknownClient,
        format!("no client named {name:?} in the catalog"),
    )
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

/// Tells every instance following the catalog that `name` changed.
async fn notify(db: &tokio_postgres::Client, name: &str) {
    let channel = athena_actors::registry::listener::CHANNEL;
    if let Err(e) = db
        .execute("SELECT pg_notify($1, $2)", &[&channel, &name])
        .await
    {
        // The periodic resync of the other instances still picks the change up.
        tracing::warn!(error = %e, "could not announce a catalog change");
    }
}

/// Applies the catalog to the registry and waits until it is applied.
async fn reload(state: &AppState) -> Result<(), ApiError> {
    state
        .actors
        .registry
        .send(ReloadCatalog)
        .await
        .map_err(|_| ApiError::new(Code::Internal, "the registry did not answer"))?
        .map_err(|e| {
            ApiError::new(
                Code::BackendUnavailable,
                format!("the catalog could not be applied: {e}"),
            )
        })
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
        return Err(ApiError::new(
            Code::InvalidField,
            "client_name must be 1 to 63 lower-case letters, digits, '_' or '-'",
        ));
    }
    let description = crate::dialect::opt_str(&body, "description")?;
    let (uri, env_var) = connection_fields(&body, true)?;
    if state.settings.clients.iter().any(|c| c.name() == name) {
        return Err(ApiError::new(
            Code::UniqueViolation,
            "a client with that name already exists",
        ));
    }
    let db = catalog(&state).await?;
    let row = db
        .query_one(
            &format!(
                "INSERT INTO athena_clients (client_name, source, pg_uri, pg_uri_env_var, description)                  VALUES ($1, 'admin', $2, $3, $4) RETURNING {ROW}"
            ),
            &[&name, &uri, &env_var, &description],
        )
        .await
        .map_err(db_error)?;
    notify(&db, &name).await;
    reload(&state).await?;
    Ok(HttpResponse::Created().content_type("application/json").body(
        json!({"status": "success", "message": "Client created", "data": {"client": row_json(&row, &state)}})
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
    let name = path.into_inner();
    let db = catalog(&state).await?;
    let current = db
        .query_opt(
            "SELECT source FROM athena_clients WHERE lower(client_name) = lower($1) AND deleted_at IS NULL",
            &[&name],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| unknown_client(&name))?;
    let source: String = current.get(0);
    if source == "config" && (uri.is_some() || env_var.is_some()) {
        return Err(ApiError::new(
            Code::InvalidField,
            "this client's connection settings live in config.yaml",
        ));
    }
    let row = db
        .query_one(
            &format!(
                "UPDATE athena_clients SET description = CASE WHEN $6 THEN NULL ELSE coalesce($2, description) END,                  pg_uri = CASE WHEN $3::text IS NOT NULL THEN $3 WHEN $4::text IS NOT NULL THEN NULL ELSE pg_uri END,                  pg_uri_env_var = CASE WHEN $4::text IS NOT NULL THEN $4 WHEN $3::text IS NOT NULL THEN NULL ELSE pg_uri_env_var END,                  is_active = coalesce($5, is_active), updated_at = now()                  WHERE lower(client_name) = lower($1) AND deleted_at IS NULL RETURNING {ROW}"
            ),
            &[&name, &description, &uri, &env_var, &active, &clear_description],
        )
        .await
        .map_err(db_error)?;
    notify(&db, &name).await;
    reload(&state).await?;
    Ok(respond::data(
        "Client updated",
        json!({"client": row_json(&row, &state)}),
    ))
}

/// `DELETE /admin/clients/{client_name}`: soft-deletes the catalog row and removes the client
/// from the registry; config clients stay deleted across restarts.
pub async fn delete(
    _admin: auth::Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let db = catalog(&state).await?;
    let row = db
        .query_opt(
            &format!(
                "UPDATE athena_clients SET deleted_at = now(), updated_at = now()                  WHERE lower(client_name) = lower($1) AND deleted_at IS NULL RETURNING {ROW}"
            ),
            &[&name],
        )
        .await
        .map_err(db_error)?
        .ok_or_else(|| unknown_client(&name))?;
    notify(&db, &name).await;
    reload(&state).await?;
    Ok(respond::data(
        "Client deleted",
        json!({"client": row_json(&row, &state)}),
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
