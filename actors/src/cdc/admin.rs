//! Capturing and releasing tables through the admin API: the I/O behind [`AddTable`] and
//! [`RemoveTable`](super::messages::RemoveTable), run in a future by the hub. The table list is
//! recorded in the logging database (`cdc_tables`) and announced on `athena_cdc_tables`; the
//! publication is brought to the new list before the answer, under the lock the readers take for
//! the same purpose, so a change committed after a successful answer is captured.
//!
//! [`AddTable`]: super::messages::AddTable

use tokio_postgres::Client;

use crate::pg::PgConfig as Config;

use super::api::{CdcError, TableStatus};
use super::event::label;
use super::reader::{self, source_config};
use super::setup::{self, Resolved};
use super::store::TABLES_CHANNEL;
use super::subs::TableKey;

/// Where an admin change goes.
#[derive(Clone)]
pub struct Target {
    pub client: String,
    pub slot: String,
    /// Holds a password: never log it.
    pub source: Config,
    /// Holds a password: never log it.
    pub logging: Config,
    pub config_tables: Vec<(TableKey, bool)>,
}

async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = config.connect().await?;
    tokio::spawn(conn);
    Ok(client)
}

fn logging_down(e: tokio_postgres::Error) -> CdcError {
    CdcError::LoggingUnavailable(format!("the logging database is unavailable: {e}"))
}

fn logging_err(e: tokio_postgres::Error) -> CdcError {
    match e.as_db_error() {
        Some(d) if d.code().code() == "42P01" => {
            CdcError::LoggingUnavailable("the logging database is not migrated yet".into())
        }
        Some(d) => CdcError::LoggingUnavailable(format!(
            "the logging database refused the change: {} (SQLSTATE {})",
            d.message(),
            d.code().code()
        )),
        None => logging_down(e),
    }
}

fn source_down(client: &str, e: tokio_postgres::Error) -> CdcError {
    CdcError::BackendUnavailable(format!(
        "the database of client {client} is unavailable: {}",
        e.as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string())
    ))
}

/// Records `table`, brings the publication up to date, and returns how the table stands.
pub async fn add(t: Target, table: TableKey, full: bool) -> Result<TableStatus, CdcError> {
    let name = label(&table.0, &table.1);
    let mut log = connect(&t.logging).await.map_err(logging_down)?;
    let src = connect(&source_config(&t.source))
        .await
        .map_err(|e| source_down(&t.client, e))?;
    match setup::resolve(&src, &table)
        .await
        .map_err(|e| source_down(&t.client, e))?
    {
        Resolved::Table { .. } => {}
        Resolved::Missing => {
            return Err(CdcError::UnknownTable {
                client: t.client,
                table: name,
            })
        }
        Resolved::NotATable => return Err(CdcError::NotATable(name)),
    }
    log.execute(
        "INSERT INTO cdc_tables (client_name, table_schema, table_name, replica_identity_full) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (client_name, table_schema, table_name) \
         DO UPDATE SET replica_identity_full = EXCLUDED.replica_identity_full",
        &[&t.client, &table.0, &table.1, &full],
    )
    .await
    .map_err(logging_err)?;
    let status =
        match reader::sync_tables(&mut log, &src, &t.slot, &t.client, &t.config_tables).await {
            Ok(tables) => tables.into_iter().find(|s| s.key() == table),
            Err(e) => {
                // Recorded: capture starts once the database allows it. Say why it has not yet.
                let p = setup::problem_from_error(&e, "updating the publication");
                let mut s = TableStatus::new(
                    table.clone(),
                    "admin",
                    full,
                    Resolved::Table {
                        columns: Vec::new(),
                    },
                );
                s.state = "failed";
                s.detail = Some(format!("{} — {}", p.what, p.fix));
                Some(s)
            }
        };
    announce(&log, &t.client).await?;
    status.ok_or(CdcError::NotCaptured {
        client: t.client,
        table: name,
    })
}

/// Forgets `table` (an admin table only) and brings the publication up to date when the client
/// database answers (the leader does it otherwise).
pub async fn remove(t: Target, table: TableKey) -> Result<(), CdcError> {
    let name = label(&table.0, &table.1);
    if t.config_tables.iter().any(|(c, _)| *c == table) {
        return Err(CdcError::FromConfig {
            client: t.client,
            table: name,
        });
    }
    let mut log = connect(&t.logging).await.map_err(logging_down)?;
    let n = log
        .execute(
            "DELETE FROM cdc_tables WHERE client_name = $1 AND table_schema = $2 AND table_name = $3",
            &[&t.client, &table.0, &table.1],
        )
        .await
        .map_err(logging_err)?;
    if n == 0 {
        return Err(CdcError::NotCaptured {
            client: t.client,
            table: name,
        });
    }
    if let Ok(src) = connect(&source_config(&t.source)).await {
        if let Err(e) =
            reader::sync_tables(&mut log, &src, &t.slot, &t.client, &t.config_tables).await
        {
            tracing::warn!(client = %t.client, error = %e, "could not update the publication; its reader will");
        }
    }
    announce(&log, &t.client).await
}

async fn announce(log: &Client, client: &str) -> Result<(), CdcError> {
    log.execute("SELECT pg_notify($1, $2)", &[&TABLES_CHANNEL, &client])
        .await
        .map_err(logging_err)?;
    Ok(())
}
