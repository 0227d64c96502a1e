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

use std::error::Error;
use std::fmt::{self, Write as _};

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Transaction;

use super::batch::clean_opt;
use super::record::RequestRecord;
use super::writer::WriteError;

const COLUMNS: &str = "created_at, request_id, shape_id, status_code, duration_ms, row_count, \
    message, user_id, company_id, organization_id";
const TYPES: &[Type] = &[
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT8,
    Type::INT4,
    Type::FLOAT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

/// A typical encoded log row, with its field headers.
const ROW_BYTES: usize = 128;

/// The most rows sent by one `COPY` statement.
pub const ROWS_PER_COPY: usize = 250;

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

/// Every record into `gateway_requests`: one row per request, naming its shape (`ids`, in record
/// order) for what it shares with other requests (`gateway_request_log` joins them back).
pub async fn requests(
    tx: &Transaction<'_>,
    records: &[RequestRecord],
    ids: &[i64],
) -> Result<(), WriteError> {
    debug_assert_eq!(records.len(), ids.len());
    for (chunk, ids) in records.chunks(ROWS_PER_COPY).zip(ids.chunks(ROWS_PER_COPY)) {
        encode(chunk, ids)?
            .send(tx, "gateway_requests", COLUMNS)
            .await?;
    }
    Ok(())
}

fn encode(records: &[RequestRecord], ids: &[i64]) -> Result<BinaryRows, WriteError> {
    let mut w = BinaryRows::new(TYPES, records.len());
    for (r, shape) in records.iter().zip(ids) {
        let op = r.operation.as_ref();
        let rows = op
            .and_then(|o| o.row_count)
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        w.row(&[
            &r.at,
            &Shown(r.request_id),
            shape,
            &i32::from(r.status),
            &r.duration_ms,
            &rows,
            &op.and_then(|o| clean_opt(&o.message)),
            &clean_opt(&r.user_id),
            &clean_opt(&r.company_id),
            &clean_opt(&r.organization_id),
        ])?;
    }
    Ok(w)
}
