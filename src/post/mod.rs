//! Result post-processing for fetch and update results: groups the returned rows by a column
//! (optionally by a UTC time bucket of it) and aggregates another column per group.
//!
//! Callers ask for it with optional body fields: `group_by`, `time_granularity`,
//! `aggregation_column`, `aggregation_strategy` and `aggregation_dedup`. [`parse`] validates
//! them into a [`PostSpec`]; [`apply`] turns rows into the `post_processing` value
//! `{"grouped":[{"label", "count", "rows", "aggregation"?}]}`. Pure data in, data out: no
//! HTTP, no database. Every error names the offending body field so the HTTP layer can answer 400.
//!
//! Numbers are handled exactly: the workspace enables serde_json's `arbitrary_precision`, so a
//! number's text is the decimal the database sent, and sums, ordering and dedup work on that
//! text rather than on a lossy `f64`.

mod number;
#[cfg(test)]
mod tests;
mod time;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use number::{Num, Total};

/// What to do with a result, as parsed from the request body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostSpec {
    pub group_by: String,
    pub granularity: Option<Granularity>,
    /// With a granularity, the time column that buckets each group's rows, when `group_by` is not
    /// a time itself: every group then carries a `series` of buckets in time order.
    pub time_column: Option<String>,
    pub aggregation: Option<Aggregation>,
}

/// Size of a time bucket when grouping by a time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

/// One aggregate per group. `column` is `None` only for [`Strategy::Count`], which then counts
/// rows; `dedup` is only ever true with a column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Aggregation {
    pub column: Option<String>,
    pub strategy: Strategy,
    pub dedup: bool,
}

/// How a group's values combine. `Count` counts the non-null values of the column, of any JSON
/// type as SQL `COUNT(column)` does (or the rows, without a column); the others need numbers.
/// `CumulativeSum` is the running total of per-group sums in output order: a group without
/// values gets null and the total carries past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    CumulativeSum,
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

/// A rejected request. `code` is a stable snake_case name, `field` the body field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostError {
    pub code: &'static str,
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PostError {}

const GROUP_BY: &str = "group_by";
const TIME_GRANULARITY: &str = "time_granularity";
const TIME_COLUMN: &str = "time_column";
const AGGREGATION_COLUMN: &str = "aggregation_column";
const AGGREGATION_STRATEGY: &str = "aggregation_strategy";
const AGGREGATION_DEDUP: &str = "aggregation_dedup";
const FIELDS: [&str; 6] = [
    GROUP_BY,
    TIME_GRANULARITY,
    TIME_COLUMN,
    AGGREGATION_COLUMN,
    AGGREGATION_STRATEGY,
    AGGREGATION_DEDUP,
];

impl PostError {
    fn new(field: &'static str, message: impl Into<String>) -> PostError {
        let code = match field {
            GROUP_BY => "invalid_group_by",
            TIME_GRANULARITY | TIME_COLUMN => "invalid_time_granularity",
            AGGREGATION_COLUMN => "invalid_aggregation_column",
            AGGREGATION_STRATEGY => "invalid_aggregation_strategy",
            _ => "invalid_aggregation_dedup",
        };
        PostError {
            code,
            field,
            message: message.into(),
        }
    }
}

impl Granularity {
    const ALL: [Granularity; 5] = [
        Granularity::Minute,
        Granularity::Hour,
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }
}

impl Strategy {
    const ALL: [Strategy; 6] = [
        Strategy::CumulativeSum,
        Strategy::Sum,
        Strategy::Avg,
        Strategy::Min,
        Strategy::Max,
        Strategy::Count,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::CumulativeSum => "cumulative_sum",
            Strategy::Sum => "sum",
            Strategy::Avg => "avg",
            Strategy::Min => "min",
            Strategy::Max => "max",
            Strategy::Count => "count",
        }
    }
}

impl PostSpec {
    /// The columns the spec reads (group column first), so the caller can check they exist.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = vec![self.group_by.as_str()];
        if let Some(t) = &self.time_column {
            if *t != self.group_by {
                out.push(t);
            }
        }
        if let Some(c) = self.aggregation.as_ref().and_then(|a| a.column.as_deref()) {
            if c != self.group_by {
                out.push(c);
            }
        }
        out
    }
}

