//! The database side of the statistics actor: one connection to the logging database, the
//! prepared multi-row inserts, and the flush of a [`Batch`] in one transaction. Also the full
//! rebuild of the statistics tables from the logs (`POST /admin/clients/statistics/refresh`).
//!
//! The log rows go in with `COPY` (see [`super::copy`]), after the request shapes they name that
//! the actor has not written before ([`super::shape`]), and the
//! statistics rows are upserted once per flush with totals grouped in memory, so a flush costs a
//! handful of round trips however many requests it carries.

use std::borrow::Cow;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use crate::pg::PgConfig as Config;

use super::batch::{clean, Batch};
use super::chunk::Chunk;
use super::copy;
use super::shape::NewShape;

/// The longest a flush may take before the connection is considered lost.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a write failed, which decides what happens to its batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The database is down, unreachable or not migrated yet: keep the batch, reconnect later.
    #[error("the logging database is unavailable: {0}")]
    Unavailable(String),
    /// The database refused the batch itself: retrying would fail again, so it is dropped.
    #[error("the logging database refused the batch: {0}")]
    Rejected(String),
}

impl From<tokio_postgres::Error> for WriteError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return WriteError::Unavailable(e.to_string());
        };
        let code = db.code().code();
        let passes = code.starts_with("08") // connection exceptions
            || code.starts_with("53") // insufficient resources
            || code.starts_with("57") // operator intervention (shutdown, cancel, timeout)
            || code.starts_with("28") // authorization (a role being set up)
            || code.starts_with("40") // serialization failure, deadlock
            || code == "3D000" // the database does not exist yet
            || code == "42P01"; // not migrated yet
        let message = format!("{} (SQLSTATE {code})", db.message());
        if passes {
            WriteError::Unavailable(message)
        } else {
            WriteError::Rejected(message)
        }
    }
}

/// Each key's latest successful use in the batch (one entry per key): one row update per key per
/// flush, however many requests it made.
const TOUCH_KEYS: &str = "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at) \
    FROM unnest($1::int8[], $2::timestamptz[]) AS u(kid, at) WHERE k.id = u.kid";

const UPSERT_CLIENTS: &str = "INSERT INTO client_statistics AS s (client_name, total_requests, \
    successful_requests, failed_requests, total_cached_requests, total_operations, \
    last_request_at, last_operation_at, updated_at) \
    SELECT c, t, ok, f, ca, o, lr, lo, now() FROM unnest($1::text[], $2::int8[], $3::int8[], \
    $4::int8[], $5::int8[], $6::int8[], $7::timestamptz[], $8::timestamptz[]) \
    AS u(c, t, ok, f, ca, o, lr, lo) \
    ON CONFLICT (client_name) DO UPDATE SET \
    total_requests = s.total_requests + EXCLUDED.total_requests, \
    successful_requests = s.successful_requests + EXCLUDED.successful_requests, \
    failed_requests = s.failed_requests + EXCLUDED.failed_requests, \
    total_cached_requests = s.total_cached_requests + EXCLUDED.total_cached_requests, \
    total_operations = s.total_operations + EXCLUDED.total_operations, \
    last_request_at = GREATEST(s.last_request_at, EXCLUDED.last_request_at), \
    last_operation_at = GREATEST(s.last_operation_at, EXCLUDED.last_operation_at), \
    updated_at = now()";

const UPSERT_TABLES: &str = "INSERT INTO client_table_statistics AS s (client_name, table_name, \
    operation, total_operations, error_operations, last_operation_at) \
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], \
    $6::timestamptz[]) \
    ON CONFLICT (client_name, table_name, operation) DO UPDATE SET \
    total_operations = s.total_operations + EXCLUDED.total_operations, \
    error_operations = s.error_operations + EXCLUDED.error_operations, \
    last_operation_at = GREATEST(s.last_operation_at, EXCLUDED.last_operation_at)";

