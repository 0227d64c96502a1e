//! The conditions of a filter as CQL restrictions: each column found in the table, each value
//! converted with the column's type, the combinations CQL accepts checked, and whether the keys
//! and indexes serve them or `ALLOW FILTERING` would be needed (the rules are in [`super::plan`]).

use scylla::value::CqlValue;
use serde_json::Value;

use super::schema::{quote, Column, ColumnKind, IndexKind, TableInfo};
use super::types::CqlType;
use super::values;
use crate::ops::{Filter, FilterValue, Op, OpError};

/// Most values one `in` may list (the cluster's own default cartesian-product limit).
pub const MAX_IN_VALUES: usize = 100;

/// One condition, its column found and its values converted.
#[derive(Debug, Clone)]
pub(super) struct Restriction<'a> {
    pub col: &'a Column,
    pub op: Op,
    pub values: Vec<CqlValue>,
}

pub(super) fn unsupported(what: &str) -> OpError {
    OpError::Unsupported {
        backend: super::BACKEND,
        feature: what.to_string(),
    }
}

fn invalid_filter(col: &str, why: &str) -> OpError {
    OpError::InvalidFilter(format!("{col}: {why}"))
}

/// The table's column, or `UnknownColumn`.
pub(super) fn column<'a>(info: &'a TableInfo, name: &str) -> Result<&'a Column, OpError> {
    info.column(name).ok_or_else(|| OpError::UnknownColumn {
        table: format!("{}.{}", info.keyspace, info.name),
        column: name.to_string(),
    })
}

/// A JSON operand as the column's value; null is refused (CQL compares nothing to null).
pub(super) fn operand(col: &Column, ty: &CqlType, v: &Value) -> Result<CqlValue, OpError> {
    values::from_json(ty, v)
        .map_err(|reason| OpError::InvalidValue {
            column: col.name.clone(),
            reason,
        })?
        .ok_or_else(|| invalid_filter(&col.name, "CQL cannot compare with null"))
}

fn text_operand(col: &Column, ty: &CqlType, s: &str) -> Result<CqlValue, OpError> {
    values::from_text(ty, s)
        .map_err(|reason| OpError::InvalidValue {
            column: col.name.clone(),
            reason,
        })?
        .ok_or_else(|| invalid_filter(&col.name, "CQL cannot compare with null"))
}

/// The conditions of a filter joined by AND; `or` and `not` have no CQL form.
pub(super) fn flatten<'f>(f: &'f Filter, out: &mut Vec<&'f Filter>) -> Result<(), OpError> {
    match f {
        Filter::And(v) => v.iter().try_for_each(|x| flatten(x, out)),
        Filter::Or(_) => Err(unsupported(
            "or: CQL has no OR; run one request per alternative",
        )),
        Filter::Not(_) => Err(unsupported("not: CQL has no NOT")),
        Filter::Cond { .. } => {
            out.push(f);
            Ok(())
        }
    }
}

