//! Supabase clients against a real PostgREST surface: a second Athena serving `/rest/v1` over a
//! real PostgreSQL database plays the Supabase project. Every fetch is also run on a PostgreSQL
//! client of the same database, and both answers must be the same rows: filters of every kind,
//! ordering, paging and counts. Writes (insert, upsert, ignore, update, delete), the refusals
//! (unfiltered writes, resource_id without a configured key, raw SQL), the mapping of PostgREST's
//! errors, an unreachable project, caller-supplied projects and the configuration are covered too.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The upstream project (an Athena with its own database) and the gateway under test, whose
/// client `sb` is a Supabase client of that project and `default` a PostgreSQL client of the same
/// database.
struct Env {
    db: TestDb,
    upstream: TestServer,
    gw: TestServer,
}

fn supabase_client(name: &str, url: &str, key: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    backend: supabase\n    url: {url}\n    key: {key}\n    probe_interval_ms: 200\n    headers:\n      X-Athena-Client: default\n    primary_keys:\n      users: [id]\n{extra}"
    )
}

async fn env_with(top_extra: &str, sb_extra: &str) -> Env {
    let db = TestDb::create(SEED).await;
    let upstream = TestServer::start(&db).await;
    let yaml = config_yaml(
        &db.uri,
        &supabase_client("sb", &upstream.base, "anon-key", sb_extra),
        top_extra,
    );
    let gw = TestServer::start_yaml(&yaml).await;
    Env { db, upstream, gw }
}

async fn env() -> Env {
    env_with("", "").await
}

/// Calls the gateway as `client`.
async fn call(srv: &TestServer, client: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call_with(srv, client, path, body, &[]).await
}

async fn call_with(
    srv: &TestServer,
    client: &str,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut rb = srv
        .http
        .post(srv.url(path))
        .header("X-Athena-Client", client)
        .json(&body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    read(rb.send().await.expect("request sent")).await
}

/// Runs `body` as a fetch on both clients; the rows (and counts) must be the same.
#[track_caller]
fn same_rows(pg: &(StatusCode, Value), sb: &(StatusCode, Value), what: &str) -> Vec<Value> {
    let (a, b) = (rows(pg), rows(sb));
    assert_eq!(a, b, "{what}: postgres {} vs supabase {}", pg.1, sb.1);
    assert_eq!(pg.1["data"]["count"], sb.1["data"]["count"], "{what}");
    b
}

async fn both(e: &Env, body: Value) -> Vec<Value> {
    let pg = call(&e.gw, "default", "/gateway/fetch", body.clone()).await;
    let sb = call(&e.gw, "sb", "/gateway/fetch", body.clone()).await;
    same_rows(&pg, &sb, &body.to_string())
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn every_filter_kind_matches_what_postgresql_answers() {
    let e = env().await;
    let fetch = |conditions: Value| json!({"table_name": "users", "conditions": conditions, "order_by": "id"});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([{"eq_column": "status", "eq_value": "active"}]),
            vec!["Ada", "Cy", "Eve"],
        ),
        (
            json!([{"operator": "neq", "column": "status", "value": "active"}]),
            vec!["Bob", "Dee"],
        ),
        (
            json!([{"operator": "gt", "column": "age", "value": 30}]),
            vec!["Ada", "Dee"],
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
            json!([{"operator": "lte", "column": "score", "value": "3.25"}]),
            vec!["Bob", "Eve"],
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
            json!([{"operator": "in", "column": "name", "value": ["Bob", "Cy", "x,y"]}]),
            vec!["Bob", "Cy"],
        ),
        (
            json!([{"operator": "not", "column": "status", "value": "eq.active"}]),
            vec!["Bob", "Dee"],
        ),
        (
            json!([{"operator": "or", "value": "age.gt.40,and(status.eq.active,score.lt.1)"}]),
            vec!["Dee", "Eve"],
        ),
        (
            json!([
                {"operator": "or", "value": [
                    {"eq_column": "name", "eq_value": "Ada"},
                    {"operator": "not", "value": {"operator": "in", "column": "status", "value": ["active", "banned"]}}
                ]},
                {"operator": "gte", "column": "id", "value": 1}
            ]),
            vec!["Ada", "Bob"],
        ),
        (
            json!([{"operator": "not", "value": "or(status.eq.active,age.is.null)"}]),
            vec!["Bob", "Dee"],
        ),
    ];
    for (conditions, want) in cases {
        let rows = both(&e, fetch(conditions.clone())).await;
        assert_eq!(names(&rows), want, "{conditions}");
    }
    // Values holding PostgREST's reserved characters match literally, at the top and in trees.
    let hostile = "Zed, \"the\" (odd).one: \\x";
    e.db.execute(&format!(
        "INSERT INTO users (email, name) VALUES ('z@x', '{}')",
        hostile.replace('\'', "''")
    ))
    .await;
    for conditions in [
        json!([{"eq_column": "name", "eq_value": hostile}]),
        json!([{"operator": "or", "value": [{"eq_column": "name", "eq_value": hostile}, {"eq_column": "id", "eq_value": -1}]}]),
        json!([{"operator": "in", "column": "name", "value": [hostile]}]),
        json!([{"eq_column": "name", "eq_value": format!(" {hostile} ")}]),
    ] {
        let rows = both(&e, fetch(conditions.clone())).await;
        let want = if conditions.to_string().contains("\" Zed") {
            0
        } else {
            1
        };
        assert_eq!(rows.len(), want, "{conditions}");
    }
    // Array and jsonb containment on orders.
    for conditions in [
        json!([{"operator": "contains", "column": "tags", "value": ["blue"]}]),
        json!([{"operator": "containedBy", "column": "tags", "value": ["red", "blue", "green"]}]),
        json!([{"operator": "contains", "column": "meta", "value": {"gift": true}}]),
        json!([{"operator": "or", "value": "tags.cs.{red},total.gt.50"}]),
    ] {
        let body = json!({"table_name": "orders", "columns": ["user_id", "total", "tags"], "conditions": conditions, "order_by": "total"});
        let rows = both(&e, body).await;
        assert!(!rows.is_empty(), "{conditions}");
    }
}

