//! Inserts, updates and deletes translated to CQL, as pure functions.
//!
//! CQL writes are upserts by nature: an `INSERT` of an existing primary key replaces the columns
//! it names, and an `UPDATE` of a missing row creates it. The gateway keeps those semantics and
//! documents them rather than paying a lightweight transaction on every write; `on_conflict` with
//! ignore asks for one (`IF NOT EXISTS`), and its answer lists only the rows that were inserted.
//!
//! * insert: one `INSERT` per row, every value bound with its column's type; several rows run as
//!   one logged batch (all or none). Each row needs its whole primary key. Counter tables are
//!   written with update.
//! * update and delete: one row, named by its whole primary key with `eq` conditions (or
//!   `resource_id`); anything else is [`OpError::FullPrimaryKeyRequired`]. Counter columns are
//!   incremented (`"c" = "c" + ?`) by the value given.
//!
//! CQL returns no rows from writes; the answer echoes what was written (the key and the values).

use scylla::value::CqlValue;
use serde_json::{Map, Value};

use super::plan::Statement;
use super::restrict::{column, flatten, operand, unsupported};
use super::schema::{quote, Column, TableInfo};
use super::types::CqlType;
use super::values;
use crate::ops::{
    Columns, Delete, DeleteTarget, Filter, FilterValue, Insert, OnConflict, Op, OpError, Update,
};

/// A write: its statements (a batch when several) and the rows it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct WritePlan {
    pub statements: Vec<Statement>,
    /// Run the statements as one logged batch.
    pub batch: bool,
    /// Lightweight transactions: each answers `[applied]`; rows not applied are left out.
    pub conditional: bool,
    /// The row each statement reports, already as JSON.
    pub rows: Vec<Map<String, Value>>,
}

fn invalid(col: &Column, reason: String) -> OpError {
    OpError::InvalidValue {
        column: col.name.clone(),
        reason,
    }
}

fn bind(col: &Column, v: &Value) -> Result<Option<CqlValue>, OpError> {
    values::from_json(&col.ty, v).map_err(|r| invalid(col, r))
}

