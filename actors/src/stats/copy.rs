//! The log rows of a flush, sent with one `COPY … FROM STDIN (FORMAT binary)` statement: the
//! stream's header, the rows of every [`Chunk`] (encoded by the threads that served them, see
//! [`super::chunk`]) as they are, and the trailer.
//!
//! One statement per flush, however many rows: PostgreSQL (15) pins the table's descriptor once
//! for each of the up to 1,000 rows it buffers before writing them, and every pin probes past
//! the earlier ones, so each statement pays a fixed cost that grows with the square of its rows up
//! to about a thousand, and nothing more beyond. Measured by the backend's CPU time per row, a
//! statement of 250 rows costs about 1.4 µs a row, one of 1,000 about 1.7 µs, one of 5,000 about
//! 0.8 µs and one of 10,000 about 0.78 µs.

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Transaction;

use super::chunk::Chunk;
use super::writer::WriteError;

/// The columns a chunk's rows hold, in order (see [`super::chunk::Chunker::push`]).
pub const COLUMNS: &str = "created_at, request_id, shape_id, status_code, duration_ms, \
    row_count, message, user_id, company_id, organization_id";

/// A typical encoded log row, with its field headers.
pub const ROW_BYTES: usize = 128;

/// A binary COPY stream's header: signature, flags, no extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A binary COPY stream's trailer.
const TRAILER: &[u8] = &[0xff, 0xff];

/// Every chunk's rows into `gateway_requests`, in one `COPY` statement: one row per request,
/// naming its shape for what it shares with other requests (`gateway_request_log` joins them
/// back).
pub async fn requests(tx: &Transaction<'_>, chunks: &[Chunk]) -> Result<(), WriteError> {
    if chunks.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(&format!(
            "COPY gateway_requests ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    futures_util::pin_mut!(sink);
    sink.feed(Bytes::from_static(HEADER)).await?;
    for chunk in chunks {
        sink.feed(chunk.payload.clone()).await?;
    }
    sink.feed(Bytes::from_static(TRAILER)).await?;
    sink.finish().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_header_is_the_signature_and_two_zero_words() {
        assert_eq!(HEADER.len(), 19);
        assert!(HEADER.starts_with(b"PGCOPY\n\xff\r\n\0"));
        assert!(HEADER[11..].iter().all(|b| *b == 0));
    }
}
