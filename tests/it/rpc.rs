//! Database functions against a real PostgreSQL: `POST /gateway/rpc`, `GET /rpc/{function}` and
//! `/rest/v1/rpc/{function}`. Scalar, set-returning, table-returning and composite functions;
//! named arguments of many types and defaults; selection, filters, ordering, paging and counts
//! on results; GET refusing volatile functions; PostgREST's answer shapes; `<fn>.execute`
//! rights; and bad input, each answered with its status and code and changing no data.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const FUNCTIONS: &str = r#"
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), tags text[]);
INSERT INTO items VALUES (1, 'apple', 1.50, '{fruit,red}'), (2, 'banana', 0.25, '{fruit}'),
    (3, 'carrot', 0.10, '{veg}'), (4, 'date', 3.00, '{fruit}');
CREATE FUNCTION add_numbers(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION greet(name text, greeting text DEFAULT 'hello') RETURNS text
    LANGUAGE sql IMMUTABLE AS $$SELECT greeting || ', ' || name$$;
CREATE FUNCTION series(n int) RETURNS SETOF int LANGUAGE sql IMMUTABLE
    AS 'SELECT generate_series(1, n)';
CREATE FUNCTION cheap_items(max_price numeric) RETURNS SETOF items LANGUAGE sql STABLE
    AS 'SELECT * FROM items WHERE price <= max_price ORDER BY id';
CREATE FUNCTION tag_counts() RETURNS TABLE(tag text, n bigint) LANGUAGE sql STABLE
    AS 'SELECT t, count(*) FROM items, unnest(tags) t GROUP BY t';
CREATE TYPE pair AS (lo int, hi int);
CREATE FUNCTION bounds(xs int[]) RETURNS pair LANGUAGE sql IMMUTABLE
    AS 'SELECT min(x), max(x) FROM unnest(xs) x';
CREATE FUNCTION describe_doc(doc jsonb, at timestamptz, id uuid, tags text[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('keys', (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(doc) k),
        'year', extract(year FROM at AT TIME ZONE 'UTC')::int, 'id', id, 'tags', tags)$$;
CREATE FUNCTION add_item(id int, name text) RETURNS items LANGUAGE sql VOLATILE
    AS 'INSERT INTO items (id, name) VALUES (id, name) RETURNING *';
CREATE FUNCTION touch() RETURNS void LANGUAGE sql VOLATILE AS 'SELECT 1';
CREATE FUNCTION pick(a int) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'one'$$;
CREATE FUNCTION pick(a int, b int) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'two'$$;
CREATE FUNCTION twin(a int) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'int'$$;
CREATE FUNCTION twin(a text) RETURNS text LANGUAGE sql IMMUTABLE AS $$SELECT 'text'$$;
CREATE FUNCTION total(VARIADIC xs int[]) RETURNS int LANGUAGE sql IMMUTABLE
    AS 'SELECT sum(x)::int FROM unnest(xs) x';
CREATE SCHEMA other;
CREATE FUNCTION other.double_it(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2';
"#;

async fn rpc(srv: &TestServer, body: Value) -> (StatusCode, Value) {
    srv.post("/gateway/rpc", body).await
}

async fn get(srv: &TestServer, path: &str) -> (StatusCode, Value) {
    srv.call(Method::GET, path, None).await
}

/// The raw answer of a `/rest/v1` request: status, `Content-Range` and body text.
async fn rest(srv: &TestServer, req: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let r = req
        .header("X-Athena-Client", "default")
        .send()
        .await
        .expect("request sent");
    let status = r.status().as_u16();
    let range = r
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let _ = srv;
    (status, range, r.text().await.unwrap())
}

async fn items(db: &TestDb) -> String {
    db.scalar("SELECT count(*) FROM items").await.unwrap()
}

#[tokio::test]
async fn scalar_set_table_and_composite_functions_answer_rows() {
    let db = TestDb::create(FUNCTIONS).await;
    let srv = TestServer::start(&db).await;
    let res = rpc(
        &srv,
        json!({"function": "add_numbers", "args": {"a": 2, "b": 3}}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"add_numbers": 5})]);
    assert_eq!(res.1["message"], "Returned 1 row");

    let res = rpc(&srv, json!({"function": "series", "args": {"n": 3}})).await;
    assert_eq!(
        rows(&res),
        vec![
            json!({"series": 1}),
            json!({"series": 2}),
            json!({"series": 3})
        ]
    );

    let res = rpc(
        &srv,
        json!({"function": "cheap_items", "args": {"max_price": "1.5"}}),
    )
    .await;
    let names: Vec<_> = rows(&res).iter().map(|r| r["name"].clone()).collect();
    assert_eq!(
        names,
        vec![json!("apple"), json!("banana"), json!("carrot")]
    );
    assert_eq!(rows(&res)[0]["tags"], json!(["fruit", "red"]));

    let res = rpc(&srv, json!({"function": "tag_counts", "order_by": "tag"})).await;
    assert_eq!(
        rows(&res),
        vec![
            json!({"tag": "fruit", "n": 3}),
            json!({"tag": "red", "n": 1}),
            json!({"tag": "veg", "n": 1})
        ]
    );

    let res = rpc(
        &srv,
        json!({"function": "bounds", "args": {"xs": [4, -2, 9]}}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"lo": -2, "hi": 9})]);

    let res = rpc(&srv, json!({"function": "touch"})).await;
    assert_eq!(rows(&res), vec![json!({"touch": null})]);

    // Another schema, named either way.
    let res = rpc(
        &srv,
        json!({"function": "other.double_it", "args": {"x": 21}}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"double_it": 42})]);
    let res = rpc(
        &srv,
        json!({"function": "double_it", "schema": "other", "args": {"x": 4}}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"double_it": 8})]);

    // Overloads are told apart by the argument names.
    let res = rpc(&srv, json!({"function": "pick", "args": {"a": 1}})).await;
    assert_eq!(rows(&res), vec![json!({"pick": "one"})]);
    let res = rpc(&srv, json!({"function": "pick", "args": {"a": 1, "b": 2}})).await;
    assert_eq!(rows(&res), vec![json!({"pick": "two"})]);

    // A function created after the first call of its name is found: DDL through raw SQL drops
    // the cached descriptions.
    let (s, v) = srv
        .sql(
            "CREATE FUNCTION late(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1'",
            json!([]),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let res = rpc(&srv, json!({"function": "late", "args": {"x": 1}})).await;
    assert_eq!(rows(&res), vec![json!({"late": 2})]);
}

