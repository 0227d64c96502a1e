//! The per-client schema cache: what tables exist and what their columns are, read from the live
//! catalog. Every identifier a caller sends is checked against it before it reaches SQL, and every
//! bound value is converted with the column's real type.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::GenericClient;

use super::functions::FunctionSet;
use crate::ops::TableRef;

/// Schemas callers may never address through the structured routes.
pub(crate) const HIDDEN_SCHEMAS: &[&str] = &["pg_catalog", "information_schema", "pg_toast"];

/// How a column's values are written as PostgreSQL text input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// json / jsonb: every JSON value is stored as its serialisation.
    Json,
    /// An array type; `elem_json` says whether its elements are json/jsonb.
    Array { elem_json: bool },
    /// Anything else: scalars go through the type's input function.
    Scalar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// The type as SQL (`integer`, `character varying(20)`, `text[]`), for display.
    pub data_type: String,
    pub kind: ValueKind,
    pub nullable: bool,
    pub default: Option<String>,
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    /// `r` table, `v` view, `m` materialized view, `f` foreign table, `p` partitioned table.
    pub relkind: char,
    pub columns: Vec<ColumnInfo>,
    /// Primary key columns in key order.
    pub primary_key: Vec<String>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// Cached table and function descriptions with a time to live, so DDL made outside Athena is
/// picked up.
#[derive(Debug, Clone)]
pub struct SchemaCache {
    ttl: Duration,
    tables: HashMap<TableRef, (Instant, Arc<TableInfo>)>,
    /// Functions by the name callers use, each with every callable version.
    functions: HashMap<TableRef, (Instant, Arc<FunctionSet>)>,
}

impl SchemaCache {
    pub fn new(ttl: Duration) -> Self {
        SchemaCache {
            ttl,
            tables: HashMap::new(),
            functions: HashMap::new(),
        }
    }

    pub fn function(&self, name: &TableRef, now: Instant) -> Option<Arc<FunctionSet>> {
        self.functions
            .get(name)
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .map(|(_, f)| f.clone())
    }

    /// How long ago the function's description was read, if it is cached.
    pub fn function_age(&self, name: &TableRef, now: Instant) -> Option<Duration> {
        self.functions
            .get(name)
            .map(|(at, _)| now.duration_since(*at))
    }

    pub fn insert_function(&mut self, name: TableRef, set: Arc<FunctionSet>, now: Instant) {
        // Bounded like tables: misses are not cached, so only existing names are kept.
        if self.functions.len() >= 10_000 {
            self.functions.clear();
        }
        self.functions.insert(name, (now, set));
    }

    pub fn get(&self, table: &TableRef, now: Instant) -> Option<Arc<TableInfo>> {
        self.tables
            .get(table)
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .map(|(_, t)| t.clone())
    }

    /// How long ago the table's description was read, if it is cached.
    pub fn age(&self, table: &TableRef, now: Instant) -> Option<Duration> {
        self.tables
            .get(table)
            .map(|(at, _)| now.duration_since(*at))
    }

    pub fn insert(&mut self, table: TableRef, info: Arc<TableInfo>, now: Instant) {
        // Bound the cache: callers cannot grow it with names that do not exist (misses are not
        // cached), but a database with very many tables could; start over rather than grow.
        if self.tables.len() >= 10_000 {
            self.tables.clear();
        }
        self.tables.insert(table, (now, info));
    }

    pub fn clear(&mut self) {
        self.tables.clear();
        self.functions.clear();
    }
}

const FIND_TABLE: &str = "\
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text \
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
WHERE c.relname = $1 AND c.relkind IN ('r','v','m','f','p') \
  AND (($2::text IS NULL AND n.nspname = ANY(pg_catalog.current_schemas(false))) OR n.nspname = $2::text) \
  AND n.nspname <> ALL($3::text[]) \
ORDER BY pg_catalog.array_position(pg_catalog.current_schemas(false), n.nspname::name) NULLS LAST \
LIMIT 1";

const TABLE_COLUMNS: &str = "\
SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), \
       t.typcategory::text, t.typname::text, coalesce(et.typname::text, ''), \
       NOT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), \
       coalesce(pk.pos, 0)::int4 \
FROM pg_catalog.pg_attribute a \
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
LEFT JOIN pg_catalog.pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
LEFT JOIN LATERAL ( \
    SELECT k.ord::int4 AS pos FROM pg_catalog.pg_index i, \
           unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
    WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum) pk ON true \
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
ORDER BY a.attnum";