/// Reads the post-processing fields of a request body. `None` when the body has none of them
/// (a `null` field counts as absent, as elsewhere in the dialect). `camel_to_snake`, when given,
/// maps the column names.
pub fn parse(
    body: &Map<String, Value>,
    camel_to_snake: Option<&dyn Fn(&str) -> String>,
) -> Result<Option<PostSpec>, PostError> {
    let field = |name: &str| body.get(name).filter(|v| !v.is_null());
    if FIELDS.iter().all(|f| field(f).is_none()) {
        return Ok(None);
    }
    let column_name = |name: &'static str| -> Result<Option<String>, PostError> {
        match field(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => {
                Ok(Some(camel_to_snake.map_or_else(|| s.clone(), |f| f(s))))
            }
            Some(v) => Err(PostError::new(
                name,
                format!("{name} must be a non-empty column name, got {}", shown(v)),
            )),
        }
    };
    let Some(group_by) = column_name(GROUP_BY)? else {
        let present: Vec<&str> = FIELDS.into_iter().filter(|f| field(f).is_some()).collect();
        return Err(PostError::new(
            GROUP_BY,
            format!("group_by is required with {}", present.join(", ")),
        ));
    };

    let granularity = choice(
        TIME_GRANULARITY,
        field(TIME_GRANULARITY),
        &Granularity::ALL,
        Granularity::name,
    )?;
    let time_column = column_name(TIME_COLUMN)?;
    if time_column.is_some() && granularity.is_none() {
        return Err(PostError::new(
            TIME_COLUMN,
            "time_column buckets each group's rows by time: it needs time_granularity",
        ));
    }
    let column = column_name(AGGREGATION_COLUMN)?;
    let strategy = choice(
        AGGREGATION_STRATEGY,
        field(AGGREGATION_STRATEGY),
        &Strategy::ALL,
        Strategy::name,
    )?;
    let dedup = match field(AGGREGATION_DEDUP) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(PostError::new(
                AGGREGATION_DEDUP,
                format!("aggregation_dedup must be a boolean, got {}", shown(v)),
            ))
        }
    };

    let aggregation = match (column, strategy) {
        (None, None) => None,
        (None, Some(Strategy::Count)) => Some(Aggregation {
            column: None,
            strategy: Strategy::Count,
            // Without a column there are no values to dedup; a canonical spec keeps cache
            // keys of equivalent requests equal.
            dedup: false,
        }),
        (None, Some(s)) => {
            return Err(PostError::new(
                AGGREGATION_STRATEGY,
                format!(
                    "aggregation_strategy {} needs aggregation_column (only count can go without)",
                    s.name()
                ),
            ))
        }
        (Some(c), s) => Some(Aggregation {
            column: Some(c),
            strategy: s.unwrap_or(Strategy::Sum),
            dedup,
        }),
    };
    Ok(Some(PostSpec {
        group_by,
        granularity,
        time_column,
        aggregation,
    }))
}

/// One of a fixed set of names, matched case-insensitively.
fn choice<T: Copy>(
    field: &'static str,
    v: Option<&Value>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<Option<T>, PostError> {
    let Some(v) = v else {
        return Ok(None);
    };
    let found = v.as_str().and_then(|s| {
        all.iter()
            .copied()
            .find(|&t| name(t).eq_ignore_ascii_case(s))
    });
    found.map(Some).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&t| name(t)).collect();
        PostError::new(
            field,
            format!(
                "{field} must be one of {}, got {}",
                names.join(", "),
                shown(v)
            ),
        )
    })
}

/// A group's identity. The variant order is the order of groups of different JSON types: time
/// buckets (a bucketed result holds nothing else but nulls), numbers, strings, booleans,
/// arrays and objects (by their JSON text), then null.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Time(i64),
    Num(Num),
    Str(String),
    Bool(bool),
    Other(String),
    Null,
}

/// A group being built: its rows in input order and the aggregation input seen so far.
struct Group {
    label: Value,
    rows: Vec<Value>,
    values: Vec<Num>,
    counted: u64,
    seen: HashSet<Seen>,
}

/// A value already aggregated in a group, for `aggregation_dedup`. Numbers (and numeric
/// strings) compare by exact value, so `1`, `1.0` and `"1"` are one value.
#[derive(PartialEq, Eq, Hash)]
enum Seen {
    Num(Num),
    Text(String),
}