#[tokio::test]
async fn columns_order_paging_and_counts_match_postgresql() {
    let e = env().await;
    let rows = both(
        &e,
        json!({"table_name": "users", "columns": ["name", "age"], "order_by": "age.desc.nullsfirst,name", "limit": 3, "offset": 1, "count": "exact"}),
    )
    .await;
    assert_eq!(names(&rows), ["Dee", "Ada", "Bob"]);
    assert_eq!(rows[0].as_object().unwrap().len(), 2);
    let rows = both(
        &e,
        json!({"table_name": "users", "columns": "name", "sort_by": {"field": "age", "direction": "asc"}, "current_page": 2, "page_size": 2, "limit": 2}),
    )
    .await;
    assert_eq!(rows.len(), 2);
    let counted = call(
        &e.gw,
        "sb",
        "/gateway/fetch",
        json!({"table_name": "users", "limit": 1, "count": "exact", "conditions": [{"eq_column": "status", "eq_value": "active"}]}),
    )
    .await;
    assert_eq!(counted.1["data"]["count"], 3, "{}", counted.1);
    // Aliases through /rest/v1 on the Supabase client, with PostgREST's Content-Range.
    let r =
        e.gw.http
            .get(e.gw.url("/rest/v1/users?select=id,mail:email&order=id&limit=2"))
            .header("X-Athena-Client", "sb")
            .header("Prefer", "count=exact")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers().get("content-range").unwrap().to_str().unwrap(),
        "0-1/5"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!([{"id": 1, "mail": "ada@example.com"}, {"id": 2, "mail": "bob@example.com"}])
    );
    // An offset past the counted total is an empty page with the total, on both.
    let rows = both(
        &e,
        json!({"table_name": "users", "offset": 100, "limit": 5, "count": "exact"}),
    )
    .await;
    assert!(rows.is_empty());
    let r = e
        .upstream
        .http
        .get(e.upstream.url("/rest/v1/users?offset=100&count=exact"))
        .header("X-Athena-Client", "default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "*/5");
    // Another schema, named the gateway's way.
    let rows = both(
        &e,
        json!({"table_name": "things", "schema": "other", "order_by": "id"}),
    )
    .await;
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn inserts_upserts_and_ignores_write_through_the_project() {
    let e = env().await;
    let ins = call(
        &e.gw,
        "sb",
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": [{"email": "n1@x", "name": "N1"}, {"email": "n2@x"}], "columns": ["email", "name", "status"]}),
    )
    .await;
    let r = rows(&ins);
    assert_eq!(r.len(), 2, "{}", ins.1);
    // The row lacking `name` got NULL, the one lacking `status` its default.
    assert_eq!(
        r[1],
        json!({"email": "n2@x", "name": null, "status": "active"})
    );
    let up = call(
        &e.gw,
        "sb",
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"email": "n1@x", "name": "Renamed"}, "on_conflict": "email"}),
    )
    .await;
    assert_eq!(up.0, 200, "{}", up.1);
    assert_eq!(
        e.db.scalar("SELECT name FROM users WHERE email = 'n1@x'")
            .await
            .as_deref(),
        Some("Renamed")
    );
    let ignored = call(
        &e.gw,
        "sb",
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"email": "n1@x", "name": "Ignored"}, "on_conflict": "email", "ignore_duplicates": true}),
    )
    .await;
    assert_eq!(rows(&ignored).len(), 0, "{}", ignored.1);
    assert_eq!(
        e.db.scalar("SELECT name FROM users WHERE email = 'n1@x'")
            .await
            .as_deref(),
        Some("Renamed")
    );
    // An upsert that sets other values than the inserted ones cannot be said to PostgREST.
    let set = call(
        &e.gw,
        "sb",
        "/gateway/insert",
        json!({"table_name": "users", "insert_body": {"email": "n1@x"}, "on_conflict": "email", "update_body": {"name": "X"}}),
    )
    .await;
    assert_error(&set, 400, "unsupported_by_backend");
}