fn key_names(info: &TableInfo) -> String {
    info.primary_key()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn missing_key(info: &TableInfo, what: &str, missing: &[&str]) -> OpError {
    OpError::FullPrimaryKeyRequired(format!(
        "{what} on {} needs its whole primary key ({}); missing: {}",
        info.name,
        key_names(info),
        missing.join(", ")
    ))
}

/// The row as the answer shows it, filtered by `returning`.
fn echo(
    written: Vec<(&Column, Option<CqlValue>)>,
    returning: &Columns,
) -> Result<Map<String, Value>, OpError> {
    let all: Map<String, Value> = written
        .iter()
        .map(|(c, v)| (c.name.clone(), values::opt_to_json(v.as_ref())))
        .collect();
    Ok(match returning {
        Columns::All => all,
        Columns::List(list) => {
            let mut out = Map::new();
            for s in list {
                if s.column == "*" && s.key.is_none() {
                    out.extend(all.clone());
                } else {
                    out.insert(
                        s.key().to_string(),
                        all.get(&s.column).cloned().unwrap_or(Value::Null),
                    );
                }
            }
            out
        }
    })
}

/// Ordering the rows a write returns is PostgREST's; a ScyllaDB write returns the rows it was
/// given, so an order is refused rather than ignored.
fn no_order(order: &[crate::ops::Order]) -> Result<(), OpError> {
    if order.is_empty() {
        Ok(())
    } else {
        Err(unsupported("ordering the rows a write returns"))
    }
}

pub fn plan_insert(i: &Insert, info: &TableInfo) -> Result<WritePlan, OpError> {
    no_order(&i.order)?;
    if info.has_counters() {
        return Err(unsupported(
            "insert into a counter table: counters are written with update (they are incremented)",
        ));
    }
    let conditional =
        match &i.on_conflict {
            OnConflict::Error => false,
            OnConflict::Ignore { target } | OnConflict::Update { target, set: None } => {
                let pk: Vec<&str> = info.primary_key().map(|c| c.name.as_str()).collect();
                let on_key =
                    target.len() == pk.len() && target.iter().all(|t| pk.contains(&t.as_str()));
                if !target.is_empty() && !on_key {
                    return Err(unsupported(&format!(
                        "on_conflict on {}: a Scylla row conflicts only on its primary key ({})",
                        target.join(", "),
                        pk.join(", ")
                    )));
                }
                matches!(i.on_conflict, OnConflict::Ignore { .. })
            }
            OnConflict::Update { set: Some(_), .. } => return Err(unsupported(
                "on_conflict with update_body: a CQL insert already replaces the row's columns; \
                 send the values to keep in insert_body",
            )),
        };
    if i.rows.is_empty() {
        return Err(OpError::InvalidRequest(
            "insert needs at least one row".into(),
        ));
    }
    let mut statements = Vec::with_capacity(i.rows.len());
    let mut rows = Vec::with_capacity(i.rows.len());
    for row in &i.rows {
        let names: Vec<&String> = if i.columns.is_empty() {
            row.keys().collect()
        } else {
            i.columns
                .iter()
                .filter(|c| i.default_to_null || row.contains_key(*c))
                .collect()
        };
        let mut written: Vec<(&Column, Option<CqlValue>)> = Vec::with_capacity(names.len());
        for n in names {
            let col = column(info, n)?;
            let v = bind(col, row.get(n.as_str()).unwrap_or(&Value::Null))?;
            written.push((col, v));
        }
        let missing: Vec<&str> = info
            .primary_key()
            .filter(|k| !written.iter().any(|(c, v)| c.name == k.name && v.is_some()))
            .map(|k| k.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(missing_key(info, "insert", &missing));
        }
        let cols: Vec<String> = written.iter().map(|(c, _)| quote(&c.name)).collect();
        let marks = vec!["?"; cols.len()].join(", ");
        statements.push(Statement {
            cql: format!(
                "INSERT INTO {} ({}) VALUES ({marks}){}",
                info.qualified(),
                cols.join(", "),
                if conditional { " IF NOT EXISTS" } else { "" }
            ),
            values: written.iter().map(|(_, v)| v.clone()).collect(),
        });
        rows.push(echo(written, &i.returning)?);
    }
    Ok(WritePlan {
        batch: statements.len() > 1 && !conditional,
        conditional,
        statements,
        rows,
    })
}

/// The whole primary key from `eq` conditions (and `resource_id`), in key order.
fn key_values<'a>(
    info: &'a TableInfo,
    filter: Option<&Filter>,
    resource_id: Option<&Value>,
    what: &str,
) -> Result<Vec<(&'a Column, CqlValue)>, OpError> {
    let mut given: Vec<(&Column, CqlValue)> = Vec::new();
    let put = |col: &'a Column, v: CqlValue, given: &mut Vec<(&'a Column, CqlValue)>| {
        if let Some((_, old)) = given.iter().find(|(c, _)| c.name == col.name) {
            if *old != v {
                return Err(OpError::InvalidFilter(format!(
                    "{}: given two different values",
                    col.name
                )));
            }
            return Ok(());
        }
        given.push((col, v));
        Ok(())
    };
    if let Some(f) = filter {
        let mut conds = Vec::new();
        flatten(f, &mut conds)?;
        for c in conds {
            let Filter::Cond {
                column: name,
                op,
                value,
            } = c
            else {
                continue;
            };
            let col = column(info, name)?;
            if *op != Op::Eq
                || !matches!(
                    col.kind,
                    super::schema::ColumnKind::PartitionKey | super::schema::ColumnKind::Clustering
                )
            {
                return Err(OpError::FullPrimaryKeyRequired(format!(
                    "{what} on a Scylla client selects one row by its primary key ({}) with eq \
                     conditions only; {name} {} is not one of them",
                    key_names(info),
                    op.name()
                )));
            }
            let v = match value {
                FilterValue::Json(v) => operand(col, &col.ty, v)?,
                FilterValue::Text(s) => values::from_text(&col.ty, s)
                    .map_err(|r| invalid(col, r))?
                    .ok_or_else(|| invalid(col, "the key cannot be null".into()))?,
                FilterValue::List(_) => {
                    return Err(OpError::InvalidFilter(format!(
                        "{name}: eq takes one value"
                    )))
                }
            };
            put(col, v, &mut given)?;
        }
    }
    if let Some(id) = resource_id {
        let pk: Vec<&Column> = info.primary_key().collect();
        match (id, pk.as_slice()) {
            (Value::Object(m), _) => {
                for (k, v) in m {
                    let col = column(info, k)?;
                    if !pk.iter().any(|c| c.name == col.name) {
                        return Err(OpError::InvalidRequest(format!(
                            "resource_id names {k}, which is not part of the primary key ({})",
                            key_names(info)
                        )));
                    }
                    put(col, operand(col, &col.ty, v)?, &mut given)?;
                }
            }
            (v, [only]) => put(only, operand(only, &only.ty, v)?, &mut given)?,
            (_, _) => {
                return Err(OpError::InvalidRequest(format!(
                    "resource_id of {} must be an object of its key columns ({})",
                    info.name,
                    key_names(info)
                )))
            }
        }
    }
    let missing: Vec<&str> = info
        .primary_key()
        .filter(|k| !given.iter().any(|(c, _)| c.name == k.name))
        .map(|k| k.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(missing_key(info, what, &missing));
    }
    let mut ordered = Vec::with_capacity(given.len());
    for k in info.primary_key() {
        if let Some(i) = given.iter().position(|(c, _)| c.name == k.name) {
            ordered.push(given.swap_remove(i));
        }
    }
    Ok(ordered)
}

