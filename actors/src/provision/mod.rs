//! Migrations of the `athena_logging` database: numbered SQL files from `sql/`, applied in order,
//! each in its own transaction and recorded in `athena_migrations`, under an advisory lock so that
//! several instances starting at once apply each migration exactly once. Every file is also
//! written to be idempotent (`IF NOT EXISTS`), so a database provisioned by hand converges.
//!
//! This module does not decide *when* to migrate; the server, the CLI and the admin API call it.

mod import;

use std::fmt::Write as _;

use tokio_postgres::Client;

use crate::pg::PgConfig as Config;
pub use import::{import_2_0_2, translate_right, ImportReport};

/// One numbered migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Versions are never reused or edited once released.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "client_catalog",
        sql: include_str!("../../../sql/0001_client_catalog.sql"),
    },
    Migration {
        version: 2,
        name: "api_keys",
        sql: include_str!("../../../sql/0002_api_keys.sql"),
    },
    Migration {
        version: 3,
        name: "request_statistics",
        sql: include_str!("../../../sql/0003_request_statistics.sql"),
    },
    Migration {
        version: 4,
        name: "append_only_logs",
        sql: include_str!("../../../sql/0004_append_only_logs.sql"),
    },
    Migration {
        version: 5,
        name: "one_log_row_per_request",
        sql: include_str!("../../../sql/0005_one_log_row_per_request.sql"),
    },
    Migration {
        version: 6,
        name: "cdc",
        sql: include_str!("../../../sql/0006_cdc.sql"),
    },
    Migration {
        version: 7,
        name: "log_ids_in_blocks",
        sql: include_str!("../../../sql/0007_log_ids_in_blocks.sql"),
    },
    Migration {
        version: 8,
        name: "request_shapes",
        sql: include_str!("../../../sql/0008_request_shapes.sql"),
    },
    Migration {
        version: 9,
        name: "published_events",
        sql: include_str!("../../../sql/0009_published_events.sql"),
    },
];

/// The tables a provisioned logging database holds (`gateway_request_log` is a view joining
/// `gateway_requests` and `gateway_request_shapes`; `api_key_auth_log` and
/// `gateway_operation_log` are views of it).
pub const TABLES: &[&str] = &[
    "athena_clients",
    "api_keys",
    "api_key_rights",
    "api_key_right_grants",
    "api_key_config",
    "api_key_client_config",
    "api_key_auth_log",
    "gateway_request_log",
    "gateway_operation_log",
    "gateway_requests",
    "gateway_request_shapes",
    "client_statistics",
    "client_table_statistics",
    "cdc_events",
    "cdc_checkpoints",
    "cdc_tables",
];

/// Advisory lock key serialising migrations across instances ("ATHENA" + 1).
const LOCK_KEY: i64 = 0x4154_4845_4e41_0001;

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS athena_migrations (\
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, \
    applied_at timestamptz NOT NULL DEFAULT now())";

/// The tables of Athena's names (in the connection's schema) laid out as athena_rs 2.0.2 laid them:
/// `api_keys` without `rate_limit_per_minute`, `athena_clients` without `backend`, a
/// `gateway_request_log` with 2.0.2's `ipv4`.
const FOREIGN_TABLES: &str = "\
    SELECT t.name FROM (VALUES ('api_keys', 'rate_limit_per_minute'), ('athena_clients', 'backend')) \
        AS t(name, col) \
     WHERE to_regclass(t.name) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = to_regclass(t.name) AND a.attname = t.col AND NOT a.attisdropped) \
    UNION ALL \
    SELECT 'gateway_request_log' WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = to_regclass('gateway_request_log') AND a.attname = 'ipv4' \
           AND NOT a.attisdropped)";

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration {version} ({name}) failed: {message}")]
    Migration {
        version: i32,
        name: &'static str,
        message: String,
    },
    #[error("migration {version} ({name}) was applied with different contents")]
    Changed { version: i32, name: &'static str },
    #[error(
        "the database already holds tables of Athena's names in another layout ({}) and no \
         record of Athena's migrations: another program provisioned it, most likely athena_rs 2.0.2, whose logging \
         tables Athena does not change in place. Nothing was changed. Point logging.uri at a new \
         database (Athena creates and migrates it) and keep this one as it is",
        tables.join(", ")
    )]
    Foreign { tables: Vec<String> },
    #[error("{0}")]
    Sql(String),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The database was created by this run.
    pub created_database: bool,
    pub applied: Vec<String>,
    pub already_applied: Vec<String>,
}

