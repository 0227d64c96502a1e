//! `/gateway/fetch` and `/gateway/data` against a real PostgreSQL: every operator of both
//! condition dialects, ordering, paging, counts, column selection, strip-nulls and camelCase.

use crate::common;

use common::*;
use serde_json::{json, Value};

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn fetch_names(srv: &TestServer, conditions: Value) -> Vec<String> {
    let res = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": conditions, "order_by": "id"}),
        )
        .await;
    names(&rows(&res))
}

#[tokio::test]
async fn fetch_returns_envelope_with_rows_and_message() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let res = srv
        .post("/gateway/fetch", json!({"table_name": "users"}))
        .await;
    assert_eq!(res.1["message"], "Fetched 5 rows");
    assert_eq!(rows(&res).len(), 5);
    let alias = srv
        .post("/gateway/data", json!({"table_name": "users"}))
        .await;
    assert_eq!(rows(&alias).len(), 5);
}

#[tokio::test]
async fn every_operator_of_the_operator_dialect_filters_rows() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([{"operator": "eq", "column": "age", "value": 25}]),
            vec!["Bob", "Eve"],
        ),
        (
            json!([{"operator": "neq", "column": "status", "value": "active"}]),
            vec!["Bob", "Dee"],
        ),
        (
            json!([{"operator": "gt", "column": "age", "value": 36}]),
            vec!["Dee"],
        ),
        (
            json!([{"operator": "gte", "column": "age", "value": 36}]),
            vec!["Ada", "Dee"],
        ),
        (
            json!([{"operator": "lt", "column": "age", "value": 36}]),
            vec!["Bob", "Eve"],
        ),
        (
            json!([{"operator": "lte", "column": "age", "value": "36"}]),
            vec!["Ada", "Bob", "Eve"],
        ),
        (
            json!([{"operator": "like", "column": "email", "value": "%e@%"}]),
            vec!["Dee", "Eve"],
        ),
        (
            json!([{"operator": "ilike", "column": "name", "value": "a%"}]),
            vec!["Ada"],
        ),
        (
            json!([{"operator": "is", "column": "age", "value": null}]),
            vec!["Cy"],
        ),
        (
            json!([{"operator": "in", "column": "name", "value": ["Ada", "Cy", "Zed"]}]),
            vec!["Ada", "Cy"],
        ),
        (
            json!([{"operator": "in", "column": "id", "value": []}]),
            vec![],
        ),
        (
            json!([{"operator": "not", "column": "status", "value": "eq.active"}]),
            vec!["Bob", "Dee"],
        ),
        (
            json!([{"operator": "not", "value": "age.gte.30"}]),
            vec!["Bob", "Eve"],
        ),
        (
            json!([{"operator": "or", "value": "name.eq.Ada,age.lt.30"}]),
            vec!["Ada", "Bob", "Eve"],
        ),
        (
            json!([{"operator": "or", "value": "(name.eq.Cy,and(age.gt.30,status.eq.banned))"}]),
            vec!["Cy", "Dee"],
        ),
        (
            json!([{"operator": "or", "value": "name.in.(Bob,\"Eve\"),not.and(age.is.null,name.eq.Cy)"}]),
            vec!["Ada", "Bob", "Dee", "Eve"],
        ),
        (
            json!([{"eq_column": "status", "eq_value": "active"}, {"eq_column": "age", "eq_value": 25}]),
            vec!["Eve"],
        ),
    ];
    for (conditions, expected) in cases {
        assert_eq!(
            fetch_names(&srv, conditions.clone()).await,
            expected,
            "{conditions}"
        );
    }
}

