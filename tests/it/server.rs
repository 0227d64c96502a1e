//! Health, readiness, schema routes, offline backends and overload.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn get(srv: &TestServer, path: &str, admin: bool) -> (reqwest::StatusCode, Value) {
    let mut req = srv
        .http
        .get(srv.url(path))
        .header("X-Athena-Client", "default");
    if admin {
        req = req.bearer_auth(ADMIN_KEY);
    }
    read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn root_health_and_ready_report_real_states() {
    let db = TestDb::create("").await;
    let yaml = config_yaml(&db.uri, "  down:\n    uri: postgres://postgres@127.0.0.1:1/nothing\n    probe_interval_ms: 200\n    pool:\n      connect_timeout_ms: 500\n", "");
    let srv = TestServer::start_yaml(&yaml).await;
    let (s, v) = get(&srv, "/", false).await;
    assert_eq!(s, 200);
    assert_eq!(v["message"], "athena is online");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["athena_deadpool"], "degraded");
    // athena_rs 2.0.2's fields: the ScyllaDB state (none configured here), the version under its
    // old name, and every route with its methods and summary.
    assert_eq!(v["athena_scylladb"], "not_configured");
    assert_eq!(v["cargo_toml_version"], env!("CARGO_PKG_VERSION"));
    let routes = v["routes"].as_array().unwrap();
    let route = |path: &str| routes.iter().find(|r| r["path"] == path).cloned().unwrap();
    assert_eq!(route("/gateway/fetch")["methods"], json!(["POST"]));
    assert_eq!(route("/gateway/insert")["methods"], json!(["PUT", "POST"]));
    assert!(route("/gateway/fetch")["summary"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(
        routes.len(),
        athena_rs::http::routes()
            .list()
            .into_iter()
            .map(|(_, p)| p)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        "one entry per path"
    );
    let clients = v["data"]["clients"].as_array().unwrap();
    let state = |name: &str| clients.iter().find(|c| c["name"] == name).unwrap()["state"].clone();
    assert_eq!(state("default"), "online");
    assert_eq!(state("down"), "offline");
    assert!(
        !v.to_string().contains("127.0.0.1:1"),
        "no connection strings in the health report"
    );
    let (s, v) = get(&srv, "/health", false).await;
    assert_eq!((s.as_u16(), v["status"].as_str()), (200, Some("success")));
    let (s, v) = get(&srv, "/ready", false).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["clients"].as_array().unwrap().len(), 2);
    let r = read(
        srv.http
            .post(srv.url("/gateway/fetch"))
            .header("X-Athena-Client", "down")
            .json(&json!({"table_name": "t"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 503, "backend_unavailable");
}

#[tokio::test]
async fn a_client_whose_database_appears_later_comes_online_by_itself() {
    let name = unique_name("athena_t_late");
    let uri = format!("{PG_BASE}/{name}");
    let breaker = "    breaker:\n      cooldown_ms: 1000\n";
    let srv = TestServer::start_yaml(&config_yaml(&uri, breaker, "")).await;
    // The first probe finds no database and opens the breaker at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = get(&srv, "/", false).await;
        if v["data"]["clients"][0]["breaker"]["state"] == "open" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never opened: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = srv
        .post_response("/gateway/fetch", json!({"table_name": "t"}))
        .await;
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    assert_error(&read(resp).await, 503, "backend_unavailable");
    admin_connect()
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let db = TestDb { name, uri };
    db.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        .await;
    let mut last = None;
    for _ in 0..50 {
        let r = srv.post("/gateway/fetch", json!({"table_name": "t"})).await;
        if r.0 == 200 {
            assert_eq!(rows(&r).len(), 1);
            // The state changes in the pool actor's mailbox, just after the answer that closed
            // the breaker.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let (_, v) = get(&srv, "/", false).await;
                if v["data"]["clients"][0]["state"] == "online" {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "not online: {v}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("client did not come online: {last:?}");
}

#[tokio::test]
async fn a_full_pool_answers_overloaded_with_retry_after() {
    let db = TestDb::create("").await;
    let yaml = config_yaml(
        &db.uri,
        "    pool:\n      max_size: 1\n",
        "gateway:\n  mailbox_capacity: 2\n",
    );
    let srv = TestServer::start_yaml(&yaml).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let http = srv.http.clone();
        let url = srv.url("/gateway/query");
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("X-Athena-Client", "default")
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"query": "SELECT pg_sleep(0.3)"}))
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").is_some();
            let (s, v) = read(r).await;
            (s.as_u16(), v["code"].as_str().map(str::to_string), retry)
        }));
    }
    let mut ok = 0;
    let mut overloaded = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _, _) => ok += 1,
            (503, Some(code), true) if code == "overloaded" => overloaded += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        ok >= 1 && overloaded >= 1,
        "ok {ok}, overloaded {overloaded}"
    );
}

