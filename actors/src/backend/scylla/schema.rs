//! Table descriptions of a Scylla client, read from `system_schema.columns`,
//! `system_schema.indexes` and `system_schema.types`, and cached with a time to live. Every
//! identifier a caller sends is found here before it reaches CQL (then double-quoted), and every
//! value is converted with the column's type.
//!
//! The structured routes address the client's own keyspace only; raw CQL may name any.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::types::CqlType;

/// What part of the primary key a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    PartitionKey,
    Clustering,
    Static,
    Regular,
}

impl ColumnKind {
    pub fn parse(kind: &str) -> Option<ColumnKind> {
        Some(match kind {
            "partition_key" => ColumnKind::PartitionKey,
            "clustering" => ColumnKind::Clustering,
            "static" => ColumnKind::Static,
            "regular" => ColumnKind::Regular,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnKind::PartitionKey => "partition_key",
            ColumnKind::Clustering => "clustering",
            ColumnKind::Static => "static",
            ColumnKind::Regular => "regular",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// Position within the partition key or the clustering key; -1 otherwise.
    pub position: i32,
    pub ty: CqlType,
    /// The type as the catalog writes it (`frozen<list<int>>`), for display.
    pub type_text: String,
    /// A clustering column stored in descending order.
    pub descending: bool,
}

/// How a secondary index lets a column be filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// A global index on the column's value: `col = ?` without the partition key.
    Global,
    /// A local index: `col = ?` once the partition key is given.
    Local,
    /// An index on a collection's values: `col CONTAINS ?`.
    Values,
    /// `keys(col)`, `entries(col)`, `full(col)`: not used by the structured routes.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub column: String,
    pub kind: IndexKind,
}

impl Index {
    /// Reads `system_schema.indexes` (`options['target']`, and its `kind`) into the column it
    /// serves and how. `None` for targets the structured routes cannot use.
    pub fn from_target(name: &str, target: &str) -> Option<Index> {
        let t = target.trim();
        let (column, kind) = if t.starts_with('{') {
            // A local index: {"pk":["p"],"ck":["v"]}.
            let v: serde_json::Value = serde_json::from_str(t).ok()?;
            let col = v.get("ck")?.as_array()?.first()?.as_str()?.to_string();
            (col, IndexKind::Local)
        } else if let Some((f, rest)) = t.split_once('(') {
            let col = rest.strip_suffix(')')?.to_string();
            let kind = match f {
                "values" => IndexKind::Values,
                _ => IndexKind::Other,
            };
            (col, kind)
        } else {
            (t.to_string(), IndexKind::Global)
        };
        let column = match column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => column,
        };
        Some(Index {
            name: name.to_string(),
            column,
            kind,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub keyspace: String,
    pub name: String,
    /// Partition key columns in key order, then clustering columns in key order, then static
    /// and regular columns by name.
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
}

impl TableInfo {
    /// Builds a description, ordering the columns by their role and position.
    pub fn new(keyspace: &str, name: &str, mut columns: Vec<Column>, indexes: Vec<Index>) -> Self {
        let rank = |k: ColumnKind| match k {
            ColumnKind::PartitionKey => 0,
            ColumnKind::Clustering => 1,
            ColumnKind::Static => 2,
            ColumnKind::Regular => 3,
        };
        columns.sort_by(|a, b| {
            (rank(a.kind), a.position, &a.name).cmp(&(rank(b.kind), b.position, &b.name))
        });
        TableInfo {
            keyspace: keyspace.to_string(),
            name: name.to_string(),
            columns,
            indexes,
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn partition_key(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::PartitionKey)
    }

    pub fn clustering(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Clustering)
    }

    /// Partition key then clustering columns.
    pub fn primary_key(&self) -> impl Iterator<Item = &Column> {
        self.columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering))
    }

    /// How `column` is indexed, the most useful index first.
    pub fn index_of(&self, column: &str) -> Option<IndexKind> {
        let kinds: Vec<IndexKind> = self
            .indexes
            .iter()
            .filter(|i| i.column == column)
            .map(|i| i.kind)
            .collect();
        [
            IndexKind::Global,
            IndexKind::Local,
            IndexKind::Values,
            IndexKind::Other,
        ]
        .into_iter()
        .find(|k| kinds.contains(k))
    }

    /// Whether the table has counter columns (its writes are updates only).
    pub fn has_counters(&self) -> bool {
        self.columns.iter().any(|c| c.ty == CqlType::Counter)
    }

    /// `"keyspace"."table"`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote(&self.keyspace), quote(&self.name))
    }
}

/// A CQL identifier, double-quoted (a `"` inside is doubled). Only names read from the catalog
/// are ever quoted into a statement.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Keyspaces the structured routes never address.
pub fn is_system_keyspace(ks: &str) -> bool {
    ks.starts_with("system") || ks == "audit"
}

/// Cached table descriptions (keyed by table name in the client's keyspace), with a TTL so DDL
/// made elsewhere is seen.
#[derive(Debug, Clone)]
pub struct SchemaCache {
    ttl: Duration,
    tables: HashMap<String, (Instant, Arc<TableInfo>)>,
}

impl SchemaCache {
    pub fn new(ttl: Duration) -> Self {
        SchemaCache {
            ttl,
            tables: HashMap::new(),
        }
    }

    pub fn get(&self, table: &str, now: Instant) -> Option<Arc<TableInfo>> {
        self.tables
            .get(table)
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .map(|(_, t)| t.clone())
    }

    pub fn age(&self, table: &str, now: Instant) -> Option<Duration> {
        self.tables
            .get(table)
            .map(|(at, _)| now.duration_since(*at))
    }

    pub fn insert(&mut self, info: Arc<TableInfo>, now: Instant) {
        // Misses are not cached, so callers cannot grow this with made-up names; a keyspace with
        // very many tables starts over rather than grow without bound.
        if self.tables.len() >= 10_000 {
            self.tables.clear();
        }
        self.tables.insert(info.name.clone(), (now, info));
    }

    pub fn clear(&mut self) {
        self.tables.clear();
    }
}

/// The `/schema/columns` rows of a table.
pub fn describe(info: &TableInfo) -> Vec<serde_json::Value> {
    info.columns
        .iter()
        .map(|c| {
            serde_json::json!({
                "column_name": c.name,
                "data_type": c.type_text,
                "column_default": null,
                "is_nullable": !matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering),
                "is_primary_key": matches!(c.kind, ColumnKind::PartitionKey | ColumnKind::Clustering),
                "kind": c.kind.as_str(),
                "position": c.position,
                "clustering_order": (c.kind == ColumnKind::Clustering)
                    .then_some(if c.descending { "desc" } else { "asc" }),
                "indexed": info.index_of(&c.name).is_some(),
            })
        })
        .collect()
}
