//! The gateway request dialect: turns the JSON bodies callers already send to `/gateway/*` into
//! the backend-neutral [`Operation`] model. Both condition dialects, every paging and ordering
//! spelling, and the optional camelCase → snake_case conversion live here.
//!
//! Every field is type-checked: a wrong JSON type is a 400 naming the field, never ignored and
//! never a 500. Unknown fields are ignored, as the reference did, so existing callers keep working.

mod conditions;
mod order;
pub mod rest;
pub mod rpc;
#[cfg(test)]
mod tests;
mod write;

use athena_actors::ops::{Columns, Fetch, Filter, Operation, Selected, Sql, TableRef};
use serde_json::{Map, Value};

use crate::http::error::{ApiError, Code};

pub use conditions::parse_conditions;
pub use rpc::rpc;
pub use write::{delete, insert, update};

/// Limits and switches that shape parsing.
#[derive(Debug, Clone, Copy)]
pub struct DialectOptions {
    pub default_limit: u64,
    pub max_limit: u64,
    pub camel_to_snake: bool,
}

pub type Body = Map<String, Value>;

pub(crate) fn invalid(field: &str, expected: &str) -> ApiError {
    ApiError::new(Code::InvalidField, format!("{field} must be {expected}"))
}

/// Refuses `null` for fields the contract does not let be null (where the dialect would read it
/// as absent, and so as the default).
pub(crate) fn not_null(body: &Body, fields: &[&str]) -> Result<(), ApiError> {
    match fields
        .iter()
        .find(|f| body.get(**f).is_some_and(Value::is_null))
    {
        Some(f) => Err(invalid(
            f,
            "a value, not null (leave it out for the default)",
        )),
        None => Ok(()),
    }
}

pub(crate) fn missing(field: &str) -> ApiError {
    ApiError::new(Code::MissingField, format!("{field} is required"))
}

/// camelCase → snake_case (`userId` → `user_id`, `HTTPCode` → `http_code`).
pub fn to_snake(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn name(s: &str, opts: &DialectOptions) -> String {
    if opts.camel_to_snake {
        to_snake(s)
    } else {
        s.to_string()
    }
}

fn rename_keys(map: Map<String, Value>, opts: &DialectOptions) -> Map<String, Value> {
    if !opts.camel_to_snake {
        return map;
    }
    map.into_iter().map(|(k, v)| (to_snake(&k), v)).collect()
}

pub(crate) fn opt_str<'a>(body: &'a Body, field: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(field, "a string")),
    }
}

fn opt_u64(body: &Body, field: &str) -> Result<Option<u64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(field, "a non-negative integer")),
        Some(_) => Err(invalid(field, "a non-negative integer")),
    }
}

pub(crate) fn opt_bool(body: &Body, field: &str) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(field, "a boolean")),
    }
}

/// `table_name` (alias `view_name`), with `schema` or a `schema.table` name.
pub fn table(body: &Body) -> Result<TableRef, ApiError> {
    let raw = match opt_str(body, "table_name")? {
        Some(t) => t,
        None => opt_str(body, "view_name")?.ok_or_else(|| missing("table_name"))?,
    };
    if raw.trim().is_empty() {
        return Err(invalid("table_name", "a non-empty string"));
    }
    let schema = opt_str(body, "schema")?.map(str::to_string);
    Ok(match (schema, raw.split_once('.')) {
        (Some(s), _) => TableRef {
            schema: Some(s),
            name: raw.to_string(),
        },
        (None, Some((s, t))) if !s.is_empty() && !t.is_empty() => TableRef {
            schema: Some(s.to_string()),
            name: t.to_string(),
        },
        (None, _) => TableRef {
            schema: None,
            name: raw.to_string(),
        },
    })
}

/// `columns` as an array of names, a comma-separated string, or `"*"`.
pub fn columns(v: Option<&Value>, field: &str, opts: &DialectOptions) -> Result<Columns, ApiError> {
    let list: Vec<String> = match v {
        None | Some(Value::Null) => return Ok(Columns::All),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(|s| s.trim().to_string()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    field,
                    "an array of column names or a comma-separated string",
                )
            })?,
        Some(_) => {
            return Err(invalid(
                field,
                "an array of column names or a comma-separated string",
            ))
        }
    };
    // `*` alone is every column; beside other names it stays in the list, so each other name is
    // still checked against the table.
    if list.is_empty() || list.iter().all(|c| c == "*") {
        return Ok(Columns::All);
    }
    Ok(Columns::List(
        list.iter()
            .map(|c| Selected::plain(if c == "*" { c.clone() } else { name(c, opts) }))
            .collect(),
    ))
}

fn conditions(body: &Body, opts: &DialectOptions) -> Result<Vec<Filter>, ApiError> {
    conditions_in(body, "conditions", opts)
}