#[tokio::test]
async fn schema_routes_read_the_live_catalog() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let (s, v) = get(&srv, "/schema/tables", false).await;
    assert_eq!(s, 200, "{v}");
    let tables: Vec<String> = v["data"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}.{}",
                t["table_schema"].as_str().unwrap(),
                t["table_name"].as_str().unwrap()
            )
        })
        .collect();
    for t in [
        "public.users",
        "public.orders",
        "public.no_pk",
        "other.things",
    ] {
        assert!(tables.contains(&t.to_string()), "{t} in {tables:?}");
    }
    assert!(!tables
        .iter()
        .any(|t| t.starts_with("pg_catalog") || t.starts_with("information_schema")));
    let (s, v) = get(&srv, "/schema/columns?table_name=users", false).await;
    assert_eq!(s, 200, "{v}");
    let cols = v["data"]["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 7);
    assert_eq!(cols[0]["column_name"], "id");
    assert_eq!(cols[0]["is_primary_key"], true);
    assert_eq!(cols[0]["data_type"], "bigint");
    assert_eq!(cols[1]["is_nullable"], false);
    let (s, v) = get(
        &srv,
        "/schema/columns?table_name=things&schema=other",
        false,
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["data"]["columns"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    assert_error(
        &get(&srv, "/schema/columns", false).await,
        400,
        "missing_field",
    );
    assert_error(
        &get(&srv, "/schema/columns?table_name=nope", false).await,
        404,
        "unknown_table",
    );
    let r = read(
        srv.http
            .get(srv.url("/schema/tables"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 400, "missing_client_header");
    assert_error(
        &get(&srv, "/schema/clients", false).await,
        401,
        "missing_api_key",
    );
    let (s, v) = get(&srv, "/schema/clients", true).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["clients"], json!(["default"]));
}

#[tokio::test]
async fn openapi_documents_are_served() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    for path in ["/openapi.yaml", "/openapi-wss.yaml"] {
        let r = srv.http.get(srv.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("yaml"));
        let text = r.text().await.unwrap();
        assert!(text.contains("openapi: 3.1"), "{path}");
    }
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow_and_unknown_paths_404() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .http
        .get(srv.url("/gateway/insert"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("PUT, POST".into())
    );
    assert_error(&read(r).await, 405, "method_not_allowed");
    assert_error(
        &read(srv.http.get(srv.url("/nope")).send().await.unwrap()).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn a_frozen_client_answers_503_and_serves_again_when_unfrozen() {
    let db = TestDb::create("CREATE TABLE t (id int); INSERT INTO t VALUES (1);").await;
    let srv = TestServer::start(&db).await;
    let registry = &srv.actors.registry;
    assert!(registry.set_frozen("default", true, "maintenance").await);
    let r = srv
        .post_response("/gateway/fetch", json!({"table_name": "t"}))
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(&read(r).await, 503, "client_frozen");
    let (_, v) = get(&srv, "/", false).await;
    assert_eq!(v["data"]["clients"][0]["lifecycle"], "frozen");
    assert!(registry.set_frozen("default", false, "maintenance").await);
    assert_eq!(
        rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
        1
    );
}

#[tokio::test]
async fn database_privileges_apply_and_a_denial_is_403() {
    let db = TestDb::create("CREATE TABLE secret (id int); CREATE TABLE open (id int);").await;
    let role = unique_name("athena_t_role");
    let admin = admin_connect().await;
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();
    db.execute(&format!("GRANT SELECT ON open TO {role}")).await;
    let uri = format!("postgres://{role}@127.0.0.1:5432/{}", db.name);
    let srv = TestServer::start_yaml(&config_yaml(&uri, "", "")).await;
    assert_eq!(
        rows(
            &srv.post("/gateway/fetch", json!({"table_name": "open"}))
                .await
        )
        .len(),
        0
    );
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "secret"}),
        403,
        "forbidden",
    )
    .await;
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "open", "insert_body": {"id": 1}}),
        403,
        "forbidden",
    )
    .await;
    drop(srv);
    db.execute(&format!("REVOKE ALL ON open FROM {role}")).await;
    let _ = admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        ))
        .await;
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .unwrap();
}

