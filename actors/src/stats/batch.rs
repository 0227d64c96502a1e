//! One flush's totals: the per-client and per-table counts, grouped in memory so that a flush
//! touches each statistics row once however many requests it carries, and each key's use. They
//! are summed from the per-shape totals of the flush's chunks ([`super::chunk`]). Pure: no
//! database, no actor runtime.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use super::chunk::{Chunk, ChunkShape};

/// Longest text kept in a log column; longer values are cut (at a character boundary).
pub const MAX_TEXT: usize = 1024;

/// PostgreSQL text cannot hold NUL; long values are cut so one caller cannot bloat the log. Text
/// that needs neither is borrowed.
pub fn clean(s: &str) -> Cow<'_, str> {
    // A byte search (memchr), which is what every text column of every log row goes through.
    if s.len() <= MAX_TEXT && !s.as_bytes().contains(&0) {
        return Cow::Borrowed(s);
    }
    let mut out: String = s.chars().filter(|c| *c != '\0').collect();
    if out.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    Cow::Owned(out)
}

/// [`clean`] for an optional value.
pub fn clean_opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean)
}

/// The keys used successfully in a flush, each with its latest use, in id order (so that
/// concurrent writers lock key rows in the same order): one row update per key, however many
/// requests it made.
#[derive(Debug, Default, PartialEq)]
pub struct KeyUse {
    pub api_key_id: Vec<i64>,
    pub last_used_at: Vec<SystemTime>,
}

/// What one flush adds to `client_statistics`, one entry per client, in name order (so that
/// concurrent writers lock rows in the same order).
#[derive(Debug, Default, PartialEq)]
pub struct ClientTotals {
    pub client: Vec<String>,
    pub total: Vec<i64>,
    pub successful: Vec<i64>,
    pub failed: Vec<i64>,
    pub cached: Vec<i64>,
    pub operations: Vec<i64>,
    pub last_request_at: Vec<SystemTime>,
    pub last_operation_at: Vec<Option<SystemTime>>,
}

/// What one flush adds to `client_table_statistics`, one entry per (client, table, operation).
#[derive(Debug, Default, PartialEq)]
pub struct TableTotals {
    pub client: Vec<String>,
    pub table: Vec<String>,
    pub operation: Vec<String>,
    pub total: Vec<i64>,
    pub errors: Vec<i64>,
    pub last_operation_at: Vec<SystemTime>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Batch {
    /// Records in the flush.
    pub records: usize,
    /// Records with an operation.
    pub operations: usize,
    pub key_use: KeyUse,
    pub clients: ClientTotals,
    pub tables: TableTotals,
}

#[derive(Default)]
struct ClientSum {
    total: i64,
    successful: i64,
    failed: i64,
    cached: i64,
    operations: i64,
    last_request_at: Option<SystemTime>,
    last_operation_at: Option<SystemTime>,
}

#[derive(Default)]
struct TableSum {
    total: i64,
    errors: i64,
    last: Option<SystemTime>,
}

/// (client, table, operation), borrowed from the shapes.
type TableOp<'a> = (&'a str, &'a str, &'a str);

