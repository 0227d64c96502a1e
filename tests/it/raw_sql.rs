//! Raw SQL: `/gateway/query` and `/query/sql` — admin key, binds, DDL, timeouts and drivers.

use crate::common;

use common::*;
use serde_json::{json, Value};

async fn query_sql(
    srv: &TestServer,
    body: Value,
    key: Option<&str>,
) -> (reqwest::StatusCode, Value) {
    let mut req = srv.http.post(srv.url("/query/sql")).json(&body);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    read(req.send().await.unwrap()).await
}

#[tokio::test]
async fn gateway_query_binds_positional_params() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = srv
        .sql(
            "SELECT name FROM users WHERE age > $1 AND status = $2 ORDER BY name",
            json!([30, "active"]),
        )
        .await;
    assert_eq!(rows(&r), vec![json!({"name": "Ada"})]);
    assert_eq!(r.1["data"]["returned_row_count"], 1);
    let r = srv
        .sql(
            "SELECT count(*) AS n FROM users WHERE id = ANY($1)",
            json!([[1, 2, 3]]),
        )
        .await;
    assert_eq!(rows(&r)[0]["n"], 3);
    let r = srv
        .sql(
            "UPDATE users SET status = $1 WHERE age = $2 RETURNING id",
            json!(["x", 25]),
        )
        .await;
    assert_eq!(rows(&r).len(), 2);
    let r = srv
        .sql("DELETE FROM orders WHERE total < $1", json!([10]))
        .await;
    assert_eq!(r.1["data"]["rows_affected"], 1);
    assert_error(
        &srv.sql("SELECT $1::int + $2::int", json!([1])).await,
        400,
        "invalid_query",
    );
    assert_error(
        &srv.sql("SELECT $1::int", json!(["abc"])).await,
        400,
        "invalid_value",
    );
}

#[tokio::test]
async fn ddl_and_several_statements_run_and_refresh_the_schema_cache() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    srv.post_err(
        "/gateway/fetch",
        json!({"table_name": "late"}),
        404,
        "unknown_table",
    )
    .await;
    let r = srv.sql("CREATE TABLE late (id int PRIMARY KEY, v text); INSERT INTO late VALUES (1, 'a'), (2, 'b')", json!([])).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["data"]["rows_affected"], 2);
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "late", "order_by": "id"}),
        )
        .await;
    assert_eq!(rows(&r).len(), 2);
    let r = srv
        .sql("ALTER TABLE late ADD COLUMN extra int DEFAULT 7", json!([]))
        .await;
    assert_eq!(r.0, 200);
    let r = srv
        .post(
            "/gateway/fetch",
            json!({"table_name": "late", "columns": ["extra"], "limit": 1}),
        )
        .await;
    assert_eq!(rows(&r)[0]["extra"], 7);
    let r = srv.sql("SHOW server_version_num", json!([])).await;
    assert!(rows(&r)[0]["server_version_num"].is_string());
}

#[tokio::test]
async fn sql_errors_have_codes() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    assert_error(&srv.sql("SELEC 1", json!([])).await, 400, "syntax_error");
    assert_error(
        &srv.sql("SELECT * FROM missing_table", json!([])).await,
        404,
        "unknown_table",
    );
    assert_error(
        &srv.sql("SELECT missing_col FROM users", json!([])).await,
        400,
        "unknown_column",
    );
    assert_error(
        &srv.sql(
            "INSERT INTO users (email) VALUES ('ada@example.com')",
            json!([]),
        )
        .await,
        409,
        "unique_violation",
    );
    assert_error(&srv.sql("   ;  ", json!([])).await, 400, "invalid_query");
}

#[tokio::test]
async fn statement_timeout_answers_504() {
    let db = TestDb::create("").await;
    let srv =
        TestServer::start_yaml(&config_yaml(&db.uri, "    statement_timeout_ms: 300\n", "")).await;
    assert_error(
        &srv.sql("SELECT pg_sleep(3)", json!([])).await,
        504,
        "statement_timeout",
    );
    let r = srv.sql("SELECT 1 AS one", json!([])).await;
    assert_eq!(rows(&r)[0]["one"], 1, "the pool recovers after a timeout");
}

#[tokio::test]
async fn raw_sql_needs_the_admin_key() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let body = json!({"query": "SELECT 1"});
    let send = |req: reqwest::RequestBuilder| async { read(req.send().await.unwrap()).await };
    let base = || {
        srv.http
            .post(srv.url("/gateway/query"))
            .header("X-Athena-Client", "default")
            .json(&body)
    };
    assert_error(&send(base()).await, 401, "missing_api_key");
    assert_error(
        &send(base().bearer_auth("wrong")).await,
        401,
        "invalid_api_key",
    );
    for header in ["apikey", "x-api-key", "x-athena-key"] {
        let r = send(base().header(header, ADMIN_KEY)).await;
        assert_eq!(r.0, 200, "{header}: {}", r.1);
    }
    assert_error(
        &send(
            base()
                .bearer_auth(ADMIN_KEY)
                .header("X-JDBC-URL", "postgres://evil/db"),
        )
        .await,
        403,
        "connection_target_not_allowed",
    );
    assert_error(
        &query_sql(
            &srv,
            json!({"query": "SELECT 1", "driver": "postgresql", "db_name": "default"}),
            None,
        )
        .await,
        401,
        "missing_api_key",
    );
}

