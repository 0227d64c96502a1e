//! Log rows encoded where the request ended. Each thread that records requests keeps a
//! [`Chunker`]: it encodes every record at once as a `gateway_requests` row of a
//! `COPY … FROM STDIN (FORMAT binary)` stream, names the record's shape, and adds the record to
//! that shape's totals. At [`ROWS_PER_CHUNK`] rows (fewer when `batch_records` or
//! `buffer_records` is smaller), or when the actor flushes, the rows are sealed into a [`Chunk`];
//! a flush sends the rows of all its chunks in one `COPY` statement ([`super::copy`]).
//!
//! So a record never crosses threads: the thread that built it drops it, and the statistics
//! actor receives a few chunks per flush (bytes, and per shape its values and totals) instead of
//! every record. Binary COPY spares the database the parsing of every timestamp and number that
//! text COPY or an `INSERT … SELECT unnest(…)` would cost.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::clean;
use super::copy::ROW_BYTES;
use super::record::RequestRecord;
use super::shape::Shape;

/// Shapes compared with each record before its shape is hashed.
pub const RECENT_SHAPES: usize = 8;

/// The most rows in one chunk: the unit in which the actor takes, buffers and drops records.
pub const ROWS_PER_CHUNK: usize = 256;

/// Columns of a `gateway_requests` row as [`Chunker::push`] encodes them; see
/// [`super::copy::COLUMNS`].
const FIELDS: i16 = 10;

/// What the requests of one shape in a chunk add to the statistics tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub requests: i64,
    /// 2xx and 3xx answers.
    pub successful: i64,
    /// Answers of 400 or above.
    pub failed: i64,
    /// When the latest of them arrived.
    pub last_at: SystemTime,
}

/// One shape named by a chunk's rows.
#[derive(Debug, Clone)]
pub struct ChunkShape {
    pub id: i64,
    pub shape: Arc<Shape<'static>>,
    pub totals: Totals,
}

/// Sealed rows of a binary COPY stream, with the shapes they name.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The rows, without the stream's header and trailer.
    pub payload: Bytes,
    pub rows: usize,
    pub shapes: Vec<ChunkShape>,
}

/// The rows a thread has encoded and not yet sealed, and the shapes it saw last.
#[derive(Debug)]
pub struct Chunker {
    buf: BytesMut,
    rows: usize,
    /// Rows per chunk: [`ROWS_PER_CHUNK`], or fewer when a batch or the buffer holds fewer.
    limit: usize,
    shapes: Vec<ChunkShape>,
    /// Requests in a row mostly share their shape: the last few are compared (cheap) before one
    /// is hashed.
    recent: Vec<(Arc<Shape<'static>>, i64)>,
    /// The slot of `recent` replaced next.
    next: usize,
}

impl Chunker {
    /// Seals a chunk every `limit` rows (at least 1, at most [`ROWS_PER_CHUNK`]).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, ROWS_PER_CHUNK);
        Chunker {
            buf: new_payload(limit),
            rows: 0,
            limit,
            shapes: Vec::new(),
            recent: Vec::with_capacity(RECENT_SHAPES),
            next: 0,
        }
    }
}

fn new_payload(rows: usize) -> BytesMut {
    BytesMut::with_capacity(rows * ROW_BYTES)
}