#[tokio::test]
async fn exclusion_constraints_are_422() {
    let db = TestDb::create("CREATE TABLE booking (id serial PRIMARY KEY, during int4range, EXCLUDE USING gist (during WITH &&));").await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .post(
            "/gateway/insert",
            json!({"table_name": "booking", "insert_body": {"during": "[1,5)"}}),
        )
        .await;
    assert_eq!(rows(&r)[0]["during"], "[1,5)");
    srv.post_err(
        "/gateway/insert",
        json!({"table_name": "booking", "insert_body": {"during": "[3,8)"}}),
        422,
        "exclusion_violation",
    )
    .await;
}

#[tokio::test]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let db = TestDb::create("CREATE TABLE t (id int);").await;
    let yaml = config_yaml(
        &db.uri,
        "    rate_limit:\n      requests_per_second: 2\n      burst: 3\n",
        "",
    );
    let srv = TestServer::start_yaml(&yaml).await;
    for _ in 0..3 {
        assert_eq!(
            rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
            0
        );
    }
    let r = srv
        .post_response("/gateway/fetch", json!({"table_name": "t"}))
        .await;
    assert_eq!(
        r.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("1".into())
    );
    assert_error(&read(r).await, 429, "rate_limited");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rows(&srv.post("/gateway/fetch", json!({"table_name": "t"})).await).len(),
        0,
        "the bucket refills"
    );
}

