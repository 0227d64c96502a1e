//! An [`Operation`] as a request to a Supabase project's REST API (PostgREST): method, path,
//! query parameters, headers and JSON body.
//!
//! Pure: no I/O, no URL. Names (tables, columns, aliases, functions, schemas) are checked by
//! [`ident`] before they are written anywhere; the URL builder percent-encodes every path segment
//! and parameter. Writes always ask for `return=representation`, so the gateway answers with the
//! rows as it does for PostgreSQL. Updates and deletes never go out without a filter: PostgREST
//! would apply them to every row.
//!
//! What PostgREST cannot say is refused with [`OpError::Unsupported`], never approximated: raw
//! SQL, an upsert that sets values other than the inserted ones (`update_body`), listing and
//! describing tables.

use std::collections::BTreeMap;

use serde_json::Value;

use super::filter;
use crate::ops::{
    Columns, DeleteTarget, Fetch, Filter, Insert, OnConflict, OpError, Operation, Order, Rpc,
    TableRef, Update,
};

pub const BACKEND: &str = "supabase";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

/// One request to PostgREST, before it is given a base URL and credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Path segments after the base URL, unencoded: `["rest", "v1", "users"]`.
    pub path: Vec<String>,
    /// Query parameters, unencoded, in order.
    pub query: Vec<(String, String)>,
    /// `Prefer`, `Accept-Profile`/`Content-Profile`, `Accept`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    /// A total count was asked for (read it from `Content-Range`).
    pub count: bool,
    /// The write must touch exactly one row (PostgREST's single-object media type rolls it back
    /// otherwise); the answer is one object, not an array.
    pub single: bool,
}

/// Primary keys by table (`name` for `public`, else `schema.name`), from the client's config:
/// PostgREST does not say which columns `resource_id` means.
pub type PrimaryKeys = BTreeMap<String, Vec<String>>;

/// Checks a name before it is written into a path or a parameter: letters, digits, `_` and `$`,
/// at most 63 bytes. Anything else could be read by PostgREST's grammar (`.`, `,`, `:`, `(`).
pub fn ident(name: &str) -> Result<&str, OpError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(name)
    } else {
        Err(OpError::InvalidRequest(format!(
            "{name:?} cannot be named on a Supabase client: use letters, digits, '_' and '$' (at most 63 bytes)"
        )))
    }
}

fn unsupported(feature: &str) -> OpError {
    OpError::Unsupported {
        backend: BACKEND,
        feature: feature.to_string(),
    }
}

/// Translates one operation. `single` asks for the exactly-one-row guarantee of writes.
pub fn translate(op: &Operation, keys: &PrimaryKeys, single: bool) -> Result<Request, OpError> {
    let mut req = match op {
        Operation::Fetch(f) => fetch(f)?,
        Operation::Insert(i) => insert(i)?,
        Operation::Update(u) => update(u)?,
        Operation::Delete(d) => {
            let filter = match &d.target {
                DeleteTarget::Filter(f) => Some(f.clone()),
                DeleteTarget::ResourceId(id) => Some(filter::resource(&d.table, id, keys)?),
                DeleteTarget::Both(id, f) => Some(Filter::And(vec![
                    filter::resource(&d.table, id, keys)?,
                    f.clone(),
                ])),
            };
            write(
                Method::Delete,
                &d.table,
                filter.as_ref(),
                (&d.returning, &d.order),
                None,
            )?
        }
        Operation::Rpc(r) => rpc(r)?,
        Operation::Sql(_) => return Err(unsupported("raw SQL")),
        Operation::ListTables => return Err(unsupported("listing tables")),
        Operation::DescribeTable(_) => return Err(unsupported("describing tables")),
    };
    if single {
        if !matches!(req.method, Method::Post | Method::Patch | Method::Delete) || req.count {
            return Err(OpError::Internal(
                "only writes run as single-row writes".into(),
            ));
        }
        req.single = true;
        req.headers
            .push(("Accept", "application/vnd.pgrst.object+json".into()));
    }
    Ok(req)
}

