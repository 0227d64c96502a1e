//! The log rows of a flush, sent with `COPY … FROM STDIN (FORMAT binary)`. The log takes one row
//! per request, so this is where the statistics spend the database's time: binary COPY
//! spares it the parsing of every timestamp and number that text COPY or an `INSERT … SELECT
//! unnest(…)` would cost. The rows are encoded straight from the records (borrowing their text
//! whenever it needs no cleaning) into one buffer per statement, sent as one message.
//!
//! A flush sends its rows in statements of at most [`ROWS_PER_COPY`]. PostgreSQL buffers up to
//! 1,000 binary COPY rows before writing them, each in a slot that pins the table's descriptor in
//! the statement's resource owner, and every pin probes past all the earlier ones: one statement's
//! cost grows with the square of its rows. Measured by the backend's CPU time per row
//! (PostgreSQL 15), four statements of 250 rows cost 15–20% less than one of 1,000, and 16 of 63
//! no less than four of 250 (each statement has its fixed cost).

use std::borrow::Cow;
use std::error::Error;
use std::fmt::{self, Write as _};

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Transaction;

use super::batch::clean;
use super::record::RequestRecord;
use super::writer::WriteError;

const COLUMNS: &str = "created_at, request_id, client, method, path, status_code, \
    duration_ms, api_key_public_id, user_id, company_id, organization_id, remote_addr, \
    user_agent, cached, operation, table_name, row_count, message, api_key_id, \
    api_key_enforced, api_key_authenticated, api_key_authorized, api_key_auth_reason, \
    required_rights, granted_rights";
const TYPES: &[Type] = &[
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
    // the operation
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    // the API-key decision
    Type::INT8,
    Type::BOOL,
    Type::BOOL,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
];

/// A typical encoded log row, with its field headers.
const ROW_BYTES: usize = 384;

/// The most rows sent by one `COPY` statement.
pub const ROWS_PER_COPY: usize = 250;

fn opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean)
}

/// A text value written in its `Display` form straight into the payload, so that the edge that
/// made the record never formats it.
#[derive(Debug)]
struct Shown<T>(T);

impl<T: fmt::Display + fmt::Debug> ToSql for Shown<T> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        write!(out, "{}", self.0)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT
    }

    to_sql_checked!();
}

/// A binary COPY payload: the header, then rows of typed fields, then the trailer.
struct BinaryRows {
    buf: BytesMut,
    types: &'static [Type],
}

impl BinaryRows {
    /// A payload sized for `rows` rows of about `ROW_BYTES`, so that it is seldom copied to grow.
    fn new(types: &'static [Type], rows: usize) -> BinaryRows {
        let mut buf = BytesMut::with_capacity(19 + rows * ROW_BYTES + 2);
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

/// Every record into `gateway_request_log`: one row per request, carrying its operation and its
/// API-key decision (`gateway_operation_log` and `api_key_auth_log` are views of it).
pub async fn requests(tx: &Transaction<'_>, records: &[RequestRecord]) -> Result<(), WriteError> {
    for chunk in records.chunks(ROWS_PER_COPY) {
        encode(chunk)?
            .send(tx, "gateway_request_log", COLUMNS)
            .await?;
    }
    Ok(())
}

fn encode(records: &[RequestRecord]) -> Result<BinaryRows, WriteError> {
    let mut w = BinaryRows::new(TYPES, records.len());
    for r in records {
        let op = r.operation.as_ref();
        let rows = op
            .and_then(|o| o.row_count)
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let a = r.auth.as_ref();
        w.row(&[
            &r.at,
            &Shown(r.request_id),
            &opt(&r.client),
            &clean(&r.method),
            &clean(&r.path),
            &i32::from(r.status),
            &r.duration_ms,
            &opt(&r.key_public_id),
            &opt(&r.user_id),
            &opt(&r.company_id),
            &opt(&r.organization_id),
            &r.remote_addr.map(Shown),
            &opt(&r.user_agent),
            &r.cached,
            &op.map(|o| clean(&o.operation)),
            &op.and_then(|o| opt(&o.table)),
            &rows,
            &op.and_then(|o| opt(&o.message)),
            &a.and_then(|a| a.api_key_id),
            &a.map(|a| a.enforced),
            &a.map(|a| a.authenticated),
            &a.map(|a| a.authorized),
            &a.and_then(|a| opt(&a.failure_reason)),
            &a.map(|a| &a.required_rights[..]),
            &a.and_then(|a| a.granted_rights.as_deref()),
        ])?;
    }
    Ok(w)
}
