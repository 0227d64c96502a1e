use super::*;
use athena_actors::ops::{FilterValue, OnConflict, Op};
use serde_json::json;

const OPTS: DialectOptions = DialectOptions {
    default_limit: 100,
    max_limit: 1000,
    camel_to_snake: false,
};

fn body(v: Value) -> Body {
    v.as_object().unwrap().clone()
}

#[test]
fn snake_case_conversion() {
    assert_eq!(to_snake("userId"), "user_id");
    assert_eq!(to_snake("HTTPCode"), "http_code");
    assert_eq!(to_snake("already_snake"), "already_snake");
    assert_eq!(to_snake("createdAt2"), "created_at2");
}

#[test]
fn fetch_defaults_and_paging() {
    let f = fetch(&body(json!({"table_name": "t"})), &OPTS).unwrap();
    assert_eq!((f.limit, f.offset, f.count), (100, 0, false));
    let f = fetch(
        &body(json!({"table_name": "t", "current_page": 3, "page_size": 20, "count": "exact"})),
        &OPTS,
    )
    .unwrap();
    assert_eq!((f.limit, f.offset, f.count), (20, 40, true));
    let e = fetch(&body(json!({"table_name": "t", "limit": 5000})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::LimitExceeded);
    let e = fetch(&body(json!({"table_name": "t", "limit": "10"})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::InvalidField);
    let e = fetch(&body(json!({"table_name": "t", "limit": -1})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::InvalidField);
}

#[test]
fn both_condition_dialects_parse() {
    let f = fetch(
        &body(json!({"table_name": "t", "conditions": [
            {"eq_column": "a", "eq_value": 1},
            {"operator": "gt", "column": "b", "value": 2},
            {"operator": "or", "value": "c.eq.x,d.is.null"}
        ]})),
        &OPTS,
    )
    .unwrap();
    match f.filter.unwrap() {
        Filter::And(parts) => {
            assert_eq!(parts.len(), 3);
            assert!(
                matches!(&parts[1], Filter::Cond { op: Op::Gt, value: FilterValue::Json(v), .. } if v == &json!(2))
            );
            assert!(matches!(&parts[2], Filter::Or(p) if p.len() == 2));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_types_are_field_errors() {
    for b in [
        json!({"table_name": 5}),
        json!({"table_name": "t", "columns": 5}),
        json!({"table_name": "t", "conditions": "x"}),
        json!({"table_name": "t", "conditions": [5]}),
        json!({"table_name": "t", "sort_by": 5}),
        json!({"table_name": "t", "count": 3}),
        json!({"table_name": "t", "conditions": [{"operator": 1, "column": "a", "value": 1}]}),
    ] {
        let e = fetch(&body(b.clone()), &OPTS).unwrap_err();
        assert!(
            matches!(e.code, Code::InvalidField | Code::MissingField),
            "{b}: {e}"
        );
    }
}

#[test]
fn camel_case_is_converted_when_asked() {
    let opts = DialectOptions {
        camel_to_snake: true,
        ..OPTS
    };
    let f = fetch(
        &body(json!({"table_name": "t", "columns": ["userId"], "conditions": [{"eq_column": "createdBy", "eq_value": 1}], "order_by": "updatedAt.desc"})),
        &opts,
    )
    .unwrap();
    assert_eq!(f.columns, Columns::List(vec!["user_id".into()]));
    assert!(matches!(f.filter, Some(Filter::Cond { ref column, .. }) if column == "created_by"));
    assert_eq!(f.order[0].column, "updated_at");
    assert!(f.order[0].descending);
    let i = insert(
        &body(json!({"table_name": "t", "insert_body": {"userId": 1}})),
        &opts,
    )
    .unwrap();
    assert!(i.rows[0].contains_key("user_id"));
}

#[test]
fn update_and_delete_refuse_to_run_unfiltered() {
    let e = update(&body(json!({"table_name": "t", "set": {"a": 1}})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::MissingFilter);
    let e = update(
        &body(json!({"table_name": "t", "set": {"a": 1}, "conditions": []})),
        &OPTS,
    )
    .unwrap_err();
    assert_eq!(e.code, Code::MissingFilter);
    let e = delete(&body(json!({"table_name": "t"})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::MissingFilter);
}

#[test]
fn upsert_forms() {
    let i = insert(
        &body(json!({"table_name": "t", "insert_body": [{"a": 1}], "on_conflict": "a"})),
        &OPTS,
    )
    .unwrap();
    assert_eq!(
        i.on_conflict,
        OnConflict::Update {
            target: vec!["a".into()],
            set: None
        }
    );
    let i = insert(
        &body(json!({"table_name": "t", "insert_body": {"a": 1}, "update_body": {"b": 2}})),
        &OPTS,
    )
    .unwrap();
    assert!(
        matches!(i.on_conflict, OnConflict::Update { ref target, set: Some(_) } if target.is_empty())
    );
    let e = insert(&body(json!({"table_name": "t", "insert_body": []})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::InvalidField);
}

#[test]
fn fetch_reads_a_page_cursor_under_either_name() {
    let f = fetch(&body(json!({"table_name": "t"})), &OPTS).unwrap();
    assert_eq!(f.page, None);
    let f = fetch(
        &body(json!({"table_name": "t", "page_state": "AbC_-"})),
        &OPTS,
    )
    .unwrap();
    assert_eq!(f.page.as_deref(), Some("AbC_-"));
    let f = fetch(&body(json!({"table_name": "t", "next_page": "xyz"})), &OPTS).unwrap();
    assert_eq!(f.page.as_deref(), Some("xyz"));
    let f = fetch(&body(json!({"table_name": "t", "page_state": " "})), &OPTS).unwrap();
    assert_eq!(f.page, None, "an empty cursor is the first page");
    let e = fetch(&body(json!({"table_name": "t", "page_state": 5})), &OPTS).unwrap_err();
    assert_eq!(e.code, Code::InvalidField);
}
