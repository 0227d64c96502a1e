//! The client database's side of capture: what it needs for logical decoding (checked, and
//! when it is missing, described as a [`Problem`] with the exact change that fixes it), the
//! publication that says which tables are decoded, and the replication slot.
//!
//! The publication and the slot share one name (`<cdc.slot_prefix>_<client>`). The publication is
//! created before the slot: pgoutput looks it up for every change it decodes.

use serde::Serialize;
use tokio_postgres::types::PgLsn;
use tokio_postgres::{Client, GenericClient};

use super::subs::TableKey;
use crate::backend::postgres::schema;
use crate::ops::TableRef;

/// Why a client's changes cannot be captured, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong, naming the setting, role or object.
    pub what: String,
    /// The command or setting that fixes it.
    pub fix: String,
}

/// What the inspection of a client database found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub wal_level: String,
    /// Superuser or REPLICATION.
    pub may_replicate: bool,
    pub max_slots: i32,
    pub used_slots: i32,
    /// The slot named for this client, if it exists: its database, plugin and type.
    pub slot: Option<(String, String, String)>,
    pub may_create: bool,
    pub database: String,
    pub user: String,
    pub publication_exists: bool,
    pub version_num: i32,
}

const FACTS: &str = "\
SELECT current_setting('wal_level'), \
       coalesce((SELECT rolsuper OR rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user), false), \
       current_setting('max_replication_slots')::int4, \
       (SELECT count(*)::int4 FROM pg_catalog.pg_replication_slots), \
       s.database::text, s.plugin::text, s.slot_type::text, \
       has_database_privilege(current_database(), 'CREATE'), \
       current_database()::text, current_user::text, \
       EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1), \
       current_setting('server_version_num')::int4 \
FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = $1";