/// Converts each condition of `filter` into a restriction on a known column.
pub(super) fn restrictions<'a>(
    info: &'a TableInfo,
    filter: Option<&Filter>,
) -> Result<Vec<Restriction<'a>>, OpError> {
    let Some(filter) = filter else {
        return Ok(Vec::new());
    };
    if filter.depth() > crate::ops::MAX_FILTER_DEPTH {
        return Err(OpError::FilterTooDeep {
            max: crate::ops::MAX_FILTER_DEPTH,
        });
    }
    let mut conds = Vec::new();
    flatten(filter, &mut conds)?;
    let mut out = Vec::with_capacity(conds.len());
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
        let ty = &col.ty;
        let values = match op {
            Op::Eq | Op::Gt | Op::Gte | Op::Lt | Op::Lte => vec![match value {
                FilterValue::Json(v) => operand(col, ty, v)?,
                FilterValue::Text(s) => text_operand(col, ty, s)?,
                FilterValue::List(_) => {
                    return Err(invalid_filter(
                        name,
                        &format!("{} takes one value", op.name()),
                    ))
                }
            }],
            Op::In => {
                let items: Vec<CqlValue> = match value {
                    FilterValue::Json(Value::Array(a)) => a
                        .iter()
                        .map(|v| operand(col, ty, v))
                        .collect::<Result<_, _>>()?,
                    FilterValue::List(l) => l
                        .iter()
                        .map(|s| text_operand(col, ty, s))
                        .collect::<Result<_, _>>()?,
                    FilterValue::Json(v) => vec![operand(col, ty, v)?],
                    FilterValue::Text(s) => {
                        let inner = s.trim().trim_start_matches('(').trim_end_matches(')');
                        inner
                            .split(',')
                            .map(|x| text_operand(col, ty, x.trim()))
                            .collect::<Result<_, _>>()?
                    }
                };
                if items.len() > MAX_IN_VALUES {
                    return Err(OpError::LimitExceeded(format!(
                        "in on {name} lists {} values; at most {MAX_IN_VALUES}",
                        items.len()
                    )));
                }
                items
            }
            Op::Contains => {
                let elem = match ty {
                    CqlType::List(e) | CqlType::Set(e) => e.as_ref(),
                    _ => {
                        return Err(unsupported(&format!(
                        "contains on {name}: only list and set columns hold elements to look for"
                    )))
                    }
                };
                match value {
                    FilterValue::Json(Value::Array(a)) => a
                        .iter()
                        .map(|v| operand(col, elem, v))
                        .collect::<Result<_, _>>()?,
                    FilterValue::Json(v) => vec![operand(col, elem, v)?],
                    FilterValue::Text(s) => {
                        let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
                        inner
                            .split(',')
                            .map(|x| text_operand(col, elem, x.trim()))
                            .collect::<Result<_, _>>()?
                    }
                    FilterValue::List(l) => l
                        .iter()
                        .map(|s| text_operand(col, elem, s))
                        .collect::<Result<_, _>>()?,
                }
            }
            Op::Neq => return Err(unsupported(&format!("neq on {name}: CQL has no !="))),
            Op::Like | Op::Ilike => {
                return Err(unsupported(&format!(
                    "{} on {name}: pattern matching is not offered on Scylla clients",
                    op.name()
                )))
            }
            Op::Is => {
                return Err(unsupported(&format!(
                    "is on {name}: CQL cannot select rows by null"
                )))
            }
            Op::ContainedBy => {
                return Err(unsupported(&format!(
                    "containedBy on {name}: CQL has no such test"
                )))
            }
        };
        out.push(Restriction {
            col,
            op: *op,
            values,
        });
    }
    Ok(out)
}

fn is_range(op: Op) -> bool {
    matches!(op, Op::Gt | Op::Gte | Op::Lt | Op::Lte)
}

fn is_eq(op: Op) -> bool {
    matches!(op, Op::Eq | Op::In)
}