#[tokio::test]
async fn arguments_of_every_type_are_bound_with_their_real_type_and_defaults_apply() {
    let db = TestDb::create(FUNCTIONS).await;
    let srv = TestServer::start(&db).await;
    let id = "6f1c1a52-34f5-4c49-8d0e-4a3b8f1f0b11";
    let res = rpc(
        &srv,
        json!({"function": "describe_doc", "args": {
            "doc": {"b": 1, "a": [true]},
            "at": "2031-05-06T07:08:09Z",
            "id": id,
            "tags": ["x", "y z", "\"q\""]
        }}),
    )
    .await;
    assert_eq!(
        rows(&res),
        vec![
            json!({"describe_doc": {"keys": ["a", "b"], "year": 2031, "id": id, "tags": ["x", "y z", "\"q\""]}})
        ]
    );
    let res = rpc(&srv, json!({"function": "greet", "args": {"name": "Ada"}})).await;
    assert_eq!(rows(&res), vec![json!({"greet": "hello, Ada"})]);
    let res = rpc(
        &srv,
        json!({"function": "total", "args": {"xs": [1, 2, 3]}}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"total": 6})]);
    let res = rpc(
        &srv,
        json!({"function": "greet", "args": {"name": "Ada", "greeting": "hi"}}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"greet": "hi, Ada"})]);
    // Values that look like SQL are only ever values.
    let res = rpc(
        &srv,
        json!({"function": "greet", "args": {"name": "x'); DROP TABLE items; --"}}),
    )
    .await;
    assert_eq!(
        rows(&res),
        vec![json!({"greet": "hello, x'); DROP TABLE items; --"})]
    );
    assert_eq!(items(&db).await, "4");
}