const LIST_TABLES: &str = "\
SELECT coalesce(json_agg(json_build_object('table_schema', n.nspname, 'table_name', c.relname, \
       'table_type', CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
       WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'BASE TABLE' END) ORDER BY n.nspname, c.relname), '[]')::text, \
       count(*) \
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
WHERE c.relkind IN ('r','v','m','f','p') AND NOT c.relispartition \
  AND n.nspname <> ALL($1::text[]) AND n.nspname NOT LIKE 'pg\\_temp%' AND n.nspname NOT LIKE 'pg\\_toast%'";

/// Reads one table's description, or `None` when no visible table has that name.
pub async fn load_table<C: GenericClient>(
    client: &C,
    table: &TableRef,
) -> Result<Option<TableInfo>, tokio_postgres::Error> {
    // Names PostgreSQL cannot hold (NUL bytes, more than 63 bytes) name no table.
    let impossible = |n: &str| n.is_empty() || n.len() > 63 || n.contains('\0');
    if impossible(&table.name) || table.schema.as_deref().is_some_and(impossible) {
        return Ok(None);
    }
    let hidden: Vec<&str> = HIDDEN_SCHEMAS.to_vec();
    let find = client.prepare_typed(FIND_TABLE, &[]).await?;
    let Some(row) = client
        .query_opt(&find, &[&table.name, &table.schema, &hidden])
        .await?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    let schema: String = row.get(1);
    let name: String = row.get(2);
    let relkind: String = row.get(3);
    let mut info = columns_of(client, oid).await?;
    info.schema = schema;
    info.name = name;
    info.relkind = relkind.chars().next().unwrap_or('r');
    Ok(Some(info))
}

/// The columns of a relation (a table, or the relation of a composite type) by its oid; `None`
/// when it has no columns left to show.
pub async fn describe_relation<C: GenericClient>(
    client: &C,
    oid: u32,
) -> Result<Option<TableInfo>, tokio_postgres::Error> {
    let info = columns_of(client, oid).await?;
    Ok((!info.columns.is_empty()).then_some(info))
}

async fn columns_of<C: GenericClient>(
    client: &C,
    oid: u32,
) -> Result<TableInfo, tokio_postgres::Error> {
    let rows = client.query(TABLE_COLUMNS, &[&oid]).await?;
    let mut columns = Vec::with_capacity(rows.len());
    let mut pk: Vec<(i32, String)> = Vec::new();
    for r in rows {
        let col_name: String = r.get(0);
        let category: String = r.get(2);
        let typname: String = r.get(3);
        let elem: String = r.get(4);
        let pk_pos: i32 = r.get(7);
        let kind = if category == "A" {
            ValueKind::Array {
                elem_json: elem == "json" || elem == "jsonb",
            }
        } else if typname == "json" || typname == "jsonb" {
            ValueKind::Json
        } else {
            ValueKind::Scalar
        };
        if pk_pos > 0 {
            pk.push((pk_pos, col_name.clone()));
        }
        columns.push(ColumnInfo {
            name: col_name,
            data_type: r.get(1),
            kind,
            nullable: r.get(5),
            default: r.get(6),
            primary_key: pk_pos > 0,
        });
    }
    pk.sort();
    Ok(TableInfo {
        schema: String::new(),
        name: String::new(),
        relkind: 'r',
        columns,
        primary_key: pk.into_iter().map(|(_, n)| n).collect(),
    })
}

/// Lists every visible table as a JSON array rendered by the database.
pub async fn list_tables<C: GenericClient>(
    client: &C,
) -> Result<(String, i64), tokio_postgres::Error> {
    let hidden: Vec<&str> = HIDDEN_SCHEMAS.to_vec();
    let row = client.query_one(LIST_TABLES, &[&hidden]).await?;
    Ok((row.get(0), row.get(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Arc<TableInfo> {
        Arc::new(TableInfo {
            schema: "public".into(),
            name: "t".into(),
            relkind: 'r',
            columns: vec![],
            primary_key: vec![],
        })
    }

    #[test]
    fn cache_entries_expire_after_ttl() {
        let mut c = SchemaCache::new(Duration::from_secs(10));
        let t = TableRef {
            schema: None,
            name: "t".into(),
        };
        let now = Instant::now();
        c.insert(t.clone(), info(), now);
        assert!(c.get(&t, now + Duration::from_secs(9)).is_some());
        assert!(c.get(&t, now + Duration::from_secs(10)).is_none());
    }
}
