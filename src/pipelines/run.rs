//! Running a [`Resolved`] pipeline: stream the source a page at a time, transform each page,
//! write it into the sink's transaction, and commit at the end (or roll back on any failure).

use athena_actors::backend::postgres::{PoolHandle, Transaction};
use athena_actors::ops::eval;
use athena_actors::ops::{Columns, Insert, OnConflict, OpError, Operation};
use serde_json::{Map, Value};

use super::plan::{Mode, Resolved, Sink, Transform};
use crate::post;

/// Bind parameters PostgreSQL accepts in one statement: a page is written in as many statements
/// as it needs to stay under it.
const MAX_PARAMS: usize = 65_535;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub rows_read: u64,
    /// Rows written to the sink (with `dry_run`: rows that would be written).
    pub rows_written: u64,
    /// Rows the transform filtered out, and rows `ignore` found already present.
    pub rows_skipped: u64,
    pub pages: u64,
}

/// Why a run failed, and what it had done by then (nothing of it is left in the sink).
#[derive(Debug)]
pub struct Failure {
    pub error: OpError,
    pub report: Report,
}

/// Runs the pipeline. `source` and `sink` are the pools of the two clients (the same pool when
/// they share one).
pub async fn execute(
    p: &Resolved,
    source: &PoolHandle,
    sink: &PoolHandle,
) -> Result<Report, Failure> {
    let mut report = Report::default();
    let mut tx = None;
    let res = run(p, source, sink, &mut tx, &mut report).await;
    match res {
        Ok(()) => {
            if let Some(tx) = tx {
                tx.commit().await.map_err(|error| Failure {
                    error,
                    report: report.clone(),
                })?;
            }
            Ok(report)
        }
        Err(error) => {
            if let Some(tx) = tx {
                tx.rollback().await;
            }
            Err(Failure { error, report })
        }
    }
}

async fn run(
    p: &Resolved,
    source: &PoolHandle,
    sink: &PoolHandle,
    tx: &mut Option<Transaction>,
    report: &mut Report,
) -> Result<(), OpError> {
    let mut pages = source.stream(p.source.fetch.clone(), p.source.page).await?;
    if !p.dry_run {
        *tx = Some(sink.transaction().await?);
    }
    // With grouping, only the values it reads are kept from each row until the end.
    let mut grouped_input: Vec<Value> = Vec::new();
    let grouped_columns: Vec<String> = p
        .transform
        .post
        .as_ref()
        .map(|s| s.columns().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    while let Some(page) = pages.next_page().await? {
        report.pages += 1;
        report.rows_read += page.len() as u64;
        let mut kept = Vec::with_capacity(page.len());
        for row in page {
            let Value::Object(row) = row else {
                return Err(OpError::Internal("a source row was not an object".into()));
            };
            if let Some(f) = &p.transform.filter {
                if !eval::matches(f, &row)? {
                    report.rows_skipped += 1;
                    continue;
                }
            }
            kept.push(row);
        }
        match &p.transform.post {
            Some(_) => grouped_input.extend(kept.into_iter().map(|mut row| {
                row.retain(|k, _| grouped_columns.contains(k));
                Value::Object(row)
            })),
            None => {
                let rows = kept.into_iter().map(|r| reshape(&p.transform, r)).collect();
                write(p, sink, tx.as_mut(), rows, report).await?;
            }
        }
    }
    if let Some(spec) = &p.transform.post {
        let grouped = post::apply(spec, &grouped_input)
            .map_err(|e| OpError::InvalidRequest(format!("transform: {}", e.message)))?;
        drop(grouped_input);
        let rows = group_rows(spec, &grouped)
            .into_iter()
            .map(|r| reshape(&p.transform, r))
            .collect();
        write(p, sink, tx.as_mut(), rows, report).await?;
    }
    Ok(())
}

/// One sink row per group: the group's value under the grouped column, its row count as
/// `count`, and its aggregate under the aggregated column (or `aggregation` for a count of rows).
fn group_rows(spec: &post::PostSpec, grouped: &Value) -> Vec<Map<String, Value>> {
    let groups = grouped["grouped"].as_array().cloned().unwrap_or_default();
    groups
        .into_iter()
        .map(|g| {
            let mut row = Map::new();
            row.insert(spec.group_by.clone(), g["label"].clone());
            row.insert("count".into(), g["count"].clone());
            if let Some(a) = &spec.aggregation {
                let key = a.column.clone().unwrap_or_else(|| "aggregation".into());
                row.insert(key, g["aggregation"].clone());
            }
            row
        })
        .collect()
}

fn reshape(t: &Transform, mut row: Map<String, Value>) -> Map<String, Value> {
    for (from, to) in &t.rename {
        if let Some(v) = row.remove(from) {
            row.insert(to.clone(), v);
        }
    }
    for d in &t.drop {
        row.remove(d);
    }
    row
}

fn insert(sink: &Sink, rows: Vec<Map<String, Value>>) -> Operation {
    // The statement returns one column per row: enough to count what was written.
    let returning = rows
        .first()
        .and_then(|r| r.keys().next().cloned())
        .map_or(Columns::All, |c| Columns::List(vec![c.into()]));
    Operation::Insert(Insert {
        table: sink.table.clone(),
        rows,
        columns: Vec::new(),
        order: Vec::new(),
        on_conflict: match sink.mode {
            Mode::Insert => OnConflict::Error,
            Mode::Upsert => OnConflict::Update {
                target: sink.on_conflict.clone(),
                set: None,
            },
            Mode::Ignore => OnConflict::Ignore {
                target: sink.on_conflict.clone(),
            },
        },
        returning,
        default_to_null: false,
    })
}

async fn write(
    p: &Resolved,
    sink: &PoolHandle,
    mut tx: Option<&mut Transaction>,
    rows: Vec<Map<String, Value>>,
    report: &mut Report,
) -> Result<(), OpError> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns = rows.iter().map(Map::len).max().unwrap_or(1).max(1);
    let per_statement = (MAX_PARAMS / columns).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(per_statement).collect();
        let n = chunk.len() as u64;
        let op = insert(&p.sink, chunk);
        match tx.as_deref_mut() {
            Some(tx) => {
                let out = tx.execute(&op).await?;
                report.rows_written += out.row_count;
                report.rows_skipped += n.saturating_sub(out.row_count);
            }
            None => {
                // A dry run checks the sink's table and columns, and counts.
                sink.check(&op).await?;
                report.rows_written += n;
            }
        }
    }
    Ok(())
}
