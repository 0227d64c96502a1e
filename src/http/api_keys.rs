//! `/admin/api-keys*`, `/admin/api-key-rights*`, `/admin/api-key-config` and
//! `/admin/api-key-clients*`: API keys, the rights catalog and enforcement. Admin key only.
//!
//! Every change is committed to the logging database (which announces it to every instance) and
//! then applied to this instance's registry before the answer, so a key revoked here is refused
//! by the very next request.

use actix_web::{web, HttpRequest, HttpResponse};
use athena_actors::keys::admin::{self, AdminError, KeyPatch, NewKey};
use athena_actors::keys::settings;
use serde_json::{json, Map, Value};

use super::error::{ApiError, Code};
use super::{auth, body, respond, AppState};
use crate::dialect::{invalid, missing, opt_bool, opt_str};

type Body = Map<String, Value>;

/// A connection to the logging database, which holds the keys and the rights, from the routes'
/// shared pool.
async fn catalog(state: &AppState) -> Result<deadpool_postgres::Object, ApiError> {
    state.logging_db.get().await.map_err(|e| {
        ApiError::new(
            Code::BackendUnavailable,
            format!("the logging database is unavailable: {e}"),
        )
    })
}

/// Maps an admin failure; `not_found` is the code for a missing key or right. A client is only
/// known to be missing once the catalog is loaded: before that (while the logging database is
/// being migrated at start) the answer is 503 `not_ready`.
fn admin_error(state: &AppState, e: AdminError, not_found: Code) -> ApiError {
    match e {
        AdminError::UnknownClient(_) if !state.actors.snapshot.load().catalog_loaded => {
            ApiError::new(Code::NotReady, "the client catalog is still loading")
        }
        AdminError::Invalid { field, message } => {
            ApiError::new(Code::InvalidField, format!("{field}: {message}"))
        }
        AdminError::Conflict(m) => ApiError::new(Code::UniqueViolation, m),
        AdminError::NotFound(m) => ApiError::new(not_found, m),
        AdminError::UnknownClient(m) => ApiError::new(Code::UnknownClient, m),
        AdminError::Db(e) => match e.as_db_error() {
            Some(db) if db.code().code() == "42P01" => ApiError::new(
                Code::BackendUnavailable,
                "the logging database is not provisioned yet",
            )
            .hint("POST /admin/provision"),
            Some(db) => {
                tracing::warn!(
                    sqlstate = db.code().code(),
                    message = db.message(),
                    "API key change failed"
                );
                ApiError::new(
                    Code::DatabaseError,
                    "the logging database refused the change",
                )
            }
            None => ApiError::new(
                Code::BackendUnavailable,
                "the logging database is unavailable",
            ),
        },
    }
}

/// Applies committed changes to this instance before answering. Other instances follow through
/// the notification; if this reload fails, the periodic resync still applies the change.
async fn reload(state: &AppState) {
    if let Err(e) = state.actors.registry.reload_keys().await {
        tracing::warn!(error = %e, "could not reload API keys after a change");
    }
}

/// A field that may be absent (keep), `null` (clear) or a string.
fn nullable_str(body: &Body, field: &str) -> Result<Option<Option<String>>, ApiError> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(invalid(field, "a string or null")),
    }
}

fn nullable_rate(body: &Body) -> Result<Option<Option<i32>>, ApiError> {
    const FIELD: &str = "rate_limit_per_minute";
    match body.get(FIELD) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| invalid(FIELD, "a positive integer")),
        Some(_) => Err(invalid(FIELD, "a positive integer or null")),
    }
}

fn rights(body: &Body) -> Result<Option<Vec<String>>, ApiError> {
    crate::dialect::not_null(body, &["rights", "is_active"])?;
    match body.get("rights") {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| invalid("rights", "an array of strings")),
        Some(_) => Err(invalid("rights", "an array of strings")),
    }
}