#[tokio::test]
async fn results_are_selected_filtered_ordered_paged_and_counted() {
    let db = TestDb::create(FUNCTIONS).await;
    let srv = TestServer::start(&db).await;
    let res = rpc(
        &srv,
        json!({
            "function": "cheap_items", "args": {"max_price": 10},
            "columns": ["name", "price"],
            "conditions": [{"operator": "contains", "column": "tags", "value": ["fruit"]}],
            "sort_by": {"field": "price", "direction": "desc"},
            "limit": 2, "offset": 1, "count": "exact"
        }),
    )
    .await;
    // Numerics keep their digits.
    assert_eq!(
        Value::Array(rows(&res)).to_string(),
        r#"[{"name":"apple","price":1.50},{"name":"banana","price":0.25}]"#
    );
    assert_eq!(res.1["data"]["count"], 3);
    let res = rpc(
        &srv,
        json!({"function": "series", "args": {"n": 10},
               "filters": [{"eq_column": "series", "eq_value": 7}]}),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"series": 7})]);
    // The query-string dialect of GET.
    let res = get(
        &srv,
        "/rpc/cheap_items?max_price=2&select=id,name&name=like.*an*&order=id.desc",
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"id": 2, "name": "banana"})]);
    let res = get(&srv, "/rpc/series?n=5&series=gte.2&limit=2&offset=1").await;
    assert_eq!(rows(&res), vec![json!({"series": 3}), json!({"series": 4})]);
    let res = get(&srv, "/rpc/add_numbers?a=40&b=2").await;
    assert_eq!(rows(&res), vec![json!({"add_numbers": 42})]);
}

#[tokio::test]
async fn get_calls_only_functions_that_cannot_change_the_database() {
    let db = TestDb::create(FUNCTIONS).await;
    let srv = TestServer::start(&db).await;
    assert_error(
        &get(&srv, "/rpc/add_item?id=9&name=fig").await,
        405,
        "volatile_function",
    );
    let (s, _, body) = rest(
        &srv,
        srv.http.get(srv.url("/rest/v1/rpc/add_item?id=9&name=fig")),
    )
    .await;
    assert_eq!(s, 405, "{body}");
    assert_eq!(items(&db).await, "4");
    // POST calls it, once, even with a total asked for.
    let res = rpc(
        &srv,
        json!({"function": "add_item", "args": {"id": 9, "name": "fig"}, "count": "exact"}),
    )
    .await;
    assert_eq!(
        rows(&res),
        vec![json!({"id": 9, "name": "fig", "price": null, "tags": null})]
    );
    assert_eq!(items(&db).await, "5");
    // Calling it again reaches the database's own constraint.
    let res = rpc(
        &srv,
        json!({"function": "add_item", "args": {"id": 9, "name": "fig"}}),
    )
    .await;
    assert_error(&res, 409, "unique_violation");
    assert_eq!(items(&db).await, "5");
}

