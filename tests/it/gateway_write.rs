//! `/gateway/insert`, `/gateway/update` and `/gateway/delete` against a real PostgreSQL.

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn insert_one_object_with_put_and_post() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .call(Method::PUT, "/gateway/insert", Some(json!({"table_name": "users", "insert_body": {"email": "new@example.com", "name": "New"}})))
        .await;
    let row = &rows(&r)[0];
    assert_eq!(r.1["message"], "Inserted 1 row");
    assert_eq!(row["email"], "new@example.com");
    assert_eq!(row["status"], "active", "defaults apply to omitted columns");
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": {"email": "post@example.com"}}),
        )
        .await;
    assert_eq!(rows(&r).len(), 1);
    assert_eq!(db.scalar("SELECT count(*) FROM users").await.unwrap(), "7");
}

#[tokio::test]
async fn insert_many_rows_in_one_statement_with_default_or_null() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": [
            {"email": "a1@example.com", "name": "A1"},
            {"email": "a2@example.com", "status": "paused"}
        ], "columns": ["email", "status"]}),
        )
        .await;
    let out = rows(&r);
    assert_eq!(
        out,
        vec![
            json!({"email": "a1@example.com", "status": "active"}),
            json!({"email": "a2@example.com", "status": "paused"})
        ]
    );
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": [
            {"email": "b1@example.com", "name": "B1"},
            {"email": "b2@example.com", "status": "paused"}
        ], "default_to_null": true, "columns": "email,status,name"}),
        )
        .await;
    let out = rows(&r);
    assert!(
        out[0]["status"].is_null(),
        "default_to_null sends NULL for omitted columns"
    );
    assert!(out[1]["name"].is_null());
}

#[tokio::test]
async fn a_failing_row_inserts_nothing() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "users", "insert_body": [
                {"email": "ok@example.com"},
                {"email": "ada@example.com"}
            ]}),
        )
        .await;
    assert_error(&r, 409, "unique_violation");
    assert_eq!(db.scalar("SELECT count(*) FROM users").await.unwrap(), "5");
}

#[tokio::test]
async fn upsert_with_on_conflict_and_update_body_or_all_columns() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post("/gateway/insert", json!({"table_name": "users", "insert_body": {"email": "ada@example.com", "name": "Ignored", "age": 99},
            "on_conflict": "email", "update_body": {"name": "Ada Lovelace"}}))
        .await;
    let row = &rows(&r)[0];
    assert_eq!(row["name"], "Ada Lovelace");
    assert_eq!(row["age"], 36, "only update_body columns change");
    let r = srv
        .post("/gateway/insert", json!({"table_name": "users", "insert_body": [{"email": "ada@example.com", "name": "A", "age": 1}, {"email": "zed@example.com", "name": "Zed"}],
            "on_conflict": ["email"]}))
        .await;
    let out = rows(&r);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0]["age"], 1,
        "without update_body every inserted column is updated"
    );
    let r = srv
        .post("/gateway/insert", json!({"table_name": "users", "insert_body": {"id": 2, "email": "bob@example.com", "name": "Robert"},
            "update_body": {"name": "Robert"}}))
        .await;
    assert_eq!(
        rows(&r)[0]["name"],
        "Robert",
        "update_body alone upserts on the primary key"
    );
    let r = srv
        .post("/gateway/insert", json!({"table_name": "users", "insert_body": {"email": "bob@example.com"}, "on_conflict": "email", "ignore_duplicates": true}))
        .await;
    assert_eq!(rows(&r).len(), 0);
    assert_eq!(db.scalar("SELECT count(*) FROM users").await.unwrap(), "6");
}

#[tokio::test]
async fn constraint_violations_map_to_409_and_422() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}}),
        409,
        "unique_violation",
    )
    .await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "orders", "insert_body": {"user_id": 999, "total": 1}}),
        422,
        "foreign_key_violation",
    )
    .await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"name": "no email"}}),
        422,
        "not_null_violation",
    )
    .await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "orders", "insert_body": {"user_id": 1, "total": -5}}),
        422,
        "check_violation",
    )
    .await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"email": "x@example.com", "nope": 1}}),
        400,
        "unknown_column",
    )
    .await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "no_pk", "insert_body": {"a": 1}, "update_body": {"b": "x"}}),
        400,
        "no_primary_key",
    )
    .await;
}