/// Which of [`TABLES`] exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub present: Vec<String>,
    pub missing: Vec<String>,
    pub applied_versions: Vec<i32>,
}

fn label(m: &Migration) -> String {
    format!("{:04}_{}", m.version, m.name)
}

/// A stable fingerprint of a migration's text (FNV-1a, 64 bits), to notice edited migrations.
fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(16);
    let _ = write!(out, "{h:016x}");
    out
}

fn sql_err(e: tokio_postgres::Error) -> ProvisionError {
    match e.as_db_error() {
        Some(db) => {
            ProvisionError::Sql(format!("{} (SQLSTATE {})", db.message(), db.code().code()))
        }
        None => ProvisionError::Sql(e.to_string()),
    }
}

pub async fn connect(config: &Config) -> Result<Client, ProvisionError> {
    let (client, conn) = config
        .connect()
        .await
        .map_err(|e| ProvisionError::Connect(describe_connect_error(&e)))?;
    tokio::spawn(conn);
    Ok(client)
}

fn describe_connect_error(e: &tokio_postgres::Error) -> String {
    match (e.as_db_error(), std::error::Error::source(e)) {
        (Some(db), _) => db.message().to_string(),
        (None, Some(src)) => format!("{e}: {src}"),
        (None, None) => e.to_string(),
    }
}

/// Creates the configured database when it does not exist, connecting to the server's `postgres`
/// database to do so. Returns whether it was created.
pub async fn ensure_database(config: &Config) -> Result<bool, ProvisionError> {
    let Some(name) = config.get_dbname().map(str::to_string) else {
        return Ok(false);
    };
    match connect(config).await {
        Ok(_) => return Ok(false),
        Err(ProvisionError::Connect(msg)) if msg.contains("does not exist") => {}
        Err(e) => return Err(e),
    }
    let mut maintenance = config.clone();
    maintenance.dbname("postgres");
    let admin = connect(&maintenance).await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match admin
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .await
    {
        Ok(()) => Ok(true),
        // Another instance created it first (a race can also surface as the catalog's unique
        // violation rather than duplicate_database).
        Err(e)
            if e.as_db_error()
                .is_some_and(|d| matches!(d.code().code(), "42P04" | "23505")) =>
        {
            Ok(false)
        }
        Err(e) => Err(sql_err(e)),
    }
}

/// Applies every migration not yet recorded. Safe to run from several processes at once.
pub async fn apply(client: &Client) -> Result<Report, ProvisionError> {
    apply_through(client, i32::MAX).await
}