#[tokio::test]
async fn contains_and_contained_by_work_on_arrays_and_jsonb() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let count = |res: &(reqwest::StatusCode, Value)| rows(res).len();
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "orders", "conditions": [{"operator": "contains", "column": "tags", "value": ["blue"]}]}))
        .await;
    assert_eq!(count(&r), 2);
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "orders", "conditions": [{"operator": "containedBy", "column": "tags", "value": ["blue", "green"]}]}))
        .await;
    assert_eq!(count(&r), 2, "{{blue}} and {{}} are contained");
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "orders", "conditions": [{"operator": "contains", "column": "meta", "value": {"gift": true}}]}))
        .await;
    assert_eq!(count(&r), 1);
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "orders", "conditions": [{"operator": "or", "value": "tags.cs.{red},total.gt.50"}]}))
        .await;
    assert_eq!(count(&r), 2);
}

#[tokio::test]
async fn ordering_by_several_columns_and_both_spellings() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "users", "columns": ["name"], "sort_by": [{"field": "age", "direction": "desc"}, {"field": "name", "direction": "asc"}]}))
        .await;
    assert_eq!(
        names(&rows(&r)),
        ["Cy", "Dee", "Ada", "Bob", "Eve"],
        "NULLs sort first in DESC"
    );
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "order_by": "age.asc.nullsfirst,name.desc"}),
        )
        .await;
    assert_eq!(names(&rows(&r)), ["Cy", "Eve", "Bob", "Ada", "Dee"]);
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "order_by": [{"column": "name", "ascending": false}]}),
        )
        .await;
    assert_eq!(names(&rows(&r))[0], "Eve");
}

#[tokio::test]
async fn paging_with_limit_offset_and_pages_and_exact_count() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "users", "order_by": "id", "limit": 2, "offset": 1, "count": "exact"}))
        .await;
    assert_eq!(names(&rows(&r)), ["Bob", "Cy"]);
    assert_eq!(r.1["data"]["count"], 5);
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "order_by": "id", "current_page": 2, "page_size": 2}),
        )
        .await;
    assert_eq!(names(&rows(&r)), ["Cy", "Dee"]);
    assert!(r.1["data"].get("count").is_none());
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "users", "conditions": [{"eq_column": "status", "eq_value": "active"}], "limit": 1, "count": "exact"}))
        .await;
    assert_eq!(rows(&r).len(), 1);
    assert_eq!(
        r.1["data"]["count"], 3,
        "the count ignores the limit and honours the filter"
    );
}

#[tokio::test]
async fn postgres_clients_page_by_offset_and_refuse_a_page_cursor() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "users", "limit": 2}))
        .await;
    assert!(
        r.1["data"].get("next_page").is_none(),
        "no cursor from a PostgreSQL client"
    );
    for field in ["page_state", "next_page"] {
        let r = srv
            .post(
                "/gateway/fetch",
                json!({"table_name": "users", field: "AQAAAAAAAAAA"}),
            )
            .await;
        assert_error(&r, 400, "invalid_query");
    }
}

#[tokio::test]
async fn default_limit_and_maximum_limit_come_from_config() {
    let db =
        TestDb::create("CREATE TABLE n AS SELECT g AS id FROM generate_series(1, 300) g;").await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        "gateway:\n  default_limit: 7\n  max_limit: 50\n",
    ))
    .await;
    let r = srv.post("/gateway/fetch", json!({"table_name": "n"})).await;
    assert_eq!(rows(&r).len(), 7);
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "n", "limit": 50}))
        .await;
    assert_eq!(rows(&r).len(), 50);
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "n", "limit": 51}),
        400,
        "limit_exceeded",
    )
    .await;
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "n", "page_size": 500}),
        400,
        "limit_exceeded",
    )
    .await;
}

#[tokio::test]
async fn columns_as_array_string_and_star() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    for columns in [json!(["name", "age"]), json!("name, age")] {
        let r = srv
            .post(
                "/gateway/fetch",
                json!({"table_name": "users", "columns": columns, "limit": 1}),
            )
            .await;
        let row = rows(&r)[0].as_object().unwrap().clone();
        assert_eq!(row.keys().collect::<Vec<_>>(), ["name", "age"]);
    }
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": "*", "limit": 1}),
        )
        .await;
    assert_eq!(rows(&r)[0].as_object().unwrap().len(), 7);
}