/// Checks each column's restrictions make sense together: one equality, or at most one lower and
/// one upper bound; never both.
pub(super) fn check_combinations(rs: &[Restriction<'_>]) -> Result<(), OpError> {
    for (i, r) in rs.iter().enumerate() {
        for other in &rs[i + 1..] {
            if other.col.name != r.col.name {
                continue;
            }
            let lower = |op| matches!(op, Op::Gt | Op::Gte);
            let clash = match (r.op, other.op) {
                (Op::Contains, Op::Contains) => false,
                (a, b) if is_range(a) && is_range(b) => lower(a) == lower(b),
                _ => true,
            };
            if clash {
                return Err(invalid_filter(
                    &r.col.name,
                    &format!(
                        "{} and {} cannot restrict one column together in CQL",
                        r.op.name(),
                        other.op.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Why the restrictions need `ALLOW FILTERING`, or `None` when the keys and indexes serve them.
/// Also says whether the whole partition key is given by equality.
pub(super) fn needs_filtering<'a>(
    info: &'a TableInfo,
    rs: &[Restriction<'_>],
) -> (Option<String>, bool) {
    let on = |c: &'a Column| rs.iter().filter(move |r| r.col.name == c.name);
    let mut pk_given = 0;
    let mut pk_total = 0;
    let mut why: Option<String> = None;
    for c in info.partition_key() {
        pk_total += 1;
        let mut any = false;
        for r in on(c) {
            any = true;
            if !is_eq(r.op) {
                why.get_or_insert(format!(
                    "partition key column {} is restricted by {}; only eq and in are served by the key",
                    c.name,
                    r.op.name()
                ));
            }
        }
        if any {
            pk_given += 1;
        }
    }
    let pk_full = pk_given == pk_total && why.is_none();
    if pk_given > 0 && !pk_full {
        why.get_or_insert("only part of the partition key is given".into());
    }
    let ck_restricted = rs.iter().any(|r| r.col.kind == ColumnKind::Clustering);
    // Clustering columns: a prefix by equality, then at most one column by range.
    let mut ended: Option<&str> = None;
    for c in info.clustering() {
        let rs_c: Vec<_> = on(c).collect();
        if rs_c.is_empty() {
            ended.get_or_insert(&c.name);
            continue;
        }
        if let Some(prev) = ended {
            why.get_or_insert(format!(
                "clustering column {} is restricted but {prev} before it is not restricted by eq",
                c.name
            ));
        }
        if rs_c.iter().any(|r| is_range(r.op)) {
            ended = Some(&c.name);
        }
        if rs_c.iter().any(|r| r.op == Op::Contains) {
            why.get_or_insert(format!("contains on clustering column {}", c.name));
        }
    }
    if ck_restricted && !pk_full {
        why.get_or_insert(
            "clustering columns are restricted without the whole partition key".into(),
        );
    }
    let others: Vec<_> = rs
        .iter()
        .filter(|r| matches!(r.col.kind, ColumnKind::Regular | ColumnKind::Static))
        .collect();
    if !others.is_empty() {
        let served = match others.as_slice() {
            [r] if !ck_restricted => match (info.index_of(&r.col.name), r.op) {
                (Some(IndexKind::Global), Op::Eq) => pk_given == 0 || pk_full,
                (Some(IndexKind::Local), Op::Eq) => pk_full,
                (Some(IndexKind::Values), Op::Contains) => {
                    r.values.len() == 1 && (pk_given == 0 || pk_full)
                }
                _ => false,
            },
            _ => false,
        };
        if !served {
            let names: Vec<&str> = others.iter().map(|r| r.col.name.as_str()).collect();
            why.get_or_insert(format!(
                "{} {} neither part of the primary key nor served by an index with this operator",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            ));
        }
    }
    (why, pk_full)
}

/// The WHERE clause of the restrictions (with a leading space), appending their values.
pub(super) fn where_clause(rs: &[Restriction<'_>], values: &mut Vec<Option<CqlValue>>) -> String {
    if rs.is_empty() {
        return String::new();
    }
    let mut parts = Vec::with_capacity(rs.len());
    for r in rs {
        let c = quote(&r.col.name);
        match r.op {
            Op::In => {
                let marks = vec!["?"; r.values.len()].join(", ");
                parts.push(format!("{c} IN ({marks})"));
                values.extend(r.values.iter().cloned().map(Some));
            }
            Op::Contains => {
                for v in &r.values {
                    parts.push(format!("{c} CONTAINS ?"));
                    values.push(Some(v.clone()));
                }
            }
            op => {
                let sym = match op {
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Lt => "<",
                    Op::Lte => "<=",
                    _ => "=",
                };
                parts.push(format!("{c} {sym} ?"));
                values.extend(r.values.iter().cloned().map(Some));
            }
        }
    }
    format!(" WHERE {}", parts.join(" AND "))
}
