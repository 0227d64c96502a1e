//! The log rows of a flush, sent with `COPY … FROM STDIN (FORMAT binary)`. The log tables take
//! one row per request, so this is where the statistics spend the database's time: binary COPY
//! spares it the parsing of every timestamp and number that text COPY or an `INSERT … SELECT
//! unnest(…)` would cost. The rows are encoded straight from the records (borrowing their text
//! whenever it needs no cleaning) into one buffer per table, sent as one message, so the
//! database's backend wakes once per table per flush.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::Transaction;

use super::batch::clean;
use super::record::RequestRecord;
use super::writer::WriteError;

const REQUEST_COLUMNS: &str = "created_at, request_id, client, method, path, status_code, \
    duration_ms, api_key_public_id, user_id, company_id, organization_id, remote_addr, \
    user_agent, cached";
const REQUEST_TYPES: &[Type] = &[
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::FLOAT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
];

const OPERATION_COLUMNS: &str = "created_at, request_id, operation, table_name, client, \
    method, path, status_code, duration_ms, row_count, error, message";
const OPERATION_TYPES: &[Type] = &[
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::FLOAT8,
    Type::INT8,
    Type::BOOL,
    Type::TEXT,
];

const AUTH_COLUMNS: &str = "created_at, request_id, api_key_id, api_key_public_id, \
    client_name, method, path, required_rights, granted_rights, authenticated, authorized, \
    enforced, failure_reason, remote_addr, user_agent";
const AUTH_TYPES: &[Type] = &[
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
    Type::BOOL,
    Type::BOOL,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

fn opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean)
}

/// A binary COPY payload: the header, then rows of typed fields, then the trailer.
struct BinaryRows {
    buf: BytesMut,
    types: &'static [Type],
}

impl BinaryRows {
    fn new(types: &'static [Type]) -> BinaryRows {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension
        BinaryRows { buf, types }
    }

    /// Appends one row; each value must match its column's type.
    fn row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), WriteError> {
        debug_assert_eq!(values.len(), self.types.len());
        self.buf.put_i16(self.types.len() as i16);
        for (value, ty) in values.iter().zip(self.types) {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let written = value.to_sql_checked(ty, &mut self.buf).map_err(|e| {
                WriteError::Rejected(format!("a log value could not be encoded: {e}"))
            })?;
            let len = match written {
                IsNull::Yes => -1,
                IsNull::No => i32::try_from(self.buf.len() - at - 4)
                    .map_err(|_| WriteError::Rejected("a log value is too large".into()))?,
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    /// Sends the payload into `table` in one message.
    async fn send(
        mut self,
        tx: &Transaction<'_>,
        table: &str,
        columns: &str,
    ) -> Result<(), WriteError> {
        self.buf.put_i16(-1);
        let sink = tx
            .copy_in(&format!(
                "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
            ))
            .await?;
        futures_util::pin_mut!(sink);
        sink.send(self.buf.freeze()).await?;
        sink.finish().await?;
        Ok(())
    }
}

/// Every record into `gateway_request_log`.
pub async fn requests(tx: &Transaction<'_>, records: &[RequestRecord]) -> Result<(), WriteError> {
    let mut w = BinaryRows::new(REQUEST_TYPES);
    for r in records {
        w.row(&[
            &r.at,
            &clean(&r.request_id),
            &opt(&r.client),
            &clean(&r.method),
            &clean(&r.path),
            &i32::from(r.status),
            &r.duration_ms,
            &opt(&r.key_public_id),
            &opt(&r.user_id),
            &opt(&r.company_id),
            &opt(&r.organization_id),
            &opt(&r.remote_addr),
            &opt(&r.user_agent),
            &r.cached,
        ])?;
    }
    w.send(tx, "gateway_request_log", REQUEST_COLUMNS).await
}

/// The records with an operation into `gateway_operation_log`.
pub async fn operations(tx: &Transaction<'_>, records: &[RequestRecord]) -> Result<(), WriteError> {
    if records.iter().all(|r| r.operation.is_none()) {
        return Ok(());
    }
    let mut w = BinaryRows::new(OPERATION_TYPES);
    for r in records {
        let Some(op) = &r.operation else { continue };
        let rows = op.row_count.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        w.row(&[
            &r.at,
            &clean(&r.request_id),
            &clean(&op.operation),
            &opt(&op.table),
            &opt(&r.client),
            &clean(&r.method),
            &clean(&r.path),
            &i32::from(r.status),
            &r.duration_ms,
            &rows,
            &r.failed(),
            &opt(&op.message),
        ])?;
    }
    w.send(tx, "gateway_operation_log", OPERATION_COLUMNS).await
}

/// The records with an API-key decision into `api_key_auth_log`.
pub async fn auth(tx: &Transaction<'_>, records: &[RequestRecord]) -> Result<(), WriteError> {
    if records.iter().all(|r| r.auth.is_none()) {
        return Ok(());
    }
    let mut w = BinaryRows::new(AUTH_TYPES);
    for r in records {
        let Some(a) = &r.auth else { continue };
        w.row(&[
            &r.at,
            &clean(&r.request_id),
            &a.api_key_id,
            &opt(&a.public_id),
            &opt(&a.client_name),
            &clean(&r.method),
            &clean(&r.path),
            &a.required_rights,
            &&a.granted_rights[..],
            &a.authenticated,
            &a.authorized,
            &a.enforced,
            &opt(&a.failure_reason),
            &opt(&r.remote_addr),
            &opt(&r.user_agent),
        ])?;
    }
    w.send(tx, "api_key_auth_log", AUTH_COLUMNS).await
}