/// The shapes a flush names that the actor has not written before; another instance may have
/// written some of them already.
const INSERT_SHAPES: &str = "INSERT INTO gateway_request_shapes (shape_id, client, method, path, \
    operation, table_name, cached, api_key_public_id, api_key_id, api_key_enforced, \
    api_key_authenticated, api_key_authorized, api_key_auth_reason, required_rights, \
    granted_rights, remote_addr, user_agent) \
    SELECT id, c, m, p, o, t, ca, kp, kid, e, an, az, re, \
    CASE WHEN rr IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(rr::jsonb)) END, \
    CASE WHEN gr IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(gr::jsonb)) END, \
    ra, ua \
    FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::bool[], $8::text[], $9::int8[], $10::bool[], $11::bool[], $12::bool[], $13::text[], \
    $14::text[], $15::text[], $16::text[], $17::text[]) \
    AS u(id, c, m, p, o, t, ca, kp, kid, e, an, az, re, rr, gr, ra, ua) \
    ON CONFLICT (shape_id) DO NOTHING";

/// Recomputes both statistics tables from the logs. The tables are locked first, so a flush of
/// another instance either lands before the rebuild (and is counted from its log rows) or waits
/// and adds its totals after it; it is never counted twice or lost.
const REBUILD: &str = "LOCK TABLE client_statistics, client_table_statistics \
    IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM client_statistics;
INSERT INTO client_statistics (client_name, total_requests, successful_requests, failed_requests,
    total_cached_requests, total_operations, last_request_at, last_operation_at, updated_at)
SELECT coalesce(r.client, o.client), coalesce(r.total, 0), coalesce(r.ok, 0),
    coalesce(r.failed, 0), coalesce(r.cached, 0), coalesce(o.total, 0), r.last, o.last, now()
FROM (SELECT client, count(*) AS total,
        count(*) FILTER (WHERE status_code BETWEEN 200 AND 399) AS ok,
        count(*) FILTER (WHERE status_code >= 400) AS failed,
        count(*) FILTER (WHERE cached) AS cached, max(created_at) AS last
      FROM gateway_request_log WHERE client IS NOT NULL GROUP BY client) r
FULL JOIN (SELECT client, count(*) AS total, max(created_at) AS last
      FROM gateway_operation_log WHERE client IS NOT NULL GROUP BY client) o
  ON o.client = r.client;
DELETE FROM client_table_statistics;
INSERT INTO client_table_statistics (client_name, table_name, operation, total_operations,
    error_operations, last_operation_at)
SELECT client, table_name, operation, count(*), count(*) FILTER (WHERE error), max(created_at)
FROM gateway_operation_log WHERE client IS NOT NULL AND table_name IS NOT NULL
GROUP BY client, table_name, operation;";

struct Statements {
    shapes: Statement,
    touch_keys: Statement,
    clients: Statement,
    tables: Statement,
}

/// A connection to the logging database with its statements prepared.
pub struct Writer {
    client: Client,
    statements: Statements,
}

/// Connects with a bounded connect time and statement timeout, as `athena-stats`.
pub async fn connect(config: &Config) -> Result<Client, WriteError> {
    let mut config = config.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(3));
    }
    config.application_name("athena-stats");
    // A crash of the database may lose the last moments of statistics (they are held in memory
    // until written anyway); in exchange no flush waits for the WAL to reach the disk.
    config.options("-c statement_timeout=30000 -c synchronous_commit=off");
    let (client, connection) = config.connect().await?;
    tokio::spawn(async move {
        // Ends when the connection closes; the next write notices and reconnects.
        let _ = connection.await;
    });
    Ok(client)
}

impl Writer {
    /// Connects and prepares. Every failure here is `Unavailable`: no batch has been sent yet, so
    /// it is the database (down, refusing connections, not migrated) and not the batch.
    pub async fn open(config: &Config) -> Result<Writer, WriteError> {
        Writer::try_open(config).await.map_err(|e| match e {
            WriteError::Rejected(msg) => WriteError::Unavailable(msg),
            e => e,
        })
    }

