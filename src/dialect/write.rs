//! Write operations of the gateway dialect: insert (with upsert), update and delete.

use athena_actors::ops::{Columns, Delete, DeleteTarget, Filter, Insert, OnConflict, Update};
use serde_json::{Map, Value};

use super::{
    columns, conditions, invalid, missing, opt_bool, rename_keys, table, Body, DialectOptions,
};
use crate::http::error::{ApiError, Code};

fn object_rows(
    v: &Value,
    field: &str,
    opts: &DialectOptions,
) -> Result<Vec<Map<String, Value>>, ApiError> {
    match v {
        Value::Object(m) => Ok(vec![rename_keys(m.clone(), opts)]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::Object(m) => Ok(rename_keys(m.clone(), opts)),
                _ => Err(invalid(field, "an object or an array of objects")),
            })
            .collect(),
        Value::Array(_) => Err(invalid(field, "a non-empty array of objects")),
        _ => Err(invalid(field, "an object or an array of objects")),
    }
}

fn name_list(
    v: Option<&Value>,
    field: &str,
    opts: &DialectOptions,
) -> Result<Vec<String>, ApiError> {
    match columns(v, field, opts)? {
        Columns::All => match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            _ => Err(invalid(field, "column names")),
        },
        Columns::List(l) => Ok(l.into_iter().map(|s| s.column).collect()),
    }
}

pub fn insert(body: &Body, opts: &DialectOptions) -> Result<Insert, ApiError> {
    let table = table(body)?;
    let rows_value = body
        .get("insert_body")
        .or_else(|| body.get("data"))
        .filter(|v| !v.is_null())
        .ok_or_else(|| missing("insert_body"))?;
    let rows = object_rows(rows_value, "insert_body", opts)?;
    let target = name_list(body.get("on_conflict"), "on_conflict", opts)?;
    let update_body = match body.get("update_body") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(rename_keys(m.clone(), opts)),
        Some(_) => return Err(invalid("update_body", "an object")),
    };
    let ignore = opt_bool(body, "ignore_duplicates")?.unwrap_or(false);
    let on_conflict = match (
        update_body,
        body.contains_key("on_conflict") && !target.is_empty(),
        ignore,
    ) {
        (_, _, true) => OnConflict::Ignore { target },
        (Some(set), _, false) => OnConflict::Update {
            target,
            set: Some(set),
        },
        (None, true, false) => OnConflict::Update { target, set: None },
        (None, false, false) => OnConflict::Error,
    };
    Ok(Insert {
        table,
        rows,
        columns: Vec::new(),
        on_conflict,
        returning: columns(body.get("columns"), "columns", opts)?,
        default_to_null: opt_bool(body, "default_to_null")?.unwrap_or(false),
        order: Vec::new(),
    })
}

pub fn update(body: &Body, opts: &DialectOptions) -> Result<Update, ApiError> {
    let table = table(body)?;
    let mut returning = columns(body.get("returning"), "returning", opts)?;
    let mut set: Option<Map<String, Value>> = None;
    for field in ["update_body", "set", "data"] {
        match body.get(field) {
            None | Some(Value::Null) => continue,
            Some(Value::Object(m)) => {
                set = Some(m.clone());
                break;
            }
            Some(_) => return Err(invalid(field, "an object of column → value")),
        }
    }
    match body.get("columns") {
        // The reference took the SET payload from `columns` as an array of objects.
        Some(Value::Array(items))
            if set.is_none() && items.iter().all(Value::is_object) && !items.is_empty() =>
        {
            let mut merged = Map::new();
            for i in items {
                if let Value::Object(m) = i {
                    merged.extend(m.clone());
                }
            }
            set = Some(merged);
        }
        other => {
            if body.get("returning").is_none() {
                returning = columns(other, "columns", opts)?;
            }
        }
    }
    let set = rename_keys(set.ok_or_else(|| missing("update_body"))?, opts);
    if set.is_empty() {
        return Err(invalid(
            "update_body",
            "an object naming at least one column",
        ));
    }
    let filter = Filter::all(conditions(body, opts)?).ok_or_else(|| {
        ApiError::new(Code::MissingFilter, "update needs at least one condition")
            .hint("an update without conditions would change every row; it is refused")
    })?;
    Ok(Update {
        table,
        set,
        filter,
        order: Vec::new(),
        returning,
    })
}

pub fn delete(body: &Body, opts: &DialectOptions) -> Result<Delete, ApiError> {
    let table = table(body)?;
    let id = match body.get("resource_id") {
        None | Some(Value::Null) => None,
        Some(Value::Array(_)) => return Err(invalid("resource_id", "a primary key value")),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(invalid("resource_id", "a primary key value"))
        }
        Some(Value::Object(m)) => Some(Value::Object(rename_keys(m.clone(), opts))),
        Some(v) => Some(v.clone()),
    };
    let filter = Filter::all(conditions(body, opts)?);
    let target = match (id, filter) {
        (Some(id), Some(f)) => DeleteTarget::Both(id, f),
        (Some(id), None) => DeleteTarget::ResourceId(id),
        (None, Some(f)) => DeleteTarget::Filter(f),
        (None, None) => {
            return Err(ApiError::new(
                Code::MissingFilter,
                "delete needs resource_id or at least one condition",
            )
            .hint("a delete without a filter would remove every row; it is refused"))
        }
    };
    Ok(Delete {
        table,
        target,
        returning: columns(body.get("columns"), "columns", opts)?,
        order: Vec::new(),
    })
}