#[tokio::test]
async fn without_an_admin_key_admin_routes_are_503_and_raw_sql_needs_an_api_key() {
    let db = TestDb::create("").await;
    let mut settings = athena_rs::config::Settings::from_yaml(
        &config_yaml(&db.uri, "", ""),
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    settings.admin_key = None;
    let srv = TestServer::start_settings(settings).await;
    let r = read(
        srv.http
            .post(srv.url("/gateway/query"))
            .header("X-Athena-Client", "default")
            .bearer_auth("anything")
            .json(&json!({"query": "SELECT 1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 401, "invalid_api_key");
    let r = read(
        srv.http
            .get(srv.url("/schema/clients"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 503, "admin_key_not_configured");
}

#[tokio::test]
async fn query_sql_routes_by_driver() {
    let db = TestDb::create(SEED).await;
    let srv = TestServer::start(&db).await;
    let r = query_sql(&srv, json!({"query": "SELECT count(*) AS n FROM users", "driver": "postgresql", "db_name": "default"}), Some(ADMIN_KEY)).await;
    assert_eq!(rows(&r)[0]["n"], 5);
    assert_eq!(r.1["data"]["db_name"], "default");
    assert!(r.1["data"]["duration_ms"].is_number());
    // The CQL drivers need a ScyllaDB client; `default` is a PostgreSQL one.
    for driver in ["athena", "scylla"] {
        assert_error(
            &query_sql(
                &srv,
                json!({"query": "SELECT 1", "driver": driver, "db_name": "default"}),
                Some(ADMIN_KEY),
            )
            .await,
            400,
            "unsupported_by_backend",
        );
    }
    assert_error(
        &query_sql(
            &srv,
            json!({"query": "SELECT 1", "driver": "supabase", "db_name": "default"}),
            Some(ADMIN_KEY),
        )
        .await,
        400,
        "driver_not_available",
    );
    assert_error(
        &query_sql(
            &srv,
            json!({"query": "SELECT 1", "driver": "mysql", "db_name": "default"}),
            Some(ADMIN_KEY),
        )
        .await,
        400,
        "unknown_driver",
    );
    assert_error(
        &query_sql(
            &srv,
            json!({"query": "SELECT 1", "db_name": "default"}),
            Some(ADMIN_KEY),
        )
        .await,
        400,
        "missing_field",
    );
    assert_error(
        &query_sql(
            &srv,
            json!({"query": "SELECT 1", "driver": "postgresql", "db_name": "nope"}),
            Some(ADMIN_KEY),
        )
        .await,
        404,
        "unknown_client",
    );
}

#[tokio::test]
async fn raw_sql_cannot_lift_the_statement_timeout_or_leak_session_state() {
    let db = TestDb::create("CREATE TABLE t (id int);").await;
    let yaml = config_yaml(
        &db.uri,
        "    statement_timeout_ms: 300\n    pool:\n      max_size: 2\n",
        "",
    );
    let srv = TestServer::start_yaml(&yaml).await;
    // Within one request: the gateway's own deadline still cancels it.
    let started = std::time::Instant::now();
    assert_error(
        &srv.sql(
            "SET LOCAL statement_timeout = 0; SELECT pg_sleep(3)",
            json!([]),
        )
        .await,
        504,
        "statement_timeout",
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Across requests: session settings, roles, search_path and open transactions are reset.
    for q in [
        "SET statement_timeout = 0",
        "SET search_path = pg_catalog",
        "SELECT set_config('search_path', 'pg_catalog', false)",
        "BEGIN; INSERT INTO t VALUES (1)",
        "BEGIN",
    ] {
        for _ in 0..2 {
            let r = srv.sql(q, json!([])).await;
            assert_eq!(r.0, 200, "{q}: {}", r.1);
        }
    }
    for _ in 0..4 {
        assert_error(
            &srv.sql("SELECT pg_sleep(2)", json!([])).await,
            504,
            "statement_timeout",
        );
        let r = srv.post("/gateway/fetch", json!({"table_name": "t"})).await;
        assert_eq!(
            rows(&r).len(),
            0,
            "the unfinished transaction was rolled back"
        );
    }
    assert_eq!(db.scalar("SELECT count(*) FROM t").await.unwrap(), "0");
}