/// PostgreSQL's timestamps count microseconds from 2000-01-01 UTC.
fn pg_micros(t: SystemTime) -> i64 {
    let epoch = UNIX_EPOCH + Duration::from_secs(946_684_800);
    match t.duration_since(epoch) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// A text field, cleaned ([`clean`] keeps it under 1 KiB), or NULL.
fn put_text(buf: &mut BytesMut, value: Option<&str>) {
    match value {
        None => buf.put_i32(-1),
        Some(s) => {
            let s = clean(s);
            buf.put_i32(s.len() as i32);
            buf.put_slice(s.as_bytes());
        }
    }
}

impl Chunker {
    /// Rows encoded and not yet sealed.
    pub fn pending(&self) -> usize {
        self.rows
    }

    /// Encodes `r`; returns the chunk it completed, if it did.
    pub fn push(&mut self, r: &RequestRecord) -> Option<Chunk> {
        let at = self.shape_of(r);
        let entry = &mut self.shapes[at];
        let t = &mut entry.totals;
        t.requests += 1;
        t.successful += i64::from(r.succeeded());
        t.failed += i64::from(r.failed());
        t.last_at = t.last_at.max(r.at);
        let id = entry.id;

        let op = r.operation.as_ref();
        let b = &mut self.buf;
        b.put_i16(FIELDS);
        b.put_i32(8);
        b.put_i64(pg_micros(r.at));
        b.put_i32(32);
        b.put_slice(&r.request_id.hex());
        b.put_i32(8);
        b.put_i64(id);
        b.put_i32(4);
        b.put_i32(i32::from(r.status));
        b.put_i32(8);
        b.put_f64(r.duration_ms);
        match op.and_then(|o| o.row_count) {
            None => b.put_i32(-1),
            Some(n) => {
                b.put_i32(8);
                b.put_i64(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        put_text(b, op.and_then(|o| o.message.as_deref()));
        put_text(b, r.user_id.as_deref());
        put_text(b, r.company_id.as_deref());
        put_text(b, r.organization_id.as_deref());
        self.rows += 1;
        if self.rows >= self.limit {
            self.seal()
        } else {
            None
        }
    }

    /// The index in `shapes` of `r`'s shape, added with empty totals when the chunk has none.
    fn shape_of(&mut self, r: &RequestRecord) -> usize {
        let shape = Shape::of(r);
        let slot = match self.recent.iter().position(|(s, _)| **s == shape) {
            Some(slot) => slot,
            None => {
                let id = shape.id();
                let owned = (Arc::new(shape.into_owned()), id);
                if self.recent.len() < RECENT_SHAPES {
                    self.recent.push(owned);
                    self.recent.len() - 1
                } else {
                    let slot = self.next;
                    self.recent[slot] = owned;
                    self.next = (slot + 1) % RECENT_SHAPES;
                    slot
                }
            }
        };
        let (shape, id) = &self.recent[slot];
        match self.shapes.iter().position(|s| s.id == *id) {
            Some(at) => at,
            None => {
                self.shapes.push(ChunkShape {
                    id: *id,
                    shape: shape.clone(),
                    totals: Totals {
                        requests: 0,
                        successful: 0,
                        failed: 0,
                        last_at: r.at,
                    },
                });
                self.shapes.len() - 1
            }
        }
    }

    /// Seals the rows encoded so far, if there are any.
    pub fn seal(&mut self) -> Option<Chunk> {
        if self.rows == 0 {
            return None;
        }
        let buf = std::mem::replace(&mut self.buf, new_payload(self.limit));
        Some(Chunk {
            payload: buf.freeze(),
            rows: std::mem::take(&mut self.rows),
            shapes: std::mem::take(&mut self.shapes),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::stats::record::{AuthRecord, OperationRecord, RequestId};
    use crate::stats::shape;

    /// The records' chunks, as one thread would seal them.
    pub fn chunks(records: &[RequestRecord]) -> Vec<Chunk> {
        let mut c = Chunker::new(ROWS_PER_CHUNK);
        let mut out: Vec<Chunk> = records.iter().filter_map(|r| c.push(r)).collect();
        out.extend(c.seal());
        out
    }

    pub fn rec(path: &str, status: u16, secs: u64) -> RequestRecord {
        RequestRecord {
            request_id: RequestId::next(),
            at: UNIX_EPOCH + Duration::from_secs(secs),
            client: Some("default".into()),
            method: "POST".into(),
            path: path.to_string().into(),
            route: "/gateway/fetch".into(),
            status,
            duration_ms: 1.0,
            key_public_id: Some("pub".into()),
            user_id: Some("u\u{0}1".into()),
            company_id: None,
            organization_id: None,
            remote_addr: Some([127, 0, 0, 1].into()),
            user_agent: None,
            cached: false,
            operation: Some(OperationRecord {
                operation: "fetch".into(),
                table: Some("users".into()),
                row_count: Some(3),
                message: None,
            }),
            auth: Some(AuthRecord {
                api_key_id: Some(7),
                required_rights: vec!["users.read".into()],
                authenticated: true,
                authorized: true,
                enforced: true,
                ..AuthRecord::default()
            }),
        }
    }

    #[test]
    fn remembered_recent_shapes_give_the_same_ids_as_hashing() {
        // More distinct shapes than are compared, repeated, interleaved and in runs, over
        // several chunks.
        let mut records: Vec<RequestRecord> = (0..ROWS_PER_CHUNK + 3 * RECENT_SHAPES)
            .map(|i| rec(&format!("/p{}", i % (2 * RECENT_SHAPES)), 200, 1))
            .collect();
        records.extend((0..5).map(|_| rec("/p1", 500, 2)));
        let mut expected: HashMap<i64, i64> = HashMap::new();
        for r in &records {
            *expected.entry(shape::id(r)).or_default() += 1;
        }
        let chunks = chunks(&records);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].rows, ROWS_PER_CHUNK);
        assert_eq!(chunks.iter().map(|c| c.rows).sum::<usize>(), records.len());
        let mut counted: HashMap<i64, i64> = HashMap::new();
        for c in &chunks {
            for s in &c.shapes {
                *counted.entry(s.id).or_default() += s.totals.requests;
                assert_eq!(s.shape.id(), s.id, "a shape's values give its id");
            }
        }
        assert_eq!(counted, expected);
    }

    #[test]
    fn totals_count_each_shapes_outcomes_and_latest_request() {
        let records = [rec("/a", 200, 5), rec("/a", 404, 9), rec("/a", 302, 7)];
        let c = chunks(&records);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].shapes.len(), 1);
        assert_eq!(
            c[0].shapes[0].totals,
            Totals {
                requests: 3,
                successful: 2,
                failed: 1,
                last_at: UNIX_EPOCH + Duration::from_secs(9),
            }
        );
    }

    #[test]
    fn a_payload_holds_the_rows_of_a_binary_copy_stream() {
        let r = rec("/a", 200, 946_684_800 + 1);
        let c = chunks(std::slice::from_ref(&r));
        let row = &c[0].payload[..];
        assert_eq!(&row[..2], &10i16.to_be_bytes());
        // created_at: one second after PostgreSQL's epoch.
        assert_eq!(&row[2..6], &8i32.to_be_bytes());
        assert_eq!(&row[6..14], &1_000_000i64.to_be_bytes());
        assert_eq!(&row[14..18], &32i32.to_be_bytes());
        assert_eq!(&row[18..50], r.request_id.to_string().as_bytes());
        // user_id lost its NUL byte.
        let user = [&2i32.to_be_bytes()[..], b"u1"].concat();
        assert!(row.windows(user.len()).any(|w| w == user));
        // Then company_id and organization_id, both NULL: the row's end.
        assert!(row.ends_with(&[[0xff; 4], [0xff; 4]].concat()));
    }

    #[test]
    fn sealing_nothing_gives_nothing() {
        let mut c = Chunker::new(2);
        assert!(c.seal().is_none());
        assert!(c.push(&rec("/a", 200, 1)).is_none());
        assert_eq!(c.pending(), 1);
        assert_eq!(c.seal().map(|c| c.rows), Some(1));
        assert_eq!(c.pending(), 0);
        assert!(c.seal().is_none());
        assert!(c.push(&rec("/a", 200, 1)).is_none());
        assert_eq!(
            c.push(&rec("/a", 200, 1)).map(|c| c.rows),
            Some(2),
            "sealed at its limit"
        );
    }
}
