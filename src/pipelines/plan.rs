//! Turning a request (and the named definition it refers to) into a [`Resolved`] pipeline:
//! every stage validated before anything runs.

use athena_actors::ops::{Columns, Fetch, Filter, TableRef};
use serde_json::{Map, Value};

use super::{Registry, DEFAULT_PAGE, MAX_PAGE};
use crate::dialect::{self, Body, DialectOptions};
use crate::http::error::{ApiError, Code};
use crate::post::{self, PostSpec};

/// Where the rows come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// `None`: the request's `X-Athena-Client`.
    pub client: Option<String>,
    pub fetch: Fetch,
    pub page: usize,
}

/// How the sink treats a row that conflicts with one it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A conflict fails the pipeline (and rolls the sink back).
    Insert,
    /// The incoming row updates the existing one.
    Upsert,
    /// The incoming row is skipped.
    Ignore,
}

#[derive(Debug, Clone)]
pub struct Sink {
    /// `None`: the source's client.
    pub client: Option<String>,
    pub table: TableRef,
    pub mode: Mode,
    /// The conflict target for `upsert` and `ignore`; empty: the primary key (any conflict for
    /// `ignore`).
    pub on_conflict: Vec<String>,
}

/// What happens to each row between source and sink, in this order: `filter` (on the source
/// row), `post` (grouping: one row per group), `rename`, `drop`.
#[derive(Debug, Clone, Default)]
pub struct Transform {
    pub filter: Option<Filter>,
    pub post: Option<PostSpec>,
    pub rename: Vec<(String, String)>,
    pub drop: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: Option<String>,
    pub source: Source,
    pub transform: Transform,
    pub sink: Sink,
    pub dry_run: bool,
}

fn invalid(field: &str, expected: &str) -> ApiError {
    dialect::invalid(field, expected)
}

/// A stage: the definition's, with the request's fields laid over it.
fn stage(
    body: &Body,
    field: &str,
    base: Option<&Map<String, Value>>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let inline = match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(invalid(field, "an object")),
    };
    Ok(match (base, inline) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(i)) => Some(i.clone()),
        (Some(b), Some(i)) => {
            let mut merged = b.clone();
            merged.extend(i.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(merged)
        }
    })
}

fn names(v: Option<&Value>, field: &str) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(field, "an array of column names")),
        Some(_) => Err(invalid(field, "an array of column names")),
    }
}

/// The pipeline a request describes.
pub fn resolve(
    body: &Body,
    registry: &Registry,
    opts: &DialectOptions,
) -> Result<Resolved, ApiError> {
    let name = dialect::opt_str(body, "pipeline")?;
    let def = match name {
        Some(n) => Some(registry.definitions.get(n).ok_or_else(|| {
            ApiError::new(Code::UnknownPipeline, format!("no pipeline named {n:?}")).hint(format!(
                "the pipelines file defines: {}",
                registry
                    .definitions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?),
        None => None,
    };
    let source =
        stage(body, "source", def.map(|d| &d.source))?.ok_or_else(|| dialect::missing("source"))?;
    let sink =
        stage(body, "sink", def.map(|d| &d.sink))?.ok_or_else(|| dialect::missing("sink"))?;
    let transform = stage(body, "transform", def.and_then(|d| d.transform.as_ref()))?;
    dialect::not_null(body, &["dry_run"])?;
    let dry_run = dialect::opt_bool(body, "dry_run")?.unwrap_or(false);
    let mut source = source_stage(&source, opts)?;
    let transform = transform_stage(transform.as_ref(), opts)?;
    // The source reads the columns the grouping needs, whether or not its list names them (as
    // athena_rs 2.0.2's README example expects: columns [id, email], grouped by region).
    if let (Some(spec), Columns::List(list)) = (&transform.post, &mut source.fetch.columns) {
        for c in spec.columns() {
            if !list.iter().any(|s| s.column == c || s.column == "*") {
                list.push(c.into());
            }
        }
    }
    Ok(Resolved {
        name: name.map(str::to_string),
        source,
        transform,
        sink: sink_stage(&sink)?,
        dry_run,
    })
}

fn source_stage(s: &Map<String, Value>, opts: &DialectOptions) -> Result<Source, ApiError> {
    // A pipeline reads every matching row unless its source names a limit.
    let unbounded = DialectOptions {
        default_limit: i64::MAX as u64,
        max_limit: i64::MAX as u64,
        ..*opts
    };
    // `page_size` here is the streaming page, not the fetch dialect's page (which limits rows).
    let mut fetch_body = s.clone();
    fetch_body.remove("page_size");
    let fetch = dialect::fetch(&fetch_body, &unbounded).map_err(|e| in_stage(e, "source"))?;
    let page = match s.get("page_size") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_PAGE as u64).contains(n))
            .ok_or_else(|| {
                invalid(
                    "source.page_size",
                    &format!("an integer from 1 to {MAX_PAGE}"),
                )
            })? as usize,
    };
    Ok(Source {
        client: client_field(s, "source.client")?,
        fetch: Fetch {
            count: false,
            page: None,
            ..fetch
        },
        page,
    })
}

fn client_field(s: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match s.get("client") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(c)) if !c.trim().is_empty() => Ok(Some(c.trim().to_string())),
        Some(_) => Err(invalid(field, "a client name")),
    }
}

fn in_stage(mut e: ApiError, stage: &str) -> ApiError {
    e.detail = format!("{stage}: {}", e.detail);
    e
}

fn sink_stage(s: &Map<String, Value>) -> Result<Sink, ApiError> {
    let table = dialect::table(s).map_err(|e| in_stage(e, "sink"))?;
    let mode = match dialect::opt_str(s, "mode").map_err(|e| in_stage(e, "sink"))? {
        None | Some("insert") => Mode::Insert,
        Some("upsert") => Mode::Upsert,
        Some("ignore") => Mode::Ignore,
        Some(_) => return Err(invalid("sink.mode", "insert, upsert or ignore")),
    };
    Ok(Sink {
        client: client_field(s, "sink.client")?,
        table,
        mode,
        on_conflict: names(s.get("on_conflict"), "sink.on_conflict")?,
    })
}

fn transform_stage(
    t: Option<&Map<String, Value>>,
    opts: &DialectOptions,
) -> Result<Transform, ApiError> {
    let Some(t) = t else {
        return Ok(Transform::default());
    };
    let filter = Filter::all(
        dialect::parse_conditions(t.get("filter"), "transform.filter")
            .map_err(|e| in_stage(e, "transform"))?,
    );
    let rename = match t.get("rename") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(from, to)| match to {
                Value::String(to) if !to.is_empty() => Ok((from.clone(), to.clone())),
                _ => Err(invalid(
                    "transform.rename",
                    "an object of column → new name",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(invalid(
                "transform.rename",
                "an object of column → new name",
            ))
        }
    };
    let snake = opts
        .camel_to_snake
        .then_some(&dialect::to_snake as &dyn Fn(&str) -> String);
    Ok(Transform {
        filter,
        post: post::parse(t, snake)?,
        rename,
        drop: names(t.get("drop"), "transform.drop")?,
    })
}
