//! Ordering: `sort_by: {field, direction}` (or a list of them) and `order_by` as a string
//! (`"a.desc,b"`, `"a desc"`), a list of strings, or a list of `{column, ascending|direction}`.

use athena_actors::ops::Order;
use serde_json::Value;

use super::{invalid, Body};
use crate::http::error::ApiError;

pub fn parse(body: &Body) -> Result<Vec<Order>, ApiError> {
    let mut out = Vec::new();
    for field in ["sort_by", "order_by", "order"] {
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    out.push(from_str(term, field)?);
                }
            }
            Some(Value::Array(items)) => {
                for i in items {
                    out.push(one(i, field)?);
                }
            }
            Some(obj @ Value::Object(_)) => out.push(one(obj, field)?),
            Some(_) => {
                return Err(invalid(
                    field,
                    "a column, a {field, direction} object or a list of them",
                ))
            }
        }
    }
    Ok(out)
}

fn one(v: &Value, field: &str) -> Result<Order, ApiError> {
    match v {
        Value::String(s) => from_str(s, field),
        Value::Object(m) => {
            let column = ["field", "column", "name"]
                .iter()
                .find_map(|k| m.get(*k))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(field, "an object with a field (column name)"))?;
            let descending = match (
                m.get("direction").or_else(|| m.get("order")),
                m.get("ascending"),
            ) {
                (Some(Value::String(d)), _) => direction(d, field)?,
                (Some(_), _) => return Err(invalid("direction", "\"asc\" or \"desc\"")),
                (None, Some(Value::Bool(asc))) => !asc,
                (None, Some(_)) => return Err(invalid("ascending", "a boolean")),
                (None, None) => false,
            };
            let nulls_first = match m.get("nulls_first").or_else(|| m.get("nullsFirst")) {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(invalid("nulls_first", "a boolean")),
            };
            Ok(Order {
                column: column.to_string(),
                descending,
                nulls_first,
            })
        }
        _ => Err(invalid(
            field,
            "a column, a {field, direction} object or a list of them",
        )),
    }
}

fn direction(d: &str, field: &str) -> Result<bool, ApiError> {
    match d.to_ascii_lowercase().as_str() {
        "asc" | "ascending" => Ok(false),
        "desc" | "descending" => Ok(true),
        _ => Err(invalid(field, "ordered \"asc\" or \"desc\"")),
    }
}

/// `col`, `col.desc`, `col desc`, `col.asc.nullslast`.
fn from_str(term: &str, field: &str) -> Result<Order, ApiError> {
    let mut parts = term.split(['.', ' ']).filter(|p| !p.is_empty());
    let column = parts
        .next()
        .ok_or_else(|| invalid(field, "a column name"))?;
    let mut order = Order {
        column: column.to_string(),
        descending: false,
        nulls_first: None,
    };
    for p in parts {
        match p.to_ascii_lowercase().as_str() {
            "nullsfirst" => order.nulls_first = Some(true),
            "nullslast" => order.nulls_first = Some(false),
            d => order.descending = direction(d, field)?,
        }
    }
    Ok(order)
}