fn base(method: Method, segments: &[&str]) -> Request {
    let mut path = vec!["rest".to_string(), "v1".to_string()];
    path.extend(segments.iter().map(|s| s.to_string()));
    Request {
        method,
        path,
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        count: false,
        single: false,
    }
}

/// The schema as PostgREST's profile header: `Accept-Profile` on reads, `Content-Profile` on
/// writes and function calls.
fn profile(req: &mut Request, table: &TableRef) -> Result<(), OpError> {
    if let Some(schema) = &table.schema {
        let name = if req.method == Method::Get {
            "Accept-Profile"
        } else {
            "Content-Profile"
        };
        req.headers.push((name, ident(schema)?.to_string()));
    }
    Ok(())
}

/// `select=`: `*`, `col`, `alias:col`.
pub fn select(columns: &Columns) -> Result<Option<String>, OpError> {
    let Columns::List(list) = columns else {
        return Ok(None);
    };
    let mut parts = Vec::with_capacity(list.len());
    for s in list {
        if s.column == "*" && s.key.is_none() {
            parts.push("*".to_string());
            continue;
        }
        let column = ident(&s.column)?;
        parts.push(match &s.key {
            Some(key) if key != column => format!("{}:{column}", ident(key)?),
            _ => column.to_string(),
        });
    }
    Ok(Some(parts.join(",")))
}

/// `order=`: `col.asc|desc[.nullsfirst|.nullslast]`, comma-joined.
pub fn order(order: &[Order]) -> Result<Option<String>, OpError> {
    if order.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::with_capacity(order.len());
    for o in order {
        let mut term = format!(
            "{}.{}",
            ident(&o.column)?,
            if o.descending { "desc" } else { "asc" }
        );
        match o.nulls_first {
            Some(true) => term.push_str(".nullsfirst"),
            Some(false) => term.push_str(".nullslast"),
            None => {}
        }
        parts.push(term);
    }
    Ok(Some(parts.join(",")))
}

/// What a read shares with a function call: select, filters, order, paging and the count.
#[allow(clippy::too_many_arguments)]
fn shape(
    req: &mut Request,
    columns: &Columns,
    filter: Option<&Filter>,
    ord: &[Order],
    limit: u64,
    offset: u64,
    count: bool,
) -> Result<(), OpError> {
    if let Some(s) = select(columns)? {
        req.query.push(("select".into(), s));
    }
    req.query.extend(filter::params(filter)?);
    if let Some(o) = order(ord)? {
        req.query.push(("order".into(), o));
    }
    req.query.push(("limit".into(), limit.to_string()));
    if offset > 0 {
        req.query.push(("offset".into(), offset.to_string()));
    }
    if count {
        req.count = true;
    }
    Ok(())
}

fn fetch(f: &Fetch) -> Result<Request, OpError> {
    if f.page.is_some() {
        return Err(OpError::InvalidRequest(
            "page_state is a cursor of clients that page by cursor; page this client with \
             offset or current_page"
                .into(),
        ));
    }
    let mut req = base(Method::Get, &[ident(&f.table.name)?]);
    profile(&mut req, &f.table)?;
    shape(
        &mut req,
        &f.columns,
        f.filter.as_ref(),
        &f.order,
        f.limit,
        f.offset,
        f.count,
    )?;
    if f.count {
        req.headers.push(("Prefer", "count=exact".into()));
    }
    Ok(req)
}

fn rpc(r: &Rpc) -> Result<Request, OpError> {
    let mut req = base(Method::Post, &["rpc", ident(&r.function.name)?]);
    profile(&mut req, &r.function)?;
    shape(
        &mut req,
        &r.columns,
        r.filter.as_ref(),
        &r.order,
        r.limit,
        r.offset,
        r.count,
    )?;
    for name in r.args.keys() {
        ident(name)?;
    }
    req.body = Some(Value::Object(r.args.clone()));
    if r.count {
        req.headers.push(("Prefer", "count=exact".into()));
    }
    Ok(req)
}

