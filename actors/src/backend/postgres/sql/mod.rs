//! Translation of structured operations into PostgreSQL statements.
//!
//! Pure functions: an [`Operation`] plus the [`TableInfo`] read from the live catalog go in, SQL
//! text plus bound parameters come out. Identifiers come only from the catalog (never from the
//! caller's spelling) and are double-quoted; values are only ever parameters (JSON keys of a column
//! selection included). Rows are rendered as JSON text by PostgreSQL itself: one `row_to_json`
//! (or `json_build_object`) value per row, which the executor joins into an array, or, when a total
//! count is asked for, one `json_agg` array. The gateway splices those bytes into its envelope.

mod builder;
mod rpc;

use serde_json::{Map, Value};

use builder::Builder;
pub use builder::{check_param_count, MAX_PARAMS};
pub use rpc::plan_rpc;

use super::params::{json_to_text, TextParam};
use super::schema::{ColumnInfo, TableInfo};
use crate::ops::{
    Delete, DeleteTarget, Fetch, Filter, FilterValue, Insert, OnConflict, Op, OpError, Update,
};

/// What a statement's result looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One row per result row, its only column the row as JSON text.
    Rows,
    /// One row: `(rows_json text, row_count int8, total int8)`.
    AggregateWithTotal,
}

/// A statement ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub sql: String,
    pub params: Vec<TextParam>,
    pub shape: Shape,
}

/// Quotes an identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table_sql(t: &TableInfo) -> String {
    format!("{}.{}", ident(&t.schema), ident(&t.name))
}

/// The alias every statement gives its table; whole-row references use `r.*`, which cannot be
/// mistaken for a column named `r`.
pub(crate) const ALIAS: &str = "r";

pub fn plan_fetch(f: &Fetch, t: &TableInfo) -> Result<Plan, OpError> {
    if f.page.is_some() {
        return Err(OpError::InvalidRequest(
            "page_state is a cursor of clients that page by cursor; page this client with \
             offset or current_page"
                .into(),
        ));
    }
    let mut b = Builder::new(t);
    let filter = match &f.filter {
        Some(filter) => format!(" WHERE {}", b.filter_sql(filter)?),
        None => String::new(),
    };
    let order = b.order_sql(&f.order)?;
    let tbl = table_sql(t);
    if f.count {
        // The total needs the rows and the count in one answer, even when the page is empty. Each
        // row is rendered as in the plain case and the page aggregated in its order.
        let row = b.json_row(&f.columns)?;
        let limit = b.param(Some(f.limit.to_string()));
        let offset = b.param(Some(f.offset.to_string()));
        b.sql = format!(
            "SELECT coalesce(json_agg(p.j), '[]'), count(*), (SELECT count(*) FROM {tbl} AS {ALIAS}{filter}) FROM (SELECT {row} AS j FROM {tbl} AS {ALIAS}{filter}{order} LIMIT {limit} OFFSET {offset}) p"
        );
        return b.finish(Shape::AggregateWithTotal);
    }
    let row = b.json_row(&f.columns)?;
    let limit = b.param(Some(f.limit.to_string()));
    // No OFFSET node at all for the first page, the common case.
    let offset = match f.offset {
        0 => String::new(),
        n => format!(" OFFSET {}", b.param(Some(n.to_string()))),
    };
    b.sql = format!("SELECT {row} FROM {tbl} AS {ALIAS}{filter}{order} LIMIT {limit}{offset}");
    b.finish(Shape::Rows)
}

