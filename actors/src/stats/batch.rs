//! One flush, as column vectors: the rows for the three log tables and the per-client and
//! per-table totals, grouped in memory so that a flush touches each statistics row once, however
//! many requests it carries. Pure: no database, no actor runtime.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::record::RequestRecord;

/// Longest text kept in a log column; longer values are cut (at a character boundary).
pub const MAX_TEXT: usize = 1024;

/// PostgreSQL text cannot hold NUL; long values are cut so one caller cannot bloat the log.
pub fn clean(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| *c != '\0').collect();
    if out.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

fn clean_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(clean)
}

/// Rows of `gateway_request_log`, one vector per column.
#[derive(Debug, Default, PartialEq)]
pub struct RequestRows {
    pub at: Vec<SystemTime>,
    pub request_id: Vec<String>,
    pub client: Vec<Option<String>>,
    pub method: Vec<String>,
    pub path: Vec<String>,
    pub status: Vec<i32>,
    pub duration_ms: Vec<f64>,
    pub key_public_id: Vec<Option<String>>,
    pub user_id: Vec<Option<String>>,
    pub company_id: Vec<Option<String>>,
    pub organization_id: Vec<Option<String>>,
    pub remote_addr: Vec<Option<String>>,
    pub user_agent: Vec<Option<String>>,
    pub cached: Vec<bool>,
}

/// Rows of `gateway_operation_log`.
#[derive(Debug, Default, PartialEq)]
pub struct OperationRows {
    pub at: Vec<SystemTime>,
    pub request_id: Vec<String>,
    pub operation: Vec<String>,
    pub table: Vec<Option<String>>,
    pub client: Vec<Option<String>>,
    pub method: Vec<String>,
    pub path: Vec<String>,
    pub status: Vec<i32>,
    pub duration_ms: Vec<f64>,
    pub row_count: Vec<Option<i64>>,
    pub error: Vec<bool>,
    pub message: Vec<Option<String>>,
}

