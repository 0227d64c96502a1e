//! The filter tree in PostgREST's query-string syntax: top-level conditions as `column=op.value`
//! parameters, everything else (groups, negated groups, values that need quoting) in one
//! `and=(…)` / `or=(…)` / `not.and=(…)` tree.
//!
//! Pure: no I/O. Column names are checked by [`ident`](super::translate::ident) before they are
//! written; values are quoted wherever PostgREST's grammar gives a character a meaning (`,` `.`
//! `:` `(` `)` `"` `\` and surrounding spaces), so no value can add, remove or widen a condition.
//! Percent-encoding of the whole parameter is the URL builder's job. A `like` pattern holding a
//! literal `*` is refused: PostgREST would read it as `%` and match more than asked.

use serde_json::Value;

use super::translate::{ident, PrimaryKeys};
use crate::ops::{Filter, FilterValue, Op, OpError, TableRef, MAX_FILTER_DEPTH};

/// The query parameters that express `filter`, in order. `None` renders nothing.
pub fn params(filter: Option<&Filter>) -> Result<Vec<(String, String)>, OpError> {
    let Some(filter) = filter else {
        return Ok(Vec::new());
    };
    if filter.depth() > MAX_FILTER_DEPTH {
        return Err(OpError::FilterTooDeep {
            max: MAX_FILTER_DEPTH,
        });
    }
    let mut top = Vec::new();
    let mut grouped = Vec::new();
    flatten(filter, &mut top, &mut grouped)?;
    if !grouped.is_empty() {
        top.push(("and".to_string(), format!("({})", grouped.join(","))));
    }
    Ok(top)
}

/// Splits the top-level AND into plain parameters and tree items.
fn flatten(
    f: &Filter,
    top: &mut Vec<(String, String)>,
    grouped: &mut Vec<String>,
) -> Result<(), OpError> {
    match f {
        Filter::And(items) => {
            for item in items {
                flatten(item, top, grouped)?;
            }
        }
        Filter::Cond { column, op, value } => {
            let (op_text, raw) = operand(*op, value)?;
            if needs_tree(*op, &raw) {
                grouped.push(tree(f)?);
            } else {
                top.push((ident(column)?.to_string(), format!("{op_text}.{raw}")));
            }
        }
        Filter::Not(inner) if matches!(**inner, Filter::Cond { .. }) => {
            let Filter::Cond { column, op, value } = &**inner else {
                unreachable!("matched above");
            };
            let (op_text, raw) = operand(*op, value)?;
            if needs_tree(*op, &raw) {
                grouped.push(tree(f)?);
            } else {
                top.push((ident(column)?.to_string(), format!("not.{op_text}.{raw}")));
            }
        }
        Filter::Or(_) | Filter::Not(_) => grouped.push(tree(f)?),
    }
    Ok(())
}

/// A value PostgREST would read differently at the top level than inside a tree: a leading
/// quote (some servers unquote it) or surrounding spaces. Such conditions go in the tree, quoted.
fn needs_tree(op: Op, raw: &str) -> bool {
    !matches!(op, Op::In) && (raw.starts_with('"') || raw.trim() != raw)
}

/// One tree item: `col.op.value`, `col.not.op.value`, `and(…)`, `or(…)`, `not.and(…)`,
/// `not.or(…)`.
pub fn tree(f: &Filter) -> Result<String, OpError> {
    Ok(match f {
        Filter::Cond { column, op, value } => {
            let (op_text, raw) = operand(*op, value)?;
            format!("{}.{op_text}.{}", ident(column)?, tree_value(*op, &raw))
        }
        Filter::And(items) => format!("and({})", list(items)?),
        Filter::Or(items) => format!("or({})", list(items)?),
        Filter::Not(inner) => match &**inner {
            Filter::Cond { column, op, value } => {
                let (op_text, raw) = operand(*op, value)?;
                format!("{}.not.{op_text}.{}", ident(column)?, tree_value(*op, &raw))
            }
            Filter::And(items) => format!("not.and({})", list(items)?),
            Filter::Or(items) => format!("not.or({})", list(items)?),
            // not.not.x is x.
            Filter::Not(x) => tree(x)?,
        },
    })
}

fn list(items: &[Filter]) -> Result<String, OpError> {
    if items.is_empty() {
        return Err(OpError::InvalidFilter("an empty and/or group".into()));
    }
    Ok(items
        .iter()
        .map(tree)
        .collect::<Result<Vec<_>, _>>()?
        .join(","))
}

/// A value inside a tree: `in` lists are already quoted item by item; anything else is quoted
/// when it holds a character the tree grammar reads.
fn tree_value(op: Op, raw: &str) -> String {
    if op == Op::In {
        raw.to_string()
    } else {
        quote_if_needed(raw)
    }
}

