//! Translation of structured operations into PostgreSQL statements.
//!
//! Pure functions: an [`Operation`] plus the [`TableInfo`] read from the live catalog go in, SQL
//! text plus bound parameters come out. Identifiers come only from the catalog (never from the
//! caller's spelling) and are double-quoted; values are only ever parameters (JSON keys of a column
//! selection included). Rows are rendered as JSON text by PostgreSQL itself: one `row_to_json`
//! (or `json_build_object`) value per row, which the executor joins into an array, or, when a total
//! count is asked for, one `json_agg` array. The gateway splices those bytes into its envelope.

use serde_json::{Map, Value};

use super::params::{json_to_text, text_array_literal, TextParam};
use super::schema::{ColumnInfo, TableInfo, ValueKind};
use crate::ops::{
    Columns, Delete, DeleteTarget, Fetch, Filter, FilterValue, Insert, OnConflict, Op, OpError,
    Order, Update,
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

const AGG: &str = "SELECT coalesce(json_agg(r), '[]')::text, count(*)";

/// The alias every statement gives its table; whole-row references use `r.*`, which cannot be
/// mistaken for a column named `r`.
const ALIAS: &str = "r";

struct Builder<'a> {
    table: &'a TableInfo,
    sql: String,
    params: Vec<TextParam>,
}

impl<'a> Builder<'a> {
    fn new(table: &'a TableInfo) -> Self {
        Builder {
            table,
            sql: String::with_capacity(256),
            params: Vec::new(),
        }
    }

    fn param(&mut self, v: Option<String>) -> String {
        self.params.push(TextParam(v));
        format!("${}", self.params.len())
    }

