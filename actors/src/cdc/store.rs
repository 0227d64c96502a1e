//! The event log in the logging database (`sql/0006_cdc.sql`): appending captured transactions
//! with the slot's checkpoint, reading events back for followers and catching-up subscribers,
//! the tables captured through the admin API, and retention.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use tokio_postgres::types::PgLsn;
use tokio_postgres::{Client, GenericClient, Row};

use super::event::{from_unix_micros, ChangeEvent, ChangeOp};
use super::pgoutput::Txn;
use super::subs::TableKey;

/// The channel new events are announced on; the payload is `{"client": …, "seq": …}` with the
/// client's new highest seq.
pub const EVENTS_CHANNEL: &str = "athena_cdc";

/// The channel changes of the captured tables are announced on; the payload is the client name.
pub const TABLES_CHANNEL: &str = "athena_cdc_tables";

/// Events read per query.
pub const PAGE: i64 = 1000;

const EVENT_COLUMNS: &str = "seq, client_name, table_schema, table_name, op, row::text, \
    old::text, committed_at";

/// Appends the changes of `txns` (in commit order) for `client` and moves the slot's checkpoint
/// to the last transaction's end, in one transaction, announcing the new head on commit.
/// Returns the events with their seqs.
pub async fn append(
    db: &mut Client,
    slot: &str,
    client: &str,
    txns: &[Txn],
) -> Result<Vec<Arc<ChangeEvent>>, tokio_postgres::Error> {
    let Some(last) = txns.last() else {
        return Ok(Vec::new());
    };
    let count: i64 = txns.iter().map(|t| t.changes.len() as i64).sum();
    let tx = db.transaction().await?;
    // Seqs are taken first, in order, so each event knows its own: a multi-row INSERT … RETURNING
    // does not promise to return rows in the order they were given.
    let seqs: Vec<i64> = if count == 0 {
        Vec::new()
    } else {
        tx.query(
            "SELECT nextval(pg_get_serial_sequence('cdc_events', 'seq')) AS s \
             FROM generate_series(1::int8, $1::int8) ORDER BY s",
            &[&count],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let mut events = Vec::with_capacity(seqs.len());
    let mut seq_iter = seqs.iter();
    let mut lsns = Vec::with_capacity(seqs.len());
    for t in txns {
        for c in &t.changes {
            let Some(seq) = seq_iter.next() else { break };
            lsns.push(PgLsn::from(t.end_lsn));
            events.push(Arc::new(ChangeEvent {
                seq: *seq,
                client: client.to_string(),
                schema: c.schema.clone(),
                table: c.table.clone(),
                op: c.op,
                row: c.row.clone(),
                old: c.old.clone(),
                committed_at: from_unix_micros(t.committed_at_micros),
            }));
        }
    }
    if !events.is_empty() {
        let clients: Vec<&str> = events.iter().map(|e| e.client.as_str()).collect();
        let schemas: Vec<&str> = events.iter().map(|e| e.schema.as_str()).collect();
        let tables: Vec<&str> = events.iter().map(|e| e.table.as_str()).collect();
        let ops: Vec<&str> = events.iter().map(|e| e.op.as_str()).collect();
        let rows: Vec<String> = events
            .iter()
            .map(|e| Value::Object(e.row.clone()).to_string())
            .collect();
        let olds: Vec<Option<String>> = events
            .iter()
            .map(|e| e.old.clone().map(|o| Value::Object(o).to_string()))
            .collect();
        let times: Vec<SystemTime> = events.iter().map(|e| e.committed_at).collect();
        tx.execute(
            "INSERT INTO cdc_events (seq, client_name, table_schema, table_name, op, row, old, \
             commit_lsn, committed_at) \
             SELECT s, c, sc, t, o, r::json, od::json, l, ts FROM unnest($1::int8[], $2::text[], \
             $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::pg_lsn[], \
             $9::timestamptz[]) AS u(s, c, sc, t, o, r, od, l, ts)",
            &[
                &seqs, &clients, &schemas, &tables, &ops, &rows, &olds, &lsns, &times,
            ],
        )
        .await?;
    }
    tx.execute(
        "INSERT INTO cdc_checkpoints (slot_name, client_name, last_lsn) VALUES ($1, $2, $3) \
         ON CONFLICT (slot_name) DO UPDATE SET last_lsn = EXCLUDED.last_lsn, \
         client_name = EXCLUDED.client_name, updated_at = now()",
        &[&slot, &client, &PgLsn::from(last.end_lsn)],
    )
    .await?;
    if let Some(head) = events.last() {
        let payload = serde_json::json!({"client": client, "seq": head.seq}).to_string();
        tx.execute("SELECT pg_notify($1, $2)", &[&EVENTS_CHANNEL, &payload])
            .await?;
    }
    tx.commit().await?;
    Ok(events)
}

/// The end LSN of the last transaction appended from `slot`.
pub async fn checkpoint(db: &Client, slot: &str) -> Result<Option<u64>, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT last_lsn FROM cdc_checkpoints WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.map(|r| u64::from(r.get::<_, PgLsn>(0))))
}

