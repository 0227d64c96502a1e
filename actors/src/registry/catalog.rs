//! The client catalog (`athena_clients` in the logging database): config clients are recorded
//! there when absent, so an admin's later edits (freeze, deactivate, delete) survive restarts, and
//! every catalog row is applied to the registry.

use tokio_postgres::Client;

/// One client as the catalog describes it: the live row of a name, or its latest deleted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogRow {
    pub name: String,
    pub source: String,
    /// Holds a password: never log it.
    pub pg_uri: Option<String>,
    pub pg_uri_env_var: Option<String>,
    pub is_active: bool,
    pub is_frozen: bool,
    pub frozen_reason: Option<String>,
    pub deleted: bool,
}

const RECORD_CONFIG_CLIENT: &str = "\
INSERT INTO athena_clients (client_name, source, backend) \
SELECT $1, 'config', $2 WHERE NOT EXISTS \
  (SELECT 1 FROM athena_clients WHERE lower(client_name) = lower($1)) \
ON CONFLICT DO NOTHING";

const LOAD: &str = "\
SELECT DISTINCT ON (lower(client_name)) client_name, source, pg_uri, pg_uri_env_var, \
       is_active, is_frozen, frozen_reason, deleted_at IS NOT NULL \
FROM athena_clients \
ORDER BY lower(client_name), deleted_at IS NULL DESC, updated_at DESC, id DESC";

/// Records the config clients (name and backend) the catalog has never seen, then reads the
/// catalog.
pub async fn reconcile(
    client: &Client,
    config_clients: &[(String, &'static str)],
) -> Result<Vec<CatalogRow>, tokio_postgres::Error> {
    for (name, backend) in config_clients {
        client
            .execute(RECORD_CONFIG_CLIENT, &[name, backend])
            .await?;
    }
    let rows = client.query(LOAD, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| CatalogRow {
            name: r.get(0),
            source: r.get(1),
            pg_uri: r.get(2),
            pg_uri_env_var: r.get(3),
            is_active: r.get(4),
            is_frozen: r.get(5),
            frozen_reason: r.get(6),
            deleted: r.get(7),
        })
        .collect())
}

/// The connection URI a catalog row names (directly or through an environment variable).
pub fn row_uri(row: &CatalogRow) -> Option<String> {
    row.pg_uri.clone().or_else(|| {
        row.pg_uri_env_var
            .as_deref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|v| !v.is_empty())
    })
}
