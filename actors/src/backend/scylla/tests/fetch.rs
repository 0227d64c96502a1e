//! Fetches: the keys and indexes that serve a filter, refusals, ordering, counts and cursors.

use scylla::value::CqlValue;
use serde_json::{json, Value};

use super::*;
use crate::backend::scylla::schema::quote;

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
    let cursor = crate::backend::scylla::cursor::encode(&base.fingerprint, b"state");
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