fn later(a: Option<SystemTime>, b: SystemTime) -> Option<SystemTime> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl Batch {
    /// The totals of `chunks`, from the totals each chunk keeps per shape (a shape names the
    /// client, operation, table and key of its requests).
    pub fn of(chunks: &[Chunk]) -> Batch {
        let mut b = Batch::default();
        // Keyed by text borrowed from the shapes: nothing is copied per shape.
        let mut clients: BTreeMap<&str, ClientSum> = BTreeMap::new();
        let mut tables: BTreeMap<TableOp<'_>, TableSum> = BTreeMap::new();
        let mut keys: BTreeMap<i64, SystemTime> = BTreeMap::new();
        for ChunkShape {
            shape, totals: t, ..
        } in chunks.iter().flat_map(|c| &c.shapes)
        {
            b.records += t.requests as usize;
            let client = shape.client.as_deref();
            if let Some(op) = &shape.operation {
                b.operations += t.requests as usize;
                if let (Some(c), Some(table)) = (client, &shape.table) {
                    let sum = tables.entry((c, table, op)).or_default();
                    sum.total += t.requests;
                    sum.errors += t.failed;
                    sum.last = later(sum.last, t.last_at);
                }
            }
            if let (Some(id), Some(true), Some(true)) =
                (shape.key_id, shape.authenticated, shape.authorized)
            {
                let at = keys.entry(id).or_insert(t.last_at);
                *at = (*at).max(t.last_at);
            }
            if let Some(c) = client {
                let sum = clients.entry(c).or_default();
                sum.total += t.requests;
                sum.successful += t.successful;
                sum.failed += t.failed;
                if shape.cached {
                    sum.cached += t.requests;
                }
                sum.last_request_at = later(sum.last_request_at, t.last_at);
                if shape.operation.is_some() {
                    sum.operations += t.requests;
                    sum.last_operation_at = later(sum.last_operation_at, t.last_at);
                }
            }
        }
        for (id, at) in keys {
            b.key_use.api_key_id.push(id);
            b.key_use.last_used_at.push(at);
        }
        for (name, s) in clients {
            let c = &mut b.clients;
            c.client.push(name.to_string());
            c.total.push(s.total);
            c.successful.push(s.successful);
            c.failed.push(s.failed);
            c.cached.push(s.cached);
            c.operations.push(s.operations);
            c.last_request_at
                .push(s.last_request_at.expect("set with the first request"));
            c.last_operation_at.push(s.last_operation_at);
        }
        for ((client, table, operation), s) in tables {
            let t = &mut b.tables;
            t.client.push(client.to_string());
            t.table.push(table.to_string());
            t.operation.push(operation.to_string());
            t.total.push(s.total);
            t.errors.push(s.errors);
            t.last_operation_at
                .push(s.last.expect("set with the first operation"));
        }
        b
    }

    /// Request rows in this batch.
    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::stats::chunk::tests::chunks;
    use crate::stats::record::{AuthRecord, OperationRecord, RequestId, RequestRecord};

    fn rec(
        client: Option<&str>,
        status: u16,
        op: Option<(&'static str, Option<&str>)>,
        secs: u64,
    ) -> RequestRecord {
        RequestRecord {
            request_id: RequestId::next(),
            at: UNIX_EPOCH + Duration::from_secs(secs),
            client: client.map(str::to_string),
            method: "POST".into(),
            path: "/gateway/fetch".into(),
            route: "/gateway/fetch".into(),
            status,
            duration_ms: 1.5,
            key_public_id: None,
            user_id: None,
            company_id: None,
            organization_id: None,
            remote_addr: Some([127, 0, 0, 1].into()),
            user_agent: None,
            cached: false,
            operation: op.map(|(o, t)| OperationRecord {
                operation: o.into(),
                table: t.map(str::to_string),
                row_count: Some(2),
                message: None,
            }),
            auth: None,
        }
    }

    #[test]
    fn clients_are_aggregated_once_per_flush() {
        let mut cached = rec(Some("b"), 200, None, 7);
        cached.cached = true;
        let records = vec![
            rec(Some("a"), 200, Some(("fetch", Some("users"))), 3),
            rec(Some("a"), 404, Some(("fetch", Some("nope"))), 5),
            rec(Some("a"), 401, None, 9),
            cached,
            rec(None, 400, None, 1),
        ];
        let b = Batch::of(&chunks(&records));
        assert_eq!(b.len(), 5);
        assert_eq!(b.operations, 2);
        assert_eq!(b.clients.client, vec!["a", "b"]);
        assert_eq!(b.clients.total, vec![3, 1]);
        assert_eq!(b.clients.successful, vec![1, 1]);
        assert_eq!(b.clients.failed, vec![2, 0]);
        assert_eq!(b.clients.cached, vec![0, 1]);
        assert_eq!(b.clients.operations, vec![2, 0]);
        assert_eq!(
            b.clients.last_request_at[0],
            UNIX_EPOCH + Duration::from_secs(9)
        );
        assert_eq!(
            b.clients.last_operation_at,
            vec![Some(UNIX_EPOCH + Duration::from_secs(5)), None]
        );
    }

    #[test]
    fn tables_are_aggregated_per_client_table_and_operation() {
        let records = vec![
            rec(Some("a"), 200, Some(("fetch", Some("users"))), 1),
            rec(Some("a"), 422, Some(("insert", Some("users"))), 2),
            rec(Some("a"), 200, Some(("fetch", Some("users"))), 4),
            rec(Some("a"), 500, Some(("fetch", Some("users"))), 3),
            rec(Some("a"), 200, Some(("query", None)), 5),
            rec(None, 200, Some(("fetch", Some("users"))), 6),
        ];
        let b = Batch::of(&chunks(&records));
        assert_eq!(b.tables.operation, vec!["fetch", "insert"]);
        assert_eq!(b.tables.total, vec![3, 1]);
        assert_eq!(b.tables.errors, vec![1, 1]);
        assert_eq!(
            b.tables.last_operation_at[0],
            UNIX_EPOCH + Duration::from_secs(4)
        );
        assert_eq!(b.operations, 6);
    }

    #[test]
    fn key_use_needs_success() {
        let mut r = rec(Some("a"), 403, None, 1);
        r.auth = Some(AuthRecord {
            api_key_id: Some(4),
            public_id: Some("pub".into()),
            required_rights: vec!["users.read".into()],
            granted_rights: Default::default(),
            authenticated: true,
            ..AuthRecord::default()
        });
        let used = |id: i64, secs: u64| {
            let mut r = rec(Some("a"), 200, None, secs);
            r.auth = Some(AuthRecord {
                api_key_id: Some(id),
                authenticated: true,
                authorized: true,
                ..AuthRecord::default()
            });
            r
        };
        let records = [r, used(9, 5), used(2, 3), used(9, 8), used(9, 6)];
        let b = Batch::of(&chunks(&records));
        assert_eq!(
            b.key_use.api_key_id,
            vec![2, 9],
            "key 4 was authenticated but not authorized; one entry per key"
        );
        assert_eq!(
            b.key_use.last_used_at,
            vec![
                UNIX_EPOCH + Duration::from_secs(3),
                UNIX_EPOCH + Duration::from_secs(8)
            ]
        );
    }

    #[test]
    fn text_loses_nul_bytes_and_is_cut_at_a_char_boundary() {
        assert_eq!(clean("a\0b"), "ab");
        assert!(matches!(clean("plain"), Cow::Borrowed("plain")));
        let long = "é".repeat(MAX_TEXT);
        let cut = clean(&long);
        assert!(cut.len() <= MAX_TEXT && cut.chars().all(|c| c == 'é'));
    }
}