#[tokio::test]
async fn rest_rpc_answers_in_postgrest_shapes() {
    let db = TestDb::create(FUNCTIONS).await;
    let srv = TestServer::start(&db).await;
    let post = |path: &str, body: Value| srv.http.post(srv.url(path)).json(&body);
    let (s, _, body) = rest(
        &srv,
        post("/rest/v1/rpc/add_numbers", json!({"a": 1, "b": 2})),
    )
    .await;
    assert_eq!((s, body.as_str()), (200, "3"));
    let (s, _, body) = rest(
        &srv,
        srv.http.get(srv.url("/rest/v1/rpc/add_numbers?a=1&b=2")),
    )
    .await;
    assert_eq!((s, body.as_str()), (200, "3"));
    let (s, _, body) = rest(&srv, post("/rest/v1/rpc/series", json!({"n": 3}))).await;
    assert_eq!(
        (s, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!([1, 2, 3]))
    );
    let (s, _, body) = rest(&srv, post("/rest/v1/rpc/bounds", json!({"xs": [3, 1]}))).await;
    assert_eq!(
        (s, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!({"lo": 1, "hi": 3}))
    );
    let (s, _, body) = rest(&srv, post("/rest/v1/rpc/touch", json!({}))).await;
    assert_eq!((s, body.as_str()), (204, ""));
    let (s, range, body) = rest(
        &srv,
        post(
            "/rest/v1/rpc/cheap_items?select=id,name&order=id.desc&limit=2",
            json!({"max_price": 5}),
        )
        .header("Prefer", "count=exact"),
    )
    .await;
    assert_eq!(s, 206, "{body}");
    assert_eq!(range.as_deref(), Some("0-1/4"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([{"id": 4, "name": "date"}, {"id": 3, "name": "carrot"}])
    );
    let (s, range, body) = rest(
        &srv,
        srv.http
            .get(srv.url("/rest/v1/rpc/series?n=10&order=series.desc"))
            .header("Range", "2-4"),
    )
    .await;
    assert_eq!((s, range.as_deref()), (200, Some("2-4/*")), "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([8, 7, 6])
    );
    let (s, _, body) = rest(
        &srv,
        srv.http
            .get(srv.url("/rest/v1/rpc/cheap_items?max_price=1&price=gt.0.2")),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()[0]["name"],
        "banana"
    );
    // Errors in PostgREST's shape.
    for (req, status, code) in [
        (post("/rest/v1/rpc/nope", json!({})), 404, "PGRST202"),
        (
            post("/rest/v1/rpc/add_numbers", json!({"a": 1, "zz": 2})),
            404,
            "PGRST202",
        ),
        (post("/rest/v1/rpc/twin", json!({"a": 1})), 300, "PGRST203"),
        (
            post("/rest/v1/rpc/add_numbers", json!({"a": "x", "b": 1})),
            400,
            "22P02",
        ),
        (
            post("/rest/v1/rpc/add_numbers", json!([1, 2])),
            400,
            "PGRST102",
        ),
    ] {
        let (s, _, body) = rest(&srv, req).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((s, v["code"].as_str().unwrap()), (status, code), "{body}");
        assert!(
            v["message"].is_string() && v.get("details").is_some() && v.get("hint").is_some(),
            "{v}"
        );
    }
}

#[tokio::test]
async fn bad_calls_answer_their_codes_and_change_nothing() {
    let db = TestDb::create(FUNCTIONS).await;
    let srv = TestServer::start(&db).await;
    let err = |body: Value, status: u16, code: &'static str| {
        let srv = &srv;
        async move {
            let res = rpc(srv, body.clone()).await;
            assert_eq!(res.0.as_u16(), status, "{body} → {}", res.1);
            assert_error(&res, status, code);
        }
    };
    err(json!({"function": "nope"}), 404, "unknown_function").await;
    // Functions of the system schemas are not callable.
    err(
        json!({"function": "pg_sleep", "args": {"seconds": 1}}),
        404,
        "unknown_function",
    )
    .await;
    err(
        json!({"function": "pg_catalog.pg_terminate_backend", "args": {"pid": 1}}),
        404,
        "unknown_function",
    )
    .await;
    err(
        json!({"function": "add_numbers", "args": {"a": 1, "c": 2}}),
        400,
        "unknown_argument",
    )
    .await;
    err(
        json!({"function": "add_numbers", "args": {"a": 1}}),
        400,
        "missing_argument",
    )
    .await;
    err(
        json!({"function": "add_numbers", "args": {"a": "one", "b": 2}}),
        400,
        "invalid_value",
    )
    .await;
    err(
        json!({"function": "add_numbers", "args": {"a": {"x": 1}, "b": 2}}),
        400,
        "invalid_value",
    )
    .await;
    err(
        json!({"function": "add_numbers", "args": [1, 2]}),
        400,
        "invalid_field",
    )
    .await;
    err(
        json!({"function": "twin", "args": {"a": 1}}),
        400,
        "ambiguous_function",
    )
    .await;
    err(json!({"args": {}}), 400, "missing_field").await;
    err(json!({"function": 5}), 400, "invalid_field").await;
    // Hostile names are names that do not exist, never SQL.
    err(
        json!({"function": "add_numbers(1,2); DROP TABLE items; --"}),
        404,
        "unknown_function",
    )
    .await;
    err(
        json!({"function": "items\"; DROP TABLE items; --"}),
        404,
        "unknown_function",
    )
    .await;
    err(
        json!({"function": "add_numbers", "args": {"a\" => 1); DROP TABLE items; --": 1, "b": 2}}),
        400,
        "unknown_argument",
    )
    .await;
    err(json!({"function": "cheap_items", "args": {"max_price": 1}, "columns": ["name\"; DROP TABLE items; --"]}), 400, "unknown_column").await;
    err(json!({"function": "cheap_items", "args": {"max_price": 1}, "order_by": [{"field": "id; DROP TABLE items", "direction": "asc"}]}), 400, "unknown_column").await;
    err(json!({"function": "cheap_items", "args": {"max_price": 1}, "conditions": [{"eq_column": "1=1 OR name", "eq_value": 1}]}), 400, "unknown_column").await;
    assert_error(
        &get(&srv, "/rpc/add_numbers?a=1&b=2&zz=eq.1").await,
        400,
        "unknown_column",
    );
    assert_error(
        &get(
            &srv,
            "/rpc/describe_doc?doc=notjson&at=2020-01-01&id=x&tags={a}",
        )
        .await,
        400,
        "invalid_value",
    );
    // Malformed and oversized bodies.
    let r = srv
        .http
        .post(srv.url("/gateway/rpc"))
        .header("X-Athena-Client", "default")
        .header("Content-Type", "application/json")
        .body("{\"function\": \"add_numbers\", ")
        .send()
        .await
        .unwrap();
    assert_error(&read(r).await, 400, "invalid_json");
    let big = "x".repeat(3 * 1024 * 1024);
    let res = rpc(&srv, json!({"function": "greet", "args": {"name": big}})).await;
    assert_error(&res, 413, "payload_too_large");
    let (s, _, _) = rest(
        &srv,
        srv.http
            .post(srv.url("/rest/v1/rpc/greet"))
            .json(&json!({"name": "x".repeat(3 * 1024 * 1024)})),
    )
    .await;
    assert_eq!(s, 413);
    assert_eq!(items(&db).await, "4");
    assert_eq!(
        db.scalar("SELECT to_regclass('items') IS NOT NULL")
            .await
            .as_deref(),
        Some("t")
    );
}