#[tokio::test]
async fn routes_and_habits_of_athena_rs_2_0_2_are_served_or_refused_in_words() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    // GET /clients is GET /schema/clients under its 2.0.2 name, with the admin key.
    let (s, listed) = get(&srv, "/clients", true).await;
    assert_eq!(s, 200, "{listed}");
    let (_, schema) = get(&srv, "/schema/clients", true).await;
    assert_eq!(listed["data"]["clients"], schema["data"]["clients"]);
    assert_eq!(listed["data"]["clients"], json!(["default"]));
    assert_error(&get(&srv, "/clients", false).await, 401, "missing_api_key");
    // A key in the query string is never read, and the answer says so and what to do instead.
    for path in [
        format!("/clients?api_key={ADMIN_KEY}"),
        format!("/schema/clients?x=1&API_KEY={ADMIN_KEY}"),
    ] {
        let r = get(&srv, &path, false).await;
        assert_error(&r, 401, "api_key_in_query");
        assert!(
            r.1["hint"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer"),
            "{}",
            r.1
        );
    }
    let r = read(
        srv.http
            .post(srv.url(&format!("/query/sql?api_key={ADMIN_KEY}")))
            .json(&json!({"query": "select 1", "driver": "postgresql", "db_name": "default"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "api_key_in_query");
    // With the key in a header, a stray api_key parameter changes nothing.
    let (s, _) = get(&srv, &format!("/clients?api_key={ADMIN_KEY}"), true).await;
    assert_eq!(s, 200);
    // The registry routes 2.0.2 read from one fixed Supabase project are gone, with directions.
    for (path, table) in [
        ("/registry", "api_registry"),
        ("/registry/42", "api_registry"),
        ("/router/registry", "pm_athena_router"),
    ] {
        let r = get(&srv, path, true).await;
        assert_error(&r, 410, "route_removed");
        let hint = r.1["hint"].as_str().unwrap();
        assert!(hint.contains(&format!("/rest/v1/{table}")), "{hint}");
    }
}

#[tokio::test]
async fn with_audit_headers_required_inserts_and_deletes_name_the_missing_one_and_write_nothing() {
    let db = TestDb::create("CREATE TABLE notes (id serial PRIMARY KEY, body text);").await;
    let yaml = config_yaml(&db.uri, "", "gateway:\n  require_audit_headers: true\n");
    let srv = TestServer::start_yaml(&yaml).await;
    let send = |method: reqwest::Method, path: &'static str, body: Value, ids: &[(&str, &str)]| {
        let mut req = srv
            .http
            .request(method, srv.url(path))
            .header("X-Athena-Client", "default")
            .json(&body);
        for (k, v) in ids {
            req = req.header(*k, *v);
        }
        async move { read(req.send().await.unwrap()).await }
    };
    let insert = json!({"table_name": "notes", "insert_body": {"body": "hello"}});
    let all = [
        ("X-User-Id", "u1"),
        ("X-Company-Id", "c1"),
        ("X-Organization-Id", "o1"),
    ];
    // Each missing or blank header is named, in order; nothing is written.
    for (given, missing) in [
        (&all[..0], "X-User-Id"),
        (&all[..1], "X-Company-Id"),
        (&all[..2], "X-Organization-Id"),
    ] {
        let r = send(
            reqwest::Method::PUT,
            "/gateway/insert",
            insert.clone(),
            given,
        )
        .await;
        assert_error(&r, 400, "missing_audit_header");
        assert!(r.1["error"].as_str().unwrap().contains(missing), "{}", r.1);
    }
    let blank = [("X-User-Id", " "), all[1], all[2]];
    let r = send(
        reqwest::Method::PUT,
        "/gateway/insert",
        insert.clone(),
        &blank,
    )
    .await;
    assert_error(&r, 400, "missing_audit_header");
    assert_eq!(
        db.scalar("SELECT count(*) FROM notes").await.as_deref(),
        Some("0")
    );
    // With all three the insert runs; fetches and updates never needed them.
    let (s, v) = send(
        reqwest::Method::PUT,
        "/gateway/insert",
        insert.clone(),
        &all,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(
        reqwest::Method::POST,
        "/gateway/fetch",
        json!({"table_name": "notes"}),
        &[],
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["data"]["rows"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    // Deletes need them too.
    let delete = json!({"table_name": "notes", "resource_id": 1});
    let r = send(
        reqwest::Method::DELETE,
        "/gateway/delete",
        delete.clone(),
        &all[..2],
    )
    .await;
    assert_error(&r, 400, "missing_audit_header");
    assert_eq!(
        db.scalar("SELECT count(*) FROM notes").await.as_deref(),
        Some("1")
    );
    let (s, v) = send(reqwest::Method::DELETE, "/gateway/delete", delete, &all).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM notes").await.as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn the_docs_page_is_html_rendered_here_and_fetches_nothing_from_elsewhere() {
    let db = TestDb::create("").await;
    let srv = TestServer::start(&db).await;
    let r = srv.http.get(srv.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-type").starts_with("text/html"));
    assert!(header("content-security-policy").contains("default-src 'none'"));
    let page = r.text().await.unwrap();
    for path in [
        "/gateway/fetch",
        "/rest/v1/{table}",
        "/admin/clients",
        "/docs",
    ] {
        assert!(page.contains(&format!("<code>{path}</code>")), "{path}");
    }
    assert!(!page.contains("<script"));
}