/// Applies the migrations not yet recorded whose version is at most `last` (a database as an
/// older release left it, to test what the next migration does to it).
pub async fn apply_through(client: &Client, last: i32) -> Result<Report, ProvisionError> {
    client
        .query_one("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(sql_err)?;
    let result = apply_locked(client, last).await;
    let _ = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

/// Creates the first schema of the connection's `search_path` when it does not exist (a
/// logging database whose tables live in a schema of their own, `logging.schema`).
async fn ensure_schema(client: &Client) -> Result<(), ProvisionError> {
    let row = client
        .query_one(
            "SELECT current_schema() IS NULL, current_setting('search_path')",
            &[],
        )
        .await
        .map_err(sql_err)?;
    if !row.get::<_, bool>(0) {
        return Ok(());
    }
    let path: String = row.get(1);
    let first = path
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    if first.is_empty() || first.starts_with('$') {
        return Ok(());
    }
    let quoted = format!("\"{}\"", first.replace('"', "\"\""));
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
        .await
        .map_err(sql_err)
}

async fn apply_locked(client: &Client, last: i32) -> Result<Report, ProvisionError> {
    ensure_schema(client).await?;
    // A database with tables of Athena's names in another layout and no migration applied by
    // Athena holds another program's schema (athena_rs 2.0.2's logging tables): migrating over it
    // would half-succeed. (Athena's own files run by hand converge, as the files are idempotent.)
    let ledger: bool = client
        .query_one("SELECT to_regclass('athena_migrations') IS NOT NULL", &[])
        .await
        .map_err(sql_err)?
        .get(0);
    let recorded = ledger
        && client
            .query_one("SELECT EXISTS (SELECT 1 FROM athena_migrations)", &[])
            .await
            .map_err(sql_err)?
            .get::<_, bool>(0);
    if !recorded {
        let foreign = client
            .query(FOREIGN_TABLES, &[])
            .await
            .map_err(sql_err)?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>();
        if !foreign.is_empty() {
            return Err(ProvisionError::Foreign { tables: foreign });
        }
    }
    client.batch_execute(LEDGER).await.map_err(sql_err)?;
    let rows = client
        .query("SELECT version, checksum FROM athena_migrations", &[])
        .await
        .map_err(sql_err)?;
    let done: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut report = Report::default();
    for m in MIGRATIONS.iter().filter(|m| m.version <= last) {
        let sum = checksum(m.sql);
        if let Some((_, recorded)) = done.iter().find(|(v, _)| *v == m.version) {
            if *recorded != sum {
                return Err(ProvisionError::Changed {
                    version: m.version,
                    name: m.name,
                });
            }
            report.already_applied.push(label(m));
            continue;
        }
        // One transaction per migration: the ledger row commits with the schema change.
        let script = format!(
            "BEGIN;\n{}\n;\nINSERT INTO athena_migrations (version, name, checksum) VALUES ({}, '{}', '{}');\nCOMMIT;",
            m.sql, m.version, m.name, sum
        );
        if let Err(e) = client.batch_execute(&script).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(ProvisionError::Migration {
                version: m.version,
                name: m.name,
                message: match sql_err(e) {
                    ProvisionError::Sql(s) => s,
                    other => other.to_string(),
                },
            });
        }
        report.applied.push(label(m));
    }
    Ok(report)
}

/// Creates the database if asked and missing, then applies the migrations.
pub async fn provision(config: &Config, create_database: bool) -> Result<Report, ProvisionError> {
    let created = if create_database {
        ensure_database(config).await?
    } else {
        false
    };
    let client = connect(config).await?;
    let mut report = apply(&client).await?;
    report.created_database = created;
    Ok(report)
}

/// Reports which logging tables exist (in the connection's search path).
pub async fn status(client: &Client) -> Result<Status, ProvisionError> {
    let names: Vec<&str> = TABLES.to_vec();
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             WHERE c.relname = ANY($1) AND c.relkind IN ('r', 'p', 'v') \
             AND pg_catalog.pg_table_is_visible(c.oid)",
            &[&names],
        )
        .await
        .map_err(sql_err)?;
    let present: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let missing = TABLES
        .iter()
        .filter(|t| !present.iter().any(|p| p == *t))
        .map(|t| t.to_string())
        .collect();
    let ordered: Vec<String> = TABLES
        .iter()
        .filter(|t| present.iter().any(|p| p == *t))
        .map(|t| t.to_string())
        .collect();
    let applied_versions = match client
        .query(
            "SELECT version FROM athena_migrations ORDER BY version",
            &[],
        )
        .await
    {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(_) => Vec::new(),
    };
    Ok(Status {
        present: ordered,
        missing,
        applied_versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_name_every_table() {
        // Increasing, not necessarily contiguous: a number may be reserved by work in progress.
        assert_eq!(MIGRATIONS[0].version, 1);
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version, "{pair:?}");
        }
        let all: String = MIGRATIONS.iter().map(|m| m.sql).collect();
        for t in TABLES {
            assert!(
                all.contains(&format!("CREATE TABLE IF NOT EXISTS {t} (")),
                "{t} is created by a migration"
            );
        }
    }

    #[test]
    fn checksums_are_stable_and_sensitive() {
        assert_eq!(checksum("abc"), checksum("abc"));
        assert_ne!(checksum("abc"), checksum("abd"));
        assert_eq!(checksum("").len(), 16);
    }
}
