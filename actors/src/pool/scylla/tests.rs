//! Translation to CQL: what runs, what is refused and why. The rules are in `plan.rs`,
//! `restrict.rs` and `write.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use scylla::value::CqlValue;
use serde_json::{json, Map, Value};

use super::plan::{plan_fetch, FetchPlan, PlanOptions};
use super::schema::{quote, Column, ColumnKind, Index, IndexKind, TableInfo};
use super::types::{resolve_udts, CqlType, Udt};
use super::write::{plan_delete, plan_insert, plan_update};
use crate::ops::*;

fn col(name: &str, kind: ColumnKind, position: i32, ty: CqlType) -> Column {
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
fn events() -> TableInfo {
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

fn counters() -> TableInfo {
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

fn cond(c: &str, op: Op, v: Value) -> Filter {
    Filter::Cond {
        column: c.into(),
        op,
        value: FilterValue::Json(v),
    }
}

fn pk() -> Vec<Filter> {
    vec![
        cond("tenant", Op::Eq, json!("acme")),
        cond("day", Op::Eq, json!("2024-05-01")),
    ]
}

fn fetch(filters: Vec<Filter>) -> Fetch {
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

const STRICT: PlanOptions = PlanOptions {
    allow_filtering: false,
};
const LOOSE: PlanOptions = PlanOptions {
    allow_filtering: true,
};

fn plan(f: &Fetch) -> Result<FetchPlan, OpError> {
    plan_fetch(f, &events(), STRICT)
}

fn needs_filtering(f: Fetch) {
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

fn unsupported(f: Fetch, needle: &str) {
    for opts in [STRICT, LOOSE] {
        match plan_fetch(&f, &events(), opts) {
            Err(OpError::Unsupported(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{f:?} gave {other:?}"),
        }
    }
}

const ALL: &str = r#""tenant", "day", "ts", "id", "owner", "kind", "payload", "score", "tags""#;

#[test]
fn a_fetch_without_filter_is_a_paged_scan_of_quoted_columns_in_key_order() {
    let p = plan(&fetch(vec![])).unwrap();
    assert_eq!(p.select.cql, format!(r#"SELECT {ALL} FROM "ks"."events""#));
    assert!(p.select.values.is_empty());
    assert_eq!(p.fields[0], (0, "tenant".to_string()));
    assert_eq!(p.limit, 100);
    assert!(p.count.is_none() && p.paging_state.is_none() && !p.matches_nothing);
}

#[test]
fn the_whole_partition_key_binds_typed_values() {
    let p = plan(&fetch(pk())).unwrap();
    assert!(
        p.select
            .cql
            .ends_with(r#" WHERE "tenant" = ? AND "day" = ?"#),
        "{}",
        p.select.cql
    );
    assert_eq!(p.select.values[0], Some(CqlValue::Text("acme".into())));
    assert!(matches!(p.select.values[1], Some(CqlValue::Date(_))));
    let mut f = pk();
    f[0] = cond("tenant", Op::In, json!(["a", "b"]));
    let p = plan(&fetch(f)).unwrap();
    assert!(p.select.cql.contains(r#""tenant" IN (?, ?)"#));
    assert_eq!(p.select.values.len(), 3);
}

#[test]
fn part_of_the_partition_key_or_a_range_on_it_needs_filtering() {
    needs_filtering(fetch(vec![cond("tenant", Op::Eq, json!("acme"))]));
    needs_filtering(fetch(vec![
        cond("tenant", Op::Gt, json!("a")),
        cond("day", Op::Eq, json!("2024-05-01")),
    ]));
}

#[test]
fn clustering_columns_run_in_key_order_with_one_final_range() {
    let mut f = pk();
    f.push(cond("ts", Op::Eq, json!("2024-05-01T10:00:00Z")));
    f.push(cond(
        "id",
        Op::Gte,
        json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"),
    ));
    let p = plan(&fetch(f)).unwrap();
    assert!(
        p.select.cql.ends_with(r#""ts" = ? AND "id" >= ?"#),
        "{}",
        p.select.cql
    );
    let mut f = pk();
    f.push(cond("ts", Op::Gt, json!(0)));
    f.push(cond("ts", Op::Lte, json!("2024-05-02")));
    assert!(
        plan(&fetch(f)).is_ok(),
        "a lower and an upper bound on one column"
    );
    // A range, then a further clustering column.
    let mut f = pk();
    f.push(cond("ts", Op::Gt, json!(0)));
    f.push(cond(
        "id",
        Op::Eq,
        json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"),
    ));
    needs_filtering(fetch(f));
    // A skipped clustering column.
    let mut f = pk();
    f.push(cond(
        "id",
        Op::Eq,
        json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"),
    ));
    needs_filtering(fetch(f));
    // Clustering columns without the partition key.
    needs_filtering(fetch(vec![cond("ts", Op::Eq, json!(0))]));
}

#[test]
fn regular_columns_need_an_index_or_filtering() {
    needs_filtering(fetch(vec![cond("payload", Op::Eq, json!("x"))]));
    needs_filtering(fetch(vec![cond("owner", Op::Eq, json!("x"))]));
    let mut f = pk();
    f.push(cond("payload", Op::Eq, json!("x")));
    needs_filtering(fetch(f));
    // A global index serves eq alone or with the whole partition key.
    let p = plan(&fetch(vec![cond("kind", Op::Eq, json!("click"))])).unwrap();
    assert!(p.select.cql.ends_with(r#" WHERE "kind" = ?"#));
    let mut f = pk();
    f.push(cond("kind", Op::Eq, json!("click")));
    assert!(plan(&fetch(f)).is_ok());
    needs_filtering(fetch(vec![
        cond("tenant", Op::Eq, json!("acme")),
        cond("kind", Op::Eq, json!("click")),
    ]));
    needs_filtering(fetch(vec![cond("kind", Op::Gt, json!("a"))]));
    needs_filtering(fetch(vec![
        cond("kind", Op::Eq, json!("a")),
        cond("payload", Op::Eq, json!("b")),
    ]));
    // A local index needs the partition key.
    needs_filtering(fetch(vec![cond("score", Op::Eq, json!(3))]));
    let mut f = pk();
    f.push(cond("score", Op::Eq, json!(3)));
    assert!(plan(&fetch(f)).is_ok());
}

#[test]
fn contains_uses_a_values_index_on_sets_and_lists_only() {
    let p = plan(&fetch(vec![cond("tags", Op::Contains, json!("red"))])).unwrap();
    assert!(p.select.cql.ends_with(r#" WHERE "tags" CONTAINS ?"#));
    assert_eq!(p.select.values, vec![Some(CqlValue::Text("red".into()))]);
    needs_filtering(fetch(vec![cond(
        "tags",
        Op::Contains,
        json!(["red", "blue"]),
    )]));
    let p = plan_fetch(
        &fetch(vec![cond("tags", Op::Contains, json!(["red", "blue"]))]),
        &events(),
        LOOSE,
    )
    .unwrap();
    assert!(p
        .select
        .cql
        .contains(r#""tags" CONTAINS ? AND "tags" CONTAINS ?"#));
    unsupported(
        fetch(vec![cond("payload", Op::Contains, json!("x"))]),
        "list and set",
    );
}

#[test]
fn operators_without_a_cql_form_are_refused_never_dropped() {
    let c = cond("tenant", Op::Eq, json!("a"));
    unsupported(fetch(vec![Filter::Or(vec![c.clone(), c.clone()])]), "or");
    unsupported(fetch(vec![Filter::Not(Box::new(c.clone()))]), "not");
    unsupported(fetch(vec![cond("payload", Op::Like, json!("a%"))]), "like");
    unsupported(
        fetch(vec![cond("payload", Op::Ilike, json!("a%"))]),
        "ilike",
    );
    unsupported(fetch(vec![cond("payload", Op::Neq, json!("a"))]), "neq");
    unsupported(fetch(vec![cond("payload", Op::Is, json!(null))]), "null");
    unsupported(
        fetch(vec![cond("tags", Op::ContainedBy, json!(["a"]))]),
        "containedBy",
    );
    // Nested inside an and, too.
    unsupported(
        fetch(vec![Filter::And(vec![c.clone(), Filter::Or(vec![c])])]),
        "or",
    );
}

#[test]
fn identifiers_are_found_in_the_schema_and_values_are_always_bound() {
    let hostile = r#"tenant" = 'x' OR "1"="1"#;
    for f in [
        fetch(vec![cond(hostile, Op::Eq, json!("x"))]),
        Fetch {
            columns: Columns::List(vec![Selected::plain(hostile)]),
            ..fetch(vec![])
        },
        Fetch {
            order: vec![Order {
                column: "ts; DROP TABLE events".into(),
                descending: false,
                nulls_first: None,
            }],
            ..fetch(pk())
        },
    ] {
        assert!(
            matches!(plan(&f), Err(OpError::UnknownColumn { .. })),
            "{f:?}"
        );
    }
    let evil = "acme'; DROP TABLE events; --";
    let mut f = pk();
    f[0] = cond("tenant", Op::Eq, json!(evil));
    let p = plan(&fetch(f)).unwrap();
    assert!(!p.select.cql.contains("DROP"));
    assert_eq!(p.select.values[0], Some(CqlValue::Text(evil.into())));
    assert_eq!(quote(r#"we"ird"#), r#""we""ird""#);
}

#[test]
fn bad_values_and_bad_combinations_are_errors_naming_the_column() {
    let mut f = pk();
    f[1] = cond("day", Op::Eq, json!("yesterday"));
    assert!(
        matches!(plan(&fetch(f)), Err(OpError::InvalidValue { column, .. }) if column == "day")
    );
    let mut f = pk();
    f[0] = cond("tenant", Op::Eq, json!(null));
    assert!(matches!(plan(&fetch(f)), Err(OpError::InvalidFilter(m)) if m.contains("null")));
    let mut f = pk();
    f.push(cond("tenant", Op::Eq, json!("other")));
    assert!(matches!(plan(&fetch(f)), Err(OpError::InvalidFilter(_))));
    let mut f = pk();
    f.push(cond("ts", Op::Gt, json!(0)));
    f.push(cond("ts", Op::Gte, json!(1)));
    assert!(matches!(plan(&fetch(f)), Err(OpError::InvalidFilter(_))));
    let many: Vec<Value> = (0..101).map(|i| json!(format!("t{i}"))).collect();
    let mut f = pk();
    f[0] = cond("tenant", Op::In, Value::Array(many));
    assert!(matches!(plan(&fetch(f)), Err(OpError::LimitExceeded(_))));
    let mut deep = cond("tenant", Op::Eq, json!("a"));
    for _ in 0..20 {
        deep = Filter::And(vec![deep]);
    }
    assert!(matches!(
        plan(&fetch(vec![deep])),
        Err(OpError::FilterTooDeep { .. })
    ));
}

#[test]
fn an_empty_in_matches_nothing_without_a_round_trip() {
    let mut f = pk();
    f[0] = cond("tenant", Op::In, json!([]));
    assert!(plan(&fetch(f)).unwrap().matches_nothing);
}

#[test]
fn text_operands_from_the_postgrest_dialect_are_typed_by_the_column() {
    let f = fetch(vec![
        Filter::Cond {
            column: "tenant".into(),
            op: Op::In,
            value: FilterValue::List(vec!["a".into(), "b, c".into()]),
        },
        Filter::Cond {
            column: "day".into(),
            op: Op::Eq,
            value: FilterValue::Text("2024-05-01".into()),
        },
    ]);
    let p = plan(&f).unwrap();
    assert_eq!(p.select.values[1], Some(CqlValue::Text("b, c".into())));
    assert!(matches!(p.select.values[2], Some(CqlValue::Date(_))));
}

fn ordered(by: &[(&str, bool)], filters: Vec<Filter>) -> Fetch {
    Fetch {
        order: by
            .iter()
            .map(|(c, d)| Order {
                column: c.to_string(),
                descending: *d,
                nulls_first: None,
            })
            .collect(),
        ..fetch(filters)
    }
}

#[test]
fn order_follows_the_clustering_key_within_a_partition() {
    let p = plan(&ordered(&[("ts", true)], pk())).unwrap();
    assert!(
        p.select.cql.ends_with(r#" ORDER BY "ts" DESC"#),
        "{}",
        p.select.cql
    );
    let p = plan(&ordered(&[("ts", false), ("id", true)], pk())).unwrap();
    assert!(p.select.cql.ends_with(r#" ORDER BY "ts" ASC, "id" DESC"#));
    unsupported(
        ordered(&[("ts", true), ("id", true)], pk()),
        "all in their order",
    );
    unsupported(ordered(&[("id", false)], pk()), "clustering columns only");
    unsupported(
        ordered(&[("payload", false)], pk()),
        "clustering columns only",
    );
    unsupported(ordered(&[("ts", true)], vec![]), "partition key");
    let mut f = ordered(&[("ts", true)], pk());
    f.order[0].nulls_first = Some(true);
    unsupported(f, "nulls");
}

#[test]
fn offsets_are_refused_with_the_cursor_explained() {
    let f = Fetch {
        offset: 10,
        ..fetch(vec![])
    };
    unsupported(f, "page_state");
}

#[test]
fn count_runs_only_within_named_partitions() {
    let f = Fetch {
        count: true,
        ..fetch(pk())
    };
    let p = plan(&f).unwrap();
    let c = p.count.unwrap();
    assert_eq!(
        c.cql,
        r#"SELECT COUNT(*) FROM "ks"."events" WHERE "tenant" = ? AND "day" = ?"#
    );
    assert_eq!(c.values, p.select.values);
    unsupported(
        Fetch {
            count: true,
            ..fetch(vec![])
        },
        "partition key",
    );
}

#[test]
fn selected_columns_keep_their_keys_and_are_read_once() {
    let f = Fetch {
        columns: Columns::List(vec![
            Selected::plain("payload"),
            Selected::renamed("payload", "body"),
            Selected::renamed("tenant", "who"),
        ]),
        ..fetch(vec![])
    };
    let p = plan(&f).unwrap();
    assert!(p
        .select
        .cql
        .starts_with(r#"SELECT "payload", "tenant" FROM"#));
    assert_eq!(
        p.fields,
        vec![(0, "payload".into()), (0, "body".into()), (1, "who".into())]
    );
    let star = Fetch {
        columns: Columns::List(vec![Selected::plain("*"), Selected::renamed("kind", "k")]),
        ..fetch(vec![])
    };
    assert_eq!(plan(&star).unwrap().fields.len(), 10);
}

#[test]
fn cursors_resume_the_same_query_only() {
    let base = plan(&fetch(pk())).unwrap();
    let cursor = super::cursor::encode(&base.fingerprint, b"state");
    let f = Fetch {
        page: Some(cursor.clone()),
        limit: 5,
        ..fetch(pk())
    };
    assert_eq!(
        plan(&f).unwrap().paging_state.as_deref(),
        Some(&b"state"[..])
    );
    let other = Fetch {
        page: Some(cursor),
        ..fetch(vec![])
    };
    assert!(
        matches!(plan(&other), Err(OpError::InvalidValue { column, .. }) if column == "page_state")
    );
}

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn insert(rows: Vec<Value>, on_conflict: OnConflict) -> Insert {
    Insert {
        table: TableRef {
            schema: None,
            name: "events".into(),
        },
        rows: rows.into_iter().map(row).collect(),
        columns: vec![],
        on_conflict,
        returning: Columns::All,
        default_to_null: false,
    }
}

fn full_row() -> Value {
    json!({"tenant": "acme", "day": "2024-05-01", "ts": 0,
           "id": "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f", "payload": "hi"})
}

#[test]
fn inserts_bind_every_value_and_need_the_whole_primary_key() {
    let p = plan_insert(&insert(vec![full_row()], OnConflict::Error), &events()).unwrap();
    assert_eq!(p.statements.len(), 1);
    assert!(!p.batch && !p.conditional);
    assert_eq!(
        p.statements[0].cql,
        r#"INSERT INTO "ks"."events" ("tenant", "day", "ts", "id", "payload") VALUES (?, ?, ?, ?, ?)"#
    );
    assert_eq!(p.rows[0]["ts"], json!("1970-01-01T00:00:00.000Z"));
    let two = plan_insert(
        &insert(vec![full_row(), full_row()], OnConflict::Error),
        &events(),
    )
    .unwrap();
    assert!(two.batch);
    let mut r = full_row();
    r.as_object_mut().unwrap().remove("id");
    match plan_insert(&insert(vec![r], OnConflict::Error), &events()) {
        Err(OpError::FullPrimaryKeyRequired(m)) => assert!(m.contains("id"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut r = full_row();
    r["nope\"; DROP"] = json!(1);
    assert!(matches!(
        plan_insert(&insert(vec![r], OnConflict::Error), &events()),
        Err(OpError::UnknownColumn { .. })
    ));
    let mut r = full_row();
    r["day"] = json!(12);
    assert!(
        matches!(plan_insert(&insert(vec![r], OnConflict::Error), &events()), Err(OpError::InvalidValue { column, .. }) if column == "day")
    );
}

#[test]
fn insert_conflicts_are_on_the_primary_key() {
    let p = plan_insert(
        &insert(
            vec![full_row(), full_row()],
            OnConflict::Ignore { target: vec![] },
        ),
        &events(),
    )
    .unwrap();
    assert!(
        p.conditional && !p.batch,
        "lightweight transactions run one by one"
    );
    assert!(p.statements[0].cql.ends_with(" IF NOT EXISTS"));
    let upsert = OnConflict::Update {
        target: vec!["tenant".into(), "day".into(), "ts".into(), "id".into()],
        set: None,
    };
    let p = plan_insert(&insert(vec![full_row()], upsert), &events()).unwrap();
    assert!(!p.conditional && !p.statements[0].cql.contains(" IF "));
    let with_set = OnConflict::Update {
        target: vec![],
        set: Some(row(json!({"payload": "x"}))),
    };
    assert!(matches!(
        plan_insert(&insert(vec![full_row()], with_set), &events()),
        Err(OpError::Unsupported(_))
    ));
    let other_target = OnConflict::Ignore {
        target: vec!["payload".into()],
    };
    assert!(matches!(
        plan_insert(&insert(vec![full_row()], other_target), &events()),
        Err(OpError::Unsupported(_))
    ));
    let mut i = insert(vec![json!({"page": "/"})], OnConflict::Error);
    i.table.name = "hits".into();
    assert!(
        matches!(plan_insert(&i, &counters()), Err(OpError::Unsupported(m)) if m.contains("update"))
    );
}

#[test]
fn listed_insert_columns_bind_null_only_when_asked() {
    let mut i = insert(vec![full_row()], OnConflict::Error);
    i.columns = ["tenant", "day", "ts", "id", "kind"]
        .map(String::from)
        .to_vec();
    let p = plan_insert(&i, &events()).unwrap();
    assert!(!p.statements[0].cql.contains("\"kind\""));
    i.default_to_null = true;
    let p = plan_insert(&i, &events()).unwrap();
    assert!(p.statements[0].cql.contains("\"kind\""));
    assert_eq!(p.statements[0].values.last(), Some(&None));
}

fn update(set: Value, filters: Vec<Filter>) -> Update {
    Update {
        table: TableRef {
            schema: None,
            name: "events".into(),
        },
        set: row(set),
        filter: Filter::all(filters).unwrap_or(Filter::And(vec![])),
        returning: Columns::All,
    }
}

fn full_key() -> Vec<Filter> {
    let mut f = pk();
    f.push(cond("ts", Op::Eq, json!(0)));
    f.push(cond(
        "id",
        Op::Eq,
        json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"),
    ));
    f
}

#[test]
fn updates_name_one_row_by_its_whole_primary_key() {
    let p = plan_update(
        &update(json!({"payload": "x", "kind": null}), full_key()),
        &events(),
    )
    .unwrap();
    assert_eq!(
        p.statements[0].cql,
        r#"UPDATE "ks"."events" SET "payload" = ?, "kind" = ? WHERE "tenant" = ? AND "day" = ? AND "ts" = ? AND "id" = ?"#
    );
    assert_eq!(p.statements[0].values[1], None);
    assert_eq!(p.rows[0]["payload"], json!("x"));
    match plan_update(&update(json!({"payload": "x"}), pk()), &events()) {
        Err(OpError::FullPrimaryKeyRequired(m)) => assert!(m.contains("ts, id"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut f = full_key();
    f.push(cond("kind", Op::Eq, json!("a")));
    assert!(matches!(
        plan_update(&update(json!({"payload": "x"}), f), &events()),
        Err(OpError::FullPrimaryKeyRequired(_))
    ));
    let mut f = full_key();
    f[3] = cond("id", Op::Gt, json!("0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"));
    assert!(matches!(
        plan_update(&update(json!({"payload": "x"}), f), &events()),
        Err(OpError::FullPrimaryKeyRequired(_))
    ));
    assert!(matches!(
        plan_update(&update(json!({"tenant": "x"}), full_key()), &events()),
        Err(OpError::InvalidRequest(_))
    ));
    assert!(matches!(
        plan_update(&update(json!({}), full_key()), &events()),
        Err(OpError::InvalidRequest(_))
    ));
    let or = vec![Filter::Or(full_key())];
    assert!(matches!(
        plan_update(&update(json!({"payload": "x"}), or), &events()),
        Err(OpError::Unsupported(_))
    ));
}

#[test]
fn counters_are_incremented() {
    let mut u = update(json!({"n": -3}), vec![cond("page", Op::Eq, json!("/"))]);
    u.table.name = "hits".into();
    let p = plan_update(&u, &counters()).unwrap();
    assert_eq!(
        p.statements[0].cql,
        r#"UPDATE "ks"."hits" SET "n" = "n" + ? WHERE "page" = ?"#
    );
    assert_eq!(
        p.statements[0].values[0],
        Some(CqlValue::Counter(scylla::value::Counter(-3)))
    );
    let mut u = update(json!({"n": null}), vec![cond("page", Op::Eq, json!("/"))]);
    u.table.name = "hits".into();
    assert!(matches!(
        plan_update(&u, &counters()),
        Err(OpError::InvalidValue { .. })
    ));
}

fn delete(target: DeleteTarget) -> Delete {
    Delete {
        table: TableRef {
            schema: None,
            name: "events".into(),
        },
        target,
        returning: Columns::All,
    }
}

#[test]
fn deletes_name_one_row_by_key_or_resource_id() {
    let p = plan_delete(
        &delete(DeleteTarget::Filter(Filter::And(full_key()))),
        &events(),
    )
    .unwrap();
    assert_eq!(
        p.statements[0].cql,
        r#"DELETE FROM "ks"."events" WHERE "tenant" = ? AND "day" = ? AND "ts" = ? AND "id" = ?"#
    );
    let id = json!({"tenant": "acme", "day": "2024-05-01", "ts": 0, "id": "0b5e3c9a-2d4f-4c1e-9f7a-1a2b3c4d5e6f"});
    let by_id = plan_delete(&delete(DeleteTarget::ResourceId(id.clone())), &events()).unwrap();
    assert_eq!(by_id.statements, p.statements);
    let both = DeleteTarget::Both(
        json!({"tenant": "acme", "day": "2024-05-01"}),
        Filter::And(full_key()[2..].to_vec()),
    );
    assert_eq!(
        plan_delete(&delete(both), &events()).unwrap().statements,
        p.statements
    );
    let clash = DeleteTarget::Both(json!({"tenant": "other"}), Filter::And(full_key()));
    assert!(matches!(
        plan_delete(&delete(clash), &events()),
        Err(OpError::InvalidFilter(_))
    ));
    assert!(matches!(
        plan_delete(&delete(DeleteTarget::Filter(Filter::And(pk()))), &events()),
        Err(OpError::FullPrimaryKeyRequired(_))
    ));
    assert!(matches!(
        plan_delete(&delete(DeleteTarget::ResourceId(json!("acme"))), &events()),
        Err(OpError::InvalidRequest(_))
    ));
    assert!(matches!(
        plan_delete(
            &delete(DeleteTarget::ResourceId(json!({"payload": "x"}))),
            &events()
        ),
        Err(OpError::InvalidRequest(_))
    ));
    let mut d = delete(DeleteTarget::ResourceId(json!("/")));
    d.table.name = "hits".into();
    let p = plan_delete(&d, &counters()).unwrap();
    assert_eq!(
        p.statements[0].cql,
        r#"DELETE FROM "ks"."hits" WHERE "page" = ?"#
    );
}

#[test]
fn catalog_types_parse_with_frozen_collections_tuples_vectors_and_udts() {
    let udts = resolve_udts(
        "ks",
        vec![
            (
                "outer".into(),
                vec!["inner".into()],
                vec!["frozen<inner>".into()],
            ),
            (
                "inner".into(),
                vec!["n".into(), "Tag".into()],
                vec!["int".into(), "text".into()],
            ),
            ("broken".into(), vec!["x".into()], vec!["nosuchtype".into()]),
        ],
    );
    assert!(udts.contains_key("outer") && udts.contains_key("inner"));
    assert!(!udts.contains_key("broken"));
    let p = |s: &str| CqlType::parse(s, "ks", &udts);
    assert_eq!(
        p("frozen<map<text, list<int>>>").unwrap(),
        CqlType::Map(
            Box::new(CqlType::Text),
            Box::new(CqlType::List(Box::new(CqlType::Int)))
        )
    );
    assert_eq!(
        p("tuple<int, frozen<set<varchar>>, timeuuid>").unwrap(),
        CqlType::Tuple(vec![
            CqlType::Int,
            CqlType::Set(Box::new(CqlType::Text)),
            CqlType::Timeuuid
        ])
    );
    assert_eq!(
        p("vector<float, 3>").unwrap(),
        CqlType::Vector(Box::new(CqlType::Float), 3)
    );
    match p("frozen<outer>").unwrap() {
        CqlType::Udt(u) => {
            assert_eq!(u.name, "outer");
            assert!(matches!(&u.fields[0].1, CqlType::Udt(i) if i.fields[1].0 == "Tag"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p("'org.example.Custom'").unwrap(),
        CqlType::Custom("org.example.Custom".into())
    );
    for bad in [
        "map<int>",
        "list<int",
        "nosuch",
        "list<int> extra",
        "\"unterminated",
        "",
    ] {
        assert!(p(bad).is_err(), "{bad}");
    }
    let deep = format!("{}int{}", "list<".repeat(40), ">".repeat(40));
    assert!(p(&deep).is_err());
    let quoted: HashMap<String, Arc<Udt>> = HashMap::from([(
        "My Type".to_string(),
        Arc::new(Udt {
            keyspace: "ks".into(),
            name: "My Type".into(),
            fields: vec![],
        }),
    )]);
    assert!(matches!(
        CqlType::parse(r#"frozen<"My Type">"#, "ks", &quoted),
        Ok(CqlType::Udt(_))
    ));
    assert_eq!(
        CqlType::Map(Box::new(CqlType::Text), Box::new(CqlType::Int)).cql_name(),
        "map<text, int>"
    );
}

#[test]
fn index_targets_say_which_filters_they_serve() {
    let i = |t: &str| Index::from_target("i", t).unwrap();
    assert_eq!(
        (i("kind").column, i("kind").kind),
        ("kind".to_string(), IndexKind::Global)
    );
    assert_eq!(i("values(tags)").kind, IndexKind::Values);
    assert_eq!(i("keys(m)").kind, IndexKind::Other);
    assert_eq!(i("\"Odd\"\"Name\"").column, "Odd\"Name");
    let local = i(r#"{"pk":["a"],"ck":["b"]}"#);
    assert_eq!((local.column.as_str(), local.kind), ("b", IndexKind::Local));
    assert!(Index::from_target("i", "{not json").is_none());
    let e = events();
    assert_eq!(e.index_of("kind"), Some(IndexKind::Global));
    assert_eq!(e.index_of("payload"), None);
    let names: Vec<&str> = e.primary_key().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["tenant", "day", "ts", "id"]);
}