#[tokio::test]
async fn updates_and_deletes_need_filters_and_touch_only_the_filtered_rows() {
    let e = env().await;
    let up = call(
        &e.gw,
        "sb",
        "/gateway/update",
        json!({"table_name": "users", "set": {"status": "vip"}, "conditions": [{"operator": "in", "column": "name", "value": ["Ada", "Bob"]}], "columns": ["name", "status"]}),
    )
    .await;
    assert_eq!(rows(&up).len(), 2, "{}", up.1);
    assert_eq!(
        e.db.scalar("SELECT count(*) FROM users WHERE status = 'vip'")
            .await
            .as_deref(),
        Some("2")
    );
    for (path, body) in [
        (
            "/gateway/update",
            json!({"table_name": "users", "set": {"status": "x"}}),
        ),
        (
            "/gateway/update",
            json!({"table_name": "users", "set": {"status": "x"}, "conditions": []}),
        ),
        ("/gateway/delete", json!({"table_name": "users"})),
    ] {
        assert_error(&call(&e.gw, "sb", path, body).await, 400, "missing_filter");
    }
    assert_eq!(
        e.db.scalar("SELECT count(*) FROM users WHERE status = 'x'")
            .await
            .as_deref(),
        Some("0")
    );
    let del = call(
        &e.gw,
        "sb",
        "/gateway/delete",
        json!({"table_name": "users", "conditions": [{"eq_column": "name", "eq_value": "Cy"}]}),
    )
    .await;
    assert_eq!(rows(&del).len(), 1, "{}", del.1);
    // resource_id uses the configured primary key; a table without one is refused.
    let del = call(
        &e.gw,
        "sb",
        "/gateway/delete",
        json!({"table_name": "users", "resource_id": 5}),
    )
    .await;
    assert_eq!(rows(&del)[0]["name"], "Eve", "{}", del.1);
    assert_error(
        &call(
            &e.gw,
            "sb",
            "/gateway/delete",
            json!({"table_name": "no_pk", "resource_id": 1}),
        )
        .await,
        400,
        "no_primary_key",
    );
    assert_eq!(
        e.db.scalar("SELECT count(*) FROM users").await.as_deref(),
        Some("3")
    );
    // A single-object write through /rest/v1 touching two rows changes nothing.
    let r =
        e.gw.http
            .patch(e.gw.url("/rest/v1/users?status=eq.vip"))
            .header("X-Athena-Client", "sb")
            .header("Accept", "application/vnd.pgrst.object+json")
            .header("Prefer", "return=representation")
            .json(&json!({"status": "gone"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 406, "{:?}", r.text().await);
    assert_eq!(
        e.db.scalar("SELECT count(*) FROM users WHERE status = 'gone'")
            .await
            .as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn postgrest_errors_map_to_the_gateway_codes() {
    let e = env().await;
    let fetch = |body: Value| call(&e.gw, "sb", "/gateway/fetch", body);
    assert_error(
        &fetch(json!({"table_name": "nope"})).await,
        404,
        "unknown_table",
    );
    assert_error(
        &fetch(json!({"table_name": "users", "columns": ["id", "nope"]})).await,
        400,
        "unknown_column",
    );
    assert_error(
        &fetch(
            json!({"table_name": "users", "conditions": [{"eq_column": "age", "eq_value": "old"}]}),
        )
        .await,
        400,
        "invalid_value",
    );
    let insert = |body: Value| call(&e.gw, "sb", "/gateway/insert", body);
    assert_error(
        &insert(json!({"table_name": "users", "insert_body": {"email": "ada@example.com"}})).await,
        409,
        "unique_violation",
    );
    assert_error(
        &insert(json!({"table_name": "users", "insert_body": {"name": "no email"}})).await,
        422,
        "not_null_violation",
    );
    assert_error(
        &insert(json!({"table_name": "orders", "insert_body": {"user_id": 1, "total": -1}})).await,
        422,
        "check_violation",
    );
    // Bad input is refused by the gateway before anything is sent.
    assert_error(
        &fetch(json!({"columns": ["id"]})).await,
        400,
        "missing_field",
    );
    assert_error(
        &fetch(json!({"table_name": "users", "conditions": [{"operator": "regex", "column": "a", "value": 1}]})).await,
        400,
        "invalid_filter",
    );
    assert_error(
        &fetch(json!({"table_name": "users", "columns": ["id,email"]})).await,
        400,
        "invalid_query",
    );
    assert_error(
        &fetch(json!({"table_name": "users?id=neq.0#"})).await,
        400,
        "invalid_query",
    );
    // What only PostgreSQL can do.
    let sql =
        e.gw.http
            .post(e.gw.url("/gateway/query"))
            .header("X-Athena-Client", "sb")
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"query": "SELECT 1"}))
            .send()
            .await
            .unwrap();
    let sql = read(sql).await;
    assert_error(&sql, 400, "unsupported_by_backend");
    assert!(
        sql.1["error"].as_str().unwrap().contains("supabase"),
        "{}",
        sql.1
    );
    let pipeline = call(
        &e.gw,
        "sb",
        "/pipelines",
        json!({"source": {"table_name": "users"}, "sink": {"client": "default", "table_name": "no_pk"}}),
    )
    .await;
    assert_error(&pipeline, 400, "unsupported_by_backend");
    // Health and the admin view show the project's origin, never its key.
    let root: Value =
        e.gw.http
            .get(e.gw.url("/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let text = root.to_string();
    assert!(!text.contains("anon-key"), "{text}");
    let sb = root["data"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sb")
        .unwrap();
    assert_eq!(sb["backend"], "supabase");
    assert_eq!(sb["state"], "online");
    assert_eq!(sb["url"], e.upstream.base);
}

#[tokio::test]
async fn an_unreachable_project_answers_backend_unavailable_fast() {
    let db = TestDb::create(SEED).await;
    let yaml = config_yaml(
        &db.uri,
        &supabase_client(
            "down",
            "http://127.0.0.1:9",
            "k",
            "    request_timeout_ms: 2000\n",
        ),
        "",
    );
    let gw = TestServer::start_yaml(&yaml).await;
    for _ in 0..3 {
        let started = Instant::now();
        let res = call(
            &gw,
            "down",
            "/gateway/fetch",
            json!({"table_name": "users"}),
        )
        .await;
        assert_error(&res, 503, "backend_unavailable");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "took {:?}",
            started.elapsed()
        );
    }
    let root: Value = gw
        .http
        .get(gw.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let down = &root["data"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "down")
        .unwrap()
        .clone();
    assert_eq!(down["state"], "offline", "{root}");
    assert_eq!(root["athena_deadpool"], "degraded");
}

/// A project that answers its probe but never a query: each request times out (504) and counts
/// against the client's breaker; once it opens, requests are refused at once (503).
#[tokio::test]
async fn a_project_that_does_not_answer_in_time_is_backend_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if String::from_utf8_lossy(&head).starts_with("GET /rest/v1/ ") {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                        .await;
                } else {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            });
        }
    });
    let db = TestDb::create(SEED).await;
    let slow = supabase_client(
        "slow",
        &format!("http://{addr}"),
        "k",
        "    request_timeout_ms: 300\n    breaker:\n      failure_threshold: 2\n      cooldown_ms: 30000\n",
    )
    .replace("probe_interval_ms: 200", "probe_interval_ms: 60000");
    let gw = TestServer::start_yaml(&config_yaml(&db.uri, &slow, "")).await;
    // Each timeout counts against the client's breaker; the second opens it.
    for _ in 0..2 {
        let started = Instant::now();
        let res = call(
            &gw,
            "slow",
            "/gateway/fetch",
            json!({"table_name": "users"}),
        )
        .await;
        assert_error(&res, 504, "backend_timeout");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let root: Value = gw
            .http
            .get(gw.url("/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if root["data"]["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "slow" && c["breaker"]["state"] == "open")
        {
            break;
        }
        assert!(Instant::now() < deadline, "never opened: {root}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let res = call(
        &gw,
        "slow",
        "/gateway/fetch",
        json!({"table_name": "users"}),
    )
    .await;
    assert_error(&res, 503, "backend_unavailable");
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn caller_supplied_projects_need_an_allow_listed_host() {
    let db = TestDb::create(SEED).await;
    let upstream = TestServer::start(&db).await;
    // The configured project is unreachable; the caller's project is the live upstream.
    let sb = supabase_client("sb", "http://127.0.0.1:9", "k", "");
    let yaml = |hosts: &str| {
        config_yaml(
            &db.uri,
            &sb,
            &format!("supabase:\n  allowed_hosts: {hosts}\n"),
        )
    };
    let target = [
        ("x-supabase-url", upstream.base.as_str()),
        ("x-supabase-key", "caller-key"),
    ];
    let body = json!({"table_name": "users", "order_by": "id", "limit": 2});

    let none = TestServer::start_yaml(&yaml("[]")).await;
    assert_error(
        &call_with(&none, "sb", "/gateway/fetch", body.clone(), &target).await,
        403,
        "connection_target_not_allowed",
    );

    let other = TestServer::start_yaml(&yaml("['*.supabase.co', 'db.example.com']")).await;
    assert_error(
        &call_with(&other, "sb", "/gateway/fetch", body.clone(), &target).await,
        403,
        "supabase_host_not_allowed",
    );

    let port = upstream.base.rsplit(':').next().unwrap().to_string();
    let allowed = TestServer::start_yaml(&yaml(&format!("['127.0.0.1:{port}']"))).await;
    let res = call_with(&allowed, "sb", "/gateway/fetch", body.clone(), &target).await;
    assert_eq!(names(&rows(&res)), ["Ada", "Bob"], "{}", res.1);
    // Without the headers the same client uses its own (unreachable) project.
    assert_error(
        &call(&allowed, "sb", "/gateway/fetch", body.clone()).await,
        503,
        "backend_unavailable",
    );
    assert_error(
        &call_with(
            &allowed,
            "sb",
            "/gateway/fetch",
            body.clone(),
            &[("x-supabase-url", upstream.base.as_str())],
        )
        .await,
        400,
        "missing_field",
    );
    assert_error(
        &call_with(&allowed, "default", "/gateway/fetch", body.clone(), &target).await,
        400,
        "unsupported_by_backend",
    );
    // Raw SQL never takes a connection target.
    let sql = allowed
        .http
        .post(allowed.url("/gateway/query"))
        .header("X-Athena-Client", "default")
        .header("x-supabase-url", upstream.base.as_str())
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"query": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_error(&read(sql).await, 403, "connection_target_not_allowed");
}

#[tokio::test]
async fn the_key_goes_as_apikey_and_bearer_and_a_refused_key_is_backend_auth_failed() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let upstream = TestServer::start_yaml(&config_yaml(
        &db.uri,
        "",
        &format!(
            "logging:\n  uri: {}\napi_keys:\n  enforce: true\n",
            logging.uri
        ),
    ))
    .await;
    let (key, _) = create_key(
        &upstream,
        json!({"name": "supabase", "rights": ["users.read"]}),
    )
    .await;
    let clients = supabase_client("sb", &upstream.base, &key, "")
        + &supabase_client("wrong", &upstream.base, "ath_0000000000000000.nope", "");
    let gw = TestServer::start_yaml(&config_yaml(&db.uri, &clients, "")).await;
    let body = json!({"table_name": "users", "order_by": "id", "limit": 1});
    assert_eq!(
        rows(&call(&gw, "sb", "/gateway/fetch", body.clone()).await).len(),
        1
    );
    assert_error(
        &call(&gw, "wrong", "/gateway/fetch", body).await,
        502,
        "backend_auth_failed",
    );
    // The project's own refusal of a right it does not grant.
    assert_error(
        &call(
            &gw,
            "sb",
            "/gateway/delete",
            json!({"table_name": "users", "resource_id": 1}),
        )
        .await,
        502,
        "backend_auth_failed",
    );
}

#[tokio::test]
async fn change_data_capture_is_refused_on_a_supabase_client() {
    let db = TestDb::create(SEED).await;
    let logging = TestDb::create("").await;
    let upstream = TestServer::start(&db).await;
    let gw = TestServer::start_yaml(&config_yaml(
        &db.uri,
        &supabase_client("sb", &upstream.base, "k", ""),
        &format!("logging:\n  uri: {}\n", logging.uri),
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let res = loop {
        let res = admin(
            &gw,
            reqwest::Method::POST,
            "/admin/cdc/tables",
            Some(json!({"client_name": "sb", "table": "users"})),
        )
        .await;
        if res.0 != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_error(&res, 400, "unsupported_by_backend");
    assert!(
        res.1["error"].as_str().unwrap().contains("supabase"),
        "{}",
        res.1
    );
}

#[test]
fn bad_supabase_config_is_refused_naming_the_key() {
    let path = std::path::Path::new("test.yaml");
    let load = |client: &str, top: &str| {
        athena_rs::config::Settings::from_yaml(
            &format!("{top}clients:\n  sb:\n    backend: supabase\n{client}"),
            path,
        )
    };
    let cases = [
        ("    url: not a url\n    key: k\n", "", "clients.sb.url"),
        (
            "    url: ftp://x.supabase.co\n    key: k\n",
            "",
            "clients.sb.url",
        ),
        (
            "    url: https://u:p@x.supabase.co\n    key: k\n",
            "",
            "clients.sb.url",
        ),
        ("    key: k\n", "", "clients.sb.url"),
        ("    url: https://x.supabase.co\n", "", "clients.sb.key"),
        (
            "    url: https://x.supabase.co\n    key: has space\n",
            "",
            "clients.sb.key",
        ),
        (
            "    url_env: ATHENA_TEST_UNSET_URL\n    key: k\n",
            "",
            "clients.sb.url_env",
        ),
        (
            "    url: https://x.supabase.co\n    url_env: X\n    key: k\n",
            "",
            "clients.sb.url",
        ),
        (
            "    url: https://x.supabase.co\n    key: k\n    uri: postgres://h/db\n",
            "",
            "clients.sb.uri",
        ),
        (
            "    url: https://x.supabase.co\n    key: k\n    primary_keys:\n      users: []\n",
            "",
            "clients.sb.primary_keys.users",
        ),
        (
            "    url: https://x.supabase.co\n    key: k\n",
            "supabase:\n  allowed_hosts: ['a b']\n",
            "supabase.allowed_hosts[0]",
        ),
        (
            "    url: https://x.supabase.co\n    key: k\n",
            "cdc:\n  clients:\n    sb:\n      tables: [users]\n",
            "cdc.clients.sb",
        ),
    ];
    for (client, top, key) in cases {
        let e = load(client, top).expect_err(client);
        assert_eq!(e.key, key, "{client}{top}: {e}");
        assert!(!e.to_string().contains("has space"), "the key leaked: {e}");
    }
    std::env::set_var("ATHENA_TEST_SB_URL", "https://abc.supabase.co");
    std::env::set_var("ATHENA_TEST_SB_KEY", "secret-key");
    let s = load(
        "    url_env: ATHENA_TEST_SB_URL\n    key_env: ATHENA_TEST_SB_KEY\n",
        "supabase:\n  allowed_hosts: ['*.Supabase.co']\n",
    )
    .unwrap();
    assert_eq!(s.supabase.allowed_hosts, ["*.supabase.co"]);
    let debug = format!("{:?}", s.clients);
    assert!(
        debug.contains("abc.supabase.co") && !debug.contains("secret-key"),
        "{debug}"
    );
    let postgres = athena_rs::config::Settings::from_yaml(
        "clients:\n  pg:\n    uri: postgres://h/db\n    key: k\n",
        path,
    )
    .unwrap_err();
    assert_eq!(postgres.key, "clients.pg.key");
}

/// Function calls go to the project's `POST /rest/v1/rpc/{function}` and answer the rows a
/// PostgreSQL client of the same database answers: a set of rows shaped by columns, filters and a
/// count, a scalar, and a paged set of values.
#[tokio::test]
async fn functions_are_called_through_the_projects_rpc_endpoint_as_on_postgres() {
    let e = env().await;
    e.db.execute(
        "CREATE FUNCTION adults(min_age int) RETURNS SETOF users LANGUAGE sql STABLE \
         AS $$ SELECT * FROM users WHERE age >= min_age $$",
    )
    .await;
    e.db.execute(
        "CREATE FUNCTION add_numbers(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE \
         AS $$ SELECT a + b $$",
    )
    .await;
    e.db.execute(
        "CREATE FUNCTION squares(n int) RETURNS SETOF int LANGUAGE sql IMMUTABLE \
         AS $$ SELECT g * g FROM generate_series(1, n) g $$",
    )
    .await;
    let calls = [
        json!({"function": "adults", "args": {"min_age": 30}, "columns": ["name"],
               "conditions": [{"operator": "neq", "column": "status", "value": "banned"}],
               "count": "exact"}),
        json!({"function": "add_numbers", "args": {"a": 2, "b": 40}}),
        json!({"function": "squares", "args": {"n": 4}, "limit": 2, "offset": 1}),
    ];
    for body in calls {
        let sb = call(&e.gw, "sb", "/gateway/rpc", body.clone()).await;
        let pg = call(&e.gw, "default", "/gateway/rpc", body.clone()).await;
        assert_eq!(rows(&sb), rows(&pg), "{body}");
        assert_eq!(sb.1["data"]["count"], pg.1["data"]["count"], "{body}");
    }
    let scalar = call(
        &e.gw,
        "sb",
        "/gateway/rpc",
        json!({"function": "add_numbers", "args": {"a": 2, "b": 40}}),
    )
    .await;
    assert_eq!(rows(&scalar), vec![json!({"add_numbers": 42})]);
    // The project refuses an unknown argument; the envelope says so.
    let bad = call(
        &e.gw,
        "sb",
        "/gateway/rpc",
        json!({"function": "add_numbers", "args": {"a": 2, "zzz": 1}}),
    )
    .await;
    assert!(bad.0.is_client_error(), "{}", bad.1);
    assert_eq!(bad.1["status"], "error", "{}", bad.1);
    // GET tells arguments from filters by the function's catalog entry, which a Supabase client
    // cannot read: it is refused by name, and POST is the way.
    let get =
        e.gw.http
            .get(e.gw.url("/rpc/add_numbers?a=1&b=2"))
            .header("X-Athena-Client", "sb")
            .send()
            .await
            .unwrap();
    let get = read(get).await;
    assert_error(&get, 400, "unsupported_by_backend");
    assert!(
        get.1["error"].as_str().unwrap().contains("supabase"),
        "{}",
        get.1
    );
}