fn key_where(key: &[(&Column, CqlValue)], values: &mut Vec<Option<CqlValue>>) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|(c, _)| format!("{} = ?", quote(&c.name)))
        .collect();
    values.extend(key.iter().map(|(_, v)| Some(v.clone())));
    parts.join(" AND ")
}

pub fn plan_update(u: &Update, info: &TableInfo) -> Result<WritePlan, OpError> {
    no_order(&u.order)?;
    if u.set.is_empty() {
        return Err(OpError::InvalidRequest(
            "update needs at least one column to set".into(),
        ));
    }
    let key = key_values(info, Some(&u.filter), None, "update")?;
    let mut sets = Vec::with_capacity(u.set.len());
    let mut values = Vec::with_capacity(u.set.len() + key.len());
    let mut written: Vec<(&Column, Option<CqlValue>)> =
        key.iter().map(|(c, v)| (*c, Some(v.clone()))).collect();
    for (name, v) in &u.set {
        let col = column(info, name)?;
        if key.iter().any(|(k, _)| k.name == col.name) {
            return Err(OpError::InvalidRequest(format!(
                "{name} is part of the primary key and cannot be updated"
            )));
        }
        let q = quote(&col.name);
        let bound = bind(col, v)?;
        if col.ty == CqlType::Counter {
            if bound.is_none() {
                return Err(invalid(
                    col,
                    "a counter is incremented by a number, not null".into(),
                ));
            }
            sets.push(format!("{q} = {q} + ?"));
        } else {
            sets.push(format!("{q} = ?"));
        }
        values.push(bound.clone());
        written.push((col, bound));
    }
    let where_ = key_where(&key, &mut values);
    Ok(WritePlan {
        statements: vec![Statement {
            cql: format!(
                "UPDATE {} SET {} WHERE {where_}",
                info.qualified(),
                sets.join(", ")
            ),
            values,
        }],
        batch: false,
        conditional: false,
        rows: vec![echo(written, &u.returning)?],
    })
}

pub fn plan_delete(d: &Delete, info: &TableInfo) -> Result<WritePlan, OpError> {
    no_order(&d.order)?;
    let (id, filter) = match &d.target {
        DeleteTarget::ResourceId(v) => (Some(v), None),
        DeleteTarget::Filter(f) => (None, Some(f)),
        DeleteTarget::Both(v, f) => (Some(v), Some(f)),
    };
    let key = key_values(info, filter, id, "delete")?;
    let mut values = Vec::with_capacity(key.len());
    let where_ = key_where(&key, &mut values);
    let written = key.iter().map(|(c, v)| (*c, Some(v.clone()))).collect();
    Ok(WritePlan {
        statements: vec![Statement {
            cql: format!("DELETE FROM {} WHERE {where_}", info.qualified()),
            values,
        }],
        batch: false,
        conditional: false,
        rows: vec![echo(written, &d.returning)?],
    })
}

/// The plan of a write that must touch exactly one existing row: an update or delete runs as a
/// lightweight transaction (`IF EXISTS`), so a missing row is reported (no row applied) instead
/// of being created (update) or silently absent (delete). A one-row insert is unchanged.
pub fn exactly_one(mut plan: WritePlan, info: &TableInfo) -> Result<WritePlan, OpError> {
    if plan.statements.len() != 1 {
        return Err(OpError::NotOneRow {
            rows: plan.statements.len() as u64,
        });
    }
    let st = &mut plan.statements[0];
    if st.cql.starts_with("UPDATE ") || st.cql.starts_with("DELETE ") {
        if info.has_counters() {
            return Err(unsupported(
                "a single-row write on a counter table: counters cannot be written conditionally",
            ));
        }
        st.cql.push_str(" IF EXISTS");
        plan.conditional = true;
    }
    Ok(plan)
}