fn unknown_fields(body: &Body, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::new(
            Code::InvalidField,
            format!(
                "unknown field {k:?}; expected one of {}",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Body, ApiError> {
    body::read_object(req, payload, state.settings.server.max_body_bytes).await
}

const KEY_FIELDS: &[&str] = &[
    "name",
    "description",
    "client_name",
    "expires_at",
    "rights",
    "rate_limit_per_minute",
    "is_active",
];

/// `GET /admin/api-keys[?include_revoked=true]`
pub async fn list(
    _admin: auth::Admin,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let include_revoked = match body::query_map(&req)?
        .get("include_revoked")
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidField,
                format!("include_revoked must be true or false, not {other:?}"),
            ))
        }
    };
    let db = catalog(&state).await?;
    let keys = admin::list_keys(&db, include_revoked)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownApiKey))?;
    Ok(respond::data(
        &respond::counted(keys.len(), "API key"),
        json!({"api_keys": keys}),
    ))
}

/// `POST /admin/api-keys {name, rights, description?, client_name?, expires_at?,
/// rate_limit_per_minute?}`: the answer holds the key; it is never shown again.
pub async fn create(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read(&req, payload, &state).await?;
    unknown_fields(&body, &KEY_FIELDS[..6])?;
    let new = NewKey {
        name: opt_str(&body, "name")?
            .ok_or_else(|| missing("name"))?
            .to_string(),
        description: opt_str(&body, "description")?.map(str::to_string),
        client_name: opt_str(&body, "client_name")?.map(str::to_string),
        expires_at: opt_str(&body, "expires_at")?.map(str::to_string),
        rights: rights(&body)?.ok_or_else(|| missing("rights"))?,
        rate_limit_per_minute: nullable_rate(&body)?.flatten(),
    };
    let mut db = catalog(&state).await?;
    let (key, record) = admin::create_key(&mut db, new)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownApiKey))?;
    reload(&state).await;
    Ok(respond::created(
        "API key created; store it now, it is not shown again",
        json!({"api_key": key, "record": record}),
    ))
}

/// `PATCH /admin/api-keys/{id}`: any of the creation fields and `is_active`; `null` clears
/// description, client_name, expires_at and rate_limit_per_minute; `rights` replaces the set.
pub async fn update(
    _admin: auth::Admin,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read(&req, payload, &state).await?;
    unknown_fields(&body, KEY_FIELDS)?;
    if body.is_empty() {
        return Err(ApiError::new(
            Code::MissingField,
            format!("give at least one of {}", KEY_FIELDS.join(", ")),
        ));
    }
    if body.get("name").is_some_and(Value::is_null) {
        return Err(invalid("name", "a string"));
    }
    let patch = KeyPatch {
        name: opt_str(&body, "name")?.map(str::to_string),
        description: nullable_str(&body, "description")?,
        client_name: nullable_str(&body, "client_name")?,
        expires_at: nullable_str(&body, "expires_at")?,
        is_active: opt_bool(&body, "is_active")?,
        rights: rights(&body)?,
        rate_limit_per_minute: nullable_rate(&body)?,
    };
    let mut db = catalog(&state).await?;
    let record = admin::update_key(&mut db, &path, patch)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownApiKey))?;
    reload(&state).await;
    Ok(respond::data("API key updated", json!({"record": record})))
}

/// `DELETE /admin/api-keys/{id}`: revokes the key on every instance; its row stays for the audit.
pub async fn revoke(
    _admin: auth::Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut db = catalog(&state).await?;
    let record = admin::revoke_key(&mut db, &path)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownApiKey))?;
    reload(&state).await;
    Ok(respond::data(
        "API key revoked",
        json!({"id": record["id"], "record": record}),
    ))
}

/// `GET /admin/api-key-rights`
pub async fn list_rights(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let db = catalog(&state).await?;
    let rights = settings::list_rights(&db)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownRight))?;
    Ok(respond::data(
        &respond::counted(rights.len(), "right"),
        json!({"rights": rights}),
    ))
}