/// Rows of `api_key_auth_log`; the rights are JSON array text.
#[derive(Debug, Default, PartialEq)]
pub struct AuthRows {
    pub at: Vec<SystemTime>,
    pub request_id: Vec<String>,
    pub api_key_id: Vec<Option<i64>>,
    pub public_id: Vec<Option<String>>,
    pub client_name: Vec<Option<String>>,
    pub method: Vec<String>,
    pub path: Vec<String>,
    pub required_rights: Vec<String>,
    pub granted_rights: Vec<String>,
    pub authenticated: Vec<bool>,
    pub authorized: Vec<bool>,
    pub enforced: Vec<bool>,
    pub failure_reason: Vec<Option<String>>,
    pub remote_addr: Vec<Option<String>>,
    pub user_agent: Vec<Option<String>>,
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
    pub requests: RequestRows,
    pub operations: OperationRows,
    pub auth: AuthRows,
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

fn later(a: Option<SystemTime>, b: SystemTime) -> Option<SystemTime> {
    Some(a.map_or(b, |a| a.max(b)))
}

fn rights_json(rights: &[String]) -> String {
    serde_json::to_string(&rights.iter().map(|r| clean(r)).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

impl Batch {
    pub fn build(records: &[RequestRecord]) -> Batch {
        let mut b = Batch::default();
        let mut clients: BTreeMap<String, ClientSum> = BTreeMap::new();
        let mut tables: BTreeMap<(String, String, String), TableSum> = BTreeMap::new();
        for r in records {
            let client = r.client.as_deref().map(clean);
            let method = clean(&r.method);
            let path = clean(&r.path);
            let request_id = clean(&r.request_id);
            let status = i32::from(r.status);
            let q = &mut b.requests;
            q.at.push(r.at);
            q.request_id.push(request_id.clone());
            q.client.push(client.clone());
            q.method.push(method.clone());
            q.path.push(path.clone());
            q.status.push(status);
            q.duration_ms.push(r.duration_ms);
            q.key_public_id.push(clean_opt(&r.key_public_id));
            q.user_id.push(clean_opt(&r.user_id));
            q.company_id.push(clean_opt(&r.company_id));
            q.organization_id.push(clean_opt(&r.organization_id));
            q.remote_addr.push(clean_opt(&r.remote_addr));
            q.user_agent.push(clean_opt(&r.user_agent));
            q.cached.push(r.cached);

            if let Some(op) = &r.operation {
                let table = clean_opt(&op.table);
                let o = &mut b.operations;
                o.at.push(r.at);
                o.request_id.push(request_id.clone());
                o.operation.push(clean(&op.operation));
                o.table.push(table.clone());
                o.client.push(client.clone());
                o.method.push(method.clone());
                o.path.push(path.clone());
                o.status.push(status);
                o.duration_ms.push(r.duration_ms);
                o.row_count
                    .push(op.row_count.map(|n| i64::try_from(n).unwrap_or(i64::MAX)));
                o.error.push(r.failed());
                o.message.push(clean_opt(&op.message));
                if let (Some(c), Some(t)) = (&client, table) {
                    let sum = tables
                        .entry((c.clone(), t, clean(&op.operation)))
                        .or_default();
                    sum.total += 1;
                    sum.errors += i64::from(r.failed());
                    sum.last = later(sum.last, r.at);
                }
            }

            if let Some(a) = &r.auth {
                let l = &mut b.auth;
                l.at.push(r.at);
                l.request_id.push(request_id.clone());
                l.api_key_id.push(a.api_key_id);
                l.public_id.push(clean_opt(&a.public_id));
                l.client_name.push(clean_opt(&a.client_name));
                l.method.push(method.clone());
                l.path.push(path.clone());
                l.required_rights.push(rights_json(&a.required_rights));
                l.granted_rights.push(rights_json(&a.granted_rights));
                l.authenticated.push(a.authenticated);
                l.authorized.push(a.authorized);
                l.enforced.push(a.enforced);
                l.failure_reason.push(clean_opt(&a.failure_reason));
                l.remote_addr.push(clean_opt(&r.remote_addr));
                l.user_agent.push(clean_opt(&r.user_agent));
            }

            if let Some(c) = client {
                let sum = clients.entry(c).or_default();
                sum.total += 1;
                sum.successful += i64::from(r.succeeded());
                sum.failed += i64::from(r.failed());
                sum.cached += i64::from(r.cached);
                sum.last_request_at = later(sum.last_request_at, r.at);
                if r.operation.is_some() {
                    sum.operations += 1;
                    sum.last_operation_at = later(sum.last_operation_at, r.at);
                }
            }
        }
        for (name, s) in clients {
            let c = &mut b.clients;
            c.client.push(name);
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
            t.client.push(client);
            t.table.push(table);
            t.operation.push(operation);
            t.total.push(s.total);
            t.errors.push(s.errors);
            t.last_operation_at
                .push(s.last.expect("set with the first operation"));
        }
        b
    }

    /// Request rows in this batch.
    pub fn len(&self) -> usize {
        self.requests.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::stats::record::{AuthRecord, OperationRecord};

    fn rec(
        client: Option<&str>,
        status: u16,
        op: Option<(&str, Option<&str>)>,
        secs: u64,
    ) -> RequestRecord {
        RequestRecord {
            request_id: format!("r{secs}"),
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
            remote_addr: Some("127.0.0.1".into()),
            user_agent: None,
            cached: false,
            logged: true,
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
        let b = Batch::build(&records);
        assert_eq!(b.len(), 5);
        assert_eq!(b.operations.at.len(), 2);
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
        let b = Batch::build(&records);
        assert_eq!(b.tables.operation, vec!["fetch", "insert"]);
        assert_eq!(b.tables.total, vec![3, 1]);
        assert_eq!(b.tables.errors, vec![1, 1]);
        assert_eq!(
            b.tables.last_operation_at[0],
            UNIX_EPOCH + Duration::from_secs(4)
        );
        assert_eq!(
            b.operations.error,
            vec![false, true, false, true, false, false]
        );
        assert_eq!(b.operations.table[4], None);
    }

    #[test]
    fn auth_rows_carry_rights_as_json_arrays() {
        let mut r = rec(Some("a"), 403, None, 1);
        r.auth = Some(AuthRecord {
            api_key_id: Some(4),
            public_id: Some("pub".into()),
            required_rights: vec!["users.read".into()],
            granted_rights: vec![],
            authenticated: true,
            ..AuthRecord::default()
        });
        let b = Batch::build(&[r, rec(Some("a"), 200, None, 2)]);
        assert_eq!(b.auth.at.len(), 1);
        assert_eq!(b.auth.required_rights, vec![r#"["users.read"]"#]);
        assert_eq!(b.auth.granted_rights, vec!["[]"]);
        assert_eq!(b.auth.api_key_id, vec![Some(4)]);
    }

    #[test]
    fn text_loses_nul_bytes_and_is_cut_at_a_char_boundary() {
        assert_eq!(clean("a\0b"), "ab");
        let long = "é".repeat(MAX_TEXT);
        let cut = clean(&long);
        assert!(cut.len() <= MAX_TEXT && cut.chars().all(|c| c == 'é'));
    }
}