/// Sets the checkpoint of a slot just created: nothing before it can be decoded from it.
pub async fn reset_checkpoint(
    db: &Client,
    slot: &str,
    client: &str,
    lsn: u64,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "INSERT INTO cdc_checkpoints (slot_name, client_name, last_lsn) VALUES ($1, $2, $3) \
         ON CONFLICT (slot_name) DO UPDATE SET last_lsn = EXCLUDED.last_lsn, \
         client_name = EXCLUDED.client_name, updated_at = now()",
        &[&slot, &client, &PgLsn::from(lsn)],
    )
    .await?;
    Ok(())
}

/// The highest seq of `client`'s events (0 when none is kept).
pub async fn head<C: GenericClient>(db: &C, client: &str) -> Result<i64, tokio_postgres::Error> {
    let row = db
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM cdc_events WHERE client_name = $1",
            &[&client],
        )
        .await?;
    Ok(row.get(0))
}

/// Up to [`PAGE`] events of `client` after `after`, in seq order.
pub async fn read_client<C: GenericClient>(
    db: &C,
    client: &str,
    after: i64,
) -> Result<Vec<Arc<ChangeEvent>>, ReadError> {
    let rows = db
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM cdc_events WHERE client_name = $1 AND seq > $2 \
                 ORDER BY seq LIMIT {PAGE}"
            ),
            &[&client, &after],
        )
        .await?;
    rows.iter().map(event).collect()
}

/// Up to [`PAGE`] events of one table after `after` and up to `upto`, in seq order.
pub async fn read_table<C: GenericClient>(
    db: &C,
    client: &str,
    table: &TableKey,
    after: i64,
    upto: i64,
) -> Result<Vec<Arc<ChangeEvent>>, ReadError> {
    let rows = db
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM cdc_events WHERE client_name = $1 \
                 AND table_schema = $2 AND table_name = $3 AND seq > $4 AND seq <= $5 \
                 ORDER BY seq LIMIT {PAGE}"
            ),
            &[&client, &table.0, &table.1, &after, &upto],
        )
        .await?;
    rows.iter().map(event).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("cdc_events row {seq} is malformed: {what}")]
    Malformed { seq: i64, what: String },
}

fn object(seq: i64, text: &str) -> Result<Map<String, Value>, ReadError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ReadError::Malformed {
            seq,
            what: "a row is not a JSON object".into(),
        }),
    }
}

fn event(r: &Row) -> Result<Arc<ChangeEvent>, ReadError> {
    let seq: i64 = r.get(0);
    let op: String = r.get(4);
    let old: Option<String> = r.get(6);
    Ok(Arc::new(ChangeEvent {
        seq,
        client: r.get(1),
        schema: r.get(2),
        table: r.get(3),
        op: ChangeOp::parse(&op).ok_or_else(|| ReadError::Malformed {
            seq,
            what: format!("unknown op {op:?}"),
        })?,
        row: object(seq, r.get(5))?,
        old: old.map(|o| object(seq, &o)).transpose()?,
        committed_at: r.get(7),
    }))
}

/// A table captured through the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTable {
    pub client: String,
    pub table: TableKey,
    pub replica_identity_full: bool,
}

/// Every table captured through the admin API (of `client` only, when given).
pub async fn stored_tables<C: GenericClient>(
    db: &C,
    client: Option<&str>,
) -> Result<Vec<StoredTable>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT client_name, table_schema, table_name, replica_identity_full FROM cdc_tables \
             WHERE $1::text IS NULL OR client_name = $1 ORDER BY 1, 2, 3",
            &[&client],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredTable {
            client: r.get(0),
            table: (r.get(1), r.get(2)),
            replica_identity_full: r.get(3),
        })
        .collect())
}

/// Deletes events appended longer than `keep` ago, a batch at a time; returns how many.
pub async fn expire(db: &Client, keep: Duration) -> Result<u64, tokio_postgres::Error> {
    let secs = keep.as_secs_f64();
    let mut total = 0;
    loop {
        let n = db
            .execute(
                "DELETE FROM cdc_events WHERE seq IN (SELECT seq FROM cdc_events \
                 WHERE appended_at < now() - make_interval(secs => $1) LIMIT 10000)",
                &[&secs],
            )
            .await?;
        total += n;
        if n < 10_000 {
            return Ok(total);
        }
    }
}