/// PostgREST's operator name and the value's text (for `in`, the whole `(…)` list).
fn operand(op: Op, value: &FilterValue) -> Result<(&'static str, String), OpError> {
    let name = match op {
        Op::Contains => "cs",
        Op::ContainedBy => "cd",
        other => other.name(),
    };
    let text = match (op, value) {
        (Op::In, FilterValue::List(items)) => in_list(items.iter().map(String::as_str)),
        (Op::In, FilterValue::Json(Value::Array(items))) => {
            let texts = items
                .iter()
                .map(|v| scalar(op, v))
                .collect::<Result<Vec<_>, _>>()?;
            in_list(texts.iter().map(String::as_str))
        }
        (Op::In, FilterValue::Text(t)) => {
            // Already PostgREST's `(a,b)`: pass it on only if it is a well-formed list.
            let items = crate::ops::postgrest::parse_op_value("x", &format!("in.{t}"))?;
            match items {
                Filter::Cond {
                    value: FilterValue::List(items),
                    ..
                } => in_list(items.iter().map(String::as_str)),
                _ => return Err(invalid_in()),
            }
        }
        (Op::In, FilterValue::Json(_)) => return Err(invalid_in()),
        (Op::Is, v) => is_value(v)?,
        (Op::Contains | Op::ContainedBy, FilterValue::Json(Value::Array(items))) => {
            array_literal(items)
        }
        // PostgREST reads `*` in a pattern as `%`: a literal one cannot be said.
        (Op::Like | Op::Ilike, FilterValue::Json(Value::String(t)) | FilterValue::Text(t))
            if t.contains('*') =>
        {
            return Err(OpError::InvalidFilter(format!(
                "{} patterns on a Supabase client cannot hold a literal '*' (PostgREST reads it as %)",
                op.name()
            )))
        }
        (_, FilterValue::Json(v)) => scalar(op, v)?,
        (_, FilterValue::Text(t)) => t.clone(),
        (_, FilterValue::List(items)) => {
            return Err(OpError::InvalidFilter(format!(
                "{} takes one value, not a list of {}",
                op.name(),
                items.len()
            )))
        }
    };
    Ok((name, text))
}

fn invalid_in() -> OpError {
    OpError::InvalidFilter("in takes a list of values".into())
}

fn in_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.map(quote_if_needed).collect();
    format!("({})", quoted.join(","))
}

/// `is` takes null, true, false or unknown.
fn is_value(v: &FilterValue) -> Result<String, OpError> {
    let text = match v {
        FilterValue::Json(Value::Null) => "null".to_string(),
        FilterValue::Json(Value::Bool(b)) => b.to_string(),
        FilterValue::Json(Value::String(s)) | FilterValue::Text(s) => s.to_ascii_lowercase(),
        _ => String::new(),
    };
    match text.as_str() {
        "null" | "true" | "false" | "unknown" => Ok(text),
        _ => Err(OpError::InvalidFilter(
            "is takes null, true, false or unknown".into(),
        )),
    }
}

/// A JSON operand as text: strings as they are, numbers and booleans as written, objects and
/// arrays as JSON (for json/jsonb columns). Null compares with nothing: use `is`.
fn scalar(op: Op, v: &Value) -> Result<String, OpError> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => {
            return Err(OpError::InvalidFilter(format!(
                "{} cannot compare with null; use is",
                op.name()
            )))
        }
        other => other.to_string(),
    })
}

/// A PostgreSQL array literal `{a,"b,c",NULL}` for `cs`/`cd` on array columns.
fn array_literal(items: &[Value]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::Null => "NULL".to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(inner) => array_literal(inner),
            Value::String(s) => array_element(s),
            Value::Object(_) => array_element(&v.to_string()),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn array_element(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.eq_ignore_ascii_case("null")
        && !s
            .chars()
            .any(|c| matches!(c, ',' | '{' | '}' | '"' | '\\') || c.is_whitespace());
    if plain {
        s.to_string()
    } else {
        quote(s)
    }
}

/// Double-quotes `s` (escaping `"` and `\`) when PostgREST's grammar would read one of its
/// characters.
pub fn quote_if_needed(s: &str) -> String {
    let plain = !s.is_empty()
        && s.trim() == s
        && !s
            .chars()
            .any(|c| matches!(c, ',' | '.' | ':' | '(' | ')' | '"' | '\\'));
    if plain {
        s.to_string()
    } else {
        quote(s)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `resource_id` as conditions on the configured primary key of `table`.
pub fn resource(table: &TableRef, id: &Value, keys: &PrimaryKeys) -> Result<Filter, OpError> {
    let name = match &table.schema {
        Some(s) if s != "public" => format!("{s}.{}", table.name),
        _ => table.name.clone(),
    };
    let pk = keys
        .get(&name)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| OpError::NoPrimaryKey {
            table: name.clone(),
        })?;
    let value_for = |col: &str| -> Result<Value, OpError> {
        match id {
            Value::Object(map) => map.get(col).cloned().ok_or_else(|| OpError::InvalidValue {
                column: col.to_string(),
                reason: "resource_id lacks this primary key column".into(),
            }),
            Value::Null | Value::Array(_) => Err(OpError::InvalidValue {
                column: col.to_string(),
                reason: "resource_id must be a primary key value".into(),
            }),
            scalar if pk.len() == 1 => Ok(scalar.clone()),
            _ => Err(OpError::InvalidValue {
                column: col.to_string(),
                reason: format!("the primary key has {} columns; pass an object", pk.len()),
            }),
        }
    };
    let conds = pk
        .iter()
        .map(|col| {
            Ok(Filter::Cond {
                column: col.clone(),
                op: Op::Eq,
                value: FilterValue::Json(value_for(col)?),
            })
        })
        .collect::<Result<Vec<_>, OpError>>()?;
    Ok(Filter::And(conds))
}