/// `POST /admin/api-key-rights {name, description?}`
pub async fn create_right(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read(&req, payload, &state).await?;
    unknown_fields(&body, &["name", "description"])?;
    let name = opt_str(&body, "name")?.ok_or_else(|| missing("name"))?;
    let description = opt_str(&body, "description")?;
    let db = catalog(&state).await?;
    let right = settings::create_right(&db, name, description)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownRight))?;
    Ok(respond::created("Right created", json!({"right": right})))
}

/// `PATCH /admin/api-key-rights/{right}` (by id or name) `{name?, description?}`
pub async fn update_right(
    _admin: auth::Admin,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read(&req, payload, &state).await?;
    unknown_fields(&body, &["name", "description"])?;
    crate::dialect::not_null(&body, &["name"])?;
    if body.is_empty() {
        return Err(ApiError::new(
            Code::MissingField,
            "give name or description",
        ));
    }
    let name = opt_str(&body, "name")?;
    let description = nullable_str(&body, "description")?;
    let mut db = catalog(&state).await?;
    let right = settings::update_right(
        &mut db,
        &path,
        name,
        description.as_ref().map(|d| d.as_deref()),
    )
    .await
    .map_err(|e| admin_error(&state, e, Code::UnknownRight))?;
    reload(&state).await;
    Ok(respond::data("Right updated", json!({"right": right})))
}

/// `DELETE /admin/api-key-rights/{right}` (by id or name): keys lose it at once.
pub async fn delete_right(
    _admin: auth::Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut db = catalog(&state).await?;
    let right = settings::delete_right(&mut db, &path)
        .await
        .map_err(|e| admin_error(&state, e, Code::UnknownRight))?;
    reload(&state).await;
    Ok(respond::data("Right deleted", json!({"right": right})))
}

fn enforce_field(body: &Body) -> Result<bool, ApiError> {
    unknown_fields(body, &["enforce_api_keys"])?;
    opt_bool(body, "enforce_api_keys")?.ok_or_else(|| missing("enforce_api_keys"))
}

/// `GET /admin/api-key-config`: the global setting and every client override.
pub async fn get_config(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let db = catalog(&state).await?;
    let config = settings::get_config(&db)
        .await
        .map_err(|e| admin_error(&state, e, Code::NotFound))?;
    Ok(respond::data("API key enforcement", config))
}

/// `PUT /admin/api-key-config {enforce_api_keys}`
pub async fn put_config(
    _admin: auth::Admin,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let enforce = enforce_field(&read(&req, payload, &state).await?)?;
    let mut db = catalog(&state).await?;
    let global = settings::set_global(&mut db, enforce)
        .await
        .map_err(|e| admin_error(&state, e, Code::NotFound))?;
    reload(&state).await;
    Ok(respond::data(
        "Global enforcement updated",
        json!({"global": global}),
    ))
}

/// `GET /admin/api-key-clients`
pub async fn list_clients(
    _admin: auth::Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let db = catalog(&state).await?;
    let clients = settings::list_client_config(&db)
        .await
        .map_err(|e| admin_error(&state, e, Code::NotFound))?;
    Ok(respond::data(
        "Client enforcement overrides",
        json!({"clients": clients}),
    ))
}

/// `PUT /admin/api-key-clients/{client_name} {enforce_api_keys}`
pub async fn put_client(
    _admin: auth::Admin,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let enforce = enforce_field(&read(&req, payload, &state).await?)?;
    let mut db = catalog(&state).await?;
    let client = settings::set_client(&mut db, &path, enforce)
        .await
        .map_err(|e| admin_error(&state, e, Code::NotFound))?;
    reload(&state).await;
    Ok(respond::data(
        "Client enforcement set",
        json!({"client": client}),
    ))
}

/// `DELETE /admin/api-key-clients/{client_name}`: the global setting applies to it again.
pub async fn delete_client(
    _admin: auth::Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut db = catalog(&state).await?;
    let name = settings::delete_client(&mut db, &path)
        .await
        .map_err(|e| admin_error(&state, e, Code::NotFound))?;
    reload(&state).await;
    Ok(respond::data(
        "Client enforcement override removed",
        json!({"client_name": name}),
    ))
}
