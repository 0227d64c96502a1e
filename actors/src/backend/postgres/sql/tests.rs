use super::*;
use crate::backend::postgres::schema::{ColumnInfo, ValueKind};
use crate::ops::{Columns, Order, Selected, TableRef};
use serde_json::json;

fn table() -> TableInfo {
    let col = |name: &str, ty: &str, kind: ValueKind, pk: bool| ColumnInfo {
        name: name.into(),
        data_type: ty.into(),
        kind,
        nullable: !pk,
        default: None,
        primary_key: pk,
    };
    TableInfo {
        schema: "public".into(),
        name: "ev\"ents".into(),
        relkind: 'r',
        columns: vec![
            col("id", "bigint", ValueKind::Scalar, true),
            col("status", "text", ValueKind::Scalar, false),
            col(
                "tags",
                "text[]",
                ValueKind::Array { elem_json: false },
                false,
            ),
            col("meta", "jsonb", ValueKind::Json, false),
        ],
        primary_key: vec!["id".into()],
    }
}

fn fetch(filter: Option<Filter>) -> Fetch {
    Fetch {
        table: TableRef {
            schema: None,
            name: "events".into(),
        },
        columns: Columns::All,
        filter,
        order: vec![],
        limit: 10,
        offset: 0,
        count: false,
        page: None,
    }
}

fn cond(c: &str, op: Op, v: Value) -> Filter {
    Filter::Cond {
        column: c.into(),
        op,
        value: FilterValue::Json(v),
    }
}

#[test]
fn identifiers_are_quoted_and_values_bound() {
    let p = plan_fetch(
        &fetch(Some(cond("status", Op::Eq, json!("x'; drop")))),
        &table(),
    )
    .unwrap();
    assert_eq!(
        p.sql,
        "SELECT row_to_json(r.*) FROM \"public\".\"ev\"\"ents\" AS r WHERE \"status\" = $1 LIMIT $2"
    );
    assert_eq!(p.params[0], TextParam(Some("x'; drop".into())));
    let mut paged = fetch(None);
    paged.offset = 20;
    let p = plan_fetch(&paged, &table()).unwrap();
    assert!(p.sql.ends_with("LIMIT $1 OFFSET $2"), "{}", p.sql);
}

#[test]
fn unknown_columns_are_refused_everywhere() {
    let t = table();
    let mut f = fetch(Some(cond("nope", Op::Eq, json!(1))));
    assert!(matches!(
        plan_fetch(&f, &t),
        Err(OpError::UnknownColumn { .. })
    ));
    f.filter = None;
    f.columns = Columns::List(vec!["id\"; --".into()]);
    assert!(matches!(
        plan_fetch(&f, &t),
        Err(OpError::UnknownColumn { .. })
    ));
    f.columns = Columns::All;
    f.order = vec![Order {
        column: "1; drop".into(),
        descending: false,
        nulls_first: None,
    }];
    assert!(matches!(
        plan_fetch(&f, &t),
        Err(OpError::UnknownColumn { .. })
    ));
}

#[test]
fn null_equality_becomes_is_null() {
    let p = plan_fetch(&fetch(Some(cond("status", Op::Eq, Value::Null))), &table()).unwrap();
    assert!(p.sql.contains("\"status\" IS NULL"), "{}", p.sql);
}

