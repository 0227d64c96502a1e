//! Reading `system_schema`: a table's columns, indexes and user-defined types, and the list of a
//! keyspace's tables.

use std::collections::HashMap;

use scylla::client::caching_session::CachingSession;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::value::{CqlValue, Row};
use serde_json::Value;

use super::exec::{page, RunSettings};
use super::plan::Statement;
use super::schema::{Column, ColumnKind, Index, TableInfo};
use super::types::{resolve_udts, CqlType};
use crate::ops::{OpError, OpOutput};

async fn rows_of(
    s: &CachingSession,
    cql: &str,
    values: Vec<Option<CqlValue>>,
    rs: RunSettings,
) -> Result<Vec<Row>, OpError> {
    let st = Statement {
        cql: cql.into(),
        values,
    };
    let mut out = Vec::new();
    let mut state = PagingState::start();
    loop {
        let (rows, more) = page(s, &st, &rs, 1000, state).await?;
        out.extend(rows);
        match more {
            PagingStateResponse::HasMorePages { state: st } => state = st,
            PagingStateResponse::NoMorePages => return Ok(out),
        }
    }
}

fn text(row: &Row, i: usize) -> String {
    match row.columns.get(i) {
        Some(Some(CqlValue::Text(s) | CqlValue::Ascii(s))) => s.clone(),
        _ => String::new(),
    }
}

fn texts(row: &Row, i: usize) -> Vec<String> {
    match row.columns.get(i) {
        Some(Some(CqlValue::List(items))) => items
            .iter()
            .filter_map(|v| match v {
                CqlValue::Text(s) | CqlValue::Ascii(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a table's description from `system_schema`; `None` when it does not exist.
pub async fn load_table(
    s: &CachingSession,
    keyspace: &str,
    table: &str,
    rs: RunSettings,
) -> Result<Option<TableInfo>, OpError> {
    let ks = || Some(CqlValue::Text(keyspace.to_string()));
    let tb = || Some(CqlValue::Text(table.to_string()));
    let cols = rows_of(
        s,
        "SELECT column_name, kind, position, type, clustering_order FROM system_schema.columns \
         WHERE keyspace_name = ? AND table_name = ?",
        vec![ks(), tb()],
        rs,
    )
    .await?;
    if cols.is_empty() {
        return Ok(None);
    }
    let types = rows_of(
        s,
        "SELECT type_name, field_names, field_types FROM system_schema.types WHERE keyspace_name = ?",
        vec![ks()],
        rs,
    )
    .await?;
    let udts = resolve_udts(
        keyspace,
        types
            .iter()
            .map(|r| (text(r, 0), texts(r, 1), texts(r, 2)))
            .collect(),
    );
    let indexes = rows_of(
        s,
        "SELECT index_name, options FROM system_schema.indexes WHERE keyspace_name = ? AND table_name = ?",
        vec![ks(), tb()],
        rs,
    )
    .await?;
    let mut columns = Vec::with_capacity(cols.len());
    for r in &cols {
        let type_text = text(r, 3);
        let ty = CqlType::parse(&type_text, keyspace, &udts)
            .unwrap_or(CqlType::Custom(type_text.clone()));
        columns.push(Column {
            name: text(r, 0),
            kind: ColumnKind::parse(&text(r, 1)).unwrap_or(ColumnKind::Regular),
            position: match r.columns.get(2) {
                Some(Some(CqlValue::Int(p))) => *p,
                _ => -1,
            },
            ty,
            type_text,
            descending: text(r, 4).eq_ignore_ascii_case("desc"),
        });
    }
    let indexes = indexes
        .iter()
        .filter_map(|r| {
            let options: HashMap<String, String> = match r.columns.get(1) {
                Some(Some(CqlValue::Map(m))) => m
                    .iter()
                    .filter_map(|(k, v)| match (k, v) {
                        (CqlValue::Text(k), CqlValue::Text(v)) => Some((k.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
                _ => HashMap::new(),
            };
            Index::from_target(&text(r, 0), options.get("target")?)
        })
        .collect();
    Ok(Some(TableInfo::new(keyspace, table, columns, indexes)))
}

/// The keyspace's tables as the `/schema/tables` rows.
pub async fn list_tables(
    s: &CachingSession,
    keyspace: &str,
    rs: RunSettings,
) -> Result<OpOutput, OpError> {
    let rows = rows_of(
        s,
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
        vec![Some(CqlValue::Text(keyspace.to_string()))],
        rs,
    )
    .await?;
    let mut names: Vec<String> = rows.iter().map(|r| text(r, 0)).collect();
    names.sort();
    let list: Vec<Value> = names
        .into_iter()
        .map(|n| serde_json::json!({"table_schema": keyspace, "table_name": n, "table_type": "BASE TABLE"}))
        .collect();
    Ok(OpOutput {
        row_count: list.len() as u64,
        rows_json: Value::Array(list).to_string(),
        ..OpOutput::default()
    })
}
