//! Both condition dialects: `{eq_column, eq_value}` and `{operator, column, value}`, where `or`,
//! `and` and `not` carry PostgREST strings (or nested condition objects).

use athena_actors::ops::{postgrest, Filter, FilterValue, Op, OpError, MAX_FILTER_DEPTH};
use serde_json::Value;

use super::{invalid, missing};
use crate::http::error::ApiError;

pub fn parse_conditions(v: Option<&Value>, field: &str) -> Result<Vec<Filter>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(|c| condition(c, field, 1)).collect(),
        Some(Value::Object(_)) => Ok(vec![condition(v.unwrap_or(&Value::Null), field, 1)?]),
        Some(_) => Err(invalid(field, "an array of conditions")),
    }
}

fn condition(v: &Value, field: &str, depth: usize) -> Result<Filter, ApiError> {
    if depth > MAX_FILTER_DEPTH {
        return Err(OpError::FilterTooDeep {
            max: MAX_FILTER_DEPTH,
        }
        .into());
    }
    let Value::Object(c) = v else {
        return Err(invalid(field, "an array of condition objects"));
    };
    if let Some(col) = c.get("eq_column") {
        let column = col
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("eq_column", "a column name"))?;
        let value = c.get("eq_value").ok_or_else(|| missing("eq_value"))?;
        return Ok(Filter::Cond {
            column: column.to_string(),
            op: Op::Eq,
            value: FilterValue::Json(value.clone()),
        });
    }
    let op_name = match c.get("operator").or_else(|| c.get("op")) {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("operator", "a string")),
        None => {
            return Err(invalid(
                field,
                "a list of {eq_column, eq_value} or {operator, column, value} objects",
            ))
        }
    };
    let column = match c.get("column") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        Some(_) => return Err(invalid("column", "a column name")),
    };
    let value = c.get("value");
    match op_name {
        "or" | "and" => {
            let parts = match value {
                Some(Value::String(s)) => postgrest::parse_list(s)?,
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| condition(i, field, depth + 1))
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(invalid(
                        "value",
                        "a filter string such as \"a.eq.1,b.gt.2\"",
                    ))
                }
            };
            Ok(if op_name == "or" {
                Filter::Or(parts)
            } else {
                Filter::And(parts)
            })
        }
        "not" => {
            let inner = match (column, value) {
                (Some(col), Some(Value::String(s))) => postgrest::parse_op_value(col, s)?,
                (None, Some(Value::String(s))) => postgrest::parse_item(s)?,
                (_, Some(obj @ Value::Object(_))) => condition(obj, field, depth + 1)?,
                _ => {
                    return Err(invalid(
                        "value",
                        "a filter string such as \"status.eq.active\"",
                    ))
                }
            };
            Ok(Filter::Not(Box::new(inner)))
        }
        other => {
            let op = Op::parse(other).ok_or_else(|| {
                ApiError::from(OpError::InvalidFilter(format!(
                    "unknown operator {other:?}"
                )))
            })?;
            let column = column.ok_or_else(|| missing("column"))?;
            let value = match value {
                Some(v) => v.clone(),
                None if op == Op::Is => Value::Null,
                None => return Err(missing("value")),
            };
            Ok(Filter::Cond {
                column: column.to_string(),
                op,
                value: FilterValue::Json(value),
            })
        }
    }
}