/// Groups `rows` (each a JSON object) and returns the `post_processing` value
/// `{"grouped":[...]}`, groups in the natural order of their values.
pub fn apply(spec: &PostSpec, rows: &[Value]) -> Result<Value, PostError> {
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let Value::Object(obj) = row else {
            return Err(PostError::new(
                GROUP_BY,
                format!("row {i} is not a JSON object, got {}", shown(row)),
            ));
        };
        let value = obj.get(&spec.group_by).ok_or_else(|| {
            PostError::new(
                GROUP_BY,
                format!("row {i} has no column \"{}\" to group by", spec.group_by),
            )
        })?;
        let (key, bucket_label) = group_key(spec, value)?;
        let group = groups.entry(key).or_insert_with(|| Group {
            // Without a bucket the first value seen labels the group (`1` and `1.0` share one).
            label: bucket_label.map_or_else(|| value.clone(), Value::String),
            rows: Vec::new(),
            values: Vec::new(),
            counted: 0,
            seen: HashSet::new(),
        });
        group.rows.push(row.clone());
        if let Some(a) = &spec.aggregation {
            if let Some(column) = &a.column {
                collect(group, a, column, obj.get(column), i)?;
            }
        }
    }

    let mut running = Total::zero();
    let mut grouped = Vec::with_capacity(groups.len());
    for g in groups.into_values() {
        let series = match (&spec.time_column, spec.granularity) {
            (Some(column), Some(granularity)) => Some(series(spec, column, granularity, &g)?),
            _ => None,
        };
        // A group with a series totals its own rows; otherwise cumulative sums run across groups.
        let mut own = Total::zero();
        let total = if series.is_some() {
            &mut own
        } else {
            &mut running
        };
        let aggregation = match &spec.aggregation {
            Some(a) => Some(aggregate(a, &g, total)?),
            None => None,
        };
        let mut o = Map::new();
        o.insert("label".to_string(), g.label);
        o.insert("count".to_string(), Value::from(g.rows.len()));
        o.insert("rows".to_string(), Value::Array(g.rows));
        if let Some(v) = aggregation {
            o.insert("aggregation".to_string(), v);
        }
        if let Some(series) = series {
            o.insert("series".to_string(), Value::Array(series));
        }
        grouped.push(Value::Object(o));
    }
    let mut out = Map::new();
    out.insert("grouped".to_string(), Value::Array(grouped));
    Ok(Value::Object(out))
}

/// A group's rows bucketed by `column` at `granularity`, in time order (rows without a time
/// last): `[{"label", "count", "aggregation"?}]`. A cumulative sum runs through the group's
/// buckets; with `aggregation_dedup` a value counts once in the group, in its earliest bucket.
fn series(
    spec: &PostSpec,
    column: &str,
    granularity: Granularity,
    g: &Group,
) -> Result<Vec<Value>, PostError> {
    let mut timed = Vec::with_capacity(g.rows.len());
    for (i, row) in g.rows.iter().enumerate() {
        let v = row.get(column).ok_or_else(|| {
            PostError::new(
                TIME_COLUMN,
                format!(
                    "a row of group {} has no column \"{column}\" to bucket by",
                    shown(&g.label)
                ),
            )
        })?;
        let bucket = if v.is_null() {
            None
        } else {
            let secs = time::seconds(v).ok_or_else(|| {
                PostError::new(
                    TIME_COLUMN,
                    format!(
                        "column \"{column}\" holds {}, which is not a time",
                        shown(v)
                    ),
                )
            })?;
            Some(time::bucket(secs, granularity))
        };
        timed.push((bucket, i));
    }
    // Stable: rows of one bucket keep their order; rows without a time come last.
    timed.sort_by_key(|(b, _)| b.as_ref().map_or(i64::MAX, |(start, _)| *start));
    let mut buckets: Vec<Group> = Vec::new();
    let mut starts: Vec<Option<i64>> = Vec::new();
    let mut seen = HashSet::new();
    for (bucket, i) in timed {
        let start = bucket.as_ref().map(|(s, _)| *s);
        if starts.last() != Some(&start) || buckets.is_empty() {
            starts.push(start);
            buckets.push(Group {
                label: bucket.map_or(Value::Null, |(_, label)| Value::String(label)),
                rows: Vec::new(),
                values: Vec::new(),
                counted: 0,
                seen: HashSet::new(),
            });
        }
        let b = buckets.last_mut().expect("a bucket was just pushed");
        b.rows.push(Value::Null);
        if let Some(a) = &spec.aggregation {
            if let Some(c) = &a.column {
                b.seen = std::mem::take(&mut seen);
                let res = collect(b, a, c, g.rows[i].get(c), i);
                seen = std::mem::take(&mut b.seen);
                res?;
            }
        }
    }
    let mut running = Total::zero();
    buckets
        .into_iter()
        .map(|b| {
            let mut o = Map::new();
            o.insert("count".to_string(), Value::from(b.rows.len()));
            if let Some(a) = &spec.aggregation {
                o.insert("aggregation".to_string(), aggregate(a, &b, &mut running)?);
            }
            o.insert("label".to_string(), b.label);
            Ok(Value::Object(o))
        })
        .collect()
}