/// A comma-joined list of checked column names.
fn names(cols: &[String]) -> Result<String, OpError> {
    Ok(cols
        .iter()
        .map(|c| ident(c))
        .collect::<Result<Vec<_>, _>>()?
        .join(","))
}

fn insert(i: &Insert) -> Result<Request, OpError> {
    let mut req = base(Method::Post, &[ident(&i.table.name)?]);
    profile(&mut req, &i.table)?;
    if i.rows.is_empty() {
        return Err(OpError::InvalidRequest("nothing to insert".into()));
    }
    for row in &i.rows {
        for name in row.keys() {
            ident(name)?;
        }
    }
    let mut prefer = vec!["return=representation"];
    // PostgREST gives absent keys NULL unless told to use their defaults.
    if !i.default_to_null {
        prefer.push("missing=default");
    }
    let columns = if i.columns.is_empty() {
        // The union of the rows' keys, so every row is read with the same columns.
        let mut all: Vec<String> = Vec::new();
        for row in &i.rows {
            for k in row.keys() {
                if !all.contains(k) {
                    all.push(k.clone());
                }
            }
        }
        all
    } else {
        i.columns.clone()
    };
    req.query.push(("columns".into(), names(&columns)?));
    match &i.on_conflict {
        OnConflict::Error => {}
        OnConflict::Update { target, set: None } => {
            if !target.is_empty() {
                req.query.push(("on_conflict".into(), names(target)?));
            }
            prefer.push("resolution=merge-duplicates");
        }
        OnConflict::Update { set: Some(_), .. } => {
            return Err(unsupported(
                "an upsert that sets other values than the inserted ones (update_body)",
            ))
        }
        OnConflict::Ignore { target } => {
            if !target.is_empty() {
                req.query.push(("on_conflict".into(), names(target)?));
            }
            prefer.push("resolution=ignore-duplicates");
        }
    }
    if let Some(s) = select(&i.returning)? {
        req.query.push(("select".into(), s));
    }
    if let Some(o) = order(&i.order)? {
        req.query.push(("order".into(), o));
    }
    req.headers.push(("Prefer", prefer.join(",")));
    req.body = Some(Value::Array(
        i.rows.iter().cloned().map(Value::Object).collect(),
    ));
    Ok(req)
}

fn update(u: &Update) -> Result<Request, OpError> {
    if u.set.is_empty() {
        return Err(OpError::InvalidRequest("nothing to update".into()));
    }
    for name in u.set.keys() {
        ident(name)?;
    }
    write(
        Method::Patch,
        &u.table,
        Some(&u.filter),
        (&u.returning, &u.order),
        Some(Value::Object(u.set.clone())),
    )
}

/// PATCH or DELETE: refused unless the filter renders at least one condition.
fn write(
    method: Method,
    table: &TableRef,
    filter: Option<&Filter>,
    (returning, ordered): (&Columns, &[Order]),
    body: Option<Value>,
) -> Result<Request, OpError> {
    let mut req = base(method, &[ident(&table.name)?]);
    profile(&mut req, table)?;
    let params = filter::params(filter)?;
    if params.is_empty() {
        return Err(OpError::MissingFilter(format!(
            "{} needs a filter; it never runs on every row",
            if method == Method::Patch {
                "an update"
            } else {
                "a delete"
            }
        )));
    }
    req.query.extend(params);
    if let Some(s) = select(returning)? {
        req.query.push(("select".into(), s));
    }
    if let Some(o) = order(ordered)? {
        req.query.push(("order".into(), o));
    }
    req.headers.push(("Prefer", "return=representation".into()));
    req.body = body;
    Ok(req)
}