/// Reads the [`Facts`] of the database `db` is connected to, for the slot `slot`.
pub async fn facts(db: &Client, slot: &str) -> Result<Facts, tokio_postgres::Error> {
    let r = db.query_one(FACTS, &[&slot]).await?;
    let slot_db: Option<String> = r.get(4);
    Ok(Facts {
        wal_level: r.get(0),
        may_replicate: r.get(1),
        max_slots: r.get(2),
        used_slots: r.get(3),
        slot: slot_db.map(|d| (d, r.get(5), r.get(6))),
        may_create: r.get(7),
        database: r.get(8),
        user: r.get(9),
        publication_exists: r.get(10),
        version_num: r.get(11),
    })
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn restart_hint(version_num: i32) -> String {
    format!(
        "then restart PostgreSQL (on Debian: pg_ctlcluster {} main restart)",
        version_num / 10_000
    )
}

/// The first thing that stops `slot` from being used, if any.
pub fn diagnose(f: &Facts, slot: &str) -> Option<Problem> {
    if f.version_num < 110_000 {
        return Some(Problem {
            what: format!(
                "PostgreSQL {} is too old for change data capture",
                f.version_num
            ),
            fix: "upgrade to PostgreSQL 11 or later".into(),
        });
    }
    if f.wal_level != "logical" {
        return Some(Problem {
            what: format!(
                "wal_level is {}; logical decoding needs wal_level = logical",
                f.wal_level
            ),
            fix: format!(
                "as a superuser: ALTER SYSTEM SET wal_level = logical; {}",
                restart_hint(f.version_num)
            ),
        });
    }
    if !f.may_replicate {
        return Some(Problem {
            what: format!("role {} may not use replication slots", f.user),
            fix: format!(
                "as a superuser: ALTER ROLE {} WITH REPLICATION;",
                ident(&f.user)
            ),
        });
    }
    match &f.slot {
        Some((db, plugin, kind))
            if db != &f.database || plugin != "pgoutput" || kind != "logical" =>
        {
            return Some(Problem {
                what: format!(
                    "replication slot {slot} already exists ({kind}, plugin {plugin}, database {db}) \
                     and is not this client's"
                ),
                fix: format!(
                    "set another cdc.slot_prefix, or drop the slot if nothing uses it: \
                     SELECT pg_drop_replication_slot('{slot}');"
                ),
            });
        }
        Some(_) => {}
        None if f.used_slots >= f.max_slots => {
            return Some(Problem {
                what: format!(
                    "all {} replication slots are in use (max_replication_slots = {})",
                    f.used_slots, f.max_slots
                ),
                fix: format!(
                    "drop a slot nothing uses (SELECT slot_name, active FROM pg_replication_slots; \
                     SELECT pg_drop_replication_slot('<name>');), or as a superuser: \
                     ALTER SYSTEM SET max_replication_slots = {}; {}",
                    f.max_slots.max(1) * 2,
                    restart_hint(f.version_num)
                ),
            });
        }
        None => {}
    }
    if !f.publication_exists && !f.may_create {
        return Some(Problem {
            what: format!(
                "role {} may not create the publication {slot} in database {}",
                f.user, f.database
            ),
            fix: format!(
                "as the database owner: GRANT CREATE ON DATABASE {} TO {}; \
                 or create it yourself: CREATE PUBLICATION {} WITH (publish = 'insert, update, delete');",
                ident(&f.database),
                ident(&f.user),
                ident(slot)
            ),
        });
    }
    None
}

/// A database error met while setting capture up, as a [`Problem`].
pub fn problem_from_error(e: &tokio_postgres::Error, doing: &str) -> Problem {
    let Some(db) = e.as_db_error() else {
        return Problem {
            what: format!("{doing}: {e}"),
            fix: "check that the client database is reachable".into(),
        };
    };
    let fix = match db.code().code() {
        "55000" => "as a superuser: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
        "53400" => "drop a replication slot nothing uses, or raise max_replication_slots and restart PostgreSQL",
        "42501" => "grant the role what the message names (REPLICATION, CREATE on the database, or ownership of the table)",
        "58P01" => "install the logical decoding output plugin on the database server",
        _ => "see the message and the PostgreSQL server log",
    };
    Problem {
        what: format!("{doing}: {} (SQLSTATE {})", db.message(), db.code().code()),
        fix: fix.into(),
    }
}

/// A captured table as the client database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A table (plain or partitioned) with these columns.
    Table {
        columns: Vec<String>,
    },
    Missing,
    /// A view or another relation a publication cannot hold.
    NotATable,
}

/// Looks `table` up in the client database.
pub async fn resolve<C: GenericClient>(
    db: &C,
    table: &TableKey,
) -> Result<Resolved, tokio_postgres::Error> {
    let r = TableRef {
        schema: Some(table.0.clone()),
        name: table.1.clone(),
    };
    Ok(match schema::load_table(db, &r).await? {
        None => Resolved::Missing,
        Some(info) if !matches!(info.relkind, 'r' | 'p') => Resolved::NotATable,
        Some(info) => Resolved::Table {
            columns: info.columns.into_iter().map(|c| c.name).collect(),
        },
    })
}