    fn column(&self, name: &str) -> Result<&'a ColumnInfo, OpError> {
        self.table
            .column(name)
            .ok_or_else(|| OpError::UnknownColumn {
                table: self.table.display_name(),
                column: name.to_string(),
            })
    }

    fn columns_sql(&self, cols: &Columns) -> Result<String, OpError> {
        match cols {
            Columns::All => Ok("*".into()),
            Columns::List(list) if list.is_empty() => Ok("*".into()),
            Columns::List(list) => {
                let mut out = Vec::with_capacity(list.len());
                for c in list {
                    if c == "*" {
                        out.push("*".to_string());
                    } else {
                        out.push(ident(&self.column(c)?.name));
                    }
                }
                Ok(out.join(", "))
            }
        }
    }

    fn filter_sql(&mut self, f: &Filter) -> Result<String, OpError> {
        match f {
            Filter::And(parts) => self.group(parts, " AND ", "true"),
            Filter::Or(parts) => self.group(parts, " OR ", "false"),
            Filter::Not(inner) => Ok(format!("NOT ({})", self.filter_sql(inner)?)),
            Filter::Cond { column, op, value } => {
                let col = self.column(column)?;
                self.condition(col, *op, value)
            }
        }
    }

    fn group(&mut self, parts: &[Filter], sep: &str, empty: &str) -> Result<String, OpError> {
        if parts.is_empty() {
            return Ok(empty.into());
        }
        let mut out = Vec::with_capacity(parts.len());
        for p in parts {
            out.push(self.filter_sql(p)?);
        }
        Ok(format!("({})", out.join(sep)))
    }

    fn condition(
        &mut self,
        col: &ColumnInfo,
        op: Op,
        value: &FilterValue,
    ) -> Result<String, OpError> {
        let c = ident(&col.name);
        let is_null = matches!(value, FilterValue::Json(Value::Null));
        Ok(match op {
            Op::Eq if is_null => format!("{c} IS NULL"),
            Op::Neq if is_null => format!("{c} IS NOT NULL"),
            Op::Eq | Op::Neq | Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                let sym = match op {
                    Op::Eq => "=",
                    Op::Neq => "<>",
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Lt => "<",
                    _ => "<=",
                };
                let text = operand_text(value, col)?;
                if text.is_none() {
                    return Err(invalid(
                        col,
                        &format!("{} cannot compare with null", op.name()),
                    ));
                }
                format!("{c} {sym} {}", self.param(text))
            }
            Op::Like | Op::Ilike => {
                let pattern = match value {
                    FilterValue::Json(Value::String(s)) | FilterValue::Text(s) => s.clone(),
                    _ => return Err(invalid(col, "like and ilike need a string pattern")),
                };
                let kw = if op == Op::Like { "LIKE" } else { "ILIKE" };
                format!("{c}::text {kw} {}::text", self.param(Some(pattern)))
            }
            Op::Is => {
                let word = match value {
                    FilterValue::Json(Value::Null) => "null".to_string(),
                    FilterValue::Json(Value::Bool(b)) => b.to_string(),
                    FilterValue::Json(Value::String(s)) | FilterValue::Text(s) => s.to_lowercase(),
                    _ => return Err(invalid(col, "is takes null, true, false or unknown")),
                };
                let tail = match word.as_str() {
                    "null" => "IS NULL",
                    "not_null" | "notnull" | "not.null" => "IS NOT NULL",
                    "true" => "IS TRUE",
                    "false" => "IS FALSE",
                    "unknown" => "IS UNKNOWN",
                    _ => {
                        return Err(invalid(
                            col,
                            "is takes null, not_null, true, false or unknown",
                        ))
                    }
                };
                format!("{c} {tail}")
            }
            Op::In => {
                if matches!(col.kind, ValueKind::Array { .. }) {
                    return Err(invalid(
                        col,
                        "in is not defined for array columns; use contains",
                    ));
                }
                let literal = match value {
                    FilterValue::List(items) => text_array_literal(items),
                    FilterValue::Json(Value::Array(items)) => {
                        let as_array = ColumnInfo {
                            kind: ValueKind::Array {
                                elem_json: col.kind == ValueKind::Json,
                            },
                            ..col.clone()
                        };
                        json_to_text(&Value::Array(items.clone()), &as_array)?.unwrap_or_default()
                    }
                    FilterValue::Json(Value::String(s)) | FilterValue::Text(s) => {
                        let inner = s.trim().trim_start_matches('(').trim_end_matches(')');
                        let items: Vec<String> =
                            inner.split(',').map(|x| x.trim().to_string()).collect();
                        text_array_literal(&items)
                    }
                    _ => return Err(invalid(col, "in takes a list of values")),
                };
                if literal == "{}" {
                    "false".to_string()
                } else {
                    format!("{c} = ANY({})", self.param(Some(literal)))
                }
            }
            Op::Contains | Op::ContainedBy => {
                let sym = if op == Op::Contains { "@>" } else { "<@" };
                let text = operand_text(value, col)?;
                if text.is_none() {
                    return Err(invalid(col, &format!("{} needs a value", op.name())));
                }
                format!("{c} {sym} {}", self.param(text))
            }
        })
    }

    fn order_sql(&self, order: &[Order]) -> Result<String, OpError> {
        if order.is_empty() {
            return Ok(String::new());
        }
        let mut terms = Vec::with_capacity(order.len());
        for o in order {
            let col = self.column(&o.column)?;
            let mut t = format!(
                "{} {}",
                ident(&col.name),
                if o.descending { "DESC" } else { "ASC" }
            );
            match o.nulls_first {
                Some(true) => t.push_str(" NULLS FIRST"),
                Some(false) => t.push_str(" NULLS LAST"),
                None => {}
            }
            terms.push(t);
        }
        Ok(format!(" ORDER BY {}", terms.join(", ")))
    }

    /// The expression rendering one row of `cols` as JSON text. Every column, in table order, is
    /// `row_to_json(r.*)`; a selection is `json_build_object($k, r."col", …)` with the keys bound
    /// as parameters, each column once, `*` standing for every column in table order.
    fn json_row(&mut self, cols: &Columns) -> Result<String, OpError> {
        let list = match cols {
            Columns::List(list) if !list.is_empty() => list,
            _ => return Ok(format!("row_to_json({ALIAS}.*)::text")),
        };
        let mut chosen: Vec<&'a ColumnInfo> = Vec::with_capacity(list.len());
        for name in list {
            if name == "*" {
                for c in &self.table.columns {
                    if !chosen.iter().any(|x| x.name == c.name) {
                        chosen.push(c);
                    }
                }
            } else {
                let c = self.column(name)?;
                if !chosen.iter().any(|x| x.name == c.name) {
                    chosen.push(c);
                }
            }
        }
        let mut args = Vec::with_capacity(chosen.len());
        for c in chosen {
            let key = self.param(Some(c.name.clone()));
            args.push(format!("{key}::text, {ALIAS}.{}", ident(&c.name)));
        }
        Ok(format!("json_build_object({})::text", args.join(", ")))
    }

    fn finish(self, shape: Shape) -> Result<Plan, OpError> {
        check_param_count(self.params.len())?;
        Ok(Plan {
            sql: self.sql,
            params: self.params,
            shape,
        })
    }
}