    async fn try_open(config: &Config) -> Result<Writer, WriteError> {
        let client = connect(config).await?;
        let statements = Statements {
            shapes: client.prepare(INSERT_SHAPES).await?,
            touch_keys: client.prepare(TOUCH_KEYS).await?,
            clients: client.prepare(UPSERT_CLIENTS).await?,
            tables: client.prepare(UPSERT_TABLES).await?,
        };
        Ok(Writer { client, statements })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Writes one batch in one transaction: all of it, or nothing.
    pub async fn write(
        &mut self,
        chunks: &[Chunk],
        new: &[NewShape],
        b: &Batch,
    ) -> Result<(), WriteError> {
        let s = &self.statements;
        let tx = self.client.transaction().await?;
        if !new.is_empty() {
            let n = NewShapes::of(new)?;
            let params: [&(dyn ToSql + Sync); 17] = [
                &n.id,
                &n.client,
                &n.method,
                &n.path,
                &n.operation,
                &n.table,
                &n.cached,
                &n.public_id,
                &n.key_id,
                &n.enforced,
                &n.authenticated,
                &n.authorized,
                &n.reason,
                &n.required_rights,
                &n.granted_rights,
                &n.remote_addr,
                &n.user_agent,
            ];
            tx.execute(&s.shapes, &params).await?;
        }
        copy::requests(&tx, chunks).await?;
        let k = &b.key_use;
        if !k.api_key_id.is_empty() {
            tx.execute(&s.touch_keys, &[&k.api_key_id, &k.last_used_at])
                .await?;
        }
        let c = &b.clients;
        if !c.client.is_empty() {
            let params: [&(dyn ToSql + Sync); 8] = [
                &c.client,
                &c.total,
                &c.successful,
                &c.failed,
                &c.cached,
                &c.operations,
                &c.last_request_at,
                &c.last_operation_at,
            ];
            tx.execute(&s.clients, &params).await?;
        }
        let t = &b.tables;
        if !t.client.is_empty() {
            let params: [&(dyn ToSql + Sync); 6] = [
                &t.client,
                &t.table,
                &t.operation,
                &t.total,
                &t.errors,
                &t.last_operation_at,
            ];
            tx.execute(&s.tables, &params).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The new shapes of a flush, column by column, for `INSERT_SHAPES`.
#[derive(Default)]
struct NewShapes<'a> {
    id: Vec<i64>,
    client: Vec<Option<&'a str>>,
    method: Vec<&'a str>,
    path: Vec<&'a str>,
    operation: Vec<Option<&'a str>>,
    table: Vec<Option<&'a str>>,
    cached: Vec<bool>,
    public_id: Vec<Option<&'a str>>,
    key_id: Vec<Option<i64>>,
    enforced: Vec<Option<bool>>,
    authenticated: Vec<Option<bool>>,
    authorized: Vec<Option<bool>>,
    reason: Vec<Option<&'a str>>,
    /// JSON arrays of text (a text array cannot be one element of another).
    required_rights: Vec<Option<String>>,
    granted_rights: Vec<Option<String>>,
    remote_addr: Vec<Option<String>>,
    user_agent: Vec<Option<&'a str>>,
}

impl<'a> NewShapes<'a> {
    /// `new` is in id order, as every writer inserts them, so that two instances inserting the
    /// same new shapes at once wait for each other instead of deadlocking.
    fn of(new: &'a [NewShape]) -> Result<NewShapes<'a>, WriteError> {
        fn rights(r: Option<&[String]>) -> Result<Option<String>, WriteError> {
            r.map(|r| {
                let r: Vec<Cow<'_, str>> = r.iter().map(|s| clean(s)).collect();
                serde_json::to_string(&r)
                    .map_err(|e| WriteError::Rejected(format!("rights not encodable: {e}")))
            })
            .transpose()
        }
        let mut n = NewShapes::default();
        for (id, s) in new {
            n.id.push(*id);
            n.client.push(s.client.as_deref());
            n.method.push(&s.method);
            n.path.push(&s.path);
            n.operation.push(s.operation.as_deref());
            n.table.push(s.table.as_deref());
            n.cached.push(s.cached);
            n.public_id.push(s.public_id.as_deref());
            n.key_id.push(s.key_id);
            n.enforced.push(s.enforced);
            n.authenticated.push(s.authenticated);
            n.authorized.push(s.authorized);
            n.reason.push(s.reason.as_deref());
            n.required_rights
                .push(rights(s.required_rights.as_deref())?);
            n.granted_rights.push(rights(s.granted_rights.as_deref())?);
            n.remote_addr.push(s.remote_addr.map(|ip| ip.to_string()));
            n.user_agent.push(s.user_agent.as_deref());
        }
        Ok(n)
    }
}

/// Rebuilds `client_statistics` and `client_table_statistics` from the logs, in one transaction.
pub async fn rebuild(client: &mut Client) -> Result<(), WriteError> {
    let tx = client.transaction().await?;
    tx.batch_execute(REBUILD).await?;
    tx.commit().await?;
    Ok(())
}