/// The group of a value, and the bucket label when grouping by time.
fn group_key(spec: &PostSpec, v: &Value) -> Result<(Key, Option<String>), PostError> {
    if v.is_null() {
        return Ok((Key::Null, None));
    }
    if let Some(g) = spec.granularity.filter(|_| spec.time_column.is_none()) {
        let secs = time::seconds(v).ok_or_else(|| {
            PostError::new(
                TIME_GRANULARITY,
                format!(
                    "column \"{}\" holds {}, which is not a time; to bucket each group's rows by a time column instead, name it in time_column",
                    spec.group_by,
                    shown(v)
                ),
            )
        })?;
        let (start, label) = time::bucket(secs, g);
        return Ok((Key::Time(start), Some(label)));
    }
    let key = match v {
        Value::Number(_) => Num::from_value(v).map_or_else(|| Key::Other(v.to_string()), Key::Num),
        Value::String(s) => Key::Str(s.clone()),
        Value::Bool(b) => Key::Bool(*b),
        Value::Null => Key::Null,
        Value::Array(_) | Value::Object(_) => Key::Other(v.to_string()),
    };
    Ok((key, None))
}

/// Adds one row's aggregation value to its group.
fn collect(
    group: &mut Group,
    a: &Aggregation,
    column: &str,
    v: Option<&Value>,
    row: usize,
) -> Result<(), PostError> {
    let v = v.ok_or_else(|| {
        PostError::new(
            AGGREGATION_COLUMN,
            format!("row {row} has no column \"{column}\" to aggregate"),
        )
    })?;
    if v.is_null() {
        return Ok(());
    }
    let num = Num::from_value(v);
    if a.strategy == Strategy::Count {
        // Counting needs no arithmetic, so any non-null value counts (ids, names, flags).
        let fresh = !a.dedup
            || group
                .seen
                .insert(num.map_or_else(|| Seen::Text(v.to_string()), Seen::Num));
        group.counted += u64::from(fresh);
        return Ok(());
    }
    let num = num.ok_or_else(|| {
        PostError::new(
            AGGREGATION_COLUMN,
            format!(
                "column \"{column}\" holds {}, which is not a number",
                shown(v)
            ),
        )
    })?;
    if !a.dedup || group.seen.insert(Seen::Num(num.clone())) {
        group.values.push(num);
    }
    Ok(())
}

/// The aggregate of a finished group. `running` carries the cumulative sum across groups,
/// which arrive in output order.
fn aggregate(a: &Aggregation, g: &Group, running: &mut Total) -> Result<Value, PostError> {
    let sum = || {
        g.values
            .iter()
            .fold(Total::zero(), |t, n| t.add(Total::of(n)))
    };
    let num = match a.strategy {
        Strategy::Count if a.column.is_some() => return Ok(Value::from(g.counted)),
        Strategy::Count => return Ok(Value::from(g.rows.len())),
        _ if g.values.is_empty() => return Ok(Value::Null),
        Strategy::Sum => sum().to_num(),
        Strategy::Avg => sum().mean(g.values.len() as u64),
        Strategy::Min => g.values.iter().min().cloned(),
        Strategy::Max => g.values.iter().max().cloned(),
        Strategy::CumulativeSum => {
            *running = running.add(sum());
            running.to_num()
        }
    };
    // Only an `f64` fallback total that overflowed has no value.
    num.map(|n| n.to_json()).ok_or_else(|| {
        PostError::new(
            AGGREGATION_COLUMN,
            format!(
                "the {} of column \"{}\" is out of range",
                a.strategy.name(),
                a.column.as_deref().unwrap_or_default()
            ),
        )
    })
}

/// A value for an error message: its JSON text, cut short so a huge value cannot bloat the
/// response.
fn shown(v: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let s = v.to_string();
    match s.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}