#[tokio::test]
async fn calls_need_the_execute_right_of_their_function_and_are_recorded() {
    let db = TestDb::create(FUNCTIONS).await;
    let logging = TestDb::create("").await;
    let yaml = config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\nstats:\n  flush_interval_ms: 100\n",
            logging.uri
        ),
    );
    let srv = TestServer::start_yaml(&yaml).await;
    wait_logging_ready(&srv).await;
    let (reader, _) = create_key(
        &srv,
        json!({"name": "reader", "rights": ["items.read", "greet.execute"]}),
    )
    .await;
    let (runner, _) = create_key(&srv, json!({"name": "runner", "rights": ["*.execute"]})).await;
    let call = |key: &str, body: Value| {
        srv.http
            .post(srv.url("/gateway/rpc"))
            .header("X-Athena-Client", "default")
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let add = json!({"function": "add_numbers", "args": {"a": 1, "b": 1}});
    let res = read(call(&reader, add.clone()).await.unwrap()).await;
    assert_error(&res, 403, "forbidden");
    assert!(
        res.1["error"]
            .as_str()
            .unwrap()
            .contains("add_numbers.execute"),
        "{}",
        res.1
    );
    let res = read(
        call(&reader, json!({"function": "greet", "args": {"name": "A"}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rows(&res), vec![json!({"greet": "hello, A"})]);
    let res = read(call(&runner, add.clone()).await.unwrap()).await;
    assert_eq!(rows(&res), vec![json!({"add_numbers": 2})]);
    let res = read(call(ADMIN_KEY, add.clone()).await.unwrap()).await;
    assert_eq!(rows(&res), vec![json!({"add_numbers": 2})]);
    // No key at all, and the other routes check the same right.
    let res = srv.post("/gateway/rpc", add.clone()).await;
    assert_error(&res, 401, "missing_api_key");
    let r = srv
        .http
        .get(srv.url("/rpc/add_numbers?a=1&b=2"))
        .header("X-Athena-Client", "default")
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_error(&read(r).await, 403, "forbidden");
    let r = srv
        .http
        .post(srv.url("/rest/v1/rpc/add_numbers"))
        .header("X-Athena-Client", "default")
        .header("apikey", &reader)
        .json(&json!({"a": 1, "b": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("add_numbers.execute"));
    // Each call is recorded as an rpc of its function.
    srv.actors.stats.flush().await.unwrap();
    let logged = logging
        .scalar(
            "SELECT string_agg(operation || ':' || table_name || ':' || status_code, ' ' ORDER BY id) \
             FROM gateway_operation_log WHERE operation = 'rpc'",
        )
        .await
        .unwrap_or_default();
    assert!(logged.contains("rpc:add_numbers:403"), "{logged}");
    assert!(logged.contains("rpc:add_numbers:200"), "{logged}");
    assert!(logged.contains("rpc:greet:200"), "{logged}");
}
