//! Reading the totals the statistics writer keeps in the logging database (`client_statistics`,
//! `client_table_statistics`), for the admin API. Timestamps are RFC 3339, as PostgreSQL's JSON
//! renders them.

use serde::Serialize;
use tokio_postgres::{Client, Error, Row};

/// One client's request totals.
#[derive(Debug, Clone, Serialize)]
pub struct ClientTotals {
    pub client_name: String,
    pub total_requests: i64,
    pub successful_requests: i64,
    pub failed_requests: i64,
    pub total_cached_requests: i64,
    pub total_operations: i64,
    pub last_request_at: Option<String>,
    pub last_operation_at: Option<String>,
    pub updated_at: String,
}

/// One client's totals for one operation on one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableTotals {
    pub client_name: String,
    pub table_name: String,
    pub operation: String,
    pub total_operations: i64,
    pub error_operations: i64,
    pub last_operation_at: Option<String>,
}

const CLIENT_ROW: &str = "client_name, total_requests, successful_requests, failed_requests, \
    total_cached_requests, total_operations, (to_json(last_request_at) #>> '{}'), \
    (to_json(last_operation_at) #>> '{}'), (to_json(updated_at) #>> '{}')";

fn client_totals(r: &Row) -> ClientTotals {
    ClientTotals {
        client_name: r.get(0),
        total_requests: r.get(1),
        successful_requests: r.get(2),
        failed_requests: r.get(3),
        total_cached_requests: r.get(4),
        total_operations: r.get(5),
        last_request_at: r.get(6),
        last_operation_at: r.get(7),
        updated_at: r.get(8),
    }
}

/// Every client's totals, by name.
pub async fn clients(db: &Client) -> Result<Vec<ClientTotals>, Error> {
    let rows = db
        .query(
            &format!("SELECT {CLIENT_ROW} FROM client_statistics ORDER BY client_name"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(client_totals).collect())
}

/// One client's totals (`None` when it has none) and its tables', by table and operation.
pub async fn client(
    db: &Client,
    name: &str,
) -> Result<Option<(ClientTotals, Vec<TableTotals>)>, Error> {
    let Some(row) = db
        .query_opt(
            &format!("SELECT {CLIENT_ROW} FROM client_statistics WHERE client_name = $1"),
            &[&name],
        )
        .await?
    else {
        return Ok(None);
    };
    let tables = db
        .query(
            "SELECT client_name, table_name, operation, total_operations, error_operations, \
             (to_json(last_operation_at) #>> '{}') FROM client_table_statistics \
             WHERE client_name = $1 ORDER BY table_name, operation",
            &[&name],
        )
        .await?;
    let tables = tables
        .iter()
        .map(|r| TableTotals {
            client_name: r.get(0),
            table_name: r.get(1),
            operation: r.get(2),
            total_operations: r.get(3),
            error_operations: r.get(4),
            last_operation_at: r.get(5),
        })
        .collect();
    Ok(Some((client_totals(&row), tables)))
}