#[tokio::test]
async fn update_changes_matching_rows_and_returns_them() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    for field in ["update_body", "set", "data"] {
        let r = srv
            .post("/gateway/update", json!({"table_name": "users", field: {"status": format!("s-{field}")}, "conditions": [{"eq_column": "age", "eq_value": 25}]}))
            .await;
        let out = rows(&r);
        assert_eq!(out.len(), 2, "{field}");
        assert!(out.iter().all(|row| row["status"] == format!("s-{field}")));
    }
    let r = srv
        .post("/gateway/update", json!({"table_name": "users", "set": {"score": 1}, "conditions": [{"operator": "or", "value": "name.eq.Ada,name.eq.Dee"}], "columns": ["name", "score"]}))
        .await;
    let mut out = rows(&r);
    out.sort_by_key(|row| row["name"].to_string());
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0]["name"].as_str(), out[1]["name"].as_str()),
        (Some("Ada"), Some("Dee"))
    );
    assert!(
        out.iter()
            .all(|row| serde_json::to_string(&row["score"]).unwrap() == "1.00"),
        "numeric keeps its scale: {out:?}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE score = 1")
            .await
            .unwrap(),
        "2"
    );
}

#[tokio::test]
async fn update_refuses_to_run_without_conditions() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    // An empty group selects every row: refused like no conditions at all.
    for empty in [
        json!([{"operator": "and", "value": []}]),
        json!([{"operator": "and", "value": [{"operator": "and", "value": []}]}]),
    ] {
        srv.post_err(
            "/gateway/update",
            json!({"table_name": "users", "set": {"status": "x"}, "conditions": empty}),
            400,
            "missing_filter",
        )
        .await;
        srv.post_err(
            "/gateway/delete",
            json!({"table_name": "users", "conditions": empty}),
            400,
            "missing_filter",
        )
        .await;
    }
    srv.post_err(
        "/gateway/update",
        json!({"table_name": "users", "set": {"status": "x"}}),
        400,
        "missing_filter",
    )
    .await;
    srv.post_err(
        "/gateway/update",
        json!({"table_name": "users", "set": {"status": "x"}, "conditions": []}),
        400,
        "missing_filter",
    )
    .await;
    srv.post_err(
        "/gateway/update",
        json!({"table_name": "users", "conditions": [{"eq_column": "id", "eq_value": 1}]}),
        400,
        "missing_field",
    )
    .await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM users WHERE status = 'x'")
            .await
            .unwrap(),
        "0"
    );
}

#[tokio::test]
async fn delete_by_resource_id_uses_the_real_primary_key() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let order_id = db
        .scalar("SELECT order_id FROM orders WHERE total = 5.50")
        .await
        .unwrap();
    let r = srv
        .call(
            Method::DELETE,
            "/gateway/delete",
            Some(json!({"table_name": "orders", "resource_id": order_id})),
        )
        .await;
    assert_eq!(rows(&r)[0]["order_id"], order_id.as_str());
    assert_eq!(r.1["message"], "Deleted 1 row");
    assert_eq!(db.scalar("SELECT count(*) FROM orders").await.unwrap(), "2");
    let r = srv
        .post(
            "/gateway/delete",
            json!({"table_name": "other.things", "resource_id": 2}),
        )
        .await;
    assert_eq!(rows(&r)[0]["label"], "two");
    srv.post_err(
        "/gateway/delete",
        json!({"table_name": "no_pk", "resource_id": 1}),
        400,
        "no_primary_key",
    )
    .await;
    let r = srv
        .post(
            "/gateway/delete",
            json!({"table_name": "users", "resource_id": 12345}),
        )
        .await;
    assert_eq!(
        rows(&r).len(),
        0,
        "a missing row deletes nothing and is not an error"
    );
}

#[tokio::test]
async fn delete_by_conditions_and_never_by_neither() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv.post("/gateway/delete", json!({"table_name": "orders", "conditions": [{"operator": "gt", "column": "total", "value": 10}]})).await;
    assert_eq!(rows(&r).len(), 2);
    srv.post_err(
        "/gateway/delete",
        json!({"table_name": "users"}),
        400,
        "missing_filter",
    )
    .await;
    srv.post_err(
        "/gateway/delete",
        json!({"table_name": "users", "conditions": []}),
        400,
        "missing_filter",
    )
    .await;
    assert_eq!(db.scalar("SELECT count(*) FROM users").await.unwrap(), "5");
    assert_eq!(db.scalar("SELECT count(*) FROM orders").await.unwrap(), "1");
}
