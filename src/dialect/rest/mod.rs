//! The PostgREST dialect of `/rest/v1/{table}`: the query string (`select`, filters, `or`/`and`,
//! `order`, `limit`, `offset`, `on_conflict`, `columns`), the `Prefer`, `Range` and `Accept`
//! headers and the JSON body, turned into the backend-neutral [`Operation`] model.
//!
//! Pure: no I/O, no catalog. Column names stay as the caller spelled them (unquoted); the
//! translator checks each against the live catalog, so an unknown or hostile name is an error
//! there, never SQL. Every parameter is either understood or refused: an unknown operator, an
//! embedded resource, a cast, or a parameter that would change what a write touches if it were
//! ignored (`limit` on PATCH, `Prefer: max-affected`) is a 400, never silently dropped.
//!
//! Not supported, deliberately: embedding related tables, casts and JSON paths in `select`,
//! full-text and range operators, `limit` on PATCH and DELETE, PUT. `order` on a write orders the
//! rows it returns, as PostgREST does.

mod headers;
mod select;
#[cfg(test)]
mod tests;

use athena_actors::ops::{
    postgrest, Columns, Delete, DeleteTarget, Fetch, Filter, Insert, OnConflict, OpError, Order,
    TableRef, Update,
};
use serde_json::{Map, Value};

use crate::http::body::kind;
use crate::http::error::{ApiError, Code};

pub use headers::{media, prefer, range, Media, Prefer, Range, Resolution, Return};

/// The query string of a `/rest/v1` request, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// `select=`: the columns returned (and their keys).
    pub select: Columns,
    /// Every filter parameter and logic tree, to be AND-ed.
    pub filters: Vec<Filter>,
    pub order: Vec<Order>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    /// `on_conflict=`: the upsert's conflict target.
    pub on_conflict: Option<Vec<String>>,
    /// `columns=`: the columns a write takes from the body.
    pub columns: Option<Vec<String>>,
    /// `count=exact` given as a query parameter.
    pub count: bool,
}

pub(crate) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidField, message)
}

/// The table of the path, in the schema of the `schema.table` spelling or else of the profile
/// header (`Accept-Profile` on reads, `Content-Profile` on writes).
pub fn table(path: &str, profile: Option<&str>) -> Result<TableRef, ApiError> {
    let path = path.trim();
    if path.is_empty() {
        return Err(bad("the path must name a table: /rest/v1/{table}"));
    }
    let profile = profile.map(str::trim).filter(|p| !p.is_empty());
    Ok(match path.split_once('.') {
        Some((s, t)) if !s.is_empty() && !t.is_empty() => TableRef {
            schema: Some(s.to_string()),
            name: t.to_string(),
        },
        _ => TableRef {
            schema: profile.map(str::to_string),
            name: path.to_string(),
        },
    })
}

fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ApiError> {
    if slot.is_some() {
        return Err(bad(format!("{key} is given more than once")));
    }
    *slot = Some(value);
    Ok(())
}

fn number(key: &str, v: &str) -> Result<u64, ApiError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| bad(format!("{key} must be a non-negative integer, not {v:?}")))
}

fn filter_error(e: OpError) -> ApiError {
    ApiError::from(e)
}

/// A logic tree parameter: `or=(…)`, `and=(…)`, `not.or=(…)`, `not.and=(…)`.
fn logic(key: &str, value: &str) -> Result<Filter, ApiError> {
    let (negated, op) = match key.strip_prefix("not.") {
        Some(op) => (true, op),
        None => (false, key),
    };
    let v = value.trim();
    if !(v.starts_with('(') && v.ends_with(')')) {
        return Err(filter_error(OpError::InvalidFilter(format!(
            "{key} takes a parenthesised list such as (a.eq.1,b.gt.2), not {value:?}"
        ))));
    }
    let parts = postgrest::parse_list(v).map_err(filter_error)?;
    let group = if op == "or" {
        Filter::Or(parts)
    } else {
        Filter::And(parts)
    };
    Ok(if negated {
        Filter::Not(Box::new(group))
    } else {
        group
    })
}

/// A comma-separated list of column names, each optionally double-quoted.
pub fn names(key: &str, v: &str) -> Result<Vec<String>, ApiError> {
    let items = postgrest::split_top_level(v).map_err(|e| bad(format!("{key}: {e}")))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let name = postgrest::unquote(item.trim()).map_err(|e| bad(format!("{key}: {e}")))?;
        if name.is_empty() {
            return Err(bad(format!("{key} has an empty column name")));
        }
        out.push(name);
    }
    Ok(out)
}

/// The name a filter parameter's key gives: as is, or unquoted. Keys naming an embedded
/// resource (`rel.col`) or a JSON path (`col->k`) are refused.
fn filter_column(key: &str) -> Result<String, ApiError> {
    let key = key.trim();
    if key.starts_with('"') {
        return postgrest::unquote(key).map_err(filter_error);
    }
    if key.is_empty() {
        return Err(bad("a query parameter has an empty name"));
    }
    if key.contains("->") {
        return Err(filter_error(OpError::InvalidFilter(format!(
            "JSON paths are not supported in filters ({key:?})"
        ))));
    }
    if key.contains('.') {
        return Err(filter_error(OpError::InvalidFilter(format!(
            "{key:?} addresses a related table, which /rest/v1 does not support"
        ))));
    }
    Ok(key.to_string())
}