/// Brings the publication to exactly `wanted` (creating it when missing) and gives the tables
/// that ask for it REPLICA IDENTITY FULL. Returns the tables it could not add, with the reason.
pub async fn sync_publication(
    db: &Client,
    publication: &str,
    wanted: &[(TableKey, bool)],
) -> Result<Vec<(TableKey, String)>, tokio_postgres::Error> {
    let create = format!(
        "CREATE PUBLICATION {} WITH (publish = 'insert, update, delete')",
        ident(publication)
    );
    match db.batch_execute(&create).await {
        Ok(()) => {}
        Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42710") => {}
        Err(e) => return Err(e),
    }
    let rows = db
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_catalog.pg_publication_tables \
             WHERE pubname = $1",
            &[&publication],
        )
        .await?;
    let current: Vec<TableKey> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut failed = Vec::new();
    let qualified = |t: &TableKey| format!("{}.{}", ident(&t.0), ident(&t.1));
    for (t, full) in wanted {
        if *full {
            let ident_now: Option<String> = db
                .query_opt(
                    "SELECT c.relreplident::text FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relname = $2",
                    &[&t.0, &t.1],
                )
                .await?
                .map(|r| r.get(0));
            if ident_now.as_deref().is_some_and(|i| i != "f") {
                let sql = format!("ALTER TABLE {} REPLICA IDENTITY FULL", qualified(t));
                if let Err(e) = db.batch_execute(&sql).await {
                    failed.push((t.clone(), describe(&e)));
                    continue;
                }
            }
        }
        if !current.contains(t) {
            let sql = format!(
                "ALTER PUBLICATION {} ADD TABLE {}",
                ident(publication),
                qualified(t)
            );
            match db.batch_execute(&sql).await {
                Ok(()) => {}
                Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42710") => {}
                Err(e) => failed.push((t.clone(), describe(&e))),
            }
        }
    }
    for t in current
        .iter()
        .filter(|t| !wanted.iter().any(|(w, _)| w == *t))
    {
        let sql = format!(
            "ALTER PUBLICATION {} DROP TABLE {}",
            ident(publication),
            qualified(t)
        );
        match db.batch_execute(&sql).await {
            Ok(()) => {}
            // Dropped from the database meanwhile: it left the publication with it.
            Err(e)
                if e.as_db_error()
                    .is_some_and(|d| matches!(d.code().code(), "42P01" | "42704")) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(failed)
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// The slot's confirmed position, creating the slot (pgoutput) when it does not exist. The
/// second value says whether it was created now.
pub async fn ensure_slot(db: &Client, slot: &str) -> Result<(u64, bool), tokio_postgres::Error> {
    let existing = db
        .query_opt(
            "SELECT confirmed_flush_lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    if let Some(r) = existing {
        if let Some(lsn) = r.get::<_, Option<PgLsn>>(0) {
            return Ok((u64::from(lsn), false));
        }
    }
    let r = db
        .query_one(
            "SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&slot],
        )
        .await?;
    Ok((u64::from(r.get::<_, PgLsn>(0)), true))
}

/// The slot's changes from its confirmed position up to `upto` (at most about `max` messages,
/// always whole transactions), without consuming them: `(lsn, message)` rows.
pub async fn peek(
    db: &Client,
    slot: &str,
    upto: u64,
    max: i32,
    messages: bool,
) -> Result<Vec<(u64, Vec<u8>)>, tokio_postgres::Error> {
    // Logical decoding messages (published events) are asked for where pgoutput has them (14+).
    let sql = if messages {
        "SELECT lsn, data FROM pg_logical_slot_peek_binary_changes($1, $2, $3, \
         'proto_version', '1', 'publication_names', $4, 'messages', 'true')"
    } else {
        "SELECT lsn, data FROM pg_logical_slot_peek_binary_changes($1, $2, $3, \
         'proto_version', '1', 'publication_names', $4)"
    };
    let rows = db
        .query(sql, &[&slot, &PgLsn::from(upto), &max, &slot])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (u64::from(r.get::<_, PgLsn>(0)), r.get(1)))
        .collect())
}

/// Whether the server's pgoutput sends logical decoding messages (PostgreSQL 14 and later).
pub async fn has_messages(db: &Client) -> Result<bool, tokio_postgres::Error> {
    let r = db
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(r.get::<_, i32>(0) >= 140_000)
}

/// The position up to which WAL is flushed: everything committed before it can be decoded.
pub async fn flushed(db: &Client) -> Result<u64, tokio_postgres::Error> {
    let r = db
        .query_one("SELECT pg_current_wal_flush_lsn()", &[])
        .await?;
    Ok(u64::from(r.get::<_, PgLsn>(0)))
}

/// Confirms the slot up to `lsn`: PostgreSQL may recycle the WAL before it.
pub async fn advance(db: &Client, slot: &str, lsn: u64) -> Result<(), tokio_postgres::Error> {
    db.query_one(
        "SELECT end_lsn FROM pg_replication_slot_advance($1, $2)",
        &[&slot, &PgLsn::from(lsn)],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