/// The PostgreSQL protocol counts parameters in 16 bits.
pub const MAX_PARAMS: usize = u16::MAX as usize;

pub fn check_param_count(n: usize) -> Result<(), OpError> {
    if n > MAX_PARAMS {
        return Err(OpError::LimitExceeded(format!(
            "the statement would need {n} bound values; at most {MAX_PARAMS} fit in one statement"
        )));
    }
    Ok(())
}

fn operand_text(value: &FilterValue, col: &ColumnInfo) -> Result<Option<String>, OpError> {
    match value {
        FilterValue::Json(v) => json_to_text(v, col),
        FilterValue::Text(s) => Ok(Some(s.clone())),
        FilterValue::List(_) => Err(invalid(col, "a list is only valid with in")),
    }
}

fn invalid(col: &ColumnInfo, reason: &str) -> OpError {
    OpError::InvalidValue {
        column: col.name.clone(),
        reason: reason.to_string(),
    }
}

pub fn plan_fetch(f: &Fetch, t: &TableInfo) -> Result<Plan, OpError> {
    let mut b = Builder::new(t);
    let filter = match &f.filter {
        Some(filter) => format!(" WHERE {}", b.filter_sql(filter)?),
        None => String::new(),
    };
    let order = b.order_sql(&f.order)?;
    let tbl = table_sql(t);
    if f.count {
        // The total needs the rows and the count in one answer, even when the page is empty.
        let cols = b.columns_sql(&f.columns)?;
        let limit = b.param(Some(f.limit.to_string()));
        let offset = b.param(Some(f.offset.to_string()));
        b.sql = format!(
            "{AGG}, (SELECT count(*) FROM {tbl}{filter}) FROM (SELECT {cols} FROM {tbl}{filter}{order} LIMIT {limit} OFFSET {offset}) {ALIAS}"
        );
        return b.finish(Shape::AggregateWithTotal);
    }
    let row = b.json_row(&f.columns)?;
    let limit = b.param(Some(f.limit.to_string()));
    let offset = b.param(Some(f.offset.to_string()));
    b.sql =
        format!("SELECT {row} FROM {tbl} AS {ALIAS}{filter}{order} LIMIT {limit} OFFSET {offset}");
    b.finish(Shape::Rows)
}

pub fn plan_insert(ins: &Insert, t: &TableInfo) -> Result<Plan, OpError> {
    let mut b = Builder::new(t);
    if ins.rows.is_empty() {
        return Err(OpError::InvalidRequest("insert_body has no rows".into()));
    }
    // Columns in first-seen order across all rows.
    let mut names: Vec<&str> = Vec::new();
    for row in &ins.rows {
        for k in row.keys() {
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
    let ret = b.json_row(&ins.returning)?;
    b.sql = format!("INSERT INTO {tbl} AS {ALIAS}{values}{conflict} RETURNING {ret}");
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

pub fn plan_update(u: &Update, t: &TableInfo) -> Result<Plan, OpError> {
    let mut b = Builder::new(t);
    if u.set.is_empty() {
        return Err(OpError::InvalidRequest(
            "update_body names no columns".into(),
        ));
    }
    let sets = set_list(&mut b, &u.set)?;
    let filter = b.filter_sql(&u.filter)?;
    let ret = b.json_row(&u.returning)?;
    let tbl = table_sql(t);
    b.sql = format!(
        "UPDATE {tbl} AS {ALIAS} SET {} WHERE {filter} RETURNING {ret}",
        sets.join(", ")
    );
    b.finish(Shape::Rows)
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
        DeleteTarget::Filter(f) => f.clone(),
        DeleteTarget::Both(id, f) => Filter::And(vec![resource_filter(id, t)?, f.clone()]),
    };
    let mut b = Builder::new(t);
    let where_sql = b.filter_sql(&filter)?;
    let ret = b.json_row(&d.returning)?;
    let tbl = table_sql(t);
    b.sql = format!("DELETE FROM {tbl} AS {ALIAS} WHERE {where_sql} RETURNING {ret}");
    b.finish(Shape::Rows)
}

#[cfg(test)]
mod tests;