#[tokio::test]
async fn schema_qualified_tables() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "things", "schema": "other", "order_by": "id"}),
        )
        .await;
    assert_eq!(rows(&r)[1]["label"], "two");
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "other.things", "order_by": "id"}),
        )
        .await;
    assert_eq!(rows(&r).len(), 2);
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "things"}),
        404,
        "unknown_table",
    )
    .await;
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "pg_authid", "schema": "pg_catalog"}),
        404,
        "unknown_table",
    )
    .await;
}

#[tokio::test]
async fn strip_nulls_drops_null_fields_from_every_row() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .http
        .post(srv.url("/gateway/fetch"))
        .header("X-Athena-Client", "default")
        .header("X-Strip-Nulls", "true")
        .json(&json!({"table_name": "users", "conditions": [{"eq_column": "name", "eq_value": "Cy"}], "count": "exact"}))
        .send()
        .await
        .unwrap();
    let res = read(r).await;
    let row = &rows(&res)[0];
    assert!(
        row.get("age").is_none() && row.get("score").is_none(),
        "{row}"
    );
    assert_eq!(row["name"], "Cy");
    assert_eq!(res.1["data"]["count"], 1, "the envelope keeps its shape");
}

#[tokio::test]
async fn camel_case_is_converted_when_configured() {
    let db = TestDb::create(
        "CREATE TABLE people (user_id int PRIMARY KEY, first_name text, created_by text);\
                              INSERT INTO people VALUES (1, 'Ann', 'sys'), (2, 'Ben', 'sys');",
    )
    .await;
    let srv = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        "gateway:\n  force_camel_case_to_snake_case: true\n",
    ))
    .await;
    let r = srv
        .post("/gateway/fetch", json!({"table_name": "people", "columns": ["userId", "firstName"], "conditions": [{"eq_column": "createdBy", "eq_value": "sys"}, {"operator": "gt", "column": "userId", "value": 1}], "sort_by": {"field": "userId"}}))
        .await;
    assert_eq!(rows(&r), vec![json!({"user_id": 2, "first_name": "Ben"})]);
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "people", "insert_body": {"userId": 3, "firstName": "Cat"}}),
        )
        .await;
    assert_eq!(rows(&r)[0]["first_name"], "Cat");
    let r = srv
        .post("/gateway/update", json!({"table_name": "people", "set": {"firstName": "Cath"}, "conditions": [{"eq_column": "userId", "eq_value": 3}]}))
        .await;
    assert_eq!(rows(&r)[0]["first_name"], "Cath");
}

#[tokio::test]
async fn filter_values_are_bound_with_the_column_type() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": [{"eq_column": "age", "eq_value": "36"}]}),
        )
        .await;
    assert_eq!(names(&rows(&r)), ["Ada"]);
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "conditions": [{"eq_column": "id", "eq_value": 1}]}),
        )
        .await;
    assert_eq!(rows(&r).len(), 1);
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "users", "conditions": [{"eq_column": "age", "eq_value": "abc"}]}),
        400,
        "invalid_value",
    )
    .await;
    srv.post_err("/gateway/fetch", json!({"table_name": "users", "conditions": [{"operator": "gt", "column": "created_at", "value": "not a date"}]}), 400, "invalid_value").await;
}

#[tokio::test]
async fn columns_added_outside_athena_are_found_without_waiting_for_the_cache_to_expire() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    assert_eq!(
        rows(
            &srv.post("/gateway/fetch", json!({"table_name": "users", "limit": 1}))
                .await
        )
        .len(),
        1
    );
    db.execute("ALTER TABLE users ADD COLUMN nickname text DEFAULT 'nick'")
        .await;
    // Forced re-reads of a description are spaced by a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "users", "columns": ["nickname"], "limit": 1}),
        )
        .await;
    assert_eq!(rows(&r), vec![json!({"nickname": "nick"})]);
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "users", "columns": ["still_missing"]}),
        400,
        "unknown_column",
    )
    .await;
}