fn conditions_in(body: &Body, field: &str, opts: &DialectOptions) -> Result<Vec<Filter>, ApiError> {
    let mut list = parse_conditions(body.get(field), field)?;
    if opts.camel_to_snake {
        list.iter_mut().for_each(|f| f.map_columns(&to_snake));
    }
    Ok(list)
}

pub fn fetch(body: &Body, opts: &DialectOptions) -> Result<Fetch, ApiError> {
    let table = table(body)?;
    let r = read_shape(body, opts, conditions(body, opts)?)?;
    Ok(Fetch {
        table,
        columns: r.columns,
        filter: r.filter,
        order: r.order,
        limit: r.limit,
        offset: r.offset,
        count: r.count,
        page: page_cursor(body)?,
    })
}

/// How a read is shaped, whatever it reads: columns, filter, ordering, page and count.
pub(crate) struct ReadShape {
    pub columns: Columns,
    pub filter: Option<Filter>,
    pub order: Vec<athena_actors::ops::Order>,
    pub limit: u64,
    pub offset: u64,
    pub count: bool,
}

pub(crate) fn read_shape(
    body: &Body,
    opts: &DialectOptions,
    conditions: Vec<Filter>,
) -> Result<ReadShape, ApiError> {
    let columns = columns(body.get("columns"), "columns", opts)?;
    let filter = Filter::all(conditions);
    let mut order = order::parse(body)?;
    if opts.camel_to_snake {
        order
            .iter_mut()
            .for_each(|o| o.column = to_snake(&o.column));
    }
    let limit = opt_u64(body, "limit")?;
    let page_size = opt_u64(body, "page_size")?;
    let page = opt_u64(body, "current_page")?;
    let offset = opt_u64(body, "offset")?.unwrap_or(0);
    for (field, v) in [("limit", limit), ("page_size", page_size)] {
        if let Some(n) = v.filter(|n| *n > opts.max_limit) {
            return Err(ApiError::new(
                Code::LimitExceeded,
                format!("{field} {n} is over the maximum of {}", opts.max_limit),
            ));
        }
    }
    if page_size == Some(0) {
        return Err(invalid("page_size", "at least 1"));
    }
    let limit = limit.or(page_size).unwrap_or(opts.default_limit);
    let offset = match page {
        Some(0) => return Err(invalid("current_page", "at least 1")),
        Some(p) => (p - 1)
            .checked_mul(page_size.unwrap_or(limit))
            .and_then(|o| o.checked_add(offset))
            .filter(|o| *o <= i64::MAX as u64)
            .ok_or_else(|| invalid("current_page", "a page within range"))?,
        None => offset,
    };
    if offset > i64::MAX as u64 {
        return Err(invalid("offset", "at most 9223372036854775807"));
    }
    let count = match body.get("count") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("exact") => true,
        Some(_) => return Err(invalid("count", "\"exact\"")),
    };
    Ok(ReadShape {
        columns,
        filter,
        order,
        limit,
        offset,
        count,
    })
}

/// A page cursor (clients that page by cursor answer one as `data.next_page`): `page_state`, or
/// `next_page` echoed back as it came; blank is none.
pub(crate) fn page_cursor(body: &Body) -> Result<Option<String>, ApiError> {
    Ok(match opt_str(body, "page_state")? {
        Some(p) => Some(p),
        None => opt_str(body, "next_page")?,
    }
    .filter(|p| !p.trim().is_empty())
    .map(str::to_string))
}

pub fn sql(body: &Body) -> Result<Sql, ApiError> {
    let query = opt_str(body, "query")?.ok_or_else(|| missing("query"))?;
    if query.trim().is_empty() {
        return Err(invalid("query", "a non-empty string"));
    }
    crate::http::body::storable_text(query, "query")?;
    let params = match body.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(invalid("params", "an array")),
    };
    Ok(Sql {
        query: query.to_string(),
        params,
    })
}

/// Wraps a parsed operation.
pub fn operation(kind: Kind, body: &Body, opts: &DialectOptions) -> Result<Operation, ApiError> {
    Ok(match kind {
        Kind::Fetch => Operation::Fetch(fetch(body, opts)?),
        Kind::Insert => Operation::Insert(insert(body, opts)?),
        Kind::Update => Operation::Update(update(body, opts)?),
        Kind::Delete => Operation::Delete(delete(body, opts)?),
        Kind::Sql => Operation::Sql(sql(body)?),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fetch,
    Insert,
    Update,
    Delete,
    Sql,
}

impl Kind {
    /// The operation's name in the statistics (`gateway_operation_log.operation`).
    pub fn operation_name(self) -> &'static str {
        match self {
            Kind::Fetch => "fetch",
            Kind::Insert => "insert",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Sql => "query",
        }
    }
}
