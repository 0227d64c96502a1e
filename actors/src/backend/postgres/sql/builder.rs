//! The statement builder: identifiers checked against the table and quoted, values turned into
//! text-format parameters, filters, ordering and the JSON rendering of rows.

use serde_json::Value;

use super::{ident, Plan, Shape, ALIAS};
use crate::backend::postgres::params::{json_to_text, text_array_literal, TextParam};
use crate::backend::postgres::schema::{ColumnInfo, TableInfo, ValueKind};
use crate::ops::{Columns, Filter, FilterValue, Op, OpError, Order};

pub(super) struct Builder<'a> {
    pub(super) table: &'a TableInfo,
    pub(super) sql: String,
    pub(super) params: Vec<TextParam>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(table: &'a TableInfo) -> Self {
        Builder {
            table,
            sql: String::with_capacity(256),
            params: Vec::new(),
        }
    }

    pub(super) fn param(&mut self, v: Option<String>) -> String {
        self.params.push(TextParam(v));
        format!("${}", self.params.len())
    }

    pub(super) fn column(&self, name: &str) -> Result<&'a ColumnInfo, OpError> {
        self.table
            .column(name)
            .ok_or_else(|| OpError::UnknownColumn {
                table: self.table.display_name(),
                column: name.to_string(),
            })
    }

    pub(super) fn filter_sql(&mut self, f: &Filter) -> Result<String, OpError> {
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

    pub(super) fn order_sql(&self, order: &[Order]) -> Result<String, OpError> {
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
    /// as parameters, each key once (the first selection of a key wins), `*` standing for every
    /// column under its own name, in table order.
    pub(super) fn json_row(&mut self, cols: &Columns) -> Result<String, OpError> {
        let list = match cols {
            Columns::List(list) if !list.is_empty() => list,
            _ => return Ok(format!("row_to_json({ALIAS}.*)")),
        };
        // Keys come from the caller's selection or from the catalog, both outliving the builder.
        let table = self.table;
        let mut chosen: Vec<(&str, &'a ColumnInfo)> = Vec::with_capacity(list.len());
        for sel in list {
            if sel.column == "*" && sel.key.is_none() {
                for c in &table.columns {
                    if !chosen.iter().any(|(k, _)| *k == c.name) {
                        chosen.push((&c.name, c));
                    }
                }
            } else {
                let c = self.column(&sel.column)?;
                let key = sel.key();
                if !chosen.iter().any(|(k, _)| *k == key) {
                    chosen.push((key, c));
                }
            }
        }
        let mut args = Vec::with_capacity(chosen.len());
        for (key, c) in chosen {
            let key = self.param(Some(key.to_string()));
            args.push(format!("{key}::text, {ALIAS}.{}", ident(&c.name)));
        }
        Ok(format!("json_build_object({})", args.join(", ")))
    }

    pub(super) fn finish(self, shape: Shape) -> Result<Plan, OpError> {
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