/// Parses the query string's pairs (already percent-decoded).
pub fn query(pairs: &[(String, String)]) -> Result<Query, ApiError> {
    let mut q = Query::default();
    let mut select = None;
    let mut order = None;
    for (key, value) in pairs {
        match key.as_str() {
            "select" => once(&mut select, key, select::parse(value)?)?,
            "order" => once(&mut order, key, select::order(value)?)?,
            "limit" => once(&mut q.limit, key, number(key, value)?)?,
            "offset" => once(&mut q.offset, key, number(key, value)?)?,
            "on_conflict" => once(&mut q.on_conflict, key, names(key, value)?)?,
            "columns" => once(&mut q.columns, key, names(key, value)?)?,
            "count"
                if matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "exact" | "planned" | "estimated"
                ) =>
            {
                q.count = true
            }
            "or" | "and" | "not.or" | "not.and" => q.filters.push(logic(key, value)?),
            _ => {
                let column = filter_column(key)?;
                let f = postgrest::parse_op_value(&column, value).map_err(filter_error)?;
                q.filters.push(f);
            }
        }
    }
    q.select = select.unwrap_or_default();
    q.order = order.unwrap_or_default();
    Ok(q)
}

/// Refuses the parameters that mean nothing for `method`.
fn refuse(method: &str, present: &[(&str, bool)]) -> Result<(), ApiError> {
    match present.iter().find(|(_, p)| *p) {
        Some((name, _)) => Err(bad(format!("{name} is not supported on {method}"))),
        None => Ok(()),
    }
}

/// GET/HEAD: a fetch. The page is the `Range` header when given, else `limit`/`offset`; like
/// PostgREST's `max-rows`, at most `max_limit` rows are returned, and that is also the default.
pub fn fetch(
    table: TableRef,
    q: Query,
    prefer: &Prefer,
    range: Option<Range>,
    max_limit: u64,
) -> Result<Fetch, ApiError> {
    refuse(
        "GET",
        &[
            ("on_conflict", q.on_conflict.is_some()),
            ("columns", q.columns.is_some()),
        ],
    )?;
    let (offset, limit) = match range {
        Some(r) => (r.first, r.last.map(|l| l - r.first + 1)),
        None => (q.offset.unwrap_or(0), q.limit),
    };
    Ok(Fetch {
        table,
        columns: q.select,
        filter: Filter::all(q.filters),
        order: q.order,
        limit: limit.unwrap_or(max_limit).min(max_limit),
        offset,
        count: q.count || prefer.count,
        page: None,
    })
}

fn body_error(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidBody, message)
}

/// POST: an insert, or an upsert with `Prefer: resolution=…`. An empty array gives an insert
/// with no rows, which the caller answers without running.
pub fn insert(table: TableRef, q: Query, prefer: &Prefer, body: Value) -> Result<Insert, ApiError> {
    refuse(
        "POST",
        &[
            ("filters", !q.filters.is_empty()),
            ("limit", q.limit.is_some()),
            ("offset", q.offset.is_some()),
        ],
    )?;
    let rows = match body {
        Value::Object(m) => vec![m],
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::Object(m) => Ok(m),
                _ => Err(body_error(
                    "every element of the body must be a JSON object",
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(body_error(format!(
                "the body must be a JSON object or an array of objects, not {}",
                kind(&other)
            )))
        }
    };
    let target = q.on_conflict.unwrap_or_default();
    let on_conflict = match prefer.resolution {
        Some(Resolution::MergeDuplicates) => OnConflict::Update { target, set: None },
        Some(Resolution::IgnoreDuplicates) => OnConflict::Ignore { target },
        None => OnConflict::Error,
    };
    Ok(Insert {
        table,
        rows,
        columns: q.columns.unwrap_or_default(),
        on_conflict,
        returning: q.select,
        default_to_null: !prefer.missing_default,
        order: q.order,
    })
}

fn required_filter(q_filters: Vec<Filter>, what: &str) -> Result<Filter, ApiError> {
    Filter::all(q_filters).ok_or_else(|| {
        ApiError::new(
            Code::MissingFilter,
            format!("{what} requires a filter (a WHERE clause)"),
        )
        .hint(format!(
            "add a filter such as ?id=eq.1; a {what} without one would touch every row, so it is refused"
        ))
    })
}

/// PATCH: an update of the filtered rows. With `columns=`, only those keys are set, and a listed
/// column the body lacks is set to NULL (as PostgREST does).
pub fn update(table: TableRef, q: Query, body: Value) -> Result<Update, ApiError> {
    refuse(
        "PATCH",
        &[
            ("on_conflict", q.on_conflict.is_some()),
            ("limit", q.limit.is_some()),
            ("offset", q.offset.is_some()),
        ],
    )?;
    let mut set = match body {
        Value::Object(m) => m,
        other => {
            return Err(body_error(format!(
                "the body of a PATCH must be a JSON object, not {}",
                kind(&other)
            )))
        }
    };
    if let Some(cols) = q.columns {
        let mut chosen = Map::new();
        for c in cols {
            let v = set.remove(&c).unwrap_or(Value::Null);
            chosen.insert(c, v);
        }
        set = chosen;
    }
    if set.is_empty() {
        return Err(body_error(
            "the body of a PATCH must name at least one column",
        ));
    }
    let filter = required_filter(q.filters, "UPDATE")?;
    Ok(Update {
        table,
        set,
        filter,
        returning: q.select,
        order: q.order,
    })
}

/// DELETE: a delete of the filtered rows.
pub fn delete(table: TableRef, q: Query) -> Result<Delete, ApiError> {
    refuse(
        "DELETE",
        &[
            ("on_conflict", q.on_conflict.is_some()),
            ("columns", q.columns.is_some()),
            ("limit", q.limit.is_some()),
            ("offset", q.offset.is_some()),
        ],
    )?;
    let filter = required_filter(q.filters, "DELETE")?;
    Ok(Delete {
        table,
        target: DeleteTarget::Filter(filter),
        returning: q.select,
        order: q.order,
    })
}
