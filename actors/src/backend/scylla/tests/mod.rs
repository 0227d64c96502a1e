//! Translation to CQL: what runs, what is refused and why (the rules are in `plan.rs`,
//! `restrict.rs` and `write.rs`), and the catalog's types and indexes. This file holds the
//! fixtures: a table with every kind of key column and index, and a counter table.

mod fetch;
mod schema;
mod write;

use serde_json::{json, Value};

use super::plan::{plan_fetch, FetchPlan, PlanOptions};
use super::schema::{Column, ColumnKind, Index, TableInfo};
use super::types::CqlType;
use crate::ops::*;

pub(super) fn col(name: &str, kind: ColumnKind, position: i32, ty: CqlType) -> Column {
    Column {
        name: name.into(),
        kind,
        position,
        type_text: ty.cql_name(),
        ty,
        descending: false,
    }
}

/// events: partition key (tenant, day), clustering (ts DESC, id), an index on kind (global),
/// score (local) and the values of tags.
pub(super) fn events() -> TableInfo {
    let mut ts = col("ts", ColumnKind::Clustering, 0, CqlType::Timestamp);
    ts.descending = true;
    TableInfo::new(
        "ks",
        "events",
        vec![
            col("payload", ColumnKind::Regular, -1, CqlType::Text),
            col("kind", ColumnKind::Regular, -1, CqlType::Text),
            col("score", ColumnKind::Regular, -1, CqlType::Int),
            col(
                "tags",
                ColumnKind::Regular,
                -1,
                CqlType::Set(Box::new(CqlType::Text)),
            ),
            col("id", ColumnKind::Clustering, 1, CqlType::Uuid),
            ts,
            col("day", ColumnKind::PartitionKey, 1, CqlType::Date),
            col("tenant", ColumnKind::PartitionKey, 0, CqlType::Text),
            col("owner", ColumnKind::Static, -1, CqlType::Text),
        ],
        vec![
            Index::from_target("kind_idx", "kind").unwrap(),
            Index::from_target("score_idx", r#"{"pk":["tenant","day"],"ck":["score"]}"#).unwrap(),
            Index::from_target("tags_idx", "values(tags)").unwrap(),
        ],
    )
}

pub(super) fn counters() -> TableInfo {
    TableInfo::new(
        "ks",
        "hits",
        vec![
            col("page", ColumnKind::PartitionKey, 0, CqlType::Text),
            col("n", ColumnKind::Regular, -1, CqlType::Counter),
        ],
        vec![],
    )
}

pub(super) fn cond(c: &str, op: Op, v: Value) -> Filter {
    Filter::Cond {
        column: c.into(),
        op,
        value: FilterValue::Json(v),
    }
}

pub(super) fn pk() -> Vec<Filter> {
    vec![
        cond("tenant", Op::Eq, json!("acme")),
        cond("day", Op::Eq, json!("2024-05-01")),
    ]
}

pub(super) fn fetch(filters: Vec<Filter>) -> Fetch {
    Fetch {
        table: TableRef {
            schema: None,
            name: "events".into(),
        },
        columns: Columns::All,
        filter: Filter::all(filters),
        order: vec![],
        limit: 100,
        offset: 0,
        count: false,
        page: None,
    }
}

pub(super) const STRICT: PlanOptions = PlanOptions {
    allow_filtering: false,
};
pub(super) const LOOSE: PlanOptions = PlanOptions {
    allow_filtering: true,
};

pub(super) fn plan(f: &Fetch) -> Result<FetchPlan, OpError> {
    plan_fetch(f, &events(), STRICT)
}

pub(super) fn needs_filtering(f: Fetch) {
    match plan(&f) {
        Err(OpError::FilterRequiresIndex { table, reason }) => {
            assert_eq!(table, "events");
            assert!(!reason.is_empty());
        }
        other => panic!("{f:?} gave {other:?}"),
    }
    let p = plan_fetch(&f, &events(), LOOSE).expect("runs with filtering allowed");
    assert!(
        p.select.cql.ends_with(" ALLOW FILTERING"),
        "{}",
        p.select.cql
    );
}

pub(super) fn unsupported(f: Fetch, needle: &str) {
    for opts in [STRICT, LOOSE] {
        match plan_fetch(&f, &events(), opts) {
            Err(OpError::Unsupported { feature: m, .. }) => assert!(m.contains(needle), "{m}"),
            other => panic!("{f:?} gave {other:?}"),
        }
    }
}
