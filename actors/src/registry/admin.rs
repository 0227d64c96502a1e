//! The admin API's changes to the client catalog (`athena_clients`), as the registry makes them:
//! each is written, announced to the other instances (`NOTIFY`), and applied here before its
//! answer, so that a client created, edited, frozen or deleted is served that way from the next
//! request on.

use tokio_postgres::{Client, Row};

/// A client's catalog row, as the admin API shows it. Holds the URI with its password: the edge
/// redacts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub client_name: String,
    pub source: String,
    pub description: Option<String>,
    pub backend: String,
    pub pg_uri: Option<String>,
    pub pg_uri_env_var: Option<String>,
    pub is_active: bool,
    pub is_frozen: bool,
    pub frozen_reason: Option<String>,
    pub frozen_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A change the admin API asks of the catalog.
#[derive(Debug, Clone)]
pub enum CatalogChange {
    /// A new catalog client, reached by `pg_uri` or through `pg_uri_env_var`.
    Create {
        name: String,
        pg_uri: Option<String>,
        pg_uri_env_var: Option<String>,
        description: Option<String>,
    },
    /// An edit; `None` keeps a field. A new URI replaces the variable and the other way round.
    Update {
        name: String,
        /// `Some(None)` clears it.
        description: Option<Option<String>>,
        pg_uri: Option<String>,
        pg_uri_env_var: Option<String>,
        is_active: Option<bool>,
    },
    Freeze {
        name: String,
        frozen: bool,
        reason: String,
    },
    /// A soft delete: config clients stay deleted across restarts.
    Delete { name: String },
}

impl CatalogChange {
    pub fn name(&self) -> &str {
        match self {
            CatalogChange::Create { name, .. }
            | CatalogChange::Update { name, .. }
            | CatalogChange::Freeze { name, .. }
            | CatalogChange::Delete { name } => name,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    #[error("the logging database is unavailable: {0}")]
    Unavailable(String),
    #[error("the logging database is not provisioned yet")]
    NotProvisioned,
    #[error("a client with that name already exists")]
    Exists,
    #[error("client_name must be 1 to 63 lower-case letters, digits, '_' or '-'")]
    InvalidName,
    #[error("no client named {0:?} in the catalog")]
    UnknownClient(String),
    #[error("this client's connection settings live in config.yaml")]
    ConfigConnection,
    #[error("{0}")]
    Refused(String),
    #[error("the catalog could not be applied: {0}")]
    NotApplied(String),
}

impl From<tokio_postgres::Error> for CatalogError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if db.code().code() == "42P01" => CatalogError::NotProvisioned,
            Some(db) if db.code().code() == "23505" => CatalogError::Exists,
            Some(db) if db.code().code() == "23514" => CatalogError::InvalidName,
            Some(db) => CatalogError::Refused(db.message().to_string()),
            None => CatalogError::Unavailable(e.to_string()),
        }
    }
}

const ROW: &str = "client_name, source, description, backend, pg_uri, pg_uri_env_var, is_active, \
    is_frozen, frozen_reason, frozen_at::text, created_at::text, updated_at::text";

fn entry(r: &Row) -> CatalogEntry {
    CatalogEntry {
        client_name: r.get(0),
        source: r.get(1),
        description: r.get(2),
        backend: r.get(3),
        pg_uri: r.get(4),
        pg_uri_env_var: r.get(5),
        is_active: r.get(6),
        is_frozen: r.get(7),
        frozen_reason: r.get(8),
        frozen_at: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

/// The live rows, by name.
pub async fn list(db: &Client) -> Result<Vec<CatalogEntry>, CatalogError> {
    let rows = db
        .query(
            &format!("SELECT {ROW} FROM athena_clients WHERE deleted_at IS NULL ORDER BY lower(client_name)"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(entry).collect())
}

/// Writes `change` and announces it to every instance following the catalog. `config_clients`
/// are the clients of config.yaml (name, backend), whose names a new client may not take.
pub async fn write(
    db: &Client,
    change: &CatalogChange,
    config_clients: &[(String, &'static str)],
) -> Result<CatalogEntry, CatalogError> {
    let unknown = || CatalogError::UnknownClient(change.name().to_string());
    let row = match change {
        CatalogChange::Create {
            name,
            pg_uri,
            pg_uri_env_var,
            description,
        } => {
            if config_clients.iter().any(|(c, _)| c == name) {
                return Err(CatalogError::Exists);
            }
            db.query_one(
                &format!(
                    "INSERT INTO athena_clients (client_name, source, pg_uri, pg_uri_env_var, description) \
                     VALUES ($1, 'admin', $2, $3, $4) RETURNING {ROW}"
                ),
                &[name, pg_uri, pg_uri_env_var, description],
            )
            .await?
        }
        CatalogChange::Update {
            name,
            description,
            pg_uri,
            pg_uri_env_var,
            is_active,
        } => {
            let source: String = db
                .query_opt(
                    "SELECT source FROM athena_clients WHERE lower(client_name) = lower($1) AND deleted_at IS NULL",
                    &[name],
                )
                .await?
                .ok_or_else(unknown)?
                .get(0);
            if source == "config" && (pg_uri.is_some() || pg_uri_env_var.is_some()) {
                return Err(CatalogError::ConfigConnection);
            }
            let clear = matches!(description, Some(None));
            let description = description.clone().flatten();
            db.query_opt(
                &format!(
                    "UPDATE athena_clients SET \
                     description = CASE WHEN $6 THEN NULL ELSE coalesce($2, description) END, \
                     pg_uri = CASE WHEN $3::text IS NOT NULL THEN $3 WHEN $4::text IS NOT NULL THEN NULL ELSE pg_uri END, \
                     pg_uri_env_var = CASE WHEN $4::text IS NOT NULL THEN $4 WHEN $3::text IS NOT NULL THEN NULL ELSE pg_uri_env_var END, \
                     is_active = coalesce($5, is_active), updated_at = now() \
                     WHERE lower(client_name) = lower($1) AND deleted_at IS NULL RETURNING {ROW}"
                ),
                &[name, &description, pg_uri, pg_uri_env_var, is_active, &clear],
            )
            .await?
            .ok_or_else(unknown)?
        }
        CatalogChange::Freeze {
            name,
            frozen,
            reason,
        } => db
            .query_opt(
                &format!(
                    "UPDATE athena_clients SET is_frozen = $2, \
                     frozen_reason = CASE WHEN $2 THEN nullif($3, '') END, \
                     frozen_at = CASE WHEN $2 THEN now() END, updated_at = now() \
                     WHERE lower(client_name) = lower($1) AND deleted_at IS NULL RETURNING {ROW}"
                ),
                &[name, frozen, reason],
            )
            .await?
            .ok_or_else(unknown)?,
        CatalogChange::Delete { name } => db
            .query_opt(
                &format!(
                    "UPDATE athena_clients SET deleted_at = now(), updated_at = now() \
                     WHERE lower(client_name) = lower($1) AND deleted_at IS NULL RETURNING {ROW}"
                ),
                &[name],
            )
            .await?
            .ok_or_else(unknown)?,
    };
    let written = entry(&row);
    let channel = super::listener::CHANNEL;
    if let Err(e) = db
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&channel, &written.client_name],
        )
        .await
    {
        // The periodic resync of the other instances still picks the change up.
        tracing::warn!(error = %e, "could not announce a catalog change");
    }
    Ok(written)
}
