//! The body of `POST /gateway/rpc`: `{function, args, schema?}` and, for the function's result,
//! the fetch body's own fields: `columns`, `conditions` (alias `filters`), `sort_by`/`order_by`,
//! `limit`/`offset` or `current_page`/`page_size`, `count`.
//!
//! Argument names stay as sent (they are the function's, not columns, so no camelCase
//! conversion): the translator checks each against the function's arguments in the catalog.

use athena_actors::ops::{Rpc, TableRef};
use serde_json::{Map, Value};

use super::{conditions_in, invalid, missing, opt_str, read_shape, Body, DialectOptions};
use crate::http::error::ApiError;

/// The function a name designates: `schema.function`, or the given `schema`, or the search path.
pub fn function_ref(raw: &str, schema: Option<&str>, field: &str) -> Result<TableRef, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(invalid(field, "a non-empty function name"));
    }
    Ok(match (schema, raw.split_once('.')) {
        (Some(s), _) => TableRef {
            schema: Some(s.to_string()),
            name: raw.to_string(),
        },
        (None, Some((s, f))) if !s.is_empty() && !f.is_empty() => TableRef {
            schema: Some(s.to_string()),
            name: f.to_string(),
        },
        (None, _) => TableRef {
            schema: None,
            name: raw.to_string(),
        },
    })
}

/// The arguments object (`args`, alias `params`); none at all is a call without arguments.
pub fn args(body: &Body) -> Result<Map<String, Value>, ApiError> {
    let v = match body.get("args") {
        None | Some(Value::Null) => body.get("params"),
        some => some,
    };
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(invalid("args", "an object of argument name → value")),
    }
}

pub fn rpc(body: &Body, opts: &DialectOptions) -> Result<Rpc, ApiError> {
    let name = opt_str(body, "function")?.ok_or_else(|| missing("function"))?;
    let function = function_ref(name, opt_str(body, "schema")?, "function")?;
    let args = args(body)?;
    let conditions = match body.get("conditions") {
        None | Some(Value::Null) => conditions_in(body, "filters", opts)?,
        Some(_) => conditions_in(body, "conditions", opts)?,
    };
    let r = read_shape(body, opts, conditions)?;
    Ok(Rpc {
        function,
        args,
        columns: r.columns,
        filter: r.filter,
        order: r.order,
        limit: r.limit,
        offset: r.offset,
        count: r.count,
    })
}