#[test]
fn in_binds_one_array_and_empty_in_matches_nothing() {
    let p = plan_fetch(&fetch(Some(cond("id", Op::In, json!([1, 2])))), &table()).unwrap();
    assert!(p.sql.contains("\"id\" = ANY($1)"));
    assert_eq!(p.params[0], TextParam(Some(r#"{"1","2"}"#.into())));
    let p = plan_fetch(&fetch(Some(cond("id", Op::In, json!([])))), &table()).unwrap();
    assert!(p.sql.contains("WHERE false"));
}

#[test]
fn count_reuses_the_filter() {
    let mut f = fetch(Some(cond("id", Op::Gt, json!(5))));
    f.count = true;
    let p = plan_fetch(&f, &table()).unwrap();
    assert_eq!(p.shape, Shape::AggregateWithTotal);
    assert!(p
        .sql
        .contains("(SELECT count(*) FROM \"public\".\"ev\"\"ents\" AS r WHERE \"id\" > $1)"));
}

#[test]
fn insert_rows_with_different_columns_use_default() {
    let ins = Insert {
        order: Vec::new(),
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        rows: vec![
            json!({"status": "a"}).as_object().unwrap().clone(),
            json!({"id": 3}).as_object().unwrap().clone(),
        ],
        columns: vec![],
        on_conflict: OnConflict::Update {
            target: vec![],
            set: None,
        },
        returning: Columns::List(vec!["id".into()]),
        default_to_null: false,
    };
    let p = plan_insert(&ins, &table()).unwrap();
    assert!(
        p.sql
            .contains("(\"status\", \"id\") VALUES ($1, DEFAULT), (DEFAULT, $2)"),
        "{}",
        p.sql
    );
    assert!(
        p.sql
            .contains("ON CONFLICT (\"id\") DO UPDATE SET \"status\" = EXCLUDED.\"status\""),
        "{}",
        p.sql
    );
    assert!(
        p.sql
            .ends_with("RETURNING json_build_object($3::text, r.\"id\")"),
        "{}",
        p.sql
    );
    assert_eq!(
        p.params[2],
        TextParam(Some("id".into())),
        "JSON keys are bound, never spliced"
    );
}

#[test]
fn delete_by_resource_id_uses_the_primary_key() {
    let d = Delete {
        order: Vec::new(),
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        target: DeleteTarget::ResourceId(json!("7")),
        returning: Columns::All,
    };
    let p = plan_delete(&d, &table()).unwrap();
    assert!(p.sql.contains("WHERE \"id\" = $1"), "{}", p.sql);
    let mut t = table();
    t.primary_key.clear();
    assert!(matches!(
        plan_delete(&d, &t),
        Err(OpError::NoPrimaryKey { .. })
    ));
}

#[test]
fn update_needs_columns() {
    let u = Update {
        order: Vec::new(),
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        set: Map::new(),
        filter: cond("id", Op::Eq, json!(1)),
        returning: Columns::All,
    };
    assert!(matches!(
        plan_update(&u, &table()),
        Err(OpError::InvalidRequest(_))
    ));
}

#[test]
fn selections_expand_star_and_name_each_column_once() {
    let mut f = fetch(None);
    f.columns = Columns::List(vec!["status".into(), "*".into(), "status".into()]);
    let p = plan_fetch(&f, &table()).unwrap();
    let keys: Vec<_> = p
        .params
        .iter()
        .take(4)
        .map(|t| t.0.clone().unwrap())
        .collect();
    assert_eq!(keys, ["status", "id", "tags", "meta"]);
    assert!(
        p.sql
            .starts_with("SELECT json_build_object($1::text, r.\"status\", $2::text, r.\"id\""),
        "{}",
        p.sql
    );
}

#[test]
fn update_and_delete_refuse_filters_that_select_everything() {
    let everything = Filter::And(vec![Filter::And(vec![])]);
    let u = Update {
        order: Vec::new(),
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        set: json!({"status": "x"}).as_object().unwrap().clone(),
        filter: everything.clone(),
        returning: Columns::All,
    };
    assert!(matches!(
        plan_update(&u, &table()),
        Err(OpError::MissingFilter(_))
    ));
    let d = Delete {
        order: Vec::new(),
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        target: DeleteTarget::Filter(everything),
        returning: Columns::All,
    };
    assert!(matches!(
        plan_delete(&d, &table()),
        Err(OpError::MissingFilter(_))
    ));
}

#[test]
fn renamed_columns_take_bound_keys_and_each_key_appears_once() {
    let mut f = fetch(None);
    f.columns = Columns::List(vec![
        Selected::renamed("status", "state\"); drop table x; --"),
        Selected::renamed("id", "n"),
        Selected::renamed("status", "n"),
        "*".into(),
    ]);
    let p = plan_fetch(&f, &table()).unwrap();
    let keys: Vec<_> = p
        .params
        .iter()
        .take(6)
        .map(|t| t.0.clone().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "state\"); drop table x; --",
            "n",
            "id",
            "status",
            "tags",
            "meta"
        ]
    );
    assert!(!p.sql.contains("drop table"), "{}", p.sql);
    assert!(
        p.sql.starts_with(
            "SELECT json_build_object($1::text, r.\"status\", $2::text, r.\"id\", $3::text, r.\"id\""
        ),
        "{}",
        p.sql
    );
    f.columns = Columns::List(vec![Selected::renamed("nope", "x")]);
    assert!(matches!(
        plan_fetch(&f, &table()),
        Err(OpError::UnknownColumn { .. })
    ));
}

#[test]
fn counted_fetches_render_rows_like_plain_ones() {
    let mut f = fetch(Some(cond("id", Op::Gt, json!(5))));
    f.count = true;
    f.columns = Columns::List(vec![Selected::renamed("status", "s")]);
    let p = plan_fetch(&f, &table()).unwrap();
    assert!(
        p.sql.starts_with(
            "SELECT coalesce(json_agg(p.j), '[]'), count(*), (SELECT count(*) FROM \"public\".\"ev\"\"ents\" AS r WHERE \"id\" > $1) FROM (SELECT json_build_object($2::text, r.\"status\") AS j FROM"
        ),
        "{}",
        p.sql
    );
}

#[test]
fn an_insert_column_list_chooses_the_columns_and_ignores_other_keys() {
    let ins = Insert {
        order: Vec::new(),
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        rows: vec![
            json!({"status": "a", "ignored": 1})
                .as_object()
                .unwrap()
                .clone(),
            json!({"id": 3}).as_object().unwrap().clone(),
        ],
        columns: vec!["id".into(), "status".into(), "tags".into()],
        on_conflict: OnConflict::Error,
        returning: Columns::All,
        default_to_null: true,
    };
    let p = plan_insert(&ins, &table()).unwrap();
    assert!(
        p.sql
            .contains("(\"id\", \"status\", \"tags\") VALUES (NULL, $1, NULL), ($2, NULL, NULL)"),
        "{}",
        p.sql
    );
    let mut bad = ins.clone();
    bad.columns = vec!["nope".into()];
    assert!(matches!(
        plan_insert(&bad, &table()),
        Err(OpError::UnknownColumn { .. })
    ));
}

#[test]
fn an_ordered_write_selects_its_returned_rows_in_that_order() {
    let d = Delete {
        order: vec![Order {
            column: "status".into(),
            descending: true,
            nulls_first: Some(false),
        }],
        table: TableRef {
            schema: None,
            name: "e".into(),
        },
        target: DeleteTarget::ResourceId(json!("7")),
        returning: Columns::List(vec!["id".into()]),
    };
    let p = plan_delete(&d, &table()).unwrap();
    assert!(
        p.sql.starts_with("WITH w AS (DELETE FROM \"public\".\"ev\"\"ents\" AS r WHERE \"id\" = $1 RETURNING r.*) SELECT json_build_object($2::text, r.\"id\") FROM w AS r ORDER BY \"status\" DESC NULLS LAST"),
        "{}",
        p.sql
    );
    let mut bad = d.clone();
    bad.order[0].column = "nope".into();
    assert!(plan_delete(&bad, &table()).is_err());
}
