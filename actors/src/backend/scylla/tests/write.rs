//! Inserts, updates and deletes: the whole primary key, conflicts, counters.

use scylla::value::CqlValue;
use serde_json::{json, Map, Value};

use super::*;
use crate::backend::scylla::write::{plan_delete, plan_insert, plan_update};

fn row(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn insert(rows: Vec<Value>, on_conflict: OnConflict) -> Insert {
    Insert {
        order: Vec::new(),
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
        Err(OpError::Unsupported { .. })
    ));
    let other_target = OnConflict::Ignore {
        target: vec!["payload".into()],
    };
    assert!(matches!(
        plan_insert(&insert(vec![full_row()], other_target), &events()),
        Err(OpError::Unsupported { .. })
    ));
    let mut i = insert(vec![json!({"page": "/"})], OnConflict::Error);
    i.table.name = "hits".into();
    assert!(
        matches!(plan_insert(&i, &counters()), Err(OpError::Unsupported { feature: m, .. }) if m.contains("update"))
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
        order: Vec::new(),
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
        Err(OpError::Unsupported { .. })
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
        order: Vec::new(),
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
fn single_row_writes_update_and_delete_only_an_existing_row() {
    use crate::backend::scylla::write::exactly_one;
    let u = plan_update(&update(json!({"payload": "x"}), full_key()), &events()).unwrap();
    let one = exactly_one(u, &events()).unwrap();
    assert!(one.conditional);
    assert!(one.statements[0].cql.ends_with(" IF EXISTS"));
    let d = plan_delete(
        &delete(DeleteTarget::Filter(Filter::And(full_key()))),
        &events(),
    )
    .unwrap();
    assert!(exactly_one(d, &events()).unwrap().statements[0]
        .cql
        .ends_with(" IF EXISTS"));
    let i = plan_insert(&insert(vec![full_row()], OnConflict::Error), &events()).unwrap();
    let same = exactly_one(i.clone(), &events()).unwrap();
    assert_eq!(same, i, "a one-row insert touches one row as it is");
    let two = plan_insert(
        &insert(vec![full_row(), full_row()], OnConflict::Error),
        &events(),
    )
    .unwrap();
    assert!(matches!(
        exactly_one(two, &events()),
        Err(OpError::NotOneRow { rows: 2 })
    ));
    let mut c = update(json!({"n": 1}), vec![cond("page", Op::Eq, json!("/"))]);
    c.table.name = "hits".into();
    let c = plan_update(&c, &counters()).unwrap();
    assert!(matches!(
        exactly_one(c, &counters()),
        Err(OpError::Unsupported { .. })
    ));
}