pub fn plan_insert(ins: &Insert, t: &TableInfo) -> Result<Plan, OpError> {
    let mut b = Builder::new(t);
    if ins.rows.is_empty() {
        return Err(OpError::InvalidRequest("insert_body has no rows".into()));
    }
    // The caller's column list, or every column the rows name in first-seen order.
    let mut names: Vec<&str> = Vec::new();
    if ins.columns.is_empty() {
        for row in &ins.rows {
            for k in row.keys() {
                if !names.contains(&k.as_str()) {
                    names.push(k);
                }
            }
        }
    } else {
        for k in &ins.columns {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    let mut cols = Vec::with_capacity(names.len());
    for n in &names {
        cols.push(b.column(n)?);
    }
    let tbl = table_sql(t);
    let values = if cols.is_empty() {
        if ins.rows.len() > 1 {
            return Err(OpError::InvalidRequest("rows name no columns".into()));
        }
        " DEFAULT VALUES".to_string()
    } else {
        let mut tuples = Vec::with_capacity(ins.rows.len());
        for row in &ins.rows {
            let mut vals = Vec::with_capacity(cols.len());
            for col in &cols {
                vals.push(match row.get(&col.name) {
                    Some(v) => {
                        let text = json_to_text(v, col)?;
                        b.param(text)
                    }
                    None if ins.default_to_null => "NULL".into(),
                    None => "DEFAULT".into(),
                });
            }
            tuples.push(format!("({})", vals.join(", ")));
        }
        let col_list: Vec<String> = cols.iter().map(|c| ident(&c.name)).collect();
        format!(" ({}) VALUES {}", col_list.join(", "), tuples.join(", "))
    };
    let conflict = conflict_sql(&mut b, &ins.on_conflict, &cols)?;
    let dml = format!("INSERT INTO {tbl} AS {ALIAS}{values}{conflict}");
    returning(b, dml, &ins.returning, &ins.order)
}

/// A write statement returning its rows as JSON: `… RETURNING <row>`, or, when they are to be
/// ordered, the written rows in a CTE selected in that order (as PostgREST does).
fn returning(
    mut b: Builder<'_>,
    dml: String,
    cols: &crate::ops::Columns,
    order: &[crate::ops::Order],
) -> Result<Plan, OpError> {
    let ret = b.json_row(cols)?;
    b.sql = if order.is_empty() {
        format!("{dml} RETURNING {ret}")
    } else {
        let order = b.order_sql(order)?;
        format!("WITH w AS ({dml} RETURNING {ALIAS}.*) SELECT {ret} FROM w AS {ALIAS}{order}")
    };
    b.finish(Shape::Rows)
}

fn conflict_sql(
    b: &mut Builder<'_>,
    on_conflict: &OnConflict,
    inserted: &[&ColumnInfo],
) -> Result<String, OpError> {
    let target_sql = |b: &Builder<'_>,
                      target: &[String],
                      need: bool|
     -> Result<(String, Vec<String>), OpError> {
        let names: Vec<String> = if target.is_empty() {
            b.table.primary_key.clone()
        } else {
            target.to_vec()
        };
        if names.is_empty() {
            return if need {
                Err(OpError::NoPrimaryKey {
                    table: b.table.display_name(),
                })
            } else {
                Ok((String::new(), names))
            };
        }
        let mut q = Vec::with_capacity(names.len());
        for n in &names {
            q.push(ident(&b.column(n)?.name));
        }
        Ok((format!(" ({})", q.join(", ")), names))
    };
    match on_conflict {
        OnConflict::Error => Ok(String::new()),
        OnConflict::Ignore { target } => {
            let (t, _) = target_sql(b, target, false)?;
            Ok(format!(" ON CONFLICT{t} DO NOTHING"))
        }
        OnConflict::Update { target, set } => {
            let (t, names) = target_sql(b, target, true)?;
            let assignments: Vec<String> = match set {
                Some(map) => set_list(b, map)?,
                None => inserted
                    .iter()
                    .filter(|c| !names.contains(&c.name))
                    .map(|c| format!("{0} = EXCLUDED.{0}", ident(&c.name)))
                    .collect(),
            };
            if assignments.is_empty() {
                Ok(format!(" ON CONFLICT{t} DO NOTHING"))
            } else {
                Ok(format!(
                    " ON CONFLICT{t} DO UPDATE SET {}",
                    assignments.join(", ")
                ))
            }
        }
    }
}

fn set_list(b: &mut Builder<'_>, map: &Map<String, Value>) -> Result<Vec<String>, OpError> {
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let col = b.column(k)?;
        let text = json_to_text(v, col)?;
        out.push(format!("{} = {}", ident(&col.name), b.param(text)));
    }
    Ok(out)
}

/// Whether a filter would select every row (an empty AND renders as `true`). Update and delete
/// refuse such filters here too, whatever edge built the operation.
fn selects_everything(f: &Filter) -> bool {
    match f {
        Filter::And(parts) => parts.iter().all(selects_everything),
        Filter::Cond { .. } | Filter::Or(_) | Filter::Not(_) => false,
    }
}

fn require_filter(f: &Filter, what: &str) -> Result<(), OpError> {
    if selects_everything(f) {
        return Err(OpError::MissingFilter(format!(
            "{what} needs at least one condition"
        )));
    }
    Ok(())
}

pub fn plan_update(u: &Update, t: &TableInfo) -> Result<Plan, OpError> {
    require_filter(&u.filter, "update")?;
    let mut b = Builder::new(t);
    if u.set.is_empty() {
        return Err(OpError::InvalidRequest(
            "update_body names no columns".into(),
        ));
    }
    let sets = set_list(&mut b, &u.set)?;
    let filter = b.filter_sql(&u.filter)?;
    let tbl = table_sql(t);
    let dml = format!(
        "UPDATE {tbl} AS {ALIAS} SET {} WHERE {filter}",
        sets.join(", ")
    );
    returning(b, dml, &u.returning, &u.order)
}

/// The filter selecting a row by its primary key.
fn resource_filter(id: &Value, t: &TableInfo) -> Result<Filter, OpError> {
    let pk = &t.primary_key;
    if pk.is_empty() {
        return Err(OpError::NoPrimaryKey {
            table: t.display_name(),
        });
    }
    let value_for = |name: &str| -> Result<Value, OpError> {
        match id {
            Value::Object(map) => map.get(name).cloned().ok_or_else(|| OpError::InvalidValue {
                column: name.to_string(),
                reason: "resource_id lacks this primary key column".into(),
            }),
            Value::Null | Value::Array(_) => Err(OpError::InvalidValue {
                column: name.to_string(),
                reason: "resource_id must be a primary key value".into(),
            }),
            scalar if pk.len() == 1 => Ok(scalar.clone()),
            _ => Err(OpError::InvalidValue {
                column: name.to_string(),
                reason: format!("the primary key has {} columns; pass an object", pk.len()),
            }),
        }
    };
    let mut conds = Vec::with_capacity(pk.len());
    for name in pk {
        let v = value_for(name)?;
        if v.is_null() {
            return Err(OpError::InvalidValue {
                column: name.clone(),
                reason: "resource_id cannot be null".into(),
            });
        }
        conds.push(Filter::Cond {
            column: name.clone(),
            op: Op::Eq,
            value: FilterValue::Json(v),
        });
    }
    Ok(Filter::all(conds).expect("primary key is not empty"))
}

pub fn plan_delete(d: &Delete, t: &TableInfo) -> Result<Plan, OpError> {
    let filter = match &d.target {
        DeleteTarget::ResourceId(id) => resource_filter(id, t)?,
        DeleteTarget::Filter(f) => {
            require_filter(f, "delete")?;
            f.clone()
        }
        DeleteTarget::Both(id, f) => Filter::And(vec![resource_filter(id, t)?, f.clone()]),
    };
    let mut b = Builder::new(t);
    let where_sql = b.filter_sql(&filter)?;
    let tbl = table_sql(t);
    let dml = format!("DELETE FROM {tbl} AS {ALIAS} WHERE {where_sql}");
    returning(b, dml, &d.returning, &d.order)
}

#[cfg(test)]
mod tests;
